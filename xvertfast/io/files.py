"""Finding the input images of a batch job and naming its outputs.

Inputs are files, folders (searched recursively) or ``@list.txt`` files that
list one path per line. Outputs mirror each input's path relative to the
folder it was found in, under the output folder, and can never escape it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

__all__ = ["InputFile", "discover", "output_path", "image_extension", "file_sha256", "IMAGE_EXTENSIONS",
           "LIST_PHOTOMETRICS"]  # fmt: skip

#: Extensions picked up when a folder is searched. Files without an extension, or whose
#: name ends in digits after its last dot (a DICOM file named by its UID, 1.2.840....320),
#: are picked up too: archives store DICOM that way. DICOMDIR index files are not images.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dcm", ".dicom", ".img")


#: Polarities an ``@list`` line may give after a tab (for PNG/JPEG files, which do not record it).
LIST_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class InputFile:
    path: str  #: as given or found
    rel: str  #: path relative to the folder it was found in (the file name for direct inputs)
    photometric: str | None = None  #: polarity given in an @list (``path<TAB>MONOCHROME1``), else None


def image_extension(name: str) -> str:
    """The name's extension if it is one of IMAGE_EXTENSIONS, else "" (none, or part of a UID)."""
    ext = os.path.splitext(name)[1]
    return ext if ext.lower() in IMAGE_EXTENSIONS else ""


def _may_be_image(name: str) -> bool:
    if name.startswith(".") or name.upper() == "DICOMDIR":
        return False
    ext = os.path.splitext(name)[1]
    return not ext or bool(image_extension(name)) or ext[1:].isdigit()


def _from_folder(folder: str) -> list[InputFile]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not _may_be_image(name):
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
    """``out_dir/<rel without its image extension><suffix>``; raises ValueError if it would leave
    out_dir. Only an image extension is replaced: 1.2.840.5.320 becomes 1.2.840.5.320.dcm, so
    the files of a UID-named series do not all map to 1.2.840.5.dcm."""
    ext = image_extension(rel)
    stem = rel[: len(rel) - len(ext)]
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
