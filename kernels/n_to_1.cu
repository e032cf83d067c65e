// The N-to-1 spiking experiment on the GPU (interface: kernels/n_to_1_cuda.hpp; the CPU version and
// the model's definition: host/n_to_1.cpp, include/causalsweep/n_to_1.hpp, N_TO_1_SPEC.md).
//
// A batch of runs goes through six kernels; every number is computed as host/n_to_1.cpp computes it:
//   count    thread per (run, input): the spike count of the input's Philox stream (spike_intervals)
//   trains   thread per (run, input): spike times t += exponential_interval(word) (the CPU's doubles),
//            sample indices rint(t / dt), the real train's windows, and each connected input's events
//            counted into the run's signal buffer (two uint32 per sample: excitatory, inhibitory);
//            the neuron reads sample t's counts before it overwrites the slot with v[t]
//   neuron   block per run: thread 0 integrates the Izhikevich neuron through all T samples in the
//            CPU's update order (an event adds dg once each, as the CPU's sorted event lists do), the
//            block stages the signal through shared memory tile by tile
//   noise    thread per (run, noise block b): samples 4b .. 4b+3 from two Box-Muller pairs
//   shuffles thread per (run, input, surrogate): the permutation by Fisher-Yates from the top with
//            bounded_integer on the surrogate's words (Purpose::shuffles, input * 65536 + surrogate),
//            in place in the surrogate's slot, then the running sum of the permuted intervals
//            (interval k = t_k - t_{k-1}) turned into sample indices
//   heights  block per (run, group of 8 trains, 1024 lags): thread owns lags tid + 256 k (k < 4) of
//            the 8 trains in registers and adds every window in window order, the CPU's order, so the
//            sums are bit-identical given the same signal; the signal comes through shared memory in
//            tiles of sta_tile window starts; the block's max and min of sum / windows per train at the end
// The host turns each train's extremes into its height (max - min over all lags); K, p and the
// scores come from n_to_1::shuffle_test and n_to_1::evaluate (n_to_1_cuda.hpp's inline layer).
//
// Arithmetic. The neuron and the noise multiply with mul_rn, which is never contracted into an FMA
// (__dmul_rn on the device, a volatile product on the host): the spec's arithmetic (numba does not
// contract) and that of host/n_to_1.cpp, which CMakeLists.txt compiles with -ffp-contract=off, so
// the voltages of the same inputs agree bit for bit. log, sin and cos are CUDA's on the device and glibc's on the host:
// they may differ in the last bit, which moves spike times by an ulp (a sample index only if t / dt
// lies within ~1e-9 of a half-integer). Sums, divisions, rint and the random words are exact.
//
// Block programs (neuron, heights) are written once as phases between barriers (Block::parallel), as
// in simulate_gram.cu; each thread's registers are Block::State, so that the host emulator, which
// runs a phase for every thread in turn, keeps them per thread. No thread reads within a phase what
// another thread writes in it.
#include "philox_device.cuh"  // first: it sets curand_kernel.h's QUALIFIERS

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "causalsweep/n_to_1.hpp"
#include "host_threads.hpp"
#include "causalsweep/random_stream.hpp"
#include "cuda_check.cuh"
#include "n_to_1_cuda.hpp"
#include "shared_memory.cuh"

#ifdef __CUDA_ARCH__
#define N1_UNROLL _Pragma("unroll")
#else
#define N1_UNROLL
#endif

#ifndef CS_CUDA_ARCHITECTURES
#define CS_CUDA_ARCHITECTURES "(unknown)"
#endif

namespace causalsweep::cuda {
namespace {

constexpr int heights_threads = 256;
constexpr int lags_per_thread = 4;
constexpr int lag_span = heights_threads * lags_per_thread;  // lags per heights block
constexpr int group_trains = 8;                              // trains per heights block
constexpr int neuron_threads = 32;
constexpr int plain_threads = 128;                           // count, trains, noise, shuffles
constexpr double infinity = HUGE_VAL;

// ---- descriptors (plain data, read by the kernels) ---------------------------------------------

struct RunDesc {
  uint64_t seed;
  int32_t inputs, shuffles;
  int64_t samples, window;
  double duration, timestep, spike_rate, tau_syn, dg_exc, dg_inh, v_syn_exc, v_syn_inh, sigma;
  double C, k, v_r, v_t, v_peak, a, b, c, d;
  uint64_t signal_offset;    // doubles: the run's signal (event counts, then v, then v + noise)
  uint32_t input_first;      // the run's input 0 in the batch's inputs
  uint64_t train_first;      // the run's train 0 in the per-train arrays
  uint32_t groups;           // heights blocks per lag chunk: ceil(trains / group_trains)
  uint32_t lag_chunks;       // ceil(window / lag_span)
  uint64_t extremes_offset;  // doubles: [train][chunk][max, min]
  uint64_t spike_offset;     // the neuron's spike samples (inspection)
  int64_t spike_capacity;    // 0 unless inspecting
};

struct InputDesc {
  uint32_t run, input, inhibitory, connected;
  int64_t spikes;           // from the count kernel
  uint64_t times_offset;    // doubles
  uint64_t starts_offset;   // int32s: train k (0 real, 1 .. shuffles surrogates) at starts_offset + k * spikes
  uint64_t train_first;     // the real train in the per-train arrays
};

struct BatchView {
  int runs = 0;
  int inputs = 0;
  const RunDesc* run = nullptr;
  const InputDesc* input = nullptr;
  const uint64_t* surrogate_prefix = nullptr;  // [inputs + 1]: shuffle tasks before input i
  const uint64_t* heights_prefix = nullptr;    // [runs + 1]: heights blocks before run r
  const uint64_t* train_starts = nullptr;      // per train: offset of its sample indices in `starts`
  double* signal = nullptr;
  double* times = nullptr;
  int32_t* starts = nullptr;
  int32_t* windows = nullptr;                  // per train
  double* extremes = nullptr;
  int64_t* output_spikes = nullptr;            // per run
  int32_t* spike_samples = nullptr;            // inspection
  int sta_tile = 8192;
  int neuron_tile = 2048;
};

// ---- arithmetic shared by both sides ------------------------------------------------------------

// a * b rounded once and never fused with a following addition.
__host__ __device__ inline double mul_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  volatile double product = a * b;
  return product;
#endif
}

__host__ __device__ inline int64_t sample_index(double time, double timestep) {
  return static_cast<int64_t>(rint(time / timestep));  // half to even, as the CPU's nearbyint
}

template <class T>
__host__ __device__ inline T smaller(T a, T b) {
  return b < a ? b : a;
}

// The 32-bit words of one Philox stream in order (host/n_to_1.cpp's WordStream), kept in registers.
struct Words {
  uint64_t seed, stream, next_block;
  RandomBlock block;
  int used;
  __host__ __device__ Words(uint64_t s, uint64_t sub) : seed(s), stream(sub), next_block(0), block{}, used(4) {}
  __host__ __device__ uint32_t next() {
    if (used == 4) {
      block = curand_philox_block(seed, stream, next_block++);
      used = 0;
    }
    const uint32_t word = used == 0 ? block.word[0] : used == 1 ? block.word[1] : used == 2 ? block.word[2] : block.word[3];
    ++used;
    return word;
  }
};

// The neuron's input events at a sample live in the signal's slot as two uint32: excitatory, inhibitory.
__host__ __device__ inline void add_event(double* slot, bool inhibitory) {
#ifdef __CUDA_ARCH__
  atomicAdd(reinterpret_cast<unsigned int*>(slot) + (inhibitory ? 1 : 0), 1u);
#else
  uint32_t counts[2];
  std::memcpy(counts, slot, sizeof counts);
  ++counts[inhibitory ? 1 : 0];
  std::memcpy(slot, counts, sizeof counts);
#endif
}

__host__ __device__ inline void event_counts(double slot, uint32_t& exc, uint32_t& inh) {
#ifdef __CUDA_ARCH__
  const auto bits = static_cast<unsigned long long>(__double_as_longlong(slot));
#else
  unsigned long long bits = 0;
  std::memcpy(&bits, &slot, sizeof bits);
#endif
  exc = static_cast<uint32_t>(bits & 0xffffffffull);
  inh = static_cast<uint32_t>(bits >> 32);
}

// The first index i with prefix[i + 1] > value (prefix ascending, prefix[0] = 0 <= value < prefix[count]).
__host__ __device__ inline int locate(const uint64_t* prefix, int count, uint64_t value) {
  int low = 0, high = count - 1;
  while (low < high) {
    const int middle = (low + high + 1) / 2;
    if (prefix[middle] <= value) low = middle;
    else high = middle - 1;
  }
  return low;
}

// ---- the two ways to run a block program ---------------------------------------------------------

template <class State>
struct DeviceBlock {
  State state;  // this thread's registers
  template <class Phase>
  __device__ void parallel(Phase&& phase) {
    phase(static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x), state);
    __syncthreads();
  }
};

