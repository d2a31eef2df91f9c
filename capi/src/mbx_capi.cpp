// The C boundary: DLPack validation, option conversion, error translation
// and dispatch to the core paths. No algorithm lives here.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "common/device_memory.h"
#include "common/types.h"
#include "common/validate.h"
#include "common/workspace.h"
#include "match/match.h"
#include "encode/encode.h"
#include "mbx/mbx.h"
#include "pipeline/pipeline.h"
#include "priors/priors.h"

struct mbx_context_t {
  int num_threads = 0;
  mbx_path_t path = MBX_PATH_AUTO;
  void* cuda_stream = nullptr;
  int cuda_validation = 1;
  mbx::Workspace workspace;
  void* user_workspace = nullptr;  // mbx_context_set_workspace
  size_t user_workspace_bytes = 0;
  std::atomic<bool> busy{false};
};

namespace {

using mbx::DType;
using mbx::Error;
using mbx::Status;
using mbx::fail;

thread_local std::string g_last_error;

mbx_status_t set_error(mbx_status_t s, const std::string& msg) {
  g_last_error = msg;
  return s;
}

// The one boundary: every entry point body runs inside MBX_TRY/MBX_CATCH, so
// no exception crosses into C, and each failure leaves a message.
#define MBX_TRY \
  g_last_error.clear(); \
  try {
#define MBX_CATCH                                                                   \
  }                                                                                 \
  catch (const Error& e) {                                                          \
    return set_error(static_cast<mbx_status_t>(e.status()), e.what());              \
  }                                                                                 \
  catch (const std::bad_alloc&) {                                                   \
    return set_error(MBX_STATUS_OUT_OF_MEMORY, "out of memory");                    \
  }                                                                                 \
  catch (const std::exception& e) {                                                 \
    return set_error(MBX_STATUS_INTERNAL_ERROR, std::string("internal error: ") + e.what()); \
  }                                                                                 \
  catch (...) {                                                                     \
    return set_error(MBX_STATUS_INTERNAL_ERROR, "internal error: unknown exception"); \
  }

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

// Fields appended after the first ABI version get defaults when a caller's
// struct_size stops before them. The first version ends before invalid_gt.
constexpr size_t kOptionsMinSize = offsetof(mbx_options_t, invalid_gt);

void preset_options(mbx_preset_t preset, mbx_options_t* o) {
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(mbx_options_t);
  o->variances[0] = o->variances[1] = 0.1;
  o->variances[2] = o->variances[3] = 0.2;
  o->pos_threshold = 0.5;
  o->neg_threshold = 0.5;
  o->force_match = MBX_FORCE_MATCH_BEST_PRIOR_PER_GT;
  o->encode_min_gt_wh = 0.0;
  o->loc_loss = MBX_LOC_LOSS_SMOOTH_L1;
  o->smooth_l1_beta = 1.0;
  o->conf_loss = MBX_CONF_LOSS_SOFTMAX_CE;
  o->neg_pos_ratio = 3.0;
  o->clamp_num_neg = 1;
  o->neg_overflow = MBX_NEG_OVERFLOW_EXCLUDE;
  o->focal_alpha = 0.25;
  o->focal_gamma = 2.0;
  o->normalization = MBX_NORM_TOTAL_POSITIVES;
  o->loc_average_coords = 0;
  o->external_norm = 1.0;
  o->invalid_gt = MBX_INVALID_GT_ERROR;
  switch (preset) {
    case MBX_PRESET_SSD_PYTORCH:
      o->prior_format = MBX_PRIOR_CENTER_SIZE;
      break;
    case MBX_PRESET_TORCHVISION_SSD:
      o->prior_format = MBX_PRIOR_CORNERS;
      o->clamp_num_neg = 0;
      break;
    case MBX_PRESET_YHENON_RETINANET:
      o->prior_format = MBX_PRIOR_CORNERS;
      o->neg_threshold = 0.4;
      o->force_match = MBX_FORCE_MATCH_NONE;
      o->encode_min_gt_wh = 1.0;
      o->smooth_l1_beta = 1.0 / 9.0;
      o->conf_loss = MBX_CONF_LOSS_SIGMOID_FOCAL;
      o->normalization = MBX_NORM_PER_IMAGE;
      o->loc_average_coords = 1;
      break;
    case MBX_PRESET_TORCHVISION_RETINANET:
      o->prior_format = MBX_PRIOR_CORNERS;
      o->neg_threshold = 0.4;
      o->force_match = MBX_FORCE_MATCH_LOW_QUALITY;
      for (double& v : o->variances) v = 1.0;
      o->loc_loss = MBX_LOC_LOSS_L1;
      o->smooth_l1_beta = 0.0;
      o->conf_loss = MBX_CONF_LOSS_SIGMOID_FOCAL;
      o->normalization = MBX_NORM_PER_IMAGE;
      break;
  }
}

template <typename E>
E enum_field(int32_t v, int32_t max, const char* name) {
  if (v < 0 || v > max)
    fail(std::string("options.") + name + " = " + std::to_string(v) + ": expected an enum value in [0, " +
         std::to_string(max) + "]");
  return static_cast<E>(v);
}

mbx::Options convert_options(const mbx_options_t* user) {
  if (!user) fail("opts: NULL; initialise an mbx_options_t with mbx_options_init()");
  if (user->struct_size < kOptionsMinSize)
    fail("opts->struct_size = " + std::to_string(user->struct_size) +
         ": too small for an mbx_options_t (did you call mbx_options_init?)");
  if (user->struct_size > sizeof(mbx_options_t))
    throw Error(Status::kUnsupported,
                "opts->struct_size = " + std::to_string(user->struct_size) +
                    " is larger than this library's mbx_options_t (" +
                    std::to_string(sizeof(mbx_options_t)) +
                    " bytes): the caller was built against a newer mbx");
  mbx_options_t c;
  preset_options(MBX_PRESET_SSD_PYTORCH, &c);  // defaults for fields the caller lacks
  std::memcpy(&c, user, user->struct_size);
  mbx::Options o;
  o.prior_format = enum_field<mbx::PriorFormat>(c.prior_format, 1, "prior_format");
  o.force_match = enum_field<mbx::ForceMatch>(c.force_match, 2, "force_match");
  o.pos_threshold = c.pos_threshold;
  o.neg_threshold = c.neg_threshold;
  for (int k = 0; k < 4; ++k) o.variances[k] = c.variances[k];
  o.encode_min_gt_wh = c.encode_min_gt_wh;
  o.loc_loss = enum_field<mbx::LocLoss>(c.loc_loss, 1, "loc_loss");
  o.conf_loss = enum_field<mbx::ConfLoss>(c.conf_loss, 1, "conf_loss");
  o.smooth_l1_beta = c.smooth_l1_beta;
  o.neg_pos_ratio = c.neg_pos_ratio;
  o.clamp_num_neg = c.clamp_num_neg != 0;
  o.neg_overflow = enum_field<mbx::NegOverflow>(c.neg_overflow, 1, "neg_overflow");
  o.focal_alpha = c.focal_alpha;
  o.focal_gamma = c.focal_gamma;
  o.normalization = enum_field<mbx::Normalization>(c.normalization, 3, "normalization");
  o.loc_average_coords = c.loc_average_coords != 0;
  o.external_norm = c.external_norm;
  o.invalid_gt = enum_field<mbx::InvalidGt>(c.invalid_gt, 1, "invalid_gt");
  if (c.reserved0 != 0) fail("options.reserved0 must be 0");
  mbx::validate_options(o);
  return o;
}

bool parse_double(const char* s, double* out) {
  // strtod honours the locale's decimal point; parse the C-locale form by hand
  // through an istringstream imbued with the classic locale.
  std::istringstream is(s);
  is.imbue(std::locale::classic());
  double v;
  is >> v;
  if (is.fail()) {
    std::string t(s);
    std::transform(t.begin(), t.end(), t.begin(), ::tolower);
    if (t == "inf" || t == "infinity" || t == "+inf") { *out = HUGE_VAL; return true; }
    if (t == "-inf" || t == "-infinity") { *out = -HUGE_VAL; return true; }
    if (t == "nan") { *out = NAN; return true; }
    return false;
  }
  is >> std::ws;
  if (!is.eof()) return false;
  *out = v;
  return true;
}

struct EnumName {
  const char* name;
  int32_t value;
};

bool parse_enum(const char* s, const EnumName* names, int n, int32_t* out) {
  for (int i = 0; i < n; ++i)
    if (std::strcmp(s, names[i].name) == 0) { *out = names[i].value; return true; }
  return false;
}

std::string enum_choices(const EnumName* names, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += (i ? ", " : "") + std::string(names[i].name);
  return r;
}

// ---------------------------------------------------------------------------
// DLPack tensors
// ---------------------------------------------------------------------------

bool is_host(const DLDevice& d) { return d.device_type == kDLCPU || d.device_type == kDLCUDAHost; }
bool is_cuda(const DLDevice& d) {
  return d.device_type == kDLCUDA || d.device_type == kDLCUDAManaged;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::string shape_str(const DLTensor* t) {
  return shape_str(std::vector<int64_t>(t->shape, t->shape + t->ndim));
}

DType dtype_of(const DLTensor* t, const char* name) {
  const DLDataType d = t->dtype;
  if (d.lanes != 1) fail(std::string(name) + ": vector dtypes (lanes != 1) are not supported");
  if (d.code == kDLFloat && d.bits == 32) return DType::kF32;
  if (d.code == kDLFloat && d.bits == 64) return DType::kF64;
  if (d.code == kDLFloat && d.bits == 16) return DType::kF16;
  if (d.code == kDLBfloat && d.bits == 16) return DType::kBF16;
  if (d.code == kDLInt && d.bits == 32) return DType::kI32;
  const char* code = d.code == kDLInt ? "int" : d.code == kDLUInt ? "uint" : d.code == kDLFloat ? "float"
                     : d.code == kDLBfloat ? "bfloat" : nullptr;
  fail(std::string(name) + ": unsupported dtype " +
       (code ? code + std::to_string(d.bits) : "(code " + std::to_string(d.code) + ", bits " + std::to_string(d.bits) + ")") +
       "; mbx takes float32 boxes, int32 labels/counts, float32/float16/bfloat16 loc/conf");
}

struct View {
  const DLTensor* t = nullptr;
  void* data = nullptr;
  DType dtype = DType::kF32;
  size_t bytes = 0;
};

size_t elem_size(DType d) {
  switch (d) {
    case DType::kF64: return 8;
    case DType::kF16:
    case DType::kBF16: return 2;
    default: return 4;
  }
}

// "[B, P, 4]" with the known sizes filled in: "[2, P, 4]" when only B is fixed.
std::string expected_shape(const char* dims, const std::vector<int64_t>& shape) {
  std::vector<std::string> letters;
  std::string d(dims);
  size_t st = 1;
  for (size_t k = 1; k < d.size(); ++k)
    if (d[k] == ',' || d[k] == ']') { letters.push_back(d.substr(st, k - st)); st = k + 2; }
  std::string r = "[";
  for (size_t j = 0; j < shape.size(); ++j)
    r += (j ? ", " : "") + (shape[j] >= 0 ? std::to_string(shape[j]) : j < letters.size() ? letters[j] : "?");
  return r + "]";
}

// Checks one tensor: not NULL, ndim, allowed dtypes, shape (-1 = free, filled
// in), compact strides, data and alignment.
View check_tensor(const DLTensor* t, const char* name, const char* dims,
                  std::vector<int64_t> shape, std::initializer_list<DType> dtypes) {
  if (!t) fail(std::string(name) + ": NULL tensor");
  View v;
  v.t = t;
  if (t->ndim != static_cast<int>(shape.size()))
    fail(std::string(name) + ": ndim = " + std::to_string(t->ndim) + ", expected " +
         std::to_string(shape.size()) + " (shape " + dims + ")");
  if (t->ndim > 0 && !t->shape) fail(std::string(name) + ": shape pointer is NULL");
  for (int i = 0; i < t->ndim; ++i)
    if (t->shape[i] < 0)
      fail(std::string(name) + ": negative dimension in shape " + shape_str(t));
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] >= 0 && t->shape[i] != shape[i]) {
      const std::string want = expected_shape(dims, shape);
      fail(std::string(name) + ": shape " + shape_str(t) + " does not match " + dims + " = " + want +
           " (B and G from gt_boxes, P from priors, C from conf)");
    }
  v.dtype = dtype_of(t, name);
  if (std::find(dtypes.begin(), dtypes.end(), v.dtype) == dtypes.end()) {
    std::string allowed;
    for (DType d : dtypes) allowed += (allowed.empty() ? "" : " or ") + std::string(mbx::dtype_name(d));
    fail(std::string(name) + ": dtype " + mbx::dtype_name(v.dtype) + ", expected " + allowed);
  }
  if (!is_host(t->device) && !is_cuda(t->device))
    throw Error(Status::kUnsupported, std::string(name) + ": device type " +
                                          std::to_string(t->device.device_type) +
                                          " is not supported (CPU or CUDA)");
  int64_t n = 1;
  for (int i = 0; i < t->ndim; ++i) {
    if (t->shape[i] != 0 && n > INT64_MAX / 16 / t->shape[i])
      fail(std::string(name) + ": shape " + shape_str(t) + " is too large");
    n *= t->shape[i];
  }
  if (t->strides && n > 0) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; --i) {
      if (t->shape[i] != 1 && t->strides[i] != expect) {
        std::string st = "[";
        for (int j = 0; j < t->ndim; ++j) st += (j ? ", " : "") + std::to_string(t->strides[j]);
        fail(std::string(name) + ": strides " + st + "] are not compact row-major for shape " +
             shape_str(t) + "; pass a contiguous tensor");
      }
      expect *= t->shape[i];
    }
  }
  v.bytes = static_cast<size_t>(n) * elem_size(v.dtype);
  if (n > 0 && !t->data) fail(std::string(name) + ": data is NULL for a non-empty tensor");
  v.data = t->data ? static_cast<char*>(t->data) + t->byte_offset : nullptr;
  if (v.data && reinterpret_cast<uintptr_t>(v.data) % elem_size(v.dtype) != 0)
    fail(std::string(name) + ": data (+ byte_offset) is not aligned to its " +
         std::to_string(elem_size(v.dtype)) + "-byte element size");
  return v;
}

