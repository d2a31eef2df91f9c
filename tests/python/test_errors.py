"""Every error path raises an mbx exception with a message naming the
argument (and image / row where relevant); nothing is written to outputs."""

import numpy as np
import pytest

import mbx
from problems import random_problem


@pytest.fixture
def prob():
    return list(random_problem(seed=1, batch=2, n_side=4, num_classes=3, max_gt=3))


def _raises_invalid(fn, *words):
    with pytest.raises(mbx.InvalidArgumentError) as ei:
        fn()
    e = ei.value
    assert isinstance(e, ValueError) and isinstance(e, mbx.Error)
    assert e.status == mbx.Status.INVALID_ARGUMENT
    assert e.status_name == "MBX_STATUS_INVALID_ARGUMENT"
    assert e.message == str(e)
    for w in words:
        assert w in str(e), "%r not in message %r" % (w, str(e))
    return e


def test_error_hierarchy():
    assert issubclass(mbx.InvalidArgumentError, mbx.Error)
    assert issubclass(mbx.InvalidArgumentError, ValueError)
    assert issubclass(mbx.OutOfMemoryError, MemoryError)
    for cls in (mbx.UnsupportedError, mbx.NoDeviceError, mbx.DeviceError,
                mbx.ContextBusyError, mbx.InternalError):
        assert issubclass(cls, mbx.Error) and not issubclass(cls, ValueError)
    assert mbx.InvalidArgumentError.__module__ == "mbx"


def test_wrong_dtype_float(prob):
    p, b, l, c, lo, co = prob
    loss = mbx.MultiBoxLoss()
    _raises_invalid(lambda: loss(p.astype(np.float64), b, l, c, lo, co), "priors", "dtype", "float64")
    _raises_invalid(lambda: loss(p, b.astype(np.float64), l, c, lo, co), "gt_boxes", "dtype")
    _raises_invalid(lambda: loss(p, b, l, c, lo.astype(np.float64), co), "loc", "dtype")
    _raises_invalid(lambda: loss(p, b, l, c, lo, co.astype(np.int32)), "conf", "dtype")


def test_wrong_dtype_int(prob):
    p, b, l, c, lo, co = prob
    loss = mbx.MultiBoxLoss()
    _raises_invalid(lambda: loss(p, b, l.astype(np.int64), c, lo, co), "gt_labels", "int64", "int32")
    _raises_invalid(lambda: loss(p, b, l, c.astype(np.int64), lo, co), "gt_counts", "int64", "int32")
    _raises_invalid(lambda: mbx.match(p, b, l.astype(np.float32), c), "gt_labels", "float32")


def test_wrong_dtype_torch(prob):
    torch = pytest.importorskip("torch")
    p, b, l, c, lo, co = [torch.from_numpy(x) for x in prob]
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l.long(), c, lo, co), "gt_labels", "int64")
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo.double(), co), "loc", "float64")


@pytest.mark.parametrize("which,shape_fn,word", [
    ("loc", lambda a: a[:, :-1], "loc"),
    ("loc", lambda a: a[..., :3], "loc"),
    ("conf", lambda a: a[:1], "conf"),
    ("conf", lambda a: a[:, :-2], "conf"),
    ("priors", lambda a: a[:, :3], "priors"),
    ("gt_labels", lambda a: a[:, :-1], "gt_labels"),
    ("gt_counts", lambda a: a[:1], "gt_counts"),
    ("gt_boxes", lambda a: a[0], "gt_boxes"),
])
def test_shape_mismatch(prob, which, shape_fn, word):
    names = ["priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf"]
    args = list(prob)
    i = names.index(which)
    args[i] = np.ascontiguousarray(shape_fn(args[i]))
    _raises_invalid(lambda: mbx.MultiBoxLoss()(*args), word)


def test_softmax_needs_two_columns(prob):
    p, b, l, c, lo, co = prob
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, np.zeros_like(l), c, lo, co[..., :1]),
                    "conf", "C >= 2")


