// Torch-free entry points of the compiled kernels.
//
// The CPU functions are plain C++ with OpenMP; the CUDA launchers take raw
// device pointers and a cudaStream_t passed as void*, so that neither side
// needs a torch or CUDA header here. All arrays are contiguous, row-major.
// Temporary device memory is allocated by the caller (through torch's caching
// allocator) and passed in: as a workspace where its size is known before the call, else
// as an allocator (DeviceAllocator: the WLS setup's CUB scan and sort storage).
#pragma once

#include <cstddef>
#include <cstdint>

namespace xvf {

// ---- gradient correlation -------------------------------------------------
// a, b: [B, H, W]. Writes gc[B] (in T) and stats[B, 10] (double).
template <typename T>
void gc_forward_cpu(const T* a, const T* b, int64_t B, int64_t H, int64_t W, double eps,
                    T* gc, double* stats, int num_threads);

// grad_gc[B], stats[B, 10] -> grad_a, grad_b [B, H, W] (every element written);
// either output may be nullptr when that gradient is not needed.
template <typename T>
void gc_backward_cpu(const T* grad_gc, const T* a, const T* b, const double* stats,
                     int64_t B, int64_t H, int64_t W, double eps, T* grad_a, T* grad_b,
                     int num_threads);

// ---- feature entropy ------------------------------------------------------
// x: [M, N] (M maps of N pixels). Writes entropy[M] (double, natural log),
// lo[M], hi[M] (per-map min and max, in T).
template <typename T>
void entropy_cpu(const T* x, int64_t M, int64_t N, int bins, double* entropy, T* lo, T* hi,
                 int num_threads);

// x: [B, C, N], entropy/lo/hi: [B, C]. Picks per sample the first channel of
// highest entropy, writes index[B] and the (optionally min-max scaled) map [B, N].
template <typename T>
void select_map_cpu(const T* x, const double* entropy, const T* lo, const T* hi, int64_t B,
                    int64_t C, int64_t N, bool normalize, int64_t* index, T* map,
                    int num_threads);

// ---- guidance layer: max-pool of a one-channel 3x3 conv ---------------------
// y: [B, H, W]; weight: [C, 9] (3x3 kernels, cross-correlation); bias: [C]. Writes
// out[B, C, H / s, W / s] = MaxPool_s(Conv3x3(y) + bias), zero padding, floor pooling, and
// (unless null) argmax[B, C, H / s, W / s]: the offset di * s + dj of each window's maximum.
template <typename T>
void guided_pool_cpu(const T* y, int64_t B, int64_t H, int64_t W, const T* weight, const T* bias,
                     int64_t C, int64_t s, T* out, int32_t* argmax, int num_threads);

// Its backward: grad[B, C, H / s, W / s] -> grad_y[B, H, W] (skipped when null),
// grad_weight[C, 9], grad_bias[C]; deterministic.
template <typename T>
void guided_pool_backward_cpu(const T* grad, const T* y, int64_t B, int64_t H, int64_t W,
                              const T* weight, const int32_t* argmax, int64_t C, int64_t s,
                              T* grad_y, T* grad_weight, T* grad_bias, int num_threads);

// ---- WLS smoothing ---------------------------------------------------------
struct WlsOptions {
  double lam = 0.8, alpha = 1.2, eps = 1e-4;  // system (DESIGN.md section 1)
  double rtol = 1e-4;                         // on the relative residual ||b - A x|| / ||b||
  int64_t maxiter = 100;
};

// Solves the WLS system of each image of image[B, H, W] (values >= 0) into
// out[B, H, W]; iterations[B] and residual[B] (true relative residual).
template <typename T>
void wls_cpu(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options, T* out,
             int64_t* iterations, double* residual, int num_threads);

// wls_cpu keeps the calling thread's last workspace for its next solve of the same shape
// (up to XVF_WLS_CACHE_MB, default 256): this frees it, and this reports its size (0: none).
void wls_release_workspace();
int64_t wls_cached_workspace_bytes();
// Test hook: the CPU solver labels the plateaus with the GPU's parallel passes
// (build_aggregates_parallel) instead of its own host bands; returns the previous setting.
bool wls_parallel_labelling(bool on);
// Test hook: wls_cpu's solve with the CUDA executor's loop structure, serially on the CPU
// (csrc/cpu/wls_gpu_emulation.cpp), one thread.
template <typename T>
void wls_gpu_emulation(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options,
                       T* out, int64_t* iterations, double* residual);

// The solver's pieces for a CG driven from outside (xvertfast/ops/wls_pcg.py): the
// hierarchy of image[B, H, W] is built into a workspace of wls_workspace_bytes<T>(B, H, W)
// bytes (the same layout on every device), then y = A x (precondition = false) or
// y = one V-cycle applied to x (precondition = true), x and y [B, H, W].
template <typename T>
int64_t wls_workspace_bytes(int64_t B, int64_t H, int64_t W);

template <typename T>
void wls_setup_cpu(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options,
                   void* workspace, int num_threads);

// Returns nullptr, or why the workspace is not the one wls_setup filled for x's shape and type.
template <typename T>
const char* wls_apply_cpu(const T* x, int64_t B, int64_t H, int64_t W, void* workspace,
                          bool precondition, T* y, int num_threads);

// ---- CUDA launchers (defined only when built with nvcc) -------------------
// Each returns nullptr on success or a static error string.
namespace cuda {

// Device memory a launcher takes and gives back within the call, in the stream's order, where
// its size is known only then. The torch glue passes torch's caching allocator: memory torch
// can reuse (a separate pool could run out while torch's cache holds free blocks), and a
// failed allocation is torch's out-of-memory error (allocate throws it). Left empty, the
// launcher takes cudaMallocAsync's (the standalone CMake build).
struct DeviceAllocator {
  void* (*allocate)(size_t bytes, void* stream) = nullptr;
  void (*release)(void* p) = nullptr;
};

// Size in doubles of the scratch buffer gc_forward needs.
int64_t gc_forward_workspace(int64_t B, int64_t H, int64_t W);

template <typename T>
const char* gc_forward(const T* a, const T* b, int64_t B, int64_t H, int64_t W, double eps,
                       T* gc, double* stats, double* workspace, void* stream);

template <typename T>
const char* gc_backward(const T* grad_gc, const T* a, const T* b, const double* stats,
                        int64_t B, int64_t H, int64_t W, double eps, T* grad_a, T* grad_b,
                        double* coef_workspace, void* stream);

// Size in bytes of the scratch buffer entropy needs.
int64_t entropy_workspace_bytes(int64_t M, int64_t N, int bins);

template <typename T>
const char* entropy(const T* x, int64_t M, int64_t N, int bins, double* entropy, T* lo, T* hi,
                    void* workspace, void* stream);

template <typename T>
const char* select_map(const T* x, const double* entropy, const T* lo, const T* hi, int64_t B,
                       int64_t C, int64_t N, bool normalize, int64_t* index, T* map,
                       void* stream);

// Solves the WLS system of each image of image[B, H, W] (device) into out[B, H, W]
// (device), all images together, in a workspace of wls_workspace_bytes<T>(B, H, W)
// bytes; iterations[B] and residual[B] are host arrays.
// The stream is synchronised once per CG iteration (convergence test).
template <typename T>
const char* wls(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options, T* out,
                int64_t* iterations, double* residual, void* workspace, const DeviceAllocator& scratch,
                void* stream);

// The GPU versions of wls_setup_cpu and wls_apply_cpu (device pointers).
template <typename T>
const char* wls_setup(const T* image, int64_t B, int64_t H, int64_t W, const WlsOptions& options,
                      void* workspace, const DeviceAllocator& scratch, void* stream);

template <typename T>
const char* wls_apply(const T* x, int64_t B, int64_t H, int64_t W, void* workspace,
                      bool precondition, T* y, void* stream);

// The GPU versions of guided_pool_cpu and guided_pool_backward_cpu (device pointers;
// weight [C, 9]); grad_y may be null there too.
template <typename T>
const char* guided_pool(const T* y, int64_t B, int64_t H, int64_t W, const T* weight,
                        const T* bias, int64_t C, int64_t s, T* out, int32_t* argmax,
                        void* stream);

template <typename T>
const char* guided_pool_backward(const T* grad, const T* y, int64_t B, int64_t H, int64_t W,
                                 const T* weight, const int32_t* argmax, int64_t C, int64_t s,
                                 T* grad_y, T* grad_weight, T* grad_bias, void* stream);

// Number of visible CUDA devices (0 when there is no driver or no device).
int device_count();

}  // namespace cuda
}  // namespace xvf
