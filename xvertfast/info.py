"""What this installation of xvertfast can do: versions, kernels, devices, optional backends.

Used by ``xvertfast info`` and by bug reports; never raises.
"""

from __future__ import annotations

import importlib
import platform
from typing import Any

import torch

from xvertfast._text import count
from xvertfast._version import __version__
from xvertfast._extension import built_against_cuda_torch, cuda_glue_error, extension, load_error
from xvertfast.infer.backends import cpu_bf16_support

__all__ = ["collect", "format_report", "OPS", "OPTIONAL"]

#: Ops the extension registers under torch.ops.xvertfast.
OPS = (
    "gradient_correlation",
    "gradient_correlation_backward",
    "feature_entropy",
    "select_max_entropy",
    "guided_pool",
    "guided_pool_backward",
    "wls",
    "wls_setup",
    "wls_apply",
)
#: Optional packages and what they add: GPU arrays, ONNX/TensorRT runtimes, ONNX export (onnx and
#: onnxscript, torch.onnx's exporter), DICOM and its compressed transfer syntaxes (pylibjpeg, gdcm),
#: TIFF codecs beyond Pillow's and JPEG 2000 DICOM decoded on several threads at once (imagecodecs),
#: figures and baselines.
OPTIONAL = ("cupy", "onnxruntime", "tensorrt", "onnx", "onnxscript", "pydicom", "pylibjpeg", "gdcm", "imagecodecs",
            "matplotlib", "skimage")


def _has_kernel(op: str, key: str) -> bool:
    try:
        return bool(torch._C._dispatch_has_kernel_for_dispatch_key(f"xvertfast::{op}", key))
    except Exception:  # op not registered at all
        return False


def _module_version(name: str) -> str | None:
    try:
        module = importlib.import_module(name)
    except Exception:  # ImportError, or a GPU library failing to initialise
        return None
    return str(getattr(module, "__version__", "unknown version"))


def collect() -> dict[str, Any]:
    """A JSON-serialisable description of the installation."""
    ext = extension()
    cuda_compiled = bool(ext is not None and ext.cuda_compiled())
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(f"{p.name} (sm_{p.major}{p.minor}, {p.total_memory / 2**30:.0f} GiB)")
    return {
        "xvertfast": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "extension": ext is not None,
        "extension_error": load_error(),
        "openmp": bool(ext is not None and ext.openmp()),
        "cpu_threads": torch.get_num_threads(),
        # the torch release _C was compiled against (None without one, or one too old to say)
        "extension_torch": (ext.torch_version() if ext is not None and hasattr(ext, "torch_version") else None),
        # (a _C that loaded but is not used, built for another torch, still registered its kernels)
        "cpu_ops": [op for op in OPS if ext is not None and _has_kernel(op, "CPU")],
        "cuda_kernels_compiled": cuda_compiled,
        "cuda_archs": (ext.cuda_archs().split(",") if cuda_compiled else []),
        # whether _C was compiled against a CUDA build of torch (its CUDA glue has a device guard
        # and stream then); None without CUDA kernels
        "extension_torch_cuda": (built_against_cuda_torch(ext) if cuda_compiled else None),
        "cuda_kernels_error": cuda_glue_error(),
        "cuda_ops": [op for op in OPS if ext is not None and _has_kernel(op, "CUDA")],
        "cuda_runtime_devices": (ext.cuda_device_count() if cuda_compiled else 0),
        "gpus": gpus,
        "cpu_bf16": cpu_bf16_support(),
        "optional": {name: _module_version(name) for name in OPTIONAL},
        "default_model": _default_model(),
        "export_cache": _export_cache(),
    }


def _export_cache() -> dict[str, Any] | None:
    """Where the export cache is and how much it holds, ``{"path", "error"}`` where it is a file or
    cannot be listed (the line was left out without a word), None where even that cannot be told
    (never raises)."""
    try:
        from xvertfast.infer.cache import cache_usage, default_cache_dir

        path = default_cache_dir()
    except Exception:  # noqa: BLE001  (info reports; it never raises)
        return None
    try:
        return cache_usage(path)
    except OSError as exc:
        return {"path": path, "error": str(exc)}
    except Exception:  # noqa: BLE001
        return None