template <class State>
struct HostBlock {
  int threads;
  std::vector<State> states;  // every thread's registers, poisoned (NaN, -1) until a phase sets them
  explicit HostBlock(int count) : threads(count), states(static_cast<size_t>(count)) {
    std::memset(static_cast<void*>(states.data()), 0xff, states.size() * sizeof(State));
  }
  template <class Phase>
  void parallel(Phase&& phase) {
    for_each_host_thread(threads, [&](int tid) { phase(tid, threads, states[static_cast<size_t>(tid)]); });
  }
};

// One thread on its fiber (host_threads.hpp): its registers, poisoned like HostBlock's.
template <class State>
struct FiberBlock {
  int threads, tid;
  State state;
  FiberBlock(int count, int thread) : threads(count), tid(thread) {
    std::memset(static_cast<void*>(&state), 0xff, sizeof(State));
  }
  template <class Phase>
  void parallel(Phase&& phase) {
    phase(tid, threads, state);
    fiber_barrier_after<Phase>();
  }
};

// One block of a program on the host: with a HostBlock, or on fibers when the environment asks.
template <class State, class Program>
void emulate_block(int threads, Program&& program) {
  if (!fiber_emulation()) {
    HostBlock<State> block(threads);
    program(block);
    return;
  }
  run_on_fibers(threads, [&](int tid) {
    FiberBlock<State> block(threads, tid);
    program(block);
  });
}

// ---- per-thread work ------------------------------------------------------------------------------

// Spike count of input `input` of a run: the loop of n_to_1::poisson_spike_times.
__host__ __device__ inline int64_t count_spikes(const RunDesc& r, uint32_t input) {
  Words words(r.seed, subsequence(Purpose::spike_intervals, input));
  int64_t count = 0;
  for (double t = n_to_1::exponential_interval(words.next(), r.spike_rate); t < r.duration;
       t = t + n_to_1::exponential_interval(words.next(), r.spike_rate))
    ++count;
  return count;
}

// Input i's spike times and indices (its real train), its windows, and its events into the signal.
__host__ __device__ inline void generate_train(const BatchView& b, int i) {
  const InputDesc& in = b.input[i];
  const RunDesc& r = b.run[in.run];
  double* times = b.times + in.times_offset;
  int32_t* indices = b.starts + in.starts_offset;
  double* signal = b.signal + r.signal_offset;
  Words words(r.seed, subsequence(Purpose::spike_intervals, in.input));
  int64_t windows = 0;
  double t = n_to_1::exponential_interval(words.next(), r.spike_rate);
  for (int64_t j = 0; j < in.spikes; ++j) {  // the count kernel saw exactly these spikes below duration
    times[j] = t;
    const int64_t index = sample_index(t, r.timestep);
    indices[j] = static_cast<int32_t>(index);
    if (windows == j && index + r.window < r.samples) ++windows;  // the sorted prefix that fits
    if (in.connected && index < r.samples) add_event(signal + index, in.inhibitory != 0);
    t = t + n_to_1::exponential_interval(words.next(), r.spike_rate);
  }
  b.windows[in.train_first] = static_cast<int32_t>(windows);
}

// Surrogate s of input i: the permutation in place in its slot, then its sample indices.
__host__ __device__ inline void shuffle_train(const BatchView& b, int i, uint32_t s) {
  const InputDesc& in = b.input[i];
  const RunDesc& r = b.run[in.run];
  const int64_t count = in.spikes;
  const double* times = b.times + in.times_offset;
  int32_t* slot = b.starts + in.starts_offset + (1 + static_cast<uint64_t>(s)) * static_cast<uint64_t>(count);
  uint32_t* permutation = reinterpret_cast<uint32_t*>(slot);  // int32 / uint32: the same object, allowed
  for (int64_t j = 0; j < count; ++j) permutation[j] = static_cast<uint32_t>(j);
  Words words(r.seed, subsequence(Purpose::shuffles, in.input * 65536u + s));
  for (uint32_t j = count > 0 ? static_cast<uint32_t>(count - 1) : 0; j > 0; --j) {
    uint32_t pick = 0;
    while (!n_to_1::bounded_integer(words.next(), j + 1, pick)) {
      // a word in the biased remainder: the next one
    }
    const uint32_t held = permutation[j];
    permutation[j] = permutation[pick];
    permutation[pick] = held;
  }
  double t = 0;
  int64_t windows = 0;
  for (int64_t j = 0; j < count; ++j) {
    const uint32_t k = permutation[j];  // read before the slot is overwritten with the index
    const double interval = times[k] - (k > 0 ? times[k - 1] : 0.0);
    t = t + interval;
    const int64_t index = sample_index(t, r.timestep);
    slot[j] = static_cast<int32_t>(index);
    if (windows == j && index + r.window < r.samples) ++windows;
  }
  b.windows[in.train_first + 1 + s] = static_cast<int32_t>(windows);
}

