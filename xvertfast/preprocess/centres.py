"""Spine ROI centres given by hand, in a CSV file (``--rois FILE`` of the commands).

The file's header row names the columns ``file, upper_row, upper_col, lower_row, lower_col``
(image pixels); ``file`` names an input by a path to it (absolute, or relative to the working
folder) or by its file name. It lives here, below the commands that read it (evaluate, and
enhance, preprocess and train, which place their ROIs at these centres where a row gives them).
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import NamedTuple

from xvertfast._paths import PATH_TYPES
from xvertfast._text import from_cli
from xvertfast.preprocess.spine import Spine, centres_order_problem, find_spine

__all__ = ["RoiCentres", "GivenCentres", "RoiRowError", "load_roi_centres", "as_roi_centres", "centres_of_inputs",
           "spine_at"]

_COLUMNS = ("upper_row", "upper_col", "lower_row", "lower_col")


class RoiCentres(dict):
    """``file -> ((upper_row, upper_col), (lower_row, lower_col))``, read from the CSV at ``path``
    (which the messages about it name); ``lines``: the line of each file's row."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.lines: dict[str, int] = {}


class RoiRowError(ValueError):
    """A row of the ROI file that names no input, or not one alone: the job stops before it starts."""


class GivenCentres(NamedTuple):
    """The centres one row gives an input, and where: errors about them name the CSV's line."""

    upper: tuple[float, float]
    lower: tuple[float, float]
    path: str  #: the CSV
    line: int

    def record(self) -> list[float]:
        """The centres as an output's ledger line records them: a rerun redoes the output where they changed."""
        return [*self.upper, *self.lower]


def load_roi_centres(path: str) -> RoiCentres:
    """ROI centres given by hand: a CSV whose header row names the columns file, upper_row,
    upper_col, lower_row, lower_col (image pixels); ``file`` is a path to the input (absolute, or
    relative to the working folder, however the input was given) or its file name. Cells may be
    separated by ``;`` with decimal commas, as Excel writes where the decimal mark is a comma.
    ValueError naming the line of a malformed row, or of one whose upper centre is not above its
    lower one (a smaller row): an image is needed for nothing else, so it stops a job before it starts."""
    centres = RoiCentres(path)
    # (from the CLI, the option: "ROI centres file nothere.csv: No such file" named none)
    named = f"--rois {path}" if from_cli() else f"ROI centres file {path}"
    try:
        with open(path, "rb") as raw:
            data = raw.read()
    except IsADirectoryError:  # (said "Is a directory": which file was meant, not said)
        raise ValueError(f"{named} is a folder: give the CSV file of the centres in it") from None
    except OSError as exc:
        raise ValueError(f"{named}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")  # -sig: the byte-order mark spreadsheets write
    except UnicodeDecodeError as exc:  # Excel's plain "CSV": Windows-1252, where a name has an accent
        decoded = exc.object  # (after the byte-order mark, which exc.start counts from)
        line = decoded.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text (byte 0x{decoded[exc.start]:02x}); save it as UTF-8 "
                         "(Excel: 'CSV UTF-8')") from None  # fmt: skip
    header = text.split("\n", 1)[0]
    # Excel where the decimal mark is a comma (German, French, Dutch, ...) writes ';' between cells, 300,5 in them
    semicolons = header.count(";") > header.count(",")
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f, delimiter=";" if semicolons else ",", skipinitialspace=True)  # (", ": by hand)
        if reader.fieldnames:
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]  # ("File": a spreadsheet's)
        need = {"file", *_COLUMNS}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            first = header.strip()  # its start alone where long: another kind of file (JSON) may be one line
            said = f"is {first!r}" if len(first) <= 100 else f"of {len(first):,} characters begins {first[:100]!r}"
            raise ValueError(f"{path}: ROI file needs the columns {', '.join(sorted(need))}, named in a header row "
                             f"(its first line {said})")  # fmt: skip
        for row in reader:
            line = reader.line_num  # (the row's last line: a quoted field may span several)
            cells = [value for key, value in row.items() if key is not None] + row.get(None, [])
            if not any((cell or "").strip() for cell in cells):  # ",,,,": a row a spreadsheet wrote for cells
                continue  # once touched, empty on its screen
            if (problem := _extra_cells_problem(row, reader.fieldnames, semicolons)) is not None:
                raise ValueError(f"{path}, line {line}: {problem}")
            try:
                values = _centre_values(row, reader.fieldnames, semicolons)
            except ValueError as exc:
                raise ValueError(f"{path}, line {line}: {exc}") from None
            # (found here, before the job, not at the image: it needs none)
            if (problem := centres_order_problem(values[0], values[2])) is not None:
                raise ValueError(f"{path}, line {line}: {problem}")
            name = (row["file"] or "").strip()
            if not name:
                raise ValueError(f"{path}, line {line}: the file column is empty")
            if name in centres.lines:  # a copy-paste slip: which centres are meant?
                raise ValueError(f"{path}, line {line}: {name} has centres on line {centres.lines[name]} already")
            centres.lines[name] = line
            centres[name] = ((values[0], values[1]), (values[2], values[3]))
    return centres


