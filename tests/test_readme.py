"""The README's Quickstart is what CI runs: command 1 verbatim, command 2's test command."""

from __future__ import annotations

import os
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))

from readme_command import quickstart_commands  # noqa: E402


def test_quickstart_is_what_ci_runs():
    with open(os.path.join(ROOT, "README.md")) as f:
        commands = quickstart_commands(f.read())
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = f.read()
    assert len(commands) == 2
    assert "xvertfast demo" in commands[0] and "tools/readme_command.py README.md 1" in ci
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command == "python -m pytest tests -q"
    assert test_command in ci.splitlines()
