// Backend selection. The CUDA backend is its own piece of work (issue 3); until it exists `auto`
// reports any GPU it sees and runs on the CPU, and `cuda` is refused with the reason.
#include <fmt/format.h>

#include "causalsweep/backend.hpp"

namespace causalsweep {

#ifndef CAUSALSWEEP_HAVE_CUDA
CudaDevices query_cuda_devices() { return CudaDevices{0, "built without CUDA (nvcc was not found)"}; }
#endif

std::unique_ptr<Backend> select_backend(BackendKind kind, int threads, std::string& choice_note) {
  const CudaDevices gpus = query_cuda_devices();
  constexpr bool cuda_backend_built = false;  // set when kernels/ holds the CUDA backend
  switch (kind) {
    case BackendKind::cpu: choice_note = "backend cpu (requested)"; break;
    case BackendKind::cuda:
      throw InputError(fmt::format(
          "--backend cuda: the CUDA backend is not part of this build yet; GPUs seen: {}. Use --backend cpu or auto.",
          gpus.count ? gpus.description : "none (" + gpus.description + ")"));
    case BackendKind::auto_select:
      choice_note = gpus.count && cuda_backend_built
                        ? "backend cuda (auto)"
                        : fmt::format("backend cpu (auto: {})", gpus.count ? "the CUDA backend is not built yet, GPUs: " +
                                                                                 gpus.description
                                                                           : gpus.description);
      break;
  }
  return make_cpu_backend(threads);
}

}  // namespace causalsweep
