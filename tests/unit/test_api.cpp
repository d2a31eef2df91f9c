// The C boundary: every bad input of docs/SPEC.md §7 gives a status and a message
// naming the argument (and image/row), and nothing is written.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "test_util.h"

using namespace mbx_test;

namespace {

struct Call {
  Problem pr = random_problem(77, 2, 50, 4, 3, true, true);
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  HostTensor<double> loss{{2}, 123.0};
  HostTensor<int32_t> num_pos{{2}, 123};
  HostTensor<float> grad_loc{{2, 50, 4}, 123.f}, grad_conf{{2, 50, 4}, 123.f};
  // Override hooks: a test mutates these DLTensors after dl().
  DLTensor *priors, *boxes, *labels, *counts, *loc, *conf, *l, *np, *gl, *gc;
  Call() { refresh(); }
  void refresh() {
    pr.gt_counts[0] = 2;
    pr.gt_counts[1] = 3;
    priors = pr.priors.dl(); boxes = pr.gt_boxes.dl(); labels = pr.gt_labels.dl();
    counts = pr.gt_counts.dl(); loc = pr.loc.dl(); conf = pr.conf.dl();
    l = loss.dl(); np = num_pos.dl(); gl = grad_loc.dl(); gc = grad_conf.dl();
  }
  mbx_status_t run() {
    return mbx_loss_forward_backward(nullptr, &o, priors, boxes, labels, counts, loc, conf, nullptr,
                                     l, np, gl, gc);
  }
  bool untouched() const {
    for (double v : loss.data) if (v != 123.0) return false;
    for (int32_t v : num_pos.data) if (v != 123) return false;
    for (float v : grad_loc.data) if (v != 123.f) return false;
    for (float v : grad_conf.data) if (v != 123.f) return false;
    return true;
  }
};

#define EXPECT_ERROR(call, status, ...)                                              \
  do {                                                                               \
    EXPECT_EQ((call).run(), status);                                                 \
    const std::string msg = mbx_last_error();                                        \
    for (const char* part : {__VA_ARGS__})                                           \
      EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << " lacks " << part; \
    EXPECT_TRUE((call).untouched()) << "outputs written on error";                   \
  } while (0)

TEST(Api, ValidCallSucceedsAndClearsTheError) {
  Call c;
  ASSERT_EQ(c.run(), MBX_STATUS_OK) << mbx_last_error();
  EXPECT_STREQ(mbx_last_error(), "");
  EXPECT_FALSE(c.untouched());
}

TEST(Api, NullArguments) {
  { Call c; c.priors = nullptr; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "priors", "NULL"); }
  { Call c; c.conf = nullptr; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "conf", "NULL"); }
  { Call c; c.gl = nullptr; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "grad_loc", "NULL"); }
  { Call c; c.pr.loc.t.data = nullptr; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loc", "data is NULL"); }
  Call c;
  EXPECT_EQ(mbx_loss_forward_backward(nullptr, nullptr, c.priors, c.boxes, c.labels, c.counts, c.loc,
                                      c.conf, nullptr, c.l, c.np, c.gl, c.gc),
            MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("opts"), std::string::npos);
}

