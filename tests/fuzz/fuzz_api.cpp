// libFuzzer target: every C API entry point that takes tensors (match,
// forward, backward, fused, decode) on one decoded input, including invalid
// options, tensors and data. Asserts, per call:
//  - the status agrees with the header's / docs/SPEC.md §7's rules (tests/fuzz/
//    fuzz_common.h: expect_ok): valid input -> OK, invalid -> an error;
//  - on error: a non-empty message, not INTERNAL_ERROR, and not one byte of
//    any buffer (outputs and inputs, guards included) changed;
//  - on OK: an empty message, inputs unchanged, nothing written outside the
//    outputs' logical bytes, every output element written, the output
//    invariants of docs/SPEC.md §2 (conf_target / matched_gt / num_pos consistent,
//    loc_target 0 off positives), losses >= 0, and finite outputs whenever
//    the input is finite and of tame magnitude (non-finite loc / conf are the
//    caller's data and may give non-finite losses, docs/SPEC.md §7);
//  - forward == fused == backward bitwise, match and loss num_pos equal;
//  - determinism: a second context (maybe another thread count), called
//    through mbx_run, gives bitwise the same results;
//  - mbx_options_get's text of every option round-trips through
//    mbx_options_set.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"

using namespace mbx_fuzz;

namespace {

std::vector<uint8_t> logical(const Slot& s) {
  if (s.null_tensor || !s.first()) return {};
  return std::vector<uint8_t>(s.first(), s.first() + s.logical_bytes());
}

bool guards_intact(const Slot& s, const std::vector<uint8_t>& before) {
  const uint8_t* b = s.bytes();
  const uint8_t* f = s.first();
  const size_t n = s.logical_bytes();
  for (size_t i = 0; i < s.cap; ++i) {
    const uint8_t* p = b + i;
    if (f && p >= f && p < f + n) continue;
    if (*p != before[i]) return false;
  }
  return true;
}

// 32/64-bit outputs: no element may still hold the sentinel pattern.
bool fully_written(const Slot& s) {
  if (s.null_tensor || s.t.dtype.bits < 32) return true;
  const size_t eb = s.t.dtype.bits / 8;
  const int64_t n = s.numel();
  for (int64_t i = 0; i < n; ++i) {
    bool all = true;
    for (size_t k = 0; k < eb; ++k) all = all && s.first()[i * eb + k] == kSentinel;
    if (all) return false;
  }
  return true;
}

bool stage_reads(Stage st, int r) {
  if (r == R_GT_FLAGS || r == R_PRIOR_LEVELS) return st != S_DECODE;
  switch (st) {
    case S_MATCH: return r <= R_GT_COUNTS;
    case S_FORWARD: return r <= R_CONF;
    case S_BACKWARD:
    case S_FUSED: return r <= R_GRAD_LOSS;
    case S_DECODE: return r == R_PRIORS || r == R_LOC;
  }
  return false;
}

int32_t i32at(const Slot& s, int64_t i) { return elem<int32_t>(s, i); }

struct Saved {
  bool ok = false;
  std::vector<uint8_t> out[kNumRoles];
  Snapshot before;  // every buffer right before the call (outputs may alias
                    // inputs that an earlier stage does not read)
};

// Ignore regions (docs/SPEC.md §2.7), from the SPEC's formulas: a prior
// whose IoF with a valid ignore row is > ignore_iof_threshold is -1 (MAX_IOU;
// under ATSS an ATSS positive may override it), and no positive is matched
// to an ignore row.
void check_ignore_regions(const Problem& q, int64_t b) {
  const Slot* s = q.s;
  if (s[R_GT_FLAGS].null_tensor) return;
  const int64_t G = s[R_GT_BOXES].t.shape[1], P = s[R_PRIORS].t.shape[0];
  const int32_t n = i32at(s[R_GT_COUNTS], b);
  const double thr = effective_ignore_iof(q.o);
  const bool corners = q.o.prior_format == MBX_PRIOR_CORNERS;
  const bool atss = effective_assigner(q.o) == MBX_ASSIGNER_ATSS;
  const bool skip = effective_invalid_gt(q.o) == MBX_INVALID_GT_SKIP;
  for (int64_t p = 0; p < P; ++p) {
    const int32_t ct = i32at(s[R_CONF_TARGET], b * P + p);
    if (!s[R_MATCHED_GT].null_tensor && ct > 0) {
      const int32_t g = i32at(s[R_MATCHED_GT], b * P + p);
      MBX_FUZZ_CHECK((i32at(s[R_GT_FLAGS], b * G + g) & 1) == 0, "a positive matched to an ignore region");
    }
    if (thr <= 0.0 || (atss && ct > 0)) continue;
    double pr[4];
    for (int k = 0; k < 4; ++k) pr[k] = elem<float>(s[R_PRIORS], 4 * p + k);
    if (!corners) {
      const double cx = pr[0], cy = pr[1], w = pr[2], h = pr[3];
      pr[0] = cx - w / 2.0; pr[1] = cy - h / 2.0; pr[2] = cx + w / 2.0; pr[3] = cy + h / 2.0;
    }
    const double parea = (pr[2] - pr[0]) * (pr[3] - pr[1]);
    for (int32_t g = 0; g < n; ++g) {
      if ((i32at(s[R_GT_FLAGS], b * G + g) & 1) == 0) continue;
      float r[4];
      for (int k = 0; k < 4; ++k) r[k] = elem<float>(s[R_GT_BOXES], (b * G + g) * 4 + k);
      if (skip && !prior_ok(r, true)) continue;  // a skipped row is no region either
      double iw = std::min<double>(r[2], pr[2]) - std::max<double>(r[0], pr[0]);
      double ih = std::min<double>(r[3], pr[3]) - std::max<double>(r[1], pr[1]);
      iw = iw > 0.0 ? iw : 0.0;
      ih = ih > 0.0 ? ih : 0.0;
      if ((iw * ih) / parea > thr) {
        MBX_FUZZ_CHECK(ct == -1, "a prior inside an ignore region is not ignored (image " +
                                     std::to_string(b) + ", prior " + std::to_string(p) + ")");
        break;
      }
    }
  }
}

void check_match(const Problem& q, int64_t num_classes) {
  const Slot* s = q.s;
  const int64_t B = s[R_GT_BOXES].t.shape[0], G = s[R_GT_BOXES].t.shape[1], P = s[R_PRIORS].t.shape[0];
  const bool skip = effective_invalid_gt(q.o) == MBX_INVALID_GT_SKIP;
  const bool have_mg = !s[R_MATCHED_GT].null_tensor, have_lt = !s[R_LOC_TARGET].null_tensor,
             have_np = !s[R_NUM_POS].null_tensor;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t n = i32at(s[R_GT_COUNTS], b);
    int32_t pos = 0;
    for (int64_t p = 0; p < P; ++p) {
      const int32_t ct = i32at(s[R_CONF_TARGET], b * P + p);
      MBX_FUZZ_CHECK(ct >= -1, "conf_target < -1");
      if (num_classes > 0) MBX_FUZZ_CHECK(ct <= num_classes, "conf_target > K");
      if (n == 0) MBX_FUZZ_CHECK(ct == 0, "image without GT has a non-negative prior");
      if (ct > 0) {
        ++pos;
        if (have_mg) {
          const int32_t g = i32at(s[R_MATCHED_GT], b * P + p);
          MBX_FUZZ_CHECK(g >= 0 && g < n, "matched_gt of a positive outside [0, gt_counts)");
          MBX_FUZZ_CHECK(i32at(s[R_GT_LABELS], b * G + g) + 1 == ct, "conf_target != label + 1");
          if (skip) {
            float r[4];
            for (int k = 0; k < 4; ++k) r[k] = elem<float>(s[R_GT_BOXES], (b * G + g) * 4 + k);
            MBX_FUZZ_CHECK(prior_ok(r, true), "positive matched to a skipped invalid GT row");
          }
        }
      } else {
        if (have_mg) MBX_FUZZ_CHECK(i32at(s[R_MATCHED_GT], b * P + p) == -1, "matched_gt != -1 off positives");
        if (have_lt)
          for (int k = 0; k < 4; ++k)
            MBX_FUZZ_CHECK(elem<float>(s[R_LOC_TARGET], (b * P + p) * 4 + k) == 0.f, "loc_target != 0 off positives");
      }
      if (have_lt && q.tame)
        for (int k = 0; k < 4; ++k)
          MBX_FUZZ_CHECK(std::isfinite(elem<float>(s[R_LOC_TARGET], (b * P + p) * 4 + k)),
                         "non-finite loc_target for tame input");
    }
    if (have_np) MBX_FUZZ_CHECK(i32at(s[R_NUM_POS], b) == pos, "num_pos != count of positives");
    check_ignore_regions(q, b);
  }
}

