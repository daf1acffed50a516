"""The records of each run a job folder's ledger keeps besides its outputs: how the run was
started (the command line) and how it ended (finished, or stopped and why), which `xvertfast
status` reads to say which of many shards finished and which to resubmit, with what."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.infer.test_enhance import model_dir  # noqa: F401 (a fixture)
from xvertfast.cli import main
from xvertfast.io.files import file_state
from xvertfast.io.job_folder import JobFolder, job_files, job_status, read_ledgers, shard_files
from xvertfast.io.shards import Shard

SETTINGS = {"model": "m", "format": "png16"}


def _input(tmp_path, name: str) -> str:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(name.encode())
    return str(path)


def _one_output(job: JobFolder, src: str, out) -> None:
    target = os.path.join(str(out), os.path.basename(src))
    job.starting(src, target)
    with open(target, "wb") as f:
        f.write(b"output")
    job.finished(src, target, file_state(src))


def _status_lines(out, capsys) -> str:
    assert main(["status", str(out)]) == 0
    return capsys.readouterr().out


def test_status_tells_finished_from_interrupted_from_killed_shards(tmp_path, capsys):
    # a shard not running was "done with its part, or stopped before the end": with 50 shards on a
    # cluster, which to resubmit could not be told
    out = tmp_path / "out"
    srcs = [_input(tmp_path, f"{n}.png") for n in "abc"]
    finished = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 3), command="xvertfast enhance in -o out --shard 1/3")
    _one_output(finished, srcs[0], out)
    finished.ended(None, found=3, done=1, skipped=1, failed=1)
    finished.close()
    stopped = JobFolder(str(out), SETTINGS, False, shard=Shard(2, 3),
                        command="xvertfast enhance 'my scans' -o /abs/out --shard 2/3")  # fmt: skip
    _one_output(stopped, srcs[1], out)
    stopped.ended("interrupted", found=5, done=1, skipped=0, failed=0)
    stopped.close()
    killed = JobFolder(str(out), SETTINGS, False, shard=Shard(3, 3), command="xvertfast enhance in -o out --shard 3/3",
                       cwd=str(tmp_path / "my dir"))  # fmt: skip
    _one_output(killed, srcs[2], out)
    killed.close()  # no end record: as a kill -9 leaves it (the lock goes with the process)
    by = {led.shard: led for led in job_status(str(out), "enhance").ledgers}
    assert (by["1/3"].ended, by["1/3"].stop, by["1/3"].counts) == (
        "finished", None, {"found": 3, "done": 1, "skipped": 1, "failed": 1})
    assert (by["2/3"].ended, by["2/3"].stop, by["2/3"].counts["done"]) == ("stopped", "interrupted", 1)
    assert (by["3/3"].ended, by["3/3"].stop, by["3/3"].counts) == ("stopped", "killed, or its node lost", None)
    assert by["2/3"].command == "xvertfast enhance 'my scans' -o /abs/out --shard 2/3" and by["2/3"].cwd is None
    assert by["3/3"].cwd == str(tmp_path / "my dir")
    said = _status_lines(out, capsys)
    assert re.search(r"shard 1/3 +1 done .* finished .* ago: 1 input done, 1 skipped, 1 failed\n", said), said
    assert re.search(r"shard 2/3 +1 done .* stopped .* ago \(interrupted\): 1 input done, 0 skipped, 0 failed, 4 left\n",
                     said), said  # fmt: skip
    assert re.search(r"shard 3/3 +1 done .* stopped \(killed, or its node lost\)\n", said), said
    assert "  finished: shard 1/3\n  stopped: shard 2/3, shard 3/3\n" in said
    assert "  to resume shard 2/3: xvertfast enhance 'my scans' -o /abs/out --shard 2/3\n" in said
    assert f"  to resume shard 3/3: cd {shlex.quote(str(tmp_path / 'my dir'))} && xvertfast enhance in -o out " \
           "--shard 3/3\n" in said  # fmt: skip
    assert "INPUT ..." not in said and "done with its part, or stopped" not in said
    assert main(["status", str(out), "--json"]) == 0
    ledgers = json.loads(capsys.readouterr().out)[0]["ledgers"]
    assert [(led["shard"], led["running"], led["ended"], led["stop"]) for led in ledgers] == [
        ("1/3", False, "finished", None), ("2/3", False, "stopped", "interrupted"),
        ("3/3", False, "stopped", "killed, or its node lost")]  # fmt: skip
    assert ledgers[2]["command"] == "xvertfast enhance in -o out --shard 3/3"


def test_a_run_started_from_python_has_no_command_and_status_gives_the_template(tmp_path, capsys):
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False)  # (the Python API: no command line)
    job.ended("the disk is full", found=2, done=0, skipped=0, failed=1)
    job.close()
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.command) == ("stopped", "the disk is full", None)
    said = _status_lines(out, capsys)
    assert "stopped" in said and "(the disk is full)" in said
    assert f"xvertfast enhance INPUT ... -o {out} (" in said  # the template: its inputs are not recorded
    # what must change first, as a recorded command's line says it ("to resume ..., once the disk has room: ...")
    assert "  to resume one that stopped, once the disk has room, run its command again: xvertfast enhance" in said
    # a shell glob of 30 000 files: a line of megabytes in a ledger of small lines; not recorded
    globbed = shlex.join(["xvertfast", "enhance", *(f"/archive/{i:06d}.dcm" for i in range(30000)), "-o", str(out)])
    JobFolder(str(out), SETTINGS, False, command=globbed).close()
    assert os.path.getsize(out / job_files("enhance")[1]) < 1000
    assert job_status(str(out), "enhance").ledgers[0].command is None
    assert f"xvertfast enhance INPUT ... -o {out} (" in _status_lines(out, capsys)


def test_a_ledger_of_an_earlier_version_reads_as_before(tmp_path, capsys):
    # no run records at all: status says what it said before they were kept
    out = tmp_path / "out"
    out.mkdir()
    src = _input(tmp_path, "a.png")
    (out / "a.png").write_bytes(b"output")
    (out / job_files("enhance")[0]).write_text(json.dumps({"xvertfast": "0.0.9", "settings": SETTINGS}))
    key = JobFolder(str(out), SETTINGS, False, read_only=True).key
    line = {"output": "a.png", "input": os.path.realpath(src), "state": "done", "settings": key, "stat": [1, 2],
            "t": 1}  # fmt: skip
    (out / shard_files("enhance", Shard(1, 2))[0]).write_text(json.dumps(line) + "\n")
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.running, led.ended, led.command) == (False, None, None)
    said = _status_lines(out, capsys)
    assert re.search(r"shard 1/2 +1 done .* not running\n", said), said
    assert "  not running: shard 1/2 (done with its part, or stopped before the end" in said
    assert f"xvertfast enhance INPUT ... -o {out} --shard 1/2 (" in said


def test_outputs_written_after_the_end_record_by_an_earlier_version_leave_the_end_unknown(tmp_path):
    # a new run finished, then an earlier xvertfast (which keeps no run records) ran into the folder:
    # the end record is not of that latest run, which may have been killed
    out = tmp_path / "out"
    src = _input(tmp_path, "a.png")
    job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
    job.ended(None, found=1, done=0, skipped=0, failed=0)
    job.close()
    ledger = out / job_files("enhance")[1]
    line = {"output": "a.png", "input": os.path.realpath(src), "state": "writing", "settings": job.key, "t": 2}
    with open(ledger, "a") as f:
        f.write(json.dumps(line) + "\n")
    assert job_status(str(out), "enhance").ledgers[0].ended is None


def test_run_records_do_not_change_what_a_rerun_skips_and_a_cut_end_record_is_tolerated(tmp_path):
    out = tmp_path / "out"
    srcs = [_input(tmp_path, f"{n}.png") for n in "ab"]
    job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
    _one_output(job, srcs[0], out)
    job.ended(None, found=1, done=1, skipped=0, failed=0)
    job.close()
    ledger = out / job_files("enhance")[1]
    lines = ledger.read_text().splitlines()
    assert [json.loads(ln).get("run") for ln in lines] == ["start", None, None, "end"]
    assert all(len(ln) < 300 for ln in lines)  # (a ledger holds tens of thousands of lines)
    # every earlier xvertfast's reader skips a line without "output" (as one cut short): the run
    # records name none, so an earlier version resumes from the same outputs
    assert all("output" not in json.loads(ln) for ln in (lines[0], lines[-1]))
    entries, _, _, _ = read_ledgers([str(ledger)])
    assert list(entries) == ["a.png"]
    with open(ledger, "a") as f:  # a second run killed while writing its end record
        f.write(lines[0] + "\n" + lines[-1][:20])
    assert job_status(str(out), "enhance").ledgers[0].ended == "stopped"  # (killed: no end record after its start)
    again = JobFolder(str(out), SETTINGS, False)
    assert again.state(srcs[0], str(out / "a.png")) == ("done", None)
    assert again.state(srcs[1], str(out / "b.png")) == ("new", None)
    again.ended(None, found=2, done=0, skipped=2, failed=0)
    again.close()
    assert job_status(str(out), "enhance").ledgers[0].ended == "finished"
    assert all(json.loads(ln) for ln in ledger.read_text().splitlines() if not ln.startswith(lines[-1][:20]))


def _radiographs(folder, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    x = np.linspace(-1, 1, 96)
    for k, name in enumerate(names):
        body = np.exp(-(x[None, :] ** 2) / 0.02) * 0.6 + 0.2 + 0.05 * np.random.default_rng(k).random((96, 96))
        Image.fromarray(np.round(np.clip(body, 0, 1) * 255).astype(np.uint8)).save(folder / name)


def test_the_cli_records_its_command_and_the_folder_for_relative_paths(tmp_path, monkeypatch, capsys):
    _radiographs(tmp_path / "in", ["a.png"])
    monkeypatch.chdir(tmp_path)
    assert main(["preprocess", "in", "-o", "out", "-q", "--overwrite"]) == 0
    capsys.readouterr()
    led = job_status("out", "preprocess").ledgers[0]
    assert (led.ended, led.counts) == ("finished", {"found": 1, "done": 1, "skipped": 0, "failed": 0})
    assert (led.command, led.cwd) == ("xvertfast preprocess in -o out -q --overwrite", str(tmp_path))
    said = _status_lines("out", capsys)
    assert re.search(r"without --shard .* finished .* ago: 1 input done, 0 skipped, 0 failed\n", said), said
    assert main(["preprocess", str(tmp_path / "in"), "-o", str(tmp_path / "abs"), "-q"]) == 0
    led = job_status(str(tmp_path / "abs"), "preprocess").ledgers[0]
    assert led.command == shlex.join(["xvertfast", "preprocess", str(tmp_path / "in"), "-o", str(tmp_path / "abs"),
                                      "-q"]) and led.cwd is None  # fmt: skip


def test_status_resume_command_leaves_out_overwrite(tmp_path, capsys):
    # the command again with --overwrite would redo what the stopped run had done
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, True, command="xvertfast enhance in -o /x/out --overwrite --shard 1/1")
    job.ended("interrupted", found=3, done=1, skipped=0, failed=0)
    job.close()
    said = _status_lines(out, capsys)
    assert "  to resume the job without --shard: xvertfast enhance in -o /x/out --shard 1/1\n" in said, said


def test_status_over_many_stopped_shards_builds_the_parser_once(tmp_path, capsys, monkeypatch):
    # the resume command of each stopped shard, its options spelt out whole, built the whole parser
    # (~75 ms) to read the commands' options: 1-5 s of `xvertfast status` over 64 shards
    from xvertfast import cli

    out = tmp_path / "out"
    for k in range(1, 5):
        job = JobFolder(str(out), SETTINGS, False, shard=Shard(k, 4),
                        command=f"xvertfast enhance in --out o --shard {k}/4")  # (--output abbreviated)
        job.ended("interrupted", found=2, done=0, skipped=0, failed=0)
        job.close()
    built, build = [], cli.build_parser
    monkeypatch.setattr(cli, "build_parser", lambda: built.append(1) or build())
    said = _status_lines(out, capsys)
    assert all(f"  to resume shard {k}/4: xvertfast enhance in --output o --shard {k}/4\n" in said for k in range(1, 5))
    assert len(built) <= 2, f"the parser was built {len(built)} times"  # (status's own, and the options read once)


_KILLABLE = """
import sys, time
from xvertfast.pipeline import preprocess_files as p
real, count = p._one, []
def one(*args, **kwargs):
    if count:  # the second input: hold the job here until killed
        print("running", flush=True)
        time.sleep(300)
    count.append(1)
    return real(*args, **kwargs)
