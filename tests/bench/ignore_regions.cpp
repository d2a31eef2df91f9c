// What ignore regions (gt_flags, docs/SPEC.md §2.7) cost in matching:
// mbx_run(MBX_OP_MATCH) on the RetinaNet anchors of a 640x832 image
// (P = 99765), B = 8, 12 GT rows per image, best of N runs, for
//   12 GT without gt_flags | 12 GT with all-zero gt_flags (must cost nothing)
//   10 GT without gt_flags | 10 GT + 2 large ignore regions (the IoF test)
//   mbx_ignore_regions [--tiny] [--threads N] [--path cpu|cpu-scalar]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mbx/mbx.h"

namespace {

template <typename T>
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<T> data;
  DLTensor t{};
  Tensor(std::vector<int64_t> s, DLDataType dt, T fill = T()) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    data.assign(static_cast<size_t>(n), fill);
    t.data = data.data();
    t.device = {kDLCPU, 0};
    t.ndim = static_cast<int>(shape.size());
    t.dtype = dt;
    t.shape = shape.data();
  }
};

}  // namespace

int main(int argc, char** argv) {
  bool tiny = false;
  int threads = 1;
  mbx_path_t path = MBX_PATH_CPU;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tiny") tiny = true;
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--path" && i + 1 < argc) path = std::string(argv[++i]) == "cpu-scalar" ? MBX_PATH_CPU_SCALAR : MBX_PATH_CPU;
  }
  const int64_t H = tiny ? 64 : 640, W = tiny ? 96 : 832, B = tiny ? 1 : 8, G = 12;
  const int reps = tiny ? 1 : 25;
  const DLDataType f32{kDLFloat, 32, 1}, i32{kDLInt, 32, 1};
  int64_t P = 0;
  mbx_priors_retinanet_count(H, W, &P);
  Tensor<float> priors({P, 4}, f32), gt({B, G, 4}, f32);
  mbx_priors_retinanet(H, W, &priors.t);
  Tensor<int32_t> labels({B, G}, i32, 1), counts({B}, i32, static_cast<int32_t>(G)),
      counts10({B}, i32, static_cast<int32_t>(G - 2)), zeros({B, G}, i32, 0), regions({B, G}, i32, 0),
      conf_target({B, P}, i32), matched_gt({B, P}, i32);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> U(0.f, 1.f);
  for (int64_t i = 0; i < B * G; ++i) {  // boxes of 5 % to 40 % of the image side
    const float w = W * (0.05f + 0.35f * U(rng)), h = H * (0.05f + 0.35f * U(rng));
    const float x = (W - w) * U(rng), y = (H - h) * U(rng);
    float* r = &gt.data[4 * i];
    r[0] = x; r[1] = y; r[2] = x + w; r[3] = y + h;
    if (i % G >= G - 2) regions.data[i] = 1;  // the last two rows: ignore regions
  }
  mbx_options_t o;
  mbx_options_init(&o, MBX_PRESET_TORCHVISION_RETINANET);
  mbx_context_t* ctx;
  mbx_context_create(&ctx);
  mbx_context_set_path(ctx, path);
  mbx_context_set_num_threads(ctx, threads);
  std::printf("match, %s, %d thread(s), P = %lld, B = %lld, best of %d\n", mbx_path_name(path), threads,
              static_cast<long long>(P), static_cast<long long>(B), reps);
  const char* names[] = {"12 GT, no gt_flags", "12 GT, gt_flags all 0", "10 GT, no gt_flags",
                         "10 GT + 2 ignore regions"};
  // Modes interleaved within each repetition, so that load from other
  // processes falls on all of them alike.
  double best[4] = {1e30, 1e30, 1e30, 1e30};
  int64_t ignored[4] = {0, 0, 0, 0};
  for (int rep = 0; rep < reps; ++rep)
    for (int mode = 0; mode < 4; ++mode) {
      mbx_tensors_t t;
      mbx_tensors_init(&t);
      t.priors = &priors.t;
      t.gt_boxes = &gt.t;
      t.gt_labels = &labels.t;
      t.gt_counts = mode == 2 ? &counts10.t : &counts.t;
      if (mode == 1) t.gt_flags = &zeros.t;
      if (mode == 3) t.gt_flags = &regions.t;
      t.conf_target = &conf_target.t;
      t.matched_gt = &matched_gt.t;
      const auto t0 = std::chrono::steady_clock::now();
      if (mbx_run(ctx, &o, MBX_OP_MATCH, &t) != MBX_STATUS_OK) {
        std::fprintf(stderr, "mbx_run: %s\n", mbx_last_error());
        return 1;
      }
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      best[mode] = std::min(best[mode], ms);
      ignored[mode] = 0;
      for (int32_t v : conf_target.data) ignored[mode] += v == -1;
    }
  for (int mode = 0; mode < 4; ++mode)
    std::printf("  %-26s %9.2f ms   (%lld priors ignored)\n", names[mode], best[mode],
                static_cast<long long>(ignored[mode]));
  mbx_context_destroy(ctx);
  return 0;
}
