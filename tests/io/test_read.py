"""Reading every supported format, polarity, bit depth, and every bad-input case."""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from xvertfast.io import ImageReadError, NotAnImage, read_image
from xvertfast.samples import SAMPLE_DICOM

from tests.conftest import CXR_DEV as DATA, needs_cxr_dev, traced_memory  # noqa: E402


def image_notes() -> dict[str, dict]:
    with open(os.path.join(DATA, "IMAGE_NOTES.csv")) as f:
        return {row["file"]: row for row in csv.DictReader(f)}


NOTES = image_notes() if os.path.isdir(DATA) else {}


@needs_cxr_dev
@pytest.mark.parametrize("name", sorted(NOTES))
def test_reads_every_cxr_dev_image(name):
    note = NOTES[name]
    photometric = note["photometric"] if note["photometric"] == "MONOCHROME1" else None
    im = read_image(os.path.join(DATA, name), photometric=photometric)
    assert im.pixels.dtype == np.float32 and im.pixels.ndim == 2
    assert im.pixels.min() == 0.0 and im.pixels.max() == 1.0
    assert im.source_format == "png"
    assert im.bits_stored == (10 if name.startswith("gdcm") else 8)
    lo, hi = int(note["value_min"]), int(note["value_max"])
    if photometric:  # stored bone-dark: inverted as (2^bits - 1) - v, so the range flips
        top = (1 << im.bits_stored) - 1
        lo, hi = top - hi, top - lo
    assert (int(im.values.min()), int(im.values.max())) == (lo, hi)


