// The CUDA path through the public C API: golden cases, CPU-vs-GPU parity on
// realistic batches, fp16/bf16 inputs, edge cases, streams, device-resident
// upstream gradients and error reporting. Every test skips without a usable
// CUDA device (mbx_cuda_available() == 0).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "golden_case.h"
#include "mbx/mbx.h"

namespace {

#define SKIP_WITHOUT_CUDA() \
  if (mbx_cuda_available() == 0) GTEST_SKIP() << "no usable CUDA device/driver"

#define ASSERT_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call
#define ASSERT_MBX(call) ASSERT_EQ((call), MBX_STATUS_OK) << #call << ": " << mbx_last_error()

constexpr DLDataType kF32{kDLFloat, 32, 1};
constexpr DLDataType kF64{kDLFloat, 64, 1};
constexpr DLDataType kF16{kDLFloat, 16, 1};
constexpr DLDataType kBF16{kDLBfloat, 16, 1};
constexpr DLDataType kI32{kDLInt, 32, 1};

// A tensor with host storage and, on demand, a device copy.
struct Tensor {
  std::vector<int64_t> shape;
  DLDataType dt;
  std::vector<unsigned char> host;
  void* dev = nullptr;
  DLTensor t{};

  Tensor(std::vector<int64_t> s, DLDataType d) : shape(std::move(s)), dt(d) {
    host.assign(bytes(), 0);
  }
  ~Tensor() {
    if (dev) cudaFree(dev);
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * dt.bits / 8; }
  template <typename T>
  T* h() {
    return reinterpret_cast<T*>(host.data());
  }
  DLTensor* cpu() {
    t = DLTensor{};
    t.data = host.data();
    t.device = {kDLCPU, 0};
    t.ndim = static_cast<int32_t>(shape.size());
    t.dtype = dt;
    t.shape = shape.data();
    return &t;
  }
  // Uploads the host contents (outputs: a 0x7f byte pattern, so that an
  // element the library forgets to write shows up).
  DLTensor* cuda(bool is_output = false) {
    if (!dev && cudaMalloc(&dev, bytes() + 16) != cudaSuccess) throw std::runtime_error("cudaMalloc");
    if (is_output) {
      if (cudaMemset(dev, 0x7f, bytes()) != cudaSuccess) throw std::runtime_error("cudaMemset");
    } else if (cudaMemcpy(dev, host.data(), bytes(), cudaMemcpyHostToDevice) != cudaSuccess) {
      throw std::runtime_error("cudaMemcpy H2D");
    }
    cpu();
    t.data = dev;
    t.device = {kDLCUDA, 0};
    return &t;
  }
  void fetch() {
    if (dev && cudaMemcpy(host.data(), dev, bytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
      throw std::runtime_error("cudaMemcpy D2H");
  }
  // Element i as double, whatever the float dtype.
  double at(int64_t i) const {
    if (dt.bits == 64) return reinterpret_cast<const double*>(host.data())[i];
    if (dt.bits == 32) return reinterpret_cast<const float*>(host.data())[i];
    const auto* p = reinterpret_cast<const uint16_t*>(host.data()) + i;
    if (dt.code == kDLBfloat) {
      __nv_bfloat16_raw r;
      r.x = *p;
      return static_cast<double>(__bfloat162float(__nv_bfloat16(r)));
    }
    __half_raw r;
    r.x = *p;
    return static_cast<double>(__half2float(__half(r)));
  }
};

// Rounds float32 values to fp16 / bf16 storage (and back, for the float32
// twin of the same numbers).
void round_to(const std::vector<float>& src, DLDataType dt, Tensor* out, std::vector<float>* back) {
  back->resize(src.size());
  auto* o = out->h<uint16_t>();
  for (size_t i = 0; i < src.size(); ++i) {
    if (dt.code == kDLBfloat) {
      const __nv_bfloat16 v = __float2bfloat16_rn(src[i]);
      o[i] = static_cast<__nv_bfloat16_raw>(v).x;
      (*back)[i] = __bfloat162float(v);
    } else {
      const __half v = __float2half_rn(src[i]);
      o[i] = static_cast<__half_raw>(v).x;
      (*back)[i] = __half2float(v);
    }
  }
}

struct Problem {
  int64_t B = 0, P = 0, C = 0, G = 0;
  std::vector<float> priors, gt_boxes, loc, conf;
  std::vector<int32_t> labels, counts;
};

enum class Shape { kSsd300, kRetinaNet };

// Realistic random batches: SSD300 VOC priors (normalised) or RetinaNet
// anchors of a 640x832 image (P = 99765, pixels), converted to the preset's
// prior format. Image 0 has no GT; padding rows hold garbage.
Problem make_problem(Shape shape, int64_t B, int64_t C, mbx_prior_format_t fmt, unsigned seed) {
  Problem pb;
  pb.B = B;
  pb.C = C;
  pb.G = 12;
  std::vector<float> pri;
  bool corners_native;
  double sx = 1, sy = 1;
  if (shape == Shape::kSsd300) {
    int64_t P = 0;
    mbx_priors_ssd_count(MBX_SSD300_VOC, &P);
    Tensor t({P, 4}, kF32);
    mbx_priors_ssd(MBX_SSD300_VOC, t.cpu());
    pri.assign(t.h<float>(), t.h<float>() + 4 * P);
    corners_native = false;
  } else {
    int64_t P = 0;
    mbx_priors_retinanet_count(640, 832, &P);
    Tensor t({P, 4}, kF32);
    mbx_priors_retinanet(640, 832, t.cpu());
    pri.assign(t.h<float>(), t.h<float>() + 4 * P);
    corners_native = true;
    sx = 832;
    sy = 640;
  }
  pb.P = static_cast<int64_t>(pri.size() / 4);
  const bool want_corners = fmt == MBX_PRIOR_CORNERS;
  if (want_corners != corners_native) {
    for (int64_t p = 0; p < pb.P; ++p) {
      float* r = &pri[4 * p];
      const float a = r[0], b = r[1], c = r[2], d = r[3];
      if (want_corners) {  // (cx,cy,w,h) -> corners
        r[0] = a - c / 2; r[1] = b - d / 2; r[2] = a + c / 2; r[3] = b + d / 2;
      } else {             // corners -> (cx,cy,w,h)
        r[0] = (a + c) / 2; r[1] = (b + d) / 2; r[2] = c - a; r[3] = d - b;
      }
    }
  }
  pb.priors = pri;
  const int64_t K = C;  // labels are drawn in [0, C-1): valid for both losses
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> U(0.f, 1.f);
  std::normal_distribution<float> N(0.f, 1.f);
  pb.gt_boxes.resize(B * pb.G * 4);
  pb.labels.resize(B * pb.G);
  pb.counts.resize(B);
  for (int64_t b = 0; b < B; ++b) {
    pb.counts[b] = b == 0 ? 0 : static_cast<int32_t>(1 + rng() % pb.G);
    for (int64_t g = 0; g < pb.G; ++g) {
      float* r = &pb.gt_boxes[(b * pb.G + g) * 4];
      if (g < pb.counts[b]) {
        const float w = 0.03f + 0.5f * U(rng), h = 0.03f + 0.5f * U(rng);
        const float x1 = (1.f - w) * U(rng), y1 = (1.f - h) * U(rng);
        r[0] = static_cast<float>(x1 * sx);
        r[1] = static_cast<float>(y1 * sy);
        r[2] = static_cast<float>((x1 + w) * sx);
        r[3] = static_cast<float>((y1 + h) * sy);
        pb.labels[b * pb.G + g] = static_cast<int32_t>(rng() % (K - 1));
      } else {  // padding: never read for meaning
        r[0] = NAN; r[1] = 5; r[2] = -3; r[3] = 1e30f;
        pb.labels[b * pb.G + g] = -7;
      }
    }
  }
  pb.loc.resize(B * pb.P * 4);
  for (auto& v : pb.loc) v = 0.7f * N(rng);
  pb.conf.resize(B * pb.P * C);
  for (auto& v : pb.conf) v = 2.0f * N(rng);
  return pb;
}

// The match inputs of a Problem (priors, gt_boxes, gt_labels, gt_counts) as
// host tensors; .cpu() / .cuda() hand them to the C API.
struct MatchInputs {
  Tensor priors, boxes, labels, counts;
  explicit MatchInputs(const Problem& pb)
      : priors({pb.P, 4}, kF32), boxes({pb.B, pb.G, 4}, kF32), labels({pb.B, pb.G}, kI32),
        counts({pb.B}, kI32) {
    std::memcpy(priors.host.data(), pb.priors.data(), priors.bytes());
    std::memcpy(boxes.host.data(), pb.gt_boxes.data(), boxes.bytes());
    std::memcpy(labels.host.data(), pb.labels.data(), labels.bytes());
    std::memcpy(counts.host.data(), pb.counts.data(), counts.bytes());
  }
};

struct Result {
  std::vector<int32_t> ct, mg, np, np2;
  std::vector<float> lt;
  double loss[2] = {0, 0};
  std::vector<double> gl, gc;  // as double, whatever the dtype
};

struct RunConfig {
  bool cuda = false;
  DLDataType loc_dt = kF32, conf_dt = kF32;
  const double* grad_loss = nullptr;  // (up_loc, up_conf) or null
  DLDataType grad_loss_dt = kF64;
  DLDataType loss_dt = kF64;
  mbx_context_t* ctx = nullptr;
  cudaStream_t stream = nullptr;  // the context's stream, if any
};

// match + fused forward/backward on one path. Half inputs come from the
// float32 values rounded to the dtype.
void run(const Problem& pb, const mbx_options_t& o, const RunConfig& rc, Result* r) {
  const int64_t B = pb.B, P = pb.P, C = pb.C;
  MatchInputs m(pb);
  Tensor loc({B, P, 4}, rc.loc_dt), conf({B, P, C}, rc.conf_dt);
  std::vector<float> tmp;
  if (rc.loc_dt.bits == 32) std::memcpy(loc.host.data(), pb.loc.data(), loc.bytes());
  else round_to(pb.loc, rc.loc_dt, &loc, &tmp);
  if (rc.conf_dt.bits == 32) std::memcpy(conf.host.data(), pb.conf.data(), conf.bytes());
  else round_to(pb.conf, rc.conf_dt, &conf, &tmp);
  Tensor ct({B, P}, kI32), mg({B, P}, kI32), lt({B, P, 4}, kF32), np({B}, kI32), np2({B}, kI32);
  Tensor loss({2}, rc.loss_dt), gl({B, P, 4}, rc.loc_dt), gc({B, P, C}, rc.conf_dt);
  Tensor up({2}, rc.grad_loss_dt);
  if (rc.grad_loss) {
    for (int k = 0; k < 2; ++k) {
      if (rc.grad_loss_dt.bits == 64) up.h<double>()[k] = rc.grad_loss[k];
      else up.h<float>()[k] = static_cast<float>(rc.grad_loss[k]);
    }
  }
  const int64_t K = o.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL ? C : C - 1;
  auto in = [&](Tensor& t) { return rc.cuda ? t.cuda() : t.cpu(); };
  auto out = [&](Tensor& t) { return rc.cuda ? t.cuda(true) : t.cpu(); };
  DLTensor *dp = in(m.priors), *db = in(m.boxes), *dl = in(m.labels), *dc = in(m.counts);
  DLTensor *dloc = in(loc), *dconf = in(conf);
  DLTensor *oct = out(ct), *omg = out(mg), *olt = out(lt), *onp = out(np), *oloss = out(loss),
           *onp2 = out(np2), *ogl = out(gl), *ogc = out(gc);
  DLTensor* dup = rc.grad_loss ? in(up) : nullptr;
  // Pageable uploads and memsets may still be in flight; a non-blocking
  // stream would not wait for them.
  if (rc.cuda) ASSERT_CUDA(cudaDeviceSynchronize());
  ASSERT_MBX(mbx_match(rc.ctx, &o, K, dp, db, dl, dc, oct, omg, olt, onp));
  ASSERT_MBX(mbx_loss_forward_backward(rc.ctx, &o, dp, db, dl, dc, dloc, dconf, dup, oloss, onp2,
                                       ogl, ogc));
  if (rc.cuda) {
    if (rc.stream) ASSERT_CUDA(cudaStreamSynchronize(rc.stream));
    ASSERT_CUDA(cudaDeviceSynchronize());
    for (Tensor* t : {&ct, &mg, &lt, &np, &np2, &loss, &gl, &gc}) t->fetch();
  }
  r->ct.assign(ct.h<int32_t>(), ct.h<int32_t>() + B * P);
  r->mg.assign(mg.h<int32_t>(), mg.h<int32_t>() + B * P);
  r->np.assign(np.h<int32_t>(), np.h<int32_t>() + B);
  r->np2.assign(np2.h<int32_t>(), np2.h<int32_t>() + B);
  r->lt.assign(lt.h<float>(), lt.h<float>() + B * P * 4);
  r->loss[0] = loss.at(0);
  r->loss[1] = loss.at(1);
  r->gl.resize(B * P * 4);
  for (int64_t i = 0; i < B * P * 4; ++i) r->gl[i] = gl.at(i);
  r->gc.resize(B * P * C);
  for (int64_t i = 0; i < B * P * C; ++i) r->gc[i] = gc.at(i);
}

// |a - b| <= abs_of_max * max|b| + rel * |b|, elementwise. Rows of `row`
// elements where one side is all zero and the other is not are mining
// boundary swaps (two negatives whose CE differs by float rounding between
// the paths); up to `allowed_swaps` of them are tolerated.
void expect_close(const char* what, const std::vector<double>& a, const std::vector<double>& b,
                  double abs_of_max, double rel, int64_t row = 0, int64_t allowed_swaps = 0) {
  ASSERT_EQ(a.size(), b.size()) << what;
  double mx = 0;
  for (double v : b) mx = std::max(mx, std::fabs(v));
  int64_t bad = 0, first = -1, swaps = 0;
  auto ok = [&](size_t i) {
    return std::fabs(a[i] - b[i]) <= abs_of_max * mx + rel * std::fabs(b[i]) + 1e-30;
  };
  if (row > 0) {
    for (size_t r0 = 0; r0 < a.size(); r0 += row) {
      bool all_ok = true, za = true, zb = true;
      for (size_t i = r0; i < r0 + row; ++i) {
        all_ok = all_ok && ok(i);
        za = za && a[i] == 0;
        zb = zb && b[i] == 0;
      }
      if (all_ok) continue;
      if (za != zb && swaps < allowed_swaps) { ++swaps; continue; }
      for (size_t i = r0; i < r0 + row; ++i)
        if (!ok(i)) { if (first < 0) first = i; ++bad; }
    }
  } else {
    for (size_t i = 0; i < a.size(); ++i)
      if (!ok(i)) { if (first < 0) first = i; ++bad; }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " elements out of tolerance; first at flat " << first
                    << ": got " << (first >= 0 ? a[first] : 0) << ", expected "
                    << (first >= 0 ? b[first] : 0) << " (max |ref| " << mx << ")";
}

void expect_integer_outputs_equal(const Result& g, const Result& c) {
  EXPECT_EQ(g.np, c.np) << "num_pos";
  // The loss call's num_pos is the matching's, or after HARD_EXAMPLE mining
  // the positives kept: compare it with the cpu path's loss call.
  EXPECT_EQ(g.np2, c.np2) << "num_pos of the loss call";
  int64_t bad_ct = 0, bad_mg = 0;
  for (size_t i = 0; i < c.ct.size(); ++i) {
    bad_ct += g.ct[i] != c.ct[i];
    bad_mg += g.mg[i] != c.mg[i];
  }
  EXPECT_EQ(bad_ct, 0) << "conf_target mismatches";
  EXPECT_EQ(bad_mg, 0) << "matched_gt mismatches";
}

void expect_loss_close(const Result& g, const Result& c, double rtol) {
  for (int k = 0; k < 2; ++k)
    EXPECT_LE(std::fabs(g.loss[k] - c.loss[k]), rtol * std::fabs(c.loss[k]) + 1e-12)
        << (k ? "loss_conf" : "loss_loc") << ": gpu " << g.loss[k] << " cpu " << c.loss[k];
}

mbx_options_t preset(mbx_preset_t p) {
  mbx_options_t o;
  mbx_options_init(&o, p);
  return o;
}

struct Ctx {
  mbx_context_t* c = nullptr;
  Ctx() { mbx_context_create(&c); }
  ~Ctx() { mbx_context_destroy(c); }
};

// --------------------------------------------------------------------------
// Golden cases

std::vector<std::string> golden_dirs() {
  std::vector<std::string> all = mbx_test::find_cases(MBX_GOLDEN_DIR);
  for (const auto& d : mbx_test::find_cases(MBX_GENERATED_DIR)) all.push_back(d);
  return all;
}

TEST(CudaGolden, EveryCaseMatchesTheReference) {
  SKIP_WITHOUT_CUDA();
  const auto dirs = golden_dirs();
  ASSERT_FALSE(dirs.empty()) << "no golden case found under " << MBX_GOLDEN_DIR;
  for (const auto& d : dirs) {
    const mbx_test::CaseResult r = mbx_test::run_case(d, MBX_PATH_CUDA);
    // Modes the cuda path refuses by name (docs/SPEC.md §4.6) are skips.
    if (r.skipped && r.detail.rfind("unsupported: ", 0) == 0) continue;
    EXPECT_FALSE(r.skipped) << r.name << ": " << r.detail;
    EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
  }
}

// --------------------------------------------------------------------------
// CPU vs GPU parity on realistic batches, every preset

struct ParityCase {
  const char* name;
  mbx_preset_t preset;
  Shape shape;
  int64_t B, C;
};

void PrintTo(const ParityCase& c, std::ostream* os) { *os << c.name; }

class CudaParity : public ::testing::TestWithParam<ParityCase> {};

TEST_P(CudaParity, MatchesCpuPath) {
  SKIP_WITHOUT_CUDA();
  const ParityCase& pc = GetParam();
  const mbx_options_t o = preset(pc.preset);
  const Problem pb = make_problem(pc.shape, pc.B, pc.C, static_cast<mbx_prior_format_t>(o.prior_format), 1234);
  Result cpu, gpu;
  RunConfig rc;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
  rc.cuda = true;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
  expect_integer_outputs_equal(gpu, cpu);
  int64_t total = 0;
  for (int32_t n : cpu.np) total += n;
  EXPECT_GT(total, 0) << "the batch should have positives";
  expect_loss_close(gpu, cpu, 1e-4);
  std::vector<double> lt_g(gpu.lt.begin(), gpu.lt.end()), lt_c(cpu.lt.begin(), cpu.lt.end());
  expect_close("loc_target", lt_g, lt_c, 1e-5, 1e-5);
  expect_close("grad_loc", gpu.gl, cpu.gl, 1e-4, 1e-4);
  const bool ce = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE;
  expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4, pb.C, ce ? pb.B : 0);
}

INSTANTIATE_TEST_SUITE_P(
    Presets, CudaParity,
    ::testing::Values(ParityCase{"ssd_pytorch_ssd300", MBX_PRESET_SSD_PYTORCH, Shape::kSsd300, 32, 21},
                      ParityCase{"torchvision_ssd_ssd300", MBX_PRESET_TORCHVISION_SSD, Shape::kSsd300, 32, 21},
                      ParityCase{"yhenon_ssd300", MBX_PRESET_YHENON_RETINANET, Shape::kSsd300, 32, 21},
                      ParityCase{"tv_retinanet_ssd300", MBX_PRESET_TORCHVISION_RETINANET, Shape::kSsd300, 32, 21},
                      ParityCase{"ssd_pytorch_retina", MBX_PRESET_SSD_PYTORCH, Shape::kRetinaNet, 8, 80},
                      ParityCase{"torchvision_ssd_retina", MBX_PRESET_TORCHVISION_SSD, Shape::kRetinaNet, 8, 80},
                      ParityCase{"yhenon_retina", MBX_PRESET_YHENON_RETINANET, Shape::kRetinaNet, 8, 80},
                      ParityCase{"tv_retinanet_retina", MBX_PRESET_TORCHVISION_RETINANET, Shape::kRetinaNet, 8, 80}),
    [](const ::testing::TestParamInfo<ParityCase>& i) { return std::string(i.param.name); });

// DOUBLE_COUNT_POSITIVES and "every negative" (ratio <= 0) on the device.
TEST(CudaParityOptions, MiningVariantsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (int variant = 0; variant < 3; ++variant) {
    mbx_options_t o = preset(MBX_PRESET_TORCHVISION_SSD);
    if (variant == 0) { o.neg_overflow = MBX_NEG_OVERFLOW_DOUBLE_COUNT_POSITIVES; o.neg_pos_ratio = 5000; }
    if (variant == 1) o.neg_pos_ratio = 0;
    if (variant == 2) { o.normalization = MBX_NORM_PER_IMAGE; o.neg_pos_ratio = 1.5; o.clamp_num_neg = 1; }
    const Problem pb = make_problem(Shape::kSsd300, 6, 21, MBX_PRIOR_CORNERS, 77 + variant);
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    SCOPED_TRACE("variant " + std::to_string(variant));
    expect_integer_outputs_equal(gpu, cpu);
    expect_loss_close(gpu, cpu, 1e-4);
    expect_close("grad_loc", gpu.gl, cpu.gl, 1e-4, 1e-4);
    expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4, pb.C, pb.B);
  }
}

// The Caffe options the cuda path implements: L2, the box codings,
// encode_variance_in_target, BATCH_SIZE / FULL and loc_average_coords under
// every normalisation (docs/SPEC.md §4.6).
TEST(CudaParityOptions, CaffeLossOptionsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (int variant = 0; variant < 5; ++variant) {
    mbx_options_t o = preset(MBX_PRESET_TORCHVISION_SSD);
    if (variant == 0) o.loc_loss = MBX_LOC_LOSS_L2;
    if (variant == 1) { o.box_coding = MBX_BOX_CODING_CORNER; o.encode_variance_in_target = 1; }
    if (variant == 2) { o.box_coding = MBX_BOX_CODING_CORNER_SIZE; o.normalization = MBX_NORM_BATCH_SIZE; }
    if (variant == 3) { o.encode_variance_in_target = 1; o.normalization = MBX_NORM_FULL; o.loc_average_coords = 1; }
    if (variant == 4) { o.loc_loss = MBX_LOC_LOSS_L1; o.clamp_num_neg = 0; o.loc_average_coords = 1; }  // sgrvinod-like
    const Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CORNERS, 177 + variant);
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    SCOPED_TRACE("variant " + std::to_string(variant));
    expect_integer_outputs_equal(gpu, cpu);
    expect_close("loc_target", std::vector<double>(gpu.lt.begin(), gpu.lt.end()),
                 std::vector<double>(cpu.lt.begin(), cpu.lt.end()), 1e-5, 1e-5);
    expect_loss_close(gpu, cpu, 1e-4);
    expect_close("grad_loc", gpu.gl, cpu.gl, 1e-4, 1e-4);
    expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4, pb.C, pb.B);
  }
}

