"""One network stage at inference: the folded form the CPU backend runs vs the stage as trained.

    pytest bench/test_bench_stage.py --benchmark-only

The shipped default model's first stage (width 16) on two 512 x 512 tiles, the pair of spine
ROIs of one image (XVF_BENCH_SMALL=1: 128^2). The eager stage in NCHW is the reference;
both run in the same process on the same inputs.
"""

from __future__ import annotations

import os

import pytest
import torch

from tests.conftest import stage_with_statistics
from xvertfast.model import DEFAULT_MODEL_DIR, load_model
from xvertfast.model.folded import fold_stage

SMALL = os.environ.get("XVF_BENCH_SMALL") == "1"
SIZE = 128 if SMALL else 512


@pytest.fixture(scope="module")
def stage_and_tiles():
    stage = load_model("default").stages[0] if os.path.isdir(DEFAULT_MODEL_DIR) else stage_with_statistics(16, 4)
    gen = torch.Generator().manual_seed(0)
    xp = torch.rand(2, 1, SIZE, SIZE, generator=gen)
    y = torch.randn(2, 1, SIZE, SIZE, generator=gen) * 0.05
    return stage.eval(), xp, y


@pytest.mark.parametrize("form", ["folded", "eager_reference"])
def test_stage_forward(benchmark, stage_and_tiles, form):
    stage, xp, y = stage_and_tiles
    run = fold_stage(stage) if form == "folded" else stage
    benchmark.group = f"stage forward, 2 x {SIZE}^2"
    with torch.inference_mode():
        out = benchmark(run, xp, y)
        torch.testing.assert_close(out, stage(xp, y), rtol=1e-5, atol=2e-6)
