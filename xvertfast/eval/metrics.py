"""Image-quality metrics of the XVertNet evaluation: entropy, Tenengrad, LPC-SI, TMQI, BRISQUE.

Each follows shared/metrics/SPEC.md and matches the metric authors' MATLAB code
(shared/metrics/goldens-dev.json) within its tolerance. Inputs are 2-D NumPy
arrays (one ROI); outputs are Python floats.

Input convention (the metrics' values depend on it, see :func:`to_8bit`): every
metric scores the **8-bit** version of its image. uint8 is used as it is; other
integer types are min-max stretched over the region; float images are taken as
enhanced outputs in [0, 1] (``float_scaling="unit"``, clipped) or stretched like
integers (``float_scaling="minmax"``). Only TMQI's reference is used unconverted.
"""

from __future__ import annotations

import numpy as np

from xvertfast._pixels import describe_masked, describe_non_array, not_finite, shape_hint
from xvertfast.eval._brisque import WINDOW as BRISQUE_WINDOW
from xvertfast.eval._brisque import brisque_core
from xvertfast.eval._lpc import lpc_si_core
from xvertfast.eval._tmqi import MIN_SIDE as TMQI_MIN_SIDE
from xvertfast.eval._tmqi import LEVEL_WEIGHTS as TMQI_LEVEL_WEIGHTS
from xvertfast.eval._tmqi import TmqiScores, tmqi_core

__all__ = [
    "FLOAT_SCALINGS",
    "TENENGRAD_VARIANTS",
    "TMQI_MIN_SIDE",
    "BRISQUE_MIN_SIDE",
    "UNIT_SCALE_SLACK",
    "off_the_unit_scale",
    "to_8bit",
    "entropy",
    "tenengrad",
    "lpc_si",
    "tmqi",
    "tmqi_paper_compat",
    "tmqi_scores",
    "TmqiScores",
    "floor_notes",
    "brisque",
]

#: How float images become 8-bit: "unit" = round(255 clip(x, 0, 1)); "minmax" = stretched like integers.
FLOAT_SCALINGS = ("unit", "minmax")
#: BRISQUE's smallest side: its half scale, ceil(n / 2) px as MATLAB's imresize gives it, must still
#: hold the 7x7 Gaussian window (13 px halve to 7).
BRISQUE_MIN_SIDE = 2 * BRISQUE_WINDOW - 1
#: How far outside [0, 1] a float image under ``float_scaling="unit"`` may reach (an enhancement's
#: overshoot, clipped) before it is refused as being on another scale (0..255, stored values).
UNIT_SCALE_SLACK = 0.5
#: "mean_squared" = mean(Gx² + Gy²) (the default), "mean_magnitude" = mean(sqrt(Gx² + Gy²)).
TENENGRAD_VARIANTS = ("mean_squared", "mean_magnitude")


