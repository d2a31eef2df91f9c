// Every golden case on every available path, and on the fast path with
// 1, 2 and 8 threads.
#include <gtest/gtest.h>

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

}  // namespace
