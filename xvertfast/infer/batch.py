"""``xvertfast enhance``: a whole archive through an :class:`~xvertfast.infer.Enhancer`, pipelined.

Reading + preprocessing run on ``workers`` threads, the network on the
caller's thread with tiles batched across images, blending + encoding on
writer threads, so the device is fed while files are decoded and written
(the heavy parts, WLS, the network and the codecs, release the GIL).

Safety rules, the same as ``xvertfast preprocess``:

- outputs mirror the input tree under ``out_dir`` and can never leave it;
- every output is written atomically (temporary name, then rename), so an
  output that exists is complete: a rerun skips it (resume) unless
  ``overwrite``; the temporaries of a killed run are removed on the rerun;
- a file that fails is reported and skipped, the job goes on (the errors of
  :data:`~xvertfast.io.errors.FILE_ERRORS`: a corrupt file, out of memory, a codec or the network
  failing): a network batch that fails is run again image by image, so that only the image at
  fault fails, named; any other error (a TypeError) is a bug: it stops the job with its traceback;
- ``out_dir`` keeps the job's settings, a ledger of the outputs it wrote and a lock
  (:mod:`xvertfast.io.job_folder`): resuming with different settings is refused rather
  than mixing outputs, a file the job did not write is never taken for an output or
  replaced, and two jobs cannot write into one folder at once;
- ``out_dir`` is never searched for inputs (an output folder inside an input folder);
- Ctrl-C stops the job after the outputs in flight are written, with its summary; a full
  disk (or an output file system gone read-only) stops it too, and so does a GPU that no
  longer runs anything after an error (an illegal memory access): every later image would
  fail the same way.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextvars
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from xvertfast._checks import whole_number
from xvertfast._interrupts import deliver, interrupts_deferred
from xvertfast._paths import output_folder, working_folder
from xvertfast._stacklevel import naming_images, warn_user, warnings_of_file
from xvertfast._text import asked, count, part_percent
from xvertfast._version import __version__
from xvertfast.io import Radiograph, require_content, write_image
from xvertfast.io.errors import FILE_ERRORS, ImageWriteError, NotAnImage, failure_text
from xvertfast.io.files import (InputFile, InputLists, NothingFound, collision_remedy, discover, file_state,
                                input_paths, input_problem, list_files, output_path, read_input,
                                RealPaths, another_name, first_same_file, refuse_unsearched_images, replaced_path,
                                same_file, searched_input_folder)
from xvertfast.io.job_folder import JOB_FILE, JobFolder, JobLog, dry_run_line, lock_early, recorded_input, run_line
from xvertfast.io.shards import Shard
from xvertfast.io.write import (FORMAT_EXTENSIONS, WRITE_FORMATS, atomic_write, nearest_existing, output_name_refusal,
                                outputs_lost, remove_stale_parts, resumed_by, resumes_once, same_format, same_format_extension)
from xvertfast.model.persistence import fingerprint
from xvertfast.preprocess import image_warnings
from xvertfast.preprocess.centres import GivenCentres, RoiCentres, as_roi_centres, centres_of_inputs, spine_at

__all__ = ["enhance_files", "check_rois_mode", "default_workers", "BatchSummary", "FileRecord", "OUTPUT_FORMATS",
           "JOB_FILE"]

#: ``same`` keeps the input's kind, by its content: 8-bit PNG/JPEG -> png8, deeper PNG -> png16, TIFF -> tiff,
#: DICOM -> dicom (an extensionless TIFF gets .tiff, a DICOM file named .IMG .dcm).
OUTPUT_FORMATS = ("same",) + WRITE_FORMATS


@dataclass
class FileRecord:
    """What a batch job did with one input: its status, output, error, seconds and warnings."""

    input: str
    #: the output written (done), there already (skipped) or to be written (planned); None: failed, not_image
    output: str | None
    #: done, skipped or failed; not_image: a file that is no image (a DICOM presentation state or report, its
    #: error says which), passed over and no failure; in a dry run also planned (it would be enhanced)
    status: str
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    #: e.g. converted to luminance, looks inverted; of an input skipped as done, those the run that
    #: enhanced it gave (its ledger line keeps them; none where an earlier xvertfast made it, whose lines did not)
    warnings: list[str] = field(default_factory=list)
    kind: str | None = None  #: what a not_image input is (its Modality of no image, PR, SR, KO; else its object's name)

    def __setattr__(self, name: str, value) -> None:
        """A failed record has no output (none was written; one being redone was removed: job.abandoned),
        whether it was made failed or failed later (a running one whose write failed): one rule for both."""
        super().__setattr__(name, value)
        if name == "status" and value in ("failed", "not_image"):
            super().__setattr__("output", None)


@dataclass
class BatchSummary:
    """What :func:`enhance_files` did: a :class:`FileRecord` per input (in input order), the counts,
    the job's notes and why it stopped early, if it did (:meth:`stop_line`)."""

    records: list[FileRecord] = field(default_factory=list)
    seconds: float = 0.0
    preview: str | None = None  #: the contact sheet, where one was asked for and written
    report: str | None = None  #: the per-file JSON report, where one was asked for and written
    stopped: str | None = None  #: why the job stopped before the end (interrupted, disk full), else None
    stopped_planning: bool = False  #: it stopped while planning, before any image was enhanced
    found: int = 0  #: input files found (this shard's, for a shard)
    shard: Shard | None = None  #: the part of the inputs this job did, where it was one of several
    found_all: int = 0  #: input files found in all, every shard's
    dry_run: bool = False  #: planned only: nothing was enhanced or written
    busy: bool = False  #: (a dry run) another job writes into the output folder now
    #: a Ctrl-C or SIGTERM came once every image was processed (while the last outputs, the report or
    #: the preview were written): the job is complete where ``stopped`` is None (the ledger says
    #: finished), and the CLI still exits 130 (143) as the user asked it to stop
    interrupted_at_end: bool = False
    #: warnings of the job's settings, not of an image (a model trained on ROIs too small for spine
    #: mode): said as the job starts (full mode's of a model that cuts images into many tiles: as the
    #: first such image is read), they scrolled away on a long job, so the CLI says them again after
    #: the summary line and the --report keeps them
    notes: list[str] = field(default_factory=list)
    #: the folder the job was started in, from which its inputs given as relative paths start (the
    #: --report says it); None where it could not be read (deleted, or not searchable)
    cwd: str | None = None
    #: what writes the rest, where the same command would not: the output folder now leads elsewhere
    #: (:attr:`~xvertfast.io.write.OutputFolderMoved.resume`: give -o, or out_dir=, the folder the job held)
    resume: str | None = None
    #: how the same job is resumed, in its caller's words (:func:`~xvertfast.io.write.resumed_by`)
    resumed_by: str = "the same command resumes"

    def _count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def done(self) -> int:
        """Inputs enhanced and written by this job."""
        return self._count("done")

    @property
    def skipped(self) -> int:
        """Inputs whose output an earlier run wrote already, with the same settings."""
        return self._count("skipped")

    @property
    def planned(self) -> int:
        """Inputs a dry run would enhance."""
        return self._count("planned")

    @property
    def failed(self) -> list[FileRecord]:
        """The records of inputs that failed, each with its error."""
        return [r for r in self.records if r.status == "failed"]

    @property
    def not_images(self) -> dict[str, int]:
        """How many inputs of each kind (PR, SR, KO, ...) were no image: passed over, not failed."""
        return dict(collections.Counter(r.kind for r in self.records if r.status == "not_image"))

    @property
    def warned(self) -> list[FileRecord]:
        """The records of inputs this job warned of (looks inverted, a spine in doubt, ...); not those
        skipped as done, whose warnings an earlier run gave (:attr:`skipped_warned`)."""
        return [r for r in self.records if r.warnings and r.status != "skipped"]

    @property
    def skipped_warned(self) -> list[FileRecord]:
        """The records of inputs skipped as done whose warnings the run that enhanced them gave."""
        return [r for r in self.records if r.warnings and r.status == "skipped"]

    @property
    def not_processed(self) -> int:
        """The inputs found that were neither done, skipped, failed nor no image: those a stopped job left."""
        return self.found - len(self.records)

    def stop_line(self) -> str | None:
        """Why the job stopped early, how many inputs it left and that the same command resumes, in
        one line for the end of its output (None: it did not stop). The job's log does not say it.
        A dry run keeps no progress to resume from (it only stops while planning): it is run again."""
        if self.stopped is None:
            return None
        if self.dry_run:
            return f"stopped early: {self.stopped}; the dry run was cut short; run it again"
        when = " while planning, before any image was enhanced" if self.stopped_planning else ""
        resume = self.resume or f"{self.resumed_by} where this one stopped{resumes_once(self.stopped)}"
        return f"stopped early: {self.stopped}{when}; {count(self.not_processed, 'image')} not processed; {resume}"

    @property
    def images_per_second(self) -> float:
        """Images enhanced a second of the job's wall time (0 before it ran)."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The summary line the CLI prints at the end: the counts and the time taken."""
        if self.dry_run:
            return dry_run_line("enhance", self.shard, self.found, self.found_all, self.planned, self.skipped,
                                len(self.failed), self.seconds)  # fmt: skip
        return run_line(self.shard, self.found, self.found_all, self.done, len(self.warned), self.skipped,
                        len(self.failed), self.seconds, self.not_images)  # fmt: skip


