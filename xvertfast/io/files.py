"""Finding the input images of a batch job and naming its outputs.

Inputs are files, folders (searched recursively) or ``@list.txt`` files that
list one path per line. Outputs mirror each input's path relative to the
folder it was found in, under the output folder, and can never escape it.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import re
import stat
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace

from xvertfast._paths import PATH_TYPES, fspath, not_a_path
from xvertfast._pickled_errors import PickledAsRaised
from xvertfast.io.errors import ImageReadError

__all__ = ["InputFile", "InputLists", "discover", "searched_input_folder", "check_inputs", "input_paths", "list_files", "read_input", "input_problem", "unsearched_image", "refuse_unsearched_images", "file_state", "RealPaths", "output_path", "image_extension", "file_sha256", "IMAGE_EXTENSIONS", "IMAGE_KINDS",
           "LIST_PHOTOMETRICS"]  # fmt: skip

#: Extensions picked up when a folder is searched. Files without an extension, or whose
#: name ends in digits after its last dot (a DICOM file named by its UID, 1.2.840....320),
#: are picked up too: archives store DICOM that way. DICOMDIR index files are not images.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dcm", ".dicom", ".img")


#: The kinds of image a folder is searched for, as messages name them.
IMAGE_KINDS = "PNG, TIFF, JPEG, DICOM, JSRT .IMG"

#: Polarities an ``@list`` line may give after a tab (for PNG/JPEG files, which do not record it).
LIST_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class InputFile:
    path: str  #: as given or found
    rel: str  #: path relative to the folder it was found in (the file name for direct inputs)
    photometric: str | None = None  #: polarity given in an @list (``path<TAB>MONOCHROME1``), else None
    problem: str | None = None  #: why it cannot be read, found while searching (an unlistable folder)
    listed: str | None = None  #: "LIST, line N" for a file an @list names itself (not a folder's image)


def image_extension(name: str) -> str:
    """The name's extension if it is one of IMAGE_EXTENSIONS, else "" (none, or part of a UID)."""
    ext = os.path.splitext(name)[1]
    return ext if ext.lower() in IMAGE_EXTENSIONS else ""


def _may_be_image(name: str) -> bool:
    """Whether a folder search takes ``name`` for an image: not a hidden file, nor a DICOMDIR
    (also saved as DICOMDIR.DCM, in any case: an index, which reading refuses as not an image)."""
    stem, ext = os.path.splitext(name)
    if name.startswith(".") or (stem.upper() == "DICOMDIR" and ext.lower() in ("", ".dcm", ".dicom")):
        return False
    return not ext or bool(image_extension(name)) or ext[1:].isdigit()


class NothingFound(PickledAsRaised, ValueError):
    """No input file was found where the inputs say: the batch commands exit 1 on it (a run
    that had nothing to do), not 2 (a run that could not start). ``missing``: none of the
    inputs exists (a mistyped path), which the message says instead. ``lists``: the job's
    :class:`InputLists`, for the message to say which @list names no path at all (an empty
    list was "no image files found in @list.txt", as if the files it named were not images)."""

    def __init__(self, inputs, missing: bool = False, lists: InputLists | None = None):
        given = list(dict.fromkeys(input_paths(inputs)))  # (an input given twice is named once)
        names = ", ".join(given)
        if not names:  # (an empty list from Python: "no image files found in  (PNG, ...)" named nothing)
            super().__init__(f"no inputs were given: name image files, folders or @lists ({IMAGE_KINDS})")
            return
        empty = [] if missing or lists is None else [i for i in given if i.startswith("@") and _names_none(lists, i)]
        said = ""  # (what the empty @lists are: built only where there is one)
        if empty:
            said = (f"{empty[0]} names no file: it is" if len(empty) == 1
                    else f"{', '.join(empty)} name no file: each is")  # fmt: skip
            said += " empty or holds only blank lines and # comments (a list gives image files or folders, one a line)"
        if missing:
            super().__init__(f"{names}: no such file or folder")
        elif empty and len(empty) == len(given):
            super().__init__(said)
        else:
            super().__init__(f"no image files found in {names} ({IMAGE_KINDS})" + (f"; {said}" if said else ""))


def _names_none(lists: InputLists, item: str) -> bool:
    """Whether the @list ``item`` holds no line that names something (one that cannot be read: no)."""
    try:
        return not lists.lines(item[1:])
    except ValueError:
        return False


#: Files that mark a folder as the output of an xvertfast job (an enhancement's or a
#: preprocessing's output folder, an evaluation report, a training run): their images are results, not inputs, so a search
#: of a folder above them passes them over (given as an input themselves, they are searched).
JOB_FOLDER_MARKERS = (".xvertfast-enhance.json", ".xvertfast-preprocess.json", ".xvertfast-evaluate.jsonl",
                      os.path.join("checkpoint", "state.json"))  # fmt: skip


