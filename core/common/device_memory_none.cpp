// Built when MBX_ENABLE_CUDA is OFF: the library has no CUDA path.
#include "common/device_memory.h"
#include "common/types.h"

namespace mbx {

void* device_malloc(std::size_t, int) {
  throw Error(Status::kNoDevice, "mbx was built without CUDA support (MBX_ENABLE_CUDA=OFF)");
}
void device_free(void*, int) noexcept {}
bool cuda_runtime_available() noexcept { return false; }

}  // namespace mbx

namespace mbx {
void device_to_host(void*, const void*, std::size_t, int, void*) {
  throw Error(Status::kNoDevice, "mbx was built without CUDA support (MBX_ENABLE_CUDA=OFF)");
}
}  // namespace mbx

#include "common/validate.h"
namespace mbx {
void validate_priors_device(const float*, int64_t, PriorFormat, int, void*) {
  throw Error(Status::kNoDevice, "mbx was built without CUDA support (MBX_ENABLE_CUDA=OFF)");
}
}  // namespace mbx
