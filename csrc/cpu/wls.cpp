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
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif
#include <array>
#include <cmath>
#include <vector>

#include "xvertfast/kernels.h"
#include "xvertfast/wls.h"

namespace xvf {
namespace {

template <typename T>
using Vec = std::vector<T>;

// Subnormal floats appear where the smoother's corrections die out and make x86
// arithmetic many times slower; they carry nothing a 1e-4 solve needs. For the
// duration of a solve, every OpenMP thread flushes them to zero (FTZ/DAZ); the
// previous modes are restored afterwards (the threads are shared with torch).
class FlushDenormals {
 public:
  explicit FlushDenormals(int nt) : nt_(nt), saved_(nt, 0u) {
#if defined(__SSE__) && defined(_OPENMP)
#pragma omp parallel num_threads(nt_)
    {
      const int t = omp_get_thread_num();
      saved_[t] = _mm_getcsr();
      _mm_setcsr(saved_[t] | 0x8040u);
    }
#endif
  }
  ~FlushDenormals() {
#if defined(__SSE__) && defined(_OPENMP)
#pragma omp parallel num_threads(nt_)
    _mm_setcsr(saved_[omp_get_thread_num()]);
#endif
  }

 private:
  int nt_;
  std::vector<unsigned> saved_;
};

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
      Vec<T>().swap(lev.c);  // the diagonal only feeds the factors and the next Galerkin product
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

 private:
  int nt_;
  std::vector<Level<T>> levels_;

  void apply_level(const Level<T>& L, const Vec<T>& x, Vec<T>& y) const {
    const Grid& g = L.g;
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
    return L.nine ? residual_t<true>(L, b, x, p) : residual_t<false>(L, b, x, p);
  }

  template <bool kNine>
  static T residual_t(const Level<T>& L, const T* b, const T* x, int64_t p) {
    if constexpr (kNine)
      return b[p] - wls::apply9(L.d[p], L.e.data(), L.s.data(), L.se.data(), L.sw.data(), x, p, L.g.ld);
    else
      return b[p] - wls::apply5(T(1), L.e.data(), L.s.data(), x, p, L.g.ld);
  }

  // Small grids run on one thread: fork/join would cost more than the work.
  static bool parallel(const Grid& g) { return g.h * g.w >= 16384; }

  void line_factors(Level<T>& L) {
    const Grid& g = L.g;
    L.inv_x.assign(g.size(), T(0));
    L.inv_y.assign(g.size(), T(0));
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
    for (int64_t i = 0; i < g.h; ++i) {
      const int64_t p0 = g.at(i, 0);
      for (int64_t p = p0; p < p0 + g.w; ++p)  // e[p0 - 1] = 0 (padding) starts the recursion
        L.inv_x[p] = T(1) / (L.c[p] - L.e[p - 1] * L.e[p - 1] * L.inv_x[p - 1]);
    }
    const int nt = parallel(g) ? nt_ : 1;
    const int64_t chunk = ceil_div(g.w, nt);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; ++t) {
      const int64_t j0 = t * chunk, j1 = std::min(g.w, j0 + chunk);
      for (int64_t i = 0; i < g.h; ++i) {
        const int64_t p0 = g.at(i, 0);
#pragma omp simd
        for (int64_t p = p0 + j0; p < p0 + j1; ++p)
          L.inv_y[p] = T(1) / (L.c[p] - L.s[p - g.ld] * L.s[p - g.ld] * L.inv_y[p - g.ld]);
      }
    }
  }

