"""Saving and loading models as a directory: ``config.json`` + ``stage{k}.safetensors``.

Loading reads tensors with safetensors and the architecture from JSON: no
pickle, so a model file can never run code.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from xvertfast.model.stage import XVertNetStage
from xvertfast.model.xvertnet import XVertNet
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM

__all__ = ["save_model", "load_model", "model_tile", "fingerprint", "FORMAT_VERSION", "DEFAULT_MODEL_DIR"]

FORMAT_VERSION = 1
#: Where the shipped default model lives (package data).
DEFAULT_MODEL_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "weights", "default")


def save_model(model: XVertNet, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> str:
    """Writes the model directory (created if needed); ``extra`` goes into config.json (provenance)."""
    from safetensors.torch import save_file

    from xvertfast.io.write import atomic_write

    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    config = {
        "format": "xvertfast-model",
        "format_version": FORMAT_VERSION,
        "architecture": {"stages": [{"width": s.width, "depth": s.depth, "upsample": s.upsample}
                                    for s in model.stages]},  # fmt: skip
        "preprocessing": {"lam": model.lam, "alpha": model.alpha, "eps": model.eps},
        **(extra or {}),
    }
    for k, stage in enumerate(model.stages, start=1):
        tensors = {name: t.detach().cpu().contiguous() for name, t in stage.state_dict().items()}
        with atomic_write(os.path.join(path, f"stage{k}.safetensors")) as tmp:
            save_file(tensors, tmp)
    with atomic_write(os.path.join(path, "config.json")) as tmp, open(tmp, "w") as f:
        json.dump(config, f, indent=2)
    return path


def load_model(path: str | os.PathLike = "default", map_location: str | torch.device = "cpu") -> XVertNet:
    """Loads a model directory written by :func:`save_model` (eval mode)."""
    from safetensors.torch import load_file

    path = os.fspath(path)
    if path == "default":
        path = DEFAULT_MODEL_DIR
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no default model at {path}: this installation lacks the package data "
                                    "(reinstall xvertfast), or pass a model directory from `xvertfast train`")  # fmt: skip
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        inside = os.path.join(path, "model")  # a training run's folder: its model is RUN_DIR/model
        hint = f"; did you mean {inside}, the model of the training run there?" if os.path.isfile(
            os.path.join(inside, "config.json")) else ""  # fmt: skip
        raise FileNotFoundError(f"{path}: not an xvertfast model directory (no config.json){hint}")
    with open(config_path) as f:
        config = json.load(f)
    if config.get("format") != "xvertfast-model" or config.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{config_path}: unsupported model format {config.get('format')!r} "
                         f"version {config.get('format_version')!r}")  # fmt: skip
    stages = []
    for k, spec in enumerate(config["architecture"]["stages"], start=1):
        # (models saved before the upsampling became a choice all used the transposed conv)
        stage = XVertNetStage(width=int(spec["width"]), depth=int(spec["depth"]),
                              upsample=str(spec.get("upsample", "transposed")))
        state = load_file(os.path.join(path, f"stage{k}.safetensors"), device=str(map_location))
        stage.load_state_dict(state, strict=True)
        stages.append(stage)
    pre = config.get("preprocessing", {})
    model = XVertNet(stages, lam=pre.get("lam", DEFAULT_LAM), alpha=pre.get("alpha", DEFAULT_ALPHA),
                     eps=pre.get("eps", DEFAULT_EPS))
    model.metadata = {**config, "path": os.path.abspath(path)}
    return model.to(map_location).eval()


def _arch(stage: XVertNetStage) -> list:
    """A stage's architecture in the fingerprint; the transposed form hashes as it did before
    the upsampling became a choice, so earlier models keep their fingerprints."""
    return [stage.width, stage.depth] + ([] if stage.upsample == "transposed" else [stage.upsample])


def fingerprint(model: XVertNet) -> str:
    """SHA-256 (hex) of the architecture, the WLS parameters and every weight (dtype, shape, bytes):
    the identity of a model's outputs, for caches of exported graphs and for resumed batch jobs."""
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
