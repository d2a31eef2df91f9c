// SIMD softplus terms of the LOGISTIC loss (the scalar formula, and the one
// that the losses and gradients use, is logistic_math.h's logistic_value:
// softplus(x) - x y with softplus(x) = max(x, 0) + log1p(exp(-|x|)); this is
// its first part, lane by lane, in float). A fragment included by
// pipeline/cpu_kernels_impl.h inside the ISA's own namespace, after
// common/simd_math_impl.h. Used for the ranking bounds of
// softmax_ce/hard_example_cpu.cpp.

static inline fb softplus_lanes(fb x) {
  const fb e = fast_exp(-xsimd::abs(x));
  return xsimd::max(x, fb(0.f)) + fast_log1p_unit(e, recip_unit(fb(1.f) + e));
}

// s[c] = softplus(x_c) for c < C.
static void softplus_terms(const float* x, int64_t C, float* s) {
  const int64_t Cv = C / W * W;
  for (int64_t c = 0; c < Cv; c += W) softplus_lanes(fb::load_unaligned(x + c)).store_unaligned(s + c);
  if (Cv < C) {
    alignas(64) float t[W];
    softplus_lanes(load_tail(x, Cv, C, 0.f)).store_aligned(t);
    for (int64_t c = Cv; c < C; ++c) s[c] = t[c - Cv];
  }
}
