"""Numerical-stress conformance cases (tests/data/golden/README.md format),
made by the float64 reference tests/reference/mbx_reference.py:

  logits up to |x| = 1e4 (softmax CE and focal), boxes at 1e-6 and 1e6
  scales, P = 1, G = 500, every prior positive, every prior ignored.

    /usr/bin/python3 tests/stress/make_stress_cases.py [OUT_DIR]   (default tests/data/stress)

Random draws are re-drawn until they are robust to float32 evaluation, with
the same criteria as the golden set (threshold distance, argmax gap, mining
gap, L1 residuals), so every path must reproduce them within the golden
tolerances.
"""
import os, shutil, sys
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import mbx_reference as R  # noqa: E402
import make_cases as M     # noqa: E402  (write_case, robust)

f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)


def boxes(rng, n, scale, min_frac=0.05, max_frac=0.6):
    c = rng.uniform(0.1 * scale, 0.9 * scale, size=(n, 2))
    wh = rng.uniform(min_frac * scale, max_frac * scale, size=(n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def to_format(b, fmt):
    if fmt == "CENTER_SIZE":
        return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
    return b


def margins_ok(priors, gt, counts, opts):
    """Matching decisions far from thresholds and argmax ties (float32-robust)."""
    pc = R.center_size_to_corners(priors) if opts.prior_format == "CENTER_SIZE" else priors
    for b in range(gt.shape[0]):
        n = counts[b]
        if n == 0:
            continue
        iou = R.iou_matrix(gt[b, :n], pc)
        best = iou.max(axis=0)
        for t in (opts.pos_threshold, opts.neg_threshold):
            if np.abs(best - t).min() < 1e-5:
                return False
        if n > 1:
            s = np.sort(iou, axis=0)
            gap = (s[-1] - s[-2]) / np.maximum(s[-1], 1e-30)
            if ((gap > 0) & (gap < 1e-5) & (s[-1] > 0)).any():
                return False
        if opts.force_match == "BEST_PRIOR_PER_GT" and pc.shape[0] > 1:
            s = np.sort(iou, axis=1)
            gap = (s[:, -1] - s[:, -2]) / np.maximum(s[:, -1], 1e-30)
            if ((gap > 0) & (gap < 1e-5)).any():
                return False
    return True


def random_case(rng, root, name, desc, base, overrides, B, P, C, G, scale, logit_scale,
                counts=None, tries=400):
    opts = R.replace(R.PRESETS[base](), **overrides).validate()
    K = C - 1 if opts.conf_loss == "SOFTMAX_CE" else C
    for _ in range(tries):
        priors = f32(to_format(boxes(rng, P, scale), opts.prior_format))
        gt = np.stack([boxes(rng, G, scale) for _ in range(B)])
        gt = f32(gt)
        cnt = np.array(counts if counts is not None else rng.integers(1, G + 1, size=B))
        labels = rng.integers(0, K, size=(B, G))
        loc = f32(rng.normal(0, 1, size=(B, P, 4)))
        conf = f32(np.clip(rng.normal(0, logit_scale / 2, size=(B, P, C)), -logit_scale, logit_scale))
        if not margins_ok(priors, gt, cnt, opts):
            continue
        out = R.compute(priors, gt, labels, cnt, loc, conf, opts)
        if M.robust(out, opts, loc, conf):
            M.write_case(root, name, desc, "custom(%s)" % base if overrides else base, opts,
                         priors, gt, labels, cnt, loc, conf, False)
            return out
    raise RuntimeError("no robust draw for " + name)


def all_positive(rng, root):
    # Every prior is a GT box (IoU 1 with its own GT, < 0.5 with the others):
    # every prior positive, no negative to mine.
    P = 24
    g = np.array([[x * 2.0, y * 2.0, x * 2.0 + 1.5, y * 2.0 + 1.5] for y in range(4) for x in range(6)])
    gt = g[None]
    labels = rng.integers(0, 3, size=(1, P))
    loc = f32(rng.normal(0, 1, size=(1, P, 4)))
    for name, base in (("s07_all_priors_positive_softmax", "torchvision_ssd"),
                       ("s07_all_priors_positive_focal", "torchvision_retinanet")):
        opts = R.PRESETS[base]()
        C = 4 if opts.conf_loss == "SOFTMAX_CE" else 3
        conf = f32(rng.integers(-64, 64, size=(1, P, C)) / 8.0)
        out = R.compute(g, gt, labels, np.array([P]), loc, conf, opts)
        assert (out["conf_target"] > 0).all()
        M.write_case(root, name, "stress: every prior positive (" + base + ")", base, opts,
                     g, gt, labels, np.array([P]), loc, conf, True)


def all_ignored(rng, root):
    # Every prior overlaps a GT with IoU exactly 1/3 (a 2x1 box shifted by
    # half its width against a 2x1 GT... here: 2x2 prior vs 2x2 GT shifted by
    # 1 in x: inter 2, union 6), between neg 0.2 and pos 0.5, no force match.
    gt = np.array([[[10.0 * k, 0.0, 10.0 * k + 2, 2.0] for k in range(4)]])
    pri = np.array([[10.0 * k + 1, 0.0, 10.0 * k + 3, 2.0] for k in range(4)] +
                   [[10.0 * k - 1, 0.0, 10.0 * k + 1, 2.0] for k in range(4)])
    P = pri.shape[0]
    loc = f32(rng.normal(0, 1, size=(1, P, 4)))
    for name, base in (("s08_all_priors_ignored_focal", "torchvision_retinanet"),
                       ("s08_all_priors_ignored_softmax", "torchvision_ssd")):
        opts = R.replace(R.PRESETS[base](), force_match="NONE", pos_threshold=0.5, neg_threshold=0.2).validate()
        C = 4 if opts.conf_loss == "SOFTMAX_CE" else 3
        conf = f32(rng.integers(-64, 64, size=(1, P, C)) / 8.0)
        labels = np.array([[0, 1, 2, 0]])
        out = R.compute(pri, gt, labels, np.array([4]), loc, conf, opts)
        assert (out["conf_target"] == -1).all() and out["loss_loc"] == 0 and out["loss_conf"] == 0
        M.write_case(root, name, "stress: every prior ignored (IoU 1/3 in the band), zero losses",
                     "custom(%s)" % base, opts, pri, gt, labels, np.array([4]), loc, conf, True)


def large_tied_logit_cases(root):
    """Large tied logits (tests/HOSTILE_INPUTS.md, F2, fixed): a float32
    log-sum-exp rounded before use (ulp(6250) ~ 5e-4) would show up as a
    1e-4 relative softmax-gradient error."""
    rng = np.random.default_rng(99)
    P = 16
    pri = np.array([[2.0 * k, 0.0, 2.0 * k + 1.5, 1.5] for k in range(P)])
    gt = np.array([[[0.0, 0.0, 1.5, 1.5], [8.0, 0.0, 9.5, 1.5]]])
    labels = np.array([[0, 0]])
    loc = f32(rng.normal(0, 1, size=(1, P, 4)))
    opts = R.replace(R.PRESETS["torchvision_ssd"](), neg_pos_ratio=0.0).validate()
    conf = np.full((1, P, 2), -6250.0)
    conf[0, :, 1] += np.arange(P) % 3 - 1.0   # probabilities 0.27 / 0.5 / 0.73
    M.write_case(root, "s09_softmax_large_tied_logits", "stress: |logit| = 6250 with non-saturated "
                 "softmax (rows differing by 0 or 1): float32 lse rounding", "custom(torchvision_ssd)",
                 opts, pri, gt, labels, np.array([2]), loc, conf, True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "data", "stress")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rng = np.random.default_rng(6060)
    specs = [
        # name, preset, overrides, B, P, C, G, scale, |logit| max
        ("s01_softmax_logits_1e4", "torchvision_ssd", {}, 2, 60, 5, 4, 1.0, 1e4),
        ("s02_focal_logits_1e4", "torchvision_retinanet", {}, 2, 60, 4, 4, 1.0, 1e4),
        ("s03_boxes_scale_1e-6", "ssd_pytorch", {}, 2, 80, 4, 4, 1e-6, 4.0),
        ("s04_boxes_scale_1e6", "yhenon_retinanet", {}, 2, 80, 4, 4, 1e6, 4.0),
        ("s04b_boxes_scale_1e6_softmax", "torchvision_ssd", {}, 2, 80, 4, 4, 1e6, 4.0),
        ("s05_single_prior_softmax", "ssd_pytorch", {}, 3, 1, 3, 3, 1.0, 4.0),
        ("s05b_single_prior_focal", "torchvision_retinanet", {}, 3, 1, 3, 3, 1.0, 4.0),
        ("s06_g500_focal", "torchvision_retinanet", {}, 1, 120, 3, 500, 1.0, 4.0),
        ("s06b_g500_softmax", "ssd_pytorch", {}, 1, 120, 3, 500, 1.0, 4.0),
    ]
    for name, base, ov, B, P, C, G, scale, ls in specs:
        counts = [G] * B if G >= 500 else None
        random_case(rng, out, name, "stress: %s %s" % (base, name.split("_", 1)[1]), base, ov,
                    B, P, C, G, scale, ls, counts=counts)
    all_positive(rng, out)
    all_ignored(rng, out)
    large_tied_logit_cases(out)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# mbx numerical-stress cases\n\nGenerated by `tests/stress/make_stress_cases.py` with the "
                "float64 reference; format and tolerances as tests/data/golden/README.md.\n"
                "Run: `build/tests/golden/mbx_golden --path all tests/data/stress`.\n")
    print("wrote", len([d for d in os.listdir(out) if d.startswith("s")]), "cases to", out)


if __name__ == "__main__":
    main()
