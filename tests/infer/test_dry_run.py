"""``xvertfast enhance --dry-run``: it plans, and builds, exports and writes nothing."""

from __future__ import annotations

import json

import pytest
import torch

from tests.infer.test_enhance import model_dir, tiny_model  # noqa: F401 (a fixture)
from tests.io.test_job_folder import write_pngs
from xvertfast.cli import main
from xvertfast.infer import Enhancer
from xvertfast.infer.backends import plan_backend
from xvertfast.infer.batch import JOB_FILE


def _quiet(message: str) -> None:
    pass


def test_a_dry_run_with_onnxruntime_exports_nothing_and_plans_as_the_run(tmp_path, model_dir, seed):  # noqa: F811
    # the dry run exported the stages into the cache (15 MB, ~20 s for the default model; TensorRT
    # would build engines, minutes) though it "writes nothing": the backend was built with the Enhancer
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    src, out, ran_cache, dry_cache = tmp_path / "in", tmp_path / "out", tmp_path / "ran", tmp_path / "dry"
    write_pngs(src, seed, ["a.png", "b.png"])
    ran = Enhancer(str(model_dir), device="cpu", backend="onnxruntime", cache_dir=str(ran_cache))
    assert ran.enhance_files([str(src)], str(out), progress=False, log=_quiet).done == 2
    write_pngs(src, seed + 5, ["c.png"])
    dry = Enhancer(str(model_dir), device="cpu", backend="onnxruntime", cache_dir=str(dry_cache))
    plan = dry.enhance_files([str(src)], str(out), progress=False, log=_quiet, dry_run=True,
                             report=str(tmp_path / "plan.json"))  # fmt: skip
    assert (plan.planned, plan.skipped, len(plan.failed)) == (1, 2, 0)
    assert not dry_cache.exists() or not any(dry_cache.rglob("*"))
    settings = json.loads((tmp_path / "plan.json").read_text())["settings"]
    assert (settings["backend"], settings["precision"]) == ("onnxruntime", "float32")
    # the run the dry run planned: the same counts, with the backend it described
    real = dry.enhance_files([str(src)], str(out), progress=False, log=_quiet)
    assert (real.done, real.skipped, len(real.failed)) == (1, 2, 0)
    assert any(dry_cache.rglob("*.onnx")) and dry.backend.name == "onnxruntime"


def test_the_backend_described_before_it_is_built_is_the_one_built(tmp_path, seed, monkeypatch):
    # a dry run checks OUT's recorded precision against the described one: it must be what the build gives
    pytest.importorskip("onnxruntime")
    for backend in ("torch", "compile", "onnxruntime"):  # (the export in tmp_path: it was in the user's ~/.cache)
        enh = Enhancer(tiny_model(seed), device="cpu", backend=backend, cache_dir=str(tmp_path / "cache"))
        described = (enh.backend_name, enh.dtype)
        assert described == (enh.backend.name, enh.backend.dtype) == (backend, torch.float32)
    assert len(list((tmp_path / "cache").rglob("stage1.onnx"))) == 1
    # on a GPU the exported graphs hold fp32 or fp16: onnxruntime runs bf16 as fp32, TensorRT as fp16
    cuda = torch.device("cuda", 0)
    assert plan_backend("onnxruntime", cuda, torch.bfloat16) == ("onnxruntime", torch.float32)
    assert plan_backend("onnxruntime", cuda, torch.float16) == ("onnxruntime", torch.float16)
    from xvertfast.infer import tensorrt_backend

    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: None)
    monkeypatch.setattr(tensorrt_backend, "_cuda", lambda device: device)
    assert plan_backend("tensorrt", cuda, torch.bfloat16) == ("tensorrt", torch.float16)
    assert plan_backend("tensorrt", cuda, torch.float32) == ("tensorrt", torch.float32)
    assert plan_backend("auto", cuda, torch.bfloat16) == ("tensorrt", torch.float16)
    with pytest.raises(ValueError, match="^precision='bf16' on the CPU runs with the torch and compile backends, not "
                                         "backend='onnxruntime'$"):  # fmt: skip
        plan_backend("onnxruntime", torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ValueError, match="backend must be one of"):
        Enhancer(tiny_model(seed), device="cpu", backend="bogus")


