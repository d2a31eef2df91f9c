// The benchmark workloads of issue 5, built through the C API:
//   SSD300:    B=32, SSD300 VOC priors (P=8732), C=21, 1..6 GT per image
//   RetinaNet: B=8, 640x832 anchors (P=99765), C=80, 1..15 GT per image
// Logits ~ N(0, 2), loc ~ N(0, 1), VOC/COCO-like boxes.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mbx/mbx.h"

namespace mbx_bench {

struct Workload {
  std::string name;
  mbx_preset_t preset;
  int64_t B, P, C, G;
  std::vector<float> priors, gt_boxes, loc, conf, grad_loc, grad_conf;
  std::vector<int32_t> gt_labels, gt_counts, conf_target, num_pos;
  std::vector<int32_t> prior_levels;  // RetinaNet: anchors per pyramid level (assigner = ATSS)
  double loss[2];
  std::vector<int64_t> s_pri, s_box, s_lab, s_cnt, s_loc, s_conf, s_bp, s_two, s_lv;
  DLTensor priors_t, gt_boxes_t, gt_labels_t, gt_counts_t, loc_t, conf_t, grad_loc_t, grad_conf_t,
      conf_target_t, num_pos_t, loss_t, prior_levels_t;

  // Bytes the fused call must read and write at the least: loc, conf (read),
  // grad_loc, grad_conf (written), priors, GT.
  double floor_bytes() const {
    return 4.0 * (2.0 * B * P * (4 + C) + P * 4 + B * G * 6);
  }
};

inline DLTensor make(void* data, DLDataType dt, std::vector<int64_t>& shape) {
  DLTensor t;
  std::memset(&t, 0, sizeof t);
  t.data = data;
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int>(shape.size());
  t.dtype = dt;
  t.shape = shape.data();
  return t;
}

// kind: "ssd300" or "retinanet"; B/C/G may be overridden (scaling tables).
inline Workload make_workload(const std::string& kind, mbx_preset_t preset, int64_t B = 0,
                              int64_t C = 0, int64_t max_gt = 0, uint64_t seed = 42) {
  Workload w;
  w.name = kind;
  w.preset = preset;
  const bool ssd = kind == "ssd300";
  w.B = B ? B : (ssd ? 32 : 8);
  w.C = C ? C : (ssd ? 21 : 80);
  w.G = max_gt ? max_gt : (ssd ? 6 : 15);
  if (ssd) {
    if (mbx_priors_ssd_count(MBX_SSD300_VOC, &w.P)) throw std::runtime_error(mbx_last_error());
  } else {
    if (mbx_priors_retinanet_count(640, 832, &w.P)) throw std::runtime_error(mbx_last_error());
  }
  const DLDataType f32{kDLFloat, 32, 1}, f64{kDLFloat, 64, 1}, i32{kDLInt, 32, 1};
  w.priors.resize(w.P * 4);
  w.s_pri = {w.P, 4};
  w.priors_t = make(w.priors.data(), f32, w.s_pri);
  if (ssd ? mbx_priors_ssd(MBX_SSD300_VOC, &w.priors_t) : mbx_priors_retinanet(640, 832, &w.priors_t))
    throw std::runtime_error(mbx_last_error());
  if (!ssd) {
    w.prior_levels.resize(MBX_RETINANET_NUM_LEVELS);
    w.s_lv = {MBX_RETINANET_NUM_LEVELS};
    w.prior_levels_t = make(w.prior_levels.data(), DLDataType{kDLInt, 32, 1}, w.s_lv);
    if (mbx_priors_retinanet_levels(640, 832, &w.prior_levels_t)) throw std::runtime_error(mbx_last_error());
  }
  mbx_options_t o;
  mbx_options_init(&o, preset);
  // Presets on the other prior format get the same boxes converted.
  const bool want_cs = o.prior_format == MBX_PRIOR_CENTER_SIZE;
  if (ssd != want_cs) {
    for (int64_t p = 0; p < w.P; ++p) {
      float* r = &w.priors[4 * p];
      if (want_cs) {
        const float x1 = r[0], y1 = r[1], x2 = r[2], y2 = r[3];
        r[0] = (x1 + x2) / 2; r[1] = (y1 + y2) / 2; r[2] = x2 - x1; r[3] = y2 - y1;
      } else {
        const float cx = r[0], cy = r[1], bw = r[2], bh = r[3];
        r[0] = cx - bw / 2; r[1] = cy - bh / 2; r[2] = cx + bw / 2; r[3] = cy + bh / 2;
      }
    }
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<float> nd(0.f, 1.f);
  const double W = ssd ? 1.0 : 832.0, H = ssd ? 1.0 : 640.0;
  const int64_t K = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE ? w.C - 1 : w.C;
  w.gt_boxes.assign(w.B * w.G * 4, 0.f);
  w.gt_labels.assign(w.B * w.G, 0);
  w.gt_counts.resize(w.B);
  for (int64_t b = 0; b < w.B; ++b) {
    w.gt_counts[b] = 1 + static_cast<int32_t>(rng() % w.G);
    for (int64_t g = 0; g < w.gt_counts[b]; ++g) {
      const double bw = (0.05 + 0.7 * u(rng)) * W, bh = (0.05 + 0.7 * u(rng)) * H;
      const double x = u(rng) * (W - bw), y = u(rng) * (H - bh);
      float* r = &w.gt_boxes[(b * w.G + g) * 4];
      r[0] = float(x); r[1] = float(y); r[2] = float(x + bw); r[3] = float(y + bh);
      w.gt_labels[b * w.G + g] = static_cast<int32_t>(rng() % K);
    }
  }
  w.loc.resize(w.B * w.P * 4);
  w.conf.resize(w.B * w.P * w.C);
  for (auto& v : w.loc) v = nd(rng);
  for (auto& v : w.conf) v = 2.f * nd(rng);
  w.grad_loc.resize(w.loc.size());
  w.grad_conf.resize(w.conf.size());
  w.conf_target.resize(w.B * w.P);
  w.num_pos.resize(w.B);
  w.s_box = {w.B, w.G, 4};
  w.s_lab = {w.B, w.G};
  w.s_cnt = {w.B};
  w.s_loc = {w.B, w.P, 4};
  w.s_conf = {w.B, w.P, w.C};
  w.s_bp = {w.B, w.P};
  w.s_two = {2};
  w.gt_boxes_t = make(w.gt_boxes.data(), f32, w.s_box);
  w.gt_labels_t = make(w.gt_labels.data(), i32, w.s_lab);
  w.gt_counts_t = make(w.gt_counts.data(), i32, w.s_cnt);
  w.loc_t = make(w.loc.data(), f32, w.s_loc);
  w.conf_t = make(w.conf.data(), f32, w.s_conf);
  w.grad_loc_t = make(w.grad_loc.data(), f32, w.s_loc);
  w.grad_conf_t = make(w.grad_conf.data(), f32, w.s_conf);
  w.conf_target_t = make(w.conf_target.data(), i32, w.s_bp);
  w.num_pos_t = make(w.num_pos.data(), i32, w.s_cnt);
  w.loss_t = make(w.loss, f64, w.s_two);
  return w;
}

enum class Op { kMatch, kForward, kBackward, kFused };

// assigner = ATSS on the RetinaNet workload: the same call through mbx_run
// with the pyramid's prior_levels.
inline mbx_status_t run_op_levels(mbx_context_t* ctx, const mbx_options_t& o, Workload& w, Op op) {
  const int64_t K = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE ? w.C - 1 : w.C;
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = &w.priors_t;
  t.gt_boxes = &w.gt_boxes_t;
  t.gt_labels = &w.gt_labels_t;
  t.gt_counts = &w.gt_counts_t;
  t.prior_levels = &w.prior_levels_t;
  mbx_op_t id = MBX_OP_MATCH;
  if (op == Op::kMatch) {
    t.num_classes = K;
    t.conf_target = &w.conf_target_t;
    t.num_pos = &w.num_pos_t;
  } else {
    t.loc = &w.loc_t;
    t.conf = &w.conf_t;
    if (op != Op::kBackward) { t.loss = &w.loss_t; t.num_pos = &w.num_pos_t; }
    if (op != Op::kForward) { t.grad_loc = &w.grad_loc_t; t.grad_conf = &w.grad_conf_t; }
    id = op == Op::kForward ? MBX_OP_LOSS_FORWARD
                            : (op == Op::kBackward ? MBX_OP_LOSS_BACKWARD : MBX_OP_LOSS_FORWARD_BACKWARD);
  }
  return mbx_run(ctx, &o, id, &t);
}

inline mbx_status_t run_op(mbx_context_t* ctx, const mbx_options_t& o, Workload& w, Op op) {
  const int64_t K = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE ? w.C - 1 : w.C;
  if (o.assigner == MBX_ASSIGNER_ATSS && !w.prior_levels.empty()) return run_op_levels(ctx, o, w, op);
  switch (op) {
    case Op::kMatch:
      return mbx_match(ctx, &o, K, &w.priors_t, &w.gt_boxes_t, &w.gt_labels_t, &w.gt_counts_t,
                       &w.conf_target_t, nullptr, nullptr, &w.num_pos_t);
    case Op::kForward:
      return mbx_loss_forward(ctx, &o, &w.priors_t, &w.gt_boxes_t, &w.gt_labels_t, &w.gt_counts_t,
                              &w.loc_t, &w.conf_t, &w.loss_t, &w.num_pos_t);
    case Op::kBackward:
      return mbx_loss_backward(ctx, &o, &w.priors_t, &w.gt_boxes_t, &w.gt_labels_t, &w.gt_counts_t,
                               &w.loc_t, &w.conf_t, nullptr, &w.grad_loc_t, &w.grad_conf_t);
    case Op::kFused:
      return mbx_loss_forward_backward(ctx, &o, &w.priors_t, &w.gt_boxes_t, &w.gt_labels_t,
                                       &w.gt_counts_t, &w.loc_t, &w.conf_t, nullptr, &w.loss_t,
                                       &w.num_pos_t, &w.grad_loc_t, &w.grad_conf_t);
  }
  return MBX_STATUS_INTERNAL_ERROR;
}

}  // namespace mbx_bench
