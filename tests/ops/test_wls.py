"""WLS solver: compiled kernels against the PyTorch reference, every method against the direct solve."""

from __future__ import annotations

import functools
import warnings
import glob
import importlib
import os
import re
import sys
import types

import numpy as np
import pytest
import torch

from tests.conftest import CXR_DEV, BuiltWithNvcc, needs_cxr_dev
from xvertfast import wls
from xvertfast._extension import extension, has_extension
from xvertfast.ops import wls_reference as ref
from xvertfast.ops.wls import release_workspace
from xvertfast.ops.wls_direct import solve_direct, system_matrix
from xvertfast.ops.wls_pcg import pcg

needs_ext = pytest.mark.skipif(not has_extension(), reason="compiled extension not built")
IMAGES = sorted(glob.glob(os.path.join(CXR_DEV, "*.png")))
PARAMS = dict(lam=ref.DEFAULT_LAM, alpha=ref.DEFAULT_ALPHA, eps=ref.DEFAULT_EPS)
SHAPES = [(1, 1), (1, 9), (2, 3), (7, 1), (33, 17), (50, 64)]

# Every solver method: the compiled CPU solver, its CUDA build and the CuPy-driven CG on it
# (on a GPU), and the PyTorch multigrid.
METHODS = [
    pytest.param("cpu", marks=needs_ext),
    pytest.param("cuda", marks=pytest.mark.cuda),
    pytest.param("cupy", marks=pytest.mark.cuda),
    "torch",
]


def solve(x, method, **kwargs):
    """wls(x, method=method) with x on the method's device; the result comes back to the CPU."""
    if method not in ("cuda", "cupy"):
        return wls(x, method=method, **kwargs)
    out = wls(x.cuda(), method=method, **kwargs)
    if kwargs.get("return_info"):
        return out[0].cpu(), out[1]
    return out.cpu()


def operator(image, x, precondition):
    """A x, or one V-cycle applied to x, for the system of one image [H, W] (the compiled kernels)."""
    ws = torch.ops.xvertfast.wls_setup(image[None].contiguous(), *PARAMS.values())
    return torch.ops.xvertfast.wls_apply(ws, x[None].contiguous(), precondition)[0]


