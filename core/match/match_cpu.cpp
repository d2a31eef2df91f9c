// Fast matching: oneTBB over (image, prior block), xsimd over priors (SoA).
// Compiled with -ffp-contract=off; the SIMD IoU below performs exactly the
// operations of iou_exact (min, max, sub, clamp, mul, add, sub, div — each
// correctly rounded in IEEE double), so its decisions are bit-identical to
// the scalar reference and to the CUDA path.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "match/match.h"

namespace mbx {

namespace {

using batch = xsimd::batch<double>;
constexpr int64_t kBlock = 2048;  // priors per task: fixed, so results do not depend on threads

struct GtSoA {
  std::vector<GtBox> box;     // valid rows of the image
  std::vector<int32_t> rows;  // their row indices
};

inline batch iou_batch(const GtBox& g, const PriorGeometry& pg, int64_t p) {
  const batch px1 = batch::load_unaligned(&pg.x1[p]);
  const batch py1 = batch::load_unaligned(&pg.y1[p]);
  const batch px2 = batch::load_unaligned(&pg.x2[p]);
  const batch py2 = batch::load_unaligned(&pg.y2[p]);
  const batch pa = batch::load_unaligned(&pg.area[p]);
  const batch zero(0.0);
  batch iw = xsimd::min(batch(g.x2), px2) - xsimd::max(batch(g.x1), px1);
  batch ih = xsimd::min(batch(g.y2), py2) - xsimd::max(batch(g.y1), py1);
  iw = xsimd::select(iw > zero, iw, zero);
  ih = xsimd::select(ih > zero, ih, zero);
  const batch inter = iw * ih;
  return inter / ((batch(g.area) + pa) - inter);
}

// Per-GT running max of IoU over a block with the first prior reaching it.
struct GtBest {
  double iou = -1.0;
  int64_t prior = 0;
};

}  // namespace

void match_batch_cpu(const Options& o, const Inputs& in, const PriorGeometry& pg,
                     int32_t* conf_target, int32_t* matched_gt, int64_t* num_pos,
                     int num_threads) {
  const int64_t B = in.B, P = in.P;
  const int64_t nblk = (P + kBlock - 1) / kBlock;
  constexpr int64_t W = static_cast<int64_t>(batch::size);

  std::vector<GtSoA> gts(B);
  size_t max_g = 0;
  for (int64_t b = 0; b < B; ++b) {
    ImageGt ig;
    image_gt_rows(in, b, &ig);
    gts[b].rows = ig.rows;
    for (int32_t r : ig.rows) gts[b].box.push_back(make_gt_box(ig.boxes + 4 * r));
    max_g = std::max(max_g, ig.rows.size());
  }
  // Per (image, block, gt) best prior; reduced per image in block order.
  std::vector<GtBest> partial(static_cast<size_t>(B * nblk) * std::max<size_t>(max_g, 1));
  std::vector<int64_t> block_pos(static_cast<size_t>(B * nblk), 0);

  tbb::task_arena arena(num_threads > 0 ? num_threads : tbb::task_arena::automatic);
  auto for_blocks = [&](auto&& body) {
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * nblk, 1),
                        [&](const tbb::blocked_range<int64_t>& r) {
                          for (int64_t t = r.begin(); t < r.end(); ++t)
                            body(t / nblk, (t % nblk) * kBlock,
                                 std::min(P, (t % nblk) * kBlock + kBlock), t);
                        });
    });
  };

  // Pass 1: best GT per prior (ties -> lowest g), threshold state, and each
  // GT's best prior within the block (ties -> lowest p).
  for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    const GtSoA& gt = gts[b];
    int32_t* ct = conf_target + b * P;
    int32_t* mg = matched_gt + b * P;
    const size_t G = gt.box.size();
    if (G == 0) {
      for (int64_t p = p0; p < p1; ++p) { ct[p] = 0; mg[p] = -1; }
      return;
    }
    double best[kBlock];
    int32_t arg[kBlock];
    std::fill(best, best + (p1 - p0), -1.0);
    std::fill(arg, arg + (p1 - p0), 0);
    GtBest* gb = &partial[static_cast<size_t>(task) * max_g];
    const int64_t pv = p0 + (p1 - p0) / W * W;
    alignas(64) double iota_s[W];
    for (int64_t i = 0; i < W; ++i) iota_s[i] = static_cast<double>(i);
    const batch iota = batch::load_aligned(iota_s);
    for (size_t j = 0; j < G; ++j) {
      const GtBox& g = gt.box[j];
      // Lane-wise running max per GT: lane i sees priors in increasing order.
      batch lane_max(-1.0), lane_arg(0.0);
      for (int64_t p = p0; p < pv; p += W) {
        const batch v = iou_batch(g, pg, p);
        const batch cur = batch::load_unaligned(&best[p - p0]);
        const auto better = v > cur;
        xsimd::select(better, v, cur).store_unaligned(&best[p - p0]);
        if (xsimd::any(better)) {
          alignas(64) double vv[W], cc[W];
          v.store_aligned(vv);
          cur.store_aligned(cc);
          for (int64_t i = 0; i < W; ++i)
            if (vv[i] > cc[i]) arg[p - p0 + i] = static_cast<int32_t>(j);
        }
        const batch pidx = batch(static_cast<double>(p)) + iota;
        const auto gbetter = v > lane_max;
        lane_max = xsimd::select(gbetter, v, lane_max);
        lane_arg = xsimd::select(gbetter, pidx, lane_arg);
      }
      GtBest r;
      alignas(64) double lm[W], la[W];
      lane_max.store_aligned(lm);
      lane_arg.store_aligned(la);
      for (int64_t i = 0; i < W; ++i) {
        const int64_t pi = static_cast<int64_t>(la[i]);
        if (lm[i] > r.iou || (lm[i] == r.iou && pi < r.prior)) { r.iou = lm[i]; r.prior = pi; }
      }
      for (int64_t p = pv; p < p1; ++p) {  // scalar tail, same arithmetic
        const double v = iou_exact(g, pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p], pg.area[p]);
        if (v > best[p - p0]) { best[p - p0] = v; arg[p - p0] = static_cast<int32_t>(j); }
        if (v > r.iou) { r.iou = v; r.prior = p; }
      }
      gb[j] = r;
    }
    for (int64_t p = p0; p < p1; ++p) {
      ct[p] = threshold_state(best[p - p0], o);  // 1 / 0 / -1 for now
      mg[p] = arg[p - p0];                       // index into the valid rows for now
    }
  });

  // Forced matching needs each GT's best prior over the whole image.
  std::vector<std::vector<GtBest>> gt_best(B);
  for (int64_t b = 0; b < B; ++b) {
    const size_t G = gts[b].box.size();
    gt_best[b].assign(G, GtBest());
    for (int64_t k = 0; k < nblk; ++k)
      for (size_t j = 0; j < G; ++j) {
        const GtBest& c = partial[static_cast<size_t>(b * nblk + k) * max_g + j];
        if (c.iou > gt_best[b][j].iou) gt_best[b][j] = c;  // earlier block wins ties
      }
    if (o.force_match == ForceMatch::kBestPriorPerGt) {
      for (size_t j = 0; j < G; ++j) {  // later g overwrites: the highest g wins
        const int64_t p = gt_best[b][j].prior;
        conf_target[b * P + p] = 1;
        matched_gt[b * P + p] = static_cast<int32_t>(j);
      }
    }
  }

  // Pass 2: LOW_QUALITY ties (recomputing the identical IoUs), then the
  // final labels and row indices.
  for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    const GtSoA& gt = gts[b];
    int32_t* ct = conf_target + b * P;
    int32_t* mg = matched_gt + b * P;
    const size_t G = gt.box.size();
    int64_t pos = 0;
    if (G > 0 && o.force_match == ForceMatch::kLowQuality) {
      for (size_t j = 0; j < G; ++j) {
        const GtBox& g = gt.box[j];
        const double m = gt_best[b][j].iou;
        const int64_t pv = p0 + (p1 - p0) / W * W;
        for (int64_t p = p0; p < pv; p += W) {
          const auto hit = iou_batch(g, pg, p) == batch(m);
          if (xsimd::any(hit))
            for (int64_t i = 0; i < W; ++i)
              if (iou_exact(g, pg.x1[p + i], pg.y1[p + i], pg.x2[p + i], pg.y2[p + i],
                            pg.area[p + i]) == m)
                ct[p + i] = 1;
        }
        for (int64_t p = pv; p < p1; ++p)
          if (iou_exact(g, pg.x1[p], pg.y1[p], pg.x2[p], pg.y2[p], pg.area[p]) == m) ct[p] = 1;
      }
    }
    if (G > 0) {
      const int32_t* labels = in.gt_labels + b * in.G;
      for (int64_t p = p0; p < p1; ++p) {
        if (ct[p] == 1) {
          const int32_t row = gt.rows[mg[p]];
          ct[p] = labels[row] + 1;
          mg[p] = row;
          ++pos;
        } else {
          mg[p] = -1;
        }
      }
    }
    block_pos[task] = pos;
  });
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    for (int64_t k = 0; k < nblk; ++k) n += block_pos[b * nblk + k];
    num_pos[b] = n;
  }
}

}  // namespace mbx
