"""The package version, in a module of its own so that any layer can import it without importing
the package's top-level API (which sits above every layer)."""

__version__ = "0.1.0"
