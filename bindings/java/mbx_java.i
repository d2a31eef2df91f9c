// Java part of the SWIG interface (included by ../mbx.i under SWIGJAVA).
//
// The generated classes live in org.mbx.internal (raw, one-to-one with
// mbx.h); the idiomatic API (MbxContext, Options, Mbx, MbxException) is
// hand-written in src/org/mbx. This file provides:
//  - MBX_THROW for the shared %exception: throws org.mbx.MbxException(status,
//    mbx_last_error()) through JNI and returns from the wrapper;
//  - out-parameter typemaps (handles and counts come back in 1-element
//    arrays, so the status stays the return value and drives %exception);
//  - DLTensor construction: mbx_java_tensor_new() builds a heap DLTensor over
//    the memory of a *direct* java.nio.Buffer (GetDirectBufferAddress, no
//    copy). The caller keeps the Buffer reachable while the tensor is used
//    and frees the tensor with mbx_java_tensor_free(). Arrays and heap
//    buffers are copied into direct buffers by the Java layer (see
//    org.mbx.NativeArg): pinning with GetPrimitiveArrayCritical would stall
//    the GC for the whole (possibly long, multi-threaded) computation.

%{
#include <jni.h>
#include <stdlib.h>
#include <string.h>

/* Throw org.mbx.MbxException(int status, String message). Falls back to a
 * RuntimeException if the class cannot be found (e.g. a stripped jar). */
static void mbx_java_throw(JNIEnv* jenv, int status, const char* message) {
  if (!message) message = "";
  jclass cls = jenv->FindClass("org/mbx/MbxException");
  if (cls) {
    jmethodID ctor = jenv->GetMethodID(cls, "<init>", "(ILjava/lang/String;)V");
    if (ctor) {
      jstring msg = jenv->NewStringUTF(message);
      if (msg) {
        jobject ex = jenv->NewObject(cls, ctor, (jint)status, msg);
        if (ex) {
          jenv->Throw((jthrowable)ex);
          return;
        }
      }
    }
  }
  if (jenv->ExceptionCheck()) jenv->ExceptionClear();
  SWIG_JavaThrowException(jenv, SWIG_JavaRuntimeException, message);
}

/* Every wrapped function under %exception returns mbx_status_t (a jint on
 * the JNI side), so `return 0` is the right early exit for all of them. */
#define MBX_THROW(status, message)                         \
  do {                                                     \
    mbx_java_throw(jenv, (int)(status), (message));        \
    return 0;                                              \
  } while (0)

/* A DLTensor with room for its own shape (ndim <= 4). */
typedef struct mbx_java_tensor {
  DLTensor t;
  int64_t shape[4];
} mbx_java_tensor;
%}

// Proper Java enums whose values are compile-time constants: no JNI getter
// per enum value (those getters would also run through %exception).
%include <enums.swg>
%javaconst(1);

// Raw classes: constructors and getCPtr public so org.mbx can use them.
SWIG_JAVABODY_PROXY(public, public, SWIGTYPE)
SWIG_JAVABODY_TYPEWRAPPER(public, public, public, SWIGTYPE)

// The options struct's accessors, constructor and destructor return no status.
%noexception mbx_options_t;
%noexception mbx_options_t::~mbx_options_t;
// No finalizer: org.mbx.Options frees its struct with a java.lang.ref.Cleaner.
%typemap(javafinalize) mbx_options_t ""
// Nor for mbx_tensors_t: org.mbx.Mbx frees it in a try-with-resources block.
%typemap(javafinalize) mbx_tensors_t ""

// --- out-parameters -------------------------------------------------------
%include <typemaps.i>
%apply long long *OUTPUT { int64_t* num_priors };
%apply unsigned long *OUTPUT { size_t* bytes };
%apply int *OUTPUT { mbx_preset_t* preset };

// mbx_context_create(mbx_context_t** ctx): long[1] receives the handle.
%typemap(jni) mbx_context_t** ctx "jlongArray"
%typemap(jtype) mbx_context_t** ctx "long[]"
%typemap(jstype) mbx_context_t** ctx "long[]"
%typemap(javain) mbx_context_t** ctx "$javainput"
%typemap(in) mbx_context_t** ctx (mbx_context_t* temp = 0) {
  if (!$input || jenv->GetArrayLength($input) < 1) {
    SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException,
                            "ctx: expected a long[] of length >= 1");
    return $null;
  }
  $1 = &temp;
}
%typemap(argout) mbx_context_t** ctx {
  jlong handle = 0;
  *(mbx_context_t**)&handle = temp$argnum;
  jenv->SetLongArrayRegion($input, 0, 1, &handle);
}

// --- direct buffers -> data pointers -------------------------------------
%typemap(jni) void* MBX_DIRECT_BUFFER "jobject"
%typemap(jtype) void* MBX_DIRECT_BUFFER "java.nio.Buffer"
%typemap(jstype) void* MBX_DIRECT_BUFFER "java.nio.Buffer"
%typemap(javain) void* MBX_DIRECT_BUFFER "$javainput"
%typemap(in) void* MBX_DIRECT_BUFFER {
  $1 = 0;
  if ($input) {
    $1 = jenv->GetDirectBufferAddress($input);
    if (!$1 && jenv->GetDirectBufferCapacity($input) != 0) {
      SWIG_JavaThrowException(jenv, SWIG_JavaIllegalArgumentException,
                              "expected a direct java.nio.Buffer");
      return $null;
    }
  }
}

%noexception mbx_java_tensor_new;
%noexception mbx_java_tensor_free;
%inline %{
/**
 * A heap DLTensor (kDLCPU, lanes 1, compact strides) over the memory of a
 * direct buffer, starting `byte_offset` bytes into it. ndim in [0, 4]; dims
 * beyond ndim are ignored. Free with mbx_java_tensor_free(). Returns NULL
 * for a bad ndim or when out of memory (the Java layer checks).
 */
DLTensor* mbx_java_tensor_new(void* MBX_DIRECT_BUFFER, int64_t byte_offset,
                              int dtype_code, int dtype_bits, int ndim,
                              int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
  if (ndim < 0 || ndim > 4) return NULL;
  mbx_java_tensor* box = (mbx_java_tensor*)calloc(1, sizeof(mbx_java_tensor));
  if (!box) return NULL;
  box->shape[0] = d0;
  box->shape[1] = d1;
  box->shape[2] = d2;
  box->shape[3] = d3;
  box->t.data = MBX_DIRECT_BUFFER;
  box->t.device.device_type = kDLCPU;
  box->t.device.device_id = 0;
  box->t.ndim = ndim;
  box->t.dtype.code = (uint8_t)dtype_code;
  box->t.dtype.bits = (uint8_t)dtype_bits;
  box->t.dtype.lanes = 1;
  box->t.shape = box->shape;
  box->t.strides = NULL;
  box->t.byte_offset = (uint64_t)byte_offset;
  return &box->t;
}

/** Free a tensor from mbx_java_tensor_new (NULL is a no-op). */
void mbx_java_tensor_free(DLTensor* tensor) {
  free(tensor); /* t is the first member of mbx_java_tensor */
}
%}

// The JNI class loads the native libraries (bundled in the jar) itself, so
// the raw org.mbx.internal API works without touching org.mbx first.
%pragma(java) jniclasscode=%{
  static {
    org.mbx.NativeLoader.load();
  }
%}
