/* ABI check (issue 6): loads libmbx.so with dlopen (RTLD_NOW: every
 * dependency resolves), resolves every function declared MBX_API in mbx.h
 * (the list is extracted from the header at build time into
 * mbx_api_symbols.h), and makes a few calls through the resolved pointers.
 *   mbx_dlopen_test /path/to/libmbx.so.MAJOR */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "mbx/mbx.h"
#include "mbx_api_symbols.h" /* static const char* const kSymbols[]; kNumSymbols */

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s LIBMBX\n", argv[0]);
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "dlopen(%s) failed: %s\n", argv[1], dlerror());
    return 1;
  }
  int missing = 0;
  for (int i = 0; i < kNumSymbols; ++i) {
    dlerror();
    void* p = dlsym(h, kSymbols[i]);
    if (!p) {
      fprintf(stderr, "unresolved: %s (%s)\n", kSymbols[i], dlerror());
      ++missing;
    }
  }
  if (kNumSymbols < 20) {
    fprintf(stderr, "only %d symbols extracted from mbx.h: extraction broken\n", kNumSymbols);
    return 1;
  }
  /* Calls through the dlsym'd pointers, checking the runtime version. */
  typedef const char* (*version_fn)(void);
  typedef int (*version_number_fn)(void);
  typedef mbx_status_t (*options_init_fn)(mbx_options_t*, mbx_preset_t);
  typedef mbx_status_t (*options_validate_fn)(const mbx_options_t*);
  typedef const char* (*last_error_fn)(void);
  version_fn version = (version_fn)dlsym(h, "mbx_version");
  version_number_fn version_number = (version_number_fn)dlsym(h, "mbx_version_number");
  options_init_fn options_init = (options_init_fn)dlsym(h, "mbx_options_init");
  options_validate_fn options_validate = (options_validate_fn)dlsym(h, "mbx_options_validate");
  last_error_fn last_error = (last_error_fn)dlsym(h, "mbx_last_error");
  if (!version || !version_number || !options_init || !options_validate || !last_error) return 1;
  if (version_number() != MBX_VERSION_NUMBER) {
    fprintf(stderr, "runtime version %d != header %d\n", version_number(), MBX_VERSION_NUMBER);
    return 1;
  }
  mbx_options_t o;
  if (options_init(&o, MBX_PRESET_TORCHVISION_RETINANET) != MBX_STATUS_OK ||
      options_validate(&o) != MBX_STATUS_OK)
    return 1;
  o.pos_threshold = 2.0;
  if (options_validate(&o) != MBX_STATUS_INVALID_ARGUMENT || strstr(last_error(), "pos_threshold") == NULL) {
    fprintf(stderr, "validation through dlsym pointers wrong: %s\n", last_error());
    return 1;
  }
  if (missing) return 1;
  printf("OK: dlopen %s, %d functions resolved, version %s\n", argv[1], kNumSymbols, version());
  dlclose(h);
  return 0;
}
