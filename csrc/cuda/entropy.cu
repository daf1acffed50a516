// CUDA feature-map entropy and max-entropy map selection, batched over maps.
//
// Pass 1 (min/max) and pass 2 (histogram) each split every map into slices
// handled by separate blocks; slice results are merged exactly (min/max in a
// fixed order, integer counts by atomics, which commute). The entropy of each
// map is then summed over its bins in a fixed order.
#include <algorithm>
#include <cfloat>

#include "reduce.cuh"
#include "xvertfast/entropy.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace cuda {
namespace {

constexpr int64_t kPerThread = 64;      // elements per thread per slice (target)
constexpr int64_t kMaxSlices = 1024;
constexpr int kMaxSharedBins = 8192;    // 32 KiB of shared counters

int64_t slices_per_map(int64_t N) {
  return std::min<int64_t>(kMaxSlices, std::max<int64_t>(1, ceil_div(N, kThreads * kPerThread)));
}

template <typename T> __device__ __forceinline__ T pos_inf();
template <> __device__ __forceinline__ float pos_inf<float>() { return __int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double pos_inf<double>() { return __longlong_as_double(0x7ff0000000000000LL); }

// Grid: (maps, slices). Writes the slice's min and max.
template <typename T>
__global__ void __launch_bounds__(kThreads)
minmax_kernel(const T* __restrict__ x, int64_t N, T* __restrict__ part_lo, T* __restrict__ part_hi) {
  const int64_t m = blockIdx.x, slices = gridDim.y;
  const int64_t len = ceil_div(N, slices);
  const int64_t i0 = blockIdx.y * len, i1 = min(N, i0 + len);
  const T* xm = x + m * N;
  T lo = pos_inf<T>(), hi = -pos_inf<T>();
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const T v = xm[i];
    lo = entropy::min_skip_nan(lo, v);
    hi = entropy::max_skip_nan(hi, v);
  }
  __shared__ T slo[kThreads], shi[kThreads];
  slo[threadIdx.x] = lo;
  shi[threadIdx.x] = hi;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      slo[threadIdx.x] = entropy::min_skip_nan(slo[threadIdx.x], slo[threadIdx.x + stride]);
      shi[threadIdx.x] = entropy::max_skip_nan(shi[threadIdx.x], shi[threadIdx.x + stride]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    part_lo[m * slices + blockIdx.y] = slo[0];
    part_hi[m * slices + blockIdx.y] = shi[0];
  }
}

template <typename T>
__global__ void minmax_merge_kernel(const T* __restrict__ part_lo, const T* __restrict__ part_hi,
                                    int64_t M, int64_t slices, T* __restrict__ lo,
                                    T* __restrict__ hi) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m >= M) return;
  T l = part_lo[m * slices], h = part_hi[m * slices];
  for (int64_t k = 1; k < slices; ++k) {
    l = entropy::min_skip_nan(l, part_lo[m * slices + k]);
    h = entropy::max_skip_nan(h, part_hi[m * slices + k]);
  }
  lo[m] = l;
  hi[m] = h;
}

// Grid: (maps, slices); dynamic shared memory of `bins` counters when shared.
template <typename T, bool kShared>
__global__ void __launch_bounds__(kThreads)
histogram_kernel(const T* __restrict__ x, int64_t N, int bins, const T* __restrict__ lo,
                 const T* __restrict__ hi, unsigned int* __restrict__ counts) {
  extern __shared__ unsigned int shist[];
  const int64_t m = blockIdx.x, slices = gridDim.y;
  const int64_t len = ceil_div(N, slices);
  const int64_t i0 = blockIdx.y * len, i1 = min(N, i0 + len);
  const T l = lo[m];
  const T scale = entropy::bin_scale(l, hi[m], bins);
  unsigned int* gcount = counts + m * bins;
  if (kShared) {
    for (int k = threadIdx.x; k < bins; k += blockDim.x) shist[k] = 0;
    __syncthreads();
  }
  const T* xm = x + m * N;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) {
    const int k = entropy::bin_index(xm[i], l, scale, bins);
    atomicAdd(kShared ? &shist[k] : &gcount[k], 1u);
  }
  if (kShared) {
    __syncthreads();
    for (int k = threadIdx.x; k < bins; k += blockDim.x)
      if (shist[k]) atomicAdd(&gcount[k], shist[k]);
  }
}

__global__ void __launch_bounds__(kThreads)
entropy_kernel(const unsigned int* __restrict__ counts, int bins, int64_t N,
               double* __restrict__ ent) {
  const int64_t m = blockIdx.x;
  const double inv_n = 1.0 / double(N);
  double acc[1] = {0.0};
  for (int k = threadIdx.x; k < bins; k += blockDim.x)
    acc[0] += entropy::bin_term(counts[m * bins + k], inv_n);
  __shared__ double smem[32];
  block_sum(acc, smem);
  if (threadIdx.x == 0) ent[m] = acc[0];
}

