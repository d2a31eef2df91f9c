// Shared input decoder of the libFuzzer targets on the C API.
//
// The fuzzer's bytes are read as a small program: shapes (B <= 4, P <= 64,
// C <= 8, G <= 6), a preset plus raw option-field mutations and
// mbx_options_set() calls with fuzzed strings, a geometry mode (tame grids at
// 1e-6..1e6 scales, or wild IEEE values: NaN, inf, 1e-30, 1e30, denormals,
// negative sizes, duplicates), labels, counts, logits, and up to three
// DLTensor perturbations (dtype, lanes, ndim, shape, strides, byte_offset,
// NULL tensor / data, device, output aliasing an input). Then, read last so
// that older corpus files decode as before up to there, the inputs and
// options of 0.3: gt_flags (ignore regions, reserved bits), prior_levels
// (valid, negative, wrong sum), ignore_iof_threshold, assigner, atss_topk,
// loc_loss GIOU / DIOU / CIOU, and perturbations of the two new tensors.
//
// Each tensor lives in an over-allocated, sentinel-filled buffer (8 bytes per
// element plus 64-byte guards on both sides), so any perturbation the decoder
// makes stays inside memory we own, and a write outside the logical output
// region is detected even where AddressSanitizer cannot see it.
//
// `Expect` predicts, from the header's and docs/SPEC.md §7's rules only (not from the
// library's code), whether each call must succeed. The targets then assert
// that prediction, the "nothing written on error" contract, and the output
// invariants.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mbx/mbx.h"

namespace mbx_fuzz {

[[noreturn]] inline void die(const char* what, const std::string& detail = std::string()) {
  std::fprintf(stderr, "mbx fuzz check failed: %s %s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}
#define MBX_FUZZ_CHECK(cond, detail) \
  do { if (!(cond)) ::mbx_fuzz::die(#cond, (detail)); } while (0)

// ---------------------------------------------------------------------------
// Byte reader (reads zeros once the input is exhausted).
// ---------------------------------------------------------------------------
struct Reader {
  const uint8_t* p;
  size_t n, i = 0;
  Reader(const uint8_t* d, size_t s) : p(d), n(s) {}
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return static_cast<uint32_t>(u16()) | (static_cast<uint32_t>(u16()) << 16); }
  float f32raw() { uint32_t b = u32(); float f; std::memcpy(&f, &b, 4); return f; }
  std::string str(size_t maxlen) {
    size_t len = u8() % (maxlen + 1);
    std::string s;
    for (size_t k = 0; k < len; ++k) {
      char c = static_cast<char>(u8());
      if (c == 0) c = ' ';
      s.push_back(c);
    }
    return s;
  }
};

// IEEE values that break naive code.
inline float special_float(uint8_t k, float prev) {
  static const float kTable[] = {0.f, -0.f, 1.f, -1.f, 0.5f, NAN, INFINITY, -INFINITY,
                                 1e-30f, -1e-30f, 1e30f, -1e30f, 1.17549435e-38f /*FLT_MIN*/,
                                 1e-45f /*denormal*/, 3.40282347e38f /*FLT_MAX*/, 1e-6f, 1e6f,
                                 1e4f, -1e4f, 100.f, -100.f, 88.8f, -88.8f, 600.f};
  const size_t n = sizeof(kTable) / sizeof(kTable[0]);
  if (k % (n + 1) == n) return prev;  // duplicate the previous value
  return kTable[k % (n + 1)];
}

// f32 -> f16 (round to nearest even is not needed: truncation keeps finite
// values of magnitude < 65504 finite, which is all the tame mode makes).
inline uint16_t to_f16(float f) {
  uint32_t x; std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t e = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  const uint32_t m = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (m ? 0x200u : 0u));
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    const uint32_t mm = (m | 0x800000u) >> (1 - e);
    return static_cast<uint16_t>(sign | (mm >> 13));
  }
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(e) << 10) | (m >> 13));
}
inline uint16_t to_bf16(float f) { uint32_t x; std::memcpy(&x, &f, 4); return static_cast<uint16_t>(x >> 16); }

// ---------------------------------------------------------------------------
// Tensors in guarded buffers.
// ---------------------------------------------------------------------------
constexpr size_t kGuard = 64;
constexpr uint8_t kSentinel = 0xA5;

enum Role {
  R_PRIORS, R_GT_BOXES, R_GT_LABELS, R_GT_COUNTS, R_LOC, R_CONF, R_GRAD_LOSS,  // inputs
  R_CONF_TARGET, R_MATCHED_GT, R_LOC_TARGET, R_NUM_POS, R_LOSS, R_GRAD_LOC, R_GRAD_CONF,
  R_BOXES,
  R_GT_FLAGS, R_PRIOR_LEVELS,  // optional inputs of 0.3 (null_tensor when not given)
  kNumRoles
};
// The roles the generic perturbations pick from (those before 0.3, so the
// committed corpus keeps its meaning); the new inputs have their own.
constexpr int kNumPerturbRoles = R_BOXES + 1;
inline bool is_input(int r) { return r <= R_GRAD_LOSS || r == R_GT_FLAGS || r == R_PRIOR_LEVELS; }
inline const char* role_name(int r) {
  static const char* k[] = {"priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf",
                            "grad_loss", "conf_target", "matched_gt", "loc_target", "num_pos",
                            "loss", "grad_loc", "grad_conf", "boxes", "gt_flags", "prior_levels"};
  return k[r];
}

inline size_t dtype_bytes(DLDataType d) { return static_cast<size_t>(d.bits) / 8 * (d.lanes ? d.lanes : 1); }

struct Slot {
  std::vector<uint64_t> store;
  int64_t shape[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  int64_t strides[8] = {0};
  DLTensor t{};
  bool null_tensor = false;
  size_t cap = 0;  // bytes of the store

  void init(std::vector<int64_t> dims, DLDataType dt) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    cap = kGuard * 2 + static_cast<size_t>(n) * 8 + 8;
    store.assign(cap / 8 + 1, 0);
    cap = store.size() * 8;
    std::memset(bytes(), kSentinel, cap);
    for (int i = 0; i < 8; ++i) shape[i] = 1;
    for (size_t i = 0; i < dims.size(); ++i) shape[i] = dims[i];
    t.data = bytes() + kGuard;
    t.device = {kDLCPU, 0};
    t.ndim = static_cast<int>(dims.size());
    t.dtype = dt;
    t.shape = shape;
    t.strides = nullptr;
    t.byte_offset = 0;
    null_tensor = false;
  }
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(store.data()); }
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(store.data()); }
  template <typename T> T* at() { return reinterpret_cast<T*>(bytes() + kGuard); }
  const DLTensor* in() const { return null_tensor ? nullptr : &t; }
  DLTensor* out() { return null_tensor ? nullptr : &t; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < t.ndim && i < 8; ++i) n *= t.shape[i];
    return n;
  }
  // The bytes the library may address: [data + byte_offset, + numel * elem).
  const uint8_t* first() const {
    return t.data ? static_cast<const uint8_t*>(t.data) + t.byte_offset : nullptr;
  }
  size_t logical_bytes() const {
    const int64_t n = numel();
    return n > 0 ? static_cast<size_t>(n) * dtype_bytes(t.dtype) : 0;
  }
};

