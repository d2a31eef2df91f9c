// The one SWIG interface over mbx.h for Python, Java and C#.
// Language-specific typemaps (DLTensor* from the language's arrays/tensors,
// out-parameters, GIL release) live in <lang>/mbx_<lang>.i and are pulled in
// below; everything else is shared.
%module mbx_native

%{
#include "mbx/mbx.h"
%}

%include <stdint.i>

// One exception rule for every language: a non-OK status becomes the
// language's exception carrying mbx_last_error(). MBX_THROW(status, message)
// is defined by each language file.
%exception {
  $action
  if (result != MBX_STATUS_OK) {
    MBX_THROW(result, mbx_last_error());
  }
}
// Functions that do not return a status are exempt.
%noexception mbx_status_string;
%noexception mbx_last_error;
%noexception mbx_version;
%noexception mbx_version_number;
%noexception mbx_path_available;
%noexception mbx_path_name;
%noexception mbx_cuda_available;
%noexception mbx_context_destroy;
%noexception mbx_option_count;
%noexception mbx_option_name;
%noexception mbx_option_type;
%noexception mbx_option_choices;
%noexception mbx_option_doc;
%noexception mbx_preset_count;
%noexception mbx_preset_name;

// mbx_run and its mbx_tensors_t carry the optional inputs (gt_flags,
// prior_levels) that the per-operation functions do not. Java and C# wrap
// the struct (its DLTensor* fields take the raw tensors their layers build
// and free) and call mbx_run; Python calls mbx_py_run (python/mbx_python.i),
// which takes every field as a parameter, because a Python setter would
// store a pointer into a capsule that its typemap releases right away.
#if defined(SWIGPYTHON)
%ignore mbx_tensors_t;
%ignore mbx_tensors_init;
%ignore mbx_run;
#else
// The struct's constructor, destructor and field accessors return no status.
%noexception mbx_tensors_t;
%noexception mbx_tensors_t::~mbx_tensors_t;
#endif

// mbx_options_get as a string for every language: mbx_option_text(opts,
// name) returns the option's text (mbx_options_get syntax) or raises the
// language's exception with mbx_last_error().
%ignore mbx_options_get;
%exception mbx_option_text {
  $action
  if (!result) {
    MBX_THROW(MBX_STATUS_INVALID_ARGUMENT, mbx_last_error());
  }
}
%{
static const char* mbx_option_text(const mbx_options_t* opts, const char* name) {
  static thread_local char buf[MBX_OPTION_TEXT_MAX];
  return mbx_options_get(opts, name, buf, sizeof buf) == MBX_STATUS_OK ? buf : NULL;
}
%}
const char* mbx_option_text(const mbx_options_t* opts, const char* name);

#if defined(SWIGPYTHON)
%include "python/mbx_python.i"
#elif defined(SWIGJAVA)
%include "java/mbx_java.i"
#elif defined(SWIGCSHARP)
%include "csharp/mbx_csharp.i"
#endif

#define MBX_API
%include "mbx/mbx_version.h"
%include "mbx/mbx.h"
