// CPU (OpenMP) guidance-layer conv + max-pool, fused (see xvertfast/guided_pool.h).
//
// A task is one pooled output row of one image. For every pixel of a window the 9 taps are
// loaded (without the padding checks where the window lies inside the image) and the dot
// products of a block of 16 channels run as one vector loop (weights stored tap-major,
// [9][C]); the block's running maxima and window offsets (for the backward) stay in
// registers until the window is done.
#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "xvertfast/guided_pool.h"
#include "xvertfast/kernels.h"

namespace xvf {

// Channels go in blocks of kBlock: a block's running maxima and window offsets stay in
// registers over the whole window, and its 9 kernel vectors in L1.
constexpr int64_t kBlock = 16;

template <typename T, int64_t K, int64_t S>
XVF_INLINE void pool_block(const T* img, int64_t H, int64_t W, int64_t I, int64_t J, int64_t s_run, const T* w,
                           const T* bias, int64_t C, int64_t c0, T* best_out, int32_t* arg_out) {
  const int64_t s = S > 0 ? S : s_run;  // the common pool sizes are compile-time constants
  T best[K];
  int32_t arg[K];
  for (int64_t c = 0; c < K; ++c) {
    best[c] = -std::numeric_limits<T>::infinity();
    arg[c] = 0;
  }
  const bool inside = I * s > 0 && J * s > 0 && I * s + s < H && J * s + s < W;
  for (int64_t di = 0; di < s; ++di)
    for (int64_t dj = 0; dj < s; ++dj) {
      const int64_t i = I * s + di, j = J * s + dj;
      T taps[9];
      if (inside) {  // the whole window's 3x3 neighbourhoods lie in the image: no padding
        for (int u = 0; u < 3; ++u)
          for (int v = 0; v < 3; ++v) taps[3 * u + v] = img[(i + u - 1) * W + (j + v - 1)];
      } else {
        guided_pool::load_taps(img, H, W, i, j, taps);
      }
      const int32_t a = int32_t(di * s + dj);
#pragma omp simd
      for (int64_t c = 0; c < K; ++c) {
        const T v = guided_pool::dot9(taps, w + c0 + c, C, bias[c0 + c]);
        const bool better = guided_pool::pool_better(best[c], v);
        best[c] = better ? v : best[c];
        arg[c] = better ? a : arg[c];
      }
    }
  for (int64_t c = 0; c < K; ++c) {
    best_out[c] = best[c];
    arg_out[c] = arg[c];
  }
}

// One pooled output row I of one image, every channel.
template <typename T, int64_t S>
XVF_INLINE void pool_row(const T* img, int64_t H, int64_t W, int64_t I, int64_t s, const T* w, const T* bias,
                         int64_t C, T* out, int32_t* argmax) {
  const int64_t Ho = H / s, Wo = W / s;
  T best[kBlock];
  int32_t arg[kBlock];
  // block by block along the row: each channel's outputs are written in order
  for (int64_t c0 = 0; c0 < C; c0 += kBlock) {
    const int64_t n = std::min(kBlock, C - c0);
    for (int64_t J = 0; J < Wo; ++J) {
      const int64_t o = I * Wo + J;
      if (n == kBlock) {
        pool_block<T, kBlock, S>(img, H, W, I, J, s, w, bias, C, c0, best, arg);
      } else {
        for (int64_t c = c0; c < c0 + n; ++c)  // the last, partial block: one channel at a time
          pool_block<T, 1, S>(img, H, W, I, J, s, w, bias, C, c, best + (c - c0), arg + (c - c0));
      }
      for (int64_t c = 0; c < n; ++c) {
        out[o + (c0 + c) * Ho * Wo] = best[c];
        if (argmax) argmax[o + (c0 + c) * Ho * Wo] = arg[c];
      }
    }
  }
}

template <typename T>
XVF_INLINE void pool_row_sized(const T* img, int64_t H, int64_t W, int64_t I, int64_t s, const T* w, const T* bias,
                               int64_t C, T* out, int32_t* argmax) {
  switch (s) {
    case 2: return pool_row<T, 2>(img, H, W, I, s, w, bias, C, out, argmax);
    case 4: return pool_row<T, 4>(img, H, W, I, s, w, bias, C, out, argmax);
    case 8: return pool_row<T, 8>(img, H, W, I, s, w, bias, C, out, argmax);
    default: return pool_row<T, 0>(img, H, W, I, s, w, bias, C, out, argmax);
  }
}

XVF_TARGET_CLONES void pool_row_f32(const float* img, int64_t H, int64_t W, int64_t I, int64_t s, const float* w,
                                    const float* bias, int64_t C, float* out, int32_t* argmax) {
  pool_row_sized<float>(img, H, W, I, s, w, bias, C, out, argmax);
}
XVF_TARGET_CLONES void pool_row_f64(const double* img, int64_t H, int64_t W, int64_t I, int64_t s, const double* w,
                                    const double* bias, int64_t C, double* out, int32_t* argmax) {
  pool_row_sized<double>(img, H, W, I, s, w, bias, C, out, argmax);
}

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
#pragma omp parallel for num_threads(num_threads) schedule(static) if (tasks * Wo * s * s * C >= (1 << 16))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t b = t / Ho, I = t % Ho;
    int32_t* arg = argmax ? argmax + b * C * Ho * Wo : nullptr;
    if constexpr (std::is_same_v<T, float>)
      pool_row_f32(y + b * H * W, H, W, I, s, w, bias, C, out + b * C * Ho * Wo, arg);
    else
      pool_row_f64(y + b * H * W, H, W, I, s, w, bias, C, out + b * C * Ho * Wo, arg);
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
