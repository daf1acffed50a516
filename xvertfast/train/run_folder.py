"""What a training run keeps in its RUN_DIR and how its saved progress is read back, without
torch: ``xvertfast status`` reads it in a fraction of a second (torch's import alone takes one or
more), and the loop writes and resumes from the same names; and how a stopped run is told to go
on (:func:`to_go_on`), in the loop's messages and the CLI's alike.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field

from xvertfast._text import from_cli

__all__ = ["CHECKPOINT_FILE", "COMMAND_FILE", "INTERRUPTED", "LINKED_CROPS", "LOCK_FILE", "PRIVATE_CACHE", "Progress",
           "cached_images", "crop_folders", "finite_or_null", "forget_linked_crops", "has_finished_epochs", "held_by_another",
           "latest_state", "position", "preprocessing_kept", "reading", "record_command",
           "record_stop", "recording_linked_crops", "run_again", "run_crops", "start_unrecorded", "started_command",
           "stopped_by", "storable_state", "to_go_on"]  # fmt: skip

#: Held (flock) while a run trains in RUN_DIR: a second ``train`` there is refused, not left to
#: mix its epochs with the first's.
LOCK_FILE = ".xvertfast-train.lock"


def held_by_another(run_dir: str) -> ValueError:
    """The refusal of a run whose RUN_DIR another ``train`` holds (its :data:`LOCK_FILE`)."""
    return ValueError(f"another xvertfast train is running in {run_dir} (it holds {os.path.join(run_dir, LOCK_FILE)}); "
                      "wait for it to finish, or use another RUN_DIR")  # fmt: skip

#: The command line that started the latest run in RUN_DIR and the folder it was run in (where its
#: paths are relative), written as it starts: the checkpoint records them only with the first epoch,
#: and a run stopped before it (preprocessing a large archive takes hours) is resumed by them too.
#: A run stopped by Ctrl-C or SIGTERM adds that to it (:func:`record_stop`); the next start's record
#: has no such line: a run killed, which records nothing, is not taken for one interrupted before.
COMMAND_FILE = ".xvertfast-train-command.json"

#: How :func:`record_stop` records a run stopped by Ctrl-C or SIGTERM (as an enhance job's ledger does).
INTERRUPTED = "interrupted"

#: The mid-stage checkpoint: the stage's weights, the optimiser's moments and the best weights
#: so far, with the training state in its metadata, in one file written atomically, so that
#: a kill can never leave weights of one epoch beside the state of another.
CHECKPOINT_FILE = "epoch.safetensors"

#: RUN_DIR's folder for what a RUN_DIR/cache it cannot write (a read-only shared cache, linked) lacks:
#: the crops of images not in it, the gathered set (:func:`~xvertfast.train.data.load_rois`).
PRIVATE_CACHE = "private-cache"

#: The names of the crop files a run took from (or wrote into) a RUN_DIR/cache that is a link, and of
#: its gathered set there, one a line (:func:`recording_linked_crops`): such a cache may be shared, and
#: what else it holds is other runs'.
LINKED_CROPS = ".xvertfast-train-linked-crops"

#: The name of one image's cached crops: a digest of its contents and the parameters
#: (:func:`xvertfast.train.data._image_pairs`).
_CROPS_NAME = re.compile(r"[0-9a-f]{32}\.npy")

#: A name :data:`LINKED_CROPS` records: a crop file's, or a gathered set's (``rois-<hex>.npy``).
_RECORDED_NAME = re.compile(r"(rois-)?[0-9a-f]{32}\.npy")


def to_go_on(resumed: bool, lr: float | None = None, lr_given: bool = False) -> str:
    """How a stopped run goes on, in the words every message of it uses: its command with --resume
    (and a lower ``lr``) added, or, where it was resumed already, the same command again (with the
    ``lr`` alone): a resumed run was told to add the --resume it had; a command that has --lr
    already (``lr_given``) is told to change it, not to add a second. A Python caller is told of
    train()'s arguments: it has no command to add options to."""
    if not from_cli():
        setting = ([] if resumed else ["resume=True"]) + ([] if lr is None else [f"lr={lr:g} in its TrainConfig"])
        return f"call train() again with {' and '.join(setting)} to go on" if setting else f"{run_again()} to go on"
    adding = "" if resumed else "--resume"
    if lr is not None and not lr_given:
        adding += f" --lr {lr:g}"
    adding = adding.strip()
    change = f"change --lr to {lr:g}" if lr is not None and lr_given else ""
    if adding and change:
        return f"add {adding} to the same command and {change} to go on"
    if change:
        return f"{change} in the same command to go on"
    return f"add {adding} to the same command to go on" if adding else f"{run_again()} to go on"


