// The CUDA backend: the GPU simulates and accumulates the Grams, the host does the rest exactly as
// the CPU backend does (score_network: run_estimator and score_run on the same Grams), so results agree with the
// CPU backend's to float64 rounding.
//
// Per batch: networks are grouped by size n and cut into chunks that fit the device (plan_chunks;
// the chunk size comes from cudaMemGetInfo and the per-network footprint, halved on out-of-memory).
// Each device has a worker thread, a stream and two pinned host slots, and takes chunks from a
// shared queue. Its pipeline overlaps the host and the GPU:
//     host: A of chunk k+1 (CPU generator)      GPU: simulate chunk k
//     host: estimate and score chunk k          GPU: simulate chunk k+1
// A comes from the CPU's own generator (network_connectivity: Bernoulli streams and Eigen's SVD),
// so the truth is identical on both backends; the GPU version of that step is still to come.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "causalsweep/backend.hpp"
#include "causalsweep/config.hpp"
#include "cpu_network.hpp"
#include "cuda_backend.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "engine.hpp"

namespace causalsweep {
namespace cuda {

Gram unpack_gram(const double* buffer, int n, int64_t transitions, int64_t saturated_logits) {
  Gram gram(n);
  const Eigen::Index p = 2 * n + 1, q = 2 * n;
  gram.ww = Eigen::Map<const Eigen::MatrixXd>(buffer, p, p);
  gram.wu = Eigen::Map<const Eigen::MatrixXd>(buffer + p * p, p, q);
  gram.uu = Eigen::Map<const Eigen::VectorXd>(buffer + p * p + p * q, q);
  gram.transitions = transitions;
  gram.saturated_logits = saturated_logits;
  return gram;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// Mirrors run_cpu_network after its simulation (keep the two in step).
std::vector<Chunk> plan_chunks(std::span<const NetworkTask> batch,
                               const std::function<size_t(int n, bool perturb)>& max_networks) {
  std::vector<Chunk> groups;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto group = std::find_if(groups.begin(), groups.end(), [&](const Chunk& g) {
      return g.n == batch[i].n_neurons && g.perturb == batch[i].perturb;
    });
    if (group == groups.end()) group = groups.insert(groups.end(), Chunk{batch[i].n_neurons, batch[i].perturb, {}});
    group->members.push_back(i);
  }
  std::vector<Chunk> chunks;
  for (const Chunk& group : groups) {
    const size_t limit = std::max<size_t>(1, max_networks(group.n, group.perturb));
    for (size_t begin = 0; begin < group.members.size(); begin += limit) {
      const size_t end = std::min(group.members.size(), begin + limit);
      chunks.push_back(Chunk{group.n, group.perturb,
                             std::vector<size_t>(group.members.begin() + static_cast<std::ptrdiff_t>(begin),
                                                 group.members.begin() + static_cast<std::ptrdiff_t>(end))});
    }
  }
  return chunks;
}

namespace {

// Runs work(i, local_times) for i < count on `threads` threads (the caller is one of them); the
// first exception stops the others and is rethrown. Phase times are summed into `times`.
template <class Work>
void parallel_for(size_t count, int threads, PhaseTimes& times, Work&& work) {
  std::atomic<size_t> next{0};
  std::mutex mutex;
  std::exception_ptr failure;
  auto worker = [&] {
    PhaseTimes local;
    try {
      for (size_t i = next++; i < count; i = next++) work(i, local);
    } catch (...) {
      const std::lock_guard lock(mutex);
      if (!failure) failure = std::current_exception();
      next = count;
    }
    const std::lock_guard lock(mutex);
    times += local;
  };
  const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), count));
  {
    std::vector<std::jthread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(worker);
    worker();
  }
  if (failure) std::rethrow_exception(failure);
}

constexpr size_t section_alignment = 256;
size_t align_up(size_t bytes) { return (bytes + section_alignment - 1) / section_alignment * section_alignment; }

