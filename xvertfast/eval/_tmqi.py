"""TMQI: structural fidelity to the reference and statistical naturalness of the test image.

H. Yeganeh and Z. Wang, "Objective quality assessment of tone-mapped images",
IEEE Trans. Image Processing 22(2):657-667, 2013. Written from the paper and
the parameters of shared/metrics/SPEC.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import ndtr

from xvertfast.eval._windows import gaussian_taps

__all__ = [
    "MIN_SIDE",
    "TmqiScores",
    "structural_fidelity",
    "statistical_naturalness",
    "stretch_reference",
    "tmqi_core",
]

A, ALPHA, BETA = 0.8012, 0.3046, 0.7088  #: Q = A S^ALPHA + (1 - A) N^BETA
LEVEL_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LEVEL_FREQUENCIES = (16.0, 8.0, 4.0, 2.0, 1.0)  #: cycles/degree the CSF is evaluated at, finest first
WINDOW, WINDOW_SIGMA = 11, 1.5
C1, C2 = 0.01, 10.0
REFERENCE_PEAK = 2.0**32 - 1  #: the reference is stretched to [0, 2^32 - 1]
BLOCK = 11  #: block size of the contrast statistic
BRIGHTNESS_MEAN, BRIGHTNESS_STD = 115.94, 27.99
CONTRAST_SCALE, CONTRAST_A, CONTRAST_B = 64.29, 4.4, 10.1  #: Beta law of the mean block std / 64.29

#: Smallest side for which the coarsest level still holds one 11x11 window (ceil(n / 16) >= 11).
MIN_SIDE = (WINDOW - 1) * 2 ** (len(LEVEL_WEIGHTS) - 1) + 1


class TmqiScores(NamedTuple):
    """Q and its parts: S (structural fidelity), N (naturalness), the per-level fidelities."""

    q: float
    s: float
    n: float
    s_local: tuple[float, ...]


_TAPS = gaussian_taps(WINDOW, WINDOW_SIGMA)


def _local_mean(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted 11x11 mean on the 'valid' region (the separable form of the 2-D window)."""
    half = WINDOW // 2
    rows = correlate1d(x, _TAPS, axis=0)[half:-half]
    return correlate1d(rows, _TAPS, axis=1)[:, half:-half]


def _visibility(sigma: np.ndarray, frequency: float) -> np.ndarray:
    """Probability that local contrast ``sigma`` is seen at this frequency (CSF-tuned normal CDF)."""
    csf = 100.0 * 2.6 * (0.0192 + 0.114 * frequency) * math.exp(-((0.114 * frequency) ** 1.1))
    threshold = 128.0 / (1.4 * csf)
    return ndtr((sigma - threshold) / (threshold / 3.0))


