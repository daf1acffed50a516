"""The paper's statistics: outlier removal (union, paired) and the Wilcoxon test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from xvertfast.eval.stats import Z_LIMIT, describe, outlier_mask, paired_clean, significance_mark, wilcoxon_p


def test_outlier_mask_flags_values_beyond_the_band(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(10, 1, 200)
    v[[3, 50]] = [30.0, -15.0]
    mask = outlier_mask(v)
    mean, std = v.mean(), v.std(ddof=1)
    np.testing.assert_array_equal(mask, np.abs(v - mean) > Z_LIMIT * std)
    assert mask[3] and mask[50]
    assert outlier_mask([1.0, math.nan, 1.0]).tolist() == [False, True, False]
    assert not outlier_mask([5.0, 5.0, 5.0]).any()  # zero spread: nothing is an outlier


def test_paired_clean_removes_the_union_from_both():
    a = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.02, 0.98, 9.0])  # outlier at 9
    b = np.array([2.0, -7.0, 2.1, 1.9, 2.0, 2.05, 1.95, 2.0, 2.02, 1.98])  # outlier at 1
    ca, cb = paired_clean(a, b)
    assert len(ca) == len(cb) == 8
    assert 9.0 not in ca and -7.0 not in cb and 1.1 not in ca  # the pair of b's outlier went too
    with pytest.raises(ValueError, match="same length"):
        paired_clean(a, b[:3])


def test_wilcoxon_matches_scipy_and_handles_degenerate_cases(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, 30)
    b = a + 0.8 + rng.normal(0, 0.3, 30)
    assert wilcoxon_p(a, b) == pytest.approx(wilcoxon(a, b).pvalue)
    assert wilcoxon_p(a, b) < 0.05
    assert math.isnan(wilcoxon_p(a, a))  # no differences: no test
    assert math.isnan(wilcoxon_p([1.0], [2.0]))


def test_describe_and_marks():
    n, mean, std = describe([1.0, 2.0, 3.0, math.nan])
    assert (n, mean, std) == (3, 2.0, 1.0)
    assert describe([])[0] == 0
    assert [significance_mark(p) for p in (0.001, 0.03, 0.2, math.nan)] == ["**", "*", "", ""]
