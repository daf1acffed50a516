"""xvertfast's own exceptions survive pickling and copying (xvertfast._pickled_errors): one raised
in a multiprocessing worker reaches the caller whole instead of hanging the pool."""

from __future__ import annotations

import copy
import errno
import importlib
import inspect
import os
import pickle
import pkgutil

import pytest

import xvertfast
from xvertfast.eval._report_files import ReportInterrupted
from xvertfast.eval.precomputed import FolderRefused
from xvertfast.eval.protocol import _MethodFailed
from xvertfast.io.files import NothingFound
from xvertfast.train.data import CacheNotWritable, NoReadableImage
from xvertfast.train.loop import DiskFull, RunFolderNotWritable, TrainingDiverged

#: Each class with a constructor of its own, made as the code that raises it makes it.
MADE = {
    "NothingFound": lambda run: NothingFound(["scans", "@list.txt"]),
    "NothingFound-missing": lambda run: NothingFound(["scnas"], missing=True),
    "NothingFound-none-given": lambda run: NothingFound([]),
    "TrainingDiverged": lambda run: TrainingDiverged(2, 7, "loss is nan", os.path.join(run, "checkpoint"), 2e-3,
                                                     amp=True),  # fmt: skip
    "DiskFull": lambda run: DiskFull(run, OSError(errno.ENOSPC, "No space left on device")),
    "RunFolderNotWritable": lambda run: RunFolderNotWritable(f"{run}/checkpoint: a read-only folder", errno.EROFS),
    "CacheNotWritable": lambda run: CacheNotWritable(os.path.join(run, "cache"), "scans/a.png",
                                                     PermissionError(errno.EACCES, "Permission denied")),  # fmt: skip
    "NoReadableImage": lambda run: NoReadableImage(3),
    "FolderRefused": lambda run: FolderRefused(f"outputs={run}", "no such folder: give the folder another tool wrote"),
    "_MethodFailed": lambda run: _MethodFailed("farbman", MemoryError("out of memory")),
    "ReportInterrupted": lambda run: ReportInterrupted(False, {"html": "report/index.html"}, True, 2,
                                                       error=OSError(errno.ENOSPC, "No space left")),  # fmt: skip
}

_OS_ERROR_FIELDS = ("errno", "strerror", "filename", "filename2")


def _kept(exc: BaseException) -> tuple:
    """What a copy must keep: the type, the message, args and attributes (notes included), and an
    OSError's number and text, which are no attributes of ``__dict__``."""
    fields = tuple(getattr(exc, name) for name in _OS_ERROR_FIELDS) if isinstance(exc, OSError) else ()
    attributes = {name: (type(value), str(value)) if isinstance(value, BaseException) else value
                  for name, value in vars(exc).items()}  # fmt: skip
    return type(exc), str(exc), exc.args, attributes, fields


@pytest.mark.parametrize("made", MADE.values(), ids=MADE.keys())
def test_an_error_is_pickled_and_copied_as_raised(made, tmp_path):
    """Rebuilt from their args (the message), their constructors refused it (TypeError: a pool whose
    worker raised one hung) or built the message again around it (NothingFound: 'no image files found
    in no image files found in scans ...')."""
    exc = made(str(tmp_path))
    exc.__notes__ = ["seen in a worker"]  # (add_note: Python 3.11 on; 3.10 is supported)
    for protocol in (0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL):
        assert _kept(pickle.loads(pickle.dumps(exc, protocol))) == _kept(exc)
    assert _kept(copy.copy(exc)) == _kept(exc) and _kept(copy.deepcopy(exc)) == _kept(exc)
    assert copy.deepcopy(exc).__notes__ == ["seen in a worker"]


def test_a_message_that_says_what_a_folder_held_is_kept_as_said(tmp_path):
    """Its constructor is not run again: a TrainingDiverged raised before any epoch had finished
    says so once the run has a checkpoint, as it was raised."""
    exc = MADE["TrainingDiverged"](str(tmp_path))
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text("{}")
    assert "no epoch had finished" in str(exc)
    assert str(pickle.loads(pickle.dumps(exc))) == str(copy.deepcopy(exc)) == str(exc)


def _exception_classes():
    for info in pkgutil.walk_packages(xvertfast.__path__, "xvertfast."):
        if info.name not in {"xvertfast.__main__", "xvertfast._C"}:  # (_C may not load: its fallback is supported)
            module = importlib.import_module(info.name)
            yield from (cls for _, cls in inspect.getmembers(module, inspect.isclass)
                        if issubclass(cls, BaseException) and cls.__module__ == info.name)  # fmt: skip


def _of_xvertfast(cls: type, method: str) -> bool:
    """Whether the ``method`` ``cls`` runs is xvertfast's, not a built-in exception's."""
    return next(base for base in cls.__mro__ if method in vars(base)).__module__.startswith("xvertfast.")


def test_every_error_with_a_constructor_of_its_own_is_pickled_whole():
    """A new exception class whose constructor does not take its message alone needs
    PickledAsRaised (or a ``__reduce__`` of its own), else it is one more that hangs a pool."""
    constructed = [cls for cls in _exception_classes() if _of_xvertfast(cls, "__init__")]
    assert {NothingFound, DiskFull, _MethodFailed, ReportInterrupted} <= set(constructed)  # (the search finds them)
    assert [cls.__qualname__ for cls in constructed if not _of_xvertfast(cls, "__reduce__")] == []


def test_an_os_error_said_alone_keeps_its_errno_when_pickled_or_copied(tmp_path):
    """said_alone's errors (the export cache's, an export's folder, an evaluation's) read as their message
    alone, their errno set after: Python pickles an OSError as its class called with its args, so a
    copy (one raised in a worker) had errno None, and a read-only cache or a full disk was no longer
    told apart by its caller. Type, message, errno and notes are kept, through copies of copies too,
    and a traceback names the error as before."""
    import traceback

    from xvertfast._pickled_errors import said_alone
    from xvertfast.infer.cache import cache_usage

    (tmp_path / "cache").write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError) as raised:
        cache_usage(str(tmp_path / "cache"))
    made = {raised.value: NotADirectoryError,
            said_alone(OSError, errno.ENOSPC, "engines: could not write (No space left on device)"): OSError,
            said_alone(PermissionError, errno.EROFS, "x: cannot write the exported files there"): PermissionError}
    for exc, kind in made.items():
        exc.__notes__ = ["seen in a worker"]
        want = (exc.errno, str(exc), exc.__notes__)
        assert exc.errno is not None and not str(exc).startswith("[Errno")
        for copied in [pickle.loads(pickle.dumps(exc, protocol)) for protocol in (0, pickle.HIGHEST_PROTOCOL)] + \
                      [copy.copy(exc), copy.deepcopy(exc), pickle.loads(pickle.dumps(copy.deepcopy(exc)))]:  # fmt: skip
            assert isinstance(copied, kind) and type(copied) is type(exc)
            assert (copied.errno, str(copied), copied.__notes__) == want
        assert traceback.format_exception_only(type(exc), exc)[0] == f"{kind.__name__}: {exc}\n"
    assert raised.value.errno == errno.ENOTDIR
