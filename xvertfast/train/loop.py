"""Iterative training of XVertNet (Eq. 7): stage k+1 learns on stage k's outputs.

Per stage: ``epochs_gc`` epochs of L1 only, then up to ``epochs_joint`` epochs
of L1 + L2, with early stopping on the validation loss during the joint phase
(``patience`` epochs without improvement); the stage keeps its best-validation
weights. Adam, lr 1e-3, betas (0.9, 0.99).

Everything that decides the result is seeded per stage and per epoch (weight
init, shuffling, augmentation), and a checkpoint (weights, optimiser state,
progress, best weights; safetensors + JSON, written atomically) is saved after
every epoch, so ``resume=True`` after a kill reaches the same weights as an
uninterrupted run (bitwise on the CPU with the same thread count: a resume with another
says so). A loss or weights that stop being finite stop the run
(:class:`TrainingDiverged`) before that epoch is saved.

``init`` starts every stage from a trained model's weights instead of random
ones (fine-tuning, e.g. the shipped default on one's own archive); a stage the
model lacks starts at random.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import glob
import hashlib
import json
import math
import numbers
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from xvertfast._checks import number_of, whole_number
from xvertfast._interrupts import came_of_an_interrupt
from xvertfast._paths import working_folder
from xvertfast._pickled_errors import PickledAsRaised
from xvertfast._text import FAILED_LISTED, WARNED_LISTED, asked, count, first_listed, from_cli, option_said
from xvertfast.io.files import JOB_FOLDER_MARKERS, JOB_IMAGES, NothingFound, discover, input_paths
from xvertfast.io.job_folder import mark_taken, taken_over
from xvertfast.io.write import atomic_write, disk_full, remove_stale_parts, why_not_made
from xvertfast.model import XVertNet, XVertNetStage, load_model, save_model
from xvertfast.model.persistence import as_device, fingerprint, is_model_folder, refuse_meta
from xvertfast.model.stage import UPSAMPLING
from xvertfast.ops.wls import check_parameters
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM
from xvertfast.preprocess.centres import RoiRowError, as_roi_centres
from xvertfast.resume import LOCK_PATIENCE, hold_lock, settings_changes
from xvertfast.train.figures import JOINT_PHASE, kept_epoch, plot_curves, plot_preview
from xvertfast.train.data import (NoReadableImage, RoiSet, load_rois, random_patches, remove_other_sets, shift_augment,
                                  split_by_image, torch_seed, write_array)
from xvertfast.train.losses import XVertNetLoss
from xvertfast.train.run_folder import (CHECKPOINT_FILE, COMMAND_FILE, INTERRUPTED, LOCK_FILE, PRIVATE_CACHE,
                                        Progress, forget_linked_crops, has_finished_epochs, held_by_another,
                                        latest_state, position,
                                        preprocessing_kept, reading, record_command, record_stop,
                                        recording_linked_crops, run_again, started_command, stopped_by, storable_state,
                                        to_go_on)

__all__ = ["DiskFull", "TrainConfig", "TrainingDiverged", "has_finished_epochs", "train"]


@dataclass
class TrainConfig:
    """The settings of a training run (``xvertfast train``'s options), defaults the papers'.

    ``epochs_gc`` epochs per stage with the gradient-correlation loss alone, then at most
    ``epochs_joint`` with the feature loss added, stopped early after ``patience`` epochs without
    a lower validation loss (``val_fraction`` of the images held out). ``width`` and ``depth``:
    the U-Net's base width and levels; ``roi_size``: the side of the two spine ROIs per image at
    the working height; ``lam``, ``alpha``, ``eps``: the WLS of the preprocessing. ``device``:
    ``auto``, ``cpu``, ``cuda``, ``cuda:N``; ``amp``: bf16 autocast. :meth:`check` refuses
    settings that cannot train (ValueError): at construction, so the error shows where the
    setting was made, and again in :func:`train` (a field may have been changed since).
    ``seed``: any whole number; torch's seeds are 64-bit, so seeds equal modulo 2**64 train alike.
    """

    stages: int = 2
    epochs_gc: int = 200
    epochs_joint: int = 25
    batch_size: int = 8
    width: int = 64
    depth: int = 4
    upsample: str = "bilinear"  #: the decoder's upsampling (xvertfast.model.stage.UPSAMPLING)
    roi_size: int = 512
    patch_size: int = 0  #: 0, or at least roi_size: whole ROIs; else random square patches of this side
    val_fraction: float = 0.2
    patience: int = 10
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.99)
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    lam: float = DEFAULT_LAM
    alpha: float = DEFAULT_ALPHA
    eps: float = DEFAULT_EPS
    init: str | None = None  #: start from this model's weights (a model directory or "default")

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuses settings that cannot train, before any image is preprocessed. An ``init`` given as
        a path object (pathlib) or bytes (as load_model takes), a ``device`` as a torch.device and
        numbers given as NumPy's are kept as strings and Python's numbers: the checkpoint records
        the settings in JSON."""
        if isinstance(self.init, (bytes, os.PathLike)):  # (a Path failed the first checkpoint, every image
            self.init = os.fsdecode(self.init)  # preprocessed; bytes were refused as no path)
        if self.init is not None and not isinstance(self.init, str):
            raise ValueError(f"init must be a model directory (a path) or 'default', got {self.init!r}")
        if self.amp not in (True, False):  # ("no" would turn bf16 on)
            raise ValueError(f"amp must be True or False, got {self.amp!r}")
        for name in ("stages", "epochs_gc", "epochs_joint", "batch_size", "width", "depth", "roi_size", "patch_size",
                     "patience", "seed"):  # fmt: skip
            # (the bounds below, in words naming the others); a NumPy integer kept as Python's (see below)
            setattr(self, name, whole_number(getattr(self, name), name, "TrainConfig"))
        # a 0-dim tensor or array as its number, as lam, alpha and eps are (a sweep over torch.logspace):
        # "learning rate must be a finite number ..., got tensor(0.0010)"
        self.lr, self.val_fraction = number_of(self.lr, "lr", "TrainConfig"), number_of(self.val_fraction,
                                                                                        "val_fraction", "TrainConfig")
        betas = tuple(self.betas) if isinstance(self.betas, (tuple, list)) else ()
        betas = tuple(number_of(b, f"betas[{k}]", "TrainConfig") for k, b in enumerate(betas))
        if len(betas) != 2 or not all(_a_number(b) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1) (Adam's decay rates), got {self.betas!r}")
        self.betas = betas  # (their numbers: lr's bounds below are reckoned from beta1)
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {self.upsample!r}")
        # the WLS of the preprocessing and between stages, refused in TrainConfig's name (wls's named its
        # rtol, which TrainConfig does not take)
        # (a 0-dim tensor as its number: the checkpoint records the settings in JSON)
        self.lam, self.alpha, self.eps, _ = check_parameters(self.lam, self.alpha, self.eps, rtol=None,
                                                             who="TrainConfig")  # fmt: skip
        if isinstance(self.device, torch.device):  # (as its name: the checkpoint records it in JSON)
            self.device = str(self.device)
        if self.device != "auto":  # (whether a CUDA device is there is train's to ask: it may be built elsewhere)
            # (meta: no machine trains there, refused here, not once train is called)
            refuse_meta(as_device(self.device, "device"))
        smallest = 2 ** (self.depth + 1)  # the U-Net's coarsest level keeps 2 x 2 pixels
        # the weights are float32: a rate below its normal range is a step of nothing, and Adam's first
        # step, lr / (1 - beta1), must fit in it (above, torch fails with a bare overflow error)
        f32 = torch.finfo(torch.float32)
        lowest, highest = float(f32.tiny), float(f32.max) * (1 - self.betas[0]) * (1 - 1e-6)
        lr_ok = _a_number(self.lr) and math.isfinite(self.lr) and lowest <= self.lr <= highest
        # (from the CLI in its options' words: a user who typed --lr nan was told of "lr / (1 - beta1)", a
        # setting the CLI has not, and of the epochs as TrainConfig's fields)
        cli = from_cli()
        first_step = f"{1 / (1 - self.betas[0]):g} times --lr" if cli else "lr / (1 - beta1)"
        no_epochs = "--epochs-gc 0 --epochs-joint 0" if cli else "epochs_gc = epochs_joint = 0"
        # (each named as the caller sets it: a notebook's TrainConfig(val_fraction=1.0) was told of a
        # "validation fraction", the CLI's --roi-size 20 of a "ROI size")
        problems = [
            (self.stages >= 1, f"stages must be at least 1, got {self.stages}"),
            (self.epochs_gc >= 0 and self.epochs_joint >= 0, "epochs must not be negative"),
            (self.epochs_gc + self.epochs_joint > 0 or self.init is not None, f"{no_epochs} trains nothing: the "
             f"model would keep its random weights (with {asked('init')}, it is a copy of that model)"),
            (self.batch_size >= 1, f"{asked('batch_size')} must be at least 1, got {self.batch_size}"),
            (self.width >= 1 and self.depth >= 1, f"width and depth must be at least 1, got {self.width}, {self.depth}"),
            (self.roi_size >= smallest,
             f"{asked('roi_size')} must be at least {smallest} at {asked('depth', self.depth)}, got {self.roi_size}"),
            (self.patch_size == 0 or smallest <= self.patch_size,
             f"{asked('patch_size')} must be 0 (whole ROIs) or at least "
             f"{smallest}, got {self.patch_size}"),
            (_a_number(self.val_fraction) and 0.0 <= self.val_fraction < 1.0,
             f"{asked('val_fraction')} must be a number in [0, 1), got {self.val_fraction!r}"),
            (self.patience >= 1, f"patience must be at least 1, got {self.patience}"),
            (lr_ok, f"{asked('lr')} must be a finite number from {lowest:.2g} to "
             f"{highest:.2g} (float32 weights; Adam's first step is {first_step}), got {self.lr!r}"),
        ]  # fmt: skip
        for ok, why in problems:
            if not ok:
                raise ValueError(why)
        # NumPy numbers (a sweep over np.arange, np.float32(1e-3)) as Python's: the checkpoint records the
        # settings in JSON, which refused them once every image was preprocessed
        self.lr, self.val_fraction = float(self.lr), float(self.val_fraction)
        self.lam, self.alpha, self.eps = float(self.lam), float(self.alpha), float(self.eps)
        self.betas, self.amp = (float(self.betas[0]), float(self.betas[1])), bool(self.amp)


def _a_number(value) -> bool:
    """A real number, not a bool nor text ("0.2" from a config file failed as "'<=' not supported
    between instances of 'float' and 'str'", naming no setting)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class TrainingDiverged(PickledAsRaised, RuntimeError):
    """The loss or the weights stopped being finite numbers. Training stops before anything of
    that epoch is saved, so the checkpoint keeps the epochs before it, and a resume may lower
    the learning rate (the one setting a resume may change): said in the caller's words, the CLI's
    options or train()'s arguments; ``lr_given``: the command has --lr, to change, not add again."""

    def __init__(self, stage: int, epoch: int, what: str, ckpt_dir: str, lr: float, amp: bool = False,
                 resumed: bool = False, lr_given: bool = False):  # fmt: skip
        lower = ((f"its --lr changed to {lr / 10:g}" if lr_given else f"--lr {lr / 10:g}") if from_cli()
                 else f"lr={lr / 10:g} in its TrainConfig")  # fmt: skip
        if has_finished_epochs(os.path.dirname(ckpt_dir)):
            todo = (f"{ckpt_dir} keeps the epochs before it. The run is seeded: resumed as it is, it would repeat "
                    "the same steps. Usual cause: a learning rate too high for these images; "
                    f"{to_go_on(resumed, lr / 10, lr_given)} from there with it (a tenth of it; any lower rate will "
                    "do)")  # fmt: skip
            if amp:  # (a setting of the run: from Python too a new run folder, not a train() with amp=False)
                todo += f"; or bf16 overflow ({asked('amp', True)}), which a resume cannot change: {_anew_without_amp()}"
        else:
            again = "run the same command with" if from_cli() else "call train() again with"
            todo = (f"no epoch had finished. Usual cause: a learning rate too high for these images; {again} "
                    f"{lower} (a tenth of it; any lower rate will do)")  # fmt: skip
            if amp:
                todo += f"; or bf16 overflow ({asked('amp', True)}): " + (
                    "run it without --amp" if from_cli() else "call train() again with amp=False in its TrainConfig")
        super().__init__(f"stage {stage}, epoch {epoch}: {what}: training diverged and stopped; {todo}")


class DiskFull(PickledAsRaised, OSError):
    """RUN_DIR's disk filled up (or the user's quota did) while the run wrote there. Every file is
    written atomically, so what is there is whole: the checkpoint keeps the last finished epoch
    and the cache (and private-cache) the images preprocessed so far, and a resume after freeing
    space goes on."""

    def __init__(self, run_dir: str, exc: BaseException, resumed: bool = False):
        kept = (f"{os.path.join(run_dir, 'checkpoint')} keeps the last finished epoch" if has_finished_epochs(run_dir)
                else preprocessing_kept(run_dir))  # (RUN_DIR/private-cache: the crops a read-only shared cache lacked)
        super().__init__(f"{run_dir}: no space left on its disk (or the quota is spent) while the run wrote there "
                         f"({str(exc).strip() or type(exc).__name__}); {kept}: free space, then "
                         f"{to_go_on(resumed)}")  # fmt: skip
        self.errno = errno.ENOSPC


class RunFolderNotWritable(PickledAsRaised, PermissionError):
    """A file of the run that it may not write (a folder of it made immutable or read-only), said
    in words (:func:`_unwritable`). A PermissionError, an OSError as the error it stands for was
    (EROFS's included), for callers of :func:`train` that catch those."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.errno = code


class _StartRefused(Exception):
    """A start that RUN_DIR's run refuses before it trains (other settings, images or --init than the
    run's; no --resume): :func:`train` leaves the record of the start before it (its command, its
    being interrupted), which ``xvertfast status`` says and gives, as this start did nothing."""


class _OtherRun(_StartRefused, ValueError):
    """A --resume whose settings, images or --init model are not those of the run in RUN_DIR."""


class _RunThere(_StartRefused, FileExistsError):
    """A new run in a RUN_DIR that holds a run (to resume, or finished)."""


def _all_finite(stage: XVertNetStage) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in stage.parameters())


def _device(name: str) -> torch.device:
    from xvertfast.infer.backends import resolve_device

    try:  # the Enhancer's rule: a device torch cannot use, or meta (no data), refused; any other taken
        return resolve_device(name)
    except RuntimeError as exc:  # no CUDA (MPS, XPU) in this torch, or another device it cannot use
        raise ValueError(str(exc)) from None


def _layout(device: torch.device) -> torch.memory_format:
    """channels_last on the CPU, where oneDNN's convolutions prefer it (a width-16 training step
    on 8 x 256^2 patches: 1.7 -> 1.3 s on two cores); the default layout elsewhere (not measured)."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    return t.to(device).contiguous(memory_format=_layout(device))


