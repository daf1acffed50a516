"""Writing results: 16/8-bit PNG, float TIFF and derived DICOM, atomically and never over an input.

Every file is first written under a temporary name in the destination folder
and renamed into place only when complete, so an interrupted run leaves no
partial output (and a resumed batch can trust any output it finds).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import errno
import hashlib
import io
import os
import stat
import struct
import tempfile
import uuid

import numpy as np

from xvertfast._paths import PATH_TYPES
from xvertfast._pixels import describe_non_array, not_finite, shape_hint
from xvertfast._text import from_cli
from xvertfast._version import __version__
from xvertfast.io.decode_common import PNG_DEPTH_KEYWORD
from xvertfast.io.errors import ImageWriteError, WarningsNamingTheFile
from xvertfast.io.files import image_extension, same_file
from xvertfast.io.radiograph import Radiograph
from xvertfast.io.read import sniff_format

__all__ = ["write_image", "WRITE_FORMATS", "FORMAT_EXTENSIONS", "EXTENSION_FORMATS", "same_format",
           "same_format_extension", "format_from_path", "atomic_write", "replace_in", "nearest_existing",
           "why_not_made", "link_to_nowhere", "remove_stale_parts", "disk_full", "outputs_lost", "OutputFolderMoved", "FOLDER_MOVED", "listed_in",
           "resumes_once", "DISK_FULL", "READ_ONLY",
           "name_too_long", "output_name_refusal", "derived_series_uid"]

#: png16: 16-bit PNG at the source's bit depth (0..2^bits - 1, which a text chunk records); png8;
#: tiff: float32 in [0, 1]; dicom: a derived DICOM image at the source's bit depth.
WRITE_FORMATS = ("png16", "png8", "tiff", "dicom")
#: The file extension each format is written with.
FORMAT_EXTENSIONS = {"png16": ".png", "png8": ".png", "tiff": ".tiff", "dicom": ".dcm"}
#: zlib level of PNG outputs. Pillow's default, 6, took 1.7-2.3x as long to encode an enhanced
#: 1024^2 radiograph, for files 2% smaller (16-bit) or 0.4-0.8% larger (8-bit): about 7% of an
#: image's CPU time in `xvertfast enhance` (bench/RESULTS.md, 2026-12-05; bench/png_levels.py).
PNG_COMPRESS_LEVEL = 4


#: The formats each image extension may hold: a file named for another kind is refused
#: (``write_image("x.png", px, "tiff")`` wrote a TIFF named .png). xvertfast writes no JPEG.
#: Other names (a temporary ``NAME.part``, ``.img``, none) take any format.
EXTENSION_FORMATS = {".png": ("png16", "png8"), ".tif": ("tiff",), ".tiff": ("tiff",), ".dcm": ("dicom",),
                     ".dicom": ("dicom",), ".jpg": (), ".jpeg": ()}  # fmt: skip


def same_format(path: str) -> str:
    """The format ``--format same`` gives the output of the input ``path``, by its content as the
    reader decides it (:func:`~xvertfast.io.read.sniff_format`: an extensionless TIFF, a DICOM file
    named .IMG): a TIFF's or DICOM's its own, any other's png16 (a PNG's depth is decided at write
    time). Where the content cannot be read, the name decides (the read then fails, named):
    .tif/.tiff, .dcm/.dicom, and none (a UID-named DICOM file, 1.2.840....320)."""
    content = sniff_format(path)
    if content is None:
        ext = image_extension(path).lower()
        content = {".tif": "tiff", ".tiff": "tiff", ".dcm": "dicom", ".dicom": "dicom", "": "dicom"}.get(ext)
    return content if content in ("tiff", "dicom") else "png16"


def same_format_extension(path: str, fmt: str) -> str:
    """The extension of the input ``path``'s output in ``fmt`` under ``--format same``:
    :data:`FORMAT_EXTENSIONS`'s, but a TIFF keeps its own spelling (x.tif -> x.tif)."""
    ext = image_extension(path).lower()
    return ext if fmt == "tiff" and ext in (".tif", ".tiff") else FORMAT_EXTENSIONS[fmt]


def _check_extension(path: str, fmt: str) -> None:
    """ValueError naming the file, ``fmt`` and the extension where the extension names another
    kind of image: a reader (and xvertfast's own) trusts the name, and another tool refuses the file."""
    ext = os.path.splitext(path)[1]
    allowed = EXTENSION_FORMATS.get(ext.lower())
    if allowed is None or fmt in allowed:
        return
    holds = f"is for {' or '.join(allowed)}" if allowed else "names a format xvertfast does not write"
    right = FORMAT_EXTENSIONS[fmt] + (" (or .tif)" if fmt == "tiff" else "")
    raise ValueError(f"{path}: fmt {fmt!r} contradicts the extension {ext!r}, which {holds}; give the file the "
                     f"extension {right} for {fmt}{f', or pass fmt= ' + ' or '.join(allowed) if allowed else ''}")  # fmt: skip


