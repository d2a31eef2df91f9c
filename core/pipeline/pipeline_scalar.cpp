// MBX_PATH_CPU_SCALAR: the specification as plain, single-threaded float64
// C++ — readable, and the yardstick of the fast paths in the tests. Writes
// outputs only after everything is computed.
//
// The cpu path runs its HARD_EXAMPLE / LOGISTIC losses through the same
// steps (run_cpu_mined), bitwise with the same results: images in parallel,
// the fast matching (bit-identical decisions), the rankings decided from
// float32 SIMD bounds with the exact float64 loss of only the rows that the
// bounds cannot place (softmax_ce/hard_example_cpu.h), and the gradients
// written straight into the outputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "common/half.h"
#include "common/parallel.h"
#include "encode/encode.h"
#include "focal/focal.h"
#include "loc_loss/iou_loss_math.h"
#include "loc_loss/loc_loss.h"
#include "match/atss.h"
#include "match/match.h"
#include "normalize/normalize.h"
#include "pipeline/cpu_kernels.h"
#include "pipeline/pipeline.h"
#include "softmax_ce/hard_example_cpu.h"
#include "softmax_ce/hard_example_math.h"
#include "softmax_ce/logistic_math.h"
#include "softmax_ce/softmax_ce.h"

namespace mbx {

void read_upstream(const Outputs& out, double* up_loc, double* up_conf) {
  *up_loc = *up_conf = 1.0;
  if (!out.grad_loss) return;
  if (out.grad_loss_dtype == DType::kF64) {
    *up_loc = static_cast<const double*>(out.grad_loss)[0];
    *up_conf = static_cast<const double*>(out.grad_loss)[1];
  } else {
    *up_loc = static_cast<const float*>(out.grad_loss)[0];
    *up_conf = static_cast<const float*>(out.grad_loss)[1];
  }
}

void write_losses(const Outputs& out, double loss_loc, double loss_conf) {
  if (!out.loss) return;
  // A NaN loss (NaN inputs) is the one quiet NaN: its sign and payload
  // would otherwise depend on the order in which the NaNs met.
  if (std::isnan(loss_loc)) loss_loc = std::numeric_limits<double>::quiet_NaN();
  if (std::isnan(loss_conf)) loss_conf = std::numeric_limits<double>::quiet_NaN();
  if (out.loss_dtype == DType::kF64) {
    static_cast<double*>(out.loss)[0] = loss_loc;
    static_cast<double*>(out.loss)[1] = loss_conf;
  } else {
    static_cast<float*>(out.loss)[0] = static_cast<float>(loss_loc);
    static_cast<float*>(out.loss)[1] = static_cast<float>(loss_conf);
  }
}

namespace {

// The regression loss of positive prior p of image b, the sum over its 4
// coordinates of SMOOTH_L1 / L1 (loc_loss.h) or L2 = 0.5 d^2 (Caffe's
// EuclideanLoss) of the residual d = (loc - t) / div, or one IoU-family
// term of its decoded box (iou_loss_math.h, docs/SPEC.md §4.7); g
// (nullable) receives the derivative w.r.t. its 4 loc values.
double positive_loc_loss(const Options& o, const Inputs& in, const PriorGeometry& pg, const EncodeParams& enc,
                         const double* loc_target, const double div[4], int64_t b, int64_t p, int32_t g_row,
                         double g[4]) {
  const int64_t i = (b * in.P + p) * 4;
  double loc[4];
  for (int k = 0; k < 4; ++k) loc[k] = load_float(in.loc, in.loc_dtype, i + k);
  if (is_iou_loss(o.loc_loss))
    return iou_loss_offsets(o.loc_loss, loc, pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], enc,
                            in.gt_boxes + (b * in.G + g_row) * 4, g);
  const bool l1 = o.loc_is_l1(), l2 = o.loc_loss == LocLoss::kL2;
  double sum = 0.0;
  for (int k = 0; k < 4; ++k) {
    // div = 1 (exact) unless encode_variance_in_target: then the residual is
    // (loc - t) / variance, and the true derivative has the 1 / variance
    // that Caffe's backward leaves out.
    const double d = (loc[k] - loc_target[i + k]) / div[k];
    sum += loc_residual_value(d, l1, l2, o.smooth_l1_beta);
    if (g) g[k] = (l2 ? d : loc_loss_grad(d, l1, o.smooth_l1_beta)) / div[k];
  }
  return sum;
}

// LOGISTIC: sum over the C columns of the sigmoid cross-entropy of x_c
// against the one-hot target (column `target`, logistic_math.h), and
// optionally its gradient sigmoid(x_c) - [c == target] into g (scaled by s).
double logistic_row(const Inputs& in, int64_t base, int64_t C, int32_t target, double s,
                    double* g) {
  double sum = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double x = load_float(in.conf, in.conf_dtype, base + c);
    sum += logistic_value(x, c == target);
    if (g) g[c] = logistic_grad(x, c == target) * s;
  }
  return sum;
}

