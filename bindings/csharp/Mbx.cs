// Idiomatic C# layer over the SWIG module (namespace Mbx.Native).
//
// Tensors are flat, row-major float32 / int32 spans (arrays convert
// implicitly). They are pinned with `fixed` for the duration of a call and
// passed to the library without a copy. Dimensions are inferred from the
// lengths: P = priors/4, B = gtCounts, G = gtLabels/B, C = conf/(B*P); inputs
// must have exactly the implied lengths, outputs at least as many elements.
// Errors: MbxException (Status + the library's message), ArgumentNullException
// for a null Options, ObjectDisposedException for a disposed Context.
// Built with Mono's mcs (C# 7.2): spans are pinned through
// MemoryMarshal.GetReference (mcs has no pattern-based `fixed` on spans).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Mbx.Native;

namespace Mbx {

// The enums below take their values from the SWIG-generated ones (the
// library's pinned values); only the C# spelling of the names is added.

/// <summary>Status codes of the C API (mbx_status_t); values are pinned.</summary>
public enum Status {
  Ok = (int)mbx_status_t.MBX_STATUS_OK,
  InvalidArgument = (int)mbx_status_t.MBX_STATUS_INVALID_ARGUMENT,
  Unsupported = (int)mbx_status_t.MBX_STATUS_UNSUPPORTED,
  OutOfMemory = (int)mbx_status_t.MBX_STATUS_OUT_OF_MEMORY,
  NoDevice = (int)mbx_status_t.MBX_STATUS_NO_DEVICE,
  DeviceError = (int)mbx_status_t.MBX_STATUS_DEVICE_ERROR,
  ContextBusy = (int)mbx_status_t.MBX_STATUS_CONTEXT_BUSY,
  InternalError = (int)mbx_status_t.MBX_STATUS_INTERNAL_ERROR
}

/// <summary>A call into mbx failed; carries the status and mbx_last_error().</summary>
public class MbxException : Exception {
  public Status Status { get; }
  /// <summary>The library's message (without the status prefix).</summary>
  public string LibraryMessage { get; }

  public MbxException(Status status, string message)
      : base(status + ": " + message) {
    Status = status;
    LibraryMessage = message ?? "";
  }
}

/// <summary>Option presets reproducing the well-known implementations.</summary>
public enum Preset {
  SsdPytorch = (int)mbx_preset_t.MBX_PRESET_SSD_PYTORCH,
  TorchvisionSsd = (int)mbx_preset_t.MBX_PRESET_TORCHVISION_SSD,
  YhenonRetinanet = (int)mbx_preset_t.MBX_PRESET_YHENON_RETINANET,
  TorchvisionRetinanet = (int)mbx_preset_t.MBX_PRESET_TORCHVISION_RETINANET,
  CaffeSsd = (int)mbx_preset_t.MBX_PRESET_CAFFE_SSD,
  SgrvinodSsd = (int)mbx_preset_t.MBX_PRESET_SGRVINOD_SSD
}

/// <summary>Computation paths (mbx_path_t).</summary>
public enum ComputePath {
  Auto = (int)mbx_path_t.MBX_PATH_AUTO,
  CpuScalar = (int)mbx_path_t.MBX_PATH_CPU_SCALAR,
  Cpu = (int)mbx_path_t.MBX_PATH_CPU,
  Cuda = (int)mbx_path_t.MBX_PATH_CUDA
}

/// <summary>Built-in SSD prior layouts (mbx_ssd_config_t).</summary>
public enum SsdConfig {
  Ssd300Voc = (int)mbx_ssd_config_t.MBX_SSD300_VOC,
  Ssd300Coco = (int)mbx_ssd_config_t.MBX_SSD300_COCO,
  Ssd512Voc = (int)mbx_ssd_config_t.MBX_SSD512_VOC
}

/// <summary>
/// Loss and matching options: a preset, then single options by their names (docs/SPEC.md §9) /
/// golden case.json names, e.g. <c>Options.FromPreset("ssd_pytorch").Set("neg_pos_ratio", 3.0)</c>.
/// A bad name or value throws MbxException and leaves the options unchanged.
/// The option list, types and enum choices come from the library
/// (mbx_option_count / _name / _type / _choices) and values are read back as
/// text (mbx_options_get), so nothing here names an option.
/// </summary>
public sealed class Options : IDisposable {
  internal readonly mbx_options_t Raw;

  public Options(Preset preset) {
    Raw = new mbx_options_t();
    mbx_native.mbx_options_init(Raw, (mbx_preset_t)(int)preset);
  }

