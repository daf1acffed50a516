"""An evaluation interrupted while its report is written: all of the report's files or none.

A Ctrl-C once every image was scored left summary.md, summary.csv and scores.csv without
report.html or boxplots.png, and said "the same command scores only the rest"; a reader could
take the leftover summary.md for the result, and a rerun that added a metric, cut short there,
left the new tables beside the earlier run's page and plots. A kill -9 or a full disk among the
renames that put the files in place left such a mix too: the earlier report's files are removed
first, so one cut there leaves one run's files and no report.html.
"""

from __future__ import annotations

import copy
import errno
import os
import pickle
import signal
import subprocess
import sys
import tempfile

import pytest

from tests.eval.test_evaluate import check_report
from tests.eval.test_journal import Counted, write_images
from xvertfast.cli import main
from xvertfast.eval import _report_files, report

CUT_SHORT = "the report was cut short; the same command writes it again (no image is scored again)"


def args(images, out, metrics="entropy", pictures=1):
    return ["evaluate", str(images), "-o", str(out), "--methods", "identity,clahe", "--metrics", metrics,
            "--pictures", str(pictures), "-q"]  # fmt: skip


def parts_left(out) -> list:
    """The hidden folders a report was drawn in that are still there (write_report removes its own)."""
    return list(out.glob(".xvertfast-report-*"))


