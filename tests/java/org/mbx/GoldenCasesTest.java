package org.mbx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every golden case under the folder given by system property mbx.golden.dir
 * (each subfolder with a case.json, found at run time), through the Java API,
 * on the default path and on the scalar reference path, with the tolerances
 * of tests/data/golden/README.md for a float32 implementation.
 */
class GoldenCasesTest {

  /** One golden case: options from case.json plus every .npy tensor. */
  static final class Case {
    final String name;
    final Map<String, Object> options;
    final Path dir;

    Case(Path dir) throws IOException {
      this.dir = dir;
      this.name = dir.getFileName().toString();
      @SuppressWarnings("unchecked")
      Map<String, Object> meta = (Map<String, Object>) Json.parse(
          new String(Files.readAllBytes(dir.resolve("case.json")), StandardCharsets.UTF_8));
      @SuppressWarnings("unchecked")
      Map<String, Object> opts = (Map<String, Object>) meta.get("options");
      if (opts == null) {
        throw new IOException(dir + "/case.json has no \"options\"");
      }
      this.options = opts;
    }

    Npy npy(String tensor) throws IOException {
      return Npy.read(dir.resolve(tensor + ".npy"));
    }

    /** An optional input tensor (gt_flags, prior_levels): its ints, or null when absent. */
    int[] optionalInts(String tensor) throws IOException {
      return Files.exists(dir.resolve(tensor + ".npy")) ? npy(tensor).asInts() : null;
    }

    int[] gtFlags() throws IOException {
      return optionalInts("gt_flags");
    }

    int[] priorLevels() throws IOException {
      return optionalInts("prior_levels");
    }

    /** The loss's num_pos: num_pos_loss.npy where present (HARD_EXAMPLE drops positives). */
    int[] lossNumPos() throws IOException {
      return java.nio.file.Files.exists(dir.resolve("num_pos_loss.npy"))
          ? npy("num_pos_loss").asInts() : npy("num_pos").asInts();
    }

    /**
     * The case's options: every key of "options" set by name through
     * mbx_options_set (the starting preset does not matter, the option set is
     * complete). Lists become "a,b,c,d".
     */
    Options buildOptions() {
      Options o = Options.preset(Preset.SSD_PYTORCH);
      for (Map.Entry<String, Object> e : options.entrySet()) {
        Object v = e.getValue();
        if (v instanceof List) {
          double[] values = ((List<?>) v).stream().mapToDouble(x -> ((Number) x).doubleValue())
              .toArray();
          o.set(e.getKey(), values);
        } else if (v instanceof Boolean) {
          o.set(e.getKey(), (Boolean) v);
        } else if (v instanceof Number) {
          o.set(e.getKey(), ((Number) v).doubleValue());
        } else {
          o.set(e.getKey(), String.valueOf(v));
        }
      }
      return o.validate();
    }
  }

  static Path goldenDir() {
    String dir = System.getProperty("mbx.golden.dir");
    return Paths.get(dir != null ? dir : "../../tests/data/golden");
  }

  static List<Path> caseDirs() throws IOException {
    try (Stream<Path> s = Files.list(goldenDir())) {
      return s.filter(p -> Files.isRegularFile(p.resolve("case.json"))).sorted()
          .collect(Collectors.toList());
    }
  }

  // --- comparison with the README's float32 tolerances ---------------------

  static double maxAbs(double[] a) {
    double m = 0;
    for (double x : a) {
      m = Math.max(m, Math.abs(x));
    }
    return m;
  }

  static void assertClose(String what, double[] ref, float[] got, double rel, double relMax) {
    assertEquals(ref.length, got.length, what + ": length");
    double scale = maxAbs(ref);
    for (int i = 0; i < ref.length; i++) {
      double tol = relMax * scale + rel * Math.abs(ref[i]);
      if (!(Math.abs(got[i] - ref[i]) <= tol)) {
        fail(what + "[" + i + "]: got " + got[i] + ", expected " + ref[i] + " (tol " + tol + ")");
      }
    }
  }

  static void assertLoss(String what, double ref, double got) {
    double tol = 1e-4 * Math.abs(ref) + 1e-7;
    assertTrue(Math.abs(got - ref) <= tol,
        what + ": got " + got + ", expected " + ref + " (tol " + tol + ")");
  }

