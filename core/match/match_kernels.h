// Per-ISA matching kernels (match_kernels_<isa>.cpp, compiled with that
// ISA's flags and -ffp-contract=off): IoUs in float64 with the spec's
// operation order and no fused multiply-add, so every ISA — and the scalar
// reference and the CUDA path — makes bit-identical decisions.
#pragma once

#include <cstdint>

namespace mbx {

// One GT box in float64 with its area (match.h calls it GtBox).
struct MatchBox {
  double x1, y1, x2, y2, area;
};

// Priors as float64 structure of arrays: corners and area.
struct PriorSoA {
  const double *x1, *y1, *x2, *y2, *area;
};

struct MatchKernels {
  const char* isa;
  // Priors [p0, p0+n) against G boxes: best[i] / arg[i] (best IoU and its
  // GT, ties to the lowest g; arg as a double) and, per GT, gt_iou[g] /
  // gt_prior[g]: the block's max IoU and the first prior reaching it.
  void (*match_block)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* g, int64_t G,
                      double* best, double* arg, double* gt_iou, int64_t* gt_prior);
  // LOW_QUALITY: sets hit[i] = 1 where IoU(g, p0+i) == gt_max[g] for some g.
  void (*match_ties)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* g, int64_t G,
                     const double* gt_max, uint8_t* hit);
};

// The best table for this CPU (same choice as the row kernels, cpu_isa_level).
const MatchKernels& match_kernels();
const MatchKernels* match_kernels_sse2();
const MatchKernels* match_kernels_avx2();
const MatchKernels* match_kernels_avx512();

}  // namespace mbx
