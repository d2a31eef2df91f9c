// Matching kernels for sse2 (see match_kernels.h); compiled with that ISA's
// flags and -ffp-contract=off.
#include <stdint.h>

#include <xsimd/xsimd.hpp>

#include "match/match_kernels.h"

#define MBX_ISA_NS match_sse2
#define MBX_ISA_ARCH xsimd::sse2
#define MBX_ISA_NAME "sse2"
#include "match/match_kernels_impl.h"

namespace mbx {
const MatchKernels* match_kernels_sse2() { return &match_sse2::kTable; }
}  // namespace mbx
