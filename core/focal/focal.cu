// Sigmoid focal loss on the device (Lin et al., eq. (5); focal.h), one
// thread per logit, float32 math, per-thread float64 sums reduced by a
// fixed block tree into per-block partials (deterministic, no atomics).
// Per logit: one exp, one reciprocal and a log1p polynomial (the CPU
// kernels' formulation), so the kernel stays bandwidth-bound; no
// cancellation, and |x| = 100 stays finite (SPEC §6.5).
#include "common/cuda_util.cuh"
#include "focal/focal_device.cuh"

namespace mbx {
namespace cuda {
namespace {

constexpr int kFocalItemsPerThread = 8;

struct FocalArgs {
  int64_t B, P, C;
  float alpha, gamma;
  bool gamma2;
  FocalLaunch l;
};

// log1p(e) for e in [0, 1], given r = 1/(1+e): the polynomial of the CPU
// kernels (common/simd_math_impl.h, fast_log1p_unit), so both paths round
// alike; about one ulp, far cheaper than log1pf.
__device__ __forceinline__ float log1p_unit(float e, float r) {
  const float u = 1.f + e;
  const bool big = u > 1.41421356237f;
  const float m = big ? u * 0.5f : u;
  const float k = big ? 1.f : 0.f;
  const float f = m - 1.f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = fmaf(y, f, -1.1514610310e-1f);
  y = fmaf(y, f, 1.1676998740e-1f);
  y = fmaf(y, f, -1.2420140846e-1f);
  y = fmaf(y, f, 1.4249322787e-1f);
  y = fmaf(y, f, -1.6668057665e-1f);
  y = fmaf(y, f, 2.0000714765e-1f);
  y = fmaf(y, f, -2.4999993993e-1f);
  y = fmaf(y, f, 3.3333331174e-1f);
  y = y * f * z;
  y = fmaf(k, -2.12194440e-4f, y);
  y = fmaf(z, -0.5f, y);
  float l = f + y;
  l = fmaf(k, 0.693359375f, l);
  return l + (e - (u - 1.f)) * r;
}

// One logit: loss term v and d(v)/dx g. One exp, one reciprocal and one
// log1p serve both softplus(x) = max(x,0) + log1p(e^-|x|) and
// softplus(-x), and p = sigmoid(x), q = 1 - p come from e^-|x| without
// cancellation (SPEC 6.5: |x| = 100 stays finite and exact).
template <bool kGamma2>
__device__ __forceinline__ void focal_elem(float x, bool positive, float alpha, float gamma,
                                           float* v, float* g) {
  const float e = expf(-fabsf(x));
  const float r = __frcp_rn(1.f + e);
  const float l = log1p_unit(e, r);
  const bool xpos = x >= 0.f;
  const float er = e * r;
  const float p = xpos ? r : er, q = xpos ? er : r;
  if (positive) {
    const float sp_neg = fmaxf(-x, 0.f) + l;  // -log(p)
    const float w = alpha * (kGamma2 ? q * q : powf(q, gamma));
    *v = w * sp_neg;
    *g = w * (-gamma * p * sp_neg - q);
  } else {
    const float sp_pos = fmaxf(x, 0.f) + l;  // -log(1-p)
    const float w = (1.f - alpha) * (kGamma2 ? p * p : powf(p, gamma));
    *v = w * sp_pos;
    *g = w * (gamma * q * sp_pos + p);
  }
}

// Grid-stride over the image's P*C logits with the (prior, column) of each
// kept incrementally (no per-element division); Index is uint32_t when an
// image's P*C fits, so the loop carries no 64-bit arithmetic.
template <typename TC, typename Index, bool kGrad, bool kGamma2>
__global__ void __launch_bounds__(kBlock) focal_kernel(FocalArgs a, const TC* conf) {
  __shared__ double sh[kBlock];
  TC* grad = static_cast<TC*>(a.l.grad_conf);
  const double up = kGrad ? read_upstream(a.l.grad_loss, a.l.grad_loss_f64, 1) : 1.0;
  const Index n = static_cast<Index>(a.P * a.C);
  const Index C = static_cast<Index>(a.C);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  const Index step_p = stride / C, step_c = stride % C;
  const Index first = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const float gscale = static_cast<float>(a.l.conf_scale[b] * up);
    const TC* x = conf + b * static_cast<int64_t>(n);
    TC* gout = kGrad ? grad + b * static_cast<int64_t>(n) : nullptr;
    const int32_t* ct = a.l.ct + b * a.P;
    double sum = 0.0;
    Index p = first / C, c = first % C;
    for (Index e = first; e < n; e += stride) {
      const int32_t t = ct[p];
      float g = 0.f;
      if (t >= 0) {  // ignored priors add 0 and get a zero gradient
        float v;
        focal_elem<kGamma2>(to_f(x[e]), t == static_cast<int32_t>(c) + 1, a.alpha, a.gamma, &v, &g);
        sum += static_cast<double>(v);
      }
      if (kGrad) gout[e] = from_f<TC>(g * gscale);
      p += step_p;
      c += step_c;
      if (c >= C) { c -= C; ++p; }
    }
    const double total = block_sum<kBlock>(sum, sh);
    if (threadIdx.x == 0) a.l.partials[b * gridDim.x + blockIdx.x] = total;
  }
}

template <typename TC>
void launch_focal_t(const FocalArgs& a, const TC* conf, dim3 grid, cudaStream_t stream) {
  const bool n32 = a.P * a.C <= 0x7fffffffll;  // e + stride never wraps
  const bool grad = a.l.grad_conf != nullptr;
#define MBX_FOCAL_LAUNCH(I, G, G2) focal_kernel<TC, I, G, G2><<<grid, kBlock, 0, stream>>>(a, conf)
  if (n32) {
    if (grad) { if (a.gamma2) MBX_FOCAL_LAUNCH(uint32_t, true, true); else MBX_FOCAL_LAUNCH(uint32_t, true, false); }
    else { if (a.gamma2) MBX_FOCAL_LAUNCH(uint32_t, false, true); else MBX_FOCAL_LAUNCH(uint32_t, false, false); }
  } else {
    if (grad) { if (a.gamma2) MBX_FOCAL_LAUNCH(int64_t, true, true); else MBX_FOCAL_LAUNCH(int64_t, true, false); }
    else { if (a.gamma2) MBX_FOCAL_LAUNCH(int64_t, false, true); else MBX_FOCAL_LAUNCH(int64_t, false, false); }
  }
#undef MBX_FOCAL_LAUNCH
}

}  // namespace

int focal_blocks(int64_t P, int64_t C) { return blocks_per_image(P * C, kFocalItemsPerThread); }

void launch_focal(const Options& o, const Inputs& in, const FocalLaunch& l, cudaStream_t stream) {
  FocalArgs a;
  a.B = in.B; a.P = in.P; a.C = in.C;
  a.alpha = static_cast<float>(o.focal_alpha);
  a.gamma = static_cast<float>(o.focal_gamma);
  a.gamma2 = o.focal_gamma == 2.0;  // the common case: a square, not powf
  a.l = l;
  const dim3 grid(static_cast<unsigned>(l.nblocks), grid_images(in.B));
  switch (in.conf_dtype) {
    case DType::kF32:
      launch_focal_t(a, static_cast<const float*>(in.conf), grid, stream);
      break;
    case DType::kF16:
      launch_focal_t(a, static_cast<const __half*>(in.conf), grid, stream);
      break;
    case DType::kBF16:
      launch_focal_t(a, static_cast<const __nv_bfloat16*>(in.conf), grid, stream);
      break;
    default:
      throw Error(Status::kUnsupported,
                  std::string("conf: dtype ") + dtype_name(in.conf_dtype) + " is not supported on CUDA");
  }
  check_launch("focal_kernel");
}

}  // namespace cuda
}  // namespace mbx
