"""A resume of a large archive of small images whose every output is done: how many lstat and
os.path.realpath calls it makes and how long it takes, the job resolving each folder once
(:class:`~xvertfast.io.files.RealPaths`), also given the --report its run before wrote (which
must be none of the inputs), and, for comparison, every path whole at each use
(``os.path.realpath``, as before 38cec01); and the progress bar of a job that enhances such
images: how often it is drawn and how much stderr it writes. The huntarchive and inputs
sessions' figures in bench/RESULTS.md.

    python bench/archive_resume.py [--count 5000] [--depth 7] [--repeats 3] [--bar-count 2000] [--folder F]

The archive: COUNT 64 x 64 8-bit images, PNG, TIFF and DICOM in turn, 18 a folder, each folder
DEPTH levels below the archive's root. Its outputs are a ledger of every input finished, written
through :class:`~xvertfast.io.job_folder.JobFolder` as ``bench/batch_planning.py`` writes it
(one-byte outputs: nothing is enhanced); a --folder given again keeps both, but for a ledger a
killed run left unfinished, written again. The resumes run in this process with a tiny random model,
``Enhancer.enhance_files`` (every input skipped), the two ways of resolving alternated, REPEATS
times each (the median and range of the summary's seconds); the lstat and realpath calls are
counted by wrappers of ``os.lstat`` and ``os.path.realpath`` in one more resume of each. The bar: an
``xvertfast enhance`` process over BAR_COUNT such images (enhanced with the tiny model), its stderr
a pipe: the carriage returns (one a redraw) and the bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.report import heading  # noqa: E402

PER_FOLDER, SIDE, KINDS = 18, 64, ("png", "tif", "dcm")


def write_dicom(path: str, pixels: np.ndarray) -> None:
    """An 8-bit MONOCHROME2 CR image, uncompressed."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.PatientID, ds.Modality = "XVF-BENCH", "CR"
    ds.StudyInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR image storage
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def write_image(path: str, kind: str, pixels: np.ndarray) -> None:
    """Writes the image whole or not at all (a temporary renamed): a run killed while writing leaves
    no cut image for a run given the same --folder to keep."""
    from PIL import Image

    part = path + ".part"
    if kind == "dcm":
        write_dicom(part, pixels)
    else:
        Image.fromarray(pixels).save(part, format={"png": "PNG", "tif": "TIFF"}[kind])
    os.replace(part, path)


def make_archive(root: str, count: int, depth: int) -> str:
    """``count`` images under ``root`` (kept where they are already), 18 a folder, ``depth`` deep."""
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, SIDE)
    spine = np.exp(-(x[None, :] ** 2) / 0.03) * 0.5 + 0.25  # a bright band down the middle, as a spine
    for i in range(count):
        leaf = i // PER_FOLDER  # (site, patient, study, then the levels below)
        parts = [f"site{leaf // 40}", f"patient{leaf // 4}", f"study{leaf % 4}", *(f"level{k}" for k in range(depth - 3))]
        folder = os.path.join(root, *parts)
        kind = KINDS[i % len(KINDS)]
        path = os.path.join(folder, f"im{i:06d}.{kind}")
        if os.path.exists(path):
            continue
        os.makedirs(folder, exist_ok=True)
        pixels = np.round(np.clip(spine + 0.1 * rng.random((SIDE, SIDE)), 0, 1) * 255).astype(np.uint8)
        write_image(path, kind, pixels)
    return root


def make_model(folder: str) -> str:
    """A tiny random model (its ROI tile 32): the resume skips every image, the bar's job runs it."""
    import torch

    from xvertfast.model import XVertNet, XVertNetStage, save_model

    path = os.path.join(folder, "tiny-model")
    if not os.path.isdir(path):
        torch.manual_seed(0)
        save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]), path,
                   extra={"training": {"config": {"roi_size": 32}}})  # fmt: skip
    return path


class WholePathResolves:
    """What a job resolved before 38cec01: every path whole, each time (``os.path.realpath``)."""

    def __call__(self, path: str) -> str:
        return os.path.realpath(path)


#: The modules that name RealPaths: the job's resolver is swapped in each for the comparison.
RESOLVER_MODULES = ("xvertfast.io.files", "xvertfast.infer.batch", "xvertfast.io.job_folder")
_PACKAGES_OWN = None  # the package's RealPaths, once looked up


def resolving(whole_paths: bool) -> None:
    """Makes the jobs that follow resolve paths whole at each use, or as the package does."""
    import importlib

    global _PACKAGES_OWN
    if _PACKAGES_OWN is None:  # (before any swap: the files module's own name is swapped too)
        from xvertfast.io.files import RealPaths as _PACKAGES_OWN
    modules = [importlib.import_module(name) for name in RESOLVER_MODULES]
    missing = [module.__name__ for module in modules if not hasattr(module, "RealPaths")]
    if missing:  # (skipped, such a module would resolve the package's way on both sides; checked before any swap)
        raise RuntimeError(f"{', '.join(missing)} no longer names RealPaths: update RESOLVER_MODULES to the modules "
                           "that do, or the comparison is not of the two ways of resolving")  # fmt: skip
    for module in modules:
        module.RealPaths = WholePathResolves if whole_paths else _PACKAGES_OWN


def counted_calls(job) -> dict[str, int]:
    """The os.lstat and os.path.realpath calls ``job()`` makes (a realpath's own lstat calls among
    the first)."""
    calls = {"lstat": 0, "realpath": 0}
    real = {"lstat": os.lstat, "realpath": os.path.realpath}

    def counting(name):
        def counted(*args, **kwargs):
            calls[name] += 1
            return real[name](*args, **kwargs)

        return counted

    os.lstat, os.path.realpath = counting("lstat"), counting("realpath")
    try:
        job()
    finally:
        os.lstat, os.path.realpath = real["lstat"], real["realpath"]
    return calls


