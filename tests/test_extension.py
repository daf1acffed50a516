"""The extension's loading, its pure-PyTorch fallback, and ``xvertfast info``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
import warnings

import pytest
import torch

from tests.conftest import BuiltWithNvcc
from xvertfast import _extension
from xvertfast._extension import archs_cover, has_extension
from xvertfast.info import OPS, collect, format_report


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env},
    )  # fmt: skip


FALLBACK_CHECK = """
import warnings, torch
from xvertfast import ops
from xvertfast.ops import reference as ref
from xvertfast import _extension
from xvertfast._extension import archs_cover, has_extension
assert not has_extension()
a = torch.rand(2, 1, 19, 23, dtype=torch.float64, requires_grad=True); b = torch.rand_like(a)
gc = ops.gradient_correlation(a, b)
assert torch.equal(gc, ref.gradient_correlation_reference(a, b))
gc.sum().backward(); assert torch.isfinite(a.grad).all()
x = torch.randn(2, 6, 9, 9)
assert torch.equal(ops.feature_entropy(x), ref.feature_entropy_reference(x).float())
i, m = ops.select_max_entropy(x); ri, rm = ref.select_max_entropy_reference(x)
assert torch.equal(i, ri) and torch.equal(m, rm)
print("fallback ok")
"""


def test_fallback_without_extension_warns_once_and_matches_reference():
    out = run_python(FALLBACK_CHECK, XVF_NO_EXTENSION="1")
    assert out.returncode == 0, out.stderr
    assert "fallback ok" in out.stdout
    assert out.stderr.count("falls back to its pure-PyTorch reference") == 1, out.stderr
    assert "XVF_NO_EXTENSION" in out.stderr


USER_IMPORT = """import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import xvertfast.ops
print([(w.filename, w.lineno) for w in caught if "compiled extension not used" in str(w.message)])
"""


@pytest.mark.parametrize("how", ["import", "has_extension", "load_error"])
def test_the_no_extension_warning_names_the_users_line(tmp_path, monkeypatch, how):
    """Before: an import of the ops, or a first has_extension(), was said at _extension.py's own
    line (has_extension's), three frames up from the warning; load_error, two, named the caller."""
    if how == "import":  # (the warning is said once a process: a fresh one)
        user = tmp_path / "user_code.py"
        user.write_text(USER_IMPORT)
        out = subprocess.run([sys.executable, str(user)], capture_output=True, text=True, timeout=300,
                             cwd=tmp_path, env={**os.environ, "XVF_NO_EXTENSION": "1"})  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == repr([(str(user), 4)]), out.stdout
        return
    monkeypatch.setenv("XVF_NO_EXTENSION", "1")
    for name, value in (("_loaded", False), ("_module", None), ("_error", None)):
        monkeypatch.setattr(_extension, name, value)
    with pytest.warns(RuntimeWarning, match="compiled extension not used") as caught:
        line = sys._getframe().f_lineno + 1
        getattr(_extension, how)()
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


@pytest.mark.parametrize("case", ["architecture", "cpu_torch_build"])
def test_the_gpu_fallback_warnings_name_the_users_line(monkeypatch, case):
    """Before: said through an op's kernel choice (use_kernel), the GPU's architecture named a line
    in ops/_inputs.py; called directly, the CPU-torch build named the line that called the caller."""
    from xvertfast.ops import _inputs

    monkeypatch.setattr(_extension, "extension", lambda: BuiltWithNvcc(torch_cuda=case == "architecture"))
    monkeypatch.setattr(_inputs, "has_extension", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (7, 5))
    if case == "cpu_torch_build":
        monkeypatch.setattr(torch.version, "cuda", "12.4")
    gpu = torch.device("cuda", 0)
    on_gpu = types.SimpleNamespace(device=gpu)  # (all use_kernel looks at)
    try:
        for through_an_op in (True, False):
            monkeypatch.setattr(_extension, "_glue_warned", False)
            _extension._runs_on.cache_clear()
            with pytest.warns(RuntimeWarning, match=re.escape(_extension.GPU_FALLBACK)) as caught:
                line = sys._getframe().f_lineno + 1
                assert not (_inputs.use_kernel(on_gpu) if through_an_op else _extension.cuda_kernels_run_on(gpu))
            assert (caught[0].filename, caught[0].lineno) == (__file__, line), through_an_op
    finally:
        _extension._runs_on.cache_clear()


@pytest.mark.skipif(not has_extension(), reason="compiled extension not built")
def test_extension_registers_every_op_for_cpu():
    info = collect()
    assert info["extension"] and info["extension_error"] is None
    assert info["cpu_ops"] == list(OPS)
    for op in OPS:
        assert hasattr(torch.ops.xvertfast, op)


class BuiltFor:
    """A ``_C`` as far as release_mismatch asks: the torch it was compiled against."""

    def __init__(self, version: str):
        self.version = version

    def torch_version(self) -> str:
        return self.version


@pytest.mark.parametrize("built, running, usable", [
    ("2.13.0", "2.13.0+cpu", True),
    ("2.13.0", "2.13.1+cu130", True),  # patch releases keep the C++ ABI
    ("2.11.0", "2.13.0+cpu", False),
    ("2.13.0", "2.11.0+cu130", False),
    ("2.13.0", "3.13.0", False),
])  # fmt: skip
def test_a_build_for_another_minor_release_of_torch_is_not_used(built, running, usable):
    why = _extension.release_mismatch(BuiltFor(built), running)
    if usable:
        assert why is None
    else:
        assert f"compiled against torch {built}, this is torch {running}" in why


def test_a_build_too_old_to_say_its_torch_is_taken_as_it_is():
    assert _extension.release_mismatch(object(), "2.13.0") is None


@pytest.mark.skipif(not has_extension(), reason="compiled extension not built")
def test_the_build_says_which_torch_it_was_compiled_against():
    info = collect()
    assert info["extension_torch"].split(".")[:2] == torch.__version__.split("+")[0].split(".")[:2]
    assert f"compiled against torch {info['extension_torch']}" in format_report(info)


MISMATCH_CHECK = """
import torch
built_for = torch.__version__
torch.__version__ = "9.99.0"  # what a torch upgrade after the build looks like to xvertfast
import xvertfast
from xvertfast import ops, _extension
from xvertfast.ops import reference as ref
from xvertfast.info import collect
assert not _extension.has_extension()
x = torch.randn(2, 6, 9, 9)
assert torch.equal(ops.feature_entropy(x), ref.feature_entropy_reference(x).float())
info = collect()
assert not info["extension"] and info["cpu_ops"] == [] and info["cuda_ops"] == [], info
print("fallback ok")
"""


@pytest.mark.skipif(not has_extension(), reason="compiled extension not built")
def test_a_build_for_another_torch_falls_back_with_a_warning_saying_so():
    out = run_python(MISMATCH_CHECK)
    assert out.returncode == 0, out.stderr
    assert "fallback ok" in out.stdout
    assert "this is torch 9.99.0, whose C++ ABI differs; rebuild it for this torch" in out.stderr, out.stderr
    assert out.stderr.count("falls back to its pure-PyTorch reference") == 1, out.stderr


@pytest.mark.skipif(not has_extension(), reason="compiled extension not built")
def test_cuda_kernels_report_matches_build():
    info = collect()
    if info["cuda_kernels_compiled"]:
        assert info["cuda_ops"] == list(OPS)
        assert all(a.startswith(("sm_", "compute_")) for a in info["cuda_archs"])
    else:
        assert info["cuda_ops"] == [] and info["cuda_archs"] == []


@pytest.mark.parametrize("archs, capability, runs", [
    ("sm_80,sm_90,compute_90", (8, 0), True),
    ("sm_80,sm_90,compute_90", (8, 6), True),  # sm_80 binaries run on the whole 8.x family
    ("sm_80,sm_90,compute_90", (9, 0), True),
    ("sm_80,sm_90,compute_90", (10, 0), True),  # through the PTX, compiled by the driver
    ("sm_80,sm_90,compute_90", (7, 5), False),  # a T4: nothing it can run
    ("sm_80,sm_90,compute_90", (7, 0), False),  # a V100
    ("sm_80,sm_90", (10, 0), False),  # no PTX: no newer GPU
    ("sm_75", (7, 5), True),
    ("sm_86", (8, 0), False),  # a higher minor does not run on a lower one
    ("sm_90a", (9, 0), True),
    ("sm_90a", (10, 0), False),  # arch-specific code: its own capability only
    ("compute_75", (8, 9), True),
])  # fmt: skip
def test_which_gpus_the_cuda_build_runs_on(archs, capability, runs):
    assert archs_cover(archs, *capability) is runs


#: What the warnings say the ops do on a GPU the CUDA kernels cannot serve (xvertfast.ops.wls._resolve,
#: xvertfast.ops._inputs.use_kernel)
WHAT_THE_OPS_DO = ("wls (method='auto') solves with the C++ CPU solver, copying each batch to the host and back, "
                   "and the other ops take their PyTorch path")  # fmt: skip


def test_a_gpu_the_build_cannot_run_takes_the_pytorch_path_with_one_warning(monkeypatch):
    class Built:  # a default CUDA build, asked about a T4
        def cuda_compiled(self):
            return True

        def torch_cuda_build(self):
            return True

        def cuda_archs(self):
            return "sm_80,sm_90,compute_90"

        def cuda_device_count(self):
            return 2

    monkeypatch.setattr(_extension, "extension", lambda: Built())
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (7, 5) if index == 1 else (9, 0))
    _extension._runs_on.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=r"GPU 1 \(compute capability 7.5\) cannot run.*TORCH_CUDA_ARCH_LIST=\"7.5\"") as caught:
            assert not _extension.cuda_kernels_run_on(torch.device("cuda:1"))
        assert WHAT_THE_OPS_DO in str(caught[0].message)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once per GPU
            assert not _extension.cuda_kernels_run_on(torch.device("cuda:1"))
            assert _extension.cuda_kernels_run_on(torch.device("cuda:0"))
    finally:
        _extension._runs_on.cache_clear()


