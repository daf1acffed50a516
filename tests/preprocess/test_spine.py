"""Spine localisation against centre lines marked by eye on every cxr-dev image, and ROI geometry."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import torch

from tests.conftest import CXR_DEV, needs_cxr_dev
from xvertfast import find_spine
from xvertfast.io import read_image
from xvertfast.preprocess import LOWER_LEVEL, UPPER_LEVEL, WORKING_HEIGHT


@pytest.fixture(autouse=True)
def _in_the_clis_words():
    """The warnings here are pinned as the batch commands print them, in the CLI's words (main()
    sets CLI_OPTIONS); a Python caller's are test_enhance_rois' (enhance_files from Python)."""
    from xvertfast._text import cli_running

    with cli_running({"preview", "rois"}):
        yield

# Column of the spine centre (percent of the width) at UPPER_LEVEL and LOWER_LEVEL of the
# height, marked by eye on high-pass filtered crops of each image (between the lateral
# edges of the vertebral bodies / on the spinous processes); about +-2% uncertain.
MARKS = {
    "gdcm-barre_cr-chest-pa_10bit_mono1.png": (47, 48),
    "hmh-covid_2c35005f.png": (52, 52),
    "hmh-covid_a38e1877.png": (53, 52),
    "hmh-covid_f8335316.png": (48, 49),
    "nih_00000574_000.png": (47, 48),
    "nih_00003272_000.png": (53.5, 53),
    "nih_00011585_000.png": (51, 51),
    "nih_00012751_000.png": (52.5, 52),
    "nih_00013965_000.png": (48, 47.5),
    "nih_00014998_000.png": (47.5, 46.5),
    "nih_00015520_000.png": (50, 51),
    "nih_00020556_000.png": (52, 52),
    "nih_00021563_000.png": (55, 55),
    "nih_00022202_000.png": (52.5, 52.5),
    "nih_00024995_000.png": (55, 55),
    "nih_00028063_000.png": (48.5, 48),
    "nih_00028176_000.png": (48, 49.5),
    "nih_00029236_000.png": (45.5, 47),
}
#: A vertebral body is ~8-10% of the width wide: the centre must fall within half of it.
TOLERANCE = 5.0


def read(name: str):
    with open(os.path.join(CXR_DEV, "IMAGE_NOTES.csv")) as f:
        photometric = {row["file"]: row["photometric"] for row in csv.DictReader(f)}[name]
    return read_image(os.path.join(CXR_DEV, name), photometric="MONOCHROME1" if photometric == "MONOCHROME1" else None)


@needs_cxr_dev
@pytest.mark.parametrize("name", sorted(MARKS))
def test_roi_centres_lie_on_the_marked_spine(name):
    im = read(name)
    spine = find_spine(im.pixels)
    H, W = im.shape
    for (row, col), mark, level in zip((spine.upper, spine.lower), MARKS[name], (UPPER_LEVEL, LOWER_LEVEL)):
        assert row == pytest.approx(level * H)
        assert abs(100 * col / W - mark) <= TOLERANCE, f"{name}: found {100 * col / W:.1f}% vs marked {mark}%"
    for box in spine.eval_rois():
        assert box.left <= MARKS[name][0] / 100 * W <= box.right


def test_roi_sizes_scale_with_image_height():
    for H in (512, 1024, 2048, 4096):
        spine = find_spine(np.random.default_rng(0).random((H, H)))
        (t, l, b, r), _ = spine.train_rois(512)
        assert b - t == r - l == round(512 * H / WORKING_HEIGHT)
        (t, l, b, r), _ = spine.eval_rois(512, 290)
        assert (b - t, r - l) == (round(512 * H / WORKING_HEIGHT), round(290 * H / WORKING_HEIGHT))


def test_rois_stay_inside_the_image_and_centres_can_be_overridden():
    img = np.random.default_rng(1).random((600, 300))
    spine = find_spine(img, upper=(5, 5), lower=(590, 295))
    assert spine.upper == (5, 5) and spine.lower == (590, 295)
    for box in spine.train_rois(512) + spine.eval_rois():
        assert 0 <= box.top < box.bottom <= 600 and 0 <= box.left < box.right <= 300
    # a ROI wider than the image shrinks to the image's width, keeping its shape (resized to a
    # fixed shape later, a cut ROI stretched the anatomy)
    narrow = find_spine(np.zeros((100, 20)))
    for box in narrow.train_rois(512):
        assert (box.bottom - box.top, box.left, box.right) == (20, 0, 20)
    for box in narrow.eval_rois(512, 290):  # 50 x 28 at this height, scored as cut: 50 x 20
        assert (box.bottom - box.top, box.right - box.left) == (50, 20)
    tall = find_spine(np.zeros((3000, 1000)))  # a chest and abdomen: 1500 x 1500 does not fit
    assert [(b.bottom - b.top, b.right - b.left) for b in tall.train_rois(512)] == [(1000, 1000)] * 2


def test_symmetric_synthetic_spine_is_found():
    H, W = 400, 300
    img = np.zeros((H, W))
    img[:, 60:120] = img[:, 180:240] = 0.2  # lungs darker than the mediastinum
    img[:, 137:163] = 1.0  # a bright band at column 150
    spine = find_spine(img)
    assert abs(spine.x - 149.5) <= 3


def test_a_spines_repr_counts_its_band_points_not_prints_them():
    """find_spine's result as a notebook shows it (and inside an EnhanceResult's): its dataclass repr
    printed the [k, 2] array of band estimates whole."""
    img = np.zeros((400, 300))
    img[:, 137:163] = 1.0
    spine = find_spine(img).with_centres(upper=(100.04, 150), lower=(300, 149.96))
    assert len(spine.band_points) > 1
    assert repr(spine) == (f"Spine(shape=(400, 300), x={spine.x:.1f}, upper=(100.0, 150.0), lower=(300.0, 150.0), "
                           f"{len(spine.band_points)} band points)")  # fmt: skip


NO_CONTRAST = ("too little contrast to find the spine by in most of the rows looked at (blank, collimated or nearly "
               "constant)")


@pytest.mark.parametrize("shape", [(512, 400), (300, 300), (2048, 2500)])
def test_an_image_with_no_contrast_gets_the_centre_column_and_says_why(shape):
    """A constant image "found" its spine at 35% of the width (every column scored alike and the
    search range's first won), and was warned of as cropped or off-centre; one pixel apart from an
    otherwise constant image put it at that pixel's band's whim. Both now take the fallback of an
    image too small to analyse, the centre column, and the warning says it is the contrast."""
    from xvertfast.preprocess import image_warnings

    H, W = shape
    one_pixel = np.zeros(shape)
    one_pixel[int(0.37 * H), W // 5] = 1.0  # (as the reader stretches an 8-bit image of 128s and one 129)
    faint = 0.5 + 1e-5 * np.random.default_rng(0).standard_normal(shape)
    for img in (np.zeros(shape), np.full(shape, 0.5), np.ones(shape), one_pixel, faint):
        spine = find_spine(img)
        assert spine.x == (W - 1) / 2 and spine.band_points.shape == (0, 2) and not spine.pinned_at_search_edge()
        assert spine.upper == (UPPER_LEVEL * H, (W - 1) / 2)
        said = image_warnings(_rad(img, "flat.png"), spine)
        assert said == [f"flat.png: {NO_CONTRAST}: its ROIs are on the centre column; if it is a radiograph, give "
                        "its centres (--rois FILE)"], said
        given = spine.with_centres(upper=(H * 0.3, W * 0.4), lower=(H * 0.6, W * 0.4))
        assert image_warnings(_rad(img, "flat.png"), given) == []  # placed by hand: nothing to doubt
    assert image_warnings(_rad(np.zeros((10, 10))), find_spine(np.zeros((10, 10)))) == []  # too small: as before


def test_an_image_whose_upper_half_is_blank_is_not_called_nearly_constant():
    """A radiograph collimated to its lower half has contrast there, too few of the bands for the
    spine: the warning called it '(nearly constant)', which it is not."""
    from xvertfast.preprocess import image_warnings

    H, W = 512, 400
    img = np.zeros((H, W))
    lower = img[H // 2 :]
    lower[:] = 0.5
    lower[:, 60:170] = lower[:, 230:340] = 0.2  # lungs darker than the mediastinum
    lower[:, 185:215] = 1.0
    spine = find_spine(img)
    assert spine.x == (W - 1) / 2 and spine.band_points.shape == (0, 2)
    said = image_warnings(_rad(img, "collimated.png"), spine)
    assert said == [f"collimated.png: {NO_CONTRAST}: its ROIs are on the centre column; if it is a radiograph, "
                    "give its centres (--rois FILE)"], said


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        find_spine(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        find_spine(np.full((20, 20), np.nan))
    for bad in ((1, 2, 3), (float("nan"), 5), "ab"):
        with pytest.raises(ValueError, match="upper ROI centre must be two finite numbers"):
            find_spine(np.zeros((40, 40)), upper=bad)


def test_centres_outside_the_image_are_refused():
    img = np.zeros((600, 300))
    for upper in ((-5000, 99999), (600, 10), (10, 300), (-0.5, 10)):
        with pytest.raises(ValueError, match=r"upper ROI centre .* lies outside the 300x600 image"):
            find_spine(img, upper=upper)  # (fractions or swapped axes were moved into the image without a word)
    assert find_spine(img, lower=(599.5, 0)).lower == (599.5, 0.0)


def test_an_upper_centre_not_above_the_lower_one_is_refused():
    """upper=(700, 500), lower=(200, 500) was taken: spine mode enhanced the "upper" box below the
    "lower" one, and eval_rois gave them the other's names."""
    img = np.zeros((1000, 1000))
    with pytest.raises(ValueError, match=r"upper ROI centre's row \(700\) must be above the lower ROI centre's "
                                         r"\(200\).*swapped"):  # fmt: skip
        find_spine(img, upper=(700, 500), lower=(200, 500))
    with pytest.raises(ValueError, match=r"row \(400\) must be above the lower ROI centre's \(400\)"):
        find_spine(img, upper=(400, 300), lower=(400, 700))
    # one given alone is held against the other found (the lower centre at 58% of the height)
    with pytest.raises(ValueError, match=r"row \(700\) must be above the lower ROI centre's \(580\).*lower one is "
                                         "the centre found"):  # fmt: skip
        find_spine(img, upper=(700, 500))
    with pytest.raises(ValueError, match=r"row \(300\) must be above the lower ROI centre's \(100\).*upper one is "
                                         "the centre found"):  # fmt: skip
        find_spine(img).with_centres(lower=(100, 500))
    spine = find_spine(img, upper=(200, 500), lower=(700, 500))
    assert [box.top < 200 < box.bottom for box in spine.eval_rois()] == [True, False]


def synthetic_chest(centre: float, H: int = 400, W: int = 300) -> np.ndarray:
    """A bright band (the spine) at ``centre`` (share of the width) between darker lung fields."""
    img = np.full((H, W), 0.5)
    c = int(centre * W)
    img[:, max(c - 90, 0) : max(c - 30, 0)] = img[:, c + 30 : c + 90] = 0.2
    img[:, c - 13 : c + 13] = 1.0
    return img


@pytest.mark.parametrize("centre, pinned", [(0.5, False), (0.58, False), (0.8, True), (0.2, True)])
def test_a_spine_outside_the_search_range_is_warned_of(centre, pinned):
    from xvertfast.io import Radiograph
    from xvertfast.preprocess import image_warnings

    img = synthetic_chest(centre)
    spine = find_spine(img)
    assert spine.detected and spine.pinned_at_search_edge() is pinned
    rad = Radiograph(img.astype(np.float32), img, 8, "MONOCHROME2", "png", "a.png")
    assert (image_warnings(rad, spine) != []) is pinned  # (off centre, its polarity may look inverted too)
    upright = synthetic_chest(0.5)  # a polarity that looks right: the spine warning alone
    rad = Radiograph(upright.astype(np.float32), upright, 8, "MONOCHROME2", "png", "a.png")
    said = image_warnings(rad, spine)
    assert (said != []) is pinned
    if pinned:
        assert said[0].startswith("a.png: the spine was found at the edge of where it is looked for")
    given = spine.with_centres(upper=(100, centre * 300), lower=(250, centre * 300))
    assert not given.detected and image_warnings(rad, given) == []  # centres given by hand: nothing to warn of


def _rad(pixels: np.ndarray, path: str = "a.png"):
    from xvertfast.io import Radiograph

    return Radiograph(pixels.astype(np.float32), pixels, 8, "MONOCHROME2", "png", path)


@pytest.mark.parametrize("width, height, ratio", [(4000, 300, "13"), (300, 4000, "0.075"), (1000, 499, "2.004"),
                                                  (499, 1000, "0.499")])  # fmt: skip
def test_a_spine_found_on_an_image_not_shaped_like_a_chest_is_warned_of(width, height, ratio):
    """4000 x 300 and 300 x 4000 images were enhanced in spine mode without a word (a grey patch,
    two grey bands): whatever column the finder picks there, it is no spine to trust. The ratio is
    given in as many digits as it takes to read outside the range: 1000 x 499 said "width / height
    2, outside 0.5-2"."""
    from xvertfast.preprocess import image_warnings

    img = synthetic_chest(0.5, H=height, W=width)
    spine = find_spine(img)
    said = [w for w in image_warnings(_rad(img), spine) if "not the shape of a frontal chest radiograph" in w]
    assert said == [f"a.png: {width} x {height}: not the shape of a frontal chest radiograph (width / height "
                    f"{ratio}, outside 0.5-2); the spine found may be wrong: check it with --preview "
                    "(enhance) or the overlay (preprocess), or give --rois"]  # fmt: skip
    # one doubt of the spine, not two: a pinned spine is what such a shape gives
    assert not any("the spine was found at the edge" in w for w in image_warnings(_rad(img), spine))
    given = spine.with_centres(upper=(0.3 * height, width / 2), lower=(0.6 * height, width / 2))
    assert image_warnings(_rad(img), given) == image_warnings(_rad(img))  # centres given by hand: nothing to doubt


@pytest.mark.parametrize("width, height", [(1024, 1024), (2500, 2048), (2048, 2500), (640, 524), (524, 640),
                                           (1000, 500), (500, 1000)])  # fmt: skip
def test_chest_shaped_images_get_no_shape_warning(width, height):
    from xvertfast.preprocess import image_warnings

    img = synthetic_chest(0.5, H=height, W=width)
    assert not any("not the shape of" in w for w in image_warnings(_rad(img), find_spine(img)))


@needs_cxr_dev
def test_no_cxr_dev_image_gets_a_shape_warning():
    from xvertfast.preprocess import image_warnings

    for name in sorted(MARKS):
        rad = read(name)
        for pixels in (rad.pixels, rad.pixels.T.copy()):  # (their transposes: 0.82-1.22 too)
            said = image_warnings(_rad(pixels, name), find_spine(pixels))
            assert not any("not the shape of" in w for w in said), name


@needs_cxr_dev
def test_no_cxr_dev_image_read_the_right_way_is_pinned():
    for name in sorted(MARKS):
        assert not find_spine(read(name).pixels).pinned_at_search_edge(), name


def test_centres_as_arrays_narrow_images_and_bf16():
    img = np.random.default_rng(2).random((600, 300))
    # centres read with NumPy (a CSV) or torch: "if upper" raised on an array
    for upper in (np.array([10.0, 20.0]), torch.tensor([10.0, 20.0]), torch.tensor([10.0, 20.0], requires_grad=True)):
        assert find_spine(img, upper=upper).upper == (10.0, 20.0)
    tall = find_spine(np.random.default_rng(3).random((2000, 20)))  # 3 columns once analysed
    assert tall.x == 9.5
    bf16 = torch.from_numpy(img).bfloat16()
    assert find_spine(bf16).x == find_spine(bf16.double().numpy()).x


@pytest.mark.parametrize("width", [40, 97, 256, 301])
def test_band_estimate_equals_the_per_column_loop(seed, width):
    # the symmetry score is computed for all candidate columns at once; the same score
    # written as a loop over the columns must pick the same column
    import scipy.ndimage as ndi

    from xvertfast.preprocess import spine

    rng = np.random.default_rng(seed)
    for _ in range(20):
        profile = rng.random(width).cumsum() % 3.0 + rng.random(width)
        prof = ndi.gaussian_filter1d(profile, 0.01 * width + 0.5)
        xs = np.arange(int(spine._SEARCH[0] * width), int(spine._SEARCH[1] * width))
        d, half = max(2, int(spine._SURROUND * width)), int(spine._MIRROR * width)
        ridge = prof[xs] - 0.5 * (prof[np.maximum(xs - d, 0)] + prof[np.minimum(xs + d, width - 1)])
        sym = np.empty(len(xs))
        for k, x in enumerate(xs):
            n = min(half, x, width - 1 - x)
            sym[k] = -np.mean(np.abs(prof[x - n : x][::-1] - prof[x + 1 : x + 1 + n])) if n else 0.0

        def z(a):
            return (a - a.mean()) / (a.std() + 1e-12)

        assert spine._band_estimate(spine._smoothed(profile, width), width) == int(xs[np.argmax(z(ridge) + z(sym))])


@needs_cxr_dev
def test_polarity_score_separates_upright_from_inverted_on_cxr_dev():
    from xvertfast.preprocess import looks_inverted, polarity_score

    names = sorted(n for n in os.listdir(CXR_DEV) if n.endswith(".png"))
    assert len(names) >= 18
    for name in names:
        pixels = read(name).pixels
        assert polarity_score(pixels) > 0.05 and not looks_inverted(pixels), name
        assert polarity_score(1.0 - pixels) < -0.05 and looks_inverted(1.0 - pixels), name


def test_polarity_of_tiny_and_constant_images_is_defined():
    from xvertfast.preprocess import looks_inverted, polarity_score

    for shape in [(1, 1), (2, 3), (5, 40)]:
        assert np.isfinite(polarity_score(np.random.default_rng(0).random(shape)))
    assert polarity_score(np.full((64, 64), 0.3)) == 0.0 and not looks_inverted(np.full((64, 64), 0.3))


def test_image_warnings_are_the_decoding_notes_then_the_polarity():
    from xvertfast.io import Radiograph
    from xvertfast.preprocess import image_warnings

    x = np.linspace(-1, 1, 64)
    upright = np.tile(np.exp(-(x**2) / 0.02), (64, 1)).astype(np.float32)  # a bright central band

    def rad(pixels, notes):
        return Radiograph(pixels, pixels, 8, "MONOCHROME2", "png", "a.png", notes=notes)

    assert image_warnings(rad(upright, [])) == []
    assert image_warnings(rad(upright, ["a.png: RGB image converted"])) == ["a.png: RGB image converted"]
    said = image_warnings(rad(1 - upright, ["a.png: RGB image converted"]))
    assert said[0] == "a.png: RGB image converted" and said[1].startswith("a.png: looks inverted")
    assert "MONOCHROME1" in said[1] and "rotated or non-frontal view" in said[1]


def test_a_png_looking_inverted_as_tagged_monochrome1_is_told_to_drop_the_tag_not_to_add_it():
    # before: "if it stores bone dark, list it in an @list with a tab and MONOCHROME1", said of the very PNG
    # an @list had tagged MONOCHROME1 (a bone-bright PNG tagged by mistake: the inversion made it look inverted)
    from xvertfast.io import Radiograph
    from xvertfast.preprocess import inverted_warning

    x = np.linspace(-1, 1, 64)
    looks_inverted = 1 - np.tile(np.exp(-(x**2) / 0.02), (64, 1)).astype(np.float32)
    tagged = inverted_warning(Radiograph(looks_inverted, looks_inverted, 8, "MONOCHROME1", "png", "a.png"))
    assert tagged.startswith("a.png: looks inverted") and "list it in an @list" not in tagged, tagged
    assert "tagged MONOCHROME1 in its @list" in tagged and "drop the tag" in tagged, tagged
    untagged = inverted_warning(Radiograph(looks_inverted, looks_inverted, 8, "MONOCHROME2", "jpeg", "a.jpg"))
    assert "list it in an @list with a tab and MONOCHROME1" in untagged, untagged


def test_inverted_reason_is_the_warning_without_the_file():
    # evaluate's refusal of an output whose input looks inverted gives the warning's reason and fix
    # after its own words: it split inverted_warning's text at ': looks inverted ' to get them
    from xvertfast.io import Radiograph
    from xvertfast.preprocess.spine import inverted_reason, inverted_warning

    x = np.linspace(-1, 1, 64)
    dark = 1 - np.tile(np.exp(-(x**2) / 0.02), (64, 1)).astype(np.float32)
    for rad in (Radiograph(dark, dark, 8, "MONOCHROME2", "png", "a.png"),
                Radiograph(dark, dark, 8, "MONOCHROME1", "png", "b.png"),
                Radiograph(dark, dark, 12, "MONOCHROME2", "dicom", "c.dcm")):  # fmt: skip
        reason = inverted_reason(rad)
        assert reason.startswith("looks inverted (its central band is darker than the lung fields") and rad.path not in reason
        assert inverted_warning(rad) == f"{rad.path}: {reason}"
    assert inverted_warning(dark, one_image=True) == f"pixels: {inverted_reason(dark, one_image=True)}"
    assert inverted_reason(1 - dark) is None


def test_empty_images_and_roi_sizes_that_are_not_positive_are_refused():
    # an empty image gave a Spine whose centres lay outside it; train_rois(0) a ZeroDivisionError,
    # a negative size the whole image and eval_rois(0, 0) 1x1 boxes; polarity_score a 3-D array's
    # unpacking error and an empty one NaN with NumPy's warnings (looks_inverted's in polarity_score's name)
    from xvertfast.preprocess import looks_inverted, polarity_score

    for shape in [(0, 80), (0, 0), (40, 0)]:
        with pytest.raises(ValueError, match="find_spine: pixels must be \\[H, W\\] with H, W >= 1"):
            find_spine(np.zeros(shape))
        for fn in (polarity_score, looks_inverted):
            with pytest.raises(ValueError, match=rf"^{fn.__name__}: pixels must be \[H, W\] with H, W >= 1"):
                fn(np.zeros(shape))
    with pytest.raises(ValueError, match="polarity_score: pixels must be \\[H, W\\]"):
        polarity_score(np.zeros((2, 20, 20)))
    spine = find_spine(np.random.default_rng(0).random((100, 80)))
    for size in (0, -5, float("nan"), float("inf"), True, "512"):
        with pytest.raises(ValueError, match="ROI height must be a number > 0"):
            spine.train_rois(size)
    with pytest.raises(ValueError, match="ROI width must be a number > 0"):
        spine.eval_rois(512, 0)
    assert spine.train_rois(np.int64(512)) == spine.train_rois(512)


def test_a_path_is_refused_by_name():
    # NumPy's "could not convert string to float: 'chest.png'" did not say what was wrong
    from pathlib import Path

    from xvertfast.preprocess import looks_inverted, polarity_score

    for path in ("chest.png", Path("chest.png")):
        with pytest.raises(TypeError, match="find_spine: pixels must be an image array, got the path 'chest.png'"):
            find_spine(path)
        for fn in (polarity_score, looks_inverted):
            with pytest.raises(TypeError, match=rf"^{fn.__name__}: pixels must be an image array"):
                fn(path)


def test_a_radiograph_or_none_is_refused_by_name():
    # both were refused as "pixels must hold real numbers, got object", naming neither
    from xvertfast.io import Radiograph
    from xvertfast.preprocess import looks_inverted, polarity_score

    img = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    rad = Radiograph(img, img, 8, "MONOCHROME2", "png", "a.png")
    for fn in (find_spine, polarity_score, looks_inverted):
        said = "pixels must be an image array, got a Radiograph: give its .pixels"
        with pytest.raises(TypeError, match=f"{fn.__name__}: {said}"):
            fn(rad)
        with pytest.raises(TypeError, match=f"{fn.__name__}: pixels must be an image array, got NoneType$"):
            fn(None)


def test_a_masked_array_is_refused_where_pixels_are_masked():
    # the mask was dropped without a word (np.asarray): the masked pixels were looked at as any,
    # where preprocess, wls and the metrics refuse them (looks_inverted's in polarity_score's name)
    from xvertfast.preprocess import looks_inverted, polarity_score

    img = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    masked = np.ma.masked_array(img, mask=img > 0.9)
    for fn in (find_spine, polarity_score, looks_inverted):
        with pytest.raises(TypeError, match=rf"^{fn.__name__}: pixels must be an image array, got a masked array with "
                                            rf"{int(masked.mask.sum())} masked pixel\(s\), whose mask would be "
                                            r"ignored: fill them first \(array\.filled\(value\)\)$"):  # fmt: skip
            fn(masked)
    assert find_spine(np.ma.masked_array(img, mask=False)).x == find_spine(img).x  # (nothing masked: taken)
    assert polarity_score(np.ma.masked_array(img, mask=False)) == polarity_score(img)
    assert looks_inverted(np.ma.masked_array(img, mask=False)) == looks_inverted(img)


@pytest.mark.parametrize("dtype", [complex, "U1"])
def test_complex_or_text_pixels_are_refused_by_name(dtype):
    # complex pixels lost their imaginary part with only NumPy's ComplexWarning, and text said
    # "could not convert string to float" without naming the function
    from xvertfast.preprocess import looks_inverted, polarity_score

    pixels = np.ones((64, 64), dtype=dtype)
    for fn in (find_spine, polarity_score, looks_inverted):
        with pytest.raises(TypeError, match=rf"{fn.__name__}: pixels must hold real numbers, got {np.dtype(dtype)}"):
            fn(pixels)
