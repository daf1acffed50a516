// CUDA guidance-layer conv + max-pool, fused (see xvertfast/guided_pool.h): one thread per
// pooled output (b, c, I, J), consecutive threads along J; the window's taps come from the
// read-only cache, the channel's 9 weights from registers.
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
                   T* __restrict__ out) {
  const int64_t Ho = H / s, Wo = W / s, total = B * C * Ho * Wo;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total;
       t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t J = t % Wo, I = (t / Wo) % Ho, c = (t / (Wo * Ho)) % C, b = t / (Wo * Ho * C);
    const T* img = y + b * H * W;
    T best = -std::numeric_limits<T>::infinity();
    for (int64_t di = 0; di < s; ++di)
      for (int64_t dj = 0; dj < s; ++dj) {
        T taps[9];
        guided_pool::load_taps(img, H, W, I * s + di, J * s + dj, taps);
        best = guided_pool::pool_max(best, guided_pool::dot9(taps, weight + c * 9, 1, bias[c]));
      }
    out[t] = best;
  }
}

}  // namespace

template <typename T>
const char* guided_pool(const T* y, int64_t B, int64_t H, int64_t W, const T* weight,
                        const T* bias, int64_t C, int64_t s, T* out, void* stream) {
  const int64_t total = B * C * (H / s) * (W / s);
  if (total <= 0) return nullptr;
  const int blocks = int(std::min<int64_t>(ceil_div(total, kThreads), 65535));  // grid-stride
  guided_pool_kernel<<<blocks, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      y, B, H, W, weight, bias, C, s, out);
  return last_error();
}

template const char* guided_pool<float>(const float*, int64_t, int64_t, int64_t, const float*,
                                        const float*, int64_t, int64_t, float*, void*);
template const char* guided_pool<double>(const double*, int64_t, int64_t, int64_t,
                                         const double*, const double*, int64_t, int64_t, double*,
                                         void*);

}  // namespace cuda
}  // namespace xvf
