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


def pyamg_solve(x: np.ndarray, rtol: float = 1e-4) -> np.ndarray:
    """Ruge-Stueben AMG-preconditioned CG (pyamg), setup included: a CHOLMOD-free baseline."""
    import pyamg
    import torch

    from xvertfast.ops.wls_direct import system_matrix

    A = system_matrix(torch.from_numpy(x), *PARAMS).tocsr()
    ml = pyamg.ruge_stuben_solver(A)
    return ml.solve(x.ravel().astype(np.float64), tol=rtol, accel="cg").reshape(x.shape)


def scipy_direct(x: np.ndarray) -> np.ndarray:
    """SciPy sparse LU (SuperLU, MMD ordering): the other CHOLMOD-free baseline."""
    import torch

    from xvertfast.ops.wls_direct import solve_direct

    return solve_direct(torch.from_numpy(x).double(), *PARAMS).numpy()


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
