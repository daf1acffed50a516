"""Preprocessing one 1024^2 radiograph (two WLS solves, spine search) on the CPU.

    pytest bench/test_bench_preprocess.py --benchmark-only

The WLS solves dominate; the reference is the same preprocessing with SciPy's
direct solver in place of xvertfast's (method="direct"). Like for like: both sides time
``preprocess`` and ``find_spine`` (the spine search does not depend on the method), with the
same warm-up and rounds; the reference's benchmark checks xvertfast's outputs against its own.
"""

from __future__ import annotations

import os

import pytest

from bench.wls_inputs import DATA, radiograph, rel_err
from xvertfast import find_spine, preprocess

ROUNDS, WARMUP = 3, 1


@pytest.fixture(scope="module")
def image():
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    return radiograph(1024)


def preprocess_and_spine(image, method):
    return preprocess(image, method=method), find_spine(image)


@pytest.mark.kernel
def test_preprocess_1024_cpu(benchmark, image):
    benchmark.group = "preprocess 1024x1024"
    benchmark.pedantic(lambda: preprocess_and_spine(image, "cpu"), rounds=ROUNDS, warmup_rounds=WARMUP)


def test_preprocess_1024_direct_reference(benchmark, image):
    benchmark.group = "preprocess 1024x1024"
    want, _ = benchmark.pedantic(lambda: preprocess_and_spine(image, "direct"), rounds=ROUNDS,
                                     warmup_rounds=WARMUP)  # fmt: skip
    got, _ = preprocess_and_spine(image, "cpu")
    # the WLS base layer within issue #3's 1e-4, and X_p; Y = X_p - WLS(X_p) is a small
    # difference, so its relative error is larger (9e-5 measured on 2026-12-04)
    errors = {f"rel_err_{k}": rel_err(getattr(got, k), getattr(want, k)) for k in ("g", "xp", "y")}
    benchmark.extra_info.update(errors)
    assert errors["rel_err_g"] <= 1e-4 and errors["rel_err_xp"] <= 1e-4
    assert errors["rel_err_y"] <= 1e-3