  /// <summary>A preset by name ("ssd_pytorch", "torchvision_ssd", "yhenon_retinanet", "torchvision_retinanet").</summary>
  public static Options FromPreset(string name) {
    if (name == null) throw new ArgumentNullException(nameof(name));
    int code;
    mbx_native.mbx_preset_from_name(name, out code);
    return new Options((Preset)code);
  }

  /// <summary>Sets one option from text: enum names, numbers, true/false, "v0,v1,v2,v3".</summary>
  public Options Set(string name, string value) {
    if (name == null) throw new ArgumentNullException(nameof(name));
    if (value == null) throw new ArgumentNullException(nameof(value));
    mbx_native.mbx_options_set(Raw, name, value);
    return this;
  }

  public Options Set(string name, double value) {
    return Set(name, value.ToString("R", CultureInfo.InvariantCulture));
  }

  public Options Set(string name, bool value) {
    return Set(name, value ? "true" : "false");
  }

  /// <summary>A list option (variances).</summary>
  public Options Set(string name, params double[] values) {
    var sb = new StringBuilder();
    for (int i = 0; i < values.Length; i++) {
      if (i > 0) sb.Append(',');
      sb.Append(values[i].ToString("R", CultureInfo.InvariantCulture));
    }
    return Set(name, sb.ToString());
  }

  /// <summary>Sets an integer option, or an enum option by its pinned value.</summary>
  public Options Set(string name, long value) {
    if (name == null) throw new ArgumentNullException(nameof(name));
    if (OptionType(name) == "enum") {
      var choices = OptionChoices(name);
      if (value >= 0 && value < choices.Count) return Set(name, choices[(int)value]);
    }
    return Set(name, value.ToString(CultureInfo.InvariantCulture));
  }

  /// <summary>Every option name the library knows, in its order (mbx_option_name).</summary>
  public static IReadOnlyList<string> Names {
    get {
      var names = new List<string>();
      for (int i = 0; i < mbx_native.mbx_option_count(); i++) names.Add(mbx_native.mbx_option_name(i));
      return names;
    }
  }

  private static int IndexOf(string name) {
    for (int i = 0; i < mbx_native.mbx_option_count(); i++)
      if (mbx_native.mbx_option_name(i) == name) return i;
    return -1;
  }

  /// <summary>An option's type: "enum", "bool", "int", "float" or "float[4]"; null if unknown.</summary>
  public static string OptionType(string name) {
    int i = IndexOf(name);
    return i < 0 ? null : mbx_native.mbx_option_type(i);
  }

  /// <summary>An enum option's value names in the order of their pinned values (else empty).</summary>
  public static IReadOnlyList<string> OptionChoices(string name) {
    int i = IndexOf(name);
    string text = i < 0 ? "" : mbx_native.mbx_option_choices(i);
    return text.Length == 0 ? new string[0] : text.Split(',');
  }

  /// <summary>One option as text in the syntax Set accepts; setting it back gives the same
  /// value bitwise (mbx_options_get).</summary>
  public string Get(string name) {
    if (name == null) throw new ArgumentNullException(nameof(name));
    return mbx_native.mbx_option_text(Raw, name);
  }

  /// <summary>Checks every option's range; throws MbxException if one is out.</summary>
  public Options Validate() {
    mbx_native.mbx_options_validate(Raw);
    return this;
  }

  /// <summary>True for sigmoid focal (K = C), false for softmax CE (K = C-1).</summary>
  public bool IsSigmoidFocal { get { return Get("conf_loss") == "SIGMOID_FOCAL"; } }

  /// <summary>Every option as name=text (Get), in the library's order.</summary>
  public override string ToString() {
    var sb = new StringBuilder("Options{");
    var names = Names;
    for (int i = 0; i < names.Count; i++) {
      if (i > 0) sb.Append(", ");
      sb.Append(names[i]).Append('=').Append(Get(names[i]));
    }
    return sb.Append('}').ToString();
  }

  public void Dispose() {
    Raw.Dispose();
  }
}

/// <summary>
/// Thread count, computation path and cached workspace. One thread at a time
/// (a concurrent call fails with Status.ContextBusy). Dispose when done.
/// </summary>
public sealed class Context : IDisposable {
  private IntPtr handle;
  private readonly object gate = new object();
  private int inFlight;

  public Context() {
    IntPtr h;
    mbx_native.mbx_context_create(out h);
    handle = h;
  }

  ~Context() {
    Free();
  }

  internal SWIGTYPE_p_mbx_context_t Enter() {
    lock (gate) {
      if (handle == IntPtr.Zero) throw new ObjectDisposedException("Mbx.Context");
      inFlight++;
      return new SWIGTYPE_p_mbx_context_t(handle, false);
    }
  }

  internal void Exit() {
    lock (gate) {
      inFlight--;
      System.Threading.Monitor.PulseAll(gate);
    }
  }

