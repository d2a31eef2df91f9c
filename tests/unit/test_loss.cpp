// Losses, mining, focal numerics, normalisation, determinism and
// scalar-vs-fast agreement through the C API.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "test_util.h"

using namespace mbx_test;

namespace {

mbx_options_t custom(mbx_preset_t base, const char* name, const char* value) {
  mbx_options_t o = preset(base);
  EXPECT_EQ(mbx_options_set(&o, name, value), MBX_STATUS_OK) << mbx_last_error();
  return o;
}

void expect_close(const Result& a, const Result& b, double tol = 1e-4) {
  for (int k = 0; k < 2; ++k)
    EXPECT_NEAR(a.loss.data[k], b.loss.data[k], tol * (std::fabs(b.loss.data[k]) + 1e-9));
  double mx = 0;
  for (float v : b.grad_conf.data) mx = std::max(mx, (double)std::fabs(v));
  for (size_t i = 0; i < a.grad_conf.data.size(); ++i)
    ASSERT_NEAR(a.grad_conf.data[i], b.grad_conf.data[i], tol * mx + tol * std::fabs(b.grad_conf.data[i]))
        << "grad_conf flat " << i;
  mx = 0;
  for (float v : b.grad_loc.data) mx = std::max(mx, (double)std::fabs(v));
  for (size_t i = 0; i < a.grad_loc.data.size(); ++i)
    ASSERT_NEAR(a.grad_loc.data[i], b.grad_loc.data[i], tol * mx + tol * std::fabs(b.grad_loc.data[i]))
        << "grad_loc flat " << i;
}

struct Variant {
  const char* label;
  mbx_preset_t base;
  const char* name;
  const char* value;
};

const Variant kVariants[] = {
    {"ssd_pytorch", MBX_PRESET_SSD_PYTORCH, "neg_pos_ratio", "3"},
    {"torchvision_ssd", MBX_PRESET_TORCHVISION_SSD, "neg_pos_ratio", "3"},
    {"yhenon", MBX_PRESET_YHENON_RETINANET, "focal_gamma", "2"},
    {"torchvision_retinanet", MBX_PRESET_TORCHVISION_RETINANET, "focal_gamma", "2"},
    {"ratio0", MBX_PRESET_SSD_PYTORCH, "neg_pos_ratio", "0"},
    {"double_count", MBX_PRESET_TORCHVISION_SSD, "neg_overflow", "DOUBLE_COUNT_POSITIVES"},
    {"gamma1p5", MBX_PRESET_TORCHVISION_RETINANET, "focal_gamma", "1.5"},
    {"gamma0", MBX_PRESET_TORCHVISION_RETINANET, "focal_gamma", "0"},
    {"norm_none", MBX_PRESET_SSD_PYTORCH, "normalization", "NONE"},
    {"norm_per_image", MBX_PRESET_SSD_PYTORCH, "normalization", "PER_IMAGE"},
    {"low_quality_softmax", MBX_PRESET_SSD_PYTORCH, "force_match", "LOW_QUALITY"},
    {"giou_retinanet", MBX_PRESET_TORCHVISION_RETINANET, "loc_loss", "GIOU"},
    {"diou_ssd", MBX_PRESET_SSD_PYTORCH, "loc_loss", "DIOU"},
    {"ciou_retinanet", MBX_PRESET_TORCHVISION_RETINANET, "loc_loss", "CIOU"},
    {"ciou_ssd", MBX_PRESET_SSD_PYTORCH, "loc_loss", "CIOU"},
};

class Differential : public ::testing::TestWithParam<Variant> {};

// The fast path agrees with the scalar reference (integers exactly, floats
// within the golden tolerances) and is bitwise thread-count independent.
TEST_P(Differential, FastMatchesScalarAndIsThreadCountIndependent) {
  const Variant v = GetParam();
  mbx_options_t o = custom(v.base, v.name, v.value);
  const bool softmax = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE;
  // P > 2 prior blocks and not a multiple of the SIMD width.
  Problem pr = random_problem(1234, 5, 2600 + 3, softmax ? 7 : 9, 8,
                              o.prior_format == MBX_PRIOR_CENTER_SIZE, softmax);
  Result ref = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
  ASSERT_EQ(ref.status, MBX_STATUS_OK) << mbx_last_error();
  Result fast1 = run_all(pr, o, MBX_PATH_CPU, 1);
  ASSERT_EQ(fast1.status, MBX_STATUS_OK) << mbx_last_error();
  EXPECT_EQ(ref.conf_target.data, fast1.conf_target.data);
  EXPECT_EQ(ref.matched_gt.data, fast1.matched_gt.data);
  EXPECT_EQ(ref.num_pos.data, fast1.num_pos.data);
  expect_close(fast1, ref);
  for (int threads : {2, 8}) {
    Result f = run_all(pr, o, MBX_PATH_CPU, threads);
    EXPECT_EQ(f.loss.data, fast1.loss.data) << threads;
    EXPECT_EQ(f.grad_conf.data, fast1.grad_conf.data) << threads;
    EXPECT_EQ(f.grad_loc.data, fast1.grad_loc.data) << threads;
    EXPECT_EQ(f.loc_target.data, fast1.loc_target.data) << threads;
    EXPECT_EQ(f.conf_target.data, fast1.conf_target.data) << threads;
  }
}

INSTANTIATE_TEST_SUITE_P(Options, Differential, ::testing::ValuesIn(kVariants),
                         [](const auto& i) { return std::string(i.param.label); });

// One image, one GT matching prior 0, every other prior negative.
Problem one_positive(int64_t P, int64_t C) {
  Problem pr = random_problem(5, 1, P, C, 1, false, true);
  for (int64_t p = 0; p < P; ++p) {  // disjoint unit boxes on a line
    float* r = &pr.priors[4 * p];
    r[0] = 2.f * p; r[1] = 0; r[2] = 2.f * p + 1; r[3] = 1;
  }
  float* g = &pr.gt_boxes[0];
  g[0] = 0; g[1] = 0; g[2] = 1; g[3] = 1;
  pr.gt_counts[0] = 1;
  pr.gt_labels[0] = 0;
  return pr;
}

TEST(Mining, TiesGoToTheLowerPriorIndex) {
  Problem pr = one_positive(10, 3);
  for (auto& v : pr.conf.data) v = 0.f;  // every negative has the same CE
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_SSD);
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    Result r = run_all(pr, o, path, 0);
    ASSERT_EQ(r.status, MBX_STATUS_OK);
    // 3 negatives mined: priors 1, 2, 3 get gradients; 4.. get none.
    for (int64_t p = 1; p < 10; ++p) {
      const bool mined = p <= 3;
      EXPECT_EQ(r.grad_conf[p * 3] != 0.f, mined) << "prior " << p;
    }
    EXPECT_NEAR(r.loss[1], 4 * std::log(3.0), 1e-6);
  }
}

