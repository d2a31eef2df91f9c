// The whole computation for one call — match, encode, losses, mining,
// normalisation, gradients — on each path. capi/ validates and dispatches
// here; each path composes the algorithm stems (match/, encode/, loc_loss/,
// softmax_ce/, focal/, normalize/).
//
// Contract shared by every path: every output in `out` that is non-null is
// completely written; nothing else is touched. Losses and sums accumulate in
// float64 in a fixed order, so results do not depend on the thread count.
#pragma once

#include "common/types.h"

namespace mbx {

// Plain scalar float64 implementation (MBX_PATH_CPU_SCALAR), single-threaded.
void run_scalar(const Options& o, const Inputs& in, const Outputs& out);

// oneTBB + xsimd fast path (MBX_PATH_CPU).
void run_cpu(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex);

// MBX_PATH_CPU's losses with Options::loss_needs_mined_path (HARD_EXAMPLE
// with SOFTMAX_CE, LOGISTIC): the steps of run_scalar with bitwise its
// results for any thread count — images in parallel, the fast matching, the
// rankings from SIMD bounds (softmax_ce/hard_example_cpu.h), gradients
// written directly (pipeline_scalar.cpp, docs/SPEC.md §4.6).
void run_cpu_mined(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex);

// CUDA path (MBX_PATH_CUDA): pipeline.cu, or pipeline_cuda_none.cpp in a
// build without CUDA (throws kNoDevice). Asynchronous on ex.cuda_stream.
void run_cuda(const Options& o, const Inputs& in, const Outputs& out, const Exec& ex);
// Device scratch bytes of the largest CUDA call (match + losses, no
// conf_target / matched_gt / num_pos outputs given) with these options and
// sizes: what a caller-provided workspace must hold (mbx_workspace_size).
// Pure arithmetic, no device needed; throws kNoDevice in a build without CUDA.
std::size_t cuda_workspace_bytes(const Options& o, int64_t B, int64_t P, int64_t G, int64_t C);
// Decode on the device: loc [B,P,4] -> corner boxes [B,P,4], all float32.
void decode_cuda(const Options& o, const Inputs& in, const float* loc, float* boxes,
                 const Exec& ex);

// Host helpers for the CPU paths.
// Upstream gradients (loss_loc, loss_conf) from out.grad_loss, or (1, 1).
void read_upstream(const Outputs& out, double* up_loc, double* up_conf);
// Writes (loss_loc, loss_conf) into out.loss in its dtype.
void write_losses(const Outputs& out, double loss_loc, double loss_conf);

}  // namespace mbx