class RuntimeSeeing(BuiltWithNvcc):
    """A build against a CUDA torch whose own CUDA runtime sees ``seen`` GPUs (0: another CUDA than
    torch's, which cannot start under the driver)."""

    def __init__(self, seen: int):
        super().__init__(torch_cuda=True)
        self.seen = seen

    def cuda_device_count(self):
        return self.seen


def test_gpus_the_kernels_runtime_cannot_reach_take_the_fallback_with_one_warning(monkeypatch):
    # built with an nvcc of another CUDA major than torch's: the extension loaded, its runtime saw no
    # GPU, and cuda_kernels_run_on said True all the same, so every CUDA op raised
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (9, 0))  # the build's archs cover it
    for seen, index in ((0, 0), (1, 1)):
        monkeypatch.setattr(_extension, "extension", lambda seen=seen: RuntimeSeeing(seen))
        _extension._runs_on.cache_clear()
        try:
            with pytest.warns(RuntimeWarning, match=rf"the CUDA runtime the kernels were linked with sees {seen} "
                                                    rf"GPU\(s\), so not GPU {index}, .*a CUDA 12\.x toolkit") as caught:
                assert not _extension.cuda_kernels_run_on(torch.device("cuda", index))
            assert len(caught) == 1 and WHAT_THE_OPS_DO in str(caught[0].message)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # said once per GPU
                assert not _extension.cuda_kernels_run_on(torch.device("cuda", index))
                problem = _extension.cuda_kernels_problem(torch.device("cuda", index))
                assert problem.startswith(f"the CUDA runtime the kernels were linked with sees {seen} GPU(s)")
                assert _extension.cuda_kernels_run_on(torch.device("cuda", 0)) is (seen == 1)
        finally:
            _extension._runs_on.cache_clear()


