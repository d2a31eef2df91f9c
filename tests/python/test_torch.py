"""mbx.torch: autograd Function, gradcheck, nn.Modules and the drop-in for
amdegroot/ssd.pytorch's MultiBoxLoss (against a plain-torch re-implementation
of that loss written here)."""

import numpy as np
import pytest

import mbx
from conftest import INPUTS, assert_grad_close, cuda_ok, golden_cases, load_case
from problems import (grid_priors, random_gt, random_problem, torch_center_to_corners,
                      torch_pairwise_iou)

torch = pytest.importorskip("torch")
import mbx.torch as mt  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _t(arrays, device="cpu"):
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]


# --------------------------------------------------------------------------
# autograd Function
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case_dir", golden_cases()[:6])
def test_function_backward_matches_golden(case_dir):
    meta, arr = load_case(case_dir)
    p, b, l, c, lo, co = _t([arr[k] for k in INPUTS])
    lo.requires_grad_()
    co.requires_grad_()
    crit = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    loss_loc, loss_conf, num_pos = mt.MultiBoxLossFunction.apply(lo, co, p, b, l, c, crit)
    assert not num_pos.requires_grad
    np.testing.assert_array_equal(num_pos.numpy(), arr["num_pos"])
    assert loss_loc.item() == pytest.approx(float(arr["loss_loc"]), rel=1e-4)
    # Upstream gradients 2 and 3 scale each gradient.
    (2.0 * loss_loc + 3.0 * loss_conf).backward()
    assert_grad_close(lo.grad, 2.0 * arr["grad_loc"], "grad_loc")
    assert_grad_close(co.grad, 3.0 * arr["grad_conf"], "grad_conf")


def test_function_only_conf_requires_grad():
    p, b, l, c, lo, co = _t(random_problem(seed=3))
    co.requires_grad_()
    loss_loc, loss_conf = mt.multibox_loss(lo, co, p, b, l, c)
    assert not loss_loc.requires_grad and loss_conf.requires_grad
    loss_conf.backward()
    assert co.grad is not None and lo.grad is None


def test_no_grad_mode_forward_only():
    p, b, l, c, lo, co = _t(random_problem(seed=4))
    with torch.no_grad():
        loss_loc, loss_conf = mt.multibox_loss(lo, co, p, b, l, c)
    ref = mbx.MultiBoxLoss()(p, b, l, c, lo, co)
    assert loss_loc.item() == pytest.approx(ref.loss_loc.item(), rel=1e-6)
    assert loss_conf.dtype == torch.float32


def _gradcheck_inputs(seed, softmax, separated_mining=False, corners=False):
    priors, boxes, labels, counts, loc, conf = random_problem(
        seed=seed, batch=2, n_side=2, num_classes=2, max_gt=2, softmax=softmax, corners=corners)
    if separated_mining:
        # Background logits spaced 0.5 apart: the mined set cannot change
        # under perturbations of size eps.
        rng = np.random.default_rng(seed)
        conf = np.zeros_like(conf)
        for b in range(conf.shape[0]):
            conf[b, :, 0] = -0.5 * rng.permutation(conf.shape[1])
        conf += rng.normal(0, 0.01, size=conf.shape).astype(np.float32)
    # GT row 0 of each image: a slightly shifted prior, so that every preset
    # (also those without forced matching) has positives.
    corner = priors if corners else np.concatenate(
        [priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], 1)
    for b in range(boxes.shape[0]):
        boxes[b, 0] = corner[5 * b + 3] + np.float32(0.01)
    p, b, l, c = _t([priors, boxes, labels, counts])
    lo = torch.from_numpy(loc).double().requires_grad_()
    co = torch.from_numpy(conf).double().requires_grad_()
    return p, b, l, c, lo, co


# The library computes in float32 from float32 inputs (float64 on the
# cpu-scalar path, still from float32-rounded inputs). gradcheck perturbs the
# float64 inputs by eps before they are rounded to float32, so:
#  - default (SIMD float32) path: eps = 1e-2 keeps float32 noise (~1e-6 in
#    the loss, / 2 eps = 5e-5) and the O(eps^2) truncation error (~2e-5)
#    well below atol = 2e-3, rtol = 1e-2;
#  - cpu-scalar path (float64 math): eps = 1e-3, atol = 1e-4, rtol = 1e-3
#    (input rounding 6e-8 / eps = 6e-5 relative).
# Smooth L1 and the focal loss are C1, so kinks do not disturb the
# differences; the loss is piecewise smooth in (loc, conf) only if mining
# does not change under eps, hence neg_pos_ratio = 0 (all negatives) or
# well separated background logits.
GRADCHECK_SETTINGS = [("cpu", 1e-2, 2e-3, 1e-2), ("cpu-scalar", 1e-3, 1e-4, 1e-3)]


