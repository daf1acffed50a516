"""The fused guidance-layer conv + max-pool against its PyTorch formula."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import DEVICES
from xvertfast._extension import has_extension
from xvertfast.model import GuidanceLayer, XVertNetStage
from xvertfast.ops import guided_pool
from xvertfast.ops.reference import guided_pool_reference

needs_ext = pytest.mark.skipif(not has_extension(), reason="compiled extension not built")

TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def guidance_inputs(batch, channels, h, w, dtype=torch.float32, device="cpu"):
    """A Y-like image (values around 0, some exact zeros and ties) and a random 3x3 conv."""
    y = torch.randn(batch, 1, h, w, dtype=dtype, device=device) * 0.1
    y[..., : h // 3, : w // 4] = 0.0  # flat patch: equal maxima inside a window
    weight = torch.randn(channels, 1, 3, 3, dtype=dtype, device=device)
    bias = torch.randn(channels, dtype=dtype, device=device)
    return y, weight, bias


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pool", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (2, 5, 37, 53), (3, 16, 64, 48), (1, 128, 33, 71)])
def test_op_matches_reference(seed, device, dtype, pool, shape):
    y, weight, bias = guidance_inputs(*shape, dtype=dtype, device=device)
    if shape[2] < pool or shape[3] < pool:
        pytest.skip("image smaller than a window")
    got = torch.ops.xvertfast.guided_pool(y, weight, bias, pool)
    want = guided_pool_reference(y, weight, bias, pool)
    assert got.shape == want.shape == (shape[0], shape[1], shape[2] // pool, shape[3] // pool)
    torch.testing.assert_close(got, want, **TOL[dtype])


@needs_ext
def test_op_borders_are_zero_padded():
    # a single bright pixel in a corner: only zero padding reproduces conv2d's border values
    y = torch.zeros(1, 1, 6, 6)
    y[0, 0, 0, 0] = 1.0
    weight = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3) - 4.0
    bias = torch.zeros(1)
    torch.testing.assert_close(torch.ops.xvertfast.guided_pool(y, weight, bias, 2),
                               guided_pool_reference(y, weight, bias, 2))  # fmt: skip


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_op_propagates_nan_like_max_pool(device):
    y, weight, bias = guidance_inputs(1, 3, 16, 16, device=device)
    y[0, 0, 5, 9] = float("nan")
    got = torch.ops.xvertfast.guided_pool(y, weight, bias, 4)
    want = guided_pool_reference(y, weight, bias, 4)
    assert torch.equal(got.isnan(), want.isnan()) and want.isnan().any()
    torch.testing.assert_close(got[~got.isnan()], want[~want.isnan()])


@needs_ext
def test_opcheck(seed):
    y, weight, bias = guidance_inputs(2, 4, 20, 24)
    torch.library.opcheck(torch.ops.xvertfast.guided_pool, (y, weight, bias, 4))


@needs_ext
@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.rand(1, 2, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 2), r"\[B, H, W\] or \[B, 1, H, W\]"),
        ((torch.rand(1, 1, 8, 8), torch.rand(3, 1, 5, 5), torch.rand(3), 2), r"\[C, 1, 3, 3\]"),
        ((torch.rand(1, 1, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(4), 2), "bias must be"),
        ((torch.rand(1, 1, 8, 8), torch.rand(3, 1, 3, 3).double(), torch.rand(3), 2), "share a dtype"),
        ((torch.rand(1, 1, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 0), "pool must be"),
        ((torch.rand(1, 1, 3, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 4), "smaller than one pooling window"),
    ],
)
def test_op_rejects_bad_arguments(args, match):
    with pytest.raises(RuntimeError, match=match):
        torch.ops.xvertfast.guided_pool(*args)


def test_python_face_checks_shapes():
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        guided_pool(torch.rand(1, 2, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 2)
    with pytest.raises(ValueError, match="pool must be"):
        guided_pool(torch.rand(1, 1, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 0)


def test_gradients_take_the_formula(seed):
    # with gradients asked for, guided_pool is the PyTorch formula: same values, same graph
    y, weight, bias = guidance_inputs(2, 3, 16, 20, dtype=torch.float64)
    weight.requires_grad_()
    got = guided_pool(y, weight, bias, 4)
    assert got.grad_fn is not None
    assert torch.equal(got, guided_pool_reference(y, weight, bias, 4))
    assert torch.autograd.gradcheck(lambda w: guided_pool(y, w, bias, 4), (weight,))


@needs_ext
def test_layer_and_stage_equal_with_and_without_gradients(seed):
    # eval forward without gradients (the fused op) against the same forward with them
    torch.manual_seed(0)
    stage = XVertNetStage(width=4, depth=3).eval()
    xp, y = torch.rand(2, 1, 45, 61), torch.randn(2, 1, 45, 61) * 0.1
    with torch.no_grad():
        fused = stage(xp, y)
        layer_fused = stage.guides[0](y)  # the deepest level: pool 2^(depth-1)
    formula = stage(xp, y)
    assert formula.requires_grad
    torch.testing.assert_close(fused, formula.detach(), rtol=1e-5, atol=1e-6)
    layer = GuidanceLayer(5, 2)
    with torch.no_grad():
        torch.testing.assert_close(layer(y), guided_pool_reference(layer.act(y), layer.conv.weight, layer.conv.bias, 4))
    # the deepest guide: width * 2^(depth - 1) = 16 maps pooled by 4, floor sizes
    assert layer_fused.shape == (2, 16, 45 // 4, 61 // 4)
    torch.testing.assert_close(layer_fused, guided_pool_reference(stage.guides[0].act(y), stage.guides[0].conv.weight.detach(),
                                                                  stage.guides[0].conv.bias.detach(), 4))  # fmt: skip
