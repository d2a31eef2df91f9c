// conf_loss = LOGISTIC on the device (Caffe's SigmoidCrossEntropyLoss over
// the C columns against the one-hot target, column 0 = background;
// docs/SPEC.md §4.6). The per-logit formulas are logistic_math.h's, in
// float64, as on the cpu paths; sums are float64 per-block trees.
//  1. (MAX_NEGATIVE) logistic_key_kernel: per negative prior, the
//     background loss sum_c logistic_value(x_c, c == 0) as mining_rank_key
//     (mining_math.h); then softmax_ce.cu's mine_kernel selects the
//     negatives exactly as for SOFTMAX_CE (launch_mining). Under
//     HARD_EXAMPLE the weights come from hard_example.cu instead.
//  2. logistic_value_kernel: per prior, weight * sum_c logistic_value(x_c,
//     c == target), per-block float64 partials.
//  3. logistic_grad_kernel: element-wise logistic_grad * weight * scale * up.
// Work: O(P C) per image for each of 1-3, plus the O(P) selection.
#include "common/cuda_util.cuh"
#include "softmax_ce/logistic_math.h"
#include "softmax_ce/mining_math.h"
#include "softmax_ce/softmax_ce_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kValueItemsPerThread = 2;
constexpr int kGradItemsPerThread = 8;

struct LogArgs {
  int64_t B, P, C;
  SoftmaxCELaunch l;
};

// sum_c logistic_value(x_c, c == target) of one row, in column order.
template <typename TC>
__device__ __forceinline__ double logistic_row(const TC* x, int64_t C, int32_t target) {
  double sum = 0.0;
  for (int64_t c = 0; c < C; ++c) sum += logistic_value(static_cast<double>(to_f(x[c])), c == target);
  return sum;
}

template <typename TC>
__global__ void __launch_bounds__(kBlock) logistic_key_kernel(LogArgs a, const TC* conf) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= a.P) return;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const int64_t i = b * a.P + p;
    a.l.keys[i] = a.l.conf_target[i] == 0
                      ? mining_rank_key(static_cast<float>(logistic_row(conf + i * a.C, a.C, 0)))
                      : 0u;
  }
}

template <typename TC>
__global__ void __launch_bounds__(kBlock) logistic_value_kernel(LogArgs a, const TC* conf) {
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
      sum += static_cast<double>(w) * logistic_row(conf + i * a.C, a.C, target);
    }
    const double total = block_sum<kBlock>(sum, sh);
    if (threadIdx.x == 0) a.l.partials[b * gridDim.x + blockIdx.x] = total;
  }
}

template <typename TC>
__global__ void __launch_bounds__(kBlock) logistic_grad_kernel(LogArgs a, const TC* conf, int nblocks) {
  TC* grad = static_cast<TC*>(a.l.grad_conf);
  const double up = read_upstream(a.l.grad_loss, a.l.grad_loss_f64, 1);
  const int64_t n = a.P * a.C;
  const int64_t stride = static_cast<int64_t>(nblocks) * blockDim.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const double scale = a.l.conf_scale[b] * up;
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
      const int64_t p = e / a.C, c = e - p * a.C;
      const int64_t i = b * a.P + p;
      const uint8_t w = a.l.weight[i];
      float v = 0.f;
      if (w != 0) {
        const int32_t target = a.l.conf_target[i] > 0 ? a.l.conf_target[i] : 0;
        const double x = static_cast<double>(to_f(conf[b * n + e]));
        v = static_cast<float>(logistic_grad(x, c == target) * (static_cast<double>(w) * scale));
      }
      grad[b * n + e] = from_f<TC>(v);
    }
  }
}

template <typename TC>
void launch_typed(const Options& o, const Inputs& in, const LogArgs& a, const TC* conf,
                  cudaStream_t stream) {
  const unsigned gy = grid_images(a.B);
  if (a.l.mine) {
    const dim3 grid(static_cast<unsigned>((a.P + kBlock - 1) / kBlock), gy);
    logistic_key_kernel<TC><<<grid, kBlock, 0, stream>>>(a, conf);
    check_launch("logistic_key_kernel");
    launch_mining(o, in, a.l, stream);
  }
  if (a.l.want_value) {
    logistic_value_kernel<TC><<<dim3(static_cast<unsigned>(a.l.nblocks), gy), kBlock, 0, stream>>>(a, conf);
    check_launch("logistic_value_kernel");
  }
  if (a.l.grad_conf) {
    const int nb = blocks_per_image(a.P * a.C, kGradItemsPerThread);
    logistic_grad_kernel<TC><<<dim3(static_cast<unsigned>(nb), gy), kBlock, 0, stream>>>(a, conf, nb);
    check_launch("logistic_grad_kernel");
  }
}

}  // namespace

int logistic_blocks(int64_t P) { return blocks_per_image(P, kValueItemsPerThread); }

void launch_logistic(const Options& o, const Inputs& in, const SoftmaxCELaunch& l,
                     cudaStream_t stream) {
  LogArgs a;
  a.B = in.B; a.P = in.P; a.C = in.C;
  a.l = l;
  switch (in.conf_dtype) {
    case DType::kF32: launch_typed(o, in, a, static_cast<const float*>(in.conf), stream); break;
    case DType::kF16: launch_typed(o, in, a, static_cast<const __half*>(in.conf), stream); break;
    case DType::kBF16: launch_typed(o, in, a, static_cast<const __nv_bfloat16*>(in.conf), stream); break;
    default:
      throw Error(Status::kUnsupported,
                  std::string("conf: dtype ") + dtype_name(in.conf_dtype) + " is not supported on CUDA");
  }
}

}  // namespace cuda
}  // namespace mbx
