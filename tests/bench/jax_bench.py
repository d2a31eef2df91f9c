"""mbx.jax benchmark: jitted loss + gradient against the C call and a pure-jnp loss.

    PYTHONPATH=<build>/python python tests/bench/jax_bench.py [--runs 7] [--quick]
        [--device cpu|gpu] [--workloads ssd300,retinanet] [--no-jnp] [--json OUT]

Workloads (those of tests/bench/compare.py, same generator and seed):
  ssd300    B=32, SSD300 VOC priors (P=8732), C=21, 1..6 GT per image, torchvision_ssd
  retinanet B=8, 640x832 anchors (P=99765), C=80, 1..15 GT per image, torchvision_retinanet

Methods, each timed in the same process (median of --runs after 2 warm-ups):
  mbx.jax        jax.jit(jax.value_and_grad) of mbx.jax.multibox_loss (one fused custom call
                 + the cotangent scale), outputs ready (block_until_ready)
  mbx-C fused    mbx.MultiBoxLoss(...)(numpy..., out=(grad_loc, grad_conf)): the fused C call
                 through the Python API into reused gradient buffers (CPU only; on a GPU the
                 eager call with CuPy arrays when CuPy is there)
  mbx-C alloc    the same call allocating new gradient arrays every time (what an XLA
                 execution does with its output buffers)

The CPU methods are timed interleaved (one run of each in turn), which keeps
the ratios fair on a shared machine; min and median are printed.
glibc returns large freed blocks to the OS (mmap threshold), so every fresh
gradient buffer page-faults again (about half the time of a RetinaNet step
on this 2-core machine). --tuned-malloc re-runs the benchmark with
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ raised so freed buffers are
reused (a process setting, not an mbx one; jemalloc/tcmalloc do the same).
  jnp            a pure-jnp loss following torchvision 0.14's SSD / RetinaNet compute_loss
                 (IoU matching, encoding, smooth-L1 / L1, CE with hard negative mining /
                 sigmoid focal), jax.jit(jax.value_and_grad)
Ratios are against mbx-C fused. The jnp losses are checked against mbx.jax (relative
difference printed; they implement the same presets).
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def make_workload(mbx, kind, quick=False, seed=42):
    """The generator of tests/bench/compare.py's Workload (same seed, same data)."""
    rng = np.random.default_rng(seed)
    if kind == "ssd300":
        B, C, G = (2 if quick else 32), 21, 6
        p = mbx.priors_ssd("voc").astype(np.float32)
        half_w, half_h = p[:, 2] / np.float32(2), p[:, 3] / np.float32(2)
        priors = np.stack([p[:, 0] - half_w, p[:, 1] - half_h, p[:, 0] + half_w,
                           p[:, 1] + half_h], 1).astype(np.float32)
        W = H = 1.0
        preset, K = "torchvision_ssd", C - 1
    else:
        B, C, G = (2 if quick else 8), 80, 15
        hw = (128, 160) if quick else (640, 832)
        priors = mbx.priors_retinanet(*hw)
        H, W = float(hw[0]), float(hw[1])
        preset, K = "torchvision_retinanet", C
    P = priors.shape[0]
    gt_boxes = np.zeros((B, G, 4), np.float32)
    gt_labels = np.zeros((B, G), np.int32)
    gt_counts = np.zeros((B,), np.int32)
    for b in range(B):
        n = 1 + int(rng.integers(G))
        gt_counts[b] = n
        for g in range(n):
            bw, bh = (0.05 + 0.7 * rng.random()) * W, (0.05 + 0.7 * rng.random()) * H
            x, y = rng.random() * (W - bw), rng.random() * (H - bh)
            gt_boxes[b, g] = (x, y, x + bw, y + bh)
            gt_labels[b, g] = int(rng.integers(K))
    loc = rng.standard_normal((B, P, 4), dtype=np.float32)
    conf = rng.standard_normal((B, P, C), dtype=np.float32)
    conf *= np.float32(2.0)
    return dict(name=kind, preset=preset, B=B, P=P, C=C, G=G,
                arrays=(priors, gt_boxes, gt_labels, gt_counts, loc, conf))


