"""Stage export: ONNX graphs (parity with torch, dynamic batch, metadata, fp16), the onnxruntime
backend, AOTInductor packages, TensorRT engines (GPU only) and the engine cache key."""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import warnings
import zlib

import numpy as np
import pytest
import torch

from tests.conftest import SESSION_SEED, stage_with_statistics
from tests.infer.conftest import graph_key
from xvertfast.infer import export as export_module
from xvertfast.infer import tensorrt_backend
from xvertfast.infer.export import cached_onnx_export, export_model, export_onnx, load_aoti, read_onnx_metadata
from xvertfast.model.persistence import fingerprint
from xvertfast.model import XVertNet, save_model

TILE = 64


def tiny_model(seed: int, stages: int = 2, width: int = 4, depth: int = 2) -> XVertNet:
    """Random stages with non-trivial batch-norm statistics (so folding them is exercised), the
    upsampling kinds alternating (stage 1 bilinear, stage 2 transposed) so both are exported."""
    torch.manual_seed(seed)
    kinds = ("bilinear", "transposed")
    return XVertNet([stage_with_statistics(width, depth, spread=0.4, upsample=kinds[k % 2])
                     for k in range(stages)]).eval()  # fmt: skip


def inputs(batch: int, size: int = TILE) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(batch, 1, size, size), torch.randn(batch, 1, size, size) * 0.1


@pytest.fixture(scope="module")
def model() -> XVertNet:
    return tiny_model((SESSION_SEED + zlib.crc32(__name__.encode())) % 2**31)


@pytest.fixture(scope="module")
def deeper() -> XVertNet:
    """A 3-stage model of other weights: the one before, whose stage files an export of ``model``
    replaces."""
    return tiny_model((SESSION_SEED + zlib.crc32(__name__.encode()) + 1) % 2**31, stages=3)


@pytest.fixture(scope="module")
def onnx_fp32(model, tmp_path_factory) -> list[str]:
    needs_export()
    return export_onnx(model, tmp_path_factory.mktemp("onnx32"), tile=TILE)


def needs_export() -> None:
    """Skips unless the export extra (onnx, onnxscript, onnxruntime) is installed."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module)


def ort_run(path: str, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["out"], {"xp": xp.numpy(), "y": y.numpy()})[0])


def test_the_graphs_exported_once_in_tests_infer_are_keyed_by_all_that_shapes_them(model, monkeypatch):
    """each_graph_exported_once (tests/infer/conftest.py) hands an earlier export's program only to
    an export of the same graph: any weight or buffer, the stage, the precision, the tile, the
    exporter's arguments or torch's version changed is another graph, exported on its own."""
    def key(stage=model.stages[0], dtype=torch.float32, size=TILE, **kwargs):
        graph = export_module._StageGraph(stage, dtype)
        batch = torch.export.Dim("batch", min=1)
        exporter = {"dynamic_shapes": {"xp": {0: batch}, "y": {0: batch}}, "opset_version": 18, **kwargs}
        return graph_key(graph, (torch.zeros(2, 1, size, size),) * 2, exporter)

    same = key()
    assert key(copy.deepcopy(model.stages[0])) == same  # another copy of the stage: the same graph
    others = [key(model.stages[1]), key(dtype=torch.float16), key(size=TILE // 2), key(opset_version=17)]
    for name in ("head.bias", "encoders.0.1.running_var"):
        stage = copy.deepcopy(model.stages[0])
        stage.state_dict()[name].view(-1)[0] += 1e-6
        others.append(key(stage))
    stage = copy.deepcopy(model.stages[0])
    stage.depth = stage.depth + 1  # a plain attribute the forward reads
    others.append(key(stage))
    monkeypatch.setattr(torch, "__version__", "0.0.0-another")
    others.append(key())
    assert same not in others and len(set(others)) == len(others)


@pytest.mark.parametrize("batch", [1, 3])
def test_onnx_matches_torch_at_any_batch(model, onnx_fp32, seed, batch):
    assert [os.path.basename(p) for p in onnx_fp32] == ["stage1.onnx", "stage2.onnx"]
    for path, stage in zip(onnx_fp32, model.stages):
        xp, y = inputs(batch)
        with torch.no_grad():
            ref = stage(xp, y)
        out = ort_run(path, xp, y)
        assert out.dtype == torch.float32 and out.shape == (batch, 1, TILE, TILE)
        err = (out - ref).abs().max().item()
        print(f"{os.path.basename(path)} fp32 batch {batch}: max abs {err:.2e}")
        assert err < 1e-4


def test_onnx_io_and_metadata(model, onnx_fp32):
    import onnx

    proto = onnx.load(onnx_fp32[0])
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert set(dims) == {"xp", "y"} and [o.name for o in proto.graph.output] == ["out"]
    assert isinstance(dims["xp"][0], str) and dims["xp"][1:] == [1, TILE, TILE]  # dynamic batch, fixed tile
    for k, path in enumerate(onnx_fp32, start=1):
        meta = read_onnx_metadata(path)
        assert meta["xvertfast.stage"] == str(k) and meta["xvertfast.stages"] == "2"
        assert meta["xvertfast.tile"] == str(TILE) and meta["xvertfast.precision"] == "fp32"
        assert meta["xvertfast.model_sha256"] == fingerprint(model)
        assert meta["xvertfast.version"]
    assert not [f for f in os.listdir(os.path.dirname(onnx_fp32[0])) if f.endswith(".part")]


def test_fp16_graph_has_fp16_weights_and_float32_io(model, tmp_path, seed):
    needs_export()
    import onnx

    paths = export_onnx(model, tmp_path, tile=TILE, fp16=True)
    proto = onnx.load(paths[0])
    # every weight in fp16; the bilinear Resize's scales stay float32 (ONNX requires it)
    scales = {n.input[2] for n in proto.graph.node if n.op_type == "Resize"}
    assert scales, "premise: stage 1 upsamples bilinearly"
    kinds = {t.name: t.data_type for t in proto.graph.initializer}
    assert {kinds[n] for n in scales} == {onnx.TensorProto.FLOAT}
    assert {v for n, v in kinds.items() if n not in scales} == {onnx.TensorProto.FLOAT16}
    assert {v.type.tensor_type.elem_type for v in [*proto.graph.input, *proto.graph.output]} == {onnx.TensorProto.FLOAT}
    assert read_onnx_metadata(paths[0])["xvertfast.precision"] == "fp16"
    xp, y = inputs(2)
    with torch.no_grad():
        ref = model.stages[0](xp, y)
    err = (ort_run(paths[0], xp, y) - ref).abs().max().item()
    print(f"stage1.onnx fp16 batch 2: max abs {err:.2e}")
    assert err < 5e-3  # fp16 rounding, not a wrong graph


def test_export_model_from_a_model_directory(model, tmp_path, seed):
    needs_export()
    src = save_model(model, tmp_path / "model", extra={"training": {"config": {"roi_size": 32}}})
    paths = export_model(src, tmp_path / "out", format="onnx")
    assert [os.path.basename(p) for p in paths] == ["stage1.onnx", "stage2.onnx"]
    assert read_onnx_metadata(paths[1])["xvertfast.tile"] == "32"  # the training ROI size
    xp, y = inputs(2, 32)
    with torch.no_grad():
        ref = model.stages[1](xp, y)
    assert (ort_run(paths[1], xp, y) - ref).abs().max().item() < 1e-4
    # without its training settings a model directory exports at 512: one small stage tells (each
    # stage's export takes seconds, whatever the tile, and only the tile is read here)
    src = save_model(tiny_model(seed, stages=1, width=2, depth=1), tmp_path / "small",
                     extra={"training": {"config": {"roi_size": 32}}})  # fmt: skip
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    del config["training"]
    with open(os.path.join(src, "config.json"), "w") as f:
        json.dump(config, f)
    assert read_onnx_metadata(export_model(src, tmp_path / "out512", tile=None)[0])["xvertfast.tile"] == "512"


def test_export_model_rejects_unknown_format(model, tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export_model(model, tmp_path, format="tflite")


@pytest.mark.parametrize("call", ["export_onnx", "cached_onnx_export", "export_aoti", "export_model"])
def test_an_export_refuses_a_model_tile_or_batch_in_the_name_of_the_function_called(model, tmp_path, call):
    """A model name where an XVertNet is wanted was "expected an XVertNet, got str", naming neither
    the function nor how to get a model (and its hint "or 'default' for the shipped model" read as
    if the name were taken); another module given to export_model was os.fspath's "expected str,
    bytes or os.PathLike object, not Conv2d"; tile=True was exported at tile 1, tile=64.0 and
    max_batch=2.5 taken or refused each its own way. Refused before any work (no folder made)."""
    function = {"export_onnx": export_onnx, "cached_onnx_export": cached_onnx_export,
                "export_aoti": export_module.export_aoti, "export_model": export_model}[call]
    out = tmp_path / "out"
    if call == "export_model":  # (it takes a model's folder, or 'default', by name)
        with pytest.raises(TypeError, match=r"^export_model: model must be a model directory, 'default' or an "
                                            r"XVertNet, got Conv2d$"):  # fmt: skip
            function(torch.nn.Conv2d(1, 1, 1), out)
    else:
        with pytest.raises(TypeError, match=rf"^{call}: model must be an XVertNet \(xvertfast.load_model\('default'\) "
                                            r"gives the shipped model, xvertfast.load_model\(path\) a trained one\), "
                                            r"got str$"):  # fmt: skip
            function("default", out)
    for tile in (True, 0, 64.0):
        with pytest.raises(ValueError, match=rf"^{call}: tile must be a whole number >= 1 .*, got {tile!r}$"):
            function(model, out, tile=tile)
    if call in ("export_aoti", "export_model"):
        with pytest.raises(ValueError, match=rf"^{call}: max_batch must be a whole number >= 1 .*, got 2.5$"):
            function(model, out, tile=TILE, max_batch=2.5)
    assert not out.exists()


def test_an_export_takes_a_compiled_model_as_the_model_it_wraps(model, tmp_path):
    """torch.compile(model) was refused "model must be an XVertNet ..., got OptimizedModule" (save_model
    and Enhancer take it since fd09c91). Wrapping is cheap (nothing compiles until it runs, nor is
    anything exported here): each function's refusal now is the tile's, so the model passed, and
    the model the exports go on with is the one wrapped."""
    compiled = torch.compile(model)
    for call, function in {"export_onnx": export_onnx, "cached_onnx_export": cached_onnx_export,
                           "export_aoti": export_module.export_aoti, "export_model": export_model}.items():
        with pytest.raises(ValueError, match=rf"^{call}: tile must be a whole number >= 1 .*, got 0$"):
            function(compiled, tmp_path / "out", tile=0)
    assert export_module._check(compiled, np.int64(TILE), "export_onnx") == (model, TILE)
    assert not (tmp_path / "out").exists()


def test_an_export_takes_a_numpy_integer_tile(model, tmp_path):
    """A tile read off an array's shape or a NumPy config (np.int64) was refused: "tile must be a
    positive int, got np.int64(64)"."""
    needs_export()
    paths = export_onnx(model, tmp_path, tile=np.int64(TILE))
    assert read_onnx_metadata(paths[0])["xvertfast.tile"] == str(TILE)


