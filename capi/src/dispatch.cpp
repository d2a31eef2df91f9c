// One run() for every operation (match, loss forward / backward / fused,
// decode): which tensors the operation takes, their checks, the value
// checks of docs/SPEC.md §7, and the dispatch to the core path. The
// per-operation entry points and mbx_run are one-line wrappers over it.
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "boundary.h"
#include "common/device_memory.h"
#include "common/validate.h"
#include "context.h"
#include "dispatch.h"
#include "encode/encode.h"
#include "match/match.h"
#include "options.h"
#include "pipeline/pipeline.h"
#include "tensor_check.h"

namespace mbx::capi {
namespace {

const char* op_name(mbx_op_t op) {
  switch (op) {
    case MBX_OP_MATCH: return "MBX_OP_MATCH";
    case MBX_OP_LOSS_FORWARD: return "MBX_OP_LOSS_FORWARD";
    case MBX_OP_LOSS_BACKWARD: return "MBX_OP_LOSS_BACKWARD";
    case MBX_OP_LOSS_FORWARD_BACKWARD: return "MBX_OP_LOSS_FORWARD_BACKWARD";
    case MBX_OP_DECODE: return "MBX_OP_DECODE";
  }
  return nullptr;
}

bool is_loss(mbx_op_t op) { return op != MBX_OP_MATCH && op != MBX_OP_DECODE; }
bool has_forward(mbx_op_t op) {
  return op == MBX_OP_LOSS_FORWARD || op == MBX_OP_LOSS_FORWARD_BACKWARD;
}
bool has_backward(mbx_op_t op) {
  return op == MBX_OP_LOSS_BACKWARD || op == MBX_OP_LOSS_FORWARD_BACKWARD;
}

// Step 1: a tensor the operation does not take is an error, not ignored.
void check_unused(mbx_op_t op, const mbx_tensors_t& t) {
  const bool match = op == MBX_OP_MATCH, decode = op == MBX_OP_DECODE, loss = is_loss(op);
  const struct {
    const char* name;
    const void* tensor;
    bool used;
  } slots[] = {
      {"gt_boxes", t.gt_boxes, !decode},
      {"gt_labels", t.gt_labels, !decode},
      {"gt_counts", t.gt_counts, !decode},
      {"loc", t.loc, loss || decode},
      {"conf", t.conf, loss},
      {"grad_loss", t.grad_loss, has_backward(op)},
      {"gt_flags", t.gt_flags, !decode},
      {"prior_levels", t.prior_levels, !decode},
      {"conf_target", t.conf_target, match},
      {"matched_gt", t.matched_gt, match},
      {"loc_target", t.loc_target, match},
      {"num_pos", t.num_pos, match || has_forward(op)},
      {"loss", t.loss, has_forward(op)},
      {"grad_loc", t.grad_loc, has_backward(op)},
      {"grad_conf", t.grad_conf, has_backward(op)},
      {"boxes", t.boxes, decode},
  };
  for (const auto& s : slots)
    if (s.tensor && !s.used)
      fail(std::string(s.name) + ": not used by " + op_name(op) + "; pass NULL");
  if (t.num_classes != 0 && !match)
    fail("num_classes = " + std::to_string(t.num_classes) + ": only " + op_name(MBX_OP_MATCH) +
         " takes it (the loss takes K from conf); pass 0");
}

// A checked call: the core's view of the tensors, and the tensors by name
// for the device and aliasing checks.
struct Call {
  Inputs in;
  Outputs out;
  std::vector<Named> inputs, outputs;
  const float* loc_f32 = nullptr;  // DECODE
  float* boxes = nullptr;          // DECODE
  View prior_levels;               // optional input, host or the inputs' device
  std::vector<int32_t> prior_levels_host;
};

// Step 2a: the inputs every operation but DECODE takes (P, B, G from them).
void check_match_inputs(const mbx_tensors_t& t, Call* call) {
  if (!t.priors) fail("priors: NULL tensor");
  if (!t.gt_boxes) fail("gt_boxes: NULL tensor");
  const View priors = check_tensor(t.priors, "priors", "[P, 4]", {-1, 4}, {DType::kF32});
  const View gt_boxes =
      check_tensor(t.gt_boxes, "gt_boxes", "[B, G, 4]", {-1, -1, 4}, {DType::kF32});
  const int64_t P = t.priors->shape[0], B = t.gt_boxes->shape[0], G = t.gt_boxes->shape[1];
  if (P < 1) fail("priors: P = 0; expected at least one prior");
  if (B < 1) fail("gt_boxes: B = 0; expected at least one image");
  if (P > INT32_MAX - 1 || G > INT32_MAX - 1) fail("priors/gt_boxes: P and G must be < 2^31 - 1");
  const View gt_labels = check_tensor(t.gt_labels, "gt_labels", "[B, G]", {B, G}, {DType::kI32});
  const View gt_counts = check_tensor(t.gt_counts, "gt_counts", "[B]", {B}, {DType::kI32});
  call->inputs = {{"priors", priors}, {"gt_boxes", gt_boxes}, {"gt_labels", gt_labels},
                  {"gt_counts", gt_counts}};
  Inputs& in = call->in;
  in.B = B;
  in.P = P;
  in.G = G;
  in.priors = static_cast<const float*>(priors.data);
  in.gt_boxes = static_cast<const float*>(gt_boxes.data);
  in.gt_labels = static_cast<const int32_t*>(gt_labels.data);
  in.gt_counts = static_cast<const int32_t*>(gt_counts.data);
  // The optional inputs (docs/SPEC.md §2).
  if (t.gt_flags) {
    const View gt_flags = check_tensor(t.gt_flags, "gt_flags", "[B, G]", {B, G}, {DType::kI32});
    call->inputs.push_back({"gt_flags", gt_flags});
    in.gt_flags = static_cast<const int32_t*>(gt_flags.data);
  }
  if (t.prior_levels) {
    call->prior_levels =
        check_tensor(t.prior_levels, "prior_levels", "[L]", {-1}, {DType::kI32});
    if (t.prior_levels->shape[0] < 1) fail("prior_levels: L = 0; expected at least one level");
    in.L = t.prior_levels->shape[0];
    // A host prior_levels may go with device tensors (it is read on the host).
    if (!is_host(t.prior_levels->device)) call->inputs.push_back({"prior_levels", call->prior_levels});
  }
}

// Step 2b: loc and conf of the loss operations; K follows from C.
void check_loss_inputs(const Options& o, const mbx_tensors_t& t, Call* call) {
  Inputs& in = call->in;
  if (!t.conf) fail("conf: NULL tensor");
  const View conf = check_tensor(t.conf, "conf", "[B, P, C]", {in.B, in.P, -1},
                                 {DType::kF32, DType::kF16, DType::kBF16});
  const int64_t C = t.conf->shape[2];
  const View loc = check_tensor(t.loc, "loc", "[B, P, 4]", {in.B, in.P, 4},
                                {DType::kF32, DType::kF16, DType::kBF16});
  call->inputs.push_back({"loc", loc});
  call->inputs.push_back({"conf", conf});
  if (o.conf_loss != ConfLoss::kSigmoidFocal && C < 2)
    fail("conf: C = " + std::to_string(C) + " but " +
         (o.conf_loss == ConfLoss::kLogistic ? "LOGISTIC" : "SOFTMAX_CE") +
         " needs a background column plus at least one class (C >= 2)");
  if (o.conf_loss == ConfLoss::kSigmoidFocal && C < 1)
    fail("conf: C = 0; SIGMOID_FOCAL needs at least one class column");
  in.C = C;
  in.num_classes = o.conf_loss == ConfLoss::kSigmoidFocal ? C : C - 1;
  in.loc = loc.data;
  in.conf = conf.data;
  in.loc_dtype = loc.dtype;
  in.conf_dtype = conf.dtype;
}

// An output tensor of the expected shape and dtype, recorded for the checks.
void* output(Call* call, DLTensor* t, const char* name, const char* dims,
             std::vector<int64_t> shape, std::initializer_list<DType> dtypes,
             DType* dtype = nullptr) {
  const View v = check_tensor(t, name, dims, std::move(shape), dtypes);
  call->outputs.push_back({name, v});
  if (dtype) *dtype = v.dtype;
  return v.data;
}

// Step 2c: the outputs of MATCH and the loss operations.
void check_outputs(mbx_op_t op, const mbx_tensors_t& t, Call* call) {
  const int64_t B = call->in.B, P = call->in.P, C = call->in.C;
  Outputs& out = call->out;
  if (op == MBX_OP_MATCH) {
    out.conf_target = static_cast<int32_t*>(
        output(call, t.conf_target, "conf_target", "[B, P]", {B, P}, {DType::kI32}));
    if (t.matched_gt)
      out.matched_gt = static_cast<int32_t*>(
          output(call, t.matched_gt, "matched_gt", "[B, P]", {B, P}, {DType::kI32}));
    if (t.loc_target)
      out.loc_target = static_cast<float*>(
          output(call, t.loc_target, "loc_target", "[B, P, 4]", {B, P, 4}, {DType::kF32}));
  }
  if (t.num_pos)
    out.num_pos =
        static_cast<int32_t*>(output(call, t.num_pos, "num_pos", "[B]", {B}, {DType::kI32}));
  if (has_forward(op))
    out.loss = output(call, t.loss, "loss", "[2]", {2}, {DType::kF32, DType::kF64}, &out.loss_dtype);
  if (has_backward(op)) {
    if (t.grad_loss) {
      const View grad_loss =
          check_tensor(t.grad_loss, "grad_loss", "[2]", {2}, {DType::kF32, DType::kF64});
      call->inputs.push_back({"grad_loss", grad_loss});
      out.grad_loss = grad_loss.data;
      out.grad_loss_dtype = grad_loss.dtype;
    }
    out.grad_loc = output(call, t.grad_loc, "grad_loc", "[B, P, 4]", {B, P, 4}, {call->in.loc_dtype});
    out.grad_conf =
        output(call, t.grad_conf, "grad_conf", "[B, P, C]", {B, P, C}, {call->in.conf_dtype});
  }
}

// Step 2 for DECODE: priors [P,4], loc [B,P,4], boxes [B,P,4], all float32.
void check_decode_tensors(const mbx_tensors_t& t, Call* call) {
  const View priors = check_tensor(t.priors, "priors", "[P, 4]", {-1, 4}, {DType::kF32});
  const int64_t P = t.priors->shape[0];
  if (P < 1) fail("priors: P = 0; expected at least one prior");
  const View loc = check_tensor(t.loc, "loc", "[B, P, 4]", {-1, P, 4}, {DType::kF32});
  const int64_t B = t.loc->shape[0];
  call->inputs = {{"priors", priors}, {"loc", loc}};
  call->boxes =
      static_cast<float*>(output(call, t.boxes, "boxes", "[B, P, 4]", {B, P, 4}, {DType::kF32}));
  call->in.B = B;
  call->in.P = P;
  call->in.priors = static_cast<const float*>(priors.data);
  call->loc_f32 = static_cast<const float*>(loc.data);
}

// Host copies of small input tensors living on a CUDA device, for validation.
struct HostCopy {
  std::vector<unsigned char> buf;
  const void* get(const View& v, int device_id, void* stream) {
    buf.resize(v.bytes + 1);
    if (v.bytes) device_to_host(buf.data(), v.data, v.bytes, device_id, stream);
    return buf.data();
  }
};

const View& named(const Call& call, const char* name) {
  for (const Named& n : call.inputs)
    if (std::strcmp(n.name, name) == 0) return n.v;
  throw Error(Status::kInternal, std::string("dispatch: no input ") + name);
}

// Step 4: the value checks (docs/SPEC.md §7) before anything is written. On
// CUDA the priors are checked on the device (one row comes back if one is
// bad) and the small GT tensors are copied to the host, unless the context
// turned validation off.
void check_values(const Options& o, mbx_op_t op, bool cuda, bool validate_cuda, const Exec& ex,
                  Call* call, std::vector<uint8_t>* gt_valid) {
  Inputs& in = call->in;
  const bool gt = op != MBX_OP_DECODE;
  if (gt && in.L > 0) {  // read on the host by every path: always checked
    const View& v = call->prior_levels;
    call->prior_levels_host.resize(static_cast<size_t>(in.L));
    if (is_host(v.t->device)) std::memcpy(call->prior_levels_host.data(), v.data, v.bytes);
    else device_to_host(call->prior_levels_host.data(), v.data, v.bytes, in.device_id, ex.cuda_stream);
    validate_prior_levels(call->prior_levels_host.data(), in.L, in.P);
    in.prior_levels = call->prior_levels_host.data();
  }
  if (!cuda) {
    validate_priors(in.priors, in.P, o.prior_format);
    if (gt) {
      validate_gt(o, in.B, in.G, in.gt_boxes, in.gt_labels, in.gt_counts, in.num_classes, gt_valid);
      in.gt_valid = gt_valid->data();
      if (in.gt_flags) validate_gt_flags(in.B, in.G, in.gt_flags, in.gt_counts);
    }
    return;
  }
  if (!validate_cuda) return;
  validate_priors_device(in.priors, in.P, o.prior_format, in.device_id, ex.cuda_stream);
  if (!gt) return;
  HostCopy boxes, labels, counts, flags;
  const auto* counts_host =
      static_cast<const int32_t*>(counts.get(named(*call, "gt_counts"), in.device_id, ex.cuda_stream));
  validate_gt(o, in.B, in.G,
              static_cast<const float*>(boxes.get(named(*call, "gt_boxes"), in.device_id, ex.cuda_stream)),
              static_cast<const int32_t*>(labels.get(named(*call, "gt_labels"), in.device_id, ex.cuda_stream)),
              counts_host, in.num_classes, gt_valid);
  if (in.gt_flags)
    validate_gt_flags(in.B, in.G,
                      static_cast<const int32_t*>(flags.get(named(*call, "gt_flags"), in.device_id, ex.cuda_stream)),
                      counts_host);
}

// Step 5: the core path.
void dispatch(const Options& o, mbx_op_t op, mbx_path_t path, const Call& call, const Exec& ex) {
  if (op == MBX_OP_DECODE) {
    if (path == MBX_PATH_CUDA) {
      decode_cuda(o, call.in, call.loc_f32, call.boxes, ex);
    } else {
      PriorGeometry geometry;
      build_prior_geometry(call.in.priors, call.in.P, o.prior_format, &geometry);
      decode_cpu(o, geometry, call.in.B, call.loc_f32, call.boxes,
                 path == MBX_PATH_CPU_SCALAR ? 1 : ex.num_threads);
    }
    return;
  }
  switch (path) {
    case MBX_PATH_CUDA: run_cuda(o, call.in, call.out, ex); break;
    case MBX_PATH_CPU_SCALAR: run_scalar(o, call.in, call.out); break;
    default:
      // HARD_EXAMPLE mining and the LOGISTIC loss: the cpu-scalar steps with
      // images in parallel and SIMD-bounded rankings, bitwise the cpu-scalar
      // results (docs/SPEC.md §4.6).
      if (is_loss(op) && o.loss_needs_mined_path()) run_cpu_mined(o, call.in, call.out, ex);
      else run_cpu(o, call.in, call.out, ex);
      break;
  }
}

}  // namespace

void run(mbx_context_t* ctx, const mbx_options_t* user_opts, mbx_op_t op, const mbx_tensors_t& t) {
  if (!op_name(op))
    fail("op = " + std::to_string(static_cast<int>(op)) + ": expected an mbx_op_t");
  ContextGuard guard(ctx);
  const Options o = convert_options(user_opts);
  check_unused(op, t);
  if (op == MBX_OP_MATCH && t.num_classes < 0)
    fail("num_classes = " + std::to_string(t.num_classes) + ": expected K >= 0 (0 = unchecked)");

  Call call;
  if (op == MBX_OP_DECODE) {
    check_decode_tensors(t, &call);
  } else {
    check_match_inputs(t, &call);
    call.in.num_classes = t.num_classes;
    if (is_loss(op)) check_loss_inputs(o, t, &call);
    check_outputs(op, t, &call);
  }
  std::vector<Named> all = call.inputs;
  all.insert(all.end(), call.outputs.begin(), call.outputs.end());
  check_same_device(all);
  check_no_alias(call.inputs, call.outputs);

  const DLDevice dev = t.priors->device;
  const bool cuda = is_cuda(dev);
  const mbx_path_t path = choose_path(ctx, cuda);
  if (cuda && !cuda_runtime_available())
    throw Error(Status::kNoDevice,
                "priors: tensors are on CUDA device " + std::to_string(dev.device_id) +
                    " but no usable CUDA device/driver is present (or mbx was built without CUDA)");
  call.in.device = cuda ? Device::kCUDA : Device::kCPU;
  call.in.device_id = cuda ? dev.device_id : 0;

  const Exec ex = exec_of(ctx);
  std::vector<uint8_t> gt_valid;
  check_values(o, op, cuda, cuda_validation(ctx), ex, &call, &gt_valid);
  dispatch(o, op, path, call, ex);
}

}  // namespace mbx::capi
