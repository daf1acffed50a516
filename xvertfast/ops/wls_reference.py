"""Pure-PyTorch WLS solver: the reference of the compiled one, and ``method="torch"``.

Solves the Farbman et al. 2008 weighted-least-squares smoothing system
``(I + L_a) g = x`` where ``L_a`` is the graph Laplacian of the 4-neighbour edges
with weights ``a_pq = lam / (|l_q - l_p|^alpha + eps)``, ``l = log(x + 1e-4)``,
and no edge leaves the image (natural boundary).

The system is badly conditioned (edge weights span 1 to 1/eps), so plain or
Jacobi-preconditioned CG needs about a thousand iterations. This solver uses
conjugate gradients preconditioned by one symmetric V-cycle of a black-box
multigrid (Dendy 1982): standard 2:1 coarsening in both directions,
operator-dependent interpolation built from the stencil (it follows the
edges), Galerkin coarse operators (9-point stencils), alternating zebra-line
Gauss-Seidel smoothing (robust to the strong local anisotropy of image
edges), and a dense Cholesky solve on the coarsest grid. On the finest level a
damped Jacobi step on the "plateaus" (:class:`Plateaus`: sets of equal
neighbours, whose couplings are the strongest, 1/eps) opens and closes the
cycle: geometric interpolation cannot represent their constant modes, and
8-bit radiographs are full of them. CG starts from the image. On the
cxr-dev radiographs it reaches a relative residual of 1e-4 in 7-12 iterations.

Every array is a stencil on the grid: ``st.c`` is the diagonal and ``st.e``,
``st.s``, ``st.se``, ``st.sw`` the couplings of each point to its east,
south, south-east and south-west neighbour (the other four follow by symmetry).
The compiled solver (csrc/include/xvertfast/wls_multigrid.h) implements exactly these steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "DEFAULT_LAM",
    "DEFAULT_ALPHA",
    "DEFAULT_EPS",
    "LOG_OFFSET",
    "edge_weights",
    "fine_stencil",
    "Stencil",
    "Hierarchy",
    "solve_reference",
    "relative_residual",
]

#: The WLS parameters of DESIGN.md §1 (Farbman et al. 2008's lam and alpha; eps guards the
#: weights of equal neighbours): every default of the package and its benches comes from here.
DEFAULT_LAM = 0.8
DEFAULT_ALPHA = 1.2
DEFAULT_EPS = 1e-4
#: Offset inside the log guide: ``l = log(x + LOG_OFFSET)`` (not machine epsilon, see DESIGN.md).
LOG_OFFSET = 1e-4
#: Grids with at most this many points are solved directly (kCoarsestPoints in csrc/include/xvertfast/wls.h).
COARSEST_POINTS = 64

_OFFSETS = {"e": (0, 1), "s": (1, 0), "se": (1, 1), "sw": (1, -1)}


def shift(a: torch.Tensor, di: int, dj: int) -> torch.Tensor:
    """``b[i, j] = a[i + di, j + dj]``, zero where that falls outside."""
    h, w = a.shape
    b = torch.zeros_like(a)
    i0, i1 = max(0, -di), h - max(0, di)
    j0, j1 = max(0, -dj), w - max(0, dj)
    if i1 > i0 and j1 > j0:
        b[i0:i1, j0:j1] = a[i0 + di : i1 + di, j0 + dj : j1 + dj]
    return b


def edge_weights(x: torch.Tensor, lam: float, alpha: float, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (times lam) of the horizontal [H, W-1] and vertical [H-1, W] edges of image x."""
    log = torch.log(x + LOG_OFFSET)
    wx = lam / (torch.abs(log[:, 1:] - log[:, :-1]) ** alpha + eps)
    wy = lam / (torch.abs(log[1:, :] - log[:-1, :]) ** alpha + eps)
    return wx, wy


