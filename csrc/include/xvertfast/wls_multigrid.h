// The WLS solver itself: multigrid-preconditioned CG, written once for CPU and CUDA.
//
// One V-cycle of a black-box multigrid preconditions CG: standard 2:1
// coarsening, operator-dependent interpolation (Dendy), Galerkin 9-point
// coarse operators, alternating zebra-line Gauss-Seidel smoothing (pre-sweep:
// even rows, odd rows, even columns, odd columns; post-sweep: the reverse, so
// the preconditioner is symmetric) and dense Cholesky on the coarsest grid.
// On the finest level a damped Jacobi step on the "plateaus" (sets of equal
// neighbours, joined by the strongest couplings) opens and closes the cycle:
// see build_aggregates() (host) and build_aggregates_parallel() (the GPU's, in device
// memory). CG starts from the image itself.
// xvertfast/ops/wls_reference.py is the pure-PyTorch statement of the same
// algorithm; tests compare the two step by step.
//
// Everything here is host/device code templated on an executor `Exec` that
// owns the loops: csrc/cpu/wls.cpp runs them with OpenMP, csrc/cuda/wls.cu
// launches them as kernels. The orchestration (setup, V-cycle, batched CG)
// and every per-point formula are therefore the same code on both devices;
// only the loop nesting differs. An executor provides
//   grid(nb, rows, cols, f)        f(b, i, j) for every point; iterations independent
//   lines(nb, n, f, work)          f(b, t) for every line t (a line's own work is serial);
//                                  work: about how many points one call handles (a CPU hint)
//   sweep(nb, rows, cols, rev, f)  f(b, i, c): rows in order (reversed if rev), columns independent
//   sweep_pair(nb, rows, ca, cb, rev, lo, hi, fa, fb)  two sweeps in the same row order,
//                                  fa over columns c < ca, then fb over c < cb, where fb(b, i, c)
//                                  reads what fa wrote in rows i - 1 .. i + 1, columns
//                                  c + lo .. c + hi (an executor may interleave them)
//   each(n, f)                     f(k), k < n (per-image scalars, dense coarsest solves)
//   host_bands(n, f), host_threads()  (host memory only) f(t), t < n, on host threads
//                                  (n <= host_threads()): the plateau labelling's bands
//   zero(ptr, bytes), upload(dst, host_src, bytes), download(host_dst, src, bytes)
//   ok()                           false once the device reported an error (the solve stops)
//   kHostMemory                    true where its memory is the host's (no copies needed)
//   kFuseRows                      true: a pointwise update and the reduction of its result run
//                                  row by row in one task (see grid_dot), with
//   grid_rows(nb, rows, cols, f, row_end)  grid(), and row_end(b, i) after row i's points
//   zebra(nb, n, first, second, work)  first(b, k) and second(b, k) for every band k < n, where
//                                  first(b, k) reads the second colour of bands k - 1 .. k + 1
//                                  (old values) and second(b, k) the first colour of the same
//                                  bands (new values): second(k) runs after first(k - 1 .. k + 1)
//   kRowGroup                      rows of one parity in a band of the row smoother
//   kPlateauChunk                  members one task of the plateau sums takes (>= kPlateauChunkMin)
//   exclusive_scan(in, out, n)     out[k] = in[0] + ... + in[k - 1] for k <= n (int32; n + 1 values),
//                                  and, for the plateau labelling in the executor's memory,
//   sort_pairs(kin, kout, vin, vout, n, bits)  (key, value) pairs sorted by key, stably; keys
//                                  (uint32) below 2^bits
// Memory: every array lives in one caller-provided workspace (see plan()).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common.h"
#include "wls.h"

// Marks the lambdas handed to an executor: nvcc compiles them for host and device.
#if defined(__CUDACC__)
#define XVF_LAMBDA __host__ __device__
#else
#define XVF_LAMBDA
#endif

namespace xvf {
namespace wls {

// An H x W grid stored with a ring of zero padding (row stride ld = W + 2).
struct Grid {
  int64_t h, w, ld;
  XVF_HD int64_t size() const { return (h + 2) * ld; }
  XVF_HD int64_t at(int64_t i, int64_t j) const { return (i + 1) * ld + (j + 1); }
};

inline Grid make_grid(int64_t h, int64_t w) { return Grid{h, w, w + 2}; }
inline Grid coarse_grid(const Grid& g) { return make_grid((g.h + 1) / 2, (g.w + 1) / 2); }

// Interpolation weights, stored per coarse cell (I, J) on the coarse grid:
// the x-edge point (2I, 2J+1) takes xw from (I, J) and xe from (I, J+1); the
// y-edge point (2I+1, 2J) takes yn from (I, J) and ys from (I+1, J); the
// centre (2I+1, 2J+1) takes nw, ne, sw, se from its four corners.
enum Weight { kXW, kXE, kYN, kYS, kNW, kNE, kSW, kSE, kWeights };

// One level of the hierarchy for nb images: every array is [nb][g.size()] (padded planes),
// indices p below already include the image's offset b * plane.
template <typename T>
struct Level {
  Grid g;
  int64_t plane;
  bool nine;                 // 9-point Galerkin stencil (all but the finest level)
  T *e, *s, *se, *sw;        // couplings to E, S, SE, SW (se, sw null on the finest level)
  T *c, *d;                  // diagonal and row sums (null on the finest level: 1 - sum, and 1)
  T* inv;                    // inverse Thomas pivots of the lines being solved (scratch shared
                             // by all levels: the smoothers compute them as they go)
  T *b, *x, *r;              // right-hand side, solution, residual/scratch (b, x: coarse levels)
  uint16_t* pw[kWeights];    // interpolation from the next coarser level, on its grid (fixed point)
  double* chol;              // dense Cholesky factors [nb][n * n] (coarsest level only)
  int64_t n_dense;           // unknowns of the dense level (0 elsewhere)

  template <bool kNine>
  XVF_HD T diag_t(int64_t p) const {
    return kNine ? c[p] : T(1) - e[p] - e[p - 1] - s[p] - s[p - g.ld];
  }
  XVF_HD T rowsum(int64_t p) const { return nine ? d[p] : T(1); }
  // The coupling of p to p + (di, dj), the stencil's kind known at compile time.
  template <bool kNine>
  XVF_HD T coupling_t(int64_t p, int di, int dj) const {
    const int64_t ld = g.ld;
    if (di == 0 && dj == 0) return diag_t<kNine>(p);
    if (di == 0) return dj > 0 ? e[p] : e[p - 1];
    if (dj == 0) return di > 0 ? s[p] : s[p - ld];
    if (!kNine) return T(0);
    if (di > 0) return dj > 0 ? se[p] : sw[p];
    return dj > 0 ? sw[p - ld + 1] : se[p - ld - 1];
  }
  XVF_HD T coupling(int64_t p, int di, int dj) const {
    return nine ? coupling_t<true>(p, di, dj) : coupling_t<false>(p, di, dj);
  }
};

// b - A x at p, the stencil's kind fixed at compile time.
template <bool kNine, typename T>
XVF_HD T residual_at(const Level<T>& L, const T* b, const T* x, int64_t p) {
  if (kNine) return b[p] - apply9(L.d[p], L.e, L.s, L.se, L.sw, x, p, L.g.ld);
  return b[p] - apply5(T(1), L.e, L.s, x, p, L.g.ld);
}

// Weight of coarse point q (cell (I, J)) in the interpolation of fine point 2(I, J) + (ei, ej);
// pw are the fine level's weights, cld the coarse row stride.
template <typename T>
XVF_HD T pweight(uint16_t* const* pw, int64_t cld, int64_t q, int ei, int ej) {
  switch ((ei + 1) * 3 + (ej + 1)) {
    case 4: return T(1);                                     // ( 0,  0)
    case 5: return decode_weight<T>(pw[kXW][q]);             // ( 0, +1)
    case 3: return decode_weight<T>(pw[kXE][q - 1]);         // ( 0, -1)
    case 7: return decode_weight<T>(pw[kYN][q]);             // (+1,  0)
    case 1: return decode_weight<T>(pw[kYS][q - cld]);       // (-1,  0)
    case 8: return decode_weight<T>(pw[kNW][q]);             // (+1, +1)
    case 6: return decode_weight<T>(pw[kNE][q - 1]);         // (+1, -1)
    case 2: return decode_weight<T>(pw[kSW][q - cld]);       // (-1, +1)
    default: return decode_weight<T>(pw[kSE][q - cld - 1]);  // (-1, -1)
  }
}

// One term of a Galerkin entry: w_K(fine e) * A(fine e, offset delta) * w_K+d(fine en),
// offsets numbered (row + 1) * 3 + (column + 1).
struct Term {
  int8_t fe, delta, en;
};

// The coarse offsets stored per point: 0, E, S, SE, SW.
constexpr int kStored = 5;
XVF_CONSTEXPR int stored_di(int k) { return k >= 2 ? 1 : 0; }
XVF_CONSTEXPR int stored_dj(int k) { return k == 1 || k == 3 ? 1 : (k == 4 ? -1 : 0); }

// The terms of A_c(K, K + d) = sum_f sum_g P[f, K] A[f, g] P[g, K + d] (f = 2K + e,
// g = f + delta, e' = g - 2(K + d)) for each stored d, for a 5-point (kNine false) and a
// 9-point fine stencil: terms[start[d] .. start[d + 1]). Built at compile time, so the
// Galerkin kernel unrolls every term with constant indices (its operands stay in registers).
constexpr int kMaxTerms = 256;
struct TermTable {
  Term terms[kMaxTerms];
  int start[kStored + 1];
};

XVF_CONSTEXPR TermTable make_term_table(bool nine) {
  TermTable t{};
  int n = 0;
  for (int d = 0; d < kStored; ++d) {
    t.start[d] = n;
    for (int ei = -1; ei <= 1; ++ei)
      for (int ej = -1; ej <= 1; ++ej)
        for (int si = -1; si <= 1; ++si)
          for (int sj = -1; sj <= 1; ++sj) {
            const int ni = ei + si - 2 * stored_di(d), nj = ej + sj - 2 * stored_dj(d);
            if (ni < -1 || ni > 1 || nj < -1 || nj > 1) continue;
            if (!nine && si && sj) continue;  // 5-point: no diagonal couplings
            t.terms[n++] = Term{int8_t((ei + 1) * 3 + ej + 1), int8_t((si + 1) * 3 + sj + 1),
                                int8_t((ni + 1) * 3 + nj + 1)};
          }
  }
  t.start[kStored] = n;
  return t;
}

template <bool kNine>
struct Terms {
  static constexpr TermTable table = make_term_table(kNine);
};
static_assert(Terms<true>::table.start[kStored] <= kMaxTerms, "Galerkin table overflow");

// sum over the terms [start[k], start[k + 1]) of wk[0][fe] * a9[fe][delta] * wk[k][en].
template <bool kNine, int k, typename T, int... I>
XVF_HD T galerkin_sum(const T (&a9)[9][9], const T (&wk)[kStored][9], std::integer_sequence<int, I...>) {
  constexpr int s0 = Terms<kNine>::table.start[k];
  T acc = T(0);
  ((acc += wk[0][Terms<kNine>::table.terms[s0 + I].fe] *
           a9[Terms<kNine>::table.terms[s0 + I].fe][Terms<kNine>::table.terms[s0 + I].delta] *
           wk[k][Terms<kNine>::table.terms[s0 + I].en]),
   ...);
  return acc;
}

template <bool kNine, int k, typename T>
XVF_HD T galerkin_entry(const T (&a9)[9][9], const T (&wk)[kStored][9]) {
  constexpr int n = Terms<kNine>::table.start[k + 1] - Terms<kNine>::table.start[k];
  return galerkin_sum<kNine, k>(a9, wk, std::make_integer_sequence<int, n>{});
}

// Bump allocator over the caller's workspace; with a null base it only measures.
struct Arena {
  char* base = nullptr;
  size_t used = 0;
  template <typename U>
  U* take(int64_t n) {
    used = (used + 255) & ~size_t(255);
    U* p = base ? reinterpret_cast<U*>(base + used) : nullptr;
    used += size_t(n) * sizeof(U);
    return p;
  }
};

// Damping of the plateau step (its Jacobi iteration matrix has spectral radius < 2, so any
// omega < 1 keeps the V-cycle a convergent, symmetric preconditioner).
constexpr double kPlateauOmega = 0.7;
// Plateau edges: couplings of at least this fraction of the largest, lam / eps.
constexpr double kPlateauStrong = 0.5;
// The smallest chunk of members an executor may give one task of the plateau sums (the
// workspace holds the pieces of the aggregates larger than that).
constexpr int64_t kPlateauChunkMin = 64;
// Aggregates of 2 .. kPlateauFixed pixels (94% of them on 8-bit radiographs, half of them
// pairs) are numbered by size, so each size runs a loop of fixed length, free of the branch
// mispredictions of variable short loops; larger ones follow (see order_aggregates).
constexpr int kPlateauFixed = 8;
// Counts kept in the workspace for later apply_outside calls: n_agg, n_members, n_pieces,
// n_big, then the first aggregate of each size 2 .. kPlateauFixed and of the larger ones.
constexpr int kAggCounts = 4 + kPlateauFixed;
// After the counts, what setup() built them for: a mark, nb, H, W and sizeof(T), so that
// apply_outside refuses a workspace of the right size that another setup (another shape of
// as many bytes) or none filled.
constexpr int kSignature = 5;
constexpr int64_t kSetupMark = 0x78766657534c5331;  // the bytes of "xvfWSLS1"

// Per-image CG scalars, [nb][kScalars] doubles: r.z, the step along p and the beta of p.
enum Scalar { kRZ, kStep, kBeta, kScalars };

template <typename T, class Exec>
struct Multigrid {
  Exec ex;
  int64_t nb = 0;
  std::vector<Level<T>> levels;
  // Conjugate gradients on the finest level: the iterate in double (a float32 vector alone
  // leaves a residual of ~1e-4 through couplings up to 1/eps), r, p, z in T.
  double* xk = nullptr;
  T *r = nullptr, *p = nullptr, *z = nullptr;
  double* sc = nullptr;    // per-image scalars
  double* part = nullptr;  // per-row partial sums [nb][H]
  double* dots = nullptr;  // per-image results of the last reduction [nb]
  double* flags = nullptr;  // per-image 1.0 while CG runs on it, 0.0 once converged [nb]
  double* dense_y = nullptr;  // per-image vectors of the dense coarsest solve
  // Plateau aggregates of the finest level (see build_aggregates), numbered by size: the
  // members (padded indices) of the aggregates of each size 2 .. kPlateauFixed follow one
  // another, m to an aggregate, so their starts are counted, not stored (member_firsts);
  // agg_start holds only the starts of the larger ones, aggregate a at a - size_first[last],
  // members[start .. next start). Per aggregate omega / (1^T A 1 over it). Aggregates larger
  // than Exec::kPlateauChunk ("big") are summed in pieces of that many members (see
  // plateau_step): per piece its member range [begin, end) and partial sum (the first piece's
  // slot then holds the big aggregate's correction); per big aggregate its number and first
  // piece.
  int32_t *agg_start = nullptr, *agg_members = nullptr;
  T* agg_scale = nullptr;
  int32_t *piece_range = nullptr, *big_first = nullptr, *big_id = nullptr;
  double* piece_sum = nullptr;
  int64_t n_agg = 0, n_members = 0, n_pieces = 0, n_big = 0;
  // size_first[s - 2]: the first aggregate of s pixels (s = 2 .. kPlateauFixed); the last
  // entry, the first of the larger ones
  int64_t size_first[kPlateauFixed] = {};
  int64_t* agg_count = nullptr;  // the counts above, kept for later apply_outside calls
  // Where the executor's memory is the host's: label the plateaus with the passes written
  // for device memory (build_aggregates_parallel) instead of the host bands; a test switch
  // (the same arrays either way). Device memory is always labelled in place.
  bool parallel_labelling = false;
  char* base = nullptr;
  size_t bytes = 0;
  size_t agg_first_byte = 0, agg_end_byte = 0;  // the aggregate arrays' byte range in the workspace
  // Where the labelling keeps every aggregate's start (nb * H * W / 2 + 1 int32) until it
  // stores the larger ones' in agg_start: the first coarse level's arrays, built after it.
  // They span 8 padded planes of (H + 1) / 2 x (W + 1) / 2, at least 2 * nb * H * W values.
  size_t start_scratch_byte = 0;

