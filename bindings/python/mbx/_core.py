"""The idiomatic Python layer over the SWIG module ``mbx.mbx_native``.

Everything here does the checks and conversions the C API does not do for
Python callers, then makes one C call:

* tensors: numpy arrays, torch tensors (CPU or CUDA) and any other object
  with ``__dlpack__`` are passed zero-copy as DLPack capsules. Non-compact
  strides are made compact here (``np.ascontiguousarray`` /
  ``Tensor.contiguous()``, a copy) because the C API accepts only compact
  row-major tensors. Read-only numpy arrays are copied (numpy cannot export
  them through DLPack). Dtypes are *not* converted: a float64 ``loc`` is an
  error (``InvalidArgumentError``) naming the argument; only plain Python
  sequences (lists, tuples, scalars) are converted, to the argument's
  documented dtype.
* outputs are allocated here, of the same kind and on the same device as
  the reference input (``conf`` for the loss, ``gt_boxes`` for matching,
  ``loc`` for decoding): numpy in -> numpy out, torch in -> torch out,
  JAX in -> JAX out and CuPy in -> CuPy out, on the input's device (torch
  is imported only for torch inputs, or for JAX CUDA arrays without CuPy).
  Other DLPack producers get numpy outputs on the CPU and torch outputs on
  CUDA.
* options: a preset name plus keyword overrides with exactly the names and
  values of docs/SPEC.md / golden ``case.json`` "options", passed to
  ``mbx_options_set`` as text and range-checked by ``mbx_options_validate``
  when the object is built.
* errors: every failure raises ``mbx.Error`` (status, status_name, message =
  the library's ``mbx_last_error()``); bad input raises
  ``InvalidArgumentError``, which is also a ``ValueError``.
* threads: the GIL is released during every C call. A ``Context`` is used by
  one thread at a time (a lock serialises Python threads sharing one);
  functions given no context use a per-thread default context.
"""

import enum
import numbers
import sys
import threading

import numpy as np

from . import mbx_native as _n

__all__ = [
    "Error", "InvalidArgumentError", "UnsupportedError", "OutOfMemoryError",
    "NoDeviceError", "DeviceError", "ContextBusyError", "InternalError",
    "Status", "PRESETS", "OPTION_NAMES", "Options", "Context", "MultiBoxLoss",
    "LossResult", "MatchResult", "match", "decode", "priors_ssd",
    "priors_retinanet", "priors_retinanet_levels", "version", "version_number", "cuda_available",
    "path_available", "options",
]

# ---------------------------------------------------------------------------
# Errors and status
# ---------------------------------------------------------------------------

Error = _n.Error
InvalidArgumentError = _n.InvalidArgumentError
UnsupportedError = _n.UnsupportedError
OutOfMemoryError = _n.OutOfMemoryError
NoDeviceError = _n.NoDeviceError
DeviceError = _n.DeviceError
ContextBusyError = _n.ContextBusyError
InternalError = _n.InternalError


def _constants(prefix):
    """The SWIG module's MBX_<prefix>* constants: {name without prefix: value}."""
    return {key[len(prefix):]: getattr(_n, key) for key in dir(_n) if key.startswith(prefix)}


# mbx_status_t values (pinned by the ABI), named as mbx_status_string() names them.
Status = enum.IntEnum("Status", sorted(
    ((_n.mbx_status_string(value)[len("MBX_STATUS_"):], value)
     for value in _constants("MBX_STATUS_").values()), key=lambda kv: kv[1]),
    module=__name__)
Status.__doc__ = "mbx_status_t values (pinned by the ABI)."


def _invalid(message):
    """An InvalidArgumentError raised by the Python layer itself."""
    exc = InvalidArgumentError(message)
    exc.status = int(Status.INVALID_ARGUMENT)
    exc.status_name = _n.mbx_status_string(Status.INVALID_ARGUMENT)
    exc.message = message
    return exc


# ---------------------------------------------------------------------------
# Version and capabilities
# ---------------------------------------------------------------------------

def version():
    """The library's runtime version string, "MAJOR.MINOR.PATCH"."""
    return _n.mbx_version()


def version_number():
    """MAJOR * 10000 + MINOR * 100 + PATCH of the loaded library."""
    return _n.mbx_version_number()


def cuda_available():
    """True if libmbx was built with CUDA and a usable device is present."""
    return bool(_n.mbx_cuda_available())


# Path names ("auto", "cpu-scalar", ...) as the library's mbx_path_name() gives them.
_PATHS = {_n.mbx_path_name(value): value
          for value in sorted(_constants("MBX_PATH_").values())}


def _path_id(path):
    if isinstance(path, str):
        key = path.lower().replace("_", "-")
        if key not in _PATHS:
            raise _invalid("path %r is unknown; expected one of %s" % (path, ", ".join(_PATHS)))
        return _PATHS[key]
    return int(path)


def path_available(path):
    """True if the computation path ("auto", "cpu-scalar", "cpu", "cuda") can run here."""
    return bool(_n.mbx_path_available(_path_id(path)))


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

# Presets and options as the library lists them (mbx_preset_name,
# mbx_option_name / _type / _choices): nothing about an option is repeated here.
PRESETS = tuple(_n.mbx_preset_name(p) for p in range(_n.mbx_preset_count()))

