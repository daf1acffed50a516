// CUDA gradient correlation: forward moments and analytic backward, batched.
//
// Forward: each block sums the shifted Sobel moments of a set of rows of one
// sample into its own slot; a second kernel adds the slots in a fixed order,
// so the result is bitwise reproducible, and a sample's the same in any batch. Backward: a shared-memory tile of
// a and b (2-pixel halo) gives the Sobel responses, the weight maps of the
// tile (1-pixel halo) are formed in shared memory, and each output pixel
// gathers them through the Sobel adjoint: no atomics, deterministic.
#include <algorithm>

#include "reduce.cuh"
#include "xvertfast/gradient_correlation.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace cuda {
namespace {

// Blocks of rows per sample for the forward moments: a function of the image height alone,
// so a sample's sums are added in the same order whatever batch it comes in (bitwise the same
// GC alone or in any batch, as on the CPU). 1024 (8 blocks of 256 threads per SM of a
// 132-SM GPU) keep a batch of one 2048-row image at full occupancy; with fewer rows, each
// block takes one row. The workspace is 80 KB per sample at most.
constexpr int64_t kRowBlocksPerSample = 1024;
constexpr int64_t kMaxGridYZ = 65535;

int64_t row_blocks(int64_t H) {
  return std::min<int64_t>(kRowBlocksPerSample, std::max<int64_t>(1, H - 2));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
gc_moments_kernel(const T* __restrict__ a, const T* __restrict__ b, int64_t H, int64_t W,
                  double* __restrict__ partial, double* __restrict__ shift_out) {
  const int64_t s = blockIdx.x;
  const int64_t HW = H * W;
  const T* sa = a + s * HW;
  const T* sb = b + s * HW;
  T gax, gay, gbx, gby;
  gc::sobel(sa + W + 1, W, gax, gay);
  gc::sobel(sb + W + 1, W, gbx, gby);
  const double shift[4] = {double(gax), double(gbx), double(gay), double(gby)};
  if (blockIdx.y == 0 && threadIdx.x == 0)
    for (int k = 0; k < 4; ++k) shift_out[s * 4 + k] = shift[k];

  double acc[gc::kSums] = {0};
  for (int64_t i = 1 + blockIdx.y; i < H - 1; i += gridDim.y) {
    for (int64_t j = 1 + threadIdx.x; j < W - 1; j += blockDim.x) {
      gc::sobel(sa + i * W + j, W, gax, gay);
      gc::sobel(sb + i * W + j, W, gbx, gby);
      gc::accumulate(acc, gax, gbx, gay, gby, shift);
    }
  }
  __shared__ double smem[32 * gc::kSums];
  block_sum(acc, smem);
  if (threadIdx.x == 0)
    for (int k = 0; k < gc::kSums; ++k)
      partial[(s * gridDim.y + blockIdx.y) * gc::kSums + k] = acc[k];
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
gc_finalize_kernel(const double* __restrict__ partial, const double* __restrict__ shift,
                   int64_t blocks, double n, double eps, T* __restrict__ gc_out,
                   double* __restrict__ stats) {
  const int64_t s = blockIdx.x;
  double acc[gc::kSums] = {0};
  for (int64_t blk = threadIdx.x; blk < blocks; blk += blockDim.x)
    for (int k = 0; k < gc::kSums; ++k) acc[k] += partial[(s * blocks + blk) * gc::kSums + k];
  __shared__ double smem[32 * gc::kSums];
  block_sum(acc, smem);
  if (threadIdx.x == 0)
    gc_out[s] = T(gc::finalize(acc, shift + s * 4, n, eps, stats + s * gc::kStats));
}

template <typename T>
__global__ void gc_coefficients_kernel(const T* __restrict__ grad_gc,
                                       const double* __restrict__ stats, int64_t B, double n,
                                       double eps, double* __restrict__ coef) {
  const int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s < B)
    gc::backward_coefficients(stats + s * gc::kStats, double(grad_gc[s]), n, eps,
                              coef + s * gc::kCoef);
}

// Output tile: 32 columns x TH rows, 32 x 8 threads.
template <typename T>
struct BackwardTile {
  static constexpr int kW = 32;
  static constexpr int kH = sizeof(T) == 4 ? 32 : 16;  // keeps shared memory < 48 KiB
};

template <typename T>
__global__ void __launch_bounds__(kThreads)
gc_backward_kernel(const T* __restrict__ a, const T* __restrict__ b,
                   const double* __restrict__ coef, int64_t H, int64_t W, T* __restrict__ grad_a,
                   T* __restrict__ grad_b) {
  constexpr int TW = BackwardTile<T>::kW, TH = BackwardTile<T>::kH;
  constexpr int LW = TW + 4, WW = TW + 2;
  __shared__ T sa[TH + 4][LW];
  __shared__ T sb[TH + 4][LW];
  __shared__ T w[4][TH + 2][WW];  // wa_x, wa_y, wb_x, wb_y

  const int64_t s = blockIdx.z;
  const int64_t i0 = int64_t(blockIdx.y) * TH, j0 = int64_t(blockIdx.x) * TW;
  const int64_t HW = H * W;
  const T* pa = a + s * HW;
  const T* pb = b + s * HW;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  const int nthreads = blockDim.x * blockDim.y;

  for (int k = tid; k < (TH + 4) * LW; k += nthreads) {
    const int r = k / LW, c = k % LW;
    const int64_t gi = i0 - 2 + r, gj = j0 - 2 + c;
    const bool in = gi >= 0 && gi < H && gj >= 0 && gj < W;
    sa[r][c] = in ? pa[gi * W + gj] : T(0);
    sb[r][c] = in ? pb[gi * W + gj] : T(0);
  }
  T cf[gc::kCoef];
#pragma unroll
  for (int k = 0; k < gc::kCoef; ++k) cf[k] = T(coef[s * gc::kCoef + k]);
  __syncthreads();

  for (int k = tid; k < (TH + 2) * WW; k += nthreads) {
    const int r = k / WW, c = k % WW;
    T vax = T(0), vay = T(0), vbx = T(0), vby = T(0);
    if (gc::is_valid(i0 - 1 + r, j0 - 1 + c, H, W)) {
      T gax, gay, gbx, gby;
      gc::sobel(&sa[r + 1][c + 1], LW, gax, gay);
      gc::sobel(&sb[r + 1][c + 1], LW, gbx, gby);
      gc::backward_weights(cf, gax, gbx, vax, vbx);
      gc::backward_weights(cf + 5, gay, gby, vay, vby);
    }
    w[0][r][c] = vax;
    w[1][r][c] = vay;
    w[2][r][c] = vbx;
    w[3][r][c] = vby;
  }
  __syncthreads();

  const int c = threadIdx.x;
  const int64_t pj = j0 + c;
  for (int r = threadIdx.y; r < TH; r += blockDim.y) {
    const int64_t pi = i0 + r;
    if (pi < H && pj < W) {
      if (grad_a)
        grad_a[s * HW + pi * W + pj] = gc::sobel_adjoint(&w[0][r + 1][c + 1], &w[1][r + 1][c + 1], WW);
      if (grad_b)
        grad_b[s * HW + pi * W + pj] = gc::sobel_adjoint(&w[2][r + 1][c + 1], &w[3][r + 1][c + 1], WW);
    }
  }
}

}  // namespace

int64_t gc_forward_workspace(int64_t B, int64_t H, int64_t /*W*/) {
  return B * (row_blocks(H) * gc::kSums + 4);
}

template <typename T>
const char* gc_forward(const T* a, const T* b, int64_t B, int64_t H, int64_t W, double eps,
                       T* gc_out, double* stats, double* workspace, void* stream) {
  forget_earlier_error();
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (B == 0) return nullptr;
  if (B > 0x7fffffffLL) return "gradient_correlation: batch too large for one launch";
  const int64_t n = gc::valid_count(H, W);
  if (n == 0) {  // no valid pixel: GC = 0 and all statistics 0 (all-zero bytes)
    cudaMemsetAsync(gc_out, 0, B * sizeof(T), st);
    cudaMemsetAsync(stats, 0, B * gc::kStats * sizeof(double), st);
    return last_error();
  }
  const int64_t blocks = row_blocks(H);
  double* partial = workspace;
  double* shift = workspace + B * blocks * gc::kSums;
  gc_moments_kernel<T><<<dim3(unsigned(B), unsigned(blocks)), kThreads, 0, st>>>(
      a, b, H, W, partial, shift);
  gc_finalize_kernel<T><<<unsigned(B), kThreads, 0, st>>>(partial, shift, blocks, double(n), eps,
                                                          gc_out, stats);
  return last_error();
}

template <typename T>
const char* gc_backward(const T* grad_gc, const T* a, const T* b, const double* stats,
                        int64_t B, int64_t H, int64_t W, double eps, T* grad_a, T* grad_b,
                        double* coef_workspace, void* stream) {
  forget_earlier_error();
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  if (B == 0 || H == 0 || W == 0) return nullptr;
  constexpr int TW = BackwardTile<T>::kW, TH = BackwardTile<T>::kH;
  if (ceil_div(H, TH) > kMaxGridYZ) return "gradient_correlation backward: image too tall";
  const int64_t n = gc::valid_count(H, W);
  gc_coefficients_kernel<T><<<unsigned(ceil_div(B, 128)), 128, 0, st>>>(grad_gc, stats, B,
                                                                        double(n), eps,
                                                                        coef_workspace);
  const int64_t HW = H * W;
  for (int64_t b0 = 0; b0 < B; b0 += kMaxGridYZ) {  // the batch is the grid's z axis
    const int64_t nb = std::min(kMaxGridYZ, B - b0);
    const dim3 grid(unsigned(ceil_div(W, TW)), unsigned(ceil_div(H, TH)), unsigned(nb));
    gc_backward_kernel<T><<<grid, dim3(32, 8), 0, st>>>(
        a + b0 * HW, b + b0 * HW, coef_workspace + b0 * gc::kCoef, H, W,
        grad_a ? grad_a + b0 * HW : nullptr, grad_b ? grad_b + b0 * HW : nullptr);
  }
  return last_error();
}

#define XVF_INSTANTIATE(T)                                                                     \
  template const char* gc_forward<T>(const T*, const T*, int64_t, int64_t, int64_t, double, T*, \
                                     double*, double*, void*);                                 \
  template const char* gc_backward<T>(const T*, const T*, const T*, const double*, int64_t,     \
                                      int64_t, int64_t, double, T*, T*, double*, void*);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace cuda
}  // namespace xvf
