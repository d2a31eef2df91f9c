// Python part of the mbx SWIG interface, included by ../mbx.i under SWIGPYTHON.
//
// What it does:
//  - MBX_THROW(status, message): raises the mbx exception class for the
//    status (mbx_native.Error and subclasses, created in %init below; bad
//    input is InvalidArgumentError, also a ValueError) carrying .status,
//    .status_name and .message, then jumps to fail.
//  - DLTensor* parameters take a DLPack "dltensor" PyCapsule (what
//    obj.__dlpack__() returns; DLManagedTensor inside) or any object with
//    __dlpack__ (called here, the capsule released after the call), or None
//    for an optional (NULL) tensor. The tensor is borrowed: the capsule is
//    neither consumed nor renamed, so its own destructor calls the
//    producer's deleter when the capsule dies (after the call).
//  - Out-parameters (context handle, preset, counts, workspace bytes) are
//    returned; an mbx_status_t return becomes None (errors have raised).
//  - The module is generated with -threads: every wrapped call releases the
//    GIL around the C call (argument conversion and error raising hold it).

%{
#include <ctype.h>
#include <dlpack/dlpack.h>
#include <string.h>

/* Exception classes, indexed by mbx_status_t (0, OK, unused): one per
 * status that mbx_status_string() names, created in %init. The size only
 * bounds the table; statuses are numbered 0, 1, 2, ... without gaps. */
#define MBX_PY_STATUS_SLOTS 64
static PyObject* mbx_py_exc_classes[MBX_PY_STATUS_SLOTS];
static PyObject* mbx_py_error_base = 0;

/* The class name of a status: "MBX_STATUS_OUT_OF_MEMORY" ->
 * "OutOfMemoryError", "MBX_STATUS_DEVICE_ERROR" -> "DeviceError". 0 for
 * a value the library does not name. */
static int mbx_py_error_name(int status, char* out, size_t size) {
  static const char prefix[] = "MBX_STATUS_";
  const char* full = mbx_status_string((mbx_status_t)status);
  if (!full || strncmp(full, prefix, sizeof prefix - 1) != 0) return 0;
  const char* word = full + sizeof prefix - 1;
  if (0 == strcmp(word, "UNKNOWN")) return 0;
  size_t len = strlen(word);
  if (len > 6 && 0 == strcmp(word + len - 6, "_ERROR")) len -= 6;
  size_t n = 0;
  int upper = 1;
  for (size_t i = 0; i < len && n + 6 < size; ++i) {
    if (word[i] == '_') {
      upper = 1;
      continue;
    }
    out[n++] = upper ? word[i] : (char)tolower((unsigned char)word[i]);
    upper = 0;
  }
  memcpy(out + n, "Error", 6);
  return 1;
}

static void mbx_py_raise(int status, const char* message) {
  PyObject* cls = mbx_py_error_base;
  if (status > 0 && status < MBX_PY_STATUS_SLOTS && mbx_py_exc_classes[status])
    cls = mbx_py_exc_classes[status];
  if (!cls) cls = PyExc_RuntimeError;
  const char* msg = (message && message[0]) ? message : mbx_status_string((mbx_status_t)status);
  PyObject* exc = PyObject_CallFunction(cls, "s", msg);
  if (!exc) return; /* PyErr already set */
  PyObject* st = PyLong_FromLong(status);
  PyObject* name = PyUnicode_FromString(mbx_status_string((mbx_status_t)status));
  PyObject* text = PyUnicode_FromString(msg);
  if (st) PyObject_SetAttrString(exc, "status", st);
  if (name) PyObject_SetAttrString(exc, "status_name", name);
  if (text) PyObject_SetAttrString(exc, "message", text);
  Py_XDECREF(st);
  Py_XDECREF(name);
  Py_XDECREF(text);
  PyErr_SetObject((PyObject*)Py_TYPE(exc), exc);
  Py_DECREF(exc);
}

/* Borrow the DLTensor inside a "dltensor" capsule, or call obj.__dlpack__()
 * and keep the new capsule in *holder (released by freearg). Returns 0 and
 * sets a Python exception on failure. */
static int mbx_py_get_dltensor(PyObject* obj, const char* argname, int optional,
                               DLTensor** out, PyObject** holder) {
  *out = NULL;
  *holder = NULL;
  if (obj == Py_None) {
    if (optional) return 1;
    PyErr_Format(PyExc_TypeError, "%s: None given but a tensor is required", argname);
    return 0;
  }
  PyObject* cap = obj;
  if (!PyCapsule_CheckExact(obj)) {
    if (!PyObject_HasAttrString(obj, "__dlpack__")) {
      /* The type's __name__, not tp_name: PyTypeObject is opaque under
       * the limited API (abi3 wheel). */
      PyObject* tname = PyObject_GetAttrString((PyObject*)Py_TYPE(obj), "__name__");
      if (!tname) return 0;
      PyErr_Format(PyExc_TypeError,
                   "%s: expected a DLPack capsule or an object with __dlpack__ "
                   "(numpy array, torch tensor, ...), got %S",
                   argname, tname);
      Py_DECREF(tname);
      return 0;
    }
    cap = PyObject_CallMethod(obj, "__dlpack__", NULL);
    if (!cap) return 0;
    *holder = cap;
  }
  if (!PyCapsule_IsValid(cap, "dltensor")) {
    const char* nm = PyCapsule_GetName(cap);
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError,
                 "%s: expected a PyCapsule named \"dltensor\" (DLManagedTensor), got one named "
                 "\"%s\"%s",
                 argname, nm ? nm : "(null)",
                 (nm && 0 == strcmp(nm, "used_dltensor")) ? " (already consumed)" : "");
    return 0;
  }
  DLManagedTensor* m = (DLManagedTensor*)PyCapsule_GetPointer(cap, "dltensor");
  if (!m) return 0;
  *out = &m->dl_tensor;
  return 1;
}

