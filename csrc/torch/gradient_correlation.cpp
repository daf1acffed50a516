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

// A gradient buffer shaped like its input, or an empty tensor when not needed.
at::Tensor gradient_output(const at::Tensor& like, bool needed) {
  return needed ? at::empty_like(like, at::MemoryFormat::Contiguous) : at::empty({0}, like.options());
}

template <typename T>
T* out_ptr(at::Tensor& t) {
  return t.numel() ? t.data_ptr<T>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& a_in, const at::Tensor& b_in,
                                               double eps) {
  check_pair(a_in, b_in);
  const at::Tensor a = as_image_batch(a_in, "gradient_correlation", "a");
  const at::Tensor b = as_image_batch(b_in, "gradient_correlation", "b");
  const int64_t B = a.size(0), H = a.size(1), W = a.size(2);
  at::Tensor gc = at::empty({B}, a.options());
  at::Tensor stats = at::empty({B, gc::kStats}, a.options().dtype(at::kDouble));
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gradient_correlation_cpu", [&] {
    gc_forward_cpu<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), B, H, W, eps,
                             gc.data_ptr<scalar_t>(), stats.data_ptr<double>(),
                             at::get_num_threads());
  });
  return {gc, stats};
}

std::tuple<at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad, const at::Tensor& a_in,
                                                const at::Tensor& b_in, const at::Tensor& stats,
                                                double eps, bool need_a, bool need_b) {
  check_pair(a_in, b_in);
  const at::Tensor a = as_image_batch(a_in, "gradient_correlation_backward", "a");
  const at::Tensor b = as_image_batch(b_in, "gradient_correlation_backward", "b");
  const int64_t B = a.size(0), H = a.size(1), W = a.size(2);
  const at::Tensor g = grad.to(a.scalar_type()).contiguous();
  const at::Tensor st = stats.to(at::kDouble).contiguous();
  TORCH_CHECK(g.numel() == B && st.numel() == B * gc::kStats,
              "xvertfast::gradient_correlation_backward: grad/stats do not match the batch");
  TORCH_CHECK(g.device() == a.device() && st.device() == a.device(),
              "xvertfast::gradient_correlation_backward: grad and stats must be on ", a.device());
  at::Tensor ga = gradient_output(a_in, need_a);
  at::Tensor gb = gradient_output(b_in, need_b);
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gradient_correlation_backward_cpu", [&] {
    gc_backward_cpu<scalar_t>(g.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(),
                              b.data_ptr<scalar_t>(), st.data_ptr<double>(), B, H, W, eps,
                              out_ptr<scalar_t>(ga), out_ptr<scalar_t>(gb),
                              at::get_num_threads());
  });
  return {ga, gb};
}

#if defined(XVF_WITH_CUDA)
std::tuple<at::Tensor, at::Tensor> forward_cuda(const at::Tensor& a_in, const at::Tensor& b_in,
                                                double eps) {
  check_pair(a_in, b_in);
  DeviceScope scope(a_in);
  const at::Tensor a = as_image_batch(a_in, "gradient_correlation", "a");
  const at::Tensor b = as_image_batch(b_in, "gradient_correlation", "b");
  const int64_t B = a.size(0), H = a.size(1), W = a.size(2);
  at::Tensor gc = at::empty({B}, a.options());
  at::Tensor stats = at::empty({B, gc::kStats}, a.options().dtype(at::kDouble));
  at::Tensor ws = at::empty({cuda::gc_forward_workspace(B, H, W)}, stats.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gradient_correlation_cuda", [&] {
    check_launch(cuda::gc_forward<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), B,
                                            H, W, eps, gc.data_ptr<scalar_t>(),
                                            stats.data_ptr<double>(), ws.data_ptr<double>(),
                                            scope.stream()),
                 "gradient_correlation");
  });
  return {gc, stats};
}

std::tuple<at::Tensor, at::Tensor> backward_cuda(const at::Tensor& grad, const at::Tensor& a_in,
                                                 const at::Tensor& b_in, const at::Tensor& stats,
                                                 double eps, bool need_a, bool need_b) {
  check_pair(a_in, b_in);
  DeviceScope scope(a_in);
  const at::Tensor a = as_image_batch(a_in, "gradient_correlation_backward", "a");
  const at::Tensor b = as_image_batch(b_in, "gradient_correlation_backward", "b");
  const int64_t B = a.size(0), H = a.size(1), W = a.size(2);
  const at::Tensor g = grad.to(a.scalar_type()).contiguous();
  const at::Tensor st = stats.to(at::kDouble).contiguous();
  TORCH_CHECK(g.numel() == B && st.numel() == B * gc::kStats,
              "xvertfast::gradient_correlation_backward: grad/stats do not match the batch");
  TORCH_CHECK(g.device() == a.device() && st.device() == a.device(),
              "xvertfast::gradient_correlation_backward: grad and stats must be on ", a.device());
  at::Tensor ga = gradient_output(a_in, need_a);
  at::Tensor gb = gradient_output(b_in, need_b);
  at::Tensor coef = at::empty({B, gc::kCoef}, st.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "gradient_correlation_backward_cuda", [&] {
    check_launch(cuda::gc_backward<scalar_t>(g.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(),
                                             b.data_ptr<scalar_t>(), st.data_ptr<double>(), B, H,
                                             W, eps, out_ptr<scalar_t>(ga),
                                             out_ptr<scalar_t>(gb), coef.data_ptr<double>(),
                                             scope.stream()),
                 "gradient_correlation_backward");
  });
  return {ga, gb};
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
