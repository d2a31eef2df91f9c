// Encoding and decoding of one box (docs/SPEC.md §3), once for the CPU and
// the CUDA paths: the SSD paper's eq. (2) with variances,
//   t = ((gcx-pcx)/(v0 pw), (gcy-pcy)/(v1 ph), log(gw/pw)/v2, log(gh/ph)/v3),
// evaluated in float64; and Caffe's CORNER / CORNER_SIZE codings
//   t = ((gx1-px1)/s_w/v0, (gy1-py1)/s_h/v1, (gx2-px2)/s_w/v2, (gy2-py2)/s_h/v3)
// with s = 1 (CORNER) or the prior's size (CORNER_SIZE).
#pragma once

#include <math.h>

#include "common/hd.h"

namespace mbx {

// The options encoding reads, in a form a kernel argument can carry.
struct EncodeParams {
  double v[4];    // variances (all 1 under encode_variance_in_target)
  double min_wh;  // encode_min_gt_wh (<= 0: no clamp)
  int coding;     // BoxCoding: 0 CENTER_SIZE, 1 CORNER, 2 CORNER_SIZE
};

// t of a prior (centre pcx, pcy, size pw, ph) against GT box `gt` (corners).
MBX_HD_INLINE void encode_box(const float* gt, double pcx, double pcy, double pw, double ph,
                              const EncodeParams& e, double t[4]) {
  const double x1 = gt[0], y1 = gt[1], x2 = gt[2], y2 = gt[3];
  if (e.coding != 0) {  // CORNER (/ 1) or CORNER_SIZE (/ prior size)
    const double sw = e.coding == 2 ? pw : 1.0, sh = e.coding == 2 ? ph : 1.0;
    t[0] = (x1 - (pcx - pw / 2.0)) / sw / e.v[0];
    t[1] = (y1 - (pcy - ph / 2.0)) / sh / e.v[1];
    t[2] = (x2 - (pcx + pw / 2.0)) / sw / e.v[2];
    t[3] = (y2 - (pcy + ph / 2.0)) / sh / e.v[3];
    return;
  }
  const double gcx = (x1 + x2) / 2.0, gcy = (y1 + y2) / 2.0;
  double gw = x2 - x1, gh = y2 - y1;
  // pytorch-retinanet clamps the GT size to >= 1 pixel inside the logs only;
  // the centres keep the raw size.
  if (e.min_wh > 0.0) {
    gw = gw > e.min_wh ? gw : e.min_wh;
    gh = gh > e.min_wh ? gh : e.min_wh;
  }
  t[0] = (gcx - pcx) / (e.v[0] * pw);
  t[1] = (gcy - pcy) / (e.v[1] * ph);
  t[2] = log(gw / pw) / e.v[2];
  t[3] = log(gh / ph) / e.v[3];
}

// exp() argument clamp of the size terms when decoding (torchvision's
// bbox_xform_clip = log(1000/16)): a wild prediction cannot overflow.
constexpr double kDecodeClip = 4.135166556742356;  // log(1000/16)

// Offsets d of a prior back to a corner box in float64 (the inverse of
// encode_box); the IoU-family losses use it unrounded, mbx_decode rounds it
// to float32 (decode_box).
MBX_HD_INLINE void decode_box_f64(const double d[4], double pcx, double pcy, double pw, double ph,
                                  const EncodeParams& e, double out[4]) {
  if (e.coding != 0) {  // CORNER / CORNER_SIZE: corners moved by the offsets
    const double sw = e.coding == 2 ? pw : 1.0, sh = e.coding == 2 ? ph : 1.0;
    out[0] = (pcx - pw / 2.0) + d[0] * e.v[0] * sw;
    out[1] = (pcy - ph / 2.0) + d[1] * e.v[1] * sh;
    out[2] = (pcx + pw / 2.0) + d[2] * e.v[2] * sw;
    out[3] = (pcy + ph / 2.0) + d[3] * e.v[3] * sh;
    return;
  }
  double dw = d[2] * e.v[2], dh = d[3] * e.v[3];
  if (dw > kDecodeClip) dw = kDecodeClip;
  if (dh > kDecodeClip) dh = kDecodeClip;
  const double cx = pcx + d[0] * e.v[0] * pw;
  const double cy = pcy + d[1] * e.v[1] * ph;
  const double w = pw * exp(dw), h = ph * exp(dh);
  out[0] = cx - w / 2.0;
  out[1] = cy - h / 2.0;
  out[2] = cx + w / 2.0;
  out[3] = cy + h / 2.0;
}

MBX_HD_INLINE void decode_box(const float* d, double pcx, double pcy, double pw, double ph,
                              const EncodeParams& e, float out[4]) {
  const double dd[4] = {d[0], d[1], d[2], d[3]};
  double box[4];
  decode_box_f64(dd, pcx, pcy, pw, ph, e, box);
  for (int k = 0; k < 4; ++k) out[k] = static_cast<float>(box[k]);
}

// The derivative of decode_box_f64: d loss / d offsets `gd` from d loss /
// d corners `g` and, for CENTER_SIZE, d loss / d (clamped exponents dw, dh)
// `g_log[2]` of terms that depend on the size directly. As torch.clamp's
// backward, an exponent beyond the clamp passes no gradient, one at it
// passes it (NaN passes too).
MBX_HD_INLINE void decode_box_backward(const double d[4], double pw, double ph, const EncodeParams& e,
                                       const double g[4], const double g_log[2], double gd[4]) {
  if (e.coding != 0) {
    const double sw = e.coding == 2 ? pw : 1.0, sh = e.coding == 2 ? ph : 1.0;
    gd[0] = g[0] * e.v[0] * sw;
    gd[1] = g[1] * e.v[1] * sh;
    gd[2] = g[2] * e.v[2] * sw;
    gd[3] = g[3] * e.v[3] * sh;
    return;
  }
  const double dw = d[2] * e.v[2], dh = d[3] * e.v[3];
  const double w = pw * exp(dw > kDecodeClip ? kDecodeClip : dw);
  const double h = ph * exp(dh > kDecodeClip ? kDecodeClip : dh);
  gd[0] = (g[0] + g[2]) * e.v[0] * pw;  // both x corners move with cx
  gd[1] = (g[1] + g[3]) * e.v[1] * ph;
  // x1 = cx - w/2, x2 = cx + w/2 and dw/d(exponent) = w
  gd[2] = dw > kDecodeClip ? 0.0 : ((g[2] - g[0]) / 2.0 * w + g_log[0]) * e.v[2];
  gd[3] = dh > kDecodeClip ? 0.0 : ((g[3] - g[1]) / 2.0 * h + g_log[1]) * e.v[3];
}

}  // namespace mbx
