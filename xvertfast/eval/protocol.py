"""The evaluation protocol of xvertnet section IV-C: every method on every image, metrics on the spine ROIs.

Per image: decode, find the spine (or take the ROI centres from a file), run
every method on the whole image, cut the two 512 x 290 evaluation ROIs at the
same places from the original and from each output, and score each ROI.

8-bit conversion, as ``shared/metrics/SPEC.md`` fixes it: the original ROI is
used as stored when the source is 8-bit, and mapped by a min-max over the ROI
otherwise; a method's float output in [0, 1] is mapped by ``round(255 x)``.
(``identity`` therefore scores the original ROI exactly as stored.) TMQI takes
the original ROI's decoded values as its reference and the method's 8-bit ROI
as the test image.

A failure on one image is reported and the run goes on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from xvertfast._pickled_errors import PickledAsRaised
from xvertfast._text import WARNED_LISTED, count, middle_cut
from xvertfast.eval._alarms import Alarms
from xvertfast.eval.journal import Journal
from xvertfast.io import ImageReadError, require_content
from xvertfast.io.errors import FILE_ERRORS, NotAnImage, failure_text
from xvertfast.io.files import InputFile, discover, read_input
from xvertfast.preprocess import image_warnings
from xvertfast.preprocess.centres import GivenCentres, RoiCentres, centres_of_inputs, load_roi_centres, spine_at
from xvertfast.preprocess.spine import Box, Spine, batch_fixes

__all__ = ["METRICS", "DEFAULT_METRICS", "ROI_NAMES", "ORIGINAL_PICTURE", "EvalRun", "to_8bit_original", "to_8bit_output",
           "score_roi", "RoiCentres", "load_roi_centres", "run_protocol", "method_kind", "check_metrics"]  # fmt: skip

#: tmqi_paper_compat: TMQI with the test image in [0, 1], the XVertNet paper's scale (SPEC), asked for by name.
METRICS = ("entropy", "tenengrad", "lpc_si", "tmqi", "brisque", "tmqi_paper_compat")
DEFAULT_METRICS = ("entropy", "tenengrad", "lpc_si", "tmqi")
ROI_NAMES = ("upper", "lower")
#: Height of the thumbnails kept for the side-by-side grids of the report.
THUMB_HEIGHT = 512
#: A picture's key for the original where no method is identity (no label can be this: no parentheses).
ORIGINAL_PICTURE = "(original)"
#: Seconds an image takes from which the bar shows its further steps and the next one's (:class:`_StepShown`).
STEP_SLOW_S = 1.0
#: Longest file name the bar shows whole (longer: cut in the middle, its end kept).
STEP_NAME_CHARS = 40
#: What draws every run's bar's step once its image turns slow (:attr:`_StepShown.timer`).
_STEP_ALARMS = Alarms()


class ImageNote(str):
    """A note about one image (or one of its ROIs): its text, as ever, with the parts the report
    groups by: 10,000 small images' TMQI notes, alike but for the file, made 20,000 lines of the
    summary (4 MB). ``reason``: the text after the image (and ROI) part, from its ``": "`` (or
    ``" (methods): "``); notes of one ``reason`` (and ROI or not) are one line there, counted.
    ``methods``: the run's methods it concerns (a metric left out on their outputs, how one was read);
    none: it is the image's own (decoding, polarity, its spine), which its grid says too."""

    file: str
    roi: str | None
    reason: str
    methods: tuple[str, ...]

    def __new__(cls, file: str, reason: str, roi: str | None = None, methods: tuple[str, ...] = ()):
        note = super().__new__(cls, f"{file}{'' if roi is None else f', {roi} ROI'}{reason}")
        note.file, note.roi, note.reason, note.methods = file, roi, reason, tuple(methods)
        return note

    def __getnewargs__(self):  # (copied or pickled: made again from its parts, not from its text alone)
        return self.file, self.reason, self.roi, self.methods


def _image_notes(path: str, warnings: list[str]) -> list[str]:
    """An image's warnings (each naming the file first, as ``image_warnings`` words them) as
    :class:`ImageNote`; one that does not start with ``path`` stays as it is (listed whole)."""
    return [ImageNote(path, w[len(path):]) if w.startswith(f"{path}: ") else w for w in warnings]


