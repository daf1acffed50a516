"""A batch job's output folder: the ledger, the lock, and what a rerun may skip or replace."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import folder_state
from tests.infer.test_enhance import chest_like, model_dir  # noqa: F401 (a fixture)
from xvertfast.cli import main
from xvertfast.infer import batch
from xvertfast.io.job_folder import JOB_FILE, LEDGER_FILE, LOCK_FILE, JobFolder, shard_files
from xvertfast.io import ImageWriteError
from xvertfast.io.files import discover
from xvertfast.io.shards import Shard
from xvertfast.resume import hold_lock

#: The races a job's folder fd closes (1e97544) are open where the system takes none (Windows: the
#: paths serve, as before), so their tests run only where it takes one.
needs_folder_fd = pytest.mark.skipif(not {os.open, os.unlink, os.rename, os.stat} <= os.supports_dir_fd,
                                     reason="no folder fd here (the paths serve): the race stays open by design")


def write_pngs(folder, seed: int, names) -> None:
    for k, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(chest_like(seed + k) * 255).astype(np.uint8)).save(folder / name)


def run(model_dir, *args) -> int:  # noqa: F811
    return main(["enhance", *map(str, args), "--model", str(model_dir), "--device", "cpu", "-q"])


def image_warnings(err: str) -> list[str]:
    """The warnings of stderr but the job's one about the test model's small tiles (trained on
    128 px ROIs: spine mode leaves most of the evaluation ROIs original), said for every job."""
    return [line for line in err.splitlines()
            if "warning" in line and "the model was trained at --roi-size" not in line]  # fmt: skip


def test_a_file_the_job_did_not_write_is_neither_done_nor_replaced(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    out.mkdir()
    (out / "a.png").write_bytes(b"an original that happens to be here")
    for extra in ([], ["--overwrite"]):
        assert run(model_dir, src, "-o", out, *extra) == 1
        captured = capsys.readouterr()
        assert "0 skipped, 1 failed" in captured.out and "was not written by xvertfast enhance" in captured.err
        assert (out / "a.png").read_bytes() == b"an original that happens to be here"
    assert run(model_dir, src, "-o", out) == 1
    assert "0 done, 1 skipped, 1 failed" in capsys.readouterr().out  # b.png: written by the job, done


def test_an_output_of_another_input_is_not_taken_for_this_ones(tmp_path, model_dir, seed, capsys):  # noqa: F811
    d1, d2, out = tmp_path / "d1", tmp_path / "d2", tmp_path / "out"
    write_pngs(d1, seed, ["sub/x.png"])
    write_pngs(d2, seed + 5, ["sub/x.png"])
    assert run(model_dir, d1, "-o", out) == 0
    written = (out / "sub/x.png").read_bytes()
    assert run(model_dir, d2, "-o", out) == 1
    assert "holds the output of another input" in capsys.readouterr().err
    assert (out / "sub/x.png").read_bytes() == written


def test_two_inputs_of_one_output_name_fail_the_second_saying_what_to_do(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                         monkeypatch):  # fmt: skip
    src = tmp_path / "src"
    write_pngs(src, seed, ["a/x.png", "b/x.png"])
    assert run(model_dir, src / "a", src / "b", "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert f"{src / 'b' / 'x.png'}: its output {tmp_path / 'out' / 'x.png'} is also the output of" in err
    assert "give the folder above both, or list the files in an @list.txt" in err
    # as advised, each keeps its own path: the folder above both, or an @list
    assert run(model_dir, src, "-o", tmp_path / "out2") == 0
    assert (tmp_path / "out2" / "a" / "x.png").exists() and (tmp_path / "out2" / "b" / "x.png").exists()
    monkeypatch.chdir(src)
    (tmp_path / "list.txt").write_text("a/x.png\nb/x.png\n")
    assert run(model_dir, f"@{tmp_path / 'list.txt'}", "-o", tmp_path / "out3") == 0
    assert (tmp_path / "out3" / "a" / "x.png").exists() and (tmp_path / "out3" / "b" / "x.png").exists()


def test_two_files_of_one_folder_and_name_are_told_what_helps_them(tmp_path, model_dir, seed, capsys):  # noqa: F811
    from xvertfast.pipeline.preprocess_files import preprocess_files

    src = tmp_path / "src"
    write_pngs(src, seed, ["x.png"])
    os.link(src / "x.png", src / "x.tif")  # (content and name disagree: read by its content)
    assert run(model_dir, src, "-o", tmp_path / "out", "--format", "png16") == 1
    err = capsys.readouterr().err
    assert "is also the output of" in err and "differ only in their extension" in err and "@list" not in err
    summary = preprocess_files([str(src)], str(tmp_path / "pre"), progress=False, log=lambda msg: None)
    assert len(summary.failed) == 1 and "differ only in their extension" in summary.failed[0][1]


def test_a_rerun_removes_the_temporaries_a_killed_run_left_of_its_own_files(tmp_path, model_dir, seed):  # noqa: F811
    write_pngs(tmp_path / "in", seed, ["a.png"])
    out, side = tmp_path / "out", tmp_path / "side"
    assert run(model_dir, tmp_path / "in", "-o", out) == 0
    side.mkdir()
    left = [out / f".{JOB_FILE}.k3j_x9q.part", side / ".run.json.abc123.part", side / ".look.png.zz9.part"]
    for path in left + [side / ".notours.txt.part"]:
        path.write_bytes(b"cut short")
    assert run(model_dir, tmp_path / "in", "-o", out, "--report", side / "run.json", "--preview", side / "look.png") == 0
    assert not [p for p in left if p.exists()] and (side / ".notours.txt.part").exists()


def test_a_rerun_that_skips_everything_states_no_rate(tmp_path, model_dir, seed, capsys):  # noqa: F811
    write_pngs(tmp_path / "in", seed, ["a.png"])
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 0
    assert "1 done, 0 skipped, 0 failed in" in capsys.readouterr().out
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("0 done, 1 skipped, 0 failed in") and "images/s" not in line, line


def test_an_edited_input_is_done_again(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src, "-o", out) == 0
    write_pngs(src, seed + 7, ["a.png"])  # replaced by another image
    capsys.readouterr()
    assert run(model_dir, src, "-o", out) == 0
    assert "1 done, 1 skipped" in capsys.readouterr().out


def test_overwrite_with_another_format_replaces_the_earlier_outputs(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # the .png outputs stayed beside the new .tiff ones: evaluate outputs=OUT then found two for one input
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "sub/b.png"])
    assert run(model_dir, src, "-o", out) == 0
    (out / "notes.png").write_bytes(b"the user's own file")  # not in the ledger: never removed
    assert run(model_dir, src, "-o", out, "--format", "tiff", "--overwrite") == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")) == [
        "a.tiff", "notes.png", "sub/b.tiff"]  # fmt: skip
    assert (out / "notes.png").read_bytes() == b"the user's own file"
    # the ledger no longer names the removed outputs: a file put there later is not taken for ours
    (out / "a.png").write_bytes(b"put here afterwards")
    capsys.readouterr()
    assert run(model_dir, src, "-o", out, "--overwrite") == 1
    assert "a.png exists and was not written by xvertfast enhance" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == b"put here afterwards" and (out / "sub/b.png").exists()
    assert not (out / "sub/b.tiff").exists()  # back to png: the tiff output of sub/b.png went
    assert (out / "a.tiff").exists()  # a.png's new output failed: its earlier one stays


def test_an_interrupted_overwrite_leaves_nothing_of_the_old_settings_skipped(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src, "-o", out) == 0  # spine mode
    settings = json.loads((out / JOB_FILE).read_text())["settings"]
    # an --overwrite run with other settings, killed before it wrote anything: its settings are recorded
    JobFolder(str(out), {**settings, "mode": "full"}, overwrite=True).close()
    capsys.readouterr()
    assert run(model_dir, src, "-o", out, "--mode", "full") == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out


def test_a_second_job_into_the_same_folder_is_refused(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png"])
    assert run(model_dir, src, "-o", out) == 0
    settings = json.loads((out / JOB_FILE).read_text())["settings"]
    holder = JobFolder(str(out), settings, overwrite=False)
    try:
        assert run(model_dir, src, "-o", out) == 2
        assert "another xvertfast enhance is writing into" in capsys.readouterr().err
    finally:
        holder.close()
    assert run(model_dir, src, "-o", out) == 0  # released with the first job


def test_a_ledger_line_cut_short_by_a_kill_is_ignored(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src, "-o", out) == 0
    with open(out / LEDGER_FILE, "a") as f:
        f.write('{"output": "b.png", "sta')
    capsys.readouterr()
    assert run(model_dir, src, "-o", out) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out


def test_an_output_folder_inside_the_input_folder_is_not_searched(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png", "b.png"])
    for _ in range(2):
        assert run(model_dir, src, "-o", src / "enhanced") == 0
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out
    assert not (src / "enhanced" / "enhanced").exists()


def test_the_input_folder_as_output_folder_replaces_nothing(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png"])
    before = (src / "a.png").read_bytes()
    for fmt in ("same", "tiff"):  # tiff: outputs beside the inputs would be found as inputs on the rerun
        assert run(model_dir, src, "-o", src, "--format", fmt) == 2
        assert "is a folder of outputs" in capsys.readouterr().err
    assert (src / "a.png").read_bytes() == before and sorted(p.name for p in src.iterdir()) == ["a.png"]
    # an input given in the output folder, directly or listed, is refused before the job starts:
    # the job's markers there would make a later search of a folder above pass a.png over
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\n")
    cwd = os.getcwd()
    os.chdir(src)
    try:
        assert run(model_dir, f"@{listing}", "-o", ".") == 2
        assert run(model_dir, "a.png", "-o", ".") == 2
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().err.count(", a folder of outputs") == 2
    assert main(["preprocess", str(src / "a.png"), "-o", str(src), "-q"]) == 2  # would write a_xp.png beside it
    assert ", a folder of outputs" in capsys.readouterr().err
    assert sorted(p.name for p in src.iterdir()) == ["a.png"] and (src / "a.png").read_bytes() == before
    assert run(model_dir, tmp_path, "-o", tmp_path / "out") == 0  # so a search from above still finds it
    assert (tmp_path / "out" / "in" / "a.png").exists()


def test_a_torn_ledger_line_then_a_kill_still_knows_its_outputs(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    from xvertfast.io import job_folder

    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src / "a.png", "-o", out) == 0
    with open(out / LEDGER_FILE, "a") as f:
        f.write('{"output": "a.png", "sta')  # a kill in the middle of a line
    monkeypatch.setattr(job_folder.JobFolder, "finished", lambda *a, **k: None)  # a kill after b's rename
    assert run(model_dir, src, "-o", out) == 0
    monkeypatch.undo()
    capsys.readouterr()
    assert run(model_dir, src, "-o", out) == 0  # b.png is known (its "writing" line survived): redone
    assert "1 done, 1 skipped, 0 failed" in capsys.readouterr().out


def test_one_input_reached_through_a_link_is_the_same_input(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png"])
    os.symlink(src, tmp_path / "inlink")
    assert run(model_dir, tmp_path / "inlink", "-o", out) == 0
    capsys.readouterr()
    assert run(model_dir, src, "-o", out) == 0
    assert "0 done, 1 skipped, 0 failed" in capsys.readouterr().out


def test_a_folder_of_an_earlier_version_is_adopted(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # an output folder an xvertfast before the ledger wrote: its settings file without the
    # settings added since, its outputs without ledger lines
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src, "-o", out) == 0
    os.remove(out / LEDGER_FILE)
    job = json.loads((out / JOB_FILE).read_text())
    del job["settings"]["precision"]
    (out / JOB_FILE).write_text(json.dumps(job))
    capsys.readouterr()
    assert run(model_dir, src / "a.png", "-o", out) == 0  # the first run after the upgrade meets only a
    assert "0 done, 1 skipped" in capsys.readouterr().out
    assert run(model_dir, src, "-o", out) == 0  # b, unmet then, is still that version's output
    assert "0 done, 2 skipped" in capsys.readouterr().out
    assert run(model_dir, src, "-o", out, "--overwrite") == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out


def test_a_full_disk_under_the_ledger_keeps_the_summary(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    from xvertfast.io import job_folder

    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, [f"{k}.png" for k in range(4)])
    write, calls = os.write, [0]

    def full_after_two(fd, data):
        calls[0] += 1
        if calls[0] > 2:
            raise OSError(28, "No space left on device")
        return write(fd, data)

    monkeypatch.setattr(job_folder.os, "write", full_after_two)
    report = tmp_path / "r.json"
    assert run(model_dir, src, "-o", out, "--batch-size", "1", "--workers", "1", "--report", report) == 1
    captured = capsys.readouterr()
    assert "stopped early: the disk is full" in captured.err and "done" in captured.out
    assert json.loads(report.read_text())["summary"]["stopped"] == "the disk is full"


@pytest.mark.parametrize("option", ["--report", "--preview"])
def test_report_and_preview_never_overwrite_an_input(tmp_path, model_dir, seed, capsys, option):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png"])
    before = (src / "a.png").read_bytes()
    assert run(model_dir, src, "-o", tmp_path / "out", option, src / "a.png") == 2
    assert "is one of the inputs" in capsys.readouterr().err
    assert (src / "a.png").read_bytes() == before
    assert run(model_dir, src, "-o", tmp_path / "out", option, src) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--report", "--preview"])
def test_report_and_preview_never_replace_an_output_or_a_file_the_job_keeps(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                           option):  # fmt: skip
    """They were written over whatever stood at their path when the job ended: named as an output
    (OUT/a.png), the enhanced image was replaced by the JSON (or the sheet), and the ledger still
    said it done, so every rerun skipped it; named as the ledger, the job lost its record, and the
    next run refused every output as not its own. Both are refused before the job, as an input is."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "sub/b.png"])
    assert run(model_dir, src, "-o", out) == 0
    capsys.readouterr()
    before = folder_state(out)
    for path, what in [(out / "a.png", f"the output of {src / 'a.png'}"), (out / "sub" / "b.png", "the output of"),
                       (out / LEDGER_FILE, f"one of the files the job keeps in {out}"), (out / JOB_FILE, "one of the files")]:
        assert run(model_dir, src, "-o", out, option, path) == 2
        said = capsys.readouterr().err
        assert f"error: {option} {path} is {what}" in said, said
        assert folder_state(out) == before
    assert run(model_dir, src, "-o", out, option, out / "run.a.png") == 0  # beside the outputs: written
    assert (out / "run.a.png").exists()
    files = discover([str(src)])  # a format's outputs have its extension; same's, any an output may have
    batch._check_side_files(files, str(out), "png16", **{option[2:]: str(out / "a.tiff")})
    with pytest.raises(ValueError, match=f"is the output of {src / 'a.png'}"):
        batch._check_side_files(files, str(out), "same", **{option[2:]: str(out / "a.tiff")})


