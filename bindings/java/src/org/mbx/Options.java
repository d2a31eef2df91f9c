package org.mbx;

import java.lang.ref.Reference;
import java.util.Locale;
import java.util.Map;
import org.mbx.internal.mbx_native;
import org.mbx.internal.mbx_options_t;
import org.mbx.internal.mbx_preset_t;

/**
 * Loss and matching options ({@code mbx_options_t}): start from a preset,
 * then change single options by their SPEC / golden {@code case.json} names:
 *
 * <pre>{@code
 * Options o = Options.preset("torchvision_retinanet")
 *     .set("focal_gamma", 1.5)
 *     .set("normalization", "EXTERNAL")
 *     .set("external_norm", 64.0);
 * }</pre>
 *
 * Names and values are parsed by the library ({@code mbx_options_set}); an
 * unknown name or an unparsable value throws {@link MbxException} and leaves
 * the options unchanged. Ranges are checked by {@link #validate()} and by
 * every call. Not thread-safe for concurrent modification; reading from
 * several threads (concurrent calls) is fine.
 */
public final class Options {
  private final mbx_options_t raw;

  private Options(Preset preset) {
    NativeLoader.load();
    mbx_options_t r = new mbx_options_t();
    // Freed when this Options becomes unreachable (the struct is plain data).
    MbxContext.CLEANER.register(this, r::delete);
    mbx_native.mbx_options_init(r, mbx_preset_t.swigToEnum(preset.code()));
    raw = r;
  }

  /** The preset's options. */
  public static Options preset(Preset preset) {
    return new Options(preset);
  }

  /** The preset's options by its name ("ssd_pytorch", "torchvision_ssd", ...). */
  public static Options preset(String name) {
    NativeLoader.load();
    int[] code = new int[1];
    mbx_native.mbx_preset_from_name(name, code);
    for (Preset p : Preset.values()) {
      if (p.code() == code[0]) {
        return new Options(p);
      }
    }
    throw new MbxException(Status.INVALID_ARGUMENT, "unknown preset " + name);
  }

  /** Sets one option from text: enums by name, numbers, true/false, "v0,v1,v2,v3". */
  public Options set(String name, String value) {
    mbx_native.mbx_options_set(raw, name, value);
    Reference.reachabilityFence(this);
    return this;
  }

  /** Sets a numeric option. */
  public Options set(String name, double value) {
    return set(name, Double.toString(value));
  }

  /** Sets a boolean option. */
  public Options set(String name, boolean value) {
    return set(name, value ? "true" : "false");
  }

  /** Sets a list option ({@code variances}). */
  public Options set(String name, double... values) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < values.length; i++) {
      if (i > 0) {
        sb.append(',');
      }
      sb.append(Double.toString(values[i]));
    }
    return set(name, sb.toString());
  }

  /** Sets several options; values may be String, Number, Boolean or double[]. */
  public Options setAll(Map<String, ?> options) {
    for (Map.Entry<String, ?> e : options.entrySet()) {
      Object v = e.getValue();
      if (v instanceof double[]) {
        set(e.getKey(), (double[]) v);
      } else if (v instanceof Number) {
        set(e.getKey(), ((Number) v).doubleValue());
      } else if (v instanceof Boolean) {
        set(e.getKey(), ((Boolean) v).booleanValue());
      } else {
        set(e.getKey(), String.valueOf(v));
      }
    }
    return this;
  }

  /** Checks every option's range (SPEC §7); throws {@link MbxException} if one is out. */
  public Options validate() {
    mbx_native.mbx_options_validate(raw);
    Reference.reachabilityFence(this);
    return this;
  }

  /** True when the confidence loss is sigmoid focal (K = C), false for softmax CE (K = C-1). */
  public boolean isSigmoidFocal() {
    return raw.getConf_loss() == 1;
  }

  /** The raw struct, for org.mbx.internal calls. Keep this Options reachable while it is used. */
  public mbx_options_t raw() {
    return raw;
  }

  @Override
  public String toString() {
    return String.format(Locale.ROOT,
        "Options{prior_format=%d, force_match=%d, pos_threshold=%s, neg_threshold=%s, "
            + "loc_loss=%d, smooth_l1_beta=%s, conf_loss=%d, neg_pos_ratio=%s, "
            + "focal_alpha=%s, focal_gamma=%s, normalization=%d, external_norm=%s}",
        raw.getPrior_format(), raw.getForce_match(), raw.getPos_threshold(),
        raw.getNeg_threshold(), raw.getLoc_loss(), raw.getSmooth_l1_beta(),
        raw.getConf_loss(), raw.getNeg_pos_ratio(), raw.getFocal_alpha(),
        raw.getFocal_gamma(), raw.getNormalization(), raw.getExternal_norm());
  }
}
