// Backend selection. `auto` takes the CUDA backend when this build has it and a GPU can run its
// kernels, and the CPU otherwise, saying which and why; `cuda` without a usable GPU is an InputError
// (exit 2). Compiled in every build: without nvcc the CUDA entry points below stand in.
#include <exception>

#include <fmt/format.h>

#include "causalsweep/backend.hpp"

namespace causalsweep {

#ifndef CAUSALSWEEP_HAVE_CUDA
CudaDevices query_cuda_devices() { return CudaDevices{0, "built without CUDA (nvcc was not found)"}; }

std::unique_ptr<Backend> make_cuda_backend(std::vector<int>, int) {
  throw InputError(
      "--backend cuda: this build has no CUDA backend (nvcc was not found when it was built); use --backend cpu or "
      "auto, or rebuild on a machine with the CUDA toolkit");
}
#endif

std::unique_ptr<Backend> select_backend(BackendKind kind, int threads, std::string& choice_note,
                                        const std::vector<int>& devices) {
  switch (kind) {
    case BackendKind::cpu: choice_note = "backend cpu (requested)"; break;
    case BackendKind::cuda: {
      auto backend = make_cuda_backend(devices, threads);  // InputError naming --backend cuda when unusable
      choice_note = "backend cuda (requested): " + backend->device();
      return backend;
    }
    case BackendKind::auto_select: {
#ifdef CAUSALSWEEP_HAVE_CUDA
      const CudaDevices gpus = query_cuda_devices();
      if (gpus.count == 0) {
        choice_note = fmt::format("backend cpu (auto: {})", gpus.description);
        break;
      }
      try {
        auto backend = make_cuda_backend(devices, threads);
        choice_note = "backend cuda (auto): " + backend->device();
        return backend;
      } catch (const std::exception& e) {  // a GPU it cannot run on: the CPU still can
        choice_note = fmt::format("backend cpu (auto: the GPU is not usable: {})", e.what());
      }
#else
      choice_note = fmt::format("backend cpu (auto: {})", query_cuda_devices().description);
#endif
      break;
    }
  }
  return make_cpu_backend(threads);
}

}  // namespace causalsweep
