// Mono test program for the C# binding: every golden case under the folder
// given as the first argument (each subfolder with a case.json, found at run
// time) and the error paths. Prints one line per test, then
// "N passed, N failed"; exits non-zero if anything failed.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using Mbx;

namespace Mbx.Tests {

/// <summary>A minimal numpy .npy reader (v1-3, C order, little endian f4/f8/i4/i8).</summary>
sealed class Npy {
  public string Descr;
  public long[] Shape;
  byte[] bytes;
  int offset;

  public static Npy Read(string path) {
    var b = File.ReadAllBytes(path);
    if (b.Length < 10 || b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY")
      throw new InvalidDataException(path + ": not a .npy file");
    int major = b[6];
    int headerLen, start;
    if (major == 1) { headerLen = b[8] | (b[9] << 8); start = 10; }
    else { headerLen = BitConverter.ToInt32(b, 8); start = 12; }
    string h = Encoding.UTF8.GetString(b, start, headerLen);
    var npy = new Npy { bytes = b, offset = start + headerLen };
    npy.Descr = Between(h, "'descr':", ",").Trim().Trim('\'');
    if (Between(h, "'fortran_order':", ",").Trim() != "False")
      throw new InvalidDataException(path + ": fortran_order not supported");
    string shape = Between(h, "'shape': (", ")");
    npy.Shape = shape.Split(new[] { ',' }, StringSplitOptions.RemoveEmptyEntries)
                     .Select(s => long.Parse(s.Trim(), CultureInfo.InvariantCulture)).ToArray();
    if (b.Length - npy.offset < npy.Size * npy.ItemSize)
      throw new InvalidDataException(path + ": truncated data");
    return npy;
  }

  static string Between(string s, string a, string b) {
    int i = s.IndexOf(a, StringComparison.Ordinal);
    if (i < 0) throw new InvalidDataException("npy header lacks " + a + ": " + s);
    i += a.Length;
    int j = s.IndexOf(b, i, StringComparison.Ordinal);
    return s.Substring(i, j - i);
  }

  public long Size { get { long n = 1; foreach (var d in Shape) n *= d; return n; } }
  int ItemSize { get { return Descr == "<f4" || Descr == "<i4" ? 4 : 8; } }

  public double[] Doubles() {
    var o = new double[Size];
    for (int i = 0; i < o.Length; i++) {
      switch (Descr) {
        case "<f4": o[i] = BitConverter.ToSingle(bytes, offset + 4 * i); break;
        case "<f8": o[i] = BitConverter.ToDouble(bytes, offset + 8 * i); break;
        case "<i4": o[i] = BitConverter.ToInt32(bytes, offset + 4 * i); break;
        case "<i8": o[i] = BitConverter.ToInt64(bytes, offset + 8 * i); break;
        default: throw new InvalidDataException("unsupported dtype " + Descr);
      }
    }
    return o;
  }

  public float[] Floats() {
    if (Descr != "<f4") throw new InvalidDataException("expected float32, got " + Descr);
    var o = new float[Size];
    Buffer.BlockCopy(bytes, offset, o, 0, o.Length * 4);
    return o;
  }

  public int[] Ints() {
    if (Descr != "<i4") throw new InvalidDataException("expected int32, got " + Descr);
    var o = new int[Size];
    Buffer.BlockCopy(bytes, offset, o, 0, o.Length * 4);
    return o;
  }
}

/// <summary>A minimal JSON reader (also Python's Infinity / NaN).</summary>
sealed class Json {
  readonly string s;
  int i;
  Json(string s) { this.s = s; }

  public static object Parse(string text) {
    var p = new Json(text);
    var v = p.Value();
    p.Ws();
    if (p.i != p.s.Length) throw p.Error("trailing characters");
    return v;
  }

  Exception Error(string what) { return new FormatException("JSON: " + what + " at " + i); }
  void Ws() { while (i < s.Length && char.IsWhiteSpace(s[i])) i++; }
  bool Take(string w) {
    if (string.CompareOrdinal(s, i, w, 0, w.Length) == 0) { i += w.Length; return true; }
    return false;
  }