def _check_amp(config: TrainConfig, device: torch.device, log, resuming: bool = False) -> None:
    """bf16 autocast runs on GPUs of compute capability 8.0 on (older ones emulate it, slower than
    fp32, or torch refuses it at the first step) and on CPUs whose oneDNN has bf16; on the CPU it
    pays with AMX (a width-16 step on 8 x 256^2 patches: 1.09 s fp32, 0.67 s bf16 on two cores).
    ``resuming``: epochs were trained with --amp, which a resume cannot drop (a setting of the run)."""
    if not config.amp:
        return
    amp = asked("amp", True)  # (--amp from the CLI, amp=True from Python, where train() has no --amp)
    instead = (f"this run was started with {amp}, which a resume cannot change: resume it on a GPU of compute "
               f"capability 8.0 or later, or {_anew_without_amp()}" if resuming else "train without --amp" if from_cli()
               else "train with amp=False in the TrainConfig")  # fmt: skip
    from xvertfast.infer.backends import cpu_bf16_support, cuda_bf16_native, no_native_bf16

    if device.type == "cuda":
        if not cuda_bf16_native(device):
            raise ValueError(f"{amp} on {no_native_bf16(device)}; {instead}")
        return
    if device.type != "cpu":
        return
    support = cpu_bf16_support()
    if support == "no":
        raise ValueError(f"{amp} on this CPU: oneDNN reports no bf16 support (it needs AVX-512 BF16 or AMX, as on "
                         f"Intel Xeon from Sapphire Rapids on and AMD from Zen 4 on); {instead}")  # fmt: skip
    if support != "amx":
        # ("warning: ", as every warning of the run: a log searched for them missed this one)
        log(f"warning: {amp} on a CPU without AMX: bf16 may be no faster than fp32 here; compare the images_per_s "
            f"of metrics.csv with a run {'without --amp' if from_cli() else 'with amp=False'}")  # fmt: skip


def _anew_without_amp() -> str:
    """How a run that trained epochs with bf16 goes on without it, in the caller's words: amp is a
    setting of the run, which a resume cannot change, so in a new run folder."""
    anew = "start a new RUN_DIR without --amp" if from_cli() else \
        "train into a new run folder with amp=False in its TrainConfig"
    return f"{anew} (a copy of this one's cache/ in it saves the preprocessing)"


def _load_tensors(path: str, device) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path, device=str(device))


