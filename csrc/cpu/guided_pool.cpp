// CPU (OpenMP) guidance-layer conv + max-pool, fused (see xvertfast/guided_pool.h).
//
// A task is one pooled output row of one image. For every pixel of a window the 9 taps are
// loaded once and the dot products of all C channels run as one vectorised loop over the
// channels (weights stored tap-major, [9][C]); the running maxima and their window offsets
// (for the backward) live in a small per-task buffer until the window is done.
#include <algorithm>
#include <limits>
#include <vector>

#include "xvertfast/guided_pool.h"
#include "xvertfast/kernels.h"

namespace xvf {

template <typename T>
void guided_pool_cpu(const T* y, int64_t B, int64_t H, int64_t W, const T* weight, const T* bias,
                     int64_t C, int64_t s, T* out, int32_t* argmax, int num_threads) {
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
    std::vector<int32_t> arg_buf(C);
    T* best = best_buf.data();
    int32_t* arg = arg_buf.data();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t b = t / Ho, I = t % Ho;
      const T* img = y + b * H * W;
      for (int64_t J = 0; J < Wo; ++J) {
        std::fill(best, best + C, -std::numeric_limits<T>::infinity());
        std::fill(arg, arg + C, 0);
        for (int64_t di = 0; di < s; ++di)
          for (int64_t dj = 0; dj < s; ++dj) {
            T taps[9];
            guided_pool::load_taps(img, H, W, I * s + di, J * s + dj, taps);
            const int32_t a = int32_t(di * s + dj);
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              const T v = guided_pool::dot9(taps, w + c, C, bias[c]);
              const bool better = guided_pool::pool_better(best[c], v);
              best[c] = better ? v : best[c];
              arg[c] = better ? a : arg[c];
            }
          }
        const int64_t o = (b * C * Ho + I) * Wo + J;
        for (int64_t c = 0; c < C; ++c) {
          out[o + c * Ho * Wo] = best[c];
          if (argmax) argmax[o + c * Ho * Wo] = arg[c];
        }
      }
    }
  }
}

// The image gradient scatters each output's gradient onto the 9 taps of its window's
// maximum. Pooled rows I and I + colours touch disjoint image rows (a window's rows
// I s .. I s + s - 1, widened by one on each side), so the rows of one colour run in
// parallel without atomics and every sum keeps a fixed order: deterministic.
// The kernel and bias gradients are sums per channel, one channel per task, in double.
template <typename T>
void guided_pool_backward_cpu(const T* grad, const T* y, int64_t B, int64_t H, int64_t W,
                              const T* weight, const int32_t* argmax, int64_t C, int64_t s,
                              T* grad_y, T* grad_weight, T* grad_bias, int num_threads) {
  const int64_t Ho = H / s, Wo = W / s, plane = Ho * Wo;
  const bool big = B * C * plane * 9 >= (1 << 16);
  if (grad_y) {
    std::fill(grad_y, grad_y + B * H * W, T(0));
    const int64_t colours = s >= 2 ? 2 : 3;
    for (int64_t colour = 0; colour < colours; ++colour) {
      const int64_t rows = Ho > colour ? (Ho - colour + colours - 1) / colours : 0;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (big)
      for (int64_t t = 0; t < B * rows; ++t) {
        const int64_t b = t / rows, I = colour + (t % rows) * colours;
        for (int64_t J = 0; J < Wo; ++J)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t o = (b * C + c) * plane + I * Wo + J;
            const int64_t a = argmax[o];
            guided_pool::scatter9(grad_y + b * H * W, H, W, I * s + a / s, J * s + a % s,
                                  weight + c * 9, 1, grad[o]);
          }
      }
    }
  }
#pragma omp parallel for num_threads(num_threads) schedule(static) if (big)
  for (int64_t c = 0; c < C; ++c) {
    double gw[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0}, gb = 0.0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t q = 0; q < plane; ++q) {
        const int64_t o = (b * C + c) * plane + q, a = argmax[o];
        const double g = double(grad[o]);
        T taps[9];
        guided_pool::load_taps(y + b * H * W, H, W, (q / Wo) * s + a / s, (q % Wo) * s + a % s, taps);
        for (int k = 0; k < 9; ++k) gw[k] += g * double(taps[k]);
        gb += g;
      }
    for (int k = 0; k < 9; ++k) grad_weight[c * 9 + k] = T(gw[k]);
    grad_bias[c] = T(gb);
  }
}

#define XVF_INSTANTIATE(T)                                                                     \
  template void guided_pool_cpu<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*,      \
                                   int64_t, int64_t, T*, int32_t*, int);                         \
  template void guided_pool_backward_cpu<T>(const T*, const T*, int64_t, int64_t, int64_t,       \
                                            const T*, const int32_t*, int64_t, int64_t, T*, T*,  \
                                            T*, int);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace xvf
