// Which CUDA devices this process can use. A machine without a GPU or driver is a normal answer
// (count 0 and the reason), not an error: `--backend auto` then falls back to the CPU.
#include <string>

#include "causalsweep/cuda_devices.hpp"
#include "cuda_check.cuh"

namespace causalsweep {

CudaDevices query_cuda_devices() {
  CudaDevices devices;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    devices.description = std::string("no usable CUDA device: ") + cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return devices;
  }
  devices.count = count;
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp prop{};
    if (!devices.description.empty()) devices.description += "; ";
    // A device in a bad state is described, not thrown: `auto` must still reach the CPU fallback,
    // and the backend's own check then names it as unusable.
    if (const cudaError_t error = cudaGetDeviceProperties(&prop, d); error != cudaSuccess) {
      devices.description += std::to_string(d) + ": unreadable (" + cudaGetErrorString(error) + ")";
      cudaGetLastError();
      continue;
    }
    devices.description += std::to_string(d) + ": " + prop.name + " (" +
                           std::to_string(prop.totalGlobalMem >> 20) + " MiB, sm_" +
                           std::to_string(prop.major) + std::to_string(prop.minor) + ")";
  }
  if (count == 0) devices.description = "no CUDA device";
  return devices;
}

}  // namespace causalsweep