@needs_cxr_dev
def test_monochrome1_override_inverts():
    path = os.path.join(DATA, "gdcm-barre_cr-chest-pa_10bit_mono1.png")
    stored = read_image(path)
    bright_bone = read_image(path, photometric="MONOCHROME1")
    np.testing.assert_allclose(bright_bone.pixels, 1.0 - stored.pixels, atol=1e-6)
    assert bright_bone.photometric == "MONOCHROME1"
    # The spine (centre column band) is brighter than the lungs once inverted.
    h, w = bright_bone.shape
    centre = bright_bone.pixels[h // 3 : 2 * h // 3, w // 2 - 10 : w // 2 + 10].mean()
    lungs = bright_bone.pixels[h // 3 : 2 * h // 3, w // 4 - 10 : w // 4 + 10].mean()
    assert centre > lungs


def test_16bit_png_holding_12bit_values(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 4096, size=(37, 53)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 4095
    path = tmp_path / "twelve.png"
    Image.fromarray(values).save(path)
    im = read_image(path)
    assert im.bits_stored == 12
    assert im.values.max() == 4095 and im.values.min() == 0
    np.testing.assert_allclose(im.pixels, values / 4095.0, atol=1e-6)


def test_a_radiographs_repr_is_one_line_of_what_it_is_not_its_values(tmp_path):
    """What a notebook shows of ``read_image(path)``: the dataclass's repr printed both arrays whole."""
    values = np.zeros((64, 80), np.uint16)
    values[0, 0], values[5, 5] = 4095, 17
    Image.fromarray(values).save(grey := tmp_path / "grey.png")
    assert repr(read_image(grey)) == (f"Radiograph({str(grey)!r}, float32 64x80 in [0, 1], png 12-bit MONOCHROME2, "
                                      "values uint16 in [0, 4095], 0 notes)")  # fmt: skip
    rgb = np.zeros((40, 30, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(colour := tmp_path / "colour.png")
    with pytest.warns(UserWarning, match="converted to luminance"):
        rad = read_image(colour)
    assert len(rad.notes) == 1 and repr(rad).endswith(", 1 note)") and "\n" not in repr(rad)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff(tmp_path, seed, dtype):
    import tifffile

    rng = np.random.default_rng(seed)
    values = (rng.random((20, 30)) * (255 if dtype == np.uint8 else 60000)).astype(dtype)
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, values)
    im = read_image(path)
    assert im.source_format == "tiff"
    v = values.astype(np.float64)
    np.testing.assert_allclose(im.pixels, (v - v.min()) / (v.max() - v.min()), atol=1e-6)


@pytest.mark.parametrize(("dtype", "top", "bits"), [(np.float16, 1, 16), (np.float32, 1, 32), (np.float64, 1, 64),
                                                    (np.uint32, 3_900_000, 32), (np.uint16, 4095, 12)])  # fmt: skip
def test_a_tiffs_bits_stored_is_its_samples_width_or_the_12_of_12_bit_data(tmp_path, seed, dtype, top, bits):
    # a float16 TIFF said 32 (every float did), a uint32 one the bits its largest value needs (22)
    import tifffile

    values = (np.random.default_rng(seed).random((6, 7)) * top).astype(dtype)
    values[0, 0] = top
    tifffile.imwrite(tmp_path / "a.tif", values)
    im = read_image(tmp_path / "a.tif", warn=False)
    assert im.values.dtype == dtype and im.bits_stored == bits


@pytest.mark.parametrize("white_is_zero", [False, True])
@pytest.mark.parametrize("bits", [10, 12, 14])
def test_a_tiff_of_packed_samples_is_read_at_the_depth_its_bitspersample_says(tmp_path, seed, bits, white_is_zero):
    # BitsPerSample 12 records the depth; it was guessed from the largest value, so a dark image
    # (values under 2048) was 11-bit, flipped within 11 bits and its outputs written over 0..2047
    import tifffile

    from xvertfast.io.read import full_range

    top = (1 << bits) - 1
    values = np.random.default_rng(seed).integers(0, (top + 1) // 3, size=(12, 10)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", values, bitspersample=bits,
                     photometric="miniswhite" if white_is_zero else "minisblack")  # fmt: skip
    im = read_image(tmp_path / "p.tif", warn=False)
    assert im.bits_stored == bits and full_range(im) == (0, top)
    np.testing.assert_array_equal(im.values, top - values if white_is_zero else values)


@pytest.mark.parametrize(("mode", "kept"), [("YCbCr", "luma (Y)"), ("LAB", "lightness (L*)")])
@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
@pytest.mark.parametrize("codecs", [True, False])
@pytest.mark.parametrize("planar", [False, True])
def test_a_ycbcr_or_cielab_tiff_is_read_as_its_first_channel(tmp_path, seed, mode, kept, compression, codecs, planar,
                                                             request):  # fmt: skip
    # tifffile (and Pillow, without imagecodecs) give such a page's samples as stored, Y Cb Cr or
    # L* a* b*; their 'luminance' as though they were R G B was another image (a chroma-weighted mix).
    # An LZW YCbCr one Pillow's libtiff gives as RGB, clipped: its luminance was read, under an 'RGB
    # image' note, Y +- 1 here and far off where the colours clip (the last row's, Y 0 and 255);
    # and one of planar samples (PlanarConfiguration 2) still so, 45 off, once 4987e80 mended the rest
    import tifffile

    yy, xx = np.mgrid[0:24, 0:32]
    rgb = np.stack([xx * 7, yy * 9, (xx + yy) * 4], -1).astype(np.uint8)
    rgb[..., 1] ^= np.random.default_rng(seed).integers(0, 32, size=(24, 32), dtype=np.uint8)
    stored = Image.fromarray(rgb).convert(mode)
    if mode == "YCbCr":  # (chroma no RGB holds: red and blue clip)
        samples = np.array(stored)
        samples[-1, :16], samples[-1, 16:] = (0, 40, 230), (255, 220, 20)
        stored = Image.fromarray(samples, "YCbCr")
    if planar:  # (Pillow writes contiguous samples; tifffile's LZW encoder is imagecodecs')
        tifffile.imwrite(tmp_path / "c.tif", np.moveaxis(np.asarray(stored), -1, 0), planarconfig="separate",
                         photometric="ycbcr" if mode == "YCbCr" else "cielab", compression=compression and "lzw",
                         **({"subsampling": (1, 1)} if mode == "YCbCr" else {}))  # fmt: skip
    else:
        stored.save(tmp_path / "c.tif", compression=compression)
    if not codecs:
        request.getfixturevalue("without_imagecodecs")  # (after writing)
    with tifffile.TiffFile(tmp_path / "c.tif") as tif:
        assert int(tif.pages[0].photometric) == (6 if mode == "YCbCr" else 8)
        assert int(tif.pages[0].planarconfig) == (2 if planar else 1)
    im = read_image(tmp_path / "c.tif", warn=False)
    np.testing.assert_array_equal(im.values, np.asarray(stored)[..., 0])
    assert im.bits_stored == 8 and any(f"{mode} image: its {kept} read as grey" in note for note in im.notes), im.notes


def test_a_ycbcr_tiff_of_subsampled_colour_in_lzw_is_not_called_corrupt(tmp_path):
    # tifffile decodes subsampled YCbCr only in JPEG; its refusal was said as "truncated or corrupt
    # (chroma subsampling not supported without JPEG compression)", of a valid file
    import tifffile

    samples = np.full((32, 32, 3), 128, np.uint8)
    samples[..., 0] = np.arange(32, dtype=np.uint8) * 8
    Image.fromarray(samples, "YCbCr").save(tmp_path / "s.tif", compression="tiff_lzw")
    with tifffile.TiffFile(tmp_path / "s.tif") as tif:
        offset = tif.pages[0].tags["YCbCrSubSampling"].valueoffset
    with open(tmp_path / "s.tif", "r+b") as f:  # (2, 2): no writer here makes one (its data stays 1, 1's)
        f.seek(offset)
        f.write(struct.pack("<HH", 2, 2))
    with pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "s.tif")
    assert str(caught.value) == (f"{tmp_path / 's.tif'}: YCbCr TIFF with subsampled colour (YCbCrSubSampling 2, 2) "
                                 "in LZW: not decoded here (tifffile decodes subsampled YCbCr only in JPEG of "
                                 "contiguous samples); save it as a greyscale or RGB TIFF, or a PNG")  # fmt: skip


def test_a_ycbcr_tiff_without_its_subsampling_tag_is_refused_as_subsampled_not_corrupt(tmp_path):
    # without YCbCrSubSampling, TIFF's default (2, 2) holds (tifffile's is_subsampled): page.subsampling
    # was None, unpacked, and the file said to be "truncated or corrupt (cannot unpack non-iterable NoneType ...)"
    import tifffile

    tifffile.imwrite(tmp_path / "n.tif", np.full((32, 32, 3), 128, np.uint8), photometric="ycbcr", compression="lzw")
    with tifffile.TiffFile(tmp_path / "n.tif") as tif:
        entry = tif.pages[0].tags["YCbCrSubSampling"].offset
    with open(tmp_path / "n.tif", "r+b") as f:  # the tag's code made an unknown one's (500: the entries stay in order)
        f.seek(entry)
        f.write(struct.pack("<H", 500))
    with tifffile.TiffFile(tmp_path / "n.tif") as tif:
        assert tif.pages[0].subsampling is None and tif.pages[0].is_subsampled
    with pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "n.tif")
    assert str(caught.value) == (f"{tmp_path / 'n.tif'}: YCbCr TIFF with subsampled colour (YCbCrSubSampling 2, 2, "
                                 "TIFF's default where the tag is missing) in LZW: not decoded here (tifffile decodes "
                                 "subsampled YCbCr only in JPEG of contiguous samples); save it as a greyscale or RGB "
                                 "TIFF, or a PNG")  # fmt: skip


@pytest.mark.parametrize("planar", [False, True])
def test_a_subsampled_ycbcr_tiff_in_alt_jpeg_is_read_as_jpeg_is(tmp_path, planar):
    # tifffile decodes Compression 33007 (and 34892) as JPEG, to RGB: its red was read as the luma
    # ("YCbCr image: its luma (Y) read as grey"), and one of planar samples, which tifffile refuses,
    # was said to be "truncated or corrupt" (its NotImplementedError)
    import tifffile

    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, np.arange(32, dtype=np.uint8)[:, None] * 6, 60
    # (contiguous: subsampled 2, 2; planar: 1, 1, set to 2, 2 below, refused before its data is read)
    tifffile.imwrite(tmp_path / "j.tif", np.moveaxis(rgb, -1, 0) if planar else rgb, photometric="ycbcr",
                     compression="jpeg", planarconfig="separate" if planar else None)  # fmt: skip
    with tifffile.TiffFile(tmp_path / "j.tif") as tif:
        tags = tif.pages[0].tags
        offsets = tags["Compression"].valueoffset, tags["YCbCrSubSampling"].valueoffset
    data = bytearray((tmp_path / "j.tif").read_bytes())
    data[offsets[0] : offsets[0] + 2] = struct.pack("<H", 33007)
    if planar:
        data[offsets[1] : offsets[1] + 4] = struct.pack("<HH", 2, 2)
    (tmp_path / "a.tif").write_bytes(data)
    if planar:
        with pytest.raises(ImageReadError) as caught:
            read_image(tmp_path / "a.tif")
        assert str(caught.value).startswith(f"{tmp_path / 'a.tif'}: YCbCr TIFF with subsampled colour "
                                            "(YCbCrSubSampling 2, 2) in ALT_JPEG of planar samples "
                                            "(PlanarConfiguration 2): not decoded here"), str(caught.value)  # fmt: skip
        return
    im, jpeg = read_image(tmp_path / "a.tif", warn=False), read_image(tmp_path / "j.tif", warn=False)
    np.testing.assert_array_equal(im.pixels, jpeg.pixels)
    assert not any("luma" in note for note in im.notes) and any("RGB image" in n for n in im.notes), im.notes


def test_tiff_white_is_zero_is_inverted(tmp_path):
    import tifffile

    values = np.arange(64, dtype=np.uint8).reshape(8, 8)
    tifffile.imwrite(tmp_path / "w.tif", values, photometric="miniswhite")
    im = read_image(tmp_path / "w.tif")
    assert im.photometric == "MONOCHROME1"
    assert im.pixels[0, 0] == 1.0 and im.pixels[-1, -1] == 0.0


def test_signed_tiff_white_is_zero_keeps_its_negative_values(tmp_path, seed):
    import tifffile

    values = np.random.default_rng(seed).integers(-3000, 3000, size=(12, 10)).astype(np.int16)
    tifffile.imwrite(tmp_path / "s.tif", values, photometric="miniswhite")
    im = read_image(tmp_path / "s.tif")
    assert im.photometric == "MONOCHROME1"
    v = values.astype(np.float64)
    np.testing.assert_allclose(im.pixels, (v.max() - v) / (v.max() - v.min()), atol=1e-6)


def _set_tiff_short_tag(path, name, value):
    """Rewrites one inline SHORT tag of the first page in place (for files no writer here makes)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags[name]
        offset, order = tag.valueoffset, tif.byteorder
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(int(value).to_bytes(2, "little" if order == "<" else "big"))


@pytest.fixture
def without_imagecodecs(monkeypatch):
    """tifffile as where imagecodecs is not installed (its pure-Python stand-in module): the
    imagecodecs of the test extra decodes LZW, JPEG 2000, ... itself."""
    import tifffile._imagecodecs
    import tifffile.tifffile

    monkeypatch.setattr(tifffile.tifffile, "imagecodecs", tifffile._imagecodecs)
    monkeypatch.setattr(tifffile.tifffile.TIFF, "DECOMPRESSORS", tifffile.tifffile.CompressionCodec(encode=False))


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("white_is_zero", [False, True])
def test_lzw_tiff_reads_without_imagecodecs(tmp_path, seed, bits, white_is_zero, without_imagecodecs):
    # LZW is common in radiograph exports; tifffile leaves it to imagecodecs, Pillow decodes it
    from PIL import Image

    top = (1 << bits) - 1
    values = np.random.default_rng(seed).integers(0, top + 1, size=(20, 28)).astype(np.uint8 if bits == 8 else np.uint16)
    values[0, 0], values[0, 1] = 0, top
    Image.fromarray(values).save(tmp_path / "l.tif", compression="tiff_lzw")
    if white_is_zero:
        _set_tiff_short_tag(tmp_path / "l.tif", "PhotometricInterpretation", 0)
    im = read_image(tmp_path / "l.tif")
    assert im.bits_stored == bits and im.photometric == ("MONOCHROME1" if white_is_zero else "MONOCHROME2")
    expected = values / top
    np.testing.assert_allclose(im.pixels, 1.0 - expected if white_is_zero else expected, atol=1e-6)


@pytest.mark.parametrize("dtype, max_sample", [("<u4", None), ("<u4", 4095), ("<i2", None), ("<i1", None),
                                              (">i1", None), ("<i4", None), ("<f4", None), ("<u2", 4095)])  # fmt: skip
def test_an_lzw_tiff_of_signed_or_32_bit_samples_reads_without_imagecodecs_as_with_it(tmp_path, seed, dtype,
                                                                                     max_sample, request):  # fmt: skip
    # Pillow, which decodes LZW where imagecodecs is missing, holds 32-bit unsigned samples as int32:
    # 3e9 read as -1294967296, the image over -2^31..2^31 - 1 and a MaxSampleValue of 4095 unheard;
    # 16-bit signed ones as int32 (over 32 bits) and 8-bit signed ones as bytes (-1 read as 255)
    import tifffile

    from xvertfast.io.read import full_range

    d = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if d.kind == "f":
        stored = rng.random((12, 9)).astype(d)
    else:
        top = max_sample if max_sample else np.iinfo(d).max
        stored = rng.integers(np.iinfo(d).min, top, (12, 9), endpoint=True, dtype=np.int64).astype(d)
        stored[0, :2] = np.iinfo(d).min, top
    tags = [(281, "H", 1, max_sample, False)] if max_sample else []
    tifffile.imwrite(tmp_path / "l.tif", stored, compression="lzw", byteorder=dtype[0], extratags=tags)

    def reading(path):
        rad = read_image(path, warn=False)
        return rad.values, rad.bits_stored, rad.meta.get("significant_bits"), full_range(rad), rad.notes

    with_it = reading(tmp_path / "l.tif")
    np.testing.assert_array_equal(with_it[0], stored)
    request.getfixturevalue("without_imagecodecs")
    without = reading(tmp_path / "l.tif")
    assert without[0].dtype == with_it[0].dtype == stored.dtype
    np.testing.assert_array_equal(without[0], stored)
    assert without[1:] == with_it[1:]
    if max_sample:
        assert without[1:4] == (12, 12, (0.0, 4095.0))


@pytest.mark.parametrize("dtype", [">i2", ">i4", ">f4"])
def test_an_lzw_tiff_of_big_endian_samples_pillow_misreads_is_refused_naming_imagecodecs(tmp_path, seed, dtype,
                                                                                        request, monkeypatch):  # fmt: skip
    # where libtiff decodes them, this Pillow swaps a big-endian page's signed or float samples'
    # bytes back again: 0.95 read as -3.2e28, silently (a float image's range came from that).
    # Refused before Pillow decodes the page (which took the time and memory of a whole image)
    import tifffile
    from PIL import TiffImagePlugin

    rng = np.random.default_rng(seed)
    stored = rng.random((12, 9)).astype(dtype) if dtype[1] == "f" else rng.integers(-1000, 1000, (12, 9)).astype(dtype)
    # (written with imagecodecs: tifffile's LZW encoder is its; run alone, this test wrote none)
    tifffile.imwrite(tmp_path / "b.tif", stored, compression="lzw", byteorder=">")
    request.getfixturevalue("without_imagecodecs")
    loads, load = [], TiffImagePlugin.TiffImageFile.load
    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "load", lambda im: loads.append(im) or load(im))
    with pytest.raises(ImageReadError, match=rf"b\.tif: cannot decode TIFF: Pillow, which decodes its LZW data here as "
                       rf"imagecodecs is not installed, misreads its big-endian {np.dtype(dtype).name} samples "
                       r"\(their bytes swapped\): pip install imagecodecs for tifffile to read it$"):  # fmt: skip
        read_image(tmp_path / "b.tif")
    assert not loads


def test_an_lzw_tiff_of_big_endian_uint16_reads_without_imagecodecs_in_the_machines_byte_order(tmp_path, seed,
                                                                                              request):  # fmt: skip
    # Pillow reads big-endian 16-bit unsigned samples right, as its I;16B: given as they were ('>u2'),
    # where tifffile with imagecodecs gives them in this machine's order
    import tifffile

    stored = np.random.default_rng(seed).integers(0, 65535, (12, 9), endpoint=True).astype(">u2")
    tifffile.imwrite(tmp_path / "b.tif", stored, compression="lzw", byteorder=">")
    with_it = read_image(tmp_path / "b.tif", warn=False)
    request.getfixturevalue("without_imagecodecs")
    without = read_image(tmp_path / "b.tif", warn=False)
    assert without.values.dtype == with_it.values.dtype == np.dtype(np.uint16) and without.values.dtype.isnative
    np.testing.assert_array_equal(without.values, stored)
    assert (without.bits_stored, without.notes) == (with_it.bits_stored, with_it.notes)


_XMP_ORIENTATION_6 = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-'
                      b'ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
                      b'</rdf:RDF></x:xmpmeta>')  # fmt: skip


@pytest.mark.parametrize("orientation, pillow_turns", [*((o, True) for o in [*range(1, 9), "xmp 6"]),
                                                       *((o, False) for o in (2, 3, 4, "xmp 6"))])  # fmt: skip
@pytest.mark.parametrize("kind", ["grey16", "rgb8"])
def test_an_lzw_tiff_of_any_orientation_reads_without_imagecodecs_as_with_it(tmp_path, seed, orientation, kind,
                                                                             pillow_turns, request, monkeypatch):  # fmt: skip
    # Pillow, which decodes LZW where imagecodecs is missing, turns a TIFF upright by its Orientation
    # as it loads it (by an XMP tiff:Orientation too where it has no tag, which tifffile reads as
    # stored): the reader turned it again, 3 read upside down, 6 and 8 half a turn off. A Pillow
    # that leaves the turning to its caller (pillow_turns False; this one, whose exif_transpose does
    # nothing, then fails on 5 to 8, its size already turned) must still be turned, once
    import tifffile
    from PIL import ImageOps

    rng = np.random.default_rng(seed)
    shape, dtype = ((12, 9), np.uint16) if kind == "grey16" else ((12, 9, 3), np.uint8)
    stored = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    if orientation == "xmp 6":
        tags = [(700, "B", len(_XMP_ORIENTATION_6), _XMP_ORIENTATION_6, False)]
    else:
        tags = [(0x0112, "H", 1, orientation, False)]
    tifffile.imwrite(tmp_path / "o.tif", stored, compression="lzw", photometric="rgb" if stored.ndim == 3 else None,
                     extratags=tags)  # fmt: skip
    with_it = read_image(tmp_path / "o.tif", warn=False)
    assert with_it.values.shape == ((9, 12) if orientation in (5, 6, 7, 8) else (12, 9))
    request.getfixturevalue("without_imagecodecs")
    if not pillow_turns:
        monkeypatch.setattr(ImageOps, "exif_transpose", lambda image, **kw: None)
    without = read_image(tmp_path / "o.tif", warn=False)
    assert (without.values.shape, without.values.dtype) == (with_it.values.shape, with_it.values.dtype)
    np.testing.assert_array_equal(without.values, with_it.values)
    assert without.notes == with_it.notes
    assert any("Orientation" in n for n in without.notes) == (orientation not in (1, "xmp 6"))


def test_tiff_compression_nobody_decodes_names_the_codec(tmp_path, without_imagecodecs):
    import tifffile

    tifffile.imwrite(tmp_path / "j.tif", np.zeros((8, 8), np.uint16), compression="zlib")
    _set_tiff_short_tag(tmp_path / "j.tif", "Compression", 34712)  # JPEG 2000
    with pytest.raises(ImageReadError, match=r"j\.tif: TIFF compression JPEG2000 .*pip install imagecodecs"):
        read_image(tmp_path / "j.tif")


def _tiff_with_a_damaged_strip(path, compression: str) -> np.ndarray:
    """Writes a TIFF of 8 strips in ``compression`` (with tifffile: its encoders are imagecodecs'),
    reads it back whole, then overwrites its 4th strip's bytes with 0xFF; returns what it held."""
    import tifffile

    values = (np.arange(256 * 200).reshape(256, 200) * 37 % 4096).astype(np.uint16)
    if compression == "jpeg":
        values = (values % 251).astype(np.uint8)
    tifffile.imwrite(path, values, compression=compression, rowsperstrip=32)
    with tifffile.TiffFile(path) as tif:
        offsets, counts = tif.pages[0].dataoffsets, tif.pages[0].databytecounts
    assert len(offsets) == 8
    written = read_image(path, warn=False).values
    with open(path, "r+b") as f:
        f.seek(offsets[3])
        f.write(b"\xff" * counts[3])
    return written


@pytest.mark.parametrize("compression", ["lzw", "jpeg"])
@pytest.mark.parametrize("imagecodecs", [True, False])
def test_tiff_with_a_damaged_strip_is_reported_damaged(tmp_path, compression, imagecodecs, request):
    # without imagecodecs Pillow decodes LZW and JPEG; a damaged strip then fails its load
    # ("decoder error -2"), and was reported as a codec missing (pip install imagecodecs)
    path = tmp_path / "d.tif"
    written = _tiff_with_a_damaged_strip(path, compression)
    if compression == "lzw":
        assert np.array_equal(written, (np.arange(256 * 200).reshape(256, 200) * 37 % 4096))
    if not imagecodecs:
        request.getfixturevalue("without_imagecodecs")  # (after writing: the encoders are imagecodecs')
    with pytest.raises(ImageReadError) as caught:
        read_image(path, warn=False)
    said = str(caught.value)
    assert said.startswith(f"{path}: cannot decode TIFF: truncated or corrupt ("), said
    assert "needs a codec" not in said and "pip install imagecodecs" not in said
    if not imagecodecs:  # what failed: Pillow, on its LZW / JPEG data
        assert f"Pillow, which decodes its {compression.upper()} data here as imagecodecs is not installed, " \
            "failed on its data: decoder error" in said, said  # fmt: skip


def test_a_cut_jpeg_tiff_is_called_truncated_not_decoded_grey(tmp_path):
    # libjpeg fills what is missing of a cut JPEG strip with grey and says nothing: a JPEG TIFF
    # cut short read as an image whose lower part was grey, silently
    import tifffile

    values = (np.arange(256 * 200).reshape(256, 200) % 251).astype(np.uint8)
    tifffile.imwrite(tmp_path / "full.tif", values, compression="jpeg", rowsperstrip=32)
    with tifffile.TiffFile(tmp_path / "full.tif") as tif:
        offsets, counts = tif.pages[0].dataoffsets, tif.pages[0].databytecounts
    cut = offsets[7] + counts[7] // 2  # inside the last strip (one cut before it fails on an empty strip)
    (tmp_path / "cut.tif").write_bytes((tmp_path / "full.tif").read_bytes()[:cut])
    with pytest.raises(ImageReadError, match=rf"cut\.tif: TIFF is truncated: its strip 8 of 8 ends at byte "
                       rf"{offsets[7] + counts[7]:,}, past the end of the file \({cut:,} bytes\)"):  # fmt: skip
        read_image(tmp_path / "cut.tif")


def _set_tiff_tag_entry(path, name: str, index: int, value: int = 0) -> None:
    """Rewrites entry ``index`` of an integer tag of the first page in place (a damaged entry)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        tag, order = tif.pages[0].tags[name], tif.byteorder
    size = {3: 2, 4: 4, 16: 8}[int(tag.dtype)]  # SHORT, LONG, LONG8
    data = bytearray(path.read_bytes())
    at = tag.valueoffset + index * size
    data[at : at + size] = int(value).to_bytes(size, "little" if order == "<" else "big")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize("field", ["StripOffsets", "StripByteCounts"])
def test_a_tiff_strip_with_no_data_is_refused_not_read_as_black(tmp_path, compression, field):
    # tifffile reads a strip at offset 0 or of 0 bytes as zeros: a damaged StripOffsets or
    # StripByteCounts entry gave an image with a black band, silently
    import tifffile

    values = (np.arange(64 * 40).reshape(64, 40) % 4096).astype(np.uint16) + 1
    tifffile.imwrite(tmp_path / "s.tif", values, compression=compression, rowsperstrip=8)
    _set_tiff_tag_entry(tmp_path / "s.tif", field, 3)  # the 4th strip's
    said = "at offset 0" if field == "StripOffsets" else "of 0 bytes"
    with pytest.raises(ImageReadError, match=rf"s\.tif: TIFF strip 4 of 8 is {said}: no data for its rows; corrupt"):
        read_image(tmp_path / "s.tif")
    # a single uncompressed strip whose byte count is lost: tifffile reads it by the image's size
    tifffile.imwrite(tmp_path / "one.tif", values)
    _set_tiff_tag_entry(tmp_path / "one.tif", "StripByteCounts", 0)
    assert np.array_equal(read_image(tmp_path / "one.tif").values, values)


def test_a_sparse_tiff_tile_is_refused_saying_what_a_sparse_file_is(tmp_path):
    # GDAL (SPARSE_OK=TRUE) leaves out a tile of nothing but nodata, writing offset 0 and 0 bytes
    # for it; tifffile reads it as zeros. A radiograph's tile so is refused as a damaged one is
    # (zeroed tables look the same): the message says how such a file is made whole
    import tifffile

    values = (np.arange(64 * 96).reshape(64, 96) % 4096).astype(np.uint16) + 1
    tifffile.imwrite(tmp_path / "s.tif", values, tile=(32, 32), compression="zlib")
    for field in ("TileOffsets", "TileByteCounts"):
        _set_tiff_tag_entry(tmp_path / "s.tif", field, 4)
    with pytest.raises(ImageReadError, match=r"s\.tif: TIFF tile 5 of 6 is at offset 0 and of 0 bytes: a tile left "
                       r"out \(a GDAL 'sparse' file's, or damaged tile tables\); refusing to read it as zeros: where "
                       r"the file is sparse, write it whole \(gdal_translate -co SPARSE_OK=FALSE\)"):  # fmt: skip
        read_image(tmp_path / "s.tif")


@pytest.mark.parametrize("layout", [{"rowsperstrip": 8, "compression": "zlib"}, {"tile": (32, 32), "compression": "zlib"},
                                    {"rowsperstrip": 8, "compression": "packbits"}])  # fmt: skip
def test_a_tiff_whose_size_needs_more_strips_than_it_lists_is_refused_not_padded_black(tmp_path, layout):
    # a damaged ImageLength or ImageWidth: tifffile fills the strips or tiles the size needs and
    # the tables do not list with zeros, and said only 'expected 6 segments, got 4' in a note
    import tifffile

    values = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16) + 1
    tifffile.imwrite(tmp_path / "s.tif", values, **layout)
    _set_tiff_tag_entry(tmp_path / "s.tif", "ImageLength", 0, 96)
    what = "tiles" if "tile" in layout else "strips"
    needed, listed = (6, 4) if "tile" in layout else (12, 8)
    with pytest.raises(ImageReadError, match=rf"s\.tif: TIFF of 64 x 96 \(width x height\) needs {needed} {what}, "
                       rf"its tags list {listed}: its size or its {what[:-1]} tables are damaged"):  # fmt: skip
        read_image(tmp_path / "s.tif")


def test_a_jpeg_tiff_strip_declaring_a_larger_image_is_refused_before_decoding(tmp_path):
    # max_pixels is checked on the TIFF's tags; imagecodecs allocates what the strip's JPEG frame
    # header says: a 64 x 64 TIFF whose strip claimed 50000 x 50000 had 2.5 GB allocated (and was
    # refused, where that failed, as 'not enough memory to decode it')
    import tifffile

    tifffile.imwrite(tmp_path / "j.tif", np.zeros((64, 64), np.uint8), compression="jpeg")
    data = bytearray((tmp_path / "j.tif").read_bytes())
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, 50000, 50000)  # SOF0: height, width
    (tmp_path / "j.tif").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"j\.tif: TIFF strip 1 of 1 holds a JPEG declaring 50000 x 50000 \(width "
                       r"x height\), larger than the strip's 64 x 64: corrupt; refusing to decode it"):  # fmt: skip
        read_image(tmp_path / "j.tif")
    # one holding a smaller JPEG than its strip (a damaged ImageWidth, here 65535: tifffile refuses
    # 640, but padded the strip to that with zeros and read it)
    tifffile.imwrite(tmp_path / "w.tif", np.zeros((64, 64), np.uint8), compression="jpeg")
    _set_tiff_tag_entry(tmp_path / "w.tif", "ImageWidth", 0, 65535)
    with pytest.raises(ImageReadError, match=r"w\.tif: TIFF strip 1 of 1 holds a JPEG declaring 64 x 64 \(width "
                       r"x height\), smaller than the strip's 65535 x 64: corrupt; refusing to decode it"):  # fmt: skip
        read_image(tmp_path / "w.tif")
    # strips and tiles as tifffile writes them (the last strip shorter) are read as before
    values = (np.arange(100 * 72).reshape(100, 72) % 251).astype(np.uint8)
    for options in ({"rowsperstrip": 16}, {"tile": (32, 32)}):
        tifffile.imwrite(tmp_path / "k.tif", values, compression="jpeg", **options)
        assert read_image(tmp_path / "k.tif").shape == (100, 72)


def test_a_tiled_jpeg_tiff_whose_edge_tiles_hold_only_the_image_part_is_read(tmp_path):
    # some writers encode an edge tile's JPEG as only the part inside the image (libtiff reads it,
    # with a warning; tifffile decodes it right): it was refused as 'holds a JPEG declaring 8 x 32,
    # smaller than the tile's 32 x 32'. A tile inside the image holding a smaller one still is not
    import imagecodecs
    import tifffile

    values = (np.arange(100 * 72).reshape(100, 72) % 251).astype(np.uint8)

    def tiles(inner=None):
        for k, (y, x) in enumerate((y, x) for y in range(0, 100, 32) for x in range(0, 72, 32)):
            tile = values[y:y + 32, x:x + 32]  # (cut at the image's edge)
            yield imagecodecs.jpeg8_encode(tile[:inner, :inner] if k == 0 else tile, level=95)

    for name, inner in (("edge.tif", None), ("inner.tif", 16)):
        with tifffile.TiffWriter(tmp_path / name) as tif:
            tif.write(tiles(inner), shape=values.shape, dtype=np.uint8, compression="jpeg", tile=(32, 32),
                      photometric="minisblack")  # fmt: skip
    read = read_image(tmp_path / "edge.tif")
    assert read.shape == (100, 72) and np.abs(read.values.astype(int) - values).max() < 8
    with pytest.raises(ImageReadError, match=r"inner\.tif: TIFF tile 1 of 12 holds a JPEG declaring 16 x 16 \(width x "
                       r"height\), smaller than the tile's 32 x 32: corrupt"):  # fmt: skip
        read_image(tmp_path / "inner.tif")


def test_a_jpeg_tiff_strip_padded_to_whole_jpeg_blocks_is_read(tmp_path):
    # a writer may declare a strip's JPEG as tall as its whole 8- or 16-row blocks (1001 rows as
    # 1008): tifffile keeps the rows the tags ask for, libtiff reads it with a warning; it was
    # refused as 'larger than the strip's 64 x 1001'. A JPEG a block larger still is refused
    import tifffile

    values = (np.arange(1001 * 64).reshape(1001, 64) % 251).astype(np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", values, compression="jpeg", rowsperstrip=1001)
    data = bytearray((tmp_path / "p.tif").read_bytes())
    for name, height in (("padded.tif", 1008), ("over.tif", 1024)):
        struct.pack_into(">H", data, data.index(b"\xff\xc0") + 5, height)  # SOF0: the height
        (tmp_path / name).write_bytes(bytes(data))
    assert np.array_equal(read_image(tmp_path / "padded.tif").values, read_image(tmp_path / "p.tif").values)
    with pytest.raises(ImageReadError, match=r"over\.tif: TIFF strip 1 of 1 holds a JPEG declaring 64 x 1024"):
        read_image(tmp_path / "over.tif")


def test_tiff_pillow_may_lack_the_codec_for_says_so(tmp_path, monkeypatch, request):
    # a compression Pillow names, yet its libtiff may be built without (WebP in some wheels):
    # it fails at load as a damaged file does; where Pillow is not seen to decode it, both are said
    from xvertfast.io import decode_tiff

    path = tmp_path / "d.tif"
    _tiff_with_a_damaged_strip(path, "lzw")
    request.getfixturevalue("without_imagecodecs")
    monkeypatch.setattr(decode_tiff, "_pillow_has_codec", lambda compression: False)
    with pytest.raises(ImageReadError, match=r"d\.tif: cannot decode TIFF: Pillow, .* failed on it \(decoder error "
                       r"-2\): this Pillow may lack the LZW codec \(pip install imagecodecs\), or the file is "
                       r"truncated or corrupt$"):  # fmt: skip
        read_image(path, warn=False)


@pytest.mark.parametrize("name, data, options, what, lacked", [
    ("half.tif", np.float16, {"compression": "lzw"}, "its LZW data", "MINISBLACK pages of 16-bit float samples"),
    ("alpha.tif", (2, np.uint16), {"compression": "lzw", "photometric": "minisblack", "extrasamples": [2]},
     "its LZW data", "MINISBLACK pages of 2 16-bit unsigned samples a pixel"),
    ("deep.tif", np.uint16, {"compression": "jpeg", "bitspersample": 16}, "its JPEG data", "16-bit JPEG data"),
    ("packed.tif", np.uint16, {"bitspersample": 10}, "its 10-bit packed samples",
     "MINISBLACK pages of 10-bit unsigned samples"),
])  # fmt: skip
def test_a_valid_tiff_whose_layout_pillow_lacks_is_not_called_corrupt(tmp_path, seed, name, data, options, what,
                                                                      lacked, request, capfd):  # fmt: skip
    # where imagecodecs is missing and Pillow does not decode the page's layout (16-bit grey +
    # alpha, half floats, 10-bit samples: "cannot identify image file"; 16-bit JPEG: a decoder
    # error) the file was said to be "truncated or corrupt", though tifffile read its tags and
    # imagecodecs reads it (uncompressed, said to be "NONE data"). Nothing goes to stderr: a 16-bit
    # JPEG one was given to Pillow, whose libtiff wrote "JPEGPreDecode: Improper JPEG data
    # precision" there, a line naming no file of a batch, before the file's error
    import tifffile

    samples, dtype = data if isinstance(data, tuple) else (1, data)
    values = np.random.default_rng(seed).integers(0, 1024, size=(14, 22, samples)[: 2 + (samples > 1)]).astype(dtype)
    tifffile.imwrite(tmp_path / name, values, **options)
    read_image(tmp_path / name, warn=False)  # (with imagecodecs)
    request.getfixturevalue("without_imagecodecs")
    capfd.readouterr()
    with pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / name, warn=False)
    assert str(caught.value) == (f"{tmp_path / name}: cannot decode TIFF: Pillow, which decodes {what} here as "
                                 f"imagecodecs is not installed, does not decode {lacked}, though its tags read as a "
                                 "valid TIFF's: pip install imagecodecs for tifffile to read it")  # fmt: skip
    assert capfd.readouterr().err == ""


def test_pillow_has_codec_writes_and_reads_one_back():
    from xvertfast.io.decode_tiff import _pillow_has_codec

    assert _pillow_has_codec("tiff_lzw") and _pillow_has_codec("jpeg") and _pillow_has_codec("packbits")
    assert not _pillow_has_codec("tiff_thunderscan")  # (Pillow's libtiff writes none: not known)
    assert not _pillow_has_codec("no such compression")


def test_tiff_too_large_for_pillows_bomb_check_says_so(tmp_path, monkeypatch, request):
    # where max_pixels allows more than Pillow's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS,
    # about 179 Mpx), an LZW TIFF Pillow decodes for want of imagecodecs is refused by Pillow at open:
    # that was reported as a codec missing. Here the limit is lowered instead of writing 179 Mpx
    import tifffile

    values = (np.arange(48 * 64).reshape(48, 64) % 4096).astype(np.uint16)
    tifffile.imwrite(tmp_path / "b.tif", values, compression="lzw")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert np.array_equal(read_image(tmp_path / "b.tif").values, values)  # tifffile: max_pixels its only limit
    request.getfixturevalue("without_imagecodecs")
    with pytest.raises(ImageReadError, match=r"b\.tif: too large for Pillow, which decodes its LZW data here as "
                       r"imagecodecs is not installed: Image size \(3072 pixels\) exceeds limit of 2000 pixels, "
                       r".*; pip install imagecodecs for tifffile to decode it \(within max_pixels\)$"):  # fmt: skip
        read_image(tmp_path / "b.tif")


def test_zstd_tiff_reads_without_imagecodecs(tmp_path, request):
    # tifffile's own ZSTD wants Python 3.14's compression.zstd: before it, its ImportError
    # ("No module named 'compression'") was reported as the file truncated or corrupt
    import tifffile

    from xvertfast.io.decode_tiff import _pillow_has_codec

    if not _pillow_has_codec("zstd"):
        pytest.skip("this Pillow's libtiff has no ZSTD")
    values = (np.arange(64 * 64).reshape(64, 64) % 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", values, compression="zstd", rowsperstrip=16)
    request.getfixturevalue("without_imagecodecs")
    assert np.array_equal(read_image(tmp_path / "z.tif", warn=False).values, values)


@pytest.mark.parametrize("imagecodecs", [True, False])
def test_tiff_out_of_memory_is_said_so_not_corrupt(tmp_path, monkeypatch, imagecodecs, request):
    # a MemoryError while tifffile, or Pillow in its stead, decodes the pixels is the machine's
    # limit, not the file's damage: read_image says "not enough memory", as for the other formats
    import tifffile
    from PIL import ImageFile

    values = (np.arange(48 * 64).reshape(48, 64) % 4096).astype(np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", values, compression="lzw")

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    if imagecodecs:
        monkeypatch.setattr(tifffile.TiffPage, "asarray", out_of_memory)
    else:
        request.getfixturevalue("without_imagecodecs")
        monkeypatch.setattr(ImageFile.ImageFile, "load", out_of_memory)
    with pytest.raises(ImageReadError, match=r"m\.tif: not enough memory to decode it$"):
        read_image(tmp_path / "m.tif", warn=False)


def test_float_tiff_with_nan_is_refused(tmp_path):
    import tifffile

    values = np.ones((4, 4), np.float32)
    values[1, 2] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", values)
    with pytest.raises(ImageReadError, match=r"nan\.tif: float TIFF contains 1 NaN"):
        read_image(tmp_path / "nan.tif")


@pytest.mark.parametrize(("low", "high"), [(-1.7e308, 1.7e308), (1e308, 1.7e308), (np.float32(2e38), np.float32(3.4e38))])
@pytest.mark.parametrize("white_is_zero", [False, True])
def test_a_float_tiff_whose_range_or_sums_pass_the_largest_float_reads_finite(tmp_path, seed, low, high, white_is_zero):
    # finite values whose range (high - low) or flip (high + low - v) pass the largest float of
    # their type: every pixel read as NaN, silently (a RuntimeWarning of overflow at most)
    import tifffile

    dtype = np.float32 if isinstance(low, np.float32) else np.float64
    share = np.random.default_rng(seed).random((8, 9))
    values = ((low / 2 + (high / 2 - low / 2) * share) * 2).astype(dtype)  # (uniform() overflows)
    values[0, :2] = (low, high)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="miniswhite" if white_is_zero else "minisblack")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        im = read_image(tmp_path / "f.tif", warn=False)
    v = values.astype(np.float64) / 2
    expected = (v - v.min()) / (v.max() - v.min())
    np.testing.assert_allclose(im.pixels, 1 - expected if white_is_zero else expected, atol=1e-6)
    assert np.isfinite(im.values).all() and im.values.dtype == dtype


def test_jpeg(tmp_path):
    values = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "x.jpg", quality=95)
    im = read_image(tmp_path / "x.jpg")
    assert im.source_format == "jpeg" and im.bits_stored == 8 and im.shape == (32, 32)


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_colour_tiffs_keep_their_depth_interleaved_or_planar(tmp_path, seed, planar):
    import tifffile

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 4096, (3, 20, 24), dtype=np.uint16)  # 12-bit data in 16-bit samples
    stored = rgb if planar == "separate" else np.moveaxis(rgb, 0, -1)
    tifffile.imwrite(tmp_path / "c.tif", stored, photometric="rgb", planarconfig=planar)
    im = read_image(tmp_path / "c.tif", warn=False)
    assert im.shape == (20, 24) and im.values.dtype == np.uint16 and im.bits_stored == 12
    np.testing.assert_array_equal(im.values, _luma(np.moveaxis(rgb, 0, -1)))
    # a planar page's shape is (3, H, W): the pixel limit is on H x W, before anything is decoded
    with pytest.raises(ImageReadError, match=r"24 x 20 \(width x height\) = 480 pixels, above the limit of 479"):
        read_image(tmp_path / "c.tif", max_pixels=479)
    assert read_image(tmp_path / "c.tif", max_pixels=480, warn=False).shape == (20, 24)


def test_a_colour_dicom_becomes_monochrome2_luminance(tmp_path, seed):
    pydicom = pytest.importorskip("pydicom")

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (16, 18, 3), dtype=np.uint8)
    ds = pydicom.dcmread(SAMPLE_DICOM)
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.Rows, ds.Columns = 7, 16, 18
    ds.PixelData = rgb.tobytes()
    ds.save_as(tmp_path / "c.dcm")
    im = read_image(tmp_path / "c.dcm", warn=False)
    assert im.photometric == "MONOCHROME2" and im.bits_stored == 8 and im.values.dtype == np.uint8
    np.testing.assert_array_equal(im.values, _luma(rgb))


@pytest.mark.parametrize("kind", ["colour", "colour, empty", "grey", "colour RLE"])
def test_a_colour_dicom_without_planar_configuration_is_read_as_interleaved(tmp_path, seed, kind):
    # PlanarConfiguration is type 1C, often missing from a real export's secondary captures: such a file was refused
    # ("invalid DICOM image header: Missing required element: (0028,0006) 'Planar Configuration'"). It is read as 0,
    # as DICOM readers do, with a note where the reading is in doubt: not of grey samples (planes read as
    # interleaved would differ within a pixel), nor of RLE (its segments are planes, whatever the element says)
    pydicom = pytest.importorskip("pydicom")
    from pydicom.uid import RLELossless

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (16, 18, 3), dtype=np.uint8)
    if kind == "grey":
        rgb[...] = rgb[..., :1]
    ds = pydicom.dcmread(SAMPLE_DICOM)
    ds.PhotometricInterpretation, ds.SamplesPerPixel, ds.PlanarConfiguration = "RGB", 3, 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.Rows, ds.Columns = 8, 8, 7, 16, 18
    ds.PixelData = rgb.tobytes()
    if kind == "colour RLE":
        ds.compress(RLELossless)
    if kind == "colour, empty":
        ds.PlanarConfiguration = None
    else:
        del ds.PlanarConfiguration
    ds.save_as(tmp_path / "c.dcm")
    im = read_image(tmp_path / "c.dcm", warn=False)
    np.testing.assert_array_equal(im.values, _luma(rgb))
    assert "PlanarConfiguration" not in im.meta or im.meta.PlanarConfiguration is None  # (the file's header)
    said = [note for note in im.notes if "PlanarConfiguration" in note]
    if kind.startswith("colour") and kind != "colour RLE":
        assert said == [f"{tmp_path / 'c.dcm'}: {'an empty' if 'empty' in kind else 'no'} PlanarConfiguration "
                        "(0028,0006), which DICOM requires of 3 samples per pixel: read as 0, each pixel's samples "
                        "together, as DICOM readers take it (check the image)"]  # fmt: skip
    else:
        assert said == []


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_colour_images_become_luminance_with_a_warning(tmp_path, mode):
    rows, cols = np.mgrid[0:10, 0:12]
    rgb = np.stack([cols * 20, rows * 25, (rows + cols) % 3 * 80], axis=-1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB").convert(mode)
    img.save(tmp_path / "c.png")
    with pytest.warns(UserWarning, match="converted to luminance"):
        im = read_image(tmp_path / "c.png")
    assert im.pixels.ndim == 2 and im.pixels.shape == (10, 12)
    name = {"RGB": "RGB", "RGBA": "RGBA", "P": "palette"}[mode]
    assert im.notes == [f"{tmp_path / 'c.png'}: {name} image converted to luminance (grayscale)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # batch jobs: the notes travel with the image, no warning
        quiet = read_image(tmp_path / "c.png", warn=False)
    assert quiet.notes == im.notes
    np.testing.assert_array_equal(quiet.pixels, im.pixels)
    if mode != "P":  # (a palette is a quantisation: only its shape is certain)
        # ITU-R 601 luma (no single channel matches it), min-max scaled, within one grey level
        luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        want = (luma - luma.min()) / (luma.max() - luma.min())
        np.testing.assert_allclose(im.pixels, want, rtol=0, atol=1.0 / (luma.max() - luma.min()))


@pytest.mark.parametrize("kind", ["png", "png, one pixel's blue off", "png RGBA", "tif uint16", "tif float32",
                                  "tif float64"])  # fmt: skip
def test_a_grey_image_stored_as_rgb_is_said_to_lose_nothing_only_where_none_is_lost(tmp_path, kind):
    """A grey radiograph saved as RGB (an export, a screenshot) was noted "RGB image converted to
    luminance (grayscale)" as a colour one is, a reader left to wonder what was lost: where its
    channels are equal and the grey read is that channel exactly, the note says nothing was. Not
    where one pixel differs, nor RGBA (its alpha is lost), nor float64 samples (read as float32)."""
    import tifffile

    grey = np.mgrid[0:10, 0:12][1] * 20 + 5
    dtype = {"tif uint16": np.uint16, "tif float32": np.float32, "tif float64": np.float64}.get(kind, np.uint8)
    rgb = (np.stack([grey] * 3, axis=-1) / (1000 if "float" in kind else 1)).astype(dtype)  # (float64: 0.005, ...)
    if "off" in kind:
        rgb[3, 4, 2] += 1
    path = tmp_path / ("c.tif" if kind.startswith("tif") else "c.png")
    if kind.startswith("tif"):
        tifffile.imwrite(path, rgb, photometric="rgb")
    else:
        Image.fromarray(rgb, "RGB").convert("RGBA" if "RGBA" in kind else "RGB").save(path)
    im = read_image(path, warn=False)
    said = f"{path}: {'RGBA' if 'RGBA' in kind else 'RGB'} image converted to luminance (grayscale)"
    if kind in ("png", "tif uint16", "tif float32"):
        np.testing.assert_array_equal(im.values, rgb[..., 0])
        said += ": its red, green and blue are equal in every pixel, so the conversion lost nothing"
    assert im.notes == [said]


@pytest.mark.parametrize("kind", ["png", "tif"])
@pytest.mark.parametrize("off", [None, 0, -1])
def test_a_grey_rgb_image_is_compared_to_its_last_row(tmp_path, kind, off):
    """The channels are compared a block of rows at a time (KEPT_ROWS), not copied whole: a grey
    image taller than a few blocks whose one differing pixel is in its first or last row (the last,
    short block) is not said to have lost nothing; with none differing it is."""
    import tifffile

    from xvertfast.io.decode_common import KEPT_ROWS

    rows = 2 * KEPT_ROWS + 37
    rgb = np.repeat((np.arange(rows * 8) % 251).reshape(rows, 8, 1), 3, axis=-1).astype(np.uint8)
    if off is not None:
        rgb[off, 5, 1] += 1
    path = tmp_path / f"c.{kind}"
    if kind == "tif":
        tifffile.imwrite(path, rgb, photometric="rgb")
    else:
        Image.fromarray(rgb, "RGB").save(path)
    said = f"{path}: RGB image converted to luminance (grayscale)"
    kept = ": its red, green and blue are equal in every pixel, so the conversion lost nothing"
    assert read_image(path, warn=False).notes == [said + ("" if off is not None else kept)]


def test_multi_page_tiff_reads_the_first_page_with_a_note(tmp_path, seed):
    import tifffile

    pages = np.random.default_rng(seed).integers(0, 4096, size=(3, 16, 20)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    with pytest.warns(UserWarning, match="TIFF has 3 pages; reading the first"):
        im = read_image(tmp_path / "stack.tif")
    np.testing.assert_array_equal(im.values, pages[0])
    assert im.notes == [f"{tmp_path / 'stack.tif'}: TIFF has 3 pages; reading the first"]
    assert read_image(tmp_path / "stack.tif", warn=False).notes == im.notes


def test_a_tiff_whose_first_page_is_smaller_than_a_later_one_says_so_in_its_note(tmp_path, seed):
    # a thumbnail stored first without NewSubfileType marking it is read as the image (it cannot be
    # told from a stack of views); the note said only "reading the first", the 20 x 16 thumbnail
    # enhanced with no word of the 80 x 64 image after it
    import tifffile

    rng = np.random.default_rng(seed)
    thumb, full = rng.integers(0, 4096, (16, 20), np.uint16), rng.integers(0, 4096, (64, 80), np.uint16)
    with tifffile.TiffWriter(tmp_path / "t.tif") as tif:
        tif.write(thumb)
        tif.write(np.zeros((8, 10), np.uint16))
        tif.write(full)
    rad = read_image(tmp_path / "t.tif", warn=False)
    np.testing.assert_array_equal(rad.values, thumb)
    assert rad.notes == [f"{tmp_path / 't.tif'}: TIFF has 3 pages; reading the first (20 x 16, width x height), "
                         "though page 3 is larger (80 x 64): where page 1 is a thumbnail not marked as one "
                         "(NewSubfileType), save the full image as a TIFF of its own"]  # fmt: skip


def _patch_tag_type(path, page: int, code: int, type_: int) -> None:
    """Gives tag ``code`` of ``page`` (0 first) of a little-endian classic TIFF the field type
    ``type_`` in place (99: none TIFF defines, a damaged tag)."""
    import struct

    data = bytearray(path.read_bytes())
    offset = struct.unpack_from("<I", data, 4)[0]
    for _ in range(page):
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * struct.unpack_from("<H", data, offset)[0])[0]
    entries = [offset + 2 + 12 * i for i in range(struct.unpack_from("<H", data, offset)[0])]
    (entry,) = [e for e in entries if struct.unpack_from("<H", data, e)[0] == code]
    struct.pack_into("<H", data, entry + 2, type_)
    path.write_bytes(bytes(data))


def test_a_damaged_tag_in_a_later_page_not_read_adds_no_note(tmp_path, seed):
    # the pages after page 1 are parsed to find a larger one (the note's thumbnail words) while the
    # file's tifffile log is kept: a bad tag in page 3, which is not read, added a note of its own
    # (and "with warnings") to a stack of equal pages
    import tifffile

    path = tmp_path / "stack.tif"
    pages = np.random.default_rng(seed).integers(0, 4096, size=(3, 16, 20)).astype(np.uint16)
    with tifffile.TiffWriter(path) as tif:
        for values in pages:
            tif.write(values, software="xvertfast test")
    _patch_tag_type(path, 2, 305, 99)  # Software
    rad = read_image(path, warn=False)
    np.testing.assert_array_equal(rad.values, pages[0])
    assert rad.notes == [f"{path}: TIFF has 3 pages; reading the first"]


@pytest.mark.parametrize("bits", [2, 4])
@pytest.mark.parametrize("photometric", ["minisblack", "miniswhite"])
def test_a_2_or_4_bit_tiff_reads_over_0_to_255_as_pillow_reads_it(tmp_path, seed, bits, photometric):
    # tifffile gives 4-bit samples as 0..15; read at 8 bits, an output of another tool was scored
    # on 0..255 (all but black) and a MinIsWhite one flipped within it (240..255, all but white),
    # where Pillow (which decodes such a page without imagecodecs) and a 4-bit PNG give 0..255
    import tifffile
    from PIL import Image

    from xvertfast.io.read import full_range

    top = (1 << bits) - 1
    stored = np.random.default_rng(seed).integers(0, top + 1, (24, 30)).astype(np.uint8)
    stored[0, :2] = 0, top
    tifffile.imwrite(tmp_path / "g.tif", stored, bitspersample=bits, photometric=photometric)
    rad = read_image(tmp_path / "g.tif", warn=False)
    scaled = stored * (255 // top)
    np.testing.assert_array_equal(rad.values, scaled if photometric == "minisblack" else 255 - scaled)
    with Image.open(tmp_path / "g.tif") as im:
        np.testing.assert_array_equal(rad.values, np.asarray(im))
    assert (rad.bits_stored, full_range(rad)) == (8, (0.0, 255.0))
    np.testing.assert_allclose(rad.pixels, (scaled if photometric == "minisblack" else 255 - scaled) / 255, atol=1e-6)


@pytest.mark.parametrize("samples, planar, photometric", [(3, "contig", "minisblack"), (3, "separate", "minisblack"),
                                                      (5, "contig", "miniswhite")])  # fmt: skip
def test_a_grey_tiff_with_extra_samples_reads_its_first_sample_as_the_grey(tmp_path, seed, samples, planar,
                                                                             photometric):  # fmt: skip
    # a MinIsBlack page of 3 samples (the grey and two extra: a mask, another channel) was read as
    # RGB, its luminance mixing the extra samples into the grey under an 'RGB image' note; one of 5
    # was refused ('expected a single-channel image')
    import tifffile

    rng = np.random.default_rng(seed)
    stack = rng.integers(0, 4096, (samples, 24, 30)).astype(np.uint16)
    stack[0, 0, :2] = 0, 4095
    tifffile.imwrite(tmp_path / "g.tif", stack if planar == "separate" else np.moveaxis(stack, 0, -1),
                     photometric=photometric, planarconfig=planar)  # fmt: skip
    rad = read_image(tmp_path / "g.tif", warn=False)
    np.testing.assert_array_equal(rad.values, stack[0] if photometric == "minisblack" else 4095 - stack[0])
    assert rad.bits_stored == 12
    assert rad.notes == [f"{tmp_path / 'g.tif'}: grey TIFF with {samples - 1} extra samples per pixel: its first "
                         "sample read as the grey, the others left out"]  # fmt: skip


@pytest.mark.parametrize("extra, planar, grey", [(2, "contig", False), (3, "separate", False), (2, "contig", True)])
def test_an_rgb_tiff_with_extra_samples_reads_the_luminance_of_its_colours(tmp_path, seed, extra, planar, grey):
    # an RGB page with 2 or more extra samples (alpha and a mask) was refused: "expected a
    # single-channel image, decoded shape (24, 30, 5)", with no word of what to do. Its extra
    # samples are lost whatever its colours: a grey one (red, green and blue equal) was also said
    # "... so the conversion lost nothing", after "the others left out"
    import tifffile

    from xvertfast.io.decode_common import luminance

    rng = np.random.default_rng(seed)
    stack = rng.integers(0, 4096, (3 + extra, 24, 30)).astype(np.uint16)
    if grey:
        stack[1] = stack[2] = stack[0]
    tifffile.imwrite(tmp_path / "c.tif", stack if planar == "separate" else np.moveaxis(stack, 0, -1),
                     photometric="rgb", planarconfig=planar, extrasamples=[2] + [0] * (extra - 1))  # fmt: skip
    rad = read_image(tmp_path / "c.tif", warn=False)
    np.testing.assert_array_equal(rad.values, luminance(np.moveaxis(stack[:3], 0, -1), [], ""))
    assert rad.notes == [f"{tmp_path / 'c.tif'}: RGB TIFF with {extra} extra samples per pixel: its luminance read "
                         "from the red, green and blue, the others left out",
                         f"{tmp_path / 'c.tif'}: RGB image converted to luminance (grayscale)"]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
@pytest.mark.parametrize("photometric", ["minisblack", "miniswhite"])
def test_a_16_or_32_bit_tiff_whose_max_sample_value_records_12_bits_reads_at_12_bits(tmp_path, seed, photometric,
                                                                                     dtype):  # fmt: skip
    # MaxSampleValue 4095 records 12-bit data in 16-bit samples, as a PNG's sBIT does; it was
    # not read: a dark 12-bit image (values up to 1300) was guessed 11-bit, a MinIsWhite one
    # flipped within 11 bits and its outputs written over 0..2047. In 32-bit samples it was not
    # read either: bits_stored 32, full_range 0..2^32 - 1 (its outputs scored near black)
    import tifffile

    from xvertfast.io.read import full_range

    stored = np.random.default_rng(seed).integers(0, 1301, (24, 30)).astype(dtype)
    stored[0, :2] = 0, 1300
    tifffile.imwrite(tmp_path / "d.tif", stored, photometric=photometric, extratags=[(281, "H", 1, 4095, False)])
    rad = read_image(tmp_path / "d.tif", warn=False)
    assert (rad.bits_stored, full_range(rad)) == (12, (0.0, 4095.0))
    assert rad.values.dtype == dtype
    np.testing.assert_array_equal(rad.values, stored if photometric == "minisblack" else 4095 - stored)
    # values past the tag's 4095: it is wrong, and the depth is as without it: guessed from the
    # values (16-bit samples), the container's (32-bit)
    tifffile.imwrite(tmp_path / "w.tif", stored * 50, photometric=photometric, extratags=[(281, "H", 1, 4095, False)])
    assert read_image(tmp_path / "w.tif", warn=False).bits_stored == (16 if dtype == np.uint16 else 32)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
@pytest.mark.parametrize("photometric", ["minisblack", "miniswhite"])
def test_a_max_sample_value_of_255_records_8_bit_data_in_wider_samples(tmp_path, seed, photometric, dtype):
    # as a PNG's sBIT 8 does: only 9 to 15 (31) bits were heard, so 8-bit data in 16-bit samples
    # was scored on 0..65535 (near black), and in 32-bit ones read at 32 bits, a MinIsWhite one
    # flipped within them (4294967295 - v)
    import tifffile

    from xvertfast.io.read import full_range

    stored = np.random.default_rng(seed).integers(0, 201, (24, 30)).astype(dtype)
    stored[0, :2] = 0, 200
    tifffile.imwrite(tmp_path / "e.tif", stored, photometric=photometric, extratags=[(281, "H", 1, 255, False)])
    rad = read_image(tmp_path / "e.tif", warn=False)
    assert (rad.bits_stored, rad.meta.get("significant_bits"), full_range(rad)) == (8, 8, (0.0, 255.0))
    assert rad.values.dtype == dtype
    np.testing.assert_array_equal(rad.values, stored if photometric == "minisblack" else 255 - stored)


@pytest.mark.parametrize("tag", [(281, "s", 0, "4095", False), (281, "H", 0, (), False)], ids=["text", "empty"])
def test_a_tiff_whose_max_sample_value_is_damaged_reads_as_one_without_it(tmp_path, seed, tag):
    # a MaxSampleValue of text or of no values records no depth: the file was refused as corrupt
    # ("cannot decode TIFF: TypeError ..." or "max() arg is an empty sequence"), readable as it is
    import tifffile

    stored = np.random.default_rng(seed).integers(0, 1301, (24, 30)).astype(np.uint16)
    stored[0, :2] = 0, 1300
    tifffile.imwrite(tmp_path / "d.tif", stored, extratags=[tag])
    rad = read_image(tmp_path / "d.tif", warn=False)
    np.testing.assert_array_equal(rad.values, stored)
    assert rad.bits_stored == 11  # guessed from the values, as without the tag


@pytest.mark.parametrize("tag, bits, recorded, scale", [(1300, 11, None, 4095), (2047, 11, 11, 2047), (4095, 12, 12, 4095)])
def test_only_a_max_sample_value_of_2_to_the_n_minus_1_records_a_depth(tmp_path, seed, tag, bits, recorded, scale):
    # TIFF 6.0 calls MaxSampleValue statistical, and some writers put the data's own maximum there:
    # 1300 was taken for 11 bits recorded, so another tool's dark output writing its real maximum
    # was scored on 0..2047, not on its 12-bit input's 0..4095 (full_range's depth_hint unheard)
    import tifffile

    from xvertfast.io.read import full_range

    stored = np.random.default_rng(seed).integers(0, 1301, (24, 30)).astype(np.uint16)
    stored[0, :2] = 0, 1300
    tifffile.imwrite(tmp_path / "d.tif", stored, extratags=[(281, "H", 1, tag, False)])
    rad = read_image(tmp_path / "d.tif", warn=False)
    np.testing.assert_array_equal(rad.values, stored)
    assert (rad.bits_stored, rad.meta.get("significant_bits")) == (bits, recorded)
    assert full_range(rad, 12) == (0.0, float(scale))


def test_a_max_sample_value_of_one_value_a_sample_records_the_grey_s_depth(tmp_path, seed):
    # a grey page with extra samples has a MaxSampleValue a sample, the grey's first: the largest
    # (another sample's 65535) recorded no depth, and 12-bit data was guessed 11-bit
    import tifffile

    stack = np.random.default_rng(seed).integers(0, 1301, (24, 30, 3)).astype(np.uint16)
    stack[0, :2, 0] = 0, 1300
    tifffile.imwrite(tmp_path / "g.tif", stack, photometric="minisblack", planarconfig="contig",
                     extratags=[(281, "H", 3, (4095, 65535, 65535), False)])  # fmt: skip
    rad = read_image(tmp_path / "g.tif", warn=False)
    np.testing.assert_array_equal(rad.values, stack[..., 0])
    assert (rad.bits_stored, rad.meta.get("significant_bits")) == (12, 12)


def test_raw_jsrt(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 4096, size=(2048, 2048)).astype(">u2")
    values[0, 0], values[0, 1] = 0, 4095
    path = tmp_path / "JPCLN001.IMG"
    values.tofile(path)
    im = read_image(path)
    assert im.source_format == "jsrt" and im.bits_stored == 12 and im.photometric == "MONOCHROME1"
    np.testing.assert_allclose(im.pixels, 1.0 - values.astype(np.float64) / 4095.0, atol=1e-6)


@pytest.mark.parametrize(("dtype", "top", "cause"), [("<u2", 4095, "bytes are likely swapped"),
                                                     (">u2", 65535, "16-bit data, or not a JSRT image")])
def test_raw_jsrt_values_past_12_bits_are_refused_with_the_likely_cause(tmp_path, seed, dtype, top, cause):
    # they were clipped to 4095: a little-endian or 16-bit file read as a mostly black image, silently
    values = np.random.default_rng(seed).integers(0, top + 1, size=(2048, 2048)).astype(dtype)
    values[0, 0] = top  # (past 12 bits read big-endian, as 0xFF0F or 0xFFFF; and little-endian for 16 bits)
    path = tmp_path / "JPCLN002.IMG"
    values.tofile(path)
    with pytest.raises(ImageReadError, match=f"{re.escape(str(path))}.*exceed 4095.*{cause}"):
        read_image(path)
    assert os.path.getsize(path) == 2048 * 2048 * 2


# ---- DICOM ------------------------------------------------------------------------------------


def make_dicom(path, values, photometric="MONOCHROME2", bits=12, frames=1, slope=1.0, intercept=0.0,
               syntax=None, pixel_data=True, signed=False):  # fmt: skip
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.PatientName, ds.PatientID = "Test^Patient", "XVF-001"
    ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    ds.Modality = "CR"
    ds.Rows, ds.Columns = values.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, int(signed)
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if frames > 1:
        ds.NumberOfFrames = frames
    if pixel_data:
        ds.PixelData = values.astype("<i2" if signed else "<u2").tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax or ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_dicom_values_are_read_from_the_bits_its_high_bit_says(tmp_path, seed, signed, big_endian):
    # BitsStored 12 with HighBit 15: each value in bits 4..15 of its word (PS3.5 8.1.1), the bits
    # below it unused (here noise). pydicom reads the low 12 bits whatever HighBit says: an
    # image of noise and the values' low 8 bits, silently
    from pydicom.uid import ExplicitVRBigEndian

    rng = np.random.default_rng(seed)
    values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, size=(24, 40))
    values[0, :2] = (-2048, 2047) if signed else (0, 4095)
    words = ((values & 0xFFF) << 4) | rng.integers(0, 16, size=values.shape)
    path = tmp_path / "high.dcm"
    ds = make_dicom(path, values, bits=12, signed=signed)
    ds.HighBit = 15
    ds.PixelData = words.astype(">u2" if big_endian else "<u2").tobytes()
    if big_endian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.save_as(path, enforce_file_format=True, little_endian=not big_endian, implicit_vr=False)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert im.bits_stored == 12 and any("HighBit 15" in note and "bits 4 to 15" in note for note in im.notes)


@pytest.mark.parametrize("signed", [False, True])
def test_dicom_high_bit_its_values_contradict_is_said_and_the_low_bits_read(tmp_path, seed, signed):
    # a writer's HighBit 15 over 12-bit values stored in the low bits (the 4 above them 0, or, signed,
    # copies of the sign): read there, where the values plainly are, as pydicom reads them, with a note
    values = np.random.default_rng(seed).integers(-2048 if signed else 0, 2048 if signed else 4096, size=(24, 40))
    values[0, :2] = (-2048, 2047) if signed else (0, 4095)
    path = tmp_path / "low.dcm"
    ds = make_dicom(path, values, bits=12, signed=signed)
    ds.HighBit = 15
    ds.save_as(path, enforce_file_format=True)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert any("HighBit 15" in note and "low 12 bits" in note for note in im.notes), im.notes


@pytest.mark.parametrize("big_endian", [False, True])
def test_dicom_signed_values_stored_low_without_their_sign_copied_up_are_read_there(tmp_path, seed, big_endian):
    # HighBit 15 over signed 12-bit values in the low bits, the 4 bits above them left 0, not copies
    # of the sign (as many writers store them): only sign copies counted as "the values sit low"
    # for a signed image, so these were read from bits 4..15, garbled
    from pydicom.uid import ExplicitVRBigEndian

    values = np.random.default_rng(seed).integers(-2048, 2048, size=(24, 40))
    values[0, :3] = (-2048, -1, 2047)
    path = tmp_path / "low.dcm"
    ds = make_dicom(path, values, bits=12, signed=True)
    ds.HighBit = 15
    ds.PixelData = (values & 0xFFF).astype(">u2" if big_endian else "<u2").tobytes()
    if big_endian:
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.save_as(path, enforce_file_format=True, little_endian=not big_endian, implicit_vr=False)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert any("HighBit 15" in note and "above the low 12 are unset" in note for note in im.notes), im.notes


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("placed", ["high", "low"])
def test_rle_dicom_high_bit_is_read_as_native_pixel_data(tmp_path, seed, signed, placed):
    # RLE keeps whole words, but pydicom keeps only the low BitsStored bits of what it decodes:
    # values in bits 4..15 (HighBit 15, BitsStored 12) came out as their low 8 bits and noise,
    # silently, where the same words uncompressed were read from bits 4..15
    from pydicom.uid import RLELossless

    rng = np.random.default_rng(seed)
    values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, size=(24, 40))
    values[0, :2] = (-2048, 2047) if signed else (0, 4095)
    words = values & 0xFFF
    if placed == "high":
        words = (words << 4) | rng.integers(0, 16, size=values.shape)
    path = tmp_path / "rle.dcm"
    ds = make_dicom(path, values, bits=12, signed=signed)
    ds.HighBit, ds.PixelData = 15, words.astype("<u2").tobytes()
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(path, enforce_file_format=True)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    said = "bits 4 to 15 of each word" if placed == "high" else "above the low 12 are unset"
    assert im.bits_stored == 12 and any("HighBit 15" in note and said in note for note in im.notes), im.notes


@pytest.mark.parametrize("signed", [False, True])
def test_an_rle_dicom_under_another_high_bit_is_decoded_once(tmp_path, seed, signed, monkeypatch):
    # its frame was decoded at BitsStored (pydicom's low bits), then again as whole words to see
    # where the values lie: twice the decoding of a file that is read once
    from pydicom.uid import RLELossless

    from xvertfast.io import dicom_codecs

    rng, decode = np.random.default_rng(seed), dicom_codecs.pixel_array
    for placed in ("high", "low"):
        values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, size=(24, 40))
        values[0, :2] = (-2048, 2047) if signed else (0, 4095)
        words = values & 0xFFF
        words = (words << 4) | rng.integers(0, 16, size=values.shape) if placed == "high" else words
        path = tmp_path / f"{placed}.dcm"
        ds = make_dicom(path, values, bits=12, signed=signed)
        ds.HighBit, ds.PixelData = 15, words.astype("<u2").tobytes()
        ds.compress(RLELossless, encoding_plugin="pydicom")
        ds.save_as(path, enforce_file_format=True)
        decoded = []
        monkeypatch.setattr(dicom_codecs, "pixel_array", lambda *args: decoded.append(1) or decode(*args))
        im = read_image(path, warn=False)
        np.testing.assert_array_equal(im.values, values)
        assert len(decoded) == 1, placed
        assert im.meta.BitsStored == 12 and im.meta.HighBit == 15 and im.meta.PixelRepresentation == int(signed)
        assert len(im.notes) == 1 and "HighBit 15" in im.notes[0]


def test_a_damaged_rle_dicom_under_another_high_bit_is_refused_after_one_decoding(tmp_path, seed, monkeypatch):
    # its frame, failing as whole words, was decoded again at the header's own depth for the
    # error's words: twice the decoding of a file that fails. Refused as under HighBit 11, once
    from pydicom.encaps import encapsulate, generate_frames
    from pydicom.uid import RLELossless

    from xvertfast.io import dicom_codecs

    values, decode = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)), dicom_codecs.pixel_array
    for high in (15, 11):
        path = tmp_path / f"{high}.dcm"
        ds = make_dicom(path, values, bits=12)
        ds.HighBit, ds.PixelData = high, (values << (high - 11)).astype("<u2").tobytes()
        ds.compress(RLELossless, encoding_plugin="pydicom")
        frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
        struct.pack_into("<I", frame, 8, len(frame) + 100)  # its second segment's offset: past the frame's end
        ds.PixelData = encapsulate([bytes(frame)])
        ds.save_as(path, enforce_file_format=True)
        decoded = []
        monkeypatch.setattr(dicom_codecs, "pixel_array", lambda *args: decoded.append(1) or decode(*args))
        with pytest.raises(ImageReadError, match=rf"{high}\.dcm: cannot decode DICOM pixel data \(RLE Lossless\): "
                           r"truncated or corrupt\? (?s:.*)RLE segment"):  # fmt: skip
            read_image(path, warn=False)
        assert len(decoded) == 1, high


def test_an_rle_dicom_whose_high_bit_is_not_a_number_is_refused_as_an_uncompressed_one(tmp_path, seed):
    # HighBit read while the RLE frame was decoded as whole words (_rle_words) raised inside the
    # decoding's handler, so its error came back wrapped: "x.dcm: cannot decode DICOM pixel data
    # (RLE Lossless): truncated or corrupt? (x.dcm: DICOM HighBit is not a number: [15, 0])", the
    # path said twice and the file called damaged, where uncompressed it reads as below
    from pydicom.uid import RLELossless

    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40))
    for name in ("native", "rle"):
        path = tmp_path / f"{name}.dcm"
        ds = make_dicom(path, values, bits=12)
        ds.HighBit, ds.PixelData = 15, (values << 4).astype("<u2").tobytes()
        if name == "rle":
            ds.compress(RLELossless, encoding_plugin="pydicom")
        ds["HighBit"].value = [15, 0]
        ds.save_as(path, enforce_file_format=True)
        with pytest.raises(ImageReadError) as caught:
            read_image(path, warn=False)
        assert str(caught.value) == f"{path}: DICOM HighBit is not a number: [15, 0]", name


@pytest.mark.parametrize("representation, said", [
    (None, r"Missing required element: \(0028,0103\) 'Pixel Representation'"),
    (2, r"A \(0028,0103\) 'Pixel Representation' value of '2' is invalid, it must be 0 or 1"),
])  # fmt: skip
def test_an_rle_dicom_under_another_high_bit_without_a_valid_pixel_representation_is_refused(
        tmp_path, seed, representation, said):  # fmt: skip
    # its frame, decoded once as whole words, was decoded with PixelRepresentation said to be 0,
    # so pydicom never checked the file's own: a missing or invalid one read silently as unsigned
    # (and a missing one came back in the header as 0), where the same file under HighBit 11 is refused
    from pydicom.uid import RLELossless

    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40))
    for high in (15, 11):
        path = tmp_path / f"{high}.dcm"
        ds = make_dicom(path, values, bits=12)
        ds.HighBit, ds.PixelData = high, (values << (high - 11)).astype("<u2").tobytes()
        ds.compress(RLELossless, encoding_plugin="pydicom")
        if representation is None:
            del ds.PixelRepresentation
        else:
            ds.PixelRepresentation = representation
        ds.save_as(path, enforce_file_format=True)
        with pytest.raises(ImageReadError, match=rf"{high}\.dcm: invalid DICOM image header: {said}"):
            read_image(path, warn=False)


@pytest.mark.parametrize("bits_stored, said", [
    ("", r"Missing required element: \(0028,0101\) 'Bits Stored'"),
    (0, r"'Bits Stored' value of '0' is invalid"),
])  # fmt: skip
def test_an_rle_dicom_under_another_high_bit_without_a_valid_bits_stored_is_refused(
        tmp_path, seed, bits_stored, said):  # fmt: skip
    # its frame, decoded as whole words with BitsStored said to be BitsAllocated, got past pydicom's
    # check of the file's own BitsStored: an empty one read as an all-black image with no note
    # (its low 0 bits), a 0 as a bare OverflowError, where pydicom refuses both headers
    from pydicom.uid import RLELossless

    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40))
    path = tmp_path / "rle.dcm"
    ds = make_dicom(path, values, bits=12)
    ds.HighBit, ds.PixelData = 15, (values << 4).astype("<u2").tobytes()
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.BitsStored = bits_stored if bits_stored != "" else None
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageReadError, match=rf"rle\.dcm: invalid DICOM image header: .*{said}"):
        read_image(path, warn=False)


def test_a_compressed_frame_that_will_not_decode_to_whole_words_is_read_as_decoded(tmp_path, seed, monkeypatch):
    # a codec that refuses the frame at BitsStored = BitsAllocated (where HighBit is looked into)
    # leaves the values it decoded, with a note, not a refusal of a file that reads
    from pydicom.uid import RLELossless

    from xvertfast.io import dicom_codecs

    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40))
    path = tmp_path / "rle.dcm"
    ds = make_dicom(path, values, bits=12)
    ds.HighBit = 15
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(path, enforce_file_format=True)
    decode = dicom_codecs.pixel_array

    def refusing_other_depths(ds, syntax):
        if ds.BitsStored != 12:
            raise RuntimeError("does not support")
        return decode(ds, syntax)

    monkeypatch.setattr(dicom_codecs, "pixel_array", refusing_other_depths)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert any("does not decode to whole words" in note for note in im.notes), im.notes
    assert im.meta.BitsStored == 12 and im.meta.HighBit == 15  # (the header put back)


@pytest.mark.parametrize("high", [5, 16, 40])
def test_a_high_bit_no_layout_has_is_said_and_the_low_bits_read(tmp_path, seed, high):
    # HighBit below BitsStored - 1 or past the word (BitsAllocated 16): read from the low bits as
    # before, but it was read so without a word, where every other HighBit slip gets a note
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40))
    path = tmp_path / "odd.dcm"
    ds = make_dicom(path, values, bits=12)
    ds.HighBit = high
    ds.save_as(path, enforce_file_format=True)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert any(f"HighBit {high} with BitsStored 12 and BitsAllocated 16: no such layout" in note
               for note in im.notes), im.notes  # fmt: skip


def test_an_animated_png_is_read_at_its_first_frame_with_a_note(tmp_path, seed):
    # its later frames were dropped without a word, where a multi-page TIFF says it reads its first
    first = np.random.default_rng(seed).integers(0, 256, size=(24, 40)).astype(np.uint8)
    frames = [Image.fromarray(first), Image.fromarray(255 - first), Image.fromarray(first // 2)]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    im = read_image(tmp_path / "a.png", warn=False)
    np.testing.assert_array_equal(im.values, first)
    assert any("a.png: animated PNG with 3 frames; reading the first" in note for note in im.notes), im.notes


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("depth", [14, 12])
def test_a_jpeg2000_frame_under_another_high_bit_is_read_as_decoded(tmp_path, seed, signed, depth):
    # a JPEG codestream holds the samples, not the native words: HighBit places nothing there.
    # Decoded as whole words and shifted (right for RLE alone), a 14-bit codestream under
    # BitsStored 12, HighBit 15 was read from its top 12 bits: another image (pydicom's 693_J2KI
    # so edited read -1210..-847 for -3995..1812)
    pytest.importorskip("openjpeg", reason="encoding JPEG 2000 needs pylibjpeg-openjpeg (the test extra)")
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    half = 1 << (depth - 1)
    low, high = (-half, half) if signed else (0, 2 * half)
    values = np.random.default_rng(seed).integers(low, high, size=(40, 56))
    values[0, :2] = (low, high - 1)
    path = tmp_path / "j2k.dcm"
    make_dicom(path, values, bits=depth, signed=signed)
    ds = pydicom.dcmread(path)
    ds.compress(JPEG2000Lossless)
    ds.BitsStored, ds.HighBit = 12, 15
    ds.save_as(path, enforce_file_format=True)
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    if depth == 14:  # read at the codestream's 14 bits, signed or not (test_dicom_codecs' deeper tests), one note
        said = [note for note in im.notes if "its JPEG 2000 codestream holds 14-bit samples, deeper than BitsStored "
                "12 (HighBit 15 places nothing in a codestream)" in note]  # fmt: skip
        assert len(said) == 1 and len(im.notes) == 1 and im.bits_stored == 14, im.notes
        return
    said = [note for note in im.notes if "HighBit 15 with BitsStored 12: a JPEG 2000 codestream holds the samples" in note]
    assert len(said) == 1 and said[0].endswith("read as decoded"), im.notes


def test_a_compressed_frame_under_another_high_bit_names_its_codestream_by_what_it_is():
    # the note named the codestream by the transfer syntax, any syntax but JPEG 2000 and JPEG-LS
    # being "JPEG" (an MPEG frame too); it now says the kind its header was read as, else the
    # syntax's own name (no frame found, or another codec's: none pydicom decodes today), after
    # the article its first sound takes (it said "a MPEG2 ...")
    import pydicom
    from pydicom.uid import HTJ2KLossless, JPEGLSLossless, MPEG2MPML

    from xvertfast.io.decode_dicom import _below_high_bit, _Codestream

    ds = pydicom.Dataset()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 15
    arr = np.arange(12, dtype=np.uint16).reshape(3, 4)
    for syntax, codestream, kind in ((JPEGLSLossless, _Codestream(b"", "JPEG-LS", 12, 3, 4), "a JPEG-LS"),
                                     (MPEG2MPML, None, "an MPEG2 Main Profile / Main Level"),
                                     (HTJ2KLossless, None, "a High-Throughput JPEG 2000 Image Compression "
                                      "(Lossless Only)")):  # fmt: skip
        notes = []
        assert _below_high_bit(ds, syntax, codestream, arr, 12, False, "x.dcm", notes) is arr
        assert notes == [f"x.dcm: HighBit 15 with BitsStored 12: {kind} codestream holds the samples themselves, "
                         "where HighBit places nothing: read as decoded"]  # fmt: skip


def make_float_dicom(path, values: np.ndarray, photometric: str = "MONOCHROME2"):
    """A DICOM of float pixel data: FloatPixelData for float32 ``values``, DoubleFloatPixelData
    for float64 (as a parametric map stores them)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    element = "FloatPixelData" if values.dtype == np.float32 else "DoubleFloatPixelData"
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.30", generate_uid()  # (a parametric map's)
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = 8 * values.dtype.itemsize
    setattr(ds, element, values.tobytes())
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.mark.parametrize("element", ["FloatPixelData", "DoubleFloatPixelData"])
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_a_dicom_of_float_pixel_data_is_read_and_flipped_within_its_own_values(tmp_path, seed, element, photometric):
    # DoubleFloatPixelData was refused as 'no pixel data (not an image, e.g. a report)'; a
    # MONOCHROME1 float image was flipped within the range of 32-bit integers (4294967295 - v),
    # its values moved far from the data and rounded at 1e-6
    dtype = np.float32 if element == "FloatPixelData" else np.float64
    values = np.random.default_rng(seed).uniform(-2.0, 3.0, size=(12, 16)).astype(dtype)
    ds = make_float_dicom(tmp_path / "f.dcm", values, photometric)
    im = read_image(tmp_path / "f.dcm", warn=False)
    flipped = photometric == "MONOCHROME1"
    expected = values.max() + values.min() - values if flipped else values  # (outside [0, 1]: its own range)
    np.testing.assert_allclose(im.values, expected, rtol=0, atol=4 * np.finfo(dtype).eps)
    v = values.astype(np.float64)
    scaled = (v - v.min()) / (v.max() - v.min())
    np.testing.assert_allclose(im.pixels, 1 - scaled if flipped else scaled, atol=1e-6)
    values[3, 4] = np.nan  # said as the data's, not as a 'Modality LUT Sequence' it has not got
    setattr(ds, element, values.tobytes())
    ds.save_as(tmp_path / "f.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"f\.dcm: its float pixel data contain 1 NaN or infinite value\(s\)$"):
        read_image(tmp_path / "f.dcm", warn=False)


@pytest.mark.parametrize("kind", ["FloatPixelData", "DoubleFloatPixelData", "float tiff"])
def test_monochrome1_floats_in_0_1_are_flipped_within_0_1(tmp_path, seed, kind):
    # floats in [0, 1] are on the scale stored floats are scored on (full_range), as integers are
    # on their stored range: flipped within their own values (0.7 - v here), a MONOCHROME1 float
    # output of 0.1..0.6 read as 0.1..0.6, not 0.4..0.9
    import tifffile

    from xvertfast.io.read import full_range

    dtype = np.float64 if kind == "DoubleFloatPixelData" else np.float32
    values = np.random.default_rng(seed).uniform(0.1, 0.6, size=(12, 16)).astype(dtype)
    values[0, :2] = 0.1, 0.6
    if kind == "float tiff":
        tifffile.imwrite(tmp_path / "f.tif", values, photometric="miniswhite")
        im = read_image(tmp_path / "f.tif", warn=False)
    else:
        make_float_dicom(tmp_path / "f.dcm", values, "MONOCHROME1")
        im = read_image(tmp_path / "f.dcm", warn=False)
    assert im.photometric == "MONOCHROME1" and full_range(im) == (0.0, 1.0)
    np.testing.assert_allclose(im.values, 1 - values, rtol=0, atol=2 * np.finfo(dtype).eps)
    np.testing.assert_allclose(im.pixels, (0.6 - values) / 0.5, atol=1e-6)  # the pixels as before


@pytest.mark.parametrize("kind", ["FloatPixelData", "DoubleFloatPixelData", "float32 tiff", "float64 tiff"])
def test_monochrome1_floats_a_rounding_past_1_are_flipped_within_0_1(tmp_path, seed, kind):
    # outputs=DIR takes floats up to 1 + FLOAT_SCALE_SLACK as on [0, 1]; flipped within [0, 1] only
    # strictly inside it, an output topping at nextafter(1, 2) was flipped within its own values
    # (0.1 + 1ulp - v) and scored 0.1 off (reviewer's /tmp/rev1/m1.py)
    import tifffile

    dtype = np.float64 if kind.startswith(("Double", "float64")) else np.float32
    values = np.random.default_rng(seed).uniform(0.1, 0.9, size=(12, 16)).astype(dtype)
    values[0, :2] = 0.1, np.nextafter(dtype(1), dtype(2))
    if kind.endswith("tiff"):
        tifffile.imwrite(tmp_path / "f.tif", values, photometric="miniswhite")
        im = read_image(tmp_path / "f.tif", warn=False)
    else:
        make_float_dicom(tmp_path / "f.dcm", values, "MONOCHROME1")
        im = read_image(tmp_path / "f.dcm", warn=False)
    assert im.values.dtype == dtype
    np.testing.assert_allclose(im.values, 1 - values, rtol=0, atol=2 * np.finfo(dtype).eps)


def test_dicom_monochrome1_with_rescale(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 1024, size=(24, 40)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 1023
    make_dicom(tmp_path / "a.dcm", values, photometric="MONOCHROME1", bits=10, slope=2.0, intercept=-5.0)
    im = read_image(tmp_path / "a.dcm")
    assert im.source_format == "dicom" and im.bits_stored == 10 and im.photometric == "MONOCHROME1"
    np.testing.assert_allclose(im.pixels, 1.0 - values / 1023.0, atol=1e-6)
    np.testing.assert_allclose(im.values, (1023 - values) * 2.0 - 5.0)
    assert str(im.meta.PatientName) == "Test^Patient"


def test_dicom_signed_monochrome1_keeps_its_negative_values(tmp_path, seed):
    # 12-bit two's complement (-2048..2047), bone dark: flipping within 0..4095 would
    # saturate every negative value
    values = np.random.default_rng(seed).integers(-2048, 2048, size=(20, 30)).astype(np.int16)
    values[0, 0], values[0, 1] = -2048, 2047
    make_dicom(tmp_path / "s.dcm", values, photometric="MONOCHROME1", bits=12, signed=True)
    im = read_image(tmp_path / "s.dcm")
    assert im.photometric == "MONOCHROME1"
    np.testing.assert_allclose(im.pixels, (2047.0 - values) / 4095.0, atol=1e-6)
    assert len(np.unique(im.pixels)) == len(np.unique(values))


def test_dicom_monochrome1_is_flipped_after_a_modality_lut_table(tmp_path):
    # a non-linear Modality LUT Sequence: the flip must follow the table, not precede it
    import pydicom

    values = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint16)
    make_dicom(tmp_path / "t.dcm", values, photometric="MONOCHROME1", bits=2, slope=None)
    ds = pydicom.dcmread(tmp_path / "t.dcm")
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [4, 0, 16])  # LUTDescriptor: 4 entries from 0, 16 bits
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "US", [0, 10, 100, 1000])  # LUTData
    ds.ModalityLUTSequence = [item]
    ds.save_as(tmp_path / "t.dcm")
    im = read_image(tmp_path / "t.dcm")
    table = np.array([0.0, 10.0, 100.0, 1000.0])
    np.testing.assert_allclose(im.values, 1000.0 - table[values])
    np.testing.assert_allclose(im.pixels, (1000.0 - table[values]) / 1000.0, atol=1e-6)


def _packed_12_bits(values: np.ndarray) -> bytes:
    """``values`` packed two to three bytes (ACR-NEMA's BitsAllocated 12, as GDCM packs them)."""
    flat = np.append(values.ravel(), [0] * (values.size % 2)).astype(np.uint16)
    first, second = flat[0::2], flat[1::2]
    packed = np.stack([first & 0xFF, first >> 8 | (second & 0xF) << 4, second >> 4], axis=1).astype(np.uint8)
    return packed.tobytes()[: -(-values.size * 3 // 2)]


@pytest.mark.parametrize("shape, signed", [((12, 10), False), ((7, 5), False), ((12, 10), True)])
def test_an_acr_nema_dicom_of_12_bit_packed_pixels_is_read(tmp_path, seed, shape, signed):
    # BitsAllocated 12 (old ACR-NEMA archives, read without file meta): refused as "invalid DICOM image
    # header: A (0028,0100) 'Bits Allocated' value of '12' is invalid, it must be 1 or a multiple of 8"
    rng = np.random.default_rng(seed)
    values = rng.integers(-2048 if signed else 0, 2048 if signed else 4096, size=shape)
    ds = make_dicom(tmp_path / "full.dcm", values, signed=signed)
    ds.BitsAllocated, ds.PixelData = 12, _packed_12_bits(values & 0xFFF)
    ds["PixelData"].VR = "OW"
    del ds.file_meta
    ds.save_as(tmp_path / "acr.dcm", implicit_vr=True, little_endian=True, enforce_file_format=False)
    rad = read_image(tmp_path / "acr.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and rad.notes == [f"{tmp_path / 'acr.dcm'}: BitsAllocated 12: its 12-bit values are "
                                                   "packed two to three bytes (ACR-NEMA's layout, retired from DICOM): "
                                                   "unpacked"]  # fmt: skip
    ds.PixelData = ds.PixelData[:-4]
    held = len(ds.PixelData) + len(ds.PixelData) % 2  # (written padded to an even length)
    ds.save_as(tmp_path / "cut.dcm", implicit_vr=True, little_endian=True, enforce_file_format=False)
    with pytest.raises(ImageReadError, match=rf"cut\.dcm: truncated or corrupt DICOM: its pixel data of 12-bit values "
                       rf"packed two to three bytes \(BitsAllocated 12\) holds {held} bytes, its header "
                       rf"declares {values.size} values \({-(-values.size * 3 // 2)} bytes\): cut short\? copy it "
                       r"again from its source$"):  # fmt: skip
        read_image(tmp_path / "cut.dcm")


def test_a_dicom_cut_within_its_native_pixel_data_is_called_truncated_with_both_sizes(tmp_path):
    # pydicom's words came through: "cannot decode DICOM pixel data (Explicit VR Little Endian): truncated or
    # corrupt? (The number of bytes of pixel data is less than expected (3746 vs 8192 bytes) - the dataset may be
    # corrupted, have an invalid group 0028 element value, or the transfer syntax may be incorrect)"
    make_dicom(tmp_path / "full.dcm", np.zeros((24, 40), np.uint16))
    data = (tmp_path / "full.dcm").read_bytes()
    start = data.rindex(b"\xe0\x7f\x10\x00OW") + 12  # (its value's first byte)
    for cut, held in ((len(data) - 1000, "920 bytes"), (start + 1, "1 byte")):
        (tmp_path / "cut.dcm").write_bytes(data[:cut])
        with pytest.raises(ImageReadError, match=rf"cut\.dcm: truncated or corrupt DICOM: its pixel data \(Explicit VR "
                           rf"Little Endian\) holds {held}, its header declares 1,920 bytes \(Columns x Rows 40 x 24, "
                           r"BitsAllocated 16\): cut short\? copy it again from its source$"):  # fmt: skip
            read_image(tmp_path / "cut.dcm")


@pytest.mark.parametrize("cut, where", [(500, r"in its fragment 1, of 1,920 bytes, 1,428 of them there"),
                                        (8, r"after 2 items, before the delimiter that ends them")])  # fmt: skip
def test_a_dicom_cut_within_its_encapsulated_pixel_data_is_called_truncated_there(tmp_path, cut, where):
    # a compressed archive's commonest damage, a copy stopped midway: pydicom gives up on the whole data
    # set, and it was "its file meta header reads, but no data set after it", beside pydicom's warning
    # "End of file reached before delimiter (FFFE,E0DD) found in file ..."
    from pydicom.encaps import encapsulate

    ds = make_dicom(tmp_path / "full.dcm", np.zeros((24, 40), np.uint16), syntax="1.2.840.10008.1.2.4.90",
                    pixel_data=False)  # fmt: skip
    ds.PixelData = encapsulate([bytes(1920)])  # (its frame's bytes: never decoded)
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "full.dcm", enforce_file_format=True)
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-cut])
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ImageReadError) as refused:
        warnings.simplefilter("always")
        read_image(tmp_path / "cut.dcm")
    assert re.fullmatch(rf".*cut\.dcm: truncated or corrupt DICOM: the file ends at byte {len(data) - cut:,}, within "
                        rf"its encapsulated pixel data \(7FE0,0010\) \({where}\): copy it again from its source",
                        str(refused.value)), str(refused.value)  # fmt: skip
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize("shape, bits", [((24, 40), 12), ((7, 5), 8)])  # (8 bits, 35 bytes: written padded to 36)
def test_a_dicom_whose_rows_is_short_of_its_pixel_data_is_read_as_its_header_says_with_a_note(tmp_path, seed, shape,
                                                                                               bits):  # fmt: skip
    # Rows one smaller than the rows its pixel data hold: read under pydicom's "The pixel data is 1920
    # bytes long, which indicates it contains 80 bytes of excess padding to be removed", nothing of the
    # image's last row left out
    values = np.random.default_rng(seed).integers(0, 1 << bits, size=shape)
    ds = make_dicom(tmp_path / "full.dcm", values, bits=bits)
    if bits == 8:
        ds.BitsAllocated, ds.PixelData = 8, values.astype(np.uint8).tobytes()
    ds.Rows = shape[0] - 1
    ds.save_as(tmp_path / "r.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rad = read_image(tmp_path / "r.dcm", warn=False)
    assert not caught, [str(w.message) for w in caught]
    np.testing.assert_array_equal(rad.values, values[:-1])
    held, size = (1920, "40 x 23, BitsAllocated 16") if bits == 12 else (36, "5 x 6, BitsAllocated 8")
    assert rad.notes == [f"{tmp_path / 'r.dcm'}: its pixel data hold {held:,} bytes, 1 row more than its header "
                         f"declares (Columns x Rows {size}): read as its Rows says, the last row of the data left out "
                         f"(check the image: where they are its bottom, its Rows (0028,0010) should be {shape[0]})"]


def test_a_dicom_whose_pixel_data_hold_frames_its_header_does_not_say_is_read_from_the_first_saying_so(tmp_path, seed):
    # two frames under a header without NumberOfFrames: the first read under pydicom's "... contains 128
    # bytes of excess padding to be removed", nothing of the second
    values = np.random.default_rng(seed).integers(0, 4096, size=(2, 8, 8))
    ds = make_dicom(tmp_path / "full.dcm", values[0])
    ds.PixelData = values.astype("<u2").tobytes()
    ds.save_as(tmp_path / "f.dcm")
    rad = read_image(tmp_path / "f.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values[0])
    assert rad.notes == [f"{tmp_path / 'f.dcm'}: its pixel data hold 256 bytes, 8 rows more than its header declares "
                         "(Columns x Rows 8 x 8, BitsAllocated 16): read as its Rows says, the last 8 rows of the data "
                         "left out (check the image: where they are its bottom, its Rows (0028,0010) should be 16; "
                         "where the data are 2 frames, its NumberOfFrames (0028,0008) does not say so: the first is "
                         "read)"]  # fmt: skip


def test_zeros_after_a_dicoms_pixels_as_long_as_a_row_and_a_column_are_padding_read_as_before(tmp_path, seed):
    # as pydicom's MR_small_padded.dcm has them (128 zero bytes after 64 x 64 16-bit values): read under
    # pydicom's warning of padding, as before, not said to be a row more, nor refused as a wrong Columns
    values = np.random.default_rng(seed).integers(1, 4096, size=(8, 8))
    ds = make_dicom(tmp_path / "full.dcm", values)
    ds.PixelData = ds.PixelData + bytes(16)
    ds.save_as(tmp_path / "z.dcm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rad = read_image(tmp_path / "z.dcm", warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert not rad.notes and [str(w.message) for w in caught] == [f"{tmp_path / 'z.dcm'}: The pixel data is 144 bytes "
                                                                  "long, which indicates it contains 16 bytes of "
                                                                  "excess padding to be removed"]  # fmt: skip


def test_a_dicom_whose_columns_is_short_of_its_pixel_data_is_refused_not_read_sheared(tmp_path, seed):
    # Columns 39 over rows of 40: each row read from where the one before should have gone on, a
    # sheared image, under pydicom's warning of "48 bytes of excess padding to be removed"
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40))
    ds = make_dicom(tmp_path / "full.dcm", values)
    ds.Columns = 39
    ds.save_as(tmp_path / "c.dcm")
    with pytest.raises(ImageReadError, match=r"c\.dcm: its pixel data hold 1,920 bytes, the bytes of 40 columns, not "
                       r"the 39 its header declares \(Columns x Rows 39 x 24, BitsAllocated 16\): read as it says, the "
                       r"image would come out sheared \(each row shifted against the one above\): its Columns "
                       r"\(0028,0011\) is wrong; set it to 40, e\.g\. dcmodify -m \"\(0028,0011\)=40\", and read it "
                       r"again$"):  # fmt: skip
        read_image(tmp_path / "c.dcm")


