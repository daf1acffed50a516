"""Feature-map entropy and the max-entropy target of XVertNet's feature loss (Eq. 11-13).

Each map of ``x[B, C, H, W]`` is min-max scaled to [0, 1], counted into K equal
bins (``bin = floor((v - min) * K / (max - min))``, the top value in bin K-1)
and scored by its Shannon entropy. The compiled op does one pass for the
per-map min/max and one for all the histograms, with no Python loop over
channels. Histograms are not differentiable: outputs carry no gradient.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import torch

from xvertfast._checks import whole_number
from xvertfast._extension import has_extension
from xvertfast.ops._inputs import as_tensor, check_floating, compute_dtype, use_kernel
from xvertfast.ops.reference import feature_entropy_reference, select_max_entropy_reference

__all__ = ["feature_entropy", "select_max_entropy", "MaxEntropyMap", "DEFAULT_BINS"]

#: Bins of the feature-map histograms (the 256 grey levels of the paper's Eq. 11).
DEFAULT_BINS = 256


class MaxEntropyMap(NamedTuple):
    """The detached target c* of the feature loss (two NumPy arrays where x was one)."""

    index: torch.Tensor  #: [B] int64, channel of highest entropy (ties within 1e-9 relative: the lowest)
    map: torch.Tensor  #: [B, 1, H, W], that channel (min-max scaled when normalize=True), float32 (float64 for float64 x)


def _checked(x, bins: int, op: str) -> tuple[torch.Tensor, bool, int]:
    """x as a tensor, checked, whether it was a NumPy array (the result is NumPy then), and bins as an int."""
    x, numpy = as_tensor(x, f"{op}: x", "floats", "feature maps ([B, C, H, W] array or tensor)")
    check_floating(x, op, "x", numpy)
    if x.dim() != 4:
        # (a sample's maps, or one map, were told the shape taken and no more)
        # ([B, H, W] is as much a batch of one-channel maps: x[None] alone made it one sample of B maps)
        hint = {3: " (one sample's maps [C, H, W]: give x[None]; a batch of one-channel maps [B, H, W]: x[:, None])",
                2: " (one map [H, W]: give x[None, None])"}  # fmt: skip
        raise ValueError(f"{op}: x must be [B, C, H, W], got shape {tuple(x.shape)}{hint.get(x.dim(), '')}")
    return x, numpy, whole_number(bins, "bins", op, low=1, high=65536)  # (the one rule for counts)


def _entropy_nats(x: torch.Tensor, bins: int) -> torch.Tensor:
    if use_kernel(x):
        return torch.ops.xvertfast.feature_entropy(x, bins)
    return feature_entropy_reference(x, bins)


def feature_entropy(x, bins: int = DEFAULT_BINS, base: float = math.e):
    """Shannon entropy of every map of ``x`` [B, C, H, W] -> [B, C].

    Args:
        x: feature maps, a torch tensor or a NumPy array; float16/bfloat16 are binned in float32.
        bins: number of histogram bins K.
        base: logarithm base, a finite positive number other than 1: ``math.e`` (nats, the
            default) or ``2`` (bits).

    Returns:
        ``[B, C]`` in the compute dtype (float32, or float64 for float64 input), a NumPy array
        for a NumPy ``x``.
        A constant map has entropy 0; the maximum is ``log(bins)``.

    Values are not checked, and non-finite ones are binned thus (the compiled op and the
    reference alike): a NaN pixel is left out of its map's min and max and counted in the
    lowest bin, as the map's minimum is (so the entropy is that of the map with its NaN
    replaced by the minimum, not that of the map without them); a map of NaN only has entropy
    0; one infinite pixel makes the map's range infinite, every pixel falls in one bin and
    the entropy is 0.
    """
    x, numpy, bins = _checked(x, bins, "feature_entropy")
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not (math.isfinite(base) and 0 < base != 1):
        raise ValueError(f"feature_entropy: base must be a finite positive number other than 1, got {base!r}")
    dtype = compute_dtype(x)
    nats = _entropy_nats(x.detach().to(dtype), bins)
    if base != math.e:
        nats = nats / math.log(base)
    return nats.to(dtype).numpy() if numpy else nats.to(dtype)


def select_max_entropy(x, bins: int = DEFAULT_BINS, normalize: bool = True) -> MaxEntropyMap:
    """The highest-entropy map of each sample: the target c* of ``L2 = MSE(out, c*)``.

    Args:
        x: the last decoder level's maps [B, C, H, W] (128 for the paper's width 64), a torch
            tensor or a NumPy array.
        bins: number of histogram bins K.
        normalize: return the map min-max scaled to [0, 1] (the scale the network output
            lives on) rather than raw.

    Returns:
        ``MaxEntropyMap(index[B], map[B, 1, H, W])``, detached from the graph, on x's device;
        ``map`` in float32 (float64 for float64 x: float16/bfloat16 give float32); both NumPy
        arrays for a NumPy ``x``.

    Entropies of maps with NaN or infinite values are those of :func:`feature_entropy`. The
    map keeps its NaN pixels (left out of the min and max it is scaled by), except that a map
    of NaN only, which has no range, is 0 when normalized, as a constant map is. Normalized,
    a map with a +inf pixel is 0 but for that pixel, which is NaN; a map with a -inf pixel
    is NaN throughout (each pixel less -inf is inf, over an infinite range).
    """
    x, numpy, bins = _checked(x, bins, "select_max_entropy")
    if not isinstance(normalize, (bool, np.bool_)):  # (the op took None as False, refused 'no' in its own words)
        raise TypeError(f"select_max_entropy: normalize must be True or False, got {normalize!r}")
    normalize = bool(normalize)
    if x.shape[1] < 1:
        raise ValueError("select_max_entropy: x has no channel to select from")
    xd = x.detach().to(compute_dtype(x))
    if use_kernel(xd):
        index, target, _ = torch.ops.xvertfast.select_max_entropy(xd, bins, normalize)
    else:
        index, target = select_max_entropy_reference(xd, bins, normalize)
    return MaxEntropyMap(index.numpy(), target.numpy()) if numpy else MaxEntropyMap(index, target)


def _register() -> None:
    @torch.library.register_fake("xvertfast::feature_entropy")
    def _(x, bins):
        return x.new_empty(x.shape[0], x.shape[1], dtype=torch.float64)

    @torch.library.register_fake("xvertfast::select_max_entropy")
    def _(x, bins, normalize):
        B, C, H, W = x.shape
        return (
            x.new_empty(B, dtype=torch.int64),
            x.new_empty(B, 1, H, W),
            x.new_empty(B, C, dtype=torch.float64),
        )


if has_extension():
    _register()
