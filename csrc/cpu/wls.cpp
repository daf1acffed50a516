// CPU (OpenMP) WLS solver: multigrid-preconditioned conjugate gradients.
//
// One V-cycle of a black-box multigrid preconditions CG: standard 2:1
// coarsening, operator-dependent interpolation (Dendy), Galerkin 9-point
// coarse operators, alternating zebra-line Gauss-Seidel smoothing (pre-sweep:
// even rows, odd rows, even columns, odd columns; post-sweep: the reverse, so
// the preconditioner is symmetric) and dense Cholesky on the coarsest grid.
// All grid arrays are padded with a ring of zeros (see xvertfast/wls.h).
// The pure-PyTorch statement of the same algorithm is
// xvertfast/ops/wls_reference.py; tests compare the two step by step.
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "xvertfast/kernels.h"
#include "xvertfast/wls.h"

namespace xvf {
namespace {

template <typename T>
using Vec = std::vector<T>;

struct Grid {
  int64_t h = 0, w = 0, ld = 0;
  Grid() = default;
  Grid(int64_t h_, int64_t w_) : h(h_), w(w_), ld(w_ + 2) {}
  int64_t size() const { return (h + 2) * ld; }
  int64_t at(int64_t i, int64_t j) const { return (i + 1) * ld + (j + 1); }
  Grid coarse() const { return Grid((h + 1) / 2, (w + 1) / 2); }
};

// Interpolation weights, stored per coarse cell (I, J) on the coarse grid:
// the x-edge point (2I, 2J+1) takes xw from (I, J) and xe from (I, J+1); the
// y-edge point (2I+1, 2J) takes yn from (I, J) and ys from (I+1, J); the
// centre (2I+1, 2J+1) takes nw, ne, sw, se from its four corners.
enum Weight { kXW, kXE, kYN, kYS, kNW, kNE, kSW, kSE, kWeights };

template <typename T>
struct Level {
  Grid g;
  bool nine = false;
  Vec<T> c, e, s, se, sw;  // stencil (se, sw empty on the 5-point finest level)
  Vec<T> d;                // row sums (empty on the finest level, where they are all 1)
  Vec<T> inv_x, inv_y;     // inverse Thomas pivots of the row and column tridiagonals
  Vec<T> pw[kWeights];     // interpolation from the next coarser level (on its grid)
  Vec<T> b, x, r;          // right-hand side, solution, residual/scratch
  Vec<double> chol;        // dense Cholesky factor on the coarsest level
  int64_t n_dense = 0;

  T coupling(int64_t p, int di, int dj) const {
    const int64_t ld = g.ld;
    if (di == 0 && dj == 0) return c[p];
    if (di == 0) return dj > 0 ? e[p] : e[p - 1];
    if (dj == 0) return di > 0 ? s[p] : s[p - ld];
    if (!nine) return T(0);
    if (di > 0) return dj > 0 ? se[p] : sw[p];
    return dj > 0 ? sw[p - ld + 1] : se[p - ld - 1];
  }
};

template <typename T>
class Solver {
 public:
  Solver(int64_t H, int64_t W, int nt) : nt_(nt) { levels_.emplace_back(); levels_[0].g = Grid(H, W); }

  // Builds the finest stencil from the image and the whole hierarchy.
  void setup(const T* img, T lam, T alpha, T eps) {
    Level<T>& L = levels_[0];
    const Grid g = L.g;
    L.c.assign(g.size(), T(0));
    L.e.assign(g.size(), T(0));
    L.s.assign(g.size(), T(0));
    {
      Vec<T> lg(g.size(), T(0));
#pragma omp parallel for num_threads(nt_) schedule(static)
      for (int64_t i = 0; i < g.h; ++i)
        for (int64_t j = 0; j < g.w; ++j) lg[g.at(i, j)] = wls::log_guide(img[i * g.w + j]);
#pragma omp parallel for num_threads(nt_) schedule(static)
      for (int64_t i = 0; i < g.h; ++i) {
        for (int64_t j = 0; j < g.w; ++j) {
          const int64_t p = g.at(i, j);
          if (j + 1 < g.w) L.e[p] = -wls::edge_weight(lg[p], lg[p + 1], lam, alpha, eps);
          if (i + 1 < g.h) L.s[p] = -wls::edge_weight(lg[p], lg[p + g.ld], lam, alpha, eps);
        }
      }
    }
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j) {
        const int64_t p = g.at(i, j);
        L.c[p] = T(1) - L.e[p] - L.e[p - 1] - L.s[p] - L.s[p - g.ld];
      }
    for (size_t k = 0;; ++k) {
      Level<T>& lev = levels_[k];
      lev.r.assign(lev.g.size(), T(0));
      if (k > 0) {
        lev.b.assign(lev.g.size(), T(0));
        lev.x.assign(lev.g.size(), T(0));
      }
      if (lev.g.h * lev.g.w <= wls::kCoarsestPoints) {
        factor_dense(lev);
        break;
      }
      line_factors(lev);
      Level<T> next;
      next.g = lev.g.coarse();
      next.nine = true;
      interpolation(lev, next.g);
      galerkin(lev, next);
      levels_.push_back(std::move(next));
    }
  }

