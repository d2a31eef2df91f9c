package org.mbx;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;

/**
 * A loss object for a training loop: options plus its own context (workspace
 * cached across steps). Not for concurrent use from several threads (one
 * MultiBoxLoss per thread). Close it to free the context.
 *
 * <pre>{@code
 * try (MultiBoxLoss loss = new MultiBoxLoss(Options.preset("ssd_pytorch"))) {
 *   LossResult r = loss.forwardBackward(priors, gtBoxes, gtLabels, gtCounts, loc, conf);
 * }
 * }</pre>
 */
public final class MultiBoxLoss implements AutoCloseable {
  private final Options options;
  private final MbxContext context;

  /** A loss with the given options and a new context. */
  public MultiBoxLoss(Options options) {
    if (options == null) {
      throw new NullPointerException("options");
    }
    this.options = options;
    this.context = new MbxContext();
  }

  /** A loss with a preset's options ("ssd_pytorch", ...). */
  public MultiBoxLoss(String preset) {
    this(Options.preset(preset));
  }

  public Options options() {
    return options;
  }

  public MbxContext context() {
    return context;
  }

  /** Forward only, on arrays. */
  public LossResult forward(float[] priors, float[] gtBoxes, int[] gtLabels, int[] gtCounts,
      float[] loc, float[] conf) {
    return Mbx.forward(context, options, priors, gtBoxes, gtLabels, gtCounts, loc, conf);
  }

  /** Forward only, on buffers. */
  public LossResult forward(FloatBuffer priors, FloatBuffer gtBoxes, IntBuffer gtLabels,
      IntBuffer gtCounts, FloatBuffer loc, FloatBuffer conf) {
    return Mbx.forward(context, options, priors, gtBoxes, gtLabels, gtCounts, loc, conf);
  }

  /** Fused forward + backward on arrays; gradients in the result. */
  public LossResult forwardBackward(float[] priors, float[] gtBoxes, int[] gtLabels,
      int[] gtCounts, float[] loc, float[] conf) {
    return Mbx.forwardBackward(context, options, priors, gtBoxes, gtLabels, gtCounts, loc,
        conf);
  }

  /** Fused forward + backward on buffers; gradients written to gradLoc / gradConf. */
  public LossResult forwardBackward(FloatBuffer priors, FloatBuffer gtBoxes,
      IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc, FloatBuffer conf,
      FloatBuffer gradLoc, FloatBuffer gradConf) {
    return Mbx.forwardBackward(context, options, priors, gtBoxes, gtLabels, gtCounts, loc,
        conf, gradLoc, gradConf);
  }

  /** Matching with this loss's options; numClasses as in {@link Mbx#match}. */
  public MatchResult match(long numClasses, float[] priors, float[] gtBoxes, int[] gtLabels,
      int[] gtCounts) {
    return Mbx.match(context, options, numClasses, priors, gtBoxes, gtLabels, gtCounts);
  }

  /**
   * Forward only, on arrays, with the optional inputs gtFlags [B*G] and
   * priorLevels [L] (null: absent; see {@link Mbx}).
   */
  public LossResult forward(float[] priors, float[] gtBoxes, int[] gtLabels, int[] gtCounts,
      float[] loc, float[] conf, int[] gtFlags, int[] priorLevels) {
    return Mbx.forward(context, options, priors, gtBoxes, gtLabels, gtCounts, loc, conf,
        gtFlags, priorLevels);
  }

  /** Fused forward + backward on arrays with the optional inputs (null: absent). */
  public LossResult forwardBackward(float[] priors, float[] gtBoxes, int[] gtLabels,
      int[] gtCounts, float[] loc, float[] conf, int[] gtFlags, int[] priorLevels) {
    return Mbx.forwardBackward(context, options, priors, gtBoxes, gtLabels, gtCounts, loc,
        conf, gtFlags, priorLevels);
  }

  /** Matching with the optional inputs (null: absent). */
  public MatchResult match(long numClasses, float[] priors, float[] gtBoxes, int[] gtLabels,
      int[] gtCounts, int[] gtFlags, int[] priorLevels) {
    return Mbx.match(context, options, numClasses, priors, gtBoxes, gtLabels, gtCounts, gtFlags,
        priorLevels);
  }

  @Override
  public void close() {
    context.close();
  }
}
