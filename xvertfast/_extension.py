"""Loading of the compiled extension ``xvertfast._C``, with a pure-PyTorch fallback.

The extension registers the ops ``torch.ops.xvertfast.*``. When it is absent
(``XVF_NO_EXTENSION=1``, a source checkout that was never built, or a build
that does not match the installed torch) every op runs its pure-PyTorch
reference instead, and one warning says why.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from types import ModuleType

from xvertfast._stacklevel import outside_xvertfast

__all__ = ["extension", "has_extension", "load_error", "cuda_kernels_available", "cuda_kernels_run_on",
           "cuda_kernels_problem", "cuda_index", "archs_cover", "cuda_glue_error", "built_against_cuda_torch",
           "release_mismatch", "cuda_runtime_problem"]

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
            import torch  # (before _C, which links against libtorch)

            from xvertfast import _C

            _error = release_mismatch(_C, torch.__version__)
            _module = _C if _error is None else None
        except ImportError as exc:  # missing build or ABI mismatch
            _error = f"{type(exc).__name__}: {exc}"
    if _module is None:
        warnings.warn(
            f"xvertfast: compiled extension not used ({_error}); every op falls back to its "
            "pure-PyTorch reference, which is correct but slower. Build it with "
            "`pip install --no-build-isolation .`",
            RuntimeWarning,
            stacklevel=outside_xvertfast(),  # (the user's import of xvertfast's ops, or call that loaded it)
        )


def release_mismatch(ext: ModuleType, torch_version: str) -> str | None:
    """Why ``ext`` (an imported ``_C``) must not be used with torch ``torch_version``, or None:
    it was compiled against another minor release, whose C++ ABI differs, so its ops may
    misbehave even though it loaded. A build too old to say is taken as it is."""
    query = getattr(ext, "torch_version", None)
    if query is None:
        return None
    built = query()
    running = torch_version.split("+")[0]
    if built.split(".")[:2] == running.split(".")[:2]:
        return None
    return (f"it was compiled against torch {built}, this is torch {torch_version}, whose C++ ABI differs; "
            "rebuild it for this torch")  # fmt: skip


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


def cuda_glue_error() -> str | None:
    """Why CUDA kernels that were compiled cannot be used with this torch, or None.

    A ``_C`` compiled with nvcc against a CPU build of torch (what CI builds, and any machine
    with nvcc and a CPU torch) has CUDA kernels whose host glue has no device guard and no
    stream: harmless while torch has no CUDA, wrong on the GPUs of a CUDA build of torch
    installed later (a wrong device, the wrong stream)."""
    ext = extension()
    if ext is None or not ext.cuda_compiled():
        return None
    import torch

    if torch.version.cuda is None or built_against_cuda_torch(ext):
        return None
    return (f"the extension was built against a CPU build of torch, this torch has CUDA {torch.version.cuda}: "
            "its CUDA kernels lack the device guard and stream, so they are not used. Rebuild it with "
            "`pip install --no-build-isolation .`")  # fmt: skip


def built_against_cuda_torch(ext: ModuleType) -> bool:
    """Whether ``ext`` (the loaded ``_C``) was compiled against a CUDA build of torch (its CUDA glue
    has a device guard and a stream then); False for a build too old to say (not safe)."""
    query = getattr(ext, "torch_cuda_build", None)
    return bool(query is not None and query())


def cuda_kernels_available() -> bool:
    """True when the extension was built with its CUDA kernels, and against a torch whose CUDA
    they can use (a CUDA build of torch, or a CPU one, which has no CUDA tensors at all; see
    :func:`cuda_glue_error`)."""
    ext = extension()
    return bool(ext is not None and ext.cuda_compiled() and cuda_glue_error() is None)


def archs_cover(archs: str, major: int, minor: int) -> bool:
    """Whether code built for ``archs`` (``"sm_80,sm_90,compute_90"``, as ``_C.cuda_archs()``
    says) runs on a GPU of compute capability ``major.minor``: binary code for the same major
    and an equal or lower minor (sm_80 runs on 8.6), or PTX for an equal or lower capability,
    which the driver compiles (compute_90 on 10.0). Arch-specific code (sm_90a) runs only on
    its own capability."""
    for kind, number, suffix in re.findall(r"(sm|compute)_(\d+)([a-z]?)", archs):
        arch_major, arch_minor = divmod(int(number), 10)
        if suffix:
            if (arch_major, arch_minor) == (major, minor):
                return True
        elif kind == "sm" and arch_major == major and arch_minor <= minor:
            return True
        elif kind == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


#: What the ops do on a GPU the CUDA kernels cannot serve (said by the warnings that say why):
#: wls's method="auto" (:func:`xvertfast.ops.wls._resolve`) and the others' kernel choice
#: (:func:`xvertfast.ops._inputs.use_kernel`).
GPU_FALLBACK = ("wls (method='auto') solves with the C++ CPU solver, copying each batch to the host and back, "
                "and the other ops take their PyTorch path")  # fmt: skip


def cuda_kernels_run_on(device) -> bool:
    """Whether the CUDA kernels can run on this GPU (a ``torch.device``): built with them, for its
    architecture, and with a CUDA runtime that reaches it (:func:`cuda_runtime_problem`). Where
    they cannot (once warned, with why), wls solves with the C++ CPU solver through the host and
    the other ops take their PyTorch path (:data:`GPU_FALLBACK`), so a T4 or V100 still runs,
    without the kernels of a default build (sm_80 and up)."""
    if not cuda_kernels_available():
        _warn_glue_once()
        return False
    return _runs_on(cuda_index(device))


def cuda_index(device) -> int:
    """The index of a CUDA ``torch.device``: its own, or for a bare ``cuda`` the current device's,
    which each thread has for itself (a reader thread's is 0 whatever its caller's is)."""
    if device.index is not None:
        return device.index
    import torch

    return torch.cuda.current_device()


def cuda_kernels_problem(device) -> str | None:
    """Why the CUDA kernels cannot run on this GPU (a CUDA ``torch.device``), or None where they can:
    the one reason given by whatever refuses a CUDA solver there (wls's method, the Enhancer's
    wls_method), rather than a bare "cannot"."""
    if cuda_kernels_run_on(device):
        return None
    ext = extension()
    if ext is None:
        return f"the compiled extension is not in use ({load_error()})"
    glue = cuda_glue_error()
    if glue is not None:
        return f"the compiled CUDA kernels cannot be used: {glue}"
    if not ext.cuda_compiled():
        return "the extension was built without its CUDA kernels (no nvcc at build time)"
    return _gpu_problem(cuda_index(device))


_glue_warned = False


def _warn_glue_once() -> None:
    global _glue_warned
    error = cuda_glue_error()
    if error is not None and not _glue_warned:
        _glue_warned = True
        warnings.warn(f"xvertfast: {error}; until then, on GPUs, {GPU_FALLBACK}", RuntimeWarning,
                      stacklevel=outside_xvertfast())


def cuda_runtime_problem(ext: ModuleType, index: int) -> str | None:
    """Why the CUDA runtime ``ext`` (the loaded ``_C``) was linked with cannot reach GPU ``index``,
    which torch sees, or None where it can. A runtime of another CUDA major version than torch's
    (an nvcc of that version at build time) loads where its library is found, then cannot start
    under a driver too old for it: it sees no GPU, and every kernel launch would fail."""
    seen = ext.cuda_device_count()
    if seen > index:
        return None
    import torch

    torch_major = (torch.version.cuda or "?").split(".")[0]
    return (f"the CUDA runtime the kernels were linked with sees {seen} GPU(s), so not GPU {index}, which torch "
            f"sees: most likely it is of another CUDA than torch's {torch.version.cuda}, too new for this driver. "
            f"Rebuild the extension with CUDA_HOME pointing at a CUDA {torch_major}.x toolkit")  # fmt: skip


def _gpu_problem(index: int) -> str | None:
    """Why kernels that were built and can be used still cannot run on GPU ``index`` (its CUDA
    runtime, then its architecture), or None: one reason for the warning and for
    :func:`cuda_kernels_problem`."""
    ext = extension()
    runtime = cuda_runtime_problem(ext, index)
    if runtime is not None:
        return runtime
    import torch

    major, minor = torch.cuda.get_device_capability(index)
    archs = ext.cuda_archs()
    if archs_cover(archs, major, minor):
        return None
    return (f"the CUDA kernels were built for {archs}, which GPU {index} (compute capability {major}.{minor}) cannot "
            f"run (rebuild for it with TORCH_CUDA_ARCH_LIST=\"{major}.{minor}\" pip install --no-build-isolation .)")  # fmt: skip


@functools.lru_cache(maxsize=None)
def _runs_on(index: int) -> bool:
    problem = _gpu_problem(index)
    if problem is not None:
        warnings.warn(f"xvertfast: {problem}; until then, on it, {GPU_FALLBACK}", RuntimeWarning,
                      stacklevel=outside_xvertfast())
    return problem is None
