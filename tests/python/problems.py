"""Random, valid problems for the tests (numpy, float32/int32)."""

import numpy as np


def grid_priors(n_side, scales=(0.2, 0.35), corners=False):
    """Regular CENTER_SIZE (or CORNERS) priors on an n_side x n_side grid."""
    rows = []
    for i in range(n_side):
        for j in range(n_side):
            cx, cy = (j + 0.5) / n_side, (i + 0.5) / n_side
            for s in scales:
                for ar in (1.0, 2.0, 0.5):
                    rows.append((cx, cy, s * np.sqrt(ar), s / np.sqrt(ar)))
    p = np.array(rows, np.float64)
    if corners:
        p = np.concatenate([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], axis=1)
    return p.astype(np.float32)


def random_gt(rng, batch, max_gt, num_classes, min_gt=1, scale=1.0):
    """GT corners [B,G,4] float32, labels [B,G] int32 in [0, K), counts [B]
    int32; padding rows are random junk (they must be ignored)."""
    counts = rng.integers(min_gt, max_gt + 1, size=batch).astype(np.int32)
    g = max(1, int(counts.max()))
    boxes = np.zeros((batch, g, 4), np.float64)
    labels = rng.integers(0, num_classes, size=(batch, g)).astype(np.int32)
    for b in range(batch):
        for r in range(g):
            w, h = rng.uniform(0.1, 0.6, size=2)
            x1, y1 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
            boxes[b, r] = (x1, y1, x1 + w, y1 + h)
        boxes[b, counts[b]:] = rng.uniform(-5, 5, size=(g - counts[b], 4))  # junk padding
        labels[b, counts[b]:] = rng.integers(-100, 100, size=g - counts[b])
    return (boxes * scale).astype(np.float32), labels, counts


def random_problem(seed=0, batch=2, n_side=4, num_classes=3, max_gt=3, softmax=True,
                   corners=False):
    """(priors, gt_boxes, gt_labels, gt_counts, loc, conf) as numpy arrays."""
    rng = np.random.default_rng(seed)
    priors = grid_priors(n_side, corners=corners)
    boxes, labels, counts = random_gt(rng, batch, max_gt, num_classes)
    p = priors.shape[0]
    c = num_classes + 1 if softmax else num_classes
    loc = rng.normal(0, 1, size=(batch, p, 4)).astype(np.float32)
    conf = rng.normal(0, 2, size=(batch, p, c)).astype(np.float32)
    return priors, boxes, labels, counts, loc, conf


# Box helpers of the plain-torch transcriptions (test_torch.py's ssd.pytorch,
# test_sgrvinod.py's tutorial loss); torch tensors in, torch tensors out.
def torch_center_to_corners(p):
    """(cx, cy, w, h) rows -> (x1, y1, x2, y2)."""
    import torch
    return torch.cat([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], 1)


def torch_pairwise_iou(a, b):
    """IoU of every corner box of a [n, 4] with every one of b [m, 4]: [n, m]."""
    import torch
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    return inter / (area_a + area_b - inter)