@dataclass(frozen=True)
class JobImages:
    """The images a job writes in its output folder that are no radiographs, told apart from the
    user's own files that may lie there too (radiographs in PROJ/data beside a preprocess job's
    outputs in PROJ): train refuses the job's as training data, and trains on the others."""

    what: str  #: what they are, as messages say
    endings: tuple[str, ...] = ()  #: how their names end (in any case), in the folder or any below it
    top_names: tuple[str, ...] = ()  #: regular expressions the names of those directly in the folder match whole
    folders: tuple[str, ...] = ()  #: the folders in it whose every file is the job's

    def wrote(self, rel: str) -> bool:
        """Whether the file at ``rel`` (a path relative to the job's output folder) is one of them."""
        if rel.lower().endswith(self.endings) or rel.split(os.sep)[0] in self.folders:
            return True
        return any(re.fullmatch(name, rel) for name in self.top_names)


#: The images the jobs whose images are no radiographs write, by job (an enhance job's are
#: radiographs, enhanced: none here). Preprocess names its outputs by these endings; evaluate and
#: train write theirs by name, and a test runs each to hold them to this table.
JOB_IMAGES = {
    "preprocess": JobImages("X_p, Y and overlays made from radiographs",
                            endings=("_xp.png", "_y.tiff", "_y.png", "_overlay.png")),
    "evaluate": JobImages("a report's figures", top_names=(r"boxplots\.png",), folders=("grid",)),
    "train": JobImages("a run's loss curves and previews", top_names=(r"curves\.png", r"preview_stage\d+\.png"),
                       folders=("checkpoint", "model", "cache")),
}  # fmt: skip


def _is_job_folder(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, marker)) for marker in JOB_FOLDER_MARKERS)


def _from_folder(folder: str, exclude: set[str]) -> list[InputFile]:
    """The images under ``folder``. Symbolic links to folders outside it are followed, each
    real folder once (a link loop ends there; a link to a folder inside it is passed over, the
    folder being found under its own name); folders in ``exclude`` (real paths) and the output
    folders of other xvertfast jobs (:data:`JOB_FOLDER_MARKERS`) are not entered; a folder that
    cannot be listed comes back as an entry with its ``problem``."""
    top = os.path.realpath(folder)
    found, seen = [], {top}

    def unlisted(exc: OSError) -> None:
        where = exc.filename or folder
        found.append(InputFile(where, os.path.relpath(where, folder), problem=f"folder cannot be searched "
                               f"({exc.strerror or exc}): the images in it are left out"))  # fmt: skip

    for root, dirs, files in os.walk(folder, onerror=unlisted, followlinks=True):
        kept = []
        for d in sorted(dirs):
            path = os.path.join(root, d)
            real = os.path.realpath(path)
            inside = os.path.islink(path) and os.path.commonpath([top, real]) == top
            if d.startswith(".") or real in seen or real in exclude or inside or _is_job_folder(path):
                continue
            seen.add(real)
            kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            if not _may_be_image(name):
                continue
            path = os.path.join(root, name)
            found.append(InputFile(path, os.path.relpath(path, folder)))
    return found


def unsearched_image(out_dir: str, inputs: list[str], lists: InputLists | None = None) -> str | None:
    """An image already in ``out_dir``, where ``out_dir`` lies in a folder given as an input and is
    not yet a job's output folder: the search passes ``out_dir`` over (outputs are not inputs), so
    such a file, an input put there before the job (``-o`` a subfolder of the archive), would be left
    out without a word. None where there is none (a new or empty folder, one a job wrote). A folder
    an @list names is an input folder as one given is (it was not looked at: the images were left out).
    ``lists``: the job's, read by its search."""
    real = os.path.realpath(out_dir)
    if not os.path.isdir(real) or _is_job_folder(real):
        return None
    if _searching_folder(real, _given_paths(inputs, lists)) is None:
        return None
    for root, dirs, files in os.walk(out_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _is_job_folder(os.path.join(root, d)))
        for name in sorted(files):
            if _may_be_image(name):
                return os.path.join(root, name)
    return None


def refuse_unsearched_images(out_dir: str, inputs: list[str], lists: InputLists | None, done: str) -> None:
    """ValueError where ``out_dir`` holds an image no job wrote and lies in an input folder
    (:func:`unsearched_image`), saying that it would not be ``done`` ("enhanced"): one refusal
    for every job that writes images beside its inputs' folders."""
    left_out = unsearched_image(out_dir, inputs, lists)
    if left_out is not None:
        raise ValueError(f"{out_dir} holds images that no xvertfast job wrote ({left_out}) and lies in an input "
                         f"folder: the output folder is not searched, so they would not be {done}; give the "
                         "outputs a folder of their own")  # fmt: skip


def _given_paths(inputs, lists: InputLists | None) -> list[str]:
    """The paths ``inputs`` give, as written: those given, and those their ``@lists`` give (but lists)."""
    return [i for i in input_paths(inputs) if not i.startswith("@")] + _listed_paths(inputs, lists)


