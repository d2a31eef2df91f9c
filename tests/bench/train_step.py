#!/usr/bin/env python3
"""Training-step time of torchvision detection models: torchvision's own
loss vs ``mbx.torch.use_mbx_loss``, and the network alone.

    PYTHONPATH=<build>/python python tests/bench/train_step.py             # CUDA if available, else CPU
    PYTHONPATH=<build>/python python tests/bench/train_step.py --device cpu --quick

For each model (random weights, nothing downloaded; COCO's 91 classes;
random targets, --boxes per image on average) one step is zero_grad,
``losses = model(images, targets)``, ``sum(losses).backward()``, SGD step:

* torchvision: the model as torchvision ships it (its compute_loss);
* mbx: after ``mbx.torch.use_mbx_loss(model)``;
* network: the same, with compute_loss replaced by a trivial sum of the
  head outputs (and SSD's matcher by the same pass-through as mbx's), i.e.
  transform + backbone + head + anchors forward and backward;
* kernel: the mbx call alone (fused forward+backward) on the step's
  head-output-sized tensors and packed targets.

* loss alone: the loss part of a step by itself, forward and backward to
  the head outputs, on the head outputs of one step (torchvision: SSD's
  matching loop + compute_loss, or RetinaNet's compute_loss; mbx: the same
  with the patched compute_loss).

glue = mbx - network - kernel: what the Python side of the drop-in costs
(target packing, checks, autograd plumbing); "glue (direct)" = mbx loss
alone - kernel, the same measured without the network's noise. "loss share" is (torchvision -
network) / torchvision. Times are medians over --repeat steps per variant
after --warmup steps, the variants' steps interleaved, the garbage
collector off, torch.cuda.synchronize() around each step on CUDA.
"""

import argparse
import copy
import gc
import json
import statistics
import sys
import time

import torch
import torchvision
from torchvision.models import detection
from torchvision.ops import boxes as box_ops

import mbx
import mbx.torch

# name, batch, image (h, w), builder kwargs
FULL = [
    ("ssd300_vgg16", 32, (300, 300), {}),
    ("ssdlite320_mobilenet_v3_large", 64, (320, 320), {}),
    ("retinanet_resnet50_fpn", 8, (640, 832), {"min_size": 640, "max_size": 832}),
]
QUICK = [
    ("ssd300_vgg16", 2, (300, 300), {}),
    ("ssdlite320_mobilenet_v3_large", 4, (320, 320), {}),
    ("retinanet_resnet50_fpn", 1, (640, 832), {"min_size": 640, "max_size": 832}),
]


def make_batch(batch, hw, num_classes, first_label, boxes, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    images = [torch.rand(3, h, w, generator=g).to(device) for _ in range(batch)]
    targets = []
    for _ in range(batch):
        n = int(torch.randint(0, 2 * boxes + 1, (1,), generator=g))
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3]) + 4
        targets.append({"boxes": torch.cat([xy, xy + wh], 1).to(device),
                        "labels": torch.randint(first_label, num_classes, (n,), generator=g).to(device)})
    return images, targets


def network_only(model):
    """compute_loss -> a trivial sum of the head outputs (one reduction each)."""
    model = mbx.torch.use_mbx_loss(model)  # the same SSD matcher pass-through as the mbx variant
    ssd = isinstance(model, detection.ssd.SSD)

    def compute_loss(targets, head_outputs, anchors, *unused):
        loc = head_outputs["bbox_regression"].sum() * 1e-3
        conf = head_outputs["cls_logits"].sum() * 1e-3
        return {"bbox_regression": loc, "classification": conf} if ssd else \
            {"classification": conf, "bbox_regression": loc}

    model.compute_loss = compute_loss
    return model


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
        self.ms = (time.perf_counter() - self.t0) * 1e3


class Stepper:
    """One model's training step (SGD), timed."""

    def __init__(self, model, images, targets, device, amp):
        self.model, self.images, self.targets, self.device, self.amp = model, images, targets, device, amp
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-5)
        self.times, self.last = [], None

    def __call__(self, record=True):
        with Timer(self.device) as t:
            self.opt.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, enabled=self.amp,
                                dtype=torch.float16 if self.device.type == "cuda" else torch.bfloat16):
                losses = self.model(self.images, self.targets)
            sum(losses.values()).backward()
            self.opt.step()
        if record:
            self.times.append(t.ms)
        self.last = {k: float(v.detach()) for k, v in losses.items()}


