"""The export cache's upkeep: its size, emptying it (only its own files, never while another
process builds or loads from it), and `xvertfast cache` / `xvertfast info`."""

from __future__ import annotations

import os

import pytest
import torch

from tests.infer.test_export import TILE, install_fake_tensorrt, needs_export, tiny_model
from xvertfast.cli import main
from xvertfast.infer import cache as cache_module
from xvertfast.infer import tensorrt_backend
from xvertfast.infer.cache import CacheBusy, cache_in_use, cache_usage, clear_cache, default_cache_dir
from xvertfast.infer.export import cached_onnx_export


def _fill(cache, monkeypatch) -> list[str]:
    """What enhance --backend tensorrt leaves in ``cache``: an ONNX set, its engines, a timing cache."""
    needs_export()
    model = tiny_model(5)
    cached_onnx_export(model, cache, tile=TILE)  # before the fake: torch.export looks for a real tensorrt
    install_fake_tensorrt(monkeypatch)
    tensorrt_backend.TensorRTBackend.from_model(model, torch.device("cuda:0"), tile=TILE, max_batch=2,
                                                cache_dir=str(cache))  # fmt: skip
    return sorted(os.path.relpath(os.path.join(d, f), cache) for d, _, files in os.walk(cache) for f in files)


def test_the_cache_is_measured_and_cleared_of_its_own_files_only(tmp_path, monkeypatch):
    # nothing ever removed a cached export: every model, max batch, TensorRT and GPU left its ONNX
    # set and engines (hundreds of MB each) behind, and nothing said how much there was
    cache = tmp_path / "cache"
    made = _fill(cache, monkeypatch)
    locks = [cache_module.LOCK_NAME, cache_module.BUILD_LOCK_NAME]  # kept: a process may hold them
    ours = [f for f in made if f not in locks]
    assert sum(f.endswith(".engine") for f in ours) == 2 and sum(f.startswith("timing-") for f in ours) == 1
    assert sum(f.startswith("onnx") for f in ours) == 4  # two stages, each beside its SHA-256
    size = sum(os.path.getsize(cache / f) for f in ours)
    assert cache_usage(cache) == {"path": str(cache), "files": len(ours), "bytes": size, "engines": 2}
    # a kill during a build leaves its temporary; the user's own files and links are not the cache's
    (cache / f".{'a' * 64}.engine.x1y2z3.part").write_bytes(b"12345")
    (cache / "notes.txt").write_text("mine")
    (tmp_path / "elsewhere.engine").write_text("not the cache's")
    os.symlink(tmp_path / "elsewhere.engine", cache / f"{'b' * 64}.engine")
    onnx_folder = next(p for p in (cache / "onnx").iterdir())
    (onnx_folder / "README").write_text("mine too")
    assert cache_usage(cache)["files"] == len(ours) + 1
    assert clear_cache(cache) == {"path": str(cache), "files": len(ours) + 1, "bytes": size + 5, "engines": 2,
                                  "failed": []}  # fmt: skip
    left = sorted(os.path.relpath(os.path.join(d, f), cache) for d, _, files in os.walk(cache) for f in files)
    assert left == sorted([*locks, "notes.txt", f"{'b' * 64}.engine",
                           os.path.relpath(onnx_folder / "README", cache)])  # fmt: skip
    assert (tmp_path / "elsewhere.engine").read_text() == "not the cache's"
    assert cache_usage(cache)["files"] == 0
    os.remove(onnx_folder / "README")
    assert clear_cache(cache)["files"] == 0 and not (cache / "onnx").exists()  # emptied folders go
    assert clear_cache(tmp_path / "none")["files"] == 0 and not (tmp_path / "none").exists()


def test_the_cache_is_not_cleared_while_a_process_loads_from_it(tmp_path, monkeypatch):
    # removing an engine between a run's finding it and its reading it stopped that run
    cache = tmp_path / "cache"
    _fill(cache, monkeypatch)
    with cache_in_use(cache), pytest.raises(CacheBusy, match=f"{cache}: another xvertfast process is building"):
        clear_cache(cache)
    assert cache_usage(cache)["engines"] == 2
    refused = []
    runtime = tensorrt_backend.import_tensorrt().Runtime
    deserialize = runtime.deserialize_cuda_engine

    def loading(self, data):  # a clear while the backend reads its engines
        with pytest.raises(CacheBusy):
            clear_cache(cache)
        refused.append(True)
        return deserialize(self, data)

    monkeypatch.setattr(runtime, "deserialize_cuda_engine", loading)
    tensorrt_backend.TensorRTBackend.from_model(tiny_model(5), torch.device("cuda:0"), tile=TILE, max_batch=2,
                                                cache_dir=str(cache))  # fmt: skip
    assert refused == [True, True]
    assert clear_cache(cache)["engines"] == 2  # and once it has read them


