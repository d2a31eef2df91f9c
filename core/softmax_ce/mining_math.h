// Hard negative mining (docs/SPEC.md §4): the quota and the ranking key,
// once for the CPU and the CUDA paths.
#pragma once

#include <math.h>

#include <cstdint>

#include "common/hd.h"

namespace mbx {

// Number of negatives to keep for an image with `num_pos` positives, before
// the min with the image's negative count: ceil(ratio * num_pos), clamped to
// P-1 with clamp_num_neg. Returns -1 for "every negative" (ratio <= 0).
MBX_HD_INLINE int64_t mining_quota(double ratio, bool clamp_num_neg, int64_t num_pos, int64_t P) {
  if (ratio <= 0.0) return -1;
  const double k = ceil(ratio * static_cast<double>(num_pos));
  int64_t kk = k > 9e18 ? INT64_MAX : static_cast<int64_t>(k);
  if (clamp_num_neg && kk > P - 1) kk = P - 1;
  return kk;
}

// The ranking key of a negative's CE: a larger key ranks first. That is a
// larger CE; every NaN ranks above everything (one key, all ones, so NaN
// logits select deterministically); -0 is folded into +0 so that equal CE
// values tie (the reference comparison, ranks_before in softmax_ce.h, sees
// them equal). Never 0, which callers may reserve for "not a negative".
// Ties between equal keys go to the lower prior index on every path.
MBX_HD_INLINE uint32_t mining_rank_key(float ce) {
  if (ce != ce) return 0xffffffffu;
  return ordered_bits(ce + 0.0f);
}

}  // namespace mbx
