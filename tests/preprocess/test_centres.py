"""The ROI centres CSV (``--rois FILE``): its rows read, and matched to the inputs they name."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from xvertfast.preprocess.centres import RoiRowError, centres_of_inputs, load_roi_centres

HEAD = "file,upper_row,upper_col,lower_row,lower_col"


def test_a_spreadsheets_empty_rows_are_no_rows(tmp_path):
    """Excel writes a row of bare commas for each row whose cells were once touched: 'line 3: ROI
    centres must be numbers' made the user find and delete rows that look empty in Excel."""
    path = tmp_path / "rois.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEAD},note\r\na.png,300,512,700.0,512,x\r\n,,,,,\r\n , ,,,,\r\n".encode())
    centres = load_roi_centres(str(path))
    assert dict(centres) == {"a.png": ((300.0, 512.0), (700.0, 512.0))}
    path.write_text(f"{HEAD}\n,,,,\nb.png,1,2,,4\n")  # a row with some cells filled is still checked
    with pytest.raises(ValueError, match=r"rois.csv, line 3: ROI centres must be numbers: lower_row is empty"):
        load_roi_centres(str(path))


def _centres(tmp_path, name: str):
    path = tmp_path / "rois.csv"
    path.write_text(f"{HEAD}\n{name},300,512,700,512\n")
    return load_roi_centres(str(path))


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_row_names_an_input_by_its_real_path_or_a_link_to_it(tmp_path):
    """The job takes a file reached through a link and by its real path for one input; the CSV's
    row naming the other path was 'none of the inputs' (a PACS export's list of real paths, the
    inputs given through a folder of links to them)."""
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    real, link = tmp_path / "store" / "1.2.840.dcm", tmp_path / "links" / "case7.dcm"
    real.write_bytes(b"")
    link.symlink_to(real)
    given = centres_of_inputs(_centres(tmp_path, str(real)), [str(link)])
    assert list(given) == [str(link)] and given[str(link)].upper == (300.0, 512.0)
    given = centres_of_inputs(_centres(tmp_path, str(link)), [str(real)])
    assert list(given) == [str(real)]


@pytest.mark.skipif(os.sep == "\\", reason="a Windows path is a path there")
def test_a_row_written_on_windows_names_its_input(tmp_path, monkeypatch):
    """A CSV made on Windows (d\\a\\y.png) for the same folders on Linux was 'none of the inputs'."""
    monkeypatch.chdir(tmp_path)
    inputs = [os.path.join("d", "a", "y.png"), os.path.join("d", "b", "y.png")]
    given = centres_of_inputs(_centres(tmp_path, "d\\b\\y.png"), inputs)
    assert list(given) == [inputs[1]]
    with pytest.raises(RoiRowError, match=r"rois.csv, line 2: d\\c\\y.png is none of the inputs"):
        centres_of_inputs(_centres(tmp_path, "d\\c\\y.png"), inputs)


def test_a_file_not_in_utf8_is_named_with_its_line(tmp_path):
    """Excel's plain 'CSV' is Windows-1252 where a name has an accent: every command said only
    "error: 'utf-8' codec can't decode byte 0xfc in position 46", naming neither file nor line."""
    path = tmp_path / "rois.csv"
    path.write_bytes(f"{HEAD}\na.png,1,2,3,4\nM\xfcller.png,300,512,700,512\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"rois.csv, line 3: not UTF-8 text \(byte 0xfc\).*CSV UTF-8"):
        load_roi_centres(str(path))
    # Excel's 'CSV UTF-8' (a byte-order mark) with a row pasted from a Windows-1252 file: the line and
    # byte are those of the file, not 3 bytes on (the decoder counts after the mark)
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEAD}\na.png,1,2,3,4\nM\xfcller.png,300,512,700,512\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"rois.csv, line 3: not UTF-8 text \(byte 0xfc\)"):
        load_roi_centres(str(path))


def test_a_csv_of_excel_where_the_decimal_mark_is_a_comma_is_read(tmp_path):
    """Excel in a German, French or Dutch locale separates a CSV's cells with ';' (its ',' is the
    decimal mark), and has no plain way to write commas: such a file was refused ('needs the
    columns ... its first line is 'file;upper_row;...''), so those users could not give centres."""
    path = tmp_path / "rois.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEAD.replace(',', ';')}\r\na,b.png;300,5;512;700;512\r\n;;;;\r\n".encode())
    assert dict(load_roi_centres(str(path))) == {"a,b.png": ((300.5, 512.0), (700.0, 512.0))}
    path.write_text(f"{HEAD.replace(',', ';')}\nb.png;300;5,1,2;700;512\n")  # a cell that is no number, as before
    with pytest.raises(ValueError, match=r"rois.csv, line 2: ROI centres must be numbers: upper_col is '5,1,2'$"):
        load_roi_centres(str(path))


