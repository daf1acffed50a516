"""Evaluation metrics on one 512 x 290 ROI (the protocol's ROI size), one core.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 pytest bench/test_bench_metrics.py --benchmark-only

The ROI is cut from the middle of a cxr-dev NIH radiograph (set XVF_BENCH_SMALL=1 for a
256 x 176 ROI and fewer rounds when only a quick look is wanted). The target is <= 0.1 s
per metric; the first call's one-off work (LPC-SI's filter bank, the BRISQUE model) is
left to the warm-up round. TMQI's test image is the ROI after a gamma of 0.7.

Each benchmark then checks its metric, untimed, against the MATLAB goldens of shared/metrics
(the tests' tolerances) on the goldens' own 512 x 290 image (the TMQI pair built from it);
without the goldens (set XVF_SHARED_METRICS) that check does not run, and extra_info says so.
Entropy is also checked on the timed ROI itself against its definition (NumPy histogram).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench import SMALL
from bench.wls_inputs import DATA, radiograph
from tests.eval.test_metrics import GOLDENS, assert_golden, load, pair
from xvertfast.eval import metrics

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


#: the goldens' image of the protocol's ROI size, and the TMQI pair made from it
GOLDEN_IMAGE, GOLDEN_PAIR = "noisegrad_512x290.png", "noisegrad_512x290.png->noisegrad_blur2_512x290.png"
GOLDEN_KEYS = {  # metric -> (key in the goldens, tolerance key)
    "entropy": ("entropy_log2_256", "entropy_log2_256"),
    "tenengrad": ("tenengrad_mean_sq_01", "tenengrad"),
    "lpc_si": ("lpc_si_255", "lpc_si"),
    "brisque": ("brisque_live_255", "brisque_live_255"),
}


def entropy_by_definition(img: np.ndarray) -> float:
    p = np.bincount(img.ravel(), minlength=256) / img.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def check_against_reference(metric: str, roi) -> str:
    """Checks the metric's value where a reference exists; returns what it was checked against."""
    if metric == "entropy":
        assert metrics.entropy(roi[1]) == pytest.approx(entropy_by_definition(roi[1]), abs=1e-12)
    if GOLDENS is None:  # the timing stays; the value check cannot run here
        return "definition (entropy)" if metric == "entropy" else "nothing: goldens not found"
    if metric == "tmqi":
        p = pair(GOLDEN_PAIR)
        got = metrics.tmqi(load(p["reference"]), load(p["test"]))
        assert_golden(got, p["ldr255"]["Q"], "tmqi", f"tmqi {GOLDEN_PAIR}")
    else:
        key, tol = GOLDEN_KEYS[metric]
        got = CALLS[metric](None, load(GOLDEN_IMAGE))
        assert_golden(got, GOLDENS["images"][GOLDEN_IMAGE][key], tol, f"{metric} {GOLDEN_IMAGE}")
    return "goldens" + (" and definition" if metric == "entropy" else "")


@pytest.mark.parametrize("metric", CALLS)
def test_metric(benchmark, roi, metric):
    benchmark.group = f"metrics {HEIGHT}x{WIDTH} ROI"
    value = benchmark.pedantic(CALLS[metric], args=roi, rounds=ROUNDS, warmup_rounds=1)
    assert np.isfinite(value)
    benchmark.extra_info["value_checked_against"] = check_against_reference(metric, roi)