void check_loss(const Problem& q) {
  const Slot& l = q.s[R_LOSS];
  for (int k = 0; k < 2; ++k) {
    const double v = out_value(l, k);
    if (q.data_finite && q.tame)
      MBX_FUZZ_CHECK(std::isfinite(v) && v >= 0, "loss[" + std::to_string(k) + "] = " + std::to_string(v) +
                                                     " (dtype bits " + std::to_string(l.t.dtype.bits) +
                                                     ") not finite / negative for finite tame input");
    if (q.data_finite) MBX_FUZZ_CHECK(!(v < 0), "negative loss");
  }
}

void check_grads(const Problem& q) {
  if (!(q.data_finite && q.tame)) return;
  for (int r : {R_GRAD_LOC, R_GRAD_CONF}) {
    const Slot& s = q.s[r];
    const int64_t n = s.numel();
    // (NaN: the upstream tensor's bits were reinterpreted by a perturbation.)
    const double up = q.s[R_GRAD_LOSS].null_tensor ? 1.0 : q.grad_loss_vals[r == R_GRAD_LOC ? 0 : 1];
    for (int64_t i = 0; i < n; ++i) {
      const double v = out_value(s, i);
      MBX_FUZZ_CHECK(std::isfinite(v), std::string(role_name(r)) + " not finite for finite tame input");
      if (up == 0.0) MBX_FUZZ_CHECK(v == 0.0, std::string(role_name(r)) + " != 0 with a zero upstream gradient");
    }
  }
}

