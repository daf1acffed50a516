"""The methods XVertNet is compared with, each a whole-image function ``[H, W] in [0, 1] -> same``.

Every method runs on the full image (as in the paper's protocol); the evaluation
ROIs are cut from each output afterwards, at the same places.

- ``identity``: the image itself.
- ``clahe``: contrast-limited adaptive histogram equalisation (Zuiderveld 1994) with
  scikit-image: 8 x 8 tiles, 256 bins asked for, clip limit 2/256 of a tile's pixels per bin;
  that is the per-bin limit of OpenCV's ``clipLimit=2.0``, the setting most used on chest
  radiographs (and the one the Hannover images in cxr-dev went through at their source).
  The algorithm is scikit-image's, not OpenCV's (it rescales to 14 bits, so 253 bins of 65
  levels, and clips, redistributes and stretches its own way): outputs differ by a few grey
  levels (see docs/guide/evaluation.md, "Baselines").
- ``farbman``: multi-scale detail boosting on the WLS edge-preserving decomposition of
  Farbman et al. 2008 ("Edge-preserving decompositions for multi-scale tone and detail
  manipulation", SIGGRAPH): three base layers ``B_i = WLS_{lambda_i, alpha}(X)`` of the image,
  coarsened by raising lambda four-fold per level (``FARBMAN_LAMBDAS``, alpha = 1.2 as in the
  paper), details ``D_1 = X - B_1``, ``D_i = B_{i-1} - B_i``, and the result
  ``B_3 + sum_i g_i D_i`` with the gains ``FARBMAN_GAINS`` (finest boosted most), clipped to [0, 1].
- ``xvertnet``: a trained model (a directory, or the shipped default) through
  :class:`xvertfast.infer.Enhancer` in spine mode: the papers' method.
- ``xvertnet_original_brightness``: the same, with ``brightness="original"`` (the network's
  detail on the original's large-scale brightness; not the papers' method, see
  :mod:`xvertfast.infer.enhancer`). Evaluated together, the two share one network run per
  image (:class:`SharedNetwork`).
- ``outputs=DIR``: what another tool wrote into DIR, read back (:mod:`xvertfast.eval.precomputed`);
  ``inverted_outputs=DIR``, the same of a tool that stores its outputs bone dark, each scored inverted.

A method may carry a label, ``LABEL:METHOD``, which names it in the report (two models:
``xvertnet,mine:xvertnet=runs/mine/model``).
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Callable

import numpy as np
import torch

from xvertfast._checks import number_of, whole_number
from xvertfast._pixels import shape_hint
from xvertfast._text import from_cli, offers
from xvertfast.ops._inputs import real_from_numpy
from xvertfast.ops.wls import wls
from xvertfast.preprocess.inputs import check_unit_pixels

__all__ = ["BASELINES", "XVERTNET_METHODS", "identity", "clahe", "farbman", "xvertnet_method", "get_method",
           "parse_method", "baseline_parameters",
           "SharedNetwork", "CLAHE_TILES", "CLAHE_CLIP", "FARBMAN_LAMBDAS", "FARBMAN_ALPHA", "FARBMAN_GAINS"]  # fmt: skip

CLAHE_TILES = 8
#: The largest 16-bit level: scikit-image's CLAHE reads a float image as round(x * UINT16_MAX).
UINT16_MAX = 65535
#: Less than the difference of two neighbouring 16-bit levels, k / UINT16_MAX and (k + 1) / UINT16_MAX,
#: as float32 holds them: each is rounded (by at most 2 ** -25 on [0, 1]), so for most k they lie a
#: little closer than 1 / UINT16_MAX (0.99998 of it) and such a two-level image was taken for noise;
#: float32's eps (2 ** -23) is twice the most the two roundings take off.
ONE_LEVEL_IN_FLOAT32 = 1.0 / UINT16_MAX - float(np.finfo(np.float32).eps)
CLAHE_CLIP = 2.0 / 256
FARBMAN_LAMBDAS = (0.125, 0.5, 2.0)
FARBMAN_ALPHA = 1.2
FARBMAN_GAINS = (2.0, 1.6, 1.3)

BASELINES = ("identity", "clahe", "farbman")
#: The XVertNet methods: evaluate's name -> the Enhancer's brightness.
XVERTNET_METHODS = {"xvertnet": "network", "xvertnet_original_brightness": "original"}

#: The methods reading another tool's outputs from a folder, and whether each reads them inverted.
OUTPUT_METHODS = {"outputs": False, "inverted_outputs": True}


def _check(pixels, who: str) -> np.ndarray:
    """``pixels`` as float32 [H, W] on [0, 1], refused as preprocess refuses them (check_unit_pixels):
    clipped, a raw 8- or 16-bit image came out nearly all white without a word."""
    if isinstance(pixels, torch.Tensor):
        t = pixels.detach().cpu()  # (np.asarray refuses a tensor that requires grad)
    else:
        t = real_from_numpy(pixels, f"{who}: pixels")
    if t.dim() != 2 or not t.numel():
        raise ValueError(f"{who}: pixels must be [H, W] with H, W >= 1, got shape {tuple(t.shape)}"
                         f"{shape_hint(t.shape)}")  # fmt: skip
    check_unit_pixels(t, who)
    return np.clip(t.to(torch.float32).numpy(), 0.0, 1.0)


def _number(value, name: str, who: str, *, low: float, low_open: bool = True, high: float = math.inf) -> float:
    """``value`` as a float, or ValueError naming the argument where it is no finite real number
    between ``low`` (excluded where ``low_open``) and ``high``: scikit-image and the solver took
    a negative CLAHE clip (as no limit) and a NaN gain (a NaN image) without a word. A 0-dim
    tensor or array is its number, as wls takes it (:func:`~xvertfast._checks.number_of`)."""
    value = number_of(value, name, who)
    inside = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
              and (value > low if low_open else value >= low) and value <= high)  # fmt: skip
    if not inside:
        bounds = [f"> {low:g}" if low_open else f">= {low:g}"] if low > -math.inf else []
        bounds += [f"<= {high:g}"] if high < math.inf else []
        raise ValueError(f"{who}: {name} must be a finite number{' ' if bounds else ''}{' and '.join(bounds)}, "
                         f"got {value!r}")  # fmt: skip
    return float(value)


def _numbers(values, name: str, who: str, **bounds) -> list[float]:
    """A sequence of at least one number, each as :func:`_number` takes it (``name[k]`` in a message)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not len(values):
        raise ValueError(f"{who}: {name} must be a sequence of one number or more (one per level), got {values!r}")
    return [_number(v, f"{name}[{k}]", who, **bounds) for k, v in enumerate(values)]


