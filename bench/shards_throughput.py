"""Images/s of `xvertfast enhance` as N shards at once (``--shard K/N``, each on CPUS/N threads)
against one job on all the threads, both through the CLI, as a RESULTS.md table row.

    python bench/shards_throughput.py [--shards 2] [--count 24] [--size 1024] [--rounds 2]

On a CPU the WLS solves use two threads less than twice as well as one (bench/RESULTS.md, WLS
section), so shards that each take fewer threads may go faster together; this measures it.
Both sides start their processes (torch's import, the model's load) inside the timing, as a
user's job does. The rounds alternate the two sides. The shards' outputs are compared with the
one job's: with other thread counts they may differ in the last bits (the network's kernels
split their sums by thread), so the table says how many pixels differ, and by how much.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.enhance_inputs import make_folder, make_model  # noqa: E402
from bench.report import heading  # noqa: E402


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def start_enhance(src: str, out: str, model: str, threads: int, shard: str | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "xvertfast", "enhance", src, "-o", out, "--model", model, "--device", "cpu",
           "--format", "png8", "-q"]  # fmt: skip
    if shard is not None:
        cmd += ["--shard", shard]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_all(procs: list[subprocess.Popen]) -> list[str]:
    lines = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"enhance failed ({proc.returncode}): {err}")
        lines.append(out.splitlines()[0])
    return lines


def count_differences(paths: list[str], dir_a: str, dir_b: str) -> tuple[int, int]:
    from PIL import Image

    pixels, worst = 0, 0
    for path in paths:
        name = os.path.basename(path)
        with Image.open(os.path.join(dir_a, name)) as a, Image.open(os.path.join(dir_b, name)) as b:
            diff = np.abs(np.asarray(a, np.int64) - np.asarray(b, np.int64))
        pixels, worst = pixels + int((diff > 0).sum()), max(worst, int(diff.max()))
    return pixels, worst


def table(setting: str, images: int, t_one: float, t_shards: float, shards: str, differing: int, worst: int) -> str:
    """The Markdown table of one run: images/s of the one job (the reference) and of the shards
    together, and the shards' speed-up over the one job: its time over theirs."""
    return "\n".join([
        f"| setting | one job (images/s) | {shards} (images/s) | speed-up of the shards | outputs vs the one job's |",
        "|---|---:|---:|---:|---|",
        f"| {setting} | {images / t_one:.2f} | {images / t_shards:.2f} | {t_one / t_shards:.2f}x "
        f"| {differing} pixels differ, by <= {worst} grey level(s) |",
    ])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=2, help="shards run at once, CPUS/N threads each (default: %(default)s)")
    ap.add_argument("--count", type=int, default=24, help="images (cxr-dev NIH, resized; default: %(default)s)")
    ap.add_argument("--size", type=int, default=1024, help="their side in pixels (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of both sides, alternating; best taken (default: %(default)s)")
    args = ap.parse_args()
    cpus = _cpus()
    per_shard = max(1, cpus // args.shards)
    with tempfile.TemporaryDirectory() as root:
        src = os.path.join(root, "in")
        paths = make_folder(src, args.count, args.size)
        model = make_model(root)
        one, sharded, splits = [], [], None
        for r in range(args.rounds):
            whole = os.path.join(root, f"whole{r}")
            t0 = time.perf_counter()
            wait_all([start_enhance(src, whole, model, cpus)])
            one.append(time.perf_counter() - t0)
            parts = os.path.join(root, f"shards{r}")
            t0 = time.perf_counter()
            lines = wait_all([start_enhance(src, parts, model, per_shard, f"{k}/{args.shards}")
                           for k in range(1, args.shards + 1)])  # fmt: skip
            sharded.append(time.perf_counter() - t0)
            splits = [line.split("(")[1].split(" ")[0] for line in lines]
            print(f"round {r + 1}: one job {one[-1]:.1f} s, {args.shards} shards {sharded[-1]:.1f} s", flush=True)
        differing, worst = count_differences(paths, whole, parts)
    setting = f"{len(paths)} x {args.size}^2, {cpus} CPUs; one job on {cpus} threads; shards' images {'/'.join(splits)}"
    shards = f"{args.shards} shards at once, {per_shard} thread(s) each"
    print(f"\n{heading('shards_throughput.py')}; best of {args.rounds} round(s)\n")
    print(table(setting, len(paths), min(one), min(sharded), shards, differing, worst))

if __name__ == "__main__":
    main()
