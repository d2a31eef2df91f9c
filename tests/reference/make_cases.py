"""Generate extra conformance cases (golden/README.md format) with the
independent numpy reference, covering option combinations and hand-made
exact-tie geometries the visible golden set does not.

    python3 tests/reference/make_cases.py OUT_DIR [--seed N]

Random cases are re-drawn until they are robust to float32 evaluation of the
losses (mining boundary gap, L1 residuals), like the official set.
"""
import argparse, json, math, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbx_reference as R


def rand_boxes(rng, n, scale, min_wh):
    c = rng.uniform(0.1 * scale, 0.9 * scale, size=(n, 2))
    wh = rng.uniform(min_wh, 0.6 * scale, size=(n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def priors_for(rng, P, fmt, scale):
    b = rand_boxes(rng, P, scale, 0.05 * scale)
    if fmt == "CENTER_SIZE":
        return np.concatenate([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], axis=1)
    return b


def robust(out, opts, loc, conf):
    # mining boundary gap (SOFTMAX_CE) and L1 residuals away from 0
    if opts.conf_loss == "SOFTMAX_CE" and opts.neg_pos_ratio > 0:
        logp = R.log_softmax(conf.astype(np.float64))
        for b in range(conf.shape[0]):
            ce = -logp[b, :, 0]
            neg = out["conf_target"][b] == 0
            w = out["conf_weight"][b]
            sel, rest = ce[neg & (w > 0)], ce[neg & (w == 0)]
            if sel.size and rest.size:
                gap = (sel.min() - rest.max()) / max(abs(sel.min()), 1e-30)
                if gap < 1e-4:
                    return False
    pos = out["conf_target"] > 0
    if pos.any():
        d = np.abs(loc.astype(np.float64)[pos] - out["loc_target"][pos])
        if (opts.loc_loss == "L1" or opts.smooth_l1_beta == 0) and d.min() < 1e-4:
            return False
        if opts.loc_loss == "SMOOTH_L1" and opts.smooth_l1_beta > 0 and \
                np.abs(d - opts.smooth_l1_beta).min() < 1e-4:
            return False
    return True


def write_case(root, name, desc, preset, opts, priors, gt, labels, counts, loc, conf, exact,
               full=False, generator="tests/reference/make_cases.py", prior_levels=None,
               gt_flags=None):
    """full: write every option (the Caffe / Tiny-Detector ones too) and
    num_pos_loss.npy, the loss's positive count after mining. prior_levels:
    priors per pyramid level (ATSS), written as prior_levels.npy; gt_flags
    [B,G] as gt_flags.npy."""
    out = R.compute(priors, gt, labels, counts, loc, conf, opts, gt_flags=gt_flags,
                    prior_levels=prior_levels)
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    tensors = dict(priors=priors.astype(np.float32), gt_boxes=gt.astype(np.float32),
                   gt_labels=labels.astype(np.int32), gt_counts=counts.astype(np.int32),
                   loc=loc.astype(np.float32), conf=conf.astype(np.float32),
                   loss_loc=np.array(out["loss_loc"]), loss_conf=np.array(out["loss_conf"]),
                   num_pos=out["num_pos"].astype(np.int32),
                   conf_target=out["conf_target"].astype(np.int32),
                   matched_gt=out["matched_gt"].astype(np.int32),
                   loc_target=out["loc_target"], grad_loc=out["grad_loc"],
                   grad_conf=out["grad_conf"], conf_weight=out["conf_weight"])
    if full:
        tensors["num_pos_loss"] = out["num_pos_loss"].astype(np.int32)
    if prior_levels is not None:
        tensors["prior_levels"] = np.asarray(prior_levels, dtype=np.int32)
    if gt_flags is not None:
        tensors["gt_flags"] = np.asarray(gt_flags, dtype=np.int32)
    for k, v in tensors.items():
        np.save(os.path.join(d, k + ".npy"), v)
    B, P, C = conf.shape
    meta = dict(name=name, description=desc, preset=preset, options=opts.to_dict(full),
                shapes=dict(B=B, P=P, C=C, G=gt.shape[1]),
                files={k: dict(dtype=str(v.dtype), shape=list(v.shape)) for k, v in tensors.items()},
                expected=dict(loss_loc=out["loss_loc"], loss_conf=out["loss_conf"],
                              num_pos=[int(x) for x in out["num_pos"]],
                              num_pos_total=int(out["num_pos"].sum()),
                              num_ignored=int((out["conf_target"] < 0).sum())),
                deliberate_exact=exact, generator=generator)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)


def random_case(rng, root, name, desc, base, overrides, B, P, C, G, scale=1.0, logit_sd=2.0):
    opts = R.replace(R.PRESETS[base](), **overrides).validate()
    for _ in range(200):
        priors = priors_for(rng, P, opts.prior_format, scale)
        gt = np.zeros((B, G, 4))
        counts = rng.integers(0, G + 1, size=B)
        for b in range(B):
            gt[b] = rand_boxes(rng, G, scale, 0.05 * scale)
        K = C - 1 if opts.conf_loss == "SOFTMAX_CE" else C
        labels = rng.integers(0, K, size=(B, G))
        loc = rng.normal(0, 1, size=(B, P, 4)).astype(np.float32)
        conf = rng.normal(0, logit_sd, size=(B, P, C)).astype(np.float32)
        pf = priors.astype(np.float32).astype(np.float64)
        out = R.compute(pf, gt.astype(np.float32), labels, counts, loc, conf, opts)
        if robust(out, opts, loc, conf):
            write_case(root, name, desc, "custom(%s)" % base if overrides else base, opts,
                       pf, gt, labels, counts, loc, conf, False)
            return
    raise RuntimeError("no robust draw for " + name)


def hand_cases(root):
    # Integer grids: exact IoU ties, IoU exactly on thresholds, GT collisions.
    g = np.array([[x, y, x + 2, y + 2] for y in range(0, 6, 1) for x in range(0, 6, 1)], float)
    P = g.shape[0]
    gt = np.array([[[1, 1, 3, 3], [1, 1, 3, 3], [0, 0, 4, 2], [20, 20, 22, 22]]], float)
    labels = np.array([[0, 1, 2, 0]])
    rng = np.random.default_rng(7)
    for name, base, ov in [
        ("h_ties_best_prior", "torchvision_ssd", {}),
        ("h_ties_low_quality", "torchvision_retinanet", {}),
        ("h_ties_none_threshold_exact", "torchvision_retinanet",
         dict(force_match="NONE", pos_threshold=0.5, neg_threshold=1.0 / 3.0)),
        ("h_ties_double_count", "torchvision_ssd", dict(neg_overflow="DOUBLE_COUNT_POSITIVES")),
    ]:
        opts = R.replace(R.PRESETS[base](), **ov).validate()
        C = 4 if opts.conf_loss == "SOFTMAX_CE" else 3
        counts = np.array([4])
        loc = (rng.integers(-8, 8, size=(1, P, 4)) / 8.0 + 1 / 16.0).astype(np.float32)
        conf = (rng.integers(-16, 16, size=(1, P, C)) / 4.0).astype(np.float32)
        write_case(root, name, "hand-made integer geometry with exact ties (" + base + ")",
                   "custom(%s)" % base if ov else base, opts, g, gt, labels, counts, loc, conf, True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261122)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    specs = [
        ("g01_ssd_ratio0_all_negatives", "ssd_pytorch", dict(neg_pos_ratio=0.0), 2, 150, 5, 4),
        ("g02_ssd_ratio_half_noclamp", "ssd_pytorch", dict(neg_pos_ratio=0.5, clamp_num_neg=False), 3, 120, 4, 5),
        ("g03_tv_ssd_double_count", "torchvision_ssd", dict(neg_overflow="DOUBLE_COUNT_POSITIVES"), 2, 30, 3, 6),
        ("g04_focal_gamma0", "torchvision_retinanet", dict(focal_gamma=0.0), 2, 200, 6, 5),
        ("g05_focal_gamma1", "yhenon_retinanet", dict(focal_gamma=1.0, focal_alpha=0.5), 2, 210, 7, 5),
        ("g06_focal_gamma_2p5_total", "torchvision_retinanet", dict(focal_gamma=2.5, normalization="TOTAL_POSITIVES"), 3, 100, 9, 4),
        ("g07_smoothl1_beta0", "ssd_pytorch", dict(smooth_l1_beta=0.0), 2, 160, 6, 5),
        ("g08_per_image_softmax", "torchvision_ssd", dict(normalization="PER_IMAGE", loc_average_coords=True), 3, 140, 5, 4),
        ("g09_external_softmax", "ssd_pytorch", dict(normalization="EXTERNAL", external_norm=3.25), 2, 130, 3, 3),
        ("g10_low_quality_softmax", "ssd_pytorch", dict(force_match="LOW_QUALITY", neg_threshold=0.3), 2, 170, 4, 5),
        ("g11_yhenon_pixels", "yhenon_retinanet", {}, 2, 260, 5, 7),
        ("g12_many_gt", "torchvision_retinanet", {}, 1, 300, 3, 40),
        ("g13_single_prior", "ssd_pytorch", {}, 3, 1, 3, 2),
        ("g14_thresholds_zero", "torchvision_retinanet", dict(pos_threshold=0.0, neg_threshold=0.0), 2, 50, 3, 3),
        ("g15_min_gt_wh_large", "torchvision_ssd", dict(encode_min_gt_wh=0.3), 2, 120, 4, 4),
        ("g16_large_logits", "torchvision_retinanet", {}, 2, 90, 4, 4),
    ]
    for name, base, ov, B, P, C, G in specs:
        scale = 600.0 if "pixels" in name else 1.0
        sd = 40.0 if "large_logits" in name else 2.0
        random_case(rng, a.out, name, "generated: %s %s" % (base, ov), base, ov, B, P, C, G, scale, sd)
    hand_cases(a.out)
    print("wrote", len(os.listdir(a.out)), "cases to", a.out)


if __name__ == "__main__":
    main()
