#include "common/cpu_isa.h"

#include <cstdlib>
#include <cstring>

namespace mbx {

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
    const char* cap = std::getenv("MBX_CPU_ISA");
    const int limit = !cap ? 3 : std::strcmp(cap, "sse2") == 0 ? 1 : std::strcmp(cap, "avx2") == 0 ? 2 : 3;
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return limit >= 3 && avx512 ? CpuIsa::kAvx512 : limit >= 2 && avx2 ? CpuIsa::kAvx2 : CpuIsa::kSse2;
  }();
  return isa;
}

}  // namespace mbx
