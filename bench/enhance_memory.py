"""The memory of a long `xvertfast enhance` job: does it stay flat over hundreds of images?

    python bench/enhance_memory.py [--count 200] [--workers 1] [--plot memory.png] [--json run.json]
    python bench/enhance_memory.py --samples run.json      # the table again from a run's saved samples

A job over tens of thousands of radiographs runs for hours, so memory that grows by even a
megabyte an image (a cache that never evicts, malloc fragmentation from images of many sizes)
ends in the out-of-memory killer. This runs the CLI on ``count`` radiographs of varied sizes,
aspect ratios and bit depths (the cxr-dev NIH images resized: 0.4 to 3.6 megapixels, 8- and
16-bit PNGs), samples the process's anonymous resident memory (``RssAnon``, what the OOM
killer counts; not the page cache) every 0.2 s against the number of images its ledger records
as done, and prints a table: memory after 10% ... 100% of the images, the peak, and the growth
per 100 images fitted over the second half of the job (after warm-up); then the range and the
means over the rest of the job after its first 10%. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.enhance_inputs import make_model  # noqa: E402
from bench.report import anonymous_mb, heading  # noqa: E402
from bench.wls_inputs import radiograph  # noqa: E402
from xvertfast.io.job_folder import LEDGER_FILE  # noqa: E402


def make_varied_folder(folder: str, count: int, rows: tuple[int, int] = (700, 1800), seed: int = 0) -> list[tuple[int, int]]:
    """``count`` PNGs of random sizes (``rows``, aspect 0.75-1.35, at most 2000 columns),
    every third 16-bit."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    shapes = []
    for k in range(count):
        h = int(rng.integers(rows[0], rows[1] + 1))
        w = int(min(round(h * rng.uniform(0.75, 1.35)), 2000))
        img = Image.fromarray(radiograph(1024, k)).resize((w, h), Image.BILINEAR)
        x = np.clip(np.asarray(img, dtype=np.float32), 0, 1)
        pixels = np.round(x * 4095).astype(np.uint16) if k % 3 == 2 else np.round(x * 255).astype(np.uint8)
        Image.fromarray(pixels).save(os.path.join(folder, f"cxr{k:04d}.png"))
        shapes.append((h, w))
    return shapes


def done_count(ledger: str) -> int:
    try:
        with open(ledger) as f:
            return sum('"state": "done"' in line for line in f)
    except OSError:
        return 0


def run(src: str, out: str, model: str, workers: int) -> list[tuple[float, int, float]]:
    """(seconds, images done, RssAnon MB) samples of one CLI job."""
    cmd = [sys.executable, "-m", "xvertfast", "enhance", src, "-o", out, "--model", model, "--device", "cpu",
           "--format", "png16", "--workers", str(workers), "-q"]  # fmt: skip
    ledger = os.path.join(out, LEDGER_FILE)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    start, samples = time.perf_counter(), []
    while proc.poll() is None:
        try:
            samples.append((time.perf_counter() - start, done_count(ledger), anonymous_mb(proc.pid)))
        except (OSError, StopIteration):  # the process has just ended
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"enhance failed ({proc.returncode}):\n{stdout}\n{stderr}")
    print(stdout.strip(), file=sys.stderr)
    return samples


