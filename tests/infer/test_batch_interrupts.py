"""``xvertfast enhance`` stopped by Ctrl-C or SIGTERM: held through the pipeline, acted on where it can stop."""

from __future__ import annotations

import json
import os
import signal
import threading

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ClosedPipe
from tests.infer.test_enhance import TILE, chest_like, tiny_model
from xvertfast.cli import main
from xvertfast.infer import Enhancer
from xvertfast.io.job_folder import job_status
from xvertfast.model import save_model


@pytest.fixture
def model_dir(tmp_path, seed):
    return save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}})


def _inputs(tmp_path, seed, images: int):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(images):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    return src


def test_the_pipeline_loop_runs_with_ctrl_c_and_sigterm_held(tmp_path, model_dir, seed, monkeypatch):
    """A Ctrl-C raised inside the thread pools' own code (submit, Future.result) could leave a lock
    of theirs held: the job hung for good, 1 run in 16 with a Ctrl-C at the pipeline's start. While
    the loop runs the network (the main thread, as it runs the pools' code), neither signal has
    the handler that raises: the job's own holds them."""
    from xvertfast.infer import batch

    src = _inputs(tmp_path, seed, 2)
    real_network, seen = batch._run_network, []

    def network_noting_the_handlers(enhancer, images, kept):
        assert threading.current_thread() is threading.main_thread()
        seen.append((signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)))
        return real_network(enhancer, images, kept)

    monkeypatch.setattr(batch, "_run_network", network_noting_the_handlers)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    summary = enhancer.enhance_files([str(src)], str(tmp_path / "out"), workers=1, progress=False)
    assert summary.done == 2 and len(seen) == 2
    for on_int, on_term in seen:
        assert on_int is not signal.default_int_handler and on_int is not before[0]
        assert on_term is not before[1] and on_int is on_term  # one hold for both
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # put back


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), pytest.param(
    getattr(signal, "SIGHUP", 0), 129, marks=pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP here"))])
def test_a_signal_during_a_network_batch_stops_the_job_once_the_batch_is_done(tmp_path, model_dir, seed, monkeypatch,
                                                                              capsys, sig, code):  # fmt: skip
    """The signal comes while the 2nd image's batch runs: the batch is not cut (nothing raises in
    it, and its result is written, not dropped: the rerun would redo it), the job then stops as it
    did, with the 1st and 2nd images' outputs written and recorded, the summary, the report and the
    exit code of a Ctrl-C (130), a scheduler's SIGTERM (143) or a SIGHUP (129)."""
    from xvertfast.infer import batch

    src = _inputs(tmp_path, seed, 4)
    real_network, batches = batch._run_network, []

    def network_signalled_in_batch_2(enhancer, images, kept):
        batches.append("started")
        if len(batches) == 2:
            os.kill(os.getpid(), sig)
        results = real_network(enhancer, images, kept)
        batches[-1] = "returned"
        return results

    monkeypatch.setattr(batch, "_run_network", network_signalled_in_batch_2)
    out, report = tmp_path / "out", tmp_path / "run.json"
    args = ["enhance", str(src), "-o", str(out), "--model", str(model_dir), "--device", "cpu", "--backend", "torch",
            "--batch-size", "1", "--workers", "1", "--report", str(report), "-q"]  # fmt: skip
    assert main(args) == code
    said = capsys.readouterr()
    assert batches == ["returned", "returned"]  # the 2nd batch ran to its end, and no 3rd began
    assert said.out.startswith("2 done, 0 skipped, 0 failed")
    assert said.err.rstrip().endswith("stopped early: interrupted; 2 images not processed; the same command "
                                      "resumes where this one stopped")  # fmt: skip
    assert "already stopping" not in said.err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["img0.png", "img1.png"]
    body = json.loads(report.read_text())
    assert body["summary"]["stopped"] == "interrupted" and body["summary"]["not_processed"] == 2
    assert [(os.path.basename(r["input"]), r["status"]) for r in body["files"]] == [("img0.png", "done"), ("img1.png", "done")]
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.done) == ("stopped", "interrupted", 2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_slow_read_does_not_keep_a_held_ctrl_c_waiting(tmp_path, model_dir, seed, monkeypatch):
    """The main thread waits for a read in short steps, delivering a held signal between them: a
    read stuck on a slow share must not keep the job from stopping until it ends."""
    from xvertfast.infer import batch

    src = _inputs(tmp_path, seed, 3)
    real_read, real_write, real_finish = batch._read_and_prepare, batch._compose_and_write, batch._finish_in_flight
    first_written, release = threading.Event(), threading.Event()

    def stuck_second_read(enhancer, f, *given_and_kept):
        if f.path.endswith("img1.png"):
            assert first_written.wait(60)  # the main thread now waits for this read
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            assert release.wait(60), "the job did not stop while this read was stuck"
        return real_read(enhancer, f, *given_and_kept)

    def write_noted(*args):
        result = real_write(*args)
        first_written.set()
        return result

    def finish_releasing(*args):
        release.set()  # the job stops: let the stuck read end, as a share that answers at last
        return real_finish(*args)

    monkeypatch.setattr(batch, "_read_and_prepare", stuck_second_read)
    monkeypatch.setattr(batch, "_compose_and_write", write_noted)
    monkeypatch.setattr(batch, "_finish_in_flight", finish_releasing)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    summary = enhancer.enhance_files([str(src)], str(tmp_path / "out"), workers=1, progress=False)
    assert summary.stopped == "interrupted" and summary.done == 1 and summary.not_processed == 2


def _hold_writes_until_the_loop_ends(monkeypatch) -> list[str]:
    """Holds every output's write until the job's loop is over, so that all are in flight at its end
    (the order they are recorded in is then the end's alone). Returns the outputs, in the order written."""
    from xvertfast.infer import batch

    real_write, real_finish = batch._compose_and_write, batch._finish_in_flight
    loop_over, written = threading.Event(), []

    def write_once_the_loop_is_over(*args):
        assert loop_over.wait(120), "the job never reached the end of its loop"
        written.append(args[4])
        return real_write(*args)

    def finish_opening(*args):
        loop_over.set()
        return real_finish(*args)

    monkeypatch.setattr(batch, "_compose_and_write", write_once_the_loop_is_over)
    monkeypatch.setattr(batch, "_finish_in_flight", finish_opening)
    return written


def test_the_outputs_finished_at_the_jobs_end_are_recorded_in_the_order_they_were_written(tmp_path, model_dir, seed,
                                                                                          monkeypatch):  # fmt: skip
    """The writes still in flight when the loop ends were recorded in the order of a set of their
    futures (as_completed yields the finished ones so): with one writer, the report listed img1
    before img0 in 1 interrupted run in 20 to 50. They are recorded in the order handed over, which
    with one writer is the order written."""
    src = _inputs(tmp_path, seed, 8)
    written = _hold_writes_until_the_loop_ends(monkeypatch)
    # a batch size over the images: room for every write (no wait for room, which the held writes would block)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=16)
    summary = enhancer.enhance_files([str(src)], str(tmp_path / "out"), workers=1, progress=False)
    assert summary.done == 8 and len(written) == 8
    assert [r.output for r in summary.records] == written


def test_the_report_lists_the_files_in_input_order_whatever_order_they_finished_in(tmp_path, model_dir, seed,
                                                                                   monkeypatch):  # fmt: skip
    """Records were kept in the order files finished: those done before (skipped) first, a file that
    failed its read before the earlier files' writes, and with several writers the writes in the order
    they ended, so two runs of one job listed their files differently and a diff of the reports showed
    moves, not changes. The report (and ``summary.records``) list them in input order; the ledger keeps
    its own, the order written."""
    src = _inputs(tmp_path, seed, 4)  # img0 .. img3
    out, report = tmp_path / "out", tmp_path / "run.json"
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    assert enhancer.enhance_files([str(src / "img2.png")], str(out), workers=1, progress=False).done == 1
    (src / "img1.png").write_bytes(b"not an image")  # fails as it is read, while img0's write is held
    _hold_writes_until_the_loop_ends(monkeypatch)
    big = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=16)  # room for every held write
    summary = big.enhance_files([str(src)], str(out), workers=2, progress=False, report=str(report), log=lambda _: None)
    listed = [(os.path.basename(r.input), r.status) for r in summary.records]
    assert listed == [("img0.png", "done"), ("img1.png", "failed"), ("img2.png", "skipped"), ("img3.png", "done")]
    assert [(os.path.basename(r["input"]), r["status"]) for r in json.loads(report.read_text())["files"]] == listed