TEST(Mining, QuotaLargerThanNegativesUsesThemAllAndNoPositiveMinesNothing) {
  Problem pr = one_positive(3, 4);  // 2 negatives, quota 3
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_SSD);
  Result r = run_all(pr, o, MBX_PATH_CPU, 0);
  ASSERT_EQ(r.status, MBX_STATUS_OK);
  for (int64_t p = 0; p < 3; ++p) EXPECT_NE(r.grad_conf[p * 4], 0.f);
  pr.gt_counts[0] = 0;  // no positive: ratio > 0 mines no negative
  r = run_all(pr, o, MBX_PATH_CPU, 0);
  ASSERT_EQ(r.status, MBX_STATUS_OK);
  EXPECT_EQ(r.loss[0], 0.0);
  EXPECT_EQ(r.loss[1], 0.0);
  for (float v : r.grad_conf.data) EXPECT_EQ(v, 0.f);
  for (float v : r.grad_loc.data) EXPECT_EQ(v, 0.f);
}

TEST(Mining, RatioZeroCountsEveryNegative) {
  Problem pr = one_positive(12, 3);
  mbx_options_t o = custom(MBX_PRESET_SSD_PYTORCH, "neg_pos_ratio", "0");
  o.prior_format = MBX_PRIOR_CORNERS;
  Result r = run_all(pr, o, MBX_PATH_CPU, 0);
  ASSERT_EQ(r.status, MBX_STATUS_OK);
  for (int64_t p = 0; p < 12; ++p) EXPECT_NE(r.grad_conf[p * 3], 0.f) << p;
}

