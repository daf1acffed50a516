"""matplotlib as the figures of xvertfast use it: the file-only backend, and no font noise.

Log-scaled axes draw their tick labels with mathtext, and where matplotlib's bundled fonts
are missing it logs a "findfont: ... not found" line per glyph family (17 lines per
figure seen on a training run); the fallback it takes is fine, so those lines are silenced.
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
