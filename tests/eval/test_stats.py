"""The paper's statistics: outlier removal (union, paired) and the Wilcoxon test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import wilcoxon

from xvertfast.eval.stats import (EXACT_MAX_PAIRS, Z_LIMIT, _walsh_order_statistics, describe, hodges_lehmann, holm,
                                  image_means, outlier_mask, paired_clean, significance_mark, wilcoxon_p)


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


def _exact_p(d: np.ndarray) -> float:
    """Two-sided exact signed-rank p of distinct nonzero differences, by counting the 2^n sign
    patterns' rank sums (dynamic programming): an independent check of the variant used."""
    n = d.size
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    t_plus = int(ranks[d > 0].sum())
    counts = np.zeros(n * (n + 1) // 2 + 1, dtype=object)
    counts[0] = 1
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    total = 2**n
    low, high = sum(counts[: t_plus + 1]) / total, sum(counts[t_plus:]) / total
    return min(1.0, 2 * min(low, high))


def _approx_p(d: np.ndarray) -> float:
    """Normal approximation with tie correction, zeros dropped, no continuity correction."""
    from scipy.stats import norm, rankdata

    d = d[d != 0]
    n = d.size
    ranks = rankdata(np.abs(d))
    t_plus = ranks[d > 0].sum()
    _, ties = np.unique(np.abs(d), return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - (ties**3 - ties).sum() / 48
    return float(2 * norm.sf(abs(t_plus - n * (n + 1) / 4) / math.sqrt(var)))


def test_wilcoxon_variant_is_pinned(seed):
    # hand values: n distinct differences of one sign give the exact p = 2 / 2^n
    assert wilcoxon_p(np.arange(1.0, 7.0), np.zeros(6)) == pytest.approx(0.03125, rel=1e-12)
    assert wilcoxon_p(np.zeros(5), np.arange(1.0, 6.0)) == pytest.approx(0.0625, rel=1e-12)
    rng = np.random.default_rng(seed)
    d = rng.normal(0.3, 1, 40)  # exact up to 50 pairs (SciPy's "auto" has moved between releases)
    assert wilcoxon_p(d, np.zeros(40)) == pytest.approx(_exact_p(d), rel=1e-9)
    d = rng.normal(0.3, 1, 60)
    assert wilcoxon_p(d, np.zeros(60)) == pytest.approx(_approx_p(d), rel=1e-9)
    tied = np.round(rng.normal(0.5, 1, 70), 1)  # ties and zeros past 50 pairs: the approximation, zeros dropped
    tied[:3] = 0.0
    assert wilcoxon_p(tied, np.zeros(70)) == pytest.approx(_approx_p(tied), rel=1e-9)


def _brute_force_p(d: np.ndarray) -> float:
    """Two-sided p of the signed midrank sum over every one of the 2^n sign patterns, zeros dropped."""
    import itertools

    from scipy.stats import rankdata

    d = d[d != 0]
    ranks = rankdata(np.abs(d))
    t = ranks[d > 0].sum()
    sums = np.array([np.dot(signs, ranks) for signs in itertools.product((0, 1), repeat=d.size)])
    return min(1.0, 2 * min(np.mean(sums <= t + 1e-9), np.mean(sums >= t - 1e-9)))


def test_wilcoxon_is_exact_with_ties_and_zeros_on_few_pairs(seed):
    # five equal differences: no sign pattern gives less than 2/32, but the normal approximation
    # said 0.025 and marked it significant; zeros dropped, five distinct ones likewise (was 0.043)
    assert wilcoxon_p(np.ones(5), np.zeros(5)) == pytest.approx(0.0625, rel=1e-12)
    assert wilcoxon_p(np.array([0, 0, 1, 2, 3, 4, 5.0]), np.zeros(7)) == pytest.approx(0.0625, rel=1e-12)
    assert math.isnan(wilcoxon_p(np.array([0, 1.0]), np.zeros(2)))  # one nonzero difference: no test
    rng = np.random.default_rng(seed)
    for n in (3, 6, 9, 12):
        d = rng.integers(-3, 5, n).astype(np.float64)  # ties and zeros
        if np.count_nonzero(d) >= 2:
            assert wilcoxon_p(d, np.zeros(n)) == pytest.approx(_brute_force_p(d), rel=1e-12), d
    assert significance_mark(wilcoxon_p(np.ones(5), np.zeros(5))) == ""


def test_wilcoxon_matches_scipy_and_handles_degenerate_cases(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, 30)
    b = a + 0.8 + rng.normal(0, 0.3, 30)
    assert wilcoxon_p(a, b) == pytest.approx(wilcoxon(a, b, method="exact").pvalue)
    assert wilcoxon_p(a, b) < 0.05
    assert math.isnan(wilcoxon_p(a, a))  # no differences: no test
    assert math.isnan(wilcoxon_p([1.0], [2.0]))
    assert math.isnan(wilcoxon_p([1.0, 3.0], [2.0, 3.0]))  # one pair that differs: p was 1, not n/a


def test_describe_and_marks():
    n, mean, std = describe([1.0, 2.0, 3.0, math.nan])
    assert (n, mean, std) == (3, 2.0, 1.0)
    assert describe([])[0] == 0
    assert [significance_mark(p) for p in (0.001, 0.03, 0.2, math.nan)] == ["**", "*", "", ""]


def _means_by_image(a, b, images, keep):
    """The per-image means written out plainly, for the parity test."""
    groups: dict = {}
    for image, x, y, k in zip(images, a, b, keep):
        if k:
            groups.setdefault(image, []).append((x, y))
    return (np.array([np.mean([x for x, _ in g]) for g in groups.values()]),
            np.array([np.mean([y for _, y in g]) for g in groups.values()]))  # fmt: skip


@pytest.mark.parametrize("images", [12, 40, 90])  # exact p (up to 50 images), and the normal approximation
def test_the_test_by_image_is_scipys_wilcoxon_on_the_image_means(seed, images):
    rng = np.random.default_rng(seed + images)
    names = [f"img{i:03d}.png" for i in range(images) for _ in range(2)]  # two ROIs an image
    effect = rng.normal(0, 1, images).repeat(2)  # the image's share: its two ROIs are not independent
    b = 5.0 + effect + 0.3 * rng.standard_normal(2 * images)
    a = b + 0.2 + 0.5 * rng.standard_normal(2 * images)
    a[[1, 7]] = [40.0, -30.0]  # outliers of a, in the lower ROIs of img000 and img003
    b[[8, 9]] = [60.0, 60.0]  # both ROIs of img004: that image is left out
    a[5] = math.nan  # a metric undefined on one ROI
    keep = ~(outlier_mask(a) | outlier_mask(b))
    assert keep[0] and not keep[1] and not (keep[8] or keep[9])
    for clean, kept in ((True, keep), (False, np.isfinite(a) & np.isfinite(b))):
        ma, mb = image_means(a, b, names, clean=clean)
        ea, eb = _means_by_image(a, b, names, kept)
        np.testing.assert_allclose(ma, ea, rtol=1e-14)
        np.testing.assert_allclose(mb, eb, rtol=1e-14)
        assert ma.size == images - clean  # img004 has no ROI left after the removal
        method = "exact" if images <= 50 else "approx"
        expected = wilcoxon(ea, eb, zero_method="wilcox", correction=False, method=method).pvalue
        assert wilcoxon_p(ma, mb) == pytest.approx(expected, rel=1e-9)
    ma, mb = image_means(a, b, names)  # an image with one ROI removed counts by the other
    assert (ma[0], mb[0]) == (a[0], b[0]) and (ma[3], mb[3]) == (a[6], b[6])


def test_image_means_keep_an_images_pairs_together():
    # an image whose ROIs score the same for both methods differs by exactly 0 (dropped by the test)
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.5, 4.0])
    ma, mb = image_means(a, b, ["x", "x", "y", "y"], clean=False)
    assert (ma - mb).tolist() == [0.0, -0.25]
    with pytest.raises(ValueError, match="3 image names for 4 pairs"):
        image_means(a, b, ["x", "x", "y"])


