"""Blending: the FFT blur of the low-frequency gap and the blend on the tiles' region only give what the
direct Gaussian filter and the blend on planes of the whole image gave."""

from __future__ import annotations

import math

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


def _blend_on_whole_planes(enh: Enhancer, prep, tiles, brightness: str) -> np.ndarray:
    """compose's blend as the module docstring gives it, on planes of the whole image."""
    frac = enhancer_module.FEATHER if enh.mode == "spine" else enhancer_module.FULL_OVERLAP / 2
    weight, acc, outs = np.zeros(prep.pixels.shape), np.zeros(prep.pixels.shape), []
    for box, inside in zip(prep.boxes, prep.inside):
        h, w = box.bottom - box.top, box.right - box.left
        wt = np.outer(enhancer_module._ramp(h, math.ceil(frac * h), inside[0], inside[2]),
                      enhancer_module._ramp(w, math.ceil(frac * w), inside[1], inside[3]))  # fmt: skip
        weight[box.top : box.bottom, box.left : box.right] += wt
        outs.append(wt)
    rest = np.clip(1.0 - weight, 0.0, None)
    for box, wt, tile in zip(prep.boxes, outs, tiles):
        (h, w), where = wt.shape, (slice(box.top, box.bottom), slice(box.left, box.right))
        out = enhancer_module._resize(tile[None], (h, w))[0, 0].numpy().astype(np.float64)
        if brightness == "original" or enh.mode == "spine":
            share = 1.0 if brightness == "original" else rest[where]
            out = out + share * enh._low_frequency_gap(prep.pixels[where], out, math.ceil(frac * max(h, w)))
        acc[where] += wt * out
    return np.clip((acc + rest * prep.pixels) / np.maximum(weight, 1.0), 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("mode", ["spine", "full"])
@pytest.mark.parametrize("brightness", ["network", "original"])
def test_compose_on_the_tiles_region_only_gives_the_whole_image_blend(seed, mode, brightness):
    # the planes cover the boxes' bounding region only; outside it the output is the original, as
    # where no tile weighs on whole planes (also where the given pixels stray a little outside [0, 1])
    enh = Enhancer(tiny_model(seed), device="cpu", backend="torch", mode=mode)
    enh.tile = TILE
    image = chest_like(seed, 360, 300)
    image[0, :4] = (-5e-4, 1 + 5e-4, 0.0, 1.0)  # within PIXEL_RANGE_SLACK: taken, and clipped on output
    prep = enh.prepare(image)
    tiles = enh.run_tiles(prep.xp, prep.y)
    got = enh.compose(prep, tiles, brightness)
    assert got.dtype == np.float32 and np.array_equal(got, _blend_on_whole_planes(enh, prep, tiles, brightness))
