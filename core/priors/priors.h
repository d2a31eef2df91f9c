// Prior (default box / anchor) generation for the standard configurations,
// bit-identical to the anchors' own code so users need no Python to build
// real priors.
#pragma once

#include <cstdint>
#include <vector>

namespace mbx {

enum class SsdConfig { kSsd300Voc = 0, kSsd300Coco = 1, kSsd512Voc = 2 };

// Number of priors of a configuration (8732 for SSD300, 24564 for SSD512).
int64_t ssd_prior_count(SsdConfig cfg);
// ssd.pytorch PriorBox: float64 arithmetic, rounded to float32, clipped to
// [0,1]; CENTER_SIZE rows in its order (map, row i, column j, box).
void ssd_priors(SsdConfig cfg, float* out);

// pytorch-retinanet Anchors for an H x W image: levels 3..7.
int64_t retinanet_anchor_count(int64_t height, int64_t width);
// Anchors per level (levels 3..7 in anchor order); they sum to the count.
constexpr int kRetinanetLevels = 5;
void retinanet_level_sizes(int64_t height, int64_t width, int64_t out[kRetinanetLevels]);
void retinanet_anchors(int64_t height, int64_t width, float* out);

}  // namespace mbx