def identity(pixels, spine=None) -> np.ndarray:
    """The unprocessed image (the comparison's floor)."""
    return _check(pixels, "identity").copy()


def clahe(pixels, spine=None, tiles: int = CLAHE_TILES, clip: float = CLAHE_CLIP) -> np.ndarray:
    """CLAHE with ``tiles`` x ``tiles`` contextual regions (a whole number >= 1) and a clip limit
    ``clip`` per bin, a share of a tile's pixels in (0, 1] (1: no limit, plain adaptive
    equalisation); see the module docstring. ValueError naming either where it is out of range:
    scikit-image ran a negative clip as no limit, and tiles=0 divided by zero; and where ``tiles``
    leaves regions under 2 px (a 1 px region's pixel comes out black or white).

    As scikit-image's, the result does not depend on the image's range: the image is stretched
    over its own values first, so an image of two grey levels (two neighbouring 16-bit levels too)
    comes out from black to white. An image whose values differ by less than one 16-bit level
    (1 / 65535, less float32's rounding: :data:`ONE_LEVEL_IN_FLOAT32`) is returned as it is, as a
    constant one is: scikit-image reads it in 16-bit levels, and float rounding (0.5 plus noise of
    1e-7) that fell on either side of one came out black and white."""
    from skimage.exposure import equalize_adapthist
    from skimage.util import img_as_uint

    tiles = whole_number(tiles, "tiles", "clahe", low=1, meaning="contextual regions per side")
    clip = _number(clip, "clip", "clahe", low=0.0, high=1.0)
    arr = _check(pixels, "clahe")
    # nothing to equalise: a constant image, or one within a single 16-bit level as scikit-image reads
    # it (img_as_uint), which its stretch over the range would give back white; nor differences finer
    # than a 16-bit level, whose two levels (noise across a rounding boundary) it would stretch to black
    # and white
    lowest, highest = img_as_uint(np.array([arr.min(), arr.max()]))
    if lowest == highest or float(arr.max()) - float(arr.min()) < ONE_LEVEL_IN_FLOAT32:
        return arr.copy()
    kernel = (arr.shape[0] // tiles, arr.shape[1] // tiles)  # (whole_number gave an int)
    if min(kernel) < 2:  # a 1 px region (0 px, made 1) equalises its pixel to black or white
        raise ValueError(f"clahe: tiles={tiles} leaves contextual regions under 2 px on this {arr.shape[0]}x"
                         f"{arr.shape[1]} image, each equalised to black or white: "
                         + (f"at most {min(arr.shape) // 2} tiles" if min(arr.shape) >= 2
                            else "CLAHE needs both sides of 2 px or more"))  # fmt: skip
    return equalize_adapthist(arr, kernel_size=kernel, clip_limit=clip, nbins=256).astype(np.float32)


def farbman(pixels, spine=None, lambdas=FARBMAN_LAMBDAS, alpha: float = FARBMAN_ALPHA,
            gains=FARBMAN_GAINS) -> np.ndarray:  # fmt: skip
    """Multi-scale WLS detail boosting (Farbman et al. 2008); see the module docstring.
    ``lambdas``: one WLS smoothness per level, each > 0 and growing (level k + 1 coarser than k:
    reversed, the gains boosted the scales they were not meant for); ``alpha`` > 0; ``gains``:
    one finite number per level. ValueError naming the argument otherwise."""
    lambdas = _numbers(lambdas, "lambdas", "farbman", low=0.0)
    if any(b <= a for a, b in zip(lambdas, lambdas[1:])):
        raise ValueError(f"farbman: lambdas must grow from level to level (each coarser than the last), got {lambdas}")
    alpha = _number(alpha, "alpha", "farbman", low=0.0)
    gains = _numbers(gains, "gains", "farbman", low=-math.inf)
    if len(lambdas) != len(gains):
        raise ValueError(f"farbman: {len(lambdas)} levels but {len(gains)} gains")
    arr = _check(pixels, "farbman")
    bases = [wls(arr, lam, alpha) for lam in lambdas]
    out = bases[-1].astype(np.float64)
    previous = arr
    for base, gain in zip(bases, gains):
        out += gain * (previous.astype(np.float64) - base)
        previous = base
    return np.clip(out, 0.0, 1.0).astype(np.float32)


for _method in (identity, clahe, farbman):
    _method.kind = _method.__name__  # what it is, whatever label a run gives it


def baseline_parameters(method: Callable) -> dict:
    """The settings a baseline runs with in an evaluation, which calls it with ``pixels`` and
    ``spine`` alone: the defaults of its other arguments (clahe's tiles and clip, farbman's
    lambdas, alpha and gains), read off the function that runs, so that the report says the
    settings its scores were made with. Empty for identity."""
    import inspect

    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # a callable without a signature to read: no settings to say
        return {}
    return {name: parameter.default for name, parameter in parameters.items()
            if name not in ("pixels", "spine") and parameter.default is not inspect.Parameter.empty}  # fmt: skip


class SharedNetwork:
    """One spine-mode :class:`~xvertfast.infer.Enhancer` for the XVertNet methods of one model.

    They differ only in brightness, which acts when the tiles are blended back, so the
    network runs once per image for all of them: the last image's tiles are kept and
    blended again for the next method called on the same image.
    """

    def __init__(self, model: str = "default", **enhancer_kwargs):
        from xvertfast.infer import Enhancer

        self.enhancer = Enhancer(model, mode="spine", **enhancer_kwargs)
        self._last: tuple | None = None  # (pixels, spine, prepared, tiles)

    def enhance(self, pixels, spine, brightness: str) -> np.ndarray:
        """``pixels`` enhanced at ``brightness``; the network runs again only for another image or spine
        object (``is``: arrays equal to the last are not compared), or at each call without a spine."""
        last = self._last
        # the last call's own objects are held, so `is` cannot match a recycled id
        if last is None or last[0] is not pixels or last[1] is not spine or spine is None:
            prep = self.enhancer.prepare(pixels, spine)  # (which checks the pixels as _check does)
            last = self._last = (pixels, spine, prep, self.enhancer.run_tiles(prep.xp, prep.y))
        return self.enhancer.compose(last[2], last[3], brightness)


def xvertnet_method(model: str = "default", brightness: str = "network", network: SharedNetwork | None = None,
                    **enhancer_kwargs) -> Callable:  # fmt: skip
    """A method running XVertNet (spine mode) with ``model``; built once, applied per image.
    Methods given the same ``network`` (built for ``model``) share its runs. A ``brightness``
    that is not one of the Enhancer's is refused here, not at the first image."""
    from xvertfast.infer.enhancer import BRIGHTNESS

    if brightness not in BRIGHTNESS:
        raise ValueError(f"xvertnet_method: brightness must be one of {', '.join(BRIGHTNESS)}, got {brightness!r}")
    network = network or SharedNetwork(model, **enhancer_kwargs)

    def run(pixels, spine=None) -> np.ndarray:
        return network.enhance(pixels, spine, brightness)

    run.enhancer = network.enhancer
    return run


def _method_said(spec: str, problem: str | None = None) -> str:
    """How a refusal names the method ``spec``: ``--methods SPEC`` from the CLI's evaluate (the
    option typed), ``method 'SPEC'`` from Python; with a ``problem`` that names it ("unknown
    method"), ``--methods SPEC: unknown method`` and ``unknown method 'SPEC'``."""
    if from_cli() and offers("methods"):
        return f"--methods {spec}: {problem}" if problem else f"--methods {spec}"
    return f"{problem or 'method'} {spec!r}"


def parse_method(spec: str) -> tuple[str, str, str]:
    """``[LABEL:]KIND[=ARG]`` -> (label, kind, arg); the label defaults to the kind.

    A label names a method in the report, so that two of one kind can be compared
    (``mine:xvertnet=runs/mine/model``); it is letters, digits and ``_.+-``.
    """
    head, eq, arg = spec.partition("=")
    label, colon, kind = head.rpartition(":")
    if not colon:
        label = kind
    if not kind or not re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", label):
        raise ValueError(f"{_method_said(spec)}: expected [LABEL:]METHOD[=ARGUMENT], the label made of "
                         "letters, digits and _.+- (at most 40)")  # fmt: skip
    return label, kind, arg if eq else ""


def get_method(spec: str, networks: dict | None = None, **enhancer_kwargs) -> tuple[str, Callable]:
    """A method spec (:func:`parse_method`) -> (label, function): ``identity``, ``clahe``,
    ``farbman``, an XVertNet method (``xvertnet``, ``xvertnet_original_brightness``) with an
    optional ``=MODEL_DIR``, or ``outputs=DIR`` (another tool's outputs:
    :class:`~xvertfast.eval.precomputed.PrecomputedOutputs`; ``inverted_outputs=DIR``, those of a
    tool that stores them bone dark, read inverted). XVertNet methods built with the
    same ``networks`` dict share one network per model."""
    label, name, arg = parse_method(spec)
    if name in (*XVERTNET_METHODS, *OUTPUT_METHODS) and spec.endswith("=") and not arg:  # (an unset $MODEL, $DIR)
        what = "the folder of another tool's outputs" if name in OUTPUT_METHODS else \
            "the model directory (leave out '=' for the shipped model)"  # fmt: skip
        raise ValueError(f"{_method_said(spec)}: nothing follows '=': give {what}")
    if name in XVERTNET_METHODS:
        model = arg or "default"
        try:  # (a model not found said "nothere: no such folder (a model is ...)", naming no method or option)
            if networks is not None and model not in networks:
                networks[model] = SharedNetwork(model, **enhancer_kwargs)
            network = networks[model] if networks is not None else None
            method = xvertnet_method(model, XVERTNET_METHODS[name], network, **enhancer_kwargs)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{_method_said(spec)}: {exc}") from None
        method.kind = name
        return label, method
    if name in OUTPUT_METHODS and arg:
        from xvertfast.eval.precomputed import FolderRefused, PrecomputedOutputs

        try:  # (its refusal said "--methods outputs=DIR", dropping a label typed: mine:outputs=DIR)
            return label, PrecomputedOutputs(arg, inverted=OUTPUT_METHODS[name])
        except FolderRefused as exc:
            raise ValueError(f"{_method_said(spec)}: {exc.problem}") from None
    table = {"identity": identity, "clahe": clahe, "farbman": farbman}
    if name not in table or arg:
        raise ValueError(f"{_method_said(spec, 'unknown method')}: choose from identity, clahe, farbman, "
                         f"{', '.join(m + '[=MODEL]' for m in XVERTNET_METHODS)}, outputs=DIR, "
                         "inverted_outputs=DIR (outputs stored bone dark); "
                         "each may be given a label, LABEL:METHOD")  # fmt: skip
    return label, table[name]
