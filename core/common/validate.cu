// validate_priors on the device (validate.h): the check of validate.cpp run
// where the priors live, so a CUDA call with host validation on copies one
// row back instead of all P rows (1.6 MB for RetinaNet's 99765 anchors).
#include "common/cuda_util.cuh"
#include "common/validate.h"

namespace mbx {
namespace {

// atomicMin of the index of every rejected row: the first bad row wins.
__global__ void first_bad_prior_kernel(const float* priors, long long P, bool center_size,
                                       unsigned long long* first) {
  const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long p = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; p < P;
       p += stride) {
    const float* r = priors + 4 * p;
    const float x0 = r[0], x1 = r[1], x2 = r[2], x3 = r[3];
    const bool finite = isfinite(x0) && isfinite(x1) && isfinite(x2) && isfinite(x3);
    const bool ok = finite && (center_size ? (x2 > 0.f && x3 > 0.f) : (x2 > x0 && x3 > x1));
    if (!ok) atomicMin(first, static_cast<unsigned long long>(p));
  }
}

// One stream-ordered 8-byte device scratch word.
struct DeviceWord {
  unsigned long long* p = nullptr;
  cudaStream_t s;
  explicit DeviceWord(cudaStream_t stream) : s(stream) {
    MBX_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p), sizeof(*p), s));
  }
  ~DeviceWord() {
    if (p) cudaFreeAsync(p, s);
    cudaGetLastError();
  }
};

}  // namespace

void validate_priors_device(const float* priors, int64_t P, PriorFormat format, int device_id,
                            void* stream) {
  if (P <= 0) return;
  cuda::DeviceGuard guard(device_id);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  unsigned long long first = 0;
  {
    DeviceWord word(s);
    MBX_CUDA_CHECK(cudaMemsetAsync(word.p, 0xff, sizeof(*word.p), s));
    const long long blocks = (P + cuda::kBlock - 1) / cuda::kBlock;
    first_bad_prior_kernel<<<static_cast<unsigned>(blocks < 1024 ? blocks : 1024), cuda::kBlock, 0,
                             s>>>(priors, P, format == PriorFormat::kCenterSize, word.p);
    cuda::check_launch("first_bad_prior_kernel");
    MBX_CUDA_CHECK(cudaMemcpyAsync(&first, word.p, sizeof(first), cudaMemcpyDeviceToHost, s));
  }
  MBX_CUDA_CHECK(cudaStreamSynchronize(s));
  if (first >= static_cast<unsigned long long>(P)) return;
  float row[4];
  const int64_t bad = static_cast<int64_t>(first);
  MBX_CUDA_CHECK(cudaMemcpyAsync(row, priors + 4 * bad, sizeof(row), cudaMemcpyDeviceToHost, s));
  MBX_CUDA_CHECK(cudaStreamSynchronize(s));
  validate_prior_row(row, bad, format);  // throws with the host check's message
  throw Error(Status::kInternal, "priors[" + std::to_string(bad) +
                                     "]: rejected on the device but accepted on the host");
}

}  // namespace mbx
