// Softmax cross-entropy with hard negative mining (SSD, Liu et al. 2016,
// "Hard negative mining"; SPEC §4).
//   ce[p] = logsumexp(conf[p]) - conf[p, target]   (negatives: target 0)
// The log-sum-exp is shifted by the row's own max (not the batch max as in
// ssd.pytorch, SPEC §6.3), so every row is finite and exact.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/types.h"

namespace mbx {

template <typename T, typename In>
inline T logsumexp_row(const In* x, int64_t C) {
  T m = T(x[0]);
  for (int64_t c = 1; c < C; ++c) m = T(x[c]) > m ? T(x[c]) : m;
  if (!std::isfinite(m)) {
    // +inf or NaN logits: let the IEEE result speak (inf or NaN), never crash.
    T s = T(0);
    for (int64_t c = 0; c < C; ++c) s += std::exp(T(x[c]));
    return std::log(s);
  }
  T s = T(0);
  for (int64_t c = 0; c < C; ++c) s += std::exp(T(x[c]) - m);
  return m + std::log(s);
}

// Number of negatives to keep for an image with `num_pos` positives, before
// the min with the image's negative count: ceil(ratio * num_pos), clamped to
// P-1 with clamp_num_neg. Returns -1 for "every negative" (ratio <= 0).
inline int64_t mining_quota(const Options& o, int64_t num_pos, int64_t P) {
  if (o.neg_pos_ratio <= 0.0) return -1;
  double k = std::ceil(o.neg_pos_ratio * static_cast<double>(num_pos));
  int64_t kk = k > 9e18 ? INT64_MAX : static_cast<int64_t>(k);
  if (o.clamp_num_neg && kk > P - 1) kk = P - 1;
  return kk;
}

// Ranking of negatives: higher ce first; equal ce -> lower prior index.
// NaN ce (NaN logits) ranks first, deterministically, so selection stays a
// strict weak order and never crashes.
template <typename T>
inline bool ranks_before(T ce_a, int32_t a, T ce_b, int32_t b) {
  const bool na = ce_a != ce_a, nb = ce_b != ce_b;
  if (na || nb) return na && !nb ? true : (na == nb ? a < b : false);
  if (ce_a != ce_b) return ce_a > ce_b;
  return a < b;
}

// Ranking key of a negative for the O(n) selection: ascending key order is
// the ranking order (ce descending, then lower prior index; NaN first).
inline uint64_t mining_key(float ce, int32_t prior) {
  uint32_t u;
  std::memcpy(&u, &ce, 4);
  if (ce != ce) u = 0x7fc00000u;               // one canonical NaN, above +inf
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // order-preserving as unsigned
  return (static_cast<uint64_t>(~u) << 32) | static_cast<uint32_t>(prior);
}
inline int32_t mining_key_prior(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

// Reorders keys[0..n) so that its first k entries are the k smallest keys
// (the k top-ranked negatives), in ascending prior order. O(n + k log k).
void select_top_negatives(uint64_t* keys, int64_t n, int64_t k);

}  // namespace mbx
