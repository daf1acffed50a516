"""Fixtures of the tests of xvertfast.infer: each ONNX graph exported once in the whole package."""

from __future__ import annotations

import hashlib
import warnings

import pytest
import torch


def graph_key(graph: torch.nn.Module, args: tuple, kwargs: dict) -> tuple:
    """What torch.onnx.export's program depends on: the modules (class, structure, mode and plain
    attributes: a stage's depth, a graph's dtype), the ``forward`` each class runs (the function
    itself, so a test that monkeypatches one is not handed an earlier program), their weights and
    buffers (each dtype, shape and byte), the example inputs' shapes, dtypes and devices, the
    exporter's arguments, and torch's version (written into the graph as its producer)."""
    weights = hashlib.sha256()
    for name, t in graph.state_dict().items():
        weights.update(f"{name} {t.dtype} {tuple(t.shape)};".encode())
        weights.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    modules = [(name, type(m).__module__, type(m).__qualname__, m.training,
                sorted((k, repr(v)) for k, v in vars(m).items() if not k.startswith("_")))
               for name, m in graph.named_modules()]  # fmt: skip
    forwards = tuple(type(m).forward for _, m in graph.named_modules())
    return (torch.__version__, repr(graph), repr(modules), forwards, weights.hexdigest(),
            tuple((tuple(a.shape), a.dtype, a.device) for a in args), repr(sorted(kwargs.items())))


@pytest.fixture(scope="package", autouse=True)
def each_graph_exported_once():
    """torch.onnx.export (seconds a stage, most of test_export's time) runs once per graph in
    tests/infer: a later export of the same graph (graph_key), in the same test module or another
    (the same model exported by a run and by its dry run, by the CLI and by the API), is handed the
    program the first one made, whose ``model_proto`` is a new ModelProto at each read. Everything
    of xvertfast's own (metadata, the writing, the folders, the cache and its digests, the checks)
    runs at each export; what torch exports for one graph does not change from one call to the
    next (the tests that export again and compare the bytes rely on that already). Each later
    export gives again the warnings the first one gave, under its caller's filters, so a test that
    exports under ``simplefilter("error")`` still sees whatever export_onnx's own filters let
    through. A test that replaces torch.onnx.export itself (monkeypatch) replaces this too."""
    exported, export = {}, torch.onnx.export

    def export_once(graph, args, **kwargs):
        key = graph_key(graph, args, kwargs)
        if key not in exported:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                exported[key] = export(graph, args, **kwargs), said
        program, said = exported[key]
        for w in said:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return program

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.onnx, "export", export_once)
        yield
