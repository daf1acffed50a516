"""matplotlib as the figures of xvertfast use it: the file-only backend, and no font noise.

Log-scaled axes draw their tick labels with mathtext, and where matplotlib's fonts are
missing it logs "findfont: Font family [...] not found" lines (seen here for STIXGeneral on a
log-scaled plot); the fallback it takes is fine, so those lines are silenced.

Text a user named (a file, a run folder) is drawn as written (:func:`as_written`), not as mathtext,
its bytes that are not UTF-8 as U+FFFD (:func:`utf8_shown`, which report.html's links take too).
"""

from __future__ import annotations

import logging

__all__ = ["as_written", "pyplot", "utf8_shown"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (raises ImportError without matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    return plt


def as_written(text):
    """``text``, a matplotlib Text (a title), drawn as its characters are, and returned: matplotlib
    reads what stands between two $ as mathtext, so a file scan$1$.png was drawn as "scan1.png" and
    one named a$_$b.png (or \\\\srv\\c$\\x$.png) raised a ParseException instead of
    drawing. Bytes of a name that are not UTF-8 become U+FFFD (:func:`utf8_shown`)."""
    text.set_text(utf8_shown(text.get_text()))
    text.set_parse_math(False)
    return text


def utf8_shown(name: str) -> str:
    """``name`` (a file's, a folder's) with its bytes that are not UTF-8 (held as surrogates) as U+FFFD:
    a surrogate stops a figure's drawing, and a web page (report.html's links) takes none."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
