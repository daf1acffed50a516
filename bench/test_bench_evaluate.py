"""Evaluating a folder end to end: methods, metrics and report, on shared/data/cxr-dev.

    pytest bench/test_bench_evaluate.py --benchmark-only

Times ``xvertfast.eval.evaluate`` (identity, CLAHE, Farbman; entropy, Tenengrad,
LPC-SI, TMQI) on the whole folder (XVF_BENCH_SMALL=1: two images), and reports
the share of the time spent per method and in the metrics (benchmark extra_info).
Also times both XVertNet methods of the default model on two NIH images, sharing one
network run per image as ``evaluate`` does, beside one run per method (the reference).
"""

from __future__ import annotations

import glob
import os

import pytest

from bench.wls_inputs import DATA
from xvertfast.eval.evaluate import evaluate

SMALL = os.environ.get("XVF_BENCH_SMALL") == "1"


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
        for img, spine in zip(images, spines):
            for method in methods:
                method(img, spine)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
