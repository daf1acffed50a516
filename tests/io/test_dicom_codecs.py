"""The imagecodecs plugin for DICOM's JPEG 2000, JPEG-LS, lossless JPEG and JPEG Extended pixel
data: the same values as pydicom's own plugins (or as stored, where pydicom has none here), decoded
outside the warnings lock so that reader threads decode at once; and what a missing decoder's error names."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from xvertfast.io import ImageReadError, dicom_codecs, read_image
from xvertfast.io.decode_common import jpeg2000_siz
from xvertfast.io.errors import WarningsNamingTheFile
from xvertfast.io.read import full_range

from tests.io.test_read import _corrupt_jpeg2000_dicom, _luma, make_dicom, make_imagecodecs_fail_to_import

J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"

pytest.importorskip("imagecodecs", reason="the plugin needs imagecodecs (the dicom-codecs and test extras)")
pytest.importorskip("openjpeg", reason="encoding JPEG 2000 and pydicom's own plugin need pylibjpeg-openjpeg")


def jpeg2000_dicom(path, values, *, bits, signed=False, lossy=False, photometric="MONOCHROME2"):
    """A single-frame JPEG 2000 DICOM of ``values`` (lossless, or lossy at 10:1)."""
    import pydicom
    from pydicom.uid import JPEG2000, JPEG2000Lossless

    make_dicom(path, values, photometric=photometric, bits=bits, signed=signed)
    ds = pydicom.dcmread(path)
    if bits <= 8:
        ds.BitsAllocated, ds.PixelData = 8, values.astype(np.int8 if signed else np.uint8).tobytes()
    if lossy:
        ds.compress(JPEG2000, j2k_cr=[10])
    else:
        ds.compress(JPEG2000Lossless)
    ds.save_as(path)


def with_pydicoms_plugin(path):
    """read_image of ``path`` with the plugin left out (pydicom's pylibjpeg-openjpeg decodes)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dicom_codecs, "available_for", lambda syntax: False)
        return read_image(path)


def with_the_test_extras_plugins(monkeypatch, syntax):
    """pydicom's decoder of a JPEG or JPEG-LS ``syntax`` with the plugins of the test extra alone
    (Pillow, this one), whatever else is installed here: pylibjpeg-libjpeg or python-gdcm (the
    dicom-codecs extra) come before this plugin, or after it where it refuses a frame, and decode
    what it refuses (a cut frame: pylibjpeg-libjpeg reads one without a word) or its values differ."""
    from pydicom.pixels import get_decoder

    dicom_codecs.available_for(syntax)  # (this plugin registered, as a first read does)
    decoder = get_decoder(syntax)
    kept = {name: plugin for name, plugin in decoder._available.items() if name in ("pillow", dicom_codecs.PLUGIN)}
    monkeypatch.setattr(decoder, "_available", kept)


@pytest.mark.parametrize("bits, signed", [(8, False), (12, False), (16, False), (12, True), (16, True)])
def test_same_values_as_pydicoms_plugin(tmp_path, seed, bits, signed):
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    values = rng.integers(lo, hi, size=(37, 53))
    values[0, :2] = lo, hi - 1
    jpeg2000_dicom(tmp_path / "j.dcm", values, bits=bits, signed=signed)
    ours = read_image(tmp_path / "j.dcm")
    theirs = with_pydicoms_plugin(tmp_path / "j.dcm")
    np.testing.assert_array_equal(ours.values, theirs.values)
    np.testing.assert_array_equal(ours.values, values)  # lossless
    assert ours.bits_stored == theirs.bits_stored == bits


def test_lossy_and_monochrome1_as_pydicoms_plugin(tmp_path, seed):
    x = np.linspace(0, 1, 64)
    values = (np.outer(x, x) * 4000 + np.random.default_rng(seed).integers(0, 60, (64, 64))).astype(np.uint16)
    jpeg2000_dicom(tmp_path / "j.dcm", values, bits=12, lossy=True, photometric="MONOCHROME1")
    ours, theirs = read_image(tmp_path / "j.dcm"), with_pydicoms_plugin(tmp_path / "j.dcm")
    assert ours.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(ours.pixels, theirs.pixels)  # one openjpeg, one float wavelet


def test_reader_threads_decode_at_once(tmp_path, seed, monkeypatch):
    # each decode waits until the other thread is decoding too: had one of them waited for a
    # lock the other holds (pydicom's plugins hold the GIL; the warnings lock), the barrier breaks
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(2):
        jpeg2000_dicom(tmp_path / f"{k}.dcm", rng.integers(0, 4096, size=(64, 70)), bits=12)
        paths.append(tmp_path / f"{k}.dcm")
    decode, both = dicom_codecs._decoder(J2K_LOSSLESS), threading.Barrier(2, timeout=20)

    def meeting(source):
        both.wait()
        return decode(source)

    monkeypatch.setattr(dicom_codecs, "_decoder", lambda syntax: meeting)
    results, errors = {}, []

    def read(path):
        try:
            results[path] = read_image(path)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 2


def test_a_corrupt_codestream_is_reported_by_pydicoms_decoding(tmp_path):
    _corrupt_jpeg2000_dicom(tmp_path / "j.dcm")
    with pytest.raises(ImageReadError, match=r"j\.dcm: cannot decode DICOM pixel data \(JPEG 2000.*corrupt"):
        read_image(tmp_path / "j.dcm")


def test_other_syntaxes_are_not_the_plugins():
    assert dicom_codecs.available_for("1.2.840.10008.1.2.4.90")  # JPEG 2000 Lossless
    assert not dicom_codecs.available_for("1.2.840.10008.1.2.1")  # Explicit VR Little Endian
    assert not dicom_codecs.available_for("1.2.840.10008.1.2.4.50")  # JPEG Baseline: Pillow's


def _rgb_jpeg2000_dicom(path, rgb, codestream):
    """A single-frame RGB JPEG 2000 Lossless DICOM of ``rgb`` (8-bit) holding ``codestream``."""
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    make_dicom(path, rgb[..., 0], bits=8, syntax=JPEG2000Lossless, pixel_data=False)
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path)


def test_what_imagecodecs_refuses_is_decoded_by_pydicoms_plugins(tmp_path, seed):
    # imagecodecs wants every component of one precision and signedness; openjpeg itself, and
    # pylibjpeg-openjpeg, decode a codestream whose components differ (here the green one is
    # declared 9-bit): the file read before the plugin and must still read
    import openjpeg

    rgb = np.random.default_rng(seed).integers(0, 256, size=(64, 72, 3)).astype(np.uint8)
    codestream = bytearray(openjpeg.encode(rgb, bits_stored=8, photometric_interpretation=1, use_mct=False))
    siz = codestream.find(b"\xff\x51")
    codestream[siz + 40 + 3] = 8  # component 1's Ssiz: unsigned, 9 bits
    _rgb_jpeg2000_dicom(tmp_path / "j.dcm", rgb, bytes(codestream))
    try:
        dicom_codecs._decoder(J2K_LOSSLESS)(bytes(codestream))
    except Exception as exc:  # imagecodecs refuses it: the fallback below is what runs
        assert "components" in str(exc)
    else:
        pytest.skip("this imagecodecs decodes mixed-precision components: the fallback is not reached")
    with pytest.warns(UserWarning, match="luminance"):
        theirs = with_pydicoms_plugin(tmp_path / "j.dcm")
    ours = read_image(tmp_path / "j.dcm", warn=False)
    np.testing.assert_array_equal(ours.values, theirs.values)
    assert ours.bits_stored == theirs.bits_stored


def test_a_codestream_larger_than_its_header_is_not_decoded_ahead(tmp_path, seed, monkeypatch):
    # max_pixels was checked on Rows x Columns: a codestream declaring more is decoded, if at
    # all, one file at a time inside pydicom's block, as without this plugin
    import pydicom
    from pydicom.encaps import generate_frames

    values = np.random.default_rng(seed).integers(0, 4096, size=(128, 96))
    jpeg2000_dicom(tmp_path / "j.dcm", values, bits=12)
    ds = pydicom.dcmread(tmp_path / "j.dcm")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    assert jpeg2000_siz(frame) == (12, 128, 96, False)
    ds.Rows, ds.Columns = 64, 48
    ds.save_as(tmp_path / "j.dcm")
    decode, locked = dicom_codecs._decoder(J2K_LOSSLESS), []

    def spy(source):
        locked.append(WarningsNamingTheFile._lock.locked())
        return decode(source)

    monkeypatch.setattr(dicom_codecs, "_decoder", lambda syntax: spy)
    with pytest.raises(ImageReadError, match=r"j\.dcm"):
        read_image(tmp_path / "j.dcm")
    assert False not in locked