// loc_loss GIOU / DIOU / CIOU (docs/SPEC.md §4.7): the kernel's float64 IoU
// terms (iou_loss_math.h) equal the cpu path's, on the RetinaNet workload
// and on SSD300 under every box coding, with degenerate predictions (sizes
// underflowing to 0, subnormal, clamped; inverted corner boxes) on every
// 7th prior, and with float16 loc.
TEST(CudaParityOptions, IouLossesMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const mbx_loc_loss_t kinds[] = {MBX_LOC_LOSS_GIOU, MBX_LOC_LOSS_DIOU, MBX_LOC_LOSS_CIOU};
  const float degenerate[][4] = {{0, 0, -1e4f, -1e4f}, {0, 0, -3600, -3600}, {0, 0, 1e4f, 1e4f},
                                 {0.4f, 0.1f, -0.4f, 0.3f}, {0.6f, 0.6f, -0.6f, -0.6f}};
  for (int k = 0; k < 3; ++k)
    for (int variant = 0; variant < 5; ++variant) {
      const bool retina = variant == 0;
      mbx_options_t o = preset(retina ? MBX_PRESET_TORCHVISION_RETINANET : MBX_PRESET_TORCHVISION_SSD);
      o.loc_loss = kinds[k];
      if (variant == 2) o.box_coding = MBX_BOX_CODING_CORNER;
      if (variant == 3) {  // also: the IoU term inside the HARD_EXAMPLE ranking
        o.box_coding = MBX_BOX_CODING_CORNER_SIZE;
        o.normalization = MBX_NORM_PER_IMAGE;
        o.mining = MBX_MINING_HARD_EXAMPLE;
        o.mining_sample_size = 256;
      }
      if (variant == 4) { o.encode_variance_in_target = 1; o.loc_average_coords = 1; }
      Problem pb = make_problem(retina ? Shape::kRetinaNet : Shape::kSsd300, retina ? 2 : 4, retina ? 80 : 21,
                                MBX_PRIOR_CORNERS, 300 + 7 * k + variant);
      if (variant >= 1)
        for (int64_t i = 0; i < pb.B * pb.P; i += 7)
          for (int c = 0; c < 4; ++c) pb.loc[i * 4 + c] = degenerate[(i / 7) % 5][c];
      SCOPED_TRACE("loss " + std::to_string(k) + " variant " + std::to_string(variant));
      Result cpu, gpu;
      RunConfig rc;
      ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
      rc.cuda = true;
      ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
      expect_integer_outputs_equal(gpu, cpu);
      int64_t total = 0;
      for (int32_t n : cpu.np) total += n;
      EXPECT_GT(total, 0) << "the batch should have positives";
      for (double g : gpu.gl) ASSERT_TRUE(std::isfinite(g));
      expect_loss_close(gpu, cpu, 1e-4);
      // float64 terms on both: loss_loc differs only by the order of the sums
      EXPECT_NEAR(gpu.loss[0], cpu.loss[0], 1e-9 * std::fabs(cpu.loss[0]) + 1e-12);
      expect_close("grad_loc", gpu.gl, cpu.gl, 1e-5, 1e-5);
      expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4, pb.C, retina ? 0 : pb.B);
      if (variant == 1) {  // float16 loc: the rounded values, only the gradient storage rounds
        Problem twin = pb;
        Tensor scratch({pb.B, pb.P, 4}, kF16);
        round_to(pb.loc, kF16, &scratch, &twin.loc);
        Result f, h;
        ASSERT_NO_FATAL_FAILURE(run(twin, o, rc, &f));
        rc.loc_dt = kF16;
        ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &h));
        expect_loss_close(h, f, 1e-6);
        // float16 storage: subnormal gradients round to 2^-24 steps
        expect_close("grad_loc f16", h.gl, f.gl, 1e-4, 1e-3);
      }
    }
}