def _checked(img, metric: str, name: str = "img") -> np.ndarray:
    """``img`` as a 2-D, non-empty, finite real array; ValueError naming the problem otherwise."""
    if hasattr(img, "detach"):  # a tensor that requires grad refuses np.asarray; a GPU one must move
        img = img.detach().cpu()
        img = img.float() if str(img.dtype) == "torch.bfloat16" else img  # (no NumPy bfloat16)
    if (masked := describe_masked(img)) is not None:  # (np.asarray drops the mask: its pixels scored)
        raise ValueError(f"{metric}: {name} is {masked}: crop to the pixels to score, or fill them "
                         "(array.filled(value))")  # fmt: skip
    a = np.asarray(img)
    if a.ndim == 0 and a.dtype.kind in "OSU":  # a Radiograph, None, a path: "got shape ()" named none of them
        raise ValueError(f"{metric}: {name} must be a 2-D array (one grey-level ROI), got {describe_non_array(img)}")
    if a.ndim != 2:
        raise ValueError(f"{metric}: {name} must be a 2-D array (one grey-level ROI), got shape {a.shape}"
                         f"{shape_hint(a.shape, name)}")  # fmt: skip
    if a.size == 0:
        raise ValueError(f"{metric}: {name} is empty (shape {a.shape})")
    if a.dtype.kind not in "buif":
        raise ValueError(f"{metric}: {name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(not_finite(metric, int((~np.isfinite(a)).sum()), name))
    return a


def off_the_unit_scale(lo: float, hi: float) -> bool:
    """Whether values from ``lo`` to ``hi`` are on another scale than [0, 1] (0..255, stored
    values), not an overshoot to clip: further than :data:`UNIT_SCALE_SLACK` outside it. One rule
    for the metrics' ``float_scaling="unit"`` and evaluate's check of a method's output."""
    return bool(lo < -UNIT_SCALE_SLACK or hi > 1 + UNIT_SCALE_SLACK)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """MATLAB's round for x >= 0 (np.round rounds halves to even; floor(x + 0.5) misrounds 0.5 - ulp)."""
    floor = np.floor(x)
    return floor + (x - floor >= 0.5)


def _stretch_to_8bit(a: np.ndarray) -> np.ndarray:
    v = a.astype(np.float64)
    lo, hi = v.min(), v.max()
    if hi == lo:
        return np.zeros(a.shape, dtype=np.uint8)
    with np.errstate(over="ignore"):
        span = hi - lo
        wide = not np.isfinite(255.0 * span)
    if not np.isfinite(span):  # float64 values near its limits: max - min overflowed, every pixel came out 0
        v, lo, hi = v / 2, lo / 2, hi / 2
    if wide:  # 255 (v - lo) overflowed for a span over 7e305 (values 0 to 1e308: all but 0 came out 0)
        return _round_half_away(255.0 * ((v - lo) / (hi - lo))).astype(np.uint8)
    return _round_half_away(255.0 * (v - lo) / (hi - lo)).astype(np.uint8)


def _convert(a: np.ndarray, metric: str, float_scaling: str) -> np.ndarray:
    if float_scaling not in FLOAT_SCALINGS:
        raise ValueError(f"{metric}: float_scaling must be one of {FLOAT_SCALINGS}, got {float_scaling!r}")
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind == "f" and float_scaling == "unit":
        lo, hi = float(a.min()), float(a.max())
        if off_the_unit_scale(lo, hi):
            raise ValueError(f"{metric}: float values from {lo:g} to {hi:g} are not on the [0, 1] scale "
                             "float_scaling='unit' expects (clipping would leave a near-binary image); pass "
                             "uint8, or float_scaling='minmax' to stretch them")  # fmt: skip
        return _round_half_away(255.0 * np.clip(a.astype(np.float64), 0.0, 1.0)).astype(np.uint8)
    return _stretch_to_8bit(a)


def to_8bit(img, float_scaling: str = "unit") -> np.ndarray:
    """The uint8 image the metrics score (SPEC "Input conventions").

    - uint8: unchanged.
    - other integers (and bool): ``round(255 (v - min) / (max - min))`` over the region,
      halves away from zero; a constant region maps to 0.
    - float, ``float_scaling="unit"`` (default, for enhanced outputs in [0, 1]):
      ``round(255 clip(x, 0, 1))``; values further than :data:`UNIT_SCALE_SLACK` outside
      [0, 1] (a 0..255 float image) are refused rather than clipped.
    - float, ``float_scaling="minmax"`` (e.g. float originals): stretched as integers are.

    Raises:
        ValueError: not 2-D, empty, not real, NaN/inf, or an unknown ``float_scaling``.
    """
    return _convert(_checked(img, "to_8bit"), "to_8bit", float_scaling)


def _as_8bit(img, metric: str, float_scaling: str, name: str = "img") -> np.ndarray:
    return _convert(_checked(img, metric, name), metric, float_scaling)


def entropy(img, float_scaling: str = "unit") -> float:
    """Shannon entropy in bits of the 256-bin histogram of the 8-bit image (0 to 8).

    log2 because the papers' values reach 7.5. Input: see :func:`to_8bit`
    (uint8 as is, floats in [0, 1] by default). A constant image gives 0.
    """
    counts = np.bincount(_as_8bit(img, "entropy", float_scaling).ravel(), minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log2(p)) + 0.0)  # + 0.0: a constant image gives 0.0, not -0.0


def tenengrad(img, variant: str = "mean_squared", float_scaling: str = "unit") -> float:
    """Tenengrad criterion (TC): mean Sobel gradient energy of the 8-bit image scaled to [0, 1].

    ``variant="mean_squared"`` (default, the SPEC's TC) is ``mean(Gx² + Gy²)``;
    ``"mean_magnitude"`` is ``mean(sqrt(Gx² + Gy²))``. Sobel 3x3 with replicated
    borders. Input: see :func:`to_8bit`. A constant image gives 0.
    """
    if variant not in TENENGRAD_VARIANTS:
        raise ValueError(f"tenengrad: variant must be one of {TENENGRAD_VARIANTS}, got {variant!r}")
    x = np.pad(_as_8bit(img, "tenengrad", float_scaling).astype(np.float64) / 255.0, 1, mode="edge")
    # Separable Sobel: smoothing [1, 2, 1] across the derivative [1, 0, -1].
    smooth_rows = x[:-2] + 2.0 * x[1:-1] + x[2:]
    smooth_cols = x[:, :-2] + 2.0 * x[:, 1:-1] + x[:, 2:]
    gx = smooth_rows[:, :-2] - smooth_rows[:, 2:]
    gy = smooth_cols[:-2] - smooth_cols[2:]
    energy = gx * gx + gy * gy
    return float(np.mean(energy if variant == "mean_squared" else np.sqrt(energy)))


