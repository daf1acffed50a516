"""What was given for an image's pixels but cannot be taken as them, described once for every
function that takes pixels, each refusing it in its own words: something that is no array (a path,
a Radiograph), a masked array whose mask NumPy would drop, a shape that is one image's in another
layout, and values that are no numbers (:func:`not_finite`); and an array as a short repr shows it
(:func:`describe_array`)."""

from __future__ import annotations

import os
import warnings

import numpy as np

from xvertfast._paths import PATH_TYPES
from xvertfast._text import dtype_name

__all__ = ["describe_non_array", "describe_masked", "shape_hint", "batch_shape_hint", "strips_or_one_image", "not_finite",
           "describe_array"]


#: The way to a colour file's grey image, as the hints of a colour array say it.
_LUMINANCE = "xvertfast.io.read_image gives a colour file's luminance"

#: The images of a batch with their channels last, by their kind (:func:`_channels_last_batch`), as
#: the hints name them.
_IMAGES = {"grey": "grey images", "alpha": "grey images with alpha", "colour": "colour images"}


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
    if isinstance(value, np.generic):  # ("got float64" read as a dtype)
        return f"a NumPy {type(value).__name__} scalar"
    return type(value).__name__


def describe_masked(value) -> str | None:
    """``value`` described for a refusal where it is a NumPy masked array with pixels masked, else
    None (a masked array with nothing masked is taken as its array): np.asarray drops the mask
    without a word, so the pixels under it were smoothed, scored or looked at as any."""
    if not (np.ma.isMaskedArray(value) and np.ma.is_masked(value)):
        return None
    return f"a masked array with {int(np.ma.count_masked(value))} masked pixel(s), whose mask would be ignored"


