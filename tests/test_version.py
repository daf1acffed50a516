"""xvertfast._version.code_digest: what the digest of the installed code covers."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil

import pytest

import xvertfast._version


def _digest_of(package) -> str:
    """code_digest of a package folder holding a copy of _version.py (its own, uncached)."""
    spec = importlib.util.spec_from_file_location("copied_version", package / "_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.code_digest()


def test_the_code_digest_covers_the_data_the_metrics_read_and_not_an_editors_files(tmp_path):
    package = tmp_path / "xvertfast"
    (package / "eval" / "brisque_live").mkdir(parents=True)
    shutil.copy(xvertfast._version.__file__, package / "_version.py")
    (package / "eval" / "metrics.py").write_text("def entropy(): ...\n")
    (package / "eval" / "brisque_live" / "allmodel").write_text("gamma 0.05\n")
    first = _digest_of(package)
    assert _digest_of(package) == first
    (package / "eval" / "brisque_live" / "allmodel").write_text("gamma 0.06\n")  # BRISQUE's scores change
    second = _digest_of(package)
    assert second != first
    # an editor's lock beside a file being edited (Emacs: a dangling link), its backup, bytecode
    (package / "eval" / ".#metrics.py").symlink_to("root@host.1234:1700000000")
    (package / "eval" / "__pycache__").mkdir()
    (package / "eval" / "__pycache__" / "metrics.cpython-311.pyc").write_bytes(b"\0")
    assert _digest_of(package) == second
    (package / "eval" / "metrics.py").write_text("def entropy(): return 1\n")
    assert _digest_of(package) != second


def _package_with(tmp_path, names: list[str]):
    """A package folder holding a copy of _version.py and a file of each of ``names``."""
    package = tmp_path / "xvertfast"
    for name in names:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(f"# {name}\n")
    shutil.copy(xvertfast._version.__file__, package / "_version.py")
    return package


def test_the_code_digest_leaves_out_the_files_that_cannot_change_a_score(tmp_path):
    """Any edit of the package (a typo in the CLI's help) changed the digest an evaluation's
    journal records, so the rerun of a 10,000-image evaluation was refused. The files that cannot
    change a score (NOT_SCORING) are left out; the others, and a file the list does not know,
    count."""
    package = _package_with(tmp_path, ["cli.py", "eval/report.py", "train/loop.py", "infer/batch.py",
                                       "eval/metrics.py", "io/read.py", "infer/enhancer.py"])  # fmt: skip
    first = _digest_of(package)
    for name in ("cli.py", "eval/report.py", "train/loop.py", "infer/batch.py"):  # (a) not scoring: no change
        (package / name).write_text("# edited: help text, a report's drawing, training, enhance's jobs\n")
        assert _digest_of(package) == first, name
    for name in ("eval/metrics.py", "io/read.py", "infer/enhancer.py"):  # (b) what reads, enhances or scores
        before = _digest_of(package)
        (package / name).write_text("# edited\n")
        assert _digest_of(package) != before, name
    for name in ("eval/new_metric.py", "train/new.py", "_C.so"):  # (c) a new file counts, in any folder
        before = _digest_of(package)
        (package / name).write_bytes(b"\0")
        assert _digest_of(package) != before, name


def test_every_file_left_out_of_the_code_digest_is_one_of_the_package():
    """A name in NOT_SCORING that no file has (a typo, a file moved) leaves nothing out: the file
    it meant counts again, each of its edits refusing a resume for nothing."""
    package = os.path.dirname(xvertfast._version.__file__)
    assert [name for name in sorted(xvertfast._version.NOT_SCORING)
            if not os.path.isfile(os.path.join(package, *name.split("/")))] == []  # fmt: skip


#: What evaluate calls outside the scoring: the report folder's check before it, the machine it
#: runs on (journalled beside each image's scores, changing none) and the report's provenance after it.
_OUTSIDE_THE_SCORING = ("check_grid_folder", "scoring_machine", "run_provenance")


def _called_from(frame, evaluate_code) -> str | None:
    """The function ``evaluate`` called that ``frame`` runs under (its name), or None where the
    frame runs a module's import (its top-level code, a decorator it applies) or outside evaluate."""
    while frame.f_back is not None:
        if frame.f_code.co_name == "<module>":
            return None
        if frame.f_back.f_code is evaluate_code:
            return frame.f_code.co_name
        frame = frame.f_back
    return None


def _importable(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


#: The backends an evaluation's XVertNet may run on that the profiled evaluation below runs: the CPU's
#: torch, and on a GPU torch, torch.compile and TensorRT. Under the profiler the CPU's onnxruntime
#: (its export) took 160 s and torch.compile 300 s (2026-12-07, 2 cores): the backends' code is checked
#: without running it by test_the_backends_import_no_file_left_out_of_the_code_digest.
BACKENDS = [
    pytest.param("cpu", "torch", id="cpu-torch"),
    pytest.param("cuda", "torch", id="cuda-torch", marks=pytest.mark.cuda),
    pytest.param("cuda", "compile", id="cuda-compile", marks=[pytest.mark.cuda, pytest.mark.slow]),
    pytest.param("cuda", "tensorrt", id="cuda-tensorrt", marks=[
        pytest.mark.cuda, pytest.mark.tensorrt,
        pytest.mark.skipif(not _importable("tensorrt", "onnx", "onnxscript"),
                           reason="needs TensorRT, onnx and onnxscript")]),
]  # fmt: skip


@pytest.mark.parametrize("device, backend", BACKENDS)
def test_no_file_left_out_of_the_code_digest_runs_while_an_evaluation_scores(tmp_path, monkeypatch, device, backend):
    """NOT_SCORING is true only while the scoring calls none of its files: were the Enhancer to call
    a helper of infer/batch.py, an edit there would change scores and a rerun would resume
    the earlier ones, mixing two codes' scores. A small evaluation (identity, clahe and an
    XVertNet on the CPU, and on a GPU on each backend that runs there: each backend has code of its
    own) runs under a profiler: of those files' functions, only what evaluate calls outside the
    scoring may run (the report, drawn from the journal; scoring_machine, whose threads and GPUs are
    journalled beside the scores, changing none). The backends not run here (onnxruntime, and
    all but the CPU's torch without a GPU, as in CI) are checked by their imports:
    test_the_backends_import_no_file_left_out_of_the_code_digest."""
    import sys

    import xvertfast.eval.evaluate as evaluate_module
    from tests.eval.test_evaluate import chest_like, tiny_model_dir
    from PIL import Image

    package = os.path.dirname(os.path.abspath(xvertfast._version.__file__))
    left_out = {os.path.join(package, *name.split("/")) for name in xvertfast._version.NOT_SCORING}
    Image.fromarray(chest_like(0, 64, 64)).save(tmp_path / "a.png")
    model = tiny_model_dir(tmp_path, 0)
    monkeypatch.setattr(evaluate_module, "write_report", lambda *args, **kwargs: {})  # (the report: not scoring)
    ran, checked = set(), {}

    def profile(frame, event, arg):
        if event == "call":
            name = frame.f_code.co_filename
            if checked.setdefault(name, name in left_out or os.path.abspath(name) in left_out):
                ran.add((os.path.relpath(name, package), frame.f_code.co_name,
                         _called_from(frame, evaluate_module.evaluate.__code__)))

    before = sys.getprofile()
    sys.setprofile(profile)
    try:
        run, _ = evaluate_module.evaluate([str(tmp_path / "a.png")], str(tmp_path / "r"),
                                          methods=["identity", "clahe", f"xvertnet={model}"], metrics=["entropy"],
                                          pictures=1, progress=False, log=lambda line: None, device=device,
                                          backend=backend, cache_dir=str(tmp_path / "cache"))  # fmt: skip
    finally:
        sys.setprofile(before)
    assert {row["method"] for row in run.rows} == {"identity", "clahe", "xvertnet"} and not run.failed
    assert any(called == "scoring_machine" for _, _, called in ran)  # (the profiler saw the files left out)
    assert sorted(f"{file}: {function} (under evaluate's {called})" for file, function, called in ran
                  if called not in (None, *_OUTSIDE_THE_SCORING)) == []  # fmt: skip


#: The modules of the backends (and of their exports and caches) an evaluation's XVertNet runs on.
_BACKEND_MODULES = ("xvertfast.infer.backends", "xvertfast.infer.onnx_backend", "xvertfast.infer.tensorrt_backend",
                    "xvertfast.infer.export", "xvertfast.infer.cache")  # fmt: skip


def _module_file(package: str, module: str) -> str | None:
    """The file of ``module`` (xvertfast.a.b) under ``package``'s folder: a/b.py or a/b/__init__.py."""
    base = os.path.join(package, *module.split(".")[1:])
    return next((path for path in (base + ".py", os.path.join(base, "__init__.py")) if os.path.isfile(path)), None)


def _imported(package: str, path: str) -> set[str]:
    """The xvertfast modules ``path`` imports anywhere (at its top or in a function): ``from
    xvertfast.a import b`` is xvertfast.a.b where that is a module, else xvertfast.a; a relative
    import is read from ``path``'s package; ``importlib.import_module("xvertfast.a")`` counts, and
    so does ``import_module(f"xvertfast.{name}")`` for each string of the file that names a module
    there (infer/export.py's model.stage and ops.*). A name ``import_module`` is given from data
    (the package's lazy names, a pickled error's class) is not seen."""
    tree = ast.parse(open(path).read())
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    here = ["xvertfast", *os.path.relpath(os.path.dirname(path), package).split(os.sep)]
    here = [part for part in here if part != "."]  # (a file at the package's top)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "xvertfast"}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join([*here[:len(here) - node.level + 1], *([module] if module else [])])
            if module.split(".")[0] == "xvertfast":
                found |= {f"{module}.{alias.name}" if _module_file(package, f"{module}.{alias.name}")
                          else module for alias in node.names}  # fmt: skip
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module" \
                and node.args:  # fmt: skip
            named = node.args[0]
            if isinstance(named, ast.Constant) and str(named.value).split(".")[0] == "xvertfast":
                found.add(named.value)
            elif isinstance(named, ast.JoinedStr) and named.values and isinstance(named.values[0], ast.Constant) \
                    and str(named.values[0].value).startswith("xvertfast."):  # fmt: skip
                found |= {name for name in (named.values[0].value + s for s in strings) if _module_file(package, name)}
    return found


def test_the_digest_checks_imports_see_relative_and_dynamic_ones(tmp_path):
    """The imports followed below: infer/export.py's import_module(f"xvertfast.{name}") of the
    stage and ops, which an import of a NOT_SCORING file could hide in, and relative ones (in a
    package of empty files made here: xvertfast has none now)."""
    package = os.path.dirname(os.path.abspath(xvertfast._version.__file__))
    assert {"xvertfast.model.stage", "xvertfast.ops.guided_pool", "xvertfast.ops.reference"} <= \
        _imported(package, os.path.join(package, "infer", "export.py"))  # fmt: skip
    for name in ("infer/batch.py", "eval/report.py", "eval/metrics.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).touch()
    (tmp_path / "eval" / "metrics.py").write_text("from ..infer import batch\nfrom . import report\n")
    assert _imported(str(tmp_path), str(tmp_path / "eval" / "metrics.py")) == {"xvertfast.infer.batch",
                                                                               "xvertfast.eval.report"}  # fmt: skip


def test_the_backends_import_no_file_left_out_of_the_code_digest():
    """What a machine without a GPU (CI) cannot run, the CUDA backends and TensorRT, is checked by its
    code: no module the backends' modules import, directly or through the modules they import, at
    their top or in a function, is one of NOT_SCORING (a package's __init__, which a submodule's
    import runs, counts only where named). A call into infer/batch.py from the TensorRT backend would
    need such an import."""
    package = os.path.dirname(os.path.abspath(xvertfast._version.__file__))
    left_out = {os.path.join(package, *name.split("/")) for name in xvertfast._version.NOT_SCORING}
    reached: dict[str, str] = {}
    todo = [(module, module) for module in _BACKEND_MODULES]
    while todo:
        module, via = todo.pop()
        path = _module_file(package, module)
        if path is None or module in reached:
            continue
        reached[module] = via
        todo += [(name, f"{via} -> {name}") for name in _imported(package, path)]
    assert len(reached) > len(_BACKEND_MODULES)  # (the imports were followed)
    assert sorted(via for module, via in reached.items() if _module_file(package, module) in left_out) == []