# {name: (type, choices)}; type is "enum", "bool", "int", "float" or
# "float[4]", choices the enum value names in the order of their pinned values.
_OPTION_TYPES = {
    _n.mbx_option_name(i): (_n.mbx_option_type(i),
                            tuple(c for c in _n.mbx_option_choices(i).split(",") if c))
    for i in range(_n.mbx_option_count())
}

OPTION_NAMES = tuple(_OPTION_TYPES)


def _format_scalar(name, value):
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    raise _invalid("option %s: cannot use a value of type %s (%r)" % (name, type(value).__name__, value))


def _format_value(name, value):
    """Text for mbx_options_set, by the option's type: booleans true/false,
    numbers in C locale, float[4] comma-separated, enums by value name (an
    int is taken as the enum's pinned value). The library parses and checks
    it (an unknown name is its error too)."""
    kind, choices = _OPTION_TYPES.get(name, (None, ()))
    if kind == "enum" and isinstance(value, numbers.Integral) and not isinstance(
            value, (bool, np.bool_)) and 0 <= int(value) < len(choices):
        return choices[int(value)]
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(_format_scalar(name, v) for v in np.asarray(value).ravel().tolist())
    return _format_scalar(name, value)


def _parse_value(name, text):
    """The Python value of an option's text (mbx_option_text), by its type."""
    kind = _OPTION_TYPES[name][0]
    if kind == "bool":
        return text == "true"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind.startswith("float["):
        return [float(v) for v in text.split(",")]
    return text


def _preset_id(preset):
    if isinstance(preset, str):
        name = preset.strip()
        # golden case.json spells modified presets "custom(<base>)".
        if name.startswith("custom(") and name.endswith(")"):
            name = name[len("custom("):-1]
        return _n.mbx_preset_from_name(name)
    if isinstance(preset, numbers.Integral):
        return int(preset)
    raise _invalid("preset: expected a name (%s), got %r" % (", ".join(PRESETS), preset))


class Options:
    """An mbx_options_t: a preset plus keyword overrides, validated on creation.

    ``Options("torchvision_retinanet", pos_threshold=0.6)``. Names and values
    are those of docs/SPEC.md and golden case.json "options": enums by name
    ("CORNERS", "SIGMOID_FOCAL", ...), numbers, booleans, and ``variances``
    as four numbers. An unknown name or bad value raises InvalidArgumentError.
    """

    __slots__ = ("_opts", "preset")

    def __init__(self, preset="ssd_pytorch", **overrides):
        if isinstance(preset, Options):
            base = preset
            self._opts = _n.mbx_options_t()
            _n.mbx_options_init(self._opts, _n.MBX_PRESET_SSD_PYTORCH)
            for name in OPTION_NAMES:  # text round-trips bitwise
                _n.mbx_options_set(self._opts, name, _n.mbx_option_text(base._opts, name))
            self.preset = base.preset
        else:
            self._opts = _n.mbx_options_t()
            _n.mbx_options_init(self._opts, _preset_id(preset))
            self.preset = preset
        for name, value in overrides.items():
            _n.mbx_options_set(self._opts, str(name), _format_value(name, value))
        _n.mbx_options_validate(self._opts)

    def replace(self, **overrides):
        """A copy with some options changed."""
        return Options(self, **overrides)

    def to_dict(self):
        """Every option (OPTION_NAMES, in the library's order) by its
        name, in case.json form: enums by value name, booleans, floats, and
        lists for float[4]."""
        return {name: self[name] for name in OPTION_NAMES}

    def __getitem__(self, name):
        if name not in _OPTION_TYPES:
            raise KeyError(name)
        return _parse_value(name, _n.mbx_option_text(self._opts, name))

    def __repr__(self):
        return "mbx.Options(%r, %s)" % (
            self.preset, ", ".join("%s=%r" % kv for kv in self.to_dict().items()))

    @property
    def native(self):
        """The SWIG mbx_options_t (for the mbx_native functions)."""
        return self._opts


def options(preset="ssd_pytorch", **overrides):
    """The complete option set of a preset with overrides, as a dict."""
    return Options(preset, **overrides).to_dict()


def workspace_size(B, P, G, C, preset="ssd_pytorch", **overrides):
    """Bytes of device workspace the largest CUDA call with these sizes and
    options needs (for ``Context.set_workspace``). Raises NoDeviceError in a
    build without CUDA."""
    opts = preset if isinstance(preset, Options) and not overrides else Options(preset, **overrides)
    return _n.mbx_workspace_size(opts.native, int(B), int(P), int(G), int(C))


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------

