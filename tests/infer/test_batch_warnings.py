"""Warnings raised while a batch job reads its files: on the reader threads no user's line called
them, so they named the thread pool's (concurrent/futures/thread.py) and no file."""

from __future__ import annotations

import importlib
import json
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from tests.infer.test_enhance import TILE, chest_like
from xvertfast.infer import Enhancer
from xvertfast.model import XVertNet, XVertNetStage, save_model

#: lam / eps at which the direct solver warns that float64 rounding may put it beyond rtol
_ROUNDING = {"lam": 0.8, "eps": 0.8 / 1e15}


def _inputs(tmp_path, seed, images: int = 2):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(images):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    return src


def _enhance_files(tmp_path, seed, wls_method: str, action: str = "always", failing: bool = False,
                   workers: int | None = None, **lam_eps):  # fmt: skip
    """enhance_files on two images with a two-stage model; its summary and the RuntimeWarnings raised
    (under the filter ``action``). ``failing``: each image fails after its preprocessing."""
    model = save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)], **lam_eps), tmp_path / "model",
                       extra={"training": {"config": {"roi_size": TILE}}})  # fmt: skip
    enhancer = Enhancer(str(model), device="cpu", backend="torch", wls_method=wls_method)
    if failing:
        prepare = enhancer.prepare

        def prepare_then_fail(*args):
            prepare(*args)
            raise ValueError("failed after its preprocessing")

        enhancer.prepare = prepare_then_fail
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter(action)
        summary = enhancer.enhance_files([str(_inputs(tmp_path, seed))], str(tmp_path / "out"), progress=False,
                                         log=lambda line: None, workers=workers)  # fmt: skip
    return summary, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_a_wls_warning_of_the_settings_points_at_the_callers_line(tmp_path, seed):
    """The rounding warning of the direct solver at lam / eps 1e15 (the model's) is raised while the
    readers preprocess each file and while the job's thread runs the stages: each names this line."""
    summary, caught = _enhance_files(tmp_path, seed, "direct", **_ROUNDING)
    assert summary.done == 2
    rounding = [w for w in caught if "may be off by about" in str(w.message)]
    assert rounding and {w.filename for w in rounding} == {__file__}, [(w.filename, w.lineno) for w in rounding]


def test_a_wls_warning_of_the_settings_is_given_once_a_job(tmp_path, seed):
    """The same warning of the settings, raised by each file's solves and each batch's guidance, is
    given once a job: the readers' blocks that name pydicom's warnings reset Python's record of
    those shown, so each file gave it again (10,000 files: 10,000 lines). It is given too where
    every file fails after its solves warned (the reader's kept warnings were dropped with it)."""
    for failing in (False, True):
        summary, caught = _enhance_files(tmp_path / str(failing), seed, "direct", failing=failing, **_ROUNDING)
        assert (summary.done, len(summary.failed)) == ((0, 2) if failing else (2, 0))
        rounding = [w for w in caught if "may be off by about" in str(w.message)]
        assert len(rounding) == 1, (failing, [(w.filename, w.lineno) for w in rounding])


def test_a_solve_that_missed_its_tolerance_on_a_reader_names_the_file(tmp_path, seed, monkeypatch):
    """A preprocessing solve that did not reach rtol (torch's CG cut at 1 iteration) said "wls: image
    0 did not reach rtol" on the reader's thread, shown once a process whatever the files: now each
    file's record has it, naming the file, as the job's other warnings of an image do. The guidance
    between the stages names each tile's file too."""
    monkeypatch.setattr(importlib.import_module("xvertfast.ops.wls"), "DEFAULT_MAXITER", 1)
    summary, caught = _enhance_files(tmp_path, seed, "torch", action="error")
    assert summary.done == 2
    for rec in summary.records:
        # each of the two solves named (both said "the image did not reach rtol", with two residuals)
        missed = sorted(line.split(" did not reach")[0] for line in rec.warnings if "did not reach" in line)
        assert missed == [f"{rec.input}: wls: {who}" for who in ("the image (its base layer)", "the image (its guidance)",
                                                                  "tile 1 of 2 (the guidance of stage 2)",
                                                                  "tile 2 of 2 (the guidance of stage 2)")], missed
        assert f"{rec.input}: wls: the image (its base layer) did not reach rtol=0.0001 in 1 iterations" in \
            "\n".join(rec.warnings), rec.warnings  # fmt: skip
    # the stages' guidance, on the job's own thread, goes to each tile's file's warnings too: it said "image 3",
    # the tile's place in the network's batch of tiles from several files, and then, naming the file, was a
    # RuntimeWarning neither counted nor reported, which -W error made abort the job
    assert len(summary.warned) == 2 and not caught, [str(w.message)[:60] for w in caught]


