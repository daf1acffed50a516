"""TIFF through tifffile (Pillow where a compression needs imagecodecs and it is missing).

A TIFF's first full-resolution page is read (or, where page 1 is a thumbnail, the image in its
SubIFD); what tifffile logs about the file (and imagecodecs, of PNG strips) becomes that file's
notes (or part of its error), named, rather than bare lines on stderr that say nothing of which
file of a batch they came from; Pillow's warnings, where it decodes the page, are given
prefixed by the path.
"""

from __future__ import annotations

import functools
import io
import math
import numbers
import struct

import numpy as np

from xvertfast.io.decode_common import (ORIENTATION, FileBytes, bits_from_values, check_pixels, grey_alpha_note,
                                        high_bytes_note, imagecodecs_log, imagecodecs_wanted, invert, jpeg_frame,
                                        luminance)
from xvertfast.io.errors import ImageReadError, LogNamingTheFile, WarningsNamingTheFile

__all__ = ["read_tiff"]


#: The TIFF MaxSampleValue tag: the largest value a sample may take (default 2 ** BitsPerSample - 1).
_MAX_SAMPLE_VALUE = 281


#: The TIFF InkSet tag: 1 (or absent) for a SEPARATED image's cyan, magenta, yellow and black.
_INKSET = 332


#: PhotometricInterpretations whose first sample is the grey (tifffile gives their samples as
#: stored; taken for R, G, B they were another image): YCbCr's luma, the Lab spaces' lightness.
_GREY_FIRST = {6: ("YCbCr", "luma (Y)"), 8: ("LAB", "lightness (L*)"), 9: ("LAB", "lightness (L*)"),
               10: ("LAB", "lightness (L*)")}  # fmt: skip


#: The Compressions tifffile decodes as JPEG (OJPEG, JPEG, DNG's JPEG_LOSSY, ALT_JPEG): a YCbCr
#: page of contiguous samples comes out as RGB, subsampled or not (its jpeg_decode_colorspace).
_JPEG = (6, 7, 34892, 33007)


def read_tiff(path: str, max_pixels: int, notes: list[str]):
    """A TIFF's first page; what tifffile (and imagecodecs, decoding its strips) logged about the
    file is its notes, or where the file is refused, part of its error (a failed file's notes
    are not reported)."""
    logs = (LogNamingTheFile("tifffile"), imagecodecs_log())
    try:
        return _decode_tiff(path, max_pixels, notes, logs)
    except ImageReadError as exc:
        said = "".join(log.said() for log in logs)
        if said and said not in exc.problem:
            raise ImageReadError(path, exc.problem + said) from None
        raise


