package org.mbx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ReadOnlyBufferException;
import java.util.Arrays;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.mbx.internal.SWIGTYPE_p_DLTensor;
import org.mbx.internal.mbx_native;

/** Error paths of the Java API and a few behaviours around them. */
class ErrorPathsTest {
  // A small valid problem: 4 CORNERS priors on a 2x2 grid, one image, two GT
  // boxes (labels 0 and 1), sigmoid focal with C = K = 2.
  static float[] priors() {
    return new float[] {0, 0, 10, 10, 10, 0, 20, 10, 0, 10, 10, 20, 10, 10, 20, 20};
  }

  static float[] gtBoxes() {
    return new float[] {0, 0, 10, 10, 10, 10, 20, 19};
  }

  static int[] gtLabels() {
    return new int[] {0, 1};
  }

  static int[] gtCounts() {
    return new int[] {2};
  }

  static float[] loc() {
    float[] l = new float[16];
    for (int i = 0; i < l.length; i++) {
      l[i] = 0.05f * (i % 5) - 0.1f;
    }
    return l;
  }

  static float[] conf() {
    return new float[] {0.5f, -1f, 0.2f, 0.3f, -0.7f, 1.1f, 0f, -2f};
  }

  static Options options() {
    return Options.preset("torchvision_retinanet");
  }

  static MbxException expectInvalid(Runnable r, String... mentions) {
    MbxException e = assertThrows(MbxException.class, r::run);
    assertEquals(Status.INVALID_ARGUMENT, e.status());
    String msg = e.getMessage().toLowerCase(Locale.ROOT);
    assertFalse(e.libraryMessage().isEmpty(), "message is empty");
    for (String m : mentions) {
      assertTrue(msg.contains(m.toLowerCase(Locale.ROOT)),
          "message \"" + e.getMessage() + "\" should mention " + m);
    }
    return e;
  }

