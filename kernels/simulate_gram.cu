// The rate network simulated on the GPU, fused with the accumulation of its Gram matrices.
//
// One CUDA block runs one network through all T steps (a persistent loop: no per-step launches)
//   x[t+1] = f(A x[t] + eta z[t+1] + eps[t]),  x[0] = 0   (perturbation mode: clamps, see step())
// and adds each transition's w_t = [1, z[t], x[t]] and u_t = [x[t+1], target(x[t+1])] to the Gram
// (include/causalsweep/gram.hpp), so the trajectory is never stored. It reads exactly the random
// numbers host/simulate.cpp reads and applies the same CS_HD model functions (model.hpp,
// random_stream.hpp), all in double precision, so Grams agree with the CPU's to float64 rounding.
//
// The block program is written once, as phases separated by barriers (Block::parallel). On the GPU
// every thread runs it and a phase ends with __syncthreads(); on the host (tests without a GPU) the
// phase runs for each thread in turn. Both are the same computation because no thread reads, within
// a phase, anything another thread writes in that phase: each phase says what each thread owns.
//
// Thread mapping: neuron i belongs to threads i, i + threads, ...; in the Gram update each thread
// owns whole 4 x 4 micro-tiles of the Gram (a read-modify-write that no other thread touches).
// Where fp32 could go later: the dynamics within a tile (x, A x, the transforms), keeping the Gram
// in float64; this version is float64 throughout for a first, exact comparison with the CPU.
#include "philox_device.cuh"  // first: it sets curand_kernel.h's QUALIFIERS

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/model.hpp"
#include "causalsweep/random_stream.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

#ifndef CS_CUDA_ARCHITECTURES
#define CS_CUDA_ARCHITECTURES "(unknown)"
#endif