def _extra_cells_problem(row: dict, columns: list[str], decimal_commas: bool) -> str | None:
    """What is wrong with a row holding more cells than the header names, its cells as they fell
    in the columns: csv.DictReader drops the extra ones, so a decimal comma between commas (300,5)
    shifted each centre after it into the next column without a word. None where the extra cells
    are empty (a trailing comma, a spreadsheet's ragged rows): they hold nothing to misread. A
    decimal comma is said to be the likely cause only where the extra cells are digits."""
    extra = row.get(None) or []
    if not any(cell.strip() for cell in extra):
        return None
    cells = ", ".join([*(f"{name} {(row[name] or '').strip()!r}" for name in columns),
                       f"then {', '.join(repr(cell.strip()) for cell in extra)}"])  # fmt: skip
    problem = f"the row has {len(columns) + len(extra)} cells, the header names {len(columns)} ({cells})"
    if decimal_commas:  # (';' between cells: a comma in a cell is read as the decimal mark already)
        return problem
    if not all(cell.strip().isdigit() for cell in extra if cell.strip()):  # (a notes column: 'checked')
        return problem
    return (f"{problem}; a decimal comma (300,5) splits a number into two cells where commas separate them: write "
            "300.5, or put ';' between the cells (as Excel does where the decimal mark is a comma)")


