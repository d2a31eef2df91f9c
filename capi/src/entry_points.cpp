// The C entry points of the operations: mbx_run with its mbx_tensors_t, and
// the per-operation functions (mbx_match, mbx_loss_*, mbx_decode), each a
// wrapper that fills an mbx_tensors_t and calls the one run().
#include <cstddef>
#include <cstring>
#include <string>

#include "boundary.h"
#include "dispatch.h"

namespace {

// The tensors struct of this library's size, from a caller's (of any size
// from the first version with mbx_tensors_t up to this one): the fields a
// caller's header lacks (its struct_size ends before them) are NULL. The
// first version's struct ended at `boxes`; `gt_flags` is the first field
// appended since.
constexpr size_t kTensorsMinSize = offsetof(mbx_tensors_t, gt_flags);

mbx_tensors_t tensors_of(const mbx_tensors_t* user) {
  if (!user) mbx::fail("tensors: NULL; initialise an mbx_tensors_t with mbx_tensors_init()");
  if (user->struct_size < kTensorsMinSize)
    mbx::fail("tensors->struct_size = " + std::to_string(user->struct_size) +
              ": too small for an mbx_tensors_t (did you call mbx_tensors_init?)");
  if (user->struct_size > sizeof(mbx_tensors_t))
    throw mbx::Error(mbx::Status::kUnsupported,
                     "tensors->struct_size = " + std::to_string(user->struct_size) +
                         " is larger than this library's mbx_tensors_t (" +
                         std::to_string(sizeof(mbx_tensors_t)) +
                         " bytes): the caller was built against a newer mbx");
  mbx_tensors_t t;
  std::memset(&t, 0, sizeof t);
  std::memcpy(&t, user, user->struct_size);
  return t;
}

mbx_tensors_t empty_tensors() {
  mbx_tensors_t t;
  std::memset(&t, 0, sizeof t);
  t.struct_size = sizeof t;
  return t;
}

// The inputs every loss operation takes.
mbx_tensors_t loss_tensors(const DLTensor* priors, const DLTensor* gt_boxes,
                           const DLTensor* gt_labels, const DLTensor* gt_counts,
                           const DLTensor* loc, const DLTensor* conf) {
  mbx_tensors_t t = empty_tensors();
  t.priors = priors;
  t.gt_boxes = gt_boxes;
  t.gt_labels = gt_labels;
  t.gt_counts = gt_counts;
  t.loc = loc;
  t.conf = conf;
  return t;
}

}  // namespace

extern "C" {

MBX_API mbx_status_t mbx_tensors_init(mbx_tensors_t* tensors) {
  MBX_TRY
  if (!tensors) mbx::fail("tensors: NULL");
  *tensors = empty_tensors();
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_run(mbx_context_t* ctx, const mbx_options_t* opts, mbx_op_t op,
                             const mbx_tensors_t* tensors) {
  MBX_TRY
  mbx::capi::run(ctx, opts, op, tensors_of(tensors));
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_match(mbx_context_t* ctx, const mbx_options_t* opts,
                               int64_t num_classes, const DLTensor* priors,
                               const DLTensor* gt_boxes, const DLTensor* gt_labels,
                               const DLTensor* gt_counts, DLTensor* conf_target,
                               DLTensor* matched_gt, DLTensor* loc_target, DLTensor* num_pos) {
  MBX_TRY
  mbx_tensors_t t = empty_tensors();
  t.num_classes = num_classes;
  t.priors = priors;
  t.gt_boxes = gt_boxes;
  t.gt_labels = gt_labels;
  t.gt_counts = gt_counts;
  t.conf_target = conf_target;
  t.matched_gt = matched_gt;
  t.loc_target = loc_target;
  t.num_pos = num_pos;
  mbx::capi::run(ctx, opts, MBX_OP_MATCH, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_loss_forward(mbx_context_t* ctx, const mbx_options_t* opts,
                                      const DLTensor* priors, const DLTensor* gt_boxes,
                                      const DLTensor* gt_labels, const DLTensor* gt_counts,
                                      const DLTensor* loc, const DLTensor* conf, DLTensor* loss,
                                      DLTensor* num_pos) {
  MBX_TRY
  mbx_tensors_t t = loss_tensors(priors, gt_boxes, gt_labels, gt_counts, loc, conf);
  t.loss = loss;
  t.num_pos = num_pos;
  mbx::capi::run(ctx, opts, MBX_OP_LOSS_FORWARD, t);
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
  mbx_tensors_t t = loss_tensors(priors, gt_boxes, gt_labels, gt_counts, loc, conf);
  t.grad_loss = grad_loss;
  t.grad_loc = grad_loc;
  t.grad_conf = grad_conf;
  mbx::capi::run(ctx, opts, MBX_OP_LOSS_BACKWARD, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_loss_forward_backward(
    mbx_context_t* ctx, const mbx_options_t* opts, const DLTensor* priors,
    const DLTensor* gt_boxes, const DLTensor* gt_labels, const DLTensor* gt_counts,
    const DLTensor* loc, const DLTensor* conf, const DLTensor* grad_loss, DLTensor* loss,
    DLTensor* num_pos, DLTensor* grad_loc, DLTensor* grad_conf) {
  MBX_TRY
  mbx_tensors_t t = loss_tensors(priors, gt_boxes, gt_labels, gt_counts, loc, conf);
  t.grad_loss = grad_loss;
  t.loss = loss;
  t.num_pos = num_pos;
  t.grad_loc = grad_loc;
  t.grad_conf = grad_conf;
  mbx::capi::run(ctx, opts, MBX_OP_LOSS_FORWARD_BACKWARD, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_decode(mbx_context_t* ctx, const mbx_options_t* opts,
                                const DLTensor* priors, const DLTensor* loc, DLTensor* boxes) {
  MBX_TRY
  mbx_tensors_t t = empty_tensors();
  t.priors = priors;
  t.loc = loc;
  t.boxes = boxes;
  mbx::capi::run(ctx, opts, MBX_OP_DECODE, t);
  return MBX_STATUS_OK;
  MBX_CATCH
}

}  // extern "C"
