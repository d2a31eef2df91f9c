// GPU benchmark of the CUDA path through the C API: match, loss forward and
// fused forward+backward for SSD300 (B=32, P=8732, C=21; also the caffe_ssd
// preset, +HARD_EXAMPLE, +HARD_EXAMPLE with NMS 0.45, +LOGISTIC) and
// RetinaNet (B=16, P=99765, C=80; also with assigner = ATSS). Each timing is the median of kReps calls after a
// warm-up, measured with cudaEvents on the context's stream (host
// validation off, so a call is one asynchronous launch sequence). The DRAM
// floor is the bytes a call must read and write at the measured
// device-to-device copy bandwidth; "ratio" = time / floor.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "mbx/mbx.h"

namespace {

// MBX_BENCH_REPS=n: n timed calls after one warm-up (n=1 for a profiler run).
int kWarmup = 3;
int kReps = 15;

void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s failed: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
#define CK(x) cuda_check((x), #x)

void mbx_check(mbx_status_t s, const char* what) {
  if (s != MBX_STATUS_OK) {
    std::fprintf(stderr, "%s failed: %s: %s\n", what, mbx_status_string(s), mbx_last_error());
    std::exit(1);
  }
}
#define MK(x) mbx_check((x), #x)

struct DevTensor {
  std::vector<int64_t> shape;
  void* p = nullptr;
  DLTensor t{};
  DevTensor(std::vector<int64_t> s, DLDataType dt) : shape(std::move(s)) {
    CK(cudaMalloc(&p, bytes(dt)));
    t.data = p;
    t.device = {kDLCUDA, 0};
    t.ndim = static_cast<int32_t>(shape.size());
    t.dtype = dt;
    t.shape = shape.data();
  }
  ~DevTensor() { cudaFree(p); }
  size_t bytes(DLDataType dt) const {
    size_t n = dt.bits / 8;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
  size_t bytes() const { return bytes(t.dtype); }
  template <typename T>
  void upload(const std::vector<T>& v) {
    CK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
};

constexpr DLDataType kF32{kDLFloat, 32, 1};
constexpr DLDataType kF64{kDLFloat, 64, 1};
constexpr DLDataType kI32{kDLInt, 32, 1};

// Device-to-device copy bandwidth (bytes read + written per second).
double measure_bandwidth(cudaStream_t s) {
  const size_t n = size_t(1) << 30;
  void *a, *b;
  CK(cudaMalloc(&a, n));
  CK(cudaMalloc(&b, n));
  CK(cudaMemset(a, 1, n));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < kWarmup + kReps; ++i) {
    CK(cudaEventRecord(e0, s));
    CK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, s));
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float t = 0;
    CK(cudaEventElapsedTime(&t, e0, e1));
    if (i >= kWarmup) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  cudaFree(a);
  cudaFree(b);
  return 2.0 * n / (ms[ms.size() / 2] * 1e-3);
}

template <typename F>
double median_ms(cudaStream_t s, F&& call) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < kWarmup + kReps; ++i) {
    CK(cudaEventRecord(e0, s));
    call();
    CK(cudaEventRecord(e1, s));
    CK(cudaEventSynchronize(e1));
    float t = 0;
    CK(cudaEventElapsedTime(&t, e0, e1));
    if (i >= kWarmup) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return ms[ms.size() / 2];
}

