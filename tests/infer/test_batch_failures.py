"""An enhance job whose steps fail in unexpected ways: the file at fault fails, named; the job goes on
(and stops, with its summary, only where every later file would fail the same way)."""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import os
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

import xvertfast.infer.batch as batch
from xvertfast.infer import Enhancer
from xvertfast.model import save_model
from tests.infer.test_enhance import TILE, chest_like, tiny_model

NAMES = ("a.png", "b.png", "c.png")
#: What torch >= 2.8 raises for a CUDA error (an illegal memory access); a RuntimeError before it
#: (pyproject declares torch >= 2.4), and a RuntimeError subclass since
AcceleratorError = getattr(torch, "AcceleratorError", RuntimeError)


@pytest.fixture
def model_dir(tmp_path, seed):
    return save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}})


@pytest.fixture
def src(tmp_path, seed):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(NAMES):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(folder / name)
    return folder


def outputs(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def run(enh, src, out, **kwargs):
    lines: list[str] = []
    summary = enh.enhance_files([str(src)], str(out), progress=False, log=lines.append, **kwargs)
    return summary, lines


def by_name(summary) -> dict[str, tuple[str, str | None]]:
    return {r.input.rsplit("/", 1)[1]: (r.status, r.error) for r in summary.records}


def job_futures(monkeypatch) -> dict[str, list[cf.Future]]:
    """The futures the job's thread pools hand out, by the pool's thread name prefix (xvf-read,
    xvf-write), kept as submitted: what the job's loop looks at, so a test waits for them rather
    than for a sleep that a loaded machine outlasts."""
    futures: dict[str, list[cf.Future]] = collections.defaultdict(list)

    class Pool(cf.ThreadPoolExecutor):
        def __init__(self, *args, thread_name_prefix: str = "", **kwargs):
            super().__init__(*args, thread_name_prefix=thread_name_prefix, **kwargs)
            self.kept = futures[thread_name_prefix]

        def submit(self, fn, /, *args, **kwargs):
            future = super().submit(fn, *args, **kwargs)
            self.kept.append(future)
            return future

    monkeypatch.setattr(batch.cf, "ThreadPoolExecutor", Pool)
    return futures


def wait_until(condition, what: str) -> None:
    """Waits for ``condition()``; the timeout only ends a job that deadlocks."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def reads_finish_together(enh, monkeypatch, n: int = len(NAMES)):
    """The n reads end at once, the first last, so that the network gets them as one batch: the job
    takes the reads after the first into its batch where their futures are done, so the first read
    waits for those futures themselves. It slept 0.3 s instead, and a read thread a loaded machine
    held back longer made a batch short (with the code right)."""
    barrier, real, futures = threading.Barrier(n), enh.prepare, job_futures(monkeypatch)

    def prepare(rad):
        prep = real(rad)
        barrier.wait(timeout=60)
        if rad.path.endswith(NAMES[0]):  # (the job waits for its first read, then takes those done)
            wait_until(lambda: sum(f.done() for f in futures["xvf-read"]) == n - 1, "the other reads did not finish")
        return prep

    monkeypatch.setattr(enh, "prepare", prepare)


def test_an_unexpected_error_reading_one_file_fails_it_alone(tmp_path, model_dir, src, monkeypatch):
    enh = Enhancer(str(model_dir), device="cpu")
    real = enh.prepare

    def prepare(rad):
        if rad.path.endswith("b.png"):
            raise MemoryError("std::bad_alloc")  # a huge image: the WLS solver's allocation fails
        return real(rad)

    monkeypatch.setattr(enh, "prepare", prepare)
    report = tmp_path / "r.json"
    summary, lines = run(enh, src, tmp_path / "out", workers=1, report=str(report))
    status = by_name(summary)
    assert status["a.png"][0] == status["c.png"][0] == "done" and summary.stopped is None
    assert status["b.png"][0] == "failed" and str(src / "b.png") in status["b.png"][1]
    assert "std::bad_alloc" in status["b.png"][1] and "out of memory" in status["b.png"][1]
    assert any(str(src / "b.png") in line and line.startswith("error:") for line in lines)
    assert sorted(outputs(tmp_path / "out")) == ["a.png", "c.png"]
    assert json.loads(report.read_text())["summary"]["failed"] == 1


def fail_writing(monkeypatch, name: str, exc: BaseException) -> None:
    """Makes the job's write_image raise ``exc`` for the output ending in ``name``, and write the others."""
    real = batch.write_image

    def write_image(path, *args, **kwargs):
        if path.endswith(name):
            raise exc
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "write_image", write_image)