@pytest.fixture
def earlier_run(tmp_path, model_dir, seed, capsys):  # noqa: F811
    """``enhance in1 -o out`` run (x.png done), in2 (y.png) not: in1, in2, out and the folder's state."""
    in1, in2, out = tmp_path / "in1", tmp_path / "in2", tmp_path / "out"
    write_pngs(in1, seed, ["x.png"])
    write_pngs(in2, seed + 1, ["y.png"])
    assert run(model_dir, in1, "-o", out) == 0
    capsys.readouterr()
    return in1, in2, out, folder_state(out)


def test_report_and_preview_never_replace_an_earlier_runs_output_of_other_inputs(earlier_run, model_dir,  # noqa: F811
                                                                                capsys):  # fmt: skip
    """Only this job's outputs were checked: ``enhance in1 -o out``, then ``enhance in2 -o out --report
    out/x.png`` replaced the enhanced x.png by the JSON, and rerunning in1 said it skipped. The folder's
    ledger is asked too, before the job starts: nothing is written into the folder, its ledger
    included. An extension in capitals is an output's (one file where the file system ignores case)."""
    in1, in2, out, before = earlier_run
    for option in ("--report", "--preview"):
        assert run(model_dir, in2, "-o", out, option, out / "x.png") == 2
        said = capsys.readouterr().err
        assert f"error: {option} {out / 'x.png'} is the output of {os.path.realpath(in1 / 'x.png')}" in said, said
        assert folder_state(out) == before
    files = discover([str(in2)])
    os.link(out / "x.png", out / "x.PNG")  # (the one file under both names, as a case-insensitive system has it)
    for fmt in ("same", "png8"):
        with pytest.raises(ValueError, match="is the output of .*x.png that an earlier run wrote"):
            batch._check_side_files(files, str(out), fmt, report=str(out / "x.PNG"))
    os.remove(out / "x.PNG")
    batch._check_side_files(files, str(out), "same", report=str(out / "x.PNG"))  # another file, here
    with pytest.raises(ValueError, match=f"is the output of {in2 / 'y.png'}"):
        batch._check_side_files(files, str(out), "png8", report=str(out / "y.PNG"))


def test_a_report_is_checked_against_the_ledger_again_once_the_job_holds_the_folder(earlier_run, model_dir,  # noqa: F811
                                                                                  capsys, monkeypatch):  # fmt: skip
    """The ledger is first read without the folder's lock: a job writing OUT then (ending as this one
    waits for its lock) may record x.png after that read. The read is made to see the ledger as it
    was before x.png's line; the job, once it holds OUT, must still refuse --report OUT/x.png, not
    write the JSON over that output when it ends."""
    in1, in2, out, before = earlier_run
    monkeypatch.setattr(batch, "recorded_input", lambda *args, **kwargs: None)  # (a read before x.png's line)
    assert run(model_dir, in2, "-o", out, "--report", out / "x.png") == 2
    said = capsys.readouterr().err
    assert f"error: --report {out / 'x.png'} is the output of {os.path.realpath(in1 / 'x.png')}" in said, said
    # a Python caller is told of its argument, not of an option it never typed
    recorded = json.loads((out / JOB_FILE).read_text())["settings"]
    with pytest.raises(ValueError) as refused:
        JobFolder(str(out), recorded, False, side_files={"report": str(out / "x.png")})
    assert str(refused.value).startswith(f"report={str(out / 'x.png')!r} is the output of "
                                         f"{os.path.realpath(in1 / 'x.png')} that an earlier run wrote"), refused.value
    assert folder_state(out) == before  # x.png kept, the ledger and settings untouched


def test_report_and_preview_never_replace_an_input_list_or_the_rois_file(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                         monkeypatch):  # fmt: skip
    """Only the images were checked: ``enhance @todo.txt --report todo.txt`` wrote the JSON over the
    list it was reading (a dry run too, exit 0), as --preview over the --rois CSV. A list named
    by a list is one too."""
    monkeypatch.chdir(tmp_path)
    write_pngs(tmp_path / "in", seed, ["a.png"])
    (tmp_path / "todo.txt").write_text("in/a.png\n")
    (tmp_path / "outer.txt").write_text("@todo.txt\n")
    (tmp_path / "rois.csv").write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,40,64,90,64\n")
    kept = {name: (tmp_path / name).read_bytes() for name in ("todo.txt", "outer.txt", "rois.csv")}
    for given, option, path, what in [("@todo.txt", "--report", "todo.txt", "the input list"),
                                      ("@outer.txt", "--preview", "./todo.txt", "the input list"),
                                      ("in", "--report", "rois.csv", "the ROI centres file rois.csv")]:
        for dry in ([], ["--dry-run"]) if option == "--report" else ([],):
            assert run(model_dir, given, "-o", "out", "--rois", "rois.csv", option, path, *dry) == 2
            said = capsys.readouterr().err
            assert f"error: {option} {path} is {what}" in said and "which the job reads" in said, said
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept and not (tmp_path / "out").exists()


def test_a_report_or_preview_that_is_a_link_to_a_file_the_job_reads_is_refused(tmp_path, model_dir, seed,  # noqa: F811
                                                                               capsys, monkeypatch):  # fmt: skip
    """A link to an @list or the ROI file as --report (or --preview) was let through since b645a49
    (the link replaced, its list untouched): ``enhance @lst --report lst``, lst -> todo.txt, made
    lst the JSON report, which the same command run again read as its list."""
    monkeypatch.chdir(tmp_path)
    write_pngs(tmp_path / "in", seed, ["a.png"])
    (tmp_path / "todo.txt").write_text("in/a.png\n")
    (tmp_path / "rois.csv").write_text("file,upper_row,upper_col,lower_row,lower_col\na.png,40,64,90,64\n")
    (tmp_path / "lst").symlink_to("todo.txt")
    (tmp_path / "r.csv").symlink_to("rois.csv")
    for given, option, path, what in [("@lst", "--report", "lst", f"the input list {tmp_path / 'todo.txt'}"),
                                      ("@todo.txt", "--preview", "lst", f"the input list {tmp_path / 'todo.txt'}"),
                                      ("in", "--report", "r.csv",
                                       f"{tmp_path / 'rois.csv'}, the ROI centres file r.csv")]:  # fmt: skip
        rois = "r.csv" if path == "r.csv" else "rois.csv"
        assert run(model_dir, given, "-o", "out", "--rois", rois, option, path) == 2
        said = capsys.readouterr().err
        # (said as it is: the link would be replaced, not the file written over)
        name = option.lstrip("-")
        assert (f"error: {option} {path} is a link to {what}, which the job reads: written there, the {name} would "
                f"replace the link (the file stays as it is), and a job given {path} would read the {name} in its "
                "place; give it another name") in said, said
        assert os.path.islink(path)
    assert (tmp_path / "todo.txt").read_text() == "in/a.png\n" and not (tmp_path / "out").exists()


@pytest.mark.parametrize("caller", ["python", "cli"])
def test_a_report_or_preview_that_is_a_hard_link_of_an_input_or_a_list_is_refused_as_such(tmp_path, seed, caller):
    """A hard link of an input (as a cp -al backup holds) or of the @list as --report was refused with "is one
    of the inputs; it would be overwritten" / "is the input list ...; it would be overwritten": os.replace
    replaces that name only, the file stays under its own. Still refused (that copy of it would go), as it
    is; a file of its own name is said overwritten as before. Named as the caller gave it: report='...'
    from Python (it read --report there too)."""
    from xvertfast._text import cli_running

    def cli():
        return cli_running({"report", "preview"}) if caller == "cli" else contextlib.nullcontext()

    def said(option, path):
        return f"--{option} {path}" if caller == "cli" else f"{option}={str(path)!r}"

    write_pngs(tmp_path / "in", seed, ["a.png"])
    (tmp_path / "todo.txt").write_text(f"{tmp_path / 'in' / 'a.png'}\n")
    (tmp_path / "backup").mkdir()
    os.link(tmp_path / "in" / "a.png", tmp_path / "backup" / "a.png")
    os.link(tmp_path / "todo.txt", tmp_path / "backup" / "todo.txt")
    files = discover([str(tmp_path / "in")])
    lists = {str(tmp_path / "todo.txt"): f"the input list {tmp_path / 'todo.txt'}"}
    out = str(tmp_path / "out")
    with cli(), pytest.raises(ValueError) as refused:
        batch._check_side_files(files, out, "same", lists, report=str(tmp_path / "backup" / "a.png"))
    assert str(refused.value) == (f"{said('report', tmp_path / 'backup' / 'a.png')} is a hard link of the input "
                                  f"{tmp_path / 'in' / 'a.png'} (that file under another name, as in a cp -al copy): "
                                  "written there, the report would replace that name of it (the input stays as it is "
                                  "under its own); give it another name")  # fmt: skip
    with cli(), pytest.raises(ValueError) as refused:
        batch._check_side_files(files, out, "same", lists, preview=str(tmp_path / "backup" / "todo.txt"))
    assert str(refused.value) == (f"{said('preview', tmp_path / 'backup' / 'todo.txt')} is a hard link of the input "
                                  f"list {tmp_path / 'todo.txt'}, which the job reads: written there, the preview would "
                                  "replace that name of it (the file stays as it is under its own), and a job given "
                                  f"{tmp_path / 'backup' / 'todo.txt'} would read the preview in its place; give it "
                                  "another name")  # fmt: skip
    for path, words in ((tmp_path / "in" / "a.png", "is one of the inputs; it would be overwritten"),
                        (tmp_path / "todo.txt", f"is the input list {tmp_path / 'todo.txt'}, which the job reads; it "
                                                "would be overwritten")):  # fmt: skip
        with cli(), pytest.raises(ValueError, match=re.escape(f"{said('report', path)} {words}")):
            batch._check_side_files(files, out, "same", lists, report=str(path))
    both = tmp_path / "run.png"  # (the older refusals too: "is also the report" from Python, not "the --report")
    with cli(), pytest.raises(ValueError) as refused:
        batch._check_side_files(files, out, "same", lists, report=str(both), preview=str(both))
    assert str(refused.value) == (f"{said('preview', both)} is also the {'--report' if caller == 'cli' else 'report'}; "
                                  "give each a file of its own")  # fmt: skip


def test_a_report_that_is_a_hard_link_of_an_input_differing_in_case_only_is_refused_as_one(tmp_path, seed):
    """another_name compared the names casefolded: on a file system that keeps case, --report in/A.png, a
    hard link of the input in/a.png, was taken for the input's own name and read "is one of the inputs; it
    would be overwritten", though os.replace replaces that name only. A file system that ignores case lists
    one of the two names, and says the file's own name there (not simulated here)."""
    from xvertfast.io.files import another_name

    write_pngs(tmp_path / "in", seed, ["a.png"])
    os.link(tmp_path / "in" / "a.png", tmp_path / "in" / "A.png")
    if len(os.listdir(tmp_path / "in")) != 2:
        pytest.skip("a file system that ignores case: A.png is a.png")
    a, big_a = str(tmp_path / "in" / "a.png"), str(tmp_path / "in" / "A.png")
    assert another_name(big_a, a) == "a hard link" and another_name(a, a) is None
    with pytest.raises(ValueError, match=re.escape(f"report={big_a!r} is a hard link of the input {a} (that file")):
        batch._check_side_files(discover([a]), str(tmp_path / "out"), "same", report=big_a)


def test_a_preview_that_is_a_link_an_input_leads_through_is_refused(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                    monkeypatch):  # fmt: skip
    """--preview look.png, look.png -> real.png, with an input in2/q.png -> ../look.png: the sheet
    replaces the link look.png, so the input q.png then reads as the sheet (a link to the input's
    own file, reached without the link, is replaced as b645a49 lets it)."""
    monkeypatch.chdir(tmp_path)
    write_pngs(tmp_path / "in", seed, ["real.png"])
    (tmp_path / "in2").mkdir()
    (tmp_path / "look.png").symlink_to("in/real.png")
    (tmp_path / "in2" / "q.png").symlink_to("../look.png")
    held = (tmp_path / "in" / "real.png").read_bytes()
    for option, path in (("--preview", "look.png"), ("--report", "look.png")):
        assert run(model_dir, "in2", "-o", "out", option, path) == 2
        said = capsys.readouterr().err
        assert f"error: {option} {path} is one of the inputs" in said, said
        assert os.path.islink("look.png") and (tmp_path / "in2" / "q.png").read_bytes() == held
    assert not (tmp_path / "out").exists()