  public Context SetNumThreads(int numThreads) {
    var h = Enter();
    try { mbx_native.mbx_context_set_num_threads(h, numThreads); } finally { Exit(); }
    return this;
  }

  public Context SetPath(ComputePath path) {
    var h = Enter();
    try { mbx_native.mbx_context_set_path(h, (mbx_path_t)(int)path); } finally { Exit(); }
    return this;
  }

  public ulong WorkspaceBytes {
    get {
      var h = Enter();
      try {
        ulong bytes;
        mbx_native.mbx_context_workspace_bytes(h, out bytes);
        return bytes;
      } finally { Exit(); }
    }
  }

  public void ReleaseWorkspace() {
    var h = Enter();
    try { mbx_native.mbx_context_release_workspace(h); } finally { Exit(); }
  }

  public bool IsDisposed { get { lock (gate) { return handle == IntPtr.Zero; } } }

  private void Free() {
    IntPtr h;
    lock (gate) {
      while (inFlight > 0) System.Threading.Monitor.Wait(gate);
      h = handle;
      handle = IntPtr.Zero;
    }
    if (h != IntPtr.Zero) mbx_native.mbx_context_destroy(new SWIGTYPE_p_mbx_context_t(h, false));
  }

  /// <summary>Destroys the context (waits for calls in flight); idempotent.</summary>
  public void Dispose() {
    Free();
    GC.SuppressFinalize(this);
  }
}

/// <summary>Losses, positives per image and (array overloads) gradients.</summary>
public sealed class LossResult {
  public double LossLoc { get; internal set; }
  public double LossConf { get; internal set; }
  public double Total { get { return LossLoc + LossConf; } }
  /// <summary>[B] positives per image.</summary>
  public int[] NumPos { get; internal set; }
  /// <summary>[B*P*4], or null when written to caller spans.</summary>
  public float[] GradLoc { get; internal set; }
  /// <summary>[B*P*C], or null when written to caller spans.</summary>
  public float[] GradConf { get; internal set; }
}

/// <summary>Matching outputs, flattened row-major.</summary>
public sealed class MatchResult {
  /// <summary>[B*P]: label+1 positive, 0 negative, -1 ignored.</summary>
  public int[] ConfTarget { get; internal set; }
  /// <summary>[B*P]: GT row of a positive, else -1.</summary>
  public int[] MatchedGt { get; internal set; }
  /// <summary>[B*P*4]: encoded targets, 0 where not positive.</summary>
  public float[] LocTarget { get; internal set; }
  /// <summary>[B]: positives per image.</summary>
  public int[] NumPos { get; internal set; }
}

/// <summary>The mbx entry points. ctx may be null everywhere (library defaults).</summary>
public static unsafe class MultiBox {
  const int KDLInt = 0;
  const int KDLFloat = 2;

  /// <summary>Runtime library version "MAJOR.MINOR.PATCH".</summary>
  public static string Version { get { return mbx_native.mbx_version(); } }

  public static bool CudaAvailable { get { return mbx_native.mbx_cuda_available() != 0; } }

  // --- plumbing ---------------------------------------------------------------

  /// <summary>The DLTensors of one call, freed together.</summary>
  private sealed class Tensors : IDisposable {
    private readonly SWIGTYPE_p_DLTensor[] items = new SWIGTYPE_p_DLTensor[16];
    private int count;

    public SWIGTYPE_p_DLTensor Add(string name, void* data, int code, int bits, params long[] shape) {
      var t = mbx_native.mbx_cs_tensor_new((IntPtr)data, code, bits, shape.Length,
          shape.Length > 0 ? shape[0] : 0, shape.Length > 1 ? shape[1] : 0,
          shape.Length > 2 ? shape[2] : 0, shape.Length > 3 ? shape[3] : 0);
      if (SWIGTYPE_p_DLTensor.getCPtr(t).Handle == IntPtr.Zero)
        throw new MbxException(Status.OutOfMemory, name + ": cannot allocate a DLTensor");
      items[count++] = t;
      return t;
    }

    public void Dispose() {
      for (int i = 0; i < count; i++) mbx_native.mbx_cs_tensor_free(items[i]);
      count = 0;
    }
  }

  private delegate void Call(SWIGTYPE_p_mbx_context_t handle);

  /// <summary>
  /// mbx_run on the tensors set by name in <paramref name="tensors"/> (the optional inputs
  /// gt_flags and prior_levels exist only there).
  /// </summary>
  private static void RunOp(Context ctx, mbx_options_t raw, mbx_op_t op, mbx_tensors_t tensors) {
    Run(ctx, h => mbx_native.mbx_run(h, raw, op, tensors));
  }

