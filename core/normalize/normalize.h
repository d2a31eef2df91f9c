// Loss normalisation on the host (docs/SPEC.md §4); the formula is
// normalize_math.h's, shared with the CUDA path.
#pragma once

#include <cstdint>

#include "common/types.h"
#include "normalize/normalize_math.h"

namespace mbx {

inline NormalizeParams normalize_params(const Options& o) {
  return NormalizeParams{o.normalization, o.loc_average_coords, o.external_norm};
}

// loc_scale[b], conf_scale[b] from the per-image positive counts.
inline void normalization_scales(const Options& o, int64_t B, const int64_t* num_pos,
                                 double* loc_scale, double* conf_scale) {
  normalization_scales(normalize_params(o), B, num_pos, loc_scale, conf_scale);
}

}  // namespace mbx
