"""loc_loss = GIOU / DIOU / CIOU (docs/SPEC.md §4.7) against torchvision 0.14.

mbx's loss_loc and grad_loc must equal torchvision.ops'
generalized_box_iou_loss / distance_box_iou_loss / complete_box_iou_loss
applied to the decoded predictions of the positives (mbx.match's
matched_gt), summed and normalised per docs/SPEC.md §4.4, with the gradient
taken by torch's autograd in float64 through a torch transcription of the
decode (docs/SPEC.md §3.2). Degenerate predictions (empty, inverted, huge
exponents) must give finite values everywhere, equal to torch's wherever
torch's are finite.
"""

import math
import sys
import os

import numpy as np
import pytest

import mbx
from conftest import REPO, cuda_ok
from problems import grid_priors, random_gt

torch = pytest.importorskip("torch")
tv_ops = pytest.importorskip("torchvision.ops")
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
import mbx_reference as R  # noqa: E402

KINDS = {"GIOU": tv_ops.generalized_box_iou_loss, "DIOU": tv_ops.distance_box_iou_loss,
         "CIOU": tv_ops.complete_box_iou_loss}
CODINGS = ("CENTER_SIZE", "CORNER", "CORNER_SIZE")
NORMS = ("TOTAL_POSITIVES", "PER_IMAGE", "NONE", "EXTERNAL", "BATCH_SIZE", "FULL")
PATHS = ["cpu-scalar", "cpu"] + (["cuda"] if cuda_ok() else [])


def torch_decode(d, priors_cs, var, coding):
    """docs/SPEC.md §3.2 in torch (float64, differentiable)."""
    p = priors_cs
    if coding != "CENTER_SIZE":
        pc = torch.cat([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], 1)
        s = p[:, 2:] if coding == "CORNER_SIZE" else torch.ones_like(p[:, 2:])
        return pc + d * var * torch.cat([s, s], 1)
    dw = torch.clamp(d[:, 2] * var[2], max=math.log(1000.0 / 16))
    dh = torch.clamp(d[:, 3] * var[3], max=math.log(1000.0 / 16))
    cx = p[:, 0] + d[:, 0] * var[0] * p[:, 2]
    cy = p[:, 1] + d[:, 1] * var[1] * p[:, 3]
    w, h = p[:, 2] * torch.exp(dw), p[:, 3] * torch.exp(dh)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def scales(opts, num_pos, B, P):
    """Per-image loc normalisation (docs/SPEC.md §4.4)."""
    norm = opts["normalization"]
    if norm == "TOTAL_POSITIVES":
        s = np.full(B, 1.0 / max(1, int(num_pos.sum())))
    elif norm == "PER_IMAGE":
        s = 1.0 / (np.maximum(1, num_pos) * B)
    elif norm == "NONE":
        s = np.ones(B)
    elif norm == "EXTERNAL":
        s = np.full(B, 1.0 / opts["external_norm"])
    elif norm == "BATCH_SIZE":
        s = np.full(B, 1.0 / B)
    else:
        s = np.full(B, 1.0 / (B * P))
    return s / 4.0 if opts["loc_average_coords"] else s


def torch_reference(opts, priors, boxes, labels, counts, loc):
    """(loss_loc, grad_loc [B,P,4], per-positive torch losses) with torch's autograd."""
    m = mbx.match(priors, boxes, labels, counts, preset=opts["native"], num_classes=0)
    ct, mg = np.asarray(m.conf_target), np.asarray(m.matched_gt)
    B, P, _ = loc.shape
    pr = priors.astype(np.float64)
    if opts["prior_format"] == "CORNERS":
        pr = np.concatenate([(pr[:, :2] + pr[:, 2:]) / 2, pr[:, 2:] - pr[:, :2]], 1)
    var = np.ones(4) if opts["encode_variance_in_target"] else np.array(opts["variances"], np.float64)
    num_pos = (ct > 0).sum(1)
    sc = scales(opts, num_pos, B, P)
    d = torch.tensor(loc.astype(np.float64), requires_grad=True)
    total = torch.zeros((), dtype=torch.float64)
    per = []
    for b in range(B):
        pos = np.nonzero(ct[b] > 0)[0]
        if pos.size == 0:
            continue
        box = torch_decode(d[b, pos], torch.tensor(pr[pos]), torch.tensor(var), opts["box_coding"])
        gt = torch.tensor(boxes[b, mg[b, pos]].astype(np.float64))
        val = KINDS[opts["loc_loss"]](box, gt, reduction="none", eps=1e-7)
        per.append(val.detach().numpy())
        total = total + val.sum() * sc[b]
    if total.requires_grad:
        total.backward()
    g = d.grad.numpy() if d.grad is not None else np.zeros_like(loc, np.float64)
    return float(total), g, (np.concatenate(per) if per else np.zeros(0)), ct