/* Appends an out-parameter's value to a wrapper's result: a None result
 * (an mbx_status_t return) is replaced, a second value makes a list. SWIG
 * 4.3 changed SWIG_Python_AppendOutput's signature and keeps the None of a
 * non-void function, so the bindings use their own, the same under every
 * SWIG version. */
static PyObject* mbx_py_append_output(PyObject* result, PyObject* obj) {
  if (!result) return obj;
  if (result == Py_None) {
    Py_DECREF(result);
    return obj;
  }
  if (!PyList_Check(result)) {
    PyObject* list = PyList_New(1);
    if (!list) {
      Py_XDECREF(obj);
      return result;
    }
    PyList_SetItem(list, 0, result); /* steals result */
    result = list;
  }
  if (obj) {
    PyList_Append(result, obj);
    Py_DECREF(obj);
  }
  return result;
}
%}

#define MBX_THROW(status, message) \
  do { mbx_py_raise((int)(status), (message)); SWIG_fail; } while (0)

%{
#define MBX_THROW(status, message) \
  do { mbx_py_raise((int)(status), (message)); SWIG_fail; } while (0)
%}

%init %{
  {
    mbx_py_error_base = PyErr_NewExceptionWithDoc(
        "mbx.Error",
        "An mbx call failed. Attributes: status (int, an MBX_STATUS_* value), "
        "status_name (str) and message (the library's mbx_last_error()).",
        PyExc_RuntimeError, NULL);
    if (mbx_py_error_base) {
      Py_INCREF(mbx_py_error_base);
      PyModule_AddObject(m, "Error", mbx_py_error_base);
      char short_name[64];
      char full_name[80];
      for (int i = MBX_STATUS_OK + 1;
           i < MBX_PY_STATUS_SLOTS && mbx_py_error_name(i, short_name, sizeof short_name); ++i) {
        /* Bad input is also a ValueError, exhausted memory a MemoryError. */
        PyObject* bases;
        if (i == MBX_STATUS_INVALID_ARGUMENT)
          bases = PyTuple_Pack(2, mbx_py_error_base, PyExc_ValueError);
        else if (i == MBX_STATUS_OUT_OF_MEMORY)
          bases = PyTuple_Pack(2, mbx_py_error_base, PyExc_MemoryError);
        else
          bases = PyTuple_Pack(1, mbx_py_error_base);
        if (!bases) continue;
        snprintf(full_name, sizeof full_name, "mbx.%s", short_name);
        mbx_py_exc_classes[i] = PyErr_NewException(full_name, bases, NULL);
        Py_DECREF(bases);
        if (mbx_py_exc_classes[i]) {
          Py_INCREF(mbx_py_exc_classes[i]);
          PyModule_AddObject(m, short_name, mbx_py_exc_classes[i]);
        }
      }
    }
  }
%}

// ---- DLTensor* ------------------------------------------------------------
%typemap(in) const DLTensor* (PyObject* holder = NULL), DLTensor* (PyObject* holder = NULL) {
  if (!mbx_py_get_dltensor($input, "$1_name", 1, (DLTensor**)&$1, &holder)) SWIG_fail;
}
%typemap(freearg) const DLTensor*, DLTensor* {
  Py_XDECREF(holder$argnum);
}
%typemap(typecheck, precedence=SWIG_TYPECHECK_POINTER) const DLTensor*, DLTensor* {
  $1 = ($input == Py_None || PyCapsule_CheckExact($input) ||
        PyObject_HasAttrString($input, "__dlpack__")) ? 1 : 0;
}