def test_a_ctrl_c_held_at_the_end_and_a_report_that_cannot_be_written_say_both_and_exit_130(tmp_path, model_dir,
                                                                                            seed, monkeypatch,
                                                                                            capsys):  # fmt: skip
    """Enhance's side of the case that made evaluate exit 2 (a held Ctrl-C, then a failure writing
    the report): the job is complete and the user asked it to stop, so 130, with the report's error
    said too (the same command writes it: every output is skipped)."""
    import errno

    from xvertfast.infer import batch

    src = _inputs(tmp_path, seed, 2)
    real_finish = batch._finish_in_flight

    def finish_after_a_ctrl_c(*args):  # held: the pipeline's hold is in place
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        return real_finish(*args)

    def full_disk(path, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(batch, "_finish_in_flight", finish_after_a_ctrl_c)
    monkeypatch.setattr(batch, "_write_report", full_disk)
    out, report = tmp_path / "out", tmp_path / "run.json"
    args = ["enhance", str(src), "-o", str(out), "--model", str(model_dir), "--device", "cpu", "--backend", "torch",
            "--workers", "1", "--report", str(report), "-q"]  # fmt: skip
    assert main(args) == 130
    said = capsys.readouterr()
    assert said.out.startswith("2 done, 0 skipped, 0 failed")
    assert f"error: report {report} not written: {os.strerror(errno.ENOSPC)}" in said.err, said.err
    assert said.err.rstrip().endswith("interrupted once every image was processed: the job is complete"), said.err
    assert not report.exists()


def _a_ctrl_c_during_the_second_read(tmp_path, model_dir, seed, monkeypatch, then):
    """A job of 3 images given a Ctrl-C during its 2nd read, once the 1st output is written; the read
    goes on until the job said it stops (or 60 s), calls ``then()``, and ends: the summary and the lines
    logged."""
    import time

    from xvertfast.infer import batch

    src = _inputs(tmp_path, seed, 3)
    real_read, real_write = batch._read_and_prepare, batch._compose_and_write
    first_written, lines = threading.Event(), []

    def interrupted_second_read(enhancer, f, *given_and_kept):
        if f.path.endswith("img1.png"):
            assert first_written.wait(60)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            for _ in range(600):  # until the job said it stops (or 60 s)
                if any(line.startswith("stopping:") for line in lines):
                    break
                time.sleep(0.1)
            then(lines)
        return real_read(enhancer, f, *given_and_kept)

    def write_noted(*args):
        result = real_write(*args)
        first_written.set()
        return result

    monkeypatch.setattr(batch, "_read_and_prepare", interrupted_second_read)
    monkeypatch.setattr(batch, "_compose_and_write", write_noted)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    summary = enhancer.enhance_files([str(src)], str(tmp_path / "out"), workers=1, progress=False, log=lines.append)
    return summary, lines


def test_a_stop_says_what_it_waits_for_before_the_summary(tmp_path, model_dir, seed, monkeypatch):
    """A Ctrl-C while an image is being read: the read cannot be cut (a WLS solve), and the job waited
    for it in silence (20 s on a busy 2-core machine) before its summary, though its result is
    dropped. The job now says so as it stops, before that wait, not after it."""
    said_before_the_read_ended = []

    def noted(lines):
        said_before_the_read_ended.append([line for line in lines if not line.startswith("warning:")])

    summary, _ = _a_ctrl_c_during_the_second_read(tmp_path, model_dir, seed, monkeypatch, noted)
    assert summary.stopped == "interrupted" and summary.done == 1 and summary.not_processed == 2
    assert said_before_the_read_ended == [["stopping: waiting for 1 image being read, which cannot be cut (dropped: "
                                           "the next run redoes it); kill -9 stops at once"]]  # fmt: skip


def _stopped_with_a_log_that_breaks(tmp_path, model_dir, seed, monkeypatch, rgb=False, report=None):
    """A job of 3 images stopped by a Ctrl-C during its 1st write, whose log raises BrokenPipeError
    from the "stopping: ..." line on (stderr piped through a `tee` the same Ctrl-C killed): the
    summary (None where the call raised it), the output folder, the outputs written."""
    import errno
    import time

    from xvertfast.infer import batch

    src, out = _inputs(tmp_path, seed, 3), tmp_path / "out"
    if rgb:  # (each is warned of: converted to luminance)
        for png in src.iterdir():
            Image.fromarray(np.stack([np.asarray(Image.open(png))] * 3, -1)).save(png)
    real_write, line_tried, calls = batch._compose_and_write, threading.Event(), []

    def write_cut_by_ctrl_c(*args):
        calls.append(args[4])
        if len(calls) == 1:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            assert line_tried.wait(60)
            time.sleep(0.3)  # (the old code's job folder was closed by now)
        return real_write(*args)

    def log(line):
        if line.startswith("stopping:"):
            line_tried.set()
        if line_tried.is_set():
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    monkeypatch.setattr(batch, "_compose_and_write", write_cut_by_ctrl_c)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    try:
        summary = enhancer.enhance_files([str(src)], str(out), workers=1, progress=False, log=log, report=report)
    except BrokenPipeError:  # (the old code's)
        summary = None
    assert line_tried.is_set()
    return summary, out, calls


def test_a_stop_line_that_cannot_be_written_still_finishes_the_outputs_in_flight(tmp_path, model_dir, seed,
                                                                                 monkeypatch):  # fmt: skip
    """The stop's line is logged before the wait for the outputs in flight; a log failing there (stderr
    piped through a `tee` the same Ctrl-C killed: BrokenPipeError) skipped that wait: the job folder
    closed under a write still running, its output recorded "writing". The line is lost, not the output."""
    summary, out, calls = _stopped_with_a_log_that_breaks(tmp_path, model_dir, seed, monkeypatch)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("xvf-")]  # nothing left running
    assert summary is not None and summary.stopped == "interrupted" and summary.done == 1
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.done, led.unfinished) == ("stopped", "interrupted", 1, 0)
    assert os.path.isfile(calls[0]) and len(calls) == 1


