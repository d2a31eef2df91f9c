#!/usr/bin/env python3
"""Side-by-side comparison of mbx against torchvision (issue 5), in ONE process
and ONE run, on the workloads of tests/bench/workloads.h:

  ssd300    B=32, SSD300 VOC priors (P=8732), C=21, 1..6 GT per image
  retinanet B=8, 640x832 anchors (P=99765), C=80, 1..15 GT per image
  logits ~ N(0, 2), loc ~ N(0, 1), boxes as workloads.h draws them.

(The same definition as workloads.h; numpy's RNG, so not the same numbers.)

Methods, per workload (median of --runs timed calls after --warmup calls):
  floor          numpy copy of loc and conf into same-sized buffers: the bytes
                 mbx must read (loc, conf) and write (grad_loc, grad_conf)
  mbx-py         fused forward+backward through the Python binding
                 (mbx.MultiBoxLoss(...)(..., grad=True), numpy float32 in,
                 fresh numpy outputs each call), all / 1 / 2 threads
  mbx-py fwd     forward only through the binding (evaluation)
  mbx-C          the same fused call through the C ABI with ctypes
                 (preallocated outputs: no binding work), all / 1 threads
  mbx-C fwd      forward only through the C ABI
  torchvision    torchvision 0.14 SSD / RetinaNet training-mode loss,
                 per-image matching included, forward + backward, at torch's
                 default thread count and (row "torchvision NT") at every
                 core when that differs; tv/x is against the faster of them
  ssd.pytorch    (ssd300 only) ssd.pytorch MultiBoxLoss re-implemented in
                 plain torch (tests/python/test_torch.py), fwd + bwd, against
                 mbx-py with the ssd_pytorch preset

Peak RSS per method: VmHWM is reset (/proc/self/clear_refs = 5) before the
method and read after its warm-up and timed calls; reported as MB above the
RSS just before the method (so outputs/gradients and workspace count, the
shared inputs do not).

Correctness (same run, same inputs): mbx's torchvision_ssd /
torchvision_retinanet losses against torchvision's, |rel| <= 1e-4, plus the
gradients' max abs difference; C path == binding (bitwise).

Usage:
  PYTHONPATH=<build>/python python3 tests/bench/compare.py [--json out.json]
  python3 tests/bench/compare.py --quick          # CI smoke (tiny, 1 run)
"""

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MB = 1024.0 * 1024.0


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def _setup_path(build):
    if build:
        sys.path.insert(0, os.path.join(os.path.abspath(build), "python"))
    elif not any(os.path.isdir(os.path.join(p, "mbx")) for p in sys.path if p):
        default = os.path.join(REPO, "build-bench", "python")
        if os.path.isdir(default):
            sys.path.insert(0, default)


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_LIBC = None


