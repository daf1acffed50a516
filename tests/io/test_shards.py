"""One batch job split into shards: which inputs each takes, the locks that let the shards share
an output folder (and keep other jobs out), and the ledgers every later job reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import let_go_when_waited_for
from tests.infer.test_enhance import model_dir  # noqa: F401 (a fixture)
from tests.io.test_job_folder import run, write_pngs
from xvertfast._text import cli_running
from xvertfast.io import job_folder
from xvertfast.io.job_folder import JobFolder, job_files, shard_files
from xvertfast.io.shards import Shard
from xvertfast.resume import hold_lock

SETTINGS = {"model": "m", "format": "png16"}


def test_parse_reads_k_of_n_and_names_the_form_otherwise():
    assert Shard.parse("2/8") == Shard(2, 8) and Shard.parse(" 1 / 1 ") == Shard(1, 1)
    assert str(Shard(2, 8)) == "shard 2/8" and Shard(2, 8).name == "shard-2-of-8"
    for bad in ("0/4", "5/4", "2", "a/b", "2/0", "-1/4", "1/4/2", ""):
        with pytest.raises(ValueError, match="K/N"):
            Shard.parse(bad)


def test_parse_refuses_a_count_over_the_limit_and_names_it(tmp_path, capsys):
    """A mistyped ``--shard 1/100000000`` ran, and left a ledger whose count every later status
    listed the shards of (one "K/N" each: 1.5 s and 5 M JSON entries at N = 5e6)."""
    from xvertfast.cli import SHARD_HELP, main
    from xvertfast.io.shards import MAX_SHARD_COUNT

    assert f"(1 <= K <= N <= {MAX_SHARD_COUNT})" in SHARD_HELP and MAX_SHARD_COUNT == 10000  # (the error below)
    assert Shard.parse("10000/10000") == Shard(10000, 10000)
    for bad in ("1/10001", "1/100000000"):
        with pytest.raises(ValueError, match=f"K/N with N at most 10000, got '{bad}'"):
            Shard.parse(bad)
    with pytest.raises(SystemExit) as exc:
        main(["enhance", str(tmp_path), "-o", str(tmp_path / "out"), "--shard", "1/100000000"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--shard" in err and "N at most 10000" in err and not (tmp_path / "out").exists()


def test_every_input_belongs_to_exactly_one_shard_whatever_the_others(seed):
    keys = [f"patient{seed % 97}/{i:05d}/img.dcm" for i in range(4000)]
    for n in (1, 2, 3, 8):
        owners = [[k for k in range(1, n + 1) if Shard(k, n).owns(key)] for key in keys]
        assert all(len(o) == 1 for o in owners)
        counts = [sum(o == [k] for o in owners) for k in range(1, n + 1)]
        assert min(counts) > 0.8 * len(keys) / n  # balanced on average (sd ~ sqrt(4000 / n))
    # a key's shard depends on the key alone: the same in any order, after files are added
    assert [Shard(3, 8).owns(k) for k in keys[::-1]] == [Shard(3, 8).owns(k) for k in keys][::-1]


def test_the_shard_of_a_path_does_not_change_between_versions():
    # sha256 of the path, so that a rerun by a later xvertfast resumes its own files; a change here
    # would make a rerun of shard K redo (or refuse) the outputs another version's shard K wrote
    assert [k for k in range(1, 5) if Shard(k, 4).owns("sub/x.png")] == [
        int.from_bytes(__import__("hashlib").sha256(b"sub/x.png").digest()[:8], "big") % 4 + 1]


def test_shards_share_the_folder_and_keep_other_jobs_out(tmp_path):
    out = str(tmp_path / "out")
    a = JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    b = JobFolder(out, SETTINGS, False, shard=Shard(2, 2))
    with pytest.raises(ValueError, match="another xvertfast enhance is writing into"):
        JobFolder(out, SETTINGS, False)
    with pytest.raises(ValueError, match="shard 1/2 of an xvertfast enhance is already writing"):
        JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    with pytest.raises(ValueError, match="shards of 2 of an xvertfast enhance are writing into"):
        JobFolder(out, SETTINGS, False, shard=Shard(1, 3))
    a.close()
    with pytest.raises(ValueError, match="shards of 2"):  # b still runs
        JobFolder(out, SETTINGS, False, shard=Shard(2, 3))
    b.close()
    c = JobFolder(out, SETTINGS, False, shard=Shard(2, 3))  # none of 2 runs now
    c.close()
    whole = JobFolder(out, SETTINGS, False)
    with pytest.raises(ValueError, match=re.escape("not split into shards (shard=None) is writing into")):
        JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    with cli_running(["shard"]), pytest.raises(ValueError, match="without --shard is writing into"):
        JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    whole.close()
    # a refused job leaves no lock behind: all of them can start again
    for shard in (Shard(1, 2), Shard(2, 2)):
        JobFolder(out, SETTINGS, False, shard=shard).close()


def test_shards_that_name_one_report_are_refused_while_one_runs_on_this_machine(tmp_path, monkeypatch):
    """Each shard wrote its report over the others' when it ended, without a word. A shard's start
    line records its side files and host, so a shard naming one another shard runs with on this
    machine is refused before it writes anything into OUT's ledgers. One that has ended is replaced
    with a note, and one of another machine, where the path may be another file, is not compared."""
    out, report = str(tmp_path / "out"), str(tmp_path / "run.json")
    a = JobFolder(out, SETTINGS, False, shard=Shard(1, 2), side_files={"report": report})
    # (a Python caller is told of its arguments, the CLI's user of its options)
    with pytest.raises(ValueError, match=re.escape(f"report={report!r} is also the report of shard 1/2 of this "
                                                   "job, which runs now on this machine") + ".*will write it when it "
                                                   "ends: give each shard a report of its own"):  # fmt: skip
        JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report})
    with cli_running(["report", "preview"]), \
            pytest.raises(ValueError, match=re.escape(f"--report {report} is also the --report of shard 1/2 of this "
                                                      "job, which runs now on this machine") + ".*will write it when "
                                                      "it ends: give each shard a --report of its own"):  # fmt: skip
        JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report})
    with pytest.raises(ValueError, match=f"preview={re.escape(repr(report))} is also the report of shard 1/2"):
        JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"preview": report})
    assert not os.path.exists(os.path.join(out, shard_files("enhance", Shard(2, 2))[0]))  # no ledger begun
    JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report + ".2"}).close()
    a.close()
    # shard 1 ended: replaced, and said where it wrote the file (none here: stopped before writing it)
    b = JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report})
    assert b.notes == []
    b.close()
    open(report, "w").close()
    b = JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report})
    assert b.notes == [f"report={report!r} is the report that shard 1/2 of this job wrote "
                       f"({os.path.join(out, shard_files('enhance', Shard(1, 2))[0])} records it), which has ended: "
                       "this run replaces it when it ends"]
    b.close()
    # a shard of 3 after the shards of 2 had ended (resharded): told the same, of each
    c = JobFolder(out, SETTINGS, False, shard=Shard(1, 3), side_files={"report": report})
    assert [note.split(" of this job")[0][-9:] for note in c.notes] == ["shard 1/2", "shard 2/2"], c.notes
    c.close()
    # another machine's shard running with that path outside OUT: its file may be another, on a disk of its own
    monkeypatch.setattr(job_folder.socket, "gethostname", lambda: "node-b")
    elsewhere = JobFolder(out, SETTINGS, False, shard=Shard(2, 3), side_files={"report": report})
    monkeypatch.undo()
    JobFolder(out, SETTINGS, False, shard=Shard(3, 3), side_files={"report": report}).close()
    elsewhere.close()


def test_shards_of_two_machines_naming_one_report_inside_out_are_refused(tmp_path, monkeypatch):
    """OUT is shared by every shard's host (its ledgers and locks are), so OUT/report.json is one
    file for them all: de07f85 compared side files only between shards of one host, and a shard of
    another machine writing it over the running one's was let run without a word."""
    out = str(tmp_path / "out")
    report = os.path.join(out, "report.json")
    host_a = job_folder.socket.gethostname()
    a = JobFolder(out, SETTINGS, False, shard=Shard(1, 2), side_files={"report": report})
    try:
        monkeypatch.setattr(job_folder.socket, "gethostname", lambda: "node-b")
        with pytest.raises(ValueError, match=re.escape(f"report={report!r} is also the report of shard 1/2 of this "
                                                       f"job, which runs now on {host_a} (")):
            JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report})
        assert not os.path.exists(os.path.join(out, shard_files("enhance", Shard(2, 2))[0]))  # no ledger begun
    finally:
        monkeypatch.undo()
        a.close()


