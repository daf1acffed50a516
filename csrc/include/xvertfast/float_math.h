// Branch-free float32 natural logarithm and exponential, for the WLS edge weights.
//
// libm's logf/expf are opaque calls, so a loop that calls them stays scalar: the setup of
// a 1024^2 solve spent ~10 ms in some 5M of them (a log per pixel, a log and an exp per
// edge). Written as integer bit operations, a polynomial and selects, the same formulas
// compile to vector code on the host (GCC needs -fno-trapping-math to turn the selects
// into vector blends: setup.py and CMakeLists.txt pass it) and run as they are on the GPU,
// so both devices evaluate the same polynomials. The coefficients were fitted for this
// file (least squares on Chebyshev nodes, numpy, float64) and are evaluated in float32;
// tests/ops/test_float_math.py bounds the errors against libm (2 ulps; ~1 seen).
#pragma once

#include <cstdint>
#include <cstring>

#include "common.h"

namespace xvf {

XVF_HD int32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(v);
#else
  int32_t i;
  std::memcpy(&i, &v, sizeof i);
  return i;
#endif
}

XVF_HD float bits_float(int32_t i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float v;
  std::memcpy(&v, &i, sizeof v);
  return v;
#endif
}

// ln 2 in two parts: the high part has 9 significant bits, so e * kLn2Hi is exact for any
// float exponent e, and the low part carries the rest.
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;

// log(v) for positive finite v, within ~1 ulp. v = m 2^e with m in [sqrt(1/2), sqrt(2)),
// log(m) = f - f^2/2 + f^3 q(f) for f = m - 1. Subnormal v is scaled up first; v = 0 gives
// about -104 (the log of the smallest subnormal), not -inf: callers guard zero themselves.
XVF_HD float log_float(float v) {
  const bool tiny = v < 1.17549435e-38f;  // below the smallest normal float
  const float vn = tiny ? v * 8388608.0f : v;  // * 2^23
  const int32_t bits = float_bits(vn);
  const float m1 = bits_float((bits & 0x007fffff) | 0x3f800000);  // in [1, 2)
  const bool high = m1 > 1.41421356f;
  const float f = (high ? m1 * 0.5f : m1) - 1.0f;
  const float e = float(((bits >> 23) & 0xff) - 127 + (high ? 1 : 0) - (tiny ? 23 : 0));
  float q = 7.148976e-2f;
  q = q * f - 1.1571679e-1f;
  q = q * f + 1.1662064e-1f;
  q = q * f - 1.2411002e-1f;
  q = q * f + 1.4249863e-1f;
  q = q * f - 1.6668480e-1f;
  q = q * f + 2.0000711e-1f;
  q = q * f - 2.4999990e-1f;
  q = q * f + 3.3333330e-1f;
  const float z = f * f;
  float y = q * z * f;
  y += e * kLn2Lo;
  y -= 0.5f * z;
  return (f + y) + e * kLn2Hi;
}

// exp(v), within ~1 ulp where the result is a normal float. v is clamped to
// [-87, 88]: below, the result is ~1.6e-38 instead of smaller or 0; above, ~1.7e38 instead
// of inf. exp(v) = 2^k exp(r), k = round(v / ln 2), |r| <= ln(2) / 2,
// exp(r) = 1 + r + r^2 q(r).
XVF_HD float exp_float(float v) {
  const float low = v < -87.0f ? -87.0f : v;
  const float x = low > 88.0f ? 88.0f : low;
  // round to nearest by adding and subtracting 1.5 * 2^23 (no rounding instruction needed)
  const float k = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float r = (x - k * kLn2Hi) - k * kLn2Lo;
  float q = 1.9899280e-4f;
  q = q * r + 1.3933673e-3f;
  q = q * r + 8.3332984e-3f;
  q = q * r + 4.1666463e-2f;
  q = q * r + 1.6666667e-1f;
  q = q * r + 5.0000000e-1f;
  const float p = 1.0f + (r + q * r * r);
  return p * bits_float((int32_t(k) + 127) << 23);
}

}  // namespace xvf