TEST(Api, DtypeNdimShapeAndStrides) {
  { Call c; c.conf->dtype = {kDLFloat, 64, 1}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "conf", "float64"); }
  { Call c; c.labels->dtype = {kDLFloat, 32, 1}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_labels", "int32"); }
  { Call c; c.loc->dtype = {kDLFloat, 32, 4}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loc", "lanes"); }
  { Call c; c.loc->ndim = 2; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loc", "ndim"); }
  { Call c; c.pr.loc.shape[1] = 49; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loc", "[2, 49, 4]", "[2, 50, 4]"); }
  { Call c; c.pr.gt_counts.shape[0] = 1; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_counts", "[B]"); }
  { Call c; c.grad_conf.shape[2] = 5; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "grad_conf"); }
  {
    Call c;
    int64_t strides[3] = {4, 8, 1};  // transposed, not compact
    c.loc->strides = strides;
    EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loc", "strides", "compact");
  }
  {
    Call c;
    int64_t strides[3] = {200, 4, 1};  // compact: accepted
    c.loc->strides = strides;
    EXPECT_EQ(c.run(), MBX_STATUS_OK) << mbx_last_error();
  }
  { Call c; c.loc->byte_offset = 2; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loc", "aligned"); }
  { Call c; c.l->dtype = {kDLInt, 32, 1}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "loss"); }
}

TEST(Api, DevicesAndAliasing) {
  {
    Call c;
    c.conf->device = {kDLCUDA, 0};
    EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "conf", "same device");
  }
  {
    Call c;  // every tensor "on CUDA" in a process without a usable device
    for (DLTensor* t : {c.priors, c.boxes, c.labels, c.counts, c.loc, c.conf, c.l, c.np, c.gl, c.gc})
      t->device = {kDLCUDA, 0};
    if (!mbx_cuda_available()) {
      EXPECT_EQ(c.run(), MBX_STATUS_NO_DEVICE);
      EXPECT_NE(std::string(mbx_last_error()).find("CUDA"), std::string::npos);
    }
  }
  { Call c; c.gl = c.loc; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "grad_loc", "overlaps input loc"); }
  { Call c; c.pr.conf.t.device = {kDLOpenCL, 0}; c.conf = &c.pr.conf.t; EXPECT_ERROR(c, MBX_STATUS_UNSUPPORTED, "conf"); }
}

TEST(Api, GtContentErrorsNameImageAndRow) {
  { Call c; c.pr.gt_counts[1] = 4; c.refresh(); c.pr.gt_counts[1] = 4; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_counts[1] = 4", "[0, G]"); }
  { Call c; c.pr.gt_counts[0] = -1; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_counts[0] = -1"); }
  { Call c; c.pr.gt_boxes[(1 * 3 + 2) * 4 + 1] = NAN; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_boxes[image 1, row 2]", "non-finite"); }
  { Call c; c.pr.gt_boxes[(0 * 3 + 1) * 4 + 2] = c.pr.gt_boxes[(0 * 3 + 1) * 4 + 0]; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_boxes[image 0, row 1]", "x2 <= x1"); }
  { Call c; c.pr.gt_labels[1 * 3 + 0] = -1; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_labels[image 1, row 0] = -1"); }
  { Call c; c.pr.gt_labels[0] = 3; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_labels[image 0, row 0] = 3", "[0, 3)"); }
  {
    Call c;  // padding rows are never read for meaning
    c.pr.gt_counts[0] = 1;
    c.pr.gt_boxes[(0 * 3 + 2) * 4 + 0] = NAN;
    c.pr.gt_labels[0 * 3 + 2] = -5;
    c.counts = c.pr.gt_counts.dl();
    EXPECT_EQ(c.run(), MBX_STATUS_OK) << mbx_last_error();
  }
}

TEST(Api, PriorErrors) {
  { Call c; c.pr.priors[4 * 7 + 2] = 0.f; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "priors[7]", "w or h <= 0"); }
  { Call c; c.pr.priors[4 * 3] = INFINITY; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "priors[3]", "non-finite"); }
  { Call c; c.o.prior_format = MBX_PRIOR_CORNERS; c.pr.priors[4 * 0 + 2] = -1.f; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "priors[0]", "x2 <= x1"); }
}

TEST(Api, OptionErrors) {
  { Call c; c.o.pos_threshold = 1.5; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "pos_threshold", "[0, 1]"); }
  { Call c; c.o.neg_threshold = 0.7; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "neg_threshold", "<= pos_threshold"); }
  { Call c; c.o.variances[2] = 0; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "variances[2]"); }
  { Call c; c.o.smooth_l1_beta = -1; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "smooth_l1_beta"); }
  { Call c; c.o.normalization = MBX_NORM_EXTERNAL; c.o.external_norm = 0; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "external_norm"); }
  { Call c; c.o.force_match = 7; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "force_match"); }
  { Call c; c.o.focal_gamma = NAN; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "focal_gamma"); }
  { Call c; c.o.mining_sample_size = 0; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "mining_sample_size", "> 0"); }
  { Call c; c.o.mining_nms_threshold = 1.5; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "mining_nms_threshold", "<= 1"); }
  { Call c; c.o.mining_nms_threshold = NAN; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "mining_nms_threshold"); }
  { Call c; c.o.mining = 2; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "mining", "[0, 1]"); }
  { Call c; c.o.box_coding = 3; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "box_coding", "[0, 2]"); }
  {
    Call c;  // the focal loss does not mine
    c.o.conf_loss = MBX_CONF_LOSS_SIGMOID_FOCAL; c.o.mining = MBX_MINING_HARD_EXAMPLE;
    EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "mining = HARD_EXAMPLE", "SIGMOID_FOCAL");
  }
  {
    Call c;  // SOFTMAX_CE needs a background column
    c.pr.conf.shape[2] = 1; c.grad_conf.shape[2] = 1;
    EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "C = 1", "SOFTMAX_CE");
  }
  { Call c; c.o.struct_size = sizeof(mbx_options_t) + 8; EXPECT_ERROR(c, MBX_STATUS_UNSUPPORTED, "struct_size", "newer"); }
  { Call c; c.o.struct_size = 4; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "struct_size"); }
}

