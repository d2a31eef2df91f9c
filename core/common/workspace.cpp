#include "common/workspace.h"

#include <new>

#include "common/device_memory.h"

namespace mbx {

void* Workspace::host(std::size_t slot, std::size_t bytes) {
  if (slot >= host_.size()) host_.resize(slot + 1);
  HostBlock& b = host_[slot];
  if (b.capacity < bytes) {
    constexpr std::size_t kAlign = 64;
    // Grow by 1.5x so that slowly growing batches do not reallocate each call.
    std::size_t cap = bytes + bytes / 2;
    std::unique_ptr<unsigned char[]> raw(new unsigned char[cap + kAlign]);
    auto addr = reinterpret_cast<std::uintptr_t>(raw.get());
    b.aligned = reinterpret_cast<void*>((addr + kAlign - 1) & ~(std::uintptr_t)(kAlign - 1));
    b.raw = std::move(raw);
    b.capacity = cap;
  }
  return b.aligned;
}

void* Workspace::device(std::size_t slot, std::size_t bytes, int device_id) {
  if (slot >= device_.size()) device_.resize(slot + 1);
  DeviceBlock& b = device_[slot];
  if (b.capacity < bytes || b.device_id != device_id) {
    if (b.ptr) device_free(b.ptr, b.device_id);
    b.ptr = nullptr;
    b.capacity = 0;
    std::size_t cap = bytes + bytes / 2 + 256;
    b.ptr = device_malloc(cap, device_id);
    b.capacity = cap;
    b.device_id = device_id;
  }
  return b.ptr;
}

std::size_t Workspace::bytes() const {
  std::size_t n = 0;
  for (const auto& b : host_) n += b.capacity;
  for (const auto& b : device_) n += b.capacity;
  return n;
}

void Workspace::release() {
  host_.clear();
  for (auto& b : device_)
    if (b.ptr) device_free(b.ptr, b.device_id);
  device_.clear();
}

}  // namespace mbx