def shown(folder) -> dict[str, bytes]:
    """The report as a reader finds it: every file but the hidden ones (journal, pictures, lock)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    found[os.path.relpath(path, folder)] = f.read()
    return found


def interrupt_at(monkeypatch, step: str, error=KeyboardInterrupt):
    """Makes the report's ``step`` (a function of report.py, or of _report_files.py where it is
    defined there) raise ``error`` on its first call."""
    def cut(*args, **kwargs):
        raise error()

    monkeypatch.setattr(_report_files if step in vars(_report_files) else report, step, cut)


@pytest.mark.parametrize("step", ["_boxplots", "_grid", "_html"])
def test_a_first_report_cut_short_leaves_none_of_its_files(tmp_path, seed, capsys, monkeypatch, step):
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    with monkeypatch.context() as patch:
        interrupt_at(patch, step)
        assert main(args(images, out)) == 130
    err = capsys.readouterr().err
    assert CUT_SHORT in err and "scores only the rest" not in err, err
    assert shown(out) == {}  # no summary.md to be taken for the result
    assert not parts_left(out)  # before any rerun, which would remove them itself
    counted = Counted()  # the rerun writes the report and scores nothing
    monkeypatch.setattr("xvertfast.eval.baselines.clahe", counted)
    assert main(args(images, out)) == 0
    assert counted.calls == 0
    check_report(out)
    assert [name for name in os.listdir(out) if name.startswith(".xvertfast-report")] == []


@pytest.mark.parametrize("step", ["_boxplots", "_grid", "_html"])
def test_a_rerun_cut_short_in_its_report_leaves_the_earlier_report_as_it_was(tmp_path, seed, capsys, monkeypatch,
                                                                              step):  # fmt: skip
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out)) == 0
    earlier = shown(out)
    capsys.readouterr()
    with monkeypatch.context() as patch:  # a metric added: its report is cut short
        interrupt_at(patch, step)
        assert main(args(images, out, "entropy,tenengrad")) == 130
    err = capsys.readouterr().err
    assert CUT_SHORT in err and "holds an earlier run's report, left as it was" in err, err
    assert shown(out) == earlier
    assert not parts_left(out)
    assert main(args(images, out, "entropy,tenengrad")) == 0
    check_report(out)
    assert "Tenengrad" in (out / "summary.md").read_text()


def test_a_report_cut_short_says_that_the_failed_images_are_tried_again(tmp_path, seed, capsys, monkeypatch):
    # they are not journalled: "no image is scored again" alone would promise what the rerun does not do
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    interrupt_at(monkeypatch, "_html")
    assert main(args(images, out)) == 130
    err = capsys.readouterr().err
    assert ("the report was cut short; the same command writes it again (no image is scored again; the image that "
            "failed is tried again)") in err, err  # fmt: skip


def test_an_import_cut_short_by_ctrl_c_in_the_report_is_an_interruption(tmp_path, seed, capsys, monkeypatch):
    """A Ctrl-C while matplotlib loaded one of its compiled modules (pybind11's) came out as
    ImportError('initialization failed'): 'error: initialization failed', exit 2."""
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"

    def import_cut(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(report, "_boxplots", import_cut)
    assert main(args(images, out)) == 130
    err = capsys.readouterr().err
    assert CUT_SHORT in err and "error:" not in err, err
    assert shown(out) == {}
    assert not parts_left(out)


def test_a_missing_module_in_the_report_is_still_an_error(tmp_path, seed, capsys, monkeypatch):
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"

    def missing(*args, **kwargs):
        raise ImportError("no module named 'matplotlib.backends._backend_agg'")

    monkeypatch.setattr(report, "_boxplots", missing)
    assert main(args(images, out)) == 2
    assert "error: no module named" in capsys.readouterr().err
    assert shown(out) == {}
    assert not parts_left(out)


def test_ctrl_c_while_the_files_are_put_in_place_waits_for_them(tmp_path, seed, capsys, monkeypatch):
    """A signal among the renames that put the report's files in place is held until they are all
    there: the report is whole, and said to be."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out)) == 0
    capsys.readouterr()
    move, sent = _report_files._put_in_place, []

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # (handled at once: raises KeyboardInterrupt here where not held)
        sent.append(True)
        return move(*args, **kwargs)

    monkeypatch.setattr(_report_files, "_put_in_place", signalled)
    assert main(args(images, out, "entropy,tenengrad")) == 130
    assert sent
    err = capsys.readouterr().err
    assert "interrupted once the report was written: it is complete" in err and CUT_SHORT not in err, err
    check_report(out)
    assert "Tenengrad" in (out / "summary.md").read_text()


def test_the_files_a_killed_report_left_are_removed_by_the_next_run(tmp_path, seed):
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"
    assert main(args(images, out)) == 0
    left = out / ".xvertfast-report-k1ll3d.part"  # kill -9 while the report was drawn
    (left / "grid").mkdir(parents=True)
    (left / "summary.md").write_text("half")
    assert main(args(images, out)) == 0
    assert not left.exists()
    check_report(out)


def fail_moves_into_place(monkeypatch, at: int, error=errno.ENOSPC):
    """Makes the ``at``-th rename out of the report's hidden folder fail with ``error`` (a full disk),
    naming both files as os.replace does."""
    rename, moves = os.replace, []

    def failing(src, dst, *args, **kwargs):
        if ".xvertfast-report-" in str(src) and ".xvertfast-report-" not in str(dst):
            moves.append(dst)
            if len(moves) == at:
                raise OSError(error, os.strerror(error), src, None, dst)
        return rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    return moves


def refuse_removing(monkeypatch, name: str) -> None:
    """Makes os.remove refuse (EACCES) any file called ``name``, as a file the user cannot delete:
    the other removals go on as before."""
    remove = os.remove

    def refused(path, *args, **kwargs):
        if os.path.basename(path) == name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return remove(path, *args, **kwargs)

    monkeypatch.setattr(os, "remove", refused)


def rerun_refusing_to_remove(name: str, tmp_path, seed, capsys, monkeypatch):
    """A report of two images, then the same run with a metric added while the earlier report's
    ``name`` cannot be removed, which fails (exit 2): the images, the folder, the earlier report
    as :func:`shown` gave it, and what the rerun wrote to stderr."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out)) == 0
    earlier = shown(out)
    capsys.readouterr()
    with monkeypatch.context() as patch:
        refuse_removing(patch, name)
        assert main(args(images, out, "entropy,tenengrad")) == 2
    return images, out, earlier, capsys.readouterr().err


def report_with_a_second_picture(tmp_path, seed, capsys):
    """A report of two images with a picture of each, its output read off: the images, the folder
    and the second picture, which a rerun with ``--pictures 1`` removes."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out, pictures=2)) == 0
    (second,) = [p for p in (out / "grid").iterdir() if p.name.startswith("001_")]
    capsys.readouterr()
    return images, out, second


def test_a_full_disk_among_the_moves_says_the_report_is_incomplete(tmp_path, seed, capsys, monkeypatch):
    """A full disk on the third rename of a rerun that added a metric left its new pictures and
    tables beside the earlier summary, plots and page, and said only '[Errno 28] No space left on
    device'. The earlier report's files are removed before the moves: the folder holds this run's
    first files alone, no page, and the error says so."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out)) == 0
    capsys.readouterr()
    with monkeypatch.context() as patch:
        moves = fail_moves_into_place(patch, at=3)
        assert main(args(images, out, "entropy,tenengrad")) == 2
    assert len(moves) == 3
    err = capsys.readouterr().err
    assert (f"error: {out}: the report could not be put in place (summary.csv: "
            f"{os.strerror(errno.ENOSPC)}); it holds no whole report (no report.html): 7 of the earlier report's files "
            "were removed and 2 of this run's 7 files are in place; the same command writes it again") in err, err
    assert sorted(shown(out)) == ["grid/000_img0.png", "scores.csv"]
    assert not parts_left(out)
    assert main(args(images, out, "entropy,tenengrad")) == 0
    check_report(out)
    assert "Tenengrad" in (out / "summary.md").read_text()


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_an_error_putting_the_report_in_place_says_the_reason_alone_of_its_kind_and_errno(tmp_path, monkeypatch,
                                                                                          error):  # fmt: skip
    """It read "[Errno 28] rep: the report could not be put in place ...", where the package's other errors
    say the reason alone; its kind and errno stay (a full disk is still one, a refusal a PermissionError)."""
    from xvertfast.io.write import disk_full

    parts, out = tmp_path / ".xvertfast-report-x.part", tmp_path / "rep"
    parts.mkdir()
    out.mkdir()
    for name in _report_files.REPORT_FILES:
        (parts / name).write_text("drawn")
    fail_moves_into_place(monkeypatch, at=1, error=error)
    with pytest.raises(OSError) as raised:
        _report_files._put_in_place(str(parts), str(out), [], "write_report()")
    said = (f"{out}: the report could not be put in place (scores.csv: {os.strerror(error)}); "
            "none of the files there was changed; call write_report() again the same way to write it")  # (Python)
    # (a copy, as a process pool hands one back, kept its message but lost its errno: a full disk was no longer one)
    for exc in raised.value, pickle.loads(pickle.dumps(raised.value)), copy.copy(raised.value):
        assert str(exc) == said
        assert exc.errno == error and disk_full(exc) == (error == errno.ENOSPC)
        assert isinstance(exc, PermissionError) == (error == errno.EACCES)


def test_evaluate_called_from_python_is_told_to_call_it_again_not_to_run_a_command(tmp_path, seed, monkeypatch):
    """evaluate() from Python, its report not put in place or an image's scores not recorded (a full
    disk), said "the same command writes it again" (or "scores the rest"): its caller ran no command."""
    from tests.eval.test_journal import _full_disk_from
    from xvertfast.eval.evaluate import evaluate
    from xvertfast.eval.journal import JOURNAL_FILE

    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"
    run = dict(methods="identity", metrics="entropy", pictures=0, progress=False, log=lambda line: None)
    with monkeypatch.context() as patch, pytest.raises(OSError) as raised:
        patch.setattr(os, "fsync", _full_disk_from(out / JOURNAL_FILE, 1))
        evaluate([str(images)], str(out), **run)
    assert str(raised.value).endswith("no image was recorded: call evaluate() again the same way to score the rest "
                                      "once it can write there"), raised.value  # fmt: skip
    with monkeypatch.context() as patch, pytest.raises(OSError) as raised:
        fail_moves_into_place(patch, at=1)
        evaluate([str(images)], str(out), **run)
    assert str(raised.value).endswith("none of the files there was changed; call evaluate() again the same way to "
                                      "write it"), raised.value  # fmt: skip
    assert not parts_left(out)


@pytest.mark.parametrize("grid", ["a link to a folder deleted", "a file"])
def test_a_grid_that_is_no_folder_is_refused_before_the_earlier_report_is_touched(tmp_path, seed, capsys, grid):
    """With pictures asked for, grid/ was made (makedirs) after the earlier report was removed: a grid that is a
    link to a folder since deleted, or a file, failed "(grid: File exists) ... the same command writes it again",
    the report lost, and so every time. It is refused before any file is changed, saying what to do; and now
    before the images are scored too (it was found only once they all were: a run of hours, then no report),
    as well as when the report is put in place (it may have come meanwhile)."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out, pictures=0)) == 0
    earlier = shown(out)
    capsys.readouterr()
    if grid == "a file":
        (out / "grid").write_text("my notes")
        why = "grid: a file, not a folder for the report's pictures: move it away, or give --pictures 0"
    else:
        (out / "grid").symlink_to(tmp_path / "pictures", target_is_directory=True)
        why = (f"{out / 'grid'} is a link to {tmp_path / 'pictures'}, which does not exist: make that folder first, or "
               "remove the link (grid/ is then made), or give --pictures 0")  # fmt: skip
    assert main(args(images, out, pictures=1)) == 2
    err = capsys.readouterr().err  # (alone: no image resumed nor scored before it)
    assert err == f"error: {out}: the report's pictures could not be put in grid/ ({why}); no image was scored\n", err
    with pytest.raises(OSError) as raised:  # come while the images were scored: refused as the report is put in place
        _report_files._put_in_place(str(tmp_path / "drawn"), str(out), ["grid/000_a.png"], "write_report()")
    why = why.replace("--pictures 0", "pictures=0")  # (from Python: said in its terms)
    assert str(raised.value) == f"{out}: the report could not be put in place ({why}); none of the files there was " \
                                "changed"  # fmt: skip
    assert not parts_left(out)
    if grid == "a file":
        assert (out / "grid").read_text() == "my notes"
        (out / "grid").unlink()
        assert shown(out) == earlier
    else:
        assert os.path.islink(out / "grid") and not (tmp_path / "pictures").exists()
        (out / "grid").unlink()
        assert shown(out) == earlier
        (out / "grid").symlink_to(tmp_path / "pictures", target_is_directory=True)
        (tmp_path / "pictures").mkdir()  # (what it says to do)
    assert main(args(images, out, pictures=1)) == 0
    check_report(out)
    assert len(os.listdir(out / "grid")) == 1