def _searching_folder(real: str, given: list[str], exclude: set[str] = frozenset()) -> str | None:
    """The folder of ``given`` (as given) whose search enters ``real`` (a resolved path below it,
    not the folder itself): through no hidden folder, no other job's output folder and none of
    ``exclude`` (resolved: the job's output folder). None where no search does."""
    for folder in given:
        top = os.path.realpath(folder)
        if not os.path.isdir(top) or real == top or os.path.commonpath([top, real]) != top:
            continue
        parts = os.path.relpath(real, top).split(os.sep)
        above = [os.path.join(top, *parts[:k]) for k in range(1, len(parts))]
        if (not any(part.startswith(".") for part in parts) and not any(map(_is_job_folder, above))
                and not exclude.intersection(above)):  # fmt: skip
            return folder
    return None


def searched_input_folder(path: str, inputs, exclude: list[str] = (), lists: InputLists | None = None) -> str | None:
    """The input folder (as given or listed) whose search would take a file written at ``path``
    for an image: a --report or --preview written there (``enhance in -o out --preview
    in/look.png``) was read as a radiograph by the next job given that folder, and made a rerun
    refuse itself ('--report in/run.png is one of the inputs'). None where none would: a name no
    search takes (run.json), a hidden one, or a path in none of the input folders or in one of
    ``exclude`` (the job's output folder, which the search passes over)."""
    if not _may_be_image(os.path.basename(path)):
        return None
    skip = {os.path.realpath(e) for e in exclude}
    return _searching_folder(os.path.realpath(path), _given_paths(inputs, lists), skip)


def _refuse_inside(path: str, exclude: set[str]) -> None:
    """Refuses an input that is, or lies inside, one of the job's output folders: outputs mixed
    with inputs are taken for inputs by a rerun, and the folder's job markers would make a later
    search of a folder above pass the inputs in it over as a job's outputs."""
    real = os.path.realpath(path)
    for folder in exclude:
        if real == folder and not os.path.isdir(path):  # (-o naming the input image itself: 'inside a folder' of it)
            stem = os.path.splitext(path)[0] or path
            raise ValueError(f"{path} is an input file and also given as the output folder, which must be a "
                             f"folder: give the outputs a folder of their own (e.g. {stem}_out)")  # fmt: skip
        if real == folder and os.path.isdir(path):  # (most often the same folder given as input and -o)
            beside = os.path.join(os.path.dirname(os.path.abspath(path)), os.path.basename(real) + "_out")
            beside = beside if os.path.isabs(path) else os.path.relpath(beside)
            raise ValueError(f"{path} is an input folder and also the output folder (or, for evaluate, a method's "
                             "folder of outputs), so it is a folder of outputs: outputs written among the inputs "
                             "would be taken for inputs by a rerun. Give the outputs a folder of their own, beside "
                             f"it (e.g. {beside}) or inside it (e.g. {os.path.join(path, 'out')})")  # fmt: skip
        same_drive = os.path.splitdrive(folder)[0] == os.path.splitdrive(real)[0]
        if same_drive and os.path.commonpath([folder, real]) == folder:
            raise ValueError(f"{path} is inside {folder}, a folder of outputs (the job's own, or another method's "
                             "that evaluate scores); keep the inputs apart from outputs")  # fmt: skip


def _listed_rel(path: str) -> str:
    """Where a listed file's output goes, whatever else the list holds: a relative path as
    written (below the current folder), any other path whole, without its root or drive
    (``/data/p1/IM0001.png`` -> ``data/p1/IM0001.png``), so that names repeated across the
    folders of a PACS export stay apart."""
    rel = os.path.normpath(path)
    if os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep):
        drive, rest = os.path.splitdrive(os.path.abspath(path))
        rel = os.path.join(drive.replace(":", "").strip("\\/"), rest.lstrip("\\/"))  # C: -> C, //host/share
    return rel


