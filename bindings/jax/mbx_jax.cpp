// XLA FFI custom calls over the mbx C API, for mbx.jax (bindings/python/mbx/jax.py).
//
// Three operations, each one XLA FFI target name with a CPU and a CUDA handler
// (the Python side registers both under the same name; XLA keys its registry
// on (name, platform)):
//
//   mbx_loss_forward           -> mbx_run LOSS_FORWARD       (loss [2] f32, num_pos [B])
//   mbx_loss_forward_backward  -> mbx_run LOSS_FORWARD_BACKWARD (+ grad_loc, grad_conf;
//                                                              upstream gradient (1, 1))
//   mbx_match                  -> mbx_run MATCH              (conf_target, matched_gt,
//                                                              loc_target, num_pos)
//   mbx_scale_gradients        (CPU only) the backward rule's in-place scale
//                              by the cotangents; a no-op for unit cotangents
//
// Operands of the loss targets: priors, gt_boxes, gt_labels, gt_counts, loc,
// conf, external_norm (a float32/float64 scalar). Attributes: `options` (the
// preset and every option as "name=value" lines, parsed by mbx_options_init /
// mbx_options_set exactly as the Python Options class does) and `norm_operand`
// (1: the CPU handler reads the external_norm operand on the host and uses it
// as opts.external_norm, so the result is bitwise the C call's; 0: the operand
// is ignored). The CUDA handlers never read operands on the host: mbx.jax
// passes norm_operand = 0 there and scales the outputs itself.
//
// Optional inputs (loss and match targets): the attribute `optional_inputs`
// says which are given, bit 0 gt_flags [B, G] int32 (the operand after the
// fixed ones) and bit 1 prior_levels [L] int32 (the int32 array attribute
// `prior_levels`, static under jit and always present: JAX drops an empty
// array attribute, so mbx.jax passes [0] when the bit is clear). prior_levels is passed to mbx as a host tensor, which mbx reads on
// the host with CUDA inputs too: no copy and no synchronisation.
//
// Each thread that runs a handler owns one mbx_context_t (thread_local), so
// concurrent executions on several XLA devices share no mutable state; the
// option parse cache is thread_local too.
//
// CUDA: the call runs on XLA's stream (PlatformStream), with mbx's
// caller-provided workspace carved from XLA's scratch allocator
// (mbx_workspace_size bytes, over-allocated and aligned up to 256 bytes as
// mbx_context_set_workspace requires) and with CUDA validation off, so mbx
// neither allocates nor synchronises the stream (value checks would need a
// device-to-host copy; see mbx_context_set_cuda_validation). Shapes and
// dtypes are checked by mbx.jax at trace time.
//
// The shim links libmbx only; it never links jaxlib (the XLA FFI headers are
// header-only and talk to XLA through the XLA_FFI_Api table XLA passes in).

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <mbx/mbx.h>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// ---------------------------------------------------------------------------
// Options: "preset=<name>\n<option>=<value>\n..." -> mbx_options_t.
// ---------------------------------------------------------------------------

std::string status_message(mbx_status_t status, const char* what) {
  std::string msg = mbx_last_error();
  if (msg.empty()) msg = std::string(what) + " failed";
  return msg + " [" + mbx_status_string(status) + "]";
}

ffi::Error mbx_error(mbx_status_t status, const char* what) {
  const ffi::ErrorCode code =
      status == MBX_STATUS_INVALID_ARGUMENT ? ffi::ErrorCode::kInvalidArgument
      : status == MBX_STATUS_UNSUPPORTED    ? ffi::ErrorCode::kUnimplemented
      : status == MBX_STATUS_OUT_OF_MEMORY  ? ffi::ErrorCode::kResourceExhausted
      : status == MBX_STATUS_NO_DEVICE      ? ffi::ErrorCode::kUnavailable
                                            : ffi::ErrorCode::kInternal;
  return ffi::Error(code, status_message(status, what));
}