  private static mbx_tensors_t NewRunTensors() {
    var t = new mbx_tensors_t();
    try {
      mbx_native.mbx_tensors_init(t);
    } catch {
      t.Dispose();
      throw;
    }
    return t;
  }

  private static void Run(Context ctx, Call call) {
    if (ctx == null) {
      call(null);
      return;
    }
    var h = ctx.Enter();
    try { call(h); } finally { ctx.Exit(); }
  }

  private static MbxException ShapeError(string message) {
    return new MbxException(Status.InvalidArgument, message);
  }

  private static void CheckOutput(string name, int length, long need) {
    if (length < need)
      throw ShapeError(name + ": " + length + " elements, expected at least " + need);
  }

  private struct Dims {
    public long B, P, G, C;
  }

  /// <summary>
  /// gt_flags [B, G] and prior_levels [L = levels] into the mbx_run tensors, each only when
  /// given (a non-empty span); a gt_flags span shorter than B*G is refused here.
  /// </summary>
  private static void AddOptionalInputs(Tensors t, mbx_tensors_t run, Dims d, int* flags,
                                        int flagCount, int* levels, int levelCount) {
    if (flagCount > 0) {
      CheckInput("gt_flags", flagCount, d.B * d.G);
      run.gt_flags = t.Add("gt_flags", flags, KDLInt, 32, d.B, d.G);
    }
    if (levelCount > 0) run.prior_levels = t.Add("prior_levels", levels, KDLInt, 32, levelCount);
  }

  private static void CheckInput(string name, int length, long need) {
    if (length != need)
      throw ShapeError(name + ": " + length + " elements, expected " + need);
  }

  private static Dims Infer(int priors, int gtBoxes, int gtLabels, int gtCounts, int loc, int conf,
                            bool hasLoss) {
    var d = new Dims();
    if (priors % 4 != 0)
      throw ShapeError("priors: " + priors + " elements is not a multiple of 4 (expected [P, 4])");
    d.P = priors / 4;
    d.B = gtCounts;
    if (d.B > 0) {
      if (gtLabels % d.B != 0)
        throw ShapeError("gt_labels: " + gtLabels + " elements is not a multiple of B = " + d.B +
                         " (expected [B, G])");
      d.G = gtLabels / d.B;
    }
    if (gtBoxes != d.B * d.G * 4)
      throw ShapeError("gt_boxes: " + gtBoxes + " elements, expected B*G*4 = " + (d.B * d.G * 4));
    if (hasLoss) {
      if (loc != d.B * d.P * 4)
        throw ShapeError("loc: " + loc + " elements, expected B*P*4 = " + (d.B * d.P * 4));
      long bp = d.B * d.P;
      if (bp == 0 ? conf != 0 : conf % bp != 0)
        throw ShapeError("conf: " + conf + " elements is not a multiple of B*P = " + bp +
                         " (expected [B, P, C])");
      d.C = bp == 0 ? 0 : conf / bp;
    }
    return d;
  }

  private static mbx_options_t Raw(Options opts) {
    if (opts == null) throw new ArgumentNullException(nameof(opts));
    return opts.Raw;
  }

  // --- matching ---------------------------------------------------------------

  /// <summary>
  /// Matches GT boxes to priors and encodes targets. numClasses: labels must be in
  /// [0, numClasses) (0: only >= 0 is checked). matchedGt / locTarget / numPos may be empty
  /// spans to skip them.
  /// </summary>
  public static void Match(Context ctx, Options opts, long numClasses,
                           ReadOnlySpan<float> priors, ReadOnlySpan<float> gtBoxes,
                           ReadOnlySpan<int> gtLabels, ReadOnlySpan<int> gtCounts,
                           Span<int> confTarget, Span<int> matchedGt, Span<float> locTarget,
                           Span<int> numPos) {
    Match(ctx, opts, numClasses, priors, gtBoxes, gtLabels, gtCounts, ReadOnlySpan<int>.Empty,
          ReadOnlySpan<int>.Empty, confTarget, matchedGt, locTarget, numPos);
  }

