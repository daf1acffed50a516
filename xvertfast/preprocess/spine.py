"""Finding the thoracic spine in a frontal chest radiograph, and the ROIs around it.

The papers place their two spine ROIs by hand; xvertfast finds the spine as
the bright, left-right symmetric vertical band near the middle of the image:

1. the image is resampled to 256 rows;
2. twelve horizontal bands between 15% and 75% of the height are each
   averaged into a column profile; in the central 35-65% of the width each
   column is scored by how much brighter it is than the columns 7% of the width
   to either side (the paraspinal lung fields) plus how mirror-symmetric the
   profile is about it (the rib cage); the best column is the band's estimate;
3. the centre line is the median of the band estimates: a vertical line. The
   median ignores the bands where the heart shadow pulls the estimate aside;
   a strongly tilted or scoliotic spine needs the centres given by hand.

Resolution rule: ROI sizes are defined at a canonical working height of
:data:`WORKING_HEIGHT` = 1024 rows (the NIH images the papers' 512 x 512 and
512 x 290 ROIs were drawn on). An image of height H gets ROIs scaled by
H / 1024, so a ROI covers the same share of the anatomy on a 1024 px NIH
image, a 2048 px JSRT image or a 4000+ px CR image. The upper and lower
thoracic centres sit at :data:`UPPER_LEVEL` and :data:`LOWER_LEVEL` of the
height, on the centre line. On the 18 cxr-dev images the centre line lies
within 4.3% of the width (mean 1.6%) of centres marked by eye.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from xvertfast._paths import PATH_TYPES
from xvertfast._pixels import describe_masked, describe_non_array, not_finite, shape_hint
from xvertfast._text import count, from_cli

__all__ = ["find_spine", "Spine", "Box", "WORKING_HEIGHT", "UPPER_LEVEL", "LOWER_LEVEL", "polarity_score",
           "looks_inverted", "inverted_warning", "inverted_reason", "shape_warning", "FRONTAL_ASPECT_RANGE",
           "centres_order_problem", "batch_fixes", "BatchFixes"]  # fmt: skip

#: Height (rows) at which ROI sizes are defined; ROIs scale with image height / WORKING_HEIGHT.
WORKING_HEIGHT = 1024
#: Heights (fraction of the image height) of the upper and lower thoracic ROI centres.
UPPER_LEVEL, LOWER_LEVEL = 0.30, 0.58

_ANALYSIS_ROWS = 256
_BANDS = np.arange(0.15, 0.75, 0.05)
_SEARCH = (0.35, 0.65)
_SURROUND = 0.07  # distance to the paraspinal columns, fraction of the width
_MIRROR = 0.22  # half-width of the symmetry window
#: A centre line within this share of the width of a search range end counts as pinned there
#: (the 18 cxr-dev images, read the right way up: 47-59% of the width, at most a quarter of
#: the bands at an end; inverted or cropped past the spine: 35% or 64-65%).
_EDGE_MARGIN = 0.015
#: A band whose smoothed column profile varies by at most this share of the image's largest value
#: has nothing to find the spine by: on a constant image every column scored alike and the first,
#: 35% of the width, was taken. The 18 cxr-dev images' least varied band: 0.17. Where fewer than
#: half the bands vary more (one pixel apart from a constant image: its band alone), the image has
#: too little to find it by, and the bands that vary are not trusted either.
_FLAT = 1e-3


class Box(NamedTuple):
    """A crop box in image pixels, half-open: ``image[top:bottom, left:right]``."""

    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True)
class Spine:
    """The spine centre line of one image and the ROI centres on it (image pixel coordinates)."""

    shape: tuple[int, int]  #: (H, W) of the image
    x: float  #: column of the (vertical) centre line
    band_points: np.ndarray  #: [k, 2] (row, column) estimates of the bands, for display
    upper: tuple[float, float]  #: (row, column) centre of the upper thoracic ROI
    lower: tuple[float, float]  #: (row, column) centre of the lower thoracic ROI

    def __repr__(self) -> str:
        """One line, the centres to a tenth of a pixel and the band estimates counted (``.band_points``
        holds them): the dataclass's repr printed that array whole, inside an EnhanceResult's too."""
        def at(point) -> str:
            return "(" + ", ".join(f"{float(v):.1f}" for v in point) + ")"

        return (f"Spine(shape={tuple(self.shape)}, x={float(self.x):.1f}, upper={at(self.upper)}, "
                f"lower={at(self.lower)}, {count(len(self.band_points), 'band point')})")  # fmt: skip

    @property
    def scale(self) -> float:
        """Image pixels per working pixel (H / WORKING_HEIGHT)."""
        return self.shape[0] / WORKING_HEIGHT

    def with_centres(self, upper: tuple[float, float] | None = None,
                     lower: tuple[float, float] | None = None) -> Spine:  # fmt: skip
        """The same spine with ROI centres given by hand ((row, column) in image pixels, inside
        the image; any pair of numbers: a tuple, a NumPy array, a tensor). The upper centre must
        lie above the lower one (a smaller row): swapped, spine mode enhanced and the evaluation
        scored each ROI under the other's name."""
        spine = replace(self, upper=self.upper if upper is None else _centre(upper, "upper", self.shape),
                        lower=self.lower if lower is None else _centre(lower, "lower", self.shape))  # fmt: skip
        if upper is not None and lower is not None:
            hint = "are the two swapped?"
        else:
            hint = f"the {'lower' if upper is not None else 'upper'} one is the centre found; give both"
        if (problem := centres_order_problem(spine.upper[0], spine.lower[0], hint)) is not None:
            raise ValueError(problem)
        return spine

    @property
    def detected(self) -> bool:
        """Whether both ROI centres are the detected ones (on the centre line), not given by hand."""
        return self.upper[1] == self.x == self.lower[1]

    def pinned_at_search_edge(self) -> bool:
        """Whether the centre line sits at an end of the column search range (35-65% of the
        width), or half the bands' estimates do: where the spine lies outside the range (a
        cropped or off-centre image) or the image is inverted, the best column is an end."""
        if not len(self.band_points):
            return False
        lo, hi = _SEARCH[0] + _EDGE_MARGIN, _SEARCH[1] - _EDGE_MARGIN
        share = self.band_points[:, 1] / self.shape[1]
        at_ends = (share < lo) | (share > hi)
        return bool(at_ends.mean() >= 0.5 or not lo <= self.x / self.shape[1] <= hi)

    def _box(self, centre: tuple[float, float], height: int, width: int, keep_shape: bool = False) -> Box:
        """A box of height x width working pixels about ``centre``, inside the image: cut to it,
        or with ``keep_shape`` shrunk on both sides alike."""
        for name, value in (("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
                raise ValueError(f"ROI {name} must be a number > 0 (working pixels), got {value!r}")
        H, W = self.shape
        fit = min(1.0, W / (width * self.scale), H / (height * self.scale)) if keep_shape else 1.0
        h = min(H, max(1, round(height * self.scale * fit)))
        w = min(W, max(1, round(width * self.scale * fit)))
        top = int(np.clip(round(centre[0] - h / 2), 0, H - h))
        left = int(np.clip(round(centre[1] - w / 2), 0, W - w))
        return Box(top, left, top + h, left + w)

    def train_rois(self, size: int = 512) -> list[Box]:
        """The upper and lower square training ROIs (size > 0 at the working height), inside the image;
        square also where the image is too narrow for them (they shrink): training and spine-mode
        enhancement resize them to a fixed square, which would otherwise stretch the anatomy."""
        return [self._box(c, size, size, keep_shape=True) for c in (self.upper, self.lower)]

    def eval_rois(self, height: int = 512, width: int = 290) -> list[Box]:
        """The upper and lower evaluation ROIs of the papers (height x width > 0 at the working height),
        cut to the image where it is narrower (they are scored at their own size)."""
        return [self._box(c, height, width) for c in (self.upper, self.lower)]


def centres_order_problem(upper_row: float, lower_row: float, hint: str = "are the two swapped?") -> str | None:
    """What is wrong with an upper ROI centre at ``upper_row`` and a lower one at ``lower_row``
    (None where the upper lies above): one wording wherever centres are refused for it (a ROI
    CSV's row, find_spine, a Spine given to enhance), so that a user learns one message."""
    if upper_row < lower_row:
        return None
    return (f"the upper ROI centre's row ({upper_row:g}) must be above the lower ROI centre's ({lower_row:g}), "
            f"rows counting from the top of the image: {hint}")


def _centre(value, name: str, shape: tuple[int, int]) -> tuple[float, float]:
    """A (row, column) centre given by hand, as two finite floats inside an image of ``shape``."""
    if hasattr(value, "detach"):  # a tensor: off its device, without its graph
        value = value.detach().cpu().double().numpy()
    try:
        pair = tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or not all(np.isfinite(pair)):
        raise ValueError(f"the {name} ROI centre must be two finite numbers (row, column), got {value!r}")
    if not (0 <= pair[0] < shape[0] and 0 <= pair[1] < shape[1]):
        raise ValueError(f"the {name} ROI centre ({pair[0]:g}, {pair[1]:g}) lies outside the {shape[1]}x{shape[0]} "
                         "image (row, column in pixels)")  # fmt: skip
    return pair


def _as_array(pixels, who: str) -> np.ndarray:
    """[H, W] float64 of a NumPy array or a torch tensor (any float dtype, any device)."""
    if isinstance(pixels, PATH_TYPES):  # (NumPy: "could not convert string to float")
        raise TypeError(f"{who}: pixels must be an image array, got {describe_non_array(pixels)}")
    if (masked := describe_masked(pixels)) is not None:  # (np.asarray drops the mask: its pixels looked at)
        raise TypeError(f"{who}: pixels must be an image array, got {masked}: fill them first (array.filled(value))")
    if hasattr(pixels, "detach"):
        if pixels.is_complex():
            raise TypeError(f"{who}: pixels must hold real numbers, got {pixels.dtype}")
        pixels = pixels.detach().cpu().double().numpy()
    array = np.asarray(pixels)
    if array.dtype.kind == "O" and array.ndim == 0:  # (a Radiograph, None: "must hold real numbers, got object")
        raise TypeError(f"{who}: pixels must be an image array, got {describe_non_array(pixels)}")
    if array.dtype.kind not in "biuf":  # (complex lost its imaginary part with a mere warning)
        raise TypeError(f"{who}: pixels must hold real numbers, got {array.dtype}")
    return array.astype(np.float64, copy=False)


def _smoothed(profile: np.ndarray, width: int) -> np.ndarray:
    """A band's column profile as the search scores it: smoothed over 1% of the width."""
    import scipy.ndimage as ndi

    return ndi.gaussian_filter1d(profile, 0.01 * width + 0.5)


def _band_estimate(prof: np.ndarray, width: int) -> int:
    """The spine's column in one band, from its :func:`_smoothed` profile ``prof``."""
    xs = np.arange(int(_SEARCH[0] * width), int(_SEARCH[1] * width))
    d = max(2, int(_SURROUND * width))
    half = int(_MIRROR * width)
    ridge = prof[xs] - 0.5 * (prof[np.maximum(xs - d, 0)] + prof[np.minimum(xs + d, width - 1)])
    # mirror symmetry about each x: minus the mean |prof(x - 1 - i) - prof(x + 1 + i)| over
    # i < n(x) = min(half, x, width - 1 - x), all x at once (a masked matrix of offsets)
    n = np.minimum(np.minimum(half, xs), width - 1 - xs)
    i = np.arange(max(int(n.max()), 1))
    inside = i[None, :] < n[:, None]
    left = np.clip(xs[:, None] - 1 - i[None, :], 0, width - 1)
    right = np.clip(xs[:, None] + 1 + i[None, :], 0, width - 1)
    total = np.where(inside, np.abs(prof[left] - prof[right]), 0.0).sum(axis=1)
    sym = np.where(n > 0, -total / np.maximum(n, 1), 0.0)

    def z(a: np.ndarray) -> np.ndarray:
        return (a - a.mean()) / (a.std() + 1e-12)

    return int(xs[np.argmax(z(ridge) + z(sym))])


def find_spine(pixels, upper: tuple[float, float] | None = None,
               lower: tuple[float, float] | None = None) -> Spine:  # fmt: skip
    """Finds the spine centre line of a frontal chest radiograph (bright = bone, [H, W]).

    Args:
        pixels: NumPy array or torch tensor [H, W], bright = bone (as read by xvertfast.io).
        upper, lower: optional (row, column) ROI centres given by hand, inside the image and
            the upper one above the lower (ValueError otherwise); they replace the detected ones.

    Returns:
        :class:`Spine`. Images too small to analyse (under 16 x 16, or narrower than 16 columns
        once scaled to the analysis height) get the image's centre column, as do images with no
        contrast to find it by (constant, or nearly: in most of the bands looked at, every
        column alike to within 0.1% of the largest value): those have no ``band_points`` (:func:`image_warnings` says why of the latter).
    """
    import scipy.ndimage as ndi

    arr = _as_array(pixels, "find_spine")
    if arr.ndim != 2 or not arr.size:  # (an empty image has no centre column: its ROIs lay outside it)
        raise ValueError(f"find_spine: pixels must be [H, W] with H, W >= 1, got shape {arr.shape}{shape_hint(arr.shape)}")
    if not (finite := np.isfinite(arr)).all():
        raise ValueError(not_finite("find_spine", int((~finite).sum())))
    H, W = arr.shape
    x, points = (W - 1) / 2.0, np.zeros((0, 2))  # (where nothing can be found: the centre column)
    if not _too_small(H, W):
        factor = _ANALYSIS_ROWS / H
        small = ndi.zoom(arr, factor, order=1)
        h, w = small.shape
        flat = _FLAT * float(np.abs(small).max())
        estimates = []
        for fy in _BANDS:
            rows = small[int(fy * h) : max(int(fy * h) + 1, int((fy + 0.05) * h))]
            prof = _smoothed(rows.mean(0), w)
            if np.ptp(prof) <= flat:  # no contrast (see _FLAT)
                continue
            estimates.append(((fy + 0.025) * H, (_band_estimate(prof, w) + 0.5) * W / w - 0.5))
        if 2 * len(estimates) >= len(_BANDS):
            points = np.array(estimates)
            x = float(np.median(points[:, 1]))
    spine = Spine((H, W), x, points, (UPPER_LEVEL * H, x), (LOWER_LEVEL * H, x))
    return spine.with_centres(upper, lower)


def _too_small(H: int, W: int) -> bool:
    """Whether an H x W image is too small to analyse, or too narrow once scaled to the analysis height."""
    return H < 16 or W < 16 or W * _ANALYSIS_ROWS / H < 16


def _no_contrast(spine: Spine) -> bool:
    """Whether :func:`find_spine` put ``spine`` on the centre column for want of contrast (not by
    hand, nor for an image too small to analyse): most of its bands blank (collimated, say) or
    nearly constant."""
    return spine.detected and not len(spine.band_points) and not _too_small(*spine.shape)


#: Polarity scores below this flag an image as looking inverted (see :func:`polarity_score`).
INVERTED_BELOW = -0.02


def polarity_score(pixels) -> float:
    """How much brighter the central band (spine and mediastinum) is than the lung fields.

    The mean of the columns at 42-58% of the width minus that of the columns at 15-33% and
    67-85%, over rows 20-70% of the height, on pixels in [0, 1]. A frontal radiograph read
    the right way up (bright = bone) scores above zero: +0.06 to +0.35 on the 18 cxr-dev
    images, and exactly the negative of that when inverted. A file stored bone-dark without
    saying so (MONOCHROME1 as a plain PNG) therefore scores below zero. White-out lungs or
    a non-frontal view can score low too, which is why this only ever warns.
    """
    return _polarity_score(pixels, "polarity_score")


def _polarity_score(pixels, who: str) -> float:
    """:func:`polarity_score`, its pixels refused in ``who``'s name: looks_inverted's were refused
    as polarity_score's, a function the caller did not call."""
    arr = _as_array(pixels, who)
    if arr.ndim != 2 or not arr.size:
        raise ValueError(f"{who}: pixels must be [H, W] with H, W >= 1, got shape {arr.shape}{shape_hint(arr.shape)}")
    H, W = arr.shape
    rows = arr[int(0.20 * H) : max(int(0.70 * H), int(0.20 * H) + 1)]

    def band(a: float, b: float) -> np.ndarray:
        return rows[:, int(a * W) : max(int(b * W), int(a * W) + 1)].ravel()

    lungs = np.concatenate([band(0.15, 0.33), band(0.67, 0.85)])
    return float(band(0.42, 0.58).mean() - lungs.mean())


def looks_inverted(pixels) -> bool:
    """True where :func:`polarity_score` says the image looks stored bone-dark."""
    return _polarity_score(pixels, "looks_inverted") < INVERTED_BELOW


def inverted_warning(rad, *, one_image: bool = False) -> str | None:
    """The warning every batch command gives for a radiograph (:class:`xvertfast.io.Radiograph`)
    that :func:`looks_inverted`, naming its file and the fix; None for one that does not.

    ``one_image``: in the words of a Python call on one image (``Enhancer.enhance``), whose fix is
    read_image's ``photometric``, not an @list; ``rad`` may then be bare pixels, named as such."""
    reason = inverted_reason(rad, one_image=one_image)
    if reason is None:
        return None
    pixels = getattr(rad, "pixels", rad)
    return f"{'pixels' if pixels is rad else rad.path}: {reason}"  # (bare pixels: one_image alone)


def inverted_reason(rad, *, one_image: bool = False) -> str | None:
    """What :func:`inverted_warning` says after the file's name: 'looks inverted', why, and the fix
    for ``rad`` (another message that names the file its own way, evaluate's refusal of an output,
    gives it too); None where the image does not look inverted."""
    pixels = getattr(rad, "pixels", rad)
    if not looks_inverted(pixels):
        return None
    if pixels is rad:
        hint = "if they store bone dark, give 1 - pixels"
    elif rad.source_format not in ("png", "jpeg"):
        hint = "check its photometric interpretation"
    elif rad.photometric == "MONOCHROME1":  # (PNG and JPEG record none: the @list's tag inverted it)
        hint = ("it was read with photometric='MONOCHROME1': if it stores bone bright, read it without" if one_image
                else "it is tagged MONOCHROME1 in its @list: if it stores bone bright, drop the tag")
    elif one_image:
        hint = "if it stores bone dark, read it with read_image(path, photometric='MONOCHROME1')"
    else:
        hint = "if it stores bone dark, list it in an @list with a tab and MONOCHROME1 after its path"
    return (f"looks inverted (its central band is darker than the lung fields; a rotated or non-frontal view can "
            f"do this too); {hint}")


#: The width / height a radiograph may have for the spine finder to be trusted without a word.
#: Frontal chest radiographs are about 0.8-1.25 (detector plates of 35 x 43 cm either way round,
#: 43 x 43, the square NIH images; cxr-dev: 1.0-1.22), cropped ones 0.7-1.4; the range is wider
#: still, so that an odd crop is not warned of. Outside it the image is a strip, a spine or a page
#: of several views, not a chest, and the finder still picks a column (4000 x 300 gave a small
#: grey patch, 300 x 4000 two grey bands).
FRONTAL_ASPECT_RANGE = (0.5, 2.0)


#: How a Python caller of ``Enhancer.enhance`` looks at the spine found, and gives its own instead
#: of ``--preview`` and ``--rois`` (see ``one_image`` in :func:`image_warnings`)
_LOOK_IN_PYTHON = "look at the result's boxes"
_GIVE_IN_PYTHON = "give its centres (spine=xvertfast.find_spine(pixels, upper=(row, col), lower=(row, col)))"


class BatchFixes(NamedTuple):
    """How a batch job's spine warnings and notes say to deal with a spine in doubt
    (:func:`batch_fixes`): each a phrase to follow "; " or "or "."""

    check: str  #: check the spine found, or give the centres
    look: str  #: look at the ROIs placed
    give: str  #: give the ROI centres


def batch_fixes(cli: bool | None = None) -> BatchFixes:
    """How a batch job's spine warnings say to check the spine found, to look at its ROIs, and to
    give its centres, in the caller's words (:func:`xvertfast._text.from_cli`): the CLI's options,
    or the arguments of a Python call (``Enhancer.enhance_files(preview=, rois=)``), who were told
    of --preview and --rois they never typed. Public, as the evaluation's notes on an image's ROIs
    (:mod:`xvertfast.eval.protocol`) word their fix as these warnings do. ``cli``: the CLI's words
    (True) or Python's (False) whoever calls (training's record of an image's warnings, said again
    to a later start in its own words); None: the caller's."""
    if from_cli() if cli is None else cli:
        return BatchFixes("check it with --preview (enhance) or the overlay (preprocess), or give --rois",
                          "look at them (enhance --preview, preprocess's overlay)", "give its centres (--rois FILE)")
    return BatchFixes("check it with enhance_files' preview= or preprocess_files' overlay, or give rois=",
                      "look at them (enhance_files' preview=, preprocess_files' overlay)",
                      "give its centres (rois=FILE)")


def shape_warning(path: str, spine: Spine, *, one_image: bool = False) -> str | None:
    """The warning for a spine found by :func:`find_spine` on an image whose width / height lies
    outside :data:`FRONTAL_ASPECT_RANGE` (``path``: its file, named in it); None inside the range,
    or where the ROI centres were given by hand (nothing was found to doubt). ``one_image``: the
    fix in a Python caller's words (:func:`image_warnings`)."""
    H, W = spine.shape
    low, high = FRONTAL_ASPECT_RANGE
    if not spine.detected or low <= W / H <= high:
        return None
    ratio = _outside(W / H, low, high)
    fix = f"{_LOOK_IN_PYTHON}, or {_GIVE_IN_PYTHON}" if one_image else batch_fixes().check
    return (f"{path}: {W} x {H}: not the shape of a frontal chest radiograph (width / height {ratio}, outside "
            f"{low:g}-{high:g}); the spine found may be wrong: {fix}")  # fmt: skip


def _outside(value: float, low: float, high: float) -> str:
    """``value``, outside ``low``-``high``, in the fewest digits (two or more) that still read
    outside it: in two, 1000 x 499's 2.004 read "2, outside 0.5-2"."""
    for digits in range(2, 17):
        said = f"{value:.{digits}g}"
        if not low <= float(said) <= high:
            return said
    return repr(value)  # (which reads back as the value itself)


def image_warnings(rad, spine: Spine | None = None, *, one_image: bool = False) -> list[str]:
    """Everything a batch command warns about for one decoded radiograph: what decoding
    changed (``rad.notes``: colour to luminance, first page of several), a polarity that
    looks inverted, and, for a detected spine (``spine``: what :func:`find_spine` found on it),
    an image not shaped like a chest radiograph or else the spine pinned at the end of its
    search range. Each names the file; the fixes name the CLI's options or, from Python, the
    arguments (:func:`batch_fixes`).

    ``one_image``: what ``Enhancer.enhance`` warns of, with the fixes in a Python caller's words
    (read_image's photometric, find_spine's centres) for the CLI's options; ``rad`` may be bare
    pixels, named as such; decoding's notes are left to read_image, which gives them."""
    inverted = inverted_warning(rad, one_image=one_image)
    path, notes = (getattr(rad, "path", "pixels"), []) if one_image else (rad.path, list(rad.notes))
    give = _GIVE_IN_PYTHON if one_image else batch_fixes().give
    if spine is not None and _no_contrast(spine):  # (nor a polarity, a shape or an edge to speak of)
        return notes + [f"{path}: too little contrast to find the spine by in most of the rows looked at (blank, "
                        f"collimated or nearly constant): its ROIs are on the centre column; if it is a radiograph, "
                        f"{give}"]  # fmt: skip
    spine_doubt = None if spine is None else shape_warning(path, spine, one_image=one_image)
    # such a shape, or an inverted polarity, explains a pinned spine too: one warning, not two
    pinned = spine is not None and spine.detected and spine.pinned_at_search_edge()
    if spine_doubt is None and inverted is None and pinned:
        look = _LOOK_IN_PYTHON if one_image else batch_fixes().look
        spine_doubt = (f"{path}: the spine was found at the edge of where it is looked for "
                       f"({spine.x / spine.shape[1]:.0%} of the width): the image may be cropped, off-centre or not a "
                       f"frontal view, and its ROIs may miss the spine; {look} or {give}")  # fmt: skip
    return notes + [warning for warning in (inverted, spine_doubt) if warning]
