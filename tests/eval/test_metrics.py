"""Evaluation metrics: the MATLAB goldens (shared/metrics), known values, edge cases and input checks."""

from __future__ import annotations

import json
import math
import os
import re
from importlib import resources

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from xvertfast.eval import metrics
from xvertfast.eval._brisque import _parse_model, load_model
from xvertfast.eval._lpc import lpc_si_core
from xvertfast.eval._tmqi import statistical_naturalness, tmqi_core

from tests.conftest import traced_memory

#: shared/metrics beside the repository (or XVF_SHARED_METRICS): SPEC.md, goldens-dev.json, inputs/.
SHARED_METRICS = os.environ.get(
    "XVF_SHARED_METRICS",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "metrics"),
)
GOLDENS_PATH = os.path.join(SHARED_METRICS, "goldens-dev.json")


def _load_goldens() -> dict | None:
    if not os.path.isfile(GOLDENS_PATH):
        return None
    with open(GOLDENS_PATH) as f:
        return json.load(f)


GOLDENS = _load_goldens()
needs_goldens = pytest.mark.skipif(
    GOLDENS is None, reason=f"metric goldens not found at {GOLDENS_PATH} (set XVF_SHARED_METRICS)"
)
IMAGES = sorted(GOLDENS["images"]) if GOLDENS else ["(goldens absent)"]
PAIRS = [f"{p['reference']}->{p['test']}" for p in GOLDENS["tmqi_pairs"]] if GOLDENS else ["(goldens absent)"]


def load(name: str) -> np.ndarray:
    from PIL import Image

    with Image.open(os.path.join(SHARED_METRICS, "inputs", name)) as im:
        return np.asarray(im)


def tolerance(key: str) -> tuple[float, str]:
    """The goldens' tolerance for a metric, e.g. '1e-9 relative' -> (1e-9, 'relative')."""
    value, kind = GOLDENS["tolerances"][key].split()
    return float(value), kind


def assert_golden(got: float, want, key: str, what: str) -> None:
    if want == "NaN":
        assert math.isnan(got), f"{what}: expected NaN, got {got}"
        return
    tol, kind = tolerance(key)
    bound = tol * abs(want) if kind == "relative" else tol  # a golden 0 must then come out exactly 0
    assert abs(got - want) <= bound, f"{what}: got {got!r}, golden {want!r} ({tol} {kind})"


def pair(label: str) -> dict:
    return GOLDENS["tmqi_pairs"][PAIRS.index(label)]


