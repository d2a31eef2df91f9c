"""Generate the conformance cases of ignore regions (gt_flags bit 0,
docs/SPEC.md §2.7) with the numpy reference (tests/data/README.md format,
plus gt_flags.npy):

* a crowd region covering many anchors (softmax and focal presets);
* on the integer grid of make_cases.hand_cases, a GT whose best prior lies
  in an ignore region, for each force_match style: forced matching picks the
  best prior outside the regions (NONE: the region's prior is simply -1);
  in the same batch an image whose one region covers every prior (nothing
  is forced at all) and an image whose only rows are ignore regions (the
  priors inside are still ignored: mbx's difference from mmdetection);
* an image with no GT at all next to one with a region;
* ignore_iof_threshold 0 (no prior ignored, the flagged rows still never
  matched) and a non-default threshold;
* HARD_EXAMPLE mining with a region (its priors are not ranked).

    python3 tests/reference/make_ignore_cases.py OUT_DIR [--seed N]

Every case lists every option in case.json and writes num_pos_loss.npy. Rows
after gt_counts[b] are padding: their flags (and boxes) are random and must
not matter. Random draws are repeated until they are robust to float32
evaluation (make_caffe_cases.robust) and show what they are meant to show.
"""
import argparse, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbx_reference as R
import make_cases as M
import make_caffe_cases as CC

GEN = "tests/reference/make_ignore_cases.py"


def write_case(root, name, desc, preset, opts, priors, gt, labels, counts, flags, loc, conf, exact):
    """A case with its gt_flags.npy, every option and num_pos_loss.npy (make_cases.write_case)."""
    M.write_case(root, name, desc, preset, opts, priors, gt, labels, counts, loc, conf, exact,
                 full=True, generator=GEN, gt_flags=flags)


def region_ignored(priors, gt, counts, flags, opts):
    """[B,P] bool: the priors the reference puts in ignore regions."""
    pc = R.center_size_to_corners(priors) if opts.prior_format == "CENTER_SIZE" else priors
    m = np.zeros((gt.shape[0], priors.shape[0]), dtype=bool)
    for b in range(gt.shape[0]):
        n = int(counts[b])
        reg = gt[b, :n][(flags[b, :n] & R.GT_FLAG_IGNORE) != 0]
        m[b] = R.ignore_mask(reg, pc, opts)
    return m


def draw_logits(rng, B, P, C, sd=2.0):
    return (rng.normal(0, 1, size=(B, P, 4)).astype(np.float32),
            rng.normal(0, sd, size=(B, P, C)).astype(np.float32))


def grid_priors(n, fmt):
    """An n x n grid of 0.25-wide anchors in [0, 1], two aspect ratios."""
    c = (np.arange(n) + 0.5) / n
    cs = [(x, y, w, h) for y in c for x in c for (w, h) in ((0.25, 0.25), (0.35, 0.18))]
    cs = np.array(cs, dtype=np.float64)
    if fmt == "CENTER_SIZE":
        return cs
    return R.center_size_to_corners(cs)


