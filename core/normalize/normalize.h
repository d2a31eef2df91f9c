// Loss normalisation on the host (docs/SPEC.md §4); the formula is
// normalize_math.h's, shared with the CUDA path.
#pragma once

#include <cstdint>

#include "common/types.h"
#include "normalize/normalize_math.h"

namespace mbx {

inline NormalizeParams normalize_params(const Options& o, int64_t P) {
  return NormalizeParams{o.normalization, o.loc_average_coords, o.external_norm, P};
}

// loc_scale[b], conf_scale[b] from the per-image positive counts (P priors
// per image).
inline void normalization_scales(const Options& o, int64_t B, int64_t P, const int64_t* num_pos,
                                 double* loc_scale, double* conf_scale) {
  normalization_scales(normalize_params(o, P), B, num_pos, loc_scale, conf_scale);
}

}  // namespace mbx
