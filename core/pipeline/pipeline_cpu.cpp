// MBX_PATH_CPU: the fused fast path. oneTBB over (image, prior block) tasks
// of a fixed size, xsimd over logit columns. One pass over loc/conf computes
// the losses and writes the gradients of positives, focal terms and the zero
// rows; a second, sparse pass writes only the mined negatives' softmax
// gradients. Per-block partial sums are float64 and reduced in block order,
// so results are bitwise independent of the thread count (docs/SPEC.md §8).
//
// run_cpu is the list of steps: match, (match only: loc targets), loss
// setup, the dense pass, the per-image sums, mining + the sparse pass,
// outputs.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/half.h"
#include "common/parallel.h"
#include "common/workspace.h"
#include "encode/encode.h"
#include "focal/focal.h"
#include "loc_loss/iou_loss_math.h"
#include "loc_loss/loc_loss.h"
#include "match/atss.h"
#include "match/match.h"
#include "normalize/normalize.h"
#include "pipeline/cpu_kernels.h"
#include "pipeline/pipeline.h"
#include "softmax_ce/softmax_ce.h"

namespace mbx {

namespace {

constexpr int64_t kBlock = 1024;  // priors per task (fixed: thread-count independent)

enum Slot : size_t {
  kSlotConfTarget = 0,
  kSlotMatchedGt,
  kSlotCeBg,
  kSlotNegKeys,
  kSlotPartials,
  kSlotNumPos,
};

// A row of `n` floats of `dtype` at element offset i: direct pointer for
// float32, converted into `tmp` otherwise.
inline const float* row_f32(const void* base, DType dtype, int64_t i, int64_t n, float* tmp) {
  if (dtype == DType::kF32) return static_cast<const float*>(base) + i;
  for (int64_t k = 0; k < n; ++k) tmp[k] = load_float(base, dtype, i + k);
  return tmp;
}

// Destination row for gradients: direct for float32, staged in `tmp` and
// converted by flush_row otherwise.
inline float* grad_row(void* base, DType dtype, int64_t i, float* tmp) {
  return dtype == DType::kF32 ? static_cast<float*>(base) + i : tmp;
}
inline void flush_row(void* base, DType dtype, int64_t i, int64_t n, const float* tmp) {
  if (dtype == DType::kF32) return;
  for (int64_t k = 0; k < n; ++k) store_float(base, dtype, i + k, tmp[k]);
}
inline void zero_row(void* base, DType dtype, int64_t i, int64_t n) {
  const size_t es = dtype == DType::kF32 ? 4 : 2;
  std::memset(static_cast<char*>(base) + i * es, 0, static_cast<size_t>(n) * es);
}

// What every step reads: the call, and the matching result.
struct CpuRun {
  const Options& o;
  const Inputs& in;
  const Outputs& out;
  int64_t B, P, C, nblk;
  Workspace* ws;
  Workspace owned;  // scratch of context-less calls
  tbb::task_arena arena;
  PriorGeometry pg;
  EncodeParams enc;
  int32_t* conf_target = nullptr;  // [B,P] the caller's output or scratch
  int32_t* matched_gt = nullptr;   // [B,P] the caller's output or scratch
  int64_t* num_pos = nullptr;      // [B]

  CpuRun(const Options& o_, const Inputs& in_, const Outputs& out_, const Exec& ex)
      : o(o_), in(in_), out(out_), B(in_.B), P(in_.P), C(in_.C),
        nblk((in_.P + kBlock - 1) / kBlock), ws(ex.workspace),
        arena(make_arena(ex.num_threads)), enc(encode_params(o_)) {}

