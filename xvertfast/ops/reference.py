"""Pure-PyTorch references of the compiled ops.

They define the ops' semantics, serve as the fallback when the extension is
missing, and are what the parity tests compare the C++/CUDA kernels against.
They favour clarity over speed and run on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "GC_EPS",
    "sobel_reference",
    "gradient_correlation_reference",
    "feature_entropy_reference",
    "select_max_entropy_reference",
    "guided_pool_reference",
]

#: Entropies this close (relative) to the maximum count as tied; ties go to the lowest channel.
TIE_RTOL = 1e-9

#: Guard added to var(A) var(B) under the NCC square root (see gradient_correlation).
GC_EPS = 1e-12


def _as_nchw(x: torch.Tensor) -> torch.Tensor:
    return x.unsqueeze(1) if x.dim() == 3 else x


def sobel_reference(x: torch.Tensor) -> torch.Tensor:
    """Sobel x and y responses on the valid region: [B, 1, H, W] -> [B, 2, H-2, W-2].

    Differences of neighbours first, in the kernels' order (``sobel`` in
    csrc/include/xvertfast/gradient_correlation.h): they cancel a common level exactly, where a
    convolution sums each side of the stencil first and rounds it. In float32 a step of height
    1e10 had a y-response of -1024 in places where it has none, and NCC, which does not see scale,
    read that rounding as a gradient: its GC against a random image fell from 0.0434 to -0.0002.
    """
    dx = x[..., 2:] - x[..., :-2]  # right minus left, [B, 1, H, W-2]
    dy = x[..., 2:, :] - x[..., :-2, :]  # bottom minus top, [B, 1, H-2, W]
    gx = dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]  # rows weighted 1-2-1
    gy = dy[..., :-2] + 2 * dy[..., 1:-1] + dy[..., 2:]  # columns weighted 1-2-1
    return torch.cat([gx, gy], dim=1)


def gradient_correlation_reference(
    a: torch.Tensor, b: torch.Tensor, eps: float = GC_EPS
) -> torch.Tensor:
    """GC per sample: the mean of the NCCs of the Sobel x- and y-responses.

    ``NCC = cov / sqrt(var_a var_b + eps)`` with population moments over the
    valid region; images smaller than 3x3 have no valid pixel and give 0.
    """
    a4, b4 = _as_nchw(a), _as_nchw(b)
    if a4.shape[-2] < 3 or a4.shape[-1] < 3:
        return (a4.sum((1, 2, 3)) + b4.sum((1, 2, 3))) * 0.0
    ga, gb = sobel_reference(a4), sobel_reference(b4)
    da = ga - ga.mean(dim=(2, 3), keepdim=True)
    db = gb - gb.mean(dim=(2, 3), keepdim=True)
    cov = (da * db).mean(dim=(2, 3))
    var_a = (da * da).mean(dim=(2, 3))
    var_b = (db * db).mean(dim=(2, 3))
    ncc = cov / torch.sqrt(var_a * var_b + eps)
    return ncc.mean(dim=1)


def _bin_indices(flat: torch.Tensor, bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bin of every pixel of each row of ``flat`` [M, N], and the rows' min and max."""
    nan = torch.isnan(flat)  # NaN pixels do not take part in the min and max (and land in bin 0)
    lo = torch.where(nan, torch.inf, flat).amin(dim=1, keepdim=True)
    hi = torch.where(nan, -torch.inf, flat).amax(dim=1, keepdim=True)
    rng = hi - lo
    # tensor / tensor: one correctly rounded division, as in the kernels (scalar / tensor
    # would go through a reciprocal and can differ in the last bit, moving pixels across bins).
    scale = torch.where(rng > 0, torch.full_like(rng, bins) / rng, torch.zeros_like(rng))
    t = torch.nan_to_num((flat - lo) * scale, nan=0.0)
    return t.floor().clamp_(0, bins - 1).long(), lo, hi


def feature_entropy_reference(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Shannon entropy (natural log, float64) of each map of ``x`` [B, C, H, W].

    Each map is min-max scaled and cut into ``bins`` equal bins:
    ``bin = floor((v - min) * (bins / (max - min)))`` clamped to ``bins - 1``.
    A constant map has entropy 0.
    """
    B, C, H, W = x.shape
    M, N = B * C, H * W
    if N == 0:
        return torch.zeros(B, C, dtype=torch.float64, device=x.device)
    idx, _, _ = _bin_indices(x.detach().reshape(M, N), bins)
    offsets = torch.arange(M, device=x.device).unsqueeze(1) * bins
    counts = torch.bincount((idx + offsets).reshape(-1), minlength=M * bins).reshape(M, bins)
    p = counts.double() / N
    terms = torch.where(p > 0, -p * torch.log(p), torch.zeros_like(p))
    return terms.sum(dim=1).reshape(B, C)


def select_max_entropy_reference(
    x: torch.Tensor, bins: int = 256, normalize: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index [B] of the first highest-entropy map per sample, and that map [B, 1, H, W].

    Entropies within ``TIE_RTOL`` (relative) of the maximum are ties, resolved to the
    lowest channel index, so that rounding in the entropy sum never decides.

    With ``normalize`` the map is min-max scaled to [0, 1] (0 if constant), NaN pixels left
    out of its min and max and left NaN.
    """
    ent = feature_entropy_reference(x, bins)
    # Ties: the first channel within TIE_RTOL (relative) of the maximum.
    top = ent.amax(dim=1, keepdim=True)
    index = (ent >= top - TIE_RTOL * top.abs()).int().argmax(dim=1)
    maps = x.detach()[torch.arange(x.shape[0], device=x.device), index].unsqueeze(1)
    if normalize and maps.numel():  # an empty map has no range to scale (amin refuses it)
        # the range of the binning, NaN left out: a NaN pixel stays NaN, the others are scaled
        _, lo, hi = _bin_indices(maps.reshape(maps.shape[0], -1), bins)
        lo, hi = lo.reshape(-1, 1, 1, 1), hi.reshape(-1, 1, 1, 1)
        rng = hi - lo
        maps = torch.where(rng > 0, (maps - lo) / rng, torch.zeros_like(maps))
    return index, maps


def guided_pool_reference(y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, pool: int) -> torch.Tensor:
    """``MaxPool_pool(Conv3x3(y))``: the guidance layer's conv (zero padding) and max-pool.

    y: [B, 1, H, W]; weight: [C, 1, 3, 3]; bias: [C] -> [B, C, H // pool, W // pool].
    C = 0 gives an empty result (as the compiled op does), still differentiable in all three.
    """
    if weight.shape[0] == 0:
        # conv2d and max_pool2d refuse zero channels: add one zero map, pool it, keep none of it
        one_map = torch.cat([weight, weight.new_zeros(1, 1, 3, 3)]), torch.cat([bias, bias.new_zeros(1)])
        return guided_pool_reference(y, *one_map, pool)[:, :0]
    g = F.conv2d(y, weight, bias, padding=1)
    return F.max_pool2d(g, pool) if pool > 1 else g
