// Portability macros shared by the C++ (host) and CUDA (device) builds.
//
// Every per-pixel formula in xvertfast lives in this folder as an inline
// function marked XVF_HD, so that the CPU extension (tested in CI) executes
// the same formulas, in the same order, as the CUDA kernels. Results agree to
// rounding: nvcc may fuse a*b+c into one FMA where the CPU build rounds twice,
// and reductions are grouped differently; histogram bins match exactly.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define XVF_HD __host__ __device__ __forceinline__
#define XVF_CONSTEXPR __host__ __device__ constexpr
#else
#define XVF_HD inline
#define XVF_CONSTEXPR constexpr
#endif

// Full unrolling of a short loop with a constant trip count (its indices become constants).
#if defined(__CUDACC__)
#define XVF_UNROLL _Pragma("unroll")
#elif defined(__clang__)
#define XVF_UNROLL _Pragma("clang loop unroll(full)")
#elif defined(__GNUC__)
#define XVF_UNROLL _Pragma("GCC unroll 16")
#else
#define XVF_UNROLL
#endif

// A loop whose iterations are independent, to be vectorised without alias checks (host
// builds with OpenMP; elsewhere the loop is compiled as it is).
#if defined(_OPENMP) && !defined(__CUDA_ARCH__)
#define XVF_SIMD _Pragma("omp simd")
#else
#define XVF_SIMD
#endif

// Compute-bound host loops, compiled three times: for x86-64-v4 (AVX-512), x86-64-v3
// (AVX2 + FMA) and the baseline the wheel targets; the loader picks the best the CPU has
// (GCC function multiversioning, an ifunc on glibc). Put it on a non-template function
// whose body inlines the template doing the work. Elsewhere (other compilers, GCC < 12, which
// this project has not built with) the function is compiled once, for the build's target.
// No version fuses a*b+c into one FMA (-ffp-contract=off, as nvcc's --fmad=false), so all
// three round as the GPU does and give the same values.
#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__) && !defined(__CUDACC__)
#define XVF_TARGET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define XVF_INLINE inline __attribute__((always_inline))
#else
#define XVF_TARGET_CLONES
#define XVF_INLINE inline
#endif

namespace xvf {

// Integer ceil(a / b) for positive b.
XVF_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Atomic operations on int32 memory that threads of one loop share (the parallel plateau
// labelling's union-find): CUDA's atomics on the device, GCC/Clang builtins on the host.
// Relaxed ordering: the union-find needs only each operation to be atomic.
XVF_HD int32_t atomic_load(const int32_t* p) {
#if defined(__CUDA_ARCH__)
  return *static_cast<const volatile int32_t*>(p);
#else
  return __atomic_load_n(p, __ATOMIC_RELAXED);
#endif
}

// *p = min(*p, v); returns the old value.
XVF_HD int32_t atomic_min(int32_t* p, int32_t v) {
#if defined(__CUDA_ARCH__)
  return atomicMin(p, v);
#else
  int32_t old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
#endif
}

}  // namespace xvf