def test_shards_starting_together_with_one_report_are_told_apart(tmp_path, monkeypatch):
    """Shard 2 starts while shard 1 reads the ledgers, before its start line: shard 2 waits for its
    turn, then reads shard 1's start line and is refused. Were the ledgers read out of turn, neither
    start line would be there for the other to read, and both would run."""
    import threading

    out, report = str(tmp_path / "out"), str(tmp_path / "run.json")
    read, waiting, second, refusal, started = JobFolder._read_ledgers, threading.Event(), [], [], []

    def shard_2(ready):
        try:
            second.append(JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report}))
        except ValueError as exc:
            refusal.append(str(exc))
        finally:
            ready.set()

    def shard_2_starts_now(job, ledgers):
        entries = read(job, ledgers)
        if job.shard == Shard(1, 2) and not waiting.is_set():
            ended = threading.Event()
            waiting.set()
            started.append(threading.Thread(target=shard_2, args=(ended,), name="shard-2"))
            started[0].start()
            ended.wait(1.0)  # where shard 2 need not wait its turn, it has started by now
        return entries

    monkeypatch.setattr(JobFolder, "_read_ledgers", shard_2_starts_now)
    first = JobFolder(out, SETTINGS, False, shard=Shard(1, 2), side_files={"report": report})
    try:
        assert started, "shard 2 was not started while shard 1 read the ledgers"
        started[0].join(timeout=120)  # (shard 2 ends at once, or once shard 1 has started)
        assert not started[0].is_alive(), "shard 2 neither ran nor was refused within 120 s"
        assert not second, "both shards run with one report"
        assert refusal and "is also the report of shard 1/2 of this job, which runs now" in refusal[0], refusal
        assert not os.path.exists(os.path.join(out, shard_files("enhance", Shard(2, 2))[0]))  # its ledger not left
    finally:
        first.close()
        if started:  # (a shard 2 still waiting runs once shard 1 has closed: it ends, and is closed too)
            started[0].join(timeout=120)
        for job in second:
            job.close()
    monkeypatch.undo()
    JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report}).close()  # 1 ended unwritten


def test_shards_run_one_after_the_other_with_one_report_each_replace_it(tmp_path, model_dir, seed, capsys):  # noqa: F811
    """A loop of shards naming one --report (``for k in 1 2; do enhance ... --shard $k/2 --report
    run.json; done``) ran before shards were checked, and must: each replaces the report of the
    one before, which has ended, and says so. (332f1f7 refused shard 2, having enhanced nothing.)"""
    src, out, report = tmp_path / "in", tmp_path / "out", tmp_path / "run.json"
    write_pngs(src, seed, [f"img{i}.png" for i in range(4)])
    assert run(model_dir, src, "-o", out, "--shard", "1/2", "--report", report) == 0
    said = "".join(capsys.readouterr())
    assert "note: --report" not in said, said
    assert run(model_dir, src, "-o", out, "--shard", "2/2", "--report", report) == 0
    said = "".join(capsys.readouterr())
    assert f"note: --report {report} is the --report that shard 1/2 of this job wrote" in said, said
    assert "which has ended: this run replaces it when it ends" in said
    assert json.loads(report.read_text())["summary"]["shard"] == "2/2"
    assert run(model_dir, src, "-o", out, "--report", report) == 0  # all done by the shards
    assert json.loads(report.read_text())["summary"]["skipped"] == 4


def test_settings_change_only_while_no_other_shard_runs(tmp_path):
    out = str(tmp_path / "out")
    a = JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    other = {**SETTINGS, "format": "tiff"}
    with pytest.raises(ValueError, match="with other settings"):
        JobFolder(out, other, False, shard=Shard(2, 2))
    with pytest.raises(ValueError, match="other shards of an xvertfast enhance are writing into"):
        JobFolder(out, other, True, shard=Shard(2, 2))
    with open(os.path.join(out, job_files("enhance")[0])) as f:
        assert json.load(f)["settings"] == SETTINGS  # unchanged
    a.close()
    b = JobFolder(out, other, True, shard=Shard(2, 2))  # alone now: it may
    with pytest.raises(ValueError, match="with other settings"):  # and shard 1 must follow
        JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    JobFolder(out, other, False, shard=Shard(1, 2)).close()  # b still holds the folder shared
    b.close()


def test_a_shards_dry_run_says_a_run_would_be_refused_wherever_the_run_is(tmp_path):
    # beside shards of another count, or with new settings beside shards on the recorded ones, a
    # run is refused: its dry run must say so (it probed only the folder's lock and its own)
    out = str(tmp_path / "out")
    running = JobFolder(out, SETTINGS, False, shard=Shard(1, 2))
    other = {**SETTINGS, "format": "tiff"}
    try:
        for settings, overwrite, shard in [(SETTINGS, False, Shard(1, 3)), (other, True, Shard(2, 2))]:
            dry = JobFolder(out, settings, overwrite, shard=shard, read_only=True)
            dry.close()
            assert dry.busy, (settings, shard)
            with pytest.raises(ValueError, match="are writing into"):
                JobFolder(out, settings, overwrite, shard=shard)
        dry = JobFolder(out, SETTINGS, False, shard=Shard(2, 2), read_only=True)  # joins them: not refused
        assert not dry.busy
    finally:
        running.close()
    for settings, overwrite, shard in [(SETTINGS, False, Shard(1, 3)), (other, True, Shard(2, 2))]:
        assert not JobFolder(out, settings, overwrite, shard=shard, read_only=True).busy  # none runs now


@pytest.mark.parametrize("shard", [None, Shard(1, 2), Shard(1, 3)])
def test_a_run_starting_while_another_job_probes_the_locks_is_not_refused(tmp_path, shard, monkeypatch):
    # a dry run, and a shard starting beside a folder shards of another count once used, learn
    # whether a job runs by taking its lock for a moment: a run that started in that moment was
    # refused as if a job were writing there (a job array's shards start together)
    out = str(tmp_path / "out")
    JobFolder(out, SETTINGS, False, shard=Shard(1, 2)).close()  # the lock files a job leaves
    JobFolder(out, SETTINGS, False).close()
    locks = [job_files("enhance")[2]]
    if shard is not None:
        locks.append(shard_files("enhance", shard)[1])
    if shard == Shard(1, 3):
        locks.append(shard_files("enhance", Shard(1, 2))[2])  # the count lock a starting 1/3 probes
    for name in locks:
        probe = hold_lock(os.path.join(out, name))  # held exclusively for a moment, as a probe does
        let_go_when_waited_for(monkeypatch, probe)
        JobFolder(out, SETTINGS, False, shard=shard).close()
        held = hold_lock(os.path.join(out, name))  # a job that goes on holding it still keeps the run out
        try:
            with pytest.raises(ValueError, match="writing into"):
                JobFolder(out, SETTINGS, False, shard=shard)
        finally:
            held.close()


@pytest.mark.parametrize("shard", [None, Shard(1, 2)])
def test_a_dry_run_while_status_looks_at_the_locks_does_not_say_a_job_runs(tmp_path, shard, monkeypatch):
    """xvertfast status takes each lock shared for a moment (resume.lock_held); a dry run probed
    the locks without waiting, so one started in that moment said a job was writing there."""
    out = str(tmp_path / "out")
    JobFolder(out, SETTINGS, False, shard=shard).close()  # the lock files a job leaves
    names = [job_files("enhance")[2]] + ([shard_files("enhance", shard)[1]] if shard is not None else [])
    for name in names:
        look = hold_lock(os.path.join(out, name), shared=True)  # as status looks
        let_go_when_waited_for(monkeypatch, look)
        dry = JobFolder(out, SETTINGS, False, shard=shard, read_only=True)
        dry.close()
        assert not dry.busy, name


def test_a_dry_run_stops_looking_once_it_finds_a_job_running(tmp_path, monkeypatch):
    """Each look at a held lock waits LOCK_PATIENCE (a status's look lets go within it): a dry
    run that had found one held went on to the others, a second wait per lock held. The looks
    are counted, not timed: a clock bound (one wait of 1 s, under 1.8 s) left 0.8 s for the rest,
    which a loaded machine can take."""
    from xvertfast.io import job_folder

    waited_on = []  # the locks a look found held (and waited LOCK_PATIENCE on)

    def counted(path, *args, **kwargs):
        lock = hold_lock(path, *args, **kwargs)
        if lock is None:
            waited_on.append(os.path.basename(path))
        return lock

    out = str(tmp_path / "out")
    running = JobFolder(out, SETTINGS, False, shard=Shard(1, 2))  # holds its own lock and the settings'
    try:
        monkeypatch.setattr(job_folder, "hold_lock", counted)
        dry = JobFolder(out, {**SETTINGS, "format": "tiff"}, True, shard=Shard(1, 2), read_only=True)
        dry.close()
        assert dry.busy and len(waited_on) == 1, waited_on
    finally:
        running.close()


def _made(job, tmp_path, out, name: str) -> None:
    """One output recorded as a run makes it: started, then finished, from an input of that name."""
    src = _input(tmp_path, name)
    job.starting(src, str(out / name))
    job.finished(src, str(out / name), [1, 2])


def _input(tmp_path, name: str) -> str:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(name.encode())
    return str(path)