@dataclass
class Stencil:
    """Symmetric 9-point stencil: diagonal c and the couplings to E, S, SE, SW neighbours."""

    c: torch.Tensor
    e: torch.Tensor
    s: torch.Tensor
    se: torch.Tensor
    sw: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.c.shape)

    def full(self) -> dict[tuple[int, int], torch.Tensor]:
        """All nine couplings a(p, p + offset) as arrays over p."""
        out = {(0, 0): self.c}
        for name, (di, dj) in _OFFSETS.items():
            a = getattr(self, name)
            out[(di, dj)] = a
            out[(-di, -dj)] = shift(a, -di, -dj)
        return out

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.zeros_like(x)
        for (di, dj), a in self.full().items():
            y += a * shift(x, di, dj)
        return y

    def dense(self) -> torch.Tensor:
        h, w = self.shape
        n = h * w
        m = torch.zeros(n, n, dtype=self.c.dtype, device=self.c.device)
        idx = torch.arange(n, device=self.c.device).reshape(h, w)
        for (di, dj), a in self.full().items():
            i0, i1 = max(0, -di), h - max(0, di)
            j0, j1 = max(0, -dj), w - max(0, dj)
            if i1 > i0 and j1 > j0:
                r = idx[i0:i1, j0:j1].reshape(-1)
                c = idx[i0 + di : i1 + di, j0 + dj : j1 + dj].reshape(-1)
                m[r, c] += a[i0:i1, j0:j1].reshape(-1)
        return m


def fine_stencil(wx: torch.Tensor, wy: torch.Tensor) -> Stencil:
    """The 5-point stencil of ``I + L_a`` from the edge weights."""
    h, w = wy.shape[0] + 1, wx.shape[1] + 1
    z = torch.zeros(h, w, dtype=wx.dtype, device=wx.device)
    e, s, c = z.clone(), z.clone(), torch.ones_like(z)
    e[:, :-1] = -wx
    s[:-1, :] = -wy
    c[:, :-1] += wx
    c[:, 1:] += wx
    c[:-1, :] += wy
    c[1:, :] += wy
    return Stencil(c, e, s, z.clone(), z.clone())


def _positive(den: torch.Tensor) -> torch.Tensor:
    return torch.clamp(den, min=torch.finfo(den.dtype).tiny)


WEIGHT_SCALE = 65535.0


def fixed_point_weight(w: torch.Tensor) -> torch.Tensor:
    """A weight in [0, 1] rounded to the nearest multiple of 1/65535 (the solver's 16-bit storage)."""
    return torch.floor(w * WEIGHT_SCALE + 0.5) * (1.0 / WEIGHT_SCALE)


def interpolation(st: Stencil) -> torch.Tensor:
    """Operator-dependent interpolation weights [4, H, W].

    Fine point (i, j) takes from the coarse points (i//2 + a, j//2 + b), a, b in {0, 1},
    with weight w[2a + b]. Coarse points (even, even) copy; points between two coarse
    points collapse the stencil across the line joining them (Dendy); cell centres
    take from their four corners through the stencil and their edge neighbours' weights.
    """
    A = st.full()
    h, w = st.shape
    ii = torch.arange(h, device=st.c.device).view(h, 1)
    jj = torch.arange(w, device=st.c.device).view(1, w)
    even_i, even_j = (ii % 2 == 0), (jj % 2 == 0)
    zero = torch.zeros_like(st.c)
    # Each fine point is interpolated from the groups of couplings that lead to its
    # coarse neighbours: weight_k = -min(g_k, 0) / (max(row sum, 0) - sum_k min(g_k, 0)).
    # Without positive couplings and with a non-negative row sum this is Dendy's
    # formula; Galerkin stencils can hold positive couplings and small negative row
    # sums, which this form drops (keeping weights in [0, 1], summing to at most 1)
    # instead of dividing by a vanishing or negative pivot.
    # The weights are rounded to 16-bit fixed point as the compiled solver stores them
    # (csrc/include/xvertfast/wls.h), and the centres are computed from the rounded edge weights.
    def weights_from(groups: list[torch.Tensor], rest: torch.Tensor) -> list[torch.Tensor]:
        row_sum = rest + sum(groups)
        neg = [g.clamp(max=0) for g in groups]
        den = _positive(row_sum.clamp(min=0) - sum(neg))
        return [fixed_point_weight(-g / den) for g in neg]

    # Between horizontal coarse neighbours (even row, odd column): collapse vertically.
    west, east = weights_from(
        [A[0, -1] + A[-1, -1] + A[1, -1], A[0, 1] + A[-1, 1] + A[1, 1]], A[0, 0] + A[-1, 0] + A[1, 0]
    )
    # Between vertical coarse neighbours (odd row, even column): collapse horizontally.
    north, south = weights_from(
        [A[-1, 0] + A[-1, -1] + A[-1, 1], A[1, 0] + A[1, -1] + A[1, 1]], A[0, 0] + A[0, -1] + A[0, 1]
    )
    xe = even_i & ~even_j
    ye = ~even_i & even_j
    west, east = torch.where(xe, west, zero), torch.where(xe, east, zero)
    north, south = torch.where(ye, north, zero), torch.where(ye, south, zero)
    # Cell centres (odd, odd): through the corners and the four edge neighbours' weights.
    nw, ne, sw, se = weights_from(
        [
            A[-1, -1] + A[-1, 0] * shift(west, -1, 0) + A[0, -1] * shift(north, 0, -1),
            A[-1, 1] + A[-1, 0] * shift(east, -1, 0) + A[0, 1] * shift(north, 0, 1),
            A[1, -1] + A[1, 0] * shift(west, 1, 0) + A[0, -1] * shift(south, 0, -1),
            A[1, 1] + A[1, 0] * shift(east, 1, 0) + A[0, 1] * shift(south, 0, 1),
        ],
        A[0, 0],
    )
    cc = ~even_i & ~even_j
    one = torch.ones_like(zero)
    w00 = torch.where(even_i & even_j, one, torch.where(xe, west, torch.where(ye, north, torch.where(cc, nw, zero))))
    w01 = torch.where(xe, east, torch.where(cc, ne, zero))
    w10 = torch.where(ye, south, torch.where(cc, sw, zero))
    w11 = torch.where(cc, se, zero)
    return torch.stack([w00, w01, w10, w11])


