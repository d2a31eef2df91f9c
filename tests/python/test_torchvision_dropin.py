"""mbx.torch.use_mbx_loss on torchvision's SSD, SSDlite and RetinaNet models.

The patched model's losses and parameter gradients after backward() must
equal the unpatched model's. Random weights (weights=None,
weights_backbone=None: nothing is downloaded), small images and few
classes. torchvision decides matches on float32 IoU, mbx on float64 (docs/SPEC.md
§2): the unpatched model runs with torchvision.ops.boxes.box_iou computing
in float64 (as tests/bench/compare.py does), so both make the same
decisions; everything else is torchvision's own float32 code.
"""

import copy
import math

import pytest

import mbx
from conftest import cuda_ok

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
import mbx.torch  # noqa: E402
from torchvision.models import detection  # noqa: E402
from torchvision.models.detection import _utils as det_utils  # noqa: E402
from torchvision.ops import boxes as box_ops  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not cuda_ok(), reason="no CUDA device"))]

# name -> (builder kwargs, num_classes, first label, image size, batch)
MODELS = {
    "ssd300_vgg16": ({}, 5, 1, (120, 150), 2),
    "ssdlite320_mobilenet_v3_large": ({}, 5, 1, (160, 200), 3),
    "retinanet_resnet50_fpn": ({"min_size": 128, "max_size": 160}, 4, 0, (128, 160), 2),
}
_BUILT = {}


def build(name):
    """One model per name per session (ssd300_vgg16 takes seconds to build)."""
    if name not in _BUILT:
        kwargs, k = MODELS[name][:2]
        torch.manual_seed(0)
        _BUILT[name] = getattr(detection, name)(weights=None, weights_backbone=None, num_classes=k,
                                                **kwargs)
    return copy.deepcopy(_BUILT[name])


def make_targets(seed, batch, hw, num_classes, first_label, counts=(3, 0, 5, 1)):
    """Boxes in the input image's pixels (the transform rescales them); the
    second image has none."""
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    out = []
    for b in range(batch):
        n = counts[b % len(counts)]
        xy = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
        wh = torch.rand(n, 2, generator=g) * torch.tensor([w * 0.35, h * 0.35]) + 8
        out.append({"boxes": torch.cat([xy, xy + wh], 1),
                    "labels": torch.randint(first_label, num_classes, (n,), generator=g)})
    return out


class float64_iou:
    """torchvision's box_iou in float64 while active (SSD.forward and
    RetinaNet.compute_loss look it up in torchvision.ops.boxes at call time)."""

    def __enter__(self):
        self.orig = box_ops.box_iou
        box_ops.box_iou = lambda a, b: self.orig(a.double(), b.double()).to(a.dtype)
        return self

    def __exit__(self, *exc):
        box_ops.box_iou = self.orig


def to_device(targets, device):
    return [{k: v.to(device) for k, v in t.items()} for t in targets]


def step(model, images, targets, iou64=False):
    """Losses (dict of floats) and parameter gradients of one training step."""
    model.train()
    model.zero_grad(set_to_none=True)
    if iou64:
        with float64_iou():
            losses = model(images, copy.deepcopy(targets))
    else:
        losses = model(images, copy.deepcopy(targets))
    sum(losses.values()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: float(v.detach()) for k, v in losses.items()}, list(losses), grads


def assert_same_step(ref, got, rtol=1e-5):
    (l_ref, keys_ref, g_ref), (l_got, keys_got, g_got) = ref, got
    assert keys_got == keys_ref
    for k in keys_ref:
        assert l_got[k] == pytest.approx(l_ref[k], rel=rtol), k
    assert set(g_ref) == set(g_got)
    # Gradients that are zero in exact arithmetic (a bias followed by batch
    # norm) hold rounding noise: the absolute tolerance follows the largest.
    top = max(float(g.abs().max()) for g in g_ref.values())
    for n in g_ref:
        torch.testing.assert_close(g_got[n], g_ref[n], rtol=1e-4, atol=2e-5 * top, msg=n)


