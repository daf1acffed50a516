// CPU (OpenMP) executor of the WLS multigrid-PCG solver.
//
// The solver itself (setup, V-cycle, batched CG) lives in
// xvertfast/wls_multigrid.h and is shared with csrc/cuda/wls.cu; this file
// supplies its loops. The CPU solves a batch in groups of up to 1M pixels (large
// images one at a time) with all threads, reusing one workspace for every group.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif
#include <vector>

#include "serial_scan_sort.h"
#include "xvertfast/kernels.h"
#include "xvertfast/wls_multigrid.h"

namespace xvf {
namespace {
// Subnormal floats appear where the smoother's corrections die out and make x86
// arithmetic many times slower; they carry nothing a 1e-4 solve needs. For the
// duration of a solve, every OpenMP thread flushes them to zero (FTZ/DAZ); the
// previous modes are restored afterwards (the threads are shared with torch).
class FlushDenormals {
 public:
  explicit FlushDenormals(int nt) : nt_(nt), saved_(nt, 0u) {
#if defined(__SSE__) && defined(_OPENMP)
#pragma omp parallel num_threads(nt_)
    {
      const int t = omp_get_thread_num();
      saved_[t] = _mm_getcsr();
      _mm_setcsr(saved_[t] | 0x8040u);
    }
#endif
  }
  ~FlushDenormals() {
#if defined(__SSE__) && defined(_OPENMP)
#pragma omp parallel num_threads(nt_)
    _mm_setcsr(saved_[omp_get_thread_num()]);
#endif
  }

 private:
  int nt_;
  std::vector<unsigned> saved_;
};

#if defined(_OPENMP)
int thread_num() { return omp_get_thread_num(); }
int num_threads() { return omp_get_num_threads(); }
#else
int thread_num() { return 0; }
int num_threads() { return 1; }
#endif

// The loops of xvertfast/wls_multigrid.h on OpenMP threads. Small grids run on
// one thread: fork/join would cost more than the work.
struct CpuExec : SerialScanSort {
  static constexpr bool kHostMemory = true;
  static constexpr bool kFuseRows = true;  // a row's point work and its reduction in one task
  static constexpr int kRowGroup = 8;  // rows a task of smooth_rows interleaves
  static constexpr int64_t kPlateauChunk = 1024;  // members per task of the plateau sums
  // The plateaus are labelled in host bands (build_aggregates); the passes written for the
  // GPU run here only in tests (wls_parallel_labelling), with a serial scan and sort.
  int nt = 1;
  static bool big(int64_t points) { return points >= 16384; }

  template <class F>
  void grid(int64_t nb, int64_t rows, int64_t cols, F f) const {
    grid_rows(nb, rows, cols, f, [](int64_t, int64_t) {});
  }

  // grid(), with row_end(b, i) after each row's points, in the same task (kFuseRows).
  template <class F, class G>
  void grid_rows(int64_t nb, int64_t rows, int64_t cols, F f, G row_end) const {
    const int64_t n = nb * rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (big(n * cols))
    for (int64_t k = 0; k < n; ++k) {
      const int64_t b = k / rows, i = k - b * rows;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) f(b, i, j);
      row_end(b, i);
    }
  }

  template <class F>
  void lines(int64_t nb, int64_t n, F f, int64_t work = 64) const {
#pragma omp parallel for num_threads(nt) schedule(static) if (big(nb * n * work))
    for (int64_t k = 0; k < nb * n; ++k) f(k / n, k % n);
  }

  // Each thread takes a band of columns and walks it row by row (cache-friendly).
  template <class F>
  void sweep(int64_t nb, int64_t rows, int64_t cols, bool reverse, F f) const {
    const int tn = big(rows * cols) ? nt : 1;
    const int64_t chunk = ceil_div(cols, tn);
#pragma omp parallel for num_threads(tn) schedule(static) collapse(2)
    for (int64_t b = 0; b < nb; ++b)
      for (int t = 0; t < tn; ++t) {
        const int64_t c0 = t * chunk, c1 = std::min(cols, c0 + chunk);
        for (int64_t ii = 0; ii < rows; ++ii) {
          const int64_t i = reverse ? rows - 1 - ii : ii;
#pragma omp simd
          for (int64_t c = c0; c < c1; ++c) f(b, i, c);
        }
      }
  }

