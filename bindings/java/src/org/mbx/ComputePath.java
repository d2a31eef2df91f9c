package org.mbx;

import org.mbx.internal.mbx_path_t;

/** Computation paths ({@code mbx_path_t}). */
public enum ComputePath {
  /** CUDA for CUDA tensors, else the fast CPU path (Java passes CPU memory only). */
  AUTO(mbx_path_t.MBX_PATH_AUTO),
  /** Plain scalar C++ in float64, single thread: the in-tree reference. */
  CPU_SCALAR(mbx_path_t.MBX_PATH_CPU_SCALAR),
  /** oneTBB + SIMD, float32 math with float64 sums. The default on the CPU. */
  CPU(mbx_path_t.MBX_PATH_CPU),
  /** CUDA kernels (needs CUDA device memory, which the Java layer does not create). */
  CUDA(mbx_path_t.MBX_PATH_CUDA);

  private final mbx_path_t raw;

  ComputePath(mbx_path_t raw) {
    this.raw = raw;
  }

  mbx_path_t raw() {
    return raw;
  }
}