  /// <summary>
  /// Match with the optional inputs: gtFlags [B*G] int32 per-GT flags (bit 0: an ignore
  /// region; the other bits must be 0) and priorLevels [L] int32 priors per pyramid level in
  /// prior order (sum P; used by the ATSS assigner, see RetinaNetPriorLevels). An empty span
  /// leaves the input out.
  /// </summary>
  public static void Match(Context ctx, Options opts, long numClasses,
                           ReadOnlySpan<float> priors, ReadOnlySpan<float> gtBoxes,
                           ReadOnlySpan<int> gtLabels, ReadOnlySpan<int> gtCounts,
                           ReadOnlySpan<int> gtFlags, ReadOnlySpan<int> priorLevels,
                           Span<int> confTarget, Span<int> matchedGt, Span<float> locTarget,
                           Span<int> numPos) {
    var raw = Raw(opts);
    var d = Infer(priors.Length, gtBoxes.Length, gtLabels.Length, gtCounts.Length, 0, 0, false);
    CheckOutput("conf_target", confTarget.Length, d.B * d.P);
    bool wantMatched = matchedGt.Length > 0 || d.B * d.P == 0;
    bool wantLoc = locTarget.Length > 0 || d.B * d.P == 0;
    bool wantNumPos = numPos.Length > 0 || d.B == 0;
    if (wantMatched) CheckOutput("matched_gt", matchedGt.Length, d.B * d.P);
    if (wantLoc) CheckOutput("loc_target", locTarget.Length, d.B * d.P * 4);
    if (wantNumPos) CheckOutput("num_pos", numPos.Length, d.B);
    fixed (float* pPriors = &MemoryMarshal.GetReference(priors))
    fixed (float* pBoxes = &MemoryMarshal.GetReference(gtBoxes))
    fixed (int* pLabels = &MemoryMarshal.GetReference(gtLabels))
    fixed (int* pCounts = &MemoryMarshal.GetReference(gtCounts))
    fixed (int* pConfT = &MemoryMarshal.GetReference(confTarget))
    fixed (int* pMatched = &MemoryMarshal.GetReference(matchedGt))
    fixed (float* pLocT = &MemoryMarshal.GetReference(locTarget))
    fixed (int* pNumPos = &MemoryMarshal.GetReference(numPos))
    fixed (int* pFlags = &MemoryMarshal.GetReference(gtFlags))
    fixed (int* pLevels = &MemoryMarshal.GetReference(priorLevels))
    using (var t = new Tensors())
    using (var run = NewRunTensors()) {
      run.num_classes = numClasses;
      run.priors = t.Add("priors", pPriors, KDLFloat, 32, d.P, 4);
      run.gt_boxes = t.Add("gt_boxes", pBoxes, KDLFloat, 32, d.B, d.G, 4);
      run.gt_labels = t.Add("gt_labels", pLabels, KDLInt, 32, d.B, d.G);
      run.gt_counts = t.Add("gt_counts", pCounts, KDLInt, 32, d.B);
      AddOptionalInputs(t, run, d, pFlags, gtFlags.Length, pLevels, priorLevels.Length);
      run.conf_target = t.Add("conf_target", pConfT, KDLInt, 32, d.B, d.P);
      if (wantMatched) run.matched_gt = t.Add("matched_gt", pMatched, KDLInt, 32, d.B, d.P);
      if (wantLoc) run.loc_target = t.Add("loc_target", pLocT, KDLFloat, 32, d.B, d.P, 4);
      if (wantNumPos) run.num_pos = t.Add("num_pos", pNumPos, KDLInt, 32, d.B);
      RunOp(ctx, raw, mbx_op_t.MBX_OP_MATCH, run);
    }
    GC.KeepAlive(opts);
  }

  /// <summary>Match on arrays, returning every output.</summary>
  public static MatchResult Match(Context ctx, Options opts, long numClasses, float[] priors,
                                  float[] gtBoxes, int[] gtLabels, int[] gtCounts) {
    return Match(ctx, opts, numClasses, priors, gtBoxes, gtLabels, gtCounts, null, null);
  }

  /// <summary>Match on arrays with the optional inputs (null: left out).</summary>
  public static MatchResult Match(Context ctx, Options opts, long numClasses, float[] priors,
                                  float[] gtBoxes, int[] gtLabels, int[] gtCounts,
                                  int[] gtFlags, int[] priorLevels) {
    var d = Infer(priors.Length, gtBoxes.Length, gtLabels.Length, gtCounts.Length, 0, 0, false);
    var r = new MatchResult {
      ConfTarget = new int[d.B * d.P],
      MatchedGt = new int[d.B * d.P],
      LocTarget = new float[d.B * d.P * 4],
      NumPos = new int[d.B]
    };
    Match(ctx, opts, numClasses, priors, gtBoxes, gtLabels, gtCounts, gtFlags, priorLevels,
          r.ConfTarget, r.MatchedGt, r.LocTarget, r.NumPos);
    return r;
  }

  // --- loss -------------------------------------------------------------------

  private enum Kind { Forward, Backward, ForwardBackward }

