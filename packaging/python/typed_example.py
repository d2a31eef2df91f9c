"""A small typed program over the mbx API, checked by CI with `mypy --strict`
(against the installed wheel's py.typed and .pyi stubs) and then run:
priors, match, decode, MultiBoxLoss and the ssd.pytorch drop-in of mbx.torch
(skipped at run time when torch is missing).

    mypy --strict packaging/python/typed_example.py && python packaging/python/typed_example.py
"""

from typing import List, Tuple

import numpy as np
import numpy.typing as npt

import mbx


def batch(num_priors: int, classes: int) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int32],
                                                  npt.NDArray[np.int32], npt.NDArray[np.float32],
                                                  npt.NDArray[np.float32]]:
    """One image with two GT boxes, random predictions."""
    rng = np.random.default_rng(0)
    gt_boxes = np.array([[[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]]], np.float32)
    gt_labels = np.array([[3, 7]], np.int32)
    gt_counts = np.array([2], np.int32)
    loc = rng.standard_normal((1, num_priors, 4)).astype(np.float32)
    conf = rng.standard_normal((1, num_priors, classes)).astype(np.float32)
    return gt_boxes, gt_labels, gt_counts, loc, conf


def numpy_api() -> float:
    priors: npt.NDArray[np.float32] = mbx.priors_ssd("voc")
    gt_boxes, gt_labels, gt_counts, loc, conf = batch(priors.shape[0], 21)

    targets: mbx.MatchResult = mbx.match(priors, gt_boxes, gt_labels, gt_counts, "ssd_pytorch",
                                         num_classes=20)
    positives = int(np.asarray(targets.num_pos)[0])
    boxes = np.asarray(mbx.decode(priors, loc, "ssd_pytorch"))
    assert boxes.shape == loc.shape

    options = mbx.Options("ssd_pytorch", neg_pos_ratio=3)
    names: List[str] = list(mbx.OPTION_NAMES)
    assert "neg_pos_ratio" in names and options["neg_pos_ratio"] == 3
    loss = mbx.MultiBoxLoss(options)
    out: mbx.LossResult = loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad=True)
    assert out.grad_conf is not None and np.asarray(out.grad_conf).shape == conf.shape
    total = float(out.loss_loc) + float(out.loss_conf)
    # The optional inputs: all-zero gt_flags and a level split of the priors
    # (validated, used only by the ATSS assigner) change nothing.
    p = priors.shape[0]
    levels: npt.NDArray[np.int32] = np.array([p // 2, p - p // 2], np.int32)
    same = loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                gt_flags=np.zeros(gt_labels.shape, np.int32), prior_levels=levels)
    assert float(same.loss_conf) == float(out.loss_conf)
    same_targets = mbx.match(priors, gt_boxes, gt_labels, gt_counts, "ssd_pytorch",
                             num_classes=20, gt_flags=[[0, 0]], prior_levels=levels)
    assert (np.asarray(same_targets.conf_target) == np.asarray(targets.conf_target)).all()
    retina_levels: npt.NDArray[np.int32] = mbx.priors_retinanet_levels(512, 512)
    assert int(retina_levels.sum()) == mbx.priors_retinanet(512, 512).shape[0]
    try:
        mbx.MultiBoxLoss("no_such_preset")
    except mbx.InvalidArgumentError as e:
        assert e.status == mbx.Status.INVALID_ARGUMENT
    print("mbx %s: %d positives, loss %.4f" % (mbx.version(), positives, total))
    return total


def torch_dropin() -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: the mbx.torch part is skipped")
        return
    from mbx.torch import MultiBoxLoss, priors_ssd

    priors: torch.Tensor = priors_ssd("voc")
    criterion = MultiBoxLoss(21, 0.5, True, 0, True, 3, 0.5, False, use_gpu=False)
    loc = torch.randn(2, priors.shape[0], 4, requires_grad=True)
    conf = torch.randn(2, priors.shape[0], 21, requires_grad=True)
    targets: List[torch.Tensor] = [torch.tensor([[0.1, 0.1, 0.5, 0.6, 3.0]]),
                                   torch.tensor([[0.2, 0.3, 0.7, 0.9, 11.0]])]
    loss_l, loss_c = criterion((loc, conf, priors), targets)
    (loss_l + loss_c).backward()
    assert loc.grad is not None and conf.grad is not None
    print("mbx.torch drop-in: loss_l %.4f loss_c %.4f" % (float(loss_l), float(loss_c)))


if __name__ == "__main__":
    numpy_api()
    torch_dropin()
