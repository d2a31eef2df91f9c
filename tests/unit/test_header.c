/* mbx.h compiles as strict C99 and every declared function links. */
#include <stdio.h>
#include <string.h>

#include "mbx/mbx.h"

typedef void (*fn_t)(void);

int main(void) {
  /* Take the address of every public function: a missing export fails to link. */
  const fn_t fns[] = {
      (fn_t)mbx_status_string, (fn_t)mbx_last_error, (fn_t)mbx_version,
      (fn_t)mbx_version_number, (fn_t)mbx_path_available, (fn_t)mbx_path_name,
      (fn_t)mbx_cuda_available, (fn_t)mbx_options_init, (fn_t)mbx_preset_from_name,
      (fn_t)mbx_options_set, (fn_t)mbx_options_validate, (fn_t)mbx_context_create,
      (fn_t)mbx_context_destroy, (fn_t)mbx_context_set_num_threads, (fn_t)mbx_context_set_path,
      (fn_t)mbx_context_set_cuda_stream, (fn_t)mbx_context_set_cuda_validation,
      (fn_t)mbx_context_workspace_bytes, (fn_t)mbx_context_release_workspace, (fn_t)mbx_match,
      (fn_t)mbx_loss_forward, (fn_t)mbx_loss_backward, (fn_t)mbx_loss_forward_backward,
      (fn_t)mbx_decode, (fn_t)mbx_priors_ssd_count, (fn_t)mbx_priors_ssd,
      (fn_t)mbx_priors_retinanet_count, (fn_t)mbx_priors_retinanet, (fn_t)mbx_workspace_size,
      (fn_t)mbx_context_set_workspace, (fn_t)mbx_options_get, (fn_t)mbx_option_count,
      (fn_t)mbx_option_name, (fn_t)mbx_option_type, (fn_t)mbx_option_choices,
      (fn_t)mbx_option_doc, (fn_t)mbx_preset_count, (fn_t)mbx_preset_name,
      (fn_t)mbx_tensors_init, (fn_t)mbx_run};
  size_t i;
  mbx_options_t o;
  for (i = 0; i < sizeof fns / sizeof fns[0]; ++i)
    if (!fns[i]) return 1;
  if (mbx_version_number() != MBX_VERSION_NUMBER) {
    fprintf(stderr, "header/library version mismatch\n");
    return 1;
  }
  if (mbx_options_init(&o, MBX_PRESET_SSD_PYTORCH) != MBX_STATUS_OK) return 1;
  if (o.struct_size != sizeof o) return 1;
  if (mbx_options_init(NULL, MBX_PRESET_SSD_PYTORCH) != MBX_STATUS_INVALID_ARGUMENT) return 1;
  if (strstr(mbx_last_error(), "opts") == NULL) return 1;
  mbx_context_destroy(NULL); /* no-op */
  printf("mbx %s: %u functions linked from C99\n", mbx_version(), (unsigned)(sizeof fns / sizeof fns[0]));
  return 0;
}
