// Softmax cross-entropy with hard negative mining on the device (SSD,
// Liu et al. 2016; docs/SPEC.md §4), float32 math, float64 sums.
//  1. ce_prep_kernel: per row, log-sum-exp shifted by the row's own max
//     (a sub-warp of W lanes per row, fixed lane order), stored; negatives
//     get mining_rank_key of ce_bg (mining_math.h): it orders like ranks_before.
//  2. mine_kernel (skipped when l.mine is false: HARD_EXAMPLE has set the
//     weights; also launched alone for LOGISTIC, launch_mining): one block per image. k = min(mining_quota, #negatives);
//     a 4-pass MSB radix select (8 bits per pass, shared histograms) finds
//     the k-th largest key T; negatives with key > T count, and among keys
//     == T the lowest prior indices (block scan in index order) fill the
//     rest: exactly "ce descending, ties to the lower index, NaN first",
//     O(P) per image. DOUBLE_COUNT_POSITIVES adds the first
//     (quota - #negatives) positives by index.
//  3. ce_value_kernel: per prior, weight * ((m - x[target]) + l), per-block
//     float64 tree sums (the same kernel for forward and fused calls).
//  4. ce_grad_kernel: element-wise (softmax - onehot) * weight * scale * up.
#include <cub/block/block_scan.cuh>

#include "common/cuda_util.cuh"
#include "softmax_ce/mining_math.h"
#include "softmax_ce/softmax_ce_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kMineBlock = 1024;
constexpr int kValueItemsPerThread = 2;
constexpr int kGradItemsPerThread = 8;

struct CEArgs {
  int64_t B, P, C;
  double ratio;
  bool clamp_num_neg, double_count;
  SoftmaxCELaunch l;
};

template <typename TC, int W>
__global__ void __launch_bounds__(kBlock) ce_prep_kernel(CEArgs a, const TC* conf) {
  constexpr int kRows = kBlock / W;
  const int lane = threadIdx.x % W;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / W;
  const bool active = row < a.P;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const int64_t i = b * a.P + row;
    const TC* x = conf + (active ? i : 0) * a.C;
    float m = -INFINITY;
    if (active)
      for (int64_t c = lane; c < a.C; c += W) {
        const float v = to_f(x[c]);
        m = v > m ? v : m;
      }
#pragma unroll
    for (int off = W / 2; off > 0; off >>= 1) {
      const float o = __shfl_xor_sync(0xffffffffu, m, off, W);
      m = o > m ? o : m;
    }
    // Row statistics as on the CPU (softmax_row_stats, softmax_ce.h):
    // m = max, l = log1p(r), r = sum over the non-maximal columns of
    // exp(x_c - m) + (#maximal - 1); then ce_t = (m - x_t) + l and
    // softmax_c = exp((x_c - m) - l) keep full relative precision (no
    // lse - x_t cancellation, no rounded lse subtracted from big logits).
    // +inf or NaN maxima: the unshifted IEEE log-sum-exp, l = 0. Every lane
    // runs the same loop so the shuffles below stay converged.
    const bool finite = isfinite(m);
    float r = 0.f, k = 0.f;
    if (active)
      for (int64_t c = lane; c < a.C; c += W) {
        const float v = to_f(x[c]);
        if (!finite) r += expf(v);
        else if (v == m) k += 1.f;
        else r += expf(v - m);  // a NaN logit makes r (and the loss) NaN
      }
#pragma unroll
    for (int off = W / 2; off > 0; off >>= 1) {
      r += __shfl_xor_sync(0xffffffffu, r, off, W);
      k += __shfl_xor_sync(0xffffffffu, k, off, W);
    }
    if (active && lane == 0) {
      const float mm = finite ? m : logf(r);
      const float l = finite ? log1pf(r + (k - 1.f)) : 0.f;
      a.l.row_max[i] = mm;
      a.l.row_log_sum[i] = l;
      a.l.keys[i] = a.l.conf_target[i] == 0 ? mining_rank_key((mm - to_f(x[0])) + l) : 0u;
    }
  }
}

// Block-wide sum of one int per thread (warp shuffles, then warp 0);
// every thread gets the total. Starts and ends with a barrier.
__device__ __forceinline__ long long block_count(int v, int* s_warp, long long* s_total) {
  const int t = threadIdx.x;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  __syncthreads();
  if ((t & 31) == 0) s_warp[t >> 5] = v;
  __syncthreads();
  if (t < 32) {
    long long w = t < static_cast<int>(blockDim.x >> 5) ? s_warp[t] : 0;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) w += __shfl_xor_sync(0xffffffffu, w, off);
    if (t == 0) *s_total = w;
  }
  __syncthreads();
  return *s_total;
}

