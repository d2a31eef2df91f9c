package org.mbx;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Loads libmbx and the JNI wrapper.
 *
 * <p>The jar carries them under {@code org/mbx/native/<os>-<arch>/} together
 * with {@code mbx-natives.txt}, which lists the files in load order (libmbx
 * first, under its soname). They are copied into one fresh temporary
 * directory and {@link System#load}ed from there; the JNI library has RUNPATH
 * {@code $ORIGIN}, so it finds libmbx next to it. The copies are deleted when
 * the JVM exits.
 *
 * <p>Overrides: system property {@code mbx.native.dir} loads the files listed
 * in that directory's {@code mbx-natives.txt} (or libmbx_jni.so) in place; with
 * no bundled libraries, {@code System.loadLibrary("mbx_jni")} is tried
 * (java.library.path / LD_LIBRARY_PATH).
 */
public final class NativeLoader {
  private static final String INDEX = "mbx-natives.txt";
  private static boolean loaded;

  private NativeLoader() {}

  /** The resource folder for this platform, e.g. {@code org/mbx/native/linux-x86_64}. */
  public static String platformFolder() {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    if (os.startsWith("linux")) {
      os = "linux";
    } else if (os.startsWith("mac") || os.startsWith("darwin")) {
      os = "macos";
    } else if (os.startsWith("windows")) {
      os = "windows";
    }
    if (arch.equals("amd64") || arch.equals("x86_64")) {
      arch = "x86_64";
    } else if (arch.equals("arm64")) {
      arch = "aarch64";
    }
    return "org/mbx/native/" + os + "-" + arch;
  }

  /** Loads the native libraries once per class loader; later calls return at once. */
  public static synchronized void load() {
    if (loaded) {
      return;
    }
    try {
      String dir = System.getProperty("mbx.native.dir");
      if (dir != null && !dir.isEmpty()) {
        loadFromDirectory(new File(dir));
      } else if (!loadBundled()) {
        System.loadLibrary("mbx_jni");
      }
      loaded = true;
    } catch (IOException e) {
      UnsatisfiedLinkError err =
          new UnsatisfiedLinkError("mbx: cannot extract the bundled native libraries: " + e);
      err.initCause(e);
      throw err;
    }
  }

  private static List<String> readIndex(InputStream in) throws IOException {
    List<String> names = new ArrayList<>();
    try (BufferedReader r =
        new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      String line;
      while ((line = r.readLine()) != null) {
        line = line.trim();
        if (!line.isEmpty() && !line.startsWith("#")) {
          if (line.contains("/") || line.contains("\\") || line.startsWith(".")) {
            throw new IOException("bad native library name in " + INDEX + ": " + line);
          }
          names.add(line);
        }
      }
    }
    return names;
  }

  private static void loadFromDirectory(File dir) throws IOException {
    File index = new File(dir, INDEX);
    if (!index.isFile()) {
      System.load(new File(dir, System.mapLibraryName("mbx_jni")).getAbsolutePath());
      return;
    }
    for (String name : readIndex(Files.newInputStream(index.toPath()))) {
      System.load(new File(dir, name).getAbsolutePath());
    }
  }

  private static boolean loadBundled() throws IOException {
    String folder = platformFolder();
    ClassLoader cl = NativeLoader.class.getClassLoader();
    InputStream indexStream = cl.getResourceAsStream(folder + "/" + INDEX);
    if (indexStream == null) {
      return false;
    }
    List<String> names = readIndex(indexStream);
    Path tmp = Files.createTempDirectory("mbx-native-");
    tmp.toFile().deleteOnExit(); // registered first, so it runs after the files'
    List<Path> files = new ArrayList<>();
    for (String name : names) {
      try (InputStream in = cl.getResourceAsStream(folder + "/" + name)) {
        if (in == null) {
          throw new IOException("missing resource " + folder + "/" + name);
        }
        Path target = tmp.resolve(name);
        Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        target.toFile().deleteOnExit();
        files.add(target);
      }
    }
    for (Path f : files) {
      System.load(f.toAbsolutePath().toString());
    }
    return true;
  }
}