  // Lays out the whole solver for nb images of H x W in `base` (or only measures, base null).
  void plan(char* base_, int64_t nb_, int64_t H, int64_t W) {
    nb = nb_;
    base = base_;
    levels.clear();
    Arena a{base_, 0};
    Grid g = make_grid(H, W);
    const int64_t fine = g.size();
    // The CG vectors; during setup the row-sum products borrow their memory (two double
    // vectors of the finest size: x and the T vectors behind it span at least 16 B a point),
    // and so does the host's plateau labelling (r, p, z).
    xk = a.take<double>(nb * fine);
    r = a.take<T>(nb * fine);
    p = a.take<T>(nb * fine);
    z = a.take<T>(nb * fine);
    sc = a.take<double>(nb * kScalars);
    part = a.take<double>(nb * H);
    dots = a.take<double>(nb);
    flags = a.take<double>(nb);
    // aggregates hold >= 2 pixels: at most half the pixels, planned for the worst case; those
    // of more than kPlateauFixed, whose starts are stored, at most a (kPlateauFixed + 1)-th.
    // The arrays are written before they are read, so setup does not zero them: on the host,
    // the pages an image's plateaus do not need are never touched and never become resident.
    agg_count = a.take<int64_t>(kAggCounts + kSignature);
    agg_first_byte = a.used;
    agg_members = a.take<int32_t>(nb * H * W);
    agg_start = a.take<int32_t>(max_large_aggregates(nb * H * W) + 1);
    agg_scale = a.take<T>(nb * H * W / 2);
    const int64_t max_big = max_big_aggregates(nb * H * W), max_pieces = max_big_pieces(nb * H * W);
    piece_range = a.take<int32_t>(2 * max_pieces);
    piece_sum = a.take<double>(max_pieces);
    big_first = a.take<int32_t>(max_big + 1);
    big_id = a.take<int32_t>(max_big);
    agg_end_byte = a.used;
    // One residual/scratch array and one pivot array for all levels: a level's residual is
    // dead once restricted (the coarser levels run before its post-smoothing rewrites it), and
    // the smoothers write their scratch before reading it. Their padding is therefore not
    // zero: loops read it only multiplied by a zero coupling or weight, which gives 0 since
    // the arrays hold finite values only (pivots of SPD line systems, residuals; the
    // parallel plateau labelling, which borrows them, leaves zeros).
    T* const scratch = a.take<T>(nb * fine);
    T* const pivots = a.take<T>(nb * fine);
    for (int k = 0;; ++k) {
      Level<T> L{};
      L.g = g;
      L.plane = g.size();
      L.nine = k > 0;
      const int64_t n = nb * L.plane;
      L.e = a.take<T>(n);
      if (k == 1) start_scratch_byte = a.used - size_t(n) * sizeof(T);
      L.s = a.take<T>(n);
      if (L.nine) {
        L.se = a.take<T>(n);
        L.sw = a.take<T>(n);
        L.c = a.take<T>(n);
        L.d = a.take<T>(n);
        L.b = a.take<T>(n);
        L.x = a.take<T>(n);
      }
      L.r = scratch;
      const bool coarsest = g.h * g.w <= kCoarsestPoints;
      if (coarsest) {
        L.n_dense = g.h * g.w;
        L.chol = a.take<double>(nb * L.n_dense * L.n_dense);
        dense_y = a.take<double>(nb * L.n_dense);
      } else {
        L.inv = pivots;
        const Grid cg = coarse_grid(g);
        for (auto& w : L.pw) w = a.take<uint16_t>(nb * cg.size());
      }
      levels.push_back(L);
      if (coarsest) break;
      g = coarse_grid(g);
    }
    bytes = a.used;
  }

  // The most aggregates of more than kPlateauFixed pixels (their starts are stored), and of
  // more than kPlateauChunkMin (the big ones, summed in pieces), among `pixels` pixels.
  // The pieces of the big ones: ceil(m / C) <= 2 m / (C + 1) for m > C members, C >= 64.
  static constexpr int64_t max_large_aggregates(int64_t pixels) { return pixels / (kPlateauFixed + 1); }
  static constexpr int64_t max_big_aggregates(int64_t pixels) { return pixels / (kPlateauChunkMin + 1); }
  static constexpr int64_t max_big_pieces(int64_t pixels) { return 2 * pixels / (kPlateauChunkMin + 1); }

  // Where the members of the aggregates of each size 2 .. kPlateauFixed begin, and (the last
  // entry) those of the larger ones: the sizes' counts times their sizes, summed.
  void member_firsts(int64_t* first) const {
    first[0] = 0;
    for (int c = 0; c + 1 < kPlateauFixed; ++c) first[c + 1] = first[c] + (size_first[c + 1] - size_first[c]) * (c + 2);
  }

  // After the labelling: the starts of the aggregates larger than kPlateauFixed, from every
  // aggregate's start in the level-1 scratch, which goes back to zeros (the level's padding
  // must be zero).
  void store_large_starts(int32_t* every_start) {
    const int64_t a0 = size_first[kPlateauFixed - 1];
    int32_t* const st = agg_start;
    ex.lines(1, n_agg - a0 + 1, [=] XVF_LAMBDA(int64_t, int64_t t) { st[t] = every_start[a0 + t]; }, 1);
    ex.zero(every_start, size_t(n_agg + 1) * sizeof(int32_t));
  }

  // ---- setup ---------------------------------------------------------------

