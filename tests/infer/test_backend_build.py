"""The Enhancer's lazily built backend: a failed build is remembered, and the precision warning
names the user's line however deep the first use lies."""

from __future__ import annotations

import contextlib
import copy
import linecache
import pickle
import warnings

import pytest
import torch

from tests.infer.test_enhance import ConstantBackend, chest_like, tiny_model
from tests.io.test_job_folder import write_pngs
from xvertfast.infer import Enhancer
from xvertfast.infer import enhancer as enhancer_module
from xvertfast.infer.backends import TorchBackend

PARSER_FAILED = "stage1.onnx: TensorRT's ONNX parser failed: an op it lacks"


def _quiet(message: str) -> None:
    pass


def failing_build(monkeypatch, exc: Exception) -> list[str]:
    """make_backend raising ``exc`` (an export or an engine build that fails); the names it was called with."""
    calls = []

    def make_backend(name, *args, **kwargs):
        calls.append(name)
        raise exc

    monkeypatch.setattr(enhancer_module, "make_backend", make_backend)
    return calls


def test_a_backend_that_failed_to_build_is_not_built_again(seed, monkeypatch):
    # a failed build left the backend unset, so every later use (each image of a job) ran the export
    # or the engine build again, seconds to minutes each, to fail the same way
    calls = failing_build(monkeypatch, RuntimeError(PARSER_FAILED))
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    with pytest.raises(RuntimeError, match=f"^{PARSER_FAILED}$"):  # the first use: the build's own error
        enhancer.backend  # noqa: B018
    image = chest_like(seed)
    twins = [pickle.loads(pickle.dumps(enhancer)), copy.deepcopy(enhancer)]
    for use in (lambda: enhancer.backend, lambda: enhancer.enhance(image), lambda: twins[0].backend,
                lambda: twins[1].enhance(image)):  # fmt: skip
        with pytest.raises(RuntimeError, match=f"^the torch backend could not be built at its first use "
                                               f"\\({PARSER_FAILED}\\) and is not built again") as again:  # fmt: skip
            use()
        cause = again.value.__cause__
        assert type(cause) is RuntimeError and str(cause) == PARSER_FAILED
        assert cause.__traceback__ is None  # (the failed build's frames are not kept alive)
    assert calls == ["torch"]
    # a backend set by hand runs
    enhancer.backend = ConstantBackend(0.25)
    assert enhancer.enhance(image).pixels.shape == image.shape


class _BuildError(Exception):
    """An error whose constructor rewrites its message: a pickle round trip would say it twice."""

    def __init__(self, stage: str):
        super().__init__(f"{stage}: the engine could not be built")


def test_a_failure_that_does_not_pickle_is_kept_as_its_text(seed, monkeypatch):
    # the error is kept in the Enhancer's state: one of a class made in a function cannot be pickled,
    # and one whose constructor rewrites its message would come back saying something else
    class LocalError(Exception):
        pass

    for exc, text in ((LocalError("out of workspace"), "LocalError: out of workspace"),
                      (_BuildError("stage2"), "_BuildError: stage2: the engine could not be built"),
                      (OSError(28, "No space left on device"), "[Errno 28] No space left on device")):  # fmt: skip
        calls = failing_build(monkeypatch, exc)
        enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
        with pytest.raises(type(exc)):
            enhancer.backend  # noqa: B018
        for twin in (enhancer, pickle.loads(pickle.dumps(enhancer)), copy.deepcopy(enhancer)):
            with pytest.raises(RuntimeError, match="could not be built at its first use") as again:
                twin.backend  # noqa: B018
            assert str(again.value.__cause__) == text
            # an error that survives the round trip keeps its type (OSError: its errno too)
            if isinstance(exc, OSError):
                assert type(again.value.__cause__) is OSError and again.value.__cause__.errno == 28
        assert calls == ["torch"]


