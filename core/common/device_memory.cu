// Device allocation hooks of the Workspace and the CUDA availability probe.
// cudart is linked statically: on a machine without a driver,
// cudaGetDeviceCount returns an error (35, insufficient driver) instead of
// crashing, which is what lets one binary serve CPU-only machines.
#include "common/cuda_util.cuh"
#include "common/device_memory.h"

namespace mbx {

void* device_malloc(std::size_t bytes, int device_id) {
  cuda::DeviceGuard guard(device_id);
  void* p = nullptr;
  MBX_CUDA_CHECK(cudaMalloc(&p, bytes == 0 ? 1 : bytes));
  return p;
}

void device_free(void* ptr, int device_id) noexcept {
  if (!ptr) return;
  int prev = -1;
  if (cudaGetDevice(&prev) != cudaSuccess) prev = -1;
  if (prev != device_id) cudaSetDevice(device_id);
  // cudaFree waits for the work that may still use the block: a workspace
  // slot is never released under a running kernel.
  cudaFree(ptr);
  if (prev >= 0 && prev != device_id) cudaSetDevice(prev);
  cudaGetLastError();  // a failure here must not poison the caller's next check
}

bool cuda_runtime_available() noexcept {
  // Probed once: the answer cannot change within a process (and the probe
  // initialises the runtime, which is not free).
  static const bool available = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return n > 0;
  }();
  return available;
}

void device_to_host(void* dst, const void* src, std::size_t bytes, int device_id, void* stream) {
  if (bytes == 0) return;
  if (!cuda_runtime_available())
    throw Error(Status::kNoDevice, "no usable CUDA device/driver for a device-to-host copy");
  cuda::DeviceGuard guard(device_id);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  // Ordered after the caller's pending work on the same stream, so the data
  // read is what the caller's earlier kernels produced.
  MBX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  MBX_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace mbx
