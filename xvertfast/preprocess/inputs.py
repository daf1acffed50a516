"""XVertNet preprocessing, DESIGN.md section 1 (xvertnet Eq. 1-6).

    Xinv = mean(X) - X
    G    = WLS(X)
    E    = Xinv + G
    Xp   = normalise(X / max(E, E_FLOOR))
    Y    = Xp - WLS(Xp)                      (the high-frequency guidance image)

Choices the papers leave open, fixed here:

- **E guard.** E = mean(X) + (G - X) is about mean(X) plus or minus the local
  detail; on small bright details on a dark image it approaches zero or turns
  negative, and X / E explodes or flips sign. E is clamped from below at
  ``E_FLOOR = 0.05`` (on the [0, 1] intensity scale; a typical chest radiograph
  has E around 0.3-0.6, so only such pathological pixels are touched).
- **Normalisation of Xp.** X / E has a heavy upper tail where the guard acts.
  Xp is scaled so that its 0.1st and 99.9th percentiles map to 0 and 1 and
  clipped to [0, 1] (robust min-max); an image whose percentiles coincide falls
  back to plain min-max, and a constant one gives Xp = 0.
- Every WLS input is in [0, 1] (the log guide needs values >= 0): X is
  min-max scaled on reading, Xp by the normalisation above.

No NaN or Inf can leave: constant, tiny, saturated, all-black and noise images
are tested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from xvertfast._pixels import batch_shape_hint, describe_array, not_finite, strips_or_one_image
from xvertfast._stacklevel import solving
from xvertfast.ops._inputs import as_tensor
from xvertfast.ops.wls import check_method, check_parameters, wls
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM

__all__ = ["preprocess", "Preprocessed", "E_FLOOR", "NORMALISE_PERCENTILES", "PIXEL_RANGE_SLACK",
           "check_unit_pixels"]

#: Lower clamp of E before dividing X by it (intensity units of the [0, 1] image).
E_FLOOR = 0.05
#: Percentiles of X / E mapped to 0 and 1 by the robust normalisation of Xp.
NORMALISE_PERCENTILES = (0.1, 99.9)
#: How far outside [0, 1] given pixels may stray (rounding in a conversion) before they are
#: refused as not being on the unit scale; within it they are clipped.
PIXEL_RANGE_SLACK = 1e-3


def check_unit_pixels(t: torch.Tensor, who: str) -> None:
    """Refuses pixels that are not floats on [0, 1], the scale ``xvertfast.io.read_image`` gives:
    raw stored values (integers, or floats up to 255 or 4095) would be clipped to a near-binary
    image without a word."""
    if not t.dtype.is_floating_point:
        scale = "" if t.dtype.is_complex else ": scale stored values by their range first"  # (complex: no grey levels)
        if t.dtype == torch.bool:  # (no stored values to scale either)
            scale = ": a mask, not grey levels; give an image's pixels"
        raise TypeError(f"{who}: pixels must be floats in [0, 1] (xvertfast.io.read_image(path) gives them), "
                        f"got {str(t.dtype).replace('torch.', '')}{scale}")  # fmt: skip
    if t.device.type == "meta":  # (else torch's "Tensor.item() cannot be called on meta tensors")
        raise ValueError(f"{who}: pixels are on the meta device, which holds no values")
    if t.numel():  # (nothing to check in an empty one)
        # one pass: aminmax carries a NaN into both ends and an infinity to one of them, where
        # torch.isfinite(t).all() first built a bool image (0.1 s more on a 4096^2 one, one core);
        # in the tensor's own dtype, where float32 took float64's 1e300 for infinity
        lo, hi = (float(v) for v in torch.aminmax(t))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(not_finite(who, int((~torch.isfinite(t)).sum())))
        if lo < -PIXEL_RANGE_SLACK or hi > 1 + PIXEL_RANGE_SLACK:
            raise ValueError(f"{who}: pixels must lie in [0, 1], got values from {lo:g} to {hi:g} (raw stored "
                             "values? xvertfast.io.read_image(path) gives [0, 1])")  # fmt: skip


@dataclass
class Preprocessed:
    """The intermediate images of Eq. 1-6, float32, same type/device/shape as the input."""

    x: Any  #: X: the input min-max normalised per image (as read_image gives it, unchanged)
    g: Any  #: WLS(x): the edge-preserving base layer
    e: Any  #: mean(x) - x + g, before the guard
    xp: Any  #: the enhanced input of the network, in [0, 1]
    y: Any  #: xp - WLS(xp): the high-frequency guidance image

    def __repr__(self) -> str:
        """Each image's dtype, shape and range on one line; the dataclass's repr printed all five whole."""
        return "Preprocessed(" + ", ".join(f"{name}={describe_array(getattr(self, name))}"
                                           for name in ("x", "g", "e", "xp", "y")) + ")"  # fmt: skip


def _tail_quantiles(flat: torch.Tensor, q_lo: float, q_hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.quantile(flat, [q_lo, q_hi], dim=1)`` (linear interpolation) for tail quantiles.

    Only the ranks near either end matter, so the few extreme values are found with ``topk``
    instead of sorting every row (a 1024^2 image: ~0.1 s -> a few ms).
    """
    n = flat.shape[1]

    def from_end(q: float, largest: bool) -> torch.Tensor:
        pos = (1.0 - q if largest else q) * (n - 1)  # rank counted from that end
        below = int(pos)
        ends = torch.topk(flat, min(n, below + 2), dim=1, largest=largest, sorted=True).values
        after = min(below + 1, ends.shape[1] - 1)  # the next rank (none past the last value)
        a, b = ends[:, below : below + 1], ends[:, after : after + 1]
        return a + (pos - below) * (b - a)

    return from_end(q_lo, largest=False), from_end(q_hi, largest=True)


