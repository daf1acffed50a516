"""Copies a finished training run's model into the package as the default model.

    python tools/package_default_model.py RUN_DIR "exact training command" [--fp16]

Writes ``xvertfast/weights/default/`` (config.json + stage{k}.safetensors) with the
provenance a model card needs added to config.json: the command, the per-stage epochs
reached, best validation losses, wall time (sum of the epoch times in metrics.csv) and
the machine. Weights stay float32 unless ``--fp16`` (they are stored, not computed, in fp16).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import torch  # noqa: E402

from xvertfast.model import DEFAULT_MODEL_DIR, load_model, save_model  # noqa: E402


def summarise(metrics_csv: str) -> dict:
    with open(metrics_csv) as f:
        rows = list(csv.DictReader(f))
    stages = {}
    for r in rows:
        s = stages.setdefault(int(r["stage"]), {"epochs": 0, "best_val_loss": float("inf"), "seconds": 0.0})
        s["epochs"] = max(s["epochs"], int(r["epoch"]))
        s["seconds"] += float(r["seconds"])
        if r["phase"] != "gc" and r["val_loss"] not in ("", "nan"):
            s["best_val_loss"] = min(s["best_val_loss"], float(r["val_loss"]))
        s["last_val_loss"] = float(r["val_loss"]) if r["val_loss"] not in ("", "nan") else None
    return {f"stage{k}": v for k, v in sorted(stages.items())}


def shipped_training(training: dict) -> dict:
    """The run's training record as the package ships it: file names, not the packager's paths
    (which say whose machine and folders it was made in and lead nowhere on a user's). The images'
    folder (``cwd``) is left out, and the ``--init`` model, where there was one, is named by its folder's name."""
    training = {key: value for key, value in training.items() if key != "cwd"}
    for key in ("sources", "validation_images"):
        if key in training:
            training[key] = [os.path.basename(p) for p in training[key]]
    if isinstance(training.get("init"), dict) and isinstance(training["init"].get("path"), str):
        training["init"] = {**training["init"], "path": os.path.basename(os.path.normpath(training["init"]["path"]))}
    config = training.get("config")
    if isinstance(config, dict) and isinstance(config.get("init"), str):
        training["config"] = {**config, "init": os.path.basename(os.path.normpath(config["init"]))}
    return training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("command")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--wall-time", type=float, default=None, help="wall-clock seconds of the whole run")
    args = ap.parse_args()
    model = load_model(os.path.join(args.run_dir, "model"))
    if args.fp16:
        model = model.half()
    extra = {k: v for k, v in model.metadata.items() if k not in ("format", "format_version", "architecture",
                                                                   "preprocessing", "path")}  # fmt: skip
    if "training" in extra:
        extra["training"] = shipped_training(extra["training"])
    extra["provenance"] = {
        "command": args.command,
        "stages": summarise(os.path.join(args.run_dir, "metrics.csv")),
        "wall_time_s": args.wall_time,
        "device": f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads available",
        "torch": torch.__version__,
        "weights_dtype": "float16" if args.fp16 else "float32",
    }
    save_model(model, DEFAULT_MODEL_DIR, extra=extra)
    size = sum(os.path.getsize(os.path.join(DEFAULT_MODEL_DIR, f)) for f in os.listdir(DEFAULT_MODEL_DIR))
    print(json.dumps(extra["provenance"], indent=2))
    print(f"wrote {DEFAULT_MODEL_DIR} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
