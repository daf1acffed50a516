"""BRISQUE: natural-scene statistics of the MSCN coefficients, scored by the LIVE ε-SVR.

A. Mittal, A. K. Moorthy and A. C. Bovik, "No-reference image quality assessment
in the spatial domain", IEEE Trans. Image Processing 21(12):4695-4708, 2012.
The regression model is the LIVE release's (``brisque_live/``, with its
copyright NOTICE); it is read as plain text, and nothing in it is executed.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np
from scipy.ndimage import correlate1d
from scipy.sparse import csr_matrix
from scipy.special import gamma

from xvertfast.eval._windows import gaussian_taps

__all__ = ["brisque_core", "brisque_features", "load_model"]

WINDOW, WINDOW_SIGMA = 7, 7 / 6
C = 1.0  #: stabiliser of the MSCN division
#: (row, column) circular shifts of the pairwise products: horizontal, vertical, both diagonals.
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
SHAPE_GRID = 0.2 + 0.001 * np.arange(9801)  #: candidate GGD/AGGD shapes 0.2:0.001:10
MODEL_DIR = "brisque_live"


class SvrModel(NamedTuple):
    """ε-SVR with an RBF kernel: ``f(x) = Σ coef_i exp(-gamma |x - sv_i|²) - rho``."""

    gamma: float
    rho: float
    coef: np.ndarray  # [n_sv]
    support_vectors: np.ndarray  # [n_sv, n_features]
    feature_min: np.ndarray  # allrange: feature i is mapped [min, max] -> [lower, upper]
    feature_max: np.ndarray
    lower: float
    upper: float


def _parse_model(text: str) -> tuple[float, float, np.ndarray, np.ndarray]:
    """gamma, rho, coefficients and dense support vectors of a libsvm RBF ε-SVR model file."""
    lines = text.splitlines()
    header_end = lines.index("SV")
    header = dict(line.split(maxsplit=1) for line in lines[:header_end])
    if header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"BRISQUE model: expected an RBF epsilon_svr, got {header}")
    rows = [line.split() for line in lines[header_end + 1 :] if line.strip()]
    coef = np.array([float(row[0]) for row in rows])
    n_features = max(int(item.split(":")[0]) for row in rows for item in row[1:])
    support_vectors = np.zeros((len(rows), n_features))  # libsvm leaves zero features out
    for i, row in enumerate(rows):
        for item in row[1:]:
            index, value = item.split(":")
            support_vectors[i, int(index) - 1] = float(value)
    if len(rows) != int(header["total_sv"]):
        raise ValueError(f"BRISQUE model: {len(rows)} support vectors, header says {header['total_sv']}")
    return float(header["gamma"]), float(header["rho"]), coef, support_vectors


def _parse_range(text: str, n_features: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Per-feature [min, max] and the target [lower, upper] of an svm-scale range file."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines[0] != ["x"]:
        raise ValueError("BRISQUE range file: expected an 'x' (feature scaling) header")
    lower, upper = float(lines[1][0]), float(lines[1][1])
    feature_min, feature_max = np.zeros(n_features), np.zeros(n_features)
    for index, lo, hi in lines[2:]:
        feature_min[int(index) - 1], feature_max[int(index) - 1] = float(lo), float(hi)
    return feature_min, feature_max, lower, upper


@lru_cache(maxsize=1)
def load_model() -> SvrModel:
    """The LIVE model shipped with the package (parsed once)."""
    folder = resources.files("xvertfast.eval").joinpath(MODEL_DIR)
    gamma_, rho, coef, support_vectors = _parse_model(folder.joinpath("allmodel").read_text("ascii"))
    scaling = _parse_range(folder.joinpath("allrange").read_text("ascii"), support_vectors.shape[1])
    return SvrModel(gamma_, rho, coef, support_vectors, *scaling)


_TAPS = gaussian_taps(WINDOW, WINDOW_SIGMA)


def _local_mean(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted 7x7 mean, same size, zeros outside the image (MATLAB filter2 'same')."""
    rows = correlate1d(x, _TAPS, axis=0, mode="constant")
    return correlate1d(rows, _TAPS, axis=1, mode="constant")


