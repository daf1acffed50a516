"""WLS solve at 1024^2 on a real radiograph: xvertfast's solver against CHOLMOD-free baselines.

    pytest bench/test_bench_wls.py --benchmark-only --benchmark-group-by=group
    python bench/wls_table.py      # the table for RESULTS.md (sizes, iterations, memory)
"""

from __future__ import annotations

import pytest
import torch

import os

from bench.wls_inputs import DATA, cupy_jacobi_cg, cupy_jacobi_system, pyamg_solve, radiograph, scipy_direct
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


# ---- GPU at 2048^2: the native CUDA solver on a batch vs cupyx Jacobi-CG on one image -----------

GPU_SIZE, GPU_BATCH = 2048, 8


@pytest.fixture(scope="module")
def gpu_batch():
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    return torch.stack([torch.from_numpy(radiograph(GPU_SIZE, k)) for k in range(GPU_BATCH)]).cuda()


@pytest.mark.cuda
@pytest.mark.kernel
def test_wls_xvertfast_cuda_batch(benchmark, gpu_batch):
    # divide by GPU_BATCH for the time per image
    benchmark.group = f"wls {GPU_SIZE}x{GPU_SIZE} rtol 1e-4 cuda (xvertfast: batch of {GPU_BATCH})"

    def run():
        out = wls(gpu_batch, method="cuda")
        torch.cuda.synchronize()
        return out

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)


@pytest.mark.cuda
def test_wls_cupy_jacobi_cg(benchmark, gpu_batch):
    pytest.importorskip("cupy")
    import cupy as cp

    benchmark.group = f"wls {GPU_SIZE}x{GPU_SIZE} rtol 1e-4 cuda (xvertfast: batch of {GPU_BATCH})"
    system = cupy_jacobi_system(gpu_batch[0].cpu().numpy())

    def run():
        out = cupy_jacobi_cg(system)
        cp.cuda.Device().synchronize()
        return out

    benchmark.pedantic(run, rounds=1, warmup_rounds=1)