@pytest.mark.parametrize("layout", ["in Explicit VR Big Endian", "with 3 samples per pixel"])
def test_a_12_bit_packed_dicom_of_a_layout_not_unpacked_is_refused_saying_so(tmp_path, layout):
    # refused as "invalid DICOM image header: A (0028,0100) 'Bits Allocated' value of '12' is invalid, it
    # must be 1 or a multiple of 8": pydicom's words, where grey little-endian ones are unpacked
    from pydicom.uid import ExplicitVRBigEndian

    ds = make_dicom(tmp_path / "full.dcm", np.zeros((4, 6)))
    ds.BitsAllocated, ds.PixelData = 12, _packed_12_bits(np.zeros((4, 6) if "Big" in layout else (4, 6, 3)))
    ds["PixelData"].VR = "OW"
    if "Big" in layout:
        ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.save_as(tmp_path / "p.dcm", enforce_file_format=True, little_endian="Big" not in layout, implicit_vr=False)
    with pytest.raises(ImageReadError, match=rf"p\.dcm: BitsAllocated 12 \(12-bit values packed two to three bytes, "
                       rf"ACR-NEMA's layout\) {layout}: xvertfast unpacks them only for one grey sample per pixel, "
                       r"little-endian; convert the file to BitsAllocated 16 with a DICOM tool that reads this layout, "
                       r"and read that$"):  # fmt: skip
        read_image(tmp_path / "p.dcm")


def test_dicom_multi_frame_is_refused_saying_how_to_take_one_frame(tmp_path):
    # (it said only "expected one radiograph": nothing of what to do with a file of several frames)
    import pydicom.pixels

    values = np.arange(2 * 8 * 8, dtype=np.uint16).reshape(2, 8, 8)
    make_dicom(tmp_path / "m.dcm", values, frames=2)
    with pytest.raises(ImageReadError, match=r"m\.dcm: multi-frame DICOM \(2 frames\): expected one radiograph per "
                       r"file; where one frame is the radiograph, save it as an image of its own, e\.g\. with dcmtk's "
                       r"dcm2img --frame K --write-16-bit-png FILE frame\.png, or in Python, where "
                       r"pydicom\.pixels\.pixel_array\(FILE, index=K - 1\) gives frame K$"):  # fmt: skip
        read_image(tmp_path / "m.dcm")
    # (the call it names does so, in the pydicom the dicom extra installs)
    np.testing.assert_array_equal(pydicom.pixels.pixel_array(tmp_path / "m.dcm", index=2 - 1), values[1])