def _normalise(t: torch.Tensor) -> torch.Tensor:
    """Robust per-image min-max to [0, 1] over the last two dims (see module docstring)."""
    flat = t.reshape(t.shape[0], -1)
    lo, hi = _tail_quantiles(flat, NORMALISE_PERCENTILES[0] / 100.0, NORMALISE_PERCENTILES[1] / 100.0)
    narrow = (hi - lo) <= 1e-12
    if bool(narrow.any()):  # the rare fallbacks cost whole-image passes: only when needed
        mn, mx = flat.amin(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)
        lo, hi = torch.where(narrow, mn, lo), torch.where(narrow, mx, hi)
    span = hi - lo
    out = (flat - lo) / span.clamp_min(1e-12)
    constant = span <= 1e-12
    if bool(constant.any()):
        out = torch.where(constant, torch.zeros_like(out), out)
    return out.clamp_(0.0, 1.0).reshape(t.shape)


def _image_means(x: torch.Tensor) -> torch.Tensor:
    """mean(X) of each image of ``x`` [B, H, W], as [B, 1, 1] in x's dtype, the same whatever the
    number of threads: torch's float32 mean of a whole image splits the sum among the threads, so
    its last bit (and through E every pixel of Xp, and a 16-bit output's levels) changed with
    OMP_NUM_THREADS. On the CPU it is summed by NumPy (one thread, a fixed pairwise order) in
    float64; on a GPU in float64 by torch (its reduction order is fixed for a shape)."""
    if not x.numel():  # an empty batch or image: as torch's mean (nothing to sum)
        return x.detach().mean(dim=(1, 2), keepdim=True)
    if x.device.type == "cpu":
        flat = x.detach().reshape(x.shape[0], -1).numpy()
        means = torch.from_numpy(np.asarray(flat.mean(axis=1, dtype=np.float64)))
    else:
        means = x.detach().double().mean(dim=(1, 2))
    return means.to(x.dtype)[:, None, None]


def _stretch(x: torch.Tensor) -> torch.Tensor:
    """X min-max normalised per image (DESIGN.md: 0 and 1 are its darkest and brightest pixels):
    what read_image gives passes unchanged, bit for bit; pixels on [0, 1] that do not span it
    (a 12-bit image divided by 65535 tops out at 0.0625) would put E under E_FLOOR everywhere
    and leave Xp a mere rescaling of X."""
    if not x.numel():
        return x
    lo, hi = (v[:, None, None] for v in torch.aminmax(x.reshape(x.shape[0], -1), dim=1))  # one pass
    if bool(((lo == 0) & (hi == 1)).all()):
        return x
    span = hi - lo
    return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1.0), x)


def preprocess(pixels, lam: float = DEFAULT_LAM, alpha: float = DEFAULT_ALPHA, eps: float = DEFAULT_EPS,
               method: str = "auto") -> Preprocessed:
    """Computes X, G, E, Xp and Y of one image ``[H, W]`` or a batch ``[B, H, W]``.

    Args:
        pixels: NumPy array or torch tensor (CPU or GPU) of floats in [0, 1]
            (:func:`xvertfast.io.read_image` gives that); integers and values further than
            :data:`PIXEL_RANGE_SLACK` outside are refused (:func:`check_unit_pixels`), as is an
            image with its channels last, ``[H, W, C]`` with C = 1 to 4 (it would pass for H
            strips C pixels wide). Each image is min-max normalised (X; pixels spanning [0, 1] are
            left as they are).
        lam, alpha, eps: the WLS parameters (DESIGN.md defaults): numbers, or 0-dim tensors or
            arrays of one.
        method: WLS method (see :func:`xvertfast.wls`).

    Returns:
        :class:`Preprocessed`, every field float32 of the input's type, device and shape,
        without gradient (the WLS solves are not differentiable).
    """
    t, from_numpy = as_tensor(pixels, "preprocess: pixels")
    t = t.detach()  # the WLS solves carry no gradient: a graph through X alone would be a wrong one
    if t.dim() not in (2, 3):
        raise ValueError(f"preprocess: pixels must be [H, W] or [B, H, W], got shape {tuple(t.shape)}"
                         f"{batch_shape_hint(t.shape)}")
    if looks := strips_or_one_image(t.shape):  # (else H strips 1 to 4 pixels wide, each on its own)
        raise ValueError(f"preprocess: pixels of shape {tuple(t.shape)} look like {looks}")
    check_unit_pixels(t, "preprocess")
    # (wls would name itself, not the call made); a 0-dim tensor as its number, as wls takes it
    lam, alpha, eps, _ = check_parameters(lam, alpha, eps, rtol=None, who="preprocess")
    check_method(method, "preprocess", t)
    single = t.dim() == 2
    x = _stretch((t.unsqueeze(0) if single else t).to(torch.float32).clamp(0.0, 1.0)).contiguous()

    def smoothed(a: torch.Tensor) -> torch.Tensor:
        # one image is solved as [H, W]: as [1, H, W], an image 1 to 4 columns wide was refused by
        # wls as one with its channels last, though preprocess took it as [H, W]
        return wls(a[0], lam, alpha, eps, method=method)[None] if single else wls(a, lam, alpha, eps, method=method)

    with solving("its base layer"):  # (two solves: a warning says which missed)
        g = smoothed(x)
    e = _image_means(x) - x + g
    xp = _normalise(x / e.clamp_min(E_FLOOR)) if x.numel() else x.clone()  # an empty batch stays empty
    with solving("its guidance"):
        y = xp - smoothed(xp)

    def out(a: torch.Tensor):
        a = a[0] if single else a
        return a.numpy() if from_numpy else a

    return Preprocessed(x=out(x), g=out(g), e=out(e), xp=out(xp), y=out(y))