def _level_fidelity(ref: np.ndarray, test: np.ndarray, frequency: float) -> float:
    mu_r, mu_t = _local_mean(ref), _local_mean(test)
    var_r = np.maximum(_local_mean(ref * ref) - mu_r * mu_r, 0.0)
    var_t = np.maximum(_local_mean(test * test) - mu_t * mu_t, 0.0)
    cov = _local_mean(ref * test) - mu_r * mu_t
    sigma_r, sigma_t = np.sqrt(var_r), np.sqrt(var_t)
    seen_r, seen_t = _visibility(sigma_r, frequency), _visibility(sigma_t, frequency)
    contrast = (2.0 * seen_r * seen_t + C1) / (seen_r * seen_r + seen_t * seen_t + C1)
    structure = (cov + C2) / (sigma_r * sigma_t + C2)
    return float(np.mean(contrast * structure))


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2 mean anchored at each pixel (last row/column repeated), then every second pixel."""
    padded = np.pad(x, ((0, 1), (0, 1)), mode="edge")
    pairs = padded[:-1] + padded[1:]
    return 0.25 * (pairs[:, :-1] + pairs[:, 1:])[::2, ::2]


def structural_fidelity(ref: np.ndarray, test: np.ndarray) -> tuple[float, tuple[float, ...]]:
    """S = prod s_l^w_l over the 5-level pyramid; a negative s_l (anti-correlated) counts as 0."""
    s_local = []
    for level, frequency in enumerate(LEVEL_FREQUENCIES):
        if level:
            ref, test = _halve(ref), _halve(test)
        s_local.append(_level_fidelity(ref, test, frequency))
    s = math.prod(max(s_l, 0.0) ** w for s_l, w in zip(s_local, LEVEL_WEIGHTS))
    return s, tuple(s_local)


def _mean_block_std(x: np.ndarray) -> float:
    """Pixel-weighted mean of the std (N-1) of the 11x11 blocks, zero-padded bottom/right.

    Each pixel of the image carries the std of its (padded) block, so border
    blocks count in proportion to the image pixels they hold.
    """
    h, w = x.shape
    rows, cols = -(-h // BLOCK), -(-w // BLOCK)
    padded = np.zeros((rows * BLOCK, cols * BLOCK))
    padded[:h, :w] = x
    blocks = padded.reshape(rows, BLOCK, cols, BLOCK).std(axis=(1, 3), ddof=1)
    row_pixels = np.minimum(BLOCK, h - BLOCK * np.arange(rows))
    col_pixels = np.minimum(BLOCK, w - BLOCK * np.arange(cols))
    return float(row_pixels @ blocks @ col_pixels / (h * w))


def statistical_naturalness(test: np.ndarray) -> float:
    """N = brightness likelihood x contrast likelihood, each relative to its mode (so N <= 1)."""
    brightness = math.exp(-((test.mean() - BRIGHTNESS_MEAN) ** 2) / (2 * BRIGHTNESS_STD**2))
    x = _mean_block_std(test) / CONTRAST_SCALE
    if not 0.0 <= x <= 1.0:  # outside the Beta law's support
        return 0.0
    mode = (CONTRAST_A - 1) / (CONTRAST_A + CONTRAST_B - 2)
    contrast = (x / mode) ** (CONTRAST_A - 1) * ((1 - x) / (1 - mode)) ** (CONTRAST_B - 1)
    return brightness * contrast


def stretch_reference(reference: np.ndarray) -> np.ndarray:
    """The reference on [0, 2^32 - 1]: ``round((2^32 - 1) / (max - min)) * (L - min)``.

    The factor, not the product, is rounded, as SPEC.md writes it. A constant
    reference has no range to stretch (the authors' code divides by zero there): it stays
    constant, and :func:`tmqi_core` gives it no structural fidelity. Where the rounded factor
    would be 0 (a range over 2 (2^32 - 1): int64 or large float references) or beyond float64
    (a range under 2e-299, or one float64 cannot hold), the reference is stretched unrounded,
    ``(2^32 - 1) (L - min) / (max - min)``: the rounded factor made it all 0, scored as a flat
    field without a word, or raised OverflowError.
    """
    lo, hi = float(reference.min()), float(reference.max())
    if hi == lo:
        return np.zeros(reference.shape)
    with np.errstate(over="ignore"):
        span = np.float64(hi) - np.float64(lo)
        factor = REFERENCE_PEAK / span
    if math.isfinite(factor) and factor >= 0.5:
        return math.floor(factor + 0.5) * (reference - lo)
    if not math.isfinite(span):  # (halved, as metrics._stretch_to_8bit halves such a span)
        reference, lo, hi = reference / 2, lo / 2, hi / 2
    return REFERENCE_PEAK * ((reference - lo) / (hi - lo))


def tmqi_core(reference: np.ndarray, test: np.ndarray) -> TmqiScores:
    """TMQI of float64 ``test`` against float64 ``reference`` (same shape, both sides >= MIN_SIDE).

    A constant reference has no structure to be faithful to: S and Q are NaN, as the authors'
    code gives (goldens: the constant pair), so such a ROI drops out of the statistics instead of
    scoring a fidelity measured against a flat field; N, of the test alone, is still computed.
    """
    n = statistical_naturalness(test)
    if float(reference.min()) == float(reference.max()):
        return TmqiScores(math.nan, math.nan, n, (math.nan,) * len(LEVEL_WEIGHTS))
    s, s_local = structural_fidelity(stretch_reference(reference), test)
    return TmqiScores(A * s**ALPHA + (1 - A) * n**BETA, s, n, s_local)
