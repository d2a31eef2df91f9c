#include "golden_case.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

#include "json.h"
#include "npy.h"

#ifdef MBX_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace mbx_test {

namespace {

bool is_file(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void collect(const std::string& root, std::vector<std::string>* out, int depth) {
  if (is_file(root + "/case.json")) { out->push_back(root); return; }
  if (depth > 4) return;
  DIR* d = opendir(root.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    names.push_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names)
    if (is_dir(root + "/" + n)) collect(root + "/" + n, out, depth + 1);
}

// Owns a tensor's host data (and device copy on the CUDA path) + DLTensor.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<unsigned char> host;
  DLTensor t{};
  void* device = nullptr;
  DLDataType dtype{};

  Tensor(std::vector<int64_t> s, DLDataType dt) : shape(std::move(s)), dtype(dt) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    host.assign(static_cast<size_t>(n) * (dt.bits / 8) + 8, 0);
  }
  ~Tensor() {
#ifdef MBX_WITH_CUDA
    if (device) cudaFree(device);
#endif
  }
  size_t bytes() const { return host.size() - 8; }
  template <typename T> T* as() { return reinterpret_cast<T*>(host.data()); }
  DLTensor* dl(bool cuda) {
    t.ndim = static_cast<int>(shape.size());
    t.shape = shape.data();
    t.strides = nullptr;
    t.byte_offset = 0;
    t.dtype = dtype;
    t.device = {kDLCPU, 0};
    t.data = host.data();
#ifdef MBX_WITH_CUDA
    if (cuda) {
      if (!device && cudaMalloc(&device, bytes() + 8) != cudaSuccess)
        throw std::runtime_error("cudaMalloc failed");
      if (cudaMemcpy(device, host.data(), bytes(), cudaMemcpyHostToDevice) != cudaSuccess)
        throw std::runtime_error("cudaMemcpy failed");
      t.device = {kDLCUDA, 0};
      t.data = device;
    }
#else
    (void)cuda;
#endif
    return &t;
  }
  void fetch() {  // device -> host after an output was written
#ifdef MBX_WITH_CUDA
    if (device && cudaMemcpy(host.data(), device, bytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
      throw std::runtime_error("cudaMemcpy failed");
#endif
  }
};

constexpr DLDataType kF32{kDLFloat, 32, 1};
constexpr DLDataType kF64{kDLFloat, 64, 1};
constexpr DLDataType kI32{kDLInt, 32, 1};

std::unique_ptr<Tensor> from_npy(const NpyArray& a, DLDataType dt) {
  auto t = std::make_unique<Tensor>(a.shape, dt);
  if (dt.code == kDLFloat && dt.bits == 32) {
    auto v = a.as_float();
    std::memcpy(t->host.data(), v.data(), v.size() * 4);
  } else {
    auto v = a.as_int32();
    std::memcpy(t->host.data(), v.data(), v.size() * 4);
  }
  return t;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2e", v);
  return b;
}

struct Unsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Worst ratio err / allowed over all elements (<= 1 passes).
double worst_ratio(const std::vector<double>& got, const std::vector<double>& ref, double abs_rel_max,
                   double rel, size_t* where) {
  double mx = 0;
  for (double r : ref) mx = std::max(mx, std::fabs(r));
  double worst = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double allowed = abs_rel_max * mx + rel * std::fabs(ref[i]) + 1e-30;
    const double err = std::fabs(got[i] - ref[i]);
    const double r = std::isnan(got[i]) ? INFINITY : err / allowed;
    if (r > worst) { worst = r; *where = i; }
  }
  return worst;
}

}  // namespace

std::vector<std::string> find_cases(const std::string& root) {
  std::vector<std::string> out;
  collect(root, &out, 0);
  return out;
}