// Parses the options text; the last parse is cached per thread (a training
// loop calls with the same text every step).
ffi::Error parse_options(std::string_view text, mbx_options_t* out) {
  thread_local std::string cached_text;
  thread_local mbx_options_t cached{};
  thread_local bool cached_valid = false;
  if (cached_valid && text == cached_text) {
    *out = cached;
    return ffi::Error::Success();
  }
  mbx_options_t opts;
  std::string body(text);
  size_t pos = 0;
  bool have_preset = false;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos)
      return ffi::Error::InvalidArgument("mbx.jax options: malformed line '" + line + "'");
    const std::string name = line.substr(0, eq), value = line.substr(eq + 1);
    if (name == "preset") {
      mbx_preset_t preset;
      mbx_status_t st = mbx_preset_from_name(value.c_str(), &preset);
      if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_preset_from_name");
      st = mbx_options_init(&opts, preset);
      if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_options_init");
      have_preset = true;
      continue;
    }
    if (!have_preset)
      return ffi::Error::InvalidArgument("mbx.jax options: the preset must come first");
    const mbx_status_t st = mbx_options_set(&opts, name.c_str(), value.c_str());
    if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_options_set");
  }
  if (!have_preset) return ffi::Error::InvalidArgument("mbx.jax options: no preset");
  const mbx_status_t st = mbx_options_validate(&opts);
  if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_options_validate");
  cached_text.assign(text.data(), text.size());
  cached = opts;
  cached_valid = true;
  *out = opts;
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------
// One context per thread.
// ---------------------------------------------------------------------------

struct ContextDeleter {
  void operator()(mbx_context_t* ctx) const { mbx_context_destroy(ctx); }
};

// The calling thread's context (created on first use, destroyed at thread
// exit). XLA runs a handler on one thread per call, so a context is never
// used by two calls at once.
mbx_context_t* thread_context(ffi::Error* error) {
  thread_local std::unique_ptr<mbx_context_t, ContextDeleter> ctx;
  if (!ctx) {
    mbx_context_t* raw = nullptr;
    const mbx_status_t st = mbx_context_create(&raw);
    if (st != MBX_STATUS_OK) {
      *error = mbx_error(st, "mbx_context_create");
      return nullptr;
    }
    ctx.reset(raw);
  }
  return ctx.get();
}

// ---------------------------------------------------------------------------
// XLA buffers as DLTensors (row-major: strides NULL).
// ---------------------------------------------------------------------------

struct Tensor {
  DLTensor t{};
  int64_t shape[4] = {0, 0, 0, 0};
};

bool dl_dtype(ffi::DataType type, DLDataType* out) {
  switch (type) {
    case ffi::DataType::F32: *out = {kDLFloat, 32, 1}; return true;
    case ffi::DataType::F64: *out = {kDLFloat, 64, 1}; return true;
    case ffi::DataType::F16: *out = {kDLFloat, 16, 1}; return true;
    case ffi::DataType::BF16: *out = {kDLBfloat, 16, 1}; return true;
    case ffi::DataType::S32: *out = {kDLInt, 32, 1}; return true;
    default: return false;
  }
}

ffi::Error wrap(const ffi::AnyBuffer& buf, DLDevice device, const char* name, Tensor* out) {
  const auto dims = buf.dimensions();
  if (dims.size() > 4)
    return ffi::Error::InvalidArgument(std::string(name) + ": rank " +
                                       std::to_string(dims.size()) + " is not supported");
  if (!dl_dtype(buf.element_type(), &out->t.dtype))
    return ffi::Error::InvalidArgument(std::string(name) + ": unsupported XLA element type " +
                                       std::to_string(static_cast<int>(buf.element_type())));
  for (size_t i = 0; i < dims.size(); ++i) out->shape[i] = dims[i];
  out->t.data = buf.untyped_data();
  out->t.device = device;
  out->t.ndim = static_cast<int32_t>(dims.size());
  out->t.shape = out->shape;
  out->t.strides = nullptr;
  out->t.byte_offset = 0;
  return ffi::Error::Success();
}

#define MBX_JAX_RETURN_IF_ERROR(expr)         \
  do {                                        \
    ffi::Error mbx_jax_err_ = (expr);         \
    if (mbx_jax_err_.failure()) return mbx_jax_err_; \
  } while (0)

// The host value of a scalar external_norm operand (CPU handlers only).
ffi::Error read_norm(const ffi::AnyBuffer& norm, double* value) {
  if (norm.element_count() != 1)
    return ffi::Error::InvalidArgument("external_norm: expected a scalar");
  if (norm.element_type() == ffi::DataType::F32)
    *value = *static_cast<const float*>(norm.untyped_data());
  else if (norm.element_type() == ffi::DataType::F64)
    *value = *static_cast<const double*>(norm.untyped_data());
  else
    return ffi::Error::InvalidArgument("external_norm: expected float32 or float64");
  return ffi::Error::Success();
}

