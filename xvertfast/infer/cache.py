"""The export cache: where it is, how much it holds, emptying it, and the lock that keeps the
emptying away from a process building or loading from it.

The cache (:func:`default_cache_dir`) holds the ONNX exports of
``--backend onnxruntime|tensorrt`` (``onnx/<model>-x<exporter>-t<tile>-<precision>/``), TensorRT
engines (``<key>.engine``, tens to hundreds of MB each, one per model, precision, tile, max
batch, TensorRT and GPU) and TensorRT timing caches (``timing-*.cache``). Each stage file and
engine has beside it the SHA-256 it was written with (:func:`record_digest`), checked before it
is used (:func:`matches_its_digest`): a damaged file is made again, not handed on; a process reads a
file for it once while the file stays as it was (:func:`file_sha256_once`). Nothing is pruned by
itself: :func:`cache_usage` (``xvertfast cache``, ``xvertfast info``) says how much there is,
and :func:`clear_cache` (``xvertfast cache --clear``) removes it; whatever is needed again is
made again (an engine in minutes). Only files of those names are counted or removed, never a
link or a file of another name, so a cache folder set to a folder that holds other files loses
none of them.

A process that builds or loads from the cache holds :func:`cache_in_use` (a shared lock) from
finding the files to having read them; emptying takes the lock exclusively, so it is refused
while one does, instead of removing a file between that process's check and its read. Building
an engine also holds :func:`one_build_at_a_time`.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Iterator

from xvertfast._pickled_errors import said_alone
from xvertfast._stacklevel import outside_xvertfast
from xvertfast._text import count
from xvertfast.io.files import file_sha256
from xvertfast.io.write import atomic_write
from xvertfast.resume import hold_lock

__all__ = ["default_cache_dir", "cache_usage", "describe_usage", "clear_cache", "cache_in_use", "one_build_at_a_time",
           "CacheBusy", "CACHE_HINT", "LOCK_NAME", "BUILD_LOCK_NAME"]  # fmt: skip

#: Ends the error of a cache folder that takes no files.
CACHE_HINT = "; it is in the export cache: set XVF_CACHE_DIR to a folder you can write in"

LOCK_NAME = ".xvertfast-cache.lock"
BUILD_LOCK_NAME = ".xvertfast-build.lock"
#: Files at the cache's top: engines and their SHA-256, timing caches, and the temporaries
#: (``.NAME.<random>.part``) a killed build left of any of them.
_TOP = re.compile(r"\.?(?:[0-9a-f]{64}\.engine(?:\.sha256)?|timing-[^/]*\.cache)(?:\.[^.]+\.part)?")
#: An ONNX export's folder under ``onnx/``, and the files in it (each stage's graph and its SHA-256).
_ONNX_FOLDER = re.compile(r"[0-9a-f]{24}-x[0-9a-f]{12}-t\d+-fp(?:16|32)")
_ONNX_FILE = re.compile(r"\.?stage\d+\.onnx(?:\.sha256)?(?:\.[^.]+\.part)?")


def default_cache_dir() -> str:
    """``$XVF_CACHE_DIR``, else ``~/.cache/xvertfast/engines``: engines, timing caches, ONNX exports.
    A ``~`` in XVF_CACHE_DIR is the home folder: set quoted (a job script, a .env file), no shell
    expanded it, and a folder named ``~`` in each job's working folder would hold the cache."""
    return os.path.expanduser(os.environ.get("XVF_CACHE_DIR") or os.path.join("~", ".cache", "xvertfast", "engines"))


class CacheBusy(RuntimeError):
    """Another process holds the cache (building or loading from it)."""


def _files(cache_dir: str) -> Iterator[str]:
    """The cache's own files (see the module docstring), never a link; folders that cannot be
    listed hold none."""
    yield from _files_named(cache_dir, _TOP)
    onnx = os.path.join(cache_dir, "onnx")
    if os.path.islink(onnx):
        return
    for folder in _onnx_folders(onnx):
        yield from _files_named(folder, _ONNX_FILE)


def _files_named(folder: str, name: re.Pattern) -> Iterator[str]:
    """The files (never a link) in ``folder`` whose name ``name`` matches whole; those listed
    before the listing failed, none where it cannot be listed at all."""
    with contextlib.suppress(OSError):
        with os.scandir(folder) as entries:
            for entry in entries:
                if name.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    yield entry.path


