"""Putting an evaluation report's files in place: all of them or none.

All of them or none against an interruption while the report is drawn: they are drawn in a
hidden folder in ``out_dir`` and put in place together at the end (a Ctrl-C among the removals
and moves waits for them), so a report cut short (Ctrl-C, an error) while drawn changes none of
the files a reader opens, and an earlier report there stays whole rather than beside half of a
new one. Put in place, the earlier report's files are removed first, its page first, its grid
pictures last, then the new ones moved in, the page last: the files are renamed one by one, so a
kill -9 (or a step that fails: a full disk, a file that may not be removed) among them could
otherwise leave a new scores.csv beside the earlier run's summary and page, one report to a
reader. Cut there, the folder holds one report's files, incomplete and without
``report.html`` (the earlier report is gone too: the same command, or Python call, writes the new one,
no image scored again); the error says so.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import warnings
from typing import Callable

from xvertfast._interrupts import deliver, interrupts_deferred
from xvertfast._pickled_errors import PickledAsRaised, said_alone
from xvertfast._text import asked
from xvertfast.io.write import link_to_nowhere, resumed_by

__all__ = ["REPORT_FILES", "ReportInterrupted", "check_grid_folder", "replace_report", "remove_unfinished_reports"]

#: In this order they are put in place, the page, which links the others, last; an earlier report's
#: are removed in the reverse order, the page first. Every one is drawn on every path of
#: the report's ``_draw``: one listed but not drawn would have the earlier report removed, then fail.
REPORT_FILES = ("scores.csv", "summary.csv", "summary.md", "boxplots.png", "provenance.json", "report.html")
#: The hidden folder in the report folder (``.xvertfast-report-<random>.part``) a report is drawn in.
_PARTS = (".xvertfast-report-", ".part")
#: A report picture's name in grid/: its place among the pictures (3 digits, more past 999), its image's name.
_PICTURE = re.compile(r"\d{3,}_.+\.png")
_MOVING = "\nalready stopping: the report's files are being put in place\n"
_REMOVING = "\nalready stopping: the report's unfinished files are being removed\n"


class ReportInterrupted(PickledAsRaised, KeyboardInterrupt):
    """Ctrl-C (or the CLI's SIGTERM) while :func:`replace_report` ran. ``complete``: it came while the
    finished files were put in place, which went on, so the report is whole; else none of its
    files was changed, and ``earlier`` says whether an earlier report stands there. ``failed``: the
    run's failed images (a rerun tries them again; the images scored are not). ``error``: it came
    while the files were put in place and a step of that failed (a full disk): the OSError, whose
    text says what the folder holds now (``complete`` is then False and ``earlier`` not to be said)."""

    def __init__(self, complete: bool, paths: dict[str, str], earlier: bool, failed: int,
                 error: OSError | None = None):  # fmt: skip
        super().__init__()
        self.complete, self.paths, self.earlier, self.failed = complete, paths, earlier, failed
        self.error = error


def _remove_earlier_grids(folder: str) -> tuple[int, int]:
    """Removes an earlier report's pictures (``NNN_<name>.png``, four digits and more past picture
    999) from ``folder`` before the new ones are moved in: one left, of another image or not yet
    replaced, would sit beside the new ones as if of the same report. One that cannot be removed is
    a warning: it stays in grid/, which the new page does not link. Returns how many were removed
    and how many were left so."""
    try:
        names = os.listdir(folder)
    except OSError as exc:
        warnings.warn(f"{folder}: an earlier report's pictures not looked for ({exc.strerror or exc})", UserWarning,
                      stacklevel=2)  # fmt: skip
        return 0, 0
    removed = left = 0
    for name in names:
        path = os.path.join(folder, name)
        if _PICTURE.fullmatch(name) and os.path.isfile(path):
            try:
                os.remove(path)
                removed += 1
            except OSError as exc:
                left += 1
                warnings.warn(f"{path}: an earlier report's picture, not removed ({exc.strerror or exc}): it is left in "
                              "grid/ beside this run's pictures, and report.html does not show it", UserWarning,
                              stacklevel=2)  # fmt: skip
    return removed, left


def replace_report(out_dir: str, draw: Callable[[str], list[str]], failed: int, remove_unfinished: bool,
                   call: str) -> dict[str, str]:  # fmt: skip
    """Replaces the report in ``out_dir`` with the one ``draw`` writes into the hidden folder it is
    given (returning its grids' paths under it), all or none; returns name -> path. Interrupted,
    raises :class:`ReportInterrupted` (a KeyboardInterrupt), saying which (``failed``: the run's
    failed images, for its message). ``remove_unfinished``: first removes what killed reports
    left there (:func:`remove_unfinished_reports`; only for a caller that holds the folder's lock).
    ``call``: the Python call that writes the report again, which a failure names outside the CLI."""
    paths = {name: os.path.join(out_dir, name) for name in REPORT_FILES}
    earlier = os.path.exists(paths["report.html"])
    parts, placed = None, False
    try:  # from here a Ctrl-C is the report's: every image is scored already
        if remove_unfinished:
            remove_unfinished_reports(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        parts = tempfile.mkdtemp(prefix=_PARTS[0], suffix=_PARTS[1], dir=out_dir)
        try:
            grids = draw(parts)
        except ImportError as exc:
            if _cut_by_interrupt(exc):
                raise KeyboardInterrupt from exc
            raise
        # a signal among the moves would leave a mix of two reports' files: held until they are done
        with interrupts_deferred(stopping=False, note=_MOVING) as held:
            try:
                _put_in_place(parts, out_dir, grids, call)
            except OSError as exc:  # a signal held is still the user's stop (130, 143), said with the error:
                if held.signal is None:  # raised as the error alone, it exited 2 as if no one had asked to stop
                    raise
                try:
                    deliver(held)
                except KeyboardInterrupt:
                    raise ReportInterrupted(False, paths, earlier, failed, error=exc) from exc
                raise  # (a handler of the caller's that lets the job go on: the error alone)
            placed = True
            shutil.rmtree(parts, ignore_errors=True)
        deliver(held)  # (one that came as the handlers were put back is raised here too: caught below)
    except ReportInterrupted:
        raise
    except KeyboardInterrupt:
        raise ReportInterrupted(placed, paths, earlier, failed) from None
    finally:
        if not placed and parts is not None:  # cut short or failed: a second Ctrl-C must not leave the parts
            with interrupts_deferred(stopping=True, note=_REMOVING):  # (nor hide the first)
                shutil.rmtree(parts, ignore_errors=True)
    return paths


def _cut_by_interrupt(exc: ImportError) -> bool:
    """Whether a Ctrl-C made the import fail: a compiled module of matplotlib (pybind11's) loading
    when it came raises ImportError('initialization failed') from the KeyboardInterrupt."""
    return isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)


def _put_in_place(parts: str, out_dir: str, grids: list[str], call: str) -> None:
    """Replaces the report in ``out_dir`` with the one drawn in ``parts``: removes the earlier
    report's files, its page first, then moves the new ones in (renames in one folder: quick), the
    page last. One by one, so that a kill -9 or a failure between any two leaves one report's files
    and no page, not a new scores.csv beside an earlier page that a reader takes for one report.
    An earlier picture that cannot be removed is a warning (no page links it); any other step that
    fails raises an OSError of its kind and errno naming the folder and the file and saying what
    the folder holds now, and what writes the report again: the same command, or from Python ``call``
    (a Python caller was told of a command it never ran). A grid/ that is no folder is refused before any step."""
    if grids:
        _refuse_a_grid_in_the_way(out_dir)
    removed = left = moved = 0
    total = len(grids) + len(REPORT_FILES)
    try:
        for name in reversed(REPORT_FILES):  # the page first: without it the rest is visibly unfinished
            try:
                os.remove(os.path.join(out_dir, name))
                removed += 1
            except FileNotFoundError:
                pass
        grid = os.path.join(out_dir, "grid")
        if os.path.isdir(grid):
            gone, left = _remove_earlier_grids(grid)  # those of the same names too
            removed += gone
        if grids:
            os.makedirs(grid, exist_ok=True)
        else:  # (--pictures 0: an earlier report's grid/, emptied)
            _remove_if_empty(grid)
        for name in [*grids, *REPORT_FILES]:
            os.replace(os.path.join(parts, name), os.path.join(out_dir, name))
            moved += 1
    except OSError as exc:
        why = _failed_on(exc, out_dir)
        again = resumed_by(None, call, does="writes it again", to="write it")
        raise said_alone(None, exc.errno, f"{out_dir}: the report could not be put in place ({why}); "
                                          f"{_what_is_left(removed, left, moved, total)}; {again}") from exc


def _grid_in_the_way(out_dir: str, writable: bool = False) -> tuple[int, str] | None:
    """The errno and the reason where a ``grid`` in ``out_dir`` is not a folder for the pictures (a
    file, a link to a folder that does not exist), or holds a folder named as a picture is
    (:func:`_folder_named_as_a_picture`), and, ``writable`` asked, where it is one that cannot be
    written (its moves into it would fail); None where the pictures can go there."""
    grid = os.path.join(out_dir, "grid")
    instead = f"give {asked('pictures', 0)}"
    if os.path.isdir(grid):
        if writable and not os.access(grid, os.W_OK | os.X_OK):
            return errno.EACCES, f"grid: a folder that cannot be written into: make it writable, or {instead}"
        if (folder := _folder_named_as_a_picture(grid)) is not None:
            return errno.EISDIR, (f"grid/{folder}: a folder named as the report's pictures are (NNN_name.png, each "
                                  f"run's replacing the earlier run's): move it away, or {instead}")  # fmt: skip
        return None
    if not os.path.lexists(grid):
        return None
    gone = link_to_nowhere(grid, instead=f"remove the link (grid/ is then made), or {instead}")
    code = errno.ENOENT if gone else errno.ENOTDIR  # (FileNotFoundError, NotADirectoryError)
    return code, gone or f"grid: a file, not a folder for the report's pictures: move it away, or {instead}"


def _folder_named_as_a_picture(grid: str) -> str | None:
    """The name of a folder (not a link) in ``grid`` named as the report's pictures are: an earlier
    report's pictures of those names are removed as files, and a picture moved onto a folder fails
    (Is a directory), once every image was scored. None where there is none, or grid/ cannot be listed."""
    try:
        names = sorted(os.listdir(grid))
    except OSError:
        return None
    return next((name for name in names if _PICTURE.fullmatch(name) and os.path.isdir(os.path.join(grid, name))
                 and not os.path.islink(os.path.join(grid, name))), None)  # fmt: skip


def check_grid_folder(out_dir: str) -> None:
    """Refuses, before the images are scored, a ``grid`` in ``out_dir`` that the report's pictures
    could not be put into (:func:`_grid_in_the_way`, a read-only folder too): it was found only when
    the report was put in place, so a run of hours ended without its report, to be run again after
    the fix. Checked again there (it may change meanwhile)."""
    if (found := _grid_in_the_way(out_dir, writable=True)) is not None:
        raise said_alone(None, found[0], f"{out_dir}: the report's pictures could not be put in grid/ ({found[1]}); "
                                         "no image was scored")  # fmt: skip


def _refuse_a_grid_in_the_way(out_dir: str) -> None:
    """Refuses, before any file there is changed, a ``grid`` in ``out_dir`` that is not a folder for
    the pictures (a file, a link to a folder that does not exist): making grid/ failed with 'File
    exists' after the earlier report was removed, and said the same command writes it again, which
    failed the same way every time."""
    if (found := _grid_in_the_way(out_dir)) is not None:
        raise said_alone(None, found[0], f"{out_dir}: the report could not be put in place ({found[1]}); none of the "
                                         "files there was changed")  # fmt: skip


def _remove_if_empty(grid: str) -> None:
    """Removes ``grid`` where it is a folder (not a link to one: the user's) left empty. One that
    cannot be read or removed stays: an empty grid/ is harmless, and the report is still put in
    place."""
    try:
        if not os.path.islink(grid) and os.path.isdir(grid) and not os.listdir(grid):
            os.rmdir(grid)
    except OSError:
        pass


def _failed_on(exc: OSError, out_dir: str) -> str:
    """``exc``'s strerror after the file it failed on, relative to ``out_dir`` (a rename's
    destination: the source is in the hidden folder, removed after)."""
    why = exc.strerror or str(exc)
    name = exc.filename2 if exc.filename2 is not None else exc.filename
    if name is None:
        return why
    shown = os.path.relpath(os.fsdecode(name), out_dir)
    return why if shown == os.curdir else f"{shown}: {why}"


def _what_is_left(removed: int, left: int, moved: int, total: int) -> str:
    """What a report folder holds after :func:`_put_in_place` failed: ``removed`` of the earlier
    report's files removed, ``left`` of its pictures that could not be, ``moved`` of this run's
    ``total`` files moved in."""
    if not removed and not moved:  # (a picture that could not be removed is as it was)
        return "none of the files there was changed"
    done = []
    if removed:
        done.append(f"{removed} of the earlier report's files were removed" if not left else
                    f"{removed} of the earlier report's files are gone, {left} of its pictures left in grid/ (they "
                    "could not be removed)")  # fmt: skip
    if moved:
        done.append(f"{moved} of this run's {total} files are in place")
    return "it holds no whole report (no report.html): " + " and ".join(done)


def remove_unfinished_reports(out_dir: str) -> None:
    """Removes the folders a killed :func:`replace_report` left in ``out_dir`` (hidden: no reader
    opens them). Only where no other report is being written there (evaluate holds its lock)."""
    if not os.path.isdir(out_dir):
        return
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        if name.startswith(_PARTS[0]) and name.endswith(_PARTS[1]) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
