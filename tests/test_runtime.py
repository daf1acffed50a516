"""The CLI's process settings: applied where glibc is, skippable, never by importing the library."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xvertfast import runtime


def test_opt_out_and_other_platforms(monkeypatch):
    monkeypatch.setenv("XVF_MALLOC_TUNE", "0")
    assert runtime.tune_allocator() is False
    monkeypatch.delenv("XVF_MALLOC_TUNE")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert runtime.tune_allocator() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_tunes_glibc_in_a_fresh_process():
    code = "import xvertfast, xvertfast.runtime as r; print(r.tune_allocator())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        assert out == "False"
    else:
        assert out == "True"


def test_importing_the_package_does_not_touch_malloc():
    code = "import sys, xvertfast, xvertfast.infer, xvertfast.model; print('xvertfast.runtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
