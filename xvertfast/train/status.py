"""How far a training run has come, read from its folder without touching it
(``xvertfast status RUN_DIR``): a run of hours on a cluster node is checked from elsewhere,
and the progress bar is in a log file or gone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from xvertfast.resume import lock_held
from xvertfast.train.run_folder import (CHECKPOINT_FILE, LOCK_FILE, PRIVATE_CACHE, has_finished_epochs, latest_state,
                                        run_crops, start_unrecorded, started_command, stopped_by)

__all__ = ["TrainStatus", "train_status"]


@dataclass
class TrainStatus:
    """A training run's progress, as its checkpoint records it."""

    run_dir: str
    #: the settings below (to ``patience``) are recorded with the first epoch: None before it
    stages: int | None  #: stages the run trains
    width: int | None
    stage: int  #: the stage being trained; ``stages + 1`` once all are; 0 before the first epoch
    epoch: int  #: epochs finished in that stage
    epochs_gc: int | None  #: epochs of the structure-loss-only phase of each stage (the feature loss comes after)
    epochs_joint: int | None  #: at most this many joint epochs follow them
    patience: int | None  #: joint epochs without a better score that end a stage
    bad_epochs: int  #: joint epochs in a row without a better score, so far
    modified: float  #: when the run last recorded its progress (seconds since the epoch)
    model: str | None  #: RUN_DIR/model, where the run has written it (every stage trained)
    last: dict | None = None  #: the latest epoch's losses and seconds, as metrics.csv has them
    seconds_per_epoch: float | None = None  #: over the stage's latest epochs (up to 5)
    #: whether the run trains now: it holds RUN_DIR's lock, which goes with its process (a kill -9
    #: too; :func:`~xvertfast.resume.lock_held`). None where that cannot be told here
    running: bool | None = None
    history: list[dict] = field(default_factory=list, repr=False)
    #: the command line of the run's latest start (and the folder it was run in, where its paths are
    #: relative), where it was run from the command line: status gives it as the way to resume. Its
    #: record of the start (a resume's from its start on), else the checkpoint's (a resume from Python)
    command: str | None = None
    cwd: str | None = None
    #: at stage 0, the image crop files in RUN_DIR/cache (the run prepares its training data first:
    #: hours on a large archive): one for each of its images preprocessed so far, and any kept there
    #: of other images or ROI centres (a copied cache, an earlier start), which only hashing its
    #: inputs would tell apart. Where RUN_DIR/cache is a link (a shared cache), only the crops the run
    #: took there (found or written), not other runs'
    preprocessed: int | None = None
    #: at stage 0, the image crop files in RUN_DIR/private-cache: those of its images a RUN_DIR/cache it
    #: could not write (a read-only shared one) lacked, which ``preprocessed`` does not count
    preprocessed_private: int | None = None
    #: where RUN_DIR/cache leads (resolved), where it is a link (a shared cache: what else it holds is other
    #: runs', and ``preprocessed`` counts only the crops this run took there); None where it is a folder
    linked: str | None = None
    #: why the latest start stopped, where it recorded it: "interrupted" (Ctrl-C, SIGTERM); None
    #: where it did not (running, finished, killed, ended by an error, or an older xvertfast's)
    stopped: str | None = None
    #: running, but its start not recorded yet (``train --resume`` takes the lock, then loads torch, its
    #: --init model and the device: seconds): ``command``, ``cwd`` and ``stopped`` are then None, not
    #: those of the start before it. Told where that start recorded its stop, or by the lock taken since
    #: the latest record (:func:`~xvertfast.train.run_folder.start_unrecorded`): after one killed too
    starting: bool = False

    @property
    def finished(self) -> bool:
        return self.stages is not None and self.stage > self.stages and self.model is not None

    @property
    def epochs_left_at_most(self) -> int | None:
        """Epochs the run may still train: the rest of this stage and every later one in full
        (early stopping in a joint phase may end a stage sooner); None before the first epoch."""
        if self.stages is None:
            return None
        if self.stage > self.stages:
            return 0
        per_stage = self.epochs_gc + self.epochs_joint
        return per_stage - self.epoch + per_stage * (self.stages - self.stage)


