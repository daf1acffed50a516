"""One network stage at inference: the folded form the CPU backend runs vs the stage as trained.

    pytest bench/test_bench_stage.py --benchmark-only

The shipped default model's first stage (width 16) on two 512 x 512 tiles, the pair of spine
ROIs of one image (XVF_BENCH_SMALL=1: 128^2). The eager stage in NCHW is the reference;
all forms run in the same process on the same inputs. ``folded_bf16`` is the folded stage
under CPU bf16 autocast, as ``--precision bf16`` runs it (the torch backend's autocast; fast
only with AMX); it is skipped where oneDNN has no bf16. No allocator setting here (the CLI's
is ``xvertfast.runtime.tune_allocator``).
"""

from __future__ import annotations

import os

import pytest
import torch

from bench import SMALL
from tests.conftest import stage_with_statistics
from xvertfast.model import DEFAULT_MODEL_DIR, load_model
from xvertfast.model.folded import fold_stage

SIZE = 128 if SMALL else 512


@pytest.fixture(scope="module")
def stage_and_tiles():
    stage = load_model("default").stages[0] if os.path.isdir(DEFAULT_MODEL_DIR) else stage_with_statistics(16, 4)
    gen = torch.Generator().manual_seed(0)
    xp = torch.rand(2, 1, SIZE, SIZE, generator=gen)
    y = torch.randn(2, 1, SIZE, SIZE, generator=gen) * 0.05
    return stage.eval(), xp, y


def bf16(run):
    def autocast_run(xp, y):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return run(xp, y).float()

    return autocast_run


@pytest.mark.parametrize("form", ["folded", "folded_bf16", "eager_reference"])
def test_stage_forward(benchmark, stage_and_tiles, form):
    stage, xp, y = stage_and_tiles
    if form == "folded_bf16":
        from xvertfast.infer.backends import cpu_bf16_support

        support = cpu_bf16_support()
        if support == "no":
            pytest.skip("oneDNN has no bf16 on this CPU")
        benchmark.extra_info["cpu_bf16"] = support
    run = stage if form == "eager_reference" else fold_stage(stage)
    run = bf16(run) if form == "folded_bf16" else run
    benchmark.group = f"stage forward, 2 x {SIZE}^2"
    with torch.inference_mode():
        out = benchmark(run, xp, y)
        want = stage(xp, y)
        # bf16 rounding: docs/guide/backends.md's bound for the whole network, ~1e-2 at most
        if form == "folded_bf16":
            diff = (out - want).abs()
            benchmark.extra_info["bf16_mean_abs_diff"] = diff.mean().item()
            benchmark.extra_info["bf16_max_abs_diff"] = diff.max().item()
            assert diff.mean().item() <= 2e-3 and diff.max().item() <= 3e-2
        else:
            torch.testing.assert_close(out, want, rtol=1e-5, atol=2e-6)
