// The matching formulas of docs/SPEC.md §2, once for every path: the prior
// geometry, a box's area, the IoU and the IoF of ignore regions, in float64.
//
// The IoUs decide matching, so every path must round them identically: on
// regular anchor grids a fused multiply-add (or float32 IoUs) changes real
// assignments. Hence:
//  - on the device the helpers use the explicit round-to-nearest intrinsics
//    (__dadd_rn, __dmul_rn, ...), which are never contracted into an FMA,
//    whatever --fmad says (match.cu is compiled with --fmad=false as well);
//  - on the host they are plain operators, and every translation unit that
//    evaluates them must be compiled with -ffp-contract=off (core/CMakeLists.txt
//    sets it for match_scalar.cpp, match_cpu.cpp and match_kernels_<isa>.cpp).
// Keep the operation order of each formula: it is the specification's.
#pragma once

#include "common/hd.h"

namespace mbx {

// IEEE double operations, correctly rounded, never fused.
MBX_HD_INLINE double exact_add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
MBX_HD_INLINE double exact_sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
MBX_HD_INLINE double exact_mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
MBX_HD_INLINE double exact_div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

// gt_flags bit 0: the row is an ignore region (docs/SPEC.md §2.7).
constexpr int32_t kGtFlagIgnore = 1;

// One box in float64 with its area: a GT box as matching sees it.
struct MatchBox {
  double x1, y1, x2, y2, area;
};

// One prior in every form the algorithms need: corners and area (what the
// IoU uses) and centre/size (what encoding uses).
struct PriorBox {
  double x1, y1, x2, y2, area;
  double cx, cy, w, h;
};

// (x2 - x1) * (y2 - y1).
MBX_HD_INLINE double box_area(double x1, double y1, double x2, double y2) {
  return exact_mul(exact_sub(x2, x1), exact_sub(y2, y1));
}

MBX_HD_INLINE MatchBox match_box(const float* b) {
  MatchBox g;
  g.x1 = b[0];
  g.y1 = b[1];
  g.x2 = b[2];
  g.y2 = b[3];
  g.area = box_area(g.x1, g.y1, g.x2, g.y2);
  return g;
}

// The float32 prior p4 = (a, b, c, d) in float64. CENTER_SIZE: corners
// (cx - w/2, cy - h/2, cx + w/2, cy + h/2); CORNERS: centre ((x1+x2)/2,
// (y1+y2)/2) and size (x2-x1, y2-y1) (docs/SPEC.md §2, §3).
MBX_HD_INLINE PriorBox prior_box(const float* p4, bool corners) {
  const double a = p4[0], b = p4[1], c = p4[2], d = p4[3];
  PriorBox r;
  if (!corners) {
    r.cx = a; r.cy = b; r.w = c; r.h = d;
    r.x1 = exact_sub(a, exact_div(c, 2.0));
    r.y1 = exact_sub(b, exact_div(d, 2.0));
    r.x2 = exact_add(a, exact_div(c, 2.0));
    r.y2 = exact_add(b, exact_div(d, 2.0));
  } else {
    r.x1 = a; r.y1 = b; r.x2 = c; r.y2 = d;
    r.cx = exact_div(exact_add(a, c), 2.0);
    r.cy = exact_div(exact_add(b, d), 2.0);
    r.w = exact_sub(c, a);
    r.h = exact_sub(d, b);
  }
  r.area = box_area(r.x1, r.y1, r.x2, r.y2);
  return r;
}

// Side of the intersection of [a1, a2] and [b1, b2]: min(a2, b2) -
// max(a1, b1), negative when they are disjoint.
MBX_HD_INLINE double intersection_side(double a1, double a2, double b1, double b2) {
  return exact_sub(a2 < b2 ? a2 : b2, a1 > b1 ? a1 : b1);
}

// inter / ((area_g + area_p) - inter) with inter = iw * ih, for sides that
// are already >= 0.
MBX_HD_INLINE double iou_of_sides(double iw, double ih, double garea, double parea) {
  const double inter = exact_mul(iw, ih);
  return exact_div(inter, exact_sub(exact_add(garea, parea), inter));
}

// IoU of docs/SPEC.md §2: intersection sides clamped at 0, then
// iou_of_sides. The SIMD kernels (match_kernels_impl.h, iou_batch) are its
// vector twin.
MBX_HD_INLINE double iou(const MatchBox& g, double px1, double py1, double px2, double py2,
                         double parea) {
  double iw = intersection_side(g.x1, g.x2, px1, px2);
  double ih = intersection_side(g.y1, g.y2, py1, py2);
  iw = iw > 0.0 ? iw : 0.0;
  ih = ih > 0.0 ? ih : 0.0;
  return iou_of_sides(iw, ih, g.area, parea);
}

// IoF of docs/SPEC.md §2.7 (intersection over the prior's area, as
// mmdetection's bbox_overlaps(mode='iof') with the prior first): the
// intersection of iou(), clamped at 0, divided by the prior's area. Decides
// which priors an ignore region swallows, so it is exact like iou().
MBX_HD_INLINE double iof(const MatchBox& g, double px1, double py1, double px2, double py2,
                         double parea) {
  double iw = intersection_side(g.x1, g.x2, px1, px2);
  double ih = intersection_side(g.y1, g.y2, py1, py2);
  iw = iw > 0.0 ? iw : 0.0;
  ih = ih > 0.0 ? ih : 0.0;
  return exact_div(exact_mul(iw, ih), parea);
}

// Whether the boxes overlap (intersection width and height both > 0), by
// comparisons alone: for IEEE doubles min - max > 0 exactly when min > max
// (gradual underflow; NaN and inf - inf give false both ways). Where it is
// true both intersection sides are > 0 and iou()'s clamps do nothing, so
// the fast paths go straight to iou_of_sides; where it is false they skip
// the division.
MBX_HD_INLINE bool overlaps(const MatchBox& g, double px1, double py1, double px2, double py2) {
  return (g.x2 < px2 ? g.x2 : px2) > (g.x1 > px1 ? g.x1 : px1) &&
         (g.y2 < py2 ? g.y2 : py2) > (g.y1 > py1 ? g.y1 : py1);
}

}  // namespace mbx
