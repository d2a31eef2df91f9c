// mining = HARD_EXAMPLE on the device (Caffe's MultiBoxLoss, docs/SPEC.md
// §4.6), the decisions of run_scalar (pipeline_scalar.cpp) with its
// formulas: the ranking key and the NMS test of hard_example_math.h, the
// softmax row statistics of softmax_ce.h, logistic_math.h, loc_loss.h and
// encode_math.h, all in float64. Compiled with --fmad=false (as the host,
// which has no FMA) so that the decoded boxes the NMS compares round alike.
//  1. he_score_kernel: per prior, loss = classification loss against
//     max(conf_target, 0) (SOFTMAX_CE or LOGISTIC) + the regression loss of
//     a positive; key = hard_example_rank_key(loss); with NMS, the decoded
//     prediction. O(C) per prior. Rows P..N-1 are padding (key 0: last).
//  2. he_sort_kernel: one block per image, a bitonic sort of (key, prior)
//     into ranking order (higher loss first, ties to the lower prior), in
//     place: O(N log^2 N) compare-exchanges, N = the power of two >= P,
//     log N (log N + 1) / 2 barriers; strides below 2048 run on tiles in
//     shared memory (SSD300: 6 of its 105 stages go through global memory).
//  3. he_select_kernel: one block per image. Without NMS the first
//     take = min(mining_sample_size, P) priors of the order are kept (O(P)).
//     With NMS the order is walked greedily: each candidate is tested
//     against the kept boxes in parallel (kept box s lives with thread
//     s % block, one __syncthreads_or per candidate) and kept when no IoU
//     exceeds the threshold, until `take` are kept: O(r take / block) per
//     thread and r barriers for the r candidates walked (r <= P). Then
//     weight = kept, loss_target = kept ? conf_target : -1 and num_pos =
//     the kept positives (what the loss normalises by).
#include "common/cuda_util.cuh"
#include "encode/encode.h"
#include "loc_loss/iou_loss_math.h"
#include "loc_loss/loc_loss.h"
#include "match/match_device.cuh"
#include "softmax_ce/hard_example_device.cuh"
#include "softmax_ce/hard_example_math.h"
#include "softmax_ce/logistic_math.h"
#include "softmax_ce/softmax_ce.h"

namespace mbx {
namespace cuda {
namespace {

constexpr int kSortBlock = 1024;
constexpr int64_t kSortTile = 2048;  // (key, prior) pairs per shared-memory tile: 24 KiB
constexpr int kSelectBlock = 256;

struct HEArgs {
  int64_t B, P, C, G, N, take;
  const float* priors;
  const float* gt_boxes;
  const int32_t* gt_counts;
  const int32_t* gt_flags;  // null: no ignore regions
  bool ignore_priors;       // gt_flags and ignore_iof_threshold > 0
  double ignore_iof_threshold;
  bool corners, logistic, l1, l2, nms;
  LocLoss loc_loss;
  double beta, nms_threshold;
  double div[4];  // loc_residual_divisors
  EncodeParams enc;
  HardExampleLaunch l;
};

template <typename TL, typename TC>
__global__ void __launch_bounds__(kBlock) he_score_kernel(HEArgs a, const TL* loc, const TC* conf) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= a.N) return;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const int64_t k = b * a.N + p;
    a.l.order[k] = static_cast<int32_t>(p);
    if (p >= a.P) {  // padding of the sort
      a.l.keys[k] = 0;
      continue;
    }
    const int64_t i = b * a.P + p;
    const int32_t t = a.l.conf_target[i];
    // Priors in ignore regions are not ranked (docs/SPEC.md §2.7): key 0,
    // which no loss has, sorts them after every candidate and the
    // selection stops there.
    if (t < 0 && a.ignore_priors &&
        prior_in_ignore_region(a.gt_boxes, a.gt_flags, b, a.G, gt_count_clamped(a.gt_counts, b, a.G),
                               load_prior(a.priors, p, a.corners), a.ignore_iof_threshold)) {
      a.l.keys[k] = 0;
      continue;
    }
    const int32_t target = t > 0 ? t : 0;  // ignored priors rank by the background loss
    const TC* x = conf + i * a.C;
    double v;
    if (a.logistic) {
      v = 0.0;
      for (int64_t c = 0; c < a.C; ++c) v += logistic_value(static_cast<double>(to_f(x[c])), c == target);
    } else {
      double m, l;
      softmax_row_stats_of<double>([x](int64_t c) { return static_cast<double>(to_f(x[c])); }, a.C, &m, &l);
      v = (m - static_cast<double>(to_f(x[target]))) + l;
    }
    if (t > 0 || a.nms) {
      const PriorBox pr = load_prior(a.priors, p, a.corners);
      if (t > 0 && is_iou_loss(a.loc_loss)) {  // the positive's IoU-family term (docs/SPEC.md §4.7)
        double d[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) d[j] = static_cast<double>(to_f(loc[i * 4 + j]));
        v += iou_loss_offsets(a.loc_loss, d, pr.cx, pr.cy, pr.w, pr.h, a.enc,
                              a.gt_boxes + (b * a.G + a.l.matched_gt[i]) * 4, nullptr);
      } else if (t > 0) {
        double tt[4];
        encode_prior(a.gt_boxes + (b * a.G + a.l.matched_gt[i]) * 4, pr, a.enc, tt);
#pragma unroll
        for (int j = 0; j < 4; ++j)
          v += loc_residual_value((static_cast<double>(to_f(loc[i * 4 + j])) - tt[j]) / a.div[j], a.l1, a.l2,
                                  a.beta);
      }
      if (a.nms) {
        float d[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) d[j] = to_f(loc[i * 4 + j]);
        decode_box(d, pr.cx, pr.cy, pr.w, pr.h, a.enc, a.l.boxes + i * 4);
      }
    }
    a.l.keys[k] = hard_example_rank_key(v);
  }
}

