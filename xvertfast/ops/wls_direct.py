"""SciPy sparse direct solve of the WLS system: the float64 reference every solver is checked against.

SciPy is imported here only, so the rest of the package does not need it.
"""

from __future__ import annotations

import numpy as np
import torch

from xvertfast.ops.wls_reference import edge_weights

__all__ = ["system_matrix", "solve_direct"]


def system_matrix(image: torch.Tensor, lam: float, alpha: float, eps: float):
    """The sparse SPD matrix ``I + L_a`` (CSC, float64) of one [H, W] image."""
    import scipy.sparse as sp

    x = image.detach().to("cpu", torch.float64)
    h, w = x.shape
    wx, wy = (t.numpy() for t in edge_weights(x, lam, alpha, eps))
    idx = np.arange(h * w).reshape(h, w)
    rows = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    cols = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    vals = np.concatenate([wx.ravel(), wy.ravel()])
    lap = sp.coo_matrix((vals, (rows, cols)), shape=(h * w, h * w))
    lap = lap + lap.T
    degree = np.asarray(lap.sum(axis=1)).ravel()
    return (sp.diags(1.0 + degree) - lap).tocsc()


def solve_direct(image: torch.Tensor, lam: float, alpha: float, eps: float) -> torch.Tensor:
    """Exact (LU) solution in float64, on the image's device."""
    import scipy.sparse.linalg as spla

    h, w = image.shape
    b = image.detach().to("cpu", torch.float64).numpy().ravel()
    g = spla.spsolve(system_matrix(image, lam, alpha, eps), b, permc_spec="MMD_AT_PLUS_A")
    return torch.from_numpy(np.asarray(g).reshape(h, w)).to(image.device)
