"""The torch baselines of tests/bench/compare.py, as a training step runs them.

* torchvision 0.14 SSD: the per-image matching loop of ``SSD.forward`` in
  training mode (``box_iou`` in float32 + ``SSDMatcher(0.5)``; an image
  without boxes gets all -1), then ``SSD.compute_loss`` called unbound on a
  stub carrying what it reads (``box_coder`` with weights (10, 10, 5, 5) and
  ``neg_to_pos_ratio`` = 3, the values SSD.__init__ sets).
* torchvision 0.14 RetinaNet: ``RetinaNet.compute_loss`` called unbound on a
  stub carrying ``proposal_matcher`` = ``Matcher(0.5, 0.4,
  allow_low_quality_matches=True)`` and ``head`` = a real ``RetinaNetHead``
  (its regression head holds ``BoxCoder((1, 1, 1, 1))`` and the L1 loss).
  RetinaNet.compute_loss does the per-image matching itself.
* ssd.pytorch's MultiBoxLoss, as re-implemented in plain torch by the repo's
  own tests/python/test_torch.py (``ssd_pytorch_reference``), if importable.

Each ``*_step`` returns (loss_loc, loss_conf, grad_loc, grad_conf): forward,
then backward of loss_loc + loss_conf to fresh leaf tensors over the numpy
inputs (torch.from_numpy, zero-copy), like one step of training.
"""

import os
import sys
import types

import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection import retinanet as tv_retinanet
from torchvision.models.detection import ssd as tv_ssd
from torchvision.ops import boxes as box_ops


def targets_from_numpy(gt_boxes, gt_labels, gt_counts, label_offset):
    """torchvision's target dicts (boxes float32 [n,4] corners, labels int64)."""
    return [{"boxes": torch.from_numpy(gt_boxes[b, :gt_counts[b]]),
             "labels": torch.from_numpy(gt_labels[b, :gt_counts[b]]).long() + label_offset}
            for b in range(len(gt_counts))]


class TorchvisionSSD:
    """torchvision SSD's training-mode loss: matching + compute_loss."""

    def __init__(self, iou_thresh=0.5, positive_fraction=0.25):
        self.stub = types.SimpleNamespace(
            box_coder=det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0)),
            proposal_matcher=det_utils.SSDMatcher(iou_thresh),
            neg_to_pos_ratio=(1.0 - positive_fraction) / positive_fraction,
        )

    def match(self, anchors, targets, iou_dtype=None):
        return _match_loop(self.stub.proposal_matcher, anchors, targets, iou_dtype)

    def losses(self, targets, loc, conf, anchors, iou_dtype=None):
        matched = self.match(anchors, targets, iou_dtype)
        return tv_ssd.SSD.compute_loss(self.stub, targets,
                                       {"bbox_regression": loc, "cls_logits": conf},
                                       anchors, matched)


class TorchvisionRetinaNet:
    """torchvision RetinaNet's training-mode loss: RetinaNet.compute_loss
    (matching inside) with a real RetinaNetHead's compute_loss."""

    def __init__(self, num_classes):
        self.stub = types.SimpleNamespace(
            proposal_matcher=det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True),
            # in_channels only sizes the (unused) conv layers.
            head=tv_retinanet.RetinaNetHead(in_channels=4, num_anchors=9, num_classes=num_classes),
        )

    def match(self, anchors, targets, iou_dtype=None):
        return _match_loop(self.stub.proposal_matcher, anchors, targets, iou_dtype)

    def losses(self, targets, loc, conf, anchors, iou_dtype=None):
        head_outputs = {"bbox_regression": loc, "cls_logits": conf}
        if iou_dtype is None:  # exactly RetinaNet.compute_loss (matching inside)
            return tv_retinanet.RetinaNet.compute_loss(self.stub, targets, head_outputs, anchors)
        # The same, with the IoU matrix computed in iou_dtype.
        matched = self.match(anchors, targets, iou_dtype)
        return self.stub.head.compute_loss(targets, head_outputs, anchors, matched)