p._one = one
from xvertfast.cli import main
from xvertfast.io.files import file_state
sys.argv = ["xvertfast", *sys.argv[1:]]
sys.exit(main())
"""


def test_a_job_killed_shows_stopped_with_its_command_and_that_command_resumes_it(tmp_path, capsys, monkeypatch):
    _radiographs(tmp_path / "in", ["a.png", "b.png", "c.png"])
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, "preprocess", "in", "-o", "out", "-q"], cwd=tmp_path,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        assert proc.stdout.readline() == "running\n"
        led = job_status(str(tmp_path / "out"), "preprocess").ledgers[0]
        assert (led.running, led.ended) == (True, None)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    said = _status_lines(tmp_path / "out", capsys)
    assert re.search(r"without --shard .* stopped \(killed, or its node lost\)\n", said), said
    command = f"cd {shlex.quote(str(tmp_path))} && xvertfast preprocess in -o out -q"
    assert f"  to resume the job without --shard: {command}\n" in said
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command.split(" && ")[1])[1:]) == 0  # the command status gave
    assert "0 done" not in capsys.readouterr().out
    led = job_status(str(tmp_path / "out"), "preprocess").ledgers[0]
    assert (led.ended, led.counts) == ("finished", {"found": 3, "done": 2, "skipped": 1, "failed": 0})


def test_enhance_records_its_end_and_an_error_that_stops_it(tmp_path, model_dir, seed, monkeypatch, capsys):  # noqa: F811
    from tests.io.test_job_folder import run, write_pngs
    from xvertfast.infer import batch

    write_pngs(tmp_path / "in", seed, ["a.png", "b.png"])
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 0
    led = job_status(str(tmp_path / "out"), "enhance").ledgers[0]
    assert (led.ended, led.counts) == ("finished", {"found": 2, "done": 2, "skipped": 0, "failed": 0})
    assert led.command.startswith(f"xvertfast enhance {shlex.quote(str(tmp_path / 'in'))} -o ") and led.cwd is None

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(batch, "_run", broken)
    assert run(model_dir, tmp_path / "in", "-o", tmp_path / "out") == 2  # (the CLI says the error)
    led = job_status(str(tmp_path / "out"), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.counts) == ("stopped", "an error: RuntimeError: a bug", None)
    said = _status_lines(tmp_path / "out", capsys)
    assert "stopped" in said and "(an error: RuntimeError: a bug)" in said and "  to resume the job without" in said


def test_a_job_run_as_python_m_xvertfast_records_that_command(tmp_path):
    # it recorded 'xvertfast preprocess ...', which fails ('command not found') where the user ran
    # python -m xvertfast for want of the xvertfast script on the PATH (a --user install, a module)
    _radiographs(tmp_path / "in", ["a.png"])
    subprocess.run([sys.executable, "-m", "xvertfast", "preprocess", "in", "-o", "out", "-q"], cwd=tmp_path, check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, timeout=300)  # fmt: skip
    led = job_status(str(tmp_path / "out"), "preprocess").ledgers[0]
    assert led.command == shlex.join([sys.executable, "-m", "xvertfast", "preprocess", "in", "-o", "out", "-q"])


def test_a_run_ending_or_starting_while_status_reads_is_not_called_killed(tmp_path, monkeypatch):
    # status read the ledger, then looked at the lock: a run that wrote its end and let its lock go
    # in between read as 'stopped (killed, or its node lost)', with a command to resume it
    from xvertfast.io import job_folder

    out = tmp_path / "out"
    real_read = job_folder.read_ledgers
    job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")

    def read_then_the_run_ends(*args):
        read = real_read(*args)
        job.ended(None, found=0, done=0, skipped=0, failed=0)
        job.close()
        return read

    monkeypatch.setattr(job_folder, "read_ledgers", read_then_the_run_ends)
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.running, led.ended, led.stop) == (True, None, None)  # (running as it was read)
    assert job_status(str(out), "enhance").ledgers[0].ended == "finished"
    started = []

    def read_then_a_run_starts(*args):  # a run starting after the locks were looked at
        read = real_read(*args)
        if not started:  # (the run reads the ledgers too)
            started.append(None)
            started[0] = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
        return read

    monkeypatch.setattr(job_folder, "read_ledgers", read_then_a_run_starts)
    try:
        assert job_status(str(out), "enhance").ledgers[0].stop != "killed, or its node lost"
    finally:
        started[0].close()


def test_a_run_ending_while_status_reads_is_not_called_starting(tmp_path, monkeypatch):
    # its lock held before the ledgers were read, let go after (running, on purpose), its end line the
    # latest: it was said "starting: its command not recorded yet", command, cwd and host null, where
    # its own start line gave them. Starting is only where the lock is held after the read
    from xvertfast.io import job_folder

    out = str(tmp_path / "out")
    with JobFolder(out, SETTINGS, False, command="xvertfast enhance old -o out") as earlier:  # (an earlier run)
        earlier.ended(None, found=0, done=0, skipped=0, failed=0)
    job, real_read = JobFolder(out, SETTINGS, False, command="xvertfast enhance new -o out"), job_folder.read_ledgers

    def the_run_ends_then_read(*args):
        job.ended(None, found=0, done=0, skipped=0, failed=0)
        job.close()
        return real_read(*args)

    monkeypatch.setattr(job_folder, "read_ledgers", the_run_ends_then_read)
    led = job_status(out, "enhance").ledgers[0]
    assert (led.running, led.starting, led.command) == (True, False, "xvertfast enhance new -o out")


def test_an_error_of_several_lines_that_stopped_a_run_is_said_on_its_status_row(tmp_path, capsys):
    # torch's errors run over lines ('CUDA error: ...\nCUDA kernel errors might be ...'): the
    # status row went on over them, the counts of the next rows below
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
    job.ended_by(RuntimeError("CUDA error: an illegal memory access\nCUDA kernel errors might be reported later"))
    job.close()
    assert job_status(str(out), "enhance").ledgers[0].stop == "an error: RuntimeError: CUDA error: an illegal memory access"
    said = _status_lines(out, capsys)
    assert re.search(r"without --shard .* stopped .* \(an error: RuntimeError: CUDA error: an illegal memory access\)\n",
                     said), said  # fmt: skip


def test_a_run_stopped_with_nothing_left_to_do_reads_as_finished(tmp_path):
    # a Ctrl-C (or SIGTERM) held while a job's last outputs are written stops it as interrupted
    # (exit 130/143); status then offered to resume a shard that had nothing left to do
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2), command="xvertfast enhance in -o out --shard 1/2")
    _one_output(job, _input(tmp_path, "a.png"), out)
    job.ended("interrupted", found=2, done=1, skipped=1, failed=0)
    job.close()
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop) == ("finished", None)


def test_a_run_started_on_another_machine_is_not_called_killed_outright(tmp_path, capsys, monkeypatch):
    # where file locks do not reach across machines (BeeGFS by default, Lustre with localflock),
    # a shard running on another node looks unlocked here: it was called killed, with a command
    # to resume it, which would make two jobs write its outputs
    import socket

    out = tmp_path / "out"
    monkeypatch.setattr(socket, "gethostname", lambda: "node7")
    job = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2), command="xvertfast enhance in -o out --shard 1/2")
    monkeypatch.undo()
    _one_output(job, _input(tmp_path, "a.png"), out)
    job.close()  # no end record, no lock held: killed, or running where its lock is not seen
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop, led.elsewhere) == ("stopped", "killed, or its node lost", "node7")
    said = _status_lines(out, capsys)
    assert "stopped (killed, or its node lost; or still running on node7, whose lock may not be seen here)" in said
    assert "  to resume shard 1/2, once it no longer runs on node7: xvertfast enhance in -o out --shard 1/2\n" in said


def test_a_run_is_the_with_block_of_its_folder(tmp_path):
    # enhance and preprocess each wrote its run's end and closed the folder with a try block of
    # their own; the with block does it for both: an exception out of it is recorded as the
    # run's end (unless the run recorded one), and the lock is let go
    from xvertfast.resume import lock_held

    out = tmp_path / "out"
    for raised, stop in ((KeyboardInterrupt(), "interrupted"), (RuntimeError("a bug"), "an error: RuntimeError: a bug")):
        try:
            with JobFolder(str(out), SETTINGS, False) as job:
                raise raised
        except type(raised):
            pass
        assert job_status(str(out), "enhance").ledgers[0].stop == stop
        assert lock_held(str(out / job_files("enhance")[2])) is False
    with JobFolder(str(out), SETTINGS, False) as job:
        job.ended(None, found=0, done=0, skipped=0, failed=0)
    assert job_status(str(out), "enhance").ledgers[0].ended == "finished"
    try:
        with JobFolder(str(out), SETTINGS, False) as job:
            job.ended("the disk is full")
            raise KeyboardInterrupt  # (the end already recorded stays)
    except KeyboardInterrupt:
        pass
    assert job_status(str(out), "enhance").ledgers[0].stop == "the disk is full"


def test_job_status_says_why_it_has_no_settings_naming_the_file(tmp_path):
    """The reason is job_status's to give (status prints it): the CLI read the settings file a
    second time to find it, apart from the read that had failed."""
    settings_name, ledger_name, _ = job_files("enhance")
    for name, content, why in [("damaged", "{not json", "is not valid JSON ("), ("empty", "{}", "holds no settings"),
                               ("a list", "[1]", "holds no settings"), ("ledger-only", None, "is missing"),
                               ("readable", json.dumps({"settings": SETTINGS}), None)]:  # fmt: skip
        folder = tmp_path / name
        folder.mkdir()
        (folder / ledger_name).write_text("")
        if content is not None:
            (folder / settings_name).write_text(content)
        problem = job_status(str(folder), "enhance").settings_problem
        if why is None:
            assert problem is None, problem
        else:
            assert problem is not None and problem.startswith(f"{folder / settings_name} {why}"), (name, problem)


def test_status_names_the_first_inputs_a_run_failed_and_where_all_of_them_are(tmp_path, monkeypatch, capsys,
                                                                             model_dir):  # noqa: F811
    # a finished job's row said "0 inputs done, 0 skipped, 5 failed" alone: which files, and why, were
    # in no file where the run had no --report, and the report it had was not pointed to
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("".join(f"gone{k}.png\n" for k in range(5)))
    assert main(["enhance", "@list.txt", "-o", "out", "--model", str(model_dir), "-q", "--report", "run.json"]) == 1
    capsys.readouterr()
    said = _status_lines("out", capsys)
    assert ("    failed: gone0.png: no such file or folder (list.txt, line 1)\n"
            "    failed: gone1.png: no such file or folder (list.txt, line 2)\n"
            "    failed: gone2.png: no such file or folder (list.txt, line 3)\n"
            f"    and 2 more: all 5 are in its report, {tmp_path / 'run.json'}\n") in said, said
    # said only of that run's report: not of one never written or removed since, nor an older one there
    rest = ("\n    and 2 more, not recorded here: its run listed each as it went (its 'error:' lines), and its "
            "command run again lists them again (with --report FILE, in a file), skipping what is done\n")
    to_be = f"    its report was to be written to {tmp_path / 'run.json'}: "
    os.utime(tmp_path / "run.json", (0, 0))  # (a file there, but older: not called missing, which `ls` belies)
    older = "the file there is older than the run's end, so not its report (not written, or replaced since)"
    assert to_be + older + rest in _status_lines("out", capsys)
    (tmp_path / "run.json").unlink()
    assert to_be + "not there now (not written, or removed since)" + rest in _status_lines("out", capsys)
    assert main(["preprocess", "@list.txt", "-o", "pre", "-q"]) == 1
    capsys.readouterr()
    said = _status_lines("pre", capsys)
    assert said.count("    failed: ") == 3 and "gone3" not in said, said
    assert ("    and 2 more, not recorded here: its run listed each as it went (its 'error:' lines), and its command "
            "run again lists them again, skipping what is done\n") in said, said
    (tmp_path / "list.txt").write_text("gone0.png\n")  # one failed: named, nothing more to point to
    assert main(["preprocess", "@list.txt", "-o", "one", "-q"]) == 1
    capsys.readouterr()
    said = _status_lines("one", capsys)
    assert said.count("    failed: gone0.png: no such file or folder (list.txt, line 1)\n") == 1 and "more" not in said


def test_a_runs_report_is_told_by_its_end_lines_clock_or_its_ledgers_and_status_json_says_what_is_there(
        tmp_path, monkeypatch, capsys):  # fmt: skip
    """Status dated a --report against the run's end line, by the job machine's clock: where the report
    is on a network share whose server's clock is behind, the report the run wrote was said to be
    "older than the run's end, so not its report". It is the run's where written at that line or at
    the ledger's last write (the file system's clock), the earlier (the report may be on either's
    disk). `status --json` gave only the path recorded; its `report_state` says what is there."""
    import time

    from xvertfast.io import job_folder

    out, report = tmp_path / "out", tmp_path / "run.json"
    ledger, clock = out / job_files("enhance")[1], time.time_ns

    def report_state() -> str:
        assert main(["status", str(out), "--json"]) == 0
        return json.loads(capsys.readouterr().out)[0]["ledgers"][0]["report_state"]

    for job_ahead in (True, False):
        if job_ahead:  # the job machine's clock an hour ahead of the file server's, which dates the files
            monkeypatch.setattr(job_folder.time, "time_ns", lambda: clock() + 3600 * 10**9)
        with JobFolder(str(out), SETTINGS, False, side_files={"report": str(report)}) as job:
            job.ended(None, failures=[("a.png", "a.png: cannot be read")], found=1, done=0, skipped=0, failed=1)
        monkeypatch.undo()
        if not job_ahead:  # the file server's clock an hour ahead, the report on the job machine's own disk
            os.utime(ledger, (time.time() + 3600,) * 2)
        report.write_text("{}")  # (written as the run ended)
        assert f"    all 1 are in its report, {report}\n" in _status_lines(out, capsys), job_ahead
        assert report_state() == "written"
    os.utime(report, (0, 0))
    assert report_state() == "older"
    report.unlink()
    assert report_state() == "missing"


def test_a_long_failure_reason_is_cut_in_its_middle_and_a_damaged_failures_field_is_none(tmp_path, capsys):
    # why[:500] cut a reason that starts with its input's path at its end: a 600-character path left
    # no reason at all, and no mark of the cut; a ledger's "failures": 5 crashed status (TypeError)
    out = tmp_path / "out"
    long = "/data/" + "d" * 600 + "/x.png"
    with JobFolder(str(out), SETTINGS, False) as job:
        job.ended(None, failures=[(long, f"{long}: cannot be read: truncated")], found=1, done=0, skipped=0, failed=1)
    [(path, why)] = job_status(str(out), "enhance").ledgers[0].failures
    assert path == long and len(why) == 500 and why.startswith("/data/ddd") and " ... " in why, why
    assert why.endswith("ddd/x.png: cannot be read: truncated"), why
    ledger = out / job_files("enhance")[1]
    lines = ledger.read_text().splitlines()
    end = json.loads(lines[-1])
    assert end["failures"][0][1] == why
    for damaged in (5, "x", [5, ["a"]]):
        lines[-1] = json.dumps({**end, "failures": damaged})
        ledger.write_text("\n".join(lines) + "\n")
        assert job_status(str(out), "enhance").ledgers[0].failures == []
        assert "1 failed" in _status_lines(out, capsys)


def test_a_job_holds_its_folders_lock_from_its_start_so_status_does_not_call_the_earlier_run_stopped(tmp_path,
                                                                                                     monkeypatch,
                                                                                                     capsys):
    """A job took its output folder's lock only once torch and its model had loaded (seconds; minutes to
    build TensorRT engines): until then `xvertfast status` said the folder's earlier run "stopped
    (interrupted)" and gave the command that resumes it, and a user who ran that started a second
    job. The command takes the lock as it starts, where an earlier run made it: status says running.
    Until the job records its start, the ledger's latest start is the earlier run's: status --json gave
    its command and host as the running one's; it says the run is starting, its command not known yet."""
    import xvertfast.cli as cli
    from tests.pipeline.test_preprocess_files import radiograph_like
    from xvertfast.pipeline.preprocess_files import SETTINGS as PREPROCESS

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(radiograph_like(0, 32)).save(src / "a.png")
    with JobFolder(str(out), PREPROCESS, False, job="preprocess", command="xvertfast preprocess in -o out") as job:
        job.ended("interrupted", found=1, done=0, skipped=0, failed=0)
    load_torch, seen = cli._load_torch, []

    def loading():  # as torch loads
        led = job_status(str(out), "preprocess").ledgers[0]
        seen.append({key: getattr(led, key, "?") for key in ("running", "ended", "command", "host", "starting")})
        assert main(["status", str(out)]) == 0
        load_torch()

    monkeypatch.setattr(cli, "_load_torch", loading)
    assert main(["preprocess", str(src), "-o", str(out), "-q"]) == 0  # (the job took the lock over)
    assert seen == [{"running": True, "ended": None, "command": None, "host": None, "starting": True}]
    assert "running now (starting: its command not recorded yet)" in capsys.readouterr().out
    led = job_status(str(out), "preprocess").ledgers[0]
    assert (led.running, led.ended, led.done, led.starting) == (False, "finished", 4, False)
    assert led.command.endswith(f"preprocess {src} -o {out} -q")  # (this run's, recorded as it started)
    # once it records its start, the running run's own command; a ledger of an xvertfast before run records
    # (no start, no end), its job running, is not said to be starting
    from xvertfast.io.job_folder import lock_early

    let_go = lock_early(str(out), "preprocess")
    try:
        assert job_status(str(out), "preprocess").ledgers[0].starting
        with JobFolder(str(out), PREPROCESS, False, job="preprocess", command="xvertfast preprocess new -o out"):
            led = job_status(str(out), "preprocess").ledgers[0]
            assert (led.running, led.starting, led.command) == (True, False, "xvertfast preprocess new -o out")
    finally:
        let_go()
    old = tmp_path / "old"
    old.mkdir()
    (old / job_files("preprocess")[1]).write_text(json.dumps({"output": "a.png", "state": "done"}) + "\n")
    from xvertfast.resume import hold_lock

    with hold_lock(str(old / job_files("preprocess")[2])):
        led = job_status(str(old), "preprocess").ledgers[0]
        assert (led.running, led.starting) == (True, False)


