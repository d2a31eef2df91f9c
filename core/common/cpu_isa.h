// The one CPU instruction-set dispatch of the fast CPU path, used by the
// matching kernels (match/match_kernels.h) and the row kernels
// (pipeline/cpu_kernels.h) alike.
//
// Each kernel family is compiled once per instruction set, in its own
// translation unit with that ISA's flags (<family>_<isa>.cpp), and chosen
// at run time from the CPU's features, so shipped binaries need no
// -march=native. The per-ISA files include a templated "_impl.h" inside a
// namespace of their own (MBX_ISA_NS), so that no symbol is shared between
// ISAs: an inline function compiled with -mavx512f in one file and picked by
// the linker for all callers would crash the SSE2 path (the one-definition
// hazard of per-ISA code). The shared formulas they call are always inlined
// (common/hd.h).
//
// The environment variable MBX_CPU_ISA (sse2 | avx2 | avx512) caps the
// choice, for tests and benchmarks.
#pragma once

namespace mbx {

enum class CpuIsa { kSse2 = 1, kAvx2 = 2, kAvx512 = 3 };

// The best instruction set the CPU has (AVX2 means AVX2 + FMA, AVX-512
// means F + DQ), capped by MBX_CPU_ISA; decided once.
CpuIsa cpu_isa();

// The table of cpu_isa() among one kernel family's per-ISA tables.
template <typename Table>
const Table& cpu_isa_table(const Table* sse2, const Table* avx2, const Table* avx512) {
  switch (cpu_isa()) {
    case CpuIsa::kAvx512: return *avx512;
    case CpuIsa::kAvx2: return *avx2;
    default: return *sse2;
  }
}

}  // namespace mbx
