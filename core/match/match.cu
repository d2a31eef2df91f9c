// Matching on the device (docs/SPEC.md §2). Compiled with --fmad=false, and
// the IoU arithmetic uses explicit _rn intrinsics (match_math.h): the
// decisions must be bit-identical to match_scalar.cpp.
//
// Per image b (ignore regions, docs/SPEC.md §2.7: each kernel that needs it
// recomputes whether its prior lies in one, prior_in_ignore_region; such a
// prior is -1 and takes part in no maximum and no forced match):
//  1. match_best_gt_kernel: one thread per prior computes IoU[g,p] in
//     float64 against the image's GT rows (tiled through shared memory),
//     keeps best_gt[p] (strict >, so ties go to the lowest g) and reduces
//     max_p IoU[g,p] per GT with a 64-bit atomicMax on an order-preserving
//     key of the double (max is order-independent: deterministic).
//  2. (force_match != NONE) match_force_scan_kernel recomputes the same
//     IoUs and compares them with that exact maximum: LOW_QUALITY marks the
//     prior positive; BEST_PRIOR_PER_GT takes atomicMin over p (lowest p
//     wins a tie, deterministic).
//  3. (BEST_PRIOR_PER_GT) match_force_apply_kernel applies g = 0..G-1 in
//     order per image (a warp per image), so a later GT overwrites:
//     highest g wins.
//  (BIPARTITE) bipartite.cu instead of 2-3: Caffe's greedy pairs.
//  (assigner = ATSS: atss.cu's launch_atss replaces steps 1-3.)
//  4. match_finalize_kernel turns (state, best_gt) into conf_target,
//     matched_gt, loc_target and counts positives (integer atomics).
#include "common/cuda_util.cuh"
#include "encode/encode.h"
#include "match/match_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kGtTile = 64;
constexpr int kArgNone = 0x7f7f7f7f;  // cudaMemset byte 0x7f: "no prior reached the max"

// gt_max holds ordered_bits (common/hd.h) of each GT's maximal IoU, so that
// a 64-bit integer atomicMax finds the exact maximum. 0 is never the key of
// a non-NaN value, so 0 means "no IoU seen".
constexpr unsigned long long kKeyZero = 0x8000000000000000ull;  // ordered_bits(+0.0)

struct MatchArgs {
  int64_t B, P, G, K;
  const float* priors;
  const float* gt_boxes;
  const int32_t* gt_labels;
  const int32_t* gt_counts;
  const int32_t* gt_flags;  // null: no ignore regions
  bool ignore_priors;       // gt_flags and ignore_iof_threshold > 0
  double ignore_iof_threshold;
  bool corners;
  double pos_threshold, neg_threshold;
  int force;  // ForceMatch
  EncodeParams enc;
  MatchBuffers buf;
};

struct GtTile {
  double x1[kGtTile], y1[kGtTile], x2[kGtTile], y2[kGtTile], area[kGtTile];
  int valid[kGtTile];
  unsigned long long red[kGtTile];  // per-block max key / min prior

  __device__ __forceinline__ MatchBox box(int j) const {
    return MatchBox{x1[j], y1[j], x2[j], y2[j], area[j]};
  }
};

// Loads rows [g0, g0+cnt) of image b into the tile; red[] reset to `init`.
__device__ __forceinline__ void load_gt_tile(const MatchArgs& a, int64_t b, int g0, int cnt,
                                             GtTile& t, unsigned long long init) {
  for (int j = threadIdx.x; j < cnt; j += blockDim.x) {
    const float* box = a.gt_boxes + (b * a.G + g0 + j) * 4;
    // Ignore regions are no matching candidates: not valid here.
    const bool ok = gt_row_valid(box) && !gt_row_ignore(a.gt_flags, b * a.G + g0 + j);
    const MatchBox g = match_box(box);
    t.valid[j] = ok;
    t.x1[j] = g.x1;
    t.y1[j] = g.y1;
    t.x2[j] = g.x2;
    t.y2[j] = g.y2;
    t.area[j] = ok ? g.area : 0.0;
    t.red[j] = init;
  }
}