  template <typename Body>
  void for_blocks(Body&& body) { for_image_blocks(arena, B, P, kBlock, body); }
  template <typename T>
  T* scratch(Slot slot, int64_t count) { return host_scratch<T>(ws, owned, slot, count); }
};

// Step 1 (docs/SPEC.md §2): matching, into the caller's outputs when given,
// else into scratch.
void match_step(CpuRun& r, int num_threads) {
  build_prior_geometry(r.in.priors, r.P, r.o.prior_format, &r.pg);
  r.conf_target = r.out.conf_target ? r.out.conf_target
                                    : r.scratch<int32_t>(kSlotConfTarget, r.B * r.P);
  r.matched_gt = r.out.matched_gt ? r.out.matched_gt
                                  : r.scratch<int32_t>(kSlotMatchedGt, r.B * r.P);
  r.num_pos = r.scratch<int64_t>(kSlotNumPos, r.B);
  if (r.o.assigner == Assigner::kAtss)
    match_batch_atss_cpu(r.o, atss_plan(r.o, r.in), r.in, r.pg, r.conf_target, r.matched_gt, r.num_pos,
                         num_threads);
  else
    match_batch_cpu(r.o, r.in, r.pg, r.conf_target, r.matched_gt, r.num_pos, num_threads);
}

// mbx_match only (docs/SPEC.md §3): the encoded targets of the positives,
// zeros elsewhere. (With losses they are recomputed where needed instead.)
void write_loc_targets(CpuRun& r) {
  r.for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t) {
    const float* boxes = r.in.gt_boxes + b * r.in.G * 4;
    for (int64_t p = p0; p < p1; ++p) {
      float* loc_target = r.out.loc_target + (b * r.P + p) * 4;
      const int32_t g = r.matched_gt[b * r.P + p];
      if (g < 0) { loc_target[0] = loc_target[1] = loc_target[2] = loc_target[3] = 0.f; continue; }
      double t[4];
      encode_box(boxes + 4 * g, r.pg.cx[p], r.pg.cy[p], r.pg.w[p], r.pg.h[p], r.enc, t);
      for (int k = 0; k < 4; ++k) loc_target[k] = static_cast<float>(t[k]);
    }
  });
}

void write_num_pos(const CpuRun& r) {
  if (r.out.num_pos)
    for (int64_t b = 0; b < r.B; ++b) r.out.num_pos[b] = static_cast<int32_t>(r.num_pos[b]);
}

// The loss passes' constants and scratch.
struct LossSetup {
  std::vector<double> loc_scale, conf_scale;  // [B] (docs/SPEC.md §4)
  double up_loc = 1.0, up_conf = 1.0;         // upstream gradient
  bool softmax = true, l1 = false, l2 = false;
  bool iou = false;  // GIOU / DIOU / CIOU: one term per positive (docs/SPEC.md §4.7)
  double div[4] = {1.0, 1.0, 1.0, 1.0};  // loc_residual_divisors (encode_variance_in_target)
  float alpha = 0.f, gamma = 0.f;
  int gamma_kind = -1;  // 0, 1, 2 for those exact gammas (fast paths), -1 other
  bool convert = false;  // loc or conf not float32: rows go through a float32 copy
  const CpuRowKernels* kernels = nullptr;
  float* ce_bg = nullptr;      // [B,P] background CE of negatives: the mining score
  uint64_t* neg_keys = nullptr;  // [B,P] mining_key of the negatives
  double* partials = nullptr;  // [2*B*nblk] (loc sum, conf sum) per task
};

// Step 2: normalisation scales (docs/SPEC.md §4), upstream gradient, loss
// options, and every scratch buffer — all taken before the first output is
// written, so that a failed allocation leaves the outputs untouched.
LossSetup loss_setup(CpuRun& r) {
  const Options& o = r.o;
  LossSetup s;
  s.loc_scale.resize(r.B);
  s.conf_scale.resize(r.B);
  normalization_scales(o, r.B, r.P, r.num_pos, s.loc_scale.data(), s.conf_scale.data());
  if (r.out.wants_grad()) read_upstream(r.out, &s.up_loc, &s.up_conf);
  s.softmax = o.conf_loss == ConfLoss::kSoftmaxCE;
  s.l1 = o.loc_is_l1();
  s.l2 = o.loc_loss == LocLoss::kL2;
  s.iou = is_iou_loss(o.loc_loss);
  loc_residual_divisors(o, s.div);
  s.alpha = static_cast<float>(o.focal_alpha);
  s.gamma = static_cast<float>(o.focal_gamma);
  s.gamma_kind = o.focal_gamma == 2.0 ? 2 : o.focal_gamma == 1.0 ? 1 : o.focal_gamma == 0.0 ? 0 : -1;
  s.kernels = &cpu_row_kernels();
  s.ce_bg = s.softmax ? r.scratch<float>(kSlotCeBg, r.B * r.P) : nullptr;
  s.neg_keys = s.softmax ? r.scratch<uint64_t>(kSlotNegKeys, r.B * r.P) : nullptr;
  s.partials = r.scratch<double>(kSlotPartials, 2 * r.B * r.nblk);
  s.convert = r.in.loc_dtype != DType::kF32 || r.in.conf_dtype != DType::kF32;
  return s;
}

