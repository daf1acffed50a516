// Device helpers for the host-side torch glue of the CUDA kernels.
//
// The CPU wheel of torch has no CUDA libraries, yet CI must compile and link
// the CUDA kernels. The glue therefore only reaches for c10::cuda (current
// stream, device guard) when torch itself was built with CUDA
// (XVF_TORCH_CUDA); otherwise CUDA tensors cannot exist and the default
// stream is a placeholder that is never used.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "xvertfast/kernels.h"

#if defined(XVF_TORCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace xvf {

#if defined(XVF_TORCH_CUDA)
// The dispatcher picks the CUDA kernel when any argument is on a GPU, so `t` may still be a
// CPU tensor there (a on the CPU, b on a GPU): no guard then, and the op's own device checks,
// which run next and compare every argument with `t`, refuse the call by name (a CUDAGuard
// of a CPU device would throw first, naming neither the op nor the argument).
struct DeviceScope {
  explicit DeviceScope(const at::Tensor& t)
      : guard(t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt) {}
  void* stream() const { return c10::cuda::getCurrentCUDAStream().stream(); }
  // Memory a kernel takes and gives back within the call, from torch's caching allocator in
  // the stream's order (on failure it throws torch's OutOfMemoryError).
  static cuda::DeviceAllocator allocator() {
    return {[](size_t bytes, void* stream) {
              return c10::cuda::CUDACachingAllocator::raw_alloc_with_stream(bytes, static_cast<cudaStream_t>(stream));
            },
            [](void* p) { c10::cuda::CUDACachingAllocator::raw_delete(p); }};
  }
  c10::cuda::OptionalCUDAGuard guard;
};
#else
// Built against a CPU torch: no CUDA tensor can exist there. If this build is loaded by a
// CUDA torch anyway, a CUDA tensor would reach kernels with no device guard and the wrong
// stream, so the glue refuses it (the Python wrappers fall back before this; direct
// torch.ops calls land here).
struct DeviceScope {
  explicit DeviceScope(const at::Tensor& t) {
    TORCH_CHECK(!t.is_cuda(), "xvertfast: this extension was built against a CPU build of torch, so its CUDA "
                "kernels cannot run under this CUDA torch; rebuild it with `pip install --no-build-isolation .`");
  }
  void* stream() const { return nullptr; }
  static cuda::DeviceAllocator allocator() { return {}; }
};
#endif

// Raises a RuntimeError carrying the kernel's message when it reported one.
inline void check_launch(const char* error, const char* op) {
  TORCH_CHECK(error == nullptr, "xvertfast::", op, ": CUDA error: ", error);
}

}  // namespace xvf
