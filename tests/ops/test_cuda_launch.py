"""The CUDA glue's argument checks and the kernels' launch limits (GPU only).

The per-pixel math is shared with the CPU kernels and tested there; these tests reach what
only the GPU code has: the device guard and the stream of the glue, and the grid-stride and
batch-splitting loops that take over past the grid's limits (65535 blocks in y and z, and the
65535 blocks a grid-stride launch is capped at), which small test shapes never reach.
"""

from __future__ import annotations

import pytest
import torch

from xvertfast._extension import has_extension

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not has_extension(), reason="compiled extension not built")]

OPS = torch.ops.xvertfast if has_extension() else None
WLS_PARAMS = (0.8, 1.2, 1e-4)  # lam, alpha, eps


def test_mixed_devices_are_refused_by_the_ops_own_checks():
    # The dispatcher runs the CUDA kernel when any argument is on a GPU, also when the tensor
    # the device guard is taken from is on the CPU: the op's own check must name the problem
    # (a CUDAGuard of the CPU device used to throw first: "CUDAGuardImpl initialized with
    # non-CUDA DeviceType: cpu").
    a = torch.rand(2, 8, 9, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="a and b must be on the same device"):
        OPS.gradient_correlation(a, a.cuda(), 1e-4)
    gc, stats = OPS.gradient_correlation(a, a, 1e-4)
    with pytest.raises(RuntimeError, match="grad and stats must be on"):
        OPS.gradient_correlation_backward(torch.ones_like(gc).cuda(), a, a, stats, 1e-4, True, True)
    y = torch.rand(2, 1, 8, 8)
    weight, bias = torch.randn(3, 1, 3, 3), torch.randn(3)
    with pytest.raises(RuntimeError, match="must be on one device"):
        OPS.guided_pool(y, weight.cuda(), bias.cuda(), 2)
    out, argmax = OPS.guided_pool(y, weight, bias, 2)
    with pytest.raises(RuntimeError, match="grad and argmax must be on"):
        OPS.guided_pool_backward(out.cuda(), y, weight, argmax, 2, True)
    images = torch.rand(1, 12, 13, dtype=torch.float64)
    ws = OPS.wls_setup(images.cuda(), *WLS_PARAMS)
    with pytest.raises(RuntimeError, match="on x's device"):
        OPS.wls_apply(ws, images, False)


