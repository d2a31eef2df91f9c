// Every golden case on every available path, and on the fast path with
// 1, 2 and 8 threads.
#include <gtest/gtest.h>

#include <fstream>

#include "golden_case.h"

namespace {

class Golden : public ::testing::TestWithParam<mbx_path_t> {};

TEST_P(Golden, EveryCasePasses) {
  if (!mbx_path_available(GetParam())) GTEST_SKIP() << "path not available";
  auto cases = mbx_test::find_cases(MBX_GOLDEN_DIR);
  ASSERT_GE(cases.size(), 12u);
  for (const auto& c : mbx_test::find_cases(MBX_GENERATED_DIR)) cases.push_back(c);
  for (const auto& c : cases) {
    auto r = mbx_test::run_case(c, GetParam());
    EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, Golden,
                         ::testing::Values(MBX_PATH_CPU_SCALAR, MBX_PATH_CPU, MBX_PATH_CUDA),
                         [](const auto& info) {
                           std::string n = mbx_path_name(info.param);
                           for (auto& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

TEST(Golden, FastPathPassesWithOneTwoAndEightThreads) {
  for (int threads : {1, 2, 8})
    for (const auto& c : mbx_test::find_cases(MBX_GOLDEN_DIR)) {
      auto r = mbx_test::run_case(c, MBX_PATH_CPU, threads);
      EXPECT_TRUE(r.passed) << r.name << " threads=" << threads << ": " << r.detail;
    }
}

TEST(Golden, CasesWithGtFlagsFailWithoutThem) {
  // The runner passes gt_flags.npy: every ignore-region case depends on it.
  int with_flags = 0;
  for (const auto& c : mbx_test::find_cases(MBX_GENERATED_DIR)) {
    std::ifstream f(c + "/gt_flags.npy");
    if (!f) continue;
    ++with_flags;
    EXPECT_TRUE(mbx_test::run_case(c, MBX_PATH_CPU).passed) << c;
    EXPECT_FALSE(mbx_test::run_case(c, MBX_PATH_CPU, 0, false).passed) << c << " does not need its gt_flags";
  }
  EXPECT_GE(with_flags, 12);
}

}  // namespace
