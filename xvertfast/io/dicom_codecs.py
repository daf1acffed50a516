"""DICOM's JPEG 2000, JPEG-LS, lossless JPEG and JPEG Extended pixel data decoded by imagecodecs,
which lets other threads run meanwhile, and decodes what pydicom's own plugins may lack.

pydicom's JPEG 2000 plugins (pylibjpeg-openjpeg, Pillow) hold the GIL while they decode, about
0.5 s for a 5-Mpixel radiograph, so a batch job's reader threads decode one such file at a time
however many cores the machine has. imagecodecs' codecs release the GIL. JPEG-LS and JPEG
Lossless (process 14, the usual lossless syntax of PACS exports) need pylibjpeg-libjpeg or
python-gdcm in pydicom, which many installs lack where imagecodecs decodes them; so does a
12-bit JPEG Extended frame (Pillow, often pydicom's only JPEG plugin, refuses 12 bits), which
imagecodecs' jpeg8 (libjpeg-turbo 3) decodes: there this plugin comes last, after pydicom's own
(pylibjpeg-libjpeg's 12-bit values differ from libjpeg-turbo's by up to 2 levels in 0.2-8% of the
pixels, and a file they read keeps its values). This module is a
pydicom decoding plugin for these transfer syntaxes, used where imagecodecs (the ``dicom-codecs``
extra) has the codec, and otherwise absent: pydicom's own plugins decode then.

The reader holds a lock while pydicom works (:class:`~xvertfast.io.errors.WarningsNamingTheFile`:
Python's warning state is process-wide), so :func:`decoded_ahead` decodes a file's frame before
that, and the plugin hands pydicom the result. A frame imagecodecs refuses (JPEG 2000 components
of mixed precision or sign) the reader gives to pydicom's own plugins.

A frame pydicom's Pillow plugin decodes (JPEG Baseline) is opened on the reader's thread without
Pillow's own size limit (:class:`_PillowWithinMaxPixels`): max_pixels is the one limit, as for PNG.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

from xvertfast.io.decode_common import imagecodecs_decoder, imagecodecs_wanted, importable, opened_within_max_pixels

__all__ = ["PLUGIN", "available_for", "cut_short", "decoded_ahead", "is_available", "missing_decoders",
           "pixel_array"]

#: The plugin's name in pydicom's decoders.
PLUGIN = "xvertfast-imagecodecs"

# pydicom's plugin interface: the transfer syntaxes this decodes, each by imagecodecs' codec of that name
_CODECS = {
    "1.2.840.10008.1.2.4.90": "jpeg2k",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "jpeg2k",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "jpeg2k",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202": "jpeg2k",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203": "jpeg2k",  # HTJ2K
    "1.2.840.10008.1.2.4.80": "jpegls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "jpegls",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.57": "ljpeg",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70": "ljpeg",  # JPEG Lossless, Process 14, Selection Value 1
    "1.2.840.10008.1.2.4.51": "jpeg8",  # JPEG Extended (12-bit): grey frames, 12-bit colour (_COLOUR_ONLY_DEEPER)
}
#: codecs this plugin takes colour frames of only where deeper than 8 bits (grey ones at any depth;
#: only grey ones are decoded ahead): an 8-bit colour JPEG Extended frame goes to pydicom's plugins
#: (Pillow decodes it, and leaves YCbCr as the photometric says), as before
_COLOUR_ONLY_DEEPER = ("jpeg8",)
#: the colour space of a 12-bit colour JPEG Extended frame's components, by its photometric:
#: libjpeg turns YCbCr to RGB itself (pydicom's conversion takes 8-bit YCbCr, its chroma offset
#: 128, and reads 12-bit YCbCr as other colours); other photometrics are refused
_JPEG_COLOUR_SPACES = {"YBR_FULL": "YCBCR", "YBR_FULL_422": "YCBCR", "RGB": "RGB"}
#: codecs this plugin decodes with only where pydicom's own plugins refuse the frame
_LAST_RESORT = ("jpeg8",)
#: codecs of the syntaxes whose frames are refused without their end-of-image marker near the end
#: (:func:`cut_short`): a decoder fills one cut short with grey or garbage and says nothing
_EOI_CHECKED = ("ljpeg", "jpeg8", "jpegls")
_SYNTAXES = tuple(_CODECS)
DECODER_DEPENDENCIES = {uid: ("imagecodecs>=2024.1.1",) for uid in _SYNTAXES}

_registered: frozenset[str] | None = None  # the transfer syntaxes registered for, once known
_register_lock = threading.Lock()
_wrapped_pillow = False  # (_within_max_pixels has run: pydicom's Pillow plugin holds its Image, or has none)
_ahead = threading.local()  # this thread's frame decoded before pydicom asked: (source bytes, array or refusal)


def _decoder(syntax):
    """imagecodecs' decode function for this transfer syntax, or None where imagecodecs, or the
    codec in its build, is missing."""
    codec = _CODECS.get(syntax)
    return None if codec is None else imagecodecs_decoder(codec)


def is_available(uid: str) -> bool:
    """pydicom's question to a plugin: can it decode this transfer syntax here."""
    return _decoder(uid) is not None


