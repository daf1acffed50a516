"""Exceptions of xvertfast's own that pickle and copy as they were raised. Python rebuilds an
exception by calling its class with its ``args`` (the one message, where the constructor builds
it): a constructor that takes other arguments refused that (TypeError) or built the message again
from the message (one of them inside the other), and a multiprocessing pool whose worker raised
such an error hung (its result thread died unpickling it)."""

from __future__ import annotations

import copyreg

__all__ = ["PickledAsRaised"]

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
