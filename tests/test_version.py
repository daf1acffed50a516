"""xvertfast._version.code_digest: what the digest of the installed code covers."""

from __future__ import annotations

import importlib.util
import os
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


def _package_with(tmp_path, names: list[str]):
    """A package folder holding a copy of _version.py and a file of each of ``names``."""
    package = tmp_path / "xvertfast"
    for name in names:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(f"# {name}\n")
    shutil.copy(xvertfast._version.__file__, package / "_version.py")
    return package


def test_the_code_digest_leaves_out_the_files_that_cannot_change_a_score(tmp_path):
    """Any edit of the package (a typo in the CLI's help) changed the digest an evaluation's
    journal records, so the rerun of a 10,000-image evaluation was refused. The files that cannot
    change a score (NOT_SCORING) are left out; the others, and a file the list does not know,
    count."""
    package = _package_with(tmp_path, ["cli.py", "eval/report.py", "train/loop.py", "infer/batch.py",
                                       "eval/metrics.py", "io/read.py", "infer/enhancer.py"])  # fmt: skip
    first = _digest_of(package)
    for name in ("cli.py", "eval/report.py", "train/loop.py", "infer/batch.py"):  # (a) not scoring: no change
        (package / name).write_text("# edited: help text, a report's drawing, training, enhance's jobs\n")
        assert _digest_of(package) == first, name
    for name in ("eval/metrics.py", "io/read.py", "infer/enhancer.py"):  # (b) what reads, enhances or scores
        before = _digest_of(package)
        (package / name).write_text("# edited\n")
        assert _digest_of(package) != before, name
    for name in ("eval/new_metric.py", "train/new.py", "_C.so"):  # (c) a new file counts, in any folder
        before = _digest_of(package)
        (package / name).write_bytes(b"\0")
        assert _digest_of(package) != before, name


def test_every_file_left_out_of_the_code_digest_is_one_of_the_package():
    """A name in NOT_SCORING that no file has (a typo, a file moved) leaves nothing out: the file
    it meant counts again, each of its edits refusing a resume for nothing."""
    package = os.path.dirname(xvertfast._version.__file__)
    assert [name for name in sorted(xvertfast._version.NOT_SCORING)
            if not os.path.isfile(os.path.join(package, *name.split("/")))] == []  # fmt: skip