  static float[] toFloats(FloatBuffer b, int n) {
    float[] out = new float[n];
    b.duplicate().get(out);
    return out;
  }

  static int[] toInts(IntBuffer b, int n) {
    int[] out = new int[n];
    b.duplicate().get(out);
    return out;
  }

  /** A direct buffer holding a at position `pad` (exercises byte_offset). */
  static FloatBuffer direct(float[] a, int pad) {
    FloatBuffer b = Mbx.allocateFloats(a.length + pad);
    b.position(pad);
    b.duplicate().put(a);
    return b;
  }

  static IntBuffer direct(int[] a, int pad) {
    IntBuffer b = Mbx.allocateInts(a.length + pad);
    b.position(pad);
    b.duplicate().put(a);
    return b;
  }

  static IntBuffer directOrNull(int[] a, int pad) {
    return a == null ? null : direct(a, pad);
  }

  static IntBuffer wrapOrNull(int[] a) {
    return a == null ? null : IntBuffer.wrap(a);
  }

  // --- the checks of one case ------------------------------------------------

  static void checkMatch(Case c, MbxContext ctx) throws IOException {
    Options o = c.buildOptions();
    int[] counts = c.npy("gt_counts").asInts();
    long numClasses = c.npy("conf").shape[2] - (o.isSigmoidFocal() ? 0 : 1);
    MatchResult m = Mbx.match(ctx, o, numClasses, c.npy("priors").asFloats(),
        c.npy("gt_boxes").asFloats(), c.npy("gt_labels").asInts(), counts, c.gtFlags(),
        c.priorLevels());
    assertArrayEquals(c.npy("conf_target").asInts(), m.confTarget(), "conf_target");
    assertArrayEquals(c.npy("matched_gt").asInts(), m.matchedGt(), "matched_gt");
    assertArrayEquals(c.npy("num_pos").asInts(), m.numPos(), "num_pos");
    assertClose("loc_target", c.npy("loc_target").asDoubles(), m.locTarget(), 1e-5, 1e-5);
  }

  static void checkForward(Case c, MbxContext ctx) throws IOException {
    LossResult r = Mbx.forward(ctx, c.buildOptions(), c.npy("priors").asFloats(),
        c.npy("gt_boxes").asFloats(), c.npy("gt_labels").asInts(), c.npy("gt_counts").asInts(),
        c.npy("loc").asFloats(), c.npy("conf").asFloats(), c.gtFlags(), c.priorLevels());
    assertLoss("loss_loc", c.npy("loss_loc").asDoubles()[0], r.lossLoc());
    assertLoss("loss_conf", c.npy("loss_conf").asDoubles()[0], r.lossConf());
    assertArrayEquals(c.lossNumPos(), r.numPos(), "num_pos");
    assertEquals(null, r.gradLoc());
  }

  static void checkForwardBackwardArrays(Case c, MbxContext ctx) throws IOException {
    LossResult r = Mbx.forwardBackward(ctx, c.buildOptions(), c.npy("priors").asFloats(),
        c.npy("gt_boxes").asFloats(), c.npy("gt_labels").asInts(), c.npy("gt_counts").asInts(),
        c.npy("loc").asFloats(), c.npy("conf").asFloats(), c.gtFlags(), c.priorLevels());
    assertLoss("loss_loc", c.npy("loss_loc").asDoubles()[0], r.lossLoc());
    assertLoss("loss_conf", c.npy("loss_conf").asDoubles()[0], r.lossConf());
    assertArrayEquals(c.lossNumPos(), r.numPos(), "num_pos");
    assertClose("grad_loc", c.npy("grad_loc").asDoubles(), r.gradLoc(), 1e-4, 1e-4);
    assertClose("grad_conf", c.npy("grad_conf").asDoubles(), r.gradConf(), 1e-4, 1e-4);
  }