def texture(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth random uint8 image with structure at every scale."""
    x = sum(gaussian_filter(rng.standard_normal(shape), s) * s for s in (1, 3, 9))
    return np.round(255 * (x - x.min()) / (x.max() - x.min())).astype(np.uint8)


# --- goldens --------------------------------------------------------------------------------------


@needs_goldens
@pytest.mark.parametrize("name", IMAGES)
def test_single_image_metrics_match_goldens(name):
    img, want = load(name), GOLDENS["images"][name]
    assert_golden(metrics.entropy(img), want["entropy_log2_256"], "entropy_log2_256", f"entropy {name}")
    assert_golden(metrics.tenengrad(img), want["tenengrad_mean_sq_01"], "tenengrad", f"tenengrad {name}")
    assert_golden(metrics.tenengrad(img, "mean_magnitude"), want["tenengrad_mean_mag_01"], "tenengrad",
                  f"tenengrad mean_magnitude {name}")  # fmt: skip
    assert_golden(metrics.lpc_si(img), want["lpc_si_255"], "lpc_si", f"lpc_si {name}")
    assert_golden(metrics.brisque(img), want["brisque_live_255"], "brisque_live_255", f"brisque {name}")


@needs_goldens
@pytest.mark.parametrize("name", IMAGES)
def test_lpc_si_on_unit_range_matches_goldens(name):
    # The same algorithm on [0, 1] (how LPC-SI is often misused): pins down its absolute constant C.
    img = load(name).astype(np.float64) / 255.0
    want = GOLDENS["images"][name]["lpc_si_01"]
    assert_golden(lpc_si_core(img), want, "lpc_si", f"lpc_si [0,1] {name}")
    # ...while the public function reads a [0, 1] float as the 8-bit image it stands for.
    assert metrics.lpc_si(img) == metrics.lpc_si(load(name))


@needs_goldens
@pytest.mark.parametrize("label", PAIRS)
def test_tmqi_matches_goldens(label):
    p = pair(label)
    ref, test = load(p["reference"]), load(p["test"])
    if min(ref.shape) < metrics.TMQI_MIN_SIDE:
        pytest.skip("below TMQI's minimum size (its error is tested below)")
    q, s, n = metrics.tmqi(ref, test, return_components=True)
    for got, key in ((q, "Q"), (s, "S"), (n, "N")):
        assert_golden(got, p["ldr255"][key], "tmqi", f"tmqi {key} {label}")
    s_local = tmqi_core(ref.astype(np.float64), test.astype(np.float64)).s_local
    for level, (got, want) in enumerate(zip(s_local, p["ldr255"]["s_local"], strict=True)):
        assert_golden(got, want, "tmqi", f"tmqi s_local[{level}] {label}")
    q01, s01, n01 = metrics.tmqi_paper_compat(ref, test, return_components=True)
    for got, key in ((q01, "Q"), (s01, "S"), (n01, "N")):
        assert_golden(got, p["ldr01"][key], "tmqi", f"tmqi_paper_compat {key} {label}")
    assert metrics.tmqi(ref, test) == q


@needs_goldens
def test_tmqi_naturalness_of_constant_matches_goldens():
    # The goldens' constant pair is too small for TMQI, but its N (zero-padded edge blocks) is checked.
    p = pair("constant128_64x64.png->constant128_64x64.png")
    test = load(p["test"]).astype(np.float64)
    assert_golden(statistical_naturalness(test), p["ldr255"]["N"], "tmqi", "N constant")
    assert_golden(statistical_naturalness(test / 255), p["ldr01"]["N"], "tmqi", "N constant [0,1]")
    with pytest.raises(ValueError, match="161"):
        metrics.tmqi(load(p["reference"]), load(p["test"]))


# --- known values and edge cases ------------------------------------------------------------------


@pytest.mark.parametrize("levels", [2, 3, 16, 256])
def test_entropy_of_equally_populated_levels(seed, levels):
    rng = np.random.default_rng(seed)
    values = np.repeat(np.linspace(0, 255, levels).round().astype(np.uint8), 12)
    img = rng.permutation(values).reshape(-1, 12)
    assert metrics.entropy(img) == pytest.approx(math.log2(levels), abs=1e-12)


def test_tenengrad_of_a_ramp():
    # Columns 0..W-1: Gx = 8/255 inside, 4/255 at the replicated left and right borders; Gy = 0.
    w = 40
    img = np.tile(np.arange(w, dtype=np.uint8), (7, 1))
    want_sq = ((w - 2) * 64 + 2 * 16) / (w * 255.0**2)
    want_mag = ((w - 2) * 8 + 2 * 4) / (w * 255.0)
    assert metrics.tenengrad(img) == pytest.approx(want_sq, rel=1e-12)
    assert metrics.tenengrad(img, "mean_magnitude") == pytest.approx(want_mag, rel=1e-12)
    assert metrics.tenengrad(img.T) == pytest.approx(want_sq, rel=1e-12)


@pytest.mark.parametrize("value", [0, 77, 255])
def test_constant_image_values(value):
    img = np.full((170, 181), value, dtype=np.uint8)
    assert metrics.entropy(img) == 0.0
    assert metrics.tenengrad(img) == 0.0
    assert metrics.tenengrad(img, "mean_magnitude") == 0.0
    assert metrics.lpc_si(img) == 0.0
    assert math.isnan(metrics.brisque(img))


def test_tmqi_of_constant_images_is_documented(seed):
    # A constant reference: no structure to keep, Q and S NaN as in the goldens' constant pair
    # (which is too small to score here); N, of the test alone, is still computed. Test sides
    # multiples of 11: no block has contrast.
    flat = np.full((165, 176), 128, dtype=np.uint8)
    q, s, n = metrics.tmqi(np.full(flat.shape, 3000, dtype=np.uint16), flat, return_components=True)
    assert math.isnan(q) and math.isnan(s) and n == 0.0
    textured = texture(np.random.default_rng(seed), flat.shape)
    q, s, n = metrics.tmqi(flat, textured, return_components=True)  # was scored against a flat field
    assert math.isnan(q) and math.isnan(s) and 0.0 < n <= 1.0
    # A constant test against a textured reference is defined; other sides: the zero padding of
    # the edge blocks gives the constant test some contrast.
    flat = np.full((170, 181), 128, dtype=np.uint8)
    textured = texture(np.random.default_rng(seed), flat.shape)
    q, s, n = metrics.tmqi(textured, flat, return_components=True)
    assert all(math.isfinite(v) for v in (q, s, n)), (q, s, n)
    assert 0.0 < n <= 1.0 and 0.0 <= s <= 1.0 + 1e-9


def test_float_images_off_the_unit_scale_are_refused(seed):
    img = texture(np.random.default_rng(seed), (170, 181)).astype(np.float64)  # 0..255 as floats
    for name in ("entropy", "tenengrad", "lpc_si", "brisque"):
        with pytest.raises(ValueError, match="not on the \\[0, 1\\] scale"):
            getattr(metrics, name)(img)
        # what the message offers gives the uint8 image's score
        assert getattr(metrics, name)(img, float_scaling="minmax") == pytest.approx(
            getattr(metrics, name)(metrics.to_8bit(img, "minmax")))  # fmt: skip
    assert metrics.entropy(img / 255 * 1.3 - 0.1) > 0  # an overshoot within the slack (0.5): clipped


def test_tmqi_inverted_test_has_no_structural_fidelity(seed):
    ref = texture(np.random.default_rng(seed), (200, 190))
    q, s, n = metrics.tmqi(ref, 255 - ref, return_components=True)
    assert s == 0.0
    assert q == pytest.approx(0.1988 * n**0.7088, rel=1e-12)
    assert metrics.tmqi(ref, ref) > q


def _coarsely_inverted(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A reference and a test sharing their fine texture, on opposite vertical ramps: the test is
    anti-correlated with the reference at TMQI's coarsest level only (as a model's flattened
    brightness left one NIH ROI, its TMQI 0.067 among 0.8s)."""
    rng = np.random.default_rng(seed)
    ramp, grain = np.linspace(-15, 15, 200)[:, None], 25 * rng.standard_normal((200, 180))
    ref = np.clip(np.round(128 + ramp + grain), 0, 255).astype(np.uint8)
    return ref, np.clip(np.round(128 - ramp + grain), 0, 255).astype(np.uint8)


def test_a_score_a_floor_set_is_told_with_the_value_floored(seed):
    ref, test = _coarsely_inverted(seed)
    parts = metrics.tmqi_scores(ref, test)
    assert parts.s_local[-1] < 0 < min(parts.s_local[:-1]) and parts.s == 0.0
    assert parts.q == metrics.tmqi(ref, test) == pytest.approx(0.1988 * parts.n**0.7088, rel=1e-12)
    (note,) = metrics.floor_notes("tmqi", test, parts)
    assert note.startswith("tmqi: the structural fidelity of level 5 of 5 (the coarsest) is "
                           f"{parts.s_local[-1]:.3g} (the output anti-correlated"), note  # fmt: skip
    assert f"S = 0, so Q = {parts.q:.4g} is naturalness alone" in note
    paper = metrics.tmqi_scores(ref, test, paper_scale=True)
    assert paper.q == metrics.tmqi_paper_compat(ref, test)
    (paper_note,) = metrics.floor_notes("tmqi_paper_compat", test, paper)  # exactly one, not none
    assert paper_note.startswith("tmqi_paper_compat: the structural fidelity of level 5 of 5 (the coarsest) is ")
    assert metrics.floor_notes("tmqi", ref, metrics.tmqi_scores(ref, ref)) == []  # nothing floored: nothing said
    flat = np.full((20, 20), 9, np.uint8)
    said = "lpc_si: the ROI is one grey level (9), which scores 0 by definition"
    assert metrics.floor_notes("lpc_si", flat) == [said]
    assert metrics.floor_notes("lpc_si", ref) == metrics.floor_notes("entropy", flat) == []


def test_an_inverted_output_with_no_naturalness_gets_one_note_q_0(seed):
    """Black and white pixels, inverted: anti-correlated at every level (S = 0) and block contrast
    beyond the naturalness model's Beta law (N = 0), so Q = 0: one note saying both, not one saying
    Q is naturalness alone beside another saying it is structure alone."""
    ref = np.where(np.random.default_rng(seed).random((198, 198)) < 0.5, 255, 0).astype(np.uint8)
    test = 255 - ref
    parts = metrics.tmqi_scores(ref, test)
    assert parts.q == parts.s == parts.n == 0.0 and max(parts.s_local) < 0
    (note,) = metrics.floor_notes("tmqi", test, parts)
    assert note.startswith("tmqi: the structural fidelity of levels 1, 2, 3, 4 and 5 of 5 are "), note
    assert note.endswith("which TMQI counts as 0: S = 0, and naturalness N = 0 (the output's mean 11x11-block "
                         "contrast is 0 or beyond the end of the model's Beta law): both parts floored, Q = 0"), note
    assert "alone" not in note


def test_a_level_fidelity_of_exactly_0_is_floored_and_said_too():
    """S = prod max(s_l, 0)^w_l is 0 where a level is 0, not only below: the note says so. (A pair of
    images whose mean fidelity comes out exactly 0.0 is not practical to build: the parts are given as
    tmqi_scores returns them.)"""
    n = 0.25
    parts = metrics.TmqiScores(0.1988 * n**0.7088, 0.0, n, (0.9, 0.8, 0.0, 0.7, 0.6))
    (note,) = metrics.floor_notes("tmqi", np.zeros((4, 4), np.uint8), parts)
    assert note == ("tmqi: the structural fidelity of level 3 of 5 is 0 (not positive: the output anti-correlated "
                    "with the original, or at 0 unrelated to it at that scale), which TMQI counts as 0: S = 0, so "
                    f"Q = {parts.q:.4g} is naturalness alone (0.1988 N^0.7088, N = 0.25)")


def test_tmqi_needs_161_px():
    ok = np.zeros((161, 161), dtype=np.uint8)
    ok[::2] = 200
    metrics.tmqi(ok, ok)
    with pytest.raises(ValueError, match=r"at least 161 px.*11x11"):
        metrics.tmqi(ok[:160], ok[:160])
    with pytest.raises(ValueError, match="161"):
        metrics.tmqi_paper_compat(ok[:, :150], ok[:, :150])


def test_lpc_si_prefers_sharp_images(seed):
    # the texture cut to four grey levels: their boundaries are step edges, which the blur takes
    # away. The smooth texture alone has none to lose: over 3000 seeds its LPC-SI once stayed only
    # 8% above the blurred one's (seed 2558; mean 59%, a long tail towards 0); with the steps, at
    # least 41% above (mean 72%, sd 7%)
    sharp = (np.round(texture(np.random.default_rng(seed), (128, 96)) / 85.0) * 85).astype(np.uint8)
    blurred = np.round(gaussian_filter(sharp.astype(np.float64), 2)).astype(np.uint8)
    assert metrics.lpc_si(sharp) > metrics.lpc_si(blurred)


def _planes_kept_and_peak(metric, img: np.ndarray) -> tuple[float, float]:
    """The memory ``metric(img)`` keeps after it returns and its peak, in float64 arrays of the
    image's size (tracemalloc: numpy's allocations included)."""
    with traced_memory() as memory:
        metric(img)
    kept, peak = memory.held, memory.peak
    return kept / (img.size * 8), peak / (img.size * 8)


def test_lpc_si_of_a_large_image_keeps_no_filter_bank(seed, monkeypatch):
    # The bank (24 filters the image's size) was built whole and kept after the call: 2.6 GB for
    # a 4096 x 3328 radiograph, two sizes' banks at once, and a 4.3 GB peak.
    from xvertfast.eval import _lpc

    assert 24 * 512 * 290 * 8 <= _lpc.CACHED_BANK_BYTES < 24 * 4096 * 3328 * 8  # ROIs' kept, whole images' not
    monkeypatch.setattr(_lpc, "CACHED_BANK_BYTES", 2**20)  # this image stands for a whole radiograph
    img = texture(np.random.default_rng(seed), (701, 613))  # a shape no other test scores
    kept, peak = _planes_kept_and_peak(metrics.lpc_si, img)
    assert kept < 1, f"{kept:.1f} image-sized planes kept after the call"
    assert peak < 32, f"peak of {peak:.1f} planes (38 with the whole bank, 25 without)"


def test_brisque_needs_its_half_scale_to_hold_the_window(seed):
    img = texture(np.random.default_rng(seed), (60, 60))
    for shape in ((3, 3), (8, 8), (12, 60)):  # finite scores (8 x 8: 153.5) that described the padding
        with pytest.raises(ValueError, match="at least 13 px"):
            metrics.brisque(img[: shape[0], : shape[1]])
    # 13 px halve to 7 (MATLAB's imresize gives ceil(n / 2)), which holds the window: was refused
    assert math.isfinite(metrics.brisque(img[:13, :60]))
    assert math.isfinite(metrics.brisque(img[:14, :13]))


def test_brisque_of_a_tall_image_keeps_no_dense_resampling_matrix(seed):
    # The half scale was taken with dense [n/2, n] matrices per side, kept per size: 64 MiB for a
    # 4096-px side, up to 16 sizes (1 GiB) kept, and n^2 work per column instead of 8 taps.
    img = texture(np.random.default_rng(seed), (3001, 64))  # a height no other test scores
    metrics.brisque(img[:64])  # parses the model (kept once, whatever the image) outside the count
    kept, peak = _planes_kept_and_peak(metrics.brisque, img)
    assert kept < 0.5, f"{kept:.2f} image-sized planes kept after the call (was 23)"
    assert peak < 8, f"peak of {peak:.1f} image-sized planes (was 27)"


def test_brisque_prefers_clean_images(seed):
    clean = texture(np.random.default_rng(seed), (128, 128))
    noisy = np.clip(clean + np.random.default_rng(seed + 1).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    assert metrics.brisque(clean) < metrics.brisque(noisy)


# --- input conventions ----------------------------------------------------------------------------


def test_to_8bit_conventions():
    u8 = np.array([[0, 7, 255]], dtype=np.uint8)
    assert metrics.to_8bit(u8) is u8
    # Integers are stretched over the region; 255 * 253 / 510 = 126.5 rounds away from zero.
    assert metrics.to_8bit(np.array([[1000, 1253, 1510]], dtype=np.uint16)).tolist() == [[0, 127, 255]]
    assert metrics.to_8bit(np.full((2, 3), 4095, dtype=np.uint16)).tolist() == [[0] * 3] * 2
    unit = np.array([[-0.1, 0.0, 0.5, 1.0, 1.2]])
    assert metrics.to_8bit(unit).tolist() == [[0, 0, 128, 255, 255]]
    assert metrics.to_8bit(unit, "minmax").tolist() == [[0, 20, 118, 216, 255]]  # 255 (x + 0.1) / 1.3
    assert metrics.to_8bit(unit.astype(np.float32)).dtype == np.uint8


def test_metrics_score_the_8bit_image(seed):
    img = texture(np.random.default_rng(seed), (170, 165))
    as_unit = img / 255.0
    as_uint16 = img.astype(np.uint16) * 257  # same image at 16 bits: stretched back to the same 8 bits
    assert np.array_equal(metrics.to_8bit(as_unit), img)
    assert np.array_equal(metrics.to_8bit(as_uint16), img)  # img spans 0..255
    for fn in (metrics.entropy, metrics.tenengrad, metrics.brisque):
        assert fn(as_unit) == fn(img)
    assert metrics.tmqi(img, as_unit) == metrics.tmqi(img, img)
    assert metrics.tmqi(as_uint16, img) == pytest.approx(metrics.tmqi(img, img), rel=1e-12)


SINGLE = {
    "entropy": metrics.entropy,
    "tenengrad": metrics.tenengrad,
    "lpc_si": metrics.lpc_si,
    "brisque": metrics.brisque,
    "tmqi": lambda img, **kw: metrics.tmqi(img, img, **kw),
    "tmqi_paper_compat": lambda img, **kw: metrics.tmqi_paper_compat(img, img, **kw),
}


@pytest.mark.parametrize("metric", SINGLE)
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((4, 200, 200)), "2-D"),
        (np.zeros(300), "2-D"),
        (np.zeros((0, 200)), "empty"),
        (np.full((200, 200), np.nan), "NaN"),
        (np.full((200, 200), np.inf), "NaN or infinite"),
        (np.zeros((200, 200), dtype=complex), "real"),
        (np.ma.masked_less(np.tile(np.linspace(0, 1, 200), (200, 1)), 0.1), "masked array with 4000 masked"),
    ],
    ids=["3d", "1d", "empty", "nan", "inf", "complex", "masked"],
)
def test_bad_inputs_raise(metric, bad, message):
    with pytest.raises(ValueError, match=message):
        SINGLE[metric](bad)


