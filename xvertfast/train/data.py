"""Training data: preprocessed once per image (cached on disk), two spine ROIs per image.

The cache key is the file's SHA-256, the preprocessing parameters and
:data:`CACHE_VERSION`, so a changed file or setting, or a cache an older
xvertfast wrote, is recomputed and a rerun (or ``--resume``) reuses the work.
Crops are taken at the ROI boxes of :func:`xvertfast.find_spine` (sized at the
canonical working height), resampled to ``roi_size`` and cached
(the crops, not the whole images); the crops of a run are gathered into one
file that training memory-maps, so the training set need not fit in memory.
Augmentation is a small random shift of each crop (up to 1/16 of its size):
no flips, which would move the heart to the wrong side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from tqdm import tqdm

from xvertfast._pickled_errors import PickledAsRaised
from xvertfast._text import count, from_cli
from xvertfast.io import DamagedFileError, read_image, require_content
from xvertfast.io.errors import FILE_ERRORS, failure_text
from xvertfast.io.files import InputLists, NothingFound, discover, file_sha256, input_problem
from xvertfast.io.write import atomic_write, disk_full, remove_stale_parts
from xvertfast.ops.wls import check_parameters
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM
from xvertfast.preprocess import WORKING_HEIGHT, image_warnings, preprocess
from xvertfast.preprocess.centres import GivenCentres, centres_of_inputs, spine_at
from xvertfast.preprocess.spine import batch_fixes
from xvertfast.train.run_folder import run_again

__all__ = ["NoReadableImage", "RoiSet", "load_rois", "open_pairs", "random_patches", "read_cached",
           "remove_other_sets", "shift_augment", "split_by_image", "torch_seed", "write_array"]

#: Part of every cached crop's key: raised whenever what is cached for the same image and
#: parameters changes, so a cache written by an older xvertfast is computed again, never reused.
#: 2: the crops, not whole images; 3: training ROIs keep their square shape on narrow images.
CACHE_VERSION = 3


@dataclass
class RoiSet:
    """The ROI pairs of a set of images, shared between subsets without copying pixels.

    ``pairs`` is [M, 2, S, S] float32: X_p and Y of every ROI, a copy-on-write memory map of a
    file in the run folder when it comes from :func:`load_rois` (a training set need not fit
    in memory). ``rows`` are the rows of ``pairs`` in this set, ``image[i]`` the source index
    of its i-th ROI.
    """

    pairs: torch.Tensor
    rows: torch.Tensor
    image: torch.Tensor
    sources: list[str]
    key: str = ""  #: from load_rois: a digest of the images' contents and the preprocessing parameters
    found: int = 0  #: from load_rois: the input files found
    skipped: list[str] = field(default_factory=list)  #: from load_rois: "skipped: FILE: why" of each one not used
    #: from load_rois: "warning: FILE: ..." of the images it kept (an inverted look, a spine at the edge, what
    #: decoding changed, images enlarged into their ROIs), as it said them: of those it preprocessed, and of
    #: those it found in the cache as recorded beside their crops (:func:`_image_pairs`)
    warned: list[str] = field(default_factory=list)
    #: from load_rois: how many of the images used it took from the cache without a record of their warnings,
    #: by folder (cache, private): an older xvertfast preprocessed them and kept none; not in ``warned``
    unrecorded: dict[str, int] = field(default_factory=dict)
    #: from load_rois: the folders that hold the crops of the images used (the cache, or with it ``private``)
    held: list[str] = field(default_factory=list)
    #: from load_rois: a digest of the ROI centres given by hand for the images used ("" where none were)
    centres: str = ""
    #: from load_rois: the SHA-256 of each source's file, in order (a resume names a changed file by it)
    digests: list[str] = field(default_factory=list)

    @classmethod
    def mapped(cls, path: str, image: torch.Tensor, sources: list[str], size: int, remedy: str) -> RoiSet:
        """Every row of the ``.npy`` file of pairs at ``path``, memory-mapped (:func:`open_pairs`):
        one per entry of ``image``, of side ``size``; else :class:`DamagedFileError` with ``remedy``."""
        pairs = open_pairs(path, (len(image), 2, size, size), remedy)
        return cls(pairs, torch.arange(pairs.shape[0]), image, sources)

    def __len__(self) -> int:
        return int(self.rows.numel())

    def batch(self, which) -> tuple[torch.Tensor, torch.Tensor]:
        """X_p and Y, [n, 1, S, S] each, of the set's ROIs ``which`` (indices or a slice), read
        into memory."""
        p = self.pairs[self.rows[which]]
        return p[:, 0:1].contiguous(), p[:, 1:2].contiguous()

    @property
    def xp(self) -> torch.Tensor:
        """Every X_p of the set in memory (for small sets: the training loop reads batches)."""
        return self.batch(slice(None))[0]

    @property
    def y(self) -> torch.Tensor:
        """Every Y of the set in memory (for small sets: the training loop reads batches)."""
        return self.batch(slice(None))[1]

    def subset(self, images: list[int]) -> RoiSet:
        keep = torch.isin(self.image, torch.tensor(images, dtype=self.image.dtype))
        return RoiSet(self.pairs, self.rows[keep], self.image[keep], self.sources)


def open_pairs(path: str, shape: tuple[int, ...] | None = None, remedy: str | None = None) -> torch.Tensor:
    """A ``.npy`` file of ROI pairs as a tensor over a copy-on-write memory map (pages are read
    when used and writes never reach the file); checked as :func:`read_cached` does. ``remedy``
    None: delete it and start the run again."""
    return torch.from_numpy(read_cached(path, shape, remedy or f"delete it and {run_again()}", mmap=True))


def read_cached(path: str, shape: tuple[int, ...] | None, remedy: str | Callable[[], str],
                mmap: bool = False) -> np.ndarray:  # fmt: skip
    """The float32 array of ``shape`` (any, where None) a job cached at ``path``, or
    :class:`~xvertfast.io.DamagedFileError` naming the file, what is wrong with it and
    ``remedy`` (what to delete to have it made again): a file cut short (a disk error, a copy
    stopped midway), empty, not an array file, or another array than was cached there.
    Errors of the system (permissions, I/O) pass as they are: the file may be fine. ``remedy``: the
    text, or a function giving it, called only for a damaged file."""
    def damaged(problem: str) -> DamagedFileError:
        return DamagedFileError(path, f"damaged cache file: {problem}", remedy() if callable(remedy) else remedy)

    try:
        array = np.load(path, mmap_mode="c" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        text = str(exc)
        problem = ("empty or cut short inside its header" if isinstance(exc, EOFError) or text.startswith("EOF")
                   else "not a NumPy .npy array file" if "pickle" in text  # numpy's words would advise unpickling
                   else f"cut short or damaged ({text})")  # fmt: skip
        raise damaged(problem) from None
    if not isinstance(array, np.ndarray) or array.dtype != np.float32 or (shape is not None and array.shape != shape):
        found = f"{array.dtype} {tuple(array.shape)}" if isinstance(array, np.ndarray) else type(array).__name__
        expected = f"float32 {tuple(shape)}" if shape is not None else "float32"
        raise damaged(f"it holds {found}, not the {expected} cached there")
    return array


def _crop(a: np.ndarray, box, size: int) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(a[box.top : box.bottom, box.left : box.right], dtype=np.float32))
    t = t[None, None]
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="area" if t.shape[-1] > size else "bilinear")
    return t[0, 0].numpy()


def write_array(path: str, shape: tuple[int, ...], blocks) -> None:
    """The float32 ``.npy`` file of ``shape`` at ``path``, written atomically from ``blocks`` (arrays
    of whole rows, in order) with plain writes, so a full disk is an OSError with errno ENOSPC:
    numpy's own writers report it as a short write without an errno (np.save) or, through a memory
    map of a sparse file, kill the process with SIGBUS (open_memmap)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": tuple(shape)}
    written = 0
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=np.float32)
            f.write(memoryview(block).cast("B"))
            written += block.size
        if written != math.prod(shape):
            raise ValueError(f"{path}: {written} values written for an array of shape {tuple(shape)}")


