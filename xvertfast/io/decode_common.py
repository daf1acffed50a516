"""What the decoders share: the pixel limit, bit depths, colour to luminance, polarity, JPEG and JPEG 2000
frame headers, imagecodecs' log.

Each decoder (:mod:`~xvertfast.io.decode_pillow`, :mod:`~xvertfast.io.decode_tiff`,
:mod:`~xvertfast.io.decode_dicom`) returns the stored values; these helpers keep the
checks and conversions they have in common in one place, so every format is held to the same
pixel limit and converts colour the same way.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import struct
from typing import BinaryIO

import numpy as np

from xvertfast.io.errors import ImageReadError, LogNamingTheFile

__all__ = ["PNG_DEPTH_KEYWORD", "JPEG_SOF", "FileBytes", "opened_within_max_pixels", "jpeg_frame", "jpeg2000_siz",
           "check_pixels", "bits_from_values", "luminance", "luminance_note", "grey_kept",
           "KEPT_ROWS", "high_bytes_note", "grey_alpha_note", "stored_range", "invert", "FLOAT_SCALE_SLACK",
           "ORIENTATION", "imagecodecs_log", "imagecodecs_decoder", "imagecodecs_wanted"]


#: The EXIF / TIFF Orientation tag: how the stored rows and columns are to be turned for display.
ORIENTATION = 0x0112
#: The PNG text keyword under which ``write_image`` records a png16's depth (e.g. "12" for
#: values 0..4095). Not sBIT: by the PNG spec sBIT says the samples were scaled up to 16 bits, so
#: a decoder recovering the source's values would shift unscaled ones right (4095 -> 255).
PNG_DEPTH_KEYWORD = "xvertfast bits stored"


#: JPEG start-of-frame markers -> the process they start (ITU-T T.81 B.1.1.3; T.87 for JPEG-LS).
JPEG_SOF = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless",
            0xC5: "differential sequential", 0xC6: "differential progressive", 0xC7: "differential lossless",
            0xC9: "arithmetic-coded extended", 0xCA: "arithmetic-coded progressive",
            0xCB: "arithmetic-coded lossless", 0xCD: "arithmetic-coded differential sequential",
            0xCE: "arithmetic-coded differential progressive", 0xCF: "arithmetic-coded differential lossless",
            0xF7: "JPEG-LS"}  # fmt: skip


class FileBytes(io.BytesIO):
    """A file's bytes in memory (read once for all of a PNG's or JPEG's checks and its decoding; a
    TIFF's with a tag rewritten), which Pillow's messages name as they name the file ('cannot
    identify image file '/x.png'')."""

    def __init__(self, data: bytes, path: str):
        super().__init__(data)
        self.path = path

    def __repr__(self) -> str:
        return repr(self.path)


def opened_within_max_pixels(fp: BinaryIO, formats: tuple[str, ...]):
    """Pillow's image of ``fp`` opened by the class Pillow registers for the first of ``formats``
    ("PNG", "JPEG", "JPEG2000") that takes it (Image.OPEN, as Image.open finds it), without
    Image.open's decompression-bomb check: for a file whose size max_pixels has passed, the one
    limit (Pillow's, about 179 Mpx, refused what a higher max_pixels allowed, and warned of one
    above 89 Mpx, an error under -W error). Pillow's limit is a global, so it is not lifted
    instead: a thread opening another file meanwhile would lose it. The registered class, not a
    plugin's name for it, which is not Pillow's documented API. None where no class takes the
    file, or none is registered: Image.open, with its check, then opens it or says why."""
    from PIL import Image

    Image.preinit()  # (registers PNG and JPEG, as Image.open does first)
    start = fp.tell()
    for name in formats:
        if name not in getattr(Image, "OPEN", {}):
            Image.init()  # (the others, JPEG 2000's among them)
        opener = getattr(Image, "OPEN", {}).get(name)
        if opener is None:
            continue
        fp.seek(start)
        try:
            return opener[0](fp)
        except (SyntaxError, IndexError, TypeError, struct.error):  # (what Image.open takes as not this format)
            pass
    fp.seek(start)
    return None


def jpeg_frame(f: BinaryIO) -> tuple[int, int, int | None, int | None] | None:
    """The marker (SOFn), sample precision, rows and columns (None where cut off) of the first
    frame header of the JPEG that ``f`` starts with (a file, or a DICOM frame's codestream),
    found by walking the segments before it (however long its EXIF and ICC profile); None where
    there is none in the first 65536 segments and fill bytes (a corrupt file)."""
    f.seek(2)
    for _ in range(1 << 16):
        head = f.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return None
        if head[1] == 0xFF:  # fill byte
            f.seek(-3, os.SEEK_CUR)
            continue
        if head[1] in JPEG_SOF:
            frame = f.read(5)  # precision, rows, columns
            if not frame:
                return None
            if len(frame) < 5:
                return head[1], frame[0], None, None
            return head[1], frame[0], int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
        length = int.from_bytes(head[2:4], "big")
        if length < 2:
            return None
        f.seek(length - 2, os.SEEK_CUR)
    return None


def jpeg2000_siz(source: bytes) -> tuple[int | None, int, int, bool | None] | None:
    """The first component's sample precision, rows, columns and whether its samples are signed
    (precision and sign None where the segment is cut before them) that a JPEG 2000 codestream
    declares in its SIZ segment (right after the SOC marker; also inside a JP2 file), or None
    where it has none: the one parse of it, as :func:`jpeg_frame` is JPEG's and JPEG-LS'."""
    at = source.find(b"\xff\x4f\xff\x51")
    if at < 0 or len(source) < at + 24:
        return None
    width, height, left, top = struct.unpack(">4I", source[at + 8 : at + 24])
    if len(source) <= at + 42:
        return None, height - top, width - left, None
    ssiz = source[at + 42]  # its first component's: the sign bit, then the precision less 1
    return (ssiz & 0x7F) + 1, height - top, width - left, bool(ssiz & 0x80)


#: What libpng says of every interlaced file imagecodecs decodes (of the call, which reads the
#: passes right all the same, not of the file): no note.
_LIBPNG_ON_ANY_INTERLACED = "Interlace handling should be turned on"


def _imagecodecs_words(message: str) -> str | None:
    """One of imagecodecs' messages as a note says it: libpng's warnings ("PNG warning: iCCP: too
    short"; older imagecodecs: "PNG iCCP: too short") as libpng's, its line on every interlaced
    file left out; any other (imagecodecs logs from its JPEG 2000, TIFF, colour-management and
    APNG code too) as imagecodecs', so that the note names where it came from."""
    if _LIBPNG_ON_ANY_INTERLACED in message:
        return None
    if message.startswith("PNG "):
        return "libpng: " + message.removeprefix("PNG ").removeprefix("warning: ")
    return "imagecodecs: " + message


def importable(module: str) -> bool:
    """Whether ``module`` can be found, without importing it (a missing decoder's message names it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module hidden, or half-imported
        return False


def imagecodecs_decoder(codec: str):
    """imagecodecs' decode function for ``codec`` ("png", "jpeg2k", ...), or None where imagecodecs
    (or its import fails), or the codec in its build (a build may leave codecs out), is missing."""
    try:
        import imagecodecs
    except ImportError:
        return None
    flags = getattr(imagecodecs, codec.upper(), None)  # PNG, JPEG2K, ...: says whether the build has it
    return getattr(imagecodecs, f"{codec}_decode", None) if getattr(flags, "available", False) else None


def imagecodecs_wanted(codec: str, name: str | None = None, command: bool = False) -> str:
    """What to install where :func:`imagecodecs_decoder` finds no decoder for ``codec`` (spelt
    as it takes it; ``name``: as the message says it, where not the same): imagecodecs (with
    ``command``, as the command that installs it, for a message that names no other: a list of
    packages gives its own); where it is installed, imagecodecs with that codec; where it is
    installed but fails to import (built for another Python or numpy: an ImportError), that, and
    why. Each message takes the words as they are, so that a PNG's and a DICOM's say it alike."""
    try:
        importlib.import_module("imagecodecs")
    except ImportError as exc:
        if not importable("imagecodecs"):
            return "`pip install imagecodecs`" if command else "imagecodecs"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"imagecodecs (installed, but it fails to import: {reason})"
    return f"imagecodecs with its {name or codec} codec"


def imagecodecs_log() -> LogNamingTheFile:
    """A block keeping what imagecodecs logs while this thread decodes a file as that file's
    notes: libpng's warnings on a 16-bit colour PNG or on a TIFF's PNG-compressed strips (which
    are decoded on the reading thread for it). Not kept, logged as before, naming no file: what
    imagecodecs logs on tifffile's worker threads, which decode a TIFF page of several strips or
    tiles in other codecs (JPEG 2000's, say) on a machine of 4 cores or more, and what it logs
    decoding DICOM pixel data (:mod:`~xvertfast.io.dicom_codecs`, outside any such block)."""
    return LogNamingTheFile("imagecodecs", _imagecodecs_words)


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


def luminance(values: np.ndarray, notes: list[str], path: str, source: str | None = None,
              whole: bool = True) -> np.ndarray:  # fmt: skip
    """The luminance (ITU-R 601 weights) of RGB(A) samples in the last axis, in the samples' own
    type: integer samples stay integers of their depth, so the output keeps it. A note says
    what was converted: ``source`` (a palette's or CMYK's colours), else RGB or RGBA; of RGB whose
    channels are equal, that the conversion lost nothing where it did not (:func:`grey_kept`).
    ``whole=False``: ``values`` are not all the pixel's samples (a TIFF's extra ones were left
    out), or not all the image holds (a PNG's tRNS transparency that hides pixels, said in a note
    of its own), so something was lost whatever its colours: no such claim."""
    # term by term, not a matrix product: BLAS sums in an order that follows the array's memory
    # layout, which moves a luma landing on .5 across the rounding line between layouts. Each
    # channel is weighed in float64 (whatever its type: float32 samples too) and added into one
    # array, not copied whole to float64 first: at 4096 x 4096 RGB that copy alone was 384 MiB,
    # and this function's peak is 256 MiB, was 672 (tracemalloc)
    grey = np.multiply(values[..., 0], 0.299, dtype=np.float64)
    grey += np.multiply(values[..., 1], 0.587, dtype=np.float64)
    grey += np.multiply(values[..., 2], 0.114, dtype=np.float64)
    if values.dtype.kind in "ui":
        grey = np.rint(grey, out=grey).astype(values.dtype)
    else:
        grey = grey.astype(np.float32)  # (float64 samples lose digits: grey_kept then says so)
    said = source or ("RGB" if values.shape[-1] == 3 else "RGBA")
    luminance_note(notes, path, said, lost_nothing=whole and said == "RGB" and grey_kept(values, grey))
    return grey


def grey_kept(rgb: np.ndarray, grey: np.ndarray) -> bool:
    """Whether converting ``rgb`` (red, green and blue in the last axis, 3 of them: an alpha or
    a CMYK's ink is lost whatever its colours) to ``grey`` lost nothing: its channels are equal in
    every pixel (a grey image stored as colour) and ``grey`` is that channel exactly (float64
    samples come back float32: not, where that rounds one). Compared :data:`KEPT_ROWS` rows at a
    time, stopping at the first that differ: whole, a 4096 x 4096 image's comparison planes cost
    tens of MiB and a colour image's answer waited for all of them."""
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or grey.shape != rgb.shape[:-1]:
        return False
    return all(_rows_kept(rgb[top : top + KEPT_ROWS], grey[top : top + KEPT_ROWS])
               for top in range(0, rgb.shape[0], KEPT_ROWS))  # fmt: skip


#: Rows :func:`grey_kept` compares at a time (a Pillow image's crops too: decode_pillow).
KEPT_ROWS = 256


def _rows_kept(rgb: np.ndarray, grey: np.ndarray) -> bool:
    """:func:`grey_kept` of one block of rows (views: nothing copied but the block's comparisons)."""
    first = rgb[..., 0]
    return bool(np.array_equal(rgb[..., 1], first) and np.array_equal(rgb[..., 2], first)
                and np.array_equal(grey, first))  # fmt: skip


def luminance_note(notes: list[str], path: str, source: str, lost_nothing: bool = False) -> None:
    """The note of a colour image read as its luminance; ``lost_nothing`` (:func:`grey_kept`): a
    grey one stored as RGB, which a reader need not worry over, is told so."""
    kept = ": its red, green and blue are equal in every pixel, so the conversion lost nothing" if lost_nothing else ""
    notes.append(f"{path}: {source} image converted to luminance (grayscale){kept}")


def high_bytes_note(notes: list[str], path: str, bits: int, fmt: str, decoder: str, wanted: str) -> None:
    """One wording for a colour image of ``bits``-bit samples that Pillow (``decoder``: it, in the
    words that say why it decoded the file) decoded at 8 bits, keeping each sample's high byte (12-bit
    data in 16-bit samples: 16 levels), a PNG's or a TIFF's (``fmt``); ``wanted``: what reads it at
    its depth (:func:`imagecodecs_wanted`). Read silently, the depth and most levels were lost."""
    notes.append(f"{path}: {bits}-bit colour {fmt}: decoded at 8 bits ({decoder} keeps only the high byte of each "
                 f"sample); {wanted} reads it at {bits} bits, or save it as {bits}-bit greyscale to keep the depth")


def grey_alpha_note(notes: list[str], path: str, kind: str = "grey") -> None:
    """One wording for a grey + alpha image of any format (and a palette + alpha one's, ``kind``):
    its grey is kept as it is, not converted, so 'converted to luminance' would say what did not
    happen (a palette's colours are converted, which their own note says)."""
    notes.append(f"{path}: {kind} + alpha image: the alpha (transparency) left out")


def stored_range(bits: int, signed: bool) -> tuple[int, int]:
    """The lowest and highest value ``bits`` bits can store (two's complement when signed)."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


#: How far stored floats may stray past [0, 1], the scale they are scored on, and still count as
#: on it (a tool's rounding: float32 1 + 1 ulp): outputs=DIR takes them within it, and a
#: MONOCHROME1 one flips within [0, 1] there too, not within its own values (0.1 off for an
#: output of 0.1..nextafter(1, 2)).
FLOAT_SCALE_SLACK = 1e-6


def invert(values: np.ndarray, bits: int) -> np.ndarray:
    """Polarity flip within the stored range (bright = high afterwards).

    Signed integers flip within the signed range (v -> -1 - v), so negative values are not
    clipped away: clipping them would saturate half of a signed image's range. Floats in [0, 1],
    the scale stored floats are read on (:func:`~xvertfast.io.read.full_range`, an evaluated
    tool's outputs), flip within it (v -> 1 - v), as integers within theirs: flipped within
    their own values, a MONOCHROME1 output of 0.1..0.6 was scored as 0.1..0.6, not 0.4..0.9.
    Floats within :data:`FLOAT_SCALE_SLACK` of [0, 1] count as on it. Other floats have no known
    scale: within their own values.
    """
    slack = FLOAT_SCALE_SLACK
    if values.dtype.kind == "f":
        hi = values.max()  # (each end once; an empty array is refused here, by numpy's words for max)
        lo = values.min()
        if -slack <= lo and hi <= 1 + slack:
            return (1 - values).astype(values.dtype)
        with np.errstate(over="ignore"):
            total = hi + lo
        if np.isinf(total):  # finite floats whose sum passes the largest one: their halves' does not
            return ((hi / 2 + lo / 2 - values / 2) * 2).astype(values.dtype)
        return (total - values).astype(values.dtype)
    lo, hi = stored_range(bits, values.dtype.kind == "i")
    return (lo + hi - values.astype(np.int64)).clip(lo, hi).astype(values.dtype)