// Noise block `block` of run `run`: sigma * normal added to samples 4 block .. 4 block + 3.
__host__ __device__ inline void noise_block(const BatchView& b, int run, int64_t block) {
  const RunDesc& r = b.run[run];
  double* signal = b.signal + r.signal_offset;
  const RandomBlock w = curand_philox_block(r.seed, subsequence(Purpose::imaging_noise, 0), static_cast<uint64_t>(block));
  double normal[4];
  box_muller(w.word[0], w.word[1], normal[0], normal[1]);
  box_muller(w.word[2], w.word[3], normal[2], normal[3]);
N1_UNROLL
  for (int c = 0; c < 4; ++c) {
    const int64_t t = 4 * block + c;
    if (t < r.samples) signal[t] = signal[t] + mul_rn(r.sigma, normal[c]);
  }
}

// ---- the neuron (block program, one block per run) ------------------------------------------------

struct NeuronState {
  double g_exc, g_inh, v, u, i_syn;
  int64_t spikes;
};

// Samples t0 .. t0 + length - 1 from the staged slots (event counts in, v out): host/n_to_1.cpp's
// simulate_neuron step by step. The cosmetic peak of a spike at the tile's first sample goes to the
// previous tile, already stored in `signal`.
__host__ __device__ inline void neuron_steps(const RunDesc& r, NeuronState& s, double* slots, int length, int64_t t0,
                                             double* signal, int32_t* spike_samples) {
  const double dt = r.timestep;
  double g_exc = s.g_exc, g_inh = s.g_inh, v = s.v, u = s.u, i_syn = s.i_syn;
  int64_t spikes = s.spikes;
  for (int q = 0; q < length; ++q) {
    const int64_t t = t0 + q;
    uint32_t exc = 0, inh = 0;
    event_counts(slots[q], exc, inh);
    if (t > 0) {
      g_exc = g_exc + mul_rn(dt, -g_exc / r.tau_syn);
      g_inh = g_inh + mul_rn(dt, -g_inh / r.tau_syn);
    }
    for (uint32_t e = 0; e < exc; ++e) g_exc = g_exc + r.dg_exc;
    for (uint32_t e = 0; e < inh; ++e) g_inh = g_inh + r.dg_inh;
    if (t > 0) {
      // Both derivatives from the values at t - 1, I_syn[t - 1] included.
      const double dv_dt = (mul_rn(mul_rn(r.k, v - r.v_r), v - r.v_t) - u - i_syn) / r.C;
      const double du_dt = mul_rn(r.a, mul_rn(r.b, v - r.v_r) - u);
      v = v + mul_rn(dt, dv_dt);
      u = u + mul_rn(dt, du_dt);
      if (v >= r.v_peak) {
        if (spikes < r.spike_capacity) spike_samples[r.spike_offset + static_cast<uint64_t>(spikes)] = static_cast<int32_t>(t);
        ++spikes;
        if (q > 0) slots[q - 1] = r.v_peak;  // the cosmetic peak, after I_syn[t - 1] used the real v
        else signal[t - 1] = r.v_peak;
        v = r.c;
        u = u + r.d;
      }
    }
    slots[q] = v;
    i_syn = mul_rn(g_inh, v - r.v_syn_inh) + mul_rn(g_exc, v - r.v_syn_exc);  // inhibitory inputs first
  }
  s = NeuronState{g_exc, g_inh, v, u, i_syn, spikes};
}

#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void neuron_block(Block& block, const BatchView& b, int run, double* shared) {
  const RunDesc& r = b.run[run];
  double* signal = b.signal + r.signal_offset;
  const int64_t tile = b.neuron_tile;
  block.parallel([&](int tid, int, NeuronState& s) {
    if (tid == 0) s = NeuronState{0.0, 0.0, r.v_r, 0.0, 0.0, 0};
  });
  for (int64_t t0 = 0; t0 < r.samples; t0 += tile) {
    const int length = static_cast<int>(smaller(tile, r.samples - t0));
    block.parallel([&](int tid, int threads, NeuronState&) {
      for (int q = tid; q < length; q += threads) shared[q] = signal[t0 + q];
    });
    block.parallel([&](int tid, int, NeuronState& s) {
      if (tid == 0) neuron_steps(r, s, shared, length, t0, signal, b.spike_samples);
    });
    block.parallel([&](int tid, int threads, NeuronState&) {
      for (int q = tid; q < length; q += threads) signal[t0 + q] = shared[q];
    });
  }
  block.parallel([&](int tid, int, NeuronState& s) {
    if (tid == 0) b.output_spikes[run] = s.spikes;
  });
}

// ---- STA heights (block program, one block per run x 8 trains x 1024 lags) -------------------------

struct HeightsState {
  double sum[group_trains][lags_per_thread];  // lag lag0 + k * threads + tid of train g
  int32_t next[group_trains];                 // the start of the train's window `cursor` (while cursor < windows)
  int32_t cursor[group_trains];               // the train's next window
};

