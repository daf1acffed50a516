"""Input checks and dtype handling shared by the Python faces of the ops."""

from __future__ import annotations

import numpy as np
import torch

from xvertfast._extension import cuda_kernels_run_on, has_extension
from xvertfast._pixels import describe_masked, describe_non_array
from xvertfast._text import dtype_name

_KERNEL_DTYPES = (torch.float32, torch.float64)


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (half/bfloat16 are computed in float32)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def from_numpy(array: np.ndarray) -> torch.Tensor:
    """A tensor of a NumPy array's values: big-endian data (FITS, some TIFF readers), which torch
    refuses, is byte-swapped and read-only memory (``np.load(mmap_mode="r")``, a broadcast view),
    on which torch warns, copied; other arrays are shared, not copied. A 0-d array stays 0-d
    (``np.ascontiguousarray`` makes it 1-d: the callers' shape errors said (1,))."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch warns on read-only memory (a view of it could write)
        array = array.copy()
    return torch.from_numpy(array)


def real_from_numpy(value, who: str, image: str = "an image ([H, W] array or tensor)",
                    values: str = "floats in [0, 1]") -> torch.Tensor:  # fmt: skip
    """:func:`from_numpy` of ``value`` (a NumPy array, or what ``np.asarray`` makes one of), refused
    in ``who``'s name ("op: argument") unless it holds real numbers torch can take: torch says only
    "can't convert np.ndarray of type numpy.object_" (or numpy.longdouble), and a complex image has
    no grey levels. Booleans and integers pass, for the caller's own check to say how to scale them.
    ``image`` says what the caller takes, for a value nothing like an array (None, a dict), or a
    sequence NumPy cannot make one array of: a list of images of different sizes, where NumPy
    said only "setting an array element with a sequence ... inhomogeneous shape", naming no
    argument, or of tensors that require grad, or live on a GPU. A masked array with pixels
    masked is refused too: its mask would be dropped and the pixels under it smoothed as any.
    ``values``: what the caller takes, for a refusal of complex or object values."""
    if (masked := describe_masked(value)) is not None:  # (np.asarray drops the mask: its pixels counted)
        raise TypeError(f"{who} must be {image}, got {masked}: fill them first (array.filled(value))")
    try:
        array = np.asarray(value)
    except (ValueError, RuntimeError, TypeError) as exc:
        why = "its items differ in shape" if "inhomogeneous" in str(exc) else str(exc).split(". ")[0]
        raise TypeError(f"{who} must be {image}, got a {type(value).__name__} that NumPy cannot make one array "
                        f"of ({why}): give one image at a time") from None  # fmt: skip
    text = array.dtype.kind in "US" and not isinstance(value, np.ndarray)  # (a path: NumPy made it a 0-d str)
    if array.ndim == 0 and (array.dtype.kind == "O" or text):
        # (None, a dict, a Radiograph, a path: nothing like an array at all; a Radiograph or a path is told
        # how to get its pixels, where the baselines said "got Radiograph" alone)
        raise TypeError(f"{who} must be {image}, got {describe_non_array(value)}")
    if array.dtype.kind not in "biuf" or array.dtype.itemsize > 8:
        got = f"a NumPy array of {array.dtype}"
        if not isinstance(value, np.ndarray):
            got = f"{type(value).__name__} ({got})"
        if array.dtype.kind == "f":
            got += ", wider than torch's float64: convert it to float32 or float64"
        raise TypeError(f"{who} must be {values}, got {got}")
    return from_numpy(array)


def as_tensor(value, who: str, values: str = "floats in [0, 1]",
              image: str = "an image ([H, W] array or tensor)") -> tuple[torch.Tensor, bool]:  # fmt: skip
    """``value``, a torch tensor or a NumPy array (:func:`real_from_numpy`), as a tensor, and whether
    it was a NumPy array: the ops that take either return NumPy for NumPy (wls, gradient_correlation,
    feature_entropy, select_max_entropy). Anything else is refused in ``who``'s name ("op: argument").
    ``image``: what the op takes, for :func:`real_from_numpy`'s refusals (a masked array given to
    feature_entropy was told it "must be an image ([H, W] array or tensor)")."""
    if isinstance(value, torch.Tensor):
        return value, False
    if isinstance(value, np.ndarray):
        return real_from_numpy(value, who, image, values), True
    # (a Radiograph or a path is told how to get its pixels, as preprocess and find_spine tell it)
    raise TypeError(f"{who} must be a NumPy array or a torch tensor, got {describe_non_array(value)}")


def check_floating(x: torch.Tensor, op: str, name: str, from_numpy: bool = False) -> None:
    """Refuses an ``x`` that is no floating-point tensor; ``from_numpy``: it was a NumPy array,
    named by its NumPy dtype ('got torch.uint8' puzzled a NumPy user). Integers and booleans are
    told the conversion, in the type given: the refusal named the dtype alone (gradient correlation
    and the min-max scaled entropy do not change with the values' scale, so it is all they need)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        got = dtype_given(x, from_numpy)
        if not x.is_complex():  # (complex: no grey levels, no conversion to offer)
            got += f": give {name}.astype(np.float32)" if from_numpy else f": give {name}.float()"
        raise TypeError(f"{op}: {name} must be a floating-point {'array' if from_numpy else 'tensor'}, got {got}")


def dtype_given(x: torch.Tensor, from_numpy: bool) -> str:
    """``x``'s dtype as a refusal says it: where it was a NumPy array (``from_numpy``), by its NumPy
    name ('got torch.uint8' puzzled a NumPy user), else as torch says it."""
    return f"a NumPy array of {dtype_name(x.dtype)}" if from_numpy else str(x.dtype)


def use_kernel(x: torch.Tensor) -> bool:
    """Whether the compiled op can run on this tensor's device."""
    if not has_extension():
        return False
    if x.device.type in ("cpu", "meta"):  # meta: the ops' fake kernels give the shapes (bincount has none)
        return True
    return x.device.type == "cuda" and cuda_kernels_run_on(x.device)
