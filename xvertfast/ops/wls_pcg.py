"""Batched preconditioned CG driven from Python, on NumPy or CuPy arrays.

``xvertfast.wls(..., method="cupy")`` runs it with CuPy on the GPU, with the
extension's operator and multigrid V-cycle (``torch.ops.xvertfast.wls_setup`` /
``wls_apply``) exchanged through DLPack; the tests run the very same driver
with NumPy and the CPU kernels. It mirrors the native solver's CG
(``csrc/include/xvertfast/wls_multigrid.h``): start from the image, a float64
iterate, per-image step sizes, and images leave the loop as they converge.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from xvertfast._extension import cuda_index

__all__ = ["pcg", "wls_cupy"]


def pcg(
    apply: Callable[[Any], Any],
    precondition: Callable[[Any], Any],
    b: Any,
    rtol: float,
    maxiter: int,
    xp: Any,
) -> tuple[Any, list[int], list[float]]:
    """Solves ``A x = b`` for every image of ``b`` [B, H, W] (float32 or float64).

    Args:
        apply, precondition: ``v -> A v`` and ``v -> M^-1 v`` on arrays like ``b``.
        rtol: stop an image when ``||r|| <= rtol ||b||`` (its recursively updated residual).
        xp: the array module of ``b`` (``numpy`` or ``cupy``).

    Returns:
        ``(x, iterations, residuals)``: x in b's dtype, per image the iterations run and
        the final ``||r|| / ||b||`` of the CG's own (recursively updated) residual.
    """
    dt = b.dtype
    f64 = xp.float64

    def dots(u, v):
        return (u.astype(f64) * v.astype(f64)).sum(axis=(1, 2))

    def per_image(v, dtype):
        return v.astype(dtype)[:, None, None]

    norm_b = xp.sqrt(dots(b, b))
    x = b.astype(f64)  # WLS changes an image little: start from it
    r = b - apply(b)
    rr = dots(r, r)
    active = (norm_b > 0) & (xp.sqrt(rr) > rtol * norm_b)
    iterations = xp.zeros(b.shape[0], dtype=xp.int64)
    if bool(active.any()):
        z = precondition(r)
        p = z.copy()
        rz = dots(r, z)
    for it in range(1, maxiter + 1):
        if not bool(active.any()):
            break
        q = apply(p)
        pq = dots(p, q)
        step = xp.where(active, rz / xp.where(pq != 0, pq, 1.0), 0.0)
        x += per_image(step, f64) * p
        r = r - per_image(step, dt) * q
        rr = xp.where(active, dots(r, r), rr)
        iterations = xp.where(active, it, iterations)
        active = active & (xp.sqrt(rr) > rtol * norm_b)
        if not bool(active.any()) or it == maxiter:
            break
        z = precondition(r)
        rz_new = dots(r, z)
        beta = xp.where(active, rz_new / xp.where(rz != 0, rz, 1.0), 0.0)
        rz = xp.where(active, rz_new, rz)
        p = xp.where(active[:, None, None], z + per_image(beta, dt) * p, p)
    residual = xp.where(norm_b > 0, xp.sqrt(rr) / xp.where(norm_b > 0, norm_b, 1.0), 0.0)
    return x.astype(dt), [int(v) for v in iterations.tolist()], [float(v) for v in residual.tolist()]


def wls_cupy(batch: torch.Tensor, lam: float, alpha: float, eps: float, rtol: float, maxiter: int):
    """``method="cupy"``: :func:`pcg` on CuPy arrays with the extension's CUDA operator and V-cycle.

    ``batch`` is a CUDA tensor [B, H, W]; returns ``(solution tensor, iterations, residuals)``.
    """
    try:
        import cupy as cp
    except ImportError as exc:  # cupy is an optional GPU dependency
        # CuPy's wheels are per CUDA major version, and the gpu extra's (cupy-cuda13x) does not
        # run beside a CUDA 12 torch: name the one of this torch's CUDA
        cuda = torch.version.cuda
        wheel = f"cupy-cuda{cuda.split('.')[0]}x (the CuPy of this torch's CUDA {cuda})" if cuda else "'xvertfast[gpu]'"
        raise RuntimeError(f"wls: method='cupy' needs CuPy: pip install {wheel}; method='cuda' needs nothing more") from exc
    workspace = torch.ops.xvertfast.wls_setup(batch, lam, alpha, eps)

    def op(precondition: bool):
        def run(v):
            out = torch.ops.xvertfast.wls_apply(workspace, torch.from_dlpack(v), precondition)
            return cp.from_dlpack(out)

        return run

    # one stream for both libraries, so every kernel runs in program order, on the batch's GPU
    # (cupy's current device may be another: its arrays and kernels would go there). Every DLPack
    # exchange, the result's too, happens inside: torch's __dlpack__ orders the consumer's stream
    # after the current stream of torch's current device (with the batch on GPU 1 and torch on 0:
    # an event on GPU 0 at each exchange, making a CUDA context there), CuPy's after its own.
    index = cuda_index(batch.device)
    stream = torch.cuda.current_stream(batch.device).cuda_stream
    with torch.cuda.device(index), cp.cuda.Device(index), cp.cuda.ExternalStream(stream, index):
        x, iterations, residual = pcg(op(False), op(True), cp.from_dlpack(batch), rtol, maxiter, cp)
        return torch.from_dlpack(x), iterations, residual
