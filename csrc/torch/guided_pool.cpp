// Torch glue of the fused guidance-layer conv + max-pool: shapes, dtypes, dispatch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "checks.h"
#include "device.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

struct Args {
  at::Tensor y, weight, bias;  // [B, H, W], [C, 9], [C], contiguous
  int64_t B, H, W, C;
};

// Checks y, weight and (when defined: the backward has none) bias.
Args check_args(const at::Tensor& y_in, const at::Tensor& weight_in, const at::Tensor& bias_in,
                int64_t pool) {
  const char* op = "guided_pool";
  const at::Tensor y = as_image_batch(y_in, op, "y");
  check_float(weight_in, op, "weight");
  TORCH_CHECK(weight_in.scalar_type() == y.scalar_type() &&
                  (!bias_in.defined() || bias_in.scalar_type() == y.scalar_type()),
              "xvertfast::guided_pool: y, weight and bias must share a dtype, got ", y.scalar_type(),
              ", ", weight_in.scalar_type(), ", ", bias_in.defined() ? bias_in.scalar_type() : y.scalar_type());
  TORCH_CHECK(weight_in.dim() == 4 && weight_in.size(1) == 1 && weight_in.size(2) == 3 &&
                  weight_in.size(3) == 3,
              "xvertfast::guided_pool: weight must be [C, 1, 3, 3], got shape ", weight_in.sizes());
  const int64_t C = weight_in.size(0);
  TORCH_CHECK(!bias_in.defined() || (bias_in.dim() == 1 && bias_in.size(0) == C),
              "xvertfast::guided_pool: bias must be [C] with C = ", C, ", got shape ", bias_in.sizes());
  TORCH_CHECK(pool >= 1, "xvertfast::guided_pool: pool must be >= 1, got ", pool);
  const int64_t B = y.size(0), H = y.size(1), W = y.size(2);
  TORCH_CHECK(H >= pool && W >= pool, "xvertfast::guided_pool: the image (", H, " x ", W,
              ") is smaller than one pooling window (", pool, ")");
  TORCH_CHECK(weight_in.device() == y.device() && (!bias_in.defined() || bias_in.device() == y.device()),
              "xvertfast::guided_pool: y, weight and bias must be on one device");
  return Args{y, weight_in.reshape({C, 9}).contiguous(),
              bias_in.defined() ? bias_in.contiguous() : at::Tensor(), B, H, W, C};
}

std::tuple<at::Tensor, at::Tensor> outputs(const Args& a, int64_t pool) {
  return {at::empty({a.B, a.C, a.H / pool, a.W / pool}, a.y.options()),
          at::empty({a.B, a.C, a.H / pool, a.W / pool}, a.y.options().dtype(at::kInt))};
}

// Checks the backward's extra arguments; returns grad contiguous.
at::Tensor check_backward(const at::Tensor& grad, const at::Tensor& argmax, const Args& a,
                          int64_t pool) {
  const std::vector<int64_t> shape{a.B, a.C, a.H / pool, a.W / pool};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(shape) && grad.scalar_type() == a.y.scalar_type(),
              "xvertfast::guided_pool_backward: grad must be ", at::IntArrayRef(shape), " of ",
              a.y.scalar_type(), ", got ", grad.sizes(), " of ", grad.scalar_type());
  TORCH_CHECK(argmax.sizes() == at::IntArrayRef(shape) && argmax.scalar_type() == at::kInt,
              "xvertfast::guided_pool_backward: argmax must be int32 ", at::IntArrayRef(shape));
  // (the dispatcher picks the CUDA kernel when any argument is on a GPU: a host pointer
  // must never reach it)
  TORCH_CHECK(grad.device() == a.y.device() && argmax.device() == a.y.device(),
              "xvertfast::guided_pool_backward: grad and argmax must be on ", a.y.device(), ", got ",
              grad.device(), " and ", argmax.device());
  return grad.contiguous();
}

