// The one declaration of every option and every preset (docs/SPEC.md §5, §9).
//
// From these two tables come: the fields of the core's mbx::Options
// (common/types.h), the range checks and their messages
// (common/validate.cpp), and in capi/ the defaults of mbx_options_init, the
// text parser of mbx_options_set, the formatter of mbx_options_get and the
// introspection calls (mbx_option_count / mbx_option_name / ...) that the
// bindings read instead of listing options themselves.
//
// Adding an option: append one row here (at the end: rows are in the order
// of the C struct's fields, which is append-only) and the field of the same
// name at the end of mbx_options_t in capi/include/mbx/mbx.h, then write the
// code that uses it. Adding a preset: append one row to MBX_PRESET_TABLE and
// the matching value to mbx_preset_t.
#pragma once

namespace mbx {

// How an option's value is stored and written as text.
enum class OptionKind {
  kEnum,   // int32 enum value; text: one of the row's choices
  kBool,   // int32 0/1; text: true/false (also 1/0, True/False, TRUE/FALSE)
  kInt,    // int32; text: a decimal integer
  kReal,   // double; text: a number in C locale (inf/nan accepted, then range-checked)
  kReal4,  // double[4]; text: four comma-separated numbers
};

// The range a value must lie in; checked when options are used
// (validate_options), with the message the range names.
enum class OptionRange {
  kAny,          // enums and booleans: their own value set
  kUnit,         // [0, 1]
  kPositive,     // finite and > 0
  kNonNegative,  // finite and >= 0
  kFinite,       // finite
};

}  // namespace mbx

// X(name, kind, core_type, default, range, choices, doc)
//   name       the option's name: the C struct field, the mbx_options_set key,
//              the golden case.json key and the bindings' keyword
//   kind       OptionKind
//   core_type  the type of the field in mbx::Options (enum class for kEnum)
//   default    the default as text (mbx_options_set syntax), before presets
//   range      OptionRange
//   choices    kEnum: the value names in the order of their pinned values;
//              otherwise ""
//   doc        one line
#define MBX_OPTION_TABLE(X)                                                                       \
  X(prior_format, kEnum, PriorFormat, "CENTER_SIZE", kAny, "CENTER_SIZE,CORNERS",                  \
    "layout of the priors tensor: (cx, cy, w, h) or (x1, y1, x2, y2)")                             \
  X(force_match, kEnum, ForceMatch, "BEST_PRIOR_PER_GT", kAny,                                     \
    "NONE,BEST_PRIOR_PER_GT,LOW_QUALITY,BIPARTITE",                                                \
    "which priors become positive regardless of the thresholds")                                   \
  X(pos_threshold, kReal, double, "0.5", kUnit, "", "a prior is positive if its best IoU >= this") \
  X(neg_threshold, kReal, double, "0.5", kUnit, "",                                                \
    "a prior is negative if its best IoU < this (<= pos_threshold; between: ignored)")             \
  X(variances, kReal4, double, "0.1,0.1,0.2,0.2", kPositive, "",                                   \
    "divisors of the encoded (x, y, w, h) offsets")                                                \
  X(encode_min_gt_wh, kReal, double, "0", kNonNegative, "",                                        \
    "GT width and height clamped to >= this inside the log terms (0 = off)")                       \
  X(loc_loss, kEnum, LocLoss, "SMOOTH_L1", kAny, "SMOOTH_L1,L1,L2,GIOU,DIOU,CIOU",                \
    "box regression loss: on the encoded offsets, or 1 - an IoU of the decoded box")               \
  X(conf_loss, kEnum, ConfLoss, "SOFTMAX_CE", kAny, "SOFTMAX_CE,SIGMOID_FOCAL,LOGISTIC",           \
    "classification loss: softmax CE or per-class logistic with mining, or sigmoid focal")         \
  X(smooth_l1_beta, kReal, double, "1", kNonNegative, "", "smooth L1 transition point (0 = L1)")   \
  X(neg_pos_ratio, kReal, double, "3", kFinite, "",                                                \
    "SOFTMAX_CE: hard negatives per positive (<= 0: every negative)")                              \
  X(clamp_num_neg, kBool, bool, "true", kAny, "",                                                  \
    "SOFTMAX_CE: number of negatives clamped to P - 1 (ssd.pytorch)")                              \
  X(neg_overflow, kEnum, NegOverflow, "EXCLUDE", kAny, "EXCLUDE,DOUBLE_COUNT_POSITIVES",           \
    "SOFTMAX_CE: what fills the mining slots beyond the available negatives")                      \
  X(focal_alpha, kReal, double, "0.25", kUnit, "", "SIGMOID_FOCAL: weight of the positive term")   \
  X(focal_gamma, kReal, double, "2", kNonNegative, "", "SIGMOID_FOCAL: focusing exponent")         \
  X(normalization, kEnum, Normalization, "TOTAL_POSITIVES", kAny,                                  \
    "TOTAL_POSITIVES,PER_IMAGE,NONE,EXTERNAL,BATCH_SIZE,FULL", "how the summed losses are divided") \
  X(loc_average_coords, kBool, bool, "false", kAny, "",                                            \
    "the loc term is also divided by 4 (mean over coordinates), under every normalization")        \
  X(external_norm, kReal, double, "1", kAny, "",                                                   \
    "EXTERNAL: the divisor (e.g. an all-reduced positive count); finite and > 0 when used")        \
  X(invalid_gt, kEnum, InvalidGt, "ERROR", kAny, "ERROR,SKIP",                                     \
    "a valid GT row with non-finite or empty corners: an error, or skipped like padding")          \
  X(mining, kEnum, Mining, "MAX_NEGATIVE", kAny, "MAX_NEGATIVE,HARD_EXAMPLE",                      \
    "SOFTMAX_CE/LOGISTIC: mine negatives by neg_pos_ratio, or keep the top examples by loss")      \
  X(mining_sample_size, kInt, int32_t, "64", kPositive, "",                                        \
    "HARD_EXAMPLE: examples kept per image (>= 1)")                                                \
  X(mining_nms_threshold, kReal, double, "0", kFinite, "",                                         \
    "HARD_EXAMPLE: NMS IoU threshold over the decoded predictions (<= 0: no NMS; <= 1)")           \
  X(box_coding, kEnum, BoxCoding, "CENTER_SIZE", kAny, "CENTER_SIZE,CORNER,CORNER_SIZE",           \
    "box encoding: SSD centre/size offsets, corner offsets, or corner offsets / prior size")       \
  X(encode_variance_in_target, kBool, bool, "false", kAny, "",                                     \
    "targets and decoding without variances; the loss divides the residual by them (Caffe)")     \
  X(assigner, kEnum, Assigner, "MAX_IOU", kAny, "MAX_IOU,ATSS",                                    \
    "positives by IoU thresholds and force_match, or by ATSS (needs prior_levels)")                \
  X(atss_topk, kInt, int32_t, "9", kPositive, "", "ATSS: nearest priors per GT and level (>= 1)")  \
  X(ignore_iof_threshold, kReal, double, "0.5", kFinite, "",                                       \
    "a prior covered by an ignore region (gt_flags) by more than this is ignored (<= 0: off)")