def mixed_batch(b, h, w, dtype=torch.float32):
    """Constant, noise, smooth gradient, blocks with noise: the structure WLS meets."""
    gen = [
        lambda: torch.full((h, w), 0.37),
        lambda: torch.rand(h, w),
        lambda: torch.linspace(0, 1, w).expand(h, w) * 0.8 + 0.1,
        lambda: ((torch.arange(h)[:, None] // 8 + torch.arange(w)[None, :] // 8) % 2) * 0.6 + 0.2 + 0.01 * torch.rand(h, w),
    ]
    return torch.stack([gen[k % len(gen)]() for k in range(b)]).to(dtype)


def rel_err(got, want) -> float:
    got, want = torch.as_tensor(got).double(), torch.as_tensor(want).double()
    return float(torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want))


def direct(img: torch.Tensor) -> torch.Tensor:
    return solve_direct(img.double(), **PARAMS)


def stopping_bound(img: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, rtol: float = 1e-4) -> float:
    """The relative error from the exact solution ``want`` that a solve stopped at
    ``||b - A g|| <= rtol ||b||`` is sure to keep: A = I + L, L positive semi-definite, so
    ||A^-1|| <= 1 and ||g - want|| <= rtol ||b||, relative rtol ||b|| / ||want||; that is rtol
    or more (||want|| <= ||b||: up to 1.2 rtol on the images here), not rtol itself, which a
    seed could cross (0.44 rtol used over 300 seeds at lam 0.3). Plus the result's rounding to
    ``dtype``."""
    ratio = float(torch.linalg.vector_norm(img.double()) / torch.linalg.vector_norm(want.double()))
    u = torch.finfo(dtype).eps / 2
    return rtol * ratio + u * (1 + rtol * ratio)


@functools.lru_cache(maxsize=None)
def real_image(path: str, size: int | None) -> torch.Tensor:
    from PIL import Image

    im = Image.open(path)
    arr = np.asarray(im, dtype=np.float64)
    if size is not None and arr.shape != (size, size):
        arr = np.asarray(Image.fromarray(arr.astype(np.float32)).resize((size, size), Image.BILINEAR), dtype=np.float64)
    arr = (arr - arr.min()) / max(arr.max() - arr.min(), 1e-12)
    return torch.from_numpy(arr).float()


def error_bound(img: torch.Tensor, got: torch.Tensor) -> float:
    """An upper bound on rel_err(got, the exact solution of img's system), for the real images:
    their direct solve took about 9 s each at 1024^2 (21 of them), this about a tenth of that.
    A = I + L, L positive semi-definite, so ||A^-1|| <= 1: with r = b - A got, the error
    e = A^-1 r, and for any e_hat, ||e|| <= ||e_hat|| + ||r - A e_hat||; ||exact|| >= ||got|| - ||e||.
    A is the reference's matrix (system_matrix, the direct solve's), both products taken in
    float64 with their rounding bounded; e_hat, a PCG on A e = r preconditioned by the compiled
    V-cycle, only makes the bound tight: its residual left over, about rtol ||r||, is what the bound
    adds; a loose one first (left about 2.5e-5 ||got||), a tight one where that falls short of 1e-4
    (left about 1e-7 ||got||: within about 1e-6 of the error). Without the extension, the direct solve."""
    if not has_extension():
        return rel_err(got, direct(img))
    a = system_matrix(img, **PARAMS)
    b, g = img.double().numpy().ravel(), got.cpu().double().numpy().ravel()
    u = np.finfo(np.float64).eps / 2

    def residual(rhs, x):  # rhs - A x, and a bound on its rounding (up to 5 products and 5 sums a row)
        return rhs - a @ x, 12 * u * float(np.linalg.norm(np.abs(rhs) + abs(a) @ np.abs(x)))

    r, slack = residual(b, g)
    norm_g, norm_r = float(np.linalg.norm(g)), float(np.linalg.norm(r))
    ws = torch.ops.xvertfast.wls_setup(img.double()[None].contiguous(), *PARAMS.values())
    bound = float("inf")
    for rtol in (min(0.5, 0.25e-4 * norm_g / max(norm_r, 1e-300)), min(1e-3, 1e-7 * norm_g / max(norm_r, 1e-300))):
        e_hat, _, _ = pcg(lambda v: (a @ v.ravel()).reshape(v.shape),
                          lambda v: torch.ops.xvertfast.wls_apply(ws, torch.from_numpy(v), True).numpy(),
                          r.reshape(1, *img.shape), rtol, 100, np)  # fmt: skip
        left, more = residual(r, e_hat.ravel())
        err = float(np.linalg.norm(e_hat)) + float(np.linalg.norm(left)) + more + slack
        bound = err / (norm_g - err) if norm_g > err else float("inf")
        if bound <= 1e-4:
            break
    return bound


# ---- the compiled kernels against the reference, step by step ---------------------------------


def operator_error_bound(image: torch.Tensor, x: torch.Tensor, dtype: torch.dtype, row_sums: bool = True) -> torch.Tensor:
    """A bound, per pixel, on the error of ``A x`` computed in ``dtype`` (unit roundoff u) from
    the exact one, first order in u. The log guide's logs and the weights' power (exp of alpha log)
    are taken within 2 ulps (float_math.h's bound, tests/ops/test_float_math.py; libm's in
    float64), every other operation within 1/2 ulp. An error dl in the two logs of an edge moves
    the weight lam / (d^alpha + eps) by a part d^alpha / (d^alpha + eps) of the relative error of
    d^alpha, alpha dl / d: up to ~1e-3 in float32 for neighbours about 1e-4 apart in the log.
    ``row_sums``: A x summed as the kernels do, x_p + sum w (x_p - x_q); else as the reference
    does, (1 + sum w) x_p - sum w x_q, whose terms cancel."""
    u = torch.finfo(dtype).eps / 2
    lam, alpha, eps = PARAMS["lam"], PARAMS["alpha"], PARAMS["eps"]
    img, xs = image.double(), x.double()
    log = torch.log(img + ref.LOG_OFFSET)
    dlog = 2 * u + 4 * u * log.abs()  # the offset and x + offset rounded, then a 2-ulp log

    def edges(la, lb, dla, dlb, xa, xb):
        d = (lb - la).abs()
        dd = dla + dlb + u * d
        power = d**alpha
        # the 2-ulp log of d, alpha (rounded) times it rounded, a 2-ulp exp
        spread = 6 * alpha * u * torch.log(torch.clamp(d + dd, min=1e-300)).abs() + 4 * u
        dpower = torch.where(d > 0, (d + dd) ** alpha * (1 + spread) - power, torch.zeros_like(d))
        den = power + eps
        w = lam / den
        dw = w * ((dpower + 2 * u * den) / den + 2 * u)  # the sum and eps, the division and lam
        diff = (xb - xa).abs() if row_sums else xa.abs() + xb.abs()
        return w * diff, dw * diff

    terms = torch.zeros_like(xs)
    errors = torch.zeros_like(xs)
    for sl_a, sl_b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        t, e = edges(log[sl_a], log[sl_b], dlog[sl_a], dlog[sl_b], xs[sl_a], xs[sl_b])
        for sl in (sl_a, sl_b):
            terms[sl] += t
            errors[sl] += e
    # the sum of the five terms, each within u of its size
    return errors + 8 * u * (xs.abs() + terms)


@needs_ext
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_operator_matches_reference(seed, shape, dtype):
    # The reference is evaluated in float64 on the same (possibly float32) inputs: every pixel
    # within the kernel's rounding bound in its dtype plus the reference's own in float64. In
    # float32 the log guide carries ~1e-7 absolute error, which moves the weights of near-equal
    # neighbours by up to ~1e-3 (over 1e5 random 33 x 17 cases the whole vector's relative
    # error reached 4.98e-4, against the 5e-4 this test allowed); measured errors stay under
    # half the bound, while a wrong weight or stencil term is off by far more.
    image = torch.rand(shape, dtype=dtype)
    x = torch.randn(shape, dtype=dtype)
    want = ref.fine_stencil(*ref.edge_weights(image.double(), **PARAMS)).apply(x.double())
    got = operator(image, x, precondition=False)
    bound = operator_error_bound(image, x, dtype) + operator_error_bound(image, x, torch.float64, row_sums=False)
    err = (got.double() - want).abs()
    assert torch.all(err <= bound), f"seed {seed}: {float((err / bound).nan_to_num().max()):.3g} times the bound"


@needs_ext
@pytest.mark.parametrize("shape", SHAPES + [(64, 64), (97, 45)])
@pytest.mark.parametrize("kind", ["random", "quantised"])
def test_vcycle_matches_reference(seed, shape, kind):
    # One V-cycle exercises every part of the hierarchy: weights, interpolation,
    # Galerkin operators, row sums, line smoothers, restriction, prolongation, coarse solve;
    # quantised images (4 grey levels) add the plateau step of the finest level.
    if kind == "random":
        image = torch.rand(shape, dtype=torch.float64)
    else:
        image = torch.randint(0, 4, shape).double() / 3
    r = torch.randn(shape, dtype=torch.float64)
    strong = ref.plateau_threshold(PARAMS["lam"], PARAMS["eps"])
    want = ref.Hierarchy(ref.fine_stencil(*ref.edge_weights(image, **PARAMS)), strong=strong).vcycle(r)
    got = operator(image, r, precondition=True)
    assert rel_err(got, want) <= 1e-10, f"seed {seed}"


@needs_ext
def test_plateau_step_counts(seed):
    # a saturated block and a stripe of equal values are found whole; a checkerboard of two
    # grey levels (no two equal neighbours) stays as single pixels
    rows, cols = torch.meshgrid(torch.arange(40), torch.arange(50), indexing="ij")
    image = 0.3 + 0.4 * ((rows + cols) % 2).double()
    image[5:15, 5:25] = 0.0
    image[30, :] = 1.0
    st = ref.fine_stencil(*ref.edge_weights(image, **PARAMS))
    plateaus = ref.Plateaus(st, ref.plateau_threshold(PARAMS["lam"], PARAMS["eps"]))
    assert plateaus.count == 2
    assert int((plateaus.label == plateaus.label[6, 6]).sum()) == 200
    assert int((plateaus.label >= 0).sum()) == 250
    r = torch.randn(40, 50, dtype=torch.float64)
    hier = ref.Hierarchy(st, strong=ref.plateau_threshold(PARAMS["lam"], PARAMS["eps"]))
    assert rel_err(operator(image, r, precondition=True), hier.vcycle(r)) <= 1e-10


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batched_hierarchy_equals_per_image(seed, dtype):
    # The GPU builds one hierarchy for a whole batch: each image's slice must behave
    # exactly like that image's own hierarchy.
    images = mixed_batch(3, 45, 38, dtype)
    x = torch.randn(3, 45, 38, dtype=dtype)
    for precondition in (False, True):
        ws = torch.ops.xvertfast.wls_setup(images, *PARAMS.values())
        together = torch.ops.xvertfast.wls_apply(ws, x, precondition)
        for k in range(3):
            assert torch.equal(together[k], operator(images[k], x[k], precondition)), f"image {k}"


def plateau_batch(b, h, w, dtype):
    """8-bit noise with a saturated block (> 1024 equal pixels: summed in pieces) per image."""
    images = torch.randint(0, 256, (b, h, w)).to(dtype) / 255
    for k in range(b):
        images[k, 3 + k : 3 + k + 40, 5 : 5 + 30 + k] = 1.0 if k % 2 else 0.0
    return images


@needs_ext
def test_large_plateaus_batched_and_against_reference(seed):
    # plateaus larger than a CPU chunk of members are summed piecewise: the V-cycle still
    # equals the reference's, and an image's result does not depend on its place in a batch
    images = plateau_batch(3, 64, 70, torch.float64)
    x = torch.randn(3, 64, 70, dtype=torch.float64)
    ws = torch.ops.xvertfast.wls_setup(images, *PARAMS.values())
    together = torch.ops.xvertfast.wls_apply(ws, x, True)
    strong = ref.plateau_threshold(PARAMS["lam"], PARAMS["eps"])
    for k in range(3):
        st = ref.fine_stencil(*ref.edge_weights(images[k], **PARAMS))
        label = ref.Plateaus(st, strong).label
        assert int(torch.bincount(label[label >= 0]).max()) > 1024  # the piecewise path runs
        assert torch.equal(together[k], operator(images[k], x[k], True)), f"image {k}"
        hier = ref.Hierarchy(st, strong=strong)
        assert rel_err(together[k], hier.vcycle(x[k])) <= 1e-10


@needs_ext
@pytest.mark.parametrize("size", [512, 1024, 2048])
def test_planned_workspace_and_output_bytes_per_pixel(size):
    # Issue 3's memory budget (64 B/px), on its deterministic part: the whole float32 workspace,
    # the plateau arrays planned for the worst case, plus the float32 output array. Since the
    # starts of the 2-8-pixel plateaus are counted instead of stored (2026-12-04) that is
    # 63.9 / 63.5 / 63.2 B/px at 512^2 / 1024^2 / 2048^2 (65.6 / 65.1 / 64.9 before).
    image = torch.zeros(1, size, size)
    ws = torch.ops.xvertfast.wls_setup(image, *PARAMS.values())
    workspace = ws.numel() * ws.element_size() / image.numel()
    output = image.element_size()  # wls() returns a new float32 array of the image's size
    assert workspace + output <= 64.0


@needs_ext
def test_plateau_labelling_does_not_depend_on_the_thread_bands(seed):
    # The labelling runs in bands of rows, one per host thread (up to 4): plateaus that cross
    # the band boundaries, one of them a comb whose teeth meet only at its back in the last
    # band, must come out as with one thread, and as in the reference.
    image = comb_image()
    r = torch.randn(*image.shape, dtype=torch.float64)
    st = ref.fine_stencil(*ref.edge_weights(image, **PARAMS))
    want = ref.Hierarchy(st, strong=ref.plateau_threshold(PARAMS["lam"], PARAMS["eps"])).vcycle(r)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 4):
            torch.set_num_threads(n)
            results.append(operator(image, r, precondition=True))
    finally:
        torch.set_num_threads(threads)
    assert rel_err(results[0], want) <= 1e-10
    for got in results[1:]:
        assert torch.equal(got, results[0])


@pytest.fixture
def parallel_labelling():
    """The CPU solver labels plateaus with the GPU's passes while the test runs."""
    hook = extension().wls_parallel_labelling
    release_workspace()
    previous = hook(True)
    yield hook
    hook(previous)
    release_workspace()


def comb_image(h=160, w=120):
    """8-bit noise with plateaus that cross row bands; one a comb whose teeth meet only at its back."""
    image = torch.randint(0, 256, (h, w)).double() / 255
    for col in (10, 30, 50):
        image[:, col : col + 3] = 0.5
    image[150:154, 10:53] = 0.5
    image[20:24, 70:110] = 1.0
    image[35:130, 90:100] = 0.0
    return image


