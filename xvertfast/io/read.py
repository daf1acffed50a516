"""Decoding radiographs from PNG, TIFF, JPEG, DICOM and raw JSRT files.

The format is recognised from the file's content, not its name; every failure
is an :class:`ImageReadError` naming the file and the problem. Image sizes are
checked against a pixel limit *before* any pixel is decoded, so a crafted
header cannot exhaust memory.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import threading
import warnings

import numpy as np

from xvertfast.io import dicom_codecs
from xvertfast.io.errors import ImageReadError, WarningsNamingTheFile
from xvertfast.io.radiograph import Radiograph

__all__ = ["read_image", "require_content", "full_range", "sniff_format", "DEFAULT_MAX_PIXELS", "JSRT_SHAPE", "MIN_SIDE"]

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
    if head[:4] in _TIFF:
        return "tiff"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
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


def _check_pixels(path: str, h: int, w: int, max_pixels: int) -> None:
    if h * w > max_pixels:
        raise ImageReadError(path, f"image claims {w} x {h} (width x height) = {h * w:,} pixels, above the limit of "
                             f"{max_pixels:,} (max_pixels); refusing to decode")  # fmt: skip
    if h < 1 or w < 1:
        raise ImageReadError(path, f"image has no pixels ({w} x {h}, width x height)")


def _bits_from_values(values: np.ndarray, container: int) -> int:
    """Significant bits of integer data stored in a wider container (12-bit in 16-bit PNG)."""
    top = int(values.max()) if values.size else 0
    return int(min(container, max(8, top.bit_length())))


def _luminance(values: np.ndarray, notes: list[str], path: str) -> np.ndarray:
    """The luminance (ITU-R 601 weights) of RGB(A) samples in the last axis, in the samples' own
    type: integer samples stay integers of their depth, so the output keeps it."""
    _luminance_note(notes, path, "RGB" if values.shape[-1] == 3 else "RGBA")
    grey = values[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if values.dtype.kind in "ui":
        return np.rint(grey).astype(values.dtype)
    return grey.astype(np.float32)


def _luminance_note(notes: list[str], path: str, mode: str) -> None:
    notes.append(f"{path}: {mode} image converted to luminance (grayscale)")


#: JPEG start-of-frame markers -> the process they start (ITU-T T.81 B.1.1.3; T.87 for JPEG-LS).
_JPEG_SOF = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless",
             0xC5: "differential sequential", 0xC6: "differential progressive", 0xC7: "differential lossless",
             0xC9: "arithmetic-coded extended", 0xCA: "arithmetic-coded progressive",
             0xCB: "arithmetic-coded lossless", 0xCD: "arithmetic-coded differential sequential",
             0xCE: "arithmetic-coded differential progressive", 0xCF: "arithmetic-coded differential lossless",
             0xF7: "JPEG-LS"}  # fmt: skip


def _jpeg_frame(path: str) -> tuple[int, int] | None:
    """The marker (SOFn) and sample precision of a JPEG's first frame header, found by walking
    the segments before it (however long its EXIF and ICC profile); None where there is none in
    the first 65536 segments and fill bytes (a corrupt file)."""
    try:
        with open(path, "rb") as f:
            f.seek(2)
            for _ in range(1 << 16):
                head = f.read(4)
                if len(head) < 4 or head[0] != 0xFF:
                    return None
                if head[1] == 0xFF:  # fill byte
                    f.seek(-3, os.SEEK_CUR)
                    continue
                if head[1] in _JPEG_SOF:
                    precision = f.read(1)
                    return (head[1], precision[0]) if precision else None
                length = int.from_bytes(head[2:4], "big")
                if length < 2:
                    return None
                f.seek(length - 2, os.SEEK_CUR)
    except OSError:
        pass
    return None


def _jpeg_process_pillow_lacks(path: str) -> str | None:
    """The JPEG process (and depth) a file's first frame header names where Pillow cannot decode
    it (lossless, JPEG-LS, 12-bit, ...), e.g. "12-bit lossless JPEG"; None where it is one Pillow
    decodes, or where no frame header is found (a corrupt file)."""
    frame = _jpeg_frame(path)
    if frame is None:
        return None
    marker, precision = frame
    if marker in (0xC0, 0xC1, 0xC2) and precision == 8:
        return None
    return f"{precision}-bit {_JPEG_SOF[marker]}" + ("" if marker == 0xF7 else " JPEG")


#: The EXIF / TIFF Orientation tag: how the stored rows and columns are to be turned for display.
_ORIENTATION = 0x0112


#: Arithmetic-coded frames (Pillow's libjpeg-turbo decodes those of 8 bits): their coder spends far
#: less than a bit on a block like the ones before it (a 1024 x 1024 mostly black image: 248 bytes).
_ARITHMETIC_SOF = (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def _check_jpeg_size(path: str, h: int, w: int) -> None:
    """Refuses a Huffman-coded JPEG too small for the size its frame header claims: every 8 x 8
    block of its first component takes at least one bit (a Huffman code; a DC scan codes each
    block), and libjpeg fills what is missing of a file cut or lying about its size with grey,
    silently. An arithmetic-coded one has no such floor: it is not refused."""
    size = os.path.getsize(path)
    blocks = -(-h // 8) * -(-w // 8)
    if size * 8 >= blocks:
        return
    frame = _jpeg_frame(path)
    if frame is None or frame[0] not in _ARITHMETIC_SOF:
        raise ImageReadError(path, f"JPEG frame header claims {w} x {h} (width x height), more than its {size:,} "
                             "bytes can hold (at least 1 bit per 8 x 8 block): truncated or corrupt")  # fmt: skip


def _read_pillow(path: str, fmt: str, max_pixels: int, notes: list[str]):
    from PIL import Image

    try:
        # Pillow's warnings (corrupt EXIF data, a decompression-bomb size) named, as pydicom's: in
        # turns with the other readers, only while it reads the header and the EXIF, not the pixels
        with WarningsNamingTheFile(path, stacklevel=4):  # (the caller of read_image)
            im = Image.open(path)
        with im:
            _check_pixels(path, im.height, im.width, max_pixels)
            if fmt == "jpeg":
                _check_jpeg_size(path, im.height, im.width)
            mode = im.mode
            if fmt == "png":  # its getexif() decodes the pixels (an eXIf chunk may follow them): not in the lock's turn
                im.load()
            with WarningsNamingTheFile(path, stacklevel=4):
                orientation = im.getexif().get(_ORIENTATION, 1)
            if orientation not in (1, None):
                from PIL import ImageOps

                im = ImageOps.exif_transpose(im)
                notes.append(f"{path}: turned upright as its EXIF Orientation ({orientation}) says")
            if mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "La"):
                _luminance_note(notes, path, "palette" if mode.startswith("P") else mode)
                im = im.convert("L")
            elif mode == "1":
                im = im.convert("L")
            im.load()
            values = np.asarray(im)
            info = {"format": fmt, "mode": mode, "size": im.size}
    except ImageReadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"refused by the decompression-bomb check: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # (Pillow opens no frame it lacks a decoder for: a cut one it opens, and fails later)
        process = _jpeg_process_pillow_lacks(path) if fmt == "jpeg" and "cannot identify" in str(exc) else None
        if process:
            raise ImageReadError(path, f"{process}: not decoded here (Pillow decodes 8-bit baseline and "
                                 "progressive JPEG); convert it to PNG or TIFF") from None  # fmt: skip
        raise ImageReadError(path, f"cannot decode {fmt.upper()}: truncated or corrupt ({exc})") from None
    if values.ndim != 2:
        raise ImageReadError(path, f"expected a single-channel image, decoded shape {values.shape}")
    if values.dtype == np.uint8:
        bits = 8
    else:  # 16-bit PNG arrives as uint16 or int32
        values = values.astype(np.uint16 if values.min() >= 0 and values.max() < 65536 else np.int32)
        bits = _bits_from_values(values, 16)
    return values, bits, "MONOCHROME2", info


class _TiffLogCollected(logging.Filter):
    """tifffile logs what it finds odd in a file (a bad tag, a wrong strip count, a bad page
    offset) naming no file: in a batch of thousands such lines say nothing of where they came
    from. Its records while a thread reads a TIFF are kept for that file instead: its notes,
    named, or the words of its error."""

    reading = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        logged = getattr(self.reading, "logged", None)
        if logged is None:  # tifffile used elsewhere: logged as it would be
            return True
        logged.append(record.getMessage())
        return False


_TIFF_LOG = _TiffLogCollected()


@contextlib.contextmanager
def _tiff_log_collected(logged: list[str]):
    logging.getLogger("tifffile").addFilter(_TIFF_LOG)  # (once: a filter is added once)
    _TIFF_LOG.reading.logged = logged
    try:
        yield
    finally:
        _TIFF_LOG.reading.logged = None


def _tifffile_said(logged: list[str]) -> str:
    return f"; tifffile: {'; '.join(logged)}" if logged else ""


def _read_tiff(path: str, max_pixels: int, notes: list[str]):
    """A TIFF's first page; what tifffile logged about the file is its notes, or where the file is
    refused, part of its error (a failed file's notes are not reported)."""
    logged: list[str] = []
    try:
        return _decode_tiff(path, max_pixels, notes, logged)
    except ImageReadError as exc:
        said = _tifffile_said(logged)
        if said and said not in exc.problem:
            raise ImageReadError(path, exc.problem + said) from None
        raise


def _decode_tiff(path: str, max_pixels: int, notes: list[str], logged: list[str]):
    import tifffile

    try:
        with _tiff_log_collected(logged), tifffile.TiffFile(path) as tif:
            if not len(tif.pages):
                raise ImageReadError(path, f"TIFF has no readable page: truncated or corrupt{_tifffile_said(logged)}")
            page = tif.pages[0]
            shape = page.shape
            if len(shape) < 2:
                raise ImageReadError(path, f"TIFF page has shape {shape}, not an image")
            # from the tags: a planar page's shape is (samples, H, W)
            _check_pixels(path, page.imagelength, page.imagewidth, max_pixels)
            planar = page.samplesperpixel > 1 and int(page.planarconfig) == 2  # SEPARATE
            if len(tif.pages) > 1:
                notes.append(f"{path}: TIFF has {len(tif.pages)} pages; reading the first")
            photometric = int(page.photometric)
            white_is_zero = flip = photometric == 0  # MINISWHITE
            colormap = page.colormap if int(page.photometric) == 3 else None  # PALETTE: values index it
            inks = page.tags.get(_INKSET)
            cmyk = int(page.photometric) == 5 and (inks is None or int(inks.value) == 1)  # SEPARATED, CMYK inks
            if int(page.photometric) == 5 and not cmyk:
                raise ImageReadError(path, f"SEPARATED TIFF with inks other than CMYK (InkSet {inks.value}): "
                                     "no colours to take its luminance from")  # fmt: skip
            compression = getattr(page.compression, "name", str(page.compression))
            tag = page.tags.get(_ORIENTATION)
            orientation = int(tag.value) if tag is not None else 1
            try:
                values = page.asarray()
            except (KeyError, ValueError, RuntimeError) as exc:
                if "imagecodecs" not in str(exc):
                    raise
                values, flip = _tiff_without_imagecodecs(path, compression, white_is_zero)
                planar = False  # Pillow interleaves the samples
            info = {"format": "tiff", "shape": shape, "dtype": str(page.dtype), "bitspersample": page.bitspersample,
                    "compression": compression}  # fmt: skip
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types on corrupt data
        raise ImageReadError(path, f"cannot decode TIFF: truncated or corrupt ({exc}){_tifffile_said(logged)}") from None
    notes.extend(f"{path}: {message}" for message in logged)
    if values.dtype.kind not in "biuf":  # complex (a Fourier transform's): no grey levels
        raise ImageReadError(path, f"TIFF holds {values.dtype} samples, not grey levels")
    bits = None
    if planar and values.ndim == 3:
        values = np.moveaxis(values, 0, -1)
    if colormap is not None and values.ndim in (2, 3):
        if values.ndim == 2:  # (Pillow's fallback gives the colours, 8-bit)
            try:
                values = np.moveaxis(np.asarray(colormap, np.uint16)[:, values], 0, -1)
            except IndexError:
                raise ImageReadError(path, f"palette TIFF has values beyond its {colormap.shape[-1]}-entry "
                                     "colour map") from None  # fmt: skip
            bits = 16  # a TIFF colour map holds 16-bit entries
        _luminance_note(notes, path, "palette")
        values = _luminance(values, [], path)
    if cmyk and values.ndim == 3 and values.shape[-1] >= 4:  # ink amounts: as RGBA they were another image
        values = _cmyk_to_rgb(values[..., :4])
        _luminance_note(notes, path, "CMYK")
        values = _luminance(values, [], path)
    if values.ndim == 3 and values.shape[-1] in (3, 4):
        values = _luminance(values, notes, path)
    elif values.ndim == 3 and values.shape[-1] == 2 and photometric in (0, 1):  # grey + alpha, as Pillow reads PNG's
        values = np.ascontiguousarray(values[..., 0])
        notes.append(f"{path}: grey + alpha image: the alpha (transparency) left out")
    if values.ndim != 2:
        raise ImageReadError(path, f"expected a single-channel image, decoded shape {values.shape}")
    if values.dtype == bool:  # 1-bit pages: as Pillow gives them, 0 and 255
        values = values.astype(np.uint8) * 255
    if orientation != 1 and orientation in _UPRIGHT:
        values = np.ascontiguousarray(_UPRIGHT[orientation](values))
        notes.append(f"{path}: turned upright as its TIFF Orientation ({orientation}) says")
    if values.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ImageReadError(path, f"float TIFF contains {bad} NaN or infinite value(s)")
        bits = 32
    elif bits is not None:
        pass  # a colour map's
    elif values.dtype == np.uint8:
        bits = 8
    elif values.dtype.kind == "i":  # signed: the container's range (its top bits hold the sign)
        bits = 8 * values.dtype.itemsize
    else:
        bits = _bits_from_values(values, 8 * values.dtype.itemsize)
    if flip:
        values = _invert(values, bits)
    return values, bits, "MONOCHROME1" if white_is_zero else "MONOCHROME2", info


#: The TIFF InkSet tag: 1 (or absent) for a SEPARATED image's cyan, magenta, yellow and black.
_INKSET = 332


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """RGB of CMYK ink amounts (0 = none), each channel (1 - ink) * (1 - black), in their type."""
    top = 1.0 if cmyk.dtype.kind == "f" else float(np.iinfo(cmyk.dtype).max)
    ink = cmyk.astype(np.float64) / top
    rgb = (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:4]) * top
    return rgb.astype(cmyk.dtype) if cmyk.dtype.kind == "f" else np.rint(rgb).astype(cmyk.dtype)


