"""The Python API around the calls: options, context, input kinds, strides,
output kinds, decode, priors, threads."""

import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import mbx
from conftest import INPUTS, golden_cases, load_case
from problems import random_problem


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", mbx.version())
    major, minor, patch = (int(x) for x in mbx.version().split("."))
    assert mbx.version_number() == major * 10000 + minor * 100 + patch
    assert mbx.__version__ == mbx.version()
    assert isinstance(mbx.cuda_available(), bool)
    assert mbx.path_available("auto") and mbx.path_available("cpu-scalar")
    assert mbx.path_available("cuda") == mbx.cuda_available()


def test_version_matches_project(tmp_path):
    """The runtime version, the package's and the wheel's (setup.py) are the
    project(VERSION) of CMakeLists.txt, which ctest passes in."""
    project = os.environ.get("MBX_PROJECT_VERSION")
    if not project:
        pytest.skip("MBX_PROJECT_VERSION is not set (ctest sets it)")
    assert mbx.version() == project and mbx.__version__ == project
    setup_py = os.path.join(os.path.dirname(__file__), "..", "..", "packaging", "python", "setup.py")
    pytest.importorskip("setuptools")
    out = subprocess.run([sys.executable, setup_py, "--version"], cwd=str(tmp_path),
                         capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == project


def test_status_and_errors_follow_the_library():
    n = mbx.mbx_native
    for status in mbx.Status:
        assert n.mbx_status_string(status) == "MBX_STATUS_" + status.name
        assert getattr(n, "MBX_STATUS_" + status.name) == status
    # One exception class per status other than OK.
    names = {cls.__name__ for cls in mbx.Error.__subclasses__()}
    assert len(names) == len(mbx.Status) - 1 and "InvalidArgumentError" in names


def test_options_list_every_library_option():
    """OPTION_NAMES, PRESETS and to_dict() come from the library's
    introspection, and to_dict() round-trips bitwise through Options(...)."""
    n = mbx.mbx_native
    names = tuple(n.mbx_option_name(i) for i in range(n.mbx_option_count()))
    assert mbx.OPTION_NAMES == names
    assert mbx.PRESETS == tuple(n.mbx_preset_name(p) for p in range(n.mbx_preset_count()))
    for preset_id, preset in enumerate(mbx.PRESETS):
        assert n.mbx_preset_from_name(preset) == preset_id
        o = mbx.Options(preset)
        d = o.to_dict()
        assert tuple(d) == names
        again = mbx.Options("ssd_pytorch", **d)
        assert again.to_dict() == d
        for name in names:
            assert n.mbx_option_text(again.native, name) == n.mbx_option_text(o.native, name)
        assert all("%s=" % name in repr(o) for name in names)
    with pytest.raises(KeyError):
        mbx.Options()["no_such_option"]


@pytest.mark.parametrize("preset,expect", [
    ("ssd_pytorch", {"prior_format": "CENTER_SIZE", "force_match": "BEST_PRIOR_PER_GT",
                     "clamp_num_neg": True, "conf_loss": "SOFTMAX_CE", "variances": [.1, .1, .2, .2]}),
    ("torchvision_ssd", {"prior_format": "CORNERS", "clamp_num_neg": False, "neg_pos_ratio": 3.0}),
    ("yhenon_retinanet", {"neg_threshold": 0.4, "force_match": "NONE", "encode_min_gt_wh": 1.0,
                          "conf_loss": "SIGMOID_FOCAL", "normalization": "PER_IMAGE",
                          "loc_average_coords": True}),
    ("torchvision_retinanet", {"force_match": "LOW_QUALITY", "loc_loss": "L1",
                               "variances": [1.0, 1.0, 1.0, 1.0], "focal_alpha": 0.25}),
])
def test_presets(preset, expect):
    d = mbx.options(preset)
    assert set(d) == set(mbx.OPTION_NAMES)
    for k, v in expect.items():
        assert d[k] == pytest.approx(v) if isinstance(v, (float, list)) else d[k] == v, k


def test_options_values_and_replace():
    o = mbx.Options("torchvision_ssd", pos_threshold=np.float32(0.25), neg_threshold=0.125,
                    variances=(0.5, 0.25, 1, 2), clamp_num_neg=True, neg_pos_ratio=np.int64(5))
    assert o["pos_threshold"] == 0.25 and o["neg_threshold"] == 0.125
    assert o["variances"] == [0.5, 0.25, 1.0, 2.0]
    assert o["clamp_num_neg"] is True and o["neg_pos_ratio"] == 5.0
    o2 = o.replace(normalization="EXTERNAL", external_norm=7.5)
    assert o2["normalization"] == "EXTERNAL" and o2["variances"] == [0.5, 0.25, 1.0, 2.0]
    assert o["normalization"] == "TOTAL_POSITIVES"
    assert mbx.Options("custom(yhenon_retinanet)")["conf_loss"] == "SIGMOID_FOCAL"
    assert "torchvision_ssd" in repr(o)


def test_options_change_results():
    args = random_problem(seed=2)
    base = mbx.MultiBoxLoss()(*args)
    ext = mbx.MultiBoxLoss(normalization="EXTERNAL", external_norm=2.0)(*args)
    none = mbx.MultiBoxLoss(normalization="NONE")(*args)
    assert ext.loss_conf == pytest.approx(float(none.loss_conf) / 2.0, rel=1e-12)
    n = max(1, int(base.num_pos.sum()))
    assert base.loss_loc == pytest.approx(float(none.loss_loc) / n, rel=1e-12)


@pytest.fixture(scope="module")
def golden():
    cases = golden_cases()
    if not cases:
        pytest.skip("no golden cases")
    return load_case(cases[1 if len(cases) > 1 else 0])


def _run(meta, args, **call_kw):
    return mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*args, **call_kw)


