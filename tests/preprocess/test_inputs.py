"""XVertNet preprocessing: the equations, the E guard, the normalisation, and degenerate images."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from xvertfast import wls
from xvertfast.preprocess import E_FLOOR, NORMALISE_PERCENTILES, preprocess
from xvertfast.preprocess.inputs import _normalise, _tail_quantiles

#: NumPy's long double where it is wider than float64 (x86 Linux); torch holds no such type
WIDE = (np.longdouble,) if np.dtype(np.longdouble).itemsize > 8 else ()


def fields(pp):
    return [pp.x, pp.g, pp.e, pp.xp, pp.y]


def test_equations_hold(seed):
    rng = np.random.default_rng(seed)
    x = np.add.outer(np.linspace(0.2, 0.8, 48), np.zeros(40)) + 0.05 * rng.random((48, 40))
    x = ((x - x.min()) / (x.max() - x.min())).astype(np.float32)  # X is min-max normalised
    pp = preprocess(x)
    np.testing.assert_array_equal(pp.x, x)
    np.testing.assert_allclose(pp.g, wls(x), atol=1e-6)
    np.testing.assert_allclose(pp.e, x.mean() - x + pp.g, atol=1e-5)
    np.testing.assert_allclose(pp.y, pp.xp - wls(pp.xp), atol=1e-6)
    assert pp.xp.min() == 0.0 and pp.xp.max() == 1.0
    # Xp is a monotone rescaling of X / max(E, floor)
    ratio = (x / np.maximum(pp.e, E_FLOOR)).ravel()
    order = np.argsort(ratio, kind="stable")
    assert np.all(np.diff(pp.xp.ravel()[order]) >= -1e-6)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 1001, 4097, 300_000])
def test_tail_quantiles_equal_torch_quantile(seed, n):
    # topk on the tails gives torch.quantile's linear interpolation (checked in float64),
    # ties and a heavy constant part included
    flat = torch.randn(3, n)
    flat[1, : n // 2] = 0.5
    flat[2] = torch.round(flat[2] * 4) / 4
    q = [p / 100.0 for p in NORMALISE_PERCENTILES]
    want = torch.quantile(flat.double(), torch.tensor(q, dtype=torch.float64), dim=1, keepdim=True)
    lo, hi = _tail_quantiles(flat, *q)
    torch.testing.assert_close(lo.double(), want[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(hi.double(), want[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "name, image",
    [
        ("constant", np.full((32, 32), 0.4, np.float32)),
        ("all-black", np.zeros((32, 32), np.float32)),
        ("saturated", np.ones((32, 32), np.float32)),
        ("one pixel", np.full((1, 1), 0.7, np.float32)),
        ("2x3", np.array([[0.0, 1.0, 0.5], [0.2, 0.9, 0.1]], np.float32)),
        ("noise", np.random.default_rng(0).random((64, 48)).astype(np.float32)),
        ("bright speck on black", np.pad(np.ones((2, 2), np.float32), 30)),
    ],
)
def test_no_nan_or_inf_ever_leaves(name, image):
    pp = preprocess(image)
    for a in fields(pp):
        assert a.dtype == np.float32 and a.shape == image.shape, name
        assert np.isfinite(a).all(), name
    assert 0.0 <= pp.xp.min() and pp.xp.max() <= 1.0


@pytest.mark.parametrize("scale, offset", [(1 / 16, 0.0), (0.5, 0.25), (1.0, 0.0)])
def test_x_is_min_max_normalised_first(seed, scale, offset):
    # a 12-bit image divided by 65535 spans [0, 1/16]: without the stretch E fell under its
    # floor everywhere and Xp was X rescaled, the preprocessing silently undone. The image holds
    # multiples of 2^-12 and the scales and offsets are powers of two, so every scaled image is
    # exact in float32 and its stretch is the unscaled one's (with an offset of 0.3, float32's
    # rounding of x * 0.5 + 0.3, magnified by log(X + 1e-4) near black, moved the outputs by up to
    # 1e-4 for some seeds, over the tolerance: XVF_TEST_SEED=508405369)
    rng = np.random.default_rng(seed)
    x = np.add.outer(np.linspace(0.0, 1.0, 48), np.zeros(40)) * 0.6 + 0.4 * rng.random((48, 40))
    x = (np.round((x - x.min()) / (x.max() - x.min()) * 4095) / 4096).astype(np.float32)
    want, got = preprocess(x), preprocess((x * scale + offset).astype(np.float32))
    for a, b in zip(fields(want), fields(got)):
        np.testing.assert_allclose(b, a, atol=2e-5)
    assert (got.e >= E_FLOOR).mean() > 0.9
    batch = torch.stack([torch.from_numpy(x), torch.from_numpy(x * scale + offset)])  # per image
    np.testing.assert_allclose(preprocess(batch).xp[1].numpy(), want.xp, atol=2e-5)


def test_constant_image_gives_zero_xp_and_y():
    pp = preprocess(np.full((20, 20), 0.3, np.float32))
    assert np.all(pp.xp == 0) and np.all(pp.y == 0)


def test_guard_limits_the_division():
    # A bright speck on a dark image drives E towards zero (or below) at the speck.
    x = np.zeros((40, 40), np.float32)
    x[20, 20] = 1.0
    pp = preprocess(x)
    assert pp.e.min() < E_FLOOR  # the guard was needed
    assert np.isfinite(pp.xp).all() and pp.xp.max() == 1.0


def test_torch_batch_matches_single_images(seed):
    batch = torch.rand(3, 24, 28)
    pp = preprocess(batch)
    assert isinstance(pp.xp, torch.Tensor) and pp.xp.shape == (3, 24, 28) and pp.xp.dtype == torch.float32
    for k in range(3):
        single = preprocess(batch[k])
        torch.testing.assert_close(pp.xp[k], single.xp)
        torch.testing.assert_close(pp.y[k], single.y)


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        preprocess(np.array([[0.1, np.nan]], np.float32))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        preprocess(np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="NumPy array or a torch tensor"):
        preprocess([[0.1]])
    # a path or a Radiograph said how to get its pixels, as the metrics and the spine finder do
    said = r"got the path 'chest\.png': read it with xvertfast\.io\.read_image\(path\)\.pixels$"
    with pytest.raises(TypeError, match=said):
        preprocess("chest.png")
    from xvertfast.io import Radiograph

    pixels = np.zeros((4, 4), np.float32)
    radiograph = Radiograph(pixels, pixels, 8, "MONOCHROME2", "png", "chest.png")
    with pytest.raises(TypeError, match=r"tensor, got a Radiograph: give its \.pixels$"):
        preprocess(radiograph)
    with pytest.raises(ValueError, match=r"got shape \(\)$"):  # a 0-d array was said to be of shape (1,)
        preprocess(np.array(0.5, np.float32))
    # torch's "can't convert np.ndarray of type numpy.object_" (or numpy.longdouble: WIDE); complex was
    # taken for integers ("scale stored values by their range first")
    for dtype in (object, "U3", np.complex64, *WIDE):
        with pytest.raises(TypeError, match=rf"preprocess: pixels must be floats in \[0, 1\].*got a NumPy array of "
                                            rf"{np.dtype(dtype)}"):  # fmt: skip
            preprocess(np.full((8, 8), 0.5).astype(dtype))
    with pytest.raises(TypeError, match=r"got complex64$"):  # (was told to "scale stored values by their range")
        preprocess(torch.full((8, 8), 0.5, dtype=torch.complex64))


def test_a_mask_is_refused_as_one(seed):
    # a bool array was told to "scale stored values by their range first": it has none
    for mask in (np.random.default_rng(seed).random((16, 16)) < 0.5, torch.zeros(16, 16, dtype=torch.bool)):
        with pytest.raises(TypeError, match=r"^preprocess: pixels must be floats in \[0, 1\] .*, got bool: a mask, not "
                                            r"grey levels; give an image's pixels$"):  # fmt: skip
            preprocess(mask)


@pytest.mark.parametrize("kwargs, said", [
    ({"lam": -1}, r"need lam >= 0, alpha > 0 and eps > 0, got lam=-1, alpha=1\.2, eps=0\.0001$"),
    ({"eps": 0.0}, r"need lam >= 0, alpha > 0 and eps > 0, got lam=0\.8, alpha=1\.2, eps=0\.0$"),
    ({"alpha": float("nan")}, r"alpha must be a finite number, got nan$"),
    ({"lam": "0.8"}, r"lam must be a finite number, got '0\.8'$"),
    ({"lam": 1e12}, r"lam / eps = 1e\+16 \(lam=1000000000000\.0, eps=0\.0001\) is beyond what float64"),
    ({"method": "fast"}, r"unknown method 'fast'; choose one of auto, cpu"),
    # (said "wls: method='cuda' needs a CUDA tensor, got one on cpu")
    ({"method": "cuda"}, r"method='cuda' needs a CUDA tensor, got one on cpu$"),
    ({"method": "cupy"}, r"method='cupy' needs a CUDA tensor, got one on cpu$"),
])  # fmt: skip
def test_wls_parameters_are_refused_in_preprocess_s_name(kwargs, said):
    # they were refused by wls, in its words ('wls: need lam >= 0, ..., rtol=0.0001'): the user called
    # preprocess, which has no rtol
    with pytest.raises(ValueError, match=f"^preprocess: {said}"):
        preprocess(np.full((16, 16), 0.5, np.float32), **kwargs)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_an_image_a_few_columns_wide_is_preprocessed_as_one(seed, width):
    # [H, 1] to [H, 4] were refused by wls ("image of shape (1, 64, 1) looks like one image with its
    # channels last"): preprocess gave it one image as a batch of one
    column = np.random.default_rng(seed).random((64, width)).astype(np.float32)
    pp = preprocess(column)
    assert pp.xp.shape == pp.y.shape == (64, width)
    np.testing.assert_array_equal(pp.g, wls(pp.x))  # (the solve of the image as it is given)
    for field in (pp.x, pp.g, pp.e, pp.xp, pp.y):
        assert np.isfinite(field).all()


def test_a_colour_image_is_refused_not_taken_for_a_batch_of_strips(seed):
    # an RGB picture on [0, 1] ([H, W, 3], what np.asarray(Image.open(png)) / 255 gives) was taken
    # for H images 3 pixels wide: outputs of its shape, each 1 x 3 row normalised on its own
    rgb = np.random.default_rng(seed).random((40, 36, 3)).astype(np.float32)
    for pixels in (rgb, np.concatenate([rgb, rgb[..., :1]], axis=-1), torch.from_numpy(rgb)):
        with pytest.raises(ValueError, match=r"shape \(40, 36, \d\) look like one image with its channels last, not a "
                                            r"batch of images \d pixels wide \(a colour image, channels last: give one "
                                            r"channel \[H, W\]; xvertfast.io.read_image"):  # fmt: skip
            preprocess(pixels)
    assert preprocess(np.random.default_rng(seed).random((2, 4, 3))).xp.shape == (2, 4, 3)  # tiny: a batch
    # a grey image with alpha (PIL's "LA", [H, W, 2]) was taken for H images 2 pixels wide
    with pytest.raises(ValueError, match=r"shape \(40, 36, 2\) look like one image with its channels last, not a batch "
                                        r"of images 2 pixels wide \(a grey image with alpha, channels last: give its "
                                        r"grey channel \[H, W\], pixels\[\.\.\., 0\]\)$"):  # fmt: skip
        preprocess(rgb[..., :2])


def test_a_one_channel_image_with_its_channel_last_is_refused_not_taken_for_a_batch_of_columns(seed):
    # [H, W, 1] (a grey image kept 3-D by an image library, or rgb[..., :1]) was taken for H images
    # one pixel wide: outputs of its shape, each 1 x W row smoothed and normalised on its own
    grey = np.random.default_rng(seed).random((40, 36, 1)).astype(np.float32)
    for pixels in (grey, torch.from_numpy(grey)):  # (in the words every function taking pixels uses: shape_hint)
        with pytest.raises(ValueError, match=r"shape \(40, 36, 1\) look like one image with its channels last, not a "
                                            r"batch of images 1 pixel wide \(one image with axes of length 1: give "
                                            r"pixels\.squeeze\(\)\)$"):  # fmt: skip
            preprocess(pixels)
    assert preprocess(grey.squeeze()).xp.shape == (40, 36)  # what the message asks for
    # one row, [1, W, 1], which no squeeze makes [H, W]
    one_row = r"shape \(1, 36, 1\) .* 1 pixel wide \(give it as \[H, W\], pixels\[\.\.\., 0\]\)$"
    with pytest.raises(ValueError, match=one_row):
        preprocess(grey[:1, :, :])
    assert preprocess(grey[:1, :, 0]).xp.shape == (1, 36)
    assert preprocess(np.random.default_rng(seed).random((2, 4, 1))).xp.shape == (2, 4, 1)  # tiny: a batch


def test_a_network_s_batch_of_one_channel_images_is_told_how_to_give_it(seed):
    # [1, 1, H, W] and [B, 1, H, W] were refused with their shape alone, where wls said what to give
    maps = np.random.default_rng(seed).random((3, 1, 12, 10)).astype(np.float32)
    for pixels in (maps, torch.from_numpy(maps)):
        with pytest.raises(ValueError, match=r"^preprocess: pixels must be \[H, W\] or \[B, H, W\], got shape "
                                            r"\(3, 1, 12, 10\) \(a batch of one-channel images \[B, 1, H, W\]: give "
                                            r"pixels\[:, 0\]\)$"):  # fmt: skip
            preprocess(pixels)
    with pytest.raises(ValueError, match=r"got shape \(1, 1, 12, 10\) \(one image with axes of length 1: give "
                                        r"pixels\.squeeze\(\)\)$"):  # fmt: skip
        preprocess(maps[:1])
    assert preprocess(maps[:, 0]).xp.shape == (3, 12, 10)  # what the message asks for


def test_a_batch_of_colour_images_with_their_channels_first_is_told_how_to_give_it(seed):
    # torchvision's [B, 3, H, W] (a DataLoader's batch, ToTensor()'s image unsqueezed) was refused with its shape alone
    from xvertfast.ops import wls

    rgb = np.random.default_rng(seed).random((2, 3, 12, 10)).astype(np.float32)
    said = (r"got shape \(2, 3, 12, 10\) \(a batch of colour images with their channels first \[B, 3, H, W\]: give one "
            r"channel \[B, H, W\], {}\[:, 0\]; xvertfast\.io\.read_image gives a colour file's luminance\)$")
    for pixels in (rgb, torch.from_numpy(rgb)):
        with pytest.raises(ValueError, match=r"^preprocess: pixels must be \[H, W\] or \[B, H, W\], " + said.format("pixels")):
            preprocess(pixels)
        with pytest.raises(ValueError, match=r"^wls: image must be \[H, W\] or \[B, H, W\], " + said.format("image")):
            wls(pixels)
    assert preprocess(rgb[:, 0]).xp.shape == (2, 12, 10)  # what the message asks for


def test_pixels_off_the_unit_scale_are_refused_not_clipped(seed):
    # a raw 8-bit array was clipped to a near-binary image (2 distinct values) without a word
    raw = (np.random.default_rng(seed).random((64, 48)) * 255).astype(np.uint8)
    with pytest.raises(TypeError, match="floats in \\[0, 1\\].*got uint8"):
        preprocess(raw)
    with pytest.raises(TypeError, match="got bool"):
        preprocess(torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\], got values from 0 to 254"):
        preprocess(torch.from_numpy(raw.astype(np.float32)).clamp(max=254))
    unit = raw / 255.0
    unit[0, 0] = 1.0
    close = preprocess(np.clip(unit + 5e-4, 0, None))  # conversion rounding within the slack: clipped
    assert close.x.max() == 1.0
    for dtype in (torch.float16, torch.bfloat16, torch.float64):  # any float on the unit scale
        assert preprocess(torch.from_numpy(unit).to(dtype)).xp.dtype == torch.float32


def test_nan_and_infinities_are_refused_wherever_they_lie_in_one_message():
    # the check is one aminmax pass (a NaN reaches both ends, an infinity one): a NaN in the
    # vectorised body or its tail, beside an infinity, in each float dtype, is still named
    from xvertfast.preprocess.inputs import check_unit_pixels

    base = torch.rand(37, 41)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        for where in ((0, 0), (18, 20), (36, 40)):
            for bad in ([float("nan")], [float("inf")], [-float("inf")], [float("nan"), float("inf")],
                        [-float("inf"), float("inf")], [float("nan"), -float("inf")]):  # fmt: skip
                t = base.clone().to(dtype)
                for k, value in enumerate(bad):
                    t[where[0] - k, where[1] - k] = value
                with pytest.raises(ValueError) as info:
                    check_unit_pixels(t.t(), "preprocess")  # (strided too)
                # (counted, and told how to fill them: it said "contain NaN or infinite values" alone)
                assert str(info.value) == (f"preprocess: pixels contain {len(bad)} NaN or infinite value"
                                           f"{'s' * (len(bad) > 1)}: replace them first, e.g. np.nan_to_num(pixels, "
                                           "nan=0.0, posinf=1.0, neginf=0.0) (torch.nan_to_num for a tensor)")  # fmt: skip
    check_unit_pixels(torch.empty(0, 5), "preprocess")  # nothing to refuse in an empty one
    check_unit_pixels(base, "preprocess")
    from xvertfast import find_spine

    pixels = base.numpy().copy()
    pixels[3, 4], pixels[30, 40] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"^find_spine: pixels contain 2 NaN or infinite values: replace them first"):
        find_spine(pixels)


def test_a_huge_float64_value_is_named_as_it_is_not_as_infinity():
    # the range was taken in float32, where 1e300 overflows: "got values from 0 to inf" for a
    # finite value
    t = torch.rand(16, 16, dtype=torch.float64)
    t[3, 4], t[0, 0] = 1e300, 0.0
    with pytest.raises(ValueError, match=r"^preprocess: pixels must lie in \[0, 1\], got values from 0 to 1e\+300 "):
        preprocess(t)


def test_an_empty_batch_stays_empty():
    pp = preprocess(torch.rand(0, 5, 5))
    assert pp.xp.shape == (0, 5, 5) and pp.y.shape == (0, 5, 5)


def test_top_level_function():
    import xvertfast

    pp = xvertfast.preprocess(np.full((8, 8), 0.5, np.float32))
    assert pp.xp.shape == (8, 8)


def test_normalise_falls_back_to_min_max_only_where_the_percentiles_coincide():
    t = torch.full((3, 50, 50), 0.4)
    t[0, 0, 0], t[0, 1, 1] = 0.1, 0.9  # all but two pixels equal: both percentiles are 0.4
    t[1] = torch.linspace(0, 2, 2500).reshape(50, 50)
    out = _normalise(t)
    assert out[0, 0, 0] == 0 and out[0, 1, 1] == 1
    assert torch.allclose(out[0, 2, 2], torch.tensor(0.375))  # (0.4 - 0.1) / (0.9 - 0.1)
    lo, hi = torch.quantile(t[1].flatten().double(), torch.tensor([0.001, 0.999], dtype=torch.float64))
    assert torch.allclose(out[1].double(), ((t[1].double() - lo) / (hi - lo)).clamp(0, 1), atol=1e-6)
    assert torch.all(out[2] == 0)  # constant


def test_wls_parameters_reach_both_solves(seed):
    """lam, alpha, eps given to preprocess are those of G = WLS(X) and of Y = Xp - WLS(Xp)."""
    rng = np.random.default_rng(seed)
    x = np.add.outer(np.linspace(0.2, 0.8, 48), np.zeros(40)) + 0.2 * rng.random((48, 40))
    x = ((x - x.min()) / (x.max() - x.min())).astype(np.float32)
    lam, alpha, eps = 0.5, 1.0, 3e-4
    pp = preprocess(x, lam=lam, alpha=alpha, eps=eps)
    np.testing.assert_allclose(pp.g, wls(x, lam, alpha, eps), atol=1e-6)
    np.testing.assert_allclose(pp.y, pp.xp - wls(pp.xp, lam, alpha, eps), atol=1e-6)
    # the parameters matter here: the defaults' smoothing of the same Xp is far from it
    assert np.abs(pp.y - (pp.xp - wls(pp.xp))).max() > 1e-3
    assert np.abs(pp.g - wls(x)).max() > 1e-3


def test_xp_is_the_normalised_ratio_with_e_clamped_at_the_floor(seed):
    """Where E falls below E_FLOOR (here on a tenth of the pixels: bright specks on a dark image),
    Xp is the robust normalisation of X / max(E, E_FLOOR), computed here independently in float64."""
    rng = np.random.default_rng(seed)
    x = 0.02 * rng.random((64, 64))
    specks = rng.random((64, 64)) < 0.1
    x[specks] = 0.6 * (0.5 + 0.5 * rng.random(specks.sum()))
    x = ((x - x.min()) / (x.max() - x.min())).astype(np.float32)
    pp = preprocess(x)
    e = pp.e.astype(np.float64)
    assert (e < E_FLOOR).mean() > 0.02  # the guard acts on many pixels, not only past the percentiles

    def normalised(ratio):
        lo, hi = np.percentile(ratio, NORMALISE_PERCENTILES)
        return np.clip((ratio - lo) / (hi - lo), 0.0, 1.0)

    want = normalised(x / np.maximum(e, E_FLOOR))
    np.testing.assert_allclose(pp.xp, want, rtol=0, atol=1e-5)
    assert np.abs(want - normalised(x / np.maximum(e, 1e-6))).max() > 0.1  # another floor gives another Xp


def test_big_endian_and_read_only_arrays_are_taken_as_they_are(recwarn):
    # torch.from_numpy refused big-endian data (FITS, some TIFF readers) and warned on read-only
    # memory (np.load(mmap_mode="r")); wls took both
    x = np.random.default_rng(0).random((24, 20)).astype(np.float32)
    expected = preprocess(x)
    frozen = x.copy()
    frozen.flags.writeable = False
    for pixels in (x.astype(">f4"), frozen):
        pp = preprocess(pixels)
        np.testing.assert_array_equal(pp.xp, expected.xp)
        np.testing.assert_array_equal(pp.y, expected.y)
    assert not [w for w in recwarn if "writable" in str(w.message)]


def test_outputs_carry_no_gradient():
    # a requires_grad input gave outputs with a graph through X alone (the WLS solves are detached):
    # a wrong gradient, and a warning of torch's on the way
    x = torch.rand(20, 24, requires_grad=True)
    pp = preprocess(x)
    assert not any(f.requires_grad for f in fields(pp))
    torch.testing.assert_close(pp.y, preprocess(x.detach()).y, rtol=0, atol=0)


def test_meta_tensors_are_refused_by_name():
    # torch's "Tensor.item() cannot be called on meta tensors" came out of the pixel check
    with pytest.raises(ValueError, match="preprocess: pixels are on the meta device"):
        preprocess(torch.empty(4, 4, device="meta"))


def test_the_package_is_callable_and_stays_the_package():
    # exported as a function under the package's name, preprocess hid the package:
    # ``import xvertfast.preprocess.spine as sp`` failed with "cannot import name 'spine' from
    # 'preprocess' (unknown location)", and ``import xvertfast.preprocess as pp`` gave the function
    import inspect

    import xvertfast
    import xvertfast.preprocess as pp
    import xvertfast.preprocess.spine as sp

    pixels = np.random.default_rng(0).random((16, 12)).astype(np.float32)
    np.testing.assert_array_equal(xvertfast.preprocess(pixels).y, preprocess(pixels).y)
    assert pp is xvertfast.preprocess and pp.find_spine is sp.find_spine and pp.E_FLOOR == E_FLOOR
    assert inspect.signature(xvertfast.preprocess) == inspect.signature(preprocess)
    # pickled by name as the function was (a process pool's map, copy.deepcopy)
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(xvertfast.preprocess)) is pp and copy.deepcopy(pp) is pp


def test_the_preprocessed_images_repr_is_one_line_not_five_arrays():
    """What a notebook shows of ``xvertfast.preprocess(pixels)``: the dataclass's repr printed all five."""
    said = repr(preprocess(np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)))
    assert re.fullmatch(r"Preprocessed\(x=float32 32x32 in \[0, 1\], g=float32 32x32 in \[[^]]+\], e=float32 32x32 in "
                        r"\[[^]]+\], xp=float32 32x32 in \[0, 1\], y=float32 32x32 in \[[^]]+\]\)", said), said  # fmt: skip


