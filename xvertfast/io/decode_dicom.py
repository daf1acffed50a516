"""DICOM through pydicom: one frame's stored values after its modality LUT, polarity and padding.

pydicom's parts take turns with the other readers (:class:`~xvertfast.io.errors.WarningsNamingTheFile`,
so its warnings name the file); a JPEG 2000, JPEG-LS or lossless JPEG frame is decoded between
them, where other reader threads run meanwhile (:mod:`~xvertfast.io.dicom_codecs`).
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from xvertfast._text import count
from xvertfast.io import dicom_codecs
from xvertfast.io.decode_common import check_pixels, invert, jpeg2000_siz, jpeg_frame, luminance, stored_range
from xvertfast.io.errors import ImageReadError, NotAnImage, WarningsNamingTheFile

__all__ = ["read_dicom", "dicom_ends"]


def read_dicom(path: str, max_pixels: int, notes: list[str]):
    """pydicom's parts take turns (WarningsNamingTheFile); a JPEG 2000, JPEG-LS or lossless JPEG
    frame is decoded between them, where other readers can run meanwhile (:mod:`~xvertfast.io.dicom_codecs`)."""
    try:
        with WarningsNamingTheFile(path, stacklevel=4) as warned:  # (the caller of read_image)
            try:
                ds, syntax, codestream = _parse_dicom(path, max_pixels, notes)
            except ImageReadError as exc:
                if isinstance(exc, NotAnImage):
                    raise
                warned.leave_out(_about_its_last_value(path))
                if isinstance(exc, _CutWithinPixels):  # (the refusal says it: pydicom's warning says it again)
                    warned.leave_out(lambda message: message.startswith("End of file reached before delimiter"))
                raise
        source = codestream.source if codestream is not None else None
        sized = codestream is not None and (codestream.rows, codestream.cols) == (ds.get("Rows"), ds.get("Columns"))
        with dicom_codecs.decoded_ahead(ds, syntax, source, sized), WarningsNamingTheFile(path, stacklevel=4):
            return _dicom_pixels(ds, syntax, codestream, path, notes)
    except NotImplementedError as exc:  # pydicom converting an element when first asked for it
        if "Unknown Value Representation" not in str(exc):
            raise
        raise ImageReadError(path, f"corrupt DICOM header: {exc}") from None


#: pydicom's words for a value its VR does not allow (pydicom.valuerep's validators), the value as
#: Python writes it: "Invalid value for VR UI: '1.2.840.'. Please see <...> for allowed values ...".
_INVALID_VALUE = re.compile(r"Invalid value for VR [A-Z]{2}: (?P<value>.+?)\.(?: Please see |$)")


def _about_its_last_value(path: str) -> Callable[[str], bool]:
    """Whether a warning of pydicom's calls a value invalid that the file's last bytes are (NUL
    and space padding aside): the value of the element the file is cut within. A file cut within
    a UID ("1.2.840.10008.", its trailing dot not allowed) had pydicom's "Invalid value for VR
    UI" printed beside the refusal that says the file is cut short: the one problem, said twice,
    the first time in words that send the user to the DICOM standard's table of VRs. A file that
    cannot be opened again (moved or deleted meanwhile, an I/O error) leaves nothing out: the
    refusal being raised is the one to give, not this reopen's OSError."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 1024))
            end = f.read().rstrip(b"\0 ")
    except OSError:
        return lambda message: False

    def said(message: str) -> bool:
        found = _INVALID_VALUE.search(message)
        try:
            value = ast.literal_eval(found["value"]) if found else None
        except (ValueError, SyntaxError):
            return False
        if isinstance(value, str):
            value = value.encode("latin-1", "replace")
        return isinstance(value, bytes) and bool(value) and end.endswith(value)

    return said


#: The keywords of the elements that hold an image's pixels.
_PIXEL_DATA = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

#: Media Storage Directory Storage: the SOP class of a DICOMDIR.
_DICOMDIR = "1.2.840.10008.1.3.10"


