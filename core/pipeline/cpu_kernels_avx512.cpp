// Row kernels for avx512 (see cpu_kernels.h); compiled with that ISA's flags.
#include <math.h>
#include <stdint.h>

#include <immintrin.h>
#include <xsimd/xsimd.hpp>

#include "pipeline/cpu_kernels.h"

#define MBX_ISA_NS isa_avx512
#define MBX_ISA_ARCH xsimd::avx512f
#define MBX_ISA_HAS_RCP 1
#define MBX_ISA_STREAM_STORE_V(p, v) _mm512_stream_ps((p), (v))
#define MBX_ISA_SFENCE() _mm_sfence()
#define MBX_ISA_NAME "avx512"
#include "pipeline/cpu_kernels_impl.h"

namespace mbx {
const CpuRowKernels* cpu_row_kernels_avx512() { return &isa_avx512::kTable; }
}  // namespace mbx
