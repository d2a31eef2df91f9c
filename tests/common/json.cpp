#include "json.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mbx_test {

namespace {
struct Parser {
  const std::string& s;
  size_t i = 0;
  void ws() { while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i; }
  [[noreturn]] void err(const std::string& m) {
    throw std::runtime_error("json: " + m + " at offset " + std::to_string(i));
  }
  bool lit(const char* l) {
    size_t n = std::char_traits<char>::length(l);
    if (s.compare(i, n, l) == 0) { i += n; return true; }
    return false;
  }
  Json value() {
    ws();
    if (i >= s.size()) err("unexpected end");
    Json j;
    char c = s[i];
    if (c == '{') {
      j.kind = Json::kObject;
      ++i; ws();
      if (s[i] == '}') { ++i; return j; }
      for (;;) {
        ws();
        if (s[i] != '"') err("expected key");
        std::string k = string();
        ws();
        if (s[i] != ':') err("expected ':'");
        ++i;
        j.obj.emplace_back(k, value());
        ws();
        if (s[i] == ',') { ++i; continue; }
        if (s[i] == '}') { ++i; return j; }
        err("expected ',' or '}'");
      }
    }
    if (c == '[') {
      j.kind = Json::kArray;
      ++i; ws();
      if (s[i] == ']') { ++i; return j; }
      for (;;) {
        j.arr.push_back(value());
        ws();
        if (s[i] == ',') { ++i; continue; }
        if (s[i] == ']') { ++i; return j; }
        err("expected ',' or ']'");
      }
    }
    if (c == '"') { j.kind = Json::kString; j.str = string(); return j; }
    if (lit("true")) { j.kind = Json::kBool; j.b = true; return j; }
    if (lit("false")) { j.kind = Json::kBool; j.b = false; return j; }
    if (lit("null")) return j;
    j.kind = Json::kNumber;
    if (lit("NaN")) { j.num = NAN; j.raw = "nan"; return j; }
    if (lit("Infinity")) { j.num = INFINITY; j.raw = "inf"; return j; }
    if (lit("-Infinity")) { j.num = -INFINITY; j.raw = "-inf"; return j; }
    size_t st = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '-' ||
                            s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
      ++i;
    if (st == i) err("unexpected character");
    j.raw = s.substr(st, i - st);
    std::istringstream is(j.raw);
    is.imbue(std::locale::classic());
    is >> j.num;
    return j;
  }
  std::string string() {
    std::string r;
    ++i;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') {
        ++i;
        char e = s[i];
        r += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        r += s[i];
      }
      ++i;
    }
    ++i;
    return r;
  }
};
}  // namespace

std::string Json::option_text() const {
  switch (kind) {
    case kBool: return b ? "true" : "false";
    case kNumber: return raw;
    case kString: return str;
    case kArray: {
      std::string r;
      for (size_t k = 0; k < arr.size(); ++k) r += (k ? "," : "") + arr[k].option_text();
      return r;
    }
    default: return "";
  }
}

Json parse_json(const std::string& text) {
  Parser p{text};
  return p.value();
}

Json load_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_json(ss.str());
}

}  // namespace mbx_test