@dataclass
class EvalRun:
    """What the protocol produced: per-ROI scores, failures, and pictures for the report."""

    methods: list[str]
    metrics: list[str]
    rows: list[dict] = field(default_factory=list)  #: one per (image, roi, method)
    failed: list[tuple[str, str]] = field(default_factory=list)  #: (path, reason)
    notes: list[str] = field(default_factory=list)  #: metrics left out on some ROIs and why; image warnings
    pictures: list[dict] = field(default_factory=list)  #: sampled images: thumbnails and ROI crops
    seconds: dict[str, float] = field(default_factory=dict)  #: per method, and "metrics"
    #: whether "metrics" holds the time earlier runs spent on methods or metrics this run leaves out
    #: (the journal keeps one such sum per image: it cannot be split)
    metrics_seconds_beyond: bool = False
    images: int = 0
    #: how many inputs of each kind (PR, SR, KO, ...) were no image (a DICOM object of a PACS export
    #: that holds none): each said in a note, no failure
    not_images: dict[str, int] = field(default_factory=dict)
    #: per image scored: its original's ``bits`` (bits_stored) and whether ``identity`` scored its
    #: ROIs ``stretched`` (min-max over each ROI) rather than as stored: the report's provenance
    #: and its note on mixed depths. run_protocol gives every image it scored or took from the
    #: journal one (a journal is resumed only by the code that wrote it, which records it); an
    #: EvalRun made by hand may lack them
    originals: dict[str, dict] = field(default_factory=dict)
    #: per image scored, what scored its rows, as journalled with it: torch's CPU ``threads`` and
    #: the ``gpus`` (names) of the methods run on one; lists, as a rerun that adds methods to an
    #: image may run on another machine than the run whose rows it keeps
    ran_on: dict[str, dict] = field(default_factory=dict)
    #: the labels of the methods that are ``identity`` (the original as the metrics see it), as
    #: run_protocol found them from the methods themselves (:func:`method_kind`), whatever their
    #: labels: what the provenance says of the originals' conversion. An EvalRun made by hand names
    #: them, or else its method labelled exactly "identity" is taken as one
    identity: list[str] = field(default_factory=list)
    #: images whose scores (all, or all but those of methods or metrics added) an earlier run made
    from_journal: int = 0
    #: the journal that holds every image's notes in full, where the run kept one (the report,
    #: which counts alike notes in one line, says so)
    journal: str | None = None

    def __post_init__(self):
        """A run built by hand without ``identity`` (the public API) still says how its method
        labelled "identity" converted the originals, as the provenance did for a run of evaluate."""
        if not self.identity:
            self.identity = [name for name in self.methods if name == "identity"]


def _original_as_stored(values: np.ndarray, bits_stored: int) -> bool:
    """Whether :func:`to_8bit_original` takes an original region as stored (an 8-bit source whose
    values are whole numbers in 0..255) rather than min-max over it: the report says which.

    An 8-bit source's values may arrive as floats (pydicom's modality LUT gives float64 whenever
    a rescale is present, even 1/0; a MONOCHROME1 inversion too): whole numbers in 0..255 are
    still the stored values, and are used as such, not stretched."""
    v = np.asarray(values)
    whole = v.dtype.kind in "ui" or (v.dtype.kind == "f" and bool(np.all(v == np.round(v))))
    return bool(bits_stored <= 8 and whole and v.min() >= 0 and v.max() <= 255)


def to_8bit_original(values: np.ndarray, bits_stored: int) -> np.ndarray:
    """An original region as the metrics see it: 8-bit sources as stored, others min-max over the
    region (:func:`_original_as_stored` tells which)."""
    from xvertfast.eval.metrics import to_8bit

    v = np.asarray(values)
    if _original_as_stored(v, bits_stored):
        v = v.astype(np.uint8)
    return to_8bit(v, float_scaling="minmax")


def to_8bit_output(pixels: np.ndarray) -> np.ndarray:
    """A method's float output in [0, 1] as 8 bits: ``round(255 * clip(x, 0, 1))`` (an overshoot is
    the method's to clip). In evaluate, :func:`_as_output` has failed an output on another scale
    (0..255) before; called directly this clips whatever it is given."""
    from xvertfast.eval.metrics import to_8bit

    return to_8bit(np.clip(np.asarray(pixels, dtype=np.float64), 0.0, 1.0), float_scaling="unit")


def score_roi(test8: np.ndarray, reference: np.ndarray, metrics: list[str]) -> tuple[dict[str, float], list[str]]:
    """The chosen metrics of one 8-bit ROI (``reference``: the original's decoded values, for TMQI).

    A metric that cannot be computed on this ROI (e.g. TMQI on a ROI under 161 px, from a small
    image) is NaN, with the reason in the returned notes; the other metrics still count. A score
    a metric's floor set rather than the image (a TMQI with S = 0) keeps its value, and a note
    says so (:func:`~xvertfast.eval.metrics.floor_notes`): it is a score, and counts as one.
    """
    from xvertfast.eval import metrics as m

    table = {"entropy": m.entropy, "tenengrad": m.tenengrad, "lpc_si": m.lpc_si, "brisque": m.brisque,
             "tmqi": lambda t: m.tmqi_scores(reference, t),
             "tmqi_paper_compat": lambda t: m.tmqi_scores(reference, t, paper_scale=True)}  # fmt: skip
    out, notes = {}, []
    for name in metrics:
        if name not in table:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        try:
            scored = table[name](test8)
        except ValueError as exc:
            out[name] = math.nan
            text = str(exc)
            notes.append(text if text.startswith(f"{name}:") else f"{name}: {text}")  # the metric's errors name it
        else:
            parts = scored if isinstance(scored, m.TmqiScores) else None
            out[name] = float(scored.q if parts else scored)
            if math.isnan(out[name]):  # BRISQUE on a flat region, TMQI on a constant reference
                notes.append(f"{name}: undefined on this ROI (NaN), as on a region without contrast")
            else:
                notes += m.floor_notes(name, test8, parts)
    return out, notes


def _thumbnail(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    from PIL import Image

    h, w = pixels.shape
    scale = min(1.0, THUMB_HEIGHT / h)
    img = Image.fromarray(to_8bit_output(pixels))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), THUMB_HEIGHT), Image.Resampling.LANCZOS)
    return np.asarray(img), scale


