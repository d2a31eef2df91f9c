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
  // [B*G*K] scratch (K of atss.h's AtssPlan); priors inside an ignore region
  // [B,P] or null.
  int32_t* atss_candidates = nullptr;
  const uint8_t* ignored = nullptr;
};

// Matching + encoding of every image on `stream` (docs/SPEC.md §2, §3).
void launch_match(const Options& o, const Inputs& in, const MatchBuffers& buf,
                  cudaStream_t stream);

// assigner = ATSS (docs/SPEC.md §2.7): the matching states (1 / 0 / -1) and
// positive rows into buf.conf_target / buf.matched_gt, for launch_match's
// finalize step.
void launch_atss(const Options& o, const Inputs& in, const MatchBuffers& buf, cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