TEST(Focal, LogitsOfMagnitude100AreFiniteAndExact) {
  Problem pr = one_positive(4, 2);
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_RETINANET);
  // prior 0 positive for class 0: x = -100 (badly wrong) and +100 for class 1.
  pr.conf[0] = -100.f; pr.conf[1] = 100.f;
  for (int64_t i = 2; i < 8; ++i) pr.conf[i] = (i % 2) ? 100.f : -100.f;
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    Result r = run_all(pr, o, path, 0);
    ASSERT_EQ(r.status, MBX_STATUS_OK);
    // t=1, x=-100: alpha * 1 * softplus(100) = 0.25*100; t=0, x=100: 0.75*100;
    // t=0, x=-100: ~0. Normalised by max(1, 1 positive), B = 1.
    EXPECT_NEAR(r.loss[1], 0.25 * 100 + 4 * 0.75 * 100, 1e-3);
    for (float g : r.grad_conf.data) EXPECT_TRUE(std::isfinite(g));
    EXPECT_NEAR(r.grad_conf[0], -0.25, 1e-6);  // d/dx alpha q^2 softplus(-x) -> -alpha
    EXPECT_NEAR(r.grad_conf[1], 0.75, 1e-6);
  }
}

TEST(Loss, UpstreamGradientsScaleEachLoss) {
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  Problem pr = random_problem(3, 2, 500, 5, 4, true, true);
  Result one = run_all(pr, o, MBX_PATH_CPU, 0);
  const double up[2] = {2.0, -0.5};
  Result scaled = run_all(pr, o, MBX_PATH_CPU, 0, up);
  ASSERT_EQ(scaled.status, MBX_STATUS_OK);
  EXPECT_EQ(one.loss.data, scaled.loss.data);
  for (size_t i = 0; i < one.grad_loc.data.size(); ++i)
    EXPECT_FLOAT_EQ(scaled.grad_loc[i], 2.0f * one.grad_loc[i]);
  for (size_t i = 0; i < one.grad_conf.data.size(); ++i)
    EXPECT_FLOAT_EQ(scaled.grad_conf[i], -0.5f * one.grad_conf[i]);
}

TEST(Loss, NonFiniteLogitsPropagateWithoutChangingMatching) {
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  Problem pr = random_problem(4, 2, 300, 4, 3, true, true);
  Result clean = run_all(pr, o, MBX_PATH_CPU, 0);
  pr.conf[7] = NAN;
  pr.loc[5] = INFINITY;
  for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
    Result r = run_all(pr, o, path, 0);
    ASSERT_EQ(r.status, MBX_STATUS_OK);
    EXPECT_EQ(r.conf_target.data, clean.conf_target.data);
    EXPECT_EQ(r.num_pos.data, clean.num_pos.data);
  }
}