  /** Direct buffers at non-zero positions (zero-copy path) and upstream gradients (2, 0.5). */
  static void checkForwardBackwardDirect(Case c, MbxContext ctx) throws IOException {
    float[] loc = c.npy("loc").asFloats();
    float[] conf = c.npy("conf").asFloats();
    FloatBuffer gradLoc = direct(new float[loc.length], 3);
    FloatBuffer gradConf = direct(new float[conf.length], 5);
    LossResult r = Mbx.forwardBackward(ctx, c.buildOptions(),
        direct(c.npy("priors").asFloats(), 1), direct(c.npy("gt_boxes").asFloats(), 2),
        direct(c.npy("gt_labels").asInts(), 3), direct(c.npy("gt_counts").asInts(), 1),
        direct(loc, 4), direct(conf, 2), directOrNull(c.gtFlags(), 3),
        directOrNull(c.priorLevels(), 1), 2.0, 0.5, gradLoc, gradConf);
    assertLoss("loss_loc", c.npy("loss_loc").asDoubles()[0], r.lossLoc());
    assertLoss("loss_conf", c.npy("loss_conf").asDoubles()[0], r.lossConf());
    assertEquals(3, gradLoc.position(), "position unchanged");
    double[] refLoc = c.npy("grad_loc").asDoubles();
    double[] refConf = c.npy("grad_conf").asDoubles();
    for (int i = 0; i < refLoc.length; i++) {
      refLoc[i] *= 2.0;
    }
    for (int i = 0; i < refConf.length; i++) {
      refConf[i] *= 0.5;
    }
    assertClose("grad_loc*2", refLoc, toFloats(gradLoc, loc.length), 1e-4, 1e-4);
    assertClose("grad_conf*0.5", refConf, toFloats(gradConf, conf.length), 1e-4, 1e-4);
  }

  /** Gradients-only entry point, on heap buffers (staged copies). */
  static void checkBackward(Case c, MbxContext ctx) throws IOException {
    float[] loc = c.npy("loc").asFloats();
    float[] conf = c.npy("conf").asFloats();
    float[] gradLoc = new float[loc.length];
    float[] gradConf = new float[conf.length];
    Mbx.backward(ctx, c.buildOptions(), FloatBuffer.wrap(c.npy("priors").asFloats()),
        FloatBuffer.wrap(c.npy("gt_boxes").asFloats()),
        IntBuffer.wrap(c.npy("gt_labels").asInts()), IntBuffer.wrap(c.npy("gt_counts").asInts()),
        FloatBuffer.wrap(loc), FloatBuffer.wrap(conf), wrapOrNull(c.gtFlags()),
        wrapOrNull(c.priorLevels()), 1.0, 1.0, FloatBuffer.wrap(gradLoc),
        FloatBuffer.wrap(gradConf));
    assertClose("grad_loc", c.npy("grad_loc").asDoubles(), gradLoc, 1e-4, 1e-4);
    assertClose("grad_conf", c.npy("grad_conf").asDoubles(), gradConf, 1e-4, 1e-4);
  }