def _mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients."""
    mu = _local_mean(image)
    sigma = np.sqrt(np.abs(_local_mean(image * image) - mu * mu))
    return (image - mu) / (sigma + C)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel, a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=16)
def _halving_matrix(n: int) -> csr_matrix:
    """[ceil(n/2), n] weights of MATLAB's antialiased bicubic ``imresize(., 0.5)`` along one axis.

    Sparse (at most 10 taps a row): a dense one held half an image's worth of float64 per size.
    """
    scale, width = 0.5, 4.0 / 0.5  # the kernel is stretched by 1/scale to antialias
    out = np.arange(1, math.ceil(n * scale) + 1)
    centre = out / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(centre - width / 2)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    weights = scale * _cubic(scale * (centre[:, None] - taps))
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n), np.arange(n - 1, -1, -1)])  # symmetric borders
    index = mirror[(taps.astype(np.int64) - 1) % (2 * n)]
    rows = np.repeat(np.arange(out.size), taps.shape[1])
    matrix = csr_matrix((weights.ravel(), (rows, index.ravel())), shape=(out.size, n))  # sums mirrored taps
    matrix.eliminate_zeros()  # the kernel's zero end taps, which the products then skip
    for part in (matrix.data, matrix.indices, matrix.indptr):
        part.flags.writeable = False
    return matrix


def _halve(image: np.ndarray) -> np.ndarray:
    """MATLAB's ``imresize(image, 0.5)``: rows, then columns, as the dense products summed them."""
    rows = _halving_matrix(image.shape[0]) @ image
    return (_halving_matrix(image.shape[1]) @ rows.T).T


@lru_cache(maxsize=1)
def _shape_ratios() -> tuple[np.ndarray, np.ndarray]:
    """E[x²]/E[|x|]² of a GGD, and its inverse, for every candidate shape."""
    ggd = gamma(1 / SHAPE_GRID) * gamma(3 / SHAPE_GRID) / gamma(2 / SHAPE_GRID) ** 2
    return ggd, 1 / ggd


def _ggd_fit(x: np.ndarray) -> tuple[float, float]:
    """Shape and variance of a zero-mean generalised Gaussian, by moment matching on the grid."""
    variance = float(np.mean(x * x))
    if variance == 0.0:  # all zero: no distribution to fit
        return math.nan, math.nan
    ratio = variance / float(np.mean(np.abs(x))) ** 2
    return float(SHAPE_GRID[np.argmin(np.abs(ratio - _shape_ratios()[0]))]), variance


def _aggd_fit(x: np.ndarray) -> tuple[float, float, float, float]:
    """Shape, mean, left and right variances of an asymmetric generalised Gaussian."""
    negative, positive = x[x < 0], x[x > 0]
    if negative.size == 0 or positive.size == 0:  # one-sided (e.g. a constant image): undefined
        return math.nan, math.nan, math.nan, math.nan
    left_std = math.sqrt(np.mean(negative * negative))
    right_std = math.sqrt(np.mean(positive * positive))
    g = left_std / right_std
    r = float(np.mean(np.abs(x))) ** 2 / float(np.mean(x * x))
    r_norm = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    shape = float(SHAPE_GRID[np.argmin((_shape_ratios()[1] - r_norm) ** 2)])
    mean = (right_std - left_std) * gamma(2 / shape) / gamma(1 / shape) * math.sqrt(gamma(1 / shape) / gamma(3 / shape))
    return shape, mean, left_std**2, right_std**2


def brisque_features(image: np.ndarray) -> np.ndarray:
    """The 36 BRISQUE features of a float64 0..255 image: 18 at full and 18 at half resolution.

    A product map with no negative or no positive value (e.g. of a constant image)
    has no AGGD fit: its four features are NaN, as in the reference code.
    """
    features = []
    for scale in range(2):
        if scale:
            image = _halve(image)
        mscn = _mscn(image)
        features.extend(_ggd_fit(mscn))
        for shift in SHIFTS:
            features.extend(_aggd_fit(mscn * np.roll(mscn, shift, axis=(0, 1))))
    return np.array(features)


def _as_printed(values: np.ndarray, spec: str) -> np.ndarray:
    return np.array([float(format(v, spec)) for v in values])


def brisque_core(image: np.ndarray) -> float:
    """BRISQUE score of a float64 0..255 image; NaN where a fit is undefined (see brisque_features)."""
    model = load_model()
    # The release passes the features through text files: printed with "%f", scaled by
    # svm-scale and printed with "%g". The model was trained on values so rounded.
    features = _as_printed(brisque_features(image), "f")
    span = model.feature_max - model.feature_min
    scaled = _as_printed(model.lower + (model.upper - model.lower) * (features - model.feature_min) / span, "g")
    distances = np.sum((model.support_vectors - scaled) ** 2, axis=1)
    return float(model.coef @ np.exp(-model.gamma * distances) - model.rho)