def test_a_job_whose_backend_fails_stops_once_before_out_is_made(tmp_path, seed, monkeypatch):
    # the batch job builds the backend before it makes OUT: the build's error stops it there, and the
    # same Enhancer's next job says at once that the build failed rather than building again
    calls = failing_build(monkeypatch, RuntimeError(PARSER_FAILED))
    write_pngs(tmp_path / "in", seed, ["a.png", "b.png"])
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    with pytest.raises(RuntimeError, match=f"^{PARSER_FAILED}$"):
        enhancer.enhance_files([str(tmp_path / "in")], str(tmp_path / "out"), progress=False, log=_quiet)
    with pytest.raises(RuntimeError, match="could not be built at its first use"):
        enhancer.enhance_files([str(tmp_path / "in")], str(tmp_path / "out"), progress=False, log=_quiet)
    assert calls == ["torch"] and not (tmp_path / "out").exists()


def test_a_ctrl_c_during_the_build_is_not_taken_for_a_failed_build(seed, monkeypatch):
    calls = failing_build(monkeypatch, KeyboardInterrupt())
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            enhancer.backend  # noqa: B018
    assert calls == ["torch", "torch"]


def fp16_engines(name, model, device, dtype, *args):
    """make_backend giving what TensorRT makes of an fp32 request: fp16 engines (run here by torch)."""
    backend = TorchBackend(model, device)
    backend.name, backend.dtype = "tensorrt", torch.float16
    return backend


def _warned_here(record: list, call: str) -> None:
    """The replacement was warned once, at the line of this test that holds ``call``."""
    replaced = [w for w in record if "the tensorrt backend runs float16" in str(w.message)]
    assert [(w.category, w.filename) for w in replaced] == [(RuntimeWarning, __file__)]
    assert linecache.getline(replaced[0].filename, replaced[0].lineno).strip().startswith(call)


@contextlib.contextmanager
def recorded():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def test_the_precision_warning_names_the_users_line(tmp_path, seed, monkeypatch):
    # the warning's stacklevel was fixed at the caller of the backend property: built by enhance() or
    # enhance_files() it named a line of xvertfast's (enhancer.py's run_tiles, batch.py), not the user's
    model = tiny_model(seed)
    with monkeypatch.context() as planned:  # replaced where the Enhancer is made: the plan says it
        planned.setattr(enhancer_module, "plan_backend", lambda name, device, dtype: ("tensorrt", torch.float16))
        with recorded() as record:
            Enhancer(model, device="cpu", precision="fp32")
        _warned_here(record, "Enhancer(model")
    # replaced where the backend is built (the plan said fp32): at its first use, whichever it is
    monkeypatch.setattr(enhancer_module, "make_backend", fp16_engines)
    first, second, third = (Enhancer(model, device="cpu", precision="fp32") for _ in range(3))
    with recorded() as record:
        first.backend  # noqa: B018
    _warned_here(record, "first.backend")
    with recorded() as record:
        second.enhance(chest_like(seed))
    _warned_here(record, "second.enhance(")
    write_pngs(tmp_path / "in", seed, ["a.png"])
    with recorded() as record:
        third.enhance_files([str(tmp_path / "in")], str(tmp_path / "out"), progress=False, log=_quiet)
    _warned_here(record, "third.enhance_files(")
    assert first.dtype == second.dtype == third.dtype == torch.float16


def _warned_at(record: list, text: str, call: str, category: type = RuntimeWarning) -> None:
    """The warning holding ``text`` was given once, at the line of this test that holds ``call``."""
    said = [w for w in record if text in str(w.message)]
    assert [(w.category, w.filename) for w in said] == [(category, __file__)], [str(w.message) for w in said]
    assert linecache.getline(said[0].filename, said[0].lineno).strip().startswith(call)


def test_the_cpu_bf16_warning_names_the_users_line(seed, monkeypatch):
    # stacklevel=2 named the Enhancer's __init__ in enhancer.py, where resolve_precision is called; the
    # warning names the setting as the caller gave it, as the refusals beside it do (it said "precision bf16")
    from xvertfast.infer import backends

    monkeypatch.setattr(backends, "cpu_bf16_support", lambda: "avx512_bf16")  # (a CPU with AMX says nothing)
    model = tiny_model(seed)
    with recorded() as record:
        Enhancer(model, device="cpu", backend="torch", precision="bf16")
    _warned_at(record, "precision='bf16' on a CPU without AMX", "Enhancer(model", UserWarning)
    with recorded() as record:
        backends.resolve_precision("bf16", torch.device("cpu"))
    _warned_at(record, "precision='bf16' on a CPU without AMX", "backends.resolve_precision(", UserWarning)


