package org.mbx;

import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Objects;
import org.mbx.internal.SWIGTYPE_p_mbx_context_t;
import org.mbx.internal.mbx_native;
import org.mbx.internal.mbx_op_t;
import org.mbx.internal.mbx_tensors_t;

/**
 * The mbx entry points: matching, loss forward / backward / fused
 * forward+backward, decoding and prior generation.
 *
 * <h2>Tensors</h2>
 * All tensors are flat, row-major, float32 ({@link FloatBuffer} /
 * {@code float[]}) or int32 ({@link IntBuffer} / {@code int[]}). A buffer's
 * elements are those from its position to its limit; positions are never
 * moved. Direct buffers in native byte order ({@link #allocateFloats},
 * {@link #allocateInts}) are passed to the library without a copy; arrays and
 * heap buffers are copied in and out.
 *
 * <h2>Dimensions</h2>
 * Inferred from the element counts: {@code P = priors/4}, {@code B = gtCounts},
 * {@code G = gtLabels/B}, {@code C = conf/(B*P)}; gtBoxes must hold B*G*4 and
 * loc B*P*4 elements, outputs at least as many as they receive.
 *
 * <h2>Optional inputs</h2>
 * The overloads with {@code gtFlags} and {@code priorLevels} (each may be
 * null: absent) take the library's optional int32 inputs: {@code gtFlags}
 * [B*G] per-GT flags (bit 0: an ignore region; the other bits must be 0) and
 * {@code priorLevels} [L], the number of priors of each pyramid level in
 * prior order (sum P; used by the ATSS assigner, see
 * {@link #retinanetPriorLevels}). Every call goes through the library's
 * mbx_run with an mbx_tensors_t whose fields are set by name.
 *
 * <h2>Errors</h2>
 * {@link MbxException} with the library's status and message; null for a
 * required argument: NullPointerException; a closed context:
 * IllegalStateException. A failed call writes no output.
 *
 * <p>{@code ctx} may be null everywhere (library defaults, no workspace
 * caching).
 */
public final class Mbx {
  static {
    NativeLoader.load();
  }

  private Mbx() {}

  /** Runtime library version "MAJOR.MINOR.PATCH". */
  public static String version() {
    return mbx_native.mbx_version();
  }

  /** True when the library was built with CUDA and a device is usable. */
  public static boolean cudaAvailable() {
    return mbx_native.mbx_cuda_available() != 0;
  }

  /** A direct, native-order float buffer of n elements (zero-copy argument). */
  public static FloatBuffer allocateFloats(int n) {
    return ByteBuffer.allocateDirect(Math.multiplyExact(n, 4)).order(ByteOrder.nativeOrder())
        .asFloatBuffer();
  }

  /** A direct, native-order int buffer of n elements (zero-copy argument). */
  public static IntBuffer allocateInts(int n) {
    return ByteBuffer.allocateDirect(Math.multiplyExact(n, 4)).order(ByteOrder.nativeOrder())
        .asIntBuffer();
  }

  // --- plumbing -------------------------------------------------------------

  private interface Call {
    void run(SWIGTYPE_p_mbx_context_t handle);
  }

  private static void call(MbxContext ctx, Options opts, Call c) {
    if (ctx == null) {
      c.run(null);
    } else {
      SWIGTYPE_p_mbx_context_t h = ctx.enter();
      try {
        c.run(h);
      } finally {
        ctx.exit();
      }
    }
    Reference.reachabilityFence(opts);
  }

  /** The mbx_tensors_t of one mbx_run call; its native memory is freed on close. */
  private static final class RunTensors implements AutoCloseable {
    final mbx_tensors_t raw = new mbx_tensors_t();

    RunTensors() {
      mbx_native.mbx_tensors_init(raw);
    }

    @Override
    public void close() {
      raw.delete();
    }
  }

  private static void run(MbxContext ctx, Options opts, mbx_op_t op, RunTensors t) {
    call(ctx, opts, h -> mbx_native.mbx_run(h, opts.raw(), op, t.raw));
  }

  /** gt_flags [B, G], or null when not given. */
  private static NativeArg flagsArg(IntBuffer gtFlags, Dims d) {
    return gtFlags == null ? null : NativeArg.of("gt_flags", gtFlags, false, d.b, d.g);
  }

  /** prior_levels [L] (L = the buffer's remaining elements), or null when not given. */
  private static NativeArg levelsArg(IntBuffer priorLevels) {
    return priorLevels == null ? null
        : NativeArg.of("prior_levels", priorLevels, false, priorLevels.remaining());
  }

