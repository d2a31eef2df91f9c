// Device allocation hooks used by Workspace. Implemented by the CUDA build
// (device_memory.cu) or by device_memory_none.cpp, which reports kNoDevice.
#pragma once

#include <cstddef>

namespace mbx {

void* device_malloc(std::size_t bytes, int device_id);
void device_free(void* ptr, int device_id) noexcept;
// 1 if built with CUDA and a device + driver are usable.
bool cuda_runtime_available() noexcept;

}  // namespace mbx

namespace mbx {
// Synchronous device -> host copy on `stream` (used for host-side input
// validation of CUDA tensors). Throws kNoDevice without CUDA.
void device_to_host(void* dst, const void* src, std::size_t bytes, int device_id, void* stream);
}  // namespace mbx