@pytest.mark.parametrize("bits, shape", [(12, (24, 40)), (8, (33, 35))])  # (8-bit: an odd count, a padded fragment)
def test_an_encapsulated_uncompressed_dicom_is_read_as_its_native_bytes(tmp_path, seed, bits, shape):
    # Encapsulated Uncompressed Explicit VR Little Endian (1.2.840.10008.1.2.1.98): a frame's native bytes
    # in a fragment; pydicom has no decoder for it, and it was refused as "needs a decoder (pip install
    # 'xvertfast[dicom-codecs]')", which decodes it no more
    from pydicom.encaps import encapsulate

    values = np.random.default_rng(seed).integers(0, 1 << bits, size=shape)
    values[0, :2] = (0, (1 << bits) - 1)
    path = tmp_path / "e.dcm"
    ds = make_dicom(path, values, bits=bits, slope=None)
    native = values.astype("u1" if bits == 8 else "<u2").tobytes()
    ds.BitsAllocated = 8 if bits == 8 else 16
    ds.PixelData = encapsulate([native + b"\0" * (len(native) % 2)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.98"
    ds.save_as(path, enforce_file_format=True)
    im = read_image(path)
    np.testing.assert_array_equal(im.values, values)
    assert im.bits_stored == bits and im.pixels.max() == 1 and not im.notes


def test_an_encapsulated_uncompressed_dicom_cut_short_is_said_in_its_own_syntax(tmp_path):
    # its frame 100 bytes short was "cannot decode DICOM pixel data (Explicit VR Little Endian)": the syntax
    # it is read in, not the file's; then "... (Encapsulated Uncompressed ...): truncated or corrupt? (its
    # frame holds 1,820 bytes, its header declares 1,920)", nothing of what to do, where native pixel data
    # cut short are told to be copied again
    from pydicom.encaps import encapsulate

    path = tmp_path / "e.dcm"
    ds = make_dicom(path, np.zeros((24, 40), np.uint16), slope=None)
    ds.PixelData = encapsulate([bytes(24 * 40 * 2 - 100)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.98"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"e\.dcm: truncated or corrupt DICOM: its pixel data \(Encapsulated "
                       r"Uncompressed Explicit VR Little Endian\) holds 1,820 bytes, its header declares 1,920 bytes "
                       r"\(Columns x Rows 40 x 24, BitsAllocated 16\): cut short\? copy it again from its source$"):
        read_image(path)


def test_an_encapsulated_uncompressed_ybr_full_422_frame_is_read_as_its_native_one(tmp_path, seed):
    # a YBR_FULL_422 frame holds 2 bytes a pixel, 2/3 of a full-sampled one's 3: the frame was
    # refused as cut short ("its frame holds 96 bytes, its header declares 144")
    from pydicom.encaps import encapsulate

    frame = np.random.default_rng(seed).integers(16, 240, size=4 * 12 * 2).astype(np.uint8).tobytes()
    native = make_dicom(tmp_path / "n.dcm", np.zeros((4, 12), np.uint16), photometric="YBR_FULL_422", slope=None)
    native.SamplesPerPixel, native.PlanarConfiguration = 3, 0
    native.BitsAllocated, native.BitsStored, native.HighBit = 8, 8, 7
    native.PixelData = frame
    native["PixelData"].VR = "OB"
    native.save_as(tmp_path / "n.dcm", enforce_file_format=True)
    native.PixelData = encapsulate([frame])
    native.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.98"
    native.save_as(tmp_path / "e.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(read_image(tmp_path / "e.dcm", warn=False).values,
                                  read_image(tmp_path / "n.dcm", warn=False).values)


@pytest.mark.parametrize("cut", [None, b"\xe0\x7f\x10\x00", b"5.1.4.1.1.1\0"])
def test_dicom_image_without_pixel_data_is_said_to_be_damaged(tmp_path, cut):
    # a radiograph's header without its pixel data (a copy cut short just before it, or an export
    # that left it out) was "no pixel data (not an image, e.g. a report)": passed over with the
    # reports and presentation states of a PACS export, not copied again. Cut within its data set's
    # SOPClassUID (1.2.840.10008.), the file meta's class says what it is
    path = tmp_path / "n.dcm"
    make_dicom(path, np.zeros((6, 8), np.uint16), pixel_data=cut is not None)
    if cut is not None:
        data = path.read_bytes()
        path.write_bytes(data[: data.rindex(cut)])  # (7FE0,0010) Pixel Data; the data set's SOP class
    what = "Computed Radiography Image" + (", Modality CR, 8 x 6, width x height" if cut != b"5.1.4.1.1.1\0" else "")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match=rf"n\.dcm: truncated or corrupt DICOM: its header describes an "
                           rf"image \({what}\), but the file holds no pixel data \(cut short before it, or exported "
                           r"without it\): copy it again from its source$"):  # fmt: skip
            read_image(path)
    assert all(str(w.message).startswith(f"{path}: ") for w in said)  # (pydicom's, of a cut UID: naming the file)
    with pytest.raises(ImageReadError) as raised:  # a damaged image: a failure, never passed over as no image
        read_image(path)
    assert not isinstance(raised.value, NotAnImage)


@pytest.mark.parametrize("kept", [8, 11])
def test_a_dicom_cut_within_its_pixel_data_length_is_called_truncated(tmp_path, kept):
    # cut 8-11 bytes past the (7FE0,0010) tag, within the element's 4-byte length (after its VR OW and 2
    # reserved bytes): "cannot parse DICOM: unpack requires a buffer of 4 bytes", pydicom's words alone,
    # where a cut 2-7 bytes past the tag is said to hold no pixel data
    make_dicom(tmp_path / "full.dcm", np.zeros((6, 8), np.uint16))
    data = (tmp_path / "full.dcm").read_bytes()
    cut = data.rindex(b"\xe0\x7f\x10\x00OW") + kept
    (tmp_path / "cut.dcm").write_bytes(data[:cut])
    with pytest.raises(ImageReadError, match=rf"cut\.dcm: truncated or corrupt DICOM: the file ends at byte {cut:,}, "
                       r"within the length of its element \(7FE0,0010\) PixelData, so it holds no pixel data: copy it "
                       r"again from its source$") as raised:  # fmt: skip
        read_image(tmp_path / "cut.dcm")
    assert not isinstance(raised.value, NotAnImage)


def no_image_dicom(path, sop_class: str = "1.2.840.10008.5.1.4.1.1.11.1", modality: str = "PR") -> None:
    """A DICOM object of a PACS export that is no image (a presentation state by default) at ``path``."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID = sop_class, generate_uid(), generate_uid()
    if modality:
        ds.Modality = modality
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("sop_class, modality, what", [
    ("1.2.840.10008.5.1.4.1.1.11.1", "PR", r"a Grayscale Softcopy Presentation State object \(Modality PR\)"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "KO", r"a Key Object Selection Document object \(Modality KO\)"),
    ("1.2.840.10008.5.1.4.1.1.104.1", "", "an Encapsulated PDF object"),
    ("1.2.3.4.5", "SR", r"not an image \(SOP class 1\.2\.3\.4\.5, Modality SR\)"),
])  # fmt: skip
def test_dicom_object_that_is_no_image_is_named_by_its_sop_class(tmp_path, sop_class, modality, what):
    # the other objects of a PACS export, refused as no image by what they are (was "not an image,
    # e.g. a report" for each), as a NotAnImage (a batch job passes it over, no failure) saying what it is
    no_image_dicom(tmp_path / "o.dcm", sop_class, modality)
    said = what if what.startswith("not") else f"{what}, not an image"
    with pytest.raises(NotAnImage, match=rf"o\.dcm: DICOM file has no pixel data: {said}$") as raised:
        read_image(tmp_path / "o.dcm")
    assert raised.value.kind == (modality or "Encapsulated PDF")


def _corrupt_jpeg2000_dicom(path):
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    make_dicom(path, np.zeros((8, 8), np.uint16), syntax=JPEG2000Lossless, pixel_data=False)
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path)


def test_dicom_compressed_without_decoder_names_the_extra(tmp_path, monkeypatch):
    import xvertfast.io.decode_dicom as decode_dicom

    _corrupt_jpeg2000_dicom(tmp_path / "j.dcm")
    monkeypatch.setattr(decode_dicom, "_has_decoder", lambda syntax: False)  # as where no plugin is installed
    with pytest.raises(ImageReadError, match=r"j\.dcm: compressed transfer syntax 'JPEG 2000.*needs a decoder.*dicom-codecs"):
        read_image(tmp_path / "j.dcm")


def test_dicom_corrupt_compressed_data_is_called_corrupt_where_a_decoder_exists(tmp_path):
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEG2000Lossless

    if not get_decoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 decoder here (Pillow without openjpeg, no pylibjpeg-openjpeg)")
    _corrupt_jpeg2000_dicom(tmp_path / "j.dcm")
    with pytest.raises(ImageReadError, match=r"j\.dcm: cannot decode DICOM pixel data \(JPEG 2000.*corrupt"):
        read_image(tmp_path / "j.dcm")


@pytest.mark.parametrize("codec", ["jpeg2000", "jpeg"])
def test_a_dicom_codestream_declaring_another_size_than_its_header_is_refused_before_decoding(tmp_path, codec):
    # max_pixels is checked on Rows x Columns; the decoder allocates what the codestream says:
    # a JPEG 2000 one claiming 50000 x 50000 had openjpeg allocate gigabytes (refused only by
    # running out of memory), a JPEG one claiming 12000 x 12000 was decoded (144 MB) before
    # pydicom failed to fit it ('could not broadcast input array')
    import imagecodecs
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit

    small = np.zeros((64, 64), np.uint8)
    if codec == "jpeg2000":
        stream = bytearray(imagecodecs.jpeg2k_encode(small, level=0, reversible=True, codecformat="j2k"))
        at = stream.index(b"\xff\x4f\xff\x51")  # SOC, SIZ: width, height, offsets, tile width, height
        struct.pack_into(">IIIIII", stream, at + 8, 50000, 50000, 0, 0, 50000, 50000)
        syntax, said = JPEG2000Lossless, "JPEG 2000 codestream declares 50000 x 50000"
    else:
        stream = bytearray(imagecodecs.jpeg8_encode(small))
        struct.pack_into(">HH", stream, stream.index(b"\xff\xc0") + 5, 12000, 12000)  # SOF0: height, width
        syntax, said = JPEGBaseline8Bit, "JPEG codestream declares 12000 x 12000"
    make_dicom(tmp_path / "c.dcm", small, syntax=syntax, pixel_data=False, bits=8)
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    ds.BitsAllocated = 8
    ds.PixelData = encapsulate([bytes(stream)])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "c.dcm")
    with pytest.raises(ImageReadError, match=rf"c\.dcm: its {said} \(width x height\), its header \(Columns x Rows\) "
                       r"64 x 64: corrupt; refusing to decode it"):  # fmt: skip
        read_image(tmp_path / "c.dcm")


def test_a_jpeg2000_dicom_whose_jp2_header_has_an_empty_box_is_refused_not_walked_forever(tmp_path):
    # pydicom (3.0.2) walks a JP2 header's boxes to the codestream by their lengths: one of
    # length 0 (the last box's 'to the end of the file') before it, and read_image never returned
    import subprocess
    import sys

    import imagecodecs
    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless

    values = np.zeros((16, 16), np.uint16)
    stream = bytearray(imagecodecs.jpeg2k_encode(values, level=0, reversible=True, codecformat="jp2"))
    assert stream[16:20] == b"ftyp"  # the box after the signature box
    stream[12:16] = bytes(4)
    make_dicom(tmp_path / "j.dcm", values, syntax=JPEG2000Lossless, pixel_data=False)
    ds = pydicom.dcmread(tmp_path / "j.dcm")
    ds.PixelData = encapsulate([bytes(stream)])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "j.dcm")
    code = (f"from xvertfast.io import read_image\ntry:\n    read_image({str(tmp_path / 'j.dcm')!r})\n"
            "except Exception as exc:\n    print(exc)")  # fmt: skip
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert said.strip() == (f"{tmp_path / 'j.dcm'}: its JPEG 2000 frame's JP2 header has a box of length 0 at byte "
                            "12, before its codestream: corrupt"), said  # fmt: skip


def test_a_dicom_element_of_an_unknown_value_representation_is_called_a_corrupt_header(tmp_path):
    # a damaged VR (two letters) was reported as 'cannot decode DICOM: NotImplementedError: ...'
    make_dicom(tmp_path / "v.dcm", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "v.dcm").read_bytes()
    columns = b"\x28\x00\x11\x00US"  # (0028,0011) Columns, explicit VR little endian
    (tmp_path / "v.dcm").write_bytes(data.replace(columns, columns[:4] + b"LS"))
    with pytest.raises(ImageReadError, match=r"v\.dcm: corrupt DICOM header: Unknown Value Representation 'LS' in "
                       r"tag \(0028,0011\)$"):  # fmt: skip
        read_image(tmp_path / "v.dcm")


def _deflated_dicom(path, rows: int, cols: int, pixel_bytes: int, preamble: bool = True) -> None:
    """A Deflated Explicit VR Little Endian DICOM of ``rows`` x ``cols`` 16-bit whose pixel data
    element holds ``pixel_bytes`` zeros, deflated as it is written (never held whole); without its
    128-byte preamble where ``preamble`` is False."""
    import io

    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomFileLike
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.1", generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(DicomFileLike(buffer), meta, enforce_standard=True)
    header = b"".join(struct.pack("<HH2sH", 0x28, element, b"US", 2) + struct.pack("<H", value)
                      for element, value in ((0x02, 1), (0x10, rows), (0x11, cols), (0x100, 16), (0x101, 12),
                                             (0x102, 11), (0x103, 0)))  # fmt: skip
    header += struct.pack("<HH2sH", 0x28, 0x04, b"CS", 12) + b"MONOCHROME2 "
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 * preamble + b"DICM" + buffer.getvalue())
        f.write(deflater.compress(header + struct.pack("<HH2sHI", 0x7FE0, 0x10, b"OW", 0, pixel_bytes)))
        for _ in range(pixel_bytes >> 20):
            f.write(deflater.compress(bytes(1 << 20)))
        f.write(deflater.compress(bytes(pixel_bytes % (1 << 20))) + deflater.flush())


@pytest.mark.parametrize("preamble", [True, False])
def test_a_deflated_dicom_inflating_past_its_image_is_refused_without_inflating_it_whole(tmp_path, preamble):
    # pydicom inflates a deflated data set whole before reading any of it: 1 MB of deflated zeros
    # declaring a 64 x 64 image cost 2 GB (the data set, then an array pydicom sized from it)
    _deflated_dicom(tmp_path / "d.dcm", 64, 64, 64 << 20, preamble)
    assert (tmp_path / "d.dcm").stat().st_size < (1 << 20)
    with traced_memory() as memory:
        with pytest.raises(ImageReadError, match=r"d\.dcm: its deflated data set inflates to more than [0-9,]+ bytes, "
                           r"though its header declares 64 x 64 \(1 frame of 1 sample of 16 bits\): a decompression "
                           r"bomb or corrupt; refusing to read it"):  # fmt: skip
            read_image(tmp_path / "d.dcm")
    peak = memory.peak
    assert peak < 16 << 20, peak
    # one that holds what its header declares is read
    _deflated_dicom(tmp_path / "ok.dcm", 64, 64, 64 * 64 * 2, preamble)
    assert read_image(tmp_path / "ok.dcm", warn=False).shape == (64, 64)


def test_a_dicom_element_declaring_gigabytes_under_a_memory_limit_is_called_corrupt(tmp_path):
    # one element's length damaged to ~4 GB: Python's read allocates that much before reading
    # what is there, and under a memory limit (ulimit -v, a batch scheduler's) pydicom's
    # MemoryError, which says nothing, made 'cannot parse DICOM: ' (the reason left blank)
    import subprocess
    import sys

    make_dicom(tmp_path / "m.dcm", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "m.dcm").read_bytes()
    at = data.index(b"\x28\x00\x02\x00US")  # (0028,0002), the first element after group 0009
    bad = struct.pack("<HH2sHI", 0x0009, 0x1001, b"OB", 0, 0xF0000000) + bytes(16)
    (tmp_path / "m.dcm").write_bytes(data[:at] + bad + data[at:])
    code = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
            "from xvertfast.io import read_image\ntry:\n"
            f"    read_image({str(tmp_path / 'm.dcm')!r})\nexcept Exception as exc:\n    print(exc)")  # fmt: skip
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.strip()
    assert said == (f"{tmp_path / 'm.dcm'}: cannot parse DICOM: out of memory reading its elements, which a file of "
                    f"{len(data) + len(bad):,} bytes cannot need: an element's length is corrupt"), said  # fmt: skip


@pytest.mark.parametrize("cut", [132, 136])
def test_a_dicom_cut_right_after_its_dicm_marker_is_called_truncated_not_other_content(tmp_path, cut):
    # it has its DICM marker, yet was refused as 'not DICOM: no DICM marker and no DICOM elements'
    # (cut after its first file meta element, it is already called truncated)
    make_dicom(tmp_path / "full.dcm", np.zeros((8, 8), np.uint16))
    (tmp_path / "cut.dcm").write_bytes((tmp_path / "full.dcm").read_bytes()[:cut])
    with pytest.raises(ImageReadError, match=r"cut\.dcm: truncated or corrupt DICOM: it has the DICM marker, but no "
                       r"elements that read after it"):  # fmt: skip
        read_image(tmp_path / "cut.dcm")


def _meta_end(data: bytes) -> int:
    """Where a DICOM file's file meta header ends, as its group length (0002,0000) says."""
    at = data.index(b"\x02\x00\x00\x00UL") + 8
    return at + 4 + struct.unpack("<I", data[at : at + 4])[0]


_META_CUT = (r"truncated or corrupt DICOM: the file ends at byte {}, within its file meta header, {}: copy it again from "
             r"its source$")


@pytest.mark.parametrize("where, preamble, said", [
    # pydicom's own words came through: "cannot parse DICOM: Expected total bytes to be an even multiple of
    # bytes per value ...", "cannot parse DICOM: unpack requires a buffer of 4 bytes"
    (lambda d: d.index(b"\x02\x00\x00\x00UL") + 9, True,
     lambda n, d: _META_CUT.format(n, r"in its element \(0002,0000\) FileMetaInformationGroupLength")),
    (lambda d: d.index(b"\x02\x00\x01\x00OB") + 10, True,
     lambda n, d: _META_CUT.format(n, r"in its element \(0002,0001\) FileMetaInformationVersion")),
    # cut between two of its elements, or within a UID: "its file meta header reads, but no data set after it"
    (lambda d: d.index(b"\x02\x00\x01\x00OB"), True,
     lambda n, d: _META_CUT.format(n, rf"whose group length \(0002,0000\) says it ends at byte {_meta_end(d)}")),
    (lambda d: d.index(b"\x02\x00\x10\x00UI") + 14, False,
     lambda n, d: _META_CUT.format(n, r"in its element \(0002,0010\) TransferSyntaxUID")),
    (_meta_end, True, lambda n, d: r"truncated or corrupt DICOM: its file meta header reads, but no data set after "
                                   r"it: cut short\? copy it again from its source$"),
], ids=["in its group length", "in an OB length", "between elements", "in a UID, no preamble", "after it"])  # fmt: skip
def test_a_dicom_cut_within_its_file_meta_header_is_called_truncated(tmp_path, where, preamble, said):
    make_dicom(tmp_path / "full.dcm", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "full.dcm").read_bytes()
    data = data if preamble else data[128:]
    cut = where(data)
    (tmp_path / "cut.dcm").write_bytes(data[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (pydicom's, of a cut UID)
        with pytest.raises(ImageReadError, match=rf"cut\.dcm: {said(len(data[:cut]), data)}"):
            read_image(tmp_path / "cut.dcm")


_CR = b"1.2.840.10008.5.1.4.1.1.1"  # (CR Image Storage, as make_dicom writes it in the file meta and the data set)


@pytest.mark.parametrize("tag, preamble", [(b"\x02\x00\x02\x00", True), (b"\x02\x00\x10\x00", True),
                                           (b"\x02\x00\x10\x00", False), (b"\x08\x00\x16\x00", True)],
                         ids=["media storage sop class", "transfer syntax", "transfer syntax, no preamble",
                              "sop class"])  # fmt: skip
def test_a_dicom_cut_within_a_uid_is_refused_without_pydicoms_invalid_value_warning(tmp_path, tag, preamble):
    # cut after "1.2.840.10008." (a UID ends in no dot): pydicom's "Invalid value for VR UI: '1.2.840.10008.'.
    # Please see <https://dicom.nema.org/...> for allowed values for each VR." was printed beside the
    # refusal saying the file is cut short
    make_dicom(tmp_path / "full.dcm", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "full.dcm").read_bytes()[0 if preamble else 128 :]
    cut = data.index(tag + b"UI") + 8 + len(b"1.2.840.10008.")
    (tmp_path / "cut.dcm").write_bytes(data[:cut])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match=r"cut\.dcm: truncated or corrupt DICOM: "):
            read_image(tmp_path / "cut.dcm")
    assert not [str(w.message) for w in caught]


def test_an_invalid_uid_the_file_is_not_cut_within_is_still_warned_of(tmp_path):
    # (only the value a cut file ends in is left out): a whole file's invalid UID, and one's before its cut
    make_dicom(tmp_path / "full.dcm", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "full.dcm").read_bytes().replace(_CR + b"\0", _CR + b".", 1)  # (its file meta's)
    (tmp_path / "whole.dcm").write_bytes(data)
    (tmp_path / "cut.dcm").write_bytes(data[: data.index(b"\xe0\x7f\x10\x00OW")])  # (before its pixel data)
    for name, refused in (("whole.dcm", False), ("cut.dcm", True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ImageReadError, match="no pixel data") if refused else contextlib.nullcontext():
                read_image(tmp_path / name)
        assert [str(w.message).split(". Please see")[0] for w in caught] == \
            [f"{tmp_path / name}: Invalid value for VR UI: '{_CR.decode()}.'"]  # fmt: skip


def test_a_dicom_gone_before_its_refusal_is_refused_for_what_it_read(tmp_path, monkeypatch):
    # the refusal's look at the file's last bytes (for pydicom's warning of the value it is cut within)
    # reopens it: a file moved or deleted meanwhile had its refusal replaced by that open's OSError
    import xvertfast.io.decode_dicom as decode_dicom

    make_dicom(tmp_path / "full.dcm", np.zeros((8, 8), np.uint16))
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: data.index(b"\xe0\x7f\x10\x00OW")])  # (before its pixel data)
    parse = decode_dicom._parse_dicom

    def parse_then_lose(path, *args):
        try:
            return parse(path, *args)
        finally:
            os.remove(path)

    monkeypatch.setattr(decode_dicom, "_parse_dicom", parse_then_lose)
    with pytest.raises(ImageReadError, match=r"cut\.dcm: .*no pixel data"):
        read_image(tmp_path / "cut.dcm")


def test_dicom_jpeg2000_lossless_round_trip(tmp_path, seed):
    # a compressed archive file: decoded exactly, polarity and bit depth kept
    pytest.importorskip("openjpeg", reason="encoding JPEG 2000 needs pylibjpeg-openjpeg (the test extra)")
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    values = np.random.default_rng(seed).integers(0, 4096, size=(40, 56)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 4095
    make_dicom(tmp_path / "c.dcm", values, photometric="MONOCHROME1", bits=12)
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    ds.compress(JPEG2000Lossless)
    ds.save_as(tmp_path / "c.dcm")
    im = read_image(tmp_path / "c.dcm")
    assert im.meta.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert im.bits_stored == 12 and im.photometric == "MONOCHROME1"
    np.testing.assert_allclose(im.pixels, 1.0 - values / 4095.0, atol=1e-6)


# ---- bad input --------------------------------------------------------------------------------


def png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("empty.png", b"", "empty file"),
        ("text.png", b"hello, I am not an image\n", "named like a PNG file but its content is not one"),
        ("notes.txt", b"plain text", "unrecognised image format"),
        ("huge.png", png_header_claiming(100000, 100000),
         r"100000 x 100000 \(width x height\) = 10,000,000,000 pixels, above the limit"),
        ("short.IMG", b"\x00" * 1000, "raw JSRT .IMG file must be 2048x2048"),
    ],
)
def test_bad_files_get_specific_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("height, width", [(12000, 12000), (60000, 60000), (6000, 20000)])
def test_a_jpeg_claiming_more_than_max_pixels_is_refused_by_max_pixels(tmp_path, height, width):
    # a PNG's IHDR is checked before Pillow opens it, a JPEG's frame header was not: one claiming
    # 60000 x 60000 was refused as Pillow words it ("could be decompression bomb DOS attack"),
    # max_pixels unsaid, and 12000 x 12000 warned so (DecompressionBombWarning) before max_pixels
    # refused it. 6000 high, 20000 wide: the frame header's order (height first) read as it is
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "x.jpg")
    data = bytearray((tmp_path / "x.jpg").read_bytes())
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, height, width)  # SOF0: its height and width
    (tmp_path / "x.jpg").write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageReadError) as caught:
            read_image(tmp_path / "x.jpg")
    assert str(caught.value) == (f"{tmp_path / 'x.jpg'}: image claims {width} x {height} (width x height) = "
                                 f"{width * height:,} pixels, above the limit of 100,000,000 (max_pixels); refusing "
                                 "to decode")  # fmt: skip


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
@pytest.mark.parametrize("pillow_limit", [1000, 2000])
def test_max_pixels_is_the_one_limit_on_a_png_or_jpeg_not_pillows(tmp_path, monkeypatch, fmt, pillow_limit):
    # Pillow's decompression-bomb check at Image.open refused a file above 2 x Image.MAX_IMAGE_PIXELS
    # (about 179 Mpx) whatever max_pixels allowed ("refused by the decompression-bomb check"), and
    # warned of one above Image.MAX_IMAGE_PIXELS (89,478,485, about 89.5 Mpx, within the default
    # 100 M: an error under -W error). Here Pillow's limit is lowered under a 48 x 64 image (3072 pixels) instead of
    # writing hundreds of millions; its bottom right is flat 128, so a JPEG is opened twice
    # (_check_jpeg_data_ends' second decoding), both times without Pillow's check
    values = np.full((48, 64), 128, np.uint8)
    values[:16, :16] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / f"a.{'jpg' if fmt == 'jpeg' else fmt}"
    Image.fromarray(values).save(path, quality=95)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path, max_pixels=3072).shape == (48, 64)
    with pytest.raises(ImageReadError) as caught:
        read_image(path, max_pixels=3071)
    assert str(caught.value) == (f"{path}: image claims 64 x 48 (width x height) = 3,072 pixels, above the limit of "
                                 "3,071 (max_pixels); refusing to decode")  # fmt: skip


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a_png_or_jpeg_with_no_class_registered_for_it_is_opened_by_image_open(tmp_path, monkeypatch, fmt):
    # where Pillow registers no class under the format's name (Image.OPEN, as a later Pillow might
    # name it otherwise), the reader falls back to Image.open: the file reads as before, with
    # Pillow's bomb check (a limit under its 3072 pixels refuses it, said so), and max_pixels first
    values = np.full((48, 64), 128, np.uint8)
    values[:16, :16] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / f"a.{'jpg' if fmt == 'jpeg' else fmt}"
    Image.fromarray(values).save(path, quality=95)
    expected = read_image(path).values

    class Unnamed(dict):
        def get(self, key, default=None):  # (Image.open looks its classes up by [], as ever)
            return default

    Image.preinit()
    monkeypatch.setattr(Image, "OPEN", Unnamed(Image.OPEN))
    np.testing.assert_array_equal(read_image(path).values, expected)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageReadError, match=r"refused by the decompression-bomb check: Image size \(3072 pixels\)"):
        read_image(path)
    with pytest.raises(ImageReadError, match=r"above the limit of 3,071 \(max_pixels\)"):
        read_image(path, max_pixels=3071)


def test_a_jpeg_is_read_without_the_plugins_own_name_for_its_class(tmp_path, monkeypatch):
    # JpegImagePlugin.jpeg_factory is not Pillow's documented API: with it renamed, every JPEG failed
    # "a.jpg: cannot decode JPEG: AttributeError: ...". The class is Pillow's registered one now, and
    # still opened without Pillow's bomb check (its limit lowered under the image's 3072 pixels)
    from PIL import JpegImagePlugin

    values = np.full((48, 64), 128, np.uint8)
    values[:16, :16] = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(values).save(tmp_path / "a.jpg", quality=95)
    expected = read_image(tmp_path / "a.jpg").values
    monkeypatch.delattr(JpegImagePlugin, "jpeg_factory")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_image(tmp_path / "a.jpg").values, expected)


def test_truncated_png(tmp_path):
    Image.fromarray(np.arange(4096, dtype=np.uint16).reshape(64, 64) * 16).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png: cannot decode PNG: truncated or corrupt"):
        read_image(tmp_path / "cut.png")


@pytest.mark.parametrize("cut", [20, 24, 25])
def test_a_png_cut_inside_its_header_is_called_truncated(tmp_path, cut):
    # cut after the IHDR's width and height, before its bit depth and colour type: read_image
    # looked at those two bytes unguarded, and an IndexError (a bug's error, not the file's)
    # stopped the batch job
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "full.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:cut])
    with pytest.raises(ImageReadError, match="cut.png: cannot decode PNG: truncated or corrupt"):
        read_image(tmp_path / "cut.png")


def test_a_png_whose_image_data_fails_its_crc_is_refused_as_corrupt(tmp_path):
    # zlib's own checks catch most damage to a PNG's image data, yet not all (Pillow stops at
    # the last row, before the stream's checksum): a flipped bit or a zeroed run in an IDAT
    # chunk was decoded as a different image, silently. The chunk's CRC says so: here the IDAT
    # holds another image's data under the CRC of the first
    values = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "a.png")
    Image.fromarray(values[::-1].copy()).save(tmp_path / "b.png")

    def idat(data):
        at = data.index(b"IDAT") - 4
        return at, at + 12 + int.from_bytes(data[at : at + 4], "big")

    a, b = (tmp_path / "a.png").read_bytes(), (tmp_path / "b.png").read_bytes()
    (a0, a1), (b0, b1) = idat(a), idat(b)
    damaged = a[:a0] + b[b0 : b1 - 4] + a[a1 - 4 : a1] + a[a1:]
    (tmp_path / "d.png").write_bytes(damaged)
    with pytest.raises(ImageReadError, match=rf"d.png: PNG chunk IDAT at byte {a0} fails its CRC check: corrupt"):
        read_image(tmp_path / "d.png")
    # an ancillary chunk's CRC (text, here after the image data) is not the pixels': read, as libpng does
    text = b"tEXt" + b"Comment\x00scanned"
    (tmp_path / "t.png").write_bytes(a[:-12] + struct.pack(">I", len(text) - 4) + text + b"\x00\x00\x00\x00" + a[-12:])
    assert np.array_equal(read_image(tmp_path / "t.png").values, values)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "absent.png")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_broken_link_and_a_link_loop_are_called_so_not_missing(tmp_path):
    # an archive listing shows them, so "no such file or folder" sent users looking for a deleted file
    os.symlink(tmp_path / "gone" / "x.png", tmp_path / "broken.png")
    os.symlink("b.png", tmp_path / "a.png")
    os.symlink("a.png", tmp_path / "b.png")
    with pytest.raises(ImageReadError, match=r"broken\.png: a broken symbolic link: what it points to \(.*gone.x\.png\) does not exist"):
        read_image(tmp_path / "broken.png")
    with pytest.raises(ImageReadError, match=r"a\.png: a loop of symbolic links: it leads to no file"):
        read_image(tmp_path / "a.png")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_path_behind_a_folder_that_may_not_be_entered_is_not_called_missing(tmp_path, monkeypatch):
    # a folder on the way that this user may not enter (EACCES) hides the file: the link to it was
    # called "a broken symbolic link: what it points to (...) does not exist", the file itself
    # "no such file or folder" (stat is refused as it is for a user without the permission)
    import errno

    (tmp_path / "secret").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "secret" / "x.png")
    os.symlink(tmp_path / "secret" / "x.png", tmp_path / "link.png")
    stat = os.stat

    def refused(path, *args, **kwargs):
        if os.fspath(path) in (os.fspath(tmp_path / "link.png"), os.fspath(tmp_path / "secret" / "x.png")):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", refused)
    with pytest.raises(ImageReadError, match=r"link\.png: permission denied: a folder on the way to what its symbolic "
                                             r"link points to \(.*secret.x\.png\) may not be entered"):  # fmt: skip
        read_image(tmp_path / "link.png")
    with pytest.raises(ImageReadError, match=r"x\.png: permission denied: a folder on the way to it may not be entered"):
        read_image(tmp_path / "secret" / "x.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_not_waited_on(tmp_path):
    from xvertfast.io.read import sniff_format

    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block until a writer came
    with pytest.raises(ImageReadError, match="pipe: not a regular file"):
        read_image(tmp_path / "pipe")
    assert sniff_format(str(tmp_path / "pipe")) is None


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(path)
    path.chmod(0)
    with pytest.raises(ImageReadError, match="permission denied"):
        read_image(path)


def test_pixel_limit_is_configurable(tmp_path):
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "s.png")
    with pytest.raises(ImageReadError, match="above the limit of 1,000"):
        read_image(tmp_path / "s.png", max_pixels=1000)


def test_tiny_and_constant_images_are_read(tmp_path):
    Image.fromarray(np.full((1, 1), 7, np.uint8)).save(tmp_path / "one.png")
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(tmp_path / "flat.png")
    for name in ("one.png", "flat.png"):
        im = read_image(tmp_path / name)
        assert np.all(im.pixels == 0.0)  # documented: a constant image scales to 0