def test_a_grid_folder_that_cannot_be_written_is_refused_before_the_images_are_scored(tmp_path, seed, capsys,
                                                                                       monkeypatch):  # fmt: skip
    """A read-only grid/ failed the moves of the pictures into it once every image was scored: said up
    front now (the machine's refusal made up: the tests may run as root, whom no mode refuses)."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out, pictures=1)) == 0
    capsys.readouterr()
    real = os.access

    def access(path, mode, **kwargs) -> bool:  # grid/ read-only
        return os.fspath(path) != str(out / "grid") and real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    assert main(args(images, out, pictures=1)) == 2
    assert capsys.readouterr().err == (f"error: {out}: the report's pictures could not be put in grid/ (grid: a folder "
                                       "that cannot be written into: make it writable, or give --pictures 0); no "
                                       "image was scored\n")  # fmt: skip
    assert main(args(images, out, pictures=0)) == 0  # (no pictures: grid/ not asked of)


def test_a_folder_in_grid_named_as_a_picture_is_refused_before_the_images_are_scored(tmp_path, seed, capsys):
    """A folder in grid/ named as a picture is (000_img0.png: the user's, or a tool's) is not removed
    with the earlier report's pictures (files), so the new picture's move onto it failed (Is a
    directory) once every image was scored. Refused before the scoring now, and again as the report is
    put in place (before any file is changed); a folder of another name stays, and is no matter."""
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"
    assert main(["evaluate", str(images), "-o", str(out), "--methods", "identity", "--metrics", "entropy",
                 "--pictures", "0", "-q"]) == 0  # (an earlier report at the least cost: its picture's name is known)
    capsys.readouterr()
    picture = "000_img0.png"  # (the name the picture of the first image, img0.png, gets)
    (out / "grid" / picture).mkdir(parents=True)
    (out / "grid" / "mine").mkdir()
    earlier = shown(out)
    why = (f"grid/{picture}: a folder named as the report's pictures are (NNN_name.png, each run's replacing the "
           "earlier run's): move it away, or give --pictures 0")  # fmt: skip
    assert main(args(images, out, pictures=1)) == 2
    assert capsys.readouterr().err == (f"error: {out}: the report's pictures could not be put in grid/ ({why}); no "
                                       "image was scored\n")  # fmt: skip
    with pytest.raises(IsADirectoryError, match="none of the files there was changed"):
        _report_files._put_in_place(str(tmp_path / "drawn"), str(out), [f"grid/{picture}"], "write_report()")
    assert shown(out) == earlier
    os.rmdir(out / "grid" / picture)  # a folder of another name is no matter
    assert _report_files._grid_in_the_way(str(out), writable=True) is None


def test_a_folder_with_no_report_yet_says_nothing_was_changed_when_the_first_move_fails(tmp_path, seed, capsys,
                                                                                        monkeypatch):  # fmt: skip
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    with monkeypatch.context() as patch:
        fail_moves_into_place(patch, at=1)
        assert main(args(images, out)) == 2
    err = capsys.readouterr().err
    assert "could not be put in place" in err and "none of the files there was changed" in err, err
    assert shown(out) == {}
    assert not parts_left(out)


def test_an_earlier_report_that_cannot_be_removed_is_left_whole(tmp_path, seed, capsys, monkeypatch):
    """Its page cannot be removed (the first step): nothing there changed, and the error says so."""
    _, out, earlier, err = rerun_refusing_to_remove("report.html", tmp_path, seed, capsys, monkeypatch)
    assert (f"could not be put in place (report.html: {os.strerror(errno.EACCES)}); none of the files there was "
            "changed") in err, err  # fmt: skip
    assert shown(out) == earlier
    assert not parts_left(out)


def test_an_earlier_file_that_cannot_be_removed_after_the_page_is_named(tmp_path, seed, capsys, monkeypatch):
    """The error kept the failure's strerror and dropped its file: 'Permission denied' with no word
    of which of the report's files. Removed in the reverse order, the page, provenance.json and
    boxplots.png are gone when summary.md is refused."""
    images, out, _, err = rerun_refusing_to_remove("summary.md", tmp_path, seed, capsys, monkeypatch)
    assert (f"{out}: the report could not be put in place (summary.md: {os.strerror(errno.EACCES)}); it holds no whole "
            "report (no report.html): 3 of the earlier report's files were removed; the same command writes it "
            "again") in err, err  # fmt: skip
    assert sorted(shown(out)) == ["grid/000_img0.png", "scores.csv", "summary.csv", "summary.md"]
    assert main(args(images, out, "entropy,tenengrad")) == 0
    check_report(out)


def test_a_new_folder_failing_at_the_third_move_says_no_earlier_report_was_removed(tmp_path, seed, capsys,
                                                                                    monkeypatch):  # fmt: skip
    """With moves done, the error said 'the earlier report's files were removed' whether or not
    the folder held one: here it held none."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    with monkeypatch.context() as patch:
        fail_moves_into_place(patch, at=3)
        assert main(args(images, out)) == 2
    err = capsys.readouterr().err
    assert (f"{out}: the report could not be put in place (summary.csv: {os.strerror(errno.ENOSPC)}); it holds no whole "
            "report (no report.html): 2 of this run's 7 files are in place; the same command writes it again") in err, err
    assert "removed" not in err, err
    assert sorted(shown(out)) == ["grid/000_img0.png", "scores.csv"]
    assert main(args(images, out)) == 0
    check_report(out)


