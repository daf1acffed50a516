"""Enhancing radiographs with a trained XVertNet: tiles in, blended image out.

One image goes through three steps, kept apart so that a batch job can run
them on different workers and batch the middle one across images:

1. :meth:`Enhancer.prepare` (CPU, or the GPU when the CUDA WLS solver is built):
   Eq. 1-6 preprocessing on the whole image, spine localisation, and the
   network's input tiles. Tiles are always
   ``tile`` x ``tile`` at the model's training scale (``tile`` working pixels
   = the model's ROI size at :data:`~xvertfast.preprocess.spine.WORKING_HEIGHT`
   rows), so a 440 px CR and a 3000 px DR image show the network the same
   anatomy per pixel it was trained on.
2. :meth:`Enhancer.run_tiles` (device): every stage on batches of tiles, with
   the HFC guidance ``out - WLS(out)`` of each tile between stages (Eq. 7).
3. :meth:`Enhancer.compose` (CPU): tiles back to image resolution, blended
   with feathered weights.

Modes:

- ``spine`` (what the papers evaluate): two 512 x 512 tiles on the spine are
  enhanced and blended into the original image; the blend ramps linearly over
  the outer :data:`FEATHER` of each tile side that lies inside the image, and
  the two tiles (which overlap at mid-thorax) are averaged by their weights.
  Where the original shows, the output's low frequencies are pulled to the
  original's by its share of the blend (see ``_low_frequency_gap``), so the
  network's different overall brightness does not draw the tile's outline.
  The tiles are the training ROIs moved apart vertically by :data:`SPINE_SHIFT`
  each. The evaluation ROIs (512 rows, 290 columns: taller than a tile's core)
  reach into the other tile, where the two tiles' ramps meet; their weights sum
  to about 1 or more there, so the ROIs hold the network's output, of one tile
  or of both blended, and not the original or its brightness. That holds for a
  model trained on 512 px ROIs (the default): a smaller one's tiles leave most of
  the ROIs original (:func:`spine_roi_coverage`).
- ``full``: the whole image at the training scale, tiled with
  :data:`FULL_OVERLAP` overlap and blended with the same ramps, so no seam shows.
  A model trained on small ROIs cuts an image into hundreds of tiles, each its own
  network run and WLS solve: warned of past :data:`MANY_FULL_TILES` (:func:`many_full_tiles`).

Brightness (an option of both modes, not of the papers):

- ``network`` (the default; what the papers evaluate): the tile's core is the network's
  output as it is. The structure loss is blind to gain, offset and slow trends, and a
  small model flattens the large-scale brightness to a mid-grey: the spine tiles then show
  as grey rectangles in the image.
- ``original``: the low-frequency correction of the ramps is applied over the whole tile,
  so the output keeps the network's detail on the original's large-scale brightness (the
  same Gaussian, sigma = 1/16 of the tile side). Made for viewing; it is a different
  method from the papers', and ``xvertfast evaluate`` scores it under its own name.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import pickle
import threading
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from xvertfast._checks import whole_number
from xvertfast._extension import cuda_kernels_problem, cuda_kernels_run_on
from xvertfast._paths import PATH_TYPES
from xvertfast._pixels import describe_array, describe_non_array, shape_hint
from xvertfast._stacklevel import image_names, naming_images, outside_xvertfast, solving
from xvertfast._text import asked, count
from xvertfast.infer.backends import (PRECISIONS, StageBackend, make_backend, plan_backend, resolve_device,
                                     resolve_precision, warn_cpu_bf16_without_amx)
from xvertfast.io.errors import ImageReadError
from xvertfast.io.radiograph import Radiograph
from xvertfast.io.read import content_problem
from xvertfast.model import XVertNet, load_model, model_tile
from xvertfast.model.xvertnet import uncompiled
from xvertfast.ops._inputs import real_from_numpy
from xvertfast.ops.wls import METHODS as WLS_METHODS
from xvertfast.preprocess import find_spine, preprocess
from xvertfast.preprocess.inputs import check_unit_pixels
from xvertfast.preprocess.spine import (LOWER_LEVEL, UPPER_LEVEL, WORKING_HEIGHT, Box, Spine, centres_order_problem,
                                       image_warnings)

__all__ = ["Enhancer", "EnhanceResult", "Prepared", "MODES", "BRIGHTNESS", "FEATHER", "FULL_OVERLAP", "SPINE_SHIFT",
           "spine_roi_coverage", "partial_roi_coverage", "MANY_FULL_TILES", "many_full_tiles"]

MODES = ("spine", "full")
#: What sets the output's large-scale brightness: the network (as in the papers) or the original.
BRIGHTNESS = ("network", "original")
#: Share of a tile's side over which spine-mode blending ramps from the original to the output.
FEATHER = 1 / 8
#: Share of the tile side by which the spine-mode tiles sit above/below the training ROI centres.
SPINE_SHIFT = 1 / 8
#: Share of the tile side by which neighbouring full-mode tiles overlap.
FULL_OVERLAP = 1 / 4
#: Full-mode tiles an image past which the work is warned of: each tile is its own network run and
#: WLS solve, and a model trained at --roi-size 64 cuts a square image into 441 (8 px tiles of a
#: 128-row image; minutes on a CPU), one at 128 into 121, one at 512 (the default) into 9.
MANY_FULL_TILES = 200
#: How far below 1 the tiles' summed blend weight may lie where the network's output alone shows:
#: their float32 ramps, meeting, sum to 1 within a few parts in 10^7, not exactly
_WEIGHT_ONE_TOLERANCE = 1e-6


@dataclass
class Prepared:
    """One image ready for the network: its tiles and where they go back."""

    pixels: np.ndarray  #: the original, [H, W] float32 in [0, 1]
    spine: Spine
    boxes: list[Box]  #: where each tile comes from, in image pixels
    inside: list[tuple[bool, bool, bool, bool]]  #: per box: (top, left, bottom, right) side is inside the image
    xp: torch.Tensor  #: [N, 1, S, S] network input tiles
    y: torch.Tensor  #: [N, 1, S, S] their guidance tiles
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class EnhanceResult:
    """The enhanced image and how it was made."""

    pixels: np.ndarray  #: [H, W] float32 in [0, 1]
    spine: Spine
    #: the tiles the network enhanced, in image pixels: spine mode the upper and lower one (the
    #: training ROIs' squares, :data:`SPINE_SHIFT` further apart), full mode the overlapping
    #: squares that cover the image, row by row
    boxes: list[Box]
    seconds: dict[str, float]  #: preprocess / infer / compose
    #: what :meth:`Enhancer.enhance` warned of, each also given as a ``UserWarning``, as the CLI warns
    #: of a file: an image that looks inverted (stored bone dark), a spine found that may be wrong,
    #: in full mode a model that cuts the image into many tiles
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        """One line: the image's dtype, size and range, the spine, the tiles and warnings counted and
        the seconds to 3 digits; the dataclass's repr printed the image whole, and full mode's
        hundreds of tiles."""
        seconds = {step: float(f"{s:.3g}") for step, s in self.seconds.items()}
        return (f"EnhanceResult(pixels={describe_array(self.pixels)}, spine={self.spine!r}, "
                f"{count(len(self.boxes), 'tile')}, seconds={seconds}, {count(len(self.warnings), 'warning')})")


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t, size=size, mode="area" if shrink else "bilinear", align_corners=None if shrink else False)


def _ramp(n: int, margin: int, start_inside: bool, end_inside: bool) -> np.ndarray:
    """1-D weights: 1 in the middle, falling linearly to ~0 over ``margin`` at sides inside the image."""
    w = np.ones(n, dtype=np.float32)
    if margin <= 0:
        return w
    r = (np.arange(margin, dtype=np.float32) + 0.5) / margin
    m = min(margin, n)
    if start_inside:
        w[:m] = np.minimum(w[:m], r[:m])
    if end_inside:
        w[n - m :] = np.minimum(w[n - m :], r[:m][::-1])
    return w


def _sides_inside(boxes: list[Box], shape: tuple[int, int]) -> list[tuple[bool, bool, bool, bool]]:
    """Per box, whether its top, left, bottom and right sides lie inside an image of ``shape``:
    a tile's weight ramps down there only (at the image's edge nothing lies beyond to blend with)."""
    H, W = shape
    return [(b.top > 0, b.left > 0, b.bottom < H, b.right < W) for b in boxes]


def _blend_weights(boxes: list[Box], inside: list[tuple[bool, bool, bool, bool]], share: float,
                   shape: tuple[int, int]) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:  # fmt: skip
    """Each tile's row and column ramps (falling over ``share`` of its side where that side lies
    ``inside`` the image) and their outer products summed into a float64 plane of ``shape``, whose
    pixels ``boxes`` are given in. One computation for :meth:`Enhancer.compose`, which blends by
    them, and :func:`spine_roi_coverage`, which counts where they reach 1: two copies could drift."""
    ramps = []
    for box, (top, left, bottom, right) in zip(boxes, inside):
        h, w = box.bottom - box.top, box.right - box.left
        ramps.append((_ramp(h, math.ceil(share * h), top, bottom), _ramp(w, math.ceil(share * w), left, right)))
    weight = np.zeros(shape, dtype=np.float64)
    for box, (wr, wc) in zip(boxes, ramps):
        weight[box.top : box.bottom, box.left : box.right] += np.outer(wr, wc)
    return ramps, weight


def _gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter(a, sigma, mode="reflect")`` of a float64 [H, W] array (its
    kernel: truncated at 4 sigma), by FFT along each axis: the same values to ~1e-15. The direct
    sums cost the kernel's length per pixel, and sigma grows with the tile: 0.1 s for a 512^2 tile,
    1 s at 1024^2 and 10 s at 2048^2 (a 4096-row image's tile), against 0.01-0.8 s by FFT."""
    from scipy.signal import oaconvolve

    radius = int(4.0 * sigma + 0.5)
    taps = np.exp(-0.5 / (sigma * sigma) * np.arange(-radius, radius + 1, dtype=np.float64) ** 2)
    taps /= taps.sum()
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)  # "symmetric" is ndimage's "reflect": d c b a | a b c d
        a = oaconvolve(np.pad(a, pad, mode="symmetric"), taps.reshape((-1, 1) if axis == 0 else (1, -1)),
                       mode="valid", axes=axis)  # fmt: skip
    return a


