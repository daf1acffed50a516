// Serial versions of the two device-wide primitives the parallel plateau labelling needs
// (CUB's scan and stable radix sort on the GPU), for the CPU executors that run it in tests.
#pragma once

#include <cstdint>
#include <vector>

namespace xvf {

// out[k] = in[0] + ... + in[k - 1] for k <= n.
inline void serial_exclusive_scan(const int32_t* in, int32_t* out, int64_t n) {
  out[0] = 0;
  for (int64_t k = 0; k < n; ++k) out[k + 1] = out[k] + in[k];
}

// The (key, value) pairs sorted by key, keys below 2^bits; a counting sort, so stable.
inline void serial_sort_pairs(const uint32_t* kin, uint32_t* kout, const int32_t* vin, int32_t* vout,
                              int64_t n, int bits) {
  std::vector<int64_t> next((size_t(1) << bits) + 1, 0);
  for (int64_t k = 0; k < n; ++k) ++next[kin[k] + 1];
  for (size_t v = 1; v < next.size(); ++v) next[v] += next[v - 1];
  for (int64_t k = 0; k < n; ++k) {
    const int64_t at = next[kin[k]]++;
    kout[at] = kin[k];
    vout[at] = vin[k];
  }
}

// The two as executor members (exclusive_scan, sort_pairs; see xvertfast/wls_multigrid.h).
struct SerialScanSort {
  void exclusive_scan(const int32_t* in, int32_t* out, int64_t n) const { serial_exclusive_scan(in, out, n); }
  void sort_pairs(const uint32_t* kin, uint32_t* kout, const int32_t* vin, int32_t* vout, int64_t n,
                  int bits) const {
    serial_sort_pairs(kin, kout, vin, vout, n, bits);
  }
};

}  // namespace xvf
