"""Times the CPU WLS solver on 1 and on N threads while busy processes compete for the cores,
under libgomp's default wait policy and with OpenMP threads that sleep instead of spinning, as
a RESULTS.md table.

    python bench/wls_contention.py [--sizes 512 1024] [--busy 2] [--threads 2] [--rounds 2]

Two jobs side by side on one machine (enhance shards, a training run beside an enhance job),
each on all the cores, leave each job's OpenMP threads descheduled now and then. The solver
passes dozens of OpenMP barriers per CG iteration, and libgomp's waiting thread spins there
(300000 rounds by default, about 3 ms by libgomp's own estimate) before it sleeps, while the
thread it waits for is off its core. libgomp reads the wait settings when it loads, so each
setting runs in its own process; the rounds alternate the settings and, within a process, the
thread counts. The competitors are Python busy loops, one per --busy, started before the first
round and stopped after the last.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from bench.report import heading  # noqa: E402

#: the wait settings compared, as the environment each process starts with
SETTINGS = {
    "default (spin, then sleep)": {},
    "GOMP_SPINCOUNT=0": {"GOMP_SPINCOUNT": "0"},
    "OMP_WAIT_POLICY=passive": {"OMP_WAIT_POLICY": "passive"},
}
#: the variables libgomp's wait follows; none is taken from the shell
WAIT_KEYS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")

# One process of one round: a solve per size and thread count, "size threads seconds" a line.
SOLVES = """
import sys, time
sys.path.insert(0, {root!r})
import torch
from bench.wls_inputs import radiograph
from xvertfast import wls

for size in {sizes!r}:
    x = radiograph(size)
    wls(x, method="cpu")  # warm: the workspace and the threads
    for n in (1, {threads}):
        torch.set_num_threads(n)
        t0 = time.perf_counter()
        wls(x, method="cpu")
        print(size, n, time.perf_counter() - t0, flush=True)
"""


def child_env(setting: dict[str, str]) -> dict[str, str]:
    """This process's environment with ``setting`` in place of the shell's own wait settings, so a
    GOMP_SPINCOUNT or OMP_WAIT_POLICY the user exported (as docs/guide/enhancing.md suggests) cannot
    make every row that setting."""
    base = {k: v for k, v in os.environ.items() if k not in WAIT_KEYS}
    return {**base, "OPENBLAS_NUM_THREADS": "1", **setting}


def one_round(sizes: list[int], threads: int, env: dict[str, str]) -> dict[tuple[int, int], float]:
    """{(size, threads): seconds} of one process started with the wait setting ``env``."""
    code = SOLVES.format(root=ROOT, sizes=sizes, threads=threads)
    out = subprocess.run([sys.executable, "-c", code], env=child_env(env), capture_output=True, text=True,
                         check=False)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"wls_contention.py: the solves failed ({out.returncode}): {out.stderr.strip()}")
    times = {}
    for line in out.stdout.split("\n"):
        if line.strip():
            size, n, seconds = line.split()
            times[int(size), int(n)] = float(seconds)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="image sides (default: %(default)s)")
    ap.add_argument("--busy", type=int, default=2, help="busy-loop processes competing (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="the solver's threads beside 1 (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of every setting, alternating (default: %(default)s)")
    args = ap.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        runs: dict[str, list[dict[tuple[int, int], float]]] = {name: [] for name in SETTINGS}
        for r in range(args.rounds):
            for name, env in SETTINGS.items():
                runs[name].append(one_round(args.sizes, args.threads, env))
                print(f"round {r + 1}, {name}: done", flush=True)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    print(f"\n{heading('wls_contention.py')}; {args.busy} busy-loop process(es) competing; one solve per "
          f"thread count, setting and round; min-max over {args.rounds} round(s)\n")  # fmt: skip
    print(f"| size | libgomp wait setting | 1 thread (s) | {args.threads} threads (s) |")
    print("|---|---|---:|---:|")
    for size in args.sizes:
        for name in SETTINGS:
            cells = []
            for n in (1, args.threads):
                t = [times[size, n] for times in runs[name]]
                cells.append(f"{min(t):.3f}-{max(t):.3f}")
            print(f"| {size}x{size} | {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