def test_every_job_reads_every_shards_ledger_in_the_order_written(tmp_path):
    out = tmp_path / "out"
    src = _input(tmp_path, "x.dcm")
    a = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2))
    for name in ("x.dcm", "y.png"):
        a.starting(src, str(out / name))
        (out / name).write_bytes(b"output")
        a.finished(src, str(out / name), [1, 2])
    a.close()
    # an unsharded job (and any shard) knows those outputs: one of another input is not this one's
    whole = JobFolder(str(out), SETTINGS, False)
    assert whole.recorded(str(out / "x.dcm")) and whole.recorded(str(out / "y.png"))
    # ... and replacing x.dcm by x.png (another --format) removes the shard's x.dcm and y.png
    whole.starting(src, str(out / "x.png"))
    (out / "x.png").write_bytes(b"new output")
    whole.finished(src, str(out / "x.png"), [1, 2], sole=True)
    whole.close()
    assert not (out / "x.dcm").exists()
    # the removal, in the main ledger, came after the shard's line: read in the order written, a
    # file later found at x.dcm is not one of the job's (read file by file, it would be)
    (out / "x.dcm").write_bytes(b"someone else's file")
    again = JobFolder(str(out), SETTINGS, False, shard=Shard(2, 2))
    assert not again.recorded(str(out / "x.dcm")) and again.recorded(str(out / "x.png"))
    assert again.state(src, str(out / "x.dcm"))[0] == "refuse"
    again.close()


def test_a_folder_with_only_shard_ledgers_is_not_taken_for_one_from_before_ledgers(tmp_path):
    out = tmp_path / "out"
    src = _input(tmp_path, "a.png")
    JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2)).close()  # the settings file and a (empty) shard ledger
    assert (out / shard_files("enhance", Shard(1, 2))[0]).exists() and not (out / job_files("enhance")[1]).exists()
    (out / "a.png").write_bytes(b"not written by xvertfast")
    whole = JobFolder(str(out), SETTINGS, False)
    state, why = whole.state(src, str(out / "a.png"))
    assert state == "refuse" and "nor its shards' ledgers" in why  # not adopted as an old version's output
    whole.close()


def _outputs(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".xvertfast-")}  # fmt: skip


def test_shards_together_write_what_one_job_writes_and_a_rerun_skips_it(tmp_path, model_dir, seed, capsys):  # noqa: F811
    src = tmp_path / "in"
    names = [f"{d}/img{i}.png" for d in ("a", "b") for i in range(4)]
    write_pngs(src, seed, names)
    (src / "a" / "bad.png").write_bytes(b"not a png")
    assert run(model_dir, src, "-o", tmp_path / "whole") == 1
    capsys.readouterr()
    out = tmp_path / "out"
    shares = []
    for k in (1, 2, 3):
        code = run(model_dir, src, "-o", out, "--shard", f"{k}/3")
        captured = capsys.readouterr()
        line = captured.out.splitlines()[0]
        assert line.startswith(f"shard {k}/3 (") and "of 9 files)" in line
        shares.append(int(line.split("(")[1].split(" ")[0]))
        assert code == (1 if "bad.png" in captured.err else 0)
    assert sum(shares) == 9 and max(shares) < 9  # (the split of these 9 names is 3/3/3 by their hashes)
    assert _outputs(out) == _outputs(tmp_path / "whole")
    assert run(model_dir, src, "-o", out) == 1  # the bad file fails again; the rest was done by the shards
    assert "0 done, 8 skipped, 1 failed" in capsys.readouterr().out
    assert run(model_dir, src, "-o", out, "--shard", "2/2") in (0, 1)  # another N, once none runs: resumes too
    assert " 0 done, " in capsys.readouterr().out


def test_the_cli_refuses_a_malformed_shard(tmp_path, model_dir, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as exc:
        run(model_dir, tmp_path, "-o", tmp_path / "out", "--shard", "3/2")
    assert exc.value.code == 2 and "--shard" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_shards_run_at_once_into_one_folder(tmp_path, model_dir, seed):  # noqa: F811
    src = tmp_path / "in"
    write_pngs(src, seed, [f"img{i:02d}.png" for i in range(8)])
    cmd = [sys.executable, "-m", "xvertfast", "enhance", str(src), "-o", str(tmp_path / "out"), "--model",
           str(model_dir), "--device", "cpu", "--workers", "1", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd + ["--shard", f"{k}/2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for k in (1, 2)]  # fmt: skip
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    subprocess.run(cmd[:6] + [str(tmp_path / "whole")] + cmd[7:], check=True, env=env, capture_output=True)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "whole")
    assert len(_outputs(tmp_path / "out")) == 8


def test_preprocess_shards_together_write_what_one_job_writes(tmp_path, seed, capsys):
    from xvertfast.cli import main

    src = tmp_path / "in"
    write_pngs(src, seed, [f"img{i}.png" for i in range(5)])
    assert main(["preprocess", str(src), "-o", str(tmp_path / "whole"), "-q"]) == 0
    capsys.readouterr()
    for k in (1, 2):
        assert main(["preprocess", str(src), "-o", str(tmp_path / "out"), "-q", "--shard", f"{k}/2"]) == 0
        assert re.match(rf"shard {k}/2 \(\d of 5 files\): ", capsys.readouterr().out)
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "whole") and len(_outputs(tmp_path / "whole")) == 20
    assert main(["preprocess", str(src), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert capsys.readouterr().out.startswith("0 done, 5 skipped")


def test_shards_started_together_all_run_while_one_records_the_settings(tmp_path):
    # shard 2 has taken its locks and not yet read the settings when shard 1 records them (a new
    # folder, a settings file of another version, or --overwrite with new settings and no shard
    # running): shard 1 is not refused (it was, as if a job without --shard held the folder)
    from xvertfast.resume import hold_lock

    out = tmp_path / "out"
    other = {**SETTINGS, "format": "tiff"}
    for before, settings, overwrite in ((None, SETTINGS, False), ({"xvertfast": "0.0.1", "settings": SETTINGS},
                                        SETTINGS, False), (None, other, True)):  # fmt: skip
        out.mkdir(exist_ok=True)
        if before is not None:
            (out / job_files("enhance")[0]).write_text(json.dumps(before))
        starting = [hold_lock(str(out / job_files("enhance")[2]), shared=True),
                    hold_lock(str(out / shard_files("enhance", Shard(2, 2))[1]))]  # fmt: skip
        a = JobFolder(str(out), settings, overwrite, shard=Shard(1, 2))
        for lock in starting:
            lock.close()
        b = JobFolder(str(out), settings, False, shard=Shard(2, 2))  # on the settings shard 1 recorded
        assert json.loads((out / job_files("enhance")[0]).read_text())["settings"] == settings
        a.close()
        b.close()


def test_shards_started_together_run_in_a_new_folder(tmp_path):
    import multiprocessing

    out = str(tmp_path / "out")
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_start_shard, args=(out, k, go, results)) for k in range(1, 5)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
    assert sorted(results.get(timeout=5) for _ in procs) == ["ok"] * 4


def _start_shard(out, k, go, results):
    import time

    go.wait()
    try:
        job = JobFolder(out, SETTINGS, False, shard=Shard(k, 4))
        time.sleep(0.5)  # runs while the others start
        job.close()
        results.put("ok")
    except ValueError as exc:
        results.put(str(exc))


def test_a_ledger_is_read_in_its_own_order_whatever_its_times(tmp_path):
    # a clock set back while a shard ran (NTP) gives a later line an earlier time: within one
    # ledger the order written stands, so a removed output stays removed, and a file later
    # found there is not taken for the job's
    out = tmp_path / "out"
    out.mkdir()
    src = _input(tmp_path, "x.dcm")
    lines = [{"output": "x.png", "input": os.path.realpath(src), "state": "done", "settings": "k", "stat": [1, 2],
              "t": 2_000}, {"output": "x.png", "input": os.path.realpath(src), "state": "removed", "t": 1_000}]  # fmt: skip
    (out / shard_files("enhance", Shard(1, 2))[0]).write_text("".join(json.dumps(e) + "\n" for e in lines))
    (out / "x.png").write_bytes(b"someone else's file")
    job = JobFolder(str(out), SETTINGS, False)
    assert not job.recorded(str(out / "x.png")) and job.state(src, str(out / "x.png"))[0] == "refuse"
    job.close()


def test_a_line_sorts_after_what_its_job_read_even_with_another_machines_clock_ahead(tmp_path):
    out = tmp_path / "out"
    src = _input(tmp_path, "x.dcm")
    a = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2))
    a.starting(src, str(out / "x.dcm"))
    (out / "x.dcm").write_bytes(b"output")
    a.finished(src, str(out / "x.dcm"), [1, 2])
    a.close()
    ledger = out / shard_files("enhance", Shard(1, 2))[0]
    ahead = [json.loads(line) for line in ledger.read_text().splitlines()]
    for entry in ahead:
        entry["t"] += 3600 * 10**9  # written on a machine whose clock runs an hour ahead of this one
    ledger.write_text("".join(json.dumps(e) + "\n" for e in ahead))
    whole = JobFolder(str(out), SETTINGS, False)  # replaces x.dcm by x.png (another --format)
    whole.starting(src, str(out / "x.png"))
    (out / "x.png").write_bytes(b"new output")
    whole.finished(src, str(out / "x.png"), [1, 2], sole=True)
    whole.close()
    (out / "x.dcm").write_bytes(b"someone else's file")
    again = JobFolder(str(out), SETTINGS, False)
    assert not again.recorded(str(out / "x.dcm")) and again.state(src, str(out / "x.dcm"))[0] == "refuse"
    again.close()