@pytest.mark.parametrize("metric", SINGLE)
def test_what_is_no_array_is_named(metric):
    # a Radiograph, None or a path became a 0-d array and was refused as "got shape ()", which named
    # none of them (a notebook passing read_image's result instead of its .pixels)
    from pathlib import Path

    from xvertfast.io import Radiograph

    img = np.tile(np.linspace(0, 1, 200, dtype=np.float32), (200, 1))
    rad = Radiograph(img, img, 8, "MONOCHROME2", "png", "a.png")
    for value, said in [(rad, "got a Radiograph: give its .pixels"), (None, "got NoneType"),
                        (Path("a.png"), "got the path 'a.png': read it with xvertfast.io.read_image"),
                        ("a.png", "got the path 'a.png'")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"^{metric}: .*must be a 2-D array .*, {said}"):
            SINGLE[metric](value)


@pytest.mark.parametrize("metric", SINGLE)
def test_one_image_in_another_layout_is_told_how_to_give_it(metric):
    """An RGB array as PIL or imageio read it, or a network's [1, 1, H, W], was refused with "got shape
    (200, 200, 3)" alone, where enhance, find_spine and the baselines say how to give it (516fa72)."""
    img = np.tile(np.linspace(0, 1, 200, dtype=np.float32), (200, 1))
    name = "reference" if metric.startswith("tmqi") else "img"
    for given, hint in [(np.stack([img] * 3, axis=-1), "a colour image, channels last: give one channel [H, W]; "
                         "xvertfast.io.read_image gives a colour file's luminance"),
                        (img[None, None], f"one image with axes of length 1: give {name}.squeeze()")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"^{metric}: {name} must be a 2-D array .*, got shape "
                                             f"{re.escape(str(given.shape))} {re.escape(f'({hint})')}$"):  # fmt: skip
            SINGLE[metric](given)
    with pytest.raises(ValueError, match=r"^tmqi: test must be .*: give test\.squeeze\(\)\)$"):
        metrics.tmqi(img, img[None])
    with pytest.raises(ValueError, match=r"^to_8bit: img must be .*, got shape \(2, 200, 200\) \(a stack of 2 images, "
                                         r"or one with its channels first: give one \[H, W\] at a time, img\[i\]\)$"):  # fmt: skip
        metrics.to_8bit(np.stack([img, img]))  # (a batch: told the shape alone before)


