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

// exp for float lanes, Cody-Waite reduction + Cephes' degree-6 polynomial
// (about 2 ulp). Arguments are clamped to [-87.3, 88.7], so exp(-inf) and
// exp(-100) give 1.2e-38 instead of 0 — harmless inside sums of terms >= 1
// and gradients; NaN propagates. About half the instructions of xsimd::exp,
// which also handles denormal results.
static inline fb fast_exp_unchecked(fb xc);
static inline fb fast_exp(fb x) {
  const fb xc = xsimd::min(xsimd::max(x, fb(-87.33654f)), fb(88.72283f));
  return xsimd::select(x != x, x, fast_exp_unchecked(xc));
}
// The same for arguments known to lie in [-87.3, 88.7] (no NaN).
static inline fb fast_exp_unchecked(fb xc) {
  const fb n = xsimd::nearbyint(xc * fb(1.44269504088896341f));
  fb r = xsimd::fma(n, fb(-0.693359375f), xc);
  r = xsimd::fma(n, fb(2.12194440e-4f), r);
  fb p(1.9875691500e-4f);
  p = xsimd::fma(p, r, fb(1.3981999507e-3f));
  p = xsimd::fma(p, r, fb(8.3334519073e-3f));
  p = xsimd::fma(p, r, fb(4.1665795894e-2f));
  p = xsimd::fma(p, r, fb(1.6666665459e-1f));
  p = xsimd::fma(p, r, fb(5.0000001201e-1f));
  const fb y = xsimd::fma(p, r * r, r) + fb(1.f);
  using ib = xsimd::batch<int32_t, arch>;
  const ib e = (xsimd::to_int(n) + ib(127)) << 23;
  return y * xsimd::bitwise_cast<fb>(e);
}

// log1p(e) for e in [0, 1]: u = 1 + e in [1, 2] needs no exponent
// extraction; Cephes' logf polynomial on [sqrt(1/2), sqrt(2)) plus the
// classic correction (e - (u - 1)) / u for the rounding of u.
static inline fb fast_log1p_unit(fb e, fb inv_u) {
  const fb u = fb(1.f) + e;
  const auto big = u > fb(1.41421356237f);
  const fb m = xsimd::select(big, u * fb(0.5f), u);
  const fb k = xsimd::select(big, fb(1.f), fb(0.f));
  const fb f = m - fb(1.f);
  const fb z = f * f;
  fb y(7.0376836292e-2f);
  y = xsimd::fma(y, f, fb(-1.1514610310e-1f));
  y = xsimd::fma(y, f, fb(1.1676998740e-1f));
  y = xsimd::fma(y, f, fb(-1.2420140846e-1f));
  y = xsimd::fma(y, f, fb(1.4249322787e-1f));
  y = xsimd::fma(y, f, fb(-1.6668057665e-1f));
  y = xsimd::fma(y, f, fb(2.0000714765e-1f));
  y = xsimd::fma(y, f, fb(-2.4999993993e-1f));
  y = xsimd::fma(y, f, fb(3.3333331174e-1f));
  y = y * f * z;
  y = xsimd::fma(k, fb(-2.12194440e-4f), y);
  y = xsimd::fma(z, fb(-0.5f), y);
  fb r = f + y;
  r = xsimd::fma(k, fb(0.693359375f), r);
  return r + (e - (u - fb(1.f))) * inv_u;
}

// 1/u for u in [1, 2]: hardware reciprocal estimate + one Newton step where
// the ISA has one (about 1e-7 relative), a division otherwise.
static inline fb recip_unit(fb u) {
#if MBX_ISA_HAS_RCP
  const fb r0 = xsimd::reciprocal(u);
  return r0 * (fb(2.f) - u * r0);
#else
  return fb(1.f) / u;
#endif
}