class _Crops(NamedTuple):
    """One image's crops in the cache (:func:`_image_pairs`)."""

    path: str  #: the cache file
    digest: str  #: the image file's SHA-256: a resume names the file whose contents changed by it
    #: how many times the crops were enlarged to the ROI size (None: not known, cached by an older xvertfast)
    enlarged: float | None = None
    shape: tuple[int, int] = (0, 0)  #: (H, W) of the image (where ``enlarged`` is known)


def _image_pairs(path: str, folders: tuple[str, ...], params: dict, photometric: str | None, log,
                 given: GivenCentres | None, into: str) -> _Crops:  # fmt: skip
    """The cached [2, 2, S, S] (upper and lower ROI; X_p and Y) of one image: its file in the
    first of ``folders`` that has it, else computed (logging the image's warnings: what decoding
    changed, an inverted look) and written into ``into``. Only the crops
    are kept, not the whole image. ``given``: its ROI centres, placed by hand (None: those found),
    part of the file's name: crops cut at other centres are not taken for these. The warnings, and how
    much the crops were enlarged, are recorded beside them (:func:`_record_of`), and a later start taking
    them from the cache (a resume, a run given a copy of the cache) says them as the first did: it said
    only that they were in the earlier start's log."""
    digest = file_sha256(path)
    keyed = {"file": digest, **params, **({"photometric": photometric} if photometric else {}),
             **({"centres": given.record()} if given is not None else {})}  # fmt: skip
    name = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:32] + ".npy"
    if (found := _first_there(folders, name)) is not None:
        if (record := _read_record(_record_of(found))) is None:  # (an older xvertfast's crops)
            return _Crops(found, digest)
        for warning in _said_again(record, path):
            log(f"warning: {warning}")
        return _Crops(found, digest, record["enlarged"], tuple(record["shape"]))
    cached = os.path.join(into, name)
    rad = require_content(read_image(path, photometric=photometric, warn=False))
    spine = spine_at(rad.pixels, given)
    warnings = image_warnings(rad, spine)
    for warning in warnings:
        log(f"warning: {warning}")
    pp = preprocess(rad.pixels, params["lam"], params["alpha"], params["eps"])
    size = params["roi_size"]
    boxes = spine.train_rois(size)
    pairs = np.stack([np.stack([_crop(pp.xp, box, size), _crop(pp.y, box, size)]) for box in boxes])
    side = min(min(box.bottom - box.top, box.right - box.left) for box in boxes)
    named = [(w.startswith(f"{path}:"), w) for w in warnings]  # (said again of the file's path then: _said_again)
    record = {"cli": from_cli(), "warnings": [[of_file, w[len(path):] if of_file else w] for of_file, w in named],
              "enlarged": size / side, "shape": list(rad.pixels.shape)}  # fmt: skip
    try:
        os.makedirs(into, exist_ok=True)
        with atomic_write(_record_of(cached)) as tmp, open(tmp, "w", encoding="utf-8") as f:  # (first: crops there
            json.dump(record, f)  # have their record, but for an older xvertfast's)
        write_array(cached, pairs.shape, [pairs])
    except OSError as exc:  # the run folder's fault, not the image's: every later image would fail too
        if disk_full(exc):
            raise
        raise CacheNotWritable(into, path, exc) from exc
    return _Crops(cached, digest, record["enlarged"], tuple(rad.pixels.shape))