def _malloc_trim():
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL("libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_isa(mbx):
    """The ISA mbx's CPU kernels select. The binding does not expose it, so
    it is derived as core/common/cpu_isa.cpp decides: the MBX_CPU_ISA
    cap (sse2/avx2/unset) and the CPU's flags."""
    for name in ("cpu_isa", "selected_isa"):
        fn = getattr(mbx, name, None)
        if callable(fn):
            return {"isa": str(fn()), "source": "mbx.%s()" % name}
    cap = os.environ.get("MBX_CPU_ISA")
    limit = 3 if not cap else (1 if cap == "sse2" else 2 if cap == "avx2" else 3)
    fl = _cpu_flags()
    if limit >= 3 and {"avx512f", "avx512dq", "avx2", "fma"} <= fl:
        isa = "avx512"
    elif limit >= 2 and {"avx2", "fma"} <= fl:
        isa = "avx2"
    else:
        isa = "sse2"
    return {"isa": isa, "source": "derived from MBX_CPU_ISA=%s and /proc/cpuinfo flags" % cap}


def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# ---------------------------------------------------------------------------
# Workloads (the definition of tests/bench/workloads.h)
# ---------------------------------------------------------------------------

def center_to_corners(p):
    """float32 arithmetic, as workloads.h converts (cx - w/2, ...)."""
    p = p.astype(np.float32, copy=False)
    half_w, half_h = p[:, 2] / np.float32(2), p[:, 3] / np.float32(2)
    return np.stack([p[:, 0] - half_w, p[:, 1] - half_h, p[:, 0] + half_w, p[:, 1] + half_h],
                    1).astype(np.float32)


class Workload:
    def __init__(self, mbx, kind, quick=False, seed=42):
        self.name = kind
        ssd = kind == "ssd300"
        rng = np.random.default_rng(seed)
        if ssd:
            self.B, self.C, self.G = (2 if quick else 32), 21, 6
            self.priors_cs = mbx.priors_ssd("voc")              # CENTER_SIZE, [0,1]
            self.priors_corners = center_to_corners(self.priors_cs)
            W = H = 1.0
            self.tv_preset, self.label_offset = "torchvision_ssd", 1
            self.K = self.C - 1
        else:
            self.B, self.C, self.G = (2 if quick else 8), 80, 15
            self.image_hw = (128, 160) if quick else (640, 832)
            self.priors_corners = mbx.priors_retinanet(*self.image_hw)  # CORNERS, pixels
            self.priors_cs = None
            H, W = float(self.image_hw[0]), float(self.image_hw[1])
            self.tv_preset, self.label_offset = "torchvision_retinanet", 0
            self.K = self.C
        self.P = self.priors_corners.shape[0]
        B, P, C, G = self.B, self.P, self.C, self.G
        self.gt_boxes = np.zeros((B, G, 4), np.float32)
        self.gt_labels = np.zeros((B, G), np.int32)
        self.gt_counts = np.zeros((B,), np.int32)
        for b in range(B):
            n = 1 + int(rng.integers(G))
            self.gt_counts[b] = n
            for g in range(n):
                bw, bh = (0.05 + 0.7 * rng.random()) * W, (0.05 + 0.7 * rng.random()) * H
                x, y = rng.random() * (W - bw), rng.random() * (H - bh)
                self.gt_boxes[b, g] = (x, y, x + bw, y + bh)
                self.gt_labels[b, g] = int(rng.integers(self.K))
        self.loc = rng.standard_normal((B, P, 4), dtype=np.float32)
        self.conf = rng.standard_normal((B, P, C), dtype=np.float32)
        self.conf *= np.float32(2.0)

    @property
    def io_bytes(self):
        """loc + conf read, grad_loc + grad_conf written."""
        return 2 * (self.loc.nbytes + self.conf.nbytes)

    @property
    def grad_mb(self):
        return (self.loc.nbytes + self.conf.nbytes) / MB

    def describe(self):
        return {"B": self.B, "P": self.P, "C": self.C, "max_gt": self.G,
                "gt_total": int(self.gt_counts.sum()), "preset": self.tv_preset,
                "input_mb": round((self.loc.nbytes + self.conf.nbytes) / MB, 1),
                "floor_bytes": self.io_bytes}


# ---------------------------------------------------------------------------
# The C ABI through ctypes
# ---------------------------------------------------------------------------

class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class MbxOptions(ctypes.Structure):
    """mbx_options_t as opaque storage: the C calls fill and read it
    (mbx_options_init writes struct_size = the library's size first), so no
    field is listed here. 1 KiB leaves room for fields appended later."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("_rest", ctypes.c_uint8 * 1016)]


_DL_CODES = {"f": 2, "i": 0, "u": 1}  # kDLFloat, kDLInt, kDLUInt


def _loaded_libmbx():
    """Path of the libmbx the binding loaded (so both paths run one library)."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and os.path.basename(parts[-1]).startswith("libmbx.so"):
                return parts[-1]
    return None


class CApi:
    def __init__(self, path):
        self.path = path
        lib = ctypes.CDLL(path)
        self.lib = lib
        P = ctypes.POINTER
        T = P(DLTensor)
        lib.mbx_last_error.restype = ctypes.c_char_p
        lib.mbx_version.restype = ctypes.c_char_p
        lib.mbx_options_init.argtypes = [P(MbxOptions), ctypes.c_int]
        lib.mbx_preset_from_name.argtypes = [ctypes.c_char_p, P(ctypes.c_int)]
        lib.mbx_context_create.argtypes = [P(ctypes.c_void_p)]
        lib.mbx_context_destroy.argtypes = [ctypes.c_void_p]
        lib.mbx_context_destroy.restype = None
        lib.mbx_context_set_num_threads.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.mbx_loss_forward.argtypes = [ctypes.c_void_p, P(MbxOptions)] + [T] * 8
        lib.mbx_loss_forward_backward.argtypes = [ctypes.c_void_p, P(MbxOptions)] + [T] * 11
        for fn in ("mbx_options_init", "mbx_preset_from_name", "mbx_context_create",
                   "mbx_context_set_num_threads", "mbx_loss_forward", "mbx_loss_forward_backward"):
            getattr(lib, fn).restype = ctypes.c_int

    def check(self, status, what):
        if status != 0:
            raise RuntimeError("%s failed (%d): %s" % (what, status,
                                                       self.lib.mbx_last_error().decode()))

    def options(self, preset):
        pid = ctypes.c_int()
        self.check(self.lib.mbx_preset_from_name(preset.encode(), ctypes.byref(pid)), "preset")
        o = MbxOptions()
        self.check(self.lib.mbx_options_init(ctypes.byref(o), pid.value), "mbx_options_init")
        if not 0 < o.struct_size <= ctypes.sizeof(MbxOptions):
            raise RuntimeError("mbx_options_t of %d bytes does not fit the %d-byte buffer"
                               % (o.struct_size, ctypes.sizeof(MbxOptions)))
        return o

    def context(self, num_threads):
        h = ctypes.c_void_p()
        self.check(self.lib.mbx_context_create(ctypes.byref(h)), "mbx_context_create")
        self.check(self.lib.mbx_context_set_num_threads(h, num_threads), "set_num_threads")
        return h

    def destroy(self, ctx):
        self.lib.mbx_context_destroy(ctx)


class CTensor:
    """A DLTensor over a C-contiguous numpy array (kept alive here)."""

    def __init__(self, arr):
        assert arr.flags.c_contiguous
        self.arr = arr
        self.shape = (ctypes.c_int64 * arr.ndim)(*arr.shape)
        t = DLTensor()
        t.data = arr.ctypes.data
        t.device = DLDevice(1, 0)  # kDLCPU
        t.ndim = arr.ndim
        t.dtype = DLDataType(_DL_CODES[arr.dtype.kind], arr.dtype.itemsize * 8, 1)
        t.shape = self.shape
        t.strides = None
        t.byte_offset = 0
        self.t = t
        self.ref = ctypes.byref(t)


class CCall:
    """One prepared fused / forward call through the C ABI."""

    def __init__(self, capi, w, preset, priors, num_threads):
        self.capi = capi
        self.opts = capi.options(preset)
        self.ctx = capi.context(num_threads)
        self.ins = [CTensor(a) for a in (priors, w.gt_boxes, w.gt_labels, w.gt_counts, w.loc,
                                         w.conf)]
        self.loss = np.zeros(2, np.float64)
        self.num_pos = np.zeros(w.B, np.int32)
        self.loss_t, self.num_pos_t = CTensor(self.loss), CTensor(self.num_pos)
        self.grad_loc = self.grad_conf = None
        self.w = w

    def alloc_grads(self):
        self.grad_loc = np.empty_like(self.w.loc)
        self.grad_conf = np.empty_like(self.w.conf)
        self.gl_t, self.gc_t = CTensor(self.grad_loc), CTensor(self.grad_conf)

    def free_grads(self):
        self.grad_loc = self.grad_conf = self.gl_t = self.gc_t = None

    def fused(self):
        a = [t.ref for t in self.ins]
        self.capi.check(self.capi.lib.mbx_loss_forward_backward(
            self.ctx, ctypes.byref(self.opts), *a, None, self.loss_t.ref, self.num_pos_t.ref,
            self.gl_t.ref, self.gc_t.ref), "mbx_loss_forward_backward")
        return self.loss

    def forward(self):
        a = [t.ref for t in self.ins]
        self.capi.check(self.capi.lib.mbx_loss_forward(
            self.ctx, ctypes.byref(self.opts), *a, self.loss_t.ref, self.num_pos_t.ref),
            "mbx_loss_forward")
        return self.loss

    def close(self):
        self.capi.destroy(self.ctx)


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, warmup, runs):
        self.warmup, self.runs = warmup, runs
        self.rows = []

    def measure(self, method, workload, fn, threads=None, setup=None, teardown=None,
                warmup=None, runs=None, note=None):
        """Times fn() (median of runs after warmup); peak RSS above the RSS
        before setup. Returns the last call's result."""
        warmup = self.warmup if warmup is None else warmup
        runs = self.runs if runs is None else runs
        gc.collect()
        _malloc_trim()  # freed heap back to the OS: a clean baseline
        base_kb = _status_kb("VmRSS")
        peak_ok = _reset_peak()
        if setup:
            setup()
        times = []
        last = None
        for i in range(warmup + runs):
            last = None
            t0 = time.perf_counter()
            last = fn()
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt * 1e3)
        peak_kb = _status_kb("VmHWM")
        if teardown:
            teardown()
        row = {"method": method, "workload": workload.name, "threads": threads,
               "median_ms": statistics.median(times), "min_ms": min(times),
               "max_ms": max(times), "runs": runs, "warmup": warmup,
               "samples_ms": [round(t, 4) for t in times],
               "peak_rss_mb": (peak_kb - base_kb) / 1024.0 if peak_ok else None,
               "baseline_rss_mb": base_kb / 1024.0}
        if note:
            row["note"] = note
        self.rows.append(row)
        print("  %-24s %-10s %9.3f ms (min %.3f)  peak +%.0f MB" % (
            method, workload.name, row["median_ms"], row["min_ms"],
            row["peak_rss_mb"] if row["peak_rss_mb"] is not None else float("nan")), flush=True)
        return last


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def _grad_diff(mine, ref):
    """max |mine - ref| / max |ref| (ref a torch tensor or numpy array)."""
    ref = ref.numpy() if hasattr(ref, "numpy") else ref
    scale = float(np.abs(ref).max()) or 1.0
    return float(np.abs(mine - ref).max()) / scale


