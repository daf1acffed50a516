"""The ``stacklevel`` of a warning meant for the user's line, whatever depth xvertfast raises it at,
and the warnings of a batch job's reader threads, which no user's line called."""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import warnings

__all__ = ["image_name", "image_names", "naming_images", "outside_xvertfast", "reading_file", "solved_part",
           "solving", "warn_user", "warnings_of_file"]

#: xvertfast's own source files, whose frames a warning for the user skips
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: the standard library's contextlib, whose frames lie between a ``@contextmanager`` of
#: xvertfast's and the ``with`` that entered it
_CONTEXTLIB = contextlib.contextmanager.__code__.co_filename  # (as its frames name it, were the install moved)


def outside_xvertfast() -> int:
    """The ``stacklevel`` at which a warning raised by the caller of this function names the first
    line outside xvertfast, the user's. A backend, for one, is built at its first use, which lies one
    call below ``Enhancer.backend``, three below ``enhance`` and four below ``enhance_files``, and
    the precision is resolved inside ``Enhancer(...)`` or by a direct call: no fixed level names the
    user's line from all of them. (Python 3.12's ``skip_file_prefixes`` does this; 3.11 lacks it.)

    It skips xvertfast's frames, the standard library contextlib's (a warning from inside a
    ``@contextmanager`` generator is called through contextlib's ``__enter__``) and torch's that
    call xvertfast's code for the user (the ``@torch.no_grad()`` wrapper of XVertNet.enhance and
    ``nn.Module.__call__``: ``model.enhance(xp, y)`` and ``model(xp, y)`` named torch's
    _contextlib.py); any other foreign frame between xvertfast's stops it there. The import
    system's frames, between the user's ``import`` and a module of xvertfast that warns as it is
    imported, are skipped uncounted, as ``warnings.warn`` counts ``stacklevel`` without them."""
    skipped = {_CONTEXTLIB, *_torch_callers()}
    level, frame = 1, sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                 or frame.f_code.co_filename in skipped or _importing(frame)):  # fmt: skip
        frame = frame.f_back
        level += frame is None or not _importing(frame)
    return level


def _torch_callers() -> tuple[str, ...]:
    """The files, as torch's frames name them, whose frames lie between the user's line and
    xvertfast's without being the user's: the wrapper of a ``@torch.no_grad()`` method
    (XVertNet.enhance) and ``nn.Module.__call__`` (model(xp, y)); none before torch is imported.
    By their code's names, as contextlib's: a module's ``__file__`` is where it was imported
    from, its frames' names where it was compiled, which differ in an install moved since."""
    torch = sys.modules.get("torch")
    try:
        return (torch.nn.Module.__call__.__code__.co_filename,
                torch.utils._contextlib.context_decorator.__code__.co_filename)  # fmt: skip
    except AttributeError:  # (no torch yet, or one half imported)
        return ()


def _importing(frame) -> bool:
    """Whether ``frame`` is the import system's, which ``warnings.warn`` leaves out of its count
    (its test: a file name holding both "importlib" and "_bootstrap")."""
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name


#: (path, kept) of the file a batch job's reader thread works on (path None: the job's own thread, running a
#: network's batch of tiles from several files): its warnings for the user go to ``kept``
_READING = contextvars.ContextVar("xvertfast_reading_file", default=None)


@contextlib.contextmanager
def warnings_of_file(path: str | None, kept: list | None = None):
    """Within the block (a batch job's reader thread, on ``path``), :func:`warn_user`'s warnings
    are kept in the list it yields, as (file, message, category), not raised: ``file`` the file
    a warning about an image is of (``path``, or the one :func:`naming_images` gives the image),
    None for one about the settings. Raised on the pool's thread they named its line
    (concurrent/futures/thread.py) and no file, and Python's default filter showed a text once a
    process, not once a file: the job gives them on its own thread, those of an image with its
    file's warnings. ``path`` None: the job's thread running a batch of several files' tiles,
    whose warnings about one go to its file's record too, not to Python's filters. ``kept``: the
    list to keep them in, the caller's where the block may raise (a read that fails after a
    warning: the warning is still the job's to give). A context variable, not
    ``catch_warnings``: that is process-wide, and the readers run together."""
    kept = [] if kept is None else kept
    token = _READING.set((None if path is None else os.fspath(path), kept))
    try:
        yield kept
    finally:
        _READING.reset(token)


def reading_file() -> str | None:
    """The file the calling thread reads for a batch job (:func:`warnings_of_file`), or None."""
    reading = _READING.get()
    return None if reading is None else reading[0]


def warn_user(message: str, category: type[Warning], of_the_image: bool = False, file: str | None = None) -> None:
    """``warnings.warn`` at the user's line (:func:`outside_xvertfast`), or, in a batch job, kept for
    the job to give (:func:`warnings_of_file`). ``of_the_image``: the warning is about the image
    being solved (a solve that missed its tolerance), not about the settings; ``file``: that image's
    file where it is known (:func:`image_name`)."""
    reading = _READING.get()
    if reading is not None:
        of_file = (file or reading[0]) if of_the_image else None
        if of_file is not None or not of_the_image:  # (an image of no known file: given as Python would)
            reading[1].append((of_file, message, category))
            return
    warnings.warn(message, category, stacklevel=outside_xvertfast())


#: what the solves within the block compute ("its base layer"), named in their warnings
_SOLVING = contextvars.ContextVar("xvertfast_solving", default=None)


@contextlib.contextmanager
def solving(part: str):
    """Within the block, a solve's warnings say what it computes (:func:`solved_part`):
    preprocessing solves each image twice, and two lines 'the image did not reach rtol' with
    two residuals read as one warning given twice."""
    token = _SOLVING.set(part)
    try:
        yield
    finally:
        _SOLVING.reset(token)


def solved_part() -> str | None:
    """What the solves of the calling block compute (:func:`solving`), or None."""
    return _SOLVING.get()


#: the (file, name) of each image (row) of the batch being solved, where a batch job knows them
_IMAGE_NAMES = contextvars.ContextVar("xvertfast_image_names", default=None)


@contextlib.contextmanager
def naming_images(names):
    """Within the block, image ``k`` of a batch solved (a network's batch of tiles) is ``names[k]``,
    a (file, name) pair ("tile 2 of 3" of that file), in warnings about it (:func:`image_name`):
    "image 3", its position in a batch of tiles from several files, told a batch job's user nothing.
    None names none (a solve outside a batch job)."""
    token = _IMAGE_NAMES.set(None if names is None else list(names))
    try:
        yield
    finally:
        _IMAGE_NAMES.reset(token)


def image_names() -> list[tuple[str, str]] | None:
    """The (file, name) pairs :func:`naming_images` gives the rows of the batch being solved, or None."""
    return _IMAGE_NAMES.get()


def image_name(k: int) -> tuple[str, str] | None:
    """The (file, name) of image ``k`` of the batch being solved (:func:`naming_images`), or None."""
    names = _IMAGE_NAMES.get()
    return names[k] if names is not None and 0 <= k < len(names) else None