def test_non_contiguous_inputs_numpy(golden):
    meta, arr = golden
    ref = _run(meta, [arr[k] for k in INPUTS])
    # Fortran-ordered and strided views of the same values.
    args = [np.asfortranarray(arr[k]) for k in INPUTS]
    args[5] = np.repeat(arr["conf"], 2, axis=2)[:, :, ::2]
    assert not args[5].flags.c_contiguous
    out = _run(meta, args)
    assert out.loss_conf == ref.loss_conf and out.loss_loc == ref.loss_loc
    np.testing.assert_array_equal(out.grad_conf, ref.grad_conf)


def test_non_contiguous_inputs_torch(golden):
    torch = pytest.importorskip("torch")
    meta, arr = golden
    ref = _run(meta, [arr[k] for k in INPUTS])
    loc = torch.from_numpy(arr["loc"].transpose(0, 2, 1).copy()).transpose(1, 2)
    assert not loc.is_contiguous()
    args = [torch.from_numpy(arr[k]) for k in INPUTS]
    args[4] = loc
    out = _run(meta, args)
    assert out.loss_loc.item() == pytest.approx(float(ref.loss_loc), rel=1e-6)
    np.testing.assert_array_equal(out.grad_loc.numpy(), ref.grad_loc)


def test_readonly_and_list_inputs(golden):
    meta, arr = golden
    ref = _run(meta, [arr[k] for k in INPUTS])
    args = [arr[k].copy() for k in INPUTS]
    for a in args:
        a.flags.writeable = False
    args[3] = arr["gt_counts"].tolist()
    out = _run(meta, args)
    assert out.loss_conf == ref.loss_conf