@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_held_while_the_files_are_put_in_place_is_said_when_a_move_fails(tmp_path, seed, capsys, monkeypatch,
                                                                                 sent, code):  # fmt: skip
    """A Ctrl-C or SIGTERM held while the files were put in place was dropped when a step failed: the
    command ended with the error alone, as if no one had asked it to stop; then with exit 2 and
    'error: ...; interrupted meanwhile', where every interrupted command exits 130 (143 for SIGTERM)
    and a script's next step must not run. It is an interruption, and says the report is not whole."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    move = _report_files._put_in_place

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), sent)  # held from here: the hold is in place
        return move(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(_report_files, "_put_in_place", signalled)
        fail_moves_into_place(patch, at=2)
        assert main(args(images, out)) == code
    err = capsys.readouterr().err
    assert (f"interrupted while the report's files were put in place, and they could not all be: {out}: the report "
            f"could not be put in place (scores.csv: {os.strerror(errno.ENOSPC)}); it holds no whole report (no "
            "report.html): 1 of this run's 7 files are in place; the same command writes it again (no image is "
            "scored again)") in err, err  # fmt: skip
    assert "error:" not in err, err
    assert sorted(shown(out)) == ["grid/000_img0.png"]
    assert not parts_left(out)


def test_a_full_disk_on_the_first_move_says_the_earlier_report_was_removed(tmp_path, seed, capsys, monkeypatch):
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out)) == 0
    earlier = shown(out)
    capsys.readouterr()
    with monkeypatch.context() as patch:
        fail_moves_into_place(patch, at=1)
        assert main(args(images, out, "entropy,tenengrad")) == 2
    err = capsys.readouterr().err
    assert (f"could not be put in place (grid/000_img0.png: {os.strerror(errno.ENOSPC)}); it holds no whole report (no "
            "report.html): 7 of the earlier report's files were removed; the same command writes it again") in err, err
    assert earlier and shown(out) == {}
    assert not parts_left(out)


def test_an_earlier_picture_that_cannot_be_removed_is_a_warning(tmp_path, seed, capsys, monkeypatch):
    """Every file was in place when removing an earlier report's extra picture failed: the run is
    done, not 'error:', exit 2."""
    images, out, extra = report_with_a_second_picture(tmp_path, seed, capsys)
    with monkeypatch.context() as patch:
        refuse_removing(patch, extra.name)
        assert main(args(images, out, pictures=1)) == 0
    err = capsys.readouterr().err
    assert (f"warning: {extra}: an earlier report's picture, not removed ({os.strerror(errno.EACCES)}): it is left in "
            "grid/ beside this run's pictures, and report.html does not show it") in err and "error:" not in err, err
    check_report(out)
    assert extra.exists() and extra.name not in (out / "report.html").read_text()
    assert not parts_left(out)


def test_an_earlier_picture_left_is_not_said_removed_when_a_move_then_fails(tmp_path, seed, capsys, monkeypatch):
    """The error after a failed move said 'the earlier report's files were removed' where a picture
    of it could not be, and stayed in grid/ (only warned)."""
    images, out, extra = report_with_a_second_picture(tmp_path, seed, capsys)
    with monkeypatch.context() as patch:
        refuse_removing(patch, extra.name)
        fail_moves_into_place(patch, at=1)
        assert main(args(images, out, pictures=1)) == 2
    err = capsys.readouterr().err
    assert (f"warning: {extra}: an earlier report's picture, not removed" in err and "it holds no whole report (no "
            "report.html): 7 of the earlier report's files are gone, 1 of its pictures left in grid/ (they could not "
            "be removed); the same command writes it again") in err, err  # fmt: skip
    assert "were removed" not in err, err
    assert sorted(shown(out)) == [f"grid/{extra.name}"]


def test_an_earlier_picture_past_999_is_removed_too(tmp_path, seed, monkeypatch):
    """``--pictures`` has no upper bound: picture 1000 is named ``1000_<name>.png``, which the
    pattern of three digits left beside the next report's pictures. Other PNGs there are the
    user's, left alone."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out)) == 0
    (picture,) = (out / "grid").iterdir()
    past_999, users = out / "grid" / "1000_img1.png", [out / "grid" / "notes.png", out / "grid" / "12_scan.png"]
    for path in [past_999, *users]:
        path.write_bytes(picture.read_bytes())
    assert main(args(images, out, "entropy,tenengrad")) == 0
    check_report(out)
    assert not past_999.exists()
    assert all(path.exists() for path in users)