def test_warnings_of_the_outputs_in_flight_that_cannot_be_written_do_not_end_a_stop_in_an_error(
        tmp_path, model_dir, seed, monkeypatch):  # fmt: skip
    """A stop's log that fails on its line fails on every line after (a `tee` killed by the same
    Ctrl-C): the warning of an output in flight (an RGB PNG's note), logged as the wait recorded it,
    raised BrokenPipeError: the ledger read "an error: BrokenPipeError", not "interrupted", and no
    --report was written. The lines are lost; the warnings stay in the record and the report."""
    report = tmp_path / "report.json"
    summary, out, calls = _stopped_with_a_log_that_breaks(tmp_path, model_dir, seed, monkeypatch, rgb=True,
                                                          report=str(report))  # fmt: skip
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.done, led.unfinished) == ("stopped", "interrupted", 1, 0)
    assert summary is not None and summary.stopped == "interrupted" and summary.done == 1
    (done,) = [rec for rec in summary.records if rec.status == "done"]
    assert done.output == calls[0] and any("luminance" in w for w in done.warnings), done.warnings
    written = json.loads(report.read_text())
    assert [rec["warnings"] for rec in written["files"] if rec["status"] == "done"] == [done.warnings]


def test_a_second_ctrl_c_while_only_a_read_is_waited_for_says_so(tmp_path, model_dir, seed, monkeypatch, capfd):
    """The second Ctrl-C's note said "the outputs in flight are being finished" where the job waited for
    an image being read alone (its WLS solve cannot be cut, its result dropped): no output was."""
    import time

    def stopped_again(_lines):
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        time.sleep(1)  # (the note is written by the main thread as it waits for this read)

    summary, lines = _a_ctrl_c_during_the_second_read(tmp_path, model_dir, seed, monkeypatch, stopped_again)
    assert summary.stopped == "interrupted" and summary.done == 1
    assert [line for line in lines if line.startswith("stopping:")] == [
        "stopping: waiting for 1 image being read, which cannot be cut (dropped: the next run redoes it); kill -9 "
        "stops at once"]  # fmt: skip
    err = capfd.readouterr().err
    assert err.count("already stopping") == 1 and "outputs in flight are being finished" not in err, err
    assert ("already stopping: waiting for what is in flight, outputs being written or images being read (kill -9 "
            "stops at once; the same command then redoes them)") in err  # fmt: skip


