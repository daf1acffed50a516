// CUDA executor of the WLS multigrid-PCG solver.
//
// The solver (setup, V-cycle, batched CG) is xvertfast/wls_multigrid.h, the
// same code the CPU build runs and CI tests; this file only turns its loops
// into kernels: one thread per point (grid), per line (lines), per column
// walking the rows (sweep) or per image (each). A batch of images is solved
// together, each image with its own CG scalars; one host synchronisation per
// CG iteration reads the residual norms to decide which images are done. The
// plateaus of the setup are labelled on the device (build_aggregates_parallel: a
// lock-free union-find, CUB scans and stable radix sorts); the host reads back counts.
// All memory is the caller's: the workspace (wls_workspace_bytes) and CUB's scratch, from
// the caller's allocator.
#include <cuda_runtime.h>

#include <algorithm>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "reduce.cuh"
#include "xvertfast/kernels.h"
#include "xvertfast/wls_multigrid.h"

namespace xvf {
namespace cuda {
namespace {

constexpr int64_t kMaxGridYZ = 65535;

template <class F>
__global__ void grid_kernel(int64_t nb, int64_t rows, int64_t cols, F f) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= cols) return;
  for (int64_t b = blockIdx.z; b < nb; b += gridDim.z)
    for (int64_t i = blockIdx.y; i < rows; i += gridDim.y) f(b, i, j);
}

template <class F>
__global__ void lines_kernel(int64_t nb, int64_t n, F f) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < nb * n; k += stride)
    f(k / n, k % n);
}

template <class F>
__global__ void sweep_kernel(int64_t nb, int64_t rows, int64_t cols, bool reverse, F f) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < nb * cols; k += stride) {
    const int64_t b = k / cols, c = k % cols;
    for (int64_t ii = 0; ii < rows; ++ii) f(b, reverse ? rows - 1 - ii : ii, c);
  }
}

template <class F>
__global__ void each_kernel(int64_t n, F f) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += stride) f(k);
}

int blocks_for(int64_t n) { return int(std::min<int64_t>(ceil_div(std::max<int64_t>(n, 1), kThreads), 65535)); }

// The loops of xvertfast/wls_multigrid.h as kernels on one stream. Launch errors stay
// pending in the runtime and are collected once at the end of the solve.
// Its loop structure (separate kernels for point work and reductions, one row per thread,
// plateau sums 64 members a thread, plateaus labelled on the device) is wls::GpuLoopTraits,
// which the CPU's emulation of this executor shares (csrc/cpu/wls_gpu_emulation.cpp).
struct CudaExec : wls::GpuLoopTraits<CudaExec> {
  cudaStream_t stream = nullptr;