void check_boxes(const Problem& q) {
  if (!(q.data_finite && q.tame)) return;
  const Slot& s = q.s[R_BOXES];
  for (int64_t i = 0; i < s.numel(); ++i)
    MBX_FUZZ_CHECK(std::isfinite(out_value(s, i)), "decoded box not finite for finite tame input");
}

mbx_context_t* make_ctx(const Problem& q, int threads) {
  if (!q.use_ctx) return nullptr;
  mbx_context_t* ctx = nullptr;
  MBX_FUZZ_CHECK(mbx_context_create(&ctx) == MBX_STATUS_OK, "context_create");
  MBX_FUZZ_CHECK(mbx_context_set_path(ctx, q.path) == MBX_STATUS_OK, mbx_last_error());
  MBX_FUZZ_CHECK(mbx_context_set_num_threads(ctx, threads) == MBX_STATUS_OK, mbx_last_error());
  return ctx;
}

// A size for mbx_workspace_size: small, medium, any 64-bit value, or a
// boundary of its checks.
int64_t fuzz_extent(Reader& rd) {
  static const int64_t kEdges[] = {0, 1, -1, 2, INT32_MAX - 2, INT32_MAX - 1, INT32_MAX,
                                   int64_t(1) << 24, int64_t(1) << 48, (int64_t(1) << 48) + 1,
                                   INT64_MAX, INT64_MIN};
  switch (rd.u8() % 4) {
    case 0: return static_cast<int64_t>(rd.u8() % 24) - 2;
    case 1: return rd.u16();
    case 2: return static_cast<int64_t>((static_cast<uint64_t>(rd.u32()) << 32) | rd.u32());
    default: return kEdges[rd.u8() % (sizeof kEdges / sizeof kEdges[0])];
  }
}