@pytest.mark.parametrize("channels, said", [
    (3, r"colour images, channels last \[B, H, W, 3\]: give one channel \[B, H, W\], {}\[\.\.\., 0\]; "
        r"xvertfast\.io\.read_image gives a colour file's luminance\)$"),
    (2, r"grey images with alpha, channels last \[B, H, W, 2\]: give their grey channel \[B, H, W\], "
        r"{}\[\.\.\., 0\]\)$"),
    (1, r"grey images, channels last \[B, H, W, 1\]: give them as \[B, H, W\], {}\[\.\.\., 0\]\)$")])  # (Keras's)
def test_a_batch_of_images_with_their_channels_last_is_told_how_to_give_it(seed, channels, said):
    # PIL's or imageio's arrays stacked, [B, H, W, 3], or Keras's [B, H, W, 1], were refused with their shape alone
    stack = np.random.default_rng(seed).random((2, 12, 10, channels)).astype(np.float32)
    said = rf"got shape \(2, 12, 10, {channels}\) \(a batch of " + said
    for pixels in (stack, torch.from_numpy(stack)):
        with pytest.raises(ValueError, match=r"^preprocess: pixels must be \[H, W\] or \[B, H, W\], " + said.format("pixels")):
            preprocess(pixels)
        with pytest.raises(ValueError, match=r"^wls: image must be \[H, W\] or \[B, H, W\], " + said.format("image")):
            wls(pixels)
    assert preprocess(stack[..., 0]).xp.shape == (2, 12, 10)  # what the message asks for
