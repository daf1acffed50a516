"""Batch work over files: input discovery, output naming, per-file error reporting."""

from xvertfast._lazy import lazy_names as _lazy_names

#: Nothing at the package level: its module is imported by name (xvertfast.pipeline.preprocess_files).
__all__: list[str] = []

# ... and reached as an attribute too, imported on first use (PEP 562), as xvertfast.eval's are.
__getattr__, __dir__ = _lazy_names(globals(), {"preprocess_files": (f"{__name__}.preprocess_files", None)})
