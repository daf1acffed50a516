"""Errors (and warnings) that name the file and the problem, so a batch job can report and carry on."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable

from xvertfast._pickled_errors import PickledAsRaised

__all__ = ["ImageReadError", "NotAnImage", "ImageWriteError", "DamagedFileError", "FILE_ERRORS", "failure_text",
           "WarningsNamingTheFile", "LogNamingTheFile"]


class _NamesTheFile(PickledAsRaised):
    """The rule every error here keeps: ``path`` and ``problem`` kept apart, and ``str()`` the file
    first, then the problem (and what follows it), as a batch job's line names a failure. Pickled
    and copied as raised (:class:`PickledAsRaised`): rebuilt from its one message by default, which
    these constructors refuse, one raised in a multiprocessing worker hung the pool."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(self._message())

    def _message(self) -> str:
        return f"{self.path}: {self.problem}"


class ImageReadError(_NamesTheFile, ValueError):
    """A file that cannot be read as a radiograph; ``str()`` names the file and why."""


class NotAnImage(ImageReadError):
    """A file that reads whole but holds no radiograph: a DICOM object of another kind (a presentation
    state, a structured report, a key object selection, a DICOMDIR), which every PACS export holds
    beside its images. A batch job counts it apart from its failures (it is nothing to mend), by
    this class, never by its words; ``kind``: what it is in a few letters for a count (its Modality
    where that is one of no image, PR, SR, KO, else the object's name: Raw Data, not its DX). It is
    raised only on evidence that the file is no image: a damaged image is an ImageReadError, never this."""

    def __init__(self, path: str | os.PathLike, problem: str, kind: str = "other"):
        self.kind = kind
        super().__init__(path, problem)


class ImageWriteError(_NamesTheFile, OSError):
    """A radiograph that cannot be written to the requested place."""


class DamagedFileError(_NamesTheFile, ValueError):
    """A file a job wrote for itself (a cache, a later stage's data) that no longer reads as what
    was written there (cut short by a disk error or a copy, replaced, edited); ``str()`` names
    the file, the problem and what to do (``remedy``)."""

    def __init__(self, path: str | os.PathLike, problem: str, remedy: str):
        self.remedy = remedy
        super().__init__(path, problem)

    def _message(self) -> str:
        return f"{super()._message()}; {self.remedy}"


#: The errors that are one file's fault in a batch job (enhance, preprocess): that file fails, named,
#: and the job goes on. Among them: ImageReadError and DamagedFileError (ValueError; read_image wraps
#: whatever a decoder raises on corrupt content into an ImageReadError), ImageWriteError (OSError),
#: out of memory (MemoryError; torch's OutOfMemoryError and its accelerator errors are RuntimeErrors)
#: and what the extension, torch and the codecs raise on a bad image (ValueError, RuntimeError,
#: OSError). Anything else (TypeError, AttributeError, NameError, ...) is a bug in xvertfast, not
#: the file's: it stops the job with its traceback.
FILE_ERRORS = (ValueError, OSError, MemoryError, RuntimeError)