// ---------------------------------------------------------------------------
// The decoded problem.
// ---------------------------------------------------------------------------
struct Problem {
  int64_t B = 1, P = 1, C = 2, G = 0;
  mbx_options_t o{};
  int64_t match_num_classes = 0;
  mbx_path_t path = MBX_PATH_CPU;
  bool use_ctx = true;
  int threads_a = 1, threads_b = 1;
  bool tame = true;          // finite outputs are required when the call succeeds
  bool data_finite = true;   // loc/conf finite
  bool perturbed = false;
  std::string log;  // perturbations applied (for dump)
  Slot s[kNumRoles];
  double grad_loss_vals[2] = {1, 1};
};

inline bool enum_ok(int32_t v, int32_t max) { return v >= 0 && v <= max; }

// Option ranges of docs/SPEC.md §7 and the header, for a struct of the given size.
inline bool options_valid(const mbx_options_t& u) {
  const size_t min_size = offsetof(mbx_options_t, invalid_gt);
  if (u.struct_size < min_size || u.struct_size > sizeof(mbx_options_t)) return false;
  const bool has_invalid_gt = u.struct_size >= offsetof(mbx_options_t, invalid_gt) + sizeof(int32_t);
  const bool has_reserved = u.struct_size >= offsetof(mbx_options_t, reserved0) + sizeof(int32_t);
  auto in01 = [](double v) { return v >= 0.0 && v <= 1.0; };
  if (!enum_ok(u.prior_format, 1) || !enum_ok(u.force_match, 3) || !enum_ok(u.loc_loss, 5) ||
      !enum_ok(u.conf_loss, 2) || !enum_ok(u.neg_overflow, 1) || !enum_ok(u.normalization, 5))
    return false;
  // The options of 0.2's Caffe systems, where the caller's struct has them
  // (else their defaults, which are valid).
  auto has = [&](size_t off, size_t n) { return u.struct_size >= off + n; };
  if (has(offsetof(mbx_options_t, mining), 4) && !enum_ok(u.mining, 1)) return false;
  if (has(offsetof(mbx_options_t, mining_sample_size), 4) && u.mining_sample_size < 1) return false;
  if (has(offsetof(mbx_options_t, mining_nms_threshold), 8) &&
      (!std::isfinite(u.mining_nms_threshold) || u.mining_nms_threshold > 1.0))
    return false;
  if (has(offsetof(mbx_options_t, box_coding), 4) && !enum_ok(u.box_coding, 2)) return false;
  // 0.3: ATSS and ignore regions.
  if (has(offsetof(mbx_options_t, assigner), 4) && !enum_ok(u.assigner, 1)) return false;
  if (has(offsetof(mbx_options_t, atss_topk), 4) && u.atss_topk < 1) return false;
  if (has(offsetof(mbx_options_t, ignore_iof_threshold), 8) && !std::isfinite(u.ignore_iof_threshold))
    return false;
  const bool hard = has(offsetof(mbx_options_t, mining), 4) && u.mining == MBX_MINING_HARD_EXAMPLE;
  if (hard && u.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL) return false;
  if (has_invalid_gt && !enum_ok(u.invalid_gt, 1)) return false;
  if (has_reserved && u.reserved0 != 0) return false;
  if (!in01(u.pos_threshold) || !in01(u.neg_threshold) || u.neg_threshold > u.pos_threshold) return false;
  for (double v : u.variances) if (!(v > 0.0) || !std::isfinite(v)) return false;
  if (!(u.encode_min_gt_wh >= 0.0) || !std::isfinite(u.encode_min_gt_wh)) return false;
  if (!(u.smooth_l1_beta >= 0.0) || !std::isfinite(u.smooth_l1_beta)) return false;
  if (!std::isfinite(u.neg_pos_ratio)) return false;
  if (!in01(u.focal_alpha)) return false;
  if (!(u.focal_gamma >= 0.0) || !std::isfinite(u.focal_gamma)) return false;
  if (u.normalization == MBX_NORM_EXTERNAL && (!(u.external_norm > 0.0) || !std::isfinite(u.external_norm)))
    return false;
  return true;
}

// Option values for which finite inputs must give finite outputs.
inline bool options_tame(const mbx_options_t& u) {
  for (double v : u.variances) if (!(v >= 1e-3 && v <= 1e3)) return false;
  if (!(u.encode_min_gt_wh <= 1e6)) return false;
  if (!(u.focal_gamma <= 16.0)) return false;
  if (u.normalization == MBX_NORM_EXTERNAL && !(u.external_norm >= 1e-6 && u.external_norm <= 1e12)) return false;
  if (!(u.smooth_l1_beta <= 1e12)) return false;
  return true;
}

// The 0.3 options as the library sees them: the caller's value where its
// struct has the field, else the default.
inline int32_t effective_assigner(const mbx_options_t& u) {
  return u.struct_size >= offsetof(mbx_options_t, assigner) + sizeof(int32_t) ? u.assigner
                                                                              : MBX_ASSIGNER_MAX_IOU;
}
inline double effective_ignore_iof(const mbx_options_t& u) {
  return u.struct_size >= offsetof(mbx_options_t, ignore_iof_threshold) + sizeof(double)
             ? u.ignore_iof_threshold : 0.5;
}

inline int32_t effective_invalid_gt(const mbx_options_t& u) {
  return u.struct_size >= offsetof(mbx_options_t, invalid_gt) + sizeof(int32_t) ? u.invalid_gt
                                                                                : MBX_INVALID_GT_ERROR;
}

static const char* const kOptionNames[] = {
    "prior_format", "pos_threshold", "neg_threshold", "force_match", "variances",
    "encode_min_gt_wh", "loc_loss", "smooth_l1_beta", "conf_loss", "neg_pos_ratio",
    "clamp_num_neg", "neg_overflow", "focal_alpha", "focal_gamma", "normalization",
    "external_norm", "loc_average_coords", "invalid_gt", "mining", "mining_sample_size",
    "mining_nms_threshold", "box_coding", "encode_variance_in_target", "ignore_iof_threshold",
    "assigner", "atss_topk"};
constexpr int kNumOptionNames = static_cast<int>(sizeof(kOptionNames) / sizeof(kOptionNames[0]));
static const char* const kOptionValues[] = {
    "CENTER_SIZE", "CORNERS", "NONE", "BEST_PRIOR_PER_GT", "LOW_QUALITY", "SMOOTH_L1", "L1",
    "SOFTMAX_CE", "SIGMOID_FOCAL", "TOTAL_POSITIVES", "PER_IMAGE", "EXTERNAL", "EXCLUDE",
    "DOUBLE_COUNT_POSITIVES", "ERROR", "SKIP", "true", "false", "0", "1", "0.5", "0.4", "-1",
    "nan", "inf", "-inf", "1e-300", "1e300", "0.1,0.1,0.2,0.2", "1, 1, 1, 1", "[0.1,0.1,0.2,0.2]",
    "0,1,1,1", "1,2,3", "1,,2,3", "2.5", "1e9", " 0.25 ", "0x10", "1e", "",
    "BIPARTITE", "L2", "LOGISTIC", "BATCH_SIZE", "FULL", "MAX_NEGATIVE", "HARD_EXAMPLE", "HARD",
    "CORNER", "CORNER_SIZE", "64", "0.45", "3", "MAX_IOU", "ATSS", "GIOU", "DIOU", "CIOU", "9",
    "0.25"};
constexpr int kNumOptionValues = static_cast<int>(sizeof(kOptionValues) / sizeof(kOptionValues[0]));