def test_a_run_starting_after_one_killed_is_not_given_the_killed_ones_command(tmp_path, capsys):
    """A run killed (kill -9, its node lost: no end line), and the next one started: until that one
    records its start (torch and its model load first: seconds, minutes to build TensorRT engines),
    the ledger's latest start was the killed run's, and status gave its command and host as the one
    running now. The lock, taken since the ledger was last written, tells a run starting."""
    from xvertfast.io.job_folder import lock_early

    out = tmp_path / "out"
    killed = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance old -o out")
    _one_output(killed, _input(tmp_path, "a.png"), out)
    killed.close()  # (no end line: as a kill -9 leaves it)
    ledger = out / job_files("enhance")[1]
    before = os.stat(ledger).st_mtime_ns - 10**9  # (killed a while ago: not within the clock's tick of the start)
    os.utime(ledger, ns=(before, before))
    assert job_status(str(out), "enhance").ledgers[0].stop == "killed, or its node lost"
    let_go = lock_early(str(out), "enhance")  # the next command, loading torch and its model
    try:
        led = job_status(str(out), "enhance").ledgers[0]
        assert (led.running, led.starting, led.command, led.host, led.ended) == (True, True, None, None, None)
        assert "running now (starting: its command not recorded yet)" in _status_lines(out, capsys)
        with JobFolder(str(out), SETTINGS, False, command="xvertfast enhance new -o out"):  # its start recorded
            led = job_status(str(out), "enhance").ledgers[0]
            assert (led.running, led.starting, led.command) == (True, False, "xvertfast enhance new -o out")
    finally:
        let_go()