// Byte offsets of one chunk's arrays. The device arena and the pinned host slot use the same
// offsets, so inputs go over in one copy ([0, inputs_end)) and outputs come back in one
// ([grams, outputs_end)); the scratch exists on the device only.
struct ChunkOffsets {
  size_t connectivity = 0, etas = 0, seeds = 0, timesteps = 0, inputs_end = 0;
  size_t grams = 0, even_grams = 0, saturated = 0, outputs_end = 0;
  size_t scratch = 0, device_end = 0;
};

ChunkOffsets chunk_offsets(const SimulationLayout& layout, size_t count, bool perturb) {
  ChunkOffsets o;
  size_t at = 0;
  auto section = [&](size_t bytes) {
    const size_t start = at;
    at = align_up(at + bytes);
    return start;
  };
  const size_t n = static_cast<size_t>(layout.n);
  o.connectivity = section(count * n * n * sizeof(double));
  o.etas = section(count * sizeof(double));
  o.seeds = section(count * sizeof(uint64_t));
  o.timesteps = section(count * sizeof(int));
  o.inputs_end = at;
  o.grams = section(count * gram_doubles(layout.n) * sizeof(double));
  o.even_grams = section(perturb ? count * gram_doubles(layout.n) * sizeof(double) : 0);
  o.saturated = section(2 * count * sizeof(unsigned long long));
  o.outputs_end = at;
  o.scratch = section(count * layout.scratch_doubles * sizeof(double));
  o.device_end = at;
  return o;
}

// Grow-only memory from one CUDA allocator; reserve() reports out-of-memory instead of throwing.
using CudaAllocate = cudaError_t (*)(void**, size_t);
using CudaFree = cudaError_t (*)(void*);
template <CudaAllocate Allocate, CudaFree Free>
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() { release(); }
  bool reserve(size_t bytes) {
    if (bytes <= size_) return true;
    release();
    const cudaError_t status = Allocate(&data_, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the caller retries with less
      data_ = nullptr;
      return false;
    }
    CS_CUDA_CHECK(status);
    size_ = bytes;
    return true;
  }
  char* data() const { return static_cast<char*>(data_); }
  size_t size() const { return size_; }

 private:
  void release() {
    if (data_) Free(data_);  // no check: also runs from destructors
    data_ = nullptr;
    size_ = 0;
  }
  void* data_ = nullptr;
  size_t size_ = 0;
};

cudaError_t allocate_device(void** data, size_t bytes) { return cudaMalloc(data, bytes); }
cudaError_t allocate_pinned(void** data, size_t bytes) { return cudaMallocHost(data, bytes); }
cudaError_t free_device(void* data) { return cudaFree(data); }
cudaError_t free_pinned(void* data) { return cudaFreeHost(data); }
using DeviceArena = Arena<allocate_device, free_device>;
using PinnedArena = Arena<allocate_pinned, free_pinned>;  // asynchronous copies need pinned host memory

// What one worker thread shares with the others during a batch.
struct BatchContext {
  std::span<const NetworkTask> batch;
  const SweepGrid* grid = nullptr;
  const std::vector<Chunk>* chunks = nullptr;
  std::atomic<size_t> next_chunk{0};
  std::vector<NetworkResult>* results = nullptr;  // one slot per network; each written by one thread
  int host_threads = 1;                           // per device worker
};

