// Regression loss on the positives' 4 coordinates (docs/SPEC.md §4):
// SMOOTH_L1(beta): 0.5 d^2/beta if |d| < beta else |d| - 0.5 beta (Fast
// R-CNN's robust loss; beta = 0 is L1), L1: |d|. Value and d/dd, one
// definition for the CPU paths and the CUDA path (encode.cu).
#pragma once

#include <math.h>

#include "common/hd.h"

namespace mbx {

template <typename T>
MBX_HD_INLINE T loc_loss_value(T d, bool l1, T beta) {
  const T a = fabs(d);
  if (l1) return a;
  return a < beta ? T(0.5) * d * d / beta : a - T(0.5) * beta;
}

// d/dd; sign(0) = 0 as numpy's, so an exact hit has zero gradient.
template <typename T>
MBX_HD_INLINE T loc_loss_grad(T d, bool l1, T beta) {
  const T s = d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
  if (l1) return d != d ? d : s;  // NaN propagates
  return fabs(d) < beta ? d / beta : (d != d ? d : s);
}

// The loss of one residual under loc_loss: SMOOTH_L1 / L1 above, or L2 =
// 0.5 d^2 (Caffe's EuclideanLoss).
template <typename T>
MBX_HD_INLINE T loc_residual_value(T d, bool l1, bool l2, T beta) {
  return l2 ? T(0.5) * d * d : loc_loss_value(d, l1, beta);
}

}  // namespace mbx
