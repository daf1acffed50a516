"""xvertfast._version.code_digest: what the digest of the installed code covers."""

from __future__ import annotations

import importlib.util
import shutil

import xvertfast._version


def _digest_of(package) -> str:
    """code_digest of a package folder holding a copy of _version.py (its own, uncached)."""
    spec = importlib.util.spec_from_file_location("copied_version", package / "_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.code_digest()


def test_the_code_digest_covers_the_data_the_metrics_read_and_not_an_editors_files(tmp_path):
    package = tmp_path / "xvertfast"
    (package / "eval" / "brisque_live").mkdir(parents=True)
    shutil.copy(xvertfast._version.__file__, package / "_version.py")
    (package / "eval" / "metrics.py").write_text("def entropy(): ...\n")
    (package / "eval" / "brisque_live" / "allmodel").write_text("gamma 0.05\n")
    first = _digest_of(package)
    assert _digest_of(package) == first
    (package / "eval" / "brisque_live" / "allmodel").write_text("gamma 0.06\n")  # BRISQUE's scores change
    second = _digest_of(package)
    assert second != first
    # an editor's lock beside a file being edited (Emacs: a dangling link), its backup, bytecode
    (package / "eval" / ".#metrics.py").symlink_to("root@host.1234:1700000000")
    (package / "eval" / "__pycache__").mkdir()
    (package / "eval" / "__pycache__" / "metrics.cpython-311.pyc").write_bytes(b"\0")
    assert _digest_of(package) == second
    (package / "eval" / "metrics.py").write_text("def entropy(): return 1\n")
    assert _digest_of(package) != second