// --------------------------------------------------------------------------
// The Caffe SSD modes on the device: force_match = BIPARTITE, mining =
// HARD_EXAMPLE (with and without NMS) and conf_loss = LOGISTIC (docs/SPEC.md
// §2.3, §4.6). Matching and the HARD_EXAMPLE selection must be the cpu
// path's exactly (float64 IoUs and ranking keys on both); the losses and
// gradients within the tolerances of the other parity tests.

mbx_options_t caffe_mode(const std::string& name) {
  mbx_options_t o = preset(name == "sgrvinod_ssd" ? MBX_PRESET_SGRVINOD_SSD : MBX_PRESET_CAFFE_SSD);
  const bool logistic = name.rfind("logistic", 0) == 0;
  const bool hard = name.find("hard") != std::string::npos;
  const bool nms = name.find("nms") != std::string::npos;
  if (logistic) EXPECT_EQ(mbx_options_set(&o, "conf_loss", "LOGISTIC"), MBX_STATUS_OK) << mbx_last_error();
  if (hard) EXPECT_EQ(mbx_options_set(&o, "mining", "HARD_EXAMPLE"), MBX_STATUS_OK) << mbx_last_error();
  if (nms) EXPECT_EQ(mbx_options_set(&o, "mining_nms_threshold", "0.45"), MBX_STATUS_OK) << mbx_last_error();
  return o;
}

