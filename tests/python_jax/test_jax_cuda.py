"""mbx.jax on a CUDA device (skipped without one): every case through
jax.jit of loss and gradient on the GPU at the golden tolerances, match,
16-bit inputs, a traced EXTERNAL norm, invalid GT values (skipped on the
device, no error), a jitted training loop inside jax.lax.scan, the C call
sequence of the shim under CUDA stream capture (no host synchronisation),
and the eager API's CuPy in -> CuPy out / JAX in -> JAX out on the GPU."""

import numpy as np
import pytest

from conftest import (INPUTS, all_cases, assert_grad_close, assert_loc_target_close,
                      assert_loss_close, case_id, gpu_devices, load_case, num_classes)

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import mbx  # noqa: E402
import mbx.jax as mj  # noqa: E402

GPUS = gpu_devices()
pytestmark = pytest.mark.skipif(not GPUS or not mbx.cuda_available(),
                                reason="no CUDA device for JAX / mbx built without CUDA")
CASES = all_cases()
IDS = [case_id(c) for c in CASES]


def _gpu_args(arr):
    return [jax.device_put(jnp.asarray(arr[k]), GPUS[0]) for k in INPUTS]


def _pick(name):
    return next(c for c in CASES if c.rstrip("/").endswith(name))


def _gpu_optional(arr):
    """A case's optional inputs: gt_flags on the GPU (an operand), prior_levels
    as a numpy array (static under jit: an attribute, read on the host)."""
    out = {"gt_flags": jax.device_put(jnp.asarray(arr["gt_flags"]), GPUS[0])} \
        if "gt_flags" in arr else {}
    if "prior_levels" in arr:
        out["prior_levels"] = arr["prior_levels"]
    return out


def _vg(meta, **extra):
    opts = dict(meta["options"], **extra)

    def total(loc, conf, priors, gt_boxes, gt_labels, gt_counts):
        a, b, n = mj.multibox_loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                                   preset=meta["preset"], **opts)
        return a + b, (a, b, n)
    vg = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))
    return lambda p, gb, gl, gc, loc, conf: vg(loc, conf, p, gb, gl, gc)


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_case_on_gpu(case_dir):
    meta, arr = load_case(case_dir)
    args = _gpu_args(arr)
    optional = _gpu_optional(arr)
    (_, (loss_loc, loss_conf, num_pos)), (grad_loc, grad_conf) = _vg(meta, **optional)(*args)
    assert grad_conf.devices() == {GPUS[0]}
    assert_loss_close(loss_loc, arr["loss_loc"], "loss_loc")
    assert_loss_close(loss_conf, arr["loss_conf"], "loss_conf")
    np.testing.assert_array_equal(np.asarray(num_pos), arr.get("num_pos_loss", arr["num_pos"]))
    assert_grad_close(grad_loc, arr["grad_loc"], "grad_loc")
    assert_grad_close(grad_conf, arr["grad_conf"], "grad_conf")
    fwd = jax.jit(lambda *a: mj.multibox_loss(*a, preset=meta["preset"], **optional,
                                              **meta["options"]))(*args)
    assert_loss_close(fwd[0], arr["loss_loc"], "loss_loc (forward)")
    assert_loss_close(fwd[1], arr["loss_conf"], "loss_conf (forward)")
    k = num_classes(meta, arr)
    t = jax.jit(lambda *a: mj.match(*a, preset=meta["preset"], num_classes=k, **optional,
                                    **meta["options"]))(*args[:4])
    np.testing.assert_array_equal(np.asarray(t[0]), arr["conf_target"])
    np.testing.assert_array_equal(np.asarray(t[1]), arr["matched_gt"])
    assert_loc_target_close(t[2], arr["loc_target"], "loc_target")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_on_gpu_matches_cpu(dtype):
    meta, arr = load_case(_pick("v05_torchvision_retinanet_basic"))
    gpu = _gpu_args(arr)
    gpu[4], gpu[5] = gpu[4].astype(dtype), gpu[5].astype(dtype)
    cpu = [jax.device_put(jnp.asarray(arr[k]), jax.devices("cpu")[0]) for k in INPUTS]
    cpu[4], cpu[5] = cpu[4].astype(dtype), cpu[5].astype(dtype)
    (_, g_aux), g_grads = _vg(meta)(*gpu)
    (_, c_aux), c_grads = _vg(meta)(*cpu)
    assert g_grads[1].dtype == jnp.dtype(dtype)
    for a, b in zip(g_aux[:2], c_aux[:2]):
        assert float(a) == pytest.approx(float(b), rel=1e-5)
    for a, b in zip(g_grads, c_grads):
        np.testing.assert_allclose(np.asarray(a.astype(jnp.float32)),
                                   np.asarray(b.astype(jnp.float32)), rtol=2e-2, atol=1e-6)


