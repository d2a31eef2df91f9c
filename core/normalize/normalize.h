// Loss normalisation (SPEC §4): per-image factors applied to the per-image
// sums and, identically, to their gradients.
#pragma once

#include <cstdint>

#include "common/types.h"

namespace mbx {

// loc_scale[b], conf_scale[b] from the per-image positive counts.
inline void normalization_scales(const Options& o, int64_t B, const int64_t* num_pos,
                                 double* loc_scale, double* conf_scale) {
  switch (o.normalization) {
    case Normalization::kTotalPositives: {
      int64_t total = 0;
      for (int64_t b = 0; b < B; ++b) total += num_pos[b];
      const double s = 1.0 / static_cast<double>(total > 1 ? total : 1);
      for (int64_t b = 0; b < B; ++b) loc_scale[b] = conf_scale[b] = s;
      break;
    }
    case Normalization::kPerImage:
      for (int64_t b = 0; b < B; ++b) {
        const double per =
            1.0 / (static_cast<double>(num_pos[b] > 1 ? num_pos[b] : 1) * static_cast<double>(B));
        conf_scale[b] = per;
        loc_scale[b] = o.loc_average_coords ? per / 4.0 : per;
      }
      break;
    case Normalization::kNone:
      for (int64_t b = 0; b < B; ++b) loc_scale[b] = conf_scale[b] = 1.0;
      break;
    case Normalization::kExternal:
      for (int64_t b = 0; b < B; ++b) loc_scale[b] = conf_scale[b] = 1.0 / o.external_norm;
      break;
  }
}

}  // namespace mbx
