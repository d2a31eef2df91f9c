// One golden conformance case (format: tests/data/golden/README.md) run
// through the public C API on one path and compared with the tolerances of
// that README. Shared by the mbx_golden runner and the GoogleTest suite.
#pragma once

#include <string>
#include <vector>

#include "mbx/mbx.h"

namespace mbx_test {

struct CaseResult {
  std::string name;
  bool skipped = false;
  bool passed = false;
  std::string detail;   // worst errors, or what failed
};

// Case directories under `root` (root itself if it holds case.json), sorted.
std::vector<std::string> find_cases(const std::string& root);

// Runs the case at `dir` on `path` with `threads` CPU threads (0 = all).
// The optional inputs a case carries (gt_flags.npy, prior_levels.npy) are
// passed unless `optional_inputs` is false (for tests that show they matter).
CaseResult run_case(const std::string& dir, mbx_path_t path, int threads = 0,
                    bool optional_inputs = true);

}  // namespace mbx_test
