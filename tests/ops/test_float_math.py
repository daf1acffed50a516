"""The WLS setup's float32 log and exp (float_math.h) against float64 libm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xvertfast._extension import extension, has_extension

pytestmark = pytest.mark.skipif(not has_extension(), reason="compiled extension not built")


def float_math(values, fn: str) -> torch.Tensor:
    return extension().float_math(torch.as_tensor(values, dtype=torch.float32), fn)


def ulps(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """|got - want| in units of the float32 spacing at want (want in float64)."""
    w = want.float()
    spacing = (torch.nextafter(w, torch.full_like(w, float("inf"))) - w).double()
    return (got.double() - want).abs() / spacing


def test_log_within_two_ulps(seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([
        np.exp(rng.uniform(-87.0, 88.0, 200_000)),  # every normal exponent
        rng.uniform(1e-4, 1.0001, 200_000),  # the log guide's arguments
        rng.uniform(0.70, 1.42, 200_000),  # around the reduction's split at sqrt(2)
        [1.0, 2.0, 0.5, np.sqrt(2.0), 1e-4, 3.0e38, 1.17549435e-38],
    ]).astype(np.float32)
    x = torch.from_numpy(x)
    assert ulps(float_math(x, "log"), torch.log(x.double())).max() <= 2.0
    assert float_math([1.0], "log").item() == 0.0


def test_log_of_subnormals_and_zero():
    x = torch.tensor([1e-40, 1e-45, 5e-39], dtype=torch.float32)
    got = float_math(x, "log").double()
    torch.testing.assert_close(got, torch.log(x.double()), rtol=1e-6, atol=0)
    # zero: finite (about the log of the smallest subnormal); callers guard it themselves
    zero = float_math([0.0], "log").item()
    assert np.isfinite(zero) and -105.0 < zero < -103.0


def test_exp_within_two_ulps(seed):
    rng = np.random.default_rng(seed)
    v = np.concatenate([
        rng.uniform(-87.0, 88.0, 400_000),
        rng.uniform(-0.5, 0.5, 200_000),  # the reduced range itself
        [0.0, 1.0, -1.0, np.log(2.0), -np.log(2.0) / 2],
    ]).astype(np.float32)
    v = torch.from_numpy(v)
    assert ulps(float_math(v, "exp"), torch.exp(v.double())).max() <= 2.0
    assert float_math([0.0], "exp").item() == 1.0


def test_exp_clamps_instead_of_overflowing():
    got = float_math([-1000.0, -87.0, 88.0, 1000.0], "exp")
    assert torch.isfinite(got).all()
    assert got[0] == got[1] and got[2] == got[3]
    assert got[0] > 0


def test_bad_arguments():
    with pytest.raises(RuntimeError, match="'log' or 'exp'"):
        float_math([1.0], "sin")
    with pytest.raises(RuntimeError, match="float32"):
        extension().float_math(torch.ones(3, dtype=torch.float64), "log")
