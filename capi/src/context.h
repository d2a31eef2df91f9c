// mbx_context_t: per-caller settings (threads, path, CUDA stream, validation)
// and the cached or caller-provided workspace; one thread at a time.
#pragma once

#include <atomic>
#include <cstddef>

#include "common/types.h"
#include "common/workspace.h"
#include "mbx/mbx.h"

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

namespace mbx::capi {

// Refuses concurrent use of one context (MBX_STATUS_CONTEXT_BUSY) for the
// guard's lifetime. A NULL context is always free.
class ContextGuard {
 public:
  explicit ContextGuard(mbx_context_t* ctx);
  ~ContextGuard();
  ContextGuard(const ContextGuard&) = delete;
  ContextGuard& operator=(const ContextGuard&) = delete;

 private:
  mbx_context_t* ctx_;
};

// How a call on `ctx` (NULL: defaults) runs: threads, stream, workspaces.
Exec exec_of(mbx_context_t* ctx);

// The path a call runs on, from the context's setting and where the tensors
// live; a forced path that does not fit the tensors is an error.
mbx_path_t choose_path(const mbx_context_t* ctx, bool cuda_tensors);

// Whether CUDA inputs get the host-side value checks (the default).
inline bool cuda_validation(const mbx_context_t* ctx) { return !ctx || ctx->cuda_validation; }

}  // namespace mbx::capi
