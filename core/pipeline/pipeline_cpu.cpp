// MBX_PATH_CPU: the fused fast path. oneTBB over (image, prior block) tasks
// of a fixed size, xsimd over logit columns. One pass over loc/conf computes
// the losses and writes the gradients of positives, focal terms and the zero
// rows; a second, sparse pass writes only the mined negatives' softmax
// gradients. Per-block partial sums are float64 and reduced in block order,
// so results are bitwise independent of the thread count.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/half.h"
#include "common/workspace.h"
#include "encode/encode.h"
#include "focal/focal.h"
#include "loc_loss/loc_loss.h"
#include "common/parallel.h"
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

// A row of `n` floats of dtype t at element offset i: direct pointer for
// float32, converted into `tmp` otherwise.
inline const float* row_f32(const void* base, DType t, int64_t i, int64_t n, float* tmp) {
  if (t == DType::kF32) return static_cast<const float*>(base) + i;
  for (int64_t k = 0; k < n; ++k) tmp[k] = load_float(base, t, i + k);
  return tmp;
}

// Destination row for gradients: direct for float32, staged in `tmp` and
// converted by flush_row otherwise.
inline float* grad_row(void* base, DType t, int64_t i, float* tmp) {
  return t == DType::kF32 ? static_cast<float*>(base) + i : tmp;
}
inline void flush_row(void* base, DType t, int64_t i, int64_t n, const float* tmp) {
  if (t == DType::kF32) return;
  for (int64_t k = 0; k < n; ++k) store_float(base, t, i + k, tmp[k]);
}
inline void zero_row(void* base, DType t, int64_t i, int64_t n) {
  const size_t es = t == DType::kF32 ? 4 : 2;
  std::memset(static_cast<char*>(base) + i * es, 0, static_cast<size_t>(n) * es);
}

}  // namespace

