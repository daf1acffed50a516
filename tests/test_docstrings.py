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


@pytest.mark.parametrize("package", PUBLIC)
def test_an_exported_class_s_own_public_methods_and_properties_say_what_they_are(package):
    """help() on BatchSummary showed the dataclass's generated signature for the class and nothing
    for done, failed, line(), ...: a docstring of its own for every exported class, and for each
    public method and property it defines."""
    module = importlib.import_module(package)
    undocumented = []
    for cls in (getattr(module, name) for name in module.__all__):
        if inspect.isclass(cls) and cls.__module__.split(".")[0] == "xvertfast":
            undocumented += _undocumented(cls)
    assert not undocumented, f"{package} exports without a docstring: {undocumented}"


def _undocumented(cls: type) -> list[str]:
    """``cls`` itself where it has no docstring of its own, and each public method and property it
    defines that has none: a classmethod too, which is not callable (Python 3.11) and was passed over."""
    undocumented = []
    if (cls.__doc__ or "").startswith(f"{cls.__name__}("):  # (dataclass's generated one: no docstring)
        undocumented.append(cls.__qualname__)
    for name, member in vars(cls).items():
        if not name.startswith("_") and (callable(member) or isinstance(member, (classmethod, staticmethod, property))):
            if not (getattr(getattr(member, "__func__", member), "__doc__", None) or "").strip():
                undocumented.append(f"{cls.__qualname__}.{name}")
    return undocumented


def test_the_check_of_a_class_s_members_sees_its_classmethods_and_staticmethods():
    """A classmethod without a docstring passed: ``callable(classmethod(f))`` is False."""

    class Exported:
        """Documented."""

        @classmethod
        def load(cls):
            pass

        @staticmethod
        def parse():
            pass

        @property
        def size(self):
            return 0

        def done(self):
            """Documented."""

    assert _undocumented(Exported) == [f"{Exported.__qualname__}.{name}" for name in ("load", "parse", "size")]