// Softmax CE of one row against `target`.
double softmax_ce_row(const Inputs& in, int64_t base, int64_t C, int32_t target,
                      std::vector<double>* row, double* m, double* l) {
  for (int64_t c = 0; c < C; ++c) (*row)[c] = load_float(in.conf, in.conf_dtype, base + c);
  softmax_row_stats<double>(row->data(), C, m, l);
  return (*m - (*row)[target]) + *l;
}

// body(b) for every image: in order on this thread when num_threads == 1
// (the cpu-scalar path), else images in parallel (the cpu path's use for the
// HARD_EXAMPLE / LOGISTIC losses). Images are independent and every sum
// across images is formed afterwards in image order, so the results are
// bitwise the same either way.
template <typename Body>
void for_images(int64_t B, int num_threads, Body&& body) {
  if (num_threads == 1 || B <= 1) {
    for (int64_t b = 0; b < B; ++b) body(b);
    return;
  }
  tbb::task_arena arena = make_arena(num_threads);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
      for (int64_t b = r.begin(); b < r.end(); ++b) body(b);
    });
  });
}

// The float32 row x of the conf input at `base` (a copy in `tmp` unless float32).
const float* conf_row_f32(const Inputs& in, int64_t base, int64_t C, float* tmp) {
  if (in.conf_dtype == DType::kF32) return static_cast<const float*>(in.conf) + base;
  for (int64_t c = 0; c < C; ++c) tmp[c] = load_float(in.conf, in.conf_dtype, base + c);
  return tmp;
}

// A gradient output of `n` elements of `dtype` from element i on, zeroed.
void zero_elems(void* base, DType dtype, int64_t i, int64_t n, const CpuRowKernels* fast) {
  if (fast && dtype == DType::kF32) {  // streaming stores (cpu_kernels.h)
    fast->zero_fill(static_cast<float*>(base) + i, n);
    fast->store_fence();
    return;
  }
  const size_t es = dtype == DType::kF32 ? 4 : dtype == DType::kF64 ? 8 : 2;
  std::memset(static_cast<char*>(base) + i * es, 0, static_cast<size_t>(n) * es);
}

