// Torch glue of the gradient-correlation op: shapes, dtypes, dispatch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "checks.h"
#include "device.h"
#include "xvertfast/gradient_correlation.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

void check_pair(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.sizes() == b.sizes(), "xvertfast::gradient_correlation: a and b must have the "
              "same shape, got ", a.sizes(), " and ", b.sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "xvertfast::gradient_correlation: a and b must "
              "have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), "xvertfast::gradient_correlation: a and b must be on the "
              "same device, got ", a.device(), " and ", b.device());
}

// Checked, contiguous [B, H, W] views of the pair and the output buffers of the forward.
struct Forward {
  at::Tensor a, b, gc, stats;
  int64_t B, H, W;
  Forward(const at::Tensor& a_in, const at::Tensor& b_in) {
    check_pair(a_in, b_in);
    a = as_image_batch(a_in, "gradient_correlation", "a");
    b = as_image_batch(b_in, "gradient_correlation", "b");
    B = a.size(0), H = a.size(1), W = a.size(2);
    gc = at::empty({B}, a.options());
    stats = at::empty({B, gc::kStats}, a.options().dtype(at::kDouble));
  }
};

// The same for the backward: upstream gradient, saved statistics, and the gradient
// buffers (an empty tensor for a gradient not asked for).
struct Backward {
  at::Tensor a, b, g, st, ga, gb;
  int64_t B, H, W;
  Backward(const at::Tensor& grad, const at::Tensor& a_in, const at::Tensor& b_in,
           const at::Tensor& stats, bool need_a, bool need_b) {
    check_pair(a_in, b_in);
    a = as_image_batch(a_in, "gradient_correlation_backward", "a");
    b = as_image_batch(b_in, "gradient_correlation_backward", "b");
    B = a.size(0), H = a.size(1), W = a.size(2);
    g = grad.to(a.scalar_type()).contiguous();
    st = stats.to(at::kDouble).contiguous();
    TORCH_CHECK(g.numel() == B && st.numel() == B * gc::kStats,
                "xvertfast::gradient_correlation_backward: grad/stats do not match the batch");
    TORCH_CHECK(g.device() == a.device() && st.device() == a.device(),
                "xvertfast::gradient_correlation_backward: grad and stats must be on ", a.device());
    ga = need_a ? at::empty_like(a_in, at::MemoryFormat::Contiguous) : at::empty({0}, a.options());
    gb = need_b ? at::empty_like(b_in, at::MemoryFormat::Contiguous) : at::empty({0}, b.options());
  }
  template <typename T>
  T* out(at::Tensor& t) {
    return t.numel() ? t.data_ptr<T>() : nullptr;
  }
};

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& a_in, const at::Tensor& b_in,
                                               double eps) {
  Forward f(a_in, b_in);
  AT_DISPATCH_FLOATING_TYPES(f.a.scalar_type(), "gradient_correlation_cpu", [&] {
    gc_forward_cpu<scalar_t>(f.a.data_ptr<scalar_t>(), f.b.data_ptr<scalar_t>(), f.B, f.H, f.W,
                             eps, f.gc.data_ptr<scalar_t>(), f.stats.data_ptr<double>(),
                             at::get_num_threads());
  });
  return {f.gc, f.stats};
}

std::tuple<at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad, const at::Tensor& a_in,
                                                const at::Tensor& b_in, const at::Tensor& stats,
                                                double eps, bool need_a, bool need_b) {
  Backward k(grad, a_in, b_in, stats, need_a, need_b);
  AT_DISPATCH_FLOATING_TYPES(k.a.scalar_type(), "gradient_correlation_backward_cpu", [&] {
    gc_backward_cpu<scalar_t>(k.g.data_ptr<scalar_t>(), k.a.data_ptr<scalar_t>(),
                              k.b.data_ptr<scalar_t>(), k.st.data_ptr<double>(), k.B, k.H, k.W,
                              eps, k.out<scalar_t>(k.ga), k.out<scalar_t>(k.gb),
                              at::get_num_threads());
  });
  return {k.ga, k.gb};
}

#if defined(XVF_WITH_CUDA)
std::tuple<at::Tensor, at::Tensor> forward_cuda(const at::Tensor& a_in, const at::Tensor& b_in,
                                                double eps) {
  DeviceScope scope(a_in);
  Forward f(a_in, b_in);
  at::Tensor ws = at::empty({cuda::gc_forward_workspace(f.B, f.H, f.W)}, f.stats.options());
  AT_DISPATCH_FLOATING_TYPES(f.a.scalar_type(), "gradient_correlation_cuda", [&] {
    check_launch(cuda::gc_forward<scalar_t>(f.a.data_ptr<scalar_t>(), f.b.data_ptr<scalar_t>(),
                                            f.B, f.H, f.W, eps, f.gc.data_ptr<scalar_t>(),
                                            f.stats.data_ptr<double>(), ws.data_ptr<double>(),
                                            scope.stream()),
                 "gradient_correlation");
  });
  return {f.gc, f.stats};
}

std::tuple<at::Tensor, at::Tensor> backward_cuda(const at::Tensor& grad, const at::Tensor& a_in,
                                                 const at::Tensor& b_in, const at::Tensor& stats,
                                                 double eps, bool need_a, bool need_b) {
  DeviceScope scope(a_in);
  Backward k(grad, a_in, b_in, stats, need_a, need_b);
  at::Tensor coef = at::empty({k.B, gc::kCoef}, k.st.options());
  AT_DISPATCH_FLOATING_TYPES(k.a.scalar_type(), "gradient_correlation_backward_cuda", [&] {
    check_launch(cuda::gc_backward<scalar_t>(k.g.data_ptr<scalar_t>(), k.a.data_ptr<scalar_t>(),
                                             k.b.data_ptr<scalar_t>(), k.st.data_ptr<double>(),
                                             k.B, k.H, k.W, eps, k.out<scalar_t>(k.ga),
                                             k.out<scalar_t>(k.gb), coef.data_ptr<double>(),
                                             scope.stream()),
                 "gradient_correlation_backward");
  });
  return {k.ga, k.gb};
}
#endif

}  // namespace

TORCH_LIBRARY_IMPL(xvertfast, CPU, m) {
  m.impl("gradient_correlation", &forward_cpu);
  m.impl("gradient_correlation_backward", &backward_cpu);
}

#if defined(XVF_WITH_CUDA)
TORCH_LIBRARY_IMPL(xvertfast, CUDA, m) {
  m.impl("gradient_correlation", &forward_cuda);
  m.impl("gradient_correlation_backward", &backward_cuda);
}
#endif

}  // namespace xvf