def channels_last(shape) -> str | None:
    """What ``shape`` looks like where it is one image with its channels last, as PIL and imageio
    give a file ("a colour image": RGB, RGBA; "a grey image with alpha": PIL's "LA"), else None.
    More than 4 columns: narrower, it is a stack of images 2 to 4 pixels wide as much as one image.
    Here alone, so that the refusals and their hints say the same of the same shape."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or shape[1] <= 4:
        return None
    return {2: "a grey image with alpha", 3: "a colour image", 4: "a colour image"}.get(shape[2])


def shape_hint(shape, name: str = "pixels") -> str:
    """What to give instead, appended to a refusal of an image that is not ``[H, W]``, where ``shape``
    is one image's in another layout: colour channels last (a file read with PIL or imageio, not
    read_image), or axes of length 1 (``[1, H, W]``, ``[H, W, 1]``, a network's ``[1, 1, H, W]``);
    they were refused as "got shape (512, 512, 3)" alone. Or a stack of images ``[N, H, W]``
    (channels first looks the same), to be given one at a time; of 3 or 4 it may be RGB(A) channels
    first (torchvision's), told the colour route too, as is a batch of them, ``[N, 3, H, W]``
    (:func:`_colour_first_batch`), and a batch of them channels last, ``[N, H, W, 3]`` (PIL's arrays
    stacked, :func:`_channels_last_batch`), or of grey ones, ``[N, H, W, 1]`` (Keras's). "" for any
    other shape. ``name``: the argument as the caller passed it (the metrics' ``img``, ``reference``,
    ``test``)."""
    shape = tuple(int(n) for n in shape)
    if channels_last(shape) == "a grey image with alpha":
        return f" (a grey image with alpha, channels last: give its grey channel [H, W], {name}[..., 0])"
    if channels_last(shape):
        return f" (a colour image, channels last: give one channel [H, W]; {_LUMINANCE})"
    if len(shape) > 2 and sum(n > 1 for n in shape) == 2:
        return f" (one image with axes of length 1: give {name}.squeeze())"
    if _colour_first_batch(shape):  # (torchvision's batch, of one image too: refused with its shape alone)
        if shape[0] == 1:
            return (f" (a colour image with its channels first, in a batch of one: give one channel [H, W], "
                    f"{name}[0, 0]; {_LUMINANCE})")  # fmt: skip
        return (f" (a batch of {shape[0]} colour images with their channels first: give one channel [H, W] of one "
                f"at a time, {name}[i, 0]; {_LUMINANCE})")  # fmt: skip
    if kind := _channels_last_batch(shape):  # (PIL, imageio or Keras arrays stacked: refused with their shape alone)
        images = f"a batch of {shape[0]} {_IMAGES[kind]}, channels last"
        if kind == "grey":  # (a batch of one is squeezed, above)
            return f" ({images}: give one [H, W] at a time, {name}[i, ..., 0])"
        colour = kind == "colour"
        give = "one channel [H, W]" if colour else f"{'its' if shape[0] == 1 else 'the'} grey channel [H, W]"
        tail = f"; {_LUMINANCE})" if colour else ")"
        if shape[0] == 1:
            one = channels_last(shape[1:])  # ("a colour image", "a grey image with alpha")
            return f" ({one}, channels last, in a batch of one: give {give}, {name}[0, ..., 0]{tail}"
        return f" ({images}: give {give} of one at a time, {name}[i, ..., 0]{tail}"
    # (a notebook's batch, or torchvision's [C, H, W]: refused alone)
    if len(shape) == 3 and min(shape) > 1 and not _channels_last_too(shape):
        if shape[0] in (3, 4):  # (pixels[i] of RGB enhanced R, G and B as three images)
            return (f" (a stack of {shape[0]} images: give one [H, W] at a time, {name}[i]; or a colour image with its "
                    f"channels first: give one channel [H, W], not each as an image; {_LUMINANCE})")  # fmt: skip
        return f" (a stack of {shape[0]} images, or one with its channels first: give one [H, W] at a time, {name}[i])"
    return ""


def _colour_first_batch(shape) -> bool:
    """Whether ``shape`` reads as a batch of colour images with their channels first, ``[N, 3, H, W]``
    or ``[N, 4, H, W]`` (torchvision's, a DataLoader's), each more than 1 row and, as for
    :func:`channels_last`, more than 4 columns: narrower, it is a batch of images 3 or 4 rows
    high with their channels last as much."""
    shape = tuple(int(n) for n in shape)
    return len(shape) == 4 and shape[1] in (3, 4) and shape[2] > 1 and shape[3] > 4


def _channels_last_batch(shape) -> str | None:
    """The kind of each image of ``shape`` (a key of :data:`_IMAGES`) where it reads as a batch of
    images with their channels last, ``[B, H, W, C]`` (PIL's or imageio's arrays stacked): "colour"
    or "alpha" (grey with alpha) where :func:`channels_last` of ``[H, W, C]`` is one, with H more
    than 4 too, else None. Of 4 rows or fewer it may be a batch of images with their channels first
    as much ((2, 3, 40, 3)). Or "grey" for ``[B, H, W, 1]``, Keras's batch, B more than 1 (of one it
    is an image with axes of length 1, squeezed) and W more than 4 too: it was refused with its
    shape alone."""
    shape = tuple(int(n) for n in shape)
    if len(shape) != 4 or shape[1] <= 4:
        return None
    if shape[3] == 1:
        return "grey" if shape[0] > 1 and shape[2] > 4 else None
    return ("colour" if shape[3] > 2 else "alpha") if channels_last(shape[1:]) else None


def _channels_last_too(shape) -> bool:
    """Whether a 3-D ``shape`` with no axis of length 1 reads as one image with its channels last
    as well as a stack: a last axis shorter than the other two and of 5 or more (more channels than
    colour has: (512, 512, 5) was told "a stack of 512 images", and pixels[i] gave it a 512 x 5
    strip), or of 2 to 4 beside a width of 4 or less ((40, 3, 3), which :func:`channels_last`
    leaves). No hint is given then rather than a wrong one."""
    last = shape[2]
    return last < shape[0] and (last < shape[1] if last >= 5 else shape[1] <= 4)


def not_finite(who: str, bad: int, name: str = "pixels") -> str:
    """The refusal of pixels of which ``bad`` are NaN or infinite: "pixels contain NaN or infinite
    values" alone left the user to count them and to find how to fill them. ``name``: the argument
    as the caller passed it (wls's ``image``). Count ``bad`` only once refusing (a pass of its own)."""
    contain = "contain" if name == "pixels" else "contains"
    return (f"{who}: {name} {contain} {bad} NaN or infinite value{'s' * (bad != 1)}: replace them first, e.g. "
            f"np.nan_to_num({name}, nan=0.0, posinf=1.0, neginf=0.0) (torch.nan_to_num for a tensor)")


def batch_shape_hint(shape, name: str = "pixels") -> str:
    """:func:`shape_hint` for a function that takes a batch ``[B, H, W]`` too (wls, preprocess), of
    a shape neither ``[H, W]`` nor ``[B, H, W]``: a network's ``[B, 1, H, W]`` as well, which was
    refused with its shape alone, and a batch of colour images channels first or last, or of grey
    ones channels last (Keras's ``[B, H, W, 1]``), given as a batch (one at a time is :func:`shape_hint`'s word, for a function that takes one image)."""
    shape = tuple(int(n) for n in shape)
    if _colour_first_batch(shape):
        return (f" (a batch of colour images with their channels first [B, {shape[1]}, H, W]: give one channel "
                f"[B, H, W], {name}[:, 0]; {_LUMINANCE})")  # fmt: skip
    if kind := _channels_last_batch(shape):
        images = f"a batch of {_IMAGES[kind]}, channels last [B, H, W, {shape[3]}]"
        if kind == "colour":
            return f" ({images}: give one channel [B, H, W], {name}[..., 0]; {_LUMINANCE})"
        if kind == "grey":
            return f" ({images}: give them as [B, H, W], {name}[..., 0])"
        return f" ({images}: give their grey channel [B, H, W], {name}[..., 0])"
    if not (hint := shape_hint(shape, name)) and len(shape) == 4 and shape[1] == 1:
        hint = f" (a batch of one-channel images [B, 1, H, W]: give {name}[:, 0])"
    return hint


def strips_or_one_image(shape, name: str = "pixels", give: str | None = None) -> str | None:
    """What a 3-D ``shape`` that a function taking a batch ``[B, H, W]`` would smooth as H strips
    C pixels wide looks like, for its refusal ("looks like <this>"), where it is one image with its
    channels last: ``[H, W, C]`` with W more than 4 and C from 1 to 4 (:func:`channels_last`, or
    ``[H, W, 1]``). None otherwise. One rule and one sentence for wls, preprocess and
    gradient_correlation (wls kept its own, which took ``[H, W, 2]`` for strips). ``give``: what to
    give instead where the caller takes no ``[H, W]`` (gradient_correlation: a batch of one), in
    place of :func:`shape_hint`'s."""
    shape = tuple(int(n) for n in shape)
    if not (channels_last(shape) or (len(shape) == 3 and shape[2] == 1 and shape[1] > 4)):
        return None
    if give is not None:
        what = channels_last(shape) or "a grey image [H, W, 1]"
        hint = f" ({what}: {give}{'; ' + _LUMINANCE if what == 'a colour image' else ''})"
    else:  # ([1, W, 1]: no squeeze gives [H, W])
        hint = shape_hint(shape, name) or f" (give it as [H, W], {name}[..., 0])"
    return f"one image with its channels last, not a batch of images {shape[2]} pixel{'s' * (shape[2] > 1)} wide{hint}"


def describe_array(value, shape: bool = True) -> str:
    """An array as the reprs of Radiograph, Spine, EnhanceResult and Preprocessed show it: its dtype,
    shape (``HxW``; ``shape=False`` leaves it out) and range of values, ``"float32 512x640 in [0, 1]"``,
    not every value: their dataclass reprs printed whole arrays, a wall of numbers in a notebook. NaN
    is left out of the range and said; a tensor NumPy cannot read (on a GPU, meta, bfloat16) is its
    dtype, shape and device, where it was "Tensor" alone; never raises (a repr that fails hides the
    object)."""
    try:
        array = np.asarray(value)
    except Exception:  # (a CUDA tensor, anything NumPy cannot read)
        if getattr(value, "dtype", None) is None or getattr(value, "device", None) is None:
            return type(value).__name__
        size = "x".join(str(n) for n in value.shape) or "0-dim"
        return " ".join([dtype_name(value.dtype)] + ([size] if shape else []) + [f"on {value.device}"])
    said = [str(array.dtype)] + (["x".join(str(n) for n in array.shape) or "0-dim"] if shape else [])
    if array.size == 0 or array.dtype.kind not in "biuf":
        return " ".join(said + (["empty"] if array.size == 0 else []))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # (nanmin of NaN alone: "All-NaN slice encountered")
        low, high = array.min(), array.max()  # (a NaN is the min: the nan-functions, 2.4x slower, only then)
        nan = array.dtype.kind == "f" and bool(np.isnan(low))
        if nan:
            low, high = np.nanmin(array), np.nanmax(array)
    if nan and np.isnan(low):
        return " ".join(said + ["all NaN"])
    low, high = (f"{v:.4g}" if array.dtype.kind == "f" else str(int(v)) for v in (low, high))
    return " ".join(said + [f"in [{low}, {high}]"]) + (" and NaN" if nan else "")
