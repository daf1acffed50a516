"""`xvertfast enhance` as two shards at once (one thread each) vs one job on two threads.

    pytest bench/test_bench_shards.py --benchmark-only      (or python bench/shards_throughput.py)

Both through the CLI, their processes' start-up inside the timing, as a user's job has it;
the same images and model (bench/enhance_inputs.py). Whichever runs second checks that both
enhanced every image, within one grey level (the thread counts differ).
"""

from __future__ import annotations

import os

import pytest

from bench.enhance_inputs import COUNT, DATA, SIZE, make_folder, make_model
from bench.shards_throughput import count_differences, start_enhance, wait_all


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    if not os.path.isdir(DATA):
        pytest.skip(f"development images not found at {DATA} (set XVF_CXR_DEV)")
    root = tmp_path_factory.mktemp("shards")
    paths = make_folder(str(root / "in"), max(COUNT, 4), SIZE)
    return root, paths, make_model(str(root))


def _run(root, model, name: str, shards: int) -> None:
    out = root / name
    if shards == 1:
        wait_all([start_enhance(str(root / "in"), str(out), model, 2)])
    else:
        wait_all([start_enhance(str(root / "in"), str(out), model, 1, f"{k}/{shards}") for k in range(1, shards + 1)])


@pytest.mark.parametrize("shards", [1, 2], ids=["one_job_2_threads", "2_shards_1_thread_each"])
def test_enhance_shards(benchmark, workload, shards):
    root, paths, model = workload
    benchmark.group = "enhance, shards on one machine"
    name = f"run{shards}"
    benchmark.pedantic(lambda: _run(root, model, name, shards), rounds=1, warmup_rounds=0)
    benchmark.extra_info["images"] = len(paths)
    if all((root / f"run{k}" / os.path.basename(p)).is_file() for k in (1, 2) for p in paths):
        assert count_differences(paths, str(root / "run1"), str(root / "run2"))[1] <= 1
