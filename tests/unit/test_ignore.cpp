// Ignore regions (gt_flags bit 0, docs/SPEC.md §2.7) through the C API on the
// CPU paths: the IoF test, the mmdetection order (the ignore test first, so
// an ignored prior is neither positive, negative nor forced), every
// force_match style, the losses, and cpu against cpu-scalar on random input.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

using namespace mbx_test;

namespace {

using Box = std::array<float, 4>;

// One image, corner priors and GT rows given explicitly, with flags.
struct Image {
  HostTensor<float> priors, gt;
  HostTensor<int32_t> labels, counts, flags, ct, mg, np;
  Image(std::vector<Box> pri, std::vector<Box> rows, std::vector<int32_t> row_flags,
        int32_t count = -1) {
    const int64_t P = static_cast<int64_t>(pri.size()), G = static_cast<int64_t>(rows.size());
    priors = HostTensor<float>({P, 4});
    for (int64_t p = 0; p < P; ++p) for (int k = 0; k < 4; ++k) priors[4 * p + k] = pri[p][k];
    gt = HostTensor<float>({1, G, 4});
    for (int64_t g = 0; g < G; ++g) for (int k = 0; k < 4; ++k) gt[4 * g + k] = rows[g][k];
    labels = HostTensor<int32_t>({1, G}, 2);
    flags = HostTensor<int32_t>({1, G});
    for (int64_t g = 0; g < G; ++g) flags[g] = row_flags[g];
    counts = HostTensor<int32_t>({1}, count < 0 ? static_cast<int32_t>(G) : count);
    ct = HostTensor<int32_t>({1, P}, -9);
    mg = HostTensor<int32_t>({1, P}, -9);
    np = HostTensor<int32_t>({1}, -9);
  }
  mbx_status_t run(const mbx_options_t& o, mbx_path_t path) {
    mbx_context_t* ctx;
    mbx_context_create(&ctx);
    mbx_context_set_path(ctx, path);
    mbx_tensors_t t;
    mbx_tensors_init(&t);
    t.num_classes = 10;
    t.priors = priors.dl();
    t.gt_boxes = gt.dl();
    t.gt_labels = labels.dl();
    t.gt_counts = counts.dl();
    t.gt_flags = flags.dl();
    t.conf_target = ct.dl();
    t.matched_gt = mg.dl();
    t.num_pos = np.dl();
    const mbx_status_t s = mbx_run(ctx, &o, MBX_OP_MATCH, &t);
    mbx_context_destroy(ctx);
    return s;
  }
  std::vector<int32_t> targets() const { return ct.data; }
};

mbx_options_t corners(mbx_force_match_t fm, double ignore_iof = 0.5) {
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_SSD);  // CORNERS, 0.5 / 0.5
  o.force_match = fm;
  o.ignore_iof_threshold = ignore_iof;
  return o;
}

using V = std::vector<int32_t>;

class IgnorePaths : public ::testing::TestWithParam<mbx_path_t> {};

// GT [0,0,2,2] coincides with prior 0, which an ignore region on the same
// box swallows (IoF 1). Prior 1 = [1,0,3,2] has IoF exactly 1/2 with the
// region (not > 0.5: kept) and IoU 1/3 with the GT; prior 2 overlaps
// nothing.
Image forced_geometry() {
  return Image({{0, 0, 2, 2}, {1, 0, 3, 2}, {5, 5, 6, 6}}, {{0, 0, 2, 2}, {0, 0, 2, 2}}, {0, 1});
}

TEST_P(IgnorePaths, BestPriorPerGtForcesTheBestPriorOutsideTheRegion) {
  Image im = forced_geometry();
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK)
      << mbx_last_error();
  EXPECT_EQ(im.targets(), (V{-1, 3, 0}));
  EXPECT_EQ(im.mg.data, (V{-1, 0, -1}));
  EXPECT_EQ(im.np[0], 1);
}

TEST_P(IgnorePaths, LowQualityAndBipartitePickAmongPriorsOutsideTheRegion) {
  for (auto fm : {MBX_FORCE_MATCH_LOW_QUALITY, MBX_FORCE_MATCH_BIPARTITE}) {
    Image im = forced_geometry();
    ASSERT_EQ(im.run(corners(fm), GetParam()), MBX_STATUS_OK) << mbx_last_error();
    EXPECT_EQ(im.targets(), (V{-1, 3, 0})) << "force_match " << fm;
    EXPECT_EQ(im.mg.data, (V{-1, 0, -1})) << "force_match " << fm;
  }
}

