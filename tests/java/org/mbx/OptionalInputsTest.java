package org.mbx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.mbx.ErrorPathsTest.conf;
import static org.mbx.ErrorPathsTest.expectInvalid;
import static org.mbx.ErrorPathsTest.gtBoxes;
import static org.mbx.ErrorPathsTest.gtCounts;
import static org.mbx.ErrorPathsTest.gtLabels;
import static org.mbx.ErrorPathsTest.loc;
import static org.mbx.ErrorPathsTest.options;
import static org.mbx.ErrorPathsTest.priors;

import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import org.junit.jupiter.api.Test;

/**
 * The optional inputs gt_flags [B*G] and prior_levels [L] through the Java
 * API (mbx_run with mbx_tensors_t): all-zero flags and a level split that
 * the MAX_IOU assigner validates but does not use give the results of the
 * calls without them, bitwise; bad ones are INVALID_ARGUMENT naming them.
 */
class OptionalInputsTest {
  // The fixture of ErrorPathsTest: B = 1, G = 2, P = 4, C = 2.
  static int[] zeroFlags() {
    return new int[2];
  }

  static int[] levels() {
    return new int[] {3, 1};
  }

  static void assertSameLoss(LossResult want, LossResult got) {
    assertEquals(want.lossLoc(), got.lossLoc());
    assertEquals(want.lossConf(), got.lossConf());
    assertArrayEquals(want.numPos(), got.numPos());
    assertArrayEquals(want.gradLoc(), got.gradLoc());
    assertArrayEquals(want.gradConf(), got.gradConf());
  }

