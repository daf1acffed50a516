"""Preprocessing one 1024^2 radiograph (two WLS solves, spine search) on the CPU.

    pytest bench/test_bench_preprocess.py --benchmark-only

The WLS solves dominate; the reference is the same preprocessing with SciPy's
direct solver in place of xvertfast's (method="direct").
"""

from __future__ import annotations

import os

import pytest

from bench.wls_inputs import DATA, radiograph
from xvertfast import find_spine, preprocess


@pytest.fixture(scope="module")
def image():
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    return radiograph(1024)


@pytest.mark.kernel
def test_preprocess_1024_cpu(benchmark, image):
    benchmark.group = "preprocess 1024x1024"
    benchmark.pedantic(lambda: (preprocess(image, method="cpu"), find_spine(image)), rounds=3, warmup_rounds=1)


def test_preprocess_1024_direct_reference(benchmark, image):
    benchmark.group = "preprocess 1024x1024"
    benchmark.pedantic(lambda: preprocess(image, method="direct"), rounds=1, warmup_rounds=0)
