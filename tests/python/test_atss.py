"""The ATSS assigner (docs/SPEC.md §2.8) against a plain-torch transcription
of mmdetection's ATSSAssigner.assign (mmdet/models/task_modules/assigners/
atss_assigner.py, alpha = None, i.e. without the DDOD cost), in float64.

Where torch leaves a choice, the transcription pins mbx's rule: topk among
equal distances takes the lower prior index (a stable sort), and a prior
claimed by GTs with equal IoUs goes to the lowest row (torch's max returns
the first maximum). Draws whose thresholds lie within 1e-9 of a candidate's
IoU are re-drawn: torch forms mean and std in its own summation order, mbx
in the candidates' order, and only the last bits may differ.

The numpy reference (tests/reference/mbx_reference.py) is checked against
the transcription always; the library, through mbx.match(...,
prior_levels=...), on every available path.
"""

import inspect
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import mbx_reference as R  # noqa: E402
from make_atss_cases import retinanet_anchors  # noqa: E402


def _overlaps(a, b, mode="iou"):
    """mmdet's BboxOverlaps2D for [N,4] x [M,4] corner boxes (eps 1e-6)."""
    area1 = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area2 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - overlap if mode == "iou" else area1[:, None]
    return overlap / torch.clamp(union, min=1e-6)


def mmdet_atss_assign(priors, num_level_priors, gt_bboxes, topk, gt_bboxes_ignore=None,
                      ignore_iof_thr=-1.0):
    """assigned_gt_inds (0 negative, -1 ignored, g + 1 positive of GT g) and
    the smallest |IoU - threshold| over the candidates."""
    INF = 100000000
    num_gt, num_priors = gt_bboxes.size(0), priors.size(0)
    overlaps = _overlaps(priors, gt_bboxes)
    assigned_gt_inds = overlaps.new_full((num_priors,), 0, dtype=torch.long)
    if num_gt == 0 or num_priors == 0:
        return assigned_gt_inds, np.inf

    bbox_cx = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2.0
    bbox_cy = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2.0
    bbox_points = torch.stack((bbox_cx, bbox_cy), dim=1)
    priors_cx = (priors[:, 0] + priors[:, 2]) / 2.0
    priors_cy = (priors[:, 1] + priors[:, 3]) / 2.0
    priors_points = torch.stack((priors_cx, priors_cy), dim=1)
    distances = (priors_points[:, None, :] - bbox_points[None, :, :]).pow(2).sum(-1).sqrt()

    if (ignore_iof_thr > 0 and gt_bboxes_ignore is not None and gt_bboxes_ignore.numel() > 0):
        ignore_overlaps = _overlaps(priors, gt_bboxes_ignore, mode="iof")
        ignore_max_overlaps, _ = ignore_overlaps.max(dim=1)
        ignore_idxs = ignore_max_overlaps > ignore_iof_thr
        distances[ignore_idxs, :] = INF
        assigned_gt_inds[ignore_idxs] = -1

    candidate_idxs = []
    start_idx = 0
    for priors_per_level in num_level_priors:
        end_idx = start_idx + priors_per_level
        distances_per_level = distances[start_idx:end_idx, :]
        selectable_k = min(topk, priors_per_level)
        # topk(selectable_k, dim=0, largest=False) with ties to the lower index
        order = torch.sort(distances_per_level, dim=0, stable=True)[1]
        candidate_idxs.append(order[:selectable_k] + start_idx)
        start_idx = end_idx
    candidate_idxs = torch.cat(candidate_idxs, dim=0)

    candidate_overlaps = overlaps[candidate_idxs, torch.arange(num_gt)]
    overlaps_thr_per_gt = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
    is_pos = candidate_overlaps >= overlaps_thr_per_gt[None, :]
    margin = (candidate_overlaps - overlaps_thr_per_gt[None, :]).abs().min().item()

    for gt_idx in range(num_gt):
        candidate_idxs[:, gt_idx] += gt_idx * num_priors
    ep_priors_cx = priors_cx.view(1, -1).expand(num_gt, num_priors).contiguous().view(-1)
    ep_priors_cy = priors_cy.view(1, -1).expand(num_gt, num_priors).contiguous().view(-1)
    candidate_idxs = candidate_idxs.view(-1)
    l_ = ep_priors_cx[candidate_idxs].view(-1, num_gt) - gt_bboxes[:, 0]
    t_ = ep_priors_cy[candidate_idxs].view(-1, num_gt) - gt_bboxes[:, 1]
    r_ = gt_bboxes[:, 2] - ep_priors_cx[candidate_idxs].view(-1, num_gt)
    b_ = gt_bboxes[:, 3] - ep_priors_cy[candidate_idxs].view(-1, num_gt)
    is_in_gts = torch.stack([l_, t_, r_, b_], dim=1).min(dim=1)[0] > 0.01
    is_pos = is_pos & is_in_gts

    overlaps_inf = torch.full_like(overlaps, -INF).t().contiguous().view(-1)
    index = candidate_idxs.view(-1)[is_pos.view(-1)]
    overlaps_inf[index] = overlaps.t().contiguous().view(-1)[index]
    overlaps_inf = overlaps_inf.view(num_gt, -1).t()
    max_overlaps, argmax_overlaps = overlaps_inf.max(dim=1)
    assigned_gt_inds[max_overlaps != -INF] = argmax_overlaps[max_overlaps != -INF] + 1
    return assigned_gt_inds, margin


