"""Process-wide settings the command-line tools apply to the process they run in.

glibc's malloc serves every buffer above its mmap threshold (at most 32 MiB by default)
with fresh pages from the kernel and unmaps them when freed. The network's feature maps are
of that size (2 x 16 x 512 x 512 floats = 32 MiB), so every layer of every stage paid for
~8000 page faults: a width-16 stage on two 512^2 tiles took 0.39 s, 0.30 s with the heap
serving them instead (measured on two cores). :func:`tune_allocator` raises the threshold
and lets the heap keep up to 1 GiB of freed memory for reuse. A batch job's resident memory
then stays at its peak instead of shrinking between images. ``XVF_MALLOC_TUNE=0`` leaves
malloc as it is. The library never does this on import: only the CLI, which owns its process.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_KEEP = 1 << 30


def tune_allocator() -> bool:
    """Raises glibc's mmap and trim thresholds to 1 GiB; True if it did (glibc on Linux only)."""
    if os.environ.get("XVF_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, _KEEP) == 1 and mallopt(_M_TRIM_THRESHOLD, _KEEP) == 1