def test_the_onnxruntime_backend_holds_the_cache_while_it_opens_the_files(tmp_path, monkeypatch):
    from xvertfast.infer import onnx_backend

    needs_export()
    refused = []
    init = onnx_backend.OnnxRuntimeBackend.__init__

    def opening(self, paths, device):
        with pytest.raises(CacheBusy):
            clear_cache(tmp_path)
        refused.append(True)
        init(self, paths, device)

    monkeypatch.setattr(onnx_backend.OnnxRuntimeBackend, "__init__", opening)
    onnx_backend.OnnxRuntimeBackend.from_model(tiny_model(5), torch.device("cpu"), tile=TILE, cache_dir=str(tmp_path))
    assert refused == [True]


def test_xvertfast_cache_shows_and_clears_it(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    _fill(cache, monkeypatch)
    monkeypatch.setenv("XVF_CACHE_DIR", str(cache))
    usage = cache_usage()
    assert main(["cache"]) == 0
    assert capsys.readouterr().out == (f"{cache}: {usage['files']} files, {usage['bytes'] / 1e6:.1f} MB "
                                       "(2 TensorRT engines)\n")  # fmt: skip
    with cache_in_use(cache):
        assert main(["cache", "--clear"]) == 2
    assert "another xvertfast process is building or loading" in capsys.readouterr().err
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out == (f"removed {cache}: {usage['files']} files, {usage['bytes'] / 1e6:.1f} MB "
                                       "(2 TensorRT engines)\n")  # fmt: skip
    assert cache_usage()["files"] == 0


def test_xvertfast_info_says_where_the_cache_is_and_how_big(tmp_path, monkeypatch):
    from xvertfast.info import collect, format_report

    monkeypatch.setenv("XVF_CACHE_DIR", str(tmp_path))
    (tmp_path / f"{'c' * 64}.engine").write_bytes(b"x" * 2_500_000)
    info = collect()
    assert info["export_cache"] == {"path": str(tmp_path), "files": 1, "bytes": 2_500_000, "engines": 1}
    said = f"export cache         {tmp_path}: 1 file, 2.5 MB (1 TensorRT engine); `xvertfast cache --clear` empties it"
    assert said in format_report(info).splitlines()


def test_a_file_that_cannot_be_removed_is_said_and_the_rest_are_removed(tmp_path, monkeypatch, capsys):
    # a PermissionError on one file stopped the clear halfway with a raw "[Errno 13] Permission
    # denied", saying nothing of what had been removed
    cache = tmp_path / "cache"
    _fill(cache, monkeypatch)
    monkeypatch.setenv("XVF_CACHE_DIR", str(cache))
    engines = sorted(str(cache / f) for f in os.listdir(cache) if f.endswith(".engine"))
    usage, kept = cache_usage(), os.path.getsize(engines[0])
    remove = os.remove

    def refusing(path, *args, **kwargs):
        if os.fspath(path) == engines[0]:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return remove(path, *args, **kwargs)

    monkeypatch.setattr(cache_module.os, "remove", refusing)
    assert main(["cache", "--clear"]) == 1
    said = capsys.readouterr()
    assert said.out == (f"removed {cache}: {usage['files'] - 1} files, {(usage['bytes'] - kept) / 1e6:.1f} MB "
                        f"(1 TensorRT engine); could not remove 1: {engines[0]} (Permission denied)\n")  # fmt: skip
    assert "Errno" not in said.err
    assert cache_usage() == {"path": str(cache), "files": 1, "bytes": kept, "engines": 1}  # the others went


def test_a_cache_dir_given_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch, capsys):
    # XVF_CACHE_DIR="~/scratch/xvf" (quoted in a job script, or from a .env file, so no shell
    # expanded it) made a folder named '~' in whatever folder each job started in: caches never
    # found again, each job exporting its own
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XVF_CACHE_DIR", "~/scratch/xvf")
    monkeypatch.chdir(tmp_path)
    assert main(["cache"]) == 0
    assert capsys.readouterr().out.startswith(f"{tmp_path / 'home' / 'scratch' / 'xvf'}: 0 files")
    with cache_in_use():
        pass
    assert os.path.isdir(tmp_path / "home" / "scratch" / "xvf") and not os.path.exists(tmp_path / "~")