def format_from_path(path: str) -> str:
    """The format a file is written in when none is given: the first its extension may hold
    (:data:`EXTENSION_FORMATS`: .png is png16); ImageWriteError naming the file for any other."""
    ext = os.path.splitext(path)[1].lower()
    allowed = EXTENSION_FORMATS.get(ext)
    if allowed:
        return allowed[0]
    if allowed is not None:  # (.jpg: fmt= would be refused as contradicting it)
        raise ImageWriteError(path, f"xvertfast writes no {ext!r} files; give the file the extension of one of its "
                              f"formats ({', '.join(f'{e} {fmt}' for fmt, e in FORMAT_EXTENSIONS.items())})")  # fmt: skip
    raise ImageWriteError(path, f"cannot tell the output format from the extension {ext!r}; "
                          f"pass fmt= one of {', '.join(WRITE_FORMATS)}")  # fmt: skip


def _output_bits(like: Radiograph | None) -> int:
    if like is None or not 1 <= like.bits_stored <= 16:
        return 16
    return max(8, like.bits_stored)


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give (0o666 less the umask): mkstemp's 0o600
    would make outputs unreadable to the rest of a lab sharing an archive."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


#: The longest file name most file systems take, in bytes (ext4, XFS, Btrfs, ZFS; NTFS's 255 UTF-16 units).
NAME_MAX = 255

#: What a temporary of :func:`atomic_write` adds to the name it stands for: '.', '.', mkstemp's 8 random
#: characters and '.part'.
_PART_EXTRA = len("..") + 8 + len(".part")


def name_too_long(path: str) -> int | None:
    """The length in bytes of ``path``'s file name where it is over :data:`NAME_MAX` (None: it fits), so
    that a caller refuses it by its reason before any work, not with the system's bare 'File name too long'
    at the write (an input named by a 253-byte UID, '.dcm' added, has an output name of 257 bytes). Only
    where the input's own name fits: exFAT, FAT, SMB and HFS+ hold 255 UTF-16 units, more bytes than that
    where a name is not ASCII, and an input's longer name shows that its file system holds such names."""
    size = len(os.fsencode(os.path.basename(path)))
    return size if size > NAME_MAX else None


def output_name_refusal(input_path: str, rel: str, outputs: dict[str, str]) -> str | None:
    """Why an input is refused as its job is planned where the name of one of its ``outputs`` (each
    output's path -> the ending it gives the input's name) would pass :data:`NAME_MAX` bytes, naming the
    longest: read and processed, it failed at the write with a bare '[Errno 36]' naming a temporary. None
    where they fit, or where the input's own name is as long (:func:`name_too_long`). ``rel``: the input's
    path below the output folder, whose image extension, where it has one, the ending replaces. The rule
    of enhance's plan and preprocess's, in their words."""
    if name_too_long(input_path) is not None:
        return None
    sizes = {out: size for out in outputs if (size := name_too_long(out)) is not None}
    if not sizes:
        return None
    longest = max(sizes, key=sizes.get)
    how = "in place of the extension of" if image_extension(rel) else "added to"
    return (f"its output's name would be {sizes[longest]} bytes long ({outputs[longest]} {how} the input's name), "
            f"more than the {NAME_MAX} a file name may have; give the input a shorter name")  # fmt: skip


def _part_stem(name: str) -> str:
    """The copy of ``name`` a temporary of :func:`atomic_write` carries (``.STEM.<random>.part``): the name
    itself, or where that would pass :data:`NAME_MAX` (a name of 241 bytes or more failed its write with
    'File name too long', though the name itself fits) its first bytes, cut at a whole character, and
    '~' and 12 hex digits of the whole name's SHA-256: two long names that begin alike get other stems,
    so that a shard's :func:`remove_stale_parts` at its start does not take another's live temporary."""
    if len(os.fsencode(name)) + _PART_EXTRA <= NAME_MAX:
        return name
    digest = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    stem = name
    while stem and len(os.fsencode(stem + digest)) + _PART_EXTRA > NAME_MAX:  # (a character at a time: never half)
        stem = stem[:-1]
    return stem + digest


