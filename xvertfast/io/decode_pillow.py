"""PNG and JPEG through Pillow, with the PNG and JPEG checks Pillow leaves out.

Each file is read from the disk once: the checks and Pillow work on its bytes in memory (a batch
on network storage would otherwise fetch every file twice).

libjpeg fills what is missing of a JPEG cut short, or lying about its size, with grey, and Pillow
says only "cannot identify" of the JPEG processes it lacks; so the frame header is read here
first, to refuse the one and name the other.

Pillow keeps only the high byte of a 16-bit colour PNG's samples: such a file is decoded by
imagecodecs' libpng where it is installed, and read at 8 bits with a note saying so where not.
"""

from __future__ import annotations

import io
import zlib

import numpy as np

from xvertfast.io.decode_common import (JPEG_SOF, KEPT_ROWS, ORIENTATION, PNG_DEPTH_KEYWORD, FileBytes,
                                        bits_from_values, check_pixels, grey_alpha_note, grey_kept,
                                        high_bytes_note, imagecodecs_decoder, imagecodecs_log, imagecodecs_wanted,
                                        jpeg_frame, luminance, luminance_note, opened_within_max_pixels)
from xvertfast.io.errors import ImageReadError, WarningsNamingTheFile

__all__ = ["read_pillow"]


def _grey_kept_by_rows(im, grey) -> bool:
    """:func:`~xvertfast.io.decode_common.grey_kept` of a Pillow RGB image and its grey, a block
    of rows at a time: np.asarray of the whole image copied it (48 MiB at 4096 x 4096), a colour
    one's included, whose first block answers."""
    boxes = ((0, top, im.width, min(top + KEPT_ROWS, im.height)) for top in range(0, im.height, KEPT_ROWS))
    return all(grey_kept(np.asarray(im.crop(box)), np.asarray(grey.crop(box))) for box in boxes)


def _jpeg_process_pillow_lacks(frame) -> str | None:
    """The JPEG process (and depth) a file's first frame header (``frame``, as jpeg_frame parsed
    it) names where Pillow cannot decode it (lossless, JPEG-LS, 12-bit, ...), e.g. "12-bit lossless
    JPEG"; None where it is one Pillow decodes, or where no frame header is found (a corrupt file)."""
    if frame is None:
        return None
    marker, precision = frame[:2]
    if marker in (0xC0, 0xC1, 0xC2) and precision == 8:
        return None
    return f"{precision}-bit {JPEG_SOF[marker]}" + ("" if marker == 0xF7 else " JPEG")


