// Private to the CUDA path: launchers of softmax_ce.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/types.h"

namespace mbx {
namespace cuda {

struct SoftmaxCELaunch {
  const int32_t* conf_target = nullptr;  // [B,P]
  const int32_t* num_pos = nullptr;    // [B]
  const double* conf_scale = nullptr;  // [B]
  const void* grad_loss = nullptr;     // device [2] or null = (1,1)
  bool grad_loss_f64 = true;
  void* grad_conf = nullptr;           // [B,P,C] of in.conf_dtype, or null
  bool want_value = true;              // write the per-block loss partials
  bool mine = true;                    // false: `weight` is already set (HARD_EXAMPLE, hard_example.cu)
  double* partials = nullptr;          // [B, nblocks]
  int nblocks = 0;                     // from softmax_ce_blocks()
  // scratch
  float* row_max = nullptr;            // [B,P] m = the row's max (the IEEE log-sum-exp for non-finite rows)
  float* row_log_sum = nullptr;        // [B,P] l = log(sum_c exp(x_c - m)) (0 for non-finite rows)
  uint32_t* keys = nullptr;            // [B,P] mining_rank_key of negatives, 0 for the others
  uint8_t* weight = nullptr;           // [B,P] CE weight: positive, mined, double-counted
};

int softmax_ce_blocks(int64_t P);
int logistic_blocks(int64_t P);

// Softmax CE with per-image hard negative mining (docs/SPEC.md §4).
void launch_softmax_ce(const Options& o, const Inputs& in, const SoftmaxCELaunch& l,
                       cudaStream_t stream);

// MAX_NEGATIVE mining alone (mine_kernel of softmax_ce.cu): from l.keys
// (mining_rank_key of each negative's loss, 0 for the others), l.conf_target
// and l.num_pos, writes l.weight. The LOGISTIC loss ranks by its own loss.
void launch_mining(const Options& o, const Inputs& in, const SoftmaxCELaunch& l,
                   cudaStream_t stream);

// conf_loss = LOGISTIC (logistic.cu, docs/SPEC.md §4.6) with the same
// launch description: per-class sigmoid cross-entropy over the C columns
// (column 0 = background), MAX_NEGATIVE mining by the background loss
// unless l.mine is false; row_max / row_log_sum are not used.
void launch_logistic(const Options& o, const Inputs& in, const SoftmaxCELaunch& l,
                     cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