// A NaN logit in a positive's row, in the SIMD tail (C = 5 < the vector
// width) or a full vector (C = 21): the conf loss is NaN on every path and
// ISA (the AVX kernels once dropped it: their x != x is an ordered compare).
TEST(Mining, NaNLogitOfAPositiveRowGivesNaNConfLoss) {
  const mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  for (int64_t C : {5, 21}) {
    Problem pr = random_problem(11, 2, 300, C, 3, true, true);
    Result clean = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
    ASSERT_EQ(clean.status, MBX_STATUS_OK);
    int64_t row = -1;
    for (int64_t i = 0; i < pr.B * pr.P && row < 0; ++i)
      if (clean.conf_target[i] > 0) row = i;
    ASSERT_GE(row, 0) << "the problem should have a positive";
    pr.conf[row * C + 2] = NAN;
    for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
      Result r = run_all(pr, o, path, 0);
      ASSERT_EQ(r.status, MBX_STATUS_OK);
      EXPECT_TRUE(std::isnan(r.loss[1])) << "C = " << C << " path " << path << ": " << r.loss[1];
      EXPECT_TRUE(std::isfinite(r.loss[0])) << "the loc loss does not read conf";
    }
  }
}

TEST(Loss, EveryImageWithoutObjectsGivesZeroNotNaN) {
  for (mbx_preset_t ps : {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_RETINANET}) {
    mbx_options_t o = preset(ps);
    Problem pr = random_problem(8, 3, 200, 4, 3, o.prior_format == MBX_PRIOR_CENTER_SIZE, true);
    for (auto& c : pr.gt_counts.data) c = 0;
    Result r = run_all(pr, o, MBX_PATH_CPU, 0);
    ASSERT_EQ(r.status, MBX_STATUS_OK);
    EXPECT_EQ(r.loss[0], 0.0);
    EXPECT_TRUE(std::isfinite(r.loss[1]));
    if (ps == MBX_PRESET_SSD_PYTORCH) EXPECT_EQ(r.loss[1], 0.0);
    else EXPECT_GT(r.loss[1], 0.0);  // focal: every negative counts
  }
}

TEST(Loss, HalfAndBfloat16InputsAgreeWithFloat32) {
  // The CPU paths accept float16/bfloat16 loc/conf (float32 math inside) and
  // write gradients in the same dtype.
  mbx_options_t o = preset(MBX_PRESET_TORCHVISION_RETINANET);
  Problem pr = random_problem(9, 2, 400, 6, 4, false, false);
  Result ref = run_all(pr, o, MBX_PATH_CPU, 0);
  for (uint8_t code : {static_cast<uint8_t>(kDLFloat), static_cast<uint8_t>(kDLBfloat)}) {
    // Round inputs to 16 bits through the library's own conversion by making
    // 16-bit tensors, then compare against float32 on the rounded values.
    HostTensor<uint16_t> loc16({2, 400, 4}), conf16({2, 400, 6}), gl16({2, 400, 4}), gc16({2, 400, 6});
    Problem rounded = pr;
    auto to16 = [&](float f) -> uint16_t {
      uint32_t x;
      std::memcpy(&x, &f, 4);
      if (code == kDLBfloat) return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
      // float16 via round-to-nearest of values well inside the normal range
      const int e = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
      uint32_t m = x & 0x7fffff;
      uint32_t h = (x >> 16 & 0x8000) | (static_cast<uint32_t>(e) << 10) | (m >> 13);
      if ((m & 0x1fff) > 0x1000 || ((m & 0x1fff) == 0x1000 && (h & 1))) ++h;
      return static_cast<uint16_t>(h);
    };
    auto from16 = [&](uint16_t h) -> float {
      uint32_t x;
      if (code == kDLBfloat) x = static_cast<uint32_t>(h) << 16;
      else if (((h >> 10) & 0x1f) == 0)  // float16 subnormal: mantissa * 2^-24
        return ((h & 0x8000) ? -1.f : 1.f) * std::ldexp(static_cast<float>(h & 0x3ff), -24);
      else x = (static_cast<uint32_t>(h & 0x8000) << 16) | ((((h >> 10) & 0x1f) - 15 + 127) << 23) | ((h & 0x3ff) << 13);
      float f;
      std::memcpy(&f, &x, 4);
      return f;
    };
    for (size_t i = 0; i < pr.loc.data.size(); ++i) {
      float v = std::fabs(pr.loc[i]) < 1e-3f ? 0.5f : pr.loc[i];
      loc16[i] = to16(v); rounded.loc[i] = from16(loc16[i]);
    }
    for (size_t i = 0; i < pr.conf.data.size(); ++i) {
      float v = std::fabs(pr.conf[i]) < 1e-3f ? 0.5f : pr.conf[i];
      conf16[i] = to16(v); rounded.conf[i] = from16(conf16[i]);
    }
    Result want = run_all(rounded, o, MBX_PATH_CPU, 0);
    for (auto* t : {&loc16, &conf16, &gl16, &gc16}) t->dl()->dtype = {code, 16, 1};
    HostTensor<double> loss({2});
    DLTensor *l = loc16.dl(), *c = conf16.dl(), *gl = gl16.dl(), *gc = gc16.dl();
    l->dtype = c->dtype = gl->dtype = gc->dtype = {code, 16, 1};
    for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
      mbx_context_t* ctx;
      mbx_context_create(&ctx);
      mbx_context_set_path(ctx, path);
      ASSERT_EQ(mbx_loss_forward_backward(ctx, &o, pr.priors.dl(), pr.gt_boxes.dl(), pr.gt_labels.dl(),
                                          pr.gt_counts.dl(), l, c, nullptr, loss.dl(), nullptr, gl, gc),
                MBX_STATUS_OK)
          << mbx_last_error();
      mbx_context_destroy(ctx);
      EXPECT_NEAR(loss[0], want.loss[0], 1e-4 * std::fabs(want.loss[0]));
      EXPECT_NEAR(loss[1], want.loss[1], 1e-4 * std::fabs(want.loss[1]));
      double mx = 0;
      for (float v : want.grad_conf.data) mx = std::max(mx, (double)std::fabs(v));
      const double rel = code == kDLBfloat ? 8e-3 : 1e-3;  // 8 / 11 mantissa bits
      for (size_t i = 0; i < gc16.data.size(); ++i)
        ASSERT_NEAR(from16(gc16[i]), want.grad_conf[i], rel * std::fabs(want.grad_conf[i]) + 1e-6 * mx + 6e-8) << i;
    }
    (void)ref;
  }
}