def test_holm_is_the_hand_computation():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to the 0.06 before
    # it: step-down); the NaN is no test, so the family has 4, not 5
    adjusted = holm([0.01, 0.04, 0.03, 0.005, math.nan])
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert math.isnan(adjusted[4])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # 2 x 0.5 = 1, and no p above 1
    np.testing.assert_allclose(holm([0.2, 0.2, 0.01]), [0.4, 0.4, 0.03])  # ties keep their order and value
    assert holm([]).size == 0 and math.isnan(holm([math.nan])[0])


def _walsh(d: np.ndarray) -> np.ndarray:
    return np.array([(d[i] + d[j]) / 2 for i in range(d.size) for j in range(i, d.size)])


def _rejects(d: np.ndarray, shift: float) -> bool:
    """SciPy's own two-sided signed-rank test of d - shift at 0.05, the variant the report uses:
    exact up to 50 differences, else the normal approximation without continuity correction."""
    method = {"method": "exact"} if d.size <= 50 else {"method": "approx", "correction": False}
    return wilcoxon(d - shift, zero_method="wilcox", **method).pvalue < 0.05


# fixed differences (drawn once, rounded, no ties): 8 (exact), 50 (exact, its last size) and 64 (approximation)
_FIXED = {n: np.round(np.random.default_rng(20261206 + n).normal(0.4, 1.0, n), 6) for n in (8, 50, 64)}