def _decode_tiff(path: str, max_pixels: int, notes: list[str], logs: tuple[LogNamingTheFile, ...]):
    import tifffile

    tifffile_log, codecs_log = logs
    try:
        with tifffile_log, codecs_log, tifffile.TiffFile(path) as tif:
            if not len(tif.pages):
                raise ImageReadError(path, "TIFF has no readable page: truncated or corrupt")  # (read_tiff adds what tifffile said)
            index, reduced_only = _first_full_resolution_page(tif), False
            page = None if index is not None else _full_resolution_subifd(tif.pages[0])
            if index is None:
                index = 0
                if page is None:  # (the note says which page and why)
                    index, reduced_only = _largest_of_reduced_pages(path, tif, notes), True
                else:
                    notes.append(f"{path}: TIFF's page 1 is a reduced-resolution copy; reading the full-resolution "
                                 f"image in its SubIFD ({page.imagewidth} x {page.imagelength}, width x height)")  # fmt: skip
            in_subifd = page is not None
            page = page if in_subifd else tif.pages[index]
            shape = page.shape
            if len(shape) < 2:
                raise ImageReadError(path, f"TIFF page has shape {shape}, not an image")
            # from the tags: a planar page's shape is (samples, H, W)
            check_pixels(path, page.imagelength, page.imagewidth, max_pixels)
            _check_segments_in_file(path, page, tif.filehandle.size)
            if int(page.compression) == 7:  # JPEG
                _check_jpeg_segment_sizes(path, page)
            planar = page.samplesperpixel > 1 and int(page.planarconfig) == 2  # SEPARATE
            if index and not reduced_only:  # (a file of reduced pages alone said which above)
                with LogNamingTheFile("tifffile"):  # (what it says of a page not read is no note of the file's)
                    reduced = [getattr(tif.pages[k], "is_reduced", False) for k in range(index)]
                if not any(reduced):
                    first, why = "with pixels", "have none: 0 rows or columns"
                else:
                    first, why = "at full resolution", "are reduced-resolution copies, such as a thumbnail"
                    why += "" if all(reduced) else ", or have no pixels"
                notes.append(f"{path}: TIFF has {len(tif.pages)} pages; reading page {index + 1}, the first {first} "
                             f"(those before it {why})")  # fmt: skip
            elif len(tif.pages) > 1 and not reduced_only:
                # (from a SubIFD, page 1's own image is not read: no thumbnail to say of)
                larger = "" if in_subifd else _larger_page_after(tif, page)
                notes.append(f"{path}: TIFF has {len(tif.pages)} pages; reading the first{larger}")
            photometric, pillow_mode = int(page.photometric), None
            # a JPEG codec (tifffile's, Pillow's libtiff) gives a YCbCr page's colours as RGB
            decoded_to_rgb = photometric == 6 and int(page.compression) in _JPEG
            planar_jpeg = decoded_to_rgb and int(page.planarconfig) == 2
            # tifffile's rule (TiffPage.decode): subsampled colour it decodes only in _JPEG of
            # contiguous samples; where the tag is missing, TIFF's default (2, 2) holds. Its refusal,
            # of a valid file, was said as "truncated or corrupt (chroma subsampling not supported)"
            if photometric == 6 and page.is_subsampled and \
                    (planar_jpeg or int(page.compression) not in _JPEG):  # fmt: skip
                h, v = page.subsampling or (2, 2)
                tagged = "" if page.subsampling else ", TIFF's default where the tag is missing"
                layout = " of planar samples (PlanarConfiguration 2)" if planar_jpeg else ""
                raise ImageReadError(path, f"YCbCr TIFF with subsampled colour (YCbCrSubSampling {h}, {v}{tagged}) in "
                                     f"{getattr(page.compression, 'name', page.compression)}{layout}: not decoded "
                                     "here (tifffile decodes subsampled YCbCr only in JPEG of contiguous samples); "
                                     "save it as a greyscale or RGB TIFF, or a PNG")  # fmt: skip
            white_is_zero = flip = photometric == 0  # MINISWHITE
            colormap = page.colormap if photometric == 3 else None  # PALETTE: values index it
            inks = page.tags.get(_INKSET)
            cmyk = photometric == 5 and (inks is None or int(inks.value) == 1)  # SEPARATED, CMYK inks
            if photometric == 5 and not cmyk:
                raise ImageReadError(path, f"SEPARATED TIFF with inks other than CMYK (InkSet {inks.value}): "
                                     "no colours to take its luminance from")  # fmt: skip
            compression = getattr(page.compression, "name", str(page.compression))
            tag = page.tags.get(ORIENTATION)
            orientation = int(tag.value) if tag is not None else 1
            max_sample = _max_sample_value(page.tags.get(_MAX_SAMPLE_VALUE))
            # a PNG-compressed page is decoded on this thread alone: libpng's warnings on a worker
            # thread would be no file's notes, bare lines on stderr. On many cores, where tifffile
            # would use up to half of them, such a page decodes slower (not measured). Such TIFFs are
            # rare: radiographs come as DICOM, PNG, or TIFFs uncompressed, LZW or JPEG
            try:
                values = page.asarray(maxworkers=1 if compression == "PNG" else None)
            except (KeyError, ValueError, RuntimeError, ImportError) as exc:
                # ImportError: its pure-Python ZSTD wants Python 3.14's compression.zstd
                if not isinstance(exc, ImportError) and "imagecodecs" not in str(exc):
                    raise
                if in_subifd:  # (Pillow reads the chain of pages, not a page's SubIFDs)
                    raise ImageReadError(path, f"TIFF's full-resolution image, in the SubIFD of page 1, is {compression} "
                                         "data that tifffile decodes with imagecodecs: pip install imagecodecs") from None  # fmt: skip
                _check_pillow_reads_samples(path, page.dtype, page.samplesperpixel, tif.byteorder, compression)
                values, flip, pillow_mode = _tiff_without_imagecodecs(path, page, compression, white_is_zero, index)
                values = _as_the_page_stores(values, page.dtype)
                if values.ndim == 3 and values.dtype.itemsize < page.dtype.itemsize:
                    high_bytes_note(notes, path, page.bitspersample, "TIFF", f"Pillow, which decodes its {compression} "
                                    "data here as imagecodecs is not installed,",
                                    imagecodecs_wanted(compression.lower(), compression, command=True))  # fmt: skip
                planar = False  # Pillow interleaves the samples
            info = {"format": "tiff", "shape": shape, "dtype": str(page.dtype), "bitspersample": page.bitspersample,
                    "compression": compression}  # fmt: skip
    except (ImageReadError, MemoryError):  # (out of memory: read_image says so, not that the file is damaged)
        raise
    except Exception as exc:  # tifffile raises many types on corrupt data
        raise ImageReadError(path, f"cannot decode TIFF: truncated or corrupt ({exc})") from None
    for log in logs:
        notes.extend(log.notes(path))
    if values.dtype.kind not in "biuf":  # complex (a Fourier transform's): no grey levels
        raise ImageReadError(path, f"TIFF holds {values.dtype} samples, not grey levels")
    bits = None
    if planar and values.ndim == 3:
        values = np.moveaxis(values, 0, -1)
    if colormap is not None and values.ndim in (2, 3):
        extra = values.shape[-1] - 1 if values.ndim == 3 else 0
        if extra:  # a palette page with extra samples (Pillow's PA: index + alpha): the index first,
            # as TIFF lays them out; looked up whole, (H, W, 2) failed as "cannot decode TIFF: IndexError"
            values = np.ascontiguousarray(values[..., 0])
        if values.ndim == 2:  # (indices: tifffile's, or Pillow's where it decodes the page)
            # a TIFF colour map holds 16-bit entries; some writers put 8-bit ones in it (none above
            # 255: libtiff takes the map for 8-bit then too, and so does this): its colours are
            # then uint8, as full_range and the writers take an image's depth from its type
            table = np.asarray(colormap, np.uint16)
            bits = 16 if int(table.max()) > 255 else 8
            try:
                values = np.moveaxis((table if bits == 16 else table.astype(np.uint8))[:, values], 0, -1)
            except IndexError:
                raise ImageReadError(path, f"palette TIFF has values beyond its {colormap.shape[-1]}-entry "
                                     "colour map") from None  # fmt: skip
        values = luminance(values, notes, path, "palette")
        if extra == 1:
            grey_alpha_note(notes, path, "palette")
        elif extra:
            notes.append(f"{path}: palette TIFF with {extra} extra samples per pixel: its first sample read as the "
                         "colour map's index, the others left out")  # fmt: skip
    if cmyk and values.ndim == 3 and values.shape[-1] >= 4:  # ink amounts: as RGBA they were another image
        values = _cmyk_to_rgb(values[..., :4])
        values = luminance(values, notes, path, "CMYK")
    as_stored = photometric in _GREY_FIRST and not decoded_to_rgb and pillow_mode in (None, "YCbCr", "LAB")
    if as_stored and values.ndim == 3:  # (Pillow gives other YCbCr pages as RGB: their luminance, below)
        name, grey = _GREY_FIRST[photometric]
        values = np.ascontiguousarray(values[..., 0])
        notes.append(f"{path}: {name} image: its {grey} read as grey (its colour left out)")
    elif values.ndim == 3 and values.shape[-1] > 2 and photometric in (0, 1) and pillow_mode is None:
        # a grey page with extra samples (SamplesPerPixel 3 or more: a mask, another channel): the
        # grey is the first, as TIFF lays them out; taken for RGB, the others were mixed into it
        # under an 'RGB image' note (and 5 or more refused)
        notes.append(f"{path}: grey TIFF with {values.shape[-1] - 1} extra samples per pixel: its first sample read "
                     "as the grey, the others left out")  # fmt: skip
        values = np.ascontiguousarray(values[..., 0])
    elif values.ndim == 3 and values.shape[-1] > 4 and photometric == 2 and pillow_mode is None:
        # an RGB page with 2 or more extra samples (alpha and a mask, ...): R, G and B come first,
        # as TIFF lays them out; its shape (H, W, 5 or more) was refused as no single-channel image
        notes.append(f"{path}: RGB TIFF with {values.shape[-1] - 3} extra samples per pixel: its luminance read "
                     "from the red, green and blue, the others left out")  # fmt: skip
        values = luminance(values[..., :3], notes, path, "RGB", whole=False)  # (its others: lost)
    elif values.ndim == 3 and values.shape[-1] in (3, 4):
        values = luminance(values, notes, path)
    elif values.ndim == 3 and values.shape[-1] == 2 and photometric in (0, 1):  # grey + alpha, as Pillow reads PNG's
        values = np.ascontiguousarray(values[..., 0])
        grey_alpha_note(notes, path)
    if values.ndim != 2:
        raise ImageReadError(path, f"expected a single-channel image, decoded shape {values.shape}")
    if values.dtype == bool:  # 1-bit pages: as Pillow gives them, 0 and 255
        values = values.astype(np.uint8) * 255
    elif values.dtype == np.uint8 and 1 < info["bitspersample"] < 8 and pillow_mode is None and colormap is None:
        # 2- and 4-bit grey samples over 0..255, as Pillow gives them (where it decodes the page, an
        # LZW one without imagecodecs) and a 4-bit PNG's: read as 0..15 at 8 bits, they were scored
        # on 0..255 (an output of another tool all but black) and flipped within it (all but white)
        values = np.rint(values * (255 / ((1 << info["bitspersample"]) - 1))).astype(np.uint8)
    if orientation != 1 and orientation in _UPRIGHT:
        values = _UPRIGHT[orientation](values)
        notes.append(f"{path}: turned upright as its TIFF Orientation ({orientation}) says")
    values = np.ascontiguousarray(values)  # (a turn's view: the tag's, or Pillow's undone, that alone)
    if values.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ImageReadError(path, f"float TIFF contains {bad} NaN or infinite value(s)")
        bits = 8 * values.dtype.itemsize  # its floats' width: 16 for half floats (was 32 for every float)
    elif bits is not None:
        pass  # a colour map's
    elif values.dtype == np.uint8:
        bits = 8
    elif (values.dtype.kind == "u" and values.dtype.itemsize > 2 and photometric in (0, 1) and colormap is None
          and (recorded := _recorded_depth(max_sample, values))):  # fmt: skip
        # 12-bit data in 32-bit samples whose MaxSampleValue (4095) records it, as a 16-bit page's
        # does below: read over 0..2^32 - 1, the depth the file records was dropped
        bits = info["significant_bits"] = recorded
    elif values.dtype.kind == "i" or values.dtype.itemsize > 2:
        # signed: the container's range (its top bits hold the sign). Wider than 16 bits: the
        # container's too; the depth is guessed from the values only for 12-bit data in 16-bit
        # samples, a known way of storing it, and a 32-bit image's guess (22) means no depth
        bits = 8 * values.dtype.itemsize
    elif 8 < info["bitspersample"] < 8 * values.dtype.itemsize:
        # packed samples (10, 12, 14 bits) record their depth: guessed from the values, a dark
        # 12-bit image was 11-bit (flipped within 11 bits, its outputs written over 0..2047)
        bits = info["significant_bits"] = info["bitspersample"]
    elif photometric in (0, 1) and colormap is None and (recorded := _recorded_depth(max_sample, values)):
        # a grey page's MaxSampleValue (4095 for 12-bit data in 16-bit samples) records its depth,
        # as a PNG's sBIT does: guessed from the values, a dark 12-bit image was 11-bit
        bits = info["significant_bits"] = recorded
    else:
        bits = bits_from_values(values, 8 * values.dtype.itemsize)
    if flip:
        values = invert(values, bits)
    return values, bits, "MONOCHROME1" if white_is_zero else "MONOCHROME2", info


