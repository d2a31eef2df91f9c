#include "priors/priors.h"

#include <algorithm>
#include <cmath>

#include "common/types.h"

namespace mbx {

namespace {

struct SsdLayout {
  double image_size;
  std::vector<int> feature_maps;
  std::vector<double> steps, min_sizes, max_sizes;
  std::vector<std::vector<double>> aspect_ratios;
};

SsdLayout ssd_layout(SsdConfig cfg) {
  switch (cfg) {
    case SsdConfig::kSsd300Voc:  // ssd.pytorch data/config.py `voc`
      return {300, {38, 19, 10, 5, 3, 1}, {8, 16, 32, 64, 100, 300},
              {30, 60, 111, 162, 213, 264}, {60, 111, 162, 213, 264, 315},
              {{2}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}}};
    case SsdConfig::kSsd300Coco:  // ssd.pytorch data/config.py `coco`
      return {300, {38, 19, 10, 5, 3, 1}, {8, 16, 32, 64, 100, 300},
              {21, 45, 99, 153, 207, 261}, {45, 99, 153, 207, 261, 315},
              {{2}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}}};
    case SsdConfig::kSsd512Voc:  // Caffe SSD512 VOC sizes in ssd.pytorch's scheme
      return {512, {64, 32, 16, 8, 4, 2, 1}, {8, 16, 32, 64, 128, 256, 512},
              {35.84, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8},
              {76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6},
              {{2}, {2, 3}, {2, 3}, {2, 3}, {2, 3}, {2}, {2}}};
  }
  fail("config: unknown SSD prior configuration " + std::to_string(static_cast<int>(cfg)));
}

}  // namespace

int64_t ssd_prior_count(SsdConfig cfg) {
  const SsdLayout L = ssd_layout(cfg);
  int64_t n = 0;
  for (size_t k = 0; k < L.feature_maps.size(); ++k)
    n += static_cast<int64_t>(L.feature_maps[k]) * L.feature_maps[k] *
         (2 + 2 * static_cast<int64_t>(L.aspect_ratios[k].size()));
  return n;
}

void ssd_priors(SsdConfig cfg, float* out) {
  const SsdLayout L = ssd_layout(cfg);
  int64_t i = 0;
  auto put = [&](double cx, double cy, double w, double h) {
    // torch.Tensor(list) rounds each float64 to float32, then clamp_(0, 1).
    const double v[4] = {cx, cy, w, h};
    for (double x : v) out[i++] = std::min(1.0f, std::max(0.0f, static_cast<float>(x)));
  };
  for (size_t k = 0; k < L.feature_maps.size(); ++k) {
    const int f = L.feature_maps[k];
    for (int r = 0; r < f; ++r) {
      for (int c = 0; c < f; ++c) {
        const double f_k = L.image_size / L.steps[k];
        const double cx = (c + 0.5) / f_k, cy = (r + 0.5) / f_k;
        const double s_k = L.min_sizes[k] / L.image_size;
        put(cx, cy, s_k, s_k);
        const double s_k_prime = std::sqrt(s_k * (L.max_sizes[k] / L.image_size));
        put(cx, cy, s_k_prime, s_k_prime);
        for (double ar : L.aspect_ratios[k]) {
          put(cx, cy, s_k * std::sqrt(ar), s_k / std::sqrt(ar));
          put(cx, cy, s_k / std::sqrt(ar), s_k * std::sqrt(ar));
        }
      }
    }
  }
}

namespace {
constexpr int kLevels[5] = {3, 4, 5, 6, 7};
int64_t level_cells(int64_t n, int level) {
  const int64_t s = int64_t(1) << level;
  return (n + s - 1) / s;  // (image_shape + 2**x - 1) // (2**x)
}
}  // namespace

void retinanet_level_sizes(int64_t height, int64_t width, int64_t out[kRetinanetLevels]) {
  for (int i = 0; i < kRetinanetLevels; ++i)
    out[i] = level_cells(height, kLevels[i]) * level_cells(width, kLevels[i]) * 9;
}

int64_t retinanet_anchor_count(int64_t height, int64_t width) {
  int64_t sizes[kRetinanetLevels], n = 0;
  retinanet_level_sizes(height, width, sizes);
  for (int64_t s : sizes) n += s;
  return n;
}

void retinanet_anchors(int64_t height, int64_t width, float* out) {
  const double ratios[3] = {0.5, 1.0, 2.0};
  const double scales[3] = {std::pow(2.0, 0.0), std::pow(2.0, 1.0 / 3.0),
                            std::pow(2.0, 2.0 / 3.0)};
  int64_t i = 0;
  for (int l : kLevels) {
    const double stride = std::pow(2.0, l), base = std::pow(2.0, l + 2);
    // generate_anchors(): anchor a has ratio[a/3], scale[a%3]; centred at 0.
    double anc[9][4];
    for (int a = 0; a < 9; ++a) {
      const double side = base * scales[a % 3];
      const double area = side * side;
      const double w = std::sqrt(area / ratios[a / 3]);
      const double h = w * ratios[a / 3];
      anc[a][0] = 0.0 - w * 0.5;
      anc[a][1] = 0.0 - h * 0.5;
      anc[a][2] = w - w * 0.5;
      anc[a][3] = h - h * 0.5;
    }
    const int64_t ny = level_cells(height, l), nx = level_cells(width, l);
    for (int64_t y = 0; y < ny; ++y) {
      const double sy = (static_cast<double>(y) + 0.5) * stride;
      for (int64_t x = 0; x < nx; ++x) {
        const double sx = (static_cast<double>(x) + 0.5) * stride;
        for (int a = 0; a < 9; ++a) {
          out[i++] = static_cast<float>(anc[a][0] + sx);
          out[i++] = static_cast<float>(anc[a][1] + sy);
          out[i++] = static_cast<float>(anc[a][2] + sx);
          out[i++] = static_cast<float>(anc[a][3] + sy);
        }
      }
    }
  }
}

}  // namespace mbx
