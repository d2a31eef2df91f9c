// Private to the CUDA path: launchers of encode.cu (the regression loss on
// encoded targets, and decoding).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/types.h"

namespace mbx {
namespace cuda {

struct LocLossLaunch {
  const int32_t* conf_target = nullptr;  // [B,P] (> 0: positive)
  const int32_t* matched_gt = nullptr;   // [B,P] matched GT row
  const double* loc_scale = nullptr;  // [B] normalisation of the loc term
  const void* grad_loss = nullptr;  // device [2] or null = (1,1)
  bool grad_loss_f64 = true;
  void* grad_loc = nullptr;         // [B,P,4] of in.loc_dtype, or null
  double* partials = nullptr;       // [B, nblocks] per-block loc sums
  int nblocks = 0;                  // from loc_loss_blocks()
};

int loc_loss_blocks(int64_t P);

// Per-image smooth-L1 / L1 sums over positives (docs/SPEC.md §4) as per-block
// partials, and d loss_loc / d loc for every element when requested.
void launch_loc_loss(const Options& o, const Inputs& in, const LocLossLaunch& l,
                     cudaStream_t stream);

// loc [B,P,4] float32 -> corner boxes [B,P,4] float32 (encode_math.h decode_box).
void launch_decode(const Options& o, const Inputs& in, const float* loc, float* boxes,
                   cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
