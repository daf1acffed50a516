"""Reading radiographs from PNG, TIFF, JPEG, DICOM and raw JSRT files.

The format is recognised from the file's content, not its name; every failure
is an :class:`ImageReadError` naming the file and the problem. Image sizes are
checked against a pixel limit *before* any pixel is decoded, so a crafted
header cannot exhaust memory. Each format's decoder is a module of its own
(:mod:`~xvertfast.io.decode_pillow`, :mod:`~xvertfast.io.decode_tiff`,
:mod:`~xvertfast.io.decode_dicom`); this one finds the format, runs its decoder and scales
what it gives into a :class:`Radiograph`.
"""

from __future__ import annotations

import errno
import math
import numbers
import os
import sys
import warnings

import numpy as np

from xvertfast._checks import whole_number
from xvertfast._paths import fspath
from xvertfast.io.decode_common import FLOAT_SCALE_SLACK, check_pixels, invert, stored_range
from xvertfast.io.decode_dicom import dicom_ends, read_dicom
from xvertfast.io.decode_pillow import read_pillow
from xvertfast.io.decode_tiff import read_tiff
from xvertfast.io.errors import ImageReadError
from xvertfast.io.radiograph import Radiograph

__all__ = ["read_image", "require_content", "content_problem", "full_range", "stored_as_floats", "on_stored_scale",
           "sniff_format", "DEFAULT_MAX_PIXELS", "JSRT_SHAPE", "MIN_SIDE"]


#: Largest image accepted (pixels); a 4300 x 4300 flat-panel radiograph is 18.5 M.
DEFAULT_MAX_PIXELS = 100_000_000


#: Raw JSRT database images: 2048 x 2048, 12 bits in big-endian 16-bit words, high = dark.
JSRT_SHAPE = (2048, 2048)


JSRT_BITS = 12


_PNG = b"\x89PNG\r\n\x1a\n"


_JPEG = b"\xff\xd8\xff"


_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


_EXT_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
               ".dcm": "dicom", ".dicom": "dicom", ".img": "jsrt"}  # fmt: skip



def _sniff(path: str, head: bytes, size: int) -> str:
    if head.startswith(_PNG):
        return "png"
    if head.startswith(_JPEG):
        return "jpeg"
    if (len(head) >= 132 and head[128:132] == b"DICM") or head.startswith(b"DICM"):  # (its preamble cut off)
        # before TIFF's magic: a DICOM preamble may hold a TIFF header (PS3.10 7.1, a file both
        # read), which pointed to no TIFF page here and was refused as truncated or corrupt
        return "dicom"
    if head[:4] in _TIFF:
        return "tiff"
    if head[:2] in (b"\x02\x00", b"\x08\x00") and (head[4:6].isalpha() or head[6:8] == b"\x00\x00"):
        return "dicom"  # a raw data set (no preamble): group 2 or 8 first, an explicit VR or a 4-byte length
    ext = os.path.splitext(path)[1].lower()
    if ext == ".img" and size == JSRT_SHAPE[0] * JSRT_SHAPE[1] * 2:
        return "jsrt"
    if ext == ".dcm":
        return "dicom"  # DICOM without the 128-byte preamble; pydicom decides
    expected = _EXT_FORMAT.get(ext)
    if expected == "jsrt":
        raise ImageReadError(path, f"a raw JSRT .IMG file must be {JSRT_SHAPE[0]}x{JSRT_SHAPE[1]} 16-bit "
                             f"({JSRT_SHAPE[0] * JSRT_SHAPE[1] * 2} bytes), this one is {size} bytes")  # fmt: skip
    if expected:
        raise ImageReadError(path, f"named like a {expected.upper()} file but its content is not one "
                             f"(it starts with {head[:8]!r})")  # fmt: skip
    raise ImageReadError(path, "unrecognised image format (not PNG, TIFF, JPEG, DICOM or raw JSRT .IMG)")



def sniff_format(path: str) -> str | None:
    """The format of a file by its content ("png", "tiff", "jpeg", "dicom", "jsrt"), or None
    when it cannot be read or is none of them: what an extensionless file holds."""
    try:
        if not os.path.isfile(path):  # opening a named pipe would wait for a writer
            return None
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(132)
        return _sniff(path, head, size)
    except (OSError, ImageReadError):
        return None