// `overrides`: "name=value" pairs separated by spaces, applied with
// mbx_options_set after the preset. assigner=ATSS passes the RetinaNet
// pyramid's prior_levels (host tensor), the calls through mbx_run.
void bench(const char* name, mbx_preset_t preset, int64_t B, int64_t C, bool ssd, double bw,
           cudaStream_t stream, const std::string& overrides = "") {
  mbx_options_t o;
  MK(mbx_options_init(&o, preset));
  for (size_t at = 0; at < overrides.size();) {
    size_t end = overrides.find(' ', at);
    if (end == std::string::npos) end = overrides.size();
    const std::string kv = overrides.substr(at, end - at);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) MK(mbx_options_set(&o, kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str()));
    at = end + 1;
  }
  const bool atss = o.assigner == MBX_ASSIGNER_ATSS;
  int64_t P = 0;
  std::vector<float> priors;
  if (ssd) {
    MK(mbx_priors_ssd_count(MBX_SSD300_VOC, &P));
  } else {
    MK(mbx_priors_retinanet_count(640, 832, &P));
  }
  priors.resize(P * 4);
  std::vector<int64_t> pshape{P, 4};
  DLTensor hp{};
  hp.data = priors.data();
  hp.device = {kDLCPU, 0};
  hp.ndim = 2;
  hp.dtype = kF32;
  hp.shape = pshape.data();
  if (ssd) MK(mbx_priors_ssd(MBX_SSD300_VOC, &hp));
  else MK(mbx_priors_retinanet(640, 832, &hp));
  const double sx = ssd ? 1.0 : 832.0, sy = ssd ? 1.0 : 640.0;

  const int64_t G = 16;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> U(0.f, 1.f);
  std::normal_distribution<float> N(0.f, 1.f);
  std::vector<float> boxes(B * G * 4);
  std::vector<int32_t> labels(B * G), counts(B);
  const int64_t K = o.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL ? C : C - 1;  // LOGISTIC: column 0 is background
  for (int64_t b = 0; b < B; ++b) {
    counts[b] = static_cast<int32_t>(1 + rng() % G);
    for (int64_t g = 0; g < G; ++g) {
      const float w = 0.05f + 0.4f * U(rng), h = 0.05f + 0.4f * U(rng);
      const float x1 = (1 - w) * U(rng), y1 = (1 - h) * U(rng);
      float* r = &boxes[(b * G + g) * 4];
      r[0] = float(x1 * sx); r[1] = float(y1 * sy); r[2] = float((x1 + w) * sx); r[3] = float((y1 + h) * sy);
      labels[b * G + g] = static_cast<int32_t>(rng() % K);
    }
  }
  std::vector<float> loc(B * P * 4), conf(B * P * C);
  for (auto& v : loc) v = 0.5f * N(rng);
  for (auto& v : conf) v = 2.f * N(rng);

  DevTensor d_priors({P, 4}, kF32), d_boxes({B, G, 4}, kF32), d_labels({B, G}, kI32),
      d_counts({B}, kI32), d_loc({B, P, 4}, kF32), d_conf({B, P, C}, kF32);
  d_priors.upload(priors);
  d_boxes.upload(boxes);
  d_labels.upload(labels);
  d_counts.upload(counts);
  d_loc.upload(loc);
  d_conf.upload(conf);
  DevTensor ct({B, P}, kI32), mg({B, P}, kI32), lt({B, P, 4}, kF32), np({B}, kI32),
      loss({2}, kF64), gl({B, P, 4}, kF32), gc({B, P, C}, kF32);

  mbx_context_t* ctx = nullptr;
  MK(mbx_context_create(&ctx));
  MK(mbx_context_set_cuda_stream(ctx, stream));
  MK(mbx_context_set_cuda_validation(ctx, 0));

  std::vector<int32_t> levels(MBX_RETINANET_NUM_LEVELS);
  std::vector<int64_t> lshape{MBX_RETINANET_NUM_LEVELS};
  DLTensor hl{};
  hl.data = levels.data();
  hl.device = {kDLCPU, 0};
  hl.ndim = 1;
  hl.dtype = kI32;
  hl.shape = lshape.data();
  if (atss) MK(mbx_priors_retinanet_levels(640, 832, &hl));
  auto run = [&](mbx_op_t op) {  // the call through mbx_run, with prior_levels
    mbx_tensors_t t;
    MK(mbx_tensors_init(&t));
    t.priors = &d_priors.t;
    t.gt_boxes = &d_boxes.t;
    t.gt_labels = &d_labels.t;
    t.gt_counts = &d_counts.t;
    t.prior_levels = &hl;
    t.num_pos = &np.t;
    if (op == MBX_OP_MATCH) {
      t.num_classes = K;
      t.conf_target = &ct.t;
      t.matched_gt = &mg.t;
      t.loc_target = &lt.t;
    } else {
      t.loc = &d_loc.t;
      t.conf = &d_conf.t;
      t.loss = &loss.t;
      if (op == MBX_OP_LOSS_FORWARD_BACKWARD) {
        t.grad_loc = &gl.t;
        t.grad_conf = &gc.t;
      }
    }
    MK(mbx_run(ctx, &o, op, &t));
  };
  const double t_match = median_ms(stream, [&] {
    if (atss) { run(MBX_OP_MATCH); return; }
    MK(mbx_match(ctx, &o, K, &d_priors.t, &d_boxes.t, &d_labels.t, &d_counts.t, &ct.t, &mg.t,
                 &lt.t, &np.t));
  });
  const double t_fwd = median_ms(stream, [&] {
    if (atss) { run(MBX_OP_LOSS_FORWARD); return; }
    MK(mbx_loss_forward(ctx, &o, &d_priors.t, &d_boxes.t, &d_labels.t, &d_counts.t, &d_loc.t,
                        &d_conf.t, &loss.t, &np.t));
  });
  const double t_fb = median_ms(stream, [&] {
    if (atss) { run(MBX_OP_LOSS_FORWARD_BACKWARD); return; }
    MK(mbx_loss_forward_backward(ctx, &o, &d_priors.t, &d_boxes.t, &d_labels.t, &d_counts.t,
                                 &d_loc.t, &d_conf.t, nullptr, &loss.t, &np.t, &gl.t, &gc.t));
  });

  const double in_bytes = double(d_priors.bytes() + d_boxes.bytes() + d_labels.bytes() + d_counts.bytes());
  const double match_bytes = in_bytes + ct.bytes() + mg.bytes() + lt.bytes() + np.bytes();
  const double fwd_bytes = in_bytes + d_loc.bytes() + d_conf.bytes() + np.bytes() + 16;
  const double fb_bytes = fwd_bytes + gl.bytes() + gc.bytes();
  auto row = [&](const char* what, double ms, double bytes) {
    const double floor_ms = bytes / bw * 1e3;
    std::printf("%-16s %-14s %9.3f ms   floor %8.3f ms (%7.1f MB)   ratio %6.2fx\n", name, what, ms,
                floor_ms, bytes / 1e6, ms / floor_ms);
  };
  row("match", t_match, match_bytes);
  row("forward", t_fwd, fwd_bytes);
  row("fwd+bwd", t_fb, fb_bytes);
  mbx_context_destroy(ctx);
}

}  // namespace

