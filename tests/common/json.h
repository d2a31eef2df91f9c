// A small JSON reader for case.json (objects, arrays, strings, numbers,
// true/false/null, and the non-standard Infinity/NaN that Python writes).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mbx_test {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::string raw;  // the number's source text
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // in file order

  const Json* get(const std::string& key) const {
    for (const auto& kv : obj)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  // The value as option text for mbx_options_set.
  std::string option_text() const;
};

Json parse_json(const std::string& text);  // throws std::runtime_error
Json load_json(const std::string& path);

}  // namespace mbx_test