def test_a_row_with_more_cells_than_the_header_names_is_refused(tmp_path):
    """A decimal comma in a comma-separated file (300,5) split the number in two: each centre after
    it took its neighbour's value and the last cell was dropped, so the ROIs were cut at wrong
    centres without a word."""
    path = tmp_path / "rois.csv"
    path.write_text(f"{HEAD}\na.png,1,2,3,4\nb.png,300,5,512,700,512\n")
    with pytest.raises(ValueError) as info:
        load_roi_centres(str(path))
    said = str(info.value)
    assert said.startswith(f"{path}, line 3: the row has 6 cells, the header names 5 "
                           "(file 'b.png', upper_row '300', upper_col '5', lower_row '512', lower_col '700', "
                           "then '512')"), said  # fmt: skip
    assert "decimal comma" in said and "300.5" in said, said
    path.write_text(f"{HEAD}\nb.png,300,512,700,512,checked\n")  # a notes column without a header: no decimal comma
    with pytest.raises(ValueError, match=r"line 2: the row has 6 cells, the header names 5 .*then 'checked'\)$"):
        load_roi_centres(str(path))
    path.write_text(f"{HEAD.replace(',', ';')}\nb.png;300;512;700;512;9\n")  # ';' between cells: no decimal comma
    with pytest.raises(ValueError, match=r"line 2: the row has 6 cells, the header names 5 .*then '9'\)$"):
        load_roi_centres(str(path))
    # empty cells after the last column (a trailing comma, a spreadsheet's ragged rows) are no data: read as before
    path.write_text(f"{HEAD}\nb.png,300,512,700,512,\nc.png,1,2,3,4, ,\n")
    assert dict(load_roi_centres(str(path))) == {"b.png": ((300.0, 512.0), (700.0, 512.0)),
                                                 "c.png": ((1.0, 2.0), (3.0, 4.0))}  # fmt: skip


@pytest.mark.parametrize("row, problem", [
    ("b.png,300,512,700", "the row ends after 4 cells, before the lower_col column (the header names 5)"),
    ("b.png", "the row ends after 1 cell, before the upper_row column (the header names 5)"),
    ("b.png,300,five hundred,700,512", "ROI centres must be numbers: upper_col is 'five hundred'"),
    ("b.png,300,512,,512", "ROI centres must be numbers: lower_row is empty"),
    ("b.png,300,512,700,inf", "ROI centres must be finite numbers: lower_col is 'inf'"),
])  # fmt: skip
def test_a_bad_cell_is_named_by_its_line_and_column(tmp_path, row, problem):
    """A row short of a cell (one lost in editing) was 'ROI centres must be numbers', true of none
    of its cells; a cell that is no number was not named, so the user searched the row for it."""
    path = tmp_path / "rois.csv"
    path.write_text(f"{HEAD}\na.png,1,2,3,4\n{row}\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, line 3: {re.escape(problem)}$"):
        load_roi_centres(str(path))


def test_the_header_may_be_capitalised(tmp_path):
    """'File,Upper_Row,...' (a spreadsheet's headings) was refused as lacking the columns file, upper_row, ..."""
    path = tmp_path / "rois.csv"
    path.write_text("File,Upper_Row,UPPER_COL,lower_row,Lower_Col\nA.png,300,512,700,512\n")
    assert dict(load_roi_centres(str(path))) == {"A.png": ((300.0, 512.0), (700.0, 512.0))}  # (the name as written)
    path.write_text("File,Upper_Row,Lower_Row,Lower_Col\nA.png,300,700,512\n")
    with pytest.raises(ValueError, match=r"\(its first line is 'File,Upper_Row,Lower_Row,Lower_Col'\)"):  # as written
        load_roi_centres(str(path))


def test_a_long_first_line_is_quoted_by_its_start(tmp_path):
    """A JSON file of centres given as --rois by mistake (one line, 40 kB) was quoted whole in the
    error: the terminal filled with it, the message itself scrolled away."""
    path = tmp_path / "rois.json"
    text = "{" + ", ".join(f'"img{i}.png": [300, 512, 700, 512]' for i in range(1000)) + "}"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"^.{,400}$") as caught:
        load_roi_centres(str(path))
    assert "needs the columns" in str(caught.value)
    assert f"(its first line of {len(text):,} characters begins '{text[:30]}" in str(caught.value), caught.value