int main() {
  if (const char* r = std::getenv("MBX_BENCH_REPS")) {
    kReps = std::max(1, std::atoi(r));
    kWarmup = 1;
  }
  if (!mbx_cuda_available()) {
    std::printf("no usable CUDA device: nothing to benchmark\n");
    return 0;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double bw = measure_bandwidth(stream);
  std::printf("device: %s, measured D2D bandwidth %.0f GB/s (read+write); median of %d after %d warm-up\n",
              prop.name, bw / 1e9, kReps, kWarmup);
  bench("SSD300", MBX_PRESET_SSD_PYTORCH, 32, 21, true, bw, stream);
  // The Caffe SSD modes (BIPARTITE, HARD_EXAMPLE, LOGISTIC) on SSD300.
  bench("SSD300 caffe", MBX_PRESET_CAFFE_SSD, 32, 21, true, bw, stream);
  bench("SSD300 caffe+HE", MBX_PRESET_CAFFE_SSD, 32, 21, true, bw, stream, "mining=HARD_EXAMPLE");
  bench("SSD300 caffe+HEnms", MBX_PRESET_CAFFE_SSD, 32, 21, true, bw, stream,
        "mining=HARD_EXAMPLE mining_nms_threshold=0.45");
  bench("SSD300 caffe+LOG", MBX_PRESET_CAFFE_SSD, 32, 21, true, bw, stream, "conf_loss=LOGISTIC");
  bench("RetinaNet", MBX_PRESET_TORCHVISION_RETINANET, 16, 80, false, bw, stream);
  bench("Retina+ATSS", MBX_PRESET_TORCHVISION_RETINANET, 16, 80, false, bw, stream, "assigner=ATSS");
  CK(cudaStreamDestroy(stream));
  return 0;
}
