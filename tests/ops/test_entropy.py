"""Feature entropy and max-entropy selection: the compiled ops against the reference and known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.conftest import DEVICES
from xvertfast._extension import has_extension
from xvertfast.ops import feature_entropy, select_max_entropy
from xvertfast.ops.reference import feature_entropy_reference, select_max_entropy_reference

needs_ext = pytest.mark.skipif(not has_extension(), reason="compiled extension not built")

SHAPES = [(1, 1, 1, 1), (2, 5, 17, 13), (3, 128, 8, 8), (1, 1, 257, 263), (1, 3, 64, 1)]


def features(shape, dtype, device):
    """Maps with the variety a network produces: Gaussian, ReLU-clipped (many zeros), constant."""
    x = torch.randn(shape, dtype=dtype, device=device) * torch.rand(shape[:2] + (1, 1), dtype=dtype, device=device)
    if shape[1] > 1:
        x[:, 1::3] = x[:, 1::3].clamp_min(0)
    if shape[1] > 2:
        x[:, 2] = 0.25
    return x


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bins", [1, 7, 256, 4097, 10000])
def test_entropy_matches_reference(seed, device, dtype, shape, bins):
    x = features(shape, dtype, device)
    got = feature_entropy(x, bins=bins)
    want = feature_entropy_reference(x, bins).to(dtype)
    assert got.shape == shape[:2] and got.dtype == dtype and got.device == x.device
    torch.testing.assert_close(got, want, rtol=1e-6 if dtype == torch.float32 else 1e-12, atol=1e-12,
                               msg=f"seed {seed}")


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_select_matches_reference(seed, device, dtype, shape, normalize):
    x = features(shape, dtype, device)
    index, target = select_max_entropy(x, normalize=normalize)
    want_index, want_map = select_max_entropy_reference(x, 256, normalize)
    assert torch.equal(index, want_index), f"seed {seed}"
    assert target.shape == (shape[0], 1) + shape[2:] and target.dtype == dtype
    torch.testing.assert_close(target, want_map, rtol=1e-6, atol=1e-7, msg=f"seed {seed}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_select_with_nan_and_inf_matches_reference(seed, device, dtype):
    # NaN stays out of the range of the binning and of the scaling, and stays NaN in the map
    # (the reference scaled by amin/amax, which are NaN: an all-zero map where the op kept one)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 9, 11, generator=gen, dtype=dtype)
    x[0, :, 2, 3] = float("nan")  # one NaN pixel in every map of a sample
    x[1] = 0.5  # constant maps with a NaN
    x[1, :, 0, 0] = float("nan")
    x[2, 1] = float("nan")  # an all-NaN map
    x[3, 0, 4, 4] = float("inf")
    x = x.to(device)
    index, target = select_max_entropy(x)
    want_index, want_map = select_max_entropy_reference(x)
    assert torch.equal(index, want_index), f"seed {seed}"
    assert torch.equal(target.isnan(), want_map.isnan()) and target[0].isnan().sum() == 1
    torch.testing.assert_close(target.nan_to_num(), want_map.nan_to_num(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_entropy_of_maps_with_nan_or_inf_is_what_the_docs_say(seed, device, dtype):
    """Pins what docs/guide/ops.md and feature_entropy's docstring say, in the op and the reference
    alike: a NaN pixel is left out of its map's range and counted in the lowest bin, as the map's
    minimum is (not left out: the entropy of the map without them differs); a map of NaN only and a
    map with one infinite pixel (its range infinite: every pixel in one bin) have entropy 0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 5, 16, 16, generator=gen, dtype=dtype)
    # map 0: 8 levels, 24 pixels each in rows 4.. (shuffled), so its entropy without rows :4 is
    # ln 8 and, with rows :4 counted in the lowest bin, that of counts (88, 24 x 7): a fixed gap
    # of 0.159 nats whatever the seed (a random map could bring the two within any margin)
    levels = torch.arange(192, dtype=dtype) % 8 / 8
    x[0, 0, 4:] = levels[torch.randperm(192, generator=gen)].reshape(12, 16)
    as_minimum = x.clone()
    x[0, 0, :4] = float("nan")  # a quarter of its pixels
    as_minimum[0, 0, :4] = 0.0  # the map's minimum
    counted = torch.tensor([88.0] + [24.0] * 7, dtype=torch.float64) / 256
    counted_nats = float(-(counted * counted.log()).sum())
    x[0, 1] = float("nan")
    x[0, 2, 3, 4] = float("inf")
    x[0, 3, 5, 6] = -float("inf")
    x = x.to(device)
    for entropy in (feature_entropy(x), feature_entropy_reference(x, 256).to(dtype)):
        want = feature_entropy(as_minimum.to(device))[0, 0]
        torch.testing.assert_close(entropy[0, 0], want, rtol=1e-6, atol=0)
        without = feature_entropy(x[0:1, 0:1, 4:].clone())[0, 0]
        assert float(without) == pytest.approx(math.log(8), rel=1e-6)
        # the NaN pixels are counted, not skipped
        assert float(entropy[0, 0]) == pytest.approx(counted_nats, rel=1e-6)
        assert entropy[0, 1:4].tolist() == [0.0, 0.0, 0.0]
        # a finite map beside them keeps its entropy
        assert entropy[0, 4] > 4.0
        torch.testing.assert_close(entropy[0, 4], feature_entropy(x[:, 4:5].clone())[0, 0], rtol=1e-6, atol=0)
    index, target = select_max_entropy(x)
    assert index.tolist() == [4] and not target.isnan().any()
    # the map selected keeps its NaN pixels (a map of NaN only has no range: normalized, it is 0,
    # as a constant map is); normalized, a +inf pixel becomes NaN and the rest 0, while a -inf
    # pixel makes every pixel NaN (x - min is +inf over an infinite range, or -inf - -inf)
    for select in (select_max_entropy, select_max_entropy_reference):
        assert select(x[:, 0:1])[1].isnan().sum() == 64
        assert select(x[:, 1:2], 256, False)[1].isnan().all() and not select(x[:, 1:2])[1].any()
        _, inf_map = select(x[:, 2:3])
        assert inf_map.isnan().sum() == 1 and inf_map.nan_to_num().abs().max() == 0
        _, minus_inf_map = select(x[:, 3:4])
        assert minus_inf_map.isnan().all()