def stored_as_floats(rad: Radiograph) -> bool:
    """Whether ``rad``'s file stores floats (a float TIFF, a DICOM's FloatPixelData or
    DoubleFloatPixelData), whose scale is [0, 1]: an integer DICOM's values may be floats only
    through its rescale, and keep their BitsStored scale."""
    if rad.values.dtype.kind != "f":
        return False
    if rad.source_format != "dicom":
        return True
    return any(element in rad.meta for element in ("FloatPixelData", "DoubleFloatPixelData"))


def full_range(rad: Radiograph, depth_hint: int | None = None) -> tuple[float, float]:
    """The decoded values that stand for black and white in ``rad``'s format (after rescale
    and polarity): a stored image's own scale, for reading another tool's output as it meant it.

    DICOM: BitsStored through the modality LUT; floats as stored (a float TIFF, a DICOM's float
    pixel data, which has no BitsStored): [0, 1]; 8-bit and signed integers: their type's range.
    A 16-bit PNG records the depth of 12-bit data in it only where it holds another tool's sBIT
    chunk or the text chunk xvertfast's png16 writes
    (:data:`~xvertfast.io.decode_common.PNG_DEPTH_KEYWORD`), a TIFF only where its samples are
    packed (BitsPerSample 12) or its MaxSampleValue is 2^n - 1 (4095), not in bare 16-bit ones: those bits
    where the values fit in them (past them they were scaled up: 16 bits); in a file that records
    nothing, ``depth_hint`` bits where the values fit in those and the hint in their type (an output
    kept at its input's depth, as ``xvertfast enhance`` writes them); else the full 16, never the
    bits its own largest value needs (one bright pixel would change the scale).
    """
    v = rad.values
    if stored_as_floats(rad):
        return 0.0, 1.0
    if rad.source_format == "dicom":
        signed = int(rad.meta.get("PixelRepresentation", 0) or 0) == 1
        return dicom_ends(rad.meta, rad.bits_stored, signed, np.dtype(np.int32 if signed else np.uint32))
    bits = 8 * v.dtype.itemsize if v.dtype.kind == "u" else rad.bits_stored
    if v.dtype.kind == "u" and v.dtype.itemsize > 1:
        recorded = rad.meta.get("significant_bits") if isinstance(rad.meta, dict) else None
        if recorded:  # what the file says comes first; values past it were scaled to the type's range
            bits = rad.bits_stored if int(v.max()) < (1 << recorded) else bits  # (bits_stored is then that depth)
        elif depth_hint and depth_hint <= bits and int(v.max()) < (1 << depth_hint):
            bits = depth_hint  # (a float32 or 32-bit input's depth would scale a 16-bit output over 32 bits)
    lo, hi = stored_range(bits, v.dtype.kind == "i")
    return float(lo), float(hi)


def on_stored_scale(rad: Radiograph, depth_hint: int | None = None) -> np.ndarray | None:
    """``rad``'s values on [0, 1] by its file's own scale (:func:`full_range`), as its writer meant
    them (a greyed-out output stays grey, where min-max scaling would stretch it); None for floats
    past [0, 1] (by more than :data:`~xvertfast.io.decode_common.FLOAT_SCALE_SLACK`): their scale is
    unknown, and each caller says so its own way (the preview scales them min-max, evaluate refuses)."""
    values = np.asarray(rad.values, dtype=np.float64)
    if stored_as_floats(rad) and (values.min() < -FLOAT_SCALE_SLACK or values.max() > 1 + FLOAT_SCALE_SLACK):
        return None
    lo, hi = full_range(rad, depth_hint=depth_hint)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def _read_jsrt(path: str, max_pixels: int, notes: list[str]):
    """A raw JSRT image, refused where a value needs more than 12 bits: such values were clipped
    to white, so a byte-swapped or 16-bit file read as a mostly black image without a word. The
    byte order is not guessed; the refusal says whether the swapped order would fit."""
    check_pixels(path, JSRT_SHAPE[0], JSRT_SHAPE[1], max_pixels)
    raw = np.fromfile(path, dtype=">u2").reshape(JSRT_SHAPE)
    top = (1 << JSRT_BITS) - 1
    if int(raw.max()) > top:
        over = int(np.count_nonzero(raw > top))
        if int(raw.byteswap().max()) <= top:
            cause = ("read as little-endian words every value fits in 12 bits, so its bytes are likely swapped "
                     "(written little-endian): swap each pair of bytes (dd conv=swab does) to read it")
        else:
            cause = "read in either byte order values exceed 12 bits: 16-bit data, or not a JSRT image"
        raise ImageReadError(path, f"a raw JSRT .IMG file holds 12-bit values (0-{top}) in big-endian 16-bit "
                             f"words, but {over} of {raw.size} exceed {top} (largest {int(raw.max())}); {cause}")
    values = invert(raw.astype(np.uint16), JSRT_BITS)
    return values, JSRT_BITS, "MONOCHROME1", {"format": "jsrt", "shape": JSRT_SHAPE}



