// The ATSS assigner (docs/SPEC.md §2.8) through mbx_run: cpu against
// cpu-scalar bit for bit on RetinaNet pyramids, the rules mmdetection leaves
// open (ties, K = 1, levels smaller than atss_topk, absent prior_levels),
// and what ATSS ignores (thresholds, force_match).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "npy.h"
#include "test_util.h"

using namespace mbx_test;

namespace {

// RetinaNet anchors (mbx_priors_retinanet) of an H x W image and their level
// sizes, with B images of 0..max_gt random GTs from 3 px to most of the image.
struct Pyramid {
  int64_t B, P, G;
  HostTensor<float> priors, gt_boxes;
  HostTensor<int32_t> levels, gt_labels, gt_counts;
};

Pyramid pyramid(uint64_t seed, int64_t H, int64_t W, int64_t B, int64_t max_gt) {
  Pyramid py;
  py.B = B;
  py.G = max_gt;
  EXPECT_EQ(mbx_priors_retinanet_count(H, W, &py.P), MBX_STATUS_OK);
  py.priors = HostTensor<float>({py.P, 4});
  EXPECT_EQ(mbx_priors_retinanet(H, W, py.priors.dl()), MBX_STATUS_OK);
  py.levels = HostTensor<int32_t>({MBX_RETINANET_NUM_LEVELS});
  EXPECT_EQ(mbx_priors_retinanet_levels(H, W, py.levels.dl()), MBX_STATUS_OK);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  py.gt_boxes = HostTensor<float>({B, max_gt, 4}, 0.f);
  py.gt_labels = HostTensor<int32_t>({B, max_gt}, 0);
  py.gt_counts = HostTensor<int32_t>({B}, 0);
  for (int64_t b = 0; b < B; ++b) {
    py.gt_counts[b] = static_cast<int32_t>(rng() % (max_gt + 1));
    for (int64_t g = 0; g < max_gt; ++g) {
      const double w = std::exp(std::log(3.0) + u(rng) * std::log(0.9 * W / 3.0));
      const double h = std::exp(std::log(3.0) + u(rng) * std::log(0.9 * H / 3.0));
      const double x = u(rng) * (W - w), y = u(rng) * (H - h);
      float* r = &py.gt_boxes[(b * max_gt + g) * 4];
      r[0] = float(x); r[1] = float(y); r[2] = float(x + w); r[3] = float(y + h);
      py.gt_labels[b * max_gt + g] = static_cast<int32_t>(rng() % 5);
    }
  }
  return py;
}

struct Matched {
  mbx_status_t status;
  HostTensor<int32_t> conf_target, matched_gt, num_pos;
  HostTensor<float> loc_target;
};

// MATCH through mbx_run; levels null = no prior_levels.
Matched match(Pyramid& py, const mbx_options_t& o, mbx_path_t path, HostTensor<int32_t>* levels,
              int threads = 0) {
  Matched m;
  m.conf_target = HostTensor<int32_t>({py.B, py.P}, -7);
  m.matched_gt = HostTensor<int32_t>({py.B, py.P}, -7);
  m.num_pos = HostTensor<int32_t>({py.B}, -7);
  m.loc_target = HostTensor<float>({py.B, py.P, 4}, -7.f);
  mbx_context_t* ctx = nullptr;
  mbx_context_create(&ctx);
  mbx_context_set_path(ctx, path);
  mbx_context_set_num_threads(ctx, threads);
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = py.priors.dl();
  t.gt_boxes = py.gt_boxes.dl();
  t.gt_labels = py.gt_labels.dl();
  t.gt_counts = py.gt_counts.dl();
  t.prior_levels = levels ? levels->dl() : nullptr;
  t.conf_target = m.conf_target.dl();
  t.matched_gt = m.matched_gt.dl();
  t.loc_target = m.loc_target.dl();
  t.num_pos = m.num_pos.dl();
  m.status = mbx_run(ctx, &o, MBX_OP_MATCH, &t);
  mbx_context_destroy(ctx);
  return m;
}

mbx_options_t atss(int32_t topk) {
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_RETINANET);
  o.assigner = MBX_ASSIGNER_ATSS;
  o.atss_topk = topk;
  return o;
}

void expect_same(const Matched& a, const Matched& b, const std::string& what) {
  ASSERT_EQ(a.status, MBX_STATUS_OK) << what << ": " << mbx_last_error();
  ASSERT_EQ(b.status, MBX_STATUS_OK) << what;
  EXPECT_EQ(a.conf_target.data, b.conf_target.data) << what;
  EXPECT_EQ(a.matched_gt.data, b.matched_gt.data) << what;
  EXPECT_EQ(a.num_pos.data, b.num_pos.data) << what;
  EXPECT_EQ(a.loc_target.data, b.loc_target.data) << what;
}

int64_t positives(const Matched& m) {
  int64_t n = 0;
  for (int32_t v : m.num_pos.data) n += v;
  return n;
}

