"""DICOM's JPEG 2000 pixel data decoded by imagecodecs, which lets other threads run meanwhile.

pydicom's JPEG 2000 plugins (pylibjpeg-openjpeg, Pillow) hold the GIL while they decode, about
0.5 s for a 5-Mpixel radiograph, so a batch job's reader threads decode one such file at a time
however many cores the machine has. imagecodecs' openjpeg releases the GIL. This module is a
pydicom decoding plugin for the JPEG 2000 and HTJ2K transfer syntaxes, used where imagecodecs is
installed (the ``dicom-codecs`` extra) and otherwise absent: pydicom's own plugins decode then.

The reader holds a lock while pydicom works (:class:`~xvertfast.io.errors.WarningsNamingTheFile`:
Python's warning state is process-wide), so :func:`decoded_ahead` decodes a file's frame before
that, and the plugin hands pydicom the result. A frame imagecodecs refuses (components of mixed
precision or sign) the reader gives to pydicom's own plugins.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Iterator

import numpy as np

__all__ = ["PLUGIN", "available_for", "codestream_shape", "decoded_ahead", "is_available", "pixel_array"]

#: The plugin's name in pydicom's decoders.
PLUGIN = "xvertfast-imagecodecs"

# pydicom's plugin interface: the transfer syntaxes this decodes, and what they need
_SYNTAXES = (
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
)
DECODER_DEPENDENCIES = {uid: ("imagecodecs>=2024.1.1",) for uid in _SYNTAXES}

_registered: bool | None = None
_register_lock = threading.Lock()
_ahead = threading.local()  # this thread's frame decoded before pydicom asked: (source bytes, array)


def _jpeg2k_decode():
    """imagecodecs' JPEG 2000 decoder, or None where imagecodecs (or its openjpeg) is missing."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs.jpeg2k_decode if imagecodecs.JPEG2K.available else None


def is_available(uid: str) -> bool:
    """pydicom's question to a plugin: can it decode this transfer syntax here."""
    return uid in _SYNTAXES and _jpeg2k_decode() is not None


def available_for(syntax) -> bool:
    """Whether this plugin is registered with pydicom (on first use) and decodes ``syntax``."""
    global _registered
    if syntax not in _SYNTAXES:
        return False
    with _register_lock:  # pydicom's add_plugin is not thread-safe
        if _registered is None:
            _registered = _jpeg2k_decode() is not None and _register()
    return _registered


def _register() -> bool:
    try:
        from pydicom.pixels import get_decoder
    except ImportError:  # pydicom < 3: its own plugins decode
        return False
    for uid in _SYNTAXES:
        decoder = get_decoder(uid)
        if PLUGIN not in decoder.available_plugins:
            decoder.add_plugin(PLUGIN, (__name__, "_decode_frame"))
    return True


@contextlib.contextmanager
def decoded_ahead(ds, syntax) -> Iterator[None]:
    """Decodes the single frame of ``ds`` now, where this plugin would decode it, and keeps it
    for the plugin until the block ends. Anything wrong (a multi-frame or corrupt file) is left
    for pydicom's decoding in the block to report."""
    frame = None
    if available_for(syntax):
        try:
            from pydicom.encaps import generate_frames

            source = next(generate_frames(ds.PixelData, number_of_frames=1))
        except Exception:
            source = None
        if source is not None and codestream_shape(source) not in (None, (ds.get("Rows"), ds.get("Columns"))):
            source = None  # larger than the header says (max_pixels was checked on that): one at a time, in the block
        if source is not None:
            try:
                frame = (source, _jpeg2k_decode()(source))
            except Exception as exc:  # kept for the plugin to raise
                frame = (source, exc.with_traceback(None))
    _ahead.frame = frame
    try:
        yield
    finally:
        _ahead.frame = None


def pixel_array(ds, syntax):
    """``ds.pixel_array``, decoded by this plugin where it is available for ``syntax``; a frame
    it refuses (components of mixed precision or sign) by pydicom's own plugins, in pydicom's
    order, as without it."""
    if not available_for(syntax):
        return ds.pixel_array
    ds.pixel_array_options(decoding_plugin=PLUGIN)
    try:
        return ds.pixel_array
    except Exception:
        ds.pixel_array_options(decoding_plugin="")
        return ds.pixel_array


def codestream_shape(source: bytes) -> tuple[int, int] | None:
    """The rows and columns a JPEG 2000 codestream declares (its SIZ segment, right after the
    SOC marker; also inside a JP2 file), or None where it has none."""
    at = source.find(b"\xff\x4f\xff\x51")
    if at < 0 or len(source) < at + 24:
        return None
    width, height, left, top = struct.unpack(">4I", source[at + 8 : at + 24])
    return height - top, width - left


def _decode_frame(src: bytes, runner) -> bytes:
    """pydicom's call: the decoded frame ``src`` as bytes, its options set as pydicom's
    pylibjpeg-openjpeg plugin sets them (the two decode with the same library)."""
    ahead = getattr(_ahead, "frame", None)
    if ahead is not None and len(ahead[0]) == len(src) and ahead[0] == src:
        array = ahead[1]
        if isinstance(array, Exception):  # refused ahead: not decoded twice (the reader then asks pydicom's plugins)
            raise array
    else:
        array = _jpeg2k_decode()(src)
    photometric = str(runner.photometric_interpretation)
    if photometric in ("YBR_ICT", "YBR_RCT"):  # openjpeg has undone the colour transform
        runner.set_option("photometric_interpretation", "RGB")
    precision = runner.get_option("j2k_precision", runner.bits_stored)
    runner.set_option("bits_allocated", 8 if precision <= 8 else 16 if precision <= 16 else 32)
    if array.ndim == 3:  # samples interleaved
        runner.set_option("planar_configuration", 0)
    return np.ascontiguousarray(array).tobytes()
