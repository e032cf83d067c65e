#pragma once
// The one error check for CUDA runtime, cuBLAS and cuSOLVER calls and kernel launches: every call
// is wrapped, and a failure throws with the call, the file and the line.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace causalsweep::cuda {

inline std::string status_text(cudaError_t status) { return cudaGetErrorString(status); }
template <class Status>
std::string status_text(Status status) {  // cuBLAS / cuSOLVER status enums
  return "status " + std::to_string(static_cast<int>(status));
}
inline bool failed(cudaError_t status) { return status != cudaSuccess; }
template <class Status>
bool failed(Status status) {
  return static_cast<int>(status) != 0;  // CUBLAS_STATUS_SUCCESS and CUSOLVER_STATUS_SUCCESS are 0
}

}  // namespace causalsweep::cuda

#define CS_CUDA_CHECK(call)                                                                             \
  do {                                                                                                  \
    const auto cs_status_ = (call);                                                                     \
    if (::causalsweep::cuda::failed(cs_status_))                                                        \
      throw std::runtime_error(std::string(#call) + " failed at " + __FILE__ + ":" +                   \
                               std::to_string(__LINE__) + ": " + ::causalsweep::cuda::status_text(cs_status_)); \
  } while (0)
