"""The bookkeeping of an enhance job costs the same for each image, however many came before:
a job over tens of thousands of radiographs must not slow down as its records grow."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import xvertfast.infer.batch as batch
from xvertfast.infer import Enhancer
from xvertfast.io.files import discover
from xvertfast.model import save_model
from tests.infer.test_enhance import TILE, chest_like, tiny_model


@pytest.fixture
def model_dir(tmp_path, seed):
    return save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}})


class CountedRecords(list):
    """A summary's records that count the passes over them."""

    passes = 0

    def __iter__(self):
        CountedRecords.passes += 1
        return super().__iter__()


SUMMARY = batch.BatchSummary


def passes_over_records(monkeypatch, model_dir, src, out) -> int:
    def counted(*args, **kwargs):
        summary = SUMMARY(*args, **kwargs)
        summary.records = CountedRecords(summary.records)
        return summary

    monkeypatch.setattr(batch, "BatchSummary", counted)
    CountedRecords.passes = 0
    summary = Enhancer(str(model_dir), device="cpu", batch_size=1).enhance_files(
        [str(src)], str(out), workers=1, progress=True, log=lambda _: None)  # fmt: skip
    passes = CountedRecords.passes
    assert summary.done == len(list(src.iterdir()))
    return passes


def test_each_image_finished_does_not_go_over_the_records_again(tmp_path, model_dir, seed, monkeypatch):
    """The progress bar's rate and failure count were counted over every record at each image finished:
    a job's last images each went over all of its records (skipped ones too), quadratic in its size."""
    passes = {}
    for n in (2, 6):
        src = tmp_path / f"in{n}"
        src.mkdir()
        for i in range(n):
            Image.fromarray(np.round(chest_like(seed + i, 160, 150) * 255).astype(np.uint8)).save(src / f"{i}.png")
        passes[n] = passes_over_records(monkeypatch, model_dir, src, tmp_path / f"out{n}")
    assert passes[6] == passes[2], passes


