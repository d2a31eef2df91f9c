"""torchvision SSD / SSDlite / RetinaNet training on mbx's loss.

``use_mbx_loss(model)`` replaces ``model.compute_loss`` of a torchvision
``SSD`` (ssd300_vgg16, ssdlite320_mobilenet_v3_large) or ``RetinaNet``
(retinanet_resnet50_fpn) with mbx's fused forward+backward; see its
docstring. Imported by ``mbx.torch``; torchvision is imported only when
``use_mbx_loss`` is called.
"""

import inspect
import math

import numpy as np
import torch

from . import _core

__all__ = ["use_mbx_loss", "all_reduced_positives", "pack_detection_targets"]

_DEFAULT_CLIP = math.log(1000.0 / 16)
_EXTRA = ("validate", "external_norm", "context", "check_anchors")


def _unsupported(what):
    return _core._invalid("use_mbx_loss: %s" % what)


# ---------------------------------------------------------------------------
# Reading the model's settings
# ---------------------------------------------------------------------------

def _tv():
    try:
        from torchvision.models.detection import _utils as det_utils
        from torchvision.models.detection import anchor_utils, retinanet, ssd, ssdlite
    except ImportError as exc:  # pragma: no cover - torchvision is optional
        raise ImportError("mbx.torch.use_mbx_loss needs torchvision: %s" % exc) from exc
    return det_utils, anchor_utils, retinanet, ssd, ssdlite


def _box_coder(coder, where, derived):
    det_utils = _tv()[0]
    if type(coder) is not det_utils.BoxCoder:
        raise _unsupported("%s is a %s, expected torchvision's BoxCoder" % (where, type(coder).__name__))
    w = [float(x) for x in coder.weights]
    if len(w) != 4 or min(w) <= 0:
        raise _unsupported("%s.weights = %r: expected four positive numbers" % (where, coder.weights))
    clip = float(getattr(coder, "bbox_xform_clip", _DEFAULT_CLIP))
    if clip != _DEFAULT_CLIP:
        raise _unsupported("%s.bbox_xform_clip = %r, mbx assumes torchvision's default log(1000/16) = %r"
                           % (where, clip, _DEFAULT_CLIP))
    derived["variances"] = [1.0 / x for x in w]  # BoxCoder weights are 1 / variances


def _matcher(matcher, where, want_low_quality, derived, options):
    th = (float(matcher.high_threshold), float(matcher.low_threshold))
    derived["pos_threshold"], derived["neg_threshold"] = th
    low = bool(getattr(matcher, "allow_low_quality_matches", False))
    if low != want_low_quality and "force_match" not in options:
        raise _unsupported("%s.allow_low_quality_matches = %r, the preset expects %r (pass force_match=... "
                           "to choose mbx's matching explicitly)" % (where, low, want_low_quality))


def _ssd_settings(model, options):
    det_utils, anchor_utils, _, ssd, ssdlite = _tv()
    if type(model).compute_loss is not ssd.SSD.compute_loss:
        raise _unsupported("%s overrides SSD.compute_loss" % type(model).__name__)
    if type(model.head) not in (ssd.SSDHead, ssdlite.SSDLiteHead):
        raise _unsupported("model.head is a %s, expected torchvision's SSDHead or SSDLiteHead "
                           "(a non-standard head)" % type(model.head).__name__)
    derived = {}
    _box_coder(model.box_coder, "model.box_coder", derived)
    matcher = _original_matcher(model)
    if type(matcher) is not det_utils.SSDMatcher:
        raise _unsupported("model.proposal_matcher is a %s, expected torchvision's SSDMatcher "
                           "(best prior per GT)" % type(matcher).__name__)
    _matcher(matcher, "model.proposal_matcher", False, derived, options)
    derived["neg_pos_ratio"] = float(model.neg_to_pos_ratio)
    stock = type(model.anchor_generator) is anchor_utils.DefaultBoxGenerator
    return "torchvision_ssd", derived, 1, stock


