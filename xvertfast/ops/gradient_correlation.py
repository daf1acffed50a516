"""Gradient correlation (GC), the structural loss of XVertNet (Eq. 8-10).

``GC(a, b) = (NCC(Sx a, Sx b) + NCC(Sy a, Sy b)) / 2`` with the 3x3 Sobel
operators on the valid region (no padding) and the standard NCC
``cov / sqrt(var_a var_b + eps)``; the squares in the paper's Eq. 9 are a typo
(see DESIGN.md). ``eps`` keeps a constant image defined: its NCC is 0 and its
gradient finite. The compiled op computes the moments in one float64 pass and
has an analytic, deterministic backward; a backward that builds a graph
(``create_graph=True``, e.g. a gradient penalty) is taken through the reference
instead, so second-order gradients are those of the reference.
"""

from __future__ import annotations

import math
import numbers

import torch

from xvertfast._extension import has_extension
from xvertfast._pixels import strips_or_one_image
from xvertfast.ops._inputs import as_tensor, check_floating, compute_dtype, use_kernel
from xvertfast.ops.reference import GC_EPS, gradient_correlation_reference

__all__ = ["gradient_correlation", "gradient_correlation_loss", "GC_EPS"]

_OP = "gradient_correlation"


def _checked(a, b) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """a and b as tensors, checked, and whether both were NumPy arrays (the result is NumPy then)."""
    takes = "images ([B, H, W] or [B, 1, H, W] array or tensor)"
    (a, a_numpy), (b, b_numpy) = as_tensor(a, f"{_OP}: a", "floats", takes), as_tensor(b, f"{_OP}: b", "floats", takes)
    check_floating(a, _OP, "a", a_numpy)
    check_floating(b, _OP, "b", b_numpy)
    if a.shape != b.shape:
        raise ValueError(f"{_OP}: a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not (a.dim() == 3 or (a.dim() == 4 and a.shape[1] == 1)):
        raise ValueError(f"{_OP}: inputs must be [B, H, W] or [B, 1, H, W], got {tuple(a.shape)}{_layout_hint(a)}")
    if a.device != b.device:
        raise ValueError(_apart(a, b, a_numpy, b_numpy))
    if said := _channels_last(tuple(a.shape)):
        raise ValueError(said)
    return a, b, a_numpy and b_numpy


def _channels_last(shape: tuple) -> str | None:
    """The refusal of one image with its channels last (a colour file read with PIL or imageio, a
    grey [H, W, 1]), which [B, H, W] took as H images 1 to 4 pixels wide: GC of strips whose Sobel
    x-response is at most 2 pixels wide (none at 1 or 2), a number for each row of the image that
    meant nothing, without a word. The rule and words of wls
    (:func:`~xvertfast._pixels.strips_or_one_image`: ``[H, W, C]``, W more than 4, C from 1 to 4),
    but with H more than 4 too: a batch of up to 4 small images (3 of 5 x 4) is one as much, taken
    here, refused by wls and preprocess."""
    give = "give one channel as a batch of one [1, H, W], a[None, ..., 0] and b[None, ..., 0]"
    if len(shape) != 3 or shape[0] <= 4 or not (looks := strips_or_one_image(shape, give=give)):
        return None
    return f"{_OP}: a and b of shape {shape} look like {looks}"


def _layout_hint(a: torch.Tensor) -> str:
    """How to give images of shape ``a.shape`` as a batch: one [H, W] image was told the shapes
    taken and no more, nor were [B, C, H, W] maps of several channels."""
    if a.dim() == 2:
        return " (one image [H, W]: give a batch of one, a[None] and b[None])"
    if a.dim() == 4:
        h, w = a.shape[-2:]
        return (f" ({a.shape[1]} channels per image: GC is of one-channel images; give one channel, a[:, :1] and "
                f"b[:, :1], or each channel as an image, a.reshape(-1, {h}, {w}) and b.reshape(-1, {h}, {w}))")
    return ""


def _apart(a: torch.Tensor, b: torch.Tensor, a_numpy: bool, b_numpy: bool) -> str:
    """The refusal of a and b on two devices, saying how to bring them together: a NumPy array
    beside a CUDA tensor was told "got cpu and cuda:0", as if the array were a tensor to move."""
    if not (a_numpy or b_numpy):
        return (f"{_OP}: a and b must be on the same device, got {a.device} and {b.device}: move one to the "
                "other's, a.to(b.device) or b.to(a.device)")  # fmt: skip
    array, tensor = ("a", "b") if a_numpy else ("b", "a")
    got_a, got_b = ("a NumPy array (on the CPU)" if numpy else f"a tensor on {t.device}"
                    for t, numpy in ((a, a_numpy), (b, b_numpy)))  # fmt: skip
    return (f"{_OP}: a and b must be on the same device, got {got_a} and {got_b}: give {array} as a tensor on "
            f"{tensor}'s device, torch.as_tensor({array}, device={tensor}.device), or {tensor} on the CPU, "
            f"{tensor}.cpu()")  # fmt: skip


def _check_eps(eps) -> float:
    # a negative eps makes var_a var_b + eps negative under the square root: NaN, silently
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{_OP}: eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def gradient_correlation(a, b, eps: float = GC_EPS):
    """Gradient correlation of each sample pair, in [-1, 1].

    Args:
        a: images ``[B, H, W]`` or ``[B, 1, H, W]``, a torch tensor or a NumPy array;
            float16/bfloat16 are computed in float32.
        b: images of the same shape, dtype family and device.
        eps: guard under the NCC square root, a finite number >= 0; with eps > 0 an image
            without gradient variance (constant, or a linear ramp) gives GC 0 and finite
            gradients. eps = 0 is the plain NCC, which is 0 / 0 for such an image: its GC and
            gradients are NaN.

    Returns:
        ``[B]`` tensor (float32, or float64 for float64 inputs), differentiable in a and b; a NumPy
        array where a and b both are (as :func:`~xvertfast.ops.wls` returns NumPy for NumPy).
        Images smaller than 3x3 have no Sobel response and give 0; one image with its channels
        last ([H, W, 3], [H, W, 1]: H and W more than 4, 1 to 4 channels) is refused, not taken as
        H images that narrow (wls and preprocess refuse it with H of 4 or fewer too). Values are not checked: a
        NaN or infinite pixel makes its own sample's GC NaN, and so the mean of
        :func:`gradient_correlation_loss`; the other samples' GC stand. Nor are finite values
        near float32's limit: the Sobel responses are computed in the input's dtype and reach 4
        times a pixel step, so a float32 pair whose values span more than about 8.5e37 (float32's
        largest, 3.4e38, / 4) can overflow to inf there and read NaN, as an infinite pixel does.
        On other devices than the CPU and CUDA (the pure-PyTorch reference runs there) the moments
        are float32 too: GC reads 0 where the two images' response standard deviations multiply
        past about 1.8e19 (``var_a * var_b`` overflows), and 0 or NaN where a response's squared
        deviations summed over the image pass 3.4e38, sooner on a larger image: e.g. responses of
        about 1e17 on a 512x512 image (beside ones of about 1). GC does not change with scale:
        scale such images down (XVertNet's are in [0, 1]), or give them in float64. Only near
        ``eps`` does it: where the responses' standard deviations multiply to less than about
        ``10 * sqrt(eps)`` (1e-5) the guard pulls GC towards 0 by a percent or more (two random
        64x64 images of GC 0.72 read 0.42 once both are scaled by 1e-3, in the op and the
        reference alike).
    """
    a, b, numpy = _checked(a, b)
    eps = _check_eps(eps)
    dtype = compute_dtype(a, b)
    a, b = a.to(dtype), b.to(dtype)
    if use_kernel(a):
        gc = torch.ops.xvertfast.gradient_correlation(a, b, eps)[0]
    else:
        gc = gradient_correlation_reference(a, b, eps)
    return gc.numpy() if numpy else gc


def gradient_correlation_loss(a, b, eps: float = GC_EPS):
    """XVertNet's L1 structural loss: ``mean(1 - GC(a, b))`` over the batch, which must hold a
    sample: the mean over none was NaN, a loss that poisons a training run's log without a word.
    A 0-dim tensor, or a NumPy scalar where a and b are NumPy arrays (:func:`gradient_correlation`)."""
    gc = gradient_correlation(a, b, eps)
    if len(gc) == 0:
        raise ValueError(f"gradient_correlation_loss: a and b hold no sample (shape {tuple(a.shape)}): a loss is a "
                         "mean over at least one")  # fmt: skip
    return (1.0 - gc).mean()


def _reference_backward(grad_gc, a, b, eps, need_a, need_b):
    """The vector-Jacobian product of the reference at (a, b), itself differentiable in a, b and
    grad_gc: what the op's backward returns under ``create_graph=True``."""
    inputs = [t for t, need in ((a, need_a), (b, need_b)) if need]
    if not inputs:
        return None, None
    with torch.enable_grad():
        gc = gradient_correlation_reference(a, b, eps)
        grads = list(torch.autograd.grad(gc, inputs, grad_gc, create_graph=True))
    return (grads.pop(0) if need_a else None), (grads.pop(0) if need_b else None)


def _register() -> None:
    @torch.library.register_fake("xvertfast::gradient_correlation")
    def _(a, b, eps):
        return a.new_empty(a.shape[0]), a.new_empty(a.shape[0], 10, dtype=torch.float64)

    @torch.library.register_fake("xvertfast::gradient_correlation_backward")
    def _(grad, a, b, stats, eps, need_a, need_b):
        return (
            torch.empty_like(a) if need_a else a.new_empty(0),
            torch.empty_like(b) if need_b else b.new_empty(0),
        )

    def setup_context(ctx, inputs, output):
        a, b, eps = inputs
        _, stats = output
        ctx.save_for_backward(a, b, stats)
        ctx.eps = eps
        ctx.mark_non_differentiable(stats)

    def backward(ctx, grad_gc, _grad_stats):
        a, b, stats = ctx.saved_tensors
        need_a, need_b = bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1])
        if torch.is_grad_enabled():
            # create_graph=True (a gradient penalty, a Hessian-vector product): the compiled
            # backward has no derivative of its own, so its result would be a constant and the
            # second-order gradients silently None. Take this gradient through the reference.
            return (*_reference_backward(grad_gc, a, b, ctx.eps, need_a, need_b), None)
        grad_a, grad_b = torch.ops.xvertfast.gradient_correlation_backward(
            grad_gc, a, b, stats, ctx.eps, need_a, need_b
        )
        return (grad_a if need_a else None), (grad_b if need_b else None), None

    torch.library.register_autograd(
        "xvertfast::gradient_correlation", backward, setup_context=setup_context
    )


if has_extension():
    _register()
