// DLPack tensor checks of the C boundary (docs/SPEC.md §7): every tensor is
// checked for NULL, ndim, dtype, shape, compact strides, data, alignment and
// device before anything is computed; messages name the argument and, for a
// shape, the expected shape with the known sizes filled in.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include <dlpack/dlpack.h>

#include "common/types.h"

namespace mbx::capi {

bool is_host(const DLDevice& d);
bool is_cuda(const DLDevice& d);

// A checked tensor: its data (byte_offset applied), dtype and size.
struct View {
  const DLTensor* t = nullptr;
  void* data = nullptr;
  DType dtype = DType::kF32;
  size_t bytes = 0;
};

struct Named {
  const char* name;
  View v;
};

// Checks one tensor: not NULL, ndim, allowed dtypes, shape (-1 = free),
// compact strides, data and alignment. `dims` is the documented shape
// ("[B, P, 4]") used in messages.
View check_tensor(const DLTensor* t, const char* name, const char* dims,
                  std::vector<int64_t> shape, std::initializer_list<DType> dtypes);

// Every tensor of a call on one device.
void check_same_device(const std::vector<Named>& all);
// No output overlaps an input or another output.
void check_no_alias(const std::vector<Named>& inputs, const std::vector<Named>& outputs);

}  // namespace mbx::capi