def test_full_range_is_the_formats_own_scale(tmp_path, seed):
    import tifffile

    from xvertfast.io.read import full_range

    values = np.random.default_rng(seed).integers(0, 1024, size=(8, 8)).astype(np.uint16)
    values[0, 0] = 1023
    make_dicom(tmp_path / "a.dcm", values, photometric="MONOCHROME1", bits=10, slope=2.0, intercept=-5.0)
    assert full_range(read_image(tmp_path / "a.dcm")) == (-5.0, 1023 * 2.0 - 5.0)
    signed = values.astype(np.int16) - 512
    make_dicom(tmp_path / "s.dcm", signed, bits=12, signed=True)
    assert full_range(read_image(tmp_path / "s.dcm")) == (-2048.0, 2047.0)
    Image.fromarray((values // 4).astype(np.uint8)).save(tmp_path / "b.png")
    assert full_range(read_image(tmp_path / "b.png")) == (0.0, 255.0)
    tifffile.imwrite(tmp_path / "f.tif", (values / 4096).astype(np.float32))
    assert full_range(read_image(tmp_path / "f.tif")) == (0.0, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_full_range_of_a_dicom_of_float_pixel_data_is_0_to_1_as_a_float_tiffs(tmp_path, seed, dtype):
    # it went through BitsStored's range at 32 or 64 bits: FloatPixelData's was (0, 2**32 - 1), an
    # output in [0, 1] scored black, and DoubleFloatPixelData's an OverflowError (uint32 out of bounds)
    from xvertfast.io.read import full_range, stored_as_floats

    values = np.random.default_rng(seed).uniform(0.0, 1.0, size=(8, 8)).astype(dtype)
    make_float_dicom(tmp_path / "f.dcm", values)
    im = read_image(tmp_path / "f.dcm", warn=False)
    assert stored_as_floats(im) and full_range(im) == (0.0, 1.0)
    make_dicom(tmp_path / "r.dcm", np.arange(64).reshape(8, 8), bits=10, slope=0.5)  # floats by its rescale only
    im = read_image(tmp_path / "r.dcm", warn=False)
    assert im.values.dtype.kind == "f" and not stored_as_floats(im) and full_range(im) == (0.0, 511.5)


def _with_raw_element(path, tag: int, vr: str, value: bytes):
    """Rewrites a DICOM file with one element's bytes as given, past pydicom's value checks."""
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    ds = pydicom.dcmread(path)
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    ds.save_as(path)


@pytest.mark.parametrize("slope, match", [(b"1,5 ", "RescaleSlope"), (b"", "RescaleSlope")])
def test_dicom_malformed_rescale_is_the_files_error(tmp_path, seed, slope, match):
    values = np.random.default_rng(seed).integers(0, 4096, size=(16, 16)).astype(np.uint16)
    make_dicom(tmp_path / "a.dcm", values)
    _with_raw_element(tmp_path / "a.dcm", 0x00281053, "DS", slope)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(tmp_path / "a.dcm", warn=False)
    assert str(tmp_path / "a.dcm") in str(info.value)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("tag, value", [(0x00281053, b"1e308 "), (0x00281053, b"NaN "), (0x00281052, b"NaN "),
                                        (0x00281053, b"inf ")])  # fmt: skip
def test_a_dicom_rescale_giving_nan_or_infinite_values_is_refused(tmp_path, seed, tag, value):
    # a damaged RescaleSlope of 1e308 made the values infinite and the pixels NaN, which passed
    # require_content (NaN == NaN is false) into enhancement; a NaN one made every pixel 0
    values = np.random.default_rng(seed).integers(2, 4096, size=(16, 16)).astype(np.uint16)  # (1 x 1e308 is finite)
    make_dicom(tmp_path / "a.dcm", values, slope=1.0, intercept=-1024.0)
    _with_raw_element(tmp_path / "a.dcm", tag, "DS", value)
    with pytest.raises(ImageReadError, match=r"a\.dcm: its modality LUT / rescale \(RescaleSlope .*, RescaleIntercept "
                       r".*\) gives 256 NaN or infinite values: corrupt"):  # fmt: skip
        read_image(tmp_path / "a.dcm", warn=False)


@pytest.mark.filterwarnings("ignore:Invalid value for VR IS")
def test_dicom_non_numeric_frame_count_is_named(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 4096, size=(16, 16)).astype(np.uint16)
    make_dicom(tmp_path / "a.dcm", values)
    _with_raw_element(tmp_path / "a.dcm", 0x00280008, "IS", b"ab")
    with pytest.raises(ImageReadError, match="NumberOfFrames is not a number"):
        read_image(tmp_path / "a.dcm", warn=False)


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("name", ["raw.dcm", "1.2.3.4"])
def test_dicom_data_set_without_preamble_or_file_meta(tmp_path, seed, implicit, name):
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(12, 10)).astype(np.uint16)
    ds = make_dicom(tmp_path / "full.dcm", values)
    del ds.file_meta
    path = tmp_path / name
    ds.save_as(path, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    assert open(path, "rb").read(2) == b"\x08\x00" and b"DICM" not in open(path, "rb").read(140)
    im = read_image(path, warn=False)
    assert im.source_format == "dicom"
    np.testing.assert_array_equal(im.values, values)
    assert pydicom.dcmread(tmp_path / "full.dcm").SOPInstanceUID == im.meta.SOPInstanceUID


@pytest.mark.parametrize("name", ["cut.dcm", "cut"])
def test_a_dicom_whose_preamble_was_cut_off_is_read_with_a_note(tmp_path, seed, name):
    # it starts with DICM: it was called "not DICOM: no DICM marker and no DICOM elements", or
    # without an extension "unrecognised image format"
    values = np.random.default_rng(seed).integers(0, 4096, size=(12, 10)).astype(np.uint16)
    make_dicom(tmp_path / "full.dcm", values)
    (tmp_path / name).write_bytes((tmp_path / "full.dcm").read_bytes()[128:])
    im = read_image(tmp_path / name, warn=False)
    assert im.source_format == "dicom"
    np.testing.assert_array_equal(im.values, values)
    assert im.notes == [f"{tmp_path / name}: DICOM file without its 128-byte preamble (it starts with DICM): read as "
                        "if it had one"]  # fmt: skip
    (tmp_path / "bare").write_bytes(b"DICM" + bytes(40))
    with pytest.raises(ImageReadError, match="truncated or corrupt DICOM: it has the DICM marker"):
        read_image(tmp_path / "bare", warn=False)


def test_a_text_file_named_dcm_is_not_dicom(tmp_path):
    (tmp_path / "report.dcm").write_text("Findings: no acute disease.\n" * 10)
    with pytest.raises(ImageReadError, match="not DICOM"):
        read_image(tmp_path / "report.dcm")


@pytest.mark.parametrize("kept", [0.3, 0.95])
def test_a_cut_compressed_dicom_is_called_truncated_not_other_content(tmp_path, kept):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(SAMPLE_DICOM)
    ds.compress(RLELossless)  # encapsulated: pydicom reads a cut one as an empty data set
    ds.save_as(tmp_path / "full.dcm")
    data = (tmp_path / "full.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: int(len(data) * kept)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom's own: end of file before the delimiter
        with pytest.raises(ImageReadError, match="cut.dcm: truncated or corrupt DICOM"):
            read_image(tmp_path / "cut.dcm")


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_padding_is_left_out_of_the_range(tmp_path, seed, photometric):
    rng = np.random.default_rng(seed)
    values = rng.integers(100, 3001, size=(20, 24)).astype(np.uint16)
    values[0, 0], values[0, 1] = 100, 3000
    padded = values.copy()
    padded[:, :4] = 0xFFFF  # the collimated border
    make_dicom(tmp_path / "p.dcm", padded, photometric=photometric, bits=16)
    _with_raw_element(tmp_path / "p.dcm", 0x00280120, "US", (0xFFFF).to_bytes(2, "little"))
    im = read_image(tmp_path / "p.dcm", warn=False)
    body = values[:, 4:].astype(np.float64)
    if photometric == "MONOCHROME1":
        body = 65535 - body
    np.testing.assert_allclose(im.pixels[:, 4:], (body - body.min()) / (body.max() - body.min()), atol=1e-6)
    assert (im.pixels[:, :4] == 0).all()  # padding shows as the darkest anatomy
    assert any("80 padding pixels" in n for n in im.notes)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("kind", ["tiff", "png-exif"])
def test_orientation_tags_turn_the_image_upright(tmp_path, orientation, kind):
    import tifffile

    stored = (np.arange(12, dtype=np.uint8).reshape(3, 4) * 10 + 5)
    ops = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}  # fmt: skip
    upright = stored if orientation == 1 else np.asarray(Image.fromarray(stored).transpose(ops[orientation]))
    if kind == "tiff":
        path = tmp_path / "o.tif"
        tifffile.imwrite(path, stored, extratags=[(0x0112, "H", 1, orientation, True)])
    else:
        path = tmp_path / "o.png"
        im = Image.fromarray(stored)
        exif = im.getexif()
        exif[0x0112] = orientation
        im.save(path, exif=exif)
    got = read_image(path, warn=False)
    np.testing.assert_array_equal(got.values, upright)
    assert any("Orientation" in n for n in got.notes) == (orientation != 1)


def test_one_bit_white_is_zero_tiff(tmp_path):
    import tifffile

    bits = np.zeros((8, 8), bool)
    bits[2:5, 3:6] = True
    tifffile.imwrite(tmp_path / "b.tif", bits, photometric="miniswhite")
    im = read_image(tmp_path / "b.tif")
    np.testing.assert_array_equal(im.pixels, (~bits).astype(np.float32))  # set bits are black


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _filtered(rows: np.ndarray, bpp: int) -> bytes:
    """PNG scanlines of the byte rows ``rows`` [H, row bytes], each with the next of the five
    filters in turn (PNG spec 9.2), so a decoder is tried on all of them."""

    def paeth(a, b, c):
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return a if pa <= pb and pa <= pc else b if pb <= pc else c

    out, above = [], [0] * rows.shape[1]
    for y, row in enumerate(rows.tolist()):
        kind = y % 5
        left = [0] * bpp + row[:-bpp]
        upper_left = [0] * bpp + above[:-bpp]
        guess = [[0] * len(row), left, above, [(a + b) // 2 for a, b in zip(left, above)],
                 [paeth(a, b, c) for a, b, c in zip(left, above, upper_left)]][kind]  # fmt: skip
        out.append(bytes([kind]) + bytes((x - g) % 256 for x, g in zip(row, guess)))
        above = row
    return b"".join(out)


def _png_of_samples(samples: np.ndarray, colour_type: int, interlaced: bool, after_idat: bytes = b"",
                    before_idat: bytes = b"") -> bytes:  # fmt: skip
    """A 16-bit PNG of ``samples`` [H, W, channels], written here (Pillow writes no 16-bit grey +
    alpha, nor sBIT), Adam7-interlaced or not; ``before_idat``, ``after_idat``: chunks put
    between its IHDR and IDAT, its IDAT and IEND."""
    h, w, channels = samples.shape
    big = samples.astype(">u2")
    if interlaced:  # the seven passes of Adam7 (PNG spec 8.2): (first column, first row, column step, row step)
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        parts = [big[y0::dy, x0::dx] for x0, y0, dx, dy in passes]
    else:
        parts = [big]
    scanlines = b"".join(_filtered(np.frombuffer(part.tobytes(), np.uint8).reshape(part.shape[0], -1), 2 * channels)
                         for part in parts if part.size)  # fmt: skip
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + before_idat + _png_chunk(b"IDAT", zlib.compress(scanlines))
            + after_idat + _png_chunk(b"IEND", b""))  # fmt: skip


@pytest.mark.parametrize("interlaced", [False, True])
def test_a_16_bit_grey_and_alpha_png_keeps_its_16_bit_grey(tmp_path, seed, interlaced):
    # Pillow decodes it at 8 bits (mode RGBA): it was written out 8-bit, its note said "RGBA image
    # converted to luminance" of what is grey + alpha
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 4096, size=(11, 13)).astype(np.uint16) << 4  # 12-bit data shifted into 16 bits
    grey[0, 0], grey[0, 1] = 0, 4095 << 4
    alpha = rng.integers(0, 65536, size=grey.shape).astype(np.uint16)
    path = tmp_path / "la.png"
    path.write_bytes(_png_of_samples(np.stack([grey, alpha], axis=-1), 4, interlaced))
    im = read_image(path, warn=False)
    assert im.values.dtype == np.uint16 and im.bits_stored == 16
    np.testing.assert_array_equal(im.values, grey)
    assert im.notes == [f"{path}: grey + alpha image: the alpha (transparency) left out"]


def test_a_16_bit_grey_and_alpha_png_is_decoded_once(tmp_path, seed, monkeypatch):
    # it was decoded twice: at 8 bits into RGBA (Pillow's way), then its 16-bit grey
    from PIL import Image as PilImage

    grey = np.random.default_rng(seed).integers(0, 65536, size=(40, 30)).astype(np.uint16)
    path = tmp_path / "la.png"
    path.write_bytes(_png_of_samples(np.stack([grey, 65535 - grey], axis=-1), 4, False))
    made, decoders = PilImage._getdecoder, []

    def counted(mode, name, *args, **kwargs):
        decoders.append(name)
        return made(mode, name, *args, **kwargs)

    monkeypatch.setattr(PilImage, "_getdecoder", counted)
    np.testing.assert_array_equal(read_image(path, warn=False).values, grey)
    assert decoders == ["zip"]


def test_a_16_bit_grey_and_alpha_png_cut_in_its_pixels_is_called_truncated(tmp_path, seed):
    grey = np.random.default_rng(seed).integers(0, 65536, size=(40, 30)).astype(np.uint16)
    whole = _png_of_samples(np.stack([grey, grey], axis=-1), 4, False)
    (tmp_path / "la.png").write_bytes(whole[: whole.index(b"IDAT") + 40])
    with pytest.raises(ImageReadError, match=r"la\.png: cannot decode PNG: truncated or corrupt \(image file is "
                       r"truncated\)"):  # fmt: skip
        read_image(tmp_path / "la.png", warn=False)


def test_a_16_bit_grey_and_alpha_png_with_exif_after_its_pixels_is_turned_upright(tmp_path, seed):
    grey = np.random.default_rng(seed).integers(0, 65536, size=(5, 7)).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6  # turn it 90 degrees clockwise
    path = tmp_path / "la.png"
    path.write_bytes(_png_of_samples(np.stack([grey, grey], axis=-1), 4, False,
                                     after_idat=_png_chunk(b"eXIf", exif.tobytes()[6:])))  # (less its "Exif\0\0")
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, np.rot90(grey, -1))
    assert im.values.dtype == np.uint16 and any("Orientation (6)" in n for n in im.notes)


@pytest.mark.parametrize("colour_type", [0, 4, 2, 6])  # grey, grey + alpha, RGB (its grey in each), RGBA
@pytest.mark.parametrize(("shift", "bits"), [(0, 12), (4, 16)])
def test_a_16_bit_pngs_sbit_chunk_gives_its_depth(tmp_path, seed, colour_type, shift, bits):
    # sBIT was not read: a dark 12-bit image (values up to 1300) was guessed 11-bit and written out
    # over 0..2047, a bright one over 0..4095. Shifted into 16 bits as the PNG spec says (values up
    # to 1300 << 4), its scale is 16 bits, not the 15 its largest value needs.
    from xvertfast.io.read import full_range

    dark = np.random.default_rng(seed).integers(0, 1301, size=(9, 10)).astype(np.uint16) << shift
    dark[0, 0] = 1300 << shift
    colours, alpha = (3 if colour_type in (2, 6) else 1), colour_type in (4, 6)
    samples = np.stack([dark] * colours + [np.full_like(dark, 65535)] * alpha, axis=-1)
    path = tmp_path / "dark.png"
    sbit = _png_chunk(b"sBIT", bytes([12] * colours + [16] * alpha))  # (each colour's, and alpha's where there is one)
    path.write_bytes(_png_of_samples(samples, colour_type, False, before_idat=sbit))
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, dark)
    assert im.bits_stored == bits
    assert full_range(im) == (0.0, float((1 << bits) - 1))
    assert full_range(im, depth_hint=14) == (0.0, float((1 << bits) - 1))  # what the file says comes first
    assert full_range(im, depth_hint=15) == (0.0, float((1 << bits) - 1))  # (the scaled values fit in 15 bits)


@pytest.mark.parametrize("scaled", ["unscaled", "shifted", "repeated", "linear"])
def test_a_16_bit_pngs_sbit_the_values_contradict_is_said(tmp_path, seed, scaled):
    # sBIT 10 over values up to 4095 as they came (neither 10-bit nor 10-bit scaled to 16 bits)
    # read at 16 bits with no note; values scaled from 10 bits as the spec allows still say nothing
    v = np.random.default_rng(seed).integers(0, 1024, size=(9, 10)).astype(np.int64)
    v[0, 0] = 1023
    values = {"unscaled": v * 4 + 3, "shifted": v << 6, "repeated": (v << 6) | (v >> 4),
              "linear": (v * 65535 + 511) // 1023}[scaled].astype(np.uint16)  # fmt: skip
    path = tmp_path / "a.png"
    path.write_bytes(_png_of_samples(values[..., None], 0, False, before_idat=_png_chunk(b"sBIT", bytes([10]))))
    im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert im.bits_stored == 16
    said = [f"{path}: its sBIT chunk says 10-bit data, but its values (up to {int(values.max()):,}) are neither "
            "within 10 bits nor 10-bit values scaled to 16 bits: read as 16-bit data"]  # fmt: skip
    assert im.notes == (said if scaled == "unscaled" else [])


@pytest.mark.parametrize("unscaled", ["red", "green", "blue", None])
def test_a_16_bit_rgb_pngs_sbit_the_samples_contradict_is_said(tmp_path, seed, unscaled):
    # sBIT 10 over one colour's values up to 4095 as they came (the others 10-bit data shifted to
    # 16 bits) read at 16 bits with no note: a colour one's was never judged (its luminance need not
    # be scaled as its samples are); each colour is judged now, the first that contradicts it said
    pytest.importorskip("imagecodecs")  # (without it the file reads at 8 bits: its sBIT says nothing then)
    v = np.random.default_rng(seed).integers(0, 1024, size=(9, 10, 3)).astype(np.int64)
    v[0, 0] = 1023
    samples = v << 6
    colours = ["red", "green", "blue"]
    if unscaled is not None:
        k = colours.index(unscaled)
        samples[..., k] = v[..., k] * 4 + 3
    path = tmp_path / "c.png"
    sbit = _png_chunk(b"sBIT", bytes([10, 10, 10]))
    path.write_bytes(_png_of_samples(samples.astype(np.uint16), 2, False, before_idat=sbit))
    im = read_image(path, warn=False)
    assert im.bits_stored == 16
    said = [n for n in im.notes if "sBIT" in n]
    if unscaled is None:
        assert said == []
    else:
        top = int(samples[..., k].max())
        assert said == [f"{path}: its sBIT chunk says 10-bit {unscaled}, but its {unscaled} values (up to {top:,}) are "
                        "neither within 10 bits nor 10-bit values scaled to 16 bits: read as 16-bit data"]  # fmt: skip
        assert im.notes[-1] == said[0]


@pytest.mark.parametrize("shape, top", [((300, 200, 3), 1 << 16), ((40, 50, 3), 1 << 16), ((300, 200, 3), 40),
                                        ((0, 7, 3), 1 << 16), ((5, 0, 3), 1 << 16)])  # fmt: skip
def test_the_values_a_16_bit_png_s_sbit_is_judged_on_are_those_np_unique_finds(seed, shape, top):
    # _scaled_from judges the values that occur, marked in a table of flags (np.bincount copied a
    # channel to int64 first): the same values as np.unique's, a colour's strided channel, a
    # contiguous copy and an empty image alike; other types (not marked so) through np.unique
    from xvertfast.io.decode_pillow import _occurring

    rgb = np.random.default_rng(seed).integers(0, top, size=shape).astype(np.uint16)
    if rgb.size:
        rgb[0, 0, 0] = top - 1
    for channel in (rgb[..., 0], rgb[..., 2], np.ascontiguousarray(rgb[..., 1]), rgb[::2, ::3, 1], rgb):
        np.testing.assert_array_equal(_occurring(channel), np.unique(channel))
    for other in (rgb.astype(np.uint8), rgb.astype(np.int32) - 3):
        np.testing.assert_array_equal(_occurring(other[..., 0]), np.unique(other[..., 0]))


def test_judging_a_16_bit_png_s_sbit_copies_no_channel(seed):
    # np.bincount copied a colour PNG's channel (a strided view: raveled first) to int64, 5 times
    # its bytes at once (1 GB for a 100-Mpx image's), three times over a colour one; the table of
    # flags reads the samples where they are (64 KiB and the values that occur, a few here)
    from xvertfast.io.decode_pillow import _scaled_from

    v = np.random.default_rng(seed).integers(0, 1024, size=(1500, 1000, 3)).astype(np.uint16)
    samples = v << 6 | v >> 4  # 10-bit values scaled to 16 bits, the top bits repeated below
    channel, unscaled = samples[..., 1], (v * 4 + 3)[..., 1]
    with traced_memory() as memory:
        scaled = _scaled_from(channel, 10)
    peak = memory.peak
    assert scaled and not _scaled_from(unscaled, 10)
    assert peak < channel.nbytes // 4, f"peak {peak:,} bytes for a channel of {channel.nbytes:,}"


def test_a_16_bit_png_without_sbit_still_takes_its_depth_from_its_values(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 1301, size=(9, 10)).astype(np.uint16)
    values[0, 0] = 1300
    (tmp_path / "a.png").write_bytes(_png_of_samples(values[..., None], 0, False))
    im = read_image(tmp_path / "a.png", warn=False)
    assert im.bits_stored == 11 and "significant_bits" not in im.meta


@pytest.mark.parametrize("depth_hint", [17, 32])
def test_a_depth_hint_wider_than_the_values_container_is_not_taken(tmp_path, seed, depth_hint):
    # a float32 or uint32 TIFF's depth, kept for its 16-bit PNG output, scaled it over 32 bits:
    # the output scored as black
    from xvertfast.io.read import full_range

    values = np.random.default_rng(seed).integers(0, 60001, size=(9, 10)).astype(np.uint16)
    values[0, 0] = 60000
    (tmp_path / "a.png").write_bytes(_png_of_samples(values[..., None], 0, False))
    im = read_image(tmp_path / "a.png", warn=False)
    assert full_range(im, depth_hint=depth_hint) == (0.0, 65535.0)
    assert full_range(im, depth_hint=16) == (0.0, 65535.0)


def test_a_16_bit_pngs_sbit_of_16_says_nothing_of_its_depth(tmp_path, seed):
    # sBIT equal to the bit depth is PNG's default, written by tools that copy it: 12-bit data
    # with it was taken for 16-bit data (bits_stored 16, and full_range(depth_hint=12) 0..65535)
    from xvertfast.io.read import full_range

    values = np.random.default_rng(seed).integers(0, 4096, size=(9, 10)).astype(np.uint16)
    values[0, 0] = 4095
    path = tmp_path / "a.png"
    path.write_bytes(_png_of_samples(values[..., None], 0, False, before_idat=_png_chunk(b"sBIT", bytes([16]))))
    im = read_image(path, warn=False)
    assert im.bits_stored == 12 and "significant_bits" not in im.meta
    assert full_range(im, depth_hint=12) == (0.0, 4095.0)


def _grey_ramp(h: int, w: int) -> np.ndarray:
    """0..65535 in h * w steps: most of its values' low bytes are not their high byte's copy."""
    return np.rint(np.linspace(0, 65535, h * w)).astype(np.uint16).reshape(h, w)


@pytest.mark.parametrize("interlaced", [False, True])
def test_a_16_bit_rgb_png_of_a_grey_ramp_reads_as_that_grey_png(tmp_path, interlaced, caplog):
    # Pillow decodes 16-bit colour at 8 bits: a researcher's export of grey copied into RGB was
    # read as its high bytes (uint8, bits_stored 8), and written out 8-bit
    from xvertfast.io.read import full_range

    ramp = _grey_ramp(40, 30)
    (tmp_path / "grey.png").write_bytes(_png_of_samples(ramp[..., None], 0, interlaced))
    (tmp_path / "rgb.png").write_bytes(_png_of_samples(np.stack([ramp] * 3, axis=-1), 2, interlaced))
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):
        grey, rgb = read_image(tmp_path / "grey.png", warn=False), read_image(tmp_path / "rgb.png", warn=False)
    assert rgb.values.dtype == np.uint16
    np.testing.assert_array_equal(rgb.values, grey.values)
    np.testing.assert_array_equal(rgb.pixels, grey.pixels)
    assert rgb.bits_stored == grey.bits_stored == 16 and full_range(rgb) == full_range(grey) == (0.0, 65535.0)
    assert rgb.notes == [f"{tmp_path / 'rgb.png'}: RGB image converted to luminance (grayscale): its red, green and "
                         "blue are equal in every pixel, so the conversion lost nothing"]  # fmt: skip
    # libpng's line about every interlaced file: neither a note nor logged (pytest's handler on the
    # root logger takes what is logged, so stderr would show nothing either way)
    assert not [r for r in caplog.records if r.name == "imagecodecs"]


def test_a_16_bit_rgba_png_reads_as_the_same_rgba_tiff_and_its_rgb(tmp_path, seed):
    # the same luminance rule as a 16-bit colour TIFF's, at 16 bits; its alpha left out
    import tifffile

    samples = np.random.default_rng(seed).integers(0, 65536, size=(17, 23, 4)).astype(np.uint16)
    (tmp_path / "rgba.png").write_bytes(_png_of_samples(samples, 6, False))
    (tmp_path / "rgb.png").write_bytes(_png_of_samples(samples[..., :3], 2, True))
    tifffile.imwrite(tmp_path / "rgba.tif", samples, photometric="rgb", extrasamples=["unassalpha"])
    png, tif = read_image(tmp_path / "rgba.png", warn=False), read_image(tmp_path / "rgba.tif", warn=False)
    assert png.values.dtype == np.uint16 and png.bits_stored == tif.bits_stored == 16
    np.testing.assert_array_equal(png.values, tif.values)
    np.testing.assert_array_equal(png.values, read_image(tmp_path / "rgb.png", warn=False).values)
    assert png.notes == [f"{tmp_path / 'rgba.png'}: RGBA image converted to luminance (grayscale)"]


def test_a_16_bit_colour_pngs_sbit_takes_its_deepest_colour(tmp_path, seed):
    # the luminance of samples each within its colour's bits is within the deepest of them
    values = np.random.default_rng(seed).integers(0, 1024, size=(9, 10, 3)).astype(np.uint16)
    values[0, 0, 1] = 1023
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(values, 2, False, before_idat=_png_chunk(b"sBIT", bytes([8, 10, 9]))))
    im = read_image(path, warn=False)
    assert im.bits_stored == 10 and im.meta["significant_bits"] == 10
    path.write_bytes(_png_of_samples(values, 2, False, before_idat=_png_chunk(b"sBIT", bytes([16, 16, 16]))))
    im = read_image(path, warn=False)  # (PNG's default: nothing said of the depth; from its values, as for grey)
    assert im.bits_stored == 10 and "significant_bits" not in im.meta


def read_a_16_bit_colour_ramp_at_8_bits(tmp_path):
    """The tests of a 16-bit colour PNG that Pillow decodes (imagecodecs missing or unusable) write
    a grey ramp as one and read it: 8-bit values, and notes that say what would read all 16."""
    ramp = _grey_ramp(40, 30)
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(np.stack([ramp] * 3, axis=-1), 2, False))
    im = read_image(path, warn=False)
    assert im.values.dtype == np.uint8
    return path, ramp, im


def read_at_8_bits_note(path, reader: str) -> str:
    """The note a 16-bit colour PNG read at 8 bits has, ``reader`` saying what would read it at 16."""
    return (f"{path}: 16-bit colour PNG: decoded at 8 bits (Pillow keeps only the high byte of each sample); "
            f"{reader} reads it at 16 bits, or save it as 16-bit greyscale to keep the depth")  # fmt: skip


def test_a_16_bit_colour_png_without_imagecodecs_says_it_is_read_at_8_bits(tmp_path, monkeypatch):
    # Pillow alone decodes 16-bit colour PNGs at 8 bits: the loss is said, with what would read them
    import sys

    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # (import imagecodecs raises ImportError)
    path, ramp, im = read_a_16_bit_colour_ramp_at_8_bits(tmp_path)
    assert im.bits_stored == 8
    np.testing.assert_array_equal(im.values, ramp >> 8)
    assert im.notes == [read_at_8_bits_note(path, "`pip install imagecodecs`"),
                        f"{path}: RGB image converted to luminance (grayscale)"]  # fmt: skip


def test_a_16_bit_colour_png_where_imagecodecs_lacks_its_png_codec_says_which_is_missing(tmp_path, monkeypatch):
    # the note said `pip install imagecodecs` where it is installed, built without its PNG codec
    import imagecodecs

    monkeypatch.setattr(imagecodecs.PNG, "available", False)
    path, _, im = read_a_16_bit_colour_ramp_at_8_bits(tmp_path)
    assert im.notes[0] == read_at_8_bits_note(path, "imagecodecs with its PNG codec")


def make_imagecodecs_fail_to_import(monkeypatch, reason: str) -> None:
    """imagecodecs as where it is installed but its import fails (built for another Python or
    numpy): found, and its module raising ImportError as it runs."""
    import importlib.abc
    import importlib.util
    import sys

    class BrokenBuild(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            return importlib.util.spec_from_loader(name, self) if name == "imagecodecs" else None

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            raise ImportError(reason)

    monkeypatch.delitem(sys.modules, "imagecodecs", raising=False)
    monkeypatch.setattr(sys, "meta_path", [BrokenBuild(), *sys.meta_path])


def test_a_16_bit_colour_png_where_imagecodecs_fails_to_import_says_so_and_why(tmp_path, monkeypatch):
    # imagecodecs installed but failing to import (an ABI mismatch) was named 'imagecodecs with
    # its PNG codec', which it has: the user looked for a codec, not at the import error
    make_imagecodecs_fail_to_import(monkeypatch, "_shared.abi3.so: undefined symbol: PyUnicode_Foo\nmore")
    path, _, im = read_a_16_bit_colour_ramp_at_8_bits(tmp_path)
    assert im.notes[0] == read_at_8_bits_note(
        path, "imagecodecs (installed, but it fails to import: _shared.abi3.so: undefined symbol: PyUnicode_Foo)"
    )


def test_what_libpng_warns_of_a_16_bit_colour_png_becomes_its_note_naming_it(tmp_path, seed, caplog):
    # imagecodecs logs libpng's warnings naming no file: in a batch, a line from nowhere
    import imagecodecs

    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(samples, 2, False, before_idat=_png_chunk(b"iCCP", b"x\0\0garbage")))
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):
        im = read_image(path, warn=False)
    assert im.notes == [f"{path}: libpng: iCCP: too short", f"{path}: RGB image converted to luminance (grayscale)"]
    assert not [r for r in caplog.records if r.name == "imagecodecs"]
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):  # imagecodecs used by others: logged as before
        imagecodecs.png_decode(path.read_bytes())
    assert [r for r in caplog.records if r.name == "imagecodecs"]


def test_libpngs_warning_is_still_a_note_after_the_host_took_the_filter_off_the_logger(tmp_path, seed, caplog):
    # the filter was added to imagecodecs' logger once: taken off (by an application, a test's
    # fixture), every later file's libpng lines went to stderr naming none, and no note
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(samples, 2, False, before_idat=_png_chunk(b"iCCP", b"x\0\0garbage")))
    read_image(path, warn=False)
    logger = logging.getLogger("imagecodecs")
    ours = [f for f in logger.filters if type(f).__module__ == "xvertfast.io.errors"]
    assert ours
    for log_filter in ours:
        logger.removeFilter(log_filter)
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):
        im = read_image(path, warn=False)
    assert im.notes[0] == f"{path}: libpng: iCCP: too short", im.notes
    assert not [r for r in caplog.records if r.name == "imagecodecs"]
    assert [f for f in logger.filters if type(f).__module__ == "xvertfast.io.errors"] == ours  # (once, not twice)


def test_what_libpng_warns_of_a_16_bit_colour_png_is_kept_to_a_few_notes(tmp_path, seed):
    # a 70 KB file of 3000 bad iCCP chunks gave 3001 notes (tifffile's are kept to 10 + 1)
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(samples, 2, False, before_idat=_png_chunk(b"iCCP", b"x\0\0garbage") * 3000))
    notes = read_image(path, warn=False).notes
    assert notes[:10] == [f"{path}: libpng: iCCP: too short"] * 10, notes[:10]
    assert re.fullmatch(rf"{re.escape(str(path))}: \.\.\. and [0-9]+ more messages from imagecodecs about this file",
                        notes[10]), notes[10]  # fmt: skip
    assert notes[11:] == [f"{path}: RGB image converted to luminance (grayscale)"]


def test_a_library_logging_tens_of_thousands_of_lines_about_a_file_keeps_a_few_and_counts_the_rest():
    # every message was held until read back (a damaged table: a line per bogus entry), the cap
    # applied only then; the count of the others must stay exact, those left out by the words too
    from xvertfast.io.errors import LogNamingTheFile

    logger = logging.getLogger("xvertfast.tests.many_lines")
    block = LogNamingTheFile(logger.name, lambda m: None if m.startswith("about the call") else m.upper())
    with traced_memory() as memory:
        with block:
            for i in range(20_000):
                logger.warning("about the call %d" if i % 4 == 0 else "bad entry number %d of the table", i)
    held = memory.held
    assert held < 100_000, f"{held:,} bytes held for the messages"  # (all held: 1.8 MB)
    kept = [f"BAD ENTRY NUMBER {i} OF THE TABLE" for i in range(20_000) if i % 4][: LogNamingTheFile.KEPT]
    assert block.kept() == kept + [f"... and {15_000 - len(kept)} more messages from {logger.name} about this file"]
    assert block.notes("f.tif")[-1] == f"f.tif: ... and 14990 more messages from {logger.name} about this file"


def test_what_libpng_warned_of_a_16_bit_colour_png_it_then_fails_on_is_in_its_error(tmp_path, seed, caplog):
    # a failed file's notes are not reported, and its warnings were dropped: the clue to why lost
    samples = np.random.default_rng(seed).integers(0, 65536, size=(40, 30, 3)).astype(np.uint16)
    whole = _png_of_samples(samples, 2, False, before_idat=_png_chunk(b"iCCP", b"x\0\0garbage"))
    (tmp_path / "c.png").write_bytes(whole[: whole.index(b"IDAT") + 40])
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"), pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "c.png", warn=False)
    assert str(caught.value).startswith(f"{tmp_path / 'c.png'}: cannot decode PNG: truncated or corrupt (libpng: ")
    assert str(caught.value).endswith("; imagecodecs: libpng: iCCP: too short"), str(caught.value)
    assert not [r for r in caplog.records if r.name == "imagecodecs"]