def test_gradient_correlation_of_a_batch_past_the_grids_z_limit():
    # backward: the batch is the grid's z axis, split into launches of 65535 samples
    a = torch.rand(65535 + 3, 5, 6, dtype=torch.float64)
    b = 0.5 * a + 0.5 * torch.rand_like(a)
    gc, stats = OPS.gradient_correlation(a, b, 1e-4)
    gc_gpu, stats_gpu = OPS.gradient_correlation(a.cuda(), b.cuda(), 1e-4)
    torch.testing.assert_close(gc_gpu.cpu(), gc, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(gc)
    want = OPS.gradient_correlation_backward(grad, a, b, stats, 1e-4, True, True)
    got = OPS.gradient_correlation_backward(grad.cuda(), a.cuda(), b.cuda(), stats_gpu, 1e-4, True, True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.cpu(), w, rtol=1e-10, atol=1e-12)


def test_gradient_correlation_of_images_taller_than_its_row_blocks():
    # the forward sums of a sample run in at most 1024 blocks of rows: each block of a taller
    # image (a 2048-row radiograph) takes several rows
    gen = torch.Generator().manual_seed(8)
    a = torch.rand(2, 2100, 37, dtype=torch.float64, generator=gen)
    b = 0.5 * a + 0.5 * torch.rand(a.shape, dtype=torch.float64, generator=gen)
    gc, stats = OPS.gradient_correlation(a, b, 1e-4)
    gc_gpu, stats_gpu = OPS.gradient_correlation(a.cuda(), b.cuda(), 1e-4)
    torch.testing.assert_close(gc_gpu.cpu(), gc, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(stats_gpu.cpu(), stats, rtol=1e-10, atol=1e-12)


def test_guided_pool_past_the_grid_stride_cap():
    # more outputs (forward) and more pixels (grad_y) than 65535 blocks of 256 threads cover
    # in one pass; values on a grid where every product and sum is exact, so the GPU and the
    # CPU agree exactly, argmax included, whatever the order of the sums
    gen = torch.Generator().manual_seed(0)
    y = torch.round(torch.randn(5, 1, 1900, 1900, dtype=torch.float64, generator=gen) * 8) / 64
    weight = torch.round(torch.randn(8, 1, 3, 3, dtype=torch.float64, generator=gen) * 8) / 8
    bias = torch.round(torch.randn(8, dtype=torch.float64, generator=gen) * 8) / 8
    assert 5 * 8 * 950 * 950 > 65535 * 256 and 5 * 1900 * 1900 > 65535 * 256
    out, argmax = OPS.guided_pool(y, weight, bias, 2)
    out_gpu, argmax_gpu = OPS.guided_pool(y.cuda(), weight.cuda(), bias.cuda(), 2)
    assert torch.equal(out_gpu.cpu(), out) and torch.equal(argmax_gpu.cpu(), argmax)
    grad = torch.round(torch.randn(out.shape, dtype=torch.float64, generator=gen) * 8) / 8
    want = OPS.guided_pool_backward(grad, y, weight, argmax, 2, True)
    got = OPS.guided_pool_backward(grad.cuda(), y.cuda(), weight.cuda(), argmax_gpu, 2, True)
    for g, w in zip(got, want):
        assert torch.equal(g.cpu(), w)


def test_select_max_entropy_past_the_gathers_grid_stride_cap():
    # the selected map is copied by at most 4096 blocks of 256 threads a sample: a map of
    # more pixels (a 2048^2 feature map has four times as many) is finished by the loop
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(2, 3, 1030, 1030, dtype=torch.float64, generator=gen) ** torch.tensor([4.0, 1.0, 2.0]).view(3, 1, 1)
    assert 1030 * 1030 > 4096 * 256
    index, selected, ent = OPS.select_max_entropy(x, 256, True)
    index_gpu, selected_gpu, ent_gpu = OPS.select_max_entropy(x.cuda(), 256, True)
    assert torch.equal(index_gpu.cpu(), index) and index.tolist() == [1, 1]
    assert torch.equal(selected_gpu.cpu(), selected)
    torch.testing.assert_close(ent_gpu.cpu(), ent, rtol=1e-12, atol=0.0)


def _quantised(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(shape, dtype=torch.float64, generator=gen) * 16) / 16  # plateaus


@pytest.mark.parametrize("shape", [(1, 70000, 5), (65535 + 2, 9, 9)], ids=["rows-past-grid-y", "batch-past-grid-z"])
def test_wls_operator_and_vcycle_past_the_grid_limits(shape):
    # the point kernels loop over rows past gridDim.y and images past gridDim.z (65535 each)
    images = _quantised(shape, 1)
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ws_cpu = OPS.wls_setup(images, *WLS_PARAMS)
    ws_gpu = OPS.wls_setup(images.cuda(), *WLS_PARAMS)
    for precondition in (False, True):
        cpu = OPS.wls_apply(ws_cpu, x, precondition)
        gpu = OPS.wls_apply(ws_gpu, x.cuda(), precondition).cpu()
        assert torch.isfinite(gpu).all()
        assert ((gpu - cpu).norm() / cpu.norm()).item() <= 1e-10, f"precondition={precondition}"


def test_wls_setup_takes_its_scratch_from_torchs_allocator():
    # the plateau labelling's CUB scan and sort storage comes from torch's caching allocator
    # (a pool beside it could run out while torch's cache holds free blocks), given back
    # within the call
    images = _quantised((2, 64, 64), 3).cuda()
    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()
    ws = OPS.wls_setup(images, *WLS_PARAMS)
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    taken = after["allocation.all.allocated"] - before["allocation.all.allocated"]
    assert taken >= 2  # the workspace, and at least the first scan's storage
    assert after["allocation.all.current"] - before["allocation.all.current"] == 1  # only the workspace is kept
    want = OPS.wls_apply(OPS.wls_setup(images.cpu(), *WLS_PARAMS), images.cpu(), True)
    got = OPS.wls_apply(ws, images, True).cpu()
    assert ((got - want).norm() / want.norm()).item() <= 1e-10


def _cuda_runtime():
    """The CUDA runtime library this process has loaded (torch's), through ctypes."""
    import ctypes

    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libcudart.so" in line}
    if len(paths) != 1:
        pytest.skip(f"needs exactly one loaded libcudart, found {sorted(paths)}")
    return ctypes.CDLL(paths.pop())


def test_an_earlier_handled_runtime_error_is_not_taken_for_the_ops_own():
    # a runtime call that failed and was handled by its caller (cupy's memory pool retries a
    # failed allocation) leaves its error pending; the next op must not report it as its own
    import ctypes

    cudart = _cuda_runtime()
    a = torch.rand(2, 8, 9, dtype=torch.float64, device="cuda")
    maps = a.unsqueeze(1).float()  # (made now: torch's own kernels report a pending error as theirs)
    torch.cuda.synchronize()
    for call in (
        lambda: OPS.gradient_correlation(a, a, 1e-4),
        lambda: OPS.feature_entropy(maps, 32),
        lambda: OPS.wls(a, 0.8, 1.2, 1e-4, 1e-4, 50),
    ):
        pointer = ctypes.c_void_p()
        assert cudart.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(1 << 62)) != 0  # refused, left pending
        assert cudart.cudaPeekAtLastError() != 0  # pending in the runtime the ops use
        call()
        assert cudart.cudaPeekAtLastError() == 0
        torch.cuda.synchronize()


def test_gradient_correlation_of_a_sample_is_the_same_in_any_batch():
    # the forward sums run in an order fixed by the image shape, not the batch size
    gen = torch.Generator().manual_seed(4)
    a = torch.rand(9, 300, 301, dtype=torch.float64, generator=gen).cuda()
    b = 0.5 * a + 0.5 * torch.rand(a.shape, dtype=torch.float64, generator=gen).cuda()
    batch, _ = OPS.gradient_correlation(a, b, 1e-4)
    for k in (0, 8):
        alone, _ = OPS.gradient_correlation(a[k : k + 1], b[k : k + 1], 1e-4)
        assert torch.equal(alone, batch[k : k + 1])


def _every_op(a, b, maps, y, weight, bias, images):
    """Each op's outputs on one set of inputs, by name (the inputs' device decides where they run)."""
    gc, stats = OPS.gradient_correlation(a, b, 1e-4)
    grad_a, grad_b = OPS.gradient_correlation_backward(torch.ones_like(gc), a, b, stats, 1e-4, True, True)
    index, selected, _ = OPS.select_max_entropy(maps, 32, True)
    pooled, argmax = OPS.guided_pool(y, weight, bias, 2)
    grad_y, grad_w, grad_bias = OPS.guided_pool_backward(torch.ones_like(pooled), y, weight, argmax, 2, True)
    vcycle = OPS.wls_apply(OPS.wls_setup(images, *WLS_PARAMS), images, True)
    smooth = OPS.wls(images, *WLS_PARAMS, 1e-4, 100)[0]
    return {"gc": gc, "stats": stats, "grad_a": grad_a, "grad_b": grad_b, "entropy": OPS.feature_entropy(maps, 32),
            "index": index, "selected": selected, "pooled": pooled, "argmax": argmax, "grad_y": grad_y,
            "grad_w": grad_w, "grad_bias": grad_bias, "vcycle": vcycle, "wls": smooth}  # fmt: skip


def _op_inputs():
    """CPU inputs of _every_op: float64, and the guidance layer's exact in every product and sum."""
    gen = torch.Generator().manual_seed(5)
    a = torch.rand(2, 40, 50, dtype=torch.float64, generator=gen)
    b = 0.5 * a + 0.5 * torch.rand(a.shape, dtype=torch.float64, generator=gen)
    maps = torch.rand(2, 3, 40, 50, dtype=torch.float64, generator=gen) ** torch.tensor([9.0, 1.0, 3.0]).view(3, 1, 1)
    y = torch.round(torch.randn(2, 1, 40, 50, dtype=torch.float64, generator=gen) * 8) / 64
    weight = torch.round(torch.randn(3, 1, 3, 3, dtype=torch.float64, generator=gen) * 8) / 8
    bias = torch.round(torch.randn(3, dtype=torch.float64, generator=gen) * 8) / 8
    return [a, b, maps, y, weight, bias, _quantised((2, 40, 50), 6)]


def _assert_same_as_cpu(got, want, device):
    for name, w in want.items():
        g = got[name]
        assert g.device == torch.device(device), f"{name} on {g.device}"
        g = g.cpu()
        if name in ("vcycle", "wls"):  # as test_wls's GPU tests: CG may stop an iteration apart
            assert ((g - w).norm() / w.norm()).item() <= (1e-10 if name == "vcycle" else 5e-5), name
        elif w.is_floating_point():
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12, msg=name)
        else:
            assert torch.equal(g, w), name


