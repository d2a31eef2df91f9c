// Sigmoid focal loss on the device (Lin et al., eq. (5); focal.h), one
// thread per logit, float32 math, per-thread float64 sums reduced by a
// fixed block tree into per-block partials (deterministic, no atomics).
// Per logit: one exp2, one reciprocal and a log1p polynomial (the CPU
// kernels' formulation); no cancellation, and |x| = 100 stays finite
// (docs/SPEC.md §6.5).
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
// cancellation (docs/SPEC.md §6.5: |x| = 100 stays finite and exact).
// 1/u for u in [1, 2]: the hardware reciprocal plus one Newton step (as
// recip_unit of the CPU kernels), about 1e-7 relative.
__device__ __forceinline__ float rcp_unit(float u) {
  float r0;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r0) : "f"(u));
  return r0 * (2.f - u * r0);
}

// e^-|x| via ex2.approx (__expf): relative error about 2 + 1.2|x| ulp, at
// most ~3e-6 where e^-|x| is not negligible against 1 (|x| < 20), far inside
// the float32 tolerances (1e-4); below 2^-126 it flushes to 0, where every
// term it feeds rounds to the same float anyway. The accurate expf made this
// kernel instruction-bound (90% SM throughput on an H100).
__device__ __forceinline__ void focal_elem(float x, bool positive, float alpha, float gamma,
                                           bool gamma2, float* v, float* g) {
  const float e = __expf(-fabsf(x));
  const float r = rcp_unit(1.f + e);
  const float l = log1p_unit(e, r);
  const bool xpos = x >= 0.f;
  const float er = e * r;
  const float p = xpos ? r : er, q = xpos ? er : r;
  if (positive) {
    const float sp_neg = fmaxf(-x, 0.f) + l;  // -log(p)
    const float w = alpha * (gamma2 ? q * q : powf(q, gamma));
    *v = w * sp_neg;
    *g = w * (-gamma * p * sp_neg - q);
  } else {
    const float sp_pos = fmaxf(x, 0.f) + l;  // -log(1-p)
    const float w = (1.f - alpha) * (gamma2 ? p * p : powf(p, gamma));
    *v = w * sp_pos;
    *g = w * (gamma * q * sp_pos + p);
  }
}

// Logit x of a prior with class t (conf_target; < 0 ignored) at column c:
// adds its loss term to *vsum and returns its unscaled gradient (0 when
// ignored).
__device__ __forceinline__ float focal_logit(float x, int32_t t, int64_t c, const FocalArgs& a,
                                             float* vsum) {
  if (t < 0) return 0.f;  // ignored priors add 0 and get a zero gradient
  float v, g;
  focal_elem(x, t == static_cast<int32_t>(c) + 1, a.alpha, a.gamma, a.gamma2, &v, &g);
  *vsum += v;
  return g;
}

// V consecutive logits, loaded and stored as one aligned vector access.
template <typename TC, int V>
struct alignas(sizeof(TC) * V) VecT {
  TC v[V];
};

// Grid-stride over the image's P*C logits, V at a time (V = 4: 16-byte
// loads and stores for float32), with the (prior, column) of each logit kept
// incrementally (no per-element division, one conf_target load per prior
// crossed). Index is uint32_t when an image's P*C fits, so the
// loop carries no 64-bit arithmetic. The n % V tail goes element-wise.
template <typename TC, typename Index, bool kGrad, int V>
__global__ void __launch_bounds__(kBlock) focal_kernel(FocalArgs a, const TC* conf) {
  __shared__ double sh[kBlock];
  TC* grad = static_cast<TC*>(a.l.grad_conf);
  const double up = kGrad ? read_upstream(a.l.grad_loss, a.l.grad_loss_f64, 1) : 1.0;
  const Index n = static_cast<Index>(a.P * a.C);
  const Index nv = n / V;
  const Index C = static_cast<Index>(a.C);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;  // in vectors
  const Index step_p = stride * V / C, step_c = stride * V % C;
  const Index first = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t b = blockIdx.y; b < a.B; b += gridDim.y) {
    const float gscale = static_cast<float>(a.l.conf_scale[b] * up);
    const TC* x = conf + b * static_cast<int64_t>(n);
    TC* gout = kGrad ? grad + b * static_cast<int64_t>(n) : nullptr;
    const int32_t* conf_target = a.l.conf_target + b * a.P;
    double sum = 0.0;
    Index p = first * V / C, c = first * V % C;
    for (Index i = first; i < nv; i += stride) {
      const VecT<TC, V> xin = *reinterpret_cast<const VecT<TC, V>*>(x + i * V);
      VecT<TC, V> gv;
      Index pj = p, cj = c;
      int32_t t = conf_target[pj];  // reloaded only where the vector crosses into the next prior
      float vsum = 0.f;    // the vector's terms in float, then one float64 add
#pragma unroll
      for (int j = 0; j < V; ++j) {
        gv.v[j] = from_f<TC>(focal_logit(to_f(xin.v[j]), t, cj, a, &vsum) * gscale);
        if (++cj == C) {
          cj = 0;
          ++pj;
          if (j + 1 < V) t = conf_target[pj];  // element j+1 exists, so pj < P
        }
      }
      sum += static_cast<double>(vsum);
      if (kGrad) *reinterpret_cast<VecT<TC, V>*>(gout + i * V) = gv;
      p += step_p;
      c += step_c;
      if (c >= C) { c -= C; ++p; }
    }
    for (Index e = nv * V + first; e < n; e += stride) {  // tail (V > 1 only)
      float v = 0.f;
      const float g = focal_logit(to_f(x[e]), conf_target[e / C], e % C, a, &v);
      sum += static_cast<double>(v);
      if (kGrad) gout[e] = from_f<TC>(g * gscale);
    }
    const double total = block_sum<kBlock>(sum, sh);
    if (threadIdx.x == 0) a.l.partials[b * gridDim.x + blockIdx.x] = total;
  }
}

template <typename TC>
void launch_focal_t(const FocalArgs& a, const TC* conf, dim3 grid, cudaStream_t stream) {
  constexpr int V = 4;
  const int64_t n = a.P * a.C;
  const bool n32 = n <= 0x7fffffffll;  // index + stride * V never wraps
  const bool grad = a.l.grad_conf != nullptr;
  const uintptr_t vb = sizeof(TC) * V;
  // Every image starts on a vector boundary: n % V == 0 and aligned bases.
  const bool vec = n32 && n % V == 0 && reinterpret_cast<uintptr_t>(conf) % vb == 0 &&
                   (!grad || reinterpret_cast<uintptr_t>(a.l.grad_conf) % vb == 0);
#define MBX_FOCAL_LAUNCH(I, G, VV) focal_kernel<TC, I, G, VV><<<grid, kBlock, 0, stream>>>(a, conf)
  if (vec) {
    if (grad) MBX_FOCAL_LAUNCH(uint32_t, true, V); else MBX_FOCAL_LAUNCH(uint32_t, false, V);
  } else if (n32) {
    if (grad) MBX_FOCAL_LAUNCH(uint32_t, true, 1); else MBX_FOCAL_LAUNCH(uint32_t, false, 1);
  } else {
    if (grad) MBX_FOCAL_LAUNCH(int64_t, true, 1); else MBX_FOCAL_LAUNCH(int64_t, false, 1);
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
