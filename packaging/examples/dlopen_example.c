/*
 * mbx dlopen example: loads libmbx.so.0 at run time (no link-time
 * dependency on libmbx), resolves the entry points it needs with dlsym and
 * computes the SSD300 loss of a one-image and a two-image batch.
 *
 *   cc -std=c99 -I<prefix>/include dlopen_example.c -ldl -lm -o dlopen_example
 *   ./dlopen_example [path/to/libmbx.so.0]
 *
 * Without an argument the library is looked up as "libmbx.so.0" on the
 * dynamic loader's default search path (LD_LIBRARY_PATH, ld.so.cache, ...).
 * mbx.h is included for its types and constants only; every function is
 * called through a pointer from dlsym.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbx/mbx.h>

#include "example_batch.h"

/* Pointer types of the entry points used (prototypes as in mbx.h). */
typedef const char* (*fn_version)(void);
typedef int (*fn_version_number)(void);
typedef const char* (*fn_status_string)(mbx_status_t);
typedef const char* (*fn_last_error)(void);
typedef mbx_status_t (*fn_options_init)(mbx_options_t*, mbx_preset_t);
typedef mbx_status_t (*fn_context_create)(mbx_context_t**);
typedef void (*fn_context_destroy)(mbx_context_t*);
typedef mbx_status_t (*fn_priors_ssd_count)(mbx_ssd_config_t, int64_t*);
typedef mbx_status_t (*fn_priors_ssd)(mbx_ssd_config_t, DLTensor*);
typedef mbx_status_t (*fn_loss_forward_backward)(
    mbx_context_t*, const mbx_options_t*, const DLTensor*, const DLTensor*, const DLTensor*,
    const DLTensor*, const DLTensor*, const DLTensor*, const DLTensor*, DLTensor*, DLTensor*,
    DLTensor*, DLTensor*);

static struct {
  fn_version version;
  fn_version_number version_number;
  fn_status_string status_string;
  fn_last_error last_error;
  fn_options_init options_init;
  fn_context_create context_create;
  fn_context_destroy context_destroy;
  fn_priors_ssd_count priors_ssd_count;
  fn_priors_ssd priors_ssd;
  fn_loss_forward_backward loss_forward_backward;
} mbx;

/* dlsym returns void*; copy it into the function pointer (the POSIX idiom
 * that avoids an object-to-function pointer cast). */
static int resolve(void* lib, const char* name, void* fn_ptr, size_t size) {
  void* sym;
  dlerror();
  sym = dlsym(lib, name);
  if (!sym) {
    const char* err = dlerror();
    fprintf(stderr, "dlsym(%s): %s\n", name, err ? err : "NULL symbol");
    return 1;
  }
  if (size != sizeof sym) return 1;
  memcpy(fn_ptr, &sym, size);
  return 0;
}
#define RESOLVE(field, name) resolve(lib, name, &mbx.field, sizeof mbx.field)

#define CHECK(call)                                                            \
  do {                                                                         \
    mbx_status_t s_ = (call);                                                  \
    if (s_ != MBX_STATUS_OK) {                                                 \
      fprintf(stderr, "%s: %s: %s\n", #call, mbx.status_string(s_),            \
              mbx.last_error());                                               \
      return 1;                                                                \
    }                                                                          \
  } while (0)