@pytest.mark.parametrize("metric", SINGLE)
def test_a_masked_array_with_nothing_masked_scores_as_its_array(metric):
    img = np.random.default_rng(3).random((200, 200))
    assert SINGLE[metric](np.ma.masked_array(img, mask=False)) == SINGLE[metric](img)


@pytest.mark.parametrize("metric", SINGLE)
def test_unknown_float_scaling_raises(metric):
    with pytest.raises(ValueError, match="float_scaling"):
        SINGLE[metric](np.zeros((200, 200)), float_scaling="percent")


def test_other_argument_errors():
    img = np.zeros((200, 180), dtype=np.uint8)
    with pytest.raises(ValueError, match="variant"):
        metrics.tenengrad(img, "max")
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.tmqi(img, img[:, :170])
    # (counted, and told how to fill them, as preprocess's and wls's refusals: it said "contains NaN" alone)
    with pytest.raises(ValueError, match=r"^tmqi: reference contains 36000 NaN or infinite values: replace them "
                                         r"first, e\.g\. np\.nan_to_num\(reference, nan=0\.0, posinf=1\.0, "
                                         r"neginf=0\.0\) \(torch\.nan_to_num for a tensor\)$"):  # fmt: skip
        metrics.tmqi(np.full(img.shape, np.nan), img)
    with pytest.raises(ValueError, match="2x2"):
        metrics.lpc_si(img[:1])