def _default_model(directory: str | None = None) -> str | None:
    """What ``--model default`` would load (architecture and size), None if it is missing, or
    ``damaged (reason): directory`` where its config.json or a stage file is unusable (never raises)."""
    import json
    import os

    try:
        if directory is None:
            from xvertfast.model import DEFAULT_MODEL_DIR as directory
        config = os.path.join(directory, "config.json")
        if not os.path.isfile(config):
            return None
        from xvertfast.model.persistence import check_config

        try:
            with open(config, encoding="utf-8") as f:
                data = json.load(f)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"config.json is not valid JSON ({exc})") from None
        stages = check_config(data, "config.json")
        names = [f"stage{k}.safetensors" for k in range(1, len(stages) + 1)]
        missing = [n for n in names if not os.path.isfile(os.path.join(directory, n))]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        size = sum(os.path.getsize(os.path.join(directory, n)) for n in ["config.json", *names])
    except Exception as exc:  # noqa: BLE001  (info reports; it never raises)
        return f"damaged ({exc or type(exc).__name__}): {directory}"
    widths = ", ".join(str(s["width"]) for s in stages)
    return f"{len(stages)} stages (width {widths}), {size / 1e6:.1f} MB, {directory}"


_BF16_TEXT = {
    "amx": "AMX: --precision bf16 runs the network about twice as fast as fp32 (a whole enhance job about 1.2x: the WLS solves and file I/O stay)",
    "avx512_bf16": "AVX-512 BF16 without AMX: --precision bf16 works; measure it against fp32",
    "yes": "supported by oneDNN; measure --precision bf16 against fp32",
    "no": "no (--precision bf16 is refused on this CPU)",
}


def _cuda_kernels_text(info: dict[str, Any]) -> str:
    if not info["cuda_kernels_compiled"]:
        return "not compiled"
    text = "compiled for " + ", ".join(info["cuda_archs"])
    built = info.get("extension_torch_cuda")
    if built is not None:
        text += ", against a " + ("CUDA" if built else "CPU") + " build of torch"
    if info.get("cuda_kernels_error"):
        text += f"; NOT used ({info['cuda_kernels_error']})"
    return text


def format_report(info: dict[str, Any]) -> str:
    """Human-readable lines for ``xvertfast info``."""

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    ext = "built and loaded" if info["extension"] else f"NOT in use ({info['extension_error']})"
    if info["extension"] and info.get("extension_torch"):
        ext += f", compiled against torch {info['extension_torch']}"
    lines = [
        f"xvertfast            {info['xvertfast']}",
        f"python               {info['python']}",
        f"torch                {info['torch']} ({'CUDA ' + info['torch_cuda'] if info['torch_cuda'] else 'CPU build'})",
        f"extension            {ext}",
        f"CPU ops              {', '.join(info['cpu_ops']) or 'none (pure-PyTorch fallback)'}",
        f"  OpenMP             {yes(info['openmp'])}, {count(info['cpu_threads'], 'thread')}",
        f"  CPU bf16           {_BF16_TEXT.get(info['cpu_bf16'], info['cpu_bf16'])}",
        f"CUDA kernels         {_cuda_kernels_text(info)}",
        f"  CUDA ops           {', '.join(info['cuda_ops']) or 'none'}",
        f"GPU visible          {'; '.join(info['gpus']) if info['gpus'] else 'no'}"
        + (f" (kernel runtime sees {info['cuda_runtime_devices']})" if info["cuda_kernels_compiled"] else ""),
    ]
    lines.append(f"default model        {info.get('default_model') or 'missing (reinstall xvertfast)'}")
    if info.get("export_cache") and "error" in info["export_cache"]:
        lines.append(f"export cache         unusable: {info['export_cache']['error']}")
    elif info.get("export_cache"):
        from xvertfast.infer.cache import describe_usage

        lines.append(f"export cache         {describe_usage(info['export_cache'])}; `xvertfast cache --clear` empties it")
    for name, version in info["optional"].items():
        lines.append(f"{name:<20} {version if version else 'not importable'}")
    return "\n".join(lines)
