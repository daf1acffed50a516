"""WLS solve at 1024^2 on a real radiograph: xvertfast's solver against CHOLMOD-free baselines.

    pytest bench/test_bench_wls.py --benchmark-only --benchmark-group-by=group
    python bench/wls_table.py      # the table for RESULTS.md (sizes, iterations, memory)
"""

from __future__ import annotations

import pytest
import torch

import os

from bench.wls_inputs import DATA, pyamg_solve, radiograph, scipy_direct
from xvertfast import wls

SIZE = 1024


@pytest.fixture(scope="module")
def image():
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    return radiograph(SIZE)


@pytest.mark.kernel
def test_wls_xvertfast_cpu(benchmark, image):
    benchmark.group = f"wls {SIZE}x{SIZE} rtol 1e-4 cpu"
    benchmark.pedantic(lambda: wls(image, method="cpu"), rounds=5, warmup_rounds=1)


def test_wls_pyamg_rs_pcg(benchmark, image):
    pytest.importorskip("pyamg")
    benchmark.group = f"wls {SIZE}x{SIZE} rtol 1e-4 cpu"
    benchmark.pedantic(lambda: pyamg_solve(image), rounds=2, warmup_rounds=0)


def test_wls_scipy_spsolve(benchmark, image):
    benchmark.group = f"wls {SIZE}x{SIZE} rtol 1e-4 cpu"
    benchmark.pedantic(lambda: scipy_direct(image), rounds=1, warmup_rounds=0)


@pytest.mark.cuda
def test_wls_torch_on_gpu(benchmark, image):
    benchmark.group = f"wls {SIZE}x{SIZE} rtol 1e-4 cuda"
    x = torch.from_numpy(image).cuda()

    def run():
        out = wls(x, method="torch")
        torch.cuda.synchronize()
        return out

    benchmark.pedantic(run, rounds=2, warmup_rounds=1)
