// MBX_PATH_CPU_SCALAR: the specification as plain, single-threaded float64
// C++ — readable, and the yardstick of the fast paths in the tests. Writes
// outputs only after everything is computed.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/half.h"
#include "encode/encode.h"
#include "focal/focal.h"
#include "loc_loss/loc_loss.h"
#include "match/match.h"
#include "normalize/normalize.h"
#include "pipeline/pipeline.h"
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
  if (out.loss_dtype == DType::kF64) {
    static_cast<double*>(out.loss)[0] = loss_loc;
    static_cast<double*>(out.loss)[1] = loss_conf;
  } else {
    static_cast<float*>(out.loss)[0] = static_cast<float>(loss_loc);
    static_cast<float*>(out.loss)[1] = static_cast<float>(loss_conf);
  }
}

void run_scalar(const Options& o, const Inputs& in, const Outputs& out) {
  const int64_t B = in.B, P = in.P, C = in.C;
  PriorGeometry pg;
  build_prior_geometry(in.priors, P, o.prior_format, &pg);
  const EncodeParams enc = encode_params(o);

  // --- matching + encoding ------------------------------------------------
  std::vector<int32_t> conf_target(B * P), matched_gt(B * P);
  std::vector<double> loc_target(B * P * 4, 0.0);
  std::vector<int64_t> num_pos(B);
  ImageGt gt;
  for (int64_t b = 0; b < B; ++b) {
    image_gt_rows(in, b, &gt);
    num_pos[b] = match_image_scalar(o, gt, pg, &conf_target[b * P], &matched_gt[b * P]);
    for (int64_t p = 0; p < P; ++p) {
      const int32_t g = matched_gt[b * P + p];
      if (g >= 0)
        encode_box(gt.boxes + 4 * g, pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], enc,
                   &loc_target[(b * P + p) * 4]);
    }
  }

  const bool losses = in.loc != nullptr && (out.wants_loss() || out.wants_grad());
  std::vector<double> grad_loc, grad_conf;
  double loss_loc = 0.0, loss_conf = 0.0;
  if (losses) {
    std::vector<double> loc_scale(B), conf_scale(B);
    normalization_scales(o, B, num_pos.data(), loc_scale.data(), conf_scale.data());
    double up_loc = 1.0, up_conf = 1.0;
    if (out.wants_grad()) read_upstream(out, &up_loc, &up_conf);
    if (out.grad_loc) grad_loc.assign(B * P * 4, 0.0);
    if (out.grad_conf) grad_conf.assign(B * P * C, 0.0);

    // --- regression loss on positives -------------------------------------
    const bool l1 = o.loc_is_l1();
    for (int64_t b = 0; b < B; ++b) {
      double sum = 0.0;
      for (int64_t p = 0; p < P; ++p) {
        if (conf_target[b * P + p] <= 0) continue;
        for (int k = 0; k < 4; ++k) {
          const int64_t i = (b * P + p) * 4 + k;
          const double d = static_cast<double>(load_float(in.loc, in.loc_dtype, i)) - loc_target[i];
          sum += loc_loss_value(d, l1, o.smooth_l1_beta);
          if (!grad_loc.empty()) grad_loc[i] = loc_loss_grad(d, l1, o.smooth_l1_beta) * loc_scale[b] * up_loc;
        }
      }
      loss_loc += sum * loc_scale[b];
    }

    // --- classification loss ----------------------------------------------
    std::vector<double> row(C);
    for (int64_t b = 0; b < B; ++b) {
      const int32_t* t = &conf_target[b * P];
      double sum = 0.0;
      if (o.conf_loss == ConfLoss::kSoftmaxCE) {
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
      loss_conf += sum * conf_scale[b];
    }
  }

  // --- write what was asked ------------------------------------------------
  if (out.conf_target) std::copy(conf_target.begin(), conf_target.end(), out.conf_target);
  if (out.matched_gt) std::copy(matched_gt.begin(), matched_gt.end(), out.matched_gt);
  if (out.loc_target)
    for (size_t i = 0; i < loc_target.size(); ++i) out.loc_target[i] = static_cast<float>(loc_target[i]);
  if (out.num_pos)
    for (int64_t b = 0; b < B; ++b) out.num_pos[b] = static_cast<int32_t>(num_pos[b]);
  if (losses) {
    write_losses(out, loss_loc, loss_conf);
    if (out.grad_loc)
      for (size_t i = 0; i < grad_loc.size(); ++i) store_float(out.grad_loc, in.loc_dtype, i, grad_loc[i]);
    if (out.grad_conf)
      for (size_t i = 0; i < grad_conf.size(); ++i) store_float(out.grad_conf, in.conf_dtype, i, grad_conf[i]);
  }
}

}  // namespace mbx
