"""Generate the conformance cases of the ATSS assigner (docs/SPEC.md §2.8;
tests/data/README.md format, with prior_levels.npy) with the numpy reference.

    python3 tests/reference/make_atss_cases.py OUT_DIR [--seed N]

The priors are RetinaNet anchors (pytorch-retinanet's scheme, as
mbx_priors_retinanet makes them) for a 64 x 64 image: 5 levels of 576, 144,
36, 9 and 9 anchors, so atss_topk 9 takes all of the last two levels and
atss_topk 12 asks for more than they hold. GTs range from a few pixels to
most of the image; one image has no GT. Random draws are repeated until the
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


def atss_case(rng, root, name, desc, base, ov, B, C, G, size=64, zero_counts=(), fmt=None,
              levels_file=True):
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
        out = R.compute(priors, gf, labels, counts, loc, conf, opts, prior_levels=prior_levels)
        if (CC.robust(out, opts, loc, conf) and out["num_pos"].sum() > 0 and
                threshold_margin(pc, cs, gf, counts, prior_levels or [P], opts.atss_topk) > 1e-9):
            M.write_case(root, name, desc, "custom(%s)" % base, opts, priors, gf, labels, counts,
                         loc, conf, False, full=True, generator=GEN, prior_levels=prior_levels)
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
    print("wrote", len(specs), "cases to", a.out)


if __name__ == "__main__":
    main()
