// Private to the CUDA path: the launcher of hard_example.cu (mining =
// HARD_EXAMPLE, docs/SPEC.md §4.6).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "common/types.h"

namespace mbx {
namespace cuda {

struct HardExampleLaunch {
  const int32_t* conf_target = nullptr;  // [B,P] matching's targets
  const int32_t* matched_gt = nullptr;   // [B,P]
  int32_t* num_pos = nullptr;            // [B] out: positives kept (the loss's count)
  int32_t* loss_target = nullptr;        // [B,P] out: conf_target where kept, -1 elsewhere
  uint8_t* weight = nullptr;             // [B,P] out: 1 where kept, else 0
  // scratch
  uint64_t* keys = nullptr;              // [B, N] hard_example_rank_key, N = hard_example_sort_len(P)
  int32_t* order = nullptr;              // [B, N] prior indices, sorted into ranking order
  float* boxes = nullptr;                // [B,P,4] decoded predictions (NMS only)
  int32_t* kept = nullptr;               // [B,P] kept priors in order (NMS only)
};

// Length of the per-image sort: the power of two >= P.
int64_t hard_example_sort_len(int64_t P);

// Ranks every prior of every image by its loss (classification against
// max(conf_target, 0) plus, for positives, the regression loss) and keeps
// the first mining_sample_size, through greedy NMS of the decoded
// predictions when mining_nms_threshold > 0. Fills num_pos, loss_target
// and weight.
void launch_hard_example(const Options& o, const Inputs& in, const HardExampleLaunch& l,
                         cudaStream_t stream);

}  // namespace cuda
}  // namespace mbx