struct Named {
  const char* name;
  View v;
};

void check_same_device(const std::vector<Named>& all) {
  const DLDevice& d0 = all[0].v.t->device;
  for (const Named& n : all) {
    const DLDevice& d = n.v.t->device;
    const bool same_kind = is_host(d) == is_host(d0);
    const bool same_gpu = is_host(d) || d.device_id == d0.device_id;
    if (!same_kind || !same_gpu)
      fail(std::string(n.name) + ": on device (type " + std::to_string(d.device_type) + ", id " +
           std::to_string(d.device_id) + ") but " + all[0].name + " is on (type " +
           std::to_string(d0.device_type) + ", id " + std::to_string(d0.device_id) +
           "): every tensor of a call must be on the same device");
  }
}

void check_no_alias(const std::vector<Named>& inputs, const std::vector<Named>& outputs) {
  auto overlap = [](const View& a, const View& b) {
    if (!a.data || !b.data || a.bytes == 0 || b.bytes == 0) return false;
    auto a0 = reinterpret_cast<uintptr_t>(a.data), b0 = reinterpret_cast<uintptr_t>(b.data);
    return a0 < b0 + b.bytes && b0 < a0 + a.bytes;
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const Named& in : inputs)
      if (overlap(outputs[i].v, in.v))
        fail(std::string(outputs[i].name) + ": output memory overlaps input " + in.name +
             "; outputs must not alias inputs");
    for (size_t j = 0; j < i; ++j)
      if (overlap(outputs[i].v, outputs[j].v))
        fail(std::string(outputs[i].name) + ": output memory overlaps output " + outputs[j].name);
  }
}