def loss_check(name, mine, ref, strict):
    """mbx LossResult vs a baseline's (loss_loc, loss_conf, grad_loc, grad_conf)."""
    c = {"check": name, "strict": strict,
         "mbx_loss_loc": float(mine.loss_loc), "ref_loss_loc": ref[0],
         "rel_loc": _rel(float(mine.loss_loc), ref[0]),
         "mbx_loss_conf": float(mine.loss_conf), "ref_loss_conf": ref[1],
         "rel_conf": _rel(float(mine.loss_conf), ref[1]),
         "grad_loc_maxdiff_rel": _grad_diff(mine.grad_loc, ref[2]),
         "grad_conf_maxdiff_rel": _grad_diff(mine.grad_conf, ref[3]),
         "num_pos_total": int(np.asarray(mine.num_pos).sum())}
    c["ok"] = bool(c["rel_loc"] <= 1e-4 and c["rel_conf"] <= 1e-4)
    return c


def run_workload(mbx, capi, tvl, ssd_ref, w, bench, ncpu, checks, skip_torch):
    print("\n== %s: B=%d P=%d C=%d GT 1..%d (total %d), inputs %.1f MB, floor %.1f MB moved"
          % (w.name, w.B, w.P, w.C, w.G, int(w.gt_counts.sum()),
             (w.loc.nbytes + w.conf.nbytes) / MB, w.io_bytes / MB), flush=True)
    priors = w.priors_corners  # both torchvision presets are CORNERS
    args = (priors, w.gt_boxes, w.gt_labels, w.gt_counts, w.loc, w.conf)

    # (4) memory floor: read loc/conf once, write same-sized buffers once.
    bufs = {}

    def floor_setup():
        bufs["l"], bufs["c"] = np.empty_like(w.loc), np.empty_like(w.conf)

    def floor():
        np.copyto(bufs["l"], w.loc)
        np.copyto(bufs["c"], w.conf)

    bench.measure("floor (copy)", w, floor, setup=floor_setup, teardown=bufs.clear,
                  note="np.copyto of loc and conf into preallocated buffers: %d bytes moved"
                  % w.io_bytes)

    # (1) mbx through the Python binding.
    thread_list = [0, 1] + ([2] if ncpu >= 2 else [])
    ref_out = None
    for nt in thread_list:
        ctx = mbx.Context(num_threads=nt)
        loss = mbx.MultiBoxLoss(w.tv_preset, context=ctx)
        out = bench.measure("mbx-py fused" + ("" if nt == 0 else " %dT" % nt), w,
                            lambda: loss(*args, grad=True), threads=nt or ncpu)
        if nt == 0:
            ref_out = out
            bench.rows[-1]["workspace_mb"] = ctx.workspace_bytes / MB
        else:
            checks.append({"check": "%s: %d threads == all threads (bitwise)" % (w.name, nt),
                           "ok": bool(float(out.loss_loc) == float(ref_out.loss_loc)
                                      and float(out.loss_conf) == float(ref_out.loss_conf)
                                      and np.array_equal(out.grad_conf, ref_out.grad_conf))})
        out = None
        ctx.close()
    ctx = mbx.Context(num_threads=0)
    loss = mbx.MultiBoxLoss(w.tv_preset, context=ctx)
    # A training loop that reuses its gradient buffers (out=): no per-step
    # allocation/page faults of B*P*(C+4) floats.
    grad_bufs = {}

    def alloc_out():
        grad_bufs["o"] = (np.empty_like(w.loc), np.empty_like(w.conf))
    reuse = bench.measure("mbx-py fused out=", w, lambda: loss(*args, grad=True, out=grad_bufs["o"]),
                          threads=ncpu, setup=alloc_out)
    checks.append({"check": "%s: out= buffers == fresh outputs (bitwise)" % w.name,
                   "ok": bool(np.array_equal(reuse.grad_conf, ref_out.grad_conf)
                              and float(reuse.loss_conf) == float(ref_out.loss_conf))})
    reuse = None
    grad_bufs.clear()
    fwd = bench.measure("mbx-py fwd", w, lambda: loss.forward(*args), threads=ncpu)
    checks.append({"check": "%s: forward-only loss == fused loss (bitwise)" % w.name,
                   "ok": bool(float(fwd.loss_loc) == float(ref_out.loss_loc)
                              and float(fwd.loss_conf) == float(ref_out.loss_conf))})
    ctx.close()

    # (2) the same fused call through the C ABI (ctypes), preallocated outputs.
    for nt in [0, 1]:
        call = CCall(capi, w, w.tv_preset, priors, nt)
        bench.measure("mbx-C fused" + ("" if nt == 0 else " %dT" % nt), w, call.fused,
                      threads=nt or ncpu, setup=call.alloc_grads)
        if nt == 0:
            same = (float(call.loss[0]) == float(ref_out.loss_loc)
                    and float(call.loss[1]) == float(ref_out.loss_conf)
                    and np.array_equal(call.grad_loc, ref_out.grad_loc)
                    and np.array_equal(call.grad_conf, ref_out.grad_conf))
            checks.append({"check": "%s: C ABI == Python binding (bitwise)" % w.name,
                           "ok": bool(same)})
        call.free_grads()
        call.close()
    call = CCall(capi, w, w.tv_preset, priors, 0)
    bench.measure("mbx-C fwd", w, call.forward, threads=ncpu)
    call.close()

    if skip_torch:
        return
    import torch

    # (3) torchvision, forward + backward of a training step's loss.
    if w.name == "ssd300":
        model = tvl.TorchvisionSSD()
    else:
        model = tvl.TorchvisionRetinaNet(w.C)
    heavy = w.name == "retinanet"
    default_threads = torch.get_num_threads()
    tv_loc = None
    # torch's default thread count (what a user gets), and every core if that
    # differs (mbx uses every core by default); tv/x uses the faster one.
    for nt in [default_threads] + ([ncpu] if ncpu != default_threads else []):
        torch.set_num_threads(nt)
        tv = bench.measure("torchvision" if nt == default_threads else "torchvision %dT" % nt, w,
                           lambda: tvl.torchvision_step(model, priors, w.gt_boxes, w.gt_labels,
                                                        w.gt_counts, w.loc, w.conf,
                                                        w.label_offset),
                           threads=nt, warmup=min(bench.warmup, 1) if heavy else None)
        if tv_loc is None:
            tv_loc, tv_conf, tv_gloc, tv_gconf = tv
        tv = None
    torch.set_num_threads(default_threads)
    # Correctness. torchvision decides matches on float32 IoU, mbx on float64
    # (docs/SPEC.md §2), so a prior sitting on a threshold or tying a GT's best IoU
    # can be matched differently. The strict check feeds torchvision's own
    # matcher the IoU in float64 (as tests/python/test_torchvision.py does);
    # the as-timed float32 run is reported next to it with the count of
    # priors whose decision differs.
    torch.set_num_threads(default_threads)
    strict = tvl.torchvision_step(model, priors, w.gt_boxes, w.gt_labels, w.gt_counts, w.loc,
                                  w.conf, w.label_offset, iou_dtype=torch.float64)
    checks.append(loss_check("%s: mbx %s vs torchvision, matcher on float64 IoU (rel <= 1e-4)"
                             % (w.name, w.tv_preset), ref_out, strict, strict=True))
    strict = None
    ndiff, ntotal = tvl.match_decision_diff(model, priors, w.gt_boxes, w.gt_labels, w.gt_counts)
    chk = loss_check("%s: mbx %s vs torchvision as timed (float32 IoU; info)"
                     % (w.name, w.tv_preset), ref_out, (tv_loc, tv_conf, tv_gloc, tv_gconf),
                     strict=False)
    chk["priors_matched_differently_f32_vs_f64"] = ndiff
    chk["priors_x_images"] = ntotal
    checks.append(chk)
    tv_gloc = tv_gconf = None
    ref_out = None

    # (5) ssd.pytorch MultiBoxLoss (plain torch re-implementation), SSD only.
    if w.name == "ssd300" and ssd_ref is not None:
        ctx = mbx.Context(num_threads=0)
        loss = mbx.MultiBoxLoss("ssd_pytorch", context=ctx)
        a2 = (w.priors_cs,) + args[1:]
        mine = bench.measure("mbx-py fused ssd_pytorch", w, lambda: loss(*a2, grad=True),
                             threads=ncpu)
        ctx.close()
        ref = bench.measure("ssd.pytorch (re-impl)", w, lambda: tvl.ssd_pytorch_step(
            ssd_ref, w.priors_cs, w.gt_boxes, w.gt_labels, w.gt_counts, w.loc, w.conf),
            threads=torch.get_num_threads())
        checks.append(loss_check("%s: mbx ssd_pytorch vs ssd.pytorch re-impl (rel <= 1e-4)"
                                 % w.name, mine, ref, strict=True))


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def add_ratios(rows):
    """tv/x = torchvision ms / method ms (speed-up); x/floor = method ms /
    floor ms; x/tv = method / torchvision (the issue's mbx/torchvision)."""
    by = {}
    for r in rows:
        by.setdefault(r["workload"], {})[r["method"]] = r
    for r in rows:
        w = by[r["workload"]]
        tvs = [x for k, x in w.items() if k.startswith("torchvision")]
        tv = min(tvs, key=lambda x: x["median_ms"]) if tvs else None
        fl = w.get("floor (copy)")
        r["speedup_vs_torchvision"] = tv["median_ms"] / r["median_ms"] if tv else None
        r["ratio_vs_torchvision"] = r["median_ms"] / tv["median_ms"] if tv else None
        r["ratio_vs_floor"] = r["median_ms"] / fl["median_ms"] if fl else None
    return by


