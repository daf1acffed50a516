"""The ``xvertfast`` command's entry point (pyproject's [project.scripts]) and ``python -m xvertfast``."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

#: A Ctrl-C (SIGINT to the process, as a terminal sends it) at the moment Python looks up ``WHERE``
#: for import: deterministic, where a Ctrl-C timed by a sleep would race the interpreter's start.
CTRL_C_AT = """
import os, signal, sys
class CtrlCAt:
    def find_spec(self, name, path=None, target=None):
        if name == {where!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)  # delivered to this (the main) thread before kill returns
sys.meta_path.insert(0, CtrlCAt())
"""


def _console_script() -> str:
    """The script pip writes for the ``xvertfast`` command, from pyproject.toml's [project.scripts]."""
    text = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    (module, function), = re.findall(r'^xvertfast = "([\w.]+):(\w+)"', text, re.M)
    return (f"import re, sys\nfrom {module} import {function}\nif __name__ == '__main__':\n"
            f"    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
            f"    sys.exit({function}())\n")  # fmt: skip


@pytest.mark.parametrize("how", ["xvertfast", "python -m xvertfast"])
@pytest.mark.parametrize("where", ["xvertfast.cli", "xvertfast.runtime"])
def test_a_ctrl_c_as_the_command_starts_exits_130_without_a_traceback(tmp_path, how, where):
    """A Ctrl-C in the first tenth of a second of `xvertfast info` (Python importing xvertfast.cli,
    or main reading the command line: it imports xvertfast.runtime once it has, before it handles
    the signals) printed a KeyboardInterrupt traceback and ended by SIGINT."""
    hook = CTRL_C_AT.format(where=where)
    if how == "xvertfast":
        argv, env = [sys.executable, "-c", hook + _console_script(), "info"], os.environ
    else:  # (the hook is in place before runpy imports xvertfast.__main__)
        (tmp_path / "sitecustomize.py").write_text(hook)
        paths = [str(tmp_path), os.environ.get("PYTHONPATH")]
        argv = [sys.executable, "-m", "xvertfast", "info"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "\ninterrupted\n"), proc.stderr
    assert proc.stdout == ""
