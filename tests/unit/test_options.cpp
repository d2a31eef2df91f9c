// The option table as C API (mbx_option_* introspection, mbx_options_get /
// set round trips, presets by name) and the extensible call surface
// (mbx_tensors_t + mbx_run) against the per-operation entry points.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <set>
#include <string>

#include "mbx/mbx.h"
#include "test_util.h"

namespace {

using mbx_test::HostTensor;
using mbx_test::Problem;
using mbx_test::random_problem;

std::string get(const mbx_options_t& o, const char* name) {
  char buf[MBX_OPTION_TEXT_MAX];
  EXPECT_EQ(mbx_options_get(&o, name, buf, sizeof buf), MBX_STATUS_OK) << mbx_last_error();
  return buf;
}

TEST(Options, IntrospectionListsEveryFieldOnce) {
  const int n = mbx_option_count();
  // struct_size, the options, reserved0: every field but the first and last.
  EXPECT_EQ(n, 26);
  std::set<std::string> names;
  for (int i = 0; i < n; ++i) {
    ASSERT_NE(mbx_option_name(i), nullptr);
    names.insert(mbx_option_name(i));
    const std::string type = mbx_option_type(i);
    EXPECT_TRUE(type == "enum" || type == "bool" || type == "int" || type == "float" ||
                type == "float[4]")
        << type;
    EXPECT_EQ(type == "enum", std::strlen(mbx_option_choices(i)) > 0) << mbx_option_name(i);
    EXPECT_GT(std::strlen(mbx_option_doc(i)), 10u);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(n));
  EXPECT_EQ(mbx_option_name(-1), nullptr);
  EXPECT_EQ(mbx_option_name(n), nullptr);
  EXPECT_EQ(mbx_option_type(n), nullptr);
  EXPECT_EQ(mbx_option_choices(n), nullptr);
  EXPECT_EQ(mbx_option_doc(n), nullptr);
  EXPECT_STREQ(mbx_option_name(0), "prior_format");
  EXPECT_STREQ(mbx_option_choices(1), "NONE,BEST_PRIOR_PER_GT,LOW_QUALITY,BIPARTITE");
  EXPECT_STREQ(mbx_option_name(n - 1), "ignore_iof_threshold");
}

TEST(Options, GetThenSetRoundTripsBitwiseForEveryPreset) {
  for (int p = 0; p < mbx_preset_count(); ++p) {
    mbx_options_t a, b;
    ASSERT_EQ(mbx_options_init(&a, static_cast<mbx_preset_t>(p)), MBX_STATUS_OK);
    // Start b from another preset so every field really is written.
    ASSERT_EQ(mbx_options_init(&b, static_cast<mbx_preset_t>((p + 1) % mbx_preset_count())),
              MBX_STATUS_OK);
    for (int i = 0; i < mbx_option_count(); ++i) {
      const std::string text = get(a, mbx_option_name(i));
      ASSERT_EQ(mbx_options_set(&b, mbx_option_name(i), text.c_str()), MBX_STATUS_OK)
          << mbx_option_name(i) << " = " << text << ": " << mbx_last_error();
    }
    EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << mbx_preset_name(static_cast<mbx_preset_t>(p));
  }
}

TEST(Options, PresetValuesAreTheAnchorsExactly) {
  mbx_options_t o;
  ASSERT_EQ(mbx_options_init(&o, MBX_PRESET_YHENON_RETINANET), MBX_STATUS_OK);
  EXPECT_EQ(o.smooth_l1_beta, 1.0 / 9.0);
  EXPECT_EQ(o.encode_min_gt_wh, 1.0);
  EXPECT_EQ(o.force_match, MBX_FORCE_MATCH_NONE);
  EXPECT_EQ(o.loc_average_coords, 1);
  EXPECT_EQ(get(o, "smooth_l1_beta"), "0.1111111111111111");
  ASSERT_EQ(mbx_options_init(&o, MBX_PRESET_TORCHVISION_RETINANET), MBX_STATUS_OK);
  EXPECT_EQ(get(o, "variances"), "1,1,1,1");
  EXPECT_EQ(get(o, "force_match"), "LOW_QUALITY");
  EXPECT_EQ(get(o, "loc_average_coords"), "false");
  ASSERT_EQ(mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH), MBX_STATUS_OK);
  EXPECT_EQ(get(o, "variances"), "0.1,0.1,0.2,0.2");
  EXPECT_EQ(get(o, "clamp_num_neg"), "true");
  EXPECT_EQ(o.reserved0, 0);
  EXPECT_EQ(o.struct_size, sizeof(mbx_options_t));
}