def test_report_html_is_put_in_place_last_and_removed_first():
    """The order of REPORT_FILES sets both: the page moved in last, an earlier one removed first."""
    assert report.REPORT_FILES[-1] == "report.html"
    assert len(set(report.REPORT_FILES)) == len(report.REPORT_FILES)


@pytest.mark.parametrize("pictures", [0, 2])
def test_every_file_listed_is_drawn_and_none_other(tmp_path, seed, monkeypatch, pictures):
    """One listed in REPORT_FILES but not drawn would fail its move after the earlier report was
    removed; one drawn but not listed would be left in the hidden folder, removed with it."""
    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    move, drawn = _report_files._put_in_place, []

    def looked_at(parts, out_dir, grids, *rest):
        grid = os.path.join(parts, "grid")  # (none without pictures)
        drawn.append((sorted(os.listdir(parts)), sorted(os.listdir(grid)) if os.path.isdir(grid) else [], grids))
        return move(parts, out_dir, grids, *rest)

    monkeypatch.setattr(_report_files, "_put_in_place", looked_at)
    assert main(args(images, out, pictures=pictures)) == 0
    ((top, grid, grids),) = drawn
    assert top == sorted([*report.REPORT_FILES, *(["grid"] if pictures else [])])
    assert len(grids) == pictures and sorted(f"grid/{name}" for name in grid) == sorted(grids)


