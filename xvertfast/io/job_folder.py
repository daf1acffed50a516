"""What a batch job (``xvertfast enhance``, ``xvertfast preprocess``) keeps in its output
folder so that a rerun resumes safely. For a job named ``JOB``:

- ``.xvertfast-JOB.json``: the job's settings (for enhance: model, mode, brightness, tile,
  format, precision; for preprocess: the WLS parameters). A rerun with other settings is
  refused unless it overwrites.
- ``.xvertfast-JOB-outputs.jsonl``: the ledger, a line for every output the job writes,
  naming its input (path, size, modification time) and the settings (an output finished:
  also the ROI centres ``--rois`` gave its input, where given, and the polarity an @list gave
  it, ``photometric``, null where untagged (absent on an older xvertfast's line: taken as
  made as listed now), and, for enhance, what the job warned of its image,
  where it did, for the report of a rerun that skips it). The line that starts an output is on
  disk before the output's rename, so a file at an output path that the ledger does not name
  was not written by xvertfast: an original, or another tool's file.
  Such a file is never counted as done and never replaced, even with ``--overwrite``.
  A rerun skips an output only where the ledger says it was finished from the same input,
  unchanged, with the same settings; it redoes the others (an input edited since, outputs
  left from an interrupted ``--overwrite`` with other settings). The same input is the same
  real path, or a file of the same name, size and (sub-second) modification time at another
  path: the archive moved, or mounted elsewhere. Where an input has one output (enhance),
  finishing it removes the files the ledger names as that input's other outputs: those of an
  earlier ``--format`` (``x.dcm`` beside a new ``x.png``), which would otherwise be taken for
  a second output of the input.
  Besides the outputs, each run records itself there: a line as it starts (the command line,
  where the CLI started it, and the folder it was started in where that has relative paths),
  and one as it ends, saying whether it finished (every input of its part done, skipped or
  failed) or stopped and why, with its counts. A run killed (``kill -9``, its node lost)
  leaves no end line. These lines name no output, so every version skips them when it resumes.
- ``.xvertfast-JOB.lock``: held (``flock``) while the job runs, so that a second job
  into the same folder is refused instead of racing the first (and removing its temporaries).
  A run taking it sets its modification time: later than the ledger's, it says a run starting,
  its start line not written yet (not the run before it, killed); a command refused before its
  start line sets it back. As it writes its start line, the run writes :data:`LOCK_ROOM` spaces
  over it: that room, made while the disk had space, takes the run's end record where the ledger
  cannot (the disk full), so that status says why it stopped.

A job split into shards (:class:`~xvertfast.io.shards.Shard`, ``--shard K/N``) runs as N
processes into one folder. They share the settings file; each appends to a ledger of its own,
``.xvertfast-JOB-shard-K-of-N-outputs.jsonl`` (appends from several machines to one file on a
network file system may interleave), and every job reads all the ledgers of its kind, so an
unsharded rerun, or shards of another N, resume from what any shard wrote. Each line carries
its time, which orders the lines of several ledgers: the clock's, or just after the latest line
the job read where that is later (another machine's clock ahead), so a line always sorts after
the lines its job read before writing it; a file's own lines keep their order. The shards hold
the folder's lock shared, which keeps an unsharded job out while they run (and them out while
it runs), and each its own ``.xvertfast-JOB-shard-K-of-N.lock``; shards of another N are
refused while some run (an input would belong to two of them). The shards check and record the
settings and make their ledgers one at a time (under ``.xvertfast-JOB-settings.lock``), so that
shards started together into a new folder all run (and none takes it for a folder of an
xvertfast before ledgers); those running hold ``.xvertfast-JOB-shards-running.lock`` shared,
and settings can change (``--overwrite``) only while none does. A shard with a ``--report`` or
``--preview`` records it in its start line (in that turn too), so that a shard naming the file
of another running is refused (one in OUT whatever its host, one elsewhere on the same machine).

The folder's files also mark it as a job's output folder, so that searching a tree for
inputs (:func:`xvertfast.io.files.discover`) does not take outputs for inputs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import operator
import os
import re
import socket
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from stat import S_ISDIR, S_ISREG

from xvertfast._paths import working_folder
from xvertfast._text import asked, count, from_cli, middle_cut, option_said
from xvertfast._version import __version__
from xvertfast.io.files import RealPaths, file_state, same_file
from xvertfast.io.shards import Shard
from xvertfast.io.write import (DISK_FULL, OutputFolderMoved, atomic_write, command_resumes, disk_full, listed_in,
                                nearest_existing, remove_stale_parts, replace_in, why_not_made)
from xvertfast.resume import LOCK_PATIENCE, ends_with_newline, hold_lock, lock_held, settings_changes

__all__ = ["JobFolder", "JobLog", "JobStatus", "LedgerStatus", "ShardsWithoutLedger", "dry_run_line", "run_line",
           "not_images_said", "no_image_among", "job_files", "job_status", "lock_early", "lock_early_at", "taken_over", "read_ledgers", "recorded_input",
           "mark_taken", "shard_files", "shards_locks",
           "JOB_FILE", "LEDGER_FILE", "LOCK_FILE", "JOB_STATE_FILES"]


def job_files(job: str) -> tuple[str, str, str]:
    """The settings file, ledger and lock a job named ``job`` keeps in its output folder."""
    return f".xvertfast-{job}.json", f".xvertfast-{job}-outputs.jsonl", f".xvertfast-{job}.lock"


def shard_files(job: str, shard: Shard) -> tuple[str, str, str]:
    """The ledger and lock of one shard of a job, and the lock its shards of that count share."""
    return (f".xvertfast-{job}-{shard.name}-outputs.jsonl", f".xvertfast-{job}-{shard.name}.lock",
            f".xvertfast-{job}-shards-of-{shard.count}.lock")  # fmt: skip


def shards_locks(job: str) -> tuple[str, str]:
    """The locks all shards of a job share: the mutex under which each settles the settings and
    makes its ledger, and the one the shards running hold shared."""
    return f".xvertfast-{job}-settings.lock", f".xvertfast-{job}-shards-running.lock"


def _shard_ledger_name(job: str) -> re.Pattern:
    """The name of a shard's ledger (:func:`shard_files`); its groups: K and N."""
    return re.compile(rf"\.xvertfast-{re.escape(job)}-shard-(\d+)-of-(\d+)-outputs\.jsonl")


def _shards_count_lock_name(job: str) -> re.Pattern:
    """The name of the lock the shards of one count share (:func:`shard_files`); its group: N."""
    return re.compile(rf"\.xvertfast-{re.escape(job)}-shards-of-(\d+)\.lock")


def _shard_lock_name(job: str, ledger_name: re.Match) -> str | None:
    """The lock of the shard whose ledger's name matched :func:`_shard_ledger_name`; None where
    the name is of no shard (``shard-0-of-2``)."""
    try:
        return shard_files(job, Shard(int(ledger_name.group(1)), int(ledger_name.group(2))))[1]
    except ValueError:
        return None


def _ledgers(out_dir: str, job: str, dir_fd: int | None = None) -> list[str]:
    """The ledgers of job ``job`` in ``out_dir``: the unsharded job's first, then its shards'.
    ``dir_fd``: the folder held open (:func:`_open_in`), listed in place of ``out_dir``."""
    pattern = _shard_ledger_name(job)
    try:
        held = None if dir_fd is None else (dir_fd, out_dir)
        names = sorted(n for n in listed_in(out_dir if held is None else ".", held) if pattern.fullmatch(n))
    except OSError:
        names = []
    return [os.path.join(out_dir, n) for n in [job_files(job)[1], *names]]


#: The first line of a ledger started in a folder of an xvertfast before ledgers: the outputs it
#: does not name are that version's, adopted as they are met, in every later run too.
LEGACY_MARK = "adopts_unrecorded_outputs"

#: The key of a ledger line that records a run rather than an output: RUN_START as the run begins,
#: RUN_END as it ends (:meth:`JobFolder.ended`). Such a line names no ``output``, so every version's
#: reader skips it (each skipped a line without one as a line a kill cut short).
RUN, RUN_START, RUN_END = "run", "start", "end"

#: The key of a start line's side files: the files besides its outputs a run writes as it ends, by
#: option, resolved (``{"report": "/home/me/run.json"}``; see :class:`JobFolder`).
SIDE_FILES = "side_files"

#: The longest command line a start line records: a shell glob of thousands of files makes one of
#: megabytes, a line too long for a ledger of small lines (and for a person to run again).
COMMAND_LIMIT = 4096

#: How many failed inputs (with why) a run's end line names, for ``xvertfast status`` to show: the
#: first few say what went wrong; all of them are in the run's --report, and the end line stays short.
FAILURES_RECORDED = 3
#: Longest reason (its input's path, then the problem) the end line keeps of a failed input: a longer
#: one is cut in its middle, the cut marked " ... " (:func:`xvertfast._text.middle_cut`).
REASON_CHARS = 500

#: Why a run stopped, where its ledger has no end line after its start line and no one runs it.
KILLED = "killed, or its node lost"

#: Bytes a run writes over the lock it holds as it starts (:func:`_make_room`): its end record goes
#: there where the ledger cannot take it (:func:`_leave_end`): written in place, over room made
#: while the disk had space, it needs none (on a file system that writes in place; copy-on-write
#: ones, btrfs, ZFS, APFS with snapshots, and network shares of them may need new blocks for it).
LOCK_ROOM = 1024

#: A ledger line's state for an output the job removed (replaced by the input's new output, or
#: one whose writing an error or Ctrl-C stopped: :meth:`JobFolder.abandoned`).
REMOVED = "removed"

#: A finished line's mark where the output was recorded, not made, by the job that wrote the line
#: (an earlier version's output adopted, an output whose input moved recorded at its new path):
#: such lines, written in a burst as a run plans, say nothing of how fast outputs are made.
ADOPTED = "adopted"

#: ``photometric`` of :meth:`JobFolder.finished` for a line that records no polarity (the key left
#: out): an output adopted as it is, whose polarity no line told, is taken as made as listed now.
_UNTOLD = object()


def _tag(photometric: str | None) -> str | None:
    """The polarity an @list gives an input as a ledger line keeps it: MONOCHROME2 reads exactly
    as untagged, so an output made either way is done for the other (None)."""
    return None if photometric in (None, "MONOCHROME2") else photometric

#: Those of ``xvertfast enhance``.
JOB_FILE, LEDGER_FILE, LOCK_FILE = JOB_STATE_FILES = job_files("enhance")


