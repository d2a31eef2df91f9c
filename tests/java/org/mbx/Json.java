package org.mbx;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A minimal JSON reader for golden case.json files: objects (LinkedHashMap),
 * arrays (List), strings, numbers (Double; also Python's Infinity / NaN),
 * true / false / null.
 */
final class Json {
  private final String s;
  private int i;

  private Json(String s) {
    this.s = s;
  }

  static Object parse(String text) {
    Json p = new Json(text);
    Object v = p.value();
    p.ws();
    if (p.i != p.s.length()) {
      throw p.error("trailing characters");
    }
    return v;
  }

  private IllegalArgumentException error(String what) {
    return new IllegalArgumentException("JSON: " + what + " at offset " + i);
  }

  private void ws() {
    while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
      i++;
    }
  }

  private boolean take(String word) {
    if (s.startsWith(word, i)) {
      i += word.length();
      return true;
    }
    return false;
  }

  private Object value() {
    ws();
    if (i >= s.length()) {
      throw error("unexpected end");
    }
    char c = s.charAt(i);
    if (c == '{') {
      return object();
    }
    if (c == '[') {
      return array();
    }
    if (c == '"') {
      return string();
    }
    if (take("true")) {
      return Boolean.TRUE;
    }
    if (take("false")) {
      return Boolean.FALSE;
    }
    if (take("null")) {
      return null;
    }
    if (take("NaN")) {
      return Double.NaN;
    }
    if (take("Infinity")) {
      return Double.POSITIVE_INFINITY;
    }
    if (take("-Infinity")) {
      return Double.NEGATIVE_INFINITY;
    }
    return number();
  }

  private Map<String, Object> object() {
    Map<String, Object> m = new LinkedHashMap<>();
    i++; // {
    ws();
    if (take("}")) {
      return m;
    }
    while (true) {
      ws();
      String key = string();
      ws();
      if (!take(":")) {
        throw error("expected ':'");
      }
      m.put(key, value());
      ws();
      if (take("}")) {
        return m;
      }
      if (!take(",")) {
        throw error("expected ',' or '}'");
      }
    }
  }

  private List<Object> array() {
    List<Object> a = new ArrayList<>();
    i++; // [
    ws();
    if (take("]")) {
      return a;
    }
    while (true) {
      a.add(value());
      ws();
      if (take("]")) {
        return a;
      }
      if (!take(",")) {
        throw error("expected ',' or ']'");
      }
    }
  }

  private String string() {
    if (i >= s.length() || s.charAt(i) != '"') {
      throw error("expected a string");
    }
    i++;
    StringBuilder sb = new StringBuilder();
    while (i < s.length()) {
      char c = s.charAt(i++);
      if (c == '"') {
        return sb.toString();
      }
      if (c == '\\') {
        char e = s.charAt(i++);
        switch (e) {
          case 'n': sb.append('\n'); break;
          case 't': sb.append('\t'); break;
          case 'r': sb.append('\r'); break;
          case 'b': sb.append('\b'); break;
          case 'f': sb.append('\f'); break;
          case 'u':
            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
            i += 4;
            break;
          default: sb.append(e);
        }
      } else {
        sb.append(c);
      }
    }
    throw error("unterminated string");
  }

  private Double number() {
    int start = i;
    while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
      i++;
    }
    if (start == i) {
      throw error("unexpected character '" + s.charAt(i) + "'");
    }
    return Double.parseDouble(s.substring(start, i));
  }
}