def summary(by):
    """The issue-5 target quantities (reported, not asserted)."""
    out = {}
    for wl, m in by.items():
        s = {}
        tvs = [x for k, x in m.items() if k.startswith("torchvision")]
        tv = min(tvs, key=lambda x: x["median_ms"]) if tvs else None
        if tv:
            s["torchvision_reference"] = "%s (%d threads)" % (tv["method"], tv["threads"])
        fused, fl = m.get("mbx-py fused"), m.get("floor (copy)")
        c = m.get("mbx-C fused")
        if fused and tv:
            s["speedup_py_vs_torchvision"] = tv["median_ms"] / fused["median_ms"]
        if c and tv:
            s["speedup_C_vs_torchvision"] = tv["median_ms"] / c["median_ms"]
        if fused and fl:
            s["py_x_floor"] = fused["median_ms"] / fl["median_ms"]
        if c and fl:
            s["C_x_floor"] = c["median_ms"] / fl["median_ms"]
        if c and fused:
            s["binding_overhead_ms"] = fused["median_ms"] - c["median_ms"]
        t1, t2 = m.get("mbx-py fused 1T"), m.get("mbx-py fused 2T")
        if t1 and t2:
            s["py_2T_over_1T_speedup"] = t1["median_ms"] / t2["median_ms"]
        c1 = m.get("mbx-C fused 1T")
        if c1 and c:
            s["C_allT_over_1T_speedup"] = c1["median_ms"] / c["median_ms"]
        f = m.get("mbx-py fwd")
        if f and fused:
            s["py_fused_over_fwd"] = fused["median_ms"] / f["median_ms"]
        cf = m.get("mbx-C fwd")
        if cf and c:
            s["C_fused_over_fwd"] = c["median_ms"] / cf["median_ms"]
        sp, sm = m.get("ssd.pytorch (re-impl)"), m.get("mbx-py fused ssd_pytorch")
        if sp and sm:
            s["speedup_py_ssd_pytorch_preset_vs_ssd_pytorch"] = sp["median_ms"] / sm["median_ms"]
        if fused and fused.get("peak_rss_mb") is not None:
            s["py_peak_minus_grads_mb"] = fused["peak_rss_mb"] - fused.get("grad_mb", 0)
        out[wl] = s
    return out