@pytest.mark.parametrize("step", ["remove_unfinished_reports", "mkdtemp"])
def test_ctrl_c_before_the_report_is_drawn_says_the_report_is_cut_short(tmp_path, seed, capsys, monkeypatch, step):
    """A Ctrl-C as a killed run's leftovers were removed or the report's hidden folder was made,
    once every image was scored, said 'the same command scores only the rest', with nothing left
    to score."""
    images, out = write_images(tmp_path / "in", seed, n=1), tmp_path / "rep"
    if step == "mkdtemp":
        make = tempfile.mkdtemp

        def cut(*args, prefix=None, **kwargs):
            if prefix == ".xvertfast-report-":
                raise KeyboardInterrupt
            return make(*args, prefix=prefix, **kwargs)

        monkeypatch.setattr(tempfile, "mkdtemp", cut)
    else:
        interrupt_at(monkeypatch, step)
    assert main(args(images, out)) == 130
    err = capsys.readouterr().err
    assert CUT_SHORT in err and "scores only the rest" not in err, err
    assert shown(out) == {}
    assert not parts_left(out)


def mixes(state: dict, earlier: dict, final: dict) -> tuple[list, list]:
    """The files of ``state`` (a report folder as :func:`shown` gives it) that only the earlier
    report has, and those only the new one has (a file both have alike is either's)."""
    old = sorted(k for k, v in state.items() if v == earlier.get(k) and v != final.get(k))
    new = sorted(k for k, v in state.items() if v == final.get(k) and v != earlier.get(k))
    stray = sorted(k for k, v in state.items() if v not in (earlier.get(k), final.get(k)))
    assert not stray, f"files of neither report: {stray}"
    return old, new