// RAII guard refusing concurrent use of one context.
class ContextGuard {
 public:
  explicit ContextGuard(mbx_context_t* ctx) : ctx_(ctx) {
    if (ctx_ && ctx_->busy.exchange(true, std::memory_order_acquire))
      throw Error(Status::kContextBusy,
                  "ctx: this mbx_context_t is being used by another thread; use one context "
                  "per thread");
  }
  ~ContextGuard() {
    if (ctx_) ctx_->busy.store(false, std::memory_order_release);
  }

 private:
  mbx_context_t* ctx_;
};

enum class Stage { kMatch, kForward, kBackward, kForwardBackward };

struct CallTensors {
  const DLTensor *priors, *gt_boxes, *gt_labels, *gt_counts, *loc, *conf, *grad_loss;
  DLTensor *conf_target, *matched_gt, *loc_target, *num_pos, *loss, *grad_loc, *grad_conf;
};

// Host copies of small input tensors living on a CUDA device, for validation.
struct HostCopy {
  std::vector<unsigned char> buf;
  const void* get(const View& v, int device_id, void* stream) {
    buf.resize(v.bytes + 1);
    if (v.bytes) mbx::device_to_host(buf.data(), v.data, v.bytes, device_id, stream);
    return buf.data();
  }
};

// How a call on `ctx` (NULL: defaults) runs: threads, stream, workspaces.
mbx::Exec exec_of(mbx_context_t* ctx) {
  mbx::Exec ex;
  if (!ctx) return ex;
  ex.num_threads = ctx->num_threads;
  ex.cuda_stream = ctx->cuda_stream;
  ex.workspace = &ctx->workspace;
  ex.user_workspace = ctx->user_workspace;
  ex.user_workspace_bytes = ctx->user_workspace_bytes;
  return ex;
}

