#include "context.h"

#include <climits>
#include <string>

#include "boundary.h"
#include "common/device_memory.h"
#include "options.h"
#include "pipeline/pipeline.h"

namespace mbx::capi {

ContextGuard::ContextGuard(mbx_context_t* ctx) : ctx_(ctx) {
  if (ctx_ && ctx_->busy.exchange(true, std::memory_order_acquire))
    throw Error(Status::kContextBusy,
                "ctx: this mbx_context_t is being used by another thread; use one context "
                "per thread");
}

ContextGuard::~ContextGuard() {
  if (ctx_) ctx_->busy.store(false, std::memory_order_release);
}

Exec exec_of(mbx_context_t* ctx) {
  Exec ex;
  if (!ctx) return ex;
  ex.num_threads = ctx->num_threads;
  ex.cuda_stream = ctx->cuda_stream;
  ex.workspace = &ctx->workspace;
  ex.user_workspace = ctx->user_workspace;
  ex.user_workspace_bytes = ctx->user_workspace_bytes;
  return ex;
}

mbx_path_t choose_path(const mbx_context_t* ctx, bool cuda_tensors) {
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

}  // namespace mbx::capi

using mbx::Error;
using mbx::Status;
using mbx::fail;
using mbx::capi::ContextGuard;

extern "C" {

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
  const mbx::Options o = mbx::capi::convert_options(opts);
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

}  // extern "C"
