#include "pipeline/cpu_kernels.h"

#include <cstdlib>
#include <cstring>

namespace mbx {

const CpuRowKernels& cpu_row_kernels() {
  static const CpuRowKernels* chosen = [] {
    const char* cap = std::getenv("MBX_CPU_ISA");
    const int limit = !cap ? 3 : std::strcmp(cap, "sse2") == 0 ? 1 : std::strcmp(cap, "avx2") == 0 ? 2 : 3;
    __builtin_cpu_init();
    if (limit >= 3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma"))
      return cpu_row_kernels_avx512();
    if (limit >= 2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return cpu_row_kernels_avx2();
    return cpu_row_kernels_sse2();
  }();
  return *chosen;
}

}  // namespace mbx
