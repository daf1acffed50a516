"""What was given for an image's pixels but cannot be taken as them, described once for every
function that takes pixels, each refusing it in its own words: something that is no array (a path,
a Radiograph), and a masked array whose mask NumPy would drop."""

from __future__ import annotations

import os

import numpy as np

from xvertfast._paths import PATH_TYPES

__all__ = ["describe_non_array", "describe_masked"]


def describe_non_array(value, takes_radiograph: bool = False) -> str:
    """What ``value``, given for an image's pixels but no array of numbers, is, for a refusal ("got
    <this>"): a path or a Radiograph (anything with ``.pixels``) says how to get its pixels, anything
    else is named by its type; NumPy made each a 0-d array, refused as "shape ()" or "object".
    ``takes_radiograph``: the caller takes a Radiograph too (enhance), so a path is told to read
    it, not to give its pixels, which would leave its file unnamed in later messages."""
    if isinstance(value, PATH_TYPES):
        read = "xvertfast.io.read_image(path)" + ("" if takes_radiograph else ".pixels")
        return f"the path {os.fsdecode(value)!r}: read it with {read}"
    if hasattr(value, "pixels"):
        return f"a {type(value).__name__}: give its .pixels"
    return type(value).__name__


def describe_masked(value) -> str | None:
    """``value`` described for a refusal where it is a NumPy masked array with pixels masked, else
    None (a masked array with nothing masked is taken as its array): np.asarray drops the mask
    without a word, so the pixels under it were smoothed, scored or looked at as any."""
    if not (np.ma.isMaskedArray(value) and np.ma.is_masked(value)):
        return None
    return f"a masked array with {int(np.ma.count_masked(value))} masked pixel(s), whose mask would be ignored"
