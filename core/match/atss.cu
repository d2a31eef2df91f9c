// ATSS on the device (docs/SPEC.md §2.8). Compiled with --fmad=false; every
// decision goes through atss_math.h / match_math.h with explicitly rounded
// intrinsics, so it is bit-identical to atss_scalar.cpp and atss_cpu.cpp.
//
// Per call (launch_atss, from launch_match when assigner = ATSS):
//  1. atss_init_kernel: one thread per (image, prior): conf_target = 0, or -1
//     inside an ignore region (prior_in_ignore_region, docs/SPEC.md §2.7);
//     matched_gt = -1. Until step 3, conf_target < 0 is the ignore mark the
//     distances read.
//  2. atss_select_kernel: one block per (image, GT row). Per level, in order,
//     min(atss_topk, n) rounds of a block-wide argmin over the level's
//     priors by (distance, index), each round taking the smallest key after
//     the previous round's: the candidates come out in the CPU's order
//     (nearest first, lower index on a tie), O(atss_topk * P) per GT with no
//     sort and no per-thread buffers. Then thread 0 forms the threshold
//     (atss_threshold, in that order) and the block keeps the positives
//     (IoU >= threshold, centre inside); other slots become -1.
//  3. atss_claim_kernel: one block per image walks its GT rows in order; the
//     block's threads take that row's positives (distinct priors, so no two
//     threads write one prior) and keep a prior for the row when its IoU is
//     strictly above the current holder's (recomputed: the same IoU): the
//     highest IoU wins, the lowest row on a tie. No atomics: deterministic.
// match_finalize_kernel (match.cu) then writes labels, loc_target, num_pos.
#include <cmath>

#include "common/cuda_util.cuh"
#include "match/atss.h"
#include "match/atss_math.h"
#include "match/match_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kSelectBlock = 256;
constexpr int kWarps = kSelectBlock / 32;

// The plan of atss.h as a kernel argument (at most kAtssCudaMaxLevels levels).
struct DevicePlan {
  int64_t topk, K;
  int levels;
  int64_t begin[kAtssCudaMaxLevels + 1];
};

struct AtssArgs {
  int64_t B, P, G;
  const float* priors;
  bool corners;
  const float* gt_boxes;
  const int32_t* gt_counts;
  const int32_t* gt_flags;  // null: no ignore regions
  bool ignore_priors;       // gt_flags and ignore_iof_threshold > 0
  double ignore_iof_threshold;
  DevicePlan plan;
  int32_t* candidates;     // [B*G*K]
  int32_t* conf_target;    // [B,P] state: 1 / 0 / -1
  int32_t* matched_gt;     // [B,P] row of a positive, -1 elsewhere
};

// A prior and its distance to the GT centre; prior < 0: none.
struct Nearest {
  double distance;
  long long prior;
};

__device__ __forceinline__ Nearest nearer(const Nearest& a, const Nearest& b) {
  if (a.prior < 0) return b;
  if (b.prior < 0) return a;
  return atss_before(b.distance, b.prior, a.distance, a.prior) ? b : a;
}

// The block's nearest; every thread returns it. `warp_best`: shared scratch.
__device__ Nearest block_nearest(Nearest v, Nearest* warp_best) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Nearest o;
    o.distance = __shfl_down_sync(0xffffffffu, v.distance, off);
    o.prior = __shfl_down_sync(0xffffffffu, v.prior, off);
    v = nearer(v, o);
  }
  if ((threadIdx.x & 31) == 0) warp_best[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    Nearest r = warp_best[0];
    for (int w = 1; w < kWarps; ++w) r = nearer(r, warp_best[w]);
    warp_best[0] = r;
  }
  __syncthreads();
  const Nearest r = warp_best[0];
  __syncthreads();  // warp_best is rewritten by the next round
  return r;
}

__device__ __forceinline__ double prior_distance(const AtssArgs& a, int64_t b, int64_t p, double gcx,
                                                 double gcy) {
  if (a.conf_target[b * a.P + p] < 0) return atss_far();  // inside an ignore region
  const PriorBox pr = load_prior(a.priors, p, a.corners);
  return atss_distance(pr.cx, pr.cy, gcx, gcy);
}

// IoU of GT box `g` and prior p (match_math.h's iou); an empty slot is NaN.
__device__ __forceinline__ double prior_iou(const AtssArgs& a, const MatchBox& g, int64_t p) {
  if (p < 0) return static_cast<double>(NAN);
  const PriorBox pr = load_prior(a.priors, p, a.corners);
  return iou(g, pr.x1, pr.y1, pr.x2, pr.y2, pr.area);
}

__global__ void __launch_bounds__(kBlock) atss_init_kernel(AtssArgs a) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= a.P) return;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const int64_t i = b * a.P + p;
    const bool ignored =
        a.ignore_priors && prior_in_ignore_region(a.gt_boxes, a.gt_flags, b, a.G,
                                                  gt_count_clamped(a.gt_counts, b, a.G),
                                                  load_prior(a.priors, p, a.corners), a.ignore_iof_threshold);
    a.conf_target[i] = ignored ? -1 : 0;
    a.matched_gt[i] = -1;
  }
}

