// Templated row kernels, included by each cpu_kernels_<isa>.cpp inside its
// own namespace (MBX_ISA_NS) so that no symbol is shared between ISAs (see
// common/cpu_isa.h). Only xsimd and C math are used here — no std:: inline
// templates.
//
// Requires: <xsimd/xsimd.hpp>, <math.h>, <stdint.h> included before, and
// MBX_ISA_NS / MBX_ISA_ARCH defined.

namespace mbx {
namespace MBX_ISA_NS {

using arch = MBX_ISA_ARCH;
using fb = xsimd::batch<float, arch>;
constexpr int64_t W = static_cast<int64_t>(fb::size);

// The kernels themselves live with their algorithms:
#include "common/simd_math_impl.h"
#include "softmax_ce/softmax_ce_simd_impl.h"
#include "softmax_ce/logistic_simd_impl.h"
#include "focal/focal_simd_impl.h"

static const CpuRowKernels kTable = {MBX_ISA_NAME, &softmax_rows, &ce_background_rows, &softmax_grad,
                                     &zero_fill_stream, &store_fence, &focal,
                                     &softplus_terms};

}  // namespace MBX_ISA_NS
}  // namespace mbx
