// Plain scalar matching: the in-tree reference every faster path is held to.
// Compiled with -ffp-contract=off (see match_math.h).
#include <algorithm>
#include <cmath>

#include "match/match.h"

namespace mbx {

void build_prior_geometry(const float* priors, int64_t P, PriorFormat format,
                          PriorGeometry* out) {
  out->P = P;
  for (auto* v : {&out->x1, &out->y1, &out->x2, &out->y2, &out->area, &out->cx, &out->cy,
                  &out->w, &out->h})
    v->resize(static_cast<size_t>(P));
  for (int64_t p = 0; p < P; ++p) {
    const PriorBox r = prior_box(priors + 4 * p, format == PriorFormat::kCorners);
    out->x1[p] = r.x1; out->y1[p] = r.y1; out->x2[p] = r.x2; out->y2[p] = r.y2;
    out->area[p] = r.area;
    out->cx[p] = r.cx; out->cy[p] = r.cy; out->w[p] = r.w; out->h[p] = r.h;
  }
}

void image_gt_rows(const Inputs& in, int64_t b, ImageGt* out) {
  out->boxes = in.gt_boxes + b * in.G * 4;
  out->labels = in.gt_labels + b * in.G;
  out->rows.clear();
  out->ignore.clear();
  const int32_t n = in.gt_counts[b];
  const int32_t* flags = in.gt_flags ? in.gt_flags + b * in.G : nullptr;
  for (int32_t g = 0; g < n; ++g) {
    if (in.gt_valid && !in.gt_valid[b * in.G + g]) continue;
    if (flags && (flags[g] & kGtFlagIgnore))
      out->ignore.push_back(match_box(out->boxes + 4 * g));
    else
      out->rows.push_back(g);
  }
}

bool ignore_mask(const Options& o, const ImageGt& gt, const PriorGeometry& pg, int64_t p0,
                 int64_t p1, uint8_t* ignored) {
  bool any = false;
  for (int64_t p = p0; p < p1; ++p) {
    bool in_region = false;
    for (const MatchBox& r : gt.ignore)
      if (overlaps(r, pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p]) &&
          iof(r, pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p], pg.area[p]) > o.ignore_iof_threshold) {
        in_region = true;
        break;
      }
    ignored[p - p0] = in_region;
    any = any || in_region;
  }
  return any;
}

std::vector<std::pair<int64_t, int32_t>> bipartite_match(const std::vector<MatchBox>& boxes,
                                                         const PriorGeometry& pg,
                                                         const uint8_t* ignored) {
  std::vector<std::pair<int64_t, int32_t>> pairs;
  // Greedy bipartite matching (Caffe's MatchBBox): repeatedly take the
  // largest IoU > kBipartiteMinIou among the unused (prior, GT) pairs; ties
  // go to the lower prior index, then the lower GT index. Each GT keeps its
  // best unused prior (ties -> lowest prior), recomputed only when another
  // GT takes it.
  const int64_t P = pg.P;
  const size_t G = boxes.size();
  // An ignored prior is never a candidate: it starts out used.
  std::vector<uint8_t> prior_used(static_cast<size_t>(P), 0), gt_done(G, 0);
  if (ignored) std::copy(ignored, ignored + P, prior_used.begin());
  std::vector<double> cand_iou(G);
  std::vector<int64_t> cand_prior(G);
  auto best_unused = [&](size_t j) {
    double best = kBipartiteMinIou;
    int64_t arg = -1;
    for (int64_t p = 0; p < P; ++p) {
      if (prior_used[p]) continue;
      const double v = iou(boxes[j], pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p], pg.area[p]);
      if (v > best) { best = v; arg = p; }
    }
    cand_iou[j] = best;
    cand_prior[j] = arg;
  };
  for (size_t j = 0; j < G; ++j) best_unused(j);
  for (size_t round = 0; round < G; ++round) {
    int64_t pick = -1;
    for (size_t j = 0; j < G; ++j) {
      if (gt_done[j] || cand_prior[j] < 0) continue;
      if (pick < 0 || cand_iou[j] > cand_iou[pick] ||
          (cand_iou[j] == cand_iou[pick] && cand_prior[j] < cand_prior[pick]))
        pick = static_cast<int64_t>(j);
    }
    if (pick < 0) break;  // no overlapping pair left
    const int64_t p = cand_prior[pick];
    gt_done[pick] = 1;
    prior_used[p] = 1;
    pairs.emplace_back(p, static_cast<int32_t>(pick));
    for (size_t j = 0; j < G; ++j)
      if (!gt_done[j] && cand_prior[j] == p) best_unused(j);
  }
  return pairs;
}

