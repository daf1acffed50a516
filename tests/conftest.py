"""Shared test fixtures: devices (CUDA ones marked and skipped cleanly) and fresh random seeds.

Every run draws new random inputs; the session seed is printed in the report
header and can be replayed with ``XVF_TEST_SEED=<seed> pytest ...``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import zlib

import pytest
import torch

#: The shared development radiographs (``../shared/data/cxr-dev`` beside the repository, or
#: XVF_CXR_DEV); tests that need them skip with a reason when they are absent.
CXR_DEV = os.environ.get(
    "XVF_CXR_DEV",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cxr-dev"),
)
needs_cxr_dev = pytest.mark.skipif(
    not os.path.isdir(CXR_DEV), reason=f"development images not found at {CXR_DEV} (set XVF_CXR_DEV)"
)

# Started with Ctrl-C ignored (a background job of a script, nohup), the tests that press Ctrl-C
# would press it to no effect: xvertfast leaves an ignored SIGINT ignored, as it must. The tests
# run with Python's own Ctrl-C, as from a terminal; those of an ignored one set it themselves.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

SESSION_SEED = int(os.environ.get("XVF_TEST_SEED", random.SystemRandom().randrange(2**31)))
# pytest-xdist's workers are processes that import this file again: they inherit the seed through
# the environment, so the one the header and the summary print is the one every worker used.
os.environ.setdefault("XVF_TEST_SEED", str(SESSION_SEED))


def cores_shared_by_workers(environ=os.environ) -> None:
    """Under pytest-xdist (``-n 2``) each worker is a process of its own: torch's default of a
    thread a core in each would run as many threads as cores times workers, each waiting on the
    others. A worker gets its share of the cores this process may run on (at least one), and so do
    the processes its tests start (OMP_NUM_THREADS), unless OMP_NUM_THREADS says otherwise; a run
    without workers keeps torch's default."""
    if environ.get("PYTEST_XDIST_WORKER") and not environ.get("OMP_NUM_THREADS"):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores // max(1, int(environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)))
        environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


cores_shared_by_workers()


@pytest.fixture(scope="session", autouse=True)
def export_cache_of_the_run(tmp_path_factory):
    """XVF_CACHE_DIR a folder of the run's own: a test exporting with the default cache wrote the
    user's ~/.cache/xvertfast/engines. Tests that check the default location set it themselves."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XVF_CACHE_DIR", str(tmp_path_factory.mktemp("xvf-cache")))
    yield
    patch.undo()


def stage_with_statistics(width: int, depth: int, dtype=torch.float32, spread: float = 1.0,
                          upsample: str = "bilinear"):  # fmt: skip
    """An XVertNetStage (eval mode) whose batch norms are far from the identity, as a trained
    stage's are: random running statistics and affine parameters (``spread`` scales their range)."""
    from xvertfast.model import XVertNetStage

    stage = XVertNetStage(width, depth, upsample).to(dtype)
    for mod in stage.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5 * spread, 0.5 * spread)
            mod.running_var.uniform_(1.0 - 0.5 * spread, 1.0 + 2.0 * spread)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.3 * spread, 0.3 * spread)
    return stage.eval()


def cuda_ready() -> bool:
    """A GPU and CUDA kernels built for it (a default build has none a T4 or V100 can run)."""
    from xvertfast._extension import cuda_kernels_run_on

    return torch.cuda.is_available() and cuda_kernels_run_on(torch.device("cuda", 0))


