"""Finding the input images of a batch job and naming its outputs.

Inputs are files, folders (searched recursively) or ``@list.txt`` files that
list one path per line. Outputs mirror each input's path relative to the
folder it was found in, under the output folder, and can never escape it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

__all__ = ["InputFile", "discover", "output_path", "file_sha256", "IMAGE_EXTENSIONS", "LIST_PHOTOMETRICS"]

#: Extensions picked up when a folder is searched (files without an extension are
#: included too: DICOM files often have none).
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dcm", ".dicom", ".img")


#: Polarities an ``@list`` line may give after a tab (for PNG/JPEG files, which do not record it).
LIST_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class InputFile:
    path: str  #: as given or found
    rel: str  #: path relative to the folder it was found in (the file name for direct inputs)
    photometric: str | None = None  #: polarity given in an @list (``path<TAB>MONOCHROME1``), else None


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


def _from_list(list_path: str) -> list[InputFile]:
    out = []
    with open(list_path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            path, _, tag = line.rstrip("\n").partition("\t")
            tag = tag.strip() or None
            if tag is not None and tag not in LIST_PHOTOMETRICS:
                raise ValueError(f"{list_path}, line {number}: after the tab comes MONOCHROME1 or MONOCHROME2, "
                                 f"not {tag!r}")  # fmt: skip
            out.extend(InputFile(g.path, g.rel, tag or g.photometric) for g in discover([path.strip()]))
    return out


def discover(inputs: list[str]) -> list[InputFile]:
    """The input files of a job, in a stable order, without duplicates.

    A path that does not exist is still returned (as a file) so that the job reports it.
    A line of an ``@list`` may end with a tab and ``MONOCHROME1``: that PNG/JPEG file stores
    bone dark and is inverted on reading (``read_image(..., photometric=...)``).
    """
    out: list[InputFile] = []
    for item in inputs:
        if item.startswith("@"):
            out.extend(_from_list(item[1:]))
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


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks: the identity of an input for caches."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
