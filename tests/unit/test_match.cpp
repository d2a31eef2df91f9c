// Matching, encoding/decoding and prior generation through the C API.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "npy.h"
#include "test_util.h"

using namespace mbx_test;

namespace {

// Corner priors given explicitly, one image.
struct Tiny {
  HostTensor<float> priors, gt;
  HostTensor<int32_t> labels, counts, ct, mg, np;
  HostTensor<float> lt;
  Tiny(std::vector<std::array<float, 4>> pri, std::vector<std::array<float, 4>> g,
       std::vector<int32_t> lab) {
    const int64_t P = pri.size(), G = g.size();
    priors = HostTensor<float>({P, 4});
    for (int64_t p = 0; p < P; ++p) for (int k = 0; k < 4; ++k) priors[4 * p + k] = pri[p][k];
    gt = HostTensor<float>({1, std::max<int64_t>(G, 1), 4}, 0.f);
    for (int64_t i = 0; i < G; ++i) for (int k = 0; k < 4; ++k) gt[4 * i + k] = g[i][k];
    labels = HostTensor<int32_t>({1, std::max<int64_t>(G, 1)}, 0);
    for (int64_t i = 0; i < G; ++i) labels[i] = lab[i];
    counts = HostTensor<int32_t>({1}, static_cast<int32_t>(G));
    ct = HostTensor<int32_t>({1, P}, -9);
    mg = HostTensor<int32_t>({1, P}, -9);
    np = HostTensor<int32_t>({1}, -9);
    lt = HostTensor<float>({1, P, 4}, -9.f);
  }
  mbx_status_t run(const mbx_options_t& o, mbx_path_t path = MBX_PATH_CPU) {
    mbx_context_t* ctx;
    mbx_context_create(&ctx);
    mbx_context_set_path(ctx, path);
    auto s = mbx_match(ctx, &o, 10, priors.dl(), gt.dl(), labels.dl(), counts.dl(), ct.dl(),
                       mg.dl(), lt.dl(), np.dl());
    mbx_context_destroy(ctx);
    return s;
  }
};

mbx_options_t corners(mbx_force_match_t fm, double pos = 0.5, double neg = 0.5) {
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_SSD);
  o.force_match = fm;
  o.pos_threshold = pos;
  o.neg_threshold = neg;
  return o;
}

class MatchPaths : public ::testing::TestWithParam<mbx_path_t> {};

TEST_P(MatchPaths, ForcesBestPriorWhenBelowThreshold) {
  // GT overlaps prior 1 with IoU 1/7 only.
  Tiny t({{0, 0, 1, 1}, {2, 2, 4, 4}, {10, 10, 11, 11}}, {{3, 3, 5, 5}}, {4});
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.ct[0], 0);
  EXPECT_EQ(t.ct[1], 5);
  EXPECT_EQ(t.mg[1], 0);
  EXPECT_EQ(t.ct[2], 0);
  EXPECT_EQ(t.np[0], 1);
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_NONE), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.ct[1], 0);
  EXPECT_EQ(t.np[0], 0);
}

TEST_P(MatchPaths, BestPriorPerGtHighestGtWinsSharedPrior) {
  // Both GTs have prior 0 as best prior; GT 1 (label 7) must win it.
  Tiny t({{0, 0, 2, 2}, {5, 5, 6, 6}}, {{0, 0, 2, 2}, {0, 0, 1.9f, 2}}, {3, 7});
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.mg[0], 1);
  EXPECT_EQ(t.ct[0], 8);
}

TEST_P(MatchPaths, ArgmaxTiesGoToLowestGtAndLowestPrior) {
  // Two identical GTs: every prior's best GT is 0; BEST_PRIOR_PER_GT picks
  // the first of two equally good priors, then GT 1 overwrites it.
  Tiny t({{0, 0, 2, 2}, {0, 0, 2, 2}, {8, 8, 9, 9}}, {{0, 0, 2, 2}, {0, 0, 2, 2}}, {1, 2});
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_NONE), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.mg[0], 0);
  EXPECT_EQ(t.mg[1], 0);
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.mg[0], 1);  // forced: the highest GT wins prior 0
  EXPECT_EQ(t.mg[1], 0);  // above threshold on its own, best GT 0
}

TEST_P(MatchPaths, LowQualityMakesEveryTiedPriorPositive) {
  // Priors 0 and 1 tie exactly (IoU 1/3 < neg 0.4) for the GT; both become positive.
  Tiny t({{0, 0, 2, 2}, {2, 0, 4, 2}, {9, 9, 10, 10}}, {{1, 0, 3, 2}}, {0});
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_LOW_QUALITY, 0.5, 0.4), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.ct[0], 1);
  EXPECT_EQ(t.ct[1], 1);
  EXPECT_EQ(t.ct[2], 0);
  EXPECT_EQ(t.np[0], 2);
}

