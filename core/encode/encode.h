// Box encoding and decoding (SPEC §3), the SSD paper's eq. (2) with
// variances: t = ((gcx-pcx)/(v0 pw), (gcy-pcy)/(v1 ph), log(gw/pw)/v2,
// log(gh/ph)/v3). Evaluated in float64.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/types.h"

namespace mbx {

struct PriorGeometry;

inline void encode_box(const float* gt, double pcx, double pcy, double pw, double ph,
                       const Options& o, double t[4]) {
  const double x1 = gt[0], y1 = gt[1], x2 = gt[2], y2 = gt[3];
  const double gcx = (x1 + x2) / 2.0, gcy = (y1 + y2) / 2.0;
  double gw = x2 - x1, gh = y2 - y1;
  // pytorch-retinanet clamps the GT size to >= 1 pixel inside the logs only;
  // the centres keep the raw size.
  if (o.encode_min_gt_wh > 0.0) {
    gw = gw > o.encode_min_gt_wh ? gw : o.encode_min_gt_wh;
    gh = gh > o.encode_min_gt_wh ? gh : o.encode_min_gt_wh;
  }
  t[0] = (gcx - pcx) / (o.variances[0] * pw);
  t[1] = (gcy - pcy) / (o.variances[1] * ph);
  t[2] = std::log(gw / pw) / o.variances[2];
  t[3] = std::log(gh / ph) / o.variances[3];
}

// exp() argument clamp of the size terms when decoding (torchvision's
// bbox_xform_clip = log(1000/16)): a wild prediction cannot overflow.
constexpr double kDecodeClip = 4.135166556742356;  // log(1000/16)

inline void decode_box(const float* d, double pcx, double pcy, double pw, double ph,
                       const Options& o, float out[4]) {
  double dw = d[2] * o.variances[2], dh = d[3] * o.variances[3];
  if (dw > kDecodeClip) dw = kDecodeClip;
  if (dh > kDecodeClip) dh = kDecodeClip;
  const double cx = pcx + d[0] * o.variances[0] * pw;
  const double cy = pcy + d[1] * o.variances[1] * ph;
  const double w = pw * std::exp(dw), h = ph * std::exp(dh);
  out[0] = static_cast<float>(cx - w / 2.0);
  out[1] = static_cast<float>(cy - h / 2.0);
  out[2] = static_cast<float>(cx + w / 2.0);
  out[3] = static_cast<float>(cy + h / 2.0);
}

// Decode a batch of offsets [B,P,4] into corner boxes on the CPU.
void decode_cpu(const Options& o, const PriorGeometry& pg, int64_t B, const float* loc,
                float* boxes, int num_threads);

}  // namespace mbx
