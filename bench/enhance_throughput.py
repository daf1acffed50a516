"""Images/s of the pipelined batch job vs the naive sequential loop, as a RESULTS.md table row.

    python bench/enhance_throughput.py [--count 8] [--size 1024] [--device auto] [--backend torch]
                                       [--precision auto]

The process is set up as the CLI sets up its own (xvertfast.runtime.tune_allocator; XVF_MALLOC_TUNE=0
leaves malloc alone), so the figures are what `xvertfast enhance` users see. --workers defaults to
what `xvertfast enhance` uses (default_workers(): half the CPUs, 1 to 4; 1 on 2 cores); RESULTS.md's
tables name it. The run fails unless the pipeline's outputs equal the sequential loop's, pixel
for pixel.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.enhance_inputs import COUNT, SIZE, assert_same_outputs, make_folder, make_model, sequential  # noqa: E402
from bench.report import heading  # noqa: E402
from xvertfast.infer import Enhancer  # noqa: E402
from xvertfast.infer.backends import BACKENDS  # noqa: E402


def table(setting: str, images: int, t_pipelined: float, t_sequential: float) -> str:
    """The Markdown table of one run: images/s each way, and the pipeline's speed-up over the
    sequential loop (the reference): the loop's time over the pipeline's."""
    return "\n".join([
        "| setting | pipelined (images/s) | sequential (images/s) | speed-up |",
        "|---|---:|---:|---:|",
        f"| {setting} | {images / t_pipelined:.2f} | {images / t_sequential:.2f} | {t_sequential / t_pipelined:.2f}x |",
    ])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=COUNT, help="images (cxr-dev NIH, resized; default: %(default)s)")
    ap.add_argument("--size", type=int, default=SIZE, help="their side in pixels (default: %(default)s)")
    ap.add_argument("--device", default="auto", help="as xvertfast enhance --device (default: %(default)s)")
    ap.add_argument("--backend", choices=BACKENDS, default="torch",
                    help="as xvertfast enhance --backend (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=None, help="default: as xvertfast enhance (default_workers)")
    ap.add_argument("--batch-size", type=int, default=8, help="ROI tiles per network call (default: %(default)s)")
    ap.add_argument("--precision", default="auto", help="as xvertfast enhance --precision (default: %(default)s)")
    args = ap.parse_args()
    from xvertfast.infer.batch import default_workers
    from xvertfast.runtime import tune_allocator

    args.workers = default_workers() if args.workers is None else args.workers
    print(f"malloc tuned as in the CLI: {tune_allocator()}")
    with tempfile.TemporaryDirectory() as root:
        paths = make_folder(os.path.join(root, "in"), args.count, args.size)
        enhancer = Enhancer(make_model(root), device=args.device, backend=args.backend, batch_size=args.batch_size,
                            precision=args.precision)  # fmt: skip
        sequential(enhancer, paths[:1], os.path.join(root, "warm"))  # first-call costs out of both timings
        t0 = time.perf_counter()
        sequential(enhancer, paths, os.path.join(root, "seq"))
        t_seq = time.perf_counter() - t0
        out = os.path.join(root, "pipe")
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        summary = enhancer.enhance_files([os.path.join(root, "in")], out, fmt="png8", workers=args.workers,
                                         progress=False)  # fmt: skip
        t_pipe = time.perf_counter() - t0
        assert summary.done == len(paths), summary.line()
        assert_same_outputs(paths, os.path.join(root, "seq"), out)
    precision = "" if args.precision == "auto" else f", precision {args.precision}"
    setting = (f"{len(paths)} x {args.size}^2, {enhancer.device}, {enhancer.backend.name}, batch {args.batch_size}, "
               f"workers {args.workers}{precision}")  # fmt: skip
    print(f"\n{heading('enhance_throughput.py')}\n")
    print(table(setting, len(paths), t_pipe, t_seq))

if __name__ == "__main__":
    main()