// Everything a loss call needs, built from the operands.
struct LossCall {
  mbx_options_t opts;
  Tensor priors, gt_boxes, gt_labels, gt_counts, loc, conf;
};

// The optional inputs of one call (see the file comment), wrapped from the
// trailing operands; a null pointer for one not given.
constexpr int64_t kOptionalGtFlags = 1, kOptionalPriorLevels = 2;

struct OptionalInputs {
  Tensor gt_flags, prior_levels;
  const DLTensor* gt_flags_t = nullptr;
  const DLTensor* prior_levels_t = nullptr;
};

ffi::Error wrap_optional(DLDevice dev, const ffi::RemainingArgs& extra,
                         ffi::Span<const int32_t> prior_levels, int64_t mask, OptionalInputs* out) {
  if (mask & ~(kOptionalGtFlags | kOptionalPriorLevels))
    return ffi::Error::InvalidArgument("optional_inputs: unknown bits in " + std::to_string(mask));
  const size_t operands = (mask & kOptionalGtFlags) ? 1 : 0;
  if (extra.size() != operands)
    return ffi::Error::InvalidArgument("optional_inputs = " + std::to_string(mask) + " names " +
                                       std::to_string(operands) + " operands, the call has " +
                                       std::to_string(extra.size()));
  if (mask & kOptionalGtFlags) {
    auto buf = extra.get<ffi::AnyBuffer>(0);
    if (buf.has_error()) return buf.error();
    MBX_JAX_RETURN_IF_ERROR(wrap(buf.value(), dev, "gt_flags", &out->gt_flags));
    out->gt_flags_t = &out->gt_flags.t;
  }
  if (mask & kOptionalPriorLevels) {
    Tensor& t = out->prior_levels;
    t.shape[0] = static_cast<int64_t>(prior_levels.size());
    t.t.data = const_cast<int32_t*>(prior_levels.begin());  // read only
    t.t.device = DLDevice{kDLCPU, 0};
    t.t.ndim = 1;
    t.t.dtype = {kDLInt, 32, 1};
    t.t.shape = t.shape;
    out->prior_levels_t = &t.t;
  }
  return ffi::Error::Success();
}

// mbx_tensors_t of a loss call (outputs set by the caller).
mbx_tensors_t loss_tensors(const LossCall& c, const OptionalInputs& o) {
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = &c.priors.t;
  t.gt_boxes = &c.gt_boxes.t;
  t.gt_labels = &c.gt_labels.t;
  t.gt_counts = &c.gt_counts.t;
  t.loc = &c.loc.t;
  t.conf = &c.conf.t;
  t.gt_flags = o.gt_flags_t;
  t.prior_levels = o.prior_levels_t;
  return t;
}

