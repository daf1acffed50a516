"""Errors that name the file and the problem, so a batch job can report and carry on."""

from __future__ import annotations

import os


class ImageReadError(ValueError):
    """A file that cannot be read as a radiograph; ``str()`` names the file and why."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ImageWriteError(OSError):
    """A radiograph that cannot be written to the requested place."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DamagedFileError(ValueError):
    """A file a job wrote for itself (a cache, a later stage's data) that no longer reads as what
    was written there (cut short by a disk error or a copy, replaced, edited); ``str()`` names
    the file, the problem and what to do (``remedy``)."""

    def __init__(self, path: str | os.PathLike, problem: str, remedy: str):
        self.path = os.fspath(path)
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"{self.path}: {problem}; {remedy}")


def failure_text(path: str, exc: BaseException) -> str:
    """Why ``path`` failed in a batch job, naming it once: the exception's text (its type where
    it has none), out-of-memory said in words ("std::bad_alloc" alone says little)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        text = "out of memory" if text == "MemoryError" else f"out of memory ({text})"
    return text if path in text else f"{path}: {text}"