  @Test
  void zeroFlagsAndLevels_matchTheCallsWithout() {
    LossResult base = Mbx.forwardBackward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), loc(), conf());
    int[][][] extras = {{zeroFlags(), null}, {null, levels()}, {zeroFlags(), levels()}};
    for (int[][] e : extras) {
      assertSameLoss(base, Mbx.forwardBackward(null, options(), priors(), gtBoxes(), gtLabels(),
          gtCounts(), loc(), conf(), e[0], e[1]));
      LossResult fwd = Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(), gtCounts(),
          loc(), conf(), e[0], e[1]);
      assertEquals(base.lossLoc(), fwd.lossLoc());
      assertEquals(base.lossConf(), fwd.lossConf());
      MatchResult want = Mbx.match(null, options(), 2, priors(), gtBoxes(), gtLabels(),
          gtCounts());
      MatchResult got = Mbx.match(null, options(), 2, priors(), gtBoxes(), gtLabels(),
          gtCounts(), e[0], e[1]);
      assertArrayEquals(want.confTarget(), got.confTarget());
      assertArrayEquals(want.matchedGt(), got.matchedGt());
      assertArrayEquals(want.locTarget(), got.locTarget());
      assertArrayEquals(want.numPos(), got.numPos());
      float[] gradLoc = new float[16];
      float[] gradConf = new float[8];
      Mbx.backward(null, options(), FloatBuffer.wrap(priors()), FloatBuffer.wrap(gtBoxes()),
          IntBuffer.wrap(gtLabels()), IntBuffer.wrap(gtCounts()), FloatBuffer.wrap(loc()),
          FloatBuffer.wrap(conf()), e[0] == null ? null : IntBuffer.wrap(e[0]),
          e[1] == null ? null : IntBuffer.wrap(e[1]), 1.0, 1.0, FloatBuffer.wrap(gradLoc),
          FloatBuffer.wrap(gradConf));
      assertArrayEquals(base.gradLoc(), gradLoc);
      assertArrayEquals(base.gradConf(), gradConf);
    }
  }

  @Test
  void multiBoxLossObject_takesTheOptionalInputs() {
    try (MultiBoxLoss loss = new MultiBoxLoss(options())) {
      LossResult base = loss.forwardBackward(priors(), gtBoxes(), gtLabels(), gtCounts(), loc(),
          conf());
      assertSameLoss(base, loss.forwardBackward(priors(), gtBoxes(), gtLabels(), gtCounts(),
          loc(), conf(), zeroFlags(), levels()));
      assertEquals(base.lossConf(), loss.forward(priors(), gtBoxes(), gtLabels(), gtCounts(),
          loc(), conf(), zeroFlags(), null).lossConf());
      assertArrayEquals(loss.match(2, priors(), gtBoxes(), gtLabels(), gtCounts()).confTarget(),
          loss.match(2, priors(), gtBoxes(), gtLabels(), gtCounts(), null, levels())
              .confTarget());
      // An ignore region (bit 0): GT 1's row is no longer matched, prior 3 is ignored.
      MatchResult m = loss.match(2, priors(), gtBoxes(), gtLabels(), gtCounts(),
          new int[] {0, 1}, null);
      assertEquals(1, m.confTarget()[0]);
      assertEquals(-1, m.confTarget()[3]);
      assertEquals(-1, m.matchedGt()[3]);
    }
  }

  @Test
  void directBuffersAtAnOffset_areAccepted() {
    IntBuffer flags = Mbx.allocateInts(5);
    flags.position(3);
    IntBuffer lv = Mbx.allocateInts(3);
    lv.put(1, 2).put(2, 2);
    lv.position(1);
    LossResult base = Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(), gtCounts(),
        loc(), conf());
    LossResult got = Mbx.forward(null, options(), FloatBuffer.wrap(priors()),
        FloatBuffer.wrap(gtBoxes()), IntBuffer.wrap(gtLabels()), IntBuffer.wrap(gtCounts()),
        FloatBuffer.wrap(loc()), FloatBuffer.wrap(conf()), flags, lv);
    assertEquals(base.lossLoc(), got.lossLoc());
    assertEquals(base.lossConf(), got.lossConf());
  }

  @Test
  void badGtFlags_areInvalidArgumentNamingThem() {
    expectInvalid(() -> Mbx.forwardBackward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), loc(), conf(), new int[1], null), "gt_flags");
    // Bit 1 is reserved: the library names the argument, image and row.
    expectInvalid(() -> Mbx.forwardBackward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), loc(), conf(), new int[] {0, 2}, null), "gt_flags");
    expectInvalid(() -> Mbx.match(null, options(), 2, priors(), gtBoxes(), gtLabels(),
        gtCounts(), new int[] {4, 0}, null), "gt_flags");
  }

  @Test
  void badPriorLevels_areInvalidArgumentNamingThem() {
    expectInvalid(() -> Mbx.forwardBackward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), loc(), conf(), null, new int[] {3, 2}), "prior_levels"); // sum 5 != P = 4
    expectInvalid(() -> Mbx.match(null, options(), 2, priors(), gtBoxes(), gtLabels(),
        gtCounts(), null, new int[] {5, -1}), "prior_levels");
  }

  @Test
  void failedCall_writesNoOutput() {
    float[] gradLoc = new float[16];
    java.util.Arrays.fill(gradLoc, 7f);
    float[] gradConf = new float[8];
    expectInvalid(() -> Mbx.forwardBackward(null, options(), FloatBuffer.wrap(priors()),
        FloatBuffer.wrap(gtBoxes()), IntBuffer.wrap(gtLabels()), IntBuffer.wrap(gtCounts()),
        FloatBuffer.wrap(loc()), FloatBuffer.wrap(conf()), null, IntBuffer.wrap(new int[] {1}),
        1.0, 1.0, FloatBuffer.wrap(gradLoc), FloatBuffer.wrap(gradConf)), "prior_levels");
    for (float v : gradLoc) {
      assertEquals(7f, v);
    }
  }

  @Test
  void retinanetPriorLevels_sumToTheAnchorCount() {
    long[][] sizes = {{512, 512}, {600, 1000}, {333, 517}};
    for (long[] hw : sizes) {
      int[] lv = Mbx.retinanetPriorLevels(hw[0], hw[1]);
      assertEquals(Mbx.RETINANET_LEVELS, lv.length);
      long sum = 0;
      for (int n : lv) {
        assertTrue(n > 0 && n % 9 == 0, "9 anchors per cell: " + n);
        sum += n;
      }
      assertEquals(Mbx.retinanetPriorCount(hw[0], hw[1]), sum);
      IntBuffer direct = Mbx.allocateInts(Mbx.RETINANET_LEVELS);
      Mbx.retinanetPriorLevels(hw[0], hw[1], direct);
      int[] fromDirect = new int[Mbx.RETINANET_LEVELS];
      direct.get(fromDirect);
      assertArrayEquals(lv, fromDirect);
    }
  }
}
