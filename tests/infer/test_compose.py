"""Blending: the FFT blur of the low-frequency gap gives what scipy's direct Gaussian filter gave."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import xvertfast.infer.enhancer as enhancer_module
from xvertfast.infer import Enhancer
from tests.infer.test_enhance import TILE, chest_like, tiny_model


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (4, 4), (8, 3), (37, 61), (300, 513)])
@pytest.mark.parametrize("sigma", [1.0, 4.5, 32.0])
def test_gaussian_blur_is_ndimages_reflecting_gaussian_filter(seed, shape, sigma):
    # also where the kernel is longer than the image (reflected more than once)
    a = np.random.default_rng(seed).random(shape) - 0.5
    want = gaussian_filter(a, sigma, mode="reflect")
    np.testing.assert_allclose(enhancer_module._gaussian_blur(a, sigma), want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("mode", ["spine", "full"])
@pytest.mark.parametrize("brightness", ["network", "original"])
def test_compose_gives_what_the_direct_filter_gave(seed, monkeypatch, mode, brightness):
    enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode=mode)
    enh.tile = TILE
    prep = enh.prepare(chest_like(seed, 300, 280))
    tiles = enh.run_tiles(prep.xp, prep.y)
    fast = enh.compose(prep, tiles, brightness)
    monkeypatch.setattr(enhancer_module, "_gaussian_blur", lambda a, sigma: gaussian_filter(a, sigma, mode="reflect"))
    direct = enh.compose(prep, tiles, brightness)
    # float32 pixels: at most a last-bit rounding apart (the sums differ by ~1e-15)
    np.testing.assert_allclose(fast, direct, rtol=0, atol=6e-8)
    assert np.array_equal(np.round(fast.astype(np.float64) * 65535), np.round(direct.astype(np.float64) * 65535))
