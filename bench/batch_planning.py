"""What a batch job costs around the images over a large archive: finding the inputs, planning
their outputs, and a rerun's pass over a ledger of finished outputs. At several sizes, so that
a cost that grows faster than the archive shows (ms an input should stay flat).

    python bench/batch_planning.py [--counts 1000 5000 20000] [--folder /tmp/xvf-planning]

Inputs: N hard links of 8 small PNGs (different bytes) in nested folders (500 a patient folder,
50 a series), and an @list of them. The ledger of N finished outputs is written through
:class:`~xvertfast.io.job_folder.JobFolder`, as ``xvertfast enhance`` writes it (the outputs are
tiny files: nothing is enhanced). Timed in this process: ``discover``, the plan, and
``enhance_files`` rerun over them (every output skipped: the summary's seconds, from the search of
the inputs to the end), rerun with the --report its run before wrote, its dry run, a shard's rerun,
``job_status``; and the ``xvertfast status`` process, start to exit (its imports included). Each
phase's CPU time too (this process's, all its threads; the status process's own): on a shared
machine the wall time moves with the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.report import heading  # noqa: E402

SERIES, PATIENT = 50, 500


def make_inputs(folder: str, count: int) -> tuple[str, str]:
    """``count`` PNGs under ``folder/inN`` and an @list naming them; returns (the folder, @list)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    bases = []
    for k in range(8):
        path = os.path.join(folder, f"base{k}.png")
        if not os.path.exists(path):
            Image.fromarray((rng.random((64 + 8 * k,) * 2) * 255).astype(np.uint8)).save(path)
        bases.append(path)
    root, lines = os.path.join(folder, f"in{count}"), []
    for i in range(count):
        series = os.path.join(root, f"p{i // PATIENT:03d}", f"s{(i // SERIES) % (PATIENT // SERIES)}")
        os.makedirs(series, exist_ok=True)
        path = os.path.join(series, f"im{i:06d}.png")
        if not os.path.exists(path):
            os.link(bases[i % len(bases)], path)
        lines.append(path)
    listed = os.path.join(folder, f"list{count}.txt")
    with open(listed, "w") as f:
        f.write("\n".join(lines) + "\n")
    return root, listed


def timed(fn) -> tuple[tuple[float, float], object]:
    """(wall, CPU) seconds of ``fn()``, and what it returned."""
    t, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - t, time.process_time() - cpu), result


def write_ledger(enhancer, planned, out: str) -> None:
    """Every planned output finished, as a run records it, its file a byte."""
    from xvertfast.infer.batch import _job_settings
    from xvertfast.io.files import file_state
    from xvertfast.io.job_folder import JobFolder

    with JobFolder(out, _job_settings(enhancer, "png16"), False) as job:
        for f, path in planned:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            job.starting(f.path, path)
            with open(path, "wb") as o:
                o.write(b"x")
            job.finished(f.path, path, file_state(f.path), sole=True)
        job.ended(None, found=len(planned), done=len(planned), skipped=0, failed=0)


def cli(*args: str) -> tuple[float, float]:
    """(wall, CPU) seconds of an ``xvertfast`` process, from its start to its exit."""
    t, before = time.perf_counter(), os.times()
    out = subprocess.run([sys.executable, "-m", "xvertfast", *args], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"xvertfast {' '.join(args)}: exit {out.returncode}: {out.stderr[-2000:]}")
    after = os.times()
    return time.perf_counter() - t, (after.children_user - before.children_user
                                     + after.children_system - before.children_system)  # fmt: skip


def measure(folder: str, count: int, model: str) -> dict[str, tuple[float, float]]:
    """Each phase's (wall, CPU) seconds at ``count`` inputs."""
    from xvertfast.infer import Enhancer
    from xvertfast.infer.batch import _plan
    from xvertfast.io.files import discover
    from xvertfast.io.job_folder import job_status
    from xvertfast.io.shards import Shard

    root, listed = make_inputs(folder, count)
    out = os.path.join(folder, f"out{count}")
    rows = {}
    rows["discover, a folder"], files = timed(lambda: discover([root], exclude=[out]))
    rows["discover, an @list"], _ = timed(lambda: discover(["@" + listed], exclude=[out]))
    rows["plan (png16)"], (planned, _) = timed(lambda: _plan(files, out, "png16"))
    enhancer = Enhancer(model, device="cpu")
    if not os.path.isdir(out):
        write_ledger(enhancer, planned, out)

    def job(**kwargs) -> tuple[float, float]:  # the job's own time, from its summary (the inputs' search to its end)
        cpu = time.process_time()
        summary = enhancer.enhance_files([root], out, fmt="png16", progress=False, log=lambda _: None, **kwargs)
        assert summary.skipped == summary.found, summary.line()
        return summary.seconds, time.process_time() - cpu

    rows["rerun, all skipped"] = job()
    report = os.path.join(folder, f"report{count}.json")
    job(report=report)  # (the report the rerun below finds: it leaves it out, and checks it is no input)
    rows["rerun with its --report, all skipped"] = job(report=report)
    rows["dry run"] = job(dry_run=True)
    rows["rerun of shard 3/4"] = job(shard=Shard(3, 4))
    rows["job_status"], _ = timed(lambda: job_status(out, "enhance"))
    rows["`xvertfast status` process"] = cli("status", out)
    return rows


def table(results: dict[int, dict[str, tuple[float, float]]]) -> str:
    counts = sorted(results)
    lines = ["| phase | " + " | ".join(f"{n} inputs: s | ms an input | CPU ms an input" for n in counts) + " |",
             "|---|" + "---:|---:|---:|" * len(counts)]  # fmt: skip
    for phase in results[counts[0]]:
        cells = [cell for n in counts for wall, cpu in [results[n][phase]]
                 for cell in (f"{wall:.3f}", f"{1e3 * wall / n:.3f}", f"{1e3 * cpu / n:.3f}")]  # fmt: skip
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 5000, 20000], help="the archive sizes measured")
    parser.add_argument("--folder", default=None, help="where the inputs and outputs go (default: a new temporary one)")
    args = parser.parse_args()
    import tempfile

    from bench.enhance_inputs import make_model

    folder = args.folder or tempfile.mkdtemp(prefix="xvf-planning-")
    os.makedirs(folder, exist_ok=True)
    model = make_model(folder)
    results = {n: measure(folder, n, model) for n in args.counts}
    print(heading("batch_planning.py"))
    print(table(results))


if __name__ == "__main__":
    main()
