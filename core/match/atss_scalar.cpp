// ATSS, plain scalar (docs/SPEC.md §2.8): the in-tree reference that the cpu
// and cuda paths are held to. Compiled with -ffp-contract=off (atss_math.h).
#include <algorithm>
#include <utility>
#include <vector>

#include "match/atss.h"
#include "match/atss_math.h"

namespace mbx {

double atss_candidate_ious(const MatchBox& box, const PriorGeometry& pg,
                           const std::vector<int64_t>& candidates, std::vector<double>* ious) {
  ious->resize(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int64_t p = candidates[i];
    (*ious)[i] = iou(box, pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p], pg.area[p]);
  }
  return atss_threshold([&](int64_t i) { return (*ious)[i]; }, static_cast<int64_t>(ious->size()));
}

AtssPlan atss_plan(const Options& o, const Inputs& in) {
  AtssPlan plan;
  plan.topk = o.atss_topk;
  plan.begin.push_back(0);
  auto add_level = [&](int64_t n) {
    if (n <= 0) return;  // an empty level gives no candidate
    plan.begin.push_back(plan.begin.back() + n);
    plan.K += atss_level_take(plan.topk, n);
  };
  if (in.prior_levels == nullptr) {
    add_level(in.P);
  } else {
    for (int64_t l = 0; l < in.L; ++l) add_level(in.prior_levels[l]);
  }
  return plan;
}

namespace {

// A prior's distance to the GT centre and its index: the candidates' order
// (atss_before).
struct Ranked {
  double distance;
  int64_t prior;
};

bool ranked_before(const Ranked& a, const Ranked& b) {
  return atss_before(a.distance, a.prior, b.distance, b.prior);
}

}  // namespace

int64_t match_image_atss_scalar(const Options& o, const AtssPlan& plan, const ImageGt& gt,
                                const PriorGeometry& pg, int32_t* conf_target, int32_t* matched_gt) {
  const int64_t P = pg.P;
  const size_t G = gt.rows.size();
  std::vector<uint8_t> region;  // priors inside an ignore region
  if (ignore_active(o, gt)) {
    region.assign(static_cast<size_t>(P), 0);
    ignore_mask(o, gt, pg, 0, P, region.data());
  }
  const uint8_t* ignored = region.empty() ? nullptr : region.data();
  for (int64_t p = 0; p < P; ++p) {
    conf_target[p] = ignored && ignored[p] ? -1 : 0;
    matched_gt[p] = -1;
  }
  if (G == 0) return 0;

  std::vector<double> best_iou(static_cast<size_t>(P), -1.0);  // of the GT holding the prior
  std::vector<int32_t> best(static_cast<size_t>(P), -1);       // index into rows
  std::vector<Ranked> level;
  std::vector<int64_t> candidates;
  std::vector<double> ious;
  for (size_t j = 0; j < G; ++j) {
    const MatchBox box = match_box(gt.boxes + 4 * gt.rows[j]);
    const double gcx = box_centre(box.x1, box.x2), gcy = box_centre(box.y1, box.y2);
    // 1. Per level, the min(atss_topk, n) priors nearest the GT centre.
    candidates.clear();
    for (int64_t l = 0; l < plan.levels(); ++l) {
      level.clear();
      for (int64_t p = plan.begin[l]; p < plan.begin[l + 1]; ++p)
        level.push_back({ignored && ignored[p] ? atss_far() : atss_distance(pg.cx[p], pg.cy[p], gcx, gcy), p});
      const auto take = static_cast<std::ptrdiff_t>(atss_level_take(plan.topk, plan.begin[l + 1] - plan.begin[l]));
      std::nth_element(level.begin(), level.begin() + take, level.end(), ranked_before);
      std::sort(level.begin(), level.begin() + take, ranked_before);
      for (std::ptrdiff_t i = 0; i < take; ++i) candidates.push_back(level[i].prior);
    }
    // 2. Their IoUs and the GT's threshold, mean + std.
    const double threshold = atss_candidate_ious(box, pg, candidates, &ious);
    // 3. Positives: at or above it, centre inside; a prior claimed by several
    //    GTs keeps the highest IoU, the lowest row on a tie (strict >, rows
    //    visited in order).
    for (size_t i = 0; i < candidates.size(); ++i) {
      const int64_t p = candidates[i];
      if (ious[i] >= threshold && atss_centre_inside(box, pg.cx[p], pg.cy[p]) && ious[i] > best_iou[p]) {
        best_iou[p] = ious[i];
        best[p] = static_cast<int32_t>(j);
      }
    }
  }
  int64_t num_pos = 0;
  for (int64_t p = 0; p < P; ++p) {
    if (best[p] < 0) continue;
    const int32_t row = gt.rows[best[p]];
    conf_target[p] = gt.labels[row] + 1;  // ATSS positives overwrite the ignore mark
    matched_gt[p] = row;
    ++num_pos;
  }
  return num_pos;
}

}  // namespace mbx