def test_a_run_the_full_disk_stopped_is_said_so_where_its_ledger_cannot_take_its_end(tmp_path, capsys, monkeypatch):
    """A full disk stopped the job, and its ledger could not take the end line either: status said the
    run was "killed, or its node lost", not that the disk is full, nor that it resumes once there is
    room. The end record goes in its lock's room then, made as the run took it."""
    import errno

    from xvertfast._text import middle_cut
    from xvertfast.io.job_folder import REASON_CHARS

    out = tmp_path / "out"
    srcs = [_input(tmp_path, f"{n}.png") for n in "abc"]
    reasons = [(src, f"{src}: {'why ' * 200}cannot be written ({os.strerror(errno.ENOSPC)})") for src in srcs]

    def full(text, durable):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    for failures in (reasons[1:2], reasons):  # (three of 500 characters: too long for the room, left out)
        job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
        _one_output(job, srcs[0], out)
        with monkeypatch.context() as patch:
            patch.setattr(job, "_write", full)
            job.ended("the disk is full", found=3, done=1, skipped=0, failed=1, failures=failures)
        job.close()
        led = job_status(str(out), "enhance").ledgers[0]
        assert (led.ended, led.stop, led.counts) == ("stopped", "the disk is full",
                                                     {"found": 3, "done": 1, "skipped": 0, "failed": 1})  # fmt: skip
        assert led.failures == ([(srcs[1], middle_cut(reasons[1][1], REASON_CHARS, " ... "))]
                                if len(failures) == 1 else []), led.failures  # fmt: skip
    said = _status_lines(out, capsys)
    assert re.search(r"stopped .* ago \(the disk is full\): 1 input done, 0 skipped, 1 failed, 1 left\n", said), said
    assert "  to resume the job without --shard, once the disk has room: xvertfast enhance in -o out\n" in said, said
    JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out").close()  # the next run, killed
    assert job_status(str(out), "enhance").ledgers[0].stop == "killed, or its node lost"  # (not the run's before)


