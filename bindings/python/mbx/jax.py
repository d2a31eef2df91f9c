"""mbx inside ``jax.jit`` and ``jax.grad``: XLA FFI custom calls on CPU and CUDA.

    import mbx.jax
    loss_loc, loss_conf, num_pos = mbx.jax.multibox_loss(
        priors, gt_boxes, gt_labels, gt_counts, loc, conf, preset="ssd_pytorch")
    grads = jax.grad(lambda loc, conf: sum(mbx.jax.multibox_loss(..., loc, conf)[:2]),
                     argnums=(0, 1))(loc, conf)
    conf_target, matched_gt, loc_target, num_pos = mbx.jax.match(
        priors, gt_boxes, gt_labels, gt_counts, preset="torchvision_retinanet")

How it runs
-----------
Each operation is one XLA FFI target (``mbx_loss_forward``,
``mbx_loss_forward_backward``, ``mbx_match``) implemented in the shim
``libmbx_jax.so`` (bindings/jax/mbx_jax.cpp) over the mbx C API and
registered for the "cpu" and "CUDA" platforms on import. The lowered HLO
holds a ``custom_call`` to it; there is no host callback.

* Gradients: ``multibox_loss`` is a ``jax.custom_vjp``. Its primal (no
  differentiation) calls ``mbx_loss_forward``; under ``jax.grad`` /
  ``jax.value_and_grad`` / ``jax.vjp`` the forward rule makes one fused
  ``mbx_loss_forward_backward`` call with upstream gradient (1, 1) and keeps
  the gradients; the backward rule scales them by the cotangents of
  (loss_loc, loss_conf), in float32, rounded to loc's / conf's dtype (on
  the CPU in place in the shim, skipped for unit cotangents). With
  unit cotangents (``grad`` of ``loss_loc + loss_conf``) the gradients are
  bitwise those of the C call; other cotangents round once more than a C
  call given ``grad_loss`` would (at most 1 ulp of the gradient dtype).
  priors and the GT tensors get no gradient; ``external_norm`` (when it is
  a JAX value) gets d loss / d norm = -loss / norm.
* Options: ``preset`` plus keyword overrides exactly as ``mbx.MultiBoxLoss``
  takes them, checked at trace time by ``mbx.Options`` (mbx's messages).
  Shapes and dtypes are checked at trace time too (InvalidArgumentError
  with the C API's wording).
* Values (GT boxes, labels, counts) are checked by mbx when the computation
  runs. On the CPU an invalid value fails the execution with a JAX runtime
  error whose text is mbx's message (``mbx_last_error()``). On CUDA the
  call runs with ``mbx_context_set_cuda_validation(ctx, 0)`` (a check would
  need a device-to-host copy and a stream synchronisation inside the jitted
  program): invalid GT rows (non-finite, x2 <= x1, y2 <= y1) are skipped as
  with ``invalid_gt="SKIP"``, a label outside [0, K) makes its priors
  negative, and gt_counts are clamped into [0, G]; nothing is raised.
  Validate data on the host (``mbx.match`` on numpy) if you need the check.
* CUDA: the call runs on XLA's stream, and mbx's workspace comes from XLA's
  scratch allocator (sized by ``mbx_workspace_size``): no allocation
  outside XLA and no host synchronisation.
* EXTERNAL normalisation: ``external_norm`` may be a Python number (a
  static option, exactly the C call) or a JAX scalar, e.g. ``jax.lax.psum``
  of the positives across a ``shard_map`` mesh. A JAX scalar is an operand
  of the custom call. On the CPU the shim reads it on the host and passes
  it to mbx as ``external_norm``, so losses and gradients are bitwise the
  C call's with that value. On CUDA it cannot be read without a
  synchronisation, so the call runs with ``external_norm = 1`` and the
  losses and gradients are divided by the norm in JAX, in float32: up to
  1 ulp (float32) from the C call, which divides float64 sums.
* Threads: the shim keeps one mbx context per thread that runs a handler
  (several CPU devices executing at once share nothing).

* Optional inputs: ``gt_flags`` int32 [B, G] (bit 0: an ignore region) and
  ``prior_levels`` [L] (priors per pyramid level, for ``assigner="ATSS"``),
  keywords of ``multibox_loss`` and ``match`` as of ``mbx.MultiBoxLoss`` /
  ``mbx.match``, neither differentiated. gt_flags is an operand of the
  custom call (a traced value); prior_levels is static under jit (a list,
  numpy array or concrete JAX array, like a shape) and travels as an
  attribute, so mbx reads it on the host without a device copy.

Loss outputs are float32 scalars (``x64`` off or on), ``num_pos`` int32
[B]. ``loc`` / ``conf`` may be float32, float16 or bfloat16 (float32 math
inside; gradients in the input's dtype).
"""

