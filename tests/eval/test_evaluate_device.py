"""``xvertfast evaluate --device cuda``: the xvertnet method scored on a device, against the CPU's scores.

The "cpu" variants run everywhere and hold the test's logic; the "cuda" variants are what
``tools/gpu_check.sh`` runs on a GPU. The shipped model is scored (a trained one: a random tiny
model's output is nearly flat and would hide any difference), with TF32 off (``no_tf32``).
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from PIL import Image

from tests.conftest import DEVICES
from tests.eval.test_evaluate import chest_like
from xvertfast.cli import main
from xvertfast.eval.evaluate import evaluate
from xvertfast.eval.journal import JOURNAL_FILE

METRICS = ("entropy", "tenengrad", "lpc_si")
#: Relative tolerance of a score, device run against CPU run, both fp32. The scores are of 8-bit ROIs
#: (round(255 x)): on the CPU, noise of 1e-4 on the shipped model's outputs moved them by <= 3e-3
#: relative (LPC-SI the most, then Tenengrad, entropy ~1e-5), noise of 1e-3 by <= 5e-3; the device's
#: outputs stay within 2e-3 of the CPU's (tests/infer/test_batch_device.py).
FP32_RTOL = 2e-2
#: The same for the CLI's default precision, bf16 on a GPU (fp32 on the CPU): bf16 moves the outputs by
#: ~1e-3 on average and <= 1e-2 (docs/guide/backends.md); not measured on scores here (no bf16 on this
#: CPU): 5e-2 is 10x what output noise of 1e-3 did.
AUTO_RTOL = 5e-2


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    for k in range(2):
        Image.fromarray(chest_like(k, 320, 300)).save(folder / f"img{k}.png")
    return folder


def scores(report) -> dict[tuple[str, str], dict[str, float]]:
    with open(report / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"xvertnet"}
    return {(r["file"].rsplit("/", 1)[-1], r["roi"]): {m: float(r[m]) for m in METRICS} for r in rows}


@pytest.fixture(scope="module")
def cpu_scores(images, tmp_path_factory):
    """The CPU run's scores, made once per module (the cuda variant reuses the cpu one's)."""
    out = tmp_path_factory.mktemp("cpu_report")
    evaluate([str(images)], str(out), ["xvertnet"], METRICS, pictures=1, progress=False, log=lambda m: None,
             device="cpu", precision="fp32", backend="torch")  # fmt: skip
    return scores(out)


def ran_on(report) -> dict:
    """What the journal records xvertnet ran on (device kind, precision, backend): what a rerun
    must find unchanged."""
    with open(report / JOURNAL_FILE) as f:
        return json.loads(f.readline())["settings"]["methods"][0]["runs"]


def check_close(got: dict, want: dict, rtol: float, what: str) -> None:
    assert got.keys() == want.keys() and len(got) == 4  # two images, two ROIs each
    for key, row in got.items():
        for metric, value in row.items():
            ref = want[key][metric]
            print(f"{what} {key} {metric}: {value:.6g}, cpu {ref:.6g}, relative {abs(value - ref) / abs(ref):.1e}")
            assert math.isfinite(value) and value == pytest.approx(ref, rel=rtol), (what, key, metric)


@pytest.mark.parametrize("device", DEVICES)
def test_evaluate_on_the_device_scores_as_the_cpu_does(tmp_path, images, cpu_scores, device, no_tf32, capsys):
    # the function the CLI calls, in fp32 (the CLI's default precision, auto, below)
    out = tmp_path / "fp32"
    run, paths = evaluate([str(images)], str(out), ["xvertnet"], METRICS, pictures=1, progress=False,
                          log=lambda m: None, device=device, precision="fp32", backend="torch")  # fmt: skip
    assert run.images == 2 and not run.failed and (out / "report.html").is_file()
    recorded = ran_on(out)
    assert recorded["device"] == device and recorded["precision"] == "float32"  # (backend: tensorrt where installed)
    check_close(scores(out), cpu_scores, FP32_RTOL, f"{device} fp32")
    # as a user runs it: --device, the precision its default (bf16 on a GPU)
    cli = tmp_path / "cli"
    assert main(["evaluate", str(images), "-o", str(cli), "--methods", "xvertnet", "--metrics", ",".join(METRICS),
                 "--device", device, "--pictures", "1", "-q"]) == 0  # fmt: skip
    assert "2 images evaluated" in capsys.readouterr().out
    # auto: fp32 on the CPU; bf16 on a GPU (fp16 on older ones, or where auto's backend is TensorRT)
    assert ran_on(cli)["device"] == device
    assert ran_on(cli)["precision"] in (("float32",) if device == "cpu" else ("bfloat16", "float16"))
    check_close(scores(cli), cpu_scores, AUTO_RTOL, f"{device} --device")