def measure_resume(folder: str, count: int, depth: int, repeats: int, model: str) -> dict[str, dict]:
    """Per way of resolving: the lstat and realpath calls of one resume and the seconds of ``repeats`` more."""
    from bench.batch_planning import write_ledger
    from xvertfast.infer import Enhancer
    from xvertfast.infer.batch import _plan
    from xvertfast.io.files import discover

    root = make_archive(os.path.join(folder, f"archive{count}-d{depth}"), count, depth)
    out = os.path.join(folder, f"out{count}-d{depth}")
    written = out + ".written"  # (made once the ledger is whole: a run killed before it left a part of one)
    enhancer = Enhancer(model, device="cpu")
    if not os.path.exists(written):
        shutil.rmtree(out, ignore_errors=True)
        planned, _ = _plan(discover([root], exclude=[out]), out, "png16")
        write_ledger(enhancer, planned, out)
        open(written, "w").close()

    report = out + ".report.json"  # (outside the archive and the outputs: the file a rerun is given again)

    def resume(with_report: bool = False) -> float:
        summary = enhancer.enhance_files([root], out, fmt="png16", progress=False, log=lambda _: None,
                                         report=report if with_report else None)  # fmt: skip
        if not summary.skipped == summary.found == count:
            raise RuntimeError(f"{out}: a resume found {summary.found} inputs in {root} and skipped {summary.skipped} "
                               f"as done, not all {count} ({summary.line()}): --folder {folder} holds what another "
                               "run left (changed by hand, or of another xvertfast); delete it and run again")  # fmt: skip
        return summary.seconds

    ways = {"each folder once (RealPaths)": (False, False),  # (resolving whole, given the report)
            "each folder once, given the --report it wrote": (False, True),
            "each path whole (os.path.realpath)": (True, False)}  # fmt: skip
    first = next(f.path for f in discover([root]))
    folders = len(os.path.abspath(first).split(os.sep)) - 2  # (the path's folders, not '' before the root nor the file)
    results = {way: {"seconds": [], "folders": folders} for way in ways}
    resume(with_report=True)  # (the page cache and the imports warmed, for all; the report written)
    for way, (whole, with_report) in ways.items():
        resolving(whole)
        results[way].update(counted_calls(lambda: resume(with_report)))
    for _ in range(repeats):
        for way, (whole, with_report) in ways.items():
            resolving(whole)
            results[way]["seconds"].append(resume(with_report))
    resolving(False)
    return results


def measure_bar(folder: str, count: int, depth: int, model: str) -> dict[str, float]:
    """The redraws and stderr bytes of ``xvertfast enhance`` over ``count`` images."""
    root = make_archive(os.path.join(folder, f"bar{count}-d{depth}"), count, depth)
    out = os.path.join(folder, f"bar-out{count}-{time.time_ns()}")
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "xvertfast", "enhance", root, "-o", out, "--model", model,
                          "--device", "cpu", "--workers", "1"], capture_output=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    seconds = time.perf_counter() - t
    if run.returncode != 0:
        raise RuntimeError(f"xvertfast enhance: exit {run.returncode}: {run.stderr[-2000:].decode(errors='replace')}")
    err = run.stderr
    return {"images": count, "redraws": err.count(b"\r"), "stderr kB": len(err) / 1e3,
            "warning lines": err.count(b"warning: "), "seconds": seconds}


def resume_table(results: dict[str, dict], count: int, depth: int) -> str:
    folders = next(iter(results.values()))["folders"]
    lines = [f"| resolving, {count} inputs {depth} folders below the archive ({folders} on the path), all done | "
             "lstat calls | realpath calls | a resume's s, median | range |", "|---|---:|---:|---:|---|"]  # fmt: skip
    for way, r in results.items():
        s = r["seconds"]
        lines.append(f"| {way} | {r['lstat']:,} | {r['realpath']:,} | {statistics.median(s):.2f} | "
                     f"{min(s):.2f}-{max(s):.2f} |")  # fmt: skip
    return "\n".join(lines)


def bar_table(bar: dict[str, float]) -> str:
    return "\n".join(["| images enhanced | bar redraws (carriage returns) | stderr kB | warning lines | seconds |",
                      "|---:|---:|---:|---:|---:|",
                      f"| {bar['images']} | {bar['redraws']} | {bar['stderr kB']:.0f} | {bar['warning lines']} | "
                      f"{bar['seconds']:.0f} |"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000, help="images in the archive resumed")
    parser.add_argument("--depth", type=int, default=7, help="folders between the archive's root and an image")
    parser.add_argument("--repeats", type=int, default=3, help="timed resumes of each way of resolving")
    parser.add_argument("--bar-count", type=int, default=2000, help="images the progress bar's job enhances (0: none)")
    parser.add_argument("--folder", default=None, help="where the archives and outputs go (default: a new temporary "
                                                       "one; given again, what is there is reused, but for a ledger "
                                                       "a killed run left unfinished)")  # fmt: skip
    args = parser.parse_args()
    if args.depth < 3 or args.count < 1 or args.repeats < 1 or args.bar_count < 0:
        parser.error("--depth must be 3 or more, --count and --repeats 1 or more, --bar-count 0 or more")
    import tempfile

    folder = args.folder or tempfile.mkdtemp(prefix="xvf-archive-")
    os.makedirs(folder, exist_ok=True)
    model = make_model(folder)
    print(heading("archive_resume.py"))
    print(resume_table(measure_resume(folder, args.count, args.depth, args.repeats, model), args.count, args.depth))
    if args.bar_count:
        print()
        print(bar_table(measure_bar(folder, args.bar_count, args.depth, model)))


if __name__ == "__main__":
    main()