def settings_key(settings: dict) -> str:
    """The settings as a ledger line names them (what an output was made with)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _moved_here(recorded: str | None, recorded_stat, identity: str, stat) -> bool:
    """Whether the input whose real path is ``identity`` (as the ledger names an input: see
    :class:`JobFolder`) is the recorded input moved to another path (the archive moved,
    or mounted elsewhere; rsync -a and cp -p keep times): the recorded path is gone, and this
    file has its name, size and modification time, a time with sub-second digits. Where the
    recorded file is still there, this is another file (series of a DICOM export reuse names
    and sizes); where times have no sub-second digits (FAT, many network shares), files
    written together share them: no such guess is made."""
    return (recorded_stat is not None and recorded_stat == stat and stat[1] % 1_000_000_000 != 0
            and os.path.basename(recorded or "") == os.path.basename(identity)
            and not os.path.lexists(recorded))  # fmt: skip


def read_ledgers(ledgers: list[str], runs: dict[str, dict] | None = None
                 ) -> tuple[dict[str, dict], dict[str, str], bool, int]:  # fmt: skip
    """Every ledger's lines, in the order they were written (by their times; lines of an
    xvertfast before shards have none, and come first, in their file's order): each output's
    latest line, the ledger it is in, whether a ledger marks the folder as one of an xvertfast
    before ledgers, and the latest line's time. ``runs``, where given, gets each ledger's latest
    run (:func:`_latest_run`)."""
    reading = LedgersRead()
    reading.read(ledgers)
    return reading.merged(ledgers, runs)


class _LedgerRead:
    """One ledger as read so far: its lines up to ``offset`` (just after the last whole line), the
    file they were read from (device, inode), and what they said."""

    def __init__(self, identity: tuple[int, int]):
        self.identity, self.offset = identity, 0
        self.last = 0  # the latest time of its lines (a file's own lines are in the order written)
        self.run: dict = {}  # its latest run (_latest_run)
        self.legacy = False
        self.lines: list[tuple[int, int, dict, str]] = []  # (the time it sorts by, its place, the output line, the ledger)
        self.tail = b""  # the bytes after its last newline (a line being written, or one a kill cut)
        self.end = b""  # its last whole line read, which ends at ``offset`` (see LedgersRead.read)


def _take_lines(texts, ledger: str, last: int, run: dict, lines: list) -> tuple[int, dict, bool]:
    """Reads lines ``texts`` of ``ledger`` on from its ``last`` time and latest ``run``, appending its
    output lines to ``lines``; returns the new ``last`` and ``run``, and whether a line marked the
    folder as one of an xvertfast before ledgers. A line that is not one (cut short by a kill) is
    skipped."""
    legacy = False
    for line in texts:
        try:
            entry = json.loads(line)
            if entry.get(LEGACY_MARK):
                legacy = True
                continue
            if RUN in entry:
                t = entry.get("t", 0)
                last = max(last, t if isinstance(t, int) else 0)
                run = _latest_run(run, entry)
                continue
            run = _latest_run(run, None)
            entry["output"] = entry["output"].replace(os.sep, "/")  # a ledger written on Windows
            t = entry.get("t", 0)
            last = max(last, t if isinstance(t, int) else 0)
            lines.append((last, len(lines), entry, ledger))
        except (ValueError, KeyError, TypeError, AttributeError):  # a line cut short by a kill
            continue
    return last, run, legacy


class LedgersRead:
    """The ledgers of a job folder read so far, each file from where its last read stopped: they
    are only appended to, so a second :meth:`read` reads what was written since the first. A shard
    reads the ledgers before its turn (:meth:`JobFolder._settings_turn`), others starting with it,
    and in its turn only what the shards running wrote meanwhile, which shortens the time each
    shard holds the settings mutex (4 ledgers of 100k lines: 1.2-2.7 s, not 3.9-10.9 s). Shards start sooner
    for it only where their reads run in parallel (on separate machines; not measured): on one
    machine's busy cores the reads compete. A file replaced or cut shorter since (another inode,
    fewer bytes, or bytes other than the last line read where it ended) is read again from its
    start. Where every file has the inode 0 (sshfs-win, some SMB mounts) the inode tells no file
    from another, and the last line, which holds the time it was written (``t``), tells them."""

    def __init__(self):
        self._files: dict[str, _LedgerRead] = {}

    def read(self, ledgers: list[str], dir_fd: int | None = None) -> None:
        """Reads what each of ``ledgers`` holds past what was read of it; forgets those gone. An
        OSError other than a file missing is raised (job_status names the ledger). ``dir_fd``:
        their folder, held open (:func:`_open_in`)."""
        for ledger in ledgers:
            try:
                with _open_in(ledger, "rb", dir_fd) as f:
                    stat = os.fstat(f.fileno())
                    known = self._files.get(ledger)
                    if known is not None and known.end and stat.st_size >= known.offset:
                        # a file removed and written again may get the same inode at once (ext4):
                        # it is another where the last line read is not where it was
                        f.seek(known.offset - len(known.end))
                        if f.read(len(known.end)) != known.end:
                            known = None
                    if known is None or known.identity != (stat.st_dev, stat.st_ino) or stat.st_size < known.offset:
                        known = self._files[ledger] = _LedgerRead((stat.st_dev, stat.st_ino))
                    f.seek(known.offset)
                    whole, tail = [], b""
                    for raw in f:  # (line by line: a ledger of 100k lines is not held as text at once)
                        if raw.endswith(b"\n"):
                            whole.append(raw)
                        else:  # (a line without its newline yet is read again next time)
                            tail = raw
            except FileNotFoundError:
                self._files.pop(ledger, None)
                continue
            texts = (raw.decode("utf-8", errors="replace") for raw in whole)  # (bytes not text: that line is skipped)
            known.last, known.run, legacy = _take_lines(texts, ledger, known.last, known.run, known.lines)
            known.legacy = known.legacy or legacy
            known.offset += sum(map(len, whole))
            known.tail = tail
            known.end = whole[-1] if whole else known.end

    def merged(self, ledgers: list[str], runs: dict[str, dict] | None = None
               ) -> tuple[dict[str, dict], dict[str, str], bool, int]:  # fmt: skip
        """:func:`read_ledgers` of ``ledgers`` as read (each file's last line without its newline
        counted as a whole read would count it, and read again by the next :meth:`read`)."""
        lines, legacy = [], False
        for ledger in ledgers:
            known = self._files.get(ledger)
            if known is None:
                continue
            last, run, tail_lines, tail_legacy = known.last, known.run, [], False
            if known.tail:
                last, run, tail_legacy = _take_lines([known.tail.decode("utf-8", errors="replace")], ledger, last, run,
                                                     tail_lines)  # fmt: skip
            legacy = legacy or known.legacy or tail_legacy
            lines += known.lines
            lines += tail_lines
            if runs is not None and run:
                runs[ledger] = run
        entries: dict[str, dict] = {}
        sources: dict[str, str] = {}
        lines.sort(key=operator.itemgetter(0))  # (stable: lines of one time keep their ledgers' order, then their file's)
        for _, _, entry, ledger in lines:
            rel = entry["output"]
            if entry.get("state") == REMOVED:  # a later file there is not one of ours
                entries.pop(rel, None)
                sources.pop(rel, None)
            else:
                entries[rel], sources[rel] = entry, ledger
        return entries, sources, legacy, max((item[0] for item in lines), default=0)


def recorded_input(out_dir: str, path: str, job: str = "enhance") -> str | None:
    """The input that ``out_dir``'s ledgers record for an output at ``path`` (by any earlier run,
    whatever its inputs; the file there or gone), or None where they record none. Read without the
    folder's lock, before a job takes it, so that a file the job would write when it ends (its
    --report) is refused before the job makes anything: written over an earlier run's output, the
    ledger still said that output done, and every rerun of that run skipped it. A job writing the
    folder then may record such an output after this read: :class:`JobFolder` asks its ledgers
    again once it holds the folder (``side_files``). A path spelled in another
    case than the recorded one (OUT/a.PNG, on a file system that ignores case) is found where it is
    the same file."""
    if _key_in(out_dir, path) is None:  # (outside the folder: no ledger is read)
        return None
    return _recorded_input_in(read_ledgers(_ledgers(out_dir, job))[0], out_dir, path)


def _key_in(out_dir: str, path: str) -> str | None:
    """The ledger's key of ``path`` (resolved) in ``out_dir``; None where it lies outside."""
    root, real = os.path.realpath(out_dir), os.path.realpath(path)
    try:
        rel = os.path.relpath(real, root)
    except ValueError:  # (on another drive: Windows)
        return None
    if rel in (os.curdir, os.pardir) or rel.startswith(os.pardir + os.sep):
        return None
    return rel.replace(os.sep, "/")


def _recorded_input_in(entries: dict[str, dict], out_dir: str, path: str) -> str | None:
    """:func:`recorded_input` of ledgers already read (``entries``: each output's latest line)."""
    key = _key_in(out_dir, path)
    if key is None:
        return None
    root, real = os.path.realpath(out_dir), os.path.realpath(path)
    if key in entries:
        return entries[key].get("input", "")
    if not os.path.exists(real):  # (the file a case-insensitive spelling names would be there)
        return None
    for recorded, entry in entries.items():
        other = os.path.join(root, *recorded.split("/"))
        if recorded.casefold() == key.casefold() and same_file(real, other):  # (not samefile: inodes all 0)
            return entry.get("input", "")
    return None


def _latest_run(run: dict, record: dict | None) -> dict:
    """A ledger's latest run, read line by line: ``{"start": its start line, "end": its end line
    or None, "after_end": whether output lines follow the end line}``; ``record``: the next run
    line, or None for an output line. Output lines after an end line were written by a run that
    records none (an earlier xvertfast): how that one ended is unknown."""
    if record is None:
        return {**run, "after_end": True} if run.get("end") and not run.get("after_end") else run
    if record.get(RUN) == RUN_START:
        return {"start": record, "end": None, "after_end": False}
    if record.get(RUN) == RUN_END:
        return {"start": run.get("start"), "end": record, "after_end": False}
    return run


@dataclass
class LedgerStatus:
    """One ledger of a job folder, as :func:`job_status` reads it."""

    name: str  #: its file name in the folder
    shard: str | None  #: "K/N" for a shard's, None for the unsharded job's
    done: int  #: outputs whose latest line, in all the ledgers, is this ledger's and says finished with the recorded settings
    unfinished: int  #: outputs whose latest line is this ledger's and says started (in flight, or killed)
    modified: float  #: when the ledger was last written (seconds since the epoch)
    #: outputs whose latest line is this ledger's and says finished with other settings than the
    #: recorded ones (before an ``--overwrite`` with new settings): a run on these redoes them
    other_settings: int = 0
    #: output files this ledger's job finished a second lately (see :func:`recent_rate`), or None
    rate: float | None = None
    #: how many of its finished outputs the rate was taken over, or (no rate) would have been: 0
    #: where it finished none, so that a shard's dry run says 'too few outputs' only of one that made some
    rate_outputs: int = 0
    #: whether the job writing this ledger runs now: it holds its lock (the unsharded job the
    #: folder's, exclusively; a shard its own), and a lock goes with its process, a kill -9 too
    #: (:func:`~xvertfast.resume.lock_held`). None where that cannot be told here
    running: bool | None = None
    #: how the latest run writing this ledger ended: "finished" (every input of its part done,
    #: skipped or failed) or "stopped" (``stop`` says why). None where it runs now or it cannot be
    #: told: a ledger of an xvertfast before run records (or last written by one)
    ended: str | None = None
    ended_at: float | None = None  #: when (seconds since the epoch); for a run killed, its ledger's last write
    #: why it stopped: "interrupted" (Ctrl-C, SIGTERM), "the disk is full", "the device failed
    #: (...)", an error, or :data:`KILLED` where it wrote no end record
    stop: str | None = None
    #: its inputs: found (its part), done, skipped (done before), failed, and not_images (inputs that
    #: are no image, a DICOM presentation state or report: not failures), where there were any
    counts: dict | None = None
    command: str | None = None  #: the command line that started the latest run (shell-quoted), where the CLI did
    #: the inputs the latest run found (its part, for a shard), as it recorded them starting: while it
    #: runs, what its done count goes towards (an enhance job's; None where the run recorded none)
    found: int | None = None
    cwd: str | None = None  #: the folder it was started in, where its command has relative paths
    host: str | None = None  #: the machine the latest run ran on
    #: the first inputs the latest run failed (at most :data:`FAILURES_RECORDED`), each (input, why)
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: the --report the latest run was to write, resolved: where all its failures are, if it was
    #: written and is there still (``xvertfast status`` names it only then: see :attr:`report_state`)
    report: str | None = None
    #: what is at :attr:`report` now: "written" (a file written at the run's end or later: its report),
    #: "older" (one from before its end: an earlier run's at that path, or one restored from a copy) or
    #: "missing" (not written, or removed since); None where the run was to write none
    report_state: str | None = None
    #: for a run without an end record and not seen running: the other machine it was started on,
    #: where it may still run unseen (its lock does not reach here where locks are only local)
    elsewhere: str | None = None
    #: running, but its start not recorded yet (it loads torch and its model first: seconds, minutes to
    #: build TensorRT engines; or its disk is full): its command, cwd and host are then None, not those
    #: of the run before it, which status gave as the one running. Told where that run recorded its end
    #: (:func:`_starting`), or by the lock taken since the ledger was last written (:func:`_taken_since`):
    #: after a run killed too, whose start line, with no end, was given as the running one's
    starting: bool = False


@dataclass(frozen=True)
class ShardsWithoutLedger:
    """Shards ``first`` to ``last`` (both included) of ``count``, none of which has a ledger here.
    Runs of shards, not one entry a shard: a ledger of a mistyped ``--shard 1/100000000`` made
    status list 1e8 shards; the runs of N are at most one more than its ledgers."""

    count: int
    first: int
    last: int