int64_t match_image_scalar(const Options& o, const ImageGt& gt, const PriorGeometry& pg,
                           int32_t* conf_target, int32_t* matched_gt) {
  const int64_t P = pg.P;
  const size_t G = gt.rows.size();
  // Ignore regions come first (docs/SPEC.md §2.7): an ignored prior is
  // neither positive nor negative nor a candidate for forced matching.
  std::vector<uint8_t> ignored;
  if (ignore_active(o, gt)) {
    ignored.resize(static_cast<size_t>(P));
    if (!ignore_mask(o, gt, pg, 0, P, ignored.data())) ignored.clear();
  }
  const uint8_t* ign = ignored.empty() ? nullptr : ignored.data();
  if (G == 0) {  // images without objects: every prior is negative (or ignored)
    for (int64_t p = 0; p < P; ++p) { conf_target[p] = ign && ign[p] ? -1 : 0; matched_gt[p] = -1; }
    return 0;
  }
  std::vector<MatchBox> boxes(G);
  for (size_t j = 0; j < G; ++j) boxes[j] = match_box(gt.boxes + 4 * gt.rows[j]);

  // An ignored prior's IoUs count as -1 (mmdetection's MaxIoUAssigner): it
  // never reaches a GT's maximum.
  auto iou_at = [&](size_t j, int64_t p) {
    return ign && ign[p] ? -1.0 : iou(boxes[j], pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p], pg.area[p]);
  };
  std::vector<int32_t> best_gt(P);      // index into rows
  std::vector<double> best_iou(P);
  std::vector<double> gt_max(G, -1.0);  // max_p IoU[g,p]
  std::vector<int64_t> gt_argmax(G, 0); // first p reaching it
  for (int64_t p = 0; p < P; ++p) {
    double best = -1.0;
    int32_t arg = 0;
    for (size_t j = 0; j < G; ++j) {
      const double v = iou_at(j, p);
      if (v > best) { best = v; arg = static_cast<int32_t>(j); }  // ties -> lowest g
      if (v > gt_max[j]) { gt_max[j] = v; gt_argmax[j] = p; }      // ties -> lowest p
    }
    best_gt[p] = arg;
    best_iou[p] = best;
  }
  std::vector<int8_t> state(P);
  for (int64_t p = 0; p < P; ++p)
    state[p] = static_cast<int8_t>(ign && ign[p] ? -1 : threshold_state(best_iou[p], o));

  if (o.force_match == ForceMatch::kBestPriorPerGt) {
    for (size_t j = 0; j < G; ++j) {  // later g overwrites: highest g wins
      if (ign && ign[gt_argmax[j]]) continue;  // no prior outside the ignore regions
      best_gt[gt_argmax[j]] = static_cast<int32_t>(j);
      state[gt_argmax[j]] = 1;
    }
  } else if (o.force_match == ForceMatch::kBipartite) {
    for (const auto& pr : bipartite_match(boxes, pg, ign)) {
      best_gt[pr.first] = pr.second;
      state[pr.first] = 1;
    }
  } else if (o.force_match == ForceMatch::kLowQuality) {
    for (int64_t p = 0; p < P; ++p) {
      if (ign && ign[p]) continue;
      for (size_t j = 0; j < G; ++j) {
        if (iou_at(j, p) == gt_max[j]) { state[p] = 1; break; }  // keeps its own best_gt
      }
    }
  }
  int64_t num_pos = 0;
  for (int64_t p = 0; p < P; ++p) {
    if (state[p] == 1) {
      const int32_t row = gt.rows[best_gt[p]];
      conf_target[p] = gt.labels[row] + 1;
      matched_gt[p] = row;
      ++num_pos;
    } else {
      conf_target[p] = state[p] == 0 ? 0 : -1;
      matched_gt[p] = -1;
    }
  }
  return num_pos;
}

}  // namespace mbx