// Loads x[c .. c+W) padded with `pad` beyond C.
static inline fb load_tail(const float* x, int64_t c, int64_t C, float pad) {
  alignas(64) float t[W];
  for (int64_t i = 0; i < W; ++i) t[i] = c + i < C ? x[c + i] : pad;
  return fb::load_aligned(t);
}

static inline float sum_lanes(fb v) { return xsimd::hadd(v); }

// Softmax statistics of rows, the form that keeps every derived quantity at
// full relative precision in float32:
//   m = max_c x_c,   l = log(sum_c exp(x_c - m)) = log1p(r),
//   r = sum of exp(x_c - m) over the non-maximal columns + (#maximal - 1),
// so that lse = m + l, ce_t = (m - x_t) + l (no cancellation even when
// ce_t ~ 1e-6 next to logits ~ 15, where lse - x_t would lose it all), and
// softmax_c = exp((x_c - m) - l) with an exact (x_c - m) (no rounded lse
// subtracted from logits of magnitude 1e4). Each row's result depends only
// on its own values, so identical rows tie exactly in hard negative mining.
// Rows with +inf/NaN (or only -inf) get m = the IEEE log-sum-exp, l = 0.

// Row r's values lane-padded: full vectors, then the tail vector read past
// the row end (into the next row of the same tensor) with lanes >= C masked;
// the last row of a call reads its tail through a stack copy instead.
struct RowTail {
  int64_t Cv;
  xsimd::batch_bool<float, arch> mask;
  explicit RowTail(int64_t C) : Cv(C / W * W) {
    alignas(64) float lane[W];
    for (int64_t i = 0; i < W; ++i) lane[i] = static_cast<float>(i);
    mask = fb::load_aligned(lane) < fb(static_cast<float>(C - Cv));
  }
  fb tail(const float* xr, int64_t C, bool last, float pad) const {
    return last ? load_tail(xr, Cv, C, pad) : xsimd::select(mask, fb::load_unaligned(xr + Cv), fb(pad));
  }
};

static float row_nonfinite_lse(const float* x, int64_t C) {
  float m = x[0];
  for (int64_t c = 1; c < C; ++c) m = fmaxf_(m, x[c]);
  for (int64_t c = 0; c < C; ++c)
    if (x[c] != x[c]) return x[c];
  if (m == HUGE_VALF || m == -HUGE_VALF) return m;
  float s = 0.f;
  for (int64_t c = 0; c < C; ++c) s += expf(x[c] - m);
  return m + logf(s);
}

// m[i], l[i] for rows i < n of x [n, C]; `last_row_is_end`: row n-1 is the
// last row of its tensor (its tail must not be read past).
static void softmax_rows(const float* x, int64_t n, int64_t C, float* m_out, float* l_out,
                         bool last_row_is_end) {
  const RowTail rt(C);
  const float ninf = -HUGE_VALF;
  const bool has_tail = rt.Cv < C;
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * C;
    const bool last = last_row_is_end && r == n - 1;
    fb vm(ninf);
    for (int64_t c = 0; c < rt.Cv; c += W) vm = xsimd::max(vm, fb::load_unaligned(xr + c));
    fb vt(ninf);
    if (has_tail) {
      vt = rt.tail(xr, C, last, ninf);
      vm = xsimd::max(vm, vt);
    }
    alignas(64) float mm[W];
    vm.store_aligned(mm);
    float m = mm[0];
    for (int64_t i = 1; i < W; ++i) m = fmaxf_(m, mm[i]);
    // A NaN logit that the max skipped reaches the sum (fast_exp keeps NaN),
    // so l, the loss and the gradient come out NaN as they should.
    if (!(m > ninf && m < HUGE_VALF)) {
      m_out[r] = row_nonfinite_lse(xr, C);
      l_out[r] = 0.f;
      continue;
    }
    const fb vmx(m), zero(0.f), one(1.f);
    fb acc(0.f), cnt(0.f);
    for (int64_t c = 0; c < rt.Cv; c += W) {
      const fb v = fb::load_unaligned(xr + c);
      const auto eq = v == vmx;
      acc += xsimd::select(eq, zero, fast_exp(v - vmx));
      cnt += xsimd::select(eq, one, zero);
    }
    if (has_tail) {  // padding is -inf: never equal to m, exp -> ~0 (clamped: 1.2e-38)
      const auto eq = vt == vmx;
      acc += xsimd::select(eq, zero, xsimd::select(rt.mask, fast_exp(vt - vmx), zero));
      cnt += xsimd::select(eq, one, zero);
    }
    m_out[r] = m;
    l_out[r] = sum_lanes(acc) + (sum_lanes(cnt) - 1.f);  // r; log1p below
  }
  const int64_t nv = n / W * W;
  for (int64_t i = 0; i < nv; i += W) xsimd::log1p(fb::load_unaligned(l_out + i)).store_unaligned(l_out + i);
  for (int64_t i = nv; i < n; ++i) l_out[i] = log1pf(l_out[i]);
}