def test_an_unexpected_error_writing_one_file_fails_it_alone(tmp_path, model_dir, src, monkeypatch):
    enh = Enhancer(str(model_dir), device="cpu")
    fail_writing(monkeypatch, "b.png", RuntimeError("encoder crashed"))
    summary, _ = run(enh, src, tmp_path / "out", workers=2)
    status = by_name(summary)
    assert status["a.png"][0] == status["c.png"][0] == "done" and summary.stopped is None
    assert status["b.png"] == ("failed", f"{src / 'b.png'}: encoder crashed")
    assert sorted(outputs(tmp_path / "out")) == ["a.png", "c.png"]


@pytest.mark.parametrize("exc", [OSError(5, "Input/output error"), TypeError("a bug")], ids=["io-error", "bug"])
@pytest.mark.parametrize("redo", [False, True], ids=["new", "redo"])
def test_status_counts_no_output_of_an_image_whose_write_failed(tmp_path, model_dir, src, monkeypatch, exc, redo):
    # the output was not made (or, redone for an edited input, its old one was left), yet the ledger
    # still said it was being written: status gave "1 started and not finished (in flight, left by a
    # killed run, ...)" after a run that had ended
    from xvertfast.io.job_folder import job_status

    enh, out = Enhancer(str(model_dir), device="cpu"), tmp_path / "out"
    if redo:
        run(enh, src, out, workers=1)
        Image.fromarray(np.round(chest_like(99) * 255).astype(np.uint8)).save(src / "b.png")  # edited
    fail_writing(monkeypatch, "b.png", exc)
    if isinstance(exc, TypeError):  # a bug stops the job with its traceback
        with pytest.raises(TypeError):
            run(enh, src, out, workers=1)
    else:
        assert by_name(run(enh, src, out, workers=1)[0])["b.png"][0] == "failed"
    status = job_status(str(out), "enhance")
    assert status.unfinished == 0 and "b.png" not in outputs(out)  # (the old one is not taken for its output)
    monkeypatch.undo()
    summary, _ = run(enh, src, out, workers=1)  # the rerun redoes it
    assert by_name(summary)["b.png"][0] == "done" and job_status(str(out), "enhance").done == len(NAMES)


def test_a_network_error_fails_only_the_image_that_caused_it(tmp_path, model_dir, src, monkeypatch):
    """The culprit (here: NaN from an fp16 overflow, refused by the stage-2 WLS) shares a batch with
    good images: the batch is run again image by image, and only the culprit fails, named."""
    clean = Enhancer(str(model_dir), device="cpu")
    run(clean, src, tmp_path / "clean", workers=3)

    enh = Enhancer(str(model_dir), device="cpu", batch_size=8)
    reads_finish_together(enh, monkeypatch)
    bad, real_prepare, real_run = [], enh.prepare, enh.run_tiles

    def prepare(rad):
        prep = real_prepare(rad)
        if rad.path.endswith("b.png"):
            bad.append(prep.xp)
        return prep

    calls = []

    def run_tiles(xp, y):
        calls.append(xp.shape[0])
        if any(torch.equal(xp[k : k + len(bad[0])], bad[0]) for k in range(len(xp) - len(bad[0]) + 1)):
            raise ValueError("wls: image contains 1 NaN or infinite value(s)")
        return real_run(xp, y)

    monkeypatch.setattr(enh, "prepare", prepare)
    monkeypatch.setattr(enh, "run_tiles", run_tiles)
    summary, lines = run(enh, src, tmp_path / "out", workers=3)
    status = by_name(summary)
    assert status["b.png"] == ("failed", f"{src / 'b.png'}: wls: image contains 1 NaN or infinite value(s)")
    assert status["a.png"][0] == status["c.png"][0] == "done" and summary.stopped is None
    n = len(bad[0])
    assert calls == [3 * n, n, n, n]  # one batch of three, then each image alone
    clean_out = outputs(tmp_path / "clean")
    assert outputs(tmp_path / "out") == {k: clean_out[k] for k in ("a.png", "c.png")}  # the same outputs


