"""One rule for a count given as an argument (tiles, workers, a batch size): each function checked
it its own way, one taking True as 1 and another 2.0, and said so in its own words. Here a whole
number is a Python or NumPy integer, never a bool, and the error names who asked and what for."""

from __future__ import annotations

import numbers

__all__ = ["whole_number"]


def whole_number(value, name: str, who: str | None = None, low: int | None = None, high: int | None = None,
                 meaning: str = "", floats: bool = False) -> int:  # fmt: skip
    """``value`` as an int from ``low`` to ``high`` (either may be None: no bound), or a ValueError:
    ``"<who>: <name> must be a whole number >= <low> (<meaning>), got <value>"`` (no ``who``: the
    name first; both bounds: "from <low> to <high>"). A float is refused, even 2.0, unless
    ``floats``: then a float of a whole number (5e8) is taken, for a caller that has a reason (say
    it there). A bool is refused: True would be taken as 1 without a word."""
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
    raise ValueError(f"{asker}{name} must be a whole number{bounds}{said}, got {value!r}")
