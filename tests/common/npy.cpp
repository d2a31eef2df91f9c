#include "npy.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace mbx_test {

namespace {
std::string field(const std::string& header, const std::string& key) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) throw std::runtime_error("npy header lacks " + key);
  size_t v = header.find(':', k) + 1;
  while (header[v] == ' ') ++v;
  if (header[v] == '\'') return header.substr(v + 1, header.find('\'', v + 1) - v - 1);
  if (header[v] == '(') return header.substr(v + 1, header.find(')', v) - v - 1);
  size_t e = header.find_first_of(",}", v);
  return header.substr(v, e - v);
}

template <typename T>
T read_elem(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename Out>
std::vector<Out> convert(const NpyArray& a) {
  const int64_t n = a.size();
  std::vector<Out> r(static_cast<size_t>(n));
  const std::string& d = a.descr;
  for (int64_t i = 0; i < n; ++i) {
    if (d == "<f4") r[i] = static_cast<Out>(read_elem<float>(&a.data[4 * i]));
    else if (d == "<f8") r[i] = static_cast<Out>(read_elem<double>(&a.data[8 * i]));
    else if (d == "<i4") r[i] = static_cast<Out>(read_elem<int32_t>(&a.data[4 * i]));
    else if (d == "<i8") r[i] = static_cast<Out>(read_elem<int64_t>(&a.data[8 * i]));
    else if (d == "|u1" || d == "|b1") r[i] = static_cast<Out>(a.data[i]);
    else throw std::runtime_error("npy: unsupported dtype " + d);
  }
  return r;
}
}  // namespace

std::vector<double> NpyArray::as_double() const { return convert<double>(*this); }
std::vector<float> NpyArray::as_float() const { return convert<float>(*this); }
std::vector<int32_t> NpyArray::as_int32() const { return convert<int32_t>(*this); }

NpyArray load_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  if (!f || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw std::runtime_error(path + ": not a .npy file");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    f.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    f.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  std::string header(hlen, '\0');
  f.read(&header[0], hlen);
  NpyArray a;
  a.descr = field(header, "descr");
  if (field(header, "fortran_order").find("True") != std::string::npos)
    throw std::runtime_error(path + ": Fortran order not supported");
  const std::string shape = field(header, "shape");
  size_t i = 0;
  while (i < shape.size()) {
    while (i < shape.size() && (shape[i] == ' ' || shape[i] == ',')) ++i;
    if (i >= shape.size()) break;
    size_t j = i;
    while (j < shape.size() && shape[j] != ',') ++j;
    a.shape.push_back(std::stoll(shape.substr(i, j - i)));
    i = j;
  }
  size_t es = a.descr.size() >= 3 ? static_cast<size_t>(std::stoi(a.descr.substr(2))) : 1;
  a.data.resize(static_cast<size_t>(a.size()) * es);
  f.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(a.data.size()));
  if (!f) throw std::runtime_error(path + ": truncated data");
  return a;
}

void save_npy_f32(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::string sh = "(";
  int64_t n = 1;
  for (int64_t d : shape) { sh += std::to_string(d) + ","; n *= d; }
  sh += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + sh + ", }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t hl = static_cast<uint16_t>(header.size());
  f.put(static_cast<char>(hl & 0xff));
  f.put(static_cast<char>(hl >> 8));
  f << header;
  f.write(reinterpret_cast<const char*>(data), n * 4);
}

}  // namespace mbx_test