def test_status_counts_each_output_once_under_the_ledger_of_its_latest_line(tmp_path, capsys):
    from xvertfast.cli import main
    from xvertfast.io.job_folder import job_status

    out = tmp_path / "out"
    srcs = [_input(tmp_path, f"{n}.png") for n in "abc"]
    a = JobFolder(str(out), SETTINGS, False, shard=Shard(1, 2))
    for src in srcs:
        a.starting(src, str(out / os.path.basename(src)))
        (out / os.path.basename(src)).write_bytes(b"output")
    for src in srcs[:2]:
        a.finished(src, str(out / os.path.basename(src)), [1, 2])
    a.close()  # c.png: started, not finished (a kill)
    whole = JobFolder(str(out), SETTINGS, True)  # redoes b.png (--overwrite)
    whole.starting(srcs[1], str(out / "b.png"))
    whole.finished(srcs[1], str(out / "b.png"), [1, 2])
    whole.close()
    status = job_status(str(out), "enhance")
    by = {led.shard: (led.done, led.unfinished) for led in status.ledgers}
    assert by == {None: (1, 0), "1/2": (1, 1)} and (status.done, status.unfinished) == (2, 1)
    assert status.settings == SETTINGS and job_status(str(out), "preprocess") is None
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "2 output files done, 1 started and not finished" in said and "shard 1/2" in said
    assert main(["status", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["done"] == 2
    assert main(["status", str(tmp_path / "in")]) == 2
    assert "holds no output of an xvertfast enhance or preprocess job" in capsys.readouterr().err


def test_a_shard_started_as_another_records_the_settings_does_not_mark_a_new_folder_as_from_before_ledgers(
        tmp_path, monkeypatch):  # fmt: skip
    # shard 2 looked for ledgers once shard 1 had recorded the settings and before it made its
    # ledger: it took the new folder for one of an xvertfast before ledgers and marked it so, and
    # every later run adopted (and with --overwrite replaced) a file the job never wrote
    # (shard 2 starts as shard 1's turn ends: in it, it would wait for the turn)
    import contextlib

    out = str(tmp_path / "out")
    src = _input(tmp_path, "x.png")
    turn, second = JobFolder._settings_turn, []

    @contextlib.contextmanager
    def shard_2_starts_after(job):
        with turn(job) as running_lock:
            yield running_lock
        if job.shard == Shard(1, 2) and not second:
            second.append(JobFolder(out, SETTINGS, False, shard=Shard(2, 2)))

    monkeypatch.setattr(JobFolder, "_settings_turn", shard_2_starts_after)
    JobFolder(out, SETTINGS, False, shard=Shard(1, 2)).close()
    second[0].close()
    monkeypatch.undo()
    (tmp_path / "out" / "x.png").write_bytes(b"someone else's file")
    job = JobFolder(out, SETTINGS, True)
    assert job.state(src, os.path.join(out, "x.png"))[0] == "refuse"
    job.close()


def test_status_does_not_count_outputs_of_other_settings_as_done(tmp_path, capsys):
    # an --overwrite with new settings has started: what the old settings made is to be redone,
    # and was counted as done (a job that had done nothing looked finished)
    from xvertfast.cli import main
    from xvertfast.io.job_folder import job_status

    out = tmp_path / "out"
    a = JobFolder(str(out), SETTINGS, False)
    for src in (_input(tmp_path, f"{n}.png") for n in "ab"):
        a.starting(src, str(out / os.path.basename(src)))
        a.finished(src, str(out / os.path.basename(src)), [1, 2])
    a.close()
    JobFolder(str(out), {**SETTINGS, "format": "tiff"}, True).close()
    status = job_status(str(out), "enhance")
    assert (status.done, status.other_settings) == (0, 2)
    assert main(["status", str(out)]) == 0
    assert "0 output files done" in capsys.readouterr().out


def test_status_of_odd_folders(tmp_path, capsys):
    from xvertfast.cli import main
    from xvertfast.io.job_folder import job_status

    out = tmp_path / "out"
    out.mkdir()
    (out / job_files("enhance")[0]).write_text(json.dumps({"xvertfast": "0.0.1", "settings": SETTINGS}))
    status = job_status(str(out), "enhance")  # a folder of an xvertfast before ledgers: says so
    assert status.legacy and status.done == 0
    assert main(["status", str(out)]) == 0 and "before ledgers" in capsys.readouterr().out
    # a line of bytes that are not text is skipped, as a line cut short is (it stopped every job)
    src = _input(tmp_path, "a.png")
    line = {"output": "a.png", "input": os.path.realpath(src), "state": "done", "settings": "k", "stat": [1, 2]}
    (out / job_files("enhance")[1]).write_bytes(b"\xff\xfe garbled\n" + json.dumps(line).encode() + b"\n")
    assert job_status(str(out), "enhance").ledgers[0].other_settings == 1
    JobFolder(str(out), SETTINGS, False).close()
    # a ledger that cannot be read: an error, not a traceback
    (out / shard_files("enhance", Shard(1, 2))[0]).mkdir()
    assert main(["status", str(out)]) == 2
    assert "cannot read" in capsys.readouterr().err
    (out / shard_files("enhance", Shard(1, 2))[0]).rmdir()
    assert main(["status", str(tmp_path / "in" / "a.png")]) == 2  # a file


@pytest.mark.parametrize("shard", [None, Shard(1, 2)], ids=["unsharded", "shard"])
def test_a_kill_right_after_the_settings_are_recorded_leaves_no_folder_of_an_earlier_version(tmp_path, monkeypatch,
                                                                                              shard):  # fmt: skip
    out = tmp_path / "out"
    src = _input(tmp_path, "a.png")
    settle = JobFolder._settle_settings

    def killed_after(self, running_lock):
        settle(self, running_lock)
        raise KeyboardInterrupt  # (a kill: nothing after the settings file is written)

    monkeypatch.setattr(JobFolder, "_settle_settings", killed_after)
    with pytest.raises(KeyboardInterrupt):
        JobFolder(str(out), SETTINGS, False, shard=shard)
    monkeypatch.undo()
    (out / "a.png").write_bytes(b"not written by xvertfast")
    job = JobFolder(str(out), SETTINGS, False)
    assert job.state(src, str(out / "a.png"))[0] == "refuse"  # not adopted as an earlier version's output
    job.close()


def test_a_shard_plans_as_the_whole_job_does_opening_only_the_files_that_could_collide(tmp_path, seed, monkeypatch):
    from xvertfast.infer import batch
    from xvertfast.io.files import InputFile

    rng = __import__("random").Random(seed)
    names = [f"d{rng.randrange(3)}/x{rng.randrange(150)}{rng.choice(['.png', '.tif', '.dcm', ''])}" for _ in range(300)]
    files = [InputFile(str(tmp_path / "in" / n), n) for n in dict.fromkeys(names)]
    opened, kinds = [], {}

    def same_kind(path):  # one kind per file, whichever plan asks first
        return kinds.setdefault(path, rng.choice(["tiff", "dicom", "png16"]))

    monkeypatch.setattr(batch, "same_format", lambda path: opened.append(path) or same_kind(path))
    out = str(tmp_path / "out")
    rel = {f.path: f.rel for f in files}
    for fmt in ("same", "png16"):
        whole, whole_failed = batch._plan(files, out, fmt)
        for k in (1, 2, 3):
            shard = Shard(k, 3)
            opened.clear()
            planned, failed = batch._plan(files, out, fmt, [shard.owns(f.rel) for f in files])
            assert planned == [(f, o) for f, o in whole if shard.owns(f.rel)]
            assert [r.error for r in failed] == [r.error for r in whole_failed if shard.owns(rel[r.input])]
            if fmt == "same":  # the headers of its own files and of the others of their stems, not every file's
                own_stems = {os.path.splitext(f.rel)[0] for f in files if shard.owns(f.rel)}
                could_collide = [f.path for f in files if shard.owns(f.rel) or os.path.splitext(f.rel)[0] in own_stems]
                assert opened == could_collide and len(opened) < len(files)
    assert whole_failed  # (the names collide: the test sees collisions)


def test_the_recent_rate_is_taken_over_the_latest_stretch_of_work():
    from xvertfast.io.job_folder import RATE_OUTPUTS, RATE_PAUSE_S, recent_rate

    s = 10**9
    assert recent_rate([]) == (None, 0) and recent_rate([5 * s]) == (None, 1)
    assert recent_rate([0, 0, 0]) == (None, 0)  # lines of an xvertfast before times: not counted
    assert recent_rate([40 * s, 20 * s, 10 * s, 30 * s, 70 * s, 50 * s, 60 * s]) == (0.1, 7)  # (in any order)
    night = int(RATE_PAUSE_S * s) + 1
    rate, n = recent_rate([0 * s, 1 * s, 2 * s] + [2 * s + night + k * 10 * s for k in range(7)])
    assert (rate, n) == (0.1, 7)  # the run before the pause does not slow it
    rate, n = recent_rate([k * s for k in range(3 * RATE_OUTPUTS)] + [3 * RATE_OUTPUTS * s + k * s // 2
                                                                      for k in range(RATE_OUTPUTS)])  # fmt: skip
    assert n == RATE_OUTPUTS and rate == pytest.approx(2.0)  # the latest ones
    # a fast job's hundred outputs take ten seconds: the rate goes back to RATE_MIN_SPAN_S, not to none
    rate, n = recent_rate([k * s // 10 for k in range(10 * RATE_OUTPUTS)])
    assert n == 301 and rate == pytest.approx(10.0)


def test_status_gives_the_rate_of_all_shards_together(tmp_path, capsys, monkeypatch):
    from xvertfast.cli import main
    from xvertfast.io import job_folder

    clock = iter(range(10**12, 10**13, 3 * 10**9))  # a line every three seconds
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: next(clock))
    out = tmp_path / "out"
    shards = [JobFolder(str(out), SETTINGS, False, shard=Shard(k, 2)) for k in (1, 2)]
    for n in range(12):  # the shards take turns: each writes two lines an output
        src = _input(tmp_path, f"{n}.png")
        shards[n % 2].starting(src, str(out / f"{n}.png"))
        shards[n % 2].finished(src, str(out / f"{n}.png"), [1, 2])
    for shard in shards:
        shard.close()
    status = job_folder.job_status(str(out), "enhance")
    assert status.rate == pytest.approx(1 / 6) and status.rate_outputs == 12  # an output every six seconds
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "10.0 output files finished a minute, over the last 12 outputs, all shards together" in said, said
    assert [led.rate for led in status.ledgers] == [pytest.approx(1 / 12)] * 2  # each, every twelve seconds

    # a shard's dry run: its own part at its own pace (the others' run beside it), not at all of theirs
    from types import SimpleNamespace

    from xvertfast.cli import _dry_run_notes

    for shard, whose, minute, takes in ((Shard(1, 2), "shard 1/2", 5.0, "2 min"),
                                        (None, "this folder's jobs, all shards together,", 10.0, "60 s")):
        _dry_run_notes(SimpleNamespace(dry_run=True, busy=False, shard=shard), "enhance", str(out), 10, 1)
        assert (f"at the rate {whose} finished outputs lately ({minute:.1f} output files a minute), the 10 would "
                f"take about {takes}") in capsys.readouterr().err  # fmt: skip


def test_status_adds_no_rates_of_shards_that_ran_one_after_the_other(tmp_path, capsys, monkeypatch):
    """Two shards run one after the other, both finished: status gave their rates added up, twice
    the pace either went ("all shards together"), and a dry run's time left half what it takes. The
    rates added are those of shards at work beside the latest one; here it is the latest's alone."""
    from types import SimpleNamespace

    from xvertfast.cli import _dry_run_notes, main
    from xvertfast.io import job_folder

    clock = iter(range(10**12, 10**13, 5 * 10**9))  # a line every five seconds
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: next(clock))
    out = tmp_path / "out"
    for k in (1, 2):  # shard 2 starts once shard 1 has finished
        shard = JobFolder(str(out), SETTINGS, False, shard=Shard(k, 2))
        for n in range(6):
            src = _input(tmp_path, f"{k}-{n}.png")
            shard.starting(src, str(out / f"{k}-{n}.png"))
            shard.finished(src, str(out / f"{k}-{n}.png"), [1, 2])
        shard.close()
    status = job_folder.job_status(str(out), "enhance")
    assert [led.rate for led in status.ledgers] == [pytest.approx(0.1)] * 2  # each: an output every ten seconds
    assert status.rate == pytest.approx(0.1) and status.rate_outputs == 6 and status.rate_ledgers == 1
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "6.0 output files finished a minute, over the last 6 outputs, by the latest shard alone" in said, said
    _dry_run_notes(SimpleNamespace(dry_run=True, busy=False, shard=None), "enhance", str(out), 10, 1)
    assert "(6.0 output files a minute), the 10 would take about 100 s" in capsys.readouterr().err


def test_the_recent_rate_counts_no_outputs_that_were_not_made_apart():
    from xvertfast.io.job_folder import recent_rate

    s = 10**9
    # one preprocess input: four files recorded microseconds apart were 1.2 million a minute
    assert recent_rate([s + k * 5_000 for k in range(4)]) == (None, 4)
    # four inputs, ten seconds apart: twelve files in thirty seconds, not fifteen
    rate, n = recent_rate([s + i * 10 * s + k * 5_000 for i in range(4) for k in range(4)])
    assert n == 16 and rate == pytest.approx(0.4, rel=1e-5)
    # a clock set back: each line's time just after the one before (JobFolder._next_time)
    assert recent_rate([5 * s + k for k in range(50)]) == (None, 50)


def test_outputs_made_in_batches_give_the_rate_the_batches_are_made_at():
    # a batch's outputs land a tenth of a second apart, the next batch ten seconds later: counting
    # the first batch's others as made after its first gave a batch more than was made (0.33 a second)
    from xvertfast.io.job_folder import recent_rate

    s = 10**9
    rate, n = recent_rate([s + b * 10 * s + k * s // 10 for b in range(7) for k in range(3)])
    assert n == 21 and rate == pytest.approx(0.3, rel=1e-2)
    # an output every two seconds, for 18 seconds: too short a time to tell the pace of batches by
    assert recent_rate([s + k * 2 * s for k in range(10)]) == (None, 10)
    # an output every ten seconds: five after the first are enough; four are not
    assert recent_rate([s + k * 10 * s for k in range(6)]) == (0.1, 6)
    assert recent_rate([s + k * 10 * s for k in range(5)]) == (None, 5)


def test_status_and_a_dry_run_give_no_rate_from_one_batch(tmp_path, capsys, monkeypatch):
    # an enhance job interrupted after one batch, two outputs about a second apart: status said "66.4
    # output files finished a minute, over the last 2" and a dry run "the 10 would take about 9 s"
    # (the job made 38 a minute: the 10 took 15.9 s)
    from types import SimpleNamespace

    from xvertfast.cli import _dry_run_notes, main
    from xvertfast.io import job_folder

    clock = iter(range(10**12, 10**13, 45 * 10**7))  # a line every 0.45 s
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: next(clock))
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False)
    for n in range(2):
        _made(job, tmp_path, out, f"{n}.png")
    job.ended("interrupted", found=12, done=2, skipped=0, failed=0)
    job.close()
    status = job_folder.job_status(str(out), "enhance")
    assert status.rate is None and status.rate_outputs == 2
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "a minute" not in said
    # ('no rate:', not 'yet': the job ended, it will finish no more outputs; 'yet' while one runs is tested below)
    assert ("  no rate: 2 output files finished lately, too few or too close together to tell the pace (outputs "
            "come in batches: a rate takes 5 after the first batch, over 30 s or more)\n") in said  # fmt: skip
    _dry_run_notes(SimpleNamespace(dry_run=True, busy=False, shard=None), "enhance", str(out), 10, 1)
    said = capsys.readouterr().err
    assert said == ("no estimate of how long the 10 would take: this folder's job finished too few outputs lately, "
                    "or too close together, to tell its pace\n")  # fmt: skip


def test_outputs_adopted_or_recorded_at_a_new_path_are_not_in_the_rate(tmp_path, monkeypatch):
    from xvertfast.io import job_folder

    clock = iter(range(10**12, 10**13, 10**10))  # a line every ten seconds while made...
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: next(clock))
    out = tmp_path / "out"
    job = JobFolder(str(out), SETTINGS, False)
    for n in range(6):
        _made(job, tmp_path, out, f"{n}.png")
    later = iter(range(10**13, 10**14, 1000))  # ...and a thousand adopted in a microsecond each
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: next(later))
    for n in range(6, 1000):
        job.adopt(_input(tmp_path, f"{n}.png"), [str(out / f"{n}.png")])
    job.close()
    status = job_folder.job_status(str(out), "enhance")
    assert status.done == 1000
    assert status.rate == pytest.approx(0.05) and status.rate_outputs == 6


