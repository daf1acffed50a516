// Torch glue of the feature-entropy ops: shapes, dtypes, dispatch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "checks.h"
#include "device.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

constexpr int64_t kMaxBins = 1 << 16;

at::Tensor check_maps(const at::Tensor& x_in, int64_t bins, const char* op) {
  check_float(x_in, op, "x");
  TORCH_CHECK(x_in.dim() == 4, "xvertfast::", op, ": x must be [B, C, H, W], got shape ",
              x_in.sizes());
  TORCH_CHECK(bins >= 1 && bins <= kMaxBins, "xvertfast::", op, ": bins must be in [1, ",
              kMaxBins, "], got ", bins);
  TORCH_CHECK(x_in.size(2) * x_in.size(3) < (int64_t(1) << 31), "xvertfast::", op,
              ": a map may hold at most 2^31 - 1 pixels");
  return x_in.contiguous();
}

// Returns (entropy [B, C] float64, lo [B, C], hi [B, C]).
std::tuple<at::Tensor, at::Tensor, at::Tensor> entropy_stats_cpu(const at::Tensor& x,
                                                                 int64_t bins) {
  const int64_t B = x.size(0), C = x.size(1), N = x.size(2) * x.size(3);
  at::Tensor ent = at::empty({B, C}, x.options().dtype(at::kDouble));
  at::Tensor lo = at::empty({B, C}, x.options());
  at::Tensor hi = at::empty({B, C}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "feature_entropy_cpu", [&] {
    entropy_cpu<scalar_t>(x.data_ptr<scalar_t>(), B * C, N, int(bins), ent.data_ptr<double>(),
                          lo.data_ptr<scalar_t>(), hi.data_ptr<scalar_t>(),
                          at::get_num_threads());
  });
  return {ent, lo, hi};
}

at::Tensor feature_entropy_cpu(const at::Tensor& x_in, int64_t bins) {
  const at::Tensor x = check_maps(x_in, bins, "feature_entropy");
  return std::get<0>(entropy_stats_cpu(x, bins));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_max_entropy_cpu(const at::Tensor& x_in,
                                                                      int64_t bins,
                                                                      bool normalize) {
  const at::Tensor x = check_maps(x_in, bins, "select_max_entropy");
  TORCH_CHECK(x.size(1) >= 1, "xvertfast::select_max_entropy: x has no channel to select");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto [ent, lo, hi] = entropy_stats_cpu(x, bins);
  at::Tensor index = at::empty({B}, x.options().dtype(at::kLong));
  at::Tensor map = at::empty({B, 1, H, W}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "select_max_entropy_cpu", [&] {
    select_map_cpu<scalar_t>(x.data_ptr<scalar_t>(), ent.data_ptr<double>(),
                             lo.data_ptr<scalar_t>(), hi.data_ptr<scalar_t>(), B, C, H * W,
                             normalize, index.data_ptr<int64_t>(), map.data_ptr<scalar_t>(),
                             at::get_num_threads());
  });
  return {index, map, ent};
}

#if defined(XVF_WITH_CUDA)
std::tuple<at::Tensor, at::Tensor, at::Tensor> entropy_stats_cuda(const at::Tensor& x,
                                                                  int64_t bins,
                                                                  const DeviceScope& scope) {
  const int64_t B = x.size(0), C = x.size(1), N = x.size(2) * x.size(3);
  at::Tensor ent = at::empty({B, C}, x.options().dtype(at::kDouble));
  at::Tensor lo = at::empty({B, C}, x.options());
  at::Tensor hi = at::empty({B, C}, x.options());
  at::Tensor ws = at::empty({cuda::entropy_workspace_bytes(B * C, N, int(bins))},
                            x.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "feature_entropy_cuda", [&] {
    check_launch(cuda::entropy<scalar_t>(x.data_ptr<scalar_t>(), B * C, N, int(bins),
                                         ent.data_ptr<double>(), lo.data_ptr<scalar_t>(),
                                         hi.data_ptr<scalar_t>(), ws.data_ptr(), scope.stream()),
                 "feature_entropy");
  });
  return {ent, lo, hi};
}

at::Tensor feature_entropy_cuda(const at::Tensor& x_in, int64_t bins) {
  DeviceScope scope(x_in);
  const at::Tensor x = check_maps(x_in, bins, "feature_entropy");
  return std::get<0>(entropy_stats_cuda(x, bins, scope));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_max_entropy_cuda(const at::Tensor& x_in,
                                                                       int64_t bins,
                                                                       bool normalize) {
  DeviceScope scope(x_in);
  const at::Tensor x = check_maps(x_in, bins, "select_max_entropy");
  TORCH_CHECK(x.size(1) >= 1, "xvertfast::select_max_entropy: x has no channel to select");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto [ent, lo, hi] = entropy_stats_cuda(x, bins, scope);
  at::Tensor index = at::empty({B}, x.options().dtype(at::kLong));
  at::Tensor map = at::empty({B, 1, H, W}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "select_max_entropy_cuda", [&] {
    check_launch(cuda::select_map<scalar_t>(x.data_ptr<scalar_t>(), ent.data_ptr<double>(),
                                            lo.data_ptr<scalar_t>(), hi.data_ptr<scalar_t>(), B,
                                            C, H * W, normalize, index.data_ptr<int64_t>(),
                                            map.data_ptr<scalar_t>(), scope.stream()),
                 "select_max_entropy");
  });
  return {index, map, ent};
}
#endif

}  // namespace

TORCH_LIBRARY_IMPL(xvertfast, CPU, m) {
  m.impl("feature_entropy", &feature_entropy_cpu);
  m.impl("select_max_entropy", &select_max_entropy_cpu);
}

#if defined(XVF_WITH_CUDA)
TORCH_LIBRARY_IMPL(xvertfast, CUDA, m) {
  m.impl("feature_entropy", &feature_entropy_cuda);
  m.impl("select_max_entropy", &select_max_entropy_cuda);
}
#endif

}  // namespace xvf
