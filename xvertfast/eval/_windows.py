"""The normalised 1-D Gaussian window both SSIM-style metrics (TMQI, BRISQUE) filter with, separably."""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_taps"]


def gaussian_taps(size: int, sigma: float) -> np.ndarray:
    """``size`` taps of a Gaussian of std ``sigma`` centred on the window, summing to 1 (MATLAB fspecial's
    2-D window is the outer product of these)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x * x) / (2 * sigma**2))
    return g / g.sum()
