// Scratch memory cached by an mbx_context_t so steady-state calls allocate
// nothing. Host slots grow only; device slots are managed by the CUDA path
// (device_memory.h) and released with the context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace mbx {

class Workspace {
 public:
  Workspace() = default;
  ~Workspace() { release(); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // A host buffer of at least `bytes` for slot `slot`, 64-byte aligned.
  // Contents are unspecified. Valid until the next call with the same slot.
  void* host(std::size_t slot, std::size_t bytes);
  // A device buffer (CUDA path only); throws kNoDevice without CUDA.
  void* device(std::size_t slot, std::size_t bytes, int device_id);

  std::size_t bytes() const;
  void release();

 private:
  struct HostBlock {
    std::unique_ptr<unsigned char[]> raw;
    void* aligned = nullptr;
    std::size_t capacity = 0;
  };
  struct DeviceBlock {
    void* ptr = nullptr;
    std::size_t capacity = 0;
    int device_id = -1;
  };
  std::vector<HostBlock> host_;
  std::vector<DeviceBlock> device_;
};

// Typed helper: `count` elements of T from `ws` (or from `owned` when ws is
// null, for context-less calls).
template <typename T>
T* host_scratch(Workspace* ws, Workspace& owned, std::size_t slot, std::size_t count) {
  Workspace& w = ws ? *ws : owned;
  return static_cast<T*>(w.host(slot, count * sizeof(T) + 1));
}

}  // namespace mbx