import ctypes
import functools
import numbers
import os
import threading

import numpy as np

import jax
import jax.numpy as jnp

from . import _core

__all__ = ["multibox_loss", "match", "library_path", "TARGETS"]

#: FFI target name -> (CPU handler symbol, CUDA handler symbol) in the shim.
TARGETS = {
    "mbx_loss_forward": ("MbxLossForwardCpu", "MbxLossForwardCuda"),
    "mbx_loss_forward_backward": ("MbxLossForwardBackwardCpu", "MbxLossForwardBackwardCuda"),
    "mbx_match": ("MbxMatchCpu", "MbxMatchCuda"),
    # The backward rule's in-place scale by the cotangents (a no-op for unit
    # cotangents); other platforms scale with jnp.
    "mbx_scale_gradients": ("MbxScaleGradientsCpu", None),
}

_SHIM_NAME = "libmbx_jax.so"
_lock = threading.Lock()
_shim = None


def library_path():
    """Path of the shim: $MBX_JAX_LIBRARY, else libmbx_jax.so next to this
    file, else the bare name (found through LD_LIBRARY_PATH)."""
    env = os.environ.get("MBX_JAX_LIBRARY")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), _SHIM_NAME)
    return here if os.path.exists(here) else _SHIM_NAME


def _register():
    """Load the shim and register its handlers (once per process)."""
    global _shim
    with _lock:
        if _shim is not None:
            return _shim
        lib = ctypes.CDLL(library_path())
        for name, (cpu_symbol, cuda_symbol) in TARGETS.items():
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, cpu_symbol)),
                                        platform="cpu")
            if cuda_symbol is not None:
                jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, cuda_symbol)),
                                            platform="CUDA")
        _shim = lib
        return lib


# ---------------------------------------------------------------------------
# Options: the static part of a call
# ---------------------------------------------------------------------------

def _is_jax_value(x):
    return isinstance(x, jax.Array)  # tracers are jax.Array instances too


def _preset_name(preset):
    if isinstance(preset, numbers.Integral) and not isinstance(preset, bool):
        return _core.PRESETS[int(preset)]
    if isinstance(preset, str):
        name = preset.strip()
        if name.startswith("custom(") and name.endswith(")"):
            name = name[len("custom("):-1]
        return name
    raise _core._invalid("preset: expected a name (%s), got %r" % (", ".join(_core.PRESETS), preset))


@functools.lru_cache(maxsize=256)
def _spec(preset, items):
    """(options text for the shim, resolved option dict) for a preset and
    a sorted tuple of (name, formatted value) overrides. Validates (mbx's
    messages) by building an mbx.Options exactly as MultiBoxLoss does."""
    opts = _core.Options(preset, **{k: v for k, v in items})
    lines = ["preset=%s" % _preset_name(preset)] + ["%s=%s" % kv for kv in items]
    return "\n".join(lines), opts.to_dict()