# --- the BRISQUE model ----------------------------------------------------------------------------


def test_brisque_model_is_package_data_with_its_notice():
    folder = resources.files("xvertfast.eval").joinpath("brisque_live")
    assert "University of Texas at Austin" in folder.joinpath("NOTICE").read_text("ascii")
    model = load_model()
    assert model.support_vectors.shape == (774, 36) and model.coef.shape == (774,)
    assert (model.gamma, model.rho, model.lower, model.upper) == (0.05, -153.591, -1.0, 1.0)
    assert np.all(model.feature_max > model.feature_min)


def test_brisque_model_parser():
    text = "svm_type epsilon_svr\nkernel_type rbf\ngamma 0.5\ntotal_sv 2\nrho 1.5\nSV\n2 1:0.5 3:-1\n-1 2:0.25\n"
    gamma, rho, coef, sv = _parse_model(text)
    assert (gamma, rho) == (0.5, 1.5)
    assert coef.tolist() == [2.0, -1.0]
    assert sv.tolist() == [[0.5, 0.0, -1.0], [0.0, 0.25, 0.0]]  # features left out are 0
    with pytest.raises(ValueError, match="epsilon_svr"):
        _parse_model(text.replace("kernel_type rbf", "kernel_type poly"))
    with pytest.raises(ValueError, match="support vectors"):
        _parse_model(text.replace("total_sv 2", "total_sv 3"))


