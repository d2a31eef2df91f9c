// Fast matching: oneTBB over (image, prior block); the IoU kernels are the
// per-ISA match_block / match_ties (match_kernels_impl.h), xsimd over
// priors (SoA), the vector twin of iou() in match_math.h, so decisions are
// bit-identical to the scalar reference and to the CUDA path.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <vector>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "match/match.h"
#include "match/match_kernels.h"

namespace mbx {

const MatchKernels& match_kernels() {
  static const MatchKernels& chosen =
      cpu_isa_table(match_kernels_sse2(), match_kernels_avx2(), match_kernels_avx512());
  return chosen;
}

namespace {
constexpr int64_t kBlock = 2048;  // priors per task: fixed, so results do not depend on threads
}  // namespace

void match_batch_cpu(const Options& o, const Inputs& in, const PriorGeometry& pg,
                     int32_t* conf_target, int32_t* matched_gt, int64_t* num_pos,
                     int num_threads) {
  const int64_t B = in.B, P = in.P;
  const int64_t nblk = (P + kBlock - 1) / kBlock;
  const MatchKernels& kernels = match_kernels();
  const PriorSoA pr{pg.x1.data(), pg.y1.data(), pg.x2.data(), pg.y2.data(), pg.area.data()};

  // The valid GT rows of each image, as float64 boxes, and its ignore regions.
  std::vector<ImageGt> images(B);
  std::vector<std::vector<MatchBox>> boxes(B);
  size_t max_g = 1;
  bool any_ignore = false;
  for (int64_t b = 0; b < B; ++b) {
    image_gt_rows(in, b, &images[b]);
    for (int32_t r : images[b].rows) boxes[b].push_back(match_box(images[b].boxes + 4 * r));
    max_g = std::max(max_g, images[b].rows.size());
    any_ignore = any_ignore || ignore_active(o, images[b]);
  }
  // [B,P]: 1 where a prior lies in an ignore region (docs/SPEC.md §2.7);
  // only allocated when some image has one. The ignore test comes first: an
  // ignored prior is neither positive, nor negative, nor forced.
  std::vector<uint8_t> ignored(any_ignore ? static_cast<size_t>(B * P) : 0, 0);
  auto is_ignored = [&](int64_t b, int64_t p) { return any_ignore && ignored[b * P + p] != 0; };
  // Per (image, block, GT): the block's best IoU and first prior reaching it.
  std::vector<double> part_iou(static_cast<size_t>(B * nblk) * max_g);
  std::vector<int64_t> part_prior(static_cast<size_t>(B * nblk) * max_g);
  std::vector<int64_t> block_pos(static_cast<size_t>(B * nblk), 0);

  tbb::task_arena arena = make_arena(num_threads);
  auto for_blocks = [&](auto&& body) { for_image_blocks(arena, B, P, kBlock, body); };


  // Pass 1: best GT per prior (ties -> lowest g), threshold state, and each
  // GT's best prior within the block (ties -> lowest p).
  for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    int32_t* image_conf_target = conf_target + b * P;
    int32_t* image_matched_gt = matched_gt + b * P;
    const int64_t G = static_cast<int64_t>(boxes[b].size());
    const uint8_t* skip = nullptr;  // this block's ignored priors, null when none
    if (ignore_active(o, images[b]) &&
        kernels.ignore_block(pr, p0, p1 - p0, images[b].ignore.data(),
                             static_cast<int64_t>(images[b].ignore.size()),
                             o.ignore_iof_threshold, &ignored[b * P + p0]))
      skip = &ignored[b * P + p0];
    if (G == 0) {
      for (int64_t p = p0; p < p1; ++p) {
        image_conf_target[p] = skip && skip[p - p0] ? -1 : 0;
        image_matched_gt[p] = -1;
      }
      return;
    }
    double best[kBlock], arg[kBlock];
    kernels.match_block(pr, p0, p1 - p0, boxes[b].data(), G, skip, best, arg,
                        &part_iou[task * max_g], &part_prior[task * max_g]);
    for (int64_t p = p0; p < p1; ++p) {
      // 1 / 0 / -1 for now
      image_conf_target[p] = skip && skip[p - p0] ? -1 : threshold_state(best[p - p0], o);
      image_matched_gt[p] = static_cast<int32_t>(arg[p - p0]);  // index into the valid rows for now
    }
  });

  // BIPARTITE: the greedy matching of each image (serial within an image,
  // images in parallel; the same function as cpu-scalar's).
  if (o.force_match == ForceMatch::kBipartite) {
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B), [&](const tbb::blocked_range<int64_t>& r) {
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          if (boxes[b].empty()) continue;
          for (const auto& pr : bipartite_match(boxes[b], pg, any_ignore ? &ignored[b * P] : nullptr)) {
            conf_target[b * P + pr.first] = 1;
            matched_gt[b * P + pr.first] = pr.second;
          }
        }
      });
    });
  }
  // Forced matching needs each GT's best prior over the whole image.
  std::vector<std::vector<double>> gt_max(B);
  for (int64_t b = 0; b < B; ++b) {
    const size_t G = boxes[b].size();
    gt_max[b].assign(G, -1.0);
    std::vector<int64_t> gt_prior(G, 0);
    for (int64_t k = 0; k < nblk; ++k)
      for (size_t j = 0; j < G; ++j) {
        const size_t i = static_cast<size_t>(b * nblk + k) * max_g + j;
        if (part_iou[i] > gt_max[b][j]) { gt_max[b][j] = part_iou[i]; gt_prior[j] = part_prior[i]; }
      }
    if (o.force_match == ForceMatch::kBestPriorPerGt) {
      for (size_t j = 0; j < G; ++j) {  // later g overwrites: the highest g wins
        if (is_ignored(b, gt_prior[j])) continue;  // no prior outside the ignore regions
        conf_target[b * P + gt_prior[j]] = 1;
        matched_gt[b * P + gt_prior[j]] = static_cast<int32_t>(j);
      }
    }
  }

  // Pass 2: LOW_QUALITY ties (recomputing the identical IoUs), then the
  // final labels and row indices.
  for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    int32_t* image_conf_target = conf_target + b * P;
    int32_t* image_matched_gt = matched_gt + b * P;
    const int64_t G = static_cast<int64_t>(boxes[b].size());
    int64_t pos = 0;
    if (G > 0) {
      if (o.force_match == ForceMatch::kLowQuality) {
        uint8_t hit[kBlock] = {};
        kernels.match_ties(pr, p0, p1 - p0, boxes[b].data(), G, gt_max[b].data(), hit);
        for (int64_t p = p0; p < p1; ++p)
          if (hit[p - p0] && !is_ignored(b, p)) image_conf_target[p] = 1;  // keeps its own best GT
      }
      const int32_t* labels = in.gt_labels + b * in.G;
      for (int64_t p = p0; p < p1; ++p) {
        if (image_conf_target[p] == 1) {
          const int32_t row = images[b].rows[image_matched_gt[p]];
          image_conf_target[p] = labels[row] + 1;
          image_matched_gt[p] = row;
          ++pos;
        } else {
          image_matched_gt[p] = -1;
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