// Fast log-sum-exp of every row of a block, for the mining scores of the
// negatives: exp over the contiguous block (no per-row max, no horizontal
// max), masked per-row sums, one vector log per W rows. A row qualifies when
// its sum S = sum_c exp(x_c) lies in [1e-30, 1e30] (every logit in about
// [-69, 69], finite): then dropping the max shift costs no accuracy beyond
// ~ulp(lse). Other rows take the exact (m + l) route. The choice and the
// arithmetic depend only on the row's own values (no per-block or per-lane
// special cases), so identical rows get bitwise identical scores and tie
// exactly in the mining. `scratch` holds n*C + W floats.
static void lse_rows_fast(const float* x, int64_t n, int64_t C, float* lse, float* scratch,
                          bool last_row_is_end) {
  const int64_t total = n * C, Tv = total / W * W;
  const fb lo(-87.f), hi(88.f);
  for (int64_t i = 0; i < Tv; i += W)
    fast_exp_unchecked(xsimd::min(xsimd::max(fb::load_unaligned(x + i), lo), hi)).store_unaligned(scratch + i);
  if (Tv < total)  // the same vector routine for the last partial vector
    fast_exp_unchecked(xsimd::min(xsimd::max(load_tail(x, Tv, total, 0.f), lo), hi)).store_unaligned(scratch + Tv);
  const RowTail rt(C);
  const bool has_tail = rt.Cv < C;
  for (int64_t r = 0; r < n; ++r) {
    const float* e = scratch + r * C;  // the padding after the scratch covers the last tail
    fb acc = has_tail ? xsimd::select(rt.mask, fb::load_unaligned(e + rt.Cv), fb(0.f)) : fb(0.f);
    for (int64_t c = 0; c < rt.Cv; c += W) acc += fb::load_unaligned(e + c);
    lse[r] = sum_lanes(acc);
  }
  for (int64_t i = 0; i < n; i += W) {
    const fb sv = i + W <= n ? fb::load_unaligned(lse + i) : load_tail(lse, i, n, 1.f);
    const fb lv = xsimd::log(sv);
    alignas(64) float sa[W], la[W];
    sv.store_aligned(sa);
    lv.store_aligned(la);
    for (int64_t k = 0; k < W && i + k < n; ++k) {
      if (sa[k] >= 1e-30f && sa[k] <= 1e30f) {  // NaN fails both
        lse[i + k] = la[k];
      } else {
        float m, l;
        softmax_rows(x + (i + k) * C, 1, C, &m, &l, last_row_is_end && i + k == n - 1);
        lse[i + k] = m + l;
      }
    }
  }
}

