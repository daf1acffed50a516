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


def test_the_recorded_run_gives_the_figures_results_quotes(capsys):
    """RESULTS.md's memory figures are what the script makes of the run's saved samples."""
    from bench.enhance_memory import main

    saved = os.path.join(os.path.dirname(__file__), "results", "enhance_memory_2026-12-04.json")
    sys_argv = sys.argv
    sys.argv = ["enhance_memory.py", "--samples", saved]
    try:
        assert main() == 0
    finally:
        sys.argv = sys_argv
    printed = capsys.readouterr().out
    assert "| RssAnon (MB) | 2705 | 2679 | 2683 | 2717 | 2581 | 2816 | -17.1 MB per 100 images |" in printed
    assert "2576-2816 MB; mean 2683 MB over images 15-59, 2692 MB over images 60-104, 2688 MB over images 105-149" in printed
    with open(os.path.join(os.path.dirname(__file__), "RESULTS.md")) as f:
        results = f.read()
    assert "| RssAnon (MB) | 2705 | 2679 | 2683 | 2717 | 2581 | 2816 | -17 MB per 100 images |" in results
    assert "within 2576-2816 MB to the end: mean 2683, 2692 and 2688 MB\nover images 15-59, 60-104 and 105-149" in results
