"""PyTorch integration: autograd Function, nn.Modules, ssd.pytorch drop-in.

* ``MultiBoxLossFunction``: a ``torch.autograd.Function``. Its forward calls
  the library's fused forward+backward entry point once and keeps the
  gradients; its backward multiplies them by the upstream gradients of
  (loss_loc, loss_conf). The loss is piecewise smooth in (loc, conf) for
  fixed targets (matching depends only on priors and GT), so this is the
  exact gradient; it is not twice differentiable (no double backward).
* ``Loss(preset, **overrides)``: nn.Module, ``forward(loc, conf, priors,
  gt_boxes, gt_labels, gt_counts, gt_flags=None, prior_levels=None) ->
  (loss_loc, loss_conf)``.
* ``MultiBoxLoss``: drop-in for amdegroot/ssd.pytorch's
  ``layers.modules.MultiBoxLoss`` (same constructor, ``forward((loc_data,
  conf_data, priors), targets) -> (loss_l, loss_c)``), so a training script
  switches with ``from mbx.torch import MultiBoxLoss``.
* ``use_mbx_loss(model)``: torchvision's SSD, SSDlite and RetinaNet models
  train on mbx's loss (their ``compute_loss`` replaced; see
  ``mbx._torchvision``); ``all_reduced_positives()`` is its DDP normaliser.

Dtypes: the library computes from float32 (CUDA also float16/bfloat16).
Other floating inputs (e.g. float64 for gradcheck) are cast to float32 for
the library; losses are returned in float64 for float64 inputs, else
float32, and gradients in the dtype of loc / conf.
"""

import torch

from . import _core
from ._core import Context, Options

__all__ = ["Context", "Options", "MultiBoxLossFunction", "multibox_loss", "Loss", "MultiBoxLoss", "pack_targets",
           "priors_ssd", "priors_retinanet", "priors_retinanet_levels", "use_mbx_loss", "all_reduced_positives"]


def _lib_dtype(t):
    if t.dtype == torch.float32:
        return t
    if t.is_cuda and t.dtype in (torch.float16, torch.bfloat16):
        return t
    return t.to(torch.float32)


class MultiBoxLossFunction(torch.autograd.Function):
    """``MultiBoxLossFunction.apply(loc, conf, priors, gt_boxes, gt_labels,
    gt_counts, criterion, gt_flags=None, prior_levels=None) -> (loss_loc,
    loss_conf, num_pos)`` where criterion is an ``mbx.MultiBoxLoss`` and the
    optional int32 inputs are those of ``mbx.MultiBoxLoss.__call__``.
    Differentiable in loc and conf."""

    @staticmethod
    def forward(ctx, loc, conf, priors, gt_boxes, gt_labels, gt_counts, criterion,
                gt_flags=None, prior_levels=None):
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        out_dtype = torch.float64 if conf.dtype == torch.float64 else torch.float32
        res = criterion._run(priors, gt_boxes, gt_labels, gt_counts, _lib_dtype(loc),
                             _lib_dtype(conf), need_grad, None, loss_dtype="float64",
                             gt_flags=gt_flags, prior_levels=prior_levels)
        loss_loc = res.loss_loc.to(out_dtype)
        loss_conf = res.loss_conf.to(out_dtype)
        if need_grad:
            ctx.save_for_backward(res.grad_loc.to(loc.dtype), res.grad_conf.to(conf.dtype))
        # loss_loc depends on loc only, loss_conf on conf only (one call:
        # mark_non_differentiable replaces, it does not accumulate).
        constant = [res.num_pos]
        if not ctx.needs_input_grad[0]:
            constant.append(loss_loc)
        if not ctx.needs_input_grad[1]:
            constant.append(loss_conf)
        ctx.mark_non_differentiable(*constant)
        return loss_loc, loss_conf, res.num_pos

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_loss_loc, g_loss_conf, g_num_pos):
        grad_loc, grad_conf = ctx.saved_tensors
        d_loc = d_conf = None
        if ctx.needs_input_grad[0] and g_loss_loc is not None:
            d_loc = grad_loc * g_loss_loc.to(grad_loc.dtype)
        if ctx.needs_input_grad[1] and g_loss_conf is not None:
            d_conf = grad_conf * g_loss_conf.to(grad_conf.dtype)
        return d_loc, d_conf, None, None, None, None, None, None, None