  // Builds the finest stencil of images[nb][H][W] (unpadded, executor memory) and the hierarchy.
  // The workspace must be planned; setup zeroes the levels and the scratch behind the
  // aggregate arrays first (the padding rings must be zero). What lies before them (the CG
  // vectors, borrowed by setup, and the reductions) is written before it is read, and the
  // aggregate arrays too (see plan): a kept workspace's old values there are never seen.
  void setup(const T* images, T lam, T alpha, T eps) {
    ex.zero(base + agg_end_byte, bytes - agg_end_byte);
    const Level<T> L = levels[0];
    const Grid g = L.g;
    const int64_t plane = L.plane;
    // the log guide once per pixel, in the finest level's scratch (free until the V-cycles)
    T* lg = L.r;
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      lg[b * plane + g.at(i, j)] = log_guide(images[b * g.h * g.w + i * g.w + j]);
    });
    // Both weights at every point, the edges to the padding included (lg's padding is the
    // zeroed scratch, so they are finite), then zeros on those edges: a loop without a
    // branch is vector code.
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t q = b * plane + g.at(i, j);
      L.e[q] = -edge_weight(lg[q], lg[q + 1], lam, alpha, eps);
      L.s[q] = -edge_weight(lg[q], lg[q + g.ld], lam, alpha, eps);
    });
    ex.grid(nb, g.h, 1, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t) {
      L.e[b * plane + g.at(i, g.w - 1)] = T(0);
    });
    ex.grid(nb, 1, g.w, [=] XVF_LAMBDA(int64_t b, int64_t, int64_t j) {
      L.s[b * plane + g.at(g.h - 1, j)] = T(0);
    });
    // the plateaus first: their labelling borrows the first coarse level's memory
    if constexpr (Exec::kHostMemory) {
      if (parallel_labelling)
        build_aggregates_parallel(lam, eps);
      else
        build_aggregates(lam, eps);
    } else {
      build_aggregates_parallel(lam, eps);
    }
    for (size_t k = 0; k + 1 < levels.size(); ++k) {
      interpolation(levels[k], levels[k + 1]);
      galerkin(levels[k], levels[k + 1]);
      row_sums(levels[k], levels[k + 1]);
      diagonal(levels[k + 1]);
    }
    factor_dense(levels.back());
  }

  // Plateaus: the connected sets of pixels joined by edges whose weight is at least half the
  // maximum lam / eps (neighbours equal to within |dl|^alpha <= eps: in 8-bit data, equal
  // grey levels, e.g. a saturated background). Inside one the couplings are ~1e4, to the
  // outside often ~1-10, so its constant mode has low energy and large extent: the error
  // component that line smoothers and 2:1 geometric interpolation both miss (measured: CG
  // needed 38-44 iterations on dark NIH images with the V-cycle alone, 8-10 with the
  // plateau step). The V-cycle therefore starts and ends on the finest level with one
  // damped Jacobi step on the plateau space: x += omega P D^-1 P^T (b - A x), P constant
  // on each plateau, D = diag(P^T A P), applied before the pre- and after the post-smoothing
  // so the preconditioner stays symmetric. Labelling: union-find, on the host here, and by
  // whole-grid passes in the executor's memory in build_aggregates_parallel (the GPU's way;
  // the CPU tests check that both give the same arrays).
  //
  // The labelling runs in bands of rows on the host's threads (Exec::host_bands), and every
  // result is the serial one: union-find inside each band, the unions across band
  // boundaries, then every pixel's root (read-only finds); a pixel belongs to an aggregate
  // iff one of its four edges is strong (singletons have none), aggregates are numbered in
  // the order of their first pixel, members listed in pixel order, and D summed per
  // aggregate over its members in that order.
  void build_aggregates(T lam, T eps) {
    const Level<T>& L = levels[0];
    const Grid g = L.g;
    n_agg = n_members = n_pieces = n_big = 0;
    std::fill(size_first, size_first + kPlateauFixed, int64_t(0));
    upload_counts();
    if (L.n_dense || !(lam > T(0)) || nb * L.plane >= (int64_t(1) << 31)) return;
    static_assert(Exec::kHostMemory, "the host labels plateaus in its own memory");
    const int64_t n = g.h * g.w, w = g.w, ld = g.ld;
    const T *e = L.e, *s = L.s;
    int32_t *members = agg_members, *start = reinterpret_cast<int32_t*>(base + start_scratch_byte);
    // Scratch: three int32 arrays of one image (the CG vectors r, p, z, free until the solve
    // starts: no extra peak) and one double per padded point of the batch (the CG iterate).
    static_assert(sizeof(T) >= sizeof(int32_t), "the scratch borrows T vectors");
    int32_t* const sa = reinterpret_cast<int32_t*>(r);
    int32_t* const sb = reinterpret_cast<int32_t*>(p);
    int32_t* const sc3 = reinterpret_cast<int32_t*>(z);
    double* const contrib = xk;
    const T strong = T(kPlateauStrong) * lam / eps;  // couplings are stored negated: -e, -s
    // bands of rows: at most 4 (the per-band member counts below share two scratch arrays)
    const int tb = int(std::max<int64_t>(1, std::min<int64_t>({ex.host_threads(), 4, g.h / 32})));
    int64_t row0[5] = {};
    for (int t = 0; t <= tb; ++t) row0[t] = g.h * t / tb;
    int64_t roots[4], first_num[4];
    start[0] = 0;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t off = b * L.plane, first = n_agg;
      auto linked_e = [&](int64_t q) { return -e[q] >= strong; };  // padding couplings are 0
      auto linked_s = [&](int64_t q) { return -s[q] >= strong; };
      // union-find that links every set to its smallest pixel (parent[k] <= k)
      int32_t* parent = sa;
      auto find = [&](int32_t v) {
        while (parent[v] != v) v = parent[v] = parent[parent[v]];
        return v;
      };
      auto unite = [&](int32_t u, int32_t v) {
        u = find(u);
        v = find(v);
        if (u < v)
          parent[v] = u;
        else
          parent[u] = v;
      };
      ex.host_bands(tb, [&](int t) {  // inside each band: parents stay in the band
        for (int64_t k = row0[t] * w; k < row0[t + 1] * w; ++k) parent[k] = int32_t(k);
        for (int64_t i = row0[t]; i < row0[t + 1]; ++i)
          for (int64_t j = 0; j < w; ++j) {
            const int64_t k = i * w + j, q = off + g.at(i, j);
            if (linked_e(q)) unite(int32_t(k), int32_t(k + 1));
            if (i + 1 < row0[t + 1] && linked_s(q)) unite(int32_t(k), int32_t(k + w));
          }
      });
      for (int t = 1; t < tb; ++t)  // across the band boundaries
        for (int64_t j = 0, i = row0[t] - 1; j < w; ++j)
          if (linked_s(off + g.at(i, j))) unite(int32_t(i * w + j), int32_t(i * w + j + w));
      // every linked pixel's root (-1: a single pixel); each band numbers its roots
      int32_t *root = sc3, *local = sb;
      ex.host_bands(tb, [&](int t) {
        int32_t count = 0;
        for (int64_t i = row0[t]; i < row0[t + 1]; ++i)
          for (int64_t j = 0; j < w; ++j) {
            const int64_t k = i * w + j, q = off + g.at(i, j);
            if (!(linked_e(q) || linked_e(q - 1) || linked_s(q) || linked_s(q - ld))) {
              root[k] = -1;
              continue;
            }
            int32_t v = int32_t(k);
            while (parent[v] != v) v = parent[v];
            root[k] = v;
            if (v == k) local[k] = count++;
          }
        roots[t] = count;
      });
      for (int t = 0; t < tb; ++t) {
        first_num[t] = n_agg;
        n_agg += roots[t];
      }
      // labels (aggregate numbers within this image), into the parents' place
      int32_t* lab = sa;
      ex.host_bands(tb, [&](int t) {
        for (int64_t k = row0[t] * w; k < row0[t + 1] * w; ++k) {
          const int32_t v = root[k];
          if (v < 0) {
            lab[k] = -1;
            continue;
          }
          int u = 0;
          while (v >= row0[u + 1] * w) ++u;
          lab[k] = int32_t(first_num[u] - first + local[v]);
        }
      });
      // per pixel its part of D = 1^T A 1 over its aggregate: 1 plus its couplings that
      // leave the aggregate; per band the members of each aggregate (in the roots' and the
      // local numbers' place, two bands to an array: at most n / 2 aggregates)
      const int64_t na = n_agg - first;
      auto count_of = [&](int t) { return (t < 2 ? sc3 : sb) + (t % 2) * (n / 2); };
      ex.host_bands(tb, [&](int t) {
        int32_t* cnt = count_of(t);
        std::fill(cnt, cnt + na, 0);
        for (int64_t i = row0[t]; i < row0[t + 1]; ++i)
          for (int64_t j = 0; j < w; ++j) {
            const int64_t k = i * w + j, q = off + g.at(i, j);
            const int32_t la = lab[k];
            if (la < 0) continue;
            double d = 1.0;
            if (j > 0 && lab[k - 1] != la) d -= double(e[q - 1]);
            if (j + 1 < w && lab[k + 1] != la) d -= double(e[q]);
            if (i > 0 && lab[k - w] != la) d -= double(s[q - ld]);
            if (i + 1 < g.h && lab[k + w] != la) d -= double(s[q]);
            contrib[q] = d;
            ++cnt[la];
          }
      });
      // start of each aggregate, and where each band's members of it go
      for (int64_t a = 0; a < na; ++a) {
        int64_t at = start[first + a];
        for (int t = 0; t < tb; ++t) {
          int32_t* cnt = count_of(t);
          const int32_t c = cnt[a];
          cnt[a] = int32_t(at);
          at += c;
        }
        start[first + a + 1] = int32_t(at);
      }
      ex.host_bands(tb, [&](int t) {
        int32_t* next = count_of(t);
        for (int64_t i = row0[t]; i < row0[t + 1]; ++i)
          for (int64_t j = 0; j < w; ++j) {
            const int32_t la = lab[i * w + j];
            if (la >= 0) members[next[la]++] = int32_t(off + g.at(i, j));
          }
      });
    }
    n_members = start[n_agg];
    // D of each aggregate, its members' parts summed in order (into the spent labels)
    double* const diag = reinterpret_cast<double*>(sa);
    const int ta = int(std::min<int64_t>(ex.host_threads(), n_agg / 4096 + 1));
    ex.host_bands(ta, [&](int t) {
      for (int64_t a = n_agg * t / ta; a < n_agg * (t + 1) / ta; ++a) {
        diag[a] = aggregate_diag(contrib, members, start[a], start[a + 1]);
      }
    });
    order_aggregates(start, members, diag, agg_scale, sb, sc3);
    // the pieces of the big aggregates, counted from each aggregate's own start (so a sum
    // does not depend on where the aggregate sits in a batch)
    constexpr int64_t C = Exec::kPlateauChunk;
    static_assert(C >= kPlateauChunkMin, "the workspace is planned for kPlateauChunkMin");
    for (int64_t a = 0; a < n_agg; ++a) {
      if (start[a + 1] - start[a] <= C) continue;
      big_id[n_big] = int32_t(a);
      big_first[n_big++] = int32_t(n_pieces);
      n_pieces = write_pieces(piece_range, int32_t(n_pieces), start[a], start[a + 1], int32_t(C));
    }
    big_first[n_big] = int32_t(n_pieces);
    store_large_starts(start);
    upload_counts();
  }

  // The plateaus of build_aggregates, built by whole-grid passes in the executor's memory (one
  // thread per point on a GPU, where the host labelling would cost ~20 ms per million pixels
  // and two copies), to the same arrays bit for bit:
  // - a lock-free union-find links every plateau to its smallest pixel (plateau_merge: an
  //   atomic min on roots, after Playne & Hawick 2018), whatever order the links run in;
  // - an exclusive scan over the roots numbers the aggregates in the order of their first pixel;
  // - a stable sort of the pixels by aggregate lists each aggregate's members in pixel order;
  // - a stable sort of the aggregates by size class renumbers them as order_aggregates does;
  // - D is summed in the pieces of aggregate_diag, a piece per thread.
  // The host reads back only counts. Scratch: the CG vectors r, p, z and the finest level's
  // residual and pivot arrays (int32 views of at least nb * H * W + 65 values each, unused
  // until the solve), and xk for the parts of D, as on the host.
  void build_aggregates_parallel(T lam, T eps) {
    const Level<T>& L = levels[0];
    const Grid g = L.g;
    n_agg = n_members = n_pieces = n_big = 0;
    std::fill(size_first, size_first + kPlateauFixed, int64_t(0));
    if (L.n_dense || !(lam > T(0)) || nb * L.plane >= (int64_t(1) << 31)) {
      upload_counts();
      return;
    }
    const int64_t n = g.h * g.w, total = nb * n, plane = L.plane, ld = g.ld, w = g.w, h = g.h;
    const T *e = L.e, *s = L.s;
    const T strong = T(kPlateauStrong) * lam / eps;  // couplings are stored negated: -e, -s
    int32_t* const a0 = reinterpret_cast<int32_t*>(r);
    int32_t* const a1 = reinterpret_cast<int32_t*>(p);
    int32_t* const a2 = reinterpret_cast<int32_t*>(z);
    int32_t* const a3 = reinterpret_cast<int32_t*>(L.r);
    int32_t* const a4 = reinterpret_cast<int32_t*>(L.inv);
    double* const contrib = xk;
    int32_t *const st = reinterpret_cast<int32_t*>(base + start_scratch_byte), *const mem = agg_members;

    // union-find over the strong edges (the padding couplings, and so the edges that would
    // leave a row or an image, are 0), then every linked pixel's root (-1: a single pixel)
    int32_t* const parent = a0;
    ex.grid(nb, h, w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * n + i * w + j;
      parent[k] = int32_t(k);
    });
    ex.grid(nb, h, w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * n + i * w + j, q = b * plane + g.at(i, j);
      if (-e[q] >= strong) plateau_merge(parent, int32_t(k), int32_t(k + 1));
      if (-s[q] >= strong) plateau_merge(parent, int32_t(k), int32_t(k + w));
    });
    int32_t* const root = a1;
    int32_t* const is_root = a2;
    ex.grid(nb, h, w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * n + i * w + j, q = b * plane + g.at(i, j);
      const bool linked = -e[q] >= strong || -e[q - 1] >= strong || -s[q] >= strong || -s[q - ld] >= strong;
      const int32_t v = linked ? plateau_root(parent, int32_t(k)) : -1;
      root[k] = v;
      is_root[k] = v == k ? 1 : 0;
    });
    // aggregate numbers, in the order of the roots (each plateau's first pixel)
    int32_t* const number = a3;
    ex.exclusive_scan(is_root, number, total);
    n_agg = read_back(number + total);
    if (n_agg == 0) {
      ex.zero(number, size_t(nb * plane) * sizeof(T));  // (see the end)
      upload_counts();
      return;
    }
    int32_t* const lab = a2;
    ex.grid(nb, h, w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * n + i * w + j;
      lab[k] = root[k] < 0 ? -1 : number[root[k]];
    });
    // per member its part of D (as build_aggregates), and the pixels' sort keys (the
    // aggregate; after all of them the single pixels) and values (the padded index)
    const int32_t nagg = int32_t(n_agg);
    uint32_t* const key = reinterpret_cast<uint32_t*>(a0);
    int32_t* const at = a1;
    ex.grid(nb, h, w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * n + i * w + j, q = b * plane + g.at(i, j);
      const int32_t la = lab[k];
      key[k] = uint32_t(la < 0 ? nagg : la);
      at[k] = int32_t(q);
      if (la < 0) return;
      double d = 1.0;
      if (j > 0 && lab[k - 1] != la) d -= double(e[q - 1]);
      if (j + 1 < w && lab[k + 1] != la) d -= double(e[q]);
      if (i > 0 && lab[k - w] != la) d -= double(s[q - ld]);
      if (i + 1 < h && lab[k + w] != la) d -= double(s[q]);
      contrib[q] = d;
    });
    int bits = 1;
    while ((int64_t(1) << bits) <= n_agg) ++bits;
    uint32_t* const owner = reinterpret_cast<uint32_t*>(a3);  // per member position, its aggregate
    ex.sort_pairs(key, owner, at, mem, total, bits);
    // each aggregate's first member position; the single pixels' first is the member count
    ex.each(1, [=] XVF_LAMBDA(int64_t) { st[nagg] = int32_t(total); });
    ex.lines(1, total, [=] XVF_LAMBDA(int64_t, int64_t m) {
      if (m == 0 || owner[m - 1] != owner[m]) st[owner[m]] = int32_t(m);
    }, 1);
    n_members = read_back(st + n_agg);

    // renumbered by size class, stably (order_aggregates)
    uint32_t* const cls = reinterpret_cast<uint32_t*>(a1);
    int32_t* const ident = a2;
    int32_t* const class_first = a4;  // the first new number of each class present, else n_agg
    int32_t* const order = a4 + 64;   // order[i]: the aggregate that becomes number i
    ex.lines(1, n_agg, [=] XVF_LAMBDA(int64_t, int64_t a) {
      const int32_t m = st[a + 1] - st[a];
      cls[a] = uint32_t(m <= kPlateauFixed ? m - 2 : kPlateauFixed - 1);
      ident[a] = int32_t(a);
    }, 1);
    uint32_t* const cls_sorted = reinterpret_cast<uint32_t*>(a0);
    ex.sort_pairs(cls, cls_sorted, ident, order, n_agg, 3);
    // where each class starts in the sorted order (no atomics: a million aggregates would
    // queue on eight counters)
    ex.lines(1, kPlateauFixed, [=] XVF_LAMBDA(int64_t, int64_t c) { class_first[c] = nagg; }, 1);
    ex.lines(1, n_agg, [=] XVF_LAMBDA(int64_t, int64_t i) {
      if (i == 0 || cls_sorted[i - 1] != cls_sorted[i]) class_first[cls_sorted[i]] = int32_t(i);
    }, 1);
    int32_t first[kPlateauFixed];
    ex.download(first, class_first, sizeof(first));
    // size_first[c]: aggregates of a class below c, i.e. where the first class >= c starts
    for (int c = kPlateauFixed - 1; c >= 0; --c)
      size_first[c] = first[c] < n_agg ? first[c] : (c + 1 < kPlateauFixed ? size_first[c + 1] : n_agg);
    int32_t* const size = a1;
    int32_t* const perm = a0;  // perm[a]: the new number of aggregate a
    ex.lines(1, n_agg, [=] XVF_LAMBDA(int64_t, int64_t i) {
      size[i] = st[order[i] + 1] - st[order[i]];
      perm[order[i]] = int32_t(i);
    }, 1);
    int32_t* const fresh = a2;
    ex.exclusive_scan(size, fresh, n_agg);
    int32_t* const old_members = a1;
    ex.lines(1, n_members, [=] XVF_LAMBDA(int64_t, int64_t m) { old_members[m] = mem[m]; }, 1);
    ex.lines(1, n_members, [=] XVF_LAMBDA(int64_t, int64_t m) {
      const int32_t a = int32_t(owner[m]);
      mem[fresh[perm[a]] + (m - st[a])] = old_members[m];
    }, 1);
    ex.lines(1, n_agg + 1, [=] XVF_LAMBDA(int64_t, int64_t i) { st[i] = fresh[i]; }, 1);

    // D, a piece per thread, and each aggregate's scale omega / D
    build_pieces_parallel(st, kPlateauChunkMin, a0, a1, a2, a3);
    const int32_t* const piece_of = a3;  // each aggregate's first piece (n_agg + 1 values)
    const int32_t* const range = piece_range;
    double* const psum = piece_sum;
    T* const scale = agg_scale;
    ex.lines(1, n_pieces, [=] XVF_LAMBDA(int64_t, int64_t q) {
      double sum = 0.0;
      for (int32_t k = range[2 * q]; k < range[2 * q + 1]; ++k) sum += contrib[mem[k]];
      psum[q] = sum;
    }, kPlateauChunkMin);
    ex.lines(1, n_agg, [=] XVF_LAMBDA(int64_t, int64_t a) {
      double d = 0.0;
      if (piece_of[a + 1] == piece_of[a])
        d = aggregate_diag(contrib, mem, st[a], st[a + 1]);
      else
        for (int32_t q = piece_of[a]; q < piece_of[a + 1]; ++q) d += psum[q];
      scale[a] = T(kPlateauOmega / d);
    }, 8);
    if (Exec::kPlateauChunk != kPlateauChunkMin) build_pieces_parallel(st, Exec::kPlateauChunk, a0, a1, a2, a3);
    // the borrowed scratch and pivot arrays back to finite values (their padding is read
    // times zero, see plan): zeros, whatever integers the passes left there
    ex.zero(a3, size_t(nb * plane) * sizeof(T));
    ex.zero(a4, size_t(nb * plane) * sizeof(T));
    store_large_starts(st);
    upload_counts();
  }

  // The pieces of the aggregates of more than C members (see plateau_step), built in
  // parallel from the ordered aggregates, whose starts st holds; sets n_big and n_pieces.
  // Leaves each aggregate's first piece in first_piece (n_agg + 1 values). Scratch: flag,
  // count, big_number.
  void build_pieces_parallel(const int32_t* st, int64_t C, int32_t* flag, int32_t* count, int32_t* big_number,
                             int32_t* first_piece) {
    const int32_t c = int32_t(C);
    ex.lines(1, n_agg, [=] XVF_LAMBDA(int64_t, int64_t a) {
      const int32_t m = st[a + 1] - st[a];
      flag[a] = m > c ? 1 : 0;
      count[a] = m > c ? (m + c - 1) / c : 0;
    }, 1);
    ex.exclusive_scan(flag, big_number, n_agg);
    ex.exclusive_scan(count, first_piece, n_agg);
    n_big = read_back(big_number + n_agg);
    n_pieces = read_back(first_piece + n_agg);
    int32_t *range = piece_range, *bfirst = big_first, *bid = big_id;
    const int32_t nbig = int32_t(n_big), npieces = int32_t(n_pieces);
    ex.lines(1, n_agg, [=] XVF_LAMBDA(int64_t, int64_t a) {
      if (st[a + 1] - st[a] <= c) return;
      const int32_t t = big_number[a];
      bid[t] = int32_t(a);
      bfirst[t] = first_piece[a];
      write_pieces(range, first_piece[a], st[a], st[a + 1], c);
    }, 8);
    ex.each(1, [=] XVF_LAMBDA(int64_t) { bfirst[nbig] = npieces; });
  }

  // The member ranges [k, k + c) of an aggregate's members [begin, end), the last one cut
  // at end, as pieces q, q + 1, ... of range; returns the next piece.
  XVF_HD static int32_t write_pieces(int32_t* range, int32_t q, int32_t begin, int32_t end, int32_t c) {
    for (int32_t k = begin; k < end; k += c, ++q) {
      range[2 * q] = k;
      range[2 * q + 1] = k + c < end ? k + c : end;
    }
    return q;
  }

  // One value of executor memory, on the host.
  int64_t read_back(const int32_t* at) {
    int32_t v = 0;
    ex.download(&v, at, sizeof(v));
    return v;
  }

  // The union-find of build_aggregates_parallel, safe for any number of threads linking at
  // once: parents only ever decrease, so every set ends linked to its smallest pixel.
  XVF_HD static int32_t plateau_root(const int32_t* parent, int32_t v) {
    for (int32_t up = atomic_load(parent + v); up != v; up = atomic_load(parent + v)) v = up;
    return v;
  }
  XVF_HD static void plateau_merge(int32_t* parent, int32_t u, int32_t v) {
    for (;;) {
      u = plateau_root(parent, u);
      v = plateau_root(parent, v);
      if (u == v) return;
      if (u < v) {  // u: the larger root, to be linked under v
        const int32_t t = u;
        u = v;
        v = t;
      }
      const int32_t old = atomic_min(parent + u, v);
      if (old == u) return;  // u was still a root: linked
      u = old;  // another thread linked u first: go on from its new parent
    }
  }

  // D of one aggregate: its members' parts summed in order, in pieces of kPlateauChunkMin
  // members whose sums are added in order. The parallel labelling sums its big aggregates
  // piece by piece on different threads; this grouping gives both paths the same D.
  XVF_HD static double aggregate_diag(const double* contrib, const int32_t* members, int32_t begin,
                                      int32_t end) {
    double total = 0.0;
    for (int32_t k0 = begin; k0 < end; k0 += int32_t(kPlateauChunkMin)) {
      const int32_t k1 = k0 + int32_t(kPlateauChunkMin) < end ? k0 + int32_t(kPlateauChunkMin) : end;
      double sum = 0.0;
      for (int32_t k = k0; k < k1; ++k) sum += contrib[members[k]];
      total += sum;
    }
    return total;
  }

  // Renumbers the aggregates by size (sizes 2 .. kPlateauFixed, then the larger ones; first
  // pixel order, as built, within each size: a stable counting sort), moves their members
  // along, and sets each one's scale omega / D. A sum over an aggregate keeps its members'
  // order, so the plateau step's results do not change. spare1 (2 n_agg + 1 values) and
  // spare2 (n_members) are spent scratch: the CG vectors.
  void order_aggregates(int32_t* start, int32_t* members, const double* diag, T* scale, int32_t* spare1,
                        int32_t* spare2) {
    int32_t *perm = spare1, *fresh = spare1 + n_agg, *old = spare2;
    auto cls = [&](int64_t a) {
      const int64_t m = start[a + 1] - start[a];
      return m <= kPlateauFixed ? int(m - 2) : kPlateauFixed - 1;
    };
    int64_t next[kPlateauFixed] = {}, total = 0;
    for (int64_t a = 0; a < n_agg; ++a) ++next[cls(a)];
    for (int c = 0; c < kPlateauFixed; ++c) {
      const int64_t count = next[c];
      size_first[c] = next[c] = total;
      total += count;
    }
    fresh[0] = 0;
    for (int64_t a = 0; a < n_agg; ++a) {
      perm[a] = int32_t(next[cls(a)]++);
      fresh[perm[a] + 1] = start[a + 1] - start[a];
      scale[perm[a]] = T(kPlateauOmega / diag[a]);
    }
    for (int64_t a = 0; a < n_agg; ++a) fresh[a + 1] += fresh[a];
    std::copy(members, members + n_members, old);
    for (int64_t a = 0; a < n_agg; ++a) std::copy(old + start[a], old + start[a + 1], members + fresh[perm[a]]);
    std::copy(fresh, fresh + n_agg + 1, start);
  }

  void upload_counts() {
    const Grid g = levels[0].g;
    int64_t counts[kAggCounts + kSignature] = {n_agg, n_members, n_pieces, n_big};
    for (int c = 0; c < kPlateauFixed; ++c) counts[4 + c] = size_first[c];
    const int64_t signature[kSignature] = {kSetupMark, nb, g.h, g.w, int64_t(sizeof(T))};
    for (int c = 0; c < kSignature; ++c) counts[kAggCounts + c] = signature[c];
    ex.upload(agg_count, counts, sizeof(counts));
  }

  // x += omega P D^-1 P^T (b - A x) on the finest level (x = 0 on entry when `zero_x`).
  // The residual comes first, over the grid into the level's scratch r (with x = 0 it is b
  // itself), so each aggregate's correction can be added as soon as its sum is known. The
  // sums run in double in a fixed order (deterministic, and the same for an image alone or
  // in a batch). Aggregates of a fixed size are one task each, the others of at most
  // Exec::kPlateauChunk members too; larger ones (a saturated background can hold a third
  // of the image) are summed in pieces of that size so threads share even work, then the
  // pieces are added and the correction is scattered piece by piece.
  void plateau_step(const Level<T>& L, const T* bv, T* x, bool zero_x) {
    if (n_agg == 0) return;
    if (!zero_x) residual<false>(L, bv, x);
    const T* src = zero_x ? bv : L.r;
    int64_t mfirst[kPlateauFixed];
    member_firsts(mfirst);
    plateau_fixed(src, x, mfirst, std::make_integer_sequence<int, kPlateauFixed - 1>{});
    constexpr int64_t C = Exec::kPlateauChunk;
    const int32_t *st = agg_start, *mem = agg_members, *range = piece_range;
    const int32_t *bfirst = big_first, *bid = big_id;
    const T* scale = agg_scale;
    double* psum = piece_sum;
    const int64_t a0 = size_first[kPlateauFixed - 1], na = n_agg - a0;
    const int64_t fixed_members = mfirst[kPlateauFixed - 1];  // members of the fixed sizes, before a0's
    if (na > 0)
      ex.lines(1, na, [=] XVF_LAMBDA(int64_t, int64_t t) {
        if (st[t + 1] - st[t] > C) return;  // a big one: below
        double sum = 0.0;
        for (int32_t k = st[t]; k < st[t + 1]; ++k) sum += double(src[mem[k]]);
        const T c = T(sum) * scale[a0 + t];
        for (int32_t k = st[t]; k < st[t + 1]; ++k) x[mem[k]] += c;
      }, (n_members - fixed_members) / na + 1);
    if (n_big == 0) return;
    ex.lines(1, n_pieces, [=] XVF_LAMBDA(int64_t, int64_t q) {
      double sum = 0.0;
      for (int32_t k = range[2 * q]; k < range[2 * q + 1]; ++k) sum += double(src[mem[k]]);
      psum[q] = sum;
    }, C);
    ex.lines(1, n_big, [=] XVF_LAMBDA(int64_t, int64_t t) {
      double total = 0.0;
      for (int32_t q = bfirst[t]; q < bfirst[t + 1]; ++q) total += psum[q];
      psum[bfirst[t]] = double(T(total) * scale[bid[t]]);  // the correction, exactly (a T)
    }, n_pieces / n_big + 1);
    const int64_t nbig = n_big;
    ex.lines(1, n_pieces, [=] XVF_LAMBDA(int64_t, int64_t q) {
      const T c = T(psum[bfirst[aggregate_of(bfirst, nbig, q)]]);
      for (int32_t k = range[2 * q]; k < range[2 * q + 1]; ++k) x[mem[k]] += c;
    }, C);
  }

  // The plateau step's aggregates of 2 .. kPlateauFixed pixels, one loop per size.
  template <int... I>
  void plateau_fixed(const T* src, T* x, const int64_t* mfirst, std::integer_sequence<int, I...>) {
    (plateau_size<I + 2>(src, x, size_first[I], size_first[I + 1], mfirst[I]), ...);
  }

  // Aggregates a0 .. a1 - 1, of m pixels each, whose members begin at position `first`.
  template <int m>
  void plateau_size(const T* src, T* x, int64_t a0, int64_t a1, int64_t first) {
    if (a1 <= a0) return;
    const int32_t* mem = agg_members + first;
    const T* scale = agg_scale;
    ex.lines(1, a1 - a0, [=] XVF_LAMBDA(int64_t, int64_t t) {
      const int64_t a = a0 + t;
      const int32_t* p = mem + t * m;
      double sum = 0.0;
      XVF_UNROLL
      for (int u = 0; u < m; ++u) sum += double(src[p[u]]);
      const T c = T(sum) * scale[a];
      XVF_UNROLL
      for (int u = 0; u < m; ++u) x[p[u]] += c;
    }, m);
  }

  // The aggregate whose members hold position k: the last a with start[a] <= k.
  XVF_HD static int64_t aggregate_of(const int32_t* start, int64_t n_agg, int64_t k) {
    int64_t lo = 0, hi = n_agg;  // start[lo] <= k < start[hi]
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      if (start[mid] <= k)
        lo = mid;
      else
        hi = mid;
    }
    return lo;
  }

  // Interpolation weights of F (stored on C's grid).
  void interpolation(const Level<T>& F, const Level<T>& C) {
    const Grid g = F.g, cg = C.g;
    const int64_t fplane = F.plane, cplane = C.plane;
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      const int64_t q = b * cplane + cg.at(I, J);
      if (2 * J + 1 < g.w) {  // x-edge point: collapse vertically
        const int64_t p = b * fplane + g.at(2 * I, 2 * J + 1);
        const T grp[2] = {F.coupling(p, 0, -1) + F.coupling(p, -1, -1) + F.coupling(p, 1, -1),
                          F.coupling(p, 0, 1) + F.coupling(p, -1, 1) + F.coupling(p, 1, 1)};
        T w[2];
        interpolation_weights<T, 2>(grp, F.coupling(p, 0, 0) + F.coupling(p, -1, 0) + F.coupling(p, 1, 0), w);
        F.pw[kXW][q] = encode_weight(w[0]);
        F.pw[kXE][q] = encode_weight(w[1]);
      }
      if (2 * I + 1 < g.h) {  // y-edge point: collapse horizontally
        const int64_t p = b * fplane + g.at(2 * I + 1, 2 * J);
        const T grp[2] = {F.coupling(p, -1, 0) + F.coupling(p, -1, -1) + F.coupling(p, -1, 1),
                          F.coupling(p, 1, 0) + F.coupling(p, 1, -1) + F.coupling(p, 1, 1)};
        T w[2];
        interpolation_weights<T, 2>(grp, F.coupling(p, 0, 0) + F.coupling(p, 0, -1) + F.coupling(p, 0, 1), w);
        F.pw[kYN][q] = encode_weight(w[0]);
        F.pw[kYS][q] = encode_weight(w[1]);
      }
    });
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      if (2 * I + 1 >= g.h || 2 * J + 1 >= g.w) return;
      const int64_t q = b * cplane + cg.at(I, J);
      const int64_t p = b * fplane + g.at(2 * I + 1, 2 * J + 1);
      uint16_t* const* pw = F.pw;
      auto wt = [=](int k, int64_t at) { return decode_weight<T>(pw[k][at]); };
      const T grp[4] = {
          F.coupling(p, -1, -1) + F.coupling(p, -1, 0) * wt(kXW, q) + F.coupling(p, 0, -1) * wt(kYN, q),
          F.coupling(p, -1, 1) + F.coupling(p, -1, 0) * wt(kXE, q) + F.coupling(p, 0, 1) * wt(kYN, q + 1),
          F.coupling(p, 1, -1) + F.coupling(p, 1, 0) * wt(kXW, q + cg.ld) + F.coupling(p, 0, -1) * wt(kYS, q),
          F.coupling(p, 1, 1) + F.coupling(p, 1, 0) * wt(kXE, q + cg.ld) + F.coupling(p, 0, 1) * wt(kYS, q + 1),
      };
      T w[4];
      interpolation_weights<T, 4>(grp, F.coupling(p, 0, 0), w);
      for (int k = 0; k < 4; ++k) pw[kNW + k][q] = encode_weight(w[k]);
    });
  }

  // Coarse couplings C.(e, s, se, sw) of P^T A P (the diagonal: see diagonal()).
  void galerkin(const Level<T>& F, const Level<T>& C) {
    if (F.nine)
      galerkin_from<true>(F, C);
    else
      galerkin_from<false>(F, C);
  }

  template <bool kNine>
  void galerkin_from(const Level<T>& F, const Level<T>& C) {
    const Grid g = F.g, cg = C.g;
    const int64_t fplane = F.plane, cplane = C.plane;
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      T a9[9][9];  // couplings of the 9 fine points of K's block
      T wk[kStored][9];  // interpolation weights of K and of its 4 stored neighbours
      const int64_t q = b * cplane + cg.at(I, J);
      XVF_UNROLL
      for (int e = 0; e < 9; ++e) {
        const int64_t fi = 2 * I + e / 3 - 1, fj = 2 * J + e % 3 - 1;
        const bool in = fi >= 0 && fi < g.h && fj >= 0 && fj < g.w;
        const int64_t p = in ? b * fplane + g.at(fi, fj) : 0;
        XVF_UNROLL
        for (int dd = 0; dd < 9; ++dd) a9[e][dd] = in ? F.template coupling_t<kNine>(p, dd / 3 - 1, dd % 3 - 1) : T(0);
      }
      XVF_UNROLL
      for (int k = 0; k < kStored; ++k) {
        const int64_t ni = I + stored_di(k), nj = J + stored_dj(k);
        const bool in = ni < cg.h && nj >= 0 && nj < cg.w;
        const int64_t qn = in ? b * cplane + cg.at(ni, nj) : 0;
        XVF_UNROLL
        for (int e = 0; e < 9; ++e) wk[k][e] = in ? pweight<T>(F.pw, cg.ld, qn, e / 3 - 1, e % 3 - 1) : T(0);
      }
      // float sums suffice for the couplings: the small row sums, where cancellation would
      // hurt, are computed separately in double (row_sums), and the diagonal from them
      C.e[q] = galerkin_entry<kNine, 1>(a9, wk);
      C.s[q] = galerkin_entry<kNine, 2>(a9, wk);
      C.se[q] = galerkin_entry<kNine, 3>(a9, wk);
      C.sw[q] = galerkin_entry<kNine, 4>(a9, wk);
    });
  }

  // v = A u on F's grid in double, in the row-sum form (the stencil's kind fixed at compile
  // time: the loop is vector code).
  template <bool kNine>
  void apply_row_sum_form(const Level<T>& F, const double* u, double* v) {
    const Grid g = F.g;
    const int64_t fplane = F.plane;
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t p = b * fplane + g.at(i, j);
      double acc = (kNine ? double(F.d[p]) : 1.0) * u[p];
      XVF_UNROLL
      for (int k = 0; k < 9; ++k) {
        const int di = k / 3 - 1, dj = k % 3 - 1;
        if (di || dj) acc += double(F.template coupling_t<kNine>(p, di, dj)) * (u[p + di * g.ld + dj] - u[p]);
      }
      v[p] = acc;
    });
  }

  // C.d = P^T A P 1 = P^T (A (P 1)), evaluated in double in the row-sum form, so the
  // small row sums of the coarse operators are not lost to cancellation. u and v borrow
  // the CG vectors' memory (unused until setup ends).
  void row_sums(const Level<T>& F, const Level<T>& C) {
    const Grid g = F.g, cg = C.g;
    const int64_t fplane = F.plane, cplane = C.plane;
    double* u = xk;
    double* v = xk + nb * fplane;
    ex.zero(u, size_t(2 * nb * fplane) * sizeof(double));
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      const int64_t q = b * cplane + cg.at(I, J);
      const int64_t f = b * fplane + g.at(2 * I, 2 * J);
      const double c01 = J + 1 < cg.w ? 1.0 : 0.0, c10 = I + 1 < cg.h ? 1.0 : 0.0;
      uint16_t* const* pw = F.pw;
      auto wt = [=](int k) { return double(decode_weight<T>(pw[k][q])); };  // the weight applied
      u[f] = 1.0;
      if (2 * J + 1 < g.w) u[f + 1] = wt(kXW) + wt(kXE) * c01;
      if (2 * I + 1 < g.h) {
        u[f + g.ld] = wt(kYN) + wt(kYS) * c10;
        if (2 * J + 1 < g.w) u[f + g.ld + 1] = wt(kNW) + wt(kNE) * c01 + wt(kSW) * c10 + wt(kSE) * c01 * c10;
      }
    });
    if (F.nine)
      apply_row_sum_form<true>(F, u, v);
    else
      apply_row_sum_form<false>(F, u, v);
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      const int64_t q = b * cplane + cg.at(I, J);
      C.d[q] = T(restrict_at<double>(F.pw, q, cg.ld, v, b * fplane + g.at(2 * I, 2 * J), g.ld));
    });
  }

  // C.c = C.d - (the sum of C's couplings), in double: P^T A P's diagonal in the row-sum form.
  // The Galerkin sum for it cancels terms of ~lam/eps in T; this way float32 diagonals
  // always exceed the couplings' sum, which keeps the line smoothers' pivots positive when
  // eps is small (1e-8: couplings ~1e8 beside row sums ~1).
  void diagonal(const Level<T>& C) {
    const Grid g = C.g;
    const int64_t plane = C.plane;
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t p = b * plane + g.at(i, j);
      double acc = double(C.d[p]);
      for (int di = -1; di <= 1; ++di)
        for (int dj = -1; dj <= 1; ++dj)
          if (di || dj) acc -= double(C.template coupling_t<true>(p, di, dj));
      C.c[p] = T(acc);
    });
  }

  // In-place lower Cholesky of the coarsest operator, one image per executor index. The
  // diagonal is the row sum minus the couplings, in double (the operator in row-sum form, as
  // the residuals apply it): a float32 diagonal of ~1e7-1e8 cannot hold the small row sum
  // that keeps the matrix definite when eps is small and plateaus are large.
  void factor_dense(const Level<T>& L) {
    const Grid g = L.g;
    const int64_t plane = L.plane, n = L.n_dense;
    ex.each(nb, [=] XVF_LAMBDA(int64_t b) {
      double* m = L.chol + b * n * n;
      for (int64_t t = 0; t < n * n; ++t) m[t] = 0.0;
      for (int64_t i = 0; i < g.h; ++i)
        for (int64_t j = 0; j < g.w; ++j) {
          const int64_t r = i * g.w + j, p = b * plane + g.at(i, j);
          double diag = double(L.rowsum(p));
          for (int di = -1; di <= 1; ++di)
            for (int dj = -1; dj <= 1; ++dj) {
              const int64_t ii = i + di, jj = j + dj;
              if ((di == 0 && dj == 0) || ii < 0 || ii >= g.h || jj < 0 || jj >= g.w) continue;
              const double a = double(L.coupling(p, di, dj));
              m[r * n + ii * g.w + jj] = a;
              diag -= a;
            }
          m[r * n + r] = diag;
        }
      for (int64_t k = 0; k < n; ++k) {
        double d = m[k * n + k];
        for (int64_t t = 0; t < k; ++t) d -= m[k * n + t] * m[k * n + t];
        d = sqrt(d > 0.0 ? d : 1e-300);
        m[k * n + k] = d;
        for (int64_t r = k + 1; r < n; ++r) {
          double v = m[r * n + k];
          for (int64_t t = 0; t < k; ++t) v -= m[r * n + t] * m[k * n + t];
          m[r * n + k] = v / d;
        }
      }
    });
  }

  // ---- the V-cycle ---------------------------------------------------------

  // x = A_k^-1 b on the coarsest level, through its Cholesky factor.
  void solve_dense(const Level<T>& L, const T* bv, T* x) {
    const Grid g = L.g;
    const int64_t plane = L.plane, n = L.n_dense;
    double* ys = dense_y;
    ex.each(nb, [=] XVF_LAMBDA(int64_t b) {
      const double* m = L.chol + b * n * n;
      double* y = ys + b * n;
      for (int64_t i = 0; i < g.h; ++i)
        for (int64_t j = 0; j < g.w; ++j) y[i * g.w + j] = bv[b * plane + g.at(i, j)];
      for (int64_t k = 0; k < n; ++k) {
        double v = y[k];
        for (int64_t t = 0; t < k; ++t) v -= m[k * n + t] * y[t];
        y[k] = v / m[k * n + k];
      }
      for (int64_t k = n - 1; k >= 0; --k) {
        double v = y[k];
        for (int64_t t = k + 1; t < n; ++t) v -= m[t * n + k] * y[t];
        y[k] = v / m[k * n + k];
      }
      for (int64_t i = 0; i < g.h; ++i)
        for (int64_t j = 0; j < g.w; ++j) x[b * plane + g.at(i, j)] = T(y[i * g.w + j]);
    });
  }

  // Zebra-line Gauss-Seidel on the rows: the rows of parity `first`, each solved exactly given
  // the others, then the rows of the other parity. The rows are cut into bands of 2G rows
  // (G = Exec::kRowGroup of each parity) for ex.zebra: one colour of a band reads the other
  // colour of that band and its two neighbours only. A CPU task solves its band's G rows
  // interleaved: the Thomas recursions are serial chains, and a core overlaps several
  // independent chains (the GPU runs one per thread).
  template <bool kNine>
  void smooth_rows(const Level<T>& L, const T* bv, T* x, int first) {
    constexpr int G = Exec::kRowGroup;
    const Grid g = L.g;
    const int64_t plane = L.plane;
    auto band = [=] XVF_LAMBDA(int64_t b, int64_t k, int parity) {
      const int64_t r0 = 2 * G * k + parity;  // the band's first row of this parity
      const int64_t n = (g.h - r0 + 1) / 2 < G ? (g.h - r0 + 1) / 2 : G;
      const int64_t p0 = b * plane + g.at(r0, 0);
      if (n == G) {
        solve_rows<kNine, G>(L, bv, x, p0);
      } else {
        for (int64_t u = 0; u < n; ++u) solve_rows<kNine, 1>(L, bv, x, p0 + 2 * u * g.ld);
      }
    };
    ex.zebra(
        nb, ceil_div(g.h, 2 * G), [=] XVF_LAMBDA(int64_t b, int64_t k) { band(b, k, first); },
        [=] XVF_LAMBDA(int64_t b, int64_t k) { band(b, k, 1 - first); }, 2 * G * g.w);
  }

  // The row solves of smooth_rows for the n rows p0, p0 + 2 ld, ... (n a constant).
  template <bool kNine, int n>
  XVF_HD static void solve_rows(const Level<T>& L, const T* bv, T* x, int64_t p0) {
    const int64_t w = L.g.w, ld2 = 2 * L.g.ld;
    const T* e = L.e;
    T* inv = L.inv;
    T* y = L.r;  // each row's scratch is its own row of r
    // the residual and the diagonal (into the pivots' place) first, in a vector loop: the
    // serial chains below then read one value instead of computing it
    for (int u = 0; u < n; ++u) {
      XVF_SIMD
      for (int64_t j = 0; j < w; ++j) {
        const int64_t p = p0 + u * ld2 + j;
        y[p] = residual_at<kNine>(L, bv, x, p);
        inv[p] = L.template diag_t<kNine>(p);
      }
    }
    // Thomas: forward elimination, turning the diagonal into the pivots on the way, back
    // substitution (the running values stay in registers: the chains do not wait on a store
    // and a load)
    T prev[n], piv[n];
    XVF_UNROLL
    for (int u = 0; u < n; ++u) {
      const int64_t p = p0 + u * ld2;
      piv[u] = inv[p] = T(1) / inv[p];
      prev[u] = y[p] *= piv[u];
    }
    for (int64_t j = 1; j < w; ++j) {
      XVF_UNROLL
      for (int u = 0; u < n; ++u) {
        const int64_t p = p0 + u * ld2 + j;
        piv[u] = inv[p] = T(1) / (inv[p] - e[p - 1] * e[p - 1] * piv[u]);
        prev[u] = y[p] = (y[p] - e[p - 1] * prev[u]) * piv[u];
      }
    }
    // (each correction goes straight into x: the row's scratch is not read again)
    XVF_UNROLL
    for (int u = 0; u < n; ++u) x[p0 + u * ld2 + w - 1] += prev[u];
    for (int64_t j = w - 2; j >= 0; --j) {
      XVF_UNROLL
      for (int u = 0; u < n; ++u) {
        const int64_t p = p0 + u * ld2 + j;
        prev[u] = y[p] - e[p] * inv[p] * prev[u];
        x[p] += prev[u];
      }
    }
  }

  // Zebra-line Gauss-Seidel on the columns of parity `first` (j = first, first + 2, ...),
  // then on those of the other parity, which read the first's new values. Each parity's
  // columns advance together row by row: the first's forward elimination runs down the
  // image, its back substitution up. The second parity eliminates from the last row up
  // instead, so that one upward pass carries both (a row of the second right after the rows
  // of the first around it are final), and its back substitution runs down: three passes
  // over the level's arrays instead of four, each using whole cache lines. (Walking narrow
  // bands of columns down the image instead, to keep them in cache between passes,
  // measured slower on the CPU: every row starts a new page, which defeats the hardware
  // prefetcher.)
  template <bool kNine>
  void smooth_cols(const Level<T>& L, const T* bv, T* x, int first) {
    const Grid g = L.g;
    const int64_t plane = L.plane, ld = g.ld;
    const int second = 1 - first;
    const int64_t ca = (g.w - first + 1) / 2, cb = (g.w - second + 1) / 2;
    if (ca <= 0) return;
    T* const y = L.r;
    T* const inv = L.inv;
    ex.sweep(nb, g.h, ca, false, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t c) {
      const int64_t p = b * plane + g.at(i, first + 2 * c);
      // On row 0, s above is the zero padding; the scratch arrays' padding holds another
      // level's values, always finite (pivots of SPD line systems, residuals), so the terms
      // vanish without a branch (a branch here costs the loop its vectorisation).
      const T up = L.s[p - ld];
      const T piv = T(1) / (L.template diag_t<kNine>(p) - up * up * inv[p - ld]);
      inv[p] = piv;
      y[p] = (residual_at<kNine>(L, bv, x, p) - up * y[p - ld]) * piv;
    });
    // column c of the second parity lies between columns c - first and c + 1 - first of the first
    ex.sweep_pair(
        nb, g.h, ca, cb, true, -first, 1 - first,
        [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t c) {
          const int64_t p = b * plane + g.at(i, first + 2 * c);
          y[p] -= L.s[p] * inv[p] * y[p + ld];  // s = 0 on the last row: see above
          x[p] += y[p];
        },
        [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t c) {
          const int64_t p = b * plane + g.at(i, second + 2 * c);
          const T down = L.s[p];  // 0 on the last row
          const T piv = T(1) / (L.template diag_t<kNine>(p) - down * down * inv[p + ld]);
          inv[p] = piv;
          y[p] = (residual_at<kNine>(L, bv, x, p) - down * y[p + ld]) * piv;
        });
    if (cb <= 0) return;
    ex.sweep(nb, g.h, cb, false, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t c) {
      const int64_t p = b * plane + g.at(i, second + 2 * c);
      y[p] -= L.s[p - ld] * inv[p] * y[p - ld];  // s above is 0 on row 0
      x[p] += y[p];
    });
  }

  template <bool kNine>
  void smooth(const Level<T>& L, const T* bv, T* x, bool reverse) {
    if (!reverse) {  // rows 0, 1, columns 0, 1
      smooth_rows<kNine>(L, bv, x, 0);
      smooth_cols<kNine>(L, bv, x, 0);
    } else {  // the mirror image: columns 1, 0, rows 1, 0
      smooth_cols<kNine>(L, bv, x, 1);
      smooth_rows<kNine>(L, bv, x, 1);
    }
  }

  template <bool kNine>
  void residual(const Level<T>& L, const T* bv, const T* x) {
    const Grid g = L.g;
    const int64_t plane = L.plane;
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t p = b * plane + g.at(i, j);
      L.r[p] = residual_at<kNine>(L, bv, x, p);
    });
  }

  // (P^T r) at coarse point q (row stride cld): the fine point f = 2 (I, J) (row stride ld)
  // and its eight neighbours, each with its weight from q. Fine points outside the grid have
  // weight 0, so r's padding only has to hold finite values. U: r's type (T, or double for
  // the row sums).
  template <typename U>
  XVF_HD static U restrict_at(uint16_t* const* pw, int64_t q, int64_t cld, const U* r, int64_t f,
                              int64_t ld) {
    auto wt = [=](int k, int64_t at) { return U(decode_weight<T>(pw[k][at])); };
    U v = r[f];
    v += wt(kXW, q) * r[f + 1] + wt(kXE, q - 1) * r[f - 1];
    v += wt(kYN, q) * r[f + ld] + wt(kYS, q - cld) * r[f - ld];
    v += wt(kNW, q) * r[f + ld + 1] + wt(kNE, q - 1) * r[f + ld - 1];
    v += wt(kSW, q - cld) * r[f - ld + 1] + wt(kSE, q - cld - 1) * r[f - ld - 1];
    return v;
  }

  // C.b = P^T F.r (r is the shared scratch: its padding is not 0, but finite).
  void restrict_to(const Level<T>& F, const Level<T>& C) {
    const Grid g = F.g, cg = C.g;
    const int64_t fplane = F.plane, cplane = C.plane;
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      const int64_t q = b * cplane + cg.at(I, J);
      C.b[q] = restrict_at<T>(F.pw, q, cg.ld, F.r, b * fplane + g.at(2 * I, 2 * J), g.ld);
    });
  }

  // x += P C.x. Where the fine grid's size is odd, the last coarse row and column also add
  // into the fine padding ring: x's padding is read only through zero couplings and
  // weights (finite values suffice, and x is zeroed at the start of each cycle), and
  // without the edge branches the loop is vector code.
  void prolong_add(const Level<T>& F, const Level<T>& C, T* x) {
    const Grid g = F.g, cg = C.g;
    const int64_t fplane = F.plane, cplane = C.plane;
    ex.grid(nb, cg.h, cg.w, [=] XVF_LAMBDA(int64_t b, int64_t I, int64_t J) {
      const int64_t q = b * cplane + cg.at(I, J);
      const T* xc = C.x;
      uint16_t* const* pw = F.pw;
      auto wt = [=](int k) { return decode_weight<T>(pw[k][q]); };
      const T c00 = xc[q], c01 = xc[q + 1], c10 = xc[q + cg.ld], c11 = xc[q + cg.ld + 1];
      const int64_t f = b * fplane + g.at(2 * I, 2 * J);
      x[f] += c00;
      x[f + 1] += wt(kXW) * c00 + wt(kXE) * c01;
      x[f + g.ld] += wt(kYN) * c00 + wt(kYS) * c10;
      x[f + g.ld + 1] += wt(kNW) * c00 + wt(kNE) * c01 + wt(kSW) * c10 + wt(kSE) * c11;
    });
  }

  // x = V-cycle approximation of A_k^-1 b (padded planes of nb images).
  void vcycle(size_t k, const T* bv, T* x) {
    const Level<T>& L = levels[k];
    if (L.n_dense) {
      solve_dense(L, bv, x);
      return;
    }
    ex.zero(x, size_t(nb * L.plane) * sizeof(T));
    const Level<T>& C = levels[k + 1];
    if (k == 0) plateau_step(L, bv, x, true);
    if (L.nine) {
      smooth<true>(L, bv, x, false);
      residual<true>(L, bv, x);
    } else {
      smooth<false>(L, bv, x, false);
      residual<false>(L, bv, x);
    }
    restrict_to(L, C);
    vcycle(k + 1, C.b, C.x);
    prolong_add(L, C, x);
    if (L.nine)
      smooth<true>(L, bv, x, true);
    else
      smooth<false>(L, bv, x, true);
    if (k == 0) plateau_step(L, bv, x, false);
  }

  // y = A x at one point of the finest level: the grid functor of apply() and of CG's A p.
  struct FineApply {
    const T *e, *s, *x;
    T* y;
    Grid g;
    int64_t plane;
    XVF_HD void operator()(int64_t b, int64_t i, int64_t j) const {
      const int64_t k = b * plane + g.at(i, j);
      y[k] = apply5(T(1), e, s, x, k, g.ld);
    }
  };
  FineApply fine_apply(const T* x, T* y) const {
    return FineApply{levels[0].e, levels[0].s, x, y, levels[0].g, levels[0].plane};
  }

  // y = A x on the finest level.
  void apply(const T* x, T* y) {
    const Grid g = levels[0].g;
    ex.grid(nb, g.h, g.w, fine_apply(x, y));
  }

  // ---- batched conjugate gradients -------------------------------------------

  // sum over j < w of a[p0 + j] * b[p0 + j] in double, in a fixed order: kDotLanes running
  // sums (the adds of one row do not wait on each other), added pairwise at the end
  static constexpr int kDotLanes = 8;
  XVF_HD static double row_dot(const T* a, const T* b, int64_t p0, int64_t w) {
    double acc[kDotLanes] = {};
    int64_t j = 0;
    for (; j + kDotLanes <= w; j += kDotLanes) {
      XVF_UNROLL
      for (int u = 0; u < kDotLanes; ++u) acc[u] += double(a[p0 + j + u]) * double(b[p0 + j + u]);
    }
    for (int u = 0; j + u < w; ++u) acc[u] += double(a[p0 + j + u]) * double(b[p0 + j + u]);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }

  // dots[b] = the sum of the row sums part[b][.] in row order (deterministic).
  void sum_rows() {
    const int64_t h = levels[0].g.h;
    const double* pt = part;
    double* out = dots;
    ex.each(nb, [=] XVF_LAMBDA(int64_t b) {
      double total = 0.0;
      for (int64_t i = 0; i < h; ++i) total += pt[b * h + i];
      out[b] = total;
    });
  }

  // dots[b] = sum over image b of a * b2 in double.
  void dot(const T* a, const T* b2) {
    const Grid g = levels[0].g;
    const int64_t plane = levels[0].plane;
    double* pt = part;
    ex.lines(nb, g.h, [=] XVF_LAMBDA(int64_t b, int64_t i) {
      pt[b * g.h + i] = row_dot(a, b2, b * plane + g.at(i, 0), g.w);
    }, g.w);
    sum_rows();
  }

  // f(b, i, j) at every point of the finest level, then dot(a, b2) of what it wrote: on the
  // CPU in one pass, each row reduced while it is in cache (Exec::kFuseRows); the GPU runs
  // the two separately (a thread per point, then the reduction). Same sums either way.
  template <class F>
  void grid_dot(F f, const T* a, const T* b2) {
    const Grid g = levels[0].g;
    if constexpr (Exec::kFuseRows) {
      const int64_t plane = levels[0].plane;
      double* pt = part;
      ex.grid_rows(nb, g.h, g.w, f, [=] XVF_LAMBDA(int64_t b, int64_t i) {
        pt[b * g.h + i] = row_dot(a, b2, b * plane + g.at(i, 0), g.w);
      });
      sum_rows();
    } else {
      ex.grid(nb, g.h, g.w, f);
      dot(a, b2);
    }
  }

  // Solves the systems of images[nb][H][W] into out (both unpadded, executor memory);
  // iterations[nb] and residual[nb] (true relative residual) are host arrays.
  // Requires setup(images, ...) first.
  void solve(const T* images, T* out, double rtol, int64_t maxiter, int64_t* iterations,
             double* residual) {
    const Level<T> L0 = levels[0];
    const Grid g = L0.g;
    const int64_t plane = L0.plane;
    T *rv = r, *pv = p, *zv = z;
    double* x = xk;
    double* s = sc;
    const double* dv = dots;
    const double* fl = flags;
    for (void* v : {static_cast<void*>(rv), static_cast<void*>(pv), static_cast<void*>(zv)})
      ex.zero(v, size_t(nb * plane) * sizeof(T));
    ex.zero(x, size_t(nb * plane) * sizeof(double));
    ex.zero(s, size_t(nb * kScalars) * sizeof(double));
    // Start from the image itself: WLS changes an image little, and not at all where it is
    // flat (exactly the quantised plateaus whose huge couplings slow the solver down), so the
    // initial error is small. The initial residual need not be: on 8-bit images the one-level
    // steps meet couplings of hundreds, and |b - A b| was 4.2 |b| on an NIH image. Measured on
    // the 18 cxr-dev images at rtol 1e-4: 189 iterations in all from x = b, 246 from x = 0.
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const T v = images[b * g.h * g.w + i * g.w + j];
      rv[b * plane + g.at(i, j)] = v;
      x[b * plane + g.at(i, j)] = double(v);
    });
    std::vector<double> host(nb), norm_b(nb), active(nb);
    dot(rv, rv);
    ex.download(host.data(), dots, size_t(nb) * sizeof(double));
    for (int64_t b = 0; b < nb; ++b) norm_b[b] = std::sqrt(host[b]);
    true_residual(images);
    dot(rv, rv);
    ex.download(host.data(), dots, size_t(nb) * sizeof(double));
    int64_t remaining = 0;
    for (int64_t b = 0; b < nb; ++b) {
      iterations[b] = 0;
      const bool go = norm_b[b] > 0.0 && std::sqrt(host[b]) > rtol * norm_b[b];
      active[b] = go ? 1.0 : 0.0;
      remaining += go;
    }
    ex.upload(flags, active.data(), size_t(nb) * sizeof(double));
    if (remaining > 0) {
      vcycle(0, rv, zv);
      copy_plane(zv, pv);
      dot(rv, zv);
      ex.each(nb, [=] XVF_LAMBDA(int64_t b) { s[b * kScalars + kRZ] = dv[b]; });
    }
    for (int64_t it = 1; remaining > 0 && it <= maxiter; ++it) {
      grid_dot(fine_apply(pv, zv), pv, zv);  // z holds q = A p until the next preconditioning
      ex.each(nb, [=] XVF_LAMBDA(int64_t b) {
        double* q = s + b * kScalars;
        q[kStep] = fl[b] != 0.0 ? q[kRZ] / dv[b] : 0.0;
      });
      grid_dot([=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
        const double step = s[b * kScalars + kStep];  // 0 once converged: x, r stay as they are
        const int64_t k = b * plane + g.at(i, j);
        x[k] += step * double(pv[k]);
        rv[k] -= T(step) * zv[k];
      }, rv, rv);
      ex.download(host.data(), dots, size_t(nb) * sizeof(double));
      for (int64_t b = 0; b < nb; ++b) {
        if (active[b] == 0.0) continue;
        iterations[b] = it;
        if (std::sqrt(host[b]) <= rtol * norm_b[b]) {
          active[b] = 0.0;
          --remaining;
        }
      }
      if (remaining == 0 || it == maxiter || !ex.ok()) break;
      ex.upload(flags, active.data(), size_t(nb) * sizeof(double));
      vcycle(0, rv, zv);
      dot(rv, zv);
      ex.each(nb, [=] XVF_LAMBDA(int64_t b) {
        double* q = s + b * kScalars;
        if (fl[b] != 0.0) {
          q[kBeta] = dv[b] / q[kRZ];
          q[kRZ] = dv[b];
        } else {
          q[kBeta] = 0.0;
        }
      });
      ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
        const T beta = T(s[b * kScalars + kBeta]);
        const int64_t k = b * plane + g.at(i, j);
        const T next = zv[k] + beta * pv[k];
        pv[k] = fl[b] != 0.0 ? next : pv[k];  // a select, not a branch: the loop stays vector code
      });
    }
    // the true residual of the double iterate, and the result
    true_residual(images);
    dot(rv, rv);
    ex.download(host.data(), dots, size_t(nb) * sizeof(double));
    for (int64_t b = 0; b < nb; ++b) residual[b] = norm_b[b] > 0.0 ? std::sqrt(host[b]) / norm_b[b] : 0.0;
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      out[b * g.h * g.w + i * g.w + j] = T(x[b * plane + g.at(i, j)]);
    });
  }

  // y = A x (precondition false) or y = one V-cycle applied to x, for unpadded x, y [nb][H][W]
  // in executor memory, with the hierarchy a previous setup() left in the workspace: the
  // operator and preconditioner of an outside CG (xvertfast/ops/wls_pcg.py).
  // Returns nullptr, or why the workspace is not one setup() filled for these images.
  const char* apply_outside(const T* xin, T* yout, bool precondition) {
    const Grid g = levels[0].g;
    const int64_t plane = levels[0].plane;
    int64_t counts[kAggCounts + kSignature] = {};  // what setup() found, and for what
    ex.download(counts, agg_count, sizeof(counts));
    const int64_t* sig = counts + kAggCounts;
    if (sig[0] != kSetupMark) return "the workspace was not filled by wls_setup";
    if (sig[1] != nb || sig[2] != g.h || sig[3] != g.w || sig[4] != int64_t(sizeof(T)))
      return "the workspace was set up for another batch shape or dtype than x";
    n_agg = counts[0];
    n_members = counts[1];
    n_pieces = counts[2];
    n_big = counts[3];
    for (int c = 0; c < kPlateauFixed; ++c) size_first[c] = counts[4 + c];
    const int64_t pixels = nb * g.h * g.w, max_big = max_big_aggregates(pixels);
    bool sane = 0 <= n_agg && n_agg <= pixels / 2 && 2 * n_agg <= n_members && n_members <= pixels &&
                0 <= n_big && n_big <= max_big && 0 <= n_pieces && n_pieces <= max_big_pieces(pixels);
    for (int c = 0; c < kPlateauFixed; ++c)
      sane = sane && size_first[c] >= (c ? size_first[c - 1] : 0) && size_first[c] <= n_agg;
    if (sane) {  // the larger aggregates' starts fit agg_start, the sizes' members the list
      int64_t mfirst[kPlateauFixed];
      member_firsts(mfirst);
      sane = n_agg - size_first[kPlateauFixed - 1] <= max_large_aggregates(pixels) &&
             mfirst[kPlateauFixed - 1] <= n_members;
    }
    if (!sane) return "the workspace's plateau counts are corrupt";
    T *rv = r, *zv = z;
    ex.zero(rv, size_t(nb * plane) * sizeof(T));  // setup borrowed them: padding included
    ex.zero(zv, size_t(nb * plane) * sizeof(T));
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      rv[b * plane + g.at(i, j)] = xin[b * g.h * g.w + i * g.w + j];
    });
    if (precondition)
      vcycle(0, rv, zv);
    else
      apply(rv, zv);
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      yout[b * g.h * g.w + i * g.w + j] = zv[b * plane + g.at(i, j)];
    });
    return nullptr;
  }

  // r = b - A x for the double iterate x, evaluated in double (the recursively updated r of
  // CG drifts from it in float32).
  void true_residual(const T* images) {
    const Level<T> L0 = levels[0];
    const Grid g = L0.g;
    const int64_t plane = L0.plane;
    T* rv = r;
    const double* x = xk;
    ex.grid(nb, g.h, g.w, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * plane + g.at(i, j);
      rv[k] = T(double(images[b * g.h * g.w + i * g.w + j]) - apply5<T, double>(1.0, L0.e, L0.s, x, k, g.ld));
    });
  }

  // dst = src over whole padded finest planes.
  void copy_plane(const T* src, T* dst) {
    const int64_t plane = levels[0].plane;
    const int64_t ld = levels[0].g.ld, rows = levels[0].g.h + 2;
    ex.grid(nb, rows, ld, [=] XVF_LAMBDA(int64_t b, int64_t i, int64_t j) {
      const int64_t k = b * plane + i * ld + j;
      dst[k] = src[k];
    });
  }
};