def test_a_log_closed_during_the_job_stops_it_as_a_full_disk_does_and_the_same_call_resumes(tmp_path, model_dir,
                                                                                          seed):  # fmt: skip
    """`xvertfast enhance in -o out |& head -1`: a line after head exited raised BrokenPipeError out
    of the job, whose ledger then read "an error: BrokenPipeError", with no summary and no --report.
    The job now stops (the line and every later one lost), its ledger says why, and the same call,
    with a log that works, does the rest. The first image cannot be decoded: its error line, the
    job's first, fails in the read loop before any image is handed to the writers (a warning line
    comes only once an output is written, by when others may be in flight, as many as the
    machine's speed lets: a count that held only where the first write was quick)."""
    import errno

    src, out, report = _inputs(tmp_path, seed, 3), tmp_path / "out", tmp_path / "report.json"
    (src / "img0.png").write_bytes(b"not an image")

    said = []

    def log(line):  # (the first, the model's note on its ROI size, is read: head exits after it)
        if said:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        said.append(line)

    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    summary = enhancer.enhance_files([str(src)], str(out), workers=1, progress=False, log=log, report=str(report))
    assert summary.stopped == "its log could not be written (Broken pipe)", summary.stopped
    assert not summary.stopped_planning
    assert [os.path.basename(rec.input) for rec in summary.failed] == ["img0.png"], summary.records
    assert (summary.done, summary.not_processed) == (0, 2), summary.records
    assert json.loads(report.read_text())["summary"]["stopped"] == summary.stopped
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.done, led.unfinished) == ("stopped", summary.stopped, 0, 0)
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(src / "img0.png")  # (mended)
    again = enhancer.enhance_files([str(src)], str(out), workers=1, progress=False, log=lambda line: None)
    assert (again.stopped, again.skipped, again.done, len(again.failed)) == (None, 0, 3, 0), again.records


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full, a file whose every write finds no room")
def test_a_cli_job_whose_stderr_is_on_a_full_disk_ends_with_its_exit_code_and_says_why_on_stdout(tmp_path, model_dir,
                                                                                                capsys, monkeypatch,
                                                                                                seed):  # fmt: skip
    """`xvertfast enhance in -o out 2> /full/log`: the job stopped as its log was lost, as it should,
    but the lines after its summary (the stop line, on stderr) raised OSError out of the command, a
    traceback that could not be written either; the stop was said nowhere. It ends with its exit
    code now, and the stop line, which stderr cannot take, goes after the summary line on stdout."""
    import contextlib
    import sys

    src, out = _inputs(tmp_path, seed, 1), tmp_path / "out"
    full = open("/dev/full", "w", buffering=1)  # (line-buffered, as Python's stderr is)
    try:
        monkeypatch.setattr(sys, "stderr", full)
        code = main(["enhance", str(src), "-o", str(out), "--model", str(model_dir)])
    finally:
        monkeypatch.undo()
        with contextlib.suppress(OSError):  # (what the bar left unflushed finds no room either)
            full.close()
    said = capsys.readouterr().out
    assert code == 1
    assert "stopped early: its log could not be written (the disk is full)" in said and "once the disk has room" in said
    assert job_status(str(out), "enhance").ledgers[0].ended == "stopped"