def test_bad_option_name():
    _raises_invalid(lambda: mbx.MultiBoxLoss(overlap=0.5), "overlap", "pos_threshold")
    _raises_invalid(lambda: mbx.match(np.zeros((1, 4), np.float32), np.zeros((1, 1, 4), np.float32),
                                      np.zeros((1, 1), np.int32), np.zeros(1, np.int32), foo=1), "foo")


@pytest.mark.parametrize("kwargs,words", [
    ({"pos_threshold": "abc"}, ("pos_threshold", "abc")),
    ({"pos_threshold": 1.5}, ("pos_threshold", "[0, 1]")),
    ({"pos_threshold": 0.3, "neg_threshold": 0.4}, ("neg_threshold",)),
    ({"conf_loss": "SOFTMAX"}, ("conf_loss", "SOFTMAX_CE")),
    ({"prior_format": "XYWH"}, ("prior_format", "CENTER_SIZE")),
    ({"normalization": "MEAN"}, ("normalization",)),
    ({"variances": [0.1, 0.1, 0.2]}, ("variances",)),
    ({"variances": [0.1, 0.1, 0.2, 0.0]}, ("variances",)),
    ({"smooth_l1_beta": -1}, ("smooth_l1_beta",)),
    ({"focal_alpha": 2.0}, ("focal_alpha",)),
    ({"normalization": "EXTERNAL", "external_norm": 0}, ("external_norm",)),
    ({"clamp_num_neg": "maybe"}, ("clamp_num_neg",)),
    ({"neg_pos_ratio": object()}, ("neg_pos_ratio",)),
])
def test_bad_option_value(kwargs, words):
    _raises_invalid(lambda: mbx.MultiBoxLoss(**kwargs), *words)


def test_bad_preset():
    _raises_invalid(lambda: mbx.MultiBoxLoss("ssd"), "ssd", "ssd_pytorch")
    _raises_invalid(lambda: mbx.Options(17), "preset")


def test_nan_gt_box(prob):
    p, b, l, c, lo, co = prob
    b = b.copy()
    b[1, 0, 2] = np.nan
    e = _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "gt_boxes", "image 1", "row 0")
    assert "non-finite" in str(e)
    _raises_invalid(lambda: mbx.match(p, b, l, c), "gt_boxes", "image 1")


def test_degenerate_gt_box(prob):
    p, b, l, c, lo, co = prob
    b = b.copy()
    b[0, 0, 3] = b[0, 0, 1]
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "gt_boxes", "image 0", "row 0")


def test_invalid_gt_skip_option(prob):
    """invalid_gt=SKIP treats such a row like padding: same as dropping it."""
    p, b, l, c, lo, co = prob
    assert b.shape[1] >= 2
    b2 = b.copy()
    l = l.copy()
    l[1, 1] = 0
    c2 = c.copy()
    c2[1] = 1  # only row 0 valid in image 1 -> compare against a NaN in row 1
    b2[1, 1, 0] = np.nan
    c3 = c.copy()
    c3[1] = 2
    skip = mbx.MultiBoxLoss(invalid_gt="SKIP")(p, b2, l, c3, lo, co)
    ref = mbx.MultiBoxLoss()(p, b, l, c2, lo, co)
    assert skip.loss_conf == ref.loss_conf and skip.loss_loc == ref.loss_loc
    np.testing.assert_array_equal(skip.grad_conf, ref.grad_conf)


def test_label_out_of_range(prob):
    p, b, l, c, lo, co = prob
    l = l.copy()
    l[0, 0] = 3  # K = 3 (C = 4 with background)
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "gt_labels", "image 0", "row 0", "[0, 3)")
    l[0, 0] = -1
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "gt_labels", "image 0")
    l[0, 0] = 2
    _raises_invalid(lambda: mbx.match(p, b, l, c, num_classes=2), "gt_labels", "image 0")


def test_gt_counts_out_of_range(prob):
    p, b, l, c, lo, co = prob
    c = c.copy()
    c[1] = b.shape[1] + 1
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "gt_counts[1]", "G")
    c[1] = -1
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "gt_counts[1]")


