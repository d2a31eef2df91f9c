"""GPU side-by-side: mbx's CUDA path against torchvision's losses on one GPU.

In one process and one run, for the SSD300 (B=32, P=8732, C=21) and
RetinaNet (B=8, P=99765, C=80) workloads of compare.py, on torch CUDA tensors:

* ``mbx fused``     MultiBoxLoss(preset)(..., grad=True) through the Python binding
* ``mbx fwd``       the forward-only call (evaluation)
* ``torchvision``   SSD / RetinaNet ``compute_loss`` forward + backward (the per-image
                    matching loop included), as tests/bench/torchvision_losses.py runs it
* ``floor (copy)``  a device copy of loc and conf into preallocated buffers (the bytes
                    mbx must read and write)

Each time is the median of --runs calls after --warmup, measured with CUDA
events on the current stream. The losses and gradients of mbx and
torchvision are compared in the same run (torchvision decides matches in
float32 IoU, mbx in float64, so a few priors may differ; the check reports it).

    python3 tests/bench/compare_cuda.py --build build-gpu [--json out.json]
"""

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402  (Workload, _setup_path)


def cuda_median_ms(torch, fn, runs, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
        del out
    return statistics.median(times), times


def grad_rel(torch, a, b):
    a, b = a.double(), b.double()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-30))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", help="mbx build directory (uses <build>/python)")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workloads", default="ssd300,retinanet")
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    compare._setup_path(args.build)
    import mbx
    import torch
    import torchvision
    import torchvision_losses as tvl

    if not (torch.cuda.is_available() and mbx.cuda_available()):
        print("no usable CUDA device (torch %s, mbx %s): nothing to compare"
              % (torch.cuda.is_available(), mbx.cuda_available()))
        return 0
    dev = torch.device("cuda")
    meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "mbx": mbx.version(),
            "runs": args.runs, "warmup": args.warmup}
    print("device %(device)s, torch %(torch)s, torchvision %(torchvision)s, mbx %(mbx)s; "
          "median of %(runs)d after %(warmup)d warm-up, CUDA events" % meta)
    rows, checks = [], []
    for kind in args.workloads.split(","):
        w = compare.Workload(mbx, kind)
        print("\n== %s: B=%d P=%d C=%d GT 1..%d, inputs %.1f MB"
              % (kind, w.B, w.P, w.C, w.G, (w.loc.nbytes + w.conf.nbytes) / 1e6), flush=True)
        t = {k: torch.from_numpy(v).to(dev) for k, v in
             dict(priors=w.priors_corners, gtb=w.gt_boxes, gtl=w.gt_labels, gtc=w.gt_counts,
                  loc=w.loc, conf=w.conf).items()}
        margs = (t["priors"], t["gtb"], t["gtl"], t["gtc"], t["loc"], t["conf"])
        loss = mbx.MultiBoxLoss(w.tv_preset)

        def record(name, fn):
            ms, _ = cuda_median_ms(torch, fn, args.runs, args.warmup)
            rows.append({"workload": kind, "method": name, "ms": ms})
            print("  %-16s %10.3f ms" % (name, ms), flush=True)
            return ms

        lbuf, cbuf = torch.empty_like(t["loc"]), torch.empty_like(t["conf"])

        def floor():
            lbuf.copy_(t["loc"])
            cbuf.copy_(t["conf"])
        record("floor (copy)", floor)
        record("mbx fused", lambda: loss(*margs, grad=True))
        record("mbx fwd", lambda: loss.forward(*margs))

        model = (tvl.TorchvisionSSD() if kind == "ssd300" else tvl.TorchvisionRetinaNet(w.C))
        anchors = [t["priors"]] * w.B
        targets = [{"boxes": t["gtb"][b, :int(w.gt_counts[b])],
                    "labels": t["gtl"][b, :int(w.gt_counts[b])].long() + w.label_offset}
                   for b in range(w.B)]

        def tv_step(iou_dtype=None):
            loc = t["loc"].detach().requires_grad_()
            conf = t["conf"].detach().requires_grad_()
            losses = model.losses(targets, loc, conf, anchors, iou_dtype)
            ll, lc = losses["bbox_regression"], losses["classification"]
            gl, gc = torch.autograd.grad(ll + lc, (loc, conf))
            return ll.detach(), lc.detach(), gl, gc
        record("torchvision", tv_step)

        # Correctness in the same run: mbx on CUDA vs mbx on the CPU (exact
        # parity expected to the golden tolerances) and vs torchvision.
        out = loss(*margs, grad=True)
        cpu = mbx.MultiBoxLoss(w.tv_preset, context=mbx.Context(path="cpu"))(
            w.priors_corners, w.gt_boxes, w.gt_labels, w.gt_counts, w.loc, w.conf, grad=True)
        # torchvision decides matches on float32 IoU, mbx on float64 (docs/SPEC.md §2):
        # the strict check feeds torchvision's matcher float64 IoU.
        tl, tc, tgl, tgc = tv_step(torch.float64)
        c = {"workload": kind,
             "cuda_vs_cpu_loss_rel": max(compare._rel(float(out.loss_loc), float(cpu.loss_loc)),
                                         compare._rel(float(out.loss_conf), float(cpu.loss_conf))),
             "cuda_vs_cpu_grad_rel": max(grad_rel(torch, out.grad_loc.cpu(),
                                                  torch.from_numpy(cpu.grad_loc)),
                                         grad_rel(torch, out.grad_conf.cpu(),
                                                  torch.from_numpy(cpu.grad_conf))),
             "vs_torchvision_f64iou_loss_rel": max(compare._rel(float(out.loss_loc), float(tl)),
                                            compare._rel(float(out.loss_conf), float(tc))),
             "vs_torchvision_f64iou_grad_rel": max(grad_rel(torch, out.grad_loc, tgl),
                                            grad_rel(torch, out.grad_conf, tgc))}
        checks.append(c)
        print("  check: cuda vs cpu loss %.2e grad %.2e; vs torchvision (float64 IoU) loss %.2e grad %.2e"
              % (c["cuda_vs_cpu_loss_rel"], c["cuda_vs_cpu_grad_rel"],
                 c["vs_torchvision_f64iou_loss_rel"], c["vs_torchvision_f64iou_grad_rel"]))

    print("\n%-10s %10s %10s %10s %10s %12s %12s %10s" % (
        "workload", "floor ms", "mbx ms", "fwd ms", "tv ms", "tv / mbx", "mbx / floor",
        "fused/fwd"))
    for kind in args.workloads.split(","):
        r = {x["method"]: x["ms"] for x in rows if x["workload"] == kind}
        print("%-10s %10.3f %10.3f %10.3f %10.3f %11.1fx %11.2fx %9.2fx" % (
            kind, r["floor (copy)"], r["mbx fused"], r["mbx fwd"], r["torchvision"],
            r["torchvision"] / r["mbx fused"], r["mbx fused"] / r["floor (copy)"],
            r["mbx fused"] / r["mbx fwd"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "checks": checks}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