def _retinanet_settings(model, options):
    det_utils, anchor_utils, retinanet, _, _ = _tv()
    if type(model).compute_loss is not retinanet.RetinaNet.compute_loss:
        raise _unsupported("%s overrides RetinaNet.compute_loss" % type(model).__name__)
    head = model.head
    if (type(head) is not retinanet.RetinaNetHead
            or type(head.classification_head) is not retinanet.RetinaNetClassificationHead
            or type(head.regression_head) is not retinanet.RetinaNetRegressionHead):
        raise _unsupported("model.head is a %s (classification %s, regression %s), expected torchvision's "
                           "RetinaNetHead (a non-standard head)" % (
                               type(head).__name__,
                               type(getattr(head, "classification_head", None)).__name__,
                               type(getattr(head, "regression_head", None)).__name__))
    derived = {}
    reg = head.regression_head
    loss_type = getattr(reg, "_loss_type", "l1")
    if loss_type == "l1":
        derived["loc_loss"] = "L1"
    elif loss_type == "smooth_l1":  # torchvision's _box_loss: beta 1.0 (no cnf is passed)
        derived["loc_loss"], derived["smooth_l1_beta"] = "SMOOTH_L1", 1.0
    elif loss_type in ("giou", "diou", "ciou"):  # retinanet_resnet50_fpn_v2: "giou"; eps 1e-7 (no cnf)
        derived["loc_loss"] = loss_type.upper()
    elif "loc_loss" not in options:
        raise _unsupported("model.head.regression_head._loss_type = %r; mbx computes 'l1', 'smooth_l1', "
                           "'giou', 'diou' or 'ciou' regression losses" % (loss_type,))
    _box_coder(reg.box_coder, "model.head.regression_head.box_coder", derived)
    matcher = model.proposal_matcher
    if type(matcher) is not det_utils.Matcher:
        raise _unsupported("model.proposal_matcher is a %s, expected torchvision's Matcher"
                           % type(matcher).__name__)
    _matcher(matcher, "model.proposal_matcher", True, derived, options)
    if head.classification_head.BETWEEN_THRESHOLDS != det_utils.Matcher.BETWEEN_THRESHOLDS:
        raise _unsupported("model.head.classification_head.BETWEEN_THRESHOLDS differs from the Matcher's")
    # RetinaNetClassificationHead.compute_loss calls sigmoid_focal_loss without
    # alpha / gamma: its defaults are what torchvision uses.
    from torchvision.ops import sigmoid_focal_loss
    sig = inspect.signature(sigmoid_focal_loss).parameters
    derived["focal_alpha"] = float(sig["alpha"].default)
    derived["focal_gamma"] = float(sig["gamma"].default)
    stock = type(model.anchor_generator) is anchor_utils.AnchorGenerator
    return "torchvision_retinanet", derived, 0, stock


def _original_matcher(model):
    m = model.proposal_matcher
    return m.matcher if isinstance(m, _PassThroughMatcher) else m


class _PassThroughMatcher:
    """Stands in for an SSD's proposal_matcher once its loss is mbx's: SSD.forward
    still runs its per-image box_iou loop and hands the results to compute_loss,
    which no longer reads them, so the matcher returns its input untouched
    (no kernel). The original is ``.matcher``."""

    def __init__(self, matcher):
        self.matcher = matcher

    def __call__(self, match_quality_matrix):
        return match_quality_matrix

    def __getattr__(self, name):  # thresholds etc. of the original
        if name == "matcher":
            raise AttributeError(name)
        return getattr(self.matcher, name)


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------