// One compare-exchange of the bitonic network: elements i < m (m = i ^ j) of
// a run that goes into ranking order when `up`, in reverse otherwise.
__device__ __forceinline__ void bitonic_step(uint64_t* key, int32_t* ord, int64_t i, int64_t m, bool up) {
  const uint64_t ki = key[i], km = key[m];
  const int32_t oi = ord[i], om = ord[m];
  if (hard_example_before(km, om, ki, oi) == up) {  // m belongs first in an `up` run
    key[i] = km; key[m] = ki;
    ord[i] = om; ord[m] = oi;
  }
}

// The stages j = j_hi, j_hi / 2, ..., 1 of merge size k on one tile of
// `len` elements (global index base + i) in shared memory: partners i ^ j
// stay inside a tile aligned to kSortTile.
__device__ __forceinline__ void tile_stages(uint64_t* sk, int32_t* so, int64_t base, int64_t len, int64_t k,
                                            int64_t j_hi) {
  for (int64_t j = j_hi; j > 0; j >>= 1) {
    for (int64_t i = threadIdx.x; i < len; i += kSortBlock) {
      const int64_t m = i ^ j;
      if (m > i) bitonic_step(sk, so, i, m, ((base + i) & k) == 0);
    }
    __syncthreads();
  }
}

// Bitonic sort of an image's N (key, prior) pairs into ranking order. The
// network is the textbook one (merge sizes k = 2..N, strides j = k/2..1);
// strides below kSortTile run on tiles in shared memory, larger ones in
// global memory, with a barrier after every stage.
__global__ void __launch_bounds__(kSortBlock) he_sort_kernel(HEArgs a) {
  __shared__ uint64_t sk[kSortTile];
  __shared__ int32_t so[kSortTile];
  const int t = threadIdx.x;
  const int64_t tile = a.N < kSortTile ? a.N : kSortTile;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    uint64_t* key = a.l.keys + b * a.N;
    int32_t* ord = a.l.order + b * a.N;
    // On every tile in turn: the stages of the merge sizes k = k0..k1 whose
    // strides are below the tile, min(k, tile)/2 down to 1.
    const auto on_tiles = [&](int64_t k0, int64_t k1) {
      for (int64_t base = 0; base < a.N; base += tile) {
        for (int64_t i = t; i < tile; i += kSortBlock) { sk[i] = key[base + i]; so[i] = ord[base + i]; }
        __syncthreads();
        for (int64_t k = k0; k <= k1; k <<= 1) tile_stages(sk, so, base, tile, k, (k < tile ? k : tile) >> 1);
        for (int64_t i = t; i < tile; i += kSortBlock) { key[base + i] = sk[i]; ord[base + i] = so[i]; }
        __syncthreads();
      }
    };
    on_tiles(2, tile);  // every merge size up to the tile, in shared memory
    for (int64_t k = 2 * tile; k <= a.N; k <<= 1) {
      for (int64_t j = k >> 1; j >= tile; j >>= 1) {
        for (int64_t i = t; i < a.N; i += kSortBlock) {
          const int64_t m = i ^ j;
          if (m > i) bitonic_step(key, ord, i, m, (i & k) == 0);
        }
        __syncthreads();
      }
      on_tiles(k, k);  // strides tile/2 .. 1 of this merge size
    }
  }
}

