"""mbx.jax on the JAX CPU backend: every golden / generated / stress case
through jax.jit of the loss and of its gradient (golden tolerances, and
bitwise against the eager C call), match, 16-bit inputs, cotangents, error
mapping, EXTERNAL normalisation with a traced norm under shard_map,
concurrent executions, the lowered HLO, and the eager API's JAX outputs."""

import re
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import (INPUTS, all_cases, assert_grad_close, assert_loc_target_close,
                      assert_loss_close, case_id, load_case, num_classes)

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import mbx  # noqa: E402
import mbx.jax as mj  # noqa: E402

CASES = all_cases()
IDS = [case_id(c) for c in CASES]
CPU = jax.devices("cpu")


@pytest.fixture(autouse=True)
def _on_the_cpu():
    """These tests are about the CPU backend (bitwise host-norm path), also
    on a machine whose default JAX backend is a GPU."""
    with jax.default_device(CPU[0]):
        yield


def _args(arr, device=None):
    out = [jnp.asarray(arr[k]) for k in INPUTS]
    return [jax.device_put(a, device) for a in out] if device is not None else out


def _optional(arr):
    """The case's optional inputs (gt_flags.npy, prior_levels.npy) as JAX arrays, by keyword."""
    return {k: jnp.asarray(arr[k]) for k in ("gt_flags", "prior_levels") if k in arr}


def _loss_fn(meta, optional=None):
    def f(priors, gt_boxes, gt_labels, gt_counts, loc, conf):
        return mj.multibox_loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                                preset=meta["preset"], **(optional or {}), **meta["options"])
    return f


def _value_and_grad(meta, optional=None):
    f = _loss_fn(meta, optional)

    def total(loc, conf, priors, gt_boxes, gt_labels, gt_counts):
        loss_loc, loss_conf, num_pos = f(priors, gt_boxes, gt_labels, gt_counts, loc, conf)
        return loss_loc + loss_conf, (loss_loc, loss_conf, num_pos)

    vg = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)

    def run(priors, gt_boxes, gt_labels, gt_counts, loc, conf):
        (_, aux), grads = vg(loc, conf, priors, gt_boxes, gt_labels, gt_counts)
        return aux, grads
    return jax.jit(run)


