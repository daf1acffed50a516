"""Reproducibility: an image's output must not depend on how the job was run (threads, batching)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xvertfast.infer import Enhancer
from xvertfast.preprocess import preprocess
from tests.infer.test_enhance import TILE, chest_like, tiny_model


def _with_threads(n: int, fn):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("shape", [(512, 512), (440, 440), (601, 640)])
def test_preprocess_does_not_depend_on_thread_count(seed, shape):
    # mean(X) was torch's float32 mean of the whole image, whose sum is split among the
    # threads: its last bit, and through E every pixel of Xp and Y, changed with the count
    rng = np.random.default_rng(seed)
    images = [rng.random(shape, dtype=np.float32) for _ in range(3)] + [chest_like(seed, *shape)]
    for image in images:
        image[0, 0], image[-1, -1] = 0.0, 1.0  # spans [0, 1]: read_image's scale, passed unchanged
        one = _with_threads(1, lambda: preprocess(image))
        for n in (2, 3):
            other = _with_threads(n, lambda: preprocess(image))
            for name in ("e", "xp", "y"):
                assert np.array_equal(getattr(one, name), getattr(other, name)), (name, n)


def test_image_mean_is_float64_accurate(seed):
    # the float64 mean rounded once to float32 (torch's float32 mean was an ulp off for these; read
    # back through e = mean(x) - x + g, as this test did, its float32 error hid that ulp)
    from xvertfast.preprocess.inputs import _image_means

    images = np.random.default_rng(seed).random((4, 300, 700), dtype=np.float32)
    got = _image_means(torch.from_numpy(images))
    assert got.shape == (4, 1, 1) and got.dtype == torch.float32
    assert np.array_equal(got.numpy().ravel(), images.astype(np.float64).mean(axis=(1, 2)).astype(np.float32))


def test_prepare_does_not_depend_on_thread_count(seed):
    enh = Enhancer(tiny_model(seed), device="cpu", mode="full")
    image = chest_like(seed, 384, 360)
    one = _with_threads(1, lambda: enh.prepare(image))
    two = _with_threads(2, lambda: enh.prepare(image))
    assert torch.equal(one.xp, two.xp) and torch.equal(one.y, two.y)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_tiles_output_does_not_depend_on_the_batch_it_falls_into(seed, threads):
    # oneDNN runs a batch of one with other kernels: at --batch-size 3, ten tiles were run as
    # 3 + 3 + 3 + 1 and the last one came out other than at --batch-size 2, 5 or 8 (last bits);
    # in a batch job the calls follow the order the reads finish in, so two runs could differ
    model = tiny_model(seed)
    images = [chest_like(seed + k, 256 + 16 * k, 240) for k in range(5)]
    outputs = []
    for batch_size in (2, 3, 5, 8):
        enh = Enhancer(model, device="cpu", backend="torch", mode="spine", batch_size=batch_size)
        enh.tile = TILE
        preps = [enh.prepare(image) for image in images]
        xp, y = torch.cat([p.xp for p in preps]), torch.cat([p.y for p in preps])
        outputs.append(_with_threads(threads, lambda: enh.run_tiles(xp, y)))
        one = _with_threads(threads, lambda: enh.run_tiles(xp[:1], y[:1]))  # a tile alone: the same too
        assert torch.equal(one, outputs[-1][:1]), batch_size
    for other in outputs[1:]:
        assert torch.equal(other, outputs[0])


def test_a_lone_last_tile_takes_one_of_the_batch_before_it_not_a_copy(seed):
    # full mode cuts a square image into 9 tiles: at batch 8 they ran as 8 + (1 and a copy of it),
    # 10 tiles' work for 9; as 7 + 2 the outputs are the same (a tile's does not depend on its batch)
    model = tiny_model(seed)
    images = [chest_like(seed + k, 256 + 16 * k, 240) for k in range(5)]
    outputs = []
    for batch_size in (8, 3):
        enh = Enhancer(model, device="cpu", backend="torch", mode="spine", batch_size=batch_size)
        enh.tile = TILE
        preps = [enh.prepare(image) for image in images]
        xp, y = torch.cat([p.xp for p in preps])[:9], torch.cat([p.y for p in preps])[:9]
        sizes, run_stage = [], enh.backend.run_stage
        enh.backend.run_stage = lambda s, out, g: sizes.append(out.shape[0]) or run_stage(s, out, g)
        outputs.append(enh.run_tiles(xp, y))
        assert sizes == ([7, 7, 2, 2] if batch_size == 8 else [3, 3] * 3), (batch_size, sizes)  # per stage
    assert torch.equal(outputs[0], outputs[1])
