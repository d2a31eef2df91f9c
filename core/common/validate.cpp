#include "common/validate.h"

#include <cmath>
#include <sstream>

namespace mbx {

namespace {
std::string num(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

double as_double(double v) { return v; }
double as_double(bool v) { return v ? 1.0 : 0.0; }
template <typename E>
double as_double(E v) {
  return static_cast<double>(static_cast<int>(v));
}

// What a value outside its row's range (common/options_table.h) should have
// been, or nullptr when it is inside.
const char* range_violation(double v, OptionRange range) {
  switch (range) {
    case OptionRange::kAny:
      return nullptr;
    case OptionRange::kUnit:
      return v >= 0.0 && v <= 1.0 ? nullptr : "expected a value in [0, 1]";
    case OptionRange::kPositive:
      return v > 0.0 && std::isfinite(v) ? nullptr : "expected a finite value > 0";
    case OptionRange::kNonNegative:
      return v >= 0.0 && std::isfinite(v) ? nullptr : "expected a finite value >= 0";
    case OptionRange::kFinite:
      return std::isfinite(v) ? nullptr : "expected a finite value";
  }
  return nullptr;
}

// The message is built only on failure: this runs on every call.
template <typename T>
void check_field(const char* name, const T& v, OptionRange range) {
  if (const char* expected = range_violation(as_double(v), range))
    fail(std::string("options.") + name + " = " + num(as_double(v)) + ": " + expected);
}
template <typename T>
void check_field(const char* name, const T (&v)[4], OptionRange range) {
  for (int k = 0; k < 4; ++k)
    if (const char* expected = range_violation(as_double(v[k]), range))
      fail(std::string("options.") + name + "[" + std::to_string(k) + "] = " +
           num(as_double(v[k])) + ": " + expected);
}

}  // namespace

void validate_options(const Options& o) {
#define MBX_X(name, kind, type, def, range, choices, doc) \
  check_field(#name, o.name, OptionRange::range);
  MBX_OPTION_TABLE(MBX_X)
#undef MBX_X
  // Rules between options.
  if (o.neg_threshold > o.pos_threshold)
    fail("options.neg_threshold = " + num(o.neg_threshold) + " > pos_threshold = " +
         num(o.pos_threshold) + ": expected neg_threshold <= pos_threshold");
  if (o.normalization == Normalization::kExternal &&
      (!(o.external_norm > 0.0) || !std::isfinite(o.external_norm)))
    fail("options.external_norm = " + num(o.external_norm) +
         ": EXTERNAL normalization needs a finite divisor > 0");
  if (o.mining_nms_threshold > 1.0)
    fail("options.mining_nms_threshold = " + num(o.mining_nms_threshold) +
         ": expected a value <= 1 (<= 0: no NMS)");
  if (o.mining == Mining::kHardExample && o.conf_loss == ConfLoss::kSigmoidFocal)
    fail("options.mining = HARD_EXAMPLE with conf_loss = SIGMOID_FOCAL: expected conf_loss "
         "SOFTMAX_CE or LOGISTIC (the focal loss does not mine)");
}

void validate_prior_row(const float* r, int64_t p, PriorFormat format) {
  const bool finite = std::isfinite(r[0]) && std::isfinite(r[1]) && std::isfinite(r[2]) &&
                      std::isfinite(r[3]);
  const bool ok = finite && (format == PriorFormat::kCenterSize ? (r[2] > 0.f && r[3] > 0.f)
                                                                : (r[2] > r[0] && r[3] > r[1]));
  if (ok) return;
  std::string what = !finite ? "a non-finite coordinate"
                     : format == PriorFormat::kCenterSize ? "w or h <= 0"
                                                          : "x2 <= x1 or y2 <= y1";
  fail("priors[" + std::to_string(p) + "] = (" + num(r[0]) + ", " + num(r[1]) + ", " +
       num(r[2]) + ", " + num(r[3]) + ") in " +
       (format == PriorFormat::kCenterSize ? "CENTER_SIZE" : "CORNERS") + " format has " + what +
       ": expected finite values with positive width and height");
}

void validate_priors(const float* priors, int64_t P, PriorFormat format) {
  for (int64_t p = 0; p < P; ++p) validate_prior_row(priors + 4 * p, p, format);
}

void validate_gt(const Options& o, int64_t B, int64_t G, const float* gt_boxes,
                 const int32_t* gt_labels, const int32_t* gt_counts, int64_t num_classes,
                 std::vector<uint8_t>* valid) {
  valid->assign(static_cast<size_t>(B * G), 0);
  for (int64_t b = 0; b < B; ++b) {
    const int32_t n = gt_counts[b];
    if (n < 0 || n > G)
      fail("gt_counts[" + std::to_string(b) + "] = " + std::to_string(n) +
           ": expected a count in [0, G] with G = " + std::to_string(G));
    for (int32_t g = 0; g < n; ++g) {
      const float* r = gt_boxes + (b * G + g) * 4;
      const int32_t label = gt_labels[b * G + g];
      if (label < 0 || (num_classes > 0 && label >= num_classes))
        fail("gt_labels[image " + std::to_string(b) + ", row " + std::to_string(g) + "] = " +
             std::to_string(label) + ": expected a class in [0, " +
             (num_classes > 0 ? std::to_string(num_classes) : std::string("inf")) + ")" +
             (num_classes > 0 ? std::string(" (K = ") + std::to_string(num_classes) +
                                    " object classes for this conf_loss and C)"
                              : std::string()));
      const bool finite = std::isfinite(r[0]) && std::isfinite(r[1]) && std::isfinite(r[2]) &&
                          std::isfinite(r[3]);
      const bool ok = finite && r[2] > r[0] && r[3] > r[1];
      if (!ok && o.invalid_gt == InvalidGt::kError)
        fail("gt_boxes[image " + std::to_string(b) + ", row " + std::to_string(g) + "] = (" +
             num(r[0]) + ", " + num(r[1]) + ", " + num(r[2]) + ", " + num(r[3]) + ") has " +
             (!finite ? "a non-finite coordinate" : "x2 <= x1 or y2 <= y1") +
             ": expected finite corners with x1 < x2 and y1 < y2 (or set invalid_gt = SKIP)");
      (*valid)[b * G + g] = ok ? 1 : 0;
    }
  }
}

void validate_gt_flags(int64_t B, int64_t G, const int32_t* gt_flags, const int32_t* gt_counts) {
  for (int64_t b = 0; b < B; ++b)
    for (int32_t g = 0; g < gt_counts[b]; ++g) {
      const int32_t f = gt_flags[b * G + g];
      if (f & ~int32_t(1))
        fail("gt_flags[image " + std::to_string(b) + ", row " + std::to_string(g) + "] = " +
             std::to_string(f) + ": only bit 0 (ignore region) is defined; the other bits are " +
             "reserved and must be 0");
    }
}

void validate_prior_levels(const int32_t* prior_levels, int64_t L, int64_t P) {
  int64_t sum = 0;
  for (int64_t l = 0; l < L; ++l) {
    if (prior_levels[l] < 0)
      fail("prior_levels[" + std::to_string(l) + "] = " + std::to_string(prior_levels[l]) +
           ": expected a prior count >= 0");
    sum += prior_levels[l];
  }
  if (sum != P)
    fail("prior_levels: the " + std::to_string(L) + " levels sum to " + std::to_string(sum) +
         " priors, expected P = " + std::to_string(P) + " (the priors per pyramid level, in prior order)");
}

}  // namespace mbx