def run_again() -> str:
    """How a run is started again as it was, in its caller's words: "run the same command again" from
    the CLI, "call train() again the same way" from Python, which has no command (a damaged cache
    file's fix-it text told a Python caller of one)."""
    return "run the same command again" if from_cli() else "call train() again the same way"


@dataclass
class Progress:
    stage: int = 1
    epoch: int = 0  #: epochs finished in this stage
    best_val: float = float("inf")
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def reading(path: str):
    """Makes a file of the run that no longer reads as one (gone, cut short by a disk error or a
    copy, edited, other tensors than this run's model has) a ValueError that names it and says
    what to do: the run cannot go on from it. Errors of the system (permissions, I/O, memory)
    pass as they are: the file may be fine."""
    from safetensors import SafetensorError

    try:
        yield
    except FileNotFoundError:
        why = "missing"
    except KeyError as exc:
        why = f"no {exc} in it"
    except RuntimeError as exc:  # load_state_dict: missing, extra or reshaped tensors
        torch = sys.modules.get("torch")  # (only a torch already loaded can have run out of memory)
        if torch is not None and isinstance(exc, torch.OutOfMemoryError):
            raise
        why = f"its tensors do not fit this run's model ({str(exc).strip().splitlines()[-1].strip()})"
    except (ValueError, SafetensorError) as exc:  # cut short or edited: not JSON, not safetensors
        why = str(exc) or type(exc).__name__
    else:
        return
    raise ValueError(f"{path} cannot be read ({why}): the run cannot go on from it; start a new RUN_DIR "
                     "(a copy of this one's cache/ in it saves the preprocessing)")  # fmt: skip


