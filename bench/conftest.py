"""pytest-benchmark setup: inputs reused from the tests, devices, synchronisation."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads spin and steal cores

import pytest  # noqa: E402
import torch  # noqa: E402

from xvertfast._extension import cuda_kernels_run_on, has_extension  # noqa: E402


def pytest_collection_modifyitems(config, items):
    gpu = torch.cuda.is_available() and cuda_kernels_run_on(torch.device("cuda", 0))
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU and the CUDA kernels")
    skip_ext = pytest.mark.skip(reason="compiled extension not built")
    for item in items:
        if item.get_closest_marker("cuda") and not gpu:  # (not `in item.keywords`: a test id "cuda" is one)
            item.add_marker(skip_gpu)
        if item.get_closest_marker("kernel") and not has_extension():
            item.add_marker(skip_ext)


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: runs on a CUDA GPU")
    config.addinivalue_line("markers", "kernel: times the compiled extension")


def synchronized(fn, device: str):
    """Wraps fn so that the timed call includes the GPU work it queued."""
    if device != "cuda":
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run