// Adds 1 to hist[digit] for each lane with `in`; lanes with the same digit
// (CE values share their high bits, so most do) make one shared atomic. The
// whole warp must call it.
__device__ __forceinline__ void hist_add(int* hist, bool in, uint32_t digit) {
  const int lane = threadIdx.x & 31;
  const uint32_t d = in ? digit : 256u + lane;  // unique when out
  const unsigned same = __match_any_sync(0xffffffffu, d);
  if (in && __ffs(same) - 1 == lane) atomicAdd(&hist[d], __popc(same));
}

// The digit holding the remaining-th largest key, by warp 0: lane i owns
// bins 255-8i .. 248-8i (descending), a shuffle scan over the lanes' totals
// finds the lane, and that lane walks its 8 bins. Same result as walking
// d = 255..0 with cum + hist[d] >= remaining.
__device__ __forceinline__ void find_digit(const int* hist, long long remaining, int* s_digit,
                                           int* s_remaining, int* s_bin) {
  const int t = threadIdx.x;
  if (t >= 32) return;
  int cnt[8], own = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) { cnt[j] = hist[255 - 8 * t - j]; own += cnt[j]; }
  long long incl = own;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const long long o = __shfl_up_sync(0xffffffffu, incl, off);
    if (t >= off) incl += o;
  }
  const long long excl = incl - own;
  const unsigned hit = __ballot_sync(0xffffffffu, excl < remaining && incl >= remaining);
  const int owner = hit ? __ffs(hit) - 1 : 31;
  if (t == owner) {
    long long cum = excl;
    int digit = -1, bin = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      if (digit < 0 && cum + cnt[j] >= remaining) { digit = 255 - 8 * t - j; bin = cnt[j]; }
      if (digit < 0) cum += cnt[j];
    }
    if (digit < 0) digit = 0;  // not reachable (k < #negatives): the serial fallback
    *s_digit = digit;
    *s_remaining = static_cast<int>(remaining - cum);
    *s_bin = bin;
  }
}

// k, take_eq and extra of one image (see mine_kernel).
struct MineQuota {
  long long k, extra;
};
__device__ __forceinline__ MineQuota mine_quota(const CEArgs& a, int64_t b, long long n_neg) {
  const long long quota = mining_quota(a.ratio, a.clamp_num_neg, a.l.num_pos[b], a.P);
  MineQuota q;
  q.k = quota < 0 ? n_neg : (quota < n_neg ? quota : n_neg);
  q.extra = (a.double_count && quota > n_neg) ? quota - n_neg : 0;
  return q;
}

// The 4-pass MSB radix select over the keys a thread sees through
// `for_keys(f)` (f(key) for each); returns T and sets take_eq (how many of
// the keys == T are selected) and eq_total (how many keys == T there are).
template <typename ForKeys>
__device__ __forceinline__ uint32_t radix_select(long long k, long long n_neg, ForKeys for_keys,
                                                 int* hist, int* s_digit, int* s_remaining,
                                                 int* s_bin, long long* take_eq,
                                                 long long* eq_total) {
  *eq_total = 0;
  if (k == 0) { *take_eq = 0; return 0xffffffffu; }
  if (k == n_neg) { *take_eq = 0; return 0u; }  // every negative (key >= 1)
  uint32_t prefix = 0, mask = 0;
  long long remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = threadIdx.x; d < 256; d += blockDim.x) hist[d] = 0;
    __syncthreads();
    for_keys([&](uint32_t key) {
      hist_add(hist, key != 0u && (key & mask) == prefix, (key >> shift) & 255u);
    });
    __syncthreads();
    find_digit(hist, remaining, s_digit, s_remaining, s_bin);
    __syncthreads();
    prefix |= static_cast<uint32_t>(*s_digit) << shift;
    mask |= 255u << shift;
    remaining = *s_remaining;
    *eq_total = *s_bin;  // after the last pass: the keys equal to T
    __syncthreads();
  }
  *take_eq = remaining;
  return prefix;
}