  private static IntBuffer wrap(int[] a) {
    return a == null ? null : IntBuffer.wrap(a);
  }

  private static MbxException shapeError(String message) {
    return new MbxException(Status.INVALID_ARGUMENT, message);
  }

  /** Dimensions of one loss / match call, inferred from the element counts. */
  private static final class Dims {
    final long b;
    final long p;
    final long g;
    final long c;

    Dims(FloatBuffer priors, FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts,
        FloatBuffer loc, FloatBuffer conf) {
      Objects.requireNonNull(priors, "priors");
      Objects.requireNonNull(gtBoxes, "gt_boxes");
      Objects.requireNonNull(gtLabels, "gt_labels");
      Objects.requireNonNull(gtCounts, "gt_counts");
      if (priors.remaining() % 4 != 0) {
        throw shapeError("priors: " + priors.remaining()
            + " elements is not a multiple of 4 (expected [P, 4])");
      }
      p = priors.remaining() / 4;
      b = gtCounts.remaining();
      if (b == 0) {
        g = 0;
      } else {
        if (gtLabels.remaining() % b != 0) {
          throw shapeError("gt_labels: " + gtLabels.remaining()
              + " elements is not a multiple of B = " + b + " (expected [B, G])");
        }
        g = gtLabels.remaining() / b;
      }
      if (gtBoxes.remaining() != b * g * 4) {
        throw shapeError("gt_boxes: " + gtBoxes.remaining() + " elements, expected B*G*4 = "
            + (b * g * 4) + " (B = " + b + ", G = " + g + ")");
      }
      if (loc != null && loc.remaining() != b * p * 4) {
        throw shapeError("loc: " + loc.remaining() + " elements, expected B*P*4 = "
            + (b * p * 4) + " (B = " + b + ", P = " + p + ")");
      }
      if (conf != null) {
        long bp = b * p;
        if (bp == 0 ? conf.remaining() != 0 : conf.remaining() % bp != 0) {
          throw shapeError("conf: " + conf.remaining()
              + " elements is not a multiple of B*P = " + bp + " (expected [B, P, C])");
        }
        c = bp == 0 ? 0 : conf.remaining() / bp;
      } else {
        c = 0;
      }
    }
  }

  // --- matching -------------------------------------------------------------

  /**
   * Matches GT boxes to priors and encodes regression targets (docs/SPEC.md §2, §3).
   *
   * @param numClasses K: labels must lie in [0, K); 0 checks only labels >= 0
   * @param confTarget out [B*P]: label+1 positive, 0 negative, -1 ignored
   * @param matchedGt out [B*P] GT row of positives else -1; may be null
   * @param locTarget out [B*P*4] encoded targets; may be null
   * @param numPos out [B] positives per image; may be null
   */
  public static void match(MbxContext ctx, Options opts, long numClasses, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, IntBuffer confTarget,
      IntBuffer matchedGt, FloatBuffer locTarget, IntBuffer numPos) {
    match(ctx, opts, numClasses, priors, gtBoxes, gtLabels, gtCounts, null, null, confTarget,
        matchedGt, locTarget, numPos);
  }

