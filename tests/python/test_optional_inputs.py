"""The optional inputs gt_flags [B, G] and prior_levels [L] through the
Python API (mbx.match, mbx.MultiBoxLoss and its forward / backward, the torch
autograd module) and mbx.priors_retinanet_levels: they reach the library
(mbx_run), all-zero flags and a validated but unused level split change
nothing bitwise, and bad ones raise InvalidArgumentError naming them."""

import inspect
import os
import sys

import numpy as np
import pytest

import mbx
from conftest import (INPUTS, KINDS, REPO, assert_grad_close, assert_loc_target_close,
                      assert_loss_close, cuda_ok, load_case, to_kind, to_numpy)

CASE = os.path.join(REPO, "tests", "data", "golden", "v06_ssd300_realistic")
FOCAL_CASE = os.path.join(REPO, "tests", "data", "golden", "v05_torchvision_retinanet_basic")


def _case(path=CASE):
    meta, arr = load_case(path)
    return meta, arr, [arr[k] for k in INPUTS]


def _zero_flags(arr):
    return np.zeros(arr["gt_labels"].shape, np.int32)


def _two_levels(arr):
    p = arr["priors"].shape[0]
    return np.array([p // 3, p - p // 3], np.int32)


def _assert_same(a, b):
    for x, y in zip(a, b):
        if x is None or y is None:
            assert x is None and y is None
            continue
        np.testing.assert_array_equal(to_numpy(x), to_numpy(y))


def _loss_tuple(r):
    return (r.loss_loc, r.loss_conf, r.num_pos, r.grad_loc, r.grad_conf)


# --- absent == all-zero flags == a validated level split (bitwise) -----------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_path", [CASE, FOCAL_CASE], ids=["softmax", "focal"])
def test_zero_flags_and_levels_match_absent_bitwise(case_path, kind):
    meta, arr, args = _case(case_path)
    t_args = [to_kind(a, kind) for a in args]
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    base = loss(*t_args)
    flags = to_kind(_zero_flags(arr), kind)
    levels = to_kind(_two_levels(arr), kind)
    for extra in ({"gt_flags": flags}, {"prior_levels": levels},
                  {"gt_flags": flags, "prior_levels": levels}):
        _assert_same(_loss_tuple(loss(*t_args, **extra)), _loss_tuple(base))
        fwd = loss.forward(*t_args, **extra)
        _assert_same((fwd.loss_loc, fwd.loss_conf, fwd.num_pos),
                     _loss_tuple(loss(*t_args, grad=False)))
        _assert_same(loss.backward(*t_args, grad_loss=(0.5, 2.0), **extra),
                     loss.backward(*t_args, grad_loss=(0.5, 2.0)))
        _assert_same(mbx.match(*t_args[:4], meta["preset"], **extra, **meta["options"]),
                     mbx.match(*t_args[:4], meta["preset"], **meta["options"]))


@pytest.mark.parametrize("path", ["cpu-scalar", "cpu"])
def test_optional_inputs_on_each_cpu_path(path):
    meta, arr, args = _case()
    ctx = mbx.Context(path=path)
    loss = mbx.MultiBoxLoss(meta["preset"], context=ctx, **meta["options"])
    got = loss(*args, gt_flags=_zero_flags(arr), prior_levels=_two_levels(arr))
    _assert_same(_loss_tuple(got), _loss_tuple(loss(*args)))


def test_lists_are_converted_to_int32():
    meta, arr, args = _case()
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    got = loss(*args, gt_flags=_zero_flags(arr).tolist(), prior_levels=_two_levels(arr).tolist())
    _assert_same(_loss_tuple(got), _loss_tuple(loss(*args)))


def test_torch_lists_land_on_the_inputs_device():
    torch = pytest.importorskip("torch")
    meta, arr, args = _case()
    t_args = [torch.from_numpy(a) for a in args]
    got = mbx.match(*t_args[:4], meta["preset"], prior_levels=_two_levels(arr).tolist(),
                    gt_flags=_zero_flags(arr).tolist(), **meta["options"])
    assert isinstance(got.conf_target, torch.Tensor)
    np.testing.assert_array_equal(got.conf_target.numpy(), arr["conf_target"])


def test_prior_levels_may_stay_on_the_host():
    """prior_levels as a numpy array / list next to torch inputs: read on the host."""
    torch = pytest.importorskip("torch")
    meta, arr, args = _case()
    t_args = [torch.from_numpy(a) for a in args]
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    _assert_same(_loss_tuple(loss(*t_args, prior_levels=_two_levels(arr))),
                 _loss_tuple(loss(*t_args)))


@pytest.mark.skipif(not cuda_ok(), reason="no CUDA device / mbx without CUDA")
def test_cuda_inputs_with_optional_inputs_match_the_cpu():
    """torch CUDA inputs: gt_flags as a list goes to the device, prior_levels
    stays on the host (a list) or is a CUDA tensor; results equal the cpu
    path's (ignore regions included)."""
    torch = pytest.importorskip("torch")
    meta, arr, args = _case(FOCAL_CASE)
    flags = _with_regions(arr)
    levels = _two_levels(arr)
    want = mbx.match(*args[:4], meta["preset"], gt_flags=flags, prior_levels=levels,
                     **meta["options"])
    cuda = [torch.from_numpy(a).cuda() for a in args]
    for lv in (levels.tolist(), torch.from_numpy(levels).cuda()):
        got = mbx.match(*cuda[:4], meta["preset"], gt_flags=flags.tolist(), prior_levels=lv,
                        **meta["options"])
        assert got.conf_target.is_cuda
        np.testing.assert_array_equal(to_numpy(got.conf_target), want.conf_target)
        np.testing.assert_array_equal(to_numpy(got.matched_gt), want.matched_gt)
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    ref = loss(*args, gt_flags=flags, prior_levels=levels)
    out = loss(*cuda, gt_flags=torch.from_numpy(flags).cuda(), prior_levels=levels.tolist())
    assert_loss_close(out.loss_conf, float(ref.loss_conf), "loss_conf")
    assert_grad_close(out.grad_conf, ref.grad_conf, "grad_conf")


def test_torch_autograd_module_takes_the_optional_inputs():
    torch = pytest.importorskip("torch")
    import mbx.torch as mt
    meta, arr, args = _case()
    priors, gt_boxes, gt_labels, gt_counts, loc, conf = [torch.from_numpy(a) for a in args]
    module = mt.Loss(meta["preset"], **meta["options"])
    loc_a = loc.clone().requires_grad_()
    conf_a = conf.clone().requires_grad_()
    la, ca = module(loc_a, conf_a, priors, gt_boxes, gt_labels, gt_counts,
                    torch.zeros(gt_labels.shape, dtype=torch.int32),
                    torch.from_numpy(_two_levels(arr)))
    (la + ca).backward()
    loc_b = loc.clone().requires_grad_()
    conf_b = conf.clone().requires_grad_()
    lb, cb = mt.multibox_loss(loc_b, conf_b, priors, gt_boxes, gt_labels, gt_counts,
                              meta["preset"], **meta["options"])
    (lb + cb).backward()
    assert float(la) == float(lb) and float(ca) == float(cb)
    assert torch.equal(loc_a.grad, loc_b.grad) and torch.equal(conf_a.grad, conf_b.grad)
    lc, cc = mt.multibox_loss(loc, conf, priors, gt_boxes, gt_labels, gt_counts, meta["preset"],
                              gt_flags=torch.zeros(gt_labels.shape, dtype=torch.int32),
                              **meta["options"])
    assert float(lc) == float(lb) and float(cc) == float(cb)


# --- bad inputs name the argument ---------------------------------------------

def _raises(fn, *words):
    with pytest.raises(mbx.InvalidArgumentError) as e:
        fn()
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    return str(e.value)


def test_bad_gt_flags_name_the_argument():
    meta, arr, args = _case()
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    flags = _zero_flags(arr)
    _raises(lambda: loss(*args, gt_flags=flags.astype(np.int64)), "gt_flags", "int32")
    _raises(lambda: loss(*args, gt_flags=flags[:, :-1].copy()), "gt_flags")
    _raises(lambda: loss(*args, gt_flags=flags.reshape(-1)), "gt_flags")
    _raises(lambda: mbx.match(*args[:4], meta["preset"], gt_flags=flags.astype(np.float32),
                              **meta["options"]), "gt_flags")
    reserved = flags.copy()
    reserved[1, 0] = 2  # a reserved bit (only bit 0 has a meaning)
    _raises(lambda: loss(*args, gt_flags=reserved), "gt_flags", "image 1", "row 0", "reserved")
    with pytest.raises(TypeError, match="gt_flags"):
        loss(*args, gt_flags=object())


def test_bad_prior_levels_name_the_argument():
    meta, arr, args = _case()
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    levels = _two_levels(arr)
    p = arr["priors"].shape[0]
    _raises(lambda: loss(*args, prior_levels=levels.astype(np.int64)), "prior_levels", "int32")
    _raises(lambda: loss(*args, prior_levels=levels + 1), "prior_levels")  # sum != P
    _raises(lambda: loss(*args, prior_levels=np.array([p + 1, -1], np.int32)), "prior_levels")
    _raises(lambda: loss(*args, prior_levels=levels.reshape(1, 2)), "prior_levels")
    _raises(lambda: mbx.match(*args[:4], meta["preset"], prior_levels=[p - 1],
                              **meta["options"]), "prior_levels")


def test_nothing_written_on_error():
    meta, arr, args = _case()
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    grad_loc = np.full(args[4].shape, 7.0, np.float32)
    grad_conf = np.full(args[5].shape, 7.0, np.float32)
    with pytest.raises(mbx.InvalidArgumentError):
        loss(*args, out=(grad_loc, grad_conf), prior_levels=_two_levels(arr) + 1)
    assert (grad_loc == 7.0).all() and (grad_conf == 7.0).all()


# --- RetinaNet level sizes ----------------------------------------------------

@pytest.mark.parametrize("hw", [(512, 512), (600, 1000), (333, 517), (64, 64)])
def test_priors_retinanet_levels_sum_to_the_anchor_count(hw):
    levels = mbx.priors_retinanet_levels(*hw)
    priors = mbx.priors_retinanet(*hw)
    assert levels.dtype == np.int32 and levels.shape == (5,)
    assert (levels > 0).all()
    assert int(levels.sum()) == priors.shape[0]
    # Level l (stride 2^(l+3)) has 9 anchors per cell of its map; finer first.
    assert (levels % 9 == 0).all() and (np.diff(levels) <= 0).all()


def test_priors_retinanet_levels_as_torch():
    torch = pytest.importorskip("torch")
    import mbx.torch as mt
    t = mt.priors_retinanet_levels(600, 1000)
    assert t.dtype == torch.int32
    np.testing.assert_array_equal(t.numpy(), mbx.priors_retinanet_levels(600, 1000))


def test_retinanet_levels_are_accepted_with_retinanet_priors():
    meta, arr, args = _case(FOCAL_CASE)
    h, w = 128, 160
    priors = mbx.priors_retinanet(h, w)
    levels = mbx.priors_retinanet_levels(h, w)
    b, g = arr["gt_labels"].shape
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (b, g, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(8, 60, (b, g, 2)).astype(np.float32)], -1)
    res = mbx.match(priors, boxes, arr["gt_labels"], arr["gt_counts"], "yhenon_retinanet",
                    prior_levels=levels)
    base = mbx.match(priors, boxes, arr["gt_labels"], arr["gt_counts"], "yhenon_retinanet")
    _assert_same(res, base)


# --- ignore regions (gt_flags bit 0) against the numpy reference ---------------

def _reference():
    sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
    import mbx_reference as R
    if "gt_flags" not in inspect.signature(R.compute).parameters:
        pytest.skip("the reference in this tree has no gt_flags")
    return R


def _with_regions(arr):
    """gt_flags marking every third valid row of each image (and one padding
    row, whose flag must not matter) as an ignore region."""
    flags = np.zeros(arr["gt_labels"].shape, np.int32)
    for b, n in enumerate(arr["gt_counts"]):
        flags[b, 0:int(n):3] = 1
        if n < flags.shape[1]:
            flags[b, n] = 1
    return flags


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_path", [CASE, FOCAL_CASE], ids=["softmax", "focal"])
def test_ignore_regions_match_the_reference(case_path, kind):
    R = _reference()
    meta, arr, args = _case(case_path)
    flags = _with_regions(arr)
    assert flags.any()
    want = R.compute(*args, R.Options.from_dict(meta["options"]), gt_flags=flags)
    t_args = [to_kind(a, kind) for a in args]
    got = mbx.match(*t_args[:4], meta["preset"], gt_flags=to_kind(flags, kind), **meta["options"])
    np.testing.assert_array_equal(to_numpy(got.conf_target), want["conf_target"])
    np.testing.assert_array_equal(to_numpy(got.matched_gt), want["matched_gt"])
    np.testing.assert_array_equal(to_numpy(got.num_pos), want["num_pos"])
    assert (want["conf_target"] < 0).sum() > (arr["conf_target"] < 0).sum()  # regions bite
    assert_loc_target_close(got.loc_target, want["loc_target"], want["conf_target"] > 0,
                            "loc_target")
    if meta["options"]["conf_loss"] == "SIGMOID_FOCAL":  # no mining boundary to be near
        out = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*t_args,
                                                                  gt_flags=to_kind(flags, kind))
        assert_loss_close(out.loss_loc, want["loss_loc"], "loss_loc")
        assert_loss_close(out.loss_conf, want["loss_conf"], "loss_conf")
        assert_grad_close(out.grad_loc, want["grad_loc"], "grad_loc")
        assert_grad_close(out.grad_conf, want["grad_conf"], "grad_conf")


@pytest.mark.parametrize("path", ["cpu-scalar", "cpu"])
def test_ignore_regions_same_on_each_cpu_path(path):
    _reference()
    meta, arr, args = _case(FOCAL_CASE)
    flags = _with_regions(arr)
    ctx = mbx.Context(path=path)
    loss = mbx.MultiBoxLoss(meta["preset"], context=ctx, **meta["options"])
    out = loss(*args, gt_flags=flags)
    ref = mbx.MultiBoxLoss(meta["preset"], context=mbx.Context(path="cpu-scalar"),
                           **meta["options"])(*args, gt_flags=flags)
    assert_loss_close(out.loss_conf, float(ref.loss_conf), "loss_conf")
    assert_grad_close(out.grad_conf, ref.grad_conf, "grad_conf")
    # A padding row's flag is never read: flags past gt_counts change nothing.
    more = flags.copy()
    for b, n in enumerate(arr["gt_counts"]):
        more[b, int(n):] = 1
    assert (more != flags).any()
    _assert_same(_loss_tuple(loss(*args, gt_flags=more)), _loss_tuple(out))
