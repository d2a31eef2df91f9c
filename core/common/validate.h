// Input checks of docs/SPEC.md §7 that look at values (options, priors, GT rows),
// shared by every path. Shape/dtype/device checks of the tensors are in
// capi/ (they are about DLPack). Every failure throws Error with a message
// naming the argument, image and row and what was expected.
#pragma once

#include <cstdint>
#include <vector>

#include "common/types.h"

namespace mbx {

void validate_options(const Options& o);

// priors [P,4] on the host: finite, and w, h > 0 (CORNERS: x2 > x1, y2 > y1).
void validate_priors(const float* priors, int64_t P, PriorFormat format);
// The same check of one row `r` (= priors[p]), with the same message.
void validate_prior_row(const float* r, int64_t p, PriorFormat format);

// priors [P,4] on a CUDA device (validate.cu): the same check run on the
// device, stream-ordered on `stream`; the first bad row (if any) is copied
// back and reported with validate_prior_row's message. One small
// device-to-host copy and one stream synchronisation, instead of copying
// all P rows to the host.
void validate_priors_device(const float* priors, int64_t P, PriorFormat format, int device_id,
                            void* stream);

// gt_counts in [0,G]; valid rows finite with x1 < x2, y1 < y2 (or marked
// skipped in *valid under InvalidGt::kSkip); labels in [0,K) (K = 0: >= 0).
// `valid` is resized to B*G and filled (1 = row used).
void validate_gt(const Options& o, int64_t B, int64_t G, const float* gt_boxes,
                 const int32_t* gt_labels, const int32_t* gt_counts, int64_t num_classes,
                 std::vector<uint8_t>* valid);

// gt_flags [B,G] on the host: the rows < gt_counts[b] use bit 0 (ignore
// region) only; the other bits are reserved and must be 0.
void validate_gt_flags(int64_t B, int64_t G, const int32_t* gt_flags, const int32_t* gt_counts);

// prior_levels [L] on the host: every entry >= 0 and their sum = P.
void validate_prior_levels(const int32_t* prior_levels, int64_t L, int64_t P);

}  // namespace mbx
