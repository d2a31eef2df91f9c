// Row kernels of the fast CPU path (softmax CE, focal, gradient fills),
// compiled once per instruction set (cpu_kernels_<isa>.cpp) and chosen at
// run time by common/cpu_isa.h.
#pragma once

#include <cstdint>

namespace mbx {

struct CpuRowKernels {
  const char* isa;
  // Softmax statistics per row of x [n, C]: m = row max, l = log(sum exp(x - m))
  // (lse = m + l, ce_t = (m - x_t) + l); nothing past row n-1 is read. See
  // softmax_ce/softmax_ce_simd_impl.h for the numerics.
  void (*softmax_rows)(const float* x, int64_t n, int64_t C, float* m, float* l);
  // Background CE log(sum_c exp(x_c)) - x_0 of every row of x [n, C]: the
  // mining score, fast and at full relative precision (per-row
  // deterministic). scratch: n*C + 64 floats.
  void (*ce_background_rows)(const float* x, int64_t n, int64_t C, float* ce0, float* scratch);
  // g[c] = (softmax(x)[c] - [c == target]) * s, softmax from (m, l).
  void (*softmax_grad)(const float* x, int64_t C, float m, float l, int32_t target, float s,
                       float* g);
  // Zero n floats with streaming stores (large gradient fills).
  void (*zero_fill)(float* p, int64_t n);
  // Orders earlier streaming stores (call at the end of a task that used
  // zero_fill or focal with gradients).
  void (*store_fence)();
  // Sigmoid focal loss of one row (t = one-hot of pos_col, or all zero when
  // pos_col < 0): returns the row's sum (float64), writes d/dx * scale to g
  // unless g is null. gamma_kind: 0, 1, 2 for those exact gammas, -1 other.
  double (*focal)(const float* x, int64_t C, int32_t pos_col, float alpha, float gamma,
                  int gamma_kind, float scale, float* g);
  // s[c] = softplus(x_c) = max(x_c, 0) + log1p(exp(-|x_c|)) in float, c < C
  // (the LOGISTIC ranking bounds; logistic_math.h has the float64 formula).
  void (*softplus_terms)(const float* x, int64_t C, float* s);
};

// Per-ISA tables (null when the build lacks that ISA).
const CpuRowKernels* cpu_row_kernels_sse2();
const CpuRowKernels* cpu_row_kernels_avx2();
const CpuRowKernels* cpu_row_kernels_avx512();

// The table of the CPU's instruction set (common/cpu_isa.h), chosen once.
// Defined in a baseline translation unit (cpu_kernels.cpp), never in a
// per-ISA one.
const CpuRowKernels& cpu_row_kernels();

}  // namespace mbx