def available_for(syntax) -> bool:
    """Whether this plugin is registered with pydicom (on first use) and decodes ``syntax``."""
    global _registered
    if syntax not in _CODECS:
        return False
    with _register_lock:  # pydicom's add_plugin is not thread-safe
        if _registered is None:
            _registered = _register()
    return syntax in _registered


def _register() -> frozenset[str]:
    try:
        from pydicom.pixels import get_decoder
    except ImportError:  # pydicom < 3: its own plugins decode
        return frozenset()
    registered = frozenset(uid for uid in _SYNTAXES if _decoder(uid) is not None)  # (imagecodecs' build has the codec)
    for uid in registered:
        decoder = get_decoder(uid)
        if PLUGIN not in decoder.available_plugins:
            decoder.add_plugin(PLUGIN, (__name__, "_decode_frame"))
    return registered


#: pydicom's names for its plugins' requirements -> the module each installs (where not the same)
_MODULES = {"pylibjpeg-libjpeg": "libjpeg", "pylibjpeg-openjpeg": "openjpeg", "pylibjpeg-rle": "rle",
            "pyjpegls": "jpeg_ls"}
#: ... and -> what pip calls them (where not the same)
_PIP_NAMES = {"gdcm": "python-gdcm"}


def missing_decoders(syntax) -> list[str]:
    """What to install here for this transfer syntax, any one entry of which decodes it: for each
    of pydicom's plugins that is unavailable, the packages it needs that are missing (pydicom's own
    list; the whole requirement where all seem there), and imagecodecs where this plugin takes it."""
    wanted = []
    try:
        from pydicom.pixels import get_decoder

        said = get_decoder(syntax).missing_dependencies  # 'gdcm - requires gdcm>=3.0.10', '... requires a, b and c'
    except Exception:  # an unknown syntax, or pydicom < 3
        said = []
    for line in said:
        requires = line.partition(" - requires ")[2].replace(" and ", ", ").split(", ")
        names = [r.partition(">=")[0].strip() for r in requires if r.strip()]
        missing = [_PIP_NAMES.get(n, n) for n in names if not importable(_MODULES.get(n, n))]
        entry = " with ".join(missing) or " and ".join(r.strip() for r in requires)
        if entry and entry not in wanted:
            wanted.append(entry)
    codec = _CODECS.get(syntax)
    if codec is not None and _decoder(syntax) is None:
        wanted.append(imagecodecs_wanted(codec))
    return wanted


@contextlib.contextmanager
def decoded_ahead(ds, syntax, source: bytes | None, sized: bool = False) -> Iterator[None]:
    """Decodes ``source``, the single frame of ``ds`` (as the reader took it out of the pixel data
    once; None where none could be), now, where this plugin would decode it, and keeps it for the
    plugin until the block ends. Anything wrong (a multi-frame or corrupt file) is left for
    pydicom's decoding in the block to report. The reader has refused a codestream that declares
    another size than Rows x Columns (on which max_pixels was checked) before this. A frame the
    plugin refuses within the block, not decoded ahead, is kept so too: it is not decoded again.
    ``sized``: the codestream declares Rows x Columns, so pydicom's Pillow plugin opens it on this
    thread within the block without Pillow's own limit (:class:`_PillowWithinMaxPixels`)."""
    if sized:
        _within_max_pixels()
    frame = None
    codec = _CODECS.get(syntax)
    if source is not None and available_for(syntax) and (codec not in _COLOUR_ONLY_DEEPER or _one_sample(ds)) and \
            (codec not in _LAST_RESORT or not _pydicom_decodes(ds, syntax)):  # fmt: skip
        try:
            frame = (source, _decode(syntax, source))
        except Exception as exc:  # kept for the plugin to raise
            frame = (source, _bare(exc))
    _ahead.frame, _ahead.within, _ahead.sized = frame, True, sized
    try:
        yield
    finally:
        _ahead.frame, _ahead.within, _ahead.sized = None, False, False