def test_a_dry_run_with_the_compile_backend_does_not_announce_a_compile(tmp_path, model_dir, seed, capsys):  # noqa: F811
    # "--backend compile: torch.compile compiles the stages on the first batch (about half a minute)" was
    # said before a dry run too, which compiles nothing
    write_pngs(tmp_path / "in", seed, ["a.png"])
    args = ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu",
            "--backend", "compile", "-q"]  # fmt: skip
    assert main([*args, "--dry-run"]) == 0
    said = capsys.readouterr()
    assert "1 to enhance" in said.out and "torch.compile" not in said.err
    assert not (tmp_path / "out").exists()


def test_a_dry_run_plans_the_precision_that_autos_fallback_from_tensorrt_records(tmp_path, model_dir, seed,  # noqa: F811
                                                                                 monkeypatch):  # fmt: skip
    # auto on an Ampere GPU asks bf16 and, where TensorRT is installed, plans its fp16 engines; where
    # they could not be built torch ran bf16 and OUT recorded bfloat16: a dry run of OUT then described
    # float16 and was refused for other settings, while the run itself (falling back again) resumed
    import warnings

    from xvertfast.infer import enhancer as enhancer_module
    from xvertfast.infer.backends import TorchBackend

    def engines_fail(name, model, device, dtype, *args):  # make_backend's auto where the engines cannot build
        warnings.warn("--backend auto: TensorRT could not run this model (an op it lacks); the torch backend runs "
                      "it instead", RuntimeWarning)  # fmt: skip
        return TorchBackend(model, device, dtype)

    def engines_build(name, model, device, dtype, *args):  # fp16 engines (run here by torch)
        backend = TorchBackend(model, device, torch.float16)
        backend.name = "tensorrt"
        return backend

    monkeypatch.setattr(enhancer_module, "resolve_precision", lambda precision, device, warn=True: torch.bfloat16)
    monkeypatch.setattr(enhancer_module, "plan_backend", lambda name, device, dtype: ("tensorrt", torch.float16))
    monkeypatch.setattr(enhancer_module, "make_backend", engines_fail)
    src, out = tmp_path / "in", tmp_path / "out"

    def job(**kwargs):
        return Enhancer(str(model_dir), device="cpu").enhance_files([str(src)], str(out), progress=False, log=_quiet,
                                                                    **kwargs)  # fmt: skip

    write_pngs(src, seed, ["a.png", "b.png"])
    with pytest.warns(RuntimeWarning, match="the torch backend runs it instead"):
        assert job().done == 2
    write_pngs(src, seed + 5, ["c.png"])
    plan = job(dry_run=True)
    assert (plan.planned, plan.skipped, len(plan.failed)) == (1, 2, 0)
    with pytest.warns(RuntimeWarning, match="the torch backend runs it instead"):
        real = job()
    assert (real.done, real.skipped, len(real.failed)) == (1, 2, 0)
    # and where the engines build again, the outputs made by the fallback are the job's, not other settings'
    monkeypatch.setattr(enhancer_module, "make_backend", engines_build)
    write_pngs(src, seed + 6, ["d.png"])
    again = job()
    assert (again.done, again.skipped, len(again.failed)) == (1, 3, 0)
    assert json.loads((out / JOB_FILE).read_text())["settings"]["precision"] == "float16"


def test_an_interrupted_dry_run_says_to_run_it_again_not_that_it_resumes(tmp_path, model_dir, seed, capsys,  # noqa: F811
                                                                         monkeypatch):  # fmt: skip
    # it said "2 images not processed; the same command resumes where this one stopped": a dry run
    # keeps no progress, and its images are never processed
    from xvertfast.io.job_folder import JobFolder

    write_pngs(tmp_path / "in", seed, ["a.png", "b.png", "c.png"])
    verdict, calls = JobFolder.verdict, []

    def interrupted(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # (Ctrl-C, or SIGTERM: main raises it for both)
        return verdict(self, *args, **kwargs)

    monkeypatch.setattr(JobFolder, "verdict", interrupted)
    plan = Enhancer(str(model_dir), device="cpu").enhance_files([str(tmp_path / "in")], str(tmp_path / "out"),
                                                               progress=False, log=_quiet, dry_run=True)  # fmt: skip
    assert (plan.dry_run, plan.stopped, plan.planned) == (True, "interrupted", 1)
    assert plan.stop_line() == "stopped early: interrupted; the dry run was cut short; run it again"
    calls.clear()
    args = ["enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu",
            "-q", "--dry-run"]  # fmt: skip
    assert main(args) == 130
    err = capsys.readouterr().err
    assert err.endswith("stopped early: interrupted; the dry run was cut short; run it again\n")
    assert "resumes" not in err and "not processed" not in err
    assert not (tmp_path / "out").exists()
