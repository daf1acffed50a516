"""onnxruntime backend: the stage ONNX exports run on the CPU (or CUDA) execution provider.

The portable accelerated path: no compiler and no NVIDIA stack needed, the same graphs that
TensorRT builds from. Tensors cross as numpy arrays (a host copy each way on CUDA: simple and
always correct; TensorRT is the zero-copy GPU path). onnxruntime is optional: importing this
module never needs it.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from xvertfast._stacklevel import outside_xvertfast
from xvertfast.infer.backends import StageBackend, resolve_device
from xvertfast.infer.cache import cache_in_use
from xvertfast.infer.export import DEFAULT_TILE, cached_onnx_export, check_stage_set, require, stage_paths
from xvertfast.model import XVertNet

__all__ = ["OnnxRuntimeBackend"]


class OnnxRuntimeBackend(StageBackend):
    """One onnxruntime session per stage file; outputs come back float32 on ``device``."""

    name = "onnxruntime"

    def __init__(self, onnx_paths: str | os.PathLike | list[str | os.PathLike], device: torch.device):
        ort = require("onnxruntime", "the onnxruntime backend")
        # a bare "cuda" is the current GPU, fixed now: the sessions' device_id, and each thread's current
        # device (0 on a batch job's threads) for the outputs otherwise
        super().__init__(resolve_device(device))
        onnx_paths = stage_paths(onnx_paths, ".onnx", "OnnxRuntimeBackend", "onnx")  # a list, one file or a folder
        options = ort.SessionOptions()
        providers = ["CPUExecutionProvider"]
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device.index}))
            else:
                warnings.warn("this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu); "
                              "the stages run on the CPU", RuntimeWarning, stacklevel=outside_xvertfast())  # fmt: skip
        if providers == ["CPUExecutionProvider"]:
            # Share torch's thread budget rather than take every core.
            options.intra_op_num_threads = torch.get_num_threads()
        self._sessions = []
        tiles, metadata = {}, []
        paths = [os.fspath(p) for p in onnx_paths]
        for path in paths:
            if not os.path.isfile(path):  # (onnxruntime's NO_SUCHFILE, said as a file that cannot be loaded)
                raise FileNotFoundError(f"{path}: no such ONNX file")
            try:
                session = ort.InferenceSession(path, options, providers=providers)
            except Exception as exc:
                if not type(exc).__module__.startswith("onnxruntime"):
                    raise
                # onnxruntime's NoSuchFile, InvalidProtobuf, ... derive from Exception alone
                raise ValueError(f"{path}: onnxruntime cannot load it ({exc}); export the model again") from exc
            inputs = {i.name: i.shape for i in session.get_inputs()}
            outputs = [o.name for o in session.get_outputs()]
            if sorted(inputs) != ["xp", "y"] or outputs != ["out"]:
                raise ValueError(f"{path}: expected inputs xp, y and output out, found {sorted(inputs)} -> {outputs}")
            tiles[path] = tuple(inputs["xp"][2:])
            metadata.append(session.get_modelmeta().custom_metadata_map)
            self._sessions.append(session)
        if len(set(tiles.values())) != 1 or not all(isinstance(s, int) for s in tiles[paths[0]]):
            found = ", ".join(f"{path}: {' x '.join(map(str, tile))}" for path, tile in tiles.items())
            raise ValueError(f"the stage graphs must share one fixed tile size; found {found}")
        self.tile = tiles[paths[0]][0]
        self.dtype = _check_stage_set(paths, metadata)

    @classmethod
    def from_model(cls, model: XVertNet, device: torch.device, tile: int = DEFAULT_TILE, fp16: bool = False,
                   cache_dir: str | None = None) -> OnnxRuntimeBackend:  # fmt: skip
        """Exports the stages once into the cache (keyed by the weights hash) and opens them."""
        with cache_in_use(cache_dir):  # until the sessions have read the files
            return cls(cached_onnx_export(model, cache_dir, tile=tile, fp16=fp16), device)

    @property
    def stages(self) -> int:
        return len(self._sessions)

    def run_stage(self, k: int, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if xp.dim() != 4 or xp.shape[1:] != (1, self.tile, self.tile) or y.shape != xp.shape:
            raise ValueError(f"onnxruntime stage {k + 1}: xp and y must be [B, 1, {self.tile}, {self.tile}], got "
                             f"{tuple(xp.shape)} and {tuple(y.shape)}")  # fmt: skip
        feeds = {name: np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy()) for name, t in
                 (("xp", xp), ("y", y))}  # fmt: skip
        try:
            (out,) = self._sessions[k].run(["out"], feeds)
        except Exception as exc:
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            # onnxruntime's own errors (out of memory, a CUDA failure) derive from Exception alone: as a
            # RuntimeError, as torch's, an enhance job fails the image(s) at fault (io.errors.FILE_ERRORS)
            raise RuntimeError(f"onnxruntime stage {k + 1}: {exc}") from exc
        return torch.from_numpy(out).to(self.device)


def _check_stage_set(paths: list[str], metadata: list[dict[str, str]]) -> torch.dtype:
    """The precision of a set of stage graphs, after :func:`~xvertfast.infer.export.check_stage_set`;
    graphs without xvertfast's metadata (made elsewhere) are taken as fp32 and not checked."""
    if not any("xvertfast.model_sha256" in m for m in metadata):
        return torch.float32
    check_stage_set(paths, metadata)
    return torch.float16 if metadata[0].get("xvertfast.precision") == "fp16" else torch.float32
