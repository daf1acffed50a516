"""The suite's own collection rule: what is skipped without a GPU."""

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
