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
  for (int k = 0; k < 4; ++k) e.v[k] = o.variances[k];
  e.min_wh = o.encode_min_gt_wh;
  return e;
}

// Decode a batch of offsets [B,P,4] into corner boxes on the CPU.
void decode_cpu(const Options& o, const PriorGeometry& pg, int64_t B, const float* loc,
                float* boxes, int num_threads);

}  // namespace mbx
