"""Saving and loading models as a directory: ``config.json`` + ``stage{k}.safetensors``.

Loading reads tensors with safetensors and the architecture from JSON: no
pickle, so a model file can never run code.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import torch

from xvertfast._paths import as_the_system_reads, fspath
from xvertfast._text import asked, from_cli
from xvertfast.model.stage import UPSAMPLING, XVertNetStage
from xvertfast.model.xvertnet import XVertNet, uncompiled
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM

__all__ = ["save_model", "load_model", "model_tile", "fingerprint", "check_config", "is_model_folder", "as_device",
           "refuse_meta", "NO_TENSORS", "FORMAT_VERSION", "DEFAULT_MODEL_DIR"]

FORMAT_VERSION = 1
#: Where the shipped default model lives (package data).
DEFAULT_MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "weights", "default")
#: The keys of config.json :func:`save_model` writes from the model itself, not from its metadata
#: (``path``: where load_model found it, not part of the file).
_WRITTEN_AFRESH = ("format", "format_version", "architecture", "preprocessing", "path")


def save_model(model: XVertNet, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> str:
    """Writes the model directory (created if needed); ``extra`` goes into config.json (provenance).

    The record of a loaded model (its ``metadata``: the training run's settings, provenance) is
    written again, ``extra``'s keys replacing its own: a copy saved with nothing but the weights
    lost its training ROI size, so :class:`~xvertfast.infer.Enhancer` ran a model trained on
    64 px ROIs at 512 px tiles and gave other outputs than the original (``extra={"training": {}}``
    writes an empty training record instead). The files are written as a set: each to a temporary file, all renamed
    once all are made, so a failure on the way (a full disk) leaves a model already there as it
    was, not new weights beside the old config.json."""
    import contextlib

    from safetensors.torch import save_file

    from xvertfast.io.write import atomic_write

    model = uncompiled(model)  # (torch.compile(model) saves the model it wraps)
    if not isinstance(model, XVertNet):  # (else "... has no attribute 'stages'", its folder made empty)
        raise TypeError(f"save_model: model must be an XVertNet (xvertfast.load_model gives one), got "
                        f"{type(model).__name__}")  # fmt: skip
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    record = {k: v for k, v in (model.metadata or {}).items() if k not in _WRITTEN_AFRESH}
    config = {
        "format": "xvertfast-model",
        "format_version": FORMAT_VERSION,
        "architecture": {"stages": [{"width": s.width, "depth": s.depth, "upsample": s.upsample}
                                    for s in model.stages]},  # fmt: skip
        "preprocessing": {"lam": model.lam, "alpha": model.alpha, "eps": model.eps},
        **record,
        **(extra or {}),
    }
    with contextlib.ExitStack() as renames:  # (on leaving: every rename, or on an error none)
        for k, stage in enumerate(model.stages, start=1):
            tensors = {name: t.detach().cpu().contiguous() for name, t in stage.state_dict().items()}
            save_file(tensors, renames.enter_context(atomic_write(os.path.join(path, f"stage{k}.safetensors"))))
        with open(renames.enter_context(atomic_write(os.path.join(path, "config.json"))), "w") as f:
            json.dump(config, f, indent=2)
    return path


#: What to do with the folder of a training run that has not finished (no RUN_DIR/model yet).
def _trained_by() -> tuple[str, str]:
    """What writes a model and the name of its run's folder, in the caller's words: the CLI's
    `xvertfast train` and RUN_DIR, or train() and its run_dir from Python (Enhancer, load_model),
    where "a model is a directory from `xvertfast train`" named a command and not the function."""
    if from_cli():
        return "from `xvertfast train`", "RUN_DIR"
    return "that xvertfast.train.train() or `xvertfast train` writes", "run_dir"


def _unfinished() -> str:
    """What an unfinished run lacks and how it is finished, in the caller's words (:func:`_trained_by`)."""
    run = _trained_by()[1]
    finish = "`xvertfast train ... --resume`" if from_cli() else "xvertfast.train.train(..., resume=True)"
    return (f"its model ({run}/model) is written when its last stage is trained; {finish} finishes it (the stages "
            f"finished so far wait in {run}/checkpoint/model)")  # fmt: skip


def _unfinished_run(run_dir: str) -> bool:
    """Whether ``run_dir`` is the folder of a training run that has not written its model yet:
    its checkpoint is there (train keeps it in checkpoint/state.json), its model is not."""
    return os.path.isfile(os.path.join(run_dir, "checkpoint", "state.json")) and not os.path.isfile(
        os.path.join(run_dir, "model", "config.json"))  # fmt: skip


#: The lock file a training run writes in its folder as it starts: train.run_folder.LOCK_FILE, named
#: again here, model not importing train (a test checks that the two agree).
_RUN_LOCK_FILE = ".xvertfast-train.lock"


def _a_run(run_dir: str) -> bool:
    """Whether a training run began in ``run_dir``, as ``xvertfast status`` tells one: its checkpoint
    (checkpoint/state.json) or its lock file (:data:`_RUN_LOCK_FILE`, written as it starts) is there."""
    return os.path.isfile(os.path.join(run_dir, "checkpoint", "state.json")) or os.path.isfile(
        os.path.join(run_dir, _RUN_LOCK_FILE))  # fmt: skip


#: device types torch still parses, kept from Caffe2, on which no torch makes a tensor: an empty
#: one failed an internal assertion asking to "report a bug to PyTorch" (torch.device('mkldnn') warns)
NO_TENSORS = ("mkldnn", "opengl", "opencl", "ideep")


def as_device(value, who: str) -> torch.device:
    """``torch.device(value)``, or ValueError naming ``who`` (the argument, as the caller wants it
    said) where ``value`` names no device, or a type of :data:`NO_TENSORS`: torch's own error
    lists all of its device types (ipu, xla, hpu, ...) and names no argument. Shared by every API
    that takes a device, so a mistyped one reads alike wherever it was given."""
    if str(value).split(":")[0] in NO_TENSORS:  # (before torch.device, which warns of them)
        raise ValueError(f"{who}={str(value)!r}: torch has no tensors of this type (a device type kept from Caffe2); "
                         "use 'cpu'")  # fmt: skip
    try:
        return torch.device(value)
    except (RuntimeError, TypeError):  # (torch: "Expected one of cpu, cuda, ... device string: gpu")
        raise ValueError(f"{who}={value!r} is not a device (such as 'cpu', 'cuda' or 'cuda:1')") from None


def refuse_meta(device: torch.device) -> None:
    """Refuses torch's ``meta`` device (ValueError), which holds no data: train failed on it at its
    first epoch, every image preprocessed. A value no machine can run, unlike a missing GPU, so
    TrainConfig refuses it where the setting is made, in these words, without asking what this
    machine has. ``device`` is :func:`as_device`'s answer: the name is parsed once. load_model
    takes meta (a model of shapes alone); what runs a model refuses it."""
    if device.type == "meta":
        raise ValueError(f"{asked('device', device)} holds no data (torch's meta device has tensors' shapes alone): "
                         f"nothing can be enhanced or trained there; use {asked('device', 'cpu')}")  # fmt: skip


def load_model(path: str | os.PathLike = "default", map_location: str | torch.device = "cpu") -> XVertNet:
    """Loads a model directory written by :func:`save_model` (eval mode).

    ``path``: that directory (a training run's ``RUN_DIR/model``) or ``"default"``, the model
    shipped with xvertfast. ``map_location``: the device its weights are loaded onto.
    Returns an :class:`XVertNet` in eval mode, on ``map_location``, float32.

    Raises FileNotFoundError where the directory or a stage file is missing (or ``path`` is a
    file), and ValueError naming the file where config.json or a stage file does not describe a
    usable model (malformed, other tensors than its architecture has, integer or non-finite
    weights) or naming ``map_location`` where it is not a device; RuntimeError where
    ``map_location`` is a CUDA device and this torch has none usable.
    """
    path = os.fsdecode(fspath(path, "load_model: path must be a model directory or 'default'"))
    by, run = _trained_by()
    if not path:  # (an unset variable, --model ""): ": no such folder" named nothing
        raise FileNotFoundError(f"the model path is empty: give a model directory {by}, its {run}/model, or 'default'")
    if path == "default":
        path = DEFAULT_MODEL_DIR
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no default model at {path}: this installation lacks the package data "
                                    f"(reinstall xvertfast), or pass a model directory {by}")  # fmt: skip
    # the folders around it as the system reaches them: latest/../run2/model, latest -> runs/c1, is runs/run2/model,
    # where abspath and normpath read ./run2/model (the hints named, or missed, another folder's run)
    seen = as_the_system_reads(path)
    if not os.path.exists(path):  # a mistyped --model/--init/MODEL: not a folder that lacks its config
        run_dir = os.path.dirname(os.path.abspath(seen))
        if os.path.basename(os.path.normpath(path)) == "model" and _unfinished_run(run_dir):
            raise FileNotFoundError(f"{path}: the training run in {run_dir} has not finished: {_unfinished()}")
        raise FileNotFoundError(f"{path}: no such folder (a model is a directory {by}, its {run}/model, or 'default')")
    if not os.path.isdir(path):  # (os.listdir below: a bare "[Errno 20] Not a directory")
        folder = os.path.dirname(os.path.abspath(seen))
        if os.path.isfile(os.path.join(folder, "config.json")):  # config.json or a stage file of a model
            raise FileNotFoundError(f"{path}: a file, not a model directory: give the folder that holds it, {folder}")
        raise FileNotFoundError(f"{path}: a file, not a model directory (a model is a folder {by}, its {run}/model, "
                                "or 'default')")  # fmt: skip
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        inside = os.path.join(path, "model")  # a training run's folder: its model is RUN_DIR/model
        hint = ""
        parent, name = os.path.split(os.path.normpath(seen))
        beside = os.path.join(parent, "model")  # (RUN_DIR/checkpoint or cache given for RUN_DIR/model)
        if os.path.isfile(os.path.join(inside, "config.json")):
            hint = f"; did you mean {inside}, the model of the training run there?"
        elif name in ("checkpoint", "cache") and os.path.isfile(os.path.join(beside, "config.json")):
            hint = (f"; it is the {name}/ of a training run: did you mean {beside}, the run's model?" if _a_run(parent)
                    else f"; did you mean {beside}, the model beside it?")  # fmt: skip
        elif _unfinished_run(path):
            hint = f"; it is the folder of a training run that has not finished: {_unfinished()}"
        elif exported := sorted(n for n in os.listdir(path) if re.fullmatch(r"stage\d+\.(onnx|engine|pt2)", n)):
            hint = (f"; it holds an export of a model ({', '.join(exported[:3])}{', ...' if len(exported) > 3 else ''}), "
                    "not a model: give the model folder it was exported from (enhance --backend picks the runtime)")  # fmt: skip
        raise FileNotFoundError(f"{path}: not an xvertfast model directory (no config.json){hint}")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config_path}: not valid JSON ({exc})") from None
    specs = check_config(config, config_path)
    device = as_device(map_location, "load_model: map_location")
    if device.type == "cuda" and not torch.cuda.is_available():  # (safetensors: a pin_memory error)
        raise RuntimeError(f"load_model: map_location={str(map_location)!r}, but this torch has no usable CUDA device")
    # safetensors reads onto the CPU or a GPU; other devices (meta: the shapes alone) get the model moved
    read_on = device if device.type in ("cpu", "cuda") else torch.device("cpu")
    stages = []
    for k, spec in enumerate(specs, start=1):
        stage = XVertNetStage(**spec)
        stage.load_state_dict(_stage_tensors(os.path.join(path, f"stage{k}.safetensors"), stage, read_on))
        stages.append(stage)
    pre = config.get("preprocessing", {})
    try:
        model = XVertNet(stages, lam=pre.get("lam", DEFAULT_LAM), alpha=pre.get("alpha", DEFAULT_ALPHA),
                         eps=pre.get("eps", DEFAULT_EPS))  # fmt: skip
    except ValueError as exc:
        raise ValueError(f"{config_path}: preprocessing: {exc}") from None
    model.metadata = {**config, "path": os.path.abspath(path)}
    return model.to(device).eval()


