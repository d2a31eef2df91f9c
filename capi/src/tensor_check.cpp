#include "tensor_check.h"

#include <algorithm>
#include <cstdint>

namespace mbx::capi {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::string shape_str(const DLTensor* t) {
  return shape_str(std::vector<int64_t>(t->shape, t->shape + t->ndim));
}

DType dtype_of(const DLTensor* t, const char* name) {
  const DLDataType d = t->dtype;
  if (d.lanes != 1) fail(std::string(name) + ": vector dtypes (lanes != 1) are not supported");
  if (d.code == kDLFloat && d.bits == 32) return DType::kF32;
  if (d.code == kDLFloat && d.bits == 64) return DType::kF64;
  if (d.code == kDLFloat && d.bits == 16) return DType::kF16;
  if (d.code == kDLBfloat && d.bits == 16) return DType::kBF16;
  if (d.code == kDLInt && d.bits == 32) return DType::kI32;
  const char* code = d.code == kDLInt ? "int" : d.code == kDLUInt ? "uint" : d.code == kDLFloat ? "float"
                     : d.code == kDLBfloat ? "bfloat" : nullptr;
  fail(std::string(name) + ": unsupported dtype " +
       (code ? code + std::to_string(d.bits) : "(code " + std::to_string(d.code) + ", bits " + std::to_string(d.bits) + ")") +
       "; mbx takes float32 boxes, int32 labels/counts, float32/float16/bfloat16 loc/conf");
}

size_t elem_size(DType d) {
  switch (d) {
    case DType::kF64: return 8;
    case DType::kF16:
    case DType::kBF16: return 2;
    default: return 4;
  }
}

// "[B, P, 4]" with the known sizes filled in: "[2, P, 4]" when only B is fixed.
std::string expected_shape(const char* dims, const std::vector<int64_t>& shape) {
  std::vector<std::string> letters;
  std::string d(dims);
  size_t st = 1;
  for (size_t k = 1; k < d.size(); ++k)
    if (d[k] == ',' || d[k] == ']') { letters.push_back(d.substr(st, k - st)); st = k + 2; }
  std::string r = "[";
  for (size_t j = 0; j < shape.size(); ++j)
    r += (j ? ", " : "") + (shape[j] >= 0 ? std::to_string(shape[j]) : j < letters.size() ? letters[j] : "?");
  return r + "]";
}

}  // namespace

bool is_host(const DLDevice& d) { return d.device_type == kDLCPU || d.device_type == kDLCUDAHost; }
bool is_cuda(const DLDevice& d) {
  return d.device_type == kDLCUDA || d.device_type == kDLCUDAManaged;
}

View check_tensor(const DLTensor* t, const char* name, const char* dims,
                  std::vector<int64_t> shape, std::initializer_list<DType> dtypes) {
  if (!t) fail(std::string(name) + ": NULL tensor");
  View v;
  v.t = t;
  if (t->ndim != static_cast<int>(shape.size()))
    fail(std::string(name) + ": ndim = " + std::to_string(t->ndim) + ", expected " +
         std::to_string(shape.size()) + " (shape " + dims + ")");
  if (t->ndim > 0 && !t->shape) fail(std::string(name) + ": shape pointer is NULL");
  for (int i = 0; i < t->ndim; ++i)
    if (t->shape[i] < 0)
      fail(std::string(name) + ": negative dimension in shape " + shape_str(t));
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] >= 0 && t->shape[i] != shape[i]) {
      const std::string want = expected_shape(dims, shape);
      fail(std::string(name) + ": shape " + shape_str(t) + " does not match " + dims + " = " + want +
           " (B and G from gt_boxes, P from priors, C from conf)");
    }
  v.dtype = dtype_of(t, name);
  if (std::find(dtypes.begin(), dtypes.end(), v.dtype) == dtypes.end()) {
    std::string allowed;
    for (DType d : dtypes) allowed += (allowed.empty() ? "" : " or ") + std::string(mbx::dtype_name(d));
    fail(std::string(name) + ": dtype " + mbx::dtype_name(v.dtype) + ", expected " + allowed);
  }
  if (!is_host(t->device) && !is_cuda(t->device))
    throw Error(Status::kUnsupported, std::string(name) + ": device type " +
                                          std::to_string(t->device.device_type) +
                                          " is not supported (CPU or CUDA)");
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i) {
    if (t->shape[i] != 0 && n > INT64_MAX / 16 / t->shape[i])
      fail(std::string(name) + ": shape " + shape_str(t) + " is too large");
    n *= t->shape[i];
  }
  if (t->strides && n > 0) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; --i) {
      if (t->shape[i] != 1 && t->strides[i] != expect) {
        std::string st = "[";
        for (int j = 0; j < t->ndim; ++j) st += (j ? ", " : "") + std::to_string(t->strides[j]);
        fail(std::string(name) + ": strides " + st + "] are not compact row-major for shape " +
             shape_str(t) + "; pass a contiguous tensor");
      }
      expect *= t->shape[i];
    }
  }
  v.bytes = static_cast<size_t>(n) * elem_size(v.dtype);
  if (n > 0 && !t->data) fail(std::string(name) + ": data is NULL for a non-empty tensor");
  v.data = t->data ? static_cast<char*>(t->data) + t->byte_offset : nullptr;
  if (v.data && reinterpret_cast<uintptr_t>(v.data) % elem_size(v.dtype) != 0)
    fail(std::string(name) + ": data (+ byte_offset) is not aligned to its " +
         std::to_string(elem_size(v.dtype)) + "-byte element size");
  return v;
}

void check_same_device(const std::vector<Named>& all) {
  const DLDevice& d0 = all[0].v.t->device;
  for (const Named& n : all) {
    const DLDevice& d = n.v.t->device;
    const bool same_kind = is_host(d) == is_host(d0);
    const bool same_gpu = is_host(d) || d.device_id == d0.device_id;
    if (!same_kind || !same_gpu)
      fail(std::string(n.name) + ": on device (type " + std::to_string(d.device_type) + ", id " +
           std::to_string(d.device_id) + ") but " + all[0].name + " is on (type " +
           std::to_string(d0.device_type) + ", id " + std::to_string(d0.device_id) +
           "): every tensor of a call must be on the same device");
  }
}

void check_no_alias(const std::vector<Named>& inputs, const std::vector<Named>& outputs) {
  auto overlap = [](const View& a, const View& b) {
    if (!a.data || !b.data || a.bytes == 0 || b.bytes == 0) return false;
    auto a0 = reinterpret_cast<uintptr_t>(a.data), b0 = reinterpret_cast<uintptr_t>(b.data);
    return a0 < b0 + b.bytes && b0 < a0 + a.bytes;
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const Named& in : inputs)
      if (overlap(outputs[i].v, in.v))
        fail(std::string(outputs[i].name) + ": output memory overlaps input " + in.name +
             "; outputs must not alias inputs");
    for (size_t j = 0; j < i; ++j)
      if (overlap(outputs[i].v, outputs[j].v))
        fail(std::string(outputs[i].name) + ": output memory overlaps output " + outputs[j].name);
  }
}

}  // namespace mbx::capi