def _parse_dicom(path: str, max_pixels: int, notes: list[str]):
    """The data set of a single-frame DICOM image within max_pixels, its transfer syntax, and its
    frame's codestream (:func:`_codestream_of`). A file whose 128-byte preamble was cut off (it
    starts with DICM) is read with one put back in memory: pydicom reads what follows DICM only
    after a preamble."""
    try:
        import pydicom
    except ImportError:
        raise ImageReadError(path, "reading DICOM needs pydicom: pip install 'xvertfast[dicom]'") from None
    deflated = _check_deflated_size(path, max_pixels)
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"DICM":
                notes.append(f"{path}: DICOM file without its 128-byte preamble (it starts with DICM): read as if "
                             "it had one")  # fmt: skip
                ds = pydicom.dcmread(io.BytesIO(bytes(128) + b"DICM" + f.read()), force=True)
            else:
                f.seek(0)
                ds = pydicom.dcmread(f, force=True)
    except MemoryError:
        # Python's read allocates what an element's length says before reading what is there: a
        # damaged length of ~4 GB fails so under a memory limit (ulimit -v, a batch scheduler's)
        if deflated:
            raise ImageReadError(path, "cannot parse DICOM: out of memory inflating its deflated data set") from None
        raise ImageReadError(path, f"cannot parse DICOM: out of memory reading its elements, which a file of "
                             f"{os.path.getsize(path):,} bytes cannot need: an element's length is corrupt") from None  # fmt: skip
    except Exception as exc:
        said = _file_meta_cut(path) or _length_cut(path, exc) or f"cannot parse DICOM: {exc or type(exc).__name__}"
        raise ImageReadError(path, said) from None
    sop_class = (getattr(ds, "file_meta", None) or {}).get("MediaStorageSOPClassUID", "")
    if not any(element in ds for element in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        if "DirectoryRecordSequence" in ds or str(sop_class) == _DICOMDIR:
            raise NotAnImage(path, "a DICOMDIR (the index of a DICOM media folder), not an image", "DICOMDIR")
        if not any(tag.group in (0x0008, 0x0010, 0x0020, 0x0028) for tag in ds.keys()):
            if len(getattr(ds, "file_meta", None) or ()):  # pydicom gives up on a cut encapsulated data set
                cut = _encapsulated_cut(path)
                if cut is not None:
                    raise _CutWithinPixels(path, cut)
                raise ImageReadError(path, _file_meta_cut(path) or "truncated or corrupt DICOM: its file meta header "
                                     "reads, but no data set after it: cut short? copy it again from its source")
            with open(path, "rb") as f:
                head = f.read(132)
                if b"DICM" in (head[128:], head[:4]):  # (cut before its file meta has an element; or its preamble)
                    raise ImageReadError(path, "truncated or corrupt DICOM: it has the DICM marker, but no elements "
                                         "that read after it")  # fmt: skip
            raise ImageReadError(path, "not DICOM: no DICM marker and no DICOM elements")
        problem, kind = _without_pixels(ds, sop_class)
        raise ImageReadError(path, problem) if kind is None else NotAnImage(path, problem, kind)
    derived = _derived_object(ds, sop_class)
    if derived is not None:  # (before its frames: a segmentation's are its segments, no cine loop)
        raise NotAnImage(path, *derived)
    frames = _dicom_int(ds, "NumberOfFrames", 1, path)
    if frames > 1:
        raise ImageReadError(path, f"multi-frame DICOM ({frames} frames): expected one radiograph per file; where one "
                             "frame is the radiograph, save it as an image of its own, e.g. with dcmtk's dcm2img "
                             "--frame K --write-16-bit-png FILE frame.png, or in Python, where "
                             "pydicom.pixels.pixel_array(FILE, index=K - 1) gives frame K")  # fmt: skip
    rows, cols = _dicom_int(ds, "Rows", 0, path), _dicom_int(ds, "Columns", 0, path)
    check_pixels(path, rows, cols, max_pixels)
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    stated = syntax is not None  # (by the file meta)
    if syntax is None:  # a raw data set (no file meta): its encoding is what pydicom read it in
        syntax = _syntax_of_raw(ds)
        if syntax is not None:
            ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = syntax
    _check_encapsulation(ds, syntax, stated, path)
    syntax = _native_under_compressed(ds, syntax, path, notes)
    if syntax == _ENCAPSULATED_UNCOMPRESSED:
        syntax = _unencapsulated(ds, path)
    codestream = _codestream_of(ds, syntax)
    _check_codestream_size(codestream, rows, cols, path)
    _check_codestream_end(codestream, syntax, path)
    return ds, syntax, codestream


def _check_encapsulation(ds, syntax, stated: bool, path: str) -> None:
    """Refuses pixel data encapsulated (compressed frames in items, of undefined length) under an
    uncompressed transfer syntax: a file whose TransferSyntaxUID was rewritten (an anonymiser's,
    a converter's) without its pixel data. pydicom reads the items' bytes as the pixels: an RLE
    frame larger than the image was read as an image of noise, under a warning of "excess
    padding"; a smaller one refused as "truncated or corrupt?". ``stated``: the syntax is the
    file meta's (else pydicom's reading of a data set without one)."""
    element = ds["PixelData"] if "PixelData" in ds else None  # (not FloatPixelData: never encapsulated)
    known = getattr(syntax, "is_transfer_syntax", False)
    if element is None or not element.is_undefined_length or not known or syntax.is_encapsulated:
        return
    said = (f"its transfer syntax (0002,0010) says {syntax.name}, which holds them uncompressed: the transfer syntax "
            "is wrong, so how the frames were compressed is unknown" if stated else
            "it has no file meta saying its transfer syntax, so how the frames were compressed is unknown (its data "
            f"set reads as {syntax.name}, which holds them uncompressed)")  # fmt: skip
    raise ImageReadError(path, f"its pixel data are encapsulated (compressed frames in items), but {said}; export it "
                         "again from its source")  # fmt: skip


def _native_under_compressed(ds, syntax, path: str, notes: list[str]):
    """Explicit VR Little Endian, with a note, where an encapsulated transfer syntax (a compressed
    one, or Encapsulated Uncompressed, said as such: its frames are not compressed) is said of
    pixel data that are not encapsulated (of a defined length) and hold exactly the bytes of the
    image uncompressed: a TransferSyntaxUID rewritten without its pixels. pydicom refused them as
    "Found unexpected tag (0000,0FFF) instead of (FFFE,E000)", worded "truncated or corrupt?",
    beside its own warning that the syntax may be wrong. Such pixel data of another length are
    refused saying both sizes. ``syntax`` itself otherwise (the data set is in explicit VR little
    endian either way: every encapsulated syntax is)."""
    from pydicom.uid import ExplicitVRLittleEndian

    element = ds["PixelData"] if "PixelData" in ds else None
    known = getattr(syntax, "is_transfer_syntax", False)
    if element is None or element.is_undefined_length or not known or not syntax.is_encapsulated:
        return syntax
    needed = _declared_bytes(ds)
    if not needed:  # (a header missing what it counts by: left for pydicom's decoding to refuse, as before)
        return syntax
    held = len(element.value or b"")
    uncompressed = syntax == _ENCAPSULATED_UNCOMPRESSED  # (its frames in items, not compressed)
    kind, items = ("an encapsulated one", "frames") if uncompressed else ("a compressed one", "compressed frames")
    if not needed <= held <= needed + 1:  # (+1: an odd count of bytes padded to an even length)
        why = ("cut short (copy it again from its source) or its transfer syntax is wrong (export it again)"
               if held < needed else "corrupt or its transfer syntax is wrong (export it again from its source)")
        raise ImageReadError(path, f"its transfer syntax {syntax.name} says its pixel data are encapsulated ({items} "
                             f"in items), but they are not and hold {held:,} bytes, not the {needed:,} of its image "
                             f"uncompressed: {why}")  # fmt: skip
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    element.VR = "OB" if _dicom_int(ds, "BitsAllocated", 16, path) <= 8 else "OW"
    notes.append(f"{path}: its transfer syntax (0002,0010) says {syntax.name}, {kind}, but its pixel "
                 f"data are not encapsulated and hold the {needed:,} bytes of its image uncompressed: read as "
                 "uncompressed (Explicit VR Little Endian; its transfer syntax is wrong)")  # fmt: skip
    return ExplicitVRLittleEndian


def _file_meta_cut(path: str) -> str | None:
    """Why a DICOM file is refused where it ends within its file meta header (the group 0002
    elements after DICM, explicit VR little endian: PS3.10 7.1), naming the element it ends in or
    the end its group length (0002,0000) declares; None where it does not, or where that is not
    known (not one element's header after DICM: "it has the DICM marker, but no elements"; a VR
    that is none, a meta past 64 KiB). pydicom's words for such a file were its own ("unpack
    requires a buffer of 4 bytes"), or it was said to have its file meta whole."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32  # (VRs whose length takes 4 bytes after 2 reserved: PS3.5 7.1.2)

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    at = 4 if data[:4] == b"DICM" else 132
    if data[at - 4 : at] != b"DICM" or at + 8 > size:
        return None
    end, ends = None, f"the file ends at byte {size:,}, within its file meta header"
    while at + 4 <= len(data) and data[at : at + 2] == b"\x02\x00":
        element, vr = int.from_bytes(data[at + 2 : at + 4], "little"), data[at + 4 : at + 6]
        if len(vr) == 2 and not (vr.isalpha() and vr.isupper()):
            return None
        long = vr.decode("latin-1") in EXPLICIT_VR_LENGTH_32
        head = 12 if long else 8
        length = int.from_bytes(data[at + head - (4 if long else 2) : at + head], "little")
        if length == 0xFFFFFFFF:  # (undefined: a sequence, which no file meta holds)
            return None
        if at + head + length > size:  # (its header or its value cut)
            name = keyword_for_tag(0x00020000 | element)
            named = f"(0002,{element:04X}){' ' + name if name else ''}"
            return f"truncated or corrupt DICOM: {ends}, in its element {named}: copy it again from its source"
        if element == 0 and length == 4:
            end = at + head + 4 + int.from_bytes(data[at + head : at + head + 4], "little")
        at += head + length
    if at + 4 > size and end is not None and end > size:  # (at an element's start, or within its tag)
        return (f"truncated or corrupt DICOM: {ends}, whose group length (0002,0000) says it ends at byte {end:,}: "
                "copy it again from its source")  # fmt: skip
    return None


def _length_cut(path: str, exc: Exception) -> str | None:
    """Why a DICOM file is refused where it ends within the 4-byte length of an element of explicit
    VR OB, OW, SQ, UN, ... (after its VR and 2 reserved bytes: PS3.5 7.1.2), naming the element;
    None where it does not. pydicom's words were its own ("unpack requires a buffer of 4 bytes"),
    where a file cut a few bytes earlier, within the element's tag or VR, is said to hold no pixel
    data (cut short)."""
    from pydicom.datadict import keyword_for_tag
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

    if not isinstance(exc, struct.error):
        return None
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - 11))
        end = f.read()
    for kept in range(4):  # (bytes of the length the file holds)
        head = end[len(end) - 8 - kept : len(end) - kept]
        if len(head) == 8 and head[4:6].decode("latin-1") in EXPLICIT_VR_LENGTH_32 and head[6:8] == b"\0\0":
            tags = [int.from_bytes(head[:2], order) << 16 | int.from_bytes(head[2:4], order)
                    for order in ("little", "big")]  # fmt: skip
            pairs = [(tag, keyword_for_tag(tag)) for tag in tags]
            tag, name = next((pair for pair in pairs if pair[1]), pairs[0])  # (Explicit VR Big Endian's, retired)
            named = f"({tag >> 16:04X},{tag & 0xFFFF:04X}){' ' + name if name else ''}"
            none = ", so it holds no pixel data" if name in _PIXEL_DATA else ""
            return (f"truncated or corrupt DICOM: the file ends at byte {size:,}, within the length of its element "
                    f"{named}{none}: copy it again from its source")  # fmt: skip
    return None


class _CutWithinPixels(ImageReadError):
    """A file refused where it ends within its encapsulated pixel data (:func:`_encapsulated_cut`):
    told apart so that only its refusal leaves out pydicom's warning of the missing delimiter."""


#: The header of encapsulated pixel data (7FE0,0010): explicit VR little endian (every encapsulated
#: transfer syntax's), OB, of undefined length (PS3.5 A.4).
_ENCAPSULATED_PIXELS = b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff"


def _encapsulated_cut(path: str) -> str | None:
    """Why a DICOM file is refused where it ends within its encapsulated pixel data (the compressed
    frames' items, before the sequence delimiter that ends them), found by walking the items'
    lengths from the last such pixel data header in the file; None where it does not (the
    delimiter is there), or where that is not known (no such header, an item tag that is none).
    pydicom gives up on the whole data set then, and the file was said to hold "no data set after"
    its file meta, beside pydicom's warning "End of file reached before delimiter (FFFE,E0DD)":
    the commonest damage of a compressed archive (a copy stopped midway), told as another. A file
    that cannot be opened again (moved or deleted meanwhile) leaves the refusal being raised as it is."""
    import mmap

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size, start = len(data), data.rfind(_ENCAPSULATED_PIXELS)
            if start < 0:
                return None
            at, item = start + len(_ENCAPSULATED_PIXELS), 0
            while at + 8 <= size:
                tag, length = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
                if tag == b"\xfe\xff\xdd\xe0":  # (the sequence delimiter: the pixel data end whole)
                    return None
                if tag != b"\xfe\xff\x00\xe0" or length == 0xFFFFFFFF:
                    return None
                if at + 8 + length > size:
                    what = "its offset table's item" if item == 0 else f"its fragment {item}"
                    where = f"in {what}, of {length:,} bytes, {size - at - 8:,} of them there"
                    break
                at, item = at + 8 + length, item + 1
            else:
                where = f"after {count(item, 'item')}, before the delimiter that ends them"
    except (OSError, ValueError):  # (gone, unreadable; an empty file cannot be mapped)
        return None
    return (f"truncated or corrupt DICOM: the file ends at byte {size:,}, within its encapsulated pixel data "
            f"(7FE0,0010) ({where}): copy it again from its source")


#: Transfer syntaxes DICOM defines that pydicom (3.0) does not know (it takes them for private ones), by their
#: names in PS3.6.
_UNKNOWN_TO_PYDICOM = {"1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
                       "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression", "1.2.840.10008.1.2.4.112": "JPEG XL",
                       "1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression"}

#: What to do with a file whose pixel data nothing here decodes.
_CONVERT = "convert the file to an uncompressed transfer syntax with a DICOM tool that decodes it, and read that"


#: Encapsulated Uncompressed Explicit VR Little Endian (PS3.5 A.4.11): each frame's native bytes in a
#: fragment of its own, for which pydicom (3.0) has no decoder.
_ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"


def _unencapsulated(ds, path: str):
    """Explicit VR Little Endian, the syntax an Encapsulated Uncompressed data set's frame is in,
    once its pixel data is that frame's bytes: it was refused as "needs a decoder (pip install
    'xvertfast[dicom-codecs]')", which decodes it no more than pydicom does. The header's file meta
    says so too (what a derived image's lossy history reads: nothing lossy here). A frame shorter
    than the header declares is refused here, as native pixel data cut short are, naming the file's
    own syntax: pydicom's refusal, later, names Explicit VR Little Endian, which the file is not in."""
    from pydicom.encaps import generate_frames
    from pydicom.uid import ExplicitVRLittleEndian

    name = "Encapsulated Uncompressed Explicit VR Little Endian"
    try:
        frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception as exc:
        raise ImageReadError(path, f"cannot decode DICOM pixel data ({name}): truncated or corrupt? "
                             f"({exc or type(exc).__name__})") from None  # fmt: skip
    bits = _dicom_int(ds, "BitsAllocated", 16, path)
    needed = _declared_bytes(ds)
    if len(frame) < needed:
        raise ImageReadError(path, _pixels_short(f"({name})", len(frame), _declared_image(ds, needed, path)))
    ds.PixelData = frame
    ds["PixelData"].is_undefined_length = False
    ds["PixelData"].VR = "OB" if bits <= 8 else "OW"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ExplicitVRLittleEndian


def _without_pixels(ds, media_class) -> tuple[str, str | None]:
    """Why a DICOM data set without pixel data is refused, and what it is for a count of the
    non-images, or None where it is a failure, not :class:`NotAnImage`: a file is passed over as no
    image only on evidence that it is none (a radiograph counted as skipped is lost unseen). The
    evidence: a known SOP class (:func:`_class_name`) that is no image's (a presentation state, a
    structured report, MR spectroscopy, Raw Data, a segmentation: which class, :func:`_sop_class`),
    or, no class known, bulk data that is no pixels (spectra, waveforms, a document) or a Modality
    of no image (SR, PR, SEG, ...). An image's class (a Parametric Map's too, whose float pixel data
    are read as an image), or with no class known Rows or Columns, says the file is a damaged image,
    cut short before its pixel data, but not with Modality SEG or RTDOSE, whose objects have them
    (:data:`_DERIVED_MODALITIES`); a data set ending at its SOP class, or saying nothing, is cut
    short too. A file holding a link to its pixels (JPIP) is to be retrieved again with them."""
    uid = _sop_class(media_class, ds)
    name = _class_name(uid)
    known = bool(name)
    modality = str(ds.get("Modality") or "").strip()
    said = f" (Modality {modality})" if modality else ""
    if "PixelDataProviderURL" in ds:  # (JPIP Referenced: a server's address where the pixels are)
        url = str(_readable(ds, "PixelDataProviderURL") or "").strip()
        return (f"DICOM file holds a link to its pixel data (JPIP{': ' + url if url else ''}), not the pixels: "
                "retrieve it again from its source with its pixel data (a transfer syntax other than JPIP "
                "Referenced)", None)  # fmt: skip
    bulk = next((keyword for keyword in _OTHER_BULK_DATA if keyword in ds), None)
    cut = max(ds.keys()) == 0x00080016  # (its data set ends within its SOP class: the class is no evidence)
    no_image_modality = modality.upper() in _NO_IMAGE_MODALITIES
    describes_image = ("Image Storage" in name or uid == _PARAMETRIC_MAP) if known else \
        ("Rows" in ds or "Columns" in ds) and not bulk and modality.upper() not in _DERIVED_MODALITIES  # fmt: skip
    if describes_image:
        parts = [name.replace(" Storage", "") if known else "", f"Modality {modality}" if modality else ""]
        size = [_readable(ds, keyword) for keyword in ("Columns", "Rows")]
        if all(isinstance(value, int) for value in size):  # (neither cut within nor empty)
            parts.append(f"{size[0]} x {size[1]}, width x height")
        what = ", ".join(part for part in parts if part)
        return (f"truncated or corrupt DICOM: its header describes an image{f' ({what})' if what else ''}, but the "
                "file holds no pixel data (cut short before it, or exported without it): copy it again from its "
                "source", None)  # fmt: skip
    if cut:
        read = str(_readable(ds, "SOPClassUID") or "").strip().rstrip("\0")
        return (f"truncated or corrupt DICOM: its data set ends at its SOP class UID (0008,0016)"
                f"{f', read as {read}' if read else ''}, without pixel data: cut short? copy it again from its "
                "source", None)  # fmt: skip
    if known:
        kind = name.replace(" Storage", "")
        return (f"DICOM file has no pixel data: {_a(kind)} {kind} object{said}, not an image",
                modality if no_image_modality else kind)  # fmt: skip
    if bulk or no_image_modality:
        of = ", ".join(part for part in (f"SOP class {uid}" if uid else "", f"Modality {modality}" if modality else "",
                                         "" if no_image_modality else f"holding {bulk}") if part)  # fmt: skip
        return (f"DICOM file has no pixel data: not an image ({of})",
                modality if no_image_modality else _OTHER_BULK_DATA[bulk])  # fmt: skip
    return (f"truncated or corrupt DICOM: it holds no pixel data, and neither its SOP class "
            f"({uid + ', unknown to pydicom' if uid else 'none'}) nor its Modality ({modality or 'none'}) says it is "
            "no image (a report, a presentation state): cut short? copy it again from its source", None)  # fmt: skip


#: The SOP classes whose pixel data are no picture but what was found in images (segment masks,
#: labels) or a dose grid: their names, and what the values are. Two pydicom (3.0) does not know.
#: Not a Parametric Map: the one class of float pixel data, which a float radiograph is stored as.
_DERIVED_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": ("Segmentation", "segment masks"),
    "1.2.840.10008.5.1.4.1.1.66.7": ("Label Map Segmentation", "segment labels"),
    "1.2.840.10008.5.1.4.1.1.66.8": ("Height Map Segmentation", "heights of segmented surfaces"),
    "1.2.840.10008.5.1.4.1.1.481.2": ("RT Dose", "a radiation dose grid"),
}

