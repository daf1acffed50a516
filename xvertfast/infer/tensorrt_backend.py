"""TensorRT backend: one engine per stage, built from the stage's ONNX export and cached on disk.

Engines are tied to the TensorRT version and the GPU, so each is cached under a key hashing the
ONNX bytes, the TensorRT version, GPU name, compute capability and every setting the builder is
given (:func:`build_settings`: network flags, memory limit, builder flags, the optimisation
profile of batch 1 .. max_batch at one tile size); a second run loads it in a second. Each engine
has its SHA-256 beside it, as the cached ONNX files do: one damaged on disk is built again, not
given to TensorRT's deserializer. The builder's timing cache is kept beside the engines, so
rebuilding (a new model, another max batch) is fast.

Networks are strongly typed (the only kind TensorRT 11 builds): fp16 comes from the fp16 ONNX
graph (see :mod:`xvertfast.infer.export`), never from a builder flag; fp32 engines clear TF32 so
that fp32 means fp32. TensorRT is optional: importing this module never needs it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from types import ModuleType
from typing import Any

import torch

from xvertfast._extension import cuda_index
from xvertfast._pickled_errors import PickledAsRaised
from xvertfast._stacklevel import outside_xvertfast
from xvertfast._text import from_cli
from xvertfast.infer.backends import StageBackend
from xvertfast.infer.cache import (CACHE_HINT, cache_in_use, default_cache_dir, file_sha256_once, matches_its_digest,
                                   one_build_at_a_time, record_digest, recorded_digest)
from xvertfast.infer.export import (DEFAULT_TILE, MissingDependency, cached_onnx_export, read_onnx_metadata,
                                    writable_folder)
from xvertfast.io.write import atomic_write
from xvertfast.model import XVertNet

__all__ = ["available", "import_tensorrt", "build_settings", "engine_cache_key", "engine_path", "build_engine",
           "TensorRTBackend", "EngineLoadError", "INSTALL_HINT", "install_hint", "WORKSPACE_BYTES"]  # fmt: skip

#: How to install TensorRT; :func:`install_hint` adds the portable alternative and how to use it
INSTALL_HINT = ("install it with `pip install tensorrt` (TensorRT 10 or newer) on a machine with an NVIDIA driver "
                "and a CUDA GPU")  # fmt: skip
#: The portable alternative to TensorRT and how to install it; :func:`install_hint` says how to use it
_ALTERNATIVE = "or use the portable alternative, ONNX run by onnxruntime: `pip install 'xvertfast[export]'`"


def install_hint() -> str:
    """:data:`INSTALL_HINT` and how to use onnxruntime instead, in the caller's words: the CLI's
    options, or a Python caller's arguments (who was told of ``enhance --backend onnxruntime``)."""
    if from_cli():
        return f"{INSTALL_HINT}; {_ALTERNATIVE}, then enhance --backend onnxruntime, or export --format onnx"
    return f"{INSTALL_HINT}; {_ALTERNATIVE}, then backend='onnxruntime', or export_model(model, out, format='onnx')"