  @Test
  void fixtureIsValid() {
    LossResult r = Mbx.forwardBackward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), loc(), conf());
    assertEquals(2, r.numPosTotal());
    assertTrue(r.lossLoc() > 0 && Double.isFinite(r.lossLoc()));
    assertTrue(r.lossConf() > 0 && Double.isFinite(r.lossConf()));
    assertEquals(16, r.gradLoc().length);
    assertEquals(8, r.gradConf().length);
  }

  @Test
  void nanGtBox_isInvalidArgument_andWritesNothing() {
    float[] boxes = gtBoxes();
    boxes[5] = Float.NaN;
    float[] gradLoc = new float[16];
    Arrays.fill(gradLoc, 42f);
    FloatBuffer directGradConf = Mbx.allocateFloats(8);
    for (int i = 0; i < 8; i++) {
      directGradConf.put(i, 42f);
    }
    expectInvalid(() -> Mbx.forwardBackward(null, options(), FloatBuffer.wrap(priors()),
        FloatBuffer.wrap(boxes), IntBuffer.wrap(gtLabels()), IntBuffer.wrap(gtCounts()),
        FloatBuffer.wrap(loc()), FloatBuffer.wrap(conf()), FloatBuffer.wrap(gradLoc),
        directGradConf), "gt_boxes");
    for (int i = 0; i < 16; i++) {
      assertEquals(42f, gradLoc[i], "staged output written on failure");
    }
    for (int i = 0; i < 8; i++) {
      assertEquals(42f, directGradConf.get(i), "direct output written on failure");
    }
  }

  @Test
  void nanGtBox_isSkippedWithInvalidGtSkip() {
    float[] boxes = gtBoxes();
    boxes[5] = Float.NaN; // second GT row
    LossResult r = Mbx.forward(null, options().set("invalid_gt", "SKIP"), priors(), boxes,
        gtLabels(), gtCounts(), loc(), conf());
    assertEquals(1, r.numPosTotal());
  }

  @Test
  void labelOutOfRange_isInvalidArgument() {
    expectInvalid(() -> Mbx.forward(null, options(), priors(), gtBoxes(), new int[] {0, 2},
        gtCounts(), loc(), conf()), "label");
    expectInvalid(() -> Mbx.forward(null, options(), priors(), gtBoxes(), new int[] {-1, 0},
        gtCounts(), loc(), conf()), "label");
    // match: numClasses bounds the labels too
    expectInvalid(() -> Mbx.match(null, options(), 1, priors(), gtBoxes(), gtLabels(),
        gtCounts()), "label");
  }

  @Test
  void gtCountsAboveG_isInvalidArgument() {
    expectInvalid(() -> Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(),
        new int[] {3}, loc(), conf()), "gt_counts");
    expectInvalid(() -> Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(),
        new int[] {-1}, loc(), conf()), "gt_counts");
  }

  @Test
  void badShapes_areRejectedBeforeTheCall() {
    expectInvalid(() -> Mbx.forward(null, options(), Arrays.copyOf(priors(), 15), gtBoxes(),
        gtLabels(), gtCounts(), loc(), conf()), "priors");
    expectInvalid(() -> Mbx.forward(null, options(), priors(), Arrays.copyOf(gtBoxes(), 4),
        gtLabels(), gtCounts(), loc(), conf()), "gt_boxes");
    expectInvalid(() -> Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), Arrays.copyOf(loc(), 12), conf()), "loc");
    expectInvalid(() -> Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(),
        gtCounts(), loc(), Arrays.copyOf(conf(), 7)), "conf");
    expectInvalid(() -> Mbx.decode(null, options(), priors(), Arrays.copyOf(loc(), 10)),
        "loc");
  }

  @Test
  void badShapes_areRejectedByTheLibrary() {
    // Shapes consistent for the Java layer, but C = 1 is too few columns for
    // softmax cross-entropy (column 0 is the background).
    float[] conf1 = new float[4];
    expectInvalid(() -> Mbx.forward(null, Options.preset(Preset.SSD_PYTORCH)
        .set("prior_format", "CORNERS"), priors(), gtBoxes(), gtLabels(), gtCounts(), loc(),
        conf1), "conf");
  }

  @Test
  void outputTooSmall_isInvalidArgument() {
    expectInvalid(() -> Mbx.forwardBackward(null, options(), FloatBuffer.wrap(priors()),
        FloatBuffer.wrap(gtBoxes()), IntBuffer.wrap(gtLabels()), IntBuffer.wrap(gtCounts()),
        FloatBuffer.wrap(loc()), FloatBuffer.wrap(conf()), Mbx.allocateFloats(16),
        Mbx.allocateFloats(7)), "grad_conf");
  }

  @Test
  void readOnlyOutput_throws() {
    assertThrows(ReadOnlyBufferException.class, () -> Mbx.forwardBackward(null, options(),
        FloatBuffer.wrap(priors()), FloatBuffer.wrap(gtBoxes()), IntBuffer.wrap(gtLabels()),
        IntBuffer.wrap(gtCounts()), FloatBuffer.wrap(loc()), FloatBuffer.wrap(conf()),
        Mbx.allocateFloats(16).asReadOnlyBuffer(), Mbx.allocateFloats(8)));
  }

  @Test
  void nullArguments_throwNullPointerException() {
    assertThrows(NullPointerException.class, () -> Mbx.forward(null, options(),
        (FloatBuffer) null, FloatBuffer.wrap(gtBoxes()), IntBuffer.wrap(gtLabels()),
        IntBuffer.wrap(gtCounts()), FloatBuffer.wrap(loc()), FloatBuffer.wrap(conf())));
    assertThrows(NullPointerException.class, () -> Mbx.forward(null, null, priors(), gtBoxes(),
        gtLabels(), gtCounts(), loc(), conf()));
  }

  /** The typed API cannot pass a wrong dtype; the raw SWIG layer can, and the library refuses. */
  @Test
  void badDtype_throughRawApi_isInvalidArgument() {
    ByteBuffer mem = ByteBuffer.allocateDirect(256).order(ByteOrder.nativeOrder());
    ByteBuffer counts = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
    counts.putInt(0, 0);
    ByteBuffer out = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
    mem.asFloatBuffer().put(priors()); // valid float32 CORNERS priors
    Options o = options();
    SWIGTYPE_p_DLTensor priorsI32 = mbx_native.mbx_java_tensor_new(mem, 0, 0, 32, 2, 4, 4, 0, 0);
    SWIGTYPE_p_DLTensor boxes = mbx_native.mbx_java_tensor_new(mem, 0, 2, 32, 3, 1, 0, 4, 0);
    SWIGTYPE_p_DLTensor labels = mbx_native.mbx_java_tensor_new(mem, 0, 0, 32, 2, 1, 0, 0, 0);
    SWIGTYPE_p_DLTensor cnt = mbx_native.mbx_java_tensor_new(counts, 0, 0, 32, 1, 1, 0, 0, 0);
    SWIGTYPE_p_DLTensor confT = mbx_native.mbx_java_tensor_new(out, 0, 0, 32, 2, 1, 4, 0, 0);
    SWIGTYPE_p_DLTensor priorsF64 = mbx_native.mbx_java_tensor_new(mem, 0, 2, 64, 2, 4, 4, 0, 0);
    try {
      expectInvalid(() -> mbx_native.mbx_match(null, o.raw(), 0, priorsI32, boxes, labels, cnt,
          confT, null, null, null), "priors");
      expectInvalid(() -> mbx_native.mbx_match(null, o.raw(), 0, priorsF64, boxes, labels, cnt,
          confT, null, null, null), "priors");
      // and the same call with float32 priors succeeds (no GT: all negative)
      SWIGTYPE_p_DLTensor priorsF32 =
          mbx_native.mbx_java_tensor_new(mem, 0, 2, 32, 2, 4, 4, 0, 0);
      try {
        mbx_native.mbx_match(null, o.raw(), 0, priorsF32, boxes, labels, cnt, confT, null, null,
            null);
      } finally {
        mbx_native.mbx_java_tensor_free(priorsF32);
      }
    } finally {
      for (SWIGTYPE_p_DLTensor t : new SWIGTYPE_p_DLTensor[] {priorsI32, boxes, labels, cnt,
          confT, priorsF64}) {
        mbx_native.mbx_java_tensor_free(t);
      }
    }
  }

  @Test
  void badOptionName_isInvalidArgument() {
    expectInvalid(() -> options().set("no_such_option", "1"), "no_such_option");
  }

  @Test
  void badOptionValues_areInvalidArgument_andLeaveOptionsUnchanged() {
    Options o = options();
    String before = o.toString();
    expectInvalid(() -> o.set("focal_gamma", "abc"));
    expectInvalid(() -> o.set("conf_loss", "HINGE"));
    expectInvalid(() -> o.set("variances", "1,2"));
    expectInvalid(() -> o.set("clamp_num_neg", "maybe"));
    assertEquals(before, o.toString());
    assertTrue(o.isSigmoidFocal());
  }

  @Test
  void outOfRangeOption_failsValidateAndCalls() {
    Options o = options().set("pos_threshold", 1.5);
    expectInvalid(o::validate);
    expectInvalid(() -> Mbx.forward(null, o, priors(), gtBoxes(), gtLabels(), gtCounts(), loc(),
        conf()));
    expectInvalid(() -> options().set("focal_gamma", -1.0).validate());
  }

  @Test
  void toString_listsEveryLibraryOption_andValuesRoundTrip() {
    assertEquals(mbx_native.mbx_option_count(), Options.names().size());
    for (Preset p : Preset.values()) {
      Options o = Options.preset(p);
      String text = o.toString();
      for (int i = 0; i < mbx_native.mbx_option_count(); i++) {
        String name = mbx_native.mbx_option_name(i);
        assertTrue(text.contains(name + "=" + o.getText(name)), name + " in " + text);
      }
      // Text and typed values both set back to the same options, bitwise.
      Options fromText = Options.preset(Preset.SSD_PYTORCH);
      for (String name : Options.names()) {
        fromText.set(name, o.getText(name));
      }
      assertEquals(text, fromText.toString());
      assertEquals(text, Options.preset(Preset.SSD_PYTORCH).setAll(o.toMap()).toString());
    }
    Options o = Options.preset(Preset.TORCHVISION_RETINANET);
    assertEquals("SIGMOID_FOCAL", o.get("conf_loss"));
    assertEquals(Boolean.FALSE, o.get("loc_average_coords"));
    assertArrayEquals(new double[] {1, 1, 1, 1}, (double[]) o.get("variances"));
    assertEquals("float", Options.type("focal_gamma"));
    assertEquals("LOW_QUALITY", o.set("force_match", 2).get("force_match"));
    // The Caffe options, by name like every other.
    Options c = Options.preset(Preset.CAFFE_SSD);
    assertEquals("BIPARTITE", c.get("force_match"));
    assertEquals("int", Options.type("mining_sample_size"));
    assertEquals(Integer.valueOf(64), c.get("mining_sample_size"));
    assertEquals("HARD_EXAMPLE", c.set("mining", "HARD_EXAMPLE").get("mining"));
    assertEquals(Integer.valueOf(12), c.set("mining_sample_size", 12L).get("mining_sample_size"));
    assertEquals(Boolean.TRUE, c.set("encode_variance_in_target", true).get("encode_variance_in_target"));
    assertThrows(MbxException.class, () -> Options.preset(Preset.CAFFE_SSD).set("mining", "HARD"));
  }

  @Test
  void enums_carryTheLibrarysValues() {
    for (Status s : Status.values()) {
      assertEquals("MBX_STATUS_" + s.name(),
          mbx_native.mbx_status_string(org.mbx.internal.mbx_status_t.swigToEnum(s.code())));
    }
    assertEquals(mbx_native.mbx_preset_count(), Preset.values().length);
    for (Preset p : Preset.values()) {
      assertEquals(p.name().toLowerCase(Locale.ROOT), p.libraryName());
    }
    for (ComputePath p : ComputePath.values()) {
      assertEquals(p.name().toLowerCase(Locale.ROOT).replace('_', '-'),
          mbx_native.mbx_path_name(p.raw()));
    }
  }

  @Test
  void version_isTheProjectVersion() {
    // Surefire passes the pom's version, which CMake configured from project(VERSION).
    String project = System.getProperty("mbx.project.version");
    assertTrue(project != null && !project.isEmpty(), "mbx.project.version not set");
    assertEquals(project, Mbx.version());
  }

  @Test
  void unknownPreset_isInvalidArgument() {
    expectInvalid(() -> Options.preset("yolo_v3"));
  }

  @Test
  void typedOptionSetters_matchTextSetters() {
    Options a = Options.preset(Preset.SSD_PYTORCH).set("variances", 0.1, 0.2, 0.3, 0.4)
        .set("clamp_num_neg", false).set("neg_pos_ratio", 2.5);
    Options b = Options.preset("ssd_pytorch").set("variances", "0.1,0.2,0.3,0.4")
        .set("clamp_num_neg", "0").set("neg_pos_ratio", "2.5");
    assertEquals(a.toString(), b.toString());
    LossResult ra = Mbx.forward(null, a.set("prior_format", "CORNERS"), priors(), gtBoxes(),
        gtLabels(), gtCounts(), loc(), new float[12]);
    LossResult rb = Mbx.forward(null, b.set("prior_format", "CORNERS"), priors(), gtBoxes(),
        gtLabels(), gtCounts(), loc(), new float[12]);
    assertEquals(ra.lossLoc(), rb.lossLoc());
    assertEquals(ra.lossConf(), rb.lossConf());
  }

  @Test
  void closedContext_throwsIllegalState() {
    MbxContext ctx = new MbxContext();
    Mbx.forward(ctx, options(), priors(), gtBoxes(), gtLabels(), gtCounts(), loc(), conf());
    ctx.close();
    assertTrue(ctx.isClosed());
    ctx.close(); // idempotent
    assertThrows(IllegalStateException.class, () -> Mbx.forward(ctx, options(), priors(),
        gtBoxes(), gtLabels(), gtCounts(), loc(), conf()));
    assertThrows(IllegalStateException.class, () -> ctx.setNumThreads(1));
    assertThrows(IllegalStateException.class, ctx::workspaceBytes);
    MultiBoxLoss loss = new MultiBoxLoss("torchvision_retinanet");
    loss.close();
    assertThrows(IllegalStateException.class, () -> loss.forward(priors(), gtBoxes(),
        gtLabels(), gtCounts(), loc(), conf()));
  }

  @Test
  void resultsDoNotDependOnThreadCount() {
    try (MbxContext one = new MbxContext().setNumThreads(1);
        MbxContext all = new MbxContext().setNumThreads(0)) {
      LossResult a = Mbx.forwardBackward(one, options(), priors(), gtBoxes(), gtLabels(),
          gtCounts(), loc(), conf());
      LossResult b = Mbx.forwardBackward(all, options(), priors(), gtBoxes(), gtLabels(),
          gtCounts(), loc(), conf());
      assertEquals(a.lossLoc(), b.lossLoc());
      assertEquals(a.lossConf(), b.lossConf());
      assertArrayEquals(a.gradLoc(), b.gradLoc());
      assertArrayEquals(a.gradConf(), b.gradConf());
      assertTrue(all.workspaceBytes() >= 0);
      all.releaseWorkspace();
    }
  }

  @Test
  void emptyImage_hasNoPositivesAndZeroLocLoss() {
    LossResult r = Mbx.forward(null, options(), priors(), gtBoxes(), gtLabels(), new int[] {0},
        loc(), conf());
    assertEquals(0, r.numPosTotal());
    assertEquals(0.0, r.lossLoc());
    assertTrue(r.lossConf() > 0);
  }

  @Test
  void priorsAndVersion() {
    assertTrue(Mbx.version().matches("\\d+\\.\\d+\\.\\d+"), Mbx.version());
    assertEquals(8732, Mbx.ssdPriorCount(SsdConfig.SSD300_VOC));
    float[] ssd = Mbx.ssdPriors(SsdConfig.SSD300_VOC);
    assertEquals(8732 * 4, ssd.length);
    for (float v : ssd) {
      assertTrue(v >= 0f && v <= 1f);
    }
    FloatBuffer direct = Mbx.allocateFloats(8732 * 4);
    Mbx.ssdPriors(SsdConfig.SSD300_VOC, direct);
    float[] fromDirect = new float[8732 * 4];
    direct.get(fromDirect);
    assertArrayEquals(ssd, fromDirect);
    long n = Mbx.retinanetPriorCount(512, 512);
    float[] anchors = Mbx.retinanetPriors(512, 512);
    assertEquals(n * 4, anchors.length);
    assertTrue(n > 0);
  }

  @Test
  void matchAndDecodeOnTheFixture() {
    MatchResult m = Mbx.match(null, options(), 2, priors(), gtBoxes(), gtLabels(), gtCounts());
    assertEquals(1, m.confTarget()[0]); // prior 0 == GT 0 exactly, label 0 -> 1
    assertEquals(0, m.matchedGt()[0]);
    assertEquals(2, m.confTarget()[3]); // prior 3 ~ GT 1, label 1 -> 2
    assertEquals(1, m.matchedGt()[3]);
    float[] boxes = Mbx.decode(null, options(), priors(), m.locTarget());
    for (int k = 0; k < 4; k++) {
      assertEquals(gtBoxes()[k], boxes[k], 1e-4);
      assertEquals(gtBoxes()[4 + k], boxes[12 + k], 1e-4);
    }
  }
}