__global__ void argmax_kernel(const double* __restrict__ ent, int64_t B, int64_t C,
                              int64_t* __restrict__ index) {
  const int64_t b = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  index[b] = entropy::first_max(ent + b * C, C);
}

// Grid: (samples, blocks over N).
template <typename T>
__global__ void __launch_bounds__(kThreads)
gather_kernel(const T* __restrict__ x, const int64_t* __restrict__ index, const T* __restrict__ lo,
              const T* __restrict__ hi, int64_t C, int64_t N, bool normalize, T* __restrict__ map) {
  const int64_t b = blockIdx.x;
  const int64_t m = b * C + index[b];
  const T l = lo[m], h = hi[m];
  const T* src = x + m * N;
  T* dst = map + b * N;
  for (int64_t i = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; i < N;
       i += int64_t(gridDim.y) * blockDim.x)
    dst[i] = entropy::scaled_value(src[i], l, h, normalize);
}

int64_t align256(int64_t bytes) { return ceil_div(bytes, 256) * 256; }

}  // namespace

int64_t entropy_workspace_bytes(int64_t M, int64_t N, int bins) {
  const int64_t slices = slices_per_map(N);
  return 2 * align256(M * slices * int64_t(sizeof(double))) +
         align256(M * bins * int64_t(sizeof(unsigned int)));
}

template <typename T>
const char* entropy(const T* x, int64_t M, int64_t N, int bins, double* ent, T* lo, T* hi,
                    void* workspace, void* stream) {
  forget_earlier_error();
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (M == 0) return nullptr;
  if (M > 0x7fffffffLL) return "feature_entropy: too many maps for one launch";
  if (N == 0) {
    cudaMemsetAsync(ent, 0, M * sizeof(double), st);
    cudaMemsetAsync(lo, 0, M * sizeof(T), st);
    cudaMemsetAsync(hi, 0, M * sizeof(T), st);
    return last_error();
  }
  const int64_t slices = slices_per_map(N);
  char* ws = static_cast<char*>(workspace);
  T* part_lo = reinterpret_cast<T*>(ws);
  T* part_hi = reinterpret_cast<T*>(ws + align256(M * slices * int64_t(sizeof(double))));
  unsigned int* counts =
      reinterpret_cast<unsigned int*>(ws + 2 * align256(M * slices * int64_t(sizeof(double))));
  const dim3 grid{unsigned(M), unsigned(slices), 1u};
  minmax_kernel<T><<<grid, kThreads, 0, st>>>(x, N, part_lo, part_hi);
  minmax_merge_kernel<T><<<unsigned(ceil_div(M, kThreads)), kThreads, 0, st>>>(part_lo, part_hi,
                                                                              M, slices, lo, hi);
  cudaMemsetAsync(counts, 0, M * bins * sizeof(unsigned int), st);
  if (bins <= kMaxSharedBins)
    histogram_kernel<T, true><<<grid, kThreads, bins * sizeof(unsigned int), st>>>(
        x, N, bins, lo, hi, counts);
  else
    histogram_kernel<T, false><<<grid, kThreads, 0, st>>>(x, N, bins, lo, hi, counts);
  entropy_kernel<<<unsigned(M), kThreads, 0, st>>>(counts, bins, N, ent);
  return last_error();
}

template <typename T>
const char* select_map(const T* x, const double* ent, const T* lo, const T* hi, int64_t B,
                       int64_t C, int64_t N, bool normalize, int64_t* index, T* map,
                       void* stream) {
  forget_earlier_error();
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (B == 0) return nullptr;
  if (B > 0x7fffffffLL) return "select_max_entropy: batch too large for one launch";
  argmax_kernel<<<unsigned(ceil_div(B, 128)), 128, 0, st>>>(ent, B, C, index);
  if (N > 0) {
    const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(N, kThreads), 4096));
    gather_kernel<T><<<dim3(unsigned(B), blocks), kThreads, 0, st>>>(x, index, lo, hi, C, N,
                                                                     normalize, map);
  }
  return last_error();
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

#define XVF_INSTANTIATE(T)                                                                   \
  template const char* entropy<T>(const T*, int64_t, int64_t, int, double*, T*, T*, void*,   \
                                  void*);                                                    \
  template const char* select_map<T>(const T*, const double*, const T*, const T*, int64_t,   \
                                     int64_t, int64_t, bool, int64_t*, T*, void*);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace cuda
}  // namespace xvf