// Match outputs, both num_pos outputs (under HARD_EXAMPLE the loss call's
// counts the kept positives) and every target equal; losses and gradients
// close. LOGISTIC with MAX_NEGATIVE ranks float32 keys on the device
// (float64 on the cpu): up to B negatives may swap at the mining boundary.
void expect_caffe_parity(const Result& g, const Result& c, const Problem& pb) {
  EXPECT_EQ(g.np, c.np) << "num_pos of the match call";
  EXPECT_EQ(g.np2, c.np2) << "num_pos of the loss call";
  int64_t bad_ct = 0, bad_mg = 0;
  for (size_t i = 0; i < c.ct.size(); ++i) {
    bad_ct += g.ct[i] != c.ct[i];
    bad_mg += g.mg[i] != c.mg[i];
  }
  EXPECT_EQ(bad_ct, 0) << "conf_target mismatches";
  EXPECT_EQ(bad_mg, 0) << "matched_gt mismatches";
  expect_close("loc_target", std::vector<double>(g.lt.begin(), g.lt.end()),
               std::vector<double>(c.lt.begin(), c.lt.end()), 1e-5, 1e-5);
  expect_loss_close(g, c, 1e-4);
  expect_close("grad_loc", g.gl, c.gl, 1e-4, 1e-4);
  expect_close("grad_conf", g.gc, c.gc, 1e-4, 1e-4, pb.C, pb.B);
}

class CudaCaffe : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaCaffe, MatchesCpuPath) {
  SKIP_WITHOUT_CUDA();
  const std::string name = GetParam();
  const mbx_options_t o = caffe_mode(name);
  const Problem pb = make_problem(Shape::kSsd300, 8, 21, static_cast<mbx_prior_format_t>(o.prior_format), 4321);
  Result cpu, gpu;
  RunConfig rc;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
  rc.cuda = true;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
  expect_caffe_parity(gpu, cpu, pb);
  int64_t total = 0;
  for (int32_t n : cpu.np2) total += n;
  EXPECT_GT(total, 0) << "the loss should see positives";
  // Image 0 has no GT: every prior negative, nothing matched.
  ASSERT_EQ(pb.counts[0], 0);
  EXPECT_EQ(gpu.np[0], 0);
  EXPECT_EQ(gpu.np2[0], 0);
  for (int64_t p = 0; p < pb.P; ++p) {
    ASSERT_EQ(gpu.ct[p], 0) << "prior " << p;
    ASSERT_EQ(gpu.mg[p], -1) << "prior " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CudaCaffe,
                         ::testing::Values("caffe_ssd", "hard_example", "hard_example_nms", "logistic",
                                           "logistic_hard_example_nms", "sgrvinod_ssd"),
                         [](const ::testing::TestParamInfo<const char*>& i) { return std::string(i.param); });

// Greedy bipartite pairs on a RetinaNet-sized image set (P = 99765, pixels)
// and on GTs that share their best prior (the recompute of a taken
// candidate): the matching of the cpu path, pair for pair.
TEST(CudaCaffeMatch, BipartiteMatchesCpuOnLargeAndCrowdedImages) {
  SKIP_WITHOUT_CUDA();
  mbx_options_t o = preset(MBX_PRESET_CAFFE_SSD);
  Problem big = make_problem(Shape::kRetinaNet, 3, 21, MBX_PRIOR_CORNERS, 8);
  Problem crowd = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CORNERS, 9);
  // Image 1 of `crowd`: twelve nearly identical boxes (same best prior,
  // equal IoUs for the exact duplicates: ties go to the lower GT).
  crowd.counts[1] = 12;
  for (int g = 0; g < 12; ++g) {
    float* r = &crowd.gt_boxes[(1 * crowd.G + g) * 4];
    const float d = 0.002f * static_cast<float>(g / 2);
    r[0] = 0.30f + d; r[1] = 0.31f; r[2] = 0.52f + d; r[3] = 0.55f;
    crowd.labels[1 * crowd.G + g] = g % 5;
  }
  for (const Problem* pb : {&big, &crowd}) {
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(*pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(*pb, o, rc, &gpu));
    expect_caffe_parity(gpu, cpu, *pb);
  }
}

// mining_sample_size below the positives: HARD_EXAMPLE drops positives, the
// loss's num_pos counts only the kept ones, and a dropped positive has no
// regression gradient; the same priors as on the cpu path.
TEST(CudaCaffeMining, HardExampleDropsPositivesLikeCpu) {
  SKIP_WITHOUT_CUDA();
  for (const char* nms : {"0", "0.45"}) {
    mbx_options_t o = caffe_mode("hard_example");
    ASSERT_MBX(mbx_options_set(&o, "mining_sample_size", "6"));
    ASSERT_MBX(mbx_options_set(&o, "mining_nms_threshold", nms));
    const Problem pb = make_problem(Shape::kSsd300, 6, 21, MBX_PRIOR_CORNERS, 606);
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    SCOPED_TRACE(std::string("nms ") + nms);
    expect_caffe_parity(gpu, cpu, pb);
    int64_t dropped = 0;
    for (int64_t b = 0; b < pb.B; ++b) {
      EXPECT_LE(gpu.np2[b], gpu.np[b]);
      EXPECT_LE(gpu.np2[b], 6);
      int64_t with_grad = 0;
      for (int64_t p = 0; p < pb.P; ++p) {
        if (gpu.ct[b * pb.P + p] <= 0) continue;
        bool any = false;
        for (int k = 0; k < 4; ++k) any = any || gpu.gl[(b * pb.P + p) * 4 + k] != 0.0;
        with_grad += any;
      }
      EXPECT_EQ(with_grad, gpu.np2[b]) << "image " << b << ": positives with a regression gradient";
      dropped += gpu.np[b] - gpu.np2[b];
    }
    EXPECT_GT(dropped, 0) << "the test should drop positives";
  }
}

// The Caffe modes under every normalisation (EXTERNAL, BATCH_SIZE, FULL,
// PER_IMAGE, NONE), the box codings, encode_variance_in_target, L2,
// loc_average_coords and DOUBLE_COUNT_POSITIVES.
TEST(CudaCaffeMining, NormalisationsAndCodingsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  struct Variant { const char* mode; const char* overrides[4][2]; };
  const Variant variants[] = {
      {"hard_example_nms", {{"normalization", "EXTERNAL"}, {"external_norm", "7.5"}, {"box_coding", "CORNER"}, {"encode_variance_in_target", "true"}}},
      {"logistic", {{"normalization", "BATCH_SIZE"}, {"box_coding", "CORNER_SIZE"}, {"loc_loss", "L2"}, {nullptr, nullptr}}},
      {"logistic_hard_example_nms", {{"normalization", "FULL"}, {"loc_average_coords", "true"}, {"loc_loss", "L1"}, {nullptr, nullptr}}},
      {"hard_example", {{"normalization", "PER_IMAGE"}, {"encode_variance_in_target", "true"}, {"loc_loss", "L2"}, {nullptr, nullptr}}},
      {"logistic", {{"neg_overflow", "DOUBLE_COUNT_POSITIVES"}, {"neg_pos_ratio", "5000"}, {"normalization", "NONE"}, {nullptr, nullptr}}},
  };
  int v = 0;
  for (const Variant& var : variants) {
    SCOPED_TRACE(std::string(var.mode) + " variant " + std::to_string(v));
    mbx_options_t o = caffe_mode(var.mode);
    for (const auto& kv : var.overrides)
      if (kv[0]) ASSERT_MBX(mbx_options_set(&o, kv[0], kv[1]));
    const Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CORNERS, 700 + v++);
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    expect_caffe_parity(gpu, cpu, pb);
  }
}

// fp16 / bf16 inputs (both paths read the same 16-bit values): the same
// decisions, the losses and gradients within the storage rounding.
TEST(CudaCaffeHalf, HalfInputsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (DLDataType dt : {kF16, kBF16})
  for (const char* name : {"caffe_ssd", "hard_example_nms", "logistic", "logistic_hard_example_nms"}) {
    SCOPED_TRACE(std::string(name) + (dt.code == kDLBfloat ? " bf16" : " fp16"));
    const double rel = dt.code == kDLBfloat ? 8e-3 : 2e-3;
    const mbx_options_t o = caffe_mode(name);
    const Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CORNERS, 1616);
    Result cpu, gpu;
    RunConfig rc;
    rc.loc_dt = dt;
    rc.conf_dt = dt;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    EXPECT_EQ(gpu.np, cpu.np);
    EXPECT_EQ(gpu.np2, cpu.np2);
    EXPECT_EQ(gpu.ct, cpu.ct);
    EXPECT_EQ(gpu.mg, cpu.mg);
    expect_loss_close(gpu, cpu, 1e-4);
    expect_close("grad_loc", gpu.gl, cpu.gl, 1e-5, rel);
    expect_close("grad_conf", gpu.gc, cpu.gc, 1e-5, rel, pb.C, pb.B);
  }
}

