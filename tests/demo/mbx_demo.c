/* mbx demo: an SSD300 training step's loss on the CPU, through the C API.
 *
 * Builds the 8732 SSD300 VOC priors, a synthetic VOC-like batch (B = 32,
 * 1..6 objects per image, 20 classes, logits ~ N(0, 2)), then times
 * matching, the forward-only loss and the fused forward + backward (median
 * of several runs after a warm-up) with 1 thread and all threads, and
 * prints the losses, positives and timings.
 *
 *   mbx_demo [B] [runs]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mbx/mbx.h"

#define CHECK(call)                                                                 \
  do {                                                                              \
    mbx_status_t s_ = (call);                                                       \
    if (s_ != MBX_STATUS_OK) {                                                      \
      fprintf(stderr, "%s failed: %s: %s\n", #call, mbx_status_string(s_), mbx_last_error()); \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}
static double normal(void) {
  double u = uniform() + 1e-300, v = uniform();
  return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static DLTensor tensor(void* data, DLDataType dt, int ndim, int64_t* shape) {
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = ndim;
  t.dtype = dt;
  t.shape = shape;
  return t;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  const int64_t B = argc > 1 ? atoi(argv[1]) : 32, G = 6, C = 21;
  const int runs = argc > 2 ? atoi(argv[2]) : 9;
  int64_t P = 0;
  CHECK(mbx_priors_ssd_count(MBX_SSD300_VOC, &P));

  const DLDataType f32 = {kDLFloat, 32, 1}, f64 = {kDLFloat, 64, 1}, i32 = {kDLInt, 32, 1};
  float* priors = malloc(sizeof(float) * P * 4);
  float* gt_boxes = calloc(B * G * 4, sizeof(float));
  int32_t* gt_labels = calloc(B * G, sizeof(int32_t));
  int32_t* gt_counts = malloc(sizeof(int32_t) * B);
  float* loc = malloc(sizeof(float) * B * P * 4);
  float* conf = malloc(sizeof(float) * B * P * C);
  float* grad_loc = malloc(sizeof(float) * B * P * 4);
  float* grad_conf = malloc(sizeof(float) * B * P * C);
  int32_t* conf_target = malloc(sizeof(int32_t) * B * P);
  int32_t* num_pos = malloc(sizeof(int32_t) * B);
  double loss[2];
  if (!priors || !loc || !conf || !grad_loc || !grad_conf || !conf_target) return 1;

  int64_t s_pri[2] = {P, 4}, s_box[3] = {B, G, 4}, s_lab[2] = {B, G}, s_cnt[1] = {B},
          s_loc[3] = {B, P, 4}, s_conf[3] = {B, P, C}, s_bp[2] = {B, P}, s_two[1] = {2};
  DLTensor t_pri = tensor(priors, f32, 2, s_pri);
  CHECK(mbx_priors_ssd(MBX_SSD300_VOC, &t_pri));

  /* VOC-like objects: 1..6 per image, sizes 5%..80% of the image. */
  for (int64_t b = 0; b < B; ++b) {
    gt_counts[b] = 1 + (int32_t)(uniform() * 6);
    for (int64_t g = 0; g < gt_counts[b]; ++g) {
      double w = 0.05 + 0.75 * uniform(), h = 0.05 + 0.75 * uniform();
      double x = uniform() * (1 - w), y = uniform() * (1 - h);
      float* r = gt_boxes + (b * G + g) * 4;
      r[0] = (float)x; r[1] = (float)y; r[2] = (float)(x + w); r[3] = (float)(y + h);
      gt_labels[b * G + g] = (int32_t)(uniform() * 20);
    }
  }
  for (int64_t i = 0; i < B * P * 4; ++i) loc[i] = (float)normal();
  for (int64_t i = 0; i < B * P * C; ++i) conf[i] = (float)(2.0 * normal());

  DLTensor t_box = tensor(gt_boxes, f32, 3, s_box), t_lab = tensor(gt_labels, i32, 2, s_lab),
           t_cnt = tensor(gt_counts, i32, 1, s_cnt), t_loc = tensor(loc, f32, 3, s_loc),
           t_conf = tensor(conf, f32, 3, s_conf), t_gl = tensor(grad_loc, f32, 3, s_loc),
           t_gc = tensor(grad_conf, f32, 3, s_conf), t_ct = tensor(conf_target, i32, 2, s_bp),
           t_np = tensor(num_pos, i32, 1, s_cnt), t_loss = tensor(loss, f64, 1, s_two);

  mbx_options_t opts;
  CHECK(mbx_options_init(&opts, MBX_PRESET_SSD_PYTORCH));
  mbx_context_t* ctx;
  CHECK(mbx_context_create(&ctx));

  printf("mbx %s — SSD300 batch: B=%lld, P=%lld priors, C=%lld classes, preset ssd_pytorch\n",
         mbx_version(), (long long)B, (long long)P, (long long)C);
  printf("paths available: cpu-scalar=%d cpu=%d cuda=%d\n", mbx_path_available(MBX_PATH_CPU_SCALAR),
         mbx_path_available(MBX_PATH_CPU), mbx_path_available(MBX_PATH_CUDA));

  int threads_list[2] = {1, 0};
  for (int ti = 0; ti < 2; ++ti) {
    CHECK(mbx_context_set_num_threads(ctx, threads_list[ti]));
    double t_match[64], t_fwd[64], t_fb[64];
    int n = runs < 64 ? runs : 64;
    for (int r = -1; r < n; ++r) { /* r = -1: warm-up (workspace allocation) */
      double t0 = now_ms();
      CHECK(mbx_match(ctx, &opts, C - 1, &t_pri, &t_box, &t_lab, &t_cnt, &t_ct, NULL, NULL, &t_np));
      double t1 = now_ms();
      CHECK(mbx_loss_forward(ctx, &opts, &t_pri, &t_box, &t_lab, &t_cnt, &t_loc, &t_conf, &t_loss, NULL));
      double t2 = now_ms();
      CHECK(mbx_loss_forward_backward(ctx, &opts, &t_pri, &t_box, &t_lab, &t_cnt, &t_loc, &t_conf,
                                      NULL, &t_loss, &t_np, &t_gl, &t_gc));
      double t3 = now_ms();
      if (r >= 0) { t_match[r] = t1 - t0; t_fwd[r] = t2 - t1; t_fb[r] = t3 - t2; }
    }
    qsort(t_match, n, sizeof(double), cmp_double);
    qsort(t_fwd, n, sizeof(double), cmp_double);
    qsort(t_fb, n, sizeof(double), cmp_double);
    if (ti == 0) {
      long total = 0, ignored = 0;
      for (int64_t b = 0; b < B; ++b) total += num_pos[b];
      for (int64_t i = 0; i < B * P; ++i) ignored += conf_target[i] < 0;
      double gsum = 0;
      for (int64_t i = 0; i < B * P * C; ++i) gsum += fabs(grad_conf[i]);
      printf("loss_loc = %.6f   loss_conf = %.6f\n", loss[0], loss[1]);
      printf("num_pos  = %ld total (", total);
      for (int64_t b = 0; b < B && b < 8; ++b) printf("%s%d", b ? ", " : "", num_pos[b]);
      printf("%s), ignored priors = %ld, sum |grad_conf| = %.6f\n", B > 8 ? ", ..." : "", ignored, gsum);
    }
    printf("threads=%-4s match %7.3f ms   forward %7.3f ms   fused forward+backward %7.3f ms   (median of %d)\n",
           threads_list[ti] ? "1" : "all", t_match[n / 2], t_fwd[n / 2], t_fb[n / 2], n);
  }
  mbx_context_destroy(ctx);
  free(priors); free(gt_boxes); free(gt_labels); free(gt_counts); free(loc); free(conf);
  free(grad_loc); free(grad_conf); free(conf_target); free(num_pos);
  return 0;
}