def _max_sample_value(tag) -> int | None:
    """A MaxSampleValue tag's first value (it holds one a sample: the first is the grey's); None
    where that is no whole number (absent, empty, text: a damaged tag says no depth, and the file
    is read as one without it)."""
    values = [] if tag is None else tag.value if isinstance(tag.value, (tuple, list)) else [tag.value]
    first = values[0] if len(values) else None
    whole = isinstance(first, numbers.Integral) or (isinstance(first, float) and first.is_integer())
    return int(first) if whole else None


def _recorded_depth(max_sample, values: np.ndarray) -> int | None:
    """The depth a MaxSampleValue tag records for ``values`` (8 <= bits < their type's): only a
    top of 2^bits - 1 (4095, 1023, 255) is one, as TIFF 6.0 calls the tag statistical and some writers
    put the data's own maximum there (1300 read as 11 bits scored a dark image on 0..2047). None
    where it records none (absent, its type's top, the tag's default, or another number) or the
    values pass it (the tag is then wrong, and the depth is guessed from them). 255 records 8-bit
    data in wider samples, as a PNG's sBIT 8 does: unheard, it was scored on 0..65535 (and in
    32-bit samples read at 32 bits, a MinIsWhite one flipped within them)."""
    if max_sample is None or values.size == 0:
        return None
    bits = int(max_sample).bit_length()
    if max_sample != (1 << bits) - 1 or not 8 <= bits < 8 * values.dtype.itemsize:
        return None
    return bits if int(values.max()) <= max_sample else None