#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void heights_block(Block& block, const BatchView& b, uint64_t index, double* shared) {
  const int run = locate(b.heights_prefix, b.runs, index);
  const RunDesc& r = b.run[run];
  const uint64_t local = index - b.heights_prefix[run];
  const uint64_t group = local % r.groups, chunk = local / r.groups;
  const uint64_t trains = static_cast<uint64_t>(r.inputs) * (static_cast<uint64_t>(r.shuffles) + 1);
  const uint64_t first = r.train_first + group * group_trains;  // the group's train 0, batch-wide
  const int count = static_cast<int>(smaller<uint64_t>(group_trains, trains - group * group_trains));
  const int64_t lag0 = static_cast<int64_t>(chunk) * lag_span;
  const int span = static_cast<int>(smaller<int64_t>(lag_span, r.window - lag0));
  const int64_t tile = b.sta_tile;
  const double* signal = b.signal + r.signal_offset;

  // Tiles up to the group's last window start (every thread reads the same, so the loop is uniform).
  int64_t last = -1;
  for (int g = 0; g < count; ++g) {
    const int32_t windows = b.windows[first + g];
    if (windows > 0) {
      const int32_t start = b.starts[b.train_starts[first + g] + static_cast<uint64_t>(windows - 1)];
      last = start > last ? start : last;
    }
  }
  const int64_t tiles = last < 0 ? 0 : last / tile + 1;

  block.parallel([&](int, int, HeightsState& s) {
N1_UNROLL
    for (int g = 0; g < group_trains; ++g) {
N1_UNROLL
      for (int k = 0; k < lags_per_thread; ++k) s.sum[g][k] = 0.0;
      const bool any = g < count && b.windows[first + g] > 0;
      s.cursor[g] = 0;
      s.next[g] = any ? b.starts[b.train_starts[first + g]] : 0;
    }
  });
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t base = t * tile;
    // shared[q] = signal[base + lag0 + q]: every sample the tile's windows read at this block's lags.
    block.parallel([&](int tid, int threads, HeightsState&) {
      const int64_t length = tile + span - 1;
      for (int64_t q = tid; q < length; q += threads) {
        const int64_t sample = base + lag0 + q;
        shared[q] = sample < r.samples ? signal[sample] : 0.0;
      }
    });
    block.parallel([&](int tid, int threads, HeightsState& s) {
      const int64_t limit = base + tile;
N1_UNROLL
      for (int g = 0; g < group_trains; ++g) {
        if (g >= count) continue;
        const int32_t windows = b.windows[first + g];
        const int32_t* starts = b.starts + b.train_starts[first + g];
        while (s.cursor[g] < windows && s.next[g] < limit) {  // the train's windows starting in this tile, in order
          const int64_t offset = s.next[g] - base + tid;
          ++s.cursor[g];
          if (s.cursor[g] < windows) s.next[g] = starts[s.cursor[g]];  // loaded while adding
N1_UNROLL
          for (int k = 0; k < lags_per_thread; ++k)
            if (k * threads + tid < span) s.sum[g][k] += shared[offset + k * threads];
        }
      }
    });
  }
  // Each thread's max and min of its averages per train, then the block's (shared memory reused).
  block.parallel([&](int tid, int threads, HeightsState& s) {
N1_UNROLL
    for (int g = 0; g < group_trains; ++g) {
      if (g >= count) continue;
      const int32_t windows = b.windows[first + g];
      double highest = -infinity, lowest = infinity;
N1_UNROLL
      for (int k = 0; k < lags_per_thread; ++k)
        if (windows > 0 && k * threads + tid < span) {
          const double average = s.sum[g][k] / static_cast<double>(windows);
          lowest = average < lowest ? average : lowest;
          highest = highest < average ? average : highest;
        }
      shared[g * threads + tid] = highest;
      shared[(group_trains + g) * threads + tid] = lowest;
    }
  });
  block.parallel([&](int tid, int threads, HeightsState&) {
    if (tid >= count) return;
    double highest = -infinity, lowest = infinity;
    for (int u = 0; u < threads; ++u) {
      const double high = shared[tid * threads + u], low = shared[(group_trains + tid) * threads + u];
      highest = highest < high ? high : highest;
      lowest = low < lowest ? low : lowest;
    }
    double* out = b.extremes + r.extremes_offset + 2 * ((first - r.train_first + tid) * r.lag_chunks + chunk);
    out[0] = highest;
    out[1] = lowest;
  });
}

// Shared memory of a heights block: the signal tile, at least the reduction's 2 x 8 x 256 doubles.
size_t heights_shared_doubles(int sta_tile) {
  return std::max<size_t>(static_cast<size_t>(sta_tile) + lag_span - 1, 2 * group_trains * heights_threads);
}

// ---- kernels ----------------------------------------------------------------------------------------

__global__ void count_kernel(const RunDesc* runs, const InputDesc* inputs, int count, int64_t* spikes) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < count) spikes[i] = count_spikes(runs[inputs[i].run], inputs[i].input);
}

__global__ void trains_kernel(const BatchView b) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < b.inputs) generate_train(b, i);
}

__global__ void __launch_bounds__(neuron_threads) neuron_kernel(const BatchView b) {
  extern __shared__ double shared[];
  DeviceBlock<NeuronState> block;
  neuron_block(block, b, static_cast<int>(blockIdx.x), shared);
}

__global__ void noise_kernel(const BatchView b) {
  const int run = static_cast<int>(blockIdx.y);
  const int64_t blocks = (b.run[run].samples + 3) / 4;
  for (int64_t block = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; block < blocks;
       block += static_cast<int64_t>(gridDim.x) * blockDim.x)
    noise_block(b, run, block);
}

__global__ void shuffle_kernel(const BatchView b, uint64_t tasks) {
  const uint64_t task = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (task >= tasks) return;
  const int i = locate(b.surrogate_prefix, b.inputs, task);
  shuffle_train(b, i, static_cast<uint32_t>(task - b.surrogate_prefix[i]));
}

__global__ void __launch_bounds__(heights_threads, 2) heights_kernel(const BatchView b) {
  extern __shared__ double shared[];
  DeviceBlock<HeightsState> block;
  heights_block(block, b, blockIdx.x, shared);
}

// ---- host side: jobs, batches, buffers --------------------------------------------------------------

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

uint64_t trains_of(const NTo1Job& job) {
  return static_cast<uint64_t>(job.parameters.inputs) * (static_cast<uint64_t>(job.parameters.shuffles) + 1);
}
uint32_t lag_chunks_of(const NTo1Job& job) { return static_cast<uint32_t>((job.window + lag_span - 1) / lag_span); }

void check_jobs(const std::vector<NTo1Job>& jobs) {
  for (size_t r = 0; r < jobs.size(); ++r) {
    const NTo1Job& job = jobs[r];
    const n_to_1::Parameters& p = job.parameters;
    const std::string which = "n_to_1 job " + std::to_string(r) + ": ";
    if (p.inputs < 1 || p.inputs > 65535 || job.labels.size() != static_cast<size_t>(p.inputs))
      throw std::invalid_argument(which + "inputs must be in [1, 65535] with one label each");
    if (p.shuffles < 1 || p.shuffles > 65536) throw std::invalid_argument(which + "shuffles must be in [1, 65536]");
    if (job.samples < 2 || job.samples >= (int64_t{1} << 31) - 1)
      throw std::invalid_argument(which + "samples must be in [2, 2^31 - 1) for the CUDA kernels (got " +
                                  std::to_string(job.samples) + ")");
    if (job.window < 1 || job.window >= job.samples)
      throw std::invalid_argument(which + "window must be in [1, samples) (got " + std::to_string(job.window) + ")");
  }
}

