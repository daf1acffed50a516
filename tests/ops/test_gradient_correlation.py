"""Gradient correlation: the compiled op against its pure-PyTorch reference and against known values."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
import torch

from tests.conftest import DEVICES
from xvertfast._extension import has_extension
from xvertfast.ops import GC_EPS, gradient_correlation, gradient_correlation_loss
from xvertfast.ops.reference import gradient_correlation_reference

needs_ext = pytest.mark.skipif(not has_extension(), reason="compiled extension not built")

SHAPES = [(1, 3, 3), (2, 17, 23), (3, 1, 64, 48), (4, 1, 97, 131), (2, 5, 200)]


def pair(shape, dtype, device, mix=0.6):
    """A partly correlated pair of images: GC well away from 0 and 1."""
    a = torch.rand(shape, dtype=dtype, device=device)
    b = mix * a + (1 - mix) * torch.rand(shape, dtype=dtype, device=device)
    return a, b


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_reference(seed, device, dtype, shape):
    a, b = pair(shape, dtype, device)
    got = gradient_correlation(a, b)
    want = gradient_correlation_reference(a.double(), b.double()).to(dtype)
    assert got.shape == (shape[0],) and got.dtype == dtype and got.device == a.device
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=f"seed {seed}")


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_reference(seed, device, dtype, shape):
    a, b = pair(shape, dtype, device)
    w = torch.randn(shape[0], dtype=dtype, device=device)
    a64, b64 = a.double().requires_grad_(), b.double().requires_grad_()
    (gradient_correlation_reference(a64, b64) * w.double()).sum().backward()
    a.requires_grad_(), b.requires_grad_()
    (gradient_correlation(a, b) * w).sum().backward()
    for got, want in ((a.grad, a64.grad), (b.grad, b64.grad)):
        scale = want.abs().max().item()
        tol = (1e-5 if dtype == torch.float32 else 1e-12) * max(scale, 1e-30)
        torch.testing.assert_close(got, want.to(dtype), rtol=0, atol=tol, msg=f"seed {seed}")


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 1, 7, 9), (1, 5, 4), (3, 6, 6)])
def test_gradcheck_float64(seed, device, shape):
    a, b = pair(shape, torch.float64, device)
    a.requires_grad_(), b.requires_grad_()
    assert torch.autograd.gradcheck(gradient_correlation, (a, b), eps=1e-6, atol=1e-7)


def test_reference_gradcheck_float64(seed):
    a, b = pair((2, 1, 6, 7), torch.float64, "cpu")
    a.requires_grad_(), b.requires_grad_()
    assert torch.autograd.gradcheck(gradient_correlation_reference, (a, b))


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(seed, device, dtype):
    a, b = pair((2, 1, 11, 13), dtype, device)
    a.requires_grad_(), b.requires_grad_()
    torch.library.opcheck(torch.ops.xvertfast.gradient_correlation.default, (a, b, GC_EPS))
    gc, stats = torch.ops.xvertfast.gradient_correlation(a.detach(), b.detach(), GC_EPS)
    grad = torch.randn_like(gc)
    for need_a, need_b in ((True, True), (True, False), (False, True)):
        torch.library.opcheck(
            torch.ops.xvertfast.gradient_correlation_backward.default,
            (grad, a.detach(), b.detach(), stats, GC_EPS, need_a, need_b),
        )


@pytest.mark.parametrize("device", DEVICES)
def test_known_values(seed, device):
    a = torch.rand(3, 1, 40, 33, dtype=torch.float64, device=device)
    ones = torch.ones(3, device=device, dtype=torch.float64)
    torch.testing.assert_close(gradient_correlation(a, a), ones)
    torch.testing.assert_close(gradient_correlation(a, 2.5 * a + 7.0), ones)
    torch.testing.assert_close(gradient_correlation(a, -a), -ones)
    # Symmetric in its arguments.
    b = torch.rand_like(a)
    torch.testing.assert_close(gradient_correlation(a, b), gradient_correlation(b, a))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_images_are_defined(device, dtype):
    a = torch.full((2, 1, 16, 16), 0.5, dtype=dtype, device=device, requires_grad=True)
    b = torch.rand(2, 1, 16, 16, dtype=dtype, device=device, requires_grad=True)
    gc = gradient_correlation(a, b)
    assert torch.equal(gc, torch.zeros_like(gc))
    gc.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    c = torch.zeros(2, 1, 16, 16, dtype=dtype, device=device)
    assert torch.equal(gradient_correlation(c, c), torch.zeros(2, dtype=dtype, device=device))
    # A linear ramp has constant gradients: zero variance, still 0 and finite.
    ramp = (torch.arange(16, dtype=dtype, device=device) / 16).expand(2, 1, 16, 16)
    assert torch.equal(gradient_correlation(ramp, b.detach()), torch.zeros(2, dtype=dtype, device=device))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (1, 7), (7, 2), (3, 3)])
def test_tiny_images(device, hw):
    a = torch.rand(2, 1, *hw, device=device, requires_grad=True)
    b = torch.rand(2, 1, *hw, device=device, requires_grad=True)
    gc = gradient_correlation(a, b)
    # At most one valid pixel: no variance, so GC is 0 with finite (here zero) gradients.
    assert torch.equal(gc, torch.zeros(2, device=device))
    gc.sum().backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    if hw[0] < 3 or hw[1] < 3:
        assert torch.equal(a.grad, torch.zeros_like(a))


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_gradient_of_one_input_only(seed, device):
    # Training differentiates w.r.t. the network output only; the guidance image needs none.
    a, b = pair((3, 1, 41, 37), torch.float64, device)
    a.requires_grad_()
    (ga_only,) = torch.autograd.grad(gradient_correlation(a, b).sum(), a)
    b2 = b.clone().requires_grad_()
    ga_both, gb_both = torch.autograd.grad(gradient_correlation(a, b2).sum(), (a, b2))
    assert torch.equal(ga_only, ga_both)
    (gb_only,) = torch.autograd.grad(gradient_correlation(a.detach(), b2).sum(), b2)
    assert torch.equal(gb_only, gb_both)


@needs_ext
def test_compiled_op_rejects_bad_arguments_itself():
    # Direct torch.ops calls bypass the Python checks: the C++ glue must still refuse.
    op = torch.ops.xvertfast.gradient_correlation
    with pytest.raises(RuntimeError, match="same shape"):
        op(torch.rand(2, 8, 8), torch.rand(2, 8, 9), GC_EPS)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        op(torch.rand(2, 8, 8).half(), torch.rand(2, 8, 8).half(), GC_EPS)
    with pytest.raises(RuntimeError, match="same dtype"):
        op(torch.rand(2, 8, 8), torch.rand(2, 8, 8, dtype=torch.float64), GC_EPS)
    with pytest.raises(RuntimeError, match=r"\[B, 1, H, W\]"):
        op(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), GC_EPS)


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_across_runs_and_threads(seed, device):
    a, b = pair((4, 1, 131, 77), torch.float32, device)
    a.requires_grad_()
    results = []
    threads = torch.get_num_threads()
    for n in (1, max(2, threads)):
        torch.set_num_threads(n)
        try:
            gc = gradient_correlation(a, b)
            (grad,) = torch.autograd.grad(gc.sum(), a)
        finally:
            torch.set_num_threads(threads)
        results.append((gc, grad))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_loss_is_mean_of_one_minus_gc(seed):
    a, b = pair((3, 1, 20, 20), torch.float64, "cpu")
    torch.testing.assert_close(gradient_correlation_loss(a, b), (1 - gradient_correlation(a, b)).mean())


@pytest.mark.parametrize("shape", [(0, 8, 8), (0, 1, 8, 8)])
def test_the_loss_of_an_empty_batch_is_refused_not_nan(shape):
    # the mean over no sample was NaN, without a word
    assert gradient_correlation(torch.rand(shape), torch.rand(shape)).shape == (0,)  # (GC itself: no sample, none)
    with pytest.raises(ValueError, match=rf"^gradient_correlation_loss: a and b hold no sample \(shape "
                                         rf"{re.escape(str(shape))}\): a loss is a mean over at least one$"):  # fmt: skip
        gradient_correlation_loss(torch.rand(shape), torch.rand(shape))


def test_half_precision_inputs_compute_in_float32(seed):
    a, b = pair((2, 1, 24, 24), torch.float32, "cpu")
    got = gradient_correlation(a.bfloat16(), b.bfloat16())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, gradient_correlation_reference(a.bfloat16().float(), b.bfloat16().float()))


def test_channels_last_and_strided_inputs(seed):
    a, b = pair((2, 1, 30, 40), torch.float32, "cpu")
    at = a.transpose(2, 3).contiguous().transpose(2, 3)  # same values, non-contiguous
    torch.testing.assert_close(gradient_correlation(at, b), gradient_correlation(a, b))


@pytest.mark.parametrize(
    "a, b, error, match",
    [
        (torch.rand(2, 8, 8), torch.rand(2, 8, 9), ValueError, "same shape"),
        (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), ValueError, r"\[B, H, W\]"),
        (torch.rand(8, 8), torch.rand(8, 8), ValueError, r"\[B, H, W\]"),
        (torch.ones(2, 8, 8, dtype=torch.int32), torch.ones(2, 8, 8, dtype=torch.int32), TypeError,
         r"floating-point tensor, got torch\.int32: give a\.float\(\)$"),  # (told the dtype alone)
        (torch.ones(2, 8, 8), torch.ones(2, 8, 8, dtype=torch.complex64), TypeError,
         r"b must be a floating-point tensor, got torch\.complex64$"),  # (no grey levels: no conversion offered)
    ],
)
def test_bad_inputs_raise_clear_errors(a, b, error, match):
    with pytest.raises(error, match=match):
        gradient_correlation(a, b)


def test_numpy_images_give_numpy_as_wls_does(seed):
    """A notebook's NumPy images were refused ("a must be a torch.Tensor, got ndarray") where
    xvertfast.wls took them: the same rule now, NumPy in and NumPy out; a tensor beside one keeps
    the result a tensor (its gradient path)."""
    a, b = pair((2, 1, 24, 20), torch.float64, "cpu")
    want = gradient_correlation(a, b)
    got = gradient_correlation(a.numpy(), b.numpy())
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    loss = gradient_correlation_loss(a.numpy().astype(np.float32), b.numpy().astype(np.float32))
    assert isinstance(loss, np.floating) and loss.dtype == np.float32
    np.testing.assert_allclose(loss, (1 - want).mean().item(), rtol=1e-5)
    mixed = gradient_correlation(a.numpy(), b.requires_grad_())
    assert isinstance(mixed, torch.Tensor) and mixed.requires_grad
    with pytest.raises(TypeError, match=r"^gradient_correlation: b must be a floating-point array, got a NumPy array "
                                        r"of uint8: give b\.astype\(np\.float32\)$"):  # fmt: skip
        gradient_correlation(a.numpy(), np.zeros((2, 1, 24, 20), np.uint8))
    with pytest.raises(TypeError, match=r"^gradient_correlation: a must be a NumPy array or a torch tensor, got list$"):
        gradient_correlation([[0.0]], b)


def test_a_numpy_array_beside_a_tensor_on_another_device_is_told_how_to_bring_them_together():
    """A notebook's NumPy image beside a CUDA tensor was refused with "got cpu and cuda:0", as if the
    array were a tensor to move. Tried on the meta device (no GPU here; the check is the same for
    any device but the CPU): the hint given is then taken (the op's shapes, meta in, meta out)."""
    image = np.random.default_rng(0).random((2, 16, 16)).astype(np.float32)
    elsewhere = torch.zeros(2, 16, 16, device="meta")
    numpy, meta = r"a NumPy array \(on the CPU\)", "a tensor on meta"
    for a, b, array, tensor, got in ((image, elsewhere, "a", "b", f"{numpy} and {meta}"),
                                     (elsewhere, image, "b", "a", f"{meta} and {numpy}")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"^gradient_correlation: a and b must be on the same device, got {got}: "
                                             rf"give {array} as a tensor on {tensor}'s device, torch\.as_tensor\({array}, "
                                             rf"device={tensor}\.device\), or {tensor} on the CPU, {tensor}\.cpu\(\)$"):  # fmt: skip
            gradient_correlation(a, b)
    assert gradient_correlation(torch.as_tensor(image, device=elsewhere.device), elsewhere).shape == (2,)
    with pytest.raises(ValueError, match=r"^gradient_correlation: a and b must be on the same device, got cpu and "
                                         r"meta: move one to the other's, a\.to\(b\.device\) or b\.to\(a\.device\)$"):  # fmt: skip
        gradient_correlation(torch.from_numpy(image), elsewhere)


@pytest.mark.parametrize("shape, hint", [
    ((16, 16), r"\(one image \[H, W\]: give a batch of one, a\[None\] and b\[None\]\)"),
    ((2, 3, 16, 12), r"\(3 channels per image: GC is of one-channel images; give one channel, a\[:, :1\] and b\[:, "
                     r":1\], or each channel as an image, a\.reshape\(-1, 16, 12\) and b\.reshape\(-1, 16, 12\)\)"),
], ids=["one image", "channels"])  # fmt: skip
def test_images_in_another_layout_are_told_how_to_give_them(shape, hint):
    """One [H, W] image, or maps of several channels, were told the shapes taken and no more."""
    a = torch.rand(shape)
    with pytest.raises(ValueError, match=rf"^gradient_correlation: inputs must be \[B, H, W\] or \[B, 1, H, W\], "
                                         rf"got {re.escape(str(shape))} {hint}$"):  # fmt: skip
        gradient_correlation(a, a.clone())
    fixed = (a[None], a[None]) if len(shape) == 2 else (a.reshape(-1, *shape[-2:]), a.reshape(-1, *shape[-2:]))
    assert gradient_correlation(*fixed).shape == (fixed[0].shape[0],)  # (the hint is taken)


@pytest.mark.parametrize("shape, what", [((16, 16, 3), r"a colour image"), ((16, 16, 1), r"a grey image \[H, W, 1\]"),
                                         ((6, 9, 2), r"a grey image with alpha")])  # fmt: skip
def test_one_image_with_its_channels_last_is_refused_not_taken_as_strips(shape, what):
    """[H, W, 3] was taken as H images 3 pixels wide: one GC a row, of meaningless numbers. (In wls's
    words: xvertfast._pixels.strips_or_one_image.)"""
    a = np.random.default_rng(0).random(shape).astype(np.float32)
    read = "; xvertfast.io.read_image gives a colour file's luminance" if shape[2] == 3 else ""
    with pytest.raises(ValueError, match=rf"^gradient_correlation: a and b of shape {re.escape(str(shape))} look like "
                                         rf"one image with its channels last, not a batch of images {shape[2]} "
                                         rf"pixels? wide \({what}: give one channel as a batch of one \[1, H, W\], "
                                         rf"a\[None, \.\.\., 0\] and b\[None, \.\.\., 0\]{re.escape(read)}\)$"):  # fmt: skip
        gradient_correlation(a, a.copy())
    assert gradient_correlation(a[None, ..., 0], a[None, ..., 0]).shape == (1,)  # (the hint is taken)
    # a batch of up to 4 small images (5 x 4: a colour image of 1 row as much) and tiny ones are still taken
    for small in ((1, 5, 4), (4, 8, 3), (3, 5, 4), (40, 3, 3)):
        assert gradient_correlation(torch.rand(small), torch.rand(small)).shape == (small[0],)


@needs_ext
def test_torch_compile_fullgraph(seed):
    a, b = pair((2, 1, 33, 35), torch.float32, "cpu")

    def loss_fn(x, y):
        return gradient_correlation_loss(x * 1.5, y)

    compiled = torch.compile(loss_fn, fullgraph=True, backend="aot_eager")
    x = a.clone().requires_grad_()
    y = a.clone().requires_grad_()
    loss_c = compiled(x, b)
    loss_c.backward()
    loss_e = loss_fn(y, b)
    loss_e.backward()
    torch.testing.assert_close(loss_c, loss_e)
    torch.testing.assert_close(x.grad, y.grad)


# (eps, scale of a near-flat pair): scales where eps is a sizeable part of var_a * var_b
EPS_CASES = [(1e-12, 1e-3), (1e-2, 0.05)]


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps, scale", EPS_CASES)
def test_forward_and_backward_match_reference_at_the_given_eps(seed, device, dtype, eps, scale):
    a, b = (t * scale for t in pair((3, 1, 30, 26), dtype, device))
    a64, b64 = a.double().requires_grad_(), b.double().requires_grad_()
    want = gradient_correlation_reference(a64, b64, eps)
    ncc_a = torch.stack([gradient_correlation_reference(a64, b64, e) for e in (0.0, GC_EPS if eps != GC_EPS else 1e-2)])
    assert (ncc_a - want).abs().amin(0).max() > 0.05  # eps matters on this pair: 0 or another eps gives another GC
    w = torch.randn(3, dtype=dtype, device=device)
    (want * w.double()).sum().backward()
    a.requires_grad_(), b.requires_grad_()
    got = gradient_correlation(a, b, eps)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(got, want.detach().to(dtype), rtol=tol, atol=tol, msg=f"seed {seed}")
    (got * w).sum().backward()
    for g, ref in ((a.grad, a64.grad), (b.grad, b64.grad)):
        torch.testing.assert_close(g, ref.to(dtype), rtol=0, atol=tol * ref.abs().max().item(), msg=f"seed {seed}")


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("eps, scale", EPS_CASES)
def test_gradcheck_float64_at_the_given_eps(seed, device, eps, scale):
    a, b = (t * scale for t in pair((2, 1, 7, 9), torch.float64, device))
    a.requires_grad_(), b.requires_grad_()
    assert torch.autograd.gradcheck(lambda p, q: gradient_correlation(p, q, eps), (a, b), eps=1e-6 * scale,
                                    atol=1e-7)  # fmt: skip


@needs_ext
@pytest.mark.parametrize("shape", [(2, 1, 6, 7), (1, 5, 5)])
def test_gradgradcheck_float64(seed, shape):
    # a gradient penalty differentiates the gradient (create_graph=True): the compiled backward
    # has no derivative, so that backward goes through the reference; it used to give None
    a, b = pair(shape, torch.float64, "cpu")
    a.requires_grad_(), b.requires_grad_()
    assert torch.autograd.gradgradcheck(gradient_correlation, (a, b), eps=1e-6, atol=1e-6)


@needs_ext
def test_gradient_penalty_matches_reference(seed):
    a, b = pair((2, 16, 16), torch.float64, "cpu")
    a.requires_grad_(), b.requires_grad_()

    def penalty(fn):
        (ga,) = torch.autograd.grad(fn(a, b).sum(), a, create_graph=True)
        return torch.autograd.grad((ga**2).sum(), (a, b))

    got, want = penalty(gradient_correlation), penalty(lambda p, q: gradient_correlation_reference(p, q, GC_EPS))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


@needs_ext
def test_first_order_backward_stays_on_the_kernel(seed, monkeypatch):
    module = importlib.import_module("xvertfast.ops.gradient_correlation")
    a, b = pair((2, 1, 12, 12), torch.float64, "cpu")
    a.requires_grad_()

    def fail(*args):
        raise AssertionError("the reference backward ran without create_graph")

    monkeypatch.setattr(module, "_reference_backward", fail)
    (grad,) = torch.autograd.grad(gradient_correlation(a, b).sum(), a)
    assert torch.isfinite(grad).all()
    with pytest.raises(AssertionError, match="without create_graph"):
        torch.autograd.grad(gradient_correlation(a, b).sum(), a, create_graph=True)


@pytest.mark.parametrize("eps", [-1.0, -1e-12, float("nan"), float("inf"), True, "1e-12", None])
def test_eps_must_be_finite_and_non_negative(eps):
    # eps=-1 used to return NaN silently (a negative number under the square root)
    a, b = pair((2, 8, 8), torch.float32, "cpu")
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        gradient_correlation(a, b, eps)
    with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
        gradient_correlation_loss(a, b, eps)


def test_eps_zero_is_the_plain_ncc(seed):
    a, b = pair((2, 12, 12), torch.float64, "cpu")
    torch.testing.assert_close(gradient_correlation(a, b, 0), gradient_correlation_reference(a, b, 0.0))
    # documented: without the guard an image without gradient variance is 0 / 0
    flat = torch.full((2, 12, 12), 0.5, dtype=torch.float64)
    assert torch.isnan(gradient_correlation(flat, b, 0.0)).all()
    assert torch.equal(gradient_correlation(flat, b, GC_EPS), torch.zeros(2, dtype=torch.float64))


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
def test_a_large_common_offset_costs_float32_nothing(seed, device):
    # the kernel summed each side of the Sobel stencil before the difference, in the input's
    # precision: on float32 images near 1e4 its GC erred by 1e-4 (2.4x the float32 reference's),
    # near 1e6 by 4e-2; differences of neighbours first are exact, whatever the offset
    for offset in (1e2, 1e4, 1e6):
        a, b = pair((4, 1, 40, 48), torch.float64, device)
        a, b = (a + offset).float(), (b + offset).float()
        exact = gradient_correlation_reference(a.double(), b.double())  # of the same float32 values
        err = (gradient_correlation(a, b).double() - exact).abs().max().item()
        assert err < 1e-6, (offset, err)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_or_inf_pixel_makes_its_samples_gc_nan_alone(seed, device, bad):
    """Pins what docs/guide/ops.md says: the op refuses no value; a NaN or infinite pixel makes
    its own sample's GC (and so the loss's mean) NaN, in the op and the reference alike."""
    gen = torch.Generator().manual_seed(seed)
    a, b = (torch.rand(3, 1, 12, 12, generator=gen).to(device) for _ in range(2))
    a[1, 0, 5, 6] = bad
    for gc in (gradient_correlation(a, b), gradient_correlation_reference(a, b)):
        assert gc.isnan().tolist() == [False, True, False]
    assert gradient_correlation_loss(a, b).isnan()


@pytest.mark.parametrize("device", DEVICES)
def test_the_float32_reference_reads_no_gradient_where_an_image_has_none_whatever_its_scale(device):
    """The reference's Sobel was a convolution, which sums each side of the stencil before the
    difference: on a float32 step of height 1e10 its y-response, 0, read -1024 in places, and NCC
    (blind to scale) took that rounding for a gradient: GC against a random image 0.0434 at height
    1 read -0.0002 at 1e10, where the compiled op kept 0.0434. Differences first, as the kernels."""
    from xvertfast.ops.reference import sobel_reference

    step = torch.zeros(1, 1, 8, 8, device=device)
    step[..., 4:] = 1.0
    other = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0)).to(device)
    exact = gradient_correlation_reference(step.double(), other.double()).item()
    for height in (1.0, 1e5, 1e10, 1e15):
        assert (sobel_reference(step * height)[:, 1] == 0).all(), height  # (no y-gradient: exactly none)
        assert gradient_correlation_reference(step * height, other).item() == pytest.approx(exact, rel=1e-6), height


