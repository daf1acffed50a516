"""Inference backends: what runs one network stage on a batch of ROI tiles.

Every backend has the same small face, so the pipeline never cares which one it has:

    backend.run_stage(k, xp, y) -> out      # k = 0, 1, ...; [B, 1, S, S] float32 tensors

``xp`` and ``y`` arrive on ``backend.device``; the output is float32 on the same device. The
WLS between stages stays outside (in :class:`xvertfast.infer.Enhancer`), so an exported engine
is one stage: ``(xp, y) -> out``. Tiles are always ``tile`` x ``tile`` (the model's ROI size),
which lets ``compile`` capture CUDA graphs and TensorRT use a single optimisation profile.
"""

from __future__ import annotations

import contextlib

import torch

from xvertfast._extension import cuda_index
from xvertfast._stacklevel import outside_xvertfast
from xvertfast._text import asked, offers
from xvertfast.model import XVertNet
from xvertfast.model.persistence import as_device, refuse_meta

__all__ = ["BACKENDS", "StageBackend", "TorchBackend", "CompileBackend", "make_backend", "resolve_device",
           "resolve_precision", "PRECISIONS", "warn_cpu_bf16_without_amx", "cuda_bf16_native", "cpu_bf16_support",
           "without_tf32"]  # fmt: skip