def test_colour_jpeg2000_saying_planar_configuration_1_keeps_its_colours_by_either_plugin(tmp_path):
    # a JPEG 2000 codestream orders its components itself (PS3.5 8.2.4); pydicom's plugins took
    # a file saying PlanarConfiguration 1 for planes (where imagecodecs refuses a frame, or is absent)
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    import imagecodecs

    rows, cols = np.mgrid[0:24, 0:30]
    rgb = np.stack([cols * 8, rows * 10, 255 - cols * 8], axis=-1).astype(np.uint8)
    make_dicom(tmp_path / "c.dcm", rgb[..., 0], syntax=JPEG2000Lossless, pixel_data=False, slope=None)
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([imagecodecs.jpeg2k_encode(rgb, level=0, codecformat="J2K", mct=False)])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "c.dcm")
    want = _luma(rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "c.dcm", warn=False).values, want)
    with pytest.warns(UserWarning, match="RGB image converted to luminance"):
        np.testing.assert_array_equal(with_pydicoms_plugin(tmp_path / "c.dcm").values, want)


# JPEG-LS and lossless JPEG (process 14): pydicom decodes them only with pylibjpeg-libjpeg,
# python-gdcm or pyjpegls, which the test extra leaves out; imagecodecs decodes them here

JPEG_LS_LOSSLESS, JPEG_LS_NEAR = "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"
JPEG_LOSSLESS, JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"


def lossless_jpeg(values, bits, predictor):
    """A one-component lossless JPEG (ITU-T T.81 H, process 14) of unsigned ``values``, written
    here: imagecodecs' encoder always predicts with selection value 6, and SV1 (the syntax PACS
    export most) requires 1. One Huffman table: 5-bit codes for the difference categories 0..16."""
    values = np.asarray(values, np.int64)
    rows, cols = values.shape
    padded = np.zeros((rows + 1, cols + 1), np.int64)
    padded[1:, 1:] = values
    a, b, c = padded[1:, :-1], padded[:-1, 1:], padded[:-1, :-1]  # left, above, above-left
    guesses = {1: a, 2: b, 3: c, 4: a + b - c, 5: a + ((b - c) >> 1), 6: b + ((a - c) >> 1), 7: (a + b) >> 1}
    guess = guesses[predictor].copy()
    guess[0, :], guess[:, 0] = a[0, :], b[:, 0]  # the first row from the left, the first column from above
    guess[0, 0] = 1 << (bits - 1)
    diff = (values - guess) & 0xFFFF
    diff = np.where(diff >= 0x8000, diff - 0x10000, diff)  # modulo 2^16; -32768 is category 16
    out, pending, count = bytearray(), 0, 0

    def put(code, length):
        nonlocal pending, count
        pending, count = (pending << length) | code, count + length
        while count >= 8:
            count -= 8
            out.append((pending >> count) & 0xFF)
            if out[-1] == 0xFF:
                out.append(0)  # byte stuffing
        pending &= (1 << count) - 1

    for d in diff.ravel().tolist():
        size = 16 if d == -32768 else abs(d).bit_length()
        put(size, 5)
        if 0 < size < 16:
            put(d if d > 0 else d - 1 + (1 << size), size)
    if count:
        put((1 << (8 - count)) - 1, 8 - count)  # padded with 1 bits

    def segment(marker, body):
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    frame = segment(0xC3, bytes([bits]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([1, 1, 0x11, 0]))
    table = segment(0xC4, bytes([0, 0, 0, 0, 0, 17]) + bytes(11) + bytes(range(17)))
    scan = segment(0xDA, bytes([1, 1, 0, predictor, 0, 0]))
    return b"\xff\xd8" + frame + table + scan + bytes(out) + b"\xff\xd9"


def encapsulated_dicom(path, values, syntax, codestreams, *, bits, signed=False):
    """A DICOM of ``values``' header (one frame per codestream) whose pixel data are ``codestreams``."""
    import pydicom
    from pydicom.encaps import encapsulate

    make_dicom(path, values, bits=bits, signed=signed, syntax=syntax, pixel_data=False, frames=len(codestreams))
    ds = pydicom.dcmread(path)
    if bits <= 8:
        ds.BitsAllocated = 8
    ds.PixelData = encapsulate(codestreams)
    ds["PixelData"].VR = "OB"
    ds.save_as(path)


def random_values(seed, bits, signed, shape=(37, 53)):
    """Random stored values of ``bits``, both ends included."""
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    values = np.random.default_rng(seed).integers(lo, hi, size=shape)
    values[0, :2] = lo, hi - 1
    return values


def jpeg_ls(values, bits, near=0):
    """imagecodecs' JPEG-LS of ``values``' bit patterns (DICOM's JPEG-LS of signed values: PS3.5 A.4.3)."""
    import imagecodecs

    return imagecodecs.jpegls_encode((values & ((1 << bits) - 1)).astype(np.uint8 if bits <= 8 else np.uint16),
                                     level=near)  # fmt: skip


@pytest.mark.parametrize("syntax, predictor", [(JPEG_LOSSLESS_SV1, 1)] + [(JPEG_LOSSLESS, p) for p in range(1, 8)])
@pytest.mark.parametrize("bits, signed", [(8, False), (12, False), (16, False), (12, True), (16, True)])
def test_lossless_jpeg_is_decoded_exactly(tmp_path, seed, syntax, predictor, bits, signed):
    values = random_values(seed, bits, signed)
    codestream = lossless_jpeg(values & ((1 << bits) - 1), bits, predictor)  # signed: its two's complement bits
    encapsulated_dicom(tmp_path / "l.dcm", values, syntax, [codestream], bits=bits, signed=signed)
    rad = read_image(tmp_path / "l.dcm")
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == bits


@pytest.mark.parametrize("bits, signed", [(8, False), (12, False), (16, False), (12, True), (16, True)])
def test_jpeg_ls_is_decoded_exactly(tmp_path, seed, bits, signed):
    # imagecodecs writes a 12-bit image at a precision of 16: pydicom corrects a signed frame's
    # sign at the codestream's precision, and its negative values read as 2048..4095 (any plugin);
    # their sign is BitsStored's top bit
    values = random_values(seed, bits, signed)
    encapsulated_dicom(tmp_path / "l.dcm", values, JPEG_LS_LOSSLESS, [jpeg_ls(values, bits)], bits=bits, signed=signed)
    rad = read_image(tmp_path / "l.dcm")
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == bits


def test_near_lossless_jpeg_ls_is_within_its_bound(tmp_path, seed):
    values = random_values(seed, 12, False)
    encapsulated_dicom(tmp_path / "l.dcm", values, JPEG_LS_NEAR, [jpeg_ls(values, 12, near=3)], bits=12)
    error = np.abs(read_image(tmp_path / "l.dcm").values - values)
    assert error.max() <= 3 and error.any()


def test_pydicoms_jpeg_ls_sample_reads_as_its_uncompressed_original():
    # a file another encoder wrote (a 16-bit MR, signed though its values are positive)
    pydicom = pytest.importorskip("pydicom")
    compressed = pydicom.data.get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    original = pydicom.data.get_testdata_file("MR_small.dcm")
    assert pydicom.dcmread(compressed).PixelRepresentation == 1
    np.testing.assert_array_equal(read_image(compressed).values, read_image(original).values)


@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1])
def test_the_plugin_decodes_each_file_once_outside_the_warnings_lock(tmp_path, seed, monkeypatch, syntax):
    values = random_values(seed, 12, False)
    if syntax == J2K_LOSSLESS:
        jpeg2000_dicom(tmp_path / "l.dcm", values, bits=12)
    else:
        codestream = jpeg_ls(values, 12) if syntax == JPEG_LS_LOSSLESS else lossless_jpeg(values, 12, 1)
        encapsulated_dicom(tmp_path / "l.dcm", values, syntax, [codestream], bits=12)
    decode, locked = dicom_codecs._decoder(syntax), []

    def spy(source):
        locked.append(WarningsNamingTheFile._lock.locked())
        return decode(source)

    monkeypatch.setattr(dicom_codecs, "_decoder", lambda syntax: spy)
    np.testing.assert_array_equal(read_image(tmp_path / "l.dcm").values, values)
    assert locked == [False]


