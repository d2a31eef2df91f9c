// Row kernels of the fast CPU path, compiled once per instruction set
// (cpu_kernels_<isa>.cpp with that ISA's flags) and chosen at run time from
// the CPU's features, so shipped binaries need no -march=native. The
// environment variable MBX_CPU_ISA (sse2 | avx2 | avx512) caps the choice,
// for tests and benchmarks.
#pragma once

#include <cstdint>

namespace mbx {

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
};

// The instruction set level used by every per-ISA kernel table: 1 SSE2,
// 2 AVX2+FMA, 3 AVX-512 (F+DQ); the best the CPU has, capped by MBX_CPU_ISA.
int cpu_isa_level();

// The best kernels for this CPU (respecting MBX_CPU_ISA), chosen once.
const CpuRowKernels& cpu_row_kernels();

// Per-ISA tables (null when the build lacks that ISA).
const CpuRowKernels* cpu_row_kernels_sse2();
const CpuRowKernels* cpu_row_kernels_avx2();
const CpuRowKernels* cpu_row_kernels_avx512();

}  // namespace mbx