class _PillowWithinMaxPixels:
    """PIL.Image as pydicom's Pillow plugin (JPEG Baseline and 8-bit Extended frames, JPEG 2000
    where neither imagecodecs nor pylibjpeg-openjpeg is there) sees it, put there once: the same
    module to every thread, but on a reader's thread within :func:`decoded_ahead` for a frame whose
    codestream declares Rows x Columns, its Image.open opens the frame without Pillow's
    decompression-bomb check, as read_pillow opens a PNG or JPEG: max_pixels, checked on Rows x
    Columns, is the one limit (above 89 Mpx Pillow warned, above 179 Mpx it refused the frame,
    said as "truncated or corrupt?", however high max_pixels). Pillow's limit is a global, so it is
    not lifted: another thread's Image.open keeps it, as pydicom's plugin elsewhere does."""

    def __init__(self, image):
        self._image = image

    def __getattr__(self, name: str):
        return getattr(self._image, name)

    def open(self, fp, mode="r", formats=None):
        if getattr(_ahead, "sized", False) and formats:
            opened = opened_within_max_pixels(fp, tuple(formats))
            if opened is not None:
                return opened
        return self._image.open(fp, mode, formats)


def _within_max_pixels() -> None:
    """Puts :class:`_PillowWithinMaxPixels` in pydicom's Pillow plugin, once; where that plugin has
    no Image (another pydicom), nothing: Pillow's limit holds there as before. After the first call
    it returns at once (a flag, checked again under the lock): every sized DICOM read calls it."""
    global _wrapped_pillow
    if _wrapped_pillow:
        return
    with _register_lock:
        if _wrapped_pillow:
            return
        try:
            from pydicom.pixels.decoders import pillow as plugin
        except ImportError:
            plugin = None
        image = getattr(plugin, "Image", None)
        if image is not None and not isinstance(image, _PillowWithinMaxPixels):
            plugin.Image = _PillowWithinMaxPixels(image)
        _wrapped_pillow = True


def _one_sample(ds) -> bool:
    """Whether the frame is grey (one sample per pixel); a value that is no number is not, and
    left for the reader to name."""
    try:
        return int(ds.get("SamplesPerPixel") or 1) == 1
    except (TypeError, ValueError):
        return False


def _pydicom_decodes(ds, syntax) -> bool:
    """Whether one of pydicom's own plugins would take this frame of a _LAST_RESORT syntax, so
    that decoding it ahead is wasted: any but Pillow, which refuses a JPEG Extended frame of other
    than 8 bits."""
    from pydicom.pixels import get_decoder

    theirs = set(get_decoder(syntax).available_plugins) - {PLUGIN}
    return bool(theirs - {"pillow"}) or ("pillow" in theirs and ds.get("BitsStored") == 8)


def pixel_array(ds, syntax):
    """``ds.pixel_array``, decoded by this plugin where it is available for ``syntax``; a frame
    it refuses (components of mixed precision or sign, 8-bit colour JPEG Extended) by pydicom's own
    plugins, in pydicom's order, as without it; one it finds cut short is refused as such. A
    _LAST_RESORT syntax goes to pydicom's plugins first (this one, added last, where they refuse),
    and to this one alone where what they decoded does not fit (Pillow's 8 bits of an 8-bit JPEG
    Extended frame under BitsAllocated 16: 'could not broadcast')."""
    if not available_for(syntax):
        return ds.pixel_array
    last = _CODECS[syntax] in _LAST_RESORT
    ds.pixel_array_options(decoding_plugin="" if last else PLUGIN)
    _ahead.cut = None
    try:
        return ds.pixel_array
    except Exception:
        cut, _ahead.cut = _ahead.cut, None  # (raised, it holds this call's frames: not kept on the thread)
        if cut is not None:  # (a damaged frame: another plugin's words would hide why, Pillow's 'does not support')
            if last:  # (pydicom's message holds theirs too)
                raise cut from None
            raise
        ds.pixel_array_options(decoding_plugin=PLUGIN if last else "")
        return ds.pixel_array


class CutFrame(ValueError):
    """A JPEG frame without its end-of-image marker: damaged, not a frame for another plugin."""


#: how many of a lossless JPEG, JPEG Extended or JPEG-LS frame's last bytes, after any 0x00/0xFF
#: padding, are searched for its end-of-image marker
EOI_SEARCH = 16


def cut_short(syntax, source: bytes) -> str | None:
    """Why a lossless JPEG, JPEG Extended or JPEG-LS frame ``source`` is taken for one cut short:
    no end-of-image marker at its end, after any 0x00/0xFF padding; None where it has one, or is of
    another syntax. imagecodecs' ljpeg and jpeg8, and pylibjpeg-libjpeg (JPEG-LS too), decode such
    a frame to its full size, what the cut left out garbage or grey, and say nothing (JPEG 2000
    decoders refuse one). The padding, of any length, is a writer's (0x00 to an even length, fill
    bytes 0xFF, a last fragment of padding alone): the last 16 bytes refused a valid frame padded
    past 14. FF D9 cannot occur inside the coded data (an FF there is followed by 00, or in JPEG-LS
    by a byte below 0x80), so stripping 0x00 and 0xFF from the end passes no cut frame."""
    codec = _CODECS.get(syntax)
    if codec not in _EOI_CHECKED or b"\xff\xd9" in source.rstrip(b"\x00\xff")[-EOI_SEARCH:]:
        return None
    kind = {"ljpeg": "lossless JPEG", "jpegls": "JPEG-LS"}.get(codec, "JPEG")
    return f"its {kind} codestream does not end with an end-of-image marker (FF D9): cut short or damaged"