// Step 3, the dense pass, per (image, prior block): the regression loss of
// the positives, the focal terms of every non-ignored prior or the softmax
// CE of the positives and the mining scores of the negatives (docs/SPEC.md
// §4), with their gradients; the block's sums go to
// partials[2*task], partials[2*task+1].
void dense_pass(CpuRun& r, const LossSetup& s) {
  const Options& o = r.o;
  const Inputs& in = r.in;
  const Outputs& out = r.out;
  const int64_t P = r.P, C = r.C;
  const CpuRowKernels& kernels = *s.kernels;
  r.for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    const float* boxes = in.gt_boxes + b * in.G * 4;
    const float ls = static_cast<float>(s.loc_scale[b] * s.up_loc);
    const float cs = static_cast<float>(s.conf_scale[b] * s.up_conf);
    std::vector<float> tmp_in, tmp_out;
    if (s.convert) { tmp_in.resize(C + 4); tmp_out.resize(C + 4); }
    double loc_sum = 0.0, conf_sum = 0.0;
    // Zero the block's gradient rows in one contiguous streaming fill each
    // (no read-for-ownership of lines that stay zero); rows that count are
    // then overwritten.
    auto zero_block = [&](void* base, DType dtype, int64_t i, int64_t n) {
      if (dtype == DType::kF32) kernels.zero_fill(static_cast<float*>(base) + i, n);
      else zero_row(base, dtype, i, n);
    };
    if (out.grad_loc) zero_block(out.grad_loc, in.loc_dtype, (b * P + p0) * 4, (p1 - p0) * 4);
    if (out.grad_conf && s.softmax) zero_block(out.grad_conf, in.conf_dtype, (b * P + p0) * C, (p1 - p0) * C);
    // Softmax: the block's background CEs first (the negatives' mining
    // scores, fast and relative-precise); every CE that is summed is computed
    // from exact row statistics.
    float ce0_blk[kBlock];
    if (s.softmax && !s.convert) {
      thread_local std::vector<float> exp_scratch;
      if (exp_scratch.size() < static_cast<size_t>(kBlock * C + 64)) exp_scratch.resize(kBlock * C + 64);
      kernels.ce_background_rows(static_cast<const float*>(in.conf) + (b * P + p0) * C, p1 - p0, C,
                                 ce0_blk, exp_scratch.data());
    }
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t bp = b * P + p;
      const int32_t t = r.conf_target[bp];
      // Regression (positives only), float64 like the targets.
      if (t > 0 && s.iou) {
        // IoU family: float64 on the decoded box, as on every path.
        const float* loc = row_f32(in.loc, in.loc_dtype, bp * 4, 4, tmp_in.data());
        const double d[4] = {loc[0], loc[1], loc[2], loc[3]};
        double g[4];
        loc_sum += iou_loss_offsets(o.loc_loss, d, r.pg.cx[p], r.pg.cy[p], r.pg.w[p], r.pg.h[p], r.enc,
                                    boxes + 4 * r.matched_gt[bp], out.grad_loc ? g : nullptr);
        if (out.grad_loc) {
          float* grad_loc = grad_row(out.grad_loc, in.loc_dtype, bp * 4, tmp_out.data());
          for (int k = 0; k < 4; ++k) grad_loc[k] = static_cast<float>(g[k]) * ls;
          flush_row(out.grad_loc, in.loc_dtype, bp * 4, 4, grad_loc);
        }
      } else if (t > 0) {
        double loc_target[4];
        encode_box(boxes + 4 * r.matched_gt[bp], r.pg.cx[p], r.pg.cy[p], r.pg.w[p], r.pg.h[p], r.enc,
                   loc_target);
        const float* loc = row_f32(in.loc, in.loc_dtype, bp * 4, 4, tmp_in.data());
        float* grad_loc = out.grad_loc ? grad_row(out.grad_loc, in.loc_dtype, bp * 4, tmp_out.data()) : nullptr;
        for (int k = 0; k < 4; ++k) {
          // div = 1 (exact) unless encode_variance_in_target (docs/SPEC.md §4.1).
          const double d = (static_cast<double>(loc[k]) - loc_target[k]) / s.div[k];
          loc_sum += s.l2 ? 0.5 * d * d : loc_loss_value(d, s.l1, o.smooth_l1_beta);
          if (grad_loc)
            grad_loc[k] =
                static_cast<float>((s.l2 ? d : loc_loss_grad(d, s.l1, o.smooth_l1_beta)) / s.div[k]) * ls;
        }
        if (grad_loc) flush_row(out.grad_loc, in.loc_dtype, bp * 4, 4, grad_loc);
      }
      // Classification.
      if (t < 0) {  // ignored: contributes nothing
        if (out.grad_conf && !s.softmax) zero_row(out.grad_conf, in.conf_dtype, bp * C, C);
        continue;
      }
      const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
      if (s.softmax) {
        if (t > 0) {
          // Positives: exact row statistics, CE = (m - x_t) + l.
          float m, l;
          kernels.softmax_rows(x, 1, C, &m, &l);
          conf_sum += static_cast<double>((m - x[t]) + l);
          if (out.grad_conf) {
            float* grad_conf = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
            kernels.softmax_grad(x, C, m, l, t, cs, grad_conf);
            flush_row(out.grad_conf, in.conf_dtype, bp * C, C, grad_conf);
          }
        } else {
          if (s.convert) {
            float m, l;
            kernels.softmax_rows(x, 1, C, &m, &l);
            s.ce_bg[bp] = (m - x[0]) + l;
          } else {
            s.ce_bg[bp] = ce0_blk[p - p0];  // ranking score; mined rows' CE is recomputed exactly
          }
        }
      } else {
        float* grad_conf = out.grad_conf ? grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data())
                                         : nullptr;
        conf_sum +=
            kernels.focal(x, C, t > 0 ? t - 1 : -1, s.alpha, s.gamma, s.gamma_kind, cs, grad_conf);
        if (grad_conf) flush_row(out.grad_conf, in.conf_dtype, bp * C, C, grad_conf);
      }
    }
    kernels.store_fence();  // streaming gradient stores are ordered before the task ends
    s.partials[2 * task] = loc_sum;
    s.partials[2 * task + 1] = conf_sum;
  });
}

