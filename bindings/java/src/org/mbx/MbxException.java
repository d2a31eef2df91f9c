package org.mbx;

/**
 * A call into mbx failed. Carries the library's {@link Status} and its message
 * ({@code mbx_last_error()}), which names the argument (and image / box /
 * prior index) and what was expected. Checks done by the Java layer before a
 * call (buffer sizes) throw this too, with {@link Status#INVALID_ARGUMENT}.
 */
public class MbxException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status status;

  public MbxException(Status status, String message) {
    super(status + ": " + message);
    this.status = status;
  }

  /** Called from the JNI wrapper (mbx_java.i, MBX_THROW). */
  MbxException(int status, String message) {
    this(Status.fromCode(status), message);
  }

  /** The library's status (never {@link Status#OK}). */
  public Status status() {
    return status;
  }

  /** The message without the status prefix. */
  public String libraryMessage() {
    String m = getMessage();
    String prefix = status + ": ";
    return m.startsWith(prefix) ? m.substring(prefix.length()) : m;
  }
}