def test_ops_launch_on_torchs_current_stream():
    # The kernels must run on torch's current stream, not the legacy default stream: torch's
    # side streams do not wait for that one, so a kernel there would read its inputs before
    # the side stream (held back here by a sleep) has written them, and see the zeros.
    inputs = _op_inputs()
    want = _every_op(*inputs)
    sources = [t.cuda() for t in inputs]
    staged = [torch.zeros_like(t) for t in sources]
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before the inputs are written
        for dst, src in zip(staged, sources):
            dst.copy_(src)
        got = _every_op(*staged)
    torch.cuda.synchronize()
    _assert_same_as_cpu(got, want, "cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_ops_run_on_the_gpu_of_their_tensors():
    # Torch's current device stays 0: every op's device guard must take it to GPU 1, where its
    # tensors are (without one, the kernels would run on GPU 0 with GPU 1's pointers).
    from xvertfast._extension import cuda_kernels_run_on

    if not cuda_kernels_run_on(torch.device("cuda", 1)):
        pytest.skip("the CUDA kernels were not built for the second GPU")
    inputs = _op_inputs()
    assert torch.cuda.current_device() == 0
    got = _every_op(*[t.to("cuda:1") for t in inputs])
    _assert_same_as_cpu(got, _every_op(*inputs), "cuda:1")