@contextlib.contextmanager
def atomic_write(path: str):
    """Yields a temporary path in path's folder; renames it to path on success, removes it on failure."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{_part_stem(os.path.basename(path))}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        _flush_to_disk(tmp)  # the data before the name: after a power loss no empty file has the final name
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def replace_in(folder_fd: int, name: str, data: bytes) -> None:
    """``data`` put in place as ``name`` in the folder open as ``folder_fd``, as :func:`atomic_write`
    puts a file at a path (a temporary of its name, flushed, then renamed over it): in that folder,
    wherever its path leads by then (a batch job's settings, in the folder it holds)."""
    tmp = f".{_part_stem(name)}.{os.urandom(4).hex()}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _file_mode(), dir_fd=folder_fd)
    try:
        with open(fd, "wb") as f:
            f.write(data)
            f.flush()
            with contextlib.suppress(OSError):  # (as _flush_to_disk: a file system without fsync)
                os.fsync(fd)
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        raise


def _flush_to_disk(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system without fsync (some network mounts): the rename is still atomic
        pass
    finally:
        os.close(fd)


def disk_full(exc: BaseException) -> bool:
    """No space, or the user's quota is spent: a batch job stops, as every later output would
    fail the same way."""
    full = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    return getattr(exc, "errno", None) in full or any(s in str(exc) for s in ("No space left", "quota exceeded"))


class OutputFolderMoved(ImageWriteError):
    """An output not written because its job's output folder, by the path given, now leads to
    another folder than the one the job holds (its lock and ledger): a link swapped, or the folder
    renamed and another made in its place. Every later output would go there too, beside another
    job's, so the job stops (:func:`outputs_lost`).

    ``resume``: what writes the rest (give -o, or out_dir=, the folder it holds: :func:`command_resumes`),
    which the job's summary says in place of "the same command resumes": run again, that command would
    write into the folder there now."""

    resume: str | None = None


#: why a job stopped at an :class:`OutputFolderMoved` (its ledger's stop: status gives -o the folder it read)
FOLDER_MOVED = "the output folder now leads elsewhere (a link changed, or the folder moved, during the job)"


#: why a batch job stopped at a full disk, and at a file system gone read-only (:func:`outputs_lost`)
DISK_FULL, READ_ONLY = "the disk is full", "the output folder's file system is read-only"


def resumes_once(why: str | None) -> str:
    """", once the disk has room": what must change before the command that resumes a job stopped for
    ``why`` can write, for the end of a line that gives that command; "" where nothing must. A job the
    full disk stopped was told only that the same command resumes it, which, run at once, stops again.
    ``why`` is a stop below, or ends with one in brackets: "its log could not be written (the disk is
    full)" (:class:`~xvertfast.io.job_folder.JobLog`'s, whose log file found the disk full); either
    may be followed by " while planning", as an enhance job's ledger records a stop before its first
    image (status gave its command without the room it needs)."""
    why = why.removesuffix(" while planning") if why is not None else None
    for stop, once in ((DISK_FULL, "the disk has room"), (READ_ONLY, "the folder is writable again")):
        if why is not None and (why == stop or why.endswith(f" ({stop})")):
            return f", once {once}"
    return ""


def command_resumes(command: str | None) -> bool:
    """Whether a batch job is run again by a command, not a Python call: the CLI ran it, or the caller
    gave the ``command`` that started it (status gives it). What the job says to do then names the
    command (and its -o), else the function (and its out_dir): :func:`resumed_by`, and
    :attr:`OutputFolderMoved.resume`."""
    return command is not None or from_cli()


def resumed_by(command: str | None, call: str, *, does: str = "resumes", to: str = "resume") -> str:
    """How a stopped batch job is resumed, in its caller's words (:func:`command_resumes`), for its
    stop line: "the same command resumes", else "call ``call`` again the same way to resume": a Python
    caller was told of a command it never ran. ``does`` and ``to``: what the run again does, where not
    resume, in both forms (does="writes them", to="write them"): given, not made by adding an s."""
    if command_resumes(command):
        return f"the same command {does}"
    return f"call {call} again the same way to {to}"


def outputs_lost(exc: BaseException) -> str | None:
    """Why every later output of a batch job would fail as this write did, so that the job stops
    rather than read and process the rest of the archive for nothing: a full disk, or a file system
    that is read-only (remounted so after an error, a snapshot), or an output folder that now leads
    elsewhere. None: only this output may fail so (a folder refused by its permissions may be one
    of many)."""
    if disk_full(exc):
        return DISK_FULL
    if getattr(exc, "errno", None) == errno.EROFS:
        return READ_ONLY
    if isinstance(exc, OutputFolderMoved):
        return FOLDER_MOVED
    return None


def nearest_existing(path: str) -> str:
    """``path`` made absolute, or the nearest folder above it that exists: where making it (and the
    folders up to it) would write, which a dry run or a check before a long job asks about."""
    there = os.path.abspath(path)
    while not os.path.lexists(there) and os.path.dirname(there) != there:
        there = os.path.dirname(there)
    return there


def why_not_made(folder: str, exc: OSError) -> str:
    """Why ``folder`` could not be made (``exc``, makedirs' error): :func:`link_to_nowhere`'s words
    where it applies, else the error's."""
    return link_to_nowhere(folder) or exc.strerror or str(exc)


def link_to_nowhere(folder: str, instead: str = "give the output folder itself") -> str | None:
    """Where ``folder`` (or the nearest part of its path that exists) is a link to a folder that does
    not exist (-o latest, made before the folder it is to point at), that said, with what to do
    (make that folder, or ``instead``): makedirs said only 'File exists' (or, for a folder below it,
    'No such file or directory'). A link that loops (``ln -s loop loop``, a -> b -> a), or one whose
    path runs through a file (-> scan.png/sub), is said so: no folder made would mend it. None where
    it is not."""
    there = nearest_existing(folder)
    if not os.path.islink(there) or os.path.exists(there):
        return None
    target = os.path.realpath(there)  # (not strict: where it would lead, its missing part included)
    try:
        os.path.realpath(there, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            looping = _looping_link(there)
            if looping is None:
                return (f"{there} is a link that loops back on itself (a link to itself, or a -> b -> a), leading to "
                        f"no folder: remove or re-point it, or {instead}")  # fmt: skip
            return (f"{there} is a link to {target}, which leads through a link that loops ({looping}: a link to "
                    f"itself, or a -> b -> a), leading to no folder: re-point one of them, or {instead}")  # fmt: skip
        if exc.errno == errno.ENOTDIR:
            block = nearest_existing(target)
            what = "a file" if os.path.isfile(block) else "not a folder"
            return (f"{there} is a link to {target}, which cannot be made: {block} is {what}: re-point the link, or "
                    f"{instead}")  # fmt: skip
        if exc.errno != errno.ENOENT:
            return f"{there} is a link to {target}, which cannot be reached ({exc.strerror or exc}): {instead}"
    return f"{there} is a link to {target}, which does not exist: make that folder first, or {instead}"


def _looping_link(there: str, most: int = 40) -> str | None:
    """Where the links followed from ``there`` (a link the kernel found looping) loop without
    coming back to it (vialoop -> loop/x, loop -> loop), the first link met twice: the one to
    re-point, not ``there``. None where the loop comes back to ``there`` (or cannot be told), as
    ``ln -s latest latest`` or latest -> prev -> latest. Followed as the kernel does: each part of
    the path in turn, a link's text in its place, '..' from the folder reached."""
    try:
        own = os.lstat(there)
        pending = os.readlink(there).split(os.sep)
    except OSError:
        return None
    key = (own.st_dev, own.st_ino)
    folder = "/" if pending[0] == "" else os.path.dirname(os.path.abspath(there))
    met: set[tuple[int, int]] = set()
    while pending and len(met) <= most:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            folder = os.path.dirname(folder)
            continue
        path = os.path.join(folder, part)
        try:
            st = os.lstat(path)
            if not stat.S_ISLNK(st.st_mode):
                folder = path
                continue
            text = os.readlink(path)
        except OSError:
            return None
        if (st.st_dev, st.st_ino) == key:
            return None  # (back to there: it loops itself)
        if (st.st_dev, st.st_ino) in met:
            return path
        met.add((st.st_dev, st.st_ino))
        if text.startswith(os.sep):
            folder = "/"
        pending[:0] = text.split(os.sep)
    return None


def remove_stale_parts(outputs, held: tuple[int, str] | None = None) -> int:
    """Removes the temporaries (``.<name>.<random>.part``) that a killed run's :func:`atomic_write`
    left for any of ``outputs``; returns how many. Each folder is listed once, so planning a job
    of N outputs in one folder costs O(N), not O(N^2) (a per-file glob lists the folder again
    for every file: minutes for 20 000 outputs). ``held``: (an fd of the job's output folder, its
    path as given), for the temporaries in the folder the job holds, wherever its path leads now:
    removed by their paths after the folder was swapped (``ln -sfn c2 latest``), they were the live
    temporaries of the job writing c2, whose outputs then failed."""
    wanted: dict[str, set[str]] = {}
    for out in outputs:
        folder, name = os.path.split(os.path.abspath(out))
        wanted.setdefault(folder, set()).add(_part_stem(name))  # (as the temporary names it)
    removed = 0
    for folder, names in wanted.items():
        where = folder if held is None else os.path.relpath(folder, os.path.abspath(held[1]))
        try:
            entries = listed_in(where, held)
        except OSError:  # not created yet: nothing stale in it
            continue
        for entry in entries:
            if not (entry.startswith(".") and entry.endswith(".part")):
                continue
            target = entry[1:].rsplit(".", 2)[0]  # mkstemp's random part has no dot
            if target in names:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(where, entry), dir_fd=None if held is None else held[0])
                    removed += 1
    return removed


def listed_in(folder: str, held: tuple[int, str] | None) -> list[str]:
    """The names in ``folder``; with ``held`` (see :func:`remove_stale_parts`; a job's folder: its
    ledgers, :mod:`~xvertfast.io.job_folder`), ``folder`` is relative to the folder held, listed
    through a readable fd of it (the held one may be O_PATH)."""
    if held is None:
        with os.scandir(folder) as entries:
            return [entry.name for entry in entries]
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0), dir_fd=held[0])
    try:
        with os.scandir(fd) as entries:
            return [entry.name for entry in entries]
    finally:
        os.close(fd)