  template <class F>
  void grid(int64_t nb, int64_t rows, int64_t cols, F f) const {
    if (nb <= 0 || rows <= 0 || cols <= 0) return;
    const dim3 blocks(unsigned(ceil_div(cols, kThreads)), unsigned(std::min(rows, kMaxGridYZ)),
                      unsigned(std::min(nb, kMaxGridYZ)));
    grid_kernel<<<blocks, kThreads, 0, stream>>>(nb, rows, cols, f);
  }
  template <class F>
  void lines(int64_t nb, int64_t n, F f, int64_t /*work: a CPU hint*/ = 0) const {
    if (nb * n <= 0) return;
    lines_kernel<<<blocks_for(nb * n), kThreads, 0, stream>>>(nb, n, f);
  }
  template <class F>
  void sweep(int64_t nb, int64_t rows, int64_t cols, bool reverse, F f) const {
    if (nb * cols <= 0 || rows <= 0) return;
    sweep_kernel<<<blocks_for(nb * cols), kThreads, 0, stream>>>(nb, rows, cols, reverse, f);
  }
  template <class F>
  void each(int64_t n, F f) const {
    if (n <= 0) return;
    each_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, f);
  }
  // CUB's device-wide scan and radix sort (stable), their scratch from the caller's allocator
  // (torch's caching allocator through the glue, which throws its out-of-memory error) or else
  // from cudaMallocAsync. Once an error is pending (a failed allocation or CUB call), CUB
  // would return early from every later call too, leaving its outputs stale; so from then on
  // the outputs are zeros instead. The counts the host reads back are then 0, no later pass
  // indexes with garbage (out of bounds), and the error is reported once the setup is done.
  void exclusive_scan(const int32_t* in, int32_t* out, int64_t n) const {
    cudaMemsetAsync(out, 0, sizeof(int32_t), stream);
    if (n <= 0) return;
    size_t bytes = 0;
    note(cub::DeviceScan::InclusiveSum(nullptr, bytes, in, out + 1, n, stream));
    void* tmp = scratch(bytes);
    if (tmp == nullptr) {
      cudaMemsetAsync(out, 0, size_t(n + 1) * sizeof(int32_t), stream);
      return;
    }
    note(cub::DeviceScan::InclusiveSum(tmp, bytes, in, out + 1, n, stream));
    give_back(tmp);
  }
  void sort_pairs(const uint32_t* kin, uint32_t* kout, const int32_t* vin, int32_t* vout, int64_t n,
                  int bits) const {
    if (n <= 0) return;
    size_t bytes = 0;
    note(cub::DeviceRadixSort::SortPairs(nullptr, bytes, kin, kout, vin, vout, n, 0, bits, stream));
    void* tmp = scratch(bytes);
    if (tmp == nullptr) {
      cudaMemsetAsync(kout, 0, size_t(n) * sizeof(uint32_t), stream);
      cudaMemsetAsync(vout, 0, size_t(n) * sizeof(int32_t), stream);
      return;
    }
    note(cub::DeviceRadixSort::SortPairs(tmp, bytes, kin, kout, vin, vout, n, 0, bits, stream));
    give_back(tmp);
  }
  // CUB's temporary storage, or null once an error is pending or where the allocation failed
  // (its error stays recorded).
  void* scratch(size_t bytes) const {
    if (!ok()) return nullptr;
    bytes = std::max<size_t>(bytes, 1);
    if (allocator.allocate != nullptr) {
      void* tmp = allocator.allocate(bytes, stream);
      if (tmp == nullptr) note(cudaErrorMemoryAllocation);  // (torch's throws instead)
      return tmp;
    }
    void* tmp = nullptr;
    return cudaMallocAsync(&tmp, bytes, stream) == cudaSuccess ? tmp : nullptr;
  }
  void give_back(void* p) const {
    if (allocator.release != nullptr) allocator.release(p);
    else cudaFreeAsync(p, stream);
  }
  // Keeps the first error a CUB call returned: some (storage too small, an invalid argument)
  // are returned without being recorded in the runtime.
  void note(cudaError_t e) const {
    if (e != cudaSuccess && failure == nullptr) failure = cudaGetErrorString(e);
  }
  // The first error of this solve: a CUB call's, else the runtime's pending one (taken in
  // both cases, so that no error of this solve is left for the next kernel to report).
  const char* error() const {
    const char* pending = last_error();
    return failure != nullptr ? failure : pending;
  }
  void zero(void* p, size_t bytes) const { cudaMemsetAsync(p, 0, bytes, stream); }
  // From pageable host memory: returns once the source has been staged, so it may be reused.
  void upload(void* dst, const void* src, size_t bytes) const {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream);
  }
  void download(void* dst, const void* src, size_t bytes) const {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream);
    cudaStreamSynchronize(stream);
  }
  // False once a kernel, copy or CUB call has failed: the solve stops and reports the error.
  bool ok() const { return failure == nullptr && cudaPeekAtLastError() == cudaSuccess; }

  DeviceAllocator allocator;
  mutable const char* failure = nullptr;
};

}  // namespace

template <typename T>
const char* wls(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& o, T* out,
                int64_t* iterations, double* residual, void* workspace, const DeviceAllocator& scratch,
                void* stream) {
  forget_earlier_error();
  if (B <= 0 || H <= 0 || W <= 0) return nullptr;
  wls::Multigrid<T, CudaExec> mg;
  mg.ex.stream = static_cast<cudaStream_t>(stream);
  mg.ex.allocator = scratch;
  mg.plan(static_cast<char*>(workspace), B, H, W);
  mg.setup(image, T(o.lam), T(o.alpha), T(o.eps));
  if (const char* e = mg.ex.error()) return e;
  mg.solve(image, out, o.rtol, o.maxiter, iterations, residual);
  return mg.ex.error();
}

template <typename T>
const char* wls_setup(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& o,
                      void* workspace, const DeviceAllocator& scratch, void* stream) {
  forget_earlier_error();
  if (B <= 0 || H <= 0 || W <= 0) return nullptr;
  wls::Multigrid<T, CudaExec> mg;
  mg.ex.stream = static_cast<cudaStream_t>(stream);
  mg.ex.allocator = scratch;
  mg.plan(static_cast<char*>(workspace), B, H, W);
  mg.setup(image, T(o.lam), T(o.alpha), T(o.eps));
  return mg.ex.error();
}

template <typename T>
const char* wls_apply(const T* x, int64_t B, int64_t H, int64_t W, void* workspace,
                      bool precondition, T* y, void* stream) {
  forget_earlier_error();
  if (B <= 0 || H <= 0 || W <= 0) return nullptr;
  wls::Multigrid<T, CudaExec> mg;
  mg.ex.stream = static_cast<cudaStream_t>(stream);
  mg.plan(static_cast<char*>(workspace), B, H, W);
  const char* refused = mg.apply_outside(x, y, precondition);
  if (const char* error = last_error()) return error;  // a failed copy of the record is a CUDA error, not a refusal
  return refused;
}

#define XVF_INSTANTIATE(T)                                                                    \
  template const char* wls<T>(const T*, int64_t, int64_t, int64_t, const WlsOptions&, T*,     \
                              int64_t*, double*, void*, const DeviceAllocator&, void*);       \
  template const char* wls_setup<T>(const T*, int64_t, int64_t, int64_t, const WlsOptions&,   \
                                    void*, const DeviceAllocator&, void*);                    \
  template const char* wls_apply<T>(const T*, int64_t, int64_t, int64_t, void*, bool, T*,     \
                                    void*);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace cuda
}  // namespace xvf
