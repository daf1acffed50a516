// CPU (OpenMP) feature-map entropy and max-entropy map selection.
//
// Two passes over each map: min/max, then the K-bin histogram. With many maps
// (the training case: batch x 128 channels) each thread takes whole maps; with
// fewer maps than threads, each map is split across threads and the integer
// histograms are merged, which is exact and order-independent.
#include <algorithm>
#include <limits>
#include <vector>

#include "xvertfast/entropy.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

// Sub-histograms interleaved by pixel index break the store-to-load chain on
// runs of equal bins (flat regions are common in feature maps).
constexpr int kLanes = 4;

template <typename T>
void min_max(const T* x, int64_t n, T& lo, T& hi) {
  T mn = std::numeric_limits<T>::infinity(), mx = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(min : mn) reduction(max : mx)
  for (int64_t i = 0; i < n; ++i) {
    mn = entropy::min_skip_nan(mn, x[i]);
    mx = entropy::max_skip_nan(mx, x[i]);
  }
  lo = mn;
  hi = mx;
}

// Adds the bins of x[0..n) into hist[kLanes][bins].
template <typename T>
void histogram(const T* x, int64_t n, T lo, T scale, int bins, int64_t* hist) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l)
      ++hist[l * bins + entropy::bin_index(x[i + l], lo, scale, bins)];
  for (; i < n; ++i) ++hist[entropy::bin_index(x[i], lo, scale, bins)];
}

double entropy_of(const int64_t* hist, int bins, int64_t n) {
  const double inv_n = 1.0 / double(n);
  double h = 0.0;
  for (int k = 0; k < bins; ++k) {
    int64_t count = 0;
    for (int l = 0; l < kLanes; ++l) count += hist[l * bins + k];
    h += entropy::bin_term(count, inv_n);
  }
  return h;
}

}  // namespace

template <typename T>
void entropy_cpu(const T* x, int64_t M, int64_t N, int bins, double* ent, T* lo, T* hi,
                 int num_threads) {
  if (N == 0) {
    std::fill(ent, ent + M, 0.0);
    std::fill(lo, lo + M, T(0));
    std::fill(hi, hi + M, T(0));
    return;
  }
  if (M >= num_threads) {
#pragma omp parallel num_threads(num_threads)
    {
      std::vector<int64_t> hist(kLanes * bins);
#pragma omp for schedule(dynamic, 1)
      for (int64_t m = 0; m < M; ++m) {
        const T* xm = x + m * N;
        min_max(xm, N, lo[m], hi[m]);
        std::fill(hist.begin(), hist.end(), 0);
        histogram(xm, N, lo[m], entropy::bin_scale(lo[m], hi[m], bins), bins, hist.data());
        ent[m] = entropy_of(hist.data(), bins, N);
      }
    }
    return;
  }
  // Few large maps: split each one across the threads.
  const int nt = std::max(1, num_threads);
  std::vector<T> part_lo(nt), part_hi(nt);
  std::vector<int64_t> hist(int64_t(nt) * kLanes * bins);
  for (int64_t m = 0; m < M; ++m) {
    const T* xm = x + m * N;
    const int64_t chunk = ceil_div(N, nt);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
      for (int t = 0; t < nt; ++t) {
        const int64_t i0 = std::min(N, t * chunk), i1 = std::min(N, i0 + chunk);
        if (i1 > i0) {
          min_max(xm + i0, i1 - i0, part_lo[t], part_hi[t]);
        } else {
          part_lo[t] = std::numeric_limits<T>::infinity();
          part_hi[t] = -std::numeric_limits<T>::infinity();
        }
      }
#pragma omp single
      {
        lo[m] = *std::min_element(part_lo.begin(), part_lo.end());
        hi[m] = *std::max_element(part_hi.begin(), part_hi.end());
      }
      const T scale = entropy::bin_scale(lo[m], hi[m], bins);
#pragma omp for schedule(static)
      for (int t = 0; t < nt; ++t) {
        int64_t* h = &hist[int64_t(t) * kLanes * bins];
        std::fill(h, h + kLanes * bins, 0);
        const int64_t i0 = std::min(N, t * chunk), i1 = std::min(N, i0 + chunk);
        if (i1 > i0) histogram(xm + i0, i1 - i0, lo[m], scale, bins, h);
      }
    }
    for (int t = 1; t < nt; ++t)
      for (int64_t k = 0; k < int64_t(kLanes) * bins; ++k)
        hist[k] += hist[int64_t(t) * kLanes * bins + k];
    ent[m] = entropy_of(hist.data(), bins, N);
  }
}

template <typename T>
void select_map_cpu(const T* x, const double* ent, const T* lo, const T* hi, int64_t B,
                    int64_t C, int64_t N, bool normalize, int64_t* index, T* map,
                    int num_threads) {
  for (int64_t b = 0; b < B; ++b) index[b] = entropy::first_max(ent + b * C, C);
#pragma omp parallel for num_threads(num_threads) schedule(static) collapse(2)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t blk = 0; blk < ceil_div(N, 4096); ++blk) {
      const int64_t m = b * C + index[b];
      const T* src = x + m * N;
      T* dst = map + b * N;
      const T l = lo[m], h = hi[m];
      const int64_t i1 = std::min(N, (blk + 1) * 4096);
#pragma omp simd
      for (int64_t i = blk * 4096; i < i1; ++i)
        dst[i] = entropy::scaled_value(src[i], l, h, normalize);
    }
  }
}

#define XVF_INSTANTIATE(T)                                                                  \
  template void entropy_cpu<T>(const T*, int64_t, int64_t, int, double*, T*, T*, int);     \
  template void select_map_cpu<T>(const T*, const double*, const T*, const T*, int64_t,    \
                                  int64_t, int64_t, bool, int64_t*, T*, int);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace xvf
