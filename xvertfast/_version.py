"""The package version, and a digest of the installed code, in a module of their own so that any
layer can import them without importing the package's top level (which sits above every layer)."""

from __future__ import annotations

import functools
import hashlib
import os
import re

__version__ = "0.1.0"

__all__ = ["__version__", "code_digest", "NOT_SCORING", "SCORING_LIBRARIES", "DECODERS", "library_versions",
           "BACKEND_LIBRARIES", "backend_library_versions", "library_of"]

#: The package's files (paths under it, "/"-separated) that cannot change a score an evaluation
#: records, left out of :func:`code_digest`: an edit of one (a typo in the command line's help) let
#: no evaluation resume. Each is named alone, so that a file not listed, a new one too, counts.
NOT_SCORING = frozenset({
    # the command line: its options' parsing and help; what it passes evaluate (methods, metrics,
    # device, precision, the ROI file) is in the journal's settings, or each image's entry (the
    # centres, the torch threads)
    "__main__.py", "cli.py",
    "info.py",  # `xvertfast info`: prints the install
    "runtime.py",  # the CLI's malloc thresholds: memory reuse, no arithmetic
    # the report: every run draws it again from all the scores in the journal; of it only provenance's
    # scoring_machine runs before the scoring, naming what scores (torch's threads, the GPUs), journalled
    # with each image (its entry's ran_on): it changes no score
    "eval/report.py", "eval/stats.py", "eval/provenance.py", "eval/_report_files.py", "_plotting.py",
    # enhance's batch jobs over files (evaluate runs the Enhancer in memory), their ledgers, shards and contact sheet
    "infer/batch.py", "io/job_folder.py", "io/shards.py", "infer/preview.py",
    # `xvertfast preprocess`
    "pipeline/__init__.py", "pipeline/preprocess_files.py",
    # training: a model is evaluated from its weights' files (the default ones count, another's fingerprint is a setting)
    "train/__init__.py", "train/data.py", "train/figures.py", "train/loop.py", "train/losses.py",
    "train/run_folder.py", "train/status.py",
    # the demo's sample: an input like another (its file's state is journalled with its scores)
    "samples/__init__.py", "samples/cr_chest_pa_mono1.dcm",
    # texts for people
    "samples/NOTICE.md", "weights/MODEL_CARD.md", "eval/brisque_live/NOTICE",
})  # fmt: skip


#: The decoders that turn a file of each format into pixels, by their distributions' names: a
#: resumed evaluation is refused for another version of one only where the images it scored were
#: of a format it decodes (DICOM's pixel plugins are the ``dicom-codecs`` extra's; Pillow decodes
#: DICOM's JPEG Baseline and some TIFF pages, imagecodecs 16-bit colour PNG and DICOM's JPEG 2000,
#: JPEG-LS and lossless JPEG; a raw JSRT .IMG needs none).
DECODERS = {
    "dicom": ("pydicom", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "python-gdcm", "pillow",
              "imagecodecs"),
    "tiff": ("tifffile", "imagecodecs", "pillow"),
    "png": ("pillow", "imagecodecs"),
    "jpeg": ("pillow",),
    "jsrt": (),
}  # fmt: skip

#: The installed libraries whose code computes an evaluation's scores beside xvertfast's own, by
#: their distributions' names: the arithmetic (numpy, scipy: the metrics' filters, FFTs and
#: special functions; torch: the WLS, the network), CLAHE (scikit-image) and the decoders that
#: turn a file into pixels (:data:`DECODERS`'s, derived: a decoder added there is recorded too).
#: OpenCV is not used. The network's own library under another backend is :data:`BACKEND_LIBRARIES`'.
SCORING_LIBRARIES = ("numpy", "scipy", "scikit-image", "torch",
                     *dict.fromkeys(name for names in DECODERS.values() for name in names))  # fmt: skip


def library_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`SCORING_LIBRARIES` (None: not installed), read from
    the distributions' metadata, which imports none of them: an evaluation records them with its
    settings, as its scores may change with them (scikit-image's CLAHE, scipy's filters) while
    xvertfast's code does not."""
    import importlib.metadata  # (not at the package's import: only an evaluation asks)

    versions = {}
    for name in SCORING_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


#: The module that computes XVertNet's outputs under each backend but torch's: an evaluation that
#: ran one records its version beside :data:`SCORING_LIBRARIES`', as another may score otherwise.
#: ``compile``'s is Triton, whose kernels Inductor writes for a GPU (for the CPU it writes C++):
#: torch's wheel pins a Triton, but pip installs another beside it with a warning.
BACKEND_LIBRARIES = {"onnxruntime": "onnxruntime", "tensorrt": "tensorrt", "compile": "triton"}


def library_of(name: str) -> str:
    """The module of :data:`BACKEND_LIBRARIES` that the distribution ``name`` is a build of, by a word of
    its name (onnxruntime-gpu and onnxruntime-directml are onnxruntime's, tensorrt-cu12 TensorRT's,
    pytorch-triton Triton's); any other name is its own library. Two builds were two libraries, one
    removed and one installed, so an evaluation resumed across a switch between them unsaid."""
    words = re.split(r"[-_.]", name.lower())
    return next((module for module in BACKEND_LIBRARIES.values() if module in words), name)


def backend_library_versions(backends) -> dict[str, str | None]:
    """The version of the library of each of ``backends`` (names; those of
    :data:`BACKEND_LIBRARIES`), by its distribution's name (onnxruntime-gpu's is not onnxruntime's:
    a refusal's pip command names the one installed): its module's own ``__version__``, what ran
    (TensorRT may be installed without pip's metadata). The backend imported it already, but for
    Triton, which compile imports as it compiles (None where it cannot: torch says why then)."""
    import importlib
    import importlib.metadata

    versions = {}
    for module in dict.fromkeys(BACKEND_LIBRARIES[b] for b in backends if b in BACKEND_LIBRARIES):
        try:
            importlib.metadata.version(module)
            name = module
        except importlib.metadata.PackageNotFoundError:
            name = (importlib.metadata.packages_distributions().get(module) or [module])[0]
        try:
            versions[name] = getattr(importlib.import_module(module), "__version__", None)
        except ImportError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 (16 hex digits) of the version and of the package's files that can change a score:
    its Python sources but :data:`NOT_SCORING`, its compiled extension and the data its code reads
    (BRISQUE's regression model, the default weights).

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
        name = os.path.relpath(path, package).replace(os.sep, "/")
        if name in NOT_SCORING or not os.path.isfile(path):  # (not a file: a dangling link, a socket)
            continue
        h.update(name.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
        except OSError:  # another user's file the package does not need: its name is what there is
            h.update(b"unreadable")
    return h.hexdigest()[:16]