def test_cases_found():
    assert len(CASES) >= 40, CASES


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_case_jit_loss_and_grad(case_dir):
    meta, arr = load_case(case_dir)
    args = _args(arr)
    optional = _optional(arr)
    loss_loc, loss_conf, num_pos = jax.jit(_loss_fn(meta, optional))(*args)
    assert loss_loc.dtype == jnp.float32 and num_pos.dtype == jnp.int32
    assert_loss_close(loss_loc, arr["loss_loc"], "loss_loc")
    assert_loss_close(loss_conf, arr["loss_conf"], "loss_conf")
    # The loss's num_pos (after HARD_EXAMPLE mining where a case has it).
    np.testing.assert_array_equal(np.asarray(num_pos), arr.get("num_pos_loss", arr["num_pos"]))

    (g_loss_loc, g_loss_conf, g_num_pos), (grad_loc, grad_conf) = _value_and_grad(
        meta, optional)(*args)
    assert_loss_close(g_loss_loc, arr["loss_loc"], "loss_loc (grad)")
    assert_loss_close(g_loss_conf, arr["loss_conf"], "loss_conf (grad)")
    assert_grad_close(grad_loc, arr["grad_loc"], "grad_loc")
    assert_grad_close(grad_conf, arr["grad_conf"], "grad_conf")

    # Bitwise the eager C call (JAX in -> JAX out, float32 losses).
    eager = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*args, grad=True, **optional)
    assert isinstance(eager.grad_conf, jax.Array) and isinstance(eager.loss_loc, jax.Array)
    for got, want in ((loss_loc, eager.loss_loc), (loss_conf, eager.loss_conf),
                      (g_loss_loc, eager.loss_loc), (g_loss_conf, eager.loss_conf),
                      (num_pos, eager.num_pos), (g_num_pos, eager.num_pos),
                      (grad_loc, eager.grad_loc), (grad_conf, eager.grad_conf)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("case_dir", CASES, ids=IDS)
def test_case_jit_match(case_dir):
    meta, arr = load_case(case_dir)
    args = _args(arr)[:4]
    k = num_classes(meta, arr)
    optional = _optional(arr)
    f = jax.jit(lambda *a: mj.match(*a, preset=meta["preset"], num_classes=k, **optional,
                                    **meta["options"]))
    conf_target, matched_gt, loc_target, num_pos = f(*args)
    np.testing.assert_array_equal(np.asarray(conf_target), arr["conf_target"])
    np.testing.assert_array_equal(np.asarray(matched_gt), arr["matched_gt"])
    np.testing.assert_array_equal(np.asarray(num_pos), arr["num_pos"])
    assert_loc_target_close(loc_target, arr["loc_target"], "loc_target")
    eager = mbx.match(*args, preset=meta["preset"], num_classes=k, **optional, **meta["options"])
    np.testing.assert_array_equal(np.asarray(loc_target), np.asarray(eager.loc_target))


def _pick(name):
    return next(c for c in CASES if c.rstrip("/").endswith(name))


SMALL = ["v02_ssd_pytorch_basic", "v03_torchvision_ssd_basic", "v04_yhenon_basic",
         "v05_torchvision_retinanet_basic", "v12_custom_focal_external"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", SMALL)
def test_half_inputs(name, dtype):
    """16-bit loc/conf: float32 math inside, so the losses are those of the
    float32 call on the upcast values and the gradients its gradients
    rounded to the input dtype; gradients come back in that dtype."""
    meta, arr = load_case(_pick(name))
    args = _args(arr)
    half = args[:4] + [args[4].astype(dtype), args[5].astype(dtype)]
    up = args[:4] + [half[4].astype(jnp.float32), half[5].astype(jnp.float32)]
    vg = _value_and_grad(meta)
    (l16, c16, n16), (gl16, gc16) = vg(*half)
    (l32, c32, n32), (gl32, gc32) = vg(*up)
    assert gl16.dtype == jnp.dtype(dtype) and gc16.dtype == jnp.dtype(dtype)
    assert float(l16) == pytest.approx(float(l32), rel=1e-6, abs=1e-7)
    assert float(c16) == pytest.approx(float(c32), rel=1e-6, abs=1e-7)
    np.testing.assert_array_equal(np.asarray(n16), np.asarray(n32))
    np.testing.assert_array_equal(np.asarray(gl16.astype(jnp.float32)),
                                  np.asarray(gl32.astype(dtype).astype(jnp.float32)))
    np.testing.assert_array_equal(np.asarray(gc16.astype(jnp.float32)),
                                  np.asarray(gc32.astype(dtype).astype(jnp.float32)))


def test_vjp_scales_by_cotangents():
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    args = _args(arr)
    f = _loss_fn(meta)
    (loss_loc, loss_conf, num_pos), vjp = jax.vjp(lambda loc, conf: f(*args[:4], loc, conf),
                                                  args[4], args[5])
    ct = (jnp.float32(2.0), jnp.float32(-0.5), np.zeros(num_pos.shape, jax.dtypes.float0))
    grad_loc, grad_conf = jax.jit(vjp)(ct)
    assert_grad_close(grad_loc, 2.0 * arr["grad_loc"], "grad_loc * 2")
    assert_grad_close(grad_conf, -0.5 * arr["grad_conf"], "grad_conf * -0.5")
    # Only loss_loc differentiated: no conf gradient.
    g = jax.grad(lambda conf: f(*args[:5], conf)[0])(args[5])
    assert not np.any(np.asarray(g))


@pytest.mark.parametrize("name", ["v12_custom_focal_external", "g09_external_softmax"])
def test_external_norm_traced_equals_static(name):
    meta, arr = load_case(_pick(name))
    assert meta["options"]["normalization"] == "EXTERNAL"
    args = _args(arr)
    opts = dict(meta["options"])
    norm = opts.pop("external_norm")

    def traced(norm_value, loc, conf):
        out = mj.multibox_loss(*args[:4], loc, conf, preset=meta["preset"],
                               external_norm=norm_value, **opts)
        return out[0] + out[1], out

    (_, static_out), static_grads = jax.value_and_grad(
        lambda loc, conf: traced(norm, loc, conf), argnums=(0, 1), has_aux=True)(args[4], args[5])
    (_, out), grads = jax.jit(jax.value_and_grad(traced, argnums=(0, 1, 2), has_aux=True))(
        jnp.float32(norm), args[4], args[5])
    for a, b in zip(out, static_out):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(grads[1]), np.asarray(static_grads[0]))
    np.testing.assert_array_equal(np.asarray(grads[2]), np.asarray(static_grads[1]))
    # d loss / d norm = -loss / norm.
    want = -(float(out[0]) + float(out[1])) / float(np.float32(norm))
    assert float(grads[0]) == pytest.approx(want, rel=1e-5)


def test_shard_map_external_norm_equals_whole_batch():
    """Data parallel over 4 CPU devices: each shard normalises by the
    psum of positives (EXTERNAL, traced norm); the psum of the shard losses
    and the sharded gradients equal the single-device TOTAL_POSITIVES
    result on the whole batch."""
    from jax.sharding import Mesh, PartitionSpec as Ps
    shard_map = getattr(jax, "shard_map", None)
    if shard_map is None:
        from jax.experimental.shard_map import shard_map
    devices = jax.devices("cpu")
    assert len(devices) >= 4, "conftest sets --xla_force_host_platform_device_count=4"
    meta, arr = load_case(_pick("v06_ssd300_realistic"))
    reps = max(1, 8 // arr["gt_boxes"].shape[0])
    batch = {k: (arr[k] if k == "priors" else np.concatenate([arr[k]] * reps)[:8]) for k in INPUTS}
    rng = np.random.default_rng(0)
    batch["loc"] = batch["loc"] + rng.normal(0, 0.1, batch["loc"].shape).astype(np.float32)
    args = [jnp.asarray(batch[k]) for k in INPUTS]
    opts = dict(meta["options"], normalization="TOTAL_POSITIVES")
    preset = meta["preset"]

    def whole(loc, conf):
        loss_loc, loss_conf, _ = mj.multibox_loss(*args[:4], loc, conf, preset=preset, **opts)
        return loss_loc + loss_conf, (loss_loc, loss_conf)

    (_, (want_loc, want_conf)), want_grads = jax.jit(
        jax.value_and_grad(whole, argnums=(0, 1), has_aux=True))(args[4], args[5])

    mesh = Mesh(np.array(devices[:4]), ("b",))
    shard_opts = dict(opts, normalization="EXTERNAL")
    shard_opts.pop("external_norm", None)

    def local(priors, gt_boxes, gt_labels, gt_counts, loc, conf):
        _, _, _, num_pos = mj.match(priors, gt_boxes, gt_labels, gt_counts, preset=preset,
                                    **shard_opts)
        norm = jnp.maximum(1.0, jax.lax.psum(jnp.sum(num_pos), "b").astype(jnp.float32))
        loss_loc, loss_conf, _ = mj.multibox_loss(priors, gt_boxes, gt_labels, gt_counts, loc,
                                                  conf, preset=preset, external_norm=norm,
                                                  **shard_opts)
        return jax.lax.psum(loss_loc, "b"), jax.lax.psum(loss_conf, "b")

    sharded = shard_map(local, mesh=mesh,
                        in_specs=(Ps(), Ps("b"), Ps("b"), Ps("b"), Ps("b"), Ps("b")),
                        out_specs=(Ps(), Ps()))

    def total(loc, conf):
        loss_loc, loss_conf = sharded(*args[:4], loc, conf)
        return loss_loc + loss_conf, (loss_loc, loss_conf)

    (_, (got_loc, got_conf)), got_grads = jax.jit(
        jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(args[4], args[5])
    assert float(got_loc) == pytest.approx(float(want_loc), rel=2e-6)
    assert float(got_conf) == pytest.approx(float(want_conf), rel=2e-6)
    # Per-element gradients are each image's own terms over the same norm.
    np.testing.assert_array_equal(np.asarray(got_grads[0]), np.asarray(want_grads[0]))
    np.testing.assert_array_equal(np.asarray(got_grads[1]), np.asarray(want_grads[1]))


def test_concurrent_executions_on_several_devices():
    """4 threads, one CPU device each, jitted loss+grad in a loop: every
    result equals the serial one (the shim keeps a context per thread)."""
    names = ["v02_ssd_pytorch_basic", "v04_yhenon_basic", "v05_torchvision_retinanet_basic",
             "v06_ssd300_realistic"]
    work = []
    for i, name in enumerate(names):
        meta, arr = load_case(_pick(name))
        dev = CPU[i % len(CPU)]
        args = _args(arr, dev)
        fn = _value_and_grad(meta)
        want = jax.tree_util.tree_map(np.asarray, fn(*args))
        work.append((fn, args, want))
    errors = []

    def worker(fn, args, want):
        try:
            for _ in range(15):
                got = jax.tree_util.tree_map(np.asarray, fn(*args))
                for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                    np.testing.assert_array_equal(a, b)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=w) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_hlo_has_custom_call_and_no_callback():
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    args = _args(arr)
    fwd = jax.jit(_loss_fn(meta)).lower(*args).as_text()
    assert "custom_call @mbx_loss_forward(" in fwd and "callback" not in fwd
    grad = _value_and_grad(meta).lower(*args).as_text()
    assert grad.count("custom_call @mbx_loss_forward_backward(") == 1
    assert "custom_call @mbx_loss_forward(" not in grad  # one fused call under grad
    assert "callback" not in grad
    compiled = _value_and_grad(meta).lower(*args).compile().as_text()
    targets = re.findall(r'custom_call_target="([^"]+)"', compiled)
    # One fused call; the backward rule's in-place scale (a no-op for the
    # unit cotangents of grad) is the only other custom call.
    assert sorted(targets) == ["mbx_loss_forward_backward", "mbx_scale_gradients"], targets
    match = jax.jit(lambda *a: mj.match(*a, preset=meta["preset"])).lower(*args[:4]).as_text()
    assert "custom_call @mbx_match(" in match


def test_cuda_lowering_uses_the_same_targets():
    """The CUDA lowering (traced here without a GPU) calls the same targets."""
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    args = _args(arr)
    try:
        text = _value_and_grad(meta).trace(*args).lower(lowering_platforms=("cuda",)).as_text()
    except Exception as e:  # older jax without lowering_platforms
        pytest.skip("CUDA lowering not available here: %s" % e)
    assert "custom_call @mbx_loss_forward_backward(" in text and "callback" not in text
    assert "mbx_scale_gradients" not in text  # CPU only; CUDA scales with jnp


# --- errors ----------------------------------------------------------------

def test_trace_time_shape_error_has_mbx_message():
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    args = _args(arr)
    bad_conf = args[5][:, :-1]
    with pytest.raises(mbx.InvalidArgumentError, match=r"conf: shape .* does not match \[B, P, C\]"):
        jax.jit(_loss_fn(meta))(*args[:5], bad_conf)
    with pytest.raises(mbx.InvalidArgumentError, match="loc: dtype int32"):
        jax.jit(_loss_fn(meta))(*args[:4], args[4].astype(jnp.int32), args[5])
    with pytest.raises(mbx.InvalidArgumentError, match="gt_labels: dtype float32"):
        jax.jit(_loss_fn(meta))(args[0], args[1], args[2].astype(jnp.float32), *args[3:])


def test_bad_option_raises_at_trace_time():
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    args = _args(arr)
    with pytest.raises(mbx.InvalidArgumentError, match="pos_threshold"):
        mj.multibox_loss(*args, preset="ssd_pytorch", pos_threshold=1.5)
    with pytest.raises(mbx.InvalidArgumentError):
        mj.multibox_loss(*args, preset="ssd_pytorch", no_such_option=1)
    with pytest.raises(mbx.InvalidArgumentError, match="static"):
        jax.jit(lambda t, *a: mj.multibox_loss(*a, pos_threshold=t))(jnp.float32(0.5), *args)


@pytest.mark.parametrize("field, bad", [("gt_counts", "too_many"), ("gt_labels", "negative"),
                                        ("gt_boxes", "inverted")])
def test_invalid_values_raise_runtime_error_with_mbx_message(field, bad):
    meta, arr = load_case(_pick("v02_ssd_pytorch_basic"))
    arr = {k: v.copy() for k, v in arr.items()}
    if bad == "too_many":
        arr["gt_counts"][0] = arr["gt_boxes"].shape[1] + 1
    elif bad == "negative":
        arr["gt_labels"][0, 0] = -3
    else:
        arr["gt_boxes"][0, 0] = [0.5, 0.5, 0.1, 0.1]
    with pytest.raises(mbx.InvalidArgumentError) as eager:
        mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*[arr[k] for k in INPUTS])
    args = _args(arr)
    with pytest.raises(Exception) as err:
        jax.block_until_ready(_value_and_grad(meta)(*args))
    assert eager.value.message in str(err.value), (eager.value.message, str(err.value))
    assert "INVALID_ARGUMENT" in str(err.value)


# --- optional inputs (gt_flags, prior_levels) -------------------------------

def test_optional_inputs_zero_flags_and_levels_change_nothing():
    """All-zero gt_flags and a level split MAX_IOU validates but does not use:
    bitwise the call without them, jitted loss, gradient and match."""
    meta, arr = load_case(_pick("v05_torchvision_retinanet_basic"))
    args = _args(arr)
    p = arr["priors"].shape[0]
    optional = {"gt_flags": jnp.zeros(arr["gt_labels"].shape, jnp.int32),
                "prior_levels": jnp.asarray([p // 2, p - p // 2], jnp.int32)}
    for extra in ({"gt_flags": optional["gt_flags"]}, {"prior_levels": [p]}, optional):
        got = _value_and_grad(meta, extra)(*args)
        want = _value_and_grad(meta)(*args)
        for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
        m = jax.jit(lambda *a: mj.match(*a, preset=meta["preset"], **extra,
                                        **meta["options"]))(*args[:4])
        m0 = mj.match(*args[:4], preset=meta["preset"], **meta["options"])
        for g, w in zip(m, m0):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    text = jax.jit(_loss_fn(meta, optional)).lower(*args).as_text()
    assert "optional_inputs = 3" in text


def test_optional_inputs_errors_name_the_argument():
    meta, arr = load_case(_pick("v05_torchvision_retinanet_basic"))
    args = _args(arr)
    flags = jnp.zeros(arr["gt_labels"].shape, jnp.int32)
    with pytest.raises(mbx.InvalidArgumentError, match=r"gt_flags: shape .* does not match"):
        mj.multibox_loss(*args, preset=meta["preset"], gt_flags=flags[:, :-1], **meta["options"])
    with pytest.raises(mbx.InvalidArgumentError, match="gt_flags: dtype float32"):
        mj.match(*args[:4], preset=meta["preset"], gt_flags=flags.astype(jnp.float32),
                 **meta["options"])
    with pytest.raises(mbx.InvalidArgumentError, match="prior_levels: ndim"):
        mj.match(*args[:4], preset=meta["preset"], prior_levels=jnp.ones((1, 1), jnp.int32),
                 **meta["options"])
    with pytest.raises(mbx.InvalidArgumentError, match="prior_levels: must be static"):
        jax.jit(lambda lv, *a: mj.match(*a, preset=meta["preset"], prior_levels=lv,
                                        **meta["options"]))(jnp.asarray([1], jnp.int32), *args[:4])
    # Values are mbx's check when the computation runs (CPU): its message.
    bad = {"prior_levels": jnp.asarray([arr["priors"].shape[0] + 1], jnp.int32)}
    with pytest.raises(mbx.InvalidArgumentError) as eager:
        mbx.match(*[arr[k] for k in INPUTS[:4]], preset=meta["preset"],
                  prior_levels=np.asarray(bad["prior_levels"]), **meta["options"])
    with pytest.raises(Exception) as err:
        jax.block_until_ready(_value_and_grad(meta, bad)(*args))
    assert "prior_levels" in eager.value.message
    assert eager.value.message in str(err.value), (eager.value.message, str(err.value))


# --- eager API: JAX in, JAX out ---------------------------------------------

def test_eager_api_returns_jax_arrays_on_the_input_device():
    meta, arr = load_case(_pick("v04_yhenon_basic"))
    dev = CPU[2]
    args = _args(arr, dev)
    out = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*args)
    for x in (out.loss_loc, out.loss_conf, out.num_pos, out.grad_loc, out.grad_conf):
        assert isinstance(x, jax.Array) and x.devices() == {dev}
    t = mbx.match(*args[:4], preset=meta["preset"], **meta["options"])
    assert all(isinstance(x, jax.Array) and x.devices() == {dev} for x in t)
    boxes = mbx.decode(args[0], args[4], preset=meta["preset"], **meta["options"])
    assert isinstance(boxes, jax.Array) and boxes.shape == args[4].shape
    # numpy in -> numpy out is unchanged.
    out_np = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*[arr[k] for k in INPUTS])
    assert isinstance(out_np.grad_conf, np.ndarray)
    np.testing.assert_array_equal(out_np.grad_conf, np.asarray(out.grad_conf))


def test_eager_jax_does_not_import_torch():
    code = ("import sys, numpy as np, jax.numpy as jnp, mbx\n"
            "p = jnp.asarray(mbx.priors_ssd('voc')[:50])\n"
            "gb = jnp.asarray(np.array([[[0.1, 0.1, 0.4, 0.5]]], np.float32))\n"
            "gl = jnp.zeros((1, 1), jnp.int32); gc = jnp.ones((1,), jnp.int32)\n"
            "out = mbx.MultiBoxLoss()(p, gb, gl, gc, jnp.zeros((1, 50, 4)), jnp.zeros((1, 50, 3)))\n"
            "assert type(out.grad_conf).__module__.startswith('jax'), type(out.grad_conf)\n"
            "assert 'torch' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_non_unit_cotangents_round_like_jnp(dtype):
    """The CPU backward rule scales in place in the shim: float32 product,
    rounded to the gradient dtype (nearest even), as jnp would."""
    meta, arr = load_case(_pick("v05_torchvision_retinanet_basic"))
    args = _args(arr)
    loc, conf = args[4].astype(dtype), args[5].astype(dtype)
    f = _loss_fn(meta)
    unit = jax.jit(jax.grad(lambda l, c: sum(f(*args[:4], l, c)[:2]), argnums=(0, 1)))(loc, conf)
    scaled = jax.jit(jax.grad(lambda l, c: 3.0 * f(*args[:4], l, c)[0] - 0.75 * f(*args[:4], l, c)[1],
                              argnums=(0, 1)))(loc, conf)
    for got, base, g in ((scaled[0], unit[0], 3.0), (scaled[1], unit[1], -0.75)):
        want = (np.asarray(base.astype(jnp.float32)) * np.float32(g)).astype(jnp.dtype(dtype))
        assert got.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)),
                                      want.astype(np.float32))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_eager_half_jax_inputs_match_the_jitted_call(dtype):
    """Eager API with 16-bit JAX arrays: JAX outputs of the input dtype,
    bitwise the jitted call's (bfloat16 outputs are JAX buffers: numpy
    cannot export bfloat16 through DLPack)."""
    meta, arr = load_case(_pick("v03_torchvision_ssd_basic"))
    args = _args(arr)
    args[4], args[5] = args[4].astype(dtype), args[5].astype(dtype)
    eager = mbx.MultiBoxLoss(meta["preset"], **meta["options"])(*args)
    (loss_loc, loss_conf, _), (grad_loc, grad_conf) = _value_and_grad(meta)(*args)
    assert eager.grad_conf.dtype == jnp.dtype(dtype) and isinstance(eager.grad_conf, jax.Array)
    np.testing.assert_array_equal(np.asarray(eager.grad_conf.astype(jnp.float32)),
                                  np.asarray(grad_conf.astype(jnp.float32)))
    np.testing.assert_array_equal(np.asarray(eager.grad_loc.astype(jnp.float32)),
                                  np.asarray(grad_loc.astype(jnp.float32)))
    assert float(eager.loss_conf) == float(loss_conf)