@pytest.mark.parametrize("device", DEVICES)
def test_only_the_guard_moves_gc_with_scale_as_documented(device):
    """Pins the docstring and docs/guide/ops.md: GC does not change with scale but where the
    responses' standard deviations multiply to less than about 1e-5, where eps pulls it towards 0
    (the example given: 0.72 reads 0.42 with both images scaled by 1e-3), in the op and the reference."""
    b, a = (torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(s), dtype=torch.float64) for s in (0, 1))
    a = (a + b) / 2
    a, b = a.to(device), b.to(device)
    for gc in (gradient_correlation, gradient_correlation_reference):
        assert gc(a, b).item() == pytest.approx(0.72, abs=0.005)
        assert gc(a * 1e-2, b * 1e-2).item() == pytest.approx(gc(a, b).item(), rel=1e-3)  # std product ~7e-5
        assert gc(a * 1e-3, b * 1e-3).item() == pytest.approx(0.42, abs=0.005)


@pytest.mark.parametrize("device", DEVICES)
def test_float32_values_near_its_limit_are_as_documented(device):
    """Pins the docstring: GC does not change with scale until a float32 Sobel response (4 times
    a step) overflows, above a span of about 8.5e37: then NaN; float64 holds it. The reference's
    float32 moments overflow sooner, where the responses' standard deviations multiply past ~1.8e19: 0,
    and where a response's squared deviations summed over the image pass 3.4e38: at 512x512, about 1e17."""
    step = torch.zeros(1, 8, 8, device=device)
    step[..., 4:] = 1.0
    other = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0)).to(device)
    gc = gradient_correlation(step, other)
    assert gradient_correlation(step * 8.4e37, other).item() == pytest.approx(gc.item(), rel=1e-5)
    assert gradient_correlation(step * 8.6e37, other).isnan().all()
    assert gradient_correlation((step * 8.6e37).double(), other.double()).item() == pytest.approx(gc.item(), rel=1e-5)
    texture = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1)).to(device)
    gc = gradient_correlation_reference(texture, other)
    assert gradient_correlation_reference(texture * 1e15, other).item() == pytest.approx(gc.item(), rel=1e-4)
    assert gradient_correlation_reference(texture * 1e20, other).item() == 0.0
    texture, other = (torch.rand(1, 512, 512, generator=torch.Generator().manual_seed(s)).to(device) for s in (1, 0))
    gc = gradient_correlation_reference(texture, other)
    assert gradient_correlation_reference(texture * 1e16, other).item() == pytest.approx(gc.item(), rel=1e-4)
    assert gradient_correlation_reference(texture * 1e17, other).item() == 0.0  # (std product ~1e17: not that)
