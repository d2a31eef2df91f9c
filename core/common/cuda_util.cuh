// Private helpers of the CUDA path: error checking, device selection, dtype
// conversion and deterministic reductions. Included by the .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "common/types.h"

namespace mbx {
namespace cuda {

// Every CUDA runtime failure becomes Error(kDeviceError) naming the call; an
// allocation failure is reported as out-of-memory so callers can react.
[[noreturn]] inline void throw_cuda(const char* what, cudaError_t e) {
  throw Error(e == cudaErrorMemoryAllocation ? Status::kOutOfMemory : Status::kDeviceError,
              std::string(what) + " failed: " + cudaGetErrorString(e));
}

#define MBX_CUDA_CHECK(call)                                        \
  do {                                                              \
    const cudaError_t mbx_err_ = (call);                            \
    if (mbx_err_ != cudaSuccess) ::mbx::cuda::throw_cuda(#call, mbx_err_); \
  } while (0)

// A launch reports configuration errors only through cudaGetLastError.
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw_cuda((std::string("launch of ") + kernel).c_str(), e);
}

// Makes `device_id` current for the scope of a call and restores the
// caller's device afterwards (the caller's CUDA state is not ours to keep).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device_id) {
    MBX_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device_id) {
      MBX_CUDA_CHECK(cudaSetDevice(device_id));
      restore_ = true;
    }
  }
  ~DeviceGuard() {
    if (restore_) cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
  bool restore_ = false;
};

constexpr int kBlock = 256;  // threads of every element-wise / row kernel

// Blocks per image for `n` work items: depends on the shape only (never on
// the device), so the fixed-order partial sums are identical on every GPU.
inline int blocks_per_image(int64_t n, int items_per_thread) {
  const int64_t per_block = static_cast<int64_t>(kBlock) * items_per_thread;
  int64_t nb = (n + per_block - 1) / per_block;
  if (nb < 1) nb = 1;
  if (nb > 1024) nb = 1024;
  return static_cast<int>(nb);
}

// Grid y covers images; larger batches loop over b in the kernels.
inline unsigned grid_images(int64_t B) {
  return static_cast<unsigned>(B < 65535 ? B : 65535);
}

// --- element conversion: fp16 / bf16 storage, float32 math -----------------
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Upstream gradient element i (0 loss_loc, 1 loss_conf), read on the device
// so that a device scalar never forces a host round trip.
__device__ __forceinline__ double read_upstream(const void* up, bool f64, int i) {
  if (up == nullptr) return 1.0;
  return f64 ? static_cast<const double*>(up)[i]
             : static_cast<double>(static_cast<const float*>(up)[i]);
}

// Fixed-shape tree sum over one block: the same association for every run,
// so per-block partials are bit-reproducible (no floating-point atomics).
template <int BS>
__device__ __forceinline__ double block_sum(double v, double* sh) {
  const int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
#pragma unroll
  for (int s = BS / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  const double r = sh[0];
  __syncthreads();
  return r;
}

}  // namespace cuda
}  // namespace mbx