def _shard_making(out, tmp_path, shard: Shard | JobFolder, now: list[int], outputs: int, apart_s: float) -> JobFolder:
    """A shard's job (``shard``, or one already open), left open (running), that finished
    ``outputs`` more outputs ``apart_s`` apart on the clock ``now`` (nanoseconds, the test's
    stand-in for time.time_ns)."""
    job = shard if isinstance(shard, JobFolder) else JobFolder(str(out), SETTINGS, False, shard=shard)
    for _ in range(outputs):
        now[0] += int(apart_s * 10**9)
        _made(job, tmp_path, out, f"{job.shard.index}-{now[0]}.png")
    return job


def test_no_rate_counts_the_outputs_of_the_latest_shard_not_those_of_one_that_ran_before(tmp_path, capsys,
                                                                                         monkeypatch):
    """Shard 1/2 made 20 outputs at 6 a minute, then shard 2/2 made 2: status said 'no rate yet: 22
    output files finished lately' and the dry run 'this folder's jobs finished too few outputs', the
    older shard's outputs counted with the latest's, whose pace alone a rate would give. A dry run of
    a shard that never ran said it 'finished too few outputs lately'; 'no rate yet' stood for a job
    that ended long ago."""
    from types import SimpleNamespace

    from xvertfast.cli import _dry_run_notes, main
    from xvertfast.io import job_folder

    now = [10**12]
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: now[0])
    out = tmp_path / "out"
    _shard_making(out, tmp_path, Shard(1, 2), now, 20, 10).close()
    second = _shard_making(out, tmp_path, Shard(2, 2), now, 2, 10)
    status = job_folder.job_status(str(out), "enhance")
    assert status.rate is None and status.rate_outputs == 2 and status.ledgers_at_work == 1
    assert [(led.rate, led.rate_outputs) for led in status.ledgers] == [(pytest.approx(0.1), 20), (None, 2)]
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "  no rate yet: 2 output files finished lately by the latest shard, too few or too close together" in said
    second.close()
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "  no rate: 2 output files finished lately by the latest shard, too few or too close together" in said

    def dry_run(shard):
        _dry_run_notes(SimpleNamespace(dry_run=True, busy=False, shard=shard), "enhance", str(out), 10, 1)
        return capsys.readouterr().err

    assert dry_run(None) == ("no estimate of how long the 10 would take: this folder's latest shard finished too few "
                             "outputs lately, or too close together, to tell its pace\n")  # fmt: skip
    assert dry_run(Shard(2, 2)) == ("no estimate of how long the 10 would take: shard 2/2 finished too few outputs "
                                    "lately, or too close together, to tell its pace\n")  # fmt: skip
    assert dry_run(Shard(1, 2)) == ("at the rate shard 1/2 finished outputs lately (6.0 output files a minute), the "
                                    "10 would take about 100 s\n")  # fmt: skip
    assert dry_run(Shard(1, 3)) == ""  # (no shard of three ran here: nothing to go on, and nothing to say)