def _write_format(fmt: str, rad: Radiograph, out: str) -> str:
    """``same``: the planned extension decides the kind; a PNG keeps the source's container depth:
    an 8-bit PNG or a JPEG (decoded as 8-bit values; a 16-bit colour PNG too where imagecodecs is
    missing, whose luminance is then taken at 8 bits) gives png8, anything deeper png16. Not the
    depth its values need (``bits_stored``): a 16-bit PNG of values under 256 came back 8-bit."""
    if fmt != "same":
        return fmt
    ext = os.path.splitext(out)[1]
    if ext == ".dcm":
        return "dicom"
    if ext in (".tiff", ".tif"):
        return "tiff"
    return "png8" if rad.values.dtype.itemsize == 1 else "png16"


def _job_settings(enhancer, fmt: str) -> dict:
    return {"model": fingerprint(enhancer.model), "mode": enhancer.mode, "brightness": enhancer.brightness,
            "tile": enhancer.tile, "format": fmt, "precision": str(enhancer.dtype).replace("torch.", "")}  # fmt: skip


def _check_side_files(files, out_dir: str, fmt: str, sources: dict[str, str] | None = None,
                      real_paths: RealPaths | None = None, **paths: str | None) -> None:  # fmt: skip
    """The report and preview files may be neither an input (an image, or one of ``sources``: the
    files the job reads besides them, resolved, and what each is) nor a folder, nor an output (this job's,
    or one ``out_dir``'s ledger records from an earlier run with other inputs) or a file the job keeps
    in ``out_dir`` (written over when the job ends, an output stayed 'done' as JSON), nor one file
    for both, and must be writable where they go: they are written when the job ends, which may be
    days later. The inputs are resolved only where one is given (``real_paths``: the job's resolver,
    whose folders the search resolved already)."""
    inputs, taken = None, {}
    for option, path in paths.items():
        if path is None:
            continue
        if inputs is None:
            real_paths = RealPaths() if real_paths is None else real_paths
            inputs = {real_paths(f.path) for f in files}
        if os.path.isdir(path):
            raise ValueError(f"{asked(option, path)} is a folder; give a file name")
        # (the file written: a link there is replaced by atomic_write, not followed, so it is its folder resolved
        # and its own name, as _replaces tells it when the job ends; a link to an input is no input)
        real = replaced_path(path)
        # (one there is looked at too: realpath keeps the case as given, and on a file system that ignores
        # case, macOS's, --preview IN/A.PNG is the input in/a.png)
        same = None if real in inputs else first_same_file(path, [f.path for f in files], replaced=True)
        # (a hard link is refused, as an output that is one is: the input's copy under that name, in a cp -al
        # backup say, would go; a link there is replaced, as b645a49 lets it)
        if same is not None and another_name(path, same) == "a hard link":
            raise ValueError(f"{asked(option, path)} is a hard link of the input {same} (that file under another name, "
                             f"as in a cp -al copy): written there, the {option} would replace that name of it (the "
                             "input stays as it is under its own); give it another name")  # fmt: skip
        if real in inputs or same is not None:
            raise ValueError(f"{asked(option, path)} is one of the inputs; it would be overwritten")
        # (a file the job reads is refused through a link too, --report lst where @lst -> list.txt: the report
        # would replace the link, and the same command run again read the report as its list)
        read = next((source for source in (sources or {})
                     if source in (real, os.path.realpath(path)) or first_same_file(path, [source]) is not None),
                    None)  # fmt: skip
        if read is not None and (name := another_name(path, read)) is not None:  # (the file is not written over)
            # (--rois r.csv, r.csv a link: the file it leads to named first)
            what = sources[read] if sources[read].endswith(read) else f"{read}, {sources[read]}"
            link = name == "a link"
            raise ValueError(f"{asked(option, path)} is {name} {'to' if link else 'of'} {what}, which the job reads: "
                             f"written there, the {option} would replace {'the link' if link else 'that name of it'} "
                             f"(the file stays as it is{'' if link else ' under its own'}), and a job given {path} "
                             f"would read the {option} in its place; give it another name")  # fmt: skip
        if read is not None:  # (a dry run's report too replaced an @list it was given)
            raise ValueError(f"{asked(option, path)} is {sources[read]}, which the job reads; it would be overwritten")
        if real in taken:
            raise ValueError(f"{asked(option, path)} is also the {asked(taken[real])}; give each a file of its own")
        taken[real] = option
        if (clash := _job_file_clash(files, out_dir, real, fmt)) is not None:
            raise ValueError(f"{asked(option, path)} is {clash}; it would be written over when the job ends: give it "
                             "another name")  # fmt: skip
        made_in = nearest_existing(os.path.dirname(os.path.abspath(path)))
        if not os.path.isdir(made_in) or not os.access(made_in, os.W_OK | os.X_OK):
            raise ValueError(f"{asked(option, path)} cannot be written: {made_in} is not a folder writable here (it "
                             "would be written when the job ends)")  # fmt: skip


#: The extensions an output may have: ``same`` keeps a TIFF's .tif.
_OUTPUT_EXTENSIONS = frozenset(FORMAT_EXTENSIONS.values()) | {".tif"}


def _job_file_clash(files, out_dir: str, real: str, fmt: str) -> str | None:
    """What of the job's ``real`` (a resolved path) would be in ``out_dir``: one of the files the job
    keeps there (its settings, ledgers, locks), the output of an input (by its path but for the
    extension, where the extension is ``fmt``'s, or for ``same`` any an output may have: there the
    content decides, and no file is opened for it here), or an output the folder's ledger records
    from an earlier run. None: none of these."""
    root = os.path.realpath(out_dir)
    try:
        if os.path.commonpath([root, real]) != root or real == root:
            return None
    except ValueError:  # (on another drive: Windows)
        return None
    rel = os.path.relpath(real, root)
    if os.path.dirname(rel) == "" and rel.startswith(".xvertfast-"):
        return f"one of the files the job keeps in {out_dir}"
    stem, ext = os.path.splitext(rel)
    # (a.PNG is the file a.png where the file system ignores case: Windows, macOS)
    if ext.lower() in (_OUTPUT_EXTENSIONS if fmt == "same" else {FORMAT_EXTENSIONS[fmt]}):
        here = os.path.abspath(out_dir)
        for f in files:
            if (out := _stem(out_dir, f.rel)) is not None and os.path.relpath(out, here) == stem:
                return f"the output of {f.path}"
    if (earlier := recorded_input(out_dir, real)) is not None:  # an earlier run's, of other inputs
        return f"the output of {earlier or 'an input'} that an earlier run wrote (its ledger records it)"
    return None