def test_a_run_its_full_log_stopped_while_planning_resumes_once_the_disk_has_room(tmp_path, capsys):
    """enhance records a stop before its first image as "... while planning": status's resume line
    left out ", once the disk has room" for such a stop (its log on a full disk), which it gives
    for the same stop later in the job."""
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
    job.ended("its log could not be written (the disk is full) while planning", found=3)
    job.close()
    said = _status_lines(out, capsys)
    assert "  to resume the job without --shard, once the disk has room: xvertfast enhance in -o out\n" in said, said


def test_status_says_how_many_inputs_a_running_run_found(tmp_path, capsys, seed, model_dir):  # noqa: F811
    """`xvertfast status OUT` during a job of 20,000 images said "14000 done ... running now", and
    nothing of what that count goes towards: the run's start line records the inputs it found (its
    part, for a shard), and status says it beside "running now"."""
    from tests.io.test_job_folder import write_pngs

    out = tmp_path / "out"
    with JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out", found=18) as job:
        _one_output(job, _input(tmp_path, "a.png"), out)
        said = _status_lines(out, capsys)
        assert re.search(r"without --shard +1 done .* running now \(its run found 18 inputs\)\n", said), said
        assert main(["status", str(out), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["ledgers"][0]["found"] == 18
    with JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2), found=1):
        assert "running now (its run found 1 input of its part)" in _status_lines(out, capsys)
    # enhance records them: here its one input fails as it plans (a file it did not write at its output's path)
    src, out = tmp_path / "pngs", tmp_path / "out2"
    write_pngs(src, seed, ["a.png"])
    out.mkdir()
    (out / "a.png").write_bytes(b"another tool's")
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q"]) == 1
    capsys.readouterr()
    starts = [line for line in (out / job_files("enhance")[1]).read_text().splitlines() if '"start"' in line]
    assert [json.loads(line).get("found") for line in starts] == [1], starts