def test_a_rate_of_one_of_two_shards_at_work_is_not_said_to_be_the_latest_shards_alone(tmp_path, capsys,
                                                                                       monkeypatch):
    """Shard 2/2 started beside a running shard 1/2 and finished 2 outputs, too few for a rate of its
    own: the rate was shard 1/2's alone, said 'by the latest shard alone (no other at work beside
    it)', neither being so."""
    from types import SimpleNamespace

    from xvertfast.cli import _dry_run_notes, main
    from xvertfast.io import job_folder

    now = [10**12]
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: now[0])
    out = tmp_path / "out"
    first = _shard_making(out, tmp_path, Shard(1, 2), now, 8, 10)
    second = _shard_making(out, tmp_path, Shard(2, 2), now, 1, 5)  # (started while shard 1/2 runs)
    _shard_making(out, tmp_path, first, now, 1, 5)  # (shard 1/2 goes on an output every ten seconds)
    _shard_making(out, tmp_path, first, now, 1, 10)
    _shard_making(out, tmp_path, second, now, 1, 5)
    first.close(), second.close()
    status = job_folder.job_status(str(out), "enhance")
    assert [led.rate for led in status.ledgers] == [pytest.approx(0.1), None]
    assert status.rate == pytest.approx(0.1) and status.rate_ledgers == 1 and status.ledgers_at_work == 2
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert ("  6.0 output files finished a minute, over the last 10 outputs, by 1 of the 2 shards at work (1 with no rate "
            "yet, not counted)\n") in said and "latest" not in said, said  # fmt: skip
    _dry_run_notes(SimpleNamespace(dry_run=True, busy=False, shard=None), "enhance", str(out), 10, 1)
    assert capsys.readouterr().err == (
        "at the rate this folder's jobs, 1 of the 2 shards at work (1 with no rate yet, not counted), finished outputs "
        "lately (6.0 output files a minute), the 10 would take about 100 s\n")  # fmt: skip