def _static_options(preset, options):
    """Split the options into the static text and a traced external_norm."""
    if isinstance(preset, _core.Options):
        base = dict(preset.to_dict())
        base.update(options)
        options, preset = base, "ssd_pytorch"
    norm = None
    items = []
    for name, value in options.items():
        if name == "external_norm" and _is_jax_value(value):
            norm = value
            continue
        if _is_jax_value(value):
            raise _core._invalid("option %s: must be a static (Python) value under jax.jit; only "
                                 "external_norm may be a JAX value" % name)
        items.append((str(name), _core._format_value(name, value)))
    text, resolved = _spec(preset, tuple(sorted(items)))
    return text, resolved, norm


# ---------------------------------------------------------------------------
# Trace-time shape and dtype checks (the C API's wording)
# ---------------------------------------------------------------------------

_FLOATS = ("float32", "float16", "bfloat16")


def _shape_str(shape):
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _check(x, name, dims, want, dtypes):
    shape = tuple(x.shape)
    if len(shape) != len(want):
        raise _core._invalid("%s: ndim = %d, expected %d (shape %s)" % (name, len(shape), len(want), dims))
    if any(w >= 0 and s != w for s, w in zip(shape, want)):
        letters = dims.strip("[]").split(", ")
        filled = "[" + ", ".join(str(w) if w >= 0 else letters[i] for i, w in enumerate(want)) + "]"
        raise _core._invalid("%s: shape %s does not match %s = %s (B and G from gt_boxes, P from "
                             "priors, C from conf)" % (name, _shape_str(shape), dims, filled))
    dtype = jnp.dtype(x.dtype).name
    if dtype not in dtypes:
        raise _core._invalid("%s: dtype %s, expected %s" % (name, dtype, " or ".join(dtypes)))


def _as_array(x, name, dtype):
    if _is_jax_value(x):
        return x
    if x is None:
        raise TypeError("%s: a tensor is required, got None" % name)
    a = np.asarray(x)
    if isinstance(x, (list, tuple, numbers.Number)):
        a = a.astype(dtype)
    return jnp.asarray(a)


# Bits of the shim's ``optional_inputs`` attribute: gt_flags (the operand
# after the fixed ones) and prior_levels (the ``prior_levels`` attribute).
_GT_FLAGS, _PRIOR_LEVELS = 1, 2


def _optional_inputs(B, G, gt_flags, prior_levels):
    """(mask, operands, levels) of the optional inputs: gt_flags int32
    [B, G] as an operand (not differentiated), prior_levels [L] as a static
    tuple of ints (the attribute)."""
    mask, operands, levels = 0, (), ()
    if gt_flags is not None:
        x = _as_array(gt_flags, "gt_flags", np.int32)
        _check(x, "gt_flags", "[B, G]", (B, G), ("int32",))
        mask |= _GT_FLAGS
        operands = (jax.lax.stop_gradient(x),)
    if prior_levels is not None:
        try:
            a = np.asarray(prior_levels)
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
            raise _core._invalid("prior_levels: must be static under jax.jit (a list, numpy array "
                                 "or concrete array, like a shape), got a traced value") from None
        if isinstance(prior_levels, (list, tuple)):
            a = a.astype(np.int32)
        _check(a, "prior_levels", "[L]", (-1,), ("int32",))
        mask |= _PRIOR_LEVELS
        levels = tuple(int(n) for n in a)
    return mask, operands, levels


def _levels_attr(levels):
    """The shim's ``prior_levels`` attribute: the levels, or [0] (unread, the
    mask bit is clear) when not given, since JAX drops an empty array
    attribute."""
    return np.asarray(levels if levels else (0,), dtype=np.int32).reshape(-1)