def finite_or_null(value):
    """``value`` (JSON-like: dicts, lists, numbers, strings) with every float that is not finite as
    None: Python's json writes NaN (no validation images) and Infinity (no best score yet) as
    ``NaN`` and ``Infinity``, which standard JSON readers (jq, JavaScript) refuse. Read back by
    :func:`latest_state` as the numbers they were. A run's state is written by :func:`storable_state`."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def storable_state(state: dict) -> dict:
    """``state`` (a checkpoint's: settings, progress) as state.json and the checkpoint keep it, in
    standard JSON (:func:`finite_or_null`) but for the best score before there is one (infinite),
    written as the largest float: an older xvertfast resuming the run compares scores with it
    (``score < best_val``), which null made a TypeError."""
    stored = finite_or_null(state)
    if state["progress"]["best_val"] == math.inf:
        stored["progress"]["best_val"] = sys.float_info.max
    return stored


def _numbers_back(state: dict) -> dict:
    """``state`` as :func:`storable_state` wrote it, with the numbers it wrote otherwise back: the best
    score infinite (none yet: the largest float, or null as xvertfast wrote it for a while), the
    epochs' losses NaN (no validation images: null). A state.json an older xvertfast wrote with
    Infinity and NaN reads as it is."""
    progress = state["progress"]
    best = progress.get("best_val", 0.0)
    if best is None or (isinstance(best, float) and best >= sys.float_info.max):
        progress["best_val"] = math.inf
    for row in progress.get("history") or []:
        if isinstance(row, dict):
            row.update({key: math.nan for key, item in row.items() if item is None})
    return state


def _checkpoint_state(ckpt_dir: str) -> dict | None:
    """The state stored with the mid-stage checkpoint, or None without one (its header alone is
    read: as NumPy's, which loads no torch)."""
    from safetensors import safe_open

    path = os.path.join(ckpt_dir, CHECKPOINT_FILE)
    if not os.path.exists(path):
        return None
    with reading(path), safe_open(path, framework="numpy") as f:
        return _resumable(json.loads((f.metadata() or {})["state"]))


def _read_state(path: str) -> dict:
    """The state.json at ``path``, checked to hold what a resume reads."""
    with reading(path), open(path) as f:
        return _resumable(json.load(f))


def _resumable(state) -> dict:
    """``state`` where it has what a resume reads (settings, progress); else ValueError or KeyError,
    for :func:`reading` to report."""
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict):
        raise ValueError("no settings in it")
    try:
        Progress(**state["progress"])
    except TypeError:
        raise ValueError("its progress record is not one this xvertfast writes") from None
    return _numbers_back(state)


def has_finished_epochs(run_dir: str) -> bool:
    """Whether RUN_DIR's checkpoint holds finished epochs a resume can go on from."""
    return os.path.exists(os.path.join(run_dir, "checkpoint", "state.json"))


def latest_state(ckpt_dir: str) -> dict | None:
    """The training state a resume goes on from: the later of ``state.json`` and the mid-stage
    checkpoint's (a kill can fall between writing the one and the other); None without a
    state.json. Raises ValueError naming the file where one cannot be read (:func:`reading`)."""
    state_path = os.path.join(ckpt_dir, "state.json")
    if not os.path.exists(state_path):
        return None
    saved = _read_state(state_path)
    mid = _checkpoint_state(ckpt_dir)
    return mid if mid is not None and position(mid) > position(saved) else saved


def position(state: dict) -> tuple[int, int]:
    """(stage, epochs finished in it): how far a saved state had got."""
    return state["progress"]["stage"], state["progress"]["epoch"]


def cached_images(cache_dir: str, only: set[str] | None = None) -> tuple[int, float | None]:
    """How many image crop files ``cache_dir`` holds (not the gathered ``rois-*.npy``, nor a kill's
    temporaries), and when a run last wrote there (None without the folder): how far a run that has
    trained no epoch yet has come. One listing and the folder's own time, which every file created
    in (or renamed into) it sets, not a stat per image: tens of thousands on a cluster's network
    file system. The temporaries (``.part``, a few) are stat'ed too: a set being gathered, minutes
    of writing into one file, leaves the folder's time as it was. ``only``: the names of the files
    a run took (a shared cache's, :data:`LINKED_CROPS`): its crop files counted, the folder's time and
    others' temporaries left out (other runs set the one and write the others: a stalled run was "last
    written 0 s ago" while another gathered there), its gathered set and that set's temporary (being
    gathered) stat'ed; None: all."""
    try:
        images, parts = 0, []
        with os.scandir(cache_dir) as entries:
            for entry in entries:
                if _CROPS_NAME.fullmatch(entry.name):
                    images += only is None or entry.name in only
                elif entry.name.startswith(".") and entry.name.endswith(".part"):
                    stem = entry.name[1:].rsplit(".", 2)[0]  # (atomic_write's .NAME.<random>.part)
                    if only is None or stem.startswith("rois-") and stem in only:
                        parts.append(entry.path)
                elif only is not None and entry.name in only:  # (the run's gathered set)
                    parts.append(entry.path)
        written = os.stat(cache_dir).st_mtime if only is None else None
    except FileNotFoundError:
        return 0, None
    for part in parts:
        with contextlib.suppress(FileNotFoundError):  # renamed into place since the listing
            written = max(written or 0.0, os.stat(part).st_mtime)
    return images, written


def run_crops(run_dir: str, folder: str) -> tuple[int, float | None]:
    """:func:`cached_images` of RUN_DIR's cache or private-cache (``folder``), counting the run's crops
    alone: of a cache that is a link, those it took (:data:`LINKED_CROPS`), last written when it last
    took one or wrote its gathered set (there for minutes, on a network file system where locks may
    not work the one sign that the run is alive): other runs' crops in a shared cache keep nothing of
    this one, and their writes (crops, temporaries) set the folder's time. The one rule for status's
    count and for the folders a stopped run says keep its preprocessing (:func:`crop_folders`)."""
    cache = os.path.join(run_dir, "cache")
    if folder != cache or not os.path.islink(cache):
        return cached_images(folder)
    try:
        recorded = os.stat(os.path.join(run_dir, LINKED_CROPS)).st_mtime
    except FileNotFoundError:  # (it took none: not created, or an older xvertfast's run)
        recorded = None
    taken = _linked_crops(run_dir)
    images, written = cached_images(cache, only=taken) if taken else (0, None)
    return images, max(recorded or 0.0, written or 0.0) or None


def crop_folders(run_dir: str) -> list[str]:
    """RUN_DIR's folders that hold preprocessed crops of its images: its cache and its private-cache
    (what a cache it could not write lacked), so that a run stopped before its first epoch (Ctrl-C, a
    full disk) names where its preprocessing is kept, not a cache that holds none of it. A cache that
    is a link counts only where it holds crops this run took (:func:`run_crops`): the crops of other
    runs' images, in a shared cache, keep nothing of this one. A folder that cannot be listed is left
    out: this is said as a run stops, which it must not fail."""

    def holds_crops(folder: str) -> bool:
        try:
            return run_crops(run_dir, folder)[0] > 0
        except OSError:
            return False

    return [folder for folder in (os.path.join(run_dir, "cache"), os.path.join(run_dir, PRIVATE_CACHE))
            if holds_crops(folder)]  # fmt: skip


def preprocessing_kept(run_dir: str) -> str:
    """What a run stopped before its first epoch keeps, in the words of each message that says it (the
    full disk's, the Ctrl-C line's): the folders that hold its crops (:func:`crop_folders`), named as
    RUN_DIR was given (RUN/cache: "its cache" named no folder, and a job's log shows no RUN), or that
    no image was preprocessed yet."""
    held = crop_folders(run_dir)
    return (f"no epoch had finished; the images preprocessed so far are kept in {' and '.join(held)}" if held
            else "no epoch had finished, no image was preprocessed yet")  # fmt: skip


def _linked_crops(run_dir: str) -> set[str]:
    """The names :data:`LINKED_CROPS` records, crop files' and sets' (none where it is not there). Bytes
    that are no UTF-8 (a damaged record) are read as U+FFFD, so their line is no name: a
    UnicodeDecodeError would fail the messages a stopped run gives (:func:`crop_folders`) and status."""
    try:
        with open(os.path.join(run_dir, LINKED_CROPS), encoding="utf-8", errors="replace") as f:
            return {line.strip() for line in f if _RECORDED_NAME.fullmatch(line.strip())}
    except FileNotFoundError:
        return set()


def _ends_a_line(path: str) -> bool:
    """Whether the file at ``path`` is empty, not there, or ends in a newline: a record appended to
    one that does not would join the cut-off line before it, and neither would read as a name
    (:func:`recording_linked_crops` then starts on a line of its own)."""
    try:
        with open(path, "rb") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return True
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
    except FileNotFoundError:
        return True


@contextlib.contextmanager
def recording_linked_crops(run_dir: str):
    """A function to call with each crop file the run takes (found or written, in RUN_DIR/cache or its
    private-cache), and its gathered set before it is gathered (its temporary then tells status the run
    is alive), that records those of a RUN_DIR/cache that is a link in :data:`LINKED_CROPS`, each
    once over all the run's starts, flushed as it comes (a kill keeps what was taken); None where the
    cache is no link: all it holds is the run's, or where the run has a finished epoch (a resume): the
    record is read only before one (:func:`forget_linked_crops`)."""
    cache = os.path.join(run_dir, "cache")
    if not os.path.islink(cache) or has_finished_epochs(run_dir):
        forget_linked_crops(run_dir)  # (one an earlier xvertfast left)
        yield None
        return
    recorded = _linked_crops(run_dir)
    record = os.path.join(run_dir, LINKED_CROPS)
    cut_short = not _ends_a_line(record)  # (a write a full disk or kill cut off: the next name on a line of its own)
    with open(record, "a", encoding="utf-8") as f:
        if cut_short:
            f.write("\n")  # (written with the first name: a blank line, if no name follows, is no name either)

        def taken(path: str) -> None:
            name = os.path.basename(path)
            if os.path.dirname(path) == cache and name not in recorded:
                f.write(name + "\n")
                f.flush()
                recorded.add(name)

        yield taken


def forget_linked_crops(run_dir: str) -> None:
    """Removes :data:`LINKED_CROPS` from a run that has a finished epoch (its checkpoint/state.json
    written): only status before the first epoch and the messages of a run stopped before it read it
    (:func:`run_crops`), and it was kept for good, a line an image (33 bytes; 0.7 MB for 20,000). A
    record that cannot be removed is left: nothing reads it."""
    if has_finished_epochs(run_dir):
        with contextlib.suppress(OSError):
            os.remove(os.path.join(run_dir, LINKED_CROPS))


def _latest_start(run_dir: str) -> dict:
    """:data:`COMMAND_FILE` as written, or empty where it is not there or does not read as one."""
    try:
        with open(os.path.join(run_dir, COMMAND_FILE), encoding="utf-8") as f:
            started = json.load(f)
    except (OSError, ValueError):
        return {}
    return started if isinstance(started, dict) else {}


def started_command(run_dir: str) -> dict:
    """``{"command": ..., "cwd": ...}`` as :func:`record_command` wrote them for the latest start in
    ``run_dir``; empty where none was recorded (started from Python, by an older xvertfast) or the
    file no longer reads as one (status then gives the command's template: nothing is lost)."""
    started = _latest_start(run_dir)
    if not isinstance(started.get("command"), str):
        return {}
    return {"command": started["command"], "cwd": started.get("cwd") if isinstance(started.get("cwd"), str) else None}


def stopped_by(run_dir: str) -> str | None:
    """Why the latest start in ``run_dir`` stopped, where it recorded it (:data:`INTERRUPTED`); None
    where it did not: it runs, finished, was killed, ended by an error, or is of an older xvertfast."""
    stopped = _latest_start(run_dir).get("stopped")
    return stopped if isinstance(stopped, str) else None


def start_unrecorded(run_dir: str) -> bool:
    """Whether the latest start's record (:data:`COMMAND_FILE`) is older than the latest taking of the
    lock (a start sets its time as it takes it: :func:`~xvertfast.io.job_folder.mark_taken`, set back where
    it is refused): a run holding the lock then has not recorded its start yet. False where either file
    is not there."""
    try:
        recorded = os.stat(os.path.join(run_dir, COMMAND_FILE)).st_mtime_ns
        return recorded < os.stat(os.path.join(run_dir, LOCK_FILE)).st_mtime_ns
    except OSError:
        return False


def record_command(run_dir: str, started: dict) -> None:
    """Records ``started`` (:func:`started_command`'s form) as the latest start in ``run_dir``, atomically:
    a kill leaves the one before. Empty: the file goes, as this start's command is not known and an
    earlier start's may have other options (nothing is checked against them before the first epoch)."""
    from xvertfast.io.write import atomic_write

    path = os.path.join(run_dir, COMMAND_FILE)
    if not started:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"command": started["command"], "cwd": started.get("cwd")}, f)


def record_stop(run_dir: str, why: str) -> None:
    """Adds to the latest start's record in ``run_dir`` that it stopped, and why (:data:`INTERRUPTED`),
    for ``xvertfast status`` to say rather than guess (a kill, a lost node, an error look the same
    otherwise); atomically. A start from Python, whose command is not recorded, gets a record of this alone."""
    from xvertfast.io.write import atomic_write

    record = {**started_command(run_dir), "stopped": why}
    with atomic_write(os.path.join(run_dir, COMMAND_FILE)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
