// Loss normalisation (docs/SPEC.md §4): per-image factors applied to the
// per-image sums and, identically, to their gradients. One definition for
// the CPU paths (int64 counts) and the CUDA path (int32 device counts, one
// thread: no host round trip). loc_average_coords divides the loc factor by
// 4 under every mode (the mean over the 4 coordinates).
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
  int64_t P;  // priors per image (FULL)
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
      for (int64_t b = 0; b < B; ++b) {
        conf_scale[b] = v;
        loc_scale[b] = s.loc_average_coords ? v / 4.0 : v;
      }
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
    case Normalization::kExternal:
    case Normalization::kBatchSize:
    case Normalization::kFull: {
      const double v =
          s.mode == Normalization::kNone       ? 1.0
          : s.mode == Normalization::kExternal ? 1.0 / s.external_norm
          : s.mode == Normalization::kBatchSize
              ? 1.0 / static_cast<double>(B > 1 ? B : 1)
              : 1.0 / static_cast<double>(B * s.P > 1 ? B * s.P : 1);
      for (int64_t b = 0; b < B; ++b) {
        conf_scale[b] = v;
        loc_scale[b] = s.loc_average_coords ? v / 4.0 : v;
      }
      break;
    }
  }
}

}  // namespace mbx
