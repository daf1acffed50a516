// CPU (OpenMP) gradient correlation: forward moments and analytic backward.
//
// Work is split into fixed blocks of rows; each block's partial sums are stored
// and added in block order, so results do not depend on the thread count.
#include <algorithm>
#include <vector>

#include "xvertfast/gradient_correlation.h"
#include "xvertfast/kernels.h"

namespace xvf {
namespace {

constexpr int64_t kRowBlock = 16;

// Shift for the one-pass moments: the Sobel responses at the first valid pixel.
template <typename T>
void sample_shift(const T* a, const T* b, int64_t W, double* shift) {
  T gax, gay, gbx, gby;
  gc::sobel(a + W + 1, W, gax, gay);
  gc::sobel(b + W + 1, W, gbx, gby);
  shift[0] = gax; shift[1] = gbx; shift[2] = gay; shift[3] = gby;
}

}  // namespace

template <typename T>
void gc_forward_cpu(const T* a, const T* b, int64_t B, int64_t H, int64_t W, double eps,
                    T* gc_out, double* stats, int num_threads) {
  const int64_t n = gc::valid_count(H, W);
  const int64_t HW = H * W;
  if (n == 0) {
    for (int64_t s = 0; s < B; ++s) {
      gc_out[s] = T(0);
      std::fill(stats + s * gc::kStats, stats + (s + 1) * gc::kStats, 0.0);
    }
    return;
  }
  const int64_t blocks = ceil_div(H - 2, kRowBlock);
  std::vector<double> shift(B * 4);
  for (int64_t s = 0; s < B; ++s) sample_shift(a + s * HW, b + s * HW, W, &shift[s * 4]);
  std::vector<double> partial(B * blocks * gc::kSums, 0.0);

#pragma omp parallel for num_threads(num_threads) schedule(static)
  for (int64_t t = 0; t < B * blocks; ++t) {
    const int64_t s = t / blocks, blk = t % blocks;
    const int64_t i0 = 1 + blk * kRowBlock, i1 = std::min(i0 + kRowBlock, H - 1);
    const double* sh = &shift[s * 4];
    const double kax = sh[0], kbx = sh[1], kay = sh[2], kby = sh[3];
    double acc[gc::kSums] = {0};
    for (int64_t i = i0; i < i1; ++i) {
      const T* pa = a + s * HW + i * W;
      const T* pb = b + s * HW + i * W;
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0, s9 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7, s8, s9)
      for (int64_t j = 1; j < W - 1; ++j) {
        T gax, gay, gbx, gby;
        gc::sobel(pa + j, W, gax, gay);
        gc::sobel(pb + j, W, gbx, gby);
        const gc::MomentTerms m = gc::moment_terms(gax, gbx, gay, gby, kax, kbx, kay, kby);
        s0 += m.t[0]; s1 += m.t[1]; s2 += m.t[2]; s3 += m.t[3]; s4 += m.t[4];
        s5 += m.t[5]; s6 += m.t[6]; s7 += m.t[7]; s8 += m.t[8]; s9 += m.t[9];
      }
      acc[0] += s0; acc[1] += s1; acc[2] += s2; acc[3] += s3; acc[4] += s4;
      acc[5] += s5; acc[6] += s6; acc[7] += s7; acc[8] += s8; acc[9] += s9;
    }
    std::copy(acc, acc + gc::kSums, &partial[t * gc::kSums]);
  }

  for (int64_t s = 0; s < B; ++s) {
    double sums[gc::kSums] = {0};
    for (int64_t blk = 0; blk < blocks; ++blk)
      for (int k = 0; k < gc::kSums; ++k) sums[k] += partial[(s * blocks + blk) * gc::kSums + k];
    gc_out[s] = T(gc::finalize(sums, &shift[s * 4], double(n), eps, stats + s * gc::kStats));
  }
}

