"""resolve_precision('auto'): what each device gets."""

from __future__ import annotations

import re
import types

import numpy as np
import pytest
import torch

from xvertfast._text import cli_running
from xvertfast.infer import backends


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two CUDA devices, 0 an sm_90 and 1 an sm_75 (T4); the current device is 0. A bf16 tensor can
    be made on both (emulated on the T4), so is_bf16_supported() says True for either."""
    caps = {0: (9, 0), 1: (7, 5)}

    def props(device=None):
        index = torch.cuda._utils._get_device_index(device, optional=True)
        index = 0 if index is None or index < 0 else index
        major, minor = caps[index]
        return types.SimpleNamespace(major=major, minor=minor, name=f"sm_{major}{minor}")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", props)
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True, raising=False)


@pytest.mark.parametrize("major, want", [(9, torch.bfloat16), (8, torch.bfloat16), (7, torch.float16),
                                         (6, torch.float16)])  # fmt: skip
def test_auto_is_bf16_from_ampere_and_fp16_before(fake_gpus, monkeypatch, major, want):
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: types.SimpleNamespace(major=major, minor=0, name="gpu"))  # fmt: skip
    assert backends.resolve_precision("auto", torch.device("cuda")) == want


def test_auto_asks_the_device_it_is_given_not_the_current_one(fake_gpus):
    assert backends.resolve_precision("auto", torch.device("cuda:1")) == torch.float16  # the T4
    assert backends.resolve_precision("auto", torch.device("cuda:0")) == torch.bfloat16
    assert backends.resolve_precision("auto", torch.device("cuda")) == torch.bfloat16  # the current one


def test_auto_is_fp32_on_the_cpu():
    assert backends.resolve_precision("auto", torch.device("cpu")) == torch.float32


def test_fp32_on_a_gpu_runs_the_network_without_tf32(monkeypatch):
    """The torch backend's fp32 stage runs with cuDNN's TF32 off on a GPU (the setting is
    global, so it is seen from inside the stage) and restores it after; on the CPU it is left
    alone. A GPU is not needed to see the setting: the backend is built on the CPU and then
    said to be on cuda."""
    from xvertfast.infer.backends import TorchBackend, without_tf32
    from xvertfast.model import XVertNet, XVertNetStage

    seen = []
    backend = TorchBackend(XVertNet([XVertNetStage(4, 1)]), torch.device("cpu"))
    stage = backend._stage(0)
    monkeypatch.setattr(backend, "_runners", [lambda xp, y: (seen.append(torch.backends.cudnn.allow_tf32), stage(xp, y))[1]])
    before = torch.backends.cudnn.allow_tf32
    assert before is True  # torch's default: TF32 allowed
    xp = torch.rand(1, 1, 16, 16)
    backend.run_stage(0, xp, xp)
    backend.device = torch.device("cuda", 0)
    backend.run_stage(0, xp, xp)
    assert seen == [True, False]
    assert torch.backends.cudnn.allow_tf32 == before
    with pytest.raises(RuntimeError, match="inside"):
        with without_tf32(torch.device("cuda")):
            raise RuntimeError("inside")
    assert torch.backends.cudnn.allow_tf32 == before  # restored after an error too


def test_without_tf32_where_the_flags_were_set_per_operator():
    """torch >= 2.9 sets TF32 per operator too; once conv and RNN differ, reading the older
    allow_tf32 raises: the conv's own flag is set instead, and restored."""
    from xvertfast.infer.backends import without_tf32

    cudnn = torch.backends.cudnn
    if not hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        pytest.skip("this torch has no per-operator TF32 flags")
    try:
        cudnn.conv.fp32_precision = "tf32"
        cudnn.rnn.fp32_precision = "ieee"
        with pytest.raises(RuntimeError):
            cudnn.allow_tf32
        with without_tf32(torch.device("cuda")):
            assert cudnn.conv.fp32_precision == "ieee"
        assert cudnn.conv.fp32_precision == "tf32"
    finally:
        cudnn.allow_tf32 = True  # torch's default, for both again


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_gpu_is_said_in_the_callers_own_words(tmp_path, capsys):
    # it said "device 'cuda:1' (--device cuda:1) ... use 'cpu' (--device cpu)" to both: a Python
    # user was told of an option they never typed
    from PIL import Image

    from xvertfast.cli import main
    from xvertfast.infer import Enhancer

    with pytest.raises(RuntimeError, match=r"^device='cuda:1' was asked for, but this torch has no usable CUDA device "
                                           r".*; use device='cpu'$"):  # fmt: skip
        Enhancer(device="cuda:1")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "a.png")
    assert main(["enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--device", "cuda:1"]) == 2
    err = capsys.readouterr().err
    assert "error: --device cuda:1 was asked for, but this torch has no usable CUDA device" in err
    assert "; use --device cpu" in err and "device='" not in err
    with pytest.raises(RuntimeError, match=r"^device='cuda' was asked for"):  # main() put the API's words back
        backends.resolve_device("cuda")


