// O(n) hard negative selection over packed (ce, prior) keys.
#include <algorithm>

#include "softmax_ce/softmax_ce.h"

namespace mbx {

void select_top_negatives(uint64_t* keys, int64_t n, int64_t k) {
  if (k <= 0) return;
  if (k < n && n > 4096) {
    // Radix pre-filter: a histogram of the top 11 key bits finds the bucket
    // holding the k-th key; keys of earlier buckets are certainly chosen and
    // later ones certainly not, so only that bucket needs nth_element.
    constexpr int kBits = 11;
    uint32_t hist[1 << kBits] = {};
    for (int64_t i = 0; i < n; ++i) ++hist[keys[i] >> (64 - kBits)];
    int64_t below = 0;
    uint32_t cut = 0;
    while (below + static_cast<int64_t>(hist[cut]) < k) below += hist[cut++];
    // Partition: [bucket < cut | bucket == cut | rest], stable enough for a set.
    int64_t lo = 0;
    for (int64_t i = 0; i < n; ++i)
      if ((keys[i] >> (64 - kBits)) < cut) std::swap(keys[i], keys[lo++]);
    int64_t mid = lo;
    for (int64_t i = lo; i < n; ++i)
      if ((keys[i] >> (64 - kBits)) == cut) std::swap(keys[i], keys[mid++]);
    if (k - lo < mid - lo) std::nth_element(keys + lo, keys + (k - 1), keys + mid);
  } else if (k < n) {
    std::nth_element(keys, keys + (k - 1), keys + n);
  }
  const int64_t m = k < n ? k : n;
  // Canonical ascending prior order for the chosen ones, so that their loss
  // is summed in one fixed sequence.
  for (int64_t i = 0; i < m; ++i) keys[i] &= 0xffffffffull;
  std::sort(keys, keys + m);
}

}  // namespace mbx
