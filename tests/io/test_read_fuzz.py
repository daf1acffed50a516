"""A small, deterministic fuzz of read_image: damaged files fail as ImageReadError naming the file.

A batch job treats ImageReadError (and the other FILE_ERRORS) as one file's fault and goes on;
any other exception stops it. Each seed below is cut at many lengths and has bytes of its
header overwritten; every outcome must be an image or an ImageReadError that names the file.
(The full campaign, with timeouts, memory limits and wrong-image checks, found the cases the
tests in test_read.py hold; this one keeps the broad property.)
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from PIL import Image

from xvertfast.io import ImageReadError, read_image

from tests.io.test_read import make_dicom


def _seeds(folder) -> dict[str, bytes]:
    import tifffile
    from pydicom.uid import RLELossless

    values = (np.arange(48 * 40).reshape(48, 40) * 37 % 4096).astype(np.uint16)
    Image.fromarray(values).save(folder / "s16.png")
    Image.fromarray((values >> 4).astype(np.uint8)).save(folder / "s8.jpg", quality=90)
    tifffile.imwrite(folder / "tiled.tif", values, tile=(16, 16), compression="zlib")
    tifffile.imwrite(folder / "jpeg.tif", (values >> 4).astype(np.uint8), compression="jpeg", rowsperstrip=16)
    tifffile.imwrite(folder / "strips.tif", values, rowsperstrip=8)
    make_dicom(folder / "plain.dcm", values)
    ds = make_dicom(folder / "rle.dcm", values)
    ds.compress(RLELossless, encoding_plugin="pydicom")
    ds.save_as(folder / "rle.dcm")
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _mutants(name: str, data: bytes, rng: random.Random):
    for cut in sorted({*range(1, 40), *range(40, 400, 7), *(len(data) * k // 16 for k in range(1, 16))}):
        if cut < len(data):
            yield f"cut{cut}", data[:cut]
    for k in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(min(len(data), 1024))] = rng.randrange(256)
        yield f"flip{k}", bytes(damaged)


@pytest.mark.filterwarnings("ignore")
def test_damaged_files_read_or_fail_as_an_image_read_error_naming_the_file(tmp_path):
    (tmp_path / "seeds").mkdir()
    rng = random.Random(20261205)
    wrong = []
    for name, data in _seeds(tmp_path / "seeds").items():
        for label, mutant in _mutants(name, data, rng):
            path = tmp_path / f"{label}-{name}"
            path.write_bytes(mutant)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    read_image(path, warn=False)
            except ImageReadError as exc:
                if not str(exc).startswith(f"{path}: ") or not exc.problem.strip(" :"):
                    wrong.append(f"{path.name}: {exc!r}")
            except Exception as exc:  # a bug's error: it would stop a batch job
                wrong.append(f"{path.name}: {type(exc).__name__}: {exc}")
            path.unlink()
    assert not wrong, "\n".join(wrong[:20])
