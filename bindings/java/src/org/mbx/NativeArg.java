package org.mbx;

import java.lang.ref.Reference;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ReadOnlyBufferException;
import java.util.Arrays;
import org.mbx.internal.SWIGTYPE_p_DLTensor;
import org.mbx.internal.mbx_native;

/**
 * One tensor argument of a call: a DLTensor over the buffer's elements from
 * its position on. A direct buffer in native byte order is used in place
 * (zero-copy; the DLTensor's byte_offset is the buffer's position). Anything
 * else (heap buffers, wrapped arrays, other byte orders) is staged through a
 * temporary direct buffer: inputs are copied in, outputs are copied back by
 * {@link #commit()} only after the call succeeded, so a failed call leaves
 * the caller's memory untouched, as the C API promises. Buffer positions and
 * limits are never changed.
 */
final class NativeArg implements AutoCloseable {
  private static final int K_DL_INT = 0;
  private static final int K_DL_FLOAT = 2;

  private final Buffer memory; // the direct buffer the tensor points into
  private final Buffer userOutput; // staged output to copy back, else null
  private final long count;
  private SWIGTYPE_p_DLTensor tensor;

  private NativeArg(Buffer memory, Buffer userOutput, long count, int code, int bits,
      long[] shape, String name) {
    this.memory = memory;
    this.userOutput = userOutput;
    this.count = count;
    long d0 = shape.length > 0 ? shape[0] : 0;
    long d1 = shape.length > 1 ? shape[1] : 0;
    long d2 = shape.length > 2 ? shape[2] : 0;
    long d3 = shape.length > 3 ? shape[3] : 0;
    long byteOffset = (long) memory.position() * (bits / 8);
    tensor = mbx_native.mbx_java_tensor_new(memory, byteOffset, code, bits, shape.length,
        d0, d1, d2, d3);
    if (SWIGTYPE_p_DLTensor.getCPtr(tensor) == 0) {
      throw new MbxException(Status.OUT_OF_MEMORY, name + ": cannot allocate a DLTensor");
    }
  }

  static long count(long... shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new MbxException(Status.INVALID_ARGUMENT, "negative dimension in "
            + Arrays.toString(shape));
      }
      n = Math.multiplyExact(n, d);
    }
    return n;
  }

  private static int checkedCount(String name, Buffer b, boolean output, long... shape) {
    long n = count(shape);
    if (b.remaining() < n) {
      throw new MbxException(Status.INVALID_ARGUMENT, name + ": buffer has " + b.remaining()
          + " elements remaining, expected " + n + " (shape " + Arrays.toString(shape) + ")");
    }
    if (output && b.isReadOnly()) {
      throw new ReadOnlyBufferException();
    }
    return (int) n;
  }

  private static boolean inPlace(Buffer b, ByteOrder order) {
    return b.isDirect() && order == ByteOrder.nativeOrder();
  }

  private static ByteBuffer scratch(long elements, int elementSize) {
    return ByteBuffer.allocateDirect(Math.toIntExact(elements * elementSize))
        .order(ByteOrder.nativeOrder());
  }

  static NativeArg of(String name, FloatBuffer b, boolean output, long... shape) {
    int n = checkedCount(name, b, output, shape);
    if (inPlace(b, b.order())) {
      return new NativeArg(b, null, n, K_DL_FLOAT, 32, shape, name);
    }
    FloatBuffer tmp = scratch(n, 4).asFloatBuffer();
    if (!output) {
      FloatBuffer src = b.duplicate();
      src.limit(src.position() + n);
      tmp.put(src).flip();
    }
    return new NativeArg(tmp, output ? b : null, n, K_DL_FLOAT, 32, shape, name);
  }

  static NativeArg of(String name, IntBuffer b, boolean output, long... shape) {
    int n = checkedCount(name, b, output, shape);
    if (inPlace(b, b.order())) {
      return new NativeArg(b, null, n, K_DL_INT, 32, shape, name);
    }
    IntBuffer tmp = scratch(n, 4).asIntBuffer();
    if (!output) {
      IntBuffer src = b.duplicate();
      src.limit(src.position() + n);
      tmp.put(src).flip();
    }
    return new NativeArg(tmp, output ? b : null, n, K_DL_INT, 32, shape, name);
  }

  static NativeArg of(String name, DoubleBuffer b, boolean output, long... shape) {
    int n = checkedCount(name, b, output, shape);
    if (inPlace(b, b.order())) {
      return new NativeArg(b, null, n, K_DL_FLOAT, 64, shape, name);
    }
    DoubleBuffer tmp = scratch(n, 8).asDoubleBuffer();
    if (!output) {
      DoubleBuffer src = b.duplicate();
      src.limit(src.position() + n);
      tmp.put(src).flip();
    }
    return new NativeArg(tmp, output ? b : null, n, K_DL_FLOAT, 64, shape, name);
  }

  /** A NULL tensor pointer for an optional argument left out. */
  static SWIGTYPE_p_DLTensor get(NativeArg a) {
    return a == null ? null : a.tensor;
  }

  /** After a successful call: copy a staged output back into the caller's buffer. */
  void commit() {
    if (userOutput == null) {
      return;
    }
    int n = (int) count;
    if (userOutput instanceof FloatBuffer) {
      FloatBuffer src = ((FloatBuffer) memory).duplicate();
      src.position(0).limit(n);
      ((FloatBuffer) userOutput).duplicate().put(src);
    } else if (userOutput instanceof IntBuffer) {
      IntBuffer src = ((IntBuffer) memory).duplicate();
      src.position(0).limit(n);
      ((IntBuffer) userOutput).duplicate().put(src);
    } else {
      DoubleBuffer src = ((DoubleBuffer) memory).duplicate();
      src.position(0).limit(n);
      ((DoubleBuffer) userOutput).duplicate().put(src);
    }
  }

  static void commit(NativeArg... args) {
    for (NativeArg a : args) {
      if (a != null) {
        a.commit();
      }
    }
  }

  @Override
  public void close() {
    if (tensor != null) {
      mbx_native.mbx_java_tensor_free(tensor);
      tensor = null;
    }
    // The native call has returned: the memory may be collected from here on.
    Reference.reachabilityFence(memory);
  }
}