#: Parametric Map Storage: its name says no "Image", yet the reader reads its float pixel data as an image.
_PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"

#: The Modality values that say a data set with pixel data is such an object, where its SOP class
#: is unknown (none, a private one): the class whose words it gets.
_DERIVED_MODALITIES = {"SEG": "1.2.840.10008.5.1.4.1.1.66.4", "RTDOSE": "1.2.840.10008.5.1.4.1.1.481.2"}


def _derived_object(ds, media_class) -> tuple[str, str] | None:
    """Why a DICOM data set with pixel data is no radiograph, and its kind for a count, or None
    where it may be one: its pixel data are a segmentation's masks or a dose grid
    (:data:`_DERIVED_CLASSES`), which were read and enhanced as a radiograph (a multi-frame
    segmentation refused as a cine loop, a frame of it to be saved as the radiograph).
    The evidence, as :func:`_without_pixels` takes it: the SOP class where pydicom knows it (or
    this table), else a Modality of such an object (SEG, RTDOSE); an image's class with Modality
    SEG is read as the image its class says."""
    uid = _sop_class(media_class, ds)
    modality = str(ds.get("Modality") or "").strip()
    known = bool(_class_name(uid))
    derived = uid if known else _DERIVED_MODALITIES.get(modality.upper())
    if derived not in _DERIVED_CLASSES:
        return None
    name, values = _DERIVED_CLASSES[derived]
    of = f"{_a(name)} {name} object" if known else f"{_a(modality)} {modality} object (SOP class {uid or 'none'})"
    said = f" (Modality {modality})" if modality and known else ""
    kind = modality.upper() if modality.upper() in _NO_IMAGE_MODALITIES else name
    return f"DICOM file is {of}{said}: its pixel data are {values}, not a radiograph", kind


#: What a data set holds in place of pixels where it is no image, and what it is then: an MR
#: spectroscopy object's spectra (it has Rows and Columns, 1 x 1), a waveform's channels, an
#: encapsulated document.
_OTHER_BULK_DATA = {"SpectroscopyData": "MR Spectroscopy", "WaveformSequence": "Waveform",
                    "EncapsulatedDocument": "Encapsulated Document"}  # fmt: skip

#: The Modality values (PS3.3 C.7.3.1.1.1's defined terms) of objects that are no image: reports,
#: presentation states, key object selections, documents, registrations, RT plans and structures,
#: waveforms (ECG, EEG, audio, ...), measurements, protocols; segmentations and dose grids, whose
#: pixel data are no radiograph (:func:`_derived_object`).
_NO_IMAGE_MODALITIES = frozenset(
    "ANN AR ASMT AU CTPROTOCOL DOC ECG EEG EMG EOG EPS FID HD IOL KER KO LEN M3D OAM OPV PLAN POS PR REG RESP "
    "RTDOSE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SMR SR SRF VA XAPROTOCOL".split())


def _sop_class(media_class, ds) -> str:
    """The SOP class of a data set without pixel data, of the file meta's MediaStorageSOPClassUID
    and the data set's SOPClassUID: the data set's where it is known (a writer's meta saying
    Secondary Capture over an Enhanced SR is wrong, and was taken for a damaged image), but where
    the data set ends within it, a file cut short (1.2.840.10008.5.1.4.1.1.1, CR, of a DX's
    ...1.1.1.1): then the meta's alone. Else the meta's (read whole, before the data set), or the
    data set's where the meta has none."""
    meta, data = (str(uid or "").strip().rstrip("\0") for uid in (media_class, _readable(ds, "SOPClassUID")))
    if max(ds.keys()) == 0x00080016:  # (the data set ends within it)
        return meta
    if _class_name(data):
        return data
    return meta or data


def _class_name(uid: str) -> str:
    """A SOP class's name as pydicom gives it ("... Storage"), or "" where it is unknown (none, a
    private one): for the classes of :data:`_DERIVED_CLASSES` that pydicom (3.0) does not know
    (Label Map and Height Map Segmentation), the table's, so they are taken for the objects
    they are, as a Segmentation is, not for an unknown class with Rows (a damaged image)."""
    from pydicom.uid import UID

    if uid in _DERIVED_CLASSES:
        return f"{_DERIVED_CLASSES[uid][0]} Storage"
    name = UID(uid).name if uid else ""
    return name if name != uid else ""


def _readable(ds, keyword: str):
    """An element's value, or None where pydicom cannot read it (a file cut within a 2-byte
    Columns: "BytesLengthException ... To replace this error ..."), or it is missing."""
    try:
        return ds.get(keyword)
    except Exception:
        return None


#: Deflated Explicit VR Little Endian: the whole data set after the file meta deflated (PS3.5 A.5).
_DEFLATED = b"1.2.840.10008.1.2.1.99"


