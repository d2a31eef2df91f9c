// force_match = BIPARTITE on the device (Caffe's MatchBBox, docs/SPEC.md
// §2.3): the greedy bipartite matching of bipartite_match (match_scalar.cpp),
// decision for decision. Compiled with --fmad=false; the IoUs are the
// float64 ones of match_math.h, so every pair is the one the cpu paths take.
//
// bipartite_kernel: one block per image (the greedy rounds are sequential).
//  1. For each used GT row j (ascending), a block-wide argmax over the
//     priors of IoU > kBipartiteMinIou: cand[j] = (IoU, lowest prior
//     reaching it), or none.
//  2. Up to G rounds: a block-wide argmax over the GTs not done of
//     (cand IoU desc, cand prior asc, j asc) picks the pair; the prior is
//     marked used and becomes positive with that GT (state 1, matched row);
//     every GT whose candidate was that prior recomputes it over the unused
//     priors (step 1's argmax).
// Work per image: O(G P) for step 1, O(G^2) for the picks, O(P) per
// recomputed candidate (at most G per round: O(G^2 P) in the worst case,
// about G P when the GTs' best priors differ). match_finalize_kernel then
// turns the states into targets as for the other force_match modes.
#include "common/cuda_util.cuh"
#include "match/match.h"
#include "match/match_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kBipBlock = 512;
constexpr int kBipWarps = kBipBlock / 32;

struct BipArgs {
  int64_t B, P, G;
  const float* priors;
  const float* gt_boxes;
  const int32_t* gt_counts;
  const int32_t* gt_flags;  // null: no ignore regions
  bool ignore_priors;       // gt_flags and ignore_iof_threshold > 0
  double ignore_iof_threshold;
  bool corners;
  int32_t* conf_target;  // [B,P] matching state (match_best_gt_kernel's), 1 for the pairs
  int32_t* matched_gt;   // [B,P] best GT row, the pair's row for the pairs
  double* cand_iou;      // [B,G] scratch
  int32_t* cand_prior;   // [B,G] scratch: -1 = no candidate / done
  uint8_t* prior_used;   // [B,P] scratch, zeroed by the launcher
};

// A candidate (value v, prior p, GT j); p < 0: none. `better` is the total
// order of both argmaxes: larger v, then lower p, then lower j.
struct Cand {
  double v;
  int64_t p;
  int j;
};

__device__ __forceinline__ bool better(const Cand& x, const Cand& y) {
  if (x.p < 0) return false;
  if (y.p < 0) return true;
  if (x.v != y.v) return x.v > y.v;
  if (x.p != y.p) return x.p < y.p;
  return x.j < y.j;
}

// The block's best candidate, broadcast to every thread. Starts and ends
// with a barrier, so shared and global writes made before it are visible
// after it.
__device__ __forceinline__ Cand block_best(Cand c, Cand* s_warp, Cand* s_out) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    Cand o;
    o.v = __shfl_xor_sync(0xffffffffu, c.v, off);
    o.p = __shfl_xor_sync(0xffffffffu, c.p, off);
    o.j = __shfl_xor_sync(0xffffffffu, c.j, off);
    if (better(o, c)) c = o;
  }
  const int t = threadIdx.x;
  __syncthreads();
  if ((t & 31) == 0) s_warp[t >> 5] = c;
  __syncthreads();
  if (t == 0) {
    Cand best = s_warp[0];
    for (int w = 1; w < kBipWarps; ++w)
      if (better(s_warp[w], best)) best = s_warp[w];
    *s_out = best;
  }
  __syncthreads();
  return *s_out;
}

// Step 1 for GT box g: the largest IoU > kBipartiteMinIou over the unused
// priors, ties to the lowest prior (each thread scans its priors in
// ascending order with a strict >, the block combines by `better`).
__device__ __forceinline__ Cand best_unused(const BipArgs& a, const uint8_t* used, const MatchBox& g,
                                            Cand* s_warp, Cand* s_out) {
  Cand c{kBipartiteMinIou, -1, 0};
  for (int64_t p = threadIdx.x; p < a.P; p += kBipBlock) {
    if (used[p]) continue;
    const PriorBox pr = load_prior(a.priors, p, a.corners);
    // Disjoint boxes have IoU +0 <= kBipartiteMinIou: iou_or_zero skips them exactly.
    if (!overlaps(g, pr.x1, pr.y1, pr.x2, pr.y2)) continue;
    const double v = iou_or_zero(g, pr);
    if (v > c.v) { c.v = v; c.p = p; }
  }
  return block_best(c, s_warp, s_out);
}

