/*
 * mbx pkg-config example: the one-image SSD300 batch of consumer/main.c,
 * computed with the separate forward (mbx_loss_forward) and backward
 * (mbx_loss_backward) calls instead of the fused one.
 *
 *   cc -std=c99 pkgconfig_example.c $(pkg-config --cflags --libs mbx) -lm -o pkgconfig_example
 */
#include <stdio.h>
#include <stdlib.h>

#include <mbx/mbx.h>

#include "example_batch.h"

#define CHECK(call)                                                            \
  do {                                                                         \
    mbx_status_t s_ = (call);                                                  \
    if (s_ != MBX_STATUS_OK) {                                                 \
      fprintf(stderr, "%s: %s: %s\n", #call, mbx_status_string(s_),            \
              mbx_last_error());                                               \
      return 1;                                                                \
    }                                                                          \
  } while (0)

int main(void) {
  const int64_t B = 1, G = EX_MAX_GT, C = EX_NUM_CLASSES;
  int64_t P = 0;
  float *priors, *loc, *conf, *grad_loc, *grad_conf;
  float gt_boxes[EX_MAX_GT * 4];
  int32_t gt_labels[EX_MAX_GT], gt_counts[1], num_pos[1];
  double loss[2], grad_loss[2] = {1.0, 1.0};
  mbx_options_t opts;
  int rc;

  CHECK(mbx_priors_ssd_count(MBX_SSD300_VOC, &P));
  priors = malloc(sizeof(float) * P * 4);
  loc = malloc(sizeof(float) * B * P * 4);
  conf = malloc(sizeof(float) * B * P * C);
  grad_loc = malloc(sizeof(float) * B * P * 4);
  grad_conf = malloc(sizeof(float) * B * P * C);
  if (!priors || !loc || !conf || !grad_loc || !grad_conf) return 1;

  {
    int64_t s_pri[2] = {P, 4}, s_box[3] = {B, G, 4}, s_lab[2] = {B, G}, s_cnt[1] = {B},
            s_loc[3] = {B, P, 4}, s_conf[3] = {B, P, C}, s_two[1] = {2};
    DLTensor t_pri = ex_tensor(priors, kDLFloat, 32, 2, s_pri);
    DLTensor t_box = ex_tensor(gt_boxes, kDLFloat, 32, 3, s_box);
    DLTensor t_lab = ex_tensor(gt_labels, kDLInt, 32, 2, s_lab);
    DLTensor t_cnt = ex_tensor(gt_counts, kDLInt, 32, 1, s_cnt);
    DLTensor t_loc = ex_tensor(loc, kDLFloat, 32, 3, s_loc);
    DLTensor t_conf = ex_tensor(conf, kDLFloat, 32, 3, s_conf);
    DLTensor t_gl = ex_tensor(grad_loc, kDLFloat, 32, 3, s_loc);
    DLTensor t_gc = ex_tensor(grad_conf, kDLFloat, 32, 3, s_conf);
    DLTensor t_np = ex_tensor(num_pos, kDLInt, 32, 1, s_cnt);
    DLTensor t_loss = ex_tensor(loss, kDLFloat, 64, 1, s_two);
    DLTensor t_gloss = ex_tensor(grad_loss, kDLFloat, 64, 1, s_two);

    CHECK(mbx_priors_ssd(MBX_SSD300_VOC, &t_pri));
    ex_fill_image(0, P, gt_boxes, gt_labels, &gt_counts[0], loc, conf);
    CHECK(mbx_options_init(&opts, MBX_PRESET_SSD_PYTORCH));
    /* ctx = NULL: default context (all threads, auto path, no caching). */
    CHECK(mbx_loss_forward(NULL, &opts, &t_pri, &t_box, &t_lab, &t_cnt, &t_loc, &t_conf,
                           &t_loss, &t_np));
    CHECK(mbx_loss_backward(NULL, &opts, &t_pri, &t_box, &t_lab, &t_cnt, &t_loc, &t_conf,
                            &t_gloss, &t_gl, &t_gc));
  }

  printf("mbx %s (pkg-config), SSD300 VOC: %lld priors, 1 image, forward then backward\n",
         mbx_version(), (long long)P);
  printf("loss_loc = %.6f  loss_conf = %.6f  num_pos = %d\n", loss[0], loss[1], num_pos[0]);
  rc = ex_print_result("batch1", loss, num_pos, B, P, grad_loc, grad_conf);
  free(priors); free(loc); free(conf); free(grad_loc); free(grad_conf);
  return rc;
}