def _match_loop(matcher, anchors, targets, iou_dtype=None):
    """The per-image matching loop of SSD.forward / RetinaNet.compute_loss:
    an image without boxes gets all -1, else matcher(box_iou(gt, anchors)).
    iou_dtype=None is torchvision's own (float32); torch.float64 makes the
    decisions mbx makes (docs/SPEC.md §2: IoU compared in double)."""
    out = []
    for anchors_per_image, t in zip(anchors, targets):
        if t["boxes"].numel() == 0:
            out.append(torch.full((anchors_per_image.size(0),), -1, dtype=torch.int64))
            continue
        boxes = t["boxes"]
        if iou_dtype is not None:
            boxes, anchors_per_image = boxes.to(iou_dtype), anchors_per_image.to(iou_dtype)
        out.append(matcher(box_ops.box_iou(boxes, anchors_per_image)))
    return out


def match_decision_diff(model, anchors_np, gt_boxes, gt_labels, gt_counts):
    """Priors whose match differs between float32 IoU (torchvision) and
    float64 IoU (mbx's decisions): (count, total priors x images)."""
    anchors = torch.from_numpy(anchors_np)
    targets = targets_from_numpy(gt_boxes, gt_labels, gt_counts, 0)
    a = model.match([anchors] * len(targets), targets)
    b = model.match([anchors] * len(targets), targets, torch.float64)
    return int(sum(int((x != y).sum()) for x, y in zip(a, b))), len(targets) * anchors.shape[0]


def torchvision_step(model, anchors_np, gt_boxes, gt_labels, gt_counts, loc_np, conf_np,
                     label_offset, iou_dtype=None):
    """One training step's loss: fresh leaves, forward, backward.
    Returns (loss_loc, loss_conf, grad_loc, grad_conf). iou_dtype: see
    _match_loop (None = torchvision as is)."""
    anchors = torch.from_numpy(anchors_np)
    targets = targets_from_numpy(gt_boxes, gt_labels, gt_counts, label_offset)
    loc = torch.from_numpy(loc_np).requires_grad_()
    conf = torch.from_numpy(conf_np).requires_grad_()
    losses = model.losses(targets, loc, conf, [anchors] * len(targets), iou_dtype)
    l_loc, l_conf = losses["bbox_regression"], losses["classification"]
    g_loc, g_conf = torch.autograd.grad(l_loc + l_conf, (loc, conf))
    return float(l_loc), float(l_conf), g_loc, g_conf


def load_ssd_pytorch_reference(repo_root):
    """ssd_pytorch_reference from the repo's tests/python/test_torch.py, or
    (None, reason) when it cannot be imported (pytest missing, ...)."""
    path = os.path.join(repo_root, "tests", "python")
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
    try:
        import test_torch  # noqa: F401
        return test_torch.ssd_pytorch_reference, None
    except Exception as exc:  # pragma: no cover - optional baseline
        return None, "%s: %s" % (type(exc).__name__, exc)
    finally:
        if added:
            sys.path.remove(path)


def ssd_pytorch_step(ref, priors_cs_np, gt_boxes, gt_labels, gt_counts, loc_np, conf_np,
                     threshold=0.5, variance=(0.1, 0.2), negpos_ratio=3):
    """ssd.pytorch MultiBoxLoss (plain-torch re-implementation) fwd + bwd.
    Targets are ssd.pytorch's [n, 5] (x1, y1, x2, y2, label) per image."""
    priors = torch.from_numpy(priors_cs_np)
    targets = [torch.cat([torch.from_numpy(gt_boxes[b, :gt_counts[b]]),
                          torch.from_numpy(gt_labels[b, :gt_counts[b]]).float()[:, None]], 1)
               for b in range(len(gt_counts))]
    loc = torch.from_numpy(loc_np).requires_grad_()
    conf = torch.from_numpy(conf_np).requires_grad_()
    l_loc, l_conf = ref(loc, conf, priors, targets, threshold, variance, negpos_ratio)
    g_loc, g_conf = torch.autograd.grad(l_loc + l_conf, (loc, conf))
    return float(l_loc), float(l_conf), g_loc, g_conf
