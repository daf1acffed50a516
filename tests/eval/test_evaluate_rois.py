"""``xvertfast evaluate --rois FILE``: its rows matched to the inputs as enhance, preprocess and train match them."""

from __future__ import annotations

import csv
import json
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


def test_a_row_whose_centres_are_swapped_is_refused_naming_the_line(tmp_path, seed, capsys):
    """Such a row was scored: the report's upper ROI lay below its lower one, each under the other's name."""
    src = _two_of_one_name(tmp_path, seed)
    rois = tmp_path / "rois.csv"
    rois.write_text(HEAD + f"{src / 'a' / 'x.png'},150,120,260,280\n{src / 'b' / 'x.png'},260,120,150,280\n")
    out = tmp_path / "r"
    assert main(["evaluate", str(src), "-o", str(out), "--rois", str(rois), "--methods", "identity",
                 "--metrics", "entropy", "-q"]) == 2  # fmt: skip
    assert "rois.csv, line 3: the upper ROI centre's row (260) must be above the lower ROI centre's (150)" in \
        capsys.readouterr().err
    assert not out.exists()


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


def _scored(monkeypatch):
    """score_roi counting its calls (one per ROI and method scored)."""
    import xvertfast.eval.protocol as protocol

    calls, score = [], protocol.score_roi
    monkeypatch.setattr(protocol, "score_roi", lambda *a: calls.append(1) or score(*a))
    return calls


def _rows_of(out, name):
    lines = (out / "scores.csv").read_text().splitlines()
    return [line for line in lines[1:] if f"{os.sep}{name}," in line]


def test_an_edited_row_rescores_that_image_alone(tmp_path, seed, monkeypatch, capsys):
    """The whole CSV was a setting: one centre moved refused the rerun (or --restart scored every
    image again: hours of xvertnet and BRISQUE for one row); only the image whose row changed is."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        Image.fromarray(chest_like(seed + k)).save(src / f"img{k}.png")
    rois, out = tmp_path / "rois.csv", tmp_path / "r"
    rows = {k: f"img{k}.png,150,300,400,300\n" for k in range(3)}
    rois.write_text(HEAD + "".join(rows.values()))
    args = ["evaluate", str(src), "-o", str(out), "--rois", str(rois), "--methods", "identity",
            "--metrics", "entropy,tenengrad", "--pictures", "0", "-q"]  # fmt: skip
    assert main(args) == 0
    first = {k: _rows_of(out, f"img{k}.png") for k in range(3)}
    capsys.readouterr()

    rows[1] = "img1.png,200,250,420,320\n"
    rois.write_text(HEAD + "".join(rows.values()))
    calls = _scored(monkeypatch)
    assert main(args) == 0, capsys.readouterr().err
    assert len(calls) == 2  # img1's two ROIs
    err = capsys.readouterr().err
    assert "resumed: 2 images scored by an earlier run were taken from" in err
    assert "1 image scored by an earlier run was scored again: its centres in the ROI file changed" in err
    again = {k: _rows_of(out, f"img{k}.png") for k in range(3)}
    assert again[0] == first[0] and again[2] == first[2]  # byte-identical
    assert len(again[1]) == 2 and again[1] != first[1]  # its old rows replaced, not kept beside the new
    with open(out / "summary.csv") as f:
        assert {r["n"] for r in csv.DictReader(f)} == {"6"}  # three images' ROIs, not img1's twice

    del rows[2]  # evaluate's file needs a row for every image: img2 fails, and is not reported at its old centres
    rois.write_text(HEAD + "".join(rows.values()))
    calls.clear()
    assert main(args) == 1
    assert f"{src / 'img2.png'}: no ROI centres for this file in the ROI file" in capsys.readouterr().err
    assert calls == [] and _rows_of(out, "img2.png") == []
    rows[2] = "img2.png,150,300,400,300\n"  # given back as it was: its scores are still in the journal
    rois.write_text(HEAD + "".join(rows.values()))
    assert main(args) == 0 and calls == []
    assert "scored again" not in capsys.readouterr().err
    assert {k: _rows_of(out, f"img{k}.png") for k in range(3)} == again


def test_auto_and_a_file_are_other_settings(tmp_path, seed, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(chest_like(seed)).save(src / "img0.png")
    rois, out = tmp_path / "rois.csv", tmp_path / "r"
    rois.write_text(HEAD + "img0.png,150,300,400,300\n")
    args = ["evaluate", str(src), "-o", str(out), "--methods", "identity", "--metrics", "entropy", "--pictures", "0"]
    assert main([*args, "--rois", str(rois), "-q"]) == 0
    capsys.readouterr()
    assert main([*args, "-q"]) == 2
    assert "other settings (rois 'file' -> 'auto')" in capsys.readouterr().err


def test_a_journal_with_the_whole_files_centres_resumes(tmp_path, seed, monkeypatch):
    """Journals written before each image recorded its centres held the ROI file's in their
    settings: read as centres given by file, each image at the centres that list gave it."""
    from xvertfast.eval.journal import JOURNAL_FILE, Journal

    src = tmp_path / "in"
    src.mkdir()
    for k in range(2):
        Image.fromarray(chest_like(seed + k)).save(src / f"img{k}.png")
    rois, out = tmp_path / "rois.csv", tmp_path / "r"
    rois.write_text(HEAD + "img0.png,150,300,400,300\nimg1.png,150,300,400,300\n")
    settings = {"methods": ["identity"], "metrics": ["entropy"], "rois": "file"}

    def evaluated():
        journal = Journal(str(out), settings)
        try:
            return run_protocol([str(src)], {"identity": identity}, ["entropy"], load_roi_centres(str(rois)),
                                pictures=0, progress=False, log=lambda m: None, journal=journal)  # fmt: skip
        finally:
            journal.close()

    first = evaluated()
    lines = (out / JOURNAL_FILE).read_text().splitlines()
    old = [json.loads(line) for line in lines]
    old[0]["settings"]["rois"] = sorted(load_roi_centres(str(rois)).items())  # as they were written
    for entry in old[1:]:
        del entry["centres"]
    (out / JOURNAL_FILE).write_text("".join(json.dumps(e) + "\n" for e in old))
    rois.write_text(HEAD + "img0.png,150,300,400,300\nimg1.png,200,250,420,320\n")
    calls = _scored(monkeypatch)
    again = evaluated()
    assert len(calls) == 2  # img1's two ROIs alone
    assert [r for r in again.rows if "img0" in r["file"]] == [r for r in first.rows if "img0" in r["file"]]
    assert json.loads((out / JOURNAL_FILE).read_text().splitlines()[0])["settings"]["rois"] == "file"
