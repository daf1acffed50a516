"""The public API documents itself: what a package's ``__all__`` exports has a docstring of its
own (``help()`` on a class without one shows its base class's, e.g. ``nn.Module``'s)."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = ["xvertfast", "xvertfast.ops", "xvertfast.io", "xvertfast.infer", "xvertfast.infer.export",
          "xvertfast.eval.metrics", "xvertfast.eval.baselines", "xvertfast.train", "xvertfast.model",
          "xvertfast.preprocess"]  # fmt: skip


@pytest.mark.parametrize("package", PUBLIC)
def test_every_exported_function_and_class_has_its_own_docstring(package):
    module = importlib.import_module(package)
    exported = [getattr(module, name) for name in module.__all__]
    undocumented = [obj.__qualname__ for obj in exported
                    if (inspect.isfunction(obj) or inspect.isclass(obj)) and not (obj.__doc__ or "").strip()]  # fmt: skip
    assert not undocumented, f"{package} exports without a docstring: {undocumented}"
