// Minimal .npy (v1/v2/v3) reader/writer for tests and the golden runner:
// little-endian f4/f8/i4/i8/u1/b1, C order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mbx_test {

struct NpyArray {
  std::string descr;            // e.g. "<f4"
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // Values converted to double / int64 whatever the stored dtype.
  std::vector<double> as_double() const;
  std::vector<float> as_float() const;
  std::vector<int32_t> as_int32() const;
};

// Throws std::runtime_error with the path on any problem.
NpyArray load_npy(const std::string& path);
void save_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace mbx_test