def _gt(rng, n, size):
    side = np.exp(rng.uniform(np.log(3.0), np.log(0.9 * size), size=(n, 2)))
    c = rng.uniform(side / 2, size - side / 2)
    return np.concatenate([c - side / 2, c + side / 2], axis=1).astype(np.float32)


def _problems(size, topk, seeds, max_gt=7):
    """(priors, levels, gt [B,G,4], labels, counts, expected conf/matched) of
    robust draws on RetinaNet anchors for a size x size image."""
    priors, levels = retinanet_anchors(size, size)
    pt = torch.from_numpy(priors.astype(np.float64))
    out = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        while True:
            B = 3
            counts = rng.integers(0, max_gt + 1, size=B).astype(np.int32)
            gt = np.zeros((B, max_gt, 4), np.float32)
            labels = rng.integers(0, 5, size=(B, max_gt)).astype(np.int32)
            conf = np.zeros((B, priors.shape[0]), np.int64)
            matched = np.full((B, priors.shape[0]), -1, np.int64)
            margin = np.inf
            for b in range(B):
                gt[b] = _gt(rng, max_gt, size)
                inds, m = mmdet_atss_assign(pt, levels, torch.from_numpy(gt[b, :counts[b]].astype(np.float64)), topk)
                margin = min(margin, m)
                inds = inds.numpy()
                pos = inds > 0
                matched[b, pos] = inds[pos] - 1
                conf[b, pos] = labels[b, inds[pos] - 1] + 1
                conf[b, inds < 0] = -1
            if margin > 1e-9 and (conf > 0).any():
                break
        out.append((priors, levels, gt, labels, counts, conf, matched))
    return out


CONFIGS = [(64, 9), (64, 12), (64, 1), (128, 9), (96, 4)]


@pytest.mark.parametrize("size,topk", CONFIGS)
def test_reference_matches_mmdetection(size, topk):
    for priors, levels, gt, labels, counts, conf, matched in _problems(size, topk, range(3)):
        pc = priors.astype(np.float64)
        cs = R.corners_to_center_size(pc)
        for b in range(gt.shape[0]):
            g = gt[b, :counts[b]].astype(np.float64)
            ct, mg = R.atss_match_image(g, labels[b, :counts[b]], pc, cs, levels, topk)
            np.testing.assert_array_equal(ct, conf[b])
            np.testing.assert_array_equal(mg, matched[b])


def test_reference_one_candidate_gives_no_positive():
    """K = 1 (atss_topk 1, one level): torch.std of one value is NaN, and no
    IoU compares >= NaN."""
    priors, _ = retinanet_anchors(64, 64)
    pc = priors.astype(np.float64)
    gt = np.array([[10.0, 10.0, 40.0, 40.0]])
    inds, _ = mmdet_atss_assign(torch.from_numpy(pc), [pc.shape[0]], torch.from_numpy(gt), 1)
    assert (inds.numpy() == 0).all()
    ct, _ = R.atss_match_image(gt, np.array([0]), pc, R.corners_to_center_size(pc), [pc.shape[0]], 1)
    assert (ct == 0).all()


