package org.mbx;

import java.lang.ref.Reference;
import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.mbx.internal.mbx_native;
import org.mbx.internal.mbx_options_t;

/**
 * Loss and matching options ({@code mbx_options_t}): start from a preset,
 * then change single options by their names (docs/SPEC.md §9) / golden {@code case.json} names:
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
 * every call. The option list, each option's type and its enum choices come
 * from the library ({@code mbx_option_count}, {@code mbx_option_name},
 * {@code mbx_option_type}, {@code mbx_option_choices}); values are read back
 * as text with {@code mbx_options_get}, so nothing here names an option. Not
 * thread-safe for concurrent modification; reading from several threads
 * (concurrent calls) is fine.
 */
public final class Options {
  private final mbx_options_t raw;

  private Options(Preset preset) {
    NativeLoader.load();
    mbx_options_t r = new mbx_options_t();
    // Freed when this Options becomes unreachable (the struct is plain data).
    MbxContext.CLEANER.register(this, r::delete);
    mbx_native.mbx_options_init(r, preset.raw());
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
    Preset p = Preset.fromCode(code[0]);
    if (p == null) {
      throw new MbxException(Status.INVALID_ARGUMENT, "unknown preset " + name);
    }
    return new Options(p);
  }

  /** Every option name the library knows, in its order ({@code mbx_option_name}). */
  public static List<String> names() {
    NativeLoader.load();
    List<String> names = new ArrayList<>();
    for (int i = 0; i < mbx_native.mbx_option_count(); i++) {
      names.add(mbx_native.mbx_option_name(i));
    }
    return Collections.unmodifiableList(names);
  }

  /** An option's index in the library's list, or -1. */
  private static int indexOf(String name) {
    for (int i = 0; i < mbx_native.mbx_option_count(); i++) {
      if (mbx_native.mbx_option_name(i).equals(name)) {
        return i;
      }
    }
    return -1;
  }

  /**
   * An option's type as the library states it: "enum", "bool", "int",
   * "float" or "float[4]" (null for an unknown name).
   */
  public static String type(String name) {
    NativeLoader.load();
    int i = indexOf(name);
    return i < 0 ? null : mbx_native.mbx_option_type(i);
  }

  /** An enum option's value names in the order of their pinned values (empty otherwise). */
  public static List<String> choices(String name) {
    NativeLoader.load();
    int i = indexOf(name);
    String text = i < 0 ? "" : mbx_native.mbx_option_choices(i);
    return text.isEmpty() ? List.of() : List.of(text.split(","));
  }

  /** Sets one option from text: enums by name, numbers, true/false, "v0,v1,v2,v3". */
  public Options set(String name, String value) {
    mbx_native.mbx_options_set(raw, name, value);
    Reference.reachabilityFence(this);
    return this;
  }

  /** Sets a numeric option (an integral value of an int option as an integer). */
  public Options set(String name, double value) {
    if ("int".equals(type(name)) && value == Math.rint(value) && Math.abs(value) < 1e18) {
      return set(name, Long.toString((long) value));
    }
    return set(name, Double.toString(value));
  }

  /** Sets an integer option, or an enum option by its pinned value. */
  public Options set(String name, long value) {
    return set(name, (Object) Long.valueOf(value));
  }

  /** Sets a boolean option. */
  public Options set(String name, boolean value) {
    return set(name, value ? "true" : "false");
  }

  /** Sets a list option ({@code variances}). */
  public Options set(String name, double... values) {
    return set(name, (Object) values);
  }

  /**
   * Sets one option from a Java value, converted by the option's type: a
   * String as is (the library parses it), a Boolean as true/false, a Number
   * in C locale (for an enum option, an integer is its pinned value), an
   * Enum by its name, an array or List comma-separated.
   */
  public Options set(String name, Object value) {
    return set(name, text(name, value));
  }