// mbx_loss_forward then mbx_loss_backward give bitwise what the fused call
// gives, and two fused calls give bitwise the same results.
TEST(CudaCaffeExec, SeparateCallsEqualFusedAndRunsRepeatBitwise) {
  SKIP_WITHOUT_CUDA();
  for (const char* name : {"caffe_ssd", "hard_example_nms", "logistic", "logistic_hard_example_nms"}) {
    SCOPED_TRACE(name);
    const mbx_options_t o = caffe_mode(name);
    const Problem pb = make_problem(Shape::kSsd300, 5, 21, MBX_PRIOR_CORNERS, 55);
    Result a, b;
    RunConfig rc;
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &a));
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &b));
    EXPECT_EQ(a.ct, b.ct);
    EXPECT_EQ(a.np2, b.np2);
    EXPECT_EQ(a.loss[0], b.loss[0]);
    EXPECT_EQ(a.loss[1], b.loss[1]);
    EXPECT_EQ(a.gl, b.gl);
    EXPECT_EQ(a.gc, b.gc);

    MatchInputs m(pb);
    Tensor loc({pb.B, pb.P, 4}, kF32), conf({pb.B, pb.P, pb.C}, kF32), loss({2}, kF64), np({pb.B}, kI32),
        gl({pb.B, pb.P, 4}, kF32), gc({pb.B, pb.P, pb.C}, kF32);
    std::memcpy(loc.host.data(), pb.loc.data(), loc.bytes());
    std::memcpy(conf.host.data(), pb.conf.data(), conf.bytes());
    DLTensor *dp = m.priors.cuda(), *db = m.boxes.cuda(), *dl = m.labels.cuda(), *dc = m.counts.cuda();
    DLTensor *dloc = loc.cuda(), *dconf = conf.cuda();
    DLTensor *oloss = loss.cuda(true), *onp = np.cuda(true), *ogl = gl.cuda(true), *ogc = gc.cuda(true);
    ASSERT_CUDA(cudaDeviceSynchronize());
    ASSERT_MBX(mbx_loss_forward(nullptr, &o, dp, db, dl, dc, dloc, dconf, oloss, onp));
    ASSERT_MBX(mbx_loss_backward(nullptr, &o, dp, db, dl, dc, dloc, dconf, nullptr, ogl, ogc));
    ASSERT_CUDA(cudaDeviceSynchronize());
    for (Tensor* t : {&loss, &np, &gl, &gc}) t->fetch();
    EXPECT_EQ(loss.at(0), a.loss[0]);
    EXPECT_EQ(loss.at(1), a.loss[1]);
    EXPECT_EQ(std::vector<int32_t>(np.h<int32_t>(), np.h<int32_t>() + pb.B), a.np2);
    int64_t diff_l = 0, diff_c = 0;
    for (int64_t i = 0; i < pb.B * pb.P * 4; ++i) diff_l += gl.at(i) != a.gl[i];
    for (int64_t i = 0; i < pb.B * pb.P * pb.C; ++i) diff_c += gc.at(i) != a.gc[i];
    EXPECT_EQ(diff_l, 0) << "grad_loc of mbx_loss_backward vs the fused call";
    EXPECT_EQ(diff_c, 0) << "grad_conf of mbx_loss_backward vs the fused call";
  }
}

// The workspace mbx_workspace_size reports covers the Caffe modes' scratch
// (bipartite flags, HARD_EXAMPLE keys, order, decoded boxes, kept slots).
TEST(CudaCaffeExec, CallerWorkspaceOfReportedSizeIsEnough) {
  SKIP_WITHOUT_CUDA();
  for (const char* name : {"caffe_ssd", "logistic_hard_example_nms"}) {
    SCOPED_TRACE(name);
    const mbx_options_t o = caffe_mode(name);
    const Problem pb = make_problem(Shape::kSsd300, 3, 21, MBX_PRIOR_CORNERS, 31);
    size_t need = 0;
    ASSERT_MBX(mbx_workspace_size(&o, pb.B, pb.P, pb.G, pb.C, &need));
    void* ws = nullptr;
    ASSERT_CUDA(cudaMalloc(&ws, need));
    Result mine, plain;
    {
      Ctx ctx;
      ASSERT_MBX(mbx_context_set_workspace(ctx.c, ws, need));
      RunConfig rc;
      rc.cuda = true;
      rc.ctx = ctx.c;
      ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &mine));
    }
    RunConfig rc;
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &plain));
    EXPECT_EQ(mine.np2, plain.np2);
    EXPECT_EQ(mine.loss[0], plain.loss[0]);
    EXPECT_EQ(mine.loss[1], plain.loss[1]);
    EXPECT_EQ(mine.gc, plain.gc);
    cudaFree(ws);
  }
}

// --------------------------------------------------------------------------
// fp16 / bf16

void half_vs_float(DLDataType dt, mbx_preset_t p, double grad_rel) {
  const mbx_options_t o = preset(p);
  const Problem base = make_problem(Shape::kSsd300, 4, 21, static_cast<mbx_prior_format_t>(o.prior_format), 99);
  // The float32 twin holds exactly the rounded values.
  Problem twin = base;
  Tensor scratch_l({base.B, base.P, 4}, dt), scratch_c({base.B, base.P, base.C}, dt);
  round_to(base.loc, dt, &scratch_l, &twin.loc);
  round_to(base.conf, dt, &scratch_c, &twin.conf);
  Result h, f;
  RunConfig rc;
  rc.cuda = true;
  ASSERT_NO_FATAL_FAILURE(run(twin, o, rc, &f));
  rc.loc_dt = dt;
  rc.conf_dt = dt;
  ASSERT_NO_FATAL_FAILURE(run(base, o, rc, &h));
  expect_integer_outputs_equal(h, f);
  // Same numbers, same float32 math: only the gradient storage rounds.
  expect_loss_close(h, f, 1e-6);
  expect_close("grad_loc", h.gl, f.gl, grad_rel * 1e-2, grad_rel);
  expect_close("grad_conf", h.gc, f.gc, grad_rel * 1e-2, grad_rel);
}

TEST(CudaHalf, Float16InputsMatchFloat32) {
  SKIP_WITHOUT_CUDA();
  half_vs_float(kF16, MBX_PRESET_SSD_PYTORCH, 1e-3);
  half_vs_float(kF16, MBX_PRESET_TORCHVISION_RETINANET, 1e-3);
}

TEST(CudaHalf, BFloat16InputsMatchFloat32) {
  SKIP_WITHOUT_CUDA();
  half_vs_float(kBF16, MBX_PRESET_SSD_PYTORCH, 8e-3);
  half_vs_float(kBF16, MBX_PRESET_YHENON_RETINANET, 8e-3);
}

// --------------------------------------------------------------------------
// Edge cases

TEST(CudaEdge, EmptyGtBatchIsAllNegativeAndFullyWritten) {
  SKIP_WITHOUT_CUDA();
  for (mbx_preset_t p : {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_RETINANET}) {
    const mbx_options_t o = preset(p);
    Problem pb = make_problem(Shape::kSsd300, 3, 21, static_cast<mbx_prior_format_t>(o.prior_format), 5);
    std::fill(pb.counts.begin(), pb.counts.end(), 0);
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    expect_integer_outputs_equal(gpu, cpu);
    for (size_t i = 0; i < gpu.ct.size(); ++i) {
      ASSERT_EQ(gpu.ct[i], 0);
      ASSERT_EQ(gpu.mg[i], -1);
    }
    EXPECT_EQ(gpu.loss[0], 0.0);
    for (float v : gpu.lt) ASSERT_EQ(v, 0.f);
    for (double v : gpu.gl) ASSERT_EQ(v, 0.0);
    if (o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE) {
      EXPECT_EQ(gpu.loss[1], 0.0) << "no positive: no negative is mined";
      for (double v : gpu.gc) ASSERT_EQ(v, 0.0);
    }
    expect_loss_close(gpu, cpu, 1e-4);
    expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4);
  }
}

TEST(CudaEdge, NoPositiveBatchMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  mbx_options_t o = preset(MBX_PRESET_YHENON_RETINANET);  // force_match NONE
  o.pos_threshold = 1.0;
  o.neg_threshold = 0.3;
  for (int conf_loss : {MBX_CONF_LOSS_SIGMOID_FOCAL, MBX_CONF_LOSS_SOFTMAX_CE}) {
    o.conf_loss = conf_loss;
    const Problem pb = make_problem(Shape::kSsd300, 3, 21, MBX_PRIOR_CORNERS, 6);
    Result cpu, gpu;
    RunConfig rc;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
    rc.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
    for (int32_t n : gpu.np) EXPECT_EQ(n, 0);
    expect_integer_outputs_equal(gpu, cpu);
    expect_loss_close(gpu, cpu, 1e-4);
    expect_close("grad_loc", gpu.gl, cpu.gl, 1e-4, 1e-4);
    expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4);
  }
}

// Without host validation, invalid GT rows are skipped on the device exactly
// as the CPU path does under MBX_INVALID_GT_SKIP.
TEST(CudaEdge, DeviceSkipsInvalidGtRowsWithoutHostValidation) {
  SKIP_WITHOUT_CUDA();
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  o.invalid_gt = MBX_INVALID_GT_SKIP;
  Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CENTER_SIZE, 8);
  for (int64_t b = 1; b < pb.B; ++b) {  // first row of each image: degenerate
    float* r = &pb.gt_boxes[b * pb.G * 4];
    r[2] = r[0];
  }
  pb.gt_boxes[(2 * pb.G + 0) * 4 + 1] = NAN;
  Result cpu, gpu;
  RunConfig rc;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
  Ctx ctx;
  ASSERT_MBX(mbx_context_set_cuda_validation(ctx.c, 0));
  rc.cuda = true;
  rc.ctx = ctx.c;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &gpu));
  expect_integer_outputs_equal(gpu, cpu);
  expect_loss_close(gpu, cpu, 1e-4);
}

// --------------------------------------------------------------------------
// Upstream gradient, streams, determinism, workspace, errors

