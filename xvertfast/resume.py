"""What the resumable jobs (enhance's ledger, evaluate's journal, train's checkpoint) share
about the files they keep: saying which recorded setting differs, and appending to a
line-per-record file after a kill cut its last line short. No dependencies in the package.
"""

from __future__ import annotations

import os

__all__ = ["settings_changes", "ends_with_newline"]


def settings_changes(previous, now: dict) -> str:
    """``key old -> new`` for each setting that differs (``now``'s keys first), for a refusal
    message; a hint where ``previous`` is not a settings dict at all."""
    if not isinstance(previous, dict):
        return "the recorded settings are unreadable"
    keys = [*now, *(k for k in previous if k not in now)]
    return "; ".join(f"{k} {previous.get(k)!r} -> {now.get(k)!r}" for k in keys if previous.get(k) != now.get(k))


def ends_with_newline(path: str) -> bool:
    """Whether a non-empty file's last byte is a newline: if not, a kill cut its last record
    short, and the next record must start on a line of its own."""
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
