// The xvertfast._C extension: op schemas (torch.ops.xvertfast.*) and a small
// pybind11 module that reports how the extension was built.
// Not <torch/extension.h>: its <torch/all.h> (the C++ frontend: nn, optim, data, jit,
// serialization) is used nowhere here and was a third of this file's parse time (bench/RESULTS.md).
// ATen gives the tensors and AT_DISPATCH, <torch/python.h> pybind11 and its tensor casters.
#include <ATen/ATen.h>
#include <torch/python.h>
#include <torch/library.h>
#include <torch/version.h>

#include "xvertfast/float_math.h"
#include "xvertfast/kernels.h"

#ifndef XVF_CUDA_ARCHS
#define XVF_CUDA_ARCHS ""
#endif

TORCH_LIBRARY(xvertfast, m) {
  // GC per sample and the float64 statistics the backward reuses.
  m.def("gradient_correlation(Tensor a, Tensor b, float eps) -> (Tensor, Tensor)");
  // Gradients w.r.t. a and b; one not asked for (need_a/need_b false) is returned empty.
  m.def("gradient_correlation_backward(Tensor grad, Tensor a, Tensor b, Tensor stats, "
        "float eps, bool need_a, bool need_b) -> (Tensor, Tensor)");
  // Entropy (natural log, float64) of every map of x[B, C, H, W].
  m.def("feature_entropy(Tensor x, int bins) -> Tensor");
  // (index[B], map[B, 1, H, W], entropy[B, C]) of the highest-entropy map per sample.
  m.def("select_max_entropy(Tensor x, int bins, bool normalize) -> (Tensor, Tensor, Tensor)");
  // The guidance layer: MaxPool_pool(Conv3x3(y) + bias) of y [B, 1, H, W] with weight
  // [C, 1, 3, 3], bias [C] -> (out [B, C, H / pool, W / pool], argmax: int32 window offset
  // of each maximum, what the backward needs).
  m.def("guided_pool(Tensor y, Tensor weight, Tensor bias, int pool) -> (Tensor, Tensor)");
  // Gradients w.r.t. y (empty unless need_y), weight and bias.
  m.def("guided_pool_backward(Tensor grad, Tensor y, Tensor weight, Tensor argmax, int pool, "
        "bool need_y) -> (Tensor, Tensor, Tensor)");
  // WLS smoothing of each image of [B, H, W]: (solution, iterations[B], relative residual[B]).
  m.def("wls(Tensor image, float lam, float alpha, float eps, float rtol, int maxiter) "
        "-> (Tensor, Tensor, Tensor)");
  // The solver's pieces for a CG driven from Python (the cupy method, tests): the system and
  // multigrid hierarchy of image [B, H, W] as an opaque uint8 workspace, then A x or one
  // V-cycle applied to x [B, H, W] with it. wls_apply writes its scratch arrays (the
  // residuals, the coarse levels' iterates, the pivots) into the workspace, so the schema
  // says the workspace is mutated: functionalization and torch.compile must not reorder or
  // share it (nor may two streams use one workspace at once).
  m.def("wls_setup(Tensor image, float lam, float alpha, float eps) -> Tensor");
  m.def("wls_apply(Tensor(a!) workspace, Tensor x, bool precondition) -> Tensor");
}

namespace {

bool cuda_compiled() {
#if defined(XVF_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#if defined(XVF_WITH_CUDA)
  return xvf::cuda::device_count();
#else
  return 0;
#endif
}

bool torch_cuda_build() {
#if defined(XVF_TORCH_CUDA)
  return true;
#else
  return false;
#endif
}

bool openmp() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

// The WLS setup's float32 log or exp (float_math.h) of every element of a CPU float32
// tensor: a test hook, so the polynomials are checked against libm over whole ranges.
at::Tensor float_math(const at::Tensor& x, const std::string& fn) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat,
              "float_math: a CPU float32 tensor");
  TORCH_CHECK(fn == "log" || fn == "exp", "float_math: fn is 'log' or 'exp', not '", fn, "'");
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty_like(in);
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const bool log = fn == "log";
  for (int64_t k = 0; k < in.numel(); ++k)
    dst[k] = log ? xvf::log_float(src[k]) : xvf::exp_float(src[k]);
  return out;
}

// xvertfast.wls of a CPU batch [B, H, W] solved with the CUDA executor's loop structure on
// the CPU (csrc/cpu/wls_gpu_emulation.cpp): a test hook for the GPU's code paths.
std::tuple<at::Tensor, std::vector<int64_t>, std::vector<double>> wls_gpu_emulation(
    const at::Tensor& image, double lam, double alpha, double eps, double rtol, int64_t maxiter) {
  TORCH_CHECK(image.device().is_cpu() && image.dim() == 3 &&
                  (image.scalar_type() == at::kFloat || image.scalar_type() == at::kDouble),
              "wls_gpu_emulation: a CPU float32 or float64 tensor [B, H, W]");
  const at::Tensor in = image.contiguous();
  const int64_t B = in.size(0), H = in.size(1), W = in.size(2);
  at::Tensor out = at::empty_like(in);
  std::vector<int64_t> iterations(size_t(B), 0);
  std::vector<double> residual(size_t(B), 0.0);
  const xvf::WlsOptions o{lam, alpha, eps, rtol, maxiter};
  if (B > 0 && H > 0 && W > 0) {
    AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "wls_gpu_emulation", [&] {
      xvf::wls_gpu_emulation<scalar_t>(in.data_ptr<scalar_t>(), B, H, W, o, out.data_ptr<scalar_t>(),
                                       iterations.data(), residual.data());
    });
  }
  return {out, iterations, residual};
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "xvertfast compiled kernels; the tensor ops live in torch.ops.xvertfast";
  m.def("cuda_compiled", &cuda_compiled, "CUDA kernels compiled and linked into this build");
  m.def("cuda_archs", [] { return std::string(XVF_CUDA_ARCHS); },
        "GPU architectures the CUDA kernels were compiled for");
  m.def("cuda_device_count", &cuda_device_count,
        "CUDA devices visible to the kernels' runtime (0 without driver or GPU)");
  m.def("torch_cuda_build", &torch_cuda_build,
        "built against a CUDA torch (current-stream aware)");
  m.def("openmp", &openmp, "CPU kernels built with OpenMP");
  m.def("torch_version", [] {
        return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
               std::to_string(TORCH_VERSION_PATCH);
      },
      "the torch release this build was compiled against (major.minor.patch)");
  m.def("wls_release_workspace", &xvf::wls_release_workspace,
        "frees the CPU WLS workspace this thread keeps between solves");
  m.def("wls_cached_workspace_bytes", &xvf::wls_cached_workspace_bytes,
        "bytes of the CPU WLS workspace this thread keeps between solves (0: none)");
  m.def("wls_parallel_labelling", &xvf::wls_parallel_labelling, pybind11::arg("on"),
        "test hook: the CPU WLS labels its plateaus with the GPU's parallel passes; returns the "
        "previous setting");
  m.def("wls_gpu_emulation", &wls_gpu_emulation, pybind11::arg("image"), pybind11::arg("lam"),
        pybind11::arg("alpha"), pybind11::arg("eps"), pybind11::arg("rtol"), pybind11::arg("maxiter"),
        "test hook: the WLS solve with the CUDA executor's loop structure, serially on the CPU");
  m.def("float_math", &float_math, "test hook: the WLS setup's float32 log or exp, elementwise");
}
