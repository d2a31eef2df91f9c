// Box encoding and decoding on the CPU (docs/SPEC.md §3); the per-box
// formulas are encode_math.h's, shared with the CUDA path.
#pragma once

#include <cstdint>

#include "common/types.h"
#include "encode/encode_math.h"

namespace mbx {

struct PriorGeometry;

inline EncodeParams encode_params(const Options& o) {
  EncodeParams e;
  // encode_variance_in_target: targets and decoding without variances; the
  // loss divides the residuals by them instead (loc_residual_divisors).
  for (int k = 0; k < 4; ++k) e.v[k] = o.encode_variance_in_target ? 1.0 : o.variances[k];
  e.min_wh = o.encode_min_gt_wh;
  e.coding = static_cast<int>(o.box_coding);
  return e;
}

// The divisors of the loc residual (loc - target) in the loss: the
// variances under encode_variance_in_target, else 1 (exact: no change).
inline void loc_residual_divisors(const Options& o, double div[4]) {
  for (int k = 0; k < 4; ++k) div[k] = o.encode_variance_in_target ? o.variances[k] : 1.0;
}

// Decode a batch of offsets [B,P,4] into corner boxes on the CPU.
void decode_cpu(const Options& o, const PriorGeometry& pg, int64_t B, const float* loc,
                float* boxes, int num_threads);

}  // namespace mbx