@dataclass
class JobStatus:
    """What a job's output folder says of its progress, read without taking its locks."""

    job: str  #: enhance, preprocess
    version: str | None  #: the xvertfast that recorded the settings
    settings: dict | None  #: the recorded settings (None: unreadable)
    ledgers: list[LedgerStatus]
    #: the folder is one of an xvertfast before ledgers: the outputs that version wrote are
    #: counted only once a run has met them
    legacy: bool = False
    #: output files finished a second lately, all ledgers together: the sum of the rates (see
    #: :func:`recent_rate`) of the latest ledger at work and those at work beside it; None where none has one yet
    rate: float | None = None
    #: how many finished outputs the rate was taken over; without a rate, how many those ledgers at
    #: work finished lately (not those of a shard that ran before them: its pace is not theirs)
    rate_outputs: int = 0
    rate_ledgers: int = 0  #: how many ledgers' rates were added up (1: shards that ran one after another)
    #: how many ledgers are at work, the latest and those beside it, with a rate or not: more than
    #: :attr:`rate_ledgers` where some (just started) have none yet, and the rate leaves them out
    ledgers_at_work: int = 0
    #: the shards that have no ledger here (not started yet), of every count N some shard's ledger
    #: here is of, as runs in the order of N, then K. Where shard 1/2 alone had run, status said
    #: "finished: shard 1/2" and nothing of 2/2, as if the job were done. A job of shards is
    #: complete once every shard of one count has finished; how many inputs the missing ones hold,
    #: status cannot tell (it never sees the inputs)
    shards_without_ledger: list[ShardsWithoutLedger] = field(default_factory=list)
    #: why :attr:`settings` is None, naming the settings file: missing, unreadable, not JSON, or
    #: without settings; None where they were read. Status said 'settings unreadable' alone,
    #: leaving the user to guess which of the folder's hidden files to look at
    settings_problem: str | None = None

    @property
    def done(self) -> int:
        return sum(led.done for led in self.ledgers)

    @property
    def unfinished(self) -> int:
        return sum(led.unfinished for led in self.ledgers)

    @property
    def other_settings(self) -> int:
        return sum(led.other_settings for led in self.ledgers)

    @property
    def rate_of(self) -> str:
        """Whose finished outputs :attr:`rate` adds up (or :attr:`rate_outputs` counts, without a
        rate), where the folder has several ledgers: 'latest' (that shard alone, none at work beside
        it), 'all' or 'some' (:attr:`ledgers_at_work` of them at work together), or 'part' (only
        :attr:`rate_ledgers` of those at work: the others have no rate yet)."""
        if 0 < self.rate_ledgers < self.ledgers_at_work:
            return "part"
        if self.ledgers_at_work == 1:
            return "latest"
        return "all" if self.ledgers_at_work == len(self.ledgers) else "some"


#: A pause longer than this between two finished outputs ends a stretch of work: the rate is
#: taken over the latest stretch only (a job stopped overnight and resumed is not slowed by it).
RATE_PAUSE_S = 600.0
#: The rate is taken over this many of the latest finished outputs, or more where they were
#: finished within :data:`RATE_MIN_SPAN_S` (a fast job's hundred outputs take seconds).
RATE_OUTPUTS = 100
#: No rate is given from outputs finished within less than this, nor from fewer than
#: :data:`RATE_MIN_OUTPUTS` made after the first: outputs come in batches (a batch's land a second
#: or so apart, the next ones many seconds later), and two of one batch read as 66 a minute where
#: the job made 38.
RATE_MIN_SPAN_S = 30.0
RATE_MIN_OUTPUTS = 5
#: Outputs finished within this of the one before them, from the stretch's first on (the four files
#: of one preprocess input, recorded one after another), finished with it: they are not counted as
#: made after it.
RATE_TOGETHER_NS = 1_000_000
#: A gap between two outputs over this many times the stretch's short gaps (its lower quartile:
#: those between the outputs of one batch, where they come in batches of two or more) ends a batch.
#: A mean gap could not tell them: batches of 8 a second apart, every 20 s, have a mean of 2.5 s.
RATE_BATCH_GAP = 3.0


def recent_rate(times_ns: list[int]) -> tuple[float | None, int]:
    """(output files a second, how many it was taken over): the latest outputs finished, at least
    :data:`RATE_OUTPUTS` of them and :data:`RATE_MIN_SPAN_S` where there are, back to the first
    pause over :data:`RATE_PAUSE_S`; the ledger lines' times, nanoseconds. The outputs finished
    after the stretch's first batch (:func:`_first_batch`), over the time from its last to the
    stretch's last: a batch's outputs made in the time before the first are not counted, so that
    batches give the rate they are made at, not one batch more. None where that is too little to go on:
    under :data:`RATE_MIN_OUTPUTS` outputs after the first batch, or a stretch shorter than
    :data:`RATE_MIN_SPAN_S` (one batch, one preprocess input's four files, or lines whose times
    were set just after one another: a clock set back, see ``JobFolder._next_time``)."""
    return _stretch_rate(_recent_stretch(times_ns))


def _recent_stretch(times_ns: list[int]) -> list[int]:
    """The times the rate of :func:`recent_rate` is taken over, sorted (0, a line without a time,
    is left out); apart from it, so that :func:`job_status` has the stretch's ends without sorting
    the times again."""
    times = sorted(t for t in times_ns if t > 0)
    start = len(times) - 1
    while (start > 0 and times[start] - times[start - 1] <= RATE_PAUSE_S * 1e9
           and (len(times) - start < RATE_OUTPUTS or times[-1] - times[start] < RATE_MIN_SPAN_S * 1e9)):
        start -= 1
    return times[max(start, 0):]


def _stretch_rate(stretch: list[int]) -> tuple[float | None, int]:
    """:func:`recent_rate` of the stretch :func:`_recent_stretch` found."""
    if len(stretch) < 2:
        return None, len(stretch)
    span = stretch[-1] - stretch[0]
    first_batch = _first_batch(stretch)
    after = len(stretch) - first_batch
    if after < RATE_MIN_OUTPUTS or span < RATE_MIN_SPAN_S * 1e9:
        return None, len(stretch)
    return after / ((stretch[-1] - stretch[first_batch - 1]) / 1e9), len(stretch)