def on_path(path, *arrays):
    """The inputs where `path` runs: torch CUDA tensors for cuda, as given otherwise."""
    if path != "cuda":
        return arrays
    return tuple((a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))).cuda()
                 for a in arrays)


def host(t):
    return t.cpu() if isinstance(t, torch.Tensor) else t


def run_mbx(opts, path, priors, boxes, labels, counts, loc, conf):
    crit = mbx.MultiBoxLoss(opts["preset"], context=mbx.Context(path=path), **opts["overrides"])
    r = crit(*on_path(path, priors, boxes, labels, counts, loc, conf))
    return float(r.loss_loc), np.asarray(host(r.grad_loc)).astype(np.float64)


def problem(seed, corners=False, batch=3, num_classes=3):
    rng = np.random.default_rng(seed)
    priors = grid_priors(4, corners=corners)
    boxes, labels, counts = random_gt(rng, batch, 3, num_classes)
    counts[-1] = 0  # an image without GT
    P = priors.shape[0]
    loc = rng.normal(0, 1, size=(batch, P, 4)).astype(np.float32)
    # C = K + 1 columns: valid for SOFTMAX_CE (background + K) and for the focal loss
    conf = rng.normal(0, 2, size=(batch, P, num_classes + 1)).astype(np.float32)
    return priors, boxes, labels, counts, loc, conf


def make_opts(preset, **overrides):
    native = mbx.Options(preset, **overrides)
    return dict(native.to_dict(), preset=preset, overrides=overrides, native=native)


def check(opts, inputs, path, rtol=1e-5, grad_rtol=1e-5):
    priors, boxes, labels, counts, loc, conf = inputs
    ref_loss, ref_grad, _, _ = torch_reference(opts, priors, boxes, labels, counts, loc)
    loss, grad = run_mbx(opts, path, *inputs)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(ref_loss, rel=rtol, abs=1e-12)
    top = max(np.abs(ref_grad).max(), 1e-30)
    np.testing.assert_allclose(grad, ref_grad, rtol=grad_rtol, atol=grad_rtol * top)
    return ref_loss


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_torchvision(kind, coding, path):
    opts = make_opts("torchvision_retinanet", loc_loss=kind, box_coding=coding, prior_format="CENTER_SIZE",
                 variances=[0.1, 0.1, 0.2, 0.2] if coding == "CENTER_SIZE" else [0.5, 0.5, 0.5, 0.5])
    inputs = problem(1)
    assert check(opts, inputs, path) > 0


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_normalisation(kind, norm):
    for avg in (False, True):
        opts = make_opts("ssd_pytorch", loc_loss=kind, normalization=norm, loc_average_coords=avg, external_norm=2.5)
        inputs = problem(2)
        for path in PATHS:
            check(opts, inputs, path)


@pytest.mark.parametrize("kind", list(KINDS))
def test_ties_split_the_gradient(kind):
    # CORNERS priors, GT rows equal to priors and loc = 0: every decoded box
    # equals its GT exactly, so every min / max of the loss is a tie (torch
    # gives each operand half); plus loc = 0 with CORNER coding.
    rng = np.random.default_rng(3)
    priors = grid_priors(3, corners=True)
    boxes = priors[None, [2, 7, 11, 20]].copy()
    labels = np.zeros((1, 4), np.int32)
    counts = np.array([4], np.int32)
    P = priors.shape[0]
    conf = rng.normal(0, 1, size=(1, P, 2)).astype(np.float32)
    for coding in CODINGS:
        loc = rng.normal(0, 0.3, size=(1, P, 4)).astype(np.float32)
        loc[0, [2, 7, 11, 20]] = 0.0
        loc[0, 7, 0] = 0.25  # only some coordinates tied
        opts = make_opts("torchvision_retinanet", loc_loss=kind, box_coding=coding, force_match="NONE")
        for path in PATHS:
            check(opts, (priors, boxes, labels, counts, loc, conf), path)


