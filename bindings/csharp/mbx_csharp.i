// C# part of the SWIG interface (included by ../mbx.i under SWIGCSHARP).
//
// The generated classes live in namespace Mbx.Native (internal plumbing,
// one-to-one with mbx.h); the idiomatic API (Mbx.Context, Mbx.Options,
// Mbx.MultiBox, Mbx.MbxException) is hand-written in Mbx.cs. This file:
//  - defines MBX_THROW for the shared %exception: a callback registered by
//    the C# side creates Mbx.MbxException(status, mbx_last_error()) and sets
//    it as SWIG's pending exception, which the generated method throws on
//    return;
//  - maps out-parameters to C# `out` arguments;
//  - adds mbx_cs_tensor_new/free: a heap DLTensor over a raw pointer
//    (IntPtr). The C# layer pins arrays/spans with `fixed` for the duration
//    of the call, so nothing is copied.

%{
#include <stdlib.h>

typedef void (SWIGSTDCALL* mbx_cs_exception_callback_t)(int status, const char* message);
static mbx_cs_exception_callback_t mbx_cs_exception_callback = 0;

#ifdef __cplusplus
extern "C"
#endif
SWIGEXPORT void SWIGSTDCALL MbxRegisterExceptionCallback(mbx_cs_exception_callback_t cb) {
  mbx_cs_exception_callback = cb;
}

static void mbx_cs_throw(int status, const char* message) {
  if (!message) message = "";
  if (mbx_cs_exception_callback) {
    mbx_cs_exception_callback(status, message);
  } else {
    SWIG_CSharpSetPendingException(SWIG_CSharpApplicationException, message);
  }
}

/* Every function under %exception returns mbx_status_t (an int on the
 * P/Invoke side), so `return 0` is the right early exit for all of them. */
#define MBX_THROW(status, message)              \
  do {                                          \
    mbx_cs_throw((int)(status), (message));     \
    return 0;                                   \
  } while (0)

typedef struct mbx_cs_tensor {
  DLTensor t;
  int64_t shape[4];
} mbx_cs_tensor;
%}

%pragma(csharp) imclasscode=%{
  internal class MbxExceptionHelper {
    public delegate void ExceptionDelegate(int status, string message);
    static ExceptionDelegate handler = new ExceptionDelegate(SetPending);

    [global::System.Runtime.InteropServices.DllImport("$dllimport", EntryPoint="MbxRegisterExceptionCallback")]
    public static extern void MbxRegisterExceptionCallback(ExceptionDelegate d);

    static void SetPending(int status, string message) {
      SWIGPendingException.Set(new global::Mbx.MbxException((global::Mbx.Status)status, message));
    }

    static MbxExceptionHelper() {
      MbxRegisterExceptionCallback(handler);
    }
  }
  static MbxExceptionHelper exceptionHelper = new MbxExceptionHelper();
%}

// Enum values as C# constants (no native getter per value).
%csconst(1);

// The options struct's accessors, constructor and destructor return no status.
%noexception mbx_options_t;
%noexception mbx_options_t::~mbx_options_t;

// --- out-parameters -> `out` arguments ------------------------------------
%define MBX_CS_OUT(CTYPE, CSTYPE, NAME)
%typemap(ctype) CTYPE* NAME "CTYPE*"
%typemap(imtype) CTYPE* NAME "out CSTYPE"
%typemap(cstype) CTYPE* NAME "out CSTYPE"
%typemap(csin) CTYPE* NAME "out $csinput"
%typemap(in) CTYPE* NAME %{ $1 = $input; %}
%enddef
MBX_CS_OUT(int64_t, long, num_priors)
MBX_CS_OUT(size_t, ulong, bytes)
MBX_CS_OUT(mbx_preset_t, int, preset)

%typemap(ctype) mbx_context_t** ctx "void**"
%typemap(imtype) mbx_context_t** ctx "out global::System.IntPtr"
%typemap(cstype) mbx_context_t** ctx "out global::System.IntPtr"
%typemap(csin) mbx_context_t** ctx "out $csinput"
%typemap(in) mbx_context_t** ctx %{ $1 = (mbx_context_t**)$input; %}

// Raw pointers as IntPtr.
%apply void* VOID_INT_PTR { void* data };

%noexception mbx_cs_tensor_new;
%noexception mbx_cs_tensor_free;
%inline %{
/**
 * A heap DLTensor (kDLCPU, lanes 1, compact strides) over `data`; ndim in
 * [0, 4], dims beyond ndim ignored. NULL for a bad ndim or out of memory.
 * Free with mbx_cs_tensor_free().
 */
DLTensor* mbx_cs_tensor_new(void* data, int dtype_code, int dtype_bits, int ndim,
                            int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  if (ndim < 0 || ndim > 4) return NULL;
  mbx_cs_tensor* box = (mbx_cs_tensor*)calloc(1, sizeof(mbx_cs_tensor));
  if (!box) return NULL;
  box->shape[0] = d0;
  box->shape[1] = d1;
  box->shape[2] = d2;
  box->shape[3] = d3;
  box->t.data = data;
  box->t.device.device_type = kDLCPU;
  box->t.device.device_id = 0;
  box->t.ndim = ndim;
  box->t.dtype.code = (uint8_t)dtype_code;
  box->t.dtype.bits = (uint8_t)dtype_bits;
  box->t.dtype.lanes = 1;
  box->t.shape = box->shape;
  box->t.strides = NULL;
  box->t.byte_offset = 0;
  return &box->t;
}

/** Free a tensor from mbx_cs_tensor_new (NULL is a no-op). */
void mbx_cs_tensor_free(DLTensor* tensor) {
  free(tensor); /* t is the first member of mbx_cs_tensor */
}
%}