#: Builder scratch memory: ample for the U-Net's tactics at 512^2, and TensorRT would otherwise
#: allow itself the whole device.
WORKSPACE_BYTES = 4 << 30


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module (10 or newer), or a :class:`~xvertfast.infer.export.MissingDependency`
    (a RuntimeError) that says how to install it."""
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or OSError from the wheel's missing CUDA libraries
        raise MissingDependency(f"TensorRT is not available ({type(exc).__name__}: {exc}); {install_hint()}") from exc
    if int(trt.__version__.split(".")[0]) < 10:
        raise MissingDependency(f"TensorRT {trt.__version__} is too old: xvertfast needs TensorRT 10 or newer "
                           f"(name-based tensors, execute_async_v3); {install_hint()}")  # fmt: skip
    return trt


class EngineLoadError(PickledAsRaised, RuntimeError):
    """An engine file this TensorRT cannot deserialize; ``path`` names it. Pickled and copied as
    raised (rebuilt from its message alone by default, which the constructor refuses: one raised
    in a multiprocessing worker, an Enhancer's, hung the pool)."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


def available() -> bool:
    """Whether TensorRT 10+ imports here; never raises."""
    try:
        import_tensorrt()
    except Exception:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _logger():
    """One logger for builder and runtime: TensorRT warns when they differ."""
    trt = import_tensorrt()
    return trt.Logger(trt.Logger.WARNING)


def build_settings(tensorrt_version: str, precision: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Every setting :func:`build_engine` gives the builder, as plain data (names of TensorRT's
    enums, numbers, shapes): build_engine applies this and :func:`engine_cache_key` hashes it, so
    no setting can change without the cached engine's key changing. ``shapes``: the profile's
    min/opt/max, for both inputs."""
    return {
        # from TensorRT 11 on every network is strongly typed (the flag is deprecated there)
        "network_flags": ["STRONGLY_TYPED"] if int(tensorrt_version.split(".")[0]) < 11 else [],
        "memory_pool_limits": {"WORKSPACE": WORKSPACE_BYTES},
        # fp32 means fp32; fp16 comes from the graph, TF32 is then TensorRT's to use
        "cleared_flags": ["TF32"] if precision == "fp32" else [],
        "profile": {name: [list(shapes["min"]), list(shapes["opt"]), list(shapes["max"])] for name in ("xp", "y")},
    }


def engine_cache_key(onnx_sha256: str, *, tensorrt_version: str, gpu_name: str, capability: tuple[int, int],
                     settings: dict[str, Any]) -> str:  # fmt: skip
    """sha256 over everything an engine depends on (``settings``: :func:`build_settings`); plain
    JSON, so the same in every process."""
    payload = {"onnx_sha256": onnx_sha256, "tensorrt": tensorrt_version, "gpu": gpu_name,
               "capability": list(capability), "settings": settings}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _profile(onnx_path: str, max_batch: int) -> tuple[str, dict[str, tuple[int, ...]]]:
    """(precision, min/opt/max input shapes) of a stage export for batches 1..max_batch."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    meta = read_onnx_metadata(onnx_path)
    if "xvertfast.tile" not in meta or "xvertfast.precision" not in meta:
        raise ValueError(f"{onnx_path}: not an xvertfast stage export (no xvertfast.tile/precision metadata); "
                         "write it with xvertfast.infer.export.export_onnx")  # fmt: skip
    tile = int(meta["xvertfast.tile"])
    shapes = {"min": (1, 1, tile, tile), "opt": (max_batch, 1, tile, tile), "max": (max_batch, 1, tile, tile)}
    return meta["xvertfast.precision"], shapes


def _cuda(device: torch.device | str) -> torch.device:
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available():
        raise RuntimeError(f"TensorRT runs on a CUDA GPU; got device {dev} (CUDA available: "
                           f"{torch.cuda.is_available()}); use the onnxruntime or torch backend instead")  # fmt: skip
    return torch.device("cuda", cuda_index(dev))


def _engine_spec(trt: ModuleType, onnx_path: str, max_batch: int, dev: torch.device, cache_dir: str,
                 onnx_sha256: str | None = None) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """(cached engine path, builder settings) of one stage export; ``onnx_sha256``, where the
    caller has it, spares hashing the file again."""
    settings = build_settings(trt.__version__, *_profile(onnx_path, max_batch))
    key = engine_cache_key(onnx_sha256 or file_sha256_once(onnx_path), tensorrt_version=trt.__version__,
                           gpu_name=torch.cuda.get_device_name(dev),
                           capability=torch.cuda.get_device_capability(dev), settings=settings)  # fmt: skip
    return os.path.join(cache_dir, f"{key}.engine"), settings


def engine_path(onnx_path: str | os.PathLike, *, max_batch: int, device: torch.device | str,
                cache_dir: str | os.PathLike | None = None) -> str:  # fmt: skip
    """Where the engine for this ONNX file, profile, TensorRT version and GPU is cached."""
    trt = import_tensorrt()
    cache_dir = os.fspath(cache_dir or default_cache_dir())
    return _engine_spec(trt, os.fspath(onnx_path), max_batch, _cuda(device), cache_dir)[0]


def _timing_cache_path(cache_dir: str, trt: ModuleType, dev: torch.device) -> str:
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(dev)).strip("-")
    major, minor = torch.cuda.get_device_capability(dev)
    return os.path.join(cache_dir, f"timing-trt{trt.__version__}-{gpu}-sm{major}{minor}.cache")


#: What a cached engine whose bytes are not those it was built with is called, and what is done.
_ENGINE_DAMAGED = ("TensorRT engine", "built", "building it again")


def build_engine(onnx_path: str | os.PathLike, *, max_batch: int = 8, device: torch.device | str = "cuda",
                 cache_dir: str | os.PathLike | None = None, onnx_sha256: str | None = None) -> str:  # fmt: skip
    """Builds (or finds in the cache) the engine of one stage export; returns the engine's path.
    A cached engine whose bytes are not those it was built with (its ``.sha256``) is built again,
    with a warning; one without a digest (built by an older xvertfast, or killed before writing it)
    is built again quietly. ``onnx_sha256``: the ONNX file's SHA-256 where the caller has it (the
    digest :func:`~xvertfast.infer.export.cached_onnx_export` has just checked), not hashed again."""
    trt = import_tensorrt()
    dev = _cuda(device)
    onnx_path = os.fspath(onnx_path)
    cache_dir = os.fspath(cache_dir or default_cache_dir())
    with cache_in_use(cache_dir):  # (a caller that then reads the engine holds it until it has)
        path, settings = _engine_spec(trt, onnx_path, max_batch, dev, cache_dir, onnx_sha256)
        if not matches_its_digest(path, _ENGINE_DAMAGED):
            writable_folder(cache_dir, CACHE_HINT)  # before minutes of building, not at the engine's temporary file
            with one_build_at_a_time(cache_dir):
                if not matches_its_digest(path):  # (built meanwhile by the process waited for; said once)
                    _build(trt, dev, onnx_path, settings, path, cache_dir)
    return path


def _build(trt: ModuleType, dev: torch.device, onnx_path: str, settings: dict[str, Any], path: str,
           cache_dir: str) -> None:  # fmt: skip
    """Builds the engine of ``onnx_path`` with ``settings`` into ``path``, and saves the timing cache."""
    with torch.cuda.device(dev):
        builder = trt.Builder(_logger())
        flags = 0
        for flag in settings["network_flags"]:
            flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, flag))
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, _logger())
        if not parser.parse_from_file(onnx_path):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
        config = builder.create_builder_config()
        for pool, size in settings["memory_pool_limits"].items():
            config.set_memory_pool_limit(getattr(trt.MemoryPoolType, pool), size)
        for flag in settings["cleared_flags"]:
            config.clear_flag(getattr(trt.BuilderFlag, flag))
        timing_path = _timing_cache_path(cache_dir, trt, dev)
        timing_bytes = b""
        if os.path.isfile(timing_path):
            with open(timing_path, "rb") as f:
                timing_bytes = f.read()
        config.set_timing_cache(config.create_timing_cache(timing_bytes), ignore_mismatch=False)
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in settings["profile"].items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"{onnx_path}: TensorRT could not build an engine (see its log above)")
        with atomic_write(path) as tmp, open(tmp, "wb") as f:
            f.write(memoryview(plan))
        # after the engine: a kill between the two leaves an engine without a digest, built again
        record_digest(path, hashlib.sha256(memoryview(plan)).hexdigest())
        with atomic_write(timing_path) as tmp, open(tmp, "wb") as f:
            f.write(memoryview(config.get_timing_cache().serialize()))