// mbx_workspace_size: succeeds exactly when the options are valid and
// B, P, G, C are within its documented limits (in a CUDA build; otherwise
// NO_DEVICE), and writes nothing on error.
void check_workspace_size(Reader& rd, const Problem& q) {
  mbx_options_t def;
  mbx_options_init(&def, MBX_PRESET_SSD_PYTORCH);
  size_t probe = 0;
  const bool cuda_build = mbx_workspace_size(&def, 1, 1, 1, 1, &probe) == MBX_STATUS_OK;
  const int64_t B = fuzz_extent(rd), P = fuzz_extent(rd), G = fuzz_extent(rd), C = fuzz_extent(rd);
  auto prod_ok = [](int64_t a, int64_t b) {
    int64_t r;
    return !__builtin_mul_overflow(a, b, &r) && r <= (int64_t(1) << 48);
  };
  const bool sizes_ok = B >= 1 && P >= 1 && G >= 1 && C >= 1 && P <= INT32_MAX - 1 &&
                        G <= INT32_MAX - 1 && prod_ok(B, P) && prod_ok(B, G) && prod_ok(P, C);
  const bool valid = options_valid(q.o) && sizes_ok;
  size_t bytes = 12345;
  const mbx_status_t st = mbx_workspace_size(&q.o, B, P, G, C, &bytes);
  const std::string where = std::string("workspace_size(") + std::to_string(B) + ", " + std::to_string(P) +
                            ", " + std::to_string(G) + ", " + std::to_string(C) + "): " +
                            mbx_status_string(st) + " \"" + mbx_last_error() + "\"";
  if (!valid) {
    MBX_FUZZ_CHECK(st != MBX_STATUS_OK && st != MBX_STATUS_INTERNAL_ERROR, "expected an error: " + where);
    MBX_FUZZ_CHECK(*mbx_last_error() != 0, "error without a message: " + where);
    MBX_FUZZ_CHECK(bytes == 12345, "bytes written on error: " + where);
  } else if (cuda_build) {
    MBX_FUZZ_CHECK(st == MBX_STATUS_OK && bytes > 0 && bytes % 256 == 0, where);
  } else {
    MBX_FUZZ_CHECK(st == MBX_STATUS_NO_DEVICE && bytes == 12345, where);
  }
}

