package org.mbx;

/** Computation paths ({@code mbx_path_t}). */
public enum ComputePath {
  /** CUDA for CUDA tensors, else the fast CPU path (Java passes CPU memory only). */
  AUTO(0),
  /** Plain scalar C++ in float64, single thread: the in-tree reference. */
  CPU_SCALAR(1),
  /** oneTBB + SIMD, float32 math with float64 sums. The default on the CPU. */
  CPU(2),
  /** CUDA kernels (needs CUDA device memory, which the Java layer does not create). */
  CUDA(3);

  private final int code;

  ComputePath(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }
}
