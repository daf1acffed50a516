"""The errors that name a file (xvertfast.io.errors): what survives a copy or another process."""

from __future__ import annotations

import copy
import os
import multiprocessing
import pickle

import pytest

from xvertfast.io.errors import DamagedFileError, ImageReadError, ImageWriteError

MADE = [
    (ImageReadError, ("scans/a.png", "cut short: 12 of 480 rows")),
    (ImageWriteError, ("out/a.png", "No space left on device")),
    (DamagedFileError, ("run/cache/ab.npy", "cut short", "delete it and run again")),
]


def _raise(cls, args):
    raise cls(*args)


@pytest.mark.parametrize(("cls", "args"), MADE, ids=[cls.__name__ for cls, _ in MADE])
def test_an_error_naming_a_file_is_pickled_and_copied_whole(cls, args):
    """They were rebuilt from their one message, which their constructors refuse: unpickling raised
    TypeError, and a multiprocessing pool whose worker raised one hung (its result thread died)."""
    exc = cls(*args)
    exc.__notes__ = ["seen in a batch"]  # (add_note: Python 3.11 on; 3.10 is supported)
    for again in (pickle.loads(pickle.dumps(exc)), copy.copy(exc), copy.deepcopy(exc)):
        assert type(again) is cls and str(again) == str(exc) and again.args == exc.args
        assert (again.path, again.problem, getattr(again, "remedy", None)) == (exc.path, exc.problem,
                                                                              getattr(exc, "remedy", None))  # fmt: skip
        assert again.__notes__ == ["seen in a batch"]


def test_each_error_takes_the_path_the_problem_and_only_a_damaged_file_a_remedy():
    """Their messages as a batch job's line gives them; ImageReadError and ImageWriteError take no
    third argument (their one constructor, _NamesTheFile's, has none)."""
    import inspect

    assert [str(cls(*args)) for cls, args in MADE] == [
        "scans/a.png: cut short: 12 of 480 rows", "out/a.png: No space left on device",
        "run/cache/ab.npy: cut short; delete it and run again"]  # fmt: skip
    for cls in (ImageReadError, ImageWriteError):
        assert list(inspect.signature(cls).parameters) == ["path", "problem"]
        with pytest.raises(TypeError):
            cls("a.png", "cut short", "and more")
    assert DamagedFileError("a.npy", "cut short", "delete it").remedy == "delete it"


def test_an_image_read_error_raised_in_a_worker_reaches_the_pool():
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply_async(_raise, MADE[0])
        with pytest.raises(ImageReadError, match="^scans/a.png: cut short: 12 of 480 rows$") as caught:
            result.get(timeout=60)
    assert caught.value.path == "scans/a.png"


def test_an_os_error_about_the_failed_file_names_it_once():
    """failure_text said "a.png: [Errno 13] Permission denied: 'a.png'", the path twice; an error
    about another file (a sidecar, a rename's two) keeps its whole text."""
    import errno

    from xvertfast.io.errors import failure_text

    denied = os.strerror(errno.EACCES)
    assert failure_text("a.png", PermissionError(errno.EACCES, denied, "a.png")) == f"a.png: {denied}"
    assert failure_text("a.png", PermissionError(errno.EACCES, denied, "a.json")) == (
        f"a.png: [Errno {errno.EACCES}] {denied}: 'a.json'")
    assert failure_text("a.png", PermissionError(errno.EACCES, denied, "a.png", None, "b.png")) == (
        f"a.png: [Errno {errno.EACCES}] {denied}: 'a.png' -> 'b.png'")
    assert failure_text("a.png", OSError("a.png: cut short")) == "a.png: cut short"


def test_an_image_write_error_keeps_the_errno_of_the_write_that_failed(tmp_path, monkeypatch):
    """write_image gives its error the failed write's errno, by which a batch job stops on a full
    disk or a read-only file system (io.write.outputs_lost). A copy was made by the constructor again,
    which left errno None: a worker's write to a read-only file system reached the pool as one file's
    failure."""
    import contextlib
    import errno

    import numpy as np

    import xvertfast.io.write as write

    @contextlib.contextmanager
    def read_only(path):
        raise OSError(errno.EROFS, "Read-only file system")
        yield

    monkeypatch.setattr(write, "atomic_write", read_only)
    with pytest.raises(ImageWriteError) as raised:
        write.write_image(tmp_path / "a.png", np.zeros((8, 9)))
    exc = raised.value
    assert exc.errno == errno.EROFS and write.outputs_lost(exc)
    for again in (pickle.loads(pickle.dumps(exc)), copy.copy(exc), copy.deepcopy(exc)):
        assert (again.errno, str(again), write.outputs_lost(again)) == (exc.errno, str(exc), write.outputs_lost(exc))