RunDesc describe(const NTo1Job& job) {
  const n_to_1::Parameters& p = job.parameters;
  const n_to_1::Izhikevich& n = p.neuron;
  RunDesc r{};
  r.seed = job.seed;
  r.inputs = p.inputs;
  r.shuffles = p.shuffles;
  r.samples = job.samples;
  r.window = job.window;
  r.duration = p.duration;
  r.timestep = p.timestep;
  r.spike_rate = p.spike_rate;
  r.tau_syn = p.tau_syn;
  r.dg_exc = p.dg_exc;
  r.dg_inh = p.dg_inh;
  r.v_syn_exc = p.v_syn_exc;
  r.v_syn_inh = p.v_syn_inh;
  r.sigma = (n.v_peak - n.v_r) / p.spike_snr;  // host/n_to_1.cpp's sigma
  r.C = n.C;
  r.k = n.k;
  r.v_r = n.v_r;
  r.v_t = n.v_t;
  r.v_peak = n.v_peak;
  r.a = n.a;
  r.b = n.b;
  r.c = n.c;
  r.d = n.d;
  r.groups = static_cast<uint32_t>((trains_of(job) + group_trains - 1) / group_trains);
  r.lag_chunks = lag_chunks_of(job);
  return r;
}

// A batch's descriptors and the sizes of its buffers.
struct BatchPlan {
  std::vector<size_t> members;  // job indices
  std::vector<RunDesc> runs;
  std::vector<InputDesc> inputs;
  std::vector<uint64_t> surrogate_prefix{0}, heights_prefix{0}, train_starts;
  uint64_t signal = 0, times = 0, starts = 0, trains = 0, extremes = 0, spike_samples = 0;
  int64_t max_samples = 0;
};

BatchPlan plan_batch(const std::vector<NTo1Job>& jobs, const std::vector<std::vector<int64_t>>& spikes,
                     const std::vector<size_t>& members, bool inspect) {
  BatchPlan plan;
  plan.members = members;
  for (size_t run = 0; run < members.size(); ++run) {
    const NTo1Job& job = jobs[members[run]];
    RunDesc r = describe(job);
    r.signal_offset = plan.signal;
    r.input_first = static_cast<uint32_t>(plan.inputs.size());
    r.train_first = plan.trains;
    r.extremes_offset = plan.extremes;
    r.spike_offset = plan.spike_samples;
    r.spike_capacity = inspect ? job.samples : 0;
    plan.signal += static_cast<uint64_t>(job.samples);
    plan.extremes += 2 * trains_of(job) * r.lag_chunks;
    plan.spike_samples += static_cast<uint64_t>(r.spike_capacity);
    plan.max_samples = std::max(plan.max_samples, job.samples);
    for (int i = 0; i < job.parameters.inputs; ++i) {
      InputDesc in{};
      in.run = static_cast<uint32_t>(run);
      in.input = static_cast<uint32_t>(i);
      in.inhibitory = job.labels[static_cast<size_t>(i)].inhibitory ? 1 : 0;
      in.connected = job.labels[static_cast<size_t>(i)].connected ? 1 : 0;
      in.spikes = spikes[members[run]][static_cast<size_t>(i)];
      in.times_offset = plan.times;
      in.starts_offset = plan.starts;
      in.train_first = plan.trains;
      const auto count = static_cast<uint64_t>(in.spikes);
      for (int k = 0; k <= job.parameters.shuffles; ++k) plan.train_starts.push_back(plan.starts + k * count);
      plan.times += count;
      plan.starts += count * (static_cast<uint64_t>(job.parameters.shuffles) + 1);
      plan.trains += static_cast<uint64_t>(job.parameters.shuffles) + 1;
      plan.surrogate_prefix.push_back(plan.surrogate_prefix.back() + static_cast<uint64_t>(job.parameters.shuffles));
      plan.inputs.push_back(in);
    }
    plan.heights_prefix.push_back(plan.heights_prefix.back() + static_cast<uint64_t>(r.groups) * r.lag_chunks);
    plan.runs.push_back(r);
  }
  return plan;
}

// Jobs cut into batches in job order, each within `budget` bytes and 65535 runs (the noise grid).
std::vector<std::vector<size_t>> cut_batches(const std::vector<NTo1Job>& jobs, const std::vector<std::vector<int64_t>>& spikes,
                                             uint64_t budget, bool inspect) {
  std::vector<std::vector<size_t>> batches;
  uint64_t used = 0;
  for (size_t r = 0; r < jobs.size(); ++r) {
    int64_t total = 0;
    for (const int64_t s : spikes[r]) total += s;
    const uint64_t bytes = n_to_1_job_bytes(jobs[r], total, inspect);
    if (bytes > budget)
      throw std::runtime_error("n_to_1 job " + std::to_string(r) + " needs " + std::to_string(bytes >> 20) +
                               " MiB of device memory, the batch budget is " + std::to_string(budget >> 20) + " MiB");
    if (batches.empty() || used + bytes > budget || batches.back().size() >= 65535) {
      batches.emplace_back();
      used = 0;
    }
    batches.back().push_back(r);
    used += bytes;
  }
  return batches;
}

// Heights of a run's trains from their extremes (max over lag chunks of the maxima minus min of minima).
void collect_run(const NTo1Job& job, const RunDesc& r, const InputDesc* inputs, const int32_t* windows,
                 const double* extremes, int64_t output_spikes, NTo1RunResult& out) {
  const uint64_t trains = trains_of(job);
  out.output_spikes = output_spikes;
  out.spikes.resize(static_cast<size_t>(job.parameters.inputs));
  for (int i = 0; i < job.parameters.inputs; ++i) out.spikes[static_cast<size_t>(i)] = inputs[r.input_first + static_cast<uint32_t>(i)].spikes;
  out.windows.resize(trains);
  out.heights.resize(trains);
  for (uint64_t t = 0; t < trains; ++t) {
    out.windows[t] = windows[r.train_first + t];
    double highest = -infinity, lowest = infinity;
    for (uint32_t c = 0; c < r.lag_chunks; ++c) {
      const double* e = extremes + r.extremes_offset + 2 * (t * r.lag_chunks + c);
      highest = highest < e[0] ? e[0] : highest;
      lowest = e[1] < lowest ? e[1] : lowest;
    }
    out.heights[t] = out.windows[t] > 0 ? highest - lowest : std::numeric_limits<double>::quiet_NaN();
  }
}