def _plan(files, out_dir: str, fmt: str, mine: list[bool] | None = None) -> tuple[list[tuple], list[FileRecord]]:
    """(input, output) pairs; inputs whose output would leave out_dir, collide or replace an
    input fail here. ``mine`` (a shard's): which of ``files`` are its own, the ones planned; the
    others' files whose outputs could collide with them are planned along, so that every shard
    finds the same collisions (a collision is between files of one output path but for the
    extension; the other files are not opened, which ``same`` would do to learn their kind). The
    folders outputs go into are taken from all files, which needs no file opened."""
    planned, failed, taken = [], [], {}
    real = RealPaths()  # the links as they are now (see _run)
    inputs = {real(f.path) for f in files}
    folders = _output_folders(out_dir, files)
    if mine is None:
        mine = [True] * len(files)
    else:
        stems = [_stem(out_dir, f.rel) for f in files]
        wanted = {stem for stem, own in zip(stems, mine) if own}
        keep = [own or stem in wanted for own, stem in zip(mine, stems)]
        files, mine = [f for f, k in zip(files, keep) if k], [own for own, k in zip(mine, keep) if k]
    for f, own in zip(files, mine):
        suffix = same_format_extension(f.path, same_format(f.path)) if fmt == "same" else FORMAT_EXTENSIONS[fmt]
        try:
            out = output_path(out_dir, f.rel, suffix)
        except ValueError as exc:
            error = str(exc)
        else:
            error = None
            if (too_long := output_name_refusal(f.path, f.rel, {out: suffix})) is not None:  # before it is read
                error = f"{f.path}: {too_long}"
            elif out in taken:
                error = (f"{f.path}: its output {out} is also the output of {taken[out]} "
                         f"({collision_remedy(f.path, taken[out])})")  # fmt: skip
            elif real(out) in inputs:  # the same file, however either path is spelled
                error = (f"{f.path}: its output {out} would replace an input (is the output folder one of the "
                         "input folders?)")  # fmt: skip
            else:
                taken[out] = f.path
        if not own:  # (planned for the collisions it makes with this shard's files)
            continue
        if error is None:
            planned.append((f, out))
        else:
            failed.append(FileRecord(f.path, None, "failed", error))
    return _refuse_folder_names(planned, failed, folders)


def _output_folders(out_dir: str, files) -> dict[str, str]:
    """Each folder below ``out_dir`` that outputs go into -> the first input whose output goes
    there. From every file's output path but for its extension (the folders do not depend on it),
    before a shard keeps its own: in1/x.png and in2/x.png/y.png may be different shards'."""
    root = os.path.abspath(out_dir)
    above: dict[str, str] = {}
    for f in files:
        stem = _stem(out_dir, f.rel)
        if stem is None:
            continue
        folder = os.path.dirname(stem)
        while folder != root and folder not in above and os.path.dirname(folder) != folder:
            above[folder] = f.path
            folder = os.path.dirname(folder)
    return above


def _refuse_folder_names(planned: list[tuple], failed: list[FileRecord], above: dict[str, str]):
    """Fails an input whose output is also a folder other outputs go into (in1/x.png beside
    in2/x.png/y.png: out/x.png): whichever was written second failed with a raw "[Errno 17] File
    exists", and a dry run planned both. The one file fails, not the folder's many."""
    kept = []
    for f, out in planned:
        if out in above:
            failed.append(FileRecord(f.path, None, "failed", f"{f.path}: its output {out} is also the folder that the "
                                     f"output of {above[out]} goes into ({collision_remedy(f.path, above[out])})"))  # fmt: skip
        else:
            kept.append((f, out))
    return kept, failed


def _stem(out_dir: str, rel: str) -> str | None:
    """The output path of ``rel`` but for its extension (None: outside ``out_dir``): what two
    inputs whose outputs collide share, whatever their formats."""
    try:
        return output_path(out_dir, rel, "")
    except ValueError:
        return None


def _read_and_prepare(enhancer, f: InputFile, given: GivenCentres | None, many_tiles: bool, kept: list):
    """On a reader thread: the file read and preprocessed, its warnings (each naming it) and its word
    of a model that cuts images into many tiles, for the job's notes (:func:`_many_tiles_of`, asked
    where ``many_tiles``; the job's thread keeps the first in input order, :class:`_JobNote`); the
    warnings of its solves go to ``kept`` (:func:`warnings_of_file`: of the image, or of the
    settings, as a WLS solver's tolerance beyond reach at the model's lam / eps) for the job's
    thread to give (:func:`_give_kept`), also where the read fails after one."""
    t0 = time.perf_counter()
    with warnings_of_file(f.path, kept):
        rad = require_content(read_input(f, warn=False))
        t1 = time.perf_counter()
        prep = enhancer.prepare(rad) if given is None else enhancer.prepare(rad, spine_at(rad.pixels, given))
    prep.seconds["read"] = t1 - t0
    # full mode uses no ROIs: a spine found at the edge of its search changes nothing there
    said = image_warnings(rad, prep.spine if enhancer.mode == "spine" else None)
    many, note = _many_tiles_of(enhancer.tile, rad.path, prep) if many_tiles else (None, None)
    if many is not None:
        said.append(f"{rad.path}: {many}")
    return rad, prep, said, note


def _many_tiles_of(tile: int, path: str, prep) -> tuple[str | None, str | None]:
    """What to say of an image full mode cuts into more than MANY_FULL_TILES tiles, asked where the
    job has not said it of every image (:func:`_small_tiles_warning`, of a square one): a 100 x 10000
    strip took 789 tiles of the default model, each with its WLS solve, unsaid. (Of the image, of the
    model): said of the image where its shape is a cause (a model at 512 cuts it into as many);
    where the model alone is (one at roi_size=96 cuts a square image into 196, a 2048 x 2500 one
    into 252), a note of the model with this image (``path``) as an example, said once a job (the
    job's thread gives the first, :class:`_JobNote`), not in each such image's warnings."""
    from xvertfast.infer.enhancer import MANY_FULL_TILES, default_full_tiles, many_full_tiles

    if len(prep.boxes) <= MANY_FULL_TILES:
        return None, None
    shape = prep.pixels.shape
    if default_full_tiles(shape) > MANY_FULL_TILES:  # its shape is a cause: said of the image
        return many_full_tiles(tile, shape, prep.boxes), None
    return None, many_full_tiles(tile, shape, prep.boxes, path)


class _JobNote:
    """A note of the job's settings that its images tell (:func:`_many_tiles_of`'s, of its model):
    given once a job, as a warning, and kept for the job's notes (summary.notes, the --report),
    where a warning alone scrolled away mid-job. The job's thread, taking the reads in input order,
    keeps the first that an image words (each reader words it of its own): kept by whichever reader
    met such an image first, it named another image from one run of a job to the next where
    workers > 1."""

    note: str | None = None


def _model_tiles_note(enhancer, said: str | None) -> _JobNote | None:
    """The job's note of a model that cuts images into many tiles (:func:`_many_tiles_of`), given
    once a job rather than at each image; None (no image asked) in spine mode, or where the job's
    warning ``said`` (:func:`_small_tiles_warning`'s) spoke of every image already."""
    return _JobNote() if enhancer.mode == "full" and said is None else None


def _give_kept(kept: list, warnings_of: dict[str, list[str]], said: set) -> None:
    """The warnings :func:`warnings_of_file` kept, given on the job's thread: one of an image joins
    its file's warnings (``warnings_of``: by path; counted, in the report), worded as its file's
    others; one of the settings is given at the caller's line once a job (``said``: those given),
    not once a file: the readers' blocks that name pydicom's warnings reset Python's record of
    those shown, and 10,000 files gave 10,000 copies of one line."""
    for file, message, category in kept:
        if file is not None and file in warnings_of:
            warnings_of[file].append(f"{file}: {message}")
        elif (message, category) not in said:
            said.add((message, category))
            warn_user(message, category)


