/*
 * example_batch.h — the small synthetic SSD300 batch shared by the mbx
 * packaging examples (consumer/main.c, pkgconfig_example.c,
 * dlopen_example.c), so that their printed losses can be compared.
 *
 * Image b's data depends only on b (not on the batch size): a batch of one
 * image equals the first image of a batch of two. Nothing here calls mbx;
 * it only needs <dlpack/dlpack.h> for the DLTensor type.
 */
#ifndef MBX_EXAMPLE_BATCH_H_
#define MBX_EXAMPLE_BATCH_H_

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <dlpack/dlpack.h>

/** C: background + 20 VOC classes (SOFTMAX_CE: column 0 is background). */
#define EX_NUM_CLASSES 21
/** G: GT rows per image (padded). */
#define EX_MAX_GT 3

/** Float32 / int32 / float64 CPU tensor over caller-owned memory. */
static DLTensor ex_tensor(void* data, uint8_t code, uint8_t bits, int ndim, int64_t* shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.device.device_id = 0;
  t.ndim = ndim;
  t.dtype.code = code;
  t.dtype.bits = bits;
  t.dtype.lanes = 1;
  t.shape = shape;
  t.strides = NULL; /* compact row-major */
  return t;
}

/* xorshift64*, uniform in [0, 1). */
static double ex_uniform(uint64_t* s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return (double)((*s * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/**
 * Fill image b of a batch: GT rows gt_boxes[EX_MAX_GT*4] (corners in [0,1]),
 * gt_labels[EX_MAX_GT] (0..19), *gt_count, predicted offsets loc[P*4] and
 * logits conf[P*EX_NUM_CLASSES].
 */
static void ex_fill_image(int64_t b, int64_t P, float* gt_boxes, int32_t* gt_labels,
                          int32_t* gt_count, float* loc, float* conf) {
  static const float boxes[2][EX_MAX_GT][4] = {
      {{0.10f, 0.15f, 0.45f, 0.60f}, {0.50f, 0.40f, 0.95f, 0.90f}, {0, 0, 0, 0}},
      {{0.05f, 0.05f, 0.30f, 0.35f}, {0.35f, 0.20f, 0.80f, 0.70f}, {0.60f, 0.60f, 0.98f, 0.95f}}};
  static const int32_t labels[2][EX_MAX_GT] = {{11, 14, 0}, {6, 1, 19}};
  static const int32_t counts[2] = {2, 3};
  const int k = (int)(b % 2);
  uint64_t s = 0x9E3779B97F4A7C15ull ^ (uint64_t)(b + 1) * 0xD1B54A32D192ED03ull;
  int64_t i;
  memcpy(gt_boxes, boxes[k], sizeof boxes[k]);
  memcpy(gt_labels, labels[k], sizeof labels[k]);
  *gt_count = counts[k];
  for (i = 0; i < P * 4; ++i) loc[i] = (float)(ex_uniform(&s) - 0.5);
  for (i = 0; i < P * EX_NUM_CLASSES; ++i) conf[i] = (float)(4.0 * ex_uniform(&s) - 2.0);
}

static double ex_sum_abs(const float* x, int64_t n) {
  double s = 0;
  int64_t i;
  for (i = 0; i < n; ++i) s += fabs((double)x[i]);
  return s;
}

/**
 * Print one machine-readable result line (packaging/test_install.sh
 * compares these between the examples):
 *   RESULT <name> loss_loc=.. loss_conf=.. num_pos=.. grad_loc_l1=.. grad_conf_l1=..
 * Returns 0 if every number is finite and there is at least one positive.
 */
static int ex_print_result(const char* name, const double loss[2], const int32_t* num_pos,
                           int64_t B, int64_t P, const float* grad_loc, const float* grad_conf) {
  long pos = 0;
  int64_t b;
  double gl = ex_sum_abs(grad_loc, B * P * 4), gc = ex_sum_abs(grad_conf, B * P * EX_NUM_CLASSES);
  for (b = 0; b < B; ++b) pos += num_pos[b];
  printf("RESULT %s loss_loc=%.9g loss_conf=%.9g num_pos=%ld grad_loc_l1=%.9g grad_conf_l1=%.9g\n",
         name, loss[0], loss[1], pos, gl, gc);
  return (isfinite(loss[0]) && isfinite(loss[1]) && isfinite(gl) && isfinite(gc) && pos > 0) ? 0 : 1;
}

#endif /* MBX_EXAMPLE_BATCH_H_ */