TEST_P(MatchPaths, LowQualityGtOverlappingNothingMakesZeroIouPriorsPositive) {
  // docs/SPEC.md §2's literal consequence (same as torchvision).
  Tiny t({{0, 0, 2, 2}, {2, 0, 4, 2}}, {{0, 0, 2, 2}, {50, 50, 51, 51}}, {0, 1});
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_LOW_QUALITY, 0.5, 0.4), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.ct[0], 1);
  EXPECT_EQ(t.ct[1], 1);  // IoU 0 with GT 1 == its max 0
  EXPECT_EQ(t.mg[1], 0);  // keeps its own best GT (ties -> lowest g)
}

TEST_P(MatchPaths, IgnoredBandAndExactThresholds) {
  // IoUs 1/2 (positive: >= pos), 1/3 (ignored for neg 0.3 <= iou < 0.5), 1/7 negative.
  Tiny t({{0, 0, 2, 2}, {1, 0, 3, 2}, {2, 0, 4, 2}, {3, 0, 5, 2}}, {{0, 0, 3, 2}}, {2});
  // IoU(prior0)=2/3, prior1=2/3, prior2=1/4... use explicit thresholds
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_NONE, 2.0 / 3.0, 0.25), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.ct[0], 3);   // 2/3 >= 2/3 exactly
  EXPECT_EQ(t.ct[1], 3);
  EXPECT_EQ(t.ct[2], -1);  // 1/4 is not < 1/4: ignored
  EXPECT_EQ(t.ct[3], 0);
}

TEST_P(MatchPaths, ImageWithoutGtIsAllNegative) {
  Tiny t({{0, 0, 2, 2}, {1, 1, 3, 3}}, {}, {});
  ASSERT_EQ(t.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.ct[0], 0);
  EXPECT_EQ(t.ct[1], 0);
  EXPECT_EQ(t.mg[0], -1);
  EXPECT_EQ(t.np[0], 0);
  for (float v : t.lt.data) EXPECT_EQ(v, 0.f);
}

TEST_P(MatchPaths, SkipInvalidGtOptionIgnoresDegenerateRows) {
  Tiny t({{0, 0, 2, 2}, {4, 4, 6, 6}}, {{4, 4, 4, 6}, {0, 0, 2, 2}}, {1, 2});
  mbx_options_t o = corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT);
  EXPECT_EQ(t.run(o, GetParam()), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("gt_boxes[image 0, row 0]"), std::string::npos);
  o.invalid_gt = MBX_INVALID_GT_SKIP;
  ASSERT_EQ(t.run(o, GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(t.mg[0], 1);
  EXPECT_EQ(t.ct[1], 0);  // the skipped row forces nothing
  EXPECT_EQ(t.np[0], 1);
}

INSTANTIATE_TEST_SUITE_P(Cpu, MatchPaths, ::testing::Values(MBX_PATH_CPU_SCALAR, MBX_PATH_CPU),
                         [](const auto& i) { return std::string(i.param == MBX_PATH_CPU ? "fast" : "scalar"); });

TEST(Encode, DecodeInvertsEncodeOfMatchedTargets) {
  for (mbx_preset_t ps : {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_RETINANET}) {
    mbx_options_t o = preset(ps);
    Problem pr = random_problem(11, 2, 300, 5, 6, o.prior_format == MBX_PRIOR_CENTER_SIZE, true);
    Result r = run_all(pr, o, MBX_PATH_CPU, 0);
    ASSERT_EQ(r.status, MBX_STATUS_OK) << mbx_last_error();
    HostTensor<float> boxes({2, 300, 4});
    ASSERT_EQ(mbx_decode(nullptr, &o, pr.priors.dl(), r.loc_target.dl(), boxes.dl()), MBX_STATUS_OK)
        << mbx_last_error();
    int checked = 0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t p = 0; p < 300; ++p) {
        const int32_t g = r.matched_gt[b * 300 + p];
        if (g < 0) continue;
        for (int k = 0; k < 4; ++k)
          EXPECT_NEAR(boxes[(b * 300 + p) * 4 + k], pr.gt_boxes[(b * 6 + g) * 4 + k], 2e-6);
        ++checked;
      }
    EXPECT_GT(checked, 0);
  }
}

