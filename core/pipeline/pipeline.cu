// MBX_PATH_CUDA: the whole call on one stream, composing the stems' kernels
// (match.cu + bipartite.cu, encode.cu, softmax_ce.cu, logistic.cu,
// hard_example.cu, focal.cu). Asynchronous: no host
// synchronisation, the upstream gradient is read by the kernels, and the
// losses are written by a kernel. Every sum is a fixed-shape tree of float64
// per-block partials reduced in a fixed order: bit-reproducible run to run.
//
// Scratch memory is one device block carved into the arrays below; with a
// context it is the context's workspace slot kScratchSlot (grown once,
// then reused: steady-state calls allocate nothing), otherwise it is
// allocated stream-ordered (cudaMallocAsync / cudaFreeAsync) per call.
#include <string>
#include <vector>

#include "common/cuda_util.cuh"
#include "common/workspace.h"
#include "encode/encode_device.cuh"
#include "focal/focal_device.cuh"
#include "match/atss.h"
#include "match/match_device.cuh"
#include "normalize/normalize.h"
#include "pipeline/pipeline.h"
#include "softmax_ce/hard_example_device.cuh"
#include "softmax_ce/softmax_ce_device.cuh"

namespace mbx {
namespace {

constexpr std::size_t kScratchSlot = 0;
constexpr std::size_t kAlign = 256;

// Sub-allocations of one scratch block (offsets first, pointers later).
class Carve {
 public:
  std::size_t take(std::size_t bytes) {
    const std::size_t at = size_;
    size_ += (bytes + kAlign - 1) / kAlign * kAlign;
    return at;
  }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_ = 0;
};

void check_user_workspace(const Exec& ex, std::size_t bytes, int device_id) {
  if (ex.user_workspace_bytes < bytes)
    throw Error(Status::kInvalidArgument,
                "workspace: this call needs " + std::to_string(bytes) +
                    " bytes of device workspace, the context's workspace has " +
                    std::to_string(ex.user_workspace_bytes) +
                    " (size it with mbx_workspace_size)");
  if (reinterpret_cast<std::uintptr_t>(ex.user_workspace) % kAlign != 0)
    throw Error(Status::kInvalidArgument, "workspace: the pointer must be " +
                                              std::to_string(kAlign) + "-byte aligned");
  cudaPointerAttributes attr{};
  const cudaError_t e = cudaPointerGetAttributes(&attr, ex.user_workspace);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error(Status::kInvalidArgument, std::string("workspace: not a CUDA pointer (") +
                                              cudaGetErrorString(e) + ")");
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
    throw Error(Status::kInvalidArgument,
                "workspace: expected device memory (cudaMalloc / a framework's device "
                "allocator), got host memory");
  if (attr.device != device_id)
    throw Error(Status::kInvalidArgument,
                "workspace: on CUDA device " + std::to_string(attr.device) +
                    ", the tensors are on device " + std::to_string(device_id));
}

// The call's scratch: the caller's workspace (mbx_context_set_workspace),
// the context's cached workspace, or a stream-ordered allocation released
// (stream-ordered) when the call returns or throws. Constructed before the
// first launch, so a refused workspace leaves every output untouched.
class Scratch {
 public:
  Scratch(const Exec& ex, std::size_t bytes, int device_id, cudaStream_t s) : stream_(s) {
    if (bytes == 0) return;
    if (ex.user_workspace) {
      check_user_workspace(ex, bytes, device_id);
      base_ = static_cast<unsigned char*>(ex.user_workspace);
    } else if (ex.workspace) {
      base_ = static_cast<unsigned char*>(ex.workspace->device(kScratchSlot, bytes, device_id));
    } else {
      void* p = nullptr;
      MBX_CUDA_CHECK(cudaMallocAsync(&p, bytes, s));
      base_ = static_cast<unsigned char*>(p);
      owned_ = true;
    }
  }
  ~Scratch() {
    if (owned_) cudaFreeAsync(base_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* at(std::size_t offset) const {
    return reinterpret_cast<T*>(base_ + offset);
  }

 private:
  unsigned char* base_ = nullptr;
  bool owned_ = false;
  cudaStream_t stream_;
};

// normalization_scales (normalize_math.h) on the device, from the device
// positive counts (no host round trip). scales = [loc_scale[B], conf_scale[B]].
__global__ void scales_kernel(int64_t B, const int32_t* num_pos, NormalizeParams s, double* scales) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  normalization_scales(s, B, num_pos, scales, scales + B);
}

constexpr int kFinalBlock = 1024;  // a warp per image up to B = 32

// Per image: a warp sums its partials lane-strided, then a fixed xor tree;
// the images' scaled sums are then added in image order by one thread, as
// run_scalar does. Writes (loss_loc, loss_conf) in the loss dtype.
__global__ void __launch_bounds__(kFinalBlock)
    final_loss_kernel(int64_t B, const double* loc_part, int nb_loc, const double* conf_part,
                      int nb_conf, const double* scales, void* loss, bool loss_f64,
                      double* image_sums /* [2B] scratch */) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  constexpr int kWarps = kFinalBlock / 32;
  for (int64_t b = warp; b < B; b += kWarps) {
    double sl = 0.0, sc = 0.0;
    // Unrolled so that the loads issue together (the adds stay in order:
    // the same sum, without a load latency per partial).
#pragma unroll 8
    for (int i = lane; i < nb_loc; i += 32) sl += loc_part[b * nb_loc + i];
#pragma unroll 8
    for (int i = lane; i < nb_conf; i += 32) sc += conf_part[b * nb_conf + i];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      sl += __shfl_xor_sync(0xffffffffu, sl, off);
      sc += __shfl_xor_sync(0xffffffffu, sc, off);
    }
    if (lane == 0) {
      image_sums[b] = sl;
      image_sums[B + b] = sc;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double ll = 0.0, lc = 0.0;
    for (int64_t b = 0; b < B; ++b) {
      ll += image_sums[b] * scales[b];
      lc += image_sums[B + b] * scales[B + b];
    }
    if (loss_f64) {
      static_cast<double*>(loss)[0] = ll;
      static_cast<double*>(loss)[1] = lc;
    } else {
      static_cast<float*>(loss)[0] = static_cast<float>(ll);
      static_cast<float*>(loss)[1] = static_cast<float>(lc);
    }
  }
}

// Offsets of every scratch array of one call (0 where an output is given
// instead); bytes = the whole block.
struct Layout {
  std::size_t off_conf_target = 0, off_matched_gt = 0, off_num_pos = 0, off_gt_max = 0,
              off_gt_arg = 0, off_atss_candidates = 0, off_scales = 0, off_loc_partials = 0,
              off_conf_partials = 0, off_image_sums = 0, off_row_stats = 0, off_keys = 0, off_weight = 0,
              off_prior_used = 0, off_loss_target = 0, off_he_keys = 0, off_he_order = 0,
              off_he_boxes = 0, off_he_kept = 0;
  int nb_loc = 0, nb_conf = 0;
  std::size_t bytes = 0;
};

// HARD_EXAMPLE mining applies to the mined losses (SOFTMAX_CE, LOGISTIC).
bool hard_example(const Options& o) {
  return o.mining == Mining::kHardExample && o.conf_loss != ConfLoss::kSigmoidFocal;
}

// atss_candidates: K of the call's AtssPlan (assigner = ATSS), else unused.
Layout scratch_layout(const Options& o, int64_t B, int64_t P, int64_t G, int64_t C,
                      bool conf_target_given, bool matched_gt_given, bool num_pos_given, bool losses,
                      int64_t atss_candidates) {
  const bool softmax = o.conf_loss == ConfLoss::kSoftmaxCE;
  const bool logistic = o.conf_loss == ConfLoss::kLogistic;
  Carve c;
  Layout L;
  const std::size_t BP = static_cast<std::size_t>(B * P);
  L.off_conf_target = conf_target_given ? 0 : c.take(BP * sizeof(int32_t));
  L.off_matched_gt = matched_gt_given ? 0 : c.take(BP * sizeof(int32_t));
  L.off_num_pos = num_pos_given ? 0 : c.take(B * sizeof(int32_t));
  L.off_gt_max = c.take(static_cast<std::size_t>(B * G) * sizeof(unsigned long long));
  L.off_gt_arg = c.take(static_cast<std::size_t>(B * G) * sizeof(int32_t));
  if (o.assigner == Assigner::kAtss)
    L.off_atss_candidates = c.take(static_cast<std::size_t>(B * G * atss_candidates) * sizeof(int32_t));
  if (o.force_match == ForceMatch::kBipartite) L.off_prior_used = c.take(BP * sizeof(uint8_t));
  if (losses) {
    L.nb_loc = cuda::loc_loss_blocks(P);
    L.nb_conf = softmax ? cuda::softmax_ce_blocks(P) : logistic ? cuda::logistic_blocks(P) : cuda::focal_blocks(P, C);
    L.off_scales = c.take(2 * B * sizeof(double));
    L.off_loc_partials = c.take(static_cast<std::size_t>(B) * L.nb_loc * sizeof(double));
    L.off_conf_partials = c.take(static_cast<std::size_t>(B) * L.nb_conf * sizeof(double));
    L.off_image_sums = c.take(2 * B * sizeof(double));
    if (softmax) L.off_row_stats = c.take(2 * BP * sizeof(float));  // row_max, then row_log_sum
    if (softmax || logistic) {
      L.off_keys = c.take(BP * sizeof(uint32_t));
      L.off_weight = c.take(BP * sizeof(uint8_t));
    }
    if (hard_example(o)) {
      const std::size_t BN = static_cast<std::size_t>(B * cuda::hard_example_sort_len(P));
      L.off_loss_target = c.take(BP * sizeof(int32_t));
      L.off_he_keys = c.take(BN * sizeof(uint64_t));
      L.off_he_order = c.take(BN * sizeof(int32_t));
      if (o.mining_nms_threshold > 0.0) {
        L.off_he_boxes = c.take(4 * BP * sizeof(float));
        L.off_he_kept = c.take(BP * sizeof(int32_t));
      }
    }
  }
  L.bytes = c.size();
  return L;
}

}  // namespace

std::size_t cuda_workspace_bytes(const Options& o, int64_t B, int64_t P, int64_t G, int64_t C) {
  // ATSS: the most candidates any pyramid of P priors gives a GT on the cuda
  // path, min(P, atss_topk * kAtssCudaMaxLevels).
  const int64_t most = static_cast<int64_t>(o.atss_topk) * kAtssCudaMaxLevels;
  return scratch_layout(o, B, P, G, C, false, false, false, true, P < most ? P : most).bytes;
}

void run_cuda(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex) {
  if (in.device != Device::kCUDA)
    throw Error(Status::kInternal, "run_cuda called with host tensors");
  cuda::DeviceGuard guard(in.device_id);
  const cudaStream_t s = static_cast<cudaStream_t>(ex.cuda_stream);
  const int64_t B = in.B, P = in.P, G = in.G;
  const bool losses = in.loc != nullptr && in.conf != nullptr && (out.wants_loss() || out.wants_grad());
  const bool softmax = o.conf_loss == ConfLoss::kSoftmaxCE;
  const bool logistic = o.conf_loss == ConfLoss::kLogistic;
  const bool hard = hard_example(o);

  // --- scratch layout --------------------------------------------------------
  int64_t atss_candidates = 0;
  if (o.assigner == Assigner::kAtss) {
    const AtssPlan plan = atss_plan(o, in);
    if (plan.levels() > kAtssCudaMaxLevels)
      throw Error(Status::kUnsupported,
                  "prior_levels: " + std::to_string(plan.levels()) +
                      " non-empty pyramid levels; the cuda path takes at most " +
                      std::to_string(kAtssCudaMaxLevels) +
                      " under assigner = ATSS (use the cpu or cpu-scalar path)");
    atss_candidates = plan.K;
  }
  const Layout L = scratch_layout(o, B, P, G, in.C, out.conf_target != nullptr,
                                  out.matched_gt != nullptr, out.num_pos != nullptr, losses,
                                  atss_candidates);
  const std::size_t BP = static_cast<std::size_t>(B * P);
  Scratch scratch(ex, L.bytes, in.device_id, s);

  // --- matching + encoding ---------------------------------------------------
  cuda::MatchBuffers mb;
  mb.conf_target = out.conf_target ? out.conf_target : scratch.at<int32_t>(L.off_conf_target);
  mb.matched_gt = out.matched_gt ? out.matched_gt : scratch.at<int32_t>(L.off_matched_gt);
  mb.num_pos = out.num_pos ? out.num_pos : scratch.at<int32_t>(L.off_num_pos);
  mb.loc_target = out.loc_target;
  mb.gt_max = scratch.at<unsigned long long>(L.off_gt_max);
  mb.gt_arg = scratch.at<int32_t>(L.off_gt_arg);
  if (o.assigner == Assigner::kAtss) mb.atss_candidates = scratch.at<int32_t>(L.off_atss_candidates);
  if (o.force_match == ForceMatch::kBipartite) mb.prior_used = scratch.at<uint8_t>(L.off_prior_used);
  cuda::launch_match(o, in, mb, s);
  if (!losses) return;

  // --- HARD_EXAMPLE: the kept priors; num_pos becomes the kept positives ----
  const int32_t* loss_target = mb.conf_target;  // the targets the losses see
  if (hard) {
    cuda::HardExampleLaunch he;
    he.conf_target = mb.conf_target;
    he.matched_gt = mb.matched_gt;
    he.num_pos = mb.num_pos;
    he.loss_target = scratch.at<int32_t>(L.off_loss_target);
    he.weight = scratch.at<uint8_t>(L.off_weight);
    he.keys = scratch.at<uint64_t>(L.off_he_keys);
    he.order = scratch.at<int32_t>(L.off_he_order);
    if (o.mining_nms_threshold > 0.0) {
      he.boxes = scratch.at<float>(L.off_he_boxes);
      he.kept = scratch.at<int32_t>(L.off_he_kept);
    }
    cuda::launch_hard_example(o, in, he, s);
    loss_target = he.loss_target;
  }

  // --- normalisation, from the device counts ---------------------------------
  double* scales = scratch.at<double>(L.off_scales);
  scales_kernel<<<1, 1, 0, s>>>(B, mb.num_pos, normalize_params(o, P), scales);
  cuda::check_launch("scales_kernel");

  const bool up_f64 = out.grad_loss_dtype == DType::kF64;
  double* loc_partials = scratch.at<double>(L.off_loc_partials);
  double* conf_partials = scratch.at<double>(L.off_conf_partials);

  // --- regression loss --------------------------------------------------------
  cuda::LocLossLaunch ll;
  ll.conf_target = loss_target;
  ll.matched_gt = mb.matched_gt;
  ll.loc_scale = scales;
  ll.grad_loss = out.grad_loss;
  ll.grad_loss_f64 = up_f64;
  ll.grad_loc = out.grad_loc;
  ll.partials = loc_partials;
  ll.nblocks = L.nb_loc;
  cuda::launch_loc_loss(o, in, ll, s);

  // --- classification loss ----------------------------------------------------
  if (softmax || logistic) {
    cuda::SoftmaxCELaunch cl;
    cl.conf_target = loss_target;
    cl.num_pos = mb.num_pos;
    cl.conf_scale = scales + B;
    cl.grad_loss = out.grad_loss;
    cl.grad_loss_f64 = up_f64;
    cl.grad_conf = out.grad_conf;
    cl.want_value = out.wants_loss();
    cl.mine = !hard;
    cl.partials = conf_partials;
    cl.nblocks = L.nb_conf;
    cl.keys = scratch.at<uint32_t>(L.off_keys);
    cl.weight = scratch.at<uint8_t>(L.off_weight);
    if (softmax) {
      cl.row_max = scratch.at<float>(L.off_row_stats);
      cl.row_log_sum = cl.row_max + BP;
      cuda::launch_softmax_ce(o, in, cl, s);
    } else {
      cuda::launch_logistic(o, in, cl, s);
    }
  } else {
    cuda::FocalLaunch fl;
    fl.conf_target = mb.conf_target;
    fl.conf_scale = scales + B;
    fl.grad_loss = out.grad_loss;
    fl.grad_loss_f64 = up_f64;
    fl.grad_conf = out.grad_conf;
    fl.partials = conf_partials;
    fl.nblocks = L.nb_conf;
    cuda::launch_focal(o, in, fl, s);
  }

  if (out.loss) {
    final_loss_kernel<<<1, kFinalBlock, 0, s>>>(B, loc_partials, L.nb_loc, conf_partials, L.nb_conf, scales, out.loss,
                                                 out.loss_dtype == DType::kF64,
                                                 scratch.at<double>(L.off_image_sums));
    cuda::check_launch("final_loss_kernel");
  }
}

void decode_cuda(const Options& o, const Inputs& in, const float* loc, float* boxes,
                 const Exec& ex) {
  cuda::DeviceGuard guard(in.device_id);
  cuda::launch_decode(o, in, loc, boxes, static_cast<cudaStream_t>(ex.cuda_stream));
}

}  // namespace mbx
