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
// Thread mapping: neuron i belongs to threads i, i + threads, ...; in the Gram update each warp
// owns whole 32 x 32 blocks of the Gram (a read-modify-write that no other thread touches).
//
// Memory: a tile of transitions is kept in shared memory and added to the Gram when it is full.
// A column of the tile is [1, z[t], x[t], target(x[t+1])]; x[t+1] is the next column's x, so a
// transition costs 3n+1 doubles, not 4n+1. Where the Gram lives in global memory, every tile is a
// read-modify-write of it (about 1 MB at n = 100), so the longer the tile the less traffic; where
// the Gram fits in shared memory beside the rest (on an H100, n up to 50; 37 with two Grams), it
// stays there until the end.
// fp32 is not used: float64 keeps the Grams equal to the CPU's to rounding (see README).
#include "philox_device.cuh"  // first: it sets curand_kernel.h's QUALIFIERS

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/model.hpp"
#include "causalsweep/random_stream.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "shared_memory.cuh"

#ifndef CS_CUDA_ARCHITECTURES
#define CS_CUDA_ARCHITECTURES "(unknown)"
#endif

namespace causalsweep::cuda {
namespace {

constexpr int max_threads = 256;  // the kernel's __launch_bounds__
constexpr int warp_size = 32;
constexpr int gram_block = 32;    // edge of the Gram block a warp updates (add_tile)
constexpr int lane_rows = 8, lane_cols = 4;  // a lane's share of a block: 8 x 4 = 32 entries
constexpr int column_align = 4;   // tile column stride: a multiple of 4 doubles
constexpr int small_network = 32; // n up to this: several networks per SM (choose_simulation_layout)

// ---- memory of one network ------------------------------------------------------------------

// Per-neuron state, in doubles: x[t] and x[t+1] (2n), the draws of the current random block (2n
// StepDraws of 3 doubles), and the saturated-logit counters (2n: all transitions, even ones).
__host__ __device__ inline size_t state_doubles(int n) { return 10 * static_cast<size_t>(n); }

// A tile of `tile` transitions has tile + 1 columns: the last one holds only x at the tile's end.
__host__ __device__ inline size_t tile_doubles(const SimulationLayout& layout) {
  return static_cast<size_t>(layout.tile + 1) * static_cast<size_t>(layout.column_stride);
}

// Where w and u of a transition sit in its tile column (column_stride doubles further is the next
// column): w = column[0 .. 2n] = [1, z, x]; u_b = x_next[b] for b < n, target[b - n] otherwise.
__host__ __device__ inline int u_offset(int b, int n, int column_stride) {
  return 1 + n + b + (b < n ? column_stride : 0);
}

struct NetworkMemory {
  const double* A;        // n x n, column-major: A(i, j) = A[i + j n]
  double* a_shared;       // A's copy in shared memory, or nullptr
  const double* a_global; // A where it was uploaded
  double* x[2];           // x[t] is x[t & 1]
  StepDraws* draws;       // [2 n]: draws[2 i + parity] = neuron i's draws at time 2b + parity, b = current block
  unsigned long long* saturated;  // [2 n]: neuron i's saturated targets, all (2 i) and even-t (2 i + 1) transitions
  double* tile;           // [tile + 1][column_stride]: column s = transition tile_start + s (see u_offset)
  double* gram;           // where the Gram is accumulated: shared memory or the output itself
  double* even_gram;      // perturbation mode only, else nullptr
  double* gram_out;       // gram_doubles(n): this network's outputs
  double* even_gram_out;
};

// Splits shared memory and the network's global scratch as the layout says.
__host__ __device__ inline NetworkMemory carve(const SimulationLayout& layout, const SimulationBatch& batch,
                                               int network, double* shared) {
  const int n = layout.n;
  MemoryCarver memory{shared, batch.scratch + static_cast<size_t>(network) * layout.scratch_doubles};
  NetworkMemory m{};
  double* state = memory.take(layout.state_in_shared, state_doubles(n));
  m.tile = memory.take(layout.tile_in_shared, tile_doubles(layout));
  m.a_global = batch.connectivity + static_cast<size_t>(network) * n * n;
  m.a_shared = layout.a_in_shared ? memory.take(true, static_cast<size_t>(n) * n) : nullptr;
  m.A = m.a_shared ? m.a_shared : m.a_global;
  m.x[0] = state;
  m.x[1] = state + n;
  m.draws = reinterpret_cast<StepDraws*>(state + 2 * n);
  m.saturated = reinterpret_cast<unsigned long long*>(state + 8 * n);
  m.gram_out = batch.grams + static_cast<size_t>(network) * gram_doubles(n);
  m.even_gram_out = batch.perturb ? batch.even_grams + static_cast<size_t>(network) * gram_doubles(n) : nullptr;
  m.gram = layout.gram_in_shared ? memory.take(true, gram_doubles(n)) : m.gram_out;
  if (m.even_gram_out) m.even_gram = layout.gram_in_shared ? memory.take(true, gram_doubles(n)) : m.even_gram_out;
  return m;
}

// ---- phases ----------------------------------------------------------------------------------

// Neuron i's draws for time indices 2 block and 2 block + 1 (host/simulate.cpp reads the same).
__host__ __device__ inline void draw_pair(uint64_t seed, int i, uint64_t block, StepDraws* pair) {
  const RandomBlock words = curand_philox_block(seed, subsequence(Purpose::dynamics, static_cast<uint32_t>(i)), block);
  step_draws_pair(words, pair[0], pair[1]);
}

// Zeroes the Gram(s), copies A to shared memory, draws block 0 and sets x[0]. (The tile needs no
// zeroing: add_tile reads only entries the steps wrote.)
// Owns: strided elements of each array; neuron i's state.
__host__ __device__ inline void initialize(const SimulationLayout& layout, const SimulationBatch& batch,
                                           const NetworkMemory& m, uint64_t seed, int tid, int threads) {
  const int n = layout.n;
  const size_t gram_size = gram_doubles(n);
  for (size_t e = tid; e < gram_size; e += threads) {
    m.gram[e] = 0.0;
    if (m.even_gram) m.even_gram[e] = 0.0;
  }
  if (m.a_shared)
    for (size_t e = tid; e < static_cast<size_t>(n) * n; e += threads) m.a_shared[e] = m.a_global[e];
  for (int i = tid; i < n; i += threads) {
    draw_pair(seed, i, 0, m.draws + 2 * i);
    m.x[0][i] = batch.perturb ? m.draws[2 * i].clamp : 0.0;  // perturbation mode clamps x[0] too
    m.saturated[2 * i] = 0;
    m.saturated[2 * i + 1] = 0;
  }
}

// (A x)_i. The steps run one after another, so this dependent chain of multiply-adds is the step's
// latency: four partial sums (columns j mod 4) make it a quarter as long. A is column-major, so neighbouring
// threads (rows) read neighbouring words. The order is fixed, so the result depends on n only.
__host__ __device__ inline double row_times_vector(const double* A, int n, int i, const double* x) {
  double partial[4] = {0.0, 0.0, 0.0, 0.0};
  int j = 0;
  for (; j + 4 <= n; j += 4)
CS_UNROLL
    for (int k = 0; k < 4; ++k) partial[k] += A[i + static_cast<size_t>(j + k) * n] * x[j + k];
  for (; j < n; ++j) partial[0] += A[i + static_cast<size_t>(j) * n] * x[j];  // the last n mod 4 columns
  return (partial[0] + partial[1]) + (partial[2] + partial[3]);
}

// Transition t -> t+1 into tile column s (and x[t+1] into column s + 1). Neuron i's thread reads
// all of x[t] (written in the previous phase) and writes only its own x[t+1]_i, draws, counters and
// tile rows. Draws of step t: noise eps[t], instrument z[t+1] and clamp[t+1]; z[t] goes into w. The
// current random block is t / 2 on entry; at odd t the block of t+1 is drawn (after using eps[t], z[t]).
__host__ __device__ inline void step(const SimulationLayout& layout, const SimulationBatch& batch,
                                     const NetworkMemory& m, uint64_t seed, double eta, int t, int s, int tid,
                                     int threads) {
  const int n = layout.n;
  const double* x_now = m.x[t & 1];
  double* x_next = m.x[(t + 1) & 1];
  double* column = m.tile + static_cast<size_t>(s) * layout.column_stride;
  double* next_column = column + layout.column_stride;
  if (tid == 0) column[0] = 1.0;
  for (int i = tid; i < n; i += threads) {
    StepDraws* pair = m.draws + 2 * i;
    const int parity = t & 1;
    const double z_now = pair[parity].instrument;
    const double noise = pair[parity].noise;
    if (parity == 1) draw_pair(seed, i, static_cast<uint64_t>(t + 1) / 2, pair);
    const StepDraws at_next = pair[(t + 1) & 1];

    const double recurrent = row_times_vector(m.A, n, i, x_now);
    double next = activation(batch.nonlinearity, preactivation(recurrent, eta, at_next.instrument, noise));
    if (batch.perturb && ((t + 1) & 1) == 0) next = at_next.clamp;  // clamped at every even time index
    bool saturated = false;
    const double target = regression_target(batch.nonlinearity, next, saturated);
    m.saturated[2 * i] += saturated ? 1u : 0u;
    if (parity == 0) m.saturated[2 * i + 1] += saturated ? 1u : 0u;

    column[1 + i] = z_now;
    column[1 + n + i] = x_now[i];
    column[1 + 2 * n + i] = target;
    next_column[1 + n + i] = next;  // u's x[t+1]; the next step writes the same value there as its x[t]
    x_next[i] = next;
  }
}

__host__ __device__ inline int clamp_below(int value, int limit) { return value < limit ? value : limit; }

// Block m of the lower triangle of a triangle of blocks: row r >= column c.
__host__ __device__ inline void lower_triangle_position(int m, int& r, int& c) {
  int row = static_cast<int>((sqrt(8.0 * m + 1.0) - 1.0) / 2.0);
  while (row * (row + 1) / 2 > m) --row;
  while ((row + 1) * (row + 2) / 2 <= m) ++row;
  r = row;
  c = m - row * (row + 1) / 2;
}

// Adds transitions s_begin, s_begin + s_step, ... < s_end of the tile to a Gram: a rank-(columns)
// update, the kernel's main work (about 86 % of its multiply-adds at n = 100).
// Each warp owns whole 32 x 32 blocks of ww's lower triangle and of wu, one block at a time. Lane
// (tx, ty) = (lane % 8, lane / 8) owns rows ty + 4 i (i < 8) and columns tx + 8 j (j < 4) of the
// block: per transition it loads 12 doubles for 32 multiply-adds, and a warp's loads hit 4 and 8
// consecutive doubles (no shared-memory bank conflicts, except 2-way in a wu block across b = n). Rows and columns past the Gram's edge are
// clamped to valid ones and their sums dropped. Every entry is summed over the transitions in order
// in one register and added once, so its rounding does not depend on the thread count.
// Owns: the lanes' entries of their warp's blocks; uu[i] for i = tid mod threads.
__host__ __device__ inline void add_tile(const SimulationLayout& layout, const double* tile, int s_begin, int s_end,
                                         int s_step, double* gram, int tid, int threads) {
  const int n = layout.n, p = 2 * n + 1, q = 2 * n, stride = layout.column_stride;
  double* ww = gram;
  double* wu = gram + static_cast<size_t>(p) * p;
  double* uu = wu + static_cast<size_t>(p) * q;
  const int row_blocks = (p + gram_block - 1) / gram_block;
  const int u_blocks = (q + gram_block - 1) / gram_block;
  const int lower_blocks = row_blocks * (row_blocks + 1) / 2;
  const int total_blocks = lower_blocks + row_blocks * u_blocks;
  const int warp = tid / warp_size, warps = threads / warp_size, lane = tid % warp_size;
  const int tx = lane % 8, ty = lane / 8;
  for (int m = warp; m < total_blocks; m += warps) {
    const bool in_ww = m < lower_blocks;
    int r = 0, c = 0;
    if (in_ww) {
      lower_triangle_position(m, r, c);
    } else {
      r = (m - lower_blocks) / u_blocks;
      c = (m - lower_blocks) % u_blocks;
    }
    const int b_limit = in_ww ? p : q;
    // This lane's entries, clamped into the Gram, as offsets into a transition's column.
    int rows[lane_rows], cols[lane_cols];
CS_UNROLL
    for (int i = 0; i < lane_rows; ++i) rows[i] = clamp_below(gram_block * r + ty + 4 * i, p - 1);
CS_UNROLL
    for (int j = 0; j < lane_cols; ++j) {
      const int b = clamp_below(gram_block * c + tx + 8 * j, b_limit - 1);
      cols[j] = in_ww ? b : u_offset(b, n, stride);
    }

    double acc[lane_rows][lane_cols] = {};
    for (int s = s_begin; s < s_end; s += s_step) {
      const double* column = tile + static_cast<size_t>(s) * stride;
      double b[lane_cols];
CS_UNROLL
      for (int j = 0; j < lane_cols; ++j) b[j] = column[cols[j]];
CS_UNROLL
      for (int i = 0; i < lane_rows; ++i) {
        const double a = column[rows[i]];
CS_UNROLL
        for (int j = 0; j < lane_cols; ++j) acc[i][j] += a * b[j];
      }
    }

    double* out = in_ww ? ww : wu;
CS_UNROLL
    for (int i = 0; i < lane_rows; ++i)
CS_UNROLL
      for (int j = 0; j < lane_cols; ++j) {
        const int a = gram_block * r + ty + 4 * i, b = gram_block * c + tx + 8 * j;
        if (a < p && b < b_limit && (!in_ww || a >= b)) out[a + static_cast<size_t>(b) * p] += acc[i][j];
      }
  }
  for (int i = tid; i < q; i += threads) {
    const int offset = u_offset(i, n, stride);
    double sum = 0.0;
    for (int s = s_begin; s < s_end; s += s_step) {
      const double v = tile[static_cast<size_t>(s) * stride + offset];
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
// and at the end, then the upper triangles, the saturated-logit totals and, from shared memory,
// the Gram(s).
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
        add_tile(layout, m.tile, 0, filled, 1, m.gram, tid, threads);
        // The perturbation estimator's Gram: the even-t transitions, i.e. the even tile columns.
        if (m.even_gram) add_tile(layout, m.tile, 0, filled, 2, m.even_gram, tid, threads);
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
  if (layout.gram_in_shared)  // the finished Gram(s) from shared memory to the outputs
    block.parallel([&](int tid, int threads) {
      for (size_t e = tid; e < gram_doubles(layout.n); e += threads) {
        m.gram_out[e] = m.gram[e];
        if (m.even_gram) m.even_gram_out[e] = m.even_gram[e];
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

SimulationLayout plan_simulation_layout(int n, size_t shared_limit_bytes, bool perturb, int threads) {
  SimulationLayout layout;
  layout.n = n;
  layout.perturb = perturb;
  // Whole warps: add_tile hands out Gram blocks by warp.
  layout.threads = std::clamp(threads / warp_size * warp_size, warp_size, max_threads);
  layout.column_stride = round_up(3 * n + 1, column_align);
  const size_t state_bytes = state_doubles(n) * sizeof(double);
  const size_t a_bytes = static_cast<size_t>(n) * n * sizeof(double);
  const size_t gram_bytes = gram_doubles(n) * sizeof(double) * (perturb ? 2 : 1);
  const size_t column_bytes = static_cast<size_t>(layout.column_stride) * sizeof(double);
  auto tile_bytes = [&](int tile) { return static_cast<size_t>(tile + 1) * column_bytes; };
  // The tile: at most 64 transitions (past that a Gram update costs little more than its compute);
  // in shared memory only if at least 16 fit (a Gram round trip per 16 steps); even, for the
  // perturbation Gram's even columns.
  constexpr int longest_tile = 64, shortest_shared_tile = 16, global_tile = 32;
  auto tile_fitting = [&](size_t budget) {
    const size_t columns = budget / column_bytes;
    return static_cast<int>(std::min<size_t>(longest_tile, columns > 0 ? columns - 1 : 0)) & ~1;
  };

  layout.state_in_shared = state_bytes <= shared_limit_bytes;
  size_t left = shared_limit_bytes - (layout.state_in_shared ? state_bytes : 0);
  // Priority: A with a tile of at least 16; then the Gram(s) too if a tile of 32 still fits;
  // else a tile without A; else the tile in global memory.
  if (a_bytes + tile_bytes(shortest_shared_tile) <= left) {
    layout.a_in_shared = layout.tile_in_shared = true;
    left -= a_bytes;
    if (gram_bytes + tile_bytes(global_tile) <= left) {
      layout.gram_in_shared = true;
      left -= gram_bytes;
    }
    layout.tile = tile_fitting(left);
  } else if (tile_bytes(shortest_shared_tile) <= left) {
    layout.tile_in_shared = true;
    layout.tile = tile_fitting(left);
  } else {
    layout.tile = global_tile;
  }
  const size_t tile = tile_doubles(layout);
  layout.shared_bytes = (layout.state_in_shared ? state_bytes : 0) + (layout.tile_in_shared ? tile * sizeof(double) : 0) +
                        (layout.a_in_shared ? a_bytes : 0) + (layout.gram_in_shared ? gram_bytes : 0);
  layout.scratch_doubles = (layout.state_in_shared ? 0 : state_doubles(n)) + (layout.tile_in_shared ? 0 : tile);
  return layout;
}

SimulationLayout choose_simulation_layout(int n, size_t shared_limit_bytes, bool perturb) {
  // Small networks: a step's dependent chain (A x, exp, log, a barrier) is short of work for 256
  // threads and leaves the SM's units idle, so several networks share an SM instead: 2 warps and a
  // quarter of the SM's shared memory each (an SM has the per-block limit plus the 1 KiB every
  // block reserves; ~170 registers x 64 threads let 5 blocks in).
  // Only if the state, A and the tile all stay in shared memory (devices with less of it keep one
  // network per block with all of it).
  constexpr size_t reserved_per_block = 1024, blocks_per_sm = 4;
  if (n <= small_network && shared_limit_bytes > blocks_per_sm * reserved_per_block) {
    const SimulationLayout shared_sm = plan_simulation_layout(
        n, (shared_limit_bytes + reserved_per_block) / blocks_per_sm - reserved_per_block, perturb, 2 * warp_size);
    if (shared_sm.state_in_shared && shared_sm.a_in_shared && shared_sm.tile_in_shared) return shared_sm;
  }
  return plan_simulation_layout(n, shared_limit_bytes, perturb, max_threads);
}

// The contract between a layout and a batch that both launch_simulation and the emulation check.
static void check_layout(const SimulationLayout& layout, const SimulationBatch& batch, const char* who) {
  if (layout.threads < warp_size || layout.threads > max_threads || layout.threads % warp_size != 0 ||
      layout.tile < 2 || layout.tile % 2 != 0 || layout.column_stride < 3 * layout.n + 1)
    throw std::logic_error(std::string(who) + ": layout not made by plan_simulation_layout");
  if (layout.perturb != batch.perturb)
    throw std::logic_error(std::string(who) + ": the layout was planned for perturb = " +
                           (layout.perturb ? "true" : "false") + ", the batch has the other");
}

void launch_simulation(const SimulationLayout& layout, const SimulationBatch& batch, cudaStream_t stream) {
  if (batch.networks <= 0) return;
  check_layout(layout, batch, "launch_simulation");
  allow_dynamic_shared_memory(simulate_gram_kernel, layout.shared_bytes, "launch_simulation");
  // All of the SM's unified memory as shared memory, so the small-n layout's blocks fit side by side.
  CS_CUDA_CHECK(cudaFuncSetAttribute(simulate_gram_kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                     cudaSharedmemCarveoutMaxShared));
  simulate_gram_kernel<<<batch.networks, layout.threads, layout.shared_bytes, stream>>>(layout, batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_simulation_on_host(const SimulationLayout& layout, const SimulationBatch& batch) {
  check_layout(layout, batch, "emulate_simulation_on_host");
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();
  constexpr size_t guard = 64;  // doubles past the end of each buffer that must stay untouched
  constexpr uint64_t guard_bits = 0x7ff8dead5ca1ab1eull;  // a NaN nothing computes
  const size_t shared_doubles = layout.shared_bytes / sizeof(double);
  const size_t scratch_doubles = static_cast<size_t>(batch.networks) * layout.scratch_doubles;
  std::vector<double> shared(shared_doubles + guard), scratch(scratch_doubles + guard);
  SimulationBatch host_batch = batch;
  host_batch.scratch = scratch.data();
  auto guard_intact = [&](const std::vector<double>& buffer, size_t end) {
    for (size_t e = end; e < buffer.size(); ++e)
      if (std::memcmp(&buffer[e], &guard_bits, sizeof(double)) != 0) return false;
    return true;
  };
  for (int network = 0; network < batch.networks; ++network) {
    // Uninitialised memory is NaN here, so a read before a write shows up in the results; a write
    // past what the layout counted shows up in the guards.
    std::fill(shared.begin(), shared.end(), poison);
    std::fill(scratch.begin(), scratch.end(), poison);
    for (std::vector<double>* buffer : {&shared, &scratch})
      for (size_t e = buffer->size() - guard; e < buffer->size(); ++e) std::memcpy(&(*buffer)[e], &guard_bits, sizeof(double));
    emulate_block(layout.threads,
                  [&](auto& block) { simulate_network_block(block, layout, host_batch, network, shared.data()); });
    if (!guard_intact(shared, shared_doubles) || !guard_intact(scratch, scratch_doubles))
      throw std::logic_error("emulate_simulation_on_host: network " + std::to_string(network) +
                             " wrote past the shared memory or scratch its layout counts");
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