#: How far outside [0, 1] the pixels may reach and still be clipped to it (an overshoot of a
#: filter or of rounding); further out they are on another scale: stored values (0..4095),
#: 0..255 floats, which clipping would turn into a near-binary image without a word.
CLIP_SLACK = 0.5


def _real_dtype(pixels, path: str) -> np.dtype:
    """The dtype of what is not a tensor, refused where it holds no real numbers: a Radiograph, None
    and a path were "got object: scale stored values by their range first", and a list of images
    of different sizes NumPy's "setting an array element with a sequence", naming no file."""
    said = "pixels must be floats in [0, 1] (as xvertfast.io.read_image gives them)"
    if isinstance(pixels, (Radiograph, *PATH_TYPES)):
        like = " (and like=it, to write at its depth)" if isinstance(pixels, Radiograph) else ""
        raise TypeError(f"{path}: {said}, got {describe_non_array(pixels)}{like}")
    try:
        kind = np.asarray(pixels).dtype
    except ValueError:
        raise TypeError(f"{path}: pixels must be one [H, W] image, got a {type(pixels).__name__} that NumPy cannot "
                        "make one array of: write one image at a time") from None  # fmt: skip
    if kind.kind == "O":
        got = "a NumPy array of object" if isinstance(pixels, np.ndarray) else describe_non_array(pixels)
        raise TypeError(f"{path}: {said}, got {got}")
    if kind.kind not in "biuf":
        raise TypeError(f"{path}: {said}, got {kind}")
    return kind


