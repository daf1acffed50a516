"""How far an image's enhanced output moves when one setting of the job changes, as a RESULTS.md
table: the figures docs/guide/enhancing.md's Reproducible section quotes, so that anyone can
check them on their own machine and redo them after a change.

    python bench/backend_agreement.py [IMAGE ...] [--mode full] [--skip compile] [--json FILE]

The reference is an Enhancer of the default model on the CPU as `xvertfast enhance` makes it
(backend torch, --batch-size 8, fp32, spine mode unless --mode full) run on this process's thread
count; the variants run in the reference's mode. Each variant changes one thing: --batch-size 1, another thread count (torch.set_num_threads, set
before every run, so the reference and the variant run in this one process), --backend
onnxruntime, --backend compile (minutes on a CPU: --skip compile) or --precision bf16. "the
reference again" reruns the reference itself: any difference there is noise, not the setting.

For each image and variant: the largest |difference| of the float output on the [0, 1] scale
(Enhancer.enhance) and its mean over the whole image, and how many pixels of the 8-bit PNG
`xvertfast enhance` writes differ, by how many grey levels at most (the PNG written by
write_image as png8 and read back, so its rounding is the CLI's).

IMAGE is a path or a file name in cxr-dev (XVF_CXR_DEV, else ../shared/data/cxr-dev beside
the repository); default: three cxr-dev images of two sources. An image or a variant that
fails is a row saying why, and the exit status is then 1. So is a variant the library refuses
on this machine (--precision bf16 on a CPU without bf16, --backend onnxruntime without
onnxruntime installed: "not measured", in the refusal's own words; the other variants are still
measured; --skip it for a table with no gap).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.report import heading  # noqa: E402
from bench.wls_inputs import DATA  # noqa: E402

#: Two NIH images (1024^2, 8-bit; the first is where earlier audits saw the largest moves) and a
#: Hannover one (640 x 601, another scanner and provider processing).
DEFAULT_IMAGES = ("nih_00000574_000.png", "nih_00011585_000.png", "hmh-covid_2c35005f.png")

#: The variants --skip can leave out, each with the one Enhancer setting it changes.
VARIANTS = {"batch-size": {"batch_size": 1}, "threads": {}, "onnxruntime": {"backend": "onnxruntime"},
            "compile": {"backend": "compile"}, "bf16": {"precision": "bf16"}}  # fmt: skip


def resolve_image(name: str) -> str:
    """A path as given where it exists, else the file of that name in cxr-dev."""
    if os.path.exists(name) or os.sep in name:
        return name
    return os.path.join(DATA, name)


def png8(pixels: np.ndarray, rad, folder: str) -> np.ndarray:
    """The 8-bit PNG `xvertfast enhance` writes of these pixels, as its grey levels: written by
    write_image itself (its clipping and rounding, not a copy of them) and read back."""
    from PIL import Image

    from xvertfast.io import write_image

    path = write_image(os.path.join(folder, "out.png"), pixels, "png8", like=rad, overwrite=True)
    with Image.open(path) as im:
        return np.asarray(im).astype(np.int16)


def compare(reference: np.ndarray, ref8: np.ndarray, other: np.ndarray, other8: np.ndarray) -> dict:
    """The float output's largest move, and the 8-bit output's pixels that differ and by how much."""
    if reference.shape != other.shape:
        raise ValueError(f"output shape {other.shape}, the reference's {reference.shape}")
    levels = np.abs(ref8 - other8)
    moved = np.abs(reference.astype(np.float64) - other.astype(np.float64))
    return {"max_abs": float(moved.max()), "mean_abs": float(moved.mean()),
            "pixels_8bit": int(np.count_nonzero(levels)), "max_levels": int(levels.max())}  # fmt: skip


def table(rows: list[dict]) -> str:
    """The Markdown table: a row per image and variant; a failed or unmeasured one says why in the
    last column."""
    lines = ["| image | variant | max abs difference ([0, 1]) | mean abs difference (whole image) | 8-bit pixels differing | "
             "by at most (grey levels) |", "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['image']} | {r['variant']} | - | - | - | failed: {r['error']} |")
        elif "not_measured" in r:
            lines.append(f"| {r['image']} | {r['variant']} | - | - | - | not measured: {r['not_measured']} |")
        else:
            lines.append(f"| {r['image']} | {r['variant']} | {r['max_abs']:.2g} | {r['mean_abs']:.2g} | "
                         f"{r['pixels_8bit']} | {r['max_levels']} |")  # fmt: skip
    return "\n".join(lines)


def _problem(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _refused(exc: BaseException) -> bool:
    """Whether the library refused to make a variant on this machine, rather than failed: its argument
    checks' ValueError (bf16 on a CPU without it), or an optional package that is not installed or
    usable (MissingDependency: onnxruntime). Anything else is a bug."""
    from xvertfast.infer.export import MissingDependency

    return isinstance(exc, (ValueError, MissingDependency))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", metavar="IMAGE",
                    help=f"images, as paths or cxr-dev file names (default: {' '.join(DEFAULT_IMAGES)})")  # fmt: skip
    ap.add_argument("--model", default="default", help="model folder (default: the shipped model)")
    ap.add_argument("--mode", choices=("spine", "full"), default="spine",
                    help="the mode of the reference and every variant (default: %(default)s; full tiles the whole "
                         "image, so many more tiles go through the network)")  # fmt: skip
    ap.add_argument("--batch-size", type=int, default=8,
                    help="the reference's batch size, 2 or more (default: %(default)s, the CLI's)")  # fmt: skip
    ap.add_argument("--threads", type=int,
                    help="the thread count of the threads variant (default: 1, or 2 where this process runs on 1)")
    ap.add_argument("--skip", nargs="+", default=[], choices=sorted(VARIANTS), metavar="VARIANT",
                    help=f"variants to leave out, of {', '.join(VARIANTS)} (compile takes minutes on a CPU)")
    ap.add_argument("--json", metavar="FILE", help="also write the rows, the heading and the settings as JSON")
    args = ap.parse_args()
    import torch

    if args.batch_size < 2:
        ap.error(f"--batch-size {args.batch_size}: the reference runs 2 or more tiles a call (--batch-size 1 is a "
                 "variant: oneDNN runs a lone tile with other kernels)")  # fmt: skip
    ref_threads = torch.get_num_threads()
    threads = args.threads or (2 if ref_threads == 1 else 1)
    if threads < 1 or threads == ref_threads:
        ap.error(f"--threads {threads}: a whole number >= 1 other than this process's {ref_threads}")
    title = heading("backend_agreement.py")  # (before any run changes the thread count it names)

    from xvertfast.infer import Enhancer
    from xvertfast.io import read_image

    with tempfile.TemporaryDirectory() as scratch:
        reference = Enhancer(args.model, device="cpu", backend="torch", batch_size=args.batch_size, precision="fp32",
                             cache_dir=scratch, mode=args.mode)  # fmt: skip
        # the variants share the reference's model (already loaded) and differ from it by one setting
        base = {"device": "cpu", "backend": "torch", "batch_size": args.batch_size, "precision": "fp32",
                "cache_dir": scratch, "mode": args.mode}  # fmt: skip
        variants = [("the reference again", reference, ref_threads)]
        for key, change in VARIANTS.items():
            if key in args.skip:
                continue
            if key == "threads":
                variants.append((f"{threads} thread{'s' * (threads > 1)} (reference {ref_threads})", reference, threads))
                continue
            setting = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in change.items())
            try:
                variants.append((setting, Enhancer(reference.model, **{**base, **change}), ref_threads))
            except Exception as exc:  # a row per image says why: refused here (bf16 on a CPU without it,
                # onnxruntime not installed) or failed (a bug: not to be read as this machine's refusal)
                variants.append((setting, {"not_measured" if _refused(exc) else "error": _problem(exc)}, ref_threads))

        def run(enhancer, n_threads: int, rad) -> np.ndarray:
            torch.set_num_threads(n_threads)
            try:
                return enhancer.enhance(rad).pixels
            finally:
                torch.set_num_threads(ref_threads)

        rows = []
        for name in args.images or DEFAULT_IMAGES:
            path = resolve_image(name)
            label = os.path.basename(path)
            try:
                rad = read_image(path)
                ref = run(reference, ref_threads, rad)
                ref8 = png8(ref, rad, scratch)
            except Exception as exc:  # the next image is measured all the same
                rows.append({"image": label, "variant": "reference", "error": _problem(exc)})
                print(f"{label}: {rows[-1]['error']}", file=sys.stderr, flush=True)
                continue
            for variant, enhancer, n_threads in variants:
                if isinstance(enhancer, dict):  # not made: refused or failed, as it says
                    rows.append({"image": label, "variant": variant, **enhancer})
                    gap = enhancer.get("error") or f"not measured: {enhancer['not_measured']}"
                    print(f"{label}, {variant}: {gap}", file=sys.stderr, flush=True)
                    continue
                try:
                    out = run(enhancer, n_threads, rad)
                    row = {"image": label, "variant": variant, **compare(ref, ref8, out, png8(out, rad, scratch))}
                except Exception as exc:  # (its export or run failed: the other variants still run)
                    row = {"image": label, "variant": variant, "error": _problem(exc)}
                rows.append(row)
                print(f"{label}, {variant}: " + (row.get("error") or f"{row['max_abs']:.2g}, "
                      f"{row['pixels_8bit']} pixels by up to {row['max_levels']}"), file=sys.stderr, flush=True)  # fmt: skip
    print(f"\n{title}\n")
    print(table(rows))
    if args.json:
        settings = {"model": args.model, "mode": args.mode, "batch_size": args.batch_size, "threads": ref_threads,
                    "variant_threads": threads, "skipped": args.skip}  # fmt: skip
        part = args.json + ".part"
        with open(part, "w") as f:
            json.dump({"heading": title, "reference": settings, "rows": rows}, f, indent=1)
        os.replace(part, args.json)  # (a run stopped while writing leaves no half a file under the name)
    return 1 if any("error" in r or "not_measured" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
