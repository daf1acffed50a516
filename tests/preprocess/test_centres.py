"""The ROI centres CSV (``--rois FILE``): its rows read, and matched to the inputs they name."""

from __future__ import annotations

import os

import pytest

from xvertfast.preprocess.centres import load_roi_centres

HEAD = "file,upper_row,upper_col,lower_row,lower_col"


def test_a_spreadsheets_empty_rows_are_no_rows(tmp_path):
    """Excel writes a row of bare commas for each row whose cells were once touched: 'line 3: ROI
    centres must be numbers' made the user find and delete rows that look empty in Excel."""
    path = tmp_path / "rois.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEAD},note\r\na.png,300,512,700.0,512,x\r\n,,,,,\r\n , ,,,,\r\n".encode())
    centres = load_roi_centres(str(path))
    assert dict(centres) == {"a.png": ((300.0, 512.0), (700.0, 512.0))}
    path.write_text(f"{HEAD}\n,,,,\nb.png,1,2,,4\n")  # a row with some cells filled is still checked
    with pytest.raises(ValueError, match=r"rois.csv, line 3: ROI centres must be numbers"):
        load_roi_centres(str(path))