@pytest.mark.parametrize("failed_run_cap", [1, 2])
def test_a_tile_s_warning_is_recorded_once_where_its_batch_is_run_again_one_by_one(tmp_path, seed, monkeypatch,
                                                                                     failed_run_cap):
    """A batch of tiles that fails is run again image by image (batch._run_network): the misses of
    the guidance the failed run had kept were added to each file's record beside the rerun's. Where
    the failed run's solves missed with other residuals (``failed_run_cap`` 2: other iterations, as
    a batch solved together may stop elsewhere than a tile alone), its lines were kept beside the
    rerun's, each tile's miss said twice, though the line of an exact copy was dropped: each file
    holds one line a solve, the rerun's, whose output it is."""
    from xvertfast._stacklevel import image_names
    from xvertfast.infer import batch

    wls = importlib.import_module("xvertfast.ops.wls")
    monkeypatch.setattr(wls, "DEFAULT_MAXITER", 1)
    real_read, run_tiles = batch._read_and_prepare, Enhancer.run_tiles
    second_read, batches_failed = threading.Event(), []

    def read_after_the_other(enhancer, f, *given_and_kept):
        # img0's read ends after img1's: the job, waiting for img0, finds both read, one batch of both files
        if f.path.endswith("img0.png"):
            assert second_read.wait(60)
            return real_read(enhancer, f, *given_and_kept)
        try:
            return real_read(enhancer, f, *given_and_kept)
        finally:
            second_read.set()

    def fails_on_two_files(self, xp, y):
        together = len({file for file, _ in image_names()}) > 1
        monkeypatch.setattr(wls, "DEFAULT_MAXITER", failed_run_cap if together else 1)
        out = run_tiles(self, xp, y)  # (its guidance warned of each tile)
        if together:
            batches_failed.append(xp.shape[0])
            raise RuntimeError("out of memory (as a batch of two files)")
        return out

    monkeypatch.setattr(batch, "_read_and_prepare", read_after_the_other)
    monkeypatch.setattr(Enhancer, "run_tiles", fails_on_two_files)
    summary, caught = _enhance_files(tmp_path, seed, "torch", action="error", workers=2)
    assert summary.done == 2 and not caught and batches_failed == [4], batches_failed
    for rec in summary.records:
        missed = [line for line in rec.warnings if "(the guidance of stage 2) did not reach" in line]
        assert len(missed) == 2 and len(set(missed)) == 2, rec.warnings
        assert all(" in 1 iterations " in line for line in missed), missed  # (the rerun's, not the failed run's)


def test_a_padded_call_solves_and_warns_of_each_real_tile_once(tmp_path, seed, monkeypatch):
    """A backend of fixed shapes gets every call padded to the batch size with copies of its last
    tile (Enhancer.run_tiles), each named as that tile: the copies' guidance was solved too, and
    each repeated its tile's miss, so one image of 2 tiles at batch 8 held 'tile 2 of 2' 7 times.
    The guidance is solved for the real tiles only, each tile's miss said once."""
    from xvertfast.infer.backends import TorchBackend

    monkeypatch.setattr(importlib.import_module("xvertfast.ops.wls"), "DEFAULT_MAXITER", 1)
    monkeypatch.setattr(TorchBackend, "fixed_batch", True)
    model = save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]), tmp_path / "model",
                       extra={"training": {"config": {"roi_size": TILE}}})  # fmt: skip
    enhancer = Enhancer(str(model), device="cpu", backend="torch", wls_method="torch", mode="spine", batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        summary = enhancer.enhance_files([str(_inputs(tmp_path, seed, images=1))], str(tmp_path / "out"),
                                         progress=False, log=lambda line: None)  # fmt: skip
    assert summary.done == 1
    (rec,) = summary.records
    missed = sorted(line.split(" did not reach")[0] for line in rec.warnings
                    if "(the guidance of stage 2) did not reach" in line)  # fmt: skip
    assert missed == [f"{rec.input}: wls: tile {j} of 2 (the guidance of stage 2)" for j in (1, 2)], rec.warnings


def test_the_many_tiles_note_names_the_first_such_image_in_input_order_whatever_read_first(tmp_path, seed,
                                                                                            monkeypatch):
    """With workers > 1 the job's note of a model that cuts images into many full-mode tiles named the
    first such image a reader thread finished, so two runs of one job could name different images.
    It names the first in input order now (b_wide here, whose read ends after c_wider's). The
    threshold lowered (a model at 256 cuts a 64 x 64 image into 25 tiles, 64 x 96 into 40, 64 x 128
    into 55), the network skipped (its tiles' cost is not what is tested)."""
    from tests.infer.test_enhance import many_tiles_job
    from xvertfast.infer import batch
    from xvertfast.infer.enhancer import many_full_tiles

    enh, src = many_tiles_job(tmp_path, seed, monkeypatch, {"a_square": (64, 64), "b_wide": (64, 96),
                                                            "c_wider": (64, 128)})  # fmt: skip
    real_read, later_read = batch._read_and_prepare, threading.Event()

    def wide_read_last(enhancer, f, *given_and_kept):
        if f.path.endswith("b_wide.png"):  # (ends once c_wider's has: both over the threshold)
            assert later_read.wait(60)
            return real_read(enhancer, f, *given_and_kept)
        try:
            return real_read(enhancer, f, *given_and_kept)
        finally:
            if f.path.endswith("c_wider.png"):
                later_read.set()

    monkeypatch.setattr(batch, "_read_and_prepare", wide_read_last)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        summary = enh.enhance_files([str(src)], str(tmp_path / "out"), progress=False, log=lambda line: None,
                                    workers=2)  # fmt: skip
    assert summary.done == 3 and later_read.is_set()
    texts = [str(w.message) for w in said if "tiles" in str(w.message)]
    assert texts == summary.notes == [many_full_tiles(256, (64, 96), named=str(src / "b_wide.png"))], texts


def _bone_dark_and_model(tmp_path, seed, image):
    """Writes ``image``, a 96 px chest-like image stored bone dark (warned "looks inverted"), and a
    small two-stage model: the model's path."""
    image.parent.mkdir(parents=True)
    Image.fromarray(np.round((1 - chest_like(seed, 96, 96)) * 255).astype(np.uint8)).save(image)
    return save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]), tmp_path / "model",
                      extra={"training": {"config": {"roi_size": TILE}}})  # fmt: skip