def _centre_values(row: dict, columns: list[str], decimal_commas: bool) -> list[float]:
    """The four centre cells of a CSV row as numbers. ValueError naming the column and the cell as
    written: a row short of cells, or one cell at fault, is found in a long file by what it says."""
    values = []
    for column in _COLUMNS:
        cell = row[column]
        if cell is None:  # (csv.DictReader fills the columns a short row lacks with None)
            cells = len(columns) - sum(row[name] is None for name in columns)
            raise ValueError(f"the row ends after {cells} cell{'s' if cells != 1 else ''}, before the {column} column "
                             f"(the header names {len(columns)})")  # fmt: skip
        if not cell.strip():
            raise ValueError(f"ROI centres must be numbers: {column} is empty")
        try:
            value = float(cell.replace(",", ".") if decimal_commas else cell)
        except ValueError:
            raise ValueError(f"ROI centres must be numbers: {column} is {cell.strip()!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"ROI centres must be finite numbers: {column} is {cell.strip()!r}")
        values.append(value)
    return values


def _at(where: str, line: int) -> str:
    """Where a row is: the CSV and its line; the source alone for centres given from Python (no line)."""
    return f"{where}, line {line}" if line else where


def centres_of_inputs(centres: RoiCentres, paths: list[str], unused: list[str] | None = None) -> dict[str, GivenCentres]:
    """The centres each input (a path of ``paths``) is given, by a row naming a path to it (its
    own, its real one or a link's; ``\\`` read as ``/`` where no file matches as written) or else its
    file name; inputs no row names are left out (they keep the centres found).
    ValueError naming the CSV's line for a row that names no input, a file name of several
    inputs (which one is meant?), or an input two rows name: a slip there would otherwise
    leave an image at the centres found without a word. ``unused``: rows naming no input are
    listed there instead (evaluate notes them: its inputs may be a part of those the file covers)."""
    by_path: dict[str, str] = {os.path.abspath(p): p for p in paths}
    by_real: dict[str, str] = {}  # made for the first row naming a path by_path lacks: links either way
    by_name: dict[str, list[str]] = {}
    for p in paths:
        by_name.setdefault(os.path.basename(p), []).append(p)
    given: dict[str, GivenCentres] = {}
    where = getattr(centres, "path", "the ROI centres given")
    lines = getattr(centres, "lines", {})
    for name, (upper, lower) in centres.items():
        line = lines.get(name, 0)
        named = by_path.get(os.path.abspath(name))
        if named is None and ("/" in name or os.sep in name):
            if not by_real:
                by_real.update((os.path.realpath(p), p) for p in reversed(paths))  # (the first path of a file)
            named = by_real.get(os.path.realpath(name))
        if named is None and os.sep == "/" and "\\" in name:  # a CSV made on Windows: d\a\y.png
            named = by_path.get(os.path.abspath(name.replace("\\", "/")))
        if named is None:
            matches = by_name.get(name, [])
            if len(matches) > 1:
                listed = ", ".join(matches[:3]) + (", ..." if len(matches) > 3 else "")
                raise RoiRowError(f"{_at(where, line)}: {name} is the file name of {len(matches)} inputs ({listed}); "
                                 "give the path of the one meant")  # fmt: skip
            if not matches and unused is not None:
                unused.append(name)
                continue
            if not matches:
                raise RoiRowError(f"{_at(where, line)}: {name} is none of the inputs (the file column names an "
                                 "input by a path to it or its file name)")  # fmt: skip
            named = matches[0]
        if named in given:
            before = given[named].line
            raise RoiRowError(f"{_at(where, line)}: {named} has centres {f'on line {before} ' if before else ''}already")
        given[named] = GivenCentres(tuple(upper), tuple(lower), where, line)
    return given


_MAPPING = "a mapping file -> ((upper_row, upper_col), (lower_row, lower_col))"


def as_roi_centres(rois):
    """``rois`` as the jobs take it: a CSV's path read (:func:`load_roi_centres`), else as given
    (None, centres read already, or a mapping from Python). TypeError or ValueError where it is
    none of these, naming what it got: an int was "'int' object has no attribute 'items'", a
    value that is no pair of centres "cannot unpack non-iterable int object", and '' "ROI
    centres file : No such file or directory". A mapping's keys may be str, bytes or os.PathLike
    (read as str paths). (Each centre's numbers are checked per image.)"""
    if rois is None or isinstance(rois, RoiCentres):
        return rois
    if isinstance(rois, PATH_TYPES):
        path = os.fsdecode(rois)
        if not path:
            raise ValueError("rois is empty: give the path of a ROI centres CSV, or None for the centres found")
        return load_roi_centres(path)
    if not hasattr(rois, "items"):
        raise TypeError(f"rois must be the path of a ROI centres CSV or {_MAPPING}, got {type(rois).__name__}")
    by_name: dict[str, object] = {}
    for key, centres in rois.items():
        if not isinstance(key, PATH_TYPES):
            raise TypeError(f"rois: each key must be an input's path or file name (a str, bytes or os.PathLike), "
                            f"got {key!r}")  # fmt: skip
        name = os.fsdecode(os.fspath(key))  # (a Path key was matched before 0706abd: centres_of_inputs takes a str)
        if isinstance(centres, (str, bytes)) or not hasattr(centres, "__len__") or len(centres) != 2:
            raise ValueError(f"rois: {name}'s centres must be two (row, column) pairs, the upper one first, "
                             f"got {centres!r}")  # fmt: skip
        if name in by_name:  # ('a.png' and Path('a.png'): one would be lost without a word)
            first = next(k for k in rois if os.fsdecode(os.fspath(k)) == name)
            raise ValueError(f"rois: {name} is given twice, as {first!r} and as {key!r}")
        by_name[name] = centres
    return rois if all(isinstance(key, str) for key in rois) else by_name


def spine_at(pixels, given: GivenCentres | None) -> Spine:
    """The spine of an image with the centres ``given`` (None: those found). ValueError naming
    the CSV's line where a centre lies outside the image or the upper one is not above the lower."""
    spine = find_spine(pixels)
    if given is None:
        return spine
    try:
        return spine.with_centres(given.upper, given.lower)
    except ValueError as exc:
        raise ValueError(f"{_at(given.path, given.line)}: {exc}") from None