def pytest_report_header(config):
    return f"xvertfast test seed: XVF_TEST_SEED={SESSION_SEED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """``-q`` (the README's command) shows no header: a failed run says its seed at the end."""
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        terminalreporter.write_line(f"xvertfast test seed: XVF_TEST_SEED={SESSION_SEED} replays these inputs")


def pytest_collection_modifyitems(config, items):
    if cuda_ready():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and the CUDA kernels (xvertfast info)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:  # (not `"cuda" in item.keywords`: a test id "cuda" is one)
            item.add_marker(skip)


@pytest.fixture
def seed(request) -> int:
    """A per-test seed derived from the session seed; also seeds torch's global generator."""
    value = (SESSION_SEED + zlib.crc32(request.node.nodeid.encode())) % 2**31
    torch.manual_seed(value)
    return value


#: Parametrisation over the devices the ops run on.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture
def no_tf32():
    """fp32 convolutions and matmuls on a GPU as on the CPU, for tests that compare the two at fp32
    tolerances: cuDNN runs fp32 convolutions in TF32 by default on Ampere and later (a 10-bit
    mantissa: ~1e-3 relative). Inference at ``--precision fp32`` turns it off itself
    (``backends.without_tf32``); training does not. Undone after the test; nothing changes on the CPU."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def folder_state(folder) -> dict | None:
    """Every entry under ``folder`` (a pathlib.Path) with its bytes and modification time (None:
    no folder there): equal before and after, a dry run wrote, touched and removed nothing."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}  # fmt: skip


def let_go_when_waited_for(monkeypatch, look, after: float = 0.2) -> None:
    """Closes ``look`` (a lock held for a moment, as a status or a starting shard takes one) once
    ``hold_lock`` has waited ``after`` seconds for it, on a fake clock: each of its sleeps moves the
    clock on and returns at once. What a 0.2 s ``threading.Timer`` did against the 1 s patience,
    without a thread a loaded machine could hold back, nor real sleeping; a patience shorter than
    ``after`` still finds the lock held and fails the test (b788953 let go at the first wait, so
    any patience at all passed)."""
    import types

    from xvertfast import resume

    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds
        if clock[0] >= after and not look.closed:
            look.close()

    monkeypatch.setattr(resume, "time", types.SimpleNamespace(monotonic=lambda: clock[0], sleep=sleep))


@contextlib.contextmanager
def traced_memory():
    """Yields a namespace whose ``held`` and ``peak`` are, once the block ends, the bytes Python
    allocations (numpy's included) held at its end and at most within it, above those held at its
    start. Where tracemalloc already traces (PYTHONTRACEMALLOC=1, another tool), it goes on tracing
    and what was traced before is not counted: start() then stop() of a test's own counted it, and
    stopped the other's tracing."""
    import tracemalloc
    import types

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    memory = types.SimpleNamespace(held=0, peak=0)
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        yield memory
        current, peak = tracemalloc.get_traced_memory()
        memory.held, memory.peak = current - start, peak - start
    finally:
        if not was_tracing:
            tracemalloc.stop()


class ClosedPipe:
    """A stderr whose reader exited (`|& head -1`): every write fails with EPIPE."""

    def write(self, text):
        import errno

        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))

    def flush(self):
        self.write("")


def said_around_the_bar(err: str, words: str = "error|warning") -> None:
    """Asserts that a progress bar was drawn on ``err`` (stderr) and that each ``error: `` and
    ``warning: `` said (or ``words``) starts a line of its own: printed plainly, it
    followed the bar's text, which ends without a newline ("...[00:00<?, ?img/s]error: ...").
    (The summary's indented repeats are not looked at.)"""
    import re

    assert re.search(r"\| *\d+/\d+ \[", err), f"no progress bar drawn:\n{err}"
    said = [m.start() for m in re.finditer(rf"(?<!  )(?:{words}): ", err)]
    assert said and all(start == 0 or err[start - 1] in "\r\n" for start in said), err


class BuiltWithNvcc:
    """A ``_C`` with CUDA kernels (sm_80, sm_90, PTX), compiled against a CUDA build of torch or a
    CPU one, as xvertfast._extension and ``xvertfast info`` ask about it (tests on machines without
    a GPU)."""

    def __init__(self, torch_cuda: bool):
        self.torch_cuda = torch_cuda

    def cuda_compiled(self):
        return True

    def torch_cuda_build(self):
        return self.torch_cuda

    def cuda_archs(self):
        return "sm_80,sm_90,compute_90"

    def cuda_device_count(self):  # the GPU its tests ask about (cuda:0), as torch sees it
        return 1

    def openmp(self):
        return True