  // y = A x on the finest level (padded arrays).
  void apply(const Vec<T>& x, Vec<T>& y) const { apply_level(levels_[0], x, y); }

  // z = M^-1 r: one V-cycle on the finest level (padded arrays).
  void precondition(const Vec<T>& r, Vec<T>& z) { vcycle(0, r, z); }

  const Grid& grid() const { return levels_[0].g; }

  double dot(const Vec<T>& a, const Vec<T>& b) const {
    const Grid& g = levels_[0].g;
    Vec<double> part(g.h);
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i) {
      double acc = 0.0;
      const T* pa = a.data() + g.at(i, 0);
      const T* pb = b.data() + g.at(i, 0);
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < g.w; ++j) acc += double(pa[j]) * double(pb[j]);
      part[i] = acc;
    }
    double total = 0.0;
    for (double v : part) total += v;
    return total;
  }

  // ||b - A x|| for a double-precision iterate x (padded), b the unpadded image.
  double residual_norm(const T* img, const Vec<double>& x) const {
    const Level<T>& L = levels_[0];
    const Grid& g = L.g;
    Vec<double> part(g.h);
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i) {
      double acc = 0.0;
      for (int64_t j = 0; j < g.w; ++j) {
        const int64_t p = g.at(i, j);
        const double v = double(img[i * g.w + j]) - wls::apply5<T, double>(1.0, L.e.data(), L.s.data(), x.data(), p, g.ld);
        acc += v * v;
      }
      part[i] = acc;
    }
    double total = 0.0;
    for (double v : part) total += v;
    return std::sqrt(total);
  }

  int threads() const { return nt_; }

 private:
  int nt_;
  std::vector<Level<T>> levels_;

  void apply_level(const Level<T>& L, const Vec<T>& x, Vec<T>& y) const {
    const Grid& g = L.g;
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i) {
      const int64_t p0 = g.at(i, 0);
      if (L.nine) {
#pragma omp simd
        for (int64_t p = p0; p < p0 + g.w; ++p)
          y[p] = wls::apply9(L.d[p], L.e.data(), L.s.data(), L.se.data(), L.sw.data(), x.data(), p, g.ld);
      } else {
#pragma omp simd
        for (int64_t p = p0; p < p0 + g.w; ++p)
          y[p] = wls::apply5(T(1), L.e.data(), L.s.data(), x.data(), p, g.ld);
      }
    }
  }

  T residual_at(const Level<T>& L, const T* b, const T* x, int64_t p) const {
    const T ax = L.nine ? wls::apply9(L.d[p], L.e.data(), L.s.data(), L.se.data(), L.sw.data(), x, p, L.g.ld)
                        : wls::apply5(T(1), L.e.data(), L.s.data(), x, p, L.g.ld);
    return b[p] - ax;
  }

  void line_factors(Level<T>& L) {
    const Grid& g = L.g;
    L.inv_x.assign(g.size(), T(0));
    L.inv_y.assign(g.size(), T(0));
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i) {
      const int64_t p0 = g.at(i, 0);
      for (int64_t p = p0; p < p0 + g.w; ++p)  // e[p0 - 1] = 0 (padding) starts the recursion
        L.inv_x[p] = T(1) / (L.c[p] - L.e[p - 1] * L.e[p - 1] * L.inv_x[p - 1]);
    }
    for (int64_t i = 0; i < g.h; ++i) {
      const int64_t p0 = g.at(i, 0);
#pragma omp simd
      for (int64_t p = p0; p < p0 + g.w; ++p)
        L.inv_y[p] = T(1) / (L.c[p] - L.s[p - g.ld] * L.s[p - g.ld] * L.inv_y[p - g.ld]);
    }
  }

  // Row (x-line) zebra step: rows i = parity, parity + 2, ... solved exactly given the others.
  void smooth_rows(Level<T>& L, const T* b, T* x, int parity) {
    const Grid& g = L.g;
#pragma omp parallel num_threads(nt_)
    {
      Vec<T> y(g.w);
#pragma omp for schedule(static)
      for (int64_t i = parity; i < g.h; i += 2) {
        const int64_t p0 = g.at(i, 0);
        // forward: residual of the row, eliminating the west coupling
        T prev = T(0);
        for (int64_t j = 0; j < g.w; ++j) {
          const int64_t p = p0 + j;
          prev = (residual_at(L, b, x, p) - L.e[p - 1] * prev) * L.inv_x[p];
          y[j] = prev;
        }
        // backward substitution
        for (int64_t j = g.w - 2; j >= 0; --j) y[j] -= L.e[p0 + j] * L.inv_x[p0 + j] * y[j + 1];
        for (int64_t j = 0; j < g.w; ++j) x[p0 + j] += y[j];
      }
    }
  }

  // Column (y-line) zebra step: columns j = parity, parity + 2, ..., vectorised across columns.
  void smooth_cols(Level<T>& L, const T* b, T* x, int parity) {
    const Grid& g = L.g;
    T* y = L.r.data();  // scratch
    const int64_t ncols = (g.w - parity + 1) / 2;
    if (ncols <= 0) return;
    const int64_t chunk = std::max<int64_t>(16, ceil_div(ncols, nt_));
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t c0 = 0; c0 < ncols; c0 += chunk) {
      const int64_t c1 = std::min(ncols, c0 + chunk);
      for (int64_t i = 0; i < g.h; ++i) {
        const int64_t base = g.at(i, parity);
        for (int64_t k = c0; k < c1; ++k) {
          const int64_t p = base + 2 * k;
          y[p] = (residual_at(L, b, x, p) - L.s[p - g.ld] * y[p - g.ld]) * L.inv_y[p];
        }
      }
      for (int64_t i = g.h - 2; i >= 0; --i) {
        const int64_t base = g.at(i, parity);
        for (int64_t k = c0; k < c1; ++k) {
          const int64_t p = base + 2 * k;
          y[p] -= L.s[p] * L.inv_y[p] * y[p + g.ld];
        }
      }
      for (int64_t i = 0; i < g.h; ++i) {
        const int64_t base = g.at(i, parity);
        for (int64_t k = c0; k < c1; ++k) {
          const int64_t p = base + 2 * k;
          x[p] += y[p];
        }
      }
    }
  }

  void smooth(Level<T>& L, const T* b, T* x, bool reverse) {
    if (!reverse) {
      smooth_rows(L, b, x, 0);
      smooth_rows(L, b, x, 1);
      smooth_cols(L, b, x, 0);
      smooth_cols(L, b, x, 1);
    } else {
      smooth_cols(L, b, x, 1);
      smooth_cols(L, b, x, 0);
      smooth_rows(L, b, x, 1);
      smooth_rows(L, b, x, 0);
    }
  }

  // Interpolation weights of `fine` (stored on the coarse grid cg).
  void interpolation(Level<T>& F, const Grid& cg) {
    const Grid& g = F.g;
    for (auto& v : F.pw) v.assign(cg.size(), T(0));
    auto A = [&](int64_t p, int di, int dj) { return F.coupling(p, di, dj); };
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        if (2 * J + 1 < g.w) {  // x-edge point: collapse vertically
          const int64_t p = g.at(2 * I, 2 * J + 1);
          const T grp[2] = {A(p, 0, -1) + A(p, -1, -1) + A(p, 1, -1), A(p, 0, 1) + A(p, -1, 1) + A(p, 1, 1)};
          T w[2];
          wls::interpolation_weights<T, 2>(grp, A(p, 0, 0) + A(p, -1, 0) + A(p, 1, 0), w);
          F.pw[kXW][q] = w[0];
          F.pw[kXE][q] = w[1];
        }
        if (2 * I + 1 < g.h) {  // y-edge point: collapse horizontally
          const int64_t p = g.at(2 * I + 1, 2 * J);
          const T grp[2] = {A(p, -1, 0) + A(p, -1, -1) + A(p, -1, 1), A(p, 1, 0) + A(p, 1, -1) + A(p, 1, 1)};
          T w[2];
          wls::interpolation_weights<T, 2>(grp, A(p, 0, 0) + A(p, 0, -1) + A(p, 0, 1), w);
          F.pw[kYN][q] = w[0];
          F.pw[kYS][q] = w[1];
        }
      }
    }
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        if (2 * I + 1 >= g.h || 2 * J + 1 >= g.w) continue;
        const int64_t q = cg.at(I, J);
        const int64_t p = g.at(2 * I + 1, 2 * J + 1);
        const T grp[4] = {
            A(p, -1, -1) + A(p, -1, 0) * F.pw[kXW][q] + A(p, 0, -1) * F.pw[kYN][q],
            A(p, -1, 1) + A(p, -1, 0) * F.pw[kXE][q] + A(p, 0, 1) * F.pw[kYN][q + 1],
            A(p, 1, -1) + A(p, 1, 0) * F.pw[kXW][q + cg.ld] + A(p, 0, -1) * F.pw[kYS][q],
            A(p, 1, 1) + A(p, 1, 0) * F.pw[kXE][q + cg.ld] + A(p, 0, 1) * F.pw[kYS][q + 1],
        };
        T w[4];
        wls::interpolation_weights<T, 4>(grp, A(p, 0, 0), w);
        F.pw[kNW][q] = w[0];
        F.pw[kNE][q] = w[1];
        F.pw[kSW][q] = w[2];
        F.pw[kSE][q] = w[3];
      }
    }
  }

  // Weight of coarse point q (cell (I, J)) in the interpolation of fine point 2(I, J) + (ei, ej).
  static T pweight(const Level<T>& F, const Grid& cg, int64_t q, int ei, int ej) {
    const int64_t ld = cg.ld;
    switch ((ei + 1) * 3 + (ej + 1)) {
      case 4: return T(1);                      // ( 0,  0)
      case 5: return F.pw[kXW][q];              // ( 0, +1)
      case 3: return F.pw[kXE][q - 1];          // ( 0, -1)
      case 7: return F.pw[kYN][q];              // (+1,  0)
      case 1: return F.pw[kYS][q - ld];         // (-1,  0)
      case 8: return F.pw[kNW][q];              // (+1, +1)
      case 6: return F.pw[kNE][q - 1];          // (+1, -1)
      case 2: return F.pw[kSW][q - ld];         // (-1, +1)
      default: return F.pw[kSE][q - ld - 1];    // (-1, -1)
    }
  }

  // Coarse stencil C.(c, e, s, se, sw) = P^T A P.
  void galerkin(const Level<T>& F, Level<T>& C) {
    const Grid& g = F.g;
    const Grid& cg = C.g;
    C.c.assign(cg.size(), T(0));
    C.e.assign(cg.size(), T(0));
    C.s.assign(cg.size(), T(0));
    C.se.assign(cg.size(), T(0));
    C.sw.assign(cg.size(), T(0));
    // (e, delta) pairs along one axis with e + delta - 2 d in {-1, 0, 1}, for d = -1, 0, 1.
    static const int kPairs[3][7][2] = {
        {{-1, -1}, {-1, 0}, {0, -1}, {0, 0}, {0, 0}, {0, 0}, {0, 0}},  // d = -1: 3 pairs used
        {{-1, 0}, {-1, 1}, {0, -1}, {0, 0}, {0, 1}, {1, -1}, {1, 0}},  // d =  0: 7 pairs
        {{0, 1}, {1, 0}, {1, 1}, {0, 0}, {0, 0}, {0, 0}, {0, 0}},      // d = +1: 3 pairs
    };
    static const int kCount[3] = {3, 7, 3};
    static const int kDirs[5][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {1, -1}};
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        T out[5];
        for (int k = 0; k < 5; ++k) {
          const int di = kDirs[k][0], dj = kDirs[k][1];
          double acc = 0.0;
          if (I + di < cg.h && J + dj >= 0 && J + dj < cg.w) {
            const int64_t qn = cg.at(I + di, J + dj);
            for (int a = 0; a < kCount[di + 1]; ++a) {
              const int ei = kPairs[di + 1][a][0], si = kPairs[di + 1][a][1];
              const int64_t fi = 2 * I + ei;
              if (fi < 0 || fi >= g.h) continue;
              for (int bb = 0; bb < kCount[dj + 1]; ++bb) {
                const int ej = kPairs[dj + 1][bb][0], sj = kPairs[dj + 1][bb][1];
                const int64_t fj = 2 * J + ej;
                if (fj < 0 || fj >= g.w) continue;
                const T wf = pweight(F, cg, q, ei, ej);
                if (wf == T(0)) continue;
                const T a_fg = F.coupling(g.at(fi, fj), si, sj);
                if (a_fg == T(0)) continue;
                acc += double(wf) * double(a_fg) * double(pweight(F, cg, qn, ei + si - 2 * di, ej + sj - 2 * dj));
              }
            }
          }
          out[k] = T(acc);
        }
        C.c[q] = out[0];
        C.e[q] = out[1];
        C.s[q] = out[2];
        C.se[q] = out[3];
        C.sw[q] = out[4];
      }
    }
    row_sums(F, C);
  }

  // C.d = P^T A P 1 = P^T (A (P 1)), evaluated in double in the row-sum form, so the
  // small row sums of the coarse operators are not lost to cancellation.
  void row_sums(const Level<T>& F, Level<T>& C) {
    const Grid& g = F.g;
    const Grid& cg = C.g;
    Vec<double> u(g.size(), 0.0), v(g.size(), 0.0);
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        const int64_t f = g.at(2 * I, 2 * J);
        const double c01 = J + 1 < cg.w ? 1.0 : 0.0, c10 = I + 1 < cg.h ? 1.0 : 0.0;
        u[f] = 1.0;
        if (2 * J + 1 < g.w) u[f + 1] = double(F.pw[kXW][q]) + double(F.pw[kXE][q]) * c01;
        if (2 * I + 1 < g.h) {
          u[f + g.ld] = double(F.pw[kYN][q]) + double(F.pw[kYS][q]) * c10;
          if (2 * J + 1 < g.w)
            u[f + g.ld + 1] = double(F.pw[kNW][q]) + double(F.pw[kNE][q]) * c01 +
                              double(F.pw[kSW][q]) * c10 + double(F.pw[kSE][q]) * c01 * c10;
        }
      }
    }
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i) {
      for (int64_t j = 0; j < g.w; ++j) {
        const int64_t p = g.at(i, j);
        const double dp = F.nine ? double(F.d[p]) : 1.0;
        double acc = dp * u[p];
        for (int di = -1; di <= 1; ++di)
          for (int dj = -1; dj <= 1; ++dj)
            if (di || dj) acc += double(F.coupling(p, di, dj)) * (u[p + di * g.ld + dj] - u[p]);
        v[p] = acc;
      }
    }
    C.d.assign(cg.size(), T(0));
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        double acc = 0.0;
        for (int ei = -1; ei <= 1; ++ei)
          for (int ej = -1; ej <= 1; ++ej) {
            const int64_t fi = 2 * I + ei, fj = 2 * J + ej;
            if (fi < 0 || fi >= g.h || fj < 0 || fj >= g.w) continue;
            acc += double(pweight(F, cg, q, ei, ej)) * v[g.at(fi, fj)];
          }
        C.d[q] = T(acc);
      }
    }
  }

  void factor_dense(Level<T>& L) {
    const Grid& g = L.g;
    const int64_t n = g.h * g.w;
    L.n_dense = n;
    Vec<double> m(n * n, 0.0);
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j) {
        const int64_t r = i * g.w + j, p = g.at(i, j);
        for (int di = -1; di <= 1; ++di)
          for (int dj = -1; dj <= 1; ++dj) {
            const int64_t ii = i + di, jj = j + dj;
            if (ii < 0 || ii >= g.h || jj < 0 || jj >= g.w) continue;
            m[r * n + ii * g.w + jj] = double(L.coupling(p, di, dj));
          }
      }
    for (int64_t k = 0; k < n; ++k) {  // in-place lower Cholesky
      double d = m[k * n + k];
      for (int64_t t = 0; t < k; ++t) d -= m[k * n + t] * m[k * n + t];
      d = std::sqrt(d > 0.0 ? d : 1e-300);
      m[k * n + k] = d;
      for (int64_t r = k + 1; r < n; ++r) {
        double v = m[r * n + k];
        for (int64_t t = 0; t < k; ++t) v -= m[r * n + t] * m[k * n + t];
        m[r * n + k] = v / d;
      }
    }
    L.chol = std::move(m);
  }

  void solve_dense(const Level<T>& L, const T* b, T* x) const {
    const Grid& g = L.g;
    const int64_t n = L.n_dense;
    Vec<double> y(n);
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j) y[i * g.w + j] = b[g.at(i, j)];
    for (int64_t k = 0; k < n; ++k) {
      double v = y[k];
      for (int64_t t = 0; t < k; ++t) v -= L.chol[k * n + t] * y[t];
      y[k] = v / L.chol[k * n + k];
    }
    for (int64_t k = n - 1; k >= 0; --k) {
      double v = y[k];
      for (int64_t t = k + 1; t < n; ++t) v -= L.chol[t * n + k] * y[t];
      y[k] = v / L.chol[k * n + k];
    }
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j) x[g.at(i, j)] = T(y[i * g.w + j]);
  }

  // Coarse right-hand side C.b = P^T F.r.
  void restrict_to(const Level<T>& F, Level<T>& C) {
    const Grid& g = F.g;
    const Grid& cg = C.g;
    const T* r = F.r.data();
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        const int64_t f = g.at(2 * I, 2 * J);
        const int64_t ld = g.ld;
        // fine neighbours outside the grid hold r = 0 (padding) or have weight 0
        T v = r[f];
        v += F.pw[kXW][q] * r[f + 1] + F.pw[kXE][q - 1] * r[f - 1];
        v += F.pw[kYN][q] * r[f + ld] + F.pw[kYS][q - cg.ld] * r[f - ld];
        v += F.pw[kNW][q] * r[f + ld + 1] + F.pw[kNE][q - 1] * r[f + ld - 1];
        v += F.pw[kSW][q - cg.ld] * r[f - ld + 1] + F.pw[kSE][q - cg.ld - 1] * r[f - ld - 1];
        C.b[q] = v;
      }
    }
  }

  // x += P xc.
  void prolong_add(const Level<T>& F, const Level<T>& C, T* x) {
    const Grid& g = F.g;
    const Grid& cg = C.g;
    const T* xc = C.x.data();
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t I = 0; I < cg.h; ++I) {
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        const T c00 = xc[q], c01 = xc[q + 1], c10 = xc[q + cg.ld], c11 = xc[q + cg.ld + 1];
        const int64_t f = g.at(2 * I, 2 * J);
        x[f] += c00;
        if (2 * J + 1 < g.w) x[f + 1] += F.pw[kXW][q] * c00 + F.pw[kXE][q] * c01;
        if (2 * I + 1 < g.h) {
          x[f + g.ld] += F.pw[kYN][q] * c00 + F.pw[kYS][q] * c10;
          if (2 * J + 1 < g.w)
            x[f + g.ld + 1] += F.pw[kNW][q] * c00 + F.pw[kNE][q] * c01 + F.pw[kSW][q] * c10 +
                               F.pw[kSE][q] * c11;
        }
      }
    }
  }

  // x = V-cycle approximation of A_k^-1 b.
  void vcycle(size_t k, const Vec<T>& b, Vec<T>& x) {
    Level<T>& L = levels_[k];
    if (L.n_dense) {
      solve_dense(L, b.data(), x.data());
      return;
    }
    std::fill(x.begin(), x.end(), T(0));
    smooth(L, b.data(), x.data(), false);
    const Grid& g = L.g;
#pragma omp parallel for num_threads(nt_) schedule(static)
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t p = g.at(i, 0); p < g.at(i, 0) + g.w; ++p) L.r[p] = residual_at(L, b.data(), x.data(), p);
    Level<T>& C = levels_[k + 1];
    restrict_to(L, C);
    vcycle(k + 1, C.b, C.x);
    prolong_add(L, C, x.data());
    smooth(L, b.data(), x.data(), true);
  }
};


