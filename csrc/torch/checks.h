// Argument checks shared by the torch glue of every op (CPU and CUDA alike).
#pragma once

#include <ATen/ATen.h>

namespace xvf {

inline void check_float(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "xvertfast::", op,
              ": ", name, " must be float32 or float64, got ", t.scalar_type());
}

// Accepts [B, H, W] or [B, 1, H, W]; returns the [B, H, W] contiguous view.
inline at::Tensor as_image_batch(const at::Tensor& t, const char* op, const char* name) {
  check_float(t, op, name);
  TORCH_CHECK(t.dim() == 3 || (t.dim() == 4 && t.size(1) == 1), "xvertfast::", op, ": ", name,
              " must be [B, H, W] or [B, 1, H, W], got shape ", t.sizes());
  return (t.dim() == 4 ? t.squeeze(1) : t).contiguous();
}

}  // namespace xvf
