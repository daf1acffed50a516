"""Words of the messages the commands print, shared so that every count reads alike."""

from __future__ import annotations

__all__ = ["count"]


def count(n: int, noun: str) -> str:
    """``"1 image"``, ``"2 images"``: ``n`` and ``noun``, plural (an ``s``) unless ``n`` is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