def _to_unit(pixels, path: str) -> np.ndarray:
    if hasattr(pixels, "detach"):  # a torch tensor (bfloat16 has no NumPy dtype)
        if pixels.device.type == "meta":
            raise ValueError(f"{path}: pixels are on the meta device, which holds no values")
        floating, kind = pixels.dtype.is_floating_point, str(pixels.dtype).replace("torch.", "")
        pixels = pixels.detach().cpu().double() if floating else pixels
        if pixels.is_complex():
            raise TypeError(f"{path}: pixels must be floats in [0, 1] (as xvertfast.io.read_image gives them), got {kind}")
    else:
        kind = _real_dtype(pixels, path)
        floating = kind.kind == "f"
    if not floating:
        raise TypeError(f"{path}: pixels must be floats in [0, 1] (as xvertfast.io.read_image gives them), got "
                        f"{kind}: scale stored values by their range first")  # fmt: skip
    arr = np.asarray(pixels, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{path}: pixels must be [H, W], got shape {arr.shape}{shape_hint(arr.shape)}")
    if not arr.size:  # (PNG: Pillow's "cannot write empty image"; TIFF and DICOM wrote a file of 0 rows)
        raise ValueError(f"{path}: pixels are empty (shape {arr.shape[0]} x {arr.shape[1]}): there is no image to write")
    if not np.isfinite(arr).all():
        raise ValueError(not_finite(path, int((~np.isfinite(arr)).sum())))
    if arr.min() < -CLIP_SLACK or arr.max() > 1 + CLIP_SLACK:
        raise ValueError(f"{path}: pixels must lie in [0, 1] (values a little outside are clipped), got values from "
                         f"{arr.min():g} to {arr.max():g}: another scale? xvertfast.io.read_image gives [0, 1]")  # fmt: skip
    return np.clip(arr, 0.0, 1.0)


def _ascii(text: str) -> str:
    """TIFF tags and the DICOM default character set are 7-bit ASCII: other characters as \\x.. escapes."""
    return text.encode("ascii", "backslashreplace").decode("ascii")


#: Type 2 attributes of the Secondary Capture image's modules (patient, study, series, image):
#: a conformant file has them, empty where nothing is known.
_SC_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
             "ReferringPhysicianName", "StudyID", "AccessionNumber", "InstanceNumber", "PatientOrientation")  # fmt: skip


def _defined_charset(value):
    """The source's SpecificCharacterSet as a DICOM defined term: a vendor's single misspelt term
    that pydicom reads by its codec ('ISO-8859-1', 'latin_1', 'UTF-8', 'ISO IR 100') becomes the
    term of the codec pydicom writes the copied text in ('ISO_IR 100', 'ISO_IR 192'), not an
    invalid CS value that another toolkit may not decode. A term pydicom does not know (it writes
    its default then), an ISO 2022 set, several terms and Shift_JIS (its kanji are more than
    ISO_IR 13 holds) stay as they are."""
    import codecs
    import warnings

    from pydicom.charset import convert_encodings, default_encoding, python_encoding

    if not isinstance(value, str) or value in python_encoding:
        return value
    with warnings.catch_warnings():  # told once already, naming the source, as the header was read
        warnings.simplefilter("ignore")
        codec = convert_encodings([value])[0]
    if codec == default_encoding:  # not recognised: no telling what it meant
        return value
    try:
        name = codecs.lookup(codec).name
    except LookupError:
        return value
    for term, python in python_encoding.items():
        # ISO_IR 13 (JIS X 0201's katakana, which pydicom reads as Shift_JIS) only for a misspelling
        # of it ('ISO-IR 13'): a 'SHIFT_JIS' name's kanji (two bytes each) it cannot hold
        jis_x_0201 = term != "ISO_IR 13" or "".join(filter(str.isalnum, value.upper())) == "ISOIR13"
        if python != default_encoding and not term.startswith("ISO 2022") and jis_x_0201 \
                and codecs.lookup(python).name == name:  # fmt: skip
            return term
    return value


#: Transfer syntaxes that are always lossy: JPEG baseline and extended, JPEG XL's recompressed
#: JPEG, MPEG-2/4 and HEVC. JPEG 2000 (.91), HTJ2K, JPEG XL and JPEG-LS near-lossless may be
#: lossless: for them the source's LossyImageCompression says.
_LOSSY_SYNTAXES = frozenset(["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.111"]
                            + [f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)])  # fmt: skip


def _lossy_history(src) -> bool:
    """Whether the source's pixels were ever lossy compressed, so its derived image must say so too
    (PS3.3 C.7.6.1.1.5: once LossyImageCompression is 01 it is never reset)."""
    syntax = getattr(getattr(src, "file_meta", None), "TransferSyntaxUID", None)
    return str(src.get("LossyImageCompression", "")).strip() == "01" or str(syntax or "") in _LOSSY_SYNTAXES


#: What says how large a pixel is: true of the output only on the source's own pixel grid (the
#: spacings, what PixelSpacing was calibrated by, a scanned film's spacing, and the magnification
#: that takes ImagerPixelSpacing to the patient).
_SPACING = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing", "PixelSpacingCalibrationType",
            "PixelSpacingCalibrationDescription", "EstimatedRadiographicMagnificationFactor")  # fmt: skip