#: What config.json may say of a stage.
_STAGE_KEYS = ("width", "depth", "upsample")


def _a_model_config(config) -> bool:
    """Whether a config.json's contents say it is a model's (what :func:`save_model` writes)."""
    return isinstance(config, dict) and config.get("format") == "xvertfast-model"


def is_model_folder(folder: str) -> bool:
    """Whether ``folder`` holds a model :func:`save_model` wrote, by its config.json alone (no tensor
    read): for a job that must not take a model's folder for its own (train -o MODEL)."""
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
            return _a_model_config(json.load(f))
    except (OSError, ValueError):
        return False


def check_config(config, config_path: str) -> list[dict]:
    """The stages' arguments from a config.json, or ValueError naming it and what is wrong (used by
    :func:`load_model` and by ``xvertfast info``, which checks the default model without loading it)."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{config_path}: {why}")

    if not _a_model_config(config):
        raise bad("not an xvertfast model configuration (no \"format\": \"xvertfast-model\")")
    version = config.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise bad(f"unsupported model format version {version!r} (this xvertfast reads up to {FORMAT_VERSION})")
    architecture = config.get("architecture")
    stages = architecture.get("stages") if isinstance(architecture, dict) else None
    if not isinstance(stages, list) or not stages:
        raise bad("no architecture.stages list")
    if not isinstance(config.get("preprocessing", {}), dict):
        raise bad("preprocessing must be an object")
    specs = []
    for k, spec in enumerate(stages, start=1):
        if not isinstance(spec, dict) or set(spec) - set(_STAGE_KEYS):
            raise bad(f"stage {k}: expected an object with {', '.join(_STAGE_KEYS)}, got {spec!r}")
        width, depth = spec.get("width"), spec.get("depth")
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(f"stage {k}: {name} must be a whole number >= 1, got {value!r}")
        # (models saved before the upsampling became a choice all used the transposed conv)
        upsample = spec.get("upsample", "transposed")
        if upsample not in UPSAMPLING:
            raise bad(f"stage {k}: upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        specs.append({"width": width, "depth": depth, "upsample": upsample})
    training = config.get("training", {})
    trained = training.get("config", {}) if isinstance(training, dict) else None
    if not isinstance(trained, dict):
        raise bad("training and training.config must be objects")
    tile = trained.get("roi_size", 512)  # the inference tile (model_tile): a traceback or a cut 512.5 otherwise
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise bad(f"training.config.roi_size must be a whole number >= 1 (the ROI side it was trained on), got {tile!r}")
    return specs


def _stage_tensors(file: str, stage: XVertNetStage, map_location) -> dict[str, torch.Tensor]:
    """A stage file's tensors, checked to be the stage's own: the same names and shapes, floating
    point and finite; else ValueError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: the model's stage file is missing")
    try:
        state = load_file(file, device=str(map_location))
    except SafetensorError as exc:
        raise ValueError(f"{file}: not a readable safetensors file ({exc}){_pickle_hint(file)}") from None
    expected = {name: tuple(t.shape) for name, t in stage.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in state.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        reshaped = sorted(n for n in set(expected) & set(found) if expected[n] != found[n])
        parts = [f"{label} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                 for label, names in (("missing", missing), ("unexpected", extra), ("other shape", reshaped)) if names]
        raise ValueError(f"{file}: its tensors do not fit the architecture in config.json ({'; '.join(parts)})")
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        if not t.is_floating_point():
            raise ValueError(f"{file}: {name} holds {t.dtype} values, not floating point")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{file}: {name} holds NaN or infinite values")
    return state


def _pickle_hint(file: str) -> str:
    """What to add where a stage file that safetensors cannot read starts as a pickle (protocol 2
    to 5) or a zip (torch.save's format) does: such a file renamed .safetensors reads as "header
    too large", which sends one looking for a damaged file rather than the wrong format."""
    try:
        with open(file, "rb") as f:
            head = f.read(4)
    except OSError:
        return ""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") or head == b"PK\x03\x04":
        return " (it looks like a pickle / torch.save file: xvertfast never loads those)"
    return ""


def _arch(stage: XVertNetStage) -> list:
    """A stage's architecture in the fingerprint; the transposed form hashes as it did before
    the upsampling became a choice, so earlier models keep their fingerprints."""
    return [stage.width, stage.depth] + ([] if stage.upsample == "transposed" else [stage.upsample])


def fingerprint(model: XVertNet) -> str:
    """SHA-256 (hex) of the architecture, the WLS parameters and every weight (dtype, shape, bytes):
    the identity of a model's outputs, for caches of exported graphs and for resumed batch jobs.
    Hashed afresh at each call, not cached on the model (training changes the weights in place):
    the default model's 14.6 MB take about 40 ms, a few times per job: enhance hashes once for its
    settings (batch._job_settings) and once more where it makes an ONNX Runtime or TensorRT backend
    (the export cache's key), evaluate so for each XVertNet method, train once for its --init model,
    an export once (an ONNX export takes 20 s, a hit of the export cache 86 ms with this hash)."""
    import hashlib

    h = hashlib.sha256(json.dumps({"lam": model.lam, "alpha": model.alpha, "eps": model.eps,
                                   "stages": [_arch(s) for s in model.stages]}).encode())  # fmt: skip
    for k, stage in enumerate(model.stages):
        for name, t in stage.state_dict().items():
            t = t.detach().cpu().contiguous()
            h.update(f"{k}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def model_tile(model: XVertNet, default: int = 512) -> int:
    """The ROI side the model was trained on (its inference tile), from its saved training config."""
    config = getattr(model, "metadata", {}).get("training", {}).get("config", {})
    return int(config.get("roi_size", default))
