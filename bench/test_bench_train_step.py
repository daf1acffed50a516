"""One XVertNet training step with the project's ops vs the same step with the pure-PyTorch losses.

    pytest bench/test_bench_train_step.py --benchmark-only [--benchmark-group-by=group]

Issue #5's setting: batch 8, 512 x 512 ROIs, width 64 (set XVF_BENCH_SMALL=1 for
batch 2, 256^2, width 16 when only a quick look is wanted). The network dominates the
step; the losses' share is what the loss ops change. A third variant runs the project's
losses with the guidance layers' PyTorch formula instead of the ``guided_pool`` op (on
the CPU, where the model uses the op).

Outside the timing, each variant's first step from the shared seed is checked: its loss and
gradients equal those of the reference step (the pure-PyTorch losses; for the guides'
formula, the step with the op), the step moves the weights, and every timed step's loss
is finite.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

from bench import SMALL
from bench.conftest import synchronized
from xvertfast.model import XVertNetStage
from xvertfast.ops.reference import gradient_correlation_reference, select_max_entropy_reference
from xvertfast.train import XVertNetLoss

BATCH, SIZE, WIDTH = (2, 256, 16) if SMALL else (8, 512, 64)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def reference_loss(out, y, feats, joint=True):
    l1 = (1 - gradient_correlation_reference(out, y)).mean()
    l2 = F.mse_loss(out, select_max_entropy_reference(feats.detach(), 256, True)[1])
    return l1 + l2


def make_step(device, use_ops: bool, losses: list | None = None):
    """One training step (forward, loss, backward, Adam) on fixed inputs, from seeded weights;
    each step's loss is appended to ``losses`` (a tensor: no synchronisation in the timing)."""
    torch.manual_seed(0)
    stage = XVertNetStage(WIDTH, 4).to(device)
    opt = torch.optim.Adam(stage.parameters(), lr=1e-3, betas=(0.9, 0.99))
    xp = torch.rand(BATCH, 1, SIZE, SIZE, device=device)
    y = xp - F.avg_pool2d(F.pad(xp, (2, 2, 2, 2), mode="reflect"), 5, stride=1)
    ops_loss = XVertNetLoss()

    def step():
        out, feats = stage(xp, y, return_features=True)
        loss = ops_loss(out, y, feats, True).total if use_ops else reference_loss(out, y, feats)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if losses is not None:
            losses.append(loss.detach())
        return loss

    step.stage = stage
    return step


def first_step(device, use_ops: bool) -> dict:
    """What one step from the seeded weights computes: its loss, the gradients, whether it moved
    the weights."""
    step = make_step(device, use_ops)
    before = [p.detach().clone() for p in step.stage.parameters()]
    loss = step().detach()
    params = list(step.stage.parameters())
    grads = torch.cat([p.grad.flatten() for p in params]).double()
    return {"loss": loss.double(), "grads": grads,
            "moved": any(not torch.equal(p.detach(), b) for p, b in zip(params, before))}  # fmt: skip


def check_step(step: dict, reference: dict | None = None) -> None:
    """A finite loss and gradients, weights moved; equal to ``reference``'s up to float32 rounding
    (the loss ops and the PyTorch formulas sum in other orders)."""
    assert torch.isfinite(step["loss"]) and torch.isfinite(step["grads"]).all() and step["moved"]
    if reference is not None:
        torch.testing.assert_close(step["loss"], reference["loss"], rtol=1e-4, atol=1e-5)
        error = (step["grads"] - reference["grads"]).norm() / reference["grads"].norm()
        assert error.item() <= 1e-3, f"gradients {error.item():.2e} (relative) from the reference step's"


def check_timed(losses: list) -> None:
    assert losses and all(bool(torch.isfinite(loss)) for loss in losses), "a timed step's loss is not finite"


@pytest.mark.kernel
@pytest.mark.parametrize("device", DEVICES)
def test_train_step_xvertfast_ops(benchmark, device):
    benchmark.group = f"train step b{BATCH} {SIZE}^2 w{WIDTH} {device}"
    losses = []
    benchmark.pedantic(synchronized(make_step(device, True, losses), device), rounds=2 if not SMALL else 6,
                       warmup_rounds=1)  # fmt: skip
    check_timed(losses)
    check_step(first_step(device, True), first_step(device, False))


@pytest.mark.parametrize("device", DEVICES)
def test_train_step_pytorch_losses(benchmark, device):
    benchmark.group = f"train step b{BATCH} {SIZE}^2 w{WIDTH} {device}"
    losses = []
    benchmark.pedantic(synchronized(make_step(device, False, losses), device), rounds=2 if not SMALL else 6,
                       warmup_rounds=1)  # fmt: skip
    check_timed(losses)
    check_step(first_step(device, False))  # the reference itself (compared with the ops in the test above)


def test_train_step_guides_formula(benchmark, monkeypatch):
    guided = importlib.import_module("xvertfast.ops.guided_pool")  # the package exports the function
    with_op = first_step("cpu", True)  # the reference: the same step with the guided_pool op
    monkeypatch.setattr(guided, "_use_kernel", lambda *args: False)
    benchmark.group = f"train step b{BATCH} {SIZE}^2 w{WIDTH} cpu"
    losses = []
    benchmark.pedantic(make_step("cpu", True, losses), rounds=2 if not SMALL else 6, warmup_rounds=1)
    check_timed(losses)
    check_step(first_step("cpu", True), with_op)