#: What a derived image keeps of its source beside the pixel size: who and what (patient, study,
#: view), and what is still true of the enhanced pixels: their text and faces are still there (a
#: de-identification pipeline decides by BurnedInAnnotation whether to scrub pixels).
_KEPT = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID", "StudyDate",
         "StudyTime", "StudyID", "AccessionNumber", "StudyDescription", "ReferringPhysicianName", "Modality",
         "BodyPartExamined", "ViewPosition", "FrameOfReferenceUID", "InstanceNumber", "PatientOrientation",
         "ImageLaterality", "Laterality", "BurnedInAnnotation", "RecognizableVisualFeatures")  # fmt: skip


#: The name spaces of :func:`derived_series_uid`'s and :func:`_instance_uid`'s name-based UUIDs (made once
#: for xvertfast, with uuid4): another program naming its UIDs from the same ones gets other ones.
_DERIVED_SERIES_NAMESPACE = uuid.UUID("5b0f3c7e-7a52-4d8e-9b8a-2f61c4d0a9e3")
_DERIVED_INSTANCE_NAMESPACE = uuid.UUID("7480ed61-4e83-45e0-9261-db5637e5d5fd")


def _name_based_uid(namespace: uuid.UUID, *names: str) -> str:
    """A UID of the 2.25 form (PS3.5 B.2) from a name-based (SHA-1, version 5) UUID of ``names``, joined
    by a NUL, which no UID holds: the same names give the same UID in every run and on every machine.
    pydicom's generate_uid joins its entropy sources without a separator, and with prefix=None ignores them."""
    return f"2.25.{uuid.uuid5(namespace, chr(0).join(names)).int}"


def derived_series_uid(study_uid: str, series_uid: str, derivation: str) -> str:
    """The SeriesInstanceUID of the images xvertfast derives from one source series in one way
    (``derivation``: what was done, e.g. a job's settings key): the same for each of them, in every run
    and on every machine, so that 5000 enhanced images of one series make one new series in a PACS, not
    5000; another source series, study or derivation gives another."""
    return _name_based_uid(_DERIVED_SERIES_NAMESPACE, study_uid, series_uid, derivation)


def _instance_uid(src, study_uid: str, series_uid: str, derivation: str | None, pixels: str) -> str:
    """The output's SOPInstanceUID. Named by its source's study, series (``series_uid``: '' where the
    output's series is not derived from it) and instance UIDs, by the derivation and by the pixels
    written (``pixels``: their grid, depth and SHA-256), where the UIDs and the derivation are given:
    the same image made again (an --overwrite rerun, another job made the same way) then reaches a
    PACS as the same instance, not a duplicate under a new UID, and any pixel that differs (other
    --rois centres, another backend, device or version) gives another instance, as DICOM requires
    (a PACS may ignore a second store of a UID it holds). Otherwise a new one: without a derivation
    the description may stay the same for other ways of making it, and a study or series made up
    for this output alone would put one instance UID in several series."""
    from pydicom.uid import generate_uid

    source = str(src.get("SOPInstanceUID", "") or "").strip() if src is not None else ""
    if not (source and series_uid and derivation):
        return generate_uid()
    return _name_based_uid(_DERIVED_INSTANCE_NAMESPACE, study_uid, series_uid, source, derivation, pixels)


def _source_series(src, study_uid: str) -> str:
    """The source's SeriesInstanceUID where the output's series is derived from it (:func:`derived_series_uid`);
    '' where the output gets a new one of its own: a source that names no series or no study (a PNG or TIFF,
    a DICOM without them), as nothing says which other images belong with it, and where the study UID was
    made up for this output alone, a series shared with others would span studies."""
    series = str(src.get("SeriesInstanceUID", "") or "").strip() if src is not None else ""
    if not series or study_uid != str(src.get("StudyInstanceUID", "")).strip():  # (the study made up for this file)
        return ""
    return series