@pytest.mark.parametrize("logged", ["PNG warning: iCCP: too short", "PNG iCCP: too short"])
def test_libpngs_warning_is_noted_in_the_wording_of_any_imagecodecs(tmp_path, seed, monkeypatch, logged):
    # the note took off "PNG warning: " only; older imagecodecs log libpng's warnings as "PNG %s"
    import imagecodecs

    png_decode = imagecodecs.png_decode

    def logging_decode(data):
        logging.getLogger("imagecodecs").warning(logged)
        return png_decode(data)

    monkeypatch.setattr(imagecodecs, "png_decode", logging_decode)
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(samples, 2, False))
    assert read_image(path, warn=False).notes[0] == f"{path}: libpng: iCCP: too short"


def test_what_imagecodecs_logs_of_another_codec_is_noted_as_imagecodecs(tmp_path, seed, monkeypatch):
    # a message not libpng's (imagecodecs logs from its JPEG 2000, TIFF, colour code too) became
    # a note naming no source; in a failed file's error the logger is named once, not twice
    import imagecodecs

    png_decode = imagecodecs.png_decode

    def logging_decode(data, fail=False):
        logging.getLogger("imagecodecs").warning("jpeg2k: tile part length too short")
        logging.getLogger("imagecodecs").warning("PNG warning: iCCP: too short")
        if fail:
            raise ValueError("decoding failed")
        return png_decode(data)

    monkeypatch.setattr(imagecodecs, "png_decode", logging_decode)
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(samples, 2, False))
    assert read_image(path, warn=False).notes[:2] == [f"{path}: imagecodecs: jpeg2k: tile part length too short",
                                                      f"{path}: libpng: iCCP: too short"]  # fmt: skip
    monkeypatch.setattr(imagecodecs, "png_decode", lambda data: logging_decode(data, fail=True))
    with pytest.raises(ImageReadError) as caught:
        read_image(path, warn=False)
    assert str(caught.value).endswith(
        "(libpng: decoding failed); imagecodecs: jpeg2k: tile part length too short; libpng: iCCP: too short")


def test_a_16_bit_rgb_png_with_a_transparent_colour_reads_as_the_same_file_without(tmp_path, seed, caplog):
    # libpng gives an RGB PNG's tRNS colour as a fourth channel, alpha: left out as an RGBA one's
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    transparent = _png_chunk(b"tRNS", samples[0, 0].astype(">u2").tobytes())
    (tmp_path / "t.png").write_bytes(_png_of_samples(samples, 2, False, before_idat=transparent))
    (tmp_path / "c.png").write_bytes(_png_of_samples(samples, 2, False))
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):
        with_trns, without = read_image(tmp_path / "t.png", warn=False), read_image(tmp_path / "c.png", warn=False)
    assert with_trns.values.dtype == np.uint16 and with_trns.bits_stored == without.bits_stored
    np.testing.assert_array_equal(with_trns.values, without.values)
    hidden = int((samples == samples[0, 0]).all(axis=-1).sum())  # (its tRNS colour's pixels, said since)
    assert with_trns.notes == [f"{tmp_path / 't.png'}: RGB image converted to luminance (grayscale)",
                               f"{tmp_path / 't.png'}: RGB image with a transparent colour (tRNS): its {hidden:,} pixels "
                               "of the transparent colour read as they are, the transparency left out"]  # fmt: skip
    assert not [r for r in caplog.records if r.name == "imagecodecs"]


@pytest.mark.parametrize(("colour_type", "depth"), [(0, 8), (0, 16), (2, 8), (2, 16)])
def test_a_grey_or_rgb_png_with_a_transparent_level_says_its_pixels_read_as_they_are(tmp_path, seed, colour_type,
                                                                                     depth):  # fmt: skip
    # a grey or RGB PNG's tRNS (one grey level or colour marked transparent) was left out with no
    # note, where a palette's transparency is said (3576eb6); a level no pixel has says nothing
    rng = np.random.default_rng(seed)
    colours = 3 if colour_type == 2 else 1
    samples = rng.integers(0, 1 << depth, size=(9, 10, colours)).astype(np.uint16)
    samples[0, :3] = samples[1, 1]
    level = samples[1, 1]
    hidden = int((samples == level).all(axis=-1).sum())
    absent = next(np.full(colours, c) for c in range(256) if not (samples == c).all(axis=-1).any())
    for name, trns in [("t.png", level), ("none.png", absent)]:  # (a level none of its pixels has: no note)
        path = tmp_path / name
        if depth == 8:
            im = Image.fromarray(samples[..., 0].astype(np.uint8) if colours == 1 else samples.astype(np.uint8))
            im.save(path, transparency=int(trns[0]) if colours == 1 else tuple(int(t) for t in trns))
        else:
            chunk = _png_chunk(b"tRNS", np.asarray(trns, ">u2").tobytes())
            path.write_bytes(_png_of_samples(samples, colour_type, False, before_idat=chunk))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rad = read_image(path, warn=False)
        said = [n for n in rad.notes if "tRNS" in n]
        if name == "none.png":
            assert said == []
            continue
        what = "grey level" if colours == 1 else "colour"
        assert said == [f"{path}: {'grey' if colours == 1 else 'RGB'} image with a transparent {what} (tRNS): its "
                        f"{hidden:,} pixels of the transparent {what} read as they are, the transparency left out"]
        assert rad.notes[-1] == said[0]  # (after the conversion's note, as a palette's)


@pytest.mark.parametrize("depth", [8, 16])
def test_a_grey_rgb_png_whose_transparent_colour_hides_pixels_is_not_said_to_lose_nothing(tmp_path, seed, depth):
    # grey stored as RGB is told its conversion lost nothing; with a tRNS colour some of its pixels
    # hold, their transparency was lost beside that claim (at 16 bits libpng decodes it, imagecodecs
    # of the test extra; at 8 Pillow). A tRNS colour no pixel holds hides nothing: the claim stays
    grey = np.random.default_rng(seed).integers(0, 1 << depth, size=(9, 10)).astype(np.uint16)
    samples = np.repeat(grey[..., None], 3, axis=-1)
    absent = next(c for c in range(256) if not (grey == c).any())
    for name, level in [("t.png", int(grey[1, 1])), ("none.png", absent)]:
        path = tmp_path / name
        if depth == 8:
            Image.fromarray(samples.astype(np.uint8)).save(path, transparency=(level,) * 3)
        else:
            chunk = _png_chunk(b"tRNS", np.full(3, level, ">u2").tobytes())
            path.write_bytes(_png_of_samples(samples, 2, False, before_idat=chunk))
        rad = read_image(path, warn=False)
        np.testing.assert_array_equal(rad.values, grey)
        converted = [n for n in rad.notes if "converted to luminance" in n]
        kept = ": its red, green and blue are equal in every pixel, so the conversion lost nothing"
        assert converted == [f"{path}: RGB image converted to luminance (grayscale){kept if name == 'none.png' else ''}"]
        assert any("tRNS" in n for n in rad.notes) == (name == "t.png"), rad.notes


def _low_bit_grey_png(levels: np.ndarray, depth: int, before_idat: bytes = b"") -> bytes:
    """A grey PNG of 1, 2 or 4 bits of the ``levels`` [H, W] (0..2^depth - 1), written here (Pillow
    writes 1-bit grey alone), its rows packed high bits first and unfiltered."""
    h, w = levels.shape
    bits = ((levels[..., None] >> np.arange(depth - 1, -1, -1)) & 1).astype(np.uint8).reshape(h, w * depth)
    rows = np.packbits(bits, axis=1)  # (each row padded to whole bytes, as PNG pads it)
    scanlines = b"".join(b"\0" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + before_idat + _png_chunk(b"IDAT", zlib.compress(scanlines))
            + _png_chunk(b"IEND", b""))  # fmt: skip


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_a_low_bit_grey_png_with_a_transparent_level_says_its_pixels_read_as_they_are(tmp_path, seed, depth):
    # its tRNS grey level (at its own depth, which Pillow scales to 0..255) was left out without a
    # note, where an 8- or 16-bit grey one's is said (cbe20c4); a level no pixel has says nothing
    levels = np.random.default_rng(seed).integers(0, 1 << depth, size=(9, 11)).astype(np.uint8)
    levels[0, 0], levels[0, 1] = 0, (1 << depth) - 1
    level = int(levels[1, 1])
    hidden = int(np.count_nonzero(levels == level))
    for name, trns in [("t.png", level), ("none.png", 1 << depth)]:  # (a level past its depth: no pixel has it)
        path = tmp_path / name
        path.write_bytes(_low_bit_grey_png(levels, depth, _png_chunk(b"tRNS", struct.pack(">H", trns))))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rad = read_image(path, warn=False)
        np.testing.assert_array_equal(rad.values, levels * (255 // ((1 << depth) - 1)))  # (read as before)
        assert rad.notes == ([] if name == "none.png" else
                             [f"{path}: grey image with a transparent grey level (tRNS): its {hidden:,} pixels of "
                              "the transparent grey level read as they are, the transparency left out"])  # fmt: skip


def test_a_16_bit_rgb_png_with_a_transparent_colour_read_at_8_bits_says_its_pixels_at_most(tmp_path, seed,
                                                                                           monkeypatch):  # fmt: skip
    # without imagecodecs Pillow decodes it at 8 bits (the high bytes), and its tRNS colour was left
    # out without a note: its pixels are now counted on their high bytes, as many or more than hold it
    import xvertfast.io.decode_pillow as decode_pillow

    monkeypatch.setattr(decode_pillow, "imagecodecs_decoder", lambda codec: None)
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    samples[0, :2] = samples[1, 1]
    samples[2, 2] = samples[1, 1] ^ 1  # (another colour of the same high bytes: counted too)
    high = samples >> 8
    at_most = int((high == high[1, 1]).all(axis=-1).sum())
    for name, trns in [("t.png", samples[1, 1]), ("none.png", None)]:
        if trns is None:  # (a colour whose high bytes no pixel has: no note)
            trns = next(np.full(3, c << 8) for c in range(256) if not (high == c).all(axis=-1).any())
        path = tmp_path / name
        chunk = _png_chunk(b"tRNS", np.asarray(trns, ">u2").tobytes())
        path.write_bytes(_png_of_samples(samples, 2, False, before_idat=chunk))
        rad = read_image(path, warn=False)
        said = [n for n in rad.notes if "tRNS" in n]
        assert said == ([] if name == "none.png" else
                        [f"{path}: RGB image with a transparent colour (tRNS): its pixels of the transparent colour "
                         f"(at most {at_most:,}: matched on their high bytes, as decoded at 8 bits) read as they are, "
                         "the transparency left out"])  # fmt: skip


def test_libpngs_warnings_land_on_the_file_of_the_thread_that_read_it(tmp_path, seed, caplog):
    # enhance reads on several threads: a warning is its own file's note, none another file's,
    # and imagecodecs used elsewhere at the same time still logs (the lists are per thread)
    import threading

    import imagecodecs

    samples = np.random.default_rng(seed).integers(0, 65536, size=(200, 200, 3)).astype(np.uint16)
    warned, clean = tmp_path / "warned.png", tmp_path / "clean.png"
    warned.write_bytes(_png_of_samples(samples, 2, False, before_idat=_png_chunk(b"iCCP", b"x\0\0garbage")))
    clean.write_bytes(_png_of_samples(samples, 2, True))  # (interlaced: libpng's line on any such file, no note)
    rounds, wrong, failed = 30, [], []

    def read(path, libpng_notes):
        try:
            for _ in range(rounds):
                notes = read_image(path, warn=False).notes
                if [n for n in notes if ": libpng: " in n] != libpng_notes:
                    wrong.append(notes)
        except BaseException as exc:
            failed.append(exc)

    def decode_elsewhere():
        try:
            for _ in range(rounds):
                imagecodecs.png_decode(warned.read_bytes())
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=read, args=(warned, [f"{warned}: libpng: iCCP: too short"])),
               threading.Thread(target=read, args=(clean, [])),
               threading.Thread(target=decode_elsewhere, name="elsewhere")]  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failed and not wrong, (failed, wrong[:2])
    logged = [r for r in caplog.records if r.name == "imagecodecs"]
    assert len(logged) == rounds and {r.threadName for r in logged} == {"elsewhere"}
    assert {r.getMessage() for r in logged} == {"PNG warning: iCCP: too short"}


def test_image_data_beyond_the_last_row_is_a_note_of_a_16_bit_colour_png_not_of_a_grey_one(tmp_path, seed):
    # as reading-writing.md says: libpng warns of it, Pillow (grey) reads it silently
    samples = np.random.default_rng(seed).integers(0, 65536, size=(9, 10, 3)).astype(np.uint16)
    for colour_type, values in ((2, samples), (0, samples[..., :1])):
        rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in values)
        header = struct.pack(">IIBBBBB", 10, 9, 16, colour_type, 0, 0, 0)
        (tmp_path / f"{colour_type}.png").write_bytes(
            b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows + bytes(50)))
            + _png_chunk(b"IEND", b""))  # fmt: skip
    colour, grey = read_image(tmp_path / "2.png", warn=False), read_image(tmp_path / "0.png", warn=False)
    np.testing.assert_array_equal(grey.values, samples[..., 0])
    assert [n for n in colour.notes if n.startswith(f"{tmp_path / '2.png'}: libpng: ")], colour.notes
    assert grey.notes == []


def test_a_16_bit_colour_png_with_exif_after_its_pixels_is_turned_upright(tmp_path, seed):
    samples = np.random.default_rng(seed).integers(0, 65536, size=(5, 7, 3)).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6  # turn it 90 degrees clockwise
    path = tmp_path / "c.png"
    path.write_bytes(_png_of_samples(samples, 2, False, after_idat=_png_chunk(b"eXIf", exif.tobytes()[6:])))
    path_upright = tmp_path / "upright.png"
    path_upright.write_bytes(_png_of_samples(np.rot90(samples, -1), 2, False))
    im = read_image(path, warn=False)
    assert im.values.dtype == np.uint16 and any("Orientation (6)" in n for n in im.notes)
    np.testing.assert_array_equal(im.values, read_image(path_upright, warn=False).values)


def test_a_16_bit_colour_png_cut_in_its_pixels_is_called_truncated(tmp_path, seed):
    samples = np.random.default_rng(seed).integers(0, 65536, size=(40, 30, 4)).astype(np.uint16)
    whole = _png_of_samples(samples, 6, False)
    (tmp_path / "c.png").write_bytes(whole[: whole.index(b"IDAT") + 40])
    with pytest.raises(ImageReadError, match=r"c\.png: cannot decode PNG: truncated or corrupt \(libpng: "):
        read_image(tmp_path / "c.png", warn=False)


def test_an_8_bit_grey_and_alpha_png_says_its_alpha_is_left_out(tmp_path, seed):
    grey = np.random.default_rng(seed).integers(0, 256, size=(6, 9)).astype(np.uint8)
    Image.fromarray(np.stack([grey, 255 - grey], axis=-1), "LA").save(tmp_path / "la.png")
    im = read_image(tmp_path / "la.png", warn=False)
    np.testing.assert_array_equal(im.values, grey)
    assert im.notes == [f"{tmp_path / 'la.png'}: grey + alpha image: the alpha (transparency) left out"]


def _dicom_with_excess_padding(path, rng):
    """A DICOM whose pixel data has bytes to spare: pydicom warns while decoding it."""
    import pydicom

    make_dicom(path, rng.integers(0, 4096, size=(24, 40)).astype(np.uint16))
    ds = pydicom.dcmread(path)
    ds.PixelData = ds.PixelData + b"\0" * 200
    ds.save_as(path)


def test_pydicom_warnings_name_the_file(tmp_path, seed):
    pytest.importorskip("pydicom")
    path = str(tmp_path / "padded.dcm")
    _dicom_with_excess_padding(path, np.random.default_rng(seed))
    for _ in range(2):  # the second read of the same warning is named too (not deduplicated away)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            read_image(path, warn=False)
        said = [str(w.message) for w in caught]
        assert len(said) == 1 and said[0].startswith(f"{path}: ") and "excess padding" in said[0], said


def test_pydicom_warnings_name_their_own_file_when_read_in_threads(tmp_path, seed):
    """enhance reads on several threads: each warning is named after the file that gave it."""
    import concurrent.futures as cf

    pytest.importorskip("pydicom")
    rng = np.random.default_rng(seed)
    paths = [str(tmp_path / f"padded{k}.dcm") for k in range(8)]
    for path in paths:
        _dicom_with_excess_padding(path, rng)
    before = warnings.showwarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with cf.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: read_image(p, warn=False), paths * 4))
    said = sorted(str(w.message) for w in caught)
    assert [s.split(": ")[0] for s in said] == sorted(paths * 4) and all("excess padding" in s for s in said)
    assert warnings.showwarning is before


def test_a_too_small_image_is_refused_with_its_width_and_height_said_as_such(tmp_path):
    from xvertfast.io.read import require_content

    Image.fromarray(np.arange(2000 * 30, dtype=np.uint16).reshape(2000, 30)).save(tmp_path / "strip.png")
    with pytest.raises(ImageReadError, match=r"strip.png: image is 30 x 2000 pixels \(width x height\): too small"):
        require_content(read_image(tmp_path / "strip.png", warn=False))


def test_arguments_of_the_wrong_kind_are_refused_by_name(tmp_path):
    # max_pixels=None (as if "no limit") failed deep in the decoder: "'>' not supported between
    # instances of 'int' and 'NoneType'"; require_content of an array or a path: AttributeError
    from xvertfast.io.read import require_content

    Image.fromarray(np.arange(40 * 36, dtype=np.uint16).reshape(40, 36)).save(tmp_path / "a.png")
    for bad in (None, 0, -1, 1.5, "1e6", True):
        with pytest.raises(ValueError, match=rf"read_image: max_pixels must be a whole number >= 1, got {re.escape(repr(bad))}"):
            read_image(tmp_path / "a.png", max_pixels=bad)
    rad = read_image(tmp_path / "a.png", max_pixels=np.int64(40 * 36), warn=False)
    for bad in (rad.pixels, str(tmp_path / "a.png")):
        with pytest.raises(TypeError, match=r"require_content: rad must be a Radiograph \(xvertfast\.io\.read_image\(path\) "
                                            rf"gives one\), got {type(bad).__name__}"):  # fmt: skip
            require_content(bad)
    for bad in (None, 0, 2.5, "32", 36.0):  # (36.0 was taken: the float rule is max_pixels' alone)
        with pytest.raises(ValueError, match=rf"require_content: min_side must be a whole number >= 1, got {re.escape(repr(bad))}"):
            require_content(rad, min_side=bad)
    assert require_content(rad, min_side=np.int32(36)) is rad


def test_max_pixels_written_as_a_float_of_a_whole_number_is_taken(tmp_path):
    # max_pixels=5e8 (how Python writes 500 million) was read before the check of 301bef8, and
    # then refused as 'must be a whole number >= 1, got 500000000.0'
    Image.fromarray(np.arange(40 * 36, dtype=np.uint16).reshape(40, 36)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=5e8, warn=False).shape == (40, 36)
    assert read_image(tmp_path / "a.png", max_pixels=np.float32(40 * 36), warn=False).shape == (40, 36)
    with pytest.raises(ImageReadError, match=r"above the limit of 1,439 \(max_pixels\)"):
        read_image(tmp_path / "a.png", max_pixels=1439.0)
    for bad in (1439.5, float("nan"), -float("inf")):
        with pytest.raises(ValueError, match=r"read_image: max_pixels must be a whole number >= 1"):
            read_image(tmp_path / "a.png", max_pixels=bad)
    # math.inf, no limit, worked before that check too (found by review: it was refused)
    assert read_image(tmp_path / "a.png", max_pixels=math.inf, warn=False).shape == (40, 36)
    assert read_image(tmp_path / "a.png", max_pixels=np.float64("inf"), warn=False).shape == (40, 36)


def _luma(rgb) -> np.ndarray:
    """ITU-R 601 luma of [..., 3] samples, rounded, summed term by term as the reader does: a
    matrix product's order follows the memory layout and can round a .5 the other way."""
    rgb = np.asarray(rgb, np.float64)
    return np.rint(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_the_luminance_of_colour_samples_takes_no_float64_copy_of_all_three(seed, dtype):
    # it copied the three channels to float64 first (384 MiB at 4096 x 4096): its peak was 672
    # MiB there, now 256 (read_image's of a 16-bit RGB PNG that size: 778 MiB over its start,
    # now 361); it weighs each channel in float64 (float32 samples too) and adds them into one
    # array, in the same order, so the same values
    from xvertfast.io.decode_common import luminance

    samples = np.random.default_rng(seed).integers(0, 65536, size=(512, 512, 4)).astype(dtype)
    plane = 512 * 512 * 8  # one channel in float64
    with traced_memory() as memory:
        grey = luminance(samples[..., :3], [], "x.png")
    peak = memory.peak
    assert peak < 2.5 * plane, f"{peak / plane:.1f} float64 planes"
    expected = _luma(samples[..., :3]) if dtype == np.uint16 else _luma_unrounded(samples[..., :3])
    assert grey.dtype == (np.uint16 if dtype == np.uint16 else np.float32)
    np.testing.assert_array_equal(grey, expected.astype(grey.dtype))


def _luma_unrounded(rgb) -> np.ndarray:
    rgb = np.asarray(rgb, np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


@pytest.mark.parametrize("descriptor_bits, scale, bits", [(16, 1, 16), (8, 1, 16), (8, 0, 8)],
                         ids=["16-bit", "16-bit entries, descriptor says 8", "8-bit"])
def test_a_palette_color_dicom_is_read_through_its_colour_tables(tmp_path, seed, descriptor_bits, scale, bits):
    # PALETTE COLOR stores indices into colour tables: read as grey levels, the image was
    # another one (here a reversed ramp: dark where the colours are bright). A table of 16-bit
    # entries whose descriptor says 8 was recorded as 8 bits
    import pydicom

    indices = np.random.default_rng(seed).integers(0, 256, size=(12, 20)).astype(np.uint8)
    indices[0, 0], indices[0, 1] = 0, 255
    make_dicom(tmp_path / "p.dcm", indices, photometric="PALETTE COLOR", bits=8, slope=None)
    ds = pydicom.dcmread(tmp_path / "p.dcm")
    ds.BitsAllocated, ds.PixelData = 8, indices.tobytes()
    ramp = np.arange(256)
    tables = {"Red": (255 - ramp) * 257, "Green": (255 - ramp) * 200, "Blue": ramp * 100}
    if not scale:  # 8-bit entries
        tables = {"Red": 255 - ramp, "Green": (255 - ramp) * 200 // 257, "Blue": ramp * 100 // 257}
    for colour, table in tables.items():
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, descriptor_bits])
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", table.astype("<u2").tobytes())
    ds.save_as(tmp_path / "p.dcm")
    im = read_image(tmp_path / "p.dcm", warn=False)
    want = _luma(np.stack([tables[c][indices] for c in ("Red", "Green", "Blue")], axis=-1))
    assert im.photometric == "MONOCHROME2" and im.bits_stored == bits
    np.testing.assert_array_equal(im.values, want)
    np.testing.assert_allclose(im.pixels, (want - want.min()) / (want.max() - want.min()), atol=1e-6)
    assert any("PALETTE COLOR image converted to luminance" in n for n in im.notes)


@pytest.mark.parametrize("trns", [bytes([255, 0, 128]), 1])
def test_a_palette_png_with_transparency_says_its_transparent_pixels_read_as_their_colour(tmp_path, seed, trns):
    # a palette PNG's tRNS (an alpha an entry, or one transparent entry) was left out with no note:
    # only "palette image converted to luminance", where an alpha channel's loss is said
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, 4, (20, 30)).astype(np.uint8)
    indices[0, :4] = 0, 1, 2, 3
    im = Image.fromarray(indices, "P")
    im.putpalette([0, 0, 0, 90, 90, 90, 180, 180, 180, 255, 255, 255])
    im.save(tmp_path / "p.png", transparency=trns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (Pillow's "should be converted to RGBA images", naming no file: the note says it)
        rad = read_image(tmp_path / "p.png", warn=False)
    np.testing.assert_array_equal(rad.values, np.array([0, 90, 180, 255], np.uint8)[indices])
    hidden = int(np.isin(indices, (1, 2) if isinstance(trns, bytes) else (1,)).sum())
    assert rad.notes == [f"{tmp_path / 'p.png'}: palette image converted to luminance (grayscale)",
                         f"{tmp_path / 'p.png'}: palette image with transparency (tRNS): its {hidden:,} transparent or "
                         "translucent pixels read as their palette colour, the transparency left out"]  # fmt: skip
    im.save(tmp_path / "opaque.png", transparency=bytes([255, 255]))  # (every alpha 255: nothing hidden, no note)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opaque = read_image(tmp_path / "opaque.png", warn=False)
    assert opaque.notes == [
        f"{tmp_path / 'opaque.png'}: palette image converted to luminance (grayscale)"]


@pytest.mark.parametrize("lzw_by_pillow", [False, True])
def test_a_palette_tiff_is_read_through_its_colour_map(tmp_path, seed, lzw_by_pillow, request):
    import tifffile

    indices = np.random.default_rng(seed).integers(0, 256, size=(14, 22)).astype(np.uint8)
    indices[0, 0], indices[0, 1] = 0, 255
    colormap = np.stack([(255 - np.arange(256)) * 257] * 3).astype(np.uint16)  # a reversed grey ramp
    if lzw_by_pillow:
        request.getfixturevalue("without_imagecodecs")
        img = Image.fromarray(indices, "P")
        img.putpalette([255 - i for i in range(256) for _ in range(3)])
        img.save(tmp_path / "p.tif", compression="tiff_lzw")
    else:
        tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colormap)
    im = read_image(tmp_path / "p.tif", warn=False)
    np.testing.assert_allclose(im.pixels, (255 - indices) / 255.0, atol=1e-6)
    assert im.bits_stored == 16  # (Pillow writes its 8-bit palette as a map of 16-bit entries)
    assert any("palette image converted to luminance" in n for n in im.notes)


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
@pytest.mark.parametrize("by_pillow", [False, True])
def test_a_palette_tiff_with_alpha_reads_its_colours_and_says_the_alpha_is_left_out(tmp_path, seed, compression,
                                                                                 by_pillow, request):
    # Pillow's PA (index + alpha) saved as TIFF failed, with imagecodecs or without: "cannot decode
    # TIFF: IndexError", the (H, W, 2) samples looked up in the colour map whole
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, 256, size=(14, 22)).astype(np.uint8)
    indices[0, 0], indices[0, 1] = 0, 255  # (pixels are scaled over the values the image holds)
    img = Image.fromarray(indices, "P")
    img.putpalette([255 - i for i in range(256) for _ in range(3)])  # a reversed grey ramp
    pa = img.convert("PA")
    pa.putalpha(Image.fromarray(rng.integers(0, 256, size=(14, 22)).astype(np.uint8)))
    pa.save(tmp_path / "pa.tif", compression=compression)
    img.save(tmp_path / "p.tif", compression=compression)
    if by_pillow:
        request.getfixturevalue("without_imagecodecs")
    im, opaque = read_image(tmp_path / "pa.tif", warn=False), read_image(tmp_path / "p.tif", warn=False)
    np.testing.assert_allclose(im.pixels, (255 - indices) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(im.values, opaque.values)
    assert im.bits_stored == opaque.bits_stored
    assert im.notes == [f"{tmp_path / 'pa.tif'}: palette image converted to luminance (grayscale)",
                        f"{tmp_path / 'pa.tif'}: palette + alpha image: the alpha (transparency) left out"]


def test_a_16_bit_palette_lzw_tiff_read_without_imagecodecs_keeps_its_16_bit_colours(tmp_path, seed, request):
    # Pillow, which decodes an LZW page where imagecodecs is missing, gave a palette's colours
    # itself, keeping only the high byte of each 16-bit colour map entry: the image was read at
    # 8 bits (bits_stored 8), its colours rounded to 256 levels, where tifffile reads 16
    import tifffile

    rng = np.random.default_rng(seed)
    indices = rng.integers(0, 256, size=(14, 22)).astype(np.uint8)
    colormap = rng.integers(0, 65536, size=(3, 256)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colormap, compression="lzw")
    with_codecs = read_image(tmp_path / "p.tif", warn=False)
    request.getfixturevalue("without_imagecodecs")
    im = read_image(tmp_path / "p.tif", warn=False)
    assert (im.bits_stored, im.values.dtype) == (with_codecs.bits_stored, with_codecs.values.dtype) == (16, np.uint16)
    np.testing.assert_array_equal(im.values, with_codecs.values)
    assert im.notes == with_codecs.notes


@pytest.mark.parametrize("bits, photometric", [(16, "rgb"), (16, "separated"), (8, "rgb")])
def test_a_16_bit_colour_lzw_tiff_pillow_reads_at_8_bits_says_so(tmp_path, seed, bits, photometric, request):
    # Pillow keeps only the high byte of 16-bit colour samples: such a page decoded for want of
    # imagecodecs was read at 8 bits with no word (12-bit data as 16 grey levels), where a 16-bit
    # colour PNG read so says it and names imagecodecs
    import tifffile

    from xvertfast.io.decode_common import imagecodecs_wanted

    samples = np.random.default_rng(seed).integers(0, 1 << bits, size=(14, 22, 3 if photometric == "rgb" else 4))
    tifffile.imwrite(tmp_path / "c.tif", samples.astype(f"u{bits // 8}"), photometric=photometric, compression="lzw")
    request.getfixturevalue("without_imagecodecs")
    im = read_image(tmp_path / "c.tif", warn=False)
    assert (im.bits_stored, im.values.dtype) == (8, np.uint8)
    said = [note for note in im.notes if "decoded at 8 bits" in note]
    if bits == 8:
        assert not said, im.notes
    else:
        assert said == [f"{tmp_path / 'c.tif'}: 16-bit colour TIFF: decoded at 8 bits (Pillow, which decodes its LZW "
                        f"data here as imagecodecs is not installed, keeps only the high byte of each sample); "
                        f"{imagecodecs_wanted('lzw', 'LZW', command=True)} reads it at 16 bits, or save it as 16-bit "
                        "greyscale to keep the depth"]  # fmt: skip


@pytest.mark.parametrize("planar", [1, None])
def test_a_colour_jpeg_dicom_saying_planar_configuration_1_keeps_its_colours(tmp_path, planar):
    # PS3.5 8.2.1: a JPEG codestream orders its components itself (PlanarConfiguration shall be
    # 0); a file saying 1 was taken by pydicom's plugins as planes: stripes of scrambled colour
    import io

    import pydicom
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    rows, cols = np.mgrid[0:32, 0:40]
    rgb = np.stack([cols * 6, rows * 7, 255 - cols * 6], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=100, subsampling=0)
    make_dicom(tmp_path / "c.dcm", rgb[..., 0], syntax=JPEGBaseline8Bit, pixel_data=False, slope=None)
    ds = pydicom.dcmread(tmp_path / "c.dcm")
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "YBR_FULL", 1
    if planar is None:  # or without the element, which pydicom refused to decode without
        del ds.PlanarConfiguration
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([out.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "c.dcm")
    im = read_image(tmp_path / "c.dcm", warn=False)
    assert np.abs(im.values.astype(np.float64) - _luma(rgb)).max() <= 4  # JPEG at quality 100


def test_a_dicom_without_photometric_interpretation_is_read_as_monochrome2(tmp_path, seed):
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(10, 14)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 4095
    make_dicom(tmp_path / "n.dcm", values)
    ds = pydicom.dcmread(tmp_path / "n.dcm")
    del ds.PhotometricInterpretation
    ds.save_as(tmp_path / "n.dcm")
    im = read_image(tmp_path / "n.dcm", warn=False)
    assert im.photometric == "MONOCHROME2"
    np.testing.assert_allclose(im.pixels, values / 4095.0, atol=1e-6)
    assert im.notes == [f"{tmp_path / 'n.dcm'}: no PhotometricInterpretation; read as MONOCHROME2 (bright = high)"]


def test_a_dicomdir_is_named_as_such_not_called_truncated(tmp_path):
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.FileSetID = "ARCHIVE"
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    ds.FileSetConsistencyFlag = 0
    ds.DirectoryRecordSequence = []
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(tmp_path / "index.dcm", enforce_file_format=True)  # a DICOMDIR copied under another name
    with pytest.raises(NotAnImage, match=r"index\.dcm: a DICOMDIR \(the index of a DICOM media folder\), not an image"):
        read_image(tmp_path / "index.dcm")


def _tiff_with_a_tag_of_no_type(path, data) -> None:
    """A TIFF of ``data`` with one private tag whose type is none TIFF defines: tifffile logs it."""
    import tifffile

    tifffile.imwrite(path, data, extratags=[(65000, "H", 1, 7, False)])
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags[65000].offset
    with open(path, "r+b") as f:
        f.seek(offset + 2)
        f.write(struct.pack("<H", 99))


def test_what_tifffile_logs_about_a_file_becomes_its_note_naming_it(tmp_path, caplog):
    # tifffile logs an odd tag naming no file: in a batch of thousands, a line from nowhere
    import tifffile

    values = (np.arange(32 * 40).reshape(32, 40) * 50).astype(np.uint16)
    _tiff_with_a_tag_of_no_type(tmp_path / "t.tif", values)
    with caplog.at_level(logging.DEBUG, logger="tifffile"):
        im = read_image(tmp_path / "t.tif", warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert [n for n in im.notes if "invalid data type 99" in n] and all(
        n.startswith(f"{tmp_path / 't.tif'}: ") for n in im.notes)
    assert not [r for r in caplog.records if r.name == "tifffile"]
    with caplog.at_level(logging.DEBUG, logger="tifffile"):  # tifffile used by others: logged as before
        tifffile.TiffFile(tmp_path / "t.tif").close()
    assert [r for r in caplog.records if r.name == "tifffile"]


def test_what_tifffile_logs_about_a_damaged_tiff_is_kept_to_a_few_notes(tmp_path):
    # an IFD whose entry count was damaged (14 -> 3000) has tifffile log a line for each bogus
    # entry: one file gave ~3000 notes, each a warning and a line of the batch report
    import tifffile

    values = np.random.default_rng(0).integers(1000, 60000, size=(200, 200)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", values)
    data = bytearray((tmp_path / "t.tif").read_bytes())
    struct.pack_into("<H", data, struct.unpack_from("<I", data, 4)[0], 3000)
    (tmp_path / "t.tif").write_bytes(bytes(data))
    notes = read_image(tmp_path / "t.tif", warn=False).notes
    assert len(notes) == 11, len(notes)
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 't.tif'))}: \.\.\. and [0-9]+ more messages from tifffile about "
                        r"this file", notes[-1]), notes[-1]  # fmt: skip