def test_a_batch_too_big_for_the_device_is_run_image_by_image(tmp_path, model_dir, src, monkeypatch):
    clean = Enhancer(str(model_dir), device="cpu")
    run(clean, src, tmp_path / "clean", workers=3)

    enh = Enhancer(str(model_dir), device="cpu", batch_size=8)
    reads_finish_together(enh, monkeypatch)
    real_run, calls = enh.run_tiles, []

    def run_tiles(xp, y):
        calls.append(xp.shape[0])
        if xp.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(xp, y)

    monkeypatch.setattr(enh, "run_tiles", run_tiles)
    summary, _ = run(enh, src, tmp_path / "out", workers=3)
    assert summary.done == 3 and not summary.failed and calls == [6, 2, 2, 2]
    assert outputs(tmp_path / "out") == outputs(tmp_path / "clean")


def test_a_bug_in_our_own_code_stops_the_job_with_its_traceback(tmp_path, model_dir, src, monkeypatch):
    """A TypeError (AttributeError, NameError) is no file's fault: it propagates, instead of failing
    every file as 'file failed' without a traceback, and the network is not rerun image by image."""
    enh = Enhancer(str(model_dir), device="cpu", batch_size=8)
    reads_finish_together(enh, monkeypatch)
    calls = []

    def run_tiles(xp, y):
        calls.append(xp.shape[0])
        raise TypeError("unsupported operand type(s) for +: 'Tensor' and 'NoneType'")

    monkeypatch.setattr(enh, "run_tiles", run_tiles)
    with pytest.raises(TypeError, match="unsupported operand"):
        run(enh, src, tmp_path / "out", workers=3)
    assert calls == [6]  # one batch of the three images (2 tiles each), not again image by image

    for step in ("prepare", "write"):
        enh = Enhancer(str(model_dir), device="cpu")

        def broken(*args, **kwargs):
            raise AttributeError(f"'Prepared' object has no attribute 'xq' ({step})")

        if step == "prepare":
            monkeypatch.setattr(enh, "prepare", broken)
        else:
            monkeypatch.setattr(batch, "write_image", broken)
        with pytest.raises(AttributeError, match=step):
            run(enh, src, tmp_path / f"out-{step}", workers=1)


def test_onnxruntime_errors_reach_the_job_as_runtime_errors():
    """onnxruntime's errors (out of memory in its arena, a CUDA failure) derive from Exception alone:
    the backend gives them as RuntimeErrors, so the job fails the image at fault instead of stopping."""
    pytest.importorskip("onnxruntime")
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    from xvertfast.infer.onnx_backend import OnnxRuntimeBackend

    class Session:
        def run(self, names, feeds):
            raise RuntimeException("Failed to allocate memory for requested buffer of size 1073741824")

    backend = object.__new__(OnnxRuntimeBackend)
    backend._sessions, backend.tile, backend.device = [Session()], 4, torch.device("cpu")
    with pytest.raises(RuntimeError, match="onnxruntime stage 1: Failed to allocate memory") as info:
        backend.run_stage(0, torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))
    assert isinstance(info.value.__cause__, RuntimeException)


def test_an_image_whose_network_step_failed_does_not_wait_for_write_room(tmp_path, model_dir, seed, monkeypatch):
    """Writes are bounded (2 * workers + batch_size in flight); an image that will not be written
    (its network step failed) is reported at once, not after a write finishes."""
    folder = tmp_path / "four"
    folder.mkdir()
    for i, name in enumerate(("a.png", "b.png", "c.png", "d.png")):
        Image.fromarray(np.round(chest_like(seed + i) * 255).astype(np.uint8)).save(folder / name)
    enh = Enhancer(str(model_dir), device="cpu", batch_size=1)  # room for 2 * 1 + 1 = 3 writes
    real_run, real_write, calls, order = enh.run_tiles, batch.write_image, [], []
    release = threading.Event()

    def run_tiles(xp, y):
        calls.append(xp.shape[0])
        if len(calls) == 4:  # d.png, the first image once a, b and c wait for a writer
            raise ValueError("wls: image contains 1 NaN or infinite value(s)")
        return real_run(xp, y)

    def write_image(path, *args, **kwargs):
        # the writes wait until d's failure is reported; the timeout only ends a job that deadlocks
        # (then the order below fails the test): 5 s was shorter than three images take on a loaded machine
        release.wait(timeout=120)
        order.append("written")
        return real_write(path, *args, **kwargs)

    def log(line):
        if line.startswith("error:"):
            order.append("failed")
            release.set()

    monkeypatch.setattr(enh, "run_tiles", run_tiles)
    monkeypatch.setattr(batch, "write_image", write_image)
    summary = enh.enhance_files([str(folder)], str(tmp_path / "out"), workers=1, progress=False, log=log)
    assert summary.done == 3 and [r.input.rsplit("/", 1)[1] for r in summary.failed] == ["d.png"]
    assert order == ["failed", "written", "written", "written"]  # it waited for a write before


