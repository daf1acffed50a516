"""Evaluating a folder end to end: methods, metrics and report, on shared/data/cxr-dev.

    pytest bench/test_bench_evaluate.py --benchmark-only

Times ``xvertfast.eval.evaluate`` (identity, CLAHE, Farbman; entropy, Tenengrad,
LPC-SI, TMQI) on the whole folder (XVF_BENCH_SMALL=1: two images), and reports
the share of the time spent per method and in the metrics (benchmark extra_info).
Also times both XVertNet methods of the default model on two NIH images, sharing one
network run per image as ``evaluate`` does, beside one run per method (the reference).

Outside the timing, the results are checked: the scores of the first two images equal the
metric functions called directly on the methods' outputs at the evaluation ROIs, and the
shared network's outputs equal those of one network per method.
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import pytest

from bench import SMALL
from bench.wls_inputs import DATA
from xvertfast.eval.evaluate import evaluate



def test_evaluate_cxr_dev(benchmark, tmp_path):
    files = sorted(glob.glob(os.path.join(DATA, "*.png")))
    if not files:
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    files = files[:2] if SMALL else files
    benchmark.group = "evaluate"
    result = {}

    def run():
        run_, _ = evaluate(files, str(tmp_path / "report"), ["identity", "clahe", "farbman"], pictures=2, restart=True,
                           progress=False, log=lambda m: None)  # fmt: skip
        result["run"] = run_

    benchmark.pedantic(run, rounds=1, warmup_rounds=0)
    run_ = result["run"]
    assert run_.images == len(files) and not run_.failed
    benchmark.extra_info.update({"images": run_.images, **{f"seconds_{k}": round(v, 2) for k, v in run_.seconds.items()}})
    check_scores(run_, files[:2])


def direct_scores(path: str, methods: list[str], metrics: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    """{(roi, method): {metric: value}} of one image, the metric functions called on each method's
    output at the papers' evaluation ROIs (the protocol's 8-bit conversions), not through evaluate."""
    from xvertfast.eval import metrics as m
    from xvertfast.eval.baselines import get_method
    from xvertfast.eval.protocol import ROI_NAMES, to_8bit_original, to_8bit_output
    from xvertfast.io import read_image
    from xvertfast.preprocess import find_spine

    rad = read_image(path, warn=False)
    spine = find_spine(rad.pixels)
    functions = {"entropy": m.entropy, "tenengrad": m.tenengrad, "lpc_si": m.lpc_si, "brisque": m.brisque}
    scores = {}
    for name in methods:
        out = None if name == "identity" else get_method(name)[1](rad.pixels, spine)
        for roi, box in zip(ROI_NAMES, spine.eval_rois()):
            original = rad.values[box.top : box.bottom, box.left : box.right]
            test8 = (to_8bit_original(original, rad.bits_stored) if out is None
                     else to_8bit_output(out[box.top : box.bottom, box.left : box.right]))  # fmt: skip
            scores[roi, name] = {k: _score(lambda: m.tmqi(original, test8) if k == "tmqi" else functions[k](test8))
                                 for k in metrics}  # fmt: skip
    return scores


def _score(metric) -> float:
    """A metric's value, NaN where it refuses the ROI (TMQI under 161 px): the protocol's rule."""
    try:
        return float(metric())
    except ValueError:
        return math.nan


def check_scores(run_, files: list[str]) -> None:
    """The rows of ``files`` in ``run_`` hold the scores the metric functions give directly."""
    for path in files:
        rows = {(r["roi"], r["method"]): r for r in run_.rows if r["file"] == path}
        want = direct_scores(path, run_.methods, run_.metrics)
        assert rows.keys() == want.keys(), f"{path}: rows for {sorted(rows)}, expected {sorted(want)}"
        for key, values in want.items():
            for metric, value in values.items():
                got = rows[key][metric]
                assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value, rel=1e-9, abs=1e-12), (
                    f"{path} {key}: {metric} {got} in the evaluation, {value} directly")  # fmt: skip


@pytest.mark.parametrize("shared", [True, False], ids=["shared-network", "separate-networks"])
def test_both_xvertnet_methods(benchmark, shared):
    """xvertnet and xvertnet_original_brightness on the same images: one network run per image
    (what ``evaluate`` does) against one per method (the reference)."""
    from xvertfast.eval.baselines import get_method
    from xvertfast.io import read_image
    from xvertfast.preprocess import find_spine

    files = sorted(glob.glob(os.path.join(DATA, "nih_*.png")))[:2]
    if not files:
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    images = [read_image(f).pixels for f in files]
    spines = [find_spine(img) for img in images]
    networks = {} if shared else None
    methods = [get_method(name, networks, device="cpu")[1] for name in ("xvertnet", "xvertnet_original_brightness")]
    benchmark.group = "evaluate: both XVertNet methods, 2 NIH images"

    def run():
        return [method(img, spine) for img, spine in zip(images, spines) for method in methods]

    outputs = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    if shared:  # the shared network's outputs are those of one network per method
        separate = [get_method(name, None, device="cpu")[1] for name in ("xvertnet", "xvertnet_original_brightness")]
        wanted = [method(img, spine) for img, spine in zip(images, spines) for method in separate]
        for out, want in zip(outputs, wanted, strict=True):
            np.testing.assert_array_equal(out, want)
    else:
        assert len(outputs) == 4 and all(np.isfinite(out).all() for out in outputs)