class _Producer:
    """A foreign DLPack producer (neither numpy nor torch)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, stream=None):
        return self._a.__dlpack__()

    def __dlpack_device__(self):
        return (1, 0)


def test_generic_dlpack_producer(golden):
    meta, arr = golden
    ref = _run(meta, [arr[k] for k in INPUTS])
    out = _run(meta, [_Producer(arr[k]) for k in INPUTS])
    assert isinstance(out.grad_conf, np.ndarray)
    assert out.loss_conf == ref.loss_conf
    # The raw SWIG module accepts capsules and __dlpack__ objects directly.
    boxes = np.empty_like(arr["loc"])
    mbx.mbx_native.mbx_decode(None, mbx.Options(meta["preset"], **meta["options"]).native,
                              arr["priors"].__dlpack__(), _Producer(arr["loc"]), boxes)
    np.testing.assert_array_equal(boxes, mbx.decode(arr["priors"], arr["loc"], meta["preset"],
                                                    **meta["options"]))


def test_mixed_numpy_torch_cpu(golden):
    torch = pytest.importorskip("torch")
    meta, arr = golden
    args = [arr[k] for k in INPUTS]
    args[5] = torch.from_numpy(arr["conf"])
    out = _run(meta, args)
    assert isinstance(out.grad_conf, torch.Tensor) and isinstance(out.grad_loc, torch.Tensor)
    assert out.loss_conf.dtype == torch.float32
    m = mbx.match(*[torch.from_numpy(arr[k]) for k in INPUTS[:4]], preset=meta["preset"],
                  **meta["options"])
    assert isinstance(m.conf_target, torch.Tensor) and m.conf_target.dtype == torch.int32
    np.testing.assert_array_equal(m.conf_target.numpy(), arr["conf_target"])


def test_grad_loss_forms(golden):
    meta, arr = golden
    args = [arr[k] for k in INPUTS]
    ref = _run(meta, args)
    out = _run(meta, args, grad_loss=np.array([0.5, 4.0]))
    np.testing.assert_allclose(out.grad_loc, 0.5 * ref.grad_loc, rtol=1e-6)
    np.testing.assert_allclose(out.grad_conf, 4.0 * ref.grad_conf, rtol=1e-6)
    assert out.loss_conf == ref.loss_conf  # the upstream gradient does not change the loss
    torch = pytest.importorskip("torch")
    targs = [torch.from_numpy(a) for a in args]
    out_t = _run(meta, targs, grad_loss=(torch.tensor(0.5), torch.tensor(4.0)))
    np.testing.assert_allclose(out_t.grad_conf.numpy(), 4.0 * ref.grad_conf, rtol=1e-6)


def test_zero_gt_images_and_empty_batch():
    p, b, l, c, lo, co = random_problem(seed=3)
    c = np.zeros_like(c)
    out = mbx.MultiBoxLoss()(p, b, l, c, lo, co)
    assert out.num_pos.tolist() == [0, 0] and out.loss_loc == 0.0
    assert out.loss_conf == 0.0  # ratio 3 x 0 positives mines nothing
    assert np.isfinite(out.grad_conf).all() and not out.grad_conf.any()
    focal = mbx.MultiBoxLoss("ssd_pytorch", conf_loss="SIGMOID_FOCAL")(p, b, l, c, lo, co)
    assert focal.loss_conf > 0  # every prior is a negative for the focal loss
    with pytest.raises(mbx.InvalidArgumentError, match="B = 0"):
        mbx.MultiBoxLoss()(p, b[:0], l[:0], c[:0], lo[:0], co[:0])


def test_decode_inverts_match(golden):
    meta, arr = golden
    opts = mbx.Options(meta["preset"], **meta["options"])
    m = mbx.match(arr["priors"], arr["gt_boxes"], arr["gt_labels"], arr["gt_counts"], opts)
    boxes = mbx.decode(arr["priors"], m.loc_target, opts)
    assert boxes.shape == m.loc_target.shape and boxes.dtype == np.float32
    pos = m.conf_target > 0
    bi, pi = np.nonzero(pos)
    want = arr["gt_boxes"][bi, m.matched_gt[bi, pi]]
    np.testing.assert_allclose(boxes[bi, pi], want, atol=1e-5)


def test_priors_ssd():
    pri = mbx.priors_ssd("voc")
    assert pri.shape == (8732, 4) and pri.dtype == np.float32
    assert pri.min() >= 0 and pri.max() <= 1
    # ssd.pytorch PriorBox, first cell of the 38x38 map (step 8, min 30, max 60).
    c = 0.5 * 8 / 300
    s, s2 = 30 / 300, np.sqrt(30 / 300 * 60 / 300)
    want = [[c, c, s, s], [c, c, s2, s2], [c, c, s * np.sqrt(2), s / np.sqrt(2)],
            [c, c, s / np.sqrt(2), s * np.sqrt(2)]]
    np.testing.assert_allclose(pri[:4], want, rtol=1e-6)
    assert mbx.priors_ssd("ssd512_voc").shape == (24564, 4)
    torch = pytest.importorskip("torch")
    import mbx.torch as mt
    assert mt.priors_ssd("coco").shape == (8732, 4)


def test_priors_retinanet():
    a = mbx.priors_retinanet(512, 512)
    assert a.shape == ((64 ** 2 + 32 ** 2 + 16 ** 2 + 8 ** 2 + 4 ** 2) * 9, 4)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    assert np.isclose(np.sqrt(w * h).min(), 32, rtol=1e-5)
    assert np.isclose(np.sqrt(w * h).max(), 512 * 2 ** (2 / 3), rtol=1e-5)


def test_context_properties_and_thread_count_independence(golden):
    meta, arr = golden
    args = [arr[k] for k in INPUTS]
    with mbx.Context(num_threads=1) as c1, mbx.Context(num_threads=2, path="cpu") as c2:
        assert c1.num_threads == 1 and c2.path == "cpu" and c1.path == "auto"
        r1 = mbx.MultiBoxLoss(meta["preset"], context=c1, **meta["options"])(*args)
        r2 = mbx.MultiBoxLoss(meta["preset"], context=c2, **meta["options"])(*args)
        assert r1.loss_conf == r2.loss_conf and r1.loss_loc == r2.loss_loc  # bitwise
        np.testing.assert_array_equal(r1.grad_conf, r2.grad_conf)
        assert c1.workspace_bytes >= 0
        c1.release_workspace()
        c1.path = "cpu-scalar"
        assert c1.path == "cpu-scalar"
    assert "closed" in repr(c1)


def test_threads_share_one_loss(golden):
    """Python threads sharing one MultiBoxLoss (one context) are serialised
    by its lock and all get the single-threaded result."""
    meta, arr = golden
    args = [arr[k] for k in INPUTS]
    loss = mbx.MultiBoxLoss(meta["preset"], **meta["options"])
    ref = loss(*args)
    results, errors = [], []

    def work():
        try:
            for _ in range(10):
                results.append(loss(*args))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 40
    for r in results:
        assert r.loss_conf == ref.loss_conf
        np.testing.assert_array_equal(r.grad_conf, ref.grad_conf)


def test_gil_released_during_compute():
    """While one thread is inside a long C call, another Python thread keeps
    running: the longest pause the main thread sees is well below the call's
    duration."""
    rng = np.random.default_rng(0)
    pri = mbx.priors_ssd("voc")
    b = 40  # ~0.15 s per call on the scalar path
    boxes = np.tile(np.array([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]], np.float32), (b, 1, 1))
    labels = np.zeros((b, 2), np.int32)
    counts = np.full(b, 2, np.int32)
    loc = rng.normal(size=(b, pri.shape[0], 4)).astype(np.float32)
    conf = rng.normal(size=(b, pri.shape[0], 21)).astype(np.float32)
    loss = mbx.MultiBoxLoss(context=mbx.Context(num_threads=1, path="cpu-scalar"))
    t0 = time.perf_counter()
    loss(pri, boxes, labels, counts, loc, conf)
    one_call = time.perf_counter() - t0
    done = threading.Event()

    def work():
        for _ in range(3):
            loss(pri, boxes, labels, counts, loc, conf)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    last, worst = time.perf_counter(), 0.0
    while not done.is_set():
        now = time.perf_counter()
        worst = max(worst, now - last)
        last = now
        time.sleep(0.001)
    th.join()
    assert one_call > 0.05, "problem too small to measure (%.4f s)" % one_call
    assert worst < 0.5 * one_call, "main thread paused %.3f s during %.3f s calls" % (worst, one_call)


def test_out_buffers_are_written_in_place_and_checked():
    import mbx
    rng = np.random.default_rng(5)
    priors = mbx.priors_ssd("voc")
    B, P, C = 2, priors.shape[0], 21
    gt_boxes = np.array([[[0.1, 0.1, 0.5, 0.6], [0.3, 0.2, 0.9, 0.8]]] * B, np.float32)
    gt_labels = np.array([[3, 7]] * B, np.int32)
    gt_counts = np.array([2, 1], np.int32)
    loc = rng.normal(size=(B, P, 4)).astype(np.float32)
    conf = rng.normal(0, 2, size=(B, P, C)).astype(np.float32)
    loss = mbx.MultiBoxLoss("ssd_pytorch")
    ref = loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf)
    gl = np.full((B, P, 4), 7.0, np.float32)
    gc = np.full((B, P, C), 7.0, np.float32)
    r = loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, out=(gl, gc))
    assert r.grad_loc is gl and r.grad_conf is gc
    np.testing.assert_array_equal(gl, ref.grad_loc)
    np.testing.assert_array_equal(gc, ref.grad_conf)
    assert r.loss_loc == ref.loss_loc and r.loss_conf == ref.loss_conf
    with pytest.raises(mbx.InvalidArgumentError, match="out\\[1\\] \\(grad_conf\\): shape"):
        loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, out=(gl, gc[:, :, :5].copy()))
    with pytest.raises(mbx.InvalidArgumentError, match="C-contiguous"):
        loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, out=(gl, np.asfortranarray(gc)))
    with pytest.raises(mbx.InvalidArgumentError, match="dtype"):
        loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, out=(gl.astype(np.float64), gc))
    bl, bc = loss.backward(priors, gt_boxes, gt_labels, gt_counts, loc, conf, out=(gl, gc))
    assert bl is gl and bc is gc


def test_workspace_size_and_caller_workspace(golden):
    """The size query and Context.set_workspace; the CPU path ignores a
    caller workspace (the CUDA side runs in tests/python/test_torch.py and
    tests/cuda)."""
    if mbx.path_available("cuda") or _built_with_cuda():
        s2 = mbx.workspace_size(2, 8732, 4, 21)
        assert s2 > 0 and s2 % 256 == 0
        assert mbx.workspace_size(4, 8732, 4, 21) > s2
        assert mbx.workspace_size(2, 8732, 4, 21, "torchvision_retinanet") < s2
    else:
        with pytest.raises(mbx.NoDeviceError):
            mbx.workspace_size(2, 8732, 4, 21)
    with pytest.raises(mbx.InvalidArgumentError, match="B = 0"):
        mbx.workspace_size(0, 8732, 4, 21)
    meta, arr = golden
    args = [arr[k] for k in INPUTS]
    with mbx.Context() as ctx:
        ref = mbx.MultiBoxLoss(meta["preset"], context=ctx, **meta["options"])(*args)
        with pytest.raises(mbx.InvalidArgumentError, match="workspace"):
            ctx.set_workspace(np.zeros(16, np.uint8))
        with pytest.raises(mbx.InvalidArgumentError, match="bytes"):
            ctx.set_workspace((4096, 0))
        ctx.set_workspace((4096, 256))  # a CPU call never dereferences it
        out = mbx.MultiBoxLoss(meta["preset"], context=ctx, **meta["options"])(*args)
        assert out.loss_conf == ref.loss_conf
        np.testing.assert_array_equal(out.grad_conf, ref.grad_conf)
        ctx.set_workspace(None)


def _built_with_cuda():
    try:
        mbx.workspace_size(1, 1, 1, 1)
        return True
    except mbx.NoDeviceError:
        return False