def _gt_inputs(priors, gt_boxes, gt_labels, gt_counts):
    priors = _as_array(priors, "priors", np.float32)
    gt_boxes = _as_array(gt_boxes, "gt_boxes", np.float32)
    gt_labels = _as_array(gt_labels, "gt_labels", np.int32)
    gt_counts = _as_array(gt_counts, "gt_counts", np.int32)
    _check(priors, "priors", "[P, 4]", (-1, 4), ("float32",))
    _check(gt_boxes, "gt_boxes", "[B, G, 4]", (-1, -1, 4), ("float32",))
    P, (B, G) = priors.shape[0], gt_boxes.shape[:2]
    if P < 1:
        raise _core._invalid("priors: P = 0; expected at least one prior")
    if B < 1:
        raise _core._invalid("gt_boxes: B = 0; expected at least one image")
    _check(gt_labels, "gt_labels", "[B, G]", (B, G), ("int32",))
    _check(gt_counts, "gt_counts", "[B]", (B,), ("int32",))
    return priors, gt_boxes, gt_labels, gt_counts


# ---------------------------------------------------------------------------
# The custom calls
# ---------------------------------------------------------------------------

def _varying(x):
    """The manual mesh axes x varies over (inside shard_map), else empty."""
    try:
        return frozenset(jax.typeof(x).mat.varying)
    except Exception:  # outside shard_map, or a jax without varying axes
        return frozenset()


def _ffi(name, results, *args, aliases=None, **attrs):
    """One custom call. Inside shard_map, operands are made varying over
    the union of their manual axes and so are the results (ffi_call's
    results carry no axes of their own)."""
    _register()
    vma = frozenset().union(*(_varying(a) for a in args))
    if vma:
        args = [a if _varying(a) == vma else
                jax.lax.pcast(a, tuple(sorted(vma - _varying(a))), to="varying") for a in args]
    outs = jax.ffi.ffi_call(name, results, vmap_method="sequential",
                            input_output_aliases=aliases)(*args, **attrs)
    if vma:
        outs = [jax.lax.pcast(o, tuple(sorted(vma)), to="varying") for o in outs]
    return outs


def _loss_results(conf, loc, with_grad):
    B = conf.shape[0]
    out = [jax.ShapeDtypeStruct((2,), jnp.float32), jax.ShapeDtypeStruct((B,), jnp.int32)]
    if with_grad:
        out += [jax.ShapeDtypeStruct(loc.shape, loc.dtype), jax.ShapeDtypeStruct(conf.shape, conf.dtype)]
    return out


def _call_loss(text, external, mask, levels, norm, with_grad, args, optional):
    """One custom call. ``external``: the EXTERNAL norm is the traced
    ``norm`` operand (read on the host on the CPU; on other platforms the
    call runs with external_norm = 1 and the outputs are divided here).
    ``optional``: the gt_flags operand if ``mask`` names it, after the norm;
    ``levels``: prior_levels (static)."""
    loc, conf = args[4], args[5]
    target = "mbx_loss_forward_backward" if with_grad else "mbx_loss_forward"
    results = _loss_results(conf, loc, with_grad)
    attrs = dict(optional_inputs=np.int64(mask), prior_levels=_levels_attr(levels))

    def host_norm(*operands):
        return tuple(_ffi(target, results, *operands, options=text, norm_operand=np.int64(1),
                          **attrs))

    def scaled(*operands):
        outs = _ffi(target, results, *operands, options=text + "\nexternal_norm=1.0",
                    norm_operand=np.int64(0), **attrs)
        n = operands[6].astype(jnp.float32)
        outs = list(outs)
        outs[0] = outs[0] / n
        if with_grad:
            outs[2] = (outs[2].astype(jnp.float32) / n).astype(outs[2].dtype)
            outs[3] = (outs[3].astype(jnp.float32) / n).astype(outs[3].dtype)
        return tuple(outs)

    if not external:
        return tuple(_ffi(target, results, *args, norm, *optional, options=text,
                          norm_operand=np.int64(0), **attrs))
    return jax.lax.platform_dependent(*args, norm, *optional, cpu=host_norm, default=scaled)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _loss(text, external, mask, levels, priors, gt_boxes, gt_labels, gt_counts, loc, conf, norm,
          optional):
    loss, num_pos = _call_loss(text, external, mask, levels, norm, False,
                               (priors, gt_boxes, gt_labels, gt_counts, loc, conf), optional)
    return loss[0], loss[1], num_pos


