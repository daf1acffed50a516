"""Telling a path from what is none, in the words of the function it was given to: os.fspath's
own error ("expected str, bytes or os.PathLike object, not NoneType") names neither the function
nor what it asked for. And the working folder a job records, where it can be read (one deleted
has none). What was given for an image's pixels is described by :mod:`xvertfast._pixels`."""

from __future__ import annotations

import os

__all__ = ["PATH_TYPES", "fspath", "not_a_path", "output_folder", "working_folder"]

#: What a path may be: a str, bytes or os.PathLike (a pathlib.Path).
PATH_TYPES = (str, bytes, os.PathLike)


def not_a_path(value, must_be: str, in_list: bool = False) -> TypeError:
    """The error for ``value``, given where a path was asked for: ``"<must_be>, got <its type>"``,
    ``must_be`` naming the caller and what it asked for; with ``in_list``, the value too, as one
    item of a list (``"got int 5 in the list"``)."""
    shown = f" {value!r} in the list" if in_list else ""
    return TypeError(f"{must_be}, got {type(value).__name__}{shown}")


def fspath(value, must_be: str, in_list: bool = False) -> str | bytes:
    """``os.fspath(value)`` where ``value`` is a path; else raises :func:`not_a_path`'s error."""
    if not isinstance(value, PATH_TYPES):
        raise not_a_path(value, must_be, in_list)
    return os.fspath(value)


def output_folder(value, who: str) -> str:
    """A job's output folder as a str, refused in ``who``'s name where it is no path (None, a number:
    os.fspath's words, naming nothing) or empty: '' is the current folder, which the job then
    refused as "a folder of outputs" holding the inputs (the CLI refuses -o '' alike)."""
    path = os.fsdecode(fspath(value, f"{who}: out_dir must be the output folder's path"))
    if not path:
        raise ValueError(f"{who}: out_dir is empty: give the output folder's path ('.' for the current one)")
    return as_the_system_reads(path)


def as_the_system_reads(path: str) -> str:
    """``path``, with its part through its last ``..`` resolved where that ``..`` follows a link
    (``latest/../archive``, latest -> runs/c1: ``/abs/runs/archive``): abspath and normpath drop
    ``latest/..`` as text, naming another folder than the one the system opens, so a job's outputs,
    planned by their text, went beside the folder holding its ledger. Unchanged where the text and
    the system agree (most paths; on Windows, which reads ``..`` as text too)."""
    parts = path.replace(os.altsep or os.sep, os.sep).split(os.sep)
    if os.name == "nt" or os.pardir not in parts:
        return path
    try:
        if os.path.realpath(path) == os.path.realpath(os.path.abspath(path)):
            return path
        last = len(parts) - parts[::-1].index(os.pardir)
        return os.path.join(os.path.realpath(os.sep.join(parts[:last])), *parts[last:])
    except OSError:  # (a working folder deleted: a relative path is left to the job's own refusal)
        return path


def working_folder() -> str | None:
    """The process's working folder, or None where it cannot be read (deleted: os.getcwd raises
    FileNotFoundError, which named no file): what a job records as the folder it was started in."""
    try:
        return os.getcwd()
    except OSError:
        return None