def _sample(n: int, k: int) -> set[int]:
    """``min(k, n)`` indices spread evenly over ``range(n)``, first and last included."""
    k = min(k, n)
    if k <= 0:
        return set()
    return {round(i * (n - 1) / max(k - 1, 1)) for i in range(k)}


def check_metrics(metrics) -> None:
    """Refuses an unknown metric, or none, or one given twice (scores.csv would have two columns of its name)."""
    unknown = [m for m in metrics if m not in METRICS]
    if not metrics:  # (--metrics "" or ",": said "unknown metric(s) (none given)")
        raise ValueError(f"no metrics to score: choose from {', '.join(METRICS)}")
    if unknown:
        # (repr: a metric that is no name, None or 1, broke a plain join; an empty name, [''] from Python, was
        # said as nothing at all: "unknown metric(s) ; choose from ...")
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(METRICS)}")  # fmt: skip
    twice = sorted({m for m in metrics if list(metrics).count(m) > 1})
    if twice:
        raise ValueError(f"metric(s) given more than once: {', '.join(twice)}")


def run_protocol(inputs: list[str], methods: dict, metrics: list[str], roi_centres: dict | None = None,
                 pictures: int = 6, progress: bool = True, log=print, journal: Journal | None = None,
                 exclude: list[str] = (), files: list[InputFile] | None = None,
                 given: dict[str, GivenCentres] | None = None, unused: list[str] = (),
                 machine: dict | None = None) -> EvalRun:  # fmt: skip
    """Runs ``methods`` (name -> function(pixels, spine) -> pixels) on every input and scores the ROIs.

    A method that reads its output from a file (:class:`~xvertfast.eval.precomputed.PrecomputedOutputs`)
    is found by duck typing: ``needs_source`` true, it is called with ``source=`` (the InputFile),
    ``input_bits=`` and ``original=`` (the input's Radiograph) too, its ``locate(source)`` names the file
    (journalled, so that a replaced one is scored again) and its ``expect(files)`` is given every input first.

    ``pictures``: how many images (evenly spaced through the inputs) keep thumbnails and ROI crops
    of every method for the report's side-by-side grids. ``journal``: images it holds (at the
    centres ``roi_centres`` gives them now) are taken from it, with their pictures (an image
    shown whose picture is missing is run again), those it holds without some methods or
    metrics (added since) are scored for those alone; the others are recorded in it (with
    their centres) as they finish. ``files``: the inputs already discovered (else
    ``inputs`` are searched, leaving out the folders in ``exclude``). ``given``, ``unused``:
    the centres ``roi_centres`` gives ``files`` and its rows naming none of them, where the
    caller matched them already (:func:`~xvertfast.preprocess.centres.centres_of_inputs`).
    ``machine``: what this run scores on, ``threads`` (torch's CPU threads) and ``gpus`` (method
    -> the name of the GPU it runs on), journalled with each image it scores
    (:attr:`EvalRun.ran_on`): a report written from the journal names what scored its rows.
    """
    check_metrics(metrics)
    files = discover(inputs, exclude=exclude) if files is None else files
    for method in methods.values():  # (another tool's outputs: inputs it cannot tell apart fail, each)
        if getattr(method, "needs_source", False) and hasattr(method, "expect"):
            method.expect(files)
    run = EvalRun(list(methods), list(metrics), seconds={name: 0.0 for name in [*methods, "metrics"]})
    run.identity = _identity_labels(methods)  # found from the methods themselves, whatever their labels
    keep_pictures = _sample(len(files), pictures)
    unused = list(unused)  # rows naming no input: noted (a row naming two, or an input twice: ValueError)
    if given is None:
        given = centres_of_inputs(roi_centres, [f.path for f in files], unused) if roi_centres else {}
    if journal is not None:
        for kind, changed in (("methods", journal.methods_changed), ("metrics", journal.metrics_changed)):
            if changed is not None:
                log(_changes_said(kind, *changed, done=len(journal), path=journal.path))
    bar = tqdm(total=len(files), unit="img", desc="evaluate", disable=not progress)
    step = _StepShown(bar, len(files))
    resumed = completed = moved = whole = 0
    # notes said as they come: the first WARNED_LISTED (20,000 lines, a TMQI note a small image's ROI,
    # scrolled the errors away), then that the rest are the report's; how many at the end
    said = 0

    def say(note: str) -> None:
        nonlocal said
        said += 1
        if said <= WARNED_LISTED:
            log(f"note: {note}")
        elif said == WARNED_LISTED + 1:
            # (from Python no report may follow: the run's notes, and the journal, hold them)
            log("note: further notes are not shown as they come: the run's notes keep them (the report's "
                "summary.md)")  # fmt: skip

    grown: set[str] = set()  # what images done before were scored for: "methods", "metrics"
    try:  # closed however the loop ends: a Ctrl-C left the bar to be drawn again after the CLI's last line
        for index, f in enumerate(files):
            others = _other_files(methods, f)
            placed = given[f.path].record() if f.path in given else None  # (an input the file leaves out fails)
            entry = (journal.entry(f.path, others, f.photometric, placed)
                     if journal is not None and (roi_centres is None or placed is not None) else None)  # fmt: skip
            if entry is None and placed is not None and journal is not None and journal.moved(f.path, placed):
                moved += 1  # (said at the end: why an image a rerun would have skipped is scored)
            unscored = journal.unscored(entry, list(metrics)) if entry is not None else {}
            added = journal.missing(entry) if entry is not None else []
            picture = journal.picture(entry) if entry is not None and index in keep_pictures and not added else None
            if entry is not None and not unscored and (index not in keep_pictures or picture is not None):
                if picture is not None:
                    run.pictures.append(picture)
                run.rows.extend(_reported(r, metrics) for name in methods for r in entry["rows"]
                                if r["method"] == name)  # in this run's order  # fmt: skip
                run.notes.extend(_image_notes(f.path, entry["notes"])
                                 + _missing_notes(f.path, entry.get("missing", []), list(methods), metrics))
                for name, seconds in entry["seconds"].items():
                    if name in methods or name == "metrics":  # (a dropped method's time is not this report's)
                        run.seconds[name] = run.seconds.get(name, 0.0) + seconds
                run.metrics_seconds_beyond |= _scored_beyond(entry, methods, metrics)
                if isinstance(entry.get("original"), dict):
                    run.originals[f.path] = entry["original"]
                if isinstance(entry.get("ran_on"), dict):
                    run.ran_on[f.path] = entry["ran_on"]
                run.images += 1
                resumed += 1
                step.done(scored=False)
                continue
            # an image done before methods or metrics were added: those alone (a pictured one whose picture
            # lacks a method added, or is missing, is run whole, for its grid)
            partial = entry if unscored and (index not in keep_pictures or picture is not None) else None
            todo = {name: methods[name] for name in unscored} if partial is not None else methods
            asked = dict(unscored) if partial is not None else {name: list(metrics) for name in methods}
            before = dict(run.seconds)
            try:
                pictured = index in keep_pictures and partial is None
                rows, made, warnings, lacking, original = _evaluate_one(f, todo, asked, roi_centres, given.get(f.path),
                                                                        pictured, run.seconds,
                                                                        step.of(index, f.path))  # fmt: skip
                picture = made if partial is None else picture  # (a partial one's is the picture journalled)
            except FILE_ERRORS as exc:  # the file's fault (or too big for memory), not a bug of ours
                if isinstance(exc, NotAnImage):  # a PACS export's presentation state or report: a note, no failure
                    run.notes.append(f"skipped: {failure_text(f.path, exc)}")
                    run.not_images[exc.kind] = run.not_images.get(exc.kind, 0) + 1
                    say(run.notes[-1])
                else:
                    reason = (f"{failure_text(f.path, exc.error)} (method {exc.method})"
                              if isinstance(exc, _MethodFailed) else failure_text(f.path, exc))  # fmt: skip
                    run.failed.append((f.path, reason))
                    log(f"error: {reason}")
                    # the input's own notes, read before a method failed on it: said of the image dropped too
                    for note in _image_notes(f.path, exc.warnings if isinstance(exc, _MethodFailed) else []):
                        run.notes.append(note)
                        say(note)
                if index in keep_pictures:  # the next image not pictured yet shows instead
                    later = next((k for k in range(index + 1, len(files)) if k not in keep_pictures), None)
                    if later is not None:
                        keep_pictures.add(later)
            else:
                seconds = {k: v - before.get(k, 0.0) for k, v in run.seconds.items()}
                # what the earlier run said of this image already (its warnings too): not said again
                earlier = (_image_notes(f.path, partial["notes"])
                           + _missing_notes(f.path, partial.get("missing", []), list(methods), metrics)
                           if partial is not None else [])  # fmt: skip
                if partial is not None:  # the kept scores and seconds with the added ones'
                    rows = _merged(partial["rows"], rows, list(methods))
                    kept_notes = partial.get("missing", [])  # (a method run again for metrics added: its notes once)
                    lacking = [*kept_notes, *(m for m in lacking if m not in kept_notes)]
                    grown.update("methods" if name in added else "metrics" for name in unscored)
                    for name, spent in partial["seconds"].items():
                        if name in methods or name == "metrics":
                            if name in todo and name not in added:  # run again only for the metrics added:
                                run.seconds[name] -= seconds.pop(name, 0.0)  # its time as one run takes it
                            seconds[name] = seconds.get(name, 0.0) + spent
                            run.seconds[name] = run.seconds.get(name, 0.0) + spent
                    run.metrics_seconds_beyond |= _scored_beyond(partial, methods, metrics)
                    completed += 1
                notes = _image_notes(f.path, warnings) + _missing_notes(f.path, lacking, list(methods), metrics)
                kept = [r for r in entry["rows"] if r["method"] not in methods] if entry is not None else []
                # an earlier run's rows kept (the methods not run again, or dropped since): what scored them too
                ran_on = _image_ran_on(machine, todo, entry if partial is not None or kept else None)
                if journal is not None:  # recorded first: rows read back later are the ones reported now
                    # (with the rows of methods dropped since, kept for a rerun that gives them again)
                    lacking = [*lacking, *(m for m in entry.get("missing", []) if m not in lacking)] if entry else lacking
                    rows = [r for r in journal.record(f.path, rows + kept, warnings, seconds, others, picture,
                                                      f.photometric, missing=lacking, centres=placed, original=original,
                                                      ran_on=ran_on)
                            if r["method"] in methods]  # fmt: skip
                if entry is not None and partial is None:  # done before, pictured: run whole for its picture
                    whole += 1
                run.rows.extend(_reported(r, metrics) for r in rows)
                run.originals[f.path] = original
                if ran_on is not None:
                    run.ran_on[f.path] = ran_on
                run.images += 1
                for note in notes:
                    run.notes.append(note)
                    if note not in earlier:
                        say(note)
                if picture:
                    run.pictures.append(picture)
            step.done()
    finally:
        step.close()
        bar.close()
    if unused:
        run.notes.append(f"{len(unused)} row(s) of the ROI file name no input: {', '.join(sorted(unused)[:5])}"
                         + (", ..." if len(unused) > 5 else ""))  # fmt: skip
    run.from_journal = resumed + completed
    depths = _stretched_originals_note(run)
    if depths:  # (not logged: the command prints the summary's notes, this one first, once the report is made)
        run.notes.insert(0, depths)  # before the images' own notes: it concerns a whole row of the tables
    if resumed:
        log(f"resumed: {_scored_before(resumed)} taken from {journal.path}")
    if moved:
        log(f"{_scored_before(moved)} scored again: {'its' if moved == 1 else 'their'} centres in the ROI file "
            "changed")  # fmt: skip
    if completed:
        what = " and ".join(k for k in ("methods", "metrics") if k in grown)
        log(f"{_scored_before(completed)} scored for the {what} added alone")
    if whole:
        pictures = "its picture" if whole == 1 else "their pictures"
        log(f"{_scored_before(whole)} run again with every method, for {pictures} in the report")
    if said > WARNED_LISTED:
        log(f"{count(said - WARNED_LISTED, 'further note')} not shown as they came: the run's notes keep them (the "
            "report's summary.md)")  # fmt: skip
    run.journal = journal.path if journal is not None else None
    return run


