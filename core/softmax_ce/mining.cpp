// O(n) hard negative selection over packed (ce, prior) keys.
#include <algorithm>

#include "softmax_ce/softmax_ce.h"

namespace mbx {

void select_top_negatives(uint64_t* keys, int64_t n, int64_t k) {
  if (k <= 0) return;
  if (k < n) std::nth_element(keys, keys + (k - 1), keys + n);
  const int64_t m = k < n ? k : n;
  // Canonical ascending prior order for the chosen ones, so that their loss
  // is summed in one fixed sequence.
  for (int64_t i = 0; i < m; ++i) keys[i] &= 0xffffffffull;
  std::sort(keys, keys + m);
}

}  // namespace mbx
