// HARD_EXAMPLE / LOGISTIC ranking of the cpu path from bounds (see
// hard_example_cpu.h): a row is computed exactly only where its bound
// interval overlaps the decision (the k-th key for a selection, a
// neighbour's interval for a full order).
#include "softmax_ce/hard_example_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/half.h"
#include "softmax_ce/hard_example_math.h"

namespace mbx {

bool any_nonfinite(const float* x, int64_t n) {
  uint32_t hit = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, 4);
    hit |= (bits & 0x7f800000u) == 0x7f800000u;  // integer test: vectorises
  }
  return hit != 0;
}

KeyBounds key_bounds(double a, double err) {
  const double lo = a - err, hi = a + err;
  if (!(std::isfinite(lo) && std::isfinite(hi))) return {0, ~0ull};
  return {hard_example_rank_key(lo), hard_example_rank_key(hi)};
}

// Softmax CE = (m - x_t) + l from the float32 row statistics of
// CpuRowKernels::softmax_rows: l = log1p(r), r the float sum of the
// fast_exp(x_c - m) of the non-maximal columns (relative error below 2 ulp +
// |x_c - m| 2^-24 <= 5.3e-6 each, clamped arguments an absolute 1.2e-38) +
// (#maximal - 1), C + 1 float roundings, a 2 ulp log1p: |l - exact l| <=
// (5.6e-6 + 6e-8 C) l + C 1.2e-38. The bound below is looser by 2.
double approx_softmax_ce(float m, float l, float x_target, int64_t C, double* err) {
  if (!std::isfinite(m)) return NAN;
  const double ce = (static_cast<double>(m) - static_cast<double>(x_target)) + static_cast<double>(l);
  *err = (1.2e-5 + 1.2e-7 * static_cast<double>(C)) * ce + 1e-30 + static_cast<double>(C) * 1e-37;
  return ce;
}

LogisticBounds::LogisticBounds(const CpuRowKernels& k, const Inputs& in, int64_t b)
    : k_(k), in_(in), b_(b), C_(in.C) {}

// sum_c softplus(x_c) - x_t from float32 terms of a few ulp each (fast_exp,
// fast_log1p_unit, one addition; clamped exp: an absolute 1.2e-38), summed in
// float64: |error| <= 1e-6 S with S the sum of the (non-negative) terms; the
// bound below is looser by a factor of 4.
double LogisticBounds::approx(int64_t p, int32_t target, double* err) {
  if (p >= r1_) {  // the next chunk of rows, from p on
    r0_ = p;
    r1_ = std::min(p + kRows, in_.P);
    const int64_t i0 = (b_ * in_.P + r0_) * C_, n = (r1_ - r0_) * C_;
    if (terms_.empty()) terms_.resize(kRows * C_);  // on first use
    if (in_.conf_dtype == DType::kF32) {
      x_ = static_cast<const float*>(in_.conf) + i0;
    } else {
      if (xbuf_.empty()) xbuf_.resize(kRows * C_);
      for (int64_t i = 0; i < n; ++i) xbuf_[i] = load_float(in_.conf, in_.conf_dtype, i0 + i);
      x_ = xbuf_.data();
    }
    k_.softplus_terms(x_, n, terms_.data());
  }
  const float* x = x_ + (p - r0_) * C_;
  const float* t = terms_.data() + (p - r0_) * C_;
  double s = 0.0;
  bool nan = false;
  for (int64_t c = 0; c < C_; ++c) {
    s += static_cast<double>(t[c]);
    nan |= x[c] != x[c];
  }
  if (nan) return NAN;
  *err = 4e-6 * s + 1e-30 + static_cast<double>(C_) * 1e-37;
  return s - static_cast<double>(x[target]);
}

namespace {

// The k-th largest (1-based) of vals[0, n).
uint64_t kth_largest(std::vector<uint64_t>& vals, int64_t k) {
  std::nth_element(vals.begin(), vals.begin() + (k - 1), vals.end(), std::greater<uint64_t>());
  return vals[k - 1];
}

// Exact keys of ids[i, j) into bounds, then sorted by (key desc, index asc).
void sort_exact(int32_t* ids, int64_t i, int64_t j, KeyBounds* bounds, const ExactKey& exact) {
  for (int64_t q = i; q < j; ++q) {
    const uint64_t key = exact(ids[q]);
    bounds[ids[q]] = {key, key};
  }
  std::sort(ids + i, ids + j, [&](int32_t a, int32_t b) {
    return hard_example_before(bounds[a].lo, a, bounds[b].lo, b);
  });
}

}  // namespace

// With L, H the k-th largest lower and upper bounds, the exact k-th key V
// lies in [L, H]: a row with lo > H ranks strictly above V (kept), one with
// hi < L strictly below (dropped); the rest are ranked exactly for the
// remaining places.
void exact_top_k(int32_t* ids, int64_t n, int64_t k, KeyBounds* bounds, const ExactKey& exact) {
  if (k <= 0 || k >= n) return;
  std::vector<uint64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = bounds[ids[i]].lo;
  const uint64_t L = kth_largest(v, k);
  for (int64_t i = 0; i < n; ++i) v[i] = bounds[ids[i]].hi;
  const uint64_t H = kth_largest(v, k);
  // [kept | undecided | dropped]
  const auto mid = std::partition(ids, ids + n, [&](int32_t p) { return bounds[p].lo > H; });
  const auto end = std::partition(mid, ids + n, [&](int32_t p) { return bounds[p].hi >= L; });
  const int64_t n_in = mid - ids, n_und = end - mid;
  sort_exact(ids, n_in, n_in + n_und, bounds, exact);
}

// Sorted by the upper bounds, rows fall into runs whose intervals chain
// together; rows of different runs are ordered by their bounds alone, each
// run of two or more is ranked exactly.
void exact_order(int32_t* ids, int64_t n, KeyBounds* bounds, const ExactKey& exact) {
  std::sort(ids, ids + n, [&](int32_t a, int32_t b) {
    return hard_example_before(bounds[a].hi, a, bounds[b].hi, b);
  });
  for (int64_t i = 0; i < n;) {
    uint64_t run_lo = bounds[ids[i]].lo;
    int64_t j = i + 1;
    while (j < n && bounds[ids[j]].hi >= run_lo) {
      run_lo = std::min(run_lo, bounds[ids[j]].lo);
      ++j;
    }
    if (j - i > 1) sort_exact(ids, i, j, bounds, exact);
    i = j;
  }
}

// The rest's exact top `chunk` set ranks below the prefix and above every
// other row: sorted exactly, it continues the exact order.
int64_t exact_order_next(int32_t* ids, int64_t n, int64_t done, int64_t chunk, KeyBounds* bounds,
                         const ExactKey& exact) {
  const int64_t k = std::min(chunk, n - done);
  exact_top_k(ids + done, n - done, k, bounds, exact);
  exact_order(ids + done, k, bounds, exact);
  return done + k;
}

}  // namespace mbx