// Raw field mutation: field index and a value byte.
inline void mutate_option(mbx_options_t* o, uint8_t field, uint8_t v, bool* tame) {
  static const double kUnit[] = {0, 0.3, 0.4, 0.5, 0.7, 1, 1.0 / 3.0, -0.1, 1.5, NAN, 0.25, 0.9};
  static const double kPos[] = {0.1, 0.2, 1, 0.5, 2, 0, -1, NAN, INFINITY, 1e-300, 1e300, 1.0 / 9.0};
  static const int32_t kEnum[] = {0, 1, 2, 3, -1, 4, 7, 1000, INT32_MIN, INT32_MAX};
  const double u = kUnit[v % 12], p = kPos[v % 12];
  const int32_t e = kEnum[v % 10];
  // Bytes below 242 keep the mapping of the first 22 fields (the committed
  // corpus decodes as before); 242..255 reach the 0.2 Caffe options.
  const int f = field < 242 ? field % 22 : 22 + (field - 242) % 5;
  switch (f) {
    case 0: o->prior_format = e; break;
    case 1: o->force_match = e; break;
    case 2: o->pos_threshold = u; break;
    case 3: o->neg_threshold = u; break;
    case 4: case 5: case 6: case 7: o->variances[f - 4] = p; break;
    case 8: o->encode_min_gt_wh = p; break;
    case 9: o->loc_loss = e; break;
    case 10: o->conf_loss = e; break;
    case 11: o->smooth_l1_beta = p; break;
    case 12: { static const double r[] = {3, 0, -1, 0.5, 1e9, 1e300, NAN, INFINITY, 1, 7};
               o->neg_pos_ratio = r[v % 10]; break; }
    case 13: o->clamp_num_neg = e; break;
    case 14: o->neg_overflow = e; break;
    case 15: o->focal_alpha = u; break;
    case 16: { static const double g[] = {2, 0, 0.5, 1, 2.5, 5, -1, NAN, INFINITY, 1e300};
               o->focal_gamma = g[v % 10]; break; }
    case 17: o->normalization = e; break;
    case 18: o->loc_average_coords = e; break;
    case 19: o->external_norm = p; break;
    case 20: o->invalid_gt = e; break;
    case 21: {
      static const size_t k[] = {sizeof(mbx_options_t), offsetof(mbx_options_t, invalid_gt),
                                 offsetof(mbx_options_t, reserved0), 8, 0, sizeof(mbx_options_t) + 8,
                                 offsetof(mbx_options_t, invalid_gt) - 8};
      if (v & 0x80) o->reserved0 = static_cast<int32_t>(v & 3);
      else o->struct_size = k[v % 7];
      break;
    }
    case 22: o->mining = e; break;
    case 23: { static const int32_t n[] = {64, 1, 0, -1, 3, 1000, INT32_MAX, INT32_MIN};
               o->mining_sample_size = n[v % 8]; break; }
    case 24: { static const double t[] = {0, 0.45, 0.5, 1, 1.5, -1, NAN, INFINITY, 0.3, 1e-9};
               o->mining_nms_threshold = t[v % 10]; break; }
    case 25: o->box_coding = e; break;
    case 26: o->encode_variance_in_target = e; break;
  }
  (void)tame;
}

// mbx_options_set with a fuzzed name/value: on error nothing may change.
inline void fuzz_options_set(mbx_options_t* o, Reader& r) {
  const uint8_t sel = r.u8();
  std::string name = (sel & 0x80) ? r.str(24) : std::string(kOptionNames[sel % kNumOptionNames]);
  const uint8_t vs = r.u8();
  std::string value = (vs & 0x80) ? r.str(24) : std::string(kOptionValues[vs % kNumOptionValues]);
  const mbx_options_t before = *o;
  const mbx_status_t st = mbx_options_set(o, name.c_str(), value.c_str());
  if (st != MBX_STATUS_OK) {
    MBX_FUZZ_CHECK(std::memcmp(&before, o, sizeof(before)) == 0, "options_set changed opts on error");
    MBX_FUZZ_CHECK(mbx_last_error()[0] != 0, "options_set error without a message");
    MBX_FUZZ_CHECK(st == MBX_STATUS_INVALID_ARGUMENT, mbx_status_string(st));
  } else {
    MBX_FUZZ_CHECK(mbx_last_error()[0] == 0, "options_set OK but a stale message");
  }
}

// Geometry scale of the tame mode (docs/SPEC.md: coordinates normalised or pixels).
inline float tame_scale(uint8_t k) {
  static const float s[] = {1.f, 1.f, 1.f, 600.f, 1e-6f, 1e-3f, 1e6f, 32.f};
  return s[k % 8];
}

// Box from bytes. Tame: a dyadic grid (exact IoU ties happen) times the scale;
// x1 < x2, y1 < y2 always. Wild: IEEE specials and raw bits.
inline void make_box(Reader& r, bool tame, float scale, float* out, bool corners_out, float prev) {
  if (tame) {
    const float x1 = static_cast<float>(r.u8() % 64) / 8.f, y1 = static_cast<float>(r.u8() % 64) / 8.f;
    const float w = static_cast<float>(1 + r.u8() % 32) / 8.f, h = static_cast<float>(1 + r.u8() % 32) / 8.f;
    if (corners_out) {
      out[0] = x1 * scale; out[1] = y1 * scale; out[2] = (x1 + w) * scale; out[3] = (y1 + h) * scale;
    } else {
      out[0] = (x1 + w / 2) * scale; out[1] = (y1 + h / 2) * scale; out[2] = w * scale; out[3] = h * scale;
    }
    return;
  }
  for (int k = 0; k < 4; ++k) {
    const uint8_t m = r.u8();
    if (m < 96) out[k] = static_cast<float>(static_cast<int8_t>(r.u8())) / 8.f;
    else if (m < 200) out[k] = special_float(r.u8(), k ? out[k - 1] : prev);
    else out[k] = r.f32raw();
  }
}

inline float make_logit(Reader& r, int mode) {
  switch (mode) {
    case 0: return static_cast<float>(static_cast<int8_t>(r.u8())) / 8.f;            // [-16, 16]
    case 1: return static_cast<float>(static_cast<int8_t>(r.u8())) * 78.125f;        // |x| <= 1e4
    default: {
      const uint8_t m = r.u8();
      if (m < 128) return static_cast<float>(static_cast<int8_t>(r.u8())) / 8.f;
      if (m < 220) return special_float(r.u8(), 0.f);
      return r.f32raw();
    }
  }
}

inline DLDataType dt(uint8_t code, uint8_t bits) { return DLDataType{code, bits, 1}; }
inline bool same_dt(DLDataType a, DLDataType b) { return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes; }