// One GPU: its stream, its memory and its half of the pipeline.
class DeviceWorker {
 public:
  int device() const { return device_; }
  explicit DeviceWorker(int device) : device_(device) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    CS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (int slot = 0; slot < 2; ++slot) {
      CS_CUDA_CHECK(cudaEventCreate(&kernel_start_[slot]));
      CS_CUDA_CHECK(cudaEventCreate(&kernel_end_[slot]));
      CS_CUDA_CHECK(cudaEventCreate(&outputs_ready_[slot]));
    }
    cudaDeviceProp prop{};
    CS_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = fmt::format("{} (device {}, sm_{}{}, {} MiB)", prop.name, device_, prop.major, prop.minor,
                        prop.totalGlobalMem >> 20);
    shared_limit_ = shared_memory_limit(device_);
  }
  DeviceWorker(const DeviceWorker&) = delete;
  DeviceWorker& operator=(const DeviceWorker&) = delete;
  ~DeviceWorker() {
    cudaSetDevice(device_);  // no checks in a destructor: release what exists
    cudaStreamSynchronize(stream_);
    for (int slot = 0; slot < 2; ++slot) {
      cudaEventDestroy(kernel_start_[slot]);
      cudaEventDestroy(kernel_end_[slot]);
      cudaEventDestroy(outputs_ready_[slot]);
    }
    cudaStreamDestroy(stream_);
  }

  const std::string& name() const { return name_; }

  SimulationLayout layout(int n) const { return plan_simulation_layout(n, shared_limit_); }

  // Networks of size n that one chunk may hold: `fraction` of the memory this process could use
  // on the device (free plus what it already holds), and at most 1 GiB per pinned host slot unless
  // one network alone is larger (n in the thousands): then one network per chunk.
  size_t capacity(int n, bool perturb, double fraction) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    size_t free_bytes = 0, total_bytes = 0;
    CS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double budget = fraction * static_cast<double>(free_bytes + device_arena_.size());
    const SimulationLayout l = layout(n);
    const ChunkOffsets one = chunk_offsets(l, 1, perturb);
    const double per_network = static_cast<double>(one.device_end);  // alignment makes this an upper bound
    const double per_network_host = static_cast<double>(one.outputs_end);
    constexpr double pinned_slot_limit = 1024.0 * 1024.0 * 1024.0;
    const auto on_device = static_cast<size_t>(budget / per_network);
    const auto in_pinned_slot = std::max<size_t>(1, static_cast<size_t>(pinned_slot_limit / per_network_host));
    return std::min(on_device, in_pinned_slot);
  }

  // Memory for the largest chunk; false when the device or the host is out of memory.
  bool reserve(size_t device_bytes, size_t host_bytes) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    return device_arena_.reserve(device_bytes) && host_slot_[0].reserve(host_bytes) && host_slot_[1].reserve(host_bytes);
  }

  // Takes chunks from the queue until it is empty; chunk k+1 runs on the GPU while the host scores chunk k.
  void process(BatchContext& context, PhaseTimes& times) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    std::optional<InFlight> pending;
    int slot = 0;
    for (;;) {
      const size_t c = context.next_chunk++;
      std::optional<InFlight> submitted;
      if (c < context.chunks->size()) {
        submitted = submit((*context.chunks)[c], slot, context, times);
        slot ^= 1;
      }
      if (pending) finish(*pending, context, times);
      if (!submitted) break;
      pending = std::move(submitted);
    }
  }

 private:
  // A chunk whose simulation has been queued on the stream.
  struct InFlight {
    const Chunk* chunk = nullptr;
    int slot = 0;
    SimulationLayout layout;
    ChunkOffsets offsets;
    std::vector<Eigen::MatrixXd> A;  // the truth for scoring
    std::vector<char> empty;         // A0 had no connection
  };

  // Host: A and the per-network inputs into the pinned slot. Device: inputs in, the kernel, Grams
  // out, all queued on this worker's stream (so the previous chunk's copies finish first).
  InFlight submit(const Chunk& chunk, int slot, BatchContext& context, PhaseTimes& times) {
    InFlight f;
    f.chunk = &chunk;
    f.slot = slot;
    f.layout = layout(chunk.n);
    const size_t count = chunk.members.size();
    f.offsets = chunk_offsets(f.layout, count, chunk.perturb);
    f.A.resize(count);
    f.empty.resize(count);

    char* host = host_slot_[slot].data();
    auto* connectivity = reinterpret_cast<double*>(host + f.offsets.connectivity);
    auto* etas = reinterpret_cast<double*>(host + f.offsets.etas);
    auto* seeds = reinterpret_cast<uint64_t*>(host + f.offsets.seeds);
    auto* timesteps = reinterpret_cast<int*>(host + f.offsets.timesteps);
    const size_t n = static_cast<size_t>(chunk.n);
    parallel_for(count, context.host_threads, times, [&](size_t i, PhaseTimes& local) {
      const auto start = std::chrono::steady_clock::now();
      const NetworkTask& task = context.batch[chunk.members[i]];
      bool empty = false;
      f.A[i] = network_connectivity(task, context.grid->model, empty);
      f.empty[i] = empty;
      std::copy(f.A[i].data(), f.A[i].data() + n * n, connectivity + i * n * n);  // column-major, as the kernel reads it
      etas[i] = task.eta;
      seeds[i] = task.seed;
      timesteps[i] = task.timesteps;
      local.generate += seconds_since(start);
    });

    char* device = device_arena_.data();
    SimulationBatch batch;
    batch.networks = static_cast<int>(count);
    batch.nonlinearity = context.grid->model.nonlinearity;
    batch.perturb = chunk.perturb;
    batch.seeds = reinterpret_cast<const uint64_t*>(device + f.offsets.seeds);
    batch.etas = reinterpret_cast<const double*>(device + f.offsets.etas);
    batch.timesteps = reinterpret_cast<const int*>(device + f.offsets.timesteps);
    batch.connectivity = reinterpret_cast<const double*>(device + f.offsets.connectivity);
    batch.grams = reinterpret_cast<double*>(device + f.offsets.grams);
    batch.even_grams = chunk.perturb ? reinterpret_cast<double*>(device + f.offsets.even_grams) : nullptr;
    batch.saturated = reinterpret_cast<unsigned long long*>(device + f.offsets.saturated);
    batch.scratch = f.layout.scratch_doubles ? reinterpret_cast<double*>(device + f.offsets.scratch) : nullptr;

    CS_CUDA_CHECK(cudaMemcpyAsync(device, host, f.offsets.inputs_end, cudaMemcpyHostToDevice, stream_));
    CS_CUDA_CHECK(cudaEventRecord(kernel_start_[slot], stream_));
    launch_simulation(f.layout, batch, stream_);
    CS_CUDA_CHECK(cudaEventRecord(kernel_end_[slot], stream_));
    CS_CUDA_CHECK(cudaMemcpyAsync(host + f.offsets.grams, device + f.offsets.grams,
                                  f.offsets.outputs_end - f.offsets.grams, cudaMemcpyDeviceToHost, stream_));
    CS_CUDA_CHECK(cudaEventRecord(outputs_ready_[slot], stream_));
    return f;
  }

  // Waits for the chunk's Grams, then estimates and scores its networks on the host.
  void finish(const InFlight& f, BatchContext& context, PhaseTimes& times) {
    CS_CUDA_CHECK(cudaEventSynchronize(outputs_ready_[f.slot]));
    float kernel_ms = 0;
    CS_CUDA_CHECK(cudaEventElapsedTime(&kernel_ms, kernel_start_[f.slot], kernel_end_[f.slot]));
    times.simulate += kernel_ms / 1000.0;

    const char* host = host_slot_[f.slot].data();
    const auto* grams = reinterpret_cast<const double*>(host + f.offsets.grams);
    const auto* even_grams = reinterpret_cast<const double*>(host + f.offsets.even_grams);
    const auto* saturated = reinterpret_cast<const unsigned long long*>(host + f.offsets.saturated);
    const int n = f.chunk->n;
    const size_t size = gram_doubles(n);
    parallel_for(f.chunk->members.size(), context.host_threads, times, [&](size_t i, PhaseTimes& local) {
      const size_t member = f.chunk->members[i];
      const NetworkTask& task = context.batch[member];
      const Gram all = unpack_gram(grams + i * size, n, transitions_all(task.timesteps),
                                   static_cast<int64_t>(saturated[2 * i]));
      std::optional<Gram> even;
      if (f.chunk->perturb)
        even = unpack_gram(even_grams + i * size, n, transitions_even(task.timesteps),
                           static_cast<int64_t>(saturated[2 * i + 1]));
      (*context.results)[member] =
          score_network(task, *context.grid, f.A[i], f.empty[i] != 0, all, even ? &*even : nullptr, local);
    });
  }

  int device_;
  std::string name_;
  size_t shared_limit_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t kernel_start_[2] = {}, kernel_end_[2] = {}, outputs_ready_[2] = {};
  DeviceArena device_arena_;
  PinnedArena host_slot_[2];
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const std::vector<int>& devices, int host_threads)
      : host_threads_(host_threads > 0 ? host_threads
                                       : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))),
        cpu_(make_cpu_backend(host_threads)) {
    for (int d : devices) workers_.push_back(std::make_unique<DeviceWorker>(d));
  }

  std::string name() const override { return "cuda"; }

  // Another model family: its own CUDA path, the batch cut into one contiguous slice per device;
  // families without one run on the CPU backend.
  std::vector<NetworkResult> run_family_batch(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                              PhaseTimes& times) {
    if (!grid.family->has_cuda_path()) return cpu_->run_batch(batch, grid, times);
    const size_t devices = workers_.size(), per_device = (batch.size() + devices - 1) / devices;
    std::vector<std::vector<NetworkResult>> parts(devices);
    std::vector<PhaseTimes> part_times(devices);
    std::vector<std::exception_ptr> failures(devices);
    {
      std::vector<std::jthread> threads;
      for (size_t d = 0; d < devices && d * per_device < batch.size(); ++d)
        threads.emplace_back([&, d] {
          try {
            const size_t begin = d * per_device, count = std::min(per_device, batch.size() - begin);
            parts[d] = grid.family->run_on_cuda(batch.subspan(begin, count), grid, workers_[d]->device(), part_times[d]);
          } catch (...) {
            failures[d] = std::current_exception();
          }
        });
    }
    std::vector<NetworkResult> results;
    results.reserve(batch.size());
    for (size_t d = 0; d < devices; ++d) {
      if (failures[d]) std::rethrow_exception(failures[d]);
      times += part_times[d];
      for (NetworkResult& r : parts[d]) results.push_back(std::move(r));
    }
    return results;
  }
  int preferred_batch_size() const override { return 4096; }  // chunked to device memory inside run_batch
  std::string device() const override {
    std::string names;
    for (const auto& w : workers_) names += (names.empty() ? "" : "; ") + w->name();
    return fmt::format("{}; host: {} threads", names, host_threads_);
  }

  std::vector<NetworkResult> run_batch(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                       PhaseTimes& times) override {
    if (grid.family) return run_family_batch(batch, grid, times);
    std::vector<NetworkResult> results(batch.size());
    if (batch.empty()) return results;
    const std::vector<Chunk> chunks = plan(batch);

    BatchContext context;
    context.batch = batch;
    context.grid = &grid;
    context.chunks = &chunks;
    context.results = &results;
    const int devices = static_cast<int>(workers_.size());
    context.host_threads = std::max(1, host_threads_ / devices);

    std::mutex mutex;
    std::exception_ptr failure;
    {
      std::vector<std::jthread> threads;
      for (auto& worker : workers_)
        threads.emplace_back([&, w = worker.get()] {
          PhaseTimes local;
          try {
            w->process(context, local);
          } catch (...) {
            const std::lock_guard lock(mutex);
            if (!failure) failure = std::current_exception();
            context.next_chunk = chunks.size();  // the other devices stop after their current chunk
          }
          const std::lock_guard lock(mutex);
          times += local;
        });
    }
    if (failure) std::rethrow_exception(failure);
    return results;
  }

 private:
  // Chunks that every device can hold, with memory reserved for the largest; on out-of-memory the
  // share of free memory used is halved and the batch planned again.
  std::vector<Chunk> plan(std::span<const NetworkTask> batch) {
    // At least two chunks per device when the batch is large, so the host and GPU halves overlap;
    // 256 networks keep an H100 busy for about two waves of blocks.
    constexpr size_t min_chunk = 256;
    const size_t devices = workers_.size();
    const size_t balanced = std::max(min_chunk, (batch.size() + 2 * devices - 1) / (2 * devices));
    for (double fraction = 0.7; fraction > 0.7 / 64; fraction /= 2) {
      auto max_networks = [&](int n, bool perturb) {
        size_t limit = balanced;
        for (const auto& w : workers_) limit = std::min(limit, w->capacity(n, perturb, fraction));
        if (limit == 0) throw InputError(too_large_message(n, perturb));
        return limit;
      };
      std::vector<Chunk> chunks = plan_chunks(batch, max_networks);
      bool reserved = true;
      for (const auto& w : workers_) {
        size_t device_bytes = 0, host_bytes = 0;
        for (const Chunk& c : chunks) {
          const ChunkOffsets o = chunk_offsets(w->layout(c.n), c.members.size(), c.perturb);
          device_bytes = std::max(device_bytes, o.device_end);
          host_bytes = std::max(host_bytes, o.outputs_end);
        }
        reserved = reserved && w->reserve(device_bytes, host_bytes);
      }
      if (reserved) return chunks;
    }
    throw InputError(fmt::format("the CUDA backend could not reserve device or pinned host memory for even a small "
                                 "batch of networks (largest n = {}); free the GPU or use --backend cpu",
                                 std::max_element(batch.begin(), batch.end(), [](const auto& a, const auto& b) {
                                   return a.n_neurons < b.n_neurons;
                                 })->n_neurons));
  }

  std::string too_large_message(int n, bool perturb) const {
    const SimulationLayout l = workers_.front()->layout(n);
    return fmt::format("key 'model.n_neurons': one network with n = {} needs {:.1f} MiB of GPU memory, more than the "
                       "device has free; reduce n_neurons or use --backend cpu",
                       n, static_cast<double>(simulation_network_bytes(l, perturb)) / (1024.0 * 1024.0));
  }

  int host_threads_;
  std::unique_ptr<Backend> cpu_;
  std::vector<std::unique_ptr<DeviceWorker>> workers_;
};