def test_a_lost_device_stops_the_job_with_its_summary(tmp_path, model_dir, src, monkeypatch):
    """A CUDA error that leaves the device unusable (an illegal memory access) would fail every later
    image: the job stops, as for a full disk, and says why; the same command resumes."""
    enh = Enhancer(str(model_dir), device="cpu", batch_size=2)
    monkeypatch.setattr(batch, "_device_lost", lambda enhancer, exc: "illegal memory access" in str(exc))
    monkeypatch.setattr(enh, "run_tiles", lambda xp, y: (_ for _ in ()).throw(
        AcceleratorError("CUDA error: an illegal memory access was encountered")))  # fmt: skip
    report = tmp_path / "r.json"
    summary, lines = run(enh, src, tmp_path / "out", workers=1, report=str(report))
    assert summary.stopped.startswith("the device failed") and "illegal memory access" in summary.stopped
    assert summary.done == 0 and len(summary.failed) == 1 and str(src / "a.png") in summary.failed[0].error
    assert json.loads(report.read_text())["summary"]["not_processed"] == 2
    assert summary.stop_line().startswith("stopped early: the device failed (CUDA error: an illegal memory access")
    # (in Python's words: no command started it; it said "the same command resumes")
    assert "; 2 images not processed; call enhance_files() again the same way to resume" in summary.stop_line()
    assert not any("stopped" in line for line in lines)  # the summary says it: said here too, it was said twice


@pytest.mark.parametrize("command", [None, "xvertfast enhance in -o out --report r.json"])
def test_a_job_interrupted_while_writing_its_report_says_what_writes_it_in_its_caller_s_words(
        tmp_path, model_dir, src, monkeypatch, command):  # fmt: skip
    """A Ctrl-C while a complete job wrote its report: enhance_files called from Python, no command=
    given, said "(the same command writes them)", a command it never ran."""
    monkeypatch.setattr(batch, "_write_side_files", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt))
    report = tmp_path / "r.json"
    summary, lines = run(Enhancer(str(model_dir), device="cpu", batch_size=2), src, tmp_path / "out", workers=1,
                         report=str(report), command=command)  # fmt: skip
    again = "the same command writes them" if command else "call enhance_files() again the same way to write them"
    assert summary.interrupted_at_end and lines[-1] == f"interrupted: {report} not written ({again})", lines


def test_a_device_is_lost_only_when_it_no_longer_runs_anything(monkeypatch):
    from types import SimpleNamespace

    probed = []
    gpu = SimpleNamespace(device=torch.device("cuda", 0), prepare_device=torch.device("cuda", 0))
    error = AcceleratorError("CUDA error: an illegal memory access was encountered")
    monkeypatch.setattr(batch, "_probe", probed.append)  # the device still works
    assert not batch._device_lost(gpu, error) and probed == [torch.device("cuda", 0)]

    def broken(device):
        raise AcceleratorError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(batch, "_probe", broken)
    assert batch._device_lost(gpu, error)
    assert not batch._device_lost(gpu, ValueError("wls: image contains 1 NaN"))  # no device error: no probe
    assert not batch._device_lost(gpu, MemoryError("std::bad_alloc"))
    cpu = SimpleNamespace(device=torch.device("cpu"), prepare_device=torch.device("cpu"))
    assert not batch._device_lost(cpu, RuntimeError("anything"))


def test_out_of_memory_is_never_a_lost_device(monkeypatch):
    """A GPU out of memory (the job's error, or the probe's own allocation) still works: the image
    fails, the job goes on; only an error that leaves the device running nothing stops it."""
    from types import SimpleNamespace

    gpu = SimpleNamespace(device=torch.device("cuda", 0), prepare_device=None)
    illegal = AcceleratorError("CUDA error: an illegal memory access was encountered")
    probed = []

    def broken(device):
        probed.append(device)
        raise illegal

    monkeypatch.setattr(batch, "_probe", broken)
    for oom in (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                RuntimeError("CUDA error: out of memory"), AcceleratorError("CUDA error: out of memory")):  # fmt: skip
        assert not batch._device_lost(gpu, oom)
    assert not probed  # an out-of-memory error is not probed for
    assert batch._device_lost(gpu, illegal)

    for oom in (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB"),
                RuntimeError("CUDA error: out of memory")):  # fmt: skip

        def full(device, oom=oom):
            raise oom

        monkeypatch.setattr(batch, "_probe", full)
        assert not batch._device_lost(gpu, illegal)  # the probe found the device full, not lost