def _onnx_folders(onnx: str) -> list[str]:
    try:
        with os.scandir(onnx) as entries:
            return [e.path for e in entries if _ONNX_FOLDER.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def cache_usage(cache_dir: str | os.PathLike | None = None) -> dict:
    """``{"path", "files", "bytes", "engines"}`` of the cache's own files (zeros where there is
    no cache yet). Raises OSError where the cache is a file or cannot be listed."""
    path = os.fspath(cache_dir or default_cache_dir())
    _check_listable(path)
    return _usage(path, _sizes(_files(path)))


def _check_listable(path: str) -> None:
    """Refuses a cache that is a file, or a folder this user cannot list: either was said to hold
    '0 files', and cleared as an empty cache with exit 0. One not made yet is empty."""
    if not os.path.lexists(path):
        return
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        what = "is a file, not a folder" if isinstance(exc, NotADirectoryError) else \
            f"cannot be read ({exc.strerror or exc})"  # fmt: skip
        raise said_alone(type(exc), exc.errno, f"{path}: the export cache {what}; set XVF_CACHE_DIR to a "
                                               "folder you can write in") from exc  # fmt: skip


#: Beside each cached stage file and engine, the SHA-256 of its bytes as written
#: (``stage1.onnx.sha256``, ``<key>.engine.sha256``).
DIGEST_SUFFIX = ".sha256"
#: What a recorded digest reads as: 64 hex digits, as hashlib writes them.
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def record_digest(path: str, sha256: str) -> None:
    """Writes ``sha256``, that of ``path``'s bytes as just written, beside it, for
    :func:`matches_its_digest` to check the file against before each use."""
    with atomic_write(path + DIGEST_SUFFIX) as tmp, open(tmp, "w") as f:
        f.write(sha256 + "\n")


def recorded_digest(path: str) -> str | None:
    """The SHA-256 recorded beside ``path``, or None where there is none (a write killed
    before it) or it is no SHA-256 (cut short, emptied: not 64 hex digits)."""
    try:
        with open(path + DIGEST_SUFFIX) as f:
            recorded = f.read().strip().lower()
    except (OSError, UnicodeDecodeError):
        return None
    return recorded if _SHA256_HEX.fullmatch(recorded) else None


#: The files this process has hashed, by absolute path: their state then (:func:`_state`) and SHA-256.
_HASHED: dict[str, tuple[tuple[int, ...], str]] = {}
#: A file modified or given its inode's last change (ctime) less than this before its hashing began
#: is hashed again at its next check: a write within the same tick of the file system's clock
#: (milliseconds; 2 s on FAT) leaves the file's state as it was (what git calls a racily clean file).
#: The ctime counts too: ``cp -p``, ``shutil.copy2``, ``rsync -a``, ``tar x`` and ``os.utime`` set a
#: file's mtime back to an older one, which the kernel's ctime of that write does not follow.
SETTLED_NS = 2_000_000_000
#: The clock a hashing's start is read from (tests move it forward rather than a file's times back).
_now_ns = time.time_ns


def _state(path: str) -> tuple[int, ...]:
    """What changes when a file is written or replaced: its device, inode, size and times."""
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def file_sha256_once(path: str) -> str:
    """``file_sha256(path)``, read once a process while the file keeps its state: an engine of
    hundreds of MB checked again (an engine of another stage rebuilt, a second backend of the
    model) is not read again. A file modified since (another inode, size or time) is hashed
    again, as is one modified or changed (its ctime) within :data:`SETTLED_NS` of its hashing."""
    key = os.path.abspath(path)
    started, before = _now_ns(), _state(path)
    known = _HASHED.get(key)
    if known is not None and known[0] == before:
        return known[1]
    digest = file_sha256(path)
    if max(before[3], before[4]) < started - SETTLED_NS and _state(path) == before:  # (settled, unchanged while read)
        _HASHED[key] = (before, digest)
    return digest


def matches_its_digest(path: str, damaged: tuple[str, str, str] | None = None) -> bool:
    """Whether the cached file ``path`` still has the bytes its recorded SHA-256 was taken of.
    A flipped bit in a weight leaves an ONNX graph loadable with its metadata right, and an engine
    TensorRT may deserialize all the same: either then computes wrong tiles without a word. A file
    that is not there, or without a usable digest, is False quietly: nothing says the file is the
    damaged one. Where the bytes differ, ``damaged`` (what the file is, what made it, what is done
    now: ``("ONNX file", "exported", "exporting the model again")``) is warned, naming the file."""
    recorded = recorded_digest(path)
    if recorded is None or not os.path.isfile(path):
        return False
    if file_sha256_once(path) == recorded:
        return True
    if damaged is not None:
        what, made, remedy = damaged
        warnings.warn(f"{path}: this cached {what} is damaged (its SHA-256 is not the one recorded in "
                      f"{os.path.basename(path)}{DIGEST_SUFFIX} when it was {made}, e.g. a disk or copy error): "
                      f"{remedy}", RuntimeWarning, stacklevel=outside_xvertfast())  # fmt: skip
    return False


def _sizes(names) -> dict[str, int]:
    """Each file's size, but for those removed meanwhile."""
    sizes = {}
    for name in names:
        with contextlib.suppress(OSError):
            sizes[name] = os.lstat(name).st_size
    return sizes


def _usage(path: str, sizes: dict[str, int]) -> dict:
    engines = sum(name.endswith(".engine") and not os.path.basename(name).startswith(".") for name in sizes)
    return {"path": path, "files": len(sizes), "bytes": sum(sizes.values()), "engines": engines}


def describe_usage(usage: dict) -> str:
    """``PATH: N files, X MB (K TensorRT engines)``, of :func:`cache_usage`'s answer."""
    return (f"{usage['path']}: {count(usage['files'], 'file')}, {usage['bytes'] / 1e6:.1f} MB "
            f"({count(usage['engines'], 'TensorRT engine')})")  # fmt: skip


@contextlib.contextmanager
def cache_in_use(cache_dir: str | os.PathLike | None = None):
    """Keeps :func:`clear_cache` out while the block builds or reads files of the cache (waits
    for one that runs). Where the lock file cannot be made (a read-only cache) the block runs
    without it: nothing there can be cleared by this user either."""
    path = os.fspath(cache_dir or default_cache_dir())
    lock = None
    with contextlib.suppress(OSError):
        os.makedirs(path, exist_ok=True)
        lock = hold_lock(os.path.join(path, LOCK_NAME), shared=True, wait=True)
    try:
        yield
    finally:
        if lock is not None:
            lock.close()


@contextlib.contextmanager
def one_build_at_a_time(cache_dir: str):
    """Held while an engine is built into ``cache_dir``: processes starting together (the shards
    of a job) wait for the one building instead of each building the same engine (minutes of the
    GPU, gigabytes of its memory, apiece); the waiter then finds the engine made. One lock for the
    whole cache: builds of different engines (another GPU model, another machine on a shared
    cache) wait for each other too, minutes each, which a waiter says it does."""
    name = os.path.join(cache_dir, BUILD_LOCK_NAME)
    lock = hold_lock(name)
    if lock is None:  # another process builds: minutes of silence otherwise, as if hung
        warnings.warn(f"waiting for another xvertfast process building a TensorRT engine in {cache_dir}",
                      stacklevel=outside_xvertfast())  # (not contextlib's line, nor build_engine's)
        lock = hold_lock(name, wait=True)
    try:
        yield
    finally:
        if lock is not None:
            lock.close()


def clear_cache(cache_dir: str | os.PathLike | None = None) -> dict:
    """Removes the cache's own files (and the ONNX folders they leave empty); returns what was
    removed, as :func:`cache_usage` says it, and ``"failed"``: ``(file, reason)`` of each that
    could not be (a file of another user's): the others are removed all the same, not half of
    them with a raw error. Raises :class:`CacheBusy` while another process builds or loads from
    the cache, OSError where the cache is a file or cannot be listed or locked."""
    path = os.fspath(cache_dir or default_cache_dir())
    _check_listable(path)
    if not os.path.isdir(path):
        return {**cache_usage(path), "failed": []}
    try:
        lock = hold_lock(os.path.join(path, LOCK_NAME), patience=1.0)
    except OSError as exc:
        raise said_alone(type(exc), exc.errno, f"{path}: cannot lock the export cache to clear it "
                                               f"({exc.strerror or exc}): it is cleared by a user who can write "
                                               "in it") from exc  # fmt: skip
    if lock is None:
        raise CacheBusy(f"{path}: another xvertfast process is building or loading from the export cache; "
                        "clear it once that process has started (or ended)")  # fmt: skip
    try:
        sizes, failed = _sizes(_files(path)), []  # all listed first: not removed from under the listing
        for name in sizes:
            try:
                os.remove(name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append((name, exc.strerror or str(exc)))
        onnx = os.path.join(path, "onnx")
        if not os.path.islink(onnx):
            for folder in [*_onnx_folders(onnx), onnx]:
                with contextlib.suppress(OSError):  # not empty (a file of the user's): kept
                    os.rmdir(folder)
    finally:
        lock.close()
    for name, _ in failed:
        del sizes[name]
    return {**_usage(path, sizes), "failed": failed}
