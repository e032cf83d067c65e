#pragma once
// Opting a kernel in to more than 48 KiB of dynamic shared memory, safely from several host threads.
#include <cuda_runtime.h>

#include <cstddef>
#include <stdexcept>
#include <string>

#include "cuda_check.cuh"

namespace causalsweep::cuda {

// Lets `kernel` launch on the current device with up to all the dynamic shared memory the device
// allows it (the opt-in limit less the kernel's static shared memory), after checking that `bytes`
// fit. Why not set the attribute to `bytes`, as is usual: it belongs to the kernel on the device, not
// to a launch, so two host threads on one device (two workers naming the same GPU) could lower it
// between another thread's set and launch. This value is the same from every thread. The limit is
// only a permission: occupancy and the shared/L1 split follow what each launch asks for.
template <class Kernel>
void allow_dynamic_shared_memory(Kernel kernel, size_t bytes, const char* who) {
  int device = 0, optin = 0;
  CS_CUDA_CHECK(cudaGetDevice(&device));
  CS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  cudaFuncAttributes attributes{};
  CS_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  const size_t optin_bytes = static_cast<size_t>(optin);
  const size_t limit = attributes.sharedSizeBytes < optin_bytes ? optin_bytes - attributes.sharedSizeBytes : 0;
  if (bytes > limit)
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(bytes) +
                                " bytes of dynamic shared memory, but device " + std::to_string(device) +
                                " allows this kernel " + std::to_string(limit) + " bytes");
  CS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(limit)));
}

}  // namespace causalsweep::cuda
