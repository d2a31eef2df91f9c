// MBX_HD marks a formula that the CPU and the CUDA paths share: one inline
// definition, compiled for the host by every translation unit and for the
// device by the .cu files, so host and device cannot drift apart.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MBX_HD __host__ __device__
#define MBX_HD_INLINE __host__ __device__ __forceinline__
#else
#define MBX_HD
#define MBX_HD_INLINE inline __attribute__((always_inline))
#endif
// Always inlined, also on the host: the per-ISA translation units
// (common/cpu_isa.h) call these helpers, and an out-of-line copy compiled
// with -mavx512f that the linker picked for every caller would break the
// SSE2 path (the one-definition hazard of per-ISA code).

namespace mbx {

// Order-preserving unsigned images of IEEE values: a larger (non-NaN)
// value gives a larger key, -0 sorts just below +0. They let exact
// maxima and rankings go through integer compares, radix passes and
// integer atomics.
MBX_HD_INLINE uint32_t ordered_bits(float v) {
#if defined(__CUDA_ARCH__)
  const uint32_t u = __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
#endif
  return (u >> 31) ? ~u : (u | 0x80000000u);
}

MBX_HD_INLINE uint64_t ordered_bits(double v) {
#if defined(__CUDA_ARCH__)
  const uint64_t u = static_cast<uint64_t>(__double_as_longlong(v));
#else
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
#endif
  return (u >> 63) ? ~u : (u | 0x8000000000000000ull);
}

// The inverse of ordered_bits(double).
MBX_HD_INLINE double from_ordered_bits(uint64_t k) {
  const uint64_t u = (k >> 63) ? (k & 0x7fffffffffffffffull) : ~k;
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
#endif
}

}  // namespace mbx
