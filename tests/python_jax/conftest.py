"""Shared helpers for the mbx.jax tests (tests/python_jax).

Run in a venv with jax (see .ci/requirements-jax.txt) and the mbx package
(with libmbx_jax.so) on the path:
    PYTHONPATH=<build>/python python -m pytest tests/python_jax -q
JAX sees 4 CPU devices (XLA_FLAGS is set here, before jax is imported) for
the shard_map and concurrency tests. Cases: every directory holding a
case.json under tests/data/{golden,generated,stress} (MBX_GOLDEN_DIRS adds
more, os.pathsep-separated). Tolerances are those of tests/data/golden/README.md.
This file does not import torch: jax's numpy 2 and Debian's torch do not mix.
"""

import json
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INPUTS = ("priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf")


def case_sets():
    sets = [os.path.join(REPO, "tests", "data", name) for name in ("golden", "generated", "stress")]
    sets += [d for d in os.environ.get("MBX_GOLDEN_DIRS", "").split(os.pathsep) if d]
    return sets


def all_cases():
    cases = []
    for root in case_sets():
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if "case.json" in filenames:
                cases.append(dirpath)
    return cases


def case_id(d):
    return os.path.relpath(d, os.path.join(REPO, "tests", "data")) if d.startswith(REPO) else d


def load_case(d):
    with open(os.path.join(d, "case.json")) as f:
        meta = json.load(f)
    arr = {name[:-4]: np.load(os.path.join(d, name))
           for name in os.listdir(d) if name.endswith(".npy")}
    return meta, arr


def num_classes(meta, arr):
    c = arr["conf"].shape[2]
    return c - 1 if meta["options"]["conf_loss"] == "SOFTMAX_CE" else c


def assert_loss_close(got, want, what):
    got, want = float(np.asarray(got)), float(want)
    assert abs(got - want) <= 1e-4 * abs(want) + 1e-7, "%s: got %r, want %r" % (what, got, want)


def assert_grad_close(got, want, what):
    """golden README: |g - g_ref| <= 1e-4 max|g_ref| + 1e-4 |g_ref|."""
    got = np.asarray(got).astype(np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, "%s: shape %s, want %s" % (what, got.shape, want.shape)
    tol = 1e-4 * np.abs(want).max() + 1e-4 * np.abs(want)
    bad = np.abs(got - want) > tol
    assert not bad.any(), "%s: %d elements out of tolerance" % (what, bad.sum())


def assert_loc_target_close(got, want, what):
    got = np.asarray(got).astype(np.float64)
    want = np.asarray(want, np.float64)
    tol = 1e-5 * max(np.abs(want).max(), 1e-30) + 1e-5 * np.abs(want)
    assert np.all(np.abs(got - want) <= tol), "%s: max error %g" % (what, np.abs(got - want).max())


def gpu_devices():
    import jax
    try:
        return jax.devices("gpu")
    except RuntimeError:
        return []


@pytest.fixture(scope="session")
def jax_module():
    import jax
    return jax
