// The cpu path's ranking for HARD_EXAMPLE mining and LOGISTIC's negative
// mining (docs/SPEC.md §4.6): the exact float64 ranking of the cpu-scalar
// code (hard_example_rank_key order: higher loss first, NaN above all, equal
// losses -> the lower prior index), decided from cheap float32 SIMD bounds
// and the exact float64 loss of only the rows that the bounds cannot place.
// The kept sets are therefore bitwise those of cpu-scalar, whatever the
// thread count and the instruction set.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/types.h"
#include "pipeline/cpu_kernels.h"

namespace mbx {

// Bounds of a row's float64 loss as ranking keys: the exact key lies in
// [lo, hi]. A row whose bounds cannot be formed (non-finite logits) gets the
// whole range [0, ~0] and is always computed exactly.
struct KeyBounds {
  uint64_t lo, hi;
};

// Whether x[0, n) holds a NaN or an infinity (the SIMD row statistics do not
// reliably carry NaN through; such rows take whole-range bounds).
bool any_nonfinite(const float* x, int64_t n);

// Bounds from an approximation a of the loss with |a - exact| <= err.
KeyBounds key_bounds(double a, double err);

// Float32 SIMD approximation with its error bound of the softmax CE of a
// row against its target column from the row's softmax_rows statistics (m,
// l); NaN (-> whole-range bounds) where it does not apply.
double approx_softmax_ce(float m, float l, float x_target, int64_t C, double* err);

// Float32 SIMD approximations with their error bounds of the LOGISTIC row
// losses sum_c softplus(x_c) - x_target (logistic_math.h) of image b's rows,
// asked in non-decreasing prior order (the softplus terms are formed kRows
// rows at a time over the contiguous block); NaN where they do not apply.
class LogisticBounds {
 public:
  LogisticBounds(const CpuRowKernels& k, const Inputs& in, int64_t b);
  double approx(int64_t p, int32_t target, double* err);

 private:
  static constexpr int64_t kRows = 256;
  const CpuRowKernels& k_;
  const Inputs& in_;
  int64_t b_, C_, r0_ = 0, r1_ = 0;
  const float* x_ = nullptr;
  std::vector<float> xbuf_, terms_;
};

// exact(p): the exact ranking key of prior p (hard_example_rank_key of its
// float64 loss, as the cpu-scalar code computes it).
using ExactKey = std::function<uint64_t(int32_t)>;

// Reorders ids[0, n) so that its first min(k, n) entries are the k
// top-ranked priors (bounds[p] for prior p).
void exact_top_k(int32_t* ids, int64_t n, int64_t k, KeyBounds* bounds, const ExactKey& exact);

// Sorts ids[0, n) into the exact ranking order.
void exact_order(int32_t* ids, int64_t n, KeyBounds* bounds, const ExactKey& exact);

// With ids[0, done) the first `done` of the exact ranking order, extends
// that prefix by up to `chunk` (the exact top of the rest, sorted); returns
// the new prefix length.
int64_t exact_order_next(int32_t* ids, int64_t n, int64_t done, int64_t chunk, KeyBounds* bounds,
                         const ExactKey& exact);

}  // namespace mbx