template <typename T>
void pad_copy(const Grid& g, const T* src, Vec<T>& dst) {
  for (int64_t i = 0; i < g.h; ++i) std::copy(src + i * g.w, src + (i + 1) * g.w, dst.begin() + g.at(i, 0));
}

template <typename T>
void unpad_copy(const Grid& g, const Vec<T>& src, T* dst) {
  for (int64_t i = 0; i < g.h; ++i) std::copy(src.begin() + g.at(i, 0), src.begin() + g.at(i, 0) + g.w, dst + i * g.w);
}

// Multigrid-preconditioned CG for one image; returns (iterations, true relative residual).
template <typename T>
std::pair<int64_t, double> solve_one(const T* img, int64_t H, int64_t W, const WlsOptions& o, T* out,
                                     int nt) {
  Solver<T> S(H, W, nt);
  S.setup(img, T(o.lam), T(o.alpha), T(o.eps));
  const Grid g = S.grid();
  Vec<T> r(g.size(), T(0)), p(g.size(), T(0)), z(g.size(), T(0));
  // The iterate is kept in double: a float32 vector alone has a rounding error
  // whose residual (through couplings up to 1/eps) is ~1e-4 relative.
  Vec<double> x(g.size(), 0.0);
  pad_copy(g, img, r);
  const double nb = std::sqrt(S.dot(r, r));
  int64_t it = 0;
  if (nb > 0.0) {
    S.precondition(r, z);
    p = z;
    double rz = S.dot(r, z);
    for (it = 1; it <= o.maxiter; ++it) {
      S.apply(p, z);  // z holds q = A p until the next preconditioning
      const double step = rz / S.dot(p, z);
      const int64_t n = int64_t(p.size());
#pragma omp parallel for simd num_threads(nt) schedule(static)
      for (int64_t k = 0; k < n; ++k) {
        x[k] += step * double(p[k]);
        r[k] -= T(step) * z[k];
      }
      if (std::sqrt(S.dot(r, r)) <= o.rtol * nb || it == o.maxiter) break;
      S.precondition(r, z);
      const double rz_new = S.dot(r, z);
      const T beta = T(rz_new / rz);
      rz = rz_new;
#pragma omp parallel for simd num_threads(nt) schedule(static)
      for (int64_t k = 0; k < n; ++k) p[k] = z[k] + beta * p[k];
    }
    it = std::min(it, o.maxiter);
  }
  const double rel = nb > 0.0 ? S.residual_norm(img, x) / nb : 0.0;
  for (int64_t i = 0; i < g.h; ++i)
    for (int64_t j = 0; j < g.w; ++j) out[i * g.w + j] = T(x[g.at(i, j)]);
  return {it, rel};
}

}  // namespace

