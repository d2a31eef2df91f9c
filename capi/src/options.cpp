// The option table (core/common/options_table.h) as C API: preset defaults,
// the text parser and formatter, introspection, and the conversion of a
// caller's mbx_options_t (of any older struct_size) into mbx::Options.
#include "options.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <locale>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "boundary.h"
#include "common/validate.h"

namespace mbx::capi {
namespace {

// The C type of a field of each kind (mbx.h).
template <OptionKind K>
struct CField {
  using type = int32_t;
};
template <>
struct CField<OptionKind::kReal> {
  using type = double;
};
template <>
struct CField<OptionKind::kReal4> {
  using type = double[4];
};

// The table and mbx.h must agree on every field's name and C type.
#define MBX_X(name, kind, core_type, def, range, choices, doc)                           \
  static_assert(std::is_same<decltype(mbx_options_t::name),                              \
                             CField<OptionKind::kind>::type>::value,                     \
                "mbx_options_t::" #name " does not have the C type of its table kind");
MBX_OPTION_TABLE(MBX_X)
#undef MBX_X

// Number of comma-separated names in an enum row's choices ("" = none).
constexpr int count_choices(const char* s) {
  if (!*s) return 0;
  int n = 1;
  for (; *s; ++s) n += *s == ',';
  return n;
}

struct Row {
  const char* name;
  OptionKind kind;
  size_t offset;  // in mbx_options_t
  const char* def;
  const char* choices;
  int num_choices;  // count_choices(choices), so calls need not split the text
  const char* doc;
};

constexpr Row kRows[] = {
#define MBX_X(name, kind, core_type, def, range, choices, doc) \
  {#name, OptionKind::kind, offsetof(mbx_options_t, name), def, choices, count_choices(choices), doc},
    MBX_OPTION_TABLE(MBX_X)
#undef MBX_X
};
constexpr int kNumRows = static_cast<int>(sizeof(kRows) / sizeof(kRows[0]));

// Rows are in field order (the struct is append-only, so is the table).
constexpr bool rows_in_field_order() {
  for (int i = 1; i < kNumRows; ++i)
    if (kRows[i].offset <= kRows[i - 1].offset) return false;
  return true;
}
static_assert(rows_in_field_order(), "MBX_OPTION_TABLE rows must follow mbx_options_t's field order");

struct PresetRow {
  const char* name;
  const char* overrides;
};
constexpr PresetRow kPresets[] = {
#define MBX_X(name, overrides, doc) {#name, overrides},
    MBX_PRESET_TABLE(MBX_X)
#undef MBX_X
};
constexpr int kNumPresets = static_cast<int>(sizeof(kPresets) / sizeof(kPresets[0]));
static_assert(kNumPresets == MBX_PRESET_SGRVINOD_SSD + 1,
              "MBX_PRESET_TABLE and mbx_preset_t must list the same presets");

// The first ABI version of mbx_options_t ended before invalid_gt; a caller's
// struct_size may be anything from there to this library's size.
constexpr size_t kOptionsMinSize = offsetof(mbx_options_t, invalid_gt);

size_t field_size(OptionKind kind) {
  switch (kind) {
    case OptionKind::kReal: return sizeof(double);
    case OptionKind::kReal4: return 4 * sizeof(double);
    default: return sizeof(int32_t);
  }
}

const char* type_name(OptionKind kind) {
  switch (kind) {
    case OptionKind::kEnum: return "enum";
    case OptionKind::kBool: return "bool";
    case OptionKind::kInt: return "int";
    case OptionKind::kReal: return "float";
    case OptionKind::kReal4: return "float[4]";
  }
  return "?";
}

bool present(const Row& r, size_t struct_size) { return r.offset + field_size(r.kind) <= struct_size; }

const Row* find_row(const std::string& name) {
  for (const Row& r : kRows)
    if (name == r.name) return &r;
  return nullptr;
}

std::string all_names() {
  std::string s;
  for (const Row& r : kRows) s += (s.empty() ? "" : ", ") + std::string(r.name);
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return parts;
}

std::string trim(std::string t) {
  t.erase(0, t.find_first_not_of(" \t"));
  t.erase(t.find_last_not_of(" \t") + 1);
  return t;
}

// A number in C locale (the decimal point never follows the process locale);
// inf / nan spelled out are accepted here and refused by the range checks.
bool parse_double(const std::string& s, double* out) {
  std::istringstream is(s);
  is.imbue(std::locale::classic());
  double v;
  is >> v;
  if (is.fail()) {
    std::string t(s);
    std::transform(t.begin(), t.end(), t.begin(), ::tolower);
    if (t == "inf" || t == "infinity" || t == "+inf") { *out = HUGE_VAL; return true; }
    if (t == "-inf" || t == "-infinity") { *out = -HUGE_VAL; return true; }
    if (t == "nan") { *out = NAN; return true; }
    return false;
  }
  is >> std::ws;
  if (!is.eof()) return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string& s, int32_t* out) {
  if (s == "true" || s == "True" || s == "TRUE" || s == "1") { *out = 1; return true; }
  if (s == "false" || s == "False" || s == "FALSE" || s == "0") { *out = 0; return true; }
  return false;
}

bool parse_int(const std::string& s, int32_t* out) {
  std::istringstream is(s);
  is.imbue(std::locale::classic());
  long long v;
  is >> v;
  if (is.fail()) return false;
  is >> std::ws;
  if (!is.eof() || v < INT32_MIN || v > INT32_MAX) return false;
  *out = static_cast<int32_t>(v);
  return true;
}

std::string choices_text(const Row& r) {
  std::string s;
  for (const std::string& c : split(r.choices, ',')) s += (s.empty() ? "" : ", ") + c;
  return s;
}

// Parses `value` for row `r` and stores it into the C struct at `base`.
void set_field(const Row& r, const std::string& value, unsigned char* base) {
  const std::string key(r.name);
  switch (r.kind) {
    case OptionKind::kEnum: {
      const std::vector<std::string> names = split(r.choices, ',');
      for (size_t i = 0; i < names.size(); ++i)
        if (value == names[i]) {
          const int32_t v = static_cast<int32_t>(i);
          std::memcpy(base + r.offset, &v, sizeof v);
          return;
        }
      fail("option " + key + ": value \"" + value + "\" is not one of " + choices_text(r));
    }
    case OptionKind::kBool: {
      int32_t v;
      if (!parse_bool(value, &v))
        fail("option " + key + ": value \"" + value + "\" is not one of true, false, 1, 0");
      std::memcpy(base + r.offset, &v, sizeof v);
      return;
    }
    case OptionKind::kInt: {
      int32_t v;
      if (!parse_int(value, &v))
        fail("option " + key + ": value \"" + value + "\" is not a 32-bit integer");
      std::memcpy(base + r.offset, &v, sizeof v);
      return;
    }
    case OptionKind::kReal: {
      double v;
      if (!parse_double(value, &v)) fail("option " + key + ": value \"" + value + "\" is not a number");
      std::memcpy(base + r.offset, &v, sizeof v);
      return;
    }
    case OptionKind::kReal4: {
      std::string s(value);
      for (char& ch : s)
        if (ch == '[' || ch == ']' || ch == '(' || ch == ')') ch = ' ';
      const std::vector<std::string> parts = split(s, ',');
      if (parts.size() != 4)
        fail("option " + key + ": value \"" + value + "\" must be four comma-separated numbers");
      double v[4];
      for (int k = 0; k < 4; ++k) {
        const std::string t = trim(parts[k]);
        if (t.empty() || !parse_double(t, &v[k]))
          fail("option " + key + ": \"" + parts[k] + "\" is not a number");
      }
      std::memcpy(base + r.offset, v, sizeof v);
      return;
    }
  }
}

// The fewest significant digits that read back to the same double.
std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string text;
  for (int digits = 1; digits <= 17; ++digits) {
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os.precision(digits);
    os << v;
    text = os.str();
    double back;
    if (parse_double(text, &back) && back == v) break;
  }
  return text;
}

// An enum field's value, checked against its row's choices.
int32_t enum_value(const Row& r, const unsigned char* base) {
  int32_t v;
  std::memcpy(&v, base + r.offset, sizeof v);
  if (v < 0 || v >= r.num_choices)
    fail(std::string("options.") + r.name + " = " + std::to_string(v) +
         ": expected an enum value in [0, " + std::to_string(r.num_choices - 1) + "]");
  return v;
}

std::string get_field(const Row& r, const unsigned char* base) {
  switch (r.kind) {
    case OptionKind::kEnum:
      return split(r.choices, ',')[static_cast<size_t>(enum_value(r, base))];
    case OptionKind::kBool: {
      int32_t v;
      std::memcpy(&v, base + r.offset, sizeof v);
      return v ? "true" : "false";
    }
    case OptionKind::kInt: {
      int32_t v;
      std::memcpy(&v, base + r.offset, sizeof v);
      return std::to_string(v);
    }
    case OptionKind::kReal: {
      double v;
      std::memcpy(&v, base + r.offset, sizeof v);
      return format_double(v);
    }
    case OptionKind::kReal4: {
      double v[4];
      std::memcpy(v, base + r.offset, sizeof v);
      std::string s;
      for (int k = 0; k < 4; ++k) s += (k ? "," : "") + format_double(v[k]);
      return s;
    }
  }
  return std::string();
}

// The table's defaults, then the preset's overrides, with struct_size set.
void build_preset(int preset, mbx_options_t* o) {
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(mbx_options_t);
  auto* base = reinterpret_cast<unsigned char*>(o);
  for (const Row& r : kRows) set_field(r, r.def, base);
  for (const std::string& item : split(kPresets[preset].overrides, ' ')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const Row* r = eq == std::string::npos ? nullptr : find_row(item.substr(0, eq));
    if (!r)
      throw Error(Status::kInternal, std::string("preset ") + kPresets[preset].name +
                                         ": bad override \"" + item + "\"");
    set_field(*r, item.substr(eq + 1), base);
  }
}

// Every preset's options, parsed from the tables once (calls convert a
// caller's options on every call and must not re-parse text each time).
const mbx_options_t& preset_defaults(int preset) {
  static const std::vector<mbx_options_t> presets = [] {
    std::vector<mbx_options_t> all(kNumPresets);
    for (int p = 0; p < kNumPresets; ++p) build_preset(p, &all[p]);
    return all;
  }();
  return presets[static_cast<size_t>(preset)];
}

void check_struct_size(const mbx_options_t* opts) {
  if (opts->struct_size < kOptionsMinSize || opts->struct_size > sizeof(mbx_options_t))
    fail("opts->struct_size = " + std::to_string(opts->struct_size) +
         ": not an initialised mbx_options_t (call mbx_options_init first)");
}

// The row of option `name` in a caller's initialised struct (set and get):
// NULLs, an unknown name and a field beyond the caller's struct_size fail.
const Row& named_row(const mbx_options_t* opts, const char* name) {
  if (!opts) fail("opts: NULL");
  if (!name) fail("name: NULL");
  check_struct_size(opts);
  const Row* r = find_row(name);
  if (!r) fail(std::string("option \"") + name + "\" is unknown; expected one of " + all_names());
  if (!present(*r, opts->struct_size))
    fail(std::string("opts: ") + name + " is not part of this caller's (older) mbx_options_t");
  return *r;
}

// One C field into its core field (enum values range-checked here; the
// numeric ranges by validate_options).
template <typename E>
void convert_field(const Row& r, const unsigned char* base, E* out) {
  *out = static_cast<E>(enum_value(r, base));
}
void convert_field(const Row& r, const unsigned char* base, bool* out) {
  int32_t v;
  std::memcpy(&v, base + r.offset, sizeof v);
  *out = v != 0;
}
[[maybe_unused]] void convert_field(const Row& r, const unsigned char* base, int32_t* out) {
  std::memcpy(out, base + r.offset, sizeof *out);
}
void convert_field(const Row& r, const unsigned char* base, double* out) {
  std::memcpy(out, base + r.offset, sizeof *out);
}
void convert_field(const Row& r, const unsigned char* base, double (*out)[4]) {
  std::memcpy(*out, base + r.offset, sizeof *out);
}

}  // namespace

Options convert_options(const mbx_options_t* user) {
  if (!user) fail("opts: NULL; initialise an mbx_options_t with mbx_options_init()");
  if (user->struct_size < kOptionsMinSize)
    fail("opts->struct_size = " + std::to_string(user->struct_size) +
         ": too small for an mbx_options_t (did you call mbx_options_init?)");
  if (user->struct_size > sizeof(mbx_options_t))
    throw Error(Status::kUnsupported,
                "opts->struct_size = " + std::to_string(user->struct_size) +
                    " is larger than this library's mbx_options_t (" +
                    std::to_string(sizeof(mbx_options_t)) +
                    " bytes): the caller was built against a newer mbx");
  mbx_options_t c = preset_defaults(MBX_PRESET_SSD_PYTORCH);  // defaults for fields the caller lacks
  std::memcpy(&c, user, user->struct_size);
  const auto* base = reinterpret_cast<const unsigned char*>(&c);
  Options o;
  int row = 0;
#define MBX_X(name, kind, core_type, def, range, choices, doc) convert_field(kRows[row++], base, &o.name);
  MBX_OPTION_TABLE(MBX_X)
#undef MBX_X
  if (c.reserved0 != 0) fail("options.reserved0 must be 0");
  validate_options(o);
  return o;
}

}  // namespace mbx::capi

using mbx::fail;
using mbx::capi::kNumPresets;
using mbx::capi::kNumRows;
using mbx::capi::kPresets;
using mbx::capi::kRows;

extern "C" {

MBX_API mbx_status_t mbx_options_init(mbx_options_t* opts, mbx_preset_t preset) {
  MBX_TRY
  if (!opts) fail("opts: NULL");
  if (static_cast<int>(preset) < 0 || static_cast<int>(preset) >= kNumPresets)
    fail("preset = " + std::to_string(static_cast<int>(preset)) + ": expected an mbx_preset_t (0.." +
         std::to_string(kNumPresets - 1) + ")");
  *opts = mbx::capi::preset_defaults(static_cast<int>(preset));
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_preset_from_name(const char* name, mbx_preset_t* preset) {
  MBX_TRY
  if (!name) fail("name: NULL");
  if (!preset) fail("preset: NULL");
  std::string names;
  for (int i = 0; i < kNumPresets; ++i) {
    if (std::strcmp(name, kPresets[i].name) == 0) {
      *preset = static_cast<mbx_preset_t>(i);
      return MBX_STATUS_OK;
    }
    names += (i ? ", " : "") + std::string(kPresets[i].name);
  }
  fail(std::string("preset \"") + name + "\" is unknown; expected one of " + names);
  MBX_CATCH
}

MBX_API int mbx_preset_count(void) { return kNumPresets; }

MBX_API const char* mbx_preset_name(mbx_preset_t preset) {
  const int i = static_cast<int>(preset);
  return i >= 0 && i < kNumPresets ? kPresets[i].name : nullptr;
}

MBX_API mbx_status_t mbx_options_set(mbx_options_t* opts, const char* name, const char* value) {
  MBX_TRY
  if (!value) fail("value: NULL");
  const mbx::capi::Row& r = mbx::capi::named_row(opts, name);
  // Parse into a copy: on error the caller's options stay unchanged.
  mbx_options_t copy;
  std::memcpy(&copy, opts, opts->struct_size);
  mbx::capi::set_field(r, value, reinterpret_cast<unsigned char*>(&copy));
  std::memcpy(opts, &copy, opts->struct_size);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_options_get(const mbx_options_t* opts, const char* name, char* buf,
                                     size_t size) {
  MBX_TRY
  if (!buf) fail("buf: NULL");
  const mbx::capi::Row& r = mbx::capi::named_row(opts, name);
  const std::string text = mbx::capi::get_field(r, reinterpret_cast<const unsigned char*>(opts));
  if (text.size() + 1 > size)
    fail("size = " + std::to_string(size) + ": the value of " + name + " needs " +
         std::to_string(text.size() + 1) + " bytes");
  std::memcpy(buf, text.c_str(), text.size() + 1);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_options_validate(const mbx_options_t* opts) {
  MBX_TRY
  mbx::capi::convert_options(opts);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API int mbx_option_count(void) { return kNumRows; }

MBX_API const char* mbx_option_name(int index) {
  return index >= 0 && index < kNumRows ? kRows[index].name : nullptr;
}

MBX_API const char* mbx_option_type(int index) {
  return index >= 0 && index < kNumRows ? mbx::capi::type_name(kRows[index].kind) : nullptr;
}

MBX_API const char* mbx_option_choices(int index) {
  return index >= 0 && index < kNumRows ? kRows[index].choices : nullptr;
}

MBX_API const char* mbx_option_doc(int index) {
  return index >= 0 && index < kNumRows ? kRows[index].doc : nullptr;
}

}  // extern "C"