def test_a_link_chain_through_a_folder_link_then_up_is_followed_as_the_kernel_follows_it(tmp_path):
    """An input base/q.png -> sub/../m.png, base/sub -> E/deep, E/m.png -> look.png: the kernel takes
    the `..` after the folder link sub, so q.png reads E/look.png; the chain walk took `..` by the
    text (abspath), found base/m.png (no such file) and missed that replacing the link E/look.png
    changes what the input reads."""
    from xvertfast.io.files import first_same_file

    e, base = tmp_path / "E", tmp_path / "base"
    (e / "deep").mkdir(parents=True)
    base.mkdir()
    (e / "real.png").write_bytes(b"an image")
    (e / "look.png").symlink_to("real.png")
    (e / "m.png").symlink_to("look.png")
    (base / "sub").symlink_to(e / "deep")
    (base / "q.png").symlink_to("sub/../m.png")
    assert (base / "q.png").read_bytes() == b"an image"
    assert first_same_file(str(e / "look.png"), [str(base / "q.png")], replaced=True) == str(base / "q.png")
    assert first_same_file(str(e / "look.png"), [str(e / "real.png")], replaced=True) is None


def test_a_missing_input_is_said_missing_where_its_output_path_holds_another_inputs(tmp_path, model_dir, seed,  # noqa: F811
                                                                                    capsys):  # fmt: skip
    """An @list of relative paths run from another folder (or an input deleted, or mistyped) named
    files that do not exist, whose outputs were made from the files meant: each failed with 'OUT/a.png
    holds the output of another input, ... (--overwrite replaces it)', which sends one to --overwrite
    rather than to the path. The input's own problem is said."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src / "a.png", "-o", out) == 0
    capsys.readouterr()
    before = folder_state(out)
    gone = tmp_path / "elsewhere" / "a.png"
    assert run(model_dir, gone, src / "b.png", "-o", out) == 1
    said = capsys.readouterr().err
    assert f"error: {gone}: no such file or folder" in said, said
    assert "holds the output of another input" not in said
    assert (out / "a.png").read_bytes() == before["a.png"][0]


def test_a_ledger_that_cannot_be_opened_for_writing_is_said_so(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    """An output folder copied from read-only media (its files 0444) stopped the job with a bare
    '[Errno 13] Permission denied: .../.xvertfast-enhance-outputs.jsonl'. Root may write anywhere:
    the refusal is faked."""
    import errno

    from xvertfast.io import job_folder

    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png"])
    assert run(model_dir, src, "-o", out) == 0
    capsys.readouterr()
    real_open = os.open

    def refused(path, flags, *args, **kwargs):
        if str(path).endswith(LEDGER_FILE) and flags & os.O_WRONLY:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(job_folder.os, "open", refused)
    assert run(model_dir, src, "-o", out) == 2
    assert (f"error: cannot write into the output folder {out}: its ledger {out / LEDGER_FILE} cannot be opened for "
            f"writing ({os.strerror(errno.EACCES)})") in capsys.readouterr().err


def test_the_report_and_the_preview_cannot_share_a_file(tmp_path, model_dir, seed, capsys):  # noqa: F811
    """The preview was written over the report: the job said 'report: look.png' of a file holding the sheet."""
    src, out, both = tmp_path / "in", tmp_path / "out", tmp_path / "look.png"
    write_pngs(src, seed, ["a.png"])
    assert run(model_dir, src, "-o", out, "--report", both, "--preview", both) == 2
    assert f"error: --preview {both} is also the --report" in capsys.readouterr().err
    assert not out.exists() and not both.exists()


def test_a_preview_drawn_among_the_inputs_is_not_an_input_on_the_rerun(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png", "b.png"])
    for _ in range(2):
        assert run(model_dir, src, "-o", tmp_path / "out", "--preview", src / "look.png") == 0
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out


def test_a_preview_drawn_among_the_input_files_is_not_an_input_on_the_rerun(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png", "b.png"])
    for _ in range(2):  # (the files given one by one, as a shell's in/*.png gives them: the rerun's holds look.png)
        assert run(model_dir, *sorted(src.iterdir()), "-o", tmp_path / "out", "--preview", src / "look.png") == 0
    assert "0 done, 2 skipped, 0 failed" in capsys.readouterr().out


def side_file_warning(option, path, folder, out) -> str:
    """The warning of a --report or --preview written where a search of ``folder`` takes it for an image."""
    return (f"warning: {option} {path} lies in {folder}, an input folder, under a name its search takes for an "
            f"image: a later run over {folder} would take it as an input image (this command run again leaves it "
            f"out); write it in the output folder or outside the input folders (e.g. {out / path.name})")


def test_a_report_or_preview_a_search_of_an_input_folder_would_take_for_an_image_is_written_with_a_warning(  # noqa: F811
        tmp_path, model_dir, seed, capsys, monkeypatch):  # fmt: skip
    """``enhance in -o out --report in/run.png --preview in/look.png`` worked, and b975d31 refused
    it (exit 2); its rerun was refused before ('--report in/run.png is one of the inputs'). Both
    are written, with a warning naming the option and the folder, each time; the same command
    run again (and ``enhance . -o out --preview look.png`` in the folder) leaves them out of its
    inputs. The warning is true: a job given ``in`` without them takes them for images."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "sub/b.png"])
    report, preview = src / "run.png", src / "sub" / "look"
    for counts in ("2 done, 0 skipped", "0 done, 2 skipped"):
        assert run(model_dir, src, "-o", out, "--report", report, "--preview", preview) == 0
        said = capsys.readouterr()
        assert f"{counts}, 0 failed" in said.out, said
        for option, path in (("--report", report), ("--preview", preview)):
            # (said as the job starts, and again at its end, as the job's other warnings are)
            assert (said.out + said.err).count(side_file_warning(option, path, src, out)) == 2, said
    assert json.loads(report.read_text())["summary"]["skipped"] == 2 and preview.exists()
    assert run(model_dir, src, "-o", tmp_path / "again") == 1  # the report, no image, fails; the sheet is taken
    said = capsys.readouterr()
    assert "3 done" in said.out and "0 skipped, 1 failed" in said.out and "run.png: named like a PNG file" in said.err
    write_pngs(tmp_path / "here", seed, ["a.png"])
    monkeypatch.chdir(tmp_path / "here")
    for counts in ("1 done, 0 skipped", "0 done, 1 skipped"):
        assert run(model_dir, ".", "-o", tmp_path / "out2", "--preview", "look.png") == 0
        said = capsys.readouterr()
        assert f"{counts}, 0 failed" in said.out and "warning: --preview look.png lies in ., an input folder" in \
            said.out + said.err, said


def test_another_json_of_xvertfast_s_at_the_report_path_is_refused_as_an_input(tmp_path, model_dir, seed,  # noqa: F811
                                                                                capsys):  # fmt: skip
    """An earlier report was recognised by its first bytes, '{\\n  "xvertfast": ', with which evaluate's
    JSON, `info --json` and job.json begin too: such a file at the --report path was left out of the
    inputs, then overwritten by the report. It is refused as an input the report would overwrite,
    as before f74e32d; a report an earlier run wrote there is left out as before (the test above)."""
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png"])
    foreign = src / "scores.png"  # (evaluate's JSON under a name the search takes for an image)
    foreign.write_text(json.dumps({"xvertfast": "1.0", "settings": {}, "methods": {}}, indent=2))
    kept = foreign.read_bytes()
    assert run(model_dir, src, "-o", tmp_path / "out", "--report", foreign) == 2
    assert f"--report {foreign} is one of the inputs; it would be overwritten" in capsys.readouterr().err
    assert foreign.read_bytes() == kept and not (tmp_path / "out").exists()


def test_a_report_or_preview_no_search_takes_for_an_image_is_written_without_a_warning(tmp_path, model_dir,  # noqa: F811
                                                                                       seed, capsys):  # fmt: skip
    # a name no search takes (run.json), a hidden one and a path in OUT below the input folder
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png", "sub/b.png"])
    inner = src / "out"
    assert run(model_dir, src, "-o", inner, "--report", src / "run.json", "--preview", src / ".look.png") == 0
    assert run(model_dir, src, "-o", inner, "--preview", inner / "look.png") == 0
    assert (inner / "look.png").exists() and (src / "run.json").exists() and (src / ".look.png").exists()
    said = capsys.readouterr()
    assert "an input folder" not in said.out + said.err
    assert run(model_dir, src, "-o", tmp_path / "again") == 0  # the sheets and the report are no inputs
    assert "2 done, 0 skipped, 0 failed" in capsys.readouterr().out


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="a pipe is named by /dev/fd/N")
def test_a_list_piped_in_is_searched_and_checked_once_read(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    """``enhance @<(find data ...) -o data/out``: the list, a pipe, was read by the search, then again
    (empty) by the check of an OUT inside a listed folder, which let an image already in OUT be left
    out without a word; before that the search itself found nothing."""
    monkeypatch.chdir(tmp_path)
    write_pngs(tmp_path / "data", seed, ["a.png", "out/foreign.png"])
    read, write = os.pipe()
    os.write(write, b"data\n")
    os.close(write)
    try:
        assert run(model_dir, f"@/dev/fd/{read}", "-o", "data/out", "--dry-run") == 2
    finally:
        os.close(read)
    said = capsys.readouterr().err
    assert ("data/out holds images that no xvertfast job wrote (data/out/foreign.png) and lies in an input folder: "
            "the output folder is not searched, so they would not be enhanced; give the outputs a folder of their "
            "own") in said, said


def test_an_unwritable_report_keeps_the_summary(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png"])

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch, "_write_report", full)
    assert run(model_dir, src, "-o", tmp_path / "out", "--report", tmp_path / "r.json") == 1
    captured = capsys.readouterr()
    assert "1 done" in captured.out and "report" in captured.err and "No space left" in captured.err


def test_ctrl_c_stops_with_a_summary_and_the_rerun_finishes(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    from xvertfast.infer import Enhancer

    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, [f"{k}.png" for k in range(4)])
    calls, run_tiles = [0], Enhancer.run_tiles

    def interrupted_second_time(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return run_tiles(self, *args, **kwargs)

    monkeypatch.setattr(Enhancer, "run_tiles", interrupted_second_time)
    report = tmp_path / "r.json"
    assert run(model_dir, src, "-o", out, "--batch-size", "2", "--workers", "1", "--report", report) == 130
    captured = capsys.readouterr()
    assert "stopped early: interrupted" in captured.err and "Traceback" not in captured.err
    body = json.loads(report.read_text())
    assert body["summary"]["done"] >= 1 and body["summary"]["done"] < 4
    # one line says it all (the job's log and the CLI each said it: twice), the last
    left = body["summary"]["not_processed"]
    assert left >= 1 and sum("stopped" in line for line in captured.err.splitlines()) == 1
    assert captured.err.splitlines()[-1] == (f"stopped early: interrupted; {left} image{'s' * (left != 1)} not "
                                             "processed; the same command resumes where this one stopped")  # fmt: skip
    monkeypatch.setattr(Enhancer, "run_tiles", run_tiles)
    assert run(model_dir, src, "-o", out) == 0
    assert f"{4 - body['summary']['done']} done, {body['summary']['done']} skipped" in capsys.readouterr().out


def test_a_full_disk_stops_the_job(tmp_path, model_dir, seed, capsys, monkeypatch):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, [f"{k}.png" for k in range(6)])

    def no_space(path, *args, **kwargs):
        raise ImageWriteError(path, "cannot write: No space left on device")

    monkeypatch.setattr(batch, "write_image", no_space)
    assert run(model_dir, src, "-o", out, "--batch-size", "2", "--workers", "1") == 1
    captured = capsys.readouterr()
    assert "stopped early: the disk is full" in captured.err
    assert captured.err.count("No space left on device") < 6 + 1  # not every image tried in vain


def test_nothing_found_is_an_error(tmp_path, model_dir, capsys):  # noqa: F811
    (tmp_path / "empty").mkdir()
    assert run(model_dir, tmp_path / "empty", "-o", tmp_path / "out") == 1
    assert "no image files found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing to do: no folder, no ledger


@pytest.mark.parametrize("workers", ["0", "-3", "1000"])
def test_worker_counts_out_of_range_are_refused(tmp_path, model_dir, seed, capsys, workers):  # noqa: F811
    write_pngs(tmp_path / "in", seed, ["a.png"])
    with pytest.raises(SystemExit) as exit_:  # argparse's one line, naming the option
        run(model_dir, tmp_path / "in", "-o", tmp_path / "out", "--workers", workers)
    assert exit_.value.code == 2 and "argument --workers: must be from 1 to 64" in capsys.readouterr().err
    from xvertfast.infer import Enhancer

    # the API's own check, in the words it gives a wrong type (xvertfast._checks)
    with pytest.raises(ValueError, match=rf"^workers must be a whole number from 1 to 64, got {workers}$"):
        Enhancer(str(model_dir), device="cpu").enhance_files([str(tmp_path / "in")], str(tmp_path / "o"),
                                                            workers=int(workers), progress=False)  # fmt: skip


def test_an_output_folder_that_is_a_file_is_a_clear_error(tmp_path, model_dir, seed, capsys):  # noqa: F811
    write_pngs(tmp_path / "in", seed, ["a.png"])
    (tmp_path / "afile").write_text("x")
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "afile") == 2
    assert "is a file" in capsys.readouterr().err
    assert os.path.getsize(tmp_path / "afile") == 1


