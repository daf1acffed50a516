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
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Z_LIMIT", "EXACT_MAX_PAIRS", "outlier_mask", "paired_clean", "image_means", "differences", "wilcoxon_p",
           "describe", "significance_mark"]

#: Half-width of the kept band, in standard deviations (95% of a normal distribution).
Z_LIMIT = 1.96
#: Up to this many nonzero differences the Wilcoxon p-value is exact.
EXACT_MAX_PAIRS = 50


def outlier_mask(values) -> np.ndarray:
    """True where a value lies outside mean +/- Z_LIMIT sample std (NaNs count as outliers)."""
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
    (its sample size, which a pair count including equal pairs overstates)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
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


def _exact_p(d: np.ndarray) -> float:
    """Exact two-sided p of nonzero differences ``d``: the signed-rank sum's distribution over
    the 2^n equally likely sign patterns of these ranks (midranks where |d| ties, which SciPy's
    exact method does not take), counted by dynamic programming on twice the ranks."""
    from scipy.stats import rankdata

    ranks2 = np.rint(2 * rankdata(np.abs(d))).astype(np.int64)  # midranks are whole or halves
    counts = np.zeros(int(ranks2.sum()) + 1)  # float64 counts are exact up to 2^53 patterns
    counts[0] = 1.0
    for r in ranks2:
        counts[r:] = counts[r:] + counts[:-r]
    t = int(ranks2[d > 0].sum())
    return float(min(1.0, 2 * min(counts[: t + 1].sum(), counts[t:].sum()) / 2.0**d.size))


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