// A known-answer check before a sweep trusts a device: small networks (shared-memory layout, and
// n = 40 with perturbation) through the whole CUDA path must give the CPU backend's scores. A wrong
// driver, architecture or kernel then shows up as a clear reason (and `auto` falls back to the CPU),
// never as wrong results. Empty when the device agrees; else what differed.
std::string self_check(int device) {
  const SweepConfig config = parse_config(R"(name = "cuda_self_check"
[model]
n_neurons = [7, 40]
timesteps = 300
p_connect = 0.3
eta = 1.0
observed_ratio = [1.0, 0.5]
perturb = true
[seeds]
list = [20261122]
[estimators]
use = ["correlation", "perturbation", "ols", "iv"]
)",
                                          "<cuda self-check>");
  const SweepGrid grid = expand_grid(config);
  PhaseTimes unused;
  const std::vector<NetworkResult> want = make_cpu_backend(1)->run_batch(grid.networks, grid, unused);
  CudaBackend one({device}, 1);
  const std::vector<NetworkResult> got = one.run_batch(grid.networks, grid, unused);
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t r = 0; r < want[i].runs.size(); ++r)
      for (int s = 0; s < score_count; ++s) {
        if (!want[i].runs[r].has(s)) continue;
        const double a = want[i].runs[r].score[s], b = got[i].runs[r].score[s];
        const bool same = (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(a));
        if (!same || got[i].runs[r].flags != want[i].runs[r].flags)
          return fmt::format("self-check on device {} failed: network n = {}, {} = {} (flags {}) on the GPU but {} "
                             "(flags {}) on the CPU",
                             device, grid.networks[i].n_neurons, score_names[s], b, got[i].runs[r].flags, a,
                             want[i].runs[r].flags);
      }
  return {};
}

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(std::vector<int> devices, int host_threads) {
  const CudaDevices seen = query_cuda_devices();
  if (seen.count == 0)
    throw InputError(fmt::format("--backend cuda: {}; use --backend cpu or auto", seen.description));
  std::vector<std::string> problems;
  std::vector<int> usable;
  const bool all = devices.empty();
  if (all)
    for (int d = 0; d < seen.count; ++d) devices.push_back(d);
  for (int d : devices) {
    std::string why;
    if (cuda::simulation_kernel_runnable(d, why) && (why = cuda::self_check(d)).empty())
      usable.push_back(d);
    else
      problems.push_back(why);
  }
  // An explicit list must be usable as given; `all` takes the usable ones.
  if (usable.empty() || (!all && !problems.empty())) {
    std::string reasons;
    for (const auto& p : problems) reasons += (reasons.empty() ? "" : "; ") + p;
    throw InputError(fmt::format("--backend cuda: {} (GPUs seen: {}); use --backend cpu or auto", reasons,
                                 seen.description));
  }
  return std::make_unique<cuda::CudaBackend>(usable, host_threads);
}

}  // namespace causalsweep
