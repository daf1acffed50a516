"""``xvertfast preprocess``: the network's inputs for a folder of radiographs, with overlays to check.

For every input it writes, under the output folder (mirroring the input tree):
``<name>_xp.png`` (X_p, 16-bit), ``<name>_y.tiff`` (Y, float32, signed),
``<name>_y.png`` (Y for viewing: 0.5 = 0, scaled to its 99.5th absolute
percentile) and ``<name>_overlay.png`` (the image with the spine line, the
band estimates and the training and evaluation ROIs drawn on it).

A file that cannot be read or processed is reported, gets no output, and the
job goes on; the caller exits non-zero when any failed. A file whose outputs
all exist already is skipped (resumable) unless ``overwrite``; the temporaries a
killed run left are removed first.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from xvertfast.io import ImageReadError, require_content, write_image
from xvertfast.io.files import InputFile, discover, output_path, read_input
from xvertfast.io.write import atomic_write, remove_stale_parts
from xvertfast.preprocess import find_spine, image_warnings, preprocess

__all__ = ["preprocess_files", "JobSummary", "SUFFIXES"]

SUFFIXES = ("_xp.png", "_y.tiff", "_y.png", "_overlay.png")


@dataclass
class JobSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  #: (path, reason)
    seconds: float = 0.0

    def line(self) -> str:
        rate = len(self.done) / self.seconds if self.seconds > 0 else 0.0
        return (f"{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed "
                f"in {self.seconds:.1f} s ({rate:.2f} images/s)")  # fmt: skip


def overlay(pixels: np.ndarray, spine) -> np.ndarray:
    """RGB uint8 picture of the image with the spine line and the ROIs."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    d = ImageDraw.Draw(img)
    H, W = pixels.shape
    lw = max(1, round(H / 512))
    d.line([(spine.x, 0), (spine.x, H - 1)], fill=(255, 220, 0), width=lw)
    for row, col in spine.band_points:
        r = 2 * lw
        d.ellipse([col - r, row - r, col + r, row + r], outline=(255, 120, 0), width=lw)
    for box in spine.train_rois():
        d.rectangle([box.left, box.top, box.right - 1, box.bottom - 1], outline=(0, 200, 255), width=lw)
    for box in spine.eval_rois():
        d.rectangle([box.left, box.top, box.right - 1, box.bottom - 1], outline=(60, 255, 60), width=lw)
    return np.asarray(img)


def _write_rgb(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    with atomic_write(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")


def _write_float_tiff(path: str, values: np.ndarray) -> None:
    """Y is signed: written as raw float32 (write_image's TIFF holds [0, 1] images)."""
    import tifffile

    with atomic_write(path) as tmp:
        tifffile.imwrite(tmp, values.astype(np.float32), photometric="minisblack")


def _one(f: InputFile, outs: list[str], log=print) -> None:
    """Reads, checks and preprocesses one file, then writes its outputs (each atomically)."""
    rad = require_content(read_input(f, warn=False))
    for warning in image_warnings(rad):
        log(f"warning: {warning}")
    pp = preprocess(rad.pixels)
    spine = find_spine(rad.pixels)
    y = pp.y
    scale = float(np.percentile(np.abs(y), 99.5)) or 1.0
    # everything is computed before the first file is written
    for out in outs:
        os.makedirs(os.path.dirname(out), exist_ok=True)
    write_image(outs[0], pp.xp, fmt="png16", overwrite=True)
    _write_float_tiff(outs[1], y)
    write_image(outs[2], np.clip(0.5 + 0.5 * y / scale, 0, 1), fmt="png8", overwrite=True)
    _write_rgb(outs[3], overlay(rad.pixels, spine))


def preprocess_files(inputs: list[str], out_dir: str, overwrite: bool = False, progress: bool = True,
                     log=print) -> JobSummary:  # fmt: skip
    """Preprocesses every input into out_dir; see the module docstring. Never raises for a bad file."""
    files = discover(inputs, exclude=[out_dir])
    os.makedirs(out_dir, exist_ok=True)
    summary = JobSummary()
    start = time.perf_counter()
    planned: list[tuple] = []  # (file, its outputs or the error naming why it has none)
    taken: dict[str, str] = {}  # an output -> the input it belongs to
    for f in files:
        try:
            outs = [output_path(out_dir, f.rel, s) for s in SUFFIXES]
        except ValueError as exc:  # an output outside out_dir: reported in the loop
            planned.append((f, exc))
            continue
        if outs[0] in taken:  # x.png and x.tiff in one folder, or one name in two input folders
            planned.append((f, ValueError(f"its outputs ({outs[0]}, ...) are also those of {taken[outs[0]]}")))
            continue
        taken[outs[0]] = f.path
        planned.append((f, outs))
    remove_stale_parts(o for _, outs in planned if isinstance(outs, list) for o in outs)
    bar = tqdm(total=len(files), unit="img", desc="preprocess", disable=not progress)
    for f, outs in planned:
        try:
            if isinstance(outs, ValueError):
                raise outs
            if not overwrite and all(os.path.exists(o) for o in outs):
                summary.skipped.append(f.path)
            else:
                _one(f, outs, log)
                summary.done.append(f.path)
        except (ImageReadError, ValueError, OSError) as exc:
            reason = str(exc) if isinstance(exc, ImageReadError) else f"{f.path}: {exc}"
            summary.failed.append((f.path, reason))
            log(f"error: {reason}")
        bar.update(1)
    bar.close()
    summary.seconds = time.perf_counter() - start
    return summary