def _check_deflated_size(path: str, max_pixels: int, look: int = 1 << 20, spare: int = 4 << 20) -> bool:
    """Refuses a deflated DICOM whose data set inflates to more than the image its header
    declares (and ``spare`` bytes besides), inflating it a piece at a time and keeping only its
    first ``look`` bytes: pydicom inflates such a data set whole before reading any of it, and a
    megabyte of deflated zeros is a gigabyte. The image's size is checked against max_pixels as
    soon as it is read. Files of other transfer syntaxes, or whose start cannot be read, are
    left to pydicom. Returns whether the file is deflated."""
    with open(path, "rb") as f:
        head = f.read(144)  # preamble, DICM, (0002,0000) UL: the file meta's length
        at = 0 if head[:4] == b"DICM" else 128  # (a file whose preamble was cut off starts with DICM)
        if len(head) < at + 16 or head[at : at + 4] != b"DICM" or head[at + 4 : at + 10] != b"\x02\x00\x00\x00UL":
            return False
        f.seek(at + 16)
        meta = f.read(min(int.from_bytes(head[at + 12 : at + 16], "little"), 1 << 16))  # (a damaged length: not GBs)
        if _DEFLATED not in meta:
            return False
        inflater, start, total, budget, data = zlib.decompressobj(-zlib.MAX_WBITS), bytearray(), 0, None, b""
        while not inflater.eof:
            data = data or f.read(1 << 16)
            if not data:
                break
            try:
                out = inflater.decompress(data, 1 << 20)
            except zlib.error:
                return True  # corrupt: pydicom says so
            data, total = inflater.unconsumed_tail, total + len(out)
            if budget is None and len(start) < look:
                start += out[: look - len(start)]
                if len(start) >= look:
                    budget, declared = _declared_size(start, path, max_pixels)
                    if budget is None:
                        return True
            if budget is not None and total > budget + spare:
                raise ImageReadError(path, f"its deflated data set inflates to more than {budget + spare:,} bytes, "
                                     f"though its header declares {declared}: a decompression bomb or corrupt; "
                                     "refusing to read it")  # fmt: skip
    if budget is None:  # a data set shorter than ``look``: its image size is still checked
        _declared_size(start, path, max_pixels)
    return True