def train_status(run_dir: str) -> TrainStatus | None:
    """The progress of the training run in ``run_dir``, or None where no run began there (one
    that has trained no epoch yet is at stage 0: :func:`_preparing`). Reads
    ``checkpoint/state.json`` and the mid-stage checkpoint's header (the later of the two, as a
    resume does: a kill can fall between them), and looks whether the run holds its lock
    (shared, for a moment: a run starting then waits for it). Raises ValueError naming the file
    where they no longer read as the run's (:func:`~xvertfast.train.run_folder.reading`), OSError
    where they cannot be read at all."""
    if not has_finished_epochs(run_dir):
        return _preparing(run_dir)
    ckpt_dir = os.path.join(run_dir, "checkpoint")
    saved = latest_state(ckpt_dir)
    written = [os.path.join(ckpt_dir, name) for name in ("state.json", CHECKPOINT_FILE)]
    modified = max(os.stat(path).st_mtime for path in written if os.path.exists(path))
    config, progress = saved["config"], saved["progress"]
    history = [row for row in progress.get("history", []) if isinstance(row, dict)]
    stage = progress["stage"]
    recent = [row for row in history if row.get("stage") == stage][-5:]
    seconds = [row["seconds"] for row in recent if isinstance(row.get("seconds"), (int, float))]
    model = os.path.join(run_dir, "model")
    return TrainStatus(
        run_dir=run_dir, stages=config["stages"], width=config["width"], stage=stage, epoch=progress["epoch"],
        epochs_gc=config["epochs_gc"], epochs_joint=config["epochs_joint"], patience=config["patience"],
        bad_epochs=progress.get("bad_epochs", 0), modified=modified,
        model=model if os.path.isfile(os.path.join(model, "config.json")) else None,
        last=history[-1] if history else None, seconds_per_epoch=sum(seconds) / len(seconds) if seconds else None,
        history=history, linked=_linked(run_dir),
        **_how_started(run_dir, lock_held(os.path.join(run_dir, LOCK_FILE)),
                       started_command(run_dir) or {"command": saved.get("command"), "cwd": saved.get("cwd")}))  # fmt: skip


def _preparing(run_dir: str) -> TrainStatus | None:
    """A run that has trained no epoch yet: it preprocesses its images, or stopped doing so. Its
    lock file says a run began there (None without one); its settings are not recorded yet, its
    command line is (:func:`~xvertfast.train.run_folder.started_command`)."""
    lock = os.path.join(run_dir, LOCK_FILE)
    if not os.path.isfile(lock):
        return None
    images, written = run_crops(run_dir, os.path.join(run_dir, "cache"))  # (a link: the crops this run took)
    private, written_private = run_crops(run_dir, os.path.join(run_dir, PRIVATE_CACHE))
    modified = max(os.stat(lock).st_mtime, written or 0.0, written_private or 0.0)
    return TrainStatus(
        run_dir=run_dir, stages=None, width=None, stage=0, epoch=0, epochs_gc=None, epochs_joint=None, patience=None,
        bad_epochs=0, modified=modified, model=None, preprocessed=images, preprocessed_private=private,
        linked=_linked(run_dir), **_how_started(run_dir, lock_held(lock), started_command(run_dir)))  # fmt: skip


def _how_started(run_dir: str, running: bool | None, command: dict) -> dict:
    """The fields of :class:`TrainStatus` that say whether the run runs and how its latest start was
    begun and stopped (``command``: its command and cwd as recorded). A run that holds the lock while
    the latest start's record says it stopped, or is older than the lock's taking, is one starting (its
    record is the start's before it): status gave "running" with that one's "interrupted" and command."""
    stopped = stopped_by(run_dir)
    if running and (stopped or start_unrecorded(run_dir)):
        return {"running": True, "starting": True, "stopped": None, "command": None, "cwd": None}
    return {"running": running, "stopped": stopped, **command}


def _linked(run_dir: str) -> str | None:
    """:attr:`TrainStatus.linked`: where RUN_DIR/cache leads, where it is a link."""
    cache = os.path.join(run_dir, "cache")
    return os.path.realpath(cache) if os.path.islink(cache) else None
