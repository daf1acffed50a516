"""Runs the kernel benchmarks and prints, per group, the speed-up over the named reference.

    python bench/report.py [extra pytest args]

The table it prints (Markdown) is what bench/RESULTS.md records, with the
device, the date and this command.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def anonymous_mb(pid: int | str = "self") -> float:
    """A process's anonymous resident memory (``RssAnon``: what the OOM killer counts, not the
    reclaimable page cache), MB; Linux's /proc. OSError where the process is gone."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:")) / 1024


def device_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    line = f"CPU: {cpu}, {torch.get_num_threads()} threads"
    if torch.cuda.is_available():
        line += f"; GPU: {torch.cuda.get_device_name(0)}"
    return line + f"; torch {torch.__version__}"


def run(args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        cmd = [sys.executable, "-m", "pytest", os.path.join(HERE, "test_bench_ops.py"), "-q",
               "--benchmark-only", f"--benchmark-json={out}", *args]  # fmt: skip
        subprocess.run(cmd, cwd=ROOT, check=True)
        with open(out) as f:
            return json.load(f)


def table(data: dict) -> str:
    groups: dict[str, dict[str, float]] = {}
    for bench in data["benchmarks"]:
        kind = "xvertfast" if "xvertfast" in bench["name"] else "reference"
        groups.setdefault(bench["group"], {})[kind] = bench["stats"]["median"]
    rows = ["| benchmark | xvertfast (ms, median) | PyTorch reference (ms, median) | speed-up |",
            "|---|---:|---:|---:|"]  # fmt: skip
    for group, t in sorted(groups.items()):
        if "xvertfast" in t and "reference" in t:
            rows.append(f"| {group} | {t['xvertfast'] * 1e3:.1f} | {t['reference'] * 1e3:.1f} | "
                        f"{t['reference'] / t['xvertfast']:.1f}x |")  # fmt: skip
    return "\n".join(rows)


def main() -> None:
    data = run(sys.argv[1:])
    print(f"\n{device_line()}; {datetime.date.today().isoformat()}; `python bench/report.py`\n")
    print(table(data))


if __name__ == "__main__":
    main()