def test_a_jobs_files_carry_its_name_and_the_ledger_keys_use_slashes(tmp_path):
    from xvertfast.io.files import file_state
    from xvertfast.io.job_folder import job_files

    src, out_dir = tmp_path / "in.png", tmp_path / "out"
    src.write_bytes(b"an input")
    out = out_dir / "sub" / "in_xp.png"
    job = JobFolder(str(out_dir), {"lam": 0.8}, overwrite=False, job="preprocess")
    with pytest.raises(ValueError, match="another xvertfast preprocess is writing into"):
        JobFolder(str(out_dir), {"lam": 0.8}, overwrite=False, job="preprocess")
    job.starting(str(src), str(out))
    out.parent.mkdir()
    out.write_bytes(b"an output")
    job.finished(str(src), str(out), file_state(str(src)))
    job.close()
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([*job_files("preprocess"), "sub"])
    with open(out_dir / job_files("preprocess")[1]) as f:
        lines = [json.loads(line) for line in f]
    assert [line["output"] for line in lines if "run" not in line] == ["sub/in_xp.png"] * 2  # "/" on every system
    again = JobFolder(str(out_dir), {"lam": 0.8}, overwrite=False, job="preprocess")
    assert again.recorded(str(out)) and again.state(str(src), str(out)) == ("done", None)
    again.close()
    JobFolder(str(out_dir), {"lam": 0.8}, overwrite=False).close()  # enhance's own files, apart
    assert os.path.exists(out_dir / JOB_FILE)


def test_a_ledger_written_on_windows_is_read_with_its_keys(tmp_path, monkeypatch):
    from xvertfast.io import job_folder
    from xvertfast.io.files import file_state
    from xvertfast.io.job_folder import job_files

    src, out_dir = tmp_path / "in.png", tmp_path / "out"
    src.write_bytes(b"an input")
    (out_dir / "sub").mkdir(parents=True)
    (out_dir / "sub" / "in.png").write_bytes(b"an output")
    line = {"output": "sub\\in.png", "input": os.path.realpath(src), "state": "done",
            "settings": JobFolder(str(out_dir), {"a": 1}, overwrite=False).key, "stat": file_state(str(src))}
    (out_dir / job_files("enhance")[1]).write_text(json.dumps(line) + "\n")
    monkeypatch.setattr(job_folder.os, "sep", "\\")  # the separator the ledger was written with
    job = JobFolder(str(out_dir), {"a": 1}, overwrite=False)
    assert job.state(str(src), str(out_dir / "sub" / "in.png")) == ("done", None)
    job.close()


def test_an_output_is_done_only_as_its_input_was_listed_and_a_line_without_a_polarity_is_not_redone(tmp_path):
    """A ledger line keeps the polarity an @list gave its input: a tag added or dropped since redoes
    the output (the rerun after "looks inverted ... MONOCHROME1" skipped it as done). A line written
    before lines kept one (or an adopted output's) was made as listed now: after an upgrade a tagged
    archive was redone in full. MONOCHROME2 reads as untagged, so it is done for an untagged line."""
    from xvertfast.io.files import file_state
    from xvertfast.io.job_folder import job_files

    src, out_dir = tmp_path / "in.png", tmp_path / "out"
    src.write_bytes(b"an input")
    out_dir.mkdir()
    (out_dir / "in.png").write_bytes(b"an output")
    line = {"output": "in.png", "input": os.path.realpath(src), "state": "done",
            "settings": JobFolder(str(out_dir), {"a": 1}, overwrite=False).key, "stat": file_state(str(src))}
    ledger = out_dir / job_files("enhance")[1]
    ledger.write_text(json.dumps(line) + "\n")  # an earlier xvertfast's line
    with JobFolder(str(out_dir), {"a": 1}, overwrite=False) as job:
        out, stat = str(out_dir / "in.png"), file_state(str(src))
        assert job.state(str(src), out) == ("done", None)
        assert job.state(str(src), out, None, "MONOCHROME1") == ("done", None)
        job.finished(str(src), out, stat, photometric="MONOCHROME1")
        assert job.state(str(src), out, None, "MONOCHROME1") == ("done", None)
        assert job.state(str(src), out) == ("redo", None)
        job.finished(str(src), out, stat)  # untagged: recorded so, as null
        assert json.loads(ledger.read_text().splitlines()[-1])["photometric"] is None
        assert job.state(str(src), out, None, "MONOCHROME1") == ("redo", None)
        assert job.state(str(src), out, None, "MONOCHROME2") == ("done", None)
        job.finished(str(src), out, stat, photometric="MONOCHROME2")
        assert json.loads(ledger.read_text().splitlines()[-1])["photometric"] is None
        assert job.state(str(src), out) == ("done", None)
        job.adopt(str(src), [out])  # an output of an xvertfast before the ledger: made as listed now
        assert "photometric" not in json.loads(ledger.read_text().splitlines()[-1])
        assert job.state(str(src), out, None, "MONOCHROME1") == ("done", None)


def test_an_archive_moved_elsewhere_resumes(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # mounted at another path, or copied with its times (rsync -a): the same files, not other inputs
    write_pngs(tmp_path / "archive", seed, ["p1/a.png", "p2/b.png"])
    out = tmp_path / "out"
    assert run(model_dir, tmp_path / "archive", "-o", out) == 0
    os.rename(tmp_path / "archive", tmp_path / "moved")
    capsys.readouterr()
    assert run(model_dir, tmp_path / "moved", "-o", out) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out
    write_pngs(tmp_path / "moved", seed + 7, ["p1/a.png"])  # then edited at its new place: redone there
    assert run(model_dir, tmp_path / "moved", "-o", out) == 0
    assert "1 done, 1 skipped" in capsys.readouterr().out


def test_a_moved_input_is_recognised_only_by_name_size_and_a_fine_time(tmp_path):
    from xvertfast.io.files import file_state
    from xvertfast.io.job_folder import _moved_here

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = tmp_path / "a" / "IM1.dcm", tmp_path / "b" / "IM1.dcm"
    for path in (first, second):
        path.write_bytes(b"x" * 100)  # a series' files: one size
        os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    recorded, recorded_stat = os.path.realpath(first), file_state(str(first))
    # both there: two series' files of one name and size, not one file moved
    assert not _moved_here(recorded, recorded_stat, str(second), file_state(str(second)))
    os.remove(first)  # the recorded one gone: this is it, moved
    assert _moved_here(recorded, recorded_stat, str(second), file_state(str(second)))
    os.rename(second, tmp_path / "b" / "IM2.dcm")  # another name
    assert not _moved_here(recorded, recorded_stat, str(tmp_path / "b" / "IM2.dcm"),
                           file_state(str(tmp_path / "b" / "IM2.dcm")))  # fmt: skip
    os.rename(tmp_path / "b" / "IM2.dcm", second)  # its name back, and a time of whole seconds (FAT, shares)
    os.utime(second, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    whole = [100, 1_700_000_000 * 10**9]
    assert not _moved_here(recorded, whole, str(second), file_state(str(second)))


def test_a_stop_while_the_reports_temporaries_are_removed_leaves_the_folder_unlocked(tmp_path, model_dir, seed,  # noqa: F811
                                                                                     monkeypatch):  # fmt: skip
    # SIGTERM (a KeyboardInterrupt) right after the job took its folder: the folder stayed locked
    # by the call that raised (main() inside a notebook, a test), refusing the next job
    from xvertfast.infer import Enhancer

    write_pngs(tmp_path / "in", seed, ["a.png"])

    def stopped(paths):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "remove_stale_parts", stopped)
    enhancer = Enhancer(str(model_dir), device="cpu")
    with pytest.raises(KeyboardInterrupt) as raised:
        enhancer.enhance_files([str(tmp_path / "in")], str(tmp_path / "out"), report=str(tmp_path / "r.json"),
                               progress=False)  # fmt: skip
    JobFolder(str(tmp_path / "out"), {}, True).close()  # (with the traceback, and its frames, still held)
    assert raised.value is not None


def test_an_interrupt_while_planning_still_gives_the_summary_and_report(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                        monkeypatch):  # fmt: skip
    write_pngs(tmp_path / "in", seed, ["a.png", "b.png", "c.png"])
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 0
    capsys.readouterr()
    calls = []

    def interrupted(self, input_path, out, centres=None, photometric=None):
        calls.append(out)
        if len(calls) == 2:
            raise KeyboardInterrupt  # (Ctrl-C, or SIGTERM: main raises it for both)
        return "done", None, []

    monkeypatch.setattr(JobFolder, "verdict", interrupted)
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out", "--report", tmp_path / "run.json") == 130
    captured = capsys.readouterr()
    assert "interrupted while planning" in captured.err and captured.out.startswith("0 done, 1 skipped, 0 failed")
    assert "2 images not processed" in captured.err and captured.err.count("resumes") == 1  # said once
    body = json.loads((tmp_path / "run.json").read_text())["summary"]
    assert body["stopped"] == "interrupted" and body["found"] == 3 and body["not_processed"] == 2


def test_status_of_a_resume_stopped_while_planning_counts_no_inputs_left(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                         monkeypatch):  # fmt: skip
    """A resume of an archive mostly done, stopped by Ctrl-C while it planned (seconds, on tens of
    thousands of files), recorded the counts of the part planned (0 done, 0 skipped, 0 failed), and status said
    '5004 left' of a folder 5000 of whose 5004 inputs were done: the plan had not got to them."""
    write_pngs(tmp_path / "in", seed, ["a.png", "b.png", "c.png"])
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 0
    calls = []

    def interrupted(self, input_path, out, centres=None, photometric=None):
        calls.append(out)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return "done", None, []

    monkeypatch.setattr(JobFolder, "verdict", interrupted)
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["status", str(tmp_path / "out")]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "without --shard" in line and "done" in line)
    assert "(interrupted while planning)" in row, row
    assert " left" not in row and "0 inputs done" not in row, row


def statuses(report) -> dict[str, str]:
    return {os.path.basename(r["input"]): r["status"] for r in json.loads(report.read_text())["files"]}


def test_a_dry_run_writes_nothing_and_says_what_the_run_then_does(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png", "sub/c.png"])
    (src / "b.tif").write_bytes((src / "b.png").read_bytes())  # its output would be b.png's: a collision
    expected = {"a.png": "planned", "b.png": "planned", "b.tif": "failed", "c.png": "planned"}

    assert run(model_dir, src, "-o", out, "--dry-run", "--report", tmp_path / "plan.json") == 1
    assert not out.exists()  # not even made
    said = capsys.readouterr()
    assert "dry run, nothing written: 3 to enhance, 0 done already, 1 would fail" in said.out
    assert "also the output of" in said.err and "would take" not in said.err  # (no job ran there)
    assert statuses(tmp_path / "plan.json") == expected
    assert json.loads((tmp_path / "plan.json").read_text())["summary"]["dry_run"] is True
    assert run(model_dir, src, "-o", out, "--report", tmp_path / "run.json") == 1
    assert statuses(tmp_path / "run.json") == {k: "done" if v == "planned" else v for k, v in expected.items()}

    # a rerun's plan: what is done, a new input, a file xvertfast did not write, an edited input
    write_pngs(src, seed + 7, ["d.png", "e.png"])
    (out / "e.png").write_bytes(b"someone else's")
    write_pngs(src, seed + 9, ["a.png"])
    capsys.readouterr()
    before = folder_state(out)
    assert run(model_dir, src, "-o", out, "--dry-run", "--report", tmp_path / "plan.json") == 1
    assert folder_state(out) == before
    plan = statuses(tmp_path / "plan.json")
    assert plan == {**expected, "b.png": "skipped", "c.png": "skipped", "d.png": "planned", "e.png": "failed"}
    said = capsys.readouterr()
    assert "2 to enhance, 2 done already, 2 would fail" in said.out
    # (three outputs of one run, within seconds: too few for a rate, and no estimate from it)
    assert ("no estimate of how long the 2 would take: this folder's job finished too few outputs lately, or too "
            "close together, to tell its pace\n") in said.err  # fmt: skip
    assert run(model_dir, src, "-o", out, "--report", tmp_path / "run.json") == 1
    assert statuses(tmp_path / "run.json") == {k: "done" if v == "planned" else v for k, v in plan.items()}

    # other settings: refused as a run would be; with --overwrite, everything of the job is to redo
    capsys.readouterr()
    before = folder_state(out)
    assert run(model_dir, src, "-o", out, "--dry-run", "--mode", "full") == 2
    assert "with other settings (mode 'spine' -> 'full')" in capsys.readouterr().err
    assert run(model_dir, src, "-o", out, "--dry-run", "--mode", "full", "--overwrite") == 1
    assert "4 to enhance, 0 done already, 2 would fail" in capsys.readouterr().out
    assert run(model_dir, src, "-o", out, "--dry-run", "--preview", tmp_path / "p.png") == 2  # nothing to draw
    assert "a dry run writes none" in capsys.readouterr().err
    assert folder_state(out) == before and not (tmp_path / "p.png").exists()


def test_a_dry_run_beside_a_running_job_and_in_an_earlier_versions_folder(tmp_path, model_dir, seed,  # noqa: F811
                                                                          capsys):  # fmt: skip
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "b.png"])
    assert run(model_dir, src, "-o", out) == 0
    capsys.readouterr()
    running = hold_lock(str(out / LOCK_FILE))  # another job writing into the folder
    try:
        assert run(model_dir, src, "-o", out, "--dry-run") == 0
        said = capsys.readouterr()
        assert "0 to enhance, 2 done already, 0 would fail" in said.out and "a run would be refused" in said.err
        assert run(model_dir, src, "-o", out) == 2  # as the note says
    finally:
        running.close()
    running = hold_lock(str(out / shard_files("enhance", Shard.parse("2/2"))[1]))  # shard 2/2 running
    try:
        assert run(model_dir, src, "-o", out, "--dry-run", "--shard", "1/2") == 0
        assert "a run would be refused" not in capsys.readouterr().err
        assert run(model_dir, src, "-o", out, "--dry-run", "--shard", "2/2") == 0
        assert "a run would be refused" in capsys.readouterr().err
    finally:
        running.close()
    # a folder of an xvertfast before the ledger: its outputs count as done, and the dry run does
    # not make the ledger the run would make (with its mark of such a folder)
    os.remove(out / LEDGER_FILE)
    capsys.readouterr()
    before = folder_state(out)
    assert run(model_dir, src, "-o", out, "--dry-run") == 0
    assert "0 to enhance, 2 done already" in capsys.readouterr().out
    assert folder_state(out) == before