TEST(CudaExec, DeviceResidentUpstreamGradientScalesGradients) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  const Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CENTER_SIZE, 11);
  const double up[2] = {2.5, -0.75};
  Result cpu, g64, g32;
  RunConfig rc;
  rc.grad_loss = up;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cpu));
  rc.cuda = true;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &g64));
  rc.grad_loss_dt = kF32;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &g32));
  expect_close("grad_loc (f64 upstream)", g64.gl, cpu.gl, 1e-4, 1e-4);
  expect_close("grad_conf (f64 upstream)", g64.gc, cpu.gc, 1e-4, 1e-4, pb.C, pb.B);
  // 2.5 and -0.75 are exact in float32: identical bits.
  EXPECT_EQ(g32.gl, g64.gl);
  EXPECT_EQ(g32.gc, g64.gc);
  // And the losses themselves are unaffected by the upstream gradient.
  Result plain;
  rc.grad_loss = nullptr;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &plain));
  EXPECT_EQ(plain.loss[0], g64.loss[0]);
  EXPECT_EQ(plain.loss[1], g64.loss[1]);
  // The factor is applied before the float32 rounding: equal to 1 float ulp.
  for (size_t i = 0; i < plain.gl.size(); ++i)
    ASSERT_LE(std::fabs(plain.gl[i] * 2.5 - g64.gl[i]), 2.5e-7 * std::fabs(g64.gl[i])) << i;
  for (size_t i = 0; i < plain.gc.size(); ++i)
    ASSERT_LE(std::fabs(plain.gc[i] * -0.75 - g64.gc[i]), 2.5e-7 * std::fabs(g64.gc[i])) << i;
}

TEST(CudaExec, ContextStreamGivesBitIdenticalResultsRunToRun) {
  SKIP_WITHOUT_CUDA();
  for (mbx_preset_t p : {MBX_PRESET_TORCHVISION_SSD, MBX_PRESET_TORCHVISION_RETINANET}) {
    const mbx_options_t o = preset(p);
    const Problem pb = make_problem(Shape::kSsd300, 8, 21, static_cast<mbx_prior_format_t>(o.prior_format), 21);
    cudaStream_t stream;
    ASSERT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    Ctx ctx;
    ASSERT_MBX(mbx_context_set_cuda_stream(ctx.c, stream));
    ASSERT_MBX(mbx_context_set_cuda_validation(ctx.c, 0));  // fully asynchronous calls
    Result a, b, d;
    RunConfig rc;
    rc.cuda = true;
    rc.ctx = ctx.c;
    rc.stream = stream;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &a));
    size_t ws1 = 0, ws2 = 0;
    ASSERT_MBX(mbx_context_workspace_bytes(ctx.c, &ws1));
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &b));
    ASSERT_MBX(mbx_context_workspace_bytes(ctx.c, &ws2));
    EXPECT_GT(ws1, 0u);
    EXPECT_EQ(ws1, ws2) << "steady-state calls must not grow the workspace";
    RunConfig rd;  // default stream, no context
    rd.cuda = true;
    ASSERT_NO_FATAL_FAILURE(run(pb, o, rd, &d));
    EXPECT_EQ(a.ct, b.ct);
    EXPECT_EQ(a.loss[0], b.loss[0]);
    EXPECT_EQ(a.loss[1], b.loss[1]);
    EXPECT_EQ(a.gl, b.gl);
    EXPECT_EQ(a.gc, b.gc);
    EXPECT_EQ(a.loss[0], d.loss[0]);
    EXPECT_EQ(a.loss[1], d.loss[1]);
    EXPECT_EQ(a.gc, d.gc);
    ASSERT_CUDA(cudaStreamSynchronize(stream));
    ASSERT_CUDA(cudaStreamDestroy(stream));
  }
}

TEST(CudaExec, Float32LossOutput) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = preset(MBX_PRESET_TORCHVISION_RETINANET);
  const Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CORNERS, 3);
  Result a, b;
  RunConfig rc;
  rc.cuda = true;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &a));
  rc.loss_dt = kF32;
  ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &b));
  EXPECT_EQ(static_cast<float>(a.loss[0]), static_cast<float>(b.loss[0]));
  EXPECT_EQ(static_cast<float>(a.loss[1]), static_cast<float>(b.loss[1]));
}

TEST(CudaExec, DecodeMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  for (mbx_preset_t p : {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_RETINANET}) {
    const mbx_options_t o = preset(p);
    const Problem pb = make_problem(Shape::kSsd300, 2, 21, static_cast<mbx_prior_format_t>(o.prior_format), 4);
    Tensor priors({pb.P, 4}, kF32), loc({pb.B, pb.P, 4}, kF32), bc({pb.B, pb.P, 4}, kF32),
        bg({pb.B, pb.P, 4}, kF32);
    std::memcpy(priors.host.data(), pb.priors.data(), priors.bytes());
    std::memcpy(loc.host.data(), pb.loc.data(), loc.bytes());
    loc.h<float>()[2] = 50.f;  // exercises the exponent clamp
    ASSERT_MBX(mbx_decode(nullptr, &o, priors.cpu(), loc.cpu(), bc.cpu()));
    ASSERT_MBX(mbx_decode(nullptr, &o, priors.cuda(), loc.cuda(), bg.cuda(true)));
    bg.fetch();
    std::vector<double> g(bg.numel()), c(bc.numel());
    for (int64_t i = 0; i < bg.numel(); ++i) { g[i] = bg.at(i); c[i] = bc.at(i); }
    expect_close("boxes", g, c, 1e-6, 1e-6);
  }
}

// --------------------------------------------------------------------------
// Caller-provided workspace (mbx_workspace_size + mbx_context_set_workspace)

void expect_same(const Result& a, const Result& b) {
  EXPECT_EQ(a.ct, b.ct);
  EXPECT_EQ(a.mg, b.mg);
  EXPECT_EQ(a.np2, b.np2);
  EXPECT_EQ(a.loss[0], b.loss[0]);
  EXPECT_EQ(a.loss[1], b.loss[1]);
  EXPECT_EQ(a.gl, b.gl);
  EXPECT_EQ(a.gc, b.gc);
}

TEST(CudaWorkspace, CallerWorkspaceIsUsedAndAllocatesNothing) {
  SKIP_WITHOUT_CUDA();
  for (mbx_preset_t p : {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_RETINANET}) {
    const mbx_options_t o = preset(p);
    const Problem pb = make_problem(Shape::kSsd300, 4, 21, static_cast<mbx_prior_format_t>(o.prior_format), 5);
    size_t need = 0;
    ASSERT_MBX(mbx_workspace_size(&o, pb.B, pb.P, pb.G, pb.C, &need));
    ASSERT_GT(need, static_cast<size_t>(pb.B * pb.P));
    void* ws = nullptr;
    ASSERT_CUDA(cudaMalloc(&ws, need));
    Result cached, mine;
    {
      Ctx ctx;
      RunConfig rc;
      rc.cuda = true;
      rc.ctx = ctx.c;
      ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &cached));
    }
    {
      Ctx ctx;
      ASSERT_MBX(mbx_context_set_workspace(ctx.c, ws, need));
      RunConfig rc;
      rc.cuda = true;
      rc.ctx = ctx.c;
      ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &mine));
      size_t cached_bytes = 1;
      ASSERT_MBX(mbx_context_workspace_bytes(ctx.c, &cached_bytes));
      EXPECT_EQ(cached_bytes, 0u) << "the context allocated although a workspace was given";
      // Back to the cached workspace.
      ASSERT_MBX(mbx_context_set_workspace(ctx.c, nullptr, 0));
      Result again;
      ASSERT_NO_FATAL_FAILURE(run(pb, o, rc, &again));
      ASSERT_MBX(mbx_context_workspace_bytes(ctx.c, &cached_bytes));
      EXPECT_GT(cached_bytes, 0u);
      expect_same(again, cached);
    }
    expect_same(mine, cached);
    cudaFree(ws);
  }
}

TEST(CudaWorkspace, UnusableWorkspaceIsRefusedAndNothingIsWritten) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  const Problem pb = make_problem(Shape::kSsd300, 2, 21, MBX_PRIOR_CENTER_SIZE, 6);
  MatchInputs m(pb);
  Tensor loc({pb.B, pb.P, 4}, kF32), conf({pb.B, pb.P, pb.C}, kF32), loss({2}, kF64),
      gl({pb.B, pb.P, 4}, kF32), gc({pb.B, pb.P, pb.C}, kF32);
  std::memcpy(loc.host.data(), pb.loc.data(), loc.bytes());
  std::memcpy(conf.host.data(), pb.conf.data(), conf.bytes());
  size_t need = 0;
  ASSERT_MBX(mbx_workspace_size(&o, pb.B, pb.P, pb.G, pb.C, &need));
  void* ws = nullptr;
  ASSERT_CUDA(cudaMalloc(&ws, need + 512));
  std::vector<unsigned char> host_buf(need + 512);
  struct Case {
    void* ptr;
    size_t bytes;
    const char* message;
  };
  const Case cases[] = {
      {ws, need - 1, "needs"},                                        // too small
      {static_cast<unsigned char*>(ws) + 4, need + 256, "aligned"},   // misaligned
      {host_buf.data() + (256 - reinterpret_cast<uintptr_t>(host_buf.data()) % 256) % 256, need,
       "host memory"},                                                 // not device memory
  };
  for (const Case& c : cases) {
    Ctx ctx;
    ASSERT_MBX(mbx_context_set_workspace(ctx.c, c.ptr, c.bytes));
    const mbx_status_t st = mbx_loss_forward_backward(
        ctx.c, &o, m.priors.cuda(), m.boxes.cuda(), m.labels.cuda(), m.counts.cuda(), loc.cuda(),
        conf.cuda(), nullptr, loss.cuda(true), nullptr, gl.cuda(true), gc.cuda(true));
    EXPECT_EQ(st, MBX_STATUS_INVALID_ARGUMENT) << c.message;
    const std::string msg = mbx_last_error();
    EXPECT_NE(msg.find("workspace"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.message), std::string::npos) << msg;
    ASSERT_CUDA(cudaDeviceSynchronize());
    gc.fetch();
    for (int64_t i = 0; i < gc.numel(); ++i) ASSERT_EQ(gc.h<uint32_t>()[i], 0x7f7f7f7fu);
    loss.fetch();
    for (int64_t i = 0; i < 2; ++i) ASSERT_EQ(loss.h<uint64_t>()[i], 0x7f7f7f7f7f7f7f7full);
  }
  cudaFree(ws);
}

