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

}  // namespace mbx