def coarse_shape(h: int, w: int) -> tuple[int, int]:
    return (h + 1) // 2, (w + 1) // 2


def prolong(P: torch.Tensor, xc: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Fine-grid values interpolated from coarse-grid values."""
    h, w = shape
    hc, wc = xc.shape
    pad = torch.zeros(hc + 1, wc + 1, dtype=xc.dtype, device=xc.device)
    pad[:hc, :wc] = xc
    ic = torch.arange(h, device=xc.device) // 2
    jc = torch.arange(w, device=xc.device) // 2
    out = torch.zeros(h, w, dtype=xc.dtype, device=xc.device)
    for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out += P[k] * pad[(ic + a)[:, None], (jc + b)[None, :]]
    return out


def restrict(P: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`prolong`."""
    h, w = r.shape
    hc, wc = coarse_shape(h, w)
    out = torch.zeros(hc + 1, wc + 1, dtype=r.dtype, device=r.device)
    ic = (torch.arange(h, device=r.device) // 2)[:, None].expand(h, w)
    jc = (torch.arange(w, device=r.device) // 2)[None, :].expand(h, w)
    for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out.index_put_((ic + a, jc + b), P[k] * r, accumulate=True)
    return out[:hc, :wc]


def galerkin(st: Stencil, P: torch.Tensor) -> Stencil:
    """Coarse stencil ``P^T A P`` (9-point), computed column by column of P."""
    h, w = st.shape
    hc, wc = coarse_shape(h, w)
    entries = {}
    # Column (I, J) of P^T A P for the coarse offsets we store: apply A to the
    # prolongation of each of a few interleaved sets of unit vectors; sets are
    # 3 apart in both directions so the 9-point results do not overlap.
    for oi in range(3):
        for oj in range(3):
            unit = torch.zeros(hc, wc, dtype=st.c.dtype, device=st.c.device)
            unit[oi::3, oj::3] = 1.0
            col = restrict(P, st.apply(prolong(P, unit, (h, w))))
            for name, (di, dj) in list(_OFFSETS.items()) + [("c", (0, 0))]:
                # entry a(p, p + d) for p = source point - d: read at p where p + d is a source
                src = torch.zeros_like(unit, dtype=torch.bool)
                src[oi::3, oj::3] = True
                mask = shift(src.to(col.dtype), di, dj) > 0  # p with p + d a source
                vals = shift(col, 0, 0)
                entries.setdefault(name, torch.zeros_like(col))
                entries[name] = torch.where(mask, vals, entries[name])
    return Stencil(entries["c"], entries["e"], entries["s"], entries["se"], entries["sw"])


def line_factors(diag: torch.Tensor, off: torch.Tensor) -> torch.Tensor:
    """Inverse pivots of the Thomas factorisation of each row's tridiagonal (diag, off, off)."""
    inv = torch.empty_like(diag)
    m = diag[:, 0]
    inv[:, 0] = 1.0 / m
    for k in range(1, diag.shape[1]):
        m = diag[:, k] - off[:, k - 1] ** 2 * inv[:, k - 1]
        inv[:, k] = 1.0 / m
    return inv


def line_solve(inv: torch.Tensor, off: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Solves each row's tridiagonal system (factored by :func:`line_factors`) for rhs d."""
    n = d.shape[1]
    y = torch.empty_like(d)
    y[:, 0] = d[:, 0] * inv[:, 0]
    for k in range(1, n):
        y[:, k] = (d[:, k] - off[:, k - 1] * y[:, k - 1]) * inv[:, k]
    for k in range(n - 2, -1, -1):
        y[:, k] = y[:, k] - off[:, k] * inv[:, k] * y[:, k + 1]
    return y


class Level:
    def __init__(self, st: Stencil):
        self.st = st
        self.shape = st.shape
        self.inv_x = line_factors(st.c, st.e)  # rows
        self.inv_y = line_factors(st.c.t(), st.s.t())  # columns, as rows of the transpose
        self.P: torch.Tensor | None = None
        self.chol: torch.Tensor | None = None

    def smooth(self, x: torch.Tensor, b: torch.Tensor, reverse: bool) -> torch.Tensor:
        """One alternating zebra-line Gauss-Seidel sweep (or its adjoint when reverse)."""
        steps = [("x", 0), ("x", 1), ("y", 0), ("y", 1)]
        for axis, parity in reversed(steps) if reverse else steps:
            r = b - self.st.apply(x)
            if axis == "x":
                rows = slice(parity, None, 2)
                x[rows] += line_solve(self.inv_x[rows], self.st.e[rows], r[rows])
            else:
                cols = slice(parity, None, 2)
                x[:, cols] += line_solve(self.inv_y[cols], self.st.s.t()[cols], r.t()[cols]).t()
        return x


#: Damping of the plateau step (csrc/include/xvertfast/wls_multigrid.h: kPlateauOmega).
PLATEAU_OMEGA = 0.7
#: Plateau edges: couplings of at least this fraction of lam / eps (kPlateauStrong).
PLATEAU_STRONG = 0.5


def plateau_threshold(lam: float, eps: float) -> float:
    """The coupling from which two pixels belong to one plateau (their grey levels are equal)."""
    return PLATEAU_STRONG * lam / eps


class Plateaus:
    """The plateau aggregates of a fine 5-point stencil and their damped Jacobi step.

    A plateau is a connected set of pixels joined by edges of weight >= ``strong`` (the
    compiled solver uses half of lam / eps); sets of one pixel are left out. The step is
    ``x + omega P D^-1 P^T (b - A x)``, P constant on each plateau, D = diag(P^T A P).
    """

    def __init__(self, st: Stencil, strong: float):
        import numpy as np
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        h, w = st.shape
        wx, wy = -st.e[:, :-1], -st.s[:-1, :]
        idx = np.arange(h * w).reshape(h, w)
        sx, sy = (wx >= strong).cpu().numpy(), (wy >= strong).cpu().numpy()
        rows = np.concatenate([idx[:, :-1][sx], idx[:-1, :][sy]])
        cols = np.concatenate([idx[:, 1:][sx], idx[1:, :][sy]])
        graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(h * w, h * w))
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        keep = sizes[comp] >= 2
        # number the plateaus in order of their first pixel, as the compiled solver does
        kept = np.flatnonzero(keep)
        _, first_pixel, which = np.unique(comp[kept], return_index=True, return_inverse=True)
        rank = np.empty(len(first_pixel), dtype=np.int64)
        rank[np.argsort(first_pixel)] = np.arange(len(first_pixel))
        label = np.full(h * w, -1, dtype=np.int64)
        label[kept] = rank[which.reshape(-1)]
        self.count = len(first_pixel)
        self.label = torch.from_numpy(label).reshape(h, w).to(st.c.device)
        lab = self.label
        diag = torch.zeros(self.count, dtype=st.c.dtype, device=st.c.device)
        diag.index_add_(0, lab[lab >= 0], torch.ones_like(st.c)[lab >= 0])
        for a, b_, wgt in ((lab[:, :-1], lab[:, 1:], wx), (lab[:-1, :], lab[1:, :], wy)):
            cut = a != b_
            for side in (a, b_):
                m = cut & (side >= 0)
                diag.index_add_(0, side[m], wgt[m])
        self.scale = PLATEAU_OMEGA / diag

    def step(self, st: Stencil, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.count == 0:
            return x
        r = b - st.apply(x)
        m = self.label >= 0
        sums = torch.zeros(self.count, dtype=r.dtype, device=r.device).index_add_(0, self.label[m], r[m])
        x = x.clone()
        x[m] += (sums * self.scale)[self.label[m]]
        return x


class Hierarchy:
    """The multigrid hierarchy of one system; ``vcycle(r)`` approximates ``A^-1 r``.

    With ``strong`` (the plateau threshold, lam / eps / 2 for the WLS system), the V-cycle
    starts and ends with the :class:`Plateaus` step on the finest level.
    """

    def __init__(self, st: Stencil, strong: float | None = None):
        self.plateaus = None
        h0, w0 = st.shape
        if strong is not None and h0 * w0 > COARSEST_POINTS and not (h0 == 1 and w0 == 1):
            self.plateaus = Plateaus(st, strong)
        self.levels = [Level(st)]
        while True:
            lev = self.levels[-1]
            h, w = lev.shape
            if h * w <= COARSEST_POINTS or (h == 1 and w == 1):
                lev.chol = torch.linalg.cholesky(lev.st.dense())
                break
            lev.P = interpolation(lev.st)
            self.levels.append(Level(galerkin(lev.st, lev.P)))

    def vcycle(self, b: torch.Tensor, k: int = 0) -> torch.Tensor:
        lev = self.levels[k]
        if lev.chol is not None:
            return torch.cholesky_solve(b.reshape(-1, 1), lev.chol).reshape(b.shape)
        plateaus = self.plateaus if k == 0 else None
        x = torch.zeros_like(b)
        if plateaus is not None:
            x = plateaus.step(lev.st, x, b)
        x = lev.smooth(x, b, reverse=False)
        r = b - lev.st.apply(x)
        x = x + prolong(lev.P, self.vcycle(restrict(lev.P, r), k + 1), lev.shape)
        x = lev.smooth(x, b, reverse=True)
        return x if plateaus is None else plateaus.step(lev.st, x, b)


def solve_reference(
    image: torch.Tensor,
    lam: float = DEFAULT_LAM,
    alpha: float = DEFAULT_ALPHA,
    eps: float = DEFAULT_EPS,
    rtol: float = 1e-4,
    maxiter: int = 200,
) -> tuple[torch.Tensor, int, float]:
    """Multigrid-preconditioned CG on one [H, W] image: (solution, iterations, relative residual)."""
    st = fine_stencil(*edge_weights(image, lam, alpha, eps))
    mg = Hierarchy(st, strong=plateau_threshold(lam, eps) if lam > 0 else None)
    b = image
    x = b.clone()  # start from the image, as the compiled solver does
    r = b - st.apply(x)
    nb = torch.linalg.vector_norm(b).item()
    if nb == 0.0:
        return torch.zeros_like(b), 0, 0.0
    if torch.linalg.vector_norm(r).item() <= rtol * nb:
        return x, 0, torch.linalg.vector_norm(r).item() / nb
    z = mg.vcycle(r)
    p = z.clone()
    rz = torch.sum(r * z)
    rel = 1.0
    for it in range(1, maxiter + 1):
        q = st.apply(p)
        step = rz / torch.sum(p * q)
        x += step * p
        r -= step * q
        rel = torch.linalg.vector_norm(r).item() / nb
        if rel <= rtol:
            return x, it, rel
        z = mg.vcycle(r)
        rz_new = torch.sum(r * z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return x, maxiter, rel


def relative_residual(image: torch.Tensor, g: torch.Tensor, lam: float, alpha: float, eps: float) -> float:
    """``||image - A g|| / ||image||`` for the system of image (0 for an all-zero image)."""
    nb = torch.linalg.vector_norm(image).item()
    if nb == 0.0:
        return 0.0
    st = fine_stencil(*edge_weights(image, lam, alpha, eps))
    return torch.linalg.vector_norm(image - st.apply(g)).item() / nb