  object Value() {
    Ws();
    if (i >= s.Length) throw Error("unexpected end");
    char c = s[i];
    if (c == '{') return Obj();
    if (c == '[') return Arr();
    if (c == '"') return Str();
    if (Take("true")) return true;
    if (Take("false")) return false;
    if (Take("null")) return null;
    if (Take("NaN")) return double.NaN;
    if (Take("Infinity")) return double.PositiveInfinity;
    if (Take("-Infinity")) return double.NegativeInfinity;
    int start = i;
    while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
    if (start == i) throw Error("unexpected character");
    return double.Parse(s.Substring(start, i - start), CultureInfo.InvariantCulture);
  }

  Dictionary<string, object> Obj() {
    var m = new Dictionary<string, object>();
    i++;
    Ws();
    if (Take("}")) return m;
    while (true) {
      Ws();
      string k = Str();
      Ws();
      if (!Take(":")) throw Error("expected ':'");
      m[k] = Value();
      Ws();
      if (Take("}")) return m;
      if (!Take(",")) throw Error("expected ',' or '}'");
    }
  }

  List<object> Arr() {
    var a = new List<object>();
    i++;
    Ws();
    if (Take("]")) return a;
    while (true) {
      a.Add(Value());
      Ws();
      if (Take("]")) return a;
      if (!Take(",")) throw Error("expected ',' or ']'");
    }
  }

  string Str() {
    if (i >= s.Length || s[i] != '"') throw Error("expected a string");
    i++;
    var sb = new StringBuilder();
    while (i < s.Length) {
      char c = s[i++];
      if (c == '"') return sb.ToString();
      if (c == '\\') {
        char e = s[i++];
        switch (e) {
          case 'n': sb.Append('\n'); break;
          case 't': sb.Append('\t'); break;
          case 'r': sb.Append('\r'); break;
          case 'b': sb.Append('\b'); break;
          case 'f': sb.Append('\f'); break;
          case 'u': sb.Append((char)Convert.ToInt32(s.Substring(i, 4), 16)); i += 4; break;
          default: sb.Append(e); break;
        }
      } else {
        sb.Append(c);
      }
    }
    throw Error("unterminated string");
  }
}

sealed class GoldenCase {
  public readonly string Name, Dir;
  public readonly Dictionary<string, object> OptionValues;

  /// <summary>The loss's num_pos: num_pos_loss.npy where present (HARD_EXAMPLE drops positives).</summary>
  public int[] LossNumPos() {
    return File.Exists(Path.Combine(Dir, "num_pos_loss.npy")) ? this["num_pos_loss"].Ints() : this["num_pos"].Ints();
  }

  public GoldenCase(string dir) {
    Dir = dir;
    Name = Path.GetFileName(dir);
    var meta = (Dictionary<string, object>)Json.Parse(File.ReadAllText(Path.Combine(dir, "case.json")));
    object o;
    if (!meta.TryGetValue("options", out o) || !(o is Dictionary<string, object>))
      throw new InvalidDataException(dir + "/case.json has no \"options\"");
    OptionValues = (Dictionary<string, object>)o;
  }

  public Npy this[string tensor] { get { return Npy.Read(Path.Combine(Dir, tensor + ".npy")); } }

  /// <summary>An optional input tensor (gt_flags, prior_levels): its ints, or null when absent.</summary>
  public int[] OptionalInts(string tensor) {
    return File.Exists(Path.Combine(Dir, tensor + ".npy")) ? this[tensor].Ints() : null;
  }

  public int[] GtFlags() { return OptionalInts("gt_flags"); }
  public int[] PriorLevels() { return OptionalInts("prior_levels"); }

  /// <summary>Every key of "options" set by name (the option set is complete).</summary>
  public Options BuildOptions() {
    var opts = new Options(Preset.SsdPytorch);
    foreach (var kv in OptionValues) {
      if (kv.Value is List<object>)
        opts.Set(kv.Key, ((List<object>)kv.Value).Select(x => (double)x).ToArray());
      else if (kv.Value is bool)
        opts.Set(kv.Key, (bool)kv.Value);
      else if (kv.Value is double)
        opts.Set(kv.Key, (double)kv.Value);
      else
        opts.Set(kv.Key, Convert.ToString(kv.Value, CultureInfo.InvariantCulture));
    }
    return opts.Validate();
  }
}

static class Program {
  static int passed, failed;

