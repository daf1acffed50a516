"""The notes of an evaluation at scale: alike ones counted in one line, the live ones capped."""

from __future__ import annotations

import re

import numpy as np

from PIL import Image

from tests.eval.test_evaluate import chest_like
from xvertfast._text import WARNED_LISTED
from xvertfast.eval.protocol import EvalRun, ImageNote, _image_notes, _missing_notes, run_protocol
from xvertfast.eval.report import write_report

TMQI_WHY = "tmqi: both sides must be at least 161 px, got (225, 127): its coarsest level must still hold a window"


def _run_with_notes(images: int) -> EvalRun:
    """An EvalRun of ``images`` small RGB images as the protocol notes them: TMQI left out on both
    ROIs of each (one reason), each converted to luminance (another), one inverted (a third)."""
    run = EvalRun(["identity"], ["entropy", "tmqi"], images=images)
    for i in range(images):
        path = f"in/s{i:05d}.png"
        run.rows += [{"file": path, "roi": roi, "method": "identity", "entropy": 5.0 + i % 7, "tmqi": float("nan")}
                     for roi in ("upper", "lower")]  # fmt: skip
        warnings = [f"{path}: RGB image converted to luminance (grayscale)"]
        if i == 7:
            warnings.append(f"{path}: looks inverted (its central band is darker than the lung fields)")
        missing = [[roi, TMQI_WHY, ["identity"]] for roi in ("upper", "lower")]
        run.notes += _image_notes(path, warnings) + _missing_notes(path, missing, ["identity"], ["entropy", "tmqi"])
    return run


def test_alike_notes_of_300_images_are_one_counted_line_each_and_distinct_ones_all_show(tmp_path):
    """10,000 small images put 30,000 note lines (4 MB) into summary.md and report.html, two alike
    TMQI notes and one colour note an image: each reason is now one line, counted, with examples."""
    run = _run_with_notes(300)
    run.notes.insert(0, "method m (model x) was trained at --roi-size 128: ...")  # a run's own note, whole
    run.journal = str(tmp_path / "r" / ".xvertfast-evaluate.jsonl")
    paths = write_report(run, str(tmp_path / "r"), "identity")
    md = open(paths["summary.md"]).read()
    notes = md.split("## Notes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"(?m)^- .*", notes)
    assert listed == [
        "- method m (model x) was trained at --roi-size 128: ...",
        "- 300 images: RGB image converted to luminance (grayscale) (e.g. in/s00000.png, in/s00001.png, "
        "in/s00002.png, ...)",
        f"- 600 ROIs of 300 images: {TMQI_WHY} (e.g. in/s00000.png upper, in/s00000.png lower, in/s00001.png upper, "
        "...)",
        "- in/s00007.png: looks inverted (its central band is darker than the lung fields)"], listed  # fmt: skip
    # named as summary.md's reader finds it (the file shared), not by the path the run was given
    assert "in the journal `.xvertfast-evaluate.jsonl` (beside this file)" in notes and str(tmp_path) not in md
    assert len(md) < 20_000 and len(open(paths["report.html"]).read()) < 60_000
    assert len(run.notes) == 1 + 300 * 3 + 1  # the run keeps each note whole


def test_a_note_alone_in_its_reason_reads_as_it_did(tmp_path):
    run = _run_with_notes(1)
    md = open(write_report(run, str(tmp_path / "r"), "identity")["summary.md"]).read()
    assert f"\n- {run.notes[0]}\n" in md and run.notes[0] == "in/s00000.png: RGB image converted to luminance (grayscale)"
    assert f"\n- 2 ROIs of 1 image: {TMQI_WHY} (e.g. in/s00000.png upper, in/s00000.png lower)\n" in md
    assert "every one is in the EvalRun's `notes`" in md  # (no journal: made from Python)
    run.journal = str(tmp_path / "elsewhere" / ".xvertfast-evaluate.jsonl")  # not beside it: by its path
    md = open(write_report(run, str(tmp_path / "r"), "identity")["summary.md"]).read()
    assert f"in the journal `{run.journal}`" in md


def test_notes_said_as_images_finish_stop_after_the_first_ones(tmp_path, seed):
    """Each note was logged as its image finished: 20,000 lines (6.7 MB of stderr) for 10,000
    small images, scrolling the errors away. The first WARNED_LISTED are said, then one line, and
    at the end how many more."""
    src = tmp_path / "in"
    src.mkdir()
    for k in range(WARNED_LISTED // 2 + 3):  # 2 TMQI notes an image (its ROIs under 161 px)
        Image.fromarray(chest_like(seed + k, 320, 300)).save(src / f"small{k:02d}.png")
    said: list[str] = []
    run = run_protocol([str(src)], {"identity": None}, ["entropy", "tmqi"], progress=False, log=said.append)
    assert len(run.notes) == WARNED_LISTED + 6
    notes = [s for s in said if s.startswith("note: ")]
    assert notes[:WARNED_LISTED] == [f"note: {n}" for n in run.notes[:WARNED_LISTED]]
    # (from Python, no report written: the run's notes are where they are)
    assert notes[WARNED_LISTED:] == ["note: further notes are not shown as they come: the run's notes keep them (the report's summary.md)"], said
    counted = "6 further notes not shown as they came: the run's notes keep them (the report's summary.md)"
    assert said[-1] == counted, said


def test_a_rerun_adding_a_metric_does_not_say_the_earlier_runs_warnings_again(tmp_path, seed):
    """A rerun that added a metric said every image's warnings of the earlier run again, as new:
    the 20 notes said live were old ones and the count of further notes grew by all of them."""
    from xvertfast.eval.baselines import identity
    from xvertfast.eval.journal import Journal

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.stack([chest_like(seed, 400, 380)] * 3, axis=-1)).save(src / "colour.png")

    def evaluate(metrics):
        said: list[str] = []
        journal = Journal(str(tmp_path / "r"), {"methods": ["identity"], "metrics": metrics})
        try:
            run = run_protocol([str(src)], {"identity": identity}, metrics, pictures=0, progress=False,
                               log=said.append, journal=journal)  # fmt: skip
        finally:
            journal.close()
        return run, said

    first, said = evaluate(["entropy"])
    assert any("RGB image converted" in s for s in said), said  # said once, by the run that met it
    grown, said = evaluate(["entropy", "tenengrad"])
    assert grown.from_journal == 1 and not any("RGB image converted" in s for s in said), said
    assert any("RGB image converted" in n for n in grown.notes)  # still the report's note


def test_an_image_note_copied_or_pickled_keeps_its_parts():
    # ImageNote is a str with its file, ROI and reason beside: made again from its text alone, a copy
    # (a journal's deepcopy, a worker's pickle) failed for want of the reason
    import copy
    import pickle

    note = ImageNote("in/a.png", " (clahe): TMQI floored", "upper", ("clahe",))
    for again in (copy.deepcopy(note), pickle.loads(pickle.dumps(note))):
        assert (again, again.file, again.roi, again.reason, again.methods) == (note, note.file, note.roi,
                                                                              note.reason, note.methods)  # fmt: skip
