"""The package version, and a digest of the installed code, in a module of their own so that any
layer can import them without importing the package's top level (which sits above every layer)."""

from __future__ import annotations

import functools
import hashlib
import os

__version__ = "0.1.0"

__all__ = ["__version__", "code_digest"]


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 (16 hex digits) of the package's Python sources and its compiled extension.

    A released install changes its code only with its version, but a development install (a
    git checkout installed editable, where a researcher may edit a metric) changes it under one
    version: results a job recorded must then not be taken for the new code's. Read once a
    process (about 40 MB, under 0.1 s)."""
    package = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256(__version__.encode())
    files = []
    for folder, subfolders, names in os.walk(package):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        files += [os.path.join(folder, n) for n in names
                  if n.endswith(".py") or (n.startswith("_C.") and n.endswith((".so", ".pyd")))]  # fmt: skip
    for path in sorted(files):
        h.update(os.path.relpath(path, package).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]