def pack_detection_targets(targets, device, label_offset=0):
    """torchvision target dicts -> (gt_boxes [B,G,4] float32, gt_labels [B,G]
    int32 = labels - label_offset, gt_counts [B] int32) on ``device``,
    G = max(1, max n_i), without a per-image loop over tensors or a host sync:
    one cat of the boxes, one of the labels, one host-built index (from the
    boxes' shapes, host metadata) copied to the device asynchronously from
    pinned memory, and one scatter into zeroed padded tensors."""
    if not isinstance(targets, (list, tuple)):
        raise _core._invalid("targets: expected a list of dicts with 'boxes' and 'labels', got %s"
                             % type(targets).__name__)
    device = torch.device(device)
    boxes, labels = [], []
    for i, t in enumerate(targets):
        try:
            b, l = t["boxes"], t["labels"]
        except (KeyError, TypeError, IndexError):
            raise _core._invalid("targets[%d]: expected a dict with 'boxes' and 'labels'" % i) from None
        if b.dim() != 2 or b.shape[1] != 4:
            raise _core._invalid("targets[%d]['boxes']: shape %s, expected [n, 4] (x1, y1, x2, y2)"
                                 % (i, list(b.shape)))
        if tuple(l.shape) != (b.shape[0],):
            raise _core._invalid("targets[%d]['labels']: shape %s, expected [%d] (one per box)"
                                 % (i, list(l.shape), b.shape[0]))
        if l.dtype.is_floating_point or l.dtype == torch.bool:
            raise _core._invalid("targets[%d]['labels']: dtype %s, expected an integer dtype" % (i, l.dtype))
        boxes.append(b)
        labels.append(l)
    counts = np.fromiter((b.shape[0] for b in boxes), np.int64, len(boxes))
    nb = len(boxes)
    n = int(counts.sum())
    g = max(1, int(counts.max()) if nb else 1)
    # One int64 host array: [counts..., flat row index b*G + j of every box...].
    meta = np.empty(nb + n, np.int64)
    meta[:nb] = counts
    starts = np.cumsum(counts) - counts
    meta[nb:] = np.arange(n, dtype=np.int64) + np.repeat(np.arange(nb, dtype=np.int64) * g - starts, counts)
    meta = torch.from_numpy(meta)
    if device.type == "cuda":
        meta = meta.pin_memory().to(device, non_blocking=True)
    else:
        meta = meta.to(device)
    gt_counts = meta[:nb].to(torch.int32)
    gt_boxes = torch.zeros((nb * g, 4), dtype=torch.float32, device=device)
    gt_labels = torch.zeros((nb * g,), dtype=torch.int32, device=device)
    cat_boxes = cat_labels = None
    if n:
        idx = meta[nb:]
        cat_boxes = torch.cat(boxes).to(device=device, dtype=torch.float32)
        cat_labels = torch.cat(labels).to(device=device, dtype=torch.int32)
        if label_offset:
            cat_labels = cat_labels - label_offset
        gt_boxes.index_copy_(0, idx, cat_boxes)
        gt_labels.index_copy_(0, idx, cat_labels)
    return (gt_boxes.view(nb, g, 4), gt_labels.view(nb, g), gt_counts), (cat_boxes, cat_labels)


# ---------------------------------------------------------------------------
# The loss
# ---------------------------------------------------------------------------

def _compiler_disable(fn):
    """Run fn eagerly under torch.compile (a graph break): dynamo cannot
    trace the C call. torch < 2 has no compiler."""
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    if disable is None:
        dynamo = getattr(torch, "_dynamo", None)
        disable = getattr(dynamo, "disable", None)
    return disable(fn) if disable is not None else fn


class _Pending:
    __slots__ = ("flag", "event", "gt", "priors", "step")