  // Row (x-line) zebra step: rows i = parity, parity + 2, ... solved exactly given the others.
  template <bool kNine>
  void smooth_rows(Level<T>& L, const T* b, T* x, int parity) {
    const Grid& g = L.g;
    const T* e = L.e.data();
    const T* inv = L.inv_x.data();
#pragma omp parallel num_threads(nt_) if (parallel(g))
    {
      Vec<T> buf(g.w);
      T* y = buf.data();
#pragma omp for schedule(static)
      for (int64_t i = parity; i < g.h; i += 2) {
        const int64_t p0 = g.at(i, 0);
#pragma omp simd
        for (int64_t j = 0; j < g.w; ++j) y[j] = residual_t<kNine>(L, b, x, p0 + j);
        // Thomas: forward elimination (e[p0 - 1] = 0 is the padding), back substitution
        y[0] *= inv[p0];
        for (int64_t j = 1; j < g.w; ++j) y[j] = (y[j] - e[p0 + j - 1] * y[j - 1]) * inv[p0 + j];
        for (int64_t j = g.w - 2; j >= 0; --j) y[j] -= e[p0 + j] * inv[p0 + j] * y[j + 1];
#pragma omp simd
        for (int64_t j = 0; j < g.w; ++j) x[p0 + j] += y[j];
      }
    }
  }

