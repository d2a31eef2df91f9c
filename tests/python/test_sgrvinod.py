"""The sgrvinod_ssd preset against a plain-torch transcription, written
here, of the MultiBoxLoss of sgrvinod's a-PyTorch-Tutorial-to-Object-Detection
(model.py): forced best prior per object, threshold 0.5, (cx, cy, w, h)
offsets with variances (0.1, 0.2), nn.L1Loss() (a mean over the 4 N
coordinates of the positives), cross-entropy over the positives plus the 3 N
hardest negatives (no clamp), divided by N; the total is conf + alpha loc."""

import numpy as np
import pytest

from conftest import assert_grad_close
from problems import grid_priors, random_gt, torch_center_to_corners, torch_pairwise_iou

torch = pytest.importorskip("torch")
import mbx.torch as mt  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def sgrvinod_reference(predicted_locs, predicted_scores, priors_cxcy, boxes, labels,
                       threshold=0.5, neg_pos_ratio=3, alpha=1.0):
    """The tutorial's loss step by step. `labels` are the tutorial's (0 is
    the background, objects 1..). IoU in float64 so that matching does not
    depend on float32 rounding; the forced assignment loops over the objects
    in order (a later object takes a shared prior, as the tutorial's index
    assignment does on the CPU)."""
    batch, n_priors, n_classes = predicted_scores.shape
    true_locs = torch.zeros(batch, n_priors, 4)
    true_classes = torch.zeros(batch, n_priors, dtype=torch.long)
    priors_xy = torch_center_to_corners(priors_cxcy.double())
    for i in range(batch):
        overlap = torch_pairwise_iou(boxes[i].double(), priors_xy)  # (n_objects, P)
        overlap_for_each_prior, object_for_each_prior = overlap.max(dim=0)
        _, prior_for_each_object = overlap.max(dim=1)
        for j in range(boxes[i].shape[0]):
            object_for_each_prior[prior_for_each_object[j]] = j
        overlap_for_each_prior[prior_for_each_object] = 1.0
        label_for_each_prior = labels[i][object_for_each_prior]
        label_for_each_prior[overlap_for_each_prior < threshold] = 0
        true_classes[i] = label_for_each_prior
        matched = boxes[i][object_for_each_prior]
        cxcy = torch.cat([(matched[:, 2:] + matched[:, :2]) / 2, matched[:, 2:] - matched[:, :2]], 1)
        true_locs[i] = torch.cat([(cxcy[:, :2] - priors_cxcy[:, :2]) / (priors_cxcy[:, 2:] / 10),
                                  torch.log(cxcy[:, 2:] / priors_cxcy[:, 2:]) * 5], 1)
    positive_priors = true_classes != 0
    loc_loss = torch.nn.L1Loss()(predicted_locs[positive_priors], true_locs[positive_priors])
    n_positives = positive_priors.sum(dim=1)
    n_hard_negatives = neg_pos_ratio * n_positives
    conf_loss_all = F.cross_entropy(predicted_scores.view(-1, n_classes), true_classes.view(-1),
                                    reduction="none").view(batch, n_priors)
    conf_loss_pos = conf_loss_all[positive_priors]
    conf_loss_neg = conf_loss_all.clone()
    conf_loss_neg[positive_priors] = 0.0
    conf_loss_neg, _ = conf_loss_neg.sort(dim=1, descending=True)
    hardness_ranks = torch.arange(n_priors).unsqueeze(0).expand_as(conf_loss_neg)
    hard_negatives = hardness_ranks < n_hard_negatives.unsqueeze(1)
    conf_loss_hard_neg = conf_loss_neg[hard_negatives]
    conf_loss = (conf_loss_hard_neg.sum() + conf_loss_pos.sum()) / n_positives.sum().float()
    return conf_loss, alpha * loc_loss


@pytest.mark.parametrize("seed", range(6))
def test_sgrvinod_preset_matches_the_tutorial_loss(seed):
    rng = np.random.default_rng(100 + seed)
    batch, num_classes = 4, 6
    priors = torch.from_numpy(grid_priors(6, scales=(0.12, 0.25, 0.45)))
    gt, gl, gc = random_gt(rng, batch, 4, num_classes - 1)
    p = priors.shape[0]
    loc = torch.from_numpy(rng.normal(0, 1, (batch, p, 4)).astype(np.float32))
    conf = torch.from_numpy(rng.normal(0, 2, (batch, p, num_classes)).astype(np.float32))
    boxes = [torch.from_numpy(gt[i, :gc[i]]) for i in range(batch)]
    labels = [torch.from_numpy(gl[i, :gc[i]]).long() + 1 for i in range(batch)]

    loc_a, conf_a = loc.clone().requires_grad_(), conf.clone().requires_grad_()
    loc_b, conf_b = loc.clone().requires_grad_(), conf.clone().requires_grad_()
    m = mt.Loss("sgrvinod_ssd")
    loss_loc, loss_conf = m(loc_a, conf_a, priors, torch.from_numpy(gt), torch.from_numpy(gl),
                            torch.from_numpy(gc))
    ref_conf, ref_loc = sgrvinod_reference(loc_b, conf_b, priors, boxes, labels)
    assert loss_loc.item() == pytest.approx(ref_loc.item(), rel=1e-4)
    assert loss_conf.item() == pytest.approx(ref_conf.item(), rel=1e-4)
    (loss_conf + loss_loc).backward()
    (ref_conf + ref_loc).backward()
    assert_grad_close(loc_a.grad, loc_b.grad.numpy(), "grad loc")
    assert_grad_close(conf_a.grad, conf_b.grad.numpy(), "grad conf")


def test_sgrvinod_differs_from_ssd_pytorch_only_where_expected():
    """Same matching and CE as ssd_pytorch; the loc term is L1 / (4 N)."""
    import mbx
    rng = np.random.default_rng(7)
    priors = grid_priors(5)
    gt, gl, gc = random_gt(rng, 3, 3, 4)
    loc = rng.normal(0, 1, (3, priors.shape[0], 4)).astype(np.float32)
    conf = rng.normal(0, 2, (3, priors.shape[0], 5)).astype(np.float32)
    a = mbx.MultiBoxLoss("sgrvinod_ssd")(priors, gt, gl, gc, loc, conf)
    b = mbx.MultiBoxLoss("ssd_pytorch", clamp_num_neg=False)(priors, gt, gl, gc, loc, conf)
    c = mbx.MultiBoxLoss("ssd_pytorch", loc_loss="L1", clamp_num_neg=False)(priors, gt, gl, gc, loc, conf)
    np.testing.assert_array_equal(a.num_pos, b.num_pos)
    assert float(a.loss_conf) == float(b.loss_conf)
    assert float(a.loss_loc) == pytest.approx(float(c.loss_loc) / 4, rel=1e-12)
