// Templated matching kernels, included by each match_kernels_<isa>.cpp in
// its own namespace (MBX_ISA_NS) — see common/cpu_isa.h for why.
// Requires <xsimd/xsimd.hpp>, <stdint.h> and MBX_ISA_NS / MBX_ISA_ARCH.
#include <vector>

namespace mbx {
namespace MBX_ISA_NS {

using arch = MBX_ISA_ARCH;

using db = xsimd::batch<double, arch>;
constexpr int64_t WD = static_cast<int64_t>(db::size);

// The vector twin of iou() (match_math.h): the same operations in the same
// order, lane by lane (min, max, sub, clamp, mul, add, sub, div, each
// correctly rounded, no FMA: this file is compiled with -ffp-contract=off),
// so every lane equals the scalar formula bit for bit. Scalar tails call
// iou() itself.
static inline db iou_batch(const MatchBox& g, const PriorSoA& pr, int64_t p) {
  const db zero(0.0);
  db iw = xsimd::min(db(g.x2), db::load_unaligned(pr.x2 + p)) - xsimd::max(db(g.x1), db::load_unaligned(pr.x1 + p));
  db ih = xsimd::min(db(g.y2), db::load_unaligned(pr.y2 + p)) - xsimd::max(db(g.y1), db::load_unaligned(pr.y1 + p));
  const auto overlap = (iw > zero) & (ih > zero);
  // Most priors of a grid miss a given GT: skip the (slow) division when no
  // lane overlaps — the IoU is then exactly +0 in every lane, as the full
  // expression would give.
  if (!xsimd::any(overlap)) return zero;
  iw = xsimd::select(iw > zero, iw, zero);
  ih = xsimd::select(ih > zero, ih, zero);
  const db inter = iw * ih;
  return inter / ((db(g.area) + db::load_unaligned(pr.area + p)) - inter);
}

// kSkip: priors with skip[i] != 0 (ignored, docs/SPEC.md §2.7) count with
// IoU -1 against every GT, so they never reach a GT's maximum; skip_d is
// skip as doubles (for the vector loop).
template <bool kSkip>
static void match_block_impl(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* gts,
                             int64_t G, const uint8_t* skip, const double* skip_d, double* best,
                             double* arg, double* gt_iou, int64_t* gt_prior) {
  const int64_t nv = n / WD * WD;
  for (int64_t i = 0; i < n; ++i) { best[i] = -1.0; arg[i] = 0.0; }
  alignas(64) double iota_s[WD];
  for (int64_t i = 0; i < WD; ++i) iota_s[i] = static_cast<double>(i);
  const db iota = db::load_aligned(iota_s);
  for (int64_t j = 0; j < G; ++j) {
    const MatchBox& g = gts[j];
    const db jd(static_cast<double>(j));
    // Lane-wise running max per GT: lane i sees priors in increasing order.
    db lane_max(-1.0), lane_arg(0.0);
    for (int64_t i = 0; i < nv; i += WD) {
      db v = iou_batch(g, pr, p0 + i);
      if (kSkip) v = xsimd::select(db::load_unaligned(skip_d + i) != db(0.0), db(-1.0), v);
      const db cur = db::load_unaligned(best + i);
      const auto better = v > cur;  // strict: ties keep the lower g
      xsimd::select(better, v, cur).store_unaligned(best + i);
      xsimd::select(better, jd, db::load_unaligned(arg + i)).store_unaligned(arg + i);
      const auto gbetter = v > lane_max;  // strict: ties keep the lower p
      lane_max = xsimd::select(gbetter, v, lane_max);
      lane_arg = xsimd::select(gbetter, db(static_cast<double>(p0 + i)) + iota, lane_arg);
    }
    alignas(64) double lm[WD], la[WD];
    lane_max.store_aligned(lm);
    lane_arg.store_aligned(la);
    double r_iou = -1.0;
    int64_t r_p = 0;
    for (int64_t i = 0; i < WD; ++i) {
      const int64_t pi = static_cast<int64_t>(la[i]);
      if (lm[i] > r_iou || (lm[i] == r_iou && pi < r_p)) { r_iou = lm[i]; r_p = pi; }
    }
    for (int64_t i = nv; i < n; ++i) {  // scalar tail, same arithmetic
      const double v = kSkip && skip[i] ? -1.0
                           : iou(g, pr.x1[p0 + i], pr.y1[p0 + i], pr.x2[p0 + i], pr.y2[p0 + i], pr.area[p0 + i]);
      if (v > best[i]) { best[i] = v; arg[i] = static_cast<double>(j); }
      if (v > r_iou) { r_iou = v; r_p = p0 + i; }
    }
    gt_iou[j] = r_iou;
    gt_prior[j] = r_p;
  }
}

static void match_block(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* gts, int64_t G,
                        const uint8_t* skip, double* best, double* arg, double* gt_iou,
                        int64_t* gt_prior) {
  if (!skip) {
    match_block_impl<false>(pr, p0, n, gts, G, nullptr, nullptr, best, arg, gt_iou, gt_prior);
    return;
  }
  std::vector<double> skip_d(skip, skip + n);
  match_block_impl<true>(pr, p0, n, gts, G, skip, skip_d.data(), best, arg, gt_iou, gt_prior);
}

static void match_ties(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* gts, int64_t G,
                       const double* gt_max, uint8_t* hit) {
  const int64_t nv = n / WD * WD;
  for (int64_t j = 0; j < G; ++j) {
    const db m(gt_max[j]);
    for (int64_t i = 0; i < nv; i += WD) {
      const auto eq = iou_batch(gts[j], pr, p0 + i) == m;
      if (xsimd::any(eq)) {
        alignas(64) double e[WD];
        xsimd::select(eq, db(1.0), db(0.0)).store_aligned(e);
        for (int64_t k = 0; k < WD; ++k) hit[i + k] |= e[k] != 0.0;
      }
    }
    for (int64_t i = nv; i < n; ++i) hit[i] |= iou(gts[j], pr.x1[p0 + i], pr.y1[p0 + i], pr.x2[p0 + i], pr.y2[p0 + i],
                               pr.area[p0 + i]) == gt_max[j];
  }
}

// The vector twin of iof() (match_math.h), lane by lane in its operation
// order (min, max, sub, clamp, mul, div); where no lane overlaps the region
// every IoF is +0, which is never > threshold > 0. Scalar tails call iof().
static bool ignore_block(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* regions,
                         int64_t R, double threshold, uint8_t* ignored) {
  const int64_t nv = n / WD * WD;
  const db zero(0.0), thr(threshold);
  for (int64_t i = 0; i < n; ++i) ignored[i] = 0;
  for (int64_t j = 0; j < R; ++j) {
    const MatchBox& g = regions[j];
    for (int64_t i = 0; i < nv; i += WD) {
      const int64_t p = p0 + i;
      db iw = xsimd::min(db(g.x2), db::load_unaligned(pr.x2 + p)) - xsimd::max(db(g.x1), db::load_unaligned(pr.x1 + p));
      db ih = xsimd::min(db(g.y2), db::load_unaligned(pr.y2 + p)) - xsimd::max(db(g.y1), db::load_unaligned(pr.y1 + p));
      if (!xsimd::any((iw > zero) & (ih > zero))) continue;
      iw = xsimd::select(iw > zero, iw, zero);
      ih = xsimd::select(ih > zero, ih, zero);
      const auto in_region = (iw * ih) / db::load_unaligned(pr.area + p) > thr;
      if (xsimd::any(in_region)) {
        alignas(64) double e[WD];
        xsimd::select(in_region, db(1.0), db(0.0)).store_aligned(e);
        for (int64_t k = 0; k < WD; ++k) ignored[i + k] |= e[k] != 0.0;
      }
    }
    for (int64_t i = nv; i < n; ++i)
      ignored[i] |= iof(g, pr.x1[p0 + i], pr.y1[p0 + i], pr.x2[p0 + i], pr.y2[p0 + i], pr.area[p0 + i]) > threshold;
  }
  bool any = false;
  for (int64_t i = 0; i < n; ++i) any = any || ignored[i];
  return any;
}

static const MatchKernels kTable = {MBX_ISA_NAME, &match_block, &match_ties, &ignore_block};

}  // namespace MBX_ISA_NS
}  // namespace mbx