template <typename T>
void gc_backward_cpu(const T* grad_gc, const T* a, const T* b, const double* stats, int64_t B,
                     int64_t H, int64_t W, double eps, T* grad_a, T* grad_b, int num_threads) {
  const int64_t n = gc::valid_count(H, W);
  const int64_t HW = H * W;
  if (n == 0) {
    if (grad_a) std::fill(grad_a, grad_a + B * HW, T(0));
    if (grad_b) std::fill(grad_b, grad_b + B * HW, T(0));
    return;
  }
  std::vector<T> coef(B * gc::kCoef);
  for (int64_t s = 0; s < B; ++s) {
    double c[gc::kCoef];
    gc::backward_coefficients(stats + s * gc::kStats, double(grad_gc[s]), double(n), eps, c);
    for (int k = 0; k < gc::kCoef; ++k) coef[s * gc::kCoef + k] = T(c[k]);
  }
  const int64_t blocks = ceil_div(H, kRowBlock);
  const int64_t ld = W + 2;  // weight rows carry one zero column on each side

#pragma omp parallel num_threads(num_threads)
  {
    // Four weight maps (wa_x, wa_y, wb_x, wb_y) for the block's rows plus a halo row each side.
    std::vector<T> buf(4 * (kRowBlock + 2) * ld);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < B * blocks; ++t) {
      const int64_t s = t / blocks, blk = t % blocks;
      const int64_t r0 = blk * kRowBlock, r1 = std::min(r0 + kRowBlock, H);
      const int64_t rows = r1 - r0 + 2;
      const int64_t plane = rows * ld;
      T* wax = buf.data();
      T* way = wax + plane;
      T* wbx = way + plane;
      T* wby = wbx + plane;
      const T* c = &coef[s * gc::kCoef];
      const T* sa = a + s * HW;
      const T* sb = b + s * HW;
      std::fill(buf.begin(), buf.begin() + 4 * plane, T(0));
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t qi = r0 - 1 + k;
        if (qi < 1 || qi > H - 2) continue;
        const T* pa = sa + qi * W;
        const T* pb = sb + qi * W;
        T* oax = wax + k * ld + 1;
        T* oay = way + k * ld + 1;
        T* obx = wbx + k * ld + 1;
        T* oby = wby + k * ld + 1;
#pragma omp simd
        for (int64_t j = 1; j < W - 1; ++j) {
          T gax, gay, gbx, gby;
          gc::sobel(pa + j, W, gax, gay);
          gc::sobel(pb + j, W, gbx, gby);
          gc::backward_weights(c, gax, gbx, oax[j], obx[j]);
          gc::backward_weights(c + 5, gay, gby, oay[j], oby[j]);
        }
      }
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t k = r - r0 + 1;
        // the same gather for each gradient asked for: grad = Sx^T w_x + Sy^T w_y
        const T* wx[2] = {wax, wbx};
        const T* wy[2] = {way, wby};
        T* out[2] = {grad_a, grad_b};
        for (int t = 0; t < 2; ++t) {
          if (!out[t]) continue;
          const T* ix = wx[t] + k * ld + 1;
          const T* iy = wy[t] + k * ld + 1;
          T* g = out[t] + s * HW + r * W;
#pragma omp simd
          for (int64_t j = 0; j < W; ++j) g[j] = gc::sobel_adjoint(ix + j, iy + j, ld);
        }
      }
    }
  }
}

#define XVF_INSTANTIATE(T)                                                                    \
  template void gc_forward_cpu<T>(const T*, const T*, int64_t, int64_t, int64_t, double, T*, \
                                  double*, int);                                             \
  template void gc_backward_cpu<T>(const T*, const T*, const T*, const double*, int64_t,     \
                                   int64_t, int64_t, double, T*, T*, int);
XVF_INSTANTIATE(float)
XVF_INSTANTIATE(double)
#undef XVF_INSTANTIATE

}  // namespace xvf