def _optimizer_tensors(opt: torch.optim.Adam) -> dict[str, torch.Tensor]:
    out = {}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        for key, value in opt.state.get(p, {}).items():
            out[f"{i}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return out


def _step_where(opt: torch.optim.Adam, p: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Adam's ``step`` where torch's own load_state_dict puts it: on the parameter's device only
    when capturable or fused; otherwise on the CPU, since a non-capturable Adam reads it with
    ``.item()`` for every parameter on every step (a host sync each where it is on a GPU)."""
    group = opt.param_groups[0]
    if group.get("capturable", False) or group.get("fused", False):
        return step.to(dtype=torch.float32, device=p.device)
    return step.to("cpu")


def _restore_optimizer(opt: torch.optim.Adam, tensors: dict[str, torch.Tensor]) -> None:
    params = opt.param_groups[0]["params"]
    for name, value in tensors.items():
        i, _, key = name.partition(".")
        if not i.isdigit() or int(i) >= len(params) or (key != "step" and value.shape != params[int(i)].shape):
            raise RuntimeError(f"optimizer state {name!r} of shape {tuple(value.shape)} fits no parameter")
        p = params[int(i)]
        # moments in the parameter's memory layout, as a run that was never interrupted has them
        opt.state[p][key] = torch.empty_like(p).copy_(value) if key != "step" else _step_where(opt, p, value)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    return [order[k : k + batch_size] for k in range(0, n, batch_size)]


def _evaluate(stage: XVertNetStage, data: RoiSet, loss_fn: XVertNetLoss, joint: bool, batch_size: int,
              device) -> float:  # fmt: skip
    if len(data) == 0:
        return float("nan")
    stage.eval()
    total = 0.0
    with torch.no_grad():
        for k in range(0, len(data), batch_size):
            xp, y = (_to(t, device) for t in data.batch(slice(k, k + batch_size)))
            out, feats = stage(xp, y, return_features=True)
            total += loss_fn(out, y, feats, joint).total.item() * xp.shape[0]
    stage.train()
    return total / len(data)


def _initial_model(config: TrainConfig) -> XVertNet | None:
    """The model ``config.init`` names, checked against the configuration it is to be trained in."""
    if config.init is None:
        return None
    model = load_model(config.init)
    # what was typed ("default", a relative path) and, where it differs, the folder it resolved to
    resolved = model.metadata.get("path", config.init)
    same = os.path.abspath(config.init) == os.path.abspath(resolved)
    # (--init from the CLI, init='...' from Python: a notebook user was named an option train() has not)
    where = asked("init", config.init) + ("" if same else f" ({resolved})")
    widths = {(s.width, s.depth, s.upsample) for s in model.stages}
    if widths != {(config.width, config.depth, config.upsample)}:
        raise ValueError(f"{where}: its stages have (width, depth, upsample) {sorted(widths)}, the run "
                         f"asks for ({config.width}, {config.depth}, {config.upsample!r})")  # fmt: skip
    if (model.lam, model.alpha, model.eps) != (config.lam, config.alpha, config.eps):
        raise ValueError(f"{where}: its WLS parameters (lam, alpha, eps) = {(model.lam, model.alpha, model.eps)} "
                         f"differ from the run's {(config.lam, config.alpha, config.eps)}")  # fmt: skip
    have = len(model.stages)
    if config.epochs_gc + config.epochs_joint == 0 and have < config.stages:  # as the CLI refuses no epochs, no --init
        later = f"stage {have + 1}" + (f"..{config.stages}" if have + 1 < config.stages else "")
        fewer = f"--stages {have}" if from_cli() else f"stages={have} in the TrainConfig"
        raise ValueError(f"{where} has {have} stage(s) and no epoch is trained: {later} would keep its "
                         f"random weights; train some epochs, or {fewer}")  # fmt: skip
    return model


def _next_stage_data(stage: XVertNetStage, data: RoiSet, config: TrainConfig, device, path: str, desc: str,
                     progress: bool) -> RoiSet:  # fmt: skip
    """Stage k's outputs and their HFC images, the training data of stage k+1: written batch by
    batch to ``path`` (atomically) and memory-mapped, like the first stage's ROIs. With
    ``progress``, a bar counts the ROIs (a WLS solve each: minutes on a large CPU run)."""
    stage.eval()
    model = XVertNet([stage], config.lam, config.alpha, config.eps)

    def batches(bar):
        for k in range(0, len(data), config.batch_size):
            with torch.no_grad():  # (not around the yield: it would hold for the caller's code too)
                xp, y = (_to(t, device) for t in data.batch(slice(k, k + config.batch_size)))
                out = stage(xp, y).float().contiguous()
                guide = model.guidance(out)  # on the training device: the GPU solver where there is one
                block = torch.cat([out, guide.float()], dim=1).cpu().numpy()
            yield block
            bar.update(out.shape[0])

    # (the bar opened here, not in batches(): a Ctrl-C in write_array left the generator suspended, and the
    # garbage collector erased its bar after the CLI's "interrupted" line)
    with tqdm(total=len(data), desc=desc, unit="ROI", disable=not progress, leave=False) as bar:
        write_array(path, (len(data), *data.pairs.shape[1:]), batches(bar))
    return RoiSet.mapped(path, data.image, data.sources, data.pairs.shape[-1], _stage_data_remedy(path))


#: The name of a later stage's training data in RUN_DIR (:func:`_stage_inputs`), a kill's temporary of it apart.
_STAGE_DATA = re.compile(r"stage[0-9]+_data-[0-9a-f]{16}\.npy")


def _stage_data_remedy(path: str) -> str:
    """What to do about a damaged ``stage{k}_data-*.npy`` (:func:`_stage_inputs`)."""
    name = os.path.basename(path).split("_data")[0]
    return (f"it held {name}'s training data: delete it and {run_again()} (it is made again from the earlier "
            "stage's weights)")  # fmt: skip


def _stage_inputs(k: int, stages: list[XVertNetStage], rois: RoiSet, run_dir: str, config: TrainConfig,
                  device, progress: bool) -> RoiSet:  # fmt: skip
    """Stage k's training data: the ROIs for stage 1, else stage k-1's outputs on stage k-1's own
    inputs (``stages``: the finished stages). They are kept in ``stage{k}_data-<digest of stage
    k-1's weights>.npy``, written atomically, so a file there is complete; where there is none
    (a kill while it was written, a file removed), it is made again from the earlier stages' data,
    itself reused or made the same way: a resumed run trains each stage on what an uninterrupted
    one did."""
    if k == 1:
        return rois
    previous = stages[k - 2]
    path = os.path.join(run_dir, f"stage{k}_data-{_weights_key(previous)}.npy")
    for stale in glob.glob(os.path.join(glob.escape(run_dir), f"stage{k}_data-*.npy")):
        if stale != path and _STAGE_DATA.fullmatch(os.path.basename(stale)):  # by other weights (a stage trained again)
            os.remove(stale)
    remove_stale_parts([path])
    if os.path.exists(path):
        return RoiSet.mapped(path, rois.image, rois.sources, rois.pairs.shape[-1], _stage_data_remedy(path))
    inputs = _stage_inputs(k - 1, stages, rois, run_dir, config, device, progress)
    return _next_stage_data(previous, inputs, config, device, path, f"stage {k} inputs", progress)


def _preview(stage: XVertNetStage, data: RoiSet, path: str, title: str, device, count: int = 3) -> None:
    """RUN_DIR/preview_stage{k}.png: the first ``count`` ROIs of ``data`` through the stage. Where none
    is drawn (no matplotlib), an earlier run's there goes (:func:`_not_drawn`)."""
    drawn = False
    if len(data):
        xp, y = data.batch(slice(0, count))
        stage.eval()
        with torch.no_grad():
            out = stage(_to(xp, device), _to(y, device)).float().cpu()
        drawn = plot_preview(xp[:, 0].float().numpy(), y[:, 0].float().numpy(), out[:, 0].numpy(), path, title)
    if not drawn:
        _not_drawn(path)


def _not_drawn(path: str) -> None:
    """Removes the file at ``path`` that this run did not write (a figure matplotlib could not draw, the
    metrics and curves of a run of no epochs): one there is an earlier run's, or of this run before a
    resume, and shows other weights or losses than the run's now; the finished run's line named it among
    its own. (The folder is a run's: :func:`_refuse_files_of_no_run`.) One that cannot be removed is
    left: a figure is not worth stopping a run for."""
    with contextlib.suppress(OSError):
        os.remove(path)


def _state(config: TrainConfig, prog: Progress, run: dict) -> dict:
    """What a checkpoint records: the settings, the progress and ``run``, what else a resume must
    find unchanged ("data": the training images, "image_sizes" and "image_digests" naming one changed
    since, "init": the --init model's fingerprint) or is
    warned of ("device": its type, "threads": torch's CPU threads), and the command line that
    started it ("command", "cwd": for ``xvertfast status`` to give)."""
    return {"config": asdict(config), "progress": asdict(prog), **run}


def _save_state(path: str, config: TrainConfig, prog: Progress, run: dict) -> None:
    """RUN_DIR/checkpoint/state.json (``path``)."""
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(storable_state(_state(config, prog, run)), f, allow_nan=False)


def _save_checkpoint(ckpt_dir: str, stage, opt, best: dict, state: dict) -> None:
    from safetensors.torch import save_file

    tensors = {**{f"stage.{k}": v for k, v in stage.state_dict().items()},
               **{f"optimizer.{k}": v for k, v in _optimizer_tensors(opt).items()},
               **{f"best.{k}": v for k, v in best.items()}}  # fmt: skip
    with atomic_write(os.path.join(ckpt_dir, CHECKPOINT_FILE)) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp,
                  metadata={"state": json.dumps(storable_state(state), allow_nan=False)})  # fmt: skip


def _load_checkpoint(ckpt_dir: str, device) -> dict[str, dict[str, torch.Tensor]]:
    if not os.path.exists(os.path.join(ckpt_dir, CHECKPOINT_FILE)):  # written before the one-file checkpoint
        return {part: _load_tensors(os.path.join(ckpt_dir, f"{part}.safetensors"), device)
                for part in ("stage", "optimizer", "best")}  # fmt: skip
    tensors = _load_tensors(os.path.join(ckpt_dir, CHECKPOINT_FILE), device)
    parts: dict[str, dict[str, torch.Tensor]] = {"stage": {}, "optimizer": {}, "best": {}}
    for name, value in tensors.items():
        part, _, key = name.partition(".")
        parts[part][key] = value
    return parts


def _resume_stage(stage: XVertNetStage, opt: torch.optim.Adam, ckpt_dir: str, device) -> dict[str, torch.Tensor]:
    """Restores the stage's weights and the optimiser's moments from the mid-stage checkpoint;
    returns the best weights kept there."""
    path = os.path.join(ckpt_dir, CHECKPOINT_FILE)
    with reading(path if os.path.exists(path) else ckpt_dir):
        parts = _load_checkpoint(ckpt_dir, device)
        stage.load_state_dict(parts["stage"])
        _restore_optimizer(opt, parts["optimizer"])
        shapes = {name: tuple(value.shape) for name, value in stage.state_dict().items()}
        if {name: tuple(value.shape) for name, value in parts["best"].items()} != shapes:
            raise RuntimeError("the best weights kept in it are not this model's")
        return parts["best"]


def _lr_change(saved: dict, before: float, now: float, log) -> dict:
    """The record of a resume with another learning rate (the one setting a resume may change:
    the way on after a diverged loss), said in the log; kept in the checkpoint's state and the
    model's training metadata as ``lr_changes``."""
    stage, epoch = position(saved)
    log(f"--lr {now:g}: stage {stage} trained {count(epoch, 'epoch')} with {before:g}; it goes on "
        f"with {now:g} (recorded as lr_changes in the checkpoint and the model)")  # fmt: skip
    return {"stage": stage, "epoch": epoch, "from": before, "to": now}


def _other_files(saved: dict, found: list[int]) -> str | None:
    """Why files of the byte sizes ``found`` (in the order found) cannot hold the images the run
    ``saved`` trained on, from what is known before any is read: fewer files than it had images, or
    its images' sizes (``image_sizes``, recorded in order) not among theirs in that order. None
    where they may: their contents are compared once preprocessed (``data``, a digest of them)."""
    then = saved.get("data", {}).get("images")
    if not isinstance(then, int):
        return None
    if len(found) < then:
        return f"{then} images then, {count(len(found), 'file')} now"
    recorded = saved.get("image_sizes")  # (not in the checkpoints of older xvertfast: the count alone)
    remaining = iter(found)
    if not isinstance(recorded, list) or all(any(size == s for s in remaining) for size in recorded):
        return None  # (each of the run's images matched by a later file: a file skipped, unreadable, may lie between)
    return (f"{then} images then; the {count(len(found), 'file')} given now are of other sizes, or in another order: "
            "the validation split goes by position, give them in the order the run began with")


#: The hex digits of each image's SHA-256 a checkpoint records (``image_digests``): enough to tell a
#: changed file, 19 bytes an image in state.json (0.8 MB for 40,000 images).
_DIGEST = 16


def _changed_in_place(now: list, then) -> list[int] | None:
    """The positions of the files whose ``now`` (size, digest) is not what the run recorded at their
    place (``then``, in the run's order) nor anywhere else in it: files changed since the run began,
    where the others are its images as they were (as many, one at least unchanged, none moved).
    None where that is not so: other images, the same in another order, or nothing recorded."""
    if not isinstance(then, list) or len(then) != len(now):
        return None
    differ = [i for i, (a, b) in enumerate(zip(now, then)) if a != b]
    recorded = set(then)
    if len(differ) in (0, len(now)) or any(now[i] in recorded for i in differ):
        return None
    return differ


def _changed_images(run_dir: str, paths: list[str], detail: str) -> _OtherRun:
    """The refusal of a resume given ``paths`` changed since the run began (:func:`_changed_in_place`;
    ``detail``: how the first differs): its epochs were trained on them as they were."""
    one = len(paths) == 1
    named = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    it, they, was, are = ("it", "it", "was", "is") if one else ("them", "they", "were", "are")
    return _OtherRun(f"{run_dir}: {asked('resume', True)} with {count(len(paths), 'training image')} changed since the "
                     f"run began: {named} ({'' if one else 'the first: '}{detail}); the run's epochs were trained on "
                     f"{it} as {they} {was}, and a resume goes on only with the same images: put {it} back as {they} "
                     f"{was} to resume, or train on {it} as {they} {are} now in a new "
                     f"{_run_dir_said()} (a copy of this one's cache/ in it saves "
                     "preprocessing the others)")  # fmt: skip


#: The settings of :class:`TrainConfig` that a run started from a model (``init``) takes from it: its stages'.
_FIXED_BY_A_MODEL = ("width", "depth", "upsample", "lam", "alpha", "eps")


def _other_settings(run_dir: str, saved: dict, before: dict, now: dict) -> _OtherRun:
    """The refusal of a resume whose settings ``now`` are not the run's (``before``; ``saved``: its
    state). A finished run has nothing to resume: said first, where "resume with the run's settings" was;
    a new run from its model (--init) is offered only where no setting a model fixes changed: --init
    refused the new width it was offered for."""
    model = os.path.join(run_dir, "model")
    changes = settings_changes(_settings_said({**before, "lr": now["lr"]}), _settings_said(now))
    fixed = [key for key in _FIXED_BY_A_MODEL if before.get(key) != now.get(key)]
    if fixed:
        anew = (f"start a new {_run_dir_said()} from scratch ({asked('init')} takes only a model of the "
                f"same {' and '.join(_settings_said(dict.fromkeys(fixed)))})")  # fmt: skip
    else:
        anew = _train_anew_from(model)
    if position(saved)[0] > before.get("stages", math.inf):  # every stage trained
        return _OtherRun(f"{run_dir}: the run has finished (all {count(before['stages'], 'stage')} trained): nothing "
                         f"to resume; its model is {model}; to train with other settings ({changes}), {anew}")  # fmt: skip
    return _OtherRun(f"{run_dir}: {asked('resume', True)} with a different configuration than the checkpoint's "
                     f"({changes}); resume with the run's settings (only {asked('lr')} may change), or {anew}"
                     + ("" if fixed else " (this run's weights, once it has them)"))  # fmt: skip


def _train_anew_from(model: str) -> str:
    """How to train on from a run's ``model`` (its weights) in a new run, in the words of who asked:
    --init from the CLI, ``init=`` in a new TrainConfig from Python (train() has no options)."""
    if from_cli():
        return f"train into a new RUN_DIR with --init {model}"
    return f"train into a new run folder with init={model!r} in its TrainConfig"


def _threads_said(n: int) -> str:
    """Training on ``n`` CPU threads, in the words of who asked: --threads from the CLI, torch's own
    setting from Python (train() takes the threads torch has)."""
    return f"--threads {n}" if from_cli() else f"torch.set_num_threads({n}) before train()"


def _run_dir_said() -> str:
    """RUN_DIR from the CLI (its argument's name), run folder from Python (train()'s has no such name)."""
    return "RUN_DIR" if from_cli() else "run folder"


def _weights_key(stage: XVertNetStage) -> str:
    """A digest of a stage's weights: names the next stage's training data made with them."""
    h = hashlib.sha256()
    for name, value in sorted(stage.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _write_metrics(run_dir: str, history: list[dict]) -> None:
    """RUN_DIR/metrics.csv, the rows of ``history``; where it has none (no epoch run), an earlier run's goes."""
    if not history:
        _not_drawn(os.path.join(run_dir, "metrics.csv"))
        return
    with atomic_write(os.path.join(run_dir, "metrics.csv")) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


class _Curves:
    """Redraws RUN_DIR/curves.png at most every ``interval`` seconds, and whenever a stage ends."""

    def __init__(self, run_dir: str, log, interval: float = 30.0, samples: str = "ROIs"):
        self.path, self.title = os.path.join(run_dir, "curves.png"), os.path.basename(os.path.abspath(run_dir))
        self.samples = samples  # what a training step's samples are: ROIs, or patches cut from them
        self.log, self.interval, self.last, self.warned = log, interval, time.monotonic(), False

    def update(self, history: list[dict], force: bool = False) -> None:
        if not history and force:  # (no epoch run yet: an earlier run's curves there are not this run's)
            _not_drawn(self.path)
        if not history or not (force or time.monotonic() - self.last >= self.interval):
            return
        self.last = time.monotonic()
        if not plot_curves(history, self.path, self.title, self.samples) and not self.warned:
            self.warned = True
            _not_drawn(self.path)
            self.log("note: curves.png not drawn: matplotlib is not installed (pip install 'xvertfast[eval]')")


def _lock_run_dir(run_dir: str):
    """RUN_DIR (created if needed) locked for this run: the open lock file (closing it unlocks), whether
    this start made that file (:func:`_hold_run_lock`), and the outermost of RUN_DIR and its parents this
    start made (None: none). Both told under the lock: a RUN_DIR this start made but another start took
    the lock in first, and wrote into, is that start's, lock file included (a run that started and
    finished as this one waited was removed with RUN_DIR where this one was refused in turn)."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"{'RUN_DIR' if from_cli() else 'run folder'} {run_dir} is a file: give the training run a "
                         f"folder ({option_said('-o', 'made where missing')})")  # fmt: skip
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        folders = _make_folders(run_dir)
        # (the CLI's, taken and marked as it started, before torch and the model loaded: status said "interrupted"
        # meanwhile)
        early = taken_over(path)
        # (status looks at it for a moment)
        lock, lock_made, folders = (early, False, folders) if early else _hold_run_lock(path, folders)
        if folders is not None and any(name != LOCK_FILE for name in os.listdir(run_dir)):
            folders, lock_made = None, False  # (another start's since: this one made no more of it than the folder)
    except OSError as exc:  # read-only, no permission: said as enhance says it, not as "[Errno 30] ...: 'RUN_DIR'"
        # (-o latest, a link to a folder not made yet: said so, not "File exists")
        raise ValueError(f"cannot write into the run folder {run_dir}: {why_not_made(run_dir, exc)}") from None
    if lock is None:
        raise held_by_another(run_dir)
    if early is None:  # a start from Python (the CLI's lock is marked as it takes it early)
        mark_taken(lock)
    return lock, lock_made, folders


def _hold_run_lock(path: str, folders: str | None):
    """RUN_DIR's lock file at ``path`` held (None where another start holds it), taken again where the file
    was removed as this start waited for it: a start refused meanwhile removes the lock file it made
    (:func:`_leave_as_it_was`), and the RUN_DIR too where it made that, and a lock on a removed file kept
    no third start out of the folder. With whether this start made the file it holds: one refused in
    turn removes it, told by the file's state when the other let go, not by a look before waiting; and
    the outermost folder this start made (``folders``: the one it made before, where it still is), a
    RUN_DIR the other made and removed made again by this one, and so its own to remove."""
    for attempt in range(11):  # (a file removed again and again: taken at last as before, unchecked)
        if attempt:  # (a RUN_DIR removed meanwhile: made again; one this start made, still there, holds it)
            again = _make_folders(os.path.dirname(path))
            folders = folders if folders is not None and os.path.isdir(folders) else again
        lock_made = _create(path)
        lock = hold_lock(path, patience=LOCK_PATIENCE)
        try:
            if lock is None or attempt == 10 or os.path.samestat(os.fstat(lock.fileno()), os.stat(path)):
                return lock, lock_made, folders
        except FileNotFoundError:
            pass
        lock.close()


def _create(path: str) -> bool:
    """Whether the file at ``path`` was missing and is now made, empty, by this call (not by another start)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return False
    return True


def train(inputs: list[str], run_dir: str, config: TrainConfig, resume: bool = False, progress: bool = True,
          stop_after_epochs: int | None = None, log=print, command: str | None = None,
          cwd: str | None = None, rois=None, lr_given: bool = False) -> XVertNet:  # fmt: skip
    """Trains an XVertNet on the images ``inputs`` (files, folders, @lists) into ``run_dir``.

    ``run_dir`` receives ``cache/`` (the preprocessed ROIs of each image, and of all of them
    in one memory-mapped file), ``checkpoint/``, ``metrics.csv``,
    ``curves.png`` and ``preview_stage{k}.png`` (the losses per stage, a few validation ROIs
    through each finished stage: :mod:`xvertfast.train.figures`, with matplotlib),
    ``stage{k}_data-<digest of stage k-1>.npy`` (inputs of later stages, memory-mapped too; removed once the
    run is finished, which reads them no more: :func:`_remove_stage_data`) and ``model/`` (the
    trained model, loadable with :func:`xvertfast.load_model`, written once the last stage is trained; the
    stages finished before it are kept in ``checkpoint/model`` until then) and :data:`LOCK_FILE`, held while the
    run goes on (a second run in ``run_dir`` is refused). ``stop_after_epochs`` ends the call
    after that many epochs (a controlled "kill", for tests); ``resume=True`` continues.
    ``command`` (and ``cwd``, the folder it was run in, where its paths are relative) is the
    command line that started the run: :data:`COMMAND_FILE` keeps it from the start, the checkpoint
    from the first epoch on, for ``xvertfast status`` to give as the command that resumes the run
    (a start that cannot begin, its images not found, leaves the one before); a run stopped by
    Ctrl-C (KeyboardInterrupt) records that there too, for status to say so. ``rois``: a CSV of
    ROI centres placed by hand (or what
    :func:`~xvertfast.preprocess.centres.load_roi_centres` read from one) for the images it names;
    the others keep the centres found. It is no setting of the run: the crops of an image whose
    centres change are cut again (the others' are taken from the cache), and a ``resume`` after
    an epoch was trained is refused where they changed. ``lr_given``: the CLI's command has --lr,
    so a diverged run is told to change it, not to add a second (False from Python: unused there).
    Returns the trained model as :func:`~xvertfast.load_model` gives ``run_dir/model``, on the training
    device, its ``metadata`` the run's record (the ROI size :class:`~xvertfast.infer.Enhancer` tiles by);
    a call ended by ``stop_after_epochs`` (a testing option) returns the bare model of the stages so
    far, the last one part-trained, its ``metadata`` empty: ``run_dir/model`` is not written yet.
    """
    config.check()
    rois = as_roi_centres(rois)
    device = _device(config.device)
    _check_amp(config, device, log, resuming=resume and has_finished_epochs(run_dir))
    init = _initial_model(config)  # a mismatch is said before any image is preprocessed
    inputs = input_paths(inputs)  # (one folder given alone: one input, not its characters)
    _refuse_inputs_inside(inputs, run_dir)  # (first: an input inside RUN_DIR is said as one, not as a run's figure)
    _refuse_outputs_as_data([item for item in inputs if not item.startswith("@") and os.path.lexists(item)])
    _refuse_other_jobs_folder(run_dir)
    _refuse_files_of_no_run(run_dir, config)
    lock, lock_made, made = _lock_run_dir(run_dir)
    # (told once the lock is held: a start this one waited for may have made checkpoint/, or made the lock
    # file and removed it, refused)
    new = [LOCK_FILE] if lock_made else []
    if not os.path.lexists(os.path.join(run_dir, "checkpoint")):
        new.append("checkpoint")
    from safetensors import SafetensorError

    before, stopped_before = started_command(run_dir), stopped_by(run_dir)
    left = False  # (what a start that could not begin made and could not remove while its lock was open)
    try:
        started = {"command": command, "cwd": cwd} if command else {}
        record_command(run_dir, started)  # (for status: the checkpoint has it only from the first epoch on)
        return _train(inputs, run_dir, config, device, init, resume, progress, stop_after_epochs, log, started, rois,
                      lr_given)  # fmt: skip
    except _StartRefused:  # (before the OSError handler: a FileExistsError)
        left = not _leave_as_it_was(run_dir, made, new, before, stopped_before, lock)
        raise
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM by way of the CLI: said by status as such, not as a kill
        with contextlib.suppress(OSError):
            record_stop(run_dir, INTERRUPTED)
        raise
    except (OSError, SafetensorError) as exc:  # safetensors says an I/O error in its own type
        if came_of_an_interrupt(exc):  # (a write failing as a Ctrl-C unwound: recorded as interrupted too)
            raise _interrupted(run_dir) from exc
        if disk_full(exc):
            raise DiskFull(run_dir, exc, resume) from exc
        unwritable = _unwritable(run_dir, exc, resume)
        if unwritable:
            raise RunFolderNotWritable(unwritable, exc.errno) from exc
        raise
    except (NothingFound, NoReadableImage, RoiRowError, _NotRadiographs):  # no run folder for a run that cannot start
        left = not _leave_as_it_was(run_dir, made, new, before, stopped_before, lock)
        raise
    except Exception as exc:
        if not came_of_an_interrupt(exc):  # (Python 3.11 wraps one landing in an import in a RuntimeError)
            raise
        raise _interrupted(run_dir) from exc
    finally:
        lock.close()
        if left:  # (Windows deletes no open file: the lock file goes once closed; one another start opened stays)
            _remove_made(run_dir, made, new)


#: The settings of :class:`TrainConfig` that are ``xvertfast train``'s options too (betas, lam, alpha, eps are not).
_OPTIONS = frozenset({"stages", "epochs_gc", "epochs_joint", "batch_size", "width", "depth", "upsample", "roi_size",
                      "patch_size", "val_fraction", "patience", "lr", "seed", "device", "amp", "init"})  # fmt: skip


def _settings_said(settings: dict) -> dict:
    """A run's settings (its TrainConfig's, as recorded) by the names its user gives them, for a resume
    refused for another: from the CLI its options' (--batch-size: it said "batch_size 8 -> 4", a name the
    CLI has not), from Python TrainConfig's fields. The lr, which a resume may change, is the caller's to
    leave out: it was listed among the changes refused, beside "only --lr may change"."""
    if not from_cli():
        return settings
    return {(asked(key) if key in _OPTIONS else key): value for key, value in settings.items()}


def _leave_as_it_was(run_dir: str, made: str | None, new: list[str], before: dict, stopped_before: str | None,
                     lock) -> bool:  # fmt: skip
    """Undoes a start that could not begin (no image found, none readable, refused): the folders it made
    (``made``: RUN_DIR, or the outermost of its parents it made, told under the lock: :func:`_lock_run_dir`)
    are removed; in a RUN_DIR there
    before, the record of the start before it is put back and what it made there (``new``: the lock file,
    an empty checkpoint/; a folder only where empty) is removed. A folder made for the run
    (``mkdir -p RUN`` in a job script) kept a lock file and checkpoint/, which status took for a run
    stopped before its first epoch, to resume, and a later start for a run trained there. Whether all
    of it is gone: Windows deletes no open file, so the lock file is left to remove once closed."""
    if made is None:
        _restore_start_record(run_dir, before, stopped_before, lock)  # (a run there is still resumed by its command)
    return _remove_made(run_dir, made, new)


def _remove_made(run_dir: str, made: str | None, new: list[str]) -> bool:
    """Removes what a start that could not begin made (see :func:`_leave_as_it_was`); whether it is all gone.
    Of the parents it made only those left empty: another start may have made a folder of its own there."""
    if made is not None:
        shutil.rmtree(run_dir, ignore_errors=True)
        folder = os.path.abspath(run_dir)
        while folder != made and not os.path.lexists(folder):
            folder = os.path.dirname(folder)
            with contextlib.suppress(OSError):  # (not empty: left)
                os.rmdir(folder)
        return not os.path.lexists(run_dir)
    gone = True
    for name in new:
        path = os.path.join(run_dir, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.remove(path)
        except FileNotFoundError:
            pass
        except OSError:  # (a folder something was written into since, an open file on Windows)
            gone = False
    return gone


def _restore_start_record(run_dir: str, before: dict, stopped_before: str | None, lock) -> None:
    """Puts back the record of the latest start before one that could not begin: the run there is
    still resumed by its command, and status says how it stopped; and the time of its ``lock``, marked
    as this start took it, which status gave as the run's last write (a run dead for a day, "28 s ago")."""
    with contextlib.suppress(OSError):
        record_command(run_dir, before)
        if stopped_before:
            record_stop(run_dir, stopped_before)
    if getattr(lock, "unmark", None):  # (None where it was not marked: Windows)
        lock.unmark()


def _interrupted(run_dir: str) -> KeyboardInterrupt:
    """Records in ``run_dir`` that an error :func:`came_of_an_interrupt` stopped the run, for status
    to say "interrupted" (not killed); the KeyboardInterrupt to raise from it, for the CLI to say."""
    with contextlib.suppress(OSError):
        record_stop(run_dir, INTERRUPTED)
    return KeyboardInterrupt()


def _unwritable(run_dir: str, exc: BaseException, resumed: bool = False) -> str | None:
    """What to say where the run may not write a file of its own (a folder of it made immutable or
    read-only, its owner changed), as :func:`_lock_run_dir` says a run folder it may not write in:
    the folder and the problem, not "[Errno 1] ...: '.../.epoch.safetensors.x.part'". None for
    other errors, for files outside RUN_DIR and for reads: only a write (to a ``.part`` file, or in a
    folder the run may not write in) is said so; a state.json it may not read is said as it is."""
    if not isinstance(exc, OSError) or exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS) or not exc.filename:
        return None
    path = os.path.abspath(os.fsdecode(exc.filename))
    run, folder = os.path.abspath(run_dir), os.path.dirname(path)
    if os.path.commonpath([run, folder]) != run:
        return None
    if not path.endswith(".part") and os.access(folder, os.W_OK):
        return None
    part = os.path.relpath(folder, run).split(os.sep)[0]
    what = {"checkpoint": "the checkpoint", "cache": "the preprocessed images", "model": "the model"}.get(part, "its files")
    kept = " (the last finished epoch is kept)" if has_finished_epochs(run_dir) else ""
    return (f"cannot write {what} in {folder}: {exc.strerror or exc}{kept}; make it writable (chmod, chattr -i, or "
            f"mount it read-write), then {to_go_on(resumed)}")  # fmt: skip


def _refuse_inputs_inside(inputs: list[str], run_dir: str) -> None:
    """Refuses an input given inside RUN_DIR (``-o DATA``) as :func:`load_rois` would, but before the
    run writes its lock file and checkpoint/ there, among the user's images. Only those inputs are
    looked at (``@lists`` are read later): no folder is searched twice."""
    run = os.path.realpath(run_dir)
    real = {item: os.path.realpath(item) for item in inputs if not item.startswith("@")}
    inside = [item for item, path in real.items() if os.path.splitdrive(path)[0] == os.path.splitdrive(run)[0]
              and os.path.commonpath([run, path]) == run]  # fmt: skip
    if inside:
        discover(inside, exclude=[run_dir])  # raises its ValueError, naming the input and the folder


def _job_of(marker: str) -> str:
    """The job whose output folder ``marker`` (one of :data:`JOB_FOLDER_MARKERS`) marks: named in
    ``.xvertfast-<job>.json``; checkpoint/state.json is a training run's."""
    return marker[len(".xvertfast-"):].split(".")[0] if marker.startswith(".xvertfast-") else "train"


#: The markers of the output folders of the jobs whose images are no radiographs, with the job.
_NOT_RADIOGRAPHS = {marker: _job_of(marker) for marker in JOB_FOLDER_MARKERS if _job_of(marker) in JOB_IMAGES}


class _NotRadiographs(ValueError):
    """Images of such a folder among the training images: a run that cannot start (its folder is
    left as it was, as where no image is found)."""


def _job_folders_holding(path: str, seen: dict) -> tuple[tuple[str, str], ...]:
    """The output folders (real paths), with their markers, of the jobs whose images are no
    radiographs that are ``path`` (a folder) or hold it, however deep: the nearest first; none, ().
    ``seen`` keeps what each folder looked at gave: the files of one folder, or of folders side by
    side, cost a lookup."""
    if os.path.islink(path):
        path = os.path.realpath(path)  # (an image linked from elsewhere is what it links to)
    folder = path if os.path.isdir(path) else os.path.dirname(path) or os.curdir
    if folder in seen:  # (by the name it was reached by: no realpath per file)
        return seen[folder]
    walked, real = [], os.path.realpath(folder)
    while real not in seen and real not in walked:  # (up to a folder looked at before, or past the root)
        walked.append(real)
        real = os.path.dirname(real)
    held = seen.get(real, ())
    for name in reversed(walked):
        held = tuple((name, m) for m in _NOT_RADIOGRAPHS if os.path.isfile(os.path.join(name, m))) + held
        seen[name] = held
    seen[folder] = held
    return held


def _refuse_outputs_as_data(paths: list[str]) -> None:
    """Refuses an input that is a preprocess job's output folder (or an evaluation report's, a
    training run's), or a file that job wrote there, given by name or found in a folder: its images
    would be trained on as radiographs, the overlays' colours taken to luminance with a note and the
    rest without a word. A folder below such a folder is not refused (its files are looked at as
    found), nor the other files there. Called with the inputs given, before anything is written, and
    with the files found (those an @list names, those in a folder), before any is preprocessed."""
    seen: dict = {}
    for path in paths:
        held = _job_folders_holding(path, seen)
        real = os.path.realpath(path) if held else path
        for folder, marker in held:
            job = _NOT_RADIOGRAPHS[marker]
            images = JOB_IMAGES[job]
            if real == folder:
                where = "is the"
            elif not os.path.isdir(real) and images.wrote(os.path.relpath(real, folder)):
                where = f"is in {folder}, the"
            else:
                continue
            raise _NotRadiographs(f"{path} {where} output folder of an xvertfast {job} job (it holds {marker}): its "
                                  f"images are {images.what}, not radiographs to train on; give the radiographs (train "
                                  "preprocesses them itself)")  # fmt: skip


def _refuse_other_jobs_folder(run_dir: str) -> None:
    """Refuses an enhance, preprocess or evaluate output folder, or a model's folder, as RUN_DIR: the
    run's files would go in among that job's outputs (and replace one named as they are), or beside
    the model, which a run's model/ in it would pass for. A model's folder where a run's checkpoint is
    (checkpoint/state.json: an older xvertfast let a run begin there) is taken as that run's, not
    refused: its checkpoint is resumed."""
    for marker in JOB_FOLDER_MARKERS:  # (and train's own, checkpoint/state.json, which --resume reads)
        if marker.startswith(".xvertfast-") and os.path.exists(os.path.join(run_dir, marker)):
            job = _job_of(marker)
            raise ValueError(f"{run_dir} is the output folder of an xvertfast {job} job (it holds {marker}): give the "
                             "training run a folder of its own")  # fmt: skip
    # (-o MODEL typed for --init MODEL, or as enhance's --model; not a folder where a run's checkpoint is, which an
    # older xvertfast let begin there: it is resumed, or refused as a run's, as in any RUN_DIR; a lock file alone,
    # which persistence._a_run counts as a run begun, is no checkpoint to resume)
    if is_model_folder(run_dir) and not os.path.exists(os.path.join(run_dir, "checkpoint", "state.json")):
        raise ValueError(f"{run_dir} is an xvertfast model (it holds its config.json): the run's files, its own "
                         f"model/ among them, would go in beside that model's, which enhance --model {run_dir} "
                         f"would still use; give the training run a folder of its own (--init {run_dir} starts it "
                         "from this model's weights)")  # fmt: skip


def _refuse_files_of_no_run(run_dir: str, config: TrainConfig) -> None:
    """Refuses a RUN_DIR without a checkpoint that holds a model/ (a trained model whose checkpoint was
    cleared away, the user's own folder), or, where no run has trained there (no lock file), what a run
    writes after its first epoch (metrics.csv, the figures): a new run would replace them, model/
    removed whole as its first stage ends. A run's own folder, its checkpoint and model removed, is
    trained again (its cache kept). Before the lock file is taken: the folder is left as it was."""
    if os.path.exists(os.path.join(run_dir, "checkpoint", "state.json")):  # a run's: --resume, or refused as one
        return
    names = ["model", os.path.join("checkpoint", "model")]
    if not os.path.lexists(os.path.join(run_dir, LOCK_FILE)):
        names[1:1] = ["metrics.csv", "curves.png", *(f"preview_stage{k}.png" for k in range(1, config.stages + 1))]
    held = [name for name in names if os.path.lexists(os.path.join(run_dir, name))]
    if held:
        raise FileExistsError(f"{run_dir} holds {', '.join(held)} but no checkpoint of a run (checkpoint/state.json): "
                              "a new run would replace them; give the training run a folder of its own, or move "
                              "them out of it")  # fmt: skip


def _make_folders(path: str) -> str | None:
    """Makes the folder ``path`` and its missing parents (as ``os.makedirs``); the outermost of them this
    call made, None where none was missing. Told by each mkdir, not by a look before: a folder another
    start made meanwhile is not this one's to remove."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    made = _make_folders(parent) if parent != path and not os.path.exists(parent) else None
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):  # (a file, a link to no folder: said by the caller)
            raise
        return made
    return made or path


def _remove_stale_parts(run_dir: str, config: TrainConfig) -> None:
    """Removes the temporaries a kill left of the files a run writes under fixed names; those named
    by digests (the cache, the later stages' data) are cleaned where their names are known
    (:func:`~xvertfast.train.data.load_rois`, :func:`_stage_inputs`)."""
    stages = range(1, config.stages + 1)
    models = [os.path.join(run_dir, "model"), os.path.join(run_dir, "checkpoint", "model")]
    remove_stale_parts([*(os.path.join(run_dir, "checkpoint", name) for name in (CHECKPOINT_FILE, "state.json")),
                        os.path.join(run_dir, COMMAND_FILE),
                        *(os.path.join(run_dir, name) for name in ("metrics.csv", "curves.png")),
                        *(os.path.join(run_dir, f"preview_stage{k}.png") for k in stages),
                        *(os.path.join(folder, "config.json") for folder in models),
                        *(os.path.join(folder, f"stage{k}.safetensors") for folder in models for k in stages)])  # fmt: skip


def _remove_finished_stages(ckpt_dir: str, log) -> None:
    """Removes checkpoint/model once the run is finished (its state saved so): a resume then returns
    RUN_DIR/model and reads no stage from there, and the model of fewer stages left in it was taken
    by enhance --model and train --init without a word. One that cannot be removed is said, not
    raised: the run is finished."""
    kept = os.path.join(ckpt_dir, "model")
    if os.path.isdir(kept):
        try:
            shutil.rmtree(kept)
        except OSError as exc:
            log(f"warning: {kept} not removed ({exc.strerror or exc}): it holds the run's first stages alone; "
                f"its model is {os.path.join(os.path.dirname(ckpt_dir), 'model')}")


def _remove_stage_data(run_dir: str, log) -> None:
    """Removes the later stages' training data (``stage{k}_data-*.npy``, 4 MB per image and later stage
    at --roi-size 512: 160 GB for 40,000 images) once the run is finished: only a stage still to train
    reads it, and a finished run trains none (a --resume says it is finished, one with more epochs or
    stages is another configuration and refused; status and evaluate read the checkpoint and the model).
    Says what was freed, and (:func:`_cache_kept`) how large RUN_DIR/cache and RUN_DIR/private-cache
    are, kept for a run trained again on these images; they may be deleted once none will be. A file
    that cannot be removed is said, not raised: the run is finished."""
    freed, kept = 0, []
    for entry in os.scandir(run_dir):
        if not _STAGE_DATA.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            size = entry.stat(follow_symlinks=False).st_size
            os.remove(entry.path)
            freed += size
        except OSError as exc:
            kept.append(f"{entry.path} ({exc.strerror or exc})")
    if kept:
        log(f"warning: not removed: {', '.join(kept)}; the run is finished and reads it no more: delete it")
    held = _cache_kept(run_dir)
    if freed:
        log(f"removed the later stages' training data ({freed / 1e6:.1f} MB): the finished run reads it no more"
            + (f"; {held}" if held else ""))  # fmt: skip
    elif held:  # (a one-stage run has no later stages' data: its cache was said nowhere)
        log(held)


def _cache_kept(run_dir: str) -> str | None:
    """What a finished run says of RUN_DIR/cache (and RUN_DIR/private-cache, what a cache it could not
    write lacked), which it keeps: the preprocessing of every image (hours for an archive; 4 MB an
    image at --roi-size 512), reused by a run trained again on these images (in this folder, its
    checkpoint/ and model/ removed, or in a new one given a copy of the cache) and by nothing else.
    None where they hold nothing. The run has finished: a folder that cannot be listed or a file of
    it that cannot be read is said without a size, not raised; a file removed meanwhile is not counted."""
    cache = os.path.join(run_dir, "cache")
    linked = os.path.islink(cache)
    held = [text for text in (None if linked else _held(cache, "the preprocessed ROIs"),
                              _held(os.path.join(run_dir, PRIVATE_CACHE), "the preprocessed ROIs its cache lacked"))
            if text is not None]  # fmt: skip
    said = [f"{cache} is a link, perhaps shared with other runs: left as it is"] if linked else []
    if held:
        it, verb = ("it", "is") if len(held) == 1 else ("them", "are")
        said.append(f"{' and '.join(held)} {verb} kept for a run trained again on these images (in this folder, or a "
                    f"new one given a copy of {it}): delete {it} if none will be")  # fmt: skip
    return "; ".join(said) or None


def _held(folder: str, what: str) -> str | None:
    """``folder`` with its size and ``what`` it holds, for :func:`_cache_kept`; None where it holds nothing."""
    try:
        size = _size_of_files(folder) if os.path.isdir(folder) else 0
    except FileNotFoundError:  # (removed meanwhile, the folder itself: nothing is kept)
        return None
    except OSError as exc:
        return f"{folder} ({what}; its size could not be read: {exc.strerror or exc})"
    return f"{folder} ({size / 1e6:.1f} MB, {what})" if size else None


def _size_of_files(folder: str) -> int:
    """The bytes of the files in ``folder`` (not below it), but for those removed while summed."""
    size = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False):
                    size += entry.stat(follow_symlinks=False).st_size
    return size


def _finished_stage_file(run_dir: str, k: int) -> str:
    """Where a resume finds stage k's weights once it is trained: checkpoint/model until the last stage
    is (RUN_DIR/model holds only the whole model), RUN_DIR/model in a finished run or one an older
    xvertfast began (it saved every finished stage there)."""
    kept = os.path.join(run_dir, "checkpoint", "model", f"stage{k}.safetensors")
    return kept if os.path.exists(kept) else os.path.join(run_dir, "model", f"stage{k}.safetensors")


def _finished_stage(run_dir: str, k: int, config: TrainConfig, device: torch.device,
                    stage: XVertNetStage | None = None) -> XVertNetStage:
    """Stage k of a run that has trained it, in eval mode and the default layout (what load_model gives)."""
    if stage is None:
        stage = XVertNetStage(config.width, config.depth, config.upsample).to(device, memory_format=_layout(device))
    path = _finished_stage_file(run_dir, k)
    with reading(path):
        stage.load_state_dict(_load_tensors(path, device))
    return stage.to(memory_format=torch.contiguous_format).eval()


def _train(inputs: list[str], run_dir: str, config: TrainConfig, device: torch.device, init: XVertNet | None,
           resume: bool, progress: bool, stop_after_epochs: int | None, log, started: dict,
           centres=None, lr_given: bool = False) -> XVertNet:  # fmt: skip
    """:func:`train`, in a run folder this process holds the lock of; ``started``: its command line;
    ``centres``: the ROI centres given by hand (:func:`train`'s ``rois``)."""
    ran_in = working_folder()  # (as the run starts: the folder relative sources are from, recorded with the model)
    _remove_stale_parts(run_dir, config)  # no other process writes there: what is left is a kill's
    ckpt_dir = os.path.join(run_dir, "checkpoint")
    state_path = os.path.join(ckpt_dir, "state.json")
    init_key = fingerprint(init) if init is not None else None
    threads = torch.get_num_threads()
    prog, saved, lr_changes = Progress(), None, []
    if resume and os.path.exists(state_path):
        saved = latest_state(ckpt_dir)
        # (runs checkpointed before the upsampling became a choice used the transposed conv)
        before = {"upsample": "transposed", **saved["config"]}
        now = json.loads(json.dumps(asdict(config)))
        # the device as spelled (auto, cpu, cuda:0) may change: where it runs is checked below, as "device"
        before["device"] = now["device"]
        if "init" in saved and before.get("init") is not None and now["init"] is not None:
            # the --init model as spelled (relative, from another folder, "default" or its folder) may change:
            # its weights are what must not, compared by fingerprint below
            before["init"] = now["init"]
        lr_changes = list(saved.get("lr_changes", []))
        finished = position(saved)[0] > config.stages  # every stage trained: nothing goes on with a new lr
        if before.get("lr") != now["lr"] and before == {**now, "lr": before.get("lr")}:  # the lr alone: allowed
            if not finished:
                lr_changes.append(_lr_change(saved, before["lr"], now["lr"], log))
            before["lr"] = now["lr"]
        if before != now:
            raise _other_settings(run_dir, saved, before, now)
        if saved.get("init", init_key) != init_key:  # (checkpoints from before it was recorded: not checked)
            raise _OtherRun(f"{run_dir}: {asked('resume', True)} with {asked('init', config.init)}, whose weights "
                             f"are not those the run started from (fingerprint {str(saved['init'])[:12]}... then, "
                             f"{str(init_key)[:12]}... now); resume with the model the run started from, or start a "
                             f"new {_run_dir_said()}")  # fmt: skip
        if saved.get("device", device.type) != device.type:  # (checkpoints from before it was recorded: not said)
            log(f"warning: this run trained on {saved['device']}, now on {device.type}: the result will differ from an "
                "uninterrupted run's (other kernels round differently)")  # fmt: skip
        elif device.type == "cpu" and saved.get("threads", threads) != threads:  # (sums split otherwise round otherwise)
            log(f"warning: this run trained with {count(saved['threads'], 'CPU thread')}, now with {threads}: the "
                "result will differ slightly from an uninterrupted run's "
                f"({_threads_said(saved['threads'])} resumes it bitwise)")  # fmt: skip
        prog = Progress(**saved["progress"])
        if finished:  # (its images are not gathered again: a cache missed, for other or moved images, costs hours)
            log(f"{run_dir}: the run has finished (all {count(config.stages, 'stage')} "
                f"trained): nothing to resume; its model is {os.path.join(run_dir, 'model')} (to train it on "
                f"more or other images: {_train_anew_from(os.path.join(run_dir, 'model'))})")  # fmt: skip
            _remove_finished_stages(ckpt_dir, log)  # (a run killed between its finished state and that removal)
            _remove_stage_data(run_dir, log)  # (the same, or one an older xvertfast finished: it kept them)
            return load_model(os.path.join(run_dir, "model"), map_location=device)  # (written before it was finished)
        elif prog.epoch:  # (epochs finished in the stage: "at stage 1, epoch 25" read as redoing the 25th)
            resuming = f"resuming after stage {prog.stage}, epoch {prog.epoch} (the last one finished)"
        else:  # (every epoch of the stage before is finished; this one has none yet)
            resuming = (f"resuming at the start of stage {prog.stage}"
                        + (f" (stage {prog.stage - 1} finished)" if prog.stage > 1 else ""))
    elif os.path.exists(state_path):
        model_dir = os.path.join(run_dir, "model")
        with contextlib.suppress(ValueError):  # (a damaged state: said by the resume it asks for)
            before = latest_state(ckpt_dir)
            if position(before)[0] > before["config"].get("stages", math.inf):  # every stage trained
                raise _RunThere(f"{run_dir} holds a finished run (all {count(before['config']['stages'], 'stage')} "
                                      f"trained): its model is {model_dir}; to train it on more or other images, "
                                      f"{_train_anew_from(model_dir)}")  # fmt: skip
        raise _RunThere(f"{run_dir} holds a checkpoint: {to_go_on(False)}, or use a new folder")
    elif resume:
        log(f"{asked('resume', True)}: {run_dir} holds no checkpoint yet; starting a new run there")
    os.makedirs(ckpt_dir, exist_ok=True)  # before any epoch: a stage may have none (--init with 0 epochs)
    sizes: dict[str, int] = {}  # the byte size of each file found: recorded for the images trained on

    def same_files(paths: list[str]) -> None:  # (before any image is preprocessed: hours for an archive)
        _refuse_outputs_as_data(paths)  # (those an @list names: the inputs given were looked at before)
        for path in paths:
            with contextlib.suppress(OSError):  # (one that cannot be read is skipped, as it is when read)
                sizes[path] = os.path.getsize(path)
        if saved is None:
            return
        if (how := _other_files(saved, [sizes[p] for p in paths if p in sizes])) is not None:
            known = [p for p in paths if p in sizes]
            changed = _changed_in_place([sizes[p] for p in known], saved.get("image_sizes"))
            if changed:  # (a file re-exported since: named, not "other sizes, or in another order")
                then = saved["image_sizes"]
                raise _changed_images(run_dir, [known[i] for i in changed], f"{then[changed[0]]:,} bytes at its place "
                                      f"in the run, {sizes[known[changed[0]]]:,} now")  # fmt: skip
            raise _OtherRun(f"{run_dir}: {asked('resume', True)} with other training images than the run started "
                             f"with ({how}); resume with the same inputs, or start a new folder")  # fmt: skip
        log(resuming)  # (said once the files may be the run's: not before a refusal)

    # (before the set is gathered: a refusal writes none)
    def same_data(key: str, sources: list[str], placed: str, digests: list[str]) -> None:
        images = len(sources)
        data_key = {"rois": key, "images": images, **({"centres": placed} if placed else {})}
        if saved is not None and saved.get("data", data_key).get("centres") != data_key.get("centres"):
            raise _OtherRun(f"{run_dir}: {asked('resume', True)} with other ROI centres given by hand "
                             f"({asked('rois')}) than the run's epochs were trained on: its ROIs were cut at those; "
                             "resume with the same centres, or start a new folder")  # fmt: skip
        if saved is not None and saved.get("data", data_key) != data_key:
            then = saved["data"].get("images")
            if changed := _changed_in_place([d[:_DIGEST] for d in digests], saved.get("image_digests")):
                raise _changed_images(run_dir, [sources[i] for i in changed],
                                      "other contents than the run trained on at its place")
            how = (f"{then} images then, {images} now" if then != images else
                   f"{images} images then and now, but other ones, the same in another order (the validation split "
                   "goes by position: give them in the order the run began with), or this xvertfast cuts training ROIs "
                   "otherwise than the one that began the run")  # fmt: skip
            raise _OtherRun(f"{run_dir}: {asked('resume', True)} with other training images than the run started "
                             f"with ({how}); resume with the same inputs, or start a new folder")  # fmt: skip

    private = os.path.join(run_dir, PRIVATE_CACHE)  # (where RUN_DIR/cache, a shared one, cannot be written)
    with recording_linked_crops(run_dir) as taken:  # (a linked cache's crops of this run: said as it stops early)
        rois = load_rois(inputs, os.path.join(run_dir, "cache"), config.roi_size, config.lam, config.alpha, config.eps,
                         log, progress=progress, exclude=[run_dir], rois=centres, before_preprocessing=same_files,
                         before_gathering=same_data, private=private, taken=taken)  # fmt: skip
    if os.path.isdir(private):
        remove_other_sets(private, rois.key)
    freed = remove_other_sets(os.path.join(run_dir, "cache"), rois.key)
    if freed is None:
        log(f"{os.path.join(run_dir, 'cache')} is a link, perhaps shared with other runs: the ROIs gathered there for "
            "other images or centres are left in it")  # fmt: skip
    elif freed:
        log(f"removed the ROIs gathered for other images or centres from {os.path.join(run_dir, 'cache')} "
            f"({freed / 1e6:.1f} MB): the run goes on only with its own")  # fmt: skip
    data_key = {"rois": rois.key, "images": len(rois.sources), **({"centres": rois.centres} if rois.centres else {})}
    if not started and saved is not None:  # resumed from Python: the command that started the run still resumes it
        started = {key: saved[key] for key in ("command", "cwd") if key in saved}
    image_sizes = [sizes.get(p) for p in rois.sources]  # (None: a file whose size could not be read, yet read)
    run = {"data": data_key, "init": init_key, "device": device.type, "threads": threads, **started,
           **({"image_sizes": image_sizes} if None not in image_sizes else {}),
           "image_digests": [digest[:_DIGEST] for digest in rois.digests],
           **({"lr_changes": lr_changes} if lr_changes else {})}  # fmt: skip
    train_ids, val_ids = split_by_image(len(rois.sources), config.val_fraction, config.seed)
    split = (f"{len(train_ids)} for training, {len(val_ids)} for validation" if val_ids else "all for training"
             + (" (--val-fraction 0: early stopping and the kept epoch go by the training loss)"
                if config.val_fraction == 0 else ""))  # fmt: skip
    log(f"{count(len(rois.sources), 'image')} ({len(rois)} ROIs): {split}"
        + (f"; {len(rois.skipped)} of {rois.found} files skipped" if rois.skipped else ""))  # fmt: skip
    if not val_ids and config.val_fraction > 0:
        log("note: a single training image: none is held out for validation, so early stopping and the kept epoch "
            "go by the training loss")  # fmt: skip
    if config.patch_size > config.roi_size:  # (the CLI's help says so too; a notebook user may not expect it)
        log(f"note: patch size {config.patch_size} is above the ROI size {config.roi_size}: every step trains on "
            "whole ROIs, as with patch size 0")  # fmt: skip
    loss_fn = XVertNetLoss()
    if init is not None and len(init.stages) < config.stages:
        have = len(init.stages)
        later = f"stage {have + 1} starts" if have + 1 == config.stages else f"stages {have + 1}..{config.stages} start"
        log(f"{'--init' if from_cli() else 'the init model'} has {count(have, 'stage')}: {later} from random weights")
    stages: list[XVertNetStage] = []
    epochs_run = 0
    patches = 0 < config.patch_size < config.roi_size  # (random_patches: a larger patch is the whole ROI)
    curves = _Curves(run_dir, log, samples="patches" if patches else "ROIs")

    def diverged(what: str) -> TrainingDiverged:  # in the stage and epoch being trained
        return TrainingDiverged(k, prog.epoch + 1, what, ckpt_dir, config.lr, config.amp, resume, lr_given)

    forgotten = False

    def save_state() -> None:  # once state.json is there, the record of the crops the run took from a linked cache
        # is read no more, and goes (forget_linked_crops; a resume's went as it started: recording_linked_crops)
        nonlocal forgotten
        _save_state(state_path, config, prog, run)
        if not forgotten:
            forget_linked_crops(run_dir)
            forgotten = True

    for k in range(1, config.stages + 1):
        torch.manual_seed(torch_seed(config.seed * 7919 + k))
        stage = XVertNetStage(config.width, config.depth, config.upsample).to(device, memory_format=_layout(device))
        if init is not None and k <= len(init.stages):
            stage.load_state_dict(init.stages[k - 1].state_dict())
        if k < prog.stage:  # finished earlier: its weights (its data is made only where a later stage needs it)
            stages.append(_finished_stage(run_dir, k, config, device, stage))
            continue
        data = _stage_inputs(k, stages, rois, run_dir, config, device, progress)
        tr, va = data.subset(train_ids), data.subset(val_ids)
        opt = torch.optim.Adam(stage.parameters(), lr=config.lr, betas=config.betas)
        best = {n: v.detach().clone() for n, v in stage.state_dict().items()}
        if prog.stage == k and prog.epoch > 0:
            best = _resume_stage(stage, opt, ckpt_dir, device)
        total_epochs = config.epochs_gc + config.epochs_joint
        epochs_before = epochs_run  # (each epoch run now writes metrics.csv: the stage's end need not again)
        # (closed as the stage ends or an error, a Ctrl-C, leaves it: left to the garbage collector, it redrew the bar
        # below the CLI's "interrupted" line)
        with tqdm(total=total_epochs, initial=prog.epoch, desc=f"stage {k}", unit="epoch", disable=not progress) as bar:
            while prog.epoch < total_epochs and not (prog.epoch >= config.epochs_gc
                                                     and prog.bad_epochs >= config.patience):
                if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                    return XVertNet(stages + [stage], config.lam, config.alpha, config.eps)
                joint = prog.epoch >= config.epochs_gc
                gen = torch.Generator().manual_seed(torch_seed(config.seed * 1_000_003 + 1000 * k + prog.epoch))
                stage.train()
                t0, seen, running = time.perf_counter(), 0, 0.0
                for idx in _batches(len(tr), config.batch_size, gen):
                    xp, y = shift_augment(*tr.batch(idx), gen)
                    if config.patch_size:
                        xp, y = random_patches(xp, y, config.patch_size, gen)
                    xp, y = _to(xp, device), _to(y, device)
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp):
                        out, feats = stage(xp, y, return_features=True)
                    terms = loss_fn(out.float(), y, feats.float(), joint)
                    loss = terms.total.item()
                    if not math.isfinite(loss):
                        raise diverged(f"the training loss is {loss}")
                    opt.zero_grad(set_to_none=True)
                    terms.total.backward()
                    opt.step()
                    running += loss * xp.shape[0]
                    seen += xp.shape[0]
                seconds = time.perf_counter() - t0
                if not _all_finite(stage):  # a finite loss whose step overflowed: not to be checkpointed
                    raise diverged("the weights are no longer finite")
                val = _evaluate(stage, va, loss_fn, joint, config.batch_size, device)
                if len(va) and not math.isfinite(val):
                    raise diverged(f"the validation loss is {val}")
                prog.epoch += 1
                score = val if val == val else running / max(seen, 1)  # no validation images: train loss
                if joint:
                    if score < prog.best_val:
                        prog.best_val, prog.bad_epochs = score, 0
                        best = {n: v.detach().clone() for n, v in stage.state_dict().items()}
                    else:
                        prog.bad_epochs += 1
                else:
                    best = {n: v.detach().clone() for n, v in stage.state_dict().items()}
                prog.history.append({"stage": k, "epoch": prog.epoch, "phase": JOINT_PHASE if joint else "gc",
                                     "train_loss": running / max(seen, 1), "val_loss": val,
                                     "images_per_s": seen / seconds if seconds > 0 else 0.0, "seconds": seconds})  # fmt: skip
                _save_checkpoint(ckpt_dir, stage, opt, best, _state(config, prog, run))
                save_state()
                _write_metrics(run_dir, prog.history)
                curves.update(prog.history)
                epochs_run += 1
                # (the rate of what a step trains on, as curves.png's titles say it: a run on patches said roi_s)
                rate = {"patch_s" if patches else "roi_s": f"{seen / max(seconds, 1e-9):.1f}"}
                bar.set_postfix(loss=f"{running / max(seen, 1):.4f}", val=f"{val:.4f}", **rate)
                bar.update(1)
        if epochs_run == epochs_before:  # a stage of no epochs run now: its metrics (none: an earlier run's go)
            _write_metrics(run_dir, prog.history)
        curves.update(prog.history, force=True)
        stage.load_state_dict(best)
        # a finished stage in the default layout: what load_model gives, so it computes the same
        stages.append(stage.to(memory_format=torch.contiguous_format).eval())
        shown = va if len(va) else tr
        _preview(stages[-1], shown, os.path.join(run_dir, f"preview_stage{k}.png"),
                 f"stage {k}, epoch {kept_epoch([r for r in prog.history if r['stage'] == k])}: "
                 f"{'validation' if len(va) else 'training'} ROIs", device)  # fmt: skip
        # RUN_DIR/model only once every stage is trained: a model of fewer stages there would pass for the run's
        save_model(XVertNet(stages, config.lam, config.alpha, config.eps),
                   os.path.join(run_dir, "model") if k == config.stages else os.path.join(ckpt_dir, "model"),
                   extra={"training": {"config": asdict(config), "sources": rois.sources,
                                       "validation_images": [rois.sources[i] for i in val_ids],
                                       # (a relative source, as given, is from the folder the run was started in:
                                       # not recorded, the model's list of images did not say which they were)
                                       # (a folder os.getcwd cannot read, deleted: no key, not a null one)
                                       **({"cwd": ran_in} if ran_in and not all(map(os.path.isabs, rois.sources))
                                          else {}),
                                       **({"lr_changes": lr_changes} if lr_changes else {}),
                                       **({"init": {"path": init.metadata.get("path", config.init),
                                                    "fingerprint": init_key}} if init is not None else {})}})  # fmt: skip
        if k < config.stages and os.path.isdir(os.path.join(run_dir, "model")):
            # a run an older xvertfast began kept its finished stages there: now in checkpoint/model, the
            # model of fewer stages left there would pass for the run's
            shutil.rmtree(os.path.join(run_dir, "model"))
        prog = Progress(stage=k + 1, history=prog.history)
        save_state()
        if k == config.stages:
            _remove_finished_stages(ckpt_dir, log)
            _remove_stage_data(run_dir, log)
    if rois.skipped:  # said as they came, hours of progress above: again at the end, as the batch jobs do
        log(f"{len(rois.skipped)} file{' was' if len(rois.skipped) == 1 else 's were'} skipped (not trained on):")
        # as many as a screen holds, as the batch jobs' summaries: an archive's thousands of duplicates and
        # unreadable files were listed whole a second time, each said already
        for line in first_listed(rois.skipped, FAILED_LISTED, "skipped file", "each was said above as it was skipped",
                                 indent=""):  # fmt: skip
            log(line)
    if rois.warned:  # (an inverted look, a spine at the edge: said as each was preprocessed, hours of progress above)
        log(f"{count(len(rois.warned), 'warning')} about images trained on as they are (each says what to do; with "
            f"them fixed or left out, train into a new {_run_dir_said()}: a copy of {' and '.join(rois.held)} in "
            "it keeps the other images' preprocessing):")  # fmt: skip
        for line in first_listed(rois.warned, WARNED_LISTED, "warning", "each was said above as its image was "
                                 "preprocessed or taken from the cache", indent=""):  # fmt: skip
            log(line)
    if unrecorded := sum(rois.unrecorded.values()):  # (a cache of an older xvertfast: the list above is not of those)
        were, it, its = ("was", "it", "its") if unrecorded == 1 else ("were", "them", "their")
        log(f"{count(unrecorded, 'image')} {were} taken from {' and '.join(rois.unrecorded)} as an older xvertfast "
            f"preprocessed {it}, which kept no record of {its} warnings: what it noted of {it} is in the log of the "
            f"start that preprocessed {it}, not listed here")  # fmt: skip
    # the model as saved, with its record (metadata): its training roi_size is the tile Enhancer runs it at (a bare
    # XVertNet was run at 512 px tiles whatever it was trained on, unlike load_model(RUN_DIR/model))
    return load_model(os.path.join(run_dir, "model"), map_location=device)