def failure_text(path: str, exc: BaseException) -> str:
    """Why ``path`` failed in a batch job, naming it first, once: the exception's text (its type where
    it has none), out-of-memory said in words ("std::bad_alloc" alone says little), after the path
    unless it begins with it (a text naming another file whose path holds this one's, t/a.png for
    a.png, named the input nowhere). An OSError about ``path`` itself gives its reason alone, not
    "[Errno 13] Permission denied: 'path'" after the path again."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename == path and exc.filename2 is None:
        return f"{path}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        text = "out of memory" if text == "MemoryError" else f"out of memory ({text})"
    return text if text.startswith(f"{path}: ") else f"{path}: {text}"  # (not `in`: a.png is in t/a.png)


class WarningsNamingTheFile:
    """Gives the warnings a decoder raises while a block reads ``path`` (pydicom's: an invalid
    value, excess padding after the pixel data; also where :mod:`~xvertfast.io.write` copies a
    source's header elements, which pydicom converts when first taken) again after the block,
    prefixed by the path, in their own category: a batch of thousands of files otherwise prints
    them with nothing saying which file they are about (and Python's default filter shows each
    text once per process, not once per file). Python's warning state is process-wide
    (``catch_warnings`` is not thread-safe, and enhance reads and writes on several threads), so
    these blocks take turns, and a warning another thread gives during one is passed on as it
    would have been. ``stacklevel``: whose line the warnings are given at, counted as
    :func:`warnings.warn` does from here (3: the caller of the function holding the block)."""

    _lock = threading.Lock()

    def __init__(self, path: str, stacklevel: int = 3):
        self.path, self.caught, self.stacklevel = path, [], stacklevel

    def __enter__(self) -> WarningsNamingTheFile:
        self._lock.acquire()
        try:
            self._state = warnings.catch_warnings()  # keeps the filters and the hook; a fresh "once" per file
            self._state.__enter__()
        except BaseException:
            self._lock.release()
            raise
        reader, passed_on, caught = threading.get_ident(), warnings.showwarning, self.caught
        original, impl = getattr(warnings, "_showwarning_orig", None), getattr(warnings, "_showwarnmsg_impl", None)

        def show(message, category, filename, lineno, file=None, line=None):
            if threading.get_ident() == reader:
                caught.append((message, category))
            elif passed_on is original and impl is not None:  # what showing it would have done (record=True too)
                impl(warnings.WarningMessage(message, category, filename, lineno, file, line))
            else:
                passed_on(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return self

    def leave_out(self, said: Callable[[str], bool]) -> None:
        """Drops the warnings caught so far whose text ``said`` finds the block's refusal of the file
        says already: pydicom's "Invalid value for VR UI" of a UID the file is cut within, printed
        beside the refusal's "truncated" (one cut, two lines in a batch's log)."""
        self.caught[:] = [(message, category) for message, category in self.caught if not said(str(message))]

    def __exit__(self, *exc) -> None:
        try:
            self._state.__exit__(*exc)
            for message, category in dict.fromkeys((str(m), c) for m, c in self.caught):  # once each, in order
                warnings.warn(f"{self.path}: {message}", category, stacklevel=self.stacklevel)
        finally:
            self._lock.release()  # after the warnings are given: another reader's hook would take them for its own


class _ReadingThreadFilter(logging.Filter):
    """On one logger: the records of a thread inside a :class:`LogNamingTheFile` block go to that
    block, not to the logger's handlers; those of any other thread pass as they would."""

    def __init__(self):
        super().__init__()
        self.reading = threading.local()  # (this logger's; another logger's filter has its own)

    def filter(self, record: logging.LogRecord) -> bool:
        block = getattr(self.reading, "block", None)
        if block is None:  # the library used elsewhere: logged as it would be
            return True
        block._collect(record.getMessage())
        return False


class LogNamingTheFile:
    """Keeps what a library logs naming no file (tifffile: a bad tag, a wrong strip count;
    imagecodecs: libpng's warnings) while this thread reads one file in the block, for that file:
    its notes, named (:meth:`notes`), or words added to its error (:meth:`said`). In a batch of
    thousands such lines on stderr say nothing of which file they came from. Other threads'
    records pass as they would (enhance reads on several). At most :attr:`KEPT` messages are kept,
    the others only counted: a damaged table has a library log a line per bogus entry, tens of
    thousands. ``words``: a message as a note says it, None to leave it out (one about the call,
    not the file). An instance is one block, entered once at a time (it holds the block it is
    nested in, to give the thread back to on leaving): a file read again takes a new one."""

    #: The most messages of one logger about one file that are kept; a last one says how many more.
    KEPT = 10

    _filters: dict[str, _ReadingThreadFilter] = {}
    _filters_lock = threading.Lock()

    def __init__(self, logger: str, words: Callable[[str], str | None] | None = None):
        self.logger, self._words = logger, words
        self._messages: list[str] = []  # the first KEPT, as notes say them
        self._more = 0  # how many more there were

    def __enter__(self) -> LogNamingTheFile:
        with self._filters_lock:  # one filter a logger
            reading_thread_filter = self._filters.get(self.logger)
            if reading_thread_filter is None:
                reading_thread_filter = self._filters[self.logger] = _ReadingThreadFilter()
            # added on every block, not once: a host application (or a test's fixture) that took it
            # off the logger would have every later file's lines go to stderr, naming none
            logging.getLogger(self.logger).addFilter(reading_thread_filter)  # (no-op where it is on)
        self._filter, self._outer = reading_thread_filter, getattr(reading_thread_filter.reading, "block", None)
        reading_thread_filter.reading.block = self
        return self

    def __exit__(self, *exc) -> None:
        self._filter.reading.block = self._outer

    def _collect(self, message: str) -> None:
        """One record's message: kept while fewer than :attr:`KEPT` are, else counted."""
        said = self._words(message) if self._words else message
        if said is None:
            return
        if len(self._messages) < self.KEPT:
            self._messages.append(said)
        else:
            self._more += 1

    def kept(self) -> list[str]:
        """The first :attr:`KEPT` messages, as notes say them, and how many more there were."""
        if not self._more:
            return list(self._messages)
        return self._messages + [f"... and {self._more} more messages from {self.logger} about this file"]

    def notes(self, path: str) -> list[str]:
        return [f"{path}: {message}" for message in self.kept()]

    def said(self) -> str:
        """The messages as words added to the file's error ("" where there were none), the
        logger named once before them (not again where a message's words start with its name)."""
        kept = [message.removeprefix(f"{self.logger}: ") for message in self.kept()]
        return f"; {self.logger}: {'; '.join(kept)}" if kept else ""