def test_the_tensorrt_fallback_warning_names_the_users_line(tmp_path, seed, monkeypatch):
    # stacklevel=2 named the backend property in enhancer.py, which builds the backend at its first use
    from xvertfast.infer import backends, tensorrt_backend

    def no_engines(*args, **kwargs):
        raise RuntimeError("the engine could not be built")

    # auto stands for TensorRT (as on a GPU where it is installed), whose engines cannot be built
    monkeypatch.setattr(backends, "_chosen", lambda name, device: "tensorrt" if name == "auto" else name)
    monkeypatch.setattr(enhancer_module, "plan_backend", lambda name, device, dtype: ("tensorrt", dtype))
    monkeypatch.setattr(tensorrt_backend.TensorRTBackend, "from_model", no_engines)
    model = tiny_model(seed)
    first, second, third = (Enhancer(model, device="cpu", backend="auto") for _ in range(3))
    fallback = "backend='auto': TensorRT could not run this model (the engine could not be built)"  # (Python's words)
    with recorded() as record:
        first.backend  # noqa: B018
    _warned_at(record, fallback, "first.backend")
    with recorded() as record:
        second.enhance(chest_like(seed))
    _warned_at(record, fallback, "second.enhance(")
    write_pngs(tmp_path / "in", seed, ["a.png"])
    with recorded() as record:
        third.enhance_files([str(tmp_path / "in")], str(tmp_path / "out"), progress=False, log=_quiet)
    _warned_at(record, fallback, "third.enhance_files(")
    assert first.backend_name == second.backend_name == third.backend_name == "torch"


def test_the_tensorrt_fallback_warning_of_a_command_without_backend_says_the_default(tmp_path, seed, monkeypatch,
                                                                                      capsys):
    # demo and evaluate build an Enhancer with backend auto and offer no --backend: the warning
    # told their users of "--backend auto", an option those commands do not have
    from xvertfast.cli import main
    from xvertfast.eval import evaluate as evaluate_module
    from xvertfast.infer import backends, tensorrt_backend
    from xvertfast.model import save_model

    def no_engines(*args, **kwargs):
        raise RuntimeError("the engine could not be built")

    def stop_before_evaluating(*args, **kwargs):
        raise ValueError("stopped here by the test")

    monkeypatch.setattr(backends, "_chosen", lambda name, device: "tensorrt" if name == "auto" else name)
    monkeypatch.setattr(enhancer_module, "plan_backend", lambda name, device, dtype: ("tensorrt", dtype))
    monkeypatch.setattr(tensorrt_backend.TensorRTBackend, "from_model", no_engines)
    monkeypatch.setattr(evaluate_module, "evaluate", stop_before_evaluating)  # (the demo's enhancing is enough)
    model = save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": 128}}})
    fallback = "TensorRT could not run this model (the engine could not be built)"
    assert main(["demo", "-o", str(tmp_path / "demo"), "--model", str(model), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"backend auto (the default): {fallback}" in err and "--backend" not in err, err
    write_pngs(tmp_path / "in", seed, ["a.png"])
    assert main(["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model), "--device",
                 "cpu", "-q"]) == 0  # fmt: skip
    assert f"--backend auto: {fallback}" in capsys.readouterr().err  # (enhance has the option)


def test_the_onnxruntime_without_cuda_warning_names_the_users_line(tmp_path, seed, monkeypatch):
    # stacklevel=2 named OnnxRuntimeBackend.from_model in onnx_backend.py, or make_backend when built
    # for an Enhancer. The GPU asked for is pretended (resolve_device), the CPU onnxruntime kept
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)
    import onnxruntime

    from xvertfast.infer import onnx_backend

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime runs on CUDA: it gives no such warning")
    monkeypatch.setattr(onnx_backend, "resolve_device", lambda device: torch.device("cuda", 0))
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="onnxruntime", cache_dir=str(tmp_path / "cache"))
    with recorded() as record:
        enhancer.backend  # noqa: B018
    _warned_at(record, "this onnxruntime has no CUDAExecutionProvider", "enhancer.backend")
    with recorded() as record:
        onnx_backend.OnnxRuntimeBackend.from_model(tiny_model(seed), torch.device("cpu"), tile=enhancer.tile,
                                                   cache_dir=str(tmp_path / "cache"))  # fmt: skip
    _warned_at(record, "this onnxruntime has no CUDAExecutionProvider", "onnx_backend.OnnxRuntimeBackend")