def test_bad_priors(prob):
    p, b, l, c, lo, co = prob
    p = p.copy()
    p[3, 2] = 0.0
    _raises_invalid(lambda: mbx.MultiBoxLoss()(p, b, l, c, lo, co), "priors[3]")
    p[3, 2] = np.inf
    _raises_invalid(lambda: mbx.match(p, b, l, c), "priors[3]")


def test_not_a_tensor(prob):
    p, b, l, c, lo, co = prob
    with pytest.raises(TypeError, match="conf"):
        mbx.MultiBoxLoss()(p, b, l, c, lo, None)
    with pytest.raises(TypeError, match="loc"):
        mbx.MultiBoxLoss()(p, b, l, c, object(), co)
    with pytest.raises(TypeError, match="dltensor|__dlpack__"):
        mbx.mbx_native.mbx_decode(None, mbx.Options().native, p, "not a tensor", lo)


def test_raw_module_rejects_consumed_capsule(prob):
    torch = pytest.importorskip("torch")
    p, b, l, c, lo, co = prob
    cap = torch.from_numpy(lo).__dlpack__()
    torch.utils.dlpack.from_dlpack(cap)  # consumes it (renamed "used_dltensor")
    out = np.empty_like(lo)
    with pytest.raises(TypeError, match="consumed"):
        mbx.mbx_native.mbx_decode(None, mbx.Options().native, p, cap, out)


def test_grad_loss_bad(prob):
    p, b, l, c, lo, co = prob
    loss = mbx.MultiBoxLoss()
    _raises_invalid(lambda: loss(p, b, l, c, lo, co, grad_loss=(1.0,)), "grad_loss", "2")
    _raises_invalid(lambda: loss(p, b, l, c, lo, co, grad_loss=np.ones(3)), "grad_loss")
    _raises_invalid(lambda: loss(p, b, l, c, lo, co, grad=False, grad_loss=(1.0, 1.0)), "grad_loss")


def test_outputs_untouched_on_error(prob):
    """Raw module: on error nothing is written to the output tensors."""
    p, b, l, c, lo, co = prob
    l = l.copy()
    l[1, 0] = 99
    loss = np.full(2, -7.0)
    num_pos = np.full(2, -7, np.int32)
    gl = np.full_like(lo, -7.0)
    gc = np.full_like(co, -7.0)
    with pytest.raises(mbx.InvalidArgumentError):
        mbx.mbx_native.mbx_loss_forward_backward(None, mbx.Options().native, p, b, l, c, lo, co,
                                                 None, loss, num_pos, gl, gc)
    assert (loss == -7).all() and (num_pos == -7).all() and (gl == -7).all() and (gc == -7).all()


def test_aliasing_output_rejected(prob):
    p, b, l, c, lo, co = prob
    with pytest.raises(mbx.InvalidArgumentError, match="overlap"):
        mbx.mbx_native.mbx_decode(None, mbx.Options().native, p, lo, lo)


def test_context_errors():
    _raises_invalid(lambda: mbx.Context(num_threads=-1), "num_threads")
    _raises_invalid(lambda: mbx.Context(path="gpu"), "path", "cpu-scalar")
    if not mbx.cuda_available():
        with pytest.raises(mbx.NoDeviceError, match="cuda"):
            mbx.Context(path="cuda")
    ctx = mbx.Context()
    ctx.close()
    _raises_invalid(lambda: mbx.MultiBoxLoss(context=ctx)(*random_problem()), "closed")


def test_priors_errors():
    _raises_invalid(lambda: mbx.priors_ssd("yolo"), "yolo", "voc")
    _raises_invalid(lambda: mbx.priors_retinanet(0, 10), "0 x 10")


def test_cuda_tensor_without_cuda_build(prob):
    torch = pytest.importorskip("torch")
    if mbx.cuda_available() or not torch.cuda.is_available():
        pytest.skip("needs a CUDA device and an mbx built without CUDA")
    args = [torch.from_numpy(x).cuda() for x in prob]
    with pytest.raises(mbx.Error, match="priors|device"):
        mbx.MultiBoxLoss()(*args)