// The inputs and options of 0.3, read after everything else. gt_flags:
// about one valid row in three an ignore region (docs/SPEC.md §2.7), padding
// rows anything; prior_levels: a split of P into 1..4 levels. Unless
// valid_only: reserved flag bits, a negative level or a wrong sum, NaN / inf
// thresholds, out-of-range enums and topk, and perturbations of the two
// tensors (dtype, ndim, shape, NULL data, device).
inline void decode_v03(Reader& r, Problem* pb, bool valid_only) {
  Problem& q = *pb;
  const uint8_t ext = r.u8();
  const int64_t B = q.B, G = q.G, P = q.P;
  if (ext & 1) {
    Slot& f = q.s[R_GT_FLAGS];
    f.null_tensor = false;
    int32_t* fl = f.at<int32_t>();
    for (int64_t i = 0; i < B * G; ++i) {
      const uint8_t v = r.u8();
      fl[i] = v < 170 ? 0 : 1;
      if (!valid_only && v >= 250) fl[i] = (v & 1) ? 4 : static_cast<int32_t>(0x80000001u);
    }
  }
  if (ext & 2) {
    Slot& l = q.s[R_PRIOR_LEVELS];
    const int64_t L = 1 + r.u8() % 4;
    l.init({L}, dt(kDLInt, 32));
    std::vector<int64_t> cut = {0, P};
    for (int64_t k = 0; k + 1 < L; ++k) cut.push_back(r.u8() % (P + 1));
    std::sort(cut.begin(), cut.end());
    for (int64_t k = 0; k < L; ++k) l.at<int32_t>()[k] = static_cast<int32_t>(cut[k + 1] - cut[k]);
    const uint8_t bad = r.u8();
    if (!valid_only && bad >= 200) {
      if (bad & 1) l.at<int32_t>()[0] -= 1;            // sum P - 1
      else l.at<int32_t>()[0] = -1 - (bad & 6);       // a negative level
    }
  }
  if (ext & 4) {
    static const double t[] = {0.5, 0.0, -1.0, 0.25, 1.0, 0.75, 1e-9, 2.0, NAN, INFINITY, -INFINITY};
    const uint8_t v = r.u8();
    const double thr = t[v % (valid_only ? 8 : 11)];
    q.o.ignore_iof_threshold = thr;
  }
  if (ext & 8) {
    static const int32_t a[] = {MBX_ASSIGNER_MAX_IOU, MBX_ASSIGNER_ATSS, -1, 2};
    static const int32_t k[] = {9, 1, 3, 100, 0, -3, INT32_MAX, INT32_MIN};
    const uint8_t v = r.u8();
    q.o.assigner = a[v % (valid_only ? 2 : 4)];
    q.o.atss_topk = k[(v >> 2) % (valid_only ? 4 : 8)];
  }
  if (ext & 16) q.o.loc_loss = MBX_LOC_LOSS_GIOU + r.u8() % 3;
  if (valid_only || !(ext & 32)) return;
  // A perturbation of one of the new tensors.
  const uint8_t a = r.u8(), b2 = r.u8();
  const int role = (a & 1) ? R_PRIOR_LEVELS : R_GT_FLAGS;
  Slot& sl = q.s[role];
  DLTensor& t = sl.t;
  q.perturbed = true;
  q.log += std::string(" ") + role_name(role) + ":v03/" + std::to_string(b2 % 6);
  switch (b2 % 6) {
    case 0: {
      static const DLDataType k[] = {dt(kDLFloat, 32), dt(kDLInt, 64), dt(kDLUInt, 32), dt(kDLInt, 16)};
      t.dtype = k[(b2 >> 3) % 4];
      break;
    }
    case 1: t.ndim = (b2 & 0x80) ? t.ndim + 1 : t.ndim - 1; break;
    case 2:
      if (t.ndim > 0 && sl.shape[t.ndim - 1] > 0) sl.shape[t.ndim - 1] -= 1;  // shrink: reads stay inside
      break;
    case 3: if (sl.numel() > 0) t.data = nullptr; break;
    case 4:
      if (!mbx_cuda_available()) t.device = (b2 & 0x80) ? DLDevice{kDLCUDA, 0} : DLDevice{kDLOpenCL, 0};
      break;
    case 5: sl.shape[0] = 0; break;  // G or L = 0
  }
}