mbx_path_t choose_path(mbx_context_t* ctx, bool cuda_tensors) {
  const mbx_path_t want = ctx ? ctx->path : MBX_PATH_AUTO;
  if (want == MBX_PATH_AUTO) return cuda_tensors ? MBX_PATH_CUDA : MBX_PATH_CPU;
  if (want == MBX_PATH_CUDA && !cuda_tensors)
    fail("context path is cuda but the tensors are on the CPU; pass CUDA tensors or use "
         "MBX_PATH_AUTO");
  if (want != MBX_PATH_CUDA && cuda_tensors)
    fail(std::string("context path is ") + mbx_path_name(want) +
         " but the tensors are on a CUDA device");
  return want;
}

void run_call(mbx_context_t* ctx, const mbx_options_t* user_opts, Stage stage,
              int64_t num_classes, const CallTensors& T) {
  ContextGuard guard(ctx);
  mbx::Options o = convert_options(user_opts);
  const bool loss_stage = stage != Stage::kMatch;

  // Dimensions: P from priors, B and G from gt_boxes, C from conf.
  if (!T.priors) fail("priors: NULL tensor");
  if (!T.gt_boxes) fail("gt_boxes: NULL tensor");
  View priors = check_tensor(T.priors, "priors", "[P, 4]", {-1, 4}, {DType::kF32});
  View gt_boxes = check_tensor(T.gt_boxes, "gt_boxes", "[B, G, 4]", {-1, -1, 4}, {DType::kF32});
  const int64_t P = T.priors->shape[0], B = T.gt_boxes->shape[0], G = T.gt_boxes->shape[1];
  if (P < 1) fail("priors: P = 0; expected at least one prior");
  if (B < 1) fail("gt_boxes: B = 0; expected at least one image");
  if (P > INT32_MAX - 1 || G > INT32_MAX - 1) fail("priors/gt_boxes: P and G must be < 2^31 - 1");
  View gt_labels = check_tensor(T.gt_labels, "gt_labels", "[B, G]", {B, G}, {DType::kI32});
  View gt_counts = check_tensor(T.gt_counts, "gt_counts", "[B]", {B}, {DType::kI32});
  std::vector<Named> inputs = {{"priors", priors}, {"gt_boxes", gt_boxes},
                               {"gt_labels", gt_labels}, {"gt_counts", gt_counts}};
  std::vector<Named> outputs;
  int64_t C = 0;
  View loc, conf;
  if (loss_stage) {
    if (!T.conf) fail("conf: NULL tensor");
    conf = check_tensor(T.conf, "conf", "[B, P, C]", {B, P, -1},
                        {DType::kF32, DType::kF16, DType::kBF16});
    C = T.conf->shape[2];
    loc = check_tensor(T.loc, "loc", "[B, P, 4]", {B, P, 4},
                       {DType::kF32, DType::kF16, DType::kBF16});
    inputs.push_back({"loc", loc});
    inputs.push_back({"conf", conf});
    if (o.conf_loss == mbx::ConfLoss::kSoftmaxCE && C < 2)
      fail("conf: C = " + std::to_string(C) +
           " but SOFTMAX_CE needs a background column plus at least one class (C >= 2)");
    if (o.conf_loss == mbx::ConfLoss::kSigmoidFocal && C < 1)
      fail("conf: C = 0; SIGMOID_FOCAL needs at least one class column");
    num_classes = o.conf_loss == mbx::ConfLoss::kSoftmaxCE ? C - 1 : C;
  } else if (num_classes < 0) {
    fail("num_classes = " + std::to_string(num_classes) + ": expected K >= 0 (0 = unchecked)");
  }

  mbx::Outputs out;
  View v;
  if (stage == Stage::kMatch) {
    v = check_tensor(T.conf_target, "conf_target", "[B, P]", {B, P}, {DType::kI32});
    outputs.push_back({"conf_target", v});
    out.conf_target = static_cast<int32_t*>(v.data);
    if (T.matched_gt) {
      v = check_tensor(T.matched_gt, "matched_gt", "[B, P]", {B, P}, {DType::kI32});
      outputs.push_back({"matched_gt", v});
      out.matched_gt = static_cast<int32_t*>(v.data);
    }
    if (T.loc_target) {
      v = check_tensor(T.loc_target, "loc_target", "[B, P, 4]", {B, P, 4}, {DType::kF32});
      outputs.push_back({"loc_target", v});
      out.loc_target = static_cast<float*>(v.data);
    }
  }
  if (T.num_pos && stage != Stage::kBackward) {
    v = check_tensor(T.num_pos, "num_pos", "[B]", {B}, {DType::kI32});
    outputs.push_back({"num_pos", v});
    out.num_pos = static_cast<int32_t*>(v.data);
  }
  if (stage == Stage::kForward || stage == Stage::kForwardBackward) {
    v = check_tensor(T.loss, "loss", "[2]", {2}, {DType::kF32, DType::kF64});
    outputs.push_back({"loss", v});
    out.loss = v.data;
    out.loss_dtype = v.dtype;
  }
  if (stage == Stage::kBackward || stage == Stage::kForwardBackward) {
    if (T.grad_loss) {
      View gl = check_tensor(T.grad_loss, "grad_loss", "[2]", {2}, {DType::kF32, DType::kF64});
      inputs.push_back({"grad_loss", gl});
      out.grad_loss = gl.data;
      out.grad_loss_dtype = gl.dtype;
    }
    v = check_tensor(T.grad_loc, "grad_loc", "[B, P, 4]", {B, P, 4}, {loc.dtype});
    outputs.push_back({"grad_loc", v});
    out.grad_loc = v.data;
    v = check_tensor(T.grad_conf, "grad_conf", "[B, P, C]", {B, P, C}, {conf.dtype});
    outputs.push_back({"grad_conf", v});
    out.grad_conf = v.data;
  }
  std::vector<Named> all = inputs;
  all.insert(all.end(), outputs.begin(), outputs.end());
  check_same_device(all);
  check_no_alias(inputs, outputs);

  const DLDevice dev = T.priors->device;
  const bool cuda = is_cuda(dev);
  const mbx_path_t path = choose_path(ctx, cuda);
  if (cuda && !mbx::cuda_runtime_available())
    throw Error(Status::kNoDevice,
                "priors: tensors are on CUDA device " + std::to_string(dev.device_id) +
                    " but no usable CUDA device/driver is present (or mbx was built without CUDA)");

  mbx::Inputs in;
  in.B = B; in.P = P; in.C = C; in.G = G;
  in.priors = static_cast<const float*>(priors.data);
  in.gt_boxes = static_cast<const float*>(gt_boxes.data);
  in.gt_labels = static_cast<const int32_t*>(gt_labels.data);
  in.gt_counts = static_cast<const int32_t*>(gt_counts.data);
  in.loc = loc.data;
  in.conf = conf.data;
  in.loc_dtype = loc.dtype;
  in.conf_dtype = conf.dtype;
  in.num_classes = num_classes;
  in.device = cuda ? mbx::Device::kCUDA : mbx::Device::kCPU;
  in.device_id = cuda ? dev.device_id : 0;

  const mbx::Exec ex = exec_of(ctx);

  // Value checks (SPEC §7) before anything is written. On CUDA the priors
  // are checked on the device (one row comes back if one is bad) and the
  // small GT tensors are copied to the host, unless validation is disabled.
  std::vector<uint8_t> valid;
  if (!cuda) {
    mbx::validate_priors(in.priors, P, o.prior_format);
    mbx::validate_gt(o, B, G, in.gt_boxes, in.gt_labels, in.gt_counts, num_classes, &valid);
    in.gt_valid = valid.data();
  } else if (!ctx || ctx->cuda_validation) {
    HostCopy hb, hl, hc;
    mbx::validate_priors_device(static_cast<const float*>(priors.data), P, o.prior_format,
                                in.device_id, ex.cuda_stream);
    mbx::validate_gt(o, B, G, static_cast<const float*>(hb.get(gt_boxes, in.device_id, ex.cuda_stream)),
                     static_cast<const int32_t*>(hl.get(gt_labels, in.device_id, ex.cuda_stream)),
                     static_cast<const int32_t*>(hc.get(gt_counts, in.device_id, ex.cuda_stream)),
                     num_classes, &valid);
  }

  if (path == MBX_PATH_CUDA) {
    mbx::run_cuda(o, in, out, ex);
  } else if (path == MBX_PATH_CPU_SCALAR) {
    mbx::run_scalar(o, in, out);
  } else {
    mbx::run_cpu(o, in, out, ex);
  }
}

