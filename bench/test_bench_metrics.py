"""Evaluation metrics on one 512 x 290 ROI (the protocol's ROI size), one core.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 pytest bench/test_bench_metrics.py --benchmark-only

The ROI is cut from the middle of a cxr-dev NIH radiograph (set XVF_BENCH_SMALL=1 for a
256 x 176 ROI and fewer rounds when only a quick look is wanted). The target is <= 0.1 s
per metric; the first call's one-off work (LPC-SI's filter bank, the BRISQUE model) is
left to the warm-up round. TMQI's test image is the ROI after a gamma of 0.7.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench.wls_inputs import DATA, radiograph
from xvertfast.eval import metrics

SMALL = os.environ.get("XVF_BENCH_SMALL") == "1"
(HEIGHT, WIDTH), ROUNDS = ((256, 176), 5) if SMALL else ((512, 290), 20)


@pytest.fixture(scope="module")
def roi():
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    image = radiograph(1024)
    top, left = (1024 - HEIGHT) // 2, (1024 - WIDTH) // 2
    original = metrics.to_8bit(image[top : top + HEIGHT, left : left + WIDTH])
    enhanced = metrics.to_8bit((original / 255.0) ** 0.7)
    return original, enhanced


CALLS = {
    "entropy": lambda original, enhanced: metrics.entropy(enhanced),
    "tenengrad": lambda original, enhanced: metrics.tenengrad(enhanced),
    "lpc_si": lambda original, enhanced: metrics.lpc_si(enhanced),
    "tmqi": lambda original, enhanced: metrics.tmqi(original, enhanced),
    "brisque": lambda original, enhanced: metrics.brisque(enhanced),
}


@pytest.mark.parametrize("metric", CALLS)
def test_metric(benchmark, roi, metric):
    benchmark.group = f"metrics {HEIGHT}x{WIDTH} ROI"
    value = benchmark.pedantic(CALLS[metric], args=roi, rounds=ROUNDS, warmup_rounds=1)
    assert np.isfinite(value)