// X(name, overrides, doc): presets in the order of their pinned mbx_preset_t
// values. `overrides` is applied to the table's defaults with the
// mbx_options_set syntax ("name=value" separated by spaces).
#define MBX_PRESET_TABLE(X)                                                                       \
  X(ssd_pytorch, "", "amdegroot/ssd.pytorch MultiBoxLoss")                                         \
  X(torchvision_ssd, "prior_format=CORNERS clamp_num_neg=false", "torchvision SSD compute_loss")   \
  X(yhenon_retinanet,                                                                              \
    "prior_format=CORNERS neg_threshold=0.4 force_match=NONE encode_min_gt_wh=1 "                  \
    "smooth_l1_beta=0.1111111111111111 conf_loss=SIGMOID_FOCAL normalization=PER_IMAGE "           \
    "loc_average_coords=true",                                                                     \
    "yhenon/pytorch-retinanet FocalLoss")                                                          \
  X(torchvision_retinanet,                                                                         \
    "prior_format=CORNERS neg_threshold=0.4 force_match=LOW_QUALITY variances=1,1,1,1 "            \
    "loc_loss=L1 smooth_l1_beta=0 conf_loss=SIGMOID_FOCAL normalization=PER_IMAGE",                \
    "torchvision RetinaNet compute_loss")                                                          \
  X(caffe_ssd, "prior_format=CORNERS force_match=BIPARTITE clamp_num_neg=false",                   \
    "weiliu89/caffe SSD MultiBoxLoss (ssd_pascal.py)")                                             \
  X(sgrvinod_ssd, "loc_loss=L1 clamp_num_neg=false loc_average_coords=true",                       \
    "sgrvinod a-PyTorch-Tutorial-to-Object-Detection MultiBoxLoss")