TEST(Atss, CpuEqualsCpuScalarBitForBitForAnyThreadCount) {
  for (int32_t topk : {1, 4, 9, 12}) {
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      Pyramid py = pyramid(seed, 96, 128, 3, 9);
      const std::string what = "topk " + std::to_string(topk) + " seed " + std::to_string(seed);
      const Matched ref = match(py, atss(topk), MBX_PATH_CPU_SCALAR, &py.levels);
      EXPECT_GT(positives(ref), 0) << what;
      for (int threads : {1, 3}) expect_same(match(py, atss(topk), MBX_PATH_CPU, &py.levels, threads), ref, what);
    }
  }
}

TEST(Atss, ThresholdsAndForceMatchTakeNoPart) {
  Pyramid py = pyramid(7, 64, 64, 2, 6);
  const Matched ref = match(py, atss(9), MBX_PATH_CPU_SCALAR, &py.levels);
  ASSERT_GT(positives(ref), 0);
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    for (mbx_force_match_t fm : {MBX_FORCE_MATCH_NONE, MBX_FORCE_MATCH_BEST_PRIOR_PER_GT, MBX_FORCE_MATCH_BIPARTITE}) {
      mbx_options_t o = atss(9);
      o.force_match = fm;
      o.pos_threshold = 0.9;
      o.neg_threshold = 0.1;
      expect_same(match(py, o, path, &py.levels), ref, "force_match " + std::to_string(fm));
    }
  }
}

TEST(Atss, AbsentPriorLevelsIsOneLevelAndEmptyLevelsChangeNothing) {
  Pyramid py = pyramid(11, 64, 96, 2, 7);
  HostTensor<int32_t> one({1}, static_cast<int32_t>(py.P));
  // The pyramid with empty levels before, between and after.
  HostTensor<int32_t> padded({8}, 0);
  for (int l = 0; l < 5; ++l) padded[1 + l + (l >= 2 ? 1 : 0)] = py.levels[l];
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    const Matched absent = match(py, atss(9), path, nullptr);
    expect_same(match(py, atss(9), path, &one), absent, "one level");
    expect_same(match(py, atss(9), path, &padded), match(py, atss(9), path, &py.levels), "empty levels");
    // One level of P priors and a 5-level pyramid choose different candidates.
    EXPECT_NE(absent.conf_target.data, match(py, atss(9), path, &py.levels).conf_target.data);
  }
}

TEST(Atss, OneCandidatePerGtGivesNoPositive) {
  // K = 1: the unbiased std of one IoU is 0/0 = NaN, and nothing is >= NaN.
  Pyramid py = pyramid(3, 64, 64, 2, 5);
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    const Matched m = match(py, atss(1), path, nullptr);
    ASSERT_EQ(m.status, MBX_STATUS_OK);
    EXPECT_EQ(positives(m), 0);
    for (int32_t v : m.conf_target.data) EXPECT_EQ(v, 0);
    // With the 5 levels, K = 5 and there are positives.
    EXPECT_GT(positives(match(py, atss(1), path, &py.levels)), 0);
  }
}

TEST(Atss, TopkAtOrAboveEveryLevelSizeTakesWholeLevels) {
  // atss_topk >= the largest level: every prior is a candidate of every GT,
  // whatever atss_topk is beyond that.
  Pyramid py = pyramid(5, 32, 32, 2, 4);
  int32_t largest = 0;
  for (int l = 0; l < 5; ++l) largest = std::max(largest, py.levels[l]);
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU})
    expect_same(match(py, atss(largest + 50), path, &py.levels), match(py, atss(largest), path, &py.levels),
                "whole levels");
}

TEST(Atss, SharedPriorGoesToHighestIouThenLowestRow) {
  Pyramid py = pyramid(9, 64, 64, 1, 2);
  py.gt_counts[0] = 2;
  // Row 1 is row 0 again: equal IoUs everywhere, so row 0 keeps every prior.
  for (int k = 0; k < 4; ++k) py.gt_boxes[4 + k] = py.gt_boxes[k];
  py.gt_labels[0] = 1;
  py.gt_labels[1] = 3;
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    const Matched m = match(py, atss(9), path, &py.levels);
    ASSERT_EQ(m.status, MBX_STATUS_OK);
    ASSERT_GT(positives(m), 0);
    for (int64_t p = 0; p < py.P; ++p) {
      if (m.conf_target.data[p] > 0) {
        EXPECT_EQ(m.matched_gt.data[p], 0) << p;
        EXPECT_EQ(m.conf_target.data[p], 2) << p;
      }
    }
  }
}

TEST(Atss, ImageWithoutGtIsAllNegative) {
  Pyramid py = pyramid(2, 64, 64, 2, 3);
  py.gt_counts[0] = 0;
  py.gt_counts[1] = 0;
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    const Matched m = match(py, atss(9), path, &py.levels);
    ASSERT_EQ(m.status, MBX_STATUS_OK);
    for (int32_t v : m.conf_target.data) EXPECT_EQ(v, 0);
    for (int32_t v : m.matched_gt.data) EXPECT_EQ(v, -1);
    for (float v : m.loc_target.data) EXPECT_EQ(v, 0.f);
  }
}

}  // namespace