@pytest.mark.parametrize("path,eps,atol,rtol", GRADCHECK_SETTINGS)
@pytest.mark.parametrize("preset,overrides,softmax,separated", [
    ("ssd_pytorch", {"neg_pos_ratio": 0}, True, False),
    ("ssd_pytorch", {}, True, True),
    ("torchvision_ssd", {"normalization": "PER_IMAGE"}, True, True),
    ("yhenon_retinanet", {}, False, False),
    ("ssd_pytorch", {"conf_loss": "SIGMOID_FOCAL", "focal_gamma": 1.5, "normalization": "NONE"},
     False, False),
])
def test_gradcheck(preset, overrides, softmax, separated, path, eps, atol, rtol):
    p, b, l, c, lo, co = _gradcheck_inputs(7, softmax, separated, corners=preset != "ssd_pytorch")
    crit = mbx.MultiBoxLoss(preset, context=mbx.Context(path=path), **overrides)
    out = crit(p, b, l, c, lo.float(), co.float())
    assert int(out.num_pos.sum()) > 0  # the loc term is exercised

    def f(loc, conf):
        loss_loc, loss_conf, _ = mt.MultiBoxLossFunction.apply(loc, conf, p, b, l, c, crit)
        return loss_loc, loss_conf

    assert torch.autograd.gradcheck(f, (lo, co), eps=eps, atol=atol, rtol=rtol)


def test_float64_inputs_give_float64_outputs():
    p, b, l, c, lo, co = _gradcheck_inputs(1, True)
    loss_loc, loss_conf = mt.multibox_loss(lo, co, p, b, l, c)
    assert loss_loc.dtype == torch.float64
    (loss_loc + loss_conf).backward()
    assert lo.grad.dtype == torch.float64 and co.grad.dtype == torch.float64


def test_loss_module_and_num_pos():
    p, b, l, c, lo, co = _t(random_problem(seed=5, softmax=False, corners=True))
    co.requires_grad_()
    lo.requires_grad_()
    m = mt.Loss("torchvision_retinanet")
    loss_loc, loss_conf = m(lo, co, p, b, l, c)
    ref = mbx.MultiBoxLoss("torchvision_retinanet")(p, b, l, c, lo, co)
    assert loss_conf.item() == pytest.approx(ref.loss_conf.item(), rel=1e-6)
    np.testing.assert_array_equal(m.num_pos.numpy(), ref.num_pos.numpy())
    (loss_loc + loss_conf).backward()
    np.testing.assert_allclose(co.grad.numpy(), ref.grad_conf.numpy(), rtol=1e-6, atol=1e-9)
    assert "torchvision_retinanet" in repr(m)


# --------------------------------------------------------------------------
# ssd.pytorch drop-in
# --------------------------------------------------------------------------

def ssd_pytorch_reference(loc_data, conf_data, priors, targets, threshold, variance, negpos_ratio):
    """ssd.pytorch's MultiBoxLoss.forward, re-done in plain torch: forced
    best prior per GT, thresholded matching, center-size encoding, smooth L1
    on positives, hard negative mining by the batch-max log-sum-exp CE with
    num_neg = min(ratio * num_pos, P - 1), CE over positives + mined, both
    divided by the total positive count. (IoU in float64, so matching is
    not at the mercy of float32 rounding.)"""
    nb, npri, ncls = conf_data.shape
    loc_t = torch.zeros(nb, npri, 4)
    conf_t = torch.zeros(nb, npri, dtype=torch.long)
    pri_corners = torch_center_to_corners(priors.double())
    for i, tgt in enumerate(targets):
        truths, labels = tgt[:, :4], tgt[:, 4]
        iou = torch_pairwise_iou(truths.double(), pri_corners)  # [n, P]
        best_prior = iou.argmax(1)
        best_truth_iou, best_truth = iou.max(0)
        best_truth_iou[best_prior] = 2.0
        for j in range(truths.shape[0]):
            best_truth[best_prior[j]] = j
        matched = truths[best_truth]
        conf = labels[best_truth].long() + 1
        conf[best_truth_iou < threshold] = 0
        g_c = ((matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]) / (variance[0] * priors[:, 2:])
        g_wh = torch.log((matched[:, 2:] - matched[:, :2]) / priors[:, 2:]) / variance[1]
        loc_t[i] = torch.cat([g_c, g_wh], 1)
        conf_t[i] = conf
    pos = conf_t > 0
    loss_l = F.smooth_l1_loss(loc_data[pos], loc_t[pos], reduction="sum")
    flat = conf_data.detach().reshape(-1, ncls)
    big = flat.max()
    lse = torch.log(torch.exp(flat - big).sum(1)) + big
    mining = (lse - flat.gather(1, conf_t.reshape(-1, 1)).squeeze(1)).reshape(nb, npri)
    mining[pos] = 0
    order = mining.argsort(1, descending=True)
    rank = order.argsort(1)
    num_pos = pos.long().sum(1, keepdim=True)
    num_neg = torch.clamp(negpos_ratio * num_pos, max=npri - 1)
    neg = rank < num_neg
    keep = pos | neg
    loss_c = F.cross_entropy(conf_data[keep], conf_t[keep], reduction="sum")
    n = num_pos.sum()
    return loss_l / n, loss_c / n


