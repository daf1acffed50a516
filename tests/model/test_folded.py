"""The folded inference form of a stage computes what the stage computes."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import stage_with_statistics
from xvertfast.model import XVertNetStage, load_model
from xvertfast.model.folded import FoldedStage, fold_stage
from xvertfast.model.stage import UPSAMPLING


def trained_like(width: int, depth: int, dtype=torch.float32, upsample: str = "bilinear") -> XVertNetStage:
    return stage_with_statistics(width, depth, dtype, upsample=upsample)


@pytest.mark.parametrize("upsample", UPSAMPLING)
@pytest.mark.parametrize("width,depth", [(4, 1), (4, 2), (8, 3), (6, 4)])
@pytest.mark.parametrize("hw", [(37, 53), (64, 64), (9, 17), (1, 1)])
def test_folded_equals_the_stage(seed, width, depth, hw, upsample):
    stage = trained_like(width, depth, upsample=upsample)
    xp, y = torch.rand(3, 1, *hw), torch.randn(3, 1, *hw) * 0.1
    with torch.no_grad():
        expected = stage(xp, y)
        got = fold_stage(stage)(xp, y)
    assert got.shape == expected.shape and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("upsample", UPSAMPLING)
def test_folded_float64_agrees_to_double_rounding(seed, upsample):
    stage = trained_like(4, 3, torch.float64, upsample)
    xp, y = torch.rand(2, 1, 40, 24, dtype=torch.float64), torch.randn(2, 1, 40, 24, dtype=torch.float64) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(fold_stage(stage)(xp, y), stage(xp, y), rtol=1e-12, atol=1e-13)


def test_folded_converts_inputs_to_its_dtype_as_the_stage_does(seed):
    # a float64 input to a float32 folded stage was torch's "expected scalar type Double but found Float"
    stage = trained_like(4, 2)
    xp, y = torch.rand(2, 1, 24, 16, dtype=torch.float64), torch.randn(2, 1, 24, 16, dtype=torch.float64) * 0.1
    with torch.no_grad():
        got = fold_stage(stage)(xp, y)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, fold_stage(stage)(xp.float(), y.float()), rtol=0, atol=0)
    with pytest.raises(TypeError, match="^FoldedStage: xp holds torch.uint8 values"):
        fold_stage(stage)((xp * 255).byte(), y)


def test_folded_default_model_on_a_tile(seed):
    model = load_model("default")
    xp, y = torch.rand(2, 1, 128, 128), torch.randn(2, 1, 128, 128) * 0.05
    for stage in model.stages:
        with torch.no_grad():
            torch.testing.assert_close(fold_stage(stage)(xp, y), stage(xp, y), rtol=1e-5, atol=2e-6)


def test_folding_leaves_the_stage_alone_and_needs_no_gradients(seed):
    stage = trained_like(4, 2).train()
    before = {k: v.clone() for k, v in stage.state_dict().items()}
    folded = fold_stage(stage)
    assert all(torch.equal(before[k], v) for k, v in stage.state_dict().items())
    assert all(m.training for m in stage.modules())  # not switched to eval mode either
    assert isinstance(folded, FoldedStage) and not any(p.requires_grad for p in folded.parameters())
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        folded(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))


def test_torch_backend_runs_the_folded_stage_on_the_cpu(seed):
    from xvertfast.infer.backends import TorchBackend
    from xvertfast.model import XVertNet

    model = XVertNet([trained_like(4, 2), trained_like(4, 2)])
    backend = TorchBackend(model, torch.device("cpu"))
    xp, y = torch.rand(2, 1, 32, 32), torch.randn(2, 1, 32, 32) * 0.1
    for k in range(2):
        out = backend.run_stage(k, xp, y)
        assert isinstance(backend._stage(k), FoldedStage)
        with torch.no_grad():
            torch.testing.assert_close(out, model.stages[k](xp, y), rtol=1e-5, atol=2e-6)
