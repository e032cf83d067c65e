#pragma once
// The C++17 interface of the CUDA kernels: plain structs and pointers, so host/cuda_backend.cpp and
// the tests (C++20, g++) can drive kernels that nvcc compiles as C++17.
//
// Two kernels:
//   - the raw random stream (cuRAND Philox words for a list of addresses), checked word for word
//     against the CPU's Random123 stream;
//   - the simulation fused with the Gram accumulation: one CUDA block per network runs all T steps
//     of the rate model and adds every transition to the network's Gram (gram.hpp's layout), so no
//     trajectory is ever stored. The same block program also runs on the host (one emulated block,
//     its threads run one after another between barriers), which lets this machine's tests check
//     the kernel's logic without a GPU.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "causalsweep/model.hpp"
#include "causalsweep/random_stream.hpp"

namespace causalsweep::cuda {

// ---- raw random stream ----------------------------------------------------------------------

// words[4 i .. 4 i + 3] = cuRAND's curand4() after curand_init(seeds[i], subsequences[i], 4 * blocks[i])
// for i < count (device pointers). Blocks must be < 2^62 (cuRAND's offset is 4 * block in 64 bits).
void launch_philox_blocks(const uint64_t* seeds, const uint64_t* subsequences, const uint64_t* blocks,
                          uint32_t* words, int count, cudaStream_t stream);

// The same cuRAND calls compiled for the host (curand_kernel.h's Philox is plain integer code), so
// the addressing the kernels use is checked against Random123 on machines without a GPU.
RandomBlock curand_philox_block_on_host(uint64_t seed, uint64_t subsequence, uint64_t block);

// ---- simulation + Gram ----------------------------------------------------------------------

// A network's Gram buffer: ww ((2n+1) x (2n+1), both triangles), then wu ((2n+1) x 2n), then uu (2n),
// each column-major (Eigen's layout): gram.hpp's Gram, with w = [1, z, x] and u = [x_next, target].
CS_HD constexpr size_t gram_doubles(int n) {
  const size_t p = 2 * static_cast<size_t>(n) + 1, q = 2 * static_cast<size_t>(n);
  return p * p + p * q + q;
}

// Where one block keeps its working memory. Everything that fits goes to shared memory, in this
// order of priority: the per-neuron state (x double buffer, the current random draws, saturation
// counters), A with a tile of at least 16 transitions, the Gram(s) if a tile of 32 still fits, then
// the longest tile (at most 64). What does not fit lives in global memory (`scratch`, A read where it
// was uploaded, the Gram accumulated in the output), so every n runs, only slower.
struct SimulationLayout {
  int n = 0;                   // neurons; every network of one launch has the same n
  bool perturb = false;        // planned for perturbation mode (two Grams per network); must match the batch
  int threads = 256;           // threads per block: whole warps, at most 256
  int tile = 32;               // transitions per Gram update (even: the perturbation Gram takes even columns)
  int column_stride = 0;       // doubles per tile column [1, z, x, target]: 3n+1 rounded up to 4
  bool state_in_shared = false;
  bool tile_in_shared = false;
  bool a_in_shared = false;
  bool gram_in_shared = false; // the Gram(s) accumulated in shared memory, copied out at the end
  size_t shared_bytes = 0;     // dynamic shared memory per block
  size_t scratch_doubles = 0;  // global scratch per network (0 when everything is in shared memory)
};

// The layout for n neurons, `threads` per block and at most `shared_limit_bytes` of shared memory.
SimulationLayout plan_simulation_layout(int n, size_t shared_limit_bytes, bool perturb = false, int threads = 256);

// The mapping the backend uses, chosen by size from the device's opt-in shared memory per block: a
// block of 256 threads with all of it per network, or, for n <= 32, blocks of 64 threads with a
// quarter of it, so that several networks run on each SM (only where state, A and tile still fit). (Not yet measured against each other:
// `bench_cuda kernel NETWORKS N T THREADS BLOCKS_PER_SM` times either.)
SimulationLayout choose_simulation_layout(int n, size_t shared_limit_bytes, bool perturb);

// One launch: `networks` networks of the layout's n, one block each. All pointers are device
// pointers for launch_simulation and host pointers for emulate_simulation_on_host.
struct SimulationBatch {
  int networks = 0;
  Nonlinearity nonlinearity = Nonlinearity::sigmoid;
  bool perturb = false;                  // clamp x at every even t; also fills even_grams
  const uint64_t* seeds = nullptr;       // [networks]
  const double* etas = nullptr;          // [networks] instrument strength
  const int* timesteps = nullptr;        // [networks] T (transitions t = 0 .. T-2)
  const double* connectivity = nullptr;  // [networks][n * n] A, column-major
  double* grams = nullptr;               // [networks][gram_doubles(n)] all transitions
  double* even_grams = nullptr;          // [networks][gram_doubles(n)] even-t transitions (perturb only)
  unsigned long long* saturated = nullptr;  // [networks][2] saturated logits: all, even
  double* scratch = nullptr;             // [networks][layout.scratch_doubles] (unused when 0)
};

// Launches the fused kernel on the current device's `stream` (asynchronous; launch errors throw).
// The layout must come from plan_simulation_layout with at most this device's shared_memory_limit.
void launch_simulation(const SimulationLayout& layout, const SimulationBatch& batch, cudaStream_t stream);

// Runs the very same block program on the host, one network after another, each block's threads
// in turn between barriers (scratch and shared memory are allocated here; batch.scratch is ignored).
void emulate_simulation_on_host(const SimulationLayout& layout, const SimulationBatch& batch);

// Whether the kernels can run on `device` (compiled for its architecture, enough shared memory);
// `why` says what is wrong when not.
bool simulation_kernel_runnable(int device, std::string& why);

// The opt-in shared memory per block of `device`, in bytes (227 KiB on H100 and H200).
size_t shared_memory_limit(int device);

}  // namespace causalsweep::cuda