__device__ __forceinline__ unsigned long long warp_max_u64(unsigned long long v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  // Two 32-bit warp reductions (REDUX): the high words, then the low words
  // of the lanes that hold the maximal high word.
  const unsigned hi = __reduce_max_sync(0xffffffffu, static_cast<unsigned>(v >> 32));
  const unsigned lo = __reduce_max_sync(
      0xffffffffu, static_cast<unsigned>(v >> 32) == hi ? static_cast<unsigned>(v) : 0u);
  return (static_cast<unsigned long long>(hi) << 32) | lo;
#else
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  return v;
#endif
}

// __reduce_min_sync where the chip has it (sm_80+), a shuffle tree on sm_75.
__device__ __forceinline__ unsigned warp_min_u32(unsigned v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  return __reduce_min_sync(0xffffffffu, v);
#else
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o < v ? o : v;
  }
  return v;
#endif
}

__global__ void __launch_bounds__(kBlock) match_best_gt_kernel(MatchArgs a) {
  __shared__ GtTile tile;
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = p < a.P;
  const int lane = threadIdx.x & 31;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    PriorBox pr{};
    if (active) pr = load_prior(a.priors, p, a.corners);
    const int n = gt_count_clamped(a.gt_counts, b, a.G);
    // An ignored prior's IoUs count as -1: it never reaches a GT's maximum.
    const bool ignored = active && a.ignore_priors &&
        prior_in_ignore_region(a.gt_boxes, a.gt_flags, b, a.G, n, pr, a.ignore_iof_threshold);
    const bool cand = active && !ignored;
    const bool warp_cand = __any_sync(0xffffffffu, cand);
    double best = -1.0;
    int best_g = -1, first_valid = -1;
    for (int g0 = 0; g0 < n; g0 += kGtTile) {
      const int cnt = n - g0 < kGtTile ? n - g0 : kGtTile;
      __syncthreads();
      load_gt_tile(a, b, g0, cnt, tile, 0ull);
      __syncthreads();
      for (int j = 0; j < cnt; ++j) {
        if (!tile.valid[j]) continue;  // uniform over the block
        if (first_valid < 0) first_valid = g0 + j;
        const MatchBox gt = tile.box(j);
        const bool ov = cand && overlaps(gt, pr.x1, pr.y1, pr.x2, pr.y2);
        unsigned long long key = 0;
        if (__any_sync(0xffffffffu, ov)) {
          if (cand) {
            const double v = iou_or_zero(gt, pr);
            if (v > best) { best = v; best_g = g0 + j; }  // strict: ties -> lowest g
            if (v == v) key = ordered_bits(v);
          }
          key = warp_max_u64(key);
        } else {
          // No lane overlaps: every candidate lane's IoU is exactly +0.
          if (cand && 0.0 > best) { best = 0.0; best_g = g0 + j; }
          key = warp_cand ? kKeyZero : 0;
        }
        if (lane == 0 && key != 0) atomicMax(&tile.red[j], key);
      }
      __syncthreads();
      for (int j = threadIdx.x; j < cnt; j += blockDim.x)
        if (tile.valid[j] && tile.red[j] != 0) atomicMax(&a.buf.gt_max[b * a.G + g0 + j], tile.red[j]);
    }
    if (active) {
      int32_t state, g;
      if (ignored) {  // the ignore test comes first, even without a usable GT
        state = -1;
        g = -1;
      } else if (first_valid < 0) {  // no usable GT: every prior negative
        state = 0;
        g = -1;
      } else {
        // match_image_scalar starts from arg 0 (the first used row): only
        // reachable when every IoU is NaN.
        g = best_g >= 0 ? best_g : first_valid;
        state = best >= a.pos_threshold ? 1 : (best < a.neg_threshold ? 0 : -1);
      }
      a.buf.conf_target[b * a.P + p] = state;
      a.buf.matched_gt[b * a.P + p] = g;
    }
  }
}

