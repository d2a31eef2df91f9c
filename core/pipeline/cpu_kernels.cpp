#include "pipeline/cpu_kernels.h"

#include <cstdlib>
#include <cstring>

namespace mbx {

int cpu_isa_level() {
  static const int level = [] {
    const char* cap = std::getenv("MBX_CPU_ISA");
    const int limit = !cap ? 3 : std::strcmp(cap, "sse2") == 0 ? 1 : std::strcmp(cap, "avx2") == 0 ? 2 : 3;
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return limit >= 3 && avx512 ? 3 : limit >= 2 && avx2 ? 2 : 1;
  }();
  return level;
}

const CpuRowKernels& cpu_row_kernels() {
  static const CpuRowKernels* chosen = cpu_isa_level() == 3   ? cpu_row_kernels_avx512()
                                       : cpu_isa_level() == 2 ? cpu_row_kernels_avx2()
                                                              : cpu_row_kernels_sse2();
  return *chosen;
}

}  // namespace mbx