def summarise(samples: list[tuple[float, int, float]], count: int) -> dict:
    if not samples:
        raise SystemExit("the job ended before the first memory sample (0.2 s): give it more images")
    done = np.array([s[1] for s in samples])
    mb = np.array([s[2] for s in samples])
    at = {}
    for share in (0.1, 0.25, 0.5, 0.75, 1.0):
        reached = mb[done >= max(1, int(round(share * count)))]
        at[share] = float(reached[0]) if len(reached) else float("nan")
    half = (done >= count // 2) & (done < count)  # (at the count, the process is already tearing down)
    # growth per 100 images over the second half: the last sample of each image count, fitted
    xs, ys = [], []
    for n in sorted(set(done[half].tolist())):
        xs.append(n)
        ys.append(float(mb[done == n][-1]))
    slope = float(np.polyfit(xs, ys, 1)[0]) * 100 if len(xs) >= 3 else float("nan")
    # after warm-up (the first 10% of the images), up to the last image: the band and its level by thirds
    settled = (done >= max(1, int(round(0.1 * count)))) & (done < count)
    thirds = [part for part in np.array_split(np.unique(done[settled]), 3) if len(part)]
    return {"at": at, "peak": float(mb.max()), "slope_per_100": slope, "seconds": samples[-1][0],
            "settled_range": [float(mb[settled].min()), float(mb[settled].max())] if settled.any() else [],
            "settled_means": [[int(part[0]), int(part[-1]), float(mb[np.isin(done, part)].mean())] for part in thirds]}


def plot(samples, path: str, title: str) -> None:
    from xvertfast._plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([s[1] for s in samples], [s[2] for s in samples], lw=1)
    ax.set_xlabel("images done")
    ax.set_ylabel("RssAnon (MB)")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def measure(count: int, workers: int, rows: tuple[int, int] = (700, 1800)):
    """(samples, summary, shapes) of one job over ``count`` new images."""
    with tempfile.TemporaryDirectory(prefix="xvf-mem-") as tmp:
        shapes = make_varied_folder(os.path.join(tmp, "in"), count, rows)
        model = make_model(tmp)
        samples = run(os.path.join(tmp, "in"), os.path.join(tmp, "out"), model, workers)
    return samples, summarise(samples, count), shapes


def print_table(s: dict) -> None:
    print("| images done | 10% | 25% | 50% | 75% | 100% | peak | growth over the second half |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    at = " | ".join(f"{s['at'][k]:.0f}" for k in (0.1, 0.25, 0.5, 0.75, 1.0))
    slope = s["slope_per_100"]
    growth = "none: too few images to fit" if np.isnan(slope) else f"{slope:+.1f} MB per 100 images"
    print(f"| RssAnon (MB) | {at} | {s['peak']:.0f} | {growth} |")
    if s["settled_range"]:
        means = ", ".join(f"{mean:.0f} MB over images {first}-{last}" for first, last, mean in s["settled_means"])
        print(f"\nafter the first 10% of the images: {s['settled_range'][0]:.0f}-{s['settled_range'][1]:.0f} MB; "
              f"mean {means}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="images in the job (default: 200)")
    parser.add_argument("--workers", type=int, default=1, help="enhance --workers (default: 1)")
    parser.add_argument("--plot", metavar="PNG", help="also draw memory against images done into this PNG")
    parser.add_argument("--json", metavar="FILE", help="also write the samples and summary as JSON")
    parser.add_argument("--samples", metavar="FILE", help="run nothing: the table of a run's samples saved by --json")
    args = parser.parse_args()
    if args.samples:
        with open(args.samples) as f:
            saved = json.load(f)
        samples, shapes = [tuple(x) for x in saved["samples"]], [tuple(x) for x in saved["shapes"]]
        print(f"{len(shapes)} images, from {args.samples}\n")
        print_table(summarise(samples, len(shapes)))
        return 0
    if not sys.platform.startswith("linux"):
        raise SystemExit("enhance_memory.py reads /proc: Linux only")
    samples, s, shapes = measure(args.count, args.workers)
    mpx = [h * w / 1e6 for h, w in shapes]
    print(heading("enhance_memory.py"))
    print(f"{args.count} images, {min(mpx):.2f}-{max(mpx):.2f} Mpx (mean {np.mean(mpx):.2f}), --workers "
          f"{args.workers}, {s['seconds']:.0f} s\n")  # fmt: skip
    print_table(s)
    if args.plot:
        plot(samples, args.plot, f"xvertfast enhance, {args.count} images of varied sizes, --workers {args.workers}")
        print(f"\nplot: {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples": samples, "summary": s, "shapes": shapes}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