void run_cpu(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex) {
  const int64_t B = in.B, P = in.P, C = in.C;
  Workspace owned;
  Workspace* ws = ex.workspace;

  PriorGeometry pg;
  build_prior_geometry(in.priors, P, o.prior_format, &pg);

  // Matching into the caller's outputs when given, else into scratch.
  int32_t* ct = out.conf_target ? out.conf_target
                                : host_scratch<int32_t>(ws, owned, kSlotConfTarget, B * P);
  int32_t* mg = out.matched_gt ? out.matched_gt
                               : host_scratch<int32_t>(ws, owned, kSlotMatchedGt, B * P);
  int64_t* num_pos = host_scratch<int64_t>(ws, owned, kSlotNumPos, B);
  match_batch_cpu(o, in, pg, ct, mg, num_pos, ex.num_threads);
  auto write_num_pos = [&] {
    if (out.num_pos)
      for (int64_t b = 0; b < B; ++b) out.num_pos[b] = static_cast<int32_t>(num_pos[b]);
  };

  const bool losses = in.loc != nullptr && (out.wants_loss() || out.wants_grad());
  const int64_t nblk = (P + kBlock - 1) / kBlock;
  tbb::task_arena arena = make_arena(ex.num_threads);
  auto for_blocks = [&](auto&& body) { for_image_blocks(arena, B, P, kBlock, body); };

  if (!losses) {  // mbx_match: loc targets only
    if (out.loc_target) {
      for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t) {
        const float* boxes = in.gt_boxes + b * in.G * 4;
        for (int64_t p = p0; p < p1; ++p) {
          float* lt = out.loc_target + (b * P + p) * 4;
          const int32_t g = mg[b * P + p];
          if (g < 0) { lt[0] = lt[1] = lt[2] = lt[3] = 0.f; continue; }
          double t[4];
          encode_box(boxes + 4 * g, pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], o, t);
          for (int k = 0; k < 4; ++k) lt[k] = static_cast<float>(t[k]);
        }
      });
    }
    write_num_pos();
    return;
  }

  std::vector<double> loc_scale(B), conf_scale(B);
  normalization_scales(o, B, num_pos, loc_scale.data(), conf_scale.data());
  double up_loc = 1.0, up_conf = 1.0;
  if (out.wants_grad()) read_upstream(out, &up_loc, &up_conf);
  const bool softmax = o.conf_loss == ConfLoss::kSoftmaxCE;
  const bool l1 = o.loc_is_l1();
  const float alpha = static_cast<float>(o.focal_alpha), gamma = static_cast<float>(o.focal_gamma);
  const int gamma_kind = o.focal_gamma == 2.0 ? 2 : o.focal_gamma == 1.0 ? 1 : o.focal_gamma == 0.0 ? 0 : -1;

  const CpuRowKernels& K = cpu_row_kernels();

  // Every scratch buffer is taken before the first output is written.
  // ce_bg[b,p]: background CE of negatives (the mining score).
  float* ce_bg = softmax ? host_scratch<float>(ws, owned, kSlotCeBg, B * P) : nullptr;
  uint64_t* keys = softmax ? host_scratch<uint64_t>(ws, owned, kSlotNegKeys, B * P) : nullptr;
  // partials[task] = (loc sum, conf sum) of the block.
  double* partials = host_scratch<double>(ws, owned, kSlotPartials, 2 * B * nblk);
  const bool convert = in.loc_dtype != DType::kF32 || in.conf_dtype != DType::kF32;

  // --- pass 1: regression, focal / softmax per prior -----------------------
  for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    const float* boxes = in.gt_boxes + b * in.G * 4;
    const float ls = static_cast<float>(loc_scale[b] * up_loc);
    const float cs = static_cast<float>(conf_scale[b] * up_conf);
    std::vector<float> tmp_in, tmp_out;
    if (convert) { tmp_in.resize(C + 4); tmp_out.resize(C + 4); }
    double loc_sum = 0.0, conf_sum = 0.0;
    // Zero the block's gradient rows in one contiguous streaming fill each
    // (no read-for-ownership of lines that stay zero); rows that count are
    // then overwritten.
    auto zero_block = [&](void* base, DType t, int64_t i, int64_t n) {
      if (t == DType::kF32) K.zero_fill(static_cast<float*>(base) + i, n);
      else zero_row(base, t, i, n);
    };
    if (out.grad_loc) zero_block(out.grad_loc, in.loc_dtype, (b * P + p0) * 4, (p1 - p0) * 4);
    if (out.grad_conf && softmax) zero_block(out.grad_conf, in.conf_dtype, (b * P + p0) * C, (p1 - p0) * C);
    // Softmax: the block's background CEs first (the negatives' mining
    // scores, fast and relative-precise); every CE that is summed is computed
    // from exact row statistics.
    float ce0_blk[kBlock];
    if (softmax && !convert) {
      thread_local std::vector<float> exp_scratch;
      if (exp_scratch.size() < static_cast<size_t>(kBlock * C + 64)) exp_scratch.resize(kBlock * C + 64);
      K.ce_background_rows(static_cast<const float*>(in.conf) + (b * P + p0) * C, p1 - p0, C, ce0_blk,
                           exp_scratch.data());
    }
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t bp = b * P + p;
      const int32_t t = ct[bp];
      // Regression (positives only), float64 like the targets.
      if (t > 0) {
        double tgt[4];
        encode_box(boxes + 4 * mg[bp], pg.cx[p], pg.cy[p], pg.w[p], pg.h[p], o, tgt);
        const float* l = row_f32(in.loc, in.loc_dtype, bp * 4, 4, tmp_in.data());
        float* gl = out.grad_loc ? grad_row(out.grad_loc, in.loc_dtype, bp * 4, tmp_out.data()) : nullptr;
        for (int k = 0; k < 4; ++k) {
          const double d = static_cast<double>(l[k]) - tgt[k];
          loc_sum += loc_loss_value(d, l1, o.smooth_l1_beta);
          if (gl) gl[k] = static_cast<float>(loc_loss_grad(d, l1, o.smooth_l1_beta)) * ls;
        }
        if (gl) flush_row(out.grad_loc, in.loc_dtype, bp * 4, 4, gl);
      }
      // Classification.
      if (t < 0) {  // ignored: contributes nothing
        if (out.grad_conf && !softmax) zero_row(out.grad_conf, in.conf_dtype, bp * C, C);
        continue;
      }
      const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
      if (softmax) {
        if (t > 0) {
          // Positives: exact row statistics, CE = (m - x_t) + l.
          float m, l;
          K.softmax_rows(x, 1, C, &m, &l);
          conf_sum += static_cast<double>((m - x[t]) + l);
          if (out.grad_conf) {
            float* gc = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
            K.softmax_grad(x, C, m, l, t, cs, gc);
            flush_row(out.grad_conf, in.conf_dtype, bp * C, C, gc);
          }
        } else {
          if (convert) {
            float m, l;
            K.softmax_rows(x, 1, C, &m, &l);
            ce_bg[bp] = (m - x[0]) + l;
          } else {
            ce_bg[bp] = ce0_blk[p - p0];  // ranking score; mined rows' CE is recomputed exactly
          }
        }
      } else {
        float* gc = out.grad_conf ? grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data())
                                  : nullptr;
        conf_sum += K.focal(x, C, t > 0 ? t - 1 : -1, alpha, gamma, gamma_kind, cs, gc);
        if (gc) flush_row(out.grad_conf, in.conf_dtype, bp * C, C, gc);
      }
    }
    K.store_fence();  // streaming gradient stores are ordered before the task ends
    partials[2 * task] = loc_sum;
    partials[2 * task + 1] = conf_sum;
  });

  std::vector<double> loc_img(B, 0.0), conf_img(B, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < nblk; ++k) {
      loc_img[b] += partials[2 * (b * nblk + k)];
      conf_img[b] += partials[2 * (b * nblk + k) + 1];
    }

  // --- hard negative mining + pass 2 (softmax only) -------------------------
  // O(P) selection per image over packed (ce, prior) keys; only the mined
  // negatives' rows are read and written again.
  if (softmax) {
    std::vector<double> mined(B, 0.0);
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
        std::vector<float> tmp_in, tmp_out;
        if (convert) { tmp_in.resize(C); tmp_out.resize(C); }
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          const int32_t* t = ct + b * P;
          uint64_t* kb = keys + b * P;
          int64_t n_neg = 0;
          for (int64_t p = 0; p < P; ++p)
            if (t[p] == 0) kb[n_neg++] = mining_key(ce_bg[b * P + p], static_cast<int32_t>(p));
          const int64_t quota = mining_quota(o, num_pos[b], P);
          const int64_t take = quota < 0 ? n_neg : std::min(quota, n_neg);
          select_top_negatives(kb, n_neg, take);
          const float cs = static_cast<float>(conf_scale[b] * up_conf);
          double sum = 0.0;
          for (int64_t i = 0; i < take; ++i) {
            const int64_t bp = b * P + mining_key_prior(kb[i]);
            const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
            float m, l;
            K.softmax_rows(x, 1, C, &m, &l);
            sum += static_cast<double>((m - x[0]) + l);
            if (out.grad_conf) {
              float* gc = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
              K.softmax_grad(x, C, m, l, 0, cs, gc);
              flush_row(out.grad_conf, in.conf_dtype, bp * C, C, gc);
            }
          }
          // torchvision's literal overflow: spare slots count positives again.
          if (o.neg_overflow == NegOverflow::kDoubleCountPositives && quota > n_neg) {
            int64_t extra = quota - n_neg;
            for (int64_t p = 0; p < P && extra > 0; ++p) {
              if (t[p] <= 0) continue;
              --extra;
              const int64_t bp = b * P + p;
              const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
              float m, l;
              K.softmax_rows(x, 1, C, &m, &l);
              sum += static_cast<double>((m - x[t[p]]) + l);
              if (out.grad_conf) {
                float* gc = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
                K.softmax_grad(x, C, m, l, t[p], 2.0f * cs, gc);
                flush_row(out.grad_conf, in.conf_dtype, bp * C, C, gc);
              }
            }
          }
          mined[b] = sum;
        }
      });
    });
    for (int64_t b = 0; b < B; ++b) conf_img[b] += mined[b];
  }

  write_num_pos();
  if (out.wants_loss()) {
    double loss_loc = 0.0, loss_conf = 0.0;
    for (int64_t b = 0; b < B; ++b) {
      loss_loc += loc_img[b] * loc_scale[b];
      loss_conf += conf_img[b] * conf_scale[b];
    }
    write_losses(out, loss_loc, loss_conf);
  }
}

}  // namespace mbx