const mbx::SsdConfig kSsdConfigs[] = {mbx::SsdConfig::kSsd300Voc, mbx::SsdConfig::kSsd300Coco,
                                      mbx::SsdConfig::kSsd512Voc};

mbx::SsdConfig ssd_config(mbx_ssd_config_t c) {
  if (static_cast<int>(c) < 0 || static_cast<int>(c) > 2)
    fail("config = " + std::to_string(static_cast<int>(c)) +
         ": expected MBX_SSD300_VOC, MBX_SSD300_COCO or MBX_SSD512_VOC");
  return kSsdConfigs[static_cast<int>(c)];
}

void check_image_size(int64_t h, int64_t w) {
  if (h < 1 || w < 1 || h > (int64_t(1) << 20) || w > (int64_t(1) << 20))
    fail("image_height x image_width = " + std::to_string(h) + " x " + std::to_string(w) +
         ": expected each in [1, 2^20] pixels");
}

float* check_prior_output(DLTensor* t, int64_t P) {
  View v = check_tensor(t, "priors", "[P, 4]", {P, 4}, {DType::kF32});
  if (!is_host(t->device))
    fail("priors: prior generation writes host memory; pass a CPU tensor and copy it yourself");
  return static_cast<float*>(v.data);
}

}  // namespace

// ---------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------

