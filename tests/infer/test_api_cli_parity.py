"""docs/guide/enhancing.md: "the Python API gives what the CLI writes". Enhancer.enhance of one
image, written with write_image, against what `xvertfast enhance` writes for it among other
images: the same bits, as float32 (TIFF) and in the CLI's default format (an 8-bit PNG for an
8-bit input)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from tests.conftest import CXR_DEV, needs_cxr_dev
from xvertfast.cli import main
from xvertfast.infer import Enhancer
from xvertfast.io import read_image, write_image
from xvertfast.model import XVertNet, XVertNetStage, save_model

IMAGES = ("nih_00003272_000.png", "nih_00000574_000.png", "nih_00011585_000.png")


@needs_cxr_dev
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_api_gives_what_the_cli_writes(tmp_path, monkeypatch, seed, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("onnxscript")
    monkeypatch.setenv("XVF_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(seed)
    model = save_model(XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval(), tmp_path / "model",
                       extra={"training": {"config": {"roi_size": 128}}})  # fmt: skip
    paths = [os.path.join(CXR_DEV, name) for name in IMAGES]
    common = ["--model", str(model), "--device", "cpu", "--backend", backend, "--quiet"]
    assert main(["enhance", *paths, "-o", str(tmp_path / "tiff"), "--format", "tiff", *common]) == 0
    assert main(["enhance", paths[1], "-o", str(tmp_path / "same"), *common]) == 0  # the image alone
    enhancer = Enhancer(str(model), device="cpu", backend=backend)
    outputs = {}
    for path in paths:
        outputs[path] = rad, api = read_image(path), enhancer.enhance(read_image(path)).pixels
        stem = os.path.splitext(os.path.basename(path))[0]
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "tiff" / f"{stem}.tiff"), api, err_msg=path)
    rad, api = outputs[paths[1]]
    write_image(tmp_path / "api.png", api, like=rad)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "same" / IMAGES[1])),
                                  np.asarray(Image.open(tmp_path / "api.png")))  # fmt: skip