def _kept_failure(exc: Exception) -> Exception:
    """A failed backend build's error as the Enhancer keeps it, to name as the cause each time the
    backend is asked for again: a copy without its traceback (whose frames would hold the failed
    build's objects, an engine builder's GPU memory among them, as long as the Enhancer lives) that
    pickles and deep-copies with the Enhancer; a RuntimeError giving its type and text where it
    does not survive a pickle round trip (a class defined in a function, arguments that cannot be
    pickled, a constructor that rewrites its message)."""
    try:
        kept = pickle.loads(pickle.dumps(exc))
        if type(kept) is type(exc) and str(kept) == str(exc):
            return kept
    except Exception:  # (pickling fails in many types: PicklingError, TypeError, AttributeError, ...)
        pass
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _check_brightness(brightness: str) -> str:
    if brightness not in BRIGHTNESS:
        raise ValueError(f"brightness must be one of {', '.join(BRIGHTNESS)}, got {brightness!r}")
    return brightness


def _describe(t) -> str:
    """A tensor as a refusal names it: its dtype and shape (integer tiles read as 'got shape ...' alone)."""
    return f"a {t.dtype} tensor of shape {tuple(t.shape)}" if isinstance(t, torch.Tensor) else type(t).__name__


def _check_gpu_wls(method: str, device: torch.device) -> None:
    """wls_method ``cuda`` and ``cupy`` solve with xvertfast's CUDA kernels on the device: where those
    cannot run, refused when the Enhancer is made. Else every image failed at its preprocessing, which
    runs on the CPU then, with "needs a CUDA tensor, got one on cpu", naming no cause."""
    if method not in ("cuda", "cupy"):
        return
    if device.type != "cuda":
        raise ValueError(f"wls_method {method!r} solves on a CUDA GPU, but the device is {device}; use wls_method "
                         "'auto' or 'cpu'")  # fmt: skip
    why = cuda_kernels_problem(device)
    if why is None:
        return
    raise RuntimeError(f"wls_method {method!r} on {device}: {why}; use wls_method 'auto' (it solves on the CPU "
                       "there) or see `xvertfast info`")  # fmt: skip