def crowd_case(rng, root, name, base, ov, C):
    """A crowd region over a corner of the image plus ordinary GTs."""
    opts = R.replace(R.PRESETS[base](), **ov).validate()
    pf = grid_priors(8, opts.prior_format).astype(np.float32).astype(np.float64)
    B, P, G = 2, pf.shape[0], 6
    K = C - 1 if opts.conf_loss != "SIGMOID_FOCAL" else C
    for _ in range(400):
        gt = np.zeros((B, G, 4))
        flags = rng.integers(0, 2, size=(B, G))          # padding flags: anything
        counts = np.array([5, 4])
        for b in range(B):
            gt[b] = M.rand_boxes(rng, G, 1.0, 0.1)
        # image 0: a crowd region [0, 0.55]^2 (row 1) and one more small one (row 3)
        gt[0, 1] = [0.0, 0.0, 0.55, 0.55]
        flags[0, :5] = [0, 1, 0, 1, 0]
        # image 1: a wide crowd band at the bottom (row 0)
        gt[1, 0] = [0.05, 0.6, 0.95, 0.98]
        flags[1, :4] = [1, 0, 0, 0]
        labels = rng.integers(0, K, size=(B, G))
        loc, conf = draw_logits(rng, B, P, C)
        gf = gt.astype(np.float32).astype(np.float64)
        out = R.compute(pf, gf, labels, counts, loc, conf, opts, gt_flags=flags)
        ign = region_ignored(pf, gf, counts, flags, opts)
        # many anchors inside, positives elsewhere, and a region prior that
        # would have been positive without the region
        plain = R.compute(pf, gf, labels, counts, loc, conf,
                          R.replace(opts, ignore_iof_threshold=0.0), gt_flags=flags)
        if ign.sum() >= 20 and (out["num_pos"] > 0).all() and \
                ((plain["conf_target"] > 0) & ign).any() and CC.robust(out, opts, loc, conf):
            write_case(root, name, "crowd regions covering many anchors (%s %s)" % (base, ov),
                       "custom(%s)" % base if ov else base, opts, pf, gf, labels, counts, flags,
                       loc, conf, False)
            return
    raise RuntimeError("no robust draw for " + name)