@pytest.mark.parametrize("earlier_pictures, pictures", [(2, 2), (3, 1)])
def test_a_kill_between_any_two_steps_of_putting_the_report_in_place_leaves_no_mix(tmp_path, seed, monkeypatch,
                                                                                   earlier_pictures, pictures):  # fmt: skip
    """A kill -9 (or a lost node) among the renames that put the files in place, one after
    another, left the new scores.csv and pictures beside the earlier run's summary, plots and
    page: one report to a reader, the tables and the page of two runs. The folder is looked at
    after every rename and removal, each what a kill there leaves (Ctrl-C and SIGTERM wait).
    With the same pictures in both runs (alike byte for byte, either run's) a picture left over
    would go unseen: with 3 earlier and 1 now, the earlier 2 others are the earlier run's alone."""
    images, out = write_images(tmp_path / "in", seed, n=3), tmp_path / "rep"
    assert main(args(images, out, pictures=earlier_pictures)) == 0
    earlier = shown(out)
    states, rename, remove = {"removal": [], "rename": []}, os.replace, os.remove

    def replace_seen(src, dst, *a, **kw):
        rename(src, dst, *a, **kw)
        if ".xvertfast-report-" in str(src) and ".xvertfast-report-" not in str(dst):
            states["rename"].append(shown(out))

    def remove_seen(path, *a, **kw):
        remove(path, *a, **kw)
        if str(path).startswith(str(out)) and ".xvertfast-report-" not in str(path):
            states["removal"].append(shown(out))

    with monkeypatch.context() as patch:  # a metric added: every file but the pictures changes
        patch.setattr(os, "replace", replace_seen)
        patch.setattr(os, "remove", remove_seen)
        assert main(args(images, out, "entropy,tenengrad", pictures=pictures)) == 0
    final = shown(out)
    # an earlier picture left over would be in final too, so no mix below: its own check
    assert len([name for name in final if name.startswith("grid/")]) == pictures, sorted(final)
    files = len(report.REPORT_FILES)
    assert (len(states["removal"]), len(states["rename"])) == (files + earlier_pictures, pictures + files)
    assert states["removal"][-1] == {} and states["rename"][-1] == final
    for k, state in enumerate([*states["removal"], *states["rename"]]):
        old, new = mixes(state, earlier, final)
        assert not (old and new), f"after step {k + 1}: the earlier report's {old} beside this run's {new}"
        # anything short of a whole report has no page: a reader sees it unfinished
        assert state in (earlier, final) or "report.html" not in state, f"after step {k + 1}: {sorted(state)}"