TEST(Options, PresetNamesRoundTrip) {
  EXPECT_EQ(mbx_preset_count(), 6);
  for (int p = 0; p < mbx_preset_count(); ++p) {
    const char* name = mbx_preset_name(static_cast<mbx_preset_t>(p));
    ASSERT_NE(name, nullptr);
    mbx_preset_t back;
    ASSERT_EQ(mbx_preset_from_name(name, &back), MBX_STATUS_OK);
    EXPECT_EQ(back, p);
  }
  EXPECT_STREQ(mbx_preset_name(MBX_PRESET_CAFFE_SSD), "caffe_ssd");
  EXPECT_STREQ(mbx_preset_name(MBX_PRESET_SGRVINOD_SSD), "sgrvinod_ssd");
  EXPECT_EQ(mbx_preset_name(static_cast<mbx_preset_t>(6)), nullptr);
  EXPECT_EQ(mbx_preset_name(static_cast<mbx_preset_t>(-1)), nullptr);
}

TEST(Options, GetRefusesBadArgumentsAndWritesNothing) {
  mbx_options_t o;
  mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH);
  char buf[8] = "unset";
  EXPECT_EQ(mbx_options_get(&o, "nope", buf, sizeof buf), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("\"nope\" is unknown"), std::string::npos);
  EXPECT_EQ(mbx_options_get(&o, "variances", buf, sizeof buf), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("needs 16 bytes"), std::string::npos)
      << mbx_last_error();
  EXPECT_STREQ(buf, "unset");
  EXPECT_EQ(mbx_options_get(nullptr, "variances", buf, sizeof buf), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_options_get(&o, nullptr, buf, sizeof buf), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_options_get(&o, "variances", nullptr, 64), MBX_STATUS_INVALID_ARGUMENT);
  // An enum field holding a value outside its enum.
  o.force_match = 9;
  char big[MBX_OPTION_TEXT_MAX];
  EXPECT_EQ(mbx_options_get(&o, "force_match", big, sizeof big), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("expected an enum value in [0, 3]"),
            std::string::npos);
  // A caller built against the first ABI version has no invalid_gt.
  mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH);
  o.struct_size = offsetof(mbx_options_t, invalid_gt);
  EXPECT_EQ(mbx_options_get(&o, "invalid_gt", big, sizeof big), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("older"), std::string::npos);
  EXPECT_EQ(mbx_options_get(&o, "focal_gamma", big, sizeof big), MBX_STATUS_OK);
}

TEST(Options, SetLeavesOptionsUnchangedOnError) {
  mbx_options_t o, before;
  mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH);
  before = o;
  EXPECT_EQ(mbx_options_set(&o, "variances", "1,2,x,4"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_options_set(&o, "force_match", "BEST"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("NONE, BEST_PRIOR_PER_GT, LOW_QUALITY"),
            std::string::npos);
  EXPECT_EQ(mbx_options_set(&o, "clamp_num_neg", "yes"), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(std::memcmp(&o, &before, sizeof o), 0);
}

// --- mbx_run: the same results as the per-operation functions -------------

struct Outputs {
  HostTensor<double> loss{{2}, -7.0};
  HostTensor<int32_t> num_pos;
  HostTensor<float> grad_loc, grad_conf;
  explicit Outputs(const Problem& pr)
      : num_pos({pr.B}, -7), grad_loc({pr.B, pr.P, 4}, -7.f), grad_conf({pr.B, pr.P, pr.C}, -7.f) {}
};

TEST(Run, FusedEqualsTheEntryPointBitwise) {
  for (int preset = 0; preset < 4; ++preset) {
    mbx_options_t o;
    mbx_options_init(&o, static_cast<mbx_preset_t>(preset));
    const bool softmax = o.conf_loss == MBX_CONF_LOSS_SOFTMAX_CE;
    Problem pr = random_problem(11 + preset, 3, 200, 5, 4,
                                o.prior_format == MBX_PRIOR_CENTER_SIZE, softmax);
    Outputs a(pr), b(pr);
    ASSERT_EQ(mbx_loss_forward_backward(nullptr, &o, pr.priors.dl(), pr.gt_boxes.dl(),
                                        pr.gt_labels.dl(), pr.gt_counts.dl(), pr.loc.dl(),
                                        pr.conf.dl(), nullptr, a.loss.dl(), a.num_pos.dl(),
                                        a.grad_loc.dl(), a.grad_conf.dl()),
              MBX_STATUS_OK)
        << mbx_last_error();
    mbx_tensors_t t;
    ASSERT_EQ(mbx_tensors_init(&t), MBX_STATUS_OK);
    EXPECT_EQ(t.struct_size, sizeof t);
    t.priors = pr.priors.dl();
    t.gt_boxes = pr.gt_boxes.dl();
    t.gt_labels = pr.gt_labels.dl();
    t.gt_counts = pr.gt_counts.dl();
    t.loc = pr.loc.dl();
    t.conf = pr.conf.dl();
    t.loss = b.loss.dl();
    t.num_pos = b.num_pos.dl();
    t.grad_loc = b.grad_loc.dl();
    t.grad_conf = b.grad_conf.dl();
    ASSERT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD_BACKWARD, &t), MBX_STATUS_OK)
        << mbx_last_error();
    EXPECT_EQ(a.loss.data, b.loss.data);
    EXPECT_EQ(a.num_pos.data, b.num_pos.data);
    EXPECT_EQ(std::memcmp(a.grad_loc.data.data(), b.grad_loc.data.data(),
                          a.grad_loc.data.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(a.grad_conf.data.data(), b.grad_conf.data.data(),
                          a.grad_conf.data.size() * sizeof(float)), 0);
  }
}

// A caller built against the first header with mbx_tensors_t (which ended
// at `boxes`) passes that struct_size; whatever lies beyond it in memory is
// not read, so the optional inputs count as absent.
TEST(Run, TensorsOfACallerBuiltBeforeTheOptionalInputs) {
  mbx_options_t o;
  mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH);
  Problem pr = random_problem(9, 2, 60, 4, 3, true, true);
  Outputs a(pr), b(pr);
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = pr.priors.dl();
  t.gt_boxes = pr.gt_boxes.dl();
  t.gt_labels = pr.gt_labels.dl();
  t.gt_counts = pr.gt_counts.dl();
  t.loc = pr.loc.dl();
  t.conf = pr.conf.dl();
  t.loss = a.loss.dl();
  t.num_pos = a.num_pos.dl();
  ASSERT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_OK) << mbx_last_error();
  HostTensor<int32_t> bad_flags({1});  // would be refused if it were read
  t.gt_flags = bad_flags.dl();
  t.prior_levels = bad_flags.dl();
  t.struct_size = offsetof(mbx_tensors_t, gt_flags);
  t.loss = b.loss.dl();
  t.num_pos = b.num_pos.dl();
  ASSERT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_OK) << mbx_last_error();
  EXPECT_EQ(a.loss.data, b.loss.data);
  EXPECT_EQ(a.num_pos.data, b.num_pos.data);
}

