// Loss normalisation (docs/SPEC.md §4): per-image factors applied to the
// per-image sums and, identically, to their gradients. One definition for
// the CPU paths (int64 counts) and the CUDA path (int32 device counts, one
// thread: no host round trip).
#pragma once

#include <cstdint>

#include "common/hd.h"
#include "common/types.h"

namespace mbx {

// The options the scales read, in a form a kernel argument can carry.
struct NormalizeParams {
  Normalization mode;
  bool loc_average_coords;
  double external_norm;
};

// loc_scale[b], conf_scale[b] from the per-image positive counts.
template <typename Count>
MBX_HD_INLINE void normalization_scales(const NormalizeParams& s, int64_t B, const Count* num_pos,
                                        double* loc_scale, double* conf_scale) {
  switch (s.mode) {
    case Normalization::kTotalPositives: {
      long long total = 0;
      for (int64_t b = 0; b < B; ++b) total += num_pos[b];
      const double v = 1.0 / static_cast<double>(total > 1 ? total : 1);
      for (int64_t b = 0; b < B; ++b) loc_scale[b] = conf_scale[b] = v;
      break;
    }
    case Normalization::kPerImage:
      for (int64_t b = 0; b < B; ++b) {
        const long long n = num_pos[b];
        const double per = 1.0 / (static_cast<double>(n > 1 ? n : 1) * static_cast<double>(B));
        conf_scale[b] = per;
        loc_scale[b] = s.loc_average_coords ? per / 4.0 : per;
      }
      break;
    case Normalization::kNone:
      for (int64_t b = 0; b < B; ++b) loc_scale[b] = conf_scale[b] = 1.0;
      break;
    case Normalization::kExternal:
      for (int64_t b = 0; b < B; ++b) loc_scale[b] = conf_scale[b] = 1.0 / s.external_norm;
      break;
  }
}

}  // namespace mbx