#: TIFF Orientation -> the turn that shows the stored rows as meant (the tag names where row 0
#: and column 0 lie: 3 bottom-right, 6 right-top, ...; as Pillow's exif_transpose applies them).
_UPRIGHT = {
    2: np.fliplr,
    3: lambda v: np.rot90(v, 2),
    4: np.flipud,
    5: np.transpose,
    6: lambda v: np.rot90(v, -1),
    7: lambda v: np.rot90(v, 2).T,
    8: lambda v: np.rot90(v, 1),
}


def _stored_range(bits: int, signed: bool) -> tuple[int, int]:
    """The lowest and highest value ``bits`` bits can store (two's complement when signed)."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _tiff_without_imagecodecs(path: str, compression: str, white_is_zero: bool) -> tuple[np.ndarray, bool]:
    """The first page decoded by Pillow, for compressions tifffile leaves to imagecodecs (LZW,
    PackBits, JPEG: common in radiograph exports). Returns the pixels and whether they still
    need the MINISWHITE flip: Pillow flips 1- and 8-bit MINISWHITE pages itself, not 16-bit ones."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            mode = im.mode
            values = np.asarray(im.convert("RGB") if mode == "P" else im)  # a palette's colours, not its indices
    except Exception:
        raise ImageReadError(path, f"TIFF compression {compression} needs a codec that neither tifffile nor "
                             "Pillow has here: pip install imagecodecs") from None  # fmt: skip
    if mode == "1":
        values = values.astype(np.uint8) * 255
    return values, white_is_zero and mode not in ("1", "L")


