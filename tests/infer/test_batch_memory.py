"""An enhance job holds a bounded number of images in memory, however slow its writes are."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

import xvertfast.infer.batch as batch
from xvertfast.infer import Enhancer
from xvertfast.model import save_model
from tests.infer.test_enhance import TILE, chest_like, tiny_model


@pytest.fixture
def model_dir(tmp_path, seed):
    return save_model(tiny_model(seed), tmp_path / "model", extra={"training": {"config": {"roi_size": TILE}}})


def outputs(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def test_slow_writes_do_not_pile_up_in_memory(tmp_path, model_dir, seed, monkeypatch):
    """Writing slower than reading + the network (slow storage, a GPU job): images waiting for a writer
    hold their pixels, tiles and outputs, so at most as many wait as reads may (2 * workers + batch_size),
    not the whole job."""
    src = tmp_path / "in"
    src.mkdir()
    n = 24
    for i in range(n):
        Image.fromarray(np.round(chest_like(seed + i, 160, 150) * 255).astype(np.uint8)).save(src / f"{i:02d}.png")
    workers, batch_size = 1, 2
    Enhancer(str(model_dir), device="cpu", batch_size=batch_size).enhance_files(
        [str(src)], str(tmp_path / "fast"), workers=workers, progress=False)  # fmt: skip

    lock, state = threading.Lock(), {"submitted": 0, "written": 0, "most": 0}
    record = batch.FileRecord

    def counting_record(*args, **kwargs):  # a "running" record is made for each write handed over
        rec = record(*args, **kwargs)
        if rec.status == "running":
            with lock:
                state["submitted"] += 1
                state["most"] = max(state["most"], state["submitted"] - state["written"])
        return rec

    write = batch.write_image

    def slow_write(*args, **kwargs):
        time.sleep(0.15)
        try:
            return write(*args, **kwargs)
        finally:
            with lock:
                state["written"] += 1

    monkeypatch.setattr(batch, "FileRecord", counting_record)
    monkeypatch.setattr(batch, "write_image", slow_write)
    summary = Enhancer(str(model_dir), device="cpu", batch_size=batch_size).enhance_files(
        [str(src)], str(tmp_path / "slow"), workers=workers, progress=False)  # fmt: skip
    assert summary.done == n and state["submitted"] == n
    limit = 2 * workers + batch_size
    assert state["most"] <= limit, state
    assert outputs(tmp_path / "slow") == outputs(tmp_path / "fast")