// The optional inputs of mbx_run (docs/SPEC.md §2.7, §7): the same call with
// gt_flags [B, G] and prior_levels [L].
struct RunCall : Call {
  HostTensor<int32_t> flags{{2, 3}, 0}, levels{{2}, 25};
  const DLTensor *fl = flags.dl(), *lv = levels.dl();
  mbx_op_t op = MBX_OP_LOSS_FORWARD_BACKWARD;
  mbx_status_t run() {
    mbx_tensors_t t;
    mbx_tensors_init(&t);
    t.priors = priors; t.gt_boxes = boxes; t.gt_labels = labels; t.gt_counts = counts;
    t.loc = loc; t.conf = conf; t.loss = l; t.num_pos = np; t.grad_loc = gl; t.grad_conf = gc;
    t.gt_flags = fl;
    t.prior_levels = lv;
    if (op == MBX_OP_DECODE) {  // decode takes priors, loc and boxes (here: grad_loc's buffer)
      mbx_tensors_t d;
      mbx_tensors_init(&d);
      d.priors = priors; d.loc = loc; d.boxes = gl; d.gt_flags = fl; d.prior_levels = lv;
      return mbx_run(nullptr, &o, op, &d);
    }
    return mbx_run(nullptr, &o, op, &t);
  }
};

TEST(Api, GtFlagsAndPriorLevelsErrorsNameArgumentImageAndRow) {
  { RunCall c; ASSERT_EQ(c.run(), MBX_STATUS_OK) << mbx_last_error(); }
  {
    RunCall c;  // reserved bits of padding rows (image 0 has 2 valid rows) are not read
    c.flags[0 * 3 + 2] = 6;
    c.flags[1 * 3 + 0] = 1;
    EXPECT_EQ(c.run(), MBX_STATUS_OK) << mbx_last_error();
  }
  { RunCall c; c.flags.shape[1] = 2; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags", "[B, G]"); }
  { RunCall c; c.flags.t.ndim = 1; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags", "ndim"); }
  { RunCall c; c.flags.t.dtype = {kDLFloat, 32, 1}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags", "int32"); }
  { RunCall c; c.flags.t.dtype = {kDLInt, 64, 1}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags", "int32"); }
  {
    RunCall c;
    c.flags[1 * 3 + 2] = 4;
    EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags[image 1, row 2] = 4", "reserved");
  }
  {
    RunCall c;
    c.flags[0 * 3 + 1] = static_cast<int32_t>(0x80000001u);
    EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags[image 0, row 1]", "reserved");
  }
  { RunCall c; c.o.ignore_iof_threshold = NAN; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "ignore_iof_threshold"); }
  { RunCall c; c.o.ignore_iof_threshold = INFINITY; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "ignore_iof_threshold"); }
  { RunCall c; c.levels[0] = -1; c.levels[1] = 51; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "prior_levels[0] = -1", ">= 0"); }
  { RunCall c; c.levels[1] = 24; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "prior_levels", "sum to 49", "P = 50"); }
  { RunCall c; c.levels.t.dtype = {kDLInt, 64, 1}; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "prior_levels", "int32"); }
  { RunCall c; c.levels.t.ndim = 2; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "prior_levels", "ndim"); }
  { RunCall c; c.levels.shape[0] = 0; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "prior_levels", "L = 0"); }
  { RunCall c; c.op = MBX_OP_DECODE; c.lv = nullptr; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "gt_flags", "not used by MBX_OP_DECODE"); }
  { RunCall c; c.op = MBX_OP_DECODE; c.fl = nullptr; EXPECT_ERROR(c, MBX_STATUS_INVALID_ARGUMENT, "prior_levels", "not used by MBX_OP_DECODE"); }
}

