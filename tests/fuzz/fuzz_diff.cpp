// libFuzzer target: differential cpu-scalar (float64) vs cpu (float32 SIMD)
// on valid inputs only (same decoder as fuzz_api, valid_only: tame dyadic
// geometry at 1e-6..1e6 scales with exact IoU ties, logits quantised to
// multiples of 1/8 in [-16, 16] or of 78.125 up to |x| = 1e4; gt_flags with
// ignore regions, valid prior_levels and the 0.3 options). A call both paths
// answer UNSUPPORTED (a feature not in this build) is skipped.
//   conf_target, matched_gt, num_pos: exactly equal (docs/SPEC.md §2/§8: matching
//   decisions are made in double on every path);
//   losses, loc_target, gradients: within the golden tolerances
//   (tests/data/golden/README.md).
// Two places where float32 and float64 may legitimately choose differently
// are excluded from the gradient comparison, not from the rest:
//   - SOFTMAX_CE mining when the CEs at the selection boundary are within
//     1e-5 relative of each other (and the tied rows are not identical);
//   - L1-type loc gradients (sign(d)) where |loc - loc_target| is within
//     1e-4 (1 + |t|) of 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_common.h"

using namespace mbx_fuzz;

namespace {

struct Out {
  std::vector<int32_t> ct, mg, np, np2;
  std::vector<float> lt, gl, gc;
  double loss[2];
};

// *unsupported: the match answered UNSUPPORTED (a feature of may_be_unsupported
// not in this build); the outputs are then empty.
Out run(Problem& q, mbx_path_t path, bool* unsupported) {
  mbx_context_t* ctx = nullptr;
  MBX_FUZZ_CHECK(mbx_context_create(&ctx) == MBX_STATUS_OK, "create");
  MBX_FUZZ_CHECK(mbx_context_set_path(ctx, path) == MBX_STATUS_OK, "set_path");
  mbx_context_set_num_threads(ctx, 1);
  const int64_t K = q.o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE ? q.C - 1 : q.C;
  for (int r : {R_CONF_TARGET, R_MATCHED_GT, R_LOC_TARGET, R_NUM_POS, R_LOSS, R_GRAD_LOC, R_GRAD_CONF})
    std::memset(q.s[r].bytes(), kSentinel, q.s[r].cap);
  mbx_status_t st = call(q, ctx, S_MATCH, K);
  Out o;
  *unsupported = st == MBX_STATUS_UNSUPPORTED && may_be_unsupported(q, S_MATCH);
  if (*unsupported) {
    mbx_context_destroy(ctx);
    return o;
  }
  MBX_FUZZ_CHECK(st == MBX_STATUS_OK, std::string("valid match failed on ") + mbx_path_name(path) + ": " + mbx_last_error());
  const int64_t BP = q.B * q.P;
  o.ct.assign(q.s[R_CONF_TARGET].at<int32_t>(), q.s[R_CONF_TARGET].at<int32_t>() + BP);
  o.mg.assign(q.s[R_MATCHED_GT].at<int32_t>(), q.s[R_MATCHED_GT].at<int32_t>() + BP);
  o.np.assign(q.s[R_NUM_POS].at<int32_t>(), q.s[R_NUM_POS].at<int32_t>() + q.B);
  o.lt.assign(q.s[R_LOC_TARGET].at<float>(), q.s[R_LOC_TARGET].at<float>() + BP * 4);
  st = call(q, ctx, S_FUSED, 0);
  if (st == MBX_STATUS_UNSUPPORTED && may_be_unsupported(q, S_FUSED)) {
    *unsupported = true;
    mbx_context_destroy(ctx);
    return o;
  }
  MBX_FUZZ_CHECK(st == MBX_STATUS_OK, std::string("valid fused call failed on ") + mbx_path_name(path) + ": " + mbx_last_error());
  o.np2.assign(q.s[R_NUM_POS].at<int32_t>(), q.s[R_NUM_POS].at<int32_t>() + q.B);
  for (int k = 0; k < 2; ++k) o.loss[k] = out_value(q.s[R_LOSS], k);
  o.gl.assign(q.s[R_GRAD_LOC].at<float>(), q.s[R_GRAD_LOC].at<float>() + BP * 4);
  o.gc.assign(q.s[R_GRAD_CONF].at<float>(), q.s[R_GRAD_CONF].at<float>() + BP * q.C);
  mbx_context_destroy(ctx);
  return o;
}

// log-sum-exp(row) - row[0] in double.
double ce_background(const float* row, int64_t C) {
  double m = row[0];
  for (int64_t c = 1; c < C; ++c) m = std::max(m, static_cast<double>(row[c]));
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(row[c]) - m);
  return m + std::log(s) - row[0];
}

