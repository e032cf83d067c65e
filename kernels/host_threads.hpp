#pragma once
// How the host emulates a block's threads (kernels/block_program.cuh, and n_to_1.cu's stateful
// blocks): one after another, in an order the tests can turn around.
#include <cstdlib>

namespace causalsweep::cuda {

// The order in which the host runs a phase's threads: ascending, or descending when the environment
// sets CAUSALSWEEP_HOST_THREADS_DESCENDING=1. A race-free phase gives the same results either way; a
// phase where a thread reads or overwrites what another writes in the same phase changes with the
// order. ctest runs the emulation tests both ways (tests/CMakeLists.txt): the nearest a machine
// without a GPU gets to compute-sanitizer's racecheck.
inline bool host_threads_descending() {
  static const bool descending = [] {
    const char* value = std::getenv("CAUSALSWEEP_HOST_THREADS_DESCENDING");
    return value && value[0] == '1';
  }();
  return descending;
}

// Runs run(tid) for every thread of a host-emulated block, in the order above.
template <class Run>
void for_each_host_thread(int threads, Run&& run) {
  if (host_threads_descending())
    for (int tid = threads - 1; tid >= 0; --tid) run(tid);
  else
    for (int tid = 0; tid < threads; ++tid) run(tid);
}

}  // namespace causalsweep::cuda
