"""Benchmark inputs for the WLS solver: real radiographs of shared/data/cxr-dev, resized."""

from __future__ import annotations

import glob
import os

import numpy as np

from xvertfast.ops.wls_reference import DEFAULT_ALPHA, DEFAULT_EPS, DEFAULT_LAM

#: The system every WLS bench solves: the package's defaults.
PARAMS = (DEFAULT_LAM, DEFAULT_ALPHA, DEFAULT_EPS)

DATA = os.environ.get(
    "XVF_CXR_DEV", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cxr-dev")
)


def radiograph(size: int, index: int = 0) -> np.ndarray:
    """The index-th NIH image of cxr-dev at size x size, float32 in [0, 1] (bilinear resize)."""
    from PIL import Image

    paths = sorted(glob.glob(os.path.join(DATA, "nih_*.png")))
    if not paths:
        raise FileNotFoundError(f"no NIH images under {DATA} (the shared data folder)")
    im = Image.open(paths[index % len(paths)]).convert("F")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    x = np.asarray(im, dtype=np.float32)
    return (x - x.min()) / max(float(x.max() - x.min()), 1e-12)


def native(path: str) -> np.ndarray:
    """A cxr-dev image at its native size, float32 scaled to [0, 1] (``--all-images``)."""
    from PIL import Image

    x = np.asarray(Image.open(path), dtype=np.float32)
    return (x - x.min()) / max(float(x.max() - x.min()), 1e-12)


def plateau_pairs(size: int, seed: int = 0) -> np.ndarray:
    """The solver's memory worst case: every pixel in a plateau of two (random values, each
    repeated once along the row), so the plateau arrays planned for the worst case are all used.
    float32 in [0, 1)."""
    v = np.random.default_rng(seed).random((size, (size + 1) // 2)).astype(np.float32)
    return np.ascontiguousarray(np.repeat(v, 2, axis=1)[:, :size])


def assemble(x: np.ndarray):
    """The baselines' input: the sparse matrix ``I + L_a`` (CSC, float64) assembled by the
    project's Python/SciPy code (``xvertfast.ops.wls_direct.system_matrix``, one thread).
    Timed apart from the baselines' solves."""
    import torch

    from xvertfast.ops.wls_direct import system_matrix

    return system_matrix(torch.from_numpy(x), *PARAMS)


def spsolve_assembled(A, x: np.ndarray) -> np.ndarray:
    """SciPy sparse LU (SuperLU, MMD ordering, float64, one thread) on an assembled matrix:
    the solve of :func:`scipy_direct` without the assembly."""
    import scipy.sparse.linalg as spla

    g = spla.spsolve(A, x.ravel().astype(np.float64), permc_spec="MMD_AT_PLUS_A")
    return np.asarray(g).reshape(x.shape)


def pyamg_assembled(A, x: np.ndarray, rtol: float = 1e-4) -> np.ndarray:
    """Ruge-Stueben AMG-preconditioned CG (pyamg, one thread) on an assembled matrix: CSR
    conversion, AMG setup and the solve, the assembly excluded."""
    import pyamg

    ml = pyamg.ruge_stuben_solver(A.tocsr())
    return ml.solve(x.ravel().astype(np.float64), tol=rtol, accel="cg").reshape(x.shape)


def pyamg_solve(x: np.ndarray, rtol: float = 1e-4) -> np.ndarray:
    """Ruge-Stueben AMG-preconditioned CG (pyamg), assembly and setup included: a CHOLMOD-free baseline."""
    return pyamg_assembled(assemble(x), x, rtol)


def scipy_direct(x: np.ndarray) -> np.ndarray:
    """SciPy sparse LU (SuperLU, MMD ordering), assembly included: the other CHOLMOD-free
    baseline, and the float64 reference solution."""
    import torch

    from xvertfast.ops.wls_direct import solve_direct

    return solve_direct(torch.from_numpy(x).double(), *PARAMS).numpy()


def rel_err(got, want) -> float:
    """Relative L2 error of ``got`` against ``want`` (NumPy or torch, compared in float64)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-300))


def cupy_jacobi_system(x: np.ndarray):
    """The assembled system on the GPU for :func:`cupy_jacobi_cg`: (CSR matrix, Jacobi M, b), float64."""
    import cupy as cp
    import cupyx.scipy.sparse as csp
    import torch

    from xvertfast.ops.wls_direct import system_matrix

    A = csp.csr_matrix(system_matrix(torch.from_numpy(x), *PARAMS).tocsr())
    M = csp.diags(1.0 / A.diagonal())
    return A, M, cp.asarray(x.ravel(), dtype=cp.float64)


def cupy_jacobi_cg(system, rtol: float = 1e-4):
    """cupyx CG with a Jacobi preconditioner on the assembled CSR matrix (assembly not timed):
    the GPU baseline of issue #3. Returns (solution, iterations)."""
    import inspect

    import cupyx.scipy.sparse.linalg as cspl

    A, M, b = system
    count = [0]

    def step(_):
        count[0] += 1

    tol = "rtol" if "rtol" in inspect.signature(cspl.cg).parameters else "tol"
    out, _ = cspl.cg(A, b, M=M, maxiter=20000, callback=step, **{tol: rtol})
    return out, count[0]
