"""The package's one direction of imports (DESIGN.md §2), checked on the source.

Every module's imports of xvertfast, lazy ones inside functions included, are read from its
syntax tree, so a new upward import fails here rather than in a circular-import error at some
later, unrelated change. The layers, lowest first (a layer may import only from layers below it,
and from its own unit):

0. ``_version``, ``_text``, ``_stacklevel``, ``_paths``, ``_interrupts``, ``resume``, ``runtime``, ``_plotting``,
   ``samples``, ``_lazy``, ``weights``, ``_checks``, ``_pickled_errors`` and the compiled ``_C``: no imports
   of xvertfast at all
1. ``_extension``: loads ``_C`` and says what it holds; ``_pixels``: what was given for pixels, described
   (it asks ``_paths`` what a path is)
2. ``ops`` and ``io``, independent of each other
3. ``preprocess`` and ``model``, independent of each other
4. ``infer`` and ``pipeline``
5. ``eval`` and ``train``
6. ``info``
7. ``cli`` and the package's top level (the public API that re-exports the layers)
8. ``__main__``: ``python -m xvertfast`` and the ``xvertfast`` command's entry point (pyproject's
   [project.scripts]: ``__main__:run``)
"""

import ast
import pathlib

import pytest

import xvertfast

PACKAGE = pathlib.Path(xvertfast.__file__).parent

LAYERS = {
    "_version": 0, "_text": 0, "_interrupts": 0, "resume": 0, "runtime": 0, "_plotting": 0, "samples": 0, "_lazy": 0,
    "weights": 0, "_stacklevel": 0, "_paths": 0, "_checks": 0, "_pickled_errors": 0,
    "_C": 0, "_extension": 1, "_pixels": 1,
    "ops": 2, "io": 2,
    "preprocess": 3, "model": 3,
    "infer": 4, "pipeline": 4,
    "eval": 5, "train": 5,
    "info": 6,
    "cli": 7, "": 7, "__main__": 8,
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def xvertfast_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every import of an xvertfast module in the file, relative imports
    resolved, ``from xvertfast import name`` read as the module ``xvertfast.name`` where that is one."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "xvertfast":  # from xvertfast import ops: the unit is the imported name
                found += [(node.lineno, f"xvertfast.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, target) for line, target in found if target == "xvertfast" or target.startswith("xvertfast.")]


def unit(module: str) -> str:
    """The layer unit of a module: its first component below xvertfast ("" for the top level)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layering_violations(path: pathlib.Path) -> list[str]:
    source = unit(_module_name(path))
    bad = []
    for line, target in xvertfast_imports(path):
        dest = unit(target)
        if dest == source:
            continue
        if dest not in LAYERS:
            bad.append(f"{path.name}:{line} imports {target}, of no known layer")
        elif LAYERS[dest] >= LAYERS[source]:
            bad.append(f"{_module_name(path)}:{line} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[dest]})")
    return bad


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_layer():
    units = {unit(_module_name(path)) for path in SOURCES}
    assert units - set(LAYERS) == set(), "give the new module or subpackage a layer in LAYERS"
    assert set(LAYERS) - units - {"_C"} == set(), "a unit in LAYERS no longer exists"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    assert layering_violations(path) == []


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    """The check itself: a lazy import of eval from inside io, and a relative one from ops, fail."""
    fake = tmp_path / "xvertfast"
    (fake / "io").mkdir(parents=True)
    (fake / "ops").mkdir()
    (fake / "io" / "read.py").write_text("def f():\n    from xvertfast.eval.metrics import entropy\n")
    (fake / "ops" / "wls.py").write_text("from ..model import XVertNet\nfrom . import reference\n")
    (fake / "cli.py").write_text("from xvertfast import eval, io\nimport xvertfast.ops\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert layering_violations(fake / "io" / "read.py") == [
        "xvertfast.io.read:2 (layer 2) imports xvertfast.eval.metrics (layer 5)"]
    assert layering_violations(fake / "ops" / "wls.py") == [
        "xvertfast.ops.wls:1 (layer 2) imports xvertfast.model (layer 3)"]
    assert layering_violations(fake / "cli.py") == []
