// Templated row kernels, included by each cpu_kernels_<isa>.cpp inside its
// own namespace (MBX_ISA_NS) so that no symbol is shared between ISAs (the
// classic one-definition hazard of per-ISA translation units). Only xsimd
// and C math are used here — no std:: inline templates.
//
// Requires: <xsimd/xsimd.hpp>, <math.h>, <stdint.h> included before, and
// MBX_ISA_NS / MBX_ISA_ARCH defined.

namespace mbx {
namespace MBX_ISA_NS {

using arch = MBX_ISA_ARCH;
using fb = xsimd::batch<float, arch>;
constexpr int64_t W = static_cast<int64_t>(fb::size);

static inline float fmaxf_(float a, float b) { return a > b ? a : b; }

// Loads x[c .. c+W) padded with `pad` beyond C.
static inline fb load_tail(const float* x, int64_t c, int64_t C, float pad) {
  alignas(64) float t[W];
  for (int64_t i = 0; i < W; ++i) t[i] = c + i < C ? x[c + i] : pad;
  return fb::load_aligned(t);
}

static inline float sum_lanes(fb v) { return xsimd::hadd(v); }

// log(sum exp x) for rows holding +inf, NaN or only -inf: the IEEE value.
static float logsumexp_nonfinite(const float* x, int64_t C) {
  float m = x[0];
  for (int64_t c = 1; c < C; ++c) m = fmaxf_(m, x[c]);
  for (int64_t c = 0; c < C; ++c)
    if (x[c] != x[c]) return x[c];
  if (m == HUGE_VALF || m == -HUGE_VALF) return m;
  float s = 0.f;
  for (int64_t c = 0; c < C; ++c) s += expf(x[c] - m);
  return m + logf(s);
}

static float logsumexp(const float* x, int64_t C) {
  const float ninf = -HUGE_VALF;
  const int64_t Cv = C / W * W;
  fb vm(ninf);
  for (int64_t c = 0; c < Cv; c += W) vm = xsimd::max(vm, fb::load_unaligned(x + c));
  if (Cv < C) vm = xsimd::max(vm, load_tail(x, Cv, C, ninf));
  alignas(64) float mm[W];
  vm.store_aligned(mm);
  float m = mm[0];
  for (int64_t i = 1; i < W; ++i) m = fmaxf_(m, mm[i]);
  if (!(m > ninf && m < HUGE_VALF)) return logsumexp_nonfinite(x, C);
  const fb vmx(m);
  fb vs(0.f);
  for (int64_t c = 0; c < Cv; c += W) vs += xsimd::exp(fb::load_unaligned(x + c) - vmx);
  if (Cv < C) vs += xsimd::exp(load_tail(x, Cv, C, ninf) - vmx);  // exp(-inf) = 0
  const float r = m + logf(sum_lanes(vs));
  return r - r == 0.f ? r : logsumexp_nonfinite(x, C);  // NaN logits propagate
}

// Log-sum-exp of `n` consecutive rows into out[0..n): W rows at a time,
// transposed into a column-major tile so that max, exp, sum and log all run
// across rows (one vector log per W rows instead of a scalar log per row).
static void logsumexp_rows(const float* x, int64_t n, int64_t C, float* out) {
  constexpr int64_t kMaxC = 512;
  if (C > kMaxC) {
    for (int64_t r = 0; r < n; ++r) out[r] = logsumexp(x + r * C, C);
    return;
  }
  alignas(64) float tile[kMaxC * W];
  alignas(64) float res[W];
  const float ninf = -HUGE_VALF;
  for (int64_t r0 = 0; r0 < n; r0 += W) {
    const int64_t m = n - r0 < W ? n - r0 : W;
    const float* xr = x + r0 * C;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t c = 0; c < C; ++c) tile[c * W + i] = xr[i * C + c];
    for (int64_t i = m; i < W; ++i)
      for (int64_t c = 0; c < C; ++c) tile[c * W + i] = 0.f;
    fb vm = fb::load_aligned(tile);
    for (int64_t c = 1; c < C; ++c) vm = xsimd::max(vm, fb::load_aligned(tile + c * W));
    fb vs(0.f);
    for (int64_t c = 0; c < C; ++c) vs += xsimd::exp(fb::load_aligned(tile + c * W) - vm);
    (vm + xsimd::log(vs)).store_aligned(res);
    for (int64_t i = 0; i < m; ++i) {
      const float v = res[i];
      // inf/NaN rows (or a max of -inf) take the exact scalar route.
      out[r0 + i] = (v - v == 0.f && vm.get(i) > ninf) ? v : logsumexp(xr + i * C, C);
    }
  }
}

static void softmax_grad(const float* x, int64_t C, float lse, int32_t target, float s, float* g) {
  const int64_t Cv = C / W * W;
  const fb vl(lse), vs(s);
  for (int64_t c = 0; c < Cv; c += W)
    (xsimd::exp(fb::load_unaligned(x + c) - vl) * vs).store_unaligned(g + c);
  if (Cv < C) {
    alignas(64) float t[W];
    (xsimd::exp(load_tail(x, Cv, C, -HUGE_VALF) - vl) * vs).store_aligned(t);
    for (int64_t c = Cv; c < C; ++c) g[c] = t[c - Cv];
  }
  g[target] = (expf(x[target] - lse) - 1.0f) * s;
}

// Negative (t = 0) focal terms of W logits. With e = exp(-|x|):
// softplus(+-x) = max(+-x, 0) + log1p(e); p, q = 1/(1+e), e/(1+e) by the
// sign of x — one exp, one log1p, one division, no cancellation.
template <int kGamma>
static inline void focal_neg(fb x, float alpha, float gamma, fb* val, fb* grad) {
  const fb zero(0.f), one(1.f);
  const fb e = xsimd::exp(-xsimd::abs(x));
  const fb l = xsimd::log1p(e);
  const fb r = one / (one + e);
  const auto xpos = x >= zero;
  const fb p = xsimd::select(xpos, r, e * r);
  const fb q = xsimd::select(xpos, e * r, r);
  const fb sp_pos = xsimd::max(x, zero) + l;
  fb pg;
  if (kGamma == 2) pg = p * p;
  else if (kGamma == 1) pg = p;
  else if (kGamma == 0) pg = one;
  else pg = xsimd::pow(p, fb(gamma));
  const fb w = fb(1.f - alpha) * pg;
  *val = w * sp_pos;
  *grad = w * (fb(gamma) * q * sp_pos + p);
}

// The positive (t = 1) term of one logit, in float, through softplus.
static inline void focal_pos_scalar(float x, float alpha, float gamma, float* val, float* grad) {
  const float e = expf(-fabsf(x)), l = log1pf(e), r = 1.f / (1.f + e);
  const float p = x >= 0.f ? r : e * r, q = x >= 0.f ? e * r : r;
  const float sp_neg = fmaxf_(-x, 0.f) + l;
  const float qg = gamma == 2.f ? q * q : gamma == 0.f ? 1.f : powf(q, gamma);
  const float w = alpha * qg;
  *val = w * sp_neg;
  *grad = w * (-gamma * p * sp_neg - q);
}

template <int kGamma>
static double focal_t(const float* x, int64_t C, int32_t pos_col, float alpha, float gamma,
                      float scale, float* g) {
  const int64_t Cv = C / W * W;
  double sum = 0.0;
  fb acc(0.f);  // row sum in float lanes (<= a few hundred terms), float64 across rows
  alignas(64) float vv[W], dd[W];
  for (int64_t c = 0; c < C; c += W) {
    const bool tail = c >= Cv;
    fb v, d;
    focal_neg<kGamma>(tail ? load_tail(x, c, C, 0.f) : fb::load_unaligned(x + c), alpha, gamma, &v, &d);
    const int64_t n = tail ? C - c : W;
    if (tail) {
      v.store_aligned(vv);
      for (int64_t i = n; i < W; ++i) vv[i] = 0.f;
      v = fb::load_aligned(vv);
    }
    acc += v;
    if (pos_col >= c && pos_col < c + n) {
      float v1, d1;
      focal_pos_scalar(x[pos_col], alpha, gamma, &v1, &d1);
      v.store_aligned(vv);
      sum += static_cast<double>(v1) - static_cast<double>(vv[pos_col - c]);
      if (g) { d.store_aligned(dd); dd[pos_col - c] = d1; d = fb::load_aligned(dd); }
    }
    if (g) {
      d = d * fb(scale);
      if (!tail) {
        d.store_unaligned(g + c);
      } else {
        d.store_aligned(dd);
        for (int64_t i = 0; i < n; ++i) g[c + i] = dd[i];
      }
    }
  }
  return sum + static_cast<double>(sum_lanes(acc));
}

static double focal(const float* x, int64_t C, int32_t pos_col, float alpha, float gamma,
                    int gamma_kind, float scale, float* g) {
  switch (gamma_kind) {
    case 2: return focal_t<2>(x, C, pos_col, alpha, gamma, scale, g);
    case 1: return focal_t<1>(x, C, pos_col, alpha, gamma, scale, g);
    case 0: return focal_t<0>(x, C, pos_col, alpha, gamma, scale, g);
    default: return focal_t<-1>(x, C, pos_col, alpha, gamma, scale, g);
  }
}

static const CpuRowKernels kTable = {MBX_ISA_NAME, &logsumexp, &logsumexp_rows, &softmax_grad, &focal};

}  // namespace MBX_ISA_NS
}  // namespace mbx