def test_what_libpng_warns_of_a_tiffs_png_strips_becomes_its_note_naming_it(tmp_path, seed, caplog, monkeypatch):
    # tifffile decodes PNG-compressed strips (34933) with imagecodecs, whose libpng warnings were
    # bare lines on stderr; on tifffile's worker threads (a machine of more cores) too
    import tifffile

    monkeypatch.setattr(tifffile.TIFF, "MAXWORKERS", 4)  # (a 2-core machine decodes on this thread anyway)
    values = np.random.default_rng(seed).integers(0, 65536, size=(16, 20)).astype(np.uint16)
    bad = _png_chunk(b"iCCP", b"x\0\0garbage")
    strips = [_png_of_samples(values[top : top + 4, :, None], 0, False, before_idat=bad) for top in range(0, 16, 4)]
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, iter(strips), shape=values.shape, dtype=values.dtype, compression=34933,
                     photometric="minisblack", rowsperstrip=4)  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="imagecodecs"):
        im = read_image(path, warn=False)
    np.testing.assert_array_equal(im.values, values)
    assert im.notes == [f"{path}: libpng: iCCP: too short"] * 4
    assert not [r for r in caplog.records if r.name == "imagecodecs"]


def test_a_tiff_cut_after_its_header_says_so_with_what_tifffile_found(tmp_path, caplog):
    import tifffile

    tifffile.imwrite(tmp_path / "whole.tif", np.zeros((8, 8), np.uint16))
    (tmp_path / "cut.tif").write_bytes((tmp_path / "whole.tif").read_bytes()[:8])
    with caplog.at_level(logging.DEBUG, logger="tifffile"), pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "cut.tif")
    assert str(caught.value).startswith(f"{tmp_path / 'cut.tif'}: TIFF has no readable page: truncated or corrupt; "
                                        "tifffile: ") and "invalid offset to first page" in str(caught.value)  # fmt: skip
    assert not [r for r in caplog.records if r.name == "tifffile"]


@pytest.mark.parametrize("lzw_by_pillow", [False, True])
def test_a_cmyk_tiff_is_read_as_the_luminance_of_its_colours(tmp_path, seed, lzw_by_pillow, request):
    # SEPARATED (CMYK) samples are ink amounts: taken for RGBA, the image came out another one
    import tifffile

    inks = np.random.default_rng(seed).integers(0, 256, size=(12, 16, 4)).astype(np.uint8)
    if lzw_by_pillow:
        request.getfixturevalue("without_imagecodecs")
        Image.fromarray(inks, "CMYK").save(tmp_path / "c.tif", compression="tiff_lzw")
    else:
        tifffile.imwrite(tmp_path / "c.tif", inks, photometric="separated")
    im = read_image(tmp_path / "c.tif", warn=False)
    rgb = np.rint((255.0 - inks[..., :3]) * (255.0 - inks[..., 3:]) / 255.0)
    np.testing.assert_array_equal(im.values, _luma(rgb))
    assert im.notes == [f"{tmp_path / 'c.tif'}: CMYK image converted to luminance (grayscale)"]


@pytest.mark.parametrize("keyword, value, said", [
    ("BitsStored", 20, r"A \(0028,0101\) 'Bits Stored' value of '20' is invalid"),
    ("SamplesPerPixel", 2, r"A \(0028,0002\) 'Samples per Pixel' value of '2' is invalid"),
    ("PhotometricInterpretation", "GREYSCALE", r"PhotometricInterpretation 'GREYSCALE' is none DICOM defines"),
])  # fmt: skip
def test_a_dicom_header_pydicom_refuses_is_called_invalid_not_truncated(tmp_path, keyword, value, said):
    import pydicom

    make_dicom(tmp_path / "h.dcm", np.arange(48, dtype=np.uint16).reshape(6, 8))
    ds = pydicom.dcmread(tmp_path / "h.dcm")
    setattr(ds, keyword, value)
    ds.save_as(tmp_path / "h.dcm")
    with pytest.raises(ImageReadError, match=rf"h\.dcm: invalid DICOM image header: {said}") as caught:
        read_image(tmp_path / "h.dcm")
    assert "truncated" not in str(caught.value)


def test_a_complex_tiff_is_refused_naming_its_samples(tmp_path):
    # its real part was enhanced, with numpy's ComplexWarning naming no file
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", (np.arange(64) + 1j).reshape(8, 8).astype(np.complex64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageReadError, match=r"f\.tif: TIFF holds complex64 samples, not grey levels"):
            read_image(tmp_path / "f.tif")


@pytest.mark.parametrize("white_is_zero", [False, True])
def test_a_grey_and_alpha_tiff_is_read_as_its_grey(tmp_path, seed, white_is_zero):
    # refused as "decoded shape (H, W, 2)", where the same image as a PNG is read
    import tifffile

    grey = np.random.default_rng(seed).integers(0, 65536, size=(10, 12)).astype(np.uint16)
    grey[0, 0], grey[0, 1] = 0, 65535
    alpha = np.full_like(grey, 65535)
    tifffile.imwrite(tmp_path / "a.tif", np.stack([grey, alpha], axis=-1), extrasamples=[2],
                     photometric="miniswhite" if white_is_zero else "minisblack")  # fmt: skip
    im = read_image(tmp_path / "a.tif", warn=False)
    np.testing.assert_allclose(im.pixels, (65535 - grey if white_is_zero else grey) / 65535.0, atol=1e-6)
    assert f"{tmp_path / 'a.tif'}: grey + alpha image: the alpha (transparency) left out" in im.notes


def _jpeg_frame_header(marker: int, precision: int, rows: int = 8, cols: int = 8) -> bytes:
    """The start of a JPEG file up to its frame header (SOFn), no more: what names its process."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = bytes([0xFF, marker]) + struct.pack(">HBHHB", 11, precision, rows, cols, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


@pytest.mark.parametrize("marker, precision, said", [
    (0xC1, 12, "12-bit extended JPEG"),
    (0xC3, 16, "16-bit lossless JPEG"),
    (0xF7, 12, "12-bit JPEG-LS"),
])  # fmt: skip
def test_a_jpeg_of_a_process_pillow_lacks_is_named_as_such_not_called_corrupt(tmp_path, marker, precision, said):
    (tmp_path / "x.jpg").write_bytes(_jpeg_frame_header(marker, precision))
    with pytest.raises(ImageReadError, match=rf"x\.jpg: {said}: not decoded here \(Pillow decodes 8-bit baseline"):
        read_image(tmp_path / "x.jpg")


def test_a_cut_baseline_jpeg_is_still_called_truncated(tmp_path):
    import io

    buf = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64).astype(np.uint8)).save(buf, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.jpg: cannot decode JPEG: truncated or corrupt"):
        read_image(tmp_path / "cut.jpg")


def test_a_jpeg_claiming_more_pixels_than_its_bytes_hold_is_refused(tmp_path):
    # libjpeg fills the missing blocks with grey, silently: a 240 x 180 file claiming 9000 x 9000
    # was "read" as 81 Mpixel of grey (minutes of enhancement, GiBs of memory)
    import io

    buf = io.BytesIO()
    rows, cols = np.mgrid[0:180, 0:240]
    Image.fromarray(((rows + cols) % 256).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    data = bytearray(buf.getvalue())
    at = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, 9000, 9000)
    (tmp_path / "lying.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"lying\.jpg: JPEG frame header claims 9000 x 9000 \(width x height\), "
                                             r"more than its [\d,]+ bytes can hold"):  # fmt: skip
        read_image(tmp_path / "lying.jpg")
    # the most a real JPEG compresses, a constant image at quality 1, is well within
    Image.fromarray(np.full((1024, 1536), 255, np.uint8)).save(tmp_path / "white.jpg", quality=1, optimize=True)
    assert read_image(tmp_path / "white.jpg").shape == (1024, 1536)


def test_a_png_or_jpeg_is_read_from_the_disk_once(tmp_path, monkeypatch):
    # the PNG's chunk CRCs were checked by reading the whole file a second time (and a JPEG's
    # size by opening it again): on network storage, twice the traffic for every file of a batch
    import builtins

    rows, cols = np.mgrid[0:200, 0:240]
    Image.fromarray(((rows * 3 + cols) % 256).astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(((rows * 3 + cols) % 256).astype(np.uint8)).save(tmp_path / "a.jpg", quality=90)
    opened, real_open = [], builtins.open

    class Counted:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, *args):
            data = self.f.read(*args)
            opened[-1] += len(data)
            return data

        def readinto(self, b):
            n = self.f.readinto(b)
            opened[-1] += n or 0
            return n

    def counting_open(file, *args, **kwargs):
        f = real_open(file, *args, **kwargs)
        if str(file).startswith(str(tmp_path)):
            opened.append(0)
            return Counted(f)
        return f

    monkeypatch.setattr(builtins, "open", counting_open)
    for name in ("a.png", "a.jpg"):
        opened.clear()
        read_image(tmp_path / name)
        size = (tmp_path / name).stat().st_size
        assert sum(opened) <= size + 132, (name, opened, size)  # (the format is told from its first 132 bytes)


@pytest.mark.parametrize("frame", [(264, 200), (512, 200), (256, 208)])
def test_a_jpeg_whose_frame_header_claims_more_blocks_than_its_data_holds_is_refused(tmp_path, frame):
    # libjpeg decodes the blocks past the end of the coded data as grey (128), saying so only in a
    # warning Pillow drops: a 200 x 256 JPEG whose frame header said 264 or 512 rows was read with
    # a grey band below the image (and one saying 208 columns as a scrambled image), silently
    rows, cols = np.mgrid[0:256, 0:200]
    Image.fromarray(((rows * 3 + cols) % 256).astype(np.uint8)).save(tmp_path / "a.jpg", quality=90)
    data = bytearray((tmp_path / "a.jpg").read_bytes())
    struct.pack_into(">HH", data, data.index(b"\xff\xc0") + 5, *frame)  # SOF0: height, width
    (tmp_path / "big.jpg").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=rf"big\.jpg: JPEG frame header claims {frame[1]} x {frame[0]} \(width x "
                       r"height\), but its coded data ends before its last block: truncated or corrupt"):  # fmt: skip
        read_image(tmp_path / "big.jpg")


def test_a_jpeg_whose_last_block_is_grey_128_is_read(tmp_path):
    # the grey of a missing block is also a real image's: a whole file ending in it is read, in
    # colour and with restart markers too (a real image data ends at a marker between blocks)
    values = np.full((100, 72), 128, np.uint8)
    values[:40] = (np.arange(40 * 72).reshape(40, 72) % 200).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "g.jpg", quality=95)
    Image.fromarray(np.stack([values] * 3, -1)).save(tmp_path / "c.jpg", quality=95, subsampling=2)
    Image.fromarray(values).save(tmp_path / "r.jpg", quality=95, restart_marker_blocks=1)
    for name in ("g.jpg", "c.jpg", "r.jpg"):
        read = read_image(tmp_path / name, warn=False)
        assert read.shape == (100, 72) and (read.values[-8:, -8:] == 128).all(), name


def test_a_jpeg_ending_in_grey_with_fill_bytes_before_its_end_marker_is_read(tmp_path):
    # any marker may follow 0xFF fill bytes (T.81 B.1.1.2): the check's second decode put its
    # extra coded data after them, where 0xFF 0x10 is no marker, and the whole file was refused
    # as 'truncated or corrupt (broken data stream ...)' where Pillow reads it
    values = np.full((100, 72), 128, np.uint8)
    values[:40] = (np.arange(40 * 72).reshape(40, 72) % 200).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "g.jpg", quality=95)
    data = (tmp_path / "g.jpg").read_bytes()
    end = data.rindex(b"\xff\xd9")
    (tmp_path / "fill.jpg").write_bytes(data[:end] + b"\xff\xff\xff" + data[end:])
    read = read_image(tmp_path / "fill.jpg", warn=False)
    assert np.array_equal(read.values, read_image(tmp_path / "g.jpg", warn=False).values)


#: A 1024 x 1024 arithmetic-coded (SOF9) greyscale JPEG, black but for a 16 x 16 square of levels
#: up to 114 at its centre: libjpeg-turbo's cjpeg -arithmetic at quality 90 gives 248 bytes.
_ARITHMETIC_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb0043000302020302020303030304030304050805050404050a07"
    "0706080c0a0c0c0b0a0b0b0d0e12100d0e110e0b0b1016101113141515150c0f171816141812141514ffc9000b080400"
    "040001011100ffcc000600101005ffda0008010100003f00ff00eedd766ea00009e29d54621a06b4edc8acac7c6b2ac4"
    "1d662340b3889dc6e6c94e6d42cf37e2c423caaccf97f3bd84b802dace17d3561b7eb8cf80d38417ba3cf6b3f355792c"
    "8f9250fef16e5f6d16a51dd5a064e3f6503d5d013fa96f4ed858c49b3397dec36c73bc2c37a1e36f69b0eb97f2344d27"
    "adc4374a6880ffd9"
)  # fmt: skip


def test_an_arithmetic_coded_jpeg_smaller_than_a_bit_a_block_is_read(tmp_path):
    # the 1-bit-per-block floor is Huffman coding's: this whole, valid file has 0.12 bits a block,
    # and was refused as "truncated or corrupt" (Pillow's libjpeg-turbo decodes it)
    (tmp_path / "arith.jpg").write_bytes(_ARITHMETIC_JPEG)
    im = read_image(tmp_path / "arith.jpg")
    assert im.shape == (1024, 1024) and int(im.values.max()) > 100
    assert (im.values[:500] == 0).all() and (im.values[512:528, 512:528] > 0).mean() > 0.9


def test_a_signed_dicoms_padding_written_as_unsigned_is_still_padding(tmp_path, seed):
    # PixelPaddingValue -2048 of a signed image, written with VR US as its bit pattern 63488 (as
    # some vendors do): it matched no pixel, so the padding squeezed the anatomy's range
    import pydicom

    values = np.random.default_rng(seed).integers(-1000, 2000, size=(16, 24)).astype(np.int16)
    values[0, 2], values[0, 3] = -1000, 1999
    values[:, :2] = -2048
    make_dicom(tmp_path / "p.dcm", values, bits=12, signed=True)
    ds = pydicom.dcmread(tmp_path / "p.dcm")
    ds.add_new(0x00280120, "US", 65536 - 2048)  # PixelPaddingValue
    ds.save_as(tmp_path / "p.dcm")
    im = read_image(tmp_path / "p.dcm", warn=False)
    np.testing.assert_allclose(im.pixels[:, 2:], (values[:, 2:] + 1000) / 2999.0, atol=1e-6)
    assert (im.pixels[:, :2] == 0).all() and any("32 padding pixels" in n for n in im.notes)


def test_pillows_warnings_name_the_file(tmp_path):
    # "Corrupt EXIF data. Expecting to read 12 bytes but only got 0." alone, in a batch of thousands
    import io

    exif = Image.Exif()
    exif[0x010F] = "Vendor"  # Make
    buf = io.BytesIO()
    Image.fromarray(np.arange(48 * 64, dtype=np.uint16).reshape(48, 64).astype(np.uint8)).save(buf, "JPEG", exif=exif)
    data = bytearray(buf.getvalue())
    tiff = data.find(b"Exif\x00\x00") + 6
    struct.pack_into("<H" if data[tiff : tiff + 2] == b"II" else ">H", data, tiff + 8, 0xFFFF)  # IFD0's entry count
    path = tmp_path / "exif.jpg"
    path.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_image(path, warn=False)
    said = [str(w.message) for w in caught]
    assert said and all(s.startswith(f"{path}: ") for s in said), said
    assert any("Corrupt EXIF data" in s for s in said)


@pytest.mark.parametrize("noise", [True, False], ids=["larger than its image", "smaller"])
def test_encapsulated_pixel_data_under_an_uncompressed_transfer_syntax_is_refused_saying_so(tmp_path, seed, noise):
    # an RLE file whose TransferSyntaxUID was rewritten to Explicit VR Little Endian (an anonymiser's):
    # its items' bytes were read as the pixels, an image of noise under pydicom's warning of "excess
    # padding" where they outnumber the image's; otherwise "cannot decode ... truncated or corrupt?"
    import pydicom
    from pydicom.uid import RLELossless

    values = np.random.default_rng(seed).integers(0, 4096, (24, 32)) if noise else np.zeros((24, 32), np.int64)
    ds = make_dicom(tmp_path / "x.dcm", values)
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    data = (tmp_path / "x.dcm").read_bytes()
    assert (len(ds.PixelData) > values.size * 2) == noise
    (tmp_path / "x.dcm").write_bytes(data.replace(b"1.2.840.10008.1.2.5\0", b"1.2.840.10008.1.2.1\0", 1))
    assert pydicom.dcmread(tmp_path / "x.dcm").file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match=r"x\.dcm: its pixel data are encapsulated \(compressed frames in "
                           r"items\), but its transfer syntax \(0002,0010\) says Explicit VR Little Endian, which "
                           r"holds them uncompressed: the transfer syntax is wrong, so how the frames were compressed "
                           r"is unknown; export it again from its source$"):  # fmt: skip
            read_image(tmp_path / "x.dcm")
    assert not caught, [str(w.message) for w in caught]
    del ds.file_meta  # (a data set without file meta: its syntax is how pydicom reads it)
    ds.save_as(tmp_path / "raw.dcm", implicit_vr=False, little_endian=True, enforce_file_format=False)
    with pytest.raises(ImageReadError, match=r"raw\.dcm: its pixel data are encapsulated \(compressed frames in "
                       r"items\), but it has no file meta saying its transfer syntax, so how the frames were "
                       r"compressed is unknown \(its data set reads as Explicit VR Little Endian, which holds them "
                       r"uncompressed\); export it again from its source$"):  # fmt: skip
        read_image(tmp_path / "raw.dcm")


def with_transfer_syntax(data: bytes, uid: str) -> bytes:
    """A file's bytes (make_dicom's, in Explicit VR Little Endian) with the TransferSyntaxUID of its
    file meta rewritten to ``uid`` without its pixel data, its group length (0002,0000) kept true:
    pydicom writes no native pixel data under an encapsulated syntax."""
    old = b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\0"
    value = uid.encode() + b"\0" * (len(uid) % 2)
    new = b"\x02\x00\x10\x00UI" + len(value).to_bytes(2, "little") + value
    assert data[132:140] == b"\x02\x00\x00\x00UL\x04\x00" and data.count(old) == 1
    group = int.from_bytes(data[140:144], "little") + len(new) - len(old)
    return data[:140] + group.to_bytes(4, "little") + data[144:].replace(old, new)


@pytest.mark.parametrize("uid, name, kind, items", [
    ("1.2.840.10008.1.2.5", "RLE Lossless", "a compressed one", "compressed frames"),
    # (its frames are encapsulated, not compressed: it was "a compressed one")
    ("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", "an encapsulated one", "frames")])
def test_uncompressed_pixel_data_under_a_compressed_transfer_syntax_are_read_as_such_with_a_note(tmp_path, seed, uid,
                                                                                                name, kind, items):
    # a native file whose TransferSyntaxUID was rewritten to RLE Lossless: refused as "cannot decode
    # DICOM pixel data (RLE Lossless): truncated or corrupt? (Found unexpected tag (0000,0FFF) instead
    # of (FFFE,E000) ...)", beside pydicom's warning that the syntax may be wrong
    values = np.random.default_rng(seed).integers(0, 4096, (24, 32))
    make_dicom(tmp_path / "full.dcm", values)
    (tmp_path / "x.dcm").write_bytes(with_transfer_syntax((tmp_path / "full.dcm").read_bytes(), uid))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rad = read_image(tmp_path / "x.dcm", warn=False)
    assert not caught, [str(w.message) for w in caught]
    np.testing.assert_array_equal(rad.values, values)
    assert rad.bits_stored == 12 and rad.notes == [
        f"{tmp_path / 'x.dcm'}: its transfer syntax (0002,0010) says {name}, {kind}, but its pixel data are not "
        "encapsulated and hold the 1,536 bytes of its image uncompressed: read as uncompressed (Explicit VR Little "
        "Endian; its transfer syntax is wrong)"]  # fmt: skip
    make_dicom(tmp_path / "short.dcm", values[:-1])  # (a row short of what its header says below)
    data = with_transfer_syntax((tmp_path / "short.dcm").read_bytes(), uid)
    rows = b"\x28\x00\x10\x00US\x02\x00"  # (0028,0010) Rows, 23 said to be 24
    (tmp_path / "short.dcm").write_bytes(data.replace(rows + b"\x17\x00", rows + b"\x18\x00", 1))
    # (it was "its pixel data are not encapsulated (...), as its transfer syntax RLE Lossless says": read as
    # if the syntax said so; and "truncated or corrupt", nothing of what to do)
    with pytest.raises(ImageReadError, match=rf"short\.dcm: its transfer syntax {name} says its pixel data are "
                       rf"encapsulated \({items} in items\), but they are not and hold 1,472 bytes, not the 1,536 of "
                       r"its image uncompressed: cut short \(copy it again from its source\) or its transfer syntax is "
                       r"wrong \(export it again\)$"):  # fmt: skip
        read_image(tmp_path / "short.dcm")
    # more bytes than the image's (its Rows said to be 23) are no file cut short
    (tmp_path / "long.dcm").write_bytes(with_transfer_syntax((tmp_path / "full.dcm").read_bytes(), uid)
                                        .replace(rows + b"\x18\x00", rows + b"\x17\x00", 1))  # fmt: skip
    with pytest.raises(ImageReadError, match=rf"long\.dcm: its transfer syntax {name} says .*, but they are not and "
                       r"hold 1,536 bytes, not the 1,472 of its image uncompressed: corrupt or its transfer syntax is "
                       r"wrong \(export it again from its source\)$"):  # fmt: skip
        read_image(tmp_path / "long.dcm")


def test_a_dicom_of_a_private_transfer_syntax_says_so(tmp_path):
    # GE's private big-endian syntax in old archives: it was "cannot decode DICOM: ValueError: UID is
    # not a transfer syntax.", pydicom's words from a check made while wording the real error
    import pydicom

    make_dicom(tmp_path / "ge.dcm", np.arange(48, dtype=np.uint16).reshape(6, 8))
    ds = pydicom.dcmread(tmp_path / "ge.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.113619.5.2"
    ds.save_as(tmp_path / "ge.dcm", implicit_vr=False, little_endian=True)
    with pytest.raises(ImageReadError, match=r"ge\.dcm: its transfer syntax 1\.2\.840\.113619\.5\.2 is none DICOM "
                                             r"defines \(a vendor's private one\?\)"):  # fmt: skip
        read_image(tmp_path / "ge.dcm")


def _mpeg2_dicom(path):
    """An 8 x 6 DICOM said to be MPEG-2 (Main Profile / Main Level), its one fragment 16 zero bytes."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    ds = make_dicom(path, np.zeros((6, 8), np.uint16))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([bytes(16)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("uid, name", [("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
                                       ("1.2.840.10008.1.2.8.1", "Deflated Image Frame Compression")])
def test_a_dicom_of_a_transfer_syntax_pydicom_does_not_know_is_not_called_private(tmp_path, uid, name):
    # JPEG XL (PS3.5 A.4.12, 1.2.840.10008.1.2.4.110-112) and Deflated Image Frame Compression (A.4.13),
    # which pydicom 3.0 does not know: each was "none DICOM defines (a vendor's private one?)"
    path = _mpeg2_dicom(tmp_path / "x.dcm")  # (pydicom writes neither: one of the same length put in its place)
    path.write_bytes(path.read_bytes().replace(b"1.2.840.10008.1.2.4.100\0", uid.encode().ljust(24, b"\0")))
    with pytest.raises(ImageReadError, match=rf"x\.dcm: its transfer syntax {name} \({re.escape(uid)}\) is one "
                       r"pydicom does not decode: convert the file to an uncompressed transfer syntax with a DICOM "
                       r"tool that decodes it, and read that$"):  # fmt: skip
        read_image(tmp_path / "x.dcm")


def test_a_dicom_of_a_syntax_no_package_here_decodes_does_not_send_the_user_to_an_extra(tmp_path):
    # MPEG-2: pydicom has no decoder for it, nor has the dicom-codecs extra, which the message named
    # all the same ("needs a decoder (pip install 'xvertfast[dicom-codecs]')")
    path = _mpeg2_dicom(tmp_path / "m.dcm")
    with pytest.raises(ImageReadError, match=r"m\.dcm: compressed transfer syntax 'MPEG2 Main Profile / Main Level' "
                       r"needs a decoder that neither pydicom nor xvertfast\[dicom-codecs\] has for it here: convert "
                       r"the file to an uncompressed transfer syntax with a DICOM tool that decodes it, and read that$"):
        read_image(path)

def _no_pixels_dicom(path, sop_class, modality, meta_class=None, **elements):
    """A data set without pixel data (of ``sop_class``, with ``elements``) at ``path``, its file meta
    saying ``meta_class`` where given (written as it is: pydicom would put the data set's there)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = meta_class or sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.dataset.FileDataset(path, {}, file_meta=meta, preamble=bytes(128))
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop_class, meta.MediaStorageSOPInstanceUID, modality
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=False)


_DAMAGED = r"truncated or corrupt DICOM: its header describes an image \({}\), but the file holds no pixel data"


@pytest.mark.parametrize("sop_class, modality, meta_class, elements, said", [
    # an MR spectroscopy object has Rows and Columns (1 x 1), a waveform's may: "truncated or corrupt
    # DICOM: its header describes an image" was said of them, whose bulk data is no pixels
    ("1.2.840.10008.5.1.4.1.1.4.2", "MR", None, {"Rows": 1, "Columns": 1, "SpectroscopyData": bytes(8192)},
     r"DICOM file has no pixel data: an MR Spectroscopy object \(Modality MR\), not an image$"),
    ("1.2.3.4.5", "ECG", None, {"Rows": 1, "Columns": 1, "WaveformSequence": []},
     r"DICOM file has no pixel data: not an image \(SOP class 1\.2\.3\.4\.5, Modality ECG\)$"),
    # file meta and data set disagreeing: the meta's class was taken whatever the data set said
    ("1.2.840.10008.5.1.4.1.1.88.22", "SR", "1.2.840.10008.5.1.4.1.1.7", {},
     r"DICOM file has no pixel data: an Enhanced SR object \(Modality SR\), not an image$"),
    ("1.2.840.10008.5.1.4.1.1.1", "CR", "1.2.840.10008.5.1.4.1.1.11.1", {},
     _DAMAGED.format("Computed Radiography Image, Modality CR")),
    # a Label Map Segmentation, a class pydicom (3.0) does not know, was the meta's Secondary Capture: "its
    # header describes an image (Secondary Capture Image, Modality SEG, 48 x 40, ...)"
    ("1.2.840.10008.5.1.4.1.1.66.7", "SEG", "1.2.840.10008.5.1.4.1.1.7", {"Rows": 40, "Columns": 48},
     r"DICOM file has no pixel data: a Label Map Segmentation object \(Modality SEG\), not an image$"),
    # a Parametric Map's float pixel data are read as an image: without them it is a damaged one, not "a
    # Parametric Map object, not an image" passed over
    ("1.2.840.10008.5.1.4.1.1.30", "MR", None, {}, _DAMAGED.format("Parametric Map, Modality MR")),
], ids=["MR spectroscopy", "waveform", "meta SC, data set SR", "meta PR, data set CR", "meta SC, data set Label Map",
        "Parametric Map"])  # fmt: skip
def test_a_dicom_without_pixel_data_is_called_damaged_only_where_its_class_says_image(
        tmp_path, sop_class, modality, meta_class, elements, said):  # fmt: skip
    _no_pixels_dicom(tmp_path / "o.dcm", sop_class, modality, meta_class, **elements)
    with pytest.raises(ImageReadError, match=rf"o\.dcm: {said}"):
        read_image(tmp_path / "o.dcm")


def test_a_dicom_holding_a_jpip_link_is_told_so_not_called_damaged(tmp_path):
    # JPIP Referenced: the pixels are on a server (Pixel Data Provider URL), nothing is cut short
    path = tmp_path / "j.dcm"
    ds = make_dicom(path, np.zeros((6, 8), np.uint16), pixel_data=False)
    ds.PixelDataProviderURL = "http://pacs.example/jpip?x"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"j\.dcm: DICOM file holds a link to its pixel data \(JPIP: "
                       r"http://pacs\.example/jpip\?x\), not the pixels: retrieve it again from its source with its "
                       r"pixel data \(a transfer syntax other than JPIP Referenced\)$"):  # fmt: skip
        read_image(path)


def test_a_dicom_cut_within_its_columns_value_is_called_damaged(tmp_path):
    # pydicom's "BytesLengthException: ... To replace this error with a warning set pydicom.config..."
    # came through as "cannot decode DICOM": the size is left out where it cannot be read
    path = tmp_path / "c.dcm"
    make_dicom(path, np.zeros((6, 8), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\x28\x00\x11\x00US\x02\x00") + 9])  # (one byte of Columns' two)
    with pytest.raises(ImageReadError, match=rf"c\.dcm: {_DAMAGED.format('Computed Radiography Image, Modality CR')} "
                       r"\(cut short before it, or exported without it\): copy it again from its source$"):  # fmt: skip
        read_image(path)



def _raw_dx_cut_in_its_sop_class(path, kept: int):
    """A raw data set (no file meta) of a DX radiograph cut ``kept`` characters into its SOP class."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = "1.2.840.10008.5.1.4.1.1.1.1", generate_uid(), "DX"
    ds.Rows, ds.Columns = 6, 8
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"1.2.840.10008.5.1.4.1.1.1.1") + kept])


_NO_EVIDENCE = (r"truncated or corrupt DICOM: it holds no pixel data, and neither its SOP class \({}\) nor its "
                r"Modality \({}\) says it is no image \(a report, a presentation state\): cut short\? copy it again "
                r"from its source$")  # fmt: skip