def time_interleaved(steppers, warmup, repeat):
    """Warm-up steps, then the timed steps round-robin over the variants (so
    that drifts of clocks and of the machine's load hit every variant alike),
    with the garbage collector off while timing. Medians."""
    for s in steppers.values():
        for _ in range(warmup):
            s(record=False)
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeat):
            for s in steppers.values():
                s()
    finally:
        gc.enable()
    return {k: statistics.median(s.times) for k, s in steppers.items()}


def time_steps(model, images, targets, device, warmup, repeat, amp):
    """One model alone: (median ms, last losses)."""
    s = Stepper(model, images, targets, device, amp)
    return time_interleaved({"m": s}, warmup, repeat)["m"], s.last


def capture_loss_inputs(model, images, targets):
    """What compute_loss receives in a training step (transformed targets,
    head outputs, anchors), from one no-grad forward of the model."""
    captured = {}
    orig = model.compute_loss

    def capture(targets_, head_outputs, anchors, *unused):
        captured.update(head={k: v.detach() for k, v in head_outputs.items()}, anchors=anchors,
                        targets=targets_)
        return orig(targets_, head_outputs, anchors, *unused)

    model.compute_loss = capture
    try:
        with torch.no_grad():
            model(images, targets)
    finally:
        model.compute_loss = orig
    return captured


def time_loss(model, cap, device, warmup, repeat):
    """The loss part of a step alone, forward and backward to the head
    outputs: for SSD, SSD.forward's per-image box_iou + matcher loop (a
    pass-through once patched) and compute_loss; for RetinaNet compute_loss
    (which matches)."""
    ssd = isinstance(model, detection.ssd.SSD)
    times = []
    for i in range(warmup + repeat):
        head = {k: v.clone().requires_grad_() for k, v in cap["head"].items()}
        anchors, targets = cap["anchors"], cap["targets"]
        with Timer(device) as t:
            if ssd:
                matched = []
                for a, tg in zip(anchors, targets):
                    if tg["boxes"].numel() == 0:
                        matched.append(torch.full((a.size(0),), -1, dtype=torch.int64, device=a.device))
                        continue
                    matched.append(model.proposal_matcher(box_ops.box_iou(tg["boxes"], a)))
                losses = model.compute_loss(targets, head, anchors, matched)
            else:
                losses = model.compute_loss(targets, head, anchors)
            sum(losses.values()).backward()
        if i >= warmup:
            times.append(t.ms)
    return statistics.median(times)


def time_kernel(model, cap, device, warmup, repeat):
    """The mbx call alone (fused forward+backward) on the step's head outputs
    and packed targets."""
    from mbx._torchvision import pack_detection_targets
    loss = model.mbx_loss
    loc = cap["head"]["bbox_regression"].contiguous()
    conf = cap["head"]["cls_logits"].contiguous()
    priors = cap["anchors"][0].detach().float()
    (gb, gl, gc), _ = pack_detection_targets(cap["targets"], device, loss.label_offset)
    out = (torch.empty_like(loc), torch.empty_like(conf))
    times = []
    for i in range(warmup + repeat):
        with Timer(device) as t:
            loss.criterion(priors, gb, gl, gc, loc, conf, out=out)
        if i >= warmup:
            times.append(t.ms)
    return statistics.median(times)


