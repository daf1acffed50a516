"""How much memory training data takes: anonymous memory (not the reclaimable page cache) of
epochs of batches read from a memory-mapped set of ROI pairs, against the set's own size.

    python bench/train_data_memory.py [--rois 600] [--size 512] [--epochs 2]

Before the set was memory-mapped, training held all of it in memory, and the train/validation
split copied it once more; the figure printed here is what is left of that.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.report import anonymous_mb  # noqa: E402
from xvertfast.train.data import RoiSet, open_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rois", type=int, default=600, help="ROI pairs in the set (default: %(default)s)")
    ap.add_argument("--size", type=int, default=512, help="their side in pixels (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of batches read (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=8, help="ROI pairs per batch (default: %(default)s)")
    args = ap.parse_args()
    n, s = args.rois, args.size
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pairs.npy")
        pairs = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 2, s, s))
        for k in range(0, n, 50):
            pairs[k : k + 50] = np.random.default_rng(k).random((min(50, n - k), 2, s, s), dtype=np.float32)
        pairs.flush()
        del pairs
        before = anonymous_mb()
        data = RoiSet(open_pairs(path), torch.arange(n), torch.arange(n) // 2, [path] * ((n + 1) // 2))
        train = data.subset(list(range(0, int(0.8 * n / 2))))
        gen = torch.Generator().manual_seed(0)
        for _ in range(args.epochs):
            for idx in torch.randperm(len(train), generator=gen).split(args.batch_size):
                xp, y = train.batch(idx)
        del xp, y
        grown = anonymous_mb() - before
    size_mb = n * 2 * s * s * 4 / 2**20
    print(f"{n} ROI pairs at {s}^2 ({size_mb:.0f} MB on disk), {args.epochs} epochs of batches of "
          f"{args.batch_size}: anonymous memory +{grown:.0f} MB ({grown / size_mb:.1%} of the set)")  # fmt: skip


if __name__ == "__main__":
    main()
