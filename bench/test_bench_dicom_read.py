"""JPEG 2000 DICOM files read by read_image on two threads: pydicom's own plugin against
xvertfast's imagecodecs plugin, on the same files in the same run.

    pytest bench/test_bench_dicom_read.py --benchmark-only     (or python bench/dicom_read.py)
"""

from __future__ import annotations

import concurrent.futures as cf

import pytest

from bench import SMALL
from bench.dicom_read import make_files, without_plugin
from xvertfast.io import read

pytest.importorskip("imagecodecs", reason="the plugin needs imagecodecs (the dicom-codecs extra)")
pytest.importorskip("openjpeg", reason="writing the files and pydicom's own plugin need pylibjpeg-openjpeg")

COUNT, SHAPE = (2, (256, 320)) if SMALL else (8, (2048, 2500))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(str(tmp_path_factory.mktemp("j2k")), COUNT, *SHAPE)


def read_all(paths):
    with cf.ThreadPoolExecutor(2) as pool:
        return list(pool.map(read.read_image, paths))


def test_read_pydicom_plugin(benchmark, files):
    benchmark.group = f"{COUNT} JPEG 2000 DICOM {SHAPE[0]}x{SHAPE[1]}, 2 threads"
    with without_plugin:
        benchmark(read_all, files)


def test_read_imagecodecs_plugin(benchmark, files):
    benchmark.group = f"{COUNT} JPEG 2000 DICOM {SHAPE[0]}x{SHAPE[1]}, 2 threads"
    images = benchmark(read_all, files)
    assert [im.values.shape for im in images] == [SHAPE] * COUNT
