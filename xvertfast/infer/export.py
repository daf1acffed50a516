"""Exporting an XVertNet stage by stage: ONNX graphs, TensorRT engines, AOTInductor packages.

Every artefact is one stage ``(xp, y) -> out`` (the WLS between stages stays in Python, see
:mod:`xvertfast.infer.backends`), with a dynamic batch axis and a fixed ``tile`` x ``tile``
spatial size: the pipeline only ever feeds ROI tiles, and a fixed size lets TensorRT use one
optimisation profile. Files are named like the model's weights (``stage1.onnx``, ``stage2.onnx``,
... as ``stage1.safetensors``, ...). A model's stages are written as a set: each to a temporary
file first, all renamed once all are made, and a higher-numbered stage file an earlier export
of a deeper model left is removed, so an interrupted export leaves no file that looks complete
and a folder pairs stages of two models only if a kill falls between the renames. Each ONNX
and AOTI file's metadata names its model, stage, stage count and precision, and
:class:`~xvertfast.infer.onnx_backend.OnnxRuntimeBackend` and :func:`load_aoti` check them.
TensorRT engines carry no such metadata: a TensorRT export builds them from the ONNX set it
finds there for this model (or writes one), and with ``overwrite`` removes older engines first.

I/O is float32 at every precision: an fp16 export holds fp16 weights and casts its inputs to
fp16 and its output back to float32 inside the graph, so callers never change, and TensorRT 11
(strongly typed only, no FP16 builder flag) takes the precision from the graph itself.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import importlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from types import ModuleType

import torch
from torch import nn

from xvertfast._checks import whole_number
from xvertfast._paths import fspath
from xvertfast._pickled_errors import said_alone
from xvertfast._version import __version__
from xvertfast.infer.cache import CACHE_HINT, cache_in_use, default_cache_dir, matches_its_digest, record_digest
from xvertfast.io.files import file_sha256
from xvertfast.io.write import atomic_write
from xvertfast.model import XVertNet, load_model, model_tile
from xvertfast.model.persistence import fingerprint
from xvertfast.model.xvertnet import uncompiled

__all__ = ["EXPORT_FORMATS", "DEFAULT_OPSET", "DEFAULT_TILE", "export_onnx", "export_aoti", "export_model",
           "cached_onnx_export", "default_cache_dir", "read_onnx_metadata", "require", "MissingDependency", "load_aoti",
           "check_stage_set", "writable_folder"]  # fmt: skip

EXPORT_FORMATS = ("onnx", "tensorrt", "aoti")
#: Opset 18 is what the torch.onnx (dynamo) exporter targets natively and TensorRT 10/11 parse.
DEFAULT_OPSET = 18
DEFAULT_TILE = 512
INPUTS, OUTPUT = ("xp", "y"), "out"
EXPORT_HINT = "install the export extra: pip install 'xvertfast[export]'"


class MissingDependency(RuntimeError):
    """An optional package (onnx, onnxruntime, TensorRT) that is not installed, or not usable here:
    a RuntimeError as before, so callers that catch that are unchanged, and one a caller can tell from
    an export or a run that failed (a benchmark's variant not measured, not an error)."""


def require(module: str, purpose: str) -> ModuleType:
    """Imports an optional dependency, or fails (:class:`MissingDependency`) saying what needed it
    and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{purpose} needs the {module} package, which is not importable here ({exc}); "
                           f"{EXPORT_HINT}") from exc  # fmt: skip


class _StageGraph(nn.Module):
    """A copy of one stage at ``dtype`` with float32 I/O: the exported graph."""

    def __init__(self, stage: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.stage = copy.deepcopy(stage).to(dtype)
        self.dtype = dtype
        self.eval()

    def forward(self, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.stage(xp.to(self.dtype), y.to(self.dtype)).float()


@contextlib.contextmanager
def _quiet_registry():
    """The exporter's op registry logs a line per torchvision op it skips where torchvision is
    not installed (8 per export); the graphs use none of them."""
    import logging

    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        yield
    finally:
        registry.setLevel(level)


def _check(model: XVertNet, tile: int, who: str) -> tuple[XVertNet, int]:
    """The model (the one ``torch.compile(model)`` wraps: "got OptimizedModule" refused it, as
    save_model did) and ``tile`` as an int, refused in the name of ``who``, the function called:
    "expected an XVertNet, got str" named neither it nor how to get a model from a folder, a NumPy
    int tile (what a shape or an array holds) was refused, and True was exported at tile 1. The
    model's hint names load_model('default'): "or 'default'" read as if the name were taken here."""
    model = uncompiled(model)
    if not isinstance(model, XVertNet):
        raise TypeError(f"{who}: model must be an XVertNet (xvertfast.load_model('default') gives the shipped "
                        f"model, xvertfast.load_model(path) a trained one), got {type(model).__name__}")  # fmt: skip
    return model, whole_number(tile, "tile", who, low=1, meaning="the stage graphs' side in pixels")


def _metadata(model: XVertNet, k: int, tile: int, fp16: bool, sha: str) -> dict[str, str]:
    return {
        "xvertfast.version": __version__,
        "xvertfast.stage": str(k + 1),
        "xvertfast.stages": str(len(model.stages)),
        "xvertfast.tile": str(tile),
        "xvertfast.precision": "fp16" if fp16 else "fp32",
        "xvertfast.model_sha256": sha,
        "xvertfast.io": f"xp, y -> out: float32 [batch, 1, {tile}, {tile}]",
        # what the preprocessing and the guidance between stages (outside the graphs) are run with
        "xvertfast.wls": json.dumps({"lam": model.lam, "alpha": model.alpha, "eps": model.eps}),
    }


def _stage_files(out_dir: str, ext: str) -> list[str]:
    """The ``stage{k}{ext}`` files in ``out_dir``, whatever k."""
    pattern = re.compile(rf"stage(\d+){re.escape(ext)}")
    return sorted(name for name in os.listdir(out_dir) if pattern.fullmatch(name))


def writable_folder(out_dir: str | os.PathLike, hint: str = "") -> str:
    """``out_dir``, made if need be and shown to take new files, before any export work (an
    export takes seconds to minutes; the folder's refusal would otherwise come at the end and
    name a temporary file). ``hint`` ends the error's message."""
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):  # makedirs would say only "File exists"
        raise said_alone(NotADirectoryError, errno.ENOTDIR,
                         f"{out_dir}: a file, not a folder: give a folder for the exported files{hint}")  # fmt: skip
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".xvertfast-probe.", dir=out_dir)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise said_alone(type(exc), exc.errno, f"{out_dir}: cannot write the exported files there "
                                               f"({exc.strerror or exc}){hint}") from exc  # fmt: skip
    return out_dir


