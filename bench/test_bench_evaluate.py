"""Evaluating a folder end to end: methods, metrics and report, on shared/data/cxr-dev.

    pytest bench/test_bench_evaluate.py --benchmark-only

Times ``xvertfast.eval.evaluate`` (identity, CLAHE, Farbman; entropy, Tenengrad,
LPC-SI, TMQI) on the whole folder (XVF_BENCH_SMALL=1: two images), and reports
the share of the time spent per method and in the metrics (benchmark extra_info).
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
