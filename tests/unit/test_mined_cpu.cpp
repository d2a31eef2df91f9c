// The cpu path's HARD_EXAMPLE and LOGISTIC losses (run_cpu_mined,
// docs/SPEC.md §4.6): bitwise the cpu-scalar results — kept sets, losses,
// gradients, num_pos — for any thread count, also where the float32 ranking
// bounds overlap and only the exact float64 losses can decide.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "test_util.h"

using namespace mbx_test;

namespace {

struct Mode {
  const char* name;
  mbx_conf_loss_t conf_loss;
  mbx_mining_t mining;
  double nms;
};

const Mode kModes[] = {
    {"hard_example", MBX_CONF_LOSS_SOFTMAX_CE, MBX_MINING_HARD_EXAMPLE, 0.0},
    {"hard_example_nms", MBX_CONF_LOSS_SOFTMAX_CE, MBX_MINING_HARD_EXAMPLE, 0.45},
    {"logistic", MBX_CONF_LOSS_LOGISTIC, MBX_MINING_MAX_NEGATIVE, 0.0},
    {"logistic_hard_example", MBX_CONF_LOSS_LOGISTIC, MBX_MINING_HARD_EXAMPLE, 0.0},
    {"logistic_hard_example_nms", MBX_CONF_LOSS_LOGISTIC, MBX_MINING_HARD_EXAMPLE, 0.3},
};

mbx_options_t options(const Mode& m, int sample) {
  mbx_options_t o = preset(MBX_PRESET_CAFFE_SSD);
  o.conf_loss = m.conf_loss;
  o.mining = m.mining;
  o.mining_nms_threshold = m.nms;
  o.mining_sample_size = sample;
  return o;
}

void expect_same(const Result& a, const Result& b, const std::string& what) {
  ASSERT_EQ(a.status, MBX_STATUS_OK) << what << ": " << mbx_last_error();
  ASSERT_EQ(b.status, MBX_STATUS_OK) << what << ": " << mbx_last_error();
  EXPECT_EQ(a.num_pos.data, b.num_pos.data) << what;
  EXPECT_EQ(a.loss.data, b.loss.data) << what;
  EXPECT_EQ(a.grad_loc.data, b.grad_loc.data) << what;
  EXPECT_EQ(a.grad_conf.data, b.grad_conf.data) << what;
  EXPECT_EQ(a.conf_target.data, b.conf_target.data) << what;
}

// Every mode, thread counts 1, 2, 3 against cpu-scalar; P crosses the
// 1024-prior block, C leaves SIMD tails.
TEST(MinedCpu, EqualsScalarBitwiseForAnyThreadCount) {
  for (const Mode& m : kModes)
    for (int sample : {7, 64}) {
      const mbx_options_t o = options(m, sample);
      Problem pr = random_problem(17 + sample, 3, 2100, 7, 6, o.prior_format == MBX_PRIOR_CENTER_SIZE,
                                  true);
      const Result s = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
      for (int threads : {1, 2, 3})
        expect_same(run_all(pr, o, MBX_PATH_CPU, threads), s,
                    std::string(m.name) + " sample " + std::to_string(sample) + " threads " +
                        std::to_string(threads));
    }
}

// Near-ties: every conf row is one base row, about half of them with one
// logit moved by one float ulp. The losses then differ by ~1e-16 relative,
// far inside the float32 bounds: the order, and so the kept rows, come from
// the exact float64 losses alone (and the exact ties from the index).
TEST(MinedCpu, NearTiesRankAsTheExactFloat64Losses) {
  for (const Mode& m : kModes) {
    const mbx_options_t o = options(m, 5);
    Problem pr = random_problem(5, 2, 1500, 6, 3, o.prior_format == MBX_PRIOR_CENTER_SIZE, true);
    std::mt19937_64 rng(11);
    const float base[6] = {1.5f, -0.25f, 0.75f, 2.0f, -1.0f, 0.5f};
    for (int64_t i = 0; i < pr.B * pr.P; ++i)
      for (int64_t c = 0; c < pr.C; ++c) pr.conf[i * pr.C + c] = base[c];
    int64_t moved = 0;
    for (int64_t i = 0; i < pr.B * pr.P; ++i) {
      if (rng() % 2) continue;
      float& v = pr.conf[i * pr.C + rng() % pr.C];
      v = std::nextafter(v, rng() % 2 ? 10.f : -10.f);
      ++moved;
    }
    ASSERT_GT(moved, 1000);
    // One loc row for all: the positives' regression terms differ only by
    // their targets.
    for (int64_t i = 0; i < pr.B * pr.P * 4; ++i) pr.loc[i] = 0.125f;
    const Result s = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
    for (int threads : {1, 2})
      expect_same(run_all(pr, o, MBX_PATH_CPU, threads), s,
                  std::string(m.name) + " threads " + std::to_string(threads));
  }
}

// Non-finite logits (NaN, +-inf rows) take the exact route and rank as on
// cpu-scalar (NaN first, then the lower index).
TEST(MinedCpu, NonFiniteLogitsRankAsScalar) {
  for (const Mode& m : kModes) {
    const mbx_options_t o = options(m, 9);
    Problem pr = random_problem(23, 2, 1100, 5, 4, o.prior_format == MBX_PRIOR_CENTER_SIZE, true);
    for (int64_t i = 0; i < pr.B * pr.P; i += 37) pr.conf[i * pr.C + i % pr.C] = NAN;
    for (int64_t i = 5; i < pr.B * pr.P; i += 41) pr.conf[i * pr.C] = INFINITY;
    for (int64_t i = 9; i < pr.B * pr.P; i += 43) pr.conf[i * pr.C + 1] = -INFINITY;
    const Result s = run_all(pr, o, MBX_PATH_CPU_SCALAR, 1);
    const Result f = run_all(pr, o, MBX_PATH_CPU, 2);
    ASSERT_EQ(f.status, MBX_STATUS_OK) << mbx_last_error();
    EXPECT_EQ(f.num_pos.data, s.num_pos.data) << m.name;
    // NaN gradients compare unequal: compare the bits.
    EXPECT_EQ(0, std::memcmp(f.grad_conf.data.data(), s.grad_conf.data.data(), 4 * f.grad_conf.data.size()))
        << m.name;
    EXPECT_EQ(0, std::memcmp(f.loss.data.data(), s.loss.data.data(), 16)) << m.name;
  }
}

// float16 logits (rows converted to float32 for the bounds, float16
// gradients): bitwise the cpu-scalar results.
TEST(MinedCpu, Float16LogitsEqualScalar) {
  for (const Mode& m : kModes) {
    const mbx_options_t o = options(m, 11);
    Problem pr = random_problem(31, 2, 1300, 9, 5, o.prior_format == MBX_PRIOR_CENTER_SIZE, true);
    HostTensor<uint16_t> conf({pr.B, pr.P, pr.C});
    for (size_t i = 0; i < conf.data.size(); ++i) mbx::store_float(conf.data.data(), mbx::DType::kF16, i, pr.conf[i]);
    std::vector<uint16_t> grads[2];
    std::vector<double> losses[2];
    std::vector<int32_t> num_pos[2];
    int k = 0;
    for (mbx_path_t path : {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU}) {
      Result r = make_result(pr);
      HostTensor<uint16_t> grad_conf({pr.B, pr.P, pr.C});
      mbx_context_t* ctx = nullptr;
      mbx_context_create(&ctx);
      mbx_context_set_path(ctx, path);
      mbx_context_set_num_threads(ctx, 2);
      const mbx_status_t st = mbx_loss_forward_backward(
          ctx, &o, pr.priors.dl(), pr.gt_boxes.dl(), pr.gt_labels.dl(), pr.gt_counts.dl(), pr.loc.dl(),
          conf.dl(), nullptr, r.loss.dl(), r.num_pos.dl(), r.grad_loc.dl(), grad_conf.dl());
      mbx_context_destroy(ctx);
      ASSERT_EQ(st, MBX_STATUS_OK) << m.name << ": " << mbx_last_error();
      grads[k] = grad_conf.data;
      losses[k] = r.loss.data;
      num_pos[k++] = r.num_pos.data;
    }
    EXPECT_EQ(grads[0], grads[1]) << m.name;
    EXPECT_EQ(losses[0], losses[1]) << m.name;
    EXPECT_EQ(num_pos[0], num_pos[1]) << m.name;
  }
}

}  // namespace