def _refuse_existing(out_dir: str, *exts: str) -> None:
    """Without ``overwrite``, stage files already in ``out_dir`` (any stage number: a deeper
    model's last stages would be removed) are left alone, before any work."""
    there = [name for ext in exts for name in _stage_files(out_dir, ext)]
    if there:
        raise ValueError(f"{out_dir} already holds {', '.join(there)}: add --overwrite (overwrite=True in Python) to replace "
                         "them, or export into a new folder")  # fmt: skip


def _remove_stale_parts(out_dir: str, exts: tuple[str, ...]) -> None:
    """Removes the temporaries (``.stage{k}{ext}.<random>.part``) a killed export left in
    ``out_dir``: an AOTI export holds them for the whole compile. Not for the ONNX cache, where
    another process's export may be writing them."""
    pattern = re.compile(rf"\.stage\d+(?:{'|'.join(map(re.escape, exts))})\.[^.]+\.part")
    with contextlib.suppress(OSError):  # no folder yet, or none usable: the export says so
        for name in os.listdir(out_dir):
            if pattern.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(out_dir, name))


def _write_stage_set(out_dir: str, ext: str, count: int, write) -> list[str]:
    """``stage1{ext}`` .. ``stage{count}{ext}`` in ``out_dir``, each made by ``write(k, tmp_path)``
    into a temporary file, all renamed only once every one is made; then the stage files of
    ``ext`` numbered beyond ``count`` (an earlier export of a deeper model) are removed."""
    paths = [os.path.join(out_dir, f"stage{k + 1}{ext}") for k in range(count)]
    try:
        with contextlib.ExitStack() as stack:  # an error removes every temporary, renames none
            temporaries = [stack.enter_context(atomic_write(p)) for p in paths]
            for k, tmp in enumerate(temporaries):
                write(k, tmp)
    except OSError as exc:  # a full disk: '[Errno 28] No space left on device' alone, naming no folder
        raise said_alone(type(exc), exc.errno, f"{out_dir}: could not write the exported stage files "
                                               f"({exc.strerror or exc})") from exc  # fmt: skip
    for name in _stage_files(out_dir, ext):
        if int(name[len("stage") : -len(ext)]) > count:
            os.remove(os.path.join(out_dir, name))
    return paths


