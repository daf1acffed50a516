// Portability macros shared by the C++ (host) and CUDA (device) builds.
//
// Every per-pixel formula in xvertfast lives in this folder as an inline
// function marked XVF_HD, so that the CPU extension (tested in CI) executes
// exactly the arithmetic the CUDA kernels run on a GPU.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define XVF_HD __host__ __device__ __forceinline__
#else
#define XVF_HD inline
#endif

namespace xvf {

// Integer ceil(a / b) for positive b.
XVF_HD int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace xvf