  private static String text(String name, Object value) {
    if (value == null) {
      throw new MbxException(Status.INVALID_ARGUMENT, "option " + name + ": null value");
    }
    if (value instanceof String) {
      return (String) value;
    }
    if (value instanceof Boolean) {
      return ((Boolean) value) ? "true" : "false";
    }
    if (value instanceof Enum) {
      return ((Enum<?>) value).name();
    }
    if (value instanceof Number) {
      Number n = (Number) value;
      boolean integral = value instanceof Integer || value instanceof Long
          || value instanceof Short || value instanceof Byte;
      if (integral && "enum".equals(type(name))) {
        List<String> c = choices(name);
        long v = n.longValue();
        if (v >= 0 && v < c.size()) {
          return c.get((int) v);
        }
      }
      return integral ? Long.toString(n.longValue()) : Double.toString(n.doubleValue());
    }
    if (value instanceof List) {
      return join(name, ((List<?>) value).toArray());
    }
    if (value.getClass().isArray()) {
      Object[] items = new Object[Array.getLength(value)];
      for (int i = 0; i < items.length; i++) {
        items[i] = Array.get(value, i);
      }
      return join(name, items);
    }
    throw new MbxException(Status.INVALID_ARGUMENT, "option " + name + ": cannot use a value of type "
        + value.getClass().getName());
  }

  private static String join(String name, Object[] items) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < items.length; i++) {
      if (i > 0) {
        sb.append(',');
      }
      sb.append(text(name, items[i]));
    }
    return sb.toString();
  }

  /** Sets several options; values may be String, Number, Boolean, Enum, arrays or Lists. */
  public Options setAll(Map<String, ?> options) {
    for (Map.Entry<String, ?> e : options.entrySet()) {
      set(e.getKey(), e.getValue());
    }
    return this;
  }

  /**
   * One option as text, in the syntax {@link #set(String, String)} accepts
   * (setting it back gives the same value bitwise): {@code mbx_options_get}.
   */
  public String getText(String name) {
    String text = mbx_native.mbx_option_text(raw, name);
    Reference.reachabilityFence(this);
    return text;
  }

  /**
   * One option as a Java value by its type: String (enum value name),
   * Boolean, Integer, Double, or double[] (float[4]).
   */
  public Object get(String name) {
    String text = getText(name);
    String type = type(name);
    if ("bool".equals(type)) {
      return "true".equals(text);
    }
    if ("int".equals(type)) {
      return Integer.valueOf(text);
    }
    if ("float".equals(type)) {
      return parseDouble(text);
    }
    if (type.startsWith("float[")) {
      String[] parts = text.split(",");
      double[] values = new double[parts.length];
      for (int i = 0; i < parts.length; i++) {
        values[i] = parseDouble(parts[i]);
      }
      return values;
    }
    return text;
  }

  /** C-locale text of mbx_options_get ("inf", "-inf", "nan" included) as a double. */
  private static double parseDouble(String text) {
    switch (text.toLowerCase(Locale.ROOT)) {
      case "inf":
      case "+inf":
        return Double.POSITIVE_INFINITY;
      case "-inf":
        return Double.NEGATIVE_INFINITY;
      case "nan":
      case "-nan":
        return Double.NaN;
      default:
        return Double.parseDouble(text);
    }
  }

  /** Every option ({@link #names()} order) by its name, values as {@link #get(String)}. */
  public Map<String, Object> toMap() {
    Map<String, Object> map = new LinkedHashMap<>();
    for (String name : names()) {
      map.put(name, get(name));
    }
    return map;
  }

  /** Checks every option's range (docs/SPEC.md §7); throws {@link MbxException} if one is out. */
  public Options validate() {
    mbx_native.mbx_options_validate(raw);
    Reference.reachabilityFence(this);
    return this;
  }

  /** True when the confidence loss is sigmoid focal (K = C), false for softmax CE (K = C-1). */
  public boolean isSigmoidFocal() {
    return "SIGMOID_FOCAL".equals(getText("conf_loss"));
  }

  /** The raw struct, for org.mbx.internal calls. Keep this Options reachable while it is used. */
  public mbx_options_t raw() {
    return raw;
  }

  /** Every option as name=text ({@link #getText(String)}), in the library's order. */
  @Override
  public String toString() {
    StringBuilder sb = new StringBuilder("Options{");
    List<String> names = names();
    for (int i = 0; i < names.size(); i++) {
      if (i > 0) {
        sb.append(", ");
      }
      sb.append(names.get(i)).append('=').append(getText(names.get(i)));
    }
    return sb.append('}').toString();
  }
}
