package org.mbx;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A minimal reader of numpy .npy files (versions 1-3, C order, little endian f4/f8/i4/i8). */
final class Npy {
  final String descr;
  final long[] shape;
  private final ByteBuffer data;

  private Npy(String descr, long[] shape, ByteBuffer data) {
    this.descr = descr;
    this.shape = shape;
    this.data = data;
  }

  private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
  private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
  private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

  static Npy read(Path file) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    byte[] magic = new byte[6];
    b.get(magic);
    if ((magic[0] & 0xff) != 0x93 || !new String(magic, 1, 5, StandardCharsets.ISO_8859_1)
        .equals("NUMPY")) {
      throw new IOException(file + ": not a .npy file");
    }
    int major = b.get() & 0xff;
    b.get(); // minor
    int headerLen = major == 1 ? (b.getShort() & 0xffff) : b.getInt();
    byte[] header = new byte[headerLen];
    b.get(header);
    String h = new String(header, major >= 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
    Matcher m = DESCR.matcher(h);
    if (!m.find()) {
      throw new IOException(file + ": no descr in header " + h);
    }
    String descr = m.group(1);
    Matcher f = FORTRAN.matcher(h);
    if (f.find() && f.group(1).equals("True")) {
      throw new IOException(file + ": fortran_order arrays are not supported");
    }
    Matcher s = SHAPE.matcher(h);
    if (!s.find()) {
      throw new IOException(file + ": no shape in header " + h);
    }
    List<Long> dims = new ArrayList<>();
    for (String part : s.group(1).split(",")) {
      if (!part.trim().isEmpty()) {
        dims.add(Long.parseLong(part.trim()));
      }
    }
    long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
    ByteBuffer payload = b.slice().order(ByteOrder.LITTLE_ENDIAN);
    Npy npy = new Npy(descr, shape, payload);
    long need = npy.size() * npy.itemSize();
    if (payload.remaining() < need) {
      throw new IOException(file + ": " + payload.remaining() + " data bytes, expected " + need);
    }
    return npy;
  }

  long size() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  private int itemSize() {
    switch (descr) {
      case "<f4":
      case "<i4":
        return 4;
      case "<f8":
      case "<i8":
        return 8;
      default:
        throw new IllegalStateException("unsupported dtype " + descr);
    }
  }

  double[] asDoubles() {
    int n = (int) size();
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      switch (descr) {
        case "<f4": out[i] = data.getFloat(4 * i); break;
        case "<f8": out[i] = data.getDouble(8 * i); break;
        case "<i4": out[i] = data.getInt(4 * i); break;
        case "<i8": out[i] = data.getLong(8 * i); break;
        default: throw new IllegalStateException("unsupported dtype " + descr);
      }
    }
    return out;
  }

  float[] asFloats() {
    if (!descr.equals("<f4")) {
      throw new IllegalStateException("expected float32, got " + descr);
    }
    float[] out = new float[(int) size()];
    data.asFloatBuffer().get(out);
    return out;
  }

  int[] asInts() {
    if (!descr.equals("<i4")) {
      throw new IllegalStateException("expected int32, got " + descr);
    }
    int[] out = new int[(int) size()];
    data.asIntBuffer().get(out);
    return out;
  }
}