// ---- status returns and out-parameters ----------------------------------
%typemap(out) mbx_status_t {
  $result = SWIG_Py_Void();
}

%typemap(in, numinputs=0) mbx_context_t** ctx (mbx_context_t* tmp = NULL) {
  $1 = &tmp;
}
%typemap(argout) mbx_context_t** ctx {
  $result = mbx_py_append_output($result,
      SWIG_NewPointerObj(SWIG_as_voidptr(tmp$argnum), $descriptor(mbx_context_t*), 0));
}

%typemap(in, numinputs=0) mbx_preset_t* preset (mbx_preset_t tmp = MBX_PRESET_SSD_PYTORCH) {
  $1 = &tmp;
}
%typemap(argout) mbx_preset_t* preset {
  $result = mbx_py_append_output($result, PyLong_FromLong((long)tmp$argnum));
}

%typemap(in, numinputs=0) int64_t* num_priors (int64_t tmp = 0) {
  $1 = &tmp;
}
%typemap(argout) int64_t* num_priors {
  $result = mbx_py_append_output($result, PyLong_FromLongLong((long long)tmp$argnum));
}

%typemap(in, numinputs=0) size_t* bytes (size_t tmp = 0) {
  $1 = &tmp;
}
%typemap(argout) size_t* bytes {
  $result = mbx_py_append_output($result, PyLong_FromSize_t(tmp$argnum));
}

// A CUDA stream is passed as an integer handle (torch: stream.cuda_stream);
// a caller workspace as an integer device address (torch: t.data_ptr()).
%typemap(in) void* stream, void* ptr {
  if ($input == Py_None) {
    $1 = NULL;
  } else {
    $1 = PyLong_AsVoidPtr($input);
    if (PyErr_Occurred()) SWIG_fail;
  }
}

// mbx_run for Python: every tensor of mbx_tensors_t as a parameter (each
// through the DLTensor* typemap above, None = NULL), the struct filled here
// and mbx_run called once, with the GIL released like every other call. The
// struct itself stays %ignored for Python (../mbx.i): its DLTensor* fields
// would borrow from capsules that the setter typemap releases at once. New
// optional tensors of mbx_tensors_t are appended here as parameters.
%inline %{
static mbx_status_t mbx_py_run(mbx_context_t* ctx, const mbx_options_t* opts, mbx_op_t op,
                               int64_t num_classes, const DLTensor* priors,
                               const DLTensor* gt_boxes, const DLTensor* gt_labels,
                               const DLTensor* gt_counts, const DLTensor* loc,
                               const DLTensor* conf, const DLTensor* grad_loss,
                               const DLTensor* gt_flags, const DLTensor* prior_levels,
                               DLTensor* conf_target, DLTensor* matched_gt,
                               DLTensor* loc_target, DLTensor* num_pos, DLTensor* loss,
                               DLTensor* grad_loc, DLTensor* grad_conf, DLTensor* boxes) {
  mbx_tensors_t t;
  mbx_status_t status = mbx_tensors_init(&t);
  if (status != MBX_STATUS_OK) return status;
  t.num_classes = num_classes;
  t.priors = priors;
  t.gt_boxes = gt_boxes;
  t.gt_labels = gt_labels;
  t.gt_counts = gt_counts;
  t.loc = loc;
  t.conf = conf;
  t.grad_loss = grad_loss;
  t.gt_flags = gt_flags;
  t.prior_levels = prior_levels;
  t.conf_target = conf_target;
  t.matched_gt = matched_gt;
  t.loc_target = loc_target;
  t.num_pos = num_pos;
  t.loss = loss;
  t.grad_loc = grad_loc;
  t.grad_conf = grad_conf;
  t.boxes = boxes;
  return mbx_run(ctx, opts, op, &t);
}
%}

// The options struct is a plain value type: its constructor and destructor
// return no status, so the shared %exception does not apply (SWIG wraps
// field accessors without it). The Python layer reads and writes options by
// name only (mbx_options_set / mbx_option_text), so no field is named here.
%noexception mbx_options_t;
%noexception mbx_options_t::~mbx_options_t;

// Re-export the exception classes (created in %init) from the proxy module.
%pythoncode %{
Error = _mbx_native.Error
globals().update((cls.__name__, cls) for cls in Error.__subclasses__())
%}