def _check_segments_in_file(path: str, page, size: int) -> None:
    """Refuses a page whose strips or tiles run past the end of the file (a file cut short):
    tifffile reads what is there, and libjpeg fills what is missing of a JPEG strip with grey,
    silently, where another codec or an uncompressed strip fails on it. So too a strip at offset
    0 or of 0 bytes (a damaged StripOffsets or StripByteCounts entry), which tifffile reads as
    zeros, a black band; but for the byte count of contiguous data, which it reads by the
    image's size. So too a page whose size needs more strips or tiles than its tables list (a
    damaged ImageLength or ImageWidth), which tifffile pads with zeros, saying so only in a log."""
    what = "tile" if page.is_tiled else "strip"
    needed = math.prod(getattr(page, "chunked", ()) or (0,))
    if len(page.dataoffsets) < needed and not page.is_contiguous:
        raise ImageReadError(path, f"TIFF of {page.imagewidth} x {page.imagelength} (width x height) needs {needed} "
                             f"{what}s, its tags list {len(page.dataoffsets)}: its size or its {what} tables are "
                             "damaged")  # fmt: skip
    for k, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
        if offset == 0 and count == 0:
            # GDAL's 'sparse' files (SPARSE_OK=TRUE; not TIFF 6.0, whose offsets point at data) leave
            # out a block of nothing but nodata so, and tifffile reads it as zeros. Refused all the
            # same: no radiograph writer makes them, and tables zeroed by damage look alike, where a
            # black block read into an image would be enhanced as anatomy
            raise ImageReadError(path, f"TIFF {what} {k + 1} of {len(page.dataoffsets)} is at offset 0 and of 0 "
                                 f"bytes: a {what} left out (a GDAL 'sparse' file's, or damaged {what} tables); "
                                 "refusing to read it as zeros: where the file is sparse, write it whole "
                                 "(gdal_translate -co SPARSE_OK=FALSE)")  # fmt: skip
        empty = "at offset 0" if offset == 0 else "of 0 bytes" if count == 0 and not page.is_contiguous else None
        if empty:
            raise ImageReadError(path, f"TIFF {what} {k + 1} of {len(page.dataoffsets)} is {empty}: no data for "
                                 f"its {'rows' if what == 'strip' else 'pixels'}; corrupt")  # fmt: skip
        if count and offset + count > size:
            raise ImageReadError(path, f"TIFF is truncated: its {what} {k + 1} of {len(page.dataoffsets)} ends at "
                                 f"byte {offset + count:,}, past the end of the file ({size:,} bytes)")  # fmt: skip