// Weight of one prior from its ranks (see mine_kernel).
__device__ __forceinline__ uint8_t mine_weight(uint32_t key, int32_t c, uint32_t T, long long take_eq,
                                               long long extra, long long rank) {
  if (c > 0) return static_cast<uint8_t>(1 + ((rank & 0xffffffffll) < extra ? 1 : 0));
  if (key == 0u) return 0;
  const bool eq = key == T && take_eq > 0;
  return (key > T || (eq && (rank >> 32) < take_eq)) ? 1 : 0;
}

// One block per image: the keys are read from global memory (L2) on every
// pass and the ranks scanned in chunks of kMineBlock priors. (A variant that
// kept 16 keys per thread in registers for P <= 16384 measured slower on an
// H100, 78 vs 51 us for SSD300 B=32: more warp matches per thread.)
__global__ void __launch_bounds__(kMineBlock) mine_kernel(CEArgs a) {
  using Scan = cub::BlockScan<long long, kMineBlock>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ int hist[256];
  __shared__ int s_warp[kMineBlock / 32];
  __shared__ int s_digit, s_remaining, s_bin;
  __shared__ long long s_total, s_carry;
  const int t = threadIdx.x;
  for (int64_t b = blockIdx.x; b < a.B; b += gridDim.x) {
    const uint32_t* keys = a.l.keys + b * a.P;
    const int32_t* conf_target = a.l.conf_target + b * a.P;
    uint8_t* weight = a.l.weight + b * a.P;
    int local = 0;
    for (int64_t p = t; p < a.P; p += kMineBlock) local += keys[p] != 0u;
    const long long n_neg = block_count(local, s_warp, &s_total);
    const MineQuota q = mine_quota(a, b, n_neg);
    long long take_eq, eq_total;
    // Every thread runs the same trip count, so warps stay converged for
    // hist_add.
    const uint32_t T = radix_select(
        q.k, n_neg,
        [&](auto f) {
          for (int64_t p0 = 0; p0 < a.P; p0 += kMineBlock) {
            const int64_t p = p0 + t;
            f(p < a.P ? keys[p] : 0u);
          }
        },
        hist, &s_digit, &s_remaining, &s_bin, &take_eq, &eq_total);

    // Without a partial tie at T (every key == T taken, or none) and without
    // positives counted twice, no rank is needed: one plain pass. That is
    // the usual case (continuous CE values rarely tie exactly).
    // (Rank 0 then gives every prior its weight: each key == T is taken.)
    if (q.extra == 0 && (take_eq == 0 || take_eq == eq_total)) {
      for (int64_t p = t; p < a.P; p += kMineBlock)
        weight[p] = mine_weight(keys[p], conf_target[p], T, take_eq, 0, 0);
      __syncthreads();  // the shared scalars are reused by the next image
      continue;
    }

    // Index-ordered pass: ranks among keys == T (high 32 bits) and among
    // positives (low 32 bits) by one 64-bit block scan per chunk.
    if (t == 0) s_carry = 0;
    __syncthreads();
    for (int64_t p0 = 0; p0 < a.P; p0 += kMineBlock) {
      const int64_t p = p0 + t;
      uint32_t key = 0;
      int32_t c = -1;
      if (p < a.P) { key = keys[p]; c = conf_target[p]; }
      const bool eq = key != 0u && key == T && take_eq > 0;
      const long long flag = (static_cast<long long>(eq) << 32) | static_cast<long long>(c > 0);
      long long excl, agg;
      Scan(scan_tmp).ExclusiveSum(flag, excl, agg);
      if (p < a.P) weight[p] = mine_weight(key, c, T, take_eq, q.extra, s_carry + excl);
      __syncthreads();
      if (t == 0) s_carry += agg;
      __syncthreads();
    }
  }
}

template <typename TC>
__global__ void __launch_bounds__(kBlock) ce_value_kernel(CEArgs a, const TC* conf) {
  __shared__ double sh[kBlock];
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    double sum = 0.0;
    for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < a.P;
         p += stride) {
      const int64_t i = b * a.P + p;
      const uint8_t w = a.l.weight[i];
      if (w == 0) continue;
      const int32_t target = a.l.conf_target[i] > 0 ? a.l.conf_target[i] : 0;
      sum += static_cast<double>(w) *
             static_cast<double>((a.l.row_max[i] - to_f(conf[i * a.C + target])) + a.l.row_log_sum[i]);
    }
    const double total = block_sum<kBlock>(sum, sh);
    if (threadIdx.x == 0) a.l.partials[b * gridDim.x + blockIdx.x] = total;
  }
}