def _ssd_batch(seed, batch=4, num_classes=6, n_side=6):
    rng = np.random.default_rng(seed)
    priors = torch.from_numpy(grid_priors(n_side, scales=(0.12, 0.25, 0.45)))
    boxes, labels, counts = random_gt(rng, batch, 4, num_classes - 1)
    targets = [torch.cat([torch.from_numpy(boxes[i, :counts[i]]),
                          torch.from_numpy(labels[i, :counts[i]]).float()[:, None]], 1)
               for i in range(batch)]
    p = priors.shape[0]
    loc = torch.from_numpy(rng.normal(0, 1, (batch, p, 4)).astype(np.float32))
    conf = torch.from_numpy(rng.normal(0, 2, (batch, p, num_classes)).astype(np.float32))
    return loc, conf, priors, targets


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("threshold,neg_pos", [(0.5, 3), (0.35, 2)])
def test_dropin_matches_ssd_pytorch(seed, threshold, neg_pos):
    num_classes = 6
    loc, conf, priors, targets = _ssd_batch(seed, num_classes=num_classes)
    loc_a, conf_a = loc.clone().requires_grad_(), conf.clone().requires_grad_()
    loc_b, conf_b = loc.clone().requires_grad_(), conf.clone().requires_grad_()
    criterion = mt.MultiBoxLoss(num_classes, threshold, True, 0, True, neg_pos, 0.5, False,
                                use_gpu=False)
    loss_l, loss_c = criterion((loc_a, conf_a, priors), targets)
    ref_l, ref_c = ssd_pytorch_reference(loc_b, conf_b, priors, targets, threshold,
                                         (0.1, 0.2), neg_pos)
    assert loss_l.item() == pytest.approx(ref_l.item(), rel=1e-4)
    assert loss_c.item() == pytest.approx(ref_c.item(), rel=1e-4)
    (loss_l + loss_c).backward()
    (ref_l + ref_c).backward()
    assert_grad_close(loc_a.grad, loc_b.grad.numpy(), "grad loc")
    assert_grad_close(conf_a.grad, conf_b.grad.numpy(), "grad conf")


def test_dropin_training_step_and_empty_image():
    """A few SGD steps through the drop-in reduce the loss; an image with no
    objects (ssd.pytorch would crash, docs/SPEC.md §6.2) is accepted."""
    torch.manual_seed(0)
    loc, conf, priors, targets = _ssd_batch(11, batch=3)
    targets[1] = torch.zeros((0, 5))
    head = torch.nn.Parameter(torch.zeros_like(conf))
    head_loc = torch.nn.Parameter(torch.zeros_like(loc))
    opt = torch.optim.SGD([head, head_loc], lr=1.0)
    criterion = mt.MultiBoxLoss(6, 0.5, True, 0, True, 3, 0.5, False)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss_l, loss_c = criterion((head_loc, head, priors), targets)
        (loss_l + loss_c).backward()
        opt.step()
        losses.append((loss_l + loss_c).item())
    assert int(criterion.num_pos[1]) == 0
    assert losses[-1] < losses[0]