def test_a_full_disk_still_stops_the_job(tmp_path, model_dir, src, monkeypatch):
    import errno

    enh = Enhancer(str(model_dir), device="cpu", batch_size=2)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch, "write_image", no_space)
    summary, lines = run(enh, src, tmp_path / "out", workers=1)
    assert summary.stopped == "the disk is full" and summary.done == 0
    assert len(summary.records) < len(NAMES)  # not every file was tried


def test_an_output_file_system_gone_read_only_stops_the_job_as_a_full_disk_does(tmp_path, model_dir, src, monkeypatch):
    """A file system remounted read-only after an error (ext4's errors=remount-ro), or a snapshot, fails
    every later write as it failed this one: the job went on reading, preprocessing and running the
    network on the rest of the archive (hours on a large one), to fail each at its write. It stops,
    saying why, and the same command resumes once the folder is writable."""
    import errno

    enh = Enhancer(str(model_dir), device="cpu", batch_size=2)
    calls = []

    def read_only(path, *args, **kwargs):
        calls.append(path)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(batch, "write_image", read_only)
    summary, lines = run(enh, src, tmp_path / "out", workers=1)
    assert summary.stopped == "the output folder's file system is read-only" and summary.done == 0
    assert len(calls) == 1 and len(summary.records) == 1 and summary.not_processed == len(NAMES) - 1
    assert summary.stop_line().startswith("stopped early: the output folder's file system is read-only; 2 images not "
                                          "processed; call enhance_files() again the same way to resume where this "
                                          "one stopped, once the folder is writable again")  # fmt: skip


@pytest.mark.parametrize("fmt", ["tiff", "dicom"])
def test_a_write_the_file_system_cuts_short_fails_with_its_reason_in_one_line(tmp_path, model_dir, src, monkeypatch,
                                                                               fmt):  # fmt: skip
    # a full disk cuts a write short: under tifffile, numpy said only '65536 requested and 9124 written'
    # (no errno: a full disk did not stop a TIFF job, every later image failed so), and pydicom's
    # message carried its traceback. A file size limit cuts writes short the same way, without root
    resource = pytest.importorskip("resource")
    real = batch.write_image

    def limited(*args, **kwargs):
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, hard))  # (Python ignores SIGXFSZ: EFBIG)
        try:
            return real(*args, **kwargs)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

    monkeypatch.setattr(batch, "write_image", limited)
    enh = Enhancer(str(model_dir), device="cpu", batch_size=2)
    summary, lines = run(enh, src, tmp_path / "out", workers=1, fmt=fmt)
    assert len(summary.failed) == len(NAMES) and summary.stopped is None  # (a size limit is not a full disk)
    for rec in summary.failed:
        assert rec.error.endswith("cannot write: File too large") and "\n" not in rec.error, rec.error
    assert outputs(tmp_path / "out") == {}  # no partial file


def test_the_writes_waiting_for_a_writer_when_the_disk_fills_are_not_processed_not_failed(tmp_path, model_dir, src,
                                                                                          monkeypatch):  # fmt: skip
    # the images the network had done queued for the writer; once the disk was full each was still
    # tried, failing 'No space left on device' (counted failed, left as started in the ledger)
    import errno

    enh = Enhancer(str(model_dir), device="cpu", batch_size=2)
    futures, calls = job_futures(monkeypatch), []

    def no_space(path, *args, **kwargs):
        # the others handed over, waiting for the writer (it slept 0.2 s for the last one: a loaded
        # machine could hand it over after the disk filled, and then a regression passed unseen)
        calls.append(path)
        wait_until(lambda: len(futures["xvf-write"]) == len(NAMES), "the other writes were not handed over")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(batch, "write_image", no_space)
    summary, lines = run(enh, src, tmp_path / "out", workers=1)
    assert summary.stopped == "the disk is full"
    assert len(calls) == 1 and len(summary.failed) == 1 and len(summary.records) == 1
    assert summary.not_processed == len(NAMES) - 1
    assert summary.stop_line().startswith(f"stopped early: the disk is full; {len(NAMES) - 1} images not processed")


