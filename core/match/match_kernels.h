// Per-ISA matching kernels (match_kernels_<isa>.cpp, compiled with that
// ISA's flags and -ffp-contract=off): the IoUs of match_math.h over blocks
// of priors, vectorised, bit-identical to the scalar reference and the CUDA
// path.
#pragma once

#include <cstdint>

#include "match/match_math.h"

namespace mbx {

// Priors as float64 structure of arrays: corners and area.
struct PriorSoA {
  const double *x1, *y1, *x2, *y2, *area;
};

struct MatchKernels {
  const char* isa;
  // Priors [p0, p0+n) against G boxes: best[i] / arg[i] (best IoU and its
  // GT, ties to the lowest g; arg as a double) and, per GT, gt_iou[g] /
  // gt_prior[g]: the block's max IoU and the first prior reaching it.
  // skip (null: none): priors p0+i with skip[i] != 0 count with IoU -1
  // (ignored, docs/SPEC.md §2.7).
  void (*match_block)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* g, int64_t G,
                      const uint8_t* skip, double* best, double* arg, double* gt_iou,
                      int64_t* gt_prior);
  // LOW_QUALITY: sets hit[i] = 1 where IoU(g, p0+i) == gt_max[g] for some g.
  void (*match_ties)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* g, int64_t G,
                     const double* gt_max, uint8_t* hit);
  // Ignore regions (docs/SPEC.md §2.7): ignored[i] = 1 where IoF(region,
  // p0+i) > threshold for one of the R regions, else 0; threshold > 0.
  // Returns whether any prior of the block is ignored.
  bool (*ignore_block)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* regions,
                       int64_t R, double threshold, uint8_t* ignored);
};

// The table of the CPU's instruction set (common/cpu_isa.h).
const MatchKernels& match_kernels();
const MatchKernels* match_kernels_sse2();
const MatchKernels* match_kernels_avx2();
const MatchKernels* match_kernels_avx512();

}  // namespace mbx