__global__ void __launch_bounds__(kBlock) match_force_scan_kernel(MatchArgs a) {
  __shared__ GtTile tile;
  __shared__ double gmax[kGtTile];
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = p < a.P;
  const bool low_quality = a.force == static_cast<int>(ForceMatch::kLowQuality);
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    PriorBox pr{};
    if (active) pr = load_prior(a.priors, p, a.corners);
    const int n = gt_count_clamped(a.gt_counts, b, a.G);
    const bool cand = active && !(a.ignore_priors && prior_in_ignore_region(
        a.gt_boxes, a.gt_flags, b, a.G, n, pr, a.ignore_iof_threshold));
    bool hit = false;
    for (int g0 = 0; g0 < n; g0 += kGtTile) {
      const int cnt = n - g0 < kGtTile ? n - g0 : kGtTile;
      __syncthreads();
      load_gt_tile(a, b, g0, cnt, tile, static_cast<unsigned long long>(kArgNone));
      for (int j = threadIdx.x; j < cnt; j += blockDim.x) {
        const unsigned long long k = a.buf.gt_max[b * a.G + g0 + j];
        if (k == 0) tile.valid[j] = 0;  // no comparable IoU: nothing can equal it
        gmax[j] = from_ordered_bits(k);
      }
      __syncthreads();
      for (int j = 0; j < cnt; ++j) {
        if (!tile.valid[j]) continue;
        // A warp with no overlapping lane has only IoUs of +0: nothing to do
        // unless the GT's maximum is 0 itself.
        const MatchBox gt = tile.box(j);
        const bool ov = active && overlaps(gt, pr.x1, pr.y1, pr.x2, pr.y2);
        if (!__any_sync(0xffffffffu, ov) && gmax[j] != 0.0) continue;
        bool eq = false;
        if (cand) {
          const double v = iou_or_zero(gt, pr);
          eq = v == gmax[j];
        }
        if (low_quality) {
          hit = hit || eq;
        } else {
          // lowest p reaching the max: warp min, then block, then global.
          const unsigned cand = eq ? static_cast<unsigned>(p) : static_cast<unsigned>(kArgNone);
          const unsigned m = warp_min_u32(cand);
          if ((threadIdx.x & 31) == 0 && m != static_cast<unsigned>(kArgNone))
            atomicMin(&tile.red[j], static_cast<unsigned long long>(m));
        }
      }
      __syncthreads();
      if (!low_quality)
        for (int j = threadIdx.x; j < cnt; j += blockDim.x)
          if (tile.red[j] != static_cast<unsigned long long>(kArgNone))
            atomicMin(&a.buf.gt_arg[b * a.G + g0 + j], static_cast<int>(tile.red[j]));
    }
    if (active && hit) a.buf.conf_target[b * a.P + p] = 1;  // keeps its own best_gt
  }
}

// One warp per image, GTs in chunks of 32 in order: a later GT overwrites
// an earlier one. Within a chunk, lanes whose GTs chose the same prior find
// each other with __match_any_sync and only the highest g writes; chunks are
// ordered by __syncwarp. The same result as walking g = 0..G-1 in order.
constexpr int kApplyWarps = 4;
__global__ void __launch_bounds__(kApplyWarps * 32) match_force_apply_kernel(MatchArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t b = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  if (b >= a.B) return;  // the whole warp leaves together
  const int n = gt_count_clamped(a.gt_counts, b, a.G);
  for (int g0 = 0; g0 < n; g0 += 32) {
    const int g = g0 + lane;
    long long p = -1;
    if (g < n && gt_row_valid(a.gt_boxes + (b * a.G + g) * 4) &&
        !gt_row_ignore(a.gt_flags, b * a.G + g)) {
      const int arg = a.buf.gt_arg[b * a.G + g];
      // No prior reached the max (all IoUs NaN, or every prior ignored):
      // the scalar loop's initial argmax, prior 0, unless it is ignored.
      const bool reached = arg >= 0 && arg < a.P;
      p = reached ? arg : 0;
      if (!reached && a.ignore_priors &&
          prior_in_ignore_region(a.gt_boxes, a.gt_flags, b, a.G, n,
                                 load_prior(a.priors, 0, a.corners), a.ignore_iof_threshold))
        p = -1;
    }
    const unsigned same = __match_any_sync(0xffffffffu, p);
    if (p >= 0 && 31 - __clz(same) == lane) {
      a.buf.conf_target[b * a.P + p] = 1;
      a.buf.matched_gt[b * a.P + p] = g;
    }
    __syncwarp();
  }
}

