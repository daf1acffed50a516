"""``xvertfast preprocess``: the network's inputs for a folder of radiographs, with overlays to check.

For every input it writes, under the output folder (mirroring the input tree):
``<name>_xp.png`` (X_p, 16-bit), ``<name>_y.tiff`` (Y, float32, signed),
``<name>_y.png`` (Y for viewing: 0.5 = 0, scaled to its 99.5th absolute
percentile, or 1 where that is 0) and ``<name>_overlay.png`` (the image with the spine line, the
band estimates and the training and evaluation ROIs drawn on it, and a key to them below it).

A file that cannot be read or processed (the errors of :data:`~xvertfast.io.errors.FILE_ERRORS`:
a corrupt file, out of memory on a huge image too) is reported, gets no output, and the job goes
on; the caller exits non-zero when any failed. A full disk, or an output file system gone
read-only, stops the job (every later write would fail so); so does any other error (a
TypeError: a bug, not the file's fault), with its traceback.
The output folder keeps the job's settings and a ledger of what it wrote
(:class:`xvertfast.io.job_folder.JobFolder`, as ``xvertfast enhance`` does): a rerun
skips an input whose four outputs the ledger says were finished from the same,
unchanged input; it redoes an input edited since, and never replaces a file that
it did not write. Where ROI centres are given for an input (``rois``), its ledger lines
record them, and a rerun redoes the input where they changed. All four outputs of an
input found and not in the ledger (written by an xvertfast before it) are taken as done;
some of them alone (that version, interrupted) are not, and the input fails until they
are moved away.
"""

from __future__ import annotations

import collections
import functools
import os
import time
from dataclasses import dataclass, field

import numpy as np

from xvertfast._paths import output_folder
from xvertfast.io import require_content, write_image
from xvertfast.io.errors import FILE_ERRORS, ImageWriteError, NotAnImage, failure_text
from xvertfast.io.files import (JOB_IMAGES, InputFile, InputLists, NothingFound, RealPaths, collision_remedy, discover,
                                file_state, input_paths, input_problem, output_path, read_input,
                                refuse_unsearched_images, same_file)
from xvertfast.io.job_folder import JobFolder, JobLog, dry_run_line, run_line
from xvertfast.io.shards import Shard
from xvertfast.io.write import atomic_write, output_name_refusal, outputs_lost, resumed_by, resumes_once
from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM
from xvertfast.preprocess import find_spine, image_warnings, preprocess
from xvertfast.preprocess.centres import GivenCentres, as_roi_centres, centres_of_inputs, spine_at

__all__ = ["preprocess_files", "JobSummary", "SUFFIXES", "SETTINGS", "OVERLAY_KEY", "overlay"]

#: The endings of an input's outputs' names: X_p, Y (a 16-bit TIFF and an 8-bit PNG), the overlay.
#: io.files' table of the jobs' images holds them, for train to refuse them as training data.
SUFFIXES = JOB_IMAGES["preprocess"].endings
#: What the outputs depend on besides the input: recorded in the output folder, so that a
#: rerun after they change redoes the outputs (with ``--overwrite``) instead of mixing them.
SETTINGS = {"outputs": list(SUFFIXES), "lam": DEFAULT_LAM, "alpha": DEFAULT_ALPHA, "eps": DEFAULT_EPS}