def test_traced_external_norm_on_gpu():
    meta, arr = load_case(_pick("v12_custom_focal_external"))
    args = _gpu_args(arr)
    opts = dict(meta["options"])
    norm = opts.pop("external_norm")

    @jax.jit
    def f(n, loc, conf):
        def total(loc, conf):
            a, b, _ = mj.multibox_loss(*args[:4], loc, conf, preset=meta["preset"],
                                       external_norm=n, **opts)
            return a + b, (a, b)
        return jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(loc, conf)

    (_, (loss_loc, loss_conf)), grads = f(jnp.float32(norm), args[4], args[5])
    assert_loss_close(loss_loc, arr["loss_loc"], "loss_loc")
    assert_loss_close(loss_conf, arr["loss_conf"], "loss_conf")
    assert_grad_close(grads[0], arr["grad_loc"], "grad_loc")
    assert_grad_close(grads[1], arr["grad_conf"], "grad_conf")


def test_invalid_gt_is_skipped_on_gpu():
    """Validation is off inside the jitted GPU call: an inverted GT row is
    skipped as with invalid_gt=SKIP, and nothing is raised."""
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    arr = {k: v.copy() for k, v in arr.items()}
    arr["gt_boxes"][0, 0] = [0.5, 0.5, 0.1, 0.1]
    (_, gpu_aux), gpu_grads = _vg(meta)(*_gpu_args(arr))
    cpu = [jax.device_put(jnp.asarray(arr[k]), jax.devices("cpu")[0]) for k in INPUTS]
    (_, cpu_aux), cpu_grads = _vg(meta, invalid_gt="SKIP")(*cpu)
    np.testing.assert_array_equal(np.asarray(gpu_aux[2]), np.asarray(cpu_aux[2]))
    assert float(gpu_aux[1]) == pytest.approx(float(cpu_aux[1]), rel=1e-5)
    assert_grad_close(gpu_grads[1], np.asarray(cpu_grads[1]), "grad_conf")


def test_training_loop_in_lax_scan():
    """20 SGD steps of a linear head inside one jitted lax.scan on the GPU
    follow the same steps on the CPU."""
    meta, arr = load_case(_pick("v05_torchvision_retinanet_basic"))
    B, P, C = arr["conf"].shape
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((B, P, 8)).astype(np.float32)
    w0 = (0.1 * rng.standard_normal((8, 4 + C))).astype(np.float32)

    def run(device):
        put = lambda a: jax.device_put(jnp.asarray(a), device)  # noqa: E731
        p, gb, gl, gc = (put(arr[k]) for k in INPUTS[:4])
        x = put(feats)

        def loss(w):
            out = jnp.matmul(x, w, precision=jax.lax.Precision.HIGHEST)  # no TF32
            a, b, _ = mj.multibox_loss(p, gb, gl, gc, out[..., :4], out[..., 4:],
                                       preset=meta["preset"], **meta["options"])
            return a + b

        def step(w, _):
            value, g = jax.value_and_grad(loss)(w)
            return w - 0.05 * g, value
        return jax.jit(lambda w: jax.lax.scan(step, w, None, length=20))(put(w0))

    w_gpu, curve_gpu = run(GPUS[0])
    w_cpu, curve_cpu = run(jax.devices("cpu")[0])
    assert float(curve_gpu[-1]) < float(curve_gpu[0])
    np.testing.assert_allclose(np.asarray(curve_gpu), np.asarray(curve_cpu), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(w_gpu), np.asarray(w_cpu), rtol=1e-3, atol=1e-5)


def _check_in_cuda_graph(cupy, stream, call, capsules, arr, loss, grad_conf):
    """Runs call(capsules()) once, then records it into a CUDA graph on
    `stream` (capture fails on any host synchronisation or allocation),
    replays the graph and compares its loss_conf and grad_conf with the case."""
    call(capsules())
    stream.synchronize()
    caps = capsules()
    grad_conf.fill(0)
    cupy.cuda.Device().synchronize()
    stream.begin_capture()
    call(caps)
    graph = stream.end_capture()
    graph.launch(stream)
    stream.synchronize()
    assert_grad_close(cupy.asnumpy(grad_conf), arr["grad_conf"], "grad_conf (graph)")
    assert_loss_close(float(loss[1]), arr["loss_conf"], "loss_conf (graph)")


