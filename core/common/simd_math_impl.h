// Float SIMD math shared by the per-ISA kernels (fast exp, log1p on [0, 1],
// reciprocal, tail loads). A fragment: included by pipeline/cpu_kernels_impl.h
// inside the ISA's own namespace, after `fb` (the float batch) and `W` (its
// width) are defined; see that file for why.

static inline float fmaxf_(float a, float b) { return a > b ? a : b; }

// exp for float lanes, Cody-Waite reduction + Cephes' degree-6 polynomial
// (about 2 ulp). Arguments are clamped to [-87.3, 88.7], so exp(-inf) and
// exp(-100) give 1.2e-38 instead of 0 — harmless inside sums of terms >= 1
// and gradients; NaN propagates. About half the instructions of xsimd::exp,
// which also handles denormal results.
static inline fb fast_exp_unchecked(fb xc);
static inline fb fast_exp(fb x) {
  const fb xc = xsimd::min(xsimd::max(x, fb(-87.33654f)), fb(88.72283f));
  // isnan, not x != x: AVX/AVX-512 compare ordered (NEQ_OQ), so x != x is
  // false for NaN there and the clamp would turn NaN into exp(-87.3).
  return xsimd::select(xsimd::isnan(x), x, fast_exp_unchecked(xc));
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

// Lane k of the result = the sum of the W lanes of rows[k], for W rows at
// once (a transpose-and-add network: about 3 instructions per row instead of
// a full horizontal reduction each). The addition tree is the same for every
// k, so a row's sum does not depend on its position among the W rows
// (F3 in tests/HOSTILE_INPUTS.md). xsimd's haddp has that property for SSE2
// and AVX (checked), not for AVX-512, which gets its own network here.
static inline fb hsum_rows(const fb* rows) {
#if defined(__AVX512F__)
  static_assert(W == 16, "AVX-512 float batch");
  __m512 s[8], v[4];
  for (int i = 0; i < 8; ++i) {  // rows (2i, 2i+1): (a0+a2, b0+b2, a1+a3, b1+b3) per 128-bit chunk
    const __m512 a = rows[2 * i], b = rows[2 * i + 1];
    s[i] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  }
  for (int j = 0; j < 4; ++j)  // rows 4j..4j+3, one chunk sum each, per chunk
    v[j] = _mm512_add_ps(_mm512_shuffle_ps(s[2 * j], s[2 * j + 1], 0x44),
                         _mm512_shuffle_ps(s[2 * j], s[2 * j + 1], 0xEE));
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(v[0], v[1], 0x88),   // c0 + c1
                                   _mm512_shuffle_f32x4(v[0], v[1], 0xDD));  // c2 + c3
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(v[2], v[3], 0x88),
                                   _mm512_shuffle_f32x4(v[2], v[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88), _mm512_shuffle_f32x4(s01, s23, 0xDD));
#else
  return xsimd::haddp(rows);
#endif
}


// Zero n floats with non-temporal (streaming) stores over the aligned middle:
// the gradient rows that stay zero are written without first reading their
// cache lines (a normal store's read-for-ownership doubles the traffic of a
// 28 MB fill), and without evicting the inputs still to be read. Needs the
// ISA's stream intrinsic (MBX_ISA_STREAM_STORE); an sfence orders the
// stores before any later ordinary store to the same lines.
static void zero_fill_stream(float* p, int64_t n) {
  int64_t i = 0;
  const uintptr_t align = static_cast<uintptr_t>(W) * sizeof(float);
  while (i < n && (reinterpret_cast<uintptr_t>(p + i) % align) != 0) p[i++] = 0.f;
  for (; i + W <= n; i += W) MBX_ISA_STREAM_STORE_V(p + i, fb(0.f));
  for (; i < n; ++i) p[i] = 0.f;
  MBX_ISA_SFENCE();
}

// Orders earlier streaming stores before what follows (end of a task).
static void store_fence() { MBX_ISA_SFENCE(); }