# ---------------------------------------------------------------------------
# Pure jnp, after torchvision 0.14 (models/detection/ssd.py, retinanet.py,
# _utils.py Matcher / SSDMatcher / BoxCoder, ops/focal_loss.py)
# ---------------------------------------------------------------------------

def jnp_losses(jnp, jax):
    def iou(priors, gt):  # [P,4], [G,4] corners -> [G,P]
        area_p = (priors[:, 2] - priors[:, 0]) * (priors[:, 3] - priors[:, 1])
        area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
        lt = jnp.maximum(gt[:, None, :2], priors[None, :, :2])
        rb = jnp.minimum(gt[:, None, 2:], priors[None, :, 2:])
        wh = jnp.clip(rb - lt, 0)
        inter = wh[..., 0] * wh[..., 1]
        return inter / (area_g[:, None] + area_p[None, :] - inter)

    def match(priors, gt, count, high, low, mode):
        """Matcher: matched gt index per prior, -1 below low, -2 between."""
        G = gt.shape[0]
        q = iou(priors, gt)
        q = jnp.where(jnp.arange(G)[:, None] < count, q, -1.0)  # padding rows never match
        vals, matches = q.max(0), q.argmax(0)
        matches = jnp.where(vals < low, -1, jnp.where(vals < high, -2, matches))
        best = q.max(1)
        valid = jnp.arange(G) < count
        if mode == "ssd":  # SSDMatcher: each GT's best prior, later GT wins
            best_prior = q.argmax(1)
            idx = jnp.where(valid, best_prior, priors.shape[0])
            matches = matches.at[idx].set(jnp.arange(G), mode="drop")
        else:  # allow_low_quality_matches: every prior tying a GT's best
            ties = (q == best[:, None]) & valid[:, None] & (best[:, None] > 0)
            anyt = ties.any(0)
            # torchvision restores the original match (argmax over GTs) for those priors
            matches = jnp.where(anyt, q.argmax(0), matches)
        return matches

    def encode(priors, gt, weights):
        pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
        pcx, pcy = priors[:, 0] + 0.5 * pw, priors[:, 1] + 0.5 * ph
        gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
        gcx, gcy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
        wx, wy, ww, wh = weights
        return jnp.stack([wx * (gcx - pcx) / pw, wy * (gcy - pcy) / ph,
                          ww * jnp.log(gw / pw), wh * jnp.log(gh / ph)], 1)

    def ssd(priors, gt_boxes, gt_labels, gt_counts, loc, conf):
        def per_image(gt, labels, count, loc_b, conf_b):
            m = jax.lax.stop_gradient(match(priors, gt, count, 0.5, 0.5, "ssd"))
            fg = m >= 0
            mi = jnp.maximum(m, 0)
            target = jax.lax.stop_gradient(encode(priors, gt[mi], (10.0, 10.0, 5.0, 5.0)))
            diff = jnp.abs(loc_b - target)
            sl1 = jnp.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5).sum(1)
            bbox = jnp.where(fg, sl1, 0.0).sum()
            cls_t = jnp.where(fg, labels[mi] + 1, 0)
            ce = jax.nn.logsumexp(conf_b, 1) - jnp.take_along_axis(conf_b, cls_t[:, None], 1)[:, 0]
            num_neg = 3 * fg.sum()
            neg_loss = jnp.where(fg, -jnp.inf, jax.lax.stop_gradient(ce))
            order = jnp.argsort(-neg_loss, stable=True)
            rank = jnp.argsort(order, stable=True)
            bg = rank < num_neg
            cls = jnp.where(fg, ce, 0.0).sum() + jnp.where(bg, ce, 0.0).sum()
            return bbox, cls, fg.sum()
        bbox, cls, npos = jax.vmap(per_image)(gt_boxes, gt_labels, gt_counts, loc, conf)
        n = jnp.maximum(1, npos.sum()).astype(jnp.float32)
        return bbox.sum() / n, cls.sum() / n

    def retinanet(priors, gt_boxes, gt_labels, gt_counts, loc, conf):
        C = conf.shape[2]

        def per_image(gt, labels, count, loc_b, conf_b):
            m = jax.lax.stop_gradient(match(priors, gt, count, 0.5, 0.4, "retina"))
            fg = m >= 0
            valid = m != -2
            mi = jnp.maximum(m, 0)
            nfg = jnp.maximum(1, fg.sum()).astype(jnp.float32)
            target = jax.lax.stop_gradient(encode(priors, gt[mi], (1.0, 1.0, 1.0, 1.0)))
            bbox = jnp.where(fg[:, None], jnp.abs(loc_b - target), 0.0).sum() / nfg
            onehot = jax.nn.one_hot(jnp.where(fg, labels[mi], -1), C, dtype=conf_b.dtype)
            p = jax.nn.sigmoid(conf_b)
            ce = jnp.maximum(conf_b, 0) - conf_b * onehot + jnp.log1p(jnp.exp(-jnp.abs(conf_b)))
            p_t = p * onehot + (1 - p) * (1 - onehot)
            alpha_t = 0.25 * onehot + 0.75 * (1 - onehot)
            focal = alpha_t * ce * (1 - p_t) ** 2
            cls = jnp.where(valid[:, None], focal, 0.0).sum() / nfg
            return bbox, cls
        bbox, cls = jax.vmap(per_image)(gt_boxes, gt_labels, gt_counts, loc, conf)
        B = conf.shape[0]
        return bbox.sum() / B, cls.sum() / B

    return {"torchvision_ssd": ssd, "torchvision_retinanet": retinanet}


