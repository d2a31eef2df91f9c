// Helpers for the C++ tests: host tensors as DLTensors, a small problem
// builder, and a one-call runner for any path.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "mbx/mbx.h"

namespace mbx_test {

template <typename T>
struct DLType;
template <> struct DLType<float> { static constexpr DLDataType v{kDLFloat, 32, 1}; };
template <> struct DLType<double> { static constexpr DLDataType v{kDLFloat, 64, 1}; };
template <> struct DLType<int32_t> { static constexpr DLDataType v{kDLInt, 32, 1}; };
template <> struct DLType<uint16_t> { static constexpr DLDataType v{kDLFloat, 16, 1}; };

template <typename T>
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<T> data;
  DLTensor t{};
  HostTensor() = default;
  HostTensor(std::vector<int64_t> s, T fill = T()) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.assign(static_cast<size_t>(n), fill);
  }
  HostTensor(const HostTensor& o) : shape(o.shape), data(o.data) {}
  HostTensor& operator=(const HostTensor& o) { shape = o.shape; data = o.data; return *this; }
  DLTensor* dl() {
    t.data = data.data();
    t.device = {kDLCPU, 0};
    t.ndim = static_cast<int>(shape.size());
    t.dtype = DLType<T>::v;
    t.shape = shape.data();
    t.strides = nullptr;
    t.byte_offset = 0;
    return &t;
  }
  T& operator[](size_t i) { return data[i]; }
};

// A random detection problem (boxes in the unit square).
struct Problem {
  int64_t B, P, C, G;
  HostTensor<float> priors, gt_boxes, loc, conf;
  HostTensor<int32_t> gt_labels, gt_counts;
};

inline Problem random_problem(uint64_t seed, int64_t B, int64_t P, int64_t C, int64_t G,
                              bool center_size, bool softmax, float logit_sd = 2.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> cu(0.1f, 0.9f), wu(0.05f, 0.5f);
  std::normal_distribution<float> nd(0.f, 1.f);
  Problem pr{B, P, C, G, HostTensor<float>({P, 4}), HostTensor<float>({B, G, 4}),
             HostTensor<float>({B, P, 4}), HostTensor<float>({B, P, C}),
             HostTensor<int32_t>({B, G}), HostTensor<int32_t>({B})};
  for (int64_t p = 0; p < P; ++p) {
    float cx = cu(rng), cy = cu(rng), w = wu(rng), h = wu(rng);
    float* r = &pr.priors[4 * p];
    if (center_size) { r[0] = cx; r[1] = cy; r[2] = w; r[3] = h; }
    else { r[0] = cx - w / 2; r[1] = cy - h / 2; r[2] = cx + w / 2; r[3] = cy + h / 2; }
  }
  const int64_t K = softmax ? C - 1 : C;
  for (int64_t b = 0; b < B; ++b) {
    pr.gt_counts[b] = static_cast<int32_t>(rng() % (G + 1));
    for (int64_t g = 0; g < G; ++g) {
      float cx = cu(rng), cy = cu(rng), w = wu(rng), h = wu(rng);
      float* r = &pr.gt_boxes[(b * G + g) * 4];
      r[0] = cx - w / 2; r[1] = cy - h / 2; r[2] = cx + w / 2; r[3] = cy + h / 2;
      pr.gt_labels[b * G + g] = static_cast<int32_t>(rng() % K);
    }
  }
  for (auto& v : pr.loc.data) v = nd(rng);
  for (auto& v : pr.conf.data) v = logit_sd * nd(rng);
  return pr;
}

struct Result {
  mbx_status_t status = MBX_STATUS_OK;
  HostTensor<int32_t> conf_target, matched_gt, num_pos;
  HostTensor<float> loc_target, grad_loc, grad_conf;
  HostTensor<double> loss;
};

// Outputs for a problem, filled with a sentinel (-7) so untouched ones show.
inline Result make_result(const Problem& pr) {
  Result r;
  r.conf_target = HostTensor<int32_t>({pr.B, pr.P}, -7);
  r.matched_gt = HostTensor<int32_t>({pr.B, pr.P}, -7);
  r.num_pos = HostTensor<int32_t>({pr.B}, -7);
  r.loc_target = HostTensor<float>({pr.B, pr.P, 4}, -7.f);
  r.grad_loc = HostTensor<float>({pr.B, pr.P, 4}, -7.f);
  r.grad_conf = HostTensor<float>({pr.B, pr.P, pr.C}, -7.f);
  r.loss = HostTensor<double>({2}, -7.0);
  return r;
}

// match + fused forward/backward on `path` with `threads`.
inline Result run_all(Problem& pr, const mbx_options_t& o, mbx_path_t path, int threads,
                      const double* upstream = nullptr) {
  Result r = make_result(pr);
  mbx_context_t* ctx = nullptr;
  mbx_context_create(&ctx);
  mbx_context_set_path(ctx, path);
  mbx_context_set_num_threads(ctx, threads);
  const int64_t K = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE ? pr.C - 1 : pr.C;
  r.status = mbx_match(ctx, &o, K, pr.priors.dl(), pr.gt_boxes.dl(), pr.gt_labels.dl(),
                       pr.gt_counts.dl(), r.conf_target.dl(), r.matched_gt.dl(), r.loc_target.dl(),
                       nullptr);
  if (r.status == MBX_STATUS_OK) {
    HostTensor<double> up({2});
    if (upstream) { up[0] = upstream[0]; up[1] = upstream[1]; }
    r.status = mbx_loss_forward_backward(ctx, &o, pr.priors.dl(), pr.gt_boxes.dl(),
                                         pr.gt_labels.dl(), pr.gt_counts.dl(), pr.loc.dl(),
                                         pr.conf.dl(), upstream ? up.dl() : nullptr, r.loss.dl(),
                                         r.num_pos.dl(), r.grad_loc.dl(), r.grad_conf.dl());
  }
  mbx_context_destroy(ctx);
  return r;
}

inline mbx_options_t preset(mbx_preset_t p) {
  mbx_options_t o;
  mbx_options_init(&o, p);
  return o;
}

}  // namespace mbx_test