TEST(Priors, Ssd300VocEqualsTheGoldenRealisticPriorsBitForBit) {
  int64_t P = 0;
  ASSERT_EQ(mbx_priors_ssd_count(MBX_SSD300_VOC, &P), MBX_STATUS_OK);
  ASSERT_EQ(P, 8732);
  HostTensor<float> pri({P, 4});
  ASSERT_EQ(mbx_priors_ssd(MBX_SSD300_VOC, pri.dl()), MBX_STATUS_OK);
  auto ref = load_npy(std::string(MBX_GOLDEN_DIR) + "/v06_ssd300_realistic/priors.npy").as_float();
  ASSERT_EQ(ref.size(), pri.data.size());
  EXPECT_EQ(std::memcmp(ref.data(), pri.data.data(), ref.size() * 4), 0);
}

TEST(Priors, CountsOfStandardConfigurations) {
  int64_t P = 0;
  ASSERT_EQ(mbx_priors_ssd_count(MBX_SSD512_VOC, &P), MBX_STATUS_OK);
  EXPECT_EQ(P, 24564);
  ASSERT_EQ(mbx_priors_ssd_count(MBX_SSD300_COCO, &P), MBX_STATUS_OK);
  EXPECT_EQ(P, 8732);
  ASSERT_EQ(mbx_priors_retinanet_count(640, 832, &P), MBX_STATUS_OK);
  EXPECT_EQ(P, 99765);
  EXPECT_EQ(mbx_priors_ssd_count(static_cast<mbx_ssd_config_t>(9), &P), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_priors_retinanet_count(0, 10, &P), MBX_STATUS_INVALID_ARGUMENT);
}

TEST(Priors, RetinaNetAnchorsFollowPytorchRetinanetLayout) {
  int64_t P = 0;
  ASSERT_EQ(mbx_priors_retinanet_count(64, 96, &P), MBX_STATUS_OK);
  HostTensor<float> a({P, 4});
  ASSERT_EQ(mbx_priors_retinanet(64, 96, a.dl()), MBX_STATUS_OK);
  // Level 3, cell (0,0), anchor 0: ratio 0.5, scale 1, base 32:
  // w = sqrt(32*32/0.5), h = w*0.5, centred at (4, 4).
  const double w = std::sqrt(1024.0 / 0.5), h = w * 0.5;
  EXPECT_EQ(a[0], static_cast<float>(-w * 0.5 + 4.0));
  EXPECT_EQ(a[1], static_cast<float>(-h * 0.5 + 4.0));
  EXPECT_EQ(a[2], static_cast<float>(w - w * 0.5 + 4.0));
  EXPECT_EQ(a[3], static_cast<float>(h - h * 0.5 + 4.0));
  // Anchor 9 is cell (x=1, y=0): shifted by the stride 8 in x only.
  EXPECT_EQ(a[36 + 0], static_cast<float>(-w * 0.5 + 12.0));
  EXPECT_EQ(a[36 + 1], a[1]);
  EXPECT_EQ(P, 9 * (8 * 12 + 4 * 6 + 2 * 3 + 1 * 2 + 1 * 1));
}

TEST(Priors, RetinaNetLevelSizesSumToTheAnchorCount) {
  HostTensor<int32_t> levels({MBX_RETINANET_NUM_LEVELS});
  ASSERT_EQ(mbx_priors_retinanet_levels(64, 96, levels.dl()), MBX_STATUS_OK);
  const int32_t expected[] = {9 * 8 * 12, 9 * 4 * 6, 9 * 2 * 3, 9 * 1 * 2, 9 * 1 * 1};
  for (int l = 0; l < MBX_RETINANET_NUM_LEVELS; ++l) EXPECT_EQ(levels[l], expected[l]) << l;
  int64_t P = 0, sum = 0;
  ASSERT_EQ(mbx_priors_retinanet_count(640, 832, &P), MBX_STATUS_OK);
  ASSERT_EQ(mbx_priors_retinanet_levels(640, 832, levels.dl()), MBX_STATUS_OK);
  for (int l = 0; l < MBX_RETINANET_NUM_LEVELS; ++l) sum += levels[l];
  EXPECT_EQ(sum, P);
  HostTensor<int32_t> wrong({4});
  EXPECT_EQ(mbx_priors_retinanet_levels(64, 96, wrong.dl()), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("prior_levels"), std::string::npos);
  EXPECT_EQ(mbx_priors_retinanet_levels(0, 96, levels.dl()), MBX_STATUS_INVALID_ARGUMENT);
}

}  // namespace