def export_onnx(model: XVertNet, out_dir: str | os.PathLike, tile: int = DEFAULT_TILE, fp16: bool = False,
                opset: int = DEFAULT_OPSET, sha: str | None = None, overwrite: bool = True) -> list[str]:  # fmt: skip
    """Writes ``stage{k}.onnx`` per stage (k = 1, 2, ...) into ``out_dir``; returns their paths.

    Inputs ``xp``, ``y`` and output ``out`` are float32 ``[batch, 1, tile, tile]`` with a
    dynamic batch; ``fp16`` bakes fp16 weights and compute into the graph (see the module
    docstring). Metadata (``metadata_props``): ``xvertfast.version``, ``.stage``, ``.stages``,
    ``.tile``, ``.precision``, ``.model_sha256``, ``.io`` and ``.wls`` (the model's lam, alpha,
    eps as JSON: the preprocessing and the guidance between stages run with them). Without ``overwrite``, stage files
    already in ``out_dir`` are refused (ValueError) before anything is exported. TensorRT engines
    there count as stage files: built from the set replaced, and carrying no metadata to tell,
    they are removed once the new set is written.
    """
    model, tile = _check(model, tile, "export_onnx")
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export (torch.onnx's exporter)")
    out_dir = writable_folder(out_dir)
    if not overwrite:
        _refuse_existing(out_dir, ".onnx", ".engine")
    sha = sha or fingerprint(model)  # the caller may have it already
    dtype = torch.float16 if fp16 else torch.float32
    batch = torch.export.Dim("batch", min=1)
    protos = []
    for k, stage in enumerate(model.stages):
        path = os.path.join(out_dir, f"stage{k + 1}.onnx")
        graph = _StageGraph(stage, dtype).cpu()
        example = (torch.zeros(2, 1, tile, tile), torch.zeros(2, 1, tile, tile))  # traced, not computed on
        try:
            with warnings.catch_warnings(), _quiet_registry():
                # Both inputs share the one batch Dim; the exporter warns that it names it once.
                warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
                # torch's own pytree deprecation, raised inside the exporter: nothing the user can change
                warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
                program = torch.onnx.export(graph, example, input_names=list(INPUTS), output_names=[OUTPUT],
                                            dynamic_shapes={"xp": {0: batch}, "y": {0: batch}},
                                            opset_version=opset, dynamo=True, verbose=False)  # fmt: skip
        except Exception as exc:
            raise RuntimeError(f"{path}: torch.onnx could not export stage {k + 1} "
                               f"({type(exc).__name__}: {exc})") from exc  # fmt: skip
        proto = program.model_proto
        onnx.helper.set_model_props(proto, _metadata(model, k, tile, fp16, sha))
        protos.append(proto)
    paths = _write_stage_set(out_dir, ".onnx", len(protos), lambda k, tmp: onnx.save_model(protos[k], tmp))
    for name in _stage_files(out_dir, ".engine"):  # (a TensorRT export removed its own before)
        os.remove(os.path.join(out_dir, name))
    return paths


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (without loading external weights)."""
    onnx = require("onnx", "reading ONNX metadata")
    path = os.fspath(path)
    try:
        proto = onnx.load(path, load_external_data=False)
    except OSError:
        raise
    except Exception as exc:  # protobuf's DecodeError (truncated, not ONNX) derives from Exception alone
        raise ValueError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from exc
    return {p.key: p.value for p in proto.metadata_props}


def cached_onnx_export(model: XVertNet, cache_dir: str | os.PathLike | None = None, tile: int = DEFAULT_TILE,
                       fp16: bool = False) -> list[str]:  # fmt: skip
    """The model's stage ONNX files under ``<cache_dir>/onnx/<weights hash>-...``, exported once.

    The folder name holds the weights hash, tile and precision, and a digest of what else
    shapes the graph (:func:`_exporter_digest`), so a finished export is reused as is and an
    export made by other code is not. A set there that does not read as this model's export
    (a file damaged or removed since) is exported again, not handed on to fail at every run;
    so is one whose bytes differ from the SHA-256 recorded beside each file when it was
    written (:data:`~xvertfast.infer.cache.DIGEST_SUFFIX`), with a warning naming the damaged file.
    """
    model, tile = _check(model, tile, "cached_onnx_export")
    sha = fingerprint(model)
    cache_dir = os.fspath(cache_dir or default_cache_dir())
    folder = os.path.join(cache_dir, "onnx", f"{sha[:24]}-x{_exporter_digest()}-t{tile}-{'fp16' if fp16 else 'fp32'}")
    with cache_in_use(cache_dir):  # (the caller that reads the files holds it too)
        paths = os.path.isdir(folder) and _matching_onnx_set(folder, len(model.stages), sha, tile, fp16)
        if paths and not _digests_match(paths):
            paths = None
        if not paths:  # (a cache under a HOME that takes no files is common on clusters: say how to move it)
            writable_folder(folder, CACHE_HINT)
        try:
            if paths:
                return paths
            paths = export_onnx(model, folder, tile=tile, fp16=fp16, sha=sha)
            for path in paths:
                record_digest(path, file_sha256(path))
            return paths
        except OSError as exc:  # (a full disk: said as the cache's, as a folder that takes no files is)
            raise said_alone(type(exc), exc.errno, f"{exc}{CACHE_HINT}") from exc


def _digests_match(paths: list[str]) -> bool:
    """Whether each cached stage file still has the bytes it was exported with
    (:func:`~xvertfast.infer.cache.matches_its_digest`): a damaged one is named and the set
    exported again; a set without its digests (an export killed before writing them), or with
    one that is no SHA-256, is exported again quietly."""
    return all(matches_its_digest(path, ("ONNX file", "exported", "exporting the model again")) for path in paths)


def _exporter_digest() -> str:
    """What a graph depends on besides the weights: xvertfast's version, the source of the
    stage's forward (the stage and the guidance op's traced reference) and of this exporter (a
    development install changes them without a new version), the versions of torch, onnx and
    onnxscript, and the opset."""
    from importlib import metadata

    modules = [importlib.import_module(f"xvertfast.{name}") for name in ("model.stage", "ops.guided_pool", "ops.reference")]
    versions = []
    for package in ("onnx", "onnxscript"):
        try:
            versions.append(metadata.version(package))
        except metadata.PackageNotFoundError:
            versions.append("-")
    h = hashlib.sha256("|".join([__version__, torch.__version__, *versions, str(DEFAULT_OPSET)]).encode())
    for module_file in (*(m.__file__ for m in modules), __file__):
        with open(module_file, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:12]


def export_aoti(model: XVertNet, out_dir: str | os.PathLike, tile: int = DEFAULT_TILE, fp16: bool = False,
                max_batch: int = 8, device: str | torch.device = "auto", overwrite: bool = True,
                on_start: Callable[[], None] | None = None) -> list[str]:  # fmt: skip
    """Writes ``stage{k}.pt2`` AOTInductor packages (batch 1..max_batch) for ``device``;
    ``on_start`` is called once the checks have passed, as the compiling (minutes) begins.

    Load them with :func:`load_aoti`, which checks each call's shapes: a package loaded with
    ``torch._inductor.aoti_load_package`` alone takes any tile size or batch without a word
    (unless ``AOTI_RUNTIME_CHECK_INPUTS=1``) and returns wrong numbers. Its ``get_metadata()``
    holds the same ``xvertfast.*`` keys as the ONNX export, and ``xvertfast.max_batch``. Needs a
    C++ compiler (and nvcc for CUDA).
    """
    from xvertfast.infer.backends import resolve_device

    model, tile = _check(model, tile, "export_aoti")
    max_batch = whole_number(max_batch, "max_batch", "export_aoti", low=1, meaning="the largest batch a package runs")
    dev = resolve_device(device)
    if fp16 and dev.type != "cuda":
        raise ValueError("fp16 AOTInductor packages need a CUDA device; the CPU package runs fp32")
    import torch._inductor

    if not hasattr(torch._inductor, "aoti_compile_and_package"):
        raise RuntimeError(f"torch {torch.__version__} has no torch._inductor.aoti_compile_and_package "
                           "(AOTInductor packaging needs torch >= 2.6); export to onnx instead")  # fmt: skip
    out_dir = writable_folder(out_dir)
    if not overwrite:
        _refuse_existing(out_dir, ".pt2")
    sha = fingerprint(model)
    dtype = torch.float16 if fp16 else torch.float32
    # A batch range of one value is a static batch: torch.export refuses a Dim with min == max.
    batch = torch.export.Dim("batch", min=1, max=max_batch) if max_batch > 1 else None
    dynamic = {"xp": {0: batch}, "y": {0: batch}} if batch is not None else None
    if on_start is not None:
        on_start()

    def compile_stage(k: int, tmp: str) -> None:
        graph = _StageGraph(model.stages[k], dtype).to(dev)
        example = tuple(torch.zeros(min(2, max_batch), 1, tile, tile, device=dev) for _ in INPUTS)
        meta = {**_metadata(model, k, tile, fp16, sha), "xvertfast.max_batch": str(max_batch)}
        try:
            with warnings.catch_warnings():
                # torch's own pytree deprecation, raised inside torch.export and the packaging:
                # nothing the user can change
                warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
                with torch.no_grad():
                    program = torch.export.export(graph, example, dynamic_shapes=dynamic)
                with open(tmp, "wb") as f:
                    torch._inductor.aoti_compile_and_package(program, package_path=f,
                                                             inductor_configs={"aot_inductor.metadata": meta})  # fmt: skip
        except Exception as exc:
            raise RuntimeError(f"{os.path.join(out_dir, f'stage{k + 1}.pt2')}: AOTInductor could not export/compile "
                               f"stage {k + 1} for {dev} ({type(exc).__name__}: {exc}); it needs a working C++ "
                               "compiler (and nvcc for CUDA); the onnx format is the portable alternative") from exc  # fmt: skip

    return _write_stage_set(out_dir, ".pt2", len(model.stages), compile_stage)


def check_stage_set(paths: list[str], metadata: list[dict[str, str]]) -> None:
    """Refuses stage files (ONNX graphs, AOTI packages) that are not one model's stages in
    order at one precision, by the ``xvertfast.*`` metadata each carries (see
    :func:`_metadata`): an export folder can hold another model's files beside them."""
    first = metadata[0]
    _refuse_a_set_cut_short(paths, metadata)
    for k, (path, meta) in enumerate(zip(paths, metadata)):
        keys = ("xvertfast.model_sha256", "xvertfast.stage", "xvertfast.stages", "xvertfast.precision")
        found = tuple(meta.get(key) for key in keys)
        wanted = (first.get(keys[0]), str(k + 1), str(len(paths)), first.get(keys[3]))
        if found != wanted:
            raise ValueError(f"{path}: not stage {k + 1} of the {len(paths)}-stage model of {paths[0]} (its "
                             f"metadata: model {str(found[0])[:12]}, stage {found[1]} of {found[2]}, {found[3]}; "
                             f"expected model {str(wanted[0])[:12]}, stage {wanted[1]} of {wanted[2]}, "
                             f"{wanted[3]}): export the model again into an empty folder")  # fmt: skip