// Step 4: the per-image sums, adding the blocks' partials in block order
// (fixed, whatever the thread count).
void image_sums(const CpuRun& r, const LossSetup& s, std::vector<double>* loc_img,
                std::vector<double>* conf_img) {
  loc_img->assign(r.B, 0.0);
  conf_img->assign(r.B, 0.0);
  for (int64_t b = 0; b < r.B; ++b)
    for (int64_t k = 0; k < r.nblk; ++k) {
      (*loc_img)[b] += s.partials[2 * (b * r.nblk + k)];
      (*conf_img)[b] += s.partials[2 * (b * r.nblk + k) + 1];
    }
}

// Step 5 (softmax only): hard negative mining (docs/SPEC.md §4) and the
// sparse pass. O(P) selection per image over packed (ce, prior) keys; only
// the mined negatives' rows are read and written again. Adds each image's
// mined CE sum to conf_img[b].
void mine_negatives(CpuRun& r, const LossSetup& s, std::vector<double>* conf_img) {
  const Options& o = r.o;
  const Inputs& in = r.in;
  const Outputs& out = r.out;
  const int64_t P = r.P, C = r.C;
  const CpuRowKernels& kernels = *s.kernels;
  std::vector<double> mined(r.B, 0.0);
  r.arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, r.B, 1), [&](const tbb::blocked_range<int64_t>& range) {
      std::vector<float> tmp_in, tmp_out;
      if (s.convert) { tmp_in.resize(C); tmp_out.resize(C); }
      // CE of row bp against `target` from exact row statistics, and its
      // gradient scaled by `scale` (written after the CE is read off x).
      auto row_ce = [&](int64_t bp, int32_t target, float scale) {
        const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
        float m, l;
        kernels.softmax_rows(x, 1, C, &m, &l);
        const double ce = static_cast<double>((m - x[target]) + l);
        if (out.grad_conf) {
          float* grad_conf = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
          kernels.softmax_grad(x, C, m, l, target, scale, grad_conf);
          flush_row(out.grad_conf, in.conf_dtype, bp * C, C, grad_conf);
        }
        return ce;
      };
      for (int64_t b = range.begin(); b < range.end(); ++b) {
        const int32_t* conf_target = r.conf_target + b * P;
        uint64_t* keys = s.neg_keys + b * P;
        int64_t n_neg = 0;
        for (int64_t p = 0; p < P; ++p)
          if (conf_target[p] == 0) keys[n_neg++] = mining_key(s.ce_bg[b * P + p], static_cast<int32_t>(p));
        const int64_t quota = mining_quota(o, r.num_pos[b], P);
        const int64_t take = quota < 0 ? n_neg : std::min(quota, n_neg);
        select_top_negatives(keys, n_neg, take);
        const float cs = static_cast<float>(s.conf_scale[b] * s.up_conf);
        double sum = 0.0;
        for (int64_t i = 0; i < take; ++i) sum += row_ce(b * P + mining_key_prior(keys[i]), 0, cs);
        // torchvision's literal overflow: spare slots count positives again.
        if (o.neg_overflow == NegOverflow::kDoubleCountPositives && quota > n_neg) {
          int64_t extra = quota - n_neg;
          for (int64_t p = 0; p < P && extra > 0; ++p) {
            if (conf_target[p] <= 0) continue;
            --extra;
            sum += row_ce(b * P + p, conf_target[p], 2.0f * cs);
          }
        }
        mined[b] = sum;
      }
    });
  });
  for (int64_t b = 0; b < r.B; ++b) (*conf_img)[b] += mined[b];
}