def multibox_loss(loc, conf, priors, gt_boxes, gt_labels, gt_counts, preset="ssd_pytorch",
                  criterion=None, *, gt_flags=None, prior_levels=None, **overrides):
    """Functional form: ``(loss_loc, loss_conf)``, differentiable in loc, conf.
    Pass an ``mbx.MultiBoxLoss`` as criterion to reuse its context."""
    if criterion is None:
        criterion = _core.MultiBoxLoss(preset, **overrides)
    loss_loc, loss_conf, _ = MultiBoxLossFunction.apply(loc, conf, priors, gt_boxes, gt_labels,
                                                        gt_counts, criterion, gt_flags,
                                                        prior_levels)
    return loss_loc, loss_conf


class Loss(torch.nn.Module):
    """Any mbx preset as an nn.Module.

    ``Loss(preset="torchvision_retinanet", **overrides)``;
    ``forward(loc, conf, priors, gt_boxes, gt_labels, gt_counts,
    gt_flags=None, prior_levels=None) -> (loss_loc, loss_conf)``; the last ``num_pos`` [B] is kept in
    ``self.num_pos`` (e.g. for an all-reduce with EXTERNAL normalisation).
    """

    def __init__(self, preset="ssd_pytorch", context=None, **overrides):
        super().__init__()
        self.criterion = _core.MultiBoxLoss(preset, context=context, **overrides)
        self.num_pos = None

    @property
    def options(self):
        return self.criterion.options

    def forward(self, loc, conf, priors, gt_boxes, gt_labels, gt_counts, gt_flags=None,
                prior_levels=None):
        loss_loc, loss_conf, num_pos = MultiBoxLossFunction.apply(
            loc, conf, priors, gt_boxes, gt_labels, gt_counts, self.criterion, gt_flags,
            prior_levels)
        self.num_pos = num_pos
        return loss_loc, loss_conf

    def extra_repr(self):
        return repr(self.criterion.options)


def pack_targets(targets, device=None):
    """ssd.pytorch targets (a list of [n_i, 5] tensors: x1, y1, x2, y2,
    label) -> (gt_boxes [B,G,4] float32, gt_labels [B,G] int32, gt_counts [B]
    int32) on ``device`` (default: the first target's), G = max(1, max n_i)."""
    if not isinstance(targets, (list, tuple)):
        raise TypeError("targets: expected a list of [n_i, 5] tensors, got %s" % type(targets).__name__)
    if device is None:
        device = targets[0].device if len(targets) else torch.device("cpu")
    b = len(targets)
    rows = []
    for i, t in enumerate(targets):
        t = torch.as_tensor(t)
        if t.dim() != 2 or (t.shape[0] > 0 and t.shape[1] != 5):
            raise _core._invalid("targets[%d]: shape %s, expected [n, 5] (x1, y1, x2, y2, label)"
                                 % (i, list(t.shape)))
        rows.append(t.reshape(-1, 5).to(device=device, dtype=torch.float32))
    counts = torch.tensor([r.shape[0] for r in rows], dtype=torch.int64)
    g = max(1, int(counts.max()) if b else 1)
    boxes = torch.zeros((b, g, 4), dtype=torch.float32, device=device)
    labels = torch.zeros((b, g), dtype=torch.int32, device=device)
    if b and int(counts.sum()) > 0:
        cat = torch.cat(rows, 0)
        img = torch.repeat_interleave(torch.arange(b), counts)
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(cat.shape[0]) - torch.repeat_interleave(starts, counts)
        img, pos = img.to(device), pos.to(device)
        boxes[img, pos] = cat[:, :4]
        labels[img, pos] = cat[:, 4].round().to(torch.int32)
    return boxes, labels, counts.to(device=device, dtype=torch.int32)