def test_without_xvf_cache_dir_the_cache_is_under_the_home_folder(tmp_path, monkeypatch, capsys):
    # the default every user without XVF_CACHE_DIR gets: since tests/conftest.py's export_cache_of_the_run
    # sets XVF_CACHE_DIR for the whole run, no other test reaches it; set empty (a blank line of a
    # .env file) it is the default too. (XDG_CACHE_HOME is no part of it: the docs say ~/.cache.)
    monkeypatch.delenv("XVF_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    engines = tmp_path / ".cache" / "xvertfast" / "engines"
    assert default_cache_dir() == str(engines)
    monkeypatch.setenv("XVF_CACHE_DIR", "")
    assert default_cache_dir() == str(engines)
    assert main(["cache"]) == 0
    assert capsys.readouterr().out == f"{engines}: 0 files, 0.0 MB (0 TensorRT engines)\n"


def test_a_cache_dir_that_is_a_file_is_said_not_counted_as_empty(tmp_path, monkeypatch, capsys):
    # XVF_CACHE_DIR set to a file: `xvertfast cache` said 'PATH: 0 files, 0.0 MB' and `cache --clear`
    # 'removed PATH: 0 files', both exit 0, as of an empty cache (seen in a user run)
    cache = tmp_path / "engines"
    cache.write_text("a file")
    monkeypatch.setenv("XVF_CACHE_DIR", str(cache))
    for command in (["cache"], ["cache", "--clear"]):
        assert main(command) == 2
        said = capsys.readouterr()
        assert said.out == ""
        assert said.err == (f"error: {cache}: the export cache is a file, not a folder; set XVF_CACHE_DIR to a "
                            "folder you can write in\n")  # fmt: skip
    assert cache.read_text() == "a file"
    from xvertfast.info import collect, format_report

    info = collect()
    assert info["export_cache"] == {"path": str(cache), "error": f"{cache}: the export cache is a file, not a folder; "
                                    "set XVF_CACHE_DIR to a folder you can write in"}  # fmt: skip
    assert (f"export cache         unusable: {cache}: the export cache is a file, not a folder; set XVF_CACHE_DIR to "
            "a folder you can write in") in format_report(info).splitlines()


def test_a_cache_that_cannot_be_listed_is_said_not_counted_as_empty(tmp_path, monkeypatch, capsys):
    # another user's cache (mode 700): `xvertfast cache` said '0 files, 0.0 MB' of it
    cache = tmp_path / "engines"
    cache.mkdir()
    monkeypatch.setenv("XVF_CACHE_DIR", str(cache))
    scandir = os.scandir

    def refusing(path=".", *args, **kwargs):
        if os.fspath(path) == str(cache):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path, *args, **kwargs)

    monkeypatch.setattr(cache_module.os, "scandir", refusing)
    assert main(["cache"]) == 2
    assert capsys.readouterr().err == (f"error: {cache}: the export cache cannot be read (Permission denied); set "
                                       "XVF_CACHE_DIR to a folder you can write in\n")  # fmt: skip


def test_a_cache_that_cannot_be_locked_is_said_without_an_errno(tmp_path, monkeypatch, capsys):
    # another user's cache (or a read-only one): 'error: [Errno 13] PATH: cannot lock the export
    # cache to clear it (Permission denied)'
    cache = tmp_path / "engines"
    cache.mkdir()
    monkeypatch.setenv("XVF_CACHE_DIR", str(cache))

    def refusing(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(cache_module, "hold_lock", refusing)
    assert main(["cache", "--clear"]) == 2
    assert capsys.readouterr().err == (f"error: {cache}: cannot lock the export cache to clear it (Permission "
                                       "denied): it is cleared by a user who can write in it\n")  # fmt: skip


def test_a_test_run_never_writes_the_users_cache(tmp_path_factory):
    # (tests/conftest.py's export_cache_of_the_run: an export in a test wrote ~/.cache/xvertfast/engines)
    assert os.path.commonpath([default_cache_dir(), str(tmp_path_factory.getbasetemp())]) == str(
        tmp_path_factory.getbasetemp())
