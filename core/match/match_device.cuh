// Private to the CUDA path: prior geometry and exact IoU on the device, and
// the matching launcher. The arithmetic uses explicit round-to-nearest
// intrinsics (__dadd_rn, __dmul_rn, ...), which the compiler never contracts
// into an FMA, so every .cu file that includes this header rounds exactly as
// match_scalar.cpp (compiled with -ffp-contract=off) does (SPEC §2).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/types.h"

namespace mbx {
namespace cuda {

struct PriorD {
  double x1, y1, x2, y2, area;  // what IoU uses
  double cx, cy, w, h;          // what encoding uses
};

// build_prior_geometry of match_scalar.cpp for one prior.
__device__ __forceinline__ PriorD load_prior(const float* priors, int64_t p, bool corners) {
  const double a = priors[4 * p], b = priors[4 * p + 1], c = priors[4 * p + 2],
               d = priors[4 * p + 3];
  PriorD r;
  if (!corners) {
    r.cx = a; r.cy = b; r.w = c; r.h = d;
    r.x1 = __dsub_rn(a, __ddiv_rn(c, 2.0));
    r.y1 = __dsub_rn(b, __ddiv_rn(d, 2.0));
    r.x2 = __dadd_rn(a, __ddiv_rn(c, 2.0));
    r.y2 = __dadd_rn(b, __ddiv_rn(d, 2.0));
  } else {
    r.x1 = a; r.y1 = b; r.x2 = c; r.y2 = d;
    r.cx = __ddiv_rn(__dadd_rn(a, c), 2.0);
    r.cy = __ddiv_rn(__dadd_rn(b, d), 2.0);
    r.w = __dsub_rn(c, a);
    r.h = __dsub_rn(d, b);
  }
  r.area = __dmul_rn(__dsub_rn(r.x2, r.x1), __dsub_rn(r.y2, r.y1));
  return r;
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

// Whether the GT and the prior overlap (intersection width and height both
// > 0), by comparisons alone: for IEEE doubles min - max > 0 exactly when
// min > max (gradual underflow; NaN and inf - inf give false both ways).
__device__ __forceinline__ bool overlaps_dev(double gx1, double gy1, double gx2, double gy2,
                                             const PriorD& p) {
  return (gx2 < p.x2 ? gx2 : p.x2) > (gx1 > p.x1 ? gx1 : p.x1) &&
         (gy2 < p.y2 ? gy2 : p.y2) > (gy1 > p.y1 ? gy1 : p.y1);
}

// iou_exact of match.h, same operation order, no contraction.
__device__ __forceinline__ double iou_dev(double gx1, double gy1, double gx2, double gy2,
                                          double garea, const PriorD& p) {
  // No overlap: the IoU is exactly +0 (a valid GT has a positive area), as
  // in the CPU kernels (iou_batch); most priors miss a given GT, and the
  // division is the expensive part. A warp pays it only where a lane overlaps.
  if (!overlaps_dev(gx1, gy1, gx2, gy2, p)) return 0.0;
  const double iw = __dsub_rn(gx2 < p.x2 ? gx2 : p.x2, gx1 > p.x1 ? gx1 : p.x1);
  const double ih = __dsub_rn(gy2 < p.y2 ? gy2 : p.y2, gy1 > p.y1 ? gy1 : p.y1);
  const double inter = __dmul_rn(iw, ih);
  return __ddiv_rn(inter, __dsub_rn(__dadd_rn(garea, p.area), inter));
}

__device__ __forceinline__ double gt_area_dev(double x1, double y1, double x2, double y2) {
  return __dmul_rn(__dsub_rn(x2, x1), __dsub_rn(y2, y1));
}

// Encoding parameters (encode.h) in a kernel-argument friendly form.
struct EncodeParams {
  double v[4];
  double min_wh;
};

// encode_box of encode.h: t of a positive prior against GT box `gt`.
__device__ __forceinline__ void encode_dev(const float* gt, const PriorD& pr,
                                           const EncodeParams& e, double t[4]) {
  const double x1 = gt[0], y1 = gt[1], x2 = gt[2], y2 = gt[3];
  const double gcx = (x1 + x2) / 2.0, gcy = (y1 + y2) / 2.0;
  double gw = x2 - x1, gh = y2 - y1;
  if (e.min_wh > 0.0) {
    gw = gw > e.min_wh ? gw : e.min_wh;
    gh = gh > e.min_wh ? gh : e.min_wh;
  }
  t[0] = (gcx - pr.cx) / (e.v[0] * pr.w);
  t[1] = (gcy - pr.cy) / (e.v[1] * pr.h);
  t[2] = log(gw / pr.w) / e.v[2];
  t[3] = log(gh / pr.h) / e.v[3];
}

// Buffers of one matching run. ct/mg may be the caller's outputs or
// scratch; they are always fully written.
struct MatchBuffers {
  int32_t* ct = nullptr;             // [B,P] conf_target
  int32_t* mg = nullptr;             // [B,P] matched_gt
  int32_t* num_pos = nullptr;        // [B], zeroed by the launcher
  float* loc_target = nullptr;       // [B,P,4] or null
  unsigned long long* gt_max = nullptr;  // [B*G] scratch
  int32_t* gt_arg = nullptr;         // [B*G] scratch
};

// Matching + encoding of every image on `stream` (SPEC §2, §3).
void launch_match(const Options& o, const Inputs& in, const MatchBuffers& buf,
                  cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
