"""Enhancement: blending maths of both modes, and the ``xvertfast enhance`` batch job end to end."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import said_around_the_bar
from tests.preprocess.test_inputs import WIDE
from xvertfast.cli import main
from xvertfast.infer import Enhancer
from xvertfast.infer.enhancer import FEATHER, EnhanceResult
from xvertfast.infer.backends import StageBackend
from xvertfast.infer.batch import JOB_FILE
from xvertfast.io.files import NothingFound
from xvertfast.io.job_folder import JOB_STATE_FILES, LEDGER_FILE, job_status
from xvertfast.io import read_image
from xvertfast.model import XVertNet, XVertNetStage, save_model
from xvertfast.preprocess.spine import WORKING_HEIGHT, Box, Spine

SAMPLE_DICOM = os.path.join(os.path.dirname(__file__), "..", "..", "xvertfast", "samples", "cr_chest_pa_mono1.dcm")
TILE = 128


def tiny_model(seed: int) -> XVertNet:
    torch.manual_seed(seed)
    return XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()


@pytest.fixture
def model_dir(tmp_path, seed):
    return save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}})


def chest_like(seed: int, h: int = 256, w: int = 240) -> np.ndarray:
    """A bright vertical band (the spine) on a darker field, with noise: enough for find_spine."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1, 1, w)
    rows = np.linspace(0, 1, h)[:, None]
    body = 0.25 + 0.5 * np.exp(-(x[None, :] ** 2) / 0.01) + 0.1 * np.sin(20 * rows) + 0.08 * rng.random((h, w))
    return np.clip(body, 0, 1).astype(np.float32)


def many_tiles_job(tmp_path, seed, monkeypatch, shapes: dict[str, tuple[int, int]], **settings):
    """A full-mode Enhancer that cuts images into many tiles, kept cheap, and tmp_path/in holding a
    chest-like PNG of each name's (H, W): the threshold lowered to 30, a model at roi_size=256 (it
    cuts a 64 x 64 image into 25 tiles, 64 x 96 into 40, 64 x 128 into 55), the network skipped
    (its tiles' cost is not what such tests test)."""
    from xvertfast.infer import enhancer as enhancer_module

    monkeypatch.setattr(enhancer_module, "MANY_FULL_TILES", 30)
    model = tiny_model(seed)
    model.metadata = {"training": {"config": {"roi_size": 256}}}
    src = tmp_path / "in"
    src.mkdir()
    for name, (h, w) in shapes.items():
        Image.fromarray(np.round(chest_like(seed, h, w) * 255).astype(np.uint8)).save(src / f"{name}.png")
    enh = Enhancer(model, device="cpu", backend="torch", mode="full", **settings)
    monkeypatch.setattr(enh, "run_tiles", lambda xp, y: xp)
    return enh, src


class ConstantBackend(StageBackend):
    """Returns the same value for every pixel: makes the blending weights visible."""

    name = "constant"

    def __init__(self, value: float, stages: int = 2):
        super().__init__(torch.device("cpu"))
        self.value, self._stages = value, stages

    @property
    def stages(self) -> int:
        return self._stages

    def run_stage(self, k, xp, y):
        return torch.full_like(xp, self.value)


def test_an_enhance_results_repr_is_one_line_not_its_image_and_tiles():
    """What a notebook shows of ``enhancer.enhance(image)``: the dataclass's repr printed the image
    whole, the spine's band estimates and full mode's hundreds of tiles."""
    pixels = np.linspace(0, 0.75, 40 * 60, dtype=np.float32).reshape(40, 60)
    spine = Spine((40, 60), 30.0, np.zeros((12, 2)), (10.0, 30.0), (30.0, 30.0))
    result = EnhanceResult(pixels, spine, [Box(0, 0, 8, 8)] * 441, {"preprocess": 0.123456, "infer": 12.3456},
                           ["a.png: looks inverted"])  # fmt: skip
    assert repr(result) == (f"EnhanceResult(pixels=float32 40x60 in [0, 0.75], spine={spine!r}, 441 tiles, "
                            "seconds={'preprocess': 0.123, 'infer': 12.3}, 1 warning)")  # fmt: skip
    assert "array" not in repr(result) and "Box" not in repr(result)


def test_an_enhancers_repr_gives_its_settings_without_building_its_backend(tmp_path, seed):
    """A notebook showed ``<xvertfast.infer.enhancer.Enhancer object at 0x...>``."""
    enh = Enhancer(tiny_model(seed), device="cpu", mode="full", batch_size=4)
    assert repr(enh) == ("Enhancer(model=<XVertNet of 2 stages>, device='cpu', backend='torch', precision='fp32', "
                         "mode='full', batch_size=4, wls_method='auto', brightness='network') [tile 512, the model's]")  # fmt: skip
    # its call-like part is a call the constructor takes (it read precision='float32', which the constructor
    # refuses, and tile=512, no keyword of it)
    call = repr(enh).replace("<XVertNet of 2 stages>", "model").split(" [tile")[0]
    assert repr(eval(call, {"Enhancer": Enhancer, "model": enh.model})) == repr(enh)
    one = XVertNet(list(enh.model.stages)[:1])
    assert repr(Enhancer(one, device="cpu")).startswith("Enhancer(model=<XVertNet of 1 stage>, ")
    assert enh._backend is None  # (an ONNX export or TensorRT engines would take minutes)
    folder = save_model(tiny_model(seed), tmp_path / "m", extra={"training": {"config": {"roi_size": TILE}}})
    assert repr(Enhancer(folder, device="cpu")).startswith(f"Enhancer(model={str(folder)!r}, device='cpu', ")


def test_full_mode_weights_are_a_partition_of_unity(seed):
    enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode="full")
    enh.tile = 64  # many overlapping tiles on a small image
    enh.backend = ConstantBackend(0.37)
    img = chest_like(seed, 300, 260)
    res = enh.enhance(img)
    np.testing.assert_allclose(res.pixels, 0.37, atol=1e-6)  # every pixel covered, weights normalised: no seam
    # its boxes are the tiles (they were [], though the docstring said the regions enhanced): squares
    # of the tile's size at this height, overlapping, covering the image
    covered = np.zeros(img.shape, int)
    for b in res.boxes:
        assert b.bottom - b.top == b.right - b.left == round(64 * 300 / WORKING_HEIGHT)
        covered[b.top : b.bottom, b.left : b.right] += 1
    assert covered.min() >= 1 and covered.max() > 1 and len(res.boxes) == len(set(res.boxes))


def test_spine_mode_keeps_the_outside_and_ramps_in(seed):
    enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode="spine")
    enh.tile = TILE
    enh.backend = ConstantBackend(1.0)
    img = chest_like(seed) * 0.5
    res = enh.enhance(img)
    inside = np.zeros(img.shape, bool)
    for b in res.boxes:
        inside[b.top : b.bottom, b.left : b.right] = True
    assert len(res.boxes) == 2 and inside.any()
    np.testing.assert_array_equal(res.pixels[~inside], img[~inside])  # untouched outside the ROIs
    b = res.boxes[0]
    core = res.pixels[b.top + 8 : b.bottom - 8, b.left + 8 : b.right - 8]
    np.testing.assert_allclose(core, 1.0, atol=1e-6)  # the network's output in the ROI core
    edge = res.pixels[(b.top + b.bottom) // 2, b.left]  # the outermost column: mostly the original
    assert img[(b.top + b.bottom) // 2, b.left] < edge < 0.5 * (1 + img[(b.top + b.bottom) // 2, b.left])


def test_centres_at_the_image_edges_and_narrow_images(seed):
    from xvertfast.preprocess import find_spine

    enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode="spine")
    img = chest_like(seed)
    spine = find_spine(img, upper=(2, 120), lower=(255, 120))  # the tiles sit further out still
    res = enh.enhance(img, spine)
    assert len(res.boxes) == 2 and all(0 <= b.top < b.bottom <= 256 for b in res.boxes)
    full = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode="full")
    narrow = full.enhance(chest_like(seed, 400, 60))  # tiles are resized to tile x tile: square ones
    assert narrow.boxes and all(b.bottom - b.top == b.right - b.left == 60 for b in narrow.boxes)  # (were [])
    assert np.isfinite(narrow.pixels).all() and narrow.pixels.shape == (400, 60)