@pytest.mark.parametrize("option", ["--report", "--preview"])
def test_a_report_or_preview_that_cannot_be_written_is_refused_before_the_job(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                               monkeypatch, option):  # fmt: skip
    # they are written when the job ends: into a read-only mount or another user's folder, a job of
    # days found out only then ('report not written'). Root may write anywhere: access is faked
    src, out, theirs = tmp_path / "in", tmp_path / "out", tmp_path / "theirs"
    write_pngs(src, seed, ["a.png"])
    theirs.mkdir()
    real_access = os.access
    monkeypatch.setattr(batch.os, "access", lambda path, mode: real_access(path, mode) and path != str(theirs))
    for path in (theirs / "r.png", theirs / "deeper" / "r.png"):
        assert run(model_dir, src, "-o", out, option, path) == 2
        assert f"error: {option} {path} cannot be written: {theirs} is not a folder writable here" in capsys.readouterr().err
        assert not out.exists() and not (theirs / "deeper").exists()
    (tmp_path / "afile").write_bytes(b"x")
    assert run(model_dir, src, "-o", out, option, tmp_path / "afile" / "r.png") == 2
    assert "is not a folder writable here" in capsys.readouterr().err and not out.exists()


def test_an_output_folder_in_the_input_folder_holding_inputs_is_refused(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # -o a subfolder of the archive that holds images: the search passes the output folder over,
    # so they were left out without a word ('1 done': b.png and c.png never enhanced)
    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png", "sub/b.png", "sub/deeper/c.png"])
    for out, named in ((src / "sub", "sub/b.png"), (src / "sub" / "deeper", "sub/deeper/c.png")):
        for dry in ([], ["--dry-run"]):
            assert run(model_dir, src, "-o", out, *dry) == 2
            err = capsys.readouterr().err
            assert f"{out} holds images that no xvertfast job wrote ({src / named})" in err, err
    assert sorted(p.name for p in (src / "sub").iterdir()) == ["b.png", "deeper"]  # nothing written there
    write_pngs(src, seed, [".hidden/d.png"])  # (not searched either way)
    assert run(model_dir, src, "-o", src / ".hidden") == 0
    assert "3 done" in capsys.readouterr().out
    assert run(model_dir, src / "sub", "-o", src / "enh") == 0  # an earlier job's outputs, enh/b.png ...
    assert run(model_dir, src, "-o", src / "enh" / "deeper") == 0  # ... are not inputs either way
    assert run(model_dir, src, "-o", tmp_path / "out") == 0  # a folder of its own: all three
    assert "3 done" in capsys.readouterr().out


def test_a_preview_that_cannot_be_written_is_said_of_the_preview_not_of_its_temporary(tmp_path, model_dir, seed,  # noqa: F811
                                                                                        capsys, monkeypatch):  # fmt: skip
    # the warning said "[Errno 30] Read-only file system: '/data/.look.png.te_zo45s.part'"
    from xvertfast.infer import preview

    src = tmp_path / "in"
    write_pngs(src, seed, ["a.png"])

    def read_only(pairs, path, **labels):
        raise OSError(30, "Read-only file system", str(tmp_path / ".look.png.te_zo45s.part"))

    monkeypatch.setattr(preview, "write_preview", read_only)
    assert run(model_dir, src, "-o", tmp_path / "out", "--preview", tmp_path / "look.png") == 0
    err = capsys.readouterr().err
    assert f"warning: preview {tmp_path / 'look.png'} not written: Read-only file system\n" in err and ".part" not in err


def test_an_earlier_output_removed_from_another_place_is_said(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # a rerun of part of the archive into its OUT (enhance data/p1 after enhance data) writes p1's
    # outputs at the top of OUT and removes the earlier ones at OUT/p1 (one output per input):
    # that went without a word. A change of --format (x.png replaces x.dcm at one place) is not said
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["p1/a.png"])
    assert run(model_dir, src, "-o", out) == 0
    capsys.readouterr()
    assert run(model_dir, src / "p1", "-o", out) == 0
    captured = capsys.readouterr()
    assert "1 done (1 with warnings)" in captured.out
    assert (f"warning: {src / 'p1' / 'a.png'}: its earlier output {out / 'p1' / 'a.png'} was removed: this run "
            f"writes it as {out / 'a.png'}") in captured.err
    assert not (out / "p1" / "a.png").exists() and (out / "a.png").exists()
    assert run(model_dir, src / "p1", "-o", out, "--overwrite", "--format", "tiff") == 0
    captured = capsys.readouterr()
    assert not image_warnings(captured.err) and sorted(p.name for p in out.iterdir() if p.is_file() and
                                                    not p.name.startswith(".")) == ["a.tiff"]  # fmt: skip


def test_a_change_of_format_into_a_relative_output_folder_is_not_said_as_a_move(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                                monkeypatch):  # fmt: skip
    # -o out (relative): the ledger's removed output out/a.png never equalled the plan's absolute
    # /.../out/a.tiff, so every --overwrite --format said the input had been given another way
    write_pngs(tmp_path / "in", seed, ["a.png"])
    monkeypatch.chdir(tmp_path)
    assert run(model_dir, "in", "-o", "out") == 0
    capsys.readouterr()
    assert run(model_dir, "in", "-o", "out", "--overwrite", "--format", "tiff") == 0
    captured = capsys.readouterr()
    assert not image_warnings(captured.err) and "with warnings" not in captured.out


def test_a_dry_run_says_that_missing_and_empty_inputs_would_fail(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # a listed file that is gone, a broken link, an empty file: each planned ('0 would fail'), then
    # failed by the run; a run fails them before decoding anything, and so does the plan now
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png"])
    (src / "empty.png").write_bytes(b"")
    (src / "broken.png").symlink_to(tmp_path / "nowhere.png")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{src / 'a.png'}\n{src / 'gone.png'}\n")
    assert run(model_dir, src, f"@{listing}", "-o", out, "--dry-run", "--report", tmp_path / "plan.json") == 1
    said = capsys.readouterr()
    assert "1 to enhance, 0 done already, 3 would fail" in said.out
    for why in (f"{src / 'gone.png'}: no such file or folder", f"{src / 'empty.png'}: empty file (0 bytes)",
                f"{src / 'broken.png'}: a broken symbolic link"):
        assert f"  failed: {why}" in said.err
    assert run(model_dir, src, f"@{listing}", "-o", out, "--report", tmp_path / "run.json") == 1
    plan, ran = (json.loads((tmp_path / name).read_text())["files"] for name in ("plan.json", "run.json"))
    assert {r["input"]: (r["status"], r["error"]) for r in plan if r["status"] == "failed"} == \
        {r["input"]: (r["status"], r["error"]) for r in ran if r["status"] == "failed"}  # fmt: skip


def test_a_file_or_folder_in_the_way_of_an_output_is_said_in_words(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # was a raw "[Errno 17] File exists: '.../out/sub'" (a run's; the dry run planned it) and "Is a directory"
    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png", "sub/b.png", "sub/deeper/c.png"])
    assert run(model_dir, src, "-o", out) == 0
    (out / "a.png").unlink()
    (out / "a.png").mkdir()
    shutil.rmtree(out / "sub")
    (out / "sub").write_text("a file where an output folder goes")
    plan, ran = "0 to enhance, 0 done already, 3 would fail", "0 done, 0 skipped, 3 failed"
    for dry, said in ((["--dry-run"], plan), ([], ran)):
        assert run(model_dir, src, "-o", out, *dry) == 1
        captured = capsys.readouterr()
        assert said in captured.out, captured.out
        assert "Errno" not in captured.err and "Is a directory" not in captured.err, captured.err
        for name in ("sub/b.png", "sub/deeper/c.png"):
            assert f"{src / name}: {out / 'sub'} is a file, so {out / name} cannot" in captured.err, captured.err
        assert f"{src / 'a.png'}: {out / 'a.png'} is a folder" in captured.err, captured.err
    assert (out / "sub").read_text() == "a file where an output folder goes"


def test_an_output_named_as_a_folder_of_other_outputs_is_said(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # in1/x.png and in2/x.png/y.png: out/x.png is a file and a folder at once; the second written
    # failed with a raw "[Errno 17] File exists: '.../out/x.png'", and the dry run planned both
    src = tmp_path / "src"
    write_pngs(src, seed, ["in1/x.png", "in2/x.png/y.png"])
    out = tmp_path / "out"
    plan, ran = "1 to enhance, 0 done already, 1 would fail", "1 done, 0 skipped, 1 failed"
    for dry, said in ((["--dry-run"], plan), ([], ran)):
        assert run(model_dir, src / "in1", src / "in2", "-o", out, *dry) == 1
        captured = capsys.readouterr()
        assert said in captured.out and "Errno" not in captured.err, (captured.out, captured.err)
        assert (f"{src / 'in1' / 'x.png'}: its output {out / 'x.png'} is also the folder that the output "
                f"of {src / 'in2' / 'x.png' / 'y.png'} goes into") in captured.err, captured.err
        assert "give the folder above both" in captured.err
    assert (out / "x.png" / "y.png").is_file()
    # sharded (--shard K/3 puts x.png and x.png/y.png in different shards): each shard saw only its
    # own outputs, so neither refused, and the shard writing second failed (run at once: Errno 17)
    out = tmp_path / "out-sharded"
    owner = next(k for k in (1, 2, 3) if Shard(k, 3).owns("x.png"))
    assert not Shard(owner, 3).owns("x.png/y.png")  # (the case: the two in different shards)
    for k in sorted((1, 2, 3), key=lambda k: k != owner):  # x.png's shard first, as if all ran at once
        for dry in (["--dry-run"], []):
            code = run(model_dir, src / "in1", src / "in2", "-o", out, "--shard", f"{k}/3", *dry)
            captured = capsys.readouterr()
            assert code == (1 if k == owner else 0) and "Errno" not in captured.err, (k, captured.out, captured.err)
            assert (f"{src / 'in1' / 'x.png'}: its output {out / 'x.png'} is also the folder that the output "
                    f"of {src / 'in2' / 'x.png' / 'y.png'} goes into" in captured.err) == (k == owner), captured.err
    assert (out / "x.png" / "y.png").is_file()


def test_other_settings_are_refused_with_the_ways_on_in_the_callers_words(tmp_path):
    """The refusal of other settings offers each way on, as the caller gives it: the recorded settings
    resume (the change a slip: the message names it), overwrite redoes the outputs, a new folder keeps
    them. It said only '--overwrite' or 'a new folder', and said '--overwrite' to a Python caller."""
    from xvertfast._text import cli_running

    JobFolder(str(tmp_path / "out"), {"mode": "spine"}, overwrite=False).close()
    ways = r"; run with the recorded settings to resume, pass {} to redo the outputs with these, or use a new output folder$"
    with pytest.raises(ValueError, match=r"with other settings \(mode 'spine' -> 'full'\)" + ways.format("overwrite=True")):
        JobFolder(str(tmp_path / "out"), {"mode": "full"}, overwrite=False)
    with cli_running({"overwrite"}), pytest.raises(ValueError, match=ways.format("--overwrite")):
        JobFolder(str(tmp_path / "out"), {"mode": "full"}, overwrite=False)
    JobFolder(str(tmp_path / "out"), {"mode": "spine"}, overwrite=False).close()  # the recorded ones resume


@pytest.mark.parametrize("content, problem", [("null", "holds no settings"), ("{not json", "is not valid JSON ("),
                                              ("[]", "holds no settings"), ("{}", "holds no settings")])  # fmt: skip
def test_unreadable_settings_are_refused_naming_the_file_and_the_ways_that_remain(tmp_path, content, problem):
    """A settings file that holds no settings is refused naming it and what is wrong, with overwrite
    or a new folder as the ways on: it said '(the recorded settings are unreadable); run with the
    recorded settings to resume, ...', no file named, and settings none can read offered to resume."""
    from xvertfast._text import cli_running

    out = tmp_path / "out"
    out.mkdir()
    settings_file = out / JOB_FILE
    settings_file.write_text(content)
    ways = r": the settings the outputs in .* were made with are unknown; pass {} to redo them with these " \
           r"settings, or use a new output folder$"  # fmt: skip
    for caller, overwrite in ((contextlib.nullcontext(), "overwrite=True"), (cli_running({"overwrite"}), "--overwrite")):
        with caller, pytest.raises(ValueError) as refused:
            JobFolder(str(out), {"mode": "spine"}, overwrite=False)
        said = str(refused.value)
        assert said.startswith(f"{settings_file} {problem}") and re.search(ways.format(overwrite), said), said
        assert "run with the recorded settings" not in said, said
    JobFolder(str(out), {"mode": "spine"}, overwrite=True).close()  # overwrite takes these settings
    assert json.loads(settings_file.read_text())["settings"] == {"mode": "spine"}
    JobFolder(str(out), {"mode": "spine"}, overwrite=False).close()  # and resumes on them


def test_the_refusals_that_overwrite_lifts_name_it_in_the_callers_words(tmp_path):
    """An output made from another input, and new settings while shards of the recorded ones run,
    are refused naming overwrite as the caller gives it: '--overwrite' was said to Python callers."""
    from xvertfast._text import cli_running
    from xvertfast.io.files import file_state
    from xvertfast.io.shards import Shard

    (tmp_path / "a.png").write_bytes(b"one input")
    (tmp_path / "b.png").write_bytes(b"another input")
    out = tmp_path / "out"
    with JobFolder(str(out), {"mode": "spine"}, overwrite=False) as job:
        (out / "x.png").write_bytes(b"the output of a.png")
        job.finished(str(tmp_path / "a.png"), str(out / "x.png"), file_state(str(tmp_path / "a.png")))
    running = JobFolder(str(out), {"mode": "spine"}, overwrite=False, shard=Shard(1, 2))
    for caller, overwrite in ((contextlib.nullcontext(), "overwrite=True"), (cli_running({"overwrite"}), "--overwrite")):
        with caller:
            state, why = running.state(str(tmp_path / "b.png"), str(out / "x.png"))
            assert state == "refuse" and why.endswith(f"holds the output of another input, {os.path.realpath(tmp_path / 'a.png')} "
                                                      f"({overwrite} replaces it)"), why  # fmt: skip
            with pytest.raises(ValueError, match=re.escape(f"start the shards with new settings ({overwrite}) "
                                                           "once none runs")):  # fmt: skip
                JobFolder(str(out), {"mode": "full"}, overwrite=True, shard=Shard(2, 2))
    running.close()


def test_a_report_names_the_folder_its_relative_inputs_start_from(tmp_path, model_dir, seed, monkeypatch):  # noqa: F811
    """Inputs given relative to the folder the job ran in are listed so in the report (its outputs
    whole): the report, read from elsewhere (a cluster's results copied off), named no file by them
    and did not say where they start; the ledger's start line says it, the report now too."""
    write_pngs(tmp_path / "in", seed, ["p1/a.png"])
    monkeypatch.chdir(tmp_path)
    assert run(model_dir, "in", "-o", "out", "--dry-run", "--report", "plan.json") == 0
    monkeypatch.chdir("/")
    body = json.loads((tmp_path / "plan.json").read_text())
    (record,) = body["files"]
    assert record["input"] == os.path.join("in", "p1", "a.png") and os.path.isabs(record["output"])
    assert os.path.isfile(os.path.join(body["summary"]["cwd"], record["input"]))


def test_a_report_is_written_where_the_folder_the_job_ran_in_is_gone(tmp_path, model_dir, seed, monkeypatch, capsys):  # noqa: F811
    """A job whose working folder was deleted (a scratch folder cleaned while it ran) read it for its
    report at its end: 'error: report ... not written: No such file or directory', exit 1, with every
    output written. The folder is read as the job starts, and said unknown (null) where it cannot be."""
    write_pngs(tmp_path / "in", seed, ["a.png"])
    (tmp_path / "gone").mkdir()
    monkeypatch.chdir(tmp_path / "gone")
    os.rmdir(tmp_path / "gone")
    report = tmp_path / "plan.json"
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out", "--dry-run", "--report", report) == 0, \
        capsys.readouterr().err  # fmt: skip
    monkeypatch.chdir(tmp_path)
    body = json.loads(report.read_text())
    assert body["summary"]["cwd"] is None and [r["status"] for r in body["files"]] == ["planned"], body


@pytest.mark.parametrize("reached", ["folder-link", "hard-link"])
def test_an_abandoned_output_that_is_now_the_input_is_not_removed(tmp_path, reached):
    # a link swapped during the job makes an output being redone the input itself; write_image refuses it,
    # and the clean-up of the failed write removed it: the input deleted (enhance's plan and write check it
    # first; preprocess's write_image has no input to compare, so this is its only guard)
    out = tmp_path / "out"
    with JobFolder(str(out), {"a": 1}, overwrite=False) as job:
        made = {name: out / name for name in ("x.png", "y.png")}
        inputs = {"x.png": tmp_path / "in" / "x.png", "y.png": tmp_path / "elsewhere" / "y.png"}
        for name, path in made.items():
            job.starting(str(inputs[name]), str(path))
            path.write_bytes(path.name.encode())
        if reached == "folder-link":  # in -> out, swapped in: in/x.png is out/x.png
            (tmp_path / "in").symlink_to(out, target_is_directory=True)
        else:
            (tmp_path / "in").mkdir()
            os.link(made["x.png"], tmp_path / "in" / "x.png")
        for name, path in made.items():
            job.abandoned(str(inputs[name]), [str(path)])  # (y.png: not its input, removed)
        assert inputs["x.png"].read_bytes() == b"x.png" and made["x.png"].exists()
        assert not made["y.png"].exists()
    removed = [json.loads(line)["output"] for line in (out / LEDGER_FILE).read_text().splitlines()
               if json.loads(line).get("state") == "removed"]  # fmt: skip
    assert removed == ["y.png"]


def test_the_ledgers_output_in_another_case_is_found_by_its_file_where_inodes_are_all_0(tmp_path, monkeypatch):
    """recorded_input compared a path spelled in another case than the ledger's (OUT/A.PNG, OUT/a.png)
    with os.path.samefile, which on a mount giving every file the inode 0 (sshfs-win, SMB, WebDAV)
    calls any two files one: --report OUT/A.PNG, a file of the user's beside the output a.png, was
    refused as that output. It is the output only where the mount ignores case."""
    from tests.io.test_files import mount_without_inodes
    from xvertfast.io.job_folder import recorded_input

    out, src = tmp_path / "out", tmp_path / "in" / "a.png"
    src.parent.mkdir()
    src.write_bytes(b"input")
    with JobFolder(str(out), {"a": 1}, overwrite=False) as job:
        job.starting(str(src), str(out / "a.png"))
        (out / "a.png").write_bytes(b"output")
        job.finished(str(src), str(out / "a.png"), None)
    (out / "A.PNG").write_bytes(b"the user's")
    with monkeypatch.context() as patched:
        mount_without_inodes(patched, ignoring_case=False)
        assert recorded_input(str(out), str(out / "A.PNG")) is None
        assert recorded_input(str(out), str(out / "a.png")) == os.path.realpath(src)
    os.remove(out / "A.PNG")
    with monkeypatch.context() as patched:  # (where the mount ignores case, A.PNG is the output a.png)
        mount_without_inodes(patched, ignoring_case=True)
        assert recorded_input(str(out), str(out / "A.PNG")) == os.path.realpath(src)


def test_a_report_or_preview_naming_an_input_in_another_case_is_refused_where_case_is_ignored(tmp_path,
                                                                                              monkeypatch):  # fmt: skip
    """The inputs were compared by their resolved paths, and realpath keeps the case as given: on a
    file system that ignores case (macOS's; an SMB share) --preview in/A.PNG was the input in/a.png,
    and --report TODO.TXT the @list todo.txt, yet passed, to be written over them when the job ended."""
    from tests.io.test_files import mount_without_inodes

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"an input")
    (tmp_path / "todo.txt").write_text(f"{tmp_path / 'in' / 'a.png'}\n")
    files, out = discover([str(tmp_path / "in")]), str(tmp_path / "out")
    sources = {os.path.realpath(tmp_path / "todo.txt"): f"the input list {tmp_path / 'todo.txt'}"}
    with monkeypatch.context() as patched:
        mount_without_inodes(patched, ignoring_case=True)
        with pytest.raises(ValueError, match=r"^preview='\S+/in/A.PNG' is one of the inputs; it would be overwritten$"):
            batch._check_side_files(files, out, "same", sources, preview=str(tmp_path / "in" / "A.PNG"))
        with pytest.raises(ValueError, match=r"^report='\S+/TODO.TXT' is the input list \S+/todo.txt, which the job"):
            batch._check_side_files(files, out, "same", sources, report=str(tmp_path / "TODO.TXT"))
        batch._check_side_files(files, out, "same", sources, report=str(tmp_path / "run.json"),
                                preview=str(tmp_path / "in" / "B.PNG"))  # (no such files: new ones)


@pytest.mark.parametrize("below", [False, True], ids=["the-folder", "a-folder-above"])
def test_an_output_folder_through_a_link_to_a_missing_folder_is_said_so(tmp_path, below):
    """-o latest, latest -> a folder not made yet: os.makedirs said 'File exists', as if latest were a file."""
    (tmp_path / "latest").symlink_to(tmp_path / "2026-12-07", target_is_directory=True)
    out = tmp_path / "latest" / "run" if below else tmp_path / "latest"
    with pytest.raises(ValueError) as refused:
        JobFolder(str(out), {"a": 1}, overwrite=False)
    assert str(refused.value) == (f"cannot write into the output folder {out}: {tmp_path / 'latest'} is a link to "
                                  f"{tmp_path / '2026-12-07'}, which does not exist: make that folder first, or give "
                                  "the output folder itself")  # fmt: skip
    assert not (tmp_path / "2026-12-07").exists()


def test_an_output_folder_beside_a_links_target_through_its_dotdot_is_the_one_the_system_opens(
        tmp_path, model_dir, seed, monkeypatch, capsys):  # noqa: F811
    # latest -> runs/c1; -o latest/../archive is runs/archive to the system (it follows latest, then ..), while
    # normpath drops latest/.. as text (./archive): every start was refused as "another folder was put at its
    # path", and outputs planned by that text went into ./archive, beside the folder holding the ledger
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "c1").mkdir(parents=True)
    (tmp_path / "latest").symlink_to(os.path.join("runs", "c1"), target_is_directory=True)
    with JobFolder(os.path.join("latest", "..", "started"), {"a": 1}, overwrite=False) as job:
        job.starting(str(tmp_path / "in" / "x.png"), os.path.join("latest", "..", "started", "x.png"))
    assert (tmp_path / "runs" / "started" / LEDGER_FILE).is_file() and not (tmp_path / "started").exists()
    write_pngs(tmp_path / "in", seed, ["a.png", "b.png"])
    out = os.path.join("latest", "..", "archive")
    assert run(model_dir, "in", "-o", out) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "runs" / "archive").glob("*.png")) == ["a.png", "b.png"]
    assert not (tmp_path / "archive").exists()
    assert run(model_dir, "in", "-o", out) == 0  # (its ledger found where the outputs are: both done)
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 done, 2 skipped, 0 failed")


