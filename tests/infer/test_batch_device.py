"""``xvertfast enhance --device cuda``: the batch job on a device gives the CPU job's outputs.

The "cpu" variants run everywhere: each checks its job's outputs and is the reference its "cuda"
variant compares with (what ``tools/gpu_check.sh`` runs on a GPU). The shipped model is used (a trained one: a random tiny
model's output is nearly flat, ~0.56 +- 7e-4, and would hide any difference), in fp32 with TF32
off (``no_tf32``), so that the two devices differ by the order of their sums and by the WLS
solvers' (same algorithm, ~5e-5 relative: tests/ops/test_wls.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEVICES
from tests.infer.test_enhance import chest_like
from xvertfast.cli import main
from xvertfast.infer.batch import JOB_FILE
from xvertfast.io import read_image

#: Largest and mean absolute difference of an output pixel ([0, 1]), device job against CPU job.
#: On the CPU, noise of 1e-4 on the network's input tiles moved the shipped model's outputs by
#: <= 1.1e-4 (mean 1.4e-5), and the GPU's preprocessing is held to 1e-3 of the CPU's on the tiles
#: (tests/infer/test_enhance.py): 2e-3 / 2e-4 leave room for that bound, not for a wrong tile.
MAX_DIFF, MEAN_DIFF = 2e-3, 2e-4
NAMES = ("a", "b")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    for k, name in enumerate(NAMES):
        Image.fromarray(np.round(chest_like(k, 256, 200) * 255).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


def enhance(inputs, out, device: str, mode: str) -> dict[str, np.ndarray]:
    """The CLI's enhance job (float32 TIFFs: no rounding to hide a difference); its outputs by name."""
    code = main(["enhance", str(inputs), "-o", str(out), "--model", "default", "--device", device, "--mode", mode,
                 "--precision", "fp32", "--backend", "torch", "--format", "tiff", "--workers", "2", "-q"])  # fmt: skip
    assert code == 0
    job = json.loads((out / JOB_FILE).read_text())["settings"]
    assert job["mode"] == mode and job["precision"] == "float32"
    return {name: read_image(out / f"{name}.tiff").pixels for name in NAMES}


@pytest.fixture(scope="module")
def cpu_outputs(inputs, tmp_path_factory):
    """The CPU job's outputs per mode, made once per module: the cpu variant's own job, which the
    cuda variants reuse (made here where a cuda variant runs first or alone)."""
    cache: dict[str, dict] = {}

    def get(mode: str) -> dict[str, np.ndarray]:
        if mode not in cache:
            cache[mode] = enhance(inputs, tmp_path_factory.mktemp(f"cpu_{mode}"), "cpu", mode)
        return cache[mode]

    get.cache = cache
    return get


@pytest.mark.parametrize("mode", ["spine", "full"])
@pytest.mark.parametrize("device", DEVICES)
def test_an_enhance_job_on_the_device_gives_the_cpu_jobs_outputs(tmp_path, inputs, cpu_outputs, device, mode,
                                                                 no_tf32, capsys):  # fmt: skip
    got = enhance(inputs, tmp_path / "out", device, mode)
    assert "2 done, 0 skipped, 0 failed" in capsys.readouterr().out
    if device == "cpu":  # the reference (it was run a second time, to be compared with itself)
        cpu_outputs.cache.setdefault(mode, got)
    want = cpu_outputs(mode)
    for name in NAMES:
        original = read_image(inputs / f"{name}.png").pixels
        out, ref = got[name], want[name]
        assert out.shape == original.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
        assert np.abs(out - original).max() > 0.05  # enhanced, not passed through
        if device == "cpu":
            continue
        diff = np.abs(out.astype(np.float64) - ref)
        print(f"{mode} {name}: {device} vs cpu, max {diff.max():.2e}, mean {diff.mean():.2e}")
        assert diff.max() <= MAX_DIFF and diff.mean() <= MEAN_DIFF, name
