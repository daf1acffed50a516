"""The training losses equal their pure-PyTorch definitions, and a tiny model can learn from them."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from xvertfast.model import XVertNetStage
from xvertfast.ops.reference import gradient_correlation_reference, select_max_entropy_reference
from xvertfast.train import XVertNetLoss, feature_loss, structure_loss


def test_losses_equal_their_pure_pytorch_versions(seed):
    out = torch.rand(3, 1, 33, 29, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 1, 33, 29, dtype=torch.float64) * 0.1
    feats = torch.randn(3, 10, 33, 29, dtype=torch.float64)
    l1 = structure_loss(out, y)
    ref1 = (1 - gradient_correlation_reference(out, y)).mean()
    torch.testing.assert_close(l1, ref1)
    g1, = torch.autograd.grad(l1, out)
    gr1, = torch.autograd.grad(ref1, out)
    torch.testing.assert_close(g1, gr1)
    l2 = feature_loss(out, feats)
    ref2 = F.mse_loss(out, select_max_entropy_reference(feats, 256, True)[1])
    torch.testing.assert_close(l2, ref2)


def test_feature_target_is_detached(seed):
    out = torch.rand(2, 1, 16, 16, requires_grad=True)
    feats = torch.randn(2, 6, 16, 16, requires_grad=True)
    feature_loss(out, feats).backward()
    assert out.grad is not None and feats.grad is None


def test_tiny_model_overfits_a_fixed_batch(seed):
    # width 8, 64x64 ROIs, CPU: the combined loss must fall by half within a few dozen steps.
    stage = XVertNetStage(width=8, depth=3)
    xp = torch.rand(4, 1, 64, 64)
    y = xp - F.avg_pool2d(F.pad(xp, (2, 2, 2, 2), mode="reflect"), 5, stride=1)
    loss_fn = XVertNetLoss()
    opt = torch.optim.Adam(stage.parameters(), lr=1e-3, betas=(0.9, 0.99))
    losses = []
    for _ in range(40):
        out, feats = stage(xp, y, return_features=True)
        terms = loss_fn(out, y, feats, use_feature_loss=True)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        losses.append(terms.total.item())
    assert min(losses[-5:]) <= 0.5 * losses[0], losses


@pytest.mark.parametrize("features, why", [
    (torch.rand(2, 8, 16, 16), "other H and W"),  # was torch's "The size of tensor a (32) must match ..."
    (torch.rand(3, 8, 32, 32), "another batch"),
    (torch.rand(2, 0, 32, 32), "no maps"),
])  # fmt: skip
def test_feature_loss_refuses_features_that_do_not_fit_the_output_naming_both_shapes(features, why):
    shapes = re.escape(f"got (2, 1, 32, 32) and {tuple(features.shape)}")
    with pytest.raises(ValueError, match=rf"^feature_loss: out must be \[B, 1, H, W\] and features \[B, C, H, W\] "
                                         rf"with the same B, H and W, {shapes}$"):  # fmt: skip
        feature_loss(torch.rand(2, 1, 32, 32), features)


@pytest.mark.parametrize("out", [torch.rand(2, 2, 32, 32), torch.rand(2, 32, 32)])
def test_feature_loss_refuses_an_output_of_more_maps_or_no_channel_axis(out):
    # (both were broadcast against the [B, 1, H, W] target, with a UserWarning and a loss of something else)
    with pytest.raises(ValueError, match=re.escape(f"got {tuple(out.shape)} and (2, 8, 32, 32)")):
        feature_loss(out, torch.rand(2, 8, 32, 32))


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -0.5, "1", True, None])
def test_a_feature_weight_that_is_no_finite_number_at_least_0_is_refused_when_made(weight):
    # NaN gave a NaN loss at every step of the joint phase
    with pytest.raises(ValueError, match=rf"^XVertNetLoss: feature_weight must be a finite number >= 0, got "
                                         rf"{re.escape(repr(weight))}$"):  # fmt: skip
        XVertNetLoss(feature_weight=weight)


def test_a_zero_feature_weight_is_the_structure_loss_alone():
    out, y, features = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32), torch.rand(2, 8, 32, 32)
    terms = XVertNetLoss(feature_weight=0)(out, y, features, use_feature_loss=True)
    assert terms.total == terms.structure and terms.feature > 0
