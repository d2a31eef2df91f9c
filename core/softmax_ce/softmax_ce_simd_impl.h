// SIMD softmax cross-entropy kernels of the fast CPU path (the scalar twin
// is softmax_ce.h's softmax_row_stats; the CUDA one is softmax_ce.cu). A
// fragment included by pipeline/cpu_kernels_impl.h inside the ISA's own
// namespace, after common/simd_math_impl.h.

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
// the row end (into the following rows of the same call) with lanes >= C
// masked — only when enough of the call's own rows follow to cover the
// over-read; otherwise (the last rows, short rows) through a stack copy.
struct RowTail {
  int64_t Cv;
  xsimd::batch_bool<float, arch> mask;
  explicit RowTail(int64_t C) : Cv(C / W * W) {
    alignas(64) float lane[W];
    for (int64_t i = 0; i < W; ++i) lane[i] = static_cast<float>(i);
    mask = fb::load_aligned(lane) < fb(static_cast<float>(C - Cv));
  }
  // rows_after: rows of the same call that follow row xr.
  fb tail(const float* xr, int64_t C, int64_t rows_after, float pad) const {
    const bool in_bounds = rows_after * C >= W - (C - Cv);
    return in_bounds ? xsimd::select(mask, fb::load_unaligned(xr + Cv), fb(pad)) : load_tail(xr, Cv, C, pad);
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

// m[i], l[i] for rows i < n of x [n, C] (nothing past row n-1 is read).
static void softmax_rows(const float* x, int64_t n, int64_t C, float* m_out, float* l_out) {
  const RowTail rt(C);
  const float ninf = -HUGE_VALF;
  const bool has_tail = rt.Cv < C;
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * C;
    fb vm(ninf);
    for (int64_t c = 0; c < rt.Cv; c += W) vm = xsimd::max(vm, fb::load_unaligned(xr + c));
    fb vt(ninf);
    if (has_tail) {
      vt = rt.tail(xr, C, n - 1 - r, ninf);
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

// Fast background cross-entropy of every row of a block — the mining score
// of a negative — at full relative precision:
//   ce_0 = log(sum_c exp(x_c)) - x_0 = log1p(sum_{c != 0} exp(x_c) / exp(x_0)),
// from exps taken over the contiguous block (no per-row max, no horizontal
// max), row sums that leave column 0 out, and one vector log1p per W rows.
// No difference of two large numbers is formed, so a confident background
// (ce_0 ~ 1e-7 next to logits ~ 10) keeps its relative precision and tiny
// scores still rank correctly. A row qualifies when sum_c exp(x_c) lies in
// [1e-30, 1e30], exp(x_0) >= 1e-37 and the ratio is finite (logits within
// about [-69, 69]); others take the exact (m, l) route. Choice and
// arithmetic depend only on the row's own values, so identical rows get
// bitwise identical scores and tie exactly. `scratch`: n*C + W floats;
// n <= 256 rows per pass (the exps of a pass stay in L1/L2).
static void ce_background_rows(const float* x, int64_t n, int64_t C, float* ce0, float* scratch) {
  constexpr int64_t kMaxRows = 256;
  if (n > kMaxRows) {
    for (int64_t r0 = 0; r0 < n; r0 += kMaxRows)
      ce_background_rows(x + r0 * C, n - r0 < kMaxRows ? n - r0 : kMaxRows, C, ce0 + r0, scratch);
    return;
  }
  const int64_t total = n * C, Tv = total / W * W;
  const fb lo(-87.f), hi(88.f);
  for (int64_t i = 0; i < Tv; i += W)
    fast_exp_unchecked(xsimd::min(xsimd::max(fb::load_unaligned(x + i), lo), hi)).store_unaligned(scratch + i);
  if (Tv < total)  // the same vector routine for the last partial vector
    fast_exp_unchecked(xsimd::min(xsimd::max(load_tail(x, Tv, total, 0.f), lo), hi)).store_unaligned(scratch + Tv);
  const RowTail rt(C);
  const bool has_tail = rt.Cv < C;
  alignas(64) float lane[W];
  for (int64_t i = 0; i < W; ++i) lane[i] = static_cast<float>(i);
  const auto not_col0 = fb::load_aligned(lane) != fb(0.f);  // lane 0 of the first vector is column 0
  alignas(64) float total_sum[kMaxRows + W], e0[kMaxRows + W];
  // W rows at a time: each row's columns folded into one vector, then one
  // transpose-and-add (hsum_rows) gives the W row sums, in an order that does
  // not depend on the row's position.
  for (int64_t r0 = 0; r0 < n; r0 += W) {
    fb acc[W];
    for (int64_t k = 0; k < W; ++k) {
      const int64_t r = r0 + k < n ? r0 + k : n - 1;  // padding rows repeat the last one
      const float* e = scratch + r * C;  // the padding after the scratch covers the last tail
      fb a;
      if (rt.Cv > 0) {
        a = xsimd::select(not_col0, fb::load_unaligned(e), fb(0.f));
        for (int64_t c = W; c < rt.Cv; c += W) a += fb::load_unaligned(e + c);
        if (has_tail) a += xsimd::select(rt.mask, fb::load_unaligned(e + rt.Cv), fb(0.f));
      } else {
        a = xsimd::select(rt.mask & not_col0, fb::load_unaligned(e), fb(0.f));
      }
      acc[k] = a;
      e0[r0 + k] = e[0];
    }
    const fb rest = hsum_rows(acc);
    const fb v0 = fb::load_aligned(e0 + r0);
    (rest + v0).store_aligned(total_sum + r0);
    const fb ratio = rest / v0;
    if (r0 + W <= n) {
      ratio.store_unaligned(ce0 + r0);
    } else {  // the last partial group: only its real rows
      alignas(64) float q[W];
      ratio.store_aligned(q);
      for (int64_t k = 0; r0 + k < n; ++k) ce0[r0 + k] = q[k];
    }
  }
  for (int64_t i = 0; i < n; i += W) {
    const fb ratio = i + W <= n ? fb::load_unaligned(ce0 + i) : load_tail(ce0, i, n, 0.f);
    alignas(64) float lv[W];
    xsimd::log1p(ratio).store_aligned(lv);
    for (int64_t k = 0; k < W && i + k < n; ++k) {
      const float st = total_sum[i + k];
      if (st >= 1e-30f && st <= 1e30f && e0[i + k] >= 1e-37f && lv[k] - lv[k] == 0.f) {
        ce0[i + k] = lv[k];
      } else {  // NaN fails every test above
        float m, l;
        const float* xr = x + (i + k) * C;
        softmax_rows(xr, 1, C, &m, &l);
        ce0[i + k] = (m - xr[0]) + l;
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