def test_a_job_without_report_or_preview_does_not_resolve_every_input_for_them(tmp_path, model_dir, seed,
                                                                               monkeypatch):  # fmt: skip
    """Whether --report or --preview names an input was asked by resolving every input's links (a
    stat of each folder on its path: tens of lstat calls an input, on a network share) even where
    neither was given."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(chest_like(seed, 160, 150) * 255).astype(np.uint8)).save(src / "a.png")
    real = os.path.realpath
    resolved = []

    def counting(path, *args, **kwargs):
        resolved.append(os.fspath(path))
        return real(path, *args, **kwargs)

    files = discover([str(src)])
    monkeypatch.setattr(os.path, "realpath", counting)
    batch._check_side_files(files, str(tmp_path / "out"), "same", report=None, preview=None)
    assert resolved == []
    batch._check_side_files(files, str(tmp_path / "out"), "same", report=str(tmp_path / "report.json"), preview=None)
    assert str(src) in resolved  # (still looked at where one is given: the inputs' folder, by a RealPaths)
    with pytest.raises(ValueError, match="is one of the inputs"):
        batch._check_side_files(files, str(tmp_path / "out"), "same", report=str(src / "a.png"))


def test_a_resume_does_not_resolve_each_inputs_folders_again_for_every_input(tmp_path, model_dir, seed, monkeypatch):
    """A resume resolved every input four times (the search's duplicates, the plan's inputs and
    outputs, the ledger's name of it), each an lstat of every folder on its path: on a 5000-image
    archive (7 folders deep) 1.9 s of it under cProfile; timed without the profiler, a resume took
    1.95 s before, 1.26 s after; and each is a round trip on a network share.
    Each folder is now resolved once a job, and an input's own name looked at: a few lstat calls more
    for each input more, not a few for every folder above it."""
    enhancer = Enhancer(str(model_dir), device="cpu", batch_size=1)
    levels = [f"level {k}" for k in range(12)]
    looked_at = {}
    for n in (4, 12):
        src = tmp_path.joinpath(f"in{n}", *levels)
        src.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.round(chest_like(seed + i, 160, 150) * 255).astype(np.uint8)).save(src / f"{i}.png")
        job = ([str(tmp_path / f"in{n}")], str(tmp_path / f"out{n}"))
        enhancer.enhance_files(*job, workers=1, progress=False, log=lambda _: None)
        calls = []
        real_lstat = os.lstat

        def counting(path, *args, _calls=calls, _lstat=real_lstat, **kwargs):
            _calls.append(path)
            return _lstat(path, *args, **kwargs)

        monkeypatch.setattr(os, "lstat", counting)
        summary = enhancer.enhance_files(*job, workers=1, progress=False, log=lambda _: None)
        monkeypatch.setattr(os, "lstat", real_lstat)
        assert summary.skipped == n and summary.done == 0, summary.line()
        looked_at[n] = len(calls)
    depth = len(os.path.abspath(tmp_path.joinpath("in12", *levels, "0.png")).split(os.sep))  # (its folders, and it)
    each_more = (looked_at[12] - looked_at[4]) / 8
    assert each_more < depth / 2, (looked_at, depth)


def test_a_resume_with_a_report_resolves_the_folders_not_each_input_again(tmp_path, model_dir, seed, monkeypatch):
    """A resume given the --report its run wrote resolved every input whole twice more with
    os.path.realpath (an lstat of each folder on its path), beside the job's RealPaths: to leave that
    report out of the inputs, and to check that it is none of them; the search, the plan and the
    ledger each built a RealPaths of their own, resolving the folders three times. The job now has one
    RealPaths, which these share: os.path.realpath is called as often for 12 inputs as for 4 (a
    resume of 5000 inputs 7 folders deep: 10,520 calls and 98,202 lstat before, 320 and 37,002 after)."""
    enhancer = Enhancer(str(model_dir), device="cpu", batch_size=1)
    resolved = {}
    for n in (4, 12):
        src = tmp_path / f"in{n}" / "ward" / "series"
        src.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.round(chest_like(seed + i, 160, 150) * 255).astype(np.uint8)).save(src / f"{i}.png")
        job, report = ([str(tmp_path / f"in{n}")], str(tmp_path / f"out{n}")), str(tmp_path / f"run{n}.json")
        enhancer.enhance_files(*job, workers=1, progress=False, log=lambda _: None, report=report)
        calls, real = [], os.path.realpath

        def counting(path, *args, _calls=calls, _real=real, **kwargs):
            _calls.append(path)
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os.path, "realpath", counting)
        summary = enhancer.enhance_files(*job, workers=1, progress=False, log=lambda _: None, report=report)
        monkeypatch.setattr(os.path, "realpath", real)
        assert summary.skipped == n and summary.done == 0, summary.line()
        resolved[n] = len(calls)
    assert resolved[12] == resolved[4], resolved


def test_the_progress_bar_is_redrawn_at_its_own_pace_not_at_every_image(tmp_path, model_dir, seed, monkeypatch, capsys):
    """set_postfix redrew the bar at each image finished, past tqdm's minimum interval: a job of
    small images drew it 35 times a second here, one redraw an image (2529 for 2000 images, 285 kB
    of stderr; 7 MB over 50000 images, in a cluster job's log file)."""

    import tqdm

    class Unhurried(tqdm.tqdm):
        """A bar whose pace no test outlasts: drawn as it starts and as it closes, at tqdm's will."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "mininterval": 3600, "maxinterval": 3600})

    monkeypatch.setattr(tqdm, "tqdm", Unhurried)  # (the job's bar: JobLog.bar's)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        Image.fromarray(np.round(chest_like(seed + i, 160, 150) * 255).astype(np.uint8)).save(src / f"{i}.png")
    summary = Enhancer(str(model_dir), device="cpu", batch_size=1).enhance_files(
        [str(src)], str(tmp_path / "out"), workers=1, progress=True, log=lambda _: None)  # fmt: skip
    assert summary.done == 6
    drawn = capsys.readouterr().err
    assert drawn.count("\r") < 6, drawn
    assert "6/6" in drawn and "img_s=" in drawn  # (the last count and the rate still shown, as it closes)
