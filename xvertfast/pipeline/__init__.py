"""Batch work over files: input discovery, output naming, per-file error reporting."""

#: Nothing at the package level: its module is imported by name (xvertfast.pipeline.preprocess_files).
__all__: list[str] = []