template <typename TC>
__global__ void __launch_bounds__(kBlock) ce_grad_kernel(CEArgs a, const TC* conf, int nblocks) {
  TC* grad = static_cast<TC*>(a.l.grad_conf);
  const double up = read_upstream(a.l.grad_loss, a.l.grad_loss_f64, 1);
  const int64_t n = a.P * a.C;
  const bool n32 = n <= 0xffffffffll;
  const int64_t stride = static_cast<int64_t>(nblocks) * blockDim.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const double scale = a.l.conf_scale[b] * up;
    const TC* x = conf + b * n;
    TC* g = grad + b * n;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
      // 32-bit division when the image fits: this kernel is bandwidth-bound.
      const int64_t p = n32 ? static_cast<int64_t>(static_cast<uint32_t>(e) / static_cast<uint32_t>(a.C))
                            : e / a.C;
      const int64_t c = e - p * a.C;
      const int64_t i = b * a.P + p;
      const uint8_t w = a.l.weight[i];
      float v = 0.f;
      if (w != 0) {
        const int32_t target = a.l.conf_target[i] > 0 ? a.l.conf_target[i] : 0;
        const float z = (to_f(x[e]) - a.l.row_max[i]) - a.l.row_log_sum[i];  // log softmax
        const float sm = c == target ? expm1f(z) : expf(z);      // p - [c == target]
        v = static_cast<float>(static_cast<double>(sm) * (static_cast<double>(w) * scale));
      }
      g[e] = from_f<TC>(v);
    }
  }
}

template <typename TC>
void launch_typed(const CEArgs& a, const TC* conf, cudaStream_t stream) {
  const unsigned gy = grid_images(a.B);
  if (a.C <= 32) {
    constexpr int W = 8;
    const dim3 grid(static_cast<unsigned>((a.P + kBlock / W - 1) / (kBlock / W)), gy);
    ce_prep_kernel<TC, W><<<grid, kBlock, 0, stream>>>(a, conf);
  } else {
    constexpr int W = 32;
    const dim3 grid(static_cast<unsigned>((a.P + kBlock / W - 1) / (kBlock / W)), gy);
    ce_prep_kernel<TC, W><<<grid, kBlock, 0, stream>>>(a, conf);
  }
  check_launch("ce_prep_kernel");
  if (a.l.mine) {
    mine_kernel<<<grid_images(a.B), kMineBlock, 0, stream>>>(a);
    check_launch("mine_kernel");
  }
  if (a.l.want_value) {
    ce_value_kernel<TC><<<dim3(static_cast<unsigned>(a.l.nblocks), gy), kBlock, 0, stream>>>(a, conf);
    check_launch("ce_value_kernel");
  }
  if (a.l.grad_conf) {
    const int nb = blocks_per_image(a.P * a.C, kGradItemsPerThread);
    ce_grad_kernel<TC><<<dim3(static_cast<unsigned>(nb), gy), kBlock, 0, stream>>>(a, conf, nb);
    check_launch("ce_grad_kernel");
  }
}

CEArgs ce_args(const Options& o, const Inputs& in, const SoftmaxCELaunch& l) {
  CEArgs a;
  a.B = in.B; a.P = in.P; a.C = in.C;
  a.ratio = o.neg_pos_ratio;
  a.clamp_num_neg = o.clamp_num_neg;
  a.double_count = o.neg_overflow == NegOverflow::kDoubleCountPositives;
  a.l = l;
  return a;
}

}  // namespace

int softmax_ce_blocks(int64_t P) { return blocks_per_image(P, kValueItemsPerThread); }

void launch_mining(const Options& o, const Inputs& in, const SoftmaxCELaunch& l,
                   cudaStream_t stream) {
  mine_kernel<<<grid_images(in.B), kMineBlock, 0, stream>>>(ce_args(o, in, l));
  check_launch("mine_kernel");
}

void launch_softmax_ce(const Options& o, const Inputs& in, const SoftmaxCELaunch& l,
                       cudaStream_t stream) {
  const CEArgs a = ce_args(o, in, l);
  switch (in.conf_dtype) {
    case DType::kF32: launch_typed(a, static_cast<const float*>(in.conf), stream); break;
    case DType::kF16: launch_typed(a, static_cast<const __half*>(in.conf), stream); break;
    case DType::kBF16: launch_typed(a, static_cast<const __nv_bfloat16*>(in.conf), stream); break;
    default:
      throw Error(Status::kUnsupported,
                  std::string("conf: dtype ") + dtype_name(in.conf_dtype) + " is not supported on CUDA");
  }
}

}  // namespace cuda
}  // namespace mbx