BACKENDS = ("auto", "torch", "compile", "onnxruntime", "tensorrt")
# precision= as the Enhancer and the CLI take it ("auto" aside), and the dtype each runs the stages in
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is the current CUDA device when there is one, else the CPU; ``cuda`` without one
    fails, as does ``cuda:N`` past the devices visible (else: torch's bare "Invalid device id"
    at the first question to the GPU, or "invalid device ordinal" at the first tensor). A CUDA
    device comes back with its index: a bare ``cuda`` is each thread's own current device, and a
    batch job preprocesses on reader threads (current device 0 whatever the caller's). ``mps`` or
    ``xpu`` where this torch cannot use one fails too (RuntimeError), as does a device of another
    type (a plug-in's) where torch cannot put a tensor on it; a name of no device, or of a type
    kept from Caffe2 (:data:`~xvertfast.model.persistence.NO_TENSORS`), and torch's ``meta``
    device, which holds no data, are ValueErrors. hpu and npu (plug-ins' devices) are taken where
    torch can put a tensor there: untested, as mps and xpu are.
    A refusal names the device as the caller asked for it (:func:`xvertfast._text.asked`)."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = as_device(device, "device")  # (mkldnn and the other types kept from Caffe2 refused, as a typo is)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{asked('device', device)} was asked for, but this torch has no usable CUDA device (torch "
                           f"{torch.__version__}, CUDA build: {torch.version.cuda}); use {asked('device', 'cpu')}")  # fmt: skip
    if dev.type in ("mps", "xpu") and not _other_accelerator_available(dev.type):
        raise RuntimeError(f"{asked('device', device)} was asked for, but this torch has no usable {dev.type.upper()} "
                           f"device (torch {torch.__version__}); use {asked('device', 'cpu')}")  # fmt: skip
    refuse_meta(dev)
    if dev.type not in ("cpu", "cuda", "mps", "xpu") and (problem := _unusable(dev)) is not None:
        raise RuntimeError(f"{asked('device', device)} was asked for, but this torch cannot use it ({problem}); "
                           f"use {asked('device', 'cpu')}")  # fmt: skip
    if dev.type == "cuda" and dev.index is not None and dev.index >= (count := torch.cuda.device_count()):
        import os

        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        numbering = f"; CUDA_VISIBLE_DEVICES={visible} numbers them from 0" if visible is not None else ""
        raise RuntimeError(f"{asked('device', dev)} was asked for, but this machine shows {count} CUDA "
                           f"device{'s' if count != 1 else ''} (cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}{numbering}); "
                           "see `xvertfast info`")  # fmt: skip
    return torch.device("cuda", cuda_index(dev)) if dev.type == "cuda" else dev


def _unusable(dev: torch.device) -> str | None:
    """Why torch cannot put a tensor on ``dev``, a device of a type beyond cpu, cuda, mps and xpu
    (a plug-in's: hpu, or npu, which torch names only once its package registers it), or None
    where it can: an empty tensor asks torch itself (hpu without Habana's package: "No module named
    'torch.hpu'"; xla, ipu: no kernels), not a list of the types xvertfast has heard of."""
    try:
        torch.empty(0, device=dev)
    except Exception as exc:  # (ModuleNotFoundError, NotImplementedError, AssertionError, RuntimeError)
        # its first sentence: torch's "Could not run 'aten::empty.memory_format' with arguments from the 'XLA'
        # backend." goes on for 2,000 characters
        return (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0].rstrip(".")
    return None


def _other_accelerator_available(kind: str) -> bool:
    """Whether torch can use an ``mps`` or ``xpu`` device here. Without the check, a torch built
    without one failed only at the first tensor put there: enhance with a traceback
    ("AssertionError: Torch not compiled with XPU enabled"), train after preprocessing every image."""
    if kind == "mps":
        return bool(torch.backends.mps.is_available())
    xpu = getattr(torch, "xpu", None)
    return bool(xpu is not None and xpu.is_available())


def resolve_precision(precision: str, device: torch.device, *, warn: bool = True) -> torch.dtype:
    """``auto``: bf16 on GPUs that have it (compute capability 8.0 and later), fp16 on older GPUs,
    fp32 on the CPU. An explicit ``bf16`` on an older GPU is refused: it would run emulated, slower
    than fp16, or be refused by torch mid-job.

    ``bf16`` on the CPU is opt-in: with AMX (Intel Sapphire Rapids and later) a stage runs about
    twice as fast as in fp32 and a whole enhance job about 1.2x (bench/RESULTS.md, 2026-12-04);
    a stage's output differs from fp32's by ~1.3e-3 on average and 5.6e-3 at most on [0, 1]
    (about 0.3 of an 8-bit grey level on average; the default model on the bench's random tiles,
    ``bench/test_bench_stage.py``'s ``folded_bf16``, 2026-12-04). A CPU without AMX gets a warning
    (:func:`warn_cpu_bf16_without_amx`); ``warn=False`` leaves it to the caller, who may yet refuse
    the run (the Enhancer: bf16 with a backend that cannot run it on the CPU).
    """
    if isinstance(precision, str) and precision == "auto":  # (an array compared to "auto" is no bool)
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if cuda_bf16_native(device) else torch.float16
    if not isinstance(precision, str) or precision not in PRECISIONS:  # (a list is no key of it)
        raise ValueError(_unknown_precision(precision))
    dtype = PRECISIONS[precision]
    # (named as the caller gave it: --precision fp16 from the CLI, precision='fp16' from Python)
    if device.type != "cuda" and dtype == torch.float16:
        raise ValueError(f"{asked('precision', 'fp16')} needs a CUDA device; the CPU runs fp32 or bf16")
    if device.type == "cuda" and dtype == torch.bfloat16 and not cuda_bf16_native(device):
        raise ValueError(f"{asked('precision', 'bf16')} on {no_native_bf16(device)}; use fp16 or fp32 (auto is fp16 "
                         "there)")  # fmt: skip
    if device.type == "cpu" and dtype == torch.bfloat16 and cpu_bf16_support() == "no":
        raise ValueError(f"{asked('precision', 'bf16')} on this CPU: oneDNN reports no bf16 support (it needs "
                         "AVX-512 BF16 or AMX); use fp32")  # fmt: skip
    if warn:
        warn_cpu_bf16_without_amx(device, dtype)
    return dtype


def _unknown_precision(precision) -> str:
    """The refusal of a ``precision`` that names none, listing the names taken from :data:`PRECISIONS`
    (spelled by hand, the list could drift from the table); a torch dtype, as a notebook writes
    it (``precision=torch.bfloat16``), is told its name; so is a dtype's name or a name in capitals
    (``'bfloat16'``, ``'half'``, ``'FP16'``), which were told "got 'bfloat16'" alone (not taken as
    them: one spelling a setting, as the CLI's choices and a job's record have it)."""
    names = ("auto", *PRECISIONS)
    said = f"precision must be one of {', '.join(names)}, got {precision!r}"
    named = {v: k for k, v in PRECISIONS.items()}
    if isinstance(precision, torch.dtype) and (name := named.get(precision)):
        return said + f": give its name, {asked('precision', name)}"
    if isinstance(precision, str):
        key = precision.strip().lower().removeprefix("torch.")
        if name := key if key in names else named.get(_DTYPE_NAMES.get(key)):
            return said + f": give {asked('precision', name)}"
    return said


#: torch's names of the dtypes :data:`PRECISIONS` holds (``torch.half`` is ``torch.float16``), for
#: :func:`_unknown_precision` to tell a precision given as one the name it takes.
_DTYPE_NAMES = {"float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
                "bfloat16": torch.bfloat16}


def warn_cpu_bf16_without_amx(device: torch.device, dtype: torch.dtype) -> None:
    """Warns where bf16 runs on a CPU without AMX, which may be no faster than fp32: said for a run
    that goes ahead only, as a warning before a refusal is noise."""
    if device.type == "cpu" and dtype == torch.bfloat16 and cpu_bf16_support() != "amx":
        import warnings

        # (named as the caller gave it, as the refusals above: --precision bf16, precision='bf16')
        warnings.warn(f"{asked('precision', 'bf16')} on a CPU without AMX: measure it against fp32, it may be no "
                      "faster", stacklevel=outside_xvertfast())  # fmt: skip


def cuda_bf16_native(device: torch.device) -> bool:
    """Whether the GPU ``device`` runs bf16 natively (compute capability 8.0 and later). Asked of
    the device given, by its capability: is_bf16_supported() asks the current device and says True
    on sm_70/sm_75 too (bf16 emulated there, slower than fp16)."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def no_native_bf16(device: torch.device) -> str:
    """Why the GPU ``device`` runs bf16 only emulated, for a refusal to say."""
    major, minor = torch.cuda.get_device_capability(device)
    return (f"{device} ({torch.cuda.get_device_name(device)}, compute capability {major}.{minor}): no native bf16, "
            "which needs compute capability 8.0 (Ampere) or later")


def cpu_bf16_support() -> str:
    """How this CPU runs bf16 networks: ``amx`` (a stage about twice fp32's speed, a whole job 1.2x),
    ``avx512_bf16``, ``yes`` (oneDNN has bf16; the CPU flags are unreadable) or ``no``."""
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return "no"
    flags = _cpu_flags().split()
    return "amx" if "amx_bf16" in flags else ("avx512_bf16" if "avx512_bf16" in flags else "yes")


def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), or '' where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


class StageBackend:
    """Base class: ``name``, ``device``, ``dtype`` and ``run_stage``."""

    name = "base"
    #: True when every call must have the same batch size (captured CUDA graphs): the caller pads.
    fixed_batch = False
    #: The precision the stages compute in (I/O is float32 always). An exported graph or engine
    #: has one precision baked in, which may differ from the one asked for (bf16 -> fp32 ONNX,
    #: fp16 engine): the job records this one.
    dtype = torch.float32

    def __init__(self, device: torch.device):
        self.device = device

    @property
    def stages(self) -> int:  # pragma: no cover - every backend overrides it
        raise NotImplementedError

    def run_stage(self, k: int, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class TorchBackend(StageBackend):
    """Eager PyTorch; autocast to ``dtype`` when it is not fp32 (bf16/fp16 on CUDA, bf16 on the CPU).

    On the CPU each stage runs in its folded form (:class:`~xvertfast.model.folded.FoldedStage`:
    batch norm folded, no concatenations, channels_last), the same function 1.8x as fast
    (bench/test_bench_stage.py, 2026-12-04); on GPUs the stages run as trained (the folded form is not yet measured there).
    """

    name = "torch"

    def __init__(self, model: XVertNet, device: torch.device, dtype: torch.dtype = torch.float32):
        super().__init__(device)
        self.model = model.to(device).eval()
        self.dtype = dtype
        self._runners: list | None = None

    def _stage(self, k: int):
        if self._runners is None:
            if self.device.type == "cpu":
                from xvertfast.model.folded import fold_stage

                self._runners = [fold_stage(stage) for stage in self.model.stages]
            else:
                self._runners = list(self.model.stages)
        return self._runners[k]

    @property
    def stages(self) -> int:
        return len(self.model.stages)

    def _precision(self):
        """autocast to a lower precision, or fp32 as fp32 (no TF32 on a GPU)."""
        if self.dtype != torch.float32:
            return torch.autocast(self.device.type, dtype=self.dtype)
        return without_tf32(self.device)

    @torch.inference_mode()
    def run_stage(self, k: int, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._precision():
            return self._stage(k)(xp, y).float()


@contextlib.contextmanager
def without_tf32(device: torch.device):
    """fp32 on a GPU computed in fp32: cuDNN runs float32 convolutions in TF32 (a 10-bit
    mantissa, ~1e-3 relative, the order of bf16) unless told not to, and torch tells it to by
    default. Asking for fp32 means asking for its digits (comparisons with the CPU, evaluation),
    as the fp32 TensorRT engines clear TF32 too. Elsewhere nothing to do. Set by ``allow_tf32``,
    the flag every torch since 1.7 has (setting only torch >= 2.9's per-operator
    ``cudnn.conv.fp32_precision`` would make later reads of ``allow_tf32`` raise, as parts of
    torch.compile do); where the user's flags were already set apart per operator, so that
    ``allow_tf32`` cannot be read, by the conv's own.
    Restored after. The flag is the process's: two threads running stages at once (the batch job
    runs them on one) could restore each other's setting too early."""
    if device.type != "cuda":
        yield
        return
    cudnn = torch.backends.cudnn
    try:
        owner, name, exact = cudnn, "allow_tf32", False
        getattr(owner, name)
    except RuntimeError:  # conv and RNN flags set apart: the legacy getter refuses to sum them up
        owner, name, exact = cudnn.conv, "fp32_precision", "ieee"
    before = getattr(owner, name)
    setattr(owner, name, exact)
    try:
        yield
    finally:
        setattr(owner, name, before)


class CompileBackend(TorchBackend):
    """``torch.compile`` per stage, channels_last; CUDA graphs ("reduce-overhead") on the GPU.

    The stages are compiled for one shape (``dynamic=False``) and every call is padded to the
    full batch size by the pipeline (``fixed_batch``), on the CPU too: each new batch size would
    compile them again (half a minute a stage for the default model), and a batch job's batches
    vary with the images read by then.
    """

    name = "compile"
    fixed_batch = True

    def __init__(self, model: XVertNet, device: torch.device, dtype: torch.dtype = torch.float32):
        super().__init__(model, device, dtype)
        mode = "reduce-overhead" if device.type == "cuda" else None
        self.model = self.model.to(memory_format=torch.channels_last)
        self._compiled = [torch.compile(stage, mode=mode, dynamic=False) for stage in self.model.stages]

    @torch.inference_mode()
    def run_stage(self, k: int, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xp = xp.contiguous(memory_format=torch.channels_last)
        y = y.contiguous(memory_format=torch.channels_last)
        with self._precision():
            out = self._compiled[k](xp, y)
        return out.float().contiguous().clone()


def _device_broken(exc: BaseException) -> bool:
    """Whether ``exc`` is a CUDA error that leaves the process's CUDA context unusable (an illegal
    address, a launch failure), not one of TensorRT's or an out-of-memory that another backend
    may avoid: such an error is passed on, not fallen back from."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return False
    accelerator = getattr(torch, "AcceleratorError", None)  # (torch >= 2.8)
    return (accelerator is not None and isinstance(exc, accelerator)) or "CUDA error" in str(exc)


def _chosen(name: str, device: torch.device) -> str:
    """The backend ``name`` stands for: ``auto`` is TensorRT where it is installed and a GPU is used,
    else eager torch (the CPU gains nothing measurable from compile at these sizes)."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name != "auto":
        return name
    from xvertfast.infer import tensorrt_backend

    return "tensorrt" if device.type == "cuda" and tensorrt_backend.available() else "torch"


def _refuse_cpu_bf16(name: str, device: torch.device, dtype: torch.dtype) -> None:
    if device.type == "cpu" and dtype == torch.bfloat16 and name not in ("torch", "compile"):
        raise ValueError(f"{asked('precision', 'bf16')} on the CPU runs with the torch and compile backends, not "
                         f"{asked('backend', name)}")  # fmt: skip


def _runs(name: str, dtype: torch.dtype) -> torch.dtype:
    """The precision backend ``name`` runs when ``dtype`` is asked: the exported graphs hold fp32 or
    fp16, so onnxruntime runs bf16 as fp32 (its CPU provider has no fast bf16) and TensorRT as fp16
    (the nearest it builds from an ONNX graph)."""
    if name in ("torch", "compile"):
        return dtype
    if name == "onnxruntime":
        return torch.float16 if dtype == torch.float16 else torch.float32
    return torch.float32 if dtype == torch.float32 else torch.float16


def plan_backend(name: str, device: torch.device, dtype: torch.dtype) -> tuple[str, torch.dtype]:
    """The backend :func:`make_backend` builds for ``name`` and the precision it runs in, without
    building it (a dry run exports nothing); what would refuse it cheaply is refused here (an unknown
    name, a package missing, TensorRT off a GPU), what only a build finds at the build (``auto``'s
    TensorRT that cannot build falls back to torch then)."""
    name = _chosen(name, device)
    _refuse_cpu_bf16(name, device, dtype)
    if name == "onnxruntime":
        from xvertfast.infer.export import require

        require("onnxruntime", "the onnxruntime backend")
    elif name == "tensorrt":
        from xvertfast.infer import tensorrt_backend

        tensorrt_backend.import_tensorrt()
        tensorrt_backend._cuda(device)
    return name, _runs(name, dtype)


def make_backend(name: str, model: XVertNet, device: torch.device, dtype: torch.dtype, tile: int,
                 max_batch: int, cache_dir: str | None = None) -> StageBackend:  # fmt: skip
    """The backend called ``name`` (:func:`plan_backend` says which, and its precision). Where
    ``auto``'s TensorRT cannot build or load its engines, it warns and runs torch, in ``dtype`` (which the
    warning names: the Enhancer gives the precision planned, TensorRT's float16 where bfloat16 was asked)."""
    chosen = _chosen(name, device)
    if name == "auto" and chosen == "tensorrt":
        try:
            return make_backend("tensorrt", model, device, dtype, tile, max_batch, cache_dir)
        except (RuntimeError, ValueError, OSError) as exc:  # (the path has not yet met a real TensorRT)
            if _device_broken(exc):  # torch would run on the same broken CUDA context
                raise
            import warnings

            # the precision said: bf16 asked runs as TensorRT's fp16 (the Enhancer gives make_backend the planned one)
            runs = str(dtype).replace("torch.", "")
            planned = " (the precision planned for TensorRT)" if _runs("tensorrt", dtype) == dtype else ""
            # (demo and evaluate have no --backend: the default is said as such, not as an option typed)
            setting = asked("backend", "auto") if offers("backend") else "backend auto (the default)"
            warnings.warn(f"{setting}: TensorRT could not run this model ({exc}); the torch backend runs it "
                          f"instead, in {runs}{planned}", RuntimeWarning, stacklevel=outside_xvertfast())  # fmt: skip
            chosen = "torch"
    name = chosen
    _refuse_cpu_bf16(name, device, dtype)
    if name == "torch":
        return TorchBackend(model, device, dtype)
    if name == "compile":
        return CompileBackend(model, device, dtype)
    fp16 = _runs(name, dtype) == torch.float16
    if name == "onnxruntime":
        from xvertfast.infer.export import require
        from xvertfast.infer.onnx_backend import OnnxRuntimeBackend

        # said before the export it would run (a minute for the default model on a CPU), not after
        require("onnxruntime", "the onnxruntime backend")
        return OnnxRuntimeBackend.from_model(model, device, tile=tile, fp16=fp16, cache_dir=cache_dir)
    from xvertfast.infer.tensorrt_backend import TensorRTBackend

    return TensorRTBackend.from_model(model, device, tile=tile, fp16=fp16, max_batch=max_batch, cache_dir=cache_dir)
