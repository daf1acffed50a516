// Torch glue of the fused guidance-layer conv + max-pool: shapes, dtypes, dispatch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "checks.h"
#include "device.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

struct Args {
  at::Tensor y, weight, bias;  // [B, H, W], [C, 9], [C], contiguous
  int64_t B, H, W, C;
};

Args check_args(const at::Tensor& y_in, const at::Tensor& weight_in, const at::Tensor& bias_in,
                int64_t pool) {
  const char* op = "guided_pool";
  const at::Tensor y = as_image_batch(y_in, op, "y");
  check_float(weight_in, op, "weight");
  check_float(bias_in, op, "bias");
  TORCH_CHECK(weight_in.scalar_type() == y.scalar_type() && bias_in.scalar_type() == y.scalar_type(),
              "xvertfast::guided_pool: y, weight and bias must share a dtype, got ", y.scalar_type(),
              ", ", weight_in.scalar_type(), ", ", bias_in.scalar_type());
  TORCH_CHECK(weight_in.dim() == 4 && weight_in.size(1) == 1 && weight_in.size(2) == 3 &&
                  weight_in.size(3) == 3,
              "xvertfast::guided_pool: weight must be [C, 1, 3, 3], got shape ", weight_in.sizes());
  const int64_t C = weight_in.size(0);
  TORCH_CHECK(bias_in.dim() == 1 && bias_in.size(0) == C,
              "xvertfast::guided_pool: bias must be [C] with C = ", C, ", got shape ", bias_in.sizes());
  TORCH_CHECK(pool >= 1, "xvertfast::guided_pool: pool must be >= 1, got ", pool);
  const int64_t B = y.size(0), H = y.size(1), W = y.size(2);
  TORCH_CHECK(H >= pool && W >= pool, "xvertfast::guided_pool: the image (", H, " x ", W,
              ") is smaller than one pooling window (", pool, ")");
  TORCH_CHECK(weight_in.device() == y.device() && bias_in.device() == y.device(),
              "xvertfast::guided_pool: y, weight and bias must be on one device");
  return Args{y, weight_in.reshape({C, 9}).contiguous(), bias_in.contiguous(), B, H, W, C};
}

at::Tensor guided_pool_cpu_op(const at::Tensor& y_in, const at::Tensor& weight_in,
                              const at::Tensor& bias_in, int64_t pool) {
  const Args a = check_args(y_in, weight_in, bias_in, pool);
  at::Tensor out = at::empty({a.B, a.C, a.H / pool, a.W / pool}, a.y.options());
  AT_DISPATCH_FLOATING_TYPES(a.y.scalar_type(), "guided_pool_cpu", [&] {
    guided_pool_cpu<scalar_t>(a.y.data_ptr<scalar_t>(), a.B, a.H, a.W,
                              a.weight.data_ptr<scalar_t>(), a.bias.data_ptr<scalar_t>(), a.C,
                              pool, out.data_ptr<scalar_t>(), at::get_num_threads());
  });
  return out;
}

#if defined(XVF_WITH_CUDA)
at::Tensor guided_pool_cuda_op(const at::Tensor& y_in, const at::Tensor& weight_in,
                               const at::Tensor& bias_in, int64_t pool) {
  DeviceScope scope(y_in);
  const Args a = check_args(y_in, weight_in, bias_in, pool);
  at::Tensor out = at::empty({a.B, a.C, a.H / pool, a.W / pool}, a.y.options());
  AT_DISPATCH_FLOATING_TYPES(a.y.scalar_type(), "guided_pool_cuda", [&] {
    check_launch(cuda::guided_pool<scalar_t>(a.y.data_ptr<scalar_t>(), a.B, a.H, a.W,
                                             a.weight.data_ptr<scalar_t>(),
                                             a.bias.data_ptr<scalar_t>(), a.C, pool,
                                             out.data_ptr<scalar_t>(), scope.stream()),
                 "guided_pool");
  });
  return out;
}
#endif

}  // namespace

TORCH_LIBRARY_IMPL(xvertfast, CPU, m) { m.impl("guided_pool", &guided_pool_cpu_op); }

#if defined(XVF_WITH_CUDA)
TORCH_LIBRARY_IMPL(xvertfast, CUDA, m) { m.impl("guided_pool", &guided_pool_cuda_op); }
#endif

}  // namespace xvf
