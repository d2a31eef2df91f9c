// Matching kernels for avx2 (see match_kernels.h); compiled with that ISA's
// flags and -ffp-contract=off.
#include <stdint.h>

#include <xsimd/xsimd.hpp>

#include "match/match_kernels.h"

#define MBX_ISA_NS match_avx2
#define MBX_ISA_ARCH xsimd::avx2
#define MBX_ISA_NAME "avx2"
#include "match/match_kernels_impl.h"

namespace mbx {
const MatchKernels* match_kernels_avx2() { return &match_avx2::kTable; }
}  // namespace mbx
