#pragma once
// How the host emulates a block's threads (kernels/block_program.cuh, and n_to_1.cu's stateful
// blocks). Two ways:
//   - phase by phase (the default): the block program runs once, and each phase runs for every
//     thread in turn, ascending or, with CAUSALSWEEP_HOST_THREADS_DESCENDING=1, descending;
//   - on fibers (CAUSALSWEEP_EMULATION=fibers): every thread runs the whole program on its own stack,
//     as on the GPU, with its own locals and branches between the barriers. At each barrier the
//     threads must all be at the same call site (a barrier in divergent code is an error, not a
//     hang), and they resume in a fresh random order (seed CAUSALSWEEP_EMULATION_SEED; the order a
//     block sees depends on the blocks run before it on that thread, so a failure reproduces by
//     rerunning the same test filter with the same seed, as ctest does). So a value
//     read between phases that a later phase overwrites, or a phase whose threads race, changes the
//     results. ctest runs every emulation suite this way (tests/CMakeLists.txt): the nearest a
//     machine without a GPU gets to compute-sanitizer's racecheck and synccheck.
#include <cstdlib>
#include <functional>
#include <typeinfo>

namespace causalsweep::cuda {

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

// Whether the environment asks for fibers (CAUSALSWEEP_EMULATION=fibers).
bool fiber_emulation();

// Runs body(tid) for threads 0 .. threads-1, each on its own fiber, to the end; body calls
// fiber_barrier at each barrier. Throws std::logic_error when the threads of a barrier round stand
// at different barriers (or some have finished), naming them; std::runtime_error in a build
// without Boost.Context.
void run_on_fibers(int threads, const std::function<void(int tid)>& body);

// Inside run_on_fibers: this thread waits at barrier `site` (one address per call site; `name`
// says which in messages) until every thread of the block has reached one.
void fiber_barrier(const void* site, const char* name);

// A barrier identified by the phase's type: every lambda has its own, so every call site too.
template <class Phase>
void fiber_barrier_after() {
  static const char site = 0;
  fiber_barrier(&site, typeid(Phase).name());
}

}  // namespace causalsweep::cuda
