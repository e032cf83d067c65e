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
  // Networks per batch when the user sets none (0: the orchestrator's CPU default); a GPU wants
  // thousands in flight. Batch size never changes results.
  virtual int preferred_batch_size() const { return 0; }
  virtual std::vector<NetworkResult> run_batch(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                               PhaseTimes& times) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(int threads);

// The CUDA backend on `devices` (CUDA device ids; empty: every visible device it can run on), with
// `host_threads` threads (0: all cores) for the host-side estimators and scores. Batches are split
// across the devices, one worker thread each. InputError (exit 2) when no listed device is usable
// or the build has no CUDA.
std::unique_ptr<Backend> make_cuda_backend(std::vector<int> devices, int host_threads);


// Picks the backend for `kind`. auto: the GPU when one is usable and the CUDA backend is built,
// else the CPU; `choice_note` says which it chose and why. cuda without one: InputError.
// `devices`: the CUDA devices to use (empty: every visible one, e.g. those SLURM gave the task).
std::unique_ptr<Backend> select_backend(BackendKind kind, int threads, std::string& choice_note,
                                        const std::vector<int>& devices = {});

}  // namespace causalsweep
