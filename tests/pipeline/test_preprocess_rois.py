"""``xvertfast preprocess --rois FILE``: the overlays of the images named show the centres given."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.pipeline.test_preprocess_files import radiograph_like
from xvertfast.cli import main
from xvertfast.io import read_image
from xvertfast.pipeline.preprocess_files import overlay, preprocess_files
from xvertfast.preprocess import find_spine

HEAD = "file,upper_row,upper_col,lower_row,lower_col\n"


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for k, name in enumerate(("a.png", "b.png")):
        Image.fromarray(radiograph_like(k)).save(folder / name)
    return folder


def _overlay(out, name: str) -> np.ndarray:
    return np.asarray(Image.open(out / f"{name}_overlay.png"))


def test_the_overlay_shows_the_given_centres_and_a_rerun_redoes_only_what_changed(src, tmp_path, capsys):
    """preprocess had no --rois: the spine warning's advice had no option to take, and the
    overlays, which are there to be checked before training, could only show the centres found."""
    out, rois = tmp_path / "out", tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,30,20,60,25\n")
    args = ["preprocess", str(src), "-o", str(out), "-q", "--rois", str(rois)]
    assert main(args) == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out
    rad = read_image(src / "a.png")
    expected = overlay(rad.pixels, find_spine(rad.pixels).with_centres((30, 20), (60, 25)))
    assert np.array_equal(_overlay(out, "a"), expected)
    rad = read_image(src / "b.png")
    assert np.array_equal(_overlay(out, "b"), overlay(rad.pixels, find_spine(rad.pixels)))  # not in the file
    assert main(args) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out
    rois.write_text(HEAD + "a.png,30,20,60,25\nb.png,30,60,60,60\n")  # b's added: b alone is redone
    assert main(args) == 0
    assert "1 done, 1 skipped" in capsys.readouterr().out
    assert main(args + ["--dry-run"]) == 0
    assert "0 to preprocess, 2 done already" in capsys.readouterr().out
    rois.write_text(HEAD + "a.png,32,20,60,25\nb.png,30,60,60,60\n")
    assert main(args + ["--dry-run"]) == 0
    assert "1 to preprocess, 1 done already" in capsys.readouterr().out


def test_bad_rows_and_centres_name_the_csv_line(src, tmp_path, capsys):
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,30,20,60,25\nc.png,1,2,3,4\n")
    out = tmp_path / "out"
    assert main(["preprocess", str(src), "-o", str(out), "-q", "--rois", str(rois)]) == 2
    assert "rois.csv, line 3: c.png is none of the inputs" in capsys.readouterr().err
    assert not out.exists()
    rois.write_text(HEAD + "a.png,30,20,600,25\n")
    assert main(["preprocess", str(src), "-o", str(out), "-q", "--rois", str(rois)]) == 1
    captured = capsys.readouterr()
    assert "1 done, 0 skipped, 1 failed" in captured.out
    assert f"{src / 'a.png'}: {rois}, line 2: the lower ROI centre (600, 25) lies outside the 96x96 image" in captured.err


def test_the_python_api_takes_a_path_to_the_csv(src, tmp_path):
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "a.png,30,20,60,25\n")
    out = tmp_path / "out"
    summary = preprocess_files([str(src)], str(out), progress=False, log=lambda m: None, rois=str(rois))
    assert len(summary.done) == 2
    rad = read_image(src / "a.png")
    assert np.array_equal(_overlay(out, "a"), overlay(rad.pixels, find_spine(rad.pixels).with_centres((30, 20), (60, 25))))
