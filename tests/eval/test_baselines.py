"""Baselines: each is a whole-image [0, 1] -> [0, 1] function that does what its name says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from tests.preprocess.test_inputs import WIDE
from xvertfast.eval.baselines import clahe, farbman, get_method, identity


def low_contrast(seed: int, size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.45 + 0.05 * ndi.gaussian_filter(rng.random((size, size)), 2) * 10).astype(np.float32).clip(0, 1)


def high_frequency_energy(img: np.ndarray) -> float:
    return float(np.mean((img - ndi.gaussian_filter(img.astype(np.float64), 2)) ** 2))


def test_identity_is_a_copy(seed):
    x = low_contrast(seed)
    out = identity(x)
    np.testing.assert_array_equal(out, x)
    assert out is not x


def test_clahe_spreads_a_narrow_histogram(seed):
    x = low_contrast(seed)
    out = clahe(x)
    assert out.shape == x.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.percentile(out, 95) - np.percentile(out, 5) > 2 * (np.percentile(x, 95) - np.percentile(x, 5))


def test_clahe_leaves_a_constant_image_as_it_is():
    # scikit-image stretches its input over its own range first: every constant image came out white
    for value in (0.0, 0.3, 1.0):
        flat = np.full((64, 48), value, dtype=np.float32)
        np.testing.assert_array_equal(clahe(flat), flat)


def test_clahe_leaves_differences_finer_than_a_16_bit_level_as_they_are(seed):
    # 0.5 plus noise of 1e-7 (float32 rounding) came out black and white: scikit-image reads it in
    # 16-bit levels, 32767 and 32768 where the noise fell on either side of one, and stretched those
    rng = np.random.default_rng(seed)
    for base in (0.5, 0.3, 0.9):
        near = (base + 1e-7 * rng.standard_normal((64, 48))).astype(np.float32)
        assert near.min() < near.max()  # (float32 holds the noise at these levels)
        np.testing.assert_array_equal(clahe(near), near)
    # a difference of a 16-bit level or more is scikit-image's to stretch: two grey levels of an 8-bit
    # image come out spanning black to white, as equalize_adapthist gives them
    from skimage.exposure import equalize_adapthist

    two = np.where(rng.random((64, 48)) < 0.5, 100 / 255, 101 / 255).astype(np.float32)
    out = clahe(two)
    assert out.min() == 0 and out.max() == 1
    np.testing.assert_array_equal(out, equalize_adapthist(two, kernel_size=(8, 6), clip_limit=2 / 256, nbins=256))


def test_clahe_stretches_two_neighbouring_16_bit_levels_as_scikit_image_does(seed):
    # k / 65535 and (k + 1) / 65535 lie a little closer than 1 / 65535 in float32 (each rounded): such
    # an image was returned as it was, taken for noise finer than a level, though scikit-image (whose
    # behaviour clahe follows) stretches its two levels to black and white
    from skimage.exposure import equalize_adapthist
    from skimage.util import img_as_uint

    mask = np.random.default_rng(seed).random((64, 48)) < 0.5
    mask[0, 0], mask[0, 1] = True, False  # (both levels there, whatever the draw)
    for k in (0, 1000, 30000, 65534):
        two = np.where(mask, k / 65535, (k + 1) / 65535).astype(np.float32)
        out = clahe(two)
        assert out.min() == 0 and out.max() == 1, k
        np.testing.assert_array_equal(out, equalize_adapthist(two, kernel_size=(8, 6), clip_limit=2 / 256, nbins=256))
    # values less than a level apart that scikit-image reads as one 16-bit level are returned as they
    # are (its stretch over one level gives white), here 0.996 of a level apart, both read as k + 1
    one = np.where(mask, 1000.502 / 65535, 1001.498 / 65535).astype(np.float32)
    assert 0.995 < (float(one.max()) - float(one.min())) * 65535 < 1
    assert len(np.unique(img_as_uint(one))) == 1
    np.testing.assert_array_equal(clahe(one), one)


def test_farbman_with_unit_gains_gives_back_the_image(seed):
    x = low_contrast(seed)
    np.testing.assert_allclose(farbman(x, gains=(1.0, 1.0, 1.0)), x, atol=1e-5)  # the layers telescope


def test_farbman_boosts_detail(seed):
    x = low_contrast(seed)
    out = farbman(x)
    assert high_frequency_energy(out) > 2.0 * high_frequency_energy(x)
    assert out.min() >= 0.0 and out.max() <= 1.0
    with pytest.raises(ValueError, match="gains"):
        farbman(x, gains=(2.0,))


def test_pixels_off_the_unit_scale_are_refused_not_clipped(seed):
    # a raw 8- or 16-bit image (or its float copy) was clipped to [0, 1]: nearly all white, no error
    raw = (low_contrast(seed) * 255).astype(np.uint8)
    for method in (identity, clahe, farbman):
        for pixels in (raw, raw.astype(np.uint16), raw > 128):
            with pytest.raises(TypeError, match=rf"{method.__name__}: pixels must be floats in \[0, 1\].*got "
                                                rf"{pixels.dtype}"):  # fmt: skip
                method(pixels)
        with pytest.raises(ValueError, match=rf"{method.__name__}: pixels must lie in \[0, 1\], got values from"):
            method(raw.astype(np.float32))
        with pytest.raises(ValueError, match=rf"{method.__name__}: pixels must be \[H, W\] with H, W >= 1, got "
                                             r"shape \(0, 4\)"):  # fmt: skip
            method(np.zeros((0, 4), np.float32))  # (clahe: NumPy's "zero-size array to reduction operation")
        with pytest.raises(ValueError, match=r"got shape \(\)$"):  # a 0-d array was said to be of shape (1,)
            method(np.float32(0.5))
        # torch's "can't convert np.ndarray of type numpy.longdouble" (WIDE); complex was taken for integers
        for dtype in (np.complex64, object, *WIDE):
            with pytest.raises(TypeError, match=rf"{method.__name__}: pixels must be floats in \[0, 1\], got a NumPy "
                                                rf"array of {np.dtype(dtype)}"):  # fmt: skip
                method(raw.astype(dtype))


def test_a_tensor_that_requires_grad_is_taken(seed):
    # np.asarray refused it: "Can't call numpy() on Tensor that requires grad"
    import torch

    x = low_contrast(seed)
    for method in (identity, clahe):
        np.testing.assert_array_equal(method(torch.from_numpy(x).requires_grad_()), method(x))


@pytest.mark.parametrize("method, kwargs, said", [
    (clahe, {"tiles": 0}, r"clahe: tiles must be a whole number >= 1 .*got 0"),  # (was a ZeroDivisionError)
    (clahe, {"tiles": 2.5}, r"clahe: tiles must be a whole number >= 1 .*got 2.5"),
    (clahe, {"tiles": True}, r"clahe: tiles must be .*got True"),
    (clahe, {"clip": -1}, r"clahe: clip must be a finite number > 0 and <= 1, got -1"),  # (ran, as no limit)
    (clahe, {"clip": float("nan")}, r"clahe: clip must be .*got nan"),
    (clahe, {"clip": 3.0}, r"clahe: clip must be .*got 3.0"),
    (farbman, {"gains": (float("nan"), 1.0, 1.0)}, r"farbman: gains\[0\] must be a finite number, got nan"),
    (farbman, {"lambdas": (0.125, 0.0, 2.0)}, r"farbman: lambdas\[1\] must be a finite number > 0, got 0.0"),
    (farbman, {"lambdas": (2.0, 0.5, 0.125)}, r"farbman: lambdas must grow from level to level"),
    (farbman, {"lambdas": (), "gains": ()}, r"farbman: lambdas must be a sequence of one number or more"),
    (farbman, {"lambdas": 0.5, "gains": 2.0}, r"farbman: lambdas must be a sequence"),  # (was len()'s TypeError)
    (farbman, {"alpha": -1.0}, r"farbman: alpha must be a finite number > 0, got -1.0"),  # (was named wls's)
])  # fmt: skip
def test_parameters_out_of_range_are_refused_naming_the_argument(seed, method, kwargs, said):
    with pytest.raises(ValueError, match=f"^{said}"):
        method(low_contrast(seed, 32), **kwargs)


def test_parameters_in_range_are_taken(seed):
    x = low_contrast(seed, 32)
    assert clahe(x, tiles=np.int64(1), clip=1.0).shape == x.shape  # 1: no limit, plain adaptive equalisation
    np.testing.assert_allclose(farbman(x, lambdas=np.array([0.5]), gains=[1.0]), x, atol=1e-5)


def test_an_xvertnet_method_refuses_a_brightness_before_the_first_image():
    from xvertfast.eval.baselines import xvertnet_method

    with pytest.raises(ValueError, match=r"^xvertnet_method: brightness must be one of network, original, got 'bright'"):
        xvertnet_method(brightness="bright")


def test_bad_inputs_and_method_names():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        clahe(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        farbman(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match=r"unknown method 'gamma': .*xvertnet_original_brightness\[=MODEL\]"):
        get_method("gamma")
    with pytest.raises(ValueError, match="unknown method"):
        get_method("clahe=3")
    # 'xvertnet=$MODEL' with $MODEL unset scored the shipped model under the name of the user's, without a word
    for spec in ("xvertnet=", "mine:xvertnet_original_brightness="):
        with pytest.raises(ValueError, match=rf"^method '{spec}': nothing follows '=': give the model directory "
                                             r"\(leave out '=' for the shipped model\)$"):  # fmt: skip
            get_method(spec)
    with pytest.raises(ValueError, match=r"^method 'outputs=': nothing follows '=': give the folder of another tool's"):
        get_method("outputs=")
    assert get_method("farbman")[0] == "farbman"


def test_xvertnet_methods_of_one_model_share_the_network_run(seed, tmp_path):
    from tests.infer.test_enhance import TILE, chest_like, tiny_model
    from xvertfast.model import save_model
    from xvertfast.preprocess import find_spine

    model = save_model(tiny_model(seed), tmp_path / "m", extra={"training": {"config": {"roi_size": TILE}}})
    networks: dict = {}
    methods = dict(get_method(f"{name}={model}", networks, device="cpu")
                   for name in ("xvertnet", "xvertnet_original_brightness"))  # fmt: skip
    assert len(networks) == 1
    network = networks[str(model)]
    runs = []
    run_tiles = network.enhancer.run_tiles
    network.enhancer.run_tiles = lambda xp, y: runs.append(1) or run_tiles(xp, y)
    for k in range(2):  # two images, each through both methods
        img = chest_like(seed + k)
        spine = find_spine(img)
        shared = {name: method(img, spine) for name, method in methods.items()}
        alone = {name: get_method(f"{name}={model}", device="cpu")[1](img, spine) for name in methods}
        for name in methods:  # the same output as a method of its own
            np.testing.assert_array_equal(shared[name], alone[name])
        assert np.abs(shared["xvertnet"] - shared["xvertnet_original_brightness"]).max() > 0.01
    assert len(runs) == 2  # once per image, not once per method


def test_an_xvertnet_method_checks_each_image_once(seed, tmp_path, monkeypatch):
    # each image was checked and converted twice: by the baselines' own check, then by Enhancer.prepare
    import xvertfast.eval.baselines as baselines
    import xvertfast.preprocess.inputs as inputs
    from tests.infer.test_enhance import TILE, chest_like, tiny_model
    from xvertfast.model import save_model

    model = save_model(tiny_model(seed), tmp_path / "m", extra={"training": {"config": {"roi_size": TILE}}})
    method = get_method(f"xvertnet={model}", device="cpu")[1]
    img = chest_like(seed)
    img = img / img.max() * (1 + 5e-4)  # over 1 by conversion rounding: taken, as clipped
    expected = method(np.clip(img, 0.0, 1.0))
    checked = []
    check = inputs.check_unit_pixels
    for module in (inputs, baselines):
        monkeypatch.setattr(module, "check_unit_pixels", lambda t, who: checked.append(who) or check(t, who))
    np.testing.assert_array_equal(method(img), expected)
    assert len(checked) == 1
    raw = (img * 255).astype(np.uint8)
    with pytest.raises(TypeError, match=r"pixels must be floats in \[0, 1\].*got uint8"):
        method(raw)
    with pytest.raises(ValueError, match=r"pixels must lie in \[0, 1\], got values from"):
        method(raw.astype(np.float32))
    with pytest.raises(ValueError, match=r"pixels must be \[H, W\] with H, W >= 1, got shape \(0, 4\)"):
        method(np.zeros((0, 4), np.float32))


@pytest.mark.parametrize("tiles", [24, 48, 100])
def test_clahe_refuses_more_tiles_than_leave_a_region_of_two_pixels(seed, tiles):
    """With a contextual region 1 px wide (tiles = the image's side, or more, where it was made 1
    px) each pixel was equalised alone: the output was black and white, 2 grey levels, without a
    word. A 64x48 image takes at most 24 tiles (2 px regions)."""
    x = np.random.default_rng(seed).random((64, 48)).astype(np.float32)
    if tiles == 24:  # 2x2 px regions: coarse (16 grey levels here), but equalised
        assert np.unique(clahe(x, tiles=tiles)).size > 2
        return
    assert np.unique(clahe(np.random.default_rng(seed).random((640, 480)).astype(np.float32), tiles=tiles)).size > 100
    with pytest.raises(ValueError, match=rf"^clahe: tiles={tiles} leaves contextual regions under 2 px on this 64x48 "
                                         r"image, each equalised to black or white: at most 24 tiles$"):  # fmt: skip
        clahe(x, tiles=tiles)
    with pytest.raises(ValueError, match=r"on this 64x1 image, .*: CLAHE needs both sides of 2 px or more$"):
        clahe(x[:, :1], tiles=1)  # (1 px wide: no tile count leaves a region of 2 px)