@needs_ext
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_split_and_per_map_paths_agree(seed, threads):
    # Fewer maps than threads splits each map across threads; more maps gives each thread whole maps.
    x = features((1, 2, 301, 299), torch.float32, "cpu")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = feature_entropy(x)
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(got, feature_entropy_reference(x).float(), rtol=1e-6, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_known_values(device):
    # K equally populated levels that fall in K distinct bins: entropy log K.
    levels = torch.arange(16, dtype=torch.float64, device=device).repeat(20)
    x = levels[torch.randperm(levels.numel(), device=device)].reshape(1, 1, 16, 20)
    torch.testing.assert_close(feature_entropy(x, bins=16), torch.full((1, 1), math.log(16), dtype=torch.float64, device=device))
    torch.testing.assert_close(feature_entropy(x, bins=16, base=2), torch.full((1, 1), 4.0, dtype=torch.float64, device=device))
    # A constant map (and a single pixel) carries no information.
    assert feature_entropy(torch.full((2, 3, 5, 5), 7.0, device=device)).abs().max() == 0
    assert feature_entropy(torch.rand(2, 3, 1, 1, device=device)).abs().max() == 0
    # Two values, half each: log 2 whatever the bin count.
    two = torch.tensor([0.0, 1.0], device=device).repeat(8).reshape(1, 1, 4, 4)
    torch.testing.assert_close(feature_entropy(two, bins=1000).item(), math.log(2))


def test_matches_numpy_histogram_on_8bit_data(seed):
    # Integer grey levels 0..255 (both ends present) land one level per bin, as in numpy/scipy.
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(3, 1, 40, 50))
    img[:, :, 0, 0], img[:, :, 0, 1] = 0, 255
    counts = [np.bincount(m.ravel(), minlength=256) for m in img[:, 0]]
    want = [-(c[c > 0] / c.sum() * np.log2(c[c > 0] / c.sum())).sum() for c in counts]
    got = feature_entropy(torch.from_numpy(img).float(), bins=256, base=2)
    np.testing.assert_allclose(got[:, 0].numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_select_first_on_ties_and_detached(seed, device):
    # values on a 2^-16 grid and a power-of-two scale: 2 x + 1, its minimum, range and bin scale
    # are exact in float32, so channel 3 bins pixel for pixel as channel 1 does (with 3 x + 1 and
    # values of rand, rounding moved a pixel across a bin edge: 5 seeds in 28515 chose channel 3)
    x = torch.randint(0, 2**16, (2, 4, 9, 9), device=device).float() / 2**16
    x[:, 3] = x[:, 1] * 2.0 + 1.0  # same histogram as channel 1
    x[:, 0] = 0.0
    x[:, 2] = (x[:, 2] > 0.5).float()  # two levels: low entropy
    x.requires_grad_()
    index, target = select_max_entropy(x)
    assert index.tolist() == [1, 1]
    assert not target.requires_grad and target.grad_fn is None
    assert 0.0 <= target.min().item() and target.max().item() <= 1.0
    lo, hi = x[:, 1].amin(dim=(1, 2)), x[:, 1].amax(dim=(1, 2))
    want = ((x[:, 1] - lo[:, None, None]) / (hi - lo)[:, None, None]).unsqueeze(1).detach()
    torch.testing.assert_close(target, want)
    raw = select_max_entropy(x, normalize=False).map
    torch.testing.assert_close(raw, x[:, 1:2].detach())


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(seed, device, dtype):
    x = features((2, 6, 9, 11), dtype, device)
    torch.library.opcheck(torch.ops.xvertfast.feature_entropy.default, (x, 64))
    torch.library.opcheck(torch.ops.xvertfast.select_max_entropy.default, (x, 64, True))


@needs_ext
def test_torch_compile_fullgraph(seed):
    x = features((2, 8, 16, 16), torch.float32, "cpu")

    def fn(t):
        target = select_max_entropy(t * 2.0).map
        return feature_entropy(t), target

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(x), fn(x)):
        torch.testing.assert_close(got, want)