@pytest.fixture
def exact_cuda():
    """CUDA: full float32 convolutions (no TF32) and deterministic cuDNN
    algorithms, so that the network itself adds no difference between the
    two models' parameter gradients beyond the loss's."""
    b = torch.backends
    saved = (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark)
    b.cudnn.allow_tf32 = b.cuda.matmul.allow_tf32 = False
    b.cudnn.deterministic, b.cudnn.benchmark = True, False
    yield
    b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark = saved


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_torchvision(name, device, exact_cuda):
    _, k, first, hw, batch = MODELS[name]
    ref_model = build(name).to(device)
    model = mbx.torch.use_mbx_loss(copy.deepcopy(ref_model))
    torch.manual_seed(1)
    images = [torch.rand(3, *hw, device=device) for _ in range(batch)]
    targets = to_device(make_targets(2, batch, hw, k, first), device)
    ref = step(ref_model, images, targets, iou64=True)
    got = step(model, images, targets)
    assert_same_step(ref, got)
    assert model.mbx_loss.num_pos[1] == 0  # the image without boxes


def _settings_model():
    """An SSDlite with every setting the drop-in reads changed from the default."""
    model = build("ssdlite320_mobilenet_v3_large")
    model.neg_to_pos_ratio = 2.0
    model.box_coder = det_utils.BoxCoder(weights=(5.0, 5.0, 2.0, 2.0))
    model.proposal_matcher = det_utils.SSDMatcher(0.4)
    return model


def test_settings_are_read_from_the_model():
    ref_model = _settings_model()
    model = mbx.torch.use_mbx_loss(copy.deepcopy(ref_model))
    o = model.mbx_loss.criterion.options.to_dict()
    assert o["neg_pos_ratio"] == 2.0
    assert o["variances"] == pytest.approx([0.2, 0.2, 0.5, 0.5])
    assert (o["pos_threshold"], o["neg_threshold"]) == pytest.approx((0.4, 0.4))
    assert o["force_match"] == "BEST_PRIOR_PER_GT"
    _, k, first, hw, batch = MODELS["ssdlite320_mobilenet_v3_large"]
    images = [torch.rand(3, *hw) for _ in range(2)]
    targets = make_targets(5, 2, hw, k, first)
    assert_same_step(step(ref_model, images, targets, iou64=True), step(model, images, targets))
    # The original matcher is kept, SSD.forward gets a pass-through.
    assert model.proposal_matcher.matcher.high_threshold == 0.4
    x = torch.rand(2, 3)
    assert model.proposal_matcher(x) is x
    # Options override what the model says.
    model = mbx.torch.use_mbx_loss(copy.deepcopy(ref_model), neg_pos_ratio=5)
    assert model.mbx_loss.criterion.options["neg_pos_ratio"] == 5.0


def test_retinanet_settings():
    model = mbx.torch.use_mbx_loss(build("retinanet_resnet50_fpn"))
    o = model.mbx_loss.criterion.options.to_dict()
    assert (o["conf_loss"], o["focal_alpha"], o["focal_gamma"]) == ("SIGMOID_FOCAL", 0.25, 2.0)
    assert (o["loc_loss"], o["force_match"], o["normalization"]) == ("L1", "LOW_QUALITY", "PER_IMAGE")
    assert (o["pos_threshold"], o["neg_threshold"]) == pytest.approx((0.5, 0.4))
    assert o["variances"] == [1.0, 1.0, 1.0, 1.0]
    model = build("retinanet_resnet50_fpn")
    model.head.regression_head._loss_type = "smooth_l1"
    o = mbx.torch.use_mbx_loss(model).mbx_loss.criterion.options.to_dict()
    assert (o["loc_loss"], o["smooth_l1_beta"]) == ("SMOOTH_L1", 1.0)


def _raises(model, match, **options):
    with pytest.raises(mbx.InvalidArgumentError, match=match):
        mbx.torch.use_mbx_loss(model, **options)


def test_unsupported_settings_raise():
    _raises(torch.nn.Linear(2, 2), "not a torchvision SSD or RetinaNet")
    m = build("ssdlite320_mobilenet_v3_large")
    m.proposal_matcher.allow_low_quality_matches = True
    _raises(m, "allow_low_quality_matches = True, the preset expects False")
    m = build("ssdlite320_mobilenet_v3_large")
    m.box_coder = det_utils.BoxCoder((10.0, 10.0, 5.0, 5.0), bbox_xform_clip=3.0)
    _raises(m, "bbox_xform_clip = 3.0")
    m = build("ssdlite320_mobilenet_v3_large")
    m.head = torch.nn.Identity()
    _raises(m, "non-standard head")
    r = build("retinanet_resnet50_fpn")
    r.proposal_matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=False)
    _raises(copy.deepcopy(r), "allow_low_quality_matches = False, the preset expects True")
    assert mbx.torch.use_mbx_loss(r, force_match="NONE").mbx_loss.criterion.options["force_match"] == "NONE"
    r = build("retinanet_resnet50_fpn")
    r.head.regression_head._loss_type = "focal_l1"  # a loss type mbx does not compute
    _raises(r, "_loss_type = 'focal_l1'")
    _raises(build("retinanet_resnet50_fpn"), "needs external_norm", normalization="EXTERNAL")
    _raises(build("retinanet_resnet50_fpn"), "validate", validate="later")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss_type", ["giou", "diou", "ciou"])
