// ATSS on the cpu path (docs/SPEC.md §2.8): oneTBB over (image, GT) tasks,
// each selecting its candidates level by level with a bounded max-heap of
// atss_topk entries (one pass over the level, O(n log topk)); then, images
// in parallel, every prior goes to the claiming GT with the highest IoU.
// Same formulas (atss_math.h) and order as atss_scalar.cpp: bit-identical
// decisions for any thread count. Compiled with -ffp-contract=off.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "match/atss.h"
#include "match/atss_math.h"

namespace mbx {

namespace {

constexpr int64_t kChunk = 512;  // priors per vectorised distance pass

struct HeapEntry {
  double distance, squared;  // squared = the distance before its square root
  int64_t prior;
};

// Max-heap order: the entry that comes last among the candidates on top.
// (A function object, so that the heap operations inline it.)
struct HeapLess {
  bool operator()(const HeapEntry& a, const HeapEntry& b) const {
    return atss_before(a.distance, a.prior, b.distance, b.prior);
  }
};
constexpr HeapLess heap_less{};

// One GT's candidates (in the order of atss_scalar.cpp: levels in order,
// nearest first) into `out`.
void select_candidates(const AtssPlan& plan, const PriorGeometry& pg, const uint8_t* ignored,
                       double gcx, double gcy, std::vector<HeapEntry>& heap,
                       std::vector<int64_t>& out) {
  out.clear();
  for (int64_t l = 0; l < plan.levels(); ++l) {
    const int64_t p0 = plan.begin[l], p1 = plan.begin[l + 1];
    const auto take = static_cast<size_t>(atss_level_take(plan.topk, p1 - p0));
    heap.clear();
    // Squared distances a chunk at a time (a loop the compiler vectorises;
    // the same IEEE operations as atss_distance, never fused; +inf inside an
    // ignore region, whose root is +inf = atss_far()), then the heap sees
    // only the priors that could enter it.
    double chunk[kChunk];
    bool full = false;
    double top_squared = 0.0;  // the heap top's, once the heap is full
    for (int64_t c0 = p0; c0 < p1; c0 += kChunk) {
      const int64_t n = std::min<int64_t>(kChunk, p1 - c0);
      const double* cx = pg.cx.data() + c0;
      const double* cy = pg.cy.data() + c0;
      for (int64_t i = 0; i < n; ++i) {
        const double dx = exact_sub(cx[i], gcx), dy = exact_sub(cy[i], gcy);
        chunk[i] = exact_add(exact_mul(dx, dx), exact_mul(dy, dy));
      }
      if (ignored)
        for (int64_t i = 0; i < n; ++i)
          if (ignored[c0 + i]) chunk[i] = atss_far();
      for (int64_t i = 0; i < n; ++i) {
        const double squared = chunk[i];
        // Priors come in increasing index, so one whose squared distance is
        // not below the full heap top's cannot precede it (the correctly
        // rounded square root is monotone): skip the root.
        if (full && !(squared < top_squared)) continue;
        const HeapEntry e{exact_sqrt(squared), squared, c0 + i};
        if (!full) {
          heap.push_back(e);
          std::push_heap(heap.begin(), heap.end(), heap_less);
        } else if (heap_less(e, heap.front())) {
          std::pop_heap(heap.begin(), heap.end(), heap_less);
          heap.back() = e;
          std::push_heap(heap.begin(), heap.end(), heap_less);
        }
        full = heap.size() == take;
        if (full) top_squared = heap.front().squared;
      }
    }
    std::sort_heap(heap.begin(), heap.end(), heap_less);
    for (const HeapEntry& e : heap) out.push_back(e.prior);
  }
}

// A positive of one GT: prior and IoU.
struct Claim {
  int64_t prior;
  double iou;
};

}  // namespace

void match_batch_atss_cpu(const Options& o, const AtssPlan& plan, const Inputs& in,
                          const PriorGeometry& pg, int32_t* conf_target, int32_t* matched_gt,
                          int64_t* num_pos, int num_threads) {
  const int64_t B = in.B, P = in.P;
  std::vector<ImageGt> gts(static_cast<size_t>(B));
  std::vector<int64_t> first_task(static_cast<size_t>(B) + 1, 0);  // (image, GT) tasks
  bool any_region = false;
  for (int64_t b = 0; b < B; ++b) {
    image_gt_rows(in, b, &gts[b]);
    first_task[b + 1] = first_task[b] + static_cast<int64_t>(gts[b].rows.size());
    any_region = any_region || ignore_active(o, gts[b]);
  }
  std::vector<std::vector<Claim>> claims(static_cast<size_t>(first_task[B]));
  tbb::task_arena arena = make_arena(num_threads);

  // Priors inside an ignore region (docs/SPEC.md §2.7), [B,P].
  std::vector<uint8_t> region;
  if (any_region) {
    region.assign(static_cast<size_t>(B * P), 0);
    for_image_blocks(arena, B, P, 2048, [&](int64_t b, int64_t p0, int64_t p1, int64_t) {
      if (ignore_active(o, gts[b])) ignore_mask(o, gts[b], pg, p0, p1, &region[b * P + p0]);
    });
  }
  const uint8_t* ignored = region.empty() ? nullptr : region.data();

  // 1-3 of atss_scalar.cpp for every (image, GT).
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, first_task[B], 1), [&](const tbb::blocked_range<int64_t>& r) {
      std::vector<HeapEntry> heap;
      std::vector<int64_t> candidates;
      std::vector<double> ious;
      for (int64_t t = r.begin(); t < r.end(); ++t) {
        const int64_t b = std::upper_bound(first_task.begin(), first_task.end(), t) - first_task.begin() - 1;
        const ImageGt& gt = gts[b];
        const MatchBox box = match_box(gt.boxes + 4 * gt.rows[t - first_task[b]]);
        const uint8_t* image_ignored = ignored ? ignored + b * P : nullptr;
        select_candidates(plan, pg, image_ignored, box_centre(box.x1, box.x2), box_centre(box.y1, box.y2), heap,
                          candidates);
        const double threshold = atss_candidate_ious(box, pg, candidates, &ious);
        for (size_t i = 0; i < candidates.size(); ++i) {
          const int64_t p = candidates[i];
          if (ious[i] >= threshold && atss_centre_inside(box, pg.cx[p], pg.cy[p]))
            claims[t].push_back({p, ious[i]});
        }
      }
    });
  });

  // Per image: the highest IoU keeps a prior, the lowest row on a tie (GTs
  // in row order, strict >); then the labels.
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
      std::vector<double> held_iou;
      std::vector<int64_t> held;
      for (int64_t b = r.begin(); b < r.end(); ++b) {
        int32_t* image_conf_target = conf_target + b * P;
        int32_t* image_matched_gt = matched_gt + b * P;
        for (int64_t p = 0; p < P; ++p) {
          image_conf_target[p] = ignored && ignored[b * P + p] ? -1 : 0;
          image_matched_gt[p] = -1;  // index into rows while claims are resolved
        }
        const ImageGt& gt = gts[b];
        held.clear();
        held_iou.clear();
        for (int64_t j = 0; j < static_cast<int64_t>(gt.rows.size()); ++j) {
          for (const Claim& c : claims[first_task[b] + j]) {
            int32_t& holder = image_matched_gt[c.prior];
            if (holder < 0) {
              holder = static_cast<int32_t>(held.size());  // slot of this prior
              held.push_back(c.prior);
              held_iou.push_back(c.iou);
              image_conf_target[c.prior] = static_cast<int32_t>(j);
            } else if (c.iou > held_iou[holder]) {
              held_iou[holder] = c.iou;
              image_conf_target[c.prior] = static_cast<int32_t>(j);
            }
          }
        }
        for (int64_t p : held) {  // conf_target holds the winning GT's index into rows
          const int32_t row = gt.rows[image_conf_target[p]];
          image_conf_target[p] = gt.labels[row] + 1;  // ATSS positives overwrite the ignore mark
          image_matched_gt[p] = row;
        }
        num_pos[b] = static_cast<int64_t>(held.size());
      }
    });
  });
}

}  // namespace mbx
