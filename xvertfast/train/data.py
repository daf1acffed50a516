"""Training data: preprocessed once per image (cached on disk), two spine ROIs per image.

The cache key is the file's SHA-256 and the preprocessing parameters, so a
changed file or setting is recomputed and a rerun (or ``--resume``) reuses
the work. Crops are taken at the ROI boxes of :func:`xvertfast.find_spine`
(sized at the canonical working height) and resampled to ``roi_size``.
Augmentation is a small random shift of each crop (up to 1/16 of its size):
no flips, which would move the heart to the wrong side.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xvertfast.io import ImageReadError, read_image
from xvertfast.io.write import atomic_write
from xvertfast.io.files import discover, file_sha256
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM
from xvertfast.preprocess import find_spine, preprocess
from xvertfast.preprocess.spine import Box

__all__ = ["RoiSet", "load_rois", "random_patches", "shift_augment", "split_by_image"]


@dataclass
class RoiSet:
    """ROI crops of a set of images: xp and y are [N, 1, S, S]; image[i] is the source index."""

    xp: torch.Tensor
    y: torch.Tensor
    image: torch.Tensor
    sources: list[str]

    def __len__(self) -> int:
        return self.xp.shape[0]

    def subset(self, images: list[int]) -> RoiSet:
        keep = torch.isin(self.image, torch.tensor(images, dtype=self.image.dtype))
        return RoiSet(self.xp[keep], self.y[keep], self.image[keep], self.sources)


def _crop(a: np.ndarray, box, size: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a[box.top : box.bottom, box.left : box.right], dtype=np.float32))
    t = t[None, None]
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="area" if t.shape[-1] > size else "bilinear")
    return t[0]


def _preprocessed(path: str, cache_dir: str, params: dict, photometric: str | None = None) -> dict:
    keyed = {"file": file_sha256(path), **params, **({"photometric": photometric} if photometric else {})}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:32]
    cached = os.path.join(cache_dir, key + ".npz")
    if os.path.exists(cached):
        with np.load(cached) as z:
            return {k: z[k] for k in z.files}
    rad = read_image(path, photometric=photometric)
    pp = preprocess(rad.pixels, params["lam"], params["alpha"], params["eps"])
    spine = find_spine(rad.pixels)
    boxes = np.array([tuple(b) for b in spine.train_rois(params["roi_size"])], dtype=np.int64)
    out = {"xp": pp.xp.astype(np.float32), "y": pp.y.astype(np.float32), "boxes": boxes}
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_write(cached) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **out)
    return out


def load_rois(inputs: list[str], cache_dir: str, roi_size: int, lam: float = DEFAULT_LAM,
              alpha: float = DEFAULT_ALPHA, eps: float = DEFAULT_EPS, log=print) -> RoiSet:  # fmt: skip
    """Preprocesses (or loads from the cache) every readable input and cuts its two ROIs."""
    params = {"lam": lam, "alpha": alpha, "eps": eps, "roi_size": roi_size, "version": 1}
    xps, ys, owners, sources = [], [], [], []
    for f in discover(inputs):
        try:
            d = _preprocessed(f.path, cache_dir, params, f.photometric)
        except (ImageReadError, ValueError, OSError) as exc:
            log(f"skipped: {exc}")
            continue
        for box in (Box(*b) for b in d["boxes"]):
            xps.append(_crop(d["xp"], box, roi_size))
            ys.append(_crop(d["y"], box, roi_size))
            owners.append(len(sources))
        sources.append(f.path)
    if not sources:
        raise ValueError("no readable training image among the inputs")
    return RoiSet(torch.stack(xps), torch.stack(ys), torch.tensor(owners), sources)


def split_by_image(n_images: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and validation image indices (validation empty when there are fewer than 2 images)."""
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(val_fraction * n_images)) if n_images > 1 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and n_images > 1 else 0), n_images - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def shift_augment(xp: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random shift (up to 1/16 of the size, reflect-filled) for each pair of a batch."""
    s = xp.shape[-1]
    m = max(1, s // 16)
    out_x, out_y = torch.empty_like(xp), torch.empty_like(y)
    shifts = torch.randint(-m, m + 1, (xp.shape[0], 2), generator=generator)
    for i, (di, dj) in enumerate(shifts.tolist()):
        pad = (m, m, m, m)
        px = F.pad(xp[i : i + 1], pad, mode="reflect")
        py = F.pad(y[i : i + 1], pad, mode="reflect")
        out_x[i] = px[0, :, m + di : m + di + s, m + dj : m + dj + s]
        out_y[i] = py[0, :, m + di : m + di + s, m + dj : m + dj + s]
    return out_x, out_y


def random_patches(xp: torch.Tensor, y: torch.Tensor, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``size``-square window of each pair (same place in xp and y), at the ROI's own scale.

    Training on patches keeps the pixel scale of inference (the network is fully convolutional)
    while making each step cheaper: the CPU-trained default model uses it.
    """
    s = xp.shape[-1]
    if size >= s:
        return xp, y
    corners = torch.randint(0, s - size + 1, (xp.shape[0], 2), generator=generator).tolist()
    out_x = torch.stack([xp[i, :, a : a + size, b : b + size] for i, (a, b) in enumerate(corners)])
    out_y = torch.stack([y[i, :, a : a + size, b : b + size] for i, (a, b) in enumerate(corners)])
    return out_x, out_y