def _record_of(crops: str) -> str:
    """The file beside an image's cached crops that records its warnings and how much they were enlarged."""
    return crops[: -len(".npy")] + ".json"


def _read_record(path: str) -> dict | None:
    """The record at ``path`` (:func:`_image_pairs`), or None where there is none that reads as one: crops an
    older xvertfast cached (their warnings are in the log of the start that cut them), or a record damaged."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        warnings, shape = record["warnings"], record["shape"]
        if (isinstance(record["cli"], bool) and isinstance(record["enlarged"], float)
                and all(isinstance(named, bool) and isinstance(text, str) for named, text in warnings)
                and len(shape) == 2 and all(isinstance(n, int) for n in shape)):  # fmt: skip
            return record
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return None


def _said_again(record: dict, path: str) -> list[str]:
    """An image's warnings as recorded beside its crops, said of ``path``, where the file is now (the crops
    are of its contents: a copy, a folder moved), and in this caller's words where the start that cut them
    had the other's: the CLI's options or a Python call's arguments
    (:func:`~xvertfast.preprocess.spine.batch_fixes`)."""
    then, now = batch_fixes(cli=record["cli"]), batch_fixes()
    said = []
    for named, text in record["warnings"]:
        for old, new in zip(then, now):
            text = text.replace(old, new)
        said.append(f"{path}{text}" if named else text)
    return said


def _first_there(folders, name: str) -> str | None:
    """The path of the file ``name`` in the first of ``folders`` that holds it; None where none does."""
    return next((p for p in (os.path.join(folder, name) for folder in folders) if os.path.exists(p)), None)


class CacheNotWritable(PickledAsRaised, OSError):
    """The run's cache folder cannot be written (read-only, another user's, an I/O error): the run
    stops, where skipping the image would blame it and every later one."""

    def __init__(self, cache_dir: str, image: str, exc: OSError):
        super().__init__(exc.errno, f"cannot write into {cache_dir}: {exc.strerror or exc} (the crops of {image}); "
                         "make it writable, or train into another RUN_DIR")  # fmt: skip

    def __str__(self) -> str:  # the message alone, not OSError's "[Errno 13] ..."
        return self.strerror


class NoReadableImage(PickledAsRaised, ValueError):
    """Files were found but none gave training ROIs (each was skipped, with its reason, as it came):
    a run that could not start, as :class:`~xvertfast.io.files.NothingFound` is one with nothing to do."""

    def __init__(self, found: int):
        files = f"{count(found, 'file')} found"
        super().__init__(f"no readable training image among the inputs: {files}, all skipped (see above)")


def load_rois(inputs: list[str], cache_dir: str, roi_size: int, lam: float = DEFAULT_LAM,
              alpha: float = DEFAULT_ALPHA, eps: float = DEFAULT_EPS, log=print, progress: bool = False,
              exclude: list[str] = (), rois=None, before_preprocessing=None,
              before_gathering=None, private: str | None = None, taken=None) -> RoiSet:  # fmt: skip
    """Preprocesses (or finds in the cache) every readable input and cuts its two ROIs.

    ``rois``: ROI centres placed by hand (:func:`~xvertfast.preprocess.centres.load_roi_centres`)
    for the inputs they name; the others keep those found. A row naming no input raises
    :class:`~xvertfast.preprocess.centres.RoiRowError` before any image is preprocessed.
    ``before_preprocessing(paths)``: called with the files found (less those the search found a
    problem with) before any is read: a resume given other files is refused there in seconds, not
    after hours of preprocessing an archive.
    ``before_gathering(key, sources, centres, digests)``: called with what the set's ``key``,
    ``sources``, ``centres`` and ``digests`` will be, before the set is gathered (a copy of every
    image's crops): a resume refused there writes none.
    Images enlarged more than :data:`ENLARGED` times to be cut into ROIs (a thumbnail gives ROIs of
    blur) are warned of once, as they are preprocessed, with their count and the largest factor.

    The ROIs of all inputs are gathered into one file in ``cache_dir`` and memory-mapped, so
    the set may be larger than memory; both steps are reused by a rerun with the same inputs.
    ``cache_dir`` is one run's (train holds its folder's lock): the temporaries a kill left of
    these files are removed. Not where ``cache_dir`` is a link: runs of the same images may share
    it, and a temporary there may be the set another is gathering.
    ``private``: a folder of the run's own where what ``cache_dir`` lacks (crops, the gathered set) is
    written where ``cache_dir`` cannot be (a read-only shared cache, linked): said as the run starts,
    where it failed only once every image was hashed, at the gathering. What it holds is always
    taken, also once ``cache_dir`` can be written again (a resume then preprocessed those images
    anew). None: ``cache_dir`` alone.
    ``taken(path)``: called with each image's crops file as the run takes it (found or written), and
    with the gathered set's before it is gathered: a run on a shared cache records which of its files
    are its own (status counts its crops, and dates its last write by them and its set's temporary).
    ``lam``, ``alpha``, ``eps``: numbers or 0-dim tensors or arrays of one (a sweep's values),
    read as numbers: they key the cache, whose names are hashed from their JSON. Checked as TrainConfig
    checks them (``lam=-1`` refused as the call starts, not as each image is preprocessed and skipped).
    """
    # (as TrainConfig reads them: numbers, and checked now, not once an image is preprocessed)
    lam, alpha, eps, _ = check_parameters(lam, alpha, eps, rtol=None, who="load_rois")
    params = {"lam": lam, "alpha": alpha, "eps": eps, "roi_size": roi_size, "version": CACHE_VERSION}
    files, sources, digests, first_of, skipped, enlarged, warned, unrecorded = [], [], [], {}, [], [], [], Counter()

    def skip(text: str) -> None:  # said now, and kept for the end of a long run
        skipped.append(f"skipped: {text}")
        log(skipped[-1])

    def warn(text: str) -> None:  # the same, for an image trained on (its warnings are its only log lines)
        warned.append(text)
        log(text)

    folders, into = (cache_dir,) if private is None else (cache_dir, private), cache_dir
    if private is not None and (cannot := _unwritable(cache_dir)) is not None:
        link = f" (a link to {os.path.realpath(cache_dir)})" if os.path.islink(cache_dir) else ""
        log(f"note: {cache_dir}{link} cannot be written ({cannot}): the run takes the crops it holds, and writes "
            f"those it lacks and its gathered training set into {private}")  # fmt: skip
        into = private
    lists = InputLists()  # (read once: the message of a list that names nothing says so)
    found = discover(inputs, exclude=[cache_dir, *exclude], lists=lists)
    if not found:
        raise NothingFound(inputs, lists=lists)
    given = centres_of_inputs(rois, [f.path for f in found]) if rois is not None else {}
    if before_preprocessing is not None:
        before_preprocessing([f.path for f in found if not f.problem])
    for f in tqdm(found, desc="preprocessing", unit="image", disable=not progress):
        if f.problem is not None:  # a folder that could not be searched: as enhance says it
            skip(input_problem(f))
            continue
        said = len(warned)
        try:
            crops = _image_pairs(f.path, folders, params, f.photometric, warn, given.get(f.path), into)
        except FILE_ERRORS as exc:  # as enhance: a decoder's error, out of memory on a huge image, ...
            del warned[said:]  # (an image skipped after its warnings: listed at the end as skipped, not as trained on)
            if disk_full(exc) or isinstance(exc, CacheNotWritable):  # writing the cache: not the image's fault
                raise
            # not opened (its checksum is read first: missing, a link loop, a path through a file, a folder on
            # the way not searchable): as enhance says it, a listed file with its list and line; else (empty,
            # not decoded, unreadable) names the file once, as enhance does, and another file the error is
            # about; out of memory in words. (Not asked of each file first: two stats an image, every rerun)
            skip(isinstance(exc, OSError) and input_problem(f) or failure_text(f.path, exc))
            continue
        if crops.path in first_of:  # a copy under another name: once, or it could be both trained on and validated
            skip(f"{f.path}: the same image as {first_of[crops.path]} (trained on once)")
            continue
        first_of[crops.path] = f.path
        files.append(crops.path)
        if taken is not None:
            taken(crops.path)
        sources.append(f.path)
        digests.append(crops.digest)
        if crops.enlarged is None:  # (an older xvertfast's crops: warned of, if at all, by the start that made them)
            unrecorded[os.path.dirname(crops.path)] += 1
        elif crops.enlarged > ENLARGED:
            enlarged.append((crops.enlarged, f.path, crops.shape))
    if enlarged:  # (once for the run, not a line per image: an archive of thumbnails would bury the rest)
        warn(_enlarged_warning(enlarged, roi_size))
    if not sources:
        raise NoReadableImage(len(found))
    names = [os.path.basename(p) for p in files]
    set_name = "rois-" + hashlib.sha256("\n".join(names).encode()).hexdigest()[:32] + ".npy"
    gathered = _first_there(folders, set_name) or os.path.join(into, set_name)
    # the images placed by hand by their cache files (contents, parameters, centres), not their paths: a resume
    # reaching the images by other paths (data/ then /abs/data) is trained on the same centres
    placed = sorted(os.path.basename(path) for path, source in zip(files, sources) if source in given)
    centres = hashlib.sha256(json.dumps(placed).encode()).hexdigest()[:32] if placed else ""
    key = os.path.basename(gathered)[5:-4]  # what the set is: its images' contents and the parameters
    if before_gathering is not None:
        before_gathering(key, sources, centres, digests)
    per_image = 2
    if into != cache_dir:
        os.makedirs(into, exist_ok=True)
    shared = {cache_dir} if os.path.islink(cache_dir) else set()  # (its temporary may be another run's, being written)
    remove_stale_parts([path for path in [*files, *map(_record_of, files), gathered]
                        if os.path.dirname(path) not in shared])  # fmt: skip
    if taken is not None:
        taken(gathered)
    if not os.path.exists(gathered):
        def crops(bar):
            for path, source in zip(files, sources):
                def remedy(path=path, source=source) -> str:  # (made only for a damaged file: two lstats and a
                    # realpath an image, 40k for an archive on NFS, went into texts never said)
                    return (f"it held the crops of {source}: {_deleting(path, cache_dir, into == cache_dir)} and "
                            f"{run_again()} (the image is preprocessed again" +
                            ("" if _in_link(path, cache_dir) else f"; deleting {os.path.dirname(path)} redoes every "
                             "image there") + ")")  # fmt: skip
                yield read_cached(path, (per_image, 2, roi_size, roi_size), remedy)
                bar.update(1)

        # (a bar: a copy of every image's crops, minutes for an archive, went by in silence. Opened here, not in
        # crops(): a Ctrl-C in write_array left the generator suspended, and its bar was erased by the garbage
        # collector after the CLI's "interrupted" line, the log's last line then blank)
        with tqdm(total=len(files), desc="gathering the ROIs", unit="image", disable=not progress, leave=False) as bar:
            write_array(gathered, (per_image * len(files), 2, roi_size, roi_size), crops(bar))
    held = list(dict.fromkeys(os.path.dirname(path) for path in files))  # (the folders, in order, once)
    remedy = (f"it held the training ROIs of every image: {_deleting(gathered, cache_dir, into == cache_dir)} and "
              f"{run_again()} (it is gathered again from the images' crops in "
              f"{' and '.join(held)})")  # fmt: skip
    data = RoiSet.mapped(gathered, torch.arange(len(sources)).repeat_interleave(per_image), sources, roi_size, remedy)
    data.key, data.centres, data.found, data.skipped, data.digests = key, centres, len(found), skipped, digests
    data.warned, data.unrecorded, data.held = warned, unrecorded, held
    return data


def _in_link(path: str, cache_dir: str) -> bool:
    """Whether ``path`` lies in ``cache_dir`` and that is a link: a cache perhaps shared with other runs."""
    return os.path.dirname(path) == cache_dir and os.path.islink(cache_dir)


def _deleting(path: str, cache_dir: str, writable: bool) -> str:
    """How the user deletes the damaged cached file ``path`` (:func:`load_rois`'s fix-it text): "delete
    it", but in a cache that is a link, where the file really is, and where the run cannot write there
    (``writable`` False: a read-only shared cache), who may delete it, or how the run does without it."""
    if not _in_link(path, cache_dir):
        return "delete it"
    really = f"(it is {os.path.join(os.path.realpath(cache_dir), os.path.basename(path))}: {cache_dir} is a link)"
    if writable:
        return f"delete it {really}"
    return (f"have it deleted by whoever may write there {really}, or remove the link {cache_dir} (the run then "
            "preprocesses into a cache of its own),")  # fmt: skip


#: How many times a crop may be enlarged to the ROI size before the run warns: ROIs are cut at the
#: scale of a WORKING_HEIGHT-row image, so an image under a third of that height (a thumbnail, an
#: export downsized to 256 or 299 px) is resampled up into ROIs of blur, without the detail the
#: network meets in full-size radiographs. (Not from 2x: the shipped model trained on a 440-row sample.)
ENLARGED = 3.0


def _enlarged_warning(enlarged: list[tuple[float, str, tuple[int, int]]], roi_size: int) -> str:
    """The run's one warning of its images enlarged more than :data:`ENLARGED` times to be cut into
    ROIs: ``enlarged`` holds (factor, file, (H, W)) of each; the largest is named, with its cause:
    too few rows, or too narrow for the square ROIs its rows give (they shrink to its width: a tall
    strip cut from a radiograph was blamed on a height it had). What to do is said for them all: a set of
    thumbnails and strips was told only what the one named needed."""
    factor, path, (h, w) = max(enlarged, key=lambda item: item[0])
    were = "was" if len(enlarged) == 1 else "were"
    side = _roi_side(roi_size, h)
    scale = f"ROIs are cut at the scale of a {WORKING_HEIGHT}-row image"
    if w >= side:
        why = f"{scale}, so a smaller one's are resampled up"
    else:
        why = (f"it is narrower than the square ROIs of {side:.0f} px its height gives ({scale}), so they shrink to "
               "its width and are resampled up")  # fmt: skip
    narrow = [(hw, s) for _, _, hw in enlarged if hw[1] < (s := _roi_side(roi_size, hw[0]))]
    if not narrow:
        todo = "at their full resolution"
    elif len(narrow) == len(enlarged):
        todo = "uncropped, at their full width" + (" and resolution" if any(roi_size / s > ENLARGED for _, s in narrow)
                                                   else "")  # fmt: skip
    else:  # (thumbnails and strips)
        todo = f"at their full resolution, and those narrower than their ROIs ({len(narrow)}) uncropped, at full width"
    return (f"warning: {count(len(enlarged), 'image')} {were} enlarged more than {ENLARGED:g}x to give "
            f"{roi_size} px training ROIs, up to {factor:.1f}x ({path}: {w} x {h} pixels): {why}, blurred, without "
            f"the detail the network meets in full-size radiographs; train on such images {todo}, or leave them "
            "out")  # fmt: skip


def _roi_side(roi_size: int, rows: int) -> float:
    """The side of the square training ROIs of an image of ``rows`` rows, before they shrink to fit its width."""
    return roi_size * rows / WORKING_HEIGHT


def _unwritable(folder: str) -> str | None:
    """Why a run cannot write into ``folder``, where it is so: "read-only file system", "permission
    denied"; None where it can, or where the folder is not there (the run makes it). Asked of the
    system (os.access), not found out by writing a file there, which would set a shared cache's
    time that ``xvertfast status`` of its other runs reads."""
    if not os.path.isdir(folder) or os.access(folder, os.W_OK | os.X_OK):
        return None
    with contextlib.suppress(OSError, AttributeError):  # (no statvfs on Windows)
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "read-only file system"
    return "permission denied"


#: The name of a set's gathered crops (:func:`load_rois`), "rois-" and the set's key, or of the
#: temporary a kill left of it (:func:`~xvertfast.io.write.atomic_write`'s ".NAME.<random>.part").
_SET_NAME = re.compile(r"rois-([0-9a-f]{32})\.npy|\.rois-([0-9a-f]{32})\.npy\.[^.]+\.part")


def remove_other_sets(cache_dir: str, key: str) -> int | None:
    """Removes the gathered sets in ``cache_dir`` other than the set ``key``'s (of other images or
    centres: a start stopped before its first epoch and run again with them), and the temporaries
    a kill left of them while they were gathered, and returns the bytes freed. For a run's own
    cache: its checkpoint goes on only with its own set, and each is a copy of every image's crops
    (tens of GB for an archive). The images' crops are kept: a run given a copy of the cache reuses
    them. A ``cache_dir`` that is a link may be shared by runs, whose sets (or the one another is
    gathering) its own are not: None, nothing removed."""
    if os.path.islink(cache_dir):
        return None
    freed = 0
    with os.scandir(cache_dir) as entries:
        stale = [e for e in entries if (m := _SET_NAME.fullmatch(e.name)) and key not in m.groups()]
    for entry in stale:
        with contextlib.suppress(OSError):  # (gone meanwhile, or in a cache the run may not write: left there)
            size = entry.stat().st_size
            os.remove(entry.path)
            freed += size
    return freed


def torch_seed(value: int) -> int:
    """``value`` as a seed torch takes: torch refuses ints outside [-2**63, 2**64) ("Overflow when
    unpacking long long": a run given ``--seed $(date +%s%N)`` preprocessed every image, then
    failed so) and takes a negative one as its two's complement, ``value % 2**64``. So this
    is the seed torch used for every value it took, and any int seeds a run."""
    return int(value) % 2**64  # (int: a NumPy integer's % overflows)


def split_by_image(n_images: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and validation image indices (validation empty when there are fewer than 2 images)."""
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(torch_seed(seed))).tolist()
    n_val = int(round(val_fraction * n_images)) if n_images > 1 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and n_images > 1 else 0), n_images - 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def shift_augment(xp: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random shift (up to 1/16 of the size, reflect-filled) for each pair of a batch."""
    s = xp.shape[-1]
    m = max(1, s // 16)
    out_x, out_y = torch.empty_like(xp), torch.empty_like(y)
    shifts = torch.randint(-m, m + 1, (xp.shape[0], 2), generator=generator)
    for i, (di, dj) in enumerate(shifts.tolist()):
        pad = (m, m, m, m)
        px = F.pad(xp[i : i + 1], pad, mode="reflect")
        py = F.pad(y[i : i + 1], pad, mode="reflect")
        out_x[i] = px[0, :, m + di : m + di + s, m + dj : m + dj + s]
        out_y[i] = py[0, :, m + di : m + di + s, m + dj : m + dj + s]
    return out_x, out_y


def random_patches(xp: torch.Tensor, y: torch.Tensor, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``size``-square window of each pair (same place in xp and y), at the ROI's own scale.

    Training on patches keeps the pixel scale of inference (the network is fully convolutional)
    while making each step cheaper: the CPU-trained default model uses it.
    """
    s = xp.shape[-1]
    if size >= s:
        return xp, y
    corners = torch.randint(0, s - size + 1, (xp.shape[0], 2), generator=generator).tolist()
    out_x = torch.stack([xp[i, :, a : a + size, b : b + size] for i, (a, b) in enumerate(corners)])
    out_y = torch.stack([y[i, :, a : a + size, b : b + size] for i, (a, b) in enumerate(corners)])
    return out_x, out_y
