// Torch glue of the WLS solver ops: shapes, dtypes, dispatch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <torch/library.h>

#include "checks.h"
#include "device.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

WlsOptions options(double lam, double alpha, double eps, double rtol, int64_t maxiter) {
  TORCH_CHECK(lam >= 0 && alpha > 0 && eps > 0, "xvertfast::wls: need lam >= 0, alpha > 0, eps > 0");
  TORCH_CHECK(rtol > 0 && maxiter >= 1, "xvertfast::wls: need rtol > 0 and maxiter >= 1");
  return {lam, alpha, eps, rtol, maxiter};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> wls_solve_cpu(const at::Tensor& image_in, double lam,
                                                             double alpha, double eps, double rtol,
                                                             int64_t maxiter) {
  check_float(image_in, "wls", "image");
  TORCH_CHECK(image_in.dim() == 3, "xvertfast::wls: image must be [B, H, W], got ", image_in.sizes());
  const at::Tensor image = image_in.contiguous();
  const int64_t B = image.size(0), H = image.size(1), W = image.size(2);
  at::Tensor out = at::empty_like(image);
  at::Tensor iters = at::empty({B}, image.options().dtype(at::kLong));
  at::Tensor resid = at::empty({B}, image.options().dtype(at::kDouble));
  if (H == 0 || W == 0) {
    iters.zero_();
    resid.zero_();
    return {out, iters, resid};
  }
  const WlsOptions o = options(lam, alpha, eps, rtol, maxiter);
  AT_DISPATCH_FLOATING_TYPES(image.scalar_type(), "wls_cpu", [&] {
    wls_cpu<scalar_t>(image.data_ptr<scalar_t>(), B, H, W, o, out.data_ptr<scalar_t>(),
                      iters.data_ptr<int64_t>(), resid.data_ptr<double>(), at::get_num_threads());
  });
  return {out, iters, resid};
}

at::Tensor wls_operator_cpu_op(const at::Tensor& image_in, const at::Tensor& x_in, double lam,
                               double alpha, double eps, bool precondition) {
  check_float(image_in, "wls_operator", "image");
  TORCH_CHECK(image_in.dim() == 2 && x_in.sizes() == image_in.sizes() &&
                  x_in.scalar_type() == image_in.scalar_type(),
              "xvertfast::wls_operator: image and x must be [H, W] of one dtype");
  const at::Tensor image = image_in.contiguous(), x = x_in.contiguous();
  at::Tensor y = at::empty_like(x);
  if (x.numel() == 0) return y;
  const WlsOptions o = options(lam, alpha, eps, 1e-4, 1);
  AT_DISPATCH_FLOATING_TYPES(image.scalar_type(), "wls_operator_cpu", [&] {
    wls_operator_cpu<scalar_t>(image.data_ptr<scalar_t>(), image.size(0), image.size(1), o,
                               x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), precondition,
                               at::get_num_threads());
  });
  return y;
}

#if defined(XVF_WITH_CUDA)
// Device memory one call may take for its workspace; larger batches are solved in groups.
constexpr int64_t kCudaGroupBytes = int64_t(2) << 30;

std::tuple<at::Tensor, at::Tensor, at::Tensor> wls_solve_cuda(const at::Tensor& image_in,
                                                              double lam, double alpha, double eps,
                                                              double rtol, int64_t maxiter) {
  DeviceScope scope(image_in);
  check_float(image_in, "wls", "image");
  TORCH_CHECK(image_in.dim() == 3, "xvertfast::wls: image must be [B, H, W], got ", image_in.sizes());
  const at::Tensor image = image_in.contiguous();
  const int64_t B = image.size(0), H = image.size(1), W = image.size(2);
  at::Tensor out = at::empty_like(image);
  // the solver fills these on the host (it reads the residuals there anyway)
  at::Tensor iters = at::zeros({B}, at::TensorOptions().dtype(at::kLong));
  at::Tensor resid = at::zeros({B}, at::TensorOptions().dtype(at::kDouble));
  if (B > 0 && H > 0 && W > 0) {
    const WlsOptions o = options(lam, alpha, eps, rtol, maxiter);
    AT_DISPATCH_FLOATING_TYPES(image.scalar_type(), "wls_cuda", [&] {
      const int64_t one = cuda::wls_workspace_bytes<scalar_t>(1, H, W);
      const int64_t group = std::max<int64_t>(1, std::min<int64_t>(B, kCudaGroupBytes / one));
      at::Tensor ws = at::empty({cuda::wls_workspace_bytes<scalar_t>(group, H, W)},
                                image.options().dtype(at::kByte));
      for (int64_t b0 = 0; b0 < B; b0 += group) {
        const int64_t n = std::min(group, B - b0);
        check_launch(cuda::wls<scalar_t>(image.data_ptr<scalar_t>() + b0 * H * W, n, H, W, o,
                                         out.data_ptr<scalar_t>() + b0 * H * W,
                                         iters.data_ptr<int64_t>() + b0, resid.data_ptr<double>() + b0,
                                         ws.data_ptr(), scope.stream()),
                     "wls");
      }
    });
  }
  return {out, iters.to(image.device()), resid.to(image.device())};
}
#endif

}  // namespace

TORCH_LIBRARY_IMPL(xvertfast, CPU, m) {
  m.impl("wls", &wls_solve_cpu);
  m.impl("wls_operator", &wls_operator_cpu_op);
}

#if defined(XVF_WITH_CUDA)
TORCH_LIBRARY_IMPL(xvertfast, CUDA, m) { m.impl("wls", &wls_solve_cuda); }
#endif

}  // namespace xvf
