// CPU (OpenMP) guidance-layer conv + max-pool, fused (see xvertfast/guided_pool.h).
//
// A task is one pooled output row of one image. For every pixel of a window the 9 taps are
// loaded once and the dot products of all C channels run as one vectorised loop over the
// channels (weights stored tap-major, [9][C]); the running maxima live in a small per-task
// buffer until the window is done.
#include <algorithm>
#include <limits>
#include <vector>

#include "xvertfast/guided_pool.h"
#include "xvertfast/kernels.h"

namespace xvf {

template <typename T>
void guided_pool_cpu(const T* y, int64_t B, int64_t H, int64_t W, const T* weight, const T* bias,
                     int64_t C, int64_t s, T* out, int num_threads) {
  const int64_t Ho = H / s, Wo = W / s;
  if (B <= 0 || C <= 0 || Ho <= 0 || Wo <= 0) return;
  std::vector<T> wt(9 * C);  // tap-major copy of the [C][9] kernels
  for (int64_t c = 0; c < C; ++c)
    for (int k = 0; k < 9; ++k) wt[k * C + c] = weight[c * 9 + k];
  const T* w = wt.data();
  const int64_t tasks = B * Ho;
#pragma omp parallel num_threads(num_threads) if (tasks * Wo * s * s * C >= (1 << 16))
  {
    std::vector<T> best_buf(C);
    T* best = best_buf.data();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / Ho, I = t % Ho;
      const T* img = y + b * H * W;
      for (int64_t J = 0; J < Wo; ++J) {
        std::fill(best, best + C, -std::numeric_limits<T>::infinity());
        for (int64_t di = 0; di < s; ++di)
          for (int64_t dj = 0; dj < s; ++dj) {
            T taps[9];
            guided_pool::load_taps(img, H, W, I * s + di, J * s + dj, taps);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c)
              best[c] = guided_pool::pool_max(best[c], guided_pool::dot9(taps, w + c, C, bias[c]));
          }
        T* o = out + (b * C * Ho + I) * Wo + J;
        for (int64_t c = 0; c < C; ++c) o[c * Ho * Wo] = best[c];
      }
    }
  }
}

template void guided_pool_cpu<float>(const float*, int64_t, int64_t, int64_t, const float*,
                                     const float*, int64_t, int64_t, float*, int);
template void guided_pool_cpu<double>(const double*, int64_t, int64_t, int64_t, const double*,
                                      const double*, int64_t, int64_t, double*, int);

}  // namespace xvf
