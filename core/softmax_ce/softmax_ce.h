// Softmax cross-entropy with hard negative mining (SSD, Liu et al. 2016,
// "Hard negative mining"; docs/SPEC.md §4).
//   ce[p] = logsumexp(conf[p]) - conf[p, target]   (negatives: target 0)
// The log-sum-exp is shifted by the row's own max (not the batch max as in
// ssd.pytorch, docs/SPEC.md §6.3), so every row is finite and exact.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/types.h"
#include "softmax_ce/mining_math.h"

namespace mbx {

// Softmax statistics of one row in the form that keeps every derived
// quantity at full relative precision: m = max_c x_c and
// l = log(sum_c exp(x_c - m)) = log1p(r), r = sum of exp(x_c - m) over the
// non-maximal columns + (#maximal - 1). Then lse = m + l,
// ce_t = (m - x_t) + l (no cancellation when ce_t is tiny next to large
// logits, as lse - x_t would have) and log softmax_c = (x_c - m) - l.
// +inf / NaN maxima (or only -inf): m = the IEEE log-sum-exp, l = 0.
// The row is read through x(c) -> T; one definition for the host and the
// device (the cuda path's HARD_EXAMPLE ranking, hard_example.cu).
template <typename T, typename Load>
MBX_HD_INLINE void softmax_row_stats_of(Load x, int64_t C, T* m_out, T* l_out) {
  T m = x(0);
  for (int64_t c = 1; c < C; ++c) m = x(c) > m ? x(c) : m;
  if (!isfinite(m)) {
    T s = T(0);
    for (int64_t c = 0; c < C; ++c) s += exp(x(c));
    *m_out = log(s);
    *l_out = T(0);
    return;
  }
  T r = T(0), k = T(0);
  for (int64_t c = 0; c < C; ++c) {
    const T v = x(c);
    if (v == m) k += T(1);
    else r += exp(v - m);  // a NaN logit makes r NaN
  }
  *m_out = m;
  *l_out = log1p(r + (k - T(1)));
}

template <typename T, typename In>
inline void softmax_row_stats(const In* x, int64_t C, T* m_out, T* l_out) {
  softmax_row_stats_of<T>([x](int64_t c) { return T(x[c]); }, C, m_out, l_out);
}

// mining_quota (mining_math.h) with the image's options.
inline int64_t mining_quota(const Options& o, int64_t num_pos, int64_t P) {
  return mining_quota(o.neg_pos_ratio, o.clamp_num_neg, num_pos, P);
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

// Sort key of a negative for the O(n) selection: the complement of
// mining_rank_key in the high word, the prior index in the low word, so
// that ascending key order is the ranking order of ranks_before (CE
// descending, then the lower prior index; NaN first).
inline uint64_t mining_key(float ce, int32_t prior) {
  return (static_cast<uint64_t>(~mining_rank_key(ce)) << 32) | static_cast<uint32_t>(prior);
}
inline int32_t mining_key_prior(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

// Reorders keys[0..n) so that its first k entries are the k smallest keys
// (the k top-ranked negatives), in ascending prior order. O(n + k log k).
void select_top_negatives(uint64_t* keys, int64_t n, int64_t k);

}  // namespace mbx
