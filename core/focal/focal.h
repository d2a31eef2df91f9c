// Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection",
// eq. (5)) from logits. With p = sigmoid(x), q = 1 - p:
//   t = 1: alpha q^gamma (-log p)        = alpha q^gamma softplus(-x)
//   t = 0: (1-alpha) p^gamma (-log q)    = (1-alpha) p^gamma softplus(x)
// Both logs go through softplus and p, q through exp(-softplus(.)), so there
// is no cancellation and |x| = 100 stays finite and exact (pytorch-retinanet
// instead clamps p to [1e-4, 1-1e-4]; docs/SPEC.md §6.5).
#pragma once

#include <cmath>

namespace mbx {

template <typename T>
inline T softplus(T x) {
  // max(x,0) + log1p(exp(-|x|)): never overflows.
  return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
}

template <typename T>
inline T focal_pow(T base, T gamma) {
  return gamma == T(2) ? base * base : std::pow(base, gamma);
}

// Value and derivative d/dx of one element; `positive` is t == 1.
template <typename T>
inline void focal_element(T x, bool positive, T alpha, T gamma, T* value, T* grad) {
  const T sp_pos = softplus(x);   // -log(1-p)
  const T sp_neg = softplus(-x);  // -log(p)
  const T p = std::exp(-sp_neg);
  const T q = std::exp(-sp_pos);
  if (positive) {
    const T w = alpha * focal_pow(q, gamma);
    *value = w * sp_neg;
    *grad = w * (-gamma * p * sp_neg - q);
  } else {
    const T w = (T(1) - alpha) * focal_pow(p, gamma);
    *value = w * sp_pos;
    *grad = w * (gamma * q * sp_pos + p);
  }
}

}  // namespace mbx
