"""The imagecodecs plugin for DICOM's JPEG 2000 pixel data: the same values as pydicom's own
plugin, decoded outside the warnings lock so that reader threads decode at once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xvertfast.io import ImageReadError, dicom_codecs, read_image
from xvertfast.io.errors import WarningsNamingTheFile

from tests.io.test_read import _corrupt_jpeg2000_dicom, _luma, make_dicom

pytest.importorskip("imagecodecs", reason="the plugin needs imagecodecs (the dicom-codecs and test extras)")
pytest.importorskip("openjpeg", reason="encoding JPEG 2000 and pydicom's own plugin need pylibjpeg-openjpeg")


def jpeg2000_dicom(path, values, *, bits, signed=False, lossy=False, photometric="MONOCHROME2"):
    """A single-frame JPEG 2000 DICOM of ``values`` (lossless, or lossy at 10:1)."""
    import pydicom
    from pydicom.encaps import generate_frames
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


def test_the_plugin_decodes_each_file_once_outside_the_warnings_lock(tmp_path, seed, monkeypatch):
    values = np.random.default_rng(seed).integers(0, 4096, size=(64, 70))
    jpeg2000_dicom(tmp_path / "j.dcm", values, bits=12)
    decode, locked = dicom_codecs._jpeg2k_decode(), []

    def spy(source):
        locked.append(WarningsNamingTheFile._lock.locked())
        return decode(source)

    monkeypatch.setattr(dicom_codecs, "_jpeg2k_decode", lambda: spy)
    np.testing.assert_array_equal(read_image(tmp_path / "j.dcm").values, values)
    assert locked == [False]


def test_reader_threads_decode_at_once(tmp_path, seed, monkeypatch):
    # each decode waits until the other thread is decoding too: had one of them waited for a
    # lock the other holds (pydicom's plugins hold the GIL; the warnings lock), the barrier breaks
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(2):
        jpeg2000_dicom(tmp_path / f"{k}.dcm", rng.integers(0, 4096, size=(64, 70)), bits=12)
        paths.append(tmp_path / f"{k}.dcm")
    decode, both = dicom_codecs._jpeg2k_decode(), threading.Barrier(2, timeout=20)

    def meeting(source):
        both.wait()
        return decode(source)

    monkeypatch.setattr(dicom_codecs, "_jpeg2k_decode", lambda: meeting)
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
    assert not dicom_codecs.available_for("1.2.840.10008.1.2.4.80")  # JPEG-LS Lossless
    assert not dicom_codecs.is_available("1.2.840.10008.1.2.4.57")  # JPEG Lossless


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
        dicom_codecs._jpeg2k_decode()(bytes(codestream))
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
    assert dicom_codecs.codestream_shape(frame) == (128, 96)
    ds.Rows, ds.Columns = 64, 48
    ds.save_as(tmp_path / "j.dcm")
    decode, locked = dicom_codecs._jpeg2k_decode(), []

    def spy(source):
        locked.append(WarningsNamingTheFile._lock.locked())
        return decode(source)

    monkeypatch.setattr(dicom_codecs, "_jpeg2k_decode", lambda: spy)
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
