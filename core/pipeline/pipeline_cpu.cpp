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
#include <xsimd/xsimd.hpp>

#include "common/half.h"
#include "common/workspace.h"
#include "encode/encode.h"
#include "focal/focal.h"
#include "loc_loss/loc_loss.h"
#include "match/match.h"
#include "normalize/normalize.h"
#include "pipeline/pipeline.h"
#include "softmax_ce/softmax_ce.h"

namespace mbx {

namespace {

using fbatch = xsimd::batch<float>;
constexpr int64_t kW = static_cast<int64_t>(fbatch::size);
constexpr int64_t kBlock = 1024;  // priors per task (fixed: thread-count independent)

enum Slot : size_t {
  kSlotConfTarget = 0,
  kSlotMatchedGt,
  kSlotLse,
  kSlotNegIdx,
  kSlotPartials,
  kSlotNumPos,
  kSlotConvert,
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

// Row max and log-sum-exp (shifted by the row's own max, SPEC §6.3).
inline float row_logsumexp(const float* x, int64_t C) {
  float m = x[0];
  int64_t c = 0;
  if (C >= kW) {
    fbatch vm = fbatch::load_unaligned(x);
    for (c = kW; c + kW <= C; c += kW) vm = xsimd::max(vm, fbatch::load_unaligned(x + c));
    alignas(64) float mm[kW];
    vm.store_aligned(mm);
    for (int64_t i = 0; i < kW; ++i) m = mm[i] > m ? mm[i] : m;
  } else {
    c = 1;
  }
  for (; c < C; ++c) m = x[c] > m ? x[c] : m;
  if (!std::isfinite(m)) return logsumexp_row<float>(x, C);  // inf/NaN: IEEE result
  fbatch vs(0.f);
  const fbatch vmx(m);
  for (c = 0; c + kW <= C; c += kW) vs += xsimd::exp(fbatch::load_unaligned(x + c) - vmx);
  float s = xsimd::hadd(vs);
  for (; c < C; ++c) s += std::exp(x[c] - m);
  return m + std::log(s);
}

// g[c] = (softmax(x)[c] - [c == target]) * s
inline void softmax_grad_row(const float* x, int64_t C, float lse, int32_t target, float s,
                             float* g) {
  int64_t c = 0;
  const fbatch vl(lse), vs(s);
  for (; c + kW <= C; c += kW)
    (xsimd::exp(fbatch::load_unaligned(x + c) - vl) * vs).store_unaligned(g + c);
  for (; c < C; ++c) g[c] = std::exp(x[c] - lse) * s;
  g[target] = (std::exp(x[target] - lse) - 1.0f) * s;
}

// Sigmoid focal terms of one row as negatives (t = 0), written to val/grad.
// With e = exp(-|x|): softplus(+-x) = max(+-x, 0) + log1p(e), and p, q are
// 1/(1+e) and e/(1+e) by the sign of x — one exp, one log1p, one division,
// no cancellation at |x| = 100.
template <int kGamma>
inline void focal_negative_batch(fbatch x, float alpha, float gamma, fbatch* val, fbatch* grad) {
  const fbatch zero(0.f), one(1.f);
  const fbatch e = xsimd::exp(-xsimd::abs(x));
  const fbatch l = xsimd::log1p(e);
  const fbatch r = one / (one + e);
  const auto xpos = x >= zero;
  const fbatch p = xsimd::select(xpos, r, e * r);
  const fbatch q = xsimd::select(xpos, e * r, r);
  const fbatch sp_pos = xsimd::max(x, zero) + l;
  fbatch pg;
  if (kGamma == 2) pg = p * p;
  else if (kGamma == 1) pg = p;
  else if (kGamma == 0) pg = one;
  else pg = xsimd::pow(p, fbatch(gamma));
  const fbatch w = fbatch(1.f - alpha) * pg;
  *val = w * sp_pos;
  *grad = w * (fbatch(gamma) * q * sp_pos + p);
}

template <int kGamma>
inline double focal_row(const float* x, int64_t C, int32_t pos_col, float alpha, float gamma,
                        float scale, float* g) {
  // Row sum accumulated in float64 per lane-chunk; the positive column (if
  // any) is recomputed exactly with the t = 1 formula.
  double sum = 0.0;
  int64_t c = 0;
  for (; c + kW <= C; c += kW) {
    fbatch v, d;
    focal_negative_batch<kGamma>(fbatch::load_unaligned(x + c), alpha, gamma, &v, &d);
    alignas(64) float vv[kW];
    v.store_aligned(vv);
    for (int64_t i = 0; i < kW; ++i) sum += vv[i];
    if (g) (d * fbatch(scale)).store_unaligned(g + c);
  }
  for (; c < C; ++c) {
    float v, d;
    focal_element<float>(x[c], false, alpha, gamma, &v, &d);
    sum += v;
    if (g) g[c] = d * scale;
  }
  if (pos_col >= 0) {
    float v0, d0, v1, d1;
    focal_element<float>(x[pos_col], false, alpha, gamma, &v0, &d0);
    focal_element<float>(x[pos_col], true, alpha, gamma, &v1, &d1);
    // Replace the t = 0 term added above by the t = 1 term.
    int64_t cv = pos_col / kW * kW;
    if (cv + kW <= C) {  // the vector chunk's value may differ from scalar v0
      fbatch v, d;
      focal_negative_batch<kGamma>(fbatch::load_unaligned(x + cv), alpha, gamma, &v, &d);
      alignas(64) float vv[kW];
      v.store_aligned(vv);
      v0 = vv[pos_col - cv];
    }
    sum += static_cast<double>(v1) - static_cast<double>(v0);
    if (g) g[pos_col] = d1 * scale;
  }
  return sum;
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
  if (out.num_pos)
    for (int64_t b = 0; b < B; ++b) out.num_pos[b] = static_cast<int32_t>(num_pos[b]);

  const bool losses = in.loc != nullptr && (out.wants_loss() || out.wants_grad());
  const int64_t nblk = (P + kBlock - 1) / kBlock;
  tbb::task_arena arena(ex.num_threads > 0 ? ex.num_threads : tbb::task_arena::automatic);
  auto for_blocks = [&](auto&& body) {
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B * nblk, 1),
                        [&](const tbb::blocked_range<int64_t>& r) {
                          for (int64_t t = r.begin(); t < r.end(); ++t)
                            body(t / nblk, (t % nblk) * kBlock,
                                 std::min(P, (t % nblk) * kBlock + kBlock), t);
                        });
    });
  };

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

  float* lse = softmax ? host_scratch<float>(ws, owned, kSlotLse, B * P) : nullptr;
  // partials[task] = (loc sum, conf sum) of the block.
  double* partials = host_scratch<double>(ws, owned, kSlotPartials, 2 * B * nblk);
  const bool convert = in.loc_dtype != DType::kF32 || in.conf_dtype != DType::kF32;
  // Every scratch buffer is taken before the first output is written.
  int32_t* neg_idx = softmax ? host_scratch<int32_t>(ws, owned, kSlotNegIdx, B * P) : nullptr;

  // --- pass 1: regression, focal / softmax per prior -----------------------
  for_blocks([&](int64_t b, int64_t p0, int64_t p1, int64_t task) {
    const float* boxes = in.gt_boxes + b * in.G * 4;
    const float ls = static_cast<float>(loc_scale[b] * up_loc);
    const float cs = static_cast<float>(conf_scale[b] * up_conf);
    std::vector<float> tmp_in, tmp_out;
    if (convert) { tmp_in.resize(C + 4); tmp_out.resize(C + 4); }
    double loc_sum = 0.0, conf_sum = 0.0;
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
      } else if (out.grad_loc) {
        zero_row(out.grad_loc, in.loc_dtype, bp * 4, 4);
      }
      // Classification.
      if (t < 0) {  // ignored: contributes nothing
        if (out.grad_conf) zero_row(out.grad_conf, in.conf_dtype, bp * C, C);
        if (softmax) lse[bp] = 0.f;
        continue;
      }
      const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
      float* gc = out.grad_conf ? grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data())
                                : nullptr;
      if (softmax) {
        const float z = row_logsumexp(x, C);
        lse[bp] = z;
        if (t > 0) {
          conf_sum += static_cast<double>(z) - static_cast<double>(x[t]);
          if (gc) {
            softmax_grad_row(x, C, z, t, cs, gc);
            flush_row(out.grad_conf, in.conf_dtype, bp * C, C, gc);
          }
        } else if (gc) {
          // Negatives get their gradient in pass 2 if mined.
          zero_row(out.grad_conf, in.conf_dtype, bp * C, C);
        }
      } else {
        const int32_t pos_col = t > 0 ? t - 1 : -1;
        switch (gamma_kind) {
          case 2: conf_sum += focal_row<2>(x, C, pos_col, alpha, gamma, cs, gc); break;
          case 1: conf_sum += focal_row<1>(x, C, pos_col, alpha, gamma, cs, gc); break;
          case 0: conf_sum += focal_row<0>(x, C, pos_col, alpha, gamma, cs, gc); break;
          default: conf_sum += focal_row<-1>(x, C, pos_col, alpha, gamma, cs, gc); break;
        }
        if (gc) flush_row(out.grad_conf, in.conf_dtype, bp * C, C, gc);
      }
    }
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
  if (softmax) {
    std::vector<double> mined(B, 0.0);
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<int64_t>(0, B, 1), [&](const tbb::blocked_range<int64_t>& r) {
        std::vector<float> ce, tmp_in, tmp_out;
        if (convert) { tmp_in.resize(C); tmp_out.resize(C); }
        for (int64_t b = r.begin(); b < r.end(); ++b) {
          const int32_t* t = ct + b * P;
          int32_t* idx = neg_idx + b * P;
          // Background CE of each negative, indexed by prior (ce[p]).
          ce.resize(P);
          int64_t n_neg = 0;
          for (int64_t p = 0; p < P; ++p) {
            if (t[p] != 0) continue;
            const int64_t bp = b * P + p;
            ce[p] = lse[bp] - load_float(in.conf, in.conf_dtype, bp * C);
            idx[n_neg++] = static_cast<int32_t>(p);
          }
          const int64_t quota = mining_quota(o, num_pos[b], P);
          const int64_t take = quota < 0 ? n_neg : std::min(quota, n_neg);
          select_top_negatives(ce.data(), idx, n_neg, take);
          // Canonical (ascending prior) order: the sum is then one fixed sequence.
          std::sort(idx, idx + take);
          const float cs = static_cast<float>(conf_scale[b] * up_conf);
          double sum = 0.0;
          for (int64_t r2 = 0; r2 < take; ++r2) {
            const int64_t p = idx[r2], bp = b * P + p;
            sum += static_cast<double>(ce[p]);
            if (out.grad_conf) {
              const float* x = row_f32(in.conf, in.conf_dtype, bp * C, C, tmp_in.data());
              float* gc = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
              softmax_grad_row(x, C, lse[bp], 0, cs, gc);
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
              sum += static_cast<double>(lse[bp]) - static_cast<double>(x[t[p]]);
              if (out.grad_conf) {
                float* gc = grad_row(out.grad_conf, in.conf_dtype, bp * C, tmp_out.data());
                softmax_grad_row(x, C, lse[bp], t[p], 2.0f * cs, gc);
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