def _dicom_bytes(unit: np.ndarray, bits: int, like: Radiograph | None, description: str | None,
                 derivation: str | None = None) -> bytes:  # fmt: skip
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    src = like.meta if like is not None and isinstance(like.meta, pydicom.Dataset) else None
    top = (1 << bits) - 1
    pixel_data = np.round(unit * top).astype("<u2").tobytes()
    # what the instance UID is named by: the pixels as written, so that other pixels are another instance
    pixels = f"{unit.shape[0]}x{unit.shape[1]} {bits} bits sha256 {hashlib.sha256(pixel_data).hexdigest()}"
    ds = pydicom.Dataset()
    # pydicom converts a source's element when it is first taken (copied here, its UIDs read): the
    # warning of a malformed value ('1.2.abc', a vendor's "0,143") names the source
    with WarningsNamingTheFile(like.path) if src is not None else contextlib.nullcontext():
        if src is not None and "SpecificCharacterSet" in src:
            # the copied names and descriptions are written in the source's character set (a
            # Latin-1 patient name without it would be bytes a reader may take for ASCII)
            ds.SpecificCharacterSet = _defined_charset(src.SpecificCharacterSet)
        if src is not None:  # keep who and what: patient and study
            same_grid = tuple(unit.shape) == tuple(like.shape)  # (the API allows resized or cropped pixels)
            for keyword in _KEPT + (_SPACING if same_grid else ()):
                if keyword in src:  # the element as read: a vendor's "0,143" must not fail the output
                    ds.add(copy.deepcopy(src[keyword]))
        if not ds.get("StudyInstanceUID"):  # type 1: a PNG/TIFF, or a source that lacks one or has it empty
            ds.StudyInstanceUID = generate_uid()
        # one derived series for the images of one source series made one way (not the source's series:
        # PS3.3 C.7.3.1 puts derived images in a new one)
        series = _source_series(src, ds.StudyInstanceUID)
        # only a derivation given says how the image was made: a default or hand-written description may
        # stay the same for other pixels (CLAHE, another model), which would join one series
        ds.SeriesInstanceUID = derived_series_uid(ds.StudyInstanceUID, series, derivation) if series and derivation \
            else generate_uid()  # fmt: skip
        ds.SOPInstanceUID = _instance_uid(src, ds.StudyInstanceUID, series, derivation, pixels)
        if src is not None and "SOPInstanceUID" in src:
            ref = pydicom.Dataset()
            # a data set without its class: the file meta's, before the guess of Secondary Capture
            media = getattr(src, "file_meta", pydicom.Dataset()).get("MediaStorageSOPClassUID")
            ref.ReferencedSOPClassUID = src.get("SOPClassUID") or media or SecondaryCaptureImageStorage
            ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
            ds.SourceImageSequence = [ref]
        if src is not None and _lossy_history(src):  # the enhanced image is made from the lossy pixels
            ds.LossyImageCompression = "01"
            for keyword in ("LossyImageCompressionRatio", "LossyImageCompressionMethod"):  # each compression so far
                if keyword in src:
                    ds.add(copy.deepcopy(src[keyword]))
    if not ds.get("Modality"):  # type 1 as well
        ds.Modality = "OT"
    for keyword in _SC_TYPE2:  # required, may be empty: present even where the source lacks them
        if keyword not in ds:
            setattr(ds, keyword, None)
    # Secondary Capture whatever the source's class: a CR or DX object would have to carry its
    # acquisition modules (DX: presentation intent, rescale type, ...), which a derived image
    # cannot truthfully fill in
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.ConversionType = "WSD"  # workstation
    ds.SecondaryCaptureDeviceManufacturer = "xvertfast"
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__  # which release made it, description or none
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = _ascii(description or "XVertNet vertebral contrast enhancement (xvertfast)")[:1024]  # ST
    # present, empty (type 2): a number of its own could be one the study's other series have
    ds.SeriesNumber = None
    ds.SeriesDescription = "xvertfast enhanced"
    now = datetime.datetime.now()
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.Rows, ds.Columns = unit.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits, bits - 1, 0
    ds.WindowCenter, ds.WindowWidth = top / 2.0, float(top)
    ds.PixelData = pixel_data
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_image(path: str | os.PathLike, pixels, fmt: str | None = None, *, like: Radiograph | None = None,
                overwrite: bool = False, description: str | None = None, derivation: str | None = None) -> str:
    """Writes pixels (float [H, W] in [0, 1]) to path atomically; returns the path as a str.

    Values up to :data:`CLIP_SLACK` outside [0, 1] are clipped to it; integers, and floats
    further out, are refused (TypeError, ValueError): they are stored values or another scale.

    Args:
        path: the file to write; its folder must exist (it is not made).
        pixels: a NumPy array or torch tensor (any device), float [H, W], as
            :func:`~xvertfast.io.read_image` gives them.
        fmt: one of :data:`WRITE_FORMATS`; default from the extension (.png is png16, .tif/.tiff
            tiff, .dcm/.dicom dicom; any other extension is an ImageWriteError: pass ``fmt``). Given,
            it must agree with an image extension (:data:`EXTENSION_FORMATS`: png8 or png16 for
            .png); a name without one (``out.part``) takes any format.
        like: the source radiograph: its bit depth sets the integer range of png16 and dicom
            (a 12-bit source is written as 0..4095, which a PNG's text chunk records), its
            DICOM header the derived image's patient and study tags (and its pixel size where
            the pixels keep its shape); it is never overwritten.
        overwrite: replace an existing file (never the source file).
        description: how the image was made (software, model, settings), stored in the
            file so that it stays with the image: PNG ``Description`` text (UTF-8), TIFF
            ImageDescription and DICOM DerivationDescription (7-bit ASCII: other characters
            escaped; at most 1024 characters in DICOM).
        derivation: DICOM: what was done to the pixels, as a name that stays the same for the
            images made the same way (``xvertfast enhance``: its job's settings key, kept by
            resumes and shards); pass derivation= to group outputs into one series: outputs of one
            source series with one derivation share one new series (:func:`derived_series_uid`). A
            source image's output made again the same way keeps its SOPInstanceUID, and a redo
            replaces the image under it, only where the pixels written are the same: the UID is
            named by them too, so other pixels (other ROI centres, backend, device or version) are
            another instance, as DICOM requires. Without a derivation (the description may stay the
            same for other ways of making it) each output gets a new series and a new instance UID;
            so does one of a source without a series (PNG, TIFF).

    Raises:
        ImageWriteError: naming the file: it exists (without ``overwrite``) or is the source
            itself, is a folder, its folder does not exist, its extension names no format, or the
            write or the encoding failed (``errno`` set where the system gave one; a name longer
            than the folder's file system takes says its length).
        TypeError: pixels that are no floats (integers, a Radiograph, a path, None), or ``like``
            not a :class:`Radiograph`.
        ValueError: an unknown ``fmt``, or one the extension contradicts (naming both); pixels
            not [H, W], empty, NaN or infinite, or further
            than :data:`CLIP_SLACK` outside [0, 1].
    """
    p = os.fspath(path)
    if like is not None and not isinstance(like, Radiograph):  # (a path: AttributeError 'bits_stored')
        raise TypeError(f"write_image: like must be the source's Radiograph (xvertfast.io.read_image(path) gives it), "
                        f"got {type(like).__name__}")  # fmt: skip
    fmt = fmt or format_from_path(p)
    if fmt not in WRITE_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(WRITE_FORMATS)}")
    _check_extension(p, fmt)
    if like is not None and same_file(p, like.path):
        raise ImageWriteError(p, "refusing to overwrite the input image")
    if os.path.isdir(p):
        raise ImageWriteError(p, "is a directory")
    if os.path.exists(p) and not overwrite:
        raise ImageWriteError(p, "already exists (pass overwrite=True to replace it)")
    folder = os.path.dirname(os.path.abspath(p))
    if not os.path.isdir(folder):
        raise ImageWriteError(p, f"destination folder {folder} does not exist")
    unit = _to_unit(pixels, p)
    bits = _output_bits(like)
    data = _encode(p, fmt, unit, bits, like, description, derivation)
    try:
        with atomic_write(p) as tmp, open(tmp, "wb") as f:
            f.write(data)
    except OSError as exc:
        error = ImageWriteError(p, _write_failure(p, exc))
        error.errno = exc.errno  # (a full disk stops a batch job by its errno, whatever the words)
        raise error from None
    return p