@pytest.mark.parametrize("n", sorted(_FIXED))
def test_the_hodges_lehmann_interval_is_scipys_signed_rank_test_inverted(n):
    """The estimate is the median of the Walsh averages; the interval's ends are the shifts where
    SciPy's test of d - shift starts to reject at 0.05: just inside them it does not, just outside it
    does (the Walsh averages of these 6-decimal differences are multiples of 5e-7, far apart against 1e-9)."""
    d = _FIXED[n]
    b = np.linspace(-1.0, 1.0, n)
    estimate, low, high = hodges_lehmann(d + b, b)  # paired: a - b
    assert estimate == pytest.approx(np.median(_walsh(d)), rel=1e-12)
    assert max(np.min(np.abs(_walsh(d) - end)) for end in (low, high)) < 1e-12  # its ends are Walsh averages
    eps = 1e-9
    assert not _rejects(d, low + eps) and not _rejects(d, high - eps)
    assert _rejects(d, low - eps) and _rejects(d, high + eps)
    assert (low > 0 or high < 0) == (wilcoxon_p(d, np.zeros(n)) < 0.05)  # 0 outside it where the test says so


@pytest.mark.parametrize("n", [50, 51])
def test_the_interval_switches_to_the_approximation_where_the_test_it_inverts_does(n):
    """At the switch, one difference zero: the interval's ends are where this module's own test of
    d - shift starts to reject, exact at 50 differences and the approximation at 51 (d - shift has no
    zero there), though at shift 0 the test drops the zero and its p stays exact. At 90% (the level
    where the two laws part at 51: rank sum 486 exact, 487 approximate) so that a switch on the
    differences at 0, 50 of 51, fails it."""
    d = np.round(np.random.default_rng(20261207).normal(0.3, 1.0, n), 6)
    d[7] = 0.0
    assert np.unique(np.abs(d)).size == n  # no ties: the test and the interval rank the same values
    _, low, high = hodges_lehmann(d, np.zeros(n), confidence=0.9)
    eps = 1e-9

    def rejects(shift: float) -> bool:
        return wilcoxon_p(d - shift, np.zeros(n)) < 0.1

    assert not rejects(low + eps) and not rejects(high - eps)
    assert rejects(low - eps) and rejects(high + eps)
    assert n - 1 <= EXACT_MAX_PAIRS  # at shift 0: 49 or 50 differ, an exact p either way
    assert wilcoxon_p(d, np.zeros(n)) == pytest.approx(wilcoxon(d[d != 0], method="exact").pvalue, rel=1e-9)


def test_the_hodges_lehmann_interval_needs_six_pairs_and_skips_missing_ones():
    d = np.array([0.3, -0.1, 0.7, 1.2, 0.5, 0.9])
    # 6 pairs: the 95% interval is the extreme Walsh averages (1/64 each side < 0.025 < 2/64), min and max of d
    estimate, low, high = hodges_lehmann(d, np.zeros(6))
    assert (low, high) == (-0.1, 1.2) and estimate == pytest.approx(np.median(_walsh(d)))
    estimate, low, high = hodges_lehmann(d[:5], np.zeros(5))  # 2/32 > 0.05: no 95% interval
    assert estimate == pytest.approx(np.median(_walsh(d[:5]))) and math.isnan(low) and math.isnan(high)
    with_nan = hodges_lehmann(np.append(d, math.nan), np.append(np.zeros(6), 1.0))
    assert with_nan == hodges_lehmann(d, np.zeros(6))
    assert all(math.isnan(x) for x in hodges_lehmann([math.nan], [1.0]))