def lpc_si(img, float_scaling: str = "unit") -> float:
    """LPC-SI sharpness index (0 to 1, higher is sharper).

    R. Hassen, Z. Wang and M. M. A. Salama, "Image sharpness assessment based on
    local phase coherence", IEEE Trans. Image Processing 22(7):2798-2810, 2013.
    Computed on the 8-bit image as 0..255 doubles: the index is not scale
    invariant (its constant C = 2 is absolute), so a [0, 1] image would score
    about 0.08 instead of 0.95. Input: see :func:`to_8bit`; at least 2x2.
    A constant image gives 0.
    """
    a = _as_8bit(img, "lpc_si", float_scaling)
    if min(a.shape) < 2:
        raise ValueError(f"lpc_si: the image must be at least 2x2, got {a.shape}")
    if a.min() == a.max():  # every filter response is 0 (the bank has no DC); FFT rounding would leave ~1e-15
        return 0.0
    return lpc_si_core(a.astype(np.float64))


def _tmqi_inputs(reference, test, metric: str, float_scaling: str) -> tuple[np.ndarray, np.ndarray]:
    ref = _checked(reference, metric, "reference")
    test8 = _as_8bit(test, metric, float_scaling, "test")
    if ref.shape != test8.shape:
        raise ValueError(f"{metric}: reference {ref.shape} and test {test8.shape} differ in shape")
    if min(ref.shape) < TMQI_MIN_SIDE:
        raise ValueError(
            f"{metric}: both sides must be at least {TMQI_MIN_SIDE} px, got {ref.shape}: the structural "
            "fidelity halves the image 4 times and its coarsest level must still hold an 11x11 window"
        )
    return ref.astype(np.float64), test8.astype(np.float64)


def tmqi(reference, test, return_components: bool = False, float_scaling: str = "unit"):
    """Tone-mapped image quality index Q (0 to 1, higher is better), or (Q, S, N).

    H. Yeganeh and Z. Wang, "Objective quality assessment of tone-mapped images",
    IEEE Trans. Image Processing 22(2):657-667, 2013.
    ``Q = 0.8012 S^0.3046 + 0.1988 N^0.7088``: S is the multi-scale structural
    fidelity of ``test`` to ``reference``, N the statistical naturalness of ``test``.

    Inputs: ``reference`` is the original ROI at any range and type (it is stretched
    to [0, 2^32 - 1]); ``test`` is the enhanced ROI, scored as its 8-bit version
    (:func:`to_8bit`) in 0..255. Same shape, both sides >= 161 px (ValueError otherwise).

    Edge cases (the reference code returns NaN or complex numbers there):
    a constant reference has no structure to keep: Q and S are NaN, as in that code and
    the goldens (N, of the test alone, is computed). A level whose mean fidelity is negative (test
    anti-correlated with the reference, e.g. inverted) counts as 0, so S = 0.
    A constant test has N = 0 when both its sides are multiples of 11; otherwise the
    zero padding of its edge blocks gives them some contrast and N > 0.
    """
    scores = tmqi_scores(reference, test, float_scaling)
    return (scores.q, scores.s, scores.n) if return_components else scores.q


def tmqi_paper_compat(reference, test, return_components: bool = False, float_scaling: str = "unit"):
    """TMQI with the test image in [0, 1] (its 8-bit version / 255): the XVertNet paper's scale.

    Only this reproduces the paper's TMQI range (0.01-0.21): on [0, 1] the local
    contrasts are 255 times too small for the CSF thresholds and N is near 0.
    For comparisons with the paper's tables; :func:`tmqi` is the metric as defined.
    Same inputs, checks and edge cases as :func:`tmqi`.
    """
    scores = tmqi_scores(reference, test, float_scaling, paper_scale=True)
    return (scores.q, scores.s, scores.n) if return_components else scores.q


def tmqi_scores(reference, test, float_scaling: str = "unit", paper_scale: bool = False) -> TmqiScores:
    """:func:`tmqi` (``paper_scale``: :func:`tmqi_paper_compat`) with all its parts: Q, S, N and
    the five levels' structural fidelities before a negative one counts as 0, for a caller that
    says where such a floor set the score (:func:`floor_notes`)."""
    metric = "tmqi_paper_compat" if paper_scale else "tmqi"
    ref, test255 = _tmqi_inputs(reference, test, metric, float_scaling)
    return tmqi_core(ref, test255 / 255.0 if paper_scale else test255)