def test_the_report_names_no_output_for_an_input_that_failed(tmp_path, model_dir, src, monkeypatch):
    # a failed input's "output" named the path it would have had, which was never written
    enh = Enhancer(str(model_dir), device="cpu")
    fail_writing(monkeypatch, "b.png", RuntimeError("encoder crashed"))
    (src / "d.png").write_bytes(b"not a png")  # fails when read
    (src / "e.png").write_bytes(b"")  # fails when planned, in a dry run too
    out, report = tmp_path / "out", tmp_path / "r.json"
    for dry_run in (True, False):
        summary, _ = run(enh, src, out, workers=1, report=str(report), dry_run=dry_run)
        files = {r["input"].rsplit("/", 1)[1]: r for r in json.loads(report.read_text())["files"]}
        failed = {name for name, r in files.items() if r["status"] == "failed"}
        assert failed == ({"e.png"} if dry_run else {"b.png", "d.png", "e.png"})
        assert all(files[name]["output"] is None for name in failed)
        assert all(r.output is None for r in summary.failed)
        assert all(r["output"] == str(out / name) for name, r in files.items() if name not in failed)
    assert sorted(outputs(out)) == ["a.png", "c.png"]


def test_a_failed_record_has_no_output_however_it_came_to_fail():
    # the rule was kept by each place that made a failed record, and by finish() for a running one whose
    # write failed: a record failed elsewhere named an output that was never written
    assert batch.FileRecord("in/a.png", "out/a.png", "failed", "in/a.png: unreadable").output is None
    rec = batch.FileRecord("in/b.png", "out/b.png", "running")
    rec.status = "done"
    assert rec.output == "out/b.png"
    rec = batch.FileRecord("in/c.png", "out/c.png", "running")
    rec.status, rec.error = "failed", "in/c.png: the disk is full"
    assert rec.output is None


@pytest.mark.parametrize("swapped_in", ["_job_settings", "read_input"], ids=["model-load", "read"])
def test_an_input_folder_swapped_onto_the_outputs_during_a_rerun_is_never_deleted(tmp_path, model_dir, seed,
                                                                                monkeypatch, swapped_in):  # fmt: skip
    # inputs current -> a, outputs outlink -> c; a rerun, during which current is pointed at c: current/x.png is
    # then c/x.png, the earlier output. The plan (its links resolved before the model loaded) planned it, the
    # write refused it as the input, and the failed write's clean-up removed the output: the input itself
    a, c, current, outlink = tmp_path / "a", tmp_path / "c", tmp_path / "current", tmp_path / "outlink"
    a.mkdir()
    c.mkdir()
    current.symlink_to(a, target_is_directory=True)
    outlink.symlink_to(c, target_is_directory=True)
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(a / "x.png")
    enh = Enhancer(str(model_dir), device="cpu")
    assert by_name(run(enh, current, outlink, workers=1)[0])["x.png"][0] == "done"
    Image.fromarray(np.round(chest_like(seed + 1) * 255).astype(np.uint8)).save(a / "x.png")  # edited: redone
    held = (c / "x.png").read_bytes()
    original = getattr(batch, swapped_in)

    def swapping(*args, **kwargs):
        if current.resolve() != c:  # (a nightly `ln -sfn`)
            current.unlink()
            current.symlink_to(c, target_is_directory=True)
        return original(*args, **kwargs)

    monkeypatch.setattr(batch, swapped_in, swapping)
    summary, lines = run(enh, current, outlink, workers=1, overwrite=True)
    status, error = by_name(summary)["x.png"]
    assert (c / "x.png").read_bytes() == held, lines
    assert status == "failed"
    assert ("would replace an input" if swapped_in == "_job_settings" else "refusing to overwrite the input image") \
        in error, error
    from xvertfast.io.job_folder import job_status

    assert job_status(str(outlink), "enhance").unfinished == 0  # refused before it was recorded as being written


