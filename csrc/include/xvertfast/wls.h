// Per-point math of the WLS (Farbman et al. 2008) system and its multigrid.
//
// System: (I + L_a) g = x on an H x W grid, L_a the graph Laplacian of the
// 4-neighbour edges with weight a_pq = lam / (|l_q - l_p|^alpha + eps),
// l = log(x + 1e-4), natural boundary. Grids are stored padded with a ring of
// zeros (row stride ld = W + 2), so stencil loops need no boundary branches:
// couplings to the padding are zero by construction.
//
// A level's operator is a symmetric 9-point stencil: c (diagonal), d (row sum) and the
// couplings e, s, se, sw of each point to its east, south, south-east and
// south-west neighbours; the other four are read from the neighbour (w = e of
// the west point, n = s of the north point, nw = se of the north-west point,
// ne = sw of the north-east point). The finest level is 5-point (se = sw = 0).
// xvertfast/ops/wls_reference.py is the pure-PyTorch statement of all of it.
#pragma once

#include <cmath>

#include "common.h"
#include "float_math.h"

namespace xvf {
namespace wls {

// Offset inside the log of the guide (DESIGN.md: not machine epsilon).
constexpr double kLogOffset = 1e-4;
// Grids with at most this many points are solved by dense Cholesky. Kept small because the
// factorisation and the solves run one image per thread on a GPU: n^3 / 6 dependent
// operations per setup and n^2 per V-cycle, 2.8M and 65K at 256 points, 44K and 4K at 64.
// On the CPU 64 and 256 measured the same, with the same iterations on all 18 cxr-dev images.
constexpr int64_t kCoarsestPoints = 64;

// Logarithm and exponential in T's own precision, the same on host and device: float32
// evaluates the branch-free polynomials of float_math.h (its setup loops then vectorise),
// float64 calls the math library (unqualified log(float) on the host would be the double
// function).
XVF_HD float log_t(float v) { return log_float(v); }
XVF_HD float exp_t(float v) { return exp_float(v); }
#if defined(__CUDA_ARCH__)
XVF_HD double log_t(double v) { return log(v); }
XVF_HD double exp_t(double v) { return exp(v); }
#else
inline double log_t(double v) { return std::log(v); }
inline double exp_t(double v) { return std::exp(v); }
#endif

template <typename T>
XVF_HD T log_guide(T v) {
  return log_t(v + T(kLogOffset));
}

// lam / (|la - lb|^alpha + eps): the edge weight between two log-guide values.
template <typename T>
XVF_HD T edge_weight(T la, T lb, T lam, T alpha, T eps) {
  const T d = fabs(lb - la);
  return lam / ((d > T(0) ? exp_t(alpha * log_t(d)) : T(0)) + eps);
}

// (A x)_p for a 5-point stencil, p an index into padded arrays with stride ld,
// in "row sum" form: d_p x_p + sum_q a_pq (x_q - x_p), with d the row sum of A.
// Written so, float32 keeps its accuracy: the couplings reach 1/eps = 1e4 and
// c_p x_p - sum |a_pq| x_q would cancel to ~1e-3 relative error, where the
// differences x_q - x_p are small exactly when the couplings are large.
// X is the vector type (it may be wider than the stencil's T).
template <typename T, typename X = T>
XVF_HD X apply5(X d, const T* e, const T* s, const X* x, int64_t p, int64_t ld) {
  const X xp = x[p];
  return d * xp + e[p] * (x[p + 1] - xp) + e[p - 1] * (x[p - 1] - xp) +
         s[p] * (x[p + ld] - xp) + s[p - ld] * (x[p - ld] - xp);
}

// (A x)_p for a 9-point stencil, in the same row-sum form.
template <typename T>
XVF_HD T apply9(T d, const T* e, const T* s, const T* se, const T* sw, const T* x, int64_t p,
                int64_t ld) {
  const T xp = x[p];
  return apply5(d, e, s, x, p, ld) + se[p] * (x[p + ld + 1] - xp) +
         se[p - ld - 1] * (x[p - ld - 1] - xp) + sw[p] * (x[p + ld - 1] - xp) +
         sw[p - ld + 1] * (x[p - ld + 1] - xp);
}

// Interpolation weights lie in [0, 1] and are stored as 16-bit fixed point: an absolute step
// of 1/65535 (~1.5e-5) is far below what a preconditioner notices, and the weights take
// half the memory of float32. Setup rounds each weight once and every later use (the cell
// centres' weights, Galerkin products, row sums, transfers) reads the rounded value, so each
// coarse operator is exactly P^T A P for the P the V-cycle applies.
constexpr double kWeightScale = 65535.0;
template <typename T>
XVF_HD uint16_t encode_weight(T w) {
  return uint16_t(w * T(kWeightScale) + T(0.5));
}
template <typename T>
XVF_HD T decode_weight(uint16_t q) {
  return T(q) * T(1.0 / kWeightScale);
}

// Interpolation weights of a fine point from the sums g[k] of its couplings
// that lead to each of its n coarse neighbours, `rest` being the sum of its
// other couplings and diagonal (so the row sum is rest + sum g):
//   w[k] = -min(g[k], 0) / (max(row sum, 0) - sum_k min(g[k], 0)).
// Without positive couplings and with a non-negative row sum this is Dendy's
// black-box multigrid formula; Galerkin stencils may hold positive couplings
// and slightly negative row sums, which it drops instead of dividing by a
// vanishing pivot. Weights are in [0, 1] and sum to at most 1.
template <typename T, int n>
XVF_HD void interpolation_weights(const T* g, T rest, T* w) {
  T row = rest, neg = T(0);
  for (int k = 0; k < n; ++k) {
    row += g[k];
    neg += g[k] < T(0) ? g[k] : T(0);
  }
  T den = (row > T(0) ? row : T(0)) - neg;
  if (!(den > T(0))) den = T(1);  // no coupling at all: every numerator is 0 too
  for (int k = 0; k < n; ++k) w[k] = (g[k] < T(0) ? -g[k] : T(0)) / den;
}

}  // namespace wls
}  // namespace xvf
