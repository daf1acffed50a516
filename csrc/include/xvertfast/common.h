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

namespace xvf {

// Integer ceil(a / b) for positive b.
XVF_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace xvf