def _first_batch(stretch: list[int]) -> int:
    """How many outputs of ``stretch`` (sorted times, two or more) belong to its first batch: up to
    the first gap over :data:`RATE_BATCH_GAP` times its short ones. The rate is taken from that
    batch's last output on, so that it runs from a batch's end to a batch's end. That gap is taken
    for a batch's end only within the stretch's first half: a steady stream of outputs that paused
    once late (a disk slow for a moment) is no batch of most of them. Without one, the first batch
    is the outputs within :data:`RATE_TOGETHER_NS` of the one before them, from the first on. A gap
    taken for a batch's end that was not one leaves outputs out of the rate, but does not skew it:
    the rate is still the outputs after a finished one over the time since."""
    gaps = [later - earlier for earlier, later in zip(stretch, stretch[1:])]
    apart = max(RATE_TOGETHER_NS, RATE_BATCH_GAP * sorted(gaps)[len(gaps) // 4])
    batch_end = next((n + 1 for n, gap in enumerate(gaps) if gap > apart), len(stretch))
    if batch_end <= len(stretch) // 2:
        return batch_end
    return next((n + 1 for n, gap in enumerate(gaps) if gap > RATE_TOGETHER_NS), len(stretch))


def job_status(out_dir: str, job: str) -> JobStatus | None:
    """The progress a job of kind ``job`` recorded in ``out_dir``, or None where none ran there,
    and whether the job (each shard) writing each ledger runs now. Reads only: running jobs are
    neither locked out nor slowed (their locks are looked at for a moment, shared: see
    :func:`~xvertfast.resume.lock_held`). OSError where a ledger cannot be read (another user's, say)."""
    settings_file = os.path.join(out_dir, job_files(job)[0])
    ledgers = _ledgers(out_dir, job)
    if not os.path.exists(settings_file) and not any(os.path.exists(p) for p in ledgers):
        return None
    recorded, settings_problem = _read_settings_file(settings_file)
    recorded = recorded or {}
    settings = recorded.get("settings")
    settings = settings if isinstance(settings, dict) else None
    if not settings and settings_problem is None:
        settings_problem = f"{settings_file} holds no settings"
    key = None if settings is None else settings_key(settings)  # (unreadable: every finished one counts)
    pattern = _shard_ledger_name(job)
    locks = {}  # a ledger -> the lock its job holds while it runs
    for ledger in ledgers:
        match = pattern.fullmatch(os.path.basename(ledger))
        lock = job_files(job)[2] if match is None else _shard_lock_name(job, match)
        locks[ledger] = None if lock is None else os.path.join(out_dir, lock)
    # looked at before the ledgers are read and after: a run that writes its end and lets its lock go
    # (or takes its lock and writes its start) while they are read is running, not killed
    held_before = {ledger: lock and lock_held(lock) for ledger, lock in locks.items()}
    runs: dict[str, dict] = {}
    entries, sources, legacy, _ = read_ledgers(ledgers, runs)
    latest_in: dict[str, list[dict]] = {}  # a ledger -> the outputs whose latest line is in it
    for rel, ledger in sources.items():
        latest_in.setdefault(ledger, []).append(entries[rel])

    def finish_times(outputs) -> list[int]:  # of the outputs made with the recorded settings
        return [e["t"] for e in outputs if e.get("state") == "done" and isinstance(e.get("t"), int)
                and not e.get(ADOPTED) and (key is None or e.get("settings") == key)]  # fmt: skip

    found, rates = [], []
    for ledger in ledgers:
        try:
            written = os.stat(ledger)
        except OSError:
            continue
        modified = written.st_mtime
        match = pattern.fullmatch(os.path.basename(ledger))
        mine = latest_in.get(ledger, [])
        done = [e for e in mine if e.get("state") == "done"]
        current = sum(key is None or e.get("settings") == key for e in done)
        stretch = _recent_stretch(finish_times(mine))
        own_rate, counted = _stretch_rate(stretch)
        looks = (held_before[ledger], None if locks[ledger] is None else lock_held(locks[ledger]))
        running = True if True in looks else None if None in looks else False
        run = runs.get(ledger, {})
        if looks[1] is False and run.get("start") and run.get("end") is None:  # (the disk full: its end in its lock)
            run = {**run, "end": _end_left(locks[ledger], run["start"].get("t"))}
        # (held after the read: a run ending during it is not)
        starting = looks[1] is True and (_starting(run) or _taken_since(locks[ledger], run, written.st_mtime_ns))
        found.append(LedgerStatus(os.path.basename(ledger), match and f"{match.group(1)}/{match.group(2)}", current,
                                  sum(e.get("state") == "writing" for e in mine), modified, len(done) - current,
                                  own_rate, counted, running, starting=starting,
                                  # (the latest start, an earlier run's, does not say the running one's command)
                                  **_how_it_ended({} if starting else run, running, modified)))  # fmt: skip
        if counted:  # (the ends of the stretch of work its rate was taken over)
            rates.append((stretch[-1], stretch[0], own_rate, counted))
    # all ledgers together: the sum of their own rates, not the rate of their lines merged: shards started
    # together finish their first outputs at one moment, which merged read as hundreds a minute (3
    # outputs 0.3 s apart: 600). Only the ledgers at work beside the latest one count: those that finished
    # an output within RATE_PAUSE_S of its latest (a shard stopped long ago makes no outputs now) and
    # after its stretch began (shards run one after the other each went at their own pace, not the sum)
    latest, began = max(((last, first) for last, first, _, _ in rates), default=(0, 0))
    # (the latest ledger is at work by this rule, whatever its rate: without one, the outputs counted are
    # those of the ledgers at work, not those of a shard before them, whose rate is not for now)
    at_work = [(r, n) for last, _, r, n in rates if latest - last <= RATE_PAUSE_S * 1e9 and last >= began]
    working = [(r, n) for r, n in at_work if r is not None]
    rate = sum(r for r, _ in working) if working else None
    rate_outputs = sum(n for _, n in working or at_work)
    legacy = legacy or (os.path.exists(settings_file) and not found)
    found.sort(key=_shard_order)  # (named in text order, 10/20 came before 2/20)
    return JobStatus(job, recorded.get("xvertfast"), settings, found, legacy, rate, rate_outputs, len(working),
                     len(at_work), _shards_without_ledger(found), settings_problem)  # fmt: skip


def _read_settings_file(path: str, dir_fd: int | None = None) -> tuple[dict | None, str | None]:
    """A job's settings file as read (None where there is none, {} where it is no JSON object)
    and, where it could not be read, why, naming it: missing, unreadable (and why), or not JSON
    (and where). ``dir_fd``: its folder, held open (:func:`_open_in`)."""
    try:
        with _open_in(path, "r", dir_fd) as f:
            recorded = json.load(f)
    except FileNotFoundError:
        return None, f"{path} is missing"
    except OSError as exc:
        return {}, f"cannot read {path} ({exc.strerror or exc})"
    except ValueError as exc:
        return {}, f"{path} is not valid JSON ({exc})"
    return (recorded if isinstance(recorded, dict) else {}), None


def _shard_order(led: LedgerStatus) -> tuple[int, int, int]:
    """Where a ledger comes in status's list: the unsharded job's first, then the shards' by N,
    then K, as numbers (as the shards without a ledger are listed)."""
    if led.shard is None:
        return 0, 0, 0
    index, count = map(int, led.shard.split("/"))
    return 1, count, index


def _shards_without_ledger(ledgers: list[LedgerStatus]) -> list[ShardsWithoutLedger]:
    """:attr:`JobStatus.shards_without_ledger` of the ``ledgers`` found, in a time that grows with
    the ledgers, not with N. A ledger named as no shard (``shard-0-of-2``, ``shard-3-of-2``: not
    one xvertfast writes) says nothing of its count."""
    present: dict[int, set[int]] = {}  # N -> the K with a ledger
    for led in ledgers:
        index, count = map(int, (led.shard or "0/0").split("/"))
        if 1 <= index <= count:
            present.setdefault(count, set()).add(index)
    runs = []
    for count in sorted(present):
        before = 0  # the latest K with a ledger, going up
        for index in [*sorted(present[count]), count + 1]:
            if index > before + 1:
                runs.append(ShardsWithoutLedger(count, before + 1, index - 1))
            before = index
    return runs


def _starting(run: dict) -> bool:
    """Whether a ledger whose job runs now (holds its lock) has not recorded that run's start yet: its
    latest run (``run``, :func:`_latest_run`) has an end line, so it is an earlier run's, and the run
    holding the lock loads torch and its model before it writes its start (the command takes the lock
    first: :func:`lock_early`). Status gave the earlier run's command and host as the running one's.
    (Where the earlier run wrote no end, killed, its start line cannot be told from the running one's.)"""
    return bool(run.get("end")) and not run.get("after_end")


def _taken_since(lock: str, run: dict, ledger_written_ns: int) -> bool:
    """Whether the lock at ``lock``, held, was taken (:func:`mark_taken`) after its ledger was last written
    (``ledger_written_ns``), which holds a start line (``run``): the run holding it has not recorded its
    start yet, so that start line, with no end after it, is the run's before it, killed (its command is
    not the running one's). The two times are one file system's clock."""
    try:
        return bool(run.get("start")) and os.stat(lock).st_mtime_ns > ledger_written_ns
    except OSError:
        return False


def _end_left(lock: str, start) -> dict | None:
    """The end record the run whose start line's time is ``start`` left in its lock (:func:`_leave_end`),
    its ledger full; None where there is none (a run killed), or it is another run's."""
    try:
        with open(lock, "rb") as f:
            left = json.loads(f.read(2 * LOCK_ROOM))
    except (OSError, ValueError):  # (a lock of spaces: no record)
        return None
    if not isinstance(left, dict) or start is None or left.get("start") != start:
        return None
    return left["end"] if isinstance(left.get("end"), dict) else None


def _how_it_ended(run: dict, running: bool | None, modified: float) -> dict:
    """The fields of :class:`LedgerStatus` that say how the ledger's latest run (``run``, from
    :func:`_latest_run`) ended and how it was started. An end line says it, unless the run is
    running again (its start line not yet written); a start line alone, with no one running it,
    says the run was killed."""
    start, end = run.get("start") or {}, run.get("end")
    said = {"command": start.get("command"), "cwd": start.get("cwd"), "host": start.get("host")}
    said = {k: v if isinstance(v, str) else None for k, v in said.items()}
    found = start.get("found")
    said["found"] = found if isinstance(found, int) and not isinstance(found, bool) else None
    if running or run.get("after_end") or not run:
        return said
    if end is not None:
        sides = start.get(SIDE_FILES) if isinstance(start.get(SIDE_FILES), dict) else {}
        said["report"] = sides.get("report") if isinstance(sides.get("report"), str) else None
        named = end.get("failures") if isinstance(end.get("failures"), list) else []  # (5, or a damaged line: none)
        said["failures"] = [(f[0], f[1]) for f in named if isinstance(f, list) and len(f) == 2
                            and all(isinstance(text, str) for text in f)][:FAILURES_RECORDED]  # fmt: skip
        counts = {k: end[k] for k in ("found", "done", "skipped", "failed") if isinstance(end.get(k), int)}
        if isinstance(end.get("not_images"), int) and end["not_images"]:  # (recorded where there were any)
            counts["not_images"] = end["not_images"]
        t = end.get("t")
        ended_at = t / 1e9 if isinstance(t, int) else None
        if said["report"] is not None:
            said["report_state"] = _report_state(said["report"], ended_at, modified)
        # (stopped with nothing left, by a signal held while its last outputs were written: finished)
        nothing_left = all(k in counts for k in ("found", "done", "skipped", "failed")) and counts["found"] == (
            counts["done"] + counts["skipped"] + counts["failed"] + counts.get("not_images", 0))
        why = None if nothing_left else end.get("why")
        return {**said, "ended": "stopped" if why else "finished", "stop": why or None,
                "ended_at": ended_at, "counts": counts or None}  # fmt: skip
    if start and running is False:
        # (where locks do not reach across machines, a run on another one is not seen running)
        elsewhere = said["host"] if said["host"] not in (None, socket.gethostname()) else None
        return {**said, "ended": "stopped", "stop": KILLED, "ended_at": modified, "elsewhere": elsewhere}
    return said


def _report_state(path: str, ended_at: float | None, ledger_written: float) -> str:
    """:attr:`LedgerStatus.report_state` of the report at ``path`` of a run whose end line was written
    at ``ended_at`` (by the job machine's clock) into a ledger last written at ``ledger_written`` (by
    its file system's): a report is written after that line, so a file there is its report where it
    was written at the earlier of the two or later. Compared with the end line's time alone, a report
    on a network share whose server's clock is behind the job machine's was called older than its
    run; with the ledger's alone, one on the job machine's own disk where the server's is ahead. The
    ledger's time is the clock of OUT's file system, so the first case is mended where the report shares
    it (a report on a share of its own, its clock behind both, is still called older). (Two
    seconds' leeway: a coarse file system clock, or a FAT one's 2 s steps, may date it before.)"""
    if not os.path.lexists(path):
        return "missing"
    since = ledger_written if ended_at is None else min(ended_at, ledger_written)
    try:
        stat = os.stat(path)
    except OSError:  # (a link leading nowhere)
        return "older"
    return "written" if S_ISREG(stat.st_mode) and stat.st_mtime >= since - 2 else "older"


def _mode(path: str, follow: bool, dir_fd: int | None = None, root: str = "") -> int | None:
    """The file type and mode of ``path`` (of a link itself, unless ``follow``), or None where there is
    nothing; with ``dir_fd`` (a job's folder held: :func:`_open_folder`, whose path is ``root``), of
    the file at ``path``'s place in that folder, wherever ``root`` leads now."""
    try:
        if dir_fd is None:
            return (os.stat(path) if follow else os.lstat(path)).st_mode
        return os.stat(os.path.relpath(path, root), dir_fd=dir_fd, follow_symlinks=follow).st_mode
    except (OSError, ValueError):
        return None


def _in_the_way(out_dir: str, out: str, exists: bool, clear: set[str], mode=_mode) -> str | None:
    """What keeps ``out`` from being written, in words: a folder of its name, or a file where a
    folder above it in ``out_dir`` goes (the job said only "[Errno 17] File exists" or "Is a
    directory", and a dry run did not see it). None where nothing does. ``exists``: whether
    ``out`` does (the caller looked). ``clear``: the folders found clear of such a file so far,
    added to: their other outputs are not looked up again (a stat each on a network share, for
    tens of thousands of outputs). ``mode``: how a path is looked at (:func:`_mode`, or a job's in
    the folder it holds)."""
    if exists:
        if S_ISDIR(mode(out, True) or 0):  # (write_image refuses a link to a folder too)
            return (f"{out} is a folder, so the output cannot be written there; move it away or use another "
                    "output folder")  # fmt: skip
        return None
    root, parent = os.path.abspath(out_dir), os.path.dirname(os.path.abspath(out))
    folder = parent
    while folder not in clear and folder != root and os.path.dirname(folder) != folder:
        if mode(folder, False) is not None:  # the nearest that exists: a folder, or what is in the way
            followed = mode(folder, True) or 0
            if S_ISDIR(followed):
                break
            what = "a file" if S_ISREG(followed) else "not a folder"
            return (f"{folder} is {what}, so {out} cannot be written below it; move it away or use another "
                    "output folder")  # fmt: skip
        folder = os.path.dirname(folder)
    clear.add(parent)
    return None


def dry_run_line(job: str, shard: Shard | None, found: int, found_all: int, planned: int, skipped: int,
                 failed: int, seconds: float) -> str:  # fmt: skip
    """A dry run's summary (:class:`JobFolder` ``read_only``), the same for every job kind."""
    part = shard.share(found, found_all) if shard else ""
    return (f"dry run, nothing written: {part}{planned} to {job}, {skipped} done already, {failed} would fail "
            f"(planned in {seconds:.1f} s)")  # fmt: skip


def run_line(shard: Shard | None, found: int, found_all: int, done: int, warned: int, skipped: int, failed: int,
             seconds: float, not_images: dict[str, int] | None = None) -> str:  # fmt: skip
    """A run's summary, the same for every job kind; the rate only where images were done (a
    rerun that skips them all was said to run at "0.00 images/s", as if stuck). ``not_images``:
    how many inputs of each kind were no image (:class:`~xvertfast.io.errors.NotAnImage`), said
    apart from the failures, where there were any."""
    part = shard.share(found, found_all) if shard else ""
    with_warnings = f" ({warned} with warnings)" if warned else ""
    rate = f" ({done / seconds:.2f} images/s)" if done and seconds > 0 else ""
    others = f", {not_images_said(not_images)}" if not_images else ""
    return (f"{part}{done} done{with_warnings}, {skipped} skipped{others}, {failed} failed in "
            f"{seconds:.1f} s{rate}")  # fmt: skip


def not_images_said(kinds: dict[str, int] | int | None) -> str:
    """"3 not images (PR 2, SR 1)": the inputs skipped as no image, by kind where the kinds are
    known ("3 not images" of a number: a ledger keeps no kinds), "" where there were none; the one
    wording of a summary line, ``xvertfast status`` and :func:`no_image_among`."""
    if not kinds:
        return ""
    total = kinds if isinstance(kinds, int) else sum(kinds.values())
    each = "" if isinstance(kinds, int) else ", ".join(
        f"{kind} {n}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))  # fmt: skip
    return f"{total} not {'an image' if total == 1 else 'images'}{f' ({each})' if each else ''}"


def no_image_among(found: int, kinds: dict[str, int] | None) -> str | None:
    """Why a job whose every input found was no image (a folder of a PACS export's presentation
    states and reports alone, the images' folder not given) made nothing: "no image among the 2 files
    found: 2 not images (PR 1, SR 1)". Its summary's counts said "0 failed" and it exited 0, a
    script going on with nothing. None where any input was an image (or failed: that says why)."""
    if not kinds or sum(kinds.values()) < found:
        return None
    return f"no image among the {count(found, 'file')} found: {not_images_said(kinds)}"


class JobLog:
    """A batch job's ``log``, which a line it cannot write does not end in an error: its stream closed
    (``xvertfast enhance ... |& head -1``), or a log file's disk full. The job ended "an error:
    BrokenPipeError", its summary and --report lost; that line and every later one are lost now, and
    :attr:`lost` says why, for the job to stop as it stops on a full disk: the outputs in flight
    finished, the stop recorded in the ledger, the same command resuming."""

    def __init__(self, log):
        self._log = log
        self.lost: str | None = None  #: why the job's lines are lost, once a line could not be written

    def __call__(self, line: str) -> None:
        if self.lost is not None:
            return
        try:
            self._log(line)
        except OSError as exc:
            self.lose(exc)

    def lose(self, exc: OSError) -> None:
        """Its lines are lost from now on: ``exc`` met writing one, or the progress bar's. A full disk
        (a log file's) is said as an output's is, for the stop to tell the user to free room before
        the same command resumes (:func:`~xvertfast.io.write.resumes_once`): it would stop again."""
        if self.lost is None:
            self.lost = f"its log could not be written ({DISK_FULL if disk_full(exc) else exc.strerror or exc})"

    def bar(self, progress: bool, **kwargs):
        """The job's tqdm progress bar (``progress`` False: none drawn), on sys.stderr, which the bar
        cannot end the job through: tqdm absorbs a closed terminal's EIO but not EPIPE (``|& head
        -1``), raised out of the bar's creation or update past this log; it now stops the job as a
        lost line does."""
        from tqdm import tqdm

        try:
            return tqdm(disable=not progress, file=_BarFile(sys.stderr, self), **kwargs)
        except OSError as exc:  # (tqdm flushes sys.stderr itself as it makes a bar on it)
            self.lose(exc)
            return tqdm(disable=True, **kwargs)


class _BarFile:
    """A stream whose first write (or flush) that fails marks its :class:`JobLog` lost and
    silences the bar: what it draws next is dropped, not raised."""

    def __init__(self, stream, log: JobLog):
        self._stream, self._log, self._broken = stream, log, False

    def _tried(self, method: str, *args) -> None:
        if self._broken:
            return
        try:
            getattr(self._stream, method)(*args)
        except OSError as exc:
            self._broken = True
            self._log.lose(exc)

    def write(self, text: str) -> None:
        self._tried("write", text)

    def flush(self) -> None:
        self._tried("flush")

    def __getattr__(self, name: str):  # (encoding, isatty, fileno: tqdm sizes the bar by them)
        return getattr(self._stream, name)

    def __eq__(self, other) -> bool:  # tqdm.write clears the bars drawn on its file, found by ==
        return self._stream == other

    def __hash__(self) -> int:
        return hash(self._stream)


def _open_file_path(fd: int) -> str | None:
    """The path the system gives the open file ``fd`` now (it follows the file's renames): Linux's
    /proc, macOS's F_GETPATH. None where it cannot be told (the file removed, neither of those)."""
    try:
        import fcntl
    except ImportError:  # (Windows)
        return None
    if hasattr(fcntl, "F_GETPATH"):
        try:
            path = fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024))
        except OSError:
            return None
        return os.fsdecode(path.split(b"\0", 1)[0]) or None
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return None if path.endswith(" (deleted)") or not os.path.isabs(path) else path


def _inside(rel: str) -> bool:
    """Whether the ledger's key ``rel`` names a file inside its folder: not absolute, and each of its
    parts a name alone, none empty (``/v.png``, whatever the system's isabs says; ``sub/``, a
    folder), no ``..``, no drive, no separator of the system (a job refuses an output that would
    leave the folder, so only a ledger edited by hand, or brought from elsewhere, names such a
    file, which an earlier format's removal must not touch). Each part, as the key is joined to the
    folder part by part: on Windows ``sub/C:v.png`` joins to ``C:v.png``, in drive C's working folder."""
    seps = {os.path.sep, os.path.altsep} - {None}
    return bool(rel) and not os.path.isabs(rel) and all(
        part not in ("", os.path.pardir) and not os.path.splitdrive(part)[0] and not seps & set(part)
        for part in rel.split("/"))  # fmt: skip


def _put_at_its_path(out_dir: str) -> ValueError:
    """The refusal of a start whose output folder was swapped for another at its path as it started:
    the folder it locked is not the one there now, whose files it would take for its own."""
    return ValueError(f"cannot write into the output folder {out_dir}: another folder was put at its path (the "
                      "folder moved, or a link changed) as the job started; run it again")


def _open_in(path: str, mode: str, dir_fd: int | None):
    """``open(path, mode)``; with ``dir_fd`` (a job's folder held: :func:`_open_folder`), the file of
    ``path``'s name in that folder, wherever ``path`` leads now: a job reads its ledgers and settings
    in the folder whose lock it holds, not in one put at its path since (``mv today yesterday``)."""
    if dir_fd is None:
        return open(path, mode)
    return open(os.path.basename(path), mode, opener=functools.partial(os.open, dir_fd=dir_fd))


def _open_folder(path: str) -> int | None:
    """An fd of the folder at ``path`` (by the path with a trailing separator, as the job's stat of it:
    an automount), through which the job opens its ledger and removes its outputs in the folder it
    checked, wherever the path leads later. None where the system takes no such fd (Windows) or the
    folder cannot be opened so (one not readable, where there is no O_PATH): the paths serve then."""
    if not {os.open, os.unlink, os.rename, os.stat} <= os.supports_dir_fd:
        return None
    try:
        return os.open(os.path.join(path, ""), getattr(os, "O_PATH", os.O_RDONLY) | getattr(os, "O_DIRECTORY", 0))
    except PermissionError:
        return None


#: The locks jobs' commands took as they started (:func:`lock_early`), by the lock file's (device, inode),
#: until the job's :class:`JobFolder` takes its own over.
_EARLY_LOCKS: dict[tuple[int, int], object] = {}


def lock_early(out_dir: str, job: str, shard: Shard | None = None):
    """Takes now the lock a run of ``job`` (its ``shard``) into ``out_dir`` holds while it runs (the
    folder's; a shard's own), where an earlier run there made it, and returns what lets it go: its
    :class:`JobFolder`, made later, takes it over. A command holds it from its start, before it loads
    torch and the model (seconds; minutes to build TensorRT engines), during which ``xvertfast status``
    said the earlier run "stopped" and gave the command that resumes it: a user who ran that started
    a second job, refused only then. Nothing is made: without the lock (a new folder, a file) the
    job's own checks say what is wrong. ValueError where another job holds it."""
    path = os.path.join(out_dir, job_files(job)[2] if shard is None else shard_files(job, shard)[1])
    return lock_early_at(path, lambda: _held_by_another(out_dir, job, path, shard), mark_taken)


def lock_early_at(path: str, refusal, taken=None):
    """:func:`lock_early` of the lock file at ``path``, for a job whose lock is named otherwise
    (``train``'s RUN_DIR): taken where it is there, until the job takes it over
    (:func:`taken_over`); ``refusal()``: the ValueError raised where another holds it; ``taken(lock)``:
    called once it is taken (a batch job's marks it so: :func:`mark_taken`), returns what undoes that
    where the command ends before its job takes the lock over (or None)."""
    try:
        key = _lock_key(os.stat(path)) if os.path.isfile(path) else None
        if key is None or key in _EARLY_LOCKS:  # (none to take; or taken already, by this process's command)
            return lambda: None
        lock = hold_lock(path, patience=LOCK_PATIENCE)
    except OSError:  # (not readable here: the job says why it cannot use the folder)
        return lambda: None
    if lock is None:
        raise refusal()
    if _lock_key(os.fstat(lock.fileno())) != key:  # (replaced since the look above)
        lock.close()
        return lambda: None
    _EARLY_LOCKS[key] = lock
    undo = taken(lock) if taken is not None else None

    def let_go() -> None:
        if _EARLY_LOCKS.get(key) is lock:  # (not taken over by its job folder)
            if undo is not None:
                undo()
            _EARLY_LOCKS.pop(key).close()

    return let_go


def mark_taken(lock):
    """Sets the modification time of ``lock``, a run's (held exclusively; a batch job's or ``train``'s),
    to now: status tells a run starting by it (:func:`_taken_since`; a training run's
    :func:`~xvertfast.train.run_folder.start_unrecorded`). Returns what sets it back (for a command
    refused before its start line: the folder is left as it was), or None where it could not be set; kept as the
    lock's ``unmark`` for the job that takes it over. Left unmarked on Windows: no time is set through
    an open file there (os.utime takes no fd: a TypeError, which stopped every job from starting), and
    status cannot see a lock held there anyway."""
    lock.unmark = None
    if os.utime not in os.supports_fd:
        return None
    fd = lock.fileno()
    try:
        before = os.fstat(fd)
        os.utime(fd)
    except (OSError, NotImplementedError, TypeError):  # (a system that times no open file)
        return None

    held = weakref.ref(lock)  # (not the lock itself: a cycle through it kept a lock no one closed held)

    def unmark() -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):  # (closed, or gone: nothing to undo)
            os.utime(held().fileno(), ns=(before.st_atime_ns, before.st_mtime_ns))

    lock.unmark = unmark
    return unmark