__global__ void __launch_bounds__(kSelectBlock) atss_select_kernel(AtssArgs a) {
  __shared__ Nearest warp_best[kWarps];
  __shared__ double threshold;
  const int64_t K = a.plan.K;
  for (int64_t t = blockIdx.x; t < a.B * a.G; t += gridDim.x) {
    const int64_t b = t / a.G;
    const int g = static_cast<int>(t % a.G);
    int32_t* out = a.candidates + t * K;
    const float* row = a.gt_boxes + t * 4;
    if (g >= gt_count_clamped(a.gt_counts, b, a.G) || !gt_row_valid(row) ||
        gt_row_ignore(a.gt_flags, t)) {  // not a matchable row; uniform over the block
      for (int64_t i = threadIdx.x; i < K; i += blockDim.x) out[i] = -1;
      continue;
    }
    const MatchBox box = match_box(row);
    const double gcx = box_centre(box.x1, box.x2), gcy = box_centre(box.y1, box.y2);
    int64_t slot = 0;
    for (int l = 0; l < a.plan.levels; ++l) {
      const int64_t p0 = a.plan.begin[l], p1 = a.plan.begin[l + 1];
      const int64_t take = atss_level_take(a.plan.topk, p1 - p0);
      Nearest last{-static_cast<double>(INFINITY), -1};
      for (int64_t r = 0; r < take; ++r) {
        Nearest mine{0.0, -1};
        for (int64_t p = p0 + threadIdx.x; p < p1; p += blockDim.x) {
          const double d = prior_distance(a, b, p, gcx, gcy);
          if (atss_before(last.distance, last.prior, d, p)) mine = nearer(mine, Nearest{d, p});
        }
        last = block_nearest(mine, warp_best);
        if (last.prior < 0) {  // nothing left (NaN distances only): the rest stay empty
          if (threadIdx.x == 0)
            for (int64_t i = r; i < take; ++i) out[slot + i] = -1;
          break;
        }
        if (threadIdx.x == 0) out[slot + r] = static_cast<int32_t>(last.prior);
      }
      slot += take;
    }
    // Thread 0 wrote every slot: it reads them back for the threshold.
    if (threadIdx.x == 0)
      threshold = atss_threshold([&](int64_t i) { return prior_iou(a, box, out[i]); }, K);
    __syncthreads();
    const double thr = threshold;
    for (int64_t i = threadIdx.x; i < K; i += blockDim.x) {
      const int64_t p = out[i];
      if (p < 0) continue;
      const PriorBox pr = load_prior(a.priors, p, a.corners);
      const double v = iou(box, pr.x1, pr.y1, pr.x2, pr.y2, pr.area);
      if (!(v >= thr && atss_centre_inside(box, pr.cx, pr.cy))) out[i] = -1;
    }
    __syncthreads();  // threshold is rewritten for the next row
  }
}

__global__ void __launch_bounds__(kSelectBlock) atss_claim_kernel(AtssArgs a) {
  const int64_t K = a.plan.K;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    for (int64_t g = 0; g < a.G; ++g) {
      const int32_t* positives = a.candidates + (b * a.G + g) * K;
      const MatchBox box = match_box(a.gt_boxes + (b * a.G + g) * 4);
      for (int64_t i = threadIdx.x; i < K; i += blockDim.x) {
        const int64_t p = positives[i];
        if (p < 0) continue;
        const double v = prior_iou(a, box, p);
        int32_t* holder = a.matched_gt + b * a.P + p;
        if (*holder < 0 || v > prior_iou(a, match_box(a.gt_boxes + (b * a.G + *holder) * 4), p)) {
          *holder = static_cast<int32_t>(g);
          a.conf_target[b * a.P + p] = 1;
        }
      }
      __syncthreads();  // the next row sees this row's holders
    }
  }
}

}  // namespace

void launch_atss(const Options& o, const Inputs& in, const MatchBuffers& buf, cudaStream_t stream) {
  const AtssPlan plan = atss_plan(o, in);
  if (plan.levels() > kAtssCudaMaxLevels)
    throw Error(Status::kInternal, "launch_atss: more pyramid levels than the cuda path takes");
  AtssArgs a;
  a.B = in.B; a.P = in.P; a.G = in.G;
  a.priors = in.priors;
  a.corners = o.prior_format == PriorFormat::kCorners;
  a.gt_boxes = in.gt_boxes;
  a.gt_counts = in.gt_counts;
  a.gt_flags = in.gt_flags;
  a.ignore_priors = in.gt_flags != nullptr && o.ignore_iof_threshold > 0.0;
  a.ignore_iof_threshold = o.ignore_iof_threshold;
  a.plan.topk = plan.topk;
  a.plan.K = plan.K;
  a.plan.levels = static_cast<int>(plan.levels());
  for (int64_t l = 0; l <= plan.levels(); ++l) a.plan.begin[l] = plan.begin[l];
  a.candidates = buf.atss_candidates;
  a.conf_target = buf.conf_target;
  a.matched_gt = buf.matched_gt;

  const dim3 grid(static_cast<unsigned>((in.P + kBlock - 1) / kBlock), grid_images(in.B));
  atss_init_kernel<<<grid, kBlock, 0, stream>>>(a);
  check_launch("atss_init_kernel");
  if (in.G == 0 || plan.K == 0) return;
  const int64_t rows = in.B * in.G;
  atss_select_kernel<<<static_cast<unsigned>(rows < 65535 * 16 ? rows : 65535 * 16), kSelectBlock, 0, stream>>>(a);
  check_launch("atss_select_kernel");
  atss_claim_kernel<<<grid_images(in.B), kSelectBlock, 0, stream>>>(a);
  check_launch("atss_claim_kernel");
}

}  // namespace cuda
}  // namespace mbx
