"""Batch enhancement throughput: the pipelined ``enhance_files`` vs a naive sequential loop.

    pytest bench/test_bench_enhance.py --benchmark-only      (or python bench/enhance_throughput.py)

Same model, same images (COUNT NIH radiographs at 1024^2), same run. The
pipeline overlaps decoding, preprocessing (WLS), the network and encoding, and
batches the ROI tiles of several images per network call. Whichever of the two runs second
checks that both wrote the same images, pixel for pixel.
"""

from __future__ import annotations

import os
import shutil

import pytest

from bench.enhance_inputs import DATA, assert_same_outputs, make_folder, make_model, sequential
from xvertfast.infer import Enhancer


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    root = tmp_path_factory.mktemp("enhance")
    paths = make_folder(str(root / "in"))
    enhancer = Enhancer(make_model(str(root)), device="auto", backend="torch", mode="spine", batch_size=8)
    return root, paths, enhancer


def test_enhance_pipelined(benchmark, workload):
    root, paths, enhancer = workload
    benchmark.group = "enhance files"
    out = root / "pipelined"

    def run():
        shutil.rmtree(out, ignore_errors=True)
        summary = enhancer.enhance_files([str(root / "in")], str(out), fmt="png8", workers=2, progress=False)
        assert summary.done == len(paths) and not summary.failed

    benchmark.pedantic(run, rounds=1, warmup_rounds=1)
    benchmark.extra_info["images"] = len(paths)
    benchmark.extra_info["workers"] = 2
    compare_if_both_ran(root, paths)


def test_enhance_sequential_reference(benchmark, workload):
    root, paths, enhancer = workload
    benchmark.group = "enhance files"
    benchmark.pedantic(lambda: sequential(enhancer, paths, str(root / "sequential")), rounds=1, warmup_rounds=1)
    benchmark.extra_info["images"] = len(paths)
    compare_if_both_ran(root, paths)


def compare_if_both_ran(root, paths):
    folders = [root / "pipelined", root / "sequential"]
    if all((f / os.path.basename(p)).is_file() for f in folders for p in paths):
        assert_same_outputs(paths, *map(str, folders))
