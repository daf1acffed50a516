"""method="cupy" on a GPU other than torch's current one: every DLPack exchange between torch
and CuPy must happen with both libraries on the batch's GPU and stream. torch's ``__dlpack__``
orders a consumer's stream after ``torch.cuda.current_stream()`` of torch's *current* device:
with the batch on cuda:1 and torch's current device 0, each exchange recorded an event on
GPU 0 (making a CUDA context there, hundreds of MB of another GPU) and ordered nothing on GPU 1.
Here a fake CuPy (NumPy underneath) and the CPU kernels stand in for the GPU."""

from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
import pytest
import torch

from xvertfast._extension import has_extension
from xvertfast.ops import wls_pcg
from xvertfast.ops import wls_reference as ref
from xvertfast.ops.wls_direct import solve_direct

needs_ext = pytest.mark.skipif(not has_extension(), reason="compiled extension not built")
PARAMS = dict(lam=ref.DEFAULT_LAM, alpha=ref.DEFAULT_ALPHA, eps=ref.DEFAULT_EPS)
#: the batch's GPU in the fake; torch's and CuPy's current devices start at 0
GPU = 1
STREAM = 4242


class FakeCupy(types.ModuleType):
    """NumPy as CuPy, with CuPy's current device and stream kept in ``state`` and every
    ``from_dlpack`` recording where torch and CuPy stood."""

    def __init__(self, state: dict, exchanges: list):
        super().__init__("cupy")
        self.state, self.exchanges = state, exchanges
        fake = self

        @contextlib.contextmanager
        def use(key, value):
            before = fake.state[key]
            fake.state[key] = value
            try:
                yield
            finally:
                fake.state[key] = before

        self.cuda = types.SimpleNamespace(Device=lambda index: use("cupy_device", index),
                                          ExternalStream=lambda ptr, device_id=None: use("cupy_stream", ptr))  # fmt: skip

    def __getattr__(self, name):
        return getattr(np, name)

    def from_dlpack(self, tensor):
        self.exchanges.append(("cupy.from_dlpack", dict(self.state)))
        return np.from_dlpack(tensor)


@pytest.fixture
def fake_gpu(monkeypatch):
    """A fake CuPy and a torch.cuda whose current device follows ``torch.cuda.device``; returns
    the list of exchanges, each with torch's and CuPy's current device and CuPy's stream."""
    state = {"torch_device": 0, "cupy_device": 0, "cupy_stream": 0}
    exchanges = []
    monkeypatch.setitem(sys.modules, "cupy", FakeCupy(state, exchanges))

    @contextlib.contextmanager
    def device(index):
        before = state["torch_device"]
        state["torch_device"] = torch.device(index).index if not isinstance(index, int) else index
        try:
            yield
        finally:
            state["torch_device"] = before

    monkeypatch.setattr(torch.cuda, "device", device)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: state["torch_device"])
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=STREAM))
    from_dlpack = torch.from_dlpack

    def recording(array):
        exchanges.append(("torch.from_dlpack", dict(state)))
        return from_dlpack(array)

    monkeypatch.setattr(torch, "from_dlpack", recording)
    monkeypatch.setattr(wls_pcg, "cuda_index", lambda device: GPU)  # the batch "is on" cuda:1
    return exchanges


@needs_ext
def test_every_exchange_happens_on_the_batchs_gpu_and_stream(fake_gpu, seed):
    batch = torch.rand(2, 23, 31, dtype=torch.float64).clamp_min(0.05)
    out, iterations, residual = wls_pcg.wls_cupy(batch, *PARAMS.values(), 1e-6, 200)
    assert isinstance(out, torch.Tensor) and out.shape == batch.shape
    for img, got in zip(batch, out):
        want = solve_direct(img, **PARAMS)
        assert float((got - want).norm() / want.norm()) <= 1e-5
    assert all(r <= 1e-6 for r in residual) and all(i > 0 for i in iterations)
    where = {"torch_device": GPU, "cupy_device": GPU, "cupy_stream": STREAM}
    assert fake_gpu and fake_gpu[-1][0] == "torch.from_dlpack"  # the result, handed back
    wrong = [(name, state) for name, state in fake_gpu if state != where]
    assert not wrong, f"{len(wrong)} of {len(fake_gpu)} exchanges off GPU {GPU}'s stream, first: {wrong[0]}"


@pytest.mark.parametrize("cuda, wheel", [("12.6", "cupy-cuda12x"), ("13.0", "cupy-cuda13x"), ("11.8", "cupy-cuda11x")])
def test_without_cupy_the_error_names_the_wheel_for_torchs_cuda(monkeypatch, cuda, wheel):
    # it said only pip install 'xvertfast[gpu]', whose cupy-cuda13x does not run beside a CUDA 12 torch
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    monkeypatch.setattr(torch.version, "cuda", cuda)
    with pytest.raises(RuntimeError, match=rf"method='cupy' needs CuPy: pip install {wheel} \(the CuPy of this "
                                           rf"torch's CUDA {cuda}\); method='cuda' needs nothing more"):  # fmt: skip
        wls_pcg.wls_cupy(torch.rand(1, 4, 4), *PARAMS.values(), 1e-4, 10)