  static void Test(string name, Action body) {
    try {
      body();
      passed++;
      Console.WriteLine("PASS " + name);
    } catch (Exception e) {
      failed++;
      Console.WriteLine("FAIL " + name + ": " + e);
    }
  }

  static void Check(bool ok, string what) {
    if (!ok) throw new Exception("check failed: " + what);
  }

  static void Equal<T>(T[] want, T[] got, string what) {
    Check(want.Length == got.Length, what + ": length " + got.Length + " != " + want.Length);
    for (int i = 0; i < want.Length; i++)
      Check(EqualityComparer<T>.Default.Equals(want[i], got[i]),
            what + "[" + i + "]: got " + got[i] + ", expected " + want[i]);
  }

  static void Close(double[] want, float[] got, double rel, double relMax, string what) {
    Check(want.Length == got.Length, what + ": length");
    double scale = want.Length == 0 ? 0 : want.Max(x => Math.Abs(x));
    for (int i = 0; i < want.Length; i++) {
      double tol = relMax * scale + rel * Math.Abs(want[i]);
      Check(Math.Abs(got[i] - want[i]) <= tol,
            what + "[" + i + "]: got " + got[i] + ", expected " + want[i] + " (tol " + tol + ")");
    }
  }

  static void LossClose(double want, double got, string what) {
    double tol = 1e-4 * Math.Abs(want) + 1e-7;
    Check(Math.Abs(got - want) <= tol, what + ": got " + got + ", expected " + want);
  }

  static MbxException Throws(Action a, Status status, params string[] mentions) {
    try {
      a();
    } catch (MbxException e) {
      Check(e.Status == status, "status " + e.Status + ", expected " + status + " (" + e.Message + ")");
      Check(e.LibraryMessage.Length > 0, "empty message");
      foreach (var m in mentions)
        Check(e.Message.IndexOf(m, StringComparison.OrdinalIgnoreCase) >= 0,
              "message \"" + e.Message + "\" should mention " + m);
      return e;
    }
    throw new Exception("expected MbxException(" + status + ")");
  }

  static void ThrowsType<E>(Action a) where E : Exception {
    try {
      a();
    } catch (E) {
      return;
    }
    throw new Exception("expected " + typeof(E).Name);
  }

  // --- golden cases ------------------------------------------------------------

