// O(n) hard negative selection (nth_element), shared by every CPU path.
#include <algorithm>

#include "softmax_ce/softmax_ce.h"

namespace mbx {

template <typename T>
static void select_impl(const T* ce, int32_t* idx, int64_t n, int64_t k) {
  if (k <= 0 || k >= n) return;
  std::nth_element(idx, idx + (k - 1), idx + n, [ce](int32_t a, int32_t b) {
    return ranks_before(ce[a], a, ce[b], b);
  });
}

void select_top_negatives(const float* ce, int32_t* idx, int64_t n, int64_t k) {
  select_impl(ce, idx, n, k);
}
void select_top_negatives(const double* ce, int32_t* idx, int64_t n, int64_t k) {
  select_impl(ce, idx, n, k);
}

}  // namespace mbx