// Host validation of CUDA priors runs on the device (validate.cu) and must
// report the same row and message as the CPU check, for loss and decode, and
// write nothing.
TEST(CudaErrors, BadPriorIsReportedLikeOnTheCpu) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  const Problem pb = make_problem(Shape::kSsd300, 2, 21, MBX_PRIOR_CENTER_SIZE, 3);
  MatchInputs m(pb);
  Tensor ct({pb.B, pb.P}, kI32), loc({pb.B, pb.P, 4}, kF32), boxes_out({pb.B, pb.P, 4}, kF32);
  std::memset(loc.host.data(), 0, loc.bytes());
  const int64_t bad[2] = {pb.P - 1, 4321};  // the last row, then an earlier one too
  float* pr = m.priors.h<float>();
  pr[4 * bad[0] + 2] = 0.f;                 // w = 0
  for (int round = 0; round < 2; ++round) {
    if (round == 1) pr[4 * bad[1] + 1] = std::numeric_limits<float>::quiet_NaN();
    const std::string want = "priors[" + std::to_string(bad[round]) + "]";
    ASSERT_EQ(mbx_match(nullptr, &o, 20, m.priors.cpu(), m.boxes.cpu(), m.labels.cpu(), m.counts.cpu(),
                        ct.cpu(), nullptr, nullptr, nullptr),
              MBX_STATUS_INVALID_ARGUMENT);
    const std::string cpu_msg = mbx_last_error();
    EXPECT_NE(cpu_msg.find(want), std::string::npos) << cpu_msg;
    EXPECT_EQ(mbx_match(nullptr, &o, 20, m.priors.cuda(), m.boxes.cuda(), m.labels.cuda(), m.counts.cuda(),
                        ct.cuda(true), nullptr, nullptr, nullptr),
              MBX_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(std::string(mbx_last_error()), cpu_msg);
    ct.fetch();
    for (int64_t i = 0; i < ct.numel(); ++i) ASSERT_EQ(ct.h<int32_t>()[i], 0x7f7f7f7f);
    EXPECT_EQ(mbx_decode(nullptr, &o, m.priors.cuda(), loc.cuda(), boxes_out.cuda(true)),
              MBX_STATUS_INVALID_ARGUMENT);
    EXPECT_NE(std::string(mbx_last_error()).find(want), std::string::npos) << mbx_last_error();
  }
}

TEST(CudaErrors, CudaTensorsWithForcedCpuPathFail) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  const Problem pb = make_problem(Shape::kSsd300, 2, 21, MBX_PRIOR_CENTER_SIZE, 2);
  MatchInputs m(pb);
  Tensor ct({pb.B, pb.P}, kI32);
  for (mbx_path_t path : {MBX_PATH_CPU, MBX_PATH_CPU_SCALAR}) {
    Ctx ctx;
    ASSERT_MBX(mbx_context_set_path(ctx.c, path));
    const mbx_status_t st = mbx_match(ctx.c, &o, 20, m.priors.cuda(), m.boxes.cuda(), m.labels.cuda(),
                                      m.counts.cuda(), ct.cuda(true), nullptr, nullptr, nullptr);
    EXPECT_NE(st, MBX_STATUS_OK);
    EXPECT_NE(std::string(mbx_last_error()), "");
    // Nothing written on error.
    ct.fetch();
    for (int64_t i = 0; i < ct.numel(); ++i) ASSERT_EQ(ct.h<int32_t>()[i], 0x7f7f7f7f);
  }
  // Mixed devices are refused too.
  EXPECT_NE(mbx_match(nullptr, &o, 20, m.priors.cuda(), m.boxes.cpu(), m.labels.cuda(), m.counts.cuda(),
                      ct.cuda(true), nullptr, nullptr, nullptr),
            MBX_STATUS_OK);
}

// --------------------------------------------------------------------------
// Ignore regions (gt_flags bit 0, docs/SPEC.md §2.7): cuda against cpu

// Flags of a Problem: every third valid row of an image (after the first)
// becomes a region, half of them grown into crowd boxes; padding rows carry
// flags too (unused). Returns the flags.
std::vector<int32_t> add_regions(Problem* pb, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> flags(pb->B * pb->G, 0);
  for (int64_t b = 0; b < pb->B; ++b)
    for (int64_t g = 0; g < pb->G; ++g) {
      int32_t& f = flags[b * pb->G + g];
      if (g >= pb->counts[b]) { f = rng() % 2; continue; }
      if (g % 3 != 1) continue;
      f = 1;
      if (rng() % 2) {
        float* r = &pb->gt_boxes[(b * pb->G + g) * 4];
        const float w = r[2] - r[0], h = r[3] - r[1];
        r[0] -= w; r[1] -= h; r[2] += w; r[3] += h;  // still finite and proper
      }
    }
  return flags;
}

// match + fused forward/backward through mbx_run with gt_flags (empty: none)
// and prior_levels (empty: none), on the cpu (ctx null) or on cuda tensors.
// Returns the first non-OK status.
mbx_status_t run_flags(const Problem& pb, const std::vector<int32_t>& flags,
                       const mbx_options_t& o, bool cuda, mbx_context_t* ctx, Result* r,
                       const std::vector<int32_t>& levels = {}) {
  const int64_t B = pb.B, P = pb.P, C = pb.C;
  MatchInputs m(pb);
  Tensor fl({B, pb.G}, kI32), loc({B, P, 4}, kF32), conf({B, P, C}, kF32);
  Tensor lv({static_cast<int64_t>(levels.size())}, kI32);
  if (!flags.empty()) std::memcpy(fl.host.data(), flags.data(), fl.bytes());
  if (!levels.empty()) std::memcpy(lv.host.data(), levels.data(), lv.bytes());
  std::memcpy(loc.host.data(), pb.loc.data(), loc.bytes());
  std::memcpy(conf.host.data(), pb.conf.data(), conf.bytes());
  Tensor ct({B, P}, kI32), mg({B, P}, kI32), lt({B, P, 4}, kF32), np({B}, kI32), np2({B}, kI32);
  Tensor loss({2}, kF64), gl({B, P, 4}, kF32), gc({B, P, C}, kF32);
  auto in = [&](Tensor& t) { return cuda ? t.cuda() : t.cpu(); };
  auto out = [&](Tensor& t) { return cuda ? t.cuda(true) : t.cpu(); };
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.num_classes = o.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL ? C : C - 1;
  t.priors = in(m.priors);
  t.gt_boxes = in(m.boxes);
  t.gt_labels = in(m.labels);
  t.gt_counts = in(m.counts);
  t.gt_flags = flags.empty() ? nullptr : in(fl);
  t.prior_levels = levels.empty() ? nullptr : in(lv);
  t.conf_target = out(ct);
  t.matched_gt = out(mg);
  t.loc_target = out(lt);
  t.num_pos = out(np);
  if (cuda && cudaDeviceSynchronize() != cudaSuccess) return MBX_STATUS_DEVICE_ERROR;
  mbx_status_t st = mbx_run(ctx, &o, MBX_OP_MATCH, &t);
  if (st != MBX_STATUS_OK) return st;
  mbx_tensors_t u;
  mbx_tensors_init(&u);
  u.priors = t.priors;
  u.gt_boxes = t.gt_boxes;
  u.gt_labels = t.gt_labels;
  u.gt_counts = t.gt_counts;
  u.gt_flags = t.gt_flags;
  u.prior_levels = t.prior_levels;
  u.loc = in(loc);
  u.conf = in(conf);
  u.loss = out(loss);
  u.num_pos = out(np2);
  u.grad_loc = out(gl);
  u.grad_conf = out(gc);
  if (cuda && cudaDeviceSynchronize() != cudaSuccess) return MBX_STATUS_DEVICE_ERROR;
  st = mbx_run(ctx, &o, MBX_OP_LOSS_FORWARD_BACKWARD, &u);
  if (st != MBX_STATUS_OK) return st;
  if (cuda) {
    if (cudaDeviceSynchronize() != cudaSuccess) return MBX_STATUS_DEVICE_ERROR;
    for (Tensor* x : {&ct, &mg, &lt, &np, &np2, &loss, &gl, &gc}) x->fetch();
  }
  r->ct.assign(ct.h<int32_t>(), ct.h<int32_t>() + B * P);
  r->mg.assign(mg.h<int32_t>(), mg.h<int32_t>() + B * P);
  r->np.assign(np.h<int32_t>(), np.h<int32_t>() + B);
  r->np2.assign(np2.h<int32_t>(), np2.h<int32_t>() + B);
  r->lt.assign(lt.h<float>(), lt.h<float>() + B * P * 4);
  r->loss[0] = loss.at(0);
  r->loss[1] = loss.at(1);
  r->gl.resize(B * P * 4);
  for (int64_t i = 0; i < B * P * 4; ++i) r->gl[i] = gl.at(i);
  r->gc.resize(B * P * C);
  for (int64_t i = 0; i < B * P * C; ++i) r->gc[i] = gc.at(i);
  return MBX_STATUS_OK;
}