class _StepShown:
    """The bar's word on the image being scored and its step (reading it, a method, the method's
    scores): the bar counts images done, and stood at 0/N for the minutes a CPU takes over the
    first of large images with farbman and xvertnet, as if nothing ran. Drawn for the first image,
    after any that took :data:`STEP_SLOW_S` or more, and where the image being scored takes that
    long (the first full-size radiograph after small ones): then as the image turns slow, the step
    running drawn by a timer (drawn at the next step's start, a 5-minute farbman showed nothing
    of itself), and each step after as it starts. A quick image's are not (a job of 10,000 small
    images, its stderr piped to a file, would write a line a step: there the count moves); cleared
    as each is done."""

    #: What draws the step running once its image has taken :data:`STEP_SLOW_S`: called as
    #: ``timer(seconds, draw)``, then started, cancelled where the image is done first: the process's
    #: one alarm thread (threading.Timer, a thread an image, took 8 s of a 10,000-image run); a
    #: test's fake fires it when it likes, without waiting
    timer = _STEP_ALARMS

    def __init__(self, bar, total: int):
        self.bar, self.total = bar, total
        self.since, self.slow = time.monotonic(), True
        self._armed = None  # the timer of the image being scored, where one is set

    def of(self, index: int, path: str):
        """What :func:`_evaluate_one` calls with each step's words, for the image at ``index``."""
        # (the end kept: a name's numbers and extension tell images apart)
        name = middle_cut(path.replace("\\", "/").rsplit("/", 1)[-1], STEP_NAME_CHARS)

        def shown(what: str) -> None:
            taken = time.monotonic() - self.since
            refresh = self.slow or taken >= STEP_SLOW_S
            self.bar.set_postfix_str(f"image {index + 1}/{self.total} {name}: {what}", refresh=refresh)
            if not refresh and self._armed is None and not self.bar.disable:  # (one a quick image, cancelled)
                self._armed = self.timer(STEP_SLOW_S - taken, self.bar.refresh)
                self._armed.start()

        return shown

    def _disarm(self) -> None:
        """The timer cancelled, and waited for where it is drawing already: a draw under way ended
        after the image's count moved, or after close() and the run's last line (an Alarm's cancel
        waits for it)."""
        if self._armed is not None:
            armed, self._armed = self._armed, None
            armed.cancel()

    def done(self, scored: bool = True) -> None:
        """One image more done (``scored``: not taken from the journal, whose are no measure of
        the time an image takes): the count moves, the step said of it goes."""
        self._disarm()
        now = time.monotonic()
        self.slow = now - self.since >= STEP_SLOW_S if scored else self.slow
        self.since = now
        self.bar.set_postfix_str("", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """The run is over, however it ended (an image that failed, a Ctrl-C): no step drawn after."""
        self._disarm()


def _image_ran_on(machine: dict | None, scored, earlier: dict | None) -> dict | None:
    """What scored an image's rows (:attr:`EvalRun.ran_on`): this run's threads and the GPUs of
    the methods it ``scored`` there, with what ``earlier`` (the journal entry whose rows it keeps)
    records. None where neither says anything (run_protocol called without ``machine``)."""
    before = earlier.get("ran_on") if earlier is not None and isinstance(earlier.get("ran_on"), dict) else {}
    threads, gpus = set(before.get("threads") or []), set(before.get("gpus") or [])
    if machine is not None:
        if machine.get("threads"):
            threads.add(machine["threads"])
        gpus.update(machine.get("gpus", {})[name] for name in scored if name in machine.get("gpus", {}))
    if machine is None and not before:
        return None
    return {"threads": sorted(threads), "gpus": sorted(gpus)}


# (depth_counts and depths_said: not exported, shared with the provenance, which words the depths as the note does)
def depth_counts(originals) -> dict[int, int]:
    """How many of ``originals`` (:attr:`EvalRun.originals`' values) have each recorded bit depth,
    deepest first; one without a recorded depth is not counted."""
    counted: dict[int, int] = {}
    for original in originals:
        if isinstance(original, dict) and isinstance(original.get("bits"), int):
            counted[original["bits"]] = counted.get(original["bits"], 0) + 1
    return dict(sorted(counted.items(), reverse=True))


def depths_said(counts: dict) -> str:
    """:func:`depth_counts`' counts (or provenance.json's, the depths as strings) as the report's
    note and its provenance block word them: "16-bit: 2, 12-bit: 1"."""
    return ", ".join(f"{bits}-bit: {n}" for bits, n in counts.items())


def _stretched_originals_note(run: EvalRun) -> str | None:
    """The report's note where ``identity`` scored some originals min-max stretched over each ROI
    (deeper than 8 bits, or float) rather than as stored (8-bit): its row is then no longer the
    one the same images saved at 8 bits give, and an archive of both depths mixes the two. None
    where identity is not evaluated or every original was taken as stored."""
    labels = run.identity  # run_protocol's, found from the methods
    known = [o for o in run.originals.values() if isinstance(o, dict) and isinstance(o.get("bits"), int)]
    stretched = [o for o in known if o.get("stretched")]
    if not labels or not stretched:
        return None
    who = " and ".join(labels)
    how = "min-max stretched to 0..255 over each ROI (a per-ROI auto-window) rather than as stored"
    # what it means and what to do, said here: a pip install has no docs/ to be sent to
    meaning = ("the other methods' scores do not move with it, their outputs taken to 8 bits as round(255 x); "
               "for an identity row comparable across images and runs, evaluate originals of one depth")  # fmt: skip
    # (of the images whose depth is recorded: an EvalRun made by hand may not hold every image's)
    originals = "originals" if len(known) == run.images else "originals whose depth is known"
    deep = depths_said(depth_counts(stretched))
    if len(stretched) == len(known):
        every = "every original" if len(known) == run.images else f"every one of the {len(known)} {originals}"
        return (f"{who}: {every} ({deep}) is deeper than 8 bits or not stored as 8-bit integers, so {who} scored "
                f"its ROIs {how}: not the scores the same images saved at 8 bits give ({meaning})")  # fmt: skip
    as_stored = depths_said(depth_counts(o for o in known if not o.get("stretched")))
    return (f"{who}: {len(stretched)} of the {len(known)} {originals} ({deep}) "
            f"{'was' if len(stretched) == 1 else 'were'} scored {how}, the other {len(known) - len(stretched)} "
            f"({as_stored}) as stored: {who}'s row mixes two conversions to 8 bits ({meaning})")  # fmt: skip


class _MethodFailed(PickledAsRaised, RuntimeError):
    """One method failed on an image: the image fails, and the reason names the method (with five
    methods, "out of memory" alone did not say whether XVertNet or Farbman's solves ran out).
    ``warnings``: the image's own (as :func:`image_warnings` words them), found before the method
    ran: the report still says them of the image it drops (a MONOCHROME1 one read inverted)."""

    def __init__(self, method: str, error: BaseException, warnings: list[str] = ()):
        super().__init__(str(error))
        self.method, self.error, self.warnings = method, error, list(warnings)


def _as_output(out, shape: tuple[int, ...]) -> tuple[np.ndarray | None, str | None]:
    """A method's output as an array, and what is wrong with it (None where nothing): a plain
    Python method's None, wrong shape or NaN failed the run or the image without saying which,
    and its integers (0..255) were clipped to [0, 1] and scored as a near-white image. Integers
    and bools within [0, 1] (a mask, p > 0.5) are taken as floats. Where numpy cannot read it (a
    tensor requiring grad, or on a GPU), its reason is said."""
    from xvertfast.eval.metrics import off_the_unit_scale

    wanted = f"a method returns the enhanced image, an array of the input's shape {shape} with values in [0, 1]"
    try:
        values = None if out is None else np.asarray(out)
    except (TypeError, ValueError, RuntimeError) as exc:  # (a tensor on a GPU or requiring grad, a ragged list)
        return None, f"is {type(out).__name__}, which numpy cannot read as an array ({exc}): {wanted}"
    if values is not None and hasattr(out, "dtype") and values.dtype.kind not in "biuf":  # (complex numbers)
        what = "an array" if isinstance(out, np.ndarray) else type(out).__name__
        return None, f"is {what} of {values.dtype}, not of real numbers: {wanted}"
    if values is None or values.dtype.kind not in "biuf":
        return None, f"is {type(out).__name__}, not an image: {wanted}"
    if values.shape != shape:
        return None, f"has shape {values.shape}, not the input's {shape}"
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        return None, f"holds {count(bad, 'non-finite value')} (NaN or infinity) of {values.size}"
    lo, hi = (values.min(), values.max()) if values.size else (0, 0)
    if values.dtype.kind != "f":  # (scored as [0, 1] floats: 8-bit values would be clipped to 0 and 1)
        if off_the_unit_scale(lo, hi):
            return None, (f"holds integers from {lo:d} to {hi:d}, outside [0, 1]: a method returns floats in [0, 1] "
                          "(8-bit values divided by 255)")  # fmt: skip
        return values.astype(np.float32), None  # (0 and 1: a mask, scored as black and white)
    if off_the_unit_scale(lo, hi):  # an overshoot is clipped; this is another scale
        return None, (f"holds values from {lo:g} to {hi:g}, far outside [0, 1] (clipped to it, the image would "
                      "score as almost black and white): a method returns floats in [0, 1]")  # fmt: skip
    return values, None


def method_kind(method, label: str) -> str:
    """What a method is (``identity``, ``outputs``, ...) whatever label the run gives it."""
    return getattr(method, "kind", label)


def _identity_labels(methods: dict) -> list[str]:
    """The labels of ``methods`` (label -> callable) that are identity, whatever the label."""
    return [label for label, method in methods.items() if method_kind(method, label) == "identity"]


def _other_files(methods: dict, source: InputFile) -> list[str] | None:
    """The files besides the input that its scores depend on (another tool's outputs), or
    None when one cannot be found (the image is then evaluated, and fails with the reason)."""
    try:
        return [m.locate(source) for m in methods.values() if getattr(m, "needs_source", False)]
    except (ImageReadError, OSError):
        return None


def _scored_before(n: int) -> str:
    """``n`` images "scored by an earlier run was/were", as a rerun's log lines begin: "1 image(s) ... were"
    read as a form, not as a sentence."""
    return f"{count(n, 'image')} scored by an earlier run {'was' if n == 1 else 'were'}"


def _changes_said(kind: str, added: list, dropped: list, back: list, done: int, path: str) -> str:
    """The log line of a rerun whose ``kind`` ("methods", "metrics") changed since the journal
    at ``path`` began: those added, given back and dropped."""
    parts = [f"{', '.join(added)} added, scored on the {count(done, 'image')} done" if added else "",
             f"{', '.join(back)} back, with the scores kept when dropped" if back else "",
             f"{', '.join(dropped)} dropped (its scores stay in the journal, for a rerun that gives it again)"
             if dropped else ""]  # fmt: skip
    if not any(parts):
        return f"the {kind} are in another order: their scores are kept"
    said = "; ".join(p for p in parts if p)
    return f"the {kind} changed since {path} began: {said}; the other {kind}' scores are kept"


#: What a row holds besides its metrics' scores.
_PLACE = ("file", "roi", "method", "top", "left", "height", "width")


def _reported(row: dict, metrics) -> dict:
    """A row as this run reports it: its place and the ``metrics`` asked, in their order (a
    journalled row may also hold the scores of metrics dropped since)."""
    return {**{k: row[k] for k in _PLACE if k in row}, **{m: row[m] for m in metrics if m in row}}


def _scored_beyond(entry: dict, methods, metrics) -> bool:
    """Whether a journalled image holds scores of methods or metrics this run leaves out: its
    "metrics" time, one sum, then counts theirs too."""
    return any(row["method"] not in methods or any(k not in _PLACE and k not in metrics for k in row)
               for row in entry["rows"])  # fmt: skip


def _merged(kept: list[dict], scored: list[dict], methods: list[str]) -> list[dict]:
    """An image's rows of ``methods``, in their order: those ``kept`` from the journal with the
    scores of ``scored`` (the methods or metrics added since) joined to them by method and ROI."""
    new = {(r["method"], r["roi"]): r for r in scored}
    rows = []
    for name in methods:
        old = [r for r in kept if r["method"] == name]
        rows += [{**r, **new.get((name, r["roi"]), {})} for r in old] or [r for r in scored if r["method"] == name]
    return rows


def _missing_notes(path: str, missing: list, methods: list[str], metrics) -> list[str]:
    """The notes of metrics left out on an image's ROIs, or set there by a floor (``missing``:
    [roi, why, methods] as :func:`_evaluate_one` finds them, maybe from several runs of some
    methods or metrics each): one per ROI and reason of the ``metrics`` asked, by ROI and metric
    (whichever run found them), naming the run's methods it concerns unless it concerns all of them.
    Those of ROI None come first: what a method reading its output from a file said of how it read
    it (a colour output's luminance), each naming the method."""
    merged: dict[tuple[str | None, str], set[str]] = {}
    for roi, why, names in missing:
        merged.setdefault((roi, why), set()).update(names)
    order = {m: k for k, m in enumerate(metrics)}  # each reason starts with its metric's name (score_roi)
    asked = [(roi, why) for roi, why in merged if roi is None or why.split(":", 1)[0] in order]
    asked.sort(key=lambda key: (-1, 0) if key[0] is None else (
        ROI_NAMES.index(key[0]) if key[0] in ROI_NAMES else len(ROI_NAMES),
        order[key[1].split(":", 1)[0]]))  # fmt: skip
    notes = []
    for roi, why in asked:
        names = merged[(roi, why)]
        named = [m for m in methods if m in names]
        if named:
            who = "" if len(named) == len(methods) and roi is not None else f" ({', '.join(named)})"
            notes.append(ImageNote(path, f"{who}: {why}", roi, named))
    return notes


def _rois_of_an_inverted_image(rad, given: GivenCentres | None, warnings: list[str]) -> list[str]:
    """The note, beside "looks inverted", that an image's ROIs were placed by the spine search (the
    bright band near the centre line), which in an image that looks inverted finds another band: a
    MONOCHROME1 radiograph stored as a PNG (cxr-dev's gdcm-barre) was scored on a lung field and the
    heart's border, its rows counted with the others' spine ROIs, the report saying only how to read
    it upright. None where its centres were given, or ``warnings`` (:func:`image_warnings`') have no
    "looks inverted": an image with too little contrast to find the spine by has its ROIs on the
    centre column, said so, and no note on its polarity to point to."""
    if given is not None or not any(w.startswith(f"{rad.path}: looks inverted") for w in warnings):
        return []
    give = batch_fixes().give
    return [f"{rad.path}: its ROIs were placed by the spine search, which looks for a bright band, on an image that "
            f"looks inverted: they may lie off the spine, its scores then those of another region; read it upright "
            f"(the note on its polarity) or {give}"]  # fmt: skip


def _evaluate_one(source: InputFile, methods: dict, metrics: dict[str, list[str]], roi_centres: dict | None,
                  given: GivenCentres | None, keep_picture: bool, seconds: dict, step=lambda what: None
                  ) -> tuple[list[dict], dict | None, list[str], list, dict]:  # fmt: skip
    """One image's rows, picture, warnings, the metrics left out on its ROIs or set there by a
    floor ([roi, why, methods], for :func:`_missing_notes`; roi None: what a method reading its
    output from a file noted of reading it) under ``methods``, each scored on its
    ``metrics``, and its original's depth and 8-bit conversion (:attr:`EvalRun.originals`).
    ``step`` is told each step as it starts (the progress bar's words)."""
    path = source.path
    step("reading, finding the spine")
    rad = require_content(read_input(source, warn=False))
    if roi_centres is not None and given is None:
        where = getattr(roi_centres, "path", None)  # a plain dict from Python names no file
        raise ImageReadError(path, f"no ROI centres for this file in the ROI file {where} (its file column names an "
                             "input's path or file name)" if where else "no ROI centres given for this file")  # fmt: skip
    try:
        spine: Spine = spine_at(rad.pixels, given)
    except ValueError as exc:  # a given centre outside the image: said naming the CSV's line, as enhance says it
        raise ImageReadError(path, str(exc)) from None
    boxes: list[Box] = spine.eval_rois()
    originals = [rad.values[b.top : b.bottom, b.left : b.right] for b in boxes]
    depth = {"bits": int(rad.bits_stored),
             "stretched": not all(_original_as_stored(o, rad.bits_stored) for o in originals)}  # fmt: skip
    rows, picture, warnings = [], None, image_warnings(rad, spine)
    warnings += _rois_of_an_inverted_image(rad, given, warnings)
    missing: dict[tuple[str, str], list[str]] = {}  # (roi, why a metric is NaN or floored) -> the methods
    if keep_picture:
        picture = {"file": path, "boxes": [tuple(b) for b in boxes], "thumbs": {}, "crops": {}, "scale": 1.0}
    for name, method in methods.items():
        t0 = time.perf_counter()
        kind = method_kind(method, name)
        said: list[str] = []  # what a method reading its output from a file says of how it read it
        step(name)
        try:
            if kind == "identity":
                out = rad.pixels
            elif getattr(method, "needs_source", False):
                out = method(rad.pixels, spine, source=source, input_bits=rad.bits_stored, original=rad, notes=said)
            else:
                out = method(rad.pixels, spine)
        except FILE_ERRORS as exc:
            raise _MethodFailed(name, exc, warnings) from exc
        for text in said:  # (with the metrics' notes: journalled by method, reported for the methods shown)
            missing.setdefault((None, text), []).append(name)
        seconds[name] += time.perf_counter() - t0
        out, wrong = _as_output(out, rad.shape)
        if wrong is not None:  # (the image fails, its warnings kept; None or a list stopped the run)
            raise _MethodFailed(name, ValueError(f"the method's output {wrong}"), warnings)
        t0 = time.perf_counter()
        step(f"{name}, scoring its ROIs")
        for roi, box, original in zip(ROI_NAMES, boxes, originals):
            test8 = (to_8bit_original(original, rad.bits_stored) if kind == "identity"
                     else to_8bit_output(out[box.top : box.bottom, box.left : box.right]))  # fmt: skip
            scores, why = score_roi(test8, original, metrics[name])
            for w in why:
                missing.setdefault((roi, w), []).append(name)
            rows.append({"file": path, "roi": roi, "method": name, "top": box.top, "left": box.left,
                         "height": box.bottom - box.top, "width": box.right - box.left, **scores})  # fmt: skip
            if picture is not None and roi == "upper":
                picture["crops"][name] = test8
        seconds["metrics"] += time.perf_counter() - t0
        if picture is not None:
            picture["thumbs"][name], picture["scale"] = _thumbnail(out)
    if picture is not None and not _identity_labels(methods):
        # the grid's first column: without it, clahe beside xvertnet showed no original to judge them by
        picture["thumbs"][ORIGINAL_PICTURE] = _thumbnail(rad.pixels)[0]
        picture["crops"][ORIGINAL_PICTURE] = to_8bit_original(originals[0], rad.bits_stored)
    return rows, picture, warnings, [[roi, why, names] for (roi, why), names in missing.items()], depth

