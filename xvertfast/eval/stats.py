"""The paper's statistics (xvertnet section IV-D): z-score outlier removal and Wilcoxon tests.

For a metric and a pair of methods compared on the same ROIs, the outliers of
each method (values outside mean +/- 1.96 standard deviations of that method)
are found separately and their union is removed from both, so that the test
stays paired. The Wilcoxon signed-rank test (SciPy, two-sided) is then run on
the remaining pairs. Summaries are given both with and without the removal.

The protocol's pairs are ROIs, two per image, which are not independent samples (one patient,
exposure and processing; on 1024-row images the ROIs overlap): their p-values overstate the
evidence. :func:`image_means` gives the same test its image-level pairs: per image, the mean of
its ROIs kept by the same removal (an image with one ROI removed counts by the other).

The test's variant is fixed here rather than left to SciPy's defaults, which have moved
between releases: zero differences are dropped (``zero_method="wilcox"``); the p-value is
exact up to :data:`EXACT_MAX_PAIRS` nonzero differences, tied ones included (counted over
the 2^n sign patterns of their midranks), else the normal approximation with tie correction
and no continuity correction. (The approximation on a few tied pairs is far too small: five
equal differences gave p = 0.025 where no sign pattern can give less than 2/32.)

What a paper reports beside the test: :func:`holm` adjusts a family of p-values for multiple
tests, and :func:`hodges_lehmann` estimates the paired difference with the confidence interval
that goes with the signed-rank test (the test inverted), so that no seed or resampling is involved.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["Z_LIMIT", "EXACT_MAX_PAIRS", "outlier_mask", "paired_clean", "image_means", "differences",
           "wilcoxon_p", "holm", "hodges_lehmann", "describe", "significance_mark"]

#: Half-width of the kept band, in standard deviations (95% of a normal distribution).
Z_LIMIT = 1.96
#: Up to this many nonzero differences the Wilcoxon p-value is exact.
EXACT_MAX_PAIRS = 50
#: Confidence of the interval around the Hodges-Lehmann difference the report gives: fixed at 95%,
#: not a setting, as summary.csv's ``ci95_*`` columns, the report's headings and the guide say 95%.
_CONFIDENCE = 0.95
#: Up to this many differences every Walsh average is formed (n(n+1)/2 of them: 2 million at 2000);
#: beyond, the few order statistics needed are found by counting, the same values either way.
_WALSH_DIRECT_MAX = 2000


def outlier_mask(values) -> np.ndarray:
    """True where a value lies outside mean +/- Z_LIMIT sample std, the n - 1 one (NaNs count as
    outliers): the convention the report's sd is given in, said there and in the guide."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    out = ~finite
    if finite.sum() >= 2:
        mean, std = v[finite].mean(), v[finite].std(ddof=1)
        if std > 0:
            out |= finite & (np.abs(v - mean) > Z_LIMIT * std)
    return out