TEST(Api, OlderOptionStructSizeStillWorksWithDefaults) {
  Call a, b;
  ASSERT_EQ(a.run(), MBX_STATUS_OK);
  b.o.struct_size = offsetof(mbx_options_t, invalid_gt);  // a caller built before invalid_gt
  b.o.invalid_gt = 12345;                                 // not part of its struct: ignored
  ASSERT_EQ(b.run(), MBX_STATUS_OK) << mbx_last_error();
  EXPECT_EQ(a.loss.data, b.loss.data);
}

TEST(Api, OptionsSetByName) {
  mbx_options_t o = preset(MBX_PRESET_SSD_PYTORCH);
  EXPECT_EQ(mbx_options_set(&o, "force_match", "LOW_QUALITY"), MBX_STATUS_OK);
  EXPECT_EQ(o.force_match, MBX_FORCE_MATCH_LOW_QUALITY);
  EXPECT_EQ(mbx_options_set(&o, "variances", "1, 2, 3.5, 4e-1"), MBX_STATUS_OK);
  EXPECT_EQ(o.variances[2], 3.5);
  EXPECT_EQ(o.variances[3], 0.4);
  EXPECT_EQ(mbx_options_set(&o, "clamp_num_neg", "false"), MBX_STATUS_OK);
  EXPECT_EQ(o.clamp_num_neg, 0);
  EXPECT_EQ(mbx_options_set(&o, "smooth_l1_beta", "0.1111111111111111"), MBX_STATUS_OK);
  EXPECT_EQ(o.smooth_l1_beta, 0.1111111111111111);
  EXPECT_EQ(mbx_options_set(&o, "no_such_option", "1"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("no_such_option"), std::string::npos);
  EXPECT_EQ(mbx_options_set(&o, "loc_loss", "L3"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("SMOOTH_L1, L1, L2"), std::string::npos);
  EXPECT_EQ(mbx_options_set(&o, "mining", "HARD"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("mining"), std::string::npos);
  EXPECT_EQ(mbx_options_set(&o, "box_coding", "CORNERS"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("box_coding"), std::string::npos);
  EXPECT_EQ(mbx_options_set(&o, "pos_threshold", "0.5x"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_options_set(&o, "variances", "1,2,3"), MBX_STATUS_INVALID_ARGUMENT);
  mbx_preset_t p;
  EXPECT_EQ(mbx_preset_from_name("torchvision_retinanet", &p), MBX_STATUS_OK);
  EXPECT_EQ(p, MBX_PRESET_TORCHVISION_RETINANET);
  EXPECT_EQ(mbx_preset_from_name("retinanet", &p), MBX_STATUS_INVALID_ARGUMENT);
}

TEST(Api, PresetsMatchTheSpecTable) {
  mbx_options_t o = preset(MBX_PRESET_YHENON_RETINANET);
  EXPECT_EQ(o.prior_format, MBX_PRIOR_CORNERS);
  EXPECT_EQ(o.neg_threshold, 0.4);
  EXPECT_EQ(o.force_match, MBX_FORCE_MATCH_NONE);
  EXPECT_EQ(o.encode_min_gt_wh, 1.0);
  EXPECT_EQ(o.smooth_l1_beta, 1.0 / 9.0);
  EXPECT_EQ(o.normalization, MBX_NORM_PER_IMAGE);
  EXPECT_EQ(o.loc_average_coords, 1);
  o = preset(MBX_PRESET_TORCHVISION_RETINANET);
  EXPECT_EQ(o.loc_loss, MBX_LOC_LOSS_L1);
  EXPECT_EQ(o.variances[0], 1.0);
  EXPECT_EQ(o.force_match, MBX_FORCE_MATCH_LOW_QUALITY);
  o = preset(MBX_PRESET_TORCHVISION_SSD);
  EXPECT_EQ(o.clamp_num_neg, 0);
  o = preset(MBX_PRESET_SSD_PYTORCH);
  EXPECT_EQ(o.clamp_num_neg, 1);
  EXPECT_EQ(o.prior_format, MBX_PRIOR_CENTER_SIZE);
  EXPECT_EQ(o.mining, MBX_MINING_MAX_NEGATIVE);
  EXPECT_EQ(o.mining_sample_size, 64);
  EXPECT_EQ(o.mining_nms_threshold, 0.0);
  EXPECT_EQ(o.box_coding, MBX_BOX_CODING_CENTER_SIZE);
  EXPECT_EQ(o.encode_variance_in_target, 0);
  o = preset(MBX_PRESET_CAFFE_SSD);
  EXPECT_EQ(o.prior_format, MBX_PRIOR_CORNERS);
  EXPECT_EQ(o.force_match, MBX_FORCE_MATCH_BIPARTITE);
  EXPECT_EQ(o.clamp_num_neg, 0);
  EXPECT_EQ(o.loc_loss, MBX_LOC_LOSS_SMOOTH_L1);
  EXPECT_EQ(o.conf_loss, MBX_CONF_LOSS_SOFTMAX_CE);
  EXPECT_EQ(o.normalization, MBX_NORM_TOTAL_POSITIVES);
  EXPECT_EQ(o.mining, MBX_MINING_MAX_NEGATIVE);
  o = preset(MBX_PRESET_SGRVINOD_SSD);
  EXPECT_EQ(o.force_match, MBX_FORCE_MATCH_BEST_PRIOR_PER_GT);
  EXPECT_EQ(o.loc_loss, MBX_LOC_LOSS_L1);
  EXPECT_EQ(o.clamp_num_neg, 0);
  EXPECT_EQ(o.loc_average_coords, 1);
  EXPECT_EQ(o.normalization, MBX_NORM_TOTAL_POSITIVES);
  EXPECT_EQ(mbx_options_init(&o, static_cast<mbx_preset_t>(6)), MBX_STATUS_INVALID_ARGUMENT);
}

TEST(Api, ContextAndCapabilities) {
  mbx_context_t* ctx = nullptr;
  ASSERT_EQ(mbx_context_create(&ctx), MBX_STATUS_OK);
  EXPECT_EQ(mbx_context_set_num_threads(ctx, -1), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_path_available(MBX_PATH_CPU_SCALAR), 1);
  EXPECT_EQ(mbx_path_available(MBX_PATH_CPU), 1);
  if (!mbx_cuda_available()) EXPECT_EQ(mbx_context_set_path(ctx, MBX_PATH_CUDA), MBX_STATUS_NO_DEVICE);
  // Workspace is cached after a call and can be released.
  Call c;
  ASSERT_EQ(mbx_loss_forward_backward(ctx, &c.o, c.priors, c.boxes, c.labels, c.counts, c.loc, c.conf,
                                      nullptr, c.l, c.np, c.gl, c.gc),
            MBX_STATUS_OK);
  size_t bytes = 0;
  ASSERT_EQ(mbx_context_workspace_bytes(ctx, &bytes), MBX_STATUS_OK);
  EXPECT_GT(bytes, 0u);
  ASSERT_EQ(mbx_context_release_workspace(ctx), MBX_STATUS_OK);
  ASSERT_EQ(mbx_context_workspace_bytes(ctx, &bytes), MBX_STATUS_OK);
  EXPECT_EQ(bytes, 0u);
  mbx_context_destroy(ctx);
  EXPECT_STREQ(mbx_version(), MBX_PROJECT_VERSION);  // the one version, from CMake
  EXPECT_STREQ(mbx_status_string(MBX_STATUS_CONTEXT_BUSY), "MBX_STATUS_CONTEXT_BUSY");
}

// Workspace-size query and caller workspace: argument checks (the device
// side runs in tests/cuda); the CPU path ignores a caller workspace.
TEST(Api, WorkspaceSizeAndCallerWorkspace) {
  const mbx_options_t ssd = preset(MBX_PRESET_SSD_PYTORCH), retina = preset(MBX_PRESET_TORCHVISION_RETINANET);
  size_t b = 7;
  auto expect_bad = [](mbx_status_t st, const char* part) {
    EXPECT_EQ(st, MBX_STATUS_INVALID_ARGUMENT);
    const std::string msg = mbx_last_error();
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
  };
  expect_bad(mbx_workspace_size(&ssd, 0, 8732, 4, 21, &b), "B = 0");
  expect_bad(mbx_workspace_size(&ssd, 2, 0, 4, 21, &b), "P = 0");
  expect_bad(mbx_workspace_size(&ssd, 2, 8732, 0, 21, &b), "G = 0");
  expect_bad(mbx_workspace_size(&ssd, 2, 8732, 4, 0, &b), "C = 0");
  expect_bad(mbx_workspace_size(&ssd, 2, 8732, 4, 21, nullptr), "bytes");
  expect_bad(mbx_workspace_size(nullptr, 2, 8732, 4, 21, &b), "opts");
  expect_bad(mbx_workspace_size(&ssd, int64_t(1) << 40, 1 << 20, 4, 21, &b), "too large");
  expect_bad(mbx_workspace_size(&ssd, INT64_MAX, 8732, 4, 21, &b), "too large");
  EXPECT_EQ(b, 7u) << "written on error";
#if defined(MBX_TEST_CUDA_BUILD)
  size_t s2 = 0, s4 = 0, f2 = 0;
  ASSERT_EQ(mbx_workspace_size(&ssd, 2, 8732, 4, 21, &s2), MBX_STATUS_OK) << mbx_last_error();
  ASSERT_EQ(mbx_workspace_size(&ssd, 4, 8732, 4, 21, &s4), MBX_STATUS_OK) << mbx_last_error();
  ASSERT_EQ(mbx_workspace_size(&retina, 2, 8732, 4, 21, &f2), MBX_STATUS_OK) << mbx_last_error();
  // At least ct, mg (int32) and, for softmax, (m, l), keys and weights per prior.
  EXPECT_GE(s2, static_cast<size_t>(2 * 8732) * (4 + 4 + 8 + 4 + 1));
  EXPECT_GT(s4, s2);
  EXPECT_LT(f2, s2);  // focal keeps no per-prior softmax statistics
  EXPECT_EQ(s2 % 256, 0u);
#else
  EXPECT_EQ(mbx_workspace_size(&ssd, 2, 8732, 4, 21, &b), MBX_STATUS_NO_DEVICE);
#endif
  mbx_context_t* ctx = nullptr;
  ASSERT_EQ(mbx_context_create(&ctx), MBX_STATUS_OK);
  unsigned char host[512];
  expect_bad(mbx_context_set_workspace(nullptr, host, sizeof host), "ctx");
  expect_bad(mbx_context_set_workspace(ctx, host, 0), "bytes");
  expect_bad(mbx_context_set_workspace(ctx, nullptr, 16), "ptr");
  EXPECT_EQ(mbx_context_set_workspace(ctx, nullptr, 0), MBX_STATUS_OK);
  // A CPU call ignores the caller workspace (here host memory, which the
  // CUDA path would refuse) and gives the same result as without one.
  Call a, c;
  ASSERT_EQ(a.run(), MBX_STATUS_OK) << mbx_last_error();
  ASSERT_EQ(mbx_context_set_workspace(ctx, host, sizeof host), MBX_STATUS_OK);
  ASSERT_EQ(mbx_loss_forward_backward(ctx, &c.o, c.priors, c.boxes, c.labels, c.counts, c.loc, c.conf,
                                      nullptr, c.l, c.np, c.gl, c.gc),
            MBX_STATUS_OK)
      << mbx_last_error();
  EXPECT_EQ(a.loss.data, c.loss.data);
  EXPECT_EQ(a.grad_conf.data, c.grad_conf.data);
  mbx_context_destroy(ctx);
}

TEST(Api, ForwardTouchesNoGradientAndBackwardMatchesFused) {
  Call c;
  ASSERT_EQ(c.run(), MBX_STATUS_OK);
  HostTensor<double> loss({2});
  ASSERT_EQ(mbx_loss_forward(nullptr, &c.o, c.priors, c.boxes, c.labels, c.counts, c.loc, c.conf,
                             loss.dl(), nullptr),
            MBX_STATUS_OK);
  EXPECT_EQ(loss.data, c.loss.data);
  HostTensor<float> gl({2, 50, 4}, 9.f), gc({2, 50, 4}, 9.f);
  HostTensor<float> up({2}, 1.f);
  ASSERT_EQ(mbx_loss_backward(nullptr, &c.o, c.priors, c.boxes, c.labels, c.counts, c.loc, c.conf,
                              up.dl(), gl.dl(), gc.dl()),
            MBX_STATUS_OK);
  EXPECT_EQ(gl.data, c.grad_loc.data);
  EXPECT_EQ(gc.data, c.grad_conf.data);
}

}  // namespace
