"""Where a WLS solve's time goes: setup, one V-cycle, the whole solve, per image.

    python bench/wls_parts.py [IMAGE ...]     # default: 1024^2 noise and two NIH images

Best of several runs each, with the solver's own pieces (``torch.ops.xvertfast.wls_setup``
and ``wls_apply``), on the threads torch uses. Used in bench/RESULTS.md to compare builds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import xvertfast.ops  # noqa: E402, F401  (registers the ops)
from bench.report import heading  # noqa: E402
from bench.wls_inputs import DATA, PARAMS  # noqa: E402
from xvertfast.io import read_image  # noqa: E402

DEFAULT = ["noise", "nih_00000574_000.png", "nih_00014998_000.png"]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", default=DEFAULT,
                        help="cxr-dev file names (or paths), or 'noise' for 1024^2 uniform noise")  # fmt: skip
    args = parser.parse_args()
    print(f"{heading('wls_parts.py')}\n")
    print("| image | setup (s) | one V-cycle (ms) | solve (s) | iterations |")
    print("|---|---:|---:|---:|---:|")
    for name in args.images:
        if name == "noise":
            x = torch.rand(1, 1024, 1024)
        else:
            path = name if os.path.exists(name) else os.path.join(DATA, name)
            x = torch.from_numpy(read_image(path).pixels)[None].contiguous()
        ws = torch.ops.xvertfast.wls_setup(x, *PARAMS)
        t_setup = best(lambda: torch.ops.xvertfast.wls_setup(x, *PARAMS), 3)
        t_cycle = best(lambda: torch.ops.xvertfast.wls_apply(ws, x, True), 5)
        t_solve = best(lambda: xvertfast.wls(x[0]), 3)
        _, info = xvertfast.wls(x[0], return_info=True)
        print(f"| {os.path.basename(name)} | {t_setup:.3f} | {t_cycle * 1e3:.0f} | {t_solve:.2f} | {info.iterations[0]} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