def _read_list(list_path: str) -> list[str]:
    """The lines of an ``@list``, its bytes read once (an ``@<(find ...)`` or ``@/dev/stdin`` list is a
    pipe, which a second read finds empty); one that cannot be read is a ValueError that says it is the
    input list file (not a bare ``[Errno 2] No such file or directory``). It is read as UTF-8
    whatever the locale (a list of non-ASCII paths failed under LANG=C), a byte order mark
    (Notepad's 'UTF-8 with BOM') not part of the first path; a UTF-16 list is said to be one."""
    try:
        with open(list_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        home = (f" (a shell expands ~ only at the start of a word, not after @: write @{os.path.expanduser(list_path)})"
                if list_path.startswith("~") and os.path.expanduser(list_path) != list_path else "")  # fmt: skip
        raise ValueError(f"@{list_path}: the input list file {list_path} does not exist{home}") from None
    except IsADirectoryError:
        raise ValueError(f"@{list_path}: the input list file {list_path} is a folder; give the folder "
                         "without the @ to search it") from None  # fmt: skip
    except OSError as exc:
        raise ValueError(f"@{list_path}: the input list file {list_path} cannot be read ({exc.strerror or exc})"
                         ) from None  # fmt: skip
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # (Windows PowerShell's > writes UTF-16)
        raise ValueError(f"@{list_path}: the input list file {list_path} is UTF-16 text: save it as UTF-8 (or "
                         "plain ASCII), one path a line")  # fmt: skip
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # (a list saved in Latin-1 or a Windows code page, say)
        before = data[: exc.start]  # (the line it is on: the ends before it, \r\n, \r or \n, as read below)
        line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
        raise ValueError(f"@{list_path}: the input list file {list_path} is not UTF-8 text (line {line} has byte "
                         f"0x{data[exc.start]:02x}): save it as UTF-8 (or plain ASCII), one path a line") from None  # fmt: skip
    if "\0" in text:  # (UTF-16 without a mark: else a bare "embedded null byte", no file named)
        raise ValueError(f"@{list_path}: the input list file {list_path} holds NUL bytes (UTF-16 text without a "
                         "byte order mark, or not text): save it as UTF-8 (or plain ASCII), one path a line")  # fmt: skip
    return io.StringIO(text, newline=None).readlines()  # (the lines a text file's reader gives: \r\n and \r end one)


@dataclass(frozen=True)
class _ListLine:
    """A line of an ``@list`` that names something: blank and ``#`` lines are passed over when read."""

    number: int  #: its line number, as messages say it
    path: str  #: the path, spaces around it dropped (``@`` first: a list it names)
    tag: str | None  #: what follows a tab, spaces dropped (a polarity), None where nothing does


class InputLists:
    """The ``@lists`` of one job, each read and parsed once, whoever asks (the search, the check of
    an output folder in a listed folder, the side files that must not replace a list): read again,
    a list piped in (``@<(find ...)``, ``@/dev/stdin``) was empty, and one rewritten meanwhile gave
    each check other paths. A list that cannot be read raises its ValueError on every ask."""

    def __init__(self) -> None:
        self._read: dict[str, tuple[_ListLine, ...] | str] = {}  # by resolved path: its lines, or why not

    def lines(self, list_path: str) -> tuple[_ListLine, ...]:
        """The lines of ``list_path`` that name something, read once; the line rules are here alone."""
        real = os.path.realpath(list_path)
        if real not in self._read:
            try:
                raw = _read_list(list_path)
            except ValueError as exc:
                self._read[real] = str(exc)
            else:
                self._read[real] = tuple(_ListLine(number, path.strip(), tag.strip() or None)
                                         for number, line in enumerate(raw, start=1)
                                         if line.strip() and not line.lstrip().startswith("#")
                                         for path, _, tag in [line.rstrip("\r\n").partition("\t")])  # fmt: skip
        read = self._read[real]
        if isinstance(read, str):
            raise ValueError(read)
        return read


def _walk_list(list_path: str, lists: InputLists, seen: set[str], strict: bool,
               within: tuple[str, ...] = ()):  # fmt: skip
    """``(list_path, None)`` for ``list_path`` and each list it names, in turn, then ``(the list,
    line)`` for each of its other lines: depth first, in line order, a list reached twice walked once
    (``seen``: resolved). ``strict`` (the search): a list that cannot be read, a polarity that is none,
    or a list naming one it is read from (``within``; it recursed until Python's limit, said as
    'maximum recursion depth exceeded' and no file) is a ValueError naming its file or line; else
    (the checks after it) such a list is passed over."""
    within = (*within, os.path.realpath(list_path))
    seen.add(within[-1])
    try:
        lines = lists.lines(list_path)
    except ValueError:
        if strict:
            raise
        lines = ()
    yield list_path, None
    for line in lines:
        if strict and line.tag is not None and line.tag not in LIST_PHOTOMETRICS:
            raise ValueError(f"{list_path}, line {line.number}: after the tab comes MONOCHROME1 or MONOCHROME2, "
                             f"not {line.tag!r}")  # fmt: skip
        if strict and not line.path:  # (it was searched for as '', failing as ': no such file or folder')
            raise ValueError(f"{list_path}, line {line.number}: {line.tag} with no path before the tab: give the "
                             "file's path, then a tab and its polarity")  # fmt: skip
        if not line.path.startswith("@"):
            yield list_path, line
            continue
        real = os.path.realpath(line.path[1:])  # a list of lists
        if strict and real in within:
            raise ValueError(f"{list_path}, line {line.number}: {line.path} is a list this line is read from (itself, "
                             "or one that lists it): the lists would be read without end; list each once")  # fmt: skip
        if real not in seen:
            yield from _walk_list(line.path[1:], lists, seen, strict, within)


def _from_list(list_path: str, exclude: set[str], empty: list[str], lists: InputLists) -> list[InputFile]:
    """The entries of an ``@list`` (:func:`_walk_list`): a listed folder's images mirror their paths
    in it, a listed file its path (:func:`_listed_rel`). A listed folder without images is added to
    ``empty``, named by its line."""
    out = []
    for named_in, line in _walk_list(list_path, lists, set(), strict=True):
        if line is None:
            continue
        path, tag = line.path, line.tag
        found = _one_input(path, exclude, empty, f"{named_in}, line {line.number}: {path}", _listed_rel, tag)
        spaced = path.rsplit(None, 1)  # 'a.png  MONOCHROME1': spaces where the tab goes
        if (len(spaced) == 2 and spaced[1].upper() in LIST_PHOTOMETRICS and tag is None
                and not os.path.lexists(path)):  # (a real name with spaces in it exists, and is read as it is)
            capitals = "" if spaced[1].isupper() else f", and written {spaced[1].upper()}"  # (as the tab's tag is read)
            found = [replace(f, problem=f"no such file or folder; if {spaced[1]} is the polarity of "
                                        f"{spaced[0]}, it must be separated from the path by a tab, not spaces"
                                        f"{capitals}")
                     for f in found]  # fmt: skip
        elif not os.path.lexists(path) and (unexpanded := _shell_words_in(path)):
            found = [replace(f, problem=f"no such file or folder; {unexpanded}") for f in found]
        if not os.path.isdir(path):  # (the line's own file: where it is missing, the line is to mend)
            found = [replace(f, listed=f"{named_in}, line {line.number}") for f in found]
        out.extend(found)
    return out


def _shell_words_in(path: str) -> str | None:
    """What a listed path that does not exist holds that a shell would have turned into another path
    (no shell reads an @list): ``~``, ``$NAME`` (``%NAME%`` on Windows), quotes around it; None where
    it holds none."""
    if len(path) > 1 and path[0] in "'\"" and path[-1] == path[0]:
        return "an @list's lines are read as written, so the quotes around it are part of its name: remove them"
    expanded = os.path.expandvars(os.path.expanduser(path))
    if expanded == path:
        return None
    if os.path.expanduser(path) != path:
        what = "~ does not mean a home folder"
    else:  # the first variable set (Windows' expandvars expands %NAME% too; one it took another way: unnamed)
        name = next((m.group() for m in re.finditer(r"[$]\{[A-Za-z_]\w*\}|[$][A-Za-z_]\w*|%[\w-]+%", path)
                     if os.path.expandvars(m.group()) != m.group()), None)  # fmt: skip
        if name is None and not re.search(r"[$]\{[^}]*\}", path):  # (ntpath's %% and $$: one %, one $)
            return None
        what = f"{name or 'a variable'} is not expanded"
    return f"an @list's lines are read as written, not by a shell, so {what} there: write {expanded}"


def _one_input(path: str, exclude: set[str], empty: list[str], named: str, rel_of_file,
               tag: str | None = None) -> list[InputFile]:
    """The entries of one input given or listed: a folder's images (and the problems its search
    found; ``named`` goes into ``empty`` when it holds none), else the file, placed by
    ``rel_of_file(path)``; ``tag``: the polarity a list gives it."""
    _refuse_inside(path, exclude)
    if not os.path.isdir(path):
        return [InputFile(path, rel_of_file(path), tag)]
    found = _from_folder(path, exclude)
    if not found:
        empty.append(named)
    return found if tag is None else [replace(g, photometric=tag) for g in found]


_INPUTS_MUST_BE = "inputs must be a path (str or pathlib.Path) or a list of paths"


def list_files(inputs, lists: InputLists | None = None) -> list[str]:
    """The ``@list`` files (resolved) that ``inputs`` name, and those they name in turn: inputs of
    the job too, which a file it writes (a --report) must not replace. One that cannot be read
    is listed, the lists it would name not (:func:`discover` says why). ``lists``: the job's, read
    by its search."""
    return [os.path.realpath(named) for named, line in _lists_walked(inputs, lists) if line is None]


def _listed_paths(inputs, lists: InputLists | None) -> list[str]:
    """The paths the ``@lists`` of ``inputs`` (and the lists they name) give, but lists: as written."""
    return [line.path for _, line in _lists_walked(inputs, lists) if line is not None and line.path]


def _lists_walked(inputs, lists: InputLists | None):
    """:func:`_walk_list` over each ``@list`` of ``inputs`` in turn, leniently (the checks after the
    search), a list reached twice walked once: what the lists name, for the checks to pick from."""
    lists, seen = InputLists() if lists is None else lists, set()
    for item in input_paths(inputs):
        if item.startswith("@"):
            yield from _walk_list(item[1:], lists, seen, strict=False)


def input_paths(inputs) -> list[str]:
    """The inputs of a job as a list of str paths. One path given alone (a str, bytes or a
    ``pathlib.Path``) is one input: iterated, ``enhance_files("/data/cxr", out)`` searched "/",
    its first character, and a Path failed with "'PosixPath' object has no attribute 'startswith'"."""
    if isinstance(inputs, PATH_TYPES):
        inputs = [inputs]
    elif not isinstance(inputs, Iterable):
        raise not_a_path(inputs, _INPUTS_MUST_BE)
    return [os.fsdecode(fspath(item, _INPUTS_MUST_BE, in_list=True)) for item in list(inputs)]


def check_inputs(inputs: list[str]) -> None:
    """Raises :class:`NothingFound` (saying "no such file or folder") when none of the inputs
    given exists (a mistyped folder): the job has nothing to do and must not make its output
    folder. An ``@list`` file that exists counts as an input that does (its entries are the
    job's to report); one that does not is a ValueError naming it as the input list file."""
    inputs = input_paths(inputs)
    missing = 0
    for item in inputs:
        if item.startswith("@"):
            if not os.path.exists(item[1:]) or os.path.isdir(item[1:]):
                _read_list(item[1:])  # raises, saying what is wrong with it
        elif not os.path.exists(item):
            missing += 1
    if inputs and missing == len(inputs):
        raise NothingFound(inputs, missing=True)


def discover(inputs: list[str], exclude: list[str] = (), lists: InputLists | None = None,
             real_paths: RealPaths | None = None) -> list[InputFile]:  # fmt: skip
    """The input files of a job, in a stable order, without duplicates.

    When none of ``inputs`` exists, :class:`NothingFound` is raised (:func:`check_inputs`);
    otherwise a path that does not exist is still returned (as a file) so that the job reports it.
    A line of an ``@list`` may end with a tab and ``MONOCHROME1``: that PNG/JPEG file stores
    bone dark and is inverted on reading (``read_image(..., photometric=...)``). Relative
    paths in a list are taken from the current folder, as on the command line. Folders in
    ``exclude`` (a job's output folder inside an input folder) are not searched, and an input
    given in one of them is refused (ValueError). A folder given or listed without images in it,
    beside inputs that have some, is said in a UserWarning (a mistyped one of several folders).
    ``lists``: where the job keeps its ``@lists`` as read, for its checks after the search to use;
    ``real_paths``: the job's :class:`RealPaths`, for them to find the folders resolved.
    """
    inputs = input_paths(inputs)
    check_inputs(inputs)
    skip = {os.path.realpath(e) for e in exclude}
    lists = InputLists() if lists is None else lists
    out: list[InputFile] = []
    empty: list[str] = []  # the folders given or listed that hold no image, as named in a warning
    for item in inputs:
        if item.startswith("@"):
            out.extend(_from_list(item[1:], skip, empty, lists))
        else:
            out.extend(_one_input(item, skip, empty, item, os.path.basename))
    # one file reached twice (a link, another spelling) is one input: by its own path rather than a link's
    # (b/latest.png -> ../ward/a.png, found first, had ward/a.png's output at OUT/b/latest.png), as a link
    # to a folder inside is not followed; else by the first path reached. The polarity an @list gave either
    # path is kept (dropped, the image was enhanced with bone and air swapped); two different ones are refused
    real = RealPaths() if real_paths is None else real_paths
    keys = [real(f.path) for f in out]
    chosen: dict[str, int] = {}  # the index in out of the path kept for each file
    tags: dict[str, InputFile] = {}  # the first of its paths given a polarity
    for index, (key, f) in enumerate(zip(keys, out)):
        first = out[chosen.setdefault(key, index)]
        if chosen[key] != index and os.path.islink(first.path) and not os.path.islink(f.path):  # (found twice only)
            chosen[key] = index
        if f.photometric:
            tagged = tags.setdefault(key, f)
            if tagged.photometric != f.photometric:
                raise ValueError(f"{tagged.path} and {f.path} are one file ({key}), listed as "
                                 f"{tagged.photometric} and as {f.photometric}: give it one polarity")  # fmt: skip
    unique = [replace(f, photometric=tags[key].photometric) if key in tags else f
              for index, (key, f) in enumerate(zip(keys, out)) if chosen[key] == index]  # fmt: skip
    for where in empty if unique else ():  # (none found anywhere: the caller's NothingFound names them all)
        warnings.warn(f"{where}: no image files found in it ({IMAGE_KINDS}); left out", UserWarning, stacklevel=2)
    return unique


def read_input(f: InputFile, **kwargs):
    """``read_image`` of an input as discovered: with its listed polarity, and failing with its
    problem where discovery found one (a folder that cannot be searched). A listed file that is
    not there says the list and line that name it: in a list of thousands, the path alone left
    the line to mend to be searched for."""
    from xvertfast.io.read import read_image

    try:
        if f.problem:
            raise ImageReadError(f.path, f.problem)
        return read_image(f.path, photometric=f.photometric, **kwargs)
    except ImageReadError as exc:
        if f.listed is None or os.path.exists(f.path) or exc.path != f.path:
            raise
        # (a hint discovery added follows "; ": the list and line go before it; elsewhere at the end,
        # since the reader's own "; " may be inside a file name: a link to "old; v2.png")
        said, _, more = exc.problem.partition("; ") if f.problem else (exc.problem, "", "")
        raise ImageReadError(f.path, f"{said} ({f.listed}){'; ' if more else ''}{more}") from None


def input_problem(f: InputFile) -> str | None:
    """Why a run would fail ``f`` without decoding it, in the reader's own words (a dry run says
    so): missing, a broken link, a folder that could not be searched, an empty file. None
    otherwise (a file that cannot be decoded shows only when a run reads it)."""
    from xvertfast.io.errors import FILE_ERRORS, failure_text

    try:
        if f.problem is None and os.path.isfile(f.path) and os.path.getsize(f.path) > 0:
            return None
        read_input(f, warn=False)  # (fails at once on each of these, before any decoding)
    except FILE_ERRORS as exc:
        return failure_text(f.path, exc)
    return None


def output_path(out_dir: str, rel: str, suffix: str) -> str:
    """``out_dir/<rel without its image extension><suffix>``; raises ValueError if it would leave
    out_dir. Only an image extension is replaced: 1.2.840.5.320 becomes 1.2.840.5.320.dcm, so
    the files of a UID-named series do not all map to 1.2.840.5.dcm."""
    ext = image_extension(rel)
    stem = rel[: len(rel) - len(ext)]
    root = os.path.abspath(out_dir)
    path = os.path.abspath(os.path.join(root, stem + suffix))
    if os.path.commonpath([root, path]) != root:
        raise ValueError(f"output for {rel!r} would be written outside {out_dir}")
    return path


def collision_remedy(path: str, other: str) -> str:
    """What to do where ``path``'s output is also ``other``'s: files of one folder whose names differ
    only in their image extension (x.dcm, x.png) cannot be told apart by a listing, inputs of one
    name in two folders can."""
    if os.path.dirname(os.path.realpath(path)) == os.path.dirname(os.path.realpath(other)):
        return ("the two differ only in their extension, which the output's replaces: rename one, or give "
                "them separate output folders")  # fmt: skip
    return ("outputs keep the paths below each folder given: give the folder above both, or list the files "
            "in an @list.txt, which keeps their paths as written")  # fmt: skip


def same_file(path: str, other: str) -> bool:
    """Whether ``path`` and ``other`` name one file now, however each is reached (a link, a hard
    link), False where either is missing: a job's output found to be its input as it is when
    written, not as its links were when the job planned. Where a file system gives every file
    the inode 0 (sshfs-win, some SMB and WebDAV mounts), which would make any two files one, the
    paths with their links resolved are compared instead (a hard link then counts as another file),
    and two spellings in other cases (A.PNG, a.png) by :func:`_one_spelling`."""
    return first_same_file(path, [other]) is not None


def replaced_path(path: str) -> str:
    """The file ``os.replace`` (so :func:`~xvertfast.io.write.atomic_write`) replaces at ``path``:
    its folder resolved, its own name kept (a link there is replaced itself, not followed)."""
    whole = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(whole)), os.path.basename(whole))