def test_an_output_folder_that_is_a_file_says_what_to_give(tmp_path):
    """ "output folder x is a file" said what was wrong, not what to do; and then named -o to a
    Python caller too (4787bfa)."""
    from xvertfast._text import cli_running

    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError) as refused:
        JobFolder(str(tmp_path / "afile"), {"a": 1}, overwrite=False)
    assert str(refused.value) == (f"output folder {tmp_path / 'afile'} is a file: give the outputs a folder (made "
                                  "where missing)")  # fmt: skip
    with cli_running(["output"]), pytest.raises(ValueError) as refused:
        JobFolder(str(tmp_path / "afile"), {"a": 1}, overwrite=False)
    assert str(refused.value) == (f"output folder {tmp_path / 'afile'} is a file: give the outputs a folder (-o, made "
                                  "where missing)")  # fmt: skip


def test_an_abandoned_output_is_left_where_the_output_folder_link_now_leads_elsewhere(tmp_path):
    # -o latest -> c1; an output being written as `ln -sfn c2 latest` runs, then its write fails (or Ctrl-C):
    # its clean-up removed latest/x.png by its path, c2's x.png, the output of another job
    c1, c2, latest = tmp_path / "c1", tmp_path / "c2", tmp_path / "latest"
    c1.mkdir()
    c2.mkdir()
    latest.symlink_to(c1, target_is_directory=True)
    with JobFolder(str(latest), {"a": 1}, overwrite=False) as job:
        job.starting(str(tmp_path / "in" / "x.png"), str(latest / "x.png"))
        (c2 / "x.png").write_bytes(b"another job's")
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        job.abandoned(str(tmp_path / "in" / "x.png"), [str(latest / "x.png")])
    assert (c2 / "x.png").read_bytes() == b"another job's"
    from xvertfast.io.job_folder import job_status

    assert job_status(str(c1), "enhance").unfinished == 1  # (left started: its next run redoes it)


@pytest.mark.parametrize("caller", ["python", "cli"])
def test_the_output_folder_is_told_by_what_it_is_not_by_its_path(tmp_path, caller):
    """de56da8 compared the folder's resolved path: a rotation of the folder the job holds (renamed and
    linked again) stopped the job, advising an -o that no longer existed, while another folder made at
    its path (the job's renamed away) was written into, away from the job's lock and ledger. From
    Python the folder to give is said as out_dir, not as an -o never typed."""
    from xvertfast._text import cli_running
    from xvertfast.io.write import OutputFolderMoved

    src = tmp_path / "in.png"
    src.write_bytes(b"an input")
    c1, latest = tmp_path / "c1", tmp_path / "latest"
    c1.mkdir()
    latest.symlink_to(c1, target_is_directory=True)
    with JobFolder(str(latest), {"a": 1}, overwrite=False) as job:
        os.rename(c1, tmp_path / "c1-old")  # mv c1 c1-old; ln -sfn c1-old latest: the same folder
        latest.unlink()
        latest.symlink_to(tmp_path / "c1-old", target_is_directory=True)
        job.starting(str(src), str(latest / "in.png"))  # (not refused)
    today = tmp_path / "today"
    with JobFolder(str(today), {"a": 1}, overwrite=False) as job:
        os.rename(today, tmp_path / "yesterday")  # mv today yesterday; mkdir today: another folder
        today.mkdir()
        with cli_running(["output"]) if caller == "cli" else contextlib.nullcontext(), \
                pytest.raises(OutputFolderMoved) as refused:  # fmt: skip
            job.starting(str(src), str(today / "in.png"))
    if sys.platform.startswith("linux"):  # (where the job's folder is now is told by /proc: see below for elsewhere)
        yesterday = tmp_path / "yesterday"
        give = f"-o {yesterday}" if caller == "cli" else f"out_dir={str(yesterday)!r}"
        assert str(refused.value) == (f"{today / 'in.png'}: not written: the output folder {today} now leads to "
                                      f"{today}, not to {yesterday}, the folder this job holds (a link changed, or "
                                      f"the folder moved, during the job); give {give} to write the rest")
    assert not os.listdir(today)


