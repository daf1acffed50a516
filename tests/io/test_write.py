"""Writers: bit depth, DICOM derivation, atomicity, and never overwriting inputs."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CXR_DEV, needs_cxr_dev
from tests.io.test_read import make_dicom
from xvertfast._version import __version__
from xvertfast.io import ImageWriteError, Radiograph, read_image, write_image
from xvertfast.io.decode_common import PNG_DEPTH_KEYWORD


def derived_dicom(tmp_path, seed, edit=None, name="src"):
    """(source data set, xvertfast's output like it, as pydicom reads it): a 10-bit DICOM that
    ``edit`` changes before it is saved, read and written back as an enhance job writes its output."""
    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    path = tmp_path / f"{name}.dcm"
    ds = make_dicom(path, values, bits=10)
    if edit is not None:
        edit(ds)
        ds.save_as(path, enforce_file_format=True)
    src = read_image(path, warn=False)
    write_image(tmp_path / f"{name}_out.dcm", src.pixels, like=src)
    return ds, pydicom.dcmread(tmp_path / f"{name}_out.dcm")


def test_png16_keeps_a_12bit_range(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 4096, size=(30, 20)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 4095
    Image.fromarray(values).save(tmp_path / "in.png")
    src = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.png", src.pixels, like=src)
    back = read_image(tmp_path / "out.png")
    assert back.bits_stored == 12
    np.testing.assert_array_equal(back.values, values)


@pytest.mark.parametrize("bits", [8, 10, 12])
def test_png16_of_a_dark_image_keeps_its_sources_depth(tmp_path, seed, bits):
    # without the depth recorded it was guessed from the largest value: a 12-bit source's
    # output of values up to 0.3 (1228) read back as 11 bits, and full_range scaled it over 0..2047
    values = np.random.default_rng(seed).integers(0, 1 << bits, size=(30, 20)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, (1 << bits) - 1
    Image.fromarray(values).save(tmp_path / "in.png")
    src = read_image(tmp_path / "in.png")
    dark = src.pixels * 0.3
    write_image(tmp_path / "out.png", dark, like=src)
    back = read_image(tmp_path / "out.png")
    assert back.bits_stored == bits and back.meta.get("significant_bits") == bits
    np.testing.assert_array_equal(back.values, np.round(dark.astype(np.float64) * ((1 << bits) - 1)))
    # not in sBIT: by the PNG spec that says the samples were scaled up to 16 bits, which these are not
    assert b"sBIT" not in (tmp_path / "out.png").read_bytes()
    plain = write_image(tmp_path / "plain.png", dark)  # no source: 16 bits, which PNG's depth already says
    assert PNG_DEPTH_KEYWORD.encode() not in open(plain, "rb").read()


@pytest.mark.parametrize("text", ["16", "0", "99", "abc", "12\u00b2"])
def test_png16_depth_no_16bit_image_can_have_is_ignored(tmp_path, seed, text):
    from PIL.PngImagePlugin import PngInfo

    values = np.random.default_rng(seed).integers(0, 1 << 12, size=(8, 9)).astype(np.uint16)
    values[0, 0] = 3000  # needs 12 bits: the guess
    info = PngInfo()
    info.add_text(PNG_DEPTH_KEYWORD, text)
    Image.fromarray(values).save(tmp_path / "odd.png", pnginfo=info)
    back = read_image(tmp_path / "odd.png")
    assert back.bits_stored == 12 and "significant_bits" not in back.meta


def test_png8_and_tiff(tmp_path, seed):
    pixels = np.random.default_rng(seed).random((9, 11)).astype(np.float32)
    write_image(tmp_path / "o.png", pixels, fmt="png8")
    back = read_image(tmp_path / "o.png")
    assert back.values.dtype == np.uint8
    write_image(tmp_path / "o.tiff", pixels)
    back = read_image(tmp_path / "o.tiff")
    v = pixels.astype(np.float64)
    np.testing.assert_allclose(back.pixels, (v - v.min()) / (v.max() - v.min()), atol=1e-6)


@pytest.mark.parametrize("fmt", ["png16", "png8", "tiff", "dicom"])
def test_the_description_stays_with_the_image(tmp_path, seed, fmt):
    import pydicom
    import tifffile

    pixels = np.random.default_rng(seed).random((9, 11)).astype(np.float32)
    said = "XVertNet enhancement, xvertfast 0.1.0: model 0123abcd, mode spine (ünïcode path: /data/röntgen)"
    path = write_image(tmp_path / f"o{fmt}", pixels, fmt=fmt, description=said)
    escaped = said.encode("ascii", "backslashreplace").decode()  # \\xfc for the u-umlaut, ...
    assert "\\xfcn\\xefcode" in escaped
    if fmt.startswith("png"):
        with Image.open(path) as im:
            assert im.text["Description"] == said  # iTXt is UTF-8
    elif fmt == "tiff":
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].description == escaped  # TIFF strings are ASCII
    else:
        assert pydicom.dcmread(path).DerivationDescription == escaped  # so is DICOM's default repertoire
    np.testing.assert_allclose(read_image(path).pixels.shape, pixels.shape)  # still reads as an image
    plain = write_image(tmp_path / f"p{fmt}", pixels, fmt=fmt)  # no description: none written (DICOM: the generic one)
    if fmt.startswith("png"):
        with Image.open(plain) as im:
            assert "Description" not in im.text


def test_dicom_round_trip_keeps_metadata_and_values(tmp_path, seed):
    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 1023
    src_ds = make_dicom(tmp_path / "src.dcm", values, bits=10)
    src_ds.InstanceNumber, src_ds.PatientOrientation, src_ds.ImageLaterality = 7, ["L", "F"], "U"
    src_ds.save_as(tmp_path / "src.dcm")
    src = read_image(tmp_path / "src.dcm")
    write_image(tmp_path / "out.dcm", src.pixels, like=src)
    out = read_image(tmp_path / "out.dcm")
    ds = out.meta
    assert str(ds.PatientName) == "Test^Patient" and ds.PatientID == "XVF-001"
    assert ds.StudyInstanceUID == src_ds.StudyInstanceUID
    assert ds.SOPInstanceUID != src_ds.SOPInstanceUID and "SeriesInstanceUID" in ds
    assert list(ds.ImageType)[0] == "DERIVED" and "xvertfast" in ds.DerivationDescription
    assert ds.BitsStored == 10 and out.bits_stored == 10
    # what viewers sort and orient by, and when the derived image was made
    assert ds.InstanceNumber == 7 and list(ds.PatientOrientation) == ["L", "F"] and ds.ImageLaterality == "U"
    assert "SeriesNumber" in ds and len(ds.ContentDate) == 8 and ds.ContentTime
    # which software made it, also where no description was given
    assert ds.SecondaryCaptureDeviceManufacturer == "xvertfast" and ds.SecondaryCaptureDeviceSoftwareVersions == __version__
    np.testing.assert_array_equal(out.values, values)


def test_dicom_of_a_monochrome1_source_shows_bone_bright_and_keeps_none_of_its_display_tags(tmp_path, seed):
    # the output is MONOCHROME2 of bright bone; the source's presentation shape, window, VOI LUT,
    # rescale and padding described its stored values, not these: a viewer applying any of them
    # would show the output inverted, clipped or mis-scaled
    import pydicom

    values = np.random.default_rng(seed).integers(0, 4096, size=(16, 24)).astype(np.uint16)
    values[0, :3] = (0, 1, 4095)
    ds = make_dicom(tmp_path / "src.dcm", values, photometric="MONOCHROME1", bits=12, slope=0.5, intercept=-1024)
    ds.PresentationLUTShape, ds.WindowCenter, ds.WindowWidth = "INVERSE", 600, 300
    voi = pydicom.Dataset()
    voi.LUTDescriptor, voi.LUTData = [4096, 0, 12], np.arange(4095, -1, -1).astype("<u2").tobytes()
    ds.VOILUTSequence = [voi]
    ds.PixelPaddingValue, ds.SmallestImagePixelValue, ds.LargestImagePixelValue = 4095, 0, 4095
    ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
    src = read_image(tmp_path / "src.dcm", warn=False)
    write_image(tmp_path / "out.dcm", src.pixels, like=src)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.PhotometricInterpretation == "MONOCHROME2"
    for keyword in ("PresentationLUTShape", "VOILUTSequence", "RescaleSlope", "RescaleIntercept", "ModalityLUTSequence",
                    "PixelPaddingValue", "SmallestImagePixelValue", "LargestImagePixelValue"):  # fmt: skip
        assert keyword not in out, keyword
    top = (1 << out.BitsStored) - 1
    assert out.HighBit == out.BitsStored - 1 and out.PixelRepresentation == 0 and out.pixel_array.max() <= top
    assert (float(out.WindowCenter), float(out.WindowWidth)) == (top / 2, top)  # the whole stored range
    shown, kept = out.pixel_array.astype(np.float64) / top, values != 4095  # (padding: set to the darkest)
    darkest, brightest = 4095 - values[kept].max(), 4095 - values[kept].min()  # (low stored values are bone)
    np.testing.assert_allclose(shown[kept], (4095 - values[kept] - darkest) / (brightest - darkest), atol=1 / top)
    assert (shown[~kept] == 0).all()


@needs_cxr_dev
def test_the_monochrome1_cxr_dev_sample_written_as_dicom_shows_its_spine_bright(tmp_path):
    import pydicom

    src = read_image(os.path.join(CXR_DEV, "gdcm-barre_cr-chest-pa_10bit_mono1.png"), photometric="MONOCHROME1")
    write_image(tmp_path / "out.dcm", src.pixels, like=src)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.PhotometricInterpretation == "MONOCHROME2" and "PresentationLUTShape" not in out
    assert out.BitsStored == 10 and (float(out.WindowCenter), float(out.WindowWidth)) == (511.5, 1023)
    shown = out.pixel_array.astype(np.float64)
    h, w = shown.shape
    spine = shown[h // 3 : 2 * h // 3, w // 2 - 10 : w // 2 + 10].mean()
    lung = shown[h // 3 : 2 * h // 3, w // 4 - 10 : w // 4 + 10].mean()
    assert spine > lung


def test_dicom_keeps_the_sources_character_set(tmp_path, seed):
    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    make_dicom(tmp_path / "src.dcm", values, bits=10)
    ds = pydicom.dcmread(tmp_path / "src.dcm")
    ds.SpecificCharacterSet, ds.PatientName = "ISO_IR 100", "Müller^Jürgen"  # Latin-1
    ds.save_as(tmp_path / "src.dcm")
    src = read_image(tmp_path / "src.dcm")
    write_image(tmp_path / "out.dcm", src.pixels, like=src)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.SpecificCharacterSet == "ISO_IR 100" and str(out.PatientName) == "Müller^Jürgen"
    assert "Müller".encode("latin-1") in (tmp_path / "out.dcm").read_bytes()  # written in it, not as UTF-8


def test_dicom_keeps_a_vendors_malformed_values_as_they_are(tmp_path, seed):
    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    values[0, 0], values[0, 1] = 0, 1023  # the full range: written back as read
    ds = make_dicom(tmp_path / "src.dcm", values, bits=10)
    ds.PixelSpacing, ds.InstanceNumber = ["0.143", "0.143"], 98765
    ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
    data = (tmp_path / "src.dcm").read_bytes()  # pydicom writes no malformed values: edit the bytes
    assert data.count(b"0.143\\0.143") == 1 and data.count(b"98765") == 1
    data = data.replace(b"0.143\\0.143", b"0,143\\0,143").replace(b"98765", b"ab   ")  # a comma for the point
    (tmp_path / "src.dcm").write_bytes(data)
    src = read_image(tmp_path / "src.dcm", warn=False)
    with pytest.warns(UserWarning, match="src.dcm: Invalid value for VR IS"):  # named (next test)
        write_image(tmp_path / "out.dcm", src.pixels, like=src)  # was: could not convert string to float
    out = read_image(tmp_path / "out.dcm", warn=False)
    raw = pydicom.dcmread(tmp_path / "out.dcm")
    assert raw.get_item("PixelSpacing").value.strip() == b"0,143\\0,143"
    assert raw.get_item("InstanceNumber").value.strip() == b"ab"
    np.testing.assert_array_equal(out.values, values)


def test_pydicom_warnings_about_the_source_header_name_the_source(tmp_path, seed):
    """The header elements copied from the source are converted as they are copied: pydicom's
    warnings about their values name the source file."""
    import warnings

    pytest.importorskip("pydicom")
    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    ds = make_dicom(tmp_path / "src.dcm", values, bits=10)
    ds.InstanceNumber = 98765
    ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
    (tmp_path / "src.dcm").write_bytes((tmp_path / "src.dcm").read_bytes().replace(b"98765", b"ab   "))
    src = read_image(tmp_path / "src.dcm", warn=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        write_image(tmp_path / "out.dcm", src.pixels, like=src)
    said = [str(w.message) for w in caught]
    assert said and all(s.startswith(f"{tmp_path / 'src.dcm'}: ") for s in said), said
    assert any("Invalid value for VR IS: 'ab'" in s for s in said)


@pytest.mark.parametrize("malformed", ["SeriesInstanceUID", "SOPInstanceUID"])
def test_a_malformed_source_uid_warns_naming_the_source(tmp_path, seed, malformed):
    """The source's series and instance UIDs were first read after the block that names the file in
    pydicom's warnings: a series UID '1.2.abc' warned 'Invalid value for VR UI' without saying of which
    file (the instance UID twice, the second as its reference was made)."""
    import warnings

    from pydicom.uid import generate_uid

    uids = {"study": generate_uid(), "series": generate_uid(), "sop": None}
    uids["series" if malformed == "SeriesInstanceUID" else "sop"] = "1.2.abc"
    with warnings.catch_warnings():  # (pydicom's, as the test's source is made)
        warnings.simplefilter("ignore")
        _series_dicom(tmp_path / "src.dcm", seed, uids["study"], uids["series"], sop=uids["sop"])
    src = read_image(tmp_path / "src.dcm", warn=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_image(tmp_path / "out.dcm", src.pixels, like=src, derivation="k1")
    said = [str(w.message) for w in caught]
    assert [s.split(". Please see")[0] for s in said] == [f"{tmp_path / 'src.dcm'}: Invalid value for VR UI: '1.2.abc'"]


def test_never_overwrites_inputs_or_existing_files(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "in.png")
    src = read_image(tmp_path / "in.png")
    before = (tmp_path / "in.png").read_bytes()
    with pytest.raises(ImageWriteError, match="refusing to overwrite the input"):
        write_image(tmp_path / "in.png", src.pixels, like=src, overwrite=True)
    write_image(tmp_path / "out.png", src.pixels)
    with pytest.raises(ImageWriteError, match="already exists"):
        write_image(tmp_path / "out.png", src.pixels)
    write_image(tmp_path / "out.png", src.pixels, overwrite=True)
    assert (tmp_path / "in.png").read_bytes() == before


def test_nan_pixels_are_counted_and_told_how_to_fill(tmp_path):
    """Said "pixels contain NaN or infinite values", no count, no fix, where preprocess names both."""
    pixels = np.full((5, 4), 0.5)
    pixels[0, 0], pixels[2, 3], pixels[4, 1] = np.nan, np.inf, np.nan
    with pytest.raises(ValueError) as info:
        write_image(tmp_path / "out.png", pixels)
    assert str(info.value) == (f"{tmp_path / 'out.png'}: pixels contain 3 NaN or infinite values: replace them first, "
                               "e.g. np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0) (torch.nan_to_num for a "
                               "tensor)")  # fmt: skip
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "bad.png", np.full((3, 3), np.nan))
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(tmp_path / "missing" / "x.png", np.zeros((3, 3)))
    with pytest.raises(ImageWriteError, match="cannot tell the output format"):
        write_image(tmp_path / "x.bmp", np.zeros((3, 3)))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name, fmt, said", [
    ("x.png", "tiff", r"x\.png: fmt 'tiff' contradicts the extension '\.png', which is for png16 or png8"),
    ("x.TIF", "png8", r"x\.TIF: fmt 'png8' contradicts the extension '\.TIF', which is for tiff"),
    ("x.dcm", "png16", r"x\.dcm: fmt 'png16' contradicts the extension '\.dcm', which is for dicom"),
    ("x.jpg", "png8", r"x\.jpg: fmt 'png8' contradicts the extension '\.jpg', which names a format xvertfast does not"),
])  # fmt: skip
def test_a_format_the_extension_contradicts_is_refused_naming_both(tmp_path, name, fmt, said):
    """write_image("x.png", px, "tiff") wrote a TIFF named .png without a word."""
    with pytest.raises(ValueError, match=said):
        write_image(tmp_path / name, np.zeros((8, 8), np.float32), fmt)
    assert os.listdir(tmp_path) == []


def test_a_format_is_taken_under_its_own_extensions_and_names_of_none(tmp_path):
    """png8 or png16 under .png, tiff under .tif, dicom under .dicom (also its default there); any
    format, as it is asked for, under a name of no image extension (a temporary NAME.part, none)
    or of an extension whose content is sniffed (.img, which may be a raw JSRT file or not)."""
    pixels = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    for name, fmt, kind in [("a.png", "png8", "PNG"), ("b.PNG", "png16", "PNG"), ("c.tif", "tiff", "TIFF"),
                            ("d.part", "tiff", "TIFF"), ("e.img", "png8", "PNG"), ("f", "tiff", "TIFF")]:  # fmt: skip
        with Image.open(write_image(tmp_path / name, pixels, fmt)) as im:
            assert im.format == kind, name
    assert read_image(write_image(tmp_path / "g.dicom", pixels)).source_format == "dicom"
    with pytest.raises(ImageWriteError, match=r"g\.jpeg: xvertfast writes no '\.jpeg' files"):
        write_image(tmp_path / "g.jpeg", pixels)


def test_no_partial_file_while_writing(tmp_path, monkeypatch):
    # A crash in the middle of encoding leaves neither the target nor the temporary file.
    import PIL.Image

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PIL.Image.Image, "save", boom)
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(tmp_path / "x.png", np.zeros((3, 3)))
    assert os.listdir(tmp_path) == []


def test_outputs_get_the_usual_file_mode(tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        path = write_image(tmp_path / "o.png", np.zeros((4, 4)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # not mkstemp's 0o600


def test_stale_parts_of_planned_outputs_are_removed_in_one_listing(tmp_path, monkeypatch):
    from xvertfast.io.write import remove_stale_parts

    (tmp_path / "sub").mkdir()
    stale = [tmp_path / ".a.png.k3j_x9q2.part", tmp_path / ".b.v1.dcm.abc12345.part", tmp_path / "sub" / ".c.png.zz.part"]
    keep = [tmp_path / ".other.png.k3j_x9q2.part",  # a temporary of a file this job does not write
            tmp_path / ".a.png",  # hidden, not a temporary
            tmp_path / "a.png.part",  # not atomic_write's form
            tmp_path / "a.png"]  # fmt: skip
    for p in stale + keep:
        p.write_bytes(b"x")
    listings = []
    scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda folder: listings.append(folder) or scandir(folder))
    outputs = [tmp_path / n for n in ("a.png", "b.v1.dcm", "d.png")] + [tmp_path / "sub" / "c.png", tmp_path / "new" / "e.png"]
    assert remove_stale_parts(str(o) for o in outputs) == 3
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)
    assert len(listings) == 3  # one per folder (the missing one included), not one per output



def test_a_source_header_pydicom_cannot_encode_fails_that_output_named(tmp_path, seed, monkeypatch):
    # an odd element of the source that pydicom fails on while writing (struct.error, TypeError,
    # a LookupError for a character set) is this output's ImageWriteError naming both files, as
    # a batch job reports per file; no partial file is left
    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    make_dicom(tmp_path / "src.dcm", values, bits=10)
    src = read_image(tmp_path / "src.dcm", warn=False)
    for error in (struct.error("required argument is not an integer"), TypeError("odd value"), LookupError("x")):
        def failing_save(self, *args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(pydicom.Dataset, "save_as", failing_save)
        with pytest.raises(ImageWriteError, match=r"out\.dcm: cannot encode the DICOM from the header of .*src\.dcm"):
            write_image(tmp_path / "out.dcm", src.pixels, like=src)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["src.dcm"]


def test_dicom_type1_study_uid_and_modality_even_where_the_source_lacks_them(tmp_path, seed):
    # a source without a StudyInstanceUID, or with an empty Modality, gave an output missing
    # these type 1 attributes (a PACS refuses it); the output gets a new study and 'OT'
    def edit(ds):
        del ds.StudyInstanceUID
        ds.Modality = ""

    _, out = derived_dicom(tmp_path, seed, edit)
    assert out.StudyInstanceUID and out.StudyInstanceUID.is_valid and out.Modality == "OT"


@pytest.mark.parametrize("how", ["header", "syntax"])
def test_dicom_from_a_lossy_source_says_it_was_lossy_compressed(tmp_path, seed, how):
    # the output dropped the source's LossyImageCompression 01 (and said nothing of a JPEG
    # source): a derived image of lossy pixels read as lossless quality, though PS3.3 C.7.6.1.1.5
    # says the flag, once set, is never reset
    import pydicom

    values = np.random.default_rng(seed).integers(0, 256, size=(16, 24)).astype(np.uint16)
    ds = make_dicom(tmp_path / "src.dcm", values, bits=8)
    if how == "header":
        ds.LossyImageCompression, ds.LossyImageCompressionRatio = "01", [8.5]
        ds.LossyImageCompressionMethod = ["ISO_10918_1"]
        ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
    src = read_image(tmp_path / "src.dcm", warn=False)
    if how == "syntax":  # as read from a JPEG baseline file (pydicom here has no JPEG encoder)
        src.meta.file_meta.TransferSyntaxUID = pydicom.uid.JPEGBaseline8Bit
    write_image(tmp_path / "out.dcm", src.pixels, like=src)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.LossyImageCompression == "01"
    if how == "header":
        assert float(out.LossyImageCompressionRatio) == 8.5 and out.LossyImageCompressionMethod == "ISO_10918_1"
    lossless = make_dicom(tmp_path / "plain.dcm", values, bits=8)  # and a lossless one is not called lossy
    lossless.LossyImageCompression = "00"
    lossless.save_as(tmp_path / "plain.dcm", enforce_file_format=True)
    plain = read_image(tmp_path / "plain.dcm", warn=False)
    write_image(tmp_path / "plain_out.dcm", plain.pixels, like=plain)
    assert "LossyImageCompression" not in pydicom.dcmread(tmp_path / "plain_out.dcm")


def test_dicom_keeps_the_sources_burned_in_annotation_flags(tmp_path, seed):
    # the enhanced pixels still show the source's burned-in text (a name, a date): the output
    # dropped BurnedInAnnotation YES, so a de-identification step that trusts it skipped them
    def edit(ds):
        ds.BurnedInAnnotation, ds.RecognizableVisualFeatures = "YES", "NO"

    _, out = derived_dicom(tmp_path, seed, edit)
    assert out.BurnedInAnnotation == "YES" and out.RecognizableVisualFeatures == "NO"


def test_dicom_keeps_every_pixel_size_the_source_gives(tmp_path, seed):
    # PixelSpacing and ImagerPixelSpacing were kept but a digitized film's NominalScannedPixelSpacing
    # (its only spacing) was dropped, and so were PixelSpacing's calibration and the magnification
    # that takes ImagerPixelSpacing to the patient: measurements on the output lost their scale
    def film_edit(ds):
        ds.NominalScannedPixelSpacing = [0.2, 0.25]

    def dx_edit(ds):
        ds.PixelSpacing, ds.PixelSpacingCalibrationType = [0.125, 0.125], "GEOMETRY"
        ds.PixelSpacingCalibrationDescription = "magnification at the spine"
        ds.ImagerPixelSpacing, ds.EstimatedRadiographicMagnificationFactor = [0.15, 0.15], 1.2

    _, film = derived_dicom(tmp_path, seed, film_edit, name="film")
    assert [float(v) for v in film.NominalScannedPixelSpacing] == [0.2, 0.25]
    _, dx = derived_dicom(tmp_path, seed, dx_edit, name="dx")
    assert [float(v) for v in dx.PixelSpacing] == [0.125, 0.125] and dx.PixelSpacingCalibrationType == "GEOMETRY"
    assert dx.PixelSpacingCalibrationDescription == "magnification at the spine"
    assert [float(v) for v in dx.ImagerPixelSpacing] == [0.15, 0.15]
    assert float(dx.EstimatedRadiographicMagnificationFactor) == 1.2


def test_dicom_source_reference_takes_the_class_from_the_file_meta_where_the_data_set_lacks_it(tmp_path, seed):
    # a CR whose data set lacks SOPClassUID (its file meta has it) was referenced as a Secondary
    # Capture image: a wrong class for the source a viewer or PACS would look up
    def edit(ds):
        del ds.SOPClassUID

    ds, out = derived_dicom(tmp_path, seed, edit)
    ref = out.SourceImageSequence[0]
    assert ref.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.1"  # CR image storage, as in the file meta
    assert ref.ReferencedSOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.parametrize("term, defined, codec", [("ISO-8859-1", "ISO_IR 100", "latin-1"), ("UTF-8", "ISO_IR 192", "utf-8")])
def test_dicom_writes_a_vendors_misspelt_character_set_as_the_defined_term(tmp_path, seed, term, defined, codec):
    # pydicom reads 'ISO-8859-1' by its codec, and the output's text was written in it, but the
    # output declared the same invalid CS value: a validator flags it and other toolkits may not
    # decode the name; now it says the defined term of what it is written in
    import warnings

    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's word on the invalid term
        ds = make_dicom(tmp_path / "src.dcm", values, bits=10)
        ds.SpecificCharacterSet = term
        ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
        data = (tmp_path / "src.dcm").read_bytes()  # the name in the vendor's encoding, same length
        (tmp_path / "src.dcm").write_bytes(data.replace(b"Test^Patient", "Müller^Jö".encode(codec).ljust(12)))
        src = read_image(tmp_path / "src.dcm", warn=False)
        write_image(tmp_path / "out.dcm", src.pixels, like=src)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert out.SpecificCharacterSet == defined and str(out.PatientName) == "Müller^Jö"
    assert "Müller".encode(codec) in (tmp_path / "out.dcm").read_bytes()


def test_dicom_keeps_a_shift_jis_character_set_it_has_no_defined_term_for(tmp_path, seed):
    # pydicom reads ISO_IR 13 (JIS X 0201, one byte a character) with the Shift_JIS codec, so a
    # vendor's 'SHIFT_JIS' was declared ISO_IR 13 while its kanji were written in two bytes each:
    # a toolkit decoding the defined term garbles the name. The term stays as the source has it
    import warnings

    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's word on the invalid term
        ds = make_dicom(tmp_path / "src.dcm", values, bits=10)
        ds.SpecificCharacterSet = "SHIFT_JIS"
        ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
        data = (tmp_path / "src.dcm").read_bytes()
        (tmp_path / "src.dcm").write_bytes(data.replace(b"Test^Patient", "山田^太郎".encode("shift_jis").ljust(12)))
        src = read_image(tmp_path / "src.dcm", warn=False)
        write_image(tmp_path / "out.dcm", src.pixels, like=src)
        out = pydicom.dcmread(tmp_path / "out.dcm")
        assert out.SpecificCharacterSet == "SHIFT_JIS" and str(out.PatientName) == "山田^太郎"


def test_dicom_still_writes_a_misspelt_iso_ir_13_as_the_defined_term():
    from xvertfast.io.write import _defined_charset

    assert _defined_charset("ISO-IR 13") == "ISO_IR 13" and _defined_charset("SHIFT_JIS") == "SHIFT_JIS"


def test_dicom_of_pixels_on_another_grid_does_not_claim_the_sources_pixel_size(tmp_path, seed):
    # like= gives patient and study; a caller's resized image (half the size) was written with
    # the source's PixelSpacing, so every measurement on it came out half as large
    import pydicom

    values = np.random.default_rng(seed).integers(0, 1024, size=(16, 24)).astype(np.uint16)
    ds = make_dicom(tmp_path / "src.dcm", values, bits=10)
    ds.PixelSpacing, ds.ImagerPixelSpacing = [0.125, 0.125], [0.15, 0.15]
    ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
    src = read_image(tmp_path / "src.dcm", warn=False)
    write_image(tmp_path / "half.dcm", src.pixels[::2, ::2], like=src)
    half = pydicom.dcmread(tmp_path / "half.dcm")
    assert "PixelSpacing" not in half and "ImagerPixelSpacing" not in half
    assert half.PatientID == ds.PatientID
    write_image(tmp_path / "same.dcm", src.pixels, like=src)
    assert [float(v) for v in pydicom.dcmread(tmp_path / "same.dcm").PixelSpacing] == [0.125, 0.125]


def test_what_is_no_float_image_is_refused_by_what_it_is(tmp_path):
    # a Radiograph, None and a path were "got object: scale stored values by their range first",
    # complex pixels "got complex64: scale stored values ...", and images of two sizes in a list
    # NumPy's "setting an array element with a sequence", which named no file
    import pathlib
    import types

    import torch

    img = np.linspace(0, 1, 72, dtype=np.float32).reshape(8, 9)
    rad = Radiograph(img, img, 8, "MONOCHROME2", "png", str(tmp_path / "src.png"))
    said = r"a\.png: pixels must be floats in \[0, 1\] \(as xvertfast\.io\.read_image gives them\), got "
    for value, got in [(rad, r"a Radiograph: give its \.pixels \(and like=it, to write at its depth\)$"),
                       (None, "NoneType$"), (np.array([[0.5, None]]), "a NumPy array of object$"),
                       # (the words of the metrics and find_spine: 'read it with xvertfast.io.read_image' was all)
                       (pathlib.Path("c.png"),
                        r"the path 'c\.png': read it with xvertfast\.io\.read_image\(path\)\.pixels$"),
                       # (a value with pixels other than a Radiograph was named by its type alone)
                       (types.SimpleNamespace(pixels=img), r"a SimpleNamespace: give its \.pixels$"),
                       ("c.png", "the path 'c.png'"), (img.astype(np.complex64), "complex64$"),
                       (torch.from_numpy(img).to(torch.complex64), "complex64$")]:  # fmt: skip
        with pytest.raises(TypeError, match=said + got):
            write_image(tmp_path / "a.png", value)
    with pytest.raises(TypeError, match=r"a\.png: pixels must be one \[H, W\] image, got a list that NumPy cannot"):
        write_image(tmp_path / "a.png", [img, img[:4]])
    assert not list(tmp_path.iterdir())


def test_pixels_on_another_scale_are_refused_not_clipped_to_a_near_binary_image(tmp_path, seed):
    # write_image clipped whatever it got to [0, 1]: a uint16 array of 0..4095 was written as one
    # grey level, a float 0..255 image with four; a small overshoot is still clipped
    import torch

    rng = np.random.default_rng(seed)
    with pytest.raises(TypeError, match=r"a\.png: pixels must be floats in \[0, 1\].*got uint16"):
        write_image(tmp_path / "a.png", rng.integers(0, 4096, (8, 9)).astype(np.uint16))
    with pytest.raises(TypeError, match=r"got int64"):
        write_image(tmp_path / "a.png", torch.zeros(8, 9, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"a\.png: pixels must lie in \[0, 1\].*got values from 0 to 255"):
        write_image(tmp_path / "a.png", np.linspace(0, 255, 72).reshape(8, 9))
    with pytest.raises(ValueError, match=r"a\.png: pixels are on the meta device"):
        write_image(tmp_path / "a.png", torch.zeros(8, 9, device="meta"))
    assert not list(tmp_path.iterdir())
    over = np.linspace(-0.02, 1.02, 72).reshape(8, 9)
    write_image(tmp_path / "b.png", over, "png8")
    np.testing.assert_allclose(read_image(tmp_path / "b.png").pixels, np.round(np.clip(over, 0, 1) * 255) / 255, atol=1e-6)
    write_image(tmp_path / "c.png", torch.from_numpy(over).bfloat16(), "png8")  # (no NumPy bfloat16)
    assert (tmp_path / "c.png").is_file()


def test_a_write_cut_short_keeps_the_systems_errno(tmp_path, seed):
    # the error said the system's words but dropped its errno, so disk_full went by the words
    import errno

    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # (Python ignores SIGXFSZ: EFBIG)
    try:
        with pytest.raises(ImageWriteError, match="cannot write: File too large") as caught:
            write_image(tmp_path / "a.tif", np.random.default_rng(seed).random((64, 64)), "tiff")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert caught.value.errno == errno.EFBIG and not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt", ["png16", "png8"])
def test_png_is_deflated_at_the_fast_level_and_keeps_its_values(tmp_path, seed, fmt):
    # level 6, Pillow's default, took 1.7-2.2x as long for files within 2% of the size (PNG_COMPRESS_LEVEL);
    # the zlib header of the image data says the level's class (FLEVEL: 1 for levels 2-5, 2 for 6)
    pixels = np.random.default_rng(seed).random((64, 48)).astype(np.float32)
    out = write_image(tmp_path / "o.png", pixels, fmt=fmt)
    data = open(out, "rb").read()
    idat = data.index(b"IDAT") + 4
    assert data[idat] & 0x0F == 8 and data[idat + 1] >> 6 == 1, "zlib header of IDAT"
    top = 255 if fmt == "png8" else 65535
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.round(pixels.astype(np.float64) * top))


@pytest.mark.parametrize("fmt", ["png16", "png8", "tiff", "dicom"])
def test_an_empty_image_is_refused_naming_the_file(tmp_path, fmt):
    # PNG said only "cannot write empty image" (Pillow's words, no file); TIFF and DICOM wrote a file
    # of a 0-row image (tifffile: "writing zero-size array to nonconformant TIFF")
    for shape in ((0, 5), (4, 0)):
        with pytest.raises(ValueError, match=rf"a\.out: pixels are empty \(shape {shape[0]} x {shape[1]}\)"):
            write_image(tmp_path / "a.out", np.zeros(shape, np.float32), fmt)
    assert not list(tmp_path.iterdir())


def test_like_that_is_not_a_radiograph_is_refused_by_name(tmp_path, seed):
    # like="source.png" (a path, not what read_image gives) failed with AttributeError 'bits_stored'
    pixels = np.random.default_rng(seed).random((8, 9))
    with pytest.raises(TypeError, match=r"write_image: like must be the source's Radiograph \(xvertfast\.io\.read_image"
                                        r"\(path\) gives it\), got str"):  # fmt: skip
        write_image(tmp_path / "a.png", pixels, like="source.png")
    assert not list(tmp_path.iterdir())


def test_an_output_whose_name_is_near_the_file_systems_limit_is_written_and_its_stale_temporary_found(tmp_path):
    """atomic_write's temporary, '.NAME.<random>.part', is 15 bytes longer than NAME: an input named
    with 241 to 255 bytes (a descriptive export's names) failed its output with 'File name too long',
    though the output's own name fits. The temporary's copy of NAME is cut to fit (at a whole UTF-8
    character), and remove_stale_parts still finds one a killed run left."""
    from pathlib import Path

    from xvertfast.io.write import atomic_write, remove_stale_parts

    for name in ["x" * 246 + ".png", "x" + "ü" * 124 + ".png", "x" * 251 + ".png"]:  # 250, 253 and 255 bytes
        path = str(tmp_path / name)
        with atomic_write(path) as tmp:
            assert len(os.fsencode(os.path.basename(tmp))) <= 255
            os.fsencode(os.path.basename(tmp)).decode("utf-8")  # (cut at a whole character: UTF-8 still)
            Path(tmp).write_bytes(b"output")
            left = tmp
        assert Path(path).read_bytes() == b"output"
        Path(left).write_bytes(b"a killed run's")  # (as a kill while writing leaves it)
        assert remove_stale_parts([path]) == 1 and not os.path.exists(left) and os.path.exists(path)


def test_a_shards_stale_temporary_sweep_leaves_the_live_temporary_of_a_long_name_that_begins_alike(tmp_path):
    """Two output names over 240 bytes that share their first 240 got one cut temporary stem: a shard
    starting beside another (remove_stale_parts at its start) removed the other's live temporary, whose
    write then failed with a bare '[Errno 2] ... .part'. The stem now ends in a digest of the whole name."""
    from pathlib import Path

    from xvertfast.io.write import atomic_write, remove_stale_parts

    first, second = (str(tmp_path / ("x" * 245 + f"_{k}.png")) for k in "ab")  # (252 bytes each)
    with atomic_write(second) as tmp:
        Path(tmp).write_bytes(b"second")
        assert remove_stale_parts([first]) == 0 and os.path.exists(tmp)
    assert Path(second).read_bytes() == b"second"
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(second)]


def _series_dicom(path, seed, study, series, sop=None):
    """A 10-bit DICOM of ``study`` and ``series`` (UIDs; None: the attribute left out)."""
    from pydicom.uid import generate_uid

    from tests.infer.test_enhance import chest_like

    values = np.round(chest_like(seed) * 1023).astype(np.uint16)
    ds = make_dicom(path, values, bits=10)
    for keyword, uid in (("StudyInstanceUID", study), ("SeriesInstanceUID", series)):
        if uid is None:
            ds.pop(keyword, None)
        else:
            setattr(ds, keyword, uid)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop or generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_dicom_outputs_of_one_source_series_made_one_way_share_one_new_series(tmp_path, seed):
    """Each output had a new SeriesInstanceUID of its own: 5000 enhanced images of one series were
    5000 one-image series in a PACS. The derived series is named by the source's study and series and
    by what was done (derivation=): the same for every image of the series, never the source's own series,
    and another for another series, study or derivation; without derivation= a series each."""
    import pydicom
    from pydicom.uid import generate_uid

    study, series, other = generate_uid(), generate_uid(), generate_uid()
    sources = {"a1": (study, series), "a2": (study, series), "b": (study, other), "c": (generate_uid(), series),
               "no_series": (study, None), "no_study": (None, series)}  # fmt: skip
    for i, (name, (st, se)) in enumerate(sources.items()):
        _series_dicom(tmp_path / f"{name}.dcm", seed + i, st, se)

    def derived(name, out, **kwargs):
        src = read_image(tmp_path / f"{name}.dcm", warn=False)
        return pydicom.dcmread(write_image(tmp_path / out, src.pixels, like=src, **kwargs)).SeriesInstanceUID

    a1, a2 = derived("a1", "a1_out.dcm", derivation="k1"), derived("a2", "a2_out.dcm", derivation="k1")
    assert a1 == a2 and a1 not in (series, other) and a1.startswith("2.25.") and a1.is_valid
    assert derived("b", "b_out.dcm", derivation="k1") != a1  # another series of the study
    assert derived("c", "c_out.dcm", derivation="k1") != a1  # the same series UID in another study
    assert derived("a1", "a1_k2.dcm", derivation="k2") != a1  # made another way
    assert derived("a1", "a1_again.dcm", derivation="k1") == a1  # (another run: the same series)
    # no derivation: a series each, even where the description (or the default one) is the same, as it may be
    # for other pixels (a CLAHE output and an enhanced one written from Python both had the default as their key)
    said = [derived("a1", f"d{i}.dcm", description=text) for i, text in enumerate(["x 1", "x 1", None, None])]
    assert len(set(said)) == 4 and not set(said) & {a1, series}
    # no series (or no study) to derive from: each output a series of its own, as a PNG's is
    lone = [derived(name, f"{name}_{i}.dcm", derivation="k1") for name in ("no_series", "no_study") for i in (1, 2)]
    assert len(set(lone)) == 4
    pixels = np.random.default_rng(seed).random((8, 9))
    png = [pydicom.dcmread(write_image(tmp_path / f"p{i}.dcm", pixels, derivation="k1")) for i in (1, 2)]
    assert png[0].SeriesInstanceUID != png[1].SeriesInstanceUID and png[0].StudyInstanceUID != png[1].StudyInstanceUID


def test_a_dicom_output_made_again_the_same_way_keeps_its_instance_uid(tmp_path, seed):
    """The SOPInstanceUID was new at every write: an --overwrite rerun (or a second job with the same
    settings) of one source into the same derived series sent a PACS the same image again as another
    instance. With a derivation it is named by the source's study, series and instance, by the
    derivation and by the pixels written: one pixel one step apart (another backend, other ROI
    centres) is another instance, as DICOM requires; without a derivation, or for a source whose
    study or series is not there, it is new each time."""
    import pydicom
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    source = _series_dicom(tmp_path / "a.dcm", seed, study, series).SOPInstanceUID
    _series_dicom(tmp_path / "b.dcm", seed + 1, study, series)
    _series_dicom(tmp_path / "copy.dcm", seed, generate_uid(), series, sop=source)  # (a copied into another study)
    _series_dicom(tmp_path / "no_series.dcm", seed + 2, study, None)

    def instance(name, out, pixels=None, **kwargs):
        src = read_image(tmp_path / f"{name}.dcm", warn=False)
        written = pydicom.dcmread(write_image(tmp_path / out, src.pixels if pixels is None else pixels, like=src,
                                              **kwargs))  # fmt: skip
        assert written.file_meta.MediaStorageSOPInstanceUID == written.SOPInstanceUID
        return written.SOPInstanceUID

    first = instance("a", "a1.dcm", derivation="k1")
    assert first.startswith("2.25.") and first.is_valid and first != source
    assert instance("a", "a2.dcm", derivation="k1") == first  # made again the same way: the same image
    assert instance("a", "a3.dcm", derivation="k2") != first  # made another way
    assert instance("b", "b1.dcm", derivation="k1") != first  # another source image of the series
    assert instance("copy", "c1.dcm", derivation="k1") != first  # its instance UID in another study
    assert instance("a", "d1.dcm") != instance("a", "d2.dcm")  # no derivation: new each time
    # (10-bit: written as 0..1023; the read pixels lie between those levels, so they are taken to them first)
    levels = np.round(read_image(tmp_path / "a.dcm", warn=False).pixels.astype(np.float64) * 1023) / 1023
    stepped = levels.copy()
    stepped[3, 4] += (1 if stepped[3, 4] < 0.5 else -1) / 1023  # one pixel one grey level apart
    moved = instance("a", "e1.dcm", stepped, derivation="k1")
    assert moved != first and instance("a", "e2.dcm", stepped, derivation="k1") == moved
    written = {name: pydicom.dcmread(tmp_path / name) for name in ("a1.dcm", "e1.dcm")}
    apart = written["a1.dcm"].pixel_array.astype(int) - written["e1.dcm"].pixel_array
    assert np.count_nonzero(apart) == 1 and abs(apart).max() == 1
    assert len({ds.SeriesInstanceUID for ds in written.values()}) == 1  # (made the same way: one series)
    # the pixels as written: a difference the encoding rounds away is the same image
    assert instance("a", "e3.dcm", levels + 1e-7, derivation="k1") == first
    assert instance("no_series", "n1.dcm", derivation="k1") != instance("no_series", "n2.dcm", derivation="k1")


def test_an_output_name_over_255_bytes_is_refused_naming_the_reason(tmp_path, seed):
    """A name the file system cannot hold failed at the write, after the encoding, as the system's
    bare 'cannot write: File name too long'."""
    pixels = np.random.default_rng(seed).random((8, 9))
    name = "1.2.840." + "1" * 245 + ".dcm"  # a UID-named input's 253 bytes and the .dcm added: 257
    with pytest.raises(ImageWriteError, match=r"its name is 257 bytes long, more than the 255 a file name may have on "
                                              r"most file systems; give it a shorter name"):  # fmt: skip
        write_image(tmp_path / name, pixels)
    assert not list(tmp_path.iterdir())
    assert os.path.exists(write_image(tmp_path / ("1" * 251 + ".dcm"), pixels))  # 255 bytes: written


def test_a_non_ascii_name_over_255_bytes_is_left_to_the_file_system(tmp_path, seed, monkeypatch):
    """write_image refused any name over 255 bytes before the write, though exFAT, FAT, SMB and HFS+ count
    255 UTF-16 units: 'ü' * 150 (300 bytes, 150 units) is a name they hold (measured on an exFAT mount).
    The file system decides; where it refuses, the error says the name's length (not only the system's
    bare 'File name too long'), for a name within 255 bytes too (eCryptfs takes 143)."""
    import contextlib
    import errno

    import xvertfast.io.write as write

    pixels = np.random.default_rng(seed).random((8, 9))
    held = tmp_path / "held.png"  # (where a file system holding the long name puts its bytes)

    @contextlib.contextmanager
    def holds_long_names(path):
        yield str(held)

    monkeypatch.setattr(write, "atomic_write", holds_long_names)
    name = "ü" * 150 + ".png"  # 304 bytes, 154 UTF-16 units
    assert write_image(tmp_path / name, pixels) == str(tmp_path / name)
    assert read_image(held, warn=False).shape == (8, 9)

    @contextlib.contextmanager
    def refuses(path):
        raise OSError(errno.ENAMETOOLONG, "File name too long")
        yield

    monkeypatch.setattr(write, "atomic_write", refuses)
    with pytest.raises(ImageWriteError, match=r"its name is 304 bytes long, more than the 255 a file name may have") \
            as raised:  # fmt: skip
        write_image(tmp_path / name, pixels)
    assert raised.value.errno == errno.ENAMETOOLONG
    short = tmp_path / ("x" * 150 + ".png")
    with pytest.raises(ImageWriteError, match=r"cannot write: File name too long \(its name is 154 bytes long, its "
                                              r"path \d+\): the folder's file system takes shorter ones"):  # fmt: skip
        write_image(short, pixels)


def test_enhance_plans_an_output_name_over_255_bytes_where_the_inputs_own_name_is_as_long(tmp_path):
    """The plan refused an input whose output's name passes 255 bytes even where the input's own name
    does: its file system (exFAT, SMB) holds such names, and the output folder's may. A longer output
    name of an input within 255 bytes is still refused before the input is read."""
    from xvertfast.infer.batch import _plan
    from xvertfast.io.files import InputFile

    held = str(tmp_path / ("ü" * 150 + ".png"))  # 304 bytes: only where its file system holds it
    fits = str(tmp_path / ("x" * 251 + ".png"))  # 255 bytes: 256 as .tiff
    planned, failed = _plan([InputFile(held, os.path.basename(held)), InputFile(fits, os.path.basename(fits))],
                            str(tmp_path / "out"), "tiff")  # fmt: skip
    assert [(f.path, os.path.basename(out)) for f, out in planned] == [(held, "ü" * 150 + ".tiff")]
    assert [(r.input, r.error) for r in failed] == [(fits, f"{fits}: its output's name would be 256 bytes long (.tiff "
                                                           "in place of the extension of the input's name), more than "
                                                           "the 255 a file name may have; give the input a shorter "
                                                           "name")]  # fmt: skip


def test_enhance_puts_the_dicom_outputs_of_one_source_series_in_one_series_across_resumes(tmp_path, seed,
                                                                                          monkeypatch):  # fmt: skip
    """xvertfast enhance: outputs of one source series share a derived series in the run, in a
    resume of it (by a newer xvertfast too, whose description says another version) and in each
    shard; another source series has another; an --overwrite with other settings makes another."""
    import xvertfast.infer.batch as batch
    import pydicom
    from pydicom.uid import generate_uid

    from tests.infer.test_enhance import TILE, tiny_model
    from xvertfast.cli import main
    from xvertfast.model import save_model

    model = str(save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}}))
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    study, series_a, series_b = generate_uid(), generate_uid(), generate_uid()
    for i, (name, series) in enumerate([("a1", series_a), ("a2", series_a), ("b1", series_b)]):
        _series_dicom(src / f"{name}.dcm", seed + i, study, series)

    def series_of(folder=out):
        return {p.stem: pydicom.dcmread(p).SeriesInstanceUID for p in sorted(folder.glob("*.dcm"))}

    enhance = ["enhance", str(src), "-o", str(out), "--model", model, "-q"]
    assert main(enhance) == 0
    first = series_of()
    assert first["a1"] == first["a2"] != first["b1"] and series_a not in first.values()
    _series_dicom(src / "a3.dcm", seed + 3, study, series_a)  # the job resumed with one more image of series a
    monkeypatch.setattr(batch, "__version__", "99.0")
    assert main(enhance) == 0
    assert series_of() == {**first, "a3": first["a1"]}
    assert "xvertfast 99.0:" in pydicom.dcmread(out / "a3.dcm").DerivationDescription
    for k in (1, 2):  # the job in shards, into another folder
        assert main(enhance[:3] + [str(tmp_path / "sharded"), "--model", model, "--shard", f"{k}/2", "-q"]) == 0
    assert series_of(tmp_path / "sharded") == series_of()
    read = [{p.stem: pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))}
            for folder in (out, tmp_path / "sharded")]  # fmt: skip
    instances = [{stem: ds.SOPInstanceUID for stem, ds in folder.items()} for folder in read]
    # made the same way, the same pixels (this CPU, one backend): the same instances
    assert all((ds.pixel_array == read[1][stem].pixel_array).all() for stem, ds in read[0].items())
    assert instances[0] == instances[1] and len(set(instances[0].values())) == 4
    assert main(enhance + ["--brightness", "original", "--overwrite"]) == 0  # other settings: another series
    redone = series_of()
    assert redone["a1"] == redone["a3"] != first["a1"] and redone["b1"] != first["b1"]


def test_enhance_gives_an_image_enhanced_at_other_roi_centres_another_instance_uid(tmp_path, seed):
    """--rois places an image's tiles, so its pixels, but the instance UID was named by the job's key,
    which leaves the centres out: jobs with the same settings and other ROI files gave one SOPInstanceUID
    to other pixels. The pixels written name the instance UID too (not the series): an image the file
    does not name, the same pixels as without --rois, keeps that UID, and the same file gives the same
    UIDs. (A resume with other centres redoes the image: the ledger records each output's centres.)"""
    import pydicom
    from pydicom.uid import generate_uid

    from tests.infer.test_enhance import TILE, tiny_model
    from xvertfast.cli import main
    from xvertfast.model import save_model

    model = str(save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}}))
    src = tmp_path / "in"
    src.mkdir()
    study, series = generate_uid(), generate_uid()
    for i, name in enumerate(["a1", "a2"]):
        _series_dicom(src / f"{name}.dcm", seed + i, study, series)
    for name, (top, bottom, col) in {"r1": (60, 180, 120), "r2": (70, 190, 110)}.items():
        (tmp_path / f"{name}.csv").write_text(f"file,upper_row,upper_col,lower_row,lower_col\n"
                                              f"a1.dcm,{top},{col},{bottom},{col}\n")  # fmt: skip

    def enhanced(folder, *rois):
        out = tmp_path / folder
        assert main(["enhance", str(src), "-o", str(out), "--model", model, "-q", *rois]) == 0
        read = {p.stem: pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))}
        return {k: (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.pixel_array) for k, ds in read.items()}

    found = enhanced("found")
    r1, r2 = (enhanced(name, "--rois", str(tmp_path / f"{name}.csv")) for name in ("r1", "r2"))
    assert (r1["a1"][2] != found["a1"][2]).any() and (r1["a1"][2] != r2["a1"][2]).any()  # other pixels
    assert len({found["a1"][0], r1["a1"][0], r2["a1"][0]}) == 3  # so other instances
    # (not in the file: its centres found, as without it, the same pixels)
    assert (found["a2"][2] == r1["a2"][2]).all() and (found["a2"][2] == r2["a2"][2]).all()
    assert found["a2"][0] == r1["a2"][0] == r2["a2"][0]
    assert found["a1"][1] == r1["a1"][1] == r2["a1"][1] == r2["a2"][1]  # one series: the job's settings
    again = enhanced("r1_again", "--rois", str(tmp_path / "r1.csv"))["a1"]
    assert (again[2] == r1["a1"][2]).all() and again[0] == r1["a1"][0]
    assert enhanced("r1", "--rois", str(tmp_path / "r2.csv"))["a1"][0] == r2["a1"][0]  # (redone at r2's centres)


