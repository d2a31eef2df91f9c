"""Shared helpers for the mbx Python tests.

Run with the package on the path, e.g.
    PYTHONPATH=<build>/python python -m pytest tests/python -q
Golden sets: MBX_GOLDEN_DIR (default: <repo>/tests/data/golden) plus any
directories in MBX_GOLDEN_DIRS (os.pathsep-separated). Every directory
below a set that holds a case.json is a case.
"""

import json
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

INPUTS = ("priors", "gt_boxes", "gt_labels", "gt_counts", "loc", "conf")


def golden_sets():
    sets = [os.environ.get("MBX_GOLDEN_DIR") or os.path.join(REPO, "tests", "data", "golden")]
    extra = os.environ.get("MBX_GOLDEN_DIRS", "")
    sets += [d for d in extra.split(os.pathsep) if d]
    return sets


def golden_cases():
    cases = []
    for root in golden_sets():
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if "case.json" in filenames:
                cases.append(dirpath)
    return cases


def load_case(d):
    with open(os.path.join(d, "case.json")) as f:
        meta = json.load(f)
    arr = {name[:-4]: np.load(os.path.join(d, name))
           for name in os.listdir(d) if name.endswith(".npy")}
    return meta, arr


def _torch():
    return pytest.importorskip("torch")


def cuda_ok():
    try:
        import torch
    except ImportError:
        return False
    import mbx
    return torch.cuda.is_available() and mbx.cuda_available()


KINDS = [
    "numpy",
    "torch_cpu",
    pytest.param("torch_cuda", marks=pytest.mark.skipif(not cuda_ok(),
                                                       reason="no CUDA device / mbx without CUDA")),
]


def to_kind(a, kind):
    """numpy array -> the given input kind."""
    if kind == "numpy":
        return a
    torch = _torch()
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.cuda() if kind == "torch_cuda" else t


def to_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (np.generic, float, int)):
        return np.asarray(x)
    return x.detach().cpu().numpy()


def assert_loss_close(got, want, what):
    got = float(to_numpy(got))
    want = float(want)
    assert abs(got - want) <= 1e-4 * abs(want) + 1e-7, "%s: got %r, want %r" % (what, got, want)


def assert_grad_close(got, want, what):
    """golden README: |g - g_ref| <= 1e-4 max|g_ref| + 1e-4 |g_ref|."""
    got = to_numpy(got).astype(np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, "%s: shape %s, want %s" % (what, got.shape, want.shape)
    tol = 1e-4 * np.abs(want).max() + 1e-4 * np.abs(want)
    bad = np.abs(got - want) > tol
    assert not bad.any(), "%s: %d elements out of tolerance, worst at %s: %r vs %r" % (
        what, bad.sum(), np.unravel_index(np.argmax(np.abs(got - want) - tol), want.shape),
        got[bad][:3], want[bad][:3])


def assert_loc_target_close(got, want, mask, what):
    """golden README: abs 1e-5 * max|loc_target| (+ rtol 1e-5)."""
    got = to_numpy(got).astype(np.float64)
    want = np.asarray(want, np.float64)
    tol = 1e-5 * max(np.abs(want).max(), 1e-30) + 1e-5 * np.abs(want)
    assert np.all(np.abs(got - want) <= tol), "%s: max error %g" % (what, np.abs(got - want).max())


@pytest.fixture(scope="session")
def golden_case_dirs():
    return golden_cases()