ffi::Error prepare_loss(DLDevice dev, const ffi::AnyBuffer& priors,
                        const ffi::AnyBuffer& gt_boxes, const ffi::AnyBuffer& gt_labels,
                        const ffi::AnyBuffer& gt_counts, const ffi::AnyBuffer& loc,
                        const ffi::AnyBuffer& conf, const ffi::AnyBuffer& norm,
                        std::string_view options, int64_t norm_operand, LossCall* call) {
  MBX_JAX_RETURN_IF_ERROR(parse_options(options, &call->opts));
  if (norm_operand) {
    if (dev.device_type != kDLCPU)
      return ffi::Error::Internal("external_norm operand can only be read by the CPU handler");
    MBX_JAX_RETURN_IF_ERROR(read_norm(norm, &call->opts.external_norm));
    // Out-of-range values (<= 0, NaN) get mbx's own message.
    const mbx_status_t st = mbx_options_validate(&call->opts);
    if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_options_validate");
  }
  MBX_JAX_RETURN_IF_ERROR(wrap(priors, dev, "priors", &call->priors));
  MBX_JAX_RETURN_IF_ERROR(wrap(gt_boxes, dev, "gt_boxes", &call->gt_boxes));
  MBX_JAX_RETURN_IF_ERROR(wrap(gt_labels, dev, "gt_labels", &call->gt_labels));
  MBX_JAX_RETURN_IF_ERROR(wrap(gt_counts, dev, "gt_counts", &call->gt_counts));
  MBX_JAX_RETURN_IF_ERROR(wrap(loc, dev, "loc", &call->loc));
  MBX_JAX_RETURN_IF_ERROR(wrap(conf, dev, "conf", &call->conf));
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------
// Per-platform execution: CPU runs directly; CUDA sets the stream, validation
// off and a workspace from XLA's scratch allocator first.
// ---------------------------------------------------------------------------

constexpr size_t kWorkspaceAlign = 256;

// CPU outputs: XLA hands the call freshly mapped output buffers every
// execution; the gradients (B*P*(C+4) values, 255 MB for RetinaNet at B = 8)
// would then be faulted in 4 KB page by page by the threads writing them
// (64 k faults per call, serialised on the process's memory map). Asking for
// transparent huge pages on the whole 2 MB pages inside each large output,
// as numpy does for its own large arrays, makes that about 130 faults. The
// advice changes no data; it is ignored where THP is off.
void advise_huge_pages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  if (bytes < 2 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// Points ctx at XLA's stream and a scratch workspace for a call of sizes
// (B, P, G, C). The workspace stays valid until the handler returns, which
// is after the (stream-ordered) launches are enqueued.
ffi::Error setup_cuda(mbx_context_t* ctx, const mbx_options_t& opts, void* stream,
                      ffi::ScratchAllocator& scratch, int64_t B, int64_t P, int64_t G,
                      int64_t C) {
  mbx_status_t st = mbx_context_set_cuda_stream(ctx, stream);
  if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_context_set_cuda_stream");
  st = mbx_context_set_cuda_validation(ctx, 0);
  if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_context_set_cuda_validation");
  size_t bytes = 0;
  st = mbx_workspace_size(&opts, B, P, G < 1 ? 1 : G, C < 1 ? 1 : C, &bytes);
  if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_workspace_size");
  if (bytes == 0) bytes = kWorkspaceAlign;
  std::optional<void*> raw = scratch.Allocate(bytes + kWorkspaceAlign, 16);
  if (!raw.has_value() || *raw == nullptr)
    return ffi::Error(ffi::ErrorCode::kResourceExhausted,
                      "mbx.jax: XLA's scratch allocator could not provide " +
                          std::to_string(bytes + kWorkspaceAlign) + " bytes of workspace");
  const uintptr_t p = reinterpret_cast<uintptr_t>(*raw);
  void* aligned = reinterpret_cast<void*>((p + kWorkspaceAlign - 1) & ~(uintptr_t)(kWorkspaceAlign - 1));
  st = mbx_context_set_workspace(ctx, aligned, bytes);
  if (st != MBX_STATUS_OK) return mbx_error(st, "mbx_context_set_workspace");
  return ffi::Error::Success();
}

// Detaches the scratch workspace (it is freed when the handler returns).
void teardown_cuda(mbx_context_t* ctx) { mbx_context_set_workspace(ctx, nullptr, 0); }

DLDevice cpu_device() { return DLDevice{kDLCPU, 0}; }
DLDevice cuda_device(int32_t ordinal) { return DLDevice{kDLCUDA, ordinal}; }

// XLA's CPU threads run with flush-to-zero and denormals-are-zero set;
// oneTBB copies the calling thread's floating-point settings into its
// workers. mbx's results (and the eager C call's) are defined with IEEE
// denormals, so the MXCSR bits are cleared for the call and restored after.
class IeeeDenormals {
 public:
  IeeeDenormals() {
#if defined(__SSE__) || defined(__x86_64__)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ & ~(kFlushToZero | kDenormalsAreZero));
#endif
  }
  ~IeeeDenormals() {
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(saved_);
#endif
  }
  IeeeDenormals(const IeeeDenormals&) = delete;
  IeeeDenormals& operator=(const IeeeDenormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_ = 0;
};

// Runs fn(ctx) on the CPU or, with stream != nullptr, on CUDA.
template <typename Fn>
ffi::Error run(const mbx_options_t& opts, bool cuda, void* stream, ffi::ScratchAllocator* scratch,
               int64_t B, int64_t P, int64_t G, int64_t C, Fn fn) {
  ffi::Error error = ffi::Error::Success();
  mbx_context_t* ctx = thread_context(&error);
  if (!ctx) return error;
  if (cuda) MBX_JAX_RETURN_IF_ERROR(setup_cuda(ctx, opts, stream, *scratch, B, P, G, C));
  mbx_status_t st;
  {
    IeeeDenormals ieee;
    st = fn(ctx);
  }
  if (cuda) teardown_cuda(ctx);
  if (st != MBX_STATUS_OK) return mbx_error(st, "mbx");
  return ffi::Error::Success();
}

// ---------------------------------------------------------------------------
// Handlers.
// ---------------------------------------------------------------------------

ffi::Error loss_forward(DLDevice dev, void* stream, ffi::ScratchAllocator* scratch,
                        ffi::AnyBuffer priors, ffi::AnyBuffer gt_boxes, ffi::AnyBuffer gt_labels,
                        ffi::AnyBuffer gt_counts, ffi::AnyBuffer loc, ffi::AnyBuffer conf,
                        ffi::AnyBuffer norm, const ffi::RemainingArgs& extra,
                        std::string_view options, int64_t norm_operand, int64_t optional_inputs,
                        ffi::Span<const int32_t> prior_levels, ffi::Result<ffi::AnyBuffer> loss,
                        ffi::Result<ffi::AnyBuffer> num_pos) {
  LossCall c;
  MBX_JAX_RETURN_IF_ERROR(prepare_loss(dev, priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                                       norm, options, norm_operand, &c));
  OptionalInputs o;
  MBX_JAX_RETURN_IF_ERROR(wrap_optional(dev, extra, prior_levels, optional_inputs, &o));
  Tensor loss_t, num_pos_t;
  MBX_JAX_RETURN_IF_ERROR(wrap(*loss, dev, "loss", &loss_t));
  MBX_JAX_RETURN_IF_ERROR(wrap(*num_pos, dev, "num_pos", &num_pos_t));
  mbx_tensors_t t = loss_tensors(c, o);
  t.loss = &loss_t.t;
  t.num_pos = &num_pos_t.t;
  return run(c.opts, dev.device_type == kDLCUDA, stream, scratch, c.conf.shape[0],
             c.conf.shape[1], c.gt_boxes.shape[1], c.conf.shape[2], [&](mbx_context_t* ctx) {
               return mbx_run(ctx, &c.opts, MBX_OP_LOSS_FORWARD, &t);
             });
}

ffi::Error loss_forward_backward(DLDevice dev, void* stream, ffi::ScratchAllocator* scratch,
                                 ffi::AnyBuffer priors, ffi::AnyBuffer gt_boxes,
                                 ffi::AnyBuffer gt_labels, ffi::AnyBuffer gt_counts,
                                 ffi::AnyBuffer loc, ffi::AnyBuffer conf, ffi::AnyBuffer norm,
                                 const ffi::RemainingArgs& extra, std::string_view options,
                                 int64_t norm_operand, int64_t optional_inputs,
                                 ffi::Span<const int32_t> prior_levels,
                                 ffi::Result<ffi::AnyBuffer> loss,
                                 ffi::Result<ffi::AnyBuffer> num_pos,
                                 ffi::Result<ffi::AnyBuffer> grad_loc,
                                 ffi::Result<ffi::AnyBuffer> grad_conf) {
  LossCall c;
  MBX_JAX_RETURN_IF_ERROR(prepare_loss(dev, priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                                       norm, options, norm_operand, &c));
  OptionalInputs o;
  MBX_JAX_RETURN_IF_ERROR(wrap_optional(dev, extra, prior_levels, optional_inputs, &o));
  Tensor loss_t, num_pos_t, grad_loc_t, grad_conf_t;
  if (dev.device_type == kDLCPU) {
    advise_huge_pages(grad_loc->untyped_data(), grad_loc->size_bytes());
    advise_huge_pages(grad_conf->untyped_data(), grad_conf->size_bytes());
  }
  MBX_JAX_RETURN_IF_ERROR(wrap(*loss, dev, "loss", &loss_t));
  MBX_JAX_RETURN_IF_ERROR(wrap(*num_pos, dev, "num_pos", &num_pos_t));
  MBX_JAX_RETURN_IF_ERROR(wrap(*grad_loc, dev, "grad_loc", &grad_loc_t));
  MBX_JAX_RETURN_IF_ERROR(wrap(*grad_conf, dev, "grad_conf", &grad_conf_t));
  mbx_tensors_t t = loss_tensors(c, o);  // grad_loss NULL: upstream gradient (1, 1)
  t.loss = &loss_t.t;
  t.num_pos = &num_pos_t.t;
  t.grad_loc = &grad_loc_t.t;
  t.grad_conf = &grad_conf_t.t;
  return run(c.opts, dev.device_type == kDLCUDA, stream, scratch, c.conf.shape[0],
             c.conf.shape[1], c.gt_boxes.shape[1], c.conf.shape[2], [&](mbx_context_t* ctx) {
               return mbx_run(ctx, &c.opts, MBX_OP_LOSS_FORWARD_BACKWARD, &t);
             });
}

ffi::Error match(DLDevice dev, void* stream, ffi::ScratchAllocator* scratch,
                 ffi::AnyBuffer priors, ffi::AnyBuffer gt_boxes, ffi::AnyBuffer gt_labels,
                 ffi::AnyBuffer gt_counts, const ffi::RemainingArgs& extra,
                 std::string_view options, int64_t num_classes, int64_t optional_inputs,
                 ffi::Span<const int32_t> prior_levels, ffi::Result<ffi::AnyBuffer> conf_target,
                 ffi::Result<ffi::AnyBuffer> matched_gt,
                 ffi::Result<ffi::AnyBuffer> loc_target, ffi::Result<ffi::AnyBuffer> num_pos) {
  mbx_options_t opts;
  MBX_JAX_RETURN_IF_ERROR(parse_options(options, &opts));
  OptionalInputs o;
  MBX_JAX_RETURN_IF_ERROR(wrap_optional(dev, extra, prior_levels, optional_inputs, &o));
  Tensor p, gb, gl, gc, ct, mg, lt, np_;
  MBX_JAX_RETURN_IF_ERROR(wrap(priors, dev, "priors", &p));
  MBX_JAX_RETURN_IF_ERROR(wrap(gt_boxes, dev, "gt_boxes", &gb));
  MBX_JAX_RETURN_IF_ERROR(wrap(gt_labels, dev, "gt_labels", &gl));
  MBX_JAX_RETURN_IF_ERROR(wrap(gt_counts, dev, "gt_counts", &gc));
  MBX_JAX_RETURN_IF_ERROR(wrap(*conf_target, dev, "conf_target", &ct));
  MBX_JAX_RETURN_IF_ERROR(wrap(*matched_gt, dev, "matched_gt", &mg));
  MBX_JAX_RETURN_IF_ERROR(wrap(*loc_target, dev, "loc_target", &lt));
  MBX_JAX_RETURN_IF_ERROR(wrap(*num_pos, dev, "num_pos", &np_));
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.num_classes = num_classes;
  t.priors = &p.t;
  t.gt_boxes = &gb.t;
  t.gt_labels = &gl.t;
  t.gt_counts = &gc.t;
  t.gt_flags = o.gt_flags_t;
  t.prior_levels = o.prior_levels_t;
  t.conf_target = &ct.t;
  t.matched_gt = &mg.t;
  t.loc_target = &lt.t;
  t.num_pos = &np_.t;
  return run(opts, dev.device_type == kDLCUDA, stream, scratch, gb.shape[0], p.shape[0],
             gb.shape[1], 1, [&](mbx_context_t* ctx) {
               return mbx_run(ctx, &opts, MBX_OP_MATCH, &t);
             });
}

// ---------------------------------------------------------------------------
// mbx_scale_gradients (CPU): the backward rule's scale by the cotangents of
// (loss_loc, loss_conf), in place (the results alias the operands). A unit
// cotangent (grad of loss_loc + loss_conf, the common case) touches nothing,
// so a training step moves no extra gradient bytes; otherwise each element
// is multiplied in float32 and rounded to its dtype (nearest even), with
// IEEE denormals like the fused call.
// ---------------------------------------------------------------------------

float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

ffi::Error scale_in_place(const ffi::AnyBuffer& in, ffi::Result<ffi::AnyBuffer>& out, float g,
                          const char* name) {
  if (in.untyped_data() != out->untyped_data() && in.size_bytes() > 0)
    std::memcpy(out->untyped_data(), in.untyped_data(), in.size_bytes());
  if (g == 1.0f) return ffi::Error::Success();
  const size_t n = in.element_count();
  switch (in.element_type()) {
    case ffi::DataType::F32: {
      float* x = static_cast<float*>(out->untyped_data());
      for (size_t i = 0; i < n; ++i) x[i] *= g;
      break;
    }
    case ffi::DataType::F16: {
      _Float16* x = static_cast<_Float16*>(out->untyped_data());
      for (size_t i = 0; i < n; ++i) x[i] = static_cast<_Float16>(static_cast<float>(x[i]) * g);
      break;
    }
    case ffi::DataType::BF16: {
      uint16_t* x = static_cast<uint16_t*>(out->untyped_data());
      for (size_t i = 0; i < n; ++i) x[i] = float_to_bf16(bf16_to_float(x[i]) * g);
      break;
    }
    default:
      return ffi::Error::InvalidArgument(std::string(name) + ": expected float32, float16 or bfloat16");
  }
  return ffi::Error::Success();
}

ffi::Error scale_gradients_cpu(ffi::AnyBuffer grad_loc, ffi::AnyBuffer grad_conf,
                               ffi::AnyBuffer cotangents, ffi::Result<ffi::AnyBuffer> out_loc,
                               ffi::Result<ffi::AnyBuffer> out_conf) {
  if (cotangents.element_type() != ffi::DataType::F32 || cotangents.element_count() != 2)
    return ffi::Error::InvalidArgument("cotangents: expected float32 [2]");
  const float* g = static_cast<const float*>(cotangents.untyped_data());
  IeeeDenormals ieee;
  MBX_JAX_RETURN_IF_ERROR(scale_in_place(grad_loc, out_loc, g[0], "grad_loc"));
  return scale_in_place(grad_conf, out_conf, g[1], "grad_conf");
}

// Thin per-platform entry points bound below.
ffi::Error loss_forward_cpu(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::AnyBuffer c, ffi::AnyBuffer d,
                            ffi::AnyBuffer e, ffi::AnyBuffer f, ffi::AnyBuffer g,
                            ffi::RemainingArgs extra, std::string_view options,
                            int64_t norm_operand, int64_t optional_inputs,
                            ffi::Span<const int32_t> levels, ffi::Result<ffi::AnyBuffer> loss,
                            ffi::Result<ffi::AnyBuffer> num_pos) {
  return loss_forward(cpu_device(), nullptr, nullptr, a, b, c, d, e, f, g, extra, options,
                      norm_operand, optional_inputs, levels, loss, num_pos);
}

ffi::Error loss_forward_cuda(void* stream, ffi::ScratchAllocator scratch, int32_t ordinal,
                             ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::AnyBuffer c, ffi::AnyBuffer d,
                             ffi::AnyBuffer e, ffi::AnyBuffer f, ffi::AnyBuffer g,
                             ffi::RemainingArgs extra, std::string_view options,
                             int64_t norm_operand, int64_t optional_inputs,
                             ffi::Span<const int32_t> levels, ffi::Result<ffi::AnyBuffer> loss,
                             ffi::Result<ffi::AnyBuffer> num_pos) {
  return loss_forward(cuda_device(ordinal), stream, &scratch, a, b, c, d, e, f, g, extra, options,
                      norm_operand, optional_inputs, levels, loss, num_pos);
}

ffi::Error loss_forward_backward_cpu(
    ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::AnyBuffer c, ffi::AnyBuffer d, ffi::AnyBuffer e,
    ffi::AnyBuffer f, ffi::AnyBuffer g, ffi::RemainingArgs extra, std::string_view options,
    int64_t norm_operand, int64_t optional_inputs, ffi::Span<const int32_t> levels,
    ffi::Result<ffi::AnyBuffer> loss, ffi::Result<ffi::AnyBuffer> num_pos,
    ffi::Result<ffi::AnyBuffer> grad_loc, ffi::Result<ffi::AnyBuffer> grad_conf) {
  return loss_forward_backward(cpu_device(), nullptr, nullptr, a, b, c, d, e, f, g, extra, options,
                               norm_operand, optional_inputs, levels, loss, num_pos, grad_loc,
                               grad_conf);
}

ffi::Error loss_forward_backward_cuda(
    void* stream, ffi::ScratchAllocator scratch, int32_t ordinal, ffi::AnyBuffer a,
    ffi::AnyBuffer b, ffi::AnyBuffer c, ffi::AnyBuffer d, ffi::AnyBuffer e, ffi::AnyBuffer f,
    ffi::AnyBuffer g, ffi::RemainingArgs extra, std::string_view options, int64_t norm_operand,
    int64_t optional_inputs, ffi::Span<const int32_t> levels, ffi::Result<ffi::AnyBuffer> loss,
    ffi::Result<ffi::AnyBuffer> num_pos, ffi::Result<ffi::AnyBuffer> grad_loc,
    ffi::Result<ffi::AnyBuffer> grad_conf) {
  return loss_forward_backward(cuda_device(ordinal), stream, &scratch, a, b, c, d, e, f, g, extra,
                               options, norm_operand, optional_inputs, levels, loss, num_pos,
                               grad_loc, grad_conf);
}

ffi::Error match_cpu(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::AnyBuffer c, ffi::AnyBuffer d,
                     ffi::RemainingArgs extra, std::string_view options, int64_t num_classes,
                     int64_t optional_inputs, ffi::Span<const int32_t> levels,
                     ffi::Result<ffi::AnyBuffer> conf_target,
                     ffi::Result<ffi::AnyBuffer> matched_gt, ffi::Result<ffi::AnyBuffer> loc_target,
                     ffi::Result<ffi::AnyBuffer> num_pos) {
  return match(cpu_device(), nullptr, nullptr, a, b, c, d, extra, options, num_classes,
               optional_inputs, levels, conf_target, matched_gt, loc_target, num_pos);
}

ffi::Error match_cuda(void* stream, ffi::ScratchAllocator scratch, int32_t ordinal,
                      ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::AnyBuffer c, ffi::AnyBuffer d,
                      ffi::RemainingArgs extra, std::string_view options, int64_t num_classes,
                      int64_t optional_inputs, ffi::Span<const int32_t> levels,
                      ffi::Result<ffi::AnyBuffer> conf_target,
                      ffi::Result<ffi::AnyBuffer> matched_gt,
                      ffi::Result<ffi::AnyBuffer> loc_target, ffi::Result<ffi::AnyBuffer> num_pos) {
  return match(cuda_device(ordinal), stream, &scratch, a, b, c, d, extra, options, num_classes,
               optional_inputs, levels, conf_target, matched_gt, loc_target, num_pos);
}

}  // namespace

// Operand lists, shared by the CPU and CUDA bindings.
#define MBX_JAX_LOSS_ARGS                                                                   \
  .Arg<ffi::AnyBuffer>() /* priors */.Arg<ffi::AnyBuffer>() /* gt_boxes */                  \
      .Arg<ffi::AnyBuffer>() /* gt_labels */.Arg<ffi::AnyBuffer>() /* gt_counts */          \
      .Arg<ffi::AnyBuffer>() /* loc */.Arg<ffi::AnyBuffer>() /* conf */                     \
      .Arg<ffi::AnyBuffer>() /* external_norm */                                            \
      .RemainingArgs() /* gt_flags when optional_inputs says so */                        \
      .Attr<std::string_view>("options")                                                    \
      .Attr<int64_t>("norm_operand")                                                        \
      .Attr<int64_t>("optional_inputs")                                                     \
      .Attr<ffi::Span<const int32_t>>("prior_levels")
#define MBX_JAX_CUDA_CTX                                                                    \
  .Ctx<ffi::PlatformStream<void*>>().Ctx<ffi::ScratchAllocator>().Ctx<ffi::DeviceOrdinal>()
#define MBX_JAX_MATCH_ARGS                                                                  \
  .Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()  \
      .RemainingArgs() /* gt_flags when optional_inputs says so */                        \
      .Attr<std::string_view>("options")                                                    \
      .Attr<int64_t>("num_classes")                                                         \
      .Attr<int64_t>("optional_inputs")                                                     \
      .Attr<ffi::Span<const int32_t>>("prior_levels")                                       \
      .Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>()

// The handler symbols mbx.jax looks up with ctypes (the library is built with
// hidden visibility; these seven are its only exports).
#pragma GCC visibility push(default)

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxLossForwardCpu, loss_forward_cpu,
    ffi::Ffi::Bind() MBX_JAX_LOSS_ARGS.Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxLossForwardCuda, loss_forward_cuda,
    ffi::Ffi::Bind() MBX_JAX_CUDA_CTX MBX_JAX_LOSS_ARGS.Ret<ffi::AnyBuffer>()
        .Ret<ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxLossForwardBackwardCpu, loss_forward_backward_cpu,
    ffi::Ffi::Bind() MBX_JAX_LOSS_ARGS.Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>()
        .Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxLossForwardBackwardCuda, loss_forward_backward_cuda,
    ffi::Ffi::Bind() MBX_JAX_CUDA_CTX MBX_JAX_LOSS_ARGS.Ret<ffi::AnyBuffer>()
        .Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxMatchCpu, match_cpu, ffi::Ffi::Bind() MBX_JAX_MATCH_ARGS);

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxScaleGradientsCpu, scale_gradients_cpu,
    ffi::Ffi::Bind().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>().Arg<ffi::AnyBuffer>()
        .Ret<ffi::AnyBuffer>().Ret<ffi::AnyBuffer>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    MbxMatchCuda, match_cuda, ffi::Ffi::Bind() MBX_JAX_CUDA_CTX MBX_JAX_MATCH_ARGS);

#pragma GCC visibility pop