@pytest.mark.parametrize("build, said", [
    (lambda p: _no_pixels_dicom(p, "", "DX", meta_class=""), _NO_EVIDENCE.format("none", "DX")),
    (lambda p: _no_pixels_dicom(p, "1.2.3.4.5", "CR"),
     _NO_EVIDENCE.format(r"1\.2\.3\.4\.5, unknown to pydicom", "CR")),
    (lambda p: _raw_dx_cut_in_its_sop_class(p, len("1.2.840.10008.5.1.4.1.1")),
     r"truncated or corrupt DICOM: its data set ends at its SOP class UID \(0008,0016\), read as "
     r"1\.2\.840\.10008\.5\.1\.4\.1\.1, without pixel data: cut short\? copy it again from its source$"),
    (lambda p: _raw_dx_cut_in_its_sop_class(p, len("1.2.840.10008.5.1.4.1.1.1")),  # (a prefix: CR's class)
     r"its data set ends at its SOP class UID \(0008,0016\), read as 1\.2\.840\.10008\.5\.1\.4\.1\.1\.1,"),
], ids=["no class, DX", "private class, CR", "raw, cut in its class", "raw, cut at CR's class"])  # fmt: skip
def test_a_dicom_without_pixel_data_is_passed_over_as_no_image_only_on_evidence(tmp_path, build, said):
    # each was a NotAnImage (kind DX, CR, 'other'): skipped, exit 0, where it may be a radiograph cut
    # short or exported without its pixels. Only a class or Modality of no image says it is none
    path = tmp_path / "o.dcm"
    build(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (pydicom's, of a cut UID)
        with pytest.raises(ImageReadError, match=rf"o\.dcm: .*{said}") as raised:
            read_image(path)
    assert not isinstance(raised.value, NotAnImage)


@pytest.mark.parametrize("sop_class, modality, frames, kind, said", [
    ("1.2.840.10008.5.1.4.1.1.66.4", "SEG", 1, "SEG",
     r"is a Segmentation object \(Modality SEG\): its pixel data are segment masks"),
    # (one frame a segment: refused as a cine loop, "save it as an image of its own" said of a mask)
    ("1.2.840.10008.5.1.4.1.1.66.4", "SEG", 2, "SEG", "is a Segmentation object"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RTDOSE", 1, "RTDOSE",
     r"is an RT Dose object \(Modality RTDOSE\): its pixel data are a radiation dose grid"),
    ("1.2.3.4.5", "SEG", 1, "SEG", r"is an SEG object \(SOP class 1\.2\.3\.4\.5\): its pixel data are segment masks"),
    ("1.2.840.10008.5.1.4.1.1.7", "SEG", 1, None, None),  # (a secondary capture: an image, as its class says)
], ids=["SEG", "SEG of 2 segments", "RT Dose", "private class, SEG", "SC, SEG"])  # fmt: skip
def test_a_dicom_whose_pixel_data_are_masks_or_maps_is_no_image(tmp_path, seed, sop_class, modality, frames, kind,
                                                                said):  # fmt: skip
    # a segmentation's masks, a dose grid were read and enhanced as a radiograph, exit 0 (not a Parametric
    # Map's float pixel data, the one class of them, which a float radiograph is stored as: read as before)
    mask = (np.random.default_rng(seed).random((frames, 40, 48)) > 0.5).astype(np.uint8) * 255
    more = {"NumberOfFrames": frames} if frames > 1 else {}
    _no_pixels_dicom(tmp_path / "m.dcm", sop_class, modality, Rows=40, Columns=48, SamplesPerPixel=1,
                     PhotometricInterpretation="MONOCHROME2", BitsAllocated=8, BitsStored=8, HighBit=7,
                     PixelRepresentation=0, PixelData=mask.tobytes(), **more)
    if kind is None:
        np.testing.assert_array_equal(read_image(tmp_path / "m.dcm").values, mask[0])
        return
    with pytest.raises(NotAnImage, match=rf"m\.dcm: DICOM file {said}.*, not a radiograph$") as raised:
        read_image(tmp_path / "m.dcm")
    assert raised.value.kind == kind


@pytest.mark.parametrize("sop_class, modality, elements, kind", [
    ("1.2.840.10008.5.1.4.1.1.66", "DX", {}, "Raw Data"),  # (a raw data object of a DX machine: no radiograph)
    ("1.2.840.10008.5.1.4.1.1.88.22", "SR", {}, "SR"),
    ("1.2.3.4.5", "OT", {"WaveformSequence": []}, "Waveform"),
    ("", "KO", {}, "KO"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "SEG", {}, "SEG"),  # (counted "Segmentation 1", a SEG with pixel data "SEG 1")
    # with Rows and Columns, as a segmentation or dose grid has them, a class pydicom (3.0) does not know
    # (Label Map Segmentation) or a private one failed as a damaged image ("its header describes an image
    # (Modality SEG, 48 x 40, ...)"), where a Segmentation's was counted SEG
    ("1.2.840.10008.5.1.4.1.1.66.7", "SEG", {"Rows": 40, "Columns": 48}, "SEG"),
    ("1.2.3.4.5", "SEG", {"Rows": 40, "Columns": 48}, "SEG"),
    ("1.2.3.4.5", "RTDOSE", {"Rows": 40, "Columns": 48}, "RTDOSE"),
], ids=["Raw Data, DX", "SR", "private waveform", "no class, KO", "SEG", "Label Map SEG, Rows",
        "private class, SEG, Rows", "private class, RTDOSE, Rows"])  # fmt: skip
def test_a_non_image_dicom_is_counted_by_its_modality_only_where_that_says_no_image(
        tmp_path, sop_class, modality, elements, kind):  # fmt: skip
    # a Raw Data Storage object with Modality DX was counted "DX 1": read as a skipped radiograph
    _no_pixels_dicom(tmp_path / "o.dcm", sop_class, modality, meta_class=sop_class, **elements)
    with pytest.raises(NotAnImage, match=r"o\.dcm: DICOM file has no pixel data: ") as raised:
        read_image(tmp_path / "o.dcm")
    assert raised.value.kind == kind


def test_a_one_sample_dicom_saying_rgb_is_read_as_monochrome2(tmp_path, seed):
    # its grey values were read, but the Radiograph said photometric "RGB", outside its contract
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(10, 14)).astype(np.uint16)
    make_dicom(tmp_path / "r.dcm", values)
    ds = pydicom.dcmread(tmp_path / "r.dcm")
    ds.PhotometricInterpretation = "RGB"
    ds.save_as(tmp_path / "r.dcm")
    im = read_image(tmp_path / "r.dcm", warn=False)
    assert im.photometric == "MONOCHROME2"
    np.testing.assert_array_equal(im.values, values)
    assert im.notes == [f"{tmp_path / 'r.dcm'}: PhotometricInterpretation RGB with one sample per pixel; read as "
                        "MONOCHROME2 (bright = high)"]  # fmt: skip


@pytest.mark.parametrize("photometric, said", [("", None), ("  ", None), ("YBR_FULL", "YBR_FULL"),
                                              ("YBR_FULL_422", "YBR_FULL_422")])  # fmt: skip
def test_a_one_sample_dicom_of_an_empty_or_ybr_photometric_is_read_as_monochrome2(tmp_path, seed, photometric, said):
    # an empty PhotometricInterpretation was refused ("Unknown (0028,0004) ... value ''"), where a
    # missing one is read as MONOCHROME2; one-sample YBR_FULL (16-bit: 'Invalid ndarray.dtype for
    # color space conversion') and YBR_FULL_422 (pixel data 'a third larger than expected') were
    # called truncated or corrupt, where RGB and YBR_PARTIAL_420 of one sample read as grey
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(10, 14)).astype(np.uint16)
    make_dicom(tmp_path / "y.dcm", values)
    ds = pydicom.dcmread(tmp_path / "y.dcm")
    ds.PhotometricInterpretation = photometric
    ds.save_as(tmp_path / "y.dcm")
    im = read_image(tmp_path / "y.dcm", warn=False)
    assert im.photometric == "MONOCHROME2"
    np.testing.assert_array_equal(im.values, values)
    path = tmp_path / "y.dcm"
    # (an empty one is said to be empty, where it was called none: the header shows one)
    assert im.notes == [f"{path}: an empty PhotometricInterpretation; read as MONOCHROME2 (bright = high)"
                        if said is None else f"{path}: PhotometricInterpretation {said} with one sample per pixel; "
                        "read as MONOCHROME2 (bright = high)"]  # fmt: skip


def _three_sample_dicom(path, rgb: np.ndarray, photometric: str) -> None:
    """An 8-bit DICOM of the samples ``rgb`` [H, W, 3], interleaved, under ``photometric``."""
    ds = make_dicom(path, rgb[..., 0], bits=8)
    ds.BitsAllocated, ds.SamplesPerPixel, ds.PlanarConfiguration = 8, 3, 0
    ds.PhotometricInterpretation, ds.PixelData = photometric, rgb.tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_a_three_sample_dicom_under_monochrome2_says_so(tmp_path, seed):
    # pydicom reads its samples as RGB: the luminance was read under a bare 'RGB image' note
    rgb = np.random.default_rng(seed).integers(0, 256, (10, 14, 3)).astype(np.uint8)
    _three_sample_dicom(tmp_path / "c.dcm", rgb, "MONOCHROME2")
    im = read_image(tmp_path / "c.dcm", warn=False)
    np.testing.assert_array_equal(im.values, _luma(rgb))
    assert im.notes == [f"{tmp_path / 'c.dcm'}: PhotometricInterpretation MONOCHROME2 with 3 samples per pixel; read "
                        "as RGB, bright = high",
                        f"{tmp_path / 'c.dcm'}: RGB image converted to luminance (grayscale)"]  # fmt: skip


@pytest.mark.parametrize("grey", [False, True])
def test_a_three_sample_dicom_under_monochrome1_is_refused_as_of_unknown_polarity(tmp_path, seed, grey):
    # its samples read as RGB, bright = high, under a note saying MONOCHROME1's flip was not made:
    # where they were grey levels stored bone-dark (three equal samples, as MONOCHROME1 says) the
    # network enhanced the negative; the file cannot tell, so it is refused as 'MONO1' is
    rgb = np.random.default_rng(seed).integers(0, 256, (10, 14, 3)).astype(np.uint8)
    if grey:
        rgb[...] = rgb[..., :1]
    _three_sample_dicom(tmp_path / "c.dcm", rgb, "MONOCHROME1")
    with pytest.raises(ImageReadError, match=r"c\.dcm: invalid DICOM image header: PhotometricInterpretation "
                       r"MONOCHROME1 \(one grey sample per pixel, bright = low\) with 3 samples per pixel, so the "
                       r"polarity of its pixels is unknown: where the samples show the image as it is meant \(bright "
                       r"= bone\), set it to RGB, e\.g\. dcmodify -m \"\(0028,0004\)=RGB\"; where bone is dark in "
                       r"them, convert the image to one sample per pixel, MONOCHROME1"):  # fmt: skip
        read_image(tmp_path / "c.dcm")


@pytest.mark.parametrize("photometric", ["MONOCHROME", "MONO1", "GRAYSCALE"])
def test_a_one_sample_dicom_of_a_photometric_dicom_does_not_define_is_refused_saying_what_to_set(tmp_path, seed,
                                                                                                  photometric):  # fmt: skip
    # its polarity is unknown ('MONO1' read as MONOCHROME2 would be inverted): still refused, now
    # saying so and what to set, where it said "invalid DICOM image header: Unknown (0028,0004) ..."
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(10, 14)).astype(np.uint16)
    make_dicom(tmp_path / "m.dcm", values)
    ds = pydicom.dcmread(tmp_path / "m.dcm")
    ds.PhotometricInterpretation = photometric
    ds.save_as(tmp_path / "m.dcm")
    with pytest.raises(ImageReadError, match=rf"m\.dcm: invalid DICOM image header: PhotometricInterpretation "
                       rf"'{photometric}' is none DICOM "
                       r"defines, so the polarity of its grey levels is unknown: set it to MONOCHROME2 \(bright = "
                       r"high\) or MONOCHROME1"):  # fmt: skip
        read_image(tmp_path / "m.dcm")


def test_a_pngs_pixels_are_decoded_outside_the_warnings_lock(tmp_path, monkeypatch):
    # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixels:
    # called in WarningsNamingTheFile's turn, every PNG of a batch was decoded under the one
    # process-wide lock, so enhance --workers N decoded them one at a time, and held up DICOM reads
    from xvertfast.io.errors import WarningsNamingTheFile

    Image.fromarray(np.arange(48 * 64, dtype=np.uint16).reshape(48, 64).astype(np.uint8)).save(tmp_path / "g.png")
    held, getdecoder = [], Image._getdecoder

    def spying_getdecoder(*args, **kwargs):  # asked for a decoder only where pixels are decoded
        held.append(WarningsNamingTheFile._lock.locked())
        return getdecoder(*args, **kwargs)

    monkeypatch.setattr(Image, "_getdecoder", spying_getdecoder)
    im = read_image(tmp_path / "g.png", warn=False)
    assert im.shape == (48, 64)
    assert held and not any(held), held


@pytest.mark.parametrize("refused_by", ["max_pixels", "complex samples"])
def test_a_refused_tiff_keeps_what_tifffile_logged_about_it_in_its_error(tmp_path, caplog, refused_by):
    # c200709 took tifffile's lines off stderr into the file's notes, which a refused file does
    # not report: where the reader refused it itself (too many pixels, complex samples, ...) they
    # were lost
    data = np.arange(32 * 40).reshape(32, 40)
    data = (data + 1j).astype(np.complex64) if refused_by == "complex samples" else data.astype(np.uint16)
    _tiff_with_a_tag_of_no_type(tmp_path / "t.tif", data)
    max_pixels = 100 if refused_by == "max_pixels" else 10_000
    with caplog.at_level(logging.DEBUG, logger="tifffile"), pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "t.tif", max_pixels=max_pixels)
    said = str(caught.value)
    assert said.startswith(f"{tmp_path / 't.tif'}: ") and "; tifffile: " in said and "invalid data type 99" in said
    assert ("above the limit" if refused_by == "max_pixels" else "complex64 samples") in said
    assert said.count("tifffile: ") == 1
    assert not [r for r in caplog.records if r.name == "tifffile"]


@pytest.mark.parametrize("codecs", [True, False])
def test_a_tiff_with_a_thumbnail_first_is_read_at_full_resolution(tmp_path, seed, codecs, request):
    # a reduced-resolution copy (NewSubfileType 1) stored as the first page: reading "the first
    # page" enhanced a 32 x 32 thumbnail, upscaled
    import tifffile

    if not codecs:
        request.getfixturevalue("without_imagecodecs")
    rng = np.random.default_rng(seed)
    full = rng.integers(0, 4096, (200, 300), dtype=np.uint16)
    path = tmp_path / "scan.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(np.full((32, 48), 7, np.uint16), subfiletype=1, compression="lzw")
        tif.write(full, compression="lzw")
        tif.write(np.zeros((50, 50), np.uint16))  # a second image: still the first at full resolution
    rad = read_image(path, warn=False)
    assert np.array_equal(rad.values, full)
    assert any("3 pages; reading page 2, the first at full resolution" in note for note in rad.notes)


def test_a_tiff_whose_first_page_has_no_pixels_is_read_from_its_first_page_with_them(tmp_path, seed):
    # a 0 x 0 page first, the image second: refused as 'image has no pixels', the image unread
    import tifffile

    full = np.random.default_rng(seed).integers(0, 4096, (40, 48), dtype=np.uint16)
    with pytest.warns(UserWarning, match="zero-size"), tifffile.TiffWriter(tmp_path / "e.tif") as tif:
        tif.write(np.zeros((0, 0), np.uint16))
        tif.write(full)
    rad = read_image(tmp_path / "e.tif", warn=False)
    assert np.array_equal(rad.values, full)
    assert any("2 pages; reading page 2, the first with pixels" in note for note in rad.notes), rad.notes
    with pytest.warns(UserWarning, match="zero-size"), tifffile.TiffWriter(tmp_path / "none.tif") as tif:
        tif.write(np.zeros((0, 0), np.uint16))  # no page with pixels: refused as before
        tif.write(np.zeros((0, 0), np.uint16))
    with pytest.raises(ImageReadError, match=r"none\.tif: image has no pixels \(0 x 0"):
        read_image(tmp_path / "none.tif", warn=False)


def _tiff_thumbnail_then_full(path, next_of_thumbnail=None):
    """A TIFF of a 25 x 32 reduced-resolution copy (NewSubfileType 1) and then the 200 x 256 image;
    ``next_of_thumbnail``: the thumbnail IFD's next-IFD offset, where it is to be damaged."""
    import tifffile

    full = (np.arange(256 * 200).reshape(256, 200) % 4096).astype(np.uint16)
    with tifffile.TiffWriter(path) as tif:
        tif.write(full[::8, ::8].copy(), subfiletype=1)
        tif.write(full)
    if next_of_thumbnail is not None:
        data = bytearray(path.read_bytes())
        first = struct.unpack_from("<I", data, 4)[0]
        tags = struct.unpack_from("<H", data, first)[0]
        struct.pack_into("<I", data, first + 2 + 12 * tags, next_of_thumbnail(first, len(data)))
        path.write_bytes(bytes(data))
    return full


@pytest.mark.parametrize("damage", ["loop", "past the end"])
def test_a_tiff_whose_chain_of_pages_breaks_after_its_thumbnail_is_refused_not_read_as_the_thumbnail(tmp_path, damage):
    # the next-IFD offset after a thumbnail pointing back to it (or past the end of the file):
    # tifffile finds one page, a reduced-resolution copy, and it was read as the radiograph
    # (a 25 x 32 image), saying only tifffile's 'invalid circular reference' in a note
    offset = (lambda first, size: first) if damage == "loop" else (lambda first, size: size + 4096)
    _tiff_thumbnail_then_full(tmp_path / "t.tif", offset)
    said = "loops back to page 1" if damage == "loop" else "points past the end of the file"
    with pytest.raises(ImageReadError, match=rf"t\.tif: TIFF's chain of pages {said} after page 1, and the pages "
                       r"before are reduced-resolution copies \(page 1: 25 x 32, width x height\): its full-resolution "
                       r"image cannot be reached; corrupt"):  # fmt: skip
        read_image(tmp_path / "t.tif", warn=False)


def test_a_tiff_of_a_thumbnail_whose_full_image_is_in_its_subifd_reads_the_full_image(tmp_path, request):
    # page 1 a reduced-resolution copy, the image itself in its SubIFD (DNG's layout, some scanners'):
    # the 25 x 32 thumbnail was read as the radiograph, with a note saying no page is at full resolution
    import tifffile

    full = (np.arange(256 * 200).reshape(256, 200) % 4096).astype(np.uint16)
    with tifffile.TiffWriter(tmp_path / "s.tif") as tif:
        tif.write(full[::8, ::8].copy(), subfiletype=1, subifds=1)
        tif.write(full)  # (page 1's SubIFD)
    rad = read_image(tmp_path / "s.tif", warn=False)
    assert np.array_equal(rad.values, full)
    assert (f"{tmp_path / 's.tif'}: TIFF's page 1 is a reduced-resolution copy; reading the full-resolution image "
            "in its SubIFD (200 x 256, width x height)") in rad.notes, rad.notes
    # Pillow, which decodes LZW where imagecodecs is missing, reads no SubIFD: it would give the thumbnail
    with tifffile.TiffWriter(tmp_path / "lzw.tif") as tif:
        tif.write(full[::8, ::8].copy(), subfiletype=1, subifds=1, compression="lzw")
        tif.write(full, compression="lzw")
    request.getfixturevalue("without_imagecodecs")  # (after writing: the encoder is imagecodecs')
    with pytest.raises(ImageReadError, match=r"lzw\.tif: TIFF's full-resolution image, in the SubIFD of page 1, is "
                       r"LZW data that tifffile decodes with imagecodecs: pip install imagecodecs"):  # fmt: skip
        read_image(tmp_path / "lzw.tif", warn=False)


def test_a_tiff_read_from_a_subifd_names_no_unmarked_thumbnail(tmp_path, seed):
    # the image read is page 1's SubIFD, page 1 itself marked reduced-resolution: the note of a larger
    # later page said page 1 might be "a thumbnail not marked as one", false of a page marked so
    import tifffile

    full = np.random.default_rng(seed).integers(0, 4096, (32, 40), np.uint16)
    with tifffile.TiffWriter(tmp_path / "s.tif") as tif:
        tif.write(full[::8, ::8].copy(), subfiletype=1, subifds=1)
        tif.write(full)  # (page 1's SubIFD)
        tif.write(np.zeros((64, 80), np.uint16), subfiletype=1)
    rad = read_image(tmp_path / "s.tif", warn=False)
    np.testing.assert_array_equal(rad.values, full)
    assert not [note for note in rad.notes if "thumbnail not marked" in note], rad.notes


def test_a_tiff_whose_only_pages_are_reduced_resolution_says_which_it_reads(tmp_path):
    # a whole chain of pages all marked reduced-resolution (some writers mark a sole page so): read,
    # the largest page, saying so; a chain looping after the full-resolution page reads that page
    import tifffile

    values = (np.arange(64 * 48).reshape(64, 48) % 4096).astype(np.uint16)
    tifffile.imwrite(tmp_path / "r.tif", values, subfiletype=1)
    rad = read_image(tmp_path / "r.tif", warn=False)
    assert np.array_equal(rad.values, values)
    said = "TIFF's pages are all marked reduced-resolution copies (NewSubfileType), none at full resolution; reading "
    assert f"{tmp_path / 'r.tif'}: {said}page 1 (48 x 64, width x height)" in rad.notes
    # all pages reduced, the thumbnail first: the largest is read (page 1, a 25 x 32 thumbnail, was)
    with tifffile.TiffWriter(tmp_path / "p.tif") as tw:
        tw.write(values[::4, ::4].copy(), subfiletype=1)
        tw.write(values, subfiletype=1)
        tw.write(values[::2, ::2].copy(), subfiletype=1)
    rad = read_image(tmp_path / "p.tif", warn=False)
    assert np.array_equal(rad.values, values)
    assert rad.notes == [f"{tmp_path / 'p.tif'}: {said}page 2, the largest of 3 (48 x 64, width x height)"]
    full = _tiff_thumbnail_then_full(tmp_path / "f.tif")
    data = bytearray((tmp_path / "f.tif").read_bytes())
    with tifffile.TiffFile(tmp_path / "f.tif") as tif:
        second = tif.pages[1].offset
    struct.pack_into("<I", data, second + 2 + 12 * struct.unpack_from("<H", data, second)[0], second)
    (tmp_path / "f.tif").write_bytes(bytes(data))
    assert np.array_equal(read_image(tmp_path / "f.tif", warn=False).values, full)


def test_a_damaged_tag_in_a_reduced_page_not_read_adds_no_note(tmp_path, seed):
    # where every page is reduced-resolution the largest of the first 64 is read, all parsed to find
    # it while the file's tifffile log was kept: a bad tag in page 3, not read, added a note of its
    # own; the one of page 2, which is read, still does
    import tifffile

    values = np.random.default_rng(seed).integers(0, 4096, size=(32, 24)).astype(np.uint16)
    path = tmp_path / "r.tif"
    with tifffile.TiffWriter(path) as tw:
        for pixels in (values[::4, ::4].copy(), values, values[::2, ::2].copy()):
            tw.write(pixels, subfiletype=1, software="xvertfast test")
    _patch_tag_type(path, 2, 305, 99)  # Software, page 3's
    said = "TIFF's pages are all marked reduced-resolution copies (NewSubfileType), none at full resolution; reading "
    rad = read_image(path, warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.notes == [f"{path}: {said}page 2, the largest of 3 (24 x 32, width x height)"], rad.notes
    _patch_tag_type(path, 1, 305, 99)  # page 2's too: the page read
    rad = read_image(path, warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert len(rad.notes) == 2 and "invalid data type 99" in rad.notes[1].lower(), rad.notes


def test_a_damaged_tag_in_a_thumbnail_before_the_full_page_adds_no_note(tmp_path, seed):
    # the pages before the full-resolution one read were parsed again, to say whether they are
    # reduced, under the file's tifffile log: a bad tag in page 2, a thumbnail not read, added a note
    import tifffile

    values = np.random.default_rng(seed).integers(0, 4096, size=(32, 24)).astype(np.uint16)
    path = tmp_path / "t.tif"
    with tifffile.TiffWriter(path) as tw:
        for pixels, kind in ((values[::4, ::4].copy(), 1), (values[::2, ::2].copy(), 1), (values, 0)):
            tw.write(pixels, subfiletype=kind, software="xvertfast test")
    _patch_tag_type(path, 1, 305, 99)  # Software, page 2's
    rad = read_image(path, warn=False)
    np.testing.assert_array_equal(rad.values, values)
    assert len(rad.notes) == 1 and "reading page 3, the first at full resolution" in rad.notes[0], rad.notes


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")
def test_a_lower_case_photometric_interpretation_is_read_in_capitals(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 4095
    make_dicom(tmp_path / "a.dcm", values, photometric="monochrome1 ")
    rad = read_image(tmp_path / "a.dcm", warn=False)
    assert rad.photometric == "MONOCHROME1"
    np.testing.assert_allclose(rad.pixels, 1.0 - values / 4095.0, atol=1e-6)  # bone dark, flipped
    assert any("'monochrome1' read as MONOCHROME1" in note for note in rad.notes)


def test_a_rescale_slope_of_zero_is_refused_saying_so(tmp_path, seed):
    # every value maps to the intercept: it was refused later as a "constant image", with no word
    # of the slope that made it so
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)).astype(np.uint16)
    make_dicom(tmp_path / "a.dcm", values, slope=0.0, intercept=-1024.0)
    with pytest.raises(ImageReadError, match=r"a\.dcm: RescaleSlope is 0: every stored value maps to the intercept"):
        read_image(tmp_path / "a.dcm", warn=False)


def test_a_palette_tiff_with_8_bit_colours_in_its_map_keeps_8_bits(tmp_path, seed):
    # the map's entries are 16-bit by the standard; a writer that put 8-bit values there made an
    # image of 0..255 recorded as 16 bits (a 16-bit output of an 8-bit picture, and its full
    # range taken as 0..65535 when scored as another tool's output)
    import tifffile

    indices = np.random.default_rng(seed).integers(0, 256, size=(14, 22)).astype(np.uint8)
    indices[0, 0], indices[0, 1] = 0, 255
    colormap = np.stack([255 - np.arange(256)] * 3).astype(np.uint16)  # reversed grey, 8-bit values
    tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=colormap)
    im = read_image(tmp_path / "p.tif", warn=False)
    assert im.bits_stored == 8
    np.testing.assert_allclose(im.pixels, (255 - indices) / 255.0, atol=1e-6)
    # its values too: full_range (and the writers) go by their type, which was uint16 (0..65535)
    from xvertfast.io.read import full_range

    assert im.values.dtype == np.uint8
    assert full_range(im) == (0.0, 255.0)


@pytest.mark.parametrize("slope", [None, 0.0])
def test_a_rescale_slope_without_its_intercept_is_not_applied_nor_refused(tmp_path, seed, slope):
    # pydicom rescales only where both are present; the check of a zero slope refused such a file
    # as 'cannot decode DICOM: TypeError' (an empty slope) or 'maps to the intercept' (a 0 slope)
    # though its stored values are read as they are
    pydicom = pytest.importorskip("pydicom")
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)).astype(np.uint16)
    make_dicom(tmp_path / "a.dcm", values, slope=None)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.RescaleSlope = slope
    ds.save_as(tmp_path / "a.dcm")
    rad = read_image(tmp_path / "a.dcm", warn=False)
    assert np.array_equal(rad.values, values)


def _read_with_rescale_element(tmp_path, seed, keyword, value):
    """A 12-bit DICOM with no rescale but ``keyword`` (RescaleSlope or RescaleIntercept) set to
    ``value`` alone, read: (the image read, the values stored)."""
    pydicom = pytest.importorskip("pydicom")
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)).astype(np.uint16)
    make_dicom(tmp_path / "a.dcm", values, slope=None)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    setattr(ds, keyword, value)
    ds.save_as(tmp_path / "a.dcm")
    return read_image(tmp_path / "a.dcm", warn=False), values


@pytest.mark.parametrize("keyword, value, said", [("RescaleSlope", -1.0, "-1.0"), ("RescaleSlope", None, "(empty)"),
                                                   ("RescaleIntercept", -1024.0, "-1024.0")])  # fmt: skip
def test_a_rescale_slope_or_intercept_alone_is_said_not_applied(tmp_path, seed, keyword, value, said):
    # pydicom applies the two together or neither: a RescaleSlope of -1 alone left the image the
    # other way up from what its header says, and nothing said that the rescale was not applied
    rad, values = _read_with_rescale_element(tmp_path, seed, keyword, value)
    np.testing.assert_array_equal(rad.values, values)
    other = "RescaleIntercept" if keyword == "RescaleSlope" else "RescaleSlope"
    assert rad.notes == [f"{tmp_path / 'a.dcm'}: {keyword} {said} without {other} (DICOM gives the two together): no "
                         "rescale applied, the stored values read as they are (check the image)"]  # fmt: skip


@pytest.mark.parametrize("keyword, value", [("RescaleSlope", 1.0), ("RescaleSlope", "1"), ("RescaleSlope", "+1.00"),
                                            ("RescaleIntercept", 0.0), ("RescaleIntercept", "-0")])  # fmt: skip
def test_a_rescale_slope_of_1_or_intercept_of_0_alone_gets_no_note(tmp_path, seed, keyword, value):
    # such a lone element changes nothing, applied or not, yet got the note of one that would have
    # ('no rescale applied ... (check the image)'): a warning for every file of a batch
    rad, values = _read_with_rescale_element(tmp_path, seed, keyword, value)
    np.testing.assert_array_equal(rad.values, values)
    assert rad.notes == []


def test_a_dicom_whose_preamble_holds_a_tiff_header_is_read_as_dicom(tmp_path, seed):
    # PS3.10 lets the 128-byte preamble hold a TIFF header (pydicom's CT_small.dcm starts 'II*\0'):
    # sniffed as TIFF first, such a file was refused as 'TIFF has no readable page: truncated or corrupt'
    pydicom = pytest.importorskip("pydicom")
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)).astype(np.uint16)
    make_dicom(tmp_path / "a.dcm", values)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.preamble = b"II*\x00" + bytes(124)
    ds.save_as(tmp_path / "a.dcm", enforce_file_format=True)
    assert (tmp_path / "a.dcm").read_bytes()[:4] == b"II*\x00"
    rad = read_image(tmp_path / "a.dcm", warn=False)
    assert rad.source_format == "dicom" and np.array_equal(rad.values, values)


@pytest.mark.parametrize("photometric, shape, noted", [
    ("MONOCHROME1", "INVERSE", False),  # the pair PS3.3 asks for: one flip, as without the shape
    ("MONOCHROME2", "IDENTITY", False),
    ("MONOCHROME2", "INVERSE", True),  # seen in the wild: a viewer applying the shape shows it inverted
    ("MONOCHROME1", "IDENTITY", True),
])  # fmt: skip
def test_a_presentation_lut_shape_against_the_photometric_is_noted_and_the_photometric_kept(
        tmp_path, seed, photometric, shape, noted):  # fmt: skip
    # PresentationLUTShape (2050,0020) was ignored: a MONOCHROME2 image marked INVERSE, which a
    # viewer applying the shape shows bone dark, was enhanced as bright = high with no word of it
    pydicom = pytest.importorskip("pydicom")
    values = np.random.default_rng(seed).integers(0, 4096, size=(24, 40)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 4095
    make_dicom(tmp_path / "a.dcm", values, photometric=photometric)
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.PresentationLUTShape = shape
    ds.save_as(tmp_path / "a.dcm")
    rad = read_image(tmp_path / "a.dcm", warn=False)
    flipped = photometric == "MONOCHROME1"  # once, as the photometric says, whatever the shape
    np.testing.assert_allclose(rad.pixels, 1.0 - values / 4095.0 if flipped else values / 4095.0, atol=1e-6)
    said = [n for n in rad.notes if "PresentationLUTShape" in n]
    if noted:
        assert len(said) == 1 and said[0].startswith(f"{tmp_path / 'a.dcm'}: PresentationLUTShape (2050,0020) "
                                                     f"{shape} with PhotometricInterpretation {photometric}")  # fmt: skip
        assert "polarity is in doubt" in said[0]
    else:
        assert not said and not rad.notes


def test_pillows_warnings_about_a_tiff_it_decodes_for_tifffile_name_the_file(tmp_path, monkeypatch, request):
    # an LZW TIFF without imagecodecs is Pillow's; its warnings about the tags (here a
    # ResolutionUnit of two values) came out bare, naming no file, once per process for a batch
    import tifffile

    from xvertfast.io.errors import WarningsNamingTheFile

    values = (np.arange(48 * 64).reshape(48, 64) % 4096).astype(np.uint16)
    path = tmp_path / "lzw.tif"
    tifffile.imwrite(path, values, compression="lzw", resolution=(72, 72), resolutionunit="INCH")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags["ResolutionUnit"].offset
    with open(path, "r+b") as f:
        f.seek(offset + 4)
        f.write(struct.pack("<I", 2))  # its count: 2 values (the second 0) where one is meant
    request.getfixturevalue("without_imagecodecs")  # (after writing: the LZW encoder is imagecodecs')
    held, getdecoder = [], Image._getdecoder

    def spying_getdecoder(*args, **kwargs):  # the pixels are decoded outside the readers' turns
        held.append(WarningsNamingTheFile._lock.locked())
        return getdecoder(*args, **kwargs)

    monkeypatch.setattr(Image, "_getdecoder", spying_getdecoder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rad = read_image(path, warn=False)
    assert np.array_equal(rad.values, values)
    said = [w for w in caught if "had too many entries" in str(w.message)]
    assert len(said) == 1 and str(said[0].message).startswith(f"{path}: Metadata Warning, tag 296")
    assert said[0].filename == __file__  # given at the line that read the file
    assert held and not any(held), held


@pytest.mark.parametrize("dtype", ["uint8", "uint16", ">u2", ">i2", "int8", "int16", "int32", "float32", "float64",
                                   "bool"])  # fmt: skip
def test_min_max_scaling_gives_the_float64_formula_bit_for_bit(seed, dtype):
    # 8- and 16-bit images are scaled through a table of their range (a 3072^2 16-bit image took
    # 0.2-0.5 s in float64): the same float32 numbers as (v - lo) / (hi - lo) in float64
    from xvertfast.io.read import _min_max_scaled

    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        info = np.iinfo(dt)
        top = min(info.max, 1 << 20)
        low = int(rng.integers(info.min, top - 100))  # a narrow range (a 10-bit image stored in 16) and a wide one
        cases = [rng.integers(low, low + 100, (37, 53), endpoint=True),
                 rng.integers(info.min, top, (20, 30), endpoint=True), np.array([[info.min, info.max]])]
        cases = [c.astype(dt) for c in cases]
    elif dt.kind == "b":
        cases = [rng.random((9, 11)) > 0.5]
    else:
        cases = [(rng.random((37, 53)) * 5000 - 17).astype(dt)]
    for values in [*cases, np.full((4, 5), cases[0].flat[0], dt), cases[0][::2, ::-3]]:
        v = values.astype(np.float64)
        lo, hi = v.min(), v.max()
        want = ((v - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros(v.shape, np.float32)
        got = _min_max_scaled(values)
        assert got.dtype == np.float32 and got.shape == values.shape
        assert np.array_equal(got, want)


def test_a_big_endian_dicom_is_read(tmp_path, seed):
    # pydicom gives Explicit VR Big Endian pixels (old archives) as >u2: the table scaling refused
    # their byte order (numpy's "dtype ... only select the general DType"): the image failed
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(10, 14)).astype(np.uint16)
    meta = pydicom.dataset.FileMetaDataset()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds = pydicom.dataset.Dataset()
    ds.file_meta, ds.SOPClassUID, ds.SOPInstanceUID = meta, meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 10, 14, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = values.astype(">u2").tobytes()
    ds.save_as(tmp_path / "be.dcm", enforce_file_format=True, implicit_vr=False, little_endian=False)
    assert pydicom.dcmread(tmp_path / "be.dcm").pixel_array.dtype.byteorder == ">"  # (what the test is about)
    im = read_image(tmp_path / "be.dcm", warn=False)
    np.testing.assert_array_equal(im.values, values)
    lo, hi = values.min(), values.max()
    assert np.array_equal(im.pixels, ((values - float(lo)) / float(hi - lo)).astype(np.float32))


@pytest.mark.parametrize("path", [None, 3, np.zeros((4, 4))], ids=["none", "int", "array"])
def test_a_path_that_is_no_path_is_refused_by_name(path):
    # os.fspath said "expected str, bytes or os.PathLike object, not NoneType", naming nothing
    with pytest.raises(TypeError, match=r"^read_image: path must be a file's path \(str, bytes or pathlib.Path\), got "):
        read_image(path)


def test_an_empty_path_a_bytes_path_and_an_images_content_are_said_as_what_they_are(tmp_path):
    # '' was refused as ": no such file or folder", naming nothing; a bytes path was named b'...' in
    # messages and kept as bytes in Radiograph.path; a PNG's own bytes, given for its path, got
    # os.stat's "embedded null character in path"
    for empty in ("", b""):
        with pytest.raises(ValueError, match=r"^read_image: path is empty: give an image file's path$"):
            read_image(empty)
    png = tmp_path / "a.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(png)
    assert read_image(os.fsencode(png)).path == str(png)
    with pytest.raises(ImageReadError, match=rf"^{tmp_path}/b\.png: no such file or folder$"):
        read_image(os.fsencode(tmp_path / "b.png"))
    content = png.read_bytes()
    with pytest.raises(ValueError, match=rf"^read_image: path holds a NUL character, which no file's path can "
                                         rf"\({len(content):,} bytes\): the image's content\? save it to a file"):
        read_image(content)
