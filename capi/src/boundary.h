// The error boundary of the C API: every entry point body runs inside
// MBX_TRY / MBX_CATCH, so no C++ exception crosses into C, and every failure
// leaves its message for mbx_last_error() (thread-local, never printed).
#pragma once

#include <exception>
#include <new>
#include <string>

#include "common/types.h"
#include "mbx/mbx.h"

namespace mbx::capi {

// The message of the last failed call on this thread.
inline thread_local std::string last_error;

inline mbx_status_t set_error(mbx_status_t status, const std::string& message) {
  last_error = message;
  return status;
}

}  // namespace mbx::capi

#define MBX_TRY                 \
  ::mbx::capi::last_error.clear(); \
  try {
#define MBX_CATCH                                                                            \
  }                                                                                          \
  catch (const ::mbx::Error& e) {                                                            \
    return ::mbx::capi::set_error(static_cast<mbx_status_t>(e.status()), e.what());          \
  }                                                                                          \
  catch (const std::bad_alloc&) {                                                            \
    return ::mbx::capi::set_error(MBX_STATUS_OUT_OF_MEMORY, "out of memory");                \
  }                                                                                          \
  catch (const std::exception& e) {                                                          \
    return ::mbx::capi::set_error(MBX_STATUS_INTERNAL_ERROR,                                 \
                                  std::string("internal error: ") + e.what());               \
  }                                                                                          \
  catch (...) {                                                                              \
    return ::mbx::capi::set_error(MBX_STATUS_INTERNAL_ERROR,                                 \
                                  "internal error: unknown exception");                      \
  }