  private static LossResult Loss(Kind kind, Context ctx, Options opts,
                                 ReadOnlySpan<float> priors, ReadOnlySpan<float> gtBoxes,
                                 ReadOnlySpan<int> gtLabels, ReadOnlySpan<int> gtCounts,
                                 ReadOnlySpan<float> loc, ReadOnlySpan<float> conf,
                                 ReadOnlySpan<int> gtFlags, ReadOnlySpan<int> priorLevels,
                                 double gradLossLoc, double gradLossConf,
                                 Span<float> gradLoc, Span<float> gradConf) {
    var raw = Raw(opts);
    var d = Infer(priors.Length, gtBoxes.Length, gtLabels.Length, gtCounts.Length, loc.Length,
                  conf.Length, true);
    bool backward = kind != Kind.Forward;
    if (backward) {
      CheckOutput("grad_loc", gradLoc.Length, d.B * d.P * 4);
      CheckOutput("grad_conf", gradConf.Length, d.B * d.P * d.C);
    }
    var lossOut = new double[2];
    var gradLoss = new double[] { gradLossLoc, gradLossConf };
    var numPos = new int[d.B];
    fixed (float* pPriors = &MemoryMarshal.GetReference(priors))
    fixed (float* pBoxes = &MemoryMarshal.GetReference(gtBoxes))
    fixed (int* pLabels = &MemoryMarshal.GetReference(gtLabels))
    fixed (int* pCounts = &MemoryMarshal.GetReference(gtCounts))
    fixed (float* pLoc = &MemoryMarshal.GetReference(loc))
    fixed (float* pConf = &MemoryMarshal.GetReference(conf))
    fixed (float* pGradLoc = &MemoryMarshal.GetReference(gradLoc))
    fixed (float* pGradConf = &MemoryMarshal.GetReference(gradConf))
    fixed (double* pLoss = lossOut)
    fixed (double* pGradLoss = gradLoss)
    fixed (int* pNumPos = numPos)
    fixed (int* pFlags = &MemoryMarshal.GetReference(gtFlags))
    fixed (int* pLevels = &MemoryMarshal.GetReference(priorLevels))
    using (var t = new Tensors())
    using (var run = NewRunTensors()) {
      run.priors = t.Add("priors", pPriors, KDLFloat, 32, d.P, 4);
      run.gt_boxes = t.Add("gt_boxes", pBoxes, KDLFloat, 32, d.B, d.G, 4);
      run.gt_labels = t.Add("gt_labels", pLabels, KDLInt, 32, d.B, d.G);
      run.gt_counts = t.Add("gt_counts", pCounts, KDLInt, 32, d.B);
      run.loc = t.Add("loc", pLoc, KDLFloat, 32, d.B, d.P, 4);
      run.conf = t.Add("conf", pConf, KDLFloat, 32, d.B, d.P, d.C);
      AddOptionalInputs(t, run, d, pFlags, gtFlags.Length, pLevels, priorLevels.Length);
      if (kind != Kind.Backward) {
        run.loss = t.Add("loss", pLoss, KDLFloat, 64, 2);
        run.num_pos = t.Add("num_pos", pNumPos, KDLInt, 32, d.B);
      }
      if (backward) {
        run.grad_loss = t.Add("grad_loss", pGradLoss, KDLFloat, 64, 2);
        run.grad_loc = t.Add("grad_loc", pGradLoc, KDLFloat, 32, d.B, d.P, 4);
        run.grad_conf = t.Add("grad_conf", pGradConf, KDLFloat, 32, d.B, d.P, d.C);
      }
      mbx_op_t op = kind == Kind.Forward ? mbx_op_t.MBX_OP_LOSS_FORWARD
          : kind == Kind.Backward ? mbx_op_t.MBX_OP_LOSS_BACKWARD
          : mbx_op_t.MBX_OP_LOSS_FORWARD_BACKWARD;
      RunOp(ctx, raw, op, run);
    }
    GC.KeepAlive(opts);
    if (kind == Kind.Backward) return null;
    return new LossResult { LossLoc = lossOut[0], LossConf = lossOut[1], NumPos = numPos };
  }

  /// <summary>Loss forward only (evaluation).</summary>
  public static LossResult Forward(Context ctx, Options opts, ReadOnlySpan<float> priors,
                                   ReadOnlySpan<float> gtBoxes, ReadOnlySpan<int> gtLabels,
                                   ReadOnlySpan<int> gtCounts, ReadOnlySpan<float> loc,
                                   ReadOnlySpan<float> conf) {
    return Forward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf,
                   ReadOnlySpan<int>.Empty, ReadOnlySpan<int>.Empty);
  }

  /// <summary>
  /// Loss forward only, with the optional inputs gtFlags [B*G] and priorLevels [L] (an empty
  /// span leaves the input out; see Match).
  /// </summary>
  public static LossResult Forward(Context ctx, Options opts, ReadOnlySpan<float> priors,
                                   ReadOnlySpan<float> gtBoxes, ReadOnlySpan<int> gtLabels,
                                   ReadOnlySpan<int> gtCounts, ReadOnlySpan<float> loc,
                                   ReadOnlySpan<float> conf, ReadOnlySpan<int> gtFlags,
                                   ReadOnlySpan<int> priorLevels) {
    return Loss(Kind.Forward, ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, gtFlags,
                priorLevels, 1, 1, Span<float>.Empty, Span<float>.Empty);
  }