@pytest.mark.parametrize("onto", ["input", "input-list", "output"])
def test_a_report_or_preview_whose_link_is_swapped_onto_an_input_during_the_job_is_not_written(
        tmp_path, model_dir, seed, monkeypatch, onto):  # fmt: skip
    # --report/--preview side/NAME, side -> s (empty) when the job starts; a nightly `ln -sfn` points side at the
    # inputs' folder (the @list's, the outputs') while the job runs: checked at the start only, the report or the
    # contact sheet was written over the input x.png (the list todo.txt, the output x.png the ledger says done)
    a, s, out, side = tmp_path / "a", tmp_path / "s", tmp_path / "out", tmp_path / "side"
    a.mkdir()
    s.mkdir()
    side.symlink_to(s, target_is_directory=True)
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(a / "x.png")
    (a / "todo.txt").write_text(f"{a / 'x.png'}\n")
    name, target = {"input": ("x.png", a), "input-list": ("todo.txt", a), "output": ("x.png", out)}[onto]
    read_input = batch.read_input

    def swapping(*args, **kwargs):
        if side.resolve() != target:
            side.unlink()
            side.symlink_to(target, target_is_directory=True)
        return read_input(*args, **kwargs)

    monkeypatch.setattr(batch, "read_input", swapping)
    enh = Enhancer(str(model_dir), device="cpu")
    inputs = f"@{a / 'todo.txt'}" if onto == "input-list" else a
    option = "report" if onto == "input-list" else "preview"
    held = {path: path.read_bytes() for path in (a / "x.png", a / "todo.txt")}
    summary, lines = run(enh, inputs, out, workers=1, **{option: str(side / name)})
    assert by_name(summary)["x.png"][0] == "done", lines
    if onto == "output":
        held[out / "x.png"] = None  # (written by this job: still an image, not the sheet)
    assert {path: path.read_bytes() for path in held if held[path] is not None} == \
        {path: was for path, was in held.items() if was is not None}  # fmt: skip
    assert getattr(summary, option) is None
    replaced = os.path.realpath(target / name) if onto == "input-list" else str(target / name)
    what = f"the output of {a / 'x.png'}" if onto == "output" else f"the input {replaced}"
    assert f"{option} {side / name} not written: it is now {what} (a link changed during the job)" in "\n".join(lines)
    if onto == "output":
        from xvertfast.io import read_image

        assert read_image(out / "x.png").pixels.shape == np.asarray(Image.open(a / "x.png")).shape


@pytest.mark.parametrize("option", ["preview", "report"])
def test_a_preview_or_report_path_made_a_link_to_an_input_or_its_list_during_the_job_replaces_the_link(
        tmp_path, model_dir, seed, monkeypatch, option):  # fmt: skip
    # --preview s/look.png, made a link to the input a/x.png while the job runs: atomic_write's os.replace replaces
    # the link itself, the input untouched, yet batch._replaces (f868630's rule) said "it is now the input a/x.png".
    # --report s/r.json made a link to the @list the job reads likewise: the link replaced, the list as it was
    a, s, out = tmp_path / "a", tmp_path / "s", tmp_path / "out"
    a.mkdir()
    s.mkdir()
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(a / "x.png")
    (a / "todo.txt").write_text(f"{a / 'x.png'}\n")
    held = {path: path.read_bytes() for path in (a / "x.png", a / "todo.txt")}
    side, target = (s / "look.png", a / "x.png") if option == "preview" else (s / "r.json", a / "todo.txt")
    read_input = batch.read_input

    def linking(*args, **kwargs):
        if not os.path.lexists(side):
            side.symlink_to(target)
        return read_input(*args, **kwargs)

    monkeypatch.setattr(batch, "read_input", linking)
    inputs = a if option == "preview" else f"@{a / 'todo.txt'}"
    summary, lines = run(Enhancer(str(model_dir), device="cpu"), inputs, out, workers=1, **{option: str(side)})
    assert summary.done == 1 and getattr(summary, option) == str(side), lines
    assert not os.path.islink(side) and {path: path.read_bytes() for path in held} == held
    if option == "report":
        assert json.loads(side.read_text())["summary"]["done"] == 1


@pytest.mark.parametrize("target", ["the input", "its output"])
def test_a_preview_or_report_path_that_is_a_link_to_an_input_or_output_at_the_start_replaces_the_link(
        tmp_path, model_dir, seed, target):  # fmt: skip
    # --preview s/look.png (or --report s/r.json), a link to the input a/x.png (or to out/x.png, its output to
    # be) before the job: atomic_write replaces the link, as _replaces allows at the job's end since 24517b2, yet
    # the start's check followed it: "--preview s/look.png is one of the inputs; it would be overwritten"
    a, s, out = tmp_path / "a", tmp_path / "s", tmp_path / "out"
    a.mkdir()
    s.mkdir()
    Image.fromarray(np.round(chest_like(seed) * 255).astype(np.uint8)).save(a / "x.png")
    held = (a / "x.png").read_bytes()
    linked = a / "x.png" if target == "the input" else out / "x.png"
    (s / "look.png").symlink_to(linked)
    (s / "r.json").symlink_to(linked)
    summary, lines = run(Enhancer(str(model_dir), device="cpu"), a, out, workers=1, preview=str(s / "look.png"),
                         report=str(s / "r.json"))  # fmt: skip
    assert summary.done == 1 and summary.preview == str(s / "look.png") and summary.report == str(s / "r.json"), lines
    assert not os.path.islink(s / "look.png") and not os.path.islink(s / "r.json")
    assert json.loads((s / "r.json").read_text())["summary"]["done"] == 1
    assert (a / "x.png").read_bytes() == held and Image.open(out / "x.png").size == Image.open(a / "x.png").size


