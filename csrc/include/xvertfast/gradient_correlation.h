// Per-pixel and per-sample math of the gradient-correlation (GC) measure.
//
// GC(a, b) = (NCC(Sx a, Sx b) + NCC(Sy a, Sy b)) / 2, with Sx, Sy the 3x3 Sobel
// operators applied as a cross-correlation on the *valid* region (pixels with a
// full 3x3 neighbourhood: rows 1..H-2, columns 1..W-2), so no padding convention
// leaks into the loss. NCC is the standard normalised cross-correlation
//   NCC(A, B) = cov(A, B) / sqrt(var(A) var(B) + eps)
// (population moments over the valid region). eps guards the zero-variance case:
// a constant image gives NCC = 0 and finite gradients, never NaN.
#pragma once

#include <cmath>

#include "common.h"

namespace xvf {
namespace gc {

// Number of per-sample statistics kept between forward and backward:
// for x then y: mean_a, mean_b, var_a, var_b, cov.
constexpr int kStats = 10;
// Number of running sums per sample in the forward reduction:
// for x then y: sum ua, sum ub, sum ua^2, sum ub^2, sum ua*ub (u = g - shift).
constexpr int kSums = 10;

// Sobel responses at the pixel `p` points to; `ld` is the row stride.
// x: right column minus left column, rows weighted 1-2-1; y: bottom minus top.
template <typename T>
XVF_HD void sobel(const T* p, int64_t ld, T& gx, T& gy) {
  const T tl = p[-ld - 1], tc = p[-ld], tr = p[-ld + 1];
  const T ml = p[-1], mr = p[1];
  const T bl = p[ld - 1], bc = p[ld], br = p[ld + 1];
  // Differences of neighbours first: they cancel a common offset exactly, where summing each
  // side first rounds it in T (float32 images near 1e4 lost the low bits of their gradients).
  gx = (tr - tl) + T(2) * (mr - ml) + (br - bl);
  gy = (bl - tl) + T(2) * (bc - tc) + (br - tr);
}

// Adjoint of `sobel`: given weight maps wx, wy defined around the pixel the
// pointers point to (row stride ld), returns sum_q wx(q) dSx(q)/dp + wy(q) dSy(q)/dp.
template <typename T>
XVF_HD T sobel_adjoint(const T* wx, const T* wy, int64_t ld) {
  // d gx(q) / d p = Kx[p - q]; with q = p - (u, v): Kx[u][v] = v (2 - |u|).
  const T ax = (wx[ld - 1] + T(2) * wx[-1] + wx[-ld - 1]) -
               (wx[ld + 1] + T(2) * wx[1] + wx[-ld + 1]);
  // Ky[u][v] = u (2 - |v|).
  const T ay = (wy[-ld + 1] + T(2) * wy[-ld] + wy[-ld - 1]) -
               (wy[ld + 1] + T(2) * wy[ld] + wy[ld - 1]);
  return ax + ay;
}

// What one valid pixel's Sobel responses add to each of the kSums shifted sums, in their
// order. The GPU adds them through accumulate, the CPU's simd loop into ten scalars of its
// own; both take them from here, so both round each term alike. Returned by value and given
// the shifts as scalars: GCC vectorises the CPU loop's sums in another order (other last
// bits) when an array inside it, or a pointer to one, is handed to a function.
struct MomentTerms {
  double t[kSums];
};

template <typename T>
XVF_HD MomentTerms moment_terms(T gax, T gbx, T gay, T gby, double shift_ax, double shift_bx,
                                double shift_ay, double shift_by) {
  const double ux = double(gax) - shift_ax, vx = double(gbx) - shift_bx;
  const double uy = double(gay) - shift_ay, vy = double(gby) - shift_by;
  return {{ux, vx, ux * ux, vx * vx, ux * vx, uy, vy, uy * uy, vy * vy, uy * vy}};
}

// Accumulates one valid pixel's Sobel responses into the shifted sums. (The adds written out:
// as a loop, nvcc unrolled the GPU's pixel loop around it half as far.)
template <typename T>
XVF_HD void accumulate(double* s, T gax, T gbx, T gay, T gby, const double* shift) {
  const MomentTerms m = moment_terms(gax, gbx, gay, gby, shift[0], shift[1], shift[2], shift[3]);
  s[0] += m.t[0]; s[1] += m.t[1]; s[2] += m.t[2]; s[3] += m.t[3]; s[4] += m.t[4];
  s[5] += m.t[5]; s[6] += m.t[6]; s[7] += m.t[7]; s[8] += m.t[8]; s[9] += m.t[9];
}

// Turns one direction's shifted sums into (mean_a, mean_b, var_a, var_b, cov)
// and returns its NCC. Shifting by a sample value before summing keeps the
// one-pass moments accurate when |mean| >> std.
XVF_HD double finalize_direction(const double* s, double shift_a, double shift_b,
                                 double n, double eps, double* stats) {
  if (n <= 0.0) {
    stats[0] = stats[1] = stats[2] = stats[3] = stats[4] = 0.0;
    return 0.0;
  }
  const double ma = s[0] / n, mb = s[1] / n;
  double va = s[2] / n - ma * ma, vb = s[3] / n - mb * mb;
  va = va > 0.0 ? va : 0.0;
  vb = vb > 0.0 ? vb : 0.0;
  const double cov = s[4] / n - ma * mb;
  stats[0] = ma + shift_a;
  stats[1] = mb + shift_b;
  stats[2] = va;
  stats[3] = vb;
  stats[4] = cov;
  return cov / sqrt(va * vb + eps);
}

// GC of one sample from its sums; fills the kStats statistics.
XVF_HD double finalize(const double* sums, const double* shift, double n, double eps,
                       double* stats) {
  const double rx = finalize_direction(sums, shift[0], shift[1], n, eps, stats);
  const double ry = finalize_direction(sums + 5, shift[2], shift[3], n, eps, stats + 5);
  return 0.5 * (rx + ry);
}

// Coefficients of the backward weight maps of one sample, per direction
// d = x (c[0..4]) and y (c[5..9]): mean_a, mean_b, alpha, beta_a, beta_b, with
//   wa_d(q) = d GC / d ga_d(q) = beta_a (ga_d(q) - mean_a) + alpha (gb_d(q) - mean_b)
//   wb_d(q) = d GC / d gb_d(q) = alpha (ga_d(q) - mean_a) + beta_b (gb_d(q) - mean_b)
// already multiplied by the upstream gradient. The centred form keeps the
// weights exact where the responses equal their mean.
constexpr int kCoef = 10;

XVF_HD void backward_coefficients(const double* stats, double grad, double n, double eps,
                                  double* c) {
  for (int d = 0; d < 2; ++d) {
    const double* st = stats + 5 * d;
    double* cd = c + 5 * d;
    cd[0] = st[0];
    cd[1] = st[1];
    if (n <= 0.0) {
      cd[2] = cd[3] = cd[4] = 0.0;
      continue;
    }
    const double va = st[2], vb = st[3], cov = st[4];
    const double den2 = va * vb + eps;
    const double den = sqrt(den2);
    const double s = 0.5 * grad / n;
    cd[2] = s / den;                        // alpha: the cross term
    cd[3] = -s * cov * vb / (den2 * den);   // beta_a
    cd[4] = -s * cov * va / (den2 * den);   // beta_b
  }
}

// Backward weights of one valid pixel for one direction (cd: that direction's 5 coefficients).
template <typename T>
XVF_HD void backward_weights(const T* cd, T ga, T gb, T& wa, T& wb) {
  const T da = ga - cd[0], db = gb - cd[1];
  wa = cd[3] * da + cd[2] * db;
  wb = cd[2] * da + cd[4] * db;
}

// True when (i, j) has a full 3x3 neighbourhood in an H x W image.
XVF_HD bool is_valid(int64_t i, int64_t j, int64_t H, int64_t W) {
  return i >= 1 && i <= H - 2 && j >= 1 && j <= W - 2;
}

// Number of valid pixels.
XVF_HD int64_t valid_count(int64_t H, int64_t W) {
  return (H >= 3 && W >= 3) ? (H - 2) * (W - 2) : 0;
}

}  // namespace gc
}  // namespace xvf
