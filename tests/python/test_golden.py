"""Every golden case through the Python API (MultiBoxLoss and match), with the
tolerances of golden/README.md, for numpy, torch CPU and torch CUDA inputs."""

import os

import numpy as np
import pytest

import mbx
from conftest import (INPUTS, KINDS, assert_grad_close, assert_loc_target_close,
                      assert_loss_close, golden_cases, golden_sets, load_case, to_kind, to_numpy)

CASES = golden_cases()
IDS = [os.path.relpath(c, os.path.dirname(c.rstrip(os.sep))) for c in CASES]


def test_golden_cases_found():
    assert CASES, "no golden case under %s" % golden_sets()


def _options(meta):
    return dict(meta["options"])


# Optional inputs of a case (tests/data/README.md): gt_flags.npy [B, G] and
# prior_levels.npy [L], passed by keyword when the case has them.
OPTIONAL_INPUTS = ("gt_flags", "prior_levels")


def _optional_inputs(arr, kind):
    return {k: to_kind(arr[k], kind) for k in OPTIONAL_INPUTS if k in arr}


def _num_classes(meta, arr):
    c = arr["conf"].shape[2]
    return c if meta["options"]["conf_loss"] == "SIGMOID_FOCAL" else c - 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_golden_loss(case_dir, kind):
    meta, arr = load_case(case_dir)
    loss = mbx.MultiBoxLoss(meta["preset"], **_options(meta))
    args = [to_kind(arr[k], kind) for k in INPUTS]
    extra = _optional_inputs(arr, kind)
    out = loss(*args, grad=True, **extra)
    assert_loss_close(out.loss_loc, arr["loss_loc"], "loss_loc")
    assert_loss_close(out.loss_conf, arr["loss_conf"], "loss_conf")
    # The loss's num_pos: the positives left after HARD_EXAMPLE mining.
    np.testing.assert_array_equal(to_numpy(out.num_pos), arr.get("num_pos_loss", arr["num_pos"]))
    assert_grad_close(out.grad_loc, arr["grad_loc"], "grad_loc")
    assert_grad_close(out.grad_conf, arr["grad_conf"], "grad_conf")
    # Outputs are of conf's kind and device.
    if kind == "numpy":
        assert isinstance(out.grad_conf, np.ndarray) and isinstance(out.num_pos, np.ndarray)
    else:
        assert out.grad_conf.device == args[5].device and out.num_pos.device == args[5].device
        assert out.loss_loc.device == args[5].device

    # Forward only gives the same losses and no gradients.
    fwd = loss(*args, grad=False, **extra)
    assert fwd.grad_loc is None and fwd.grad_conf is None
    assert float(to_numpy(fwd.loss_loc)) == pytest.approx(float(to_numpy(out.loss_loc)), rel=1e-6)
    assert float(to_numpy(fwd.loss_conf)) == pytest.approx(float(to_numpy(out.loss_conf)), rel=1e-6)

    # backward() with an upstream gradient scales each gradient.
    g_loc, g_conf = loss.backward(*args, grad_loss=(2.0, -0.5), **extra)
    assert_grad_close(g_loc, 2.0 * arr["grad_loc"], "grad_loc * 2")
    assert_grad_close(g_conf, -0.5 * arr["grad_conf"], "grad_conf * -0.5")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_golden_match(case_dir, kind):
    meta, arr = load_case(case_dir)
    t = mbx.match(*[to_kind(arr[k], kind) for k in INPUTS[:4]], preset=meta["preset"],
                  num_classes=_num_classes(meta, arr), **_optional_inputs(arr, kind),
                  **_options(meta))
    np.testing.assert_array_equal(to_numpy(t.conf_target), arr["conf_target"])
    np.testing.assert_array_equal(to_numpy(t.matched_gt), arr["matched_gt"])
    np.testing.assert_array_equal(to_numpy(t.num_pos), arr["num_pos"])
    assert_loc_target_close(t.loc_target, arr["loc_target"], arr["conf_target"] > 0, "loc_target")


@pytest.mark.parametrize("path", ["cpu-scalar", "cpu"])
@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_golden_loss_each_cpu_path(case_dir, path):
    meta, arr = load_case(case_dir)
    ctx = mbx.Context(path=path, num_threads=1 if path == "cpu-scalar" else 2)
    out = mbx.MultiBoxLoss(meta["preset"], context=ctx, **_options(meta))(
        *[arr[k] for k in INPUTS], **_optional_inputs(arr, "numpy"))
    assert_loss_close(out.loss_loc, arr["loss_loc"], "loss_loc")
    assert_loss_close(out.loss_conf, arr["loss_conf"], "loss_conf")
    assert_grad_close(out.grad_loc, arr["grad_loc"], "grad_loc")
    assert_grad_close(out.grad_conf, arr["grad_conf"], "grad_conf")


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_golden_options_round_trip(case_dir):
    """The options of case.json, set by name, read back identically."""
    meta, _ = load_case(case_dir)
    got = mbx.Options(meta["preset"], **meta["options"]).to_dict()
    for name, value in meta["options"].items():
        if isinstance(value, float):
            assert got[name] == pytest.approx(value, rel=1e-15), name
        elif isinstance(value, list):
            assert got[name] == pytest.approx(value, rel=1e-15), name
        else:
            assert got[name] == value, name