def test_retinanet_v2_matches_torchvision(loss_type, device, exact_cuda):
    """retinanet_resnet50_fpn_v2 trains with bbox_reg_loss_type "giou"
    (docs/SPEC.md §4.7); "diou" and "ciou" are the same head's other settings.
    torchvision decodes and evaluates the loss in float32, mbx in float64."""
    torch.manual_seed(0)
    ref_model = detection.retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=4,
                                                    min_size=128, max_size=160).to(device)
    ref_model.head.regression_head._loss_type = loss_type
    model = mbx.torch.use_mbx_loss(copy.deepcopy(ref_model))
    assert model.mbx_loss.criterion.options["loc_loss"] == loss_type.upper()
    torch.manual_seed(1)
    hw = (128, 160)
    images = [torch.rand(3, *hw, device=device) for _ in range(2)]
    targets = to_device(make_targets(2, 2, hw, 4, 0), device)
    assert_same_step(step(ref_model, images, targets, iou64=True), step(model, images, targets))
    assert model.mbx_loss.num_pos[1] == 0


# --- compute_loss called directly (no network): cheap checks -----------------

def _direct(name, batch=3, seed=0, dtype=torch.float32, device="cpu", counts=(3, 0, 5, 1)):
    """A patched model plus synthetic compute_loss inputs in the network's
    coordinates (anchors from a grid, boxes in pixels)."""
    model = mbx.torch.use_mbx_loss(build(name).to(device))
    ssd = name.startswith("ssd")
    k = MODELS[name][1]
    g = torch.Generator().manual_seed(seed)
    cs = torch.arange(8, dtype=torch.float32) * 16 + 8
    cy, cx = torch.meshgrid(cs, cs, indexing="ij")
    anchors = []
    for s in (20.0, 40.0):
        c = torch.stack([cx.flatten(), cy.flatten()], 1)
        anchors.append(torch.cat([c - s / 2, c + s / 2], 1))
    anchors = torch.cat(anchors).to(device)
    targets = to_device(make_targets(seed, batch, (128, 128), k, 1 if ssd else 0, counts), device)
    p = anchors.shape[0]
    loc = torch.randn(batch, p, 4, generator=g).to(device=device, dtype=dtype).requires_grad_()
    conf = (2 * torch.randn(batch, p, k, generator=g)).to(device=device, dtype=dtype).requires_grad_()
    return model, targets, {"bbox_regression": loc, "cls_logits": conf}, [anchors] * batch


def test_pack_detection_targets():
    from mbx._torchvision import pack_detection_targets
    targets = make_targets(0, 4, (100, 100), 5, 1, counts=(2, 0, 3, 1))
    (boxes, labels, counts), _ = pack_detection_targets(targets, "cpu", label_offset=1)
    assert boxes.shape == (4, 3, 4) and boxes.dtype == torch.float32
    assert labels.dtype == torch.int32 and counts.dtype == torch.int32
    assert counts.tolist() == [2, 0, 3, 1]
    for b, t in enumerate(targets):
        n = len(t["labels"])
        assert torch.equal(boxes[b, :n], t["boxes"]) and not boxes[b, n:].any()
        assert torch.equal(labels[b, :n].long(), t["labels"] - 1) and not labels[b, n:].any()
    (boxes, labels, counts), _ = pack_detection_targets(make_targets(0, 2, (9, 9), 3, 1, counts=(0,)), "cpu")
    assert boxes.shape == (2, 1, 4) and counts.tolist() == [0, 0]
    with pytest.raises(mbx.InvalidArgumentError, match=r"targets\[0\]\['boxes'\]: shape \[3\]"):
        pack_detection_targets([{"boxes": torch.zeros(3), "labels": torch.zeros(3)}], "cpu")