  // Column (y-line) zebra step: columns j = parity, parity + 2, ..., all advanced together row
  // by row; each thread takes a band of columns.
  template <bool kNine>
  void smooth_cols(Level<T>& L, const T* b, T* x, int parity) {
    const Grid& g = L.g;
    T* y = L.r.data();  // scratch (its padding stays zero)
    const T* s = L.s.data();
    const T* inv = L.inv_y.data();
    const int64_t ncols = (g.w - parity + 1) / 2;
    if (ncols <= 0) return;
    const int nt = parallel(g) ? nt_ : 1;
    const int64_t chunk = ceil_div(ncols, nt);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
      for (int t = 0; t < nt; ++t) {
        const int64_t k0 = t * chunk, k1 = std::min(ncols, k0 + chunk);
        if (k0 >= k1) continue;
        const int64_t j0 = parity + 2 * k0, j1 = parity + 2 * (k1 - 1) + 1;  // columns [j0, j1)
        for (int64_t i = 0; i < g.h; ++i) {
          const int64_t p0 = g.at(i, 0);
#pragma omp simd
          for (int64_t j = j0; j < j1; j += 2) {
            const int64_t p = p0 + j;
            y[p] = (residual_t<kNine>(L, b, x, p) - s[p - g.ld] * y[p - g.ld]) * inv[p];
          }
        }
        // back substitution, applying each row's correction as soon as it is final
        for (int64_t i = g.h - 1; i >= 0; --i) {
          const int64_t p0 = g.at(i, 0);
          // on the last row s[p] = 0 and y[p + ld] is the zero padding: no special case
#pragma omp simd
          for (int64_t j = j0; j < j1; j += 2) {
            const int64_t p = p0 + j;
            y[p] -= s[p] * inv[p] * y[p + g.ld];
            x[p] += y[p];
          }
        }
      }
    }
  }

  void smooth(Level<T>& L, const T* b, T* x, bool reverse) {
    if (L.nine)
      smooth_t<true>(L, b, x, reverse);
    else
      smooth_t<false>(L, b, x, reverse);
  }

  template <bool kNine>
  void smooth_t(Level<T>& L, const T* b, T* x, bool reverse) {
    if (!reverse) {
      smooth_rows<kNine>(L, b, x, 0);
      smooth_rows<kNine>(L, b, x, 1);
      smooth_cols<kNine>(L, b, x, 0);
      smooth_cols<kNine>(L, b, x, 1);
    } else {
      smooth_cols<kNine>(L, b, x, 1);
      smooth_cols<kNine>(L, b, x, 0);
      smooth_rows<kNine>(L, b, x, 1);
      smooth_rows<kNine>(L, b, x, 0);
    }
  }

  // Interpolation weights of `fine` (stored on the coarse grid cg).
  void interpolation(Level<T>& F, const Grid& cg) {
    const Grid& g = F.g;
    for (auto& v : F.pw) v.assign(cg.size(), T(0));
    auto A = [&](int64_t p, int di, int dj) { return F.coupling(p, di, dj); };
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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

  // One term of a Galerkin entry: w_K(fine e) * A(fine e, offset delta) * w_K+d(fine en).
  struct Term {
    int8_t fe, delta, en;
  };

  // For each stored coarse offset d (0, E, S, SE, SW): the terms of
  // A_c(K, K + d) = sum_f sum_g P[f, K] A[f, g] P[g, K + d], f = 2K + e, g = f + delta,
  // e' = g - 2(K + d); offsets are numbered (row + 1) * 3 + (column + 1).
  static const std::vector<Term>& terms(int k, bool nine) {
    static const auto table = [] {
      std::array<std::array<std::vector<Term>, 5>, 2> t;
      const int dirs[5][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {1, -1}};
      for (int nn = 0; nn < 2; ++nn)
        for (int d = 0; d < 5; ++d)
          for (int ei = -1; ei <= 1; ++ei)
            for (int ej = -1; ej <= 1; ++ej)
              for (int si = -1; si <= 1; ++si)
                for (int sj = -1; sj <= 1; ++sj) {
                  const int ni = ei + si - 2 * dirs[d][0], nj = ej + sj - 2 * dirs[d][1];
                  if (ni < -1 || ni > 1 || nj < -1 || nj > 1) continue;
                  if (!nn && si && sj) continue;  // 5-point: no diagonal couplings
                  t[nn][d].push_back({int8_t((ei + 1) * 3 + ej + 1), int8_t((si + 1) * 3 + sj + 1),
                                      int8_t((ni + 1) * 3 + nj + 1)});
                }
      return t;
    }();
    return table[nine ? 1 : 0][k];
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
    T* out[5] = {C.c.data(), C.e.data(), C.s.data(), C.se.data(), C.sw.data()};
    static const int kDirs[5][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {1, -1}};
    const std::vector<Term>* term_lists[5];
    for (int k = 0; k < 5; ++k) term_lists[k] = &terms(k, F.nine);
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
    for (int64_t I = 0; I < cg.h; ++I) {
      T a9[9][9];     // couplings of the 9 fine points of K's block
      T wk[5][9];     // interpolation weights of K and of its 4 stored neighbours
      for (int64_t J = 0; J < cg.w; ++J) {
        const int64_t q = cg.at(I, J);
        for (int e = 0; e < 9; ++e) {
          const int64_t fi = 2 * I + e / 3 - 1, fj = 2 * J + e % 3 - 1;
          T* a = a9[e];
          if (fi < 0 || fi >= g.h || fj < 0 || fj >= g.w) {
            std::fill(a, a + 9, T(0));
            continue;
          }
          const int64_t p = g.at(fi, fj);
          for (int d = 0; d < 9; ++d) a[d] = F.coupling(p, d / 3 - 1, d % 3 - 1);
        }
        for (int k = 0; k < 5; ++k) {
          const int64_t ni = I + kDirs[k][0], nj = J + kDirs[k][1];
          const bool in = ni < cg.h && nj >= 0 && nj < cg.w;
          const int64_t qn = in ? cg.at(ni, nj) : 0;
          for (int e = 0; e < 9; ++e) wk[k][e] = in ? pweight(F, cg, qn, e / 3 - 1, e % 3 - 1) : T(0);
        }
        for (int k = 0; k < 5; ++k) {
          // float sums suffice: the small row sums, where cancellation would hurt, are
          // computed separately in double (row_sums)
          T acc = T(0);
          for (const Term& t : *term_lists[k]) acc += wk[0][t.fe] * a9[t.fe][t.delta] * wk[k][t.en];
          out[k][q] = acc;
        }
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
#pragma omp parallel for num_threads(nt_) schedule(static) if (parallel(g))
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
  FlushDenormals ftz(num_threads);  // once for the batch: it costs two parallel regions
  for (int64_t b = 0; b < B; ++b) {
    auto [it, rel] = solve_one(image + b * H * W, H, W, options, out + b * H * W, num_threads);
    iterations[b] = it;
    residual[b] = rel;
  }
}

template <typename T>
void wls_operator_cpu(const T* image, int64_t H, int64_t W, const WlsOptions& o, const T* x, T* y,
                      bool precondition, int num_threads) {
  FlushDenormals ftz(num_threads);
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