def test_tensors_are_scored_as_their_values(seed):
    # a tensor that requires grad failed with torch's "Can't call numpy() on Tensor that requires
    # grad", a bfloat16 one with "Got unsupported ScalarType BFloat16"
    import torch

    roi = np.random.default_rng(seed).random((48, 40))
    want = metrics.entropy(roi)
    assert metrics.entropy(torch.from_numpy(roi).requires_grad_()) == want
    assert metrics.tenengrad(torch.from_numpy(roi).requires_grad_()) == metrics.tenengrad(roi)
    half = torch.from_numpy(roi).bfloat16()
    assert metrics.entropy(half) == metrics.entropy(half.float().numpy())


def test_a_float_image_spanning_more_than_float64_can_subtract_is_stretched_not_zeroed():
    """float_scaling='minmax' of values near float64's limits: max - min overflowed to inf, every
    pixel came out 0 (with overflow warnings), a constant image scored in the place of this one."""
    import warnings

    img = np.array([[-1e308, 0.0, 1e308], [-0.5e308, 1.7e308, 0.5e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the overflow said itself only as a RuntimeWarning)
        got = metrics.to_8bit(img, float_scaling="minmax")
    np.testing.assert_array_equal(got, [[0, 94, 189], [47, 255, 142]])  # round(255 (v + 1e308) / 2.7e308)
    assert metrics.entropy(img, float_scaling="minmax") == pytest.approx(np.log2(6))


@pytest.mark.parametrize("scale", [1e12, 1e-300, 1e308, -1e308])  # -1e308: from -1e308 to 1e308
def test_a_tmqi_reference_of_any_range_is_stretched_not_flattened(scale):
    """TMQI stretches the reference by round((2^32 - 1) / (max - min)): over a range above 8.6e9
    (an int64 or large float reference) that factor rounded to 0 and the reference was scored as a
    flat field without a word (Q 0.33 for 0.92 here), under 2e-299 it overflowed (OverflowError),
    and a range float64 cannot hold (-1e308 to 1e308) gave 0 too. The score is that of the
    reference on [0, 1]."""
    rows, cols = np.mgrid[:200, :200]
    ref = np.sin(cols / 9.0) * np.cos(rows / 13.0) + 0.1 * np.random.default_rng(5).random((200, 200))
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    test = ref**0.8
    want = metrics.tmqi(ref, test, return_components=True)
    assert want[0] > 0.9
    scaled = (2 * ref - 1) * -scale if scale < 0 else ref * scale
    assert metrics.tmqi(scaled, test, return_components=True) == pytest.approx(want, rel=1e-9)


def test_a_float_image_whose_span_times_255_overflows_is_stretched_not_zeroed():
    """float_scaling='minmax' of values from 0 to 1e308: max - min is finite, but 255 (v - min)
    overflowed for every pixel above 7e305, which came out 0 (with overflow warnings): the
    image scored as nearly constant (entropy 0.04 bits for a random ROI of 8)."""
    import warnings

    img = np.array([[0.0, 1e308, 0.5e308], [0.25e308, 0.75e308, 0.2e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = metrics.to_8bit(img, float_scaling="minmax")
    np.testing.assert_array_equal(got, [[0, 255, 128], [64, 191, 51]])  # round(255 v / 1e308)
    roi = np.random.default_rng(3).random((40, 40))
    assert metrics.entropy(roi * 1e308, float_scaling="minmax") == metrics.entropy(roi, float_scaling="minmax")