  /**
   * decode() inverts the encoding: decoding the library's own loc targets
   * gives back each positive prior's matched GT box (cases without the
   * encode_min_gt_wh clamp, which is not invertible).
   */
  static void checkDecodeInvertsMatch(Case c, MbxContext ctx) throws IOException {
    Options o = c.buildOptions();
    Object clamp = c.options.get("encode_min_gt_wh");
    boolean clamped = clamp instanceof Number && ((Number) clamp).doubleValue() > 0;
    List<Double> variances = ((List<?>) c.options.get("variances")).stream()
        .map(x -> ((Number) x).doubleValue()).collect(Collectors.toList());
    float[] priors = c.npy("priors").asFloats();
    float[] boxes = c.npy("gt_boxes").asFloats();
    int[] counts = c.npy("gt_counts").asInts();
    long numClasses = c.npy("conf").shape[2] - (o.isSigmoidFocal() ? 0 : 1);
    MatchResult m = Mbx.match(ctx, o, numClasses, priors, boxes, c.npy("gt_labels").asInts(),
        counts, c.gtFlags(), c.priorLevels());
    float[] decoded = Mbx.decode(ctx, o, priors, m.locTarget());
    int b = counts.length;
    int p = priors.length / 4;
    int g = b == 0 ? 0 : c.npy("gt_labels").asInts().length / b;
    int checked = 0;
    for (int i = 0; i < b; i++) {
      for (int j = 0; j < p; j++) {
        int gt = m.matchedGt()[i * p + j];
        if (gt < 0) {
          continue;
        }
        checked++;
        // decode clamps the size exponents at log(1000/16) (torchvision): a
        // GT more than 62.5x its prior's size is not recovered.
        double limit = Math.log(1000.0 / 16);
        double lw = m.locTarget()[(i * p + j) * 4 + 2] * variances.get(2);
        double lh = m.locTarget()[(i * p + j) * 4 + 3] * variances.get(3);
        if (Math.abs(lw) >= limit || Math.abs(lh) >= limit) {
          continue;
        }
        for (int k = 0; k < 4; k++) {
          float want = boxes[(i * g + gt) * 4 + k];
          float got = decoded[(i * p + j) * 4 + k];
          double scale = Math.max(1.0, Math.abs(want));
          if (!clamped) {
            assertTrue(Math.abs(got - want) <= 2e-4 * scale, "image " + i + " prior " + j
                + " coord " + k + ": decoded " + got + ", GT " + want);
          }
          assertTrue(Float.isFinite(got));
        }
      }
    }
    long positives = 0;
    for (int n : m.numPos()) {
      positives += n;
    }
    assertEquals(positives, checked, "every positive has a matched GT");
  }

  private interface Check {
    void run(Case c, MbxContext ctx) throws Exception;
  }

  private static DynamicTest check(Case c, String what, ComputePath path, Check check) {
    return DynamicTest.dynamicTest(what + " [" + path + "]", () -> {
      try (MbxContext ctx = new MbxContext().setPath(path)) {
        check.run(c, ctx);
      }
    });
  }

  @TestFactory
  List<DynamicNode> goldenCases() throws IOException {
    List<Path> dirs = caseDirs();
    assertFalse(dirs.isEmpty(), "no golden cases (case.json) under " + goldenDir());
    return caseNodes(dirs);
  }

  /**
   * The generated cases with optional inputs (gt_flags.npy, prior_levels.npy)
   * in the set next to the golden one (tests/data/generated), through the
   * overloads that take them.
   */
  @TestFactory
  List<DynamicNode> generatedCasesWithOptionalInputs() throws IOException {
    Path generated = goldenDir().toAbsolutePath().normalize().resolveSibling("generated");
    List<Path> dirs;
    try (Stream<Path> s = Files.list(generated)) {
      dirs = s.filter(p -> Files.isRegularFile(p.resolve("case.json"))
              && (Files.exists(p.resolve("gt_flags.npy"))
                  || Files.exists(p.resolve("prior_levels.npy"))))
          .sorted().collect(Collectors.toList());
    }
    assertFalse(dirs.isEmpty(), "no case with gt_flags.npy / prior_levels.npy under " + generated);
    return caseNodes(dirs);
  }

  static List<DynamicNode> caseNodes(List<Path> dirs) throws IOException {
    List<DynamicNode> nodes = new ArrayList<>();
    for (Path dir : dirs) {
      Case c = new Case(dir);
      List<DynamicNode> tests = new ArrayList<>();
      for (ComputePath path : new ComputePath[] {ComputePath.AUTO, ComputePath.CPU_SCALAR}) {
        tests.add(check(c, "match", path, GoldenCasesTest::checkMatch));
        tests.add(check(c, "forward", path, GoldenCasesTest::checkForward));
        tests.add(check(c, "forwardBackward arrays", path,
            GoldenCasesTest::checkForwardBackwardArrays));
        tests.add(check(c, "forwardBackward direct buffers", path,
            GoldenCasesTest::checkForwardBackwardDirect));
        tests.add(check(c, "backward", path, GoldenCasesTest::checkBackward));
        tests.add(check(c, "decode inverts match", path,
            GoldenCasesTest::checkDecodeInvertsMatch));
      }
      // The null-context overloads (library defaults).
      tests.add(DynamicTest.dynamicTest("forward [null context]", () -> checkForward(c, null)));
      nodes.add(DynamicContainer.dynamicContainer(c.name, tests));
    }
    return nodes;
  }
}
