"""The ``stacklevel`` of a warning meant for the user's line, whatever depth xvertfast raises it at."""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["outside_xvertfast"]

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

    It skips xvertfast's frames and the standard library contextlib's (a warning from inside a
    ``@contextmanager`` generator is called through contextlib's ``__enter__``); any other
    foreign frame between xvertfast's, a torch decorator's for one, stops it there. The import
    system's frames, between the user's ``import`` and a module of xvertfast that warns as it is
    imported, are skipped uncounted, as ``warnings.warn`` counts ``stacklevel`` without them."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                 or frame.f_code.co_filename == _CONTEXTLIB or _importing(frame)):  # fmt: skip
        frame = frame.f_back
        level += frame is None or not _importing(frame)
    return level


def _importing(frame) -> bool:
    """Whether ``frame`` is the import system's, which ``warnings.warn`` leaves out of its count
    (its test: a file name holding both "importlib" and "_bootstrap")."""
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name
