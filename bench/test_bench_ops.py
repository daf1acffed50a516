"""Kernel timings of the compiled ops against their pure-PyTorch references, same run, same inputs.

    pytest bench/test_bench_ops.py --benchmark-only --benchmark-group-by=group
    python bench/report.py          # runs this file and prints the ratio table for RESULTS.md

Sizes are those of issue #2: GC forward+backward on 8x512x512 and
select_max_entropy on 8x128x512x512 (the last decoder level of a width-64
XVertNet on a batch of 512x512 ROIs); the guidance layers' fused conv + max-pool
(inference, CPU) on two 512x512 ROIs. Inputs come from the tests' generators. Each xvertfast
benchmark checks its result against its reference once, outside the timing (the tests'
tolerances), so a fast but wrong kernel fails here too.
"""

from __future__ import annotations

import pytest
import torch

from bench.conftest import synchronized
from tests.ops.test_entropy import features
from tests.ops.test_gradient_correlation import pair
from tests.ops.test_guided_pool import guidance_inputs
from xvertfast.ops import gradient_correlation_loss, select_max_entropy
from xvertfast.ops.reference import (
    gradient_correlation_reference,
    guided_pool_reference,
    select_max_entropy_reference,
)

GC_SHAPE = (8, 1, 512, 512)
ENTROPY_SHAPE = (8, 128, 512, 512)

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def gc_step(loss_fn, a, b):
    def step():
        a.grad = None
        loss = loss_fn(a, b)
        loss.backward()
        return loss

    return step


def reference_gc_loss(a, b):
    return (1.0 - gradient_correlation_reference(a, b)).mean()


@pytest.fixture(scope="module")
def gc_inputs():
    cache = {}

    def get(device):
        if device not in cache:
            torch.manual_seed(0)
            a, b = pair(GC_SHAPE, torch.float32, device)
            cache[device] = (a.requires_grad_(), b)
        return cache[device]

    return get


@pytest.fixture(scope="module")
def entropy_inputs():
    cache = {}

    def get(device):
        if device not in cache:
            torch.manual_seed(0)
            cache.clear()  # keep one 1 GiB tensor alive at a time
            cache[device] = features(ENTROPY_SHAPE, torch.float32, device)
        return cache[device]

    return get


def check_gc(loss, a, b):
    """The last timed step's loss and gradient against the reference's in float64 (tests' tolerances)."""
    a64 = a.detach().double().requires_grad_()
    want = reference_gc_loss(a64, b.double())
    want.backward()
    torch.testing.assert_close(loss.detach().double(), want.detach(), rtol=1e-5, atol=1e-5)
    tol = 1e-5 * a64.grad.abs().max().item()
    torch.testing.assert_close(a.grad.double(), a64.grad, rtol=0, atol=tol)


@pytest.mark.kernel
@pytest.mark.parametrize("device", DEVICES)
def test_gc_forward_backward_xvertfast(benchmark, gc_inputs, device):
    benchmark.group = f"gc fwd+bwd 8x512x512 {device}"
    a, b = gc_inputs(device)
    loss = benchmark(synchronized(gc_step(gradient_correlation_loss, a, b), device))
    check_gc(loss, a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_gc_forward_backward_reference(benchmark, gc_inputs, device):
    benchmark.group = f"gc fwd+bwd 8x512x512 {device}"
    a, b = gc_inputs(device)
    benchmark(synchronized(gc_step(reference_gc_loss, a, b), device))


#: the reference's result per device, kept by its benchmark (which runs first) for the check below
ENTROPY_REFERENCE: dict = {}


@pytest.mark.parametrize("device", DEVICES)
def test_select_max_entropy_reference(benchmark, entropy_inputs, device):
    benchmark.group = f"select_max_entropy 8x128x512x512 {device}"
    x = entropy_inputs(device)
    out = benchmark.pedantic(synchronized(lambda: select_max_entropy_reference(x), device), rounds=3, warmup_rounds=1)
    ENTROPY_REFERENCE[device] = out


@pytest.mark.kernel
@pytest.mark.parametrize("device", DEVICES)
def test_select_max_entropy_xvertfast(benchmark, entropy_inputs, device):
    benchmark.group = f"select_max_entropy 8x128x512x512 {device}"
    x = entropy_inputs(device)
    index, maps = benchmark.pedantic(synchronized(lambda: select_max_entropy(x), device), rounds=5, warmup_rounds=1)
    want_index, want_maps = ENTROPY_REFERENCE.get(device) or select_max_entropy_reference(x)
    assert torch.equal(index.long(), want_index.long()), (index, want_index)
    torch.testing.assert_close(maps, want_maps, rtol=1e-6, atol=1e-7)


# The guidance layers of one stage of the default model's architecture (width 16, depth 4)
# on a batch of two 512x512 ROIs: 32/64/128 maps pooled by 2/4/8 (level 0 is a plain conv).
GUIDE_LEVELS = [(32, 2), (64, 4), (128, 8)]


@pytest.fixture(scope="module")
def guide_inputs():
    torch.manual_seed(0)
    y, _, _ = guidance_inputs(2, 1, 512, 512)
    return y, [guidance_inputs(1, c, 3, 3)[1:] + (pool,) for c, pool in GUIDE_LEVELS]


def guided_pool_kernel(y, weight, bias, pool):
    """The compiled op itself (the public wrapper may choose the formula), its pooled maps only."""
    return torch.ops.xvertfast.guided_pool(y, weight, bias, pool)[0]


def guides(fn, y, levels):
    def run():
        with torch.no_grad():
            return [fn(y, w, b, pool) for w, b, pool in levels]

    return run


@pytest.mark.kernel
def test_guided_pool_xvertfast(benchmark, guide_inputs):
    benchmark.group = "guidance layers 2x512x512, width 16 cpu"
    got = benchmark(guides(guided_pool_kernel, *guide_inputs))
    for g, w in zip(got, guides(guided_pool_reference, *guide_inputs)(), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_guided_pool_reference(benchmark, guide_inputs):
    benchmark.group = "guidance layers 2x512x512, width 16 cpu"
    benchmark(guides(guided_pool_reference, *guide_inputs))


# Training: forward + backward of the same three layers on the default model's training batch
# (8 patches of 256x256), gradients for the kernels and biases (Y itself needs none).
@pytest.fixture(scope="module")
def guide_train_inputs():
    torch.manual_seed(0)
    y, _, _ = guidance_inputs(8, 1, 256, 256)
    levels = []
    for c, pool in GUIDE_LEVELS:
        w, b = guidance_inputs(1, c, 3, 3)[1:]
        levels.append((w.requires_grad_(), b.requires_grad_(), pool))
    return y, levels


def guides_step(fn, y, levels):
    def run():
        params = [t for w, b, _ in levels for t in (w, b)]
        loss = sum(fn(y, w, b, pool).square().mean() for w, b, pool in levels)
        return torch.autograd.grad(loss, params)

    return run


@pytest.mark.kernel
def test_guided_pool_train_xvertfast(benchmark, guide_train_inputs):
    benchmark.group = "guidance layers fwd+bwd 8x256x256, width 16 cpu"
    got = benchmark(guides_step(guided_pool_kernel, *guide_train_inputs))
    for g, w in zip(got, guides_step(guided_pool_reference, *guide_train_inputs)(), strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_guided_pool_train_reference(benchmark, guide_train_inputs):
    benchmark.group = "guidance layers fwd+bwd 8x256x256, width 16 cpu"
    benchmark(guides_step(guided_pool_reference, *guide_train_inputs))