# ---------------------------------------------------------------------------

def timeit_interleaved(fns, runs, warmup=1):
    """{name: fn} -> {name: (median ms, min ms)}, one run of each in turn."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def timeit(fn, runs, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, min(times) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--workloads", default="ssd300,retinanet")
    ap.add_argument("--no-jnp", action="store_true", help="skip the pure-jnp loss")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--tuned-malloc", action="store_true",
                    help="re-run with glibc's mmap/trim thresholds raised (see above)")
    args = ap.parse_args()
    if args.tuned_malloc and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="4294967296",
                   MALLOC_TRIM_THRESHOLD_="8589934592")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    import jax
    import jax.numpy as jnp
    import mbx
    import mbx.jax as mj

    device = jax.devices(args.device)[0]
    ref_losses = jnp_losses(jnp, jax)
    print("mbx %s, jax %s, device %s, host cpus %d" % (mbx.version(), jax.__version__, device,
                                                       os.cpu_count()))
    results = []
    for kind in args.workloads.split(","):
        w = make_workload(mbx, kind, args.quick)
        preset = w["preset"]
        host = w["arrays"]
        dev = [jax.device_put(a, device) for a in host]
        print("\n== %s: B=%d P=%d C=%d, preset %s" % (kind, w["B"], w["P"], w["C"], preset))

        def total(loc, conf, *gt):
            loss_loc, loss_conf, _ = mj.multibox_loss(*gt, loc, conf, preset=preset)
            return loss_loc + loss_conf, (loss_loc, loss_conf)
        f_mbx = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))
        gt_dev = dev[:4]
        out = f_mbx(dev[4], dev[5], *gt_dev)
        jax.block_until_ready(out)
        row = {"workload": kind, "B": w["B"], "P": w["P"], "C": w["C"], "device": str(device),
               "malloc_tuned": "MALLOC_MMAP_THRESHOLD_" in os.environ}
        mine = (float(out[0][1][0]), float(out[0][1][1]))
        run_jax = lambda: jax.block_until_ready(f_mbx(dev[4], dev[5], *gt_dev))  # noqa: E731

        if args.device == "cpu":
            loss = mbx.MultiBoxLoss(preset)
            gl, gc = np.empty_like(host[4]), np.empty_like(host[5])
            eager = loss(*host, out=(gl, gc))
            t = timeit_interleaved({"jax": run_jax, "c": lambda: loss(*host, out=(gl, gc)),
                                    "c_alloc": lambda: loss(*host)}, args.runs)
            row["mbx_jax_ms"], row["mbx_jax_min_ms"] = t["jax"]
            row["mbx_c_ms"], row["mbx_c_min_ms"] = t["c"]
            row["mbx_c_alloc_ms"], row["mbx_c_alloc_min_ms"] = t["c_alloc"]
            # Same numbers as the C call.
            same = (np.array_equal(np.asarray(out[1][0]), gl) and
                    np.array_equal(np.asarray(out[1][1]), gc))
            row["grads_bitwise_equal_c"] = bool(same)
            row["loss_c"] = (float(eager.loss_loc), float(eager.loss_conf))
        else:
            row["mbx_jax_ms"], row["mbx_jax_min_ms"] = timeit(run_jax, args.runs)
            try:
                import cupy
                cargs = [cupy.asarray(a) for a in host]
                loss = mbx.MultiBoxLoss(preset, context=mbx.Context(cuda_validation=False))
                loss(*cargs)
                cupy.cuda.Device().synchronize()

                def run_c():
                    loss(*cargs)
                    cupy.cuda.Device().synchronize()
                row["mbx_c_ms"], _ = timeit(run_c, args.runs)
            except ImportError:
                row["mbx_c_ms"] = None
        if not args.no_jnp:
            fn = ref_losses[preset]

            def total_ref(loc, conf, *gt):
                a, b = fn(*gt, loc, conf)
                return a + b, (a, b)
            f_ref = jax.jit(jax.value_and_grad(total_ref, argnums=(0, 1), has_aux=True),
                            device=None)
            ref_out = f_ref(dev[4], dev[5], *gt_dev)
            jax.block_until_ready(ref_out)
            row["jnp_ms"], row["jnp_min_ms"] = timeit(
                lambda: jax.block_until_ready(f_ref(dev[4], dev[5], *gt_dev)), max(3, args.runs // 2))
            ref = (float(ref_out[0][1][0]), float(ref_out[0][1][1]))
            row["jnp_rel_diff"] = max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(ref, mine))
        row["loss_mbx_jax"] = mine
        if row.get("mbx_c_ms"):
            row["ratio_jax_vs_c"] = row["mbx_jax_ms"] / row["mbx_c_ms"]
            if row.get("mbx_c_min_ms"):
                row["ratio_jax_vs_c_min"] = row["mbx_jax_min_ms"] / row["mbx_c_min_ms"]
            if row.get("mbx_c_alloc_ms"):
                row["ratio_jax_vs_c_alloc"] = row["mbx_jax_ms"] / row["mbx_c_alloc_ms"]
            if row.get("jnp_ms"):
                row["ratio_jnp_vs_c"] = row["jnp_ms"] / row["mbx_c_ms"]
        for key in ("mbx_jax", "mbx_c", "mbx_c_alloc", "jnp"):
            if row.get(key + "_ms") is not None:
                mn = row.get(key + "_min_ms")
                print("  %-12s median %9.2f ms%s" % (key, row[key + "_ms"],
                                                     "   min %9.2f ms" % mn if mn else ""))
        for key in ("ratio_jax_vs_c", "ratio_jax_vs_c_min", "ratio_jax_vs_c_alloc",
                    "ratio_jnp_vs_c", "jnp_rel_diff", "grads_bitwise_equal_c"):
            if key in row:
                print("  %-22s %s" % (key, row[key] if isinstance(row[key], bool) else
                                       "%.4g" % row[key]))
        results.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