@pytest.mark.parametrize("said_to_take_fds", [False, True])
def test_a_job_starts_where_no_time_is_set_through_an_open_file(tmp_path, monkeypatch, said_to_take_fds):
    """Windows: os.utime takes no file descriptor (a TypeError), and there is no flock. Marking the lock
    taken, for status, stopped every enhance and preprocess job there from starting: JobFolder raised
    AttributeError (the lock's 'unmark'), hiding the TypeError the command's early lock raised.
    ``said_to_take_fds``: os.supports_fd lists that utime all the same (the TypeError raised as it is
    tried), not only where it does not (it is not tried)."""
    from xvertfast.io.job_folder import lock_early

    real = os.utime

    def utime(path, *args, **kwargs):
        if isinstance(path, int):  # (as CPython's on Windows)
            raise TypeError("utime: path should be string, bytes or os.PathLike, not int")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "utime", utime)
    monkeypatch.setattr(os, "supports_fd", (os.supports_fd - {real}) | ({utime} if said_to_take_fds else set()))
    monkeypatch.setitem(sys.modules, "fcntl", None)
    out = tmp_path / "out"
    srcs = [_input(tmp_path, f"{n}.png") for n in "ab"]
    with JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out") as job:  # (the folder new)
        _one_output(job, srcs[0], out)
    let_go = lock_early(str(out), "enhance")  # the next command, loading torch and its model
    try:
        with JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out") as job:
            assert job.state(srcs[0], str(out / "a.png"))[0] == "done"
            _one_output(job, srcs[1], out)
            job.ended(None, found=2, done=1, skipped=1, failed=0)
    finally:
        let_go()
    assert job_status(str(out), "enhance").ledgers[0].ended == "finished"