class Context:
    """An mbx context: thread count, path, CUDA stream and cached workspace.

    ``Context(num_threads=0, path="auto")``; ``num_threads=0`` uses every
    hardware thread (results are bitwise independent of it). Use it from one
    thread at a time (Python threads sharing it are serialised by a lock).
    Close it with ``close()`` or a ``with`` block; it is also freed when
    garbage collected.
    """

    def __init__(self, num_threads=0, path="auto", cuda_stream=None, cuda_validation=True):
        self._handle = _n.mbx_context_create()
        self._lock = threading.RLock()
        self._num_threads = 0
        self._path = "auto"
        self._stream_explicit = False
        self._stream = None
        self._workspace_ref = None
        self.num_threads = num_threads
        self.path = path
        self.cuda_validation = cuda_validation
        if cuda_stream is not None:
            self.cuda_stream = cuda_stream

    def _h(self):
        if self._handle is None:
            raise _invalid("context: already closed")
        return self._handle

    @property
    def num_threads(self):
        return self._num_threads

    @num_threads.setter
    def num_threads(self, n):
        if not isinstance(n, numbers.Integral) or isinstance(n, bool):
            raise _invalid("num_threads: expected an int, got %r" % (n,))
        with self._lock:
            _n.mbx_context_set_num_threads(self._h(), int(n))
            self._num_threads = int(n)

    @property
    def path(self):
        """"auto", "cpu-scalar", "cpu" or "cuda"."""
        return self._path

    @path.setter
    def path(self, path):
        pid = _path_id(path)
        with self._lock:
            _n.mbx_context_set_path(self._h(), pid)
            self._path = _n.mbx_path_name(pid)

    @property
    def cuda_validation(self):
        return self._cuda_validation

    @cuda_validation.setter
    def cuda_validation(self, enabled):
        with self._lock:
            _n.mbx_context_set_cuda_validation(self._h(), 1 if enabled else 0)
            self._cuda_validation = bool(enabled)

    @property
    def cuda_stream(self):
        """The CUDA stream handle (int) the context runs on, or None.

        Unless set explicitly, calls with torch CUDA tensors run on torch's
        current stream of the tensors' device."""
        return self._stream

    @cuda_stream.setter
    def cuda_stream(self, stream):
        handle = _stream_handle(stream)
        with self._lock:
            _n.mbx_context_set_cuda_stream(self._h(), handle)
            self._stream = handle
            self._stream_explicit = stream is not None

    def _use_stream(self, handle):
        if not self._stream_explicit and handle != self._stream:
            _n.mbx_context_set_cuda_stream(self._h(), handle)
            self._stream = handle

    @property
    def workspace_bytes(self):
        with self._lock:
            return _n.mbx_context_workspace_bytes(self._h())

    def release_workspace(self):
        with self._lock:
            _n.mbx_context_release_workspace(self._h())

    def set_workspace(self, buffer):
        """Use caller-owned device memory as the CUDA path's workspace.

        ``buffer``: a torch CUDA tensor (any dtype; its bytes are used, and
        the context keeps a reference), an ``(address, nbytes)`` pair, or
        None to return to the context's own cached workspace. Size it with
        ``mbx.workspace_size``; it must be 256-byte aligned (torch's
        allocator is) and not used by anything else while calls on the
        context's stream may run. CPU calls ignore it."""
        if buffer is None:
            ptr, nbytes = None, 0
        elif _is_torch_tensor(buffer):
            if not buffer.is_cuda:
                raise _invalid("workspace: expected a CUDA tensor, got one on %s" % buffer.device)
            if not buffer.is_contiguous():
                raise _invalid("workspace: expected a contiguous tensor")
            ptr, nbytes = buffer.data_ptr(), buffer.numel() * buffer.element_size()
        elif isinstance(buffer, tuple) and len(buffer) == 2 and all(
                isinstance(v, numbers.Integral) for v in buffer):
            ptr, nbytes = int(buffer[0]), int(buffer[1])
        else:
            raise _invalid("workspace: expected a torch CUDA tensor, an (address, nbytes) "
                           "pair or None, got %r" % (type(buffer).__name__,))
        with self._lock:
            _n.mbx_context_set_workspace(self._h(), ptr, nbytes)
            self._workspace_ref = buffer

    def close(self):
        h, self._handle = getattr(self, "_handle", None), None
        if h is not None:
            _n.mbx_context_destroy(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        return "mbx.Context(num_threads=%d, path=%r%s)" % (
            self._num_threads, self._path, ", closed" if self._handle is None else "")


def _stream_handle(stream):
    if stream is None:
        return None
    if isinstance(stream, numbers.Integral):
        return int(stream)
    handle = getattr(stream, "cuda_stream", None)  # torch.cuda.Stream
    if handle is None:
        handle = getattr(stream, "ptr", None)  # cupy Stream
    if handle is None:
        raise _invalid("cuda_stream: expected an int handle or a stream object, got %r" % (stream,))
    return int(handle)


_thread_state = threading.local()


def _default_context():
    ctx = getattr(_thread_state, "context", None)
    if ctx is None:
        ctx = Context()
        _thread_state.context = ctx
    return ctx


# ---------------------------------------------------------------------------
# Tensors
# ---------------------------------------------------------------------------

_KDL_CPU, _KDL_CUDA, _KDL_CUDA_HOST, _KDL_CUDA_MANAGED = 1, 2, 3, 13


def _torch():
    """torch if the user has imported it (never imported here)."""
    return sys.modules.get("torch")


def _is_torch_tensor(x):
    t = _torch()
    return t is not None and isinstance(x, t.Tensor)


class _Tensor:
    """An input or output ready for the C API: the array/tensor (kept alive
    for the call) and its DLPack capsule.

    ``kind`` is the storage ("numpy", "torch" or "cupy"). ``export``, for
    outputs of callers from another framework (JAX arrays in: JAX arrays
    out), converts the storage once the C call has written it: ``obj`` is
    the converted array when read after ``capsule`` was handed to the call,
    and the storage before (so a buffer can still be filled first)."""

    __slots__ = ("_obj", "kind", "_capsule", "_export", "_handed", "framework", "device")

    def __init__(self, obj, kind, export=None, framework=None, device=None):
        self._obj = obj
        self.kind = kind
        self._capsule = obj.__dlpack__()
        self._export = export
        self._handed = False
        self.framework = framework or kind  # what the caller gave: numpy, torch, jax, cupy
        self.device = device  # the caller's device object (JAX inputs)

    @property
    def capsule(self):
        self._handed = True
        return self._capsule

    @property
    def obj(self):
        if self._export is not None and self._handed:
            self._obj, self._export = self._export(self._obj), None
        return self._obj

    @property
    def shape(self):
        return tuple(self._obj.shape)

    @property
    def is_cuda(self):
        # CuPy storage runs on the context's stream (default: the legacy
        # default stream, which orders with CuPy's blocking streams).
        return self.kind == "torch" and self._obj.is_cuda


def _framework_of(x):
    """"jax" or "cupy" for their arrays (by the defining module), else None."""
    root = type(x).__module__.split(".", 1)[0]
    if root in ("jax", "jaxlib"):
        return "jax"
    if root == "cupy":
        return "cupy"
    return None


def _jax_device(x):
    devices = getattr(x, "devices", None)
    if devices is None:
        return None
    try:
        return next(iter(devices()))
    except Exception:  # a tracer: no device (mbx.jax is the jittable API)
        raise TypeError("a traced JAX value cannot be passed to the eager mbx API (it needs the "
                        "data); use mbx.jax.multibox_loss / mbx.jax.match inside jax.jit")


def _from_foreign(x, framework, dev_type):
    """JAX / CuPy inputs: zero-copy storage (numpy on the CPU, CuPy or else
    torch on CUDA) tagged with the caller's framework and device."""
    device = _jax_device(x) if framework == "jax" else None
    if framework == "jax" and hasattr(x, "block_until_ready"):
        x.block_until_ready()
    if dev_type in (_KDL_CPU, _KDL_CUDA_HOST):
        if framework == "jax":
            t = _Tensor(x, "numpy")  # JAX's own capsule: zero-copy (a numpy view is read-only)
        else:
            t = _from_numpy(np.from_dlpack(x))
    elif framework == "cupy" or sys.modules.get("cupy") is not None or _cupy_importable():
        import cupy
        t = _Tensor(cupy.ascontiguousarray(cupy.from_dlpack(x)), "cupy")
    else:
        import torch  # CUDA JAX arrays without CuPy go through torch
        t = _from_torch(torch.utils.dlpack.from_dlpack(x))
    t.framework, t.device = framework, device
    return t


def _cupy_importable():
    try:
        import cupy  # noqa: F401
    except Exception:
        return False
    return True


def _export_for(ref):
    """The conversion of an output of ref's storage to ref's framework."""
    if ref.framework != "jax":
        return None
    device = ref.device

    def to_jax(a):
        jax = sys.modules["jax"]
        if isinstance(a, np.ndarray):
            return jax.device_put(a, device)
        return jax.dlpack.from_dlpack(a)  # CuPy / torch CUDA storage, zero-copy
    return to_jax


def _from_numpy(a):
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        a = a.copy()  # numpy refuses to export read-only arrays via DLPack
    return _Tensor(a, "numpy")


def _from_torch(t):
    t = t.detach()
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if not t.is_contiguous():
        t = t.contiguous()
    return _Tensor(t, "torch")


# dtype name by dtype object (numpy, torch, a numpy scalar type): the names
# are formed once, not on every call (np.dtype(...).name and str(torch dtype)
# cost microseconds each).
_DTYPE_NAMES = {}


def _dtype_name(dtype):
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = str(dtype).replace("torch.", "") if hasattr(dtype, "is_floating_point") \
            else np.dtype(dtype).name
        _DTYPE_NAMES[dtype] = name
    return name


def _input(x, name, dtype, exact=False):
    """Prepare an input. ``dtype`` (numpy) is used for plain sequences, and
    checked here when ``exact`` (for a clearer message than the C API's)."""
    t = _input_any(x, name, dtype)
    if exact:
        got = _dtype_name(t.obj.dtype)
        if got != _dtype_name(dtype):
            raise _invalid("%s: dtype %s, expected %s" % (name, got, _dtype_name(dtype)))
    return t


def _input_any(x, name, dtype):
    if isinstance(x, _Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _from_numpy(x)
    if _is_torch_tensor(x):
        return _from_torch(x)
    if x is None:
        raise TypeError("%s: a tensor is required, got None" % name)
    if hasattr(x, "__dlpack__"):
        dev = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else _KDL_CPU
        framework = _framework_of(x)
        if framework is not None:
            return _from_foreign(x, framework, dev)
        if dev in (_KDL_CPU, _KDL_CUDA_HOST):
            return _from_numpy(np.from_dlpack(x))
        import torch  # other CUDA producers go through torch
        return _from_torch(torch.utils.dlpack.from_dlpack(x))
    if isinstance(x, (list, tuple, numbers.Number)) or np.isscalar(x):
        return _from_numpy(np.array(x, dtype=dtype))
    raise TypeError("%s: expected a numpy array, a torch tensor or an object with __dlpack__, "
                    "got %s" % (name, type(x).__name__))


_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "int32": "int32",
                 "float16": "float16", "bfloat16": "bfloat16"}


def _output(x, name, ref, shape, dtype_of):
    """A caller-provided output: written in place, so it must already be a
    contiguous, writable array/tensor of the input's kind, shape and dtype
    (nothing is copied; training loops reuse their gradient buffers)."""
    if ref.framework == "jax":
        raise _invalid("%s: JAX arrays are immutable; out= is not supported for JAX inputs" % name)
    if _framework_of(x) == "cupy":
        if not x.flags.c_contiguous:
            raise _invalid("%s: must be a C-contiguous array" % name)
        t = _Tensor(x, "cupy")
    elif isinstance(x, np.ndarray):
        if not (x.flags.c_contiguous and x.flags.writeable):
            raise _invalid("%s: must be a C-contiguous, writable array" % name)
        t = _Tensor(x, "numpy")
    elif _is_torch_tensor(x):
        if not x.is_contiguous() or x.requires_grad:
            raise _invalid("%s: must be a contiguous tensor that does not require grad" % name)
        t = _Tensor(x.detach(), "torch")
    else:
        raise TypeError("%s: expected a numpy array or a torch tensor, got %s" % (name, type(x).__name__))
    if t.kind != ref.kind:
        raise _invalid("%s: a %s output for %s inputs" % (name, t.kind, ref.kind))
    if tuple(t.shape) != tuple(shape):
        raise _invalid("%s: shape %s, expected %s" % (name, list(t.shape), list(shape)))
    if str(t.obj.dtype) != str(dtype_of.obj.dtype):
        raise _invalid("%s: dtype %s, expected %s" % (name, t.obj.dtype, dtype_of.obj.dtype))
    return t


def _empty_like_kind(ref, shape, dtype):
    """An uninitialised output of ref's kind and device. dtype: a name, or an
    input _Tensor whose dtype is copied."""
    if isinstance(dtype, _Tensor):
        dtype = dtype.obj.dtype
    if ref.framework == "jax" and str(dtype) == "float64":
        dtype = "float32"  # JAX arrays are float32 unless x64 is on
    if ref.kind == "torch":
        torch = _torch()
        if isinstance(dtype, str):
            dtype = getattr(torch, _TORCH_DTYPES[dtype])
        elif not isinstance(dtype, torch.dtype):
            dtype = getattr(torch, np.dtype(dtype).name)
        return _Tensor(torch.empty(shape, dtype=dtype, device=ref.obj.device), "torch",
                       _export_for(ref), ref.framework, ref.device)
    if ref.kind == "cupy":
        import cupy
        with cupy.cuda.Device(ref.obj.device.id):
            out = cupy.empty(shape, dtype=np.dtype(str(dtype)))
        return _Tensor(out, "cupy", _export_for(ref), ref.framework, ref.device)
    if ref.framework == "jax" and str(dtype) == "bfloat16":
        # numpy cannot export bfloat16 through DLPack: write into a fresh JAX
        # buffer on the CPU device instead (nothing else references it).
        jax = sys.modules["jax"]
        with jax.default_device(ref.device):
            out = jax.numpy.zeros(shape, dtype).block_until_ready()
        return _Tensor(out, "numpy", None, "jax", ref.device)
    return _Tensor(np.empty(shape, dtype=np.dtype(str(dtype))), "numpy", _export_for(ref),
                   ref.framework, ref.device)


def _dim(t, axis, name, layout):
    if len(t.shape) <= axis:
        raise _invalid("%s: shape %s, expected %s" % (name, list(t.shape), layout))
    return int(t.shape[axis])


def _call(context, ref, fn, *args):
    """One C call on a context, on torch's current CUDA stream for CUDA refs."""
    ctx = context if context is not None else _default_context()
    with ctx._lock:
        if ref is not None and ref.is_cuda:
            torch = _torch()
            dev = ref.obj.device
            ctx._use_stream(torch.cuda.current_stream(dev).cuda_stream)
            with torch.cuda.device(dev):
                fn(ctx._h(), *args)
        else:
            fn(ctx._h(), *args)


def _cap(t):
    return None if t is None else t.capsule


def _optional_int32(x, name, ref, host=False):
    """An optional int32 input (gt_flags [B, G], prior_levels [L]): None
    stays None; a plain sequence becomes an int32 tensor of ref's kind and
    device, or a numpy array when ``host`` (prior_levels: the library reads
    it on the host, also next to CUDA inputs, so a host copy saves a device
    round trip); arrays and tensors are taken as given (an int32 dtype is
    required, the library checks shape, device and content)."""
    if x is None:
        return None
    if isinstance(x, (list, tuple)) and host:
        return _from_numpy(np.asarray(x, dtype=np.int32))
    if isinstance(x, (list, tuple)):
        values = np.asarray(x, dtype=np.int32)
        t = _empty_like_kind(ref, values.shape, "int32")
        if t.kind == "torch":
            t.obj.copy_(_torch().from_numpy(values))
        elif t.kind == "cupy":
            t.obj.set(values)
        else:
            t.obj[...] = values
        return t
    return _input(x, name, np.int32, exact=True)


# ---------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------

class LossResult:
    """Result of MultiBoxLoss: loss_loc, loss_conf (0-d, float64 numpy scalars
    or float32 torch tensors on conf's device), num_pos ([B] int32), and
    grad_loc / grad_conf (dtype of loc / conf; None when grad=False)."""

    __slots__ = ("loss_loc", "loss_conf", "num_pos", "grad_loc", "grad_conf")

    def __init__(self, loss_loc, loss_conf, num_pos, grad_loc=None, grad_conf=None):
        self.loss_loc = loss_loc
        self.loss_conf = loss_conf
        self.num_pos = num_pos
        self.grad_loc = grad_loc
        self.grad_conf = grad_conf

    @property
    def loss(self):
        """loss_loc + loss_conf."""
        return self.loss_loc + self.loss_conf

    def __iter__(self):
        return iter((self.loss_loc, self.loss_conf, self.num_pos, self.grad_loc, self.grad_conf))

    def __repr__(self):
        return "LossResult(loss_loc=%r, loss_conf=%r, num_pos=%r, grad=%s)" % (
            self.loss_loc, self.loss_conf, self.num_pos, self.grad_loc is not None)


class MultiBoxLoss:
    """SSD MultiBox / RetinaNet focal loss, forward and backward.

    ``MultiBoxLoss(preset="ssd_pytorch", context=None, **overrides)``; the
    overrides are option names/values as in docs/SPEC.md (see ``Options``).
    Call it as ``loss(priors, gt_boxes, gt_labels, gt_counts, loc, conf,
    grad=True, grad_loss=None, out=None, *, gt_flags=None, prior_levels=None)``:

    ========== ======= =========== =========================================
    priors     float32 [P, 4]      in options prior_format
    gt_boxes   float32 [B, G, 4]   corners; rows >= gt_counts[b] unread
    gt_labels  int32   [B, G]      0..K-1
    gt_counts  int32   [B]         0..G
    loc        float32 [B, P, 4]   predicted offsets
    conf       float32 [B, P, C]   logits (SOFTMAX_CE: column 0 background)
    ========== ======= =========== =========================================

    Optional keyword inputs (docs/SPEC.md; numpy / torch / DLPack like the
    others): ``gt_flags`` int32 [B, G] per-GT flags (bit 0: an ignore
    region; other bits must be 0; None: all zero), on the inputs' device (a
    list is converted there), and ``prior_levels`` int32 [L], the number of
    priors of each pyramid level in prior order (sum P; used by
    ``assigner="ATSS"``; see ``priors_retinanet_levels``), on the inputs'
    device or on the host (a list or numpy array; the library reads it on
    the host). Given either, the call goes through the library's
    ``mbx_run``.

    ``grad=True`` uses the fused forward+backward entry point; ``grad_loss``
    (upstream gradients of (loss_loc, loss_conf), two numbers or a [2]
    array/tensor on conf's device) scales the gradients; ``out=(grad_loc,
    grad_conf)`` writes the gradients into caller-owned buffers (same kind,
    shape and dtype as loc/conf) instead of new ones — a training loop that
    reuses them skips allocating and page-faulting B*P*(C+4) floats per
    step. Returns LossResult.
    """

    def __init__(self, preset="ssd_pytorch", context=None, **overrides):
        self.options = preset if isinstance(preset, Options) and not overrides else Options(preset, **overrides)
        self.context = context if context is not None else Context()

    def __repr__(self):
        return "mbx.MultiBoxLoss(%r)" % (self.options,)

    def _inputs(self, priors, gt_boxes, gt_labels, gt_counts, loc, conf):
        return (_input(priors, "priors", np.float32), _input(gt_boxes, "gt_boxes", np.float32),
                _input(gt_labels, "gt_labels", np.int32, exact=True),
                _input(gt_counts, "gt_counts", np.int32, exact=True),
                _input(loc, "loc", np.float32), _input(conf, "conf", np.float32))

    def _grad_loss(self, grad_loss, ref):
        """Upstream gradients (g_loss_loc, g_loss_conf) as a [2] tensor on
        ref's device: two numbers, or a [2] array/tensor (kept as given)."""
        if grad_loss is None:
            return None
        if isinstance(grad_loss, (list, tuple)):
            if len(grad_loss) != 2:
                raise _invalid("grad_loss: %d values given, expected 2 (for loss_loc, loss_conf)"
                               % len(grad_loss))
            if any(_is_torch_tensor(v) for v in grad_loss):
                torch = _torch()
                g = torch.stack([torch.as_tensor(v, dtype=torch.float64).reshape(())
                                 for v in grad_loss])
                if ref.kind == "torch":
                    g = g.to(ref.obj.device)
                return _input(g, "grad_loss", np.float64)
            g = _empty_like_kind(ref, (2,), "float64")
            values = [float(v) for v in grad_loss]
            if g.kind == "torch":
                g.obj.copy_(_torch().tensor(values, dtype=g.obj.dtype))
            else:
                g.obj[:] = values
            return g
        return _input(grad_loss, "grad_loss", np.float64)

    def _run(self, priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad, grad_loss,
             loss_dtype=None, out=None, gt_flags=None, prior_levels=None):
        p, gb, gl, gc, lo, co = self._inputs(priors, gt_boxes, gt_labels, gt_counts, loc, conf)
        gf = _optional_int32(gt_flags, "gt_flags", co)
        pl = _optional_int32(prior_levels, "prior_levels", co, host=True)
        if loss_dtype is None:
            loss_dtype = "float32" if co.kind == "torch" else "float64"
        loss = _empty_like_kind(co, (2,), loss_dtype)
        num_pos = _empty_like_kind(co, (_dim(co, 0, "conf", "[B, P, C]"),), "int32")
        opts = self.options.native
        if grad:
            g = self._grad_loss(grad_loss, co)
            grad_loc, grad_conf = self._grad_outputs(out, lo, co)
            if gf is None and pl is None:
                _call(self.context, co, _n.mbx_loss_forward_backward, opts, p.capsule,
                      gb.capsule, gl.capsule, gc.capsule, lo.capsule, co.capsule, _cap(g),
                      loss.capsule, num_pos.capsule, grad_loc.capsule, grad_conf.capsule)
            else:
                _call(self.context, co, _n.mbx_py_run, opts, _n.MBX_OP_LOSS_FORWARD_BACKWARD, 0,
                      p.capsule, gb.capsule, gl.capsule, gc.capsule, lo.capsule, co.capsule,
                      _cap(g), _cap(gf), _cap(pl), None, None, None, num_pos.capsule,
                      loss.capsule, grad_loc.capsule, grad_conf.capsule, None)
            return LossResult(loss.obj[0], loss.obj[1], num_pos.obj, grad_loc.obj, grad_conf.obj)
        if grad_loss is not None:
            raise _invalid("grad_loss: given with grad=False")
        if out is not None:
            raise _invalid("out: given with grad=False")
        if gf is None and pl is None:
            _call(self.context, co, _n.mbx_loss_forward, opts, p.capsule, gb.capsule, gl.capsule,
                  gc.capsule, lo.capsule, co.capsule, loss.capsule, num_pos.capsule)
        else:
            _call(self.context, co, _n.mbx_py_run, opts, _n.MBX_OP_LOSS_FORWARD, 0, p.capsule,
                  gb.capsule, gl.capsule, gc.capsule, lo.capsule, co.capsule, None, _cap(gf),
                  _cap(pl), None, None, None, num_pos.capsule, loss.capsule, None, None, None)
        return LossResult(loss.obj[0], loss.obj[1], num_pos.obj)

    @staticmethod
    def _grad_outputs(out, lo, co):
        if out is None:
            return _empty_like_kind(co, lo.shape, lo), _empty_like_kind(co, co.shape, co)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _invalid("out: expected a pair (grad_loc, grad_conf)")
        return (_output(out[0], "out[0] (grad_loc)", co, lo.shape, lo),
                _output(out[1], "out[1] (grad_conf)", co, co.shape, co))

    def __call__(self, priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad=True,
                 grad_loss=None, out=None, *, gt_flags=None, prior_levels=None):
        return self._run(priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad, grad_loss,
                         out=out, gt_flags=gt_flags, prior_levels=prior_levels)

    def forward(self, priors, gt_boxes, gt_labels, gt_counts, loc, conf, *, gt_flags=None,
                prior_levels=None):
        """Losses only (evaluation; no gradient memory)."""
        return self._run(priors, gt_boxes, gt_labels, gt_counts, loc, conf, False, None,
                         gt_flags=gt_flags, prior_levels=prior_levels)

    def backward(self, priors, gt_boxes, gt_labels, gt_counts, loc, conf, grad_loss=None,
                 out=None, *, gt_flags=None, prior_levels=None):
        """(grad_loc, grad_conf) only, times grad_loss (default (1, 1)), into
        ``out`` when given. Matching and mining are recomputed; prefer
        ``__call__(grad=True)``."""
        p, gb, gl, gc, lo, co = self._inputs(priors, gt_boxes, gt_labels, gt_counts, loc, conf)
        gf = _optional_int32(gt_flags, "gt_flags", co)
        pl = _optional_int32(prior_levels, "prior_levels", co, host=True)
        g = self._grad_loss(grad_loss, co)
        grad_loc, grad_conf = self._grad_outputs(out, lo, co)
        if gf is None and pl is None:
            _call(self.context, co, _n.mbx_loss_backward, self.options.native, p.capsule,
                  gb.capsule, gl.capsule, gc.capsule, lo.capsule, co.capsule, _cap(g),
                  grad_loc.capsule, grad_conf.capsule)
        else:
            _call(self.context, co, _n.mbx_py_run, self.options.native,
                  _n.MBX_OP_LOSS_BACKWARD, 0, p.capsule, gb.capsule, gl.capsule, gc.capsule,
                  lo.capsule, co.capsule, _cap(g), _cap(gf), _cap(pl), None, None, None, None,
                  None, grad_loc.capsule, grad_conf.capsule, None)
        return grad_loc.obj, grad_conf.obj


# ---------------------------------------------------------------------------
# Matching, decoding, priors
# ---------------------------------------------------------------------------

class MatchResult:
    """Result of match(): conf_target [B,P] int32 (label+1 positive, 0
    negative, -1 ignored), matched_gt [B,P] int32 (-1 if not positive),
    loc_target [B,P,4] float32 (0 where not positive), num_pos [B] int32."""

    __slots__ = ("conf_target", "matched_gt", "loc_target", "num_pos")

    def __init__(self, conf_target, matched_gt, loc_target, num_pos):
        self.conf_target = conf_target
        self.matched_gt = matched_gt
        self.loc_target = loc_target
        self.num_pos = num_pos

    def __iter__(self):
        return iter((self.conf_target, self.matched_gt, self.loc_target, self.num_pos))

    def __repr__(self):
        return "MatchResult(num_pos=%r)" % (self.num_pos,)


def match(priors, gt_boxes, gt_labels, gt_counts, preset="ssd_pytorch", *, num_classes=0,
          gt_flags=None, prior_levels=None, context=None, **overrides):
    """Match GT boxes to priors and encode the regression targets (docs/SPEC.md §2-3).

    Inputs as for MultiBoxLoss, with the same optional ``gt_flags`` and
    ``prior_levels``; ``num_classes`` K checks labels < K (0: only labels
    >= 0 are checked). Outputs have gt_boxes' kind and device.
    """
    opts = preset if isinstance(preset, Options) and not overrides else Options(preset, **overrides)
    p = _input(priors, "priors", np.float32)
    gb = _input(gt_boxes, "gt_boxes", np.float32)
    gl = _input(gt_labels, "gt_labels", np.int32, exact=True)
    gc = _input(gt_counts, "gt_counts", np.int32, exact=True)
    gf = _optional_int32(gt_flags, "gt_flags", gb)
    pl = _optional_int32(prior_levels, "prior_levels", gb, host=True)
    b = _dim(gb, 0, "gt_boxes", "[B, G, 4]")
    n_priors = _dim(p, 0, "priors", "[P, 4]")
    conf_target = _empty_like_kind(gb, (b, n_priors), "int32")
    matched_gt = _empty_like_kind(gb, (b, n_priors), "int32")
    loc_target = _empty_like_kind(gb, (b, n_priors, 4), "float32")
    num_pos = _empty_like_kind(gb, (b,), "int32")
    if gf is None and pl is None:
        _call(context, gb, _n.mbx_match, opts.native, int(num_classes), p.capsule, gb.capsule,
              gl.capsule, gc.capsule, conf_target.capsule, matched_gt.capsule,
              loc_target.capsule, num_pos.capsule)
    else:
        _call(context, gb, _n.mbx_py_run, opts.native, _n.MBX_OP_MATCH, int(num_classes),
              p.capsule, gb.capsule, gl.capsule, gc.capsule, None, None, None, _cap(gf),
              _cap(pl), conf_target.capsule, matched_gt.capsule, loc_target.capsule,
              num_pos.capsule, None, None, None, None)
    return MatchResult(conf_target.obj, matched_gt.obj, loc_target.obj, num_pos.obj)


def decode(priors, loc, preset="ssd_pytorch", *, context=None, **overrides):
    """Decode offsets [B,P,4] into corner boxes [B,P,4] (uses prior_format
    and variances of the options). Output has loc's kind and device."""
    opts = preset if isinstance(preset, Options) and not overrides else Options(preset, **overrides)
    p = _input(priors, "priors", np.float32)
    lo = _input(loc, "loc", np.float32)
    boxes = _empty_like_kind(lo, lo.shape, "float32")
    _call(context, lo, _n.mbx_decode, opts.native, p.capsule, lo.capsule, boxes.capsule)
    return boxes.obj


_SSD_CONFIGS = {
    "voc": _n.MBX_SSD300_VOC, "ssd300_voc": _n.MBX_SSD300_VOC,
    "coco": _n.MBX_SSD300_COCO, "ssd300_coco": _n.MBX_SSD300_COCO,
    "ssd512_voc": _n.MBX_SSD512_VOC, "voc512": _n.MBX_SSD512_VOC,
}


def priors_ssd(config="voc"):
    """SSD priors as ssd.pytorch's PriorBox computes them, float32 [P, 4]
    CENTER_SIZE numpy array. config: "voc" (SSD300), "coco" (SSD300) or
    "ssd512_voc"."""
    if isinstance(config, str):
        key = config.lower()
        if key not in _SSD_CONFIGS:
            raise _invalid("config %r is unknown; expected one of %s"
                           % (config, ", ".join(sorted(_SSD_CONFIGS))))
        cid = _SSD_CONFIGS[key]
    else:
        cid = int(config)
    n = _n.mbx_priors_ssd_count(cid)
    out = _Tensor(np.empty((n, 4), np.float32), "numpy")
    _n.mbx_priors_ssd(cid, out.capsule)
    return out.obj


def priors_retinanet(image_height, image_width):
    """RetinaNet anchors (pytorch-retinanet's Anchors, levels 3..7), float32
    [P, 4] CORNERS numpy array, in pixels."""
    n = _n.mbx_priors_retinanet_count(int(image_height), int(image_width))
    out = _Tensor(np.empty((n, 4), np.float32), "numpy")
    _n.mbx_priors_retinanet(int(image_height), int(image_width), out.capsule)
    return out.obj


def priors_retinanet_levels(image_height, image_width):
    """The number of anchors of each pyramid level (3..7) of
    ``priors_retinanet(image_height, image_width)``, int32 [5] numpy array
    in prior order (sums to P): the ``prior_levels`` input of ATSS."""
    out = _Tensor(np.empty((_n.MBX_RETINANET_NUM_LEVELS,), np.int32), "numpy")
    _n.mbx_priors_retinanet_levels(int(image_height), int(image_width), out.capsule)
    return out.obj
