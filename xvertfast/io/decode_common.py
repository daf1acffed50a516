"""What the decoders share: the pixel limit, bit depths, colour to luminance, polarity.

Each decoder (:mod:`~xvertfast.io.decode_pillow`, :mod:`~xvertfast.io.decode_tiff`,
:mod:`~xvertfast.io.decode_dicom`) returns the stored values; these helpers keep the
checks and conversions they have in common in one place, so every format is held to the same
pixel limit and converts colour the same way.
"""

from __future__ import annotations

import numpy as np

from xvertfast.io.errors import ImageReadError

__all__ = ["check_pixels", "bits_from_values", "luminance", "luminance_note", "stored_range", "invert", "ORIENTATION"]


#: The EXIF / TIFF Orientation tag: how the stored rows and columns are to be turned for display.
ORIENTATION = 0x0112


def check_pixels(path: str, h: int, w: int, max_pixels: int) -> None:
    if h * w > max_pixels:
        raise ImageReadError(path, f"image claims {w} x {h} (width x height) = {h * w:,} pixels, above the limit of "
                             f"{max_pixels:,} (max_pixels); refusing to decode")  # fmt: skip
    if h < 1 or w < 1:
        raise ImageReadError(path, f"image has no pixels ({w} x {h}, width x height)")


def bits_from_values(values: np.ndarray, container: int) -> int:
    """Significant bits of integer data stored in a wider container (12-bit in 16-bit PNG)."""
    top = int(values.max()) if values.size else 0
    return int(min(container, max(8, top.bit_length())))


def luminance(values: np.ndarray, notes: list[str], path: str, source: str | None = None) -> np.ndarray:
    """The luminance (ITU-R 601 weights) of RGB(A) samples in the last axis, in the samples' own
    type: integer samples stay integers of their depth, so the output keeps it. A note says
    what was converted: ``source`` (a palette's or CMYK's colours), else RGB or RGBA."""
    luminance_note(notes, path, source or ("RGB" if values.shape[-1] == 3 else "RGBA"))
    grey = values[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if values.dtype.kind in "ui":
        return np.rint(grey).astype(values.dtype)
    return grey.astype(np.float32)


def luminance_note(notes: list[str], path: str, source: str) -> None:
    notes.append(f"{path}: {source} image converted to luminance (grayscale)")


def stored_range(bits: int, signed: bool) -> tuple[int, int]:
    """The lowest and highest value ``bits`` bits can store (two's complement when signed)."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def invert(values: np.ndarray, bits: int) -> np.ndarray:
    """Polarity flip within the stored range (bright = high afterwards).

    Signed integers flip within the signed range (v -> -1 - v), so negative values are not
    clipped away: clipping them would saturate half of a signed image's range.
    """
    if values.dtype.kind == "f":
        return (values.max() + values.min() - values).astype(values.dtype)
    lo, hi = stored_range(bits, values.dtype.kind == "i")
    return (lo + hi - values.astype(np.int64)).clip(lo, hi).astype(values.dtype)