// Trains of one run for an inspection: times per input, every train's sample indices.
void inspect_trains(const NTo1Job& job, const RunDesc& r, const InputDesc* inputs, const std::vector<double>& times,
                    const std::vector<int32_t>& starts, NTo1Inspection::Run& out) {
  for (int i = 0; i < job.parameters.inputs; ++i) {
    const InputDesc& in = inputs[r.input_first + static_cast<uint32_t>(i)];
    const auto count = static_cast<uint64_t>(in.spikes);
    out.times.emplace_back(times.begin() + static_cast<std::ptrdiff_t>(in.times_offset),
                           times.begin() + static_cast<std::ptrdiff_t>(in.times_offset + count));
    for (int k = 0; k <= job.parameters.shuffles; ++k) {
      const auto begin = starts.begin() + static_cast<std::ptrdiff_t>(in.starts_offset + static_cast<uint64_t>(k) * count);
      out.trains.emplace_back(begin, begin + static_cast<std::ptrdiff_t>(count));
    }
  }
}

BatchView view_of(const BatchPlan& plan, const NTo1Tuning& tuning) {
  BatchView b;
  b.runs = static_cast<int>(plan.runs.size());
  b.inputs = static_cast<int>(plan.inputs.size());
  b.sta_tile = tuning.sta_tile;
  b.neuron_tile = tuning.neuron_tile;
  return b;
}

void check_tuning(const NTo1Tuning& tuning) {
  if (tuning.sta_tile < 1 || tuning.sta_tile > (1 << 24) || tuning.neuron_tile < 1 || tuning.neuron_tile > (1 << 24))
    throw std::invalid_argument("NTo1Tuning: tiles must be in [1, 2^24]");
}

// All jobs' inputs for the count kernel (only the run's stream parameters are read).
void describe_all(const std::vector<NTo1Job>& jobs, std::vector<RunDesc>& runs, std::vector<InputDesc>& inputs) {
  for (size_t r = 0; r < jobs.size(); ++r) {
    runs.push_back(describe(jobs[r]));
    for (int i = 0; i < jobs[r].parameters.inputs; ++i) {
      InputDesc in{};
      in.run = static_cast<uint32_t>(r);
      in.input = static_cast<uint32_t>(i);
      inputs.push_back(in);
    }
  }
}

std::vector<std::vector<int64_t>> split_counts(const std::vector<NTo1Job>& jobs, const std::vector<int64_t>& flat) {
  std::vector<std::vector<int64_t>> spikes(jobs.size());
  size_t next = 0;
  for (size_t r = 0; r < jobs.size(); ++r)
    for (int i = 0; i < jobs[r].parameters.inputs; ++i) spikes[r].push_back(flat[next++]);
  return spikes;
}

