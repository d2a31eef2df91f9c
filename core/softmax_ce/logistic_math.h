// The LOGISTIC classification loss (Caffe's SigmoidCrossEntropyLoss,
// docs/SPEC.md §4.6) of one logit, once for the CPU and the CUDA paths:
// the sigmoid cross-entropy of x against the one-hot target y and its
// derivative sigmoid(x) - y, in float64.
#pragma once

#include <math.h>

#include "common/hd.h"

namespace mbx {

// softplus(x) - x y, written without overflow: max(x, 0) - x y + log1p(exp(-|x|)).
MBX_HD_INLINE double logistic_value(double x, bool y) {
  return (x > 0.0 ? x : 0.0) - (y ? x : 0.0) + log1p(exp(-fabs(x)));
}

// d/dx = sigmoid(x) - y, from e = exp(-|x|) (sigmoid(|x|) = 1 / (1 + e)) so
// that neither sigmoid(x) nor sigmoid(-x) = 1 - sigmoid(x) cancels.
MBX_HD_INLINE double logistic_grad(double x, bool y) {
  const double e = exp(-fabs(x));
  const double sig = x >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
  const double sig_neg = x >= 0.0 ? e / (1.0 + e) : 1.0 / (1.0 + e);  // sigmoid(-x)
  return y ? -sig_neg : sig;
}

}  // namespace mbx
