"""Exceptions of xvertfast's own that pickle and copy as they were raised. Python rebuilds an
exception by calling its class with its ``args`` (the one message, where the constructor builds
it): a constructor that takes other arguments refused that (TypeError) or built the message again
from the message (one of them inside the other), and a multiprocessing pool whose worker raised
such an error hung (its result thread died unpickling it). And :func:`said_alone`: an OSError that
reads as its message alone and keeps its errno through a copy too (a full disk still one)."""

from __future__ import annotations

import copyreg
import importlib

__all__ = ["PickledAsRaised", "said_alone"]

#: What an OSError keeps outside ``__dict__`` and ``args``: ``errno`` (ENOSPC of a full disk),
#: ``strerror`` (the message of an error made of ``(errno, strerror)``) and the file names.
_OS_ERROR_FIELDS = ("errno", "strerror", "filename", "filename2")


class PickledAsRaised:
    """Put first among an exception class's bases: pickled, copied and deep-copied, it is made
    without its constructor and given the ``args`` (so the message), the attributes (notes
    included) and, for an OSError, the error number and text it was raised with. Its constructor
    is not run again: a message that says what a folder held then (a checkpoint's epochs) is kept
    as it was said."""

    def __reduce__(self):
        state = {**self.__dict__, "args": self.args}
        if isinstance(self, OSError):
            state.update((field, getattr(self, field)) for field in _OS_ERROR_FIELDS
                         if getattr(self, field) is not None)  # (one set to None is said as "None" by str())
        return copyreg.__newobj__, (type(self),), state


#: The subclass :func:`said_alone` makes of each kind of OSError, made once.
_SAID_ALONE: dict[type, type] = {}


def said_alone(kind: type[OSError] | None, code: int | None, message: str) -> OSError:
    """An OSError of ``kind`` with ``errno`` ``code`` that reads as ``message`` alone: callers
    that tell errors apart by type or errno (a full disk) still can, and the user reads no
    '[Errno 20] ...' before the words that name the file. ``kind`` None: the kind ``code`` gives, as
    OSError(code, ...) does (a PermissionError for EACCES). It is of a subclass of the kind named as
    the kind is (:class:`_SaidAlone`), so that a copy keeps the errno."""
    if kind is None:
        kind = type(OSError(code, "")) if code is not None else OSError
    kind = getattr(kind, "_kind", kind)  # (one said alone again: of its kind, not a subclass of the subclass)
    if (alone := _SAID_ALONE.get(kind)) is None:
        alone = _SAID_ALONE[kind] = type(kind.__name__, (_SaidAlone, kind), {
            "_kind": kind, "__module__": kind.__module__, "__qualname__": kind.__qualname__})  # fmt: skip
    error = alone(message)
    error.errno = code
    return error


class _SaidAlone:
    """Put first among the bases of :func:`said_alone`'s errors. Python pickles an OSError as its
    class called with its ``args``, here the message alone, so a copy (one raised in a
    multiprocessing worker) came back with errno None, and a full disk or a read-only cache was no
    longer told apart by its caller. Pickled and copied by :func:`said_alone` again, with the errno
    and the attributes (notes included) it had."""

    _kind: type[OSError]

    def __reduce__(self):
        # (the kind by its name: pickle's protocols 0-2 name NotADirectoryError and its like as Python 2's OSError)
        kind = (self._kind.__module__, self._kind.__qualname__)
        return _said_alone_again, (kind, self.errno, self.args[0] if self.args else ""), dict(vars(self))


def _said_alone_again(kind: tuple[str, str], code: int | None, message: str) -> OSError:
    """:func:`said_alone` of the kind named ``(module, qualified name)``: a pickled one made again."""
    found = importlib.import_module(kind[0])
    for name in kind[1].split("."):
        found = getattr(found, name)
    return said_alone(found, code, message)