@pytest.mark.skipif(not {os.open, os.stat, os.unlink} <= os.supports_dir_fd, reason="no folder held (Windows)")
def test_a_folder_swapped_in_at_the_output_path_is_neither_judged_nor_cleaned_for_the_job(tmp_path):
    """The job holds its folder (its fd) from its start, but state() looked for the outputs by their paths:
    with -o latest re-pointed at another job's folder (`ln -sfn c2 latest`) as it planned, c2's x.png was
    taken for this job's, done (the ledger, c1's, says so), though c1's had been removed: skipped, never
    made. The temporaries a killed run left were removed by path too: there, the live ones of c2's job."""
    from xvertfast.io.files import file_state

    src, c1, c2, latest = tmp_path / "in.png", tmp_path / "c1", tmp_path / "c2", tmp_path / "latest"
    src.write_bytes(b"an input")
    c1.mkdir()
    c2.mkdir()
    latest.symlink_to(c1, target_is_directory=True)
    with JobFolder(str(latest), {"a": 1}, overwrite=False) as job:
        job.starting(str(src), str(latest / "x.png"))
        (c1 / "x.png").write_bytes(b"made")
        job.finished(str(src), str(latest / "x.png"), file_state(str(src)))
    os.remove(c1 / "x.png")  # (the job's output gone: the next run makes it again)
    (c2 / "x.png").write_bytes(b"another job's")
    (c2 / ".x.png.abcd1234.part").write_bytes(b"another job's, being written")
    (c1 / ".y.png.abcd1234.part").write_bytes(b"a killed run's")
    with JobFolder(str(latest), {"a": 1}, overwrite=False) as job:
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        assert job.state(str(src), str(latest / "x.png")) == ("new", None)  # (c1's is gone)
        assert job.remove_stale_parts([str(latest / "x.png"), str(latest / "y.png")]) == 1
    assert sorted(os.listdir(c2)) == [".x.png.abcd1234.part", "x.png"]
    assert ".y.png.abcd1234.part" not in os.listdir(c1)


def test_closing_the_folder_waits_for_a_ledger_line_being_written(tmp_path):
    """close() closed the ledger without the lock its writers take: a writer's line (finished, abandoned)
    being written as the job closed went to a closed fd, or to the file the system had given its number
    since. close() now waits for the line, which is whole in the ledger."""
    import threading

    from xvertfast.io.files import file_state

    src, out = tmp_path / "in.png", tmp_path / "out"
    src.write_bytes(b"an input")
    job = JobFolder(str(out), {"a": 1}, overwrite=False)
    job.starting(str(src), str(out / "x.png"))
    (out / "x.png").write_bytes(b"made")
    writing, go_on, failed = threading.Event(), threading.Event(), []
    write = job._write

    def held_in_the_middle(text, durable):
        writing.set()
        assert go_on.wait(60)
        write(text, durable)

    job._write = held_in_the_middle

    def finish():
        try:
            job.finished(str(src), str(out / "x.png"), file_state(str(src)))
        except Exception as exc:  # (the old code's: a write to the closed ledger)
            failed.append(exc)

    writer = threading.Thread(target=finish)
    writer.start()
    assert writing.wait(60)
    closer = threading.Thread(target=job.close)
    closer.start()
    closer.join(0.2)
    still_closing = closer.is_alive()
    go_on.set()
    writer.join(60)
    closer.join(60)
    assert still_closing and not failed, failed
    lines = [json.loads(line) for line in (out / LEDGER_FILE).read_text().splitlines()]
    assert lines[-1]["state"] == "done" and lines[-1]["output"] == "x.png", lines


def _proc_says(monkeypatch, path):
    """The system's name for an open file (Linux's /proc/self/fd) replaced by ``path`` (None: no name, as
    where there is no /proc); other links read as they are."""
    readlink = os.readlink

    def patched(link, *args, **kwargs):
        if str(link).startswith("/proc/self/fd/"):
            if path is None:
                raise FileNotFoundError(2, "No such file or directory", link)
            return path
        return readlink(link, *args, **kwargs)

    monkeypatch.setattr(os, "readlink", patched)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="told by /proc here (F_GETPATH on macOS)")
@pytest.mark.parametrize("caller", ["python", "cli", "python-with-command"])
@pytest.mark.parametrize("then", ["another-made", "removed"])
def test_an_output_folder_replaced_where_its_new_place_cannot_be_told_is_not_said_to_be_the_new_one(
        tmp_path, monkeypatch, then, caller):  # fmt: skip
    """Where the system names no open file (no /proc, nor F_GETPATH), the refusal read "the output folder
    today is no longer the folder this job holds, which was /abs/today": the new folder's path given as
    the old one's, and nothing said of what to do. A Python caller that gave the command which started
    the job (status gives it) is told -o, as its stop line says "the same command resumes"."""
    from xvertfast._text import cli_running
    from xvertfast.io.write import OutputFolderMoved

    today = tmp_path / "today"
    command = "xvertfast enhance in -o today" if caller == "python-with-command" else None
    with JobFolder(str(today), {"a": 1}, overwrite=False, command=command) as job:
        os.rename(today, tmp_path / "yesterday")
        if then == "another-made":
            today.mkdir()
        with monkeypatch.context() as patched, pytest.raises(OutputFolderMoved) as refused, \
                cli_running(["output"]) if caller == "cli" else contextlib.nullcontext():  # fmt: skip
            _proc_says(patched, None)
            job.starting(str(tmp_path / "in.png"), str(today / "in.png"))
    there = "another folder is now" if then == "another-made" else "no folder is now"
    give = "give the folder where it is now as out_dir" if caller == "python" else "give -o the folder where it is now"
    assert str(refused.value) == (f"{today / 'in.png'}: not written: {there} at the output folder's path {today}; the "
                                  f"folder this job holds (with its ledger) was moved or removed during the job: {give} "
                                  "to write the rest")  # fmt: skip


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="told by /proc here (F_GETPATH on macOS)")
def test_where_the_job_folder_is_now_is_not_taken_from_a_path_that_is_not_it(tmp_path, monkeypatch):
    """A path the system gives an open file may be a name kept from before a move (as macOS's F_GETPATH may
    give): -o latest -> c1, c1 renamed and another c1 made, latest re-pointed to c2, the refusal said
    "give -o c1", the new c1, not the job's."""
    from xvertfast.io.write import OutputFolderMoved

    c1, c2, latest = tmp_path / "c1", tmp_path / "c2", tmp_path / "latest"
    c1.mkdir()
    c2.mkdir()
    latest.symlink_to(c1, target_is_directory=True)
    with JobFolder(str(latest), {"a": 1}, overwrite=False) as job:
        os.rename(c1, tmp_path / "c1-old")
        c1.mkdir()
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        with monkeypatch.context() as patched, pytest.raises(OutputFolderMoved) as refused:
            _proc_says(patched, str(c1 / LEDGER_FILE))  # (its name from before the move)
            job.starting(str(tmp_path / "in.png"), str(latest / "in.png"))
    assert str(c1) + " " not in str(refused.value) and f"{str(c1)!r}" not in str(refused.value)
    assert "give the folder where it is now as out_dir" in str(refused.value)


def test_an_output_folder_replaced_while_its_locks_are_taken_is_refused(tmp_path, monkeypatch):
    """The folder's (device, inode) was read after its locks were taken, by its path: a folder renamed away
    and another made at its path meanwhile was taken for the job's, its outputs written there, away from
    the lock and ledger the job holds (in the folder renamed)."""
    today = tmp_path / "today"
    take_locks = JobFolder._take_locks

    def swapped_meanwhile(self):
        take_locks(self)
        os.rename(today, tmp_path / "yesterday")
        today.mkdir()

    monkeypatch.setattr(JobFolder, "_take_locks", swapped_meanwhile)
    with pytest.raises(ValueError) as refused:
        JobFolder(str(today), {"a": 1}, overwrite=False)
    assert str(refused.value) == (f"cannot write into the output folder {today}: another folder was put at its path "
                                  "(the folder moved, or a link changed) as the job started; run it again")
    assert not os.listdir(today)
    monkeypatch.undo()
    lock = hold_lock(str(tmp_path / "yesterday" / LOCK_FILE), patience=0)  # (released)
    assert lock is not None
    lock.close()


def test_an_output_folder_an_automount_mounts_at_the_lock_is_not_taken_for_another(tmp_path, monkeypatch):
    """-o /mnt/nas, an automount point (autofs, x-systemd.automount) not yet mounted: stat of the
    path as given sees the mount's stub (stat does not trigger an automount of its last part), the
    lock's open mounts the share, so the folder read before the locks was another device than after
    and a first job was refused as "another folder was put at its path". Emulated: os.stat of the
    path without a trailing separator sees a stub until the folder is opened into (the lock), as
    the kernel does; with one (what triggers the mount) it sees the share."""
    nas = str(tmp_path / "nas")
    os.mkdir(nas)
    real_stat, mounted = os.stat, []
    stub = real_stat(str(tmp_path))  # (another folder: the stub's identity)
    take_locks = JobFolder._take_locks

    def automount_stat(path, *args, **kwargs):
        if os.fspath(path) == nas and not mounted:
            return stub
        if os.fspath(path) == os.path.join(nas, ""):
            mounted.append(True)
        return real_stat(path, *args, **kwargs)

    def mounting(self):
        mounted.append(True)
        take_locks(self)

    monkeypatch.setattr(os, "stat", automount_stat)
    monkeypatch.setattr(JobFolder, "_take_locks", mounting)
    job = JobFolder(nas, {"a": 1}, overwrite=False)
    job.close()


def _an_earlier_runs_tif_behind_a_link(tmp_path):
    """-o latest -> c1, whose ledger records x.tif, made from the input x.png by an earlier run; c2 holds
    another job's x.tif. Returns the input and the three paths."""
    src = tmp_path / "x.png"
    src.write_bytes(b"an input")
    c1, c2, latest = tmp_path / "c1", tmp_path / "c2", tmp_path / "latest"
    c2.mkdir()
    c1.mkdir()
    latest.symlink_to(c1, target_is_directory=True)
    with JobFolder(str(latest), {"a": 1}, overwrite=False) as job:
        job.starting(str(src), str(latest / "x.tif"))
        (c1 / "x.tif").write_bytes(b"an earlier format")
        job.finished(str(src), str(latest / "x.tif"), None, sole=True)
    (c2 / "x.tif").write_bytes(b"another job's")
    return src, c1, c2, latest


def test_an_earlier_format_is_not_removed_where_the_output_folder_link_now_leads_elsewhere(tmp_path):
    # -o latest -> c1, whose ledger records x.tif; this run writes x.png, then `ln -sfn c2 latest` runs before
    # finished(sole=True): it removed latest/x.tif by its path, c2's x.tif, another job's output
    src, c1, c2, latest = _an_earlier_runs_tif_behind_a_link(tmp_path)
    with JobFolder(str(latest), {"a": 1}, overwrite=True) as job:
        job.starting(str(src), str(latest / "x.png"))
        (c1 / "x.png").write_bytes(b"this run's")
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        assert job.finished(str(src), str(latest / "x.png"), None, sole=True) == []
    assert (c2 / "x.tif").read_bytes() == b"another job's"
    assert (c1 / "x.tif").exists()  # (still recorded: a run into c1 removes it)


@needs_folder_fd
@pytest.mark.parametrize("removal", ["earlier-format", "abandoned"])
def test_an_output_is_removed_from_the_folder_checked_where_the_link_is_swapped_right_after_the_check(
        tmp_path, monkeypatch, removal):  # fmt: skip
    """finished(sole=True) (an earlier --format's output) and abandoned (an output being redone whose write
    failed) looked where -o latest leads (_moved), then removed by the path: `ln -sfn c2 latest` between the
    two removed c2's x.tif, another job's output, and left the job's own in c1, recorded as removed."""
    src, c1, c2, latest = _an_earlier_runs_tif_behind_a_link(tmp_path)
    moved = JobFolder._moved

    def swapped_right_after(self):
        where = moved(self)
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        return where

    with JobFolder(str(latest), {"a": 1}, overwrite=True) as job:
        out = latest / ("x.png" if removal == "earlier-format" else "x.tif")
        job.starting(str(src), str(out))
        monkeypatch.setattr(JobFolder, "_moved", swapped_right_after)
        if removal == "earlier-format":
            (c1 / "x.png").write_bytes(b"this run's")
            assert job.finished(str(src), str(out), None, sole=True) == [str(latest / "x.tif")]
        else:
            job.abandoned(str(src), [str(out)])
    assert (c2 / "x.tif").read_bytes() == b"another job's"
    assert not (c1 / "x.tif").exists()  # (the job's own, recorded removed)


@needs_folder_fd
def test_the_ledger_is_opened_in_the_folder_checked_where_another_is_put_at_its_path_right_after(
        tmp_path, monkeypatch):  # fmt: skip
    """The folder's (device, inode) was looked at after its locks were taken, then its ledger opened by its
    path: a folder renamed away and another made at its path between the two had the ledger (and the settings)
    written in the other folder, away from the job's lock, and its outputs' lines with it. The start is now
    refused (see test_a_started_folder_swapped_as_a_job_starts_has_its_own_ledger_and_settings_read) before it
    writes anything, in either folder."""
    today, yesterday = tmp_path / "today", tmp_path / "yesterday"
    find_ledgers = JobFolder._find_ledgers

    def swapped_right_after(self):
        if not yesterday.exists():
            os.rename(today, yesterday)
            today.mkdir()
        return find_ledgers(self)

    monkeypatch.setattr(JobFolder, "_find_ledgers", swapped_right_after)
    with pytest.raises(ValueError, match="another folder was put at its path"):
        JobFolder(str(today), {"a": 1}, overwrite=False)
    assert not os.listdir(today)  # (its settings too: a folder of settings without a ledger is an old version's)
    assert not {JOB_FILE, LEDGER_FILE} & set(os.listdir(yesterday))  # (only the locks it took)


