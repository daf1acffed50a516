// Deterministic block reductions for the CUDA kernels (fixed order, no float atomics).
#pragma once

#include <cuda_runtime.h>

namespace xvf {
namespace cuda {

constexpr int kThreads = 256;

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sums v[0..N) over the block (blockDim.x a multiple of 32, at most 1024);
// the totals are valid in thread 0. `smem` holds 32 * N doubles; the trailing
// barrier lets a kernel reuse `smem` (or call block_sum again) afterwards.
template <int N>
__device__ void block_sum(double (&v)[N], double* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = warp_sum(v[k]);
  if (lane == 0) {
#pragma unroll
    for (int k = 0; k < N; ++k) smem[warp * N + k] = v[k];
  }
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x >> 5;
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = warp_sum(lane < warps ? smem[lane * N + k] : 0.0);
  }
  __syncthreads();
}

// Called first by every launcher: drops an error an earlier, unrelated runtime call left
// pending, which its caller saw and handled (an allocation that failed and was retried, say),
// so that last_error() reports the launcher's own. A sticky error (a kernel that crashed) is
// not lost: every later launch fails with it again. An error nobody checked is dropped here
// instead of being blamed on this op.
inline void forget_earlier_error() { (void)cudaGetLastError(); }

inline const char* last_error() {
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace cuda
}  // namespace xvf