__global__ void __launch_bounds__(kSelectBlock) he_select_kernel(HEArgs a) {
  __shared__ int s_warp[kSelectBlock / 32];
  const int t = threadIdx.x;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    uint8_t* weight = a.l.weight + b * a.P;
    const int32_t* ord = a.l.order + b * a.N;
    const uint64_t* key = a.l.keys + b * a.N;  // key 0: not a candidate (sorted last)
    for (int64_t p = t; p < a.P; p += kSelectBlock) weight[p] = 0;
    __syncthreads();
    if (!a.nms) {
      for (int64_t r = t; r < a.take; r += kSelectBlock)
        if (key[r] != 0) weight[ord[r]] = 1;
    } else {
      const float* boxes = a.l.boxes + b * a.P * 4;
      int32_t* kept = a.l.kept + b * a.P;
      int64_t n = 0;  // kept so far: the same in every thread
      for (int64_t r = 0; r < a.P && n < a.take && key[r] != 0; ++r) {
        const int32_t p = ord[r];
        const MatchBox cand = match_box(boxes + 4 * p);
        int hit = 0;
        for (int64_t s = t; s < n; s += kSelectBlock)
          if (nms_suppresses(cand, match_box(boxes + 4 * kept[s]), a.nms_threshold)) { hit = 1; break; }
        if (!__syncthreads_or(hit)) {
          if (t == n % kSelectBlock) kept[n] = p;  // read back only by this thread
          if (t == 0) weight[p] = 1;
          ++n;
        }
      }
    }
    __syncthreads();
    int cnt = 0;
    for (int64_t p = t; p < a.P; p += kSelectBlock) {
      const int64_t i = b * a.P + p;
      const int32_t c = a.l.conf_target[i];
      const bool k = weight[p] != 0;
      a.l.loss_target[i] = k ? c : -1;
      cnt += (k && c > 0) ? 1 : 0;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) cnt += __shfl_xor_sync(0xffffffffu, cnt, off);
    if ((t & 31) == 0) s_warp[t >> 5] = cnt;
    __syncthreads();
    if (t == 0) {
      int total = 0;
      for (int w = 0; w < kSelectBlock / 32; ++w) total += s_warp[w];
      a.l.num_pos[b] = total;
    }
    __syncthreads();  // s_warp is reused by the next image
  }
}

template <typename TL, typename TC>
void launch_score(const HEArgs& a, const TL* loc, const TC* conf, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((a.N + kBlock - 1) / kBlock), grid_images(a.B));
  he_score_kernel<TL, TC><<<grid, kBlock, 0, stream>>>(a, loc, conf);
}

template <typename TL>
void launch_score_conf(const HEArgs& a, const Inputs& in, const TL* loc, cudaStream_t stream) {
  switch (in.conf_dtype) {
    case DType::kF32: launch_score(a, loc, static_cast<const float*>(in.conf), stream); break;
    case DType::kF16: launch_score(a, loc, static_cast<const __half*>(in.conf), stream); break;
    case DType::kBF16: launch_score(a, loc, static_cast<const __nv_bfloat16*>(in.conf), stream); break;
    default:
      throw Error(Status::kUnsupported,
                  std::string("conf: dtype ") + dtype_name(in.conf_dtype) + " is not supported on CUDA");
  }
}

}  // namespace

int64_t hard_example_sort_len(int64_t P) {
  int64_t n = 1;
  while (n < P) n <<= 1;
  return n;
}

void launch_hard_example(const Options& o, const Inputs& in, const HardExampleLaunch& l,
                         cudaStream_t stream) {
  HEArgs a;
  a.B = in.B; a.P = in.P; a.C = in.C; a.G = in.G;
  a.N = hard_example_sort_len(in.P);
  a.take = o.mining_sample_size < in.P ? static_cast<int64_t>(o.mining_sample_size) : in.P;
  a.priors = in.priors;
  a.gt_boxes = in.gt_boxes;
  a.gt_counts = in.gt_counts;
  a.gt_flags = in.gt_flags;
  a.ignore_priors = in.gt_flags != nullptr && o.ignore_iof_threshold > 0.0;
  a.ignore_iof_threshold = o.ignore_iof_threshold;
  a.corners = o.prior_format == PriorFormat::kCorners;
  a.logistic = o.conf_loss == ConfLoss::kLogistic;
  a.l1 = o.loc_is_l1();
  a.l2 = o.loc_loss == LocLoss::kL2;
  a.loc_loss = o.loc_loss;
  a.nms = o.mining_nms_threshold > 0.0;
  a.beta = o.smooth_l1_beta;
  a.nms_threshold = o.mining_nms_threshold;
  loc_residual_divisors(o, a.div);
  a.enc = encode_params(o);
  a.l = l;
  switch (in.loc_dtype) {
    case DType::kF32: launch_score_conf(a, in, static_cast<const float*>(in.loc), stream); break;
    case DType::kF16: launch_score_conf(a, in, static_cast<const __half*>(in.loc), stream); break;
    case DType::kBF16: launch_score_conf(a, in, static_cast<const __nv_bfloat16*>(in.loc), stream); break;
    default:
      throw Error(Status::kUnsupported,
                  std::string("loc: dtype ") + dtype_name(in.loc_dtype) + " is not supported on CUDA");
  }
  check_launch("he_score_kernel");
  he_sort_kernel<<<grid_images(in.B), kSortBlock, 0, stream>>>(a);
  check_launch("he_sort_kernel");
  he_select_kernel<<<grid_images(in.B), kSelectBlock, 0, stream>>>(a);
  check_launch("he_select_kernel");
}

}  // namespace cuda
}  // namespace mbx
