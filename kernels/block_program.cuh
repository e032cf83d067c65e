#pragma once
// A block program runs the same on the GPU and on the host. It is written as phases separated by
// barriers (Block::parallel): on the GPU every thread runs the phase and the block then meets at
// __syncthreads(); on the host (tests without a GPU) the phase runs for each thread in turn, or each
// thread runs on its own fiber (host_threads.hpp). All are the same computation as long as no thread
// reads, within a phase, what another thread writes in that phase, so each phase says what each
// thread owns.
#include <cuda_runtime.h>

#include <cstddef>

#include "host_threads.hpp"

// Unrolled on the device (keeps small accumulator arrays in registers); nothing on the host.
#ifdef __CUDA_ARCH__
#define CS_UNROLL _Pragma("unroll")
#else
#define CS_UNROLL
#endif

namespace causalsweep::cuda {

// On the GPU: every thread runs the phase for itself, then the block waits at a barrier.
struct DeviceBlock {
  template <class Phase>
  __device__ void parallel(Phase&& phase) {
    phase(static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
    __syncthreads();
  }
};

// On the host: the phase runs for each thread in turn (valid because phases are race-free).
struct HostBlock {
  int threads;
  template <class Phase>
  void parallel(Phase&& phase) {
    for_each_host_thread(threads, [&](int tid) { phase(tid, threads); });
  }
};

// On the host, as one thread on its fiber sees the block (host_threads.hpp): run the phase, then
// wait at this call site's barrier.
struct FiberBlock {
  int threads;
  int tid;
  template <class Phase>
  void parallel(Phase&& phase) {
    phase(tid, threads);
    fiber_barrier_after<Phase>();
  }
};

// Runs one block of a program on the host: program(block) with a HostBlock, or once per thread with
// its FiberBlock when the environment asks for fibers.
template <class Program>
void emulate_block(int threads, Program&& program) {
  if (!fiber_emulation()) {
    HostBlock block{threads};
    program(block);
    return;
  }
  run_on_fibers(threads, [&](int tid) {
    FiberBlock block{threads, tid};
    program(block);
  });
}

// Hands out consecutive pieces of a block's shared memory or of its global scratch, for kernels
// that plan by size which of their arrays fit on chip.
struct MemoryCarver {
  double* shared_cursor;
  double* global_cursor;
  __host__ __device__ double* take(bool in_shared, size_t count) {
    double*& cursor = in_shared ? shared_cursor : global_cursor;
    double* start = cursor;
    cursor += count;
    return start;
  }
};

}  // namespace causalsweep::cuda