// True if float32 vs float64 CE could legitimately pick different negatives.
bool mining_ambiguous(const Problem& q, const Out& ref) {
  if (q.o.conf_loss != MBX_CONF_LOSS_SOFTMAX_CE || q.o.neg_pos_ratio <= 0) return false;
  const float* conf = const_cast<Problem&>(q).s[R_CONF].at<float>();
  for (int64_t b = 0; b < q.B; ++b) {
    std::vector<std::pair<double, int64_t>> neg;
    for (int64_t p = 0; p < q.P; ++p)
      if (ref.ct[b * q.P + p] == 0) neg.push_back({ce_background(conf + (b * q.P + p) * q.C, q.C), p});
    double k = std::ceil(q.o.neg_pos_ratio * ref.np[b]);
    if (q.o.clamp_num_neg) k = std::min(k, static_cast<double>(q.P - 1));
    const int64_t count = static_cast<int64_t>(std::min(k, static_cast<double>(neg.size())));
    if (count <= 0 || count >= static_cast<int64_t>(neg.size())) continue;
    std::sort(neg.begin(), neg.end(), [](const auto& a, const auto& c) {
      return a.first != c.first ? a.first > c.first : a.second < c.second;
    });
    const double vb = neg[count - 1].first, vn = neg[count].first;
    const double band = 1e-5 * std::max(1.0, std::fabs(vb));
    if (vb - vn > band) continue;
    // Everything within the band around the boundary must be the very same
    // logit row (then both paths compute one value and break ties by index).
    const float* first = nullptr;
    for (const auto& e : neg) {
      if (std::fabs(e.first - vb) > 2 * band) continue;
      const float* row = conf + (b * q.P + e.second) * q.C;
      if (!first) first = row;
      else if (std::memcmp(first, row, sizeof(float) * q.C) != 0) return true;
    }
  }
  return false;
}

void close_floats(const char* what, const std::vector<float>& got, const std::vector<float>& ref,
                  double atol_rel_max, double rtol, const std::vector<uint8_t>* skip = nullptr,
                  double atol_floor = 0) {
  double mx = 0;
  for (float v : ref) mx = std::max(mx, std::fabs(static_cast<double>(v)));
  for (size_t i = 0; i < ref.size(); ++i) {
    if (skip && (*skip)[i]) continue;
    const double e = std::fabs(static_cast<double>(got[i]) - ref[i]);
    MBX_FUZZ_CHECK(e <= atol_rel_max * mx + rtol * std::fabs(static_cast<double>(ref[i])) + atol_floor + 1e-30,
                   std::string(what) + "[" + std::to_string(i) + "]: cpu " + std::to_string(got[i]) +
                       " vs cpu-scalar " + std::to_string(ref[i]) + " (max " + std::to_string(mx) + ")" +
                       " diff " + std::to_string(e));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader rd(data, size);
  Problem q;
  decode(rd, &q, true);
  dump(q);
  MBX_FUZZ_CHECK(options_valid(q.o), "decoder made invalid options");
  bool unsupported_a = false, unsupported_b = false;
  const Out a = run(q, MBX_PATH_CPU_SCALAR, &unsupported_a);
  const Out b = run(q, MBX_PATH_CPU, &unsupported_b);
  MBX_FUZZ_CHECK(unsupported_a == unsupported_b, "cpu and cpu-scalar disagree about UNSUPPORTED");
  if (unsupported_a) return 0;
  MBX_FUZZ_CHECK(a.ct == b.ct, "conf_target differs between cpu-scalar and cpu");
  MBX_FUZZ_CHECK(a.mg == b.mg, "matched_gt differs between cpu-scalar and cpu");
  MBX_FUZZ_CHECK(a.np == b.np && a.np2 == b.np2 && a.np == a.np2, "num_pos differs");
  close_floats("loc_target", b.lt, a.lt, 1e-5, 1e-5);
  // Losses: rtol 1e-4. The cpu path keeps CE at full relative precision
  // ((m - x_t) + log1p(r), see core/pipeline/cpu_kernels_impl.h), so tiny
  // losses next to big logits need no extra allowance; the absolute term
  // only covers sums that are themselves ~0.
  double norm_min = 1;
  if (q.o.normalization == MBX_NORM_EXTERNAL) norm_min = std::min(1.0, q.o.external_norm);
  const double loss_atol = 1e-30 * static_cast<double>(q.B * q.P * std::max<int64_t>(q.C, 4)) / norm_min;
  for (int k = 0; k < 2; ++k) {
    MBX_FUZZ_CHECK(std::isfinite(a.loss[k]) && std::isfinite(b.loss[k]), "non-finite loss on valid tame input");
    MBX_FUZZ_CHECK(std::fabs(a.loss[k] - b.loss[k]) <= 1e-4 * std::fabs(a.loss[k]) + loss_atol,
                   "loss " + std::to_string(k) + ": cpu " + std::to_string(b.loss[k]) + " vs cpu-scalar " +
                       std::to_string(a.loss[k]) + " (atol " + std::to_string(loss_atol) + ")");
  }
  // grad_loc: skip sign-ambiguous elements of L1-type losses.
  std::vector<uint8_t> skip(a.gl.size(), 0);
  const float* loc = q.s[R_LOC].at<float>();
  for (size_t i = 0; i < a.gl.size(); ++i) {
    const double d = static_cast<double>(loc[i]) - a.lt[i];
    if (std::fabs(d) <= 1e-4 * (1.0 + std::fabs(a.lt[i]))) skip[i] = 1;
  }
  // Gradient floors: float32 softmax - onehot (and sigmoid) have an absolute
  // error ~ulp(1) before normalisation, whatever the magnitude of the rest.
  const double up = 3.0;  // largest |upstream gradient| the decoder uses
  const double gfloor = 4.0 * 1.2e-7 * up / norm_min;
  close_floats("grad_loc", b.gl, a.gl, 1e-4, 1e-4, &skip, gfloor);
  // Softmax gradients from exp((x - m) - l): no rounded lse is subtracted
  // from the logits, so large logits keep the plain golden tolerance.
  const double rt_conf = 1e-4;
  if (!mining_ambiguous(q, a)) close_floats("grad_conf", b.gc, a.gc, rt_conf, rt_conf, nullptr, gfloor);
  return 0;
}
