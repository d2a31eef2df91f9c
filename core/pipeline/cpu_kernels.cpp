#include "pipeline/cpu_kernels.h"

#include "common/cpu_isa.h"

namespace mbx {

const CpuRowKernels& cpu_row_kernels() {
  static const CpuRowKernels& chosen =
      cpu_isa_table(cpu_row_kernels_sse2(), cpu_row_kernels_avx2(), cpu_row_kernels_avx512());
  return chosen;
}

}  // namespace mbx