TEST_P(IgnorePaths, NoneLeavesTheIgnoredPriorIgnoredAndTheRestToThresholds) {
  Image im = forced_geometry();
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_NONE), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{-1, 0, 0}));
  EXPECT_EQ(im.np[0], 0);
}

TEST_P(IgnorePaths, LowerThresholdSwallowsMoreAndForcesAZeroIouPrior) {
  // At 0.4 prior 1 (IoF 1/2) is ignored too; the GT's best prior outside
  // the region is prior 2 with IoU 0, forced as BEST_PRIOR_PER_GT forces IoU 0.
  Image im = forced_geometry();
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT, 0.4), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{-1, -1, 3}));
  // BIPARTITE never pairs IoU 0: nothing is forced.
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_BIPARTITE, 0.4), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{-1, -1, 0}));
}

TEST_P(IgnorePaths, ThresholdZeroSwallowsNothingButTheRegionIsNeverMatched) {
  Image im = forced_geometry();
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT, 0.0), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{3, 0, 0}));
  EXPECT_EQ(im.mg.data, (V{0, -1, -1}));
  // A region alone, with IoU 1 to prior 0: with the test off prior 0 is a
  // plain negative, never assigned to the region row.
  Image alone({{0, 0, 2, 2}, {4, 4, 5, 5}}, {{0, 0, 2, 2}}, {1});
  ASSERT_EQ(alone.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT, -1.0), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(alone.targets(), (V{0, 0}));
  ASSERT_EQ(alone.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(alone.targets(), (V{-1, 0}));
}

TEST_P(IgnorePaths, ImageOfRegionsOnlyStillIgnoresThePriorsInside) {
  // mmdetection would make every prior negative here (no GT); mbx keeps
  // the ignore test (docs/SPEC.md §2.7).
  Image im({{0, 0, 2, 2}, {1, 1, 2, 2}, {3, 3, 5, 5}}, {{0, 0, 2, 2}, {7, 7, 8, 8}}, {1, 1});
  for (auto fm : {MBX_FORCE_MATCH_NONE, MBX_FORCE_MATCH_BEST_PRIOR_PER_GT,
                  MBX_FORCE_MATCH_LOW_QUALITY, MBX_FORCE_MATCH_BIPARTITE}) {
    ASSERT_EQ(im.run(corners(fm), GetParam()), MBX_STATUS_OK);
    EXPECT_EQ(im.targets(), (V{-1, -1, 0})) << "force_match " << fm;
    EXPECT_EQ(im.np[0], 0);
  }
}

TEST_P(IgnorePaths, RegionOverEveryPriorForcesNothing) {
  Image im({{0, 0, 2, 2}, {2, 2, 4, 4}}, {{1, 1, 3, 3}, {0, 0, 4, 4}}, {0, 1});
  for (auto fm : {MBX_FORCE_MATCH_BEST_PRIOR_PER_GT, MBX_FORCE_MATCH_LOW_QUALITY,
                  MBX_FORCE_MATCH_BIPARTITE}) {
    ASSERT_EQ(im.run(corners(fm), GetParam()), MBX_STATUS_OK);
    EXPECT_EQ(im.targets(), (V{-1, -1})) << "force_match " << fm;
    EXPECT_EQ(im.np[0], 0);
  }
}

TEST_P(IgnorePaths, RegionIouDoesNotCountInBestIou) {
  // Prior 0 has IoU 1 with the region row and 1/3 with the GT: with the
  // threshold at 1 it is kept (IoF 1 is not > 1) and judged on the GT's 1/3
  // alone: negative.
  Image im({{1, 0, 3, 2}, {6, 6, 7, 7}}, {{0, 0, 2, 2}, {1, 0, 3, 2}}, {0, 1});
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_NONE, 1.0), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{0, 0}));
}