def another_name(path: str, target: str) -> str | None:
    """How ``path``, found to be ``target``'s file, is only another name of it, which ``os.replace``
    at ``path`` replaces, leaving the file as it is under ``target``: "a link" (symbolic, there) or
    "a hard link"; None where it is the file's own name (or that name in another case, where the
    file system ignores case), so that a write there overwrites the file. Lets a refusal say which."""
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    if stat.S_ISLNK(st.st_mode):
        return "a link"
    # (another spelling of its own name is that name only where the folder lists one of them, as
    # same_file tells: on a file system that keeps case, in/A.png linked to in/a.png is another name)
    mine, its = replaced_path(path), os.path.realpath(target)
    if st.st_nlink > 1 and os.path.normcase(mine) != os.path.normcase(its) and not (
            mine.casefold() == its.casefold() and _one_spelling(mine, its)):  # fmt: skip
        return "a hard link"
    return None


def first_same_file(path: str, others: Iterable[str], replaced: bool = False) -> str | None:
    """The first of ``others`` that is ``path``'s file now, by :func:`same_file`'s rule, ``path``
    looked at once: a job's --report checked against its inputs as they are when it is written,
    not as its links were when the job started. None where none is, or ``path`` is missing.
    ``replaced``: ``path`` is to be replaced (os.replace, as atomic_write does), which replaces a
    link there, not the file it leads to: such a link is only the same file as itself, named
    among ``others`` or on the way of one's chain of links (:func:`_through`) (a link in a folder
    above it is followed, as os.replace follows it)."""
    try:
        st = os.lstat(path) if replaced else os.stat(path)
    except (OSError, ValueError):  # (ValueError: a NUL in a path)
        return None
    as_named = stat.S_ISLNK(st.st_mode)  # (only where replaced: os.stat follows links)

    def resolved(p: str) -> str:  # (a link replaced as named: its folder resolved, not itself)
        if as_named:
            return replaced_path(p)
        return os.path.realpath(p)

    real = None  # (resolved once, where inodes are 0)

    def is_path(other: str, other_st: os.stat_result) -> bool:
        nonlocal real
        if st.st_ino == 0 or other_st.st_ino == 0:
            real = resolved(path) if real is None else real
            other_real = resolved(other)
            return os.path.normcase(real) == os.path.normcase(other_real) or (
                real.casefold() == other_real.casefold() and _one_spelling(real, other_real))
        return os.path.samestat(st, other_st)

    for other in others:
        try:
            other_st = os.lstat(other) if as_named else os.stat(other)
        except (OSError, ValueError):
            continue
        if is_path(other, other_st) or (as_named and _through(other, other_st, is_path)):
            return other
    return None


