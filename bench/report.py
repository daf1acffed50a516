"""Runs the kernel benchmarks (bench/test_bench_ops.py: each compiled op and its pure-PyTorch
reference on the same inputs, in one pytest run) and prints, per group, the speed-up over the
named reference: the reference's median time divided by xvertfast's.

    python bench/report.py [extra pytest args, e.g. -k gc]

Every argument but -h/--help is passed to pytest. The table it prints (Markdown) is what
bench/RESULTS.md records, with the device, the date and this command. A benchmark that was
skipped or failed (a wrong result fails its benchmark) is a row saying so, with no speed-up;
the script then exits with pytest's status.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import torch

from xvertfast._text import count

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
    line = f"CPU: {cpu}, {count(torch.get_num_threads(), 'thread')}"
    if torch.cuda.is_available():
        line += f"; GPU: {torch.cuda.get_device_name(0)}"
    return line + f"; torch {torch.__version__}"


def heading(script: str, args: list[str] | None = None) -> str:
    """The line printed above a table: the device, the date and the command that made the table
    (``python bench/SCRIPT`` with ``args``, by default this process's arguments)."""
    command = shlex.join(["python", f"bench/{script}", *(sys.argv[1:] if args is None else args)])
    return f"{device_line()}; {datetime.date.today().isoformat()}; `{command}`"


def run(args: list[str]) -> tuple[dict, dict[str, str], int]:
    """The benchmarks' JSON, the tests that did not pass ({name: 'failed: ...' or 'skipped: ...'},
    from pytest's JUnit XML) and pytest's exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        out, junit = os.path.join(tmp, "bench.json"), os.path.join(tmp, "junit.xml")
        cmd = [sys.executable, "-m", "pytest", os.path.join(HERE, "test_bench_ops.py"), "-q",
               "--benchmark-only", f"--benchmark-json={out}", f"--junitxml={junit}", *args]  # fmt: skip
        status = subprocess.run(cmd, cwd=ROOT).returncode
        data = {"benchmarks": []}
        if os.path.exists(out):
            with open(out) as f:
                data = json.load(f)
        return data, not_passed(junit), status


def not_passed(junit: str) -> dict[str, str]:
    """{test name: 'failed: <first line>' or 'skipped: <reason>'} from pytest's JUnit XML."""
    problems: dict[str, str] = {}
    if not os.path.exists(junit):
        return problems
    for case in ET.parse(junit).iter("testcase"):
        for tag, word in (("failure", "failed"), ("error", "failed"), ("skipped", "skipped")):
            found = case.find(tag)
            if found is not None:
                message = (found.get("message") or "").strip().splitlines()
                problems[case.get("name")] = f"{word}: {message[0] if message else tag}"
                break
    return problems


def table(data: dict, problems: dict[str, str] | None = None) -> str:
    """The Markdown table: one row per group, speed-up = reference median / xvertfast median.
    ``problems`` ({test name: 'failed: ...' / 'skipped: ...'}) turns a group with a side that
    did not run, or did not pass, into a row naming it instead of a speed-up; a group of which
    neither side ran is such a row too, named by its test."""
    problems = problems or {}
    groups: dict[str, dict[str, tuple[str, float]]] = {}
    named: set[str] = set()  # the tests a group's row accounts for
    for bench in data["benchmarks"]:
        kind = "xvertfast" if "xvertfast" in bench["name"] else "reference"
        groups.setdefault(bench["group"], {})[kind] = (bench["name"], bench["stats"]["median"])
    rows = ["| benchmark | xvertfast (ms, median) | PyTorch reference (ms, median) | speed-up |",
            "|---|---:|---:|---:|"]  # fmt: skip
    for group, sides in sorted(groups.items()):
        # the side that has no time is named after the one that has: test_x_xvertfast <-> test_x_reference
        ran, (ran_name, _) = next(iter(sides.items()))
        names = {k: ran_name.replace(ran, k) for k in ("xvertfast", "reference")}
        times = {k: f"{sides[k][1] * 1e3:.1f}" if k in sides else "-" for k in names}
        notes = [f"{k} {problems.get(names[k], 'did not run')}" for k in names
                 if k not in sides or names[k] in problems]  # fmt: skip
        if notes:
            ratio = "none: " + "; ".join(notes).replace("|", "/")
        else:
            ratio = f"{sides['reference'][1] / sides['xvertfast'][1]:.1f}x"
        rows.append(f"| {group} | {times['xvertfast']} | {times['reference']} | {ratio} |")
        named.update(names.values())
    # groups of which no side ran (the CUDA ones without a GPU) have no benchmark data, so no group
    # name: each is a row named by its xvertfast test (or a lone test by itself)
    for name in sorted(set(problems) - named):
        if "reference" in name and name.replace("reference", "xvertfast") in problems:
            continue  # (its xvertfast side makes the row)
        pair = [n for n in (name, name.replace("xvertfast", "reference")) if n in problems]
        sides = {n: next((k + " " for k in ("xvertfast", "reference") if k in n), "") for n in dict.fromkeys(pair)}
        notes = "; ".join(f"{side}{problems[n]}" for n, side in sides.items())
        rows.append(f"| {name} | - | - | none: {notes.replace('|', '/')} |")
    return "\n".join(rows)


def main() -> int:
    args = sys.argv[1:]
    if "-h" in args or "--help" in args:
        print(__doc__.strip())
        return 0
    data, problems, status = run(args)
    print(f"\n{heading('report.py', args)}\n")
    print(table(data, problems))
    if status != 0:
        print(f"\npytest exited with status {status}: see its output above", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
