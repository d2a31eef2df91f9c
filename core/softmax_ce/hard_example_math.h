// HARD_EXAMPLE mining (Caffe's MultiBoxLoss mining_type HARD_EXAMPLE,
// docs/SPEC.md §4.6): the ranking key of a prior's loss and the NMS test
// between decoded predictions, once for the CPU and the CUDA paths.
#pragma once

#include <cstdint>

#include "common/hd.h"
#include "match/match_math.h"

namespace mbx {

// Ranking key of a prior's mining loss (classification + regression, float64):
// a larger key ranks first. Every NaN ranks above everything (one key, all
// ones); -0 is folded into +0 so that equal losses tie. Ties between equal
// keys go to the lower prior index on every path. Never 0 (ordered_bits of a
// non-NaN value has a set bit below the sign).
MBX_HD_INLINE uint64_t hard_example_rank_key(double loss) {
  if (loss != loss) return ~0ull;
  return ordered_bits(loss + 0.0);
}

// Whether prior a ranks before prior b ("higher loss first, then the lower
// index") from their keys.
MBX_HD_INLINE bool hard_example_before(uint64_t key_a, int64_t a, uint64_t key_b, int64_t b) {
  return key_a != key_b ? key_a > key_b : a < b;
}

// Greedy NMS over the decoded predictions in ranking order: a candidate is
// dropped when its IoU (match_math.h, float64 of the float32 corners) with a
// kept box exceeds the threshold (a NaN IoU drops nothing).
MBX_HD_INLINE bool nms_suppresses(const MatchBox& candidate, const MatchBox& kept, double threshold) {
  return iou(candidate, kept.x1, kept.y1, kept.x2, kept.y2, kept.area) > threshold;
}

}  // namespace mbx