class MultiBoxLoss(torch.nn.Module):
    """Drop-in for amdegroot/ssd.pytorch's ``MultiBoxLoss``.

    ``MultiBoxLoss(num_classes, overlap_thresh, prior_for_matching, bkg_label,
    neg_mining, neg_pos, neg_overlap, encode_target, use_gpu=True)``;
    ``forward((loc_data, conf_data, priors), targets) -> (loss_l, loss_c)``
    with targets a list of [n_i, 5] tensors (x1, y1, x2, y2, label in
    0..num_classes-2). Computes the ``ssd_pytorch`` preset with
    pos/neg threshold = overlap_thresh and neg_pos_ratio = neg_pos.
    As in ssd.pytorch, prior_for_matching, neg_mining, neg_overlap and
    encode_target are accepted and have no effect; use_gpu is not needed
    (targets are moved to loc_data's device). bkg_label must be 0. Keyword
    ``variance`` (default ssd.pytorch's (0.1, 0.2)) and ``context`` are
    extras. Differences from ssd.pytorch (mbx README / docs/SPEC.md §6): no NaN for a
    batch without positives, images without GT allowed, per-row stable
    log-sum-exp, ties broken by prior index.
    """

    def __init__(self, num_classes, overlap_thresh, prior_for_matching, bkg_label, neg_mining,
                 neg_pos, neg_overlap, encode_target, use_gpu=True, *, variance=(0.1, 0.2),
                 context=None):
        super().__init__()
        if int(bkg_label) != 0:
            raise ValueError("bkg_label = %r: mbx puts the background in column 0 "
                             "(bkg_label must be 0)" % (bkg_label,))
        self.num_classes = int(num_classes)
        self.threshold = float(overlap_thresh)
        self.background_label = int(bkg_label)
        self.encode_target = encode_target
        self.use_prior_for_matching = prior_for_matching
        self.do_neg_mining = neg_mining
        self.negpos_ratio = neg_pos
        self.neg_overlap = neg_overlap
        self.use_gpu = use_gpu
        v = [float(x) for x in variance]
        if len(v) == 2:
            v = [v[0], v[0], v[1], v[1]]
        self.variance = v
        self.criterion = _core.MultiBoxLoss(
            "ssd_pytorch", context=context, pos_threshold=self.threshold,
            neg_threshold=self.threshold, neg_pos_ratio=float(neg_pos), variances=v)
        self.num_pos = None

    def forward(self, predictions, targets):
        loc_data, conf_data, priors = predictions[0], predictions[1], predictions[2]
        if conf_data.dim() != 3 or conf_data.shape[2] != self.num_classes:
            raise _core._invalid("conf_data: shape %s, expected [B, P, num_classes=%d]"
                                 % (list(conf_data.shape), self.num_classes))
        priors = priors[: loc_data.size(1), :]
        boxes, labels, counts = pack_targets(targets, loc_data.device)
        loss_l, loss_c, num_pos = MultiBoxLossFunction.apply(
            loc_data, conf_data, priors, boxes, labels, counts, self.criterion)
        self.num_pos = num_pos
        return loss_l, loss_c


def priors_ssd(config="voc", device=None):
    """``mbx.priors_ssd`` as a torch tensor (CENTER_SIZE, float32)."""
    return torch.from_numpy(_core.priors_ssd(config)).to(device or "cpu")


def priors_retinanet(image_height, image_width, device=None):
    """``mbx.priors_retinanet`` as a torch tensor (CORNERS, pixels, float32)."""
    return torch.from_numpy(_core.priors_retinanet(image_height, image_width)).to(device or "cpu")


def priors_retinanet_levels(image_height, image_width, device=None):
    """``mbx.priors_retinanet_levels`` as a torch tensor (int32 [5])."""
    return torch.from_numpy(_core.priors_retinanet_levels(image_height, image_width)).to(
        device or "cpu")



from ._torchvision import all_reduced_positives, use_mbx_loss  # noqa: E402