def _why_missing(p: str) -> str:
    """Why a path that an archive listing shows is not there: a link that leads nowhere, or a
    folder on the way that this user may not enter (which hides what is there), says so."""
    link = os.path.islink(p)
    try:
        os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of symbolic links: it leads to no file"
        if exc.errno == errno.EACCES:
            where = f"what its symbolic link points to ({os.readlink(p)})" if link else "it"
            return f"permission denied: a folder on the way to {where} may not be entered"
    if not link:
        return "no such file or folder"
    return f"a broken symbolic link: what it points to ({os.readlink(p)}) does not exist"


def _min_max_scaled(values: np.ndarray) -> np.ndarray:
    """``values`` min-max scaled to [0, 1] in float32, computed in float64. 8- and 16-bit integers
    by a table of their range's values, the same numbers: the whole image in float64 took 0.2-0.5 s
    for a 3072^2 16-bit radiograph, the table 0.02 s."""
    lo, hi = values.min(), values.max()
    if hi == lo:
        return np.zeros(values.shape, np.float32)
    if values.dtype.kind in "ui" and values.dtype.itemsize <= 2:
        lo, hi = int(lo), int(hi)
        table = ((np.arange(lo, hi + 1, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)
        return table[np.subtract(values, lo, dtype=np.int32)]  # (any byte order, sign, 8 or 16 bits)
    lo, hi = float(lo), float(hi)
    if math.isinf(hi - lo):  # finite ends further apart than the largest float64: their halves are not
        return ((values.astype(np.float64) / 2 - lo / 2) / (hi / 2 - lo / 2)).astype(np.float32)
    return ((values.astype(np.float64) - lo) / (hi - lo)).astype(np.float32)


def _is_inf(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == math.inf


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               photometric: str | None = None, warn: bool = True) -> Radiograph:  # fmt: skip
    """Reads a radiograph; bright = bone, pixels min-max scaled to [0, 1] over the real values.

    Args:
        path: a PNG (8/16-bit), TIFF (8/16-bit or float), JPEG, DICOM or raw JSRT ``.IMG`` file.
        max_pixels: larger images are refused before decoding (decompression bombs); a whole
            number >= 1, or ``math.inf`` for no limit at all, on any format (a PNG or JPEG too:
            even a tiny file claiming gigapixels is decoded): for trusted files only.
        photometric: override the polarity of formats that do not record it (PNG, JPEG):
            ``"MONOCHROME1"`` for files stored with bone dark; the pixels are then inverted.
        warn: also give the returned ``notes`` (what decoding changed, e.g. colour to
            luminance) as ``UserWarning``s; batch jobs pass False and report the notes
            with the file's record instead. pydicom's and Pillow's own warnings are given
            either way, prefixed by the path.

    Returns:
        :class:`Radiograph`: ``pixels`` float32 [H, W] in [0, 1] (a constant image is all 0),
        ``values`` as decoded, ``bits_stored``, ``photometric`` and ``notes``.

    Raises:
        ImageReadError: naming the file and the problem (missing, empty, directory, permission,
            unrecognised or corrupt content, too many pixels, NaN in a float TIFF, DICOM without
            pixel data, multi-frame DICOM, compressed DICOM without a decoder, ...).
        ValueError: ``max_pixels`` not a whole number >= 1 or ``math.inf``; ``photometric``
            other than ``"MONOCHROME1"``/``"MONOCHROME2"``, or given for a TIFF, DICOM or JSRT
            file (they record their own polarity).
    """
    # as text, so that messages and Radiograph.path name a bytes path as the file it is, not b'...'
    p = os.fsdecode(fspath(path, "read_image: path must be a file's path (str, bytes or pathlib.Path)"))
    if not p:  # (": no such file or folder" named nothing)
        raise ValueError("read_image: path is empty: give an image file's path")
    if "\0" in p:  # (os.stat's "embedded null character in path", naming nothing)
        size = f"{len(path):,} bytes" if isinstance(path, bytes) else f"{len(p):,} characters"
        raise ValueError(f"read_image: path holds a NUL character, which no file's path can ({size}): the image's "
                         "content? save it to a file and give that file's path")  # fmt: skip
    # math.inf: no limit (as before the check of 301bef8, where it fell through every comparison)
    # (None failed deep in the decoders: "'>' not supported between instances of 'int' and 'NoneType'";
    # a float of a whole number is taken here alone: 5e8 is how Python writes 500 million)
    max_pixels = sys.maxsize if _is_inf(max_pixels) else whole_number(max_pixels, "max_pixels", "read_image", low=1,
                                                                      floats=True)  # fmt: skip
    if os.path.isdir(p):
        raise ImageReadError(p, "is a directory, not an image file")
    if not os.path.exists(p):
        raise ImageReadError(p, _why_missing(p))
    if not os.path.isfile(p):  # opening a named pipe would wait for a writer, a device read forever
        raise ImageReadError(p, "not a regular file (a named pipe, socket or device)")
    try:
        size = os.path.getsize(p)
        with open(p, "rb") as f:
            head = f.read(132)
    except PermissionError:
        raise ImageReadError(p, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(p, f"cannot open: {exc.strerror or exc}") from None
    if size == 0:
        raise ImageReadError(p, "empty file (0 bytes)")
    fmt = _sniff(p, head, size)
    notes: list[str] = []
    if fmt == "png" and len(head) >= 26 and head[12:16] == b"IHDR":  # size check straight from the header bytes
        # (a file cut inside the IHDR is left to the decoder, which calls it truncated)
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        check_pixels(p, height, width, max_pixels)
    try:
        if fmt in ("png", "jpeg"):
            values, bits, photo, meta = read_pillow(p, fmt, max_pixels, notes)
        else:
            reader = {"tiff": read_tiff, "dicom": read_dicom, "jsrt": _read_jsrt}[fmt]
            values, bits, photo, meta = reader(p, max_pixels, notes)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(p, "not enough memory to decode it") from None
    except Exception as exc:  # a decoder tripping over malformed content: the file's problem, named as such
        raise ImageReadError(p, f"cannot decode {fmt.upper()}: {type(exc).__name__}: {exc}") from None
    if photometric is not None:
        if photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise ValueError(f"photometric must be 'MONOCHROME1' or 'MONOCHROME2', got {photometric!r}")
        if fmt not in ("png", "jpeg"):
            raise ValueError(f"{p}: photometric override only applies to PNG/JPEG; {fmt} records its own")
        if photometric == "MONOCHROME1":
            values = invert(values, bits)
        photo = photometric
    pixels = _min_max_scaled(np.asarray(values))
    if warn:
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
    return Radiograph(pixels=pixels, values=np.asarray(values), bits_stored=bits, photometric=photo,
                      source_format=fmt, path=p, meta=meta, notes=notes)  # fmt: skip



#: Smallest image side the batch commands accept (a radiograph, not a thumbnail).
MIN_SIDE = 32



def content_problem(pixels, min_side: int = MIN_SIDE) -> str | None:
    """Why the [H, W] grey levels ``pixels`` (an array or a tensor) are no radiograph to process, or
    None: too small, or constant, where the network would make up structure that is not there. The
    one check of a file's pixels (:func:`require_content`) and of those given to ``Enhancer.enhance``."""
    h, w = pixels.shape
    if min(h, w) < min_side:
        return f"image is {w} x {h} pixels (width x height): too small for a radiograph (minimum side {min_side})"
    if float(pixels.max()) == float(pixels.min()):
        return "constant image: there is no structure to enhance"
    return None


def require_content(rad: Radiograph, min_side: int = MIN_SIDE) -> Radiograph:
    """Refuses what decodes but cannot be a radiograph to process: too small, or constant."""
    if not isinstance(rad, Radiograph):  # (an array or a path: AttributeError 'shape' or 'path')
        raise TypeError(f"require_content: rad must be a Radiograph (xvertfast.io.read_image(path) gives one), "
                        f"got {type(rad).__name__}")  # fmt: skip
    problem = content_problem(rad.pixels, whole_number(min_side, "min_side", "require_content", low=1))
    if problem is not None:
        raise ImageReadError(rad.path, problem)
    return rad
