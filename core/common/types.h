// Core-internal types shared by every algorithm and path. Nothing here knows
// about the C ABI, DLPack or any binding: capi/ converts to these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/options_table.h"

namespace mbx {

enum class Status {
  kOk = 0,
  kInvalidArgument = 1,
  kUnsupported = 2,
  kOutOfMemory = 3,
  kNoDevice = 4,
  kDeviceError = 5,
  kContextBusy = 6,
  kInternal = 7,
};

// The one exception type of the core; capi/ turns it into a status + message.
class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

[[noreturn]] inline void fail(const std::string& message) {
  throw Error(Status::kInvalidArgument, message);
}

enum class DType { kF32, kF16, kBF16, kF64, kI32 };
enum class Device { kCPU, kCUDA };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kF64: return "float64";
    case DType::kI32: return "int32";
  }
  return "?";
}

enum class PriorFormat { kCenterSize = 0, kCorners = 1 };
enum class ForceMatch { kNone = 0, kBestPriorPerGt = 1, kLowQuality = 2, kBipartite = 3 };
enum class LocLoss { kSmoothL1 = 0, kL1 = 1, kL2 = 2, kGIoU = 3, kDIoU = 4, kCIoU = 5 };
enum class ConfLoss { kSoftmaxCE = 0, kSigmoidFocal = 1, kLogistic = 2 };
enum class Normalization {
  kTotalPositives = 0, kPerImage = 1, kNone = 2, kExternal = 3, kBatchSize = 4, kFull = 5
};
enum class NegOverflow { kExclude = 0, kDoubleCountPositives = 1 };
enum class InvalidGt { kError = 0, kSkip = 1 };
enum class Mining { kMaxNegative = 0, kHardExample = 1 };
enum class BoxCoding { kCenterSize = 0, kCorner = 1, kCornerSize = 2 };
enum class Assigner { kMaxIou = 0, kAtss = 1 };

// Every option, one field per row of MBX_OPTION_TABLE (common/options_table.h),
// in table order. The capi layer fills and range-checks them (validate.h)
// before any path runs; a default-constructed Options is zero, not a preset.
#define MBX_OPTION_FIELD_kEnum(type, name) type name{};
#define MBX_OPTION_FIELD_kBool(type, name) type name{};
#define MBX_OPTION_FIELD_kInt(type, name) type name{};
#define MBX_OPTION_FIELD_kReal(type, name) type name{};
#define MBX_OPTION_FIELD_kReal4(type, name) type name[4]{};
struct Options {
#define MBX_X(name, kind, type, def, range, choices, doc) MBX_OPTION_FIELD_##kind(type, name)
  MBX_OPTION_TABLE(MBX_X)
#undef MBX_X

  // beta == 0 or L1 both mean |d|.
  bool loc_is_l1() const {
    return loc_loss == LocLoss::kL1 || (loc_loss == LocLoss::kSmoothL1 && smooth_l1_beta == 0.0);
  }
  // The loss options added with the Caffe system that the cpu path runs
  // through run_cpu_mined, the cpu-scalar steps with SIMD-bounded rankings
  // (docs/SPEC.md §4.6): LOGISTIC, and HARD_EXAMPLE with SOFTMAX_CE
  // (SIGMOID_FOCAL does not mine); BIPARTITE, L2, the box codings and
  // encode_variance_in_target run on the fast path itself.
  bool loss_needs_mined_path() const {
    return conf_loss == ConfLoss::kLogistic ||
           (mining == Mining::kHardExample && conf_loss == ConfLoss::kSoftmaxCE);
  }
};

// What a call asks for. Input pointers are already validated for shape,
// dtype, device and (on the host) content. Dimensions: B images, P priors,
// C logit columns, G GT rows per image.
struct Inputs {
  int64_t B = 0, P = 0, C = 0, G = 0;
  const float* priors = nullptr;      // [P,4]
  const float* gt_boxes = nullptr;    // [B,G,4]
  const int32_t* gt_labels = nullptr; // [B,G]
  const int32_t* gt_counts = nullptr; // [B]
  const void* loc = nullptr;          // [B,P,4] of loc_dtype (null for match)
  const void* conf = nullptr;         // [B,P,C] of conf_dtype (null for match)
  DType loc_dtype = DType::kF32;
  DType conf_dtype = DType::kF32;
  int64_t num_classes = 0;            // K (labels in [0,K)); 0 = unchecked
  Device device = Device::kCPU;
  int device_id = 0;
  // Per GT row (B*G bytes, host) 1 = use the row, 0 = skip it. Null: every
  // row < gt_counts[b] is used. Filled by validation under InvalidGt::kSkip.
  const uint8_t* gt_valid = nullptr;
  // Optional inputs (docs/SPEC.md §2): per GT row flags [B,G] on the input
  // device (bit 0: ignore region; null = all 0), and the priors per pyramid
  // level [L], always on the host (null: one level of P priors).
  const int32_t* gt_flags = nullptr;
  const int32_t* prior_levels = nullptr;
  int64_t L = 0;
};

// Outputs; a null pointer means "not wanted". Every requested output is
// fully written. Gradient dtypes follow loc/conf.
struct Outputs {
  int32_t* conf_target = nullptr;     // [B,P]
  int32_t* matched_gt = nullptr;      // [B,P]
  float* loc_target = nullptr;        // [B,P,4]
  int32_t* num_pos = nullptr;         // [B]
  void* loss = nullptr;               // [2] (loss_loc, loss_conf)
  DType loss_dtype = DType::kF64;
  const void* grad_loss = nullptr;    // [2] upstream gradient; null = (1,1)
  DType grad_loss_dtype = DType::kF64;
  void* grad_loc = nullptr;           // [B,P,4]
  void* grad_conf = nullptr;          // [B,P,C]

  bool wants_loss() const { return loss != nullptr; }
  bool wants_grad() const { return grad_loc != nullptr || grad_conf != nullptr; }
};

class Workspace;  // workspace.h

// How to run: thread count, stream, cached scratch memory.
struct Exec {
  int num_threads = 0;            // 0 = all
  void* cuda_stream = nullptr;    // cudaStream_t
  Workspace* workspace = nullptr; // may be null: allocate per call
  // Caller-provided device workspace (mbx_context_set_workspace): the CUDA
  // path carves its scratch from it and allocates nothing; null = unset.
  void* user_workspace = nullptr;
  std::size_t user_workspace_bytes = 0;
};

}  // namespace mbx
