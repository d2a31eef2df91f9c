"""mbx's torchvision_ssd / torchvision_retinanet presets against torchvision
0.14's own compute_loss (losses and autograd gradients) on random batches.

torchvision decides matching from box_iou in float32; mbx decides in double
(docs/SPEC.md §2). The torchvision matchers here are fed the IoU matrix in float64
so both sides make the same decisions; everything else (encoding, losses,
mining, normalisation) is torchvision's float32 code. Batches have many
more negatives than 3 x positives, so torchvision SSD's overflow behaviour
(docs/SPEC.md §6.4) does not arise, and random logits have no ties (§6.6).
"""

import types

import numpy as np
import pytest

import mbx
from conftest import KINDS, assert_grad_close, to_kind, to_numpy
from problems import grid_priors, random_gt

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.models.detection import retinanet as tv_retinanet  # noqa: E402
from torchvision.models.detection import ssd as tv_ssd  # noqa: E402
from torchvision.ops import boxes as box_ops  # noqa: E402


def _batch(seed, n_side, num_classes, softmax, max_gt=4, min_gt=1, batch=3):
    rng = np.random.default_rng(seed)
    priors = grid_priors(n_side, scales=(0.15, 0.3), corners=True)
    boxes, labels, counts = random_gt(rng, batch, max_gt, num_classes, min_gt=min_gt)
    p = priors.shape[0]
    c = num_classes + 1 if softmax else num_classes
    loc = rng.normal(0, 1, size=(batch, p, 4)).astype(np.float32)
    conf = rng.normal(0, 2, size=(batch, p, c)).astype(np.float32)
    return priors, boxes, labels, counts, loc, conf


def _targets(boxes, labels, counts, label_offset):
    return [{"boxes": torch.from_numpy(boxes[b, :counts[b]]),
             "labels": torch.from_numpy(labels[b, :counts[b]]).long() + label_offset}
            for b in range(len(counts))]


def _torchvision_ssd(priors, boxes, labels, counts, loc, conf):
    anchors = torch.from_numpy(priors)
    targets = _targets(boxes, labels, counts, 1)  # torchvision SSD: 0 is background
    matcher = det_utils.SSDMatcher(0.5)
    matched = [matcher(box_ops.box_iou(t["boxes"].double(), anchors.double())) for t in targets]
    fake_ssd = types.SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)),
                                     neg_to_pos_ratio=3)
    loc_t = torch.from_numpy(loc).requires_grad_()
    conf_t = torch.from_numpy(conf).requires_grad_()
    losses = tv_ssd.SSD.compute_loss(fake_ssd, targets, {"bbox_regression": loc_t, "cls_logits": conf_t},
                                     [anchors] * len(targets), matched)
    g_loc, = torch.autograd.grad(losses["bbox_regression"], loc_t)
    g_conf, = torch.autograd.grad(losses["classification"], conf_t)
    return losses["bbox_regression"].item(), losses["classification"].item(), g_loc, g_conf, matched


def _torchvision_retinanet(priors, boxes, labels, counts, loc, conf):
    anchors = torch.from_numpy(priors)
    targets = _targets(boxes, labels, counts, 0)  # RetinaNet: class k in column k
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    matched = []
    for t in targets:
        if t["boxes"].numel() == 0:  # as RetinaNet.compute_loss does
            matched.append(torch.full((anchors.shape[0],), -1, dtype=torch.int64))
        else:
            matched.append(matcher(box_ops.box_iou(t["boxes"].double(), anchors.double())))
    head = tv_retinanet.RetinaNetHead(in_channels=4, num_anchors=1, num_classes=conf.shape[2])
    loc_t = torch.from_numpy(loc).requires_grad_()
    conf_t = torch.from_numpy(conf).requires_grad_()
    losses = head.compute_loss(targets, {"bbox_regression": loc_t, "cls_logits": conf_t},
                               [anchors] * len(targets), matched)
    g_loc, = torch.autograd.grad(losses["bbox_regression"], loc_t)
    g_conf, = torch.autograd.grad(losses["classification"], conf_t)
    return losses["bbox_regression"].item(), losses["classification"].item(), g_loc, g_conf, matched


def _check(preset, ref, batch, kind):
    priors, boxes, labels, counts, loc, conf = batch
    ref_loc, ref_conf, ref_gloc, ref_gconf, matched = ref(*batch)
    args = [to_kind(a, kind) for a in batch]
    out = mbx.MultiBoxLoss(preset)(*args)
    assert float(to_numpy(out.loss_loc)) == pytest.approx(ref_loc, rel=1e-4)
    assert float(to_numpy(out.loss_conf)) == pytest.approx(ref_conf, rel=1e-4)
    assert_grad_close(out.grad_loc, ref_gloc.numpy(), "grad_loc")
    assert_grad_close(out.grad_conf, ref_gconf.numpy(), "grad_conf")
    m = mbx.match(*args[:4], preset=preset)
    want_matched = torch.stack([torch.where(x >= 0, x, torch.full_like(x, -1)) for x in matched])
    np.testing.assert_array_equal(to_numpy(m.matched_gt), want_matched.numpy())
    np.testing.assert_array_equal(to_numpy(out.num_pos), (want_matched >= 0).sum(1).numpy())
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_torchvision_ssd(seed, kind):
    batch = _batch(100 + seed, n_side=8, num_classes=5, softmax=True)
    out = _check("torchvision_ssd", _torchvision_ssd, batch, kind)
    p = batch[0].shape[0]
    assert (3 * to_numpy(out.num_pos) < p - to_numpy(out.num_pos)).all()  # no §6.4 overflow


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_torchvision_retinanet(seed, kind):
    # min_gt=0: images without objects are part of the comparison.
    batch = _batch(200 + seed, n_side=7, num_classes=4, softmax=False, min_gt=0)
    _check("torchvision_retinanet", _torchvision_retinanet, batch, kind)
