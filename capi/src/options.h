// mbx_options_t as the core's mbx::Options: defaults, conversion and range
// checks, all driven by the option table (core/common/options_table.h).
#pragma once

#include "common/types.h"
#include "mbx/mbx.h"

namespace mbx::capi {

// Converts (and range-checks) a caller's options; throws mbx::Error.
Options convert_options(const mbx_options_t* user);

}  // namespace mbx::capi