  /// <summary>
  /// Fused forward + backward: gradients into gradLoc [B*P*4] and gradConf [B*P*C], scaled by
  /// the upstream gradients of (loss_loc, loss_conf).
  /// </summary>
  public static LossResult ForwardBackward(Context ctx, Options opts, ReadOnlySpan<float> priors,
                                           ReadOnlySpan<float> gtBoxes, ReadOnlySpan<int> gtLabels,
                                           ReadOnlySpan<int> gtCounts, ReadOnlySpan<float> loc,
                                           ReadOnlySpan<float> conf, Span<float> gradLoc,
                                           Span<float> gradConf, double gradLossLoc = 1.0,
                                           double gradLossConf = 1.0) {
    return Loss(Kind.ForwardBackward, ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf,
                ReadOnlySpan<int>.Empty, ReadOnlySpan<int>.Empty, gradLossLoc, gradLossConf,
                gradLoc, gradConf);
  }

  /// <summary>
  /// Fused forward + backward with the optional inputs gtFlags [B*G] and priorLevels [L] (an
  /// empty span leaves the input out; see Match).
  /// </summary>
  public static LossResult ForwardBackward(Context ctx, Options opts, ReadOnlySpan<float> priors,
                                           ReadOnlySpan<float> gtBoxes, ReadOnlySpan<int> gtLabels,
                                           ReadOnlySpan<int> gtCounts, ReadOnlySpan<float> loc,
                                           ReadOnlySpan<float> conf, ReadOnlySpan<int> gtFlags,
                                           ReadOnlySpan<int> priorLevels, Span<float> gradLoc,
                                           Span<float> gradConf, double gradLossLoc,
                                           double gradLossConf) {
    return Loss(Kind.ForwardBackward, ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf,
                gtFlags, priorLevels, gradLossLoc, gradLossConf, gradLoc, gradConf);
  }

