// Private to the CUDA path: the GT-row criteria of the device, and the
// matching launcher. The formulas (prior geometry, IoU, encoding) are the
// shared ones of match_math.h and encode_math.h: on the device their IoU
// arithmetic uses the explicit round-to-nearest intrinsics, never contracted
// into an FMA, so every .cu file rounds exactly as match_scalar.cpp does
// (docs/SPEC.md §2).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/types.h"
#include "encode/encode_math.h"
#include "match/match_math.h"

namespace mbx {
namespace cuda {

// prior_box of prior p of the float32 [P,4] priors.
__device__ __forceinline__ PriorBox load_prior(const float* priors, int64_t p, bool corners) {
  return prior_box(priors + 4 * p, corners);
}

// A GT row takes part in matching iff it is below the (clamped) count and
// is a proper box; the host check is skipped on the device, so the
// criterion of validate_gt is re-evaluated here (rows failing it are
// treated as padding, like InvalidGt::kSkip).
__device__ __forceinline__ bool gt_row_valid(const float* box) {
  return isfinite(box[0]) && isfinite(box[1]) && isfinite(box[2]) && isfinite(box[3]) &&
         box[2] > box[0] && box[3] > box[1];
}

__device__ __forceinline__ int gt_count_clamped(const int32_t* gt_counts, int64_t b, int64_t G) {
  const int32_t n = gt_counts[b];
  return n < 0 ? 0 : (n > G ? static_cast<int>(G) : n);
}

// Whether row i of gt_flags (null: no flags) marks an ignore region.
__device__ __forceinline__ bool gt_row_ignore(const int32_t* gt_flags, int64_t i) {
  return gt_flags != nullptr && (gt_flags[i] & kGtFlagIgnore) != 0;
}

// Whether prior `pr` lies in one of the ignore regions among the first n
// rows of image b: IoF > threshold with a valid ignore row (docs/SPEC.md
// §2.7, the test of ignore_mask in match_scalar.cpp). Requires gt_flags.
__device__ __forceinline__ bool prior_in_ignore_region(const float* gt_boxes,
                                                       const int32_t* gt_flags, int64_t b,
                                                       int64_t G, int n, const PriorBox& pr,
                                                       double threshold) {
  for (int g = 0; g < n; ++g) {
    const int64_t i = b * G + g;
    if (!gt_row_ignore(gt_flags, i) || !gt_row_valid(gt_boxes + i * 4)) continue;
    const MatchBox r = match_box(gt_boxes + i * 4);
    if (overlaps(r, pr.x1, pr.y1, pr.x2, pr.y2) &&
        iof(r, pr.x1, pr.y1, pr.x2, pr.y2, pr.area) > threshold)
      return true;
  }
  return false;
}

__device__ __forceinline__ bool label_valid(int32_t label, int64_t K) {
  return label >= 0 && (K <= 0 || label < K);
}

// IoU of match_math.h, except that where the boxes do not overlap it is
// +0 without the division (a valid GT has a positive area), as in the CPU
// kernels (iou_batch): most priors miss a given GT, and the division is the
// expensive part. A warp pays it only where a lane overlaps.
__device__ __forceinline__ double iou_or_zero(const MatchBox& g, const PriorBox& p) {
  if (!overlaps(g, p.x1, p.y1, p.x2, p.y2)) return 0.0;
  return iou_of_sides(intersection_side(g.x1, g.x2, p.x1, p.x2),
                      intersection_side(g.y1, g.y2, p.y1, p.y2), g.area, p.area);
}

// encode_box of a positive prior against GT box `gt`.
__device__ __forceinline__ void encode_prior(const float* gt, const PriorBox& pr,
                                             const EncodeParams& e, double t[4]) {
  encode_box(gt, pr.cx, pr.cy, pr.w, pr.h, e, t);
}

// Buffers of one matching run. conf_target/matched_gt may be the caller's
// outputs or scratch; they are always fully written.
struct MatchBuffers {
  int32_t* conf_target = nullptr;    // [B,P]
  int32_t* matched_gt = nullptr;     // [B,P]
  int32_t* num_pos = nullptr;        // [B], zeroed by the launcher
  float* loc_target = nullptr;       // [B,P,4] or null
  unsigned long long* gt_max = nullptr;  // [B*G] scratch
  int32_t* gt_arg = nullptr;         // [B*G] scratch
  // assigner = ATSS (atss.cu): each GT row's candidates, then positives,
  // [B*G*K] scratch (K of atss.h's AtssPlan).
  int32_t* atss_candidates = nullptr;
  uint8_t* prior_used = nullptr;     // [B*P] scratch (BIPARTITE only)
};

// Matching + encoding of every image on `stream` (docs/SPEC.md §2, §3).
void launch_match(const Options& o, const Inputs& in, const MatchBuffers& buf,
                  cudaStream_t stream);

// assigner = ATSS (docs/SPEC.md §2.8): the matching states (1 / 0 / -1) and
// positive rows into buf.conf_target / buf.matched_gt, for launch_match's
// finalize step.
void launch_atss(const Options& o, const Inputs& in, const MatchBuffers& buf, cudaStream_t stream);

// force_match = BIPARTITE (bipartite.cu): after match_best_gt_kernel, marks
// each greedy pair's prior positive with its GT row; uses gt_max / gt_arg
// as candidate scratch.
void launch_bipartite(const Options& o, const Inputs& in, const MatchBuffers& buf,
                      cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