// Decodes the whole problem. `valid_only`: no perturbation, valid options,
// counts and labels in range, tame geometry (the differential target).
inline void decode(Reader& r, Problem* pb, bool valid_only) {
  Problem& q = *pb;
  q.B = 1 + r.u8() % 4;
  q.P = 1 + r.u8() % 64;
  q.C = 1 + r.u8() % 8;
  q.G = r.u8() % 7;
  const uint8_t preset = r.u8();
  // Presets 0..3 only, so the committed corpus decodes as before; caffe_ssd
  // and sgrvinod_ssd are reached through the field mutations below.
  mbx_options_init(&q.o, static_cast<mbx_preset_t>(preset % 4));
  const uint8_t ctl = r.u8();
  q.path = (ctl & 1) ? MBX_PATH_CPU_SCALAR : ((ctl & 2) ? MBX_PATH_AUTO : MBX_PATH_CPU);
  q.use_ctx = (ctl & 4) == 0;
  q.threads_a = 1;
  q.threads_b = (ctl & 0x38) == 0x38 ? 2 : 1;  // rarely: another thread count, bitwise equal
  const bool geo_tame = valid_only || (ctl & 0xC0) != 0xC0;
  const int logit_mode = valid_only ? ((ctl >> 6) == 3 ? 1 : 0) : ((ctl >> 6) % 3);
  // Option mutations.
  const int nmut = r.u8() % 4;
  for (int k = 0; k < nmut; ++k) {
    const uint8_t f = r.u8(), v = r.u8();
    if (valid_only) {
      // Only mutations that keep the options valid and tame.
      mbx_options_t t = q.o;
      mutate_option(&t, f, v, nullptr);
      if (options_valid(t) && options_tame(t) && t.struct_size == sizeof(mbx_options_t)) q.o = t;
    } else {
      mutate_option(&q.o, f, v, nullptr);
    }
  }
  const int nset = valid_only ? 0 : r.u8() % 3;
  for (int k = 0; k < nset; ++k) fuzz_options_set(&q.o, r);
  if (valid_only && q.o.conf_loss != MBX_CONF_LOSS_SIGMOID_FOCAL && q.C < 2) q.C = 2;

  const float scale = tame_scale(r.u8());
  const bool corners = q.o.prior_format == MBX_PRIOR_CORNERS;
  const int64_t B = q.B, P = q.P, C = q.C, G = q.G;
  const DLDataType f32 = dt(kDLFloat, 32), i32 = dt(kDLInt, 32), f64 = dt(kDLFloat, 64);
  q.s[R_PRIORS].init({P, 4}, f32);
  q.s[R_GT_BOXES].init({B, G, 4}, f32);
  q.s[R_GT_LABELS].init({B, G}, i32);
  q.s[R_GT_COUNTS].init({B}, i32);
  q.s[R_LOC].init({B, P, 4}, f32);
  q.s[R_CONF].init({B, P, C}, f32);
  q.s[R_GRAD_LOSS].init({2}, (ctl & 8) ? f32 : f64);
  q.s[R_CONF_TARGET].init({B, P}, i32);
  q.s[R_MATCHED_GT].init({B, P}, i32);
  q.s[R_LOC_TARGET].init({B, P, 4}, f32);
  q.s[R_NUM_POS].init({B}, i32);
  q.s[R_LOSS].init({2}, (ctl & 16) ? f32 : f64);
  q.s[R_GRAD_LOC].init({B, P, 4}, f32);
  q.s[R_GRAD_CONF].init({B, P, C}, f32);
  q.s[R_BOXES].init({B, P, 4}, f32);
  q.s[R_GT_FLAGS].init({B, G}, i32);
  q.s[R_GT_FLAGS].null_tensor = true;  // given only by the 0.3 section below
  q.s[R_PRIOR_LEVELS].init({4}, i32);
  q.s[R_PRIOR_LEVELS].null_tensor = true;

  // Priors: a duplicate of an earlier prior now and then.
  float* pr = q.s[R_PRIORS].at<float>();
  for (int64_t p = 0; p < P; ++p) {
    const uint8_t d = r.u8();
    if (p > 0 && d < 24) { std::memcpy(pr + 4 * p, pr + 4 * (d % p), 16); continue; }
    make_box(r, geo_tame, scale, pr + 4 * p, corners, p ? pr[4 * p - 1] : 0.f);
  }
  float* gb = q.s[R_GT_BOXES].at<float>();
  int32_t* gl = q.s[R_GT_LABELS].at<int32_t>();
  int32_t* gc = q.s[R_GT_COUNTS].at<int32_t>();
  const int64_t K = q.o.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL ? C : C - 1;
  for (int64_t b = 0; b < B; ++b) {
    const uint8_t c = r.u8();
    gc[b] = static_cast<int32_t>(c % (G + 1));
    if (!valid_only && c >= 240) gc[b] = (c & 1) ? -1 - (c & 7) : static_cast<int32_t>(G + 1 + (c & 3));
    for (int64_t g = 0; g < G; ++g) {
      float* box = gb + 4 * (b * G + g);
      const uint8_t d = r.u8();
      if (d < 20 && P > 0) {  // a GT equal to a prior (IoU exactly 1)
        const float* pp = pr + 4 * (d % P);
        if (corners) std::memcpy(box, pp, 16);
        else { box[0] = pp[0] - pp[2] / 2; box[1] = pp[1] - pp[3] / 2; box[2] = pp[0] + pp[2] / 2; box[3] = pp[1] + pp[3] / 2; }
      } else if (d < 40 && g > 0) {  // duplicate GT
        std::memcpy(box, box - 4, 16);
      } else {
        make_box(r, geo_tame, scale, box, true, g ? box[-1] : 0.f);
      }
      const uint8_t l = r.u8();
      int32_t lab = K > 0 ? static_cast<int32_t>(l % K) : 0;
      if (!valid_only && l >= 248) lab = (l & 1) ? -1 : static_cast<int32_t>(K + (l & 3));
      gl[b * G + g] = lab;
    }
  }
  if (valid_only) {
    // Tame boxes from the grid always have positive size; keep it that way
    // for the prior-copies too (CENTER_SIZE -> corners is exact here).
  }
  const uint8_t nk = r.u8();
  q.match_num_classes = valid_only ? K : (nk < 200 ? K : (nk < 230 ? 0 : static_cast<int64_t>(nk) - 235));

  float* loc = q.s[R_LOC].at<float>();
  for (int64_t i = 0; i < B * P * 4; ++i) loc[i] = make_logit(r, logit_mode == 1 ? 0 : logit_mode);
  float* conf = q.s[R_CONF].at<float>();
  for (int64_t i = 0; i < B * P * C; ++i) conf[i] = make_logit(r, logit_mode);
  q.data_finite = true;
  for (int64_t i = 0; i < B * P * 4; ++i) q.data_finite = q.data_finite && std::isfinite(loc[i]);
  for (int64_t i = 0; i < B * P * C; ++i) q.data_finite = q.data_finite && std::isfinite(conf[i]);
  {
    static const double kUp[] = {1, 0, 0.5, -2, 3};
    const uint8_t u = r.u8();
    q.grad_loss_vals[0] = kUp[u % 5];
    q.grad_loss_vals[1] = kUp[(u / 5) % 5];
    if (q.s[R_GRAD_LOSS].t.dtype.bits == 64) {
      q.s[R_GRAD_LOSS].at<double>()[0] = q.grad_loss_vals[0];
      q.s[R_GRAD_LOSS].at<double>()[1] = q.grad_loss_vals[1];
    } else {
      q.s[R_GRAD_LOSS].at<float>()[0] = static_cast<float>(q.grad_loss_vals[0]);
      q.s[R_GRAD_LOSS].at<float>()[1] = static_cast<float>(q.grad_loss_vals[1]);
    }
    if (u >= 200) q.s[R_GRAD_LOSS].null_tensor = true;  // NULL = (1, 1)
  }
  q.tame = geo_tame && logit_mode != 2 && options_tame(q.o);

  if (valid_only) {
    decode_v03(r, pb, true);
    return;
  }
  // Tensor perturbations.
  const int npert = r.u8() % 4;
  for (int k = 0; k < npert; ++k) {
    const uint8_t a = r.u8(), b2 = r.u8();
    const int role = a % kNumPerturbRoles;
    Slot& sl = q.s[role];
    DLTensor& t = sl.t;
    q.perturbed = true;
    q.log += std::string(" ") + role_name(role) + ":" + std::to_string(b2 % 14) + "/" + std::to_string(b2 >> 4);
    switch (b2 % 14) {
      case 0: {  // explicit compact strides (valid)
        int64_t e = 1;
        for (int d = t.ndim - 1; d >= 0; --d) { sl.strides[d] = t.shape[d] == 1 ? 1000 + d : e; e *= t.shape[d]; }
        t.strides = sl.strides;
        break;
      }
      case 1: {  // non-compact strides
        int64_t e = 1;
        for (int d = t.ndim - 1; d >= 0; --d) { sl.strides[d] = e; e *= t.shape[d]; }
        if (t.ndim > 0) sl.strides[(b2 >> 4) % t.ndim] += (b2 & 0x80) ? -1 : 1;
        t.strides = sl.strides;
        break;
      }
      case 2:  // same memory through byte_offset (valid)
        t.data = sl.bytes();
        t.byte_offset = kGuard;
        break;
      case 3:  // misaligned
        t.data = sl.bytes();
        t.byte_offset = kGuard + 1 + (b2 >> 4) % 3;
        break;
      case 4:
        t.ndim = (b2 & 0x80) ? t.ndim + 1 : t.ndim - 1;
        if (t.ndim < 0) t.ndim = 0;
        if (t.ndim > 8) t.ndim = 8;
        break;
      case 5:
        if (t.ndim > 0) {  // shrink one dimension (reads stay inside our buffer)
          int d = (b2 >> 4) % t.ndim;
          if (sl.shape[d] > 0) sl.shape[d] -= 1 + (b2 >> 7) * (sl.shape[d] - 1);
        }
        break;
      case 6: t.data = nullptr; break;
      case 7: sl.null_tensor = true; break;
      case 8: {
        static const DLDataType k[] = {dt(kDLFloat, 32), dt(kDLFloat, 64), dt(kDLFloat, 16),
                                       dt(kDLBfloat, 16), dt(kDLInt, 32), dt(kDLUInt, 8),
                                       dt(kDLInt, 64), dt(kDLFloat, 8)};
        t.dtype = k[(b2 >> 4) % 8];
        if (role == R_LOC || role == R_CONF) q.tame = q.data_finite = false;  // bits reinterpreted
        if (role == R_GRAD_LOSS) { q.grad_loss_vals[0] = q.grad_loss_vals[1] = NAN; q.tame = false; }
        break;
      }
      case 9:
        t.dtype.lanes = (b2 & 0x80) ? 0 : 2;
        if (role == R_LOC || role == R_CONF) q.tame = q.data_finite = false;
        break;
      case 10: {
        static const DLDevice k[] = {{kDLCUDA, 0}, {kDLCUDAHost, 0}, {kDLOpenCL, 0}, {kDLCPU, 3},
                                     {kDLCUDAManaged, 0}, {kDLVulkan, 0}};
        if (mbx_cuda_available()) break;  // CUDA devices with host memory would be a caller bug
        t.device = k[(b2 >> 4) % 6];
        break;
      }
      case 11:  // an output aliasing an input
        if (!is_input(role)) {
          const int src = (b2 >> 4) % (R_GRAD_LOSS + 1);
          // Only where the input buffer is at least as large as the output's.
          if (q.s[src].cap >= sl.cap) {
            t.data = q.s[src].t.data;
            t.byte_offset = q.s[src].t.byte_offset;
            // A stage that does not read `src` may legally write its output
            // there, so later stages see other data.
            q.tame = false;
            q.data_finite = false;
          }
        }
        break;
      case 12: {  // half precision loc/conf/grads, values converted
        const bool bf = b2 & 0x80;
        if (!same_dt(q.s[R_LOC].t.dtype, dt(kDLFloat, 32)) || !same_dt(q.s[R_CONF].t.dtype, dt(kDLFloat, 32))) break;
        for (int rr : {R_LOC, R_CONF}) {
          Slot& h = q.s[rr];
          const int64_t n = h.numel();
          std::vector<float> v(h.at<float>(), h.at<float>() + n);
          for (int64_t i = 0; i < n; ++i) h.at<uint16_t>()[i] = bf ? to_bf16(v[i]) : to_f16(v[i]);
        }
        for (int rr : {R_LOC, R_CONF, R_GRAD_LOC, R_GRAD_CONF})
          q.s[rr].t.dtype = bf ? dt(kDLBfloat, 16) : dt(kDLFloat, 16);
        for (int rr : {R_LOC, R_CONF}) {  // wild values may round to inf in half precision
          const int64_t n = q.s[rr].numel();
          for (int64_t i = 0; i < n; ++i) {
            const uint16_t h = q.s[rr].at<uint16_t>()[i];
            const bool fin = bf ? ((h >> 7) & 0xff) != 0xff : ((h >> 10) & 0x1f) != 0x1f;
            if (!fin) q.data_finite = false;
          }
        }
        break;
      }
      case 13:  // a zero-element tensor in place of a non-empty one
        if (t.ndim > 0) sl.shape[0] = 0;
        break;
    }
  }
  decode_v03(r, pb, false);
}