@pytest.mark.parametrize("name", ["ssdlite320_mobilenet_v3_large", "retinanet_resnet50_fpn"])
def test_external_normalization(name):
    model, targets, head, anchors = _direct(name)
    base = model.compute_loss(targets, head, anchors, None)
    g_base = torch.autograd.grad(sum(base.values()), list(head.values()))
    num_pos = model.mbx_loss.num_pos
    total = max(1, int(num_pos.sum()))
    for ext in (lambda n: n.sum().clamp(min=1), total, torch.tensor(float(total))):
        ext_model = mbx.torch.use_mbx_loss(build(name), normalization="EXTERNAL", external_norm=ext)
        got = ext_model.compute_loss(targets, head, anchors, None)
        g_got = torch.autograd.grad(sum(got.values()), list(head.values()))
        if name.startswith("ssd"):  # TOTAL_POSITIVES: the same as N = total positives
            for k in base:
                assert float(got[k]) == pytest.approx(float(base[k]), rel=1e-6)
            for a, b in zip(g_got, g_base):
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
        else:  # sums / N: check against NONE / N
            plain = mbx.torch.use_mbx_loss(build(name), normalization="NONE").compute_loss(
                targets, head, anchors, None)
            for k in base:
                assert float(got[k]) == pytest.approx(float(plain[k]) / total, rel=1e-6)


def test_deepcopy_of_a_patched_model():
    """An EMA-style deepcopy: the copy has its own loss object (own context)
    and computes the same."""
    model, targets, head, anchors = _direct("retinanet_resnet50_fpn")
    twin = copy.deepcopy(model)
    assert twin.compute_loss is twin.mbx_loss and twin.mbx_loss is not model.mbx_loss
    assert twin.mbx_loss.criterion.context is not model.mbx_loss.criterion.context
    a = model.compute_loss(targets, head, anchors)
    b = twin.compute_loss(targets, head, anchors)
    assert {k: float(v) for k, v in a.items()} == {k: float(v) for k, v in b.items()}


def test_invalid_targets_raise_on_cpu():
    model, targets, head, anchors = _direct("ssdlite320_mobilenet_v3_large")
    targets[0]["labels"][1] = 0  # SSD: 0 is the background, not a class
    with pytest.raises(mbx.InvalidArgumentError, match=r"gt_labels\[image 0, row 1\] = -1: .*"
                       r"targets\[b\]\['labels'\]\[g\] - 1 \(torchvision SSD"):
        model.compute_loss(targets, head, anchors, None)
    targets[0]["labels"][1] = 1
    targets[1] = {"boxes": torch.tensor([[5.0, 5.0, 5.0, 9.0]]), "labels": torch.tensor([1])}
    with pytest.raises(mbx.InvalidArgumentError, match=r"gt_boxes\[image 1, row 0\].*x2 <= x1"):
        model.compute_loss(targets, head, anchors, None)
    model, targets, head, anchors = _direct("retinanet_resnet50_fpn")
    targets[2]["labels"][0] = 4  # RetinaNet with 4 classes: 0..3
    with pytest.raises(mbx.InvalidArgumentError, match="label"):
        model.compute_loss(targets, head, anchors)


def test_anchor_checks():
    model, targets, head, anchors = _direct("retinanet_resnet50_fpn")
    with pytest.raises(mbx.InvalidArgumentError, match=r"anchors\[1\]: shape"):
        model.compute_loss(targets, head, [anchors[0], anchors[0][:-1], anchors[0]])
    model.mbx_loss.stock_anchors = False  # as for a custom anchor generator
    moved = [anchors[0], anchors[0] + 1, anchors[0]]
    with pytest.raises(mbx.InvalidArgumentError, match="anchors differ"):
        model.compute_loss(targets, head, moved)
    model.mbx_loss.check_anchors = False
    model.compute_loss(targets, head, moved)


@pytest.mark.parametrize("name", ["ssdlite320_mobilenet_v3_large", "retinanet_resnet50_fpn"])
def test_low_precision_head_outputs(name):
    """bf16 head outputs (CPU autocast): the loss of the rounded values, the
    gradients in bf16."""
    model, targets, head, anchors = _direct(name, dtype=torch.bfloat16)
    got = model.compute_loss(targets, head, anchors, None)
    grads = torch.autograd.grad(sum(got.values()), list(head.values()))
    assert all(g.dtype == torch.bfloat16 for g in grads)
    head32 = {k: v.detach().float().requires_grad_() for k, v in head.items()}
    want = model.compute_loss(targets, head32, anchors, None)
    grads32 = torch.autograd.grad(sum(want.values()), list(head32.values()))
    for k in want:
        assert float(got[k]) == pytest.approx(float(want[k]), rel=1e-6)
    for a, b in zip(grads, grads32):
        torch.testing.assert_close(a.float(), b, rtol=1e-2, atol=1e-2 * float(b.abs().max()))