def _make_room(lock) -> bool:
    """:data:`LOCK_ROOM` spaces written over ``lock``, a run's, in place (opened to append, it is made
    to write in place), as the run writes its start line: the room :func:`_leave_end` writes in
    (an earlier run's end record there goes: that run is no longer the latest). Whether it is there.
    Synced before the start line: an NFS or SMB client sends a cached write later, and its server
    times the lock then, after the start line, so status said "starting" for tens of seconds."""
    fd = lock.fileno()
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_APPEND)
        os.pwrite(fd, b" " * (LOCK_ROOM - 1) + b"\n", 0)
        os.ftruncate(fd, LOCK_ROOM)  # (an older lock's longer content)
        os.fsync(fd)
        return True
    except (ImportError, OSError):
        return False


def _leave_end(lock, start: int, record: dict) -> None:
    """Writes ``record``, the end line of the run whose start line's time is ``start``, into its lock's
    room (:func:`_make_room`), where its ledger could not take it (the disk full): status reads it there
    (:func:`_end_left`), where the run read as killed. Its failures are left out where the room is
    too small for them. Nothing where it cannot be written. Synced here: an NFS client sends a cached
    write later, and a server that copies on write may refuse it only then (ENOSPC), at close."""
    for end in (record, {key: value for key, value in record.items() if key != "failures"}):
        data = json.dumps({"start": start, "end": end}).encode()
        if len(data) < LOCK_ROOM:
            with contextlib.suppress(OSError):
                os.pwrite(lock.fileno(), data.ljust(LOCK_ROOM - 1) + b"\n", 0)
                os.fsync(lock.fileno())
            return


def _lock_key(stat: os.stat_result) -> tuple[int, int] | None:
    """A lock file's key in :data:`_EARLY_LOCKS`; None where its inode tells no file from another (0)."""
    return (stat.st_dev, stat.st_ino) if stat.st_ino else None


def taken_over(path: str):
    """The lock at ``path`` that this process's command took early (:func:`lock_early`), now the
    caller's, or None."""
    try:
        key = _lock_key(os.stat(path))
    except OSError:
        return None
    return _EARLY_LOCKS.pop(key, None) if key is not None else None


def _held_by_another(out_dir: str, job: str, path: str, shard: Shard | None) -> ValueError:
    """The refusal of a job whose lock at ``path`` (the folder's; a shard's own) another holds."""
    if shard is None:
        return ValueError(f"another xvertfast {job} is writing into {out_dir} (it holds {path}); wait for it, or "
                          "use another folder")  # fmt: skip
    return ValueError(f"{shard} of an xvertfast {job} is already writing into {out_dir} (it holds {path})")


