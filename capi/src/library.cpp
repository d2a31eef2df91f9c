// The library-wide entry points: status names and the last error, version,
// paths, and the built-in prior generators.
#include <climits>
#include <cstdint>
#include <string>

#include "boundary.h"
#include "common/device_memory.h"
#include "priors/priors.h"
#include "tensor_check.h"

namespace {

using mbx::DType;
using mbx::fail;
using mbx::capi::View;

const mbx::SsdConfig kSsdConfigs[] = {mbx::SsdConfig::kSsd300Voc, mbx::SsdConfig::kSsd300Coco,
                                      mbx::SsdConfig::kSsd512Voc};

mbx::SsdConfig ssd_config(mbx_ssd_config_t c) {
  if (static_cast<int>(c) < 0 || static_cast<int>(c) > 2)
    fail("config = " + std::to_string(static_cast<int>(c)) +
         ": expected MBX_SSD300_VOC, MBX_SSD300_COCO or MBX_SSD512_VOC");
  return kSsdConfigs[static_cast<int>(c)];
}

void check_image_size(int64_t h, int64_t w) {
  if (h < 1 || w < 1 || h > (int64_t(1) << 20) || w > (int64_t(1) << 20))
    fail("image_height x image_width = " + std::to_string(h) + " x " + std::to_string(w) +
         ": expected each in [1, 2^20] pixels");
}

float* check_prior_output(DLTensor* t, int64_t P) {
  View v = mbx::capi::check_tensor(t, "priors", "[P, 4]", {P, 4}, {DType::kF32});
  if (!mbx::capi::is_host(t->device))
    fail("priors: prior generation writes host memory; pass a CPU tensor and copy it yourself");
  return static_cast<float*>(v.data);
}

static_assert(MBX_RETINANET_NUM_LEVELS == mbx::kRetinanetLevels,
              "MBX_RETINANET_NUM_LEVELS must match the core's pyramid");

}  // namespace

extern "C" {

MBX_API const char* mbx_status_string(mbx_status_t status) {
  switch (status) {
    case MBX_STATUS_OK: return "MBX_STATUS_OK";
    case MBX_STATUS_INVALID_ARGUMENT: return "MBX_STATUS_INVALID_ARGUMENT";
    case MBX_STATUS_UNSUPPORTED: return "MBX_STATUS_UNSUPPORTED";
    case MBX_STATUS_OUT_OF_MEMORY: return "MBX_STATUS_OUT_OF_MEMORY";
    case MBX_STATUS_NO_DEVICE: return "MBX_STATUS_NO_DEVICE";
    case MBX_STATUS_DEVICE_ERROR: return "MBX_STATUS_DEVICE_ERROR";
    case MBX_STATUS_CONTEXT_BUSY: return "MBX_STATUS_CONTEXT_BUSY";
    case MBX_STATUS_INTERNAL_ERROR: return "MBX_STATUS_INTERNAL_ERROR";
  }
  return "MBX_STATUS_UNKNOWN";
}

MBX_API const char* mbx_last_error(void) { return mbx::capi::last_error.c_str(); }

MBX_API const char* mbx_version(void) {
#define MBX_STR2(x) #x
#define MBX_STR(x) MBX_STR2(x)
  return MBX_STR(MBX_VERSION_MAJOR) "." MBX_STR(MBX_VERSION_MINOR) "." MBX_STR(MBX_VERSION_PATCH);
}

MBX_API int mbx_version_number(void) { return MBX_VERSION_NUMBER; }

MBX_API int mbx_cuda_available(void) { return mbx::cuda_runtime_available() ? 1 : 0; }

MBX_API int mbx_path_available(mbx_path_t path) {
  switch (path) {
    case MBX_PATH_AUTO:
    case MBX_PATH_CPU_SCALAR:
    case MBX_PATH_CPU: return 1;
    case MBX_PATH_CUDA: return mbx_cuda_available();
  }
  return 0;
}

MBX_API const char* mbx_path_name(mbx_path_t path) {
  switch (path) {
    case MBX_PATH_AUTO: return "auto";
    case MBX_PATH_CPU_SCALAR: return "cpu-scalar";
    case MBX_PATH_CPU: return "cpu";
    case MBX_PATH_CUDA: return "cuda";
  }
  return nullptr;
}

MBX_API mbx_status_t mbx_priors_ssd_count(mbx_ssd_config_t config, int64_t* num_priors) {
  MBX_TRY
  if (!num_priors) fail("num_priors: NULL");
  *num_priors = mbx::ssd_prior_count(ssd_config(config));
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_ssd(mbx_ssd_config_t config, DLTensor* priors) {
  MBX_TRY
  const mbx::SsdConfig c = ssd_config(config);
  float* out = check_prior_output(priors, mbx::ssd_prior_count(c));
  mbx::ssd_priors(c, out);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_retinanet_count(int64_t image_height, int64_t image_width,
                                                int64_t* num_priors) {
  MBX_TRY
  if (!num_priors) fail("num_priors: NULL");
  check_image_size(image_height, image_width);
  *num_priors = mbx::retinanet_anchor_count(image_height, image_width);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_retinanet(int64_t image_height, int64_t image_width,
                                          DLTensor* priors) {
  MBX_TRY
  check_image_size(image_height, image_width);
  float* out = check_prior_output(priors, mbx::retinanet_anchor_count(image_height, image_width));
  mbx::retinanet_anchors(image_height, image_width, out);
  return MBX_STATUS_OK;
  MBX_CATCH
}

MBX_API mbx_status_t mbx_priors_retinanet_levels(int64_t image_height, int64_t image_width,
                                                 DLTensor* prior_levels) {
  MBX_TRY
  check_image_size(image_height, image_width);
  View v = mbx::capi::check_tensor(prior_levels, "prior_levels", "[5]",
                                   {MBX_RETINANET_NUM_LEVELS}, {DType::kI32});
  if (!mbx::capi::is_host(prior_levels->device))
    fail("prior_levels: prior generation writes host memory; pass a CPU tensor");
  int64_t sizes[mbx::kRetinanetLevels];
  mbx::retinanet_level_sizes(image_height, image_width, sizes);
  for (int64_t s : sizes)
    if (s > INT32_MAX)
      fail("image_height/image_width: a pyramid level has more than 2^31 - 1 anchors");
  int32_t* out = static_cast<int32_t*>(v.data);
  for (int i = 0; i < mbx::kRetinanetLevels; ++i) out[i] = static_cast<int32_t>(sizes[i]);
  return MBX_STATUS_OK;
  MBX_CATCH
}

}  // extern "C"