def test_the_locks_room_is_synced_before_the_start_line_and_so_is_an_end_record_left_there(tmp_path, monkeypatch):
    """An NFS or SMB client sends a cached write later, and its server times the file then: the room
    written over the lock as the run starts reached the server after the start line (synced at once),
    so the lock looked taken since its ledger was written and status said "running now (starting: ...)",
    with no command, for tens of seconds. An end record left in that room (the disk full) is synced too:
    a server that copies on write refuses it only as it is sent (see the test below)."""
    import errno

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd))[1])
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out")
    _, ledger, lock = (os.stat(out / name).st_ino for name in job_files("enhance"))
    assert synced[-2:] == [lock, ledger], (synced, lock, ledger)  # the room, then the start line
    synced.clear()

    def full(text, durable):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(job, "_write", full)
    job.ended("the disk is full", found=1, done=0, skipped=0, failed=0)
    assert synced == [lock]
    job.close()
    assert job_status(str(out), "enhance").ledgers[0].stop == "the disk is full"


def test_every_lock_is_let_go_and_the_run_ends_quietly_where_closing_one_fails(tmp_path):
    """An NFS client sends a cached write as the file closes, so close(2) may fail (ENOSPC: the end
    record left in a lock on the export of a server that copies on write, the disk full): the run ended
    with a traceback, and its locks after that one were not closed."""
    import errno

    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2), command="xvertfast enhance in -o out --shard 1/2")
    locks = list(job._locks)
    assert len(locks) > 1  # (the folder's, shared; the shard's own; its count's; the shards-running one)
    for lock in locks:
        def failing_close(lock=lock, real=lock.close):
            if not lock.closed:  # (as close(2): the file closed, its error said once)
                real()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        lock.close = failing_close
    with job:
        job.ended(None, found=0, done=0, skipped=0, failed=0)
    assert [lock.closed for lock in locks] == [True] * len(locks)
    JobFolder(str(out), SETTINGS, False, command="xvertfast enhance in -o out").close()  # (none held: not refused)


