// Per-pixel and per-map math of the feature-map entropy (XVertNet Eq. 11-12).
//
// Each map is min-max scaled to [0, 1] and split into K equal bins; the bin of
// a value v is floor((v - lo) * scale) with scale = K / (hi - lo), clamped to
// [0, K-1]. The multiply-by-precomputed-scale form (not a division per pixel)
// is the definition: the pure-PyTorch reference computes the same expression
// in the same dtype, so CPU, CUDA and reference agree bin for bin. A constant
// map (hi == lo) puts every pixel in bin 0 and has entropy 0.
#pragma once

#include <cmath>

#include "common.h"

namespace xvf {
namespace entropy {

// scale = K / (hi - lo) in the input dtype, 0 for a constant map.
template <typename T>
XVF_HD T bin_scale(T lo, T hi, int bins) {
  const T range = hi - lo;
  return range > T(0) ? T(bins) / range : T(0);
}

// The running minimum (maximum) of a map stepped by the value v, which a NaN v leaves as it
// was: a map's range is that of its numbers. The per-value passes of the CPU's and the GPU's
// min/max step with these (the running value, never NaN, comes first: a NaN there would be
// kept); the CPU then merges its threads' partial ranges (never NaN) with std::min/max_element.
template <typename T>
XVF_HD T min_skip_nan(T lo, T v) {
  return v < lo ? v : lo;
}
template <typename T>
XVF_HD T max_skip_nan(T hi, T v) {
  return v > hi ? v : hi;
}

// Bin of value v; NaN falls into bin 0.
template <typename T>
XVF_HD int bin_index(T v, T lo, T scale, int bins) {
  const T t = (v - lo) * scale;
  if (!(t >= T(0))) return 0;
  if (t >= T(bins)) return bins - 1;
  const int i = static_cast<int>(t);  // t >= 0: truncation is floor
  return i < bins ? i : bins - 1;
}

// Contribution of one bin to the Shannon entropy (natural log).
XVF_HD double bin_term(int64_t count, double inv_n) {
  if (count <= 0) return 0.0;
  const double p = double(count) * inv_n;
  return -p * log(p);
}

// Entropies within this relative distance of the maximum count as tied, and a
// tie goes to the lowest channel: maps with the same bin counts in different
// bins then select the same channel whatever the summation order or the log()
// implementation (CPU, CUDA and reference differ in the last bits).
constexpr double kTieRtol = 1e-9;

// Index of the first value within kTieRtol of the maximum of v[0..n).
XVF_HD int64_t first_max(const double* v, int64_t n) {
  double mx = v[0];
  for (int64_t i = 1; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
  const double cutoff = mx - kTieRtol * fabs(mx);
  for (int64_t i = 0; i < n; ++i)
    if (v[i] >= cutoff) return i;
  return 0;
}

// Value written into the selected target map: min-max scaled or raw.
template <typename T>
XVF_HD T scaled_value(T v, T lo, T hi, bool normalize) {
  if (!normalize) return v;
  const T range = hi - lo;
  return range > T(0) ? (v - lo) / range : T(0);
}

}  // namespace entropy
}  // namespace xvf
