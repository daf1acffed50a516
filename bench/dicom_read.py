"""JPEG 2000 DICOM files read per second by read_image on 1..N threads: pydicom's own plugin
(pylibjpeg-openjpeg, which holds the GIL while it decodes) against xvertfast's imagecodecs
plugin (xvertfast/io/dicom_codecs.py, which does not), in the same run, as a RESULTS.md table.

    python bench/dicom_read.py [--count 8] [--threads 1,2] [--size 2048x2500]

The files are lossless JPEG 2000 copies of a cxr-dev image (12 bits, MONOCHROME2), written
to a temporary folder. The run fails unless both decoders give the same values.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import sys
import tempfile
import time
from unittest import mock

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench.report import heading  # noqa: E402
from xvertfast.io import dicom_codecs, read  # noqa: E402

#: Within it, read_image leaves JPEG 2000 to pydicom's own plugins.
without_plugin = mock.patch.object(dicom_codecs, "available_for", lambda syntax: False)

SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cxr-dev", "nih_00011585_000.png")


def make_files(folder: str, count: int, rows: int, cols: int) -> list[str]:
    """``count`` lossless JPEG 2000 DICOM files of a 12-bit radiograph of rows x cols."""
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

    if os.path.exists(SOURCE):
        image = np.asarray(Image.open(SOURCE).convert("L").resize((cols, rows), Image.BILINEAR), dtype=np.uint16) << 4
    else:  # a smooth ramp with noise where the development images are not beside the repository
        rng = np.random.default_rng(0)
        image = (np.add.outer(np.arange(rows), np.arange(cols)) * 4095 // (rows + cols) + rng.integers(0, 64, (rows, cols)))
        image = image.clip(0, 4095).astype(np.uint16)
    paths = []
    for k in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "CR", rows, cols, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = np.roll(image, k, axis=1).tobytes()  # not the same bytes every time
        ds.compress(JPEG2000Lossless)
        path = os.path.join(folder, f"j2k_{k}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def files_per_second(paths: list[str], threads: int, rounds: int = 2) -> tuple[float, list]:
    """Best of ``rounds``: files read per second on ``threads`` threads, and the images."""
    best, images = 0.0, []
    for _ in range(rounds):
        start = time.perf_counter()
        with cf.ThreadPoolExecutor(threads) as pool:
            images = list(pool.map(read.read_image, paths))
        best = max(best, len(paths) / (time.perf_counter() - start))
    return best, images


def decoders() -> str:
    """The two decoders' versions, which the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("pylibjpeg-openjpeg", "imagecodecs"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} (version unknown)")
    return ", ".join(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=8, help="files (default: %(default)s)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, one row each (default: %(default)s)")
    ap.add_argument("--size", default="2048x2500", help="ROWSxCOLS of each file (default: %(default)s)")
    args = ap.parse_args()
    rows, cols = (int(v) for v in args.size.lower().split("x"))
    if not dicom_codecs.available_for("1.2.840.10008.1.2.4.90"):
        sys.exit("needs imagecodecs (pip install 'xvertfast[dicom-codecs]')")
    with tempfile.TemporaryDirectory() as folder:
        paths = make_files(folder, args.count, rows, cols)
        print(f"{heading('dicom_read.py')}; {decoders()}\n")
        print(f"{args.count} lossless JPEG 2000 DICOM files of {rows} x {cols}, 12 bits; {os.cpu_count()} CPUs; "
              "best of 2 rounds\n")  # fmt: skip
        print("| threads | pydicom's plugin (files/s) | imagecodecs plugin (files/s) | speed-up (imagecodecs vs pydicom) |")
        print("|---:|---:|---:|---:|")
        for threads in (int(t) for t in args.threads.split(",")):
            with without_plugin:
                theirs, want = files_per_second(paths, threads)
            ours, got = files_per_second(paths, threads)
            for a, b in zip(got, want):
                if not np.array_equal(a.values, b.values):
                    sys.exit(f"{a.path}: the two decoders differ")
            print(f"| {threads} | {theirs:.2f} | {ours:.2f} | {ours / theirs:.2f}x |")


if __name__ == "__main__":
    main()