def _decode(syntax, source: bytes, colour_space: str | None = None) -> np.ndarray:
    """imagecodecs' decoding of the frame ``source``; one :func:`cut_short` is refused (the reader
    refuses it before any plugin: this one is pydicom's for any caller in the process).
    ``colour_space``: a colour JPEG's components' (:data:`_JPEG_COLOUR_SPACES`), decoded to RGB."""
    why = cut_short(syntax, source)
    if why is not None:
        raise CutFrame(why)
    if colour_space is not None:
        return _decoder(syntax)(source, colorspace=colour_space, outcolorspace="RGB")
    return _decoder(syntax)(source)


def _bare(exc: Exception) -> Exception:
    """A copy of a refusal to keep for the rest of a read, without the traceback a raised one
    holds: this module's frames in it keep the frame's bytes and pydicom's runner alive as long.
    Made without its ``__init__`` (copy.copy ran it again on the args: a class building its message
    there gave "error error 5", and any side effect ran twice; imagecodecs' errors take (function,
    code), not their args): its args, attributes and notes, no cause or context. The refusals met
    here (imagecodecs' errors, NotImplementedError, CutFrame) keep nothing else: no slots, no
    OSError's file names."""
    cls = type(exc)
    try:
        kept = cls.__new__(cls, *exc.args)
        kept.args = exc.args
        kept.__dict__.update(vars(exc))  # (its attributes and notes)
        if str(kept) == str(exc):
            return kept
    except Exception:  # (a class whose __new__ wants other arguments)
        pass
    # the last resort, where no copy reads as it does (an OSError's filename, a UnicodeDecodeError's
    # fields): the refusal itself, its traceback dropped now; raised again, it gains one, held until
    # the read ends
    return exc.with_traceback(None)


def _decode_frame(src: bytes, runner) -> bytes:
    """pydicom's call: the decoded frame ``src`` as bytes, its options set as pydicom's pylibjpeg
    plugins set them (openjpeg and the same container for the precision; JPEG-LS and lossless
    JPEG values unsigned, which pydicom corrects for a signed image)."""
    colour_space, photometric = None, str(runner.photometric_interpretation)
    if _CODECS.get(str(runner.transfer_syntax)) in _COLOUR_ONLY_DEEPER and runner.samples_per_pixel != 1:
        if runner.bits_stored <= 8:
            raise NotImplementedError("an 8-bit colour JPEG Extended frame is left to pydicom's own plugins")
        colour_space = _JPEG_COLOUR_SPACES.get(photometric) if runner.samples_per_pixel == 3 else None
        if colour_space is None:
            raise NotImplementedError(f"imagecodecs' plugin does not support a {runner.bits_stored}-bit colour JPEG "
                                      f"Extended frame of {runner.samples_per_pixel} samples, {photometric} (only 3, "
                                      f"{', '.join(_JPEG_COLOUR_SPACES)})")  # fmt: skip
    ahead = getattr(_ahead, "frame", None)
    try:
        if ahead is not None and len(ahead[0]) == len(src) and ahead[0] == src:
            array = ahead[1]
            if isinstance(array, Exception):  # refused ahead: not decoded twice (the reader then asks pydicom's plugins)
                raise _bare(array)  # (the kept one stays bare)
        else:
            try:
                array = _decode(runner.transfer_syntax, src, colour_space)
            except Exception as exc:
                # a frame not decoded ahead (a colour JPEG Extended one): its refusal kept for the rest of the
                # read, as one ahead is, so that pixel_array's second ask (this plugin alone, after pydicom's
                # plugins all refused, this one among them) does not decode it again
                if getattr(_ahead, "within", False):
                    _ahead.frame = (src, _bare(exc))
                raise
    except CutFrame as exc:
        _ahead.cut = _bare(exc)
        raise
    if photometric in ("YBR_ICT", "YBR_RCT") or colour_space is not None:  # the decoder has undone the colour transform
        runner.set_option("photometric_interpretation", "RGB")
    runner.set_option("bits_allocated", 8 * array.dtype.itemsize)  # imagecodecs' container for the precision
    if array.ndim == 3:  # samples interleaved; planes first, should a decoder give them so (the shape says)
        planes = array.shape[0] == runner.samples_per_pixel != array.shape[-1]
        runner.set_option("planar_configuration", int(planes))
    return np.ascontiguousarray(array).tobytes()