// ---- device memory ----------------------------------------------------------------------------------

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    CS_CUDA_CHECK(cudaMalloc(&data_, std::max<size_t>(count, 1) * sizeof(T)));
  }
  DeviceBuffer(const std::vector<T>& host, cudaStream_t stream) : DeviceBuffer(host.size()) {
    if (!host.empty())
      CS_CUDA_CHECK(cudaMemcpyAsync(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return data_; }
  std::vector<T> download(cudaStream_t stream) const {
    std::vector<T> host(count_);
    if (count_ > 0) {
      CS_CUDA_CHECK(cudaMemcpyAsync(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost, stream));
      CS_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

class DeviceScope {  // the device for a call; not restored after: restoring an unset thread's "previous"
 public:              // device 0 would create a context there, and every caller sets its own device
  explicit DeviceScope(int device) { CS_CUDA_CHECK(cudaSetDevice(device)); }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
};

struct Stream {
  cudaStream_t handle = nullptr;
  explicit Stream(bool high_priority) {
    int least = 0, greatest = 0;
    CS_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    CS_CUDA_CHECK(cudaStreamCreateWithPriority(&handle, cudaStreamNonBlocking, high_priority ? greatest : least));
  }
  ~Stream() { cudaStreamDestroy(handle); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

struct Event {
  cudaEvent_t handle = nullptr;
  Event() { CS_CUDA_CHECK(cudaEventCreate(&handle)); }
  ~Event() { cudaEventDestroy(handle); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

unsigned grid_for(uint64_t threads, int per_block) {
  return static_cast<unsigned>(std::max<uint64_t>(1, (threads + static_cast<uint64_t>(per_block) - 1) / static_cast<uint64_t>(per_block)));
}

}  // namespace

// ---- public entry points ------------------------------------------------------------------------------

uint64_t n_to_1_job_bytes(const NTo1Job& job, int64_t total_spikes, bool inspect) {
  const uint64_t samples = static_cast<uint64_t>(job.samples), spikes = static_cast<uint64_t>(std::max<int64_t>(total_spikes, 0));
  const uint64_t trains = trains_of(job), inputs = static_cast<uint64_t>(job.parameters.inputs);
  return 8 * samples + 8 * spikes + 4 * (static_cast<uint64_t>(job.parameters.shuffles) + 1) * spikes +
         trains * (4 + 8 + 16 * static_cast<uint64_t>(lag_chunks_of(job))) + inputs * (sizeof(InputDesc) + 16) +
         sizeof(RunDesc) + 64 + (inspect ? 4 * samples : 0);
}

std::vector<NTo1RunResult> run_n_to_1_jobs(int device, const std::vector<NTo1Job>& jobs, const NTo1Tuning& tuning_in,
                                           NTo1Inspection* inspect) {
  check_jobs(jobs);
  check_tuning(tuning_in);
  std::vector<NTo1RunResult> results(jobs.size());
  if (inspect) inspect->runs.assign(jobs.size(), {});
  if (jobs.empty()) return results;
  DeviceScope scope(device);
  // The neuron and noise (s0) first: the neuron's 32-thread blocks are a long serial chain, and the
  // surrogates (s1) fill the rest of the device beside them.
  Stream main_stream(true), side_stream(false);
  const cudaStream_t s0 = main_stream.handle, s1 = side_stream.handle;

  // Tile of the heights kernel within the device's shared memory per block.
  NTo1Tuning tuning = tuning_in;
  int shared_limit = 0;
  CS_CUDA_CHECK(cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int tile_limit = shared_limit / static_cast<int>(sizeof(double)) - lag_span + 1;
  if (tile_limit < 1 || static_cast<size_t>(shared_limit) < 2 * group_trains * heights_threads * sizeof(double))
    throw std::runtime_error("device " + std::to_string(device) + " has too little shared memory per block for the n_to_1 kernels");
  tuning.sta_tile = std::min(tuning.sta_tile, tile_limit);
  tuning.neuron_tile = std::min(tuning.neuron_tile, shared_limit / static_cast<int>(sizeof(double)));
  const size_t heights_shared = heights_shared_doubles(tuning.sta_tile) * sizeof(double);
  const size_t neuron_shared = static_cast<size_t>(tuning.neuron_tile) * sizeof(double);
  allow_dynamic_shared_memory(heights_kernel, heights_shared, "n_to_1 heights_kernel");
  allow_dynamic_shared_memory(neuron_kernel, neuron_shared, "n_to_1 neuron_kernel");

  // Spike counts of every input of every job (they size the buffers).
  std::vector<RunDesc> all_runs;
  std::vector<InputDesc> all_inputs;
  describe_all(jobs, all_runs, all_inputs);
  std::vector<std::vector<int64_t>> spikes;
  {
    DeviceBuffer<RunDesc> d_runs(all_runs, s0);
    DeviceBuffer<InputDesc> d_inputs(all_inputs, s0);
    DeviceBuffer<int64_t> d_counts(all_inputs.size());
    count_kernel<<<grid_for(all_inputs.size(), plain_threads), plain_threads, 0, s0>>>(
        d_runs.get(), d_inputs.get(), static_cast<int>(all_inputs.size()), d_counts.get());
    CS_CUDA_CHECK(cudaGetLastError());
    spikes = split_counts(jobs, d_counts.download(s0));
  }

  uint64_t budget = tuning.memory_budget;
  if (budget == 0) {
    size_t free_bytes = 0, total_bytes = 0;
    CS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    budget = static_cast<uint64_t>(0.9 * static_cast<double>(free_bytes));
  }
  for (const std::vector<size_t>& members : cut_batches(jobs, spikes, budget, inspect != nullptr)) {
    const BatchPlan plan = plan_batch(jobs, spikes, members, inspect != nullptr);
    DeviceBuffer<RunDesc> runs(plan.runs, s0);
    DeviceBuffer<InputDesc> inputs(plan.inputs, s0);
    DeviceBuffer<uint64_t> surrogate_prefix(plan.surrogate_prefix, s0), heights_prefix(plan.heights_prefix, s0),
        train_starts(plan.train_starts, s0);
    DeviceBuffer<double> signal(plan.signal), times(plan.times), extremes(plan.extremes);
    DeviceBuffer<int32_t> starts(plan.starts), windows(plan.trains), spike_samples(plan.spike_samples);
    DeviceBuffer<int64_t> output_spikes(plan.runs.size());
    BatchView b = view_of(plan, tuning);
    b.run = runs.get();
    b.input = inputs.get();
    b.surrogate_prefix = surrogate_prefix.get();
    b.heights_prefix = heights_prefix.get();
    b.train_starts = train_starts.get();
    b.signal = signal.get();
    b.times = times.get();
    b.starts = starts.get();
    b.windows = windows.get();
    b.extremes = extremes.get();
    b.output_spikes = output_spikes.get();
    b.spike_samples = spike_samples.get();

    Event start, trains_done, simulated, shuffled, done;
    CS_CUDA_CHECK(cudaEventRecord(start.handle, s0));
    CS_CUDA_CHECK(cudaMemsetAsync(b.signal, 0, plan.signal * sizeof(double), s0));  // no events, v = 0
    trains_kernel<<<grid_for(plan.inputs.size(), plain_threads), plain_threads, 0, s0>>>(b);
    CS_CUDA_CHECK(cudaGetLastError());
    CS_CUDA_CHECK(cudaEventRecord(trains_done.handle, s0));
    neuron_kernel<<<static_cast<unsigned>(plan.runs.size()), neuron_threads, neuron_shared, s0>>>(b);
    CS_CUDA_CHECK(cudaGetLastError());
    // The surrogates need only the spike times: beside the neuron, on the side stream.
    CS_CUDA_CHECK(cudaStreamWaitEvent(s1, trains_done.handle, 0));
    const uint64_t tasks = plan.surrogate_prefix.back();
    shuffle_kernel<<<grid_for(tasks, plain_threads), plain_threads, 0, s1>>>(b, tasks);
    CS_CUDA_CHECK(cudaGetLastError());
    CS_CUDA_CHECK(cudaEventRecord(shuffled.handle, s1));
    std::vector<double> voltage;
    if (inspect) voltage = signal.download(s0);
    const uint64_t noise_blocks = static_cast<uint64_t>((plan.max_samples + 3) / 4);
    const dim3 noise_grid(std::min<unsigned>(grid_for(noise_blocks, plain_threads), 4096u), static_cast<unsigned>(plan.runs.size()));
    noise_kernel<<<noise_grid, plain_threads, 0, s0>>>(b);
    CS_CUDA_CHECK(cudaGetLastError());
    CS_CUDA_CHECK(cudaEventRecord(simulated.handle, s0));
    CS_CUDA_CHECK(cudaStreamWaitEvent(s0, shuffled.handle, 0));
    const uint64_t blocks = plan.heights_prefix.back();
    if (blocks > 0x7fffffffull) throw std::runtime_error("n_to_1 batch: too many heights blocks for one launch");
    heights_kernel<<<static_cast<unsigned>(blocks), heights_threads, heights_shared, s0>>>(b);
    CS_CUDA_CHECK(cudaGetLastError());
    CS_CUDA_CHECK(cudaEventRecord(done.handle, s0));

    const std::vector<int32_t> h_windows = windows.download(s0);
    const std::vector<double> h_extremes = extremes.download(s0);
    const std::vector<int64_t> h_output = output_spikes.download(s0);
    float simulate_ms = 0, total_ms = 0;
    CS_CUDA_CHECK(cudaEventElapsedTime(&simulate_ms, start.handle, simulated.handle));
    CS_CUDA_CHECK(cudaEventElapsedTime(&total_ms, start.handle, done.handle));
    const double runs_in_batch = static_cast<double>(plan.runs.size());
    for (size_t run = 0; run < plan.runs.size(); ++run) {
      const size_t job = plan.members[run];
      collect_run(jobs[job], plan.runs[run], plan.inputs.data(), h_windows.data(), h_extremes.data(), h_output[run], results[job]);
      results[job].simulate_seconds = 1e-3 * simulate_ms / runs_in_batch;
      results[job].test_seconds = 1e-3 * std::max(0.0f, total_ms - simulate_ms) / runs_in_batch;
    }
    if (inspect) {
      const std::vector<double> h_signal = signal.download(s0), h_times = times.download(s0);
      const std::vector<int32_t> h_starts = starts.download(s0), h_spike_samples = spike_samples.download(s0);
      for (size_t run = 0; run < plan.runs.size(); ++run) {
        const RunDesc& r = plan.runs[run];
        NTo1Inspection::Run& out = inspect->runs[plan.members[run]];
        const auto begin = static_cast<std::ptrdiff_t>(r.signal_offset), end = begin + static_cast<std::ptrdiff_t>(r.samples);
        out.voltage.assign(voltage.begin() + begin, voltage.begin() + end);
        out.signal.assign(h_signal.begin() + begin, h_signal.begin() + end);
        for (int64_t s = 0; s < std::min(h_output[run], r.spike_capacity); ++s)
          out.output_spike_samples.push_back(h_spike_samples[r.spike_offset + static_cast<uint64_t>(s)]);
        inspect_trains(jobs[plan.members[run]], r, plan.inputs.data(), h_times, h_starts, out);
      }
    }
  }
  return results;
}

std::vector<NTo1RunResult> emulate_n_to_1_jobs_on_host(const std::vector<NTo1Job>& jobs, const NTo1Tuning& tuning,
                                                       NTo1Inspection* inspect) {
  check_jobs(jobs);
  check_tuning(tuning);
  std::vector<NTo1RunResult> results(jobs.size());
  if (inspect) inspect->runs.assign(jobs.size(), {});
  if (jobs.empty()) return results;
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();

  std::vector<RunDesc> all_runs;
  std::vector<InputDesc> all_inputs;
  describe_all(jobs, all_runs, all_inputs);
  std::vector<int64_t> counts(all_inputs.size(), -1);
  for (size_t i = 0; i < all_inputs.size(); ++i) counts[i] = count_spikes(all_runs[all_inputs[i].run], all_inputs[i].input);
  const std::vector<std::vector<int64_t>> spikes = split_counts(jobs, counts);

  const uint64_t budget = tuning.memory_budget ? tuning.memory_budget : uint64_t{4} << 30;
  for (const std::vector<size_t>& members : cut_batches(jobs, spikes, budget, inspect != nullptr)) {
    const BatchPlan plan = plan_batch(jobs, spikes, members, inspect != nullptr);
    // Outputs poisoned: a value the kernels forget to write shows up.
    std::vector<double> signal(plan.signal, poison), times(plan.times, poison), extremes(plan.extremes, poison);
    std::vector<int32_t> starts(plan.starts, -7), windows(plan.trains, -7), spike_samples(plan.spike_samples, -7);
    std::vector<int64_t> output_spikes(plan.runs.size(), -7);
    BatchView b = view_of(plan, tuning);
    b.run = plan.runs.data();
    b.input = plan.inputs.data();
    b.surrogate_prefix = plan.surrogate_prefix.data();
    b.heights_prefix = plan.heights_prefix.data();
    b.train_starts = plan.train_starts.data();
    b.signal = signal.data();
    b.times = times.data();
    b.starts = starts.data();
    b.windows = windows.data();
    b.extremes = extremes.data();
    b.output_spikes = output_spikes.data();
    b.spike_samples = spike_samples.data();

    const auto start = std::chrono::steady_clock::now();
    std::fill(signal.begin(), signal.end(), 0.0);  // the device's memset
    for (int i = 0; i < b.inputs; ++i) generate_train(b, i);
    std::vector<double> shared(static_cast<size_t>(tuning.neuron_tile), poison);
    for (int run = 0; run < b.runs; ++run) {
      std::fill(shared.begin(), shared.end(), poison);
      emulate_block<NeuronState>(neuron_threads, [&](auto& block) { neuron_block(block, b, run, shared.data()); });
    }
    std::vector<double> voltage;
    if (inspect) voltage = signal;
    for (int run = 0; run < b.runs; ++run)
      for (int64_t block = 0; 4 * block < plan.runs[static_cast<size_t>(run)].samples; ++block) noise_block(b, run, block);
    const double simulate_seconds = seconds_since(start);

    const auto test_start = std::chrono::steady_clock::now();
    for (int i = 0; i < b.inputs; ++i)
      for (uint64_t s = 0; s < plan.surrogate_prefix[static_cast<size_t>(i) + 1] - plan.surrogate_prefix[static_cast<size_t>(i)]; ++s)
        shuffle_train(b, i, static_cast<uint32_t>(s));
    shared.assign(heights_shared_doubles(tuning.sta_tile), poison);
    for (uint64_t index = 0; index < plan.heights_prefix.back(); ++index) {
      std::fill(shared.begin(), shared.end(), poison);
      emulate_block<HeightsState>(heights_threads, [&](auto& block) { heights_block(block, b, index, shared.data()); });
    }
    const double test_seconds = seconds_since(test_start);

    const double runs_in_batch = static_cast<double>(plan.runs.size());
    for (size_t run = 0; run < plan.runs.size(); ++run) {
      const size_t job = plan.members[run];
      collect_run(jobs[job], plan.runs[run], plan.inputs.data(), windows.data(), extremes.data(), output_spikes[run], results[job]);
      results[job].simulate_seconds = simulate_seconds / runs_in_batch;
      results[job].test_seconds = test_seconds / runs_in_batch;
      if (inspect) {
        const RunDesc& r = plan.runs[run];
        NTo1Inspection::Run& out = inspect->runs[job];
        const auto begin = static_cast<std::ptrdiff_t>(r.signal_offset), end = begin + static_cast<std::ptrdiff_t>(r.samples);
        out.voltage.assign(voltage.begin() + begin, voltage.begin() + end);
        out.signal.assign(signal.begin() + begin, signal.begin() + end);
        for (int64_t s = 0; s < std::min(output_spikes[run], r.spike_capacity); ++s)
          out.output_spike_samples.push_back(spike_samples[r.spike_offset + static_cast<uint64_t>(s)]);
        inspect_trains(jobs[job], r, plan.inputs.data(), times, starts, out);
      }
    }
  }
  return results;
}

bool n_to_1_kernels_runnable(int device, std::string& why) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    cudaGetLastError();
    why = "device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " visible)";
    return false;
  }
  CS_CUDA_CHECK(cudaSetDevice(device));  // no restore: see simulation_kernel_runnable
  cudaFuncAttributes attributes{};
  const cudaError_t status = cudaFuncGetAttributes(&attributes, heights_kernel);
  int shared_limit = 0;
  const cudaError_t shared_status = cudaDeviceGetAttribute(&shared_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (status != cudaSuccess || shared_status != cudaSuccess) {
    cudaGetLastError();
    why = std::string("the n_to_1 kernels are not built for device ") + std::to_string(device) + ": " +
          cudaGetErrorString(status != cudaSuccess ? status : shared_status) +
          " (this build targets CUDA architecture(s) " CS_CUDA_ARCHITECTURES ")";
    return false;
  }
  if (static_cast<size_t>(shared_limit) < heights_shared_doubles(1) * sizeof(double)) {
    why = "device " + std::to_string(device) + " has " + std::to_string(shared_limit) +
          " bytes of shared memory per block; the n_to_1 heights kernel needs " +
          std::to_string(heights_shared_doubles(1) * sizeof(double));
    return false;
  }
  return true;
}

}  // namespace causalsweep::cuda