def _spine_boxes(spine: Spine, tile: int) -> list[Box]:
    """Spine mode's two tiles in image pixels: the training ROIs of ``tile`` working pixels, moved
    apart vertically by :data:`SPINE_SHIFT` of the tile each."""
    H = spine.shape[0]
    shift = SPINE_SHIFT * tile * spine.scale
    # (centres given near the top or bottom stay in the image; the boxes stay in it anyway).
    # Not with_centres: the spine was checked, and two centres on the last rows can meet here.
    moved = replace(spine, upper=(max(0.0, spine.upper[0] - shift), spine.upper[1]),
                    lower=(min(H - 1.0, spine.lower[0] + shift), spine.lower[1]))  # fmt: skip
    return moved.train_rois(tile)


def spine_roi_coverage(tile: int, spine: Spine | None = None) -> float:
    """The share of the evaluation ROIs' pixels (512 x 290 at the working height) that spine mode
    fills with the network's output alone (the tiles' summed blend weight 1 or more, as
    :meth:`Enhancer.compose` weighs them), for a model trained on ``tile`` px ROIs. Where it is
    below 1 the ROIs hold original pixels, and their scores are partly the original's: a model
    trained at --roi-size 128 covers 6% of them, one at 512 (the default) all. ``spine``: the
    image's centres; by default those find_spine places on a square image of the working height
    (on a square image; an image too narrow for the tiles shrinks them and covers less, and
    rounding moves the share by under 0.1%)."""
    if spine is None:
        side = WORKING_HEIGHT
        spine = Spine((side, side), (side - 1) / 2, np.zeros((0, 2)), (UPPER_LEVEL * side, (side - 1) / 2),
                      (LOWER_LEVEL * side, (side - 1) / 2))  # fmt: skip
    boxes = _spine_boxes(spine, tile)
    _, weight = _blend_weights(boxes, _sides_inside(boxes, spine.shape), FEATHER, spine.shape)
    rois = spine.eval_rois()
    full = weight >= 1 - _WEIGHT_ONE_TOLERANCE
    covered = sum(int(full[r.top : r.bottom, r.left : r.right].sum()) for r in rois)
    return covered / sum((r.bottom - r.top) * (r.right - r.left) for r in rois)


def partial_roi_coverage(enhancer: "Enhancer") -> float | None:
    """The share of the evaluation ROIs an Enhancer's output fills where it leaves part of them
    original (spine mode, a model trained on ROIs under 512 px: :func:`spine_roi_coverage`),
    None where it fills them all: the one test behind enhance's warning and evaluate's note."""
    if enhancer.mode != "spine":
        return None
    share = spine_roi_coverage(enhancer.tile)
    return share if share < 1 else None


def _full_grid(shape: tuple[int, int], tile: int) -> tuple[int, list[int], list[int]]:
    """Full mode's tiles of an H x W image as their side and the rows and columns they start at:
    ``tile`` working pixels (``tile * H / WORKING_HEIGHT`` image pixels) a side, overlapping by
    :data:`FULL_OVERLAP`, covering the image."""
    H, W = shape
    side = max(1, min(round(tile * H / WORKING_HEIGHT), H, W))  # square: tiles are resized to tile x tile
    step = max(1, round(side * (1 - FULL_OVERLAP)))
    return side, _grid(H, side, step), _grid(W, side, step)


def _full_boxes(shape: tuple[int, int], tile: int) -> list[Box]:
    """Full mode's tiles of an H x W image (:func:`_full_grid`)."""
    side, rows, columns = _full_grid(shape, tile)
    return [Box(r, c, r + side, c + side) for r in rows for c in columns]