def _refuse_a_set_cut_short(paths: list[str], metadata: list[dict[str, str]]) -> None:
    """Files that are a model's first stages in order, its last missing (a file lost from the
    export folder), are said as such, not as a first file that is not what it should be."""
    first, n = metadata[0], len(paths)
    stages = first.get("xvertfast.stages", "")
    if not stages.isdigit() or int(stages) <= n:
        return
    keys = ("xvertfast.model_sha256", "xvertfast.stages", "xvertfast.precision")
    if all(tuple(m.get(key) for key in keys) == tuple(first.get(key) for key in keys)
           and m.get("xvertfast.stage") == str(k + 1) for k, m in enumerate(metadata)):  # fmt: skip
        ext = os.path.splitext(paths[0])[1]
        # the names an export folder's files have, said only where these have them: files given
        # under names of their own were told of a "stage2.onnx" they never had
        folder = len({os.path.dirname(p) for p in paths}) == 1 and all(
            os.path.basename(p) == f"stage{k + 1}{ext}" for k, p in enumerate(paths))  # fmt: skip
        lacking = " (" + ", ".join(f"stage{k}{ext}" for k in range(n + 1, int(stages) + 1)) + ")" if folder else ""
        raise ValueError(f"{paths[-1]}: stage {n} of a {stages}-stage model, and no stage {n + 1} was given"
                         f"{lacking}: give every stage file of the export, or export the model again")  # fmt: skip


