"""Generate the conformance cases of the ATSS assigner (docs/SPEC.md §2.8;
tests/data/README.md format, with prior_levels.npy) with the numpy reference.

    python3 tests/reference/make_atss_cases.py OUT_DIR [--seed N]

The priors are RetinaNet anchors (pytorch-retinanet's scheme, as
mbx_priors_retinanet makes them) for a 64 x 64 image: 5 levels of 576, 144,
36, 9 and 9 anchors, so atss_topk 9 takes all of the last two levels and
atss_topk 12 asks for more than they hold. GTs range from a few pixels to
most of the image; one image has no GT; a05 adds an ignore region per image
(gt_flags) and shows ATSS positives inside one. Random draws are repeated until the
losses are robust to float32 evaluation (make_caffe_cases.robust) and every
GT's threshold lies at least 1e-9 away from its candidates' IoUs (so the
case does not hinge on the rounding of mean + std).
"""
import argparse, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbx_reference as R
import make_cases as M
import make_caffe_cases as CC

GEN = "tests/reference/make_atss_cases.py"


def retinanet_anchors(height, width):
    """pytorch-retinanet Anchors (levels 3..7), corners, float32; and the
    anchors per level (core/priors/priors.cpp computes the same)."""
    ratios = np.array([0.5, 1.0, 2.0])
    scales = np.array([2.0 ** 0.0, 2.0 ** (1.0 / 3.0), 2.0 ** (2.0 / 3.0)])
    out, levels = [], []
    for l in range(3, 8):
        stride, base = 2.0 ** l, 2.0 ** (l + 2)
        anc = []
        for a in range(9):
            side = base * scales[a % 3]
            w = np.sqrt(side * side / ratios[a // 3])
            h = w * ratios[a // 3]
            anc.append((0.0 - w * 0.5, 0.0 - h * 0.5, w - w * 0.5, h - h * 0.5))
        ny, nx = -(-height // 2 ** l), -(-width // 2 ** l)
        for y in range(ny):
            for x in range(nx):
                sx, sy = (x + 0.5) * stride, (y + 0.5) * stride
                out.extend((a0 + sx, a1 + sy, a2 + sx, a3 + sy) for a0, a1, a2, a3 in anc)
        levels.append(ny * nx * 9)
    return np.array(out, dtype=np.float32), levels


def gt_boxes(rng, n, size):
    """Boxes from ~3 px to ~0.9 of the image, inside it."""
    side = np.exp(rng.uniform(np.log(3.0), np.log(0.9 * size), size=(n, 2)))
    side[:, 1] = np.clip(side[:, 0] * np.exp(rng.uniform(-0.5, 0.5, size=n)), 3.0, 0.9 * size)
    c = rng.uniform(side / 2, size - side / 2)
    return np.concatenate([c - side / 2, c + side / 2], axis=1)


def threshold_margin(prior_corners, prior_cs, gt, counts, levels, topk):
    """Smallest |IoU - threshold| over every GT's candidates."""
    bounds = np.concatenate([[0], np.cumsum(levels)])
    worst = np.inf
    for b in range(gt.shape[0]):
        for g in gt[b, :counts[b]]:
            iou = R.iou_matrix(g[None], prior_corners)[0]
            dx = prior_cs[:, 0] - (g[0] + g[2]) / 2
            dy = prior_cs[:, 1] - (g[1] + g[3]) / 2
            d = np.sqrt(dx * dx + dy * dy)
            cand = []
            for l in range(len(levels)):
                order = np.lexsort((np.arange(bounds[l], bounds[l + 1]), d[bounds[l]:bounds[l + 1]]))
                cand.extend(bounds[l] + order[:min(topk, levels[l])])
            v = iou[cand]
            if len(v) > 1:
                worst = min(worst, np.abs(v - (v.mean() + v.std(ddof=1))).min())
    return worst


def atss_case(rng, root, name, desc, base, ov, B, C, G, size=64, zero_counts=(), levels_file=True,
              regions=False):
    """regions: the last valid row of every image with GT is an ignore region
    (gt_flags bit 0) of half to 0.96 of the image side, and the draw must show an ATSS positive that
    overwrote an ignore mark."""
    opts = R.replace(R.PRESETS[base](), assigner="ATSS", **ov).validate()
    corners, levels = retinanet_anchors(size, size)
    if opts.prior_format == "CORNERS":
        priors = corners.astype(np.float64)
        cs, pc = R.corners_to_center_size(priors), priors
    else:
        priors = R.corners_to_center_size(corners.astype(np.float64)).astype(np.float32).astype(np.float64)
        cs, pc = priors, R.center_size_to_corners(priors)
    P = priors.shape[0]
    prior_levels = levels if levels_file else None
    K = C - 1 if opts.conf_loss == "SOFTMAX_CE" else C
    for _ in range(200):
        gt = np.zeros((B, G, 4))
        counts = rng.integers(max(1, G - 2), G + 1, size=B)
        for b in zero_counts:
            counts[b] = 0
        for b in range(B):
            gt[b] = gt_boxes(rng, G, size)
        gf = gt.astype(np.float32).astype(np.float64)
        labels = rng.integers(0, K, size=(B, G))
        loc = rng.normal(0, 1, size=(B, P, 4)).astype(np.float32)
        conf = rng.normal(0, 2.0, size=(B, P, C)).astype(np.float32)
        flags = None
        if regions:
            flags = np.zeros((B, G), np.int32)
            for b in range(B):
                if counts[b] > 0:
                    flags[b, counts[b] - 1] = 1
                    half = rng.uniform(0.25, 0.48) * size
                    c = rng.uniform(half, size - half, size=2)
                    gf[b, counts[b] - 1] = np.float32(np.concatenate([c - half, c + half]))
        out = R.compute(priors, gf, labels, counts, loc, conf, opts, gt_flags=flags,
                        prior_levels=prior_levels)
        if regions:  # some ATSS positive lies inside a region: its ignore mark was overwritten
            inside = np.array([R.ignore_mask(gf[b, :counts[b]][flags[b, :counts[b]] == 1], pc, opts)
                               for b in range(B)])
            if not ((out["conf_target"] > 0) & inside).any() or not (out["conf_target"] < 0).any():
                continue
        matchable = counts - (0 if flags is None else flags.sum(axis=1))
        if (CC.robust(out, opts, loc, conf) and out["num_pos"].sum() > 0 and
                threshold_margin(pc, cs, gf, matchable, prior_levels or [P], opts.atss_topk) > 1e-9):
            M.write_case(root, name, desc, "custom(%s)" % base, opts, priors, gf, labels, counts,
                         loc, conf, False, full=True, generator=GEN, prior_levels=prior_levels,
                         gt_flags=flags)
            return
    raise RuntimeError("no robust draw for " + name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261127)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    specs = [
        ("a01_atss_retinanet_focal", "ATSS top 9 on a 5-level RetinaNet pyramid (64x64), focal, "
         "one image without GT", "torchvision_retinanet", {}, 3, 3, 6, (1,), True),
        ("a02_atss_topk12_softmax", "ATSS top 12: more than the two 9-anchor levels hold; "
         "softmax CE with mining, CENTER_SIZE priors", "ssd_pytorch", dict(atss_topk=12), 2, 4, 5, (), True),
        ("a03_atss_topk1_focal", "ATSS top 1 per level (5 candidates per GT), focal",
         "torchvision_retinanet", dict(atss_topk=1), 2, 3, 6, (), True),
        ("a04_atss_one_level_softmax", "ATSS without prior_levels: one level of every prior, top 9, "
         "softmax CE", "torchvision_ssd", {}, 2, 4, 5, (), False),
    ]
    for name, desc, base, ov, B, C, G, zc, lv in specs:
        atss_case(rng, a.out, name, "generated: " + desc, base, ov, B, C, G, zero_counts=zc,
                  levels_file=lv)
    specs.append(("a05_atss_ignore_region_focal", "", "", {}, 0, 0, 0, (), True))
    atss_case(rng, a.out, "a05_atss_ignore_region_focal",
              "generated: ATSS top 9 with an ignore region (gt_flags) in every image, focal: "
              "ATSS positives overwrite the ignore mark (ignore_iof_threshold 0.2, so that some of the "
              "coarse levels' anchors lie in regions)", "torchvision_retinanet",
              dict(ignore_iof_threshold=0.2), 2, 3, 6, regions=True)
    print("wrote", len(specs), "cases to", a.out)


if __name__ == "__main__":
    main()
