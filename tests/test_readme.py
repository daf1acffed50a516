"""The README's Quickstart is what CI runs: command 1 verbatim, command 2's test command; its read/write example runs."""

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


def test_reading_and_writing_example_runs_as_written(tmp_path, monkeypatch):
    """The README's read_image/write_image example, run verbatim with the bundled sample as
    chest.dcm in an empty folder: write_image makes no folders, so the example must."""
    import re
    import shutil

    import pytest

    pytest.importorskip("pydicom")
    from xvertfast.samples import SAMPLE_DICOM

    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    (example,) = [b for b in blocks if 'write_image("out/chest.dcm"' in b]
    shutil.copy(SAMPLE_DICOM, tmp_path / "chest.dcm")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert (tmp_path / "out" / "chest.dcm").is_file()