def paired_clean(a, b) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` without the union of their outliers (see the module docstring)."""
    a, b = _paired(a, b)
    keep = ~(outlier_mask(a) | outlier_mask(b))
    return a[keep], b[keep]


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.shape} and {b.shape}")
    return a, b


def image_means(a, b, images, clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the means of ``a`` and ``b`` over its ROIs (``images[i]``: pair i's image),
    in order of first appearance: the pairs to test by image.

    The ROIs averaged are those both methods have a value on, and with ``clean`` those
    :func:`paired_clean` keeps (found over all ROIs, as for the ROI-level test): an image with
    one ROI removed counts by the other, one with none left is left out."""
    a, b = _paired(a, b)
    if len(images) != a.size:
        raise ValueError(f"{len(images)} image names for {a.size} pairs")
    keep = ~(outlier_mask(a) | outlier_mask(b)) if clean else np.isfinite(a) & np.isfinite(b)
    index: dict = {}
    codes = np.array([index.setdefault(image, len(index)) for image in images], dtype=np.int64)
    counts = np.bincount(codes[keep], minlength=len(index))
    sums = [np.bincount(codes[keep], weights=v[keep], minlength=len(index)) for v in (a, b)]
    has = counts > 0
    return sums[0][has] / counts[has], sums[1][has] / counts[has]


def differences(a, b) -> np.ndarray:
    """The nonzero differences ``a - b`` of the pairs where both are finite: what the test ranks
    (its sample size, which a pair count including equal pairs overstates). ValueError where ``a``
    and ``b`` are not pairs (one value against many was broadcast, or raised NumPy's IndexError)."""
    a, b = _paired(a, b)
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    return d[d != 0]


def wilcoxon_p(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples; NaN when it cannot be computed
    (fewer than 2 pairs that differ: zero differences are dropped)."""
    from scipy.stats import wilcoxon

    d = differences(a, b)
    if d.size < 2:  # (one pair that differs gave p = 1, a test that could not have said anything)
        return math.nan
    if d.size <= EXACT_MAX_PAIRS:
        return _exact_p(d)
    test = wilcoxon(d, zero_method="wilcox", correction=False, alternative="two-sided", method="approx")
    return float(test.pvalue)


def _rank_sum_counts(ranks) -> np.ndarray:
    """How many of the 2^n sign patterns give each signed-rank sum of these whole ``ranks``
    (dynamic programming; float64 counts are exact up to 2^53 patterns): the exact test and the
    exact interval take the same law."""
    counts = np.zeros(int(np.sum(ranks)) + 1)
    counts[0] = 1.0
    for r in ranks:
        counts[r:] = counts[r:] + counts[:-r]
    return counts


def _exact_p(d: np.ndarray) -> float:
    """Exact two-sided p of nonzero differences ``d``: the signed-rank sum's distribution over
    the 2^n equally likely sign patterns of these ranks (midranks where |d| ties, which SciPy's
    exact method does not take), counted by dynamic programming on twice the ranks."""
    from scipy.stats import rankdata

    ranks2 = np.rint(2 * rankdata(np.abs(d))).astype(np.int64)  # midranks are whole or halves
    counts = _rank_sum_counts(ranks2)
    t = int(ranks2[d > 0].sum())
    return float(min(1.0, 2 * min(counts[: t + 1].sum(), counts[t:].sum()) / 2.0**d.size))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values, in their order: the i-th smallest of m
    becomes max over j <= i of min(1, (m - j + 1) p_(j)). It keeps the chance of any false finding in
    the family under the level without assuming the tests independent (the metrics of one ROI are
    not). A NaN is no test: it stays NaN and is not counted in m."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (order.size - rank) * p[k]))
        adjusted[k] = running
    return adjusted


def hodges_lehmann(a, b, confidence: float = _CONFIDENCE) -> tuple[float, float, float]:
    """(estimate, low, high) of the paired difference ``a - b``, over the pairs where both are finite.

    The estimate is the Hodges-Lehmann one that goes with the signed-rank test: the median of the
    n(n+1)/2 Walsh averages (d_i + d_j) / 2, i <= j. The interval is their order statistics k and
    n(n+1)/2 + 1 - k, k - 1 the largest signed-rank sum whose two-sided p stays under 1 -
    ``confidence``: the shifts the test would not reject, so it leaves out 0 exactly where
    :func:`wilcoxon_p` is below 0.05 (for differences without zeros or ties; the interval counts
    every pair, a zero difference too, and takes the differences untied).

    The rank sum's null law switches where :func:`wilcoxon_p`'s does, on the nonzero differences
    the test ranks: those of d - shift, the tests the interval inverts, are all n pairs (at a shift
    not equal to a difference, none is zero), so it is counted exactly up to
    :data:`EXACT_MAX_PAIRS` pairs, else it is the normal approximation without continuity
    correction, as the test's. (At shift 0 the test drops the zero differences: 51 pairs one of
    them zero get an exact p and an approximate interval.) With the exact law and continuous
    differences (no ties, no zeros) the coverage is at least ``confidence`` (the law is discrete:
    0.969 at 6 pairs, 0.951 at 10); with the normal approximation it is about ``confidence``;
    ties and zeros make it approximate too. NaN where undefined: no pair for the estimate; for the
    interval, too few pairs to reach ``confidence`` at all (5 or fewer at 95%: 2/2^5 > 0.05).
    ValueError where ``confidence`` is not strictly between 0 and 1 (95 for 95% gave that NaN)."""
    from scipy.stats import norm

    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"hodges_lehmann: confidence must be a number between 0 and 1 (0.95 for 95%), got "
                         f"{confidence!r}")  # fmt: skip
    a, b = _paired(a, b)
    keep = np.isfinite(a) & np.isfinite(b)
    d = np.sort(a[keep] - b[keep])
    n = d.size
    if n == 0:
        return math.nan, math.nan, math.nan
    walsh = n * (n + 1) // 2
    alpha = 1.0 - confidence
    if n <= EXACT_MAX_PAIRS:
        counts = _rank_sum_counts(range(1, n + 1))  # the signed-rank sum's law for ranks 1..n
        below = np.flatnonzero(np.cumsum(counts) / 2.0**n <= alpha / 2)
        outside = int(below[-1]) if below.size else -1  # the largest sum the test rejects
    else:
        spread = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
        outside = math.floor(walsh / 2.0 - norm.ppf(1.0 - alpha / 2) * spread)
    ranks = [(walsh + 1) // 2, walsh // 2 + 1]  # the median's (one rank twice where walsh is odd)
    if outside >= 0:
        ranks += [outside + 1, walsh - outside]
    found = _walsh_order_statistics(d, ranks)
    estimate = 0.5 * (found[0] + found[1])
    return (estimate, found[2], found[3]) if outside >= 0 else (estimate, math.nan, math.nan)


def _walsh_order_statistics(d: np.ndarray, ranks: list[int], direct_max: int = _WALSH_DIRECT_MAX) -> list[float]:
    """The Walsh averages of sorted ``d`` at ``ranks`` (1 = the smallest). Up to ``direct_max``
    values, by forming them all; beyond (2 million averages a metric and method at 2000 images,
    hundreds of millions on an archive), each by counting the pairs whose sum d_i + d_j is at most
    s (O(n log n) a count): a bisection on s brings it near, then it steps to the actual pair sum,
    so that both ways give the same float (a median of 0 is 0, not 1e-12 beside it)."""
    n = d.size
    if n <= direct_max:
        sums = np.concatenate([d[i] + d[i:] for i in range(n)])
        picked = np.partition(sums, [r - 1 for r in ranks])
        return [float(picked[r - 1] / 2) for r in ranks]
    if d[0] == d[-1]:
        return [float(d[0])] * len(ranks)
    starts = np.arange(n)

    def first_above(s: float) -> np.ndarray:
        """Per i, the first j >= i with d_i + d_j > s, as the sum rounds (n where none is): the
        search on s - d_i can miss by a rounding, which the steps over whole runs of ties mend."""
        at = np.maximum(np.searchsorted(d, s - d, side="right"), starts)
        while True:
            up = at < n
            up[up] = d[up] + d[at[up]] <= s
            if not up.any():
                break
            at[up] = np.searchsorted(d, d[at[up]], side="right")
        while True:
            down = at > starts
            down[down] = d[down] + d[at[down] - 1] > s
            if not down.any():
                return at
            at[down] = np.maximum(np.searchsorted(d, d[at[down] - 1], side="left"), starts[down])

    def pairs_up_to(s: float) -> int:
        return int((first_above(s) - starts).sum())

    span = float(d[-1] - d[0])
    found = []
    for rank in ranks:
        low, high = 2 * float(d[0]) - span, 2 * float(d[-1])  # none, then all pairs up to them
        while high - low > 1e-12 * span:
            middle = 0.5 * (low + high)
            if middle in (low, high):
                break
            if pairs_up_to(middle) >= rank:
                high = middle
            else:
                low = middle
        while True:  # fewer than rank pairs are up to low: the answer is the next pair sum above it
            at = first_above(low)
            has = at < n
            low = float((d[has] + d[at[has]]).min())
            if pairs_up_to(low) >= rank:
                break
        found.append(low / 2)
    return found


def describe(values) -> tuple[int, float, float]:
    """(n, mean, sample std) of the finite values; NaNs where undefined."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0, math.nan, math.nan
    return int(v.size), float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan


def significance_mark(p: float) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, else nothing."""
    if not p == p:
        return ""
    return "**" if p < 0.01 else "*" if p < 0.05 else ""