def test_a_progress_bar_whose_stream_is_closed_stops_the_job_as_its_log_does(tmp_path, model_dir, seed, monkeypatch):
    """The progress bar writes to the stderr the log's lines go to: closed (`|& head -1`), tqdm
    raised BrokenPipeError as the bar was made (it absorbs EIO alone), past the job's log: the job
    ended "an error: BrokenPipeError", without its summary. It stops as on a lost line now."""
    import sys

    src, out = _inputs(tmp_path, seed, 2), tmp_path / "out"
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    monkeypatch.setattr(sys, "stderr", ClosedPipe())
    summary = enhancer.enhance_files([str(src)], str(out), workers=1, progress=True, log=lambda line: None)
    monkeypatch.undo()
    assert (summary.stopped, summary.done, summary.not_processed) == ("its log could not be written (Broken pipe)",
                                                                      0, 2)  # fmt: skip
    assert job_status(str(out), "enhance").ledgers[0].ended == "stopped"
    again = enhancer.enhance_files([str(src)], str(out), workers=1, progress=False, log=lambda line: None)
    assert (again.stopped, again.done) == (None, 2)


def test_a_log_lost_while_planning_stops_no_job_with_nothing_left_to_enhance(tmp_path, model_dir, seed):
    """Its log lost while it planned (an input's error line, `|& head -1`), a dry run said "stopped
    early: ...; the dry run was cut short; run it again", and a run whose inputs all failed at
    planning "stopped ... while planning" with none left: both had planned every input. They end
    as planned, and finished, their lines lost."""
    import errno

    src, out = _inputs(tmp_path, seed, 1), tmp_path / "out"
    out.mkdir()
    (out / "img0.png").write_bytes(b"another tool's")  # (its output's path: refused as it plans, an error line)

    def closed(line):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    for dry_run in (True, False):
        summary = enhancer.enhance_files([str(src)], str(out), workers=1, progress=False, log=closed, dry_run=dry_run)
        assert (summary.stopped, summary.stop_line(), len(summary.failed)) == (None, None, 1), dry_run
    assert job_status(str(out), "enhance").ledgers[0].ended == "finished"


def test_a_log_lost_at_the_last_images_line_does_not_stop_a_job_that_is_done(tmp_path, model_dir, seed):
    """The last image's warning line lost (`|& head -1`): the job said "stopped early: its log could
    not be written; 0 images not processed; the same command resumes", exit 1, a stop in its
    ledger, with nothing left to resume. It ends as done, its lines lost."""
    import errno

    src, out = _inputs(tmp_path, seed, 1), tmp_path / "out"
    png = src / "img0.png"
    Image.fromarray(np.stack([np.asarray(Image.open(png))] * 3, -1)).save(png)  # (warned of: made luminance)
    said = []

    def log(line):  # (the model's note on its ROI size is read; the image's warning is not)
        if said:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        said.append(line)

    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    summary = enhancer.enhance_files([str(src)], str(out), workers=1, progress=False, log=log)
    assert (summary.stopped, summary.done, summary.not_processed) == (None, 1, 0), summary.stopped
    assert job_status(str(out), "enhance").ledgers[0].ended == "finished"