def _loss_fwd(text, external, mask, levels, priors, gt_boxes, gt_labels, gt_counts, loc, conf,
              norm, optional):
    loss, num_pos, grad_loc, grad_conf = _call_loss(
        text, external, mask, levels, norm, True,
        (priors, gt_boxes, gt_labels, gt_counts, loc, conf), optional)
    return (loss[0], loss[1], num_pos), (grad_loc, grad_conf, loss, norm, optional)


def _scale(grad, g):
    # A unit cotangent (grad of loss_loc + loss_conf) keeps the C call's
    # gradients bitwise: XLA's CPU multiply would flush their denormals.
    scaled = grad * g if grad.dtype == jnp.float32 else (grad.astype(jnp.float32) * g).astype(grad.dtype)
    return jnp.where(g == 1.0, grad, scaled)


def _loss_bwd(text, external, mask, levels, residuals, cotangents):
    grad_loc, grad_conf, loss, norm, optional = residuals
    g_loc, g_conf = cotangents[0].astype(jnp.float32), cotangents[1].astype(jnp.float32)
    if external:
        d_norm = (-(g_loc * loss[0] + g_conf * loss[1]) / norm.astype(jnp.float32)).astype(norm.dtype)
    else:
        d_norm = jnp.zeros_like(norm)
    extra = _varying(d_norm) - _varying(norm)
    if extra:  # a norm shared by every shard (a psum) collects each shard's share
        d_norm = jax.lax.psum(d_norm, tuple(sorted(extra)))
    grad_loc, grad_conf = _scale_gradients(grad_loc, grad_conf, g_loc, g_conf)
    return (None, None, None, None, grad_loc, grad_conf, d_norm, tuple(None for _ in optional))


def _scale_gradients(grad_loc, grad_conf, g_loc, g_conf):
    """The gradients times the cotangents. CPU: in place in the shim, no
    work for unit cotangents (no extra pass over B*P*(C+4) values and no
    second gradient buffer); elsewhere with jnp (same values)."""
    def on_cpu(gl, gc, g):
        return tuple(_ffi("mbx_scale_gradients",
                          [jax.ShapeDtypeStruct(gl.shape, gl.dtype),
                           jax.ShapeDtypeStruct(gc.shape, gc.dtype)],
                          gl, gc, g, aliases={0: 0, 1: 1}))

    def elsewhere(gl, gc, g):
        return _scale(gl, g[0]), _scale(gc, g[1])
    return jax.lax.platform_dependent(grad_loc, grad_conf, jnp.stack([g_loc, g_conf]),
                                      cpu=on_cpu, default=elsewhere)


_loss.defvjp(_loss_fwd, _loss_bwd)


