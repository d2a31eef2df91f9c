// Encoding-side kernels of the CUDA path: the regression loss on the
// encoded targets (loc_loss.h; the targets are re-encoded in float64 from
// matched_gt instead of being stored) or, for GIOU / DIOU / CIOU, on the
// decoded boxes (iou_loss_math.h, float64 as on the CPU paths), and
// decoding (encode_math.h decode_box).
#include "common/cuda_util.cuh"
#include "encode/encode.h"
#include "encode/encode_device.cuh"
#include "loc_loss/iou_loss_math.h"
#include "loc_loss/loc_loss.h"
#include "match/match_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kLocItemsPerThread = 2;  // priors per thread

struct LocArgs {
  int64_t B, P, G;
  const float* priors;
  const float* gt_boxes;
  bool corners, l1, l2, iou;
  LocLoss kind;
  double beta;
  double div[4];  // loc_residual_divisors: 1 unless encode_variance_in_target
  EncodeParams enc;
  LocLossLaunch l;
};

template <typename TL>
__global__ void __launch_bounds__(kBlock) loc_loss_kernel(LocArgs a, const TL* loc) {
  __shared__ double sh[kBlock];
  TL* grad = static_cast<TL*>(a.l.grad_loc);
  const double up = grad ? read_upstream(a.l.grad_loss, a.l.grad_loss_f64, 0) : 1.0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const double scale = a.l.loc_scale[b] * up;
    double sum = 0.0;
    for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < a.P;
         p += stride) {
      const int64_t i = b * a.P + p;
      if (a.l.conf_target[i] > 0 && a.iou) {
        const PriorBox pr = load_prior(a.priors, p, a.corners);
        const double d[4] = {to_f(loc[i * 4]), to_f(loc[i * 4 + 1]), to_f(loc[i * 4 + 2]), to_f(loc[i * 4 + 3])};
        double g[4];
        sum += iou_loss_offsets(a.kind, d, pr.cx, pr.cy, pr.w, pr.h, a.enc,
                                a.gt_boxes + (b * a.G + a.l.matched_gt[i]) * 4, grad ? g : nullptr);
        if (grad)
#pragma unroll
          for (int k = 0; k < 4; ++k) grad[i * 4 + k] = from_f<TL>(static_cast<float>(g[k] * scale));
      } else if (a.l.conf_target[i] > 0) {
        double t[4];
        encode_prior(a.gt_boxes + (b * a.G + a.l.matched_gt[i]) * 4, load_prior(a.priors, p, a.corners),
                     a.enc, t);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const double d = (static_cast<double>(to_f(loc[i * 4 + k])) - t[k]) / a.div[k];
          sum += a.l2 ? 0.5 * d * d : loc_loss_value(d, a.l1, a.beta);
          if (grad)
            grad[i * 4 + k] = from_f<TL>(static_cast<float>(
                (a.l2 ? d : loc_loss_grad(d, a.l1, a.beta)) / a.div[k] * scale));
        }
      } else if (grad) {
#pragma unroll
        for (int k = 0; k < 4; ++k) grad[i * 4 + k] = from_f<TL>(0.f);
      }
    }
    const double total = block_sum<kBlock>(sum, sh);
    if (threadIdx.x == 0) a.l.partials[b * gridDim.x + blockIdx.x] = total;
  }
}

__global__ void __launch_bounds__(kBlock) decode_kernel(int64_t n, int64_t P, const float* priors,
                                                        bool corners, EncodeParams e,
                                                        const float* loc, float* boxes) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const PriorBox pr = load_prior(priors, i % P, corners);
    decode_box(loc + i * 4, pr.cx, pr.cy, pr.w, pr.h, e, boxes + i * 4);
  }
}

}  // namespace

int loc_loss_blocks(int64_t P) { return blocks_per_image(P, kLocItemsPerThread); }

void launch_loc_loss(const Options& o, const Inputs& in, const LocLossLaunch& l,
                     cudaStream_t stream) {
  LocArgs a;
  a.B = in.B; a.P = in.P; a.G = in.G;
  a.priors = in.priors;
  a.gt_boxes = in.gt_boxes;
  a.corners = o.prior_format == PriorFormat::kCorners;
  a.l1 = o.loc_is_l1();
  a.l2 = o.loc_loss == LocLoss::kL2;
  a.iou = is_iou_loss(o.loc_loss);
  a.kind = o.loc_loss;
  a.beta = o.smooth_l1_beta;
  loc_residual_divisors(o, a.div);
  a.enc = encode_params(o);
  a.l = l;
  const dim3 grid(static_cast<unsigned>(l.nblocks), grid_images(in.B));
  switch (in.loc_dtype) {
    case DType::kF32:
      loc_loss_kernel<float><<<grid, kBlock, 0, stream>>>(a, static_cast<const float*>(in.loc));
      break;
    case DType::kF16:
      loc_loss_kernel<__half><<<grid, kBlock, 0, stream>>>(a, static_cast<const __half*>(in.loc));
      break;
    case DType::kBF16:
      loc_loss_kernel<__nv_bfloat16>
          <<<grid, kBlock, 0, stream>>>(a, static_cast<const __nv_bfloat16*>(in.loc));
      break;
    default:
      throw Error(Status::kUnsupported,
                  std::string("loc: dtype ") + dtype_name(in.loc_dtype) + " is not supported on CUDA");
  }
  check_launch("loc_loss_kernel");
}

void launch_decode(const Options& o, const Inputs& in, const float* loc, float* boxes,
                   cudaStream_t stream) {
  const EncodeParams e = encode_params(o);
  const int64_t n = in.B * in.P;
  int64_t nb = (n + kBlock - 1) / kBlock;
  if (nb > 65535) nb = 65535;
  decode_kernel<<<static_cast<unsigned>(nb), kBlock, 0, stream>>>(
      n, in.P, in.priors, o.prior_format == PriorFormat::kCorners, e, loc, boxes);
  check_launch("decode_kernel");
}

}  // namespace cuda
}  // namespace mbx