def full_range(rad: Radiograph, depth_hint: int | None = None) -> tuple[float, float]:
    """The decoded values that stand for black and white in ``rad``'s format (after rescale
    and polarity): a stored image's own scale, for reading another tool's output as it meant it.

    DICOM: BitsStored through the modality LUT; float TIFF: [0, 1]; 8-bit and signed integers:
    their type's range. A 16-bit PNG or TIFF does not record the depth of 12-bit data in it:
    ``depth_hint`` bits where its values fit in them (an output kept at its input's depth, as
    ``xvertfast enhance`` writes them), else the full 16, never the bits its own largest value
    needs (one bright pixel would change the scale).
    """
    v = rad.values
    if rad.source_format == "dicom":
        signed = int(rad.meta.get("PixelRepresentation", 0) or 0) == 1
        return _dicom_ends(rad.meta, rad.bits_stored, signed, np.dtype(np.int32 if signed else np.uint32))
    if v.dtype.kind == "f":
        return 0.0, 1.0
    bits = 8 * v.dtype.itemsize if v.dtype.kind == "u" else rad.bits_stored
    if v.dtype.kind == "u" and v.dtype.itemsize > 1 and depth_hint and int(v.max()) < (1 << depth_hint):
        bits = depth_hint
    lo, hi = _stored_range(bits, v.dtype.kind == "i")
    return float(lo), float(hi)