def _description(settings: dict) -> str:
    """What each output file records about how it was made (see :func:`xvertfast.io.write_image`)."""
    return (f"XVertNet vertebral contrast enhancement, xvertfast {__version__}: model {settings['model'][:16]}, "
            f"mode {settings['mode']}, brightness {settings['brightness']}, tile {settings['tile']}, "
            f"precision {settings['precision']}")  # fmt: skip


def _compose_and_write(enhancer, rad: Radiograph, prep, tiles, out: str, fmt: str, description: str,
                       job: JobFolder, stat, centres: list[float] | None = None,
                       warnings: list[str] | None = None,
                       photometric: str | None = None) -> tuple[dict, list[str]]:  # fmt: skip
    """Blends and writes an image's output: its timings, and a warning for each earlier output of its
    input that was removed from another place. ``warnings``: the image's, and ``photometric``: the
    polarity its @list gave it, kept on its ledger line."""
    t0 = time.perf_counter()
    pixels = enhancer.compose(prep, tiles)
    t1 = time.perf_counter()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # the input as it is now: a link swapped since the plan (a folder of the inputs pointed at the output
    # folder while the model loaded) makes out the input itself, which job.abandoned would then remove
    if same_file(out, rad.path):
        raise ImageWriteError(out, "refusing to overwrite the input image")
    job.starting(rad.path, out)
    if rad.photometric == "MONOCHROME1":  # (a PNG or TIFF output has no other record that it is its input inverted)
        description += "; stored bone bright (MONOCHROME2), its MONOCHROME1 input inverted"
    try:
        # (DICOM: outputs of one source series, in every run of the job, share a series; the instance UID
        # is named by the pixels too: ROI centres given by hand, another backend, give another instance)
        write_image(out, pixels, _write_format(fmt, rad, out), like=rad, overwrite=True, description=description,
                    derivation=job.key)
    except BaseException:  # not made: recorded so (left "writing", status counted it in flight or killed), and
        job.abandoned(rad.path, [out])  # an earlier output being redone goes, as a failed input gets none
        raise
    removed = job.finished(rad.path, out, stat, sole=True, centres=centres, warnings=warnings,
                           photometric=photometric) or []  # (an earlier --format's output of it goes)
    # one at another place than this one's (the input reached another way: its folder given, not the one
    # above it) is said: a rerun of part of an archive into its OUT would move outputs without a word
    moved = [f"{rad.path}: its earlier output {old} was removed: this run writes it as {out} (the input was given "
             "another way than in the run that wrote it; outputs keep the paths below the folder given)"
             for old in removed if _stem_of(old) != _stem_of(out)]  # fmt: skip
    return {"compose": t1 - t0, "write": time.perf_counter() - t1}, moved


def _stem_of(path: str) -> str:
    """A path without its extension, absolute: -o out gives the ledger's out/a.png and the plan's /abs/out/a.tiff."""
    return os.path.splitext(os.path.abspath(path))[0]


def _probe(device) -> None:
    """Runs a trivial kernel on ``device`` and waits for it: raises where the device is unusable."""
    import torch

    (torch.ones(1, device=device) + 1).cpu()
    torch.cuda.synchronize(device)


def _out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, or a RuntimeError that says out of memory (``CUDA error: out of
    memory`` from a kernel launch or a library; torch >= 2.8 raises it as an AcceleratorError)."""
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _device_lost(enhancer, exc: BaseException) -> bool:
    """After ``exc``: does a GPU the job uses no longer run anything? A CUDA error such as an illegal
    memory access or a device-side assert leaves its context unusable, so every later image would
    fail the same way; an out-of-memory error or a bad image's error leaves it working. Out of
    memory is never a lost device, neither the error's nor the probe's own: a full device runs
    again once the images in flight free their memory."""
    if not isinstance(exc, RuntimeError) or _out_of_memory(exc):
        return False
    devices = []
    for device in (enhancer.device, getattr(enhancer, "prepare_device", None)):
        if device is not None and device.type == "cuda" and device not in devices:
            devices.append(device)
    for device in devices:
        try:
            _probe(device)
        except RuntimeError as failed:  # a CUDA error (torch's AcceleratorError is a RuntimeError)
            if not _out_of_memory(failed):
                return True
    return False


def _run_network(enhancer, batch: list, kept: list) -> list:
    """The network on the tiles of a batch of prepared images: per image, its tiles or the exception
    that stopped them. A batch that fails (out of device memory, one image's NaN refused by a WLS
    between stages) is run again image by image, so only the image at fault fails; not where the
    device is lost (every image would fail). The warnings of the runs whose results are given go to
    ``kept`` (:func:`warnings_of_file`); a batch run again drops those its failed run gave of its
    images, so that a file's record holds one line a solve, of the run that made its output (the
    failed run's, with other residuals where its tiles were solved together, were kept beside them)."""
    import torch

    # a warning about a tile (its guidance's solve missed rtol) is its file's, not its place in the batch's
    names = [[(b[0].path, f"tile {j + 1} of {b[4].xp.shape[0]}") for j in range(b[4].xp.shape[0])]
             for b in batch]  # fmt: skip
    together: list = []
    try:
        with warnings_of_file(None, together), naming_images(name for own in names for name in own):
            outs = enhancer.run_tiles(torch.cat([b[4].xp for b in batch]), torch.cat([b[4].y for b in batch]))
    except FILE_ERRORS as exc:  # reported per image by the caller
        if len(batch) == 1 or _device_lost(enhancer, exc):
            kept.extend(together)
            return [exc] * len(batch)
        kept.extend(w for w in together if w[0] is None)  # (the settings': given once a job all the same)
        results = []
        for b, own in zip(batch, names):
            try:
                with warnings_of_file(None, kept), naming_images(own):
                    results.append(enhancer.run_tiles(b[4].xp, b[4].y))
            except FILE_ERRORS as one:
                results.append(one)
        return results
    kept.extend(together)
    results, k = [], 0
    for b in batch:
        n = b[4].xp.shape[0]
        results.append(outs[k : k + n])
        k += n
    return results


#: More reader threads only hold more decoded images in memory (2 per worker are queued).
MAX_WORKERS = 64

#: How often the pipeline, waiting for a read or a write, looks for a Ctrl-C or SIGTERM held meanwhile.
HEED_SECONDS = 0.1


def check_rois_mode(rois, mode: str) -> None:
    """Refuses ROI centres in full mode, which uses none (the CLI asks before loading the model)."""
    if rois is not None and mode != "spine":
        raise ValueError(f"{asked('rois')} places the tiles of {asked('mode', 'spine')}; {asked('mode', 'full')} "
                         "enhances the whole image and uses no ROIs")  # fmt: skip