// mbx_options_get on the fuzzed options: every option of an accepted struct
// reads back as text that mbx_options_set takes, and setting the texts on a
// copy reads back the same texts; an enum field outside its enum is refused
// with INVALID_ARGUMENT and a message.
void check_options_text(const Problem& q) {
  if (q.o.struct_size > sizeof(mbx_options_t)) return;  // the fuzzed size may exceed the struct
  mbx_options_t copy = q.o;
  for (int i = 0; i < mbx_option_count(); ++i) {
    const char* name = mbx_option_name(i);
    char text[MBX_OPTION_TEXT_MAX], back[MBX_OPTION_TEXT_MAX];
    const mbx_status_t st = mbx_options_get(&q.o, name, text, sizeof text);
    if (st != MBX_STATUS_OK) {
      MBX_FUZZ_CHECK(st == MBX_STATUS_INVALID_ARGUMENT && *mbx_last_error() != 0,
                     std::string("options_get ") + name + ": " + mbx_last_error());
      continue;
    }
    MBX_FUZZ_CHECK(mbx_options_set(&copy, name, text) == MBX_STATUS_OK,
                   std::string("options_set refuses options_get's text ") + name + " = " + text + ": " +
                       mbx_last_error());
    MBX_FUZZ_CHECK(mbx_options_get(&copy, name, back, sizeof back) == MBX_STATUS_OK &&
                       std::strcmp(text, back) == 0,
                   std::string("option text does not round-trip: ") + name + " = " + text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader rd(data, size);
  Problem q;
  decode(rd, &q, false);
  dump(q);
  MBX_FUZZ_CHECK(options_valid(q.o) == (mbx_options_validate(&q.o) == MBX_STATUS_OK),
                 std::string("mbx_options_validate disagrees with the documented ranges: ") + mbx_last_error());

  mbx_context_t* ctx = make_ctx(q, q.threads_a);
  Saved saved[5];
  const Stage stages[] = {S_MATCH, S_FORWARD, S_BACKWARD, S_FUSED, S_DECODE};
  for (Stage st : stages) {
    const int64_t nc = st == S_MATCH ? q.match_num_classes : 0;
    const bool expect = expect_ok(q, st, nc);
    const std::vector<int> outs = stage_outputs(st);
    for (int r : outs) std::memset(q.s[r].bytes(), kSentinel, q.s[r].cap);
    Snapshot before;
    before.take(q);
    const mbx_status_t status = call(q, ctx, st, nc);
    const std::string msg = mbx_last_error();
    const std::string where = std::string(stage_name(st)) + ": " + mbx_status_string(status) + " \"" + msg + "\"";
    if (status != MBX_STATUS_OK) {
      MBX_FUZZ_CHECK(!expect || (status == MBX_STATUS_UNSUPPORTED && may_be_unsupported(q, st)),
                     "a valid call failed: " + where);
      MBX_FUZZ_CHECK(!msg.empty(), "error without a message: " + where);
      MBX_FUZZ_CHECK(status != MBX_STATUS_INTERNAL_ERROR && status != MBX_STATUS_OUT_OF_MEMORY, where);
      for (int r = 0; r < kNumRoles; ++r)
        MBX_FUZZ_CHECK(std::memcmp(before.b[r].data(), q.s[r].bytes(), q.s[r].cap) == 0,
                       std::string("buffer ") + role_name(r) + " changed on error: " + where);
      continue;
    }
    MBX_FUZZ_CHECK(expect, "an invalid call succeeded: " + where);
    MBX_FUZZ_CHECK(msg.empty(), "OK with a stale message: " + where);
    for (int r = 0; r < kNumRoles; ++r) {
      const bool is_out = std::find(outs.begin(), outs.end(), r) != outs.end();
      if (is_out) {
        MBX_FUZZ_CHECK(guards_intact(q.s[r], before.b[r]), std::string("write outside ") + role_name(r) + ": " + where);
        MBX_FUZZ_CHECK(fully_written(q.s[r]), std::string("element of ") + role_name(r) + " not written: " + where);
      } else if (stage_reads(st, r)) {
        // (Buffers the stage does not use may legitimately hold an output
        // that a perturbation pointed into them.)
        MBX_FUZZ_CHECK(std::memcmp(before.b[r].data(), q.s[r].bytes(), q.s[r].cap) == 0,
                       std::string("input buffer ") + role_name(r) + " changed: " + where);
      }
    }
    saved[st].ok = true;
    saved[st].before = before;
    for (int r : outs) saved[st].out[r] = logical(q.s[r]);
    switch (st) {
      case S_MATCH: check_match(q, nc); break;
      case S_FORWARD: check_loss(q); break;
      case S_BACKWARD: check_grads(q); break;
      case S_FUSED: check_loss(q); check_grads(q); break;
      case S_DECODE: check_boxes(q); break;
    }
  }
  // Cross-stage consistency (same inputs, same context).
  if (saved[S_FUSED].ok && saved[S_FORWARD].ok) {
    MBX_FUZZ_CHECK(saved[S_FUSED].out[R_LOSS] == saved[S_FORWARD].out[R_LOSS], "fused loss != forward loss");
    MBX_FUZZ_CHECK(saved[S_FUSED].out[R_NUM_POS] == saved[S_FORWARD].out[R_NUM_POS], "fused num_pos != forward num_pos");
  }
  if (saved[S_FUSED].ok && saved[S_BACKWARD].ok) {
    MBX_FUZZ_CHECK(saved[S_FUSED].out[R_GRAD_LOC] == saved[S_BACKWARD].out[R_GRAD_LOC], "fused grad_loc != backward");
    MBX_FUZZ_CHECK(saved[S_FUSED].out[R_GRAD_CONF] == saved[S_BACKWARD].out[R_GRAD_CONF], "fused grad_conf != backward");
  }
  if (saved[S_FUSED].ok && saved[S_MATCH].ok && !q.s[R_NUM_POS].null_tensor)
    MBX_FUZZ_CHECK(saved[S_FUSED].out[R_NUM_POS] == saved[S_MATCH].out[R_NUM_POS], "match num_pos != loss num_pos");
  mbx_context_destroy(ctx);

  // Determinism: a fresh context (maybe another thread count), same results.
  // It also carries a caller workspace (host memory here), which the CPU
  // paths must ignore.
  mbx_context_t* ctx2 = make_ctx(q, q.threads_b);
  alignas(256) static unsigned char host_ws[1024];
  if (ctx2)  // (a null context is one of the fuzzed cases)
    MBX_FUZZ_CHECK(mbx_context_set_workspace(ctx2, host_ws, sizeof host_ws) == MBX_STATUS_OK,
                   mbx_last_error());
  for (Stage st : {S_MATCH, S_FUSED, S_DECODE}) {
    if (!saved[st].ok) continue;
    const int64_t nc = st == S_MATCH ? q.match_num_classes : 0;
    for (int r = 0; r < kNumRoles; ++r)
      std::memcpy(q.s[r].bytes(), saved[st].before.b[r].data(), q.s[r].cap);
    // (through mbx_run: also checks it equals the per-operation function)
    MBX_FUZZ_CHECK(call_run(q, ctx2, st, nc) == MBX_STATUS_OK, std::string("second run failed: ") + mbx_last_error());
    for (int r : stage_outputs(st))
      MBX_FUZZ_CHECK(logical(q.s[r]) == saved[st].out[r],
                     std::string("not deterministic: ") + stage_name(st) + " " + role_name(r));
  }
  mbx_context_destroy(ctx2);
  check_workspace_size(rd, q);
  check_options_text(q);
  return 0;
}
