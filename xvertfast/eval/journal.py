"""The finished images of an evaluation, kept in its report folder so that a rerun resumes.

Scoring an archive takes hours (TMQI, LPC-SI and BRISQUE on every ROI of every method), so
each image's scores are appended to ``REPORT_DIR/.xvertfast-evaluate.jsonl`` as soon as it
is done, one JSON line an image, flushed to disk. A rerun with the same settings takes those
images from the journal (while the file's size and modification time, and those of any other
tool's outputs scored with it, are unchanged) and
scores only the rest; a rerun with other settings is refused unless it restarts. The centres
of ``--rois FILE`` are not a setting (whether they are given, ``file``, or found, ``auto``, is):
each image's entry records those it was scored at, and an image whose row was edited is scored
again, the others kept. (Journals written before recorded the whole file's centres in their
settings; they are read as ``file`` with each image given the centres that list gave it.) Only the
methods and the metrics may change (a score depends on its method and metric alone): a method
or metric added (a new model beside the baselines, BRISQUE beside the others) is scored on the
images done, the scores there are kept, and a method or metric dropped leaves the report but not
the journal (a method's settings are kept as ``retired`` on the first line, and its rows, or a
metric's values in them, with each image, so a rerun that gives it again takes them; the same
label for another method is refused).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

from xvertfast._pickled_errors import said_alone
from xvertfast._text import asked, count, from_cli
from xvertfast._version import DECODERS, library_of
from xvertfast.eval._report_files import _failed_on
from xvertfast.io.files import file_state
from xvertfast.io.read import sniff_format
from xvertfast.io.write import atomic_write, link_to_nowhere, remove_stale_parts, resumed_by
from xvertfast.preprocess.centres import centres_of_inputs
from xvertfast.resume import ends_with_newline, hold_lock, settings_changes

__all__ = ["Journal", "JOURNAL_FILE", "PICTURES_DIR", "LOCK_FILE"]

JOURNAL_FILE = ".xvertfast-evaluate.jsonl"
#: Held (flock) while an evaluation writes into the folder: a second one is refused.
LOCK_FILE = ".xvertfast-evaluate.lock"
#: Beside the journal: the thumbnails and ROI crops of the images the report shows.
PICTURES_DIR = ".xvertfast-evaluate-pictures"


def _report_folder() -> str:
    """The report folder as the caller named it: the CLI's REPORT_DIR, evaluate's ``out_dir``
    from Python (whose refusals said "pass --restart ... or use a new REPORT_DIR", the CLI's words)."""
    return "REPORT_DIR" if from_cli() else "out_dir"


def _scalar(value):
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    raise TypeError(f"cannot record {type(value).__name__} in the evaluation journal")


def _dumps(value) -> str:
    return json.dumps(value, default=_scalar)


def _plain(value):
    """``value`` as JSON gives it back (tuples become lists, NumPy scalars Python ones)."""
    return json.loads(_dumps(value))


def _label(method) -> str:
    """The name a method's rows carry: its settings' ``label``, or the method as given."""
    return str(method["label"]) if isinstance(method, dict) and "label" in method else str(method)


def _without(settings: dict, *keys: str) -> dict:
    return {k: v for k, v in settings.items() if k not in keys}


def _labels_keep_their_methods(previous: dict, retired: list, now: dict) -> bool:
    """Whether every label scored before (or dropped since: ``retired``) names the same method
    now (another model, device or precision under one label would mix two methods in one
    report's rows)."""
    if not isinstance(previous.get("methods"), list) or not isinstance(now.get("methods"), list):
        return False
    before = {_label(m): m for m in [*retired, *previous["methods"]]}
    return all(before.get(_label(m), m) == m for m in now["methods"])


#: The settings a rerun may change (the methods, the metrics) or that are judged apart (the libraries).
_APART = ("methods", "metrics", "libraries")


def _methods_alone_differ(previous, retired: list, now: dict) -> bool:
    """Whether two settings differ only in methods and metrics added or dropped, each label
    keeping its method (and in libraries installed or removed since: :func:`_moved`
    says whether they differ otherwise)."""
    return (isinstance(previous, dict) and isinstance(now.get("metrics", []), list)
            and _without(previous, *_APART) == _without(now, *_APART)
            and _labels_keep_their_methods(previous, retired, now))  # fmt: skip


def _libraries(settings) -> dict:
    """The library versions ``settings`` record (:func:`~xvertfast._version.library_versions`); {}
    where none are (a journal begun before they were recorded, or damaged)."""
    libraries = settings.get("libraries") if isinstance(settings, dict) else None
    return libraries if isinstance(libraries, dict) else {}


def _recorded(before: dict, name: str) -> tuple[str, str] | None:
    """The (distribution, version) that ``before`` (recorded libraries) holds of ``name``'s library:
    ``name``'s own, else another build's of it (onnxruntime for onnxruntime-gpu:
    :func:`~xvertfast._version.library_of`); None where neither is recorded installed."""
    if before.get(name) is not None:
        return name, before[name]
    library = library_of(name)
    return next(((other, version) for other, version in before.items()
                 if other != name and version is not None and library_of(other) == library), None)  # fmt: skip


def _moved(previous, now: dict) -> list[str]:
    """The libraries that compute the scores installed now (by the names ``now`` records them under)
    at another version than the one recorded (scikit-image's CLAHE, scipy's filters may score
    otherwise), or as another build of it (onnxruntime-gpu for onnxruntime: another execution
    provider may run on a GPU, whatever the versions). One installed or removed since is not: an image that
    failed for want of it (pydicom, imagecodecs, as its error said to install) is scored once it is
    there, the others were read without it."""
    before, after = _libraries(previous), _libraries(now)
    return [name for name in after
            if (was := _recorded(before, name)) is not None and after[name] is not None
            and was != (name, after[name])]  # fmt: skip


#: Every library of :data:`~xvertfast._version.DECODERS`: the others (numpy, scipy, scikit-image,
#: torch) compute every score.
_DECODING = frozenset(name for names in DECODERS.values() for name in names)


def _decoders_of(entries) -> set[str]:
    """The decoders the recorded ``entries``' files (their images, other tools' outputs) are read
    with, by each file's format now: a pydicom upgrade (``pip install 'xvertfast[dicom-codecs]'``)
    cannot move the scores of PNG images. A file whose format cannot be told (gone, unreadable)
    counts every decoder."""
    read: set[str] = set()
    for entry in entries:
        others = entry.get("others")
        for path in [entry["file"], *(others if isinstance(others, dict) else [])]:
            read.update(DECODERS.get(sniff_format(path), _DECODING))
            if read >= _DECODING:
                return read
    return read


def _library_versions_kept(previous: dict, now: dict) -> dict:
    """``now``'s library versions, with the recorded one of each library not installed now: the
    images scored before were scored with it, and a later run with another version of it is refused."""
    before, after = _libraries(previous), _libraries(now)
    return {**before, **{name: version if version is not None else before.get(name) for name, version in after.items()}}


#: The settings that record xvertfast's code (its version, the digest of its files), each with
#: the name a refusal gives it.
_CODE = {"xvertfast": "version", "code_sha256": "code_sha256"}


def _code_change(previous: dict, now: dict) -> str | None:
    """A change of xvertfast's code in words, the values after them (short: for whoever debugs
    it); None where the code is the same. The digest alone told a user nothing."""
    if previous.get("code_sha256") == now.get("code_sha256"):
        return None  # (the digest covers the version: another version is another digest)
    values = [f"{name} {previous.get(key)!r} -> {now.get(key)!r}" for key, name in _CODE.items()
              if previous.get(key) != now.get(key)]  # fmt: skip
    return ("xvertfast's code changed since these scores were made (an upgrade, or an edit of its code that can "
            f"change a score): {', '.join(values)}")  # fmt: skip


def _changes(previous: dict, retired: list, now: dict) -> tuple[str | None, str]:
    """The changes that refuse a rerun: that of the code (:func:`_code_change`) and the others'
    words ("" where none). Methods or metrics added or dropped are not among them (they may
    change alone), a label that names another method is."""
    previous, now = _without(previous, "metrics"), _without(now, "metrics")
    if _labels_keep_their_methods(previous, retired, now):
        previous, now = _without(previous, "methods"), _without(now, "methods")
    code = _code_change(previous, now)
    if code is not None:  # (said in words, not as the settings' values)
        previous, now = _without(previous, *_CODE), _without(now, *_CODE)
    return code, settings_changes(previous, now)


def _refusal(previous, retired: list, now: dict, moved: list[str]) -> tuple[str, str]:
    """The changes that refuse a rerun (:func:`_changes`), a change of the code first, in words;
    and the refusal's way to resume, where there is one: the recorded settings (a code is none of
    them), and the xvertfast that made the scores where its code changed; none where the
    settings recorded cannot be read. ``moved``: the libraries whose versions refuse it (:func:`_moved`)."""
    if not isinstance(previous, dict):
        return settings_changes(previous, now), ""
    code, rest = _changes(_without(previous, "libraries"), retired, _without(now, "libraries"))
    if code is None and not moved:
        return rest, "run with the recorded settings to resume, "
    before, after = _libraries(previous), _libraries(now)
    recorded = {name: _recorded(before, name) for name in moved}
    versions = {was: str(version) for was, version in recorded.values()}  # (the versions recorded: the pip command's)
    switched = [name for name, (was, _) in recorded.items() if was != name]
    how = "upgraded, downgraded or replaced by another build" if switched else "upgraded or downgraded"
    libraries = (f"libraries that compute the scores were {how} since these scores were made: "
                 + ", ".join(f"{was} {version!r} -> {'' if was == name else name + ' '}{after[name]!r}"
                             for name, (was, version) in recorded.items())) if moved else None  # fmt: skip
    said = ", ".join(f"{name} {version}" for name, version in versions.items())
    made = " and ".join(part for part in ("the xvertfast" if code else "", said) if part)
    also = " and run with the recorded settings" if rest else ""
    return ("; ".join(c for c in (code, libraries, rest) if c),
            f"reinstall {made} that made them{_installs(versions, switched)}{also} to resume, ")


def _installs(versions: dict[str, str], switched: list[str] = ()) -> str:
    """The pip command that puts back the recorded ``versions`` of libraries, in brackets: " (pip
    install 'scikit-image==0.24.0')"; a local version (torch's 2.5.1+cpu) is a build from its
    maker's own index, which pip must be given. ``switched``: the builds installed in place of a
    recorded one (onnxruntime-gpu for onnxruntime), uninstalled first: both install one module."""
    if not versions:
        return ""
    pins = " ".join(f"'{name}=={version}'" for name, version in versions.items())
    local = [f"{name} {version}" for name, version in versions.items() if "+" in version]
    index = f", with --index-url of the index that gave {' and '.join(local)}" if local else ""
    first = f"pip uninstall {' '.join(switched)}, then " if switched else ""
    return f" ({first}pip install {pins}{index})"


def _centres_listed(rois: list, files: list[str]) -> dict[str, list[float]]:
    """The centres (as an entry records them) that an old journal's ``rois`` setting, the whole
    ROI file's ``[name, [upper, lower]]`` rows, gave each of ``files``; an image it cannot tell
    (a list unreadable) gets none, and is scored again."""
    try:
        rows = {str(name): (tuple(map(float, upper)), tuple(map(float, lower))) for name, (upper, lower) in rois}
        return {path: given.record() for path, given in centres_of_inputs(rows, files, unused=[]).items()}
    except (ValueError, TypeError):
        return {}


def _names(value) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _unusable(exc: OSError, out_dir: str) -> OSError:
    """``exc``, raised making, locking, reading or starting the journal in ``out_dir`` (a
    read-only disk, a full one), as an error naming the folder and the file: the bare
    "[Errno 30] Read-only file system: 'r/.xvertfast-evaluate.lock'" said nothing of the report.
    A folder through a link to one not made yet (-o latest) is said so, not as "File exists"."""
    why = link_to_nowhere(out_dir) or _failed_on(exc, out_dir)
    return said_alone(None, exc.errno, f"{out_dir}: the evaluation's journal cannot be kept there ({why}); no image "
                                       "was scored")  # fmt: skip


class Journal:
    """Finished images of one evaluation: ``entry(path)`` gives a recorded image's rows, notes
    and seconds, ``record`` appends one. The first line holds the settings."""

    def __init__(self, out_dir: str, settings: dict, restart: bool = False):
        self.path = os.path.join(out_dir, JOURNAL_FILE)
        self.settings = _plain(settings)
        self._done: dict[str, dict] = {}
        #: (methods added, dropped, and given again after they were dropped) where the recorded
        #: settings differed in their methods alone
        self.methods_changed: tuple[list[str], list[str], list[str]] | None = None
        #: (metrics added, dropped, and given again with scores kept since they were dropped)
        #: where the recorded settings differed in their metrics
        self.metrics_changed: tuple[list[str], list[str], list[str]] | None = None
        self.retired: list = []  #: the settings of methods dropped since the journal began
        try:
            os.makedirs(out_dir, exist_ok=True)
            self._lock = hold_lock(os.path.join(out_dir, LOCK_FILE))  # before the journal is read or replaced
        except OSError as exc:
            raise _unusable(exc, out_dir) from exc
        if self._lock is None:
            raise ValueError(f"another xvertfast evaluate is writing into {out_dir} (it holds "
                             f"{os.path.join(out_dir, LOCK_FILE)}); wait for it, or use another {_report_folder()}")  # fmt: skip
        try:
            remove_stale_parts([self.path])  # a rewrite a kill cut short (no other evaluation writes here: the lock)
            if os.path.exists(self.path) and not restart:
                self._read()
            else:
                with atomic_write(self.path) as tmp, open(tmp, "w") as f:  # never a journal without its settings
                    f.write(_dumps({"settings": self.settings}) + "\n")
            self._file = open(self.path, "a")
            if self._file.tell() and not ends_with_newline(self.path):
                self._file.write("\n")  # after a line a kill cut short: the next entry starts afresh
        except BaseException as exc:
            self._lock.close()
            if isinstance(exc, OSError):
                raise _unusable(exc, out_dir) from exc
            raise

    def _read(self) -> None:
        # written as ASCII (JSON escapes the rest): bytes that are not text are damage, that line's image scored again
        with open(self.path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        try:
            first = json.loads(lines[0])
            previous, retired = first.get("settings"), first.get("retired", [])
        except (ValueError, AttributeError):
            previous, retired = None, []
        retired = retired if isinstance(retired, list) else []
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except ValueError:  # an empty line, or the last one cut short by a kill
                continue
            if isinstance(entry, dict) and isinstance(entry.get("file"), str):  # else damaged: scored again
                self._done[entry["file"]] = entry
        moved = _moved(previous, self.settings)
        if set(moved) & _DECODING:  # only a decoder of the images' formats (a file's first bytes: one read each)
            read = _decoders_of(self._done.values())
            moved = [name for name in moved if name not in _DECODING or name in read]
        if _libraries(previous) and _libraries(self.settings) and not moved:
            self.settings["libraries"] = _library_versions_kept(previous, self.settings)
        changed = previous != self.settings
        listed = previous["rois"] if isinstance(previous, dict) and isinstance(previous.get("rois"), list) else None
        if listed is not None:  # an old journal's: the whole ROI file's centres as a setting
            previous = {**previous, "rois": "file"}  # (a refusal says 'file' -> 'auto', not the file's every row)
        if changed and (not _methods_alone_differ(previous, retired, self.settings) or moved):
            reasons, resume = _refusal(previous, retired, self.settings, moved)
            raise ValueError(f"{os.path.dirname(self.path)} holds an evaluation with other settings "
                             f"({reasons}), under which its scores do "
                             f"not hold (only methods and metrics may be added or dropped); {resume}"
                             f"pass {asked('restart', True)} to score every image again into the same folder, "
                             f"or use a new {_report_folder()}")  # fmt: skip
        if listed is not None:
            centres = _centres_listed(listed, list(self._done))
            for path, entry in self._done.items():
                if "centres" not in entry and path in centres:
                    entry["centres"] = centres[path]
        self.retired = retired
        if not changed:
            return
        known = {_label(m): m for m in [*retired, *previous["methods"]]}
        now = [_label(m) for m in self.settings["methods"]]
        if not any(label in known for label in now):  # a typo, or another evaluation: not to be taken for one
            raise ValueError(f"{os.path.dirname(self.path)} holds an evaluation of other methods "
                             f"({', '.join(known)}), none of these ({', '.join(now)}); pass {asked('restart', True)} to "
                             f"start over, dropping the scores recorded there, or use a new {_report_folder()} to keep "
                             "them (a method's name mistyped? give it as it was)")  # fmt: skip
        self.retired = [m for label, m in known.items() if label not in now]
        before = [_label(m) for m in previous["methods"]]
        if previous["methods"] != self.settings["methods"]:
            self.methods_changed = ([label for label in now if label not in known],
                                    [label for label in before if label not in now],
                                    [_label(m) for m in retired if _label(m) in now])  # fmt: skip
        was, wanted = _names(previous.get("metrics")), _names(self.settings.get("metrics"))
        if was != wanted:
            kept = {m for entry in self._done.values() for row in entry.get("rows") or [] if isinstance(row, dict)
                    for m in row}  # the metrics some image holds scores of
            new = [m for m in wanted if m not in was]
            self.metrics_changed = ([m for m in new if m not in kept], [m for m in was if m not in wanted],
                                    [m for m in new if m in kept])  # fmt: skip
        with atomic_write(self.path) as tmp, open(tmp, "w") as f:  # a kill before the rename: the old one stands
            f.write(_dumps({"settings": self.settings, **({"retired": self.retired} if self.retired else {})}) + "\n")
            for entry in self._done.values():
                f.write(_dumps(entry) + "\n")

    def __len__(self) -> int:
        return len(self._done)

    def entry(self, path: str, others: list[str] | None = (), photometric: str | None = None,
              centres: list[float] | None = None) -> dict | None:  # fmt: skip
        """The recorded scores of ``path``, or None if it is not done, or it or one of the
        other files its scores depend on (another tool's outputs) has changed since, or it was
        read with another polarity (an @list's MONOCHROME1), or scored at other ROI centres than
        ``centres`` (:meth:`GivenCentres.record`; None: found); ``others`` None: they cannot all
        be found, so the image is not done. Its rows may lack methods or metrics added since (see
        :meth:`missing`, :meth:`unscored`); ``others`` may name files of those methods, which it
        has not recorded."""
        entry = self._done.get(path)
        if entry is None or others is None or entry["stat"] != file_state(path):
            return None
        if entry.get("photometric") != photometric or entry.get("centres") != centres:
            return None
        recorded, missing = entry.get("others", {}), self.missing(entry)
        if not isinstance(recorded, dict) or any(file_state(p) != recorded[p] for p in others if p in recorded):
            return None
        if missing and not set(recorded) <= set(others):  # which method's file is not one now: not to be told
            return None
        if not missing and not set(others) <= set(recorded):  # a method's file is another one now
            return None
        return entry  # (a file recorded and not among others: a dropped method's)

    def missing(self, entry: dict) -> list[str]:
        """The methods of these settings that ``entry`` has no rows of (added since it was recorded)."""
        have = {row.get("method") for row in entry["rows"]}
        return [label for label in map(_label, self.settings.get("methods", [])) if label not in have]

    def unscored(self, entry: dict, metrics: list[str]) -> dict[str, list[str]]:
        """Per method of these settings, the ``metrics`` that ``entry``'s rows lack: all of them
        for a method added since it was recorded, those added since for the others. (A metric's
        value, NaN included, is its key in a row: a metric dropped since stays in the rows.)"""
        unscored = {}
        for label in map(_label, self.settings.get("methods", [])):
            rows = [row for row in entry["rows"] if row.get("method") == label]
            lacking = [m for m in metrics if not rows or any(m not in row for row in rows)]
            if lacking:
                unscored[label] = lacking
        return unscored

    def moved(self, path: str, centres: list[float] | None) -> bool:
        """Whether ``path`` was scored, the file unchanged since, at other ROI centres than
        ``centres`` (an edited --rois row): said, as the reason it is scored again."""
        entry = self._done.get(path)
        return entry is not None and entry.get("centres") != centres and entry["stat"] == file_state(path)

    def record(self, path: str, rows: list[dict], notes: list[str], seconds: dict[str, float],
               others: list[str] | None = (), picture: dict | None = None,
               photometric: str | None = None, missing: list | None = None,
               centres: list[float] | None = None, original: dict | None = None,
               ran_on: dict | None = None) -> list[dict]:  # fmt: skip
        """Appends one finished image (and its report picture, if it has one, beside the
        journal); returns its rows as a later run will read them back. ``notes``: the image's
        warnings; ``missing``: the metrics left out on its ROIs or set there by a floor ([roi,
        why, methods]; roi None: what a method noted of reading its output, a colour one's
        luminance), from which the report words its notes for the methods it shows;
        ``centres``: where its ROIs were placed by hand (None: found); ``original``: its depth
        and how identity took it to 8 bits (:attr:`~xvertfast.eval.protocol.EvalRun.originals`),
        ``ran_on``: the CPU threads and GPUs that scored its rows
        (:attr:`~xvertfast.eval.protocol.EvalRun.ran_on`), both for the report a rerun writes."""
        state = {"stat": file_state(path), **({"others": {p: file_state(p) for p in others}} if others else {}),
                 **({"photometric": photometric} if photometric else {}),
                 **({"centres": centres} if centres is not None else {}),
                 **({"original": original} if original is not None else {}),
                 **({"ran_on": ran_on} if ran_on is not None else {})}  # fmt: skip
        writing = PICTURES_DIR  # (a full disk names no file: the one being written is said)
        try:
            if picture is not None:
                state["picture"] = self._save_picture(path, picture)
            writing = JOURNAL_FILE
            line = _dumps({"file": path, **state, "rows": rows, "notes": notes, "missing": missing or [],
                           "seconds": seconds})  # fmt: skip
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            out_dir = os.path.dirname(self.path)
            why = _failed_on(exc, out_dir) if exc.filename is not None else f"{writing}: {exc.strerror or exc}"
            done = len(self._done)
            kept = (f"the {count(done, 'image')} recorded before {'is' if done == 1 else 'are'} kept" if done
                    else "no image was recorded")  # fmt: skip
            again = resumed_by(None, "evaluate()", does="scores", to="score")
            raise said_alone(None, exc.errno, f"{out_dir}: the scores of {path} could not be recorded ({why}); "
                                              f"{kept}: {again} the rest once it can write there") from exc
        self._done[path] = json.loads(line)
        return self._done[path]["rows"]

    def _save_picture(self, path: str, picture: dict) -> str:
        """The picture's arrays in ``PICTURES_DIR/<hash of path>.npz`` (no pickles); returns the name."""
        folder = os.path.join(os.path.dirname(self.path), PICTURES_DIR)
        os.makedirs(folder, exist_ok=True)
        name = hashlib.sha256(os.fsencode(path)).hexdigest()[:24] + ".npz"  # (a name that is not UTF-8 too)
        arrays = {"boxes": np.asarray(picture["boxes"], dtype=np.int64), "scale": np.float64(picture["scale"])}
        arrays.update({f"thumb:{k}": v for k, v in picture["thumbs"].items()})
        arrays.update({f"crop:{k}": v for k, v in picture["crops"].items()})
        with atomic_write(os.path.join(folder, name)) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        return name

    def picture(self, entry: dict) -> dict | None:
        """The report picture recorded with ``entry``, or None (none recorded, or unreadable)."""
        name = entry.get("picture")
        if not name:
            return None
        try:  # a file cut short by a kill or a full disk, or not ours: the image is pictured again
            with np.load(os.path.join(os.path.dirname(self.path), PICTURES_DIR, name), allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            return {"file": entry["file"], "boxes": [tuple(int(v) for v in b) for b in arrays.pop("boxes")],
                    "scale": float(arrays.pop("scale")),
                    "thumbs": {k[6:]: v for k, v in arrays.items() if k.startswith("thumb:")},
                    "crops": {k[5:]: v for k, v in arrays.items() if k.startswith("crop:")}}  # fmt: skip
        except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def close(self) -> None:
        self._file.close()
        self._lock.close()
