"""Public names a package imports on first use (PEP 562): ``xvertfast`` and ``xvertfast.train``
name what loads torch without loading it themselves."""

import importlib


def lazy_names(package: dict, public: dict[str, tuple[str, str | None]]):
    """The ``__getattr__`` and ``__dir__`` of the package whose globals are ``package``, for
    ``public``: name -> (the module that defines it, its attribute there, or None for the module
    itself). A name is imported once, then kept in the package's globals."""

    def __getattr__(name: str):
        if name not in public:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        module, attribute = public[name]
        value = importlib.import_module(module)
        if attribute is not None:
            value = getattr(value, attribute)
        package[name] = value  # once: later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({name for name in package if not name.startswith("_") or name.startswith("__")} | set(public))

    return __getattr__, __dir__
