// The WLS solver run on the CPU with the CUDA executor's loop structure (wls::GpuLoopTraits):
// a test hook, so that CI, which has no GPU, runs the code paths the GPU takes through
// xvertfast/wls_multigrid.h (separate point and reduction passes, one row per task in the
// row smoother, 64-member plateau pieces, the parallel plateau labelling, copies between
// "device" and host memory). Only the kernel launches of csrc/cuda/wls.cu stay untested.
//
// The loops run serially and backwards (last point, line or column first): what a kernel
// computes must not depend on the order of its threads, and a loop that relied on running
// forwards would give different results here than the CPU solver's.
#include <cstring>
#include <memory>

#include "serial_scan_sort.h"
#include "xvertfast/kernels.h"
#include "xvertfast/wls_multigrid.h"

namespace xvf {
namespace {

struct GpuEmulationExec : wls::GpuLoopTraits<GpuEmulationExec>, SerialScanSort {
  template <class F>
  void grid(int64_t nb, int64_t rows, int64_t cols, F f) const {
    for (int64_t b = nb - 1; b >= 0; --b)
      for (int64_t i = rows - 1; i >= 0; --i)
        for (int64_t j = cols - 1; j >= 0; --j) f(b, i, j);
  }
  template <class F>
  void lines(int64_t nb, int64_t n, F f, int64_t /*work*/ = 0) const {
    for (int64_t k = nb * n - 1; k >= 0; --k) f(k / n, k % n);
  }
  // one column (one GPU thread) at a time, each walking its rows in the sweep's order
  template <class F>
  void sweep(int64_t nb, int64_t rows, int64_t cols, bool reverse, F f) const {
    for (int64_t k = nb * cols - 1; k >= 0; --k)
      for (int64_t ii = 0; ii < rows; ++ii) f(k / cols, reverse ? rows - 1 - ii : ii, k % cols);
  }
  template <class F>
  void each(int64_t n, F f) const {
    for (int64_t k = n - 1; k >= 0; --k) f(k);
  }
  void zero(void* p, size_t bytes) const { std::memset(p, 0, bytes); }
  void upload(void* dst, const void* src, size_t bytes) const { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) const { std::memcpy(dst, src, bytes); }
  bool ok() const { return true; }
};

}  // namespace

template <typename T>
void wls_gpu_emulation(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& o, T* out,
                       int64_t* iterations, double* residual) {
  wls::Multigrid<T, GpuEmulationExec> mg;
  mg.plan(nullptr, B, H, W);
  // the workspace as the GPU gets it from torch's allocator: not zeroed (garbage is fine: setup
  // must write everything it reads); 256-byte aligned like the plan's arrays
  const size_t bytes = mg.bytes + 256;
  std::unique_ptr<char[]> memory(new char[bytes]);
  std::memset(memory.get(), 0x5a, bytes);
  char* base = memory.get() + (256 - reinterpret_cast<uintptr_t>(memory.get()) % 256) % 256;
  mg.plan(base, B, H, W);
  mg.setup(image, T(o.lam), T(o.alpha), T(o.eps));
  mg.solve(image, out, o.rtol, o.maxiter, iterations, residual);
}

template void wls_gpu_emulation<float>(const float*, int64_t, int64_t, int64_t, const WlsOptions&, float*,
                                       int64_t*, double*);
template void wls_gpu_emulation<double>(const double*, int64_t, int64_t, int64_t, const WlsOptions&,
                                        double*, int64_t*, double*);

}  // namespace xvf