def test_enhance_refuses_an_input_whose_output_name_would_pass_255_bytes_before_reading_it(tmp_path, seed):
    """A UID-named DICOM of 253 bytes gets '.dcm' added: its output's name of 257 bytes failed at the write,
    after the image was read and enhanced, with '... cannot write: File name too long'."""
    from tests.infer.test_enhance import TILE, chest_like, tiny_model
    from xvertfast.cli import main
    from xvertfast.model import save_model

    model = str(save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}}))
    src = tmp_path / "in"
    src.mkdir()
    long_uid = "1.2.840." + "1" * 245  # 253 bytes, no image extension
    make_dicom(src / long_uid, np.round(chest_like(seed) * 1023).astype(np.uint16), bits=10)
    png = str(src / ("x" * 251 + ".png"))  # 255 bytes: 256 as .tiff
    Image.fromarray(np.round(chest_like(seed + 1) * 255).astype(np.uint8)).save(png)

    def failed(*extra):
        report = tmp_path / f"report{len(extra)}.json"
        code = main(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", model, "-q", "--report", str(report)]
                    + list(extra))  # fmt: skip
        records = json.loads(report.read_text())["files"]
        return code, {r["input"]: r["error"] for r in records if r["status"] == "failed"}

    too_long = "more than the 255 a file name may have; give the input a shorter name"
    assert failed("--dry-run") == (1, {str(src / long_uid): f"{src / long_uid}: its output's name would be 257 bytes "
                                                            f"long (.dcm added to the input's name), {too_long}"})  # fmt: skip
    assert failed("--format", "tiff") == (1, {
        str(src / long_uid): f"{src / long_uid}: its output's name would be 258 bytes long (.tiff added to the input's "
                             f"name), {too_long}",
        png: f"{png}: its output's name would be 256 bytes long (.tiff in place of the extension of the input's name), "
             f"{too_long}"})  # fmt: skip
    assert not [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]
