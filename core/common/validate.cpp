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
}  // namespace

void validate_options(const Options& o) {
  auto in01 = [](double v) { return v >= 0.0 && v <= 1.0; };
  if (!in01(o.pos_threshold))
    fail("options.pos_threshold = " + num(o.pos_threshold) + ": expected a value in [0, 1]");
  if (!in01(o.neg_threshold))
    fail("options.neg_threshold = " + num(o.neg_threshold) + ": expected a value in [0, 1]");
  if (o.neg_threshold > o.pos_threshold)
    fail("options.neg_threshold = " + num(o.neg_threshold) + " > pos_threshold = " +
         num(o.pos_threshold) + ": expected neg_threshold <= pos_threshold");
  for (int k = 0; k < 4; ++k)
    if (!(o.variances[k] > 0.0) || !std::isfinite(o.variances[k]))
      fail("options.variances[" + std::to_string(k) + "] = " + num(o.variances[k]) +
           ": expected a finite value > 0");
  if (!(o.encode_min_gt_wh >= 0.0) || !std::isfinite(o.encode_min_gt_wh))
    fail("options.encode_min_gt_wh = " + num(o.encode_min_gt_wh) +
         ": expected a finite value >= 0 (0 = off)");
  if (!(o.smooth_l1_beta >= 0.0) || !std::isfinite(o.smooth_l1_beta))
    fail("options.smooth_l1_beta = " + num(o.smooth_l1_beta) + ": expected a finite value >= 0");
  if (std::isnan(o.neg_pos_ratio) || std::isinf(o.neg_pos_ratio))
    fail("options.neg_pos_ratio = " + num(o.neg_pos_ratio) + ": expected a finite value");
  if (!in01(o.focal_alpha))
    fail("options.focal_alpha = " + num(o.focal_alpha) + ": expected a value in [0, 1]");
  if (!(o.focal_gamma >= 0.0) || !std::isfinite(o.focal_gamma))
    fail("options.focal_gamma = " + num(o.focal_gamma) + ": expected a finite value >= 0");
  if (o.normalization == Normalization::kExternal &&
      (!(o.external_norm > 0.0) || !std::isfinite(o.external_norm)))
    fail("options.external_norm = " + num(o.external_norm) +
         ": EXTERNAL normalization needs a finite divisor > 0");
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

}  // namespace mbx