@pytest.mark.parametrize("size,topk", CONFIGS)
def test_mbx_matches_mmdetection(size, topk):
    mbx = pytest.importorskip("mbx")
    if "prior_levels" not in inspect.signature(mbx.match).parameters:
        pytest.skip("mbx.match takes no prior_levels in this build")
    paths = [p for p in ("cpu-scalar", "cpu", "cuda") if mbx.path_available(p)]
    for priors, levels, gt, labels, counts, conf, matched in _problems(size, topk, range(2)):
        for path in paths:
            with mbx.Context(path=path) as ctx:
                kind = torch.device("cuda") if path == "cuda" else None
                args = [priors, gt, labels, counts]
                if kind is not None:
                    args = [torch.from_numpy(np.ascontiguousarray(a)).to(kind) for a in args]
                r = mbx.match(*args, "torchvision_retinanet", assigner="ATSS", atss_topk=topk,
                              prior_levels=np.asarray(levels, np.int32), context=ctx)
                ct = np.asarray(r.conf_target.cpu() if kind is not None else r.conf_target)
                mg = np.asarray(r.matched_gt.cpu() if kind is not None else r.matched_gt)
                np.testing.assert_array_equal(ct, conf, err_msg=path)
                np.testing.assert_array_equal(mg, matched, err_msg=path)


@pytest.mark.parametrize("topk", [9, 4])
def test_mbx_with_ignore_regions_matches_mmdetection(topk):
    """The last valid row of each image is an ignore region (gt_flags bit 0),
    mmdetection's gt_bboxes_ignore with ignore_iof_thr 0.2: ignored priors are
    as far as can be, -1 unless an ATSS positive reclaims them. Every image
    keeps a GT (mmdetection returns early without one, mbx does not: SPEC §2.7)."""
    mbx = pytest.importorskip("mbx")
    if "gt_flags" not in inspect.signature(mbx.match).parameters:
        pytest.skip("mbx.match takes no gt_flags in this build")
    priors, levels = retinanet_anchors(64, 64)
    pt = torch.from_numpy(priors.astype(np.float64))
    reclaimed = 0
    for seed in range(40):  # at least 4 draws, and until one shows a reclaimed prior
        if seed >= 4 and reclaimed:
            break
        rng = np.random.default_rng(100 + seed)
        B, G = 3, 6
        while True:
            counts = rng.integers(2, G + 1, size=B).astype(np.int32)
            gt = np.stack([_gt(rng, G, 64) for _ in range(B)])
            labels = rng.integers(0, 5, size=(B, G)).astype(np.int32)
            flags = np.zeros((B, G), np.int32)
            conf = np.zeros((B, priors.shape[0]), np.int64)
            matched = np.full((B, priors.shape[0]), -1, np.int64)
            margin = np.inf
            for b in range(B):
                r = counts[b] - 1
                flags[b, r] = 1
                half = rng.uniform(0.25, 0.48) * 64
                c = rng.uniform(half, 64 - half, size=2)
                gt[b, r] = np.concatenate([c - half, c + half]).astype(np.float32)
                boxes = torch.from_numpy(gt[b, :r].astype(np.float64))
                ignore = torch.from_numpy(gt[b, r:r + 1].astype(np.float64))
                inds, m = mmdet_atss_assign(pt, levels, boxes, topk, ignore, 0.2)
                margin = min(margin, m)
                inds = inds.numpy()
                pos = inds > 0
                matched[b, pos] = inds[pos] - 1
                conf[b, pos] = labels[b, inds[pos] - 1] + 1
                conf[b, inds < 0] = -1
                region = _overlaps(pt, ignore, mode="iof").max(dim=1)[0].numpy() > 0.2
                reclaimed += int((pos & region).sum())
            if margin > 1e-9:
                break
        for path in [p for p in ("cpu-scalar", "cpu") if mbx.path_available(p)]:
            with mbx.Context(path=path) as ctx:
                r = mbx.match(priors, gt, labels, counts, "torchvision_retinanet", assigner="ATSS",
                              atss_topk=topk, ignore_iof_threshold=0.2, gt_flags=flags,
                              prior_levels=np.asarray(levels, np.int32), context=ctx)
                np.testing.assert_array_equal(np.asarray(r.conf_target), conf, err_msg=path)
                np.testing.assert_array_equal(np.asarray(r.matched_gt), matched, err_msg=path)
    assert reclaimed > 0, "no ATSS positive inside a region: the case shows nothing"
