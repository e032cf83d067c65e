#pragma once
// Number of usable CUDA devices (0 in a build without CUDA or on a machine without a GPU) and a
// description of them for the manifest. Kept C++17-clean: nvcc compiles it too.
#include <string>

namespace causalsweep {

struct CudaDevices {
  int count = 0;
  std::string description;  // names, or why none is usable
};

CudaDevices query_cuda_devices();

}  // namespace causalsweep
