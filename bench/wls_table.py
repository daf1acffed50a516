"""Times the WLS solvers side by side and prints a Markdown table for bench/RESULTS.md.

    python bench/wls_table.py [--sizes 512 1024 2048] [--baselines 1024] [--repeat 3]
    python bench/wls_table.py --all-images      # every cxr-dev image at native size, memory included
    python bench/wls_table.py --device cuda --sizes 1024 2048 [--batch 8]

For each size: xvertfast's CPU solver on the threads torch uses and on one thread, its
iterations, its error against the SciPy direct solve (over 1e-4 fails the run), and its
memory per pixel: the rise of the peak resident set during one solve in a fresh subprocess
(output included; malloc's freed heap is given back first), on the bench image and on the
all-plateau worst case, beside the counted bound (the planned workspace plus the output).
At the baseline sizes, SciPy spsolve and pyamg RS-AMG-PCG on the same image (both single-
threaded), their sparse-matrix assembly timed apart, and the speed-up of xvertfast over each
solve at its own thread count and at one thread. Every time is the best of --repeat
consecutive runs in this process, the same for every column, after one untimed run of every
column on a 64x64 image (the process's one-time set-up, else in the first column alone).
"""

from __future__ import annotations

import argparse
import importlib.util
import os

# BLAS worker threads spin after NumPy calls and steal the two cores from the solver.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.report import heading  # noqa: E402
from bench.wls_inputs import (  # noqa: E402
    PARAMS,
    assemble,
    pyamg_assembled,
    radiograph,
    rel_err,
    scipy_direct,
    spsolve_assembled,
)
from xvertfast import wls  # noqa: E402
from xvertfast.infer.backends import resolve_device  # noqa: E402

#: issue #3's accuracy item: relative L2 error against the direct solve
MAX_ERROR = 1e-4

MEMORY_PROBE = """
import ctypes, sys
sys.path.insert(0, {root!r})
from bench.wls_inputs import native, plateau_pairs, radiograph
from xvertfast import wls

def rss_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))

x = {image}
wls(x[:64, :64], method="cpu")
# Give malloc's freed heap (the loader's temporaries: PIL's decode, the resize) back to the
# system first; left there, it would be reused for the output and the rise would miss it.
try:
    trimmed = ctypes.CDLL("libc.so.6").malloc_trim(0) >= 0
except (OSError, AttributeError):  # not glibc: the figure may undercount
    trimmed = False
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
before = rss_kib("VmRSS:")
g = wls(x, method="cpu")
print((rss_kib("VmHWM:") - before) * 1024 / x.size, int(trimmed))
"""