def test_shim_call_sequence_is_stream_capturable():
    """What the CUDA handler does (stream, validation off, caller workspace,
    fused call) records into a CUDA graph: stream capture fails on any host
    synchronisation or allocation."""
    cupy = pytest.importorskip("cupy")
    meta, arr = load_case(_pick("v06_ssd300_realistic"))
    B, P, C = arr["conf"].shape
    G = arr["gt_boxes"].shape[1]
    args = [cupy.asarray(arr[k]) for k in INPUTS]
    nbytes = mbx.workspace_size(B, P, G, C, meta["preset"], **meta["options"])
    workspace = cupy.empty(nbytes + 256, cupy.uint8)
    stream = cupy.cuda.Stream(non_blocking=True)
    ctx = mbx.Context(cuda_validation=False, cuda_stream=stream.ptr)
    ptr = (workspace.data.ptr + 255) // 256 * 256
    ctx.set_workspace((ptr, nbytes))
    opts = mbx.Options(meta["preset"], **meta["options"]).native
    loss = cupy.empty(2, cupy.float32)
    num_pos = cupy.empty(B, cupy.int32)
    grad_loc, grad_conf = cupy.empty_like(args[4]), cupy.empty_like(args[5])
    # Capsules made before the capture (DLPack export may touch streams).
    def capsules():
        return [a.__dlpack__() for a in args + [loss, num_pos, grad_loc, grad_conf]]

    def call(caps):
        mbx.mbx_native.mbx_loss_forward_backward(ctx._h(), opts, *caps[:6], None, *caps[6:])
    _check_in_cuda_graph(cupy, stream, call, capsules, arr, loss, grad_conf)


@pytest.mark.parametrize("name", ["v06_ssd300_realistic", "i06_crowd_region_focal"])
def test_shim_call_with_optional_inputs_is_stream_capturable(name):
    """The handler's mbx_run with gt_flags on the device and prior_levels on
    the host (the shim's attribute) records into a CUDA graph: neither is
    copied or synchronised on."""
    cupy = pytest.importorskip("cupy")
    n = mbx.mbx_native
    meta, arr = load_case(_pick(name))
    B, P, C = arr["conf"].shape
    G = arr["gt_boxes"].shape[1]
    args = [cupy.asarray(arr[k]) for k in INPUTS]
    flags = cupy.asarray(arr["gt_flags"] if "gt_flags" in arr else np.zeros((B, G), np.int32))
    levels = np.array([P // 2, P - P // 2], np.int32)  # validated, unused by MAX_IOU
    nbytes = mbx.workspace_size(B, P, G, C, meta["preset"], **meta["options"])
    workspace = cupy.empty(nbytes + 256, cupy.uint8)
    stream = cupy.cuda.Stream(non_blocking=True)
    ctx = mbx.Context(cuda_validation=False, cuda_stream=stream.ptr)
    ctx.set_workspace(((workspace.data.ptr + 255) // 256 * 256, nbytes))
    opts = mbx.Options(meta["preset"], **meta["options"]).native
    loss = cupy.empty(2, cupy.float32)
    num_pos = cupy.empty(B, cupy.int32)
    grad_loc, grad_conf = cupy.empty_like(args[4]), cupy.empty_like(args[5])

    def capsules():
        return [a.__dlpack__() for a in args + [flags, num_pos, loss, grad_loc, grad_conf]] + [
            levels.__dlpack__()]

    def call(c):
        n.mbx_py_run(ctx._h(), opts, n.MBX_OP_LOSS_FORWARD_BACKWARD, 0, *c[:6], None, c[6], c[11],
                     None, None, None, *c[7:11], None)
    _check_in_cuda_graph(cupy, stream, call, capsules, arr, loss, grad_conf)


def test_eager_cupy_in_cupy_out():
    cupy = pytest.importorskip("cupy")
    meta, arr = load_case(_pick("v04_yhenon_basic"))
    args = [cupy.asarray(arr[k]) for k in INPUTS]
    out = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*args)
    for x in (out.loss_loc, out.num_pos, out.grad_loc, out.grad_conf):
        assert isinstance(x, cupy.ndarray)
    assert_grad_close(cupy.asnumpy(out.grad_conf), arr["grad_conf"], "grad_conf")
    t = mbx.match(*args[:4], preset=meta["preset"], **meta["options"])
    assert isinstance(t.conf_target, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(t.conf_target), arr["conf_target"])


def test_eager_jax_gpu_in_jax_gpu_out():
    meta, arr = load_case(_pick("v04_yhenon_basic"))
    args = _gpu_args(arr)
    out = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*args)
    assert isinstance(out.grad_conf, jax.Array) and out.grad_conf.devices() == {GPUS[0]}
    assert_grad_close(np.asarray(out.grad_conf), arr["grad_conf"], "grad_conf")
