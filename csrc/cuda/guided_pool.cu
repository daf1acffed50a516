// CUDA guidance-layer conv + max-pool, fused (see xvertfast/guided_pool.h), and its backward.
// Forward: one thread per pooled output (b, c, I, J), consecutive threads along J.
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>

#include "reduce.cuh"
#include "xvertfast/guided_pool.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace cuda {
namespace {

template <typename T>
__global__ void __launch_bounds__(kThreads)
guided_pool_kernel(const T* __restrict__ y, int64_t B, int64_t H, int64_t W,
                   const T* __restrict__ weight, const T* __restrict__ bias, int64_t C, int64_t s,
                   T* __restrict__ out, int32_t* __restrict__ argmax) {
  const int64_t Ho = H / s, Wo = W / s, total = B * C * Ho * Wo;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t J = t % Wo, I = (t / Wo) % Ho, c = (t / (Wo * Ho)) % C, b = t / (Wo * Ho * C);
    const T* img = y + b * H * W;
    T best = -std::numeric_limits<T>::infinity();
    int32_t arg = 0;
    for (int64_t di = 0; di < s; ++di)
      for (int64_t dj = 0; dj < s; ++dj) {
        T taps[9];
        guided_pool::load_taps(img, H, W, I * s + di, J * s + dj, taps);
        const T v = guided_pool::dot9(taps, weight + c * 9, 1, bias[c]);
        if (guided_pool::pool_better(best, v)) {
          best = v;
          arg = int32_t(di * s + dj);
        }
      }
    out[t] = best;
    if (argmax) argmax[t] = arg;
  }
}

// grad_y by gathering (no atomics: deterministic): pixel p receives g w[k] from every output
// whose window maximum sits at p - (tap k's offset).
template <typename T>
__global__ void __launch_bounds__(kThreads)
guided_pool_grad_y_kernel(const T* __restrict__ grad, int64_t B, int64_t H, int64_t W,
                          const T* __restrict__ weight, const int32_t* __restrict__ argmax,
                          int64_t C, int64_t s, T* __restrict__ grad_y) {
  const int64_t Ho = H / s, Wo = W / s, plane = Ho * Wo, total = B * H * W;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = t % W, i = (t / W) % H, b = t / (H * W);
    T acc = T(0);
    for (int k = 0; k < 9; ++k) {
      const int64_t qi = i - (k / 3 - 1), qj = j - (k % 3 - 1);  // the window pixel using p as tap k
      if (qi < 0 || qj < 0 || qi >= Ho * s || qj >= Wo * s) continue;
      const int64_t o = (qi / s) * Wo + qj / s;
      const int32_t a = int32_t((qi % s) * s + qj % s);
      for (int64_t c = 0; c < C; ++c) {
        const int64_t oc = (b * C + c) * plane + o;
        if (argmax[oc] == a) acc += grad[oc] * weight[c * 9 + k];
      }
    }
    grad_y[t] = acc;
  }
}

// grad_weight, grad_bias: one block per channel, block sums in a fixed order.
template <typename T>
__global__ void __launch_bounds__(kThreads)
guided_pool_grad_w_kernel(const T* __restrict__ grad, const T* __restrict__ y, int64_t B,
                          int64_t H, int64_t W, const int32_t* __restrict__ argmax, int64_t C,
                          int64_t s, T* __restrict__ grad_weight, T* __restrict__ grad_bias) {
  __shared__ double smem[32 * 10];
  const int64_t c = blockIdx.x, Ho = H / s, Wo = W / s, plane = Ho * Wo;
  double acc[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t t = threadIdx.x; t < B * plane; t += blockDim.x) {
    const int64_t b = t / plane, q = t % plane, o = (b * C + c) * plane + q;
    const int64_t a = argmax[o];
    const double g = double(grad[o]);
    T taps[9];
    guided_pool::load_taps(y + b * H * W, H, W, (q / Wo) * s + a / s, (q % Wo) * s + a % s, taps);
    for (int k = 0; k < 9; ++k) acc[k] += g * double(taps[k]);
    acc[9] += g;
  }
  block_sum(acc, smem);
  if (threadIdx.x == 0) {
    for (int k = 0; k < 9; ++k) grad_weight[c * 9 + k] = T(acc[k]);
    grad_bias[c] = T(acc[9]);
  }
}

int blocks_for(int64_t n) { return int(std::min<int64_t>(ceil_div(n, kThreads), 65535)); }  // grid-stride

}  // namespace

template <typename T>
const char* guided_pool(const T* y, int64_t B, int64_t H, int64_t W, const T* weight,
                        const T* bias, int64_t C, int64_t s, T* out, int32_t* argmax,
                        void* stream) {
  forget_earlier_error();
  const int64_t total = B * C * (H / s) * (W / s);
  if (total <= 0) return nullptr;
  guided_pool_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      y, B, H, W, weight, bias, C, s, out, argmax);
  return last_error();
}

template <typename T>
const char* guided_pool_backward(const T* grad, const T* y, int64_t B, int64_t H, int64_t W,
                                 const T* weight, const int32_t* argmax, int64_t C, int64_t s,
                                 T* grad_y, T* grad_weight, T* grad_bias, void* stream) {
  forget_earlier_error();
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (B <= 0 || C <= 0 || H / s <= 0 || W / s <= 0) {
    // no pooled output: every gradient is a sum of nothing, zero (as on the CPU)
    if (grad_y && B * H * W > 0) cudaMemsetAsync(grad_y, 0, size_t(B * H * W) * sizeof(T), st);
    if (C > 0) {
      cudaMemsetAsync(grad_weight, 0, size_t(C) * 9 * sizeof(T), st);
      cudaMemsetAsync(grad_bias, 0, size_t(C) * sizeof(T), st);
    }
    return last_error();
  }
  if (grad_y)
    guided_pool_grad_y_kernel<<<blocks_for(B * H * W), kThreads, 0, st>>>(grad, B, H, W, weight,
                                                                            argmax, C, s, grad_y);
  guided_pool_grad_w_kernel<<<unsigned(C), kThreads, 0, st>>>(grad, y, B, H, W, argmax, C, s,
                                                              grad_weight, grad_bias);
  return last_error();
}

#define XVF_INSTANTIATE(T)                                                                     \
  template const char* guided_pool<T>(const T*, int64_t, int64_t, int64_t, const T*, const T*,   \
                                      int64_t, int64_t, T*, int32_t*, void*);                    \
  template const char* guided_pool_backward<T>(const T*, const T*, int64_t, int64_t, int64_t,    \
                                               const T*, const int32_t*, int64_t, int64_t, T*,   \
                                               T*, T*, void*);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace cuda
}  // namespace xvf