  static void GoldenTests(string goldenDir, Func<string, bool> filter = null) {
    var dirs = Directory.GetDirectories(goldenDir)
                        .Where(d => File.Exists(Path.Combine(d, "case.json")))
                        .Where(d => filter == null || filter(d))
                        .OrderBy(d => d, StringComparer.Ordinal).ToList();
    Test("golden cases found in " + goldenDir, () => Check(dirs.Count > 0, "no case.json"));
    foreach (var dir in dirs) {
      var c = new GoldenCase(dir);
      foreach (var path in new[] { ComputePath.Auto, ComputePath.CpuScalar }) {
        string tag = c.Name + " [" + path + "] ";
        Test(tag + "match", () => {
          using (var ctx = new Context().SetPath(path))
          using (var opts = c.BuildOptions()) {
            long k = c["conf"].Shape[2] - (opts.IsSigmoidFocal ? 0 : 1);
            var m = MultiBox.Match(ctx, opts, k, c["priors"].Floats(), c["gt_boxes"].Floats(),
                                   c["gt_labels"].Ints(), c["gt_counts"].Ints(), c.GtFlags(),
                                   c.PriorLevels());
            Equal(c["conf_target"].Ints(), m.ConfTarget, "conf_target");
            Equal(c["matched_gt"].Ints(), m.MatchedGt, "matched_gt");
            Equal(c["num_pos"].Ints(), m.NumPos, "num_pos");
            Close(c["loc_target"].Doubles(), m.LocTarget, 1e-5, 1e-5, "loc_target");
          }
        });
        Test(tag + "forward", () => {
          using (var ctx = new Context().SetPath(path))
          using (var opts = c.BuildOptions()) {
            var r = MultiBox.Forward(ctx, opts, c["priors"].Floats(), c["gt_boxes"].Floats(),
                                     c["gt_labels"].Ints(), c["gt_counts"].Ints(),
                                     c["loc"].Floats(), c["conf"].Floats(), c.GtFlags(),
                                     c.PriorLevels());
            LossClose(c["loss_loc"].Doubles()[0], r.LossLoc, "loss_loc");
            LossClose(c["loss_conf"].Doubles()[0], r.LossConf, "loss_conf");
            Equal(c.LossNumPos(), r.NumPos, "num_pos");
          }
        });
        Test(tag + "forwardBackward arrays", () => {
          using (var ctx = new Context().SetPath(path))
          using (var opts = c.BuildOptions()) {
            var r = MultiBox.ForwardBackward(ctx, opts, c["priors"].Floats(),
                                             c["gt_boxes"].Floats(), c["gt_labels"].Ints(),
                                             c["gt_counts"].Ints(), c["loc"].Floats(),
                                             c["conf"].Floats(), c.GtFlags(), c.PriorLevels());
            LossClose(c["loss_loc"].Doubles()[0], r.LossLoc, "loss_loc");
            LossClose(c["loss_conf"].Doubles()[0], r.LossConf, "loss_conf");
            Close(c["grad_loc"].Doubles(), r.GradLoc, 1e-4, 1e-4, "grad_loc");
            Close(c["grad_conf"].Doubles(), r.GradConf, 1e-4, 1e-4, "grad_conf");
          }
        });
        Test(tag + "forwardBackward spans (offset slices, upstream 2, 0.5)", () => {
          using (var ctx = new Context().SetPath(path))
          using (var opts = c.BuildOptions()) {
            var loc = c["loc"].Floats();
            var conf = c["conf"].Floats();
            // Inputs and outputs as slices into larger arrays (pinned, not copied).
            var locBig = new float[loc.Length + 3];
            Array.Copy(loc, 0, locBig, 3, loc.Length);
            var gradLocBig = new float[loc.Length + 5];
            var gradConfBig = new float[conf.Length + 1];
            for (int i = 0; i < gradLocBig.Length; i++) gradLocBig[i] = 42f;
            var r = MultiBox.ForwardBackward(ctx, opts, c["priors"].Floats(),
                                             c["gt_boxes"].Floats(), c["gt_labels"].Ints(),
                                             c["gt_counts"].Ints(),
                                             new ReadOnlySpan<float>(locBig, 3, loc.Length), conf,
                                             c.GtFlags(), c.PriorLevels(),
                                             new Span<float>(gradLocBig, 5, loc.Length),
                                             new Span<float>(gradConfBig, 1, conf.Length),
                                             2.0, 0.5);
            LossClose(c["loss_loc"].Doubles()[0], r.LossLoc, "loss_loc");
            var wantLoc = c["grad_loc"].Doubles().Select(x => 2.0 * x).ToArray();
            var wantConf = c["grad_conf"].Doubles().Select(x => 0.5 * x).ToArray();
            Close(wantLoc, gradLocBig.Skip(5).ToArray(), 1e-4, 1e-4, "grad_loc*2");
            Close(wantConf, gradConfBig.Skip(1).ToArray(), 1e-4, 1e-4, "grad_conf*0.5");
            for (int i = 0; i < 5; i++) Check(gradLocBig[i] == 42f, "wrote before the slice");
          }
        });
        Test(tag + "backward", () => {
          using (var ctx = new Context().SetPath(path))
          using (var opts = c.BuildOptions()) {
            var loc = c["loc"].Floats();
            var conf = c["conf"].Floats();
            var gradLoc = new float[loc.Length];
            var gradConf = new float[conf.Length];
            MultiBox.Backward(ctx, opts, c["priors"].Floats(), c["gt_boxes"].Floats(),
                              c["gt_labels"].Ints(), c["gt_counts"].Ints(), loc, conf,
                              c.GtFlags(), c.PriorLevels(), gradLoc, gradConf, 1.0, 1.0);
            Close(c["grad_loc"].Doubles(), gradLoc, 1e-4, 1e-4, "grad_loc");
            Close(c["grad_conf"].Doubles(), gradConf, 1e-4, 1e-4, "grad_conf");
          }
        });
      }
      Test(c.Name + " [null context] forward", () => {
        using (var opts = c.BuildOptions()) {
          var r = MultiBox.Forward(null, opts, c["priors"].Floats(), c["gt_boxes"].Floats(),
                                   c["gt_labels"].Ints(), c["gt_counts"].Ints(),
                                   c["loc"].Floats(), c["conf"].Floats(), c.GtFlags(),
                                   c.PriorLevels());
          LossClose(c["loss_conf"].Doubles()[0], r.LossConf, "loss_conf");
        }
      });
    }
  }

