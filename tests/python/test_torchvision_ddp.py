"""use_mbx_loss under DistributedDataParallel: the EXTERNAL recipe.

Two CPU processes (gloo on loopback, torch.multiprocessing) each train an
SSDlite on half of a batch with ``normalization="EXTERNAL",
external_norm=mbx.torch.all_reduced_positives()``; the mean of their losses
and DDP's averaged parameter gradients must equal one process's on the
whole batch with torchvision's own normalisation (total positives).
Batch norm runs in eval mode: per-rank batch statistics would differ from
the whole batch's by design, whatever the loss.
"""

import copy
import os
import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import mbx.torch  # noqa: E402
from torchvision.models.detection import ssdlite320_mobilenet_v3_large  # noqa: E402

WORLD = 2
HW = (160, 200)


def _model():
    torch.manual_seed(0)
    model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=5)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    return model


def _batch():
    g = torch.Generator().manual_seed(7)
    images = [torch.rand(3, *HW, generator=g) for _ in range(2 * WORLD)]
    targets = []
    for n in (3, 0, 1, 6):  # rank 0 gets 3 boxes, rank 1 gets 7: different local counts
        xy = torch.rand(n, 2, generator=g) * torch.tensor([HW[1] * 0.6, HW[0] * 0.6])
        wh = torch.rand(n, 2, generator=g) * torch.tensor([HW[1] * 0.35, HW[0] * 0.35]) + 8
        targets.append({"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(1, 5, (n,), generator=g)})
    return images, targets


def _worker(rank, port, out):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank, world_size=WORLD)
    try:
        model = mbx.torch.use_mbx_loss(_model(), normalization="EXTERNAL",
                                       external_norm=mbx.torch.all_reduced_positives())
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        images, targets = _batch()
        half = len(images) // WORLD
        mine = slice(rank * half, (rank + 1) * half)
        losses = ddp(images[mine], targets[mine])
        sum(losses.values()).backward()  # DDP averages the gradients over the ranks
        logged = torch.stack([losses["bbox_regression"].detach(), losses["classification"].detach()])
        dist.all_reduce(logged)
        logged /= WORLD
        if rank == 0:
            torch.save({"losses": logged, "num_pos": model.mbx_loss.num_pos,
                        "grads": {n: p.grad for n, p in model.named_parameters() if p.grad is not None}},
                       out)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")
def test_ddp_external_norm_equals_single_process(tmp_path):
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    got = torch.load(out)

    model = mbx.torch.use_mbx_loss(_model())  # torchvision's normalisation, whole batch
    images, targets = _batch()
    losses = model(images, copy.deepcopy(targets))
    sum(losses.values()).backward()
    assert int(model.mbx_loss.num_pos.sum()) > 0
    want = torch.stack([losses["bbox_regression"].detach(), losses["classification"].detach()])
    torch.testing.assert_close(got["losses"], want, rtol=1e-5, atol=0)
    top = max(float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None)
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got["grads"][n], p.grad, rtol=1e-4, atol=2e-5 * top, msg=n)
