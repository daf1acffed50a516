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
    """sha256 (16 hex digits) of the package's files: its Python sources, its compiled extension
    and the data its code reads (BRISQUE's regression model, the default weights).

    A released install changes its code only with its version, but a development install (a
    git checkout installed editable, where a researcher may edit a metric) changes it under one
    version: results a job recorded must then not be taken for the new code's. Read once a
    process (about 50 MB, under 0.1 s). Hidden files (an editor's ``.#x.py`` lock, a dangling
    link) and compiled bytecode are left out; a file that cannot be read counts by its name."""
    package = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256(__version__.encode())
    files = []
    for folder, subfolders, names in os.walk(package):
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__" and not d.startswith("."))
        files += [os.path.join(folder, n) for n in names if not n.startswith(".") and not n.endswith((".pyc", ".pyo"))]
    for path in sorted(files):
        if not os.path.isfile(path):  # a dangling link, a socket
            continue
        h.update(os.path.relpath(path, package).encode() + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        except OSError:  # another user's file the package does not need: its name is what there is
            h.update(b"unreadable")
    return h.hexdigest()[:16]