def _whole_blocks(n: int) -> int:
    """``n`` pixels rounded up to JPEG's largest block (16, with 2x chroma subsampling)."""
    return -(-n // 16) * 16


def _check_jpeg_segment_sizes(path: str, page, head: int = 4096) -> None:
    """Refuses a JPEG page whose strip or tile holds a JPEG declaring a larger image than the
    strip or tile: max_pixels was checked on the tags, and imagecodecs allocates (and fills)
    what the JPEG's frame header says, then tifffile keeps the part the tags ask for. Or a
    smaller one (a damaged ImageWidth), which tifffile may pad with zeros. The frame header is
    looked for in the first ``head`` bytes of each (its tables come before it)."""
    if page.is_tiled:
        rows, cols, what = page.tilelength, page.tilewidth, "tile"
    else:
        rows, cols, what = min(page.rowsperstrip, page.imagelength), page.imagewidth, "strip"
    across = -(-page.imagewidth // cols)
    per_plane = across * -(-page.imagelength // rows)
    with open(path, "rb") as f:
        for k, (offset, count) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            f.seek(offset)
            frame = jpeg_frame(io.BytesIO(f.read(min(count, head)))) if count else None
            if frame is None or None in frame[2:]:
                continue
            # (the last strip of a plane may hold only the rows left, an edge tile only the part of
            # the image it covers: some writers encode no more, and libtiff and tifffile read it)
            down, right = divmod(k % per_plane, across)
            least_rows = min(rows, page.imagelength - down * rows)
            least_cols = min(cols, page.imagewidth - right * cols)
            if frame[2] * frame[3] > _whole_blocks(rows) * _whole_blocks(cols):  # (a JPEG may declare
                said = "larger"  # its padding to whole 16-px blocks: tifffile keeps what the tags ask)
            elif frame[3] < least_cols or frame[2] < least_rows:
                said = "smaller"
            else:
                continue
            raise ImageReadError(path, f"TIFF {what} {k + 1} of {len(page.dataoffsets)} holds a JPEG declaring "
                                 f"{frame[3]} x {frame[2]} (width x height), {said} than the {what}'s {cols} x {rows}: "
                                 "corrupt; refusing to decode it")  # fmt: skip


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """RGB of CMYK ink amounts (0 = none), each channel (1 - ink) * (1 - black), in their type."""
    top = 1.0 if cmyk.dtype.kind == "f" else float(np.iinfo(cmyk.dtype).max)
    ink = cmyk.astype(np.float64) / top
    rgb = (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:4]) * top
    return rgb.astype(cmyk.dtype) if cmyk.dtype.kind == "f" else np.rint(rgb).astype(cmyk.dtype)


#: TIFF Orientation -> the turn that shows the stored rows as meant (the tag names where row 0
#: and column 0 lie: 3 bottom-right, 6 right-top, ...; as Pillow's exif_transpose applies them),
#: of the first two axes (an image's rows and columns, its samples after them): views, not copies.
_UPRIGHT = {
    2: np.fliplr,
    3: lambda v: np.rot90(v, 2),
    4: np.flipud,
    5: lambda v: np.swapaxes(v, 0, 1),
    6: lambda v: np.rot90(v, -1),
    7: lambda v: np.swapaxes(np.rot90(v, 2), 0, 1),
    8: lambda v: np.rot90(v, 1),
}


#: TIFF Orientation -> the one whose turn undoes its own (a quarter turn's is the other way; each
#: other is its own undoing).
_UNDONE_BY = {6: 8, 8: 6}


def _first_full_resolution_page(tif, look: int = 64) -> int | None:
    """The index of the first page that is not a reduced-resolution copy of another (NewSubfileType
    bit 0: a thumbnail a scanner or viewer stored first) and has pixels, among the first ``look``;
    the first of no pixels where none has them (for the error to say so); else None."""
    empty, pages = None, iter(tif.pages)
    for k in range(look):
        with LogNamingTheFile("tifffile"):  # (what it says of a page not read is no note of the file's)
            page = next(pages, None)  # (the page read is parsed again, under the file's log)
        if page is None:
            break
        if getattr(page, "is_reduced", False):
            continue
        if page.imagewidth and page.imagelength:
            return k
        empty = k if empty is None else empty
    return empty


def _full_resolution_subifd(page):
    """The first of ``page``'s SubIFDs that is not a reduced-resolution copy (DNG's layout: page 1
    a thumbnail, the image in its SubIFD); None where it has none, or they cannot be read."""
    try:
        return next((sub for sub in page.pages or () if not getattr(sub, "is_reduced", False)), None)
    except Exception:  # (a damaged SubIFD: the pages are read as they were)
        return None


def _larger_page_after(tif, page, look: int = 64) -> str:
    """What the note of a multi-page TIFF read from page 1 adds where a later page (among the first
    ``look``) is larger: a thumbnail stored first without NewSubfileType saying so is read as the
    image (it cannot be told from a stack of views), and "reading the first" alone hid that."""
    pixels = page.imagewidth * page.imagelength
    for k in range(1, min(len(tif.pages), look)):
        try:
            with LogNamingTheFile("tifffile"):  # (what it says of a page not read is no note of the file's)
                other = tif.pages[k]
            larger = other.imagewidth * other.imagelength > pixels
        except Exception:  # (a damaged later page: page 1 is read as before)
            return ""
        if larger:
            return (f" ({page.imagewidth} x {page.imagelength}, width x height), though page {k + 1} is larger "
                    f"({other.imagewidth} x {other.imagelength}): where page 1 is a thumbnail not marked as one "
                    "(NewSubfileType), save the full image as a TIFF of its own")  # fmt: skip
    return ""


def _largest_of_reduced_pages(path: str, tif, notes: list[str], look: int = 64) -> int:
    """Where no page is at full resolution: refuses the file where its chain of pages (IFDs) breaks
    (loops back, or points past the end of the file: tifffile stops there, logging it), since
    the image the copies were made of is beyond the break and page 1 is a thumbnail; else the
    index of the largest page among the first ``look`` (a writer may mark its sole page, or
    every level of a pyramid, reduced-resolution; page 1 may be the smallest), said in a note."""
    first = tif.pages[0]
    size = f"{first.imagewidth} x {first.imagelength}, width x height"
    broken = _chain_break(tif)
    if broken:
        raise ImageReadError(path, f"TIFF's chain of pages {broken[1]} after page {broken[0]}, and the pages before are "
                             f"reduced-resolution copies (page 1: {size}): its full-resolution image cannot be "
                             "reached; corrupt")  # fmt: skip
    with LogNamingTheFile("tifffile"):  # (what it says of a page not read is no note of the file's; the page
        pages = [tif.pages[k] for k in range(min(len(tif.pages), look))]  # read is parsed again, under its log)
    index = max(range(len(pages)), key=lambda k: (pages[k].imagewidth * pages[k].imagelength, -k))
    page = pages[index]
    which = "page 1" if len(pages) == 1 else f"page {index + 1}, the largest of {len(pages)}"
    notes.append(f"{path}: TIFF's pages are all marked reduced-resolution copies (NewSubfileType), none at full "
                 f"resolution; reading {which} ({page.imagewidth} x {page.imagelength}, width x height)")  # fmt: skip
    return index


def _chain_break(tif, most: int = 1 << 16) -> tuple[int, str] | None:
    """Where a TIFF's chain of IFDs does not end as TIFF ends it (a next-IFD offset of 0): the
    page whose offset is wrong and how; None where it ends so (within ``most`` pages)."""
    form, fh = tif.tiff, tif.filehandle
    at, seen = tif.pages[0].offset, {}
    while len(seen) < most:
        seen[at] = len(seen) + 1
        fh.seek(at)
        head = fh.read(form.tagnosize)
        if len(head) < form.tagnosize:
            return len(seen), "is cut short"
        fh.seek(at + form.tagnosize + struct.unpack(form.tagnoformat, head)[0] * form.tagsize)
        tail = fh.read(form.offsetsize)
        nxt = struct.unpack(form.offsetformat, tail)[0] if len(tail) == form.offsetsize else None
        if nxt == 0:
            return None
        if nxt is None or nxt >= fh.size:
            return len(seen), "points past the end of the file"
        if nxt in seen:
            return len(seen), f"loops back to page {seen[nxt]}"
        at = nxt
    return None


def _tiff_without_imagecodecs(path: str, page, compression: str, white_is_zero: bool,
                              index: int = 0) -> tuple[np.ndarray, bool, str]:  # fmt: skip
    """Page ``index`` (tifffile's ``page``) decoded by Pillow, for compressions tifffile leaves to
    imagecodecs (LZW and JPEG, common in radiograph exports; ZSTD before Python 3.14). Returns the
    pixels as stored (Pillow's turn by the page's orientation undone, as the reader turns it), whether they still need the MINISWHITE flip (Pillow flips 1- and 8-bit MINISWHITE
    pages itself, not 16-bit ones) and Pillow's mode (a compressed YCbCr page: RGB). Where Pillow fails too, the error says whether a codec is
    missing (a compression Pillow does not know fails at open; one its libtiff was built without,
    at load), Pillow lacks the page's layout (:func:`_layout_pillow_lacks`: a valid file), the
    file is damaged (Pillow decodes that compression, yet not this file's data) or too large for
    Pillow's decompression-bomb check."""
    from PIL import Image, TiffImagePlugin

    code = int(page.compression)
    # (uncompressed, what tifffile leaves to imagecodecs is the unpacking of 10-, 14-, 24-bit samples)
    what = f"its {compression} data" if code != 1 else f"its {page.bitspersample}-bit packed samples"
    by_pillow = f"Pillow, which decodes {what} here as imagecodecs is not installed"
    lacking = f"cannot decode TIFF: {by_pillow}, does not decode {{}}, though its tags read as a valid TIFF's: " \
              "pip install imagecodecs for tifffile to read it"  # fmt: skip
    if code == 7 and page.bitspersample > 12:  # (its libtiff's JPEG codec takes 8- and 12-bit samples; tried, it
        # failed on them, writing "JPEGPreDecode: Improper JPEG data precision" to stderr, naming no file)
        raise ImageReadError(path, lacking.format(f"{page.bitspersample}-bit JPEG data"))
    ycbcr = _ycbcr_as_rgb(path, page)
    try:
        # Pillow's warnings (a tag with more values than it takes) named, as read_pillow names them:
        # in turns with the other readers while it reads the tags, not while it decodes the pixels
        with WarningsNamingTheFile(path, stacklevel=6):  # (the caller of read_image)
            im = Image.open(path if ycbcr is None else ycbcr)
            try:
                im.seek(index)
            except BaseException:
                im.close()
                raise
    except MemoryError:
        raise
    except Image.DecompressionBombError as exc:  # (above 2 x Image.MAX_IMAGE_PIXELS, where max_pixels allows it)
        raise ImageReadError(path, f"too large for {by_pillow}: {str(exc).rstrip('.')}; pip install imagecodecs "
                             "for tifffile to decode it (within max_pixels)") from None  # fmt: skip
    except Exception as exc:
        if code not in TiffImagePlugin.COMPRESSION_INFO:
            raise ImageReadError(path, f"TIFF compression {compression} needs a codec that neither tifffile nor "
                                 "Pillow has here: pip install imagecodecs") from None  # fmt: skip
        if _layout_pillow_lacks(path, index, exc):
            raise ImageReadError(path, lacking.format(_layout(page))) from None
        raise ImageReadError(path, f"cannot decode TIFF: {by_pillow}, cannot read the file ({exc}): truncated "
                             "or corrupt, or pip install imagecodecs for tifffile to read it") from None  # fmt: skip
    with im:
        try:
            told, tag = im.getexif().get(ORIENTATION, 1), im.tag_v2.get(ORIENTATION, 1)
            im.load()
            turned = _turned_by_pillow(im, told, tag)
            mode = im.mode
            # a palette's indices, which the reader looks up in the page's colour map: Pillow's own
            # colours keep only the high byte of its 16-bit entries
            values = np.asarray(im)
        except MemoryError:
            raise
        except Exception as exc:
            if not _pillow_has_codec(im.info.get("compression", "")):  # not known to decode it: either
                raise ImageReadError(path, f"cannot decode TIFF: {by_pillow}, failed on it ({exc}): this Pillow may "
                                     f"lack the {compression} codec (pip install imagecodecs), or the file is "
                                     "truncated or corrupt") from None  # fmt: skip
            raise ImageReadError(path, f"cannot decode TIFF: truncated or corrupt ({by_pillow}, failed on its "
                                 f"data: {exc}); re-export or copy it again") from None  # fmt: skip
    if turned in _UPRIGHT:  # the page as stored, as tifffile gives it: the reader turns it by its tag
        values = _UPRIGHT[_UNDONE_BY.get(turned, turned)](values)
    if mode == "1":
        values = values.astype(np.uint8) * 255
    return values, white_is_zero and mode not in ("1", "L"), "YCbCr" if ycbcr is not None else mode


def _ycbcr_as_rgb(path: str, page):
    """A YCbCr page of whole-resolution colour (YCbCrSubSampling 1, 1; compressed other than in
    JPEG; its samples contiguous or planar), as the file's bytes with its PhotometricInterpretation
    said to be RGB, for Pillow to give its samples as stored (Y, Cb, Cr): its libtiff gives such a
    page as RGB, converted and clipped to 0..255 (a luminance of that was not the file's Y: far off
    where colours clip, and said as an 'RGB image'). None for any other page (subsampled ones
    tifffile refuses: not decoded here), or where the tag is not a plain SHORT or LONG to rewrite."""
    if int(page.photometric) != 6 or int(page.compression) in _JPEG or page.samplesperpixel < 3 or \
            page.is_subsampled:  # (tifffile's rule: a missing tag is TIFF's default, (2, 2))  # fmt: skip
        return None
    tag = page.tags.get(262)  # PhotometricInterpretation
    size = {3: 2, 4: 4}.get(int(tag.dtype)) if tag is not None and tag.count == 1 else None
    if size is None:
        return None
    with open(path, "rb") as f:
        data = bytearray(f.read())
    order = "little" if page.parent.byteorder == "<" else "big"
    data[tag.valueoffset : tag.valueoffset + size] = (2).to_bytes(size, order)  # RGB
    return FileBytes(data, path)  # (BytesIO copies it: no bytes() copy first)


def _layout_pillow_lacks(path: str, index: int, exc: Exception) -> bool:
    """Whether Pillow refused page ``index`` of a TIFF for its layout, none of the photometric, sample
    format, bits and extra samples that its table of modes holds ("unknown pixel mode": 16-bit grey
    + alpha, float16, 32-bit RGB, ...), not for damage: Image.open words that as it words any file it
    cannot read ("cannot identify image file"), so the page is opened again by the TIFF plugin, for
    its reason. What Pillow warns of the second time was given the first."""
    from PIL import TiffImagePlugin, UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        again = WarningsNamingTheFile(path)
        with again:
            try:
                with TiffImagePlugin.TiffImageFile(path) as im:
                    im.seek(index)
                return False
            except SyntaxError as why:
                exc = why
            except Exception:
                return False
            finally:
                again.caught.clear()
    return isinstance(exc, SyntaxError) and str(exc) == "unknown pixel mode"


def _layout(page) -> str:
    """A TIFF page's layout as :func:`_layout_pillow_lacks` judges it, in words: "MINISBLACK pages of
    2 16-bit unsigned samples a pixel"."""
    kind = {1: "unsigned", 2: "signed", 3: "float"}.get(int(page.sampleformat), f"SampleFormat {int(page.sampleformat)}")
    photometric = getattr(page.photometric, "name", str(page.photometric))
    n = page.samplesperpixel
    return f"{photometric} pages of {f'{n} ' if n > 1 else ''}{page.bitspersample}-bit {kind} samples" + \
        (" a pixel" if n > 1 else "")  # fmt: skip


def _turned_by_pillow(im, told: int, tag: int) -> int:
    """The Orientation by which Pillow turned the TIFF page ``im`` upright as it loaded it (1 where it
    did not), ``told``: the EXIF orientation it had before (its tag's, or where it has none, an XMP
    tiff:Orientation), ``tag``: its tag's. Pillow 10.1 on turns by ``told`` and then drops it;
    6.2 to 10.0 turned by ``tag`` and kept it. Turned again by the tag, an Orientation 3 page read
    upside down, 6 and 8 half a turn off, and an XMP-only one (no tag: tifffile reads it as
    stored) came out turned."""
    import PIL

    if told in _UPRIGHT and ORIENTATION not in im.getexif():
        return told
    older = tuple(int(part) for part in PIL.__version__.split(".")[:2] if part.isdigit()) < (10, 1)
    return tag if older and tag in _UPRIGHT else 1


def _check_pillow_reads_samples(path: str, dtype: np.dtype, samples: int, byteorder: str, compression: str) -> None:
    """Refuses, before Pillow decodes it, a grey page (one sample a pixel) of big-endian samples
    wider than a byte (but unsigned 16-bit ones): where libtiff decodes them, this Pillow swaps
    their bytes back again (0.956 read as -3.2e28, silently)."""
    if byteorder == ">" and samples == 1 and dtype.kind in "iuf" and dtype.itemsize > 1 and dtype != np.uint16:
        raise ImageReadError(path, f"cannot decode TIFF: Pillow, which decodes its {compression} data here as "
                             f"imagecodecs is not installed, misreads its big-endian {dtype} samples (their bytes "
                             "swapped): pip install imagecodecs for tifffile to read it")  # fmt: skip


def _as_the_page_stores(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Pillow's grey pixels in the type of the page's samples (``dtype``, from its tags), as
    tifffile gives them with imagecodecs: Pillow holds 32-bit unsigned samples in its int32 mode I
    (3e9 read as -1294967296, and the image over -2^31..2^31 - 1, its MaxSampleValue unheard),
    16-bit signed ones there too (over 32 bits) and 8-bit signed ones as bytes (-1 as 255), each
    of the same bits or values; big-endian 16-bit ones (its I;16B) in this machine's byte order."""
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    if values.ndim != 2 or dtype.kind not in "iuf":
        return values
    if (values.dtype, dtype) in ((np.int32, np.uint32), (np.uint8, np.int8)):
        return values.view(dtype)
    if (values.dtype, dtype) == (np.int32, np.int16):
        return values.astype(np.int16)  # (sign-extended: each fits)
    return values


@functools.lru_cache(maxsize=None)
def _pillow_has_codec(compression: str) -> bool:
    """Whether this Pillow writes and reads back a small TIFF in its ``compression`` (a name of
    TiffImagePlugin.COMPRESSION_INFO): its libtiff may be built without one it names (WebP, ...),
    which then fails only where the pixels are decoded, as a damaged file does. False also where
    it writes none (ThunderScan, ...): not known then."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    try:
        Image.new("1" if compression in ("tiff_ccitt", "group3", "group4") else "L", (16, 16)).save(
            buffer, "TIFF", compression=compression)  # fmt: skip
        buffer.seek(0)
        with Image.open(buffer) as im:
            im.load()
            return im.info.get("compression") == compression
    except Exception:
        return False
