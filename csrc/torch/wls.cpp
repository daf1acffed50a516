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

// The checked, contiguous [B, H, W] image (or x) of every WLS op. A wls_apply workspace is
// a 1-D uint8 tensor on the same device, sized for exactly that batch and dtype (bytes()).
struct Batch {
  at::Tensor t;
  int64_t B, H, W;
  Batch(const at::Tensor& in, const char* op, const char* name) {
    check_float(in, op, name);
    TORCH_CHECK(in.dim() == 3, "xvertfast::", op, ": ", name, " must be [B, H, W], got ", in.sizes());
    t = in.contiguous();
    B = t.size(0), H = t.size(1), W = t.size(2);
  }
  int64_t bytes() const {
    return t.scalar_type() == at::kDouble ? wls_workspace_bytes<double>(B, H, W)
                                          : wls_workspace_bytes<float>(B, H, W);
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> wls_solve_cpu(const at::Tensor& image_in, double lam,
                                                             double alpha, double eps, double rtol,
                                                             int64_t maxiter) {
  Batch im(image_in, "wls", "image");
  at::Tensor out = at::empty_like(im.t);
  at::Tensor iters = at::zeros({im.B}, im.t.options().dtype(at::kLong));
  at::Tensor resid = at::zeros({im.B}, im.t.options().dtype(at::kDouble));
  if (im.t.numel() == 0) return {out, iters, resid};
  const WlsOptions o = options(lam, alpha, eps, rtol, maxiter);
  AT_DISPATCH_FLOATING_TYPES(im.t.scalar_type(), "wls_cpu", [&] {
    wls_cpu<scalar_t>(im.t.data_ptr<scalar_t>(), im.B, im.H, im.W, o, out.data_ptr<scalar_t>(),
                      iters.data_ptr<int64_t>(), resid.data_ptr<double>(), at::get_num_threads());
  });
  return {out, iters, resid};
}

void check_workspace(const at::Tensor& ws, const Batch& x) {
  TORCH_CHECK(ws.scalar_type() == at::kByte && ws.dim() == 1 && ws.is_contiguous() &&
                  ws.device() == x.t.device(),
              "xvertfast::wls_apply: workspace must be the uint8 tensor wls_setup returned, on x's device");
  TORCH_CHECK(ws.numel() == x.bytes(), "xvertfast::wls_apply: workspace of ", ws.numel(),
              " bytes was built for another batch shape or dtype than x ", x.t.sizes(), " ",
              x.t.scalar_type(), " (", x.bytes(), " bytes)");
}

at::Tensor wls_setup_cpu_op(const at::Tensor& image_in, double lam, double alpha, double eps) {
  Batch im(image_in, "wls_setup", "image");
  at::Tensor ws = at::empty({im.bytes()}, im.t.options().dtype(at::kByte));
  if (im.t.numel() == 0) return ws;
  const WlsOptions o = options(lam, alpha, eps, 1e-4, 1);
  AT_DISPATCH_FLOATING_TYPES(im.t.scalar_type(), "wls_setup_cpu", [&] {
    wls_setup_cpu<scalar_t>(im.t.data_ptr<scalar_t>(), im.B, im.H, im.W, o, ws.data_ptr(),
                            at::get_num_threads());
  });
  return ws;
}

at::Tensor wls_apply_cpu_op(const at::Tensor& ws, const at::Tensor& x_in, bool precondition) {
  Batch x(x_in, "wls_apply", "x");
  check_workspace(ws, x);
  at::Tensor y = at::empty_like(x.t);
  if (x.t.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(x.t.scalar_type(), "wls_apply_cpu", [&] {
    const char* refused = wls_apply_cpu<scalar_t>(x.t.data_ptr<scalar_t>(), x.B, x.H, x.W, ws.data_ptr(),
                                                  precondition, y.data_ptr<scalar_t>(), at::get_num_threads());
    TORCH_CHECK(refused == nullptr, "xvertfast::wls_apply: ", refused);
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
  Batch im(image_in, "wls", "image");
  const int64_t B = im.B, H = im.H, W = im.W;
  at::Tensor out = at::empty_like(im.t);
  // the solver fills these on the host (it reads the residuals there anyway)
  at::Tensor iters = at::zeros({B}, at::TensorOptions().dtype(at::kLong));
  at::Tensor resid = at::zeros({B}, at::TensorOptions().dtype(at::kDouble));
  if (im.t.numel() > 0) {
    const WlsOptions o = options(lam, alpha, eps, rtol, maxiter);
    AT_DISPATCH_FLOATING_TYPES(im.t.scalar_type(), "wls_cuda", [&] {
      const int64_t one = wls_workspace_bytes<scalar_t>(1, H, W);
      const int64_t group = std::max<int64_t>(1, std::min<int64_t>(B, kCudaGroupBytes / one));
      at::Tensor ws = at::empty({wls_workspace_bytes<scalar_t>(group, H, W)},
                                im.t.options().dtype(at::kByte));
      for (int64_t b0 = 0; b0 < B; b0 += group) {
        const int64_t n = std::min(group, B - b0);
        check_launch(cuda::wls<scalar_t>(im.t.data_ptr<scalar_t>() + b0 * H * W, n, H, W, o,
                                         out.data_ptr<scalar_t>() + b0 * H * W,
                                         iters.data_ptr<int64_t>() + b0, resid.data_ptr<double>() + b0,
                                         ws.data_ptr(), scope.allocator(), scope.stream()),
                     "wls");
      }
    });
  }
  return {out, iters.to(im.t.device()), resid.to(im.t.device())};
}

at::Tensor wls_setup_cuda_op(const at::Tensor& image_in, double lam, double alpha, double eps) {
  DeviceScope scope(image_in);
  Batch im(image_in, "wls_setup", "image");
  at::Tensor ws = at::empty({im.bytes()}, im.t.options().dtype(at::kByte));
  if (im.t.numel() == 0) return ws;
  const WlsOptions o = options(lam, alpha, eps, 1e-4, 1);
  AT_DISPATCH_FLOATING_TYPES(im.t.scalar_type(), "wls_setup_cuda", [&] {
    check_launch(cuda::wls_setup<scalar_t>(im.t.data_ptr<scalar_t>(), im.B, im.H, im.W, o,
                                           ws.data_ptr(), scope.allocator(), scope.stream()),
                 "wls_setup");
  });
  return ws;
}

at::Tensor wls_apply_cuda_op(const at::Tensor& ws, const at::Tensor& x_in, bool precondition) {
  DeviceScope scope(x_in);
  Batch x(x_in, "wls_apply", "x");
  check_workspace(ws, x);
  at::Tensor y = at::empty_like(x.t);
  if (x.t.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES(x.t.scalar_type(), "wls_apply_cuda", [&] {
    // a refused workspace or a CUDA error, each named by its message
    const char* error = cuda::wls_apply<scalar_t>(x.t.data_ptr<scalar_t>(), x.B, x.H, x.W, ws.data_ptr(),
                                                  precondition, y.data_ptr<scalar_t>(), scope.stream());
    TORCH_CHECK(error == nullptr, "xvertfast::wls_apply: ", error);
  });
  return y;
}
#endif

}  // namespace

TORCH_LIBRARY_IMPL(xvertfast, CPU, m) {
  m.impl("wls", &wls_solve_cpu);
  m.impl("wls_setup", &wls_setup_cpu_op);
  m.impl("wls_apply", &wls_apply_cpu_op);
}

#if defined(XVF_WITH_CUDA)
TORCH_LIBRARY_IMPL(xvertfast, CUDA, m) {
  m.impl("wls", &wls_solve_cuda);
  m.impl("wls_setup", &wls_setup_cuda_op);
  m.impl("wls_apply", &wls_apply_cuda_op);
}
#endif

}  // namespace xvf