CaseResult run_case(const std::string& dir, mbx_path_t path, int threads, bool optional_inputs) {
  CaseResult res;
  res.name = dir.substr(dir.find_last_of('/') + 1);
  if (!mbx_path_available(path)) {
    res.skipped = true;
    res.detail = std::string("path ") + mbx_path_name(path) + " not available";
    return res;
  }
  std::ostringstream detail;
  std::vector<std::string> failures;
  try {
    const Json meta = load_json(dir + "/case.json");
    const Json* opts_json = meta.get("options");
    if (!opts_json) throw std::runtime_error("case.json has no options");
    mbx_options_t opts;
    mbx_options_init(&opts, MBX_PRESET_SSD_PYTORCH);
    for (const auto& kv : opts_json->obj)
      if (mbx_options_set(&opts, kv.first.c_str(), kv.second.option_text().c_str()) != MBX_STATUS_OK)
        throw std::runtime_error(std::string("option: ") + mbx_last_error());

    auto npy = [&](const char* n) { return load_npy(dir + "/" + n + ".npy"); };
    auto priors = from_npy(npy("priors"), kF32);
    auto gt_boxes = from_npy(npy("gt_boxes"), kF32);
    auto gt_labels = from_npy(npy("gt_labels"), kI32);
    auto gt_counts = from_npy(npy("gt_counts"), kI32);
    auto loc = from_npy(npy("loc"), kF32);
    auto conf = from_npy(npy("conf"), kF32);
    const int64_t B = conf->shape[0], P = conf->shape[1], C = conf->shape[2];
    const int64_t K = opts.conf_loss == MBX_CONF_LOSS_SIGMOID_FOCAL ? C : C - 1;
    const bool cuda = path == MBX_PATH_CUDA;

    mbx_context_t* raw = nullptr;
    if (mbx_context_create(&raw) != MBX_STATUS_OK) throw std::runtime_error(mbx_last_error());
    std::unique_ptr<mbx_context_t, void (*)(mbx_context_t*)> ctx(raw, mbx_context_destroy);
    mbx_context_set_path(ctx.get(), path);
    mbx_context_set_num_threads(ctx.get(), threads);

    Tensor conf_target({B, P}, kI32), matched_gt({B, P}, kI32), loc_target({B, P, 4}, kF32),
        num_pos({B}, kI32), num_pos2({B}, kI32), loss({2}, kF64), loss_fwd({2}, kF64),
        grad_loc({B, P, 4}, kF32), grad_conf({B, P, C}, kF32), grad_loc_b({B, P, 4}, kF32),
        grad_conf_b({B, P, C}, kF32);
    auto check = [&](mbx_status_t s, const char* what) {
      // A mode the cuda path refuses by name (docs/SPEC.md §4.6) is a skip.
      if (s == MBX_STATUS_UNSUPPORTED && cuda) throw Unsupported(mbx_last_error());
      if (s != MBX_STATUS_OK)
        throw std::runtime_error(std::string(what) + ": " + mbx_status_string(s) + ": " + mbx_last_error());
    };
    // Every operation through mbx_run, so that the optional inputs a case
    // may carry (gt_flags.npy, prior_levels.npy; tests/data/README.md) reach
    // every path.
    std::unique_ptr<Tensor> gt_flags, prior_levels;
    if (optional_inputs && is_file(dir + "/gt_flags.npy")) gt_flags = from_npy(npy("gt_flags"), kI32);
    if (optional_inputs && is_file(dir + "/prior_levels.npy"))
      prior_levels = from_npy(npy("prior_levels"), kI32);
    auto inputs = [&](bool loss_op) {
      mbx_tensors_t t;
      mbx_tensors_init(&t);
      t.priors = priors->dl(cuda);
      t.gt_boxes = gt_boxes->dl(cuda);
      t.gt_labels = gt_labels->dl(cuda);
      t.gt_counts = gt_counts->dl(cuda);
      if (gt_flags) t.gt_flags = gt_flags->dl(cuda);
      if (prior_levels) t.prior_levels = prior_levels->dl(cuda);
      if (loss_op) {
        t.loc = loc->dl(cuda);
        t.conf = conf->dl(cuda);
      }
      return t;
    };
    mbx_tensors_t t = inputs(false);
    t.num_classes = K;
    t.conf_target = conf_target.dl(cuda);
    t.matched_gt = matched_gt.dl(cuda);
    t.loc_target = loc_target.dl(cuda);
    t.num_pos = num_pos.dl(cuda);
    check(mbx_run(ctx.get(), &opts, MBX_OP_MATCH, &t), "mbx_match");
    t = inputs(true);
    t.loss = loss.dl(cuda);
    t.num_pos = num_pos2.dl(cuda);
    t.grad_loc = grad_loc.dl(cuda);
    t.grad_conf = grad_conf.dl(cuda);
    check(mbx_run(ctx.get(), &opts, MBX_OP_LOSS_FORWARD_BACKWARD, &t), "mbx_loss_forward_backward");
    t = inputs(true);
    t.loss = loss_fwd.dl(cuda);
    check(mbx_run(ctx.get(), &opts, MBX_OP_LOSS_FORWARD, &t), "mbx_loss_forward");
    t = inputs(true);
    t.grad_loc = grad_loc_b.dl(cuda);
    t.grad_conf = grad_conf_b.dl(cuda);
    check(mbx_run(ctx.get(), &opts, MBX_OP_LOSS_BACKWARD, &t), "mbx_loss_backward");
    for (Tensor* t : {&conf_target, &matched_gt, &loc_target, &num_pos, &num_pos2, &loss, &loss_fwd,
                      &grad_loc, &grad_conf, &grad_loc_b, &grad_conf_b})
      t->fetch();

    // Integer outputs: exact.
    auto exact = [&](const char* name, Tensor& got) {
      auto ref = npy(name).as_int32();
      int64_t bad = 0, first = -1;
      for (size_t i = 0; i < ref.size(); ++i)
        if (got.as<int32_t>()[i] != ref[i]) { ++bad; if (first < 0) first = static_cast<int64_t>(i); }
      if (bad)
        failures.push_back(std::string(name) + ": " + std::to_string(bad) + " mismatches (first at flat " +
                           std::to_string(first) + ": got " + std::to_string(got.as<int32_t>()[first]) +
                           ", expected " + std::to_string(ref[first]) + ")");
    };
    exact("conf_target", conf_target);
    exact("matched_gt", matched_gt);
    exact("num_pos", num_pos);
    // The loss's num_pos counts the positives left after HARD_EXAMPLE mining.
    std::ifstream has_loss_pos(dir + "/num_pos_loss.npy");
    exact(has_loss_pos ? "num_pos_loss" : "num_pos", num_pos2);

    // Losses: rtol 1e-4.
    const double ref_ll = npy("loss_loc").as_double()[0], ref_lc = npy("loss_conf").as_double()[0];
    double worst_loss = 0;
    for (Tensor* l : {&loss, &loss_fwd}) {
      const double got[2] = {l->as<double>()[0], l->as<double>()[1]};
      const double ref[2] = {ref_ll, ref_lc};
      for (int k = 0; k < 2; ++k) {
        const double rel = std::fabs(got[k] - ref[k]) / (std::fabs(ref[k]) + 1e-300);
        const double r = std::isnan(got[k]) ? INFINITY : std::fabs(got[k] - ref[k]) / (1e-4 * std::fabs(ref[k]) + 1e-12);
        worst_loss = std::max(worst_loss, std::isnan(got[k]) ? INFINITY : rel);
        if (r > 1.0)
          failures.push_back(std::string(k ? "loss_conf" : "loss_loc") + (l == &loss ? "" : " (forward)") +
                             ": got " + std::to_string(got[k]) + ", expected " + std::to_string(ref[k]));
      }
    }
    if (loss_fwd.as<double>()[0] != loss.as<double>()[0] || loss_fwd.as<double>()[1] != loss.as<double>()[1])
      failures.push_back("forward-only losses differ bitwise from the fused call's");

    auto floats = [&](const char* name, Tensor& got, double abs_rel_max, double rel) {
      auto ref = npy(name).as_double();
      std::vector<double> g(ref.size());
      for (size_t i = 0; i < ref.size(); ++i) g[i] = got.as<float>()[i];
      size_t where = 0;
      const double w = worst_ratio(g, ref, abs_rel_max, rel, &where);
      if (w > 1.0)
        failures.push_back(std::string(name) + ": error " + fmt(w) + "x the tolerance at flat " +
                           std::to_string(where) + " (got " + std::to_string(g[where]) + ", expected " +
                           std::to_string(ref[where]) + ")");
      return w;
    };
    const double w_lt = floats("loc_target", loc_target, 1e-5, 1e-5);
    const double w_gl = floats("grad_loc", grad_loc, 1e-4, 1e-4);
    const double w_gc = floats("grad_conf", grad_conf, 1e-4, 1e-4);
    floats("grad_loc", grad_loc_b, 1e-4, 1e-4);
    floats("grad_conf", grad_conf_b, 1e-4, 1e-4);
    if (std::memcmp(grad_loc.host.data(), grad_loc_b.host.data(), grad_loc.bytes()) != 0 ||
        std::memcmp(grad_conf.host.data(), grad_conf_b.host.data(), grad_conf.bytes()) != 0)
      failures.push_back("backward-only gradients differ bitwise from the fused call's");
    detail << "loss rel " << fmt(worst_loss) << ", loc_target " << fmt(w_lt) << "x tol, grad_loc "
           << fmt(w_gl) << "x tol, grad_conf " << fmt(w_gc) << "x tol";
  } catch (const Unsupported& e) {
    res.skipped = true;
    res.detail = std::string("unsupported: ") + e.what();
    return res;
  } catch (const std::exception& e) {
    failures.push_back(std::string("error: ") + e.what());
  }
  res.passed = failures.empty();
  if (res.passed) {
    res.detail = detail.str();
  } else {
    for (size_t i = 0; i < failures.size(); ++i) res.detail += (i ? "; " : "") + failures[i];
  }
  return res;
}

}  // namespace mbx_test
