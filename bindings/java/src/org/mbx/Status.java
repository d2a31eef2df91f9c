package org.mbx;

import org.mbx.internal.mbx_status_t;

/** Status codes of the C API ({@code mbx_status_t}); the values are the library's pinned ones. */
public enum Status {
  /** Success. */
  OK(mbx_status_t.MBX_STATUS_OK),
  /** A bad argument or bad input data; the message says which and what was expected. */
  INVALID_ARGUMENT(mbx_status_t.MBX_STATUS_INVALID_ARGUMENT),
  /** A valid request this build or path cannot serve. */
  UNSUPPORTED(mbx_status_t.MBX_STATUS_UNSUPPORTED),
  /** Host or device memory could not be allocated. */
  OUT_OF_MEMORY(mbx_status_t.MBX_STATUS_OUT_OF_MEMORY),
  /** CUDA was requested but no usable device or driver exists. */
  NO_DEVICE(mbx_status_t.MBX_STATUS_NO_DEVICE),
  /** A CUDA call failed. */
  DEVICE_ERROR(mbx_status_t.MBX_STATUS_DEVICE_ERROR),
  /** The context is being used by another thread right now. */
  CONTEXT_BUSY(mbx_status_t.MBX_STATUS_CONTEXT_BUSY),
  /** A bug in mbx; please report it. */
  INTERNAL_ERROR(mbx_status_t.MBX_STATUS_INTERNAL_ERROR);

  private final mbx_status_t raw;

  Status(mbx_status_t raw) {
    this.raw = raw;
  }

  /** The C enum value. */
  public int code() {
    return raw.swigValue();
  }

  /** The status with the given C value ({@link #INTERNAL_ERROR} for an unknown one). */
  public static Status fromCode(int code) {
    for (Status s : values()) {
      if (s.code() == code) {
        return s;
      }
    }
    return INTERNAL_ERROR;
  }
}
