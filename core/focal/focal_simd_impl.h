// SIMD sigmoid focal loss kernels of the fast CPU path (the scalar twin is
// focal.h's focal_element; the CUDA one is focal.cu). A fragment included by
// pipeline/cpu_kernels_impl.h inside the ISA's own namespace, after
// common/simd_math_impl.h.

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
        // Whole rows of gradient are written once and not read back here:
        // streaming stores skip the read-for-ownership of their lines (the
        // caller's pass issues the fence).
        if (reinterpret_cast<uintptr_t>(g + c) % (W * sizeof(float)) == 0) MBX_ISA_STREAM_STORE_V(g + c, d);
        else d.store_unaligned(g + c);
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

