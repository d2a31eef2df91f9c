package org.mbx;

/** Status codes of the C API ({@code mbx_status_t}); the numeric values are pinned. */
public enum Status {
  /** Success. */
  OK(0),
  /** A bad argument or bad input data; the message says which and what was expected. */
  INVALID_ARGUMENT(1),
  /** A valid request this build or path cannot serve. */
  UNSUPPORTED(2),
  /** Host or device memory could not be allocated. */
  OUT_OF_MEMORY(3),
  /** CUDA was requested but no usable device or driver exists. */
  NO_DEVICE(4),
  /** A CUDA call failed. */
  DEVICE_ERROR(5),
  /** The context is being used by another thread right now. */
  CONTEXT_BUSY(6),
  /** A bug in mbx; please report it. */
  INTERNAL_ERROR(7);

  private final int code;

  Status(int code) {
    this.code = code;
  }

  /** The C enum value. */
  public int code() {
    return code;
  }

  /** The status with the given C value ({@link #INTERNAL_ERROR} for an unknown one). */
  public static Status fromCode(int code) {
    for (Status s : values()) {
      if (s.code == code) {
        return s;
      }
    }
    return INTERNAL_ERROR;
  }
}