  // --- error paths ----------------------------------------------------------------

  static float[] Priors() { return new float[] { 0, 0, 10, 10, 10, 0, 20, 10, 0, 10, 10, 20, 10, 10, 20, 20 }; }
  static float[] GtBoxes() { return new float[] { 0, 0, 10, 10, 10, 10, 20, 19 }; }
  static int[] GtLabels() { return new[] { 0, 1 }; }
  static int[] GtCounts() { return new[] { 2 }; }
  static float[] Loc() { return Enumerable.Range(0, 16).Select(i => 0.05f * (i % 5) - 0.1f).ToArray(); }
  static float[] Conf() { return new float[] { 0.5f, -1f, 0.2f, 0.3f, -0.7f, 1.1f, 0f, -2f }; }
  static Options Opts() { return Options.FromPreset("torchvision_retinanet"); }

  static void ErrorTests() {
    Test("fixture is valid", () => {
      var r = MultiBox.ForwardBackward(null, Opts(), Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                       Loc(), Conf());
      Check(r.NumPos.Sum() == 2, "2 positives");
      Check(r.LossLoc > 0 && r.LossConf > 0, "positive losses");
    });
    Test("NaN GT box -> InvalidArgument, outputs untouched", () => {
      var boxes = GtBoxes();
      boxes[5] = float.NaN;
      var gradLoc = Enumerable.Repeat(42f, 16).ToArray();
      var gradConf = Enumerable.Repeat(42f, 8).ToArray();
      Throws(() => MultiBox.ForwardBackward(null, Opts(), Priors(), boxes, GtLabels(), GtCounts(),
                                            Loc(), Conf(), gradLoc, gradConf),
             Status.InvalidArgument, "gt_boxes");
      Check(gradLoc.All(x => x == 42f) && gradConf.All(x => x == 42f), "outputs untouched");
    });
    Test("NaN GT box skipped with invalid_gt=SKIP", () => {
      var boxes = GtBoxes();
      boxes[5] = float.NaN;
      var r = MultiBox.Forward(null, Opts().Set("invalid_gt", "SKIP"), Priors(), boxes, GtLabels(),
                               GtCounts(), Loc(), Conf());
      Check(r.NumPos.Sum() == 1, "1 positive");
    });
    Test("label out of range -> InvalidArgument", () => {
      Throws(() => MultiBox.Forward(null, Opts(), Priors(), GtBoxes(), new[] { 0, 2 }, GtCounts(),
                                    Loc(), Conf()), Status.InvalidArgument, "label");
      Throws(() => MultiBox.Match(null, Opts(), 1, Priors(), GtBoxes(), GtLabels(), GtCounts()),
             Status.InvalidArgument, "label");
    });
    Test("gt_counts > G -> InvalidArgument", () => {
      Throws(() => MultiBox.Forward(null, Opts(), Priors(), GtBoxes(), GtLabels(), new[] { 3 },
                                    Loc(), Conf()), Status.InvalidArgument, "gt_counts");
    });
    Test("bad shapes -> InvalidArgument", () => {
      Throws(() => MultiBox.Forward(null, Opts(), Priors().Take(15).ToArray(), GtBoxes(),
                                    GtLabels(), GtCounts(), Loc(), Conf()),
             Status.InvalidArgument, "priors");
      Throws(() => MultiBox.Forward(null, Opts(), Priors(), GtBoxes().Take(4).ToArray(),
                                    GtLabels(), GtCounts(), Loc(), Conf()),
             Status.InvalidArgument, "gt_boxes");
      Throws(() => MultiBox.Forward(null, Opts(), Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                    Loc().Take(12).ToArray(), Conf()),
             Status.InvalidArgument, "loc");
      Throws(() => MultiBox.Forward(null, Opts(), Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                    Loc(), Conf().Take(7).ToArray()),
             Status.InvalidArgument, "conf");
      Throws(() => MultiBox.ForwardBackward(null, Opts(), Priors(), GtBoxes(), GtLabels(),
                                            GtCounts(), Loc(), Conf(), new float[16],
                                            new float[7]),
             Status.InvalidArgument, "grad_conf");
      // consistent for the C# layer, rejected by the library: C = 1 for softmax CE
      Throws(() => MultiBox.Forward(null, new Options(Preset.SsdPytorch).Set("prior_format", "CORNERS"),
                                    Priors(), GtBoxes(), GtLabels(), GtCounts(), Loc(),
                                    new float[4]), Status.InvalidArgument, "conf");
    });
    Test("bad option name / value -> InvalidArgument, options unchanged", () => {
      var o = Opts();
      string before = o.ToString();
      Throws(() => o.Set("no_such_option", "1"), Status.InvalidArgument, "no_such_option");
      Throws(() => o.Set("focal_gamma", "abc"), Status.InvalidArgument);
      Throws(() => o.Set("conf_loss", "HINGE"), Status.InvalidArgument);
      Throws(() => o.Set("variances", "1,2"), Status.InvalidArgument);
      Check(o.ToString() == before, "options changed by a failed Set");
    });
    Test("out-of-range option fails Validate and calls", () => {
      var o = Opts().Set("pos_threshold", 1.5);
      Throws(() => o.Validate(), Status.InvalidArgument);
      Throws(() => MultiBox.Forward(null, o, Priors(), GtBoxes(), GtLabels(), GtCounts(), Loc(),
                                    Conf()), Status.InvalidArgument);
    });
    Test("ToString lists every library option; values round-trip", () => {
      int count = Mbx.Native.mbx_native.mbx_option_count();
      Check(Options.Names.Count == count, "Names has mbx_option_count() entries");
      foreach (Preset p in Enum.GetValues(typeof(Preset))) {
        var o = new Options(p);
        string text = o.ToString();
        for (int i = 0; i < count; i++) {
          string name = Mbx.Native.mbx_native.mbx_option_name(i);
          Check(text.Contains(name + "=" + o.Get(name)), name + " in " + text);
        }
        var copy = new Options(Preset.SsdPytorch);
        foreach (string name in Options.Names) copy.Set(name, o.Get(name));
        Check(copy.ToString() == text, "options set from their text: " + p);
      }
      Check(Opts().Set("force_match", 2).Get("force_match") == "LOW_QUALITY", "enum by pinned value");
      Check(Options.OptionType("variances") == "float[4]", "type of variances");
    });
    Test("enums carry the library's values", () => {
      foreach (Status s in Enum.GetValues(typeof(Status)))
        Check(Mbx.Native.mbx_native.mbx_status_string((Mbx.Native.mbx_status_t)(int)s)
                  .Replace("_", "") == "MBXSTATUS" + s.ToString().ToUpperInvariant(), s.ToString());
      Check(Enum.GetValues(typeof(Preset)).Length == Mbx.Native.mbx_native.mbx_preset_count(),
            "one Preset per library preset");
      foreach (Preset p in Enum.GetValues(typeof(Preset)))
        Check(Mbx.Native.mbx_native.mbx_preset_name((Mbx.Native.mbx_preset_t)(int)p).Replace("_", "")
                  == p.ToString().ToLowerInvariant(), p.ToString());
    });
    Test("Caffe options by name", () => {
      var c = new Options(Preset.CaffeSsd);
      Check(c.Get("force_match") == "BIPARTITE", "force_match");
      Check(Options.OptionType("mining_sample_size") == "int", "int type");
      Check(c.Get("mining_sample_size") == "64", "sample size default");
      Check(c.Set("mining", "HARD_EXAMPLE").Set("mining_sample_size", 12L).Get("mining_sample_size") == "12",
            "set an int option");
      Throws(() => new Options(Preset.CaffeSsd).Set("mining", "HARD"), Status.InvalidArgument);
      Throws(() => new Options(Preset.CaffeSsd).Set("mining_sample_size", 0L).Validate(), Status.InvalidArgument);
    });
    Test("unknown preset -> InvalidArgument", () => {
      Throws(() => Options.FromPreset("yolo_v3"), Status.InvalidArgument);
    });
    Test("disposed context -> ObjectDisposedException", () => {
      var ctx = new Context();
      MultiBox.Forward(ctx, Opts(), Priors(), GtBoxes(), GtLabels(), GtCounts(), Loc(), Conf());
      ctx.Dispose();
      ctx.Dispose();
      Check(ctx.IsDisposed, "IsDisposed");
      ThrowsType<ObjectDisposedException>(() => MultiBox.Forward(ctx, Opts(), Priors(), GtBoxes(),
                                                                 GtLabels(), GtCounts(), Loc(),
                                                                 Conf()));
      ThrowsType<ObjectDisposedException>(() => ctx.SetNumThreads(1));
    });
    Test("null options -> ArgumentNullException", () => {
      ThrowsType<ArgumentNullException>(() => MultiBox.Forward(null, null, Priors(), GtBoxes(),
                                                               GtLabels(), GtCounts(), Loc(),
                                                               Conf()));
    });
    Test("results independent of the thread count", () => {
      using (var one = new Context().SetNumThreads(1))
      using (var all = new Context().SetNumThreads(0)) {
        var a = MultiBox.ForwardBackward(one, Opts(), Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                         Loc(), Conf());
        var b = MultiBox.ForwardBackward(all, Opts(), Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                         Loc(), Conf());
        Check(a.LossLoc == b.LossLoc && a.LossConf == b.LossConf, "losses");
        Equal(a.GradLoc, b.GradLoc, "grad_loc");
        Equal(a.GradConf, b.GradConf, "grad_conf");
        all.ReleaseWorkspace();
      }
    });
    Test("match + decode on the fixture", () => {
      var m = MultiBox.Match(null, Opts(), 2, Priors(), GtBoxes(), GtLabels(), GtCounts());
      Check(m.ConfTarget[0] == 1 && m.MatchedGt[0] == 0, "prior 0 -> GT 0");
      Check(m.ConfTarget[3] == 2 && m.MatchedGt[3] == 1, "prior 3 -> GT 1");
      var boxes = MultiBox.Decode(null, Opts(), Priors(), m.LocTarget);
      for (int k = 0; k < 4; k++) {
        Check(Math.Abs(boxes[k] - GtBoxes()[k]) < 1e-4, "decode prior 0");
        Check(Math.Abs(boxes[12 + k] - GtBoxes()[4 + k]) < 1e-4, "decode prior 3");
      }
    });
    Test("priors and version", () => {
      Check(System.Text.RegularExpressions.Regex.IsMatch(MultiBox.Version, @"^\d+\.\d+\.\d+$"),
            MultiBox.Version);
      Check(MultiBox.SsdPriorCount(SsdConfig.Ssd300Voc) == 8732, "8732 SSD300 priors");
      var ssd = MultiBox.SsdPriors(SsdConfig.Ssd300Voc);
      Check(ssd.Length == 8732 * 4 && ssd.All(v => v >= 0f && v <= 1f), "SSD priors in [0,1]");
      long n = MultiBox.RetinaNetPriorCount(512, 512);
      Check(n > 0 && MultiBox.RetinaNetPriors(512, 512).Length == n * 4, "RetinaNet anchors");
    });
  }