def test_an_output_folder_link_swapped_during_the_job_stops_it_before_it_writes_elsewhere(tmp_path, model_dir, seed,
                                                                                         monkeypatch):  # fmt: skip
    # -o latest, latest -> c1; a nightly `ln -sfn c2 latest` while the job runs: the outputs after it went into
    # c2 (by the link, written afresh each time), the folder of another job whose outputs of those names they
    # replaced, while this job's lock and ledger were c1's, which recorded them done where they were not
    src, other, c1, c2, latest = (tmp_path / name for name in ("in", "other", "c1", "c2", "latest"))
    for folder, first in ((src, seed), (other, seed + 10)):
        folder.mkdir()
        for k, name in enumerate(NAMES):
            Image.fromarray(np.round(chest_like(first + k) * 255).astype(np.uint8)).save(folder / name)
    enh = Enhancer(str(model_dir), device="cpu")
    assert run(enh, other, c2, workers=1)[0].done == 3  # (another job's folder: its ledger, its outputs)
    held = {p.name: p.read_bytes() for p in c2.iterdir()}
    c1.mkdir()
    latest.symlink_to(c1, target_is_directory=True)
    read_input, reads = batch.read_input, []

    def swapping(f, *args, **kwargs):
        reads.append(f.path)
        if len(reads) == 2:  # (the first image is read, and may be written, before the swap)
            latest.unlink()
            latest.symlink_to(c2, target_is_directory=True)
        return read_input(f, *args, **kwargs)

    monkeypatch.setattr(batch, "read_input", swapping)
    summary, lines = run(enh, src, latest, workers=1)
    assert {p.name: p.read_bytes() for p in c2.iterdir()} == held, lines
    assert summary.stopped == ("the output folder now leads elsewhere (a link changed, or the folder moved, during "
                               "the job)"), lines
    # the summary's last line says what the output's error line says, not "the same command resumes": run again,
    # it would write into c2
    give = f"give out_dir={str(c1)!r} to write the rest"
    assert any(line.endswith(give) for line in lines) and summary.stop_line().endswith(f"not processed; {give}"), (
        lines, summary.stop_line())  # fmt: skip
    from xvertfast.io.job_folder import job_status

    ledger = job_status(str(c1), "enhance")
    assert ledger.done == len([p for p in c1.iterdir() if p.suffix == ".png"]) and ledger.unfinished == 0


def test_a_killed_runs_temporaries_are_removed_in_the_folder_the_job_holds_not_one_swapped_in(tmp_path, model_dir,
                                                                                             monkeypatch):  # fmt: skip
    """enhance removed a killed run's temporaries (.x.png.RANDOM.part) by their paths: with -o latest
    re-pointed at another job's folder as it planned (`ln -sfn c2 latest`), there, the live ones of
    c2's job, whose writes then failed. They are removed in the folder the job holds (c1)."""
    src, c1, c2, latest = (tmp_path / name for name in ("in", "c1", "c2", "latest"))
    for folder in (src, c1, c2):
        folder.mkdir()
    Image.fromarray(np.round(chest_like(0, 64, 64) * 255).astype(np.uint8)).save(src / "x.png")
    (c1 / ".x.png.abcd1234.part").write_bytes(b"a killed run's")
    (c2 / ".x.png.abcd1234.part").write_bytes(b"another job's, being written")
    latest.symlink_to(c1, target_is_directory=True)
    plan = batch._plan

    def swapping(*args, **kwargs):  # (the job holds c1 by now)
        latest.unlink()
        latest.symlink_to(c2, target_is_directory=True)
        return plan(*args, **kwargs)

    monkeypatch.setattr(batch, "_plan", swapping)
    run(Enhancer(str(model_dir), device="cpu"), src, latest, workers=1)
    assert (c2 / ".x.png.abcd1234.part").read_bytes() == b"another job's, being written"
    assert ".x.png.abcd1234.part" not in os.listdir(c1)