def degenerate_loc(coding, P, rng):
    """Rows of predicted offsets that decode to degenerate boxes."""
    loc = rng.normal(0, 0.5, size=(1, P, 4)).astype(np.float32)
    if coding == "CENTER_SIZE":
        rows = [(0, 0, -1e4, -1e4),     # both sizes underflow to 0: a point
                (0.1, 0, -1e4, 0.2),    # zero width
                (0, 0.1, 0.3, -1e4),    # zero height
                (0, 0, -3600, -3600),   # sizes subnormal (exponent -720 with variance .2)
                (0, 0, 1e4, 1e4),       # clamped exponents (no gradient)
                (3e3, -3e3, 50, -50),   # far away, clamped width
                (0, 0, float(np.float32(math.log(1000 / 16) / 0.2)), 0)]  # at the clamp
    else:
        rows = [(0.2, 0.1, -0.2, 0.3),  # inverted (x2 < x1)
                (0.1, 0.2, 0.3, -0.2),  # inverted y
                (0.3, 0.3, -0.3, -0.3),  # inverted both: positive "area"
                (0.25, 0.0, -0.25, 0.0),  # zero width (corner prior widths are .5 * .25 * 2)
                (1e6, 1e6, -1e6, -1e6)]
    for i, r in enumerate(rows):
        loc[0, i] = r
    return loc, len(rows)


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_degenerate_predictions_are_finite(kind, coding):
    rng = np.random.default_rng(4)
    priors = grid_priors(2, corners=True)
    P = priors.shape[0]
    # One GT per prior row used below: each prior matches itself (force NONE, threshold 0).
    boxes = (priors[None, :8] + np.float32(0.01)).astype(np.float32)
    labels = np.zeros((1, 8), np.int32)
    counts = np.array([8], np.int32)
    conf = rng.normal(0, 1, size=(1, P, 2)).astype(np.float32)
    loc, n = degenerate_loc(coding, P, rng)
    variances = [0.1, 0.1, 0.2, 0.2] if coding == "CENTER_SIZE" else [0.5, 0.5, 0.5, 0.5]
    opts = make_opts("torchvision_retinanet", loc_loss=kind, box_coding=coding, variances=variances,
                 normalization="NONE")
    ref_loss, ref_grad, per, ct = torch_reference(opts, priors, boxes, labels, counts, loc)
    assert (ct[0, :n] > 0).all(), "every degenerate row is a positive"
    # mbx's per-positive terms and gradients: the numpy reference (docs/SPEC.md §4.7).
    p64 = priors.astype(np.float64)
    pr = np.concatenate([(p64[:, :2] + p64[:, 2:]) / 2, p64[:, 2:] - p64[:, :2]], 1)
    m = mbx.match(priors, boxes, labels, counts, preset=opts["native"], num_classes=0)
    mg = np.asarray(m.matched_gt)[0]
    pos = np.nonzero(ct[0] > 0)[0]
    ro = R.replace(R.torchvision_retinanet(), loc_loss=kind, box_coding=coding, variances=tuple(variances))
    val, der = R.iou_loss(loc[0, pos].astype(np.float64), pr[pos].astype(np.float64),
                          boxes[0, mg[pos]].astype(np.float64), ro)
    assert np.isfinite(val).all() and np.isfinite(der).all()
    ok = np.isfinite(per)
    np.testing.assert_allclose(val[ok], per[ok], rtol=1e-12, atol=1e-12)
    tgrad = ref_grad[0, pos]
    gok = np.isfinite(tgrad).all(1)
    np.testing.assert_allclose(der[gok], tgrad[gok], rtol=1e-9, atol=1e-12)
    if kind == "CIOU" and coding == "CENTER_SIZE":
        assert not ok.all() or not gok.all(), "torch is NaN for the point box; mbx is finite"
    for path in PATHS:
        loss, grad = run_mbx(opts, path, priors, boxes, labels, counts, loc, conf)
        assert np.isfinite(loss) and np.isfinite(grad).all(), path
        assert loss == pytest.approx(val.sum(), rel=1e-6)
        full = np.zeros_like(grad)
        full[0, pos] = der
        np.testing.assert_allclose(grad, full, rtol=1e-5, atol=1e-5 * np.abs(full).max())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_loc(dtype):
    priors, boxes, labels, counts, loc, conf = problem(5)
    tl = torch.from_numpy(loc).to(getattr(torch, dtype))
    widened = tl.to(torch.float64).numpy().astype(np.float32)  # exact
    for kind in KINDS:
        opts = make_opts("torchvision_retinanet", loc_loss=kind, variances=[0.1, 0.1, 0.2, 0.2],
                         prior_format="CENTER_SIZE")
        ref_loss, ref_grad, _, _ = torch_reference(opts, priors, boxes, labels, counts, widened)
        for path in PATHS:
            crit = mbx.MultiBoxLoss(opts["preset"], context=mbx.Context(path=path), **opts["overrides"])
            r = crit(*on_path(path, torch.from_numpy(priors), torch.from_numpy(boxes),
                              torch.from_numpy(labels), torch.from_numpy(counts), tl,
                              torch.from_numpy(conf)))
            assert r.grad_loc.dtype == tl.dtype
            assert float(r.loss_loc) == pytest.approx(ref_loss, rel=1e-5)
            g = host(r.grad_loc).to(torch.float64).numpy()
            top = np.abs(ref_grad).max()
            tol = 1e-2 if dtype == "bfloat16" else 2e-3
            np.testing.assert_allclose(g, ref_grad, rtol=tol, atol=tol * top)


