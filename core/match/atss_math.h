// The formulas of the ATSS assigner (docs/SPEC.md §2.8), once for every
// path: centre distance, the candidates' order, the IoU threshold
// (mean + unbiased standard deviation) and the centre-inside test, in
// float64 with the exact_* operations of match_math.h (never fused), so that
// cpu-scalar, cpu and cuda make bit-identical decisions. Translation units
// that evaluate them are compiled with -ffp-contract=off (host) or
// --fmad=false (device), like the IoU's.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/hd.h"
#include "match/match_math.h"

namespace mbx {

// mmdetection's ATSSAssigner: a positive's prior centre must lie more than
// this far inside every side of its GT box, in the boxes' own units.
constexpr double kAtssInsideMargin = 0.01;

// Correctly rounded IEEE square root (never an approximation on the device).
MBX_HD_INLINE double exact_sqrt(double a) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

// Centre of a GT box: ((x1 + x2) / 2, (y1 + y2) / 2).
MBX_HD_INLINE double box_centre(double lo, double hi) { return exact_div(exact_add(lo, hi), 2.0); }

// Distance between a prior's centre (pcx, pcy) and a GT centre (gcx, gcy):
// sqrt((pcx - gcx)^2 + (pcy - gcy)^2), mmdetection's bbox_center_distance.
// The square root is kept (not the squared distance): two squared distances
// that round to the same root tie, as they do there.
MBX_HD_INLINE double atss_distance(double pcx, double pcy, double gcx, double gcy) {
  const double dx = exact_sub(pcx, gcx);
  const double dy = exact_sub(pcy, gcy);
  return exact_sqrt(exact_add(exact_mul(dx, dx), exact_mul(dy, dy)));
}

// A prior inside an ignore region (docs/SPEC.md §2.7) is as far as can be:
// chosen only when a level has fewer other priors than atss_topk
// (mmdetection writes 1e8 there; +inf also ranks after real distances >= 1e8).
MBX_HD_INLINE double atss_far() { return static_cast<double>(INFINITY); }

// The candidates' order within a level: nearer first, then the lower prior
// index (torch's topk leaves ties unspecified; this is mbx's rule).
MBX_HD_INLINE bool atss_before(double da, int64_t pa, double db, int64_t pb) {
  return da < db || (da == db && pa < pb);
}

// IoU threshold of one GT from its K candidates' IoUs, iou_at(i) for
// i = 0..K-1 in the candidates' order (levels in order, nearest first within
// a level): mean + std, where mean = (sum in that order) / K and
// std = sqrt(sum((iou - mean)^2) / (K - 1)), torch.std's unbiased estimate.
// K = 1 gives 0 / 0 = NaN, as in torch: nothing compares >= NaN, so that GT
// gets no positive.
template <typename IouAt>
MBX_HD_INLINE double atss_threshold(IouAt iou_at, int64_t K) {
  double sum = 0.0;
  for (int64_t i = 0; i < K; ++i) sum = exact_add(sum, iou_at(i));
  const double mean = exact_div(sum, static_cast<double>(K));
  double sq = 0.0;
  for (int64_t i = 0; i < K; ++i) {
    const double d = exact_sub(iou_at(i), mean);
    sq = exact_add(sq, exact_mul(d, d));
  }
  return exact_add(mean, exact_sqrt(exact_div(sq, static_cast<double>(K - 1))));
}

// Whether the prior centre (pcx, pcy) lies inside GT g:
// min(pcx - x1, pcy - y1, x2 - pcx, y2 - pcy) > kAtssInsideMargin.
MBX_HD_INLINE bool atss_centre_inside(const MatchBox& g, double pcx, double pcy) {
  return exact_sub(pcx, g.x1) > kAtssInsideMargin && exact_sub(pcy, g.y1) > kAtssInsideMargin &&
         exact_sub(g.x2, pcx) > kAtssInsideMargin && exact_sub(g.y2, pcy) > kAtssInsideMargin;
}

// Candidates a level of n priors gives each GT: min(atss_topk, n).
MBX_HD_INLINE int64_t atss_level_take(int64_t topk, int64_t n) { return topk < n ? topk : n; }

}  // namespace mbx