def _write_failure(path: str, exc: OSError) -> str:
    """Why the write of ``path`` failed, in words: a name the folder's file system refuses as too long
    says how long it is, not only the system's bare 'File name too long'. (Not refused by its length
    before the write: exFAT, FAT, SMB and HFS+ count 255 UTF-16 units, and hold non-ASCII names of more
    than 255 bytes.)"""
    if exc.errno == errno.ENAMETOOLONG:
        size = len(os.fsencode(os.path.basename(path)))
        if size > NAME_MAX:
            return (f"its name is {size} bytes long, more than the {NAME_MAX} a file name may have on most file "
                    "systems; give it a shorter name")  # fmt: skip
        return (f"cannot write: {exc.strerror} (its name is {size} bytes long, its path "
                f"{len(os.fsencode(os.path.abspath(path)))}): the folder's file system takes shorter ones")  # fmt: skip
    return f"cannot write: {exc.strerror or exc}"


def _encode(p: str, fmt: str, unit: np.ndarray, bits: int, like: Radiograph | None, description: str | None,
            derivation: str | None = None) -> bytes:  # fmt: skip
    """The file's bytes, made in memory and written by :func:`write_image` with Python's own file
    I/O: a write the file system cuts short (a full disk) is then an OSError with its errno, which a
    batch job stops on; numpy's tofile (under tifffile) said only '65536 requested and 9124 written',
    and pydicom put its traceback in the text."""
    try:
        if fmt in ("png16", "png8"):
            from PIL import Image

            from PIL.PngImagePlugin import PngInfo

            if fmt == "png8":
                img = Image.fromarray(np.round(unit * 255).astype(np.uint8))
            else:
                img = Image.fromarray(np.round(unit * ((1 << bits) - 1)).astype(np.uint16))
            info = PngInfo()
            if fmt == "png16" and bits < 16:
                # the depth in the file: a dark 12-bit output's values were read back as fewer
                # bits, guessed from its largest one (:data:`PNG_DEPTH_KEYWORD` says why not sBIT)
                info.add_text(PNG_DEPTH_KEYWORD, str(bits))
            if description:
                info.add_itxt("Description", description)  # iTXt: UTF-8, any path in it survives
            buffer = io.BytesIO()
            img.save(buffer, format="PNG", pnginfo=info, compress_level=PNG_COMPRESS_LEVEL)
            return buffer.getvalue()
        elif fmt == "tiff":
            import tifffile

            buffer = io.BytesIO()
            tifffile.imwrite(buffer, unit.astype(np.float32), photometric="minisblack",
                             description=_ascii(description) if description else None, metadata=None)  # fmt: skip
            return buffer.getvalue()
        else:
            try:
                return _dicom_bytes(unit, bits, like, description, derivation)
            except (TypeError, LookupError, OverflowError, struct.error) as exc:  # LookupError: KeyError too
                # what pydicom raises for an element of the source's header it cannot encode (an odd
                # value or character set): this output fails, named, and a batch goes on. pydicom
                # adds its traceback below the first line ("With tag (0010,0010) got exception: ...")
                source = f" from the header of {like.path}" if like is not None else ""
                first = (str(exc).splitlines() or [""])[0]
                raise ImageWriteError(p, f"cannot encode the DICOM{source}: {type(exc).__name__}: {first}") from None
    except ImageWriteError:
        raise
    except OSError as exc:  # an encoder's own refusal (PIL: a mode it cannot write)
        raise ImageWriteError(p, f"cannot encode: {exc.strerror or exc}") from None