TEST(Concurrency, EightThreadsGiveBitwiseTheSerialResults) {
  mbx_options_t presets[2] = {preset(MBX_PRESET_SSD_PYTORCH), preset(MBX_PRESET_TORCHVISION_RETINANET)};
  Problem prs[2] = {random_problem(21, 3, 700, 5, 4, true, true),
                    random_problem(22, 3, 700, 5, 4, false, false)};
  Result serial[2] = {run_all(prs[0], presets[0], MBX_PATH_CPU, 0),
                      run_all(prs[1], presets[1], MBX_PATH_CPU, 0)};
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const int k = (t + i) % 2;
        Problem local = prs[k];  // shared read-only inputs copied per thread
        Result r = run_all(local, presets[k], MBX_PATH_CPU, 2);
        if (r.status != MBX_STATUS_OK || r.loss.data != serial[k].loss.data ||
            r.grad_conf.data != serial[k].grad_conf.data || r.conf_target.data != serial[k].conf_target.data)
          ++mismatches;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Concurrency, ASharedContextIsRefusedNotCorrupted) {
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  Problem pr = random_problem(31, 4, 3000, 5, 4, true, true);
  Result serial = run_all(pr, o, MBX_PATH_CPU, 0);
  mbx_context_t* ctx;
  mbx_context_create(&ctx);
  std::atomic<int> ok{0}, busy{0}, wrong{0};
  std::vector<std::thread> threads;
  const DLTensor *priors = pr.priors.dl(), *boxes = pr.gt_boxes.dl(), *labels = pr.gt_labels.dl(),
                 *counts = pr.gt_counts.dl(), *loc = pr.loc.dl(), *conf = pr.conf.dl();
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        HostTensor<double> loss({2});
        auto s = mbx_loss_forward(ctx, &o, priors, boxes, labels, counts, loc, conf, loss.dl(), nullptr);
        if (s == MBX_STATUS_OK) { ++ok; if (loss.data != serial.loss.data) ++wrong; }
        else if (s == MBX_STATUS_CONTEXT_BUSY) ++busy;
        else ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  mbx_context_destroy(ctx);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ok.load() + busy.load(), 40);
  EXPECT_GT(ok.load(), 0);
}