def _invert(values: np.ndarray, bits: int) -> np.ndarray:
    """Polarity flip within the stored range (bright = high afterwards).

    Signed integers flip within the signed range (v -> -1 - v), so negative values are not
    clipped away: clipping them would saturate half of a signed image's range.
    """
    if values.dtype.kind == "f":
        return (values.max() + values.min() - values).astype(values.dtype)
    lo, hi = _stored_range(bits, values.dtype.kind == "i")
    return (lo + hi - values.astype(np.int64)).clip(lo, hi).astype(values.dtype)


def _read_dicom(path: str, max_pixels: int, notes: list[str]):
    """pydicom's parts take turns (WarningsNamingTheFile); a JPEG 2000 frame is decoded between
    them, where other readers can run meanwhile (:mod:`~xvertfast.io.dicom_codecs`)."""
    with WarningsNamingTheFile(path, stacklevel=4):  # (the caller of read_image)
        ds, syntax = _parse_dicom(path, max_pixels)
    with dicom_codecs.decoded_ahead(ds, syntax), WarningsNamingTheFile(path, stacklevel=4):
        return _dicom_pixels(ds, syntax, path, notes)


#: Media Storage Directory Storage: the SOP class of a DICOMDIR.
_DICOMDIR = "1.2.840.10008.1.3.10"


