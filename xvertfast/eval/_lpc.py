"""LPC-SI: sharpness from the local phase coherence of a log-Gabor bank.

R. Hassen, Z. Wang and M. M. A. Salama, "Image sharpness assessment based on
local phase coherence", IEEE Trans. Image Processing 22(7):2798-2810, 2013.
Written from the paper and the parameters of shared/metrics/SPEC.md: sharp
edges align the phases of the three scales (``phi1 - 3 phi2 + 2 phi3 = 0``),
blur breaks that alignment.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.fft

__all__ = ["lpc_si_core", "lpc_si_map"]

SCALES = (1.0, 1.5, 2.0)  #: centre wavelengths 4, 6 and 8 px
MIN_WAVELENGTH = 4.0
SIGMA_ON_F = 0.75  #: radial bandwidth of the log-Gabor filters
ORIENTATIONS = 8
THETA_SIGMA = math.pi / ORIENTATIONS / 1.5
LOWPASS_CUTOFF, LOWPASS_ORDER = 0.45, 15  #: keeps the finest scale off the corners of the spectrum
C = 2.0  #: regulariser of the energy-weighted average (absolute: 0..255 images)
BETA_K = 1e-4  #: decay of the rank weights: the index is the mean of the sharpest ~0.01 %


def _frequency_grid(n: int) -> np.ndarray:
    """Normalised frequencies in unshifted FFT order: [-1/2, 1/2) for even n, [-1/2, 1/2] for odd n."""
    if n % 2:
        axis = np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    else:
        axis = np.arange(-n / 2, n / 2) / n
    return np.fft.ifftshift(axis)


#: Largest filter bank kept between calls (two at most): the ROIs' banks (512 x 290: 28.5 MB; 1500 x 850,
#: a 3000-row image's: 245 MB), reused across methods and ROIs, saving a third to half of each score. A
#: whole radiograph's (4096 x 3328: 2.6 GB) is built one orientation at a time and not kept.
CACHED_BANK_BYTES = 256 * 2**20


def _orientation_filters(rows: int, cols: int):
    """Yields each orientation's log-Gabor filters [scale, H, W] in unshifted FFT order, DC 0."""
    y = _frequency_grid(rows)[:, None]
    x = _frequency_grid(cols)[None, :]
    radius = np.sqrt(x * x + y * y)
    theta = np.arctan2(-y, x)
    lowpass = 1.0 / (1.0 + (radius / LOWPASS_CUTOFF) ** (2 * LOWPASS_ORDER))
    radius[0, 0] = 1.0  # log(0) at DC; that coefficient is zeroed below
    radial = np.empty((len(SCALES), rows, cols))
    for s, scale in enumerate(SCALES):
        f0 = 1.0 / (MIN_WAVELENGTH * scale)
        radial[s] = np.exp(-(np.log(radius / f0) ** 2) / (2 * math.log(SIGMA_ON_F) ** 2)) * lowpass
        radial[s, 0, 0] = 0.0
    del radius, lowpass
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    del theta
    for o in range(ORIENTATIONS):
        angle = o * math.pi / ORIENTATIONS
        ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        yield radial * np.exp(-(np.arctan2(ds, dc) ** 2) / (2 * THETA_SIGMA**2))


@lru_cache(maxsize=2)
def _cached_bank(rows: int, cols: int) -> np.ndarray:
    bank = np.stack(list(_orientation_filters(rows, cols)))
    bank.flags.writeable = False
    return bank


def _filter_bank(rows: int, cols: int):
    """The filters [scale, H, W] of each orientation: kept for ROI-sized images, else built anew."""
    if ORIENTATIONS * len(SCALES) * rows * cols * 8 <= CACHED_BANK_BYTES:
        return _cached_bank(rows, cols)
    return _orientation_filters(rows, cols)


def lpc_si_map(image: np.ndarray, border: int) -> np.ndarray:
    """The LPC map ``sum_o c_o e_o / (sum_o e_o + C)`` of a float64 image, ``border`` px cropped.

    The energy threshold (mean + 2 std of the finest-scale magnitude) is taken over
    the cropped region: SPEC.md leaves that open, and only so do the goldens match.
    """
    bank = _filter_bank(*image.shape)
    spectrum = scipy.fft.fft2(image)
    rows, cols = image.shape
    inner = (slice(border, rows - border), slice(border, cols - border))
    weighted = np.zeros((rows - 2 * border, cols - 2 * border))
    energy_sum = np.zeros(weighted.shape)
    responses = np.empty((len(SCALES), rows, cols), dtype=complex)  # reused: one orientation's three scales
    for filters in bank:
        np.multiply(spectrum, filters, out=responses)
        m1, m2, m3 = scipy.fft.ifft2(responses, overwrite_x=True)[(slice(None), *inner)]
        energy = np.abs(m1)
        energy -= energy.mean() + 2.0 * energy.std(ddof=1)
        np.maximum(energy, 0.0, out=energy)
        energy_sum += energy
        # The coherence only counts where the thresholded energy is positive (a few % of pixels).
        active = energy > 0
        # Phase weights (1, -3, 2) for scales 1:1.5:2: angle(m1 m2^-3 m3^2) = angle(m1 conj(m2)^3 m3^2),
        # whose cosine is Re/|.| (no atan2 needed).
        m2c = np.conj(m2[active])
        product = m1[active] * (m2c * m2c * m2c) * np.square(m3[active])
        magnitude = np.abs(product)
        coherence = np.divide(product.real, magnitude, out=np.ones(magnitude.shape), where=magnitude > 0)
        weighted[active] += np.maximum(coherence, 0.0) * energy[active]
    return weighted / (energy_sum + C)


def lpc_si_core(image: np.ndarray) -> float:
    """LPC-SI of a float64 image (at least 2x2): rank-weighted mean of the cropped LPC map."""
    values = lpc_si_map(image, border=math.floor(min(image.shape) / 16 + 0.5)).ravel()
    n = values.size  # >= 4: the border is 0 below 8 px
    weights = np.exp(-np.arange(n) / (n - 1) / BETA_K)
    return float(np.dot(weights, np.sort(values)[::-1]) / weights.sum())