/* Loss + gradients of images 0..B-1 of the example batch. */
static int run_batch(mbx_context_t* ctx, const mbx_options_t* opts, float* priors, int64_t P,
                     int64_t B, const char* name) {
  const int64_t G = EX_MAX_GT, C = EX_NUM_CLASSES;
  float* gt_boxes = calloc((size_t)(B * G * 4), sizeof(float));
  int32_t* gt_labels = calloc((size_t)(B * G), sizeof(int32_t));
  int32_t* gt_counts = calloc((size_t)B, sizeof(int32_t));
  int32_t* num_pos = calloc((size_t)B, sizeof(int32_t));
  float* loc = malloc(sizeof(float) * (size_t)(B * P * 4));
  float* conf = malloc(sizeof(float) * (size_t)(B * P * C));
  float* grad_loc = malloc(sizeof(float) * (size_t)(B * P * 4));
  float* grad_conf = malloc(sizeof(float) * (size_t)(B * P * C));
  double loss[2];
  int64_t b, s_pri[2], s_box[3], s_lab[2], s_cnt[1], s_loc[3], s_conf[3], s_two[1] = {2};
  DLTensor t_pri, t_box, t_lab, t_cnt, t_loc, t_conf, t_gl, t_gc, t_np, t_loss;
  mbx_status_t st;
  int rc = 1;

  if (!gt_boxes || !gt_labels || !gt_counts || !num_pos || !loc || !conf || !grad_loc ||
      !grad_conf)
    goto done;
  for (b = 0; b < B; ++b)
    ex_fill_image(b, P, gt_boxes + b * G * 4, gt_labels + b * G, &gt_counts[b],
                  loc + b * P * 4, conf + b * P * C);
  s_pri[0] = P; s_pri[1] = 4;
  s_box[0] = B; s_box[1] = G; s_box[2] = 4;
  s_lab[0] = B; s_lab[1] = G;
  s_cnt[0] = B;
  s_loc[0] = B; s_loc[1] = P; s_loc[2] = 4;
  s_conf[0] = B; s_conf[1] = P; s_conf[2] = C;
  t_pri = ex_tensor(priors, kDLFloat, 32, 2, s_pri);
  t_box = ex_tensor(gt_boxes, kDLFloat, 32, 3, s_box);
  t_lab = ex_tensor(gt_labels, kDLInt, 32, 2, s_lab);
  t_cnt = ex_tensor(gt_counts, kDLInt, 32, 1, s_cnt);
  t_loc = ex_tensor(loc, kDLFloat, 32, 3, s_loc);
  t_conf = ex_tensor(conf, kDLFloat, 32, 3, s_conf);
  t_gl = ex_tensor(grad_loc, kDLFloat, 32, 3, s_loc);
  t_gc = ex_tensor(grad_conf, kDLFloat, 32, 3, s_conf);
  t_np = ex_tensor(num_pos, kDLInt, 32, 1, s_cnt);
  t_loss = ex_tensor(loss, kDLFloat, 64, 1, s_two);

  st = mbx.loss_forward_backward(ctx, opts, &t_pri, &t_box, &t_lab, &t_cnt, &t_loc, &t_conf,
                                 NULL, &t_loss, &t_np, &t_gl, &t_gc);
  if (st != MBX_STATUS_OK) {
    fprintf(stderr, "mbx_loss_forward_backward (%s): %s: %s\n", name, mbx.status_string(st),
            mbx.last_error());
    goto done;
  }
  printf("%s: %lld image(s): loss_loc = %.6f  loss_conf = %.6f\n", name, (long long)B, loss[0],
         loss[1]);
  rc = ex_print_result(name, loss, num_pos, B, P, grad_loc, grad_conf);
done:
  free(gt_boxes); free(gt_labels); free(gt_counts); free(num_pos);
  free(loc); free(conf); free(grad_loc); free(grad_conf);
  return rc;
}

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "libmbx.so.0";
  void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  mbx_options_t opts;
  mbx_context_t* ctx = NULL;
  int64_t P = 0, s_pri[2];
  float* priors;
  DLTensor t_pri;
  int rc;

  if (!lib) {
    fprintf(stderr, "dlopen(%s): %s\n", path, dlerror());
    return 1;
  }
  if (RESOLVE(version, "mbx_version") || RESOLVE(version_number, "mbx_version_number") ||
      RESOLVE(status_string, "mbx_status_string") || RESOLVE(last_error, "mbx_last_error") ||
      RESOLVE(options_init, "mbx_options_init") ||
      RESOLVE(context_create, "mbx_context_create") ||
      RESOLVE(context_destroy, "mbx_context_destroy") ||
      RESOLVE(priors_ssd_count, "mbx_priors_ssd_count") ||
      RESOLVE(priors_ssd, "mbx_priors_ssd") ||
      RESOLVE(loss_forward_backward, "mbx_loss_forward_backward")) {
    dlclose(lib);
    return 1;
  }
  /* The header's structs must match the loaded library's ABI (same major). */
  if (mbx.version_number() / 10000 != MBX_VERSION_MAJOR) {
    fprintf(stderr, "%s is mbx %s; this program was built for mbx %d.x\n", path, mbx.version(),
            MBX_VERSION_MAJOR);
    dlclose(lib);
    return 1;
  }
  printf("dlopen(%s): mbx %s\n", path, mbx.version());

  CHECK(mbx.priors_ssd_count(MBX_SSD300_VOC, &P));
  priors = malloc(sizeof(float) * (size_t)(P * 4));
  if (!priors) return 1;
  s_pri[0] = P; s_pri[1] = 4;
  t_pri = ex_tensor(priors, kDLFloat, 32, 2, s_pri);
  CHECK(mbx.priors_ssd(MBX_SSD300_VOC, &t_pri));
  CHECK(mbx.options_init(&opts, MBX_PRESET_SSD_PYTORCH));
  CHECK(mbx.context_create(&ctx));

  rc = run_batch(ctx, &opts, priors, P, 1, "batch1");
  rc |= run_batch(ctx, &opts, priors, P, 2, "batch2");

  mbx.context_destroy(ctx);
  free(priors);
  dlclose(lib);
  return rc;
}