def test_half_inputs_are_binned_in_float32(seed):
    x = features((2, 4, 12, 12), torch.float32, "cpu").half()
    got = feature_entropy(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, feature_entropy_reference(x.float()).float())


@pytest.mark.parametrize(
    "x, bins, error, match",
    [
        # (told the shape taken alone; then x[None] alone, where a batch of one-channel maps needs x[:, None])
        (torch.rand(2, 8, 8), 256, ValueError, r"\[B, C, H, W\], got shape \(2, 8, 8\) \(one sample's maps \[C, H, W\]: "
                                               r"give x\[None\]; a batch of one-channel maps \[B, H, W\]: "
                                               r"x\[:, None\]\)$"),  # fmt: skip
        (torch.rand(8, 8), 256, ValueError, r"\[B, C, H, W\], got shape \(8, 8\) \(one map \[H, W\]: give "
                                            r"x\[None, None\]\)$"),
        (torch.rand(1, 2, 8, 8), 0, ValueError, "bins"),
        (torch.rand(1, 2, 8, 8), 70000, ValueError, "bins"),
        (torch.ones(1, 2, 8, 8, dtype=torch.int64), 256, TypeError, r"floating-point tensor, got torch\.int64: give "
                                                                     r"x\.float\(\)$"),  # (the dtype alone)
        (torch.rand(1, 2, 8, 8), True, ValueError, "bins"),  # was taken as 1 bin
        # torch's "only integer tensors of a single element can be converted to an index"
        (torch.rand(1, 2, 8, 8), torch.tensor(16.0), ValueError, "bins"),
        (torch.rand(1, 2, 8, 8), torch.tensor([16, 32]), ValueError, "bins"),
    ],
)
def test_bad_inputs_raise_clear_errors(x, bins, error, match):
    with pytest.raises(error, match=match):
        feature_entropy(x, bins=bins)
    with pytest.raises(error, match=match):
        select_max_entropy(x, bins=bins)


def test_numpy_integer_bins_empty_maps_and_the_base():
    x = torch.rand(2, 3, 8, 8)
    for bins in (np.int64(16), torch.tensor(16), np.array(16)):  # (the one rule for counts: xvertfast._checks)
        torch.testing.assert_close(feature_entropy(x, bins=bins), feature_entropy(x, bins=16))
        assert select_max_entropy(x, bins=bins).index.tolist() == select_max_entropy(x, bins=16).index.tolist()
    for op in (feature_entropy, select_max_entropy):
        with pytest.raises(ValueError, match=rf"^{op.__name__}: bins must be a whole number from 1 to 65536, got 0$"):
            op(x, bins=0)
        with pytest.raises(ValueError, match=rf"^{op.__name__}: bins must be .*holds no value \(meta\)$"):
            op(x, bins=torch.tensor(16, device="meta"))  # (was torch's "Tensor.item() cannot be called on meta")
        with pytest.raises(ValueError, match=rf"^{op.__name__}: bins must be .*this tensor has shape \(1,\)$"):
            op(x, bins=torch.tensor([16]))  # (was taken, where np.array([16]) was refused)
    index, target = select_max_entropy_reference(torch.randn(2, 3, 0, 8), 256, True)  # amin refused empty maps
    assert index.shape == (2,) and target.shape == (2, 1, 0, 8)
    # base=inf divided every entropy by log(inf): all zeros, without a word
    for bad in (1, float("inf"), float("nan"), 0, -2):
        with pytest.raises(ValueError, match="base must be a finite positive number other than 1"):
            feature_entropy(x, base=bad)
    torch.testing.assert_close(feature_entropy(x, base=np.float32(2)), feature_entropy(x, base=2))