def _through(other: str, other_st: os.stat_result, is_path) -> bool:
    """Whether the chain of links ``other`` is passes through the link ``is_path`` tells: replacing
    that link changes what ``other`` reads (an input in2/q.png -> ../look.png, look.png -> real.png,
    is the sheet once --preview look.png replaces look.png). A chain too long to follow counts as
    passing through it: the callers then refuse, which is safe."""
    hop = other
    for _ in range(40):  # (the kernel's own limit on links followed)
        if not stat.S_ISLNK(other_st.st_mode):
            return False
        try:
            # (realpath, not abspath, of the folder: a `..` after a folder link is taken as the kernel takes it)
            hop = os.path.join(os.path.realpath(os.path.dirname(hop)), os.readlink(hop))
            other_st = os.lstat(hop)
        except (OSError, ValueError):  # (a link to nowhere: its chain ends there)
            return False
        if is_path(hop, other_st):
            return True
    return True


def _one_spelling(real: str, other: str) -> bool:
    """Whether two existing resolved paths that differ only in case name one file where inodes say
    nothing: realpath keeps the case as given off Windows, so on a mount that ignores case (SMB from
    Linux, macOS) OUT/A.PNG and OUT/a.png were two files, the input written over. Each folder whose
    entry is spelled two ways is listed: one that ignores case lists one of them, one that does not
    holds both (each was found). Where a folder cannot be listed they count as one: every caller
    then refuses to write or remove, which is safe."""
    parts, other_parts = real.split(os.sep), other.split(os.sep)  # (as many: casefold makes or drops no separator)
    for k, (name, other_name) in enumerate(zip(parts, other_parts)):
        if name == other_name:
            continue
        try:
            listed = set(os.listdir(os.sep.join(parts[:k]) + os.sep))  # (/ for the root, C:\ for a drive)
        except OSError:
            return True
        if name in listed and other_name in listed:
            return False
    return True