def test_a_missing_tensorrt_says_how_to_use_onnxruntime_in_the_callers_words(monkeypatch):
    # Enhancer(backend='tensorrt') without TensorRT told a Python caller 'then enhance --backend onnxruntime,
    # or export --format onnx': options of commands they never ran
    import sys

    from xvertfast._text import cli_running
    from xvertfast.infer.tensorrt_backend import INSTALL_HINT, import_tensorrt

    monkeypatch.setitem(sys.modules, "tensorrt", None)  # (import tensorrt: an ImportError, installed or not)
    with pytest.raises(RuntimeError, match=r"^TensorRT is not available .*, then backend='onnxruntime', or "
                                           r"export_model\(model, out, format='onnx'\)$") as python:  # fmt: skip
        import_tensorrt()
    assert "--" not in str(python.value)
    with cli_running({"backend"}):  # as main() runs a command
        with pytest.raises(RuntimeError, match=r", then enhance --backend onnxruntime, or export --format onnx$") as cli:
            import_tensorrt()
    # INSTALL_HINT opened a bracket that only install_hint's words closed: alone it read '(`pip install
    # 'xvertfast[export]'`' to the end, and the messages closed it after the words on using onnxruntime
    for text in (INSTALL_HINT, str(python.value), str(cli.value)):
        assert text.count("(") == text.count(")") and text.count("`") % 2 == 0, text
    assert str(cli.value).endswith("`pip install 'xvertfast[export]'`, then enhance --backend onnxruntime, or "
                                   "export --format onnx")  # fmt: skip


def test_a_package_missing_or_unusable_is_a_missing_dependency_the_benchmark_counts_as_not_measured(monkeypatch):
    """bench/backend_agreement.py told a package missing from a failure by a RuntimeError raised from
    an ImportError: a TensorRT wheel whose CUDA libraries are missing (an OSError) or too old was an
    "error" row, as a bug is. Both are now MissingDependency, a RuntimeError still (callers unchanged)."""
    import builtins
    import sys
    import types

    from bench.backend_agreement import _refused
    from xvertfast.infer.export import MissingDependency, require
    from xvertfast.infer.tensorrt_backend import import_tensorrt

    with pytest.raises(MissingDependency, match="^a test needs the no_such_package_xvf package") as missing:
        require("no_such_package_xvf", "a test")
    found = [missing.value]
    real_import = builtins.__import__

    def no_cuda_libraries(name, *args, **kwargs):
        if name == "tensorrt":
            raise OSError("libnvinfer.so.10: cannot open shared object file: No such file or directory")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cuda_libraries)
    with pytest.raises(MissingDependency, match=r"^TensorRT is not available \(OSError: libnvinfer") as missing:
        import_tensorrt()
    found.append(missing.value)
    monkeypatch.setattr(builtins, "__import__", real_import)
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="8.6.1"))
    with pytest.raises(MissingDependency, match=r"^TensorRT 8\.6\.1 is too old") as missing:
        import_tensorrt()
    found.append(missing.value)
    assert all(isinstance(exc, RuntimeError) and _refused(exc) for exc in found)
    assert not _refused(RuntimeError("torch.onnx could not export stage 1"))  # a failure stays an error row