def fmt(v, spec):
    return "-" if v is None else spec % v


def print_table(rows, checks, summ, meta):
    lines = []
    lines.append("mbx comparison  %s  %s" % (meta["date"], meta["command"]))
    lines.append("machine: %s, nproc %d, %.1f GiB RAM; load avg start %s end %s" % (
        meta["machine"]["cpu_model"], meta["machine"]["nproc"], meta["machine"]["mem_gib"],
        meta["load_avg_start"], meta["load_avg_end"]))
    lines.append("mbx %s (ISA %s, %s); torch %s (%d threads), torchvision %s; numpy %s; "
                 "median of %d after %d warm-up" % (
                     meta["mbx_version"], meta["cpu_isa"]["isa"], meta["cpu_isa"]["source"],
                     meta.get("torch_version"), meta.get("torch_threads") or 0,
                     meta.get("torchvision_version"), meta["numpy_version"], meta["runs"],
                     meta["warmup"]))
    lines.append("tv/x = faster torchvision row's ms / method ms (speed-up); x/floor = method ms / copy-floor "
                 "ms; peak = MB of RSS above the RSS before the method")
    hdr = "%-26s %-10s %4s %11s %11s %9s %8s %9s" % (
        "method", "workload", "thr", "median ms", "min ms", "tv/x", "x/floor", "peak MB")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    last = None
    for r in rows:
        if last is not None and r["workload"] != last:
            lines.append("")
        last = r["workload"]
        lines.append("%-26s %-10s %4s %11.3f %11.3f %9s %8s %9s" % (
            r["method"], r["workload"], r["threads"] if r["threads"] is not None else "-",
            r["median_ms"], r["min_ms"], fmt(r["speedup_vs_torchvision"], "%.1fx"),
            fmt(r["ratio_vs_floor"], "%.2f"), fmt(r["peak_rss_mb"], "%.0f")))
    lines.append("")
    lines.append("targets (issue 5; reported, not asserted):")
    for wl, s in summ.items():
        lines.append("  %-10s %s" % (wl, ", ".join(
            ("%s=%.2f" if isinstance(v, float) else "%s=%s") % (k, v) for k, v in s.items())))
    lines.append("")
    lines.append("correctness (same inputs, same run):")
    for c in checks:
        if "rel_loc" in c:
            ref_l, ref_c = c["ref_loss_loc"], c["ref_loss_conf"]
            tag = ("OK" if c["ok"] else "FAIL") if c["strict"] else (
                "info, within" if c["ok"] else "info, differs")
            lines.append("  [%s] %s" % (tag, c["check"]))
            lines.append("         loss_loc  mbx %.9g  ref %.9g  rel %.2e" % (
                c["mbx_loss_loc"], ref_l, c["rel_loc"]))
            lines.append("         loss_conf mbx %.9g  ref %.9g  rel %.2e" % (
                c["mbx_loss_conf"], ref_c, c["rel_conf"]))
            lines.append("         grads: max|diff|/max|ref| loc %.2e, conf %.2e; positives %d" % (
                c["grad_loc_maxdiff_rel"], c["grad_conf_maxdiff_rel"], c["num_pos_total"]))
            if "priors_matched_differently_f32_vs_f64" in c:
                lines.append("         priors matched differently by float32 vs float64 IoU: "
                             "%d of %d" % (c["priors_matched_differently_f32_vs_f64"],
                                           c["priors_x_images"]))
        else:
            lines.append("  [%s] %s" % ("OK" if c["ok"] else "FAIL", c["check"]))
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", help="mbx build directory (uses <build>/python); default: "
                    "PYTHONPATH, else <repo>/build-bench")
    ap.add_argument("--runs", type=int, default=7, help="timed calls per method (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls first (torchvision "
                    "RetinaNet gets at most 1)")
    ap.add_argument("--workloads", default="ssd300,retinanet")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 1 run, no warm-up (CI)")
    ap.add_argument("--no-torch", action="store_true", help="skip torchvision / ssd.pytorch")
    ap.add_argument("--json", help="write every number here")
    ap.add_argument("--txt", help="also write the printed report here")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 1, 0
    if args.runs < 1:
        ap.error("--runs must be >= 1")

    _setup_path(args.build)
    import mbx
    t_start = time.time()
    load_start = _loadavg()

    tvl = ssd_ref = None
    meta_torch = {}
    if not args.no_torch:
        import torch
        import torchvision
        sys.path.insert(0, HERE)
        import torchvision_losses as tvl
        ssd_ref, why = tvl.load_ssd_pytorch_reference(REPO)
        if ssd_ref is None:
            print("note: ssd.pytorch re-implementation not importable (%s); skipped" % why)
        meta_torch = {"torch_version": torch.__version__,
                      "torchvision_version": torchvision.__version__,
                      "torch_threads": torch.get_num_threads()}

    lib_path = _loaded_libmbx()
    if lib_path is None:
        raise SystemExit("could not find the libmbx the binding loaded in /proc/self/maps")
    capi = CApi(lib_path)
    c_version = capi.lib.mbx_version().decode()
    if c_version != mbx.version():
        raise SystemExit("C library %s != binding %s" % (c_version, mbx.version()))

    ncpu = os.cpu_count() or 1
    bench = Bench(args.warmup, args.runs)
    checks = []
    workloads = {}
    for name in [s.strip() for s in args.workloads.split(",") if s.strip()]:
        if name not in ("ssd300", "retinanet"):
            ap.error("unknown workload %r" % name)
        t0 = time.perf_counter()
        w = Workload(mbx, name, quick=args.quick)
        print("built %s inputs in %.1f s" % (name, time.perf_counter() - t0), flush=True)
        workloads[name] = w.describe()
        n_before = len(bench.rows)
        run_workload(mbx, capi, tvl, ssd_ref, w, bench, ncpu, checks, args.no_torch)
        for r in bench.rows[n_before:]:
            if r["method"] != "floor (copy)" and "fwd" not in r["method"]:
                r["grad_mb"] = w.grad_mb
        w = None
        gc.collect()

    by = add_ratios(bench.rows)
    summ = summary(by)
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    meta = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": {"nproc": ncpu, "cpu_model": _cpu_model(), "mem_gib": mem_kb / 1024.0 / 1024.0,
                    "platform": platform.platform(), "hostname": platform.node()},
        "load_avg_start": [round(x, 2) for x in load_start] if load_start else None,
        "load_avg_end": [round(x, 2) for x in _loadavg()] if _loadavg() else None,
        "mbx_version": mbx.version(), "mbx_library": lib_path,
        "mbx_module": os.path.dirname(mbx.__file__),
        "cpu_isa": _cpu_isa(mbx), "env_MBX_CPU_ISA": os.environ.get("MBX_CPU_ISA"),
        "python": platform.python_version(), "numpy_version": np.__version__,
        "runs": args.runs, "warmup": args.warmup, "quick": args.quick,
    }
    meta.update(meta_torch)
    text = print_table(bench.rows, checks, summ, meta)
    meta["total_s"] = round(time.time() - t_start, 1)
    print("total %.1f s" % meta["total_s"])
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "workloads": workloads, "results": bench.rows,
                       "targets": summ, "checks": checks}, f, indent=1)
        print("wrote %s" % args.json)
    if args.txt:
        with open(args.txt, "w") as f:
            f.write(text + "\ntotal %.1f s\n" % meta["total_s"])
    return 0 if all(c["ok"] for c in checks if c.get("strict", True)) else 1


if __name__ == "__main__":
    sys.exit(main())
