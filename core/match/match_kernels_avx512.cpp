// Matching kernels for avx512 (see match_kernels.h); compiled with that ISA's
// flags and -ffp-contract=off.
#include <stdint.h>

#include <xsimd/xsimd.hpp>

#include "match/match_kernels.h"

#define MBX_ISA_NS match_avx512
#define MBX_ISA_ARCH xsimd::avx512f
#define MBX_ISA_NAME "avx512"
#include "match/match_kernels_impl.h"

namespace mbx {
const MatchKernels* match_kernels_avx512() { return &match_avx512::kTable; }
}  // namespace mbx
