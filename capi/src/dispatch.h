// One run() for every operation (dispatch.cpp): validation, then the core
// path. The C entry points (entry_points.cpp) are wrappers over it.
#pragma once

#include "mbx/mbx.h"

namespace mbx::capi {

// Checks the tensors of `op` and the values, then runs it; throws mbx::Error.
void run(mbx_context_t* ctx, const mbx_options_t* opts, mbx_op_t op, const mbx_tensors_t& t);

}  // namespace mbx::capi
