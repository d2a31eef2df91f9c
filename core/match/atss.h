// The ATSS assigner on the CPU (docs/SPEC.md §2.8): Adaptive Training Sample
// Selection (Zhang et al., CVPR 2020) as mmdetection's ATSSAssigner computes
// it, without the DDOD cost term. It replaces the thresholds and forced
// matching of §2.2-§2.3 when assigner = ATSS. The formulas are atss_math.h's,
// shared with the CUDA path (atss.cu), so decisions are bit-identical.
#pragma once

#include <cstdint>
#include <vector>

#include "common/types.h"
#include "match/match.h"

namespace mbx {

// The pyramid as ATSS walks it: the non-empty levels in prior order, level i
// holding priors [begin[i], begin[i+1]); absent prior_levels = one level of
// all P priors. K = sum over levels of min(atss_topk, level size): the
// candidates of every GT.
struct AtssPlan {
  int64_t topk = 0;
  std::vector<int64_t> begin;
  int64_t K = 0;
  int64_t levels() const { return static_cast<int64_t>(begin.size()) - 1; }
};
AtssPlan atss_plan(const Options& o, const Inputs& in);

// The IoUs of one GT's candidates (ious[i] of candidates[i]) and its
// threshold, mean + std of them (atss_threshold): step 2 of both CPU paths.
double atss_candidate_ious(const MatchBox& box, const PriorGeometry& pg,
                           const std::vector<int64_t>& candidates, std::vector<double>* ious);

// Non-empty pyramid levels the cuda path takes (its plan is a kernel
// argument); more are refused there as unsupported.
constexpr int64_t kAtssCudaMaxLevels = 16;

// cpu-scalar: ATSS for one image, selecting each level's candidates with
// std::nth_element (linear), then sorting those few; priors inside the
// image's ignore regions (ignore_mask, docs/SPEC.md §2.7) are as far as can
// be. Writes conf_target/matched_gt [P]; returns the number of positives.
int64_t match_image_atss_scalar(const Options& o, const AtssPlan& plan, const ImageGt& gt,
                                const PriorGeometry& pg, int32_t* conf_target, int32_t* matched_gt);

// cpu: oneTBB over (image, GT) with a bounded heap per level, then the
// per-prior choice of the best GT per image. Writes conf_target/matched_gt
// [B,P] and num_pos [B]. Bit-identical to match_image_atss_scalar for any
// thread count.
void match_batch_atss_cpu(const Options& o, const AtssPlan& plan, const Inputs& in,
                          const PriorGeometry& pg, int32_t* conf_target, int32_t* matched_gt,
                          int64_t* num_pos, int num_threads);

}  // namespace mbx
