"""One rule for a count given as an argument (tiles, workers, a batch size): each function checked
it its own way, one taking True as 1 and another 2.0, and said so in its own words. Here a whole
number is a Python or NumPy integer, never a bool, and the error names who asked and what for."""

from __future__ import annotations

import numbers
import sys

__all__ = ["number_of", "whole_number"]


def number_of(value, name: str, who: str | None):
    """``value`` as a Python number where it is a 0-dim tensor or array or a NumPy scalar
    (``lam=torch.tensor(0.5)``, a value of a sweep), else as given, for the caller's own check to judge. One rule for every
    function that takes a number (wls, preprocess, XVertNet, TrainConfig, farbman, clahe, and the
    counts :func:`whole_number` checks): wls took a 0-dim tensor while the others refused it, so a
    value that worked in one call failed in the next. None of them has a gradient in its numbers:
    a tensor that requires one is refused, not read as a constant without a word. (torch and
    NumPy looked up, not imported: a value of theirs exists only once they are, and this module
    is imported by ones that need neither.)"""
    asker, owner = (f"{who}: ", who) if who else ("", "it")
    torch, np = sys.modules.get("torch"), sys.modules.get("numpy")
    if torch is not None and isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.is_meta:
            held = "holds no value (meta)" if value.is_meta else f"has shape {tuple(value.shape)}"
            raise ValueError(f"{asker}{name} must be a number or a 0-dim tensor of one; this tensor {held}")
        if value.requires_grad:
            raise ValueError(f"{asker}{name} is a tensor that requires grad, but {owner} has no gradient in {name}: "
                             f"give {name}.detach() (or a number)")  # fmt: skip
        return _read(value, np)
    # (lam=np.array([0.5, 0.6]) was told lam.item(), which fails; a NumPy scalar, lams[i] of a sweep's
    # array, is read too: np.float32 is no float, and load_rois' cache key, JSON, failed on it)
    if np is not None and isinstance(value, (np.ndarray, np.generic)):
        if value.ndim != 0:
            raise ValueError(f"{asker}{name} must be a number or a 0-dim tensor or array of one; "
                             f"this array has shape {value.shape}")  # fmt: skip
        return _read(value, np)
    return value


def _read(value, np):
    """A 0-dim tensor's or array's (or NumPy scalar's) number; a float32, float16 or bfloat16 one as
    the shortest decimal that reads back as it, NumPy's ``str``: ``np.float32(0.35).item()`` is
    0.3499999940395355, which keyed load_rois' crops and cache apart from lam=0.35's and was recorded
    so in configs, where the value meant, and held to its precision, is 0.35 (it moves by under half
    a step of its type). A whole number is kept as it is: np.float32(123456792) is no 123456790, nor
    np.float16(65504) 65500 (read_image's max_pixels)."""
    number = value.item()
    numpy_kind = np is not None and isinstance(value, (np.ndarray, np.generic))
    # (a big-endian array's str(dtype) is ">f4": its name is float32)
    kind = value.dtype.name if numpy_kind else str(value.dtype).removeprefix("torch.")
    if not isinstance(number, float) or number.is_integer():
        return number
    if kind == "bfloat16":  # (torch's alone; 8 significant bits need at most 4 digits)
        torch = sys.modules["torch"]
        for digits in range(1, 5):
            decimal = float(f"{number:.{digits}g}")
            if torch.tensor(decimal, dtype=torch.bfloat16).item() == number:
                return decimal
        return number
    if np is None or kind not in ("float32", "float16"):
        return number
    return float(str(getattr(np, kind)(number)))


def whole_number(value, name: str, who: str | None = None, low: int | None = None, high: int | None = None,
                 meaning: str = "", floats: bool = False) -> int:  # fmt: skip
    """``value`` as an int from ``low`` to ``high`` (either may be None: no bound), or a ValueError:
    ``"<who>: <name> must be a whole number >= <low> (<meaning>), got <value>"`` (no ``who``: the
    name first; both bounds: "from <low> to <high>"). A float is refused, even 2.0, unless
    ``floats``: then a float of a whole number (5e8) is taken, for a caller that has a reason (say
    it there). A bool is refused: True would be taken as 1 without a word. A 0-dim tensor or array
    is read as its number first (:func:`number_of`), as the float parameters are."""
    given, value = value, number_of(value, name, who)
    if floats and isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        whole = float(value).is_integer()  # (False for NaN and the infinities)
    else:
        whole = isinstance(value, numbers.Integral)
    if whole and not isinstance(value, bool):
        number = int(value)
        if (low is None or number >= low) and (high is None or number <= high):
            return number
    if low is not None and high is not None:
        bounds = f" from {low} to {high}"
    elif low is not None:
        bounds = f" >= {low}"
    else:
        bounds = f" <= {high}" if high is not None else ""
    said = f" ({meaning})" if meaning else ""
    asker = f"{who}: " if who else ""
    raise ValueError(f"{asker}{name} must be a whole number{bounds}{said}, got {given!r}")
