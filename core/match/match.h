// Matching GT boxes to priors on the CPU (docs/SPEC.md §2).
//
// The IoUs that decide matching are computed in float64 from the float32
// inputs, in exactly the operation order of the specification, and the
// translation units that evaluate them are compiled with -ffp-contract=off:
// on regular anchor grids float32 IoUs (or a fused multiply-add) change real
// assignments, so every path (scalar, SIMD, CUDA) must round identically to
// make bit-identical decisions. The formulas themselves (prior geometry,
// IoU) are written once, in match_math.h, for the host and the device.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/types.h"
#include "match/match_math.h"

namespace mbx {

// Priors in every form the algorithms need, float64, structure of arrays.
struct PriorGeometry {
  int64_t P = 0;
  // Corners (x1,y1,x2,y2) and area (x2-x1)*(y2-y1): what IoU uses.
  std::vector<double> x1, y1, x2, y2, area;
  // Centre/size (cx,cy,w,h): what encoding uses.
  std::vector<double> cx, cy, w, h;
};

// CENTER_SIZE -> corners as (cx-w/2, cy-h/2, cx+w/2, cy+h/2); CORNERS ->
// centre ((x1+x2)/2, ...), size (x2-x1, ...), all in float64.
void build_prior_geometry(const float* priors, int64_t P, PriorFormat format,
                          PriorGeometry* out);

// The valid GT rows of one image (indices into the image's rows).
struct ImageGt {
  const float* boxes = nullptr;     // [G,4] of this image
  const int32_t* labels = nullptr;  // [G]
  std::vector<int32_t> rows;        // rows that can be matched, ascending
  std::vector<MatchBox> ignore;     // ignore regions (gt_flags bit 0), docs/SPEC.md §2.7
};

// Rows of image b that take part (< gt_counts[b], and valid unless skipped
// by InvalidGt::kSkip): the ignore regions go to `ignore`, the others to
// `rows`.
void image_gt_rows(const Inputs& in, int64_t b, ImageGt* out);

// Whether the image's ignore regions swallow any prior: there is one and
// ignore_iof_threshold > 0 (docs/SPEC.md §2.7).
inline bool ignore_active(const Options& o, const ImageGt& gt) {
  return o.ignore_iof_threshold > 0.0 && !gt.ignore.empty();
}

// ignored[p - p0] = 1 where prior p of [p0, p1) has IoF > ignore_iof_threshold
// with one of the image's ignore regions, else 0 (docs/SPEC.md §2.7).
// Returns whether any prior of the range is ignored. Requires ignore_active.
bool ignore_mask(const Options& o, const ImageGt& gt, const PriorGeometry& pg, int64_t p0,
                 int64_t p1, uint8_t* ignored);

// Per-prior decision from its best IoU (docs/SPEC.md §2): 1 positive, 0 negative,
// -1 ignored, before forced matching.
inline int32_t threshold_state(double best_iou, const Options& o) {
  if (best_iou >= o.pos_threshold) return 1;
  if (best_iou < o.neg_threshold) return 0;
  return -1;
}

// Plain scalar matching of one image (the in-tree reference).
// conf_target/matched_gt: [P]. Returns the number of positives.
// BIPARTITE: pairs with IoU <= this never match (Caffe's MatchBBox).
constexpr double kBipartiteMinIou = 1e-6;

// Caffe's greedy bipartite matching over one image's GT boxes: the matched
// (prior, index into `boxes`) pairs, in matching order (docs/SPEC.md §2.3).
// Used by cpu-scalar and the cpu path alike.
// Priors with ignored[p] != 0 (null: none) take no part (docs/SPEC.md §2.7).
std::vector<std::pair<int64_t, int32_t>> bipartite_match(const std::vector<MatchBox>& boxes,
                                                         const PriorGeometry& pg,
                                                         const uint8_t* ignored);

int64_t match_image_scalar(const Options& o, const ImageGt& gt, const PriorGeometry& pg,
                           int32_t* conf_target, int32_t* matched_gt);

}  // namespace mbx

namespace mbx {

// Fast batched matching (match_cpu.cpp): oneTBB over (image, prior block),
// xsimd over priors. Bit-identical decisions to match_image_scalar for any
// thread count. Writes conf_target/matched_gt [B,P] and num_pos [B].
void match_batch_cpu(const Options& o, const Inputs& in, const PriorGeometry& pg,
                     int32_t* conf_target, int32_t* matched_gt, int64_t* num_pos,
                     int num_threads);

}  // namespace mbx