// Human-readable dump of a decoded problem (set MBX_FUZZ_DUMP=1 when
// replaying a crash file to see what it is).
inline void dump(const Problem& q) {
  if (!std::getenv("MBX_FUZZ_DUMP")) return;
  const mbx_options_t& o = q.o;
  std::fprintf(stderr,
               "B=%lld P=%lld C=%lld G=%lld path=%d ctx=%d tame=%d finite=%d perturbed=%d\n"
               "opts: size=%zu prior_format=%d force=%d pos=%g neg=%g var=(%g,%g,%g,%g) min_wh=%g "
               "loc_loss=%d conf_loss=%d beta=%g ratio=%g clamp=%d overflow=%d alpha=%g gamma=%g "
               "norm=%d avg=%d ext=%g invalid_gt=%d reserved0=%d\n",
               (long long)q.B, (long long)q.P, (long long)q.C, (long long)q.G, (int)q.path, (int)q.use_ctx,
               (int)q.tame, (int)q.data_finite, (int)q.perturbed, o.struct_size, o.prior_format,
               o.force_match, o.pos_threshold, o.neg_threshold, o.variances[0], o.variances[1],
               o.variances[2], o.variances[3], o.encode_min_gt_wh, o.loc_loss, o.conf_loss,
               o.smooth_l1_beta, o.neg_pos_ratio, o.clamp_num_neg, o.neg_overflow, o.focal_alpha,
               o.focal_gamma, o.normalization, o.loc_average_coords, o.external_norm, o.invalid_gt,
               o.reserved0);
  std::fprintf(stderr, "perturbations:%s match_num_classes=%lld\n", q.log.c_str(), (long long)q.match_num_classes);
  auto f = [&](int r, int64_t n, int w) {
    const Slot& s = q.s[r];
    std::fprintf(stderr, "%s (ndim %d, dtype %d/%d):", role_name(r), s.t.ndim, s.t.dtype.code, s.t.dtype.bits);
    for (int64_t i = 0; i < n; ++i) {
      if (i % w == 0) std::fprintf(stderr, "\n  ");
      if (s.t.dtype.code == kDLInt) std::fprintf(stderr, " %d", const_cast<Slot&>(s).at<int32_t>()[i]);
      else std::fprintf(stderr, " %.9g", const_cast<Slot&>(s).at<float>()[i]);
    }
    std::fprintf(stderr, "\n");
  };
  f(R_PRIORS, q.P * 4, 4); f(R_GT_BOXES, q.B * q.G * 4, 4); f(R_GT_LABELS, q.B * q.G, 16);
  f(R_GT_COUNTS, q.B, 16); f(R_LOC, q.B * q.P * 4, 4); f(R_CONF, q.B * q.P * q.C, q.C);
  std::fprintf(stderr, "0.3: ignore_iof_threshold=%g assigner=%d atss_topk=%d\n", o.ignore_iof_threshold,
               o.assigner, o.atss_topk);
  if (!q.s[R_GT_FLAGS].null_tensor) f(R_GT_FLAGS, q.s[R_GT_FLAGS].numel(), 16);
  if (!q.s[R_PRIOR_LEVELS].null_tensor) f(R_PRIOR_LEVELS, q.s[R_PRIOR_LEVELS].numel(), 16);
}

// ---------------------------------------------------------------------------
// Prediction: must this call succeed?
// ---------------------------------------------------------------------------
enum Stage { S_MATCH, S_FORWARD, S_BACKWARD, S_FUSED, S_DECODE };

struct TensorRule {
  int role;
  bool required;
  std::vector<int64_t> dims;  // -1 free
  std::vector<DLDataType> dtypes;
};

inline bool tensor_ok(const Slot& sl, const TensorRule& rule, bool* host) {
  if (sl.null_tensor) return !rule.required;
  const DLTensor& t = sl.t;
  if (t.dtype.lanes != 1) return false;
  bool dt_ok = false;
  for (DLDataType d : rule.dtypes) dt_ok = dt_ok || same_dt(d, t.dtype);
  if (!dt_ok) return false;
  if (t.ndim != static_cast<int>(rule.dims.size())) return false;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] < 0) return false;
    if (rule.dims[i] >= 0 && t.shape[i] != rule.dims[i]) return false;
  }
  const int64_t n = sl.numel();
  if (t.strides && n > 0) {
    int64_t e = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      if (t.shape[i] != 1 && t.strides[i] != e) return false;
      e *= t.shape[i];
    }
  }
  if (n > 0 && !t.data) return false;
  const uint8_t* f = sl.first();
  if (f && reinterpret_cast<uintptr_t>(f) % (t.dtype.bits / 8) != 0) return false;
  const int dtp = t.device.device_type;
  if (dtp == kDLCPU || dtp == kDLCUDAHost) *host = true;
  else return false;  // CUDA without a device, or an unsupported device type
  return true;
}

inline bool overlaps(const Slot& a, const Slot& b) {
  if (a.null_tensor || b.null_tensor) return false;
  const uint8_t *a0 = a.first(), *b0 = b.first();
  const size_t an = a.logical_bytes(), bn = b.logical_bytes();
  if (!a0 || !b0 || !an || !bn) return false;
  return a0 < b0 + bn && b0 < a0 + an;
}