def _matching_onnx_set(out_dir: str, count: int, sha: str, tile: int, fp16: bool) -> list[str] | None:
    """The stage ONNX files in ``out_dir`` if they are exactly this model's export at this tile
    and precision (by their metadata), else None."""
    if _stage_files(out_dir, ".onnx") != sorted(f"stage{k + 1}.onnx" for k in range(count)):
        return None
    paths = [os.path.join(out_dir, f"stage{k + 1}.onnx") for k in range(count)]
    try:
        metadata = [read_onnx_metadata(p) for p in paths]
        check_stage_set(paths, metadata)
    except Exception:  # unreadable, or another model's: not this export
        return None
    first = metadata[0]
    wanted = (sha, str(tile), "fp16" if fp16 else "fp32")
    return paths if (first.get("xvertfast.model_sha256"), first.get("xvertfast.tile"),
                     first.get("xvertfast.precision")) == wanted else None  # fmt: skip


class _CheckedPackage:
    """An AOTInductor stage package that refuses inputs outside what it was compiled for."""

    def __init__(self, path: str, runner, metadata: dict[str, str]):
        self.path, self._runner, self.metadata = path, runner, metadata
        self.tile = int(metadata["xvertfast.tile"])
        self.max_batch = int(metadata["xvertfast.max_batch"])

    def __call__(self, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b = xp.shape[0] if xp.dim() == 4 else -1
        if xp.shape != (b, 1, self.tile, self.tile) or y.shape != xp.shape or not 1 <= b <= self.max_batch:
            raise ValueError(f"{self.path}: xp and y must be float32 [B, 1, {self.tile}, {self.tile}] with B from 1 to "
                             f"{self.max_batch}, got {tuple(xp.shape)} and {tuple(y.shape)}")  # fmt: skip
        if xp.dtype != torch.float32 or y.dtype != torch.float32:
            raise ValueError(f"{self.path}: xp and y must be float32, got {xp.dtype} and {y.dtype}")
        # (unchecked unless AOTI_RUNTIME_CHECK_INPUTS=1: the compiled kernels would take another device's
        # pointers as theirs)
        device = self.metadata.get("AOTI_DEVICE_KEY")
        if device and not xp.device.type == y.device.type == device:
            raise ValueError(f"{self.path}: compiled for {device}: xp and y must be on a {device} device, got "
                             f"{xp.device.type} and {y.device.type}")  # fmt: skip
        return self._runner(xp.contiguous(), y.contiguous())


#: The CPU features an AOTI package's AOTI_CPU_ISA can name, and how torch says this CPU has them.
_CPU_FEATURES = {
    "AVX2": "_is_avx2_supported",
    "AVX512": "_is_avx512_supported",
    "AVX512_VNNI": "_is_vnni_supported",
    "AVX512_BF16": "_is_avx512_bf16_supported",
    "AMX_TILE": "_is_amx_tile_supported",
    "AMX_FP16": "_is_amx_fp16_supported",
}


def _package_build_metadata(path: str) -> dict[str, str] | None:
    """The metadata an AOTI package records, read from its archive without loading its code
    (None where the layout is not the one known: the check is then left to torch)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("wrapper_metadata.json") and "/aotinductor/" in n]
            return json.loads(archive.read(names[0])) if names else None
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None


def aoti_runs_here(metadata: dict[str, str]) -> str | None:
    """Why a CPU package built with this metadata cannot run on this machine, or None. Inductor
    compiles a CPU package for the vector instructions of the CPU that exported it (AOTI_CPU_ISA,
    e.g. AVX-512 and AMX on a recent Xeon); on a CPU without them its code dies of an illegal
    instruction, taking the process with it, so it is refused before it is loaded."""
    if metadata.get("AOTI_DEVICE_KEY", "cpu") != "cpu":
        return None
    import platform

    machine = metadata.get("AOTI_MACHINE")
    if machine and machine != platform.machine():
        return f"it was compiled for {machine} CPUs, this one is {platform.machine()}"
    missing = [flag for flag in metadata.get("AOTI_CPU_ISA", "").split()
               if flag in _CPU_FEATURES and not getattr(torch.cpu, _CPU_FEATURES[flag], lambda: True)()]  # fmt: skip
    if missing:
        return f"it was compiled for a CPU with {', '.join(missing)}, which this CPU lacks"
    return None


def stage_paths(paths: str | os.PathLike | list[str | os.PathLike], ext: str, who: str, fmt: str) -> list[str]:
    """The stage files ``who`` was given: a list as it is, one file as a list of it, an export
    folder as its ``stage{k}{ext}`` files in stage order (stage10 after stage2); a path was
    otherwise walked through character by character."""
    if not isinstance(paths, (str, os.PathLike)):
        found = [os.fspath(p) for p in paths]
        if not found:
            raise ValueError(f"{who} needs the stage files of one model, got none")
        return found
    path = os.fspath(paths)
    if not os.path.isdir(path):
        return [path]
    names = sorted(_stage_files(path, ext), key=lambda name: int(name[len("stage") : -len(ext)]))
    if not names:
        raise ValueError(f"{path}: no stage1{ext} (...) in this folder: export the model there with "
                         f"xvertfast export --format {fmt}")  # fmt: skip
    return [os.path.join(path, name) for name in names]


def load_aoti(paths: str | os.PathLike | list[str | os.PathLike]) -> list:
    """Loads the ``stage{k}.pt2`` packages of one model (in stage order) as callables
    ``stage(xp, y) -> out`` that check their inputs' shape, batch and dtype against what the
    package was compiled for, and checks that the packages are that model's stages in order.

    A package is compiled code (a shared library) that loading runs: load only packages you
    exported, as you would run only programs you trust. Model folders (safetensors) and ONNX
    files hold no code.

    ``paths``: the packages in stage order, one package, or the folder an export wrote them into.
    """
    import torch._inductor

    stages = []
    for path in stage_paths(paths, ".pt2", "load_aoti", "aoti"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such AOTInductor package")
        why = aoti_runs_here(_package_build_metadata(path) or {})
        if why is not None:
            raise ValueError(f"{path}: cannot run on this machine: {why}; export the model again here "
                             "(xvertfast export --format aoti)")  # fmt: skip
        try:
            runner = torch._inductor.aoti_load_package(path)
        except Exception as exc:  # torch's message names no file ("Failed to initialize zip archive: ...")
            raise ValueError(f"{path}: not a loadable AOTInductor package ({type(exc).__name__}: {exc}); "
                             "export it again with xvertfast export --format aoti") from exc  # fmt: skip
        metadata = dict(runner.get_metadata())
        if "xvertfast.tile" not in metadata or "xvertfast.max_batch" not in metadata:
            raise ValueError(f"{path}: not an xvertfast stage package (no xvertfast.* metadata)")
        stages.append(_CheckedPackage(path, runner, metadata))
    check_stage_set([s.path for s in stages], [s.metadata for s in stages])
    return stages


def export_model(model_path_or_model: str | os.PathLike | XVertNet, out: str | os.PathLike, format: str = "onnx",
                 fp16: bool = False, max_batch: int = 8, tile: int | None = None, device: str | torch.device = "auto",
                 cache_dir: str | os.PathLike | None = None, overwrite: bool = True,
                 on_start: Callable[[], None] | None = None) -> list[str]:  # fmt: skip
    """Exports a model (directory or XVertNet) into ``out``; returns the files the format runs from.

    Args:
        format: ``onnx`` (``stage{k}.onnx``), ``tensorrt`` (``stage{k}.engine``, beside the
            ``stage{k}.onnx`` it was built from; built through the engine cache in
            ``cache_dir``, default :func:`default_cache_dir`) or ``aoti`` (``stage{k}.pt2``).
        fp16: fp16 weights and compute (float32 I/O).
        max_batch: the largest batch of an engine or AOTI package (ONNX batch is unbounded).
        tile: the spatial size; default the model's training ``roi_size`` (config.json,
            ``training.config.roi_size``), else 512.
        device: where TensorRT/AOTI artefacts run (``auto``: CUDA when there is one); TensorRT
            needs CUDA.
        overwrite: replace stage files already in ``out`` (else they are refused, before any work).
        on_start: called once every cheap check has passed (TensorRT or a GPU missing, ``out``
            unwritable), as the long part begins: the CLI's "this takes minutes" note, which
            before a refusal would only mislead.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    model = uncompiled(model_path_or_model)  # (torch.compile(model) exports the model it wraps)
    if not isinstance(model, XVertNet):  # (os.fspath's own "expected str, bytes or ... not Conv2d" named no function)
        model = load_model(fspath(model_path_or_model,
                                  "export_model: model must be a model directory, 'default' or an XVertNet"))
    tile = model_tile(model, DEFAULT_TILE) if tile is None else _check(model, tile, "export_model")[1]
    max_batch = whole_number(max_batch, "max_batch", "export_model", low=1,
                             meaning="the largest batch an engine or package runs")
    _remove_stale_parts(os.fspath(out), {"onnx": (".onnx",), "aoti": (".pt2",)}.get(format, (".onnx", ".engine")))
    if format == "onnx":
        return export_onnx(model, out, tile=tile, fp16=fp16, overwrite=overwrite)
    if format == "aoti":
        return export_aoti(model, out, tile=tile, fp16=fp16, max_batch=max_batch, device=device, overwrite=overwrite,
                           on_start=on_start)  # fmt: skip
    from xvertfast.infer.backends import resolve_device
    from xvertfast.infer.tensorrt_backend import build_engine, import_tensorrt

    import_tensorrt()
    dev = resolve_device(device)
    if dev.type != "cuda":
        raise RuntimeError("TensorRT engines are built on and for a CUDA GPU; none is used here "
                           f"(device {dev}); export to onnx instead")  # fmt: skip
    out = writable_folder(out)
    if overwrite:  # engines carry no metadata: none of an older export may stay beside the new ONNX set
        for name in _stage_files(out, ".engine"):
            os.remove(os.path.join(out, name))
    else:
        _refuse_existing(out, ".engine")
    if on_start is not None:
        on_start()
    sha = fingerprint(model)
    # the ONNX set an `--format onnx` export of this model wrote there is what the engines build from
    onnx_paths = _matching_onnx_set(out, len(model.stages), sha, tile, fp16)
    if onnx_paths is None:
        onnx_paths = export_onnx(model, out, tile=tile, fp16=fp16, sha=sha, overwrite=overwrite)
    with cache_in_use(cache_dir):  # from finding the cached engines to having copied them
        cached = [build_engine(p, max_batch=max_batch, device=dev, cache_dir=cache_dir) for p in onnx_paths]
        return _write_stage_set(os.fspath(out), ".engine", len(cached), lambda k, tmp: shutil.copyfile(cached[k], tmp))