class TensorRTBackend(StageBackend):
    """Runs stage engines with ``execute_async_v3`` in place on torch tensors (no copies); any batch
    from 1 to the engines' max batch, at their tile size. They run on torch's current CUDA stream,
    unless that is the legacy default stream (as it is unless the caller chose one): TensorRT 10
    warns there ("Using default stream in enqueueV3() ...") and adds synchronisations of its own,
    so they run on a stream of their own, ordered after the work that made the inputs and before
    any that reads the output."""

    name = "tensorrt"

    def __init__(self, engine_paths: list[str], device: torch.device, dtype: torch.dtype = torch.float32):
        trt = import_tensorrt()
        super().__init__(_cuda(device))
        self.dtype = dtype  # what the engines were built at (from_model knows; the engines do not say)
        if not engine_paths:
            raise ValueError("TensorRTBackend needs one engine per stage, got none")
        self._engines, self._contexts, profiles = [], [], set()
        runtime = trt.Runtime(_logger())
        with torch.cuda.device(self.device):
            for path in engine_paths:
                with open(path, "rb") as f:
                    engine = runtime.deserialize_cuda_engine(f.read())
                if engine is None:
                    raise EngineLoadError(f"{path}: TensorRT {trt.__version__} could not load this engine (built "
                                          "by another TensorRT or for another GPU, or damaged?); build it again "
                                          "from its ONNX", path)  # fmt: skip
                names = sorted(engine.get_tensor_name(i) for i in range(engine.num_io_tensors))
                if names != ["out", "xp", "y"]:
                    raise RuntimeError(f"{path}: expected I/O tensors xp, y -> out, found {', '.join(names)}")
                for name in names:
                    if engine.get_tensor_dtype(name) != trt.float32:
                        raise RuntimeError(f"{path}: tensor {name} is {engine.get_tensor_dtype(name)}, "
                                           "expected float32 I/O")  # fmt: skip
                context = engine.create_execution_context()
                if context is None:
                    raise RuntimeError(f"{path}: could not create an execution context (out of GPU memory?)")
                self._engines.append(engine)
                self._contexts.append(context)
                _, _, top = engine.get_tensor_profile_shape("xp", 0)
                profiles.add((int(top[0]), int(top[2])))
        if len(profiles) != 1:
            raise RuntimeError(f"the stage engines disagree on max batch / tile: {sorted(profiles)}")
        ((self.max_batch, self.tile),) = profiles
        self._own_stream = None  # made on the first call from the default stream

    def _stream(self):
        """(the stream the engines run on, torch's current one where that is the default stream)."""
        current = torch.cuda.current_stream(self.device)
        if current.cuda_stream != 0:
            return current, None
        if self._own_stream is None:
            self._own_stream = torch.cuda.Stream(device=self.device)
        return self._own_stream, current

    @classmethod
    def from_model(cls, model: XVertNet, device: torch.device, tile: int = DEFAULT_TILE, fp16: bool = False,
                   max_batch: int = 8, cache_dir: str | None = None) -> TensorRTBackend:  # fmt: skip
        """Exports the stages to ONNX, builds or loads their cached engines, and loads them. A
        cached engine that does not load is built again (once)."""
        trt = import_tensorrt()
        dev = _cuda(device)
        cache_dir = cache_dir or default_cache_dir()
        with cache_in_use(cache_dir):  # from exporting to having read the engines
            onnx_paths = cached_onnx_export(model, cache_dir, tile=tile, fp16=fp16)
            # the digests it has just checked the files against (or written): the engines' keys, not hashed again
            digests = [recorded_digest(p) for p in onnx_paths]
            dtype, rebuilt = (torch.float16 if fp16 else torch.float32), set()
            while True:
                engines = [build_engine(p, max_batch=max_batch, device=dev, cache_dir=cache_dir, onnx_sha256=d)
                           for p, d in zip(onnx_paths, digests)]  # fmt: skip
                try:
                    return cls(engines, dev, dtype)
                except EngineLoadError as exc:  # from a TensorRT build that reports the same version (damage
                    # on disk since it was built is its digest's to find, before it is read)
                    if exc.path in rebuilt:  # built again here and still unloadable: TensorRT's log says why
                        raise
                    import warnings

                    warnings.warn(f"{exc.path}: TensorRT {trt.__version__} could not load this cached engine; "
                                  "building it again", RuntimeWarning, stacklevel=outside_xvertfast())  # fmt: skip
                    rebuilt.add(exc.path)
                    os.remove(exc.path)

    @property
    def stages(self) -> int:
        return len(self._contexts)

    def run_stage(self, k: int, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = xp.shape[0]
        if xp.shape != (b, 1, self.tile, self.tile) or y.shape != xp.shape:
            raise ValueError(f"TensorRT stage {k + 1}: xp and y must be [B, 1, {self.tile}, {self.tile}], got "
                             f"{tuple(xp.shape)} and {tuple(y.shape)}")  # fmt: skip
        if not 1 <= b <= self.max_batch:
            raise ValueError(f"TensorRT stage {k + 1}: batch {b} is outside the engine's profile 1..{self.max_batch}")
        xp = xp.to(self.device, torch.float32).contiguous()
        y = y.to(self.device, torch.float32).contiguous()
        out = torch.empty_like(xp)
        context = self._contexts[k]
        with torch.cuda.device(self.device):
            for name, t in (("xp", xp), ("y", y)):
                if not context.set_input_shape(name, tuple(t.shape)):
                    raise RuntimeError(f"TensorRT stage {k + 1}: the engine refused input shape {tuple(t.shape)}")
                context.set_tensor_address(name, t.data_ptr())
            context.set_tensor_address("out", out.data_ptr())
            stream, default = self._stream()
            if default is not None:
                stream.wait_stream(default)  # the inputs are made on the default stream
            ran = context.execute_async_v3(stream.cuda_stream)
            if default is not None:
                # what reads the output, or reuses the inputs' memory once freed, comes after
                default.wait_stream(stream)
            if not ran:
                raise RuntimeError(f"TensorRT stage {k + 1}: execute_async_v3 failed (see its log above)")
        return out
