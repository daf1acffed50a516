"""Enhancer(wls_method="cuda" or "cupy") where the CUDA kernels cannot run: refused when it is made,
not by every image's preprocessing (no GPU needed: the GPU and the kernels are faked)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import BuiltWithNvcc
from xvertfast import _extension
from xvertfast.infer import Enhancer
from xvertfast.infer import enhancer as enhancer_module
from xvertfast.model import XVertNet, XVertNetStage


def tiny_model() -> XVertNet:
    return XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()


@pytest.fixture
def fake_t4(monkeypatch):
    """One GPU, a T4 (compute capability 7.5), as torch sees it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))


@pytest.mark.parametrize("method", ["cuda", "cupy"], ids=["method-cuda", "method-cupy"])
def test_a_gpu_solver_on_the_cpu_is_refused_when_the_enhancer_is_made(method):
    # every image failed at preprocessing: "wls: method='cuda' needs a CUDA tensor, got one on cpu"
    with pytest.raises(ValueError, match=rf"wls_method '{method}' solves on a CUDA GPU, but the device is cpu; use "
                                         r"wls_method 'auto' or 'cpu'"):  # fmt: skip
        Enhancer(tiny_model(), device="cpu", wls_method=method)


@pytest.mark.parametrize("method", ["cuda", "cupy"], ids=["method-cuda", "method-cupy"])
def test_a_gpu_the_kernels_were_not_built_for_is_named_as_the_cause(fake_t4, monkeypatch, method):
    # the preprocessing fell back to the CPU there, and every image failed with the misleading
    # "needs a CUDA tensor, got one on cpu"
    monkeypatch.setattr(_extension, "cuda_kernels_run_on", lambda device: False)
    monkeypatch.setattr(_extension, "extension", lambda: BuiltWithNvcc(torch_cuda=True))
    with pytest.raises(RuntimeError, match=rf"wls_method '{method}' on cuda:0: the CUDA kernels were built for "
                                           r"sm_80,sm_90,compute_90, which GPU 0 \(compute capability 7\.5\) cannot run "
                                           r"\(rebuild for it with TORCH_CUDA_ARCH_LIST=\"7\.5\" pip install "
                                           r"--no-build-isolation \.\); use "
                                           r"wls_method 'auto'"):  # fmt: skip
        Enhancer(tiny_model(), device="cuda", wls_method=method)


def test_an_extension_without_cuda_kernels_is_named_as_the_cause(fake_t4, monkeypatch):
    class WithoutCudaKernels(BuiltWithNvcc):
        def cuda_compiled(self):
            return False

    monkeypatch.setattr(_extension, "cuda_kernels_run_on", lambda device: False)
    monkeypatch.setattr(_extension, "extension", lambda: WithoutCudaKernels(torch_cuda=True))
    with pytest.raises(RuntimeError, match=r"wls_method 'cuda' on cuda:0: the extension was built without its CUDA "
                                           r"kernels \(no nvcc at build time\); use wls_method 'auto'"):  # fmt: skip
        Enhancer(tiny_model(), device="cuda", wls_method="cuda")
    monkeypatch.setattr(_extension, "extension", lambda: BuiltWithNvcc(torch_cuda=True))
    monkeypatch.setattr(_extension, "cuda_glue_error", lambda: "built for torch 2.12, this is 2.13")
    with pytest.raises(RuntimeError, match=r"wls_method 'cuda' on cuda:0: the compiled CUDA kernels cannot be used: "
                                           r"built for torch 2\.12, this is 2\.13; use wls_method 'auto'"):  # fmt: skip
        Enhancer(tiny_model(), device="cuda", wls_method="cuda")


def test_where_the_kernels_run_a_gpu_solver_is_let_through(fake_t4, monkeypatch):
    monkeypatch.setattr(enhancer_module, "cuda_kernels_run_on", lambda device: True)
    monkeypatch.setattr(_extension, "cuda_kernels_run_on", lambda device: True)
    enh = Enhancer(tiny_model(), device="cuda", wls_method="cuda", backend="torch")
    assert enh.prepare_device == torch.device("cuda", 0)
