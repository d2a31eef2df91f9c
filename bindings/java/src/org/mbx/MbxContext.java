package org.mbx;

import java.lang.ref.Cleaner;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.mbx.internal.SWIGTYPE_p_mbx_context_t;
import org.mbx.internal.mbx_native;

/**
 * An mbx context: thread count, computation path and cached workspace, so
 * that steady-state calls allocate nothing. Use one context per thread (a
 * second concurrent call on the same context fails with
 * {@link Status#CONTEXT_BUSY}); close it when done (try-with-resources).
 * {@link #close()} waits for calls in flight on other threads; a context that
 * is never closed is freed when it becomes unreachable.
 */
public final class MbxContext implements AutoCloseable {
  static final Cleaner CLEANER = Cleaner.create();

  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private SWIGTYPE_p_mbx_context_t handle;
  private final Cleaner.Cleanable cleanable;

  private static final class Destroy implements Runnable {
    private final long ptr;

    Destroy(long ptr) {
      this.ptr = ptr;
    }

    @Override
    public void run() {
      mbx_native.mbx_context_destroy(new SWIGTYPE_p_mbx_context_t(ptr, false));
    }
  }

  /** Creates a context using all hardware threads and {@link ComputePath#AUTO}. */
  public MbxContext() {
    long[] out = new long[1];
    mbx_native.mbx_context_create(out);
    handle = new SWIGTYPE_p_mbx_context_t(out[0], false);
    cleanable = CLEANER.register(this, new Destroy(out[0]));
  }

  /** For the calls: the open handle, read-locked until {@link #exit()}. */
  SWIGTYPE_p_mbx_context_t enter() {
    lock.readLock().lock();
    if (handle == null) {
      lock.readLock().unlock();
      throw new IllegalStateException("MbxContext is closed");
    }
    return handle;
  }

  void exit() {
    lock.readLock().unlock();
  }

  /** Threads used by the CPU path; 0 = all hardware threads. Results do not depend on it. */
  public MbxContext setNumThreads(int numThreads) {
    SWIGTYPE_p_mbx_context_t h = enter();
    try {
      mbx_native.mbx_context_set_num_threads(h, numThreads);
    } finally {
      exit();
    }
    return this;
  }

  /** Forces a computation path; an unavailable one makes later calls fail. */
  public MbxContext setPath(ComputePath path) {
    SWIGTYPE_p_mbx_context_t h = enter();
    try {
      mbx_native.mbx_context_set_path(h, path.raw());
    } finally {
      exit();
    }
    return this;
  }

  /** Bytes of workspace currently cached. */
  public long workspaceBytes() {
    SWIGTYPE_p_mbx_context_t h = enter();
    try {
      long[] bytes = new long[1];
      mbx_native.mbx_context_workspace_bytes(h, bytes);
      return bytes[0];
    } finally {
      exit();
    }
  }

  /** Frees the cached workspace now. */
  public void releaseWorkspace() {
    SWIGTYPE_p_mbx_context_t h = enter();
    try {
      mbx_native.mbx_context_release_workspace(h);
    } finally {
      exit();
    }
  }

  /** True once {@link #close()} has run. */
  public boolean isClosed() {
    lock.readLock().lock();
    try {
      return handle == null;
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Destroys the context (idempotent). Later calls with it throw IllegalStateException. */
  @Override
  public void close() {
    lock.writeLock().lock();
    try {
      if (handle != null) {
        handle = null;
        cleanable.clean();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }
}