def labelling_cases():
    """Images whose plateaus the two labellings must find alike, from none to one of every pixel."""
    quantised = torch.randint(0, 4, (3, 130, 150)).float() / 3  # many small plateaus, threaded loops
    saturated = (torch.rand(2, 300, 257) * 8).floor() / 7
    saturated[0, :, :100] = 1.0  # plateaus of > 1024 members: several pieces on the CPU too
    saturated[1, 50:250, 30:200] = 0.0
    return {
        "comb": comb_image()[None],
        "large-plateaus": plateau_batch(3, 64, 70, torch.float64),
        "quantised": quantised,
        "saturated": saturated,
        "noise": torch.rand(2, 64, 65),  # no plateau at all
        "constant": torch.full((2, 40, 50), 0.3),  # one plateau of every pixel
        "mixed": mixed_batch(5, 33, 47, torch.float64),
        "thin": torch.randint(0, 2, (2, 1, 300)).float(),
    }


@needs_ext
def test_parallel_plateau_labelling_matches_the_host_bands(seed, parallel_labelling):
    # The GPU labels plateaus with whole-grid passes (union-find by atomic min, scans, stable
    # sorts); run here on the CPU's threads, they must give the host bands' aggregates bit for
    # bit: the same V-cycle, the same solutions and iteration counts.
    for name, images in labelling_cases().items():
        x = torch.randn_like(images)
        got = {}
        for on in (True, False):
            parallel_labelling(on)
            ws = torch.ops.xvertfast.wls_setup(images, *PARAMS.values())
            vcycle = torch.ops.xvertfast.wls_apply(ws, x, True)
            solution, info = wls(images, method="cpu", return_info=True)
            got[on] = (vcycle, solution, info.iterations)
        assert torch.equal(got[True][0], got[False][0]), name
        assert torch.equal(got[True][1], got[False][1]), name
        assert got[True][2] == got[False][2], name


@needs_ext
@needs_cxr_dev
def test_parallel_plateau_labelling_on_a_real_image(parallel_labelling):
    # a 1024^2 NIH radiograph (8-bit: many plateaus, its dark borders among them)
    path = next(p for p in IMAGES if os.path.basename(p).startswith("nih_"))
    image = real_image(path, None)
    assert image.shape == (1024, 1024)
    parallel = wls(image, method="cpu", return_info=True)
    parallel_labelling(False)
    host = wls(image, method="cpu", return_info=True)
    assert torch.equal(parallel[0], host[0])
    assert parallel[1].iterations == host[1].iterations


def emulate_gpu(images, rtol=1e-4, maxiter=100):
    """The solve with the CUDA executor's loop structure, run serially on the CPU."""
    return extension().wls_gpu_emulation(images, *PARAMS.values(), rtol, maxiter)


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gpu_loop_structure_matches_cpu_solver(seed, dtype):
    # CI has no GPU; this runs the code paths the GPU takes (separate point and reduction
    # passes, one row per task, 64-member plateau pieces, the parallel labelling, copies
    # between device and host memory, a workspace that is not zeroed), serially and with
    # every loop backwards. Same iterations, and the solutions agree to rounding.
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    for name, images in labelling_cases().items():
        images = images.to(dtype)
        got, iterations, _ = emulate_gpu(images)
        want, info = wls(images, method="cpu", return_info=True)
        assert got.dtype == dtype and got.shape == images.shape, name
        assert iterations == info.iterations, name
        assert rel_err(got, want) <= tol, name


@needs_ext
@needs_cxr_dev
def test_gpu_loop_structure_on_real_images():
    paths = IMAGES[::3]
    batch = torch.stack([real_image(path, 512) for path in paths])
    got, iterations, residual = emulate_gpu(batch)
    want, info = wls(batch, method="cpu", return_info=True)
    assert iterations == info.iterations
    for k, path in enumerate(paths):
        name = os.path.basename(path)
        assert residual[k] <= 1e-4, name
        assert rel_err(got[k], want[k]) <= 1e-6, name
        assert error_bound(batch[k], got[k]) <= 1e-4, name


@needs_ext
def test_kept_workspace_gives_the_fresh_result(seed):
    # The CPU solver keeps its workspace for the next solve of the same shape: a solve on the
    # memory another image left behind (other plateaus, other hierarchy) equals a solve on
    # fresh memory, bit for bit.
    saturated = plateau_batch(1, 150, 170, torch.float32)[0]
    saturated[:, :60] = 1.0
    noise = torch.rand(150, 170)
    release_workspace()
    fresh = wls(noise, method="cpu")
    wls(saturated, method="cpu")
    assert extension().wls_cached_workspace_bytes() > 0
    assert torch.equal(wls(noise, method="cpu"), fresh)
    release_workspace()
    fresh = wls(saturated, method="cpu")
    wls(noise, method="cpu")
    assert torch.equal(wls(saturated, method="cpu"), fresh)


@needs_ext
def test_kept_workspace_limit_and_release(monkeypatch):
    x = torch.rand(64, 80)
    planned = torch.ops.xvertfast.wls_setup(x[None], *PARAMS.values()).numel()
    release_workspace()
    monkeypatch.setenv("XVF_WLS_CACHE_MB", "0")  # keep nothing
    wls(x, method="cpu")
    assert extension().wls_cached_workspace_bytes() == 0
    monkeypatch.setenv("XVF_WLS_CACHE_MB", "1")
    wls(x, method="cpu")
    assert extension().wls_cached_workspace_bytes() == planned
    wls(torch.rand(65, 80), method="cpu")  # another shape replaces it
    assert extension().wls_cached_workspace_bytes() not in (0, planned)
    assert release_workspace() > 0
    assert extension().wls_cached_workspace_bytes() == 0
    assert release_workspace() == 0


@needs_ext
def test_workspace_must_match_the_batch():
    ws = torch.ops.xvertfast.wls_setup(torch.rand(2, 20, 30), *PARAMS.values())
    with pytest.raises(RuntimeError, match="another batch shape or dtype"):
        torch.ops.xvertfast.wls_apply(ws, torch.rand(1, 20, 30), False)
    with pytest.raises(RuntimeError, match="another batch shape or dtype"):
        torch.ops.xvertfast.wls_apply(ws, torch.rand(2, 20, 30, dtype=torch.float64), False)
    with pytest.raises(RuntimeError, match="uint8 tensor"):
        torch.ops.xvertfast.wls_apply(ws.float(), torch.rand(2, 20, 30), False)
    # shapes whose workspaces have the same size: the size check passes, the setup's record does not
    for set_up, given in (((1, 1, 66), (1, 1, 65)), ((1, 1, 4), (1, 2, 2))):
        ws = torch.ops.xvertfast.wls_setup(torch.rand(set_up), *PARAMS.values())
        assert ws.numel() == torch.ops.xvertfast.wls_setup(torch.rand(given), *PARAMS.values()).numel()
        for precondition in (False, True):
            with pytest.raises(RuntimeError, match="set up for another batch shape or dtype than x"):
                torch.ops.xvertfast.wls_apply(ws, torch.rand(given), precondition)
    # bytes no setup wrote (random ones crashed the V-cycle: it took plateau counts from them)
    for unset in (torch.zeros_like(ws), torch.randint(0, 256, ws.shape, dtype=torch.uint8)):
        with pytest.raises(RuntimeError, match="the workspace was not filled by wls_setup"):
            torch.ops.xvertfast.wls_apply(unset, torch.rand(given), True)


@needs_ext
def test_wls_apply_declares_that_it_writes_the_workspace():
    """It keeps its scratch arrays there: functionalization must see the write."""
    schema = torch.ops.xvertfast.wls_apply.default._schema
    workspace, x = schema.arguments[0], schema.arguments[1]
    assert workspace.alias_info is not None and workspace.alias_info.is_write
    assert x.alias_info is None
    assert torch.ops.xvertfast.wls_setup.default._schema.arguments[0].alias_info is None


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_python_pcg_driver_with_numpy_and_cpu_kernels(seed, dtype):
    # method="cupy" runs this driver on CuPy arrays; here the same code runs on NumPy with
    # the CPU operator and V-cycle, against the direct solve and the native solver.
    batch = mixed_batch(4, 37, 52, dtype) * torch.rand(4, 1, 1, dtype=dtype).clamp_min(0.2)
    ws = torch.ops.xvertfast.wls_setup(batch, *PARAMS.values())

    def op(precondition):
        return lambda v: torch.ops.xvertfast.wls_apply(ws, torch.from_numpy(v), precondition).numpy()

    x, iterations, residual = pcg(op(False), op(True), batch.numpy(), 1e-4, 200, np)
    assert x.dtype == batch.numpy().dtype
    _, native = wls(batch, method="cpu", return_info=True)
    for k, img in enumerate(batch):
        want = direct(img)  # (the driver stops on its recursive residual, near the true one here:
        # float32 and float64 used the same 0.23 of the bound at most over 300 seeds)
        assert rel_err(x[k], want) <= stopping_bound(img, want, dtype), f"image {k}, seed {seed}"
        assert residual[k] <= 1e-4
        assert abs(iterations[k] - native.iterations[k]) <= 2, (iterations, native.iterations)


