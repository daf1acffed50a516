"""What the resumable jobs (enhance's ledger, evaluate's journal, train's checkpoint) share
about the files they keep: saying which recorded setting differs, appending to a
line-per-record file after a kill cut its last line short, and the lock that keeps a second
job out of a folder one is writing into. No dependencies in the package.
"""

from __future__ import annotations

import os
import time
from typing import IO

__all__ = ["settings_changes", "ends_with_newline", "hold_lock", "lock_held", "LOCK_PATIENCE"]

#: Seconds a job starting retries a lock another holds before it is refused: dry runs, starting
#: shards and ``xvertfast status`` take the locks for a moment to see whether a job holds them (a
#: job array's shards start together), and such a moment must not pass for a job running.
LOCK_PATIENCE = 1.0


def settings_changes(previous, now: dict) -> str:
    """``key old -> new`` for each setting that differs (``now``'s keys first), for a refusal
    message; a hint where ``previous`` is not a settings dict at all. A list of methods (dicts
    with a ``spec``, as evaluate records them) shows as the specs the user typed, or, where
    those are the same, as what changed in each. A ``model`` fingerprint is said in words, with
    the start of each digest."""
    if not isinstance(previous, dict):
        return "the recorded settings are unreadable"
    keys = [*now, *(k for k in previous if k not in now)]
    return "; ".join(_change(k, previous.get(k), now.get(k)) for k in keys if previous.get(k) != now.get(k))


def _specs(value) -> list[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, dict) and "spec" in v for v in value):
        return [str(v["spec"]) for v in value]
    return None


#: How much of a digest a message gives: enough to tell two apart and to find one, as an
#: output's description gives its model's.
_DIGEST_SHOWN = 16


def _change(key: str, old, new) -> str:
    if key == "model" and isinstance(old, str) and isinstance(new, str):  # a fingerprint: says nothing alone
        old, new = old[:_DIGEST_SHOWN], new[:_DIGEST_SHOWN]
        return ("another model (its weights, architecture or WLS parameters differ: another model file, or new "
                f"default weights after an upgrade): model {old!r} -> {new!r}")  # fmt: skip
    old_specs, new_specs = _specs(old), _specs(new)
    if old_specs is None or new_specs is None:
        return f"{key} {old!r} -> {new!r}"
    if old_specs != new_specs:
        return f"{key} {', '.join(old_specs)} -> {', '.join(new_specs)}"
    return "; ".join(f"{key} {o['spec']}: {settings_changes(o, n)}" for o, n in zip(old, new) if o != n)


def ends_with_newline(file: str | IO[bytes]) -> bool:
    """Whether a non-empty file's last byte is a newline: if not, a kill cut its last record
    short, and the next record must start on a line of its own. ``file``: its path, or the file
    open for reading in binary (a batch job's ledger, opened in the folder it holds)."""
    if isinstance(file, str):
        with open(file, "rb") as f:
            return ends_with_newline(f)
    file.seek(-1, os.SEEK_END)
    return file.read(1) == b"\n"


def hold_lock(path: str, shared: bool = False, wait: bool = False, patience: float = 0.0) -> IO | None:
    """``path`` opened (created if missing) with an advisory lock (``flock``) that lasts until
    the file is closed, or None where another process holds a conflicting one: a job refuses to
    share its folder instead of racing the other one (and removing its temporaries). The lock
    is exclusive, or ``shared`` (the shards of one job hold the folder's lock together, which
    keeps an unsharded job out); ``wait`` blocks until it is granted instead of returning None.
    ``patience`` retries for that many seconds first: a job learns whether another runs by
    taking that one's lock for a moment (a dry run, a shard starting), so a holder that lets go
    within it was a probe, not a job (`xvertfast status` too looks so: :func:`lock_held`).
    Where there is no flock (Windows, a Lustre mount with ``noflock``), the file unlocked; where
    locks are only local (an NFS mount with ``nolock`` or ``local_lock=flock``), they keep out
    only the jobs of the same machine: one job per folder is then up to the user. Raises OSError
    where the file cannot be opened."""
    import errno

    lock = open(path, "a+")  # readable too: Linux's NFS client emulates a shared flock with a read lock
    try:
        import fcntl
    except ImportError:
        return lock
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(lock.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
            return lock
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):  # no locking here, not a holder
                return lock
            if time.monotonic() >= deadline:
                lock.close()
                return None
        time.sleep(0.02)


def lock_held(path: str) -> bool | None:
    """Whether a process holds ``path``'s lock exclusively now (as a job holds its own: see
    :func:`hold_lock`), for ``xvertfast status``: a lock goes with its process (killed with -9
    too), so a job whose lock no one holds has stopped. Looks by asking a shared lock without
    waiting and letting it go at once; the file is opened read-only and never made (missing:
    False, no job ever took it). A job, or a dry run, that takes the lock in that moment retries
    it (``patience``: :data:`LOCK_PATIENCE`). None where it cannot be told: the file unreadable,
    or no flock here (a lock held on another machine, where locks are only local, is not seen)."""
    import errno

    try:
        import fcntl
    except ImportError:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)  # (Linux's NFS client takes a read lock for a shared flock)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as exc:
        return True if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    finally:
        os.close(fd)  # (releases the shared lock, where it was granted)
