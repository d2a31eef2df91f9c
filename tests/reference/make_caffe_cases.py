"""Generate the conformance cases of the Caffe SSD and Tiny-Detector
(sgrvinod) systems (tests/data/README.md format) with the numpy reference:
bipartite matching, HARD_EXAMPLE mining with and without NMS (with a dropped
positive), LOGISTIC, L2, the CORNER / CORNER_SIZE codings, the variance in
the target, every normalisation and images without GT.

    python3 tests/reference/make_caffe_cases.py OUT_DIR [--seed N]

Every case writes all options and num_pos_loss.npy (the loss's positives
after mining). Random draws are repeated until the ranking that mining uses
has a relative gap of at least 1e-4 at its boundary (1e-9 between any two
scores under NMS), L1 residuals and smooth-L1 kinks stay 1e-4 away, and the
case shows what it is meant to show (e.g. a positive dropped by mining).
"""
import argparse, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbx_reference as R
import make_cases as M

GEN = "tests/reference/make_caffe_cases.py"


def scores(out, opts, loc, conf):
    """The per-prior ranking values mining uses, per image."""
    conf = conf.astype(np.float64)
    ct = out["conf_target"]
    B, P, C = conf.shape
    tgt = np.clip(ct, 0, None)
    if opts.mining == "HARD_EXAMPLE":
        if opts.conf_loss == "LOGISTIC":
            oh = np.zeros_like(conf)
            np.put_along_axis(oh, tgt[:, :, None], 1.0, axis=2)
            cl = R.logistic_elementwise(conf, oh)[0].sum(axis=2)
        else:
            cl = -np.take_along_axis(R.log_softmax(conf), tgt[:, :, None], axis=2)[:, :, 0]
        div = np.array(opts.variances) if opts.encode_variance_in_target else np.ones(4)
        d = (loc.astype(np.float64) - out["loc_target"]) / div
        lv = R.loc_elementwise(d, opts)[0].sum(axis=2)
        return cl + np.where(ct > 0, lv, 0.0)
    if opts.conf_loss == "LOGISTIC":
        return R.logistic_elementwise(conf, np.eye(C)[0][None, None, :])[0].sum(axis=2)
    return -R.log_softmax(conf)[:, :, 0]


def robust(out, opts, loc, conf):
    sc = scores(out, opts, loc, conf)
    B, P, _ = conf.shape
    for b in range(B):
        if opts.mining == "HARD_EXAMPLE":
            s = np.sort(sc[b])[::-1]
            if opts.mining_nms_threshold > 0:
                if P > 1 and (np.abs(np.diff(s)) / np.maximum(np.abs(s[1:]), 1e-30)).min() < 1e-9:
                    return False
            else:
                k = min(opts.mining_sample_size, P)
                if k < P and (s[k - 1] - s[k]) / max(abs(s[k - 1]), 1e-30) < 1e-4:
                    return False
        elif opts.conf_loss != "SIGMOID_FOCAL" and opts.neg_pos_ratio > 0:
            neg = out["conf_target"][b] == 0
            w = out["conf_weight"][b]
            sel, rest = sc[b][neg & (w > 0)], sc[b][neg & (w == 0)]
            if sel.size and rest.size and (sel.min() - rest.max()) / max(abs(sel.min()), 1e-30) < 1e-4:
                return False
    pos = out["conf_target"] > 0
    if pos.any():
        div = np.array(opts.variances) if opts.encode_variance_in_target else np.ones(4)
        d = np.abs((loc.astype(np.float64) - out["loc_target"]) / div)[pos]
        l1 = opts.loc_loss == "L1" or (opts.loc_loss == "SMOOTH_L1" and opts.smooth_l1_beta == 0)
        if l1 and d.min() < 1e-4:
            return False
        if opts.loc_loss == "SMOOTH_L1" and opts.smooth_l1_beta > 0 and \
                np.abs(d - opts.smooth_l1_beta).min() < 1e-4:
            return False
    return True


def random_case(rng, root, name, desc, base, ov, B, P, C, G, need=None, zero_counts=()):
    opts = R.replace(R.PRESETS[base](), **ov).validate()
    for _ in range(400):
        priors = M.priors_for(rng, P, opts.prior_format, 1.0)
        gt = np.zeros((B, G, 4))
        counts = rng.integers(1, G + 1, size=B)
        for b in zero_counts:
            counts[b] = 0
        for b in range(B):
            gt[b] = M.rand_boxes(rng, G, 1.0, 0.05)
        labels = rng.integers(0, C - 1, size=(B, G))
        loc = rng.normal(0, 1, size=(B, P, 4)).astype(np.float32)
        conf = rng.normal(0, 2.0, size=(B, P, C)).astype(np.float32)
        pf = priors.astype(np.float32).astype(np.float64)
        gf = gt.astype(np.float32)
        out = R.compute(pf, gf, labels, counts, loc, conf, opts)
        if robust(out, opts, loc, conf) and (need is None or need(out)):
            M.write_case(root, name, desc, "custom(%s)" % base if ov else base, opts, pf,
                         gf.astype(np.float64),
                         labels, counts, loc, conf, False, full=True, generator=GEN)
            return
    raise RuntimeError("no robust draw for " + name)