class TorchvisionLoss:
    """What ``use_mbx_loss`` installs: ``model.compute_loss`` calls it.
    ``criterion`` is the mbx.MultiBoxLoss; ``num_pos`` the last call's
    positives per image ([B] int32 on the device); ``check()`` reports (raises
    for) any deferred CUDA target check still outstanding."""

    def __init__(self, kind, preset, options, label_offset, stock_anchors, external_norm, validate,
                 check_anchors, context):
        self.kind = kind
        self.label_offset = label_offset
        self.stock_anchors = stock_anchors
        self.check_anchors = check_anchors
        self.validate = validate
        self.external_norm = external_norm
        self.preset = preset
        self.options = dict(options)
        kernel_opts = dict(options)
        if str(kernel_opts.get("normalization", "")).upper() == "EXTERNAL":
            # Plain sums in the kernel; the division by the caller's N is a torch op
            # (so N may be a device tensor, e.g. all-reduced), gradients included.
            kernel_opts["normalization"] = "NONE"
            kernel_opts.pop("external_norm", None)
            self.external = True
        else:
            self.external = False
        self._kernel_opts = kernel_opts
        self.criterion = self._make_criterion(context)
        from .torch import MultiBoxLossFunction  # mbx.torch imports this module
        self._function = MultiBoxLossFunction
        self.num_pos = None
        self.steps = 0
        self._pending = []

    def _make_criterion(self, context=None):
        if context is None:
            # CUDA: the library's own GT validation copies the GT to the host (stream
            # syncs); here targets are checked on the device instead (validate="deferred").
            context = _core.Context(cuda_validation=(self.validate == "sync"))
        return _core.MultiBoxLoss(self.preset, context=context, **self._kernel_opts)

    # copy.deepcopy (e.g. an EMA copy of the model) and pickling: the same
    # settings on a new mbx context; pending checks and num_pos are not copied.
    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(criterion=None, num_pos=None, _pending=[])
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.criterion = self._make_criterion()

    # -- deferred validation (CUDA) -------------------------------------------------

    def _device_check(self, cat, num_classes, gt, priors):
        """One flag for the batch (any non-finite / degenerate box or label out
        of range), copied to pinned memory without waiting."""
        cat_boxes, cat_labels = cat
        if cat_boxes is None:
            return
        bad = ((~torch.isfinite(cat_boxes)).any(1) | (cat_boxes[:, 2] <= cat_boxes[:, 0])
               | (cat_boxes[:, 3] <= cat_boxes[:, 1]) | (cat_labels < 0) | (cat_labels >= num_classes))
        p = _Pending()
        p.flag = torch.empty((), dtype=torch.bool, pin_memory=True)
        p.flag.copy_(bad.any(), non_blocking=True)
        p.event = torch.cuda.Event()
        p.event.record()
        p.gt, p.priors, p.step = gt, priors, self.steps
        self._pending.append(p)

    def _poll(self, wait=False, num_classes=0):
        while self._pending:
            p = self._pending[0]
            # Wait only for a result at least two steps old (long done), never for this step's.
            if not (wait or len(self._pending) > 2 or p.event.query()):
                return
            p.event.synchronize()
            self._pending.pop(0)
            if bool(p.flag):
                self._pending.clear()
                self._explain(p, num_classes)

    def _explain(self, p, num_classes):
        gt = [t.cpu() for t in p.gt]
        try:
            _core.match(p.priors.cpu(), gt[0], gt[1], gt[2], preset=self.criterion.options,
                        num_classes=num_classes)
        except _core.Error as exc:
            raise _core._invalid("use_mbx_loss: the targets of training step %d are invalid (checked on the "
                                 "device, reported at step %d): %s" % (p.step, self.steps, self._reword(exc))
                                 ) from None
        raise _core._invalid("use_mbx_loss: the targets of training step %d have a non-finite or degenerate "
                             "box or a label out of range (checked on the device, reported at step %d)"
                             % (p.step, self.steps))

    def _reword(self, exc):
        """The library's message, plus how torchvision's labels map to it."""
        msg = str(exc)
        if self.label_offset and msg.startswith("gt_labels"):
            return _core._invalid("%s; gt_labels[b, g] is targets[b]['labels'][g] - %d (torchvision SSD: "
                                  "classes 1..C-1, 0 is the background)" % (msg, self.label_offset))
        return exc

    def check(self):
        """Wait for the deferred CUDA target checks and raise for a bad batch."""
        self._poll(wait=True, num_classes=self._num_classes)

    _num_classes = 0

    # -- the loss --------------------------------------------------------------------

    def _priors(self, anchors, num_priors):
        if not isinstance(anchors, (list, tuple)) or not anchors:
            raise _core._invalid("anchors: expected a non-empty list of [P, 4] tensors")
        a0 = anchors[0]
        for i, a in enumerate(anchors):
            if tuple(a.shape) != (num_priors, 4):
                raise _core._invalid("anchors[%d]: shape %s, expected [%d, 4] (the head's priors)"
                                     % (i, list(a.shape), num_priors))
        if len(anchors) > 1 and not self.stock_anchors and self.check_anchors:
            # A custom anchor generator: one comparison, one sync.
            if not bool(torch.stack(list(anchors)).eq(a0).all()):
                raise _core._invalid("anchors: the images' anchors differ; mbx takes one [P, 4] prior "
                                     "tensor per batch (batch images of one size)")
        return a0.detach().to(torch.float32)

    def __call__(self, targets, head_outputs, anchors, *unused):
        """compute_loss(targets, head_outputs, anchors[, matched_idxs]) -> loss dict
        (matched_idxs, SSD's, is not read)."""
        return self._forward(targets, head_outputs, anchors)

    def _forward(self, targets, head_outputs, anchors):
        loc = head_outputs["bbox_regression"]
        conf = head_outputs["cls_logits"]
        if loc.dim() != 3 or conf.dim() != 3 or loc.shape[:2] != conf.shape[:2] or loc.shape[2] != 4:
            raise _core._invalid("head_outputs: bbox_regression %s and cls_logits %s, expected [B, P, 4] "
                                 "and [B, P, C]" % (list(loc.shape), list(conf.shape)))
        if len(targets) != loc.shape[0]:
            raise _core._invalid("targets: %d images, the head outputs have %d" % (len(targets), loc.shape[0]))
        num_classes = conf.shape[2] - 1 if self.kind == "ssd" else conf.shape[2]
        self._num_classes = num_classes
        device = conf.device
        deferred = device.type == "cuda" and self.validate == "deferred"
        if deferred:
            self._poll(num_classes=num_classes)
        self.steps += 1
        priors = self._priors(anchors, loc.shape[1])
        gt, cat = pack_detection_targets(targets, device, self.label_offset)
        if deferred:
            self._device_check(cat, num_classes, gt, priors)
        try:
            loss_loc, loss_conf, num_pos = self._function.apply(loc, conf, priors, gt[0], gt[1], gt[2],
                                                                      self.criterion)
        except _core.InvalidArgumentError as exc:
            raise self._reword(exc) from None
        self.num_pos = num_pos
        if self.external:
            n = self.external_norm(num_pos) if callable(self.external_norm) else self.external_norm
            n = torch.as_tensor(n, device=device).to(loss_loc.dtype)
            loss_loc, loss_conf = loss_loc / n, loss_conf / n
        if self.kind == "ssd":  # the key order of each torchvision compute_loss
            return {"bbox_regression": loss_loc, "classification": loss_conf}
        return {"classification": loss_conf, "bbox_regression": loss_loc}