def floor_notes(metric: str, test8: np.ndarray, tmqi_parts: TmqiScores | None = None) -> list[str]:
    """What a reader of a score should be told where a floor or special case of the metric, not
    the image's quality, set it: each note starts with ``metric``. ``test8``: the 8-bit ROI scored;
    ``tmqi_parts``: :func:`tmqi_scores`' result for TMQI. A TMQI of 0.07 among 0.8s, with no word,
    read as a failed enhancement rather than one level of the pyramid anti-correlated.

    - TMQI: a level whose mean structural fidelity is not positive (the test anti-correlated with,
      or at 0 unrelated to, the reference at that scale) counts as 0, so S = 0 and Q is naturalness
      alone (at most 0.1988); N = 0 (the test's mean 11x11-block contrast 0, or beyond the end of
      the naturalness model's Beta law) leaves Q structure alone; both at once leave Q = 0, one note.
    - LPC-SI: a constant ROI scores 0 by definition (no phase to be coherent).
    """
    notes = []
    if metric in ("tmqi", "tmqi_paper_compat") and tmqi_parts is not None and tmqi_parts.q == tmqi_parts.q:
        levels = [(k, s) for k, s in enumerate(tmqi_parts.s_local, 1) if s <= 0]  # S = prod max(s, 0)^w: 0
        no_naturalness = ("naturalness N = 0 (the output's mean 11x11-block contrast is 0 or beyond the end of the "
                          "model's Beta law)")  # fmt: skip
        if levels:
            one = len(levels) == 1
            coarsest = " (the coarsest)" if one and levels[0][0] == len(TMQI_LEVEL_WEIGHTS) else ""
            which = _listed(k for k, _ in levels)
            why = ("the output anti-correlated with the original" if all(s < 0 for _, s in levels)
                   else "not positive: the output anti-correlated with the original, or at 0 unrelated to it")
            said = (f"{metric}: the structural fidelity of level{'' if one else 's'} {which} of "
                    f"{len(TMQI_LEVEL_WEIGHTS)}{coarsest} {'is' if one else 'are'} "
                    f"{_listed(f'{s:.3g}' for _, s in levels)} ({why} at {'that scale' if one else 'those scales'}), "
                    "which TMQI counts as 0: S = 0")  # fmt: skip
            if tmqi_parts.n == 0:  # Q = 0.8012 * 0 + 0.1988 * 0: neither part left to say what Q is
                notes.append(f"{said}, and {no_naturalness}: both parts floored, Q = {tmqi_parts.q:.4g}")
            else:
                notes.append(f"{said}, so Q = {tmqi_parts.q:.4g} is naturalness alone (0.1988 N^0.7088, "
                             f"N = {tmqi_parts.n:.4g})")  # fmt: skip
        elif tmqi_parts.n == 0:
            notes.append(f"{metric}: {no_naturalness}, so Q = {tmqi_parts.q:.4g} is structure alone (0.8012 S^0.3046)")
    if metric == "lpc_si" and test8.min() == test8.max():
        notes.append(f"lpc_si: the ROI is one grey level ({int(test8.min())}), which scores 0 by definition")
    return notes


def _listed(items) -> str:
    """"1", "1 and 2", "1, 2 and 3"."""
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def brisque(img, float_scaling: str = "unit") -> float:
    """BRISQUE no-reference quality score, LIVE release model (lower is better; about -10 to 100).

    A. Mittal, A. K. Moorthy and A. C. Bovik, "No-reference image quality assessment
    in the spatial domain", IEEE Trans. Image Processing 21(12):4695-4708, 2012;
    model and NOTICE (UT Austin, LIVE) in ``xvertfast/eval/brisque_live/``.
    Computed on the 8-bit image as 0..255 doubles. Input: see :func:`to_8bit`.

    Returns NaN, as the reference code does, when the model's features are undefined:
    a pairwise product of the normalised coefficients with no negative or no positive
    value, which is the case for a constant image. Both sides must be at least
    :data:`BRISQUE_MIN_SIDE` px (ValueError otherwise): below it the half scale is smaller
    than the 7x7 window and the features, though finite, describe the padding.
    """
    a = _as_8bit(img, "brisque", float_scaling)
    if min(a.shape) < BRISQUE_MIN_SIDE:
        raise ValueError(f"brisque: both sides must be at least {BRISQUE_MIN_SIDE} px, got {a.shape}: its second "
                         "scale halves the image, which must still hold the 7x7 window")  # fmt: skip
    return brisque_core(a.astype(np.float64))