#: Arithmetic-coded frames (Pillow's libjpeg-turbo decodes those of 8 bits): their coder spends far
#: less than a bit on a block like the ones before it (a 1024 x 1024 mostly black image: 248 bytes).
_ARITHMETIC_SOF = (0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def _check_jpeg_size(path: str, data: bytes, frame, h: int, w: int) -> None:
    """Refuses a Huffman-coded JPEG too small for the size its frame header claims: every 8 x 8
    block of its first component takes at least one bit (a Huffman code; a DC scan codes each
    block), and libjpeg fills what is missing of a file cut or lying about its size with grey,
    silently. An arithmetic-coded one has no such floor: it is not refused. ``frame``: its frame
    header, as jpeg_frame parsed it."""
    blocks = -(-h // 8) * -(-w // 8)
    if len(data) * 8 >= blocks:
        return
    if frame is None or frame[0] not in _ARITHMETIC_SOF:
        raise ImageReadError(path, f"JPEG frame header claims {w} x {h} (width x height), more than its {len(data):,} "
                             "bytes can hold (at least 1 bit per 8 x 8 block): truncated or corrupt")  # fmt: skip


def _jpeg_end(data: bytes) -> int | None:
    """Where the end-of-image marker of the JPEG in ``data`` is (the first of the 0xFF fill bytes
    that may precede it: coded data put there is read), found by walking its segments and
    skipping each scan's coded data (where 0xFF is followed by 0, a stuffed byte, or by a restart
    marker); None where there is none."""
    at, fill = 2, None
    while at + 2 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xD9:
            return at if fill is None else fill
        if marker == 0xFF:  # a fill byte
            fill = at if fill is None else fill
            at += 1
            continue
        fill = None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers of no segment
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        while marker == 0xDA:  # a scan's coded data, to the next marker
            at = data.find(b"\xff", at)
            if at < 0 or at + 1 >= len(data):
                return None
            if data[at + 1] != 0 and not 0xD0 <= data[at + 1] <= 0xD7:
                break
            at += 2
    return None


#: Coded data put before a JPEG's end marker to see whether its decoder reaches it: no 0xFF, and
#: bits that are not all the same (an all-zeros or all-ones run decodes as more grey blocks).
_MORE_DATA = bytes(range(0x10, 0xF0)) * 2


def _check_jpeg_data_ends(path: str, data: bytes, frame, im) -> None:
    """Refuses a Huffman-coded JPEG whose coded data ends before its last block (a frame header
    claiming more rows or columns than the data holds): libjpeg decodes each missing block as
    grey, 128, saying so only in a warning Pillow drops. Only where the last block decoded is
    all 128 is the file decoded again with more coded data before its end marker: a whole file's
    decoder has finished before it and gives the same image, where one that ran out does not.
    ``frame``: its frame header, as jpeg_frame parsed it."""
    h, w = im.height, im.width
    last = np.asarray(im.crop(((w - 1) // 8 * 8, (h - 1) // 8 * 8, w, h)))
    if not (last == 128).all():
        return
    end = _jpeg_end(data)
    if frame is None or frame[0] in _ARITHMETIC_SOF or end is None:  # (an arithmetic decoder may read past its last
        return  # block's bits, whose encoder leaves out the zero bytes at its end: another image then too)
    with _opened(data[:end] + _MORE_DATA + data[end:], path, "jpeg") as again:
        if np.array_equal(np.asarray(again), np.asarray(im)):
            return
    raise ImageReadError(path, f"JPEG frame header claims {w} x {h} (width x height), but its coded data ends before "
                         "its last block: truncated or corrupt (libjpeg decodes what is missing as grey)")  # fmt: skip


def _check_png_crcs(path: str, data: bytes) -> None:
    """Refuses a PNG whose critical chunk (IHDR, PLTE, IDAT, IEND) fails its CRC: Pillow checks
    none of its image data's, and zlib not all of what it inflates (Pillow stops at the last
    row, before the stream's checksum), so a flipped bit or a zeroed run there was decoded as a
    different image, silently. An ancillary chunk's (text, ...) is left alone, as libpng leaves
    it; a chunk running past the end of the file is left for Pillow to call truncated."""
    view, at = memoryview(data), 8
    while at + 8 <= len(data):
        length, kind = int.from_bytes(view[at : at + 4], "big"), bytes(view[at + 4 : at + 8])
        if at + 12 + length > len(data):
            return
        if not kind[0] & 0x20:  # critical (an ancillary chunk's name starts lower-case)
            stored = int.from_bytes(view[at + 8 + length : at + 12 + length], "big")
            if zlib.crc32(view[at + 4 : at + 8 + length]) != stored:
                name = kind.decode("latin-1") if kind.isalpha() else repr(kind)
                raise ImageReadError(path, f"PNG chunk {name} at byte {at} fails its CRC check: corrupt (damaged "
                                     "in storage or transfer)")  # fmt: skip
            if kind == b"IEND":
                return
        at += 12 + length


def _png_chunks(data: bytes):
    """(kind, body) of each whole chunk of the PNG ``data``, in order, to its IEND."""
    at = 8
    while at + 12 <= len(data):
        length, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        if at + 12 + length > len(data):
            return
        yield kind, data[at + 8 : at + 8 + length]
        if kind == b"IEND":
            return
        at += 12 + length


def _png_sbit(data: bytes) -> tuple[int, ...] | None:
    """The significant bits that a PNG's sBIT chunk records for each of its colours (the depth of
    its source, e.g. 12 in a 16-bit file): a grey (or grey + alpha) one's grey, a colour one's red,
    green and blue; from the chunks before its pixels. None where it has none, one no image of its
    kind can have (0, or more than its bit depth), or its bit depth: that is PNG's default, which
    tools copying it write, and says nothing of the data's depth."""
    if data[12:16] != b"IHDR" or data[25] not in (0, 2, 4, 6):  # (not a palette's: the colours of its table)
        return None
    colours = 3 if data[25] in (2, 6) else 1
    for kind, body in _png_chunks(data):
        if kind == b"IDAT":
            return None
        if kind == b"sBIT" and len(body) >= colours:
            bits = tuple(body[:colours])
            return bits if 1 <= min(bits) and max(bits) < data[24] else None
    return None


def _png_significant_bits(data: bytes) -> int | None:
    """The grey's significant bits that a PNG's sBIT chunk records (:func:`_png_sbit`): a colour
    one's deepest of red, green and blue (the luminance of samples that fit in their bits fits in
    those)."""
    bits = _png_sbit(data)
    return max(bits) if bits else None


def _sbit_contradiction(data: bytes, samples: np.ndarray) -> str | None:
    """What a 16-bit PNG's sBIT says that its ``samples`` ([H, W] grey, or [H, W, 3+] colour, at 16
    bits) contradict: the first colour whose values reach past its sBIT without being values of
    that depth scaled to 16 bits as the PNG spec allows (:func:`_scaled_from`); None where none
    does, or it has no sBIT. A colour one's are judged sample by sample, not by their luminance,
    which scaled samples need not give."""
    bits = _png_sbit(data)
    if bits is None:
        return None
    names = ("",) if len(bits) == 1 else ("red", "green", "blue")
    for k, (significant, name) in enumerate(zip(bits, names)):
        channel = samples if len(bits) == 1 else samples[..., k]
        top = int(channel.max()) if channel.size else 0
        if top >= 1 << significant and not _scaled_from(channel, significant):
            what, values = (name, f"its {name} values") if name else ("data", "its values")
            return (f"its sBIT chunk says {significant}-bit {what}, but {values} (up to "
                    f"{top:,}) are neither within {significant} bits nor {significant}-bit values scaled to 16 bits: "
                    "read as 16-bit data")  # fmt: skip
    return None


def _png_recorded_depth(data: bytes) -> int | None:
    """The depth ``write_image`` records in a png16 it writes below 16 bits (a tEXt chunk under
    :data:`PNG_DEPTH_KEYWORD`: its values are unscaled, 0..2^depth - 1), or None where there is
    none, or one no image of its bit depth can have."""
    keyword = PNG_DEPTH_KEYWORD.encode("latin-1") + b"\0"
    for kind, body in _png_chunks(data):
        if kind == b"tEXt" and body.startswith(keyword):
            text = body[len(keyword):]
            depth = int(text) if text.isdigit() and len(text) <= 2 else 0
            return depth if 1 <= depth < data[24] else None
    return None


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


#: The chunks that mean the same for any colour type which say how to show an image: its EXIF,
#: and the text ones (which may hold EXIF or XMP, an orientation).
_CHUNKS_OF_ANY_COLOUR_TYPE = (b"eXIf", b"tEXt", b"zTXt", b"iTXt")


def _stand_in(data: bytes, ihdr: bytes, pixels: bytes | None = None):
    """Pillow's PNG of the chunks of the PNG ``data`` that mean the same for any colour type (its
    EXIF and text: sBIT, tRNS, bKGD mean something else for another), in their order, under the
    header ``ihdr``, with ``data``'s own image data or, given ``pixels``, those in its place. A
    file cut short stays cut, for Pillow to call it truncated. (The class, not Image.open: the
    file's size has had its max_pixels check, the one limit on a PNG, see :func:`_opened`.)"""
    from PIL import PngImagePlugin

    chunks, placed = list(_png_chunks(data)), False
    parts = [data[:8], _png_chunk(b"IHDR", ihdr)]
    for kind, body in chunks:
        if kind == b"IDAT" and pixels is not None:
            if not placed:  # (one chunk of them for all the file's)
                parts.append(_png_chunk(kind, pixels))
            placed = True
        elif kind == b"IDAT" or kind in _CHUNKS_OF_ANY_COLOUR_TYPE:
            parts.append(_png_chunk(kind, body))
    if pixels is not None or (chunks and chunks[-1][0] == b"IEND"):
        parts.append(_png_chunk(b"IEND", b""))
    else:  # (a file cut short: what follows its last whole chunk)
        parts.append(data[8 + sum(12 + len(body) for _, body in chunks) :])
    return PngImagePlugin.PngImageFile(io.BytesIO(b"".join(parts)))


def _grey_of_16_bit_grey_alpha(data: bytes):
    """The grey samples, all 16 bits, of a 16-bit grey + alpha PNG, which Pillow decodes at 8 bits
    (into RGBA). Its rows are byte for byte those of an 8-bit RGBA PNG of its size: 4 bytes a
    pixel, so the same filters (which look that many bytes back) and the same interlace passes.
    Pillow unfilters it as one, and each pixel's first two bytes are its big-endian grey. An
    ``I;16`` image holding what Pillow read of its other chunks (its EXIF, for turning it
    upright): the file's pixels are decoded once, here, not at 8 bits first."""
    from PIL import Image

    with _stand_in(data, data[16:24] + b"\x08\x06" + data[26:29]) as rgba:
        pairs = np.asarray(rgba)  # (and the chunks after its pixels read into its info)
        info = dict(rgba.info)
    grey = Image.fromarray((pairs[..., 0].astype(np.uint16) << 8) | pairs[..., 1])
    grey.info = info
    return grey


def _png_info(data: bytes) -> dict:
    """What Pillow reads of a PNG's chunks that mean the same for any colour type (its EXIF, for
    turning it upright, and its text), with its pixels left undecoded: a 1 x 1 black grey image's
    in place of the file's."""
    one_by_one = b"\0\0\0\1\0\0\0\1\x08\0\0\0\0"  # (8-bit grey; its row: filter 0, black)
    with _stand_in(data, one_by_one, zlib.compress(b"\0\0")) as stand_in:
        stand_in.load()  # (and the chunks after its pixels read into its info)
        return dict(stand_in.info)


def _luminance_of_16_bit_colour(path: str, data: bytes, decode, mode: str, notes: list[str]) -> tuple:
    """The luminance, at 16 bits, of a 16-bit RGB or RGBA PNG, as an ``I;16`` image holding what
    Pillow reads of its other chunks (its EXIF): decoded once, by ``decode`` (imagecodecs'
    libpng), with the rule of any other 16-bit colour image (:func:`luminance`); its alpha, or
    the alpha libpng makes of an RGB one's tRNS colour, left out. What libpng warns of the file
    is its notes, named (``mode``: Pillow's, RGB or RGBA, which the note of the conversion names).
    With it, what its samples contradict of its sBIT (:func:`_sbit_contradiction`), said where
    the luminance is read at 16 bits."""
    from PIL import Image

    libpng_log = imagecodecs_log()
    try:
        with libpng_log:
            samples = decode(data)  # [H, W, 3 or 4] uint16
    except MemoryError:
        raise
    except Exception as exc:  # (imagecodecs.PngError: a file cut short, corrupt image data)
        said = libpng_log.said()  # (its warnings before it failed: the clue to why, where a note is not reported)
        raise ImageReadError(path, f"cannot decode PNG: truncated or corrupt (libpng: {exc}){said}") from None
    notes += libpng_log.notes(path)
    transparency: list[str] = []  # (said after the conversion, which loses it where it hides pixels)
    hidden = _transparent_level_note(transparency, path, data, samples)
    grey = Image.fromarray(luminance(samples[..., :3], notes, path, mode, whole=not hidden))
    notes += transparency
    grey.info = _png_info(data)
    return grey, _sbit_contradiction(data, samples)


def _transparent_palette_pixels(im) -> int:
    """How many pixels of the palette image ``im`` its tRNS chunk makes transparent or translucent
    (alpha below 255): converted to grey they read as their palette colour, as an alpha channel is
    left out, and are said so (a palette image's note said only that it was converted)."""
    trns = im.info.get("transparency")
    if trns is None:
        return 0
    alphas = np.full(256, 255, np.uint8)
    if isinstance(trns, int):  # (one entry transparent)
        alphas[trns % 256] = 0
    else:  # (an alpha an entry, for the first entries)
        given = np.frombuffer(bytes(trns), np.uint8)[:256]
        alphas[: given.size] = given
    return int(np.count_nonzero(alphas[np.asarray(im)] < 255))


def _png_transparent_level(data: bytes) -> tuple[int, ...] | None:
    """The grey level (or RGB colour) that a grey or RGB PNG's tRNS chunk marks transparent, from
    the chunks before its pixels, or None where it has none (a palette's tRNS is a table of alphas)."""
    if data[12:16] != b"IHDR" or data[25] not in (0, 2):
        return None
    for kind, body in _png_chunks(data):
        if kind == b"IDAT":
            return None
        if kind == b"tRNS" and len(body) >= (6 if data[25] == 2 else 2):
            return tuple(int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body[:6]), 2))
    return None


def _transparent_level_note(notes: list[str], path: str, data: bytes, samples) -> int:
    """Says how many pixels of a grey or RGB PNG hold the level its tRNS marks transparent
    (``samples``: [H, W] grey or [H, W, 3+] colour, as decoded), so they read as they are, the
    transparency left out, as a palette's transparent pixels and an alpha channel are said. The
    level is at the file's depth: a 1-, 2- or 4-bit grey one's is scaled to 0..255 as Pillow
    scales the samples; a 16-bit RGB one's that Pillow decoded at 8 bits (no imagecodecs) is
    matched on its high bytes, the pixels then counted as at most that many. Returns how many (0:
    none, or no tRNS): a grey image stored as RGB whose transparency hid pixels lost it."""
    level = _png_transparent_level(data)
    if level is None:
        return 0
    samples, depth, rough = np.asarray(samples), data[24], False
    if samples.dtype == bool:  # (Pillow's 1-bit grey, mode 1: its white True)
        samples = samples.astype(np.uint8) * 255
    if depth < 8:
        level = (level[0] * (255 // ((1 << depth) - 1)),)
    elif depth == 16 and samples.dtype == np.uint8:
        level, rough = tuple(v >> 8 for v in level), True
    hit = samples == level[0] if len(level) == 1 else (samples[..., :3] == np.array(level)).all(axis=-1)
    if hidden := int(np.count_nonzero(hit)):
        what = "grey level" if len(level) == 1 else "colour"
        how_many = (f"pixels of the transparent {what} (at most {hidden:,}: matched on their high bytes, as decoded at "
                    "8 bits)" if rough else f"{hidden:,} pixels of the transparent {what}")  # fmt: skip
        notes.append(f"{path}: {'grey' if len(level) == 1 else 'RGB'} image with a transparent {what} (tRNS): its "
                     f"{how_many} read as they are, the transparency left out")
    return hidden


def _occurring(values: np.ndarray) -> np.ndarray:
    """The values that occur in ``values``, sorted, as np.unique gives them. 16-bit ones are marked
    in a table of 65536 flags, the samples read where they are (a colour PNG's channel, a strided
    view, is not copied): np.unique sorts them (1.9 s for a 3000 x 3000 channel on a busy machine,
    the flags 0.13 s), and np.bincount (0.36 s) copied them to int64 first, with a strided
    channel's ravel 5 times its bytes (1 GB for a 100-Mpx image's), where the flags take 64 KiB."""
    values = np.asarray(values)
    if values.dtype != np.uint16:
        return np.unique(values)
    seen = np.zeros(1 << 16, bool)
    seen[values] = True
    return np.flatnonzero(seen)


def _scaled_from(values: np.ndarray, significant: int) -> bool:
    """Whether 16-bit ``values`` are all ``significant``-bit ones scaled up to 16 bits as the PNG
    spec allows (shifted left, with the top bits repeated below, or times 65535 / (2^s - 1)),
    judged on the values that occur (a colour one's three samples each)."""
    x = _occurring(values).astype(np.int64)
    v, low = x >> (16 - significant), 16 - significant
    repeated, at = np.zeros_like(v), low
    while at > -significant:
        repeated |= (v << at) if at >= 0 else (v >> -at)
        at -= significant
    top = (1 << significant) - 1
    linear = (v * 65535 + top // 2) // top
    return bool(((x == v << low) | (x == repeated) | (x == linear)).all())


def _opened(data: bytes, path: str, fmt: str):
    """Pillow's image of the PNG or JPEG ``data``, opened without Image.open's decompression-bomb
    check (:func:`~xvertfast.io.decode_common.opened_within_max_pixels`): max_pixels, checked on
    the size read before a pixel is decoded, is the one limit. Where the class does not take the
    file, Image.open says why (and where none is registered, opens it, with its check)."""
    from PIL import Image

    fp = FileBytes(data, path)
    return opened_within_max_pixels(fp, ("PNG" if fmt == "png" else "JPEG",)) or Image.open(fp)


def read_pillow(path: str, fmt: str, max_pixels: int, notes: list[str]):
    from PIL import Image

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImageReadError(path, f"cannot read: {exc.strerror or exc}") from None
    # a JPEG's frame header, parsed once for every check of it here (its size, its process where
    # Pillow lacks it, its coding), its size against max_pixels before Pillow opens it, as a PNG's
    # IHDR is (read_image): also where Pillow opens it by Image.open, whose bomb check would
    # refuse it first (_opened's fallback, where Pillow registers no JPEG class)
    frame = jpeg_frame(io.BytesIO(data)) if fmt == "jpeg" else None
    if frame is not None and frame[2] and frame[3]:
        check_pixels(path, frame[2], frame[3], max_pixels)
    try:
        # Pillow's warnings (corrupt EXIF data; a decompression-bomb size only where _opened falls
        # back to Image.open) named, as pydicom's: in turns with the other readers, only while it
        # reads the header and the EXIF, not the pixels
        with WarningsNamingTheFile(path, stacklevel=4):  # (the caller of read_image)
            im = _opened(data, path, fmt)
        with im:
            check_pixels(path, im.height, im.width, max_pixels)
            if fmt == "jpeg":
                _check_jpeg_size(path, data, frame, im.height, im.width)
            mode = im.mode
            frames = getattr(im, "n_frames", 1)  # an animated PNG, a JPEG of several pictures (MPO)
            if frames > 1:
                kind = "animated PNG" if fmt == "png" else f"{fmt.upper()} of several pictures"
                notes.append(f"{path}: {kind} with {frames} frames; reading the first")
            if fmt == "png":  # its getexif() decodes the pixels (an eXIf chunk may follow them): not in the lock's turn
                _check_png_crcs(path, data)
            grey_alpha = fmt == "png" and data[12:16] == b"IHDR" and data[25] == 4  # (its colour type)
            colour_16 = fmt == "png" and data[12:16] == b"IHDR" and data[24] == 16 and data[25] in (2, 6)
            contradicted = None  # (what a 16-bit colour PNG's samples contradict of its sBIT)
            decode_16 = imagecodecs_decoder("png") if colour_16 else None  # (libpng: keeps the 16 bits)
            if colour_16 and decode_16 is None:
                wanted = imagecodecs_wanted("png", "PNG", command=True)  # (or its PNG codec, or why it fails)
                high_bytes_note(notes, path, 16, "PNG", "Pillow", wanted)
            if grey_alpha and data[24] == 16:  # (its bit depth; Pillow would decode it at 8 bits)
                im = _grey_of_16_bit_grey_alpha(data)
            elif decode_16 is not None:  # (Pillow would decode it at 8 bits)
                im, contradicted = _luminance_of_16_bit_colour(path, data, decode_16, mode, notes)
            else:
                im.load()
                if fmt == "png" and data[25] == 0:  # (a grey one's, as Pillow decodes it)
                    _transparent_level_note(notes, path, data, im)
            if fmt == "jpeg":
                _check_jpeg_data_ends(path, data, frame, im)
            with WarningsNamingTheFile(path, stacklevel=4):
                orientation = im.getexif().get(ORIENTATION, 1)
            if orientation not in (1, None):
                from PIL import ImageOps

                im = ImageOps.exif_transpose(im)
                notes.append(f"{path}: turned upright as its EXIF Orientation ({orientation}) says")
            if grey_alpha:
                grey_alpha_note(notes, path)
                im = im if im.mode == "I;16" else im.convert("L")
            # (a 16-bit colour PNG that imagecodecs decoded is its luminance already, noted)
            elif mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "LA", "La") and decode_16 is None:
                # (an RGB one's compared with its grey: a grey one loses nothing; not where its 16 bits were not read)
                grey = im.convert("L") if mode == "RGB" and not colour_16 else None
                transparency: list[str] = []  # (its tRNS colour; a 16-bit one imagecodecs decodes: said there)
                hidden = _transparent_level_note(transparency, path, data, im) if fmt == "png" and mode == "RGB" else 0
                luminance_note(notes, path, "palette" if mode.startswith("P") else mode,
                               lost_nothing=not hidden and grey is not None and _grey_kept_by_rows(im, grey))
                notes += transparency
                if mode == "P" and (hidden := _transparent_palette_pixels(im)):
                    notes.append(f"{path}: palette image with transparency (tRNS): its {hidden:,} transparent or "
                                 "translucent pixels read as their palette colour, the transparency left out")  # fmt: skip
                if mode == "P":  # (said above: Pillow's convert would warn of it, naming no file, "should be
                    im.info.pop("transparency", None)  # converted to RGBA images")
                im = grey if grey is not None else im.convert("L")
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
        process = _jpeg_process_pillow_lacks(frame) if fmt == "jpeg" and "cannot identify" in str(exc) else None
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
        significant = (_png_significant_bits(data) or _png_recorded_depth(data)) if fmt == "png" else None
        if significant is None:
            bits = bits_from_values(values, 16)
        else:
            # sBIT (or the depth write_image records) gives the source's depth. Values within it are stored as they came (12-bit data
            # as 0..4095, as converters from DICOM write it): that depth, however dark the image
            # (guessed, a 12-bit image of values up to 1300 was 11-bit, written out over 0..2047).
            # Values past it were scaled up to 16 bits, as the PNG spec says to store them (v << 4,
            # or with its top bits repeated below), and sBIT then gives only their precision: their
            # scale is 16 bits. (Scaled data of an almost black image, below 2**sBIT, is read as
            # unscaled: the values cannot tell them apart.)
            info["significant_bits"] = significant
            bits = max(8, significant) if int(values.max()) < (1 << significant) else 16
            # (a colour one's samples, judged as decoded: its luminance need not be scaled as they are)
            contradicted = _sbit_contradiction(data, values) if data[25] in (0, 4) else contradicted
            if contradicted is not None and bits == 16:
                notes.append(f"{path}: {contradicted}")
    return values, bits, "MONOCHROME2", info
