package org.mbx;

/**
 * Result of a loss call: the two normalised losses, the positives per image
 * and, for the array overloads of forward+backward, the gradients.
 */
public final class LossResult {
  private final double lossLoc;
  private final double lossConf;
  private final int[] numPos;
  private final float[] gradLoc;
  private final float[] gradConf;

  LossResult(double lossLoc, double lossConf, int[] numPos, float[] gradLoc, float[] gradConf) {
    this.lossLoc = lossLoc;
    this.lossConf = lossConf;
    this.numPos = numPos;
    this.gradLoc = gradLoc;
    this.gradConf = gradConf;
  }

  /** Normalised localisation loss. */
  public double lossLoc() {
    return lossLoc;
  }

  /** Normalised confidence (classification) loss. */
  public double lossConf() {
    return lossConf;
  }

  /** lossLoc + lossConf. */
  public double total() {
    return lossLoc + lossConf;
  }

  /** Positives per image, [B]. */
  public int[] numPos() {
    return numPos;
  }

  /** Sum of {@link #numPos()}. */
  public long numPosTotal() {
    long s = 0;
    for (int n : numPos) {
      s += n;
    }
    return s;
  }

  /** d loss_loc / d loc, [B*P*4], or null when the gradients went to caller buffers. */
  public float[] gradLoc() {
    return gradLoc;
  }

  /** d loss_conf / d conf, [B*P*C], or null when the gradients went to caller buffers. */
  public float[] gradConf() {
    return gradConf;
  }
}