def dropped(out):
    return bool((out["num_pos_loss"] < out["num_pos"]).any())


def hand_cases(root):
    # The integer grid of make_cases.hand_cases: GT 0 and GT 1 are the same
    # box, so they share their best prior. BEST_PRIOR_PER_GT (ssd.pytorch,
    # h_ties_best_prior) gives that prior to GT 1 and leaves GT 0 without
    # one; BIPARTITE gives it to GT 0 (lower GT on the tie) and GT 1 the next
    # best unused prior (lowest index among the tied ones).
    g = np.array([[x, y, x + 2, y + 2] for y in range(0, 6) for x in range(0, 6)], float)
    P = g.shape[0]
    gt = np.array([[[1, 1, 3, 3], [1, 1, 3, 3], [0, 0, 4, 2], [20, 20, 22, 22]]], float)
    labels = np.array([[0, 1, 2, 0]])
    rng = np.random.default_rng(11)
    for name, ov, desc in [
        ("h_caffe_bipartite_collision", {},
         "two GTs with the same best prior: bipartite gives them distinct priors"),
        ("h_caffe_bipartite_only", dict(pos_threshold=0.9, neg_threshold=0.3),
         "bipartite matches only (no per-prediction IoU reaches 0.9 except exact hits)"),
    ]:
        opts = R.replace(R.caffe_ssd(), **ov).validate()
        C = 4
        loc = (rng.integers(-8, 8, size=(1, P, 4)) / 8.0 + 1 / 16.0).astype(np.float32)
        conf = (rng.integers(-16, 16, size=(1, P, C)) / 4.0 + 1 / 64.0 * rng.integers(0, 8, size=(1, P, C))).astype(np.float32)
        M.write_case(root, name, "hand-made integer geometry (caffe_ssd): " + desc,
                     "custom(caffe_ssd)" if ov else "caffe_ssd", opts, g, gt, labels,
                     np.array([4]), loc, conf, True, full=True, generator=GEN)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261126)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    HE = dict(mining="HARD_EXAMPLE")
    specs = [
        ("c01_caffe_ssd_basic", "caffe_ssd", {}, 3, 150, 5, 4, None, ()),
        ("c02_sgrvinod_ssd_basic", "sgrvinod_ssd", {}, 3, 140, 5, 4, None, ()),
        ("c03_hard_example_no_nms", "caffe_ssd", dict(HE, mining_sample_size=12), 3, 120, 4, 5, dropped, ()),
        ("c04_hard_example_nms", "caffe_ssd", dict(HE, mining_sample_size=16, mining_nms_threshold=0.45),
         3, 120, 4, 5, dropped, ()),
        ("c05_logistic_max_negative", "caffe_ssd", dict(conf_loss="LOGISTIC"), 2, 130, 5, 4, None, ()),
        ("c06_logistic_hard_example_nms", "caffe_ssd",
         dict(HE, conf_loss="LOGISTIC", mining_sample_size=20, mining_nms_threshold=0.5), 2, 110, 4, 5, None, ()),
        ("c07_l2", "caffe_ssd", dict(loc_loss="L2"), 2, 140, 4, 4, None, ()),
        ("c08_corner_variance_in_target_l2", "caffe_ssd",
         dict(box_coding="CORNER", encode_variance_in_target=True, loc_loss="L2"), 2, 120, 4, 4, None, ()),
        ("c09_corner_size", "caffe_ssd", dict(box_coding="CORNER_SIZE"), 2, 120, 4, 4, None, ()),
        ("c10_center_variance_in_target", "caffe_ssd", dict(encode_variance_in_target=True), 2, 120, 4, 4, None, ()),
        ("c11_norm_batch_size", "caffe_ssd", dict(normalization="BATCH_SIZE"), 3, 100, 4, 4, None, ()),
        ("c12_norm_full_avg_coords", "caffe_ssd", dict(normalization="FULL", loc_average_coords=True),
         3, 100, 4, 4, None, ()),
        ("c13_norm_none_avg_coords", "sgrvinod_ssd", dict(normalization="NONE"), 2, 100, 4, 4, None, ()),
        ("c14_norm_per_image_hard", "caffe_ssd", dict(HE, normalization="PER_IMAGE", mining_sample_size=10),
         3, 100, 4, 5, dropped, ()),
        ("c15_external_hard_corner_size", "caffe_ssd",
         dict(HE, normalization="EXTERNAL", external_norm=2.5, box_coding="CORNER_SIZE", mining_sample_size=30,
              mining_nms_threshold=0.3), 2, 100, 4, 4, None, ()),
        ("c16_hard_example_image_without_gt", "caffe_ssd", dict(HE, mining_sample_size=15),
         3, 90, 4, 4, None, (1,)),
        ("c17_caffe_ssd_no_gt_at_all", "caffe_ssd", {}, 2, 80, 4, 3, None, (0, 1)),
    ]
    for name, base, ov, B, P, C, G, need, zc in specs:
        random_case(rng, a.out, name, "generated: %s %s" % (base, ov), base, ov, B, P, C, G, need, zc)
    hand_cases(a.out)
    print("wrote", len(os.listdir(a.out)), "cases to", a.out)


if __name__ == "__main__":
    main()