extern "C" {

MBX_API const char* mbx_status_string(mbx_status_t status) {
  switch (status) {
    case MBX_STATUS_OK: return "MBX_STATUS_OK";
    case MBX_STATUS_INVALID_ARGUMENT: return "MBX_STATUS_INVALID_ARGUMENT";
    case MBX_STATUS_UNSUPPORTED: return "MBX_STATUS_UNSUPPORTED";
    case MBX_STATUS_OUT_OF_MEMORY: return "MBX_STATUS_OUT_OF_MEMORY";
    case MBX_STATUS_NO_DEVICE: return "MBX_STATUS_NO_DEVICE";
    case MBX_STATUS_DEVICE_ERROR: return "MBX_STATUS_DEVICE_ERROR";
    case MBX_STATUS_CONTEXT_BUSY: return "MBX_STATUS_CONTEXT_BUSY";
    case MBX_STATUS_INTERNAL_ERROR: return "MBX_STATUS_INTERNAL_ERROR";
  }
  return "MBX_STATUS_UNKNOWN";
}

MBX_API const char* mbx_last_error(void) { return g_last_error.c_str(); }

MBX_API const char* mbx_version(void) {
#define MBX_STR2(x) #x
#define MBX_STR(x) MBX_STR2(x)
  return MBX_STR(MBX_VERSION_MAJOR) "." MBX_STR(MBX_VERSION_MINOR) "." MBX_STR(MBX_VERSION_PATCH);
}

MBX_API int mbx_version_number(void) { return MBX_VERSION_NUMBER; }

MBX_API int mbx_cuda_available(void) { return mbx::cuda_runtime_available() ? 1 : 0; }

MBX_API int mbx_path_available(mbx_path_t path) {
  switch (path) {
    case MBX_PATH_AUTO:
    case MBX_PATH_CPU_SCALAR:
    case MBX_PATH_CPU: return 1;
    case MBX_PATH_CUDA: return mbx_cuda_available();
  }
  return 0;
}

MBX_API const char* mbx_path_name(mbx_path_t path) {
  switch (path) {
    case MBX_PATH_AUTO: return "auto";
    case MBX_PATH_CPU_SCALAR: return "cpu-scalar";
    case MBX_PATH_CPU: return "cpu";
    case MBX_PATH_CUDA: return "cuda";
  }
  return nullptr;
}

MBX_API mbx_status_t mbx_options_init(mbx_options_t* opts, mbx_preset_t preset) {
  MBX_TRY
  if (!opts) fail("opts: NULL");
  if (static_cast<int>(preset) < 0 || static_cast<int>(preset) > 3)
    fail("preset = " + std::to_string(static_cast<int>(preset)) +
         ": expected an mbx_preset_t (0..3)");
  preset_options(preset, opts);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_preset_from_name(const char* name, mbx_preset_t* preset) {
  MBX_TRY
  if (!name) fail("name: NULL");
  if (!preset) fail("preset: NULL");
  static const EnumName kNames[] = {{"ssd_pytorch", MBX_PRESET_SSD_PYTORCH},
                                    {"torchvision_ssd", MBX_PRESET_TORCHVISION_SSD},
                                    {"yhenon_retinanet", MBX_PRESET_YHENON_RETINANET},
                                    {"torchvision_retinanet", MBX_PRESET_TORCHVISION_RETINANET}};
  int32_t v;
  if (!parse_enum(name, kNames, 4, &v))
    fail(std::string("preset \"") + name + "\" is unknown; expected one of " + enum_choices(kNames, 4));
  *preset = static_cast<mbx_preset_t>(v);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_options_set(mbx_options_t* opts, const char* name, const char* value) {
  MBX_TRY
  if (!opts) fail("opts: NULL");
  if (!name) fail("name: NULL");
  if (!value) fail("value: NULL");
  if (opts->struct_size < kOptionsMinSize || opts->struct_size > sizeof(mbx_options_t))
    fail("opts->struct_size = " + std::to_string(opts->struct_size) +
         ": not an initialised mbx_options_t (call mbx_options_init first)");
  static const EnumName kPrior[] = {{"CENTER_SIZE", MBX_PRIOR_CENTER_SIZE}, {"CORNERS", MBX_PRIOR_CORNERS}};
  static const EnumName kForce[] = {{"NONE", MBX_FORCE_MATCH_NONE},
                                    {"BEST_PRIOR_PER_GT", MBX_FORCE_MATCH_BEST_PRIOR_PER_GT},
                                    {"LOW_QUALITY", MBX_FORCE_MATCH_LOW_QUALITY}};
  static const EnumName kLoc[] = {{"SMOOTH_L1", MBX_LOC_LOSS_SMOOTH_L1}, {"L1", MBX_LOC_LOSS_L1}};
  static const EnumName kConf[] = {{"SOFTMAX_CE", MBX_CONF_LOSS_SOFTMAX_CE},
                                   {"SIGMOID_FOCAL", MBX_CONF_LOSS_SIGMOID_FOCAL}};
  static const EnumName kNorm[] = {{"TOTAL_POSITIVES", MBX_NORM_TOTAL_POSITIVES},
                                   {"PER_IMAGE", MBX_NORM_PER_IMAGE},
                                   {"NONE", MBX_NORM_NONE},
                                   {"EXTERNAL", MBX_NORM_EXTERNAL}};
  static const EnumName kOverflow[] = {{"EXCLUDE", MBX_NEG_OVERFLOW_EXCLUDE},
                                       {"DOUBLE_COUNT_POSITIVES", MBX_NEG_OVERFLOW_DOUBLE_COUNT_POSITIVES}};
  static const EnumName kInvalid[] = {{"ERROR", MBX_INVALID_GT_ERROR}, {"SKIP", MBX_INVALID_GT_SKIP}};
  static const EnumName kBool[] = {{"true", 1}, {"false", 0}, {"True", 1}, {"False", 0},
                                   {"1", 1},    {"0", 0},     {"TRUE", 1}, {"FALSE", 0}};
  struct EnumField {
    const char* name;
    const EnumName* names;
    int n;
    int32_t mbx_options_t::*field;
  };
  static const EnumField kEnums[] = {
      {"prior_format", kPrior, 2, &mbx_options_t::prior_format},
      {"force_match", kForce, 3, &mbx_options_t::force_match},
      {"loc_loss", kLoc, 2, &mbx_options_t::loc_loss},
      {"conf_loss", kConf, 2, &mbx_options_t::conf_loss},
      {"normalization", kNorm, 4, &mbx_options_t::normalization},
      {"neg_overflow", kOverflow, 2, &mbx_options_t::neg_overflow},
      {"invalid_gt", kInvalid, 2, &mbx_options_t::invalid_gt},
      {"clamp_num_neg", kBool, 8, &mbx_options_t::clamp_num_neg},
      {"loc_average_coords", kBool, 8, &mbx_options_t::loc_average_coords},
  };
  struct NumField {
    const char* name;
    double mbx_options_t::*field;
  };
  static const NumField kNums[] = {
      {"pos_threshold", &mbx_options_t::pos_threshold},
      {"neg_threshold", &mbx_options_t::neg_threshold},
      {"encode_min_gt_wh", &mbx_options_t::encode_min_gt_wh},
      {"smooth_l1_beta", &mbx_options_t::smooth_l1_beta},
      {"neg_pos_ratio", &mbx_options_t::neg_pos_ratio},
      {"focal_alpha", &mbx_options_t::focal_alpha},
      {"focal_gamma", &mbx_options_t::focal_gamma},
      {"external_norm", &mbx_options_t::external_norm},
  };
  const std::string key(name);
  for (const EnumField& f : kEnums) {
    if (key != f.name) continue;
    if (key == "invalid_gt" && opts->struct_size <= offsetof(mbx_options_t, invalid_gt))
      fail("opts: invalid_gt is not part of this caller's (older) mbx_options_t");
    int32_t v;
    if (!parse_enum(value, f.names, f.n, &v))
      fail("option " + key + ": value \"" + value + "\" is not one of " + enum_choices(f.names, f.n));
    opts->*f.field = v;
    return MBX_STATUS_OK;
  }
  for (const NumField& f : kNums) {
    if (key != f.name) continue;
    double v;
    if (!parse_double(value, &v))
      fail("option " + key + ": value \"" + value + "\" is not a number");
    opts->*f.field = v;
    return MBX_STATUS_OK;
  }
  if (key == "variances") {
    double v[4];
    std::string s(value);
    for (char& ch : s)
      if (ch == '[' || ch == ']' || ch == '(' || ch == ')') ch = ' ';
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i)
      if (i == s.size() || s[i] == ',') { parts.push_back(s.substr(start, i - start)); start = i + 1; }
    if (parts.size() != 4)
      fail("option variances: value \"" + std::string(value) + "\" must be four comma-separated numbers");
    for (int k = 0; k < 4; ++k) {
      std::string t = parts[k];
      t.erase(0, t.find_first_not_of(" \t"));
      t.erase(t.find_last_not_of(" \t") + 1);
      if (t.empty() || !parse_double(t.c_str(), &v[k]))
        fail("option variances: \"" + parts[k] + "\" is not a number");
    }
    for (int k = 0; k < 4; ++k) opts->variances[k] = v[k];
    return MBX_STATUS_OK;
  }
  fail("option \"" + key + "\" is unknown; expected one of prior_format, pos_threshold, "
       "neg_threshold, force_match, variances, encode_min_gt_wh, loc_loss, smooth_l1_beta, "
       "conf_loss, neg_pos_ratio, clamp_num_neg, neg_overflow, focal_alpha, focal_gamma, "
       "normalization, external_norm, loc_average_coords, invalid_gt");
  MBX_CATCH
}

MBX_API mbx_status_t mbx_options_validate(const mbx_options_t* opts) {
  MBX_TRY
  convert_options(opts);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_create(mbx_context_t** ctx) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  *ctx = new mbx_context_t();
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API void mbx_context_destroy(mbx_context_t* ctx) { delete ctx; }

MBX_API mbx_status_t mbx_context_set_num_threads(mbx_context_t* ctx, int num_threads) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  if (num_threads < 0 || num_threads > 4096)
    fail("num_threads = " + std::to_string(num_threads) + ": expected 0 (all) .. 4096");
  ctx->num_threads = num_threads;
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_set_path(mbx_context_t* ctx, mbx_path_t path) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  if (!mbx_path_name(path))
    fail("path = " + std::to_string(static_cast<int>(path)) + ": expected an mbx_path_t");
  if (!mbx_path_available(path))
    throw Error(Status::kNoDevice,
                std::string("path ") + mbx_path_name(path) + " is not available in this process");
  ctx->path = path;
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_set_cuda_stream(mbx_context_t* ctx, void* stream) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  ctx->cuda_stream = stream;
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_set_cuda_validation(mbx_context_t* ctx, int enabled) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  ctx->cuda_validation = enabled ? 1 : 0;
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_workspace_bytes(const mbx_context_t* ctx, size_t* bytes) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  if (!bytes) fail("bytes: NULL");
  *bytes = ctx->workspace.bytes();
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_release_workspace(mbx_context_t* ctx) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  ContextGuard guard(ctx);
  ctx->workspace.release();
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_context_set_workspace(mbx_context_t* ctx, void* ptr, size_t bytes) {
  MBX_TRY
  if (!ctx) fail("ctx: NULL");
  if (ptr && bytes == 0) fail("bytes: 0 with a non-NULL workspace pointer");
  if (!ptr && bytes != 0) fail("ptr: NULL with bytes = " + std::to_string(bytes));
  ContextGuard guard(ctx);
  ctx->user_workspace = ptr;
  ctx->user_workspace_bytes = ptr ? bytes : 0;
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_workspace_size(const mbx_options_t* opts, int64_t B, int64_t P,
                                        int64_t G, int64_t C, size_t* bytes) {
  MBX_TRY
  if (!bytes) fail("bytes: NULL");
  const mbx::Options o = convert_options(opts);
  if (B < 1) fail("B = " + std::to_string(B) + ": expected at least one image");
  if (P < 1) fail("P = " + std::to_string(P) + ": expected at least one prior");
  if (G < 1) fail("G = " + std::to_string(G) + ": expected at least one GT row");
  if (C < 1) fail("C = " + std::to_string(C) + ": expected at least one class");
  if (P > INT32_MAX - 1 || G > INT32_MAX - 1) fail("P and G must be < 2^31 - 1");
  // Products beyond 2^48 elements describe tensors no device holds; refusing
  // them keeps the size arithmetic (bytes per element up to 16) exact.
  constexpr int64_t kMaxElems = int64_t(1) << 48;
  int64_t bp = 0, bg = 0, pc = 0;
  if (__builtin_mul_overflow(B, P, &bp) || bp > kMaxElems || __builtin_mul_overflow(B, G, &bg) ||
      bg > kMaxElems || __builtin_mul_overflow(P, C, &pc) || pc > kMaxElems)
    fail("B = " + std::to_string(B) + ", P = " + std::to_string(P) + ", G = " + std::to_string(G) +
         ", C = " + std::to_string(C) + ": too large (B*P, B*G and P*C must be <= 2^48)");
  *bytes = mbx::cuda_workspace_bytes(o, B, P, G, C);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_match(mbx_context_t* ctx, const mbx_options_t* opts,
                               int64_t num_classes, const DLTensor* priors,
                               const DLTensor* gt_boxes, const DLTensor* gt_labels,
                               const DLTensor* gt_counts, DLTensor* conf_target,
                               DLTensor* matched_gt, DLTensor* loc_target, DLTensor* num_pos) {
  MBX_TRY
  CallTensors t{priors, gt_boxes, gt_labels, gt_counts, nullptr, nullptr, nullptr,
                conf_target, matched_gt, loc_target, num_pos, nullptr, nullptr, nullptr};
  run_call(ctx, opts, Stage::kMatch, num_classes, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_loss_forward(mbx_context_t* ctx, const mbx_options_t* opts,
                                      const DLTensor* priors, const DLTensor* gt_boxes,
                                      const DLTensor* gt_labels, const DLTensor* gt_counts,
                                      const DLTensor* loc, const DLTensor* conf, DLTensor* loss,
                                      DLTensor* num_pos) {
  MBX_TRY
  CallTensors t{priors, gt_boxes, gt_labels, gt_counts, loc, conf, nullptr,
                nullptr, nullptr, nullptr, num_pos, loss, nullptr, nullptr};
  run_call(ctx, opts, Stage::kForward, 0, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_loss_backward(mbx_context_t* ctx, const mbx_options_t* opts,
                                       const DLTensor* priors, const DLTensor* gt_boxes,
                                       const DLTensor* gt_labels, const DLTensor* gt_counts,
                                       const DLTensor* loc, const DLTensor* conf,
                                       const DLTensor* grad_loss, DLTensor* grad_loc,
                                       DLTensor* grad_conf) {
  MBX_TRY
  CallTensors t{priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad_loss,
                nullptr, nullptr, nullptr, nullptr, nullptr, grad_loc, grad_conf};
  run_call(ctx, opts, Stage::kBackward, 0, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_loss_forward_backward(
    mbx_context_t* ctx, const mbx_options_t* opts, const DLTensor* priors,
    const DLTensor* gt_boxes, const DLTensor* gt_labels, const DLTensor* gt_counts,
    const DLTensor* loc, const DLTensor* conf, const DLTensor* grad_loss, DLTensor* loss,
    DLTensor* num_pos, DLTensor* grad_loc, DLTensor* grad_conf) {
  MBX_TRY
  CallTensors t{priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad_loss,
                nullptr, nullptr, nullptr, num_pos, loss, grad_loc, grad_conf};
  run_call(ctx, opts, Stage::kForwardBackward, 0, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_decode(mbx_context_t* ctx, const mbx_options_t* opts,
                                const DLTensor* priors, const DLTensor* loc, DLTensor* boxes) {
  MBX_TRY
  ContextGuard guard(ctx);
  mbx::Options o = convert_options(opts);
  View pv = check_tensor(priors, "priors", "[P, 4]", {-1, 4}, {DType::kF32});
  const int64_t P = priors->shape[0];
  if (P < 1) fail("priors: P = 0; expected at least one prior");
  View lv = check_tensor(loc, "loc", "[B, P, 4]", {-1, P, 4}, {DType::kF32});
  const int64_t B = loc->shape[0];
  View bv = check_tensor(boxes, "boxes", "[B, P, 4]", {B, P, 4}, {DType::kF32});
  check_same_device({{"priors", pv}, {"loc", lv}, {"boxes", bv}});
  check_no_alias({{"priors", pv}, {"loc", lv}}, {{"boxes", bv}});
  const bool cuda = is_cuda(priors->device);
  const mbx_path_t path = choose_path(ctx, cuda);
  const mbx::Exec ex = exec_of(ctx);
  if (path == MBX_PATH_CUDA) {
    if (!mbx::cuda_runtime_available())
      throw Error(Status::kNoDevice, "priors: CUDA tensors but no usable CUDA device/driver");
    if (!ctx || ctx->cuda_validation)
      mbx::validate_priors_device(static_cast<const float*>(pv.data), P, o.prior_format,
                                  priors->device.device_id, ex.cuda_stream);
    mbx::Inputs in;
    in.B = B; in.P = P;
    in.priors = static_cast<const float*>(pv.data);
    in.device = mbx::Device::kCUDA;
    in.device_id = priors->device.device_id;
    mbx::decode_cuda(o, in, static_cast<const float*>(lv.data), static_cast<float*>(bv.data), ex);
  } else {
    mbx::validate_priors(static_cast<const float*>(pv.data), P, o.prior_format);
    mbx::PriorGeometry pg;
    mbx::build_prior_geometry(static_cast<const float*>(pv.data), P, o.prior_format, &pg);
    mbx::decode_cpu(o, pg, B, static_cast<const float*>(lv.data), static_cast<float*>(bv.data),
                    path == MBX_PATH_CPU_SCALAR ? 1 : ex.num_threads);
  }
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_ssd_count(mbx_ssd_config_t config, int64_t* num_priors) {
  MBX_TRY
  if (!num_priors) fail("num_priors: NULL");
  *num_priors = mbx::ssd_prior_count(ssd_config(config));
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_ssd(mbx_ssd_config_t config, DLTensor* priors) {
  MBX_TRY
  const mbx::SsdConfig c = ssd_config(config);
  float* out = check_prior_output(priors, mbx::ssd_prior_count(c));
  mbx::ssd_priors(c, out);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_retinanet_count(int64_t image_height, int64_t image_width,
                                                int64_t* num_priors) {
  MBX_TRY
  if (!num_priors) fail("num_priors: NULL");
  check_image_size(image_height, image_width);
  *num_priors = mbx::retinanet_anchor_count(image_height, image_width);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_retinanet(int64_t image_height, int64_t image_width,
                                          DLTensor* priors) {
  MBX_TRY
  check_image_size(image_height, image_width);
  float* out = check_prior_output(priors, mbx::retinanet_anchor_count(image_height, image_width));
  mbx::retinanet_anchors(image_height, image_width, out);
  return MBX_STATUS_OK;
  MBX_CATCH
}

}  // extern "C"
