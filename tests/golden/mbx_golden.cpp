// mbx_golden — conformance runner: every golden case under each DIR, through
// the C API, on each requested path.
//   mbx_golden [--path cpu-scalar|cpu|cuda|all] [--threads N] DIR...
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "golden_case.h"

int main(int argc, char** argv) {
  std::vector<mbx_path_t> paths = {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU, MBX_PATH_CUDA};
  std::vector<std::string> dirs;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--path" && i + 1 < argc) {
      std::string p = argv[++i];
      if (p == "all") paths = {MBX_PATH_CPU_SCALAR, MBX_PATH_CPU, MBX_PATH_CUDA};
      else if (p == "cpu-scalar") paths = {MBX_PATH_CPU_SCALAR};
      else if (p == "cpu") paths = {MBX_PATH_CPU};
      else if (p == "cuda") paths = {MBX_PATH_CUDA};
      else { std::fprintf(stderr, "unknown path %s (cpu-scalar|cpu|cuda|all)\n", p.c_str()); return 2; }
    } else if (a == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: mbx_golden [--path cpu-scalar|cpu|cuda|all] [--threads N] DIR...\n");
      return 0;
    } else {
      dirs.push_back(a);
    }
  }
  if (dirs.empty()) {
    std::fprintf(stderr, "usage: mbx_golden [--path cpu-scalar|cpu|cuda|all] [--threads N] DIR...\n");
    return 2;
  }
  int passed = 0, failed = 0, skipped = 0;
  for (const std::string& d : dirs) {
    auto cases = mbx_test::find_cases(d);
    if (cases.empty()) {
      std::printf("FAIL  %s: no case.json found\n", d.c_str());
      ++failed;
    }
    for (const std::string& c : cases) {
      for (mbx_path_t p : paths) {
        auto r = mbx_test::run_case(c, p, threads);
        const char* tag = r.skipped ? "SKIP" : r.passed ? "PASS" : "FAIL";
        std::printf("%s  %-40s %-10s %s\n", tag, r.name.c_str(), mbx_path_name(p), r.detail.c_str());
        if (r.skipped) ++skipped;
        else if (r.passed) ++passed;
        else ++failed;
      }
    }
  }
  if (skipped) std::printf("(%d case-path runs skipped: path not available)\n", skipped);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