@dataclass
class JobSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  #: (path, reason)
    #: (path, reason, kind) of the inputs that are no image (a DICOM presentation state, a report):
    #: passed over, said, and no failure
    not_images: list[tuple[str, str, str]] = field(default_factory=list)
    #: (path, its warnings) of the images done with warnings (looks inverted, spine at the edge of
    #: its search, colour converted): the overlays to look at
    warned: list[tuple[str, list[str]]] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str | None = None  #: why the job stopped early (interrupted, the disk full or read-only), else None
    not_processed: int = 0  #: inputs left when it stopped
    shard: Shard | None = None  #: the part of the inputs this job did, where it was one of several
    found: int = 0  #: input files found (this shard's, for a shard)
    found_all: int = 0  #: input files found in all, every shard's
    planned: list[str] = field(default_factory=list)  #: (a dry run) the inputs a run would preprocess
    dry_run: bool = False  #: planned only: nothing was computed or written
    busy: bool = False  #: (a dry run) another job writes into the output folder now
    #: what writes the rest, where the same command would not (an output folder that now leads elsewhere)
    resume: str | None = None
    #: how the same job is resumed, in its caller's words (:func:`~xvertfast.io.write.resumed_by`)
    resumed_by: str = "the same command resumes"

    def not_image_kinds(self) -> dict[str, int]:
        """How many inputs of each kind (PR, SR, KO, ...) were no image: passed over, not failed."""
        return dict(collections.Counter(kind for _, _, kind in self.not_images))

    def line(self) -> str:
        if self.dry_run:
            return dry_run_line("preprocess", self.shard, self.found, self.found_all, len(self.planned),
                                len(self.skipped), len(self.failed), self.seconds)  # fmt: skip
        text = run_line(self.shard, self.found, self.found_all, len(self.done), len(self.warned), len(self.skipped),
                        len(self.failed), self.seconds, self.not_image_kinds())  # fmt: skip
        if self.stopped:
            resume = self.resume or f"{self.resumed_by}{resumes_once(self.stopped)}"
            text += f"; stopped: {self.stopped}, {self.not_processed} not processed ({resume})"
        return text


#: The overlay's marks, in the order its key lists them: (RGB colour, what it marks).
OVERLAY_KEY = (((255, 220, 0), "spine line"), ((255, 120, 0), "band estimates"),
               ((0, 200, 255), "training ROIs"), ((60, 255, 60), "evaluation ROIs"))  # fmt: skip
_LINE, _BAND, _TRAIN, _EVAL = (colour for colour, _ in OVERLAY_KEY)
#: The shape the key draws for each mark of OVERLAY_KEY, as overlay() draws that mark: by the
#: entry, not its colour, which two marks could share or an edit could change.
_KEY_SHAPES = ("line", "circle", "box", "box")


def overlay(pixels: np.ndarray, spine) -> np.ndarray:
    """RGB uint8 picture of the image with the spine line and the ROIs, and below it a key to their
    colours: an overlay is looked at on its own, away from --help. The image keeps its pixel rows."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).convert("RGB")
    d = ImageDraw.Draw(img)
    H, W = pixels.shape
    lw = max(1, round(H / 512))
    d.line([(spine.x, 0), (spine.x, H - 1)], fill=_LINE, width=lw)
    for row, col in spine.band_points:
        r = 2 * lw
        d.ellipse([col - r, row - r, col + r, row + r], outline=_BAND, width=lw)
    for box in spine.train_rois():
        d.rectangle([box.left, box.top, box.right - 1, box.bottom - 1], outline=_TRAIN, width=lw)
    for box in spine.eval_rois():
        d.rectangle([box.left, box.top, box.right - 1, box.bottom - 1], outline=_EVAL, width=lw)
    key = _overlay_key(W, max(10, round(H / 45)), lw)
    both = Image.new("RGB", (W, H + key.height))
    both.paste(img, (0, 0))
    both.paste(key, (0, H))
    return np.asarray(both)


@functools.lru_cache(maxsize=64)
def _key_font(size: int):
    """The key's font, ``size`` px high: loaded once per size (a folder of mixed heights has a few
    dozen at most), not once per image of a job."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow 10.0 (the requirements allow it) has only its one small bitmap font
        return ImageFont.load_default()


