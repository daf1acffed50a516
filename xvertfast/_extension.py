"""Loading of the compiled extension ``xvertfast._C``, with a pure-PyTorch fallback.

The extension registers the ops ``torch.ops.xvertfast.*``. When it is absent
(``XVF_NO_EXTENSION=1``, a source checkout that was never built, or a build
that does not match the installed torch) every op runs its pure-PyTorch
reference instead, and one warning says why.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

__all__ = ["extension", "has_extension", "load_error", "cuda_kernels_available"]

_module: ModuleType | None = None
_error: str | None = None
_loaded = False


def _load() -> None:
    global _module, _error, _loaded
    if _loaded:
        return
    _loaded = True
    if os.environ.get("XVF_NO_EXTENSION", "").strip() not in ("", "0"):
        _error = "disabled by XVF_NO_EXTENSION"
    else:
        try:
            import torch  # noqa: F401  (the extension links against libtorch)

            from xvertfast import _C

            _module = _C
        except ImportError as exc:  # missing build or ABI mismatch
            _error = f"{type(exc).__name__}: {exc}"
    if _module is None:
        warnings.warn(
            f"xvertfast: compiled extension not used ({_error}); every op falls back to its "
            "pure-PyTorch reference, which is correct but slower. Build it with "
            "`pip install --no-build-isolation .`",
            RuntimeWarning,
            stacklevel=3,
        )


def extension() -> ModuleType | None:
    """The loaded ``xvertfast._C`` module, or None when the fallback is in use."""
    _load()
    return _module


def has_extension() -> bool:
    """True when the compiled ops are registered in ``torch.ops.xvertfast``."""
    return extension() is not None


def load_error() -> str | None:
    """Why the extension is not in use (None when it is)."""
    _load()
    return _error


def cuda_kernels_available() -> bool:
    """True when the extension was built with its CUDA kernels."""
    ext = extension()
    return bool(ext is not None and ext.cuda_compiled())
