"""Finding a batch job's inputs and naming its outputs (xvertfast.io.files)."""

from __future__ import annotations

import os

import pytest

from xvertfast.io.files import discover, image_extension, output_path


def test_discover_lists_and_duplicates(tmp_path):
    for name in ("a.png", "b.dcm", "c", "d.txt"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'a.png'}\n# comment\n\n{tmp_path / 'b.dcm'}\n")
    found = discover([str(tmp_path), f"@{listing}"])
    assert [f.rel for f in found] == ["a.png", "b.dcm", "c"]  # .txt skipped, listed duplicates dropped
    assert len({os.path.abspath(f.path) for f in found}) == len(found)


def test_output_paths_cannot_escape(tmp_path):
    assert output_path(str(tmp_path), "sub/x.png", "_xp.png") == str(tmp_path / "sub" / "x_xp.png")
    with pytest.raises(ValueError, match="outside"):
        output_path(str(tmp_path), "../../etc/x.png", "_xp.png")


def test_dicom_named_by_uid_is_found_and_keeps_its_whole_name(tmp_path):
    # PACS exports name DICOM files by their SOP instance UID: the digits after the last dot
    # are not an extension, and two files of a series must not share an output
    series = tmp_path / "series"
    series.mkdir()
    for name in ("1.2.840.113619.2.55.320", "1.2.840.113619.2.55.321", "DICOMDIR", "notes.txt"):
        (series / name).write_bytes(b"x")
    found = [f.rel for f in discover([str(tmp_path)])]
    assert found == [os.path.join("series", "1.2.840.113619.2.55.320"), os.path.join("series", "1.2.840.113619.2.55.321")]
    outs = {output_path(str(tmp_path / "o"), rel, ".dcm") for rel in found}
    assert outs == {str(tmp_path / "o" / "series" / f"1.2.840.113619.2.55.32{k}.dcm") for k in (0, 1)}
    assert output_path(str(tmp_path), "scan.v2.PNG", ".png") == str(tmp_path / "scan.v2.png")


@pytest.mark.parametrize(("name", "ext"), [("a.png", ".png"), ("A.TIF", ".TIF"), ("b", ""), ("1.2.3.40", ""),
                                           ("c.txt", ""), ("d.tar.dcm", ".dcm")])  # fmt: skip
def test_image_extension(name, ext):
    assert image_extension(name) == ext