// g[c] = (softmax(x)[c] - [c == target]) * s with softmax from (m, l); the
// target's own term is expm1 of its log-probability (exact when it is ~1).
static void softmax_grad(const float* x, int64_t C, float m, float l, int32_t target, float s,
                         float* g) {
  const int64_t Cv = C / W * W;
  const fb vm(m), vl(l), vs(s);
  for (int64_t c = 0; c < Cv; c += W)
    (fast_exp((fb::load_unaligned(x + c) - vm) - vl) * vs).store_unaligned(g + c);
  if (Cv < C) {
    alignas(64) float t[W];
    (fast_exp((load_tail(x, Cv, C, -HUGE_VALF) - vm) - vl) * vs).store_aligned(t);
    for (int64_t c = Cv; c < C; ++c) g[c] = t[c - Cv];
  }
  g[target] = expm1f((x[target] - m) - l) * s;
}

// Negative (t = 0) focal terms of W logits. With e = exp(-|x|):
// softplus(+-x) = max(+-x, 0) + log1p(e); p, q = 1/(1+e), e/(1+e) by the
// sign of x — one exp, one log1p, one division, no cancellation.
template <int kGamma, bool kGrad>
static inline void focal_neg(fb x, float alpha, float gamma, fb* val, fb* grad) {
  const fb zero(0.f), one(1.f);
  const fb e = fast_exp(-xsimd::abs(x));
  const fb r = recip_unit(one + e);
  const fb l = fast_log1p_unit(e, r);
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
  if (kGrad) *grad = w * (fb(gamma) * q * sp_pos + p);  // forward-only skips it
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

template <int kGamma, bool kGrad>
static double focal_t(const float* x, int64_t C, int32_t pos_col, float alpha, float gamma,
                      float scale, float* g) {
  const int64_t Cv = C / W * W;
  double sum = 0.0;
  fb acc(0.f);  // row sum in float lanes (<= a few hundred terms), float64 across rows
  alignas(64) float vv[W], dd[W];
  for (int64_t c = 0; c < C; c += W) {
    const bool tail = c >= Cv;
    fb v, d;
    focal_neg<kGamma, kGrad>(tail ? load_tail(x, c, C, 0.f) : fb::load_unaligned(x + c), alpha, gamma, &v, &d);
    const int64_t n = tail ? C - c : W;
    const bool has_pos = pos_col >= c && pos_col < c + n;
    if (tail || has_pos) {
      // Padding lanes and the positive column's t = 0 term leave the sum
      // (the latter is replaced by its t = 1 term below, in float64: adding
      // the large t = 0 value and subtracting it again would cancel the
      // small terms next to it).
      v.store_aligned(vv);
      for (int64_t i = n; i < W; ++i) vv[i] = 0.f;
      if (has_pos) vv[pos_col - c] = 0.f;
      v = fb::load_aligned(vv);
    }
    acc += v;
    if (has_pos) {
      float v1, d1;
      focal_pos_scalar(x[pos_col], alpha, gamma, &v1, &d1);
      sum += static_cast<double>(v1);
      if (kGrad) { d.store_aligned(dd); dd[pos_col - c] = d1; d = fb::load_aligned(dd); }
    }
    if (kGrad) {
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
  if (!g) {
    switch (gamma_kind) {
      case 2: return focal_t<2, false>(x, C, pos_col, alpha, gamma, scale, g);
      case 1: return focal_t<1, false>(x, C, pos_col, alpha, gamma, scale, g);
      case 0: return focal_t<0, false>(x, C, pos_col, alpha, gamma, scale, g);
      default: return focal_t<-1, false>(x, C, pos_col, alpha, gamma, scale, g);
    }
  }
  switch (gamma_kind) {
    case 2: return focal_t<2, true>(x, C, pos_col, alpha, gamma, scale, g);
    case 1: return focal_t<1, true>(x, C, pos_col, alpha, gamma, scale, g);
    case 0: return focal_t<0, true>(x, C, pos_col, alpha, gamma, scale, g);
    default: return focal_t<-1, true>(x, C, pos_col, alpha, gamma, scale, g);
  }
}

static const CpuRowKernels kTable = {MBX_ISA_NAME, &softmax_rows, &lse_rows_fast, &softmax_grad,
                                     &focal};

}  // namespace MBX_ISA_NS
}  // namespace mbx