def timed(fn, repeat: int) -> tuple[float, object]:
    """Best of ``repeat`` consecutive runs, and the last run's result (the caller warms up first)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


#: Side of the image every column is run on once, untimed, before the table (:func:`warm_up`).
WARM_UP_SIZE = 64


def warm_up(baselines: bool) -> None:
    """Runs every column once on a small image, untimed, before the table: the process's first
    solve pays for what is set up once (OpenMP's thread pools, the extension's first calls, SciPy's
    and pyamg's lazy imports), and under --repeat 1 that cost was the first column's alone (a
    512 px solve timed 7.0 s cold, 3.3 s warm, on a busy machine). ``baselines``: theirs too."""
    x = radiograph(WARM_UP_SIZE)
    n = torch.get_num_threads()
    wls(x, method="cpu")
    torch.set_num_threads(1)
    try:
        wls(x, method="cpu")
    finally:
        torch.set_num_threads(n)
    if baselines:
        A = assemble(x)
        spsolve_assembled(A, x)
        pyamg_assembled(A, x)


def bytes_per_pixel(image: str) -> str:
    """The resident peak's rise per pixel in a fresh process, ``image`` a call of bench.wls_inputs
    (``radiograph(1024)``); '*' marks a figure taken without malloc_trim (not glibc), which
    may miss the output."""
    code = MEMORY_PROBE.format(root=os.path.dirname(HERE), image=image)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    value, trimmed = out.stdout.strip().splitlines()[-1].split()
    return f"{float(value):.1f}" + ("" if trimmed == "1" else "*")


def counted_bytes_per_pixel(x: np.ndarray) -> float:
    """The counted bound: the solver's whole planned workspace (its plateau arrays sized for the
    worst case) plus the output array, per pixel."""
    t = torch.from_numpy(x)
    ws = torch.ops.xvertfast.wls_setup(t[None], *PARAMS)
    return (ws.numel() * ws.element_size() + t.numel() * t.element_size()) / t.numel()


def check_error(what: str, err: float) -> None:
    if not err <= MAX_ERROR:
        sys.exit(f"FAILED: {what}: relative error {err:.2e} against the direct solve exceeds {MAX_ERROR:.0e}")


def all_images(repeat: int) -> None:
    import glob

    from bench.wls_inputs import DATA, native

    print(f"\n{heading('wls_table.py')}\n")
    print(f"Time: best of {repeat} consecutive runs on {torch.get_num_threads()} threads, after one untimed solve of "
          f"a {WARM_UP_SIZE}x{WARM_UP_SIZE} image (the process's one-time set-up). Memory as in the main table: "
          "resident peak rise per pixel in a fresh process, output included.\n")  # fmt: skip
    warm_up(baselines=False)
    print("| image | size | xvertfast cpu (s) | iterations | relative residual | resident peak (B/px) |")
    print("|---|---|---:|---:|---:|---:|")
    for path in sorted(glob.glob(os.path.join(DATA, "*.png"))):
        x = native(path)
        t, (_, info) = timed(lambda: wls(x, method="cpu", return_info=True), repeat)
        mem = bytes_per_pixel(f"native({path!r})")
        print(f"| {os.path.basename(path)} | {x.shape[1]}x{x.shape[0]} | {t:.3f} | {info.iterations[0]} "
              f"| {info.residual[0]:.1e} | {mem} |", flush=True)  # fmt: skip


def gpu_table(sizes: list[int], batch: int, repeat: int) -> None:
    """The native CUDA solver and the cupy-driven CG on a batch, against cupyx Jacobi-CG on one image,
    all in ms per image; every column one warm-up, then the best of ``repeat``."""
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

    print(f"\n{heading('wls_table.py')}; cupy {cp.__version__}\n")
    print(f"Every time: one warm-up, then the best of {repeat}; xvertfast's batch time divided by {batch}, "
          "cupyx's time for one image (its assembly not timed).\n")  # fmt: skip
    print(f"| size | xvertfast cuda, batch of {batch} (ms per image) | of which setup | iterations "
          f"| rel. error vs direct | xvertfast cupy-driven CG, batch of {batch} (ms per image) "
          "| cupyx Jacobi-CG (ms per image) | its iterations | speed-up (cuda vs cupyx) |")  # fmt: skip
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for size in sizes:
        xs = torch.stack([torch.from_numpy(radiograph(size, k)) for k in range(batch)]).cuda()
        t_x, (g, info) = sync_timed(lambda: wls(xs, method="cuda", return_info=True), repeat)
        # the setup alone (weights, hierarchy, plateau labelling), its workspace included
        t_s, _ = sync_timed(lambda: torch.ops.xvertfast.wls_setup(xs, *PARAMS), repeat)
        ref = scipy_direct(xs[0].cpu().numpy())
        err = rel_err(g[0].cpu().numpy(), ref)
        t_p, gp = sync_timed(lambda: wls(xs, method="cupy"), repeat)
        err_p = rel_err(gp[0].cpu().numpy(), ref)
        system = cupy_jacobi_system(xs[0].cpu().numpy())
        t_c, (_, its) = sync_timed(lambda: cupy_jacobi_cg(system), repeat)
        per = t_x / batch
        print(f"| {size}x{size} | {per * 1e3:.2f} | {t_s / batch * 1e3:.2f} | {min(info.iterations)}-{max(info.iterations)} | {err:.1e} "
              f"| {t_p / batch * 1e3:.2f} | {t_c * 1e3:.1f} | {its} | {t_c / per:.1f}x |", flush=True)  # fmt: skip
        check_error(f"{size}x{size}, cuda, image 0", err)
        check_error(f"{size}x{size}, cupy, image 0", err_p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="sides of the square test images, one row each (default: 512 1024 2048)")
    parser.add_argument("--baselines", type=int, nargs="*", default=None,
                        help="the sizes, among --sizes, at which spsolve and pyamg run too; none given: no "
                        "baselines (default: 1024 where --sizes has it)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="cuda: the GPU table (xvertfast's CUDA solver vs cupyx Jacobi-CG)")
    parser.add_argument("--batch", type=int, default=8, help="images per GPU batch (--device cuda)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed column, best taken (every column)")
    parser.add_argument("--all-images", action="store_true",
                        help="instead: every cxr-dev image at its native size (time, iterations, memory)")
    args = parser.parse_args()
    if args.all_images and (args.sizes is not None or args.baselines is not None or args.device != "cpu"):
        parser.error("--all-images times every cxr-dev image at its native size on the CPU: it takes no --sizes, "
                     "--baselines or --device cuda")  # (they were ignored without a word)
    args.sizes = args.sizes or [512, 1024, 2048]
    if args.baselines is None:
        args.baselines = [size for size in (1024,) if size in args.sizes]
    elif not set(args.baselines) <= set(args.sizes):
        parser.error(f"--baselines {' '.join(map(str, args.baselines))}: not among --sizes "
                     f"{' '.join(map(str, args.sizes))} (the baselines run only at sizes the table has rows for)")  # fmt: skip
    if args.all_images:
        all_images(args.repeat)
        return
    if args.device == "cuda":
        try:
            resolve_device("cuda")
        except RuntimeError as e:
            parser.error(str(e))
        if importlib.util.find_spec("cupy") is None:
            sys.exit("wls_table.py: the GPU table needs cupy, for its baseline and the cupy-driven solver "
                     "(pip install 'xvertfast[gpu]')")  # fmt: skip
        gpu_table(args.sizes, args.batch, args.repeat)
        return
    if args.baselines and importlib.util.find_spec("pyamg") is None:
        sys.exit("wls_table.py: the pyamg baseline needs pyamg (pip install 'xvertfast[bench]'); "
                 "--baselines with no sizes runs without the baselines")  # fmt: skip

    cpu_table(args.sizes, args.baselines, args.repeat)


def cpu_table(sizes: list[int], baselines: list[int], repeat: int) -> None:
    n = torch.get_num_threads()
    print(f"\n{heading('wls_table.py')}\n")
    print(f"Every time: best of {repeat} consecutive runs in one process, the same for every column, after one "
          f"untimed run of every column on a {WARM_UP_SIZE}x{WARM_UP_SIZE} image (the process's one-time set-up: "
          f"thread pools, lazy imports; else the first column's alone). xvertfast on {n} threads (torch's) and on 1; spsolve (SuperLU) and pyamg run "
          "on 1 thread (OPENBLAS_NUM_THREADS=1). Baselines: the solve only; the sparse matrix's "
          "assembly (the project's Python/SciPy code, 1 thread) is its own column and in no ratio. "
          "Memory: resident peak rise per pixel in a fresh process, output included (bench image / "
          "all-plateau worst case), and the counted bound: planned workspace + output.\n")  # fmt: skip
    print(f"| size | iterations | rel. error vs direct ({n} thr / 1 thr) | resident peak (B/px) "
          "| resident peak, all-plateau image (B/px) | workspace + output (B/px) "
          f"| xvertfast, {n} threads (s) | xvertfast, 1 thread (s) | assembly, 1 thread (s) "
          "| scipy spsolve, 1 thread (s) | pyamg RS-PCG, 1 thread (s) "
          f"| speed-up vs spsolve ({n} thr / 1 thr) | speed-up vs pyamg ({n} thr / 1 thr) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    warm_up(bool(baselines))
    for size in sizes:
        x = radiograph(size)
        t_x, (g, info) = timed(lambda: wls(x, method="cpu", return_info=True), repeat)
        torch.set_num_threads(1)
        try:
            t_1, (g1, info1) = timed(lambda: wls(x, method="cpu", return_info=True), repeat)
        finally:
            torch.set_num_threads(n)
        if size in baselines:
            t_a, A = timed(lambda: assemble(x), repeat)
            t_d, g_direct = timed(lambda: spsolve_assembled(A, x), repeat)
            t_p, _ = timed(lambda: pyamg_assembled(A, x), repeat)
            del A
        else:  # the direct solve for the error only, not timed
            g_direct = scipy_direct(x)
        err, err1 = rel_err(g, g_direct), rel_err(g1, g_direct)
        its = f"{info.iterations[0]}"
        if info1.iterations[0] != info.iterations[0]:
            its += f" / {info1.iterations[0]}"
        row = (f"| {size}x{size} | {its} | {err:.1e} / {err1:.1e} | {bytes_per_pixel(f'radiograph({size})')} "
               f"| {bytes_per_pixel(f'plateau_pairs({size})')} | {counted_bytes_per_pixel(x):.1f} "
               f"| {t_x:.3f} | {t_1:.3f} |")  # fmt: skip
        if size in baselines:
            row += (f" {t_a:.2f} | {t_d:.2f} | {t_p:.2f} | {t_d / t_x:.1f}x / {t_d / t_1:.1f}x "
                    f"| {t_p / t_x:.1f}x / {t_p / t_1:.1f}x |")  # fmt: skip
        else:
            row += " - | - | - | - | - |"
        print(row, flush=True)
        check_error(f"{size}x{size}, {n} threads", err)
        check_error(f"{size}x{size}, 1 thread", err1)


if __name__ == "__main__":
    main()