def test_a_corrupt_jpeg_ls_is_called_corrupt_not_missing_a_decoder(tmp_path, seed, monkeypatch):
    with_the_test_extras_plugins(monkeypatch, JPEG_LS_LOSSLESS)
    values = random_values(seed, 12, False)
    codestream = jpeg_ls(values, 12)
    codestream = codestream[: len(codestream) // 2] + b"\xff\xd9"  # its scan cut, its end marker there: damaged
    encapsulated_dicom(tmp_path / "l.dcm", values, JPEG_LS_LOSSLESS, [codestream], bits=12)
    with pytest.raises(ImageReadError, match=r"l\.dcm: cannot decode DICOM pixel data \(JPEG-LS.*corrupt"):
        read_image(tmp_path / "l.dcm")


@pytest.mark.parametrize("kept", [0.9, 0.5, 0.1])
def test_a_cut_lossless_jpeg_is_called_corrupt_not_decoded_with_garbage(tmp_path, seed, kept):
    # imagecodecs' ljpeg decoder gives the full shape of a cut codestream, garbage after the cut
    values = random_values(seed, 12, False)
    codestream = lossless_jpeg(values, 12, 1)
    cut = codestream[: int(len(codestream) * kept)]
    encapsulated_dicom(tmp_path / "l.dcm", values, JPEG_LOSSLESS_SV1, [cut], bits=12)
    with pytest.raises(ImageReadError, match=r"(?s)l\.dcm: cannot decode DICOM pixel data \(JPEG Lossless.*"
                       r"truncated or corrupt.*end-of-image marker"):  # fmt: skip
        read_image(tmp_path / "l.dcm")


@pytest.mark.parametrize("syntax", [JPEG_LOSSLESS_SV1, "1.2.840.10008.1.2.4.51"])
def test_a_cut_frame_s_refusal_keeps_no_frame_on_the_reader_s_thread(tmp_path, seed, syntax, monkeypatch):
    """The refusal of a frame cut short was kept on the thread with its traceback, whose frames hold
    the frame's bytes (and the dataset), until the thread read another DICOM: a reader thread of a
    batch job held them. Kept no more: a copy without a traceback, dropped once raised. (The reader
    refuses such a frame before any plugin: the plugin's refusal is pydicom's for other callers.)"""
    import pydicom

    with_the_test_extras_plugins(monkeypatch, syntax)
    values = random_values(seed, 12, False)
    codestream = lossless_jpeg(values, 12, 1) if syntax == JPEG_LOSSLESS_SV1 else jpeg_12_bit(values)
    encapsulated_dicom(tmp_path / "c.dcm", values, syntax, [codestream[: len(codestream) // 2]], bits=12)
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    with pytest.raises(Exception, match="end-of-image marker"):
        dicom_codecs.pixel_array(ds, ds.file_meta.TransferSyntaxUID)
    kept = getattr(dicom_codecs._ahead, "cut", None)
    assert kept is None or kept.__traceback__ is None, kept


@pytest.mark.parametrize("fill", [b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\x00"])
def test_a_lossless_jpeg_with_fill_bytes_after_its_end_marker_is_read(tmp_path, seed, fill):
    # the end-of-image check looks near the end, not at the last byte: writers pad after FF D9
    values = random_values(seed, 12, False)
    codestream = lossless_jpeg(values, 12, 1) + fill
    encapsulated_dicom(tmp_path / "l.dcm", values, JPEG_LOSSLESS_SV1, [codestream], bits=12)
    np.testing.assert_array_equal(read_image(tmp_path / "l.dcm").values, values)


# JPEG Extended (process 2 and 4) at 12 bits: pydicom's Pillow plugin refuses 12 bits, and the
# file was refused as needing a decoder where imagecodecs' jpeg8 (libjpeg-turbo 3) decodes it

JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"


def jpeg_12_bit(values, level=100):
    """imagecodecs' lossy 12-bit JPEG (SOF1) of ``values``, or a skip where its libjpeg lacks 12 bits."""
    import imagecodecs

    try:
        return imagecodecs.jpeg8_encode(np.asarray(values, np.uint16), level=level, bitspersample=12)
    except Exception as exc:
        pytest.skip(f"imagecodecs here encodes no 12-bit JPEG: {exc}")


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_pydicoms_12_bit_jpeg_extended_samples_read_their_known_values(name):
    # pydicom's own reference values for these files (its pixels_reference, JPGE_16_12_1_0_1F_M2)
    import pydicom.data

    rad = read_image(pydicom.data.get_testdata_file(name), warn=False)
    assert rad.values.shape == (1024, 256) and rad.bits_stored == 12
    assert (rad.values[420, 140], rad.values[230, 120]) == (244, 95)


def test_a_12_bit_jpeg_extended_dicom_reads_its_values_at_12_bits(tmp_path):
    # a smooth ramp over the whole 12-bit range: JPEG at quality 100 keeps it within 1 level here
    # (measured: 1); read at 8 bits, or refused, it could not come near
    values = np.add.outer(np.linspace(0, 3000, 48), np.linspace(0, 1095, 64)).round().astype(np.int64)
    encapsulated_dicom(tmp_path / "e.dcm", values, JPEG_EXTENDED, [jpeg_12_bit(values)], bits=12)
    rad = read_image(tmp_path / "e.dcm", warn=False)
    assert rad.bits_stored == 12 and rad.values.max() > 4000
    assert np.abs(rad.values.astype(np.int64) - values).max() <= 2


@pytest.mark.parametrize("kept", [0.9, 0.5])
def test_a_cut_12_bit_jpeg_is_called_corrupt_not_filled_with_grey(tmp_path, kept):
    # libjpeg-turbo decodes a cut JPEG to its full size, grey after the cut, with a warning alone
    values = np.add.outer(np.arange(40) * 50, np.arange(56) * 30)
    codestream = jpeg_12_bit(values)
    encapsulated_dicom(tmp_path / "e.dcm", values, JPEG_EXTENDED, [codestream[: int(len(codestream) * kept)]],
                       bits=12)  # fmt: skip
    with pytest.raises(ImageReadError, match=r"(?s)e\.dcm: cannot decode DICOM pixel data \(JPEG Extended.*"
                       r"truncated or corrupt.*end-of-image marker"):  # fmt: skip
        read_image(tmp_path / "e.dcm")


@pytest.mark.parametrize("syntax", [JPEG_EXTENDED, JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1])
def test_a_cut_frame_is_refused_whichever_plugin_would_decode_it(tmp_path, seed, monkeypatch, syntax):
    # pylibjpeg-libjpeg (the dicom-codecs extra) decodes a cut frame without a word, garbage after the
    # cut (measured: half of a cut JPEG-LS frame's pixels wrong, no note): it came before this plugin
    # for JPEG Extended, and after its refusal for JPEG-LS. (A stand-in for it decodes anything, as zeros.)
    from pydicom.pixels import get_decoder

    values = random_values(seed, 12, False)
    codestream = {JPEG_EXTENDED: jpeg_12_bit, JPEG_LS_LOSSLESS: lambda v: jpeg_ls(v, 12),
                  JPEG_LOSSLESS_SV1: lambda v: lossless_jpeg(v, 12, 1)}[syntax](values)  # fmt: skip
    encapsulated_dicom(tmp_path / "c.dcm", values, syntax, [codestream[: len(codestream) // 2]], bits=12)

    def silent(src, runner):
        return bytes(2 * runner.rows * runner.columns)

    dicom_codecs.available_for(syntax)  # (this plugin registered, as a first read does)
    decoder = get_decoder(syntax)
    monkeypatch.setattr(decoder, "_available", {"stand-in": silent, **decoder._available})
    with pytest.raises(ImageReadError, match=r"c\.dcm: cannot decode DICOM pixel data \(.*\): truncated or corrupt\? "
                       r"\(its (lossless JPEG|JPEG-LS|JPEG) codestream does not end with an end-of-image marker"):  # fmt: skip
        read_image(tmp_path / "c.dcm")


@pytest.mark.parametrize("padding", ["40 zeros", "20 fill bytes", "a last fragment of zeros"])
@pytest.mark.parametrize("syntax", [JPEG_EXTENDED, JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1])
def test_a_frame_padded_after_its_end_marker_reads_as_the_unpadded_one(tmp_path, seed, syntax, padding):
    # the end marker was looked for in a frame's last 16 bytes: a valid frame padded past 14 bytes
    # after it was refused as cut short (JPEG-LS read before). A cut frame padded so is still refused.
    import pydicom
    from pydicom.encaps import encapsulate

    values = random_values(seed, 12, False)
    codestream = {JPEG_EXTENDED: jpeg_12_bit, JPEG_LS_LOSSLESS: lambda v: jpeg_ls(v, 12),
                  JPEG_LOSSLESS_SV1: lambda v: lossless_jpeg(v, 12, 1)}[syntax](values)  # fmt: skip
    encapsulated_dicom(tmp_path / "u.dcm", values, syntax, [codestream], bits=12)
    pad = {"40 zeros": lambda frame: [frame + bytes(40)], "20 fill bytes": lambda frame: [frame + b"\xff" * 20],
           "a last fragment of zeros": lambda frame: [frame, bytes(20)]}[padding]  # fmt: skip
    for name, frame in (("p.dcm", codestream), ("c.dcm", codestream[: len(codestream) // 2])):
        ds = pydicom.dcmread(tmp_path / "u.dcm")
        ds.PixelData = encapsulate(pad(frame), has_bot=False)  # (fragments of one frame: NumberOfFrames 1)
        ds.save_as(tmp_path / name)
    np.testing.assert_array_equal(read_image(tmp_path / "p.dcm", warn=False).values,
                                  read_image(tmp_path / "u.dcm", warn=False).values)  # fmt: skip
    with pytest.raises(ImageReadError, match=r"c\.dcm: .*codestream does not end with an end-of-image marker"):
        read_image(tmp_path / "c.dcm")


def test_8_bit_jpeg_extended_reads_as_the_same_jpeg_baseline_grey_or_colour(tmp_path, seed):
    # the plugin takes grey JPEG Extended frames; colour ones are Pillow's, as before: the same
    # codestreams under the baseline syntax (Pillow's) read alike
    import imagecodecs
    import pydicom.data

    grey = np.random.default_rng(seed).integers(0, 256, size=(40, 56))
    encapsulated_dicom(tmp_path / "g.dcm", grey, "1.2.840.10008.1.2.4.50",
                       [imagecodecs.jpeg8_encode(grey.astype(np.uint8), level=80)], bits=8)  # fmt: skip
    colour = pydicom.data.get_testdata_file("SC_rgb_dcmtk_+eb+cy+n1.dcm")  # YBR_FULL
    for baseline in (tmp_path / "g.dcm", colour):
        ds = pydicom.dcmread(baseline)
        ds.file_meta.TransferSyntaxUID = JPEG_EXTENDED
        ds.save_as(tmp_path / "extended.dcm")
        np.testing.assert_array_equal(read_image(tmp_path / "extended.dcm", warn=False).values,
                                      read_image(baseline, warn=False).values)  # fmt: skip


def test_a_12_bit_jpeg_without_a_decoder_names_what_to_install(tmp_path):
    # Pillow is there but refuses 12 bits: the file was once called 'truncated or corrupt?'
    import pydicom.data

    run = subprocess.run([sys.executable, "-c", _HIDING, pydicom.data.get_testdata_file("JPGExtended.dcm"),
                          "imagecodecs,libjpeg,gdcm"], capture_output=True, text=True, timeout=120)  # fmt: skip
    error = run.stderr.strip().splitlines()[-1]
    said = re.fullmatch(r".*JPGExtended\.dcm: compressed transfer syntax 'JPEG Extended.*' needs a decoder, one of "
                        r"(.*) \(pip install 'xvertfast\[dicom-codecs\]'\)", error)  # fmt: skip
    assert run.returncode == 1 and said, run.stderr
    assert sorted(said[1].split(", ")) == ["imagecodecs", "pylibjpeg-libjpeg", "python-gdcm"]


def test_a_12_bit_jpeg_extended_frame_is_decoded_by_pydicoms_own_plugin_where_it_has_one(tmp_path, monkeypatch):
    # pylibjpeg-libjpeg's 12-bit values differ from libjpeg-turbo's (imagecodecs) by up to 2
    # levels: where pydicom has a plugin that decodes the frame, its values stay; this plugin
    # comes after it, and decodes nothing ahead. (A stand-in plugin, its values imagecodecs' + 1.)
    import imagecodecs
    from pydicom.pixels import get_decoder

    values = np.add.outer(np.linspace(0, 3000, 48), np.linspace(0, 1000, 64)).round().astype(np.int64)
    encapsulated_dicom(tmp_path / "e.dcm", values, JPEG_EXTENDED, [jpeg_12_bit(values)], bits=12)
    theirs = (imagecodecs.jpeg8_decode(jpeg_12_bit(values)).astype(np.int64) + 1)

    def libjpeg_stand_in(src, runner):
        return (imagecodecs.jpeg8_decode(src).astype(np.uint16) + 1).tobytes()

    dicom_codecs.available_for(JPEG_EXTENDED)  # (this plugin registered, as a first read does)
    decoder = get_decoder(JPEG_EXTENDED)
    monkeypatch.setattr(decoder, "_available", {"stand-in": libjpeg_stand_in, **decoder._available})
    ahead = []
    monkeypatch.setattr(dicom_codecs, "_decode", lambda syntax, source: ahead.append(syntax))
    np.testing.assert_array_equal(read_image(tmp_path / "e.dcm", warn=False).values, theirs)
    assert ahead == []


def _colour_dicom(path, codestream, rgb, photometric, bits):
    """A DICOM of one colour JPEG Extended ``codestream`` of ``rgb``'s size, its photometric ``photometric``."""
    import pydicom
    from pydicom.encaps import encapsulate

    make_dicom(path, rgb[..., 0], bits=bits, syntax=JPEG_EXTENDED, pixel_data=False, slope=None)
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, photometric, 0
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)


@pytest.mark.parametrize("photometric", ["YBR_FULL_422", "YBR_FULL", "RGB"])
def test_a_12_bit_colour_jpeg_extended_frame_reads_its_luminance(tmp_path, seed, photometric, monkeypatch):
    # Pillow refuses 12 bits and this plugin refused colour: the file was called 'truncated or
    # corrupt?'. libjpeg turns its YCbCr to RGB (pydicom's conversion takes 8-bit YCbCr); an RGB
    # codestream (Adobe marker) is decoded as RGB
    import imagecodecs

    with_the_test_extras_plugins(monkeypatch, JPEG_EXTENDED)

    rgb = np.random.default_rng(seed).integers(0, 4096, size=(40, 56, 3)).astype(np.uint16)
    space = "RGB" if photometric == "RGB" else "YCBCR"
    codestream = imagecodecs.jpeg8_encode(rgb, level=95, bitspersample=12, colorspace="RGB", outcolorspace=space)
    _colour_dicom(tmp_path / "c.dcm", codestream, rgb, photometric, 12)
    rad = read_image(tmp_path / "c.dcm", warn=False)
    decoded = imagecodecs.jpeg8_decode(codestream, colorspace=space, outcolorspace="RGB")
    np.testing.assert_array_equal(rad.values, _luma(decoded))
    assert np.abs(rad.values - _luma(rgb)).mean() < 100  # (the image, lossy: not another one's colours)
    assert rad.bits_stored == 12 and rad.notes == [f"{tmp_path / 'c.dcm'}: RGB image converted to luminance "
                                                   "(grayscale)"], rad.notes  # fmt: skip


def test_a_12_bit_colour_jpeg_extended_frame_of_another_colour_space_needs_a_decoder(tmp_path, monkeypatch):
    # one this plugin does not decode is no corrupt file: what would decode it is named
    import imagecodecs

    with_the_test_extras_plugins(monkeypatch, JPEG_EXTENDED)

    rgb = np.zeros((40, 56, 3), np.uint16)
    codestream = imagecodecs.jpeg8_encode(rgb, level=95, bitspersample=12)
    _colour_dicom(tmp_path / "c.dcm", codestream, rgb, "YBR_PARTIAL_422", 12)
    with pytest.raises(ImageReadError, match=r"c\.dcm: compressed transfer syntax 'JPEG Extended.*' needs a decoder"):
        read_image(tmp_path / "c.dcm")


def test_a_damaged_12_bit_colour_jpeg_extended_frame_is_decoded_once(tmp_path, monkeypatch):
    # pydicom's plugins all refuse it (this one among them: a colour frame is not decoded ahead),
    # and pixel_array asked this plugin again alone, which decoded it a second time to fail the same way
    import imagecodecs

    with_the_test_extras_plugins(monkeypatch, JPEG_EXTENDED)

    rgb = np.random.default_rng(0).integers(0, 4096, size=(40, 56, 3)).astype(np.uint16)
    codestream = bytearray(imagecodecs.jpeg8_encode(rgb, level=95, bitspersample=12, outcolorspace="YCBCR"))
    at = codestream.find(b"\xff\xc4")  # (its first Huffman table: counts of 255 codes each)
    codestream[at + 5 : at + 21] = b"\xff" * 16
    _colour_dicom(tmp_path / "c.dcm", bytes(codestream), rgb, "YBR_FULL_422", 12)
    decoded, decode = [], dicom_codecs._decode
    monkeypatch.setattr(dicom_codecs, "_decode", lambda *args: decoded.append(1) or decode(*args))
    with pytest.raises(ImageReadError, match=r"(?s)c\.dcm: cannot decode DICOM pixel data \(JPEG Extended.*"
                                             r"xvertfast-imagecodecs: Bogus Huffman table definition"):
        read_image(tmp_path / "c.dcm")
    assert len(decoded) == 1


@pytest.mark.parametrize("ahead", [False, True])
def test_a_refusal_kept_for_the_rest_of_a_read_holds_no_traceback(tmp_path, seed, monkeypatch, ahead):
    # the refusal of a frame not decoded ahead (a damaged 12-bit colour JPEG Extended one) was kept
    # as raised, its traceback holding the frame's bytes and pydicom's runner until the read ended;
    # one refused ahead (a damaged JPEG-LS frame) was kept bare, but gained one when raised
    import imagecodecs

    if ahead:
        with_the_test_extras_plugins(monkeypatch, JPEG_LS_LOSSLESS)
        values = random_values(seed, 12, False)
        codestream = jpeg_ls(values, 12)
        codestream = codestream[: len(codestream) // 2] + b"\xff\xd9"  # its scan cut, its end marker there
        encapsulated_dicom(tmp_path / "c.dcm", values, JPEG_LS_LOSSLESS, [codestream], bits=12)
    else:
        with_the_test_extras_plugins(monkeypatch, JPEG_EXTENDED)
        rgb = np.random.default_rng(seed).integers(0, 4096, size=(40, 56, 3)).astype(np.uint16)
        codestream = bytearray(imagecodecs.jpeg8_encode(rgb, level=95, bitspersample=12, outcolorspace="YCBCR"))
        at = codestream.find(b"\xff\xc4")  # (its first Huffman table: counts of 255 codes each)
        codestream[at + 5 : at + 21] = b"\xff" * 16
        _colour_dicom(tmp_path / "c.dcm", bytes(codestream), rgb, "YBR_FULL_422", 12)
    kept, pixel_array = [], dicom_codecs.pixel_array

    def asked(*args):
        try:
            return pixel_array(*args)
        finally:  # (within the reader's decoded_ahead block)
            kept.append(dicom_codecs._ahead.frame)

    monkeypatch.setattr(dicom_codecs, "pixel_array", asked)
    with pytest.raises(ImageReadError, match=r"c\.dcm: cannot decode DICOM pixel data"):
        read_image(tmp_path / "c.dcm")
    refusal = kept[0][1]
    assert isinstance(refusal, Exception) and str(refusal), refusal
    assert refusal.__traceback__ is None and refusal.__context__ is None


def test_a_refusal_kept_bare_reads_as_raised_without_its_init_run_again():
    # copy.copy ran a refusal's __init__ again on its args: a class building its message there was kept
    # as "error error 5" (its side effects run twice)
    inits = []

    class Built(RuntimeError):
        def __init__(self, code):
            inits.append(code)
            super().__init__(f"error {code}")
            self.code, self.seen = code, "ahead"

    try:
        raise Built(5)
    except Built as exc:
        exc.add_note("frame 1")
        raised = exc
    kept = dicom_codecs._bare(raised)
    assert kept is not raised and type(kept) is Built and inits == [5]
    assert (str(kept), kept.args, kept.seen, kept.code, kept.__notes__) == ("error 5", ("error 5",), "ahead", 5,
                                                                            ["frame 1"])  # fmt: skip
    assert kept.__traceback__ is None and raised.__traceback__ is not None
    # an OSError's filename is not in its args: no copy reads as it does, so the refusal itself, bare
    try:
        raise FileNotFoundError(2, "No such file or directory", "f.j2k")
    except FileNotFoundError as exc:
        missing = exc
    assert dicom_codecs._bare(missing) is missing and missing.__traceback__ is None and missing.filename == "f.j2k"
    undecoded = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")  # (its message made in __init__)
    assert str(dicom_codecs._bare(undecoded)) == str(undecoded)

    class Keyed(ValueError):  # no copy made without its keyword: the refusal itself, bare
        def __new__(cls, *args, code):
            return super().__new__(cls, *args)

        def __init__(self, *args, code):
            super().__init__(*args)

    try:
        raise Keyed("bad", code=1)
    except Keyed as exc:
        raised = exc
    assert dicom_codecs._bare(raised) is raised and raised.__traceback__ is None


def test_an_8_bit_jpeg_extended_frame_under_bits_allocated_16_is_read(tmp_path, seed):
    # Pillow decodes it to 8-bit words, which pydicom cannot fit in the 16-bit frame ('could not
    # broadcast'): after pydicom's plugins, this one decodes it (as it did when it came first)
    import imagecodecs
    import pydicom

    grey = np.random.default_rng(seed).integers(0, 256, size=(40, 56))
    codestream = imagecodecs.jpeg8_encode(grey.astype(np.uint8), level=90)
    encapsulated_dicom(tmp_path / "g.dcm", grey, JPEG_EXTENDED, [codestream], bits=12)
    ds = pydicom.dcmread(tmp_path / "g.dcm")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 8, 7
    ds.save_as(tmp_path / "g.dcm")
    rad = read_image(tmp_path / "g.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, imagecodecs.jpeg8_decode(codestream))
    assert rad.bits_stored == 8


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.1", JPEG_EXTENDED])
def test_a_samples_per_pixel_that_is_no_number_is_named(tmp_path, syntax):
    # the plugin's grey check ran int() on it first: 'cannot decode DICOM: TypeError: int() argument ...'
    import pydicom

    values = np.add.outer(np.arange(40) * 50, np.arange(56) * 30)
    if syntax == JPEG_EXTENDED:
        encapsulated_dicom(tmp_path / "s.dcm", values, syntax, [jpeg_12_bit(values)], bits=12)
    else:
        make_dicom(tmp_path / "s.dcm", values, syntax=syntax)
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    ds.SamplesPerPixel = [1, 1]
    ds.save_as(tmp_path / "s.dcm")
    with pytest.raises(ImageReadError, match=r"s\.dcm: DICOM SamplesPerPixel is not a number: \[1, 1\]$"):
        read_image(tmp_path / "s.dcm")


def test_one_missing_decoder_is_named_without_one_of(monkeypatch):
    # 'needs a decoder, one of imagecodecs' where imagecodecs alone is missing
    from xvertfast.io import decode_dicom

    monkeypatch.setattr(dicom_codecs, "missing_decoders", lambda syntax: ["imagecodecs"])
    assert decode_dicom._decoders_wanted(JPEG_EXTENDED) == ": imagecodecs"
    monkeypatch.setattr(dicom_codecs, "missing_decoders", lambda syntax: ["python-gdcm", "imagecodecs"])
    assert decode_dicom._decoders_wanted(JPEG_EXTENDED) == ", one of python-gdcm, imagecodecs"


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("syntax, precision", [(J2K_LOSSLESS, 14), (JPEG_LOSSLESS_SV1, 14), (JPEG_LS_LOSSLESS, 16)])
def test_a_codestream_deeper_than_bits_stored_is_read_and_scaled_at_its_depth(tmp_path, seed, syntax, precision,
                                                                              photometric):  # fmt: skip
    # 14-bit values under BitsStored 12: pydicom kept a lossless JPEG's low 12 bits (another image);
    # J2K and JPEG-LS values came whole but were scaled by 0..4095 (full_range, outputs=DIR's
    # scale: 3/4 of the image past white) and a MONOCHROME1 one flipped within it, without a word.
    # (imagecodecs writes JPEG-LS at a precision of 16: read at 16 bits, the depth it records)
    import pydicom

    values = random_values(seed, 14, False)
    if syntax == J2K_LOSSLESS:
        jpeg2000_dicom(tmp_path / "d.dcm", values, bits=14, photometric=photometric)
    else:
        codestream = jpeg_ls(values, 14) if syntax == JPEG_LS_LOSSLESS else lossless_jpeg(values, 14, 1)
        encapsulated_dicom(tmp_path / "d.dcm", values, syntax, [codestream], bits=14)
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    ds.BitsStored, ds.HighBit, ds.PhotometricInterpretation = 12, 11, photometric
    ds.save_as(tmp_path / "d.dcm")
    rad = read_image(tmp_path / "d.dcm", warn=False)
    top = (1 << precision) - 1
    np.testing.assert_array_equal(rad.values, values if photometric == "MONOCHROME2" else top - values)
    assert rad.bits_stored == precision and full_range(rad) == (0, top)
    assert len(rad.notes) == 1 and f"codestream holds {precision}-bit samples, deeper than BitsStored 12, and its " \
        "values reach 16383, past the 4095 BitsStored holds: read as decoded, at" in rad.notes[0], rad.notes


@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS])
def test_an_overlay_embedded_above_bits_stored_in_a_deeper_codestream_is_left_out(tmp_path, seed, syntax):
    # 12-bit values with an overlay plane in bit 13 of their words (group 6000 says so), compressed at
    # 16 bits: read deeper than BitsStored, the overlay's box burnt in at 8192 and more, the anatomy
    # squeezed into a third of the range; uncompressed, the same words read from their low 12 bits
    import imagecodecs

    values = random_values(seed, 12, False)
    words = values.copy()
    words[5:15, 5:25] |= 1 << 13
    codestream = (imagecodecs.jpeg2k_encode(words.astype(np.uint16), level=0, codecformat="J2K")
                  if syntax == J2K_LOSSLESS else jpeg_ls(words, 16) if syntax == JPEG_LS_LOSSLESS
                  else lossless_jpeg(words, 16, 1))  # fmt: skip
    encapsulated_dicom(tmp_path / "o.dcm", values, syntax, [codestream], bits=12)
    ds = with_an_overlay_in_bit_13(tmp_path / "o.dcm", values.shape)
    rad = read_image(tmp_path / "o.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and full_range(rad) == (0, 4095)
    assert rad.notes == [f"{tmp_path / 'o.dcm'}: its {_KIND[syntax]} codestream's 16-bit samples hold an overlay "
                         "embedded above BitsStored 12 (overlay 6000 in bit 13): read from the low 12 bits, the "
                         "overlay left out"]  # fmt: skip
    ds[0x60000100].value = 1  # (an overlay of its own OverlayData, not in the pixel data: read deeper, as before)
    ds.save_as(tmp_path / "o.dcm")
    assert read_image(tmp_path / "o.dcm", warn=False).bits_stored == 16


_KIND = {J2K_LOSSLESS: "JPEG 2000", JPEG_LOSSLESS_SV1: "JPEG", JPEG_LS_LOSSLESS: "JPEG-LS"}



@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, "1.2.840.10008.1.2.4.91",
                                    JPEG_LS_NEAR])  # fmt: skip
def test_an_overlay_embedded_above_bits_stored_of_a_signed_frame_is_left_out_its_sign_kept(tmp_path, seed, syntax):
    # signed 12-bit values (PixelRepresentation 1), their two's complement patterns in the low 12 bits of
    # each word, an overlay in bit 13 (no sign copied above bit 11: the overlay's bits are there),
    # compressed at 16 bits: read from the low 12 bits, their sign from bit 11, the overlay left out.
    # Lossy: within the codec's error, -1 and 0 too (their patterns 4095 and 0, a lossy codec's
    # overshoot wraps between them)
    import imagecodecs

    lossy = syntax in ("1.2.840.10008.1.2.4.91", JPEG_LS_NEAR)
    values = np.repeat([[-1000, -1, 0, 1000]], 16, axis=1).repeat(64, axis=0) if lossy else \
        random_values(seed, 12, True)  # fmt: skip
    words = values & 0xFFF
    words[5:15, 5:50] |= 1 << 13
    words = words.astype(np.uint16)
    codestream = {J2K_LOSSLESS: lambda: imagecodecs.jpeg2k_encode(words, level=0, codecformat="J2K"),
                  JPEG_LOSSLESS_SV1: lambda: lossless_jpeg(words, 16, 1), JPEG_LS_LOSSLESS: lambda: jpeg_ls(words, 16),
                  "1.2.840.10008.1.2.4.91": lambda: imagecodecs.jpeg2k_encode(words, level=90, codecformat="j2k",
                                                                               bitspersample=16),
                  JPEG_LS_NEAR: lambda: imagecodecs.jpegls_encode(words, level=2)}[syntax]()  # fmt: skip
    encapsulated_dicom(tmp_path / "o.dcm", values, syntax, [codestream], bits=12, signed=True)
    with_an_overlay_in_bit_13(tmp_path / "o.dcm", values.shape)
    rad = read_image(tmp_path / "o.dcm", warn=False)
    if lossy:
        assert np.abs(rad.values.astype(np.int64) - values).max() <= 16
    else:
        np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and full_range(rad) == (-2048, 2047)
    kind = "JPEG-LS" if syntax == JPEG_LS_NEAR else "JPEG 2000" if lossy else _KIND[syntax]
    assert rad.notes == [f"{tmp_path / 'o.dcm'}: its {kind} codestream's 16-bit samples hold an overlay embedded "
                         "above BitsStored 12 (overlay 6000 in bit 13): read from the low 12 bits, the overlay left "
                         "out"]  # fmt: skip


def with_an_overlay_in_bit_13(path, shape):
    """The DICOM at ``path`` with overlay group 6000 embedded in bit 13 of its 16-bit words
    (OverlayBitsAllocated 16, OverlayBitPosition 13), saved; its data set."""
    import pydicom

    ds = pydicom.dcmread(path)
    for element, vr, value in ((0x0010, "US", shape[0]), (0x0011, "US", shape[1]), (0x0040, "CS", "G"),
                               (0x0050, "SS", [1, 1]), (0x0100, "US", 16), (0x0102, "US", 13)):  # fmt: skip
        ds.add_new(0x60000000 | element, vr, value)
    ds.save_as(path)
    return ds


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.91", JPEG_LS_NEAR])
def test_an_overlay_embedded_above_bits_stored_in_a_lossy_codestream_leaves_no_speckles(tmp_path, syntax):
    # a lossy codec decodes white (4095) a little past it and a black pixel under the overlay (8192) a
    # little short: masked to the low 12 bits, they read black in white and white in black (794 of
    # these 4096 pixels off by 4096 in JPEG 2000, 126 in JPEG-LS). The overlay's bit alone comes off,
    # by the nearer reading: white's overshoot stays past white, as without an overlay; black's
    # undershoot reads 0, as the decoder clamps it without one.
    import imagecodecs

    values = np.zeros((64, 64), np.int64)
    values[:, 32:] = 4095
    box = np.zeros(values.shape, bool)
    box[5:15, 22:42] = True  # (half over black, half over white)
    words = (values | np.where(box, 1 << 13, 0)).astype(np.uint16)
    if syntax == JPEG_LS_NEAR:
        codestream = imagecodecs.jpegls_encode(words, level=2)
        decoded = imagecodecs.jpegls_decode(codestream).astype(np.int64)
    else:
        codestream = imagecodecs.jpeg2k_encode(words, level=90, codecformat="j2k", bitspersample=16)
        decoded = imagecodecs.jpeg2k_decode(codestream).astype(np.int64)
    assert decoded[~box].max() > 4095 and decoded[box].min() < 8192, decoded  # (the case: both ways past a bit)
    encapsulated_dicom(tmp_path / "o.dcm", values, syntax, [codestream], bits=12)
    with_an_overlay_in_bit_13(tmp_path / "o.dcm", values.shape)
    rad = read_image(tmp_path / "o.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, np.maximum(decoded - np.where(box, 1 << 13, 0), 0))
    assert rad.values[:, 32:].min() > 4000 and rad.values[:, :32].max() < 100
    assert rad.bits_stored == 12 and full_range(rad) == (0, 4095)
    assert len(rad.notes) == 1 and "(overlay 6000 in bit 13): read from the low 12 bits" in rad.notes[0], rad.notes


@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LOSSLESS_SV1])
def test_a_signed_codestream_deeper_than_bits_stored_is_read_and_scaled_at_its_depth(tmp_path, seed, syntax):
    # 14-bit signed values under BitsStored 12: pydicom kept a lossless JPEG's low 12 bits (another
    # image), and J2K values came whole but were scaled by -2048..2047 (full_range), without a word
    import pydicom

    values = random_values(seed, 14, True)
    if syntax == J2K_LOSSLESS:
        jpeg2000_dicom(tmp_path / "d.dcm", values, bits=14, signed=True)
    else:
        encapsulated_dicom(tmp_path / "d.dcm", values, syntax, [lossless_jpeg(values & 0x3FFF, 14, 1)], bits=14,
                           signed=True)  # fmt: skip
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.save_as(tmp_path / "d.dcm")
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 14 and full_range(rad) == (-8192, 8191)
    assert len(rad.notes) == 1 and "codestream holds 14-bit samples, deeper than BitsStored 12, and its values " \
        "reach -8192..8191, past the -2048..2047 BitsStored holds: read as decoded, at 14 bits" in rad.notes[0], \
        rad.notes


@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LOSSLESS_SV1])
def test_signed_values_of_bits_stored_in_a_deeper_codestream_read_as_before(tmp_path, seed, syntax):
    # 12-bit signed values in a 16-bit codestream: a signed JPEG 2000 one's values, a lossless
    # JPEG's two's complement patterns (whose sign pydicom took at BitsStored): no note, 12 bits
    import imagecodecs

    values = random_values(seed, 12, True)
    codestream = (imagecodecs.jpeg2k_encode(values.astype(np.int16), level=0, codecformat="j2k", bitspersample=16)
                  if syntax == J2K_LOSSLESS else lossless_jpeg(values & 0xFFF, 16, 1))  # fmt: skip
    encapsulated_dicom(tmp_path / "d.dcm", values, syntax, [codestream], bits=12, signed=True)
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and full_range(rad) == (-2048, 2047) and not rad.notes, rad.notes


def test_a_lossy_signed_codestream_deeper_than_bits_stored_is_read_at_its_depth(tmp_path, seed):
    # 14-bit signed values in a lossy JPEG 2000 codestream under BitsStored 12 read whole but at 12
    # bits (full_range -2048..2047, values to +-8192), without a word: signed lossy frames were left out
    import imagecodecs
    import pydicom
    from pydicom.encaps import generate_frames

    jpeg2000_dicom(tmp_path / "d.dcm", random_values(seed, 14, True), bits=14, signed=True, lossy=True)
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.save_as(tmp_path / "d.dcm")
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, imagecodecs.jpeg2k_decode(next(generate_frames(ds.PixelData))))
    assert rad.bits_stored == 14 and full_range(rad) == (-8192, 8191), rad.bits_stored
    assert len(rad.notes) == 1 and "codestream holds 14-bit samples, deeper than BitsStored 12, and its values " \
        "reach" in rad.notes[0], rad.notes


def test_a_lossy_signed_codestreams_overshoot_past_bits_stored_keeps_its_depth(tmp_path, seed):
    # 12-bit signed values in a lossy 16-bit JPEG 2000 codestream overshoot -2048..2047 a little:
    # within twice that range they read at BitsStored, as before, no note
    import imagecodecs

    values = random_values(seed, 12, True)
    codestream = imagecodecs.jpeg2k_encode(values.astype(np.int16), level=70, codecformat="j2k", bitspersample=16)
    decoded = imagecodecs.jpeg2k_decode(codestream)
    assert 2047 < np.abs(decoded).max() < 4096, np.abs(decoded).max()  # (the case: past BitsStored 12, not twice it)
    encapsulated_dicom(tmp_path / "d.dcm", values, "1.2.840.10008.1.2.4.91", [codestream], bits=12, signed=True)
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, decoded)
    assert rad.bits_stored == 12 and full_range(rad) == (-2048, 2047) and not rad.notes, (rad.bits_stored, rad.notes)


def test_a_deeper_codestream_whose_values_fit_bits_stored_reads_as_before(tmp_path, seed):
    # a 12-bit image in a JPEG-LS codestream of precision 16 (as imagecodecs writes them): no note, 12 bits
    values = random_values(seed, 12, False)
    encapsulated_dicom(tmp_path / "d.dcm", values, JPEG_LS_LOSSLESS, [jpeg_ls(values, 12)], bits=12)
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and full_range(rad) == (0, 4095) and not rad.notes


def lossy_codestream(syntax, values):
    """imagecodecs' lossy JPEG 2000 (PSNR 70, j2k_psnr) or near-lossless JPEG-LS (NEAR 2) of
    ``values`` in a 16-bit codestream, as such files' writers store 12-bit data, and its decoded values."""
    import imagecodecs

    if syntax == JPEG_LS_NEAR:
        codestream = imagecodecs.jpegls_encode(values.astype(np.uint16), level=2)
        return codestream, imagecodecs.jpegls_decode(codestream)
    codestream = imagecodecs.jpeg2k_encode(values.astype(np.uint16), level=70, codecformat="j2k", bitspersample=16)
    return codestream, imagecodecs.jpeg2k_decode(codestream)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.91", JPEG_LS_NEAR])
def test_a_lossy_codestreams_overshoot_past_bits_stored_keeps_its_depth(tmp_path, seed, syntax, photometric):
    # 12-bit data in a lossy 16-bit codestream decode a few levels past 4095 near white: one such
    # pixel took the whole image to 16 bits (full_range 0..65535, a MONOCHROME1 one flipped to
    # 61332..65535 in the chest X-rays of cxr-dev). It reads at BitsStored as before, no note.
    import pydicom

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 4096, size=(48, 64))
    values[:, 32:] = rng.integers(4080, 4096, size=(48, 32))  # a noisy white field: overshoot there
    codestream, decoded = lossy_codestream(syntax, values)
    assert 4095 < decoded.max() < 8192, decoded.max()  # (the case: past BitsStored 12, not past twice it)
    encapsulated_dicom(tmp_path / "d.dcm", values, syntax, [codestream], bits=12)
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    ds.PhotometricInterpretation = photometric
    ds.save_as(tmp_path / "d.dcm")
    rad = read_image(tmp_path / "d.dcm", warn=False)
    assert rad.bits_stored == 12 and full_range(rad) == (0, 4095) and not rad.notes, (rad.bits_stored, rad.notes)
    np.testing.assert_array_equal(rad.values, decoded if photometric == "MONOCHROME2" else 4095 - decoded.astype(int))


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2.4.91", JPEG_LS_NEAR])
def test_a_lossy_codestreams_values_past_twice_bits_stored_are_read_at_its_depth(tmp_path, seed, syntax):
    # 14-bit data under BitsStored 12 are no overshoot: read at the codestream's 16 bits, with the note
    values = random_values(seed, 14, False, shape=(48, 64))
    codestream, decoded = lossy_codestream(syntax, values)
    encapsulated_dicom(tmp_path / "d.dcm", values, syntax, [codestream], bits=12)
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, decoded)
    assert rad.bits_stored == 16 and full_range(rad) == (0, 65535), rad.bits_stored
    assert len(rad.notes) == 1 and "codestream holds 16-bit samples, deeper than BitsStored 12" in rad.notes[0]


@pytest.mark.parametrize("near", [2, 5])
def test_signed_patterns_in_a_near_lossless_jpeg_ls_codestream_read_at_bits_stored(tmp_path, seed, near):
    # a 12-bit signed image's two's complement patterns in a 16-bit near-lossless JPEG-LS codestream:
    # -1's pattern 4095 decodes up to NEAR past it, and one such pixel took the image to 16 bits with
    # the note (half of random images), the others at 12. It reads at 12 bits, as an unsigned one's
    # overshoot does, its values as decoded (the patterns: negative values as 2048..4095, as before).
    import imagecodecs

    values = random_values(seed, 12, True, shape=(48, 64))
    values[:, 32:] = np.random.default_rng(seed).integers(-16, 0, size=(48, 32))  # patterns 4080..4095
    codestream = jpeg_ls(values, 12, near)
    decoded = imagecodecs.jpegls_decode(codestream)
    assert 4095 < decoded.max() < 8192, decoded.max()  # (the case: an overshoot past 4095; measured: 4095 + NEAR)
    encapsulated_dicom(tmp_path / "d.dcm", values, JPEG_LS_NEAR, [codestream], bits=12, signed=True)
    rad = read_image(tmp_path / "d.dcm", warn=False)
    assert rad.bits_stored == 12 and full_range(rad) == (-2048, 2047) and not rad.notes, (rad.bits_stored, rad.notes)
    np.testing.assert_array_equal(rad.values, decoded)


@pytest.mark.parametrize("near", [2, 5])
def test_signed_14_bit_patterns_in_a_near_lossless_jpeg_ls_codestream_read_at_its_depth(tmp_path, seed, near):
    # 14-bit patterns under BitsStored 12 reach past twice its range: deeper data, read at 16 bits with the note
    import imagecodecs

    values = random_values(seed, 14, True, shape=(48, 64))
    codestream = jpeg_ls(values, 14, near)
    decoded = imagecodecs.jpegls_decode(codestream)
    assert decoded.max() >= 8192, decoded.max()  # (the case: past twice BitsStored 12's range)
    encapsulated_dicom(tmp_path / "d.dcm", values, JPEG_LS_NEAR, [codestream], bits=12, signed=True)
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, decoded)
    assert rad.bits_stored == 16 and len(rad.notes) == 1, (rad.bits_stored, rad.notes)
    assert "codestream holds 16-bit samples, deeper than BitsStored 12" in rad.notes[0], rad.notes


@pytest.mark.parametrize("syntax", [J2K_LOSSLESS, JPEG_LS_LOSSLESS])
def test_a_deeper_codestream_without_bits_stored_is_refused_as_before(tmp_path, seed, syntax):
    # pydicom's header check refused it; taking the codestream's depth read it without a word
    import pydicom

    values = random_values(seed, 12, False)
    if syntax == J2K_LOSSLESS:
        jpeg2000_dicom(tmp_path / "d.dcm", values, bits=12)
        ds = pydicom.dcmread(tmp_path / "d.dcm")
        ds.BitsAllocated = 16  # (a 12-bit codestream: deeper than the 0 BitsStored's absence read as)
    else:
        encapsulated_dicom(tmp_path / "d.dcm", values, syntax, [jpeg_ls(values, 12)], bits=12)
        ds = pydicom.dcmread(tmp_path / "d.dcm")
    del ds.BitsStored
    ds.save_as(tmp_path / "d.dcm")
    with pytest.raises(ImageReadError, match=r"d\.dcm: invalid DICOM image header: Missing required element: "
                       r"\(0028,0101\) 'Bits Stored'"):  # fmt: skip
        read_image(tmp_path / "d.dcm")


def test_a_deeper_codestream_without_high_bit_is_read_without_one_put_in(tmp_path, seed):
    # decoding at the codestream's depth said HighBit 15 and left it: 'HighBit 15 with BitsStored 12' noted
    import pydicom

    values = random_values(seed, 12, False)
    encapsulated_dicom(tmp_path / "d.dcm", values, JPEG_LS_LOSSLESS, [jpeg_ls(values, 12)], bits=12)
    ds = pydicom.dcmread(tmp_path / "d.dcm")
    del ds.HighBit
    ds.save_as(tmp_path / "d.dcm")
    rad = read_image(tmp_path / "d.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and not rad.notes, rad.notes


@pytest.mark.parametrize("syntax", [JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1])
def test_a_codestream_declaring_another_size_never_reaches_imagecodecs(tmp_path, seed, monkeypatch, syntax):
    # the reader's one size check (decode_dicom) runs before the plugin decodes ahead, which
    # no longer checks again: a decoder allocates what the codestream says
    import struct

    values = random_values(seed, 12, False)
    codestream = bytearray(jpeg_ls(values, 12) if syntax == JPEG_LS_LOSSLESS else lossless_jpeg(values, 12, 1))
    struct.pack_into(">HH", codestream, codestream.index(b"\xff\xf7" if syntax == JPEG_LS_LOSSLESS else b"\xff\xc3")
                     + 5, 3700, 5300)  # its frame header: height, width  # fmt: skip
    encapsulated_dicom(tmp_path / "l.dcm", values, syntax, [bytes(codestream)], bits=12)
    decoded = []
    monkeypatch.setattr(dicom_codecs, "_decoder", lambda syntax: decoded.append)
    with pytest.raises(ImageReadError, match=r"l\.dcm: its JPEG(-LS)? codestream declares 5300 x 3700 \(width x "
                       r"height\), its header \(Columns x Rows\) 53 x 37: corrupt"):  # fmt: skip
        read_image(tmp_path / "l.dcm")
    assert decoded == []


# a package hidden as if not installed: its modules, and its entry points (pylibjpeg loads its
# plugins' at pydicom's import, where a hidden module's raised)
_HIDING = """
import importlib.metadata
import sys

def hidden(name):
    return name.split(".")[0] in sys.argv[2].split(",")

class Hide:
    def find_spec(self, name, path=None, target=None):
        if hidden(name):
            raise ModuleNotFoundError(f"hidden: {name}")

def entry_points(_found=importlib.metadata.entry_points, **selection):
    found = _found(**selection)
    return type(found)(ep for ep in found if not hidden(ep.module)) if selection else found

sys.meta_path.insert(0, Hide())
importlib.metadata.entry_points = entry_points
from xvertfast.io import read_image
read_image(sys.argv[1])
"""


@pytest.mark.parametrize("syntax, hidden, named", [
    (JPEG_LS_LOSSLESS, "imagecodecs,libjpeg,gdcm,jpeg_ls",
     ["python-gdcm", "pylibjpeg-libjpeg", "pyjpegls", "imagecodecs"]),
    (JPEG_LOSSLESS_SV1, "imagecodecs,libjpeg,gdcm", ["python-gdcm", "pylibjpeg-libjpeg", "imagecodecs"]),
    (JPEG_LOSSLESS, "imagecodecs,libjpeg,gdcm,pylibjpeg",  # pylibjpeg too: both of its packages named
     ["python-gdcm", "pylibjpeg with pylibjpeg-libjpeg", "imagecodecs"]),
])  # fmt: skip
def test_without_a_decoder_the_error_names_the_file_and_what_to_install(tmp_path, seed, syntax, hidden, named):
    values = random_values(seed, 12, False)
    codestream = jpeg_ls(values, 12) if syntax == JPEG_LS_LOSSLESS else lossless_jpeg(values, 12, 1)
    encapsulated_dicom(tmp_path / "l.dcm", values, syntax, [codestream], bits=12)
    run = subprocess.run([sys.executable, "-c", _HIDING, str(tmp_path / "l.dcm"), hidden], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    error = run.stderr.strip().splitlines()[-1]
    assert run.returncode == 1 and error.startswith("xvertfast.io.errors.ImageReadError: "), run.stderr
    said = re.fullmatch(r".*l\.dcm: compressed transfer syntax '.*' needs a decoder, one of (.*) "
                        r"\(pip install 'xvertfast\[dicom-codecs\]'\)", error)  # fmt: skip
    assert said, error
    assert sorted(said[1].split(", ")) == sorted(named)


def test_imagecodecs_installed_but_failing_to_import_is_named_with_why(monkeypatch):
    # it was named 'imagecodecs with its jpegls codec', as if its build lacked the codec
    make_imagecodecs_fail_to_import(monkeypatch, "numpy.core.multiarray failed to import")
    assert "imagecodecs (installed, but it fails to import: numpy.core.multiarray failed to import)" in \
        dicom_codecs.missing_decoders(JPEG_LS_LOSSLESS)


def test_what_imagecodecs_wants_is_worded_by_its_helper_alone(monkeypatch):
    """The PNG note turned the helper's bare 'imagecodecs' into an install command by comparing its
    words: the helper gives the command itself, and its other answers the same to PNG and DICOM."""
    import imagecodecs

    from xvertfast.io.decode_common import imagecodecs_wanted

    monkeypatch.setattr(imagecodecs.PNG, "available", False)
    assert imagecodecs_wanted("png", "PNG", command=True) == imagecodecs_wanted("png", "PNG") == \
        "imagecodecs with its PNG codec"
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # (not installed: its import raises ImportError)
    assert imagecodecs_wanted("png", "PNG", command=True) == "`pip install imagecodecs`"
    assert imagecodecs_wanted("jpegls") == "imagecodecs"  # (in DICOM's list of packages, its command after)


def test_a_multi_frame_jpeg_ls_is_refused_as_multi_frame(tmp_path, seed):
    # the reader takes one radiograph per file, whatever its codec
    values = random_values(seed, 12, False)
    encapsulated_dicom(tmp_path / "m.dcm", values, JPEG_LS_LOSSLESS, [jpeg_ls(values, 12)] * 2, bits=12)
    with pytest.raises(ImageReadError, match=r"m\.dcm: multi-frame DICOM \(2 frames\)"):
        read_image(tmp_path / "m.dcm")


@pytest.mark.parametrize("over", ["warned", "refused"])
def test_a_frame_pydicom_decodes_by_pillow_has_max_pixels_as_its_one_limit(tmp_path, seed, monkeypatch, over):
    # a JPEG Baseline frame is decoded by pydicom's Pillow plugin (the test extra has no other),
    # whose Image.open held it to Pillow's bomb limit: past it a warning, past twice it the frame
    # was refused as "truncated or corrupt?" though max_pixels allowed it. The limit is lowered here
    # for a small frame (40 x 56 = 2240 pixels); Pillow's own check holds for anyone else
    import imagecodecs
    import pydicom
    from PIL import Image

    grey = np.random.default_rng(seed).integers(0, 256, size=(40, 56)).astype(np.uint8)
    codestream = imagecodecs.jpeg8_encode(grey, level=90)
    encapsulated_dicom(tmp_path / "g.dcm", grey, "1.2.840.10008.1.2.4.50", [codestream], bits=8)
    with Image.open(io.BytesIO(codestream)) as decoded:  # (Pillow's values, as pydicom's plugin decodes them)
        expected = np.asarray(decoded)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000 if over == "warned" else 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (Pillow's DecompressionBombWarning among them)
        im = read_image(tmp_path / "g.dcm", warn=False)
    np.testing.assert_array_equal(im.values, expected)
    with pytest.raises(ImageReadError, match=r"g\.dcm: image claims 56 x 40 .* above the limit of 2,000 \(max_pixels\)"):
        read_image(tmp_path / "g.dcm", max_pixels=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Exception, match="decompression bomb"):  # (pydicom used alone: Pillow's check, as ever)
            pydicom.dcmread(tmp_path / "g.dcm").pixel_array


def test_a_jpeg_2000_frame_pydicom_decodes_by_pillow_has_max_pixels_as_its_one_limit(tmp_path, seed, monkeypatch):
    # where neither imagecodecs nor pylibjpeg-openjpeg is there, Pillow decodes a JPEG 2000 frame
    # (pydicom's plugin opens it by Image.open, formats JPEG then JPEG2000): Pillow's bomb limit,
    # lowered here under its 40 x 56 pixels, refused it as "truncated or corrupt?"
    from PIL import Image
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000Lossless

    values = random_values(seed, 12, False, shape=(40, 56))
    jpeg2000_dicom(tmp_path / "j.dcm", values, bits=12)
    monkeypatch.setattr(dicom_codecs, "available_for", lambda syntax: False)
    decoder = get_decoder(JPEG2000Lossless)
    monkeypatch.setattr(decoder, "_available", {k: p for k, p in decoder._available.items() if k == "pillow"})
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        im = read_image(tmp_path / "j.dcm", warn=False)
    np.testing.assert_array_equal(im.values, values)