// Reads element i of an int32/float32 input that passed tensor_ok.
template <typename T> inline T elem(const Slot& sl, int64_t i) {
  T v; std::memcpy(&v, sl.first() + i * sizeof(T), sizeof(T)); return v;
}

inline bool prior_ok(const float* r, bool corners) {
  if (!(std::isfinite(r[0]) && std::isfinite(r[1]) && std::isfinite(r[2]) && std::isfinite(r[3]))) return false;
  return corners ? (r[2] > r[0] && r[3] > r[1]) : (r[2] > 0.f && r[3] > 0.f);
}

// Whether `stage` must succeed (true) or must fail (false).
inline bool expect_ok(const Problem& q, Stage st, int64_t num_classes_arg) {
  if (!options_valid(q.o)) return false;
  const bool corners = q.o.prior_format == MBX_PRIOR_CORNERS;
  const DLDataType f32 = dt(kDLFloat, 32), f64 = dt(kDLFloat, 64), i32 = dt(kDLInt, 32),
                   f16 = dt(kDLFloat, 16), bf16 = dt(kDLBfloat, 16);
  const Slot* s = q.s;
  bool host = false;
  std::vector<int> inputs, outputs;
  auto use = [&](const TensorRule& rule) {
    if (!tensor_ok(s[rule.role], rule, &host)) return false;
    if (!s[rule.role].null_tensor) (is_input(rule.role) ? inputs : outputs).push_back(rule.role);
    return true;
  };
  if (s[R_PRIORS].null_tensor || s[R_PRIORS].t.ndim != 2) return false;
  const int64_t P = s[R_PRIORS].t.shape[0];
  if (!use({R_PRIORS, true, {-1, 4}, {f32}})) return false;
  if (P < 1) return false;
  if (st == S_DECODE) {
    // (mbx_run: decode takes no GT input)
    if (!s[R_GT_FLAGS].null_tensor || !s[R_PRIOR_LEVELS].null_tensor) return false;
    if (s[R_LOC].null_tensor || s[R_LOC].t.ndim != 3) return false;
    const int64_t B = s[R_LOC].t.shape[0];
    if (!use({R_LOC, true, {-1, P, 4}, {f32}})) return false;
    if (!use({R_BOXES, true, {B, P, 4}, {f32}})) return false;
  } else {
    if (s[R_GT_BOXES].null_tensor || s[R_GT_BOXES].t.ndim != 3) return false;
    const int64_t B = s[R_GT_BOXES].t.shape[0], G = s[R_GT_BOXES].t.shape[1];
    if (!use({R_GT_BOXES, true, {-1, -1, 4}, {f32}})) return false;
    if (B < 1) return false;
    if (!use({R_GT_LABELS, true, {B, G}, {i32}})) return false;
    if (!use({R_GT_COUNTS, true, {B}, {i32}})) return false;
    if (!use({R_GT_FLAGS, false, {B, G}, {i32}})) return false;
    if (!s[R_PRIOR_LEVELS].null_tensor) {  // host memory: checked, but not an aliasing input
      bool lhost = false;
      if (!tensor_ok(s[R_PRIOR_LEVELS], {R_PRIOR_LEVELS, false, {-1}, {i32}}, &lhost)) return false;
      if (s[R_PRIOR_LEVELS].t.shape[0] < 1) return false;
    }
    int64_t K = num_classes_arg;
    if (st != S_MATCH) {
      if (s[R_CONF].null_tensor || s[R_CONF].t.ndim != 3) return false;
      const int64_t C = s[R_CONF].t.shape[2];
      if (!use({R_CONF, true, {B, P, -1}, {f32, f16, bf16}})) return false;
      if (!use({R_LOC, true, {B, P, 4}, {f32, f16, bf16}})) return false;
      // SOFTMAX_CE and LOGISTIC have the background column.
      const bool softmax = q.o.conf_loss != MBX_CONF_LOSS_SIGMOID_FOCAL;
      if (softmax && C < 2) return false;
      if (!softmax && C < 1) return false;
      K = softmax ? C - 1 : C;
      if (st != S_BACKWARD && !use({R_NUM_POS, false, {B}, {i32}})) return false;
      if (st != S_BACKWARD && !use({R_LOSS, true, {2}, {f32, f64}})) return false;
      if (st != S_FORWARD) {
        if (!use({R_GRAD_LOSS, false, {2}, {f32, f64}})) return false;
        if (!use({R_GRAD_LOC, true, {B, P, 4}, {s[R_LOC].t.dtype}})) return false;
        if (!use({R_GRAD_CONF, true, {B, P, C}, {s[R_CONF].t.dtype}})) return false;
      }
    } else {
      if (K < 0) return false;
      if (!use({R_CONF_TARGET, true, {B, P}, {i32}})) return false;
      if (!use({R_MATCHED_GT, false, {B, P}, {i32}})) return false;
      if (!use({R_LOC_TARGET, false, {B, P, 4}, {f32}})) return false;
      if (!use({R_NUM_POS, false, {B}, {i32}})) return false;
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      for (int in : inputs) if (overlaps(s[outputs[i]], s[in])) return false;
      for (size_t j = 0; j < i; ++j) if (overlaps(s[outputs[i]], s[outputs[j]])) return false;
    }
    // Values (docs/SPEC.md §7).
    for (int64_t p = 0; p < P; ++p) {
      float r[4];
      for (int k = 0; k < 4; ++k) r[k] = elem<float>(s[R_PRIORS], 4 * p + k);
      if (!prior_ok(r, corners)) return false;
    }
    const bool skip = effective_invalid_gt(q.o) == MBX_INVALID_GT_SKIP;
    for (int64_t b = 0; b < B; ++b) {
      const int32_t n = elem<int32_t>(s[R_GT_COUNTS], b);
      if (n < 0 || n > G) return false;
      for (int32_t g = 0; g < n; ++g) {
        const int32_t lab = elem<int32_t>(s[R_GT_LABELS], b * G + g);
        if (lab < 0 || (K > 0 && lab >= K)) return false;
        float r[4];
        for (int k = 0; k < 4; ++k) r[k] = elem<float>(s[R_GT_BOXES], (b * G + g) * 4 + k);
        if (!skip && !prior_ok(r, true)) return false;
        // Reserved gt_flags bits of a valid row (padding rows are not read).
        if (!s[R_GT_FLAGS].null_tensor && (elem<int32_t>(s[R_GT_FLAGS], b * G + g) & ~1) != 0) return false;
      }
    }
    if (!s[R_PRIOR_LEVELS].null_tensor) {
      int64_t sum = 0;
      for (int64_t l = 0; l < s[R_PRIOR_LEVELS].t.shape[0]; ++l) {
        const int32_t v = elem<int32_t>(s[R_PRIOR_LEVELS], l);
        if (v < 0) return false;
        sum += v;
      }
      if (sum != P) return false;
    }
    return host;
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    for (int in : inputs) if (overlaps(s[outputs[i]], s[in])) return false;
  for (int64_t p = 0; p < P; ++p) {
    float r[4];
    for (int k = 0; k < 4; ++k) r[k] = elem<float>(s[R_PRIORS], 4 * p + k);
    if (!prior_ok(r, corners)) return false;
  }
  return host;
}

// ---------------------------------------------------------------------------
// Running the calls.
// ---------------------------------------------------------------------------
struct Snapshot {
  std::vector<std::vector<uint8_t>> b;
  void take(const Problem& q) {
    b.resize(kNumRoles);
    for (int r = 0; r < kNumRoles; ++r) b[r].assign(q.s[r].bytes(), q.s[r].bytes() + q.s[r].cap);
  }
};

inline void refill(Problem& q, std::initializer_list<int> roles) {
  for (int r : roles) std::memset(q.s[r].bytes(), kSentinel, q.s[r].cap);
}

inline mbx_status_t call_run(Problem& q, mbx_context_t* ctx, Stage st, int64_t num_classes);

// Whether a valid call may answer UNSUPPORTED: a feature whose option exists
// but whose algorithm may not be implemented in this build (ATSS, the IoU
// losses). Such a call must give OK or UNSUPPORTED, nothing else.
inline bool may_be_unsupported(const Problem& q, Stage st) {
  if (st == S_DECODE) return false;
  if (effective_assigner(q.o) == MBX_ASSIGNER_ATSS) return true;
  return st != S_MATCH && q.o.loc_loss >= MBX_LOC_LOSS_GIOU;
}

inline mbx_status_t call(Problem& q, mbx_context_t* ctx, Stage st, int64_t num_classes) {
  Slot* s = q.s;
  // The per-operation functions take no optional input: those go through mbx_run.
  if (!s[R_GT_FLAGS].null_tensor || !s[R_PRIOR_LEVELS].null_tensor) return call_run(q, ctx, st, num_classes);
  switch (st) {
    case S_MATCH:
      return mbx_match(ctx, &q.o, num_classes, s[R_PRIORS].in(), s[R_GT_BOXES].in(),
                       s[R_GT_LABELS].in(), s[R_GT_COUNTS].in(), s[R_CONF_TARGET].out(),
                       s[R_MATCHED_GT].out(), s[R_LOC_TARGET].out(), s[R_NUM_POS].out());
    case S_FORWARD:
      return mbx_loss_forward(ctx, &q.o, s[R_PRIORS].in(), s[R_GT_BOXES].in(), s[R_GT_LABELS].in(),
                              s[R_GT_COUNTS].in(), s[R_LOC].in(), s[R_CONF].in(), s[R_LOSS].out(),
                              s[R_NUM_POS].out());
    case S_BACKWARD:
      return mbx_loss_backward(ctx, &q.o, s[R_PRIORS].in(), s[R_GT_BOXES].in(), s[R_GT_LABELS].in(),
                               s[R_GT_COUNTS].in(), s[R_LOC].in(), s[R_CONF].in(),
                               s[R_GRAD_LOSS].in(), s[R_GRAD_LOC].out(), s[R_GRAD_CONF].out());
    case S_FUSED:
      return mbx_loss_forward_backward(ctx, &q.o, s[R_PRIORS].in(), s[R_GT_BOXES].in(),
                                       s[R_GT_LABELS].in(), s[R_GT_COUNTS].in(), s[R_LOC].in(),
                                       s[R_CONF].in(), s[R_GRAD_LOSS].in(), s[R_LOSS].out(),
                                       s[R_NUM_POS].out(), s[R_GRAD_LOC].out(), s[R_GRAD_CONF].out());
    case S_DECODE:
      return mbx_decode(ctx, &q.o, s[R_PRIORS].in(), s[R_LOC].in(), s[R_BOXES].out());
  }
  return MBX_STATUS_INTERNAL_ERROR;
}

// The same call through mbx_run and an mbx_tensors_t (the per-operation
// functions are wrappers over the same dispatch; results must be bitwise
// equal).
inline mbx_status_t call_run(Problem& q, mbx_context_t* ctx, Stage st, int64_t num_classes) {
  Slot* s = q.s;
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = s[R_PRIORS].in();
  t.gt_flags = s[R_GT_FLAGS].in();
  t.prior_levels = s[R_PRIOR_LEVELS].in();
  switch (st) {
    case S_MATCH:
      t.num_classes = num_classes;
      t.gt_boxes = s[R_GT_BOXES].in(); t.gt_labels = s[R_GT_LABELS].in(); t.gt_counts = s[R_GT_COUNTS].in();
      t.conf_target = s[R_CONF_TARGET].out(); t.matched_gt = s[R_MATCHED_GT].out();
      t.loc_target = s[R_LOC_TARGET].out(); t.num_pos = s[R_NUM_POS].out();
      return mbx_run(ctx, &q.o, MBX_OP_MATCH, &t);
    case S_FORWARD:
    case S_BACKWARD:
    case S_FUSED:
      t.gt_boxes = s[R_GT_BOXES].in(); t.gt_labels = s[R_GT_LABELS].in(); t.gt_counts = s[R_GT_COUNTS].in();
      t.loc = s[R_LOC].in(); t.conf = s[R_CONF].in();
      if (st != S_BACKWARD) { t.loss = s[R_LOSS].out(); t.num_pos = s[R_NUM_POS].out(); }
      if (st != S_FORWARD) {
        t.grad_loss = s[R_GRAD_LOSS].in(); t.grad_loc = s[R_GRAD_LOC].out(); t.grad_conf = s[R_GRAD_CONF].out();
      }
      return mbx_run(ctx, &q.o, st == S_FORWARD ? MBX_OP_LOSS_FORWARD
                                : st == S_BACKWARD ? MBX_OP_LOSS_BACKWARD : MBX_OP_LOSS_FORWARD_BACKWARD, &t);
    case S_DECODE:
      t.loc = s[R_LOC].in(); t.boxes = s[R_BOXES].out();
      return mbx_run(ctx, &q.o, MBX_OP_DECODE, &t);
  }
  return MBX_STATUS_INTERNAL_ERROR;
}

inline std::vector<int> stage_outputs(Stage st) {
  switch (st) {
    case S_MATCH: return {R_CONF_TARGET, R_MATCHED_GT, R_LOC_TARGET, R_NUM_POS};
    case S_FORWARD: return {R_LOSS, R_NUM_POS};
    case S_BACKWARD: return {R_GRAD_LOC, R_GRAD_CONF};
    case S_FUSED: return {R_LOSS, R_NUM_POS, R_GRAD_LOC, R_GRAD_CONF};
    case S_DECODE: return {R_BOXES};
  }
  return {};
}

inline const char* stage_name(Stage st) {
  static const char* k[] = {"match", "forward", "backward", "forward_backward", "decode"};
  return k[st];
}

// Value of a float output element as double (f32/f64/f16/bf16).
inline double out_value(const Slot& sl, int64_t i) {
  const uint8_t* f = sl.first();
  const DLDataType d = sl.t.dtype;
  if (d.code == kDLFloat && d.bits == 64) { double v; std::memcpy(&v, f + 8 * i, 8); return v; }
  if (d.bits == 32) { float v; std::memcpy(&v, f + 4 * i, 4); return v; }
  uint16_t h; std::memcpy(&h, f + 2 * i, 2);
  uint32_t x;
  if (d.code == kDLBfloat) x = static_cast<uint32_t>(h) << 16;
  else {
    const uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) x = sign | 0x7f800000u | (m << 13);
    else if (e == 0) { float v = std::ldexp(static_cast<float>(m), -24); return (h & 0x8000u) ? -v : v; }
    else x = sign | ((e + 112) << 23) | (m << 13);
  }
  float v; std::memcpy(&v, &x, 4); return v;
}

}  // namespace mbx_fuzz
