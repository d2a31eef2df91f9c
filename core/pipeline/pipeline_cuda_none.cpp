// Built when MBX_ENABLE_CUDA is OFF: the CUDA path reports that it is absent.
#include "pipeline/pipeline.h"

namespace mbx {

void run_cuda(const Options&, const Inputs&, const Outputs&, const Exec&) {
  throw Error(Status::kNoDevice,
              "CUDA tensors given, but mbx was built without CUDA support (MBX_ENABLE_CUDA=OFF)");
}
void decode_cuda(const Options&, const Inputs&, const float*, float*, const Exec&) {
  throw Error(Status::kNoDevice,
              "CUDA tensors given, but mbx was built without CUDA support (MBX_ENABLE_CUDA=OFF)");
}

std::size_t cuda_workspace_bytes(const Options&, int64_t, int64_t, int64_t, int64_t) {
  throw Error(Status::kNoDevice,
              "no CUDA path to size a workspace for: mbx was built without CUDA support "
              "(MBX_ENABLE_CUDA=OFF)");
}

}  // namespace mbx
