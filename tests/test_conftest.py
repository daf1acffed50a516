"""The suite's own rules: what is skipped without a GPU, the threads and the seed of xdist workers."""

import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests import conftest


class _Item(SimpleNamespace):
    def get_closest_marker(self, name):
        return next((m for m in self.markers if m.name == name), None)

    def add_marker(self, marker):
        self.markers.append(marker.mark if hasattr(marker, "mark") else marker)


def test_a_parameter_named_cuda_is_not_taken_for_the_cuda_marker(monkeypatch):
    # `"cuda" in item.keywords` held for a test parametrised with the value "cuda" (its id is a
    # keyword): such a test, e.g. one that checks method="cuda" is refused on a CPU tensor, was
    # skipped without a GPU, where it is meant to run
    monkeypatch.setattr(conftest, "cuda_ready", lambda: False)
    by_id = _Item(keywords={"test_x[cuda]": 1, "cuda": 1}, markers=[])
    marked = _Item(keywords={"test_y": 1, "cuda": 1}, markers=[pytest.mark.cuda.mark])
    conftest.pytest_collection_modifyitems(None, [by_id, marked])
    assert by_id.get_closest_marker("skip") is None
    assert marked.get_closest_marker("skip") is not None


@pytest.mark.parametrize("tracing_before", [False, True])
def test_traced_memory_counts_from_its_start_and_leaves_tracing_as_it_found_it(tracing_before):
    # tracemalloc.start() then stop() in a test counted, where tracing was on already
    # (PYTHONTRACEMALLOC=1), all that was traced before as the test's peak, and stopped it
    import tracemalloc

    import numpy as np

    was = tracemalloc.is_tracing()  # (on from the start under PYTHONTRACEMALLOC=1)
    if tracing_before and not was:
        tracemalloc.start()
    before = np.ones(1 << 21)  # 16 MiB, traced where tracing was on before the block
    try:
        with conftest.traced_memory() as memory:
            kept = np.ones(1 << 17)  # 1 MiB
            np.ones(1 << 18)  # 2 MiB, let go
        assert (1 << 20) <= memory.held < (1 << 20) + (1 << 16), memory.held
        assert (3 << 20) <= memory.peak < (3 << 20) + (1 << 16), memory.peak
        assert tracemalloc.is_tracing() == (tracing_before or was)
    finally:
        if tracing_before and not was:
            tracemalloc.stop()
    assert kept.nbytes + before.nbytes == 17 << 20


@pytest.mark.parametrize("cores, environ, threads", [
    (2, {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2"}, [1]),  # -n 2 on 2 cores
    (8, {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2"}, [4]),  # its share of 8 cores
    (2, {"PYTEST_XDIST_WORKER": "gw3", "PYTEST_XDIST_WORKER_COUNT": "4"}, [1]),  # more workers than cores
    (8, {"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2", "OMP_NUM_THREADS": "3"}, []),  # the user's
    (8, {}, []),  # no workers: torch's default, a thread a core
])  # fmt: skip
def test_an_xdist_worker_runs_torch_on_its_share_of_the_cores(cores, environ, threads, monkeypatch):
    # each worker got one thread however many cores the machine had: -n 2 on 8 cores used 2 of them
    set_to = []
    monkeypatch.setattr(conftest.torch, "set_num_threads", set_to.append)
    monkeypatch.setattr(conftest.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(conftest.os, "cpu_count", lambda: cores)
    given = environ.get("OMP_NUM_THREADS")
    conftest.cores_shared_by_workers(environ)
    assert set_to == threads
    assert environ.get("OMP_NUM_THREADS") == (str(threads[0]) if threads else given)


def test_the_session_seed_is_left_in_the_environment_for_the_workers():
    # each pytest-xdist worker imports conftest.py afresh: without the seed in the environment it
    # drew its own, and the seed the run printed replayed none of the workers' inputs
    assert int(os.environ["XVF_TEST_SEED"]) == conftest.SESSION_SEED


def test_a_failed_run_under_xdist_prints_the_seed_its_worker_used(tmp_path):
    # `-q` shows no header: a failed run says its seed at the end, and it must be the one the worker
    # (a process of its own, which imported conftest.py afresh) drew its inputs from. One worker
    # (-n 1) and no other plugins keep it to two imports of torch.
    pytest.importorskip("xdist")
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F401,F403\n")
    (tmp_path / "test_seeded.py").write_text(
        "import os\n\nfrom tests import conftest\n\n\ndef test_a():\n"
        "    assert os.environ['PYTEST_XDIST_WORKER']  # (run by a worker)\n"
        "    raise AssertionError(f'seed {conftest.SESSION_SEED}')\n"
    )  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items()
           if k not in ("XVF_TEST_SEED", "PYTHONPATH") and not k.startswith("PYTEST_")}  # fmt: skip
    env.update(PYTHONPATH=root, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "1", "-p", "xdist.plugin", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "base"), "test_seeded.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    said = re.findall(r"^xvertfast test seed: XVF_TEST_SEED=(\d+) replays these inputs$", run.stdout, re.M)
    used = re.findall(r"AssertionError: seed (\d+)", run.stdout)
    assert run.returncode == 1 and said and used, run.stdout + run.stderr
    assert set(used) == set(said), run.stdout


def test_the_export_memo_keys_a_graph_by_the_forward_it_runs(monkeypatch):
    """tests/infer's memo of torch.onnx.export hands a graph the program an earlier export of the
    same graph made: a test that patches a module's forward must not be handed the unpatched one."""
    import torch

    from tests.infer.conftest import graph_key

    class Graph(torch.nn.Module):
        def forward(self, x):
            return x + 1

    graph, args = Graph(), (torch.zeros(1, 1, 4, 4),)
    before = graph_key(graph, args, {})
    assert graph_key(graph, args, {}) == before
    monkeypatch.setattr(Graph, "forward", lambda self, x: x * 2)
    assert graph_key(graph, args, {}) != before