// --- IoU-family box losses (docs/SPEC.md §4.7) -------------------------------

const char* const kIouLosses[] = {"GIOU", "DIOU", "CIOU"};
const char* const kCodings[] = {"CENTER_SIZE", "CORNER", "CORNER_SIZE"};

mbx_options_t iou_options(const char* kind, const char* coding) {
  mbx_options_t o = custom(MBX_PRESET_TORCHVISION_RETINANET, "loc_loss", kind);
  EXPECT_EQ(mbx_options_set(&o, "box_coding", coding), MBX_STATUS_OK);
  EXPECT_EQ(mbx_options_set(&o, "normalization", "NONE"), MBX_STATUS_OK);
  EXPECT_EQ(mbx_options_set(&o, "variances", "0.5, 0.5, 0.5, 0.5"), MBX_STATUS_OK) << mbx_last_error();
  return o;
}

double loss_loc_of(Problem& pr, const mbx_options_t& o) {
  mbx_context_t* ctx = nullptr;
  mbx_context_create(&ctx);
  mbx_context_set_path(ctx, MBX_PATH_CPU_SCALAR);
  HostTensor<double> loss({2});
  EXPECT_EQ(mbx_loss_forward(ctx, &o, pr.priors.dl(), pr.gt_boxes.dl(), pr.gt_labels.dl(), pr.gt_counts.dl(),
                             pr.loc.dl(), pr.conf.dl(), loss.dl(), nullptr),
            MBX_STATUS_OK)
      << mbx_last_error();
  mbx_context_destroy(ctx);
  return loss[0];
}

// grad_loc is the derivative of loss_loc: central differences of the
// float64 loss (cpu-scalar) at every coordinate of a few positives. Not for
// CIOU, whose gradient treats alpha as a constant as torchvision's does
// (it is not the loss's derivative; tests/python/test_iou_loss.py compares
// it with torch's autograd).
TEST(IouLoss, GradientIsTheDerivativeOfTheLoss) {
  for (const char* kind : {"GIOU", "DIOU"})
    for (const char* coding : kCodings) {
      SCOPED_TRACE(std::string(kind) + " " + coding);
      const mbx_options_t o = iou_options(kind, coding);
      Problem pr = random_problem(77, 2, 300, 5, 6, false, false);
      pr.gt_counts[0] = pr.gt_counts[1] = 6;
      for (auto& v : pr.loc.data) v *= 0.3f;
      Result r = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
      ASSERT_EQ(r.status, MBX_STATUS_OK) << mbx_last_error();
      int checked = 0;
      for (int64_t i = 0; i < pr.B * pr.P && checked < 6; ++i) {
        if (r.conf_target[i] <= 0) continue;
        ++checked;
        for (int k = 0; k < 4; ++k) {
          float& x = pr.loc[i * 4 + k];
          const float x0 = x, h = 1.0f / 1024;  // exact steps in float32
          x = x0 + h;
          const double up = loss_loc_of(pr, o);
          x = x0 - h;
          const double down = loss_loc_of(pr, o);
          x = x0;
          const double fd = (up - down) / (2.0 * h);
          EXPECT_NEAR(r.grad_loc[i * 4 + k], fd, 2e-3 * (std::fabs(fd) + 0.05)) << "prior " << i << " coord " << k;
        }
      }
      EXPECT_EQ(checked, 6);
    }
}

