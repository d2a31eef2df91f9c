// Row kernels of the fast CPU path, compiled once per instruction set
// (cpu_kernels_<isa>.cpp with that ISA's flags) and chosen at run time from
// the CPU's features, so shipped binaries need no -march=native. The
// environment variable MBX_CPU_ISA (sse2 | avx2 | avx512) caps the choice,
// for tests and benchmarks.
#pragma once

#include <cstdint>

namespace mbx {

// One GT box in float64 with its area (as match.h's GtBox).
struct MatchBox {
  double x1, y1, x2, y2, area;
};

// Priors as float64 structure of arrays: corners and area.
struct PriorSoA {
  const double *x1, *y1, *x2, *y2, *area;
};

struct CpuRowKernels {
  const char* isa;
  // log(sum_c exp(x[c])), shifted by the row's max (SPEC §6.3); IEEE
  // inf/NaN results for non-finite rows.
  float (*logsumexp)(const float* x, int64_t C);
  // logsumexp of n consecutive rows [n, C] into out[n]; scratch: n*C + 64 floats.
  void (*logsumexp_rows)(const float* x, int64_t n, int64_t C, float* out, float* scratch);
  // g[c] = (exp(x[c] - lse) - [c == target]) * s
  void (*softmax_grad)(const float* x, int64_t C, float lse, int32_t target, float s, float* g);
  // Sigmoid focal loss of one row (t = one-hot of pos_col, or all zero when
  // pos_col < 0): returns the row's sum (float64), writes d/dx * scale to g
  // unless g is null. gamma_kind: 0, 1, 2 for those exact gammas, -1 other.
  double (*focal)(const float* x, int64_t C, int32_t pos_col, float alpha, float gamma,
                  int gamma_kind, float scale, float* g);
  // Matching of priors [p0, p0+n) against G boxes, IoUs in float64 with the
  // spec's operation order and no FMA contraction (these translation units
  // are compiled with -ffp-contract=off), so the decisions are bit-identical
  // to iou_exact. Writes best[i] / arg[i] (best IoU and its GT, ties to the
  // lowest g; arg as a double) and, per GT, gt_iou[g] / gt_prior[g]: the
  // block's max IoU and the first prior reaching it.
  void (*match_block)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* g, int64_t G,
                      double* best, double* arg, double* gt_iou, int64_t* gt_prior);
  // LOW_QUALITY: sets hit[i] = 1 where IoU(g, p0+i) == gt_max[g] for some g.
  void (*match_ties)(const PriorSoA& pr, int64_t p0, int64_t n, const MatchBox* g, int64_t G,
                     const double* gt_max, uint8_t* hit);
};

// The best kernels for this CPU (respecting MBX_CPU_ISA), chosen once.
const CpuRowKernels& cpu_row_kernels();

// Per-ISA tables (null when the build lacks that ISA).
const CpuRowKernels* cpu_row_kernels_sse2();
const CpuRowKernels* cpu_row_kernels_avx2();
const CpuRowKernels* cpu_row_kernels_avx512();

}  // namespace mbx