def test_decode_is_torchvision_boxcoder():
    """With BoxCoder weights = 1 / variances, BoxCoder.decode_single (float64)
    is mbx's decode: the boxes the loss sees are torchvision's."""
    from torchvision.models.detection._utils import BoxCoder
    rng = np.random.default_rng(6)
    corners = grid_priors(3, corners=True).astype(np.float64) * 100
    d = rng.normal(0, 2, size=(corners.shape[0], 4))
    d[0, 2] = 40.0  # clamped
    for var in ((1.0, 1.0, 1.0, 1.0), (0.1, 0.1, 0.2, 0.2)):
        coder = BoxCoder(weights=tuple(1.0 / v for v in var))
        ours = torch_decode(torch.tensor(d), torch.tensor(np.concatenate(
            [(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], 1)),
            torch.tensor(var, dtype=torch.float64), "CENTER_SIZE")
        theirs = coder.decode_single(torch.tensor(d), torch.tensor(corners))
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-9)
        ref = R.decode_f64(d, np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2,
                                              corners[:, 2:] - corners[:, :2]], 1), var)
        np.testing.assert_allclose(ref, theirs.numpy(), rtol=1e-12, atol=1e-9)


def test_forward_backward_and_fused_agree():
    priors, boxes, labels, counts, loc, conf = problem(7)
    for kind in KINDS:
        crit = mbx.MultiBoxLoss("torchvision_retinanet", context=mbx.Context(path="cpu"), loc_loss=kind,
                                prior_format="CENTER_SIZE")
        fused = crit(priors, boxes, labels, counts, loc, conf)
        fwd = crit.forward(priors, boxes, labels, counts, loc, conf)
        gl, _ = crit.backward(priors, boxes, labels, counts, loc, conf)
        assert float(fwd.loss_loc) == float(fused.loss_loc)
        np.testing.assert_array_equal(np.asarray(gl), np.asarray(fused.grad_loc))


def test_hard_example_mining_scores_the_iou_term():
    """HARD_EXAMPLE ranks by conf loss + the positive's IoU term: every path
    equals the numpy reference."""
    priors, boxes, labels, counts, loc, conf = problem(8, num_classes=4)
    for kind in KINDS:
        opts = R.replace(R.caffe_ssd(), loc_loss=kind, mining="HARD_EXAMPLE", mining_sample_size=10,
                         prior_format="CENTER_SIZE")
        ref = R.compute(priors, boxes, labels, counts, loc, conf, opts)
        for path in PATHS:
            crit = mbx.MultiBoxLoss("caffe_ssd", context=mbx.Context(path=path), loc_loss=kind,
                                    mining="HARD_EXAMPLE", mining_sample_size=10,
                                    prior_format="CENTER_SIZE")
            r = crit(*on_path(path, priors, boxes, labels, counts, loc, conf))
            assert float(r.loss_loc) == pytest.approx(ref["loss_loc"], rel=1e-5)
            np.testing.assert_array_equal(np.asarray(host(r.num_pos)), ref["num_pos_loss"])
            top = np.abs(ref["grad_loc"]).max()
            np.testing.assert_allclose(np.asarray(host(r.grad_loc)), ref["grad_loc"], rtol=1e-4,
                                       atol=1e-5 * top)
