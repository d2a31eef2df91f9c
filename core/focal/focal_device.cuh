// Private to the CUDA path: launcher of focal.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/types.h"

namespace mbx {
namespace cuda {

struct FocalLaunch {
  const int32_t* conf_target = nullptr;  // [B,P]
  const double* conf_scale = nullptr;  // [B]
  const void* grad_loss = nullptr;     // device [2] or null = (1,1)
  bool grad_loss_f64 = true;
  void* grad_conf = nullptr;           // [B,P,C] of in.conf_dtype, or null
  double* partials = nullptr;          // [B, nblocks]
  int nblocks = 0;                     // from focal_blocks()
};

int focal_blocks(int64_t P, int64_t C);

// Sigmoid focal loss over every non-ignored prior and column (docs/SPEC.md §4):
// per-block float64 partial sums and, when requested, the gradient.
void launch_focal(const Options& o, const Inputs& in, const FocalLaunch& l, cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