void expect_ignore_parity(const Problem& pb, const std::vector<int32_t>& flags,
                          const mbx_options_t& o, bool validation, const std::string& what) {
  Result cpu, gpu;
  ASSERT_EQ(run_flags(pb, flags, o, false, nullptr, &cpu), MBX_STATUS_OK) << what << ": " << mbx_last_error();
  Ctx ctx;
  ASSERT_MBX(mbx_context_set_cuda_validation(ctx.c, validation ? 1 : 0));
  const mbx_status_t st = run_flags(pb, flags, o, true, ctx.c, &gpu);
  if (st == MBX_STATUS_UNSUPPORTED) return;  // a mode the cuda path refuses by name
  ASSERT_EQ(st, MBX_STATUS_OK) << what << ": " << mbx_last_error();
  int64_t ignored = 0;
  for (int32_t v : cpu.ct) ignored += v == -1;
  EXPECT_GT(ignored, 0) << what << ": the batch should have ignored priors";
  {
    SCOPED_TRACE(what);
    expect_integer_outputs_equal(gpu, cpu);
    expect_loss_close(gpu, cpu, 1e-4);
    std::vector<double> lt_g(gpu.lt.begin(), gpu.lt.end()), lt_c(cpu.lt.begin(), cpu.lt.end());
    expect_close("loc_target", lt_g, lt_c, 1e-5, 1e-5);
    expect_close("grad_loc", gpu.gl, cpu.gl, 1e-4, 1e-4);
    const bool ce = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE;
    expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4, pb.C, ce ? pb.B : 0);
  }
}

TEST(CudaIgnore, RegionsMatchCpuForEveryForceMatchAndThreshold) {
  SKIP_WITHOUT_CUDA();
  for (Shape shape : {Shape::kSsd300, Shape::kRetinaNet})
    for (mbx_preset_t ps : {MBX_PRESET_SSD_PYTORCH, MBX_PRESET_TORCHVISION_RETINANET}) {
      mbx_options_t o = preset(ps);
      Problem pb = make_problem(shape, 6, 21, static_cast<mbx_prior_format_t>(o.prior_format), 77);
      const std::vector<int32_t> flags = add_regions(&pb, 78);
      for (auto fm : {MBX_FORCE_MATCH_NONE, MBX_FORCE_MATCH_BEST_PRIOR_PER_GT,
                      MBX_FORCE_MATCH_LOW_QUALITY, MBX_FORCE_MATCH_BIPARTITE})
        for (double thr : {0.5, 0.25}) {
          o.force_match = fm;
          o.ignore_iof_threshold = thr;
          expect_ignore_parity(pb, flags, o, true, std::string(shape == Shape::kSsd300 ? "ssd300 " : "retina ") +
                               "preset " + std::to_string(ps) + " fm " + std::to_string(fm) +
                               " thr " + std::to_string(thr));
        }
    }
}

TEST(CudaIgnore, WithoutHostValidationMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  Problem pb = make_problem(Shape::kSsd300, 4, 21, MBX_PRIOR_CENTER_SIZE, 91);
  const std::vector<int32_t> flags = add_regions(&pb, 92);
  expect_ignore_parity(pb, flags, o, false, "validation off");
}

TEST(CudaIgnore, RegionsOnlyAndRegionOverEveryPriorMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (mbx_preset_t ps : {MBX_PRESET_TORCHVISION_SSD, MBX_PRESET_TORCHVISION_RETINANET}) {
    const mbx_options_t o = preset(ps);
    Problem pb = make_problem(Shape::kSsd300, 3, 21, static_cast<mbx_prior_format_t>(o.prior_format), 5);
    std::vector<int32_t> flags(pb.B * pb.G, 0);
    // Image 1: only regions. Image 2: a region over the whole image, then GTs.
    for (int64_t g = 0; g < pb.counts[1]; ++g) flags[1 * pb.G + g] = 1;
    float* r = &pb.gt_boxes[(2 * pb.G) * 4];
    r[0] = -1.f; r[1] = -1.f; r[2] = 2.f; r[3] = 2.f;
    flags[2 * pb.G] = 1;
    expect_ignore_parity(pb, flags, o, true, "regions only, preset " + std::to_string(ps));
  }
}

// The ATSS assigner (docs/SPEC.md §2.8): cuda against cpu, bit for bit in
// the matching, within the tolerances in the losses.

std::vector<int32_t> retinanet_levels() {
  Tensor t({MBX_RETINANET_NUM_LEVELS}, kI32);
  EXPECT_EQ(mbx_priors_retinanet_levels(640, 832, t.cpu()), MBX_STATUS_OK);
  return std::vector<int32_t>(t.h<int32_t>(), t.h<int32_t>() + MBX_RETINANET_NUM_LEVELS);
}

mbx_options_t atss(mbx_preset_t p, int32_t topk) {
  mbx_options_t o = preset(p);
  o.assigner = MBX_ASSIGNER_ATSS;
  o.atss_topk = topk;
  return o;
}

void expect_atss_parity(const Problem& pb, const std::vector<int32_t>& flags,
                        const std::vector<int32_t>& levels, const mbx_options_t& o, bool validation,
                        const std::string& what, mbx_context_t* given = nullptr) {
  Result cpu, gpu;
  ASSERT_EQ(run_flags(pb, flags, o, false, nullptr, &cpu, levels), MBX_STATUS_OK) << what << ": " << mbx_last_error();
  Ctx ctx;
  mbx_context_t* c = given ? given : ctx.c;
  ASSERT_MBX(mbx_context_set_cuda_validation(c, validation ? 1 : 0));
  ASSERT_EQ(run_flags(pb, flags, o, true, c, &gpu, levels), MBX_STATUS_OK) << what << ": " << mbx_last_error();
  int64_t pos = 0;
  for (int32_t v : cpu.np) pos += v;
  EXPECT_GT(pos, 0) << what << ": the batch should have positives";
  SCOPED_TRACE(what);
  expect_integer_outputs_equal(gpu, cpu);
  expect_loss_close(gpu, cpu, 1e-4);
  std::vector<double> lt_g(gpu.lt.begin(), gpu.lt.end()), lt_c(cpu.lt.begin(), cpu.lt.end());
  expect_close("loc_target", lt_g, lt_c, 1e-5, 1e-5);
  expect_close("grad_loc", gpu.gl, cpu.gl, 1e-4, 1e-4);
  const bool ce = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE;
  expect_close("grad_conf", gpu.gc, cpu.gc, 1e-4, 1e-4, pb.C, ce ? pb.B : 0);
}

TEST(CudaAtss, RetinaNetPyramidMatchesCpuForSeveralTopk) {
  SKIP_WITHOUT_CUDA();
  for (mbx_preset_t ps : {MBX_PRESET_TORCHVISION_RETINANET, MBX_PRESET_SSD_PYTORCH}) {
    const mbx_options_t base = preset(ps);
    const Problem pb = make_problem(Shape::kRetinaNet, 4, 21, static_cast<mbx_prior_format_t>(base.prior_format), 31);
    for (int32_t topk : {9, 1, 20})
      expect_atss_parity(pb, {}, retinanet_levels(), atss(ps, topk), true,
                         "preset " + std::to_string(ps) + " topk " + std::to_string(topk));
  }
}

TEST(CudaAtss, OneLevelWithoutPriorLevelsMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = atss(MBX_PRESET_SSD_PYTORCH, 9);
  const Problem pb = make_problem(Shape::kSsd300, 6, 21, MBX_PRIOR_CENTER_SIZE, 32);
  expect_atss_parity(pb, {}, {}, o, true, "ssd300, one level");
}

TEST(CudaAtss, IgnoreRegionsAndNoHostValidationMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = atss(MBX_PRESET_TORCHVISION_RETINANET, 9);
  Problem pb = make_problem(Shape::kRetinaNet, 4, 21, MBX_PRIOR_CORNERS, 33);
  const std::vector<int32_t> flags = add_regions(&pb, 34);
  for (bool validation : {true, false})
    expect_atss_parity(pb, flags, retinanet_levels(), o, validation,
                       std::string("regions, validation ") + (validation ? "on" : "off"));
}

TEST(CudaAtss, CallerWorkspaceOfWorkspaceSizeSuffices) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = atss(MBX_PRESET_TORCHVISION_RETINANET, 9);
  const Problem pb = make_problem(Shape::kRetinaNet, 3, 21, MBX_PRIOR_CORNERS, 35);
  size_t need = 0;
  ASSERT_MBX(mbx_workspace_size(&o, pb.B, pb.P, pb.G, pb.C, &need));
  void* ws = nullptr;
  ASSERT_CUDA(cudaMalloc(&ws, need));
  Ctx ctx;
  ASSERT_MBX(mbx_context_set_workspace(ctx.c, ws, need));
  expect_atss_parity(pb, {}, retinanet_levels(), o, true, "caller workspace", ctx.c);
  ASSERT_MBX(mbx_context_set_workspace(ctx.c, nullptr, 0));
  cudaFree(ws);
}

TEST(CudaAtss, MoreThanSixteenLevelsAreUnsupportedByName) {
  SKIP_WITHOUT_CUDA();
  const mbx_options_t o = atss(MBX_PRESET_SSD_PYTORCH, 9);
  const Problem pb = make_problem(Shape::kSsd300, 2, 21, MBX_PRIOR_CENTER_SIZE, 36);
  std::vector<int32_t> levels(17, static_cast<int32_t>(pb.P / 17));
  levels.back() += static_cast<int32_t>(pb.P - 17 * (pb.P / 17));
  Result cpu, gpu;
  ASSERT_EQ(run_flags(pb, {}, o, false, nullptr, &cpu, levels), MBX_STATUS_OK) << mbx_last_error();
  Ctx ctx;
  EXPECT_EQ(run_flags(pb, {}, o, true, ctx.c, &gpu, levels), MBX_STATUS_UNSUPPORTED);
  EXPECT_NE(std::string(mbx_last_error()).find("prior_levels"), std::string::npos) << mbx_last_error();
}

}  // namespace