__global__ void __launch_bounds__(kBlock) match_finalize_kernel(MatchArgs a) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = p < a.P;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    bool positive = false;
    if (active) {
      const int64_t i = b * a.P + p;
      const int32_t state = a.buf.conf_target[i];
      const int32_t g = a.buf.matched_gt[i];
      int32_t conf_target = state == 0 ? 0 : -1, matched_gt = -1;
      if (state == 1 && g >= 0) {
        const int32_t label = a.gt_labels[b * a.G + g];
        if (label_valid(label, a.K)) {  // an out-of-range label makes the prior negative
          conf_target = label + 1;
          matched_gt = g;
          positive = true;
        } else {
          conf_target = 0;
        }
      }
      a.buf.conf_target[i] = conf_target;
      a.buf.matched_gt[i] = matched_gt;
      if (a.buf.loc_target) {
        float* loc_target = a.buf.loc_target + i * 4;
        if (positive) {
          double t[4];
          encode_prior(a.gt_boxes + (b * a.G + g) * 4, load_prior(a.priors, p, a.corners), a.enc, t);
          for (int k = 0; k < 4; ++k) loc_target[k] = static_cast<float>(t[k]);
        } else {
          for (int k = 0; k < 4; ++k) loc_target[k] = 0.f;
        }
      }
    }
    // Integer counts: atomics commute exactly, the result is deterministic.
    const unsigned ballot = __ballot_sync(0xffffffffu, positive);
    if ((threadIdx.x & 31) == 0 && ballot) atomicAdd(&a.buf.num_pos[b], __popc(ballot));
  }
}

}  // namespace

void launch_match(const Options& o, const Inputs& in, const MatchBuffers& buf,
                  cudaStream_t stream) {
  MatchArgs a;
  a.B = in.B; a.P = in.P; a.G = in.G; a.K = in.num_classes;
  a.priors = in.priors;
  a.gt_boxes = in.gt_boxes;
  a.gt_labels = in.gt_labels;
  a.gt_counts = in.gt_counts;
  // Ignore rows are never matched; they swallow priors only with a positive
  // threshold (docs/SPEC.md §2.7).
  a.gt_flags = in.gt_flags;
  a.ignore_priors = in.gt_flags != nullptr && o.ignore_iof_threshold > 0.0;
  a.ignore_iof_threshold = o.ignore_iof_threshold;
  a.corners = o.prior_format == PriorFormat::kCorners;
  a.pos_threshold = o.pos_threshold;
  a.neg_threshold = o.neg_threshold;
  a.force = static_cast<int>(o.force_match);
  a.enc = encode_params(o);
  a.buf = buf;

  MBX_CUDA_CHECK(cudaMemsetAsync(buf.num_pos, 0, sizeof(int32_t) * in.B, stream));
  if (in.G > 0) {
    MBX_CUDA_CHECK(cudaMemsetAsync(buf.gt_max, 0, sizeof(unsigned long long) * in.B * in.G, stream));
    MBX_CUDA_CHECK(cudaMemsetAsync(buf.gt_arg, 0x7f, sizeof(int32_t) * in.B * in.G, stream));
  }
  const dim3 grid(static_cast<unsigned>((in.P + kBlock - 1) / kBlock), grid_images(in.B));
  const bool atss = o.assigner == Assigner::kAtss;
  if (atss) {
    launch_atss(o, in, buf, stream);  // replaces the thresholds and forced matching
  } else {
    match_best_gt_kernel<<<grid, kBlock, 0, stream>>>(a);
    check_launch("match_best_gt_kernel");
  }
  if (!atss && o.force_match == ForceMatch::kBipartite) {
    if (in.G > 0) launch_bipartite(o, in, buf, stream);
  } else if (!atss && o.force_match != ForceMatch::kNone && in.G > 0) {
    match_force_scan_kernel<<<grid, kBlock, 0, stream>>>(a);
    check_launch("match_force_scan_kernel");
    if (o.force_match == ForceMatch::kBestPriorPerGt) {
      const unsigned nb = static_cast<unsigned>((in.B + kApplyWarps - 1) / kApplyWarps);
      match_force_apply_kernel<<<nb, kApplyWarps * 32, 0, stream>>>(a);
      check_launch("match_force_apply_kernel");
    }
  }
  match_finalize_kernel<<<grid, kBlock, 0, stream>>>(a);
  check_launch("match_finalize_kernel");
}

}  // namespace cuda
}  // namespace mbx
