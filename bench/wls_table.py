"""Times the WLS solvers side by side and prints a Markdown table for bench/RESULTS.md.

    python bench/wls_table.py [--sizes 512 1024 2048] [--baselines 1024]
    python bench/wls_table.py --device cuda --sizes 1024 2048 [--batch 8]

For each size: xvertfast's CPU solver (best of 3, iterations, error against
the SciPy direct solve, peak extra memory per pixel: the rise of the peak
resident set during one solve in a fresh subprocess, output included) and, at the baseline sizes, SciPy spsolve and pyamg RS-AMG-PCG
on the same image, with the speed-up of xvertfast over each.
"""

from __future__ import annotations

import argparse
import datetime
import os

# BLAS worker threads spin after NumPy calls and steal the two cores from the solver.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import platform
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.wls_inputs import PARAMS, pyamg_solve, radiograph, scipy_direct  # noqa: E402
from xvertfast import wls  # noqa: E402

MEMORY_PROBE = """
import sys
sys.path.insert(0, {root!r})
from bench.wls_inputs import radiograph
from xvertfast import wls

def rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

x = radiograph({size})
wls(x[:64, :64], method="cpu")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
before = rss_kib("VmRSS:")
wls(x, method="cpu")
print((rss_kib("VmHWM:") - before) * 1024 / x.size)
"""


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bytes_per_pixel(size: int) -> float:
    code = MEMORY_PROBE.format(root=os.path.dirname(HERE), size=size)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def all_images() -> None:
    import glob

    from PIL import Image

    from bench.wls_inputs import DATA

    print("| image | size | xvertfast cpu (s) | iterations | relative residual |")
    print("|---|---|---:|---:|---:|")
    for path in sorted(glob.glob(os.path.join(DATA, "*.png"))):
        x = np.asarray(Image.open(path), dtype=np.float32)
        x = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
        t, (_, info) = timed(lambda: wls(x, method="cpu", return_info=True), 2)
        print(f"| {os.path.basename(path)} | {x.shape[1]}x{x.shape[0]} | {t:.3f} | {info.iterations[0]} "
              f"| {info.residual[0]:.1e} |", flush=True)  # fmt: skip


def gpu_table(sizes: list[int], batch: int) -> None:
    """The native CUDA solver and the cupy-driven CG on a batch, against cupyx Jacobi-CG on one image."""
    import cupy as cp

    from bench.wls_inputs import cupy_jacobi_cg, cupy_jacobi_system

    def sync_timed(fn, repeat):
        def run():
            out = fn()
            torch.cuda.synchronize()
            cp.cuda.Device().synchronize()
            return out

        run()  # warm-up (kernel loading, allocator)
        return timed(run, repeat)

    print(f"\nGPU: {torch.cuda.get_device_name()}; torch {torch.__version__}; cupy {cp.__version__}; "
          f"{datetime.date.today().isoformat()}; `python bench/wls_table.py --device cuda`\n")  # fmt: skip
    print(f"| size | xvertfast cuda, batch of {batch} (ms per image) | of which setup | iterations "
          f"| rel. error vs direct | xvertfast cupy-driven CG, batch of {batch} (ms per image) "
          "| cupyx Jacobi-CG (ms per image) | its iterations | speed-up (cuda vs cupyx) |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for size in sizes:
        xs = torch.stack([torch.from_numpy(radiograph(size, k)) for k in range(batch)]).cuda()
        t_x, (g, info) = sync_timed(lambda: wls(xs, method="cuda", return_info=True), 3)
        # the setup alone (weights, hierarchy, plateau labelling), its workspace included
        t_s, _ = sync_timed(lambda: torch.ops.xvertfast.wls_setup(xs, *PARAMS), 3)
        g0 = g[0].cpu().numpy()
        ref = scipy_direct(xs[0].cpu().numpy())
        err = float(np.linalg.norm(g0 - ref) / np.linalg.norm(ref))
        t_p, _ = sync_timed(lambda: wls(xs, method="cupy"), 3)
        system = cupy_jacobi_system(xs[0].cpu().numpy())
        t_c, (_, its) = sync_timed(lambda: cupy_jacobi_cg(system), 1)
        per = t_x / batch
        print(f"| {size}x{size} | {per * 1e3:.2f} | {t_s / batch * 1e3:.2f} | {min(info.iterations)}-{max(info.iterations)} | {err:.1e} "
              f"| {t_p / batch * 1e3:.2f} | {t_c * 1e3:.1f} | {its} | {t_c / per:.1f}x |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--baselines", type=int, nargs="*", default=[1024])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: the GPU table (xvertfast's CUDA solver vs cupyx Jacobi-CG)")
    parser.add_argument("--batch", type=int, default=8, help="images per GPU batch (--device cuda)")
    parser.add_argument("--all-images", action="store_true",
                        help="instead: every cxr-dev image at its native size (time, iterations)")
    args = parser.parse_args()
    if args.all_images:
        all_images()
        return
    if args.device == "cuda":
        gpu_table(args.sizes, args.batch)
        return

    print(f"\nCPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
          f"torch {torch.__version__}; {datetime.date.today().isoformat()}; `python bench/wls_table.py`\n")  # fmt: skip
    print("| size | xvertfast cpu (s) | iterations | rel. error vs direct | extra memory (B/px) "
          "| scipy spsolve (s) | pyamg RS-PCG (s) | speed-up vs spsolve | speed-up vs pyamg |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        x = radiograph(size)
        wls(x, method="cpu")
        t_x, (g, info) = timed(lambda: wls(x, method="cpu", return_info=True), 3)
        t_d, g_direct = timed(lambda: scipy_direct(x), 1)
        err = float(np.linalg.norm(g - g_direct) / np.linalg.norm(g_direct))
        mem = bytes_per_pixel(size)
        row = f"| {size}x{size} | {t_x:.3f} | {info.iterations[0]} | {err:.1e} | {mem:.0f} | {t_d:.2f} |"
        if size in args.baselines:
            t_a, _ = timed(lambda: pyamg_solve(x), 1)
            row += f" {t_a:.2f} | {t_d / t_x:.1f}x | {t_a / t_x:.1f}x |"
        else:
            row += " - | " + f"{t_d / t_x:.1f}x | - |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