// A prediction equal to its GT: every min / max is a tie. Torch's autograd
// splits each tie in halves, and then the DIoU / CIoU gradient is ~0; taking
// either side whole would give about -+h/area per coordinate.
TEST(IouLoss, PerfectPredictionTiesSplitTheGradient) {
  for (const char* kind : kIouLosses)
    for (const char* coding : {"CORNER", "CORNER_SIZE", "CENTER_SIZE"}) {
      SCOPED_TRACE(std::string(kind) + " " + coding);
      mbx_options_t o = iou_options(kind, coding);
      o.prior_format = MBX_PRIOR_CORNERS;
      Problem pr = one_positive(5, 3);
      std::fill(pr.loc.data.begin(), pr.loc.data.end(), 0.f);
      Result r = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
      ASSERT_EQ(r.status, MBX_STATUS_OK) << mbx_last_error();
      ASSERT_EQ(r.conf_target[0], 1);
      EXPECT_NEAR(r.loss[0], 0.0, 1e-6);
      for (int k = 0; k < 4; ++k) EXPECT_NEAR(r.grad_loc[k], 0.0, 1e-6) << k;
      Result f = run_all(pr, o, MBX_PATH_CPU, 1);
      for (int k = 0; k < 4; ++k) EXPECT_NEAR(f.grad_loc[k], 0.0, 1e-6) << k;
    }
}

// Degenerate predictions (docs/SPEC.md §4.7): sizes that underflow to 0,
// subnormal sizes, clamped exponents, inverted and far boxes give finite
// losses and gradients on both CPU paths, and a size beyond the clamp
// passes no gradient.
TEST(IouLoss, DegeneratePredictionsGiveFiniteLossesAndGradients) {
  const float rows_center[][4] = {{0, 0, -1e4f, -1e4f}, {0.1f, 0, -1e4f, 0.2f}, {0, 0.1f, 0.3f, -1e4f},
                                  {0, 0, -1440, -1440}, {0, 0, 1e4f, 1e4f}, {3e3f, -3e3f, 50, -50}};
  const float rows_corner[][4] = {{0.4f, 0.1f, -0.4f, 0.3f}, {0.1f, 0.4f, 0.3f, -0.4f}, {0.6f, 0.6f, -0.6f, -0.6f},
                                  {0, 0, -1e4f, 0}, {2e3f, -2e3f, 2e3f, -2e3f}, {0.5f, 0, -0.5f, 0}};
  for (const char* kind : kIouLosses)
    for (const char* coding : kCodings) {
      SCOPED_TRACE(std::string(kind) + " " + coding);
      mbx_options_t o = iou_options(kind, coding);
      o.prior_format = MBX_PRIOR_CORNERS;
      Problem pr = random_problem(78, 1, 64, 4, 1, false, false);
      for (int64_t p = 0; p < pr.P; ++p) {  // every prior on the one GT: all positive
        float* r = &pr.priors[4 * p];
        r[0] = 0.2f; r[1] = 0.2f; r[2] = 0.6f; r[3] = 0.7f;
      }
      float* g = &pr.gt_boxes[0];
      g[0] = 0.25f; g[1] = 0.2f; g[2] = 0.6f; g[3] = 0.75f;
      pr.gt_counts[0] = 1;
      const bool center = std::string(coding) == "CENTER_SIZE";
      for (int i = 0; i < 6; ++i)
        for (int k = 0; k < 4; ++k) pr.loc[i * 4 + k] = center ? rows_center[i][k] : rows_corner[i][k];
      for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
        Result r = run_all(pr, o, path, 2);
        ASSERT_EQ(r.status, MBX_STATUS_OK) << mbx_last_error();
        EXPECT_EQ(r.num_pos[0], pr.P);
        EXPECT_TRUE(std::isfinite(r.loss[0])) << r.loss[0];
        for (float v : r.grad_loc.data) ASSERT_TRUE(std::isfinite(v)) << v;
        if (center) EXPECT_EQ(r.grad_loc[4 * 4 + 2], 0.f) << "a clamped exponent passes no gradient";
      }
    }
}

}  // namespace
