// Per-pixel math of the guidance layer's conv + max-pool (xvertfast/ops/guided_pool.py).
//
// GL(Y) = MaxPool_s(Conv3x3(Y)) with one input channel: every pooled output is the maximum,
// over its s x s window, of 9-tap dot products with a channel's kernel. Computing it from
// the taps keeps the full-resolution maps (C x H x W, most of a CPU forward pass's memory
// traffic) from ever being written.
#pragma once

#include <cstdint>

#include "common.h"

namespace xvf {
namespace guided_pool {

// The 3x3 neighbourhood of (i, j) of an H x W image, zero outside (conv2d's zero padding),
// in cross-correlation order: taps[3 * u + v] = y(i + u - 1, j + v - 1).
template <typename T>
XVF_HD void load_taps(const T* y, int64_t H, int64_t W, int64_t i, int64_t j, T (&taps)[9]) {
  for (int u = 0; u < 3; ++u)
    for (int v = 0; v < 3; ++v) {
      const int64_t ii = i + u - 1, jj = j + v - 1;
      taps[3 * u + v] = (ii >= 0 && ii < H && jj >= 0 && jj < W) ? y[ii * W + jj] : T(0);
    }
}

// One channel's conv at a pixel: bias + sum_k taps[k] w[k * stride], k in order (the
// kernel's 9 weights stride elements apart: 1 for [C][9], C for the CPU's tap-major copy).
template <typename T>
XVF_HD T dot9(const T (&taps)[9], const T* w, int64_t stride, T bias) {
  T v = bias;
  for (int k = 0; k < 9; ++k) v += taps[k] * w[k * stride];
  return v;
}

// Max-pool's comparison: whether v replaces the running maximum best. The first of equal
// values is kept, and a NaN wins and then stays (as in torch's max_pool2d).
template <typename T>
XVF_HD bool pool_better(T best, T v) {
  return (v > best || v != v) && !(best != best);
}

// Scatters g times the channel's kernel onto the 9 taps of (i, j) (the backward of dot9 with
// respect to the image; taps outside the H x W image are the zero padding, dropped).
template <typename T>
XVF_HD void scatter9(T* gy, int64_t H, int64_t W, int64_t i, int64_t j, const T* w, int64_t stride, T g) {
  for (int u = 0; u < 3; ++u)
    for (int v = 0; v < 3; ++v) {
      const int64_t ii = i + u - 1, jj = j + v - 1;
      if (ii >= 0 && ii < H && jj >= 0 && jj < W) gy[ii * W + jj] += g * w[(3 * u + v) * stride];
    }
}

}  // namespace guided_pool
}  // namespace xvf