template <typename T>
void wls_cpu(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options, T* out,
             int64_t* iterations, double* residual, int num_threads) {
  for (int64_t b = 0; b < B; ++b) {
    auto [it, rel] = solve_one(image + b * H * W, H, W, options, out + b * H * W, num_threads);
    iterations[b] = it;
    residual[b] = rel;
  }
}

template <typename T>
void wls_operator_cpu(const T* image, int64_t H, int64_t W, const WlsOptions& o, const T* x, T* y,
                      bool precondition, int num_threads) {
  Solver<T> S(H, W, num_threads);
  S.setup(image, T(o.lam), T(o.alpha), T(o.eps));
  const Grid g = S.grid();
  Vec<T> xp(g.size(), T(0)), yp(g.size(), T(0));
  pad_copy(g, x, xp);
  if (precondition)
    S.precondition(xp, yp);
  else
    S.apply(xp, yp);
  unpad_copy(g, yp, y);
}

#define XVF_INSTANTIATE(T)                                                                       \
  template void wls_cpu<T>(const T*, int64_t, int64_t, int64_t, const WlsOptions&, T*, int64_t*, \
                           double*, int);                                                        \
  template void wls_operator_cpu<T>(const T*, int64_t, int64_t, const WlsOptions&, const T*, T*, \
                                    bool, int);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace xvf
