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

#if defined(SWIGPYTHON)
%include "python/mbx_python.i"
#elif defined(SWIGJAVA)
%include "java/mbx_java.i"
#elif defined(SWIGCSHARP)
%include "csharp/mbx_csharp.i"
#endif

#define MBX_API
%include "mbx/mbx.h"