def default_workers() -> int:
    """Half the CPUs this process may use, 1 to 4. Each reader's WLS solves and the network already
    use every core, so more readers only contend: on 2 cores one reader gave 0.72-0.73 images/s
    against 0.67-0.68 with two (bench/enhance_throughput.py)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 2
    return max(1, min(4, cpus // 2))


def enhance_files(enhancer, inputs: list[str], out_dir: str, fmt: str = "same", overwrite: bool = False,
                  workers: int | None = None, report: str | None = None, progress: bool = True,
                  log=print, preview: str | None = None, shard: Shard | None = None,
                  dry_run: bool = False, command: str | None = None,
                  cwd: str | None = None, rois=None) -> BatchSummary:  # fmt: skip
    """Enhances every input into ``out_dir`` (see the module docstring). A bad file fails alone (its
    :class:`FileRecord` says why) and the job goes on.

    Args:
        enhancer: a configured :class:`~xvertfast.infer.Enhancer`.
        inputs: files, folders (recursive) or ``@list.txt`` files; one path (str or Path) alone is
            one input.
        out_dir: the output folder, made if missing; its ledger makes a rerun resume.
        fmt: ``same`` or one of :data:`~xvertfast.io.WRITE_FORMATS`.
        overwrite: redo outputs already done (else a rerun skips them).
        workers: reader threads (decode + preprocess); as many writer threads. Default:
            :func:`default_workers`.
        report: write per-file status, output (null for a file that failed: none was written) and
            timings to this JSON file (its ``files`` are the :class:`FileRecord` fields).
        progress, log: show a progress bar; where the job's lines go (``print``). A line ``log``
            raises OSError on (its stream closed) is lost, as are the later ones, and the job stops
            as on a full disk (:class:`~xvertfast.io.job_folder.JobLog`).
        preview: draw a few inputs beside their outputs (done or skipped as already done),
            spread over the job, into this PNG (:func:`xvertfast.infer.preview.write_preview`);
            those whose image this call warned of (looks inverted, a spine in doubt, too little
            contrast; not a note of how it was read) come first, spread over where more than
            8. Inputs skipped as done are not put first (their warnings are an earlier run's).
        shard: do only this part of the inputs, beside the other shards' jobs writing into the
            same ``out_dir`` at the same time (:mod:`xvertfast.io.shards`); give each its own
            ``report`` and ``preview``.
        dry_run: plan only, and say what a run would do with every input (status ``planned``:
            it would be enhanced; ``skipped``: done already; ``failed``: why it would fail),
            writing nothing: ``out_dir`` is not made, and a ``report`` (if given) lists the plan.
            Settings other than those ``out_dir`` records raise as they would for a run.
        command, cwd: the command line that started the job and the folder it was started in
            (the CLI's), recorded in ``out_dir``'s ledger for ``xvertfast status`` to give as the
            command that resumes the job (:class:`~xvertfast.io.job_folder.JobFolder`).
        rois: spine mode: a CSV of ROI centres given by hand, or what
            :func:`~xvertfast.preprocess.centres.load_roi_centres` read from one; an input no row
            names keeps the centres found. Each output's ledger line records its centres: a rerun
            redoes the outputs whose centres were changed, added or removed since, and skips the others.

    Returns:
        a :class:`BatchSummary`: counts, failures with their reasons, and each file's record; for
        a job that stopped early (Ctrl-C, SIGTERM, a full disk, a lost device, a log that cannot be
        written), why and how many
        inputs it left (its ``stop_line()``, which ``log`` is not given).

    Raises:
        NothingFound: no input found (:class:`~xvertfast.io.files.NothingFound`), before ``out_dir``
            is made.
        ValueError: settings the job cannot run with, before any output: an unknown ``fmt``,
            ``workers`` out of range, ``rois`` in full mode, a dry run with ``preview``, a ``preview``
            with an extension other than .png, an output
            folder that is an input folder or lies in one holding images, or an ``out_dir`` that
            cannot be used (a file, not writable, another job running in it, other settings
            without ``overwrite``). A ``report`` or ``preview`` where a search of an input folder
            would take it for an image is written, with a warning (a rerun of the same call leaves it
            out of its inputs).
    """
    out_dir = output_folder(out_dir, "enhance_files")
    if fmt not in OUTPUT_FORMATS:  # (the CLI's --format offers these alone: a Python caller's fmt= is said)
        raise ValueError(f"fmt must be one of {', '.join(OUTPUT_FORMATS)}, got {fmt!r}")
    # (int() made workers=2.7 two workers and True one without a word, and 'two' its own words)
    workers = default_workers() if workers is None else whole_number(workers, "workers", low=1, high=MAX_WORKERS)
    check_rois_mode(rois, enhancer.mode)
    rois = as_roi_centres(rois)
    start = time.perf_counter()
    ran_in = working_folder()  # (as the job starts: a folder deleted during it failed the report at its end)
    inputs = input_paths(inputs)  # read once: an iterator is searched, then checked and named below
    lists = InputLists()  # each @list read once, by the search, for the checks below too
    # the job's one resolver: each folder of the inputs resolved once, for the search, the checks of --report
    # and --preview and the ledger (each resolved its own: a resume of 5000 inputs with --report made 10,520
    # os.path.realpath calls and 98,202 lstat, 320 and 37,002 at 233c6c8); the plan resolves afresh (see _run)
    real = RealPaths()
    files = discover(inputs, exclude=[out_dir], lists=lists, real_paths=real)
    if files:
        refuse_unsearched_images(out_dir, inputs, lists, "enhanced")
    if files and (earlier := _written_by_an_earlier_run(report, preview)):  # among the inputs: no inputs
        files = [f for f in files if real(f.path) not in earlier]
    if not files:  # before the output folder is made, as preprocess, train and evaluate do
        raise NothingFound(inputs, lists=lists)
    if dry_run and preview:
        raise ValueError(f"{asked('preview')} draws outputs: a dry run writes none")
    sources = {named: f"the input list {named}" for named in list_files(inputs, lists)} if report or preview else {}
    if isinstance(rois, RoiCentres) and rois.path:
        sources[os.path.realpath(rois.path)] = f"the ROI centres file {rois.path}"
    _check_side_files(files, out_dir, fmt, sources, real, report=report, preview=preview)
    if preview:  # (else a job of days found it out at its end: 'preview not written')
        from xvertfast.infer.preview import sheet_name_problem

        if (problem := sheet_name_problem(preview)) is not None:
            raise ValueError(f"{asked('preview', preview)}: {problem}")
    notes = []  # (warnings of the job's settings, logged once the job holds OUT, and in its report)
    for option, path in (("report", report), ("preview", preview)):
        if path and (folder := searched_input_folder(path, inputs, [out_dir], lists)) is not None:
            notes.append(f"{asked(option)} {path} lies in {folder}, an input folder, under a name its search takes "
                         f"for an image: a later run over {folder} would take it as an input image (this command "
                         f"run again leaves it out); write it in the output folder or outside the input folders "
                         f"(e.g. {os.path.join(out_dir, os.path.basename(path))})")  # fmt: skip
    given = centres_of_inputs(rois, [f.path for f in files]) if rois is not None else {}
    # OUT's lock, where an earlier run made it, held from before the backend is built (an export; TensorRT
    # engines: minutes), while status would say that run stopped; the job folder takes it over
    let_go = (lambda: None) if dry_run else lock_early(out_dir, "enhance", shard)
    try:
        if not dry_run:  # built before OUT is made (an export, engines: it may fail); a dry run builds nothing
            enhancer.backend  # noqa: B018 (its precision, recorded below, may differ from the one described)
        settings = _job_settings(enhancer, fmt)  # hashes every weight: once per job
        log = JobLog(log)  # (a line that cannot be written stops the job, as a full disk does: see _run)
        # which inputs are this shard's (None: all), planned by _run; how many (job.found), for status as it runs
        mine = None if shard is None else [shard.owns(f.rel) for f in files]
        job = JobFolder(out_dir, settings, overwrite, shard=shard, read_only=dry_run, command=command, cwd=cwd,
                        side_files={"report": report, "preview": preview},  # (checked again once OUT is held)
                        real_paths=real, found=len(files) if mine is None else sum(mine))  # fmt: skip
    finally:
        let_go()
    with job:
        if not dry_run:
            remove_stale_parts(path for path in (report, preview) if path)  # a killed run's
        for note in job.notes:  # (another shard's report this one replaces)
            log(f"note: {note}")
        notes += [warning] if (warning := _small_tiles_warning(enhancer)) is not None else []
        of_model = _model_tiles_note(enhancer, warning)
        for note in notes:  # once a job (the job's setting, no image's)
            log(f"warning: {note}")
        looks = set()  # (the inputs whose image was warned of: drawn first on the --preview)
        summary, planned = _run(enhancer, job, files, mine, fmt, workers, progress, log, start, given, looks, of_model)
        summary.records = _in_input_order(summary.records, files)
        summary.resumed_by = resumed_by(command, "enhance_files()")
        summary.notes, summary.cwd = notes + ([of_model.note] if of_model and of_model.note else []), ran_in
        if summary.stopped_planning:  # counted over the part planned, a resume of an archive mostly done read as
            # all of it left ('5004 left' where 4 were): the ledger says where it stopped, and no counts
            job.ended(f"{summary.stopped} while planning", found=summary.found)
        else:
            job.ended(summary.stopped, found=summary.found, done=summary.done, skipped=summary.skipped,
                      failed=len(summary.failed), failures=[(r.input, r.error or "") for r in summary.failed],
                      not_images=sum(summary.not_images.values()))  # fmt: skip
    summary.seconds = time.perf_counter() - start
    try:
        _write_side_files(summary, planned, enhancer, settings, report, preview, log,
                          [*(f.path for f in files), *sources], looks)  # fmt: skip
    except KeyboardInterrupt:  # the outputs are written and the ledger says how the job ended: keep the summary
        if summary.dry_run:  # (nothing was done: the plan's report alone was being written)
            raise
        unwritten = [path for path, written in ((report, summary.report), (preview, summary.preview))
                     if path and not written]  # fmt: skip
        # (in Python's words where no command ran it)
        again = resumed_by(command, "enhance_files()", does="writes them", to="write them")
        log(f"interrupted: {' and '.join(unwritten)} not written ({again})")
        summary.interrupted_at_end = True
    return summary


def _in_input_order(records: list[FileRecord], files) -> list[FileRecord]:
    """``records`` in the order of the inputs found, not the order they finished: skipped ones came
    first, a failed read before the writes still in flight, and several writers end in any order,
    so two runs of one job listed their files differently and a diff of their reports showed moves.
    (The ledger keeps the order written, which a resume does not depend on.)"""
    position = {f.path: i for i, f in enumerate(files)}  # (discover's paths are unique)
    return sorted(records, key=lambda rec: position.get(rec.input, len(position)))


def _small_tiles_warning(enhancer) -> str | None:
    """Where the model's spine tiles leave part of the evaluation ROIs original (trained on ROIs
    under 512 px: :func:`~xvertfast.infer.enhancer.partial_roi_coverage`), what its outputs change:
    a model trained at --roi-size 128 enhanced two 128 px tiles of an image and nothing said so.
    In the caller's words: enhance_files' Python callers were told of --roi-size and --mode full.
    In full mode, where such a model cuts each image into hundreds of tiles, each with its WLS solve
    (:func:`~xvertfast.infer.enhancer.many_full_tiles`): one at --roi-size 64 ran 441 an image unsaid."""
    from xvertfast.infer.enhancer import many_full_tiles, partial_roi_coverage

    if enhancer.mode == "full":
        return many_full_tiles(enhancer.tile)
    if (share := partial_roi_coverage(enhancer)) is None:
        return None
    return (f"the model was trained at {asked('roi_size', enhancer.tile)}: spine mode enhances two tiles of "
            f"{enhancer.tile} px a side (at 1024 rows), {part_percent(share)} of the 512x290 ROIs evaluate scores, "
            f"and leaves the rest of the image original; a model trained at {asked('roi_size', 512)} (the default) "
            f"covers those ROIs, {asked('mode', 'full')} the whole image")  # fmt: skip


def _write_side_files(summary: BatchSummary, planned, enhancer, settings: dict, report: str | None,
                      preview: str | None, log, read: list[str], looks: set[str]) -> None:  # fmt: skip
    """The --report and --preview of a job that has ended; their failures are said, not raised.
    ``read``: the files the job read (its inputs, lists, ROI file), none of which either may
    replace as the links are now (:func:`_replaces`). ``looks``: the inputs :func:`_run` warned
    looked wrong, drawn first on the preview."""
    if report and (replaced := _replaces(report, read, planned)) is not None:
        log(f"error: report {report} not written: it is now {replaced} (a link changed during the job)")
    elif report:
        try:
            _write_report(report, summary, enhancer, settings)
            summary.report = report
        except OSError as exc:  # the outputs are written: say so, do not lose the summary
            log(f"error: report {report} not written: {exc.strerror or exc}")
    if preview and (replaced := _replaces(preview, read, planned)) is not None:
        log(f"warning: preview {preview} not written: it is now {replaced} (a link changed during the job)")
    elif preview:
        from xvertfast.infer.preview import write_preview

        status = {r.input: r.status for r in summary.records}
        shown = [(f, out) for f, out in planned if status.get(f.path) in ("done", "skipped")]  # job order
        if not shown:  # (stopped before its first output, or every input failed: write_preview's "no pairs" said less)
            log(f"warning: preview {preview} not written: no input has an output to draw (none was enhanced, "
                "by this run or one before)")  # fmt: skip
            return
        try:  # labelled by the path below the folder given: p1/IM1.dcm and p2/IM1.dcm are told apart
            write_preview([(f.path, out) for f, out in shown], preview, labels=[f.rel for f, _ in shown],
                          photometrics=[f.photometric for f, _ in shown],
                          warned=[f.path in looks for f, _ in shown],
                          caption=f"{_description(settings)}. Each pair: the input as read (min-max scaled) | "
                                  "the output on its file's own scale, as a viewer shows it")  # fmt: skip
            summary.preview = preview
        except (ValueError, OSError) as exc:  # the outputs are written: a preview never fails the job
            # (an OSError's text names the sheet's temporary, .look.png.x1y2.part: its reason alone)
            log(f"warning: preview {preview} not written: {getattr(exc, 'strerror', None) or exc}")


def _replaces(path: str, read: list[str], planned) -> str | None:
    """What of the job's ``path`` (its --report or --preview) would replace, the links as they are
    now, or None: checked when the job started, against the links as they were then, a report
    whose folder link was pointed at the inputs during the job (a nightly ``ln -sfn``), or an input
    folder's link pointed at the report's folder, was written over an input. ``read``: the files
    the job read; ``planned``: its (input, output) pairs, whose outputs the ledger says done."""
    if (same := first_same_file(path, read, replaced=True)) is not None:
        return f"the input {same}"
    outputs = {out: f.path for f, out in planned}
    if (same := first_same_file(path, outputs, replaced=True)) is not None:
        return f"the output of {outputs[same]}"
    return None


def _run(enhancer, job: JobFolder, files, mine: list[bool] | None, fmt: str, workers: int, progress: bool,
         log, start: float, given: dict[str, GivenCentres], looks: set[str], of_model: _JobNote | None):  # fmt: skip
    """The job proper: plan, skip what is done, then read -> network -> write, pipelined.
    ``mine``: which of ``files`` are the shard's (None: no shard), ``job.found`` of them (as the job's
    ledger recorded them starting: counted once, the summary's count cannot differ from it).
    ``given``: the ROI centres given for inputs (by path). ``looks`` gets the inputs read whose
    image was warned of (looks inverted, a spine in doubt, too little contrast), not those with
    decoding's notes alone (RGB converted to luminance: a sheet of 8 from 12 such PNGs drew the
    first 8, marked, and left out the one that looked inverted). ``of_model``: the job's word of a
    model that cuts images into many tiles (:func:`_model_tiles_note`)."""

    def centres(f: InputFile) -> list[float] | None:
        return given[f.path].record() if f.path in given else None

    description = _description(job.settings)
    summary = BatchSummary(found=job.found, shard=job.shard, found_all=len(files), dry_run=job.read_only,
                           busy=job.busy)  # fmt: skip
    todo, planned = [], []
    try:  # planning a large archive on a network share takes a while: Ctrl-C (SIGTERM) there too
        # (resolved afresh: the job's resolver holds the links as they were before the model loaded, minutes
        # before on a TensorRT build, and an output found to be an input here is refused before it is written)
        planned, failed = _plan(files, job.out_dir, fmt, mine)
        summary.records.extend(failed)
        for rec in failed:
            log(f"error: {rec.error}")
        # a killed run's temporaries (a dry run's job folder removes none); the job's other shards may be writing
        # beside this one, each its own outputs, whose temporaries a long name's cut does not confuse with these
        # (write._part_stem)
        job.remove_stale_parts(out for _, out in planned)  # (in the folder it holds)
        for f, out in planned:
            state, why, warned = job.verdict(f.path, out, centres(f), f.photometric)
            if state == "done":  # (with what the run that made it warned of its image)
                summary.records.append(FileRecord(f.path, out, "skipped", warnings=warned))
            elif state == "refuse":  # a missing input is said missing, not as a clash with what its output path
                # holds (an @list's relative paths run from another folder: 'holds the output of another input')
                why = input_problem(f) or f"{f.path}: {why}"
                summary.records.append(FileRecord(f.path, out, "failed", why))
                log(f"error: {why}")
            elif job.read_only:
                problem = input_problem(f)
                summary.records.append(FileRecord(f.path, out, "planned" if problem is None else "failed", problem))
                if problem is not None:
                    log(f"error: {problem}")
            else:
                todo.append((f, out, file_state(f.path)))
        if log.lost is not None and todo:  # (its lines lost as it planned: stopped before any image was enhanced;
            # a plan with nothing to enhance, a dry run's always, is whole: its lines alone are lost)
            summary.stopped, summary.stopped_planning = log.lost, True
            return summary, planned
    except KeyboardInterrupt:
        summary.stopped, summary.stopped_planning = "interrupted", True  # (said by the summary's stop_line)
        return summary, planned
    if job.read_only:
        return summary, planned

    desc = "enhance" if job.shard is None else f"enhance {job.shard.fraction}"
    bar = log.bar(progress, total=len(todo), unit="img", desc=desc)
    if log.lost is not None and todo:  # (the bar's stream closed: stopped before any image was enhanced)
        bar.close()
        summary.stopped, summary.stopped_planning = log.lost, True
        return summary, planned

    # the bar's counts, kept as images finish: counted over the records at each one, a long job's last
    # images each went over all of its records (skipped ones too), quadratic in the job's size
    tally = collections.Counter(rec.status for rec in summary.records)

    def finish(rec: FileRecord) -> None:
        summary.records.append(rec)
        tally[rec.status] += 1
        if rec.status == "failed":
            log(f"error: {rec.error}")
        elif rec.status == "not_image":
            log(f"skipped: {rec.error}")
        for warning in rec.warnings:
            log(f"warning: {warning}")
        elapsed = time.perf_counter() - start
        # drawn by update, at tqdm's pace: set_postfix's own refresh redrew the bar at every image (35 a second
        # on small images, a line each in a cluster job's log)
        bar.set_postfix(img_s=f"{tally['done'] / max(elapsed, 1e-9):.2f}", failed=tally["failed"], refresh=False)
        bar.update(1)  # (its stream closed too: the log's)
        if log.lost is not None and summary.stopped is None and summary.not_processed:  # (its stream closed: no
            summary.stopped = log.lost  # more work, as on a full disk; none left: the job is done, its lines lost)

    pending_reads: collections.deque = collections.deque()
    reading: set[cf.Future] = set()  # the reads submitted and not done (one waited for is out of pending_reads)
    said: set = set()  # the warnings of the settings given (_give_kept)
    writes: dict[cf.Future, FileRecord] = {}
    #: a write found the disk full or the file system read-only: the writes waiting for a writer are not started
    writes_futile = threading.Event()

    def write(*args) -> tuple[dict, list[str]] | None:
        """An output, or None where, before its turn came, another write found the disk full or the
        file system read-only: it would fail the same way (named 'failed' though never tried), and
        the job stops; it is left 'not processed'."""
        if writes_futile.is_set():
            return None
        try:
            return _compose_and_write(*args)
        except FILE_ERRORS as exc:
            if outputs_lost(exc) is not None:
                writes_futile.set()
            raise

    queue = iter(todo)
    #: images read ahead, and images waiting for a writer: each holds its pixels and tiles in memory
    limit = 2 * workers + enhancer.batch_size

    def fill() -> None:
        while len(pending_reads) < limit and summary.stopped is None:
            item = next(queue, None)
            if item is None:
                return
            # run in this thread's context: a pool's threads start in a context of their own, where the CLI's
            # CLI_OPTIONS is unset and the warnings worded there named Python's arguments to a CLI user
            kept = []
            fut = readers.submit(contextvars.copy_context().run, _read_and_prepare, enhancer, item[0],
                                 given.get(item[0].path), of_model is not None, kept)
            reading.add(fut)  # (until it is done: what a stop waits for, said by _stop_line)
            fut.add_done_callback(reading.discard)
            pending_reads.append((item, kept, fut))

    def drain_writes() -> None:
        # the writes finished, in the order handed over (the dict's), the order written with one writer:
        # the job's last files were taken from as_completed, in a set's order, and the report shuffled them
        done = [w for w in writes if w.done()]
        for w in done:
            rec = writes.pop(w)
            try:
                result = w.result()
                if result is None:  # not started: the disk was full, or the file system read-only
                    continue
                rec.seconds.update(result[0])
                rec.warnings.extend(result[1])
                rec.status = "done"
            except FILE_ERRORS as exc:  # this file fails, the job goes on
                rec.status, rec.error = "failed", failure_text(rec.input, exc)
                if (why := outputs_lost(exc)) is not None and summary.stopped is None:
                    summary.stopped, summary.resume = why, getattr(exc, "resume", None)
            finish(rec)

    def wait_heeding(futures) -> None:
        """Waits for the first of ``futures`` in short steps, delivering a Ctrl-C or SIGTERM held
        meanwhile: while a read is slow, the job stops starting new work (the read in progress is
        still waited for at the end, as the outputs in flight are)."""
        while not cf.wait(futures, timeout=HEED_SECONDS, return_when=cf.FIRST_COMPLETED)[0]:
            deliver(held)

    def make_room() -> None:
        """Waits while ``limit`` writes are in flight: writing slower than reading + the network
        (slow storage, a GPU job) must not keep every image of the job in memory."""
        # A signal held ends the wait without being delivered: the batch's results are all handed over
        # (a batch more in memory at most), and it is delivered at the next read
        while len(writes) >= limit and held.signal is None:
            cf.wait(list(writes), timeout=HEED_SECONDS, return_when=cf.FIRST_COMPLETED)
            drain_writes()

    def stop_if_lost(exc: BaseException) -> None:
        if summary.stopped is None and _device_lost(enhancer, exc):
            first = (str(exc).strip() or type(exc).__name__).splitlines()[0]
            summary.stopped = f"the device failed ({first})"

    # Ctrl-C and SIGTERM are held through the pipeline and delivered at the deliver(held) calls below,
    # where the loop can stop (the handler raises KeyboardInterrupt there): raised at any moment, one
    # could land inside the thread pools' own code and leave a lock of theirs held, which hung the job
    # for good (xvertfast._interrupts). One that comes during the network's batch (seconds) is acted
    # on once the batch is done: the price of never cutting it.
    with interrupts_deferred(stopping=False) as held:
        readers = cf.ThreadPoolExecutor(workers, thread_name_prefix="xvf-read")
        writers = cf.ThreadPoolExecutor(workers, thread_name_prefix="xvf-write")
        try:
            fill()
            while pending_reads and summary.stopped is None:
                batch, tiles = [], 0
                # take finished reads until a batch of tiles is full (wait for at least one)
                while pending_reads and (not batch or (tiles < enhancer.batch_size and pending_reads[0][2].done())):
                    (f, out, stat), kept, fut = pending_reads.popleft()
                    wait_heeding([fut])
                    try:
                        rad, prep, warnings, note = fut.result()
                    except NotAnImage as exc:  # a PACS export's presentation state or report: passed over, said
                        _give_kept(kept, {f.path: []}, said)
                        finish(FileRecord(f.path, None, "not_image", failure_text(f.path, exc), kind=exc.kind))
                    except FILE_ERRORS as exc:  # a corrupt file, out of memory: this file fails
                        warnings = []  # (with what its solves warned of before)
                        _give_kept(kept, {f.path: warnings}, said)
                        finish(FileRecord(f.path, out, "failed", failure_text(f.path, exc), warnings=warnings))
                        stop_if_lost(exc)
                        if summary.stopped is not None:
                            break
                    else:
                        if note is not None and of_model.note is None:  # (the job's first: given as a setting's)
                            of_model.note = note
                            kept.append((None, note, UserWarning))
                        if any(warning not in rad.notes for warning in warnings):  # (image_warnings: its notes too)
                            looks.add(f.path)  # (before _give_kept adds its solves' warnings)
                        _give_kept(kept, {f.path: warnings}, said)  # (here: the caller's line is this thread's)
                        batch.append((f, out, stat, rad, prep, warnings))
                        tiles += prep.xp.shape[0]
                    deliver(held)
                    fill()
                if not batch or summary.stopped is not None:
                    continue
                deliver(held)
                t0 = time.perf_counter()
                kept = []  # (the guidance's: to each tile's file's warnings)
                results = _run_network(enhancer, batch, kept)
                _give_kept(kept, {b[0].path: b[5] for b in batch}, said)
                infer_each = (time.perf_counter() - t0) / len(batch)
                # a signal held from here on is delivered at the next read: the batch's results, waited
                # for, are all handed to the writers and finished, not dropped
                for (f, out, stat, rad, prep, warnings), result in zip(batch, results):
                    if summary.stopped is not None:  # the disk filled or the device was lost: no more handed over
                        break
                    seconds = {**prep.seconds, "infer": infer_each}
                    if isinstance(result, BaseException):  # no write: no wait for room
                        finish(FileRecord(f.path, out, "failed", failure_text(f.path, result), seconds, warnings))
                        stop_if_lost(result)
                        continue
                    make_room()
                    if summary.stopped is not None:  # the disk filled while waiting: no more writes handed over
                        break
                    rec = FileRecord(f.path, out, "running", seconds=seconds, warnings=warnings)
                    writes[writers.submit(contextvars.copy_context().run, write, enhancer, rad, prep, result, out,
                                          fmt, description, job, stat, centres(f), warnings,
                                          f.photometric)] = rec  # fmt: skip (as the reads)
                drain_writes()
            if summary.stopped is not None:  # stopping anyway (a full disk): a signal held meanwhile counts, as ever
                deliver(held)
        except KeyboardInterrupt:  # (from a deliver above)
            summary.stopped = "interrupted"
        finally:
            # a signal from now on: said and dropped where the job stops; else the first is held until
            # the outputs in flight are written (every image was handed over), the next ones dropped
            held.stopping = held.stopping or summary.stopped is not None
            try:  # the outputs in flight are finished whatever the line meets: left running, they were left
                # "writing" in the ledger as the job folder closed under them
                if summary.stopped is not None and (line := _stop_line(reading, writes)) is not None:
                    log(line)
            finally:
                _finish_in_flight(readers, writers, drain_writes)
                bar.close()
    if summary.stopped is not None and summary.stopped == log.lost and not summary.not_processed:
        summary.stopped = None  # (lost at an output in flight, the last ones finished since: nothing left to resume)
    try:
        deliver(held)  # held (not stopping): every image was handed over, or the disk filled in the wait
    except KeyboardInterrupt:
        summary.interrupted_at_end = True
    return summary, planned  # a stop: said by the summary's stop_line, once, where the caller ends


def _stop_line(reading, writes) -> str | None:
    """What a job stopping waits for before its summary, or None where nothing runs: a read in
    progress (a WLS solve cannot be cut) took 20 s on a busy 2-core machine after a Ctrl-C that
    was then met by silence, and its result is dropped, so the wait is not for an output."""
    reads = sum(1 for fut in list(reading) if fut.running())
    outputs = sum(1 for fut in list(writes) if not fut.done())
    if not reads and not outputs:
        return None
    parts = [f"finishing {count(outputs, 'output')} being written"] if outputs else []
    if reads:
        parts.append(f"waiting for {count(reads, 'image')} being read, which cannot be cut (dropped: the next "
                     f"run redoes {'it' if reads == 1 else 'them'})")
    return f"stopping: {' and '.join(parts)}; kill -9 stops at once"


def _finish_in_flight(readers: cf.ThreadPoolExecutor, writers: cf.ThreadPoolExecutor, drain_writes) -> None:
    """The end of the pipeline, with Ctrl-C and SIGTERM held: the reads not started are dropped,
    the outputs in flight are finished and recorded, after a stop too (cut, the job would lose
    them, or abort: xvertfast._interrupts)."""
    readers.shutdown(wait=True, cancel_futures=True)
    writers.shutdown(wait=True)
    drain_writes()  # (every write is done by now)


#: how a report :func:`_write_report` wrote begins (json.dump with indent 2, its first key)
_REPORT_HEAD = b'{\n  "xvertfast": '
#: the keys of a report that no other JSON file of xvertfast's holds together
_REPORT_KEYS = {"xvertfast", "settings", "summary", "files"}


def _written_by_an_earlier_run(report: str | None, preview: str | None) -> set[str]:
    """The resolved paths of ``report`` and ``preview`` where an earlier run wrote them there (a
    report's first bytes and keys, a contact sheet's PNG Software text): a rerun of the command that wrote
    them among its inputs (``--report in/run.png``, a shell's ``in/*``) leaves them out, not takes
    them for images, nor refuses them as inputs it would overwrite."""
    from xvertfast.infer.preview import is_preview

    earlier = set()
    if preview and os.path.isfile(preview) and is_preview(preview):
        earlier.add(os.path.realpath(preview))
    if report and os.path.isfile(report):
        try:
            with open(report, "rb") as f:
                # evaluate's JSON, `info --json` and job.json begin so too: a report holds its own keys
                head = f.read(len(_REPORT_HEAD))
                if head == _REPORT_HEAD and _REPORT_KEYS <= json.loads(head + f.read()).keys():
                    earlier.add(os.path.realpath(report))
        except (OSError, ValueError):  # (unreadable, not JSON: left to the checks, which name it)
            pass
    return earlier


def _write_report(path: str, summary: BatchSummary, enhancer, settings: dict) -> None:
    """The --report: settings, counts and each file's record, with the folder the job ran in, from
    which the inputs' relative paths start (a report read elsewhere named no file by them)."""
    body = {
        "xvertfast": __version__,
        "settings": {**settings, "backend": enhancer.backend_name, "device": str(enhancer.device),
                     "batch_size": enhancer.batch_size},  # fmt: skip
        "summary": {"shard": None if summary.shard is None else summary.shard.fraction,
                    "dry_run": summary.dry_run, "planned": summary.planned,
                    "found_in_all_shards": summary.found_all, "found": summary.found, "done": summary.done, "skipped": summary.skipped,
                    "failed": len(summary.failed), "not_images": summary.not_images,
                    "warned": len(summary.warned), "skipped_warned": len(summary.skipped_warned),
                    "stopped": summary.stopped,
                    "not_processed": summary.not_processed,
                    "seconds": summary.seconds, "images_per_second": summary.images_per_second,
                    "notes": summary.notes, "cwd": summary.cwd},  # fmt: skip
        "files": [asdict(r) for r in summary.records],
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(body, f, indent=2, default=lambda o: float(o) if isinstance(o, np.floating) else str(o))