def _parse_dicom(path: str, max_pixels: int):
    """The data set of a single-frame DICOM image within max_pixels, and its transfer syntax."""
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(path, "reading DICOM needs pydicom: pip install 'xvertfast[dicom]'") from None
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:
        raise ImageReadError(path, f"cannot parse DICOM: {exc}") from None
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        sop_class = (getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID", "")
        if "DirectoryRecordSequence" in ds or str(sop_class) == _DICOMDIR:
            raise ImageReadError(path, "a DICOMDIR (the index of a DICOM media folder), not an image")
        if not any(tag.group in (0x0008, 0x0010, 0x0020, 0x0028) for tag in ds.keys()):
            if len(getattr(ds, "file_meta", None) or ()):  # pydicom gives up on a cut encapsulated data set
                raise ImageReadError(path, "truncated or corrupt DICOM: its file meta header reads, "
                                     "but no data set after it")  # fmt: skip
            raise ImageReadError(path, "not DICOM: no DICM marker and no DICOM elements")
        raise ImageReadError(path, "DICOM file has no pixel data (not an image, e.g. a report)")
    frames = _dicom_int(ds, "NumberOfFrames", 1, path)
    if frames > 1:
        raise ImageReadError(path, f"multi-frame DICOM ({frames} frames): expected one radiograph")
    rows, cols = _dicom_int(ds, "Rows", 0, path), _dicom_int(ds, "Columns", 0, path)
    _check_pixels(path, rows, cols, max_pixels)
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None:  # a raw data set (no file meta): its encoding is what pydicom read it in
        syntax = _syntax_of_raw(ds)
        if syntax is not None:
            ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = syntax
    return ds, syntax


def _dicom_pixels(ds, syntax, path: str, notes: list[str]):
    """The stored values of a parsed DICOM image after its modality LUT, photometric and padding."""
    from pydicom.pixels import apply_modality_lut

    if syntax is not None and not getattr(syntax, "is_transfer_syntax", True):
        raise ImageReadError(path, f"its transfer syntax {syntax} is none DICOM defines (a vendor's private one?): "
                             "its pixel data cannot be decoded here")  # fmt: skip
    samples = _dicom_int(ds, "SamplesPerPixel", 1, path)
    if samples > 1 and _interleaved_by_codec(syntax) and ds.get("PlanarConfiguration") != 0:
        # JPEG, JPEG-LS and JPEG 2000 codestreams order their components themselves (PS3.5
        # 8.2: PlanarConfiguration is irrelevant there, shall be 0); pydicom's own plugins
        # would take a decoded interleaved frame for planes (1) and scramble its colours, or
        # refuse to decode without the element
        ds.PlanarConfiguration = 0
    if samples == 1 and "PhotometricInterpretation" not in ds:
        # pydicom refuses to decode without it; one sample per pixel is grey
        ds.PhotometricInterpretation = "MONOCHROME2"
        notes.append(f"{path}: no PhotometricInterpretation; read as MONOCHROME2 (bright = high)")
    try:
        arr = dicom_codecs.pixel_array(ds, syntax)
    except Exception as exc:
        name = getattr(syntax, "name", str(syntax))
        if syntax is not None and getattr(syntax, "is_compressed", False) and not _has_decoder(syntax):
            raise ImageReadError(path, f"compressed transfer syntax '{name}' needs a decoder: "
                                 "pip install 'xvertfast[dicom-codecs]' (pylibjpeg, python-gdcm)") from None  # fmt: skip
        if _HEADER_REFUSED.match(str(exc)):  # pydicom's check of the Image Pixel attributes: nothing cut short
            raise ImageReadError(path, f"invalid DICOM image header: {exc}") from None
        raise ImageReadError(path, f"cannot decode DICOM pixel data ({name}): truncated or corrupt? ({exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    indices = None  # a PALETTE COLOR image's stored values, which PixelPaddingValue refers to
    bits = _dicom_int(ds, "BitsStored", 8 * arr.dtype.itemsize, path)
    if samples == 3 and arr.ndim == 3:  # pydicom hands YBR data over as RGB
        arr, photometric = _luminance(arr, notes, path), "MONOCHROME2"
    elif photometric == "PALETTE COLOR" and arr.ndim == 2:
        # the stored values are indices into the colour tables, not grey levels
        indices, arr, bits = arr, _palette_luminance(ds, arr, path), _palette_bits(ds, path)
        photometric = "MONOCHROME2"
        _luminance_note(notes, path, "PALETTE COLOR")
    elif arr.ndim == 2 and photometric not in ("MONOCHROME1", "MONOCHROME2"):  # RGB or YBR of one sample: grey
        notes.append(f"{path}: PhotometricInterpretation {photometric} with one sample per pixel; read as "
                     "MONOCHROME2 (bright = high)")  # fmt: skip
        photometric = "MONOCHROME2"
    if arr.ndim != 2:
        raise ImageReadError(path, f"expected a single-frame grayscale image, decoded shape {arr.shape}")
    signed = _dicom_int(ds, "PixelRepresentation", 0, path) == 1 and arr.dtype.kind == "i"
    try:
        values = apply_modality_lut(arr, ds)
        lo, hi = _dicom_ends(ds, bits, signed, arr.dtype)
    except Exception as exc:  # a malformed RescaleSlope ("1,5"), an empty one, a broken LUT
        found = ", ".join(f"{k} {ds.get(k)!r}" for k in ("RescaleSlope", "RescaleIntercept") if k in ds)
        raise ImageReadError(path, f"cannot apply its modality LUT / rescale ({found or 'Modality LUT Sequence'}): "
                             f"{exc}") from None  # fmt: skip
    if photometric == "MONOCHROME1":
        # MONOCHROME1 describes the values after the modality LUT, so they are flipped there,
        # within the image of the stored range (the LUT may be a table, not a line).
        values = lo + hi - np.asarray(values, dtype=np.float64)
    padding = _padding_mask(ds, arr if indices is None else indices, path)
    if padding is not None:
        # padding marks pixels outside the exposed field (PS3.3 C.7.5.1.1.2): left in, its
        # extreme value would squeeze the anatomy into a sliver of the min-max range
        values = np.array(values)  # a copy: pydicom may hand back the decoded array itself
        values[padding] = values[~padding].min()
        notes.append(f"{path}: {int(padding.sum())} padding pixels (PixelPaddingValue) set to the image's "
                     "darkest value")  # fmt: skip
    return values, bits, photometric, ds


#: How pydicom words its refusal of the Image Pixel module's values (a missing PlanarConfiguration,
#: BitsStored above BitsAllocated, an unknown PhotometricInterpretation) before decoding anything.
_HEADER_REFUSED = re.compile(r"Missing required element: \(0028,|A \(0028,[0-9A-Fa-f]{4}\) '|Unknown \(0028,")


def _interleaved_by_codec(syntax) -> bool:
    """Whether a transfer syntax's codestream orders the colour components itself (every
    encapsulated one but RLE, whose segments are planes)."""
    from pydicom.uid import RLELossless

    return bool(getattr(syntax, "is_encapsulated", False)) and syntax != RLELossless


def _palette_luminance(ds, indices: np.ndarray, path: str) -> np.ndarray:
    """The luminance of a PALETTE COLOR image's colours, at the colour tables' depth."""
    from pydicom.pixels import apply_color_lut

    try:
        rgb = apply_color_lut(indices, ds)
    except Exception as exc:  # tables missing or malformed
        raise ImageReadError(path, f"PALETTE COLOR image whose colour lookup tables cannot be applied: {exc}") from None
    return _luminance(rgb, [], path)


def _palette_bits(ds, path: str) -> int:
    """The bits of a PALETTE COLOR image's table entries (8 or 16: their Descriptor's third value)."""
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    try:
        return 8 if int(descriptor[2]) == 8 else 16
    except (TypeError, ValueError, IndexError):
        return 16


def _dicom_int(ds, keyword: str, default: int, path: str) -> int:
    """An integer attribute, or the file's own error naming it when it is not one."""
    value = ds.get(keyword, default)
    try:
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        raise ImageReadError(path, f"DICOM {keyword} is not a number: {value!r}") from None


def _syntax_of_raw(ds):
    """The transfer syntax a data set without file meta was read in, from its encoding."""
    from pydicom import uid

    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return None
    if implicit:
        return uid.ImplicitVRLittleEndian
    return uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian


def _padding_mask(ds, arr: np.ndarray, path: str) -> np.ndarray | None:
    """The stored pixels that are padding (PixelPaddingValue, up to PixelPaddingRangeLimit), or
    None where there is none to mask (no padding, or nothing else left)."""
    if "PixelPaddingValue" not in ds or arr.dtype.kind not in "iu":
        return None
    first = _dicom_int(ds, "PixelPaddingValue", 0, path)
    limit = _dicom_int(ds, "PixelPaddingRangeLimit", first, path) if "PixelPaddingRangeLimit" in ds else first
    if arr.dtype.kind == "i":  # a signed image's padding written as US (63536 for -2000): its bits are meant
        top, wrap = np.iinfo(arr.dtype).max, 1 << (8 * arr.dtype.itemsize)
        first, limit = (v - wrap if top < v < wrap else v for v in (first, limit))
    lo, hi = min(first, limit), max(first, limit)
    mask = (arr >= lo) & (arr <= hi)
    return mask if mask.any() and not mask.all() else None


def _dicom_ends(ds, bits: int, signed: bool, dtype: np.dtype) -> tuple[float, float]:
    """The lowest and highest value after the modality LUT of what ``bits`` bits can store
    (the LUT may be a table, not a line)."""
    from pydicom.pixels import apply_modality_lut

    ends = np.asarray(apply_modality_lut(np.array(_stored_range(bits, signed), dtype=dtype), ds))
    return float(ends.min()), float(ends.max())


def _has_decoder(syntax) -> bool:
    """Whether pydicom has a working decoder plugin for this transfer syntax here."""
    try:
        from pydicom.pixels import get_decoder

        return bool(get_decoder(syntax).is_available)
    except Exception:  # unknown syntax, or an older pydicom
        return False


def _read_jsrt(path: str, max_pixels: int, notes: list[str]):
    _check_pixels(path, JSRT_SHAPE[0], JSRT_SHAPE[1], max_pixels)
    raw = np.fromfile(path, dtype=">u2").reshape(JSRT_SHAPE)
    values = _invert(np.minimum(raw, (1 << JSRT_BITS) - 1).astype(np.uint16), JSRT_BITS)
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


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS,
               photometric: str | None = None, warn: bool = True) -> Radiograph:  # fmt: skip
    """Reads a radiograph; bright = bone, pixels min-max scaled to [0, 1] over the real values.

    Args:
        path: a PNG (8/16-bit), TIFF (8/16-bit or float), JPEG, DICOM or raw JSRT ``.IMG`` file.
        max_pixels: larger images are refused before decoding (decompression bombs).
        photometric: override the polarity of formats that do not record it (PNG, JPEG):
            ``"MONOCHROME1"`` for files stored with bone dark; the pixels are then inverted.
        warn: also give the returned ``notes`` (what decoding changed, e.g. colour to
            luminance) as ``UserWarning``s; batch jobs pass False and report the notes
            with the file's record instead. pydicom's own warnings are given either way,
            prefixed by the path.

    Raises:
        ImageReadError: naming the file and the problem (missing, empty, directory, permission,
            unrecognised or corrupt content, too many pixels, NaN in a float TIFF, DICOM without
            pixel data, multi-frame DICOM, compressed DICOM without a decoder, ...).
    """
    p = os.fspath(path)
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
    if fmt == "png" and head[12:16] == b"IHDR":  # size check straight from the header bytes
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        _check_pixels(p, height, width, max_pixels)
        if head[24] == 16 and head[25] in (2, 4, 6):  # bit depth 16; colour, grey + alpha, colour + alpha
            notes.append(f"{p}: 16-bit PNG with colour or alpha: decoded at 8 bits (the decoder keeps "
                         "only the high byte of such samples); save it as 16-bit greyscale to keep the depth")  # fmt: skip
    try:
        if fmt in ("png", "jpeg"):
            values, bits, photo, meta = _read_pillow(p, fmt, max_pixels, notes)
        else:
            reader = {"tiff": _read_tiff, "dicom": _read_dicom, "jsrt": _read_jsrt}[fmt]
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
            values = _invert(values, bits)
        photo = photometric
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    pixels = ((v - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros(v.shape, np.float32)
    if warn:
        for note in notes:
            warnings.warn(note, UserWarning, stacklevel=2)
    return Radiograph(pixels=pixels, values=np.asarray(values), bits_stored=bits, photometric=photo,
                      source_format=fmt, path=p, meta=meta, notes=notes)  # fmt: skip


#: Smallest image side the batch commands accept (a radiograph, not a thumbnail).
MIN_SIDE = 32


def require_content(rad: Radiograph, min_side: int = MIN_SIDE) -> Radiograph:
    """Refuses what decodes but cannot be a radiograph to process: too small, or constant."""
    h, w = rad.shape
    if min(h, w) < min_side:
        raise ImageReadError(rad.path, f"image is {w} x {h} pixels (width x height): too small for a radiograph (minimum side {min_side})")
    if float(rad.pixels.max()) == float(rad.pixels.min()):
        raise ImageReadError(rad.path, "constant image: there is no structure to enhance")
    return rad
