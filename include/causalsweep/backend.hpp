#pragma once
// What a backend does: run a batch of networks (generate A, simulate while accumulating the Grams,
// estimate at every observed ratio, score) and hand back one result per network, in batch order.
// The CPU backend lives in host/, the CUDA backend in kernels/; both draw the same random numbers.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "causalsweep/cuda_devices.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"

namespace causalsweep {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;    // "cpu", "cuda"
  virtual std::string device() const = 0;  // e.g. "AMD EPYC ... (2 threads)"
  virtual std::vector<NetworkResult> run_batch(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                               PhaseTimes& times) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(int threads);


// Picks the backend for `kind`. auto: the GPU when one is usable and the CUDA backend is built,
// else the CPU; `choice_note` says which it chose and why. cuda without one: InputError.
std::unique_ptr<Backend> select_backend(BackendKind kind, int threads, std::string& choice_note);

}  // namespace causalsweep
