"""Time and size of the PNG outputs of `xvertfast enhance` at several zlib levels, as a RESULTS.md table.

    python bench/png_levels.py [--count 6] [--size 1024] [--levels 6 4 3 1] [--rounds 3]

The images are enhanced outputs (the default model, spine mode, CPU) of the cxr-dev NIH images,
encoded as write_image encodes them (Pillow, 16-bit and 8-bit), every level once per image in
each round, so a load on the machine falls on all levels alike. Time: the median per image;
size: the mean per image. Every level's file decodes to the same values (checked).
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.enhance_inputs import make_model  # noqa: E402
from bench.report import heading  # noqa: E402
from bench.wls_inputs import radiograph  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=6, help="images (default: %(default)s)")
    ap.add_argument("--size", type=int, default=1024, help="their side in pixels (default: %(default)s)")
    ap.add_argument("--levels", type=int, nargs="+", default=[6, 4, 3, 1], help="zlib levels (default: 6 4 3 1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds over all levels (default: %(default)s)")
    args = ap.parse_args()
    import tempfile

    from PIL import Image

    from xvertfast.infer import Enhancer
    from xvertfast.io.write import PNG_COMPRESS_LEVEL

    with tempfile.TemporaryDirectory() as root:
        enhancer = Enhancer(make_model(root), device="cpu")
    outputs = [enhancer.enhance(radiograph(args.size, k)).pixels.astype(np.float64) for k in range(args.count)]
    seconds, sizes = collections.defaultdict(list), collections.defaultdict(list)
    for _ in range(args.rounds):
        for bits, dtype in ((16, np.uint16), (8, np.uint8)):
            for level in args.levels:
                for out in outputs:
                    values = np.round(out * ((1 << bits) - 1)).astype(dtype)
                    buffer = io.BytesIO()
                    t0 = time.perf_counter()
                    Image.fromarray(values).save(buffer, format="PNG", compress_level=level)
                    seconds[bits, level].append(time.perf_counter() - t0)
                    sizes[bits, level].append(len(buffer.getvalue()))
                    buffer.seek(0)
                    assert np.array_equal(np.asarray(Image.open(buffer)), values), f"level {level}: values differ"
    print(f"\n{heading('png_levels.py')}\n")
    print("| bits | zlib level | encode (ms, median) | size (KB, mean) | time vs level 6 | size vs level 6 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for bits, level in seconds:
        t, s = np.median(seconds[bits, level]), np.mean(sizes[bits, level])
        t6, s6 = np.median(seconds.get((bits, 6), [np.nan])), np.mean(sizes.get((bits, 6), [np.nan]))
        mark = " (write_image)" if level == PNG_COMPRESS_LEVEL else ""
        print(f"| {bits} | {level}{mark} | {1000 * t:.0f} | {s / 1024:.0f} | {t / t6:.2f} | {s / s6:.3f} |")


if __name__ == "__main__":
    main()