def file_state(path: str) -> list[int] | None:
    """A file's size and modification time (ns), or None where it is missing: what a resumed job
    compares to know that a file is unchanged since it was used."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class RealPaths:
    """``os.path.realpath`` of many paths, each folder resolved once: the job's own resolves (its
    inputs, their outputs, each input as the ledger names it) lstat every folder on a path: a resume
    of a 5000-image archive 7 folders deep spent 1.9 s of it there under cProfile; timed without the
    profiler, a resume took 1.95 s before, 1.26 s after (an NFS share pays a round trip for each lstat).
    A path's last part is still looked at each time (a link to a file is followed); its folders are
    taken as they were first resolved, so one object serves one job, not a process. A link on an
    input's folder path switched during the job (a nightly ``current -> 2026-12-06`` swap) keeps its
    old target for that job's object, which an enhance job resolves its inputs with when it searches
    them (two paths of one file), leaves the --report its run before wrote out of them, checks that
    --report and --preview are none of them, and names them in the ledger (a preprocess job: searches
    them and names them in the ledger). The inputs are still read by their paths as given; the ledger
    names them under the old target, and the next run, resolving the new one, refuses their outputs
    without --overwrite, naming the input recorded ('holds the output of another input'); a report or
    preview is checked again as it is written, and left unwritten where the swap has made it an input
    or an output. The plan resolves the inputs afresh, after the model has loaded, and an output that
    a later swap makes the input itself is refused when written, not removed. These are the
    Linux/POSIX semantics of links and lstat, the ones the package is built for."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}  # a folder as spelled -> its real path

    def __call__(self, path: str) -> str:
        path = os.fspath(path)
        folder, name = os.path.split(path)
        if name in ("", os.curdir, os.pardir):  # (a '..' is taken after the links before it: realpath's rule)
            return os.path.realpath(path)
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = self._folders[folder] = os.path.realpath(folder)
        joined = os.path.join(real_folder, name)
        try:
            if not stat.S_ISLNK(os.lstat(joined).st_mode):
                return joined
        except OSError:  # (missing, or not reachable: kept as spelled, as realpath does)
            return joined
        return os.path.realpath(joined)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks: the identity of an input for caches.
    A named pipe, socket or device is refused (ImageReadError, as read_image says it) without
    waiting: opened for reading, a pipe would wait for a writer for ever."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ImageReadError(path, "not a regular file (a named pipe, socket or device)")
        h = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