TEST_P(IgnorePaths, FlagsOfPaddingRowsAreUnused) {
  // Row 1 is padding (count 1): its flag and box must not matter.
  Image im({{0, 0, 2, 2}, {4, 4, 6, 6}}, {{4, 4, 6, 6}, {0, 0, 2, 2}}, {0, 1}, 1);
  ASSERT_EQ(im.run(corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT), GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{0, 3}));
}

TEST_P(IgnorePaths, AnIgnoreRowNeedsValidCornersLikeAnyRow) {
  // Row 1 (a region) has x2 <= x1: an error under invalid_gt = ERROR; under
  // SKIP it is dropped and swallows nothing.
  Image im({{0, 0, 2, 2}, {4, 4, 6, 6}}, {{4, 4, 6, 6}, {2, 0, 0, 2}}, {0, 1});
  mbx_options_t o = corners(MBX_FORCE_MATCH_BEST_PRIOR_PER_GT);
  EXPECT_EQ(im.run(o, GetParam()), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("gt_boxes[image 0, row 1]"), std::string::npos)
      << mbx_last_error();
  EXPECT_EQ(im.ct.data, (V{-9, -9}));  // nothing written
  o.invalid_gt = MBX_INVALID_GT_SKIP;
  ASSERT_EQ(im.run(o, GetParam()), MBX_STATUS_OK);
  EXPECT_EQ(im.targets(), (V{0, 3}));
}

INSTANTIATE_TEST_SUITE_P(Cpu, IgnorePaths, ::testing::Values(MBX_PATH_CPU_SCALAR, MBX_PATH_CPU),
                         [](const auto& i) { return std::string(i.param == MBX_PATH_CPU ? "fast" : "scalar"); });

// A random problem plus random flags: about one row in three a region, and
// regions large enough to swallow priors.
struct Flagged {
  Problem pr;
  HostTensor<int32_t> flags;
};

Flagged random_flagged(uint64_t seed, int64_t B, int64_t P, int64_t C, int64_t G, bool cs,
                       bool softmax) {
  Flagged f{random_problem(seed, B, P, C, G, cs, softmax), HostTensor<int32_t>({B, G})};
  std::mt19937_64 rng(seed * 7 + 1);
  for (int64_t i = 0; i < B * G; ++i) f.flags[i] = rng() % 3 == 0 ? 1 : 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < G; ++g)
      if (f.flags[b * G + g] && rng() % 2) {  // a crowd region: grow the box
        float* r = &f.pr.gt_boxes[(b * G + g) * 4];
        r[0] *= 0.5f; r[1] *= 0.5f; r[2] = r[2] * 0.5f + 0.5f; r[3] = r[3] * 0.5f + 0.5f;
      }
  return f;
}

Result run_flagged(Flagged& f, const mbx_options_t& o, mbx_path_t path, int threads) {
  Problem& pr = f.pr;
  Result r = make_result(pr);
  mbx_context_t* ctx = nullptr;
  mbx_context_create(&ctx);
  mbx_context_set_path(ctx, path);
  mbx_context_set_num_threads(ctx, threads);
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.num_classes = o.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL ? pr.C : pr.C - 1;
  t.priors = pr.priors.dl();
  t.gt_boxes = pr.gt_boxes.dl();
  t.gt_labels = pr.gt_labels.dl();
  t.gt_counts = pr.gt_counts.dl();
  t.gt_flags = f.flags.dl();
  t.conf_target = r.conf_target.dl();
  t.matched_gt = r.matched_gt.dl();
  r.status = mbx_run(ctx, &o, MBX_OP_MATCH, &t);
  if (r.status == MBX_STATUS_OK) {
    mbx_tensors_init(&t);
    t.priors = pr.priors.dl();
    t.gt_boxes = pr.gt_boxes.dl();
    t.gt_labels = pr.gt_labels.dl();
    t.gt_counts = pr.gt_counts.dl();
    t.gt_flags = f.flags.dl();
    t.loc = pr.loc.dl();
    t.conf = pr.conf.dl();
    t.loss = r.loss.dl();
    t.num_pos = r.num_pos.dl();
    t.grad_loc = r.grad_loc.dl();
    t.grad_conf = r.grad_conf.dl();
    r.status = mbx_run(ctx, &o, MBX_OP_LOSS_FORWARD_BACKWARD, &t);
  }
  mbx_context_destroy(ctx);
  return r;
}