def hand_cases(rng, root):
    # The integer grid of make_cases.hand_cases (CORNERS, 2x2 priors at
    # integer offsets 0..5). Image 0: GT 0 = [1,1,3,3] coincides with prior
    # 7 (IoU 1); row 1, an ignore region on the same box, swallows prior 7
    # (IoF 1), while its neighbours have IoF 1/4 or exactly 1/2 (not > 0.5:
    # kept). So GT 0's forced prior is the best one outside the region:
    # four priors tie at IoU 1/3, the lowest index (1) wins. Rows 2 and 3
    # are ordinary GTs; row 4 is padding flagged as a region over everything.
    # Image 1: one region over the whole grid: every prior is ignored and
    # GT 1 = [2,2,4,4] forces nothing. Image 2: only a region row: the
    # priors inside are ignored, the others negative.
    g = np.array([[x, y, x + 2, y + 2] for y in range(0, 6) for x in range(0, 6)], float)
    P = g.shape[0]
    gt = np.array([[[1, 1, 3, 3], [1, 1, 3, 3], [4, 0, 6, 2], [3.5, 3, 6, 5.5], [0, 0, 7, 7]],
                   [[0, 0, 7, 7], [2, 2, 4, 4], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                   [[0, 0, 3, 3], [1, 1, 5, 5], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]], float)
    flags = np.array([[0, 1, 0, 0, 1], [1, 0, 0, 1, 1], [1, 0, 1, 0, 0]])
    counts = np.array([4, 2, 1])
    labels = np.array([[0, 1, 2, 1, 0], [1, 2, 0, 0, 0], [0, 0, 0, 0, 0]])
    for name, base, ov in [
        ("i02_forced_best_prior", "torchvision_ssd", {}),
        ("i03_forced_low_quality", "torchvision_retinanet", {}),
        ("i04_forced_bipartite", "caffe_ssd", {}),
        ("i05_forced_none", "yhenon_retinanet", {}),
    ]:
        opts = R.replace(R.PRESETS[base](), **ov).validate()
        C = 4 if opts.conf_loss != "SIGMOID_FOCAL" else 3
        for _ in range(400):
            loc = (rng.integers(-8, 8, size=(3, P, 4)) / 8.0 + 1 / 16.0).astype(np.float32)
            conf = (rng.integers(-16, 16, size=(3, P, C)) / 4.0 +
                    rng.integers(0, 8, size=(3, P, C)) / 64.0).astype(np.float32)
            out = R.compute(g, gt, labels, counts, loc, conf, opts, gt_flags=flags)
            if CC.robust(out, opts, loc, conf):
                break
        else:
            raise RuntimeError("no robust draw for " + name)
        ct = out["conf_target"]
        assert ct[0, 7] == -1 and (ct[1] == -1).all(), name
        if opts.force_match != "NONE":
            assert out["matched_gt"][0, 1] == 0, name       # GT 0 forced to prior 1
        write_case(root, name, "hand-made integer geometry (%s): a GT's best prior lies in an "
                   "ignore region; an image covered by a region; an image of regions only" % base,
                   base, opts, g, gt, labels, counts, flags, loc, conf, True)


def random_case(rng, root, name, desc, base, ov, B, P, C, G, zero_counts=(), need=None):
    """Random boxes; about a third of the valid rows are ignore regions."""
    opts = R.replace(R.PRESETS[base](), **ov).validate()
    K = C - 1 if opts.conf_loss != "SIGMOID_FOCAL" else C
    for _ in range(400):
        pf = M.priors_for(rng, P, opts.prior_format, 1.0).astype(np.float32).astype(np.float64)
        gt = np.zeros((B, G, 4))
        counts = rng.integers(1, G + 1, size=B)
        for b in zero_counts:
            counts[b] = 0
        for b in range(B):
            gt[b] = M.rand_boxes(rng, G, 1.0, 0.1)
        flags = (rng.uniform(size=(B, G)) < 0.35).astype(np.int64)
        labels = rng.integers(0, K, size=(B, G))
        loc, conf = draw_logits(rng, B, P, C)
        gf = gt.astype(np.float32).astype(np.float64)
        out = R.compute(pf, gf, labels, counts, loc, conf, opts, gt_flags=flags)
        ign = region_ignored(pf, gf, counts, flags, opts)
        if CC.robust(out, opts, loc, conf) and (need is None or need(out, ign)):
            write_case(root, name, desc, "custom(%s)" % base if ov else base, opts, pf, gf,
                       labels, counts, flags, loc, conf, False)
            return
    raise RuntimeError("no robust draw for " + name)


def some_ignored(out, ign):
    return ign.sum() >= 5 and (out["num_pos"] > 0).any()


def none_ignored_but_flagged(out, ign):
    return not ign.any() and (out["num_pos"] > 0).any()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261126)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    crowd_case(rng, a.out, "i01_crowd_region_ssd", "ssd_pytorch", {}, 5)
    hand_cases(rng, a.out)
    crowd_case(rng, a.out, "i06_crowd_region_focal", "torchvision_retinanet", {}, 4)
    HE = dict(mining="HARD_EXAMPLE", mining_sample_size=24)
    specs = [
        ("i07_no_gt_image_focal", "yhenon_retinanet", {}, 3, 120, 4, 5, (1,), some_ignored),
        ("i08_threshold_zero_softmax", "ssd_pytorch", dict(ignore_iof_threshold=0.0),
         2, 120, 5, 5, (), none_ignored_but_flagged),
        ("i09_threshold_quarter_focal", "torchvision_retinanet", dict(ignore_iof_threshold=0.25),
         2, 140, 4, 5, (), some_ignored),
        ("i10_threshold_0p8_softmax", "torchvision_ssd", dict(ignore_iof_threshold=0.8),
         2, 140, 5, 5, (), some_ignored),
        ("i11_hard_example", "caffe_ssd", HE, 2, 110, 4, 5, (), some_ignored),
        ("i12_hard_example_nms", "caffe_ssd", dict(HE, mining_nms_threshold=0.45),
         2, 110, 4, 5, (), some_ignored),
    ]
    for name, base, ov, B, P, C, G, zc, need in specs:
        random_case(rng, a.out, name, "generated: %s %s with ignore regions" % (base, ov),
                    base, ov, B, P, C, G, zc, need)
    print("wrote", len([n for n in os.listdir(a.out) if n.startswith("i")]), "ignore cases to", a.out)


if __name__ == "__main__":
    main()