def test_large_batches_give_the_rate_they_are_made_at():
    # batches of 8 outputs a second apart, a batch every 20 s: a quarter of the mean gap (2.5 s)
    # took the first batch for its first output alone, and the rate counted 7 outputs more than made
    from xvertfast.io.job_folder import RATE_OUTPUTS, recent_rate

    s = 10**9
    batches = [s + b * 20 * s + k * s for b in range(15) for k in range(8)]
    assert recent_rate(batches[:40]) == (pytest.approx(0.4), 40)
    # the latest 100 of 120: the stretch begins inside a batch, whose rest is left out with it
    assert recent_rate(batches) == (pytest.approx(0.4), RATE_OUTPUTS)
    # two outputs a batch, half a second apart, a batch every ten seconds
    assert recent_rate([s + b * 10 * s + k * s // 2 for b in range(6) for k in range(2)]) == (pytest.approx(0.2), 12)


def test_a_steady_stream_of_outputs_gives_its_rate_from_its_first_output_on():
    # (no batches: each output after the first counts, the time from the first to the last, as before)
    import random

    from xvertfast.io.job_folder import recent_rate

    s = 10**9
    for seed in range(20):
        steady, clock = [], 10**12
        for _ in range(40):  # an output every 8 to 12 s
            clock += random.Random(seed * 100 + len(steady)).randrange(8 * s, 12 * s)
            steady.append(clock)
        assert recent_rate(steady) == (pytest.approx(39 / ((steady[-1] - steady[0]) / s)), 40)
        # one pause of a minute late in the stream: it slows the rate, and leaves no output out of it
        paused = steady[:35] + [t + 60 * s for t in steady[35:]]
        assert recent_rate(paused) == (pytest.approx(39 / ((paused[-1] - paused[0]) / s)), 40)


def test_a_dry_run_into_a_folder_a_run_cannot_write_says_so(tmp_path, monkeypatch):
    # (another user's folder, a read-only mount: the run stops at 'cannot write into the output
    # folder'; its dry run planned the job all the same. Root may write anywhere: access is faked)
    from xvertfast.io import job_folder

    parent = tmp_path / "theirs"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(job_folder.os, "access", lambda path, mode: real_access(path, mode) and path != str(parent))
    for out in (parent, parent / "out", parent / "out" / "deeper"):
        with pytest.raises(ValueError, match="cannot write into the output folder"):
            JobFolder(str(out), SETTINGS, False, read_only=True)
    assert not (parent / "out").exists()
    JobFolder(str(tmp_path / "mine" / "out"), SETTINGS, False, read_only=True).close()


def test_the_rate_of_shards_started_together_is_not_taken_from_their_first_outputs_merged(tmp_path, monkeypatch):
    # three shards started together finish their first outputs within a moment of one another: merged,
    # 2 outputs in 0.2 s read as 600 a minute ('187.5 output files finished a minute, over the last 3')
    from xvertfast.io import job_folder

    s = 10**9
    now = [0]
    monkeypatch.setattr(job_folder.time, "time_ns", lambda: now[0])
    out = tmp_path / "out"
    shards = [JobFolder(str(out), SETTINGS, False, shard=Shard(k, 3)) for k in (1, 2, 3)]
    for round_ in range(6):
        for k, shard in enumerate(shards):  # each shard an output every ten seconds
            src = _input(tmp_path, f"{round_}-{k}.png")
            now[0] = 1000 * s + round_ * 10 * s + k * s // 10
            shard.starting(src, str(out / f"{round_}-{k}.png"))
            shard.finished(src, str(out / f"{round_}-{k}.png"), [1, 2])
        status = job_folder.job_status(str(out), "enhance")
        if round_ == 0:
            assert status.rate is None  # one output each: no rate yet
    assert status.rate == pytest.approx(0.3) and status.rate_outputs == 18  # three shards, each 0.1 a second
    # a shard stopped long ago (its last output over RATE_PAUSE_S before the others') makes none now
    src = _input(tmp_path, "late.png")
    now[0] += int(job_folder.RATE_PAUSE_S * s) + 30 * s
    for t in range(7):
        now[0] += 5 * s
        shards[0].finished(src, str(out / f"late-{t}.png"), [1, 2])
    for shard in shards:
        shard.close()
    assert job_folder.job_status(str(out), "enhance").rate == pytest.approx(0.2)


def test_status_says_one_output_file_in_the_singular(tmp_path, capsys):
    # "1 output files done"
    from xvertfast.cli import main

    out = tmp_path / "out"
    a = JobFolder(str(out), SETTINGS, False)
    src = _input(tmp_path, "a.png")
    a.starting(src, str(out / "a.png"))
    a.finished(src, str(out / "a.png"), [1, 2])
    a.close()
    assert main(["status", str(out)]) == 0
    assert "  1 output file done, 0 started and not finished (in flight, left by a killed run, or whose writing failed" in (
        capsys.readouterr().out)  # fmt: skip


def test_status_of_a_mistyped_folder_or_a_file_says_so(tmp_path, capsys):
    # a typo was said to "hold no output of an xvertfast enhance or preprocess job", as if the
    # folder were there and empty of jobs
    from xvertfast.cli import main

    assert main(["status", str(tmp_path / "enhanced-typo")]) == 2
    said = capsys.readouterr().err
    assert said == f"error: {tmp_path / 'enhanced-typo'}: no such folder: give the output folder of a job or a training run\n"
    (tmp_path / "a.png").write_bytes(b"x")
    assert main(["status", str(tmp_path / "a.png")]) == 2
    assert f"{tmp_path / 'a.png'}: a file, not a folder" in capsys.readouterr().err


def _job_running_in(out, shard: str | None) -> subprocess.Popen:
    """A child process that runs as the job does (``shard``: "K/N", or None for one without
    --shard): it holds the job's locks in ``out`` until killed."""
    child = ("import sys, time\n"
             "from xvertfast.io.job_folder import JobFolder\n"
             "from xvertfast.io.shards import Shard\n"
             f"job = JobFolder({str(out)!r}, {SETTINGS!r}, False, shard={shard!r} and Shard.parse({shard!r}))\n"
             "print('running', flush=True)\n"
             "time.sleep(300)\n")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "running\n"
    return proc


def test_status_says_which_shards_run_now_and_which_stopped(tmp_path, capsys):
    # a shard killed (kill -9, its node lost, out of time) and one running looked the same: "last
    # written 2 min ago" was all there was, and a user with many shards could not tell which to resubmit
    from xvertfast.cli import main
    from xvertfast.io.job_folder import job_status

    out = tmp_path / "out"
    srcs = [_input(tmp_path, f"{n}.png") for n in "abc"]
    for k, done in ((1, srcs[:1]), (2, srcs[1:])):
        shard = JobFolder(str(out), SETTINGS, False, shard=Shard(k, 2))
        for src in done:
            shard.starting(src, str(out / os.path.basename(src)))
            (out / os.path.basename(src)).write_bytes(b"output")
        shard.finished(done[0], str(out / os.path.basename(done[0])), [1, 2])
        shard.close()  # shard 2/2: c.png started and not finished (killed)
    running = _job_running_in(out, "1/2")
    try:
        files = sorted(os.listdir(out))
        for _ in range(2):  # (the first look leaves the job running, and lets it go on holding its lock)
            status = job_status(str(out), "enhance")
            assert {led.shard: led.running for led in status.ledgers} == {"1/2": True, "2/2": False}
        assert main(["status", str(out)]) == 0
        said = capsys.readouterr().out
        assert re.search(r"shard 1/2 +1 done +0 unfinished +last written .* ago +running now\n", said), said
        # (closed with no end record, as a run killed leaves its ledger)
        assert re.search(r"shard 2/2 +1 done +1 unfinished +last written .* ago +stopped \(killed, or its node lost\)\n",
                         said), said  # fmt: skip
        assert "  running now: shard 1/2\n" in said and "  stopped: shard 2/2\n" in said
        assert f"xvertfast enhance INPUT ... -o {out} --shard 2/2 (" in said
        assert main(["status", str(out), "--json"]) == 0
        ledgers = json.loads(capsys.readouterr().out)[0]["ledgers"]
        assert [(led["shard"], led["running"]) for led in ledgers] == [("1/2", True), ("2/2", False)]
        assert sorted(os.listdir(out)) == files  # (the look makes no file in the folder)
    finally:
        running.kill()  # as kill -9 does
        running.wait()
    assert [led.running for led in job_status(str(out), "enhance").ledgers] == [False, False]
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "running now:" not in said and "  stopped: shard 1/2, shard 2/2\n" in said


def test_status_says_whether_a_job_without_shard_runs_now(tmp_path, capsys):
    from xvertfast.cli import main
    from xvertfast.io.job_folder import job_status

    out = tmp_path / "out"
    JobFolder(str(out), SETTINGS, False).close()
    assert [led.running for led in job_status(str(out), "enhance").ledgers] == [False]
    running = _job_running_in(out, None)
    try:
        assert [led.running for led in job_status(str(out), "enhance").ledgers] == [True]
        assert main(["status", str(out)]) == 0
        said = capsys.readouterr().out
        assert re.search(r"without --shard +0 done +0 unfinished +last written .* ago +running now\n", said), said
        assert "not running" not in said
    finally:
        running.kill()
        running.wait()
    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert "  stopped: the job without --shard\n" in said and f"xvertfast enhance INPUT ... -o {out} (" in said


def _shard_ran(out, shard: Shard | None, finished: bool = True) -> None:
    """A run of ``shard`` (None: without --shard) into ``out`` that did nothing, and ended finished
    or stopped (interrupted)."""
    job = JobFolder(str(out), SETTINGS, False, shard=shard)
    job.ended(None if finished else "interrupted", found=1, done=0, skipped=1 if finished else 0, failed=0)
    job.close()


def _status(out, capsys) -> tuple[str, list[dict]]:
    """``xvertfast status out``'s text, and the shards without a ledger its --json gives."""
    from xvertfast.cli import main

    assert main(["status", str(out)]) == 0
    said = capsys.readouterr().out
    assert main(["status", str(out), "--json"]) == 0
    return said, json.loads(capsys.readouterr().out)[0]["shards_without_ledger"]


def test_status_names_the_shards_that_left_no_ledger_and_says_the_job_is_not_complete(tmp_path, capsys):
    # after --shard 1/2 alone, status said "finished: shard 1/2" and nothing of shard 2/2, as if the
    # job were done, though every shard names the count it is of
    from xvertfast.io.job_folder import ShardsWithoutLedger, job_status

    out = tmp_path / "out"
    _shard_ran(out, Shard(1, 2))
    assert job_status(str(out), "enhance").shards_without_ledger == [ShardsWithoutLedger(2, 2, 2)]
    said, missing = _status(out, capsys)
    assert missing == [{"count": 2, "first": 2, "last": 2}]
    assert "  finished: shard 1/2\n  shard 2/2: no ledger here (not started yet)\n" in said, said
    assert ("  the job is not complete until every shard of 2 has finished, or a run without --shard has (status "
            "cannot count the inputs, so it cannot say how many are left)\n") in said  # fmt: skip
    _shard_ran(out, Shard(2, 2), finished=False)  # every shard of 2 has a ledger: nothing of this is said
    said, missing = _status(out, capsys)
    assert missing == [] and "no ledger here" not in said and "not complete" not in said
    assert "  stopped: shard 2/2\n" in said


def test_status_says_the_shards_without_a_ledger_of_each_count(tmp_path, capsys):
    from xvertfast.io.job_folder import ShardsWithoutLedger, job_status

    out = tmp_path / "out"
    for shard in (Shard(1, 2), Shard(1, 8), Shard(6, 8)):
        _shard_ran(out, shard)
    (out / ".xvertfast-enhance-shard-0-of-5-outputs.jsonl").write_text("")  # named as no shard: no count of 5
    assert job_status(str(out), "enhance").shards_without_ledger == [
        ShardsWithoutLedger(2, 2, 2), ShardsWithoutLedger(8, 2, 5), ShardsWithoutLedger(8, 7, 8)]
    said, missing = _status(out, capsys)
    assert missing == [{"count": 2, "first": 2, "last": 2}, {"count": 8, "first": 2, "last": 5},
                       {"count": 8, "first": 7, "last": 8}]  # fmt: skip
    assert "  shard 2/2: no ledger here (not started yet)\n" in said
    assert "  shards 2/8 to 5/8, 7/8, 8/8: no ledger here (not started yet)\n" in said
    assert "/5: no ledger" not in said and "/5 to" not in said and "of one count (2 or 8)" in said
    assert "  the job is not complete until every shard of one count (2 or 8) has finished, or a run without" in said


def test_shards_without_a_ledger_are_needed_only_for_new_inputs_where_a_whole_count_finished(tmp_path, capsys):
    out = tmp_path / "out"
    _shard_ran(out, Shard(1, 2))
    for k in (1, 2, 3):
        _shard_ran(out, Shard(k, 3))
    said, missing = _status(out, capsys)
    assert missing == [{"count": 2, "first": 2, "last": 2}]
    assert "  shard 2/2: no ledger here (not started yet)\n" in said
    assert ("  every shard of 3 finished, so every input found then was done, skipped or failed: the shards without "
            "a ledger are needed only for inputs added since\n") in said and "not complete" not in said  # fmt: skip
    whole = tmp_path / "whole"  # the same of a run without --shard that finished
    _shard_ran(whole, None)
    _shard_ran(whole, Shard(2, 4))
    said, missing = _status(whole, capsys)
    assert missing == [{"count": 4, "first": 1, "last": 1}, {"count": 4, "first": 3, "last": 4}]
    assert "  the job without --shard finished, so every input" in said
    stopped = tmp_path / "stopped"  # one of them stopped: the job is not complete
    _shard_ran(stopped, Shard(1, 2))
    for k in (1, 2, 3):
        _shard_ran(stopped, Shard(k, 3), finished=k != 2)
    said, _ = _status(stopped, capsys)
    assert "needed only for inputs added since" not in said
    assert "  the job is not complete until every shard of one count (2 or 3) has finished" in said


def test_status_of_a_ledger_of_a_huge_count_gives_the_shards_without_one_as_ranges(tmp_path, capsys):
    """A ledger of a mistyped ``--shard 1/100000000`` (from before Shard.parse had a limit) made
    every later status build one "K/N" a shard without a ledger: 1.5 s and 5 M JSON entries at
    N = 5e6. Runs of them, as the text gives them, are as many as the ledgers, whatever N."""
    from xvertfast.io.job_folder import ShardsWithoutLedger, job_status

    out = tmp_path / "out"
    huge = 100_000_000
    for k in (1, 5):
        _shard_ran(out, Shard(k, huge))
    assert job_status(str(out), "enhance").shards_without_ledger == [ShardsWithoutLedger(huge, 2, 4),
                                                                     ShardsWithoutLedger(huge, 6, huge)]  # fmt: skip
    said, missing = _status(out, capsys)
    assert missing == [{"count": huge, "first": 2, "last": 4}, {"count": huge, "first": 6, "last": huge}]
    assert (f"  shards 2/{huge} to 4/{huge}, 6/{huge} to {huge}/{huge}: no ledger here (not started yet)\n"
            in said), said  # fmt: skip


def test_status_lists_the_ledgers_in_the_order_of_their_shards_numbers(tmp_path, capsys):
    """The ledger table and the finished line were in the order of the ledgers' names (1/20,
    10/20, 2/20), the line of shards without a ledger in that of N, then K."""
    out = tmp_path / "out"
    for shard in (Shard(10, 20), Shard(2, 20), None, Shard(1, 20), Shard(2, 3)):
        _shard_ran(out, shard)
    said, _ = _status(out, capsys)
    rows = re.findall(r"^  (shard \S+|without --shard) +\d+ done", said, re.M)
    assert rows == ["without --shard", "shard 2/3", "shard 1/20", "shard 2/20", "shard 10/20"], said
    assert "  finished: the job without --shard, shard 2/3, shard 1/20, shard 2/20, shard 10/20\n" in said
    assert "  shards 1/3, 3/3: no ledger here (not started yet)\n  shards 3/20 to 9/20, 11/20 to 20/20:" in said
    from xvertfast.cli import main

    assert main(["status", str(out), "--json"]) == 0
    ledgers = json.loads(capsys.readouterr().out)[0]["ledgers"]
    assert [led["shard"] for led in ledgers] == [None, "2/3", "1/20", "2/20", "10/20"]


def _output_lines(ledger: str, first: int, n: int, key: str, newline_last: bool = True) -> None:
    """Appends ``n`` finished-output lines (outputs ``o<first>.png`` on) to ``ledger``."""
    with open(ledger, "a") as f:
        for i in range(first, first + n):
            line = json.dumps({"output": f"o{i}.png", "input": f"/in/i{i}.png", "state": "done", "settings": key,
                               "stat": [1, 2, 3], "t": 10**18 + i})  # fmt: skip
            f.write(line + ("\n" if newline_last or i < first + n - 1 else ""))


def test_a_shard_reads_the_ledgers_before_its_turn_and_in_it_only_what_was_written_since(tmp_path, monkeypatch):
    """Shards start one at a time (the settings mutex), and each read every ledger whole in its
    turn: 4 ledgers of 100k lines kept the 4th shard waiting 20-28 s (measured). A shard now reads
    them while it waits; in its turn only the lines the running shards wrote meanwhile, and it
    knows the same as a whole read (the outputs, the start lines it checks side files against)."""
    import threading

    out, report = str(tmp_path / "out"), str(tmp_path / "run.json")
    first = JobFolder(out, SETTINGS, False, shard=Shard(1, 2), side_files={"report": report})
    ledger_1 = os.path.join(out, shard_files("enhance", Shard(1, 2))[0])
    _output_lines(ledger_1, 0, 500, first.key)
    taken, real_take = [], job_folder._take_lines

    def counted(texts, *args):
        texts = list(texts)
        taken.append(len(texts))
        return real_take(texts, *args)

    monkeypatch.setattr(job_folder, "_take_lines", counted)
    mutex = hold_lock(os.path.join(out, job_folder.shards_locks("enhance")[0]))  # (as a shard in its turn)
    second, refusal = [], []

    def shard_2():
        try:
            second.append(JobFolder(out, SETTINGS, False, shard=Shard(2, 2), side_files={"report": report}))
        except ValueError as exc:
            refusal.append(str(exc))

    thread = threading.Thread(target=shard_2, name="shard-2")
    thread.start()
    try:
        for _ in range(12000):  # (up to 120 s: shard 2 reads before it waits on the mutex)
            if sum(taken) >= 501 or not thread.is_alive():
                break
            thread.join(0.01)
        assert sum(taken) >= 501, f"shard 2 read {sum(taken)} lines before its turn"  # shard 1's start line and 500 outputs
        before = sum(taken)
        _output_lines(ledger_1, 500, 3, first.key, newline_last=False)  # (the last being written still)
    finally:
        mutex.close()
        thread.join(timeout=120)
        first.close()
    assert not thread.is_alive() and not second, second
    assert refusal and "is also the report of shard 1/2 of this job, which runs now" in refusal[0], refusal
    assert sum(taken) - before <= 3 + 1, taken  # in turn: the lines written since (the one cut short taken apart)
    # what it read in pieces is what a whole read says
    reading = job_folder.LedgersRead()
    reading.read([ledger_1])
    with open(ledger_1, "a") as f:
        f.write("\n")  # (o502's line gains its newline)
    _output_lines(ledger_1, 503, 1, first.key)
    reading.read([ledger_1])
    assert reading.merged([ledger_1]) == job_folder.read_ledgers([ledger_1]), "pieces read other than the whole"
    assert "o502.png" in reading.merged([ledger_1])[0] and len(reading.merged([ledger_1])[0]) == 504


def test_a_ledger_read_in_pieces_reads_as_the_whole_also_where_it_was_replaced(tmp_path):
    """A ledger cut shorter or replaced since it was read (another inode) is read again from its
    start; lines gaining their newline later, and a ledger gone, read as a whole read has them."""
    ledger, other = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    _output_lines(ledger, 0, 5, "k", newline_last=False)
    _output_lines(other, 100, 2, "k")
    reading = job_folder.LedgersRead()
    reading.read([ledger, other])
    assert reading.merged([ledger, other], runs := {}) == job_folder.read_ledgers([ledger, other], whole_runs := {})
    assert runs == whole_runs and len(reading.merged([ledger, other])[0]) == 7  # (o4, without its newline, counted)
    with open(ledger, "a") as f:
        f.write("\n" + json.dumps({"run": "start", "host": "h", "t": 10**18 + 50}) + "\n")
    reading.read([ledger, other])
    assert reading.merged([ledger, other], runs := {}) == job_folder.read_ledgers([ledger, other], whole_runs := {})
    assert runs == whole_runs and runs[ledger]["start"]["host"] == "h"
    os.remove(ledger)
    _output_lines(ledger, 200, 2, "k")  # (a new file, fewer bytes)
    os.remove(other)
    reading.read([ledger, other])
    assert reading.merged([ledger, other]) == job_folder.read_ledgers([ledger, other])
    assert sorted(reading.merged([ledger, other])[0]) == ["o200.png", "o201.png"]


def test_a_ledger_emptied_and_written_again_longer_under_its_inode_is_read_again_whole(tmp_path):
    """A ledger written again from its start under the same inode (emptied in place, or removed and
    written again where the file system gives the inode back at once, as ext4 does) was taken for the
    one read, and read on from the old offset: its old lines kept, and the new file read from the
    middle of a line (101 outputs, where a whole read finds 100). The file is emptied in place here,
    so that its inode is the same on every file system (tmpfs gives a removed file's inode back
    later, and the old read passed there)."""
    ledger = str(tmp_path / "a.jsonl")
    _output_lines(ledger, 0, 50, "k")
    reading = job_folder.LedgersRead()
    reading.read([ledger])
    inode = os.stat(ledger).st_ino
    open(ledger, "wb").close()  # emptied, the same file
    _output_lines(ledger, 1000, 100, "k")  # (more bytes than were read: not taken for a file cut shorter)
    assert os.stat(ledger).st_ino == inode
    reading.read([ledger])
    assert reading.merged([ledger]) == job_folder.read_ledgers([ledger]), "old lines kept, or the new read mid-line"
    assert sorted(reading.merged([ledger])[0]) == sorted(f"o{i}.png" for i in range(1000, 1100))
    _output_lines(ledger, 1100, 3, "k")  # (appended to after that: read on from where the new read stopped)
    reading.read([ledger])
    assert reading.merged([ledger]) == job_folder.read_ledgers([ledger]) and len(reading.merged([ledger])[0]) == 103


def test_only_a_shard_the_settings_let_in_reads_the_ledgers_before_its_turn(tmp_path, monkeypatch):
    """The read before the turn is for shards, which take the turn one at a time. A job alone in
    the folder read every ledger first, and a shard or job refused for other settings read them
    all (2.8 s for 74 MB) before it was refused."""
    out = str(tmp_path / "out")
    with JobFolder(out, SETTINGS, False, shard=Shard(1, 2)) as first:
        _output_lines(os.path.join(out, shard_files("enhance", Shard(1, 2))[0]), 0, 20, first.key)
        first.ended(None)
    reads, real_read = [], job_folder.LedgersRead.read

    def counted(self, ledgers, *args, **kwargs):
        reads.append(len(ledgers))
        return real_read(self, ledgers, *args, **kwargs)

    monkeypatch.setattr(job_folder.LedgersRead, "read", counted)
    other = {**SETTINGS, "format": "tiff16"}
    for shard in (None, Shard(2, 2)):
        with pytest.raises(ValueError, match="with other settings"):
            JobFolder(out, other, False, shard=shard)
        assert reads == [], (shard, reads)
    with JobFolder(out, SETTINGS, False) as alone:  # (its turn at once: one read, in it)
        assert len(reads) == 1 and len(alone._ledger) == 20, reads
        alone.ended(None)
    reads.clear()
    with JobFolder(out, SETTINGS, False, shard=Shard(2, 2)) as second:  # before its turn, and in it
        assert len(reads) == 2 and len(second._ledger) == 20, reads
        second.ended(None)