  // --- the optional inputs gt_flags and prior_levels (mbx_run) ---------------------

  static void SameLoss(LossResult want, LossResult got) {
    Check(want.LossLoc == got.LossLoc && want.LossConf == got.LossConf, "losses bitwise");
    Equal(want.NumPos, got.NumPos, "num_pos");
    Equal(want.GradLoc, got.GradLoc, "grad_loc");
    Equal(want.GradConf, got.GradConf, "grad_conf");
  }

  static void OptionalInputTests() {
    // The ErrorTests fixture: B = 1, G = 2, P = 4, C = 2.
    var zeroFlags = new int[2];
    var levels = new[] { 3, 1 };
    Test("zero gt_flags / a validated prior_levels split change nothing", () => {
      using (var opts = Opts()) {
        var baseFb = MultiBox.ForwardBackward(null, opts, Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                              Loc(), Conf());
        var baseM = MultiBox.Match(null, opts, 2, Priors(), GtBoxes(), GtLabels(), GtCounts());
        foreach (var e in new[] { new[] { zeroFlags, null }, new[] { null, levels },
                                  new[] { zeroFlags, levels } }) {
          SameLoss(baseFb, MultiBox.ForwardBackward(null, opts, Priors(), GtBoxes(), GtLabels(),
                                                    GtCounts(), Loc(), Conf(), e[0], e[1]));
          var fwd = MultiBox.Forward(null, opts, Priors(), GtBoxes(), GtLabels(), GtCounts(), Loc(),
                                     Conf(), e[0], e[1]);
          Check(fwd.LossLoc == baseFb.LossLoc && fwd.LossConf == baseFb.LossConf,
                "forward losses bitwise");
          Equal(baseFb.NumPos, fwd.NumPos, "forward num_pos");
          var m = MultiBox.Match(null, opts, 2, Priors(), GtBoxes(), GtLabels(), GtCounts(), e[0],
                                 e[1]);
          Equal(baseM.ConfTarget, m.ConfTarget, "conf_target");
          Equal(baseM.MatchedGt, m.MatchedGt, "matched_gt");
          Equal(baseM.LocTarget, m.LocTarget, "loc_target");
          Equal(baseM.NumPos, m.NumPos, "num_pos");
          var gradLoc = new float[16];
          var gradConf = new float[8];
          MultiBox.Backward(null, opts, Priors(), GtBoxes(), GtLabels(), GtCounts(), Loc(), Conf(),
                            e[0], e[1], gradLoc, gradConf, 1.0, 1.0);
          Equal(baseFb.GradLoc, gradLoc, "backward grad_loc");
          Equal(baseFb.GradConf, gradConf, "backward grad_conf");
        }
      }
    });
    Test("bad gt_flags: InvalidArgument naming gt_flags", () => {
      using (var opts = Opts()) {
        Throws(() => MultiBox.ForwardBackward(null, opts, Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                              Loc(), Conf(), new int[1], null),
               Status.InvalidArgument, "gt_flags");
        // Bit 1 is reserved: the library names the argument.
        Throws(() => MultiBox.Match(null, opts, 2, Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                    new[] { 0, 2 }, null),
               Status.InvalidArgument, "gt_flags");
      }
    });
    Test("bad prior_levels: InvalidArgument naming prior_levels, nothing written", () => {
      using (var opts = Opts()) {
        var gradLoc = Enumerable.Repeat(7f, 16).ToArray();
        var gradConf = new float[8];
        Throws(() => MultiBox.ForwardBackward(null, opts, Priors(), GtBoxes(), GtLabels(),
                                              GtCounts(), Loc(), Conf(), null, new[] { 3, 2 },
                                              gradLoc, gradConf, 1.0, 1.0),
               Status.InvalidArgument, "prior_levels");
        Check(gradLoc.All(x => x == 7f), "grad_loc untouched");
        Throws(() => MultiBox.Match(null, opts, 2, Priors(), GtBoxes(), GtLabels(), GtCounts(),
                                    null, new[] { 5, -1 }),
               Status.InvalidArgument, "prior_levels");
      }
    });
    Test("RetinaNetPriorLevels sum to the anchor count", () => {
      foreach (var hw in new[] { new long[] { 512, 512 }, new long[] { 600, 1000 },
                                 new long[] { 333, 517 } }) {
        var lv = MultiBox.RetinaNetPriorLevels(hw[0], hw[1]);
        Check(lv.Length == MultiBox.RetinaNetLevels, "5 levels");
        Check(lv.All(x => x > 0 && x % 9 == 0), "9 anchors per cell");
        Check(lv.Sum(x => (long)x) == MultiBox.RetinaNetPriorCount(hw[0], hw[1]), "sum = P");
      }
    });
  }

  static int Main(string[] args) {
    string golden = args.Length > 0 ? args[0]
        : Path.Combine(AppDomain.CurrentDomain.BaseDirectory, "golden");
    GoldenTests(golden);
    // The generated cases with optional inputs (next to the golden set), through the overloads.
    string generated = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(golden).TrimEnd('/')),
                                    "generated");
    if (Directory.Exists(generated))
      GoldenTests(generated, d => File.Exists(Path.Combine(d, "gt_flags.npy")) ||
                                  File.Exists(Path.Combine(d, "prior_levels.npy")));
    ErrorTests();
    OptionalInputTests();
    if (args.Length > 1) {
      // ctest passes the project's version (project(VERSION) in CMakeLists.txt).
      Test("runtime version is the project version", () => {
        Check(MultiBox.Version == args[1], MultiBox.Version + " vs " + args[1]);
      });
    }
    Console.WriteLine(passed + " passed, " + failed + " failed");
    return failed == 0 && passed > 0 ? 0 : 1;
  }
}

}