// Every conf / loc row of an ignored prior has zero gradient, and the loss
// does not change when its logits do.
void expect_ignored_priors_take_no_part(const mbx_options_t& o, const char* what) {
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    Flagged f = random_flagged(91, 2, 400, 4, 6, o.prior_format == MBX_PRIOR_CENTER_SIZE,
                               o.conf_loss != MBX_CONF_LOSS_SIGMOID_FOCAL);
    const Result a = run_flagged(f, o, path, 1);
    ASSERT_EQ(a.status, MBX_STATUS_OK) << what << ": " << mbx_last_error();
    int64_t ignored = 0;
    const int64_t C = f.pr.C;
    for (int64_t i = 0; i < f.pr.B * f.pr.P; ++i) {
      if (a.conf_target.data[i] != -1) continue;
      ++ignored;
      for (int64_t c = 0; c < C; ++c) {
        EXPECT_EQ(a.grad_conf.data[i * C + c], 0.f) << what << " prior " << i;
        f.pr.conf[i * C + c] += 5.f;  // would change any term it entered
      }
      for (int k = 0; k < 4; ++k) EXPECT_EQ(a.grad_loc.data[i * 4 + k], 0.f) << what;
    }
    EXPECT_GT(ignored, 20) << what << ": the draw should ignore priors";
    const Result b = run_flagged(f, o, path, 1);
    ASSERT_EQ(b.status, MBX_STATUS_OK);
    EXPECT_EQ(a.loss.data, b.loss.data) << what << " on " << mbx_path_name(path);
  }
}

TEST(IgnoreLoss, SoftmaxMiningNeverPicksAnIgnoredPrior) {
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  o.neg_pos_ratio = 1000.0;  // every negative would be taken: only the ignore test excludes
  expect_ignored_priors_take_no_part(o, "softmax");
}

TEST(IgnoreLoss, FocalSkipsIgnoredPriors) {
  expect_ignored_priors_take_no_part(preset(MBX_PRESET_TORCHVISION_RETINANET), "focal");
}

TEST(IgnoreLoss, HardExampleMiningDoesNotRankPriorsInRegions) {
  mbx_options_t o = preset(MBX_PRESET_CAFFE_SSD);
  o.mining = MBX_MINING_HARD_EXAMPLE;
  o.mining_sample_size = 100000;  // everything ranked would be kept
  o.pos_threshold = o.neg_threshold = 0.5;  // no threshold-ignored priors: only regions are -1
  expect_ignored_priors_take_no_part(o, "hard_example");
}

TEST(IgnoreParity, FastPathEqualsScalarForEveryForceMatchAndThreadCount) {
  // P crosses the 2048-prior block and leaves SIMD tails.
  for (auto fm : {MBX_FORCE_MATCH_NONE, MBX_FORCE_MATCH_BEST_PRIOR_PER_GT,
                  MBX_FORCE_MATCH_LOW_QUALITY, MBX_FORCE_MATCH_BIPARTITE})
    for (double thr : {0.5, 0.2, 0.0}) {
      mbx_options_t o = preset(MBX_PRESET_TORCHVISION_RETINANET);
      o.force_match = fm;
      o.ignore_iof_threshold = thr;
      Flagged f = random_flagged(5 + fm, 3, 4099, 3, 9, false, false);
      const Result s = run_flagged(f, o, MBX_PATH_CPU_SCALAR, 1);
      ASSERT_EQ(s.status, MBX_STATUS_OK) << mbx_last_error();
      int64_t ignored = 0;
      for (int32_t v : s.conf_target.data) ignored += v == -1;
      if (thr > 0) EXPECT_GT(ignored, 0);
      for (int threads : {1, 2, 8}) {
        const Result c = run_flagged(f, o, MBX_PATH_CPU, threads);
        ASSERT_EQ(c.status, MBX_STATUS_OK);
        EXPECT_EQ(s.conf_target.data, c.conf_target.data) << "fm " << fm << " thr " << thr;
        EXPECT_EQ(s.matched_gt.data, c.matched_gt.data) << "fm " << fm << " thr " << thr;
        EXPECT_EQ(s.num_pos.data, c.num_pos.data);
      }
    }
}

}  // namespace
