"""Finding the input images of a batch job and naming its outputs.

Inputs are files, folders (searched recursively) or ``@list.txt`` files that
list one path per line. Outputs mirror each input's path relative to the
folder it was found in, under the output folder, and can never escape it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["InputFile", "discover", "output_path", "IMAGE_EXTENSIONS"]

#: Extensions picked up when a folder is searched (files without an extension are
#: included too: DICOM files often have none).
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dcm", ".dicom", ".img")


@dataclass(frozen=True)
class InputFile:
    path: str  #: as given or found
    rel: str  #: path relative to the folder it was found in (the file name for direct inputs)


def _from_folder(folder: str) -> list[InputFile]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            ext = os.path.splitext(name)[1].lower()
            if name.startswith(".") or (ext and ext not in IMAGE_EXTENSIONS):
                continue
            path = os.path.join(root, name)
            found.append(InputFile(path, os.path.relpath(path, folder)))
    return found


def discover(inputs: list[str]) -> list[InputFile]:
    """The input files of a job, in a stable order, without duplicates.

    A path that does not exist is still returned (as a file) so that the job reports it.
    """
    out: list[InputFile] = []
    for item in inputs:
        if item.startswith("@"):
            with open(item[1:]) as f:
                listed = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
            out.extend(discover(listed))
        elif os.path.isdir(item):
            out.extend(_from_folder(item))
        else:
            out.append(InputFile(item, os.path.basename(item)))
    seen, unique = set(), []
    for f in out:
        key = os.path.abspath(f.path)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def output_path(out_dir: str, rel: str, suffix: str) -> str:
    """``out_dir/<rel without extension><suffix>``; raises ValueError if it would leave out_dir."""
    stem = os.path.splitext(rel)[0]
    root = os.path.abspath(out_dir)
    path = os.path.abspath(os.path.join(root, stem + suffix))
    if os.path.commonpath([root, path]) != root:
        raise ValueError(f"output for {rel!r} would be written outside {out_dir}")
    return path