def test_numpy_maps_give_numpy_as_wls_does():
    """NumPy maps were refused ("x must be a torch.Tensor, got ndarray") where xvertfast.wls took
    NumPy: the same rule now, NumPy in and NumPy out."""
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    x[1, 2] = 0.5  # a constant map
    got = feature_entropy(x.numpy(), bins=16)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, feature_entropy(x, bins=16).numpy(), rtol=1e-12)
    index, target = select_max_entropy(x.numpy().astype(np.float32))
    want = select_max_entropy(x.float())
    assert isinstance(index, np.ndarray) and isinstance(target, np.ndarray) and target.dtype == np.float32
    np.testing.assert_array_equal(index, want.index.numpy())
    np.testing.assert_array_equal(target, want.map.numpy())
    with pytest.raises(TypeError, match=r"^feature_entropy: x must be a floating-point array, got a NumPy array of "
                                        r"int16: give x\.astype\(np\.float32\)$"):  # fmt: skip
        feature_entropy(np.zeros((1, 2, 8, 8), np.int16))
    with pytest.raises(TypeError, match=r"^select_max_entropy: x must be a NumPy array or a torch tensor, got list$"):
        select_max_entropy([[[[0.5]]]])


def bin_dependent_maps(dtype, device):
    """Three 63 x 64 maps whose highest entropy depends on the bin count: 7 equally frequent levels
    (log 7 at any K >= 7: the highest at K = 7), 64 unequally spaced levels (the highest at K = 256),
    a narrow continuum with one far value (nearly one bin at K = 7; the highest at K = 4097)."""
    h, w = 63, 64
    n = h * w

    def shuffled(v):
        return v[torch.randperm(n)].reshape(h, w)

    continuum = torch.linspace(0, 0.06, n, dtype=torch.float64)
    continuum[-1] = 1.0
    maps = [shuffled(continuum), shuffled((torch.arange(n) % 64 / 63.0) ** 2), shuffled(torch.arange(n) % 7 / 6.0)]
    return torch.stack([torch.stack(maps), torch.stack(maps[::-1])]).to(dtype=dtype, device=device)


@needs_ext
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("bins", [7, 4097])
def test_select_matches_reference_at_other_bin_counts(seed, device, dtype, normalize, bins):
    """select_max_entropy bins with the K it is given, not the default 256."""
    x = bin_dependent_maps(dtype, device)
    index, target = select_max_entropy(x, bins=bins, normalize=normalize)
    want_index, want_map = select_max_entropy_reference(x, bins, normalize)
    default_index, _ = select_max_entropy_reference(x, 256, normalize)
    expected = {7: [2, 0], 4097: [0, 2]}[bins]  # the 7 levels; the continuum
    assert want_index.tolist() == expected and default_index.tolist() == [1, 1]  # the 64 levels
    assert torch.equal(index.cpu(), want_index.cpu())
    torch.testing.assert_close(target, want_map, rtol=1e-6, atol=1e-7)
    x = features((3, 9, 20, 24), dtype, device)  # and the usual maps
    index, target = select_max_entropy(x, bins=bins, normalize=normalize)
    want_index, want_map = select_max_entropy_reference(x, bins, normalize)
    assert torch.equal(index, want_index), f"seed {seed}"
    torch.testing.assert_close(target, want_map, rtol=1e-6, atol=1e-7, msg=f"seed {seed}")


@needs_ext
def test_meta_tensors_give_the_shapes():
    # feature_entropy of meta maps failed in the reference's bincount ("no fake impl or Meta
    # kernel registered ... PT2 compilation"), while select_max_entropy and gradient_correlation
    # gave meta results: the ops' fake kernels give the shapes
    x = torch.empty(2, 3, 5, 5, device="meta")
    for base in (math.e, 2):
        ent = feature_entropy(x, base=base)
        assert ent.device.type == "meta" and ent.shape == (2, 3) and ent.dtype == torch.float32
    index, target = select_max_entropy(x)
    assert index.shape == (2,) and target.shape == (2, 1, 5, 5) and target.device.type == "meta"


def test_normalize_must_be_a_bool():
    # None ran as False without a word, and a string got the op's schema error ("Expected a value
    # of type 'bool' for argument 'normalize'")
    x = torch.rand(2, 3, 5, 5)
    for bad in (None, "no", 1):
        with pytest.raises(TypeError, match="select_max_entropy: normalize must be True or False"):
            select_max_entropy(x, normalize=bad)
    raw = select_max_entropy(x, normalize=np.bool_(False)).map
    torch.testing.assert_close(raw, select_max_entropy(x, normalize=False).map)