def test_a_second_job_into_a_folder_is_refused_before_torch_loads_and_no_lock_is_made_early(tmp_path, monkeypatch,
                                                                                            capsys):
    """A job running in OUT, a second one into it was refused only after seconds of loading torch and
    the model. It is refused at once now; a folder no run locked yet gets no file before the job
    makes its own, and a command that stops before its job begins lets the lock go."""
    import xvertfast.cli as cli
    from xvertfast.io.job_folder import lock_early
    from xvertfast.resume import hold_lock, lock_held

    src, out, new = _input(tmp_path, "a.png"), tmp_path / "out", tmp_path / "new"
    with JobFolder(str(out), SETTINGS, False):  # (an earlier run: its lock made)
        pass
    lock = str(out / job_files("enhance")[2])

    def loading():
        raise KeyboardInterrupt  # (the command stops here: Ctrl-C)

    monkeypatch.setattr(cli, "_load_torch", loading)
    held = hold_lock(lock)  # another job's
    try:
        assert main(["enhance", src, "-o", str(out), "-q"]) == 2
        assert f"error: another xvertfast enhance is writing into {out} (it holds {lock})" in capsys.readouterr().err
    finally:
        held.close()
    assert main(["enhance", src, "-o", str(out), "-q"]) == 130  # (torch loading: interrupted)
    assert job_status(str(out), "enhance").ledgers[0].running is False  # (let go)
    new.mkdir()
    assert main(["enhance", src, "-o", str(new), "-q", "--shard", "1/2"]) == 130
    assert os.listdir(new) == []
    # a shard's own lock, taken early, is taken over by its job folder, which lets it go as it closes
    with JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2)):
        pass
    let_go = lock_early(str(out), "enhance", Shard(1, 2))
    with JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2)):
        let_go()
        assert lock_held(str(out / shard_files("enhance", Shard(1, 2))[1]))
    assert not lock_held(str(out / shard_files("enhance", Shard(1, 2))[1]))


def test_a_pacs_exports_objects_that_are_no_images_are_passed_over_not_failed(tmp_path, capsys, seed,
                                                                              model_dir):  # noqa: F811
    # a PACS export holds presentation states (PR), reports (SR) beside its images: each was a failure,
    # so every export's job ended with exit code 1 and its failures listed them, hiding the real ones.
    # They are counted apart (by NotAnImage, not by their words); a damaged image still fails
    from tests.io.test_job_folder import write_pngs
    from tests.io.test_read import make_dicom, no_image_dicom

    src, out = tmp_path / "in", tmp_path / "out"
    write_pngs(src, seed, ["a.png"])
    no_image_dicom(src / "pr.dcm")
    no_image_dicom(src / "sr.dcm", "1.2.3.4.5", "SR")
    make_dicom(src / "cut.dcm", np.zeros((6, 8), np.uint16), pixel_data=False)  # an image's header alone
    common = ["--model", str(model_dir), "--device", "cpu", "-q"]
    assert main(["enhance", str(src), "-o", str(out), *common, "--report", str(tmp_path / "r.json")]) == 1
    said = capsys.readouterr()
    assert "1 done, 0 skipped, 2 not images (PR 1, SR 1), 1 failed in " in said.out, said.out
    assert f"skipped: {src / 'pr.dcm'}: DICOM file has no pixel data: a Grayscale Softcopy Presentation State " \
           "object (Modality PR), not an image" in said.err, said.err  # fmt: skip
    assert "cut.dcm: truncated or corrupt DICOM" in said.err and "failed: " + str(src / "pr.dcm") not in said.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["failed"] == 1 and report["summary"]["not_images"] == {"PR": 1, "SR": 1}
    assert {os.path.basename(f["input"]): (f["status"], f["kind"]) for f in report["files"]} == {
        "a.png": ("done", None), "cut.dcm": ("failed", None), "pr.dcm": ("not_image", "PR"),
        "sr.dcm": ("not_image", "SR")}  # fmt: skip
    (src / "cut.dcm").unlink()  # (copied again, say): every image done, the job ends well
    assert main(["enhance", str(src), "-o", str(out), *common]) == 0
    assert "0 done, 1 skipped, 2 not images (PR 1, SR 1), 0 failed in " in capsys.readouterr().out
    said = _status_lines(out, capsys)
    assert ": 0 inputs done, 1 skipped, 2 not images, 0 failed" in said and "    failed: " not in said, said
    assert main(["status", str(out), "--json"]) == 0
    led = json.loads(capsys.readouterr().out)[0]["ledgers"][0]
    assert led["ended"] == "finished" and led["counts"] == {"found": 3, "done": 0, "skipped": 1, "failed": 0,
                                                            "not_images": 2}  # fmt: skip
    assert main(["preprocess", str(src), "-o", str(tmp_path / "pre"), "-q"]) == 0  # as enhance counts them
    said = capsys.readouterr()
    assert "1 done, 0 skipped, 2 not images (PR 1, SR 1), 0 failed in " in said.out, said.out
    assert f"skipped: {src / 'sr.dcm'}: DICOM file has no pixel data: not an image (SOP class 1.2.3.4.5, " \
           "Modality SR)" in said.err  # fmt: skip
    assert main(["status", str(tmp_path / "pre"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ledgers"][0]["counts"]["not_images"] == 2


def test_a_folder_of_objects_that_are_no_images_alone_is_no_success(tmp_path, capsys, model_dir):  # noqa: F811
    # a folder holding only a PR and an SR (a PACS export's, the images' folder not given): enhance and
    # preprocess exited 0 with "0 done, 0 skipped, 2 not images (PR 1, SR 1), 0 failed", a script going
    # on with nothing made; evaluate exited 1 with "0 images evaluated, 0 failed" and no reason
    from tests.io.test_read import no_image_dicom

    src = tmp_path / "in"
    src.mkdir()
    no_image_dicom(src / "pr.dcm")
    no_image_dicom(src / "sr.dcm", "1.2.3.4.5", "SR")
    for job, args in [("enhance", ["--model", str(model_dir), "--device", "cpu"]), ("preprocess", []),
                      ("evaluate", ["--methods", "identity", "--metrics", "entropy", "--pictures", "0"])]:  # fmt: skip
        assert main([job, str(src), "-o", str(tmp_path / job), "-q", *args]) == 1, job
        said = capsys.readouterr()
        assert f"error: no image among the 2 files found: 2 not images (PR 1, SR 1): nothing to {job}\n" in said.err
    assert main(["enhance", str(src), "-o", str(tmp_path / "s"), "-q", "--model", str(model_dir), "--device", "cpu",
                 "--shard", "1/2"]) == 0  # (a shard's share is not the inputs: the other one may hold the images)