@pytest.mark.parametrize("mode", ["spine", "full"])
def test_original_brightness_takes_the_large_scale_from_the_original(seed, mode):
    img = chest_like(seed, 300, 260)
    results = {}
    for brightness in ("network", "original"):
        for value in (0.2, 0.9):
            enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode=mode, brightness=brightness)
            enh.tile = 64 if mode == "full" else TILE
            enh.backend = ConstantBackend(value)  # a network output without any large-scale trend
            results[brightness, value] = enh.enhance(img)
    # the network's constant is gone: what is left is the original's low frequencies
    np.testing.assert_allclose(results["original", 0.2].pixels, results["original", 0.9].pixels, atol=1e-5)
    assert np.abs(results["network", 0.2].pixels - results["network", 0.9].pixels).max() > 0.5
    if mode == "spine":  # the core of the upper tile, away from the other: the blurred original
        from scipy.ndimage import gaussian_filter

        upper, lower = results["original", 0.2].boxes
        h, w = upper.bottom - upper.top, upper.right - upper.left
        sigma = math.ceil(max(h, w) / 8) / 2
        blurred = gaussian_filter(img[upper.top : upper.bottom, upper.left : upper.right].astype(np.float64), sigma)
        rows = slice(h // 8 + 1, min(h - h // 8, lower.top - upper.top) - 1)
        tile = results["original", 0.2].pixels[upper.top : upper.bottom, upper.left : upper.right]
        core = tile[rows, w // 8 + 1 : -w // 8 - 1]
        assert core.size > 500
        np.testing.assert_allclose(core, blurred[rows, w // 8 + 1 : -w // 8 - 1], atol=1e-5)
    else:  # no tile was left at the network's brightness: the output follows the original's
        out = results["original", 0.9].pixels
        assert abs(float(out.mean()) - float(img.mean())) < 0.02 and np.corrcoef(out.ravel(), img.ravel())[0, 1] > 0.9


def test_enhance_matches_running_the_stages_by_hand(seed):
    model = tiny_model(seed)
    enh = Enhancer(model, device="cpu", backend="torch", mode="spine")
    enh.tile = TILE
    prep = enh.prepare(chest_like(seed))
    tiles = enh.run_tiles(prep.xp, prep.y)
    with torch.no_grad():
        expected = model.enhance(prep.xp, prep.y)
    torch.testing.assert_close(tiles, expected, rtol=1e-5, atol=1e-6)
    # batching does not change a tile's result
    enh.batch_size = 1
    torch.testing.assert_close(enh.run_tiles(prep.xp, prep.y), tiles, rtol=1e-5, atol=1e-6)


def test_padding_a_fixed_batch_does_not_change_results(seed):
    enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode="spine", batch_size=3)
    enh.tile = TILE
    prep = enh.prepare(chest_like(seed))  # 2 tiles: one partial batch of 3
    plain = enh.run_tiles(prep.xp, prep.y)
    enh.backend.fixed_batch = True
    torch.testing.assert_close(enh.run_tiles(prep.xp, prep.y), plain, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_compile_backend_matches_eager(seed):
    model = tiny_model(seed)
    eager = Enhancer(model, device="cpu", backend="torch")
    compiled = Enhancer(model, device="cpu", backend="compile")
    for e in (eager, compiled):
        e.tile = TILE
    prep = eager.prepare(chest_like(seed))
    torch.testing.assert_close(compiled.run_tiles(prep.xp, prep.y), eager.run_tiles(prep.xp, prep.y),
                               rtol=1e-4, atol=1e-5)  # fmt: skip


def test_bad_arguments(seed):
    with pytest.raises(ValueError, match="mode"):
        Enhancer(tiny_model(seed), device="cpu", mode="roi")
    with pytest.raises(ValueError, match="brightness must be one of network, original"):
        Enhancer(tiny_model(seed), device="cpu", brightness="auto")
    with pytest.raises(ValueError, match="backend"):
        Enhancer(tiny_model(seed), device="cpu", backend="tvm")
    with pytest.raises(ValueError, match="precision"):
        Enhancer(tiny_model(seed), device="cpu", precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no usable CUDA device"):
            Enhancer(tiny_model(seed), device="cuda")


CPU_BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.skipif(not CPU_BF16, reason="this CPU has no oneDNN bf16 support")
def test_cpu_bf16_stays_close_to_fp32(seed):
    import warnings

    model = tiny_model(seed)
    fp32 = Enhancer(model, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-AMX hint, on CPUs without it
        bf16 = Enhancer(model, device="cpu", precision="bf16")
    assert bf16.dtype == torch.bfloat16 and fp32.dtype == torch.float32
    prep = fp32.prepare(chest_like(seed))
    a, b = fp32.run_tiles(prep.xp, prep.y), bf16.run_tiles(prep.xp, prep.y)
    assert b.dtype == torch.float32 and not torch.equal(a, b)  # really ran in bf16
    assert (a - b).abs().mean() < 5e-3 and (a - b).abs().max() < 5e-2
    with pytest.raises(ValueError, match="torch and compile backends"):
        Enhancer(model, device="cpu", precision="bf16", backend="onnxruntime")


def test_cpu_bf16_needs_onednn_support_and_hints_without_amx(seed, monkeypatch):
    from xvertfast.infer import backends

    monkeypatch.setattr(backends, "_cpu_flags", lambda: "flags : fpu avx2")
    if CPU_BF16:
        with pytest.warns(UserWarning, match="without AMX"):
            backends.resolve_precision("bf16", torch.device("cpu"))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(ValueError, match="no bf16 support"):
        backends.resolve_precision("bf16", torch.device("cpu"))


def test_cpu_bf16_refused_for_onnxruntime_without_the_no_amx_warning_first(seed, monkeypatch):
    # the warning came from resolve_precision, before plan_backend refused the combination: noise before a refusal
    import warnings

    from xvertfast.infer import backends

    monkeypatch.setattr(backends, "cpu_bf16_support", lambda: "avx512_bf16")  # bf16 without AMX, on any CPU
    model = tiny_model(seed)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="torch and compile backends, not backend=.onnxruntime.$"):
            Enhancer(model, device="cpu", precision="bf16", backend="onnxruntime")
    assert [str(w.message) for w in record] == []
    with pytest.warns(UserWarning, match="without AMX"):  # a run that goes ahead is still told
        Enhancer(model, device="cpu", precision="bf16", backend="torch")


def test_preprocessing_stays_on_the_cpu_for_cpu_jobs(seed):
    enh = Enhancer(tiny_model(seed), device="cpu")
    assert enh.prepare_device.type == "cpu"
    prep = enh.prepare(chest_like(seed))
    assert prep.xp.device.type == "cpu" and prep.y.device.type == "cpu"


@pytest.mark.cuda
def test_gpu_jobs_preprocess_on_the_gpu_like_the_cpu(seed):
    # With the CUDA WLS solver compiled in, a GPU job's preprocessing (two WLS solves per
    # image) runs on the GPU; its tiles match the CPU's to the solver's tolerance.
    image = chest_like(seed, 300, 280)
    gpu = Enhancer(tiny_model(seed), device="cuda", precision="fp32")
    cpu = Enhancer(tiny_model(seed), device="cpu")
    assert gpu.prepare_device.type == "cuda"
    on_gpu, on_cpu = gpu.prepare(image), cpu.prepare(image)
    assert on_gpu.xp.is_cuda and on_gpu.y.is_cuda
    assert on_gpu.boxes == on_cpu.boxes
    torch.testing.assert_close(on_gpu.xp.cpu(), on_cpu.xp, rtol=0, atol=1e-3)
    torch.testing.assert_close(on_gpu.y.cpu(), on_cpu.y, rtol=0, atol=1e-3)
    out = gpu.enhance(image)
    assert np.isfinite(out.pixels).all() and out.pixels.shape == image.shape


def test_the_cpu_solver_makes_a_gpu_jobs_stage_guidance_on_a_host_copy(seed, monkeypatch):
    # wls refuses a CUDA tensor with method 'cpu': every image of such a GPU job failed in stage 2
    from torch._subclasses.fake_tensor import FakeTensorMode

    enh = Enhancer(tiny_model(seed), device="cpu", wls_method="cpu")
    solved = []

    def guidance(image, method):
        solved.append((image.device, method))
        return torch.zeros_like(image)

    monkeypatch.setattr(enh.model, "guidance", guidance)
    with FakeTensorMode():  # stage outputs "on the GPU", with no GPU here
        g = enh.guidance(torch.zeros(2, 1, 8, 8, device="cuda"))
    assert solved == [(torch.device("cpu"), "cpu")]
    assert g.device == torch.device("cuda", 0)


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["cpu", "direct"])
def test_gpu_jobs_run_with_the_cpu_wls_methods_like_the_cpu(seed, method):
    image = chest_like(seed, 300, 280)
    gpu = Enhancer(tiny_model(seed), device="cuda", precision="fp32", wls_method=method)
    cpu = Enhancer(tiny_model(seed), device="cpu", wls_method=method)
    out_gpu, out_cpu = gpu.enhance(image), cpu.enhance(image)
    np.testing.assert_allclose(out_gpu.pixels, out_cpu.pixels, rtol=0, atol=2e-3)


def make_inputs(root, seed: int, n_good: int = 2):
    """Good images of every kind plus the bad ones of issue #6; returns the folder."""
    src = root / "in"
    (src / "sub").mkdir(parents=True)
    for i in range(n_good):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(src / f"good{i}.png")
    Image.fromarray(np.round(chest_like(seed + 99) * 4095).astype(np.uint16)).save(src / "sub" / "deep.png")
    (src / "empty.png").write_bytes(b"")
    (src / "text.dcm").write_text("not a dicom")
    Image.fromarray(np.full((64, 64), 9, np.uint8)).save(src / "flat.png")
    full = (src / "good0.png").read_bytes()
    (src / "cut.png").write_bytes(full[: len(full) // 2])
    return src


def files_under(folder) -> dict[str, bytes]:
    """The files a job left in ``folder`` besides its own state (settings, ledger, lock), which it always keeps."""
    assert all((folder / name).is_file() for name in JOB_STATE_FILES)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in JOB_STATE_FILES}  # fmt: skip


def test_cli_end_to_end(tmp_path, model_dir, seed, capsys):
    src = make_inputs(tmp_path, seed)
    out = tmp_path / "out"
    args = ["enhance", str(src), "-o", str(out), "--model", str(model_dir), "--device", "cpu", "-q", "--workers", "2"]
    report = tmp_path / "run.json"
    assert main(args + ["--report", str(report)]) == 1  # some inputs are bad
    captured = capsys.readouterr()
    assert "3 done, 0 skipped, 4 failed" in captured.out
    lines = captured.err.splitlines()
    for name, problem in (("empty.png", "empty file"), ("text.dcm", "not DICOM"), ("flat.png", "constant image"),
                          ("cut.png", "truncated or corrupt")):  # fmt: skip
        assert any(f"{src / name}: " in line and problem in line for line in lines), (name, captured.err)
    made = files_under(out)
    assert sorted(made) == sorted(["good0.png", "good1.png", "sub/deep.png"])  # no partial files
    good = np.asarray(Image.open(out / "good0.png"))
    assert good.dtype == np.uint8 and good.shape == (256, 240)  # 8-bit in, 8-bit out
    job = json.loads((out / JOB_FILE).read_text())["settings"]
    with Image.open(out / "good0.png") as im:  # how it was made travels with the file
        said = im.text["Description"]
    assert f"model {job['model'][:16]}, mode spine, brightness network, tile {TILE}, precision float32" in said
    assert "xvertfast" in said
    deep = read_image(out / "sub" / "deep.png")
    assert deep.bits_stored == 12  # the 12-bit source's depth is kept
    body = json.loads(report.read_text())
    assert body["summary"]["done"] == 3 and body["summary"]["failed"] == 4
    assert {os.path.basename(r["input"]): r["status"] for r in body["files"]}["cut.png"] == "failed"
    assert all(r["seconds"]["infer"] >= 0 for r in body["files"] if r["status"] == "done")

    before = {k: os.stat(out / k).st_mtime_ns for k in made}
    assert main(args) == 1
    assert "0 done, 3 skipped, 4 failed" in capsys.readouterr().out  # resumed: nothing redone
    assert before == {k: os.stat(out / k).st_mtime_ns for k in before}
    assert main(args + ["--overwrite"]) == 1
    assert "3 done, 0 skipped" in capsys.readouterr().out
    for other in (["--mode", "full"], ["--brightness", "original"]):
        assert main(args + other) == 2  # other settings into the same folder: refused
        err = capsys.readouterr().err
        assert "with other settings" in err and f"-> '{other[1]}'" in err  # says which one differs


def test_a_resume_with_a_copy_of_the_model_that_runs_other_tiles_is_refused(tmp_path, seed):
    """The tile a model runs at is its training record's roi_size, not its weights: a copy saved
    without the record (save_model before 1a3e5db) runs 512 px tiles where the original runs 64,
    from the same fingerprint. Resumed into the same folder it must not add outputs of other tiles
    to the first copy's: the job's settings record the tile, and the resume is refused naming it."""
    model = tiny_model(seed)
    small = save_model(model, tmp_path / "small", extra={"training": {"config": {"roi_size": 64}}})
    bare = save_model(model, tmp_path / "bare")
    src = tmp_path / "in"
    src.mkdir()
    (src / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # fails at once: the job records its settings, no solve
    out = str(tmp_path / "out")
    first = Enhancer(str(small), device="cpu", backend="torch").enhance_files([str(src)], out, progress=False,
                                                                           log=lambda line: None)  # fmt: skip
    assert [r.status for r in first.records] == ["failed"]
    again = Enhancer(str(bare), device="cpu", backend="torch")
    assert again.tile == 512
    with pytest.raises(ValueError, match=r"with other settings \(tile 64 -> 512\)"):
        again.enhance_files([str(src)], out, progress=False, log=lambda line: None)


def test_nothing_found_is_an_error_before_any_output_folder(tmp_path, model_dir, seed, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    enhancer = Enhancer(str(model_dir), device="cpu")
    with pytest.raises(NothingFound, match="no image files found"):
        enhancer.enhance_files([str(tmp_path / "empty")], str(out), progress=False)
    assert not out.exists()
    args = ["--model", str(model_dir), "--device", "cpu", "-q"]
    assert main(["enhance", str(tmp_path / "empty"), "-o", str(out), *args]) == 1
    assert "no image files found" in capsys.readouterr().err and not out.exists()
    src = make_inputs(tmp_path, seed)
    sheet = tmp_path / "empty" / "preview.png"  # an earlier run's sheet is all there is: not an input
    assert main(["enhance", str(src / "good0.png"), "-o", str(tmp_path / "o1"), *args, "--preview", str(sheet)]) == 0
    assert sheet.exists()
    with pytest.raises(NothingFound):
        enhancer.enhance_files([str(tmp_path / "empty")], str(out), progress=False, preview=str(sheet))
    assert not out.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_among_the_inputs_fails_alone(tmp_path, model_dir, seed, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray((chest_like(seed) * 255).astype(np.uint8)).save(src / "a.png")
    os.mkfifo(src / "pipe")  # extensionless, so its format was sniffed: the job waited for a writer
    args = ["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu", "-q"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "1 done, 0 skipped, 1 failed" in captured.out and "pipe: not a regular file" in captured.err


def test_full_mode_and_formats(tmp_path, model_dir, seed, capsys):
    src = tmp_path / "one.png"
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(src)
    out = tmp_path / "o"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "--mode", "full",
                 "--format", "tiff", "-q"]) == 0  # fmt: skip
    img = read_image(out / "one.tiff")
    assert img.pixels.shape == (256, 240) and np.isfinite(img.pixels).all()


def test_same_format_keeps_a_tiffs_spelling(tmp_path, model_dir, seed):
    import tifffile

    src = tmp_path / "in"
    src.mkdir()
    image = np.round(chest_like(seed) * 4095).astype(np.uint16)
    tifffile.imwrite(src / "a.tif", image)
    tifffile.imwrite(src / "b.TIFF", image)
    out = tmp_path / "o"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.tif", "b.tiff"]
    assert read_image(out / "a.tif").pixels.shape == image.shape


def test_dicom_in_dicom_out(tmp_path, model_dir):
    import pydicom

    out = tmp_path / "o"
    assert main(["enhance", SAMPLE_DICOM, "-o", str(out), "--model", str(model_dir), "-q"]) == 0
    src, res = pydicom.dcmread(SAMPLE_DICOM), pydicom.dcmread(out / "cr_chest_pa_mono1.dcm")
    assert res.PatientID == src.PatientID and res.StudyInstanceUID == src.StudyInstanceUID
    assert res.SeriesInstanceUID != src.SeriesInstanceUID and res.SOPInstanceUID != src.SOPInstanceUID
    assert res.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert res.Rows == src.Rows and res.BitsStored == src.BitsStored == 10
    assert res.PhotometricInterpretation == "MONOCHROME2"  # written bright = bone
    assert "DERIVED" in list(res.ImageType)
    assert res.DerivationDescription.startswith("XVertNet vertebral contrast enhancement, xvertfast")
    assert "mode spine, brightness network" in res.DerivationDescription
    assert res.DerivationDescription.endswith("; stored bone bright (MONOCHROME2), its MONOCHROME1 input inverted")
    # a Secondary Capture image (a CR or DX object would claim acquisition data it lacks), with
    # the SC equipment module's conversion type and the type 2 attributes present
    assert res.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and res.ConversionType == "WSD"
    assert res.SourceImageSequence[0].ReferencedSOPClassUID == src.SOPClassUID
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                    "AccessionNumber", "InstanceNumber", "PatientOrientation", "SeriesNumber"):  # fmt: skip
        assert keyword in res, keyword


def test_the_output_of_a_png_listed_as_monochrome1_says_it_is_stored_inverted(tmp_path, model_dir, seed,
                                                                              monkeypatch):  # fmt: skip
    # every output is stored bone bright: a PNG listed as MONOCHROME1 came back as its negative with
    # nothing in the file to say so (a DICOM's PhotometricInterpretation does), described as a plain PNG's
    monkeypatch.chdir(tmp_path)
    os.mkdir("in")
    Image.fromarray(np.round((1 - chest_like(seed)) * 255).astype(np.uint8)).save("in/dark.png")
    Image.fromarray(np.round(chest_like(seed + 1) * 255).astype(np.uint8)).save("in/bright.png")
    with open("list.txt", "w") as listing:
        listing.write("in/dark.png\tMONOCHROME1\nin/bright.png\n")
    assert main(["enhance", "@list.txt", "-o", "out", "--model", str(model_dir), "-q"]) == 0
    said = {}
    for name in ("dark", "bright"):
        with Image.open(f"out/in/{name}.png") as im:
            said[name] = im.text["Description"]
    assert said["dark"] == said["bright"] + "; stored bone bright (MONOCHROME2), its MONOCHROME1 input inverted"
    assert "MONOCHROME" not in said["bright"]


def test_an_extensionless_png_stays_a_png(tmp_path, model_dir, seed):
    # an extensionless file is taken for DICOM only when its content is DICOM
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(src / "IMG0001", format="PNG")
    out = tmp_path / "o"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q"]) == 0
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["IMG0001.png"]
    assert read_image(out / "IMG0001.png").source_format == "png"


def test_same_format_follows_the_content_where_the_name_does_not_say(tmp_path, model_dir, seed):
    # an extensionless TIFF (archives name files IM0001 or by UIDs) gets a TIFF output, and a DICOM
    # file named .IMG (JSRT's extension) a DICOM one, as their content is read: not an
    # extensionless PNG and a PNG
    import shutil

    import tifffile

    src = tmp_path / "in"
    src.mkdir()
    tifffile.imwrite(src / "IM0001", np.round(chest_like(seed) * 4095).astype(np.uint16))
    shutil.copy(SAMPLE_DICOM, src / "IM0002.IMG")
    out = tmp_path / "o"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["IM0001.tiff", "IM0002.dcm"]
    tiff = read_image(out / "IM0001.tiff")
    assert tiff.source_format == "tiff" and tiff.pixels.shape == (256, 240)
    assert tifffile.imread(out / "IM0001.tiff").dtype == np.float32  # the float TIFF --format same writes
    assert read_image(out / "IM0002.dcm").source_format == "dicom"


def test_a_pacs_export_named_by_uids(tmp_path, model_dir):
    # DICOM files named by their SOP instance UID, beside a DICOMDIR: each image gets its own
    # DICOM output (UID.dcm), the index file is no image and no failure
    import shutil

    src = tmp_path / "export" / "series1"
    src.mkdir(parents=True)
    names = ["1.2.826.0.1.3680043.2.1125.7.14", "1.2.826.0.1.3680043.2.1125.7.15"]
    for name in names:
        shutil.copy(SAMPLE_DICOM, src / name)
    (tmp_path / "export" / "DICOMDIR").write_bytes(b"\0" * 200)
    out = tmp_path / "o"
    assert main(["enhance", str(tmp_path / "export"), "-o", str(out), "--model", str(model_dir), "-q"]) == 0
    assert sorted(p.name for p in (out / "series1").iterdir() if not p.name.startswith(".")) == [n + ".dcm" for n in names]
    assert read_image(out / "series1" / (names[1] + ".dcm")).source_format == "dicom"


def test_images_with_warnings_are_enhanced_and_reported(tmp_path, model_dir, seed, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(src / "upright.png")
    Image.fromarray(np.round((1 - chest_like(seed + 1)) * 255).astype(np.uint8)).save(src / "bone_dark.png")
    grey = np.round(chest_like(seed + 2) * 255).astype(np.uint8)
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(src / "screenshot.png")  # RGB
    out, report = tmp_path / "o", tmp_path / "run.json"
    assert main(["enhance", str(src), "-o", str(out), "--model", str(model_dir), "--report", str(report), "-q"]) == 0
    captured = capsys.readouterr()
    assert "3 done (2 with warnings)" in captured.out
    assert re.search(r"warning: .*bone_dark\.png: looks inverted .*MONOCHROME1", captured.err)
    assert re.search(r"\n  warning: .*bone_dark\.png: looks inverted", captured.err)  # again in the final summary
    assert "upright.png: looks inverted" not in captured.err
    # what decoding changed is a warning of the file's too: given once as it happens, once in the summary
    assert len(re.findall(r"warning: .*screenshot\.png: RGB image converted to luminance", captured.err)) == 2
    files = {os.path.basename(r["input"]): r for r in json.loads(report.read_text())["files"]}
    assert files["upright.png"]["warnings"] == [] and "looks inverted" in files["bone_dark.png"]["warnings"][0]
    converted = (f"{src / 'screenshot.png'}: RGB image converted to luminance (grayscale): its red, green and blue "
                 "are equal in every pixel, so the conversion lost nothing")  # (a grey image stored as RGB)
    assert files["screenshot.png"]["warnings"] == [converted]
    assert (out / "bone_dark.png").exists() and (out / "screenshot.png").exists()  # warnings, never refusals


def test_enhance_of_an_inverted_image_warns_as_the_cli_does(tmp_path, seed):
    # the CLI warned of a bone-dark file; Enhancer.enhance of the same pixels said nothing
    import warnings

    enh = Enhancer(tiny_model(seed), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an upright image: no warning at all
        assert enh.enhance(chest_like(seed)).warnings == []
    with pytest.warns(UserWarning, match=r"^pixels: looks inverted \(its central band is darker than the lung fields;"
                                         r".*\); if they store bone dark, give 1 - pixels$"):  # fmt: skip
        result = enh.enhance(torch.from_numpy(1 - chest_like(seed)))
    assert len(result.warnings) == 1 and result.warnings[0].startswith("pixels: looks inverted")
    Image.fromarray(np.round((1 - chest_like(seed)) * 255).astype(np.uint8)).save(tmp_path / "dark.png")
    with pytest.warns(UserWarning, match=r"dark\.png: looks inverted .*read it with read_image\(path, "
                                         r"photometric='MONOCHROME1'\)"):  # fmt: skip
        enh.enhance(read_image(tmp_path / "dark.png"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upright = read_image(tmp_path / "dark.png", photometric="MONOCHROME1")  # as the warning says
        assert enh.enhance(upright).warnings == []
        warnings.filterwarnings("ignore", ".*looks inverted")  # as the docstring says, for one meant so
        assert len(enh.enhance(1 - chest_like(seed)).warnings) == 1


def test_enhance_warns_of_a_spine_that_may_be_wrong_in_pythons_words(seed):
    # the CLI warned of a strip or a flat image's spine (and said --preview, --rois); enhance said nothing
    import warnings

    strip, flat = np.tile(chest_like(seed), (1, 3)), np.full((256, 240), 0.5) + np.eye(256, 240) * 1e-6
    enh = Enhancer(tiny_model(seed), device="cpu")
    give = r"give its centres \(spine=xvertfast\.find_spine\(pixels, upper=\(row, col\), lower=\(row, col\)\)\)$"
    for image, said in ((strip, r"^pixels: 720 x 256: not the shape of a frontal chest radiograph .* the spine found "
                                r"may be wrong: look at the result's boxes, or "),
                        (flat, r"^pixels: too little contrast to find the spine by .*; if it is a radiograph, ")):
        with pytest.warns(UserWarning, match=said + give) as record:
            result = enh.enhance(image)
        assert result.warnings == [str(w.message) for w in record if "pixels: " in str(w.message)]
        assert "--" not in result.warnings[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # full mode uses no ROIs: nothing to doubt
        assert Enhancer(tiny_model(seed), device="cpu", mode="full").enhance(strip).warnings == []


def test_enhance_files_says_its_own_arguments(tmp_path, seed):
    # fmt='jpg' was refused as 'format must be one of ...' (the CLI's word: its --format offers the
    # formats alone); workers=2.7 ran two workers and workers=True one, without a word
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    enh = Enhancer(tiny_model(seed), device="cpu")
    with pytest.raises(ValueError, match=r"^fmt must be one of same, png16, png8, tiff, dicom, got 'jpg'$"):
        enh.enhance_files([str(tmp_path / "a.png")], str(tmp_path / "out"), fmt="jpg", progress=False)
    for workers in (2.7, True, "2", np.float64(2.0)):
        with pytest.raises(ValueError, match=r"^workers must be a whole number from 1 to \d+, got "):
            enh.enhance_files([str(tmp_path / "a.png")], str(tmp_path / "out"), workers=workers, progress=False)
    assert not (tmp_path / "out").exists()
    assert enh.enhance_files([str(tmp_path / "a.png")], str(tmp_path / "out"), workers=np.int64(1),
                             progress=False).line().startswith("1 done")  # fmt: skip


def test_outputs_never_leave_the_output_folder(tmp_path, model_dir, seed):
    outside = tmp_path / "a" / "b"
    outside.mkdir(parents=True)
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(tmp_path / "a" / "secret.png")
    listing = outside / "list.txt"
    listing.write_text("../secret.png\n../../a/secret.png\n" + os.path.join("..", "..", "a", "secret.png") + "\n")
    out = outside / "out"
    cwd = os.getcwd()
    os.chdir(outside)
    try:
        code = main(["enhance", "@list.txt", "-o", "out", "--model", str(model_dir), "-q"])
    finally:
        os.chdir(cwd)
    assert code == 0
    # one input (three spellings of one file), written inside: a listed path that climbs out of
    # the current folder is mirrored whole, from the root
    assert sorted(files_under(out)) == [str(tmp_path / "a" / "secret.png").lstrip(os.sep)]
    assert sorted(os.listdir(tmp_path / "a")) == ["b", "secret.png"]  # the input itself untouched


def test_list_gives_the_polarity_of_png_files(tmp_path, model_dir, seed):
    img = np.round(chest_like(seed) * 255).astype(np.uint8)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(img).save(tmp_path / "a" / "x.png")
    Image.fromarray(255 - img).save(tmp_path / "b" / "x.png")  # the same image stored bone-dark
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'b' / 'x.png'}\tMONOCHROME1\n")
    args = ["--model", str(model_dir), "--device", "cpu", "-q"]
    assert main(["enhance", str(tmp_path / "a" / "x.png"), "-o", str(tmp_path / "oa"), *args]) == 0
    assert main(["enhance", f"@{listing}", "-o", str(tmp_path / "ob"), *args]) == 0
    mirrored = tmp_path / "ob" / str(tmp_path / "b" / "x.png").lstrip(os.sep)  # a listed absolute path, whole
    # (the same pixels; not the same bytes: the output of a MONOCHROME1 input says so in its Description)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "oa" / "x.png")), np.asarray(Image.open(mirrored)))
    listing.write_text(f"{tmp_path / 'b' / 'x.png'}\tINVERTED\n")
    assert main(["enhance", f"@{listing}", "-o", str(tmp_path / "oc"), *args]) == 2  # a bad tag is refused


def _signalled_mid_job(tmp_path, model_dir, seed: int, sig: int, *extra: str):
    """Enhances 16 images into ``whole``, then again into ``stopped``, sending ``sig`` once two
    outputs are there; returns the command, its environment, the process (finished) and its
    captured stdout and stderr."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(16):
        Image.fromarray(np.round(chest_like(seed + i, 320, 300) * 4095).astype(np.uint16)).save(src / f"img{i:02d}.png")
    cmd = [sys.executable, "-m", "xvertfast", "enhance", str(src), "--model", str(model_dir), "--device", "cpu",
           "--batch-size", "1", "--workers", "1", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd + ["-o", str(tmp_path / "whole")], check=True, env=env, capture_output=True)
    stopped = tmp_path / "stopped"
    proc = subprocess.Popen(cmd + ["-o", str(stopped), *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if stopped.exists() and sum(p.suffix == ".png" for p in stopped.iterdir()) >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    written = sum(p.suffix == ".png" and not p.name.startswith(".") for p in stopped.iterdir())
    assert 0 < written < 16, "the job was not stopped mid-way; make it longer"
    return cmd + ["-o", str(stopped)], env, proc, out, err


@pytest.mark.slow
def test_kill_and_resume_gives_the_uninterrupted_outputs(tmp_path, model_dir, seed):
    cmd, env, _, _, _ = _signalled_mid_job(tmp_path, model_dir, seed, signal.SIGKILL)
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    assert files_under(tmp_path / "stopped") == files_under(tmp_path / "whole")  # bit for bit, no leftovers


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c_with_the_summary_and_report(tmp_path, model_dir, seed):
    """What a cluster's scheduler sends at the time limit: the outputs in flight are finished,
    the summary and --report written, the exit code is 143, and the same command resumes."""
    report, stopped = tmp_path / "run.json", tmp_path / "stopped"
    cmd, env, proc, out, err = _signalled_mid_job(tmp_path, model_dir, seed, signal.SIGTERM, "--report", str(report))
    assert proc.returncode == 143, err
    assert "stopped early: interrupted" in err
    assert not [p for p in stopped.iterdir() if p.name.endswith(".part")]  # the outputs in flight were finished
    written = sum(not p.name.startswith(".") for p in stopped.iterdir())
    body = json.loads(report.read_text())
    assert body["summary"]["stopped"] == "interrupted" and body["summary"]["done"] == written
    assert out.splitlines()[0].startswith(f"{written} done, 0 skipped, 0 failed")
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    assert files_under(stopped) == files_under(tmp_path / "whole")


def test_a_sigterm_while_the_preview_is_drawn_keeps_the_summary(tmp_path, model_dir, seed, monkeypatch, capsys):
    """The outputs are written and the ledger says finished when the report and preview are made
    (seconds for a preview): a SIGTERM then lost the summary, the command said only 'interrupted'
    while `xvertfast status` said finished. The summary is printed, says what was not written,
    and the exit code stays 143."""
    import signal

    from xvertfast.infer import preview

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(src / "a.png")

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # (the CLI's handler raises in this, the main, thread)
        raise AssertionError("SIGTERM did not stop the preview")

    monkeypatch.setattr(preview, "write_preview", terminated)
    code = main(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu",
                 "--report", str(tmp_path / "run.json"), "--preview", str(tmp_path / "look.png"), "-q"])  # fmt: skip
    said = capsys.readouterr()
    assert code == 143
    assert said.out.startswith("1 done, 0 skipped, 0 failed") and f"report: {tmp_path / 'run.json'}" in said.out
    assert f"{tmp_path / 'look.png'} not written" in said.err and "the job is complete" in said.err
    assert not (tmp_path / "look.png").exists() and json.loads((tmp_path / "run.json").read_text())
    assert job_status(str(tmp_path / "out"), "enhance").ledgers[0].ended == "finished"


def test_default_workers_is_half_the_cpus_within_1_to_4(monkeypatch):
    import os

    from xvertfast.infer import batch

    for cpus, expected in [(1, 1), (2, 1), (4, 2), (8, 4), (64, 4)]:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)), raising=False)
        assert batch.default_workers() == expected


def test_cli_warnings_are_one_line_each_and_main_restores_the_hook(tmp_path, model_dir, seed, capsys):
    import warnings

    src = tmp_path / "in"
    src.mkdir()
    gray = np.round(chest_like(seed) * 255).astype(np.uint8)
    Image.fromarray(gray).convert("RGB").save(src / "colour.png")
    hook = warnings.showwarning
    args = ["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu", "-q"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"warning: {src / 'colour.png'}: RGB image converted to luminance" in err
    assert "UserWarning" not in err and "require_content" not in err  # no source line, no category
    assert warnings.showwarning is hook


def test_pixels_off_the_unit_scale_are_refused(model_dir):
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch")
    image = chest_like(3)
    with pytest.raises(TypeError, match="floats in \\[0, 1\\].*got uint16"):
        enhancer.enhance(np.round(image * 4095).astype(np.uint16))  # raw 12-bit values
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\], got values from [0-9]+ to [0-9]+ \\(raw stored"):
        enhancer.enhance(np.round(image * 4095).astype(np.float32))
    enhancer.enhance(torch.from_numpy(image.astype(np.float32)))  # a tensor on the unit scale is fine
    from xvertfast.preprocess import find_spine

    with pytest.raises(ValueError, match="the spine given was found on a 400x400 image, this one is 256x240"):
        enhancer.enhance(image, spine=find_spine(np.zeros((400, 400))))
    with pytest.raises(ValueError, match="H, W >= 1"):
        enhancer.enhance(np.zeros((0, 0), np.float32))


def test_a_constant_or_too_small_image_is_refused_as_the_cli_refuses_it(tmp_path, seed):
    # the CLI refused them (require_content) while the API enhanced them: a blank 100 x 100 image came
    # out with grey levels 0 to 0.48, a 1024^2 one of 0.5 with 0.35 to 0.5, 10 x 10 and 1 x 1 ran too
    from xvertfast.io import MIN_SIDE, ImageReadError
    from xvertfast.io.read import require_content

    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    enhancer.backend = ConstantBackend(0.5)  # (refused before the network: it is never asked)
    constant = "^enhance: constant image: there is no structure to enhance$"
    rng = np.random.default_rng(seed)
    slack = -5e-4 * rng.random((64, 64))  # within the rounding slack of 0: all 0 once clipped
    for blank in (np.zeros((100, 100), np.float32), np.full((1024, 1024), 0.5, np.float32),
                  torch.ones(64, 64), np.full((64, 64), 0.25).tolist(), slack):  # fmt: skip
        for use in (enhancer.enhance, enhancer.prepare):
            with pytest.raises(ValueError, match=constant):
                use(blank)
    for h, w in ((10, 10), (1, 1), (1, 200), (200, MIN_SIDE - 1)):
        small = rng.random((h, w)).astype(np.float32)
        with pytest.raises(ValueError, match=rf"^enhance: image is {w} x {h} pixels \(width x height\): too small "
                                             rf"for a radiograph \(minimum side {MIN_SIDE}\)$"):  # fmt: skip
            enhancer.enhance(small)
    assert enhancer.enhance(rng.random((MIN_SIDE, MIN_SIDE)).astype(np.float32)).pixels.shape == (MIN_SIDE, MIN_SIDE)
    # a Radiograph: its file named, in the words of the CLI (require_content)
    Image.fromarray(np.full((64, 80), 77, np.uint8)).save(tmp_path / "blank.png")
    rad = read_image(tmp_path / "blank.png")
    with pytest.raises(ImageReadError) as cli:
        require_content(rad)
    with pytest.raises(ImageReadError) as api:
        enhancer.enhance(rad)
    assert str(api.value) == str(cli.value) == f"{tmp_path / 'blank.png'}: constant image: there is no structure to enhance"


def test_nan_or_infinite_pixels_are_refused_in_enhance_s_name(seed):
    # refused before too, but by preprocess, in its name ("preprocess: pixels contain ...")
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    for bad in (np.nan, np.inf, -np.inf):
        image = chest_like(seed)
        image[100, 100] = bad
        for pixels, said in ((image, "1 NaN or infinite value"), (torch.from_numpy(image), "1 NaN or infinite value"),
                             (np.full((64, 64), bad, np.float32), "4096 NaN or infinite values")):  # fmt: skip
            # (counted, and told how to fill them: it said "contain NaN or infinite values" alone)
            with pytest.raises(ValueError, match=rf"^enhance: pixels contain {said}: replace them first, e\.g\. "
                                                 r"np\.nan_to_num\(pixels, nan=0\.0, posinf=1\.0, neginf=0\.0\) "
                                                 r"\(torch\.nan_to_num for a tensor\)$"):  # fmt: skip
                enhancer.enhance(pixels)


def test_the_model_given_is_neither_moved_nor_switched(model_dir):
    from pathlib import Path

    from xvertfast.model import load_model

    model = load_model(str(model_dir)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    enhancer = Enhancer(model, device="cpu", backend="torch")
    enhancer.enhance(chest_like(4))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert Enhancer(Path(model_dir), device="cpu", backend="torch").tile == enhancer.tile  # a Path is a folder
    with pytest.raises(TypeError, match="model must be a model folder"):
        Enhancer(42, device="cpu")


def test_the_job_records_the_precision_the_backend_runs(model_dir, monkeypatch):
    from xvertfast.infer import batch, enhancer as enhancer_module
    from xvertfast.infer.backends import TorchBackend

    def fp16_engines(name, model, device, dtype, *args):  # what TensorRT makes of fp32/bf16 requests
        backend = TorchBackend(model, device)
        backend.name, backend.dtype = "tensorrt", torch.float16
        return backend

    monkeypatch.setattr(enhancer_module, "make_backend", fp16_engines)
    enhancer = Enhancer(str(model_dir), device="cpu", precision="fp32")
    with pytest.warns(RuntimeWarning, match="precision fp32: the tensorrt backend runs float16"):
        enhancer.backend  # noqa: B018 (built at first use: a dry run builds none)
    assert enhancer.dtype == torch.float16
    assert batch._job_settings(enhancer, "png16")["precision"] == "float16"


def test_bad_settings_are_refused_when_the_enhancer_is_made(seed):
    # a float batch size, an unknown WLS method and a meta device were taken, and failed (or
    # ran on data-less tensors) only at the first image, with errors that did not name them
    for batch_size in (2.5, "8", True, 0, 8.0):
        with pytest.raises(ValueError, match=r"^Enhancer: batch_size must be a whole number >= 1 \(tiles per network "
                                             rf"call\), got {re.escape(repr(batch_size))}$"):  # fmt: skip
            Enhancer(tiny_model(seed), device="cpu", batch_size=batch_size)
    assert Enhancer(tiny_model(seed), device="cpu", batch_size=np.int64(3)).batch_size == 3
    with pytest.raises(ValueError, match="wls_method must be one of auto, cpu"):
        Enhancer(tiny_model(seed), device="cpu", wls_method="bogus")
    with pytest.raises(ValueError, match=r"^device='meta' holds no data"):
        Enhancer(tiny_model(seed), device="meta")
    # a string naming no device showed torch's "Expected one of cpu, cuda, ipu, xpu, ..."; said now
    # as load_model(map_location=...) and TrainConfig(device=...) say it
    for device in ("gpu", "cuda:x", None, 3.5):
        with pytest.raises(ValueError, match=rf"^device={re.escape(repr(device))} is not a device \(such as 'cpu', "
                                             r"'cuda' or 'cuda:1'\)$"):  # fmt: skip
            Enhancer(tiny_model(seed), device=device)


def test_a_model_on_the_meta_device_is_refused_when_the_enhancer_is_made(seed, tmp_path):
    # load_model(path, map_location='meta') gives a model of shapes alone; given to the Enhancer it
    # failed at the first image with torch's "Cannot copy out of meta tensor; no data!"
    from xvertfast.model import load_model, save_model

    save_model(tiny_model(seed), tmp_path / "m")
    for model in (load_model(tmp_path / "m", map_location="meta"), tiny_model(seed).to("meta")):
        with pytest.raises(ValueError, match=r"^model's weights are on the meta device, which holds no data \(load_model"
                                             r"\(path, map_location='meta'\) gives their shapes alone\): nothing can be "
                                             r"enhanced with it; load it with map_location='cpu'$"):  # fmt: skip
            Enhancer(model, device="cpu")


def test_big_endian_and_read_only_arrays_are_enhanced(model_dir, recwarn):
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch")
    image = chest_like(5)
    expected = enhancer.enhance(image).pixels
    frozen = image.copy()
    frozen.flags.writeable = False
    for pixels in (image.astype(">f4"), frozen):  # torch refused the one, warned on the other
        np.testing.assert_array_equal(enhancer.enhance(pixels).pixels, expected)
    assert not [w for w in recwarn if "writable" in str(w.message)]


def test_compose_needs_one_tile_per_box(seed):
    # zip blended only the first tile where one was missing, and dropped extra ones, without a word
    from xvertfast.preprocess import find_spine

    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    prep = enhancer.prepare(chest_like(seed))
    tiles = enhancer.run_tiles(prep.xp, prep.y)
    enhancer.compose(prep, tiles)
    for bad in (tiles[:1], torch.cat([tiles, tiles[:1]]), tiles[:, 0], tiles.numpy()):
        with pytest.raises(ValueError, match="compose: tiles must be a \\[2, 1, S, S\\] tensor, one per box"):
            enhancer.compose(prep, bad)
    with pytest.raises(TypeError, match="spine must be a Spine .*got tuple"):
        enhancer.prepare(chest_like(seed), spine=(10, 20))
    enhancer.prepare(chest_like(seed), spine=find_spine(chest_like(seed)))


def test_compose_takes_any_float_tiles_and_refuses_what_no_image_comes_of(seed):
    # a network's own outputs: bfloat16 ("Got unsupported ScalarType BFloat16"), requiring grad ("Can't call
    # numpy() on Tensor that requires grad") failed in torch's words, integer tiles ("adaptive_avg_pool2d" not
    # implemented for 'Byte') too, and NaN tiles gave NaN pixels in an output said to be in [0, 1]
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    prep = enhancer.prepare(chest_like(seed))
    tiles = enhancer.run_tiles(prep.xp, prep.y)
    want = enhancer.compose(prep, tiles)
    for given, within in ((tiles.bfloat16(), 2**-8), (tiles.half(), 2**-11), (tiles.clone().requires_grad_(), 0)):
        got = enhancer.compose(prep, given)
        assert got.dtype == np.float32 and np.abs(got - want).max() <= within
    with pytest.raises(ValueError, match=r"^compose: tiles must be floating point .*, got torch\.uint8$"):
        enhancer.compose(prep, (tiles * 255).to(torch.uint8))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"^compose: tiles contain 1 NaN or infinite value\(s\)"):
            enhancer.compose(prep, tiles.index_put((torch.tensor([1]), torch.tensor([0]), torch.tensor([5]),
                                                    torch.tensor([7])), torch.tensor(bad)))  # fmt: skip


def test_where_the_spine_tiles_cover_the_image_the_original_does_not_show(seed):
    # the two tiles' ramps lie inside both 512 x 290 evaluation ROIs (which are taller than the
    # tiles' cores); each tile was pulled to the original's low frequencies by 1 - its own weight,
    # so the original's brightness entered the scored pixels (up to 0.08 on an NIH image) where
    # the tiles together weigh 1 or more and no original pixel is blended
    import dataclasses

    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    image = chest_like(seed)
    prep = enhancer.prepare(image)
    (a, b), tiles = prep.boxes, enhancer.run_tiles(prep.xp, prep.y)
    assert a.bottom > b.top  # the tiles overlap (where each evaluation ROI reaches into the other tile)
    other = dataclasses.replace(prep, pixels=np.ascontiguousarray(prep.pixels[::-1, ::-1]))  # another original
    out, out_other = enhancer.compose(prep, tiles), enhancer.compose(other, tiles)
    rows, cols = slice(b.top, a.bottom), slice(max(a.left, b.left), min(a.right, b.right))
    margin = math.ceil(FEATHER * (a.right - a.left))  # (the tiles' side ramps blend the original in)
    inner = (rows, slice(cols.start + margin, cols.stop - margin))
    np.testing.assert_array_equal(out[inner], out_other[inner])
    assert not np.array_equal(out, out_other)  # (elsewhere the original shows)


def test_a_path_or_a_non_image_is_refused_by_name(seed):
    # a path gave torch's "can't convert np.ndarray of type numpy.str_. The only supported types are ..."
    from pathlib import Path

    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    for path in ("chest.png", Path("chest.png")):
        # (the Radiograph read_image gives is taken whole: its file named in later messages)
        with pytest.raises(TypeError, match=r"got the path 'chest\.png': read it with "
                                            r"xvertfast\.io\.read_image\(path\)$"):  # fmt: skip
            enhancer.enhance(path)
    for bad in (None, {"a": 1}):
        with pytest.raises(TypeError, match=r"enhance: pixels must be an image \(\[H, W\] array or tensor, or a "
                                            rf"Radiograph\), got {type(bad).__name__}$"):  # fmt: skip
            enhancer.enhance(bad)
    # torch's "can't convert np.ndarray of type numpy.longdouble" (WIDE); complex was refused in other words
    # than preprocess and the baselines refused it in
    for dtype in (np.complex64, *WIDE):
        with pytest.raises(TypeError, match=rf"enhance: pixels must be floats in \[0, 1\], got a NumPy array of "
                                            rf"{np.dtype(dtype)}"):  # fmt: skip
            enhancer.enhance(chest_like(seed).astype(dtype))
    assert enhancer.enhance(chest_like(seed).tolist()).pixels.shape == (256, 240)  # nested lists are an array
    with pytest.raises(ValueError, match=r"got shape \(\)$"):  # a 0-d array was said to be of shape (1,)
        enhancer.enhance(np.float32(0.5))


def test_run_tiles_checks_its_tiles_and_runs_other_floats_as_float32(seed):
    # float64 tiles failed inside the stages ("Input type (double) and bias type (float) should be the
    # same"), NumPy ones with "'numpy.ndarray' object has no attribute 'to'"
    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    prep = enhancer.prepare(chest_like(seed))
    expected = enhancer.run_tiles(prep.xp, prep.y)
    torch.testing.assert_close(enhancer.run_tiles(prep.xp.double(), prep.y.double()), expected, rtol=0, atol=0)
    for xp, y in ((prep.xp.numpy(), prep.y.numpy()), (prep.xp, prep.y[:1]), (prep.xp[:, 0], prep.y[:, 0]),
                  (prep.xp.int(), prep.y.int())):  # fmt: skip
        with pytest.raises(ValueError, match="run_tiles: xp and y must be float tensors of one shape"):
            enhancer.run_tiles(xp, y)
    # integer tiles were said as 'got shape (2, 1, 64, 64) and shape (2, 1, 64, 64)', NaN ones by the WLS
    # between stages as 'wls: image contains 1 NaN or infinite value(s)', naming no tile
    with pytest.raises(ValueError, match=r"got a torch\.int32 tensor of shape \(2, 1, \d+, \d+\) and a torch\.int32"):
        enhancer.run_tiles(prep.xp.int(), prep.y.int())
    bad = prep.y.clone()
    bad[1, 0, 3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"^run_tiles: y contains 1 NaN or infinite value\(s\)$"):
        enhancer.run_tiles(prep.xp, bad)


def test_errors_and_warnings_start_their_own_line_under_the_progress_bar(tmp_path, model_dir, seed, capsys):
    # printed after the bar's text, which ends without a newline: "...0/8 [00:00<?, ?img/s]error: ..."
    src = make_inputs(tmp_path, seed)
    Image.fromarray(255 - np.round(chest_like(seed + 7) * 255).astype(np.uint8)).save(src / "inverted.png")
    args = ["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device", "cpu"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "warning: " in err  # (the inverted one)
    said_around_the_bar(err)


def _ctrl_c_while_writing(tmp_path, model_dir, seed, monkeypatch, images: int, at: int, times: int,
                          cli: bool = False, in_wait: int = 2):  # fmt: skip
    """Enhances ``images`` images (one at a time), sending Ctrl-C ``times`` to the main thread (as
    the terminal's reaches it) while output number ``at`` is written: the ones from number
    ``in_wait`` on once the main thread waits for its outputs in flight (a fixed sleep was not
    enough under load); returns the summary (``cli``: the exit code of ``xvertfast enhance``) and
    the outputs in the order written."""
    from xvertfast.infer import batch

    src = tmp_path / "in"
    src.mkdir()
    for i in range(images):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(src / f"img{i}.png")
    real_write, real_finish, calls = batch._compose_and_write, batch._finish_in_flight, []
    waiting = threading.Event()

    def finish_and_said(*args):
        waiting.set()
        return real_finish(*args)

    def write_while_interrupted(*args):
        calls.append(args[4])
        if len(calls) == at:
            for n in range(1, times + 1):
                if n >= in_wait:
                    assert waiting.wait(120), "the job never began its wait for the outputs in flight"
                time.sleep(0.3)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            time.sleep(0.3)
        return real_write(*args)

    monkeypatch.setattr(batch, "_finish_in_flight", finish_and_said)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    monkeypatch.setattr(batch, "_compose_and_write", write_while_interrupted)
    try:
        if cli:
            return main(["enhance", str(src), "-o", str(tmp_path / "out"), "--model", str(model_dir), "--device",
                         "cpu", "--backend", "torch", "--batch-size", "1", "--workers", "1", "-q"]), calls  # fmt: skip
        summary = enhancer.enhance_files([str(src)], str(tmp_path / "out"), workers=1, progress=False)
    except KeyboardInterrupt:
        pytest.fail("a Ctrl-C escaped the wait for the outputs in flight")
    return summary, calls


def test_a_second_ctrl_c_while_the_outputs_in_flight_finish_does_not_cut_them(tmp_path, model_dir, seed, capfd,
                                                                               monkeypatch):
    """Two Ctrl-C in quick succession: the second one came while the job waited for its writes in
    flight. It escaped that wait, leaving the writer threads running inside torch as Python shut
    down, which aborted the process (SIGABRT, 'terminate called without an active exception');
    now the wait is not interrupted, the outputs in flight are finished and the summary comes back."""
    summary, calls = _ctrl_c_while_writing(tmp_path, model_dir, seed, monkeypatch, images=4, at=1, times=2)
    # the first Ctrl-C stops the job at its next read, or, where every image was handed over by then
    # (the network's batch and its handover are not cut), ends a complete job as interrupted
    assert (summary.stopped == "interrupted") != summary.interrupted_at_end and summary.done >= 1
    assert os.path.exists(calls[0]) and not [n for n in os.listdir(tmp_path / "out") if n.endswith(".part")]
    assert "already stopping" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_a_ctrl_c_while_the_last_outputs_are_written_ends_a_complete_job_with_130(tmp_path, model_dir, seed, capfd,
                                                                                 monkeypatch):  # fmt: skip
    """A first Ctrl-C (or a scheduler's SIGTERM) in the wait for the last outputs is held until they
    are written (it was once dropped: exit 0). Every image is then processed: the summary said
    'stopped: interrupted; 0 image(s) not processed; the same command resumes' while the ledger,
    and `xvertfast status`, said finished. Both say finished; the exit code stays 130 (143), so
    that a script's next step does not run after the user stopped it."""
    code, _ = _ctrl_c_while_writing(tmp_path, model_dir, seed, monkeypatch, images=3, at=3, times=1, cli=True,
                                   in_wait=1)
    said = capfd.readouterr()
    assert code == 130
    assert said.out.startswith("3 done, 0 skipped, 0 failed")
    assert "interrupted once every image was processed: the job is complete" in said.err
    assert "resumes" not in said.err and "stopped" not in said.err and "already stopping" not in said.err
    out = tmp_path / "out"
    end = json.loads((out / LEDGER_FILE).read_text().splitlines()[-1])
    assert end["run"] == "end" and "why" not in end and end["done"] == 3  # the ledger says finished
    led = job_status(str(out), "enhance").ledgers[0]
    assert (led.ended, led.stop) == ("finished", None)


def test_inputs_given_as_an_iterator_are_read_once_and_checked_as_a_list_is(tmp_path, model_dir, seed):
    # enhance_files(Path("/data").glob("*"), out): the search took the iterator's paths and left it
    # empty, so the check of an output folder lying in an input folder saw no input (its images were
    # passed over without a word) and "nothing found" named no input
    from xvertfast.infer.batch import enhance_files

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.fromarray((chest_like(seed) * 255).astype(np.uint8)).save(src / name)
    enh = Enhancer(str(model_dir), device="cpu")
    with pytest.raises(ValueError, match="holds images that no xvertfast job wrote"):
        enhance_files(enh, iter([str(src)]), str(src / "sub"), dry_run=True, progress=False, log=lambda m: None)
    (tmp_path / "none").mkdir()
    with pytest.raises(NothingFound, match=f"^no image files found in {tmp_path / 'none'} "):
        enhance_files(enh, iter([tmp_path / "none"]), str(tmp_path / "out"), progress=False, log=lambda m: None)


def test_an_enhancer_can_be_pickled_and_deep_copied(seed):
    # the lazily built backend's lock (87dab4a) made pickle.dumps and copy.deepcopy fail ("cannot pickle
    # '_thread.lock' object"): an Enhancer handed to multiprocessing no longer went
    import copy
    import pickle

    enhancer = Enhancer(tiny_model(seed), device="cpu", backend="torch")
    image = chest_like(seed)
    for _ in ("before its backend is built", "after"):
        for twin in (pickle.loads(pickle.dumps(enhancer)), copy.deepcopy(enhancer)):
            np.testing.assert_array_equal(twin.enhance(image).pixels, enhancer.enhance(image).pixels)


def test_format_same_keeps_a_16_bit_png_16_bit_whatever_its_values(tmp_path, model_dir, seed):
    """`same` picked png8 or png16 by the bits the values need: a 16-bit PNG of values under 256
    came back as an 8-bit PNG. The container's depth decides; png16 keeps its scale (the values'
    depth, at least 8 bits)."""
    src = tmp_path / "in"
    src.mkdir()
    low = np.round(chest_like(seed) * 255).astype(np.uint16)
    Image.fromarray(low).save(src / "low16.png")
    Image.fromarray(low.astype(np.uint8)).save(src / "eight.png")
    with Image.open(src / "low16.png") as stored:
        assert stored.mode.startswith("I")  # (16 bits stored)
    enhancer = Enhancer(str(model_dir), device="cpu", backend="torch", batch_size=1)
    summary = enhancer.enhance_files([str(src)], str(tmp_path / "out"), workers=1, progress=False)
    assert summary.done == 2
    deep, eight = read_image(tmp_path / "out" / "low16.png"), read_image(tmp_path / "out" / "eight.png")
    assert deep.values.dtype == np.uint16 and eight.values.dtype == np.uint8
    assert int(deep.values.max()) <= 255  # the 8-bit scale of its values, in a 16-bit PNG
    np.testing.assert_array_equal(deep.values, eight.values)  # the same image, the same levels


def test_the_end_summary_lists_a_screenful_of_warned_and_failed_files_and_says_where_the_rest_are(
        tmp_path, model_dir, seed, capsys):  # fmt: skip
    """A 20,000-file job's end summary repeated every warning said as each image finished (some
    6,700 lines at the scale audit's rate): it lists the first WARNED_LISTED and FAILED_LISTED,
    counts the rest and names the --report that holds every one, or says that each was said above."""
    from xvertfast._text import FAILED_LISTED, WARNED_LISTED

    src = tmp_path / "in"
    src.mkdir()
    bone_dark = np.round((1 - chest_like(seed)) * 255).astype(np.uint8)
    for k in range(WARNED_LISTED + 2):
        Image.fromarray(bone_dark).save(src / f"dark{k:02d}.png")
    for k in range(FAILED_LISTED + 3):
        (src / f"broken{k:02d}.png").write_bytes(b"not a PNG at all")
    out, report = tmp_path / "o", tmp_path / "run.json"
    args = ["enhance", str(src), "-o", str(out), "--model", str(model_dir), "-q"]
    assert main([*args, "--report", str(report)]) == 1
    err = capsys.readouterr().err
    assert len(re.findall(r"(?m)^warning: .*looks inverted", err)) == WARNED_LISTED + 2  # each as it finished
    assert len(re.findall(r"(?m)^error: .*broken", err)) == FAILED_LISTED + 3
    # the end summary's lines, indented
    assert len(re.findall(r"(?m)^  warning: .*looks inverted", err)) == WARNED_LISTED
    assert f"\n  ... and 2 more warned files: every one is in {report}\n" in err
    assert len(re.findall(r"(?m)^  failed: .*broken", err)) == FAILED_LISTED
    assert f"\n  ... and 3 more failed files: every one is in {report}\n" in err
    files = json.loads(report.read_text())["files"]  # the report keeps them all
    assert sum(bool(r["warnings"]) for r in files) == WARNED_LISTED + 2
    assert sum(r["status"] == "failed" for r in files) == FAILED_LISTED + 3
    # without --report: where they are is the lines said as each file finished
    assert main([*args[:3], str(tmp_path / "o2"), *args[4:]]) == 1
    err = capsys.readouterr().err
    assert len(re.findall(r"(?m)^  warning: .*looks inverted", err)) == WARNED_LISTED
    assert ("... and 2 more warned files: each was said above as it finished; --report RUN_JSON keeps every one "
            "in a file\n") in err  # fmt: skip
    assert "... and 3 more failed files: each was said above as it finished;" in err


def test_enhance_keeps_full_modes_many_tiles_warning_in_the_result(seed, monkeypatch):
    """Enhancer.enhance warned of a model that cuts the image into many full-mode tiles, but left it
    out of the result's warnings, which are to hold each warning it gave: a notebook reading
    result.warnings missed it (the threshold lowered here: a model at 256 cuts a 64 x 64 image into
    25 tiles; the network skipped)."""
    import warnings

    from xvertfast.infer import enhancer as enhancer_module

    model = tiny_model(seed)
    model.metadata = {"training": {"config": {"roi_size": 256}}}
    monkeypatch.setattr(enhancer_module, "MANY_FULL_TILES", 20)
    enh = Enhancer(model, device="cpu", backend="torch", mode="full")
    monkeypatch.setattr(enh, "run_tiles", lambda xp, y: xp)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        result = enh.enhance(chest_like(seed, 64, 64))
    given = [str(w.message) for w in said if issubclass(w.category, UserWarning)]
    assert any("full mode cuts this 64x64 image into 25 tiles" in text for text in given), given
    assert result.warnings == given, (result.warnings, given)
