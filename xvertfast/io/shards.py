"""Splitting one batch job into N shards that run at once (cluster array jobs, one process per
GPU) and write into the same output folder.

An input belongs to shard ``hash(its path as planned) mod N``: every shard, given the same
command, finds the same files and takes a disjoint part of them, with no coordination. A file
added to the archive later joins a shard without moving any other file to another one, so a
rerun of a shard resumes its own outputs. The parts are balanced on average, not exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

__all__ = ["Shard", "MAX_SHARD_COUNT"]

#: The most shards ``--shard K/N`` takes (N): far more than cluster array jobs or GPUs run at once
#: (Slurm's default array limit is 1001), and few enough that a typo is caught. A mistyped
#: ``--shard 1/100000000`` ran, and left a ledger of a count whose shards status lists.
MAX_SHARD_COUNT = 10000


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as ``--shard 2/8`` writes it)."""

    index: int
    count: int

    def __post_init__(self):
        if not (isinstance(self.index, int) and isinstance(self.count, int) and 1 <= self.index <= self.count):
            raise ValueError(f"a shard is K/N with 1 <= K <= N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"``, e.g. ``"2/8"``, N at most :data:`MAX_SHARD_COUNT`; a ValueError that says the
        form otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise ValueError(f"a shard is K/N, e.g. 2/8 (the second of eight), got {text!r}")
        if int(match.group(2)) > MAX_SHARD_COUNT:
            raise ValueError(f"a shard is K/N with N at most {MAX_SHARD_COUNT}, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def owns(self, key: str) -> bool:
        """Whether the input planned as ``key`` (its path below the folder given, ``/`` separated)
        is this shard's. sha256, not Python's hash: the same on every machine and run."""
        digest = hashlib.sha256(key.replace(os.sep, "/").encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    @property
    def name(self) -> str:
        """The shard in the names of its files: ``shard-2-of-8``."""
        return f"shard-{self.index}-of-{self.count}"

    @property
    def fraction(self) -> str:
        """``2/8``, as ``--shard`` takes it and a job's report, progress bar and status name it."""
        return f"{self.index}/{self.count}"

    def share(self, found: int, found_all: int) -> str:
        """A job summary's opening: ``shard 2/8 (1234 of 9876 files): ``."""
        return f"{self} ({found} of {found_all} files): "

    def __str__(self) -> str:
        return f"shard {self.fraction}"
