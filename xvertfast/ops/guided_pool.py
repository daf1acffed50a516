"""The guidance layer's conv + max-pool without the full-resolution maps.

XVertNet's guidance layer at decoder level k is ``MaxPool_{2^k}(Conv3x3(LeakyReLU(Y)))``
with one input channel and ``width * 2^k`` output maps. Written as two PyTorch ops it
first materialises all maps at full resolution (128 x 512 x 512 for one ROI at level 3
of a width-16 model) only to keep one value in 64. The compiled op takes, for every
pooled output, the maximum of 9-tap dot products directly and remembers where it was;
its backward routes each gradient through that tap window (deterministic, no atomics);
a backward that builds a graph (``create_graph=True``, a gradient penalty) takes the same
maxima through a differentiable PyTorch gather instead, so second-order gradients exist.
12-18.5x faster than that formula on a width-16 model's guidance layers, two 512^2 ROIs on two
CPU cores, in bench/report.py's runs since 2026-12-04 (docs/guide/ops.md). The CUDA kernels of
the same math are compiled and tested on GPUs but not yet measured against cuDNN, so on
GPUs :func:`guided_pool` keeps the PyTorch formula, :func:`guided_pool_reference`, for now.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xvertfast._checks import whole_number
from xvertfast._extension import has_extension
from xvertfast.ops._inputs import check_floating, use_kernel
from xvertfast.ops.reference import guided_pool_reference

__all__ = ["guided_pool", "guided_pool_reference"]


def _use_kernel(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, pool: int) -> bool:
    # pool 1: conv2d alone writes nothing more than the op would; CUDA: not yet measured
    if pool < 2 or y.device.type != "cpu" or not use_kernel(y):
        return False
    if y.dtype not in (torch.float32, torch.float64) or not (y.dtype == weight.dtype == bias.dtype):
        return False
    # graph capture (ONNX export, tracing, torch.compile) records the plain conv + pool
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    return y.shape[-2] >= pool and y.shape[-1] >= pool


def guided_pool(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, pool: int) -> torch.Tensor:
    """``MaxPool_pool(Conv3x3(y) + bias)`` of a one-channel image batch.

    Args:
        y: [B, 1, H, W] with H, W >= pool, floating point.
        weight: [C, 1, 3, 3] (an ``nn.Conv2d(1, C, 3, padding=1)``'s weight), y's dtype and device.
        bias: [C], y's dtype and device.
        pool: the max-pool's kernel and stride (1: no pooling), an integer.

    Returns:
        [B, C, H // pool, W // pool], as ``F.max_pool2d(F.conv2d(y, weight, bias, padding=1), pool)``
        (equal to rounding: the dot products are summed in another order), differentiable in
        y, weight and bias. The compiled op runs on CPU tensors with pool >= 2; everything
        else takes that formula.
    """
    for name, t in (("y", y), ("weight", weight), ("bias", bias)):
        check_floating(t, "guided_pool", name)
    if y.dim() != 4 or y.shape[1] != 1:
        raise ValueError(f"guided_pool: y must be [B, 1, H, W], got shape {tuple(y.shape)}")
    if weight.dim() != 4 or tuple(weight.shape[1:]) != (1, 3, 3) or bias.shape != weight.shape[:1]:
        raise ValueError(f"guided_pool: weight must be [C, 1, 3, 3] and bias [C], got "
                         f"{tuple(weight.shape)} and {tuple(bias.shape)}")  # fmt: skip
    if not y.dtype == weight.dtype == bias.dtype:  # (torch's conv2d: "Input type (double) and bias type ...")
        raise TypeError(f"guided_pool: y, weight and bias must share a dtype, got {y.dtype}, {weight.dtype} "
                        f"and {bias.dtype}")  # fmt: skip
    if not y.device == weight.device == bias.device:
        raise ValueError(f"guided_pool: y, weight and bias must be on one device, got {y.device}, "
                         f"{weight.device} and {bias.device}")  # fmt: skip
    pool = whole_number(pool, "pool", "guided_pool", low=1)  # (the one rule for counts)
    if y.shape[-2] < pool or y.shape[-1] < pool:  # (the reference's max_pool2d: "Output size is too small")
        raise ValueError(f"guided_pool: y is {y.shape[-2]}x{y.shape[-1]}, smaller than one pooling window "
                         f"({pool}x{pool})")  # fmt: skip
    if _use_kernel(y, weight, bias, pool):
        return torch.ops.xvertfast.guided_pool(y, weight, bias, pool)[0]
    return guided_pool_reference(y, weight, bias, pool)


def _from_argmax(y: torch.Tensor, weight: torch.Tensor, argmax: torch.Tensor, pool: int) -> torch.Tensor:
    """The op's output without its bias, from the maxima the op chose (``argmax``: the offset
    ``di * pool + dj`` of each maximum inside its window), in PyTorch: differentiable in y and
    weight, and following the op's choice where a window has ties."""
    batch, channels, rows, cols = argmax.shape
    width = y.shape[-1]
    patches = F.unfold(y, 3, padding=1)  # [B, 9, H * W], taps in the weight's row-major order
    offset = argmax.long()
    row = torch.arange(rows, device=y.device).view(1, 1, rows, 1) * pool + offset // pool
    col = torch.arange(cols, device=y.device).view(1, 1, 1, cols) * pool + offset % pool
    index = (row * width + col).reshape(batch, 1, -1).expand(batch, 9, channels * rows * cols)
    taps = patches.gather(2, index).view(batch, 9, channels, rows, cols)
    return torch.einsum("bkcij,ck->bcij", taps, weight.reshape(channels, 9))


def _differentiable_backward(grad, y, weight, argmax, pool, need_y, need_w, need_b):
    """The op's vector-Jacobian product, itself differentiable in y, weight and grad: what its
    backward returns under ``create_graph=True``."""
    inputs = [t for t, need in ((y, need_y), (weight, need_w)) if need]
    grads = []
    if inputs:
        with torch.enable_grad():
            grads = list(torch.autograd.grad(_from_argmax(y, weight, argmax, pool), inputs, grad, create_graph=True))
    grad_y = grads.pop(0) if need_y else None
    grad_w = grads.pop(0) if need_w else None
    grad_b = grad.sum((0, 2, 3)) if need_b else None
    return grad_y, grad_w, grad_b


def _register() -> None:
    @torch.library.register_fake("xvertfast::guided_pool")
    def _(y, weight, bias, pool):
        shape = (y.shape[0], weight.shape[0], y.shape[-2] // pool, y.shape[-1] // pool)
        return y.new_empty(shape), y.new_empty(shape, dtype=torch.int32)

    @torch.library.register_fake("xvertfast::guided_pool_backward")
    def _(grad, y, weight, argmax, pool, need_y):
        grad_y = torch.empty_like(y, memory_format=torch.contiguous_format) if need_y else y.new_empty(0)
        return grad_y, torch.empty_like(weight), weight.new_empty(weight.shape[0])

    def setup_context(ctx, inputs, output):
        y, weight, _, pool = inputs
        _, argmax = output
        ctx.save_for_backward(y, weight, argmax)
        ctx.pool = pool
        ctx.mark_non_differentiable(argmax)

    def backward(ctx, grad, _grad_argmax):
        y, weight, argmax = ctx.saved_tensors
        need_y = bool(ctx.needs_input_grad[0])
        if torch.is_grad_enabled():
            # create_graph=True (a gradient penalty): the compiled backward has no derivative of
            # its own, so the second-order gradients would silently be None; take this gradient
            # through the same maxima written in PyTorch instead
            need_w, need_b = bool(ctx.needs_input_grad[1]), bool(ctx.needs_input_grad[2])
            return (*_differentiable_backward(grad, y, weight, argmax, ctx.pool, need_y, need_w, need_b), None)
        grad_y, grad_w, grad_b = torch.ops.xvertfast.guided_pool_backward(
            grad.contiguous(), y, weight, argmax, ctx.pool, need_y
        )
        return (grad_y.view_as(y) if need_y else None), grad_w, grad_b, None

    torch.library.register_autograd("xvertfast::guided_pool", backward, setup_context=setup_context)


if has_extension():
    _register()