class JobFolder:
    """The output folder of one batch job: its lock, settings and ledger.

    ``job`` names the job (``enhance``, ``preprocess``): it names the files and the messages.
    Raises ValueError when the folder cannot be used: a file, not writable, another job
    running in it, or other settings without ``overwrite``.

    ``read_only`` (a dry run): the folder is neither made nor locked nor written; its settings
    are checked and its ledgers read as a run would, so :meth:`state` says what a run would do
    with each output (:attr:`busy`: another job writes into the folder now, and would keep a run
    out).

    ``command``: the command line that started the job (shell-quoted), where the CLI did, and
    ``cwd`` the folder it was started in, where its paths are relative: recorded in the ledger's
    start line, so that ``xvertfast status`` can give the command that resumes a run stopped
    (not one over :data:`COMMAND_LIMIT` characters).

    ``side_files``: the files the job writes when it ends besides its outputs, by option
    (``{"report": "run.json"}``). Each is refused (ValueError) where the ledgers, read once the
    job holds the folder, record an output there (the check before, :func:`recorded_input`, reads
    them unlocked: a job ending meanwhile could record one), and, for a shard, where another
    shard running now named the same file: each would write its report over the other's as it
    ends. One that has ended is replaced, as a rerun of a loop of shards with one --report would
    want, and :attr:`notes` says so. A file inside OUT is compared with the shards of every host
    (OUT is shared); one outside only with those of this machine (its start line records the
    host), as the path on another machine may be another file. The start line records them
    (resolved) for that check.

    ``found``: how many inputs the run found (its part, for a shard), recorded in its start line for
    ``xvertfast status`` to say while it runs (its done count alone said nothing of how far it had come).

    ``real_paths``: the job's :class:`~xvertfast.io.files.RealPaths`, which names each input as the
    ledger does (its real path), where the job resolved its inputs with it already (its search, its
    plan): each folder is then resolved once a job, not once by each.

    A run is the ``with`` block of its folder: an exception out of it (Ctrl-C, an error) is
    recorded as how the run ended, where :meth:`ended` was not called, and the folder is closed.
    """

    def __init__(self, out_dir: str, settings: dict, overwrite: bool, job: str = "enhance",
                 shard: Shard | None = None, read_only: bool = False, command: str | None = None,
                 cwd: str | None = None, side_files: dict[str, str] | None = None,
                 real_paths: RealPaths | None = None, found: int | None = None):  # fmt: skip
        self.out_dir = out_dir
        # the folder it holds (see starting), by its whole path, as the outputs' are planned (a working
        # folder deleted during the job, which os.getcwd no longer finds, changes neither). Not normpath'd:
        # it drops "latest/.." as text, where the system first follows the link latest (see _moved)
        self._whole_out = os.path.join(working_folder() or "", out_dir)
        self._real_out = os.path.realpath(self._whole_out)
        self._held: tuple[int, int] | None = None  # the folder's (device, inode) once made (see _moved)
        self._command = command  # (as given: what writes the rest where the folder moves names -o, or out_dir)
        self.side_files = {name: path for name, path in (side_files or {}).items() if path}
        self.overwrite = overwrite
        self.job = job
        self.shard = shard
        self.read_only = read_only
        self.busy = False
        self.found = found  #: the inputs the run found (its part), as given; None where not given
        self.notes: list[str] = []  # what the job should say before it runs (a side file replaced)
        self._job_file, self._ledger_file, self._lock_file = job_files(job)
        if shard is not None:
            self._ledger_file = shard_files(job, shard)[0]
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise ValueError(f"output folder {out_dir} is a file: give the outputs a folder "
                             f"({option_said('-o', 'made where missing')})")  # fmt: skip
        self._locks: list = []
        self._clear: set[str] = set()  # folders found clear of a file in the way of the outputs (see state)
        self._fd = None
        self._dir_fd: int | None = None  # the folder held, open (see _open_folder)
        self._time = 0  # the latest line's time (see _next_time)
        self._write_lock = threading.Lock()
        # an input as the ledger names it: its real path, each folder resolved once
        self._real_paths = RealPaths() if real_paths is None else real_paths
        self._ended = False
        self._own_lock = None  # the lock only this run holds (the folder's; a shard's own): see _make_room
        self._room = False  # whether its room takes the end record where the ledger cannot (see _make_room)
        self._started: int | None = None  # the time of its start line, once written
        self._ledgers_read = LedgersRead()  # (see _read_ledgers)
        if read_only:
            self._read_only_init(settings)
            return
        try:
            try:
                os.makedirs(out_dir, exist_ok=True)
                # (by the path with a trailing separator: stat of an automount point not yet mounted
                # (autofs, x-systemd.automount) sees its stub, where the lock's open mounts the share)
                before = os.stat(os.path.join(out_dir, ""))
                self._take_locks()
                # the same folder before the locks and after: the locks are in the one it names (a
                # folder renamed and another made at its path meanwhile would be taken for the job's).
                # Held open: the ledger is opened in it, not at its path again (a swap after this look)
                self._dir_fd = _open_folder(out_dir)
                held = os.fstat(self._dir_fd) if self._dir_fd is not None else os.stat(os.path.join(out_dir, ""))
                if (held.st_dev, held.st_ino) != (before.st_dev, before.st_ino):
                    raise _put_at_its_path(out_dir)
                self._held = (held.st_dev, held.st_ino)
            except OSError as exc:
                raise ValueError(f"cannot write into the output folder {out_dir}: "
                                 f"{why_not_made(out_dir, exc)}") from None
            self.settings = settings
            self.key = settings_key(settings)
            ledger = os.path.join(out_dir, self._ledger_file)
            made_ledger = _mode(ledger, False, self._dir_fd, out_dir) is None  # (in the folder held)
            if self._reads_ahead():  # by every shard starting at once; in the turn, only what was written since
                self._ledgers_read.read(_ledgers(out_dir, job, self._dir_fd), self._dir_fd)
            with self._settings_turn() as running_lock:
                # (a shard started with this one has recorded the settings and made its ledger, or
                # neither: a new folder is not taken for one of an xvertfast before ledgers)
                ledgers = self._find_ledgers()
                self._refuse_another_at_the_path()  # (before anything is written)
                # unbuffered appends: a line that fails (a full disk) is not kept to fail again at close.
                # Made before the settings are recorded, where it is not that earlier version's
                # folder: a kill between the two must not leave settings without a ledger, which the
                # next run would take for such a folder
                def open_ledger() -> int:
                    try:
                        return os.open(ledger if self._dir_fd is None else self._ledger_file,
                                       os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644, dir_fd=self._dir_fd)
                    except OSError as exc:  # (a folder copied from read-only media: its files 0444) named,
                        # as the folder's other files are, not a bare '[Errno 13] Permission denied: ...'
                        raise ValueError(f"cannot write into the output folder {out_dir}: its ledger {ledger} "
                                         f"cannot be opened for writing ({exc.strerror or exc})") from None  # fmt: skip

                if not self._legacy:
                    self._fd = open_ledger()
                self._settle_settings(running_lock)
                if self._fd is None:
                    self._fd = open_ledger()
                if self._legacy and not os.fstat(self._fd).st_size:
                    self._write(json.dumps({LEGACY_MARK: True}) + "\n", durable=True)
                # still in turn, so that a shard reads the start lines (side files) of those started
                # before it, and those started after it read its own
                self._load_ledgers(ledgers)
                try:
                    self._refuse_side_files(ledgers)
                except ValueError:  # a ledger this start made, empty, is not left (its own lock keeps others out)
                    if made_ledger and not os.fstat(self._fd).st_size:
                        self._unlink(self._ledger_file)
                    raise
                # (again, as the ledgers were read: its empty ledger is left beside the settings recorded)
                self._refuse_another_at_the_path()
                if os.fstat(self._fd).st_size and not self._ends_with_newline(ledger):
                    self._write("\n", durable=True)  # after a line a kill cut short: the next starts afresh
                if command is not None and len(command) > COMMAND_LIMIT:  # (status gives a template instead)
                    command = None
                sides = {name: os.path.realpath(path) for name, path in self.side_files.items()}
                started = {"command": command, "cwd": cwd, "host": socket.gethostname(), SIDE_FILES: sides,
                           "found": found}  # fmt: skip
                self._room = _make_room(self._own_lock)  # (before its start line: the lock's time is not later)
                with contextlib.suppress(OSError):  # (a full disk: a run that skips all it finds still runs)
                    record = {RUN: RUN_START, **{k: v for k, v in started.items() if v}}
                    self._record_run(record)
                    self._started = record["t"]
        except BaseException:
            if self._own_lock is not None and not self._room and getattr(self._own_lock, "unmark", None):
                self._own_lock.unmark()  # (refused: the lock's time as it was, the folder untouched)
            self.close()
            raise

    def _refuse_another_at_the_path(self) -> None:
        """ValueError where a folder was put at the output folder's path since its locks were taken
        (:meth:`_moved`): the start goes no further, as :meth:`state` looks for the outputs by their
        paths, and would take another job's there for this one's, done."""
        if self._moved() is not None:
            raise _put_at_its_path(self.out_dir)

    def _ends_with_newline(self, ledger: str) -> bool:
        """:func:`~xvertfast.resume.ends_with_newline` of the job's ledger, in the folder held."""
        with _open_in(ledger, "rb", self._dir_fd) as f:
            return ends_with_newline(f)

    def _reads_ahead(self) -> bool:
        """Whether to read the ledgers before the settings turn (:class:`LedgersRead`): a shard's,
        to hold the turn less long. Not a job alone in the folder, whose turn comes at once, nor a
        shard the recorded settings refuse (other ones, no overwrite): the read, 2.8 s for 74 MB of
        ledgers, came before its refusal for nothing."""
        if self.shard is None:
            return False
        try:
            self._find_ledgers()  # (whether it is a folder of an xvertfast before ledgers: its settings read so)
            self._recorded_settings()
        except ValueError:  # (said in the turn, where the settings are read again)
            return False
        return True

    def _read_only_init(self, settings: dict) -> None:
        """What a run would find in the folder, touching nothing (see the class docstring)."""
        # a run makes the folder (or the folders above it) and its files there: refused where it cannot
        made_in = nearest_existing(self.out_dir)
        if not os.access(made_in, os.W_OK | os.X_OK):
            raise ValueError(f"cannot write into the output folder {self.out_dir}: {made_in} is not writable here")
        self.settings, self.key = settings, settings_key(settings)
        ledgers = self._find_ledgers()
        _, previous = self._recorded_settings()
        # the locks whose holders keep a run out (_take_locks, _settle_settings): the folder's (shared
        # by shards); for a shard, its own, those of shards of another count, and, where the settings
        # change, the one the shards running on the recorded settings hold
        locks = [(os.path.join(self.out_dir, self._lock_file), self.shard is not None)]
        if self.shard is not None:
            locks.append((os.path.join(self.out_dir, shard_files(self.job, self.shard)[1]), False))
            pattern = _shards_count_lock_name(self.job)
            with contextlib.suppress(OSError):
                locks += [(os.path.join(self.out_dir, name), False) for name in sorted(os.listdir(self.out_dir))
                          if (match := pattern.fullmatch(name)) and int(match.group(1)) != self.shard.count]
            if previous != self.settings:
                locks.append((os.path.join(self.out_dir, shards_locks(self.job)[1]), False))
        for path, shared in locks:
            if self.busy:  # one held is enough (a look at a held lock waits LOCK_PATIENCE)
                break
            if os.path.exists(path):  # (not made where missing: no job ever took it)
                with contextlib.suppress(OSError):
                    probe = hold_lock(path, shared=shared, patience=LOCK_PATIENCE)  # (status may look at it)
                    self.busy = self.busy or probe is None
                    if probe is not None:
                        probe.close()
        self._load_ledgers(ledgers)
        self._refuse_side_files(ledgers)

    def _refuse_side_files(self, ledgers: list[str]) -> None:
        """ValueError where a side file (see the class docstring) is an output the ledgers record,
        or, for a shard, the side file of another shard running now (of any host where it is in
        OUT, else of this machine); a note where it is one such a shard wrote and has ended. The shards start one at a time
        (:meth:`_settings_turn`), so that each reads the start lines of those started before it."""
        for name, path in self.side_files.items():
            earlier = _recorded_input_in(self._ledger, self.out_dir, path)
            if earlier is not None:  # (the words of batch's check before the lock)
                raise ValueError(f"{asked(name, path)} is the output of {earlier or 'an input'} that an earlier run "
                                 "wrote (its ledger records it); it would be written over when the job ends: give "
                                 "it another name")  # fmt: skip
        if self.shard is None or not self.side_files:
            return
        own, pattern = os.path.join(self.out_dir, self._ledger_file), _shard_ledger_name(self.job)
        here = socket.gethostname()
        # a path inside OUT is one file for every host (OUT is shared, or the ledgers would not be);
        # one outside, /tmp/run.json say, may be another file on another machine
        sides = {name: (os.path.realpath(path), _key_in(self.out_dir, path) is not None)
                 for name, path in self.side_files.items()}  # fmt: skip
        for ledger in ledgers:
            match = pattern.fullmatch(os.path.basename(ledger))
            if match is None or os.path.abspath(ledger) == os.path.abspath(own):
                continue
            start = self._runs.get(ledger, {}).get("start") or {}
            host = start.get("host")
            named = start.get(SIDE_FILES) if isinstance(start.get(SIDE_FILES), dict) else {}
            for name, (real, in_out) in sides.items():
                path = self.side_files[name]
                if host != here and not in_out:
                    continue
                other = next((option for option, its in named.items() if its == real), None)
                if other is None:
                    continue
                shard, lock = f"shard {match.group(1)}/{match.group(2)}", _shard_lock_name(self.job, match)
                if lock is not None and lock_held(os.path.join(self.out_dir, lock)):
                    where = "on this machine" if host == here else f"on {host or 'another machine'}"
                    raise ValueError(f"{asked(name, path)} is also the {asked(other)} of {shard} of this job, which "
                                     f"runs now {where} ({ledger} records it) and will write it when it ends: "
                                     f"give each shard a {asked(name)} of its own (run-K.json, say)")  # fmt: skip
                if os.path.exists(real):
                    self.notes.append(f"{asked(name, path)} is the {asked(other)} that {shard} of this job wrote "
                                      f"({ledger} records it), which has ended: this run replaces it when it ends")  # fmt: skip

    def _find_ledgers(self) -> list[str]:
        """The job's ledgers in the folder; sets whether it is a folder of an xvertfast before
        ledgers (its outputs are adopted as they are met, in this run and later ones: the ledger's
        first line says so, as a run may meet only some) and whether other ledgers than this
        job's are there (named when a file is refused)."""
        # (in the folder held, where the job holds one: see _open_in)
        held = self._dir_fd
        ledgers = _ledgers(self.out_dir, self.job, held) if held is not None or os.path.isdir(self.out_dir) else []
        root = os.path.abspath(self.out_dir)
        self._legacy = _mode(os.path.join(self.out_dir, self._job_file), True, held, root) is not None and not any(
            _mode(ledger, True, held, root) is not None for ledger in ledgers)
        self._other_ledgers = self.shard is not None or len(ledgers) > 1
        return ledgers

    def _load_ledgers(self, ledgers: list[str]) -> None:
        """The outputs the ledgers record, and for each input the outputs they name for it."""
        self._ledger = self._read_ledgers(ledgers)
        self._outputs_of: dict[str, set[str]] = {}  # input -> the outputs the ledgers name for it
        for rel, entry in self._ledger.items():
            self._outputs_of.setdefault(entry.get("input"), set()).add(rel)

    def _take_own(self, path: str) -> None:
        """The lock only this run holds, at ``path`` (the folder's; a shard's own): taken over from
        the command (:func:`lock_early`), or taken now and marked so for status (:func:`mark_taken`).
        ValueError where another job holds it."""
        lock = taken_over(path) or hold_lock(path, patience=LOCK_PATIENCE)
        if lock is None:
            raise _held_by_another(self.out_dir, self.job, path, self.shard)
        self._locks.append(lock)
        self._own_lock = lock
        if not hasattr(lock, "unmark"):  # (taken now, not early by the command: marked now)
            mark_taken(lock)

    def _take_locks(self) -> None:
        """The folder's lock, exclusive; or, for a shard, shared, with the shard's own and the
        one its shards of that count share. ValueError where another job holds what it needs."""
        folder_lock = os.path.join(self.out_dir, self._lock_file)
        if self.shard is None:
            self._take_own(folder_lock)
            return
        lock = hold_lock(folder_lock, shared=True, patience=LOCK_PATIENCE)
        if lock is None:
            unsharded = "without --shard" if from_cli() else "not split into shards (shard=None)"
            raise ValueError(f"an xvertfast {self.job} {unsharded} is writing into {self.out_dir} (it holds "
                             f"{folder_lock}); wait for it, or use another folder")  # fmt: skip
        self._locks.append(lock)
        _, own_lock, count_lock = (os.path.join(self.out_dir, n) for n in shard_files(self.job, self.shard))
        self._take_own(own_lock)
        # shared by the shards of this count; taken exclusively only for a moment, by the check below
        count = hold_lock(count_lock, shared=True, wait=True)
        if count is None:  # (a blocking request is granted or fails with an error)
            raise ValueError(f"cannot lock {count_lock}")
        self._locks.append(count)
        pattern = _shards_count_lock_name(self.job)
        for name in sorted(os.listdir(self.out_dir)):
            match = pattern.fullmatch(name)
            if match is None or int(match.group(1)) == self.shard.count:
                continue
            probe = hold_lock(os.path.join(self.out_dir, name), patience=LOCK_PATIENCE)
            if probe is None:
                raise ValueError(f"shards of {match.group(1)} of an xvertfast {self.job} are writing into "
                                 f"{self.out_dir}; shards of {self.shard.count} cannot join them (an input would "
                                 "belong to two shards): wait for them, or run this one with their count")  # fmt: skip
            probe.close()

    def _write(self, text: str, durable: bool) -> None:
        if self.read_only:  # (the caller keeps the line in memory)
            return
        data = text.encode()
        while data:
            data = data[os.write(self._fd, data) :]
        if durable:
            os.fsync(self._fd)

    @contextlib.contextmanager
    def _settings_turn(self):
        """This job's turn to read and record the settings, make its ledger, read the ledgers and
        write its start line: at once for a job alone in the folder (its lock, exclusive), yielding
        None; the shards take it one at a time (each reads there only what the ledgers gained since
        its read before the turn: :class:`LedgersRead`), each against the shards already running,
        which hold the running lock (yielded) shared, on the recorded settings."""
        if self.shard is None:
            yield None
            return
        mutex_lock, running_lock = (os.path.join(self.out_dir, n) for n in shards_locks(self.job))
        mutex = hold_lock(mutex_lock, wait=True)
        try:
            yield running_lock
        finally:
            if mutex is not None:
                mutex.close()

    def _settle_settings(self, running_lock: str | None) -> None:
        """Refuses other recorded settings without ``overwrite``; records these. ``running_lock``
        (a shard's, with the settings mutex held): taken shared once settled; where the recorded
        settings change, only if no shard holds it (none runs on them)."""
        path = os.path.join(self.out_dir, self._job_file)
        self.remove_stale_parts([path])  # a killed job's (no other writes it now: the lock, or the shards' mutex)
        record = {"xvertfast": __version__, "settings": self.settings}
        recorded, previous = self._recorded_settings()
        if running_lock is not None and previous != self.settings:  # (none recorded: none should run)
            probe = hold_lock(running_lock, patience=LOCK_PATIENCE)  # (a shard running on the recorded settings holds it shared)
            if probe is None:
                raise ValueError(f"other shards of an xvertfast {self.job} are writing into {self.out_dir} with its "
                                 f"recorded settings; start the shards with new settings ({asked('overwrite', True)}) "
                                 "once none runs")  # fmt: skip
            probe.close()
        if recorded != record:  # (the shards of a job, but the first, each find it so)
            try:  # (in the folder held, as the ledger: not at its path, which a swap may have re-pointed)
                if self._dir_fd is not None:
                    replace_in(self._dir_fd, self._job_file, json.dumps(record, indent=2).encode())
                else:
                    with atomic_write(path) as tmp, open(tmp, "w") as f:
                        json.dump(record, f, indent=2)
            except OSError as exc:
                raise ValueError(f"cannot write into the output folder {self.out_dir}: {exc.strerror or exc}") from None
        if running_lock is not None:  # (granted at once: it is taken exclusively only under the mutex)
            running = hold_lock(running_lock, shared=True, wait=True)
            if running is None:
                raise ValueError(f"cannot lock {running_lock}")
            self._locks.append(running)

    def _recorded_settings(self) -> tuple[dict | None, dict | None]:
        """The folder's settings file as read (None: there is none; {}: unreadable) and the
        settings in it; ValueError where they are not this job's and ``overwrite`` is not given."""
        path = os.path.join(self.out_dir, self._job_file)
        recorded, problem = _read_settings_file(path, self._dir_fd)
        previous = recorded.get("settings") if recorded else None
        if isinstance(previous, dict) and self._legacy:  # settings added since are not recorded there
            previous = {**self.settings, **previous}
        if recorded is not None and not self.overwrite and not isinstance(previous, dict):
            # (no settings to resume with: the file and what is wrong with it, and the ways that remain)
            raise ValueError(f"{problem or f'{path} holds no settings'}: the settings the outputs in {self.out_dir} "
                             f"were made with are unknown; pass {asked('overwrite', True)} to redo them with "
                             "these settings, or use a new output folder")  # fmt: skip
        if recorded is not None and not self.overwrite and previous != self.settings:
            raise ValueError(f"{self.out_dir} holds outputs of an xvertfast {self.job} job with other settings "
                             f"({settings_changes(previous, self.settings)}); run with the recorded settings to "
                             f"resume, pass {asked('overwrite', True)} to redo the outputs with these, or use a new "
                             "output folder")  # fmt: skip
        return recorded, previous

    def _next_time(self) -> int:
        """A new line's time: the clock's, but always after every line this job has read or
        written, so that a line follows those it was written after even where another machine's
        clock runs ahead of this one's (a Lamport clock)."""
        self._time = max(time.time_ns(), self._time + 1)
        return self._time

    def _read_ledgers(self, ledgers: list[str]) -> dict[str, dict]:
        """The outputs the ledgers record (each output's latest line), reading only what they
        gained since this job's read before its turn (:class:`LedgersRead`)."""
        self._runs: dict[str, dict] = {}  # each ledger's latest run (see _refuse_side_files)
        self._ledgers_read.read(ledgers, self._dir_fd)
        entries, _, legacy, latest = self._ledgers_read.merged(ledgers, self._runs)
        self._ledgers_read = LedgersRead()  # (its lines are not kept for the job's life: a second read reads whole)
        self._legacy = self._legacy or legacy
        self._time = max(self._time, latest)
        return entries

    def _rel(self, out: str) -> str:
        """The ledger's key of an output: its path in the folder, with ``/`` as the separator
        on every system (ledgers written on Windows with ``\\`` are read the same way)."""
        return os.path.relpath(os.path.abspath(out), os.path.abspath(self.out_dir)).replace(os.sep, "/")

    def state(self, input_path: str, out: str, centres: list[float] | None = None,
              photometric: str | None = None) -> tuple[str, str | None]:  # fmt: skip
        """What to do with ``out``: ("new" | "done" | "redo", None), or ("refuse", why)
        (:meth:`verdict`, without the warnings)."""
        what, why, _ = self.verdict(input_path, out, centres, photometric)
        return what, why

    def verdict(self, input_path: str, out: str, centres: list[float] | None = None,
                photometric: str | None = None) -> tuple[str, str | None, list[str]]:  # fmt: skip
        """What to do with ``out``: ("new" | "done" | "redo", None), or ("refuse", why), and, where it
        is done, the warnings the run that made it gave of its image, as its ledger line keeps them
        (:meth:`finished`; none where it gave none, or was an xvertfast before lines kept them): read
        from the one entry looked up, for the report of a resume that skips it. ``centres``:
        the ROI centres given for the input (None: those found), and ``photometric``: the polarity an
        @list gives it (None: untagged), which the output must have been made with to be done
        (:meth:`finished`): a tag added after a run warned "looks inverted" redoes it; a line that
        records none (an older xvertfast's) was made as listed now, not redone. Looked up in the
        folder the job holds, wherever its path leads now: by the path, a file of another job's folder
        put there (``ln -sfn c2 latest``) was taken for this job's output, done, where its own was gone."""
        look = functools.partial(_mode, dir_fd=self._dir_fd, root=os.path.abspath(self.out_dir))
        exists = self.exists(out)
        blocked = _in_the_way(self.out_dir, out, exists, self._clear, look)
        if blocked is not None:
            return "refuse", blocked, []
        if not exists:
            return "new", None, []
        rel = self._rel(out)
        entry = self._ledger.get(rel)
        if entry is None and self._legacy:  # written by that earlier job: done, as it would have said
            self.finished(input_path, out, file_state(input_path), adopted=True, photometric=_UNTOLD)
            entry = self._ledger[rel]
        if entry is None:
            ledgers = os.path.join(self.out_dir, job_files(self.job)[1])
            if self._other_ledgers:
                ledgers = f"{ledgers} nor its shards' ledgers beside it"
            return "refuse", (f"{out} exists and was not written by xvertfast {self.job} (not in {ledgers}): it is "
                              "left alone; move it away or use another output folder"), []  # fmt: skip
        stat = file_state(input_path)
        if entry.get("input") != (identity := self._real_paths(input_path)):
            if _moved_here(entry.get("input"), entry.get("stat"), identity, stat):
                if entry.get("state") == "done" and entry.get("settings") == self.key:  # recorded at its new
                    # path (with what it was made with), so that a later edit there is redone, not refused
                    self.finished(input_path, out, stat, adopted=True, centres=entry.get("centres"),
                                  warnings=entry.get("warnings"), photometric=entry.get("photometric", _UNTOLD))  # fmt: skip
                    entry = self._ledger[rel]
            elif not self.overwrite:
                return "refuse", (f"{out} holds the output of another input, {entry.get('input')} "
                                  f"({asked('overwrite', True)} replaces it)"), []  # fmt: skip
        finished = entry.get("state") == "done" and entry.get("settings") == self.key
        # (a line without a polarity, an older xvertfast's or an adopted one, was made as listed now:
        # older versions read inputs with their tag too, and a whole tagged archive was redone for nothing)
        tag = _tag(photometric)
        made_as_asked = entry.get("centres") == centres and _tag(entry.get("photometric", tag)) == tag
        if finished and entry.get("stat") == stat and made_as_asked and not self.overwrite:
            warnings = entry.get("warnings")
            return "done", None, [w for w in warnings if isinstance(w, str)] if isinstance(warnings, list) else []
        return "redo", None, []

    def remove_stale_parts(self, outs) -> int:
        """:func:`~xvertfast.io.write.remove_stale_parts` of ``outs`` in the folder the job holds,
        wherever its path leads now (not those of a job writing a folder swapped in at it)."""
        if self.read_only:
            return 0
        return remove_stale_parts(outs, None if self._dir_fd is None else (self._dir_fd, self.out_dir))

    def exists(self, out: str) -> bool:
        """Whether ``out`` is there (a link as itself) in the folder the job holds, wherever its path
        leads now: by the path, another job's files in a folder swapped in (``ln -sfn c2 latest``)
        were taken for outputs of an earlier version in this one, and recorded in its ledger."""
        return _mode(out, False, self._dir_fd, os.path.abspath(self.out_dir)) is not None

    def recorded(self, out: str) -> bool:
        """Whether the ledger names ``out`` (written, or started, by a job of this kind)."""
        return self._rel(out) in self._ledger

    def adopt(self, input_path: str, outs: list[str]) -> None:
        """Records outputs the ledger does not name as finished from ``input_path`` as it is
        now: for a job whose earlier versions kept no ledger (``xvertfast preprocess`` skipped
        an input whose outputs all existed). The caller decides they are such outputs."""
        stat = file_state(input_path)
        for out in outs:
            self.finished(input_path, out, stat, adopted=True, photometric=_UNTOLD)

    def _append(self, entry: dict, durable: bool) -> None:
        with self._write_lock:
            self._add(entry, durable)

    def _add(self, entry: dict, durable: bool) -> None:  # (with the write lock held)
        entry["t"] = self._next_time()
        self._write(json.dumps(entry) + "\n", durable)
        self._ledger[entry["output"]] = entry
        self._outputs_of.setdefault(entry["input"], set()).add(entry["output"])

    def starting(self, input_path: str, out: str) -> None:
        """Called before ``out`` is written: on disk before its rename can be. Raises
        :class:`~xvertfast.io.write.OutputFolderMoved` where the output folder, by the path given, now
        leads to another folder than the one whose lock and ledger the job holds: a link swapped during
        the job (``-o latest``, a nightly ``ln -sfn``), or the folder renamed and another made in its
        place. Written by its path, ``out`` would go there, over another job's output of its name, and
        be recorded here as done."""
        if (now := self._moved()) is not None:
            held, by_command = self._held_now(), command_resumes(self._command)
            if held is None or held == now:  # (where the job's folder is now cannot be told: not named)
                there = "another folder is now" if os.path.isdir(now) else "no folder is now"
                give = ("give -o the folder where it is now" if by_command
                        else "give the folder where it is now as out_dir")  # fmt: skip
                moved = OutputFolderMoved(out, f"not written: {there} at the output folder's path {self.out_dir}; "
                                               "the folder this job holds (with its ledger) was moved or removed "
                                               f"during the job: {give} to write the rest")  # fmt: skip
            else:
                give = f"give -o {held}" if by_command else f"give out_dir={held!r}"  # (Python typed no -o)
                moved = OutputFolderMoved(out, f"not written: the output folder {self.out_dir} now leads to {now}, "
                                               f"not to {held}, the folder this job holds (a link changed, or the "
                                               f"folder moved, during the job); {give} to write the rest")  # fmt: skip
            moved.resume = f"{give} to write the rest"  # (the job's summary says it too: the same command would not)
            raise moved
        self._append({"output": self._rel(out), "input": self._real_paths(input_path), "state": "writing",
                      "settings": self.key}, durable=True)  # fmt: skip

    def finished(self, input_path: str, out: str, stat: list[int] | None, sole: bool = False,
                 adopted: bool = False, centres: list[float] | None = None,
                 warnings: list[str] | None = None, photometric: str | None | object = None) -> list[str]:  # fmt: skip
        """Called once ``out`` is complete; ``stat``: the input's, as it was planned from;
        ``warnings``: what the job warned of the image as it made ``out`` (looks inverted, ...), kept
        on its line (where any) so that a later run that skips it as done can report them
        (:meth:`verdict`): its --report listed such an input without them;
        ``centres``: the ROI centres it was made at where they were given (not the ones found):
        a job settings file records none of them (a CSV edited for a few images is no other job),
        so each output's line does, and :meth:`state` redoes it where they change; ``photometric``
        likewise: the polarity an @list gave the input (None or MONOCHROME2: untagged, kept as null),
        on every line but those given :data:`_UNTOLD` (an adopted output's, as made as listed now).
        ``adopted``: ``out`` was not made now, only recorded (an earlier version's output, or one
        whose input moved): its line is marked so, and the job's rate does not count it.
        ``sole``: ``out`` is the input's one output (enhance), so the files the ledger names as
        its other outputs (made under another ``--format``, or named otherwise by an older
        xvertfast) are removed: left there, they would be taken for a second output of it. Not
        where the output folder now leads elsewhere (:meth:`_moved`): their paths there are another
        job's files; they stay recorded. Returns the files removed (paths in the folder)."""
        rel, identity = self._rel(out), self._real_paths(input_path)
        with self._write_lock:
            self._add({"output": rel, "input": identity, "state": "done", "settings": self.key, "stat": stat,
                       **({"centres": centres} if centres is not None else {}),
                       **({} if photometric is _UNTOLD else {"photometric": _tag(photometric)}),
                       **({"warnings": list(warnings)} if warnings else {}),
                       **({ADOPTED: True} if adopted else {})}, durable=False)  # fmt: skip
            removed = []
            if not sole or self._moved() is not None:
                return removed
            for other in sorted(self._outputs_of.get(identity, set()) - {rel}):
                if not _inside(other):  # (no output of a job is: a ledger edited, or one from elsewhere)
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if not self.read_only:
                        self._unlink(other)
                self._removed(other, identity)
                removed.append(os.path.join(self.out_dir, *other.split("/")))
            return removed

    def _moved(self) -> str | None:
        """Where the output folder leads now, where that is not the folder the job holds (see
        :meth:`starting`). Told by the folder's (device, inode), not its path: the folder renamed and
        linked again (``mv c1 c1-old; ln -sfn c1-old latest``) is still the job's, while another
        folder made at its path (``mv today yesterday; mkdir today``) is not. By the resolved path
        alone where inodes are 0 (some network mounts)."""
        now = os.path.realpath(self._whole_out)
        if self._held is None or self._held[1] == 0:
            return now if now != self._real_out else None
        try:
            there = os.stat(now)
        except OSError:  # (removed, or a link leading nowhere: not the job's folder)
            return now
        return now if (there.st_dev, there.st_ino) != self._held else None

    def _held_now(self) -> str | None:
        """Where the folder the job holds is now (its ledger's folder, by the path the system gives the
        open file), or None where that cannot be told (removed; a system that names no open file) or
        the path found is not that folder (a name the system kept from before a move)."""
        ledger = _open_file_path(self._fd) if self._fd is not None else None
        if ledger is None:
            return None
        folder = os.path.dirname(ledger)
        try:
            there = os.stat(folder)
        except OSError:
            return None
        return folder if self._held is None or (there.st_dev, there.st_ino) == self._held else None

    def abandoned(self, input_path: str, outs: list[str]) -> None:
        """Removes the outputs of ``input_path`` that were started (:meth:`starting`) and will not be
        finished (an error or Ctrl-C while they were written), and records them as removed: left as
        started, status counted them as in flight or left by a kill. One that cannot be removed stays
        started (its next run redoes it), as does one that is now the input itself: where a link on
        its path was swapped during the job (its folder now the input's), its removal would delete
        the input; a hard link of the input is left too (only that name would go), as its write was
        refused. All stay started where the output folder, by the path given, now leads to another
        folder than the one the job holds (a link swapped, or the folder renamed and another made in
        its place, during the write): its paths there are another job's outputs. Raises nothing: it
        runs while another error is raised."""
        identity = self._real_paths(input_path)
        with self._write_lock:
            for out in outs:
                if same_file(out, input_path) or self._moved() is not None:
                    continue
                try:
                    self._unlink(self._rel(out))
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
                with contextlib.suppress(OSError):  # (the disk full: the line is left out, the file is gone)
                    self._removed(self._rel(out), identity)

    def _unlink(self, rel: str) -> None:
        """Removes ``rel`` (the ledger's key of a file in the folder) from the folder the job holds,
        through its fd (:func:`_open_folder`): a removal by its path, after a look that the path still
        leads to that folder, removed from another folder a link was swapped to in between."""
        if self._dir_fd is None:
            os.remove(os.path.join(self.out_dir, *rel.split("/")))
        else:
            os.unlink(rel, dir_fd=self._dir_fd)

    def _removed(self, rel: str, identity: str) -> None:  # (with the write lock held)
        """Records the output ``rel`` of the input ``identity`` as removed: the ledger forgets it."""
        self._ledger.pop(rel, None)
        self._outputs_of.get(identity, set()).discard(rel)
        self._write(json.dumps({"output": rel, "input": identity, "state": REMOVED, "t": self._next_time()}) + "\n",
                    durable=False)  # fmt: skip

    def _record_run(self, record: dict) -> None:
        """A run line (:data:`RUN`), on disk at once: a line a kill cuts short is skipped when read."""
        with self._write_lock:
            record["t"] = self._next_time()
            self._write(json.dumps(record) + "\n", durable=True)

    def ended(self, stopped: str | None, failures=(), not_images: int = 0, **counts: int) -> None:
        """Records how the run ended: finished (``stopped`` None: every input of its part done,
        skipped or failed) or stopped, and why; ``counts``: its inputs found (its part), done,
        skipped (done before) and failed; ``not_images``: those that were no image, recorded where
        there were any (each job kind gave that rule its own copy); ``failures``: (input, why) of
        those failed, the first :data:`FAILURES_RECORDED` kept (status names them). Once, before
        :meth:`close`. A line the ledger cannot take (the disk full) goes in the room of the run's lock
        (:func:`_leave_end`): status read such a run as killed."""
        if self._ended or self.read_only or self._fd is None:
            return
        self._ended = True
        named = [[path, middle_cut(why, REASON_CHARS, " ... ")] for path, why in list(failures)[:FAILURES_RECORDED]]
        record = {RUN: RUN_END, **({"why": stopped} if stopped else {}), **counts,
                  **({"not_images": not_images} if not_images else {}), **({"failures": named} if named else {})}
        try:
            self._record_run(record)
        except OSError:
            if self._room and self._started is not None:
                _leave_end(self._own_lock, self._started, record)

    def ended_by(self, exc: BaseException) -> None:
        """Records a run stopped by ``exc``, raised out of it: Ctrl-C, or an error."""
        first = (str(exc).strip().splitlines() or [""])[0]  # (torch's run over lines: said on one status row)
        error = f"an error: {type(exc).__name__}" + (f": {first}" if first else "")
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else error
        self.ended(why[:200])  # (a line of the ledger: short)

    def __enter__(self) -> "JobFolder":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc is not None:
                self.ended_by(exc)
        finally:
            self.close()

    def close(self) -> None:
        """Closes the ledger and lets the locks go; with the write lock held, so that a line being
        written (a writer's :meth:`finished`, :meth:`abandoned`) is not cut, nor written to the number
        of a closed ledger, which the system may have given another file since."""
        try:
            with self._write_lock:
                for fd in (self._fd, self._dir_fd):
                    if fd is not None:
                        with contextlib.suppress(OSError):  # nothing is buffered: the lines written are all there is
                            os.close(fd)
                self._fd = self._dir_fd = None
        finally:
            for lock in self._locks:
                # releases the flock. Where close(2) fails (an NFS client sending a write late, the disk full)
                # the file is closed all the same: the other locks are let go too, and the run ends quietly
                with contextlib.suppress(OSError):
                    lock.close()
            self._locks = []