def _formed_sums(d: np.ndarray) -> np.ndarray:
    """Every pair sum d_i + d_j, i <= j, of sorted ``d``, sorted: the listing the counting must match."""
    return np.sort(np.concatenate([d[i] + d[i:] for i in range(d.size)]))


def test_the_walsh_averages_of_many_pairs_are_found_by_counting_as_formed(seed):
    # beyond 2000 pairs they are not all formed (hundreds of millions on an archive): the counting
    # search gives the same floats as the formed averages, not values 1e-12 beside them
    rng = np.random.default_rng(seed)
    d = np.sort(np.round(rng.normal(0.1, 1, 300), 3))  # ties too
    ranks = [1, 17, 22575, 22576, 45150]
    formed = _walsh_order_statistics(d, ranks)
    assert formed == [float(s / 2) for s in _formed_sums(d)[np.array(ranks) - 1]]
    assert _walsh_order_statistics(d, ranks, direct_max=10) == formed
    assert _walsh_order_statistics(np.full(5, 2.5), [1, 15], direct_max=2) == [2.5, 2.5]


@pytest.mark.parametrize("shape", ["symmetric", "a third zero", "unrounded", "few values"])
def test_the_counted_walsh_averages_are_the_listed_ones_exactly(shape, seed):
    """Every rank the report asks for (the median's two and an interval's ends) and a spread of
    others: the counting search gives the listed pair sum itself, 0 where the answer is 0 (symmetric
    differences; a third of them zero), whatever the sums' rounding (17-digit data) or the ties."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0.0, 1.0, 150), 3)
    d = {"symmetric": np.concatenate([x, -x]),
         "a third zero": np.concatenate([x[:100], -x[:100], np.zeros(100)]),
         "unrounded": rng.normal(0.2, 1.0, 300) * math.pi,
         "few values": rng.choice([-0.3, 0.1, 0.7, 2.2], 300)}[shape]
    d = np.sort(d)
    listed = _formed_sums(d)
    ranks = sorted({1, listed.size, (listed.size + 1) // 2, listed.size // 2 + 1, *rng.integers(1, listed.size, 40)})
    counted = _walsh_order_statistics(d, ranks, direct_max=10)
    assert counted == [float(s / 2) for s in listed[np.array(ranks) - 1]]
    if shape != "unrounded" and shape != "few values":
        assert counted[ranks.index((listed.size + 1) // 2)] == 0.0


def test_hodges_lehmann_beyond_2000_pairs_is_0_where_the_walsh_averages_say_0():
    """3000 pairs, a third of them equal, the rest symmetric about 0: the median of the Walsh averages and
    its interval's ends are all 0 (over a million zero averages at the middle), not 2e-13 printed as an
    interval leaving 0 out."""
    x = np.round(np.random.default_rng(20261206).normal(0.0, 1.0, 1000), 3)
    a = np.concatenate([x, -x, np.full(1000, 0.25)])
    b = np.concatenate([np.zeros(2000), np.full(1000, 0.25)])
    assert hodges_lehmann(a, b) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("b", [[0.0], 0.0, [0.0, 1.0]], ids=["one value", "a number", "two values"])
def test_the_test_refuses_samples_of_other_lengths_as_not_paired(b):
    """wilcoxon_p and differences refuse, as paired_clean and hodges_lehmann do, samples that are not
    pairs: they raised NumPy's IndexError ('boolean index did not match') or its broadcasting error."""
    from xvertfast.eval.stats import differences

    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    for call in (wilcoxon_p, differences):
        with pytest.raises(ValueError, match="paired values must have the same length"):
            call(a, b)


@pytest.mark.parametrize("confidence", [95, 1.0, 0.0, -0.5, float("nan"), "0.95", True])
def test_hodges_lehmann_refuses_a_confidence_that_is_no_share(confidence):
    """A confidence of 95 (meant as 95%) gave the estimate with a NaN interval, as if too few pairs
    could reach it, and 0 an interval of width 0: neither said the argument was wrong."""
    with pytest.raises(ValueError, match=r"hodges_lehmann: confidence must be a number between 0 and 1 \(0.95 for 95%\)"):
        hodges_lehmann(list(range(1, 11)), [0.0] * 10, confidence=confidence)