@pytest.mark.parametrize("shape", [(8, 8), (9, 6), (12, 1)])
def test_reference_galerkin_is_ptap(seed, shape):
    image = torch.rand(shape, dtype=torch.float64)
    st = ref.fine_stencil(*ref.edge_weights(image, **PARAMS))
    P = ref.interpolation(st)
    h, w = shape
    hc, wc = ref.coarse_shape(h, w)
    cols = []
    for k in range(hc * wc):
        unit = torch.zeros(hc * wc, dtype=torch.float64)
        unit[k] = 1
        cols.append(ref.prolong(P, unit.reshape(hc, wc), shape).reshape(-1))
    Pd = torch.stack(cols, 1)
    torch.testing.assert_close(ref.galerkin(st, P).dense(), Pd.T @ st.dense() @ Pd)
    r = torch.rand(shape, dtype=torch.float64)
    torch.testing.assert_close(ref.restrict(P, r).reshape(-1), Pd.T @ r.reshape(-1))
    assert P.min() >= 0 and P.max() <= 1


# ---- accuracy of every method against the direct solve ------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_batches_match_direct(seed, method, dtype):
    batch = mixed_batch(5, 37, 52, dtype) * torch.rand(5, 1, 1, dtype=dtype).clamp_min(0.2)
    out, info = solve(batch, method, return_info=True)
    assert out.shape == batch.shape and out.dtype == dtype
    for img, got, res in zip(batch, out, info.residual):
        want = direct(img)
        assert rel_err(got, want) <= stopping_bound(img, want, dtype), f"seed {seed}"
        assert res <= 1e-4


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("lam, alpha", [(0.3, 1.0), (2.0, 1.6)])
def test_other_parameters_match_direct(seed, method, lam, alpha):
    # lam and alpha reach the kernels (weights, hierarchy, plateau threshold lam / eps): a
    # solver that used the defaults whatever it was given would miss the direct solve here.
    batch = mixed_batch(4, 29, 41) * torch.rand(4, 1, 1).clamp_min(0.2)
    batch[3] = 0.1 + torch.floor(batch[3] * 12) / 12  # plateaus, joined at lam / eps (never all 0)
    out = solve(batch, method, lam=lam, alpha=alpha)
    for k, img in enumerate(batch):
        want = solve_direct(img.double(), lam=lam, alpha=alpha, eps=PARAMS["eps"])
        assert rel_err(out[k], want) <= stopping_bound(img, want, out.dtype), f"seed {seed}, image {k}"
        if k > 0:  # (image 0 is constant: its solution is itself whatever the parameters)
            assert rel_err(want, direct(img)) > 1e-3  # the parameters change the solution


@needs_cxr_dev
@pytest.mark.parametrize("method", METHODS)
def test_real_images_512(method):
    for path in IMAGES[:: 6 if method == "torch" else 1]:
        image = real_image(path, 512)
        assert error_bound(image, solve(image, method)) <= 1e-4, os.path.basename(path)


@needs_ext
@needs_cxr_dev
@pytest.mark.slow
@pytest.mark.parametrize("size", [1024, None], ids=["1024", "native"])
def test_real_images_cpu_large(size):
    for path in IMAGES:
        if size is None and os.path.basename(path).startswith("nih_"):
            continue  # NIH PNGs are 1024 x 1024: covered by the 1024 case
        image = real_image(path, size)
        got, info = wls(image, method="cpu", return_info=True)
        err = error_bound(image, got)
        assert err <= 1e-4, f"{os.path.basename(path)}: error up to {err:.2e}, {info.iterations} iterations"


