"""Benchmark inputs for batch enhancement: a folder of 1024^2 radiographs and a model of the default's size."""

from __future__ import annotations

import os

import numpy as np
import torch

from bench import SMALL
from bench.wls_inputs import DATA, radiograph

#: Images per timed batch and their side (the NIH size); XVF_BENCH_SMALL=1 for a quick smoke run.
COUNT, SIZE = (3, 384) if SMALL else (8, 1024)


def make_folder(folder: str, count: int = COUNT, size: int = SIZE) -> list[str]:
    """Writes ``count`` 8-bit PNGs (the cxr-dev NIH images, resized) and returns their paths."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for k in range(count):
        path = os.path.join(folder, f"cxr{k:03d}.png")
        Image.fromarray(np.round(radiograph(size, k) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def make_model(folder: str) -> str:
    """The shipped default model when there is one, else a random model of the same architecture."""
    from xvertfast.model import DEFAULT_MODEL_DIR, XVertNet, XVertNetStage, save_model

    if os.path.isdir(DEFAULT_MODEL_DIR):
        return "default"
    torch.manual_seed(0)
    model = XVertNet([XVertNetStage(16, 4), XVertNetStage(16, 4)])
    return save_model(model, os.path.join(folder, "model"), extra={"training": {"config": {"roi_size": 512}}})


def sequential(enhancer, paths: list[str], out_dir: str) -> None:
    """The naive loop the pipeline is measured against: read, enhance, write, one file at a time."""
    from xvertfast.io import read_image, write_image

    os.makedirs(out_dir, exist_ok=True)
    for path in paths:
        rad = read_image(path)
        out = enhancer.enhance(rad).pixels
        write_image(os.path.join(out_dir, os.path.basename(path)), out, "png8", like=rad, overwrite=True)


def assert_same_outputs(paths: list[str], dir_a: str, dir_b: str) -> None:
    """Both runs wrote every image, pixel for pixel the same (8-bit PNGs): the pipeline's
    batching and threads must not change a result."""
    from PIL import Image

    for path in paths:
        name = os.path.basename(path)
        with Image.open(os.path.join(dir_a, name)) as a, Image.open(os.path.join(dir_b, name)) as b:
            a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{name}: {a.shape} vs {b.shape}"
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
        assert not diff.any(), f"{name}: {int((diff > 0).sum())} pixels differ, by up to {int(diff.max())}"


__all__ = ["DATA", "COUNT", "SIZE", "SMALL", "assert_same_outputs", "make_folder", "make_model", "sequential"]
