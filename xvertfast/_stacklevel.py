"""The ``stacklevel`` of a warning meant for the user's line, whatever depth xvertfast raises it at."""

from __future__ import annotations

import os
import sys

__all__ = ["outside_xvertfast"]

#: xvertfast's own source files, whose frames a warning for the user skips
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def outside_xvertfast() -> int:
    """The ``stacklevel`` at which a warning raised by the caller of this function names the first
    line outside xvertfast, the user's. A backend, for one, is built at its first use, which lies one
    call below ``Enhancer.backend``, three below ``enhance`` and four below ``enhance_files``, and
    the precision is resolved inside ``Enhancer(...)`` or by a direct call: no fixed level names the
    user's line from all of them. (Python 3.12's ``skip_file_prefixes`` does this; 3.11 lacks it.)"""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    return level