@pytest.mark.parametrize("fd", ["as the system gives", "no O_PATH", "none"])
def test_removals_ledger_and_settings_go_to_the_folder_by_each_kind_of_handle(tmp_path, monkeypatch, fd):
    """_open_folder holds the folder by an O_PATH fd where there is one (Linux), by a readable fd elsewhere
    (macOS, the BSDs: it is listed through another opened from it), and not at all on Windows, where the
    paths serve: each way, an earlier format's output and an abandoned one are removed, and the ledger
    and settings are written and read back."""
    from xvertfast.io import job_folder

    if fd == "none":
        monkeypatch.setattr(job_folder, "_open_folder", lambda path: None)
    elif not {os.open, os.unlink, os.rename, os.stat} <= os.supports_dir_fd:
        pytest.skip("no folder fd here")
    elif fd == "no O_PATH":
        monkeypatch.delattr(job_folder.os, "O_PATH", raising=False)
    src, other, out = tmp_path / "x.png", tmp_path / "y.png", tmp_path / "out"
    src.write_bytes(b"an input")
    other.write_bytes(b"another input")
    with JobFolder(str(out), {"a": 1}, overwrite=False) as job:
        assert (job._dir_fd is None) == (fd == "none")  # (the way under test taken)
        job.starting(str(src), str(out / "x.tif"))
        (out / "x.tif").write_bytes(b"an earlier format")
        job.finished(str(src), str(out / "x.tif"), None, sole=True)
        job.starting(str(other), str(out / "y.png"))
        (out / "y.png").write_bytes(b"half written")
        job.abandoned(str(other), [str(out / "y.png")])
    assert not (out / "y.png").exists()
    with JobFolder(str(out), {"a": 1}, overwrite=False) as job:
        assert job.recorded(str(out / "x.tif")) and not job.recorded(str(out / "y.png"))
        job.starting(str(src), str(out / "x.png"))
        (out / "x.png").write_bytes(b"this run's")
        assert job.finished(str(src), str(out / "x.png"), None, sole=True) == [str(out / "x.tif")]
    assert sorted(os.listdir(out)) == sorted([JOB_FILE, LEDGER_FILE, LOCK_FILE, "x.png"])
    with pytest.raises(ValueError, match="with other settings"):  # (the settings read back)
        JobFolder(str(out), {"a": 2}, overwrite=False)


@needs_folder_fd
@pytest.mark.parametrize("put", ["a new folder", "another job's folder"])
def test_a_started_folder_swapped_as_a_job_starts_has_its_own_ledger_and_settings_read(tmp_path, monkeypatch, put):
    """Since 1e97544 the ledger is opened (and the settings written) in the folder checked, but the ledgers
    were still listed and read, the settings read and the ledger's last byte looked at by the path: with
    `mv today yesterday; mkdir today` as a job started on a folder with a line in its ledger, the start died
    with a bare FileNotFoundError; another job's folder moved in had its settings and ledger read (its
    settings refused the job's, or its outputs taken for the job's) while the lines went to the job's.
    Now read in the folder held, and the start refused, as a swap before the locks is: nothing written."""
    today, yesterday, other = tmp_path / "today", tmp_path / "yesterday", tmp_path / "other"
    src = tmp_path / "x.png"
    src.write_bytes(b"an input")
    with JobFolder(str(today), {"a": 1}, overwrite=False) as job:
        job.starting(str(src), str(today / "x.png"))
        (today / "x.png").write_bytes(b"an output")
        job.finished(str(src), str(today / "x.png"), None)
    with JobFolder(str(other), {"a": 2}, overwrite=False) as job:
        job.starting(str(src), str(other / "y.png"))
    others = {name: (other / name).read_bytes() for name in os.listdir(other)}
    find_ledgers = JobFolder._find_ledgers

    def swapped_right_before(self):
        if not yesterday.exists():
            os.rename(today, yesterday)
            if put == "a new folder":
                today.mkdir()
            else:
                os.rename(other, today)
        return find_ledgers(self)

    monkeypatch.setattr(JobFolder, "_find_ledgers", swapped_right_before)
    with pytest.raises(ValueError, match=f"output folder {re.escape(str(today))}: another folder was put at its "
                                         r"path \(the folder moved, or a link changed\) as the job started; run it "
                                         "again$"):  # fmt: skip
        JobFolder(str(today), {"a": 1}, overwrite=False)
    assert {name: (today / name).read_bytes() for name in os.listdir(today)} == (others if put != "a new folder"
                                                                                 else {})  # fmt: skip
    assert json.loads((yesterday / JOB_FILE).read_text())["settings"] == {"a": 1}
    lines = [json.loads(line) for line in (yesterday / LEDGER_FILE).read_text().splitlines()]
    assert [line.get("run") or line["state"] for line in lines] == ["start", "writing", "done"], lines


@pytest.mark.parametrize("when", ["_find_ledgers", "_load_ledgers"])
@pytest.mark.parametrize("how", ["moved in", "link changed"])
def test_another_job_s_folder_put_at_the_path_as_a_job_starts_has_none_of_its_outputs_taken_as_done(
        tmp_path, monkeypatch, how, when):  # fmt: skip
    """Since 1e0d87a the start carried on in the folder it holds after a swap, while state() looks by the
    path: `enhance in -o today`, `enhance in -o other --brightness original`, then `enhance in -o today`
    with `mv today yesterday; mv other today` (or `ln -sfn other latest` for -o latest) as it listed its
    ledgers said "0 done, 3 skipped", exit 0, with today holding the other settings' outputs. Refused
    where the swap comes as it lists its ledgers, or as it reads them (after its settings are settled)."""
    from xvertfast.io.files import file_state

    src = tmp_path / "x.png"
    src.write_bytes(b"an input")
    for name, settings in (("c1", {"brightness": "auto"}), ("c2", {"brightness": "original"})):
        with JobFolder(str(tmp_path / name), settings, overwrite=False) as job:
            job.starting(str(src), str(tmp_path / name / "x.png"))
            (tmp_path / name / "x.png").write_bytes(f"made with {settings}".encode())
            job.finished(str(src), str(tmp_path / name / "x.png"), file_state(str(src)))
    path = tmp_path / ("today" if how == "moved in" else "latest")
    if how == "moved in":
        os.rename(tmp_path / "c1", path)
    else:
        path.symlink_to("c1", target_is_directory=True)
    held, others = folder_state(tmp_path / "c1" if how != "moved in" else path), folder_state(tmp_path / "c2")
    hooked = getattr(JobFolder, when)

    def swapped_right_before(self, *args):
        if (tmp_path / "c2").exists():
            if how == "moved in":
                os.rename(path, tmp_path / "yesterday")
                os.rename(tmp_path / "c2", path)
            else:
                (tmp_path / "next").symlink_to("c2", target_is_directory=True)
                os.rename(tmp_path / "next", path)  # (ln -sfn)
        return hooked(self, *args)

    monkeypatch.setattr(JobFolder, when, swapped_right_before)
    states = []
    with pytest.raises(ValueError, match="another folder was put at its path"):
        with JobFolder(str(path), {"brightness": "auto"}, overwrite=False) as job:
            states.append(job.state(str(src), str(path / "x.png")))  # (the old code: "done", skipped)
    assert states == []
    assert (path / "x.png").read_bytes() == b"made with {'brightness': 'original'}"
    assert folder_state(tmp_path / ("yesterday" if how == "moved in" else "c1")) == held  # (no start line)
    assert folder_state(path) == others


@pytest.mark.parametrize("where", ["above", "absolute"])
def test_a_ledger_line_naming_a_file_outside_the_folder_never_has_it_removed(tmp_path, where):
    """finished(sole=True) removed every file the ledgers name as another output of the input, by its key joined
    to the folder: a line naming ../victim.png, or the absolute path of a file (a ledger edited by hand, or
    copied in from elsewhere), removed that file outside the output folder. No job writes such a key (an
    output that would leave the folder is refused)."""
    src, victim, out = tmp_path / "x.png", tmp_path / "victim.png", tmp_path / "out"
    src.write_bytes(b"an input")
    victim.write_bytes(b"a file of the user's")
    with JobFolder(str(out), {"a": 1}, overwrite=False):
        pass
    key = "../victim.png" if where == "above" else str(victim)
    with open(out / LEDGER_FILE, "a") as ledger:
        ledger.write(json.dumps({"output": key, "input": os.path.realpath(src), "state": "done", "t": 1}) + "\n")
    with JobFolder(str(out), {"a": 1}, overwrite=False) as job:
        job.starting(str(src), str(out / "x.png"))
        (out / "x.png").write_bytes(b"this run's")
        assert job.finished(str(src), str(out / "x.png"), None, sole=True) == []
    assert victim.read_bytes() == b"a file of the user's"


def test_a_ledger_key_with_a_drive_or_separator_in_a_part_is_outside_the_folder_on_windows(monkeypatch):
    """_inside looked for a drive in the whole key only: on Windows a line naming sub/C:v.png passed, and its
    removal (the key joined to the folder part by part) went to C:v.png, in drive C's working folder, outside
    the output folder; sub\\..\\..\\v.png (one part, to a "/" split) left it likewise. Windows simulated:
    ntpath as os.path."""
    import ntpath

    from xvertfast.io import job_folder

    assert ntpath.join("D:\\out", "sub", "C:v.png") == "C:v.png"  # (what the removal would have named)
    keys = ["sub/C:v.png", "C:v.png", "C:/v.png", "sub\\..\\..\\v.png", "../v.png", "sub/../../v.png", "/v.png",
            "\\\\host\\share\\v.png", "sub/v.png", "v.png", "a b/c.d.png"]
    with monkeypatch.context() as windows:
        windows.setattr(job_folder.os, "path", ntpath)
        inside = {key: job_folder._inside(key) for key in keys}
    assert inside == {key: key in ("sub/v.png", "v.png", "a b/c.d.png") for key in keys}
    if os.name != "nt":  # (on POSIX a colon and a backslash are a name's characters: such a file is inside)
        assert job_folder._inside("sub/C:v.png") and job_folder._inside("a\\b.png")
    # an empty part (a folder's key, sub/; a doubled separator) names no file in the folder: refused, not
    # left to the system's isabs ("/v.png" is not absolute to Python 3.13's ntpath)
    assert not any(job_folder._inside(key) for key in ("sub/", "sub//v.png", "/v.png", "v.png/"))


@pytest.mark.parametrize("how", ["relative", "chain"])
def test_a_link_to_a_missing_folder_is_said_by_where_it_leads_not_by_its_text(tmp_path, how):
    """The link's text was said as it was: a relative target read "latest is a link to 2026-12-07" (from
    where?), and a chain "a link to prev", though prev exists (a link leading nowhere itself)."""
    if how == "chain":
        (tmp_path / "prev").symlink_to(tmp_path / "2026-12-07", target_is_directory=True)
    (tmp_path / "latest").symlink_to("prev" if how == "chain" else "2026-12-07", target_is_directory=True)
    with pytest.raises(ValueError) as refused:
        JobFolder(str(tmp_path / "latest"), {"a": 1}, overwrite=False)
    assert f"{tmp_path / 'latest'} is a link to {tmp_path / '2026-12-07'}, which does not exist" in str(refused.value)


@pytest.mark.parametrize("link", ["to-itself", "a-b-a", "through-a-file", "through-a-loop"])
def test_an_output_folder_through_a_link_no_folder_made_would_mend_is_said_so(tmp_path, link):
    """A link that loops, or one through a file, was said to lead to a folder that does not exist, "make that
    folder first": for a loop the link itself ("latest is a link to .../latest"), through a file impossible.
    A link through another that loops (latest -> loop/x, loop -> loop) was said to loop back on itself."""
    latest = tmp_path / "latest"
    if link == "to-itself":
        latest.symlink_to("latest")
    elif link == "a-b-a":
        (tmp_path / "prev").symlink_to("latest")
        latest.symlink_to("prev")
    elif link == "through-a-loop":
        (tmp_path / "loop").symlink_to("loop")
        latest.symlink_to("loop/x")
    else:
        (tmp_path / "scan.png").write_bytes(b"an image")
        latest.symlink_to(tmp_path / "scan.png" / "run", target_is_directory=True)
    with pytest.raises(ValueError) as refused:
        JobFolder(str(latest / "sub"), {"a": 1}, overwrite=False)
    if link == "through-a-file":
        why = (f"{latest} is a link to {tmp_path / 'scan.png' / 'run'}, which cannot be made: {tmp_path / 'scan.png'} "
               "is a file: re-point the link")  # fmt: skip
    elif link == "through-a-loop":
        why = (f"{latest} is a link to {tmp_path / 'loop' / 'x'}, which leads through a link that loops "
               f"({tmp_path / 'loop'}: a link to itself, or a -> b -> a), leading to no folder: re-point one of them")
    else:
        why = (f"{latest} is a link that loops back on itself (a link to itself, or a -> b -> a), leading to no "
               "folder: remove or re-point it")  # fmt: skip
    assert str(refused.value) == (f"cannot write into the output folder {latest / 'sub'}: {why}, or give the output "
                                  "folder itself")  # fmt: skip
    assert sorted(os.listdir(tmp_path)) == sorted(["latest"] + {"a-b-a": ["prev"], "through-a-file": ["scan.png"],
                                                                "through-a-loop": ["loop"]}.get(link, []))  # fmt: skip
