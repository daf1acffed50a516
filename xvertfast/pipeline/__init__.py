"""Batch work over files: input discovery, output naming, per-file error reporting."""