def test_onnxruntime_backend_matches_torch_and_reuses_its_cache(model, tmp_path, seed):
    needs_export()
    from xvertfast.infer.backends import make_backend

    backend = make_backend("onnxruntime", model, torch.device("cpu"), torch.float32, tile=TILE, max_batch=4,
                           cache_dir=str(tmp_path))  # fmt: skip
    assert backend.name == "onnxruntime" and backend.stages == 2
    for k, stage in enumerate(model.stages):
        for batch in (1, 3):
            xp, y = inputs(batch)
            with torch.inference_mode():
                ref = stage(xp, y)
                out = backend.run_stage(k, xp, y)
            err = (out - ref).abs().max().item()
            print(f"OnnxRuntimeBackend stage {k + 1} batch {batch}: max abs {err:.2e}")
            assert out.dtype == torch.float32 and out.device.type == "cpu" and err < 1e-4
    with pytest.raises(ValueError, match=f"1, {TILE}, {TILE}"):
        backend.run_stage(0, *inputs(1, TILE + 16))
    first = cached_onnx_export(model, tmp_path, tile=TILE)
    stamps = [os.stat(p).st_mtime_ns for p in first]
    assert cached_onnx_export(model, tmp_path, tile=TILE) == first
    assert [os.stat(p).st_mtime_ns for p in first] == stamps  # reused, not re-exported
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.stages[1].head.bias[0] += 1e-3  # one weight changed: another model, another folder
    assert cached_onnx_export(other, tmp_path, tile=TILE) != first