KILLED = """
import os, sys
import xvertfast.eval.evaluate as evaluate
from xvertfast.cli import main
evaluate.code_digest = lambda: sys.argv[2]  # the parent's (see the test)
rename, at, moves = os.replace, int(sys.argv[1]), []
def replace(src, dst, *a, **kw):
    rename(src, dst, *a, **kw)
    if ".xvertfast-report-" in str(src) and ".xvertfast-report-" not in str(dst):
        moves.append(dst)
        if len(moves) == at:
            os._exit(137)
os.replace = replace
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_a_report_killed_among_its_renames_shows_no_mix_and_is_written_again(tmp_path, seed):
    """The process killed outright (os._exit, as kill -9) right after the third of the renames:
    the two pictures (alike in both reports) and the new scores.csv in place. The child takes this
    process's code digest, read once a process: it read its own, and where a file of the package was
    edited meanwhile (another's work in a shared checkout) it refused the resume, exit 2, not 137."""
    from xvertfast._version import code_digest

    images, out = write_images(tmp_path / "in", seed, n=2), tmp_path / "rep"
    assert main(args(images, out, pictures=2)) == 0
    earlier = shown(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rerun = args(images, out, "entropy,tenengrad", pictures=2)
    killed = subprocess.run([sys.executable, "-c", KILLED, "3", code_digest(), *rerun], env=env, capture_output=True,
                            text=True)  # fmt: skip
    assert killed.returncode == 137, killed.stderr
    state = shown(out)
    assert main(rerun) == 0  # the same command: the report whole, the killed one's hidden folder gone
    check_report(out)
    assert not parts_left(out)
    old, new = mixes(state, earlier, shown(out))
    assert new and not old, f"the earlier report's {old} beside this run's {new}"
    assert "report.html" not in state
