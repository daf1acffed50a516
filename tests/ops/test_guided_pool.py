"""The fused guidance-layer conv + max-pool against its PyTorch formula."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from tests.conftest import DEVICES
from xvertfast._extension import has_extension
from xvertfast.model import XVertNetStage
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


def exact_guidance_inputs(batch, channels, h, w, device="cpu"):
    """:func:`guidance_inputs` on a grid where the 3x3 convolution is exact in float32 (y in
    64ths, weights and bias in 8ths: every product and sum fits the mantissa). The kernel and
    PyTorch's convolution sum in different orders; on this grid they get the same values, so a
    window's maximum is either clearly first or an exact tie, never a rounding apart (random
    float inputs made the two pick different maxima, about once in a thousand CI runs)."""
    y, weight, bias = guidance_inputs(batch, channels, h, w, device=device)
    return torch.round(y * 64) / 64, torch.round(weight * 8) / 8, torch.round(bias * 8) / 8


#: The step of gradcheck and gradgradcheck (their default eps).
GRADCHECK_EPS = 1e-6


def closest_window_gap(y, weight, bias, pool) -> float:
    """The smallest distance between the two largest conv outputs of a pooling window (inf: no
    window of two or more)."""
    if pool < 2:
        return float("inf")
    g = guided_pool_reference(y, weight, bias, 1)
    b, c, h, w = g.shape
    g = g[..., : h // pool * pool, : w // pool * pool].reshape(b, c, h // pool, pool, w // pool, pool)
    top = g.transpose(3, 4).reshape(-1, pool * pool).topk(2, dim=1).values
    return float((top[:, 0] - top[:, 1]).min())


def without_near_ties(draw, pool):
    """``draw()`` (y, weight, bias), drawn again until no step of gradcheck can change which conv
    output is a window's maximum. A step of eps in one pixel of y moves each output by at most eps
    |weight| and in one weight by at most eps |y| (a bias step moves a channel's outputs alike),
    so the gap between two outputs by at most 2 eps max(|y|, |weight|); required: twice that.
    Plain random draws put two outputs that close in 1 to 3 seeds of 20000 per test, and the
    numerical derivative then straddled the switch of the maximum (a Jacobian mismatch)."""
    for _ in range(50):
        y, weight, bias = draw()
        reach = 2 * GRADCHECK_EPS * max(float(y.abs().max()), float(weight.abs().max()))
        if closest_window_gap(y, weight, bias, pool) > 2 * reach:
            return y, weight, bias
    raise AssertionError("50 draws in a row had a near tie in a pooling window")


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("pool", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (2, 5, 37, 53), (3, 16, 64, 48), (1, 128, 33, 71)])
def test_op_matches_reference(seed, device, dtype, pool, shape):
    y, weight, bias = guidance_inputs(*shape, dtype=dtype, device=device)
    if shape[2] < pool or shape[3] < pool:
        pytest.skip("image smaller than a window")
    got = torch.ops.xvertfast.guided_pool(y, weight, bias, pool)[0]
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
    torch.testing.assert_close(torch.ops.xvertfast.guided_pool(y, weight, bias, 2)[0],
                               guided_pool_reference(y, weight, bias, 2))  # fmt: skip


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_op_propagates_nan_like_max_pool(device):
    y, weight, bias = guidance_inputs(1, 3, 16, 16, device=device)
    y[0, 0, 5, 9] = float("nan")
    got = torch.ops.xvertfast.guided_pool(y, weight, bias, 4)[0]
    want = guided_pool_reference(y, weight, bias, 4)
    assert torch.equal(got.isnan(), want.isnan()) and want.isnan().any()
    torch.testing.assert_close(got[~got.isnan()], want[~want.isnan()])


@needs_ext
def test_opcheck(seed):
    y, weight, bias = guidance_inputs(2, 4, 20, 24, dtype=torch.float64)
    torch.library.opcheck(torch.ops.xvertfast.guided_pool, (y, weight, bias, 4))
    y.requires_grad_()
    weight.requires_grad_()
    torch.library.opcheck(torch.ops.xvertfast.guided_pool, (y, weight, bias.requires_grad_(), 4))


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pool", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1, 6, 7), (2, 3, 13, 11)])
def test_gradcheck(seed, device, pool, shape):
    # random inputs without the flat patch: a tie inside a window has no derivative
    def draw():
        return (torch.randn(shape[0], 1, *shape[2:], dtype=torch.float64, device=device),
                torch.randn(shape[1], 1, 3, 3, dtype=torch.float64, device=device),
                torch.randn(shape[1], dtype=torch.float64, device=device))  # fmt: skip

    y, weight, bias = (t.requires_grad_() for t in without_near_ties(draw, pool))
    op = lambda *t: torch.ops.xvertfast.guided_pool(*t, pool)[0]  # noqa: E731
    assert torch.autograd.gradcheck(op, (y, weight, bias))


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("pool", [2, 8])
def test_backward_matches_formula(seed, device, pool):
    # exact ties (the flat patch, and the grid's many equal values): both pick a window's first maximum
    y, weight, bias = exact_guidance_inputs(2, 16, 48, 40, device=device)
    grad = torch.randn(2, 16, 48 // pool, 40 // pool, device=device)
    got = torch.autograd.grad(torch.ops.xvertfast.guided_pool(y.requires_grad_(), weight.requires_grad_(),
                                                              bias.requires_grad_(), pool)[0], (y, weight, bias), grad)  # fmt: skip
    # The formula in float64 on the same values (the grid is exact in both: the same maxima), so
    # the tolerances are the op's own rounding, not that of PyTorch's float32 sums beside it (at
    # 1e-4 those used up to 0.34 of the bias's over 2000 seeds). The op sums the weight and bias
    # gradients in double and rounds each once to float32: within one ulp (2^-23 relative) plus
    # the double sums' error. It sums each pixel's image gradient in float32, at most 9 C products
    # g w (a tap of each channel's window maximum): the recursive-summation bound (9 C + 1) u
    # sum |g w|, sum |g w| the same scatter of |grad| through |weight| (max_unpool + transposed conv).
    y64, weight64, bias64 = (t.detach().double().requires_grad_() for t in (y, weight, bias))
    want = torch.autograd.grad(guided_pool_reference(y64, weight64, bias64, pool), (y64, weight64, bias64),
                               grad.double())  # fmt: skip
    conv = torch.nn.functional.conv2d(y64.detach(), weight64.detach(), bias64.detach(), padding=1)
    _, where = torch.nn.functional.max_pool2d(conv, pool, return_indices=True)
    scattered = torch.nn.functional.max_unpool2d(grad.double().abs(), where, pool, output_size=conv.shape[-2:])
    magnitude = torch.nn.functional.conv_transpose2d(scattered, weight64.detach().abs(), padding=1)
    u = torch.finfo(torch.float32).eps / 2
    y_bound = (9 * weight.shape[0] + 1) * u * magnitude + 1e-12
    assert torch.all((got[0].double() - want[0]).abs() <= y_bound), "grad of y"
    for g, w, name in zip(got[1:], want[1:], ("weight", "bias")):
        torch.testing.assert_close(g.double(), w, rtol=2 * u, atol=1e-9, msg=f"grad of {name}")


@needs_ext
def test_backward_deterministic_across_thread_counts(seed):
    y, weight, bias = guidance_inputs(3, 32, 96, 80)
    grad = torch.randn(3, 32, 24, 20)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(torch.ops.xvertfast.guided_pool_backward(
                grad, y, weight, torch.ops.xvertfast.guided_pool(y, weight, bias, 4)[1], 4, True))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


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
        torch.ops.xvertfast.guided_pool(*args)[0]


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_backward_of_an_empty_batch_gives_zero_gradients(device):
    # each launcher writes the weight and bias gradients itself (the glue allocates them
    # uninitialised): on the CPU its channel loop, on CUDA a memset where no kernel runs
    y, weight, bias = guidance_inputs(0, 3, 8, 8, device=device)
    out, argmax = torch.ops.xvertfast.guided_pool(y, weight, bias, 2)
    assert out.shape == (0, 3, 4, 4)
    grad_y, grad_w, grad_b = torch.ops.xvertfast.guided_pool_backward(torch.ones_like(out), y, weight, argmax, 2, True)
    assert grad_y.shape == y.shape
    assert torch.equal(grad_w, torch.zeros_like(weight)) and torch.equal(grad_b, torch.zeros_like(bias))


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_backward_without_channels_gives_a_zero_input_gradient(device):
    # no channel passes any gradient to y: zeros (the CUDA launcher returned before writing it)
    y = torch.rand(2, 1, 8, 8, device=device)
    weight, bias = torch.rand(0, 1, 3, 3, device=device), torch.rand(0, device=device)
    out, argmax = torch.ops.xvertfast.guided_pool(y, weight, bias, 2)
    assert out.shape == (2, 0, 4, 4)
    grad_y, grad_w, grad_b = torch.ops.xvertfast.guided_pool_backward(torch.ones_like(out), y, weight, argmax, 2, True)
    assert torch.equal(grad_y, torch.zeros_like(y)) and grad_w.shape == weight.shape and grad_b.shape == bias.shape


@needs_ext
@pytest.mark.cuda
def test_backward_rejects_grad_or_argmax_off_the_device():
    y, weight, bias = guidance_inputs(1, 3, 8, 8, device="cuda")
    out, argmax = torch.ops.xvertfast.guided_pool(y, weight, bias, 2)
    for grad, idx in ((out.cpu(), argmax), (out, argmax.cpu())):
        with pytest.raises(RuntimeError, match="must be on"):
            torch.ops.xvertfast.guided_pool_backward(grad, y, weight, idx, 2, True)


def test_python_face_checks_shapes():
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        guided_pool(torch.rand(1, 2, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 2)
    with pytest.raises(ValueError, match="pool must be"):
        guided_pool(torch.rand(1, 1, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3), 0)


def test_python_face_checks_types_devices_and_sizes():
    # these reached torch (or the reference) unchecked: a NumPy y gave "'numpy.ndarray' object has no
    # attribute 'dim'", mixed dtypes conv2d's "Input type (double) and bias type (float)", a weight on
    # another device a meta result, an image smaller than the pool max_pool2d's "Output size is too
    # small", where the docstring promises [B, C, H // pool, W // pool]; pool=True was pool 1
    y, weight, bias = torch.rand(2, 1, 8, 8), torch.rand(3, 1, 3, 3), torch.rand(3)
    with pytest.raises(TypeError, match="guided_pool: y must be a torch.Tensor, got ndarray"):
        guided_pool(y.numpy(), weight, bias, 2)
    with pytest.raises(TypeError, match="guided_pool: bias must be a torch.Tensor, got NoneType"):
        guided_pool(y, weight, None, 2)
    with pytest.raises(TypeError, match="guided_pool: y must be a floating-point tensor"):
        guided_pool(y.int(), weight.int(), bias.int(), 2)
    with pytest.raises(TypeError, match="must share a dtype, got torch.float64, torch.float32"):
        guided_pool(y.double(), weight, bias, 2)
    with pytest.raises(ValueError, match="must be on one device, got cpu, meta and cpu"):
        guided_pool(y, weight.to("meta"), bias, 2)
    # (a float or many-element tensor gave torch's "only integer tensors of a single element ...")
    for bad in (True, 2.0, 0, torch.tensor(2.0), torch.tensor([2, 2]), torch.tensor([2]), np.int64(0)):
        with pytest.raises(ValueError, match=r"^guided_pool: pool must be a whole number >= 1|^guided_pool: pool must "
                                             r"be a number or a 0-dim tensor of one; this tensor has shape"):  # fmt: skip
            guided_pool(y, weight, bias, bad)
    # a 0-dim tensor or array, a NumPy int: its number (the one rule for counts, xvertfast._checks)
    want = guided_pool(y, weight, bias, 2)
    for good in (torch.tensor(2), np.array(2), np.uint8(2)):
        torch.testing.assert_close(guided_pool(y, weight, bias, good), want)
    with pytest.raises(ValueError, match=r"^guided_pool: pool must be .*holds no value \(meta\)$"):
        guided_pool(y, weight, bias, torch.tensor(2, device="meta"))  # (was torch's "Tensor.item() cannot be called")
    for shape, pool in (((2, 1, 1, 8), 2), ((2, 1, 8, 3), 4), ((2, 1, 0, 8), 1)):
        with pytest.raises(ValueError, match="smaller than one pooling window"):
            guided_pool(torch.rand(shape), weight, bias, pool)
    torch.testing.assert_close(guided_pool(y, weight, bias, np.int64(2)), guided_pool(y, weight, bias, 2))
    torch.testing.assert_close(guided_pool(y, weight, bias, torch.tensor(2)), guided_pool(y, weight, bias, 2))


def test_python_face_is_differentiable(seed):
    y, weight, bias = guidance_inputs(2, 3, 16, 20, dtype=torch.float64)
    weight.requires_grad_()
    got = guided_pool(y, weight, bias, 4)
    assert got.grad_fn is not None
    torch.testing.assert_close(got, guided_pool_reference(y, weight, bias, 4))
    # no exact ties (a tie has no derivative), nor near ones: the noise is drawn again while a
    # gradcheck step could change a window's maximum
    noisy, _, _ = without_near_ties(lambda: (y + 0.01 * torch.rand_like(y), weight.detach(), bias), 4)
    assert torch.autograd.gradcheck(lambda w: guided_pool(noisy, w, bias, 4), (weight,))


@needs_ext
def test_stage_same_with_the_formula(seed, monkeypatch):
    # a small stage's output and parameter gradients with the op against the PyTorch formula
    module = importlib.import_module("xvertfast.ops.guided_pool")  # the package exports the function

    torch.manual_seed(0)
    stage = XVertNetStage(width=4, depth=3)
    xp, y = torch.rand(2, 1, 45, 61), torch.randn(2, 1, 45, 61) * 0.1

    def run():
        stage.zero_grad()
        out = stage(xp, y)
        (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
        return out.detach(), {n: p.grad.clone() for n, p in stage.named_parameters() if "guides" in n}

    fused, fused_grads = run()
    monkeypatch.setattr(module, "_use_kernel", lambda *args: False)
    formula, formula_grads = run()
    torch.testing.assert_close(fused, formula, rtol=1e-5, atol=1e-6)
    assert fused_grads.keys() == formula_grads.keys() and len(fused_grads) == 2 * 3
    for name in fused_grads:
        torch.testing.assert_close(fused_grads[name], formula_grads[name], rtol=1e-4, atol=1e-5, msg=name)
    # the deepest guide: width * 2^(depth - 1) = 16 maps pooled by 4, floor sizes
    layer = stage.guides[0]
    assert layer(y).shape == (2, 16, 45 // 4, 61 // 4)


@needs_ext
@pytest.mark.parametrize("pool", [2, 3])
def test_gradgradcheck_float64(seed, pool):
    # a gradient penalty differentiates the gradient (create_graph=True): the compiled backward
    # has no derivative, so that backward takes the op's maxima through PyTorch; it gave None
    def draw():
        return (torch.randn(2, 1, 7, 8, dtype=torch.float64), torch.randn(3, 1, 3, 3, dtype=torch.float64),
                torch.randn(3, dtype=torch.float64))  # fmt: skip

    y, weight, bias = (t.requires_grad_() for t in without_near_ties(draw, pool))  # no ties, nor near ones
    assert torch.autograd.gradgradcheck(lambda *t: guided_pool(*t, pool), (y, weight, bias))


@needs_ext
def test_gradient_penalty_matches_reference(seed):
    y, weight, bias = exact_guidance_inputs(2, 4, 12, 10)
    y, weight, bias = (t.double().requires_grad_() for t in (y, weight, bias))

    def penalty(fn):
        (gy,) = torch.autograd.grad(fn(y, weight, bias, 2).sum(), y, create_graph=True)
        return torch.autograd.grad((gy**2).sum() + gy.sum(), (y, weight, bias), allow_unused=True)

    got, want = penalty(guided_pool), penalty(guided_pool_reference)
    # the gradient is piecewise linear in y and constant in the bias: None or zeros for both
    for g, w, x, name in zip(got, want, (y, weight, bias), ("y", "weight", "bias")):
        g, w = (torch.zeros_like(x) if t is None else t for t in (g, w))
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10, msg=name)
    assert got[1] is not None and got[1].abs().sum() > 0


@needs_ext
def test_first_order_backward_stays_on_the_kernel(seed, monkeypatch):
    module = importlib.import_module("xvertfast.ops.guided_pool")
    y, weight, bias = guidance_inputs(2, 3, 12, 12)
    weight.requires_grad_(), y.requires_grad_()

    def fail(*args):
        raise AssertionError("the PyTorch backward ran without create_graph")

    monkeypatch.setattr(module, "_differentiable_backward", fail)
    grads = torch.autograd.grad(guided_pool(y, weight, bias, 2).sum(), (y, weight))
    assert all(torch.isfinite(g).all() for g in grads)
    with pytest.raises(AssertionError, match="without create_graph"):
        torch.autograd.grad(guided_pool(y, weight, bias, 2).sum(), y, create_graph=True)


@pytest.mark.parametrize("path", ["op", "formula", "reference"])
@pytest.mark.parametrize("pool", [1, 2, 3])
def test_a_conv_without_output_maps_gives_an_empty_result_on_every_path(path, pool, monkeypatch):
    # a weight [0, 1, 3, 3] (nn.Conv2d(1, 0, 3) builds one) is a valid input, as feature_entropy takes
    # maps without channels: the compiled op returned [B, 0, h, w], while pool 1, the formula (the
    # fallback without the extension, CUDA, meta) and the reference raised conv2d's "expected weight
    # to be at least 1 at dimension 0" or max_pool2d's "Expected 3D or 4D ... tensor"
    module = importlib.import_module("xvertfast.ops.guided_pool")
    if path == "op" and not has_extension():
        pytest.skip("compiled extension not built")
    if path == "formula":
        monkeypatch.setattr(module, "_use_kernel", lambda *args: False)
    fn = guided_pool_reference if path == "reference" else guided_pool
    y = torch.rand(2, 1, 8, 7, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(0, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.rand(0, dtype=torch.float64, requires_grad=True)
    out = fn(y, weight, bias, pool)
    assert out.shape == (2, 0, 8 // pool, 7 // pool) and out.dtype == y.dtype
    grad_y, grad_w, grad_b = torch.autograd.grad(out.sum(), (y, weight, bias), create_graph=True)
    assert torch.equal(grad_y, torch.zeros_like(y)) and grad_w.shape == weight.shape and grad_b.shape == bias.shape
    assert fn(y.detach().to("meta"), weight.detach().to("meta"), bias.detach().to("meta"), pool).shape == out.shape