def multibox_loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf, *, preset="ssd_pytorch",
                  gt_flags=None, prior_levels=None, **options):
    """SSD MultiBox / RetinaNet focal loss as a differentiable JAX function.

    Arguments and options as ``mbx.MultiBoxLoss(preset, **options)(priors,
    gt_boxes, gt_labels, gt_counts, loc, conf)``: priors float32 [P, 4],
    gt_boxes float32 [B, G, 4], gt_labels int32 [B, G], gt_counts int32
    [B], loc [B, P, 4] and conf [B, P, C] float32 / float16 / bfloat16.
    ``external_norm`` may be a JAX scalar (with normalization="EXTERNAL").
    ``gt_flags`` (int32 [B, G]) and ``prior_levels`` (int32 [L]) are the
    optional inputs of ``mbx.MultiBoxLoss``.

    Returns ``(loss_loc, loss_conf, num_pos)``: float32 scalars and int32
    [B]. Differentiable wrt loc and conf (and a JAX ``external_norm``);
    works under jit, grad, value_and_grad and vjp, on CPU and CUDA.
    """
    text, resolved, norm = _static_options(preset, options)
    priors, gt_boxes, gt_labels, gt_counts = _gt_inputs(priors, gt_boxes, gt_labels, gt_counts)
    loc = _as_array(loc, "loc", np.float32)
    conf = _as_array(conf, "conf", np.float32)
    B, P = gt_boxes.shape[0], priors.shape[0]
    _check(conf, "conf", "[B, P, C]", (B, P, -1), _FLOATS)
    _check(loc, "loc", "[B, P, 4]", (B, P, 4), _FLOATS)
    C = conf.shape[2]
    if resolved["conf_loss"] == "SOFTMAX_CE" and C < 2:
        raise _core._invalid("conf: C = %d but SOFTMAX_CE needs a background column plus at least "
                             "one class (C >= 2)" % C)
    if resolved["conf_loss"] == "SIGMOID_FOCAL" and C < 1:
        raise _core._invalid("conf: C = 0; SIGMOID_FOCAL needs at least one class column")
    external = norm is not None and resolved["normalization"] == "EXTERNAL"
    if norm is None:
        norm = jnp.ones((), jnp.float32)
    else:
        norm = jnp.asarray(norm)
        if norm.shape != () or norm.dtype not in (jnp.float32, jnp.float64):
            norm = jnp.reshape(norm, ()).astype(jnp.float32)
    priors, gt_boxes, gt_labels, gt_counts = (jax.lax.stop_gradient(x) for x in
                                              (priors, gt_boxes, gt_labels, gt_counts))
    mask, optional, levels = _optional_inputs(B, gt_boxes.shape[1], gt_flags, prior_levels)
    return _loss(text, external, mask, levels, priors, gt_boxes, gt_labels, gt_counts, loc, conf,
                 norm, optional)


def match(priors, gt_boxes, gt_labels, gt_counts, *, preset="ssd_pytorch", num_classes=0,
          gt_flags=None, prior_levels=None, **options):
    """Match GT boxes to priors and encode the regression targets (jittable).

    Inputs and options as ``mbx.match`` (with its optional ``gt_flags`` and
    ``prior_levels``). Returns ``(conf_target [B, P]
    int32, matched_gt [B, P] int32, loc_target [B, P, 4] float32,
    num_pos [B] int32)``. Not differentiable (the outputs are targets).
    """
    if "external_norm" in options and _is_jax_value(options["external_norm"]):
        options = dict(options)
        del options["external_norm"]  # unused by matching
    text, _, _ = _static_options(preset, options)
    priors, gt_boxes, gt_labels, gt_counts = (
        jax.lax.stop_gradient(x) for x in _gt_inputs(priors, gt_boxes, gt_labels, gt_counts))
    if not isinstance(num_classes, numbers.Integral) or num_classes < 0:
        raise _core._invalid("num_classes = %r: expected K >= 0 (0 = unchecked)" % (num_classes,))
    B, P = gt_boxes.shape[0], priors.shape[0]
    mask, optional, levels = _optional_inputs(B, gt_boxes.shape[1], gt_flags, prior_levels)
    results = [jax.ShapeDtypeStruct((B, P), jnp.int32), jax.ShapeDtypeStruct((B, P), jnp.int32),
               jax.ShapeDtypeStruct((B, P, 4), jnp.float32), jax.ShapeDtypeStruct((B,), jnp.int32)]
    return tuple(_ffi("mbx_match", results, priors, gt_boxes, gt_labels, gt_counts, *optional,
                      options=text, num_classes=np.int64(num_classes),
                      optional_inputs=np.int64(mask), prior_levels=_levels_attr(levels)))
