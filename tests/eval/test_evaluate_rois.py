"""``xvertfast evaluate --rois FILE``: its rows matched to the inputs as enhance, preprocess and train match them."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from tests.eval.test_evaluate import chest_like
from xvertfast.cli import main
from xvertfast.eval.baselines import identity
from xvertfast.eval.protocol import run_protocol
from xvertfast.preprocess.centres import load_roi_centres

HEAD = "file,upper_row,upper_col,lower_row,lower_col\n"


def _two_of_one_name(tmp_path, seed):
    for k, folder in enumerate(("a", "b")):
        (tmp_path / "in" / folder).mkdir(parents=True)
        Image.fromarray(chest_like(seed + k)).save(tmp_path / "in" / folder / "x.png")
    return tmp_path / "in"


def test_a_file_name_of_two_inputs_is_refused_naming_the_line(tmp_path, seed, capsys):
    """Both images were scored at the one row's centres, without a word, where enhance refuses
    the row: one image's ROIs were where the user had not put them."""
    src = _two_of_one_name(tmp_path, seed)
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + "x.png,150,120,260,280\n")
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--rois", str(rois), "--methods", "identity",
                 "--metrics", "entropy", "-q"]) == 2  # fmt: skip
    assert "rois.csv, line 2: x.png is the file name of 2 inputs" in capsys.readouterr().err
    assert not out.exists()  # refused before the report folder is made
    with pytest.raises(ValueError, match=r"line 2: x.png is the file name of 2 inputs"):
        run_protocol([str(src)], {"identity": identity}, ["entropy"], load_roi_centres(str(rois)), pictures=0,
                     progress=False, log=lambda m: None)  # fmt: skip


def test_a_path_tells_the_two_apart(tmp_path, seed):
    src = _two_of_one_name(tmp_path, seed)
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + f"{src / 'b' / 'x.png'},150,120,260,280\n{os.path.join(src, 'a', 'x.png')},300,300,400,300\n")
    run = run_protocol([str(src)], {"identity": identity}, ["entropy"], load_roi_centres(str(rois)), pictures=0,
                       progress=False, log=lambda m: None)  # fmt: skip
    assert run.failed == [] and run.images == 2, run
    lefts = {(os.path.basename(os.path.dirname(r["file"])), r["roi"]): r["left"] + r["width"] / 2 for r in run.rows}
    assert lefts[("b", "upper")] == pytest.approx(120, abs=1) and lefts[("a", "upper")] == pytest.approx(300, abs=1)


def test_centres_given_from_python_are_not_called_a_file(tmp_path, seed):
    """A plain mapping from Python has no file: an input it leaves out failed with 'no ROI centres
    for this file in the ROI file', and one it puts outside the image with 'the ROI file: ...'."""
    src = _two_of_one_name(tmp_path, seed)
    a, b = str(src / "a" / "x.png"), str(src / "b" / "x.png")
    run = run_protocol([str(src)], {"identity": identity}, ["entropy"], {a: ((150, 120), (9000, 280))}, pictures=0,
                       progress=False, log=lambda m: None)  # fmt: skip
    reasons = dict(run.failed)
    assert reasons[a].startswith(f"{a}: the ROI centres given: the lower ROI centre (9000, 280) lies outside"), reasons
    assert reasons[b] == f"{b}: no ROI centres given for this file", reasons