def test_a_gpu_index_past_the_visible_ones_is_refused_by_name(monkeypatch):
    # --device cuda:2 on a two-GPU machine: enhance failed with torch's bare AssertionError "Invalid
    # device id" (a traceback: precision auto asks the GPU's capability), train only at its first
    # tensor, after gathering its ROIs, as "CUDA error: invalid device ordinal"
    from xvertfast.infer.backends import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(RuntimeError, match=r"^device='cuda:2' was asked for, but this machine shows 2 CUDA devices "
                                           r"\(cuda:0 to cuda:1\)"):  # fmt: skip
        resolve_device("cuda:2")
    with cli_running({"device"}), pytest.raises(RuntimeError, match=r"^--device cuda:2 was asked for, but this "
                                                                    r"machine shows 2 CUDA"):  # as main() runs a command
        resolve_device("cuda:2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with pytest.raises(RuntimeError, match=r"2 CUDA devices \(cuda:0 to cuda:1; CUDA_VISIBLE_DEVICES=3,5 numbers them "
                                           r"from 0\)"):  # fmt: skip
        resolve_device(torch.device("cuda", 5))


@pytest.mark.cuda
def test_a_gpu_index_past_the_visible_ones_is_refused_on_a_gpu():
    from xvertfast.infer.backends import resolve_device

    count = torch.cuda.device_count()
    assert resolve_device(f"cuda:{count - 1}") == torch.device("cuda", count - 1)
    with pytest.raises(RuntimeError, match=f"device 'cuda:{count}' .* shows {count} CUDA device"):
        resolve_device(f"cuda:{count}")


def test_cuda_without_an_index_is_the_current_gpu_for_every_thread(monkeypatch):
    # a bare "cuda" means each thread's own current device: with torch.cuda.set_device(1) made by the
    # caller, the batch job's reader threads (whose current device is 0) preprocessed on GPU 0 while
    # the network ran on GPU 1
    from xvertfast.infer.backends import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    for spelled in ("cuda", torch.device("cuda"), "auto"):
        assert resolve_device(spelled) == torch.device("cuda", 1), spelled
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.parametrize("device", ["cuda:1", "cuda"], ids=["indexed", "current"])
def test_explicit_bf16_on_a_gpu_without_native_bf16_is_refused(fake_gpus, monkeypatch, device):
    # --precision bf16 on a T4 or V100 ran emulated bf16 (slower than fp16, or refused by torch mid-job)
    # without a word, where auto gives fp16 there
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ValueError, match=r"precision='bf16' on cuda:1 \(Tesla T4, compute capability 7\.5\): no native "
                                         r"bf16, which needs compute capability 8\.0 \(Ampere\) or later; use fp16 "
                                         r"or fp32"):  # fmt: skip
        backends.resolve_precision("bf16", backends.resolve_device(device))


def test_a_precision_refused_is_named_as_the_caller_gave_it():
    """`enhance --precision fp16 --device cpu` said "precision fp16 needs a CUDA device", neither the
    option typed nor Python's precision='fp16' (as --device and the other options are named)."""
    with pytest.raises(ValueError, match=r"^precision='fp16' needs a CUDA device; the CPU runs fp32 or bf16$"):
        backends.resolve_precision("fp16", torch.device("cpu"))
    with cli_running({"precision": "fp16", "device": "cpu"}):
        with pytest.raises(ValueError, match=r"^--precision fp16 needs a CUDA device; the CPU runs fp32 or bf16$"):
            backends.resolve_precision("fp16", torch.device("cpu"))
    with cli_running({"precision": "bf16", "backend": "onnxruntime"}):  # (bf16 on the CPU: not every backend)
        with pytest.raises(ValueError, match=r"^--precision bf16 on the CPU runs with the torch and compile backends, "
                                             r"not --backend onnxruntime$"):  # fmt: skip
            backends.plan_backend("onnxruntime", torch.device("cpu"), torch.bfloat16)


def test_explicit_bf16_on_a_gpu_with_native_bf16_is_let_through(fake_gpus):
    assert backends.resolve_precision("bf16", torch.device("cuda:0")) == torch.bfloat16


def test_an_unknown_precision_is_told_the_names_the_table_holds(monkeypatch):
    """The names were spelled by hand in the refusal, apart from PRECISIONS (which the CLI's choices
    are checked against): a precision added there would be taken but not offered. A torch dtype, as
    a notebook writes it, is told its name; a list is refused as a value, not as an unhashable key."""
    from xvertfast.infer import Enhancer

    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match=r"^precision must be one of auto, fp32, fp16, bf16, got 'fp64'$"):
        backends.resolve_precision("fp64", cpu)
    with pytest.raises(ValueError, match=r"^precision must be one of auto, fp32, fp16, bf16, got torch\.bfloat16: "
                                         r"give its name, precision='bf16'$"):  # fmt: skip
        Enhancer(precision=torch.bfloat16, device="cpu")  # (refused before the model loads)
    with pytest.raises(ValueError, match=r"^precision must be one of auto, fp32, fp16, bf16, got torch\.float64$"):
        backends.resolve_precision(torch.float64, cpu)  # (no name: nothing to give)
    with pytest.raises(ValueError, match=r"^precision must be one of auto, fp32, fp16, bf16, got \['fp16'\]$"):
        backends.resolve_precision(["fp16"], cpu)
    # a dtype's name, or a name in capitals, was told "got 'bfloat16'" alone (and is still refused)
    for given, name in (("bfloat16", "bf16"), ("float16", "fp16"), ("half", "fp16"), ("torch.float32", "fp32"),
                        ("float", "fp32"), ("FP16", "fp16"), ("Auto", "auto")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"^precision must be one of auto, fp32, fp16, bf16, got "
                                             rf"{re.escape(repr(given))}: give precision='{name}'$"):  # fmt: skip
            backends.resolve_precision(given, cpu)
    for given in ("float64", "double", "cuda", "int8", "fp 16"):  # (no name to give: the names taken alone)
        with pytest.raises(ValueError, match=rf"got {re.escape(repr(given))}$"):
            backends.resolve_precision(given, cpu)
    monkeypatch.setitem(backends.PRECISIONS, "fp8", torch.float8_e4m3fn)
    with pytest.raises(ValueError, match=r"^precision must be one of auto, fp32, fp16, bf16, fp8, got 'fp64'$"):
        backends.resolve_precision("fp64", cpu)