// fast: null for cpu-scalar; the cpu path's row kernels for run_cpu_mined.
void run_impl(const Options& o, const Inputs& in, const Outputs& out, int num_threads,
              const CpuRowKernels* fast) {
  const int64_t B = in.B, P = in.P, C = in.C;
  PriorGeometry pg;
  build_prior_geometry(in.priors, P, o.prior_format, &pg);
  const EncodeParams enc = encode_params(o);

  // --- matching + encoding ------------------------------------------------
  std::vector<int32_t> conf_target(B * P), matched_gt(B * P);
  std::vector<double> loc_target(B * P * 4, 0.0);
  std::vector<int64_t> num_pos(B);
  const bool atss = o.assigner == Assigner::kAtss;
  const AtssPlan plan = atss ? atss_plan(o, in) : AtssPlan();
  if (fast && atss)  // the fast matching: bit-identical decisions (match.h, atss.h)
    match_batch_atss_cpu(o, plan, in, pg, conf_target.data(), matched_gt.data(), num_pos.data(), num_threads);
  else if (fast)
    match_batch_cpu(o, in, pg, conf_target.data(), matched_gt.data(), num_pos.data(), num_threads);
  for_images(B, num_threads, [&](int64_t b) {
    ImageGt gt;
    image_gt_rows(in, b, &gt);
    if (!fast)
      num_pos[b] = atss ? match_image_atss_scalar(o, plan, gt, pg, &conf_target[b * P], &matched_gt[b * P])
                        : match_image_scalar(o, gt, pg, &conf_target[b * P], &matched_gt[b * P]);
    for (int64_t p = 0; p < P; ++p) {
      const int32_t g = matched_gt[b * P + p];
      if (g >= 0)
        encode_box(gt.boxes + 4 * g, pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], enc,
                   &loc_target[(b * P + p) * 4]);
    }
  });

  const bool losses = in.loc != nullptr && (out.wants_loss() || out.wants_grad());
  std::vector<double> grad_loc, grad_conf;
  double loss_loc = 0.0, loss_conf = 0.0;
  // Positives counted by the loss: the matching's, less those HARD_EXAMPLE
  // mining drops (docs/SPEC.md §4.6).
  std::vector<int64_t> loss_pos = num_pos;
  const bool hard = o.mining == Mining::kHardExample && o.conf_loss != ConfLoss::kSigmoidFocal;
  std::vector<uint8_t> kept;  // HARD_EXAMPLE: the prior is in the loss
  double div[4];
  loc_residual_divisors(o, div);
  if (losses && hard) {
    kept.assign(B * P, 0);
    const bool nms = o.mining_nms_threshold > 0.0;
    const int64_t take = std::min<int64_t>(o.mining_sample_size, P);
    for_images(B, num_threads, [&](int64_t b) {
      std::vector<double> row(C);
      std::vector<uint64_t> key(fast ? 0 : P);
      std::vector<int32_t> order(P);
      std::vector<float> boxes(nms ? P * 4 : 0);
      const int32_t* t = &conf_target[b * P];
      // Priors in ignore regions are not ranked (docs/SPEC.md §2.7).
      std::vector<uint8_t> region(P, 0);
      ImageGt gt;
      image_gt_rows(in, b, &gt);
      if (ignore_active(o, gt)) ignore_mask(o, gt, pg, 0, P, region.data());
      // The mining loss of prior p: classification + regression, float64.
      const auto loss_of = [&](int64_t p) {
        const int64_t base = (b * P + p) * C;
        const int32_t target = t[p] > 0 ? t[p] : 0;
        double v;
        if (o.conf_loss == ConfLoss::kLogistic) {
          v = logistic_row(in, base, C, target, 0.0, nullptr);
        } else {
          double m, l;
          v = softmax_ce_row(in, base, C, target, &row, &m, &l);
        }
        if (t[p] > 0)
          v += positive_loc_loss(o, in, pg, enc, loc_target.data(), div, b, p, matched_gt[b * P + p], nullptr);
        return v;
      };
      const ExactKey exact_key = [&](int32_t p) { return hard_example_rank_key(loss_of(p)); };
      std::vector<KeyBounds> bounds(fast ? P : 0);
      std::vector<float> xrow(fast ? C : 0), m(0), l(0);
      LogisticBounds logistic(fast ? *fast : cpu_row_kernels(), in, b);
      if (fast && o.conf_loss == ConfLoss::kSoftmaxCE) {  // the image's row statistics
        m.resize(P);
        l.resize(P);
        const float* x = static_cast<const float*>(in.conf) + b * P * C;
        const bool f32 = in.conf_dtype == DType::kF32, nonfinite = f32 && any_nonfinite(x, P * C);
        if (f32)
          fast->softmax_rows(x, P, C, m.data(), l.data());
        for (int64_t p = 0; p < P; ++p) {
          const float* xr = f32 ? x + p * C : conf_row_f32(in, (b * P + p) * C, C, xrow.data());
          if (!f32) fast->softmax_rows(xr, 1, C, &m[p], &l[p]);
          if ((!f32 || nonfinite) && any_nonfinite(xr, C)) m[p] = NAN;  // -> the exact route
        }
      }
      int64_t n_cand = 0;
      for (int64_t p = 0; p < P; ++p) {
        if (region[p] && t[p] < 0) continue;
        if (fast) {  // bounds of the loss; the exact value only where they cannot decide
          const int32_t target = t[p] > 0 ? t[p] : 0;
          double err = 0.0, a;
          if (o.conf_loss == ConfLoss::kLogistic)
            a = logistic.approx(p, target, &err);
          else
            a = approx_softmax_ce(m[p], l[p], load_float(in.conf, in.conf_dtype, (b * P + p) * C + target), C,
                                  &err);
          if (t[p] > 0) {
            a += positive_loc_loss(o, in, pg, enc, loc_target.data(), div, b, p, matched_gt[b * P + p], nullptr);
            err += 1e-14 * std::fabs(a);  // the two roundings of the sum
          }
          bounds[p] = key_bounds(a, err);
        } else {
          key[p] = exact_key(static_cast<int32_t>(p));
        }
        order[n_cand++] = static_cast<int32_t>(p);
      }
      order.resize(n_cand);
      // Highest loss first; ties (and the order of NaNs) by the lower index.
      const auto before = [&](int32_t a, int32_t c) { return hard_example_before(key[a], a, key[c], c); };
      uint8_t* keep = &kept[b * P];
      if (!nms) {
        // Only the set of the first `take` matters: a selection, O(P).
        const int64_t n_keep = std::min(take, n_cand);
        if (fast)
          exact_top_k(order.data(), n_cand, n_keep, bounds.data(), exact_key);
        else if (n_keep < n_cand)
          std::nth_element(order.begin(), order.begin() + n_keep, order.end(), before);
        for (int64_t r = 0; r < n_keep; ++r) keep[order[r]] = 1;
      } else {
        // Greedy NMS over the decoded predictions in ranking order: a box is
        // kept if its IoU with every kept box is <= the threshold; the first
        // `take` kept boxes are the sample. O(P log P + P take) per image.
        // (fast: ranked exactly chunk by chunk, as far as the NMS reads.)
        int64_t ranked = 0;
        if (!fast) std::sort(order.begin(), order.end(), before), ranked = n_cand;
        for (int64_t p = 0; p < P; ++p) {
          float d[4];
          for (int k = 0; k < 4; ++k) d[k] = load_float(in.loc, in.loc_dtype, (b * P + p) * 4 + k);
          decode_box(d, pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], enc, &boxes[p * 4]);
        }
        std::vector<MatchBox> sel;
        for (int64_t r = 0; r < n_cand && static_cast<int64_t>(sel.size()) < take; ++r) {
          if (r == ranked)
            ranked = exact_order_next(order.data(), n_cand, ranked, std::max<int64_t>(4 * take, 256), bounds.data(),
                                      exact_key);
          const int32_t p = order[r];
          const MatchBox bp = match_box(&boxes[p * 4]);
          bool ok = true;
          for (const MatchBox& q : sel)
            if (nms_suppresses(bp, q, o.mining_nms_threshold)) { ok = false; break; }
          if (ok) { sel.push_back(bp); keep[p] = 1; }
        }
      }
      int64_t n = 0;
      for (int64_t p = 0; p < P; ++p) n += (keep[p] && t[p] > 0) ? 1 : 0;
      loss_pos[b] = n;
    });
  }
  if (losses) {
    std::vector<double> loc_scale(B), conf_scale(B);
    normalization_scales(o, B, P, loss_pos.data(), loc_scale.data(), conf_scale.data());
    double up_loc = 1.0, up_conf = 1.0;
    if (out.wants_grad()) read_upstream(out, &up_loc, &up_conf);
    // fast: the gradients go straight into the outputs (rows zeroed per
    // image, then the loss rows written), with the same float64 values.
    if (out.grad_loc && !fast) grad_loc.assign(B * P * 4, 0.0);
    if (out.grad_conf && !fast) grad_conf.assign(B * P * C, 0.0);

    // --- regression loss on positives -------------------------------------
    std::vector<double> loc_sums(B), conf_sums(B);
    for_images(B, num_threads, [&](int64_t b) {
      double sum = 0.0, g4[4];
      if (fast && out.grad_loc) zero_elems(out.grad_loc, in.loc_dtype, b * P * 4, P * 4, fast);
      for (int64_t p = 0; p < P; ++p) {
        if (conf_target[b * P + p] <= 0 || (hard && !kept[b * P + p])) continue;
        double* g = !out.grad_loc ? nullptr : fast ? g4 : &grad_loc[(b * P + p) * 4];
        sum += positive_loc_loss(o, in, pg, enc, loc_target.data(), div, b, p, matched_gt[b * P + p], g);
        if (g)
          for (int k = 0; k < 4; ++k) g[k] = g[k] * loc_scale[b] * up_loc;
        if (g && fast)
          for (int k = 0; k < 4; ++k) store_float(out.grad_loc, in.loc_dtype, (b * P + p) * 4 + k, g[k]);
      }
      loc_sums[b] = sum;
    });
    for (int64_t b = 0; b < B; ++b) loss_loc += loc_sums[b] * loc_scale[b];

    // --- classification loss ----------------------------------------------
    for_images(B, num_threads, [&](int64_t b) {
      std::vector<double> row(C);
      const int32_t* t = &conf_target[b * P];
      double sum = 0.0;
      if (o.conf_loss == ConfLoss::kLogistic || (hard && o.conf_loss == ConfLoss::kSoftmaxCE)) {
        // LOGISTIC (either mining) and SOFTMAX_CE under HARD_EXAMPLE.
        std::vector<double> weight(P, 0.0), loss_bg;
        if (hard) {
          for (int64_t p = 0; p < P; ++p) weight[p] = kept[b * P + p] ? 1.0 : 0.0;
        } else {  // LOGISTIC with MAX_NEGATIVE: as SOFTMAX_CE's mining, by the logistic loss
          loss_bg.assign(P, 0.0);
          std::vector<int32_t> neg;
          std::vector<KeyBounds> bounds(fast ? P : 0);
          LogisticBounds logistic(fast ? *fast : cpu_row_kernels(), in, b);
          for (int64_t p = 0; p < P; ++p) {
            if (t[p] > 0) weight[p] = 1.0;
            if (t[p] == 0) {
              neg.push_back(static_cast<int32_t>(p));
              if (fast) {  // bounds; the exact loss only where they cannot decide
                double err = 0.0;
                const double a = logistic.approx(p, 0, &err);
                bounds[p] = key_bounds(a, err);
              } else {
                loss_bg[p] = logistic_row(in, (b * P + p) * C, C, 0, 0.0, nullptr);
              }
            }
          }
          const int64_t quota = mining_quota(o, num_pos[b], P);
          const int64_t n_neg = static_cast<int64_t>(neg.size());
          const int64_t take = quota < 0 ? n_neg : std::min(quota, n_neg);
          // hard_example_rank_key orders as ranks_before does (NaN first, -0 == +0).
          if (fast)
            exact_top_k(neg.data(), n_neg, take, bounds.data(), [&](int32_t p) {
              return hard_example_rank_key(logistic_row(in, (b * P + p) * C, C, 0, 0.0, nullptr));
            });
          else
            std::sort(neg.begin(), neg.end(), [&](int32_t a, int32_t c) {
              return ranks_before(loss_bg[a], a, loss_bg[c], c);
            });
          for (int64_t r = 0; r < take; ++r) weight[neg[r]] = 1.0;
          if (o.neg_overflow == NegOverflow::kDoubleCountPositives && quota > n_neg) {
            int64_t extra = quota - n_neg;
            for (int64_t p = 0; p < P && extra > 0; ++p)
              if (t[p] > 0) { weight[p] += 1.0; --extra; }
          }
        }
        std::vector<double> g(C);
        if (fast && out.grad_conf) zero_elems(out.grad_conf, in.conf_dtype, b * P * C, P * C, fast);
        for (int64_t p = 0; p < P; ++p) {
          if (weight[p] == 0.0) continue;
          const int64_t base = (b * P + p) * C;
          const int32_t target = t[p] > 0 ? t[p] : 0;
          const double s = weight[p] * conf_scale[b] * up_conf;
          double* gr = !out.grad_conf ? nullptr : fast ? g.data() : &grad_conf[base];
          if (o.conf_loss == ConfLoss::kLogistic) {
            sum += weight[p] * logistic_row(in, base, C, target, s, gr);
          } else {
            double m, l;
            sum += weight[p] * softmax_ce_row(in, base, C, target, &row, &m, &l);
            if (gr)
              for (int64_t c = 0; c < C; ++c) {
                const double z = (load_float(in.conf, in.conf_dtype, base + c) - m) - l;
                gr[c] = (c == target ? std::expm1(z) : std::exp(z)) * s;
              }
          }
          if (gr && fast)
            for (int64_t c = 0; c < C; ++c) store_float(out.grad_conf, in.conf_dtype, base + c, gr[c]);
        }
      } else if (o.conf_loss == ConfLoss::kSoftmaxCE) {
        std::vector<double> m(P), l(P), ce_bg(P), weight(P, 0.0);
        std::vector<int32_t> neg;
        for (int64_t p = 0; p < P; ++p) {
          for (int64_t c = 0; c < C; ++c) row[c] = load_float(in.conf, in.conf_dtype, (b * P + p) * C + c);
          softmax_row_stats<double>(row.data(), C, &m[p], &l[p]);
          ce_bg[p] = (m[p] - row[0]) + l[p];
          if (t[p] > 0) weight[p] = 1.0;
          if (t[p] == 0) neg.push_back(static_cast<int32_t>(p));
        }
        const int64_t quota = mining_quota(o, num_pos[b], P);
        const int64_t n_neg = static_cast<int64_t>(neg.size());
        const int64_t take = quota < 0 ? n_neg : std::min(quota, n_neg);
        // Full sort: the obviously-correct ranking (the fast path selects in O(P)).
        std::sort(neg.begin(), neg.end(), [&](int32_t a, int32_t c) {
          return ranks_before(ce_bg[a], a, ce_bg[c], c);
        });
        for (int64_t r = 0; r < take; ++r) weight[neg[r]] = 1.0;
        if (o.neg_overflow == NegOverflow::kDoubleCountPositives && quota > n_neg) {
          int64_t extra = quota - n_neg;
          for (int64_t p = 0; p < P && extra > 0; ++p)
            if (t[p] > 0) { weight[p] += 1.0; --extra; }
        }
        for (int64_t p = 0; p < P; ++p) {
          if (weight[p] == 0.0) continue;
          const int64_t base = (b * P + p) * C;
          const int32_t target = t[p] > 0 ? t[p] : 0;
          sum += weight[p] * ((m[p] - load_float(in.conf, in.conf_dtype, base + target)) + l[p]);
          if (!grad_conf.empty()) {
            const double s = weight[p] * conf_scale[b] * up_conf;
            for (int64_t c = 0; c < C; ++c) {
              // p_c - [c == target] from the log-probability; expm1 keeps
              // the target's 1 - p exact when p is ~1.
              const double z = (load_float(in.conf, in.conf_dtype, base + c) - m[p]) - l[p];
              grad_conf[base + c] = (c == target ? std::expm1(z) : std::exp(z)) * s;
            }
          }
        }
      } else {  // SIGMOID_FOCAL over every non-ignored prior and column
        for (int64_t p = 0; p < P; ++p) {
          if (t[p] < 0) continue;
          const int64_t base = (b * P + p) * C;
          for (int64_t c = 0; c < C; ++c) {
            double v, g;
            focal_element<double>(load_float(in.conf, in.conf_dtype, base + c), t[p] == c + 1,
                                  o.focal_alpha, o.focal_gamma, &v, &g);
            sum += v;
            if (!grad_conf.empty()) grad_conf[base + c] = g * conf_scale[b] * up_conf;
          }
        }
      }
      conf_sums[b] = sum;
    });
    for (int64_t b = 0; b < B; ++b) loss_conf += conf_sums[b] * conf_scale[b];
  }

  // --- write what was asked ------------------------------------------------
  if (out.conf_target) std::copy(conf_target.begin(), conf_target.end(), out.conf_target);
  if (out.matched_gt) std::copy(matched_gt.begin(), matched_gt.end(), out.matched_gt);
  if (out.loc_target)
    for (size_t i = 0; i < loc_target.size(); ++i) out.loc_target[i] = static_cast<float>(loc_target[i]);
  if (out.num_pos)
    for (int64_t b = 0; b < B; ++b) out.num_pos[b] = static_cast<int32_t>(losses ? loss_pos[b] : num_pos[b]);
  if (losses) {
    write_losses(out, loss_loc, loss_conf);
    if (out.grad_loc && !fast)
      for (size_t i = 0; i < grad_loc.size(); ++i) store_float(out.grad_loc, in.loc_dtype, i, grad_loc[i]);
    if (out.grad_conf && !fast)
      for (size_t i = 0; i < grad_conf.size(); ++i) store_float(out.grad_conf, in.conf_dtype, i, grad_conf[i]);
  }
}

}  // namespace

void run_scalar(const Options& o, const Inputs& in, const Outputs& out) { run_impl(o, in, out, 1, nullptr); }

void run_cpu_mined(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex) {
  // Only the losses whose classification pass writes the gradient rows
  // directly come here (the others are run_cpu's).
  if (!o.loss_needs_mined_path()) {
    run_cpu(o, in, out, ex);
    return;
  }
  run_impl(o, in, out, ex.num_threads, &cpu_row_kernels());
}

}  // namespace mbx