  /**
   * {@link #match(MbxContext, Options, long, FloatBuffer, FloatBuffer, IntBuffer, IntBuffer,
   * IntBuffer, IntBuffer, FloatBuffer, IntBuffer)} with the optional inputs.
   *
   * @param gtFlags [B*G] int32 per-GT flags, or null
   * @param priorLevels [L] int32 priors per pyramid level, or null
   */
  public static void match(MbxContext ctx, Options opts, long numClasses, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, IntBuffer gtFlags,
      IntBuffer priorLevels, IntBuffer confTarget, IntBuffer matchedGt, FloatBuffer locTarget,
      IntBuffer numPos) {
    Objects.requireNonNull(opts, "opts");
    Objects.requireNonNull(confTarget, "conf_target");
    Dims d = new Dims(priors, gtBoxes, gtLabels, gtCounts, null, null);
    try (NativeArg aPriors = NativeArg.of("priors", priors, false, d.p, 4);
        NativeArg aBoxes = NativeArg.of("gt_boxes", gtBoxes, false, d.b, d.g, 4);
        NativeArg aLabels = NativeArg.of("gt_labels", gtLabels, false, d.b, d.g);
        NativeArg aCounts = NativeArg.of("gt_counts", gtCounts, false, d.b);
        NativeArg aConfT = NativeArg.of("conf_target", confTarget, true, d.b, d.p);
        NativeArg aMatched = matchedGt == null ? null
            : NativeArg.of("matched_gt", matchedGt, true, d.b, d.p);
        NativeArg aLocT = locTarget == null ? null
            : NativeArg.of("loc_target", locTarget, true, d.b, d.p, 4);
        NativeArg aNumPos = numPos == null ? null
            : NativeArg.of("num_pos", numPos, true, d.b);
        NativeArg aFlags = flagsArg(gtFlags, d);
        NativeArg aLevels = levelsArg(priorLevels);
        RunTensors t = new RunTensors()) {
      t.raw.setNum_classes(numClasses);
      t.raw.setPriors(NativeArg.get(aPriors));
      t.raw.setGt_boxes(NativeArg.get(aBoxes));
      t.raw.setGt_labels(NativeArg.get(aLabels));
      t.raw.setGt_counts(NativeArg.get(aCounts));
      t.raw.setGt_flags(NativeArg.get(aFlags));
      t.raw.setPrior_levels(NativeArg.get(aLevels));
      t.raw.setConf_target(NativeArg.get(aConfT));
      t.raw.setMatched_gt(NativeArg.get(aMatched));
      t.raw.setLoc_target(NativeArg.get(aLocT));
      t.raw.setNum_pos(NativeArg.get(aNumPos));
      run(ctx, opts, mbx_op_t.MBX_OP_MATCH, t);
      NativeArg.commit(aConfT, aMatched, aLocT, aNumPos);
    }
  }

  /** {@link #match(MbxContext, Options, long, FloatBuffer, FloatBuffer, IntBuffer, IntBuffer,
   *  IntBuffer, IntBuffer, FloatBuffer, IntBuffer)} on arrays, returning every output. */
  public static MatchResult match(MbxContext ctx, Options opts, long numClasses, float[] priors,
      float[] gtBoxes, int[] gtLabels, int[] gtCounts) {
    return match(ctx, opts, numClasses, priors, gtBoxes, gtLabels, gtCounts, null, null);
  }

  /** Match on arrays with the optional inputs (gtFlags [B*G], priorLevels [L]; null: absent). */
  public static MatchResult match(MbxContext ctx, Options opts, long numClasses, float[] priors,
      float[] gtBoxes, int[] gtLabels, int[] gtCounts, int[] gtFlags, int[] priorLevels) {
    Dims d = new Dims(FloatBuffer.wrap(priors), FloatBuffer.wrap(gtBoxes),
        IntBuffer.wrap(gtLabels), IntBuffer.wrap(gtCounts), null, null);
    int bp = Math.toIntExact(d.b * d.p);
    int[] confTarget = new int[bp];
    int[] matchedGt = new int[bp];
    float[] locTarget = new float[Math.multiplyExact(bp, 4)];
    int[] numPos = new int[(int) d.b];
    match(ctx, opts, numClasses, FloatBuffer.wrap(priors), FloatBuffer.wrap(gtBoxes),
        IntBuffer.wrap(gtLabels), IntBuffer.wrap(gtCounts), wrap(gtFlags), wrap(priorLevels),
        IntBuffer.wrap(confTarget),
        IntBuffer.wrap(matchedGt), FloatBuffer.wrap(locTarget), IntBuffer.wrap(numPos));
    return new MatchResult(confTarget, matchedGt, locTarget, numPos);
  }

  // --- loss -----------------------------------------------------------------