def test_autocast_cpu_step():
    """A whole step under CPU autocast (bf16) runs (RetinaNet: torch 1.13 has
    no bf16 CPU backward for MobileNetV3's hardswish)."""
    _, k, first, hw, batch = MODELS["retinanet_resnet50_fpn"]
    model = mbx.torch.use_mbx_loss(build("retinanet_resnet50_fpn"))
    images = [torch.rand(3, *hw) for _ in range(2)]
    targets = make_targets(3, 2, hw, k, first)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, copy.deepcopy(targets))
    sum(losses.values()).backward()
    assert all(math.isfinite(float(v)) for v in losses.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.skipif(not hasattr(torch, "compile"), reason="torch.compile needs torch >= 2")
def test_torch_compile():
    _, k, first, hw, batch = MODELS["ssdlite320_mobilenet_v3_large"]
    model = mbx.torch.use_mbx_loss(build("ssdlite320_mobilenet_v3_large"))
    for m in model.modules():  # eval-mode batch norm: the two runs see the same statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    images = [torch.rand(3, *hw) for _ in range(2)]
    targets = make_targets(4, 2, hw, k, first)
    eager = model(images, copy.deepcopy(targets))
    compiled = torch.compile(model, backend="eager")(images, copy.deepcopy(targets))
    for key in eager:
        assert float(compiled[key]) == pytest.approx(float(eager[key]), rel=1e-5)
    sum(compiled.values()).backward()


# --- CUDA only ------------------------------------------------------------------

@pytest.mark.skipif(not cuda_ok(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_autocast_step(dtype):
    name = "retinanet_resnet50_fpn"
    _, k, first, hw, batch = MODELS[name]
    ref_model = build(name).cuda()
    model = mbx.torch.use_mbx_loss(copy.deepcopy(ref_model))
    images = [torch.rand(3, *hw, device="cuda") for _ in range(batch)]
    targets = to_device(make_targets(6, batch, hw, k, first), "cuda")
    with torch.autocast("cuda", dtype=dtype):
        ref = step(ref_model, images, targets, iou64=True)
        got = step(model, images, targets)
    for key in ref[0]:
        assert got[0][key] == pytest.approx(ref[0][key], rel=2e-2, abs=1e-3)
    assert all(torch.isfinite(g).all() for g in got[2].values())


@pytest.mark.skipif(not cuda_ok(), reason="no CUDA device")
def test_cuda_deferred_validation():
    model, targets, head, anchors = _direct("ssdlite320_mobilenet_v3_large", device="cuda")
    model.compute_loss(targets, head, anchors, None)
    model.mbx_loss.check()  # a good batch: nothing to report
    bad = copy.deepcopy(targets)
    bad[2]["labels"][1] = 9
    model.compute_loss(bad, head, anchors, None)  # not stalled: reported later
    with pytest.raises(mbx.InvalidArgumentError, match="targets of training step 2 are invalid.*label"):
        model.mbx_loss.check()
    model.compute_loss(targets, head, anchors, None)
    model.mbx_loss.check()
    sync = mbx.torch.use_mbx_loss(build("ssdlite320_mobilenet_v3_large").cuda(), validate="sync")
    with pytest.raises(mbx.InvalidArgumentError, match="label"):
        sync.compute_loss(bad, head, anchors, None)


@pytest.mark.skipif(not cuda_ok() or not hasattr(torch, "compile"), reason="CUDA and torch >= 2")
def test_cuda_torch_compile():
    name = "ssdlite320_mobilenet_v3_large"
    _, k, first, hw, batch = MODELS[name]
    model = mbx.torch.use_mbx_loss(build(name).cuda())
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    images = [torch.rand(3, *hw, device="cuda") for _ in range(2)]
    targets = to_device(make_targets(4, 2, hw, k, first), "cuda")
    eager = model(images, copy.deepcopy(targets))
    # aot_eager: forward and backward traced by AOTAutograd around the graph
    # break at compute_loss, without inductor's minutes of compilation.
    compiled = torch.compile(model, backend="aot_eager")(images, copy.deepcopy(targets))
    for key in eager:
        assert float(compiled[key]) == pytest.approx(float(eager[key]), rel=1e-4)
    sum(compiled.values()).backward()