  // f(t) for t < n, a thread each: host work split in bands (the plateau labelling).
  int host_threads() const { return nt; }
  template <class F>
  void host_bands(int n, F f) const {
#pragma omp parallel for num_threads(n) schedule(static, 1) if (n > 1)
    for (int t = 0; t < n; ++t) f(t);
  }

  // Each thread takes a band of fa's columns and the columns of fb whose fa neighbours lie
  // in it, and walks them row by row, fb one row behind fa; the few fb columns next to a
  // band boundary read two threads' fa columns and run once all of fa is done.
  template <class FA, class FB>
  void sweep_pair(int64_t nb, int64_t rows, int64_t ca, int64_t cb, bool reverse, int lo, int hi,
                  FA fa, FB fb) const {
    const int tn = big(rows * (ca + cb)) ? int(std::min<int64_t>(nt, ca)) : 1;
    const int64_t chunk = ceil_div(ca, tn);
    // fb columns [own_lo(t), own_hi(t)) go with band t; own_lo(t) >= own_hi(t - 1)
    auto own_lo = [=](int t) { return t == 0 ? int64_t(0) : std::clamp<int64_t>(t * chunk - lo, 0, cb); };
    auto own_hi = [=](int t) {
      const int64_t end = t == tn - 1 ? cb : std::min(ca, (t + 1) * chunk) - hi;
      return std::clamp<int64_t>(end, own_lo(t), cb);
    };
    auto row = [=](int64_t ii) { return reverse ? rows - 1 - ii : ii; };
#pragma omp parallel for num_threads(tn) schedule(static) collapse(2)
    for (int64_t b = 0; b < nb; ++b)
      for (int t = 0; t < tn; ++t) {
        const int64_t c0 = t * chunk, c1 = std::min(ca, c0 + chunk);
        const int64_t d0 = own_lo(t), d1 = own_hi(t);
        for (int64_t ii = 0; ii <= rows; ++ii) {
          if (ii < rows) {
            const int64_t i = row(ii);
#pragma omp simd
            for (int64_t c = c0; c < c1; ++c) fa(b, i, c);
          }
          if (ii > 0) {
            const int64_t i = row(ii - 1);
#pragma omp simd
            for (int64_t c = d0; c < d1; ++c) fb(b, i, c);
          }
        }
      }
    if (tn == 1) return;
    // the fb columns between the bands' own ones
    for (int64_t b = 0; b < nb; ++b)
      for (int t = 1; t < tn; ++t)
        for (int64_t c = own_hi(t - 1); c < own_lo(t); ++c)
          for (int64_t ii = 0; ii < rows; ++ii) fb(b, row(ii), c);
  }

  // Each thread walks its own run of bands, second(k - 1) right after first(k) while both
  // bands are still in cache (one trip through memory for the two colours); the second
  // colour at either end of a run reads a neighbouring thread's bands and waits for it.
  // The order of the updates, and so the result, does not depend on the thread count.
  template <class F1, class F2>
  void zebra(int64_t nb, int64_t n, F1 first, F2 second, int64_t work) const {
    const int64_t total = nb * n;
    const int tn = big(total * work) ? int(std::min<int64_t>(nt, total)) : 1;
#pragma omp parallel num_threads(tn)
    {
      const int t = thread_num(), nth = num_threads();
      const int64_t k0 = total * t / nth, k1 = total * (t + 1) / nth;
      for (int64_t k = k0; k < k1; ++k) {
        first(k / n, k % n);
        if (k - 1 > k0) second((k - 1) / n, (k - 1) % n);
      }
#pragma omp barrier
      if (k1 > k0) second(k0 / n, k0 % n);
      if (k1 - 1 > k0) second((k1 - 1) / n, (k1 - 1) % n);
    }
  }

