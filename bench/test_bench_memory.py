"""Smoke check of bench/enhance_memory.py (a script, not a timing): a short job of small images
of varied sizes, sampled as the script samples a long one. The figures are in bench/RESULTS.md.

    python bench/enhance_memory.py --count 200 --plot memory.png      (the measurement itself)
"""

from __future__ import annotations

import os
import sys

import pytest

from bench.enhance_memory import measure
from bench.wls_inputs import DATA


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_enhance_memory_script_runs():
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    samples, summary, shapes = measure(count=4, workers=1, rows=(200, 320))
    assert len(shapes) == 4 and summary["peak"] > 0
    assert max(done for _, done, _ in samples) >= 1  # the ledger's outputs counted as they came (the last may
    # come after the last sample: the process ends within one sampling period)
