// IoU-family box losses (docs/SPEC.md §4.7), once for every path: the loss
// of one positive = 1 - GIoU / DIoU / CIoU of its decoded prediction
// (encode_math.h decode_box_f64) against its GT box, exactly torchvision
// 0.14's generalized_box_iou_loss / distance_box_iou_loss /
// complete_box_iou_loss with eps = 1e-7, and its gradient with respect to
// the offsets as torch's autograd takes it through those expressions and
// the decode: binary min/max split the gradient in halves at a tie, the
// intersection passes gradient only where it is positive (torchvision's
// mask), CIoU's alpha is a constant (torchvision computes it under no_grad).
// float64 throughout. Where torch's expressions are 0/0 (only for a
// degenerate prediction) the loss takes the limit stated in §4.7, so
// every finite prediction gives a finite loss and gradient.
#pragma once

#include <math.h>

#include "common/hd.h"
#include "common/types.h"
#include "encode/encode_math.h"

namespace mbx {

constexpr double kIouLossEps = 1e-7;                        // torchvision's eps
constexpr double kFourOverPiSquared = 0.40528473456935108578;  // 4 / pi^2 of CIoU's v

MBX_HD_INLINE bool is_iou_loss(LocLoss l) {
  return l == LocLoss::kGIoU || l == LocLoss::kDIoU || l == LocLoss::kCIoU;
}

// d max(a, b) / d a and d min(a, b) / d a as torch's autograd takes them:
// 1 or 0, and 1/2 at a tie.
MBX_HD_INLINE double max_share(double a, double b) { return a > b ? 1.0 : (a == b ? 0.5 : 0.0); }
MBX_HD_INLINE double min_share(double a, double b) { return a < b ? 1.0 : (a == b ? 0.5 : 0.0); }

// atan(w / h) of CIoU's aspect term: +-pi/2 for h = 0 as torch, and 0 for
// w = h = 0 (a point, where torch's 0/0 gives NaN).
MBX_HD_INLINE double aspect_angle(double w, double h) { return (w == 0.0 && h == 0.0) ? 0.0 : atan(w / h); }

// Loss of the corner box `b` against the GT corners `t`. g_box (nullable)
// receives d loss / d corners except for CIoU's aspect term, whose
// derivative d loss / d atan(w / h) goes to *g_aspect (0 otherwise).
MBX_HD_INLINE double iou_loss_box(LocLoss kind, const double b[4], const double t[4], double g_box[4],
                                  double* g_aspect) {
  const double x1 = b[0], y1 = b[1], x2 = b[2], y2 = b[3];
  const double X1 = t[0], Y1 = t[1], X2 = t[2], Y2 = t[3];
  const double eps = kIouLossEps;
  // Intersection and union (torchvision's _loss_inter_union).
  const double xk1 = x1 > X1 ? x1 : X1, yk1 = y1 > Y1 ? y1 : Y1;
  const double xk2 = x2 < X2 ? x2 : X2, yk2 = y2 < Y2 ? y2 : Y2;
  const bool overlap = yk2 > yk1 && xk2 > xk1;
  const double iw = xk2 - xk1, ih = yk2 - yk1;
  const double inter = overlap ? iw * ih : 0.0;
  const double w = x2 - x1, h = y2 - y1, tw = X2 - X1, th = Y2 - Y1;
  const double uni = w * h + tw * th - inter;
  const double den = uni + eps;
  // Without overlap the IoU is 0 (torch: 0 / den, NaN when an inverted box
  // makes den = 0); with overlap the box is upright and den > 0.
  const double iou = overlap ? inter / den : 0.0;
  // The enclosing box.
  const double xc1 = x1 < X1 ? x1 : X1, yc1 = y1 < Y1 ? y1 : Y1;
  const double xc2 = x2 > X2 ? x2 : X2, yc2 = y2 > Y2 ? y2 : Y2;
  const double cw = xc2 - xc1, ch = yc2 - yc1;

  double loss, g_union = 0.0, g_cw, g_ch;
  double g[4] = {0.0, 0.0, 0.0, 0.0};
  double g_a = 0.0;
  if (kind == LocLoss::kGIoU) {
    // 1 - iou + (area_c - union) / (area_c + eps); area_c >= the GT's area > 0
    const double area_c = cw * ch, ace = area_c + eps;
    loss = 1.0 - (iou - (area_c - uni) / ace);
    const double g_area_c = 1.0 / ace - (area_c - uni) / (ace * ace);
    g_cw = g_area_c * ch;
    g_ch = g_area_c * cw;
    g_union = -1.0 / ace;
  } else {
    // 1 - iou + centre distance^2 / (enclosing diagonal^2 + eps)
    const double diag = cw * cw + ch * ch + eps;
    const double dx = (x2 + x1) / 2.0 - (X1 + X2) / 2.0, dy = (y2 + y1) / 2.0 - (Y1 + Y2) / 2.0;
    const double cd = dx * dx + dy * dy;
    loss = 1.0 - iou + cd / diag;
    const double g_diag = -cd / (diag * diag);
    g_cw = g_diag * 2.0 * cw;
    g_ch = g_diag * 2.0 * ch;
    g[0] = g[2] = dx / diag;  // d/dx1 = d/dx2 = (2 dx / diag) / 2
    g[1] = g[3] = dy / diag;
    if (kind == LocLoss::kCIoU) {
      const double da = atan(tw / th) - aspect_angle(w, h);
      const double v = kFourOverPiSquared * da * da;
      const double alpha = v / (1.0 - iou + v + eps);  // a constant for the gradient
      loss += alpha * v;
      g_a = -2.0 * alpha * kFourOverPiSquared * da;
    }
  }
  if (g_aspect) *g_aspect = g_a;
  if (!g_box) return loss;
  // d loss / d iou = -1 on every kind.
  double g_inter = 0.0;
  if (overlap) {
    g_inter = -1.0 / den;
    g_union += inter / (den * den);
  }
  // union = w h + area_t - inter
  g[2] += g_union * h;
  g[0] -= g_union * h;
  g[3] += g_union * w;
  g[1] -= g_union * w;
  if (overlap) {
    const double gi = g_inter - g_union;
    const double g_iw = gi * ih, g_ih = gi * iw;
    g[2] += g_iw * min_share(x2, X2);
    g[0] -= g_iw * max_share(x1, X1);
    g[3] += g_ih * min_share(y2, Y2);
    g[1] -= g_ih * max_share(y1, Y1);
  }
  g[2] += g_cw * max_share(x2, X2);
  g[0] -= g_cw * min_share(x1, X1);
  g[3] += g_ch * max_share(y2, Y2);
  g[1] -= g_ch * min_share(y1, Y1);
  for (int k = 0; k < 4; ++k) g_box[k] = g[k];
  return loss;
}

// r / (1 + r^2) for r = w / h without overflow or 0/0: d atan(w/h) / d log w
// (0 for w = h = 0 and for h = 0, the limits).
MBX_HD_INLINE double aspect_log_slope(double w, double h) {
  if (w == 0.0 || h == 0.0) return 0.0;
  const double r = w / h;
  return fabs(r) > 1.0 ? 1.0 / (r + 1.0 / r) : r / (1.0 + r * r);
}

// The loss of one positive from its offsets d (loc, widened), the prior
// (centre, size) and its GT corners; gd (nullable) receives d loss / d d.
MBX_HD_INLINE double iou_loss_offsets(LocLoss kind, const double d[4], double pcx, double pcy, double pw,
                                      double ph, const EncodeParams& e, const float* gt, double gd[4]) {
  double box[4], g_box[4], g_a;
  decode_box_f64(d, pcx, pcy, pw, ph, e, box);
  const double t[4] = {gt[0], gt[1], gt[2], gt[3]};
  const double loss = iou_loss_box(kind, box, t, gd ? g_box : nullptr, &g_a);
  if (!gd) return loss;
  double g_log[2] = {0.0, 0.0};
  if (g_a != 0.0) {
    const double w = box[2] - box[0], h = box[3] - box[1];
    if (e.coding == 0) {
      // CENTER_SIZE: through the exponents, d atan(w/h) / d log w = r/(1+r^2)
      // = -d atan(w/h) / d log h (finite for any width, also underflowed).
      const double s = g_a * aspect_log_slope(w, h);
      g_log[0] = s;
      g_log[1] = -s;
    } else {
      // Corner codings: d atan(w/h) / dw = h / (w^2 + h^2), / dh = -w / (w^2 + h^2),
      // scaled by the larger side (no overflow); 0 at w = h = 0.
      double aw = 0.0, ah = 0.0;
      if (fabs(h) >= fabs(w) && h != 0.0) {
        const double r = w / h, q = 1.0 / (h * (1.0 + r * r));
        aw = q;
        ah = -r * q;
      } else if (w != 0.0) {
        const double r = h / w, q = 1.0 / (w * (1.0 + r * r));
        aw = r * q;
        ah = -q;
      }
      g_box[2] += g_a * aw;
      g_box[0] -= g_a * aw;
      g_box[3] += g_a * ah;
      g_box[1] -= g_a * ah;
    }
  }
  decode_box_backward(d, pw, ph, e, g_box, g_log, gd);
  return loss;
}

}  // namespace mbx