// The loop structure of the CUDA executor (csrc/cuda/wls.cu): separate kernels for point
// work and reductions, one row per thread in the row smoother, plateau sums 64 members a
// thread, memory that is not the host's (so the plateaus are labelled in it). Shared with the
// CPU's emulation of it (csrc/cpu/wls_gpu_emulation.cpp), so that the tests run the code
// paths the GPU takes.
// sweep_pair and zebra are composed from the executor's own sweep and lines (CRTP).
template <class Exec>
struct GpuLoopTraits {
  static constexpr bool kHostMemory = false;
  static constexpr bool kFuseRows = false;
  static constexpr int kRowGroup = 1;
  static constexpr int64_t kPlateauChunk = 64;

  // fa's sweep, then fb's: on a GPU the kernel boundary orders every fb read after every
  // fa write.
  template <class FA, class FB>
  void sweep_pair(int64_t nb, int64_t rows, int64_t ca, int64_t cb, bool reverse, int /*lo*/,
                  int /*hi*/, FA fa, FB fb) const {
    self().sweep(nb, rows, ca, reverse, fa);
    self().sweep(nb, rows, cb, reverse, fb);
  }
  // All bands' first colour, then all bands' second colour: one thread per band.
  template <class F1, class F2>
  void zebra(int64_t nb, int64_t n, F1 first, F2 second, int64_t work) const {
    self().lines(nb, n, first, work);
    self().lines(nb, n, second, work);
  }

 private:
  const Exec& self() const { return static_cast<const Exec&>(*this); }
};

// Bytes of workspace for nb images of H x W (the layout does not depend on the executor).
struct NoExec {};
template <typename T>
int64_t workspace_bytes(int64_t nb, int64_t H, int64_t W) {
  Multigrid<T, NoExec> mg;
  mg.plan(nullptr, nb, H, W);
  return int64_t(mg.bytes);
}

}  // namespace wls
}  // namespace xvf
