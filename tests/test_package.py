"""The package's top level: its public names come on first use, and the CLI starts without torch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import xvertfast


def test_import_and_the_cli_module_do_not_load_torch():
    code = "import sys, xvertfast, xvertfast.cli; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_public_names_are_the_modules_own():
    from xvertfast.model.persistence import load_model
    from xvertfast.ops.wls import wls
    from xvertfast.preprocess.spine import find_spine

    assert xvertfast.wls is wls and xvertfast.find_spine is find_spine and xvertfast.load_model is load_model
    assert callable(xvertfast.preprocess) and xvertfast.ops.__name__ == "xvertfast.ops"
    assert set(xvertfast.__all__) <= set(dir(xvertfast))
    assert not {"importlib", "annotations"} & set(dir(xvertfast))  # the module's own helpers are not API
    with pytest.raises(AttributeError, match="no attribute 'enhance'"):
        xvertfast.enhance  # noqa: B018


def test_ctrl_c_while_torch_loads_is_the_commands_interrupt_not_a_traceback():
    """The signal lands in the first second, while a command imports torch: that used to be
    inside ``import xvertfast``, before main() could catch it, and printed an import traceback."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "xvertfast", "info"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("info finished within 0.3 s: torch loaded too fast to be interrupted")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "interrupted", err
