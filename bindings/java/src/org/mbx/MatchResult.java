package org.mbx;

/** Result of {@link Mbx#match}: per-prior targets, flattened row-major. */
public final class MatchResult {
  private final int[] confTarget;
  private final int[] matchedGt;
  private final float[] locTarget;
  private final int[] numPos;

  MatchResult(int[] confTarget, int[] matchedGt, float[] locTarget, int[] numPos) {
    this.confTarget = confTarget;
    this.matchedGt = matchedGt;
    this.locTarget = locTarget;
    this.numPos = numPos;
  }

  /** [B*P]: label+1 for positives, 0 for negatives, -1 for ignored priors. */
  public int[] confTarget() {
    return confTarget;
  }

  /** [B*P]: GT row a positive prior is assigned to, else -1. */
  public int[] matchedGt() {
    return matchedGt;
  }

  /** [B*P*4]: encoded regression targets, 0 where not positive. */
  public float[] locTarget() {
    return locTarget;
  }

  /** [B]: positives per image. */
  public int[] numPos() {
    return numPos;
  }
}