def test_a_resumed_runs_report_keeps_the_warnings_of_the_images_an_earlier_run_enhanced(tmp_path, seed, capsys):
    """A job done over several runs: each run's --report listed the images done before as skipped
    with no warnings, so only the last run's warnings were in any report (a bone-dark image enhanced
    on Monday looked fine in Tuesday's). The ledger keeps each output's warnings for the runs after."""
    from xvertfast.cli import main
    from xvertfast.io.job_folder import LEDGER_FILE

    src = tmp_path / "in"
    model = _bone_dark_and_model(tmp_path, seed, src / "bone_dark.png")
    out, report = tmp_path / "out", tmp_path / "run.json"
    common = [str(src), "-o", str(out), "--model", str(model), "-q"]
    assert main(["enhance", *common]) == 0  # the first run
    first = capsys.readouterr()
    assert "1 done (1 with warnings)" in first.out and "looks inverted" in first.err
    kept = [w for line in (out / LEDGER_FILE).read_text().splitlines() if (w := json.loads(line).get("warnings"))]
    assert len(kept) == 1 and len(kept[0]) == 1 and "looks inverted" in kept[0][0], kept
    assert main(["enhance", *common, "--report", str(report)]) == 0  # the next: all done already
    second = capsys.readouterr()
    assert "0 done, 1 skipped" in second.out and "looks inverted" not in second.err  # (said by the run that gave it)
    # the end's list of warned files is this run's: where the others are is said
    assert f"note: 1 input skipped as done was warned of by the run that enhanced it (not listed here): {report} " \
           "lists them" in second.err, second.err  # fmt: skip
    body = json.loads(report.read_text())
    assert [(r["status"], r["warnings"]) for r in body["files"]] == [("skipped", kept[0])]
    assert (body["summary"]["warned"], body["summary"]["skipped_warned"]) == (0, 1)


def test_a_rerun_redoes_an_output_whose_input_the_list_now_tags_monochrome1(tmp_path, seed, capsys):
    """The first run warned "looks inverted ... list it in an @list with a tab and MONOCHROME1"; the
    user did, and the rerun skipped it as done (the ledger kept no polarity): its output stayed the
    image read the wrong way round, and its --report repeated the advice just followed."""
    from xvertfast.cli import main
    from xvertfast.io.job_folder import LEDGER_FILE

    src = tmp_path / "in2"
    model = _bone_dark_and_model(tmp_path, seed, src / "dark.png")
    untagged, tagged = tmp_path / "l1.txt", tmp_path / "l2.txt"
    untagged.write_text(f"{src / 'dark.png'}\n")
    tagged.write_text(f"{src / 'dark.png'}\tMONOCHROME1\n")
    out, report = tmp_path / "out3", tmp_path / "r.json"
    common = ["-o", str(out), "--model", str(model), "-q", "--report", str(report)]
    assert main(["enhance", f"@{untagged}", *common]) == 0
    assert "looks inverted" in capsys.readouterr().err
    assert main(["enhance", f"@{tagged}", *common]) == 0  # the advice followed: redone, read bone bright
    second = capsys.readouterr()
    assert "1 done" in second.out and "looks inverted" not in second.err, second
    assert [(r["status"], r["warnings"]) for r in json.loads(report.read_text())["files"]] == [("done", [])]
    lines = [json.loads(line) for line in (out / LEDGER_FILE).read_text().splitlines()]
    last = [line for line in lines if line.get("state") == "done"][-1]
    assert (last.get("photometric"), last.get("warnings")) == ("MONOCHROME1", None), last
    assert main(["enhance", f"@{tagged}", *common]) == 0  # then done as it was listed
    assert "0 done, 1 skipped" in capsys.readouterr().out
    assert [(r["status"], r["warnings"]) for r in json.loads(report.read_text())["files"]] == [("skipped", [])]