// Step 6: the normalised losses (docs/SPEC.md §4), images in order.
void write_loss(const CpuRun& r, const LossSetup& s, const std::vector<double>& loc_img,
                const std::vector<double>& conf_img) {
  double loss_loc = 0.0, loss_conf = 0.0;
  for (int64_t b = 0; b < r.B; ++b) {
    loss_loc += loc_img[b] * s.loc_scale[b];
    loss_conf += conf_img[b] * s.conf_scale[b];
  }
  write_losses(r.out, loss_loc, loss_conf);
}

}  // namespace

void run_cpu(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex) {
  CpuRun r(o, in, out, ex);
  match_step(r, ex.num_threads);
  const bool losses = in.loc != nullptr && (out.wants_loss() || out.wants_grad());
  if (!losses) {  // mbx_match
    if (out.loc_target) write_loc_targets(r);
    write_num_pos(r);
    return;
  }
  const LossSetup s = loss_setup(r);
  dense_pass(r, s);
  std::vector<double> loc_img, conf_img;
  image_sums(r, s, &loc_img, &conf_img);
  if (s.softmax) mine_negatives(r, s, &conf_img);
  write_num_pos(r);
  if (out.wants_loss()) write_loss(r, s, loc_img, conf_img);
}

}  // namespace mbx