def _overlay_key(width: int, size: int, lw: int):
    """A dark strip ``width`` wide with each mark of :data:`OVERLAY_KEY` beside its name, in text
    ``size`` px high, wrapped onto as many lines as the width needs."""
    from PIL import Image, ImageDraw

    font = _key_font(size)
    gap, line_h = size // 2, round(size * 1.6)
    items = [(colour, name, shape, size + gap + round(font.getlength(name)))
             for (colour, name), shape in zip(OVERLAY_KEY, _KEY_SHAPES, strict=True)]  # fmt: skip
    lines: list[list] = [[]]
    x = gap
    for item in items:
        if lines[-1] and x + item[3] > width - gap:
            lines.append([])
            x = gap
        lines[-1].append((x, item))
        x += item[3] + 2 * gap
    strip = Image.new("RGB", (width, len(lines) * line_h + gap), (0, 0, 0))
    d = ImageDraw.Draw(strip)
    for k, line in enumerate(lines):
        top = gap + k * line_h
        for x, (colour, name, shape, _) in line:
            box = [x, top, x + size - 1, top + size - 1]
            if shape == "line":
                d.line([(x + size // 2, top), (x + size // 2, top + size - 1)], fill=colour, width=lw)
            elif shape == "circle":
                d.ellipse(box, outline=colour, width=lw)
            else:
                d.rectangle(box, outline=colour, width=lw)
            d.text((x + size + gap, top), name, fill=(255, 255, 255), font=font)
    return strip


def _y_shown(y: np.ndarray, values: str) -> tuple[np.ndarray, str]:
    """NAME_y.png's grey levels, and what they stand for, kept in the file (its PNG Description): each
    image's Y is scaled by its own percentile, so two pictures' greys are not comparable, and the picture
    alone did not say by how much. A Y that is 0 almost everywhere has no percentile to scale by: it is
    drawn at a fixed scale, said as such (the text named a percentile that scaled nothing)."""
    scale = float(np.percentile(np.abs(y), 99.5))
    why = "the 99.5th percentile of |Y|; values past it clipped"
    if not scale:
        scale, why = 1.0, ("a fixed scale: the 99.5th percentile of |Y|, which sets it otherwise, is 0; "
                           "values past them clipped")  # fmt: skip
    said = (f"Y, the guidance image, for viewing: mid-grey is 0, white +{scale:.4g} and black -{scale:.4g} "
            f"({why}); its values are in {values}")  # fmt: skip
    return np.clip(0.5 + 0.5 * y / scale, 0, 1), said


def _write_rgb(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    with atomic_write(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG")


def _write_float_tiff(path: str, values: np.ndarray) -> None:
    """Y is signed: written as raw float32 (write_image's TIFF holds [0, 1] images)."""
    import tifffile

    with atomic_write(path) as tmp:
        tifffile.imwrite(tmp, values.astype(np.float32), photometric="minisblack")


def _one(f: InputFile, outs: list[str], job: JobFolder, log=print,
         given: GivenCentres | None = None) -> list[str]:  # fmt: skip
    """Reads, checks and preprocesses one file, then writes its outputs (each atomically),
    each recorded in the job's ledger before its rename and after it. Returns its warnings.
    ``given``: its ROI centres, placed by hand (None: those found)."""
    stat = file_state(f.path)  # as the input was when read: an edit during the job is redone next time
    rad = require_content(read_input(f, warn=False))
    spine = find_spine(rad.pixels) if given is None else spine_at(rad.pixels, given)
    warnings = image_warnings(rad, spine)
    for warning in warnings:
        log(f"warning: {warning}")
    pp = preprocess(rad.pixels)
    y_png, y_said = _y_shown(pp.y, os.path.basename(outs[1]))
    # everything is computed before the first file is written; none over the input as it is now (a link
    # swapped onto an output since the job decided to redo it: written over, or removed by job.abandoned)
    if (mine := next((out for out in outs if same_file(out, f.path)), None)) is not None:
        raise ImageWriteError(mine, "refusing to overwrite the input image")
    for out in outs:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        job.starting(f.path, out)
    try:
        write_image(outs[0], pp.xp, fmt="png16", overwrite=True)
        _write_float_tiff(outs[1], pp.y)
        write_image(outs[2], y_png, fmt="png8", overwrite=True, description=y_said)
        _write_rgb(outs[3], overlay(rad.pixels, spine))
    except BaseException:
        # a failed input gets no output: those written before the error (or Ctrl-C) would pass
        # for its set. All four are the job's own (the ledger records them as being written)
        job.abandoned(f.path, outs)
        raise
    for out in outs:
        job.finished(f.path, out, stat, centres=None if given is None else given.record(), photometric=f.photometric)
    return warnings


def _plan(files: list[InputFile], out_dir: str) -> list[tuple]:
    """Each file with its outputs, or with the error that says why it has none."""
    planned: list[tuple] = []
    taken: dict[str, str] = {}  # an output -> the input it belongs to
    for f in files:
        try:
            outs = [output_path(out_dir, f.rel, s) for s in SUFFIXES]
        except ValueError as exc:  # an output outside out_dir: reported in the loop
            planned.append((f, exc))
            continue
        if (too_long := output_name_refusal(f.path, f.rel, dict(zip(outs, SUFFIXES)))) is not None:  # before it is read
            planned.append((f, ValueError(too_long)))
            continue
        if outs[0] in taken:  # x.png and x.tiff in one folder, or one name in two input folders
            other = taken[outs[0]]
            planned.append((f, ValueError(f"its outputs ({outs[0]}, ...) are also those of {other} "
                                          f"({collision_remedy(f.path, other)})")))  # fmt: skip
            continue
        taken[outs[0]] = f.path
        planned.append((f, outs))
    return planned


def _decide(job: JobFolder, f: InputFile, outs: list[str],
            given: GivenCentres | None = None) -> tuple[str, str | None]:  # fmt: skip
    """("done" | "redo", None) or ("refuse", why) for the four outputs of one input, whose ROI
    centres are ``given`` (None: those found): outputs made at others are redone."""
    if all(job.exists(o) and not job.recorded(o) for o in outs):  # (in the folder the job holds)
        job.adopt(f.path, outs)  # the whole set of an xvertfast before the ledger, by its four names
    centres = None if given is None else given.record()
    states = [job.state(f.path, o, centres, f.photometric) for o in outs]
    refused = [why for state, why in states if state == "refuse"]
    if refused:
        return "refuse", refused[0]
    return ("done", None) if all(state == "done" for state, _ in states) else ("redo", None)


def preprocess_files(inputs: list[str], out_dir: str, overwrite: bool = False, progress: bool = True,
                     log=print, shard: Shard | None = None, dry_run: bool = False, command: str | None = None,
                     cwd: str | None = None, rois=None) -> JobSummary:  # fmt: skip
    """Preprocesses every input into out_dir; see the module docstring. Never raises for a bad
    file; raises :class:`~xvertfast.io.files.NothingFound` when no input is found, ValueError
    when out_dir cannot be used (a file, not writable, another job in it, other settings
    without ``overwrite``). ``shard``: only this part of the inputs, beside the other shards'
    jobs into the same folder (:mod:`xvertfast.io.shards`). ``dry_run``: plan only, writing
    nothing (out_dir is not made); the summary's ``planned`` lists what a run would preprocess,
    ``skipped`` what is done, ``failed`` what would fail at planning (files that cannot be
    decoded show only when a run reads them). A KeyboardInterrupt (Ctrl-C; the CLI's SIGTERM) while
    the inputs are processed stops the job: the summary's ``stopped`` says so, as it does where
    ``log`` raises OSError on a line (its stream closed: that line and the later ones are lost,
    :class:`~xvertfast.io.job_folder.JobLog`). ``command``,
    ``cwd``: the command line that started the job and its folder (the CLI's), recorded in the
    ledger for ``xvertfast status`` to give as the command that resumes it. ``rois``: a CSV of
    ROI centres placed by hand, or what :func:`~xvertfast.preprocess.centres.load_roi_centres`
    read from one: the overlays of the inputs it names show them (the others, those found);
    ValueError for a row that names no input."""
    out_dir = output_folder(out_dir, "preprocess_files")
    rois = as_roi_centres(rois)
    inputs = input_paths(inputs)  # read once: an iterator is searched, then checked and named below
    lists = InputLists()  # each @list read once, by the search, for the check below too (a pipe read again is empty)
    # one a job: each folder resolved once for the search and the ledger together (the walk's check of links
    # resolves it once more: twice a job, where a resolver each made it three times)
    real = RealPaths()
    files = discover(inputs, exclude=[out_dir], lists=lists, real_paths=real)
    if not files:  # before the output folder is made
        raise NothingFound(inputs, lists=lists)
    given = centres_of_inputs(rois, [f.path for f in files]) if rois is not None else {}
    refuse_unsearched_images(out_dir, inputs, lists, "preprocessed")
    log = JobLog(log)  # (a line that cannot be written stops the job, as a full disk does)
    job = JobFolder(out_dir, SETTINGS, overwrite, job="preprocess", shard=shard, read_only=dry_run, command=command,
                    cwd=cwd, real_paths=real)  # fmt: skip
    summary = JobSummary(shard=shard, dry_run=dry_run, busy=job.busy, resumed_by=resumed_by(command, "preprocess_files()"))
    start = time.perf_counter()
    with job:
        planned = _plan(files, out_dir)  # (all files: every shard finds the same collisions)
        if shard is not None:
            planned = [(f, outs) for f, outs in planned if shard.owns(f.rel)]
        summary.found, summary.found_all = len(planned), len(files)
        job.remove_stale_parts(o for _, outs in planned if isinstance(outs, list) for o in outs)  # (none in a dry run)
        desc = "preprocess" if shard is None else f"preprocess {shard.fraction}"
        bar = log.bar(progress and not dry_run, total=len(planned), unit="img", desc=desc)
        for number, (f, outs) in enumerate(planned):
            try:
                if isinstance(outs, ValueError):
                    raise outs
                state, why = _decide(job, f, outs, given.get(f.path))
                if state == "refuse":
                    raise ValueError(why)
                if state == "done":
                    summary.skipped.append(f.path)
                elif dry_run:  # (its log lost, it plans on: its summary, on stdout, is the plan)
                    problem = input_problem(f)  # missing, empty: said as a run would say it
                    if problem is None:
                        summary.planned.append(f.path)
                    else:
                        summary.failed.append((f.path, problem))
                        log(f"error: {problem}")
                elif log.lost is not None:  # its stream closed (`|& head -1`; the bar's, as it was made): stopped
                    # before this input's solve and writes, as enhance stops; the same command resumes. (None left
                    # to do: the job is done, its lines lost)
                    summary.stopped, summary.not_processed = log.lost, len(planned) - number
                    break
                else:
                    warnings = _one(f, outs, job, log, given.get(f.path))
                    summary.done.append(f.path)
                    if warnings:
                        summary.warned.append((f.path, warnings))
            except NotAnImage as exc:  # a PACS export's presentation state or report: passed over, said
                summary.not_images.append((f.path, failure_text(f.path, exc), exc.kind))
                log(f"skipped: {summary.not_images[-1][1]}")
            except FILE_ERRORS as exc:  # a corrupt file, out of memory: this file fails
                reason = failure_text(f.path, exc)
                summary.failed.append((f.path, reason))
                log(f"error: {reason}")
                if (why := outputs_lost(exc)) is not None:  # the disk full, or read-only: every later one would fail
                    summary.stopped, summary.not_processed = why, len(planned) - number - 1
                    summary.resume = getattr(exc, "resume", None)
                    break
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the CLI raises it): the summary says what is done
                if dry_run:  # (its counts would be part of a plan)
                    raise
                summary.stopped, summary.not_processed = "interrupted", len(planned) - number
                break
            bar.update(1)
        bar.close()
        job.ended(summary.stopped, found=summary.found, done=len(summary.done), skipped=len(summary.skipped),
                  failed=len(summary.failed), failures=summary.failed,
                  not_images=len(summary.not_images))  # fmt: skip
    summary.seconds = time.perf_counter() - start
    return summary