@pytest.mark.slow
def test_aoti_package_matches_torch(tmp_path, seed):
    """One small stage (width 2, depth 1): AOTInductor compiles C++ per stage, ~38 CPU s for this
    one (67 s at width 4, depth 2); nothing checked here depends on the stage's size."""
    import torch._inductor

    if not hasattr(torch._inductor, "aoti_compile_and_package") or shutil.which("c++") is None:
        pytest.skip("AOTInductor packaging needs torch >= 2.6 and a C++ compiler")
    model = tiny_model(seed, stages=1, width=2, depth=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (path,) = export_model(model, tmp_path, format="aoti", max_batch=4, tile=TILE, device="cpu")
    # torch's internal pytree deprecation is not shown to the user (it was, twice per export)
    assert not [w for w in caught if "LeafSpec" in str(w.message)], [str(w.message) for w in caught]
    assert os.path.basename(path) == "stage1.pt2"
    (package,) = load_aoti([path])
    assert package.metadata["xvertfast.tile"] == str(TILE) and package.max_batch == 4
    # what load_aoti checks before loading is found in the archive, and says this CPU can run it
    built_for = export_module._package_build_metadata(path)
    assert built_for["xvertfast.tile"] == str(TILE) and built_for["AOTI_DEVICE_KEY"] == "cpu" and built_for["AOTI_CPU_ISA"]
    assert export_module.aoti_runs_here(built_for) is None
    for batch in (1, 3):
        xp, y = inputs(batch)
        with torch.no_grad():
            err = (package(xp, y) - model.stages[0](xp, y)).abs().max().item()
        print(f"AOTI stage1 batch {batch}: max abs {err:.2e}")
        assert err < 1e-4
    # what the bare package would run without a word (unless AOTI_RUNTIME_CHECK_INPUTS=1)
    for bad in (inputs(2, TILE + 32), inputs(5)):
        with pytest.raises(ValueError, match="B from 1 to 4, got"):
            package(*bad)
    with pytest.raises(ValueError, match="must be float32"):
        package(*(t.double() for t in inputs(1)))


def test_an_export_folder_holds_one_models_stages(model, deeper, tmp_path, monkeypatch):
    needs_export()
    import onnx

    from xvertfast.infer.onnx_backend import OnnxRuntimeBackend

    export_onnx(deeper, tmp_path / "out", tile=TILE)
    paths = export_onnx(model, tmp_path / "out", tile=TILE)
    assert sorted(os.listdir(tmp_path / "out")) == ["stage1.onnx", "stage2.onnx"]  # the deeper model's stage3 went
    assert {read_onnx_metadata(p)["xvertfast.model_sha256"] for p in paths} == {fingerprint(model)}
    stamps = {p: os.stat(p).st_mtime_ns for p in paths}
    save, saved = onnx.save_model, []

    def fail_on_the_second(proto, path, *args, **kwargs):
        if saved:
            raise KeyboardInterrupt  # Ctrl-C while the second stage is written
        saved.append(path)
        return save(proto, path, *args, **kwargs)

    monkeypatch.setattr(onnx, "save_model", fail_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(deeper, tmp_path / "out", tile=TILE)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "out")) == ["stage1.onnx", "stage2.onnx"]  # no temporaries left
    assert {p: os.stat(p).st_mtime_ns for p in paths} == stamps  # the earlier set, whole
    OnnxRuntimeBackend(paths, torch.device("cpu"))  # one model's stages in order: accepted
    # as is its export folder; one file was walked through character by character ('/': no such file)
    assert len(OnnxRuntimeBackend(tmp_path / "out", torch.device("cpu"))._sessions) == 2
    with pytest.raises(ValueError, match="not stage 1 of the 1-stage model"):  # one file: a set of one, checked
        OnnxRuntimeBackend(str(paths[1]), torch.device("cpu"))
    with pytest.raises(ValueError, match="OnnxRuntimeBackend needs the stage files of one model, got none"):
        OnnxRuntimeBackend([], torch.device("cpu"))
    other = export_onnx(deeper, tmp_path / "deeper", tile=TILE)
    small = export_onnx(model, tmp_path / "small", tile=TILE // 2)
    with pytest.raises(ValueError, match=re.escape(f"{paths[0]}: {TILE} x {TILE}, {small[1]}: {TILE // 2} x {TILE // 2}")):
        OnnxRuntimeBackend([paths[0], small[1]], torch.device("cpu"))  # each file with its tile
    for mixed, stage in (([paths[0], other[1]], 2), ([paths[1], paths[0]], 1)):
        with pytest.raises(ValueError, match=f"not stage {stage} of the {len(mixed)}-stage model"):
            OnnxRuntimeBackend(mixed, torch.device("cpu"))
    # a folder that lost its last stage file said "stage1.onnx: not stage 1 of the 1-stage model of
    # stage1.onnx (its metadata: ..., stage 1 of 2 ...)", as if that file were at fault
    os.remove(paths[1])
    for given in (paths[:1], tmp_path / "out"):
        with pytest.raises(ValueError, match=re.escape(f"{paths[0]}: stage 1 of a 2-stage model, and no stage 2 "
                                                       f"was given (stage2.onnx)")):  # fmt: skip
            OnnxRuntimeBackend(given, torch.device("cpu"))
    # files given under other names were told of a missing "stage2.onnx", a name they never had
    mine = tmp_path / "mine_first.onnx"
    shutil.copyfile(paths[0], mine)
    with pytest.raises(ValueError, match=re.escape(f"{mine}: stage 1 of a 2-stage model, and no stage 2 was given: "
                                                   "give every")):  # fmt: skip
        OnnxRuntimeBackend([mine], torch.device("cpu"))


def test_a_tensorrt_export_builds_from_the_onnx_set_of_this_model_only(model, tmp_path, seed):
    needs_export()
    from xvertfast.infer.export import _matching_onnx_set

    paths = export_onnx(model, tmp_path / "out", tile=TILE)  # `--format onnx` first, then tensorrt into it
    sha = fingerprint(model)
    assert _matching_onnx_set(str(tmp_path / "out"), 2, sha, TILE, False) == paths
    assert _matching_onnx_set(str(tmp_path / "out"), 2, sha, TILE + 32, False) is None  # another tile
    assert _matching_onnx_set(str(tmp_path / "out"), 2, sha, TILE, True) is None  # another precision
    assert _matching_onnx_set(str(tmp_path / "out"), 2, "0" * 64, TILE, False) is None  # another model
    (tmp_path / "out" / "stage3.onnx").write_text("x")
    assert _matching_onnx_set(str(tmp_path / "out"), 2, sha, TILE, False) is None  # not exactly its set


def test_the_onnx_backend_runs_the_precision_of_its_graphs(model, tmp_path):
    needs_export()
    from xvertfast.infer.onnx_backend import OnnxRuntimeBackend

    for fp16, dtype in ((False, torch.float32), (True, torch.float16)):
        paths = export_onnx(model, tmp_path / str(fp16), tile=TILE, fp16=fp16)
        assert OnnxRuntimeBackend(paths, torch.device("cpu")).dtype == dtype


def test_the_onnx_cache_is_keyed_by_the_exporter_too(model, tmp_path, monkeypatch):
    needs_export()
    first = cached_onnx_export(model, tmp_path, tile=TILE)
    monkeypatch.setattr(torch, "__version__", "0.0.0-another")  # an export by another torch is not reused
    again = cached_onnx_export(model, tmp_path, tile=TILE)
    assert os.path.dirname(again[0]) != os.path.dirname(first[0])


def test_export_cli_names_an_unusable_output(model, tmp_path, capsys):
    from xvertfast.cli import main

    src = save_model(model, tmp_path / "model")
    (tmp_path / "afile").write_text("x")
    assert main(["export", str(src), "-o", str(tmp_path / "afile"), "--format", "onnx"]) == 2
    assert "error:" in capsys.readouterr().err


def test_aoti_fp16_needs_cuda(model, tmp_path):
    with pytest.raises(ValueError, match="CUDA"):
        export_model(model, tmp_path, format="aoti", fp16=True, device="cpu")


def _key_inputs(**changes):
    shapes = {"min": (1, 1, 512, 512), "opt": (8, 1, 512, 512), "max": (8, 1, 512, 512)}
    settings = tensorrt_backend.build_settings("10.9.0", "fp32", shapes)
    base = {"tensorrt_version": "10.9.0", "gpu_name": "NVIDIA H100", "capability": (9, 0), "settings": settings}
    return {**base, **changes}


def _changed(value):
    """A different value of the same kind: every leaf of a setting must reach the key."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "X"
    if isinstance(value, (list, tuple)):
        return [*value, "X"] if not value or not isinstance(value[0], int) else [value[0] + 1, *value[1:]]
    raise AssertionError(f"no change known for {value!r}")


def _leaves(tree, path=()):
    if isinstance(tree, dict):
        for name, sub in tree.items():
            yield from _leaves(sub, (*path, name))
    elif isinstance(tree, (list, tuple)) and tree and isinstance(tree[0], (list, tuple)):
        for i, sub in enumerate(tree):
            yield from _leaves(sub, (*path, i))
    else:
        yield path, tree


def test_engine_cache_key_covers_every_build_setting():
    # the key hashed the ONNX, TensorRT, GPU, precision and shapes but none of the builder's other
    # settings (workspace limit, flags): an engine built with other settings was reused silently
    base = _key_inputs()
    key = tensorrt_backend.engine_cache_key("ab" * 32, **base)
    assert key == tensorrt_backend.engine_cache_key("ab" * 32, **copy.deepcopy(base)) and len(key) == 64
    for field, value in [("tensorrt_version", "11.0.0"), ("gpu_name", "NVIDIA H200"), ("capability", (8, 9))]:
        assert tensorrt_backend.engine_cache_key("ab" * 32, **{**base, field: value}) != key, field
    assert tensorrt_backend.engine_cache_key("cd" * 32, **base) != key
    leaves = list(_leaves(base["settings"]))
    assert {path[0] for path, _ in leaves} == set(base["settings"])  # every setting has a leaf to change
    for path, value in leaves:
        settings = copy.deepcopy(base["settings"])
        node = settings
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = _changed(value)
        assert tensorrt_backend.engine_cache_key("ab" * 32, **{**base, "settings": settings}) != key, path
    shapes = {"min": (1, 1, 512, 512), "opt": (8, 1, 512, 512), "max": (8, 1, 512, 512)}
    fp16 = tensorrt_backend.build_settings("10.9.0", "fp16", shapes)  # TF32 left on: another engine
    assert tensorrt_backend.engine_cache_key("ab" * 32, **{**base, "settings": fp16}) != key


def test_engine_cache_key_is_the_same_in_another_process():
    # a key that hashed id()s or str(hash()) of objects would differ in every process: no engine reused
    code = ("import json, sys\nfrom xvertfast.infer import tensorrt_backend as t\n"
            "shapes = {'min': (1, 1, 512, 512), 'opt': (8, 1, 512, 512), 'max': (8, 1, 512, 512)}\n"
            "print(t.engine_cache_key('ab' * 32, tensorrt_version='10.9.0', gpu_name='NVIDIA H100', capability=(9, 0), "
            "settings=t.build_settings('10.9.0', 'fp32', shapes)))\n")  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert there.stdout.strip() == tensorrt_backend.engine_cache_key("ab" * 32, **_key_inputs())


def test_modules_import_without_the_optional_packages():
    """onnx, onnxscript, onnxruntime and tensorrt are extras: the modules must import without them."""
    code = ("import sys\n"
            "for m in ('onnx', 'onnxscript', 'onnxruntime', 'tensorrt'): sys.modules[m] = None\n"
            "import xvertfast.infer.export, xvertfast.infer.onnx_backend, xvertfast.infer.tensorrt_backend as t\n"
            "assert t.available() is False\n"
            "from xvertfast.infer.onnx_backend import OnnxRuntimeBackend\n"
            "try:\n"
            "    OnnxRuntimeBackend(['stage1.onnx'], 'cpu')\n"
            "except RuntimeError as exc:\n"
            "    assert 'xvertfast[export]' in str(exc), exc\n"
            "else:\n"
            "    raise AssertionError('no error without onnxruntime')\n")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


def test_tensorrt_backend_without_tensorrt_says_how_to_install(monkeypatch, model):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    assert tensorrt_backend.available() is False
    with pytest.raises(RuntimeError, match="pip install tensorrt") as info:
        tensorrt_backend.TensorRTBackend(["stage1.engine"], torch.device("cuda"))
    assert "onnxruntime" in str(info.value)
    with pytest.raises(RuntimeError, match="pip install tensorrt"):
        tensorrt_backend.TensorRTBackend.from_model(model, torch.device("cuda"), tile=TILE)
    with pytest.raises(RuntimeError, match="pip install tensorrt") as info:
        export_model(model, "unused", format="tensorrt")
    # the alternative named for each way of running: the Enhancer's backend, export_model's format (the
    # CLI's enhance --backend and export --format: test_backend_build)
    assert "backend='onnxruntime'" in str(info.value) and "format='onnx'" in str(info.value)


def _tensorrt_skip_reason() -> str:
    if not tensorrt_backend.available():
        return "TensorRT >= 10 is not importable here (pip install tensorrt on a machine with an NVIDIA driver)"
    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA GPU; none is visible"
    return ""


needs_tensorrt = pytest.mark.skipif(bool(_tensorrt_skip_reason()), reason=_tensorrt_skip_reason())


@pytest.mark.tensorrt
@needs_tensorrt
def test_tensorrt_engine_matches_torch(model, tmp_path, seed):
    dev = torch.device("cuda")
    backend = tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, max_batch=4, cache_dir=str(tmp_path))
    assert backend.stages == 2 and backend.max_batch == 4 and backend.tile == TILE
    engines = [f for f in os.listdir(tmp_path) if f.endswith(".engine")]
    assert len(engines) == 2 and any(f.startswith("timing-") for f in os.listdir(tmp_path))
    cuda_model = copy.deepcopy(model).to(dev)
    with torch.backends.cudnn.flags(allow_tf32=False):
        for k, stage in enumerate(cuda_model.stages):
            for batch in (1, 3, 4):
                xp, y = (t.to(dev) for t in inputs(batch))
                with torch.inference_mode():
                    ref = stage(xp, y)
                    out = backend.run_stage(k, xp, y)
                torch.cuda.synchronize()
                err = (out - ref).abs().max().item()
                print(f"TensorRT stage {k + 1} batch {batch}: max abs {err:.2e}")
                assert out.dtype == torch.float32 and err < 1e-3
    with pytest.raises(ValueError, match="outside the engine's profile"):
        backend.run_stage(0, *(t.to(dev) for t in inputs(5)))
    again = tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, max_batch=4, cache_dir=str(tmp_path))
    assert again.stages == 2 and sorted(f for f in os.listdir(tmp_path) if f.endswith(".engine")) == sorted(engines)
    half = tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, fp16=True, max_batch=4,
                                                       cache_dir=str(tmp_path))  # fmt: skip
    xp, y = (t.to(dev) for t in inputs(2))
    with torch.inference_mode():
        err = (half.run_stage(0, xp, y) - cuda_model.stages[0](xp, y)).abs().max().item()
    print(f"TensorRT fp16 stage 1 batch 2: max abs {err:.2e}")
    assert err < 5e-3


@pytest.mark.tensorrt
@needs_tensorrt
def test_tensorrt_cache_key_changes_with_precision_and_shape(tmp_path):
    dev = torch.device("cuda")
    (p32,) = cached_onnx_export(tiny_model(1, stages=1), tmp_path, tile=TILE)
    (p16,) = cached_onnx_export(tiny_model(1, stages=1), tmp_path, tile=TILE, fp16=True)
    key = tensorrt_backend.engine_path(p32, max_batch=4, device=dev, cache_dir=tmp_path)
    assert key == tensorrt_backend.engine_path(p32, max_batch=4, device=dev, cache_dir=tmp_path)
    assert tensorrt_backend.engine_path(p16, max_batch=4, device=dev, cache_dir=tmp_path) != key
    assert tensorrt_backend.engine_path(p32, max_batch=8, device=dev, cache_dir=tmp_path) != key
    (p64,) = cached_onnx_export(tiny_model(1, stages=1), tmp_path, tile=2 * TILE)
    assert tensorrt_backend.engine_path(p64, max_batch=4, device=dev, cache_dir=tmp_path) != key


def test_a_damaged_onnx_file_is_named_and_a_damaged_cache_is_exported_again(model, tmp_path):
    needs_export()
    from xvertfast.infer.onnx_backend import OnnxRuntimeBackend

    first = cached_onnx_export(model, tmp_path, tile=TILE)
    with open(first[1], "rb") as f:
        whole = f.read()
    with open(first[1], "wb") as f:
        f.write(whole[: len(whole) // 2])  # a truncated copy, a disk error
    with pytest.raises(ValueError, match=re.escape(f"{first[1]}: not a readable ONNX file")):
        read_onnx_metadata(first[1])
    with pytest.raises(ValueError, match=re.escape(f"{first[1]}: onnxruntime cannot load it")):
        OnnxRuntimeBackend(first, torch.device("cpu"))
    assert cached_onnx_export(model, tmp_path, tile=TILE) == first  # the same folder, made whole again
    with open(first[1], "rb") as f:
        assert f.read() == whole
    OnnxRuntimeBackend(first, torch.device("cpu"))


def test_a_bit_flipped_cached_onnx_file_is_named_and_exported_again(model, tmp_path, seed, monkeypatch):
    # one flipped bit in a weight leaves the graph loadable and its metadata right: the cache
    # handed the file on and onnxruntime computed wrong tiles without a word
    needs_export()
    import onnx

    exports = []  # (counted, not told by st_mtime_ns: a coarse-timestamp filesystem may keep it)
    export = export_module.export_onnx
    monkeypatch.setattr(export_module, "export_onnx", lambda *a, **k: exports.append(1) or export(*a, **k))
    first = cached_onnx_export(model, tmp_path, tile=TILE)
    xp, y = inputs(2)
    intact = ort_run(first[0], xp, y)
    with open(first[0], "rb") as f:
        whole = f.read()
    (bias,) = (t.raw_data for t in onnx.load(first[0]).graph.initializer if t.name.endswith("head.bias"))
    at = whole.find(bias) + 3  # the last conv's bias, the byte of its float32's exponent
    assert len(bias) == 4 and whole.count(bias) == 1
    with open(first[0], "wb") as f:
        f.write(whole[:at] + bytes([whole[at] ^ 0x40]) + whole[at + 1 :])
    assert read_onnx_metadata(first[0]) == read_onnx_metadata(first[1]) | {"xvertfast.stage": "1"}
    assert not torch.equal(ort_run(first[0], xp, y), intact)  # the harm, unseen
    with pytest.warns(RuntimeWarning, match=re.escape(f"{first[0]}: this cached ONNX file is damaged")):
        assert cached_onnx_export(model, tmp_path, tile=TILE) == first  # the same folder, made whole again
    with open(first[0], "rb") as f:
        assert f.read() == whole
    assert torch.equal(ort_run(first[0], xp, y), intact)
    assert len(exports) == 2
    os.remove(first[1] + ".sha256")  # an export killed before its digests: exported again, quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_onnx_export(model, tmp_path, tile=TILE)
    assert len(exports) == 3 and os.path.isfile(first[1] + ".sha256")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached_onnx_export(model, tmp_path, tile=TILE)  # whole: used as it is
    assert len(exports) == 3


@pytest.mark.parametrize("recorded", ["cut", "empty", "not hex"])
def test_a_cached_onnx_digest_that_is_no_sha256_counts_as_missing(model, tmp_path, monkeypatch, recorded):
    # a .sha256 cut short (or emptied) says nothing of the ONNX file beside it: it was called
    # damaged ('this cached ONNX file is damaged'), where a missing digest is exported again quietly
    needs_export()
    exports = []
    export = export_module.export_onnx
    monkeypatch.setattr(export_module, "export_onnx", lambda *a, **k: exports.append(1) or export(*a, **k))
    first = cached_onnx_export(model, tmp_path, tile=TILE)
    with open(first[0] + ".sha256") as f:
        digest = f.read().strip()
    bad = {"cut": digest[:40], "empty": "", "not hex": "z" * 64}[recorded]
    with open(first[0] + ".sha256", "w") as f:
        f.write(bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cached_onnx_export(model, tmp_path, tile=TILE) == first
    with open(first[0] + ".sha256") as f:
        assert len(exports) == 2 and f.read().strip() == digest


def fake_aoti_package(path, **metadata) -> str:
    """A zip laid out like an AOTI package as far as its recorded metadata goes (no code)."""
    import json
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("stage1/data/aotinductor/model/abc.wrapper_metadata.json", json.dumps(metadata))
    return str(path)


def test_the_onnx_backend_names_a_missing_file_as_missing(model, tmp_path):
    # a mistyped path was "onnxruntime cannot load it ([ONNXRuntimeError] : 3 : NO_SUCHFILE ...);
    # export the model again", as if the file were damaged
    needs_export()
    from xvertfast.infer.onnx_backend import OnnxRuntimeBackend

    paths = export_onnx(model, tmp_path / "out", tile=TILE)
    for missing, given in ((str(tmp_path / "outt"), tmp_path / "outt"), (paths[1] + "x", [paths[0], paths[1] + "x"])):
        with pytest.raises(FileNotFoundError, match=re.escape(f"{missing}: no such ONNX file") + "$"):
            OnnxRuntimeBackend(given, torch.device("cpu"))


def test_load_aoti_refuses_a_cpu_package_built_for_instructions_this_cpu_lacks(tmp_path, monkeypatch):
    # a package exported on an AMX Xeon and loaded on an older CPU dies of an illegal instruction
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_supported", lambda: True)
    path = fake_aoti_package(tmp_path / "stage1.pt2", AOTI_DEVICE_KEY="cpu", AOTI_MACHINE=platform.machine(),
                             AOTI_CPU_ISA="AVX512 AMX_TILE")  # fmt: skip
    with pytest.raises(ValueError, match=re.escape(f"{path}: cannot run on this machine: it was compiled for a CPU "
                                                   "with AMX_TILE, which this CPU lacks; export the model again here")):
        load_aoti([path])
    other = fake_aoti_package(tmp_path / "arm.pt2", AOTI_DEVICE_KEY="cpu", AOTI_MACHINE="aarch64-or-other",
                              AOTI_CPU_ISA="")  # fmt: skip
    with pytest.raises(ValueError, match="compiled for aarch64-or-other CPUs"):
        load_aoti([other])
    # what the CPU has, or a GPU package, or an unknown layout: left to torch's loader
    for fine in ({"AOTI_DEVICE_KEY": "cpu", "AOTI_MACHINE": platform.machine(), "AOTI_CPU_ISA": "AVX512"},
                 {"AOTI_DEVICE_KEY": "cuda", "AOTI_CPU_ISA": "AMX_TILE"}, {}):  # fmt: skip
        assert export_module.aoti_runs_here(fine) is None
    assert export_module._package_build_metadata(str(tmp_path / "missing.pt2")) is None


def test_load_aoti_names_a_missing_or_damaged_package(tmp_path):
    missing, damaged = str(tmp_path / "stage1.pt2"), str(tmp_path / "stage2.pt2")
    with open(damaged, "wb") as f:
        f.write(b"PK\x03\x04" + bytes(100))  # a zip's first bytes, cut short
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        load_aoti([missing])
    with pytest.raises(ValueError, match=re.escape(f"{damaged}: not a loadable AOTInductor package")):
        load_aoti([damaged])


def test_an_unusable_output_folder_is_named_before_any_export_work(model, tmp_path, monkeypatch):
    needs_export()
    import tempfile

    def no_export(*args, **kwargs):
        raise AssertionError("exported before the output folder was checked")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match=re.escape(f"{tmp_path / 'afile'}: a file, not a folder")):
        export_onnx(model, tmp_path / "afile", tile=TILE)
    with pytest.raises(NotADirectoryError, match=re.escape(f"{tmp_path / 'afile' / 'sub'}: cannot write")):
        export_onnx(model, tmp_path / "afile" / "sub", tile=TILE)
    mkstemp, locked = tempfile.mkstemp, str(tmp_path / "locked")

    def refused_in_locked(*args, dir=None, **kwargs):  # a folder that takes no new files (read-only, no rights)
        if os.path.abspath(dir) == locked:
            raise PermissionError(13, "Permission denied", os.path.join(dir, "tmpname"))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused_in_locked)
    for fmt in ("onnx", "aoti"):
        with pytest.raises(PermissionError, match=re.escape(f"{locked}: cannot write")):
            export_model(model, locked, format=fmt, tile=TILE, device="cpu")


def test_an_export_removes_what_a_killed_export_left_in_its_folder(model, tmp_path):
    needs_export()
    out = tmp_path / "out"
    out.mkdir()
    left = [".stage1.onnx.k2j4h7qz.part", ".stage3.onnx.a1b2c3d4.part"]  # a kill during the writes
    kept = [".stage1.pt2.a1b2c3d4.part", ".notes.txt.a1b2c3d4.part", "stage1.onnx.bak"]  # another format's, others'
    for name in left + kept:
        (out / name).write_bytes(b"\0" * 10)
    export_model(model, out, format="onnx", tile=TILE)
    assert sorted(os.listdir(out)) == sorted(["stage1.onnx", "stage2.onnx", *kept])


def test_a_tensorrt_export_writes_engines_beside_their_onnx_set(model, deeper, tmp_path, monkeypatch):
    """The folder handling of ``--format tensorrt`` without TensorRT: engines are built by a
    stand-in that records the ONNX file each is built from."""
    needs_export()
    from xvertfast.infer import backends

    built = []

    def build_engine(onnx_path, *, max_batch, device, cache_dir):
        built.append(onnx_path)
        if len(built) == fail_at:
            raise RuntimeError("the builder failed")
        path = os.path.join(str(tmp_path / "cache"), f"{len(built)}.engine")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(f"engine of {read_onnx_metadata(onnx_path)['xvertfast.model_sha256']} batch {max_batch}")
        return path

    fail_at = 0
    monkeypatch.setattr(tensorrt_backend, "import_tensorrt", lambda: None)
    monkeypatch.setattr(tensorrt_backend, "build_engine", build_engine)
    monkeypatch.setattr(backends, "resolve_device", lambda device: torch.device("cuda"))
    out = tmp_path / "out"
    export_model(deeper, out, format="tensorrt", tile=TILE)
    with pytest.raises(ValueError, match="already holds stage1.engine, stage2.engine, stage3.engine"):
        export_model(model, out, format="tensorrt", tile=TILE, overwrite=False)
    onnx_set = export_model(model, out, format="onnx", tile=TILE, overwrite=True)  # this model's ONNX there
    assert sorted(os.listdir(out)) == ["stage1.onnx", "stage2.onnx"]  # the deeper model's engines went with its set
    stamps = [os.stat(p).st_mtime_ns for p in onnx_set]
    built.clear()
    engines = export_model(model, out, format="tensorrt", tile=TILE, max_batch=4, overwrite=True)
    assert [os.path.basename(p) for p in engines] == ["stage1.engine", "stage2.engine"]
    assert sorted(os.listdir(out)) == ["stage1.engine", "stage1.onnx", "stage2.engine", "stage2.onnx"]
    assert built == onnx_set and [os.stat(p).st_mtime_ns for p in onnx_set] == stamps  # built from that set
    for path in engines:
        with open(path) as f:
            assert f.read() == f"engine of {fingerprint(model)} batch 4"
    built.clear()
    fail_at = 2
    with pytest.raises(RuntimeError, match="the builder failed"):
        export_model(deeper, out, format="tensorrt", tile=TILE, overwrite=True)
    assert not [name for name in os.listdir(out) if name.endswith((".engine", ".part"))]  # none of either model


def test_export_cli_states_its_exit_codes(model, tmp_path, monkeypatch, capsys):
    from xvertfast import cli
    from xvertfast.infer import export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_model", interrupted)
    code = cli.main(["export", "default", "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        cli.main(["export", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert code == 130 and f"{code} interrupted" in said


def test_export_cli_says_a_long_compile_is_coming(tmp_path, monkeypatch, capsys):
    # an AOTI export sat silent for half a minute a stage
    from xvertfast import cli
    from xvertfast.infer import export

    def starts_the_work(*args, on_start=None, **kwargs):
        if on_start is not None:
            on_start()
        return [str(tmp_path / "stage1.pt2")]

    monkeypatch.setattr(export, "export_model", starts_the_work)
    assert cli.main(["export", "default", "-o", str(tmp_path), "--format", "aoti"]) == 0
    assert "AOTInductor compiles C++ for each stage" in capsys.readouterr().err
    assert cli.main(["export", "default", "-o", str(tmp_path), "--format", "onnx"]) == 0
    assert "compiles" not in capsys.readouterr().err


def test_export_cli_says_the_long_wait_only_for_an_export_that_goes_ahead(tmp_path, monkeypatch, capsys):
    # `export --format tensorrt` without TensorRT (or a GPU) said "TensorRT builds an engine for each stage
    # (minutes on a GPU) ..." and refused on the next line; aoti's fp16 on the CPU the same
    from xvertfast import cli

    out = tmp_path / "out"
    for refused, why in ((["--format", "tensorrt", "--device", "cpu"], "TensorRT"),
                         (["--format", "aoti", "--fp16", "--device", "cpu"], "fp16 AOTInductor packages need a CUDA")):
        assert cli.main(["export", "default", "-o", str(out), *refused]) == 2
        err = capsys.readouterr().err
        assert why in err and "error:" in err and "minutes" not in err and "half a minute" not in err, err
    assert not out.exists()
    compiled = []  # an aoti export that goes ahead says it first, once, before its compiling
    monkeypatch.setattr(export_module, "_write_stage_set", lambda out_dir, ext, count, write: compiled.append(
        capsys.readouterr().err) or [os.path.join(out_dir, f"stage{k + 1}{ext}") for k in range(count)])  # fmt: skip
    assert cli.main(["export", "default", "-o", str(out), "--format", "aoti", "--device", "cpu"]) == 0
    assert [said.count("AOTInductor compiles C++ for each stage") for said in compiled] == [1]


def test_the_onnxruntime_backend_without_onnxruntime_says_so_before_exporting(model, tmp_path, monkeypatch):
    # it exported the model into the cache first (a minute for the default model on a CPU), then said
    # that onnxruntime was missing
    from xvertfast.infer.backends import make_backend

    def no_export(*args, **kwargs):
        raise AssertionError("exported for a backend that cannot run")

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setattr(export_module, "export_onnx", no_export)
    monkeypatch.setattr(export_module, "cached_onnx_export", no_export)
    with pytest.raises(RuntimeError, match=re.escape("the onnxruntime backend needs the onnxruntime package")):
        make_backend("onnxruntime", model, torch.device("cpu"), torch.float32, tile=TILE, max_batch=4,
                     cache_dir=str(tmp_path))  # fmt: skip
    assert not os.listdir(tmp_path)


class FakeTensorRT:
    """What xvertfast calls of the TensorRT 10 Python API, recording the calls: the 'engine' a
    build serialises is its recorded settings, and running it computes ``xp + 2 * y`` from the
    tensor addresses it was given (CPU memory here), so wrong addresses or shapes show."""

    def __init__(self, version: str = "10.9.0"):
        import types

        self.__version__, self.calls = version, []
        self.float32, self.float16 = "FLOAT", "HALF"
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda logger, level: None})
        self.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=3)
        self.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
        self.BuilderFlag = types.SimpleNamespace(TF32="tf32")
        fake = self

        class Config:
            def __init__(self):
                self.settings = {"cleared": [], "profiles": []}

            def set_memory_pool_limit(self, pool, size):
                self.settings[pool] = size

            def clear_flag(self, flag):
                self.settings["cleared"].append(flag)

            def create_timing_cache(self, data):
                return types.SimpleNamespace(serialize=lambda: data + b"+timed")

            def set_timing_cache(self, cache, ignore_mismatch):
                self.timing = cache
                return True

            def get_timing_cache(self):
                return self.timing

            def add_optimization_profile(self, profile):
                self.settings["profiles"].append(profile)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                return {"flags": flags}

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                shapes = {}
                return types.SimpleNamespace(shapes=shapes, set_shape=lambda name, *s: shapes.update({name: s}))

            def build_serialized_network(self, network, config):
                fake.calls.append(("build", network["onnx"]))
                (profile,) = config.settings["profiles"]
                plan = {**config.settings, "flags": network["flags"], "profiles": None,
                        "shapes": {name: [list(s) for s in shapes] for name, shapes in profile.shapes.items()}}  # fmt: skip
                return json.dumps(plan).encode()

        class OnnxParser:
            num_errors = 0

            def __init__(self, network, logger):
                self.network = network

            def parse_from_file(self, path):
                self.network["onnx"] = path
                return True

        class Context:
            def __init__(self, engine):
                self.engine, self.shapes, self.addresses = engine, {}, {}

            def set_input_shape(self, name, shape):
                self.shapes[name] = tuple(shape)
                low, _, high = self.engine.get_tensor_profile_shape(name, 0)
                return all(lo <= s <= hi for lo, s, hi in zip(low, shape, high))

            def set_tensor_address(self, name, address):
                self.addresses[name] = address
                return True

            def execute_async_v3(self, stream):
                import ctypes

                import numpy as np

                fake.calls.append(("execute", stream, self.shapes["xp"]))
                n = int(np.prod(self.shapes["xp"]))
                xp, y, out = (np.ctypeslib.as_array((ctypes.c_float * n).from_address(self.addresses[name]))
                              for name in ("xp", "y", "out"))  # fmt: skip
                out[:] = xp + 2 * y
                return True

        class Engine:
            def __init__(self, plan):
                self.plan, self.num_io_tensors = plan, 3

            def get_tensor_name(self, i):
                return ("xp", "y", "out")[i]

            def get_tensor_dtype(self, name):
                return "FLOAT"

            def get_tensor_profile_shape(self, name, index):
                return [tuple(s) for s in self.plan["shapes"][name]]

            def create_execution_context(self):
                return Context(self)

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data):
                try:
                    return Engine(json.loads(bytes(data)))
                except ValueError:
                    return None  # what TensorRT does with a plan it cannot read

        self.Builder, self.OnnxParser, self.Runtime = Builder, OnnxParser, Runtime


def install_fake_tensorrt(monkeypatch) -> FakeTensorRT:
    """A FakeTensorRT as ``tensorrt``, and torch.cuda saying there is an sm_90 GPU (no CUDA call
    reaches it). After any ONNX export: torch.export looks for a real tensorrt."""
    import types

    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(tensorrt_backend, "_logger", lambda: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA Fake GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: types.SimpleNamespace(cuda_stream=4242))
    return fake


def test_tensorrt_engines_are_built_cached_and_run_as_the_api_says(model, tmp_path, monkeypatch, seed):
    """The TensorRT path without TensorRT: what build_engine asks of the builder, the engine cache,
    and how TensorRTBackend binds and runs the stages (against FakeTensorRT)."""
    needs_export()
    dev = torch.device("cuda:0")
    onnx32 = export_onnx(model, tmp_path / "onnx32", tile=TILE)
    (onnx16,) = export_onnx(XVertNet(list(model.stages[:1])).eval(), tmp_path / "onnx16", tile=TILE, fp16=True)
    fake_tensorrt = install_fake_tensorrt(monkeypatch)
    cache = tmp_path / "cache"
    engines = [tensorrt_backend.build_engine(p, max_batch=4, device=dev, cache_dir=cache) for p in onnx32]
    assert [call[1] for call in fake_tensorrt.calls] == onnx32 and len(set(engines)) == 2
    with open(engines[0]) as f:
        plan = json.load(f)
    # strongly typed (the precision is the graph's), fp32 without TF32, scratch memory capped, one
    # profile of batches 1..max_batch at the tile size for both inputs
    assert plan["flags"] == 1 << 3 and plan["cleared"] == ["tf32"] and plan["workspace"] == tensorrt_backend.WORKSPACE_BYTES
    profile = [[1, 1, TILE, TILE], [4, 1, TILE, TILE], [4, 1, TILE, TILE]]
    assert plan["shapes"] == {"xp": profile, "y": profile}
    (timing,) = [f for f in os.listdir(cache) if f.startswith("timing-")]
    assert timing == "timing-trt10.9.0-NVIDIA-Fake-GPU-sm90.cache"
    with open(cache / timing, "rb") as f:
        assert f.read() == b"+timed+timed"  # the second build started from the first one's timings
    fake_tensorrt.calls.clear()
    assert tensorrt_backend.build_engine(onnx32[0], max_batch=4, device=dev, cache_dir=cache) == engines[0]
    assert not fake_tensorrt.calls  # found in the cache, not built again
    (half,) = [tensorrt_backend.build_engine(onnx16, max_batch=4, device=dev, cache_dir=cache)]
    with open(half) as f:
        assert json.load(f)["cleared"] == []  # fp16 from the graph; TF32 left to TensorRT
    fake_tensorrt.__version__ = "11.0.0"  # always strongly typed: no flag (deprecated there)
    with open(tensorrt_backend.build_engine(onnx16, max_batch=4, device=dev, cache_dir=cache)) as f:
        assert json.load(f)["flags"] == 0
    fake_tensorrt.__version__ = "10.9.0"

    backend = tensorrt_backend.TensorRTBackend(engines, dev)
    assert (backend.stages, backend.max_batch, backend.tile, backend.dtype) == (2, 4, TILE, torch.float32)
    backend.device = torch.device("cpu")  # no GPU here: the fake reads the tensors where they are
    fake_tensorrt.calls.clear()
    for batch in (1, 3, 4):
        xp, y = inputs(batch)
        out = backend.run_stage(1, xp[..., ::1], y.transpose(2, 3).contiguous().transpose(2, 3))  # y not contiguous
        assert out.shape == xp.shape and torch.equal(out, xp + 2 * y)
    assert fake_tensorrt.calls == [("execute", 4242, (b, 1, TILE, TILE)) for b in (1, 3, 4)]  # torch's stream
    with pytest.raises(ValueError, match="outside the engine's profile 1..4"):
        backend.run_stage(0, *inputs(5))
    with pytest.raises(ValueError, match=re.escape(f"must be [B, 1, {TILE}, {TILE}]")):
        backend.run_stage(0, *inputs(2, TILE // 2))
    with pytest.raises(RuntimeError, match="the stage engines disagree on max batch / tile"):
        tensorrt_backend.TensorRTBackend([engines[0], tensorrt_backend.build_engine(onnx16, max_batch=2, device=dev,
                                                                                    cache_dir=cache)], dev)  # fmt: skip
    with open(tmp_path / "damaged.engine", "wb") as f:
        f.write(b"\0" * 10)
    with pytest.raises(RuntimeError, match=re.escape(f"{tmp_path / 'damaged.engine'}: TensorRT 10.9.0 could not load")):
        tensorrt_backend.TensorRTBackend([str(tmp_path / "damaged.engine")], dev)


def test_an_engine_built_with_other_builder_settings_is_not_reused(model, tmp_path, monkeypatch):
    # build_engine set the workspace limit and flags itself, outside the cache key: a change to
    # them (a new xvertfast) found the engine the old settings built and loaded it
    needs_export()
    (onnx_path,) = export_onnx(tiny_model(3, stages=1), tmp_path / "onnx", tile=TILE)
    fake = install_fake_tensorrt(monkeypatch)
    dev, cache = torch.device("cuda:0"), tmp_path / "cache"
    first = tensorrt_backend.build_engine(onnx_path, max_batch=4, device=dev, cache_dir=cache)
    settings = tensorrt_backend.build_settings
    monkeypatch.setattr(tensorrt_backend, "build_settings",
                        lambda *a: {**settings(*a), "memory_pool_limits": {"WORKSPACE": 1 << 20}})  # fmt: skip
    fake.calls.clear()
    second = tensorrt_backend.build_engine(onnx_path, max_batch=4, device=dev, cache_dir=cache)
    assert second != first and [c[0] for c in fake.calls] == ["build"]
    assert second == tensorrt_backend.engine_path(onnx_path, max_batch=4, device=dev, cache_dir=cache)
    with open(second) as f:
        assert json.load(f)["workspace"] == 1 << 20  # what was keyed is what was built


def test_an_engine_cache_that_takes_no_files_is_named_before_the_build(tmp_path, monkeypatch):
    # `export --format tensorrt` with a HOME it cannot write in built for minutes, then failed on
    # the engine's temporary file ("[Errno 13] Permission denied: '.../.<key>.engine.x1y2.part'")
    import tempfile

    needs_export()
    (onnx_path,) = export_onnx(tiny_model(3, stages=1), tmp_path / "onnx", tile=TILE)
    fake = install_fake_tensorrt(monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir()
    mkstemp = tempfile.mkstemp

    def refusing(*args, dir=None, **kwargs):
        if os.path.abspath(dir) == str(cache):
            raise PermissionError(errno.EACCES, "Permission denied")
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refusing)
    with pytest.raises(PermissionError, match=re.escape(f"{cache}: cannot write") + ".*XVF_CACHE_DIR"):
        tensorrt_backend.build_engine(onnx_path, max_batch=4, device="cuda:0", cache_dir=cache)
    assert not fake.calls  # nothing built
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    built = tensorrt_backend.build_engine(onnx_path, max_batch=4, device="cuda:0", cache_dir=cache)
    monkeypatch.setattr(tempfile, "mkstemp", refusing)  # a read-only cache still serves what it holds
    assert tensorrt_backend.build_engine(onnx_path, max_batch=4, device="cuda:0", cache_dir=cache) == built
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match=re.escape(f"{tmp_path / 'afile'}: a file, not a folder")):
        tensorrt_backend.build_engine(onnx_path, max_batch=4, device="cuda:0", cache_dir=tmp_path / "afile")


def test_a_second_process_waits_for_the_engine_another_is_building(tmp_path, monkeypatch):
    # the shards of one job (or two jobs) starting together each built the same engine, minutes
    # of the same GPU each, with 4 GiB of builder scratch apiece
    import threading

    from xvertfast.infer import cache as cache_module
    from xvertfast.resume import hold_lock

    needs_export()
    (onnx_path,) = export_onnx(tiny_model(3, stages=1), tmp_path / "onnx", tile=TILE)
    fake = install_fake_tensorrt(monkeypatch)
    cache, dev = tmp_path / "cache", torch.device("cuda:0")
    path = tensorrt_backend.engine_path(onnx_path, max_batch=4, device=dev, cache_dir=cache)
    cache.mkdir()
    other = hold_lock(str(cache / cache_module.BUILD_LOCK_NAME))  # another process, building this engine
    found = []
    waiting = threading.Thread(target=lambda: found.append(
        tensorrt_backend.build_engine(onnx_path, max_batch=4, device=dev, cache_dir=cache)))  # fmt: skip
    # it waited minutes without a word, as if hung: it says once why it waits
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and not found  # waits for the other build
        with open(path, "w") as f:
            f.write("the engine the other process built")
        cache_module.record_digest(path, hashlib.sha256(b"the engine the other process built").hexdigest())
        other.close()
        waiting.join(10)
        assert found == [path] and not fake.calls  # found it there, built nothing
        assert [str(w.message) for w in said] == [
            f"waiting for another xvertfast process building a TensorRT engine in {cache}"]
        assert said[0].filename == __file__  # the caller's line (the lambda's), not tensorrt_backend's
        said.clear()
        tensorrt_backend.build_engine(onnx_path, max_batch=2, device=dev, cache_dir=cache)  # no one else building
        assert fake.calls and not said


def test_an_unusable_export_cache_says_how_to_move_it(model, tmp_path, capsys):
    # enhance --backend onnxruntime with a cache under a HOME it cannot write in said only
    # "[Errno 20] .../engines/onnx/<hash>: cannot write the exported files there (Not a directory)"
    from xvertfast.cli import main

    needs_export()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        cached_onnx_export(model, tmp_path / "afile", tile=TILE)
    said = str(info.value)
    assert said.startswith(str(tmp_path / "afile" / "onnx")) and "cannot write" in said
    assert "export cache" in said and "XVF_CACHE_DIR" in said and info.value.errno == errno.ENOTDIR
    src = save_model(model, tmp_path / "model")
    assert main(["export", str(src), "-o", str(tmp_path / "afile")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'afile'}: a file, not a folder: give a folder for the exported files\n"


def test_an_onnx_export_leaves_no_engine_beside_the_set_it_replaces(model, tmp_path, seed):
    # `export A --format tensorrt` then `export B --format onnx --overwrite` left A's engines beside B's
    # ONNX set: a folder that read as B's TensorRT export, the engines carrying nothing to tell
    needs_export()
    out = tmp_path / "out"
    out.mkdir()
    for k in (1, 2, 3):  # a deeper model's, its ONNX set removed by hand
        (out / f"stage{k}.engine").write_bytes(b"engine of the model before")
    (out / "notes.engine").write_text("not a stage engine")
    with pytest.raises(ValueError, match=re.escape(f"{out} already holds stage1.engine, stage2.engine, stage3.engine: "
                                                   "add --overwrite")):  # fmt: skip
        export_model(model, out, format="onnx", tile=TILE, overwrite=False)
    assert sorted(os.listdir(out)) == ["notes.engine", "stage1.engine", "stage2.engine", "stage3.engine"]
    export_model(model, out, format="onnx", tile=TILE, overwrite=True)
    assert sorted(os.listdir(out)) == ["notes.engine", "stage1.onnx", "stage2.onnx"]


def test_an_aoti_package_refuses_tensors_on_another_device(monkeypatch):
    # a CUDA package handed CPU tensors (or a CPU one CUDA tensors) was called with them: its kernels
    # take the other device's pointers as theirs (torch checks only under AOTI_RUNTIME_CHECK_INPUTS=1)
    calls = []
    meta = {"xvertfast.tile": "8", "xvertfast.max_batch": "2", "AOTI_DEVICE_KEY": "cuda"}
    package = export_module._CheckedPackage("stage1.pt2", lambda xp, y: calls.append(xp) or xp, meta)
    with pytest.raises(ValueError, match=re.escape("stage1.pt2: compiled for cuda: xp and y must be on a cuda "
                                                   "device, got cpu and cpu")):  # fmt: skip
        package(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    assert not calls
    cpu = export_module._CheckedPackage("stage1.pt2", lambda xp, y: xp + y, {**meta, "AOTI_DEVICE_KEY": "cpu"})
    assert torch.equal(cpu(torch.ones(2, 1, 8, 8), torch.ones(2, 1, 8, 8)), torch.full((2, 1, 8, 8), 2.0))


def test_load_aoti_takes_a_package_or_an_export_folder_as_well_as_a_list(tmp_path, monkeypatch):
    # load_aoti("out/stage1.pt2") said "/: no such AOTInductor package" (it went through the path's
    # characters), load_aoti("out") the same, and load_aoti([]) raised an IndexError
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)  # refused before loading: no code runs
    for k in (1, 2, 10):
        fake_aoti_package(tmp_path / f"stage{k}.pt2", AOTI_DEVICE_KEY="cpu", AOTI_MACHINE=platform.machine(),
                          AOTI_CPU_ISA="AMX_TILE")  # fmt: skip
    for given in (str(tmp_path / "stage1.pt2"), tmp_path / "stage1.pt2", str(tmp_path)):
        with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'stage1.pt2'}: cannot run on this machine")):
            load_aoti(given)
    in_order = [str(tmp_path / f"stage{k}.pt2") for k in (1, 2, 10)]
    assert export_module.stage_paths(tmp_path, ".pt2", "load_aoti", "aoti") == in_order
    with pytest.raises(ValueError, match="load_aoti needs the stage files of one model, got none"):
        load_aoti([])
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'empty'}: no stage1.pt2")):
        (tmp_path / "empty").mkdir()
        load_aoti(tmp_path / "empty")


def test_auto_runs_torch_where_tensorrt_cannot_build_its_engines(model, monkeypatch):
    # auto chose TensorRT wherever it imported, and an engine it could not build (a parser or builder
    # error, a path never yet run against a real TensorRT) stopped the job before its first image
    from xvertfast.infer import backends

    made = []

    def cannot_build(*args, **kwargs):
        raise RuntimeError("stage1.onnx: TensorRT's ONNX parser failed: an op it lacks")

    monkeypatch.setattr(tensorrt_backend, "available", lambda: True)
    monkeypatch.setattr(tensorrt_backend.TensorRTBackend, "from_model", cannot_build)
    monkeypatch.setattr(backends, "TorchBackend", lambda model, device, dtype: made.append((device, dtype)) or "torch")
    said = ("backend='auto': TensorRT could not run this model (stage1.onnx: TensorRT's ONNX parser failed: an op "
            "it lacks); the torch backend runs it instead, in ")  # fmt: skip (from Python: --backend in the CLI's)
    # the precision is said: the Enhancer gives the one planned for TensorRT (float16 where bfloat16 was asked)
    for dtype, words in ((torch.float16, "float16 (the precision planned for TensorRT)"),
                         (torch.float32, "float32 (the precision planned for TensorRT)"),
                         (torch.bfloat16, "bfloat16")):  # (a direct call: TensorRT plans no bfloat16)  # fmt: skip
        with pytest.warns(RuntimeWarning) as record:
            assert backends.make_backend("auto", model, torch.device("cuda:0"), dtype, TILE, 4) == "torch"
        assert [str(w.message) for w in record] == [said + words]
        assert made.pop() == (torch.device("cuda:0"), dtype) and not made
    from xvertfast._text import cli_running

    with cli_running({"backend"}):  # as main() runs a command that has --backend: in the option's words
        with pytest.warns(RuntimeWarning, match=r"^--backend auto: TensorRT could not run this model \(stage1"):
            backends.make_backend("auto", model, torch.device("cuda:0"), torch.float16, TILE, 4)
    made.clear()
    with pytest.raises(RuntimeError, match="an op it lacks"):  # asked for by name: no fallback
        backends.make_backend("tensorrt", model, torch.device("cuda:0"), torch.bfloat16, TILE, 4)

    def broken(*args, **kwargs):  # a sticky CUDA error: torch would run on the same broken context
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(tensorrt_backend.TensorRTBackend, "from_model", broken)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        backends.make_backend("auto", model, torch.device("cuda:0"), torch.bfloat16, TILE, 4)


def test_an_export_names_the_wls_its_stages_are_run_with(model, tmp_path):
    # the stages are exported for running elsewhere, but the guidance between them (Y = out - WLS(out))
    # and the preprocessing need the model's WLS parameters, which only its config.json held
    needs_export()
    weighed = XVertNet(list(model.stages), lam=0.5, alpha=1.1, eps=2e-4)
    for path in export_onnx(weighed, tmp_path, tile=TILE):
        assert json.loads(read_onnx_metadata(path)["xvertfast.wls"]) == {"lam": 0.5, "alpha": 1.1, "eps": 2e-4}


def test_the_compile_backend_sees_one_batch_size_on_the_cpu_too(monkeypatch, seed):
    # compiled with dynamic=False, each new batch size compiled the stages again (half a minute a stage
    # for the default model); a batch job's batches vary (tiles of however many images are read), so
    # --backend compile took 3m38s where torch took 20s on three images, before torch's recompile
    # limit would drop it to eager
    from xvertfast.infer import Enhancer, backends

    seen = []

    def compile_recording(stage, **kwargs):
        return lambda xp, y: (seen.append(xp.shape[0]), stage(xp, y))[1]

    monkeypatch.setattr(torch, "compile", compile_recording)
    enh = Enhancer(tiny_model(seed, stages=1), device="cpu", backend="compile", batch_size=4)
    assert isinstance(enh.backend, backends.CompileBackend)
    for n in (1, 3, 4, 5, 2):
        xp, y = inputs(n)
        out = enh.run_tiles(xp, y)
        assert out.shape == (n, 1, TILE, TILE)
    assert set(seen) == {4}


def test_a_cached_engine_tensorrt_cannot_load_is_built_again(model, tmp_path, monkeypatch):
    # a cached engine that does not load (made by a TensorRT build that reports the same version)
    # stopped every run with 'delete it to rebuild'; the ONNX cache mends itself
    from xvertfast.infer import cache as cache_module

    needs_export()
    cached_onnx_export(model, tmp_path, tile=TILE)  # before the fake: torch.export looks for a real tensorrt
    fake = install_fake_tensorrt(monkeypatch)
    dev = torch.device("cuda:0")
    first = tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, max_batch=4, cache_dir=str(tmp_path))
    engines = sorted(f for f in os.listdir(tmp_path) if f.endswith(".engine"))
    with open(tmp_path / engines[1], "wb") as f:
        f.write(b"\0" * 64)
    # its bytes as recorded: an engine intact on disk that this TensorRT cannot load (damage is the digest's:
    # test_a_damaged_cached_engine_is_built_again_before_tensorrt_reads_it)
    cache_module.record_digest(str(tmp_path / engines[1]), hashlib.sha256(b"\0" * 64).hexdigest())
    fake.calls.clear()
    with pytest.warns(RuntimeWarning, match=re.escape(f"{tmp_path / engines[1]}: TensorRT 10.9.0 could not load "
                                                      "this cached engine; building it again")):  # fmt: skip
        again = tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, max_batch=4, cache_dir=str(tmp_path))
    assert [c[0] for c in fake.calls] == ["build"] and again.stages == first.stages == 2  # only that one
    assert sorted(f for f in os.listdir(tmp_path) if f.endswith(".engine")) == engines
    monkeypatch.setattr(fake.Runtime, "deserialize_cuda_engine", lambda runtime, data: None)  # none loads at all
    with pytest.warns(RuntimeWarning, match="building it again"), \
            pytest.raises(tensorrt_backend.EngineLoadError, match="could not load this engine"):  # rebuilt once, not for ever
        tensorrt_backend.TensorRTBackend.from_model(model, dev, tile=TILE, max_batch=4, cache_dir=str(tmp_path))
    with open(tmp_path / "other.engine", "wb") as f:
        f.write(b"\0" * 64)
    with pytest.raises(RuntimeError, match="could not load this engine"):  # not the cache's: left alone
        tensorrt_backend.TensorRTBackend([str(tmp_path / "other.engine")], dev)
    assert os.path.exists(tmp_path / "other.engine")


def test_a_damaged_cached_engine_is_built_again_before_tensorrt_reads_it(model, tmp_path, monkeypatch):
    # engines had no SHA-256 beside them, unlike the ONNX stages (c348743): a damaged engine went to
    # TensorRT's deserializer, which may load it and run it (FakeTensorRT loads any plan that parses)
    needs_export()
    cached_onnx_export(model, tmp_path, tile=TILE)  # before the fake: torch.export looks for a real tensorrt
    fake = install_fake_tensorrt(monkeypatch)
    read = []
    deserialize = fake.Runtime.deserialize_cuda_engine
    monkeypatch.setattr(fake.Runtime, "deserialize_cuda_engine",
                        lambda runtime, data: read.append(bytes(data)) or deserialize(runtime, data))  # fmt: skip

    def from_model():
        return tensorrt_backend.TensorRTBackend.from_model(model, torch.device("cuda:0"), tile=TILE, max_batch=4,
                                                           cache_dir=str(tmp_path))  # fmt: skip

    from_model()
    engines = sorted(tmp_path / f for f in os.listdir(tmp_path) if f.endswith(".engine"))
    whole = engines[1].read_bytes()
    assert len(engines) == 2 and (tmp_path / f"{engines[1].name}.sha256").read_text().strip() == \
        hashlib.sha256(whole).hexdigest()  # fmt: skip
    damaged = whole.replace(b'"workspace": 4294967296', b'"workspace": 4294967297')  # one bit: still a plan
    assert damaged != whole
    engines[1].write_bytes(damaged)
    fake.calls.clear(), read.clear()
    with pytest.warns(RuntimeWarning, match=re.escape(f"{engines[1]}: this cached TensorRT engine is damaged (its "
                                                      f"SHA-256 is not the one recorded in {engines[1].name}.sha256 "
                                                      "when it was built")) as said:  # fmt: skip
        from_model()
    assert len(said) == 1 and said[0].filename == __file__  # once, at the caller's line
    assert [c[0] for c in fake.calls] == ["build"] and damaged not in read and engines[1].read_bytes() == whole
    # no digest (an engine of an older xvertfast, a build killed before writing it) or one that is no
    # SHA-256: nothing says the engine is damaged; it is built again quietly, and its digest written
    digest = tmp_path / f"{engines[0].name}.sha256"
    recorded = digest.read_text()
    for kept in (None, "", recorded[:40]):
        digest.unlink()
        if kept is not None:
            digest.write_text(kept)
        fake.calls.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            from_model()
        assert [c[0] for c in fake.calls] == ["build"] and digest.read_text() == recorded
    fake.calls.clear()
    from_model()  # whole: loaded as it is
    assert not fake.calls


def test_a_run_from_the_cache_hashes_each_file_once(model, tmp_path, monkeypatch):
    # the TensorRT path hashed each ONNX file twice per run: the cache's digest check, then the
    # engine's key
    from xvertfast.infer import cache as cache_module

    needs_export()
    cached_onnx_export(model, tmp_path, tile=TILE)  # before the fake: torch.export looks for a real tensorrt
    install_fake_tensorrt(monkeypatch)
    tensorrt_backend.TensorRTBackend.from_model(model, torch.device("cuda:0"), tile=TILE, max_batch=4,
                                                cache_dir=str(tmp_path))  # fmt: skip
    hashed = []
    for module in (cache_module, export_module):  # (tensorrt_backend hashes through cache's file_sha256_once)
        monkeypatch.setattr(module, "file_sha256",
                            lambda path, hash=module.file_sha256: hashed.append(os.path.basename(path)) or hash(path))  # fmt: skip
    tensorrt_backend.TensorRTBackend.from_model(model, torch.device("cuda:0"), tile=TILE, max_batch=4,
                                                cache_dir=str(tmp_path))  # fmt: skip
    engines = sorted(f for f in os.listdir(tmp_path) if f.endswith(".engine"))
    assert sorted(hashed) == sorted(["stage1.onnx", "stage2.onnx", *engines])


def test_an_engine_rebuilt_leaves_the_files_checked_before_unread(model, tmp_path, monkeypatch):
    # a cached engine TensorRT could not load was built again, and every stage's engine (hundreds of MB
    # each) and ONNX file was hashed again for it, though checked moments before and unchanged since;
    # a second backend of the model in the same process hashed every file again too
    from xvertfast.infer import cache as cache_module

    needs_export()
    cached_onnx_export(model, tmp_path, tile=TILE)  # before the fake: torch.export looks for a real tensorrt
    install_fake_tensorrt(monkeypatch)

    def from_model():
        return tensorrt_backend.TensorRTBackend.from_model(model, torch.device("cuda:0"), tile=TILE, max_batch=4,
                                                           cache_dir=str(tmp_path))  # fmt: skip

    def a_day_on():  # as a cache of an earlier run is read: every file settled, changed a day before its check
        monkeypatch.setattr(cache_module, "_now_ns", lambda: time.time_ns() + 86_400 * 10**9)

    # at the real clock every file is 'just now' however slow the machine (the ONNX files exported above
    # may be seconds old by now): none is kept as checked before the day on
    monkeypatch.setattr(cache_module, "SETTLED_NS", 3600 * 10**9)
    from_model()
    engines = sorted(tmp_path / f for f in os.listdir(tmp_path) if f.endswith(".engine"))
    onnx = sorted(tmp_path.glob("onnx/*/stage*.onnx"))
    engines[1].write_bytes(b"\0" * 64)  # intact on disk (its digest matches), but TensorRT cannot load it
    cache_module.record_digest(str(engines[1]), hashlib.sha256(b"\0" * 64).hexdigest())
    hashed = []
    file_sha256 = cache_module.file_sha256
    monkeypatch.setattr(cache_module, "file_sha256", lambda path: hashed.append(os.path.basename(path)) or file_sha256(path))
    a_day_on()
    with pytest.warns(RuntimeWarning, match="could not load this cached engine; building it again"):
        from_model()
    assert sorted(hashed) == sorted(p.name for p in (*engines, *onnx))  # each once: stage 1's engine not again
    # at the real clock the engine built just now is read at each check, a write within the clock's tick
    # leaving its state as it was (SETTLED_NS, an hour, makes it 'just now' however slow the machine)
    monkeypatch.setattr(cache_module, "_now_ns", time.time_ns)
    for _ in range(2):
        hashed.clear()
        from_model()  # a second backend, a third: only the engine built just now is read again
        assert hashed == [engines[1].name]
    a_day_on()
    hashed.clear()
    from_model()  # settled now: read once more, and kept
    assert hashed == [engines[1].name]
    hashed.clear()
    from_model()  # every file settled and checked: none is read again
    assert hashed == []
    # a settled file changed since its check is read again and its damage found: written in place (its
    # times move), or replaced by a copy of the same size and modification time (cp -p: another inode)
    whole = engines[0].read_bytes()
    damaged = whole.replace(b'"workspace": 4294967296', b'"workspace": 4294967297')
    assert damaged != whole and len(damaged) == len(whole)
    for replace in (False, True):
        if replace:
            (tmp_path / "copy").write_bytes(damaged)
            was = engines[0].stat()
            os.utime(tmp_path / "copy", ns=(was.st_atime_ns, was.st_mtime_ns))
            os.replace(tmp_path / "copy", engines[0])
        else:
            engines[0].write_bytes(damaged)
        hashed.clear()
        with pytest.warns(RuntimeWarning, match=re.escape(f"{engines[0]}: this cached TensorRT engine is damaged")):
            from_model()
        assert set(hashed) == {engines[0].name} and engines[0].read_bytes() == whole  # (the others not read)
        from_model()  # (the engine built again just now read, and kept: settled, a day on)


def test_a_file_copied_with_its_times_is_read_at_each_check_until_it_settles(tmp_path, monkeypatch):
    # cp -p, shutil.copy2, rsync -a, tar x and os.utime set a file's modification time back; the check of
    # whether a file has settled looked at that time alone, so a file copied in just now (its ctime now)
    # had its digest kept at once, as if no write could still be within the file system clock's tick
    from xvertfast.infer import cache as cache_module

    path = tmp_path / "stage1.onnx"
    path.write_bytes(os.urandom(4096))
    day_ago = time.time_ns() - 86_400 * 10**9
    os.utime(path, ns=(day_ago, day_ago))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    hashed = []
    file_sha256 = cache_module.file_sha256
    monkeypatch.setattr(cache_module, "file_sha256", lambda name: hashed.append(os.path.basename(name)) or file_sha256(name))
    monkeypatch.setattr(cache_module, "SETTLED_NS", 3600 * 10**9)  # (its ctime is 'just now' however slow the machine)
    assert [cache_module.file_sha256_once(str(path)) for _ in range(2)] == [digest, digest]
    assert hashed == ["stage1.onnx"] * 2
    # a day on, the same file has settled: read once more, then its digest is kept
    monkeypatch.setattr(cache_module, "_now_ns", lambda: time.time_ns() + 86_400 * 10**9)
    hashed.clear()
    assert [cache_module.file_sha256_once(str(path)) for _ in range(2)] == [digest, digest]
    assert hashed == ["stage1.onnx"]


def test_the_onnx_backend_on_a_bare_cuda_runs_on_the_current_gpu(model, tmp_path, monkeypatch):
    # OnnxRuntimeBackend(paths, "cuda") opened its sessions on GPU 0 (device_id: index or 0) while the
    # caller's current GPU was 1, and sent the outputs to each calling thread's current GPU
    needs_export()
    import types

    import onnxruntime as ort

    from xvertfast.infer import onnx_backend

    paths = export_onnx(model, tmp_path / "out", tile=TILE)
    asked = []

    def session(path, options, providers):
        asked.append(providers[0])
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    fake = types.SimpleNamespace(SessionOptions=ort.SessionOptions, InferenceSession=session,
                                 get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])  # fmt: skip
    monkeypatch.setattr(onnx_backend, "require", lambda *args: fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    for device in ("cuda", torch.device("cuda"), "cuda:0"):
        asked.clear()
        backend = onnx_backend.OnnxRuntimeBackend(paths, device)
        index = 0 if device == "cuda:0" else 1
        assert backend.device == torch.device("cuda", index)
        assert asked == [("CUDAExecutionProvider", {"device_id": index})] * 2


def test_a_full_disk_is_said_with_the_folder_it_filled(model, tmp_path, monkeypatch):
    # `xvertfast export` onto a full disk said 'error: [Errno 28] No space left on device', and
    # `enhance --backend onnxruntime` with its cache there the same: no folder, no word of the cache
    needs_export()
    import onnx

    def full(proto, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", full)
    out = tmp_path / "out"
    with pytest.raises(OSError) as info:
        export_onnx(model, out, tile=TILE)
    assert str(info.value) == f"{out}: could not write the exported stage files (No space left on device)"
    assert info.value.errno == errno.ENOSPC and os.listdir(out) == []  # no file, no temporary
    with pytest.raises(OSError) as info:
        cached_onnx_export(model, tmp_path / "cache", tile=TILE)
    said = str(info.value)
    assert said.startswith(str(tmp_path / "cache" / "onnx")) and "(No space left on device)" in said
    assert said.endswith("; it is in the export cache: set XVF_CACHE_DIR to a folder you can write in")


def test_an_engine_load_error_is_pickled_and_copied_whole():
    """It was rebuilt from its message alone, which its constructor refuses: unpickling raised
    TypeError, and a multiprocessing pool whose worker (an Enhancer's) raised one hung."""
    import pickle

    exc = tensorrt_backend.EngineLoadError("cache/ab.engine: TensorRT 10.3 could not load this engine", "cache/ab.engine")
    exc.__notes__ = ["building it again"]  # (add_note: Python 3.11 on; 3.10 is supported)
    for again in (pickle.loads(pickle.dumps(exc)), copy.copy(exc), copy.deepcopy(exc)):
        assert type(again) is tensorrt_backend.EngineLoadError and again.args == exc.args
        assert again.path == "cache/ab.engine" and again.__notes__ == ["building it again"]