def test_dropin_argument_errors():
    with pytest.raises(ValueError, match="bkg_label"):
        mt.MultiBoxLoss(21, 0.5, True, 3, True, 3, 0.5, False)
    loc, conf, priors, targets = _ssd_batch(1)
    criterion = mt.MultiBoxLoss(21, 0.5, True, 0, True, 3, 0.5, False)
    with pytest.raises(mbx.InvalidArgumentError, match="num_classes=21"):
        criterion((loc, conf, priors), targets)
    criterion = mt.MultiBoxLoss(6, 0.5, True, 0, True, 3, 0.5, False)
    bad = [t.clone() for t in targets]
    bad[0][0, 4] = 7  # label beyond num_classes - 2
    with pytest.raises(mbx.InvalidArgumentError, match="gt_labels"):
        criterion((loc, conf, priors), bad)
    with pytest.raises(mbx.InvalidArgumentError, match=r"targets\[0\]"):
        criterion((loc, conf, priors), [t[:, :4] for t in targets])


def test_pack_targets():
    targets = [torch.tensor([[0.1, 0.1, 0.5, 0.5, 2.0]]), torch.zeros((0, 5)),
               torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0], [0.2, 0.3, 0.4, 0.6, 4.0]])]
    boxes, labels, counts = mt.pack_targets(targets)
    assert boxes.shape == (3, 2, 4) and labels.dtype == torch.int32 and counts.tolist() == [1, 0, 2]
    assert labels[2].tolist() == [0, 4] and labels[0, 0].item() == 2
    assert torch.equal(boxes[2, 1], torch.tensor([0.2, 0.3, 0.4, 0.6]))


# --------------------------------------------------------------------------
# CUDA (only with a device and an mbx built with CUDA)
# --------------------------------------------------------------------------

@pytest.mark.skipif(not cuda_ok(), reason="no CUDA device / mbx without CUDA")
def test_cuda_dropin_matches_cpu():
    loc, conf, priors, targets = _ssd_batch(3)
    crit = mt.MultiBoxLoss(6, 0.5, True, 0, True, 3, 0.5, False)
    lc, cc = loc.clone().requires_grad_(), conf.clone().requires_grad_()
    lg, cg = loc.cuda().requires_grad_(), conf.cuda().requires_grad_()
    a = crit((lc, cc, priors), targets)
    b = crit((lg, cg, priors.cuda()), [t.cuda() for t in targets])
    assert b[0].device.type == "cuda"
    assert b[0].item() == pytest.approx(a[0].item(), rel=1e-4)
    assert b[1].item() == pytest.approx(a[1].item(), rel=1e-4)
    sum(a).backward()
    sum(b).backward()
    assert_grad_close(cg.grad.cpu(), cc.grad.numpy(), "cuda grad conf")
    assert_grad_close(lg.grad.cpu(), lc.grad.numpy(), "cuda grad loc")


@pytest.mark.skipif(not cuda_ok(), reason="no CUDA device / mbx without CUDA")
def test_cuda_on_side_stream():
    p, b, l, c, lo, co = _t(random_problem(seed=8), "cuda")
    ref = mbx.MultiBoxLoss()(*[x.cpu() for x in (p, b, l, c, lo, co)])
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        out = mbx.MultiBoxLoss()(p, b, l, c, lo, co)
        res = out.loss_conf.clone()
    torch.cuda.current_stream().wait_stream(s)
    assert res.item() == pytest.approx(ref.loss_conf.item(), rel=1e-4)


@pytest.mark.skipif(not cuda_ok(), reason="no CUDA device / mbx without CUDA")
def test_cuda_caller_workspace_from_torch():
    p, b, l, c, lo, co = _t(random_problem(seed=9), "cuda")
    B, P, C, G = co.shape[0], co.shape[1], co.shape[2], b.shape[1]
    ref = mbx.MultiBoxLoss("ssd_pytorch")(p, b, l, c, lo, co, grad=True)
    ws = torch.empty(mbx.workspace_size(B, P, G, C, "ssd_pytorch"), dtype=torch.uint8, device="cuda")
    with mbx.Context() as ctx:
        ctx.set_workspace(ws)
        out = mbx.MultiBoxLoss("ssd_pytorch", context=ctx)(p, b, l, c, lo, co, grad=True)
        assert ctx.workspace_bytes == 0
        ctx.set_workspace(ws[: 256])  # too small: refused, nothing written
        with pytest.raises(mbx.InvalidArgumentError, match="workspace"):
            mbx.MultiBoxLoss("ssd_pytorch", context=ctx)(p, b, l, c, lo, co, grad=True)
    assert float(out.loss_conf) == float(ref.loss_conf)
    assert torch.equal(out.grad_conf, ref.grad_conf)
