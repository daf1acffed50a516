"""The CUDA stream TensorRT's stages run on: never the legacy default stream, which TensorRT 10
meets with a warning ("Using default stream in enqueueV3() may lead to performance issues due to
additional calls to cudaStreamSynchronize()") and synchronisations of its own."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from tests.infer.test_export import TILE, inputs, install_fake_tensorrt, needs_export, needs_tensorrt, tiny_model
from xvertfast.infer import tensorrt_backend


class FakeStream:
    """A torch.cuda.Stream that records, in ``log``, what waits for what."""

    def __init__(self, ptr: int, log: list):
        self.cuda_stream, self.log = ptr, log

    def wait_stream(self, other):
        self.log.append(("wait", self.cuda_stream, other.cuda_stream))


def fake_engines(tmp_path, stages: int = 2, max_batch: int = 4) -> list[str]:
    """Engine files FakeTensorRT loads: their profile, batches 1..max_batch at TILE."""
    profile = [[1, 1, TILE, TILE], [max_batch, 1, TILE, TILE], [max_batch, 1, TILE, TILE]]
    paths = []
    for k in range(stages):
        path = tmp_path / f"stage{k + 1}.engine"
        path.write_text(json.dumps({"shapes": {"xp": profile, "y": profile}}))
        paths.append(str(path))
    return paths


def test_on_torchs_default_stream_the_engines_run_on_a_stream_of_their_own(tmp_path, monkeypatch, seed):
    # a batch job runs on torch's default stream (cuda_stream 0): execute_async_v3 was given it
    fake = install_fake_tensorrt(monkeypatch)
    log = []
    fake.calls = log  # the executions in the same log as the waits, in order
    default = FakeStream(0, log)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: default)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: FakeStream(77, log))
    backend = tensorrt_backend.TensorRTBackend(fake_engines(tmp_path), torch.device("cuda:0"))
    backend.device = torch.device("cpu")  # no GPU here: the fake reads the tensors where they are
    for k in (0, 1):
        xp, y = inputs(3)
        assert torch.equal(backend.run_stage(k, xp, y), xp + 2 * y)
    # the engine's stream waits for the work that made the inputs, and torch's for the output
    step = [("wait", 77, 0), ("execute", 77, (3, 1, TILE, TILE)), ("wait", 0, 77)]
    assert log == step + step


def test_on_a_stream_the_caller_chose_the_engines_run_on_it(tmp_path, monkeypatch, seed):
    fake = install_fake_tensorrt(monkeypatch)  # torch's current stream: 4242, not the default
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: pytest.fail("a stream was made"))
    backend = tensorrt_backend.TensorRTBackend(fake_engines(tmp_path), torch.device("cuda:0"))
    backend.device = torch.device("cpu")
    xp, y = inputs(2)
    assert torch.equal(backend.run_stage(0, xp, y), xp + 2 * y)
    assert fake.calls == [("execute", 4242, (2, 1, TILE, TILE))]


@pytest.mark.cuda
@pytest.mark.tensorrt
@needs_tensorrt
def test_tensorrt_on_torchs_default_stream_logs_no_default_stream_warning(tmp_path, monkeypatch, seed):
    needs_export()
    trt = tensorrt_backend.import_tensorrt()
    messages = []

    class Recording(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            messages.append(msg)

    logger = Recording()
    monkeypatch.setattr(tensorrt_backend, "_logger", lambda: logger)
    dev = torch.device("cuda", torch.cuda.current_device())
    model = tiny_model(seed, stages=1)
    backend = tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, max_batch=2, cache_dir=str(tmp_path))
    assert torch.cuda.current_stream(dev) == torch.cuda.default_stream(dev)
    xp, y = (t.to(dev) for t in inputs(2))
    with torch.inference_mode(), torch.backends.cudnn.flags(allow_tf32=False):
        out = backend.run_stage(0, xp, y)
        ref = copy.deepcopy(model).to(dev).stages[0](xp, y)
    torch.cuda.synchronize(dev)
    assert not [m for m in messages if "default stream" in m], messages
    assert (out - ref).abs().max().item() < 1e-3