def all_reduced_positives(group=None):
    """``external_norm`` for DistributedDataParallel with
    ``normalization="EXTERNAL"``: N = max(1, positives summed over the ranks
    of ``group``) / world size, all-reduced on the device (no host sync).
    Each rank's loss is then world_size * (its sums) / N_global, so DDP's
    gradient averaging gives exactly the whole global batch's gradient, and
    the mean of the ranks' losses is the whole batch's loss."""
    import torch.distributed as dist

    def external_norm(num_pos):
        n = num_pos.sum().to(torch.float64)
        dist.all_reduce(n, group=group)
        return n.clamp(min=1) / dist.get_world_size(group)

    return external_norm


def use_mbx_loss(model, preset=None, **options):
    """Train a torchvision ``SSD`` (ssd300_vgg16, ssdlite320_mobilenet_v3_large)
    or ``RetinaNet`` (retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2) on mbx's fused loss; returns
    ``model``.

    ``model.compute_loss`` is replaced (an instance attribute), so that
    ``model(images, targets)`` in training mode returns torchvision's loss
    dict (``bbox_regression``, ``classification``) computed by one mbx call,
    differentiable in the head outputs through ``MultiBoxLossFunction``.

    Settings come from the model, not from assumptions: the preset
    (``torchvision_ssd`` / ``torchvision_retinanet``) from its type; the
    variances from its BoxCoder weights (1 / w); thresholds and force-match
    mode from its matcher; ``neg_pos_ratio`` from ``neg_to_pos_ratio``
    (SSD); the regression loss from ``regression_head._loss_type`` ("l1",
    "smooth_l1" with beta 1, or "giou" / "diou" / "ciou", docs/SPEC.md
    §4.7) and focal alpha / gamma from the defaults of
    ``torchvision.ops.sigmoid_focal_loss`` (RetinaNet's head calls it without
    them). ``preset`` and mbx option keywords (docs/SPEC.md §9 names) override them. A
    setting mbx does not reproduce raises ``mbx.InvalidArgumentError``
    naming it: another head, matcher or box coder type, a matcher whose
    ``allow_low_quality_matches`` differs from the preset (unless
    ``force_match`` is given), ``bbox_xform_clip`` other than log(1000/16),
    another regression loss type.

    Labels: SSD's 1..C-1 (0 = background) become mbx labels 0..C-2; RetinaNet's
    0..C-1 are mbx's (column k). Anchors: the ``anchors`` compute_loss gets
    (pixels, corners); mbx takes one prior tensor, ``anchors[0]``. The stock
    generators make every image's anchors from the padded batch's size, so
    they are equal; with another generator they are compared once per call
    (one sync; ``check_anchors=False`` skips it).

    Extra keywords:

    * ``validate``: what checks the GT values (finite, x2 > x1, y2 > y1,
      label in range) on CUDA, where the library's own check would copy the
      GT to the host and stall the stream. ``"deferred"`` (default): one flag
      computed on the device and copied asynchronously to pinned memory; a
      later call (or ``model.mbx_loss.check()``) reads it once done and
      raises the library's own message for that step. ``"sync"``: the
      library checks before computing (immediate, a few stream syncs per
      call). ``False``: no check (invalid rows are skipped on the device).
      On CPU the library always checks, immediately (there is no stream).
    * ``normalization="EXTERNAL"`` with ``external_norm``: a number, a tensor,
      or a callable ``f(num_pos) -> N`` (``num_pos`` [B] int32 on the device);
      losses are the plain sums / N. For DDP use
      ``external_norm=mbx.torch.all_reduced_positives()``.
    * ``context``: an ``mbx.Context`` (default: a new one for this model).
    * ``check_anchors``: see Anchors.

    SSD.forward's own per-image box_iou loop still runs (torchvision code
    before compute_loss); its matcher is replaced by a pass-through (the
    original stays in ``model.proposal_matcher.matcher``). Under
    torch.compile the loss runs eagerly (a graph break). The installed
    object is ``model.mbx_loss`` (``num_pos`` of the last call, ``check()``),
    also ``model.compute_loss``; ``copy.deepcopy(model)`` gives the copy its
    own. Not TorchScript-able; ``state_dict`` is unaffected. Where mbx
    differs from torchvision on purpose (README), the preset's choice holds:
    e.g. an SSD image whose 3 x positives exceed its negatives leaves the
    spare slots empty (``neg_overflow="DOUBLE_COUNT_POSITIVES"`` counts
    positives twice as torchvision does).
    """
    det_utils, _, retinanet, ssd, _ = _tv()
    extra = {k: options.pop(k) for k in _EXTRA if k in options}
    validate = extra.get("validate", "deferred")
    if validate is True:
        validate = "sync"
    if validate not in ("deferred", "sync", False, None):
        raise _core._invalid("validate: expected 'deferred', 'sync' or False, got %r" % (validate,))
    if isinstance(model, ssd.SSD):
        kind = "ssd"
        name, derived, offset, stock = _ssd_settings(model, options)
    elif isinstance(model, retinanet.RetinaNet):
        kind = "retinanet"
        name, derived, offset, stock = _retinanet_settings(model, options)
    else:
        raise _unsupported("%s is not a torchvision SSD or RetinaNet" % type(model).__name__)
    if preset is not None and preset != name:
        derived = {}  # an explicit preset: its own settings, with the options
    opts = dict(derived)
    opts.update(options)
    if str(opts.get("normalization", "")).upper() == "EXTERNAL":
        if "external_norm" not in extra and "external_norm" not in opts:
            raise _core._invalid("normalization='EXTERNAL' needs external_norm (a number, a tensor or "
                                 "a callable num_pos -> N; for DDP: mbx.torch.all_reduced_positives())")
        ext = extra.get("external_norm", opts.get("external_norm"))
    else:
        if "external_norm" in extra:
            raise _core._invalid("external_norm is given, but normalization is not 'EXTERNAL'")
        ext = None
    opts.pop("external_norm", None)
    loss = TorchvisionLoss(kind, preset or name, opts, offset, stock, ext, validate or False,
                           extra.get("check_anchors", True), extra.get("context"))
    if kind == "ssd" and not isinstance(model.proposal_matcher, _PassThroughMatcher):
        model.proposal_matcher = _PassThroughMatcher(model.proposal_matcher)
    if not getattr(TorchvisionLoss, "_compile_disabled", False):
        TorchvisionLoss.__call__ = _compiler_disable(TorchvisionLoss.__call__)
        TorchvisionLoss._compile_disabled = True
    model.mbx_loss = loss
    model.compute_loss = loss  # callable; one object, so deepcopy(model) keeps them together
    return model