def test_centres_given_from_python_are_named_without_a_line(tmp_path):
    """A plain mapping (enhance_files(rois={...}) and the like) has no CSV: its errors said 'the
    ROI file, line 0'."""
    from xvertfast.preprocess.centres import spine_at

    inputs = [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")]
    centre = ((300.0, 512.0), (700.0, 512.0))
    with pytest.raises(RoiRowError, match=r"^the ROI centres given: y.png is none of the inputs"):
        centres_of_inputs({"y.png": centre}, inputs)
    with pytest.raises(RoiRowError, match=r"^the ROI centres given: x.png is the file name of 2 inputs"):
        centres_of_inputs({"x.png": centre}, inputs)
    with pytest.raises(RoiRowError, match=rf"^the ROI centres given: {inputs[0]} has centres already"):
        centres_of_inputs({inputs[0]: centre, os.path.relpath(inputs[0]): centre}, inputs)
    given = centres_of_inputs({inputs[0]: ((5000.0, 1.0), (6000.0, 1.0))}, inputs)[inputs[0]]
    with pytest.raises(ValueError, match=r"^the ROI centres given: .*lies outside"):
        spine_at(np.zeros((64, 64), np.float32), given)


def test_a_row_whose_upper_centre_is_not_above_its_lower_one_is_refused_naming_its_line(tmp_path):
    """A row with the two centres swapped was taken: the upper ROI was enhanced and scored below the lower one."""
    path = tmp_path / "rois.csv"
    path.write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,300,512,700,512\nb.png,700,512,300,512\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, line 3: the upper ROI centre's row \(700\) must "
                                         r"be above the lower ROI centre's \(300\).*swapped"):  # fmt: skip
        load_roi_centres(str(path))
    # worded as find_spine words the same centres (it said "the lower one's" here, "the lower ROI centre's" there)
    from xvertfast.preprocess import find_spine

    with pytest.raises(ValueError) as by_csv:
        load_roi_centres(str(path))
    with pytest.raises(ValueError) as by_hand:
        find_spine(np.zeros((1000, 1000)), upper=(700, 512), lower=(300, 512))
    assert str(by_csv.value) == f"{path}, line 3: {by_hand.value}"
    # a mapping from Python has no line to name: its image's spine refuses it
    from xvertfast.preprocess.centres import spine_at

    given = centres_of_inputs({"x.png": ((50.0, 32.0), (10.0, 32.0))}, ["x.png"])["x.png"]
    with pytest.raises(ValueError, match=r"^the ROI centres given: the upper ROI centre's row \(50\) must be above"):
        spine_at(np.zeros((64, 64), np.float32), given)


def test_rois_that_are_no_csv_path_nor_mapping_are_refused_by_what_they_are():
    # from Python, rois=3 failed with "'int' object has no attribute 'items'", a value that is no
    # pair of centres with "cannot unpack non-iterable int object", and '' with "ROI centres file
    # : No such file or directory", each deep in the job
    from xvertfast.preprocess.centres import as_roi_centres

    mapping = "a mapping file -> \\(\\(upper_row, upper_col\\), \\(lower_row, lower_col\\)\\)"
    for rois in (3, [("a.png", (1, 2), (3, 4))]):
        with pytest.raises(TypeError, match=f"^rois must be the path of a ROI centres CSV or {mapping}, got "):
            as_roi_centres(rois)
    for empty in ("", b""):
        with pytest.raises(ValueError, match=r"^rois is empty: give the path of a ROI centres CSV, or None for the"):
            as_roi_centres(empty)
    with pytest.raises(TypeError, match=r"^rois: each key must be an input's path or file name \(a str, bytes or "
                                        r"os.PathLike\), got 3$"):  # fmt: skip
        as_roi_centres({3: ((1, 2), (3, 4))})
    for centres in (5, "300,500", ((1, 2),)):
        with pytest.raises(ValueError, match=r"^rois: a\.png's centres must be two \(row, column\) pairs, the upper "):
            as_roi_centres({"a.png": centres})
    given = {"a.png": ((1, 2), (3, 4))}
    assert as_roi_centres(given) is given and as_roi_centres(None) is None


def test_rois_keyed_by_path_objects_or_bytes_name_their_inputs(tmp_path):
    """0706abd refused rois={Path('in/a.png'): ...} ('each key must be ... (a str)'), a mapping
    centres_of_inputs had matched by its os.path.abspath: a Path or bytes key is read as its str path."""
    from pathlib import Path

    from xvertfast.preprocess.centres import as_roi_centres

    inputs = [str(tmp_path / "in" / "a.png"), str(tmp_path / "in" / "b.png")]
    centres_a, centres_b = ((300.0, 500.0), (700.0, 500.0)), ((310.0, 480.0), (690.0, 520.0))
    rois = as_roi_centres({Path(inputs[0]): centres_a, os.fsencode("b.png"): centres_b})
    given = centres_of_inputs(rois, inputs)
    assert (given[inputs[0]].upper, given[inputs[0]].lower) == centres_a
    assert (given[inputs[1]].upper, given[inputs[1]].lower) == centres_b
    # the same path under two keys would keep one of them without a word
    twice = rf"^rois: a\.png is given twice, as 'a\.png' and as {re.escape(repr(Path('a.png')))}$"
    with pytest.raises(ValueError, match=twice):
        as_roi_centres({"a.png": centres_a, Path("a.png"): centres_b})