TEST(Run, DecodeEqualsTheEntryPoint) {
  mbx_options_t o;
  mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH);
  Problem pr = random_problem(5, 2, 50, 3, 2, true, true);
  HostTensor<float> a({2, 50, 4}, -7.f), b({2, 50, 4}, -7.f);
  ASSERT_EQ(mbx_decode(nullptr, &o, pr.priors.dl(), pr.loc.dl(), a.dl()), MBX_STATUS_OK);
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = pr.priors.dl();
  t.loc = pr.loc.dl();
  t.boxes = b.dl();
  ASSERT_EQ(mbx_run(nullptr, &o, MBX_OP_DECODE, &t), MBX_STATUS_OK) << mbx_last_error();
  EXPECT_EQ(a.data, b.data);
}

TEST(Run, RefusesWhatTheOperationDoesNotTake) {
  mbx_options_t o;
  mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH);
  Problem pr = random_problem(5, 2, 50, 3, 2, true, true);
  Outputs out(pr);
  HostTensor<int32_t> conf_target({2, 50}, -7);
  mbx_tensors_t t;
  mbx_tensors_init(&t);
  t.priors = pr.priors.dl();
  t.gt_boxes = pr.gt_boxes.dl();
  t.gt_labels = pr.gt_labels.dl();
  t.gt_counts = pr.gt_counts.dl();
  t.loc = pr.loc.dl();
  t.conf = pr.conf.dl();
  t.loss = out.loss.dl();
  t.conf_target = conf_target.dl();  // a MATCH output
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("conf_target: not used by MBX_OP_LOSS_FORWARD"),
            std::string::npos)
      << mbx_last_error();
  t.conf_target = nullptr;
  t.num_classes = 2;
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("num_classes"), std::string::npos);
  t.num_classes = 0;
  EXPECT_EQ(mbx_run(nullptr, &o, static_cast<mbx_op_t>(9), &t), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mbx_last_error()).find("op = 9"), std::string::npos);
  EXPECT_EQ(out.loss[0], -7.0);  // nothing written
  t.struct_size = 8;
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_INVALID_ARGUMENT);
  t.struct_size = offsetof(mbx_tensors_t, gt_flags) - 1;
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_INVALID_ARGUMENT);
  t.struct_size = sizeof t + 8;
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_UNSUPPORTED);
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, nullptr), MBX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(mbx_tensors_init(nullptr), MBX_STATUS_INVALID_ARGUMENT);
  t.struct_size = sizeof t;
  EXPECT_EQ(mbx_run(nullptr, &o, MBX_OP_LOSS_FORWARD, &t), MBX_STATUS_OK) << mbx_last_error();
  EXPECT_NE(out.loss[0], -7.0);
}

}  // namespace