__global__ void __launch_bounds__(kBipBlock) bipartite_kernel(BipArgs a) {
  __shared__ Cand s_warp[kBipWarps];
  __shared__ Cand s_out;
  const int t = threadIdx.x;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    const int n = gt_count_clamped(a.gt_counts, b, a.G);
    const float* boxes = a.gt_boxes + b * a.G * 4;
    const uint8_t* used = a.prior_used + b * a.P;
    double* cv = a.cand_iou + b * a.G;
    int32_t* cp = a.cand_prior + b * a.G;
    // 0. priors in ignore regions take no part (docs/SPEC.md §2.7): marked
    //    used, so no GT's candidate is one of them.
    if (a.ignore_priors) {
      for (int64_t p = t; p < a.P; p += kBipBlock)
        if (prior_in_ignore_region(a.gt_boxes, a.gt_flags, b, a.G, n, load_prior(a.priors, p, a.corners),
                                   a.ignore_iof_threshold))
          a.prior_used[b * a.P + p] = 1;
      __syncthreads();
    }
    // 1. every used row's candidate (rows that fail gt_row_valid are padding,
    //    ignore regions are never matched)
    for (int j = 0; j < n; ++j) {
      if (!gt_row_valid(boxes + 4 * j) || gt_row_ignore(a.gt_flags, b * a.G + j)) {  // uniform
        if (t == 0) cp[j] = -1;
        continue;
      }
      const Cand c = best_unused(a, used, match_box(boxes + 4 * j), s_warp, &s_out);
      if (t == 0) { cv[j] = c.v; cp[j] = static_cast<int32_t>(c.p); }
    }
    __syncthreads();
    // 2. the greedy rounds
    for (int round = 0; round < n; ++round) {
      Cand mine{0.0, -1, 0};
      for (int j = t; j < n; j += kBipBlock) {
        const Cand c{cv[j], cp[j], j};
        if (better(c, mine)) mine = c;
      }
      const Cand pick = block_best(mine, s_warp, &s_out);
      if (pick.p < 0) break;  // no overlapping pair left (uniform)
      const int64_t p = pick.p;
      if (t == 0) {
        cp[pick.j] = -1;  // done
        a.prior_used[b * a.P + p] = 1;
        a.conf_target[b * a.P + p] = 1;
        a.matched_gt[b * a.P + p] = pick.j;
      }
      __syncthreads();
      for (int j = 0; j < n; ++j) {
        if (cp[j] != p) continue;  // uniform: cp[j] is only written below, by thread 0
        const Cand c = best_unused(a, used, match_box(boxes + 4 * j), s_warp, &s_out);
        if (t == 0) { cv[j] = c.v; cp[j] = static_cast<int32_t>(c.p); }
        __syncthreads();
      }
    }
    __syncthreads();  // the shared candidates are reused by the next image
  }
}

}  // namespace

void launch_bipartite(const Options& o, const Inputs& in, const MatchBuffers& buf,
                      cudaStream_t stream) {
  BipArgs a;
  a.B = in.B; a.P = in.P; a.G = in.G;
  a.priors = in.priors;
  a.gt_boxes = in.gt_boxes;
  a.gt_counts = in.gt_counts;
  a.gt_flags = in.gt_flags;
  a.ignore_priors = in.gt_flags != nullptr && o.ignore_iof_threshold > 0.0;
  a.ignore_iof_threshold = o.ignore_iof_threshold;
  a.corners = o.prior_format == PriorFormat::kCorners;
  a.conf_target = buf.conf_target;
  a.matched_gt = buf.matched_gt;
  // The candidates reuse the BEST_PRIOR_PER_GT scratch ([B*G] of 8 and 4
  // bytes), which BIPARTITE does not need.
  a.cand_iou = reinterpret_cast<double*>(buf.gt_max);
  a.cand_prior = buf.gt_arg;
  a.prior_used = buf.prior_used;
  MBX_CUDA_CHECK(cudaMemsetAsync(buf.prior_used, 0, static_cast<std::size_t>(in.B * in.P), stream));
  bipartite_kernel<<<grid_images(in.B), kBipBlock, 0, stream>>>(a);
  check_launch("bipartite_kernel");
}

}  // namespace cuda
}  // namespace mbx
