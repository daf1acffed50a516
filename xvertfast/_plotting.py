"""matplotlib as the figures of xvertfast use it: the file-only backend, and no font noise.

Log-scaled axes draw their tick labels with mathtext, and where matplotlib's fonts are
missing it logs "findfont: Font family [...] not found" lines (seen here for STIXGeneral on a
log-scaled plot); the fallback it takes is fine, so those lines are silenced.
"""

from __future__ import annotations

import logging

__all__ = ["pyplot"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (raises ImportError without matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    return plt