  template <class F>
  void each(int64_t n, F f) const {
    for (int64_t k = 0; k < n; ++k) f(k);
  }

  void zero(void* p, size_t bytes) const {
    char* c = static_cast<char*>(p);
    const int64_t chunk = 1 << 20, n = ceil_div(int64_t(bytes), chunk);
#pragma omp parallel for num_threads(nt) schedule(static) if (n > 1)
    for (int64_t k = 0; k < n; ++k)
      std::memset(c + k * chunk, 0, size_t(std::min<int64_t>(chunk, int64_t(bytes) - k * chunk)));
  }
  void upload(void* dst, const void* src, size_t bytes) const { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) const { std::memcpy(dst, src, bytes); }
  bool ok() const { return true; }
};

// Images solved together: small ones share the threads' loops (and exercise the batched
// code path the GPU runs); large ones go one at a time, with one workspace for all.
constexpr int64_t kGroupPixels = int64_t(1) << 20;

// wls_parallel_labelling's setting, read when a solver is set up.
std::atomic<bool> g_parallel_labelling{false};

// The solver's workspace, on 2 MiB boundaries and (on Linux) marked for transparent huge
// pages: the smoothers walk ~10 arrays of several MiB at once, column sweeps a row apart,
// and with 4 KiB pages most of those steps miss the TLB; first touch also faults 512x less
// (measured: 1024^2 solves ~10% faster). Bytes [small_first, small_end) keep small pages:
// the plateau arrays, planned for the worst case, of which an image touches a fraction; so
// does the last, partial 2 MiB (a huge page there would be mostly unused memory).
class Workspace {
 public:
  Workspace(size_t bytes, size_t small_first, size_t small_end) : size_(std::max<size_t>(bytes, 1)) {
    if (posix_memalign(&mem_, kHuge, size_) != 0) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
    // hints only: without huge pages everything still works
    const size_t whole = size_ / kHuge * kHuge;
    if (whole > 0) madvise(mem_, whole, MADV_HUGEPAGE);
    const size_t a = round_up(small_first, kPage), b = std::min(small_end, whole) / kPage * kPage;
    if (b > a) madvise(get() + a, b - a, MADV_NOHUGEPAGE);
#else
    (void)small_first;
    (void)small_end;
#endif
  }
  ~Workspace() { std::free(mem_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  char* get() const { return static_cast<char*>(mem_); }

 private:
  static constexpr size_t kHuge = size_t(2) << 20, kPage = 4096;
  static size_t round_up(size_t n, size_t to) { return (std::max<size_t>(n, 1) + to - 1) / to * to; }
  size_t size_;
  void* mem_ = nullptr;
};

// The calling thread's last workspace, kept for its next solve of the same layout: a batch
// job solves thousands of equal-sized images, and fresh memory costs a page fault and the
// kernel's zeroing of every page first touched (measured: ~4% of a 1024^2 solve). Only up
// to XVF_WLS_CACHE_MB (default kDefaultCacheMB; 0 turns the cache off) is kept;
// wls_release_workspace() frees it.
constexpr int64_t kDefaultCacheMB = 256;
struct CachedWorkspace {
  std::unique_ptr<Workspace> memory;
  size_t bytes = 0, small_first = 0, small_end = 0;
};
thread_local CachedWorkspace t_cached;

size_t cache_limit() {
  const char* v = std::getenv("XVF_WLS_CACHE_MB");
  const int64_t mb = v && *v ? std::atoll(v) : kDefaultCacheMB;
  return size_t(std::max<int64_t>(mb, 0)) << 20;
}

// A workspace for one wls_cpu call: the cached one if its layout matches, else a fresh one
// (the cached one freed first, so the two never coexist); handed to the cache at the end.
class WorkspaceLease {
 public:
  WorkspaceLease(size_t bytes, size_t small_first, size_t small_end)
      : layout_{nullptr, bytes, small_first, small_end} {
    CachedWorkspace& c = t_cached;
    if (c.memory && c.bytes == bytes && c.small_first == small_first && c.small_end == small_end) {
      layout_.memory = std::move(c.memory);
    } else {
      c = CachedWorkspace{};
      layout_.memory = std::make_unique<Workspace>(bytes, small_first, small_end);
    }
  }
  ~WorkspaceLease() {
    if (layout_.bytes <= cache_limit()) t_cached = std::move(layout_);
  }
  WorkspaceLease(const WorkspaceLease&) = delete;
  WorkspaceLease& operator=(const WorkspaceLease&) = delete;
  char* get() const { return layout_.memory->get(); }

 private:
  CachedWorkspace layout_;
};

template <typename T>
struct CpuSolver {
  wls::Multigrid<T, CpuExec> mg;
  std::unique_ptr<WorkspaceLease> memory;

  char* base = nullptr;

  CpuSolver(int64_t nb, int64_t H, int64_t W, int nt) {
    mg.ex.nt = nt;
    mg.parallel_labelling = g_parallel_labelling.load();
    mg.plan(nullptr, nb, H, W);
    memory = std::make_unique<WorkspaceLease>(mg.bytes, mg.agg_first_byte, mg.agg_end_byte);
    base = memory->get();
    mg.plan(base, nb, H, W);
  }
};

}  // namespace

template <typename T>
void wls_cpu(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options, T* out,
             int64_t* iterations, double* residual, int num_threads) {
  FlushDenormals ftz(num_threads);  // once for the batch: it costs two parallel regions
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(B, kGroupPixels / (H * W)));
  CpuSolver<T> S(group, H, W, num_threads);
  for (int64_t b0 = 0; b0 < B; b0 += group) {
    const int64_t n = std::min(group, B - b0);
    if (n != S.mg.nb) S.mg.plan(S.base, n, H, W);  // the last, smaller group fits the memory
    S.mg.setup(image + b0 * H * W, T(options.lam), T(options.alpha), T(options.eps));
    S.mg.solve(image + b0 * H * W, out + b0 * H * W, options.rtol, options.maxiter,
               iterations + b0, residual + b0);
  }
}

void wls_release_workspace() { t_cached = CachedWorkspace{}; }

bool wls_parallel_labelling(bool on) { return g_parallel_labelling.exchange(on); }

int64_t wls_cached_workspace_bytes() { return t_cached.memory ? int64_t(t_cached.bytes) : 0; }

template <typename T>
int64_t wls_workspace_bytes(int64_t B, int64_t H, int64_t W) {
  return wls::workspace_bytes<T>(B, H, W);
}

template <typename T>
void wls_setup_cpu(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& o,
                   void* workspace, int num_threads) {
  FlushDenormals ftz(num_threads);
  wls::Multigrid<T, CpuExec> mg;
  mg.ex.nt = num_threads;
  mg.parallel_labelling = g_parallel_labelling.load();
  mg.plan(static_cast<char*>(workspace), B, H, W);
  mg.setup(image, T(o.lam), T(o.alpha), T(o.eps));
}

template <typename T>
const char* wls_apply_cpu(const T* x, int64_t B, int64_t H, int64_t W, void* workspace, bool precondition,
                          T* y, int num_threads) {
  FlushDenormals ftz(num_threads);
  wls::Multigrid<T, CpuExec> mg;
  mg.ex.nt = num_threads;
  mg.plan(static_cast<char*>(workspace), B, H, W);
  return mg.apply_outside(x, y, precondition);
}

#define XVF_INSTANTIATE(T)                                                                       \
  template void wls_cpu<T>(const T*, int64_t, int64_t, int64_t, const WlsOptions&, T*, int64_t*, \
                           double*, int);                                                        \
  template int64_t wls_workspace_bytes<T>(int64_t, int64_t, int64_t);                            \
  template void wls_setup_cpu<T>(const T*, int64_t, int64_t, int64_t, const WlsOptions&, void*,  \
                                 int);                                                           \
  template const char* wls_apply_cpu<T>(const T*, int64_t, int64_t, int64_t, void*, bool, T*, int);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace xvf