std::tuple<at::Tensor, at::Tensor> guided_pool_cpu_op(const at::Tensor& y_in,
                                                      const at::Tensor& weight_in,
                                                      const at::Tensor& bias_in, int64_t pool) {
  const Args a = check_args(y_in, weight_in, bias_in, pool);
  auto [out, argmax] = outputs(a, pool);
  AT_DISPATCH_FLOATING_TYPES(a.y.scalar_type(), "guided_pool_cpu", [&] {
    guided_pool_cpu<scalar_t>(a.y.data_ptr<scalar_t>(), a.B, a.H, a.W,
                              a.weight.data_ptr<scalar_t>(), a.bias.data_ptr<scalar_t>(), a.C,
                              pool, out.data_ptr<scalar_t>(), argmax.data_ptr<int32_t>(),
                              at::get_num_threads());
  });
  return {out, argmax};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> guided_pool_backward_cpu_op(
    const at::Tensor& grad_in, const at::Tensor& y_in, const at::Tensor& weight_in,
    const at::Tensor& argmax_in, int64_t pool, bool need_y) {
  const Args a = check_args(y_in, weight_in, at::Tensor(), pool);
  const at::Tensor grad = check_backward(grad_in, argmax_in, a, pool), argmax = argmax_in.contiguous();
  at::Tensor grad_y = need_y ? at::empty_like(y_in, at::MemoryFormat::Contiguous) : y_in.new_empty({0});
  at::Tensor grad_w = at::empty({a.C, 1, 3, 3}, a.y.options()), grad_b = at::empty({a.C}, a.y.options());
  AT_DISPATCH_FLOATING_TYPES(a.y.scalar_type(), "guided_pool_backward_cpu", [&] {
    guided_pool_backward_cpu<scalar_t>(grad.data_ptr<scalar_t>(), a.y.data_ptr<scalar_t>(), a.B,
                                       a.H, a.W, a.weight.data_ptr<scalar_t>(),
                                       argmax.data_ptr<int32_t>(), a.C, pool,
                                       need_y ? grad_y.data_ptr<scalar_t>() : nullptr,
                                       grad_w.data_ptr<scalar_t>(), grad_b.data_ptr<scalar_t>(),
                                       at::get_num_threads());
  });
  return {grad_y, grad_w, grad_b};
}

#if defined(XVF_WITH_CUDA)
std::tuple<at::Tensor, at::Tensor> guided_pool_cuda_op(const at::Tensor& y_in,
                                                       const at::Tensor& weight_in,
                                                       const at::Tensor& bias_in, int64_t pool) {
  DeviceScope scope(y_in);
  const Args a = check_args(y_in, weight_in, bias_in, pool);
  auto [out, argmax] = outputs(a, pool);
  AT_DISPATCH_FLOATING_TYPES(a.y.scalar_type(), "guided_pool_cuda", [&] {
    check_launch(cuda::guided_pool<scalar_t>(a.y.data_ptr<scalar_t>(), a.B, a.H, a.W,
                                             a.weight.data_ptr<scalar_t>(),
                                             a.bias.data_ptr<scalar_t>(), a.C, pool,
                                             out.data_ptr<scalar_t>(), argmax.data_ptr<int32_t>(),
                                             scope.stream()),
                 "guided_pool");
  });
  return {out, argmax};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> guided_pool_backward_cuda_op(
    const at::Tensor& grad_in, const at::Tensor& y_in, const at::Tensor& weight_in,
    const at::Tensor& argmax_in, int64_t pool, bool need_y) {
  DeviceScope scope(y_in);
  const Args a = check_args(y_in, weight_in, at::Tensor(), pool);
  const at::Tensor grad = check_backward(grad_in, argmax_in, a, pool), argmax = argmax_in.contiguous();
  at::Tensor grad_y = need_y ? at::empty_like(y_in, at::MemoryFormat::Contiguous) : y_in.new_empty({0});
  at::Tensor grad_w = at::empty({a.C, 1, 3, 3}, a.y.options()), grad_b = at::empty({a.C}, a.y.options());
  AT_DISPATCH_FLOATING_TYPES(a.y.scalar_type(), "guided_pool_backward_cuda", [&] {
    check_launch(cuda::guided_pool_backward<scalar_t>(
                     grad.data_ptr<scalar_t>(), a.y.data_ptr<scalar_t>(), a.B, a.H, a.W,
                     a.weight.data_ptr<scalar_t>(), argmax.data_ptr<int32_t>(), a.C, pool,
                     need_y ? grad_y.data_ptr<scalar_t>() : nullptr, grad_w.data_ptr<scalar_t>(),
                     grad_b.data_ptr<scalar_t>(), scope.stream()),
                 "guided_pool_backward");
  });
  return {grad_y, grad_w, grad_b};
}
#endif

}  // namespace

TORCH_LIBRARY_IMPL(xvertfast, CPU, m) {
  m.impl("guided_pool", &guided_pool_cpu_op);
  m.impl("guided_pool_backward", &guided_pool_backward_cpu_op);
}

#if defined(XVF_WITH_CUDA)
TORCH_LIBRARY_IMPL(xvertfast, CUDA, m) {
  m.impl("guided_pool", &guided_pool_cuda_op);
  m.impl("guided_pool_backward", &guided_pool_backward_cuda_op);
}
#endif

}  // namespace xvf
