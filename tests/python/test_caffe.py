"""The Caffe SSD options through Python: keywords, num_pos under
HARD_EXAMPLE, half-precision inputs, and the bad values (docs/SPEC.md §4.6,
tests/HOSTILE_INPUTS.md row 39)."""

import numpy as np
import pytest

import mbx
from problems import random_problem

CAFFE_MODES = [
    dict(),
    dict(mining="HARD_EXAMPLE", mining_sample_size=20),
    dict(mining="HARD_EXAMPLE", mining_sample_size=20, mining_nms_threshold=0.45),
    dict(conf_loss="LOGISTIC"),
    dict(conf_loss="LOGISTIC", mining="HARD_EXAMPLE", mining_nms_threshold=0.5),
    dict(loc_loss="L2", box_coding="CORNER", encode_variance_in_target=True),
    dict(box_coding="CORNER_SIZE", normalization="FULL", loc_average_coords=True),
    dict(normalization="BATCH_SIZE"),
]


def _problem(seed=1):
    return random_problem(seed=seed, batch=3, n_side=5, num_classes=4, max_gt=4, corners=True)


@pytest.mark.parametrize("over", CAFFE_MODES, ids=lambda d: ",".join("%s=%s" % kv for kv in d.items()) or "preset")
def test_cpu_paths_agree_and_num_pos(over):
    args = _problem()
    res = {}
    for path in ("cpu-scalar", "cpu"):
        ctx = mbx.Context(path=path, num_threads=2)
        res[path] = mbx.MultiBoxLoss("caffe_ssd", context=ctx, **over)(*args)
    a, b = res["cpu-scalar"], res["cpu"]
    assert float(b.loss_loc) == pytest.approx(float(a.loss_loc), rel=1e-6)
    assert float(b.loss_conf) == pytest.approx(float(a.loss_conf), rel=1e-6)
    np.testing.assert_allclose(b.grad_conf, a.grad_conf, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(a.num_pos, b.num_pos)
    m = mbx.match(*args[:4], preset="caffe_ssd", **over)
    if over.get("mining") == "HARD_EXAMPLE":
        # The loss counts the positives mining keeps; match reports the matching.
        assert (a.num_pos <= m.num_pos).all()
    else:
        np.testing.assert_array_equal(a.num_pos, m.num_pos)


def test_hard_example_drops_positives_with_a_small_sample():
    args = _problem(seed=4)
    m = mbx.match(*args[:4], preset="caffe_ssd")
    out = mbx.MultiBoxLoss("caffe_ssd", mining="HARD_EXAMPLE", mining_sample_size=2)(*args)
    assert (out.num_pos <= 2).all() and out.num_pos.sum() < m.num_pos.sum()


@pytest.mark.parametrize("over", CAFFE_MODES[1:], ids=lambda d: ",".join("%s=%s" % kv for kv in d.items()))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs(over, dtype):
    torch = pytest.importorskip("torch")
    args = _problem(seed=2)
    # Inputs already representable in the half type, so only the arithmetic differs.
    td = getattr(torch, dtype)
    loc = torch.from_numpy(args[4]).to(td)
    conf = torch.from_numpy(args[5]).to(td)
    crit = mbx.MultiBoxLoss("caffe_ssd", **over)
    t = [torch.from_numpy(a) for a in args[:4]]
    half = crit(*t, loc, conf)
    full = crit(*t, loc.float(), conf.float())
    assert half.grad_conf.dtype == td and half.grad_loc.dtype == td
    assert float(half.loss_conf) == pytest.approx(float(full.loss_conf), rel=1e-6)
    assert float(half.loss_loc) == pytest.approx(float(full.loss_loc), rel=1e-6)
    g = full.grad_conf.to(td).float()
    assert torch.allclose(half.grad_conf.float(), g, rtol=0, atol=0)


@pytest.mark.parametrize("over,fragment", [
    (dict(mining_sample_size=0), "mining_sample_size"),
    (dict(mining_nms_threshold=1.5), "mining_nms_threshold"),
    (dict(mining_nms_threshold=float("nan")), "mining_nms_threshold"),
    (dict(mining="HARD"), "mining"),
    (dict(box_coding="CORNERS"), "box_coding"),
    (dict(force_match="BIPARTITE_X"), "force_match"),
    (dict(conf_loss="SIGMOID_FOCAL", mining="HARD_EXAMPLE"), "HARD_EXAMPLE"),
])
def test_bad_values_name_the_option(over, fragment):
    args = _problem()
    with pytest.raises(mbx.InvalidArgumentError, match=fragment):
        mbx.MultiBoxLoss("caffe_ssd", **over)(*args)


def test_presets_by_name():
    o = mbx.Options("caffe_ssd").to_dict()
    assert o["force_match"] == "BIPARTITE" and o["prior_format"] == "CORNERS"
    assert o["clamp_num_neg"] is False and o["mining"] == "MAX_NEGATIVE"
    s = mbx.Options("sgrvinod_ssd").to_dict()
    assert s["loc_loss"] == "L1" and s["loc_average_coords"] is True
    assert s["mining_sample_size"] == 64 and s["box_coding"] == "CENTER_SIZE"