def run_model(name, batch, hw, kwargs, args, device):
    ssd = name.startswith("ssd")
    torch.manual_seed(0)
    base = getattr(detection, name)(weights=None, weights_backbone=None, num_classes=args.num_classes,
                                    **kwargs).to(device)
    base.train()
    images, targets = make_batch(batch, hw, args.num_classes, 1 if ssd else 0, args.boxes, device)
    row = {"model": name, "device": str(device), "batch": batch, "image": "%dx%d" % hw,
           "amp": bool(args.amp)}
    models = {
        "torchvision": copy.deepcopy(base),
        "mbx": mbx.torch.use_mbx_loss(copy.deepcopy(base)),
        "network": network_only(copy.deepcopy(base)),
    }
    del base
    losses = {}
    steppers = {k: Stepper(m, images, targets, device, args.amp) for k, m in models.items()}
    for key, ms in time_interleaved(steppers, args.warmup, args.repeat).items():
        row[key + "_ms"], losses[key] = ms, steppers[key].last
    cap = capture_loss_inputs(models["mbx"], images, targets)
    loss_reps = max(args.repeat, 5)
    row["kernel_ms"] = time_kernel(models["mbx"], cap, device, args.warmup + 1, loss_reps)
    for key in ("torchvision", "mbx"):
        row["loss_%s_ms" % key] = time_loss(models[key], cap, device, args.warmup + 1, loss_reps)
    row["glue_direct_ms"] = row["loss_mbx_ms"] - row["kernel_ms"]
    row["speedup"] = row["torchvision_ms"] / row["mbx_ms"]
    row["loss_share"] = (row["torchvision_ms"] - row["network_ms"]) / row["torchvision_ms"]
    row["glue_ms"] = row["mbx_ms"] - row["network_ms"] - row["kernel_ms"]
    # After identical warm-up steps the weights differ slightly (different
    # losses moved them), so the last losses agree only roughly; the exact
    # comparison is tests/python/test_torchvision_dropin.py.
    row["losses_torchvision"], row["losses_mbx"] = losses["torchvision"], losses["mbx"]
    del models, steppers
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    ap.add_argument("--quick", action="store_true", help="small batches (CPU): %s"
                    % ", ".join("%s B=%d" % (m[0], m[1]) for m in QUICK))
    ap.add_argument("--batch", type=int, default=None, help="one batch size for every model")
    ap.add_argument("--models", default=None, help="comma-separated subset of %s" % ",".join(m[0] for m in FULL))
    ap.add_argument("--num-classes", type=int, default=91)
    ap.add_argument("--boxes", type=int, default=7, help="mean GT boxes per image (uniform 0..2x)")
    ap.add_argument("--warmup", type=int, default=None, help="default 3 (CUDA), 1 (CPU)")
    ap.add_argument("--repeat", type=int, default=None, help="default 15 (CUDA), 3 (CPU)")
    ap.add_argument("--amp", action="store_true", help="torch.autocast (fp16 on CUDA, bf16 on CPU)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() and mbx.cuda_available() else "cpu"
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    if args.warmup is None:
        args.warmup = 3 if cuda else 1
    if args.repeat is None:
        args.repeat = 15 if cuda else 3
    configs = QUICK if args.quick else FULL
    if args.models:
        wanted = args.models.split(",")
        unknown = set(wanted) - {m[0] for m in FULL}
        if unknown:
            ap.error("unknown model(s): %s" % ", ".join(sorted(unknown)))
        configs = [m for m in configs if m[0] in wanted]
    if cuda:
        torch.backends.cudnn.benchmark = True
        what = torch.cuda.get_device_name(device)
    else:
        what = "CPU, %d torch threads" % torch.get_num_threads()
    print("# torch %s, torchvision %s, mbx %s, %s, %s%s" % (
        torch.__version__, torchvision.__version__, mbx.version(), what,
        "AMP, " if args.amp else "", "median of %d steps after %d warm-up" % (args.repeat, args.warmup)))
    rows = []
    head = ("model", "B", "image", "torchvision ms", "mbx ms", "speed-up", "network ms", "loss share",
            "loss alone: torchvision ms", "loss alone: mbx ms", "mbx kernel ms", "glue ms", "glue (direct) ms")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, batch, hw, kwargs in configs:
        if args.batch:
            batch = args.batch
        row = run_model(name, batch, hw, kwargs, args, device)
        rows.append(row)
        print("| %s | %d | %s | %.1f | %.1f | %.2fx | %.1f | %.1f%% | %.2f | %.2f | %.2f | %.1f | %.2f |" % (
            name, batch, row["image"], row["torchvision_ms"], row["mbx_ms"], row["speedup"],
            row["network_ms"], 100 * row["loss_share"], row["loss_torchvision_ms"], row["loss_mbx_ms"],
            row["kernel_ms"], row["glue_ms"], row["glue_direct_ms"]))
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__,
                       "mbx": mbx.version(), "device": what, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
