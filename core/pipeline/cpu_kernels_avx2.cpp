// Row kernels for avx2 (see cpu_kernels.h); compiled with that ISA's flags.
#include <math.h>
#include <stdint.h>

#include <immintrin.h>
#include <xsimd/xsimd.hpp>

#include "pipeline/cpu_kernels.h"

#define MBX_ISA_NS isa_avx2
#define MBX_ISA_ARCH xsimd::avx2
#define MBX_ISA_HAS_RCP 1
#define MBX_ISA_STREAM_STORE_V(p, v) _mm256_stream_ps((p), (v))
#define MBX_ISA_SFENCE() _mm_sfence()
#define MBX_ISA_NAME "avx2"
#include "pipeline/cpu_kernels_impl.h"

namespace mbx {
const CpuRowKernels* cpu_row_kernels_avx2() { return &isa_avx2::kTable; }
}  // namespace mbx