  /// <summary>Fused forward + backward on arrays; the gradients come back in the result.</summary>
  public static LossResult ForwardBackward(Context ctx, Options opts, float[] priors,
                                           float[] gtBoxes, int[] gtLabels, int[] gtCounts,
                                           float[] loc, float[] conf) {
    return ForwardBackward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, null, null);
  }

  /// <summary>
  /// Fused forward + backward on arrays with the optional inputs (null: left out); the
  /// gradients come back in the result.
  /// </summary>
  public static LossResult ForwardBackward(Context ctx, Options opts, float[] priors,
                                           float[] gtBoxes, int[] gtLabels, int[] gtCounts,
                                           float[] loc, float[] conf, int[] gtFlags,
                                           int[] priorLevels) {
    if (loc == null) throw new ArgumentNullException(nameof(loc));
    if (conf == null) throw new ArgumentNullException(nameof(conf));
    var gradLoc = new float[loc.Length];
    var gradConf = new float[conf.Length];
    var r = ForwardBackward(ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf,
                            (ReadOnlySpan<int>)gtFlags, (ReadOnlySpan<int>)priorLevels,
                            (Span<float>)gradLoc, (Span<float>)gradConf, 1.0, 1.0);
    r.GradLoc = gradLoc;
    r.GradConf = gradConf;
    return r;
  }

  /// <summary>Gradients only (matching and mining recomputed).</summary>
  public static void Backward(Context ctx, Options opts, ReadOnlySpan<float> priors,
                              ReadOnlySpan<float> gtBoxes, ReadOnlySpan<int> gtLabels,
                              ReadOnlySpan<int> gtCounts, ReadOnlySpan<float> loc,
                              ReadOnlySpan<float> conf, Span<float> gradLoc, Span<float> gradConf,
                              double gradLossLoc = 1.0, double gradLossConf = 1.0) {
    Loss(Kind.Backward, ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf,
         ReadOnlySpan<int>.Empty, ReadOnlySpan<int>.Empty, gradLossLoc, gradLossConf, gradLoc,
         gradConf);
  }

  /// <summary>Gradients only, with the optional inputs (an empty span leaves one out).</summary>
  public static void Backward(Context ctx, Options opts, ReadOnlySpan<float> priors,
                              ReadOnlySpan<float> gtBoxes, ReadOnlySpan<int> gtLabels,
                              ReadOnlySpan<int> gtCounts, ReadOnlySpan<float> loc,
                              ReadOnlySpan<float> conf, ReadOnlySpan<int> gtFlags,
                              ReadOnlySpan<int> priorLevels, Span<float> gradLoc,
                              Span<float> gradConf, double gradLossLoc, double gradLossConf) {
    Loss(Kind.Backward, ctx, opts, priors, gtBoxes, gtLabels, gtCounts, loc, conf, gtFlags,
         priorLevels, gradLossLoc, gradLossConf, gradLoc, gradConf);
  }

  // --- decoding and priors ----------------------------------------------------

  /// <summary>Decodes loc [B*P*4] against priors [P*4] into corner boxes [B*P*4].</summary>
  public static void Decode(Context ctx, Options opts, ReadOnlySpan<float> priors,
                            ReadOnlySpan<float> loc, Span<float> boxes) {
    var raw = Raw(opts);
    if (priors.Length % 4 != 0)
      throw ShapeError("priors: " + priors.Length + " elements is not a multiple of 4 (expected [P, 4])");
    long p = priors.Length / 4;
    if (p == 0 ? loc.Length != 0 : loc.Length % (p * 4) != 0)
      throw ShapeError("loc: " + loc.Length + " elements is not a multiple of P*4 = " + (p * 4) +
                       " (expected [B, P, 4])");
    long b = p == 0 ? 0 : loc.Length / (p * 4);
    CheckOutput("boxes", boxes.Length, b * p * 4);
    fixed (float* pPriors = &MemoryMarshal.GetReference(priors))
    fixed (float* pLoc = &MemoryMarshal.GetReference(loc))
    fixed (float* pBoxes = &MemoryMarshal.GetReference(boxes))
    using (var t = new Tensors()) {
      var tPriors = t.Add("priors", pPriors, KDLFloat, 32, p, 4);
      var tLoc = t.Add("loc", pLoc, KDLFloat, 32, b, p, 4);
      var tBoxes = t.Add("boxes", pBoxes, KDLFloat, 32, b, p, 4);
      Run(ctx, h => mbx_native.mbx_decode(h, raw, tPriors, tLoc, tBoxes));
    }
    GC.KeepAlive(opts);
  }

  public static float[] Decode(Context ctx, Options opts, float[] priors, float[] loc) {
    if (loc == null) throw new ArgumentNullException(nameof(loc));
    var boxes = new float[loc.Length];
    Decode(ctx, opts, priors, loc, boxes);
    return boxes;
  }

  public static long SsdPriorCount(SsdConfig config) {
    long n;
    mbx_native.mbx_priors_ssd_count((mbx_ssd_config_t)(int)config, out n);
    return n;
  }

  /// <summary>SSD priors (ssd.pytorch PriorBox), CENTER_SIZE, [P*4].</summary>
  public static float[] SsdPriors(SsdConfig config) {
    long p = SsdPriorCount(config);
    var out_ = new float[p * 4];
    fixed (float* ptr = out_)
    using (var t = new Tensors()) {
      mbx_native.mbx_priors_ssd((mbx_ssd_config_t)(int)config,
                                t.Add("priors", ptr, KDLFloat, 32, p, 4));
    }
    return out_;
  }

  public static long RetinaNetPriorCount(long imageHeight, long imageWidth) {
    long n;
    mbx_native.mbx_priors_retinanet_count(imageHeight, imageWidth, out n);
    return n;
  }

  /// <summary>Pyramid levels of RetinaNetPriors (levels 3..7).</summary>
  public const int RetinaNetLevels = (int)mbx_native.MBX_RETINANET_NUM_LEVELS;

  /// <summary>
  /// The number of anchors of each pyramid level of RetinaNetPriors (levels 3..7, in prior
  /// order; they sum to P): the priorLevels input of the ATSS assigner.
  /// </summary>
  public static int[] RetinaNetPriorLevels(long imageHeight, long imageWidth) {
    var out_ = new int[RetinaNetLevels];
    fixed (int* ptr = out_)
    using (var t = new Tensors()) {
      mbx_native.mbx_priors_retinanet_levels(imageHeight, imageWidth,
                                             t.Add("prior_levels", ptr, KDLInt, 32, RetinaNetLevels));
    }
    return out_;
  }

  /// <summary>RetinaNet anchors (yhenon Anchors), CORNERS in pixels, [P*4].</summary>
  public static float[] RetinaNetPriors(long imageHeight, long imageWidth) {
    long p = RetinaNetPriorCount(imageHeight, imageWidth);
    var out_ = new float[p * 4];
    fixed (float* ptr = out_)
    using (var t = new Tensors()) {
      mbx_native.mbx_priors_retinanet(imageHeight, imageWidth,
                                      t.Add("priors", ptr, KDLFloat, 32, p, 4));
    }
    return out_;
  }
}

}  // namespace Mbx