def _full_tiles(shape: tuple[int, int], tile: int) -> tuple[int, int]:
    """How many full-mode tiles an H x W image is cut into, and their side, counted without making
    them (a strip's thousands of boxes were made to be counted)."""
    side, rows, columns = _full_grid(shape, tile)
    return len(rows) * len(columns), side


def default_full_tiles(shape: tuple[int, int]) -> int:
    """How many full-mode tiles a model trained at 512 (the default) cuts an H x W image into: more
    than :data:`MANY_FULL_TILES`, the image's shape is a cause of many tiles, whatever the model."""
    return _full_tiles(shape, 512)[0]


def many_full_tiles(tile: int, shape: tuple[int, int] | None = None, boxes: list[Box] | None = None,
                    named: str | None = None) -> str | None:  # fmt: skip
    """What to say where full mode cuts an image into more than :data:`MANY_FULL_TILES` tiles (a
    model trained on small ROIs), None where it cuts fewer: a model trained at roi_size=64 ran 441
    tiles of 8 px on a 128 x 128 image, each with its WLS solve, for minutes and without a word.
    ``shape``: the image's (default: each image's, said of a square one at the working height);
    ``boxes``: its full-mode tiles where already cut (:meth:`Enhancer.prepare`'s), not cut again.
    Where a model trained at 512 (the default) cuts the image into as many, its shape is the cause
    (tiles are squares sized to its height, so a 100 x 10000 strip takes thousands), said so: the
    default model was told to use a model trained at roi_size=512, itself. Where the model cuts it
    finer still, the model is said first (it multiplies the tiles) and cropping offered too.
    ``named``: the path of the image of ``shape``, where the note is a batch job's, said once of the
    first image the model alone cuts into so many, as an example of those it does."""
    image = shape or (WORKING_HEIGHT, WORKING_HEIGHT)
    tiles, side = (len(boxes), boxes[0].bottom - boxes[0].top) if boxes else _full_tiles(image, tile)
    if tiles <= MANY_FULL_TILES:
        return None
    cut = (f"images into over {MANY_FULL_TILES} tiles, e.g. {named} ({shape[0]}x{shape[1]}) into {tiles} "
           f"tiles of {side} px a side" if named and shape else
           f"this {shape[0]}x{shape[1]} image into {tiles} tiles of {side} px a side" if shape else
           f"a square image into {tiles} tiles ({tile} px a side at {WORKING_HEIGHT} rows)")  # fmt: skip
    default = default_full_tiles(image)
    if tiles <= default:  # (the model is no cause: one at 512 cuts it as finely)
        square = _full_tiles((WORKING_HEIGHT, WORKING_HEIGHT), tile)[0]
        return (f"full mode cuts {cut}, each its own network run and WLS solve, where a square image takes {square}: "
                f"the tiles are squares of {tile} px at {WORKING_HEIGHT} rows, scaled to the image's height (at most "
                f"its width), so an image this elongated takes many; {asked('mode', 'spine')} enhances the spine's two "
                "tiles, or crop the image to the part to enhance")  # fmt: skip
    return (f"the model was trained at {asked('roi_size', tile)}: full mode cuts {cut}, each its own network run "
            f"and WLS solve, where a model trained at {asked('roi_size', 512)} (the default) cuts it into {default}: "
            f"many times the work; {asked('mode', 'spine')} enhances the spine's two tiles, or enhance with a model "
            f"trained at a larger {asked('roi_size')}{', or crop the image' * (default > MANY_FULL_TILES)}")  # fmt: skip


