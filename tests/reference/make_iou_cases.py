"""Generate the conformance cases of the IoU-family box losses
(loc_loss = GIOU / DIOU / CIOU, docs/SPEC.md §4.7) with the numpy
reference, in the tests/data/README.md format:

* each loss on the torchvision_retinanet preset (CORNERS priors, sigmoid
  focal, PER_IMAGE; with an image without GT) and on the ssd_pytorch preset
  (CENTER_SIZE priors, variances .1 .1 .2 .2, softmax with mining);
* each loss with degenerate predictions on positives: sizes that underflow
  to 0 (a point, a zero width, a zero height), subnormal sizes, exponents
  beyond and exactly at the clamp (CENTER_SIZE), and inverted and zero-width
  boxes (CORNER and CORNER_SIZE codings);
* a batch without any GT, the variance in the target, loc_average_coords.

    python3 tests/reference/make_iou_cases.py OUT_DIR [--seed N]

Every case writes all options and num_pos_loss.npy. Draws are repeated until
the softmax mining boundary has a relative gap of 1e-4 (make_caffe_cases'
robustness test; the IoU terms have no kinks to avoid other than their
min / max ties, which random draws do not hit).
"""
import argparse, math, os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbx_reference as R
import make_cases as M
import make_caffe_cases as CC

GEN = "tests/reference/make_iou_cases.py"
CLIP = math.log(1000.0 / 16.0)


def degenerate_rows(opts):
    """Offsets that decode to degenerate boxes under opts' coding."""
    v = opts.variances if not opts.encode_variance_in_target else (1.0, 1.0, 1.0, 1.0)
    if opts.box_coding == "CENTER_SIZE":
        return [(0.0, 0.0, -1e4, -1e4),          # sizes underflow: a point
                (0.1, 0.0, -1e4, 0.2),           # zero width
                (0.0, 0.1, 0.3, -1e4),           # zero height
                (0.0, 0.0, -720 / v[2], -720 / v[3]),  # subnormal sizes
                (0.0, 0.0, 1e4, 1e4),            # beyond the clamp: no gradient there
                (0.0, 0.5, float(np.float32(CLIP / v[2])), 0.0)]  # the width exponent at the clamp (to float32)
    return [(0.4, 0.1, -0.4, 0.3),    # inverted x
            (0.1, 0.4, 0.3, -0.4),    # inverted y
            (0.6, 0.6, -0.6, -0.6),   # inverted both
            (0.0, 0.0, -1e4, 0.0),    # far inverted
            (2e3, -2e3, 2e3, -2e3)]   # far away


def write_degenerate(rng, root, name, desc, base, ov, B, P, C, G):
    """A random draw whose first positives get degenerate offsets (the
    matching does not read loc, so the positives stay)."""
    opts = R.replace(R.PRESETS[base](), **ov).validate()
    rows = degenerate_rows(opts)
    for _ in range(400):
        priors = M.priors_for(rng, P, opts.prior_format, 1.0)
        gt = np.zeros((B, G, 4))
        counts = rng.integers(1, G + 1, size=B)
        for b in range(B):
            gt[b] = M.rand_boxes(rng, G, 1.0, 0.05)
        labels = rng.integers(0, C - 1, size=(B, G))
        loc = rng.normal(0, 1, size=(B, P, 4)).astype(np.float32)
        conf = rng.normal(0, 2.0, size=(B, P, C)).astype(np.float32)
        pf = priors.astype(np.float32).astype(np.float64)
        gf = gt.astype(np.float32)
        out = R.compute(pf, gf, labels, counts, loc, conf, opts)
        pos = np.argwhere(out["conf_target"] > 0)
        if len(pos) < len(rows):
            continue
        for (b, p), r in zip(pos, rows):
            loc[b, p] = r
        out = R.compute(pf, gf, labels, counts, loc, conf, opts)
        if not (np.isfinite(out["grad_loc"]).all() and np.isfinite(out["loss_loc"])):
            raise RuntimeError("non-finite reference in " + name)
        if CC.robust(out, opts, loc, conf):
            M.write_case(root, name, desc, "custom(%s)" % base, opts, pf, gf.astype(np.float64),
                         labels, counts, loc, conf, False, full=True, generator=GEN)
            return
    raise RuntimeError("no robust draw for " + name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20261127)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    n = 0
    specs = []
    for i, kind in enumerate(R.IOU_LOSSES):
        specs.append(("u%02d_%s_torchvision_retinanet" % (1 + i, kind.lower()), "torchvision_retinanet",
                      dict(loc_loss=kind), 3, 150, 4, 4, (1,)))
        specs.append(("u%02d_%s_ssd_pytorch" % (4 + i, kind.lower()), "ssd_pytorch",
                      dict(loc_loss=kind), 3, 140, 5, 4, ()))
    specs += [
        ("u07_giou_no_gt_at_all", "torchvision_retinanet", dict(loc_loss="GIOU"), 2, 80, 4, 3, (0, 1)),
        ("u08_diou_variance_in_target_avg_coords", "ssd_pytorch",
         dict(loc_loss="DIOU", encode_variance_in_target=True, loc_average_coords=True,
              normalization="PER_IMAGE"), 2, 120, 4, 4, ()),
        ("u09_ciou_corner_size_external", "caffe_ssd",
         dict(loc_loss="CIOU", box_coding="CORNER_SIZE", normalization="EXTERNAL", external_norm=3.0),
         2, 120, 4, 4, ()),
    ]
    for name, base, ov, B, P, C, G, zc in sorted(specs):
        CC.random_case(rng, a.out, name, "generated: %s %s" % (base, ov), base, ov, B, P, C, G, None, zc)
        n += 1
    k = 10
    for kind in R.IOU_LOSSES:
        for base, ov in [("torchvision_retinanet", {}),
                         ("ssd_pytorch", {}),
                         ("caffe_ssd", dict(box_coding="CORNER", variances=(0.5, 0.5, 0.5, 0.5))),
                         ("torchvision_retinanet", dict(box_coding="CORNER_SIZE"))]:
            ov = dict(ov, loc_loss=kind)
            tag = "%s_%s" % (base, ov.get("box_coding", "center_size").lower())
            name = "u%02d_%s_degenerate_%s" % (k, kind.lower(), tag)
            write_degenerate(rng, a.out, name, "degenerate predictions on positives: %s %s" % (base, ov),
                             base, ov, 2, 120, 4, 4)
            k += 1
            n += 1
    print("wrote", n, "cases to", a.out)


if __name__ == "__main__":
    main()