def test_info_cli_human_and_json():
    out = subprocess.run([sys.executable, "-m", "xvertfast", "info"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for label in ("torch", "extension", "CPU ops", "CUDA kernels", "GPU visible", "default model", "cupy",
                  "onnxruntime", "tensorrt"):  # fmt: skip
        assert label in out.stdout
    out = subprocess.run([sys.executable, "-m", "xvertfast", "info", "--json"], capture_output=True, text=True, timeout=300)
    data = json.loads(out.stdout)
    assert data["torch"] == torch.__version__
    assert set(data["optional"]) == {"cupy", "onnxruntime", "tensorrt", "onnx", "onnxscript", "pydicom", "pylibjpeg",
                                     "gdcm", "imagecodecs", "matplotlib", "skimage"}  # fmt: skip
    assert data["default_model"].startswith("2 stages")


def test_report_formats_a_build_without_extension():
    info = collect() | {"extension": False, "extension_error": "disabled", "cpu_ops": [], "cuda_kernels_compiled": False, "cuda_archs": [], "cuda_ops": []}
    text = format_report(info)
    assert "NOT in use (disabled)" in text and "not compiled" in text


def test_report_counts_the_openmp_threads_in_words():
    # "yes, 1 threads" under OMP_NUM_THREADS=1, as on a cluster node with one core
    info = collect()
    assert "yes, 1 thread\n" in format_report(info | {"openmp": True, "cpu_threads": 1}) + "\n"
    assert "yes, 2 threads" in format_report(info | {"openmp": True, "cpu_threads": 2})


def test_cli_without_command_prints_help():
    out = subprocess.run([sys.executable, "-m", "xvertfast"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "info" in out.stdout


def test_info_reports_cpu_bf16_support():
    from xvertfast.infer.backends import cpu_bf16_support

    info = collect()
    assert info["cpu_bf16"] == cpu_bf16_support() in ("amx", "avx512_bf16", "yes", "no")
    assert "CPU bf16" in format_report(info)


@pytest.mark.parametrize("torch_cuda, built_with_torch_cuda, usable", [
    (None, False, True),  # a CPU torch: no CUDA tensors, nothing to guard
    ("12.4", True, True),
    ("12.4", False, False),  # nvcc against a CPU torch, loaded by a CUDA torch: no guard, no stream
])  # fmt: skip
def test_cuda_kernels_need_a_build_against_a_cuda_torch(monkeypatch, torch_cuda, built_with_torch_cuda, usable):
    from xvertfast import info as info_module

    fake = BuiltWithNvcc(built_with_torch_cuda)
    monkeypatch.setattr(_extension, "extension", lambda: fake)
    monkeypatch.setattr(info_module, "extension", lambda: fake)
    monkeypatch.setattr(torch.version, "cuda", torch_cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (9, 0))
    monkeypatch.setattr(_extension, "_glue_warned", False)
    _extension._runs_on.cache_clear()
    try:
        assert _extension.cuda_kernels_available() is usable
        assert (_extension.cuda_glue_error() is None) is usable
        if usable:
            assert _extension.cuda_kernels_run_on(torch.device("cuda:0"))
        else:
            with pytest.warns(RuntimeWarning, match="built against a CPU build of torch.*Rebuild") as caught:
                assert not _extension.cuda_kernels_run_on(torch.device("cuda:0"))
            # what each op does: wls takes the C++ CPU solver through the host, not a PyTorch path
            assert WHAT_THE_OPS_DO in str(caught[0].message)
            assert "the ops take their PyTorch path on GPUs" not in str(caught[0].message)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # said once
                assert not _extension.cuda_kernels_run_on(torch.device("cuda:0"))
        data = collect()
        assert data["extension_torch_cuda"] is built_with_torch_cuda
        text = format_report(data)
        build = "CUDA" if built_with_torch_cuda else "CPU"
        assert f"compiled for sm_80, sm_90, compute_90, against a {build} build of torch" in text
        assert ("NOT used (the extension was built against a CPU build of torch" in text) is not usable
        json.dumps(data)
    finally:
        _extension._runs_on.cache_clear()


@pytest.mark.parametrize("config, reason", [
    ('{"format": "xvertfast-model", "format_version": 1}', "no architecture.stages list"),  # was a KeyError
    ('{"format": "xvertfast-model", "architecture": {"stages": [{"depth": 4}]}}', "width must be a whole number"),
    ('{"format": "xvertfast-model", "architecture": {"stages": "16"}}', "no architecture.stages list"),
    ("[1, 2]", "not an xvertfast model configuration"),
    ('{"format": "xvertfast-model", "archi', "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    ('{"format": "xvertfast-model", "architecture": {"stages": [{"width": 4, "depth": 2}, {"width": 4, "depth": 2}]}}',
     "missing stage2.safetensors"),
])  # fmt: skip
def test_info_reports_a_damaged_default_model_without_raising(tmp_path, monkeypatch, config, reason):
    import xvertfast.model

    (tmp_path / "stage1.safetensors").write_bytes(b"x")
    (tmp_path / "config.json").write_bytes(config if isinstance(config, bytes) else config.encode())
    monkeypatch.setattr(xvertfast.model, "DEFAULT_MODEL_DIR", str(tmp_path))
    data = collect()
    assert data["default_model"].startswith("damaged (") and reason in data["default_model"], data["default_model"]
    assert data["default_model"].endswith(str(tmp_path))
    assert "default model        damaged (" in format_report(data)


def test_info_reports_a_missing_default_model(tmp_path, monkeypatch):
    import xvertfast.model

    monkeypatch.setattr(xvertfast.model, "DEFAULT_MODEL_DIR", str(tmp_path / "absent"))
    data = collect()
    assert data["default_model"] is None
    assert "default model        missing (reinstall xvertfast)" in format_report(data)


class WithoutCudaKernels(BuiltWithNvcc):
    def cuda_compiled(self):
        return False


@pytest.mark.parametrize("build, torch_cuda, capability, why", [
    (None, "12.4", (9, 0), r"the compiled extension is not in use \(disabled by XVF_NO_EXTENSION\)"),
    (WithoutCudaKernels(True), "12.4", (9, 0), r"the extension was built without its CUDA kernels \(no nvcc"),
    (BuiltWithNvcc(False), "12.4", (9, 0), r"the compiled CUDA kernels cannot be used: the extension was built "
                                           r"against a CPU build of torch"),
    (BuiltWithNvcc(True), "12.4", (7, 5), r"the CUDA kernels were built for sm_80,sm_90,compute_90, which GPU 0 "
                                          r"\(compute capability 7\.5\) cannot run"),
    (BuiltWithNvcc(True), "12.4", (9, 0), None),
], ids=["no-extension", "no-nvcc", "cpu-torch-build", "architecture", "runs"])  # fmt: skip
def test_cuda_kernels_problem_names_the_one_reason(monkeypatch, build, torch_cuda, capability, why):
    # wls's method='cuda' said only "not built for this GPU's architecture (see the warning)", where the
    # Enhancer's wls_method named the build's archs and the GPU's capability: both give this reason now
    monkeypatch.setattr(_extension, "extension", lambda: build)
    monkeypatch.setattr(_extension, "_error", None if build else "disabled by XVF_NO_EXTENSION")
    monkeypatch.setattr(_extension, "_loaded", True)
    monkeypatch.setattr(torch.version, "cuda", torch_cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(_extension, "_glue_warned", True)  # (its warning is another test's)
    _extension._runs_on.cache_clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem = _extension.cuda_kernels_problem(torch.device("cuda:0"))
    finally:
        _extension._runs_on.cache_clear()
    if why is None:
        assert problem is None
    else:
        assert problem is not None and re.fullmatch(why + ".*", problem), problem


def test_cuda_index_is_the_devices_own_else_the_current_one(monkeypatch):
    # written four times (the kernel check, resolve_device, TensorRT's device, the CuPy solver's GPU)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert _extension.cuda_index(torch.device("cuda", 1)) == 1
    assert _extension.cuda_index(torch.device("cuda", 0)) == 0  # (0 is an index, not "none")
    assert _extension.cuda_index(torch.device("cuda")) == 3