def _grid(length: int, tile: int, step: int) -> list[int]:
    """Tile starts covering [0, length) with the given step; the last tile ends at length."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step)) + [length - tile]
    return sorted(set(starts))


class Enhancer:
    """XVertNet enhancement of radiographs, in memory or for a batch of files.

    Args:
        model: a model directory (str or path), ``"default"`` (the one shipped with xvertfast)
            or an :class:`~xvertfast.model.XVertNet`, which is copied (yours is not moved or
            switched to eval mode).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``; one naming no
            device is refused as :func:`~xvertfast.load_model` refuses its ``map_location``.
        backend: ``auto``, ``torch``, ``compile``, ``onnxruntime`` or ``tensorrt``
            (see :mod:`xvertfast.infer.backends`).
        mode: ``spine`` (the two spine ROIs, blended into the image) or ``full``.
        brightness: ``network`` (the output as the papers define it) or ``original`` (the
            network's detail on the original's large-scale brightness; see the module docstring).
        batch_size: tiles per network call, a whole number >= 1.
        precision: ``auto`` (bf16/fp16 on a GPU, fp32 on the CPU), ``fp32``, ``fp16``, ``bf16``.
            An exported graph holds fp32 or fp16: onnxruntime runs bf16 as fp32 and TensorRT as
            fp16; :attr:`dtype` is the precision the stages really run in (a warning says so when
            an explicit ``bf16`` is replaced).
        wls_method: the WLS solver of the preprocessing and of the guidance between stages
            (a method of :func:`xvertfast.wls`); ``cuda`` and ``cupy`` need a CUDA device the kernels
            were built for, and are refused here elsewhere.
        cache_dir: where the onnxruntime and tensorrt backends keep their ONNX exports and
            engines (default: ``$XVF_CACHE_DIR``, else ``~/.cache/xvertfast/engines``).

    Example:
        >>> enh = Enhancer("path/to/model", mode="spine")            # doctest: +SKIP
        >>> out = enh.enhance(xvertfast.io.read_image("cxr.png"))    # doctest: +SKIP
        >>> out.pixels.shape                                          # doctest: +SKIP
    """

    def __init__(self, model: str | XVertNet = "default", device: str = "auto", backend: str = "auto",
                 mode: str = "spine", batch_size: int = 8, precision: str = "auto", wls_method: str = "auto",
                 cache_dir: str | None = None, brightness: str = "network"):  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        _check_brightness(brightness)
        batch_size = whole_number(batch_size, "batch_size", "Enhancer", low=1, meaning="tiles per network call")
        if wls_method not in WLS_METHODS:  # (else refused by the first image's preprocessing only)
            raise ValueError(f"wls_method must be one of {', '.join(WLS_METHODS)}, got {wls_method!r}")
        # meta (no data: the first image failed on it) and devices this torch cannot use are refused there,
        # as train refuses them; another device torch can use (a plug-in's hpu, npu) is taken
        self.device = resolve_device(device)
        # (its CPU-without-AMX warning waits for plan_backend, which may refuse the run: bf16 with onnxruntime)
        self.dtype = resolve_precision(precision, self.device, warn=False)
        _check_gpu_wls(wls_method, self.device)
        # The preprocessing's two WLS solves run where they are fastest: on the GPU when the
        # CUDA solver is compiled in (a second each on the CPU at 1024^2), else on the CPU
        # (PyTorch's reference multigrid on a GPU would be slower still).
        on_gpu = self.device.type == "cuda" and cuda_kernels_run_on(self.device) and wls_method in ("auto", "cuda", "cupy")
        self.prepare_device = self.device if on_gpu else torch.device("cpu")
        model = uncompiled(model)  # (torch.compile(model): its weights are the wrapped model's)
        #: where the model came from, for the repr: its folder, "default", or one given as an XVertNet
        self.model_source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
        if isinstance(model, (str, os.PathLike)):
            self.model = load_model(os.fspath(model), map_location="cpu")
        elif isinstance(model, XVertNet):
            # (a model loaded with map_location='meta' failed at the first image, in torch's words:
            # "Cannot copy out of meta tensor; no data!")
            if any(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())):
                raise ValueError("model's weights are on the meta device, which holds no data (load_model(path, "
                                 "map_location='meta') gives their shapes alone): nothing can be enhanced with it; "
                                 "load it with map_location='cpu'")  # fmt: skip
            self.model = copy.deepcopy(model)  # the backends move it to the device and to eval mode
        else:
            raise TypeError(f"model must be a model folder, 'default' or an XVertNet, got {type(model).__name__}")
        self.tile = model_tile(self.model)
        self.mode, self.batch_size, self.wls_method, self.brightness = mode, batch_size, wls_method, brightness
        # the backend is built at first use (an ONNX export or TensorRT engines: seconds to minutes): a dry
        # run needs only its name and precision, which OUT's recorded settings are checked against
        self._backend, self._backend_lock = None, threading.Lock()
        #: why the backend could not be built (see _kept_failure): asked for again, it is not rebuilt
        self._build_failure: Exception | None = None
        self._backend_args, self._asked = (backend, cache_dir, precision), self.dtype
        self.backend_name, dtype = plan_backend(backend, self.device, self.dtype)
        warn_cpu_bf16_without_amx(self.device, dtype)
        self._settle_precision(self.backend_name, dtype)

    def _settle_precision(self, name: str, dtype: torch.dtype) -> None:
        """:attr:`dtype` becomes what the backend runs, said where an explicit precision is replaced
        (the warning names the user's line that made the Enhancer or first used it)."""
        if dtype != self.dtype:
            precision = self._backend_args[2]
            if precision != "auto" and dtype != self._asked:
                warnings.warn(f"precision {precision}: the {name} backend runs "
                              f"{str(dtype).replace('torch.', '')} (its graphs hold fp32 or fp16)",
                              RuntimeWarning, stacklevel=outside_xvertfast())  # fmt: skip
            self.dtype = dtype

    @property
    def backend(self) -> StageBackend:
        """What runs the stages, built at its first use; :attr:`backend_name` and :attr:`dtype` say
        beforehand what it will be (``auto``'s TensorRT that cannot build falls back to torch: then
        :attr:`backend_name` changes to torch's when it is built; torch runs the precision planned,
        the one a dry run described).

        A build that failed is not tried again (an ONNX export or TensorRT engines: seconds to
        minutes each time, for each image of a job): later uses raise at once, naming its error."""
        with self._backend_lock:
            if self._backend is None:
                name, cache_dir, _ = self._backend_args
                if self._build_failure is not None:
                    raise RuntimeError(f"the {self.backend_name} backend could not be built at its first use "
                                       f"({self._build_failure}) and is not built again: fix the cause and make a "
                                       "new Enhancer, or choose another backend") from self._build_failure  # fmt: skip
                try:
                    # the precision planned, not the one asked: auto's TensorRT that cannot build falls back to
                    # torch, which runs what it is given, and OUT recorded torch's bf16 where a dry run (which
                    # builds nothing) described TensorRT's fp16. The planned one builds the same backend
                    # otherwise: a backend's precision is a fixed point of the planning
                    built = make_backend(name, self.model, self.device, self.dtype, self.tile, self.batch_size,
                                         cache_dir)  # fmt: skip
                except Exception as exc:  # (not a Ctrl-C: an interrupted build is built again at the next use)
                    self._build_failure = _kept_failure(exc)
                    raise
                self._settle_precision(built.name, built.dtype)
                self.backend_name, self._backend = built.name, built
            return self._backend

    @backend.setter
    def backend(self, backend: StageBackend) -> None:
        self._backend, self.backend_name, self._build_failure = backend, backend.name, None

    def __repr__(self) -> str:
        """Its settings on one line, the backend as planned (not built: an export or TensorRT engines
        take minutes); Python's default named only the class and an address. The call-like part
        holds the constructor's keywords only, precision as it takes it (fp32, not float32); the
        tile, the model's, follows it."""
        source = self.model_source
        model = repr(source) if source is not None else f"<XVertNet of {count(len(self.model.stages), 'stage')}>"
        precision = next((name for name, dtype in PRECISIONS.items() if dtype == self.dtype), str(self.dtype))
        return (f"Enhancer(model={model}, device={str(self.device)!r}, backend={self.backend_name!r}, "
                f"precision={precision!r}, mode={self.mode!r}, batch_size={self.batch_size}, "
                f"wls_method={self.wls_method!r}, brightness={self.brightness!r}) [tile {self.tile}, the model's]")  # fmt: skip

    def __getstate__(self) -> dict:
        """Pickled (multiprocessing) and deep-copied without the build lock, which neither can copy."""
        state = self.__dict__.copy()
        del state["_backend_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._backend_lock = threading.Lock()

    # -- step 1 ---------------------------------------------------------------------------------
    def prepare(self, pixels, spine: Spine | None = None) -> Prepared:
        """Preprocesses one image ([H, W] in [0, 1], or a Radiograph) and cuts its tiles. What the
        CLI refuses to read is refused here too (:func:`~xvertfast.io.read.content_problem`): an image
        under :data:`~xvertfast.io.MIN_SIDE` pixels a side, or a constant one, in which the network
        made up structure (a blank 100 x 100 image came out with grey levels 0 to 0.48)."""
        given, pixels = pixels, getattr(pixels, "pixels", pixels)
        if isinstance(pixels, PATH_TYPES):  # (torch: "can't convert np.ndarray of type numpy.str_")
            raise TypeError(f"enhance: pixels must be an image ([H, W] array or tensor, or a Radiograph), got "
                            f"{describe_non_array(pixels, takes_radiograph=True)}")  # fmt: skip
        if isinstance(pixels, torch.Tensor):
            source = pixels.detach().cpu()
        else:
            source = real_from_numpy(pixels, "enhance: pixels", "an image ([H, W] array or tensor, or a Radiograph)")
        if source.dim() != 2 or source.numel() == 0:
            raise ValueError(f"enhance: pixels must be [H, W] with H, W >= 1, got shape {tuple(source.shape)}"
                             f"{shape_hint(source.shape)}")  # fmt: skip
        # first the values (a NaN is neither constant nor not; raw stored values are no grey levels yet)
        check_unit_pixels(source, "enhance")
        # within PIXEL_RANGE_SLACK of [0, 1] (conversion rounding), clipped as preprocess clips it
        arr = source.float().clamp(0.0, 1.0).contiguous().numpy()
        if (problem := content_problem(arr)) is not None:  # a Radiograph's file named, as the CLI names it
            raise ImageReadError(given.path, problem) if isinstance(given, Radiograph) else ValueError(
                f"enhance: {problem}")
        if spine is not None and not isinstance(spine, Spine):
            raise TypeError(f"enhance: spine must be a Spine (xvertfast.find_spine gives one), got {type(spine).__name__}")
        if spine is not None and tuple(spine.shape) != tuple(source.shape):
            raise ValueError(f"enhance: the spine given was found on a {spine.shape[0]}x{spine.shape[1]} image, "
                             f"this one is {source.shape[0]}x{source.shape[1]}")  # fmt: skip
        # (a Spine made with dataclasses.replace skipped with_centres' check; its own rows said, not the tiles')
        if spine is not None and (problem := centres_order_problem(spine.upper[0], spine.lower[0])) is not None:
            raise ValueError(f"enhance: {problem}")
        t0 = time.perf_counter()
        m = self.model
        pp = preprocess(source.to(self.prepare_device), m.lam, m.alpha, m.eps, method=self.wls_method)
        spine = spine or find_spine(arr)
        H, W = arr.shape
        boxes = _spine_boxes(spine, self.tile) if self.mode == "spine" else _full_boxes(spine.shape, self.tile)
        inside = _sides_inside(boxes, (H, W))
        xp, y = pp.xp[None, None], pp.y[None, None]
        tiles_x = [_resize(xp[..., b.top : b.bottom, b.left : b.right], (self.tile, self.tile)) for b in boxes]
        tiles_y = [_resize(y[..., b.top : b.bottom, b.left : b.right], (self.tile, self.tile)) for b in boxes]
        return Prepared(arr, spine, boxes, inside, torch.cat(tiles_x), torch.cat(tiles_y),
                        {"preprocess": time.perf_counter() - t0})  # fmt: skip

    # -- step 2 ---------------------------------------------------------------------------------
    def guidance(self, out: torch.Tensor) -> torch.Tensor:
        """The HFC image of stage outputs (Eq. 7), on the CPU solver or the device's. wls takes
        only CPU tensors for method ``cpu``: a GPU job's outputs are solved on a host copy then,
        as its preprocessing is."""
        if self.wls_method == "cpu" and out.device.type != "cpu":
            return self.model.guidance(out.cpu(), method="cpu").to(out.device)
        return self.model.guidance(out, method=self.wls_method)

    def run_tiles(self, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """All stages on [N, 1, S, S] tiles, ``batch_size`` at a time; returns CPU float32.

        A lone tile is run as a pair (with a copy of itself) where ``batch_size`` allows two:
        oneDNN picks other convolution kernels for a batch of one, whose sums differ in the last
        bits, so a tile's output would depend on which call it fell into (a batch job's calls
        follow the order its reads finish in: two runs of one command could differ). From two
        tiles on, a tile's output does not depend on the batch (tests/infer/test_determinism.py),
        so N = k * ``batch_size`` + 1 tiles end in a batch of ``batch_size`` - 1 and one of two:
        no copy is run (full mode cuts a square image into 9 tiles: at batch 8 each image ran 10).
        Tiles of another floating dtype are run as float32, what :meth:`prepare` gives."""
        if not (isinstance(xp, torch.Tensor) and isinstance(y, torch.Tensor)) or xp.dim() != 4 or \
                xp.shape[1] != 1 or xp.shape != y.shape or not (xp.is_floating_point() and y.is_floating_point()):
            raise ValueError(f"run_tiles: xp and y must be float tensors of one shape [N, 1, S, S], got "
                             f"{_describe(xp)} and {_describe(y)}")  # fmt: skip
        for name, tiles in (("xp", xp), ("y", y)):  # (else "wls: image contains ... NaN", naming no tile)
            if not bool(torch.isfinite(tiles).all()):
                raise ValueError(f"run_tiles: {name} contains {int((~torch.isfinite(tiles)).sum())} NaN or infinite "
                                 "value(s)")  # fmt: skip
        outs = []
        bounds = list(range(0, xp.shape[0], self.batch_size)) + [xp.shape[0]]
        if not self.backend.fixed_batch and len(bounds) > 2 and bounds[-1] - bounds[-2] == 1 and self.batch_size > 2:
            bounds[-2] -= 1  # the lone last tile takes one of the batch before it (see above)
        for k, end in zip(bounds, bounds[1:]):
            # (float64 tiles failed inside the stages: "Input type (double) and bias type (float) ...")
            out = xp[k:end].to(self.device, torch.float32, non_blocking=True)
            g = y[k:end].to(self.device, torch.float32, non_blocking=True)
            n = out.shape[0]
            # a backend of fixed shapes (captured graphs) gets the full batch every call; the others a
            # lone tile as a pair (see above)
            pad_to = self.batch_size if self.backend.fixed_batch else (2 if n == 1 < self.batch_size else n)
            repeat = torch.full((pad_to - n,), n - 1, dtype=torch.long, device=out.device) if n < pad_to else None
            if repeat is not None:
                out, g = torch.cat([out, out[repeat]]), torch.cat([g, g[repeat]])
            # a batch job's names of the tiles, for the guidance's warnings
            given = image_names()
            with naming_images(None if given is None else given[k:end] or None):
                for s in range(self.backend.stages):
                    if s > 0:
                        # the real tiles' guidance only, padded as the input: a copy's solve repeated its
                        # tile's warning (the same name) and cost a WLS solve whose output is thrown away
                        with solving(f"the guidance of stage {s + 1}"):
                            g = self.guidance(out[:n])
                        g = g if repeat is None else torch.cat([g, g[repeat]])
                    out = self.backend.run_stage(s, out, g)
            outs.append(out[:n].float().cpu())
        return torch.cat(outs) if outs else xp.new_zeros((0, 1, self.tile, self.tile))

    # -- step 3 ---------------------------------------------------------------------------------
    def compose(self, prep: Prepared, tiles: torch.Tensor, brightness: str | None = None) -> np.ndarray:
        """Blends the enhanced tiles back into an image of the original size.

        ``brightness`` overrides the enhancer's for this call: it acts here only, so one
        network run can be blended both ways (``xvertfast evaluate`` does).
        """
        brightness = _check_brightness(brightness or self.brightness)
        # (zip below would blend fewer tiles than boxes, or drop the extra ones, without a word)
        if not isinstance(tiles, torch.Tensor) or tiles.dim() != 4 or tuple(tiles.shape[:2]) != (len(prep.boxes), 1):
            raise ValueError(f"compose: tiles must be a [{len(prep.boxes)}, 1, S, S] tensor, one per box of the "
                             f"prepared image, got {_describe(tiles)}")  # fmt: skip
        if not tiles.is_floating_point():  # (torch's "adaptive_avg_pool2d" not implemented for 'Byte')
            raise ValueError(f"compose: tiles must be floating point (the network's outputs, in [0, 1]), got {tiles.dtype}")
        # a network's own outputs: bfloat16 (numpy() has none), requiring grad or on a GPU failed in torch's words
        tiles = tiles.detach().cpu()
        tiles = tiles if tiles.dtype in (torch.float32, torch.float64) else tiles.float()
        if not bool(torch.isfinite(tiles).all()):  # (blended, they gave NaN pixels in an output said to be in [0, 1])
            raise ValueError(f"compose: tiles contain {int((~torch.isfinite(tiles)).sum())} NaN or infinite value(s): "
                             "the network's outputs (a diverged model, or an fp16 overflow?)")  # fmt: skip
        frac = FEATHER if self.mode == "spine" else FULL_OVERLAP / 2
        # the planes cover the boxes' bounding region only: outside it no tile weighs, and the result
        # is the original, clipped as below (spine mode: the two tiles are under half of an image)
        top, left = min((b.top for b in prep.boxes), default=0), min((b.left for b in prep.boxes), default=0)
        bottom, right = max((b.bottom for b in prep.boxes), default=0), max((b.right for b in prep.boxes), default=0)
        boxes = [Box(b.top - top, b.left - left, b.bottom - top, b.right - left) for b in prep.boxes]
        pixels = prep.pixels[top:bottom, left:right]
        # each tile's weight as its row and column ramps, made into a plane where it is used (all
        # tiles' float64 planes at once: hundreds of MB in full mode on a 4096-row image)
        ramps, weight = _blend_weights(boxes, prep.inside, frac, (bottom - top, right - left))
        # the original's share of the blend: where the tiles together weigh 1 or more (the spine tiles'
        # overlap, which reaches into both evaluation ROIs) no original pixel shows, and no tile is
        # pulled to its brightness (each was pulled by 1 - its own weight, also where the other tile
        # covered the original)
        rest = np.clip(1.0 - weight, 0.0, None)
        acc = np.zeros_like(weight)
        for box, (wr, wc), tile in zip(boxes, ramps, tiles):
            wt, (h, w) = np.outer(wr, wc), (len(wr), len(wc))
            out = _resize(tile[None], (h, w))[0, 0].numpy().astype(np.float64)
            # the original's low frequencies: in spine mode where the original shows, over the whole
            # tile with brightness="original"
            if brightness == "original" or self.mode == "spine":
                share = 1.0 if brightness == "original" else rest[box.top : box.bottom, box.left : box.right]
                original = pixels[box.top : box.bottom, box.left : box.right]
                out = out + share * self._low_frequency_gap(original, out, math.ceil(frac * max(h, w)))
            acc[box.top : box.bottom, box.left : box.right] += wt * out
        result = np.clip(prep.pixels, 0.0, 1.0).astype(np.float32)
        blended = (acc + rest * pixels) / np.maximum(weight, 1.0)
        result[top:bottom, left:right] = np.clip(blended, 0.0, 1.0)
        return result

    @staticmethod
    def _low_frequency_gap(original: np.ndarray, out: np.ndarray, margin: int) -> np.ndarray:
        """Blurred original minus blurred output: added where the original shows (weighted by its
        share of the blend, 1 - the tiles' summed weight), it brings the output's large-scale
        brightness to the original's where the two meet, so the tile's outline does not show;
        where the tiles weigh 1 or more the output is the network's unchanged."""
        sigma = max(margin / 2.0, 1.0)
        # one blur of the difference: the blur is linear
        return _gaussian_blur(original.astype(np.float64) - out, sigma)

    # -- all three --------------------------------------------------------------------------------
    def enhance(self, pixels, spine: Spine | None = None) -> EnhanceResult:
        """Enhances one image ([H, W] in [0, 1] or a :class:`~xvertfast.io.Radiograph`).

        What the CLI warns of a file is warned of here (``UserWarning``; the result's ``warnings``
        holds each too; :func:`~xvertfast.preprocess.image_warnings`): an image that looks stored
        bone dark (:func:`~xvertfast.preprocess.looks_inverted`), enhanced as given, with how to read
        it the right way up; in spine mode a spine found at the edge of its search, on an image not
        shaped like a chest radiograph, or on one too flat to find it by. Where an image is meant so:
        ``warnings.filterwarnings("ignore", ".*looks inverted")``. In full mode a model that cuts the
        image into more than :data:`MANY_FULL_TILES` tiles is warned of too (:func:`many_full_tiles`)."""
        prep = self.prepare(pixels, spine)
        # what the CLI warns of a file (a Radiograph is named by its file and polarity; full mode uses no ROIs),
        # said before the network runs, which takes seconds
        said = image_warnings(pixels if isinstance(pixels, Radiograph) else prep.pixels,
                              prep.spine if self.mode == "spine" else None, one_image=True)  # fmt: skip
        for warning in said:
            warnings.warn(warning, UserWarning, stacklevel=outside_xvertfast())
        if self.mode == "full" and (many := many_full_tiles(self.tile, prep.pixels.shape, prep.boxes)) is not None:
            warnings.warn(many, UserWarning, stacklevel=outside_xvertfast())  # (before the minutes it warns of)
            said.append(many)  # (the result's warnings left it out: a notebook reading them missed it)
        t0 = time.perf_counter()
        tiles = self.run_tiles(prep.xp, prep.y)
        t1 = time.perf_counter()
        out = self.compose(prep, tiles)
        seconds = {**prep.seconds, "infer": t1 - t0, "compose": time.perf_counter() - t1}
        return EnhanceResult(out, prep.spine, list(prep.boxes), seconds, said)

    def enhance_files(self, inputs: list[str], out_dir: str, **kwargs):
        """Enhances files, folders or ``@lists`` into ``out_dir``; see :func:`xvertfast.infer.enhance_files`."""
        from xvertfast.infer.batch import enhance_files

        return enhance_files(self, inputs, out_dir, **kwargs)