def _declared_size(start: bytes, path: str, max_pixels: int):
    """The bytes of pixel data the start of an (inflated) data set declares, and those words,
    its rows and columns checked against max_pixels; (None, None) where they cannot be read."""
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (a data set cut at ``look`` bytes)
            ds = pydicom.dcmread(io.BytesIO(bytes(start)), force=True, stop_before_pixels=True)
            rows, cols = int(ds.Rows), int(ds.Columns)
            frames, samples = max(1, int(ds.get("NumberOfFrames") or 1)), max(1, int(ds.get("SamplesPerPixel") or 1))
            bits = max(1, int(ds.BitsAllocated))
    except Exception:
        return None, None
    check_pixels(path, rows, cols, max_pixels)
    said = f"{cols} x {rows} ({count(frames, 'frame')} of {count(samples, 'sample')} of {bits} bits)"
    return -(-rows * cols * frames * samples * bits // 8), said


class _Codestream(NamedTuple):
    """The single frame of an encapsulated DICOM (not RLE, whose segments are planes) as taken out
    of its pixel data, and its codestream's header, parsed once for the reader's checks, the
    plugin's decoding ahead and the depth it is read at. ``kind``: "JPEG 2000", "JPEG-LS", "JPEG",
    or None for another syntax (MPEG and the like: checked for no size); ``precision`` (its first
    component's), ``rows`` and ``cols``: None where the header lacks them; ``signed``: whether a
    JPEG 2000 codestream says its samples are, None where it does not say (JPEG and JPEG-LS hold
    unsigned bit patterns, whatever PixelRepresentation says of them)."""

    source: bytes
    kind: str | None
    precision: int | None
    rows: int | None
    cols: int | None
    signed: bool | None = None


def _codestream_of(ds, syntax) -> _Codestream | None:
    """The frame of an encapsulated data set whose codestream orders its own components, its
    header parsed (the JPEG 2000 SIZ segment, or JPEG's and JPEG-LS' frame header); None for
    other syntaxes, or where no frame is found (left for decoding to report)."""
    from pydicom import uid

    if not _interleaved_by_codec(syntax):
        return None
    try:
        from pydicom.encaps import generate_frames

        source = next(generate_frames(ds.PixelData, number_of_frames=1))
    except Exception:
        return None
    if syntax in uid.JPEG2000TransferSyntaxes:  # (HTJ2K too)
        siz = jpeg2000_siz(source)
        return _Codestream(source, "JPEG 2000", *(siz or (None, None, None, None)))
    kind = ("JPEG-LS" if syntax in uid.JPEGLSTransferSyntaxes else
            "JPEG" if syntax in uid.JPEGTransferSyntaxes else None)  # fmt: skip
    header = jpeg_frame(io.BytesIO(source))
    return _Codestream(source, kind, *(header[1:] if header else (None, None, None)))


def _check_codestream_size(codestream: _Codestream | None, rows: int, cols: int, path: str) -> None:
    """Refuses a JPEG, JPEG-LS or JPEG 2000 frame whose codestream declares another size than
    Rows x Columns (PS3.5 8.2: they shall match), before any decoder sees it: max_pixels was
    checked on the header, and a decoder allocates what the codestream says (a damaged or
    crafted one: gigabytes), where pydicom then fails to fit what it decoded in the frame."""
    if codestream is None or codestream.kind is None:
        return
    name, shape = codestream.kind, (codestream.rows, codestream.cols)
    if name == "JPEG 2000" and (at := _empty_jp2_box(codestream.source)) is not None:
        raise ImageReadError(path, f"its JPEG 2000 frame's JP2 header has a box of length 0 at byte {at}, before its "
                             "codestream: corrupt")  # fmt: skip
    if None in shape or 0 in shape or shape == (rows, cols):  # (a JPEG of 0 rows gives them in a DNL segment)
        return
    raise ImageReadError(path, f"its {name} codestream declares {shape[1]} x {shape[0]} (width x height), its header "
                         f"(Columns x Rows) {cols} x {rows}: corrupt; refusing to decode it")  # fmt: skip


def _check_codestream_end(codestream: _Codestream | None, syntax, path: str) -> None:
    """Refuses a lossless JPEG, JPEG Extended or JPEG-LS frame cut short
    (:func:`~xvertfast.io.dicom_codecs.cut_short`) before any decoder sees it: pydicom's
    pylibjpeg-libjpeg plugin (the dicom-codecs extra) decodes one without a word, garbage after the
    cut, where it comes before the imagecodecs plugin (JPEG Extended) or after its refusal (JPEG-LS)."""
    why = dicom_codecs.cut_short(syntax, codestream.source) if codestream is not None else None
    if why is not None:
        name = getattr(syntax, "name", str(syntax))
        raise ImageReadError(path, f"cannot decode DICOM pixel data ({name}): truncated or corrupt? ({why})")


def _empty_jp2_box(frame: bytes) -> int | None:
    """Where a JP2-wrapped frame has a box of length 0 ('to the end of the file', for the
    last) before its codestream box: pydicom (3.0.2) walks the boxes by their lengths to find
    the codestream, and there steps by 0 forever. None where there is none."""
    if not frame.startswith(b"\x00\x00\x00\x0cjP  "):
        return None
    at = 12
    while at < len(frame) and frame[at + 4 : at + 8] != b"jp2c":  # (as pydicom walks: a cut box too)
        length = int.from_bytes(frame[at : at + 4], "big")
        if length == 0:
            return at
        at += length
    return None


def _dicom_pixels(ds, syntax, codestream: _Codestream | None, path: str, notes: list[str]):
    """The stored values of a parsed DICOM image after its modality LUT, photometric and padding."""
    from pydicom.pixels import apply_modality_lut

    if syntax is not None and not getattr(syntax, "is_transfer_syntax", True):
        if str(syntax) in _UNKNOWN_TO_PYDICOM:  # (said to be none DICOM defines)
            raise ImageReadError(path, f"its transfer syntax {_UNKNOWN_TO_PYDICOM[str(syntax)]} ({syntax}) is one "
                                 f"pydicom does not decode: {_CONVERT}")  # fmt: skip
        raise ImageReadError(path, f"its transfer syntax {syntax} is none DICOM defines (a vendor's private one?): "
                             "its pixel data cannot be decoded here")  # fmt: skip
    samples = _dicom_int(ds, "SamplesPerPixel", 1, path)
    if samples > 1 and _interleaved_by_codec(syntax) and ds.get("PlanarConfiguration") != 0:
        # JPEG, JPEG-LS and JPEG 2000 codestreams order their components themselves (PS3.5
        # 8.2: PlanarConfiguration is irrelevant there, shall be 0); pydicom's own plugins
        # would take a decoded interleaved frame for planes (1) and scramble its colours, or
        # refuse to decode without the element
        ds.PlanarConfiguration = 0
    stated = str(ds.get("PhotometricInterpretation", "") or "").strip()
    if stated != stated.upper():  # a CS value is capitals (PS3.5 6.2); pydicom refuses 'monochrome1'
        ds.PhotometricInterpretation = stated.upper()
        notes.append(f"{path}: PhotometricInterpretation {stated!r} read as {stated.upper()} (DICOM writes it in "
                     "capitals)")  # fmt: skip
    if samples == 1 and not stated:
        # pydicom refuses to decode without it (an empty one too: "Unknown ... value ''"); one
        # sample per pixel is grey
        none = "an empty" if "PhotometricInterpretation" in ds else "no"
        ds.PhotometricInterpretation = "MONOCHROME2"
        notes.append(f"{path}: {none} PhotometricInterpretation; read as MONOCHROME2 (bright = high)")
    elif samples == 1 and stated.upper() not in _PHOTOMETRICS:
        # ('MONOCHROME', 'MONO1', 'GRAYSCALE': not read as MONOCHROME2, as a missing one is: 'MONO1'
        # would be inverted)
        raise ImageReadError(path, f"invalid DICOM image header: PhotometricInterpretation {stated.upper()!r} is none "
                             "DICOM defines, so the polarity of its grey levels is unknown: set it to MONOCHROME2 "
                             "(bright = high) or MONOCHROME1 (bright = low), e.g. dcmodify -m "
                             "\"(0028,0004)=MONOCHROME2\"")  # fmt: skip
    elif samples == 1 and stated.upper() not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"):
        # a colour one of one sample per pixel is grey: said before pydicom decodes, which took a
        # one-sample YBR_FULL or YBR_FULL_422 frame for colour to convert or subsample (refused)
        notes.append(f"{path}: PhotometricInterpretation {stated.upper()} with one sample per pixel; read as "
                     "MONOCHROME2 (bright = high)")  # fmt: skip
        ds.PhotometricInterpretation = "MONOCHROME2"
    elif samples == 3 and stated.upper() == "MONOCHROME1":
        # grey samples stored low = bright, or colour ones shown as stored: the two readings are each
        # other's negative, and nothing in the file tells which (read as RGB under a note, the
        # network enhanced the negative where the samples were MONOCHROME1's); refused, as a
        # photometric DICOM does not define is
        raise ImageReadError(path, "invalid DICOM image header: PhotometricInterpretation MONOCHROME1 (one grey "
                             "sample per pixel, bright = low) with 3 samples per pixel, so the polarity of its pixels "
                             "is unknown: where the samples show the image as it is meant (bright = bone), set it to "
                             "RGB, e.g. dcmodify -m \"(0028,0004)=RGB\"; where bone is dark in them, convert the image "
                             "to one sample per pixel, MONOCHROME1")  # fmt: skip
    if _dicom_int(ds, "BitsAllocated", 16, path) == 12:
        _unpack_12_bits(ds, syntax, samples, path, notes)
    _native_pixels_long(ds, syntax, samples, path, notes)
    deeper = _deeper_codestream(ds, codestream, samples, path)
    # type 1C, often missing from the secondary captures of real exports, where pydicom refused the
    # file ("Missing required element"): read as 0, interleaved, as DICOM readers take it
    unplanned = samples > 1 and ds.get("PlanarConfiguration") in (None, "")
    try:
        words = _rle_words(ds, syntax, samples, path)  # (RLE under another HighBit: decoded once, as whole words)
        if words is not None:
            arr = _low_bits(ds, words, path)
        else:
            with _said_while_decoding(ds, PlanarConfiguration=0) if unplanned else contextlib.nullcontext():
                arr = dicom_codecs.pixel_array(ds, syntax) if deeper is None else _decoded_at(ds, syntax, deeper)
    except ImageReadError:  # the header's own refusal (a HighBit not a number), said as for uncompressed data
        raise
    except Exception as exc:
        name = getattr(syntax, "name", str(syntax))
        # a plugin that is there but does not take this kind of frame (Pillow and a 12-bit JPEG
        # Extended one) lacks a decoder as much: nothing is damaged
        unsupported = _not_supported(exc)
        if syntax is not None and getattr(syntax, "is_compressed", False) and (unsupported or not _has_decoder(syntax)):
            wanted = _decoders_wanted(syntax)
            how = "(pip install 'xvertfast[dicom-codecs]')" if wanted else \
                f"that neither pydicom nor xvertfast[dicom-codecs] has for it here: {_CONVERT}"  # fmt: skip
            raise ImageReadError(path, f"compressed transfer syntax '{name}' needs a decoder{wanted} {how}") from None
        if _HEADER_REFUSED.match(str(exc)):  # pydicom's check of the Image Pixel attributes: nothing cut short
            raise ImageReadError(path, f"invalid DICOM image header: {exc}") from None
        short = _native_pixels_short(ds, syntax, path)
        if short is not None:
            raise ImageReadError(path, short) from None
        raise ImageReadError(path, f"cannot decode DICOM pixel data ({name}): truncated or corrupt? ({exc})") from None
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    indices = None  # a PALETTE COLOR image's stored values, which PixelPaddingValue refers to
    bits = _dicom_int(ds, "BitsStored", 8 * arr.dtype.itemsize, path)
    if unplanned and not getattr(syntax, "is_compressed", False) and arr.ndim == 3 and _samples_differ(arr):
        _unplanned_note(ds, samples, path, notes)  # (RLE's segments are planes, whatever the element says)
    if samples == 3 and arr.ndim == 3:  # pydicom hands YBR data over as RGB
        if stated.upper() == "MONOCHROME2":  # (pydicom reads the samples as RGB; MONOCHROME1 is refused above)
            # a grey photometric over colour samples: said, as the photometric over one sample is
            notes.append(f"{path}: PhotometricInterpretation MONOCHROME2 with 3 samples per pixel; read as RGB, "
                         "bright = high")  # fmt: skip
        arr, photometric = luminance(arr, notes, path), "MONOCHROME2"
    elif photometric == "PALETTE COLOR" and arr.ndim == 2:
        # the stored values are indices into the colour tables, not grey levels
        indices, arr = arr, _palette_luminance(ds, arr, path, notes)
        bits = _palette_bits(ds, arr)
        photometric = "MONOCHROME2"
    if arr.ndim != 2:
        raise ImageReadError(path, f"expected a single-frame grayscale image, decoded shape {arr.shape}")
    signed = _dicom_int(ds, "PixelRepresentation", 0, path) == 1  # (the header's; below, decoded so too)
    overlays = _embedded_overlays(ds, bits, deeper) if deeper is not None else []
    if overlays:  # (its bits above BitsStored are declared no pixel values: masked, as native words are)
        whole, lossy = arr.view(np.dtype(f"u{arr.dtype.itemsize}")), syntax not in _LOSSLESS
        if lossy:  # (a lossy codec's overshoot crosses BitsStored's top bit, and the overlay's)
            whole = _without_lossy_overlays(whole, bits, deeper, [position for _, position in overlays])
        arr = whole if lossy and not signed else _low_bits(ds, whole, path)  # (lossy: unmasked, its overshoot kept)
        said = ", ".join(f"overlay {group:04X} in bit {position}" for group, position in overlays)
        notes.append(f"{path}: its {codestream.kind} codestream's {deeper}-bit samples hold an overlay embedded above "
                     f"BitsStored {bits} ({said}): read from the low {bits} bits, the overlay left out")  # fmt: skip
        deeper = None
    signed = signed and arr.dtype.kind == "i"
    read_deeper = False
    if deeper is not None and arr.size:
        low, top = int(arr.min()) if signed else 0, int(arr.max())  # (an unsigned frame's low end is not asked)
        if signed:
            arr, read_deeper = _signed_at_bits_stored(arr, low, top, bits, syntax, codestream)
        else:
            read_deeper = _needs_deeper(syntax, top, bits)
    if read_deeper:
        bits = _read_deeper(ds, codestream.kind, low, top, bits, signed, deeper, path, notes)
    elif indices is None and samples == 1:  # (grey levels: not a palette's indices, nor colours)
        arr = _below_high_bit(ds, syntax, codestream, arr, bits, signed, path, notes, words)
    lut = ", ".join(f"{k} {ds.get(k)!r}" for k in ("RescaleSlope", "RescaleIntercept") if k in ds)
    lut = lut or "Modality LUT Sequence"
    try:
        values = apply_modality_lut(arr, ds)
        lo, hi = dicom_ends(ds, bits, signed, arr.dtype)
    except Exception as exc:  # a malformed RescaleSlope ("1,5"), an empty one, a broken LUT
        raise ImageReadError(path, f"cannot apply its modality LUT / rescale ({lut}): {exc}") from None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():  # (float pixel data: its own values)
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ImageReadError(path, f"its float pixel data contain {bad} NaN or infinite value(s)")
    if np.asarray(values).dtype.kind == "f" and values is not arr:  # (float pixel data unscaled: checked above)
        # a slope of NaN, or of 1e308 (infinite values): NaN pixels after scaling
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ImageReadError(path, f"its modality LUT / rescale ({lut}) gives {bad} NaN or infinite values: corrupt")
    # where pydicom rescaled (both present, no LUT): a slope without its intercept, empty or 0, is
    # not applied, and the stored values stand as they are
    rescaled = "ModalityLUTSequence" not in ds and "RescaleSlope" in ds and "RescaleIntercept" in ds
    if rescaled and float(ds.RescaleSlope) == 0:
        raise ImageReadError(path, f"RescaleSlope is 0: every stored value maps to the intercept "
                             f"({ds.get('RescaleIntercept', 0)}), so there is no image")  # fmt: skip
    lone = [keyword for keyword in ("RescaleSlope", "RescaleIntercept") if keyword in ds]
    if len(lone) == 1 and not ds.get("ModalityLUTSequence") and not _changes_nothing(ds, lone[0]):
        # pydicom applies the two together or neither: a slope of -1 alone left the image the other
        # way up from what its header says, without a word (a slope of 1 or an intercept of 0 alone
        # would change nothing: no note, which a batch repeats for every file)
        other = "RescaleIntercept" if lone[0] == "RescaleSlope" else "RescaleSlope"
        given = ds[lone[0]].value
        given = "(empty)" if given is None or given == "" else given
        notes.append(f"{path}: {lone[0]} {given} without {other} (DICOM gives the two together): no "
                     "rescale applied, the stored values read as they are (check the image)")  # fmt: skip
    _presentation_lut_note(ds, stated.upper() or "MONOCHROME2", path, notes)  # (none: read as MONOCHROME2)
    if photometric == "MONOCHROME1" and arr.dtype.kind == "f":
        # float pixel data have no stored range to flip within (it was taken for 32-bit integers':
        # 4294967295 - v): within [0, 1] where they lie in it (to FLOAT_SCALE_SLACK), else their own
        # values, as a float TIFF's
        values = invert(np.asarray(values), bits)
    elif photometric == "MONOCHROME1":
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


def _unpack_12_bits(ds, syntax, samples: int, path: str, notes: list[str]) -> None:
    """Pixel data of BitsAllocated 12, ACR-NEMA's packing (two 12-bit values in three bytes, as
    GDCM unpacks them: the first value's low byte, then its high nibble low beside the second's low
    nibble, then the second's high byte), unpacked to 16-bit words in ``ds``, BitsAllocated said
    to be 16, with a note. pydicom refuses them ("must be 1 or a multiple of 8"), which was worded
    an invalid header, where old archives hold such files (ACR-NEMA 2.0, read without file meta).
    Only a grey frame of native little-endian data: native ones of several samples, or big-endian
    (where the packing of the words' bytes is unknown), are refused saying so, where pydicom's
    refusal called their header invalid; compressed ones are left for pydicom's."""
    little = getattr(syntax, "is_little_endian", True) if syntax is not None else True
    if getattr(syntax, "is_compressed", False) or "PixelData" not in ds:
        return
    if samples != 1 or not little:
        layout = f"with {samples} samples per pixel" if samples != 1 else f"in {getattr(syntax, 'name', syntax)}"
        raise ImageReadError(path, f"BitsAllocated 12 (12-bit values packed two to three bytes, ACR-NEMA's layout) "
                             f"{layout}: xvertfast unpacks them only for one grey sample per pixel, little-endian; "
                             "convert the file to BitsAllocated 16 with a DICOM tool that reads this layout, and read "
                             "that")  # fmt: skip
    values = _dicom_int(ds, "Rows", 0, path) * _dicom_int(ds, "Columns", 0, path)
    data, need = ds.PixelData, -(-values * 3 // 2)
    if len(data) < need:
        raise ImageReadError(path, _pixels_short("of 12-bit values packed two to three bytes (BitsAllocated 12)",
                                                 len(data), f"{values:,} values ({need:,} bytes)"))  # fmt: skip
    cells = np.frombuffer(data, np.uint8, count=need)
    cells = np.concatenate([cells, np.zeros(-need % 3, np.uint8)]).reshape(-1, 3).astype(np.uint16)
    pairs = np.stack([cells[:, 0] | (cells[:, 1] & 0xF) << 8, cells[:, 1] >> 4 | cells[:, 2] << 4], axis=1)
    ds.PixelData = pairs.reshape(-1)[:values].astype("<u2").tobytes()
    ds["PixelData"].VR = "OW"
    ds.BitsAllocated = 16
    notes.append(f"{path}: BitsAllocated 12: its 12-bit values are packed two to three bytes (ACR-NEMA's layout, "
                 "retired from DICOM): unpacked")  # fmt: skip


def _pixels_short(what: str, held: int, declared: str) -> str:
    """Why pixel data shorter than the header declares are refused: the file cut short (a copy
    stopped midway), said with both sizes and what to do, as a cut before them is."""
    return (f"truncated or corrupt DICOM: its pixel data {what} holds {held:,} byte{'' if held == 1 else 's'}, its "
            f"header declares {declared}: cut short? copy it again from its source")  # fmt: skip


def _native_pixels_short(ds, syntax, path: str) -> str | None:
    """Why native (uncompressed) pixel data are refused where they hold fewer bytes than the header
    declares, or None where they do not (or that is not known): pydicom's refusal, passed through,
    was "The number of bytes of pixel data is less than expected (3746 vs 8192 bytes) - the dataset
    may be corrupted, ...", nothing of what to do with a file cut short."""
    keyword = next((k for k in _PIXEL_DATA if k in ds), None)
    if keyword is None or getattr(syntax, "is_compressed", False) or ds[keyword].is_undefined_length:
        return None
    held, needed = len(ds[keyword].value or b""), _declared_bytes(ds)
    if held >= needed:
        return None
    name = getattr(syntax, "name", None)
    return _pixels_short(f"({name})" if name else "(uncompressed)", held, _declared_image(ds, needed, path))


def _declared_image(ds, needed: int, path: str) -> str:
    """The ``needed`` bytes of native pixel data ``ds``'s header declares, said with what it counts
    them by, for :func:`_pixels_short`: a reader can check the header against the image it expects."""
    samples = _dicom_int(ds, "SamplesPerPixel", 1, path)
    of = f"Columns x Rows {ds.Columns} x {ds.Rows}, BitsAllocated {_dicom_int(ds, 'BitsAllocated', 16, path)}"
    return f"{needed:,} bytes ({of}{f', SamplesPerPixel {samples}' if samples > 1 else ''})"


def _native_pixels_long(ds, syntax, samples: int, path: str, notes: list[str]) -> None:
    """Grey native pixel data holding whole rows, or whole columns, more than the header's Rows and
    Columns declare: pydicom read the first Rows x Columns values under its own warning ("...
    contains 80 bytes of excess padding to be removed"), which says nothing of the image. Rows
    more are the image's bottom or bytes after it: read as the header says, the data past it
    dropped, with a note saying how many rows the header leaves out and the Rows they fit (or, as
    many as whole frames, the frames that NumberOfFrames does not say).
    Columns more would be read a sheared image (each row shifted against the one above): refused,
    saying the Columns they fit. Other excess bytes (none a whole row or column, or all zeros, as
    pydicom's MR_small_padded.dcm has a row's worth) are left to pydicom's warning: padding after
    the pixels."""
    element = ds["PixelData"] if "PixelData" in ds else None
    if samples != 1 or element is None or element.is_undefined_length or getattr(syntax, "is_compressed", False):
        return
    rows, cols = _dicom_int(ds, "Rows", 0, path), _dicom_int(ds, "Columns", 0, path)
    allocated, needed = _dicom_int(ds, "BitsAllocated", 16, path), _declared_bytes(ds)
    if allocated % 8 or not needed or needed != rows * cols * allocated // 8:  # (1-bit words are packed)
        return
    data = element.value or b""
    if not data[needed:].strip(b"\0"):  # (zeros after the image: padding, or black rows, nothing lost)
        return
    padded = len(data) % 2 == 0 and data[-1:] == b"\0"  # (an odd count of bytes padded to an even length?)
    extras = [extra for extra in (len(data) - needed, len(data) - needed - padded) if extra > 0]
    of = f"Columns x Rows {cols} x {rows}, BitsAllocated {allocated}"
    row, column = cols * allocated // 8, rows * allocated // 8
    more = next((extra // row for extra in extras if extra % row == 0), 0)
    if more:  # (rows first: read as the header says, where a column would be refused)
        ds.PixelData = data[:needed] + b"\0" * (needed % 2)
        last = "the last row" if more == 1 else f"the last {more} rows"
        frames = f"; where the data are {count(more // rows + 1, 'frame')}, its NumberOfFrames (0028,0008) does not " \
            "say so: the first is read" if more % rows == 0 else ""  # fmt: skip
        notes.append(f"{path}: its pixel data hold {len(data):,} bytes, {count(more, 'row')} more than its header "
                     f"declares ({of}): read as its Rows says, {last} of the data left out (check the image: where "
                     f"they are its bottom, its Rows (0028,0010) should be {rows + more}{frames})")  # fmt: skip
        return
    wide = cols + next((extra // column for extra in extras if extra % column == 0), 0)
    if wide > cols:
        raise ImageReadError(path, f"its pixel data hold {len(data):,} bytes, the bytes of {wide} columns, not the "
                             f"{cols} its header declares ({of}): read as it says, the image would come out "
                             "sheared (each row shifted against the one above): its Columns (0028,0011) is wrong; "
                             f"set it to {wide}, e.g. dcmodify -m \"(0028,0011)={wide}\", and read it "
                             "again")  # fmt: skip


def _declared_bytes(ds) -> int:
    """The bytes of native pixel data ``ds``'s header declares, by pydicom's count (a YBR_FULL_422
    frame holds 2/3 of a full-sampled one's); 0 where the header lacks what it counts by, which
    pydicom's decoding refuses later, naming it."""
    from pydicom.pixels.utils import get_expected_length

    try:
        return get_expected_length(ds, "bytes")
    except Exception:
        return 0


def _samples_differ(arr: np.ndarray) -> bool:
    """Whether a colour frame's pixels (samples in the last axis) are not grey: its samples differ
    in some pixel. A grey one read as interleaved was interleaved (planes read so would differ
    from one pixel's sample to the next), so its missing PlanarConfiguration leaves no doubt."""
    return any(not np.array_equal(arr[..., 0], arr[..., k]) for k in range(1, arr.shape[-1]))


def _unplanned_note(ds, samples: int, path: str, notes: list[str]) -> None:
    """The note of a colour frame read as interleaved where its header lacks PlanarConfiguration."""
    none = "an empty" if "PlanarConfiguration" in ds else "no"
    notes.append(f"{path}: {none} PlanarConfiguration (0028,0006), which DICOM requires of {samples} samples per "
                 "pixel: read as 0, each pixel's samples together, as DICOM readers take it (check the image)")


def _changes_nothing(ds, keyword: str) -> bool:
    """Whether a RescaleSlope is 1, or a RescaleIntercept 0: the rescale's identity, which
    applied or not leaves the stored values as they are."""
    try:
        return float(ds[keyword].value) == (1.0 if keyword == "RescaleSlope" else 0.0)
    except (TypeError, ValueError):  # (empty, several values, no number)
        return False


def _below_high_bit(ds, syntax, codestream: _Codestream | None, arr: np.ndarray, bits: int, signed: bool, path: str,
                    notes: list[str], words: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The values of grey pixel data whose HighBit is not BitsStored - 1: PS3.5 8.1.1 puts
    each value's top bit at HighBit (BitsStored 12, HighBit 15: bits 4 to 15), where pydicom takes
    the low BitsStored bits whatever HighBit says (noise and the values' low bits: another image,
    silently). Where every word's bits above the low BitsStored are 0 (signed or not: many writers
    leave a negative value's upper bits unset), or, signed, copies of its sign bit, the values
    plainly sit there and HighBit is a writer's slip: ``arr`` as pydicom read it. Each way, a note
    says so. An RLE frame is judged by its whole decoded ``words`` (:func:`_rle_words`; None where
    its codec would not decode them), as native ones (RLE keeps the words' bytes); a JPEG,
    JPEG-LS or JPEG 2000 codestream holds the samples themselves, so HighBit places nothing there
    and the values stand as decoded (:func:`_codestream_values`)."""
    high = _dicom_int(ds, "HighBit", bits - 1, path)
    if high == bits - 1 or arr.ndim != 2 or arr.dtype.kind not in "iu":
        return arr
    allocated = _dicom_int(ds, "BitsAllocated", 0, path)
    if allocated != 8 * arr.dtype.itemsize:  # (1-bit words are packed)
        return arr
    stated = f"HighBit {high} with BitsStored {bits}"
    if not bits - 1 < high < allocated:  # (no layout has it: a header slip, said, not read as silently)
        notes.append(f"{path}: {stated} and BitsAllocated {allocated}: no such layout (HighBit lies from BitsStored "
                     f"- 1 to BitsAllocated - 1); read from the low {bits} bits (check the image)")  # fmt: skip
        return arr
    if getattr(syntax, "is_compressed", False) and not _keeps_words(syntax):
        return _codestream_values(arr, stated, bits, signed, _kind(syntax, codestream), path, notes)
    if getattr(syntax, "is_compressed", False):
        if words is None:  # (a codec that takes no other BitsStored: its values, as it decoded them)
            notes.append(f"{path}: {stated}, but its compressed frame does not decode to whole words to tell where "
                         f"the values are: read as decoded, from the low {bits} bits (check the image)")  # fmt: skip
            return arr
    else:
        little = getattr(syntax, "is_little_endian", True) if syntax is not None else True
        words = np.frombuffer(ds.PixelData, np.dtype(f"u{arr.dtype.itemsize}").newbyteorder("<" if little else ">"),
                              count=arr.size).reshape(arr.shape)  # fmt: skip
    nothing_above = not (words >> bits).any()
    from_sign = words >> (bits - 1)  # (signed: the sign bit and its copies above it)
    if nothing_above or (signed and np.isin(from_sign, (0, (1 << (allocated - bits + 1)) - 1)).all()):
        above = "unset" if nothing_above else "copies of its sign"
        notes.append(f"{path}: {stated}, but every word's bits above the low {bits} are {above}: read from the low "
                     f"{bits} bits, where the values are (DICOM puts them in bits {high + 1 - bits} to {high}: check "
                     "the image)")  # fmt: skip
        return arr
    values = ((words >> (high + 1 - bits)) & ((1 << bits) - 1)).astype(np.int64)
    if signed:
        values = np.where(values >> (bits - 1), values - (1 << bits), values)
    notes.append(f"{path}: {stated}: values read from bits {high + 1 - bits} to {high} of each word, as DICOM "
                 "places them (pydicom reads the low bits)")  # fmt: skip
    return values.astype(arr.dtype)


def _keeps_words(syntax) -> bool:
    """Whether a compressed syntax keeps the native words' bytes (RLE: its segments are the
    words' bytes), where HighBit's placement of the values survives compression."""
    from pydicom.uid import RLELossless

    return syntax == RLELossless


def _kind(syntax, codestream: _Codestream | None) -> str:
    """What a compressed frame's codestream is called in a note: its :attr:`_Codestream.kind`
    ("JPEG 2000", "JPEG-LS", "JPEG"), else the transfer syntax's name (no frame found, or another
    codec's)."""
    if codestream is not None and codestream.kind is not None:
        return codestream.kind
    return getattr(syntax, "name", str(syntax))


def _a(name: str) -> str:
    """The article before ``name`` by its first sound: "an" before a vowel, and before an
    initialism's letter said with one (an MPEG2, an HEVC; a JPEG)."""
    word = name.split()[0] if name.strip() else ""
    vowels = "AEFHILMNORSX" if word[:2].isupper() else "AEIOUaeiou"
    return "an" if word and word[0] in vowels else "a"


def _codestream_values(arr: np.ndarray, stated: str, bits: int, signed: bool, kind: str, path: str,
                       notes: list[str]) -> np.ndarray:  # fmt: skip
    """A JPEG-family frame's values as decoded, with a note: its codestream (a ``kind`` one, as
    :func:`_kind` names it) holds the samples at their own precision, so HighBit places nothing
    (decoding it as whole words and shifting took a 14-bit JPEG 2000 codestream under BitsStored
    12, HighBit 15 for its top 12 bits: another image). Values past what BitsStored holds are said:
    the codestream is deeper than the header."""
    note = (f"{path}: {stated}: {_a(kind)} {kind} codestream holds the samples themselves, where HighBit places "
            "nothing: read as decoded")  # fmt: skip
    lo, hi = stored_range(bits, signed)
    low, high = (int(arr.min()), int(arr.max())) if arr.size else (lo, hi)
    if low < lo or high > hi:
        need = max(high.bit_length(), (-low - 1).bit_length()) + 1 if signed else high.bit_length()
        note += (f"; its values reach {low}..{high}, past the {lo}..{hi} BitsStored {bits} holds: the codestream is "
                 f"deeper than BitsStored (its values need at least {need} bits; check the header)")  # fmt: skip
    notes.append(note)
    return arr


def _deeper_codestream(ds, codestream: _Codestream | None, samples: int, path: str) -> int | None:
    """The sample precision of a grey JPEG, JPEG-LS or JPEG 2000 frame's codestream where it is
    deeper than BitsStored (and fits BitsAllocated), else None: the frame is decoded at it. pydicom
    keeps only the low BitsStored bits of a JPEG or lossless JPEG frame it decodes (a 14-bit
    codestream under BitsStored 12: another image, silently), and corrects a signed JPEG-LS
    frame's sign at the codestream's precision (a 12-bit signed image written at a precision of 16,
    as imagecodecs writes JPEG-LS, read 0..4095: its negative values as large positive ones);
    an unsigned JPEG-LS frame's values, and a JPEG 2000 frame's, signed or not, it leaves as decoded
    (a 14-bit signed lossy JPEG 2000 frame under BitsStored 12 read +-8192 against -2048..2047,
    without a word). Decided from the
    header and ``codestream``'s (:func:`_codestream_of`), before anything is decoded."""
    grey = samples == 1 and str(ds.get("PhotometricInterpretation", "")).strip() in ("MONOCHROME1", "MONOCHROME2")
    if not grey or codestream is None:
        return None  # (a palette's indices are no grey levels; no frame to be found: left for decoding to report)
    if "BitsStored" not in ds:  # (refused by pydicom's header check, as it was: no depth to compare with)
        return None
    bits = _dicom_int(ds, "BitsStored", 0, path)
    fits = bits < (codestream.precision or 0) <= _dicom_int(ds, "BitsAllocated", 0, path)
    return codestream.precision if fits else None


def _decoded_at(ds, syntax, precision: int) -> np.ndarray:
    """A frame decoded at its codestream's ``precision``, BitsStored said to be that (and HighBit
    one less) while pydicom decodes it (:func:`_said_while_decoding`): all of its values."""
    with _said_while_decoding(ds, BitsStored=precision, HighBit=precision - 1):
        return dicom_codecs.pixel_array(ds, syntax)


@contextlib.contextmanager
def _said_while_decoding(ds, **values) -> Iterator[None]:
    """The header's elements said to be ``values`` for pydicom's decoding within the block, then
    put back as they were (empty ones too), those it lacked removed again: the header the reader
    hands on is the file's."""
    said = {keyword: ds[keyword].value for keyword in values if keyword in ds}
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    try:
        yield
    finally:
        for keyword in values:
            if keyword in said:
                setattr(ds, keyword, said[keyword])
            elif keyword in ds:
                delattr(ds, keyword)


def _embedded_overlays(ds, bits: int, precision: int) -> list[tuple[int, int]]:
    """The overlays the header embeds in the bits of a codestream's ``precision``-bit samples above
    BitsStored, as (group, bit), (0x6000, 13) for "overlay 6000 in bit 13": an overlay group (60xx)
    whose OverlayBitsAllocated is not 1 and whose OverlayBitPosition lies there (PS3.3 C.9.2,
    retired: a plane of graphics or text kept in the pixel data's unused bits). A codestream keeps
    them where it was written at the words' depth, and such a frame was read deeper than
    BitsStored: the overlay burnt into the image at 2**13 and more, its anatomy squeezed into a
    fraction of the range; uncompressed, the same words read from the low BitsStored bits
    (pydicom's masking)."""
    found = []
    for group in range(0x6000, 0x6020, 2):
        try:
            allocated = int(ds[(group << 16) | 0x0100].value)
            position = int(ds[(group << 16) | 0x0102].value)
        except (KeyError, TypeError, ValueError):  # (none, an empty or damaged one: no overlay said to be there)
            continue
        if allocated != 1 and bits <= position < precision:
            found.append((group, position))
    return found


def _without_lossy_overlays(words: np.ndarray, bits: int, precision: int, positions: list[int]) -> np.ndarray:
    """A lossy codestream's ``words`` with the overlay bits at ``positions`` (all at or above
    BitsStored ``bits``) taken out. Masked to their low BitsStored bits, as lossless words are, a
    white pixel's overshoot (4095 decoded as 4100: bit 12 set) read as black (4), and a black pixel
    under an overlay in bit 13 decoded a little low (8190) as white (4094): speckles. Here each
    word's part above BitsStored is the overlay bits' combination whose range (that part plus
    0..2**bits - 1) lies nearest to it; what is left keeps an overshoot past white, as a lossy
    codestream without an overlay reads (:func:`_needs_deeper`), and an undershoot below 0 reads 0,
    as the decoder clamps one without an overlay. (An overlay in bit BitsStored itself, 12, leaves
    no gap to tell white's overshoot from the overlay over black: such a value reads as the latter.)"""
    overlay = sum(1 << (position - bits) for position in set(positions))
    parts = np.arange(1 << (precision - bits), dtype=np.int64)  # (each part above BitsStored, in units of 2**bits)
    possible = (parts & ~overlay) == 0
    below = np.maximum.accumulate(np.where(possible, parts, 0))  # (the nearest possible part at or below; 0 is one)
    ahead = np.where(possible, parts, parts.size)[::-1]
    above = np.minimum.accumulate(ahead)[::-1]  # (the nearest at or above: parts.size where there is none)
    values = words.astype(np.int64)
    part = np.minimum(values >> bits, parts.size - 1)
    low, high = below[part], above[part]
    past_low = values - (low << bits) - ((1 << bits) - 1)  # (how far past the lower range's top: <= 0 within it)
    short_of_high = (high << bits) - values  # (how far short of the higher range's bottom)
    chosen = np.where((high < parts.size) & (short_of_high < past_low), high, low)
    return np.maximum(values - (chosen << bits), 0).astype(words.dtype)


def _needs_deeper(syntax, top: int, bits: int) -> bool:
    """Whether a frame whose codestream is deeper than BitsStored, its values reaching ``top``, is
    read at the codestream's depth. A lossless codestream's values are the image's: any past
    BitsStored's range. A lossy one (JPEG 2000, near-lossless JPEG-LS, JPEG) overshoots near white:
    12-bit images in a 16-bit codestream reach 4096..4225, and one such pixel took the whole image
    to 16 bits (a MONOCHROME1 one to 61332..65535). Only values past twice the range are deeper
    data there; the overshoot reads past white at BitsStored, as before."""
    return top >> bits > 0 if syntax in _LOSSLESS else top >= 2 << bits


#: The lossless JPEG-family transfer syntaxes, whose decoded values are the image's to the level.
_LOSSLESS = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",  # JPEG, SV1, JPEG-LS
             "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.201",  # JPEG 2000 (MC), HTJ2K
             "1.2.840.10008.1.2.4.202")  # fmt: skip


def _signed_at_bits_stored(arr: np.ndarray, low: int, top: int, bits: int, syntax,
                           codestream: _Codestream) -> tuple[np.ndarray, bool]:  # fmt: skip
    """A signed frame decoded at its codestream's depth, ``low``..``top``, as BitsStored reads it,
    and whether it is to be read at the codestream's depth instead. Values within BitsStored's
    signed range are its own; a lossy syntax's within twice it, as :func:`_needs_deeper` keeps an
    unsigned one's (its overshoot reads past BitsStored's ends, as before). Where a lossless
    codestream holds no sign (JPEG, JPEG-LS, a JPEG 2000 one saying unsigned) and every value fits
    BitsStored's bits, they are BitsStored-bit two's complement patterns in a deeper codestream
    (PS3.5 A.4.3: imagecodecs writes a 12-bit signed image's JPEG-LS so): their sign is
    BitsStored's top bit (not asked of a lossy one, whose overshoot crosses it). Any other values
    are deeper data. A lossy codestream without a sign, its values all >= 0 (such patterns, or
    unsigned data), is read as an unsigned one (:func:`_needs_deeper`): a pattern's overshoot past
    4095 (12 bits) leaves it at BitsStored, where one pixel took the image to 16 bits."""
    lossless = syntax in _LOSSLESS
    lo, hi = stored_range(bits if lossless else bits + 1, True)
    if lo <= low and top <= hi:
        return arr, False
    if not codestream.signed and low >= 0:
        if not lossless:
            return arr, _needs_deeper(syntax, top, bits)
        if top >> bits == 0:
            return np.where(arr > hi, arr - (1 << bits), arr).astype(arr.dtype), False
    return arr, True


def _read_deeper(ds, kind: str | None, low: int, top: int, bits: int, signed: bool, precision: int, path: str,
                 notes: list[str]) -> int:  # fmt: skip
    """The depth a JPEG-family frame (its codestream a ``kind``), whose values reach ``low``..``top``,
    past BitsStored, is read at: its codestream's precision, the depth the file records for them,
    with a note. Scaled by BitsStored, the stored scale (:func:`~xvertfast.io.read.full_range`)
    put 3/4 of a 14-bit image under BitsStored 12 past white, and a MONOCHROME1 one was flipped
    within 0..4095."""
    high = _dicom_int(ds, "HighBit", bits - 1, path)
    placed = (f" (HighBit {high} places nothing in a codestream)" if high != bits - 1 else "")
    lo, hi = stored_range(bits, signed)
    reach, held = (f"{low}..{top}", f"{lo}..{hi}") if signed else (f"{top}", f"{hi}")
    notes.append(f"{path}: its {kind or 'JPEG'} codestream holds {precision}-bit samples, deeper than BitsStored "
                 f"{bits}{placed}, and its values reach {reach}, past the {held} BitsStored holds: read as "
                 f"decoded, at {precision} bits (check the header)")  # fmt: skip
    return precision


def _rle_words(ds, syntax, samples: int, path: str) -> np.ndarray | None:
    """An RLE frame's whole decoded words, unsigned, where it is grey (not a palette's indices) and
    HighBit lies above BitsStored - 1 (:func:`_below_high_bit` looks into them): pydicom keeps only
    the low BitsStored bits of what it decodes (HighBit-placed values lose their top bits), so the
    frame is decoded once with BitsStored said to be BitsAllocated, then the header put back (it
    was decoded twice, the second time for the words). PixelRepresentation is left as it is, for
    pydicom to check (a signed frame's words wrap to their bits). None where it is no such frame,
    where a codec refuses that precision ("does not support": decoded at the header's own), and
    where BitsStored is empty or 0 (said to be BitsAllocated, it would get past pydicom's check of
    it). A damaged frame, or a header pydicom refuses, raises what pydicom said, as its decoding at
    the header's own depth would: that decoding was the frame's second (a damaged one's twice the wait)."""
    if not _keeps_words(syntax) or samples != 1 or str(ds.get("PhotometricInterpretation", "")).strip() == \
            "PALETTE COLOR" or "BitsStored" not in ds:  # fmt: skip
        return None
    bits, allocated = _dicom_int(ds, "BitsStored", 0, path), _dicom_int(ds, "BitsAllocated", 0, path)
    if bits < 1 or not bits - 1 < _dicom_int(ds, "HighBit", bits - 1, path) < allocated or allocated not in (8, 16, 32):
        return None
    try:
        with _said_while_decoding(ds, BitsStored=allocated, HighBit=allocated - 1):
            words = np.asarray(dicom_codecs.pixel_array(ds, syntax))
    except Exception as exc:
        if _not_supported(exc):
            return None
        raise
    if words.ndim != 2 or words.dtype.kind not in "iu" or 8 * words.dtype.itemsize != allocated:
        return None
    return words.astype(np.dtype(f"u{words.dtype.itemsize}"), copy=False)


def _not_supported(exc: Exception) -> bool:
    """Whether pydicom's decoding failed as a plugin there does not take this kind of frame (Pillow
    and a 12-bit JPEG Extended one, a codec and a precision), by pydicom's words for it: nothing is
    damaged then (read_dicom asks for a decoder; the RLE words' decoding falls back)."""
    return "does not support" in str(exc)


def _low_bits(ds, words: np.ndarray, path: str) -> np.ndarray:
    """The values pydicom reads from whole ``words`` (:func:`_rle_words`): their low BitsStored
    bits, as two's complement where PixelRepresentation is 1, in its type of their width."""
    bits = _dicom_int(ds, "BitsStored", 0, path)
    low = words & np.asarray((1 << bits) - 1, words.dtype)
    if _dicom_int(ds, "PixelRepresentation", 0, path) != 1:
        return low
    signed = np.where(low >> (bits - 1), low.astype(np.int64) - (1 << bits), low)
    return signed.astype(np.dtype(f"i{words.dtype.itemsize}"))


def _presentation_lut_note(ds, stated: str, path: str, notes: list[str]) -> None:
    """A note where PresentationLUTShape contradicts PhotometricInterpretation. PS3.3 (General
    Image and DX Image modules) pairs INVERSE with MONOCHROME1 and IDENTITY with MONOCHROME2 (or
    colour): the shape is then the same one flip, done here once. Otherwise a viewer that
    applies the shape (pydicom's apply_presentation_lut, dcm4che by default) shows the image the
    other way up from one that goes by the photometric: which polarity is meant is in doubt, and
    the pixels are read as the photometric says (it describes them; the shape only their display)."""
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    if shape == "INVERSE" and stated != "MONOCHROME1":
        done = f"read with bright = high, as {stated} says, not inverted"
    elif shape == "IDENTITY" and stated == "MONOCHROME1":
        done = "flipped, as MONOCHROME1 says (low stored values bright)"
    else:
        return
    pair = "MONOCHROME1" if shape == "INVERSE" else "MONOCHROME2"
    notes.append(f"{path}: PresentationLUTShape (2050,0020) {shape} with PhotometricInterpretation {stated}, "
                 f"though DICOM pairs {shape} with {pair}: a viewer applying the shape shows this image "
                 f"inverted, so its polarity is in doubt; {done} (check the output's polarity)")  # fmt: skip


#: The PhotometricInterpretations DICOM defines (PS3.3 C.7.6.3.1.2, retired ones too).
_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "HSV", "ARGB", "CMYK", "YBR_FULL",
                 "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "XYB")  # fmt: skip


#: How pydicom words its refusal of the Image Pixel module's values (a missing PlanarConfiguration,
#: BitsStored above BitsAllocated, an unknown PhotometricInterpretation) before decoding anything.
_HEADER_REFUSED = re.compile(r"Missing required element: \(0028,|A \(0028,[0-9A-Fa-f]{4}\) '|Unknown \(0028,")


def _interleaved_by_codec(syntax) -> bool:
    """Whether a transfer syntax's codestream orders the colour components itself (every
    encapsulated one but RLE, whose segments are planes); not a private one, which pydicom cannot
    tell encapsulated (its is_encapsulated raises)."""
    from pydicom.uid import RLELossless

    known = getattr(syntax, "is_transfer_syntax", False)
    return bool(known and syntax.is_encapsulated) and syntax != RLELossless


def _palette_luminance(ds, indices: np.ndarray, path: str, notes: list[str]) -> np.ndarray:
    """The luminance of a PALETTE COLOR image's colours, at the colour tables' depth."""
    from pydicom.pixels import apply_color_lut

    try:
        rgb = apply_color_lut(indices, ds)
    except Exception as exc:  # tables missing or malformed
        raise ImageReadError(path, f"PALETTE COLOR image whose colour lookup tables cannot be applied: {exc}") from None
    return luminance(rgb, notes, path, "PALETTE COLOR")


def _palette_bits(ds, colours: np.ndarray) -> int:
    """The bits of a PALETTE COLOR image's table entries: 8 or 16, as their Descriptor's third
    value says, but 16 where the ``colours`` looked up exceed 8 bits (a table of 16-bit entries
    whose descriptor says 8, as some writers make them)."""
    descriptor = ds.get("RedPaletteColorLookupTableDescriptor")
    try:
        eight = int(descriptor[2]) == 8
    except (TypeError, ValueError, IndexError):
        eight = False
    return 8 if eight and (not colours.size or int(colours.max()) <= 255) else 16


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


def dicom_ends(ds, bits: int, signed: bool, dtype: np.dtype) -> tuple[float, float]:
    """The lowest and highest value after the modality LUT of what ``bits`` bits can store
    (the LUT may be a table, not a line)."""
    from pydicom.pixels import apply_modality_lut

    ends = np.asarray(apply_modality_lut(np.array(stored_range(bits, signed), dtype=dtype), ds))
    return float(ends.min()), float(ends.max())


def _decoders_wanted(syntax) -> str:
    """', one of X, Y' (': X' for one) naming what would decode ``syntax`` here (the packages pydicom's plugins
    and imagecodecs miss), so a user installs the one that is missing; nothing where none is known."""
    wanted = dicom_codecs.missing_decoders(syntax)
    if len(wanted) == 1:
        return f": {wanted[0]}"
    return f", one of {', '.join(wanted)}" if wanted else ""


def _has_decoder(syntax) -> bool:
    """Whether pydicom has a working decoder plugin for this transfer syntax here."""
    try:
        from pydicom.pixels import get_decoder

        return bool(get_decoder(syntax).is_available)
    except Exception:  # unknown syntax, or an older pydicom
        return False