  private static LossResult loss(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, IntBuffer gtFlags, IntBuffer priorLevels, boolean forward,
      double gradLossLoc, double gradLossConf, FloatBuffer gradLoc, FloatBuffer gradConf) {
    Objects.requireNonNull(opts, "opts");
    Objects.requireNonNull(loc, "loc");
    Objects.requireNonNull(conf, "conf");
    boolean backward = gradLoc != null || gradConf != null;
    if (backward) {
      Objects.requireNonNull(gradLoc, "grad_loc");
      Objects.requireNonNull(gradConf, "grad_conf");
    }
    Dims d = new Dims(priors, gtBoxes, gtLabels, gtCounts, loc, conf);
    DoubleBuffer lossOut = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder())
        .asDoubleBuffer();
    DoubleBuffer gradLoss = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder())
        .asDoubleBuffer().put(0, gradLossLoc).put(1, gradLossConf);
    IntBuffer numPos = allocateInts((int) d.b);
    try (NativeArg aPriors = NativeArg.of("priors", priors, false, d.p, 4);
        NativeArg aBoxes = NativeArg.of("gt_boxes", gtBoxes, false, d.b, d.g, 4);
        NativeArg aLabels = NativeArg.of("gt_labels", gtLabels, false, d.b, d.g);
        NativeArg aCounts = NativeArg.of("gt_counts", gtCounts, false, d.b);
        NativeArg aLoc = NativeArg.of("loc", loc, false, d.b, d.p, 4);
        NativeArg aConf = NativeArg.of("conf", conf, false, d.b, d.p, d.c);
        NativeArg aGradLoss = NativeArg.of("grad_loss", gradLoss, false, 2);
        NativeArg aLoss = NativeArg.of("loss", lossOut, true, 2);
        NativeArg aNumPos = NativeArg.of("num_pos", numPos, true, d.b);
        NativeArg aGradLoc = backward ? NativeArg.of("grad_loc", gradLoc, true, d.b, d.p, 4)
            : null;
        NativeArg aGradConf = backward
            ? NativeArg.of("grad_conf", gradConf, true, d.b, d.p, d.c) : null;
        NativeArg aFlags = flagsArg(gtFlags, d);
        NativeArg aLevels = levelsArg(priorLevels);
        RunTensors t = new RunTensors()) {
      t.raw.setPriors(NativeArg.get(aPriors));
      t.raw.setGt_boxes(NativeArg.get(aBoxes));
      t.raw.setGt_labels(NativeArg.get(aLabels));
      t.raw.setGt_counts(NativeArg.get(aCounts));
      t.raw.setLoc(NativeArg.get(aLoc));
      t.raw.setConf(NativeArg.get(aConf));
      t.raw.setGt_flags(NativeArg.get(aFlags));
      t.raw.setPrior_levels(NativeArg.get(aLevels));
      if (backward) {
        t.raw.setGrad_loss(NativeArg.get(aGradLoss));
        t.raw.setGrad_loc(NativeArg.get(aGradLoc));
        t.raw.setGrad_conf(NativeArg.get(aGradConf));
      }
      if (forward) {
        t.raw.setLoss(NativeArg.get(aLoss));
        t.raw.setNum_pos(NativeArg.get(aNumPos));
      }
      run(ctx, opts, !backward ? mbx_op_t.MBX_OP_LOSS_FORWARD
          : forward ? mbx_op_t.MBX_OP_LOSS_FORWARD_BACKWARD : mbx_op_t.MBX_OP_LOSS_BACKWARD, t);
      NativeArg.commit(aGradLoc, aGradConf);
    }
    if (!forward) {
      return null;
    }
    int[] np = new int[(int) d.b];
    numPos.get(0, np);
    return new LossResult(lossOut.get(0), lossOut.get(1), np, null, null);
  }

  /** Loss forward only (evaluation): losses and positives per image. */
  public static LossResult forward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf) {
    return forward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, null, null);
  }

  /** Loss forward only, with the optional inputs (gtFlags [B*G], priorLevels [L]; null: absent). */
  public static LossResult forward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, IntBuffer gtFlags, IntBuffer priorLevels) {
    return loss(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, gtFlags, priorLevels,
        true, 1, 1, null, null);
  }

  /** Loss forward only, on arrays. */
  public static LossResult forward(MbxContext ctx, Options opts, float[] priors,
      float[] gtBoxes, int[] gtLabels, int[] gtCounts, float[] loc, float[] conf) {
    return forward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, null, null);
  }

  /** Loss forward only, on arrays, with the optional inputs (null: absent). */
  public static LossResult forward(MbxContext ctx, Options opts, float[] priors,
      float[] gtBoxes, int[] gtLabels, int[] gtCounts, float[] loc, float[] conf, int[] gtFlags,
      int[] priorLevels) {
    return forward(ctx, opts, FloatBuffer.wrap(priors), FloatBuffer.wrap(gtBoxes),
        IntBuffer.wrap(gtLabels), IntBuffer.wrap(gtCounts), FloatBuffer.wrap(loc),
        FloatBuffer.wrap(conf), wrap(gtFlags), wrap(priorLevels));
  }

  /**
   * Fused forward + backward (the fastest training call). Gradients are
   * written to gradLoc [B*P*4] and gradConf [B*P*C], each scaled by the
   * upstream gradient of its loss.
   */
  public static LossResult forwardBackward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, double gradLossLoc, double gradLossConf, FloatBuffer gradLoc,
      FloatBuffer gradConf) {
    return forwardBackward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, null,
        null, gradLossLoc, gradLossConf, gradLoc, gradConf);
  }

  /**
   * Fused forward + backward with the optional inputs (gtFlags [B*G],
   * priorLevels [L]; null: absent).
   */
  public static LossResult forwardBackward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, IntBuffer gtFlags, IntBuffer priorLevels, double gradLossLoc,
      double gradLossConf, FloatBuffer gradLoc, FloatBuffer gradConf) {
    Objects.requireNonNull(gradLoc, "grad_loc");
    Objects.requireNonNull(gradConf, "grad_conf");
    return loss(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, gtFlags, priorLevels,
        true, gradLossLoc, gradLossConf, gradLoc, gradConf);
  }

  /** Fused forward + backward with upstream gradients (1, 1). */
  public static LossResult forwardBackward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, FloatBuffer gradLoc, FloatBuffer gradConf) {
    return forwardBackward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, 1, 1,
        gradLoc, gradConf);
  }

  /** Fused forward + backward on arrays, upstream gradients (1, 1); gradients in the result. */
  public static LossResult forwardBackward(MbxContext ctx, Options opts, float[] priors,
      float[] gtBoxes, int[] gtLabels, int[] gtCounts, float[] loc, float[] conf) {
    return forwardBackward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, null,
        null);
  }

  /** Fused forward + backward on arrays with the optional inputs (null: absent). */
  public static LossResult forwardBackward(MbxContext ctx, Options opts, float[] priors,
      float[] gtBoxes, int[] gtLabels, int[] gtCounts, float[] loc, float[] conf, int[] gtFlags,
      int[] priorLevels) {
    float[] gradLoc = new float[loc.length];
    float[] gradConf = new float[conf.length];
    LossResult r = forwardBackward(ctx, opts, FloatBuffer.wrap(priors),
        FloatBuffer.wrap(gtBoxes), IntBuffer.wrap(gtLabels), IntBuffer.wrap(gtCounts),
        FloatBuffer.wrap(loc), FloatBuffer.wrap(conf), wrap(gtFlags), wrap(priorLevels), 1, 1,
        FloatBuffer.wrap(gradLoc), FloatBuffer.wrap(gradConf));
    return new LossResult(r.lossLoc(), r.lossConf(), r.numPos(), gradLoc, gradConf);
  }

  /**
   * Gradients only (matching and mining recomputed; prefer forwardBackward in
   * training), scaled by the upstream gradients of (loss_loc, loss_conf).
   */
  public static void backward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, double gradLossLoc, double gradLossConf, FloatBuffer gradLoc,
      FloatBuffer gradConf) {
    backward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, null, null, gradLossLoc,
        gradLossConf, gradLoc, gradConf);
  }

  /** Gradients only, with the optional inputs (gtFlags [B*G], priorLevels [L]; null: absent). */
  public static void backward(MbxContext ctx, Options opts, FloatBuffer priors,
      FloatBuffer gtBoxes, IntBuffer gtLabels, IntBuffer gtCounts, FloatBuffer loc,
      FloatBuffer conf, IntBuffer gtFlags, IntBuffer priorLevels, double gradLossLoc,
      double gradLossConf, FloatBuffer gradLoc, FloatBuffer gradConf) {
    Objects.requireNonNull(gradLoc, "grad_loc");
    Objects.requireNonNull(gradConf, "grad_conf");
    loss(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, gtFlags, priorLevels, false,
        gradLossLoc, gradLossConf, gradLoc, gradConf);
  }

  // --- decoding and priors ---------------------------------------------------

  /**
   * Decodes offsets loc [B*P*4] against priors [P*4] into corner boxes [B*P*4]
   * (uses the options' prior_format and variances).
   */
  public static void decode(MbxContext ctx, Options opts, FloatBuffer priors, FloatBuffer loc,
      FloatBuffer boxes) {
    Objects.requireNonNull(opts, "opts");
    Objects.requireNonNull(priors, "priors");
    Objects.requireNonNull(loc, "loc");
    Objects.requireNonNull(boxes, "boxes");
    if (priors.remaining() % 4 != 0) {
      throw shapeError("priors: " + priors.remaining()
          + " elements is not a multiple of 4 (expected [P, 4])");
    }
    long p = priors.remaining() / 4;
    if (p == 0 ? loc.remaining() != 0 : loc.remaining() % (p * 4) != 0) {
      throw shapeError("loc: " + loc.remaining() + " elements is not a multiple of P*4 = "
          + (p * 4) + " (expected [B, P, 4])");
    }
    long b = p == 0 ? 0 : loc.remaining() / (p * 4);
    try (NativeArg aPriors = NativeArg.of("priors", priors, false, p, 4);
        NativeArg aLoc = NativeArg.of("loc", loc, false, b, p, 4);
        NativeArg aBoxes = NativeArg.of("boxes", boxes, true, b, p, 4)) {
      call(ctx, opts, h -> mbx_native.mbx_decode(h, opts.raw(), NativeArg.get(aPriors),
          NativeArg.get(aLoc), NativeArg.get(aBoxes)));
      aBoxes.commit();
    }
  }

  /** Decode on arrays; returns the corner boxes [B*P*4]. */
  public static float[] decode(MbxContext ctx, Options opts, float[] priors, float[] loc) {
    float[] boxes = new float[loc.length];
    decode(ctx, opts, FloatBuffer.wrap(priors), FloatBuffer.wrap(loc), FloatBuffer.wrap(boxes));
    return boxes;
  }

  /** Number of priors of an SSD layout. */
  public static long ssdPriorCount(SsdConfig config) {
    long[] n = new long[1];
    mbx_native.mbx_priors_ssd_count(config.raw(), n);
    return n[0];
  }

  /** SSD priors (ssd.pytorch PriorBox), CENTER_SIZE, into out [P*4]. */
  public static void ssdPriors(SsdConfig config, FloatBuffer out) {
    long p = ssdPriorCount(config);
    try (NativeArg a = NativeArg.of("priors", out, true, p, 4)) {
      mbx_native.mbx_priors_ssd(config.raw(), NativeArg.get(a));
      a.commit();
    }
  }

  /** SSD priors (ssd.pytorch PriorBox), CENTER_SIZE, [P*4]. */
  public static float[] ssdPriors(SsdConfig config) {
    float[] out = new float[Math.toIntExact(ssdPriorCount(config) * 4)];
    ssdPriors(config, FloatBuffer.wrap(out));
    return out;
  }

  /** Number of RetinaNet anchors for an image of height x width pixels. */
  public static long retinanetPriorCount(long imageHeight, long imageWidth) {
    long[] n = new long[1];
    mbx_native.mbx_priors_retinanet_count(imageHeight, imageWidth, n);
    return n[0];
  }

  /** RetinaNet anchors (yhenon Anchors), CORNERS in pixels, into out [P*4]. */
  public static void retinanetPriors(long imageHeight, long imageWidth, FloatBuffer out) {
    long p = retinanetPriorCount(imageHeight, imageWidth);
    try (NativeArg a = NativeArg.of("priors", out, true, p, 4)) {
      mbx_native.mbx_priors_retinanet(imageHeight, imageWidth, NativeArg.get(a));
      a.commit();
    }
  }

  /** RetinaNet anchors (yhenon Anchors), CORNERS in pixels, [P*4]. */
  public static float[] retinanetPriors(long imageHeight, long imageWidth) {
    float[] out = new float[Math.toIntExact(retinanetPriorCount(imageHeight, imageWidth) * 4)];
    retinanetPriors(imageHeight, imageWidth, FloatBuffer.wrap(out));
    return out;
  }

  /** Pyramid levels of {@link #retinanetPriors} (levels 3..7). */
  public static final int RETINANET_LEVELS = mbx_native.MBX_RETINANET_NUM_LEVELS;

  /**
   * The number of anchors of each pyramid level of {@link #retinanetPriors}
   * (levels 3..7, in prior order; they sum to P), into out [5]: the
   * priorLevels input of the ATSS assigner.
   */
  public static void retinanetPriorLevels(long imageHeight, long imageWidth, IntBuffer out) {
    try (NativeArg a = NativeArg.of("prior_levels", out, true, RETINANET_LEVELS)) {
      mbx_native.mbx_priors_retinanet_levels(imageHeight, imageWidth, NativeArg.get(a));
      a.commit();
    }
  }

  /** {@link #retinanetPriorLevels(long, long, IntBuffer)} as a new int[5]. */
  public static int[] retinanetPriorLevels(long imageHeight, long imageWidth) {
    int[] out = new int[RETINANET_LEVELS];
    retinanetPriorLevels(imageHeight, imageWidth, IntBuffer.wrap(out));
    return out;
  }
}