# ---- edge cases -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS + ["direct"])
def test_constant_image_is_its_own_solution(method):
    x = torch.full((2, 13, 21), 0.42)
    torch.testing.assert_close(solve(x, method), x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("method", METHODS + ["direct"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (2, 3), (23, 1), (31, 64)])
def test_tiny_and_thin_images(seed, method, shape):
    x = torch.rand(shape)
    got = solve(x, method)
    assert got.shape == shape
    want = direct(x)
    assert rel_err(got, want) <= stopping_bound(x, want, got.dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("eps", [1e-6, 1e-7])
def test_saturated_columns_with_small_eps(method, eps):
    # Large plateaus joined by couplings lam / eps ~1e7: a float32 diagonal computed by the
    # Galerkin sum could not hold the small row sums, and the coarsest Cholesky or a line
    # pivot broke down (NaN at eps = 1e-7 before the diagonals came from the row sums).
    x = torch.ones(2, 40, 52)
    x[0, :, :3] = 0
    x[1, :5, :] = 0.5
    out, info = solve(x, method, eps=eps, return_info=True)
    for img, got, res in zip(x, out, info.residual):
        want = solve_direct(img.double(), PARAMS["lam"], PARAMS["alpha"], eps)
        assert rel_err(got, want) <= 1e-4 and res <= 1e-4


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("eps", [1e-8, 1e-10])
def test_extreme_eps_solved_in_float64_returned_in_float32(seed, method, eps):
    # lam / eps beyond FLOAT32_MAX_COUPLING: float32 input, float64 solve, float32 output.
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 3, (2, 45, 37), generator=g).float() / 2
    out, info = solve(x, method, eps=eps, return_info=True)
    assert out.dtype == torch.float32
    for img, got, res in zip(x, out, info.residual):
        want = solve_direct(img.double(), PARAMS["lam"], PARAMS["alpha"], eps)
        assert rel_err(got, want) <= 1e-4 and res <= 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_all_zero_image(method):
    out, info = solve(torch.zeros(2, 8, 9), method, return_info=True)
    assert torch.equal(out, torch.zeros(2, 8, 9))
    assert info.iterations == [0, 0]


def test_types_shapes_and_devices_round_trip(seed):
    x = np.random.default_rng(seed).random((20, 30))
    out = wls(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (20, 30)
    out32 = wls(x.astype(np.float32))
    assert out32.dtype == np.float32
    t = torch.from_numpy(x).float()
    out_t = wls(t)
    assert isinstance(out_t, torch.Tensor) and out_t.device == t.device and out_t.dtype == torch.float32
    assert wls(t.bfloat16()).dtype == torch.float32
    assert wls(torch.zeros(0, 5, 5)).shape == (0, 5, 5)


@needs_ext
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_batch_solved_together_equals_one_by_one(seed, dtype):
    # Small images are solved together (the GPU's batched code path: per-image CG scalars,
    # images leaving the loop as they converge); each must come out exactly as if alone.
    batch = mixed_batch(6, 41, 29, dtype) * torch.rand(6, 1, 1, dtype=dtype).clamp_min(0.2)
    batch[2] = 0  # an image with nothing to solve in the middle of the batch
    together, info = wls(batch, method="cpu", return_info=True)
    for k, img in enumerate(batch):
        alone, one = wls(img, method="cpu", return_info=True)
        assert torch.equal(together[k], alone), f"image {k}, seed {seed}"
        assert info.iterations[k] == one.iterations[0] and info.residual[k] == one.residual[0]
    assert info.iterations[2] == 0 and len(set(info.iterations)) > 1


@pytest.mark.cuda
def test_cuda_operator_and_vcycle_match_cpu_with_large_plateaus(seed):
    # the GPU sums plateaus in pieces of 64 members, the CPU in pieces of 1024: same V-cycle
    images = plateau_batch(3, 64, 70, torch.float64)
    x = torch.randn(3, 64, 70, dtype=torch.float64)
    for precondition in (False, True):
        cpu = torch.ops.xvertfast.wls_apply(torch.ops.xvertfast.wls_setup(images, *PARAMS.values()), x, precondition)
        ws = torch.ops.xvertfast.wls_setup(images.cuda(), *PARAMS.values())
        gpu = torch.ops.xvertfast.wls_apply(ws, x.cuda(), precondition).cpu()
        assert rel_err(gpu, cpu) <= 1e-10, f"precondition={precondition}"


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
@pytest.mark.parametrize("method", ["cuda", "cupy"])
def test_a_batch_on_the_second_gpu_is_solved_there(seed, method):
    # torch's current device stays 0: the ops and the CuPy loop must follow the batch to GPU 1
    batch = mixed_batch(3, 33, 41, torch.float64)
    out = wls(batch.to("cuda:1"), method=method)
    assert out.device == torch.device("cuda:1")
    for img, got in zip(batch, out.cpu()):
        assert rel_err(got, direct(img)) <= 1e-4


@pytest.mark.cuda
def test_cuda_plateau_labelling_matches_cpu(seed):
    # the GPU labels plateaus in device memory (build_aggregates_parallel), the CPU on the
    # host: in float64 the V-cycles and the solves must agree to rounding on every case
    for name, images in labelling_cases().items():
        images = images.double()
        x = torch.randn_like(images)
        cpu = torch.ops.xvertfast.wls_apply(torch.ops.xvertfast.wls_setup(images, *PARAMS.values()), x, True)
        ws = torch.ops.xvertfast.wls_setup(images.cuda(), *PARAMS.values())
        gpu = torch.ops.xvertfast.wls_apply(ws, x.cuda(), True).cpu()
        assert rel_err(gpu, cpu) <= 1e-10, name
        cpu_solution, cpu_info = wls(images, method="cpu", return_info=True)
        gpu_solution, gpu_info = wls(images.cuda(), method="cuda", return_info=True)
        assert rel_err(gpu_solution.cpu(), cpu_solution) <= 5e-5, name
        assert all(abs(a - b) <= 1 for a, b in zip(gpu_info.iterations, cpu_info.iterations)), name


@pytest.mark.cuda
@needs_cxr_dev
def test_cuda_solver_matches_cpu_solver_on_real_images():
    # The same code on both devices, compiled without multiply-add contraction (the weights
    # and the hierarchy are the CPU's): iteration counts agree (the CG's sums run in another
    # order, which may move the last iteration) and so do the solutions; the whole set is
    # solved as one batch on the GPU.
    batch = torch.stack([real_image(path, 512) for path in IMAGES])
    cpu, cpu_info = wls(batch, method="cpu", return_info=True)
    gpu, gpu_info = wls(batch.cuda(), method="cuda", return_info=True)
    assert gpu.is_cuda and gpu.dtype == batch.dtype
    for k, path in enumerate(IMAGES):
        name = os.path.basename(path)
        assert abs(gpu_info.iterations[k] - cpu_info.iterations[k]) <= 2, name
        assert rel_err(gpu[k].cpu(), cpu[k]) <= 5e-5, name
        assert error_bound(batch[k], gpu[k]) <= 1e-4, name
    again = wls(batch.cuda(), method="cuda")
    # deterministic: the labelling's atomics link each plateau to its smallest pixel whatever
    # their order, and the solver itself has none
    assert torch.equal(again, gpu)


@pytest.mark.cuda
@needs_cxr_dev
@pytest.mark.parametrize("size", [1024, None], ids=["1024", "native"])
def test_real_images_cuda_large(size):
    for path in IMAGES:
        image = real_image(path, size)
        got, info = solve(image, "cuda", return_info=True)
        err = error_bound(image, got)
        assert err <= 1e-4, f"{os.path.basename(path)}: error up to {err:.2e}, {info.iterations} iterations"


@needs_ext
@pytest.mark.parametrize("shape", [(2, 70, 90), (2, 157, 203)], ids=["serial-loops", "threaded-loops"])
def test_deterministic_across_thread_counts(seed, shape):
    # The larger batch is above the CPU executor's threshold for parallel loops (16384
    # points), so its smoothers really split the bands between threads (2 and an uneven 3).
    x = mixed_batch(*shape)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = wls(x, method="cpu")
        results = []
        for n in (2, 3):
            torch.set_num_threads(n)
            results.append(wls(x, method="cpu"))
    finally:
        torch.set_num_threads(threads)
    for many in results:
        assert torch.equal(one, many)


@pytest.mark.parametrize(
    "image, error, match",
    [
        (torch.tensor([[0.1, float("nan")], [0.2, 0.3]]), ValueError, "NaN"),
        (torch.tensor([[0.1, float("inf")], [0.2, 0.3]]), ValueError, "infinite"),
        (torch.tensor([[0.1, -0.5], [0.2, 0.3]]), ValueError, "negative"),
        (torch.ones(2, 2, dtype=torch.int32), TypeError, "floating point"),
        (torch.ones(2, 2, dtype=torch.int32), TypeError, r"got torch\.int32 \(scale integer images"),
        # (said "got torch.uint8" of a NumPy array)
        (np.zeros((4, 4), np.uint8), TypeError, r"got a NumPy array of uint8 \(scale integer images by their real"),
        # a mask was told to "scale integer images by their real maximum first"
        (np.zeros((4, 4), bool), TypeError, r"got a NumPy array of bool: a mask, not grey levels; to smooth its 0 and "
                                            r"1, give them as floats \(mask\.astype\(np\.float32\)\)$"),
        (torch.zeros(4, 4, dtype=torch.bool), TypeError, r"got torch\.bool: a mask, .*\(mask\.float\(\)\)$"),
        (torch.rand(1, 2, 3, 4), ValueError, r"\[H, W\]"),
        (np.array(0.5, np.float32), ValueError, r"got shape \(\)$"),  # a 0-d array was said to be of shape (1,)
        ([[0.1, 0.2]], TypeError, "NumPy array or a torch tensor"),
        # torch's "can't convert np.ndarray of type numpy.longdouble" / "numpy.object_"
        pytest.param(np.full((4, 4), 0.5, dtype=np.longdouble), TypeError,
                     f"wls: image .* NumPy array of {np.dtype(np.longdouble)}",
                     marks=pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="longdouble is float64")),
        (np.full((4, 4), 0.5, dtype=object), TypeError, "wls: image .* NumPy array of object"),
        # (said "got torch.complex64 (scale integer images by their real maximum first)")
        (np.full((4, 4), 0.5, np.complex64), TypeError, r"wls: image must be floats in \[0, 1\], got a NumPy array of "
                                                         "complex64"),
        (torch.full((4, 4), 0.5, dtype=torch.complex64), TypeError, r"got torch.complex64$"),  # (said to scale it)
        # one image with its channels last ([H, W, 1], an RGB [H, W, 3]) was taken for H images
        # 1 or 3 pixels wide, each row smoothed on its own; a grey one with alpha ([H, W, 2]) still was,
        # where preprocess refused it: the rule and its words are preprocess's (_pixels.strips_or_one_image)
        (np.full((40, 36, 1), 0.5, np.float32), ValueError,
         r"^wls: image of shape \(40, 36, 1\) looks like one image with its channels last, not a batch of images 1 "
         r"pixel wide \(one image with axes of length 1: give image\.squeeze\(\)\)$"),
        (torch.full((40, 36, 3), 0.5), ValueError, r"wls: image of shape \(40, 36, 3\) looks like one image with"),
        (np.full((40, 36, 2), 0.5, np.float32), ValueError,
         r"^wls: image of shape \(40, 36, 2\) looks like one image with its channels last, not a batch of images 2 "
         r"pixels wide \(a grey image with alpha, channels last: give its grey channel \[H, W\], "
         r"image\[\.\.\., 0\]\)$"),
        # a network's [1, 1, H, W] and [B, 1, H, W] were told the shapes taken and no more
        (torch.full((1, 1, 8, 8), 0.5), ValueError, r"^wls: image must be \[H, W\] or \[B, H, W\], got shape "
                                                    r"\(1, 1, 8, 8\) \(one image with axes of length 1: give "
                                                    r"image\.squeeze\(\)\)$"),
        (np.full((3, 1, 8, 8), 0.5, np.float32), ValueError, r"^wls: image must be \[H, W\] or \[B, H, W\], got shape "
                                                             r"\(3, 1, 8, 8\) \(a batch of one-channel images "
                                                             r"\[B, 1, H, W\]: give image\[:, 0\]\)$"),
    ],
)
def test_bad_input_raises_clear_errors(image, error, match):
    with pytest.raises(error, match=match):
        wls(image)


def test_a_batch_of_tiny_images_is_still_a_batch(seed):
    x = torch.rand(2, 4, 3, generator=torch.Generator().manual_seed(seed))  # 4 x 3 images: too narrow to be one image
    torch.testing.assert_close(wls(x), torch.stack([wls(img) for img in x]))


def test_bad_arguments():
    x = torch.rand(8, 8)
    with pytest.raises(ValueError, match="unknown method"):
        wls(x, method="magic")
    for method in ("cuda", "cupy"):
        with pytest.raises((ValueError, RuntimeError), match=f"method='{method}' needs"):
            wls(x, method=method)
    # maxiter is checked by the one rule for counts (_checks.whole_number), in its words
    for maxiter in (0, torch.tensor(0), 2.0):
        with pytest.raises(ValueError) as caught:
            wls(x, maxiter=maxiter)
        assert str(caught.value) == f"wls: maxiter must be a whole number >= 1, got {maxiter!r}"


@pytest.mark.parametrize("method", ["torch", "direct", *(["cpu"] if has_extension() else [])])
@pytest.mark.parametrize("bad", [{"lam": -1.0}, {"alpha": 0.0}, {"alpha": -1.0}, {"eps": 0.0}, {"eps": -1e-4},
                                 {"rtol": 0.0}, {"lam": float("nan")}, {"maxiter": 2.7}, {"maxiter": True},
                                 {"maxiter": torch.tensor(5.0)}, {"maxiter": torch.tensor([5, 5])}])  # fmt: skip
def test_bad_parameters_are_refused_by_every_method(method, bad):
    # the compiled op checks its own; the torch method returned NaN for rtol=0, direct solved lam < 0
    with pytest.raises(ValueError, match="wls: "):
        wls(torch.rand(12, 10).double(), method=method, **bad)


@pytest.mark.parametrize("method", [*METHODS, "direct"])
def test_parameters_given_as_0_dim_tensors_are_their_numbers(method):
    # wls(lam=torch.tensor(0.5)) was refused: "wls: lam must be a finite number, got tensor(0.5000)"
    device = "cuda" if method in ("cuda", "cupy") else "cpu"  # (a GPU's parameters there too: read to the host)
    x = torch.rand(8, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(device)
    want = wls(x, method=method, lam=0.5, alpha=1.1, eps=1e-3, rtol=1e-5)
    f64 = dict(dtype=torch.float64, device=device)
    got = wls(x, method=method, lam=torch.tensor(0.5, device=device), alpha=np.array(1.1),
              eps=torch.tensor(1e-3, **f64), rtol=torch.tensor(1e-5, **f64))  # fmt: skip
    assert torch.equal(got, want)
    with pytest.raises(ValueError, match=r"^wls: lam must be a number or a 0-dim tensor of one; this tensor has "
                                         r"shape \(1,\)$"):  # fmt: skip
        wls(x, method=method, lam=torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"^wls: eps is a tensor that requires grad, but wls has no gradient "
                                         r"in eps: give eps.detach\(\) \(or a number\)$"):  # fmt: skip
        wls(x, method=method, eps=torch.tensor(1e-3, requires_grad=True))


def test_every_function_that_keeps_a_number_takes_a_0_dim_tensor_or_array_as_wls_does():
    """wls(x, lam=torch.tensor(0.5)) solved while XVertNet, TrainConfig and preprocess, which pass
    the same parameters on to it, refused the value ("alpha must be a finite number, got
    tensor(1.1000) (a tensor: give alpha.item())"), and farbman, clahe and TrainConfig's lr,
    val_fraction and betas said only "got tensor(...)". Each now reads it as its number (kept as a float, for config.json and the
    checkpoint's JSON); a tensor of another shape or one that requires grad is refused in its name.
    Whole numbers (epochs_gc, tiles) too, as ints."""
    import dataclasses
    import json

    from xvertfast.eval.baselines import clahe, farbman
    from xvertfast.model.stage import XVertNetStage
    from xvertfast.model.xvertnet import XVertNet
    from xvertfast.preprocess import preprocess
    from xvertfast.train.loop import TrainConfig

    held = dict(lam=torch.tensor(0.5), alpha=np.array(1.1), eps=torch.tensor(1e-3, dtype=torch.float64))
    numbers = dict(lam=0.5, alpha=1.1, eps=1e-3)
    model = XVertNet([XVertNetStage(width=1, depth=1)], **held)
    assert [(type(v), v) for v in (model.lam, model.alpha, model.eps)] == [(float, v) for v in numbers.values()]
    config = TrainConfig(**held, lr=torch.tensor(1e-3, dtype=torch.float64), val_fraction=np.array(0.25),
                         betas=(torch.tensor(0.5), np.array(0.75)))  # (and its other numbers, alike)
    assert [(type(v), v) for v in (config.lam, config.alpha, config.eps)] == [(float, v) for v in numbers.values()]
    assert (config.lr, config.val_fraction, config.betas) == (1e-3, 0.25, (0.5, 0.75)) and type(config.lr) is float
    json.dumps(dataclasses.asdict(config))  # (what the checkpoint records)
    x = torch.rand(12, 10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(preprocess(x, **held).y, preprocess(x, **numbers).y)
    a = x.numpy()
    assert np.array_equal(farbman(a, lambdas=[torch.tensor(0.125), np.array(0.5)], alpha=torch.tensor(1.2),
                                  gains=[np.float64(2.0), torch.tensor(1.5)]),
                          farbman(a, lambdas=[0.125, 0.5], alpha=torch.tensor(1.2).item(), gains=[2.0, 1.5]))  # fmt: skip
    assert np.array_equal(clahe(a, tiles=2, clip=np.array(0.25)), clahe(a, tiles=2, clip=0.25))
    with pytest.raises(ValueError, match=r"^XVertNet: alpha must be a number or a 0-dim tensor of one; this tensor "
                                         r"has shape \(1,\)$"):  # fmt: skip
        XVertNet([XVertNetStage(width=1, depth=1)], alpha=torch.tensor([1.1]))
    with pytest.raises(ValueError, match=r"^preprocess: lam must be a number or a 0-dim tensor or array of one; "
                                         r"this array has shape \(2,\)$"):  # fmt: skip
        preprocess(x, lam=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match=r"^TrainConfig: eps is a tensor that requires grad, but TrainConfig has no "
                                         r"gradient in eps: give eps.detach\(\) \(or a number\)$"):  # fmt: skip
        TrainConfig(eps=torch.tensor(1e-3, requires_grad=True))
    with pytest.raises(ValueError, match=r"^farbman: alpha must be a finite number > 0, got nan$"):
        farbman(a, alpha=torch.tensor(float("nan")))  # (read as its number, then checked as one)
    # whole numbers alike (whole_number): TrainConfig(epochs_gc=torch.tensor(3)) and clahe(tiles=torch.tensor(2))
    # were refused ("tiles must be a whole number >= 1 ..., got tensor(2)") while the floats beside them were read
    counts = TrainConfig(epochs_gc=torch.tensor(3), batch_size=np.array(4))
    assert (counts.epochs_gc, counts.batch_size) == (3, 4) and type(counts.epochs_gc) is int
    json.dumps(dataclasses.asdict(counts))
    assert np.array_equal(clahe(a, tiles=torch.tensor(2), clip=0.25), clahe(a, tiles=2, clip=0.25))
    with pytest.raises(ValueError, match=r"^clahe: tiles must be a whole number >= 1 \(contextual regions per side\), "
                                         r"got tensor\(2\.5000\)$"):  # fmt: skip
        clahe(a, tiles=torch.tensor(2.5))  # (a whole number's rule, on the number read)
    with pytest.raises(ValueError, match=r"^clahe: tiles must be a number or a 0-dim tensor of one; this tensor has "
                                         r"shape \(1,\)$"):  # fmt: skip
        clahe(a, tiles=torch.tensor([2]))


def test_an_array_of_several_values_is_refused_with_its_shape():
    # wls(lam=np.array([0.5, 0.6])) said "(a tensor: give lam.item())": not a tensor, and .item() fails on it
    with pytest.raises(ValueError, match=r"^wls: lam must be a number or a 0-dim tensor or array of one; this array "
                                         r"has shape \(2,\)$"):  # fmt: skip
        wls(torch.rand(8, 6).double(), method="torch", lam=np.array([0.5, 0.6]))


def test_nan_and_infinities_are_counted_and_told_how_to_fill():
    """Said "image contains 2 NaN or infinite value(s)", where preprocess and find_spine name the fix."""
    image = torch.full((6, 7), 0.5)
    image[1, 2], image[4, 5] = float("nan"), -float("inf")
    for given in (image, image.numpy()):
        with pytest.raises(ValueError) as info:
            wls(given)
        assert str(info.value) == ("wls: image contains 2 NaN or infinite values: replace them first, e.g. "
                                   "np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0) (torch.nan_to_num for a "
                                   "tensor)")  # fmt: skip


def test_a_nan_residual_warns(monkeypatch):
    from xvertfast.ops import wls_reference

    monkeypatch.setattr(wls_reference, "solve_reference",
                        lambda img, *args: (torch.full_like(img, float("nan")), 3, float("nan")))  # fmt: skip
    with pytest.warns(RuntimeWarning, match="relative residual nan"):
        wls(torch.rand(8, 8), method="torch")


@pytest.mark.parametrize("method", METHODS)
def test_non_convergence_warns_with_residual(seed, method):
    x = torch.rand(40, 40)
    with pytest.warns(RuntimeWarning, match=r"did not reach rtol=1e-10 in 2 iterations \(relative residual"):
        solve(x, method, rtol=1e-10, maxiter=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_numpy_big_endian_and_read_only_inputs(seed, dtype):
    # a big-endian array gave torch's raw "non-native byte order" error; a read-only one
    # (np.load(mmap_mode="r"), a decoded buffer) PyTorch's "not writable" UserWarning
    rng = np.random.default_rng(seed)
    image = rng.random((3, 20, 17)).astype(dtype)
    want = wls(image)
    big = image.astype(np.dtype(dtype).newbyteorder(">"))
    read_only = image.copy()
    read_only.setflags(write=False)
    strided_read_only = np.repeat(image, 2, axis=-1)[..., ::2]
    strided_read_only.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for variant in (big, read_only, strided_read_only, big[1], read_only[1]):
            got = wls(variant)
            assert got.dtype == want.dtype and got.dtype.isnative
            np.testing.assert_array_equal(got, want if variant.ndim == 3 else want[1])
    assert not read_only.flags.writeable  # the caller's array is left as it was


def _fake_cuda_build(monkeypatch, *, extension_loaded=True, compiled=True, runs=False):
    """The wls module's view of the extension on a GPU, without one: loaded or not, CUDA kernels
    compiled or not, and whether they run on the GPU asked about."""
    module = importlib.import_module("xvertfast.ops.wls")
    monkeypatch.setattr(module, "has_extension", lambda: extension_loaded)
    monkeypatch.setattr(module, "cuda_kernels_available", lambda: extension_loaded and compiled)
    monkeypatch.setattr(module, "cuda_kernels_run_on", lambda device: extension_loaded and compiled and runs)
    monkeypatch.setattr(module, "cuda_glue_error", lambda: None)
    monkeypatch.setattr(module, "_host_round_trip_warned", False)
    return module


def test_auto_on_a_gpu_the_kernels_cannot_run_on_takes_the_cpu_solver(monkeypatch):
    # it took the PyTorch solver on the GPU, silently, many times slower than the C++ one
    module = _fake_cuda_build(monkeypatch, compiled=False)
    on_gpu = types.SimpleNamespace(device=torch.device("cuda", 0))
    with pytest.warns(RuntimeWarning, match=r"cannot run on cuda:0 \(.*built without them.*\); method='auto' .* C\+\+ CPU solver"):
        assert module._resolve("auto", on_gpu) == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per process
        assert module._resolve("auto", on_gpu) == "cpu"
        assert module._resolve("torch", on_gpu) == "torch"  # asked for: kept
        with pytest.raises(ValueError, match="method='cpu' needs a CPU tensor"):
            module._resolve("cpu", on_gpu)


@pytest.mark.parametrize("case", ["architecture", "cpu_torch_build"])
def test_auto_on_a_gpu_the_kernels_cannot_serve_warns_once_in_all(monkeypatch, case):
    # the extension's warning (why, and what wls does) came with a second one from wls saying the same
    from xvertfast import _extension

    module = importlib.import_module("xvertfast.ops.wls")
    monkeypatch.setattr(_extension, "extension", lambda: BuiltWithNvcc(torch_cuda=case == "architecture"))
    monkeypatch.setattr(_extension, "_glue_warned", False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: (7, 5))  # a T4
    if case == "cpu_torch_build":
        monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(module, "has_extension", lambda: True)
    monkeypatch.setattr(module, "_host_round_trip_warned", False)
    _extension._runs_on.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert module._resolve("auto", types.SimpleNamespace(device=torch.device("cuda", 0))) == "cpu"
    finally:
        _extension._runs_on.cache_clear()
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert _extension.GPU_FALLBACK in str(caught[0].message)
    assert ("compute capability 7.5" if case == "architecture" else "built against a CPU build of torch") in str(caught[0].message)


def test_auto_on_a_gpu_elsewhere(monkeypatch):
    on_gpu = types.SimpleNamespace(device=torch.device("cuda", 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _fake_cuda_build(monkeypatch, runs=True)._resolve("auto", on_gpu) == "cuda"
        assert _fake_cuda_build(monkeypatch, extension_loaded=False)._resolve("auto", on_gpu) == "torch"
        assert _fake_cuda_build(monkeypatch)._resolve("auto", torch.zeros(2, 2)) == "cpu"


GLUE = ("the extension was built against a CPU build of torch, this torch has CUDA 12.4: its CUDA kernels lack "
        "the device guard and stream, so they are not used. Rebuild it with `pip install --no-build-isolation .`")


def test_method_cuda_says_why_the_kernels_cannot_be_used(monkeypatch):
    """Kernels compiled against a CPU torch, loaded by a CUDA torch: the error says so (it said they
    needed nvcc at build time, which they had); without them compiled it still says nvcc; built for
    other GPUs, it names their architectures and this GPU's (it said only "not built for this GPU's
    architecture (see the warning)")."""
    from xvertfast import _extension

    class WithoutCudaKernels(BuiltWithNvcc):
        def cuda_compiled(self):
            return False

    on_gpu = types.SimpleNamespace(device=torch.device("cuda", 0))
    monkeypatch.setattr(_extension, "cuda_kernels_run_on", lambda device: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    for method in ("cuda", "cupy"):  # (not a parameter: a "cuda" id marks a test GPU-only)
        monkeypatch.setattr(_extension, "extension", lambda: BuiltWithNvcc(torch_cuda=False))
        monkeypatch.setattr(_extension, "cuda_glue_error", lambda: GLUE)
        with pytest.raises(RuntimeError) as info:
            module_resolve(method, on_gpu)
        text = str(info.value)
        assert f"method={method!r} on cuda:0: the compiled CUDA kernels cannot be used: {GLUE}" in text
        assert "nvcc" not in text
        monkeypatch.setattr(_extension, "cuda_glue_error", lambda: None)
        monkeypatch.setattr(_extension, "extension", lambda: WithoutCudaKernels(torch_cuda=True))
        with pytest.raises(RuntimeError, match=r"built without its CUDA kernels \(no nvcc at build time"):
            module_resolve(method, on_gpu)
        monkeypatch.setattr(_extension, "extension", lambda: BuiltWithNvcc(torch_cuda=True))
        with pytest.raises(RuntimeError, match=rf"method={method!r} on cuda:0: the CUDA kernels were built for "
                                               r"sm_80,sm_90,compute_90, which GPU 0 \(compute capability 7\.5\) "
                                               r"cannot run"):  # fmt: skip
            module_resolve(method, on_gpu)


def module_resolve(method, x):
    return importlib.import_module("xvertfast.ops.wls")._resolve(method, x)


@pytest.mark.cuda
def test_auto_host_round_trip_on_a_real_gpu(seed, monkeypatch):
    _fake_cuda_build(monkeypatch, compiled=False)  # as if the build had no CUDA kernels
    x = mixed_batch(3, 40, 33).cuda()
    with pytest.warns(RuntimeWarning, match="C\\+\\+ CPU solver"):
        got, info = wls(x, return_info=True)
    assert info.method == "cpu" and got.device == x.device and got.dtype == x.dtype
    torch.testing.assert_close(got.cpu(), wls(x.cpu(), method="cpu"), rtol=0, atol=0)
    assert wls(x[0]).device == x.device


# the audit's cases: float32 stopped after 6-8 iterations at true residuals of 2e-4 to 7e-2
LARGE_COUPLINGS = [(1e3, 1e-3), (1e4, 1e-2), (1e5, 0.1), (1e6, 1.0), (1e4, 1.0)]


@needs_ext
@pytest.mark.parametrize("lam, eps", LARGE_COUPLINGS)
@pytest.mark.parametrize("size", [24, 96])
def test_float32_at_large_lam_reaches_rtol(seed, lam, eps, size):
    image = torch.rand(size, size, generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "did not reach rtol"
        got, info = wls(image, lam=lam, eps=eps, return_info=True)
    assert got.dtype == torch.float32
    # (float32 stops above rtol at these couplings, and the solve goes again in float64: the floor
    # was measured at >= 1.46x rtol over 1e5 images, not proven, so float32 reaching rtol passes too;
    # the float64 rerun itself is test_float64_again_only_for_the_images_that_need_it's)
    assert info.residual[0] <= 1e-4 and info.precision[0] in ("float32", "float64"), info
    want = wls(image.double(), lam=lam, eps=eps, method="direct")
    assert (got.double() - want).abs().max() <= 1e-4


@needs_ext
def test_float64_again_only_for_the_images_that_need_it(seed):
    # a smooth ramp converges in float32 at lam 1e4, eps 1; noise does not
    ramp = torch.linspace(0, 1, 64).expand(64, 64) * 0.5 + torch.linspace(0, 1, 64)[:, None] * 0.5
    batch = torch.stack([ramp, torch.rand(64, 64), ramp.flip(0)])
    out, info = wls(batch, lam=1e4, eps=1.0, return_info=True)
    assert info.precision == ["float32", "float64", "float32"]
    assert max(info.residual) <= 1e-4
    for k in range(3):
        one, one_info = wls(batch[k], lam=1e4, eps=1.0, return_info=True)
        assert torch.equal(out[k], one) and one_info.precision == info.precision[k:k + 1]
    # the default parameters stay in float32
    assert wls(batch, return_info=True)[1].precision == ["float32"] * 3


@needs_ext
def test_warning_says_why_the_residual_stayed_above_rtol(seed):
    image = torch.rand(24, 24)
    # couplings of 1e15: float64 rounding is the limit; maxiter is not the cause. (At lam 1e10,
    # couplings of 1e14, the floor is near rtol: 1 image of 3000 reached 9.6e-5 without a warning;
    # at 1e12 none went below 8.3e-3, each stopped within 30 of the 200 iterations)
    with pytest.warns(RuntimeWarning, match=r"is float64 rounding, not a failed solve: .* more iterations cannot "
                                            r"help") as caught:  # fmt: skip
        wls(image, lam=1e11, eps=1e-4)
    assert all("raise maxiter" not in str(w.message) for w in caught)
    with pytest.warns(RuntimeWarning, match=r"in 1 iterations \(relative residual .*\), maxiter; raise maxiter"):
        wls(image, maxiter=1, rtol=1e-8)


def test_meta_tensors_are_refused_by_name():
    # torch's "Tensor.item() cannot be called on meta tensors" came out of the input check
    with pytest.raises(ValueError, match="wls: image is on the meta device"):
        wls(torch.empty(4, 4, device="meta"))


@pytest.mark.parametrize("method", ["torch", "direct", *(["cpu"] if has_extension() else [])])
@pytest.mark.parametrize("params", [{"lam": 1e300}, {"lam": 1e13}, {"lam": 1e12}, {"eps": 1e-20}])
def test_couplings_beyond_float64_are_refused_naming_lam_and_eps(method, params):
    # lam=1e300 warned 'relative residual nan; check the input', blaming a fine image; at
    # lam / eps 1e18 direct returned values 5e3 off without a word and torch a Cholesky error
    with pytest.raises(ValueError, match=r"wls: lam / eps = .* is beyond what float64 can solve .* lower lam or "
                                         r"raise eps"):  # fmt: skip
        wls(torch.rand(8, 8).double(), method=method, **params)
    # (1e16 is refused since on quantised images cpu gave NaN there, direct values 1e29 off)
    with pytest.warns(RuntimeWarning, match="may be off by about"):  # 1e15: solved
        assert wls(torch.rand(8, 8).double(), lam=1e11, eps=1e-4, method="direct").isfinite().all()


def quantised_image(seed: int, size: int = 32) -> torch.Tensor:
    """8-bit grey levels: equal neighbours (0.4% of pairs here, 16% on X-rays) take the full
    coupling lam / eps, where continuous random values have none."""
    return (torch.rand(size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 255).round() / 255


@pytest.mark.parametrize("method", ["direct", "torch"])
def test_direct_and_torch_warn_where_float64_rounding_may_put_them_beyond_rtol(seed, method):
    # at lam / eps 1e15 on such images direct was 3e-3 to 2e-2 off and torch 8e-3 to 3e-2 (torch
    # reporting a residual below rtol), over 12 seeds, without a word; the reference, lam / eps 8e9,
    # is a float64 direct solve 1e-16 * 8e9 = 8e-7 from exact, and its system ~1e-9 from this one
    image = quantised_image(seed)
    want = wls(image, lam=0.8, eps=1e-10, method="direct")
    with pytest.warns(RuntimeWarning, match=rf"wls: lam / eps = 1e\+15 \(lam=0.8, eps=8e-16\): the result of "
                                            rf"method='{method}' may be off by about 1e-16 \* lam / eps = 0.1, more "
                                            r"than rtol=0.0001, on images with equal neighbouring values"):  # fmt: skip
        got = wls(image, lam=0.8, eps=0.8 / 1e15, method=method)
    assert 1e-4 < float((got - want).abs().max()) < 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1e-16 * 8e11 is below rtol: no warning
        wls(image, lam=0.8, eps=1e-12, method=method)
        wls(image, lam=0.8, eps=1e-12, method=method, rtol=1e-3)


def _warned_at(call, match: str) -> list[str]:
    """The file names the RuntimeWarnings matching ``match`` that ``call()`` raises point at."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    found = [w.filename for w in caught if issubclass(w.category, RuntimeWarning) and re.search(match, str(w.message))]
    assert found, [str(w.message) for w in caught]
    return found


def test_wls_warnings_point_at_the_callers_line(seed):
    """The rounding warning had stacklevel=3, right for a direct call of wls, while one through
    preprocess (and so enhance) pointed into xvertfast/preprocess/inputs.py. It and the
    not-converged warning (stacklevel=2, likewise) now name the first line outside xvertfast."""
    from xvertfast.preprocess import preprocess

    image = quantised_image(seed)
    rounding = "may be off by about"
    assert set(_warned_at(lambda: wls(image, lam=0.8, eps=0.8 / 1e15, method="direct"), rounding)) == {__file__}
    assert set(_warned_at(lambda: preprocess(image.float(), lam=0.8, eps=0.8 / 1e15, method="direct"),
                          rounding)) == {__file__}  # fmt: skip
    assert set(_warned_at(lambda: wls(image, method="torch", maxiter=1), "did not reach rtol")) == {__file__}


def test_the_models_warnings_point_at_the_callers_line(seed, monkeypatch):
    """XVertNet.enhance is a ``@torch.no_grad()`` method and ``model(xp, y)`` goes through
    ``nn.Module.__call__``: the not-converged warning of the guidance between its stages named
    torch's utils/_contextlib.py, the decorator's wrapper, for both. It names this file now."""
    from xvertfast.model import XVertNet, XVertNetStage

    monkeypatch.setattr(importlib.import_module("xvertfast.ops.wls"), "DEFAULT_MAXITER", 1)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    xp, y = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    assert set(_warned_at(lambda: model.enhance(xp, y), "did not reach rtol")) == {__file__}
    assert set(_warned_at(lambda: model(xp, y), "did not reach rtol")) == {__file__}


def test_the_models_warnings_point_at_the_callers_line_where_torch_s_files_were_compiled_elsewhere(seed, monkeypatch):
    """torch's frames were told by its modules' ``__file__``, where they were imported from; their
    frames name where they were compiled, which differs in an install moved since (a copied venv,
    a container layer): the warnings named torch's module.py again. Told by their code's names."""
    from xvertfast.model import XVertNet, XVertNetStage

    for name in ("torch.nn.modules.module", "torch.utils._contextlib"):  # (as imported from a moved install)
        monkeypatch.setattr(sys.modules[name], "__file__", "/moved/site-packages/" + name.replace(".", "/") + ".py")
    monkeypatch.setattr(importlib.import_module("xvertfast.ops.wls"), "DEFAULT_MAXITER", 1)
    model = XVertNet([XVertNetStage(4, 2), XVertNetStage(4, 2)]).eval()
    xp, y = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    assert set(_warned_at(lambda: model.enhance(xp, y), "did not reach rtol")) == {__file__}
    assert set(_warned_at(lambda: model(xp, y), "did not reach rtol")) == {__file__}


@needs_ext
def test_cpu_says_its_residual_is_rounding_where_lam_over_eps_makes_it_so(seed):
    # the cpu solver stays accurate at lam / eps 1e15 (within rtol over 12 seeds, as at 8e9), but
    # its true residual, evaluated in float64, cannot go below ~1e-16 * lam / eps (1e-2 measured):
    # it warned 'did not reach rtol ... raise rtol, or lower the couplings', implying a failure
    image = quantised_image(seed)
    want = wls(image, lam=0.8, eps=1e-10, method="direct")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = wls(image, lam=0.8, eps=0.8 / 1e15, method="cpu")
    said = [str(w.message) for w in caught]
    assert said and all(re.match(r"wls: image 0: its relative residual .* is float64 rounding, not a failed solve: at "
                                 r"couplings up to lam / eps = 1e\+15 \(lam=0.8, eps=8e-16\) the residual cannot be "
                                 r"evaluated closer than about 1e-16 \* lam / eps = 0.1", m) for m in said), said
    assert rel_err(got, want) <= 2 * stopping_bound(image, want, torch.float64)