namespace causalsweep::cuda {
namespace {

constexpr int max_threads = 256;  // the kernel's __launch_bounds__
constexpr int micro = 4;          // micro-tile edge of the Gram update (and padding of the tile columns)

// ---- memory of one network ------------------------------------------------------------------

// Per-neuron state, in doubles: x[t] and x[t+1] (2n), the draws of the current random block (2n
// StepDraws of 3 doubles), and the saturated-logit counters (2n: all transitions, even ones).
__host__ __device__ inline size_t state_doubles(int n) { return 10 * static_cast<size_t>(n); }

__host__ __device__ inline size_t tile_doubles(const SimulationLayout& layout) {
  return static_cast<size_t>(layout.tile) * static_cast<size_t>(layout.w_stride + layout.u_stride);
}

struct NetworkMemory {
  const double* A;        // n x n, column-major: A(i, j) = A[i + j n]
  double* a_shared;       // A's copy in shared memory, or nullptr
  const double* a_global; // A where it was uploaded
  double* x[2];           // x[t] is x[t & 1]
  StepDraws* draws;       // [2 n]: draws[2 i + parity] = neuron i's draws at time 2b + parity, b = current block
  unsigned long long* saturated;  // [2 n]: neuron i's saturated targets, all (2 i) and even-t (2 i + 1) transitions
  double* w_tile;         // [tile][w_stride]: column s holds w of transition tile_start + s (padding stays 0)
  double* u_tile;         // [tile][u_stride]
  double* gram;           // gram_doubles(n): this network's output
  double* even_gram;      // perturbation mode only, else nullptr
};

// Splits shared memory and the network's global scratch as the layout says.
__host__ __device__ inline NetworkMemory carve(const SimulationLayout& layout, const SimulationBatch& batch,
                                               int network, double* shared) {
  const int n = layout.n;
  double* shared_cursor = shared;
  double* global_cursor = batch.scratch + static_cast<size_t>(network) * layout.scratch_doubles;
  auto take = [&](bool in_shared, size_t count) {
    double*& cursor = in_shared ? shared_cursor : global_cursor;
    double* start = cursor;
    cursor += count;
    return start;
  };
  NetworkMemory m{};
  double* state = take(layout.state_in_shared, state_doubles(n));
  double* tile = take(layout.tile_in_shared, tile_doubles(layout));
  m.a_global = batch.connectivity + static_cast<size_t>(network) * n * n;
  m.a_shared = layout.a_in_shared ? take(true, static_cast<size_t>(n) * n) : nullptr;
  m.A = m.a_shared ? m.a_shared : m.a_global;
  m.x[0] = state;
  m.x[1] = state + n;
  m.draws = reinterpret_cast<StepDraws*>(state + 2 * n);
  m.saturated = reinterpret_cast<unsigned long long*>(state + 8 * n);
  m.w_tile = tile;
  m.u_tile = tile + static_cast<size_t>(layout.tile) * layout.w_stride;
  m.gram = batch.grams + static_cast<size_t>(network) * gram_doubles(n);
  m.even_gram = batch.perturb ? batch.even_grams + static_cast<size_t>(network) * gram_doubles(n) : nullptr;
  return m;
}

// ---- phases ----------------------------------------------------------------------------------

// Neuron i's draws for time indices 2 block and 2 block + 1 (host/simulate.cpp reads the same).
__host__ __device__ inline void draw_pair(uint64_t seed, int i, uint64_t block, StepDraws* pair) {
  const RandomBlock words = curand_philox_block(seed, subsequence(Purpose::dynamics, static_cast<uint32_t>(i)), block);
  step_draws_pair(words, pair[0], pair[1]);
}

// Zeroes the outputs and the tile, copies A to shared memory, draws block 0 and sets x[0].
// Owns: strided elements of each array; neuron i's state.
__host__ __device__ inline void initialize(const SimulationLayout& layout, const SimulationBatch& batch,
                                           const NetworkMemory& m, uint64_t seed, int tid, int threads) {
  const int n = layout.n;
  const size_t gram_size = gram_doubles(n);
  for (size_t e = tid; e < gram_size; e += threads) {
    m.gram[e] = 0.0;
    if (m.even_gram) m.even_gram[e] = 0.0;
  }
  for (size_t e = tid; e < tile_doubles(layout); e += threads) m.w_tile[e] = 0.0;  // w and u tiles are contiguous
  if (m.a_shared)
    for (size_t e = tid; e < static_cast<size_t>(n) * n; e += threads) m.a_shared[e] = m.a_global[e];
  for (int i = tid; i < n; i += threads) {
    draw_pair(seed, i, 0, m.draws + 2 * i);
    m.x[0][i] = batch.perturb ? m.draws[2 * i].clamp : 0.0;  // perturbation mode clamps x[0] too
    m.saturated[2 * i] = 0;
    m.saturated[2 * i + 1] = 0;
  }
}

// Transition t -> t+1 into tile column s. Neuron i's thread reads all of x[t] (written in the
// previous phase) and writes only its own x[t+1]_i, draws, counters and tile rows.
// Draws of step t: noise eps[t], instrument z[t+1] and clamp[t+1]; z[t] goes into w. The current
// random block is t / 2 on entry; at odd t the block of t+1 is drawn (after using eps[t] and z[t]).
__host__ __device__ inline void step(const SimulationLayout& layout, const SimulationBatch& batch,
                                     const NetworkMemory& m, uint64_t seed, double eta, int t, int s, int tid,
                                     int threads) {
  const int n = layout.n;
  const double* x_now = m.x[t & 1];
  double* x_next = m.x[(t + 1) & 1];
  double* w = m.w_tile + static_cast<size_t>(s) * layout.w_stride;
  double* u = m.u_tile + static_cast<size_t>(s) * layout.u_stride;
  if (tid == 0) w[0] = 1.0;
  for (int i = tid; i < n; i += threads) {
    StepDraws* pair = m.draws + 2 * i;
    const int parity = t & 1;
    const double z_now = pair[parity].instrument;
    const double noise = pair[parity].noise;
    if (parity == 1) draw_pair(seed, i, static_cast<uint64_t>(t + 1) / 2, pair);
    const StepDraws at_next = pair[(t + 1) & 1];

    double recurrent = 0.0;  // (A x[t])_i; A column-major, so neighbouring threads read neighbouring words
    for (int j = 0; j < n; ++j) recurrent += m.A[i + static_cast<size_t>(j) * n] * x_now[j];
    double next = activation(batch.nonlinearity, preactivation(recurrent, eta, at_next.instrument, noise));
    if (batch.perturb && ((t + 1) & 1) == 0) next = at_next.clamp;  // clamped at every even time index
    bool saturated = false;
    const double target = regression_target(batch.nonlinearity, next, saturated);
    m.saturated[2 * i] += saturated ? 1u : 0u;
    if (parity == 0) m.saturated[2 * i + 1] += saturated ? 1u : 0u;

    w[1 + i] = z_now;
    w[1 + n + i] = x_now[i];
    u[i] = next;
    u[n + i] = target;
    x_next[i] = next;
  }
}

// Micro-tile m of the lower triangle of a triangle of micro-tiles: row r >= column c.
__host__ __device__ inline void lower_triangle_position(int m, int& r, int& c) {
  int row = static_cast<int>((sqrt(8.0 * m + 1.0) - 1.0) / 2.0);
  while (row * (row + 1) / 2 > m) --row;
  while ((row + 1) * (row + 2) / 2 <= m) ++row;
  r = row;
  c = m - row * (row + 1) / 2;
}

// Adds tile columns s_begin, s_begin + s_step, ... < s_end to a Gram: a rank-(columns) update.
// Each thread owns whole 4 x 4 micro-tiles of ww's lower triangle and of wu (summed over the
// columns in registers, then added once), and the entries uu[i], i = tid mod threads.
__host__ __device__ inline void add_tile(const SimulationLayout& layout, const double* w_tile, const double* u_tile,
                                         int s_begin, int s_end, int s_step, double* gram, int tid, int threads) {
  const int p = 2 * layout.n + 1, q = 2 * layout.n;
  double* ww = gram;
  double* wu = gram + static_cast<size_t>(p) * p;
  double* uu = wu + static_cast<size_t>(p) * q;
  const int row_tiles = (p + micro - 1) / micro;
  const int u_tiles = (q + micro - 1) / micro;
  const int lower_tiles = row_tiles * (row_tiles + 1) / 2;
  const int total_tiles = lower_tiles + row_tiles * u_tiles;
  for (int m = tid; m < total_tiles; m += threads) {
    const bool in_ww = m < lower_tiles;
    int r = 0, c = 0;
    if (in_ww) {
      lower_triangle_position(m, r, c);
    } else {
      r = (m - lower_tiles) / u_tiles;
      c = (m - lower_tiles) % u_tiles;
    }
    const double* columns = in_ww ? w_tile : u_tile;  // the second factor: w (ww) or u (wu)
    const int stride = in_ww ? layout.w_stride : layout.u_stride;
    const int a0 = micro * r, b0 = micro * c;

    double acc[micro][micro] = {};
    for (int s = s_begin; s < s_end; s += s_step) {
      const double* wa = w_tile + static_cast<size_t>(s) * layout.w_stride + a0;
      const double* vb = columns + static_cast<size_t>(s) * stride + b0;
      double a[micro], b[micro];
CS_UNROLL
      for (int k = 0; k < micro; ++k) {
        a[k] = wa[k];
        b[k] = vb[k];
      }
CS_UNROLL
      for (int i = 0; i < micro; ++i)
CS_UNROLL
        for (int j = 0; j < micro; ++j) acc[i][j] += a[i] * b[j];
    }

    double* out = in_ww ? ww : wu;
    const int b_limit = in_ww ? p : q;
CS_UNROLL
    for (int i = 0; i < micro; ++i)
CS_UNROLL
      for (int j = 0; j < micro; ++j) {
        const int a = a0 + i, b = b0 + j;
        if (a < p && b < b_limit && (!in_ww || a >= b)) out[a + static_cast<size_t>(b) * p] += acc[i][j];
      }
  }
  for (int i = tid; i < q; i += threads) {
    double sum = 0.0;
    for (int s = s_begin; s < s_end; s += s_step) {
      const double v = u_tile[static_cast<size_t>(s) * layout.u_stride + i];
      sum += v * v;
    }
    uu[i] += sum;
  }
}

// ww's upper triangle from its lower one. Owns: the upper entries (reads only lower ones).
__host__ __device__ inline void mirror_upper(int p, double* ww, int tid, int threads) {
  const size_t entries = static_cast<size_t>(p) * p;
  for (size_t e = tid; e < entries; e += threads) {
    const size_t a = e % p, b = e / p;
    if (a < b) ww[e] = ww[b + a * p];
  }
}

// The whole network: initialise, then T-1 steps, the tile added to the Gram(s) whenever it is full
// and at the end, then the upper triangles and the saturated-logit totals.
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void simulate_network_block(Block& block, const SimulationLayout& layout,
                                                const SimulationBatch& batch, int network, double* shared) {
  const NetworkMemory m = carve(layout, batch, network, shared);
  const uint64_t seed = batch.seeds[network];
  const double eta = batch.etas[network];
  const int timesteps = batch.timesteps[network];

  block.parallel([&](int tid, int threads) { initialize(layout, batch, m, seed, tid, threads); });
  int filled = 0;  // tile columns in use; a tile starts at a multiple of layout.tile (even)
  for (int t = 0; t + 1 < timesteps; ++t) {
    block.parallel([&](int tid, int threads) { step(layout, batch, m, seed, eta, t, filled, tid, threads); });
    ++filled;
    if (filled == layout.tile || t + 2 == timesteps) {
      block.parallel([&](int tid, int threads) {
        add_tile(layout, m.w_tile, m.u_tile, 0, filled, 1, m.gram, tid, threads);
        // The perturbation estimator's Gram: the even-t transitions, i.e. the even tile columns.
        if (m.even_gram) add_tile(layout, m.w_tile, m.u_tile, 0, filled, 2, m.even_gram, tid, threads);
      });
      filled = 0;
    }
  }
  block.parallel([&](int tid, int threads) {
    const int p = 2 * layout.n + 1;
    mirror_upper(p, m.gram, tid, threads);
    if (m.even_gram) mirror_upper(p, m.even_gram, tid, threads);
    if (tid == 0) {
      unsigned long long all = 0, even = 0;
      for (int i = 0; i < layout.n; ++i) {
        all += m.saturated[2 * i];
        even += m.saturated[2 * i + 1];
      }
      batch.saturated[2 * network] = all;
      batch.saturated[2 * network + 1] = even;
    }
  });
}

// One block per network.
__global__ void __launch_bounds__(max_threads) simulate_gram_kernel(const SimulationLayout layout,
                                                                    const SimulationBatch batch) {
  extern __shared__ double shared[];
  DeviceBlock block;
  simulate_network_block(block, layout, batch, static_cast<int>(blockIdx.x), shared);
}

int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

}  // namespace

SimulationLayout plan_simulation_layout(int n, size_t shared_limit_bytes, int threads) {
  SimulationLayout layout;
  layout.n = n;
  layout.threads = std::min(threads, max_threads);
  layout.w_stride = round_up(2 * n + 1, micro);
  layout.u_stride = round_up(2 * n, micro);
  const size_t state_bytes = state_doubles(n) * sizeof(double);
  const size_t a_bytes = static_cast<size_t>(n) * n * sizeof(double);
  const size_t step_bytes = static_cast<size_t>(layout.w_stride + layout.u_stride) * sizeof(double);
  constexpr int full_tile = 32, min_shared_tile = 16;

  layout.state_in_shared = state_bytes <= shared_limit_bytes;
  const size_t left = shared_limit_bytes - (layout.state_in_shared ? state_bytes : 0);
  auto tile_fitting = [&](size_t budget) {  // the largest even tile <= 32 that fits the budget
    return static_cast<int>(std::min<size_t>(full_tile, budget / step_bytes)) & ~1;
  };
  // Priority: A and a full tile; A and a tile of at least 16; a tile without A; the tile in global memory.
  if (a_bytes + full_tile * step_bytes <= left) {
    layout.a_in_shared = layout.tile_in_shared = true;
    layout.tile = full_tile;
  } else if (a_bytes + min_shared_tile * step_bytes <= left) {
    layout.a_in_shared = layout.tile_in_shared = true;
    layout.tile = tile_fitting(left - a_bytes);
  } else if (min_shared_tile * step_bytes <= left) {
    layout.tile_in_shared = true;
    layout.tile = tile_fitting(left);
  } else {
    layout.tile = full_tile;
  }
  const size_t tile = tile_doubles(layout);
  layout.shared_bytes = (layout.state_in_shared ? state_bytes : 0) + (layout.tile_in_shared ? tile * sizeof(double) : 0) +
                        (layout.a_in_shared ? a_bytes : 0);
  layout.scratch_doubles = (layout.state_in_shared ? 0 : state_doubles(n)) + (layout.tile_in_shared ? 0 : tile);
  return layout;
}

void launch_simulation(const SimulationLayout& layout, const SimulationBatch& batch, cudaStream_t stream) {
  if (batch.networks <= 0) return;
  if (layout.threads < 1 || layout.threads > max_threads || layout.tile < 2 || layout.tile % 2 != 0)
    throw std::logic_error("launch_simulation: layout not made by plan_simulation_layout");
  CS_CUDA_CHECK(cudaFuncSetAttribute(simulate_gram_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(layout.shared_bytes)));
  simulate_gram_kernel<<<batch.networks, layout.threads, layout.shared_bytes, stream>>>(layout, batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_simulation_on_host(const SimulationLayout& layout, const SimulationBatch& batch) {
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> shared(layout.shared_bytes / sizeof(double) + 1);
  std::vector<double> scratch(static_cast<size_t>(batch.networks) * layout.scratch_doubles + 1);
  SimulationBatch host_batch = batch;
  host_batch.scratch = scratch.data();
  HostBlock block{layout.threads};
  for (int network = 0; network < batch.networks; ++network) {
    // Uninitialised memory is NaN here, so a read before a write shows up in the results.
    std::fill(shared.begin(), shared.end(), poison);
    std::fill(scratch.begin(), scratch.end(), poison);
    simulate_network_block(block, layout, host_batch, network, shared.data());
  }
}

size_t shared_memory_limit(int device) {
  int bytes = 0;
  CS_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return static_cast<size_t>(bytes);
}

bool simulation_kernel_runnable(int device, std::string& why) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    cudaGetLastError();
    why = "device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " visible)";
    return false;
  }
  // No restore of a "previous" device: in a thread that never chose one that would be device 0,
  // and setting it creates a context there. Every caller sets its own device before using one.
  CS_CUDA_CHECK(cudaSetDevice(device));
  cudaFuncAttributes attributes{};
  const cudaError_t status = cudaFuncGetAttributes(&attributes, simulate_gram_kernel);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky, but leave the error state clean
    why = std::string("the kernels are not built for device ") + std::to_string(device) + ": " +
          cudaGetErrorString(status) + " (this build targets CUDA architecture(s) " CS_CUDA_ARCHITECTURES ")";
    return false;
  }
  return true;
}

}  // namespace causalsweep::cuda
