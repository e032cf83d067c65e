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
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "causalsweep/backend.hpp"
#include "causalsweep/config.hpp"
#include "cpu_network.hpp"
#include "cuda_backend.hpp"
#include "connectivity_kernels.hpp"
#include "cuda_check.cuh"
#include "cuda_estimation.hpp"
#include "cuda_kernels.hpp"
#include "engine.hpp"
#include "least_squares_kernels.hpp"

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

// Three seeds (one keeps its ROC, so its runs are scored on the host from GPU-made A and Grams),
// the simulation's layouts (n = 7: 64 threads, Grams in shared memory; 40 and 130: 256 threads, A
// and tile in shared memory, Grams global; A in global memory, from n = 143 on an H100, is left to
// the device tests to keep this check quick), n = 130 also for the Lanczos basis and the score sort in global
// memory, both lasso solvers, both Granger tests, both decision paths of the GPU's conditional
// Granger, and Benjamini-Hochberg over p-values (conditional Granger) and over t statistics (OLS).
const char* self_check_config() {
  return R"(name = "cuda_self_check"
[model]
n_neurons = [7, 40, 130]
timesteps = 300
p_connect = 0.3
eta = 1.0
observed_ratio = [1.0, 0.5]
perturb = true
[seeds]
list = [20261122, 20261123, 20261124]
[estimators]
use = ["correlation", "perturbation", "ols", "ols_bh", "iv", "ols_bonferroni", "lasso", "lasso_cyclic",
       "granger", "granger_conditional_bh", "granger_conditional_bonferroni"]
[estimators.granger_conditional_bonferroni]
method = "granger_conditional"
correction = "bonferroni"
alpha = 0.3
[estimators.ols_bh]
method = "ols"
correction = "bh"
[estimators.granger_conditional_bh]
method = "granger_conditional"
correction = "bh"
[estimators.ols_bonferroni]
method = "ols"
intercept = true
correction = "bonferroni"
[estimators.lasso_cyclic]
method = "lasso"
solver = "cyclic"
intercept = true
[scores]
roc_seeds = [20261123]
)";
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

// The largest count for which fits(count) holds (0 if none), for a fits that holds up to some count
// and not beyond: a chunk's memory grows with its networks.
template <class Fits>
size_t largest_count(Fits fits) {
  if (!fits(1)) return 0;
  size_t low = 1, high = 2;  // fits(low), and high is past it or at the cap
  constexpr size_t cap = size_t{1} << 31;
  while (high < cap && fits(high)) {
    low = high;
    high *= 2;
  }
  if (high == cap && fits(cap)) return cap;
  while (high - low > 1) {
    const size_t mid = low + (high - low) / 2;
    (fits(mid) ? low : high) = mid;
  }
  return low;
}

constexpr size_t section_alignment = 256;
size_t align_up(size_t bytes) { return (bytes + section_alignment - 1) / section_alignment * section_alignment; }

// What the GPU does besides simulating. Both are on unless the device's self-check said otherwise;
// then the host does that part exactly as the CPU backend does.
struct DeviceMode {
  bool connectivity = true;  // generate A on the GPU (a user-given A always comes from the host)
  bool estimation = true;    // estimate and score on the GPU (the estimators that are estimable_on_gpu)
};

// Byte offsets of one chunk's arrays. The device arena and the pinned host slot use the same offsets:
// inputs go over in one copy ([0, inputs_end)) and A in a second when the host made it; per-run
// outputs come back in one copy ([saturated, outputs_end)), Grams and A only for the networks the
// host scores. Sections after host_end exist on the device only.
struct ChunkOffsets {
  size_t etas = 0, seeds = 0, timesteps = 0, p_connect = 0, stage_inputs = 0, inputs_end = 0;
  size_t saturated = 0, status = 0, singular_value = 0, stage_results = 0, outputs_end = 0;
  size_t connectivity = 0, grams = 0, even_grams = 0, host_end = 0;
  size_t scratch = 0, connectivity_scratch = 0, stage_workspace = 0, device_end = 0;
};

ChunkOffsets chunk_offsets(const SimulationLayout& layout, size_t count, bool perturb, const EstimationStage* stage,
                           size_t connectivity_scratch_per_network) {
  ChunkOffsets o;
  size_t at = 0;
  auto section = [&](size_t bytes) {
    const size_t start = at;
    at = align_up(at + bytes);
    return start;
  };
  const size_t n = static_cast<size_t>(layout.n);
  o.etas = section(count * sizeof(double));
  o.seeds = section(count * sizeof(uint64_t));
  o.timesteps = section(count * sizeof(int));
  o.p_connect = section(count * sizeof(double));
  o.stage_inputs = section(stage ? stage->input_bytes(count) : 0);
  o.inputs_end = at;
  o.saturated = section(2 * count * sizeof(unsigned long long));
  o.status = section(count * sizeof(int));
  o.singular_value = section(count * sizeof(double));
  o.stage_results = section(stage ? stage->result_bytes(count) : 0);
  o.outputs_end = at;
  o.connectivity = section(count * n * n * sizeof(double));
  o.grams = section(count * gram_doubles(layout.n) * sizeof(double));
  o.even_grams = section(perturb ? count * gram_doubles(layout.n) * sizeof(double) : 0);
  o.host_end = at;
  o.scratch = section(count * layout.scratch_doubles * sizeof(double));
  o.connectivity_scratch = section(count * connectivity_scratch_per_network * sizeof(double));
  o.stage_workspace = section(stage ? stage->workspace_bytes(count) : 0);
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

// Device workers alive in this process, per device: a device in use must not be reset.
std::mutex live_workers_mutex;
std::map<int, int> live_workers;
void count_worker(int device, int change) {
  const std::lock_guard lock(live_workers_mutex);
  live_workers[device] += change;
}
bool device_in_use(int device) {
  const std::lock_guard lock(live_workers_mutex);
  const auto found = live_workers.find(device);
  return found != live_workers.end() && found->second > 0;
}
struct LiveWorker {  // counted from construction to destruction, also when a constructor throws
  int device;
  explicit LiveWorker(int d) : device(d) { count_worker(device, +1); }
  ~LiveWorker() { count_worker(device, -1); }
  LiveWorker(const LiveWorker&) = delete;
  LiveWorker& operator=(const LiveWorker&) = delete;
};

// One GPU: its stream, its memory and its half of the pipeline.
class DeviceWorker {
 public:
  explicit DeviceWorker(int device, DeviceMode mode) : device_(device), mode_(mode), live_(device) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    CS_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    for (int slot = 0; slot < 2; ++slot)
      for (cudaEvent_t& event : events_[slot])  // blocking: a waiting worker sleeps instead of spinning on a core
        CS_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventBlockingSync));
    cudaDeviceProp prop{};
    CS_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = fmt::format("{} (device {}, sm_{}{}, {} MiB)", prop.name, device_, prop.major, prop.minor,
                        prop.totalGlobalMem >> 20);
    shared_limit_ = shared_memory_limit(device_);
    multiprocessors_ = prop.multiProcessorCount;
  }
  DeviceWorker(const DeviceWorker&) = delete;
  DeviceWorker& operator=(const DeviceWorker&) = delete;
  ~DeviceWorker() {
    cudaSetDevice(device_);  // no checks in a destructor: release what exists
    cudaStreamSynchronize(stream_);
    stages_.clear();
    solver_.reset();  // its cuBLAS / cuSOLVER handles use the stream
    for (int slot = 0; slot < 2; ++slot)
      for (cudaEvent_t event : events_[slot]) cudaEventDestroy(event);
    cudaStreamDestroy(stream_);
  }

  int device() const { return device_; }
  const std::string& name() const { return name_; }
  size_t shared_limit() const { return shared_limit_; }
  bool estimates_on_host(int n, bool perturb) const { return host_estimated_.count({n, perturb}) > 0; }
  void estimate_on_host(int n, bool perturb) {
    host_estimated_.insert({n, perturb});
    stages_.erase({n, perturb});
  }
  void lower_shared_limit(size_t bytes) { shared_limit_ = std::min(shared_limit_, bytes); }
  const DeviceMode& mode() const { return mode_; }

  SimulationLayout layout(int n, bool perturb) const { return choose_simulation_layout(n, shared_limit_, perturb); }

  // A new batch: estimation stages are made per (n, perturb) for this grid when it is estimable on the GPU.
  void begin_batch(const SweepGrid& grid) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    CS_CUDA_CHECK(cudaStreamSynchronize(stream_));
    stages_.clear();
    host_estimated_.clear();
    grid_ = &grid;
    estimate_on_gpu_ = mode_.estimation && has_gpu_estimators(grid);
    connectivity_on_gpu_ = mode_.connectivity && grid.model.connectivity.empty();
  }

  ChunkOffsets offsets(int n, bool perturb, size_t count) {
    const size_t per_network = connectivity_on_gpu_ ? connectivity_scratch_doubles(n, shared_limit_) : 0;
    return chunk_offsets(layout(n, perturb), count, perturb, stage(n, perturb), per_network);
  }

  // Networks of size n that one chunk may hold: its device sections within `fraction` of the memory
  // this process could use on the device (free plus what it already holds), and its host sections
  // within `pinned_limit` bytes per pinned slot unless one network alone is larger (n in the
  // thousands): then one network per chunk. A chunk's fixed sections (the BH tables, the active-set
  // lasso's scratch) count once, not per network.
  size_t capacity(int n, bool perturb, double fraction, size_t pinned_limit) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    size_t free_bytes = 0, total_bytes = 0;
    CS_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const double budget = fraction * static_cast<double>(free_bytes + device_arena_.size());
    if (budget < static_cast<double>(offsets(n, perturb, 1).device_end) && stage(n, perturb)) {
      // The estimation stage's buffers (about twice the Grams) do not fit beside one network:
      // networks of this size simulate on the GPU and are estimated on the host.
      estimate_on_host(n, perturb);
    }
    const size_t on_device = largest_count([&](size_t count) {
      return static_cast<double>(offsets(n, perturb, count).device_end) <= budget;
    });
    const size_t in_pinned_slot =
        largest_count([&](size_t count) { return offsets(n, perturb, count).host_end <= pinned_limit; });
    return std::min(on_device, std::max<size_t>(1, in_pinned_slot));
  }

  // Memory for the largest chunk: what ran short, if anything.
  enum class Shortage { none, device, host };
  Shortage reserve(size_t device_bytes, size_t host_bytes) {
    CS_CUDA_CHECK(cudaSetDevice(device_));
    if (!device_arena_.reserve(device_bytes)) return Shortage::device;
    if (!host_slot_[0].reserve(host_bytes) || !host_slot_[1].reserve(host_bytes)) return Shortage::host;
    return Shortage::none;
  }

  // Takes chunks from the queue until it is empty; chunk k+1 runs on the GPU while the host finishes chunk k.
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
  // Events of one slot, in stream order.
  enum Event { generate_start, simulate_start, simulate_end, estimate_end, outputs_ready, event_count };

  // A chunk whose work has been queued on the stream.
  struct InFlight {
    const Chunk* chunk = nullptr;
    int slot = 0;
    ChunkOffsets offsets;
    const EstimationStage* stage = nullptr;
    std::vector<Eigen::MatrixXd> A;  // the truth when the host made it
    std::vector<char> empty;         // host-made A0 had no connection
    std::vector<char> host_scored;   // every run estimated and scored on the host (ROC seeds, or no stage)
    bool all_grams = false;          // every network's Grams come back (some estimators run on the host)
  };

  // The stage for networks of size n, or null when the host estimates them (no GPU estimator at
  // this n, or the stage's buffers do not fit the device beside one network).
  EstimationStage* stage(int n, bool perturb) {
    if (!estimate_on_gpu_ || !has_gpu_estimators(*grid_, n) || host_estimated_.count({n, perturb})) return nullptr;
    auto& slot = stages_[{n, perturb}];
    if (!slot) {
      CS_CUDA_CHECK(cudaSetDevice(device_));  // the handles and buffers belong to this worker's device
      if (!solver_) solver_ = LeastSquaresSolver::on_device(stream_);
      const Executor executor{true, stream_, shared_limit_, multiprocessors_};
      slot = std::make_unique<EstimationStage>(*grid_, n, perturb, executor, solver_.get());
    }
    return slot.get();
  }

  // Host: the per-network inputs (and A when the host makes it) into the pinned slot. Device: A,
  // the simulation, the estimation and the copies back, all queued on this worker's stream.
  InFlight submit(const Chunk& chunk, int slot, BatchContext& context, PhaseTimes& times) {
    const SweepGrid& grid = *context.grid;
    InFlight f;
    f.chunk = &chunk;
    f.slot = slot;
    const SimulationLayout sim = layout(chunk.n, chunk.perturb);
    const size_t count = chunk.members.size();
    f.stage = stage(chunk.n, chunk.perturb);
    f.offsets = offsets(chunk.n, chunk.perturb, count);
    const ChunkOffsets& o = f.offsets;
    f.host_scored.resize(count);
    if (!connectivity_on_gpu_) {
      f.A.resize(count);
      f.empty.resize(count);
    }

    char* host = host_slot_[slot].data();
    const size_t n = static_cast<size_t>(chunk.n);
    std::vector<const NetworkTask*> tasks(count);
    parallel_for(count, context.host_threads, times, [&](size_t i, PhaseTimes& local) {
      const auto start = std::chrono::steady_clock::now();
      const NetworkTask& task = context.batch[chunk.members[i]];
      tasks[i] = &task;
      reinterpret_cast<double*>(host + o.etas)[i] = task.eta;
      reinterpret_cast<uint64_t*>(host + o.seeds)[i] = task.seed;
      reinterpret_cast<int*>(host + o.timesteps)[i] = task.timesteps;
      reinterpret_cast<double*>(host + o.p_connect)[i] = task.p_connect;
      f.host_scored[i] = !f.stage || grid.keeps_roc(task.seed);
      if (!connectivity_on_gpu_) {
        bool empty = false;
        f.A[i] = network_connectivity(task, grid.model, empty);
        f.empty[i] = empty;
        std::copy(f.A[i].data(), f.A[i].data() + n * n, reinterpret_cast<double*>(host + o.connectivity) + i * n * n);
      }
      local.generate += seconds_since(start);
    });
    if (f.stage) f.stage->prepare_inputs(tasks, host + o.stage_inputs);

    char* device = device_arena_.data();
    auto* connectivity = reinterpret_cast<double*>(device + o.connectivity);
    auto* grams = reinterpret_cast<double*>(device + o.grams);
    auto* even_grams = chunk.perturb ? reinterpret_cast<double*>(device + o.even_grams) : nullptr;
    cudaEvent_t* events = events_[slot];
    CS_CUDA_CHECK(cudaMemcpyAsync(device, host, o.inputs_end, cudaMemcpyHostToDevice, stream_));
    CS_CUDA_CHECK(cudaEventRecord(events[generate_start], stream_));
    if (connectivity_on_gpu_) {
      ConnectivityBatch a;
      a.networks = static_cast<int>(count);
      a.n = chunk.n;
      a.p_inhibitory = grid.model.p_inhibitory;
      a.seeds = reinterpret_cast<const uint64_t*>(device + o.seeds);
      a.p_connect = reinterpret_cast<const double*>(device + o.p_connect);
      a.connectivity = connectivity;
      a.singular_value = reinterpret_cast<double*>(device + o.singular_value);
      a.status = reinterpret_cast<int*>(device + o.status);
      a.scratch = reinterpret_cast<double*>(device + o.connectivity_scratch);
      launch_connectivity(a, shared_limit_, stream_);
    } else {
      CS_CUDA_CHECK(cudaMemcpyAsync(connectivity, host + o.connectivity, count * n * n * sizeof(double),
                                    cudaMemcpyHostToDevice, stream_));
    }

    SimulationBatch batch;
    batch.networks = static_cast<int>(count);
    batch.nonlinearity = grid.model.nonlinearity;
    batch.perturb = chunk.perturb;
    batch.seeds = reinterpret_cast<const uint64_t*>(device + o.seeds);
    batch.etas = reinterpret_cast<const double*>(device + o.etas);
    batch.timesteps = reinterpret_cast<const int*>(device + o.timesteps);
    batch.connectivity = connectivity;
    batch.grams = grams;
    batch.even_grams = even_grams;
    batch.saturated = reinterpret_cast<unsigned long long*>(device + o.saturated);
    batch.scratch = sim.scratch_doubles ? reinterpret_cast<double*>(device + o.scratch) : nullptr;
    CS_CUDA_CHECK(cudaEventRecord(events[simulate_start], stream_));
    launch_simulation(sim, batch, stream_);
    CS_CUDA_CHECK(cudaEventRecord(events[simulate_end], stream_));

    if (f.stage) {
      StageBuffers buffers;
      buffers.networks = count;
      buffers.grams = grams;
      buffers.even_grams = even_grams;
      buffers.connectivity = connectivity;
      buffers.etas = batch.etas;
      buffers.inputs = device + o.stage_inputs;
      buffers.workspace = device + o.stage_workspace;
      buffers.results = device + o.stage_results;
      f.stage->run(buffers);
    }
    CS_CUDA_CHECK(cudaEventRecord(events[estimate_end], stream_));

    auto copy_back = [&](size_t offset, size_t bytes) {
      CS_CUDA_CHECK(cudaMemcpyAsync(host + offset, device + offset, bytes, cudaMemcpyDeviceToHost, stream_));
    };
    copy_back(o.saturated, o.outputs_end - o.saturated);
    // The host-scored networks' Grams (and A when the GPU made it): all of them in one copy, or one by one.
    const size_t gram_bytes = gram_doubles(chunk.n) * sizeof(double), a_bytes = n * n * sizeof(double);
    const size_t host_count = static_cast<size_t>(std::count(f.host_scored.begin(), f.host_scored.end(), 1));
    f.all_grams = host_count == count || f.stage->has_host_estimators();
    if (f.all_grams) {
      copy_back(o.grams, count * gram_bytes);
      if (chunk.perturb) copy_back(o.even_grams, count * gram_bytes);
      if (connectivity_on_gpu_) copy_back(o.connectivity, count * a_bytes);
    } else if (host_count > 0) {
      for (size_t i = 0; i < count; ++i) {
        if (!f.host_scored[i]) continue;
        copy_back(o.grams + i * gram_bytes, gram_bytes);
        if (chunk.perturb) copy_back(o.even_grams + i * gram_bytes, gram_bytes);
        if (connectivity_on_gpu_) copy_back(o.connectivity + i * a_bytes, a_bytes);
      }
    }
    CS_CUDA_CHECK(cudaEventRecord(events[outputs_ready], stream_));
    return f;
  }

  // Waits for the chunk's outputs, then turns them into results: per-run scores from the GPU, or
  // the host's estimation from the Grams; a network whose A the GPU could not scale (its
  // singular-value iteration did not converge) runs again on the CPU from the start.
  void finish(const InFlight& f, BatchContext& context, PhaseTimes& times) {
    cudaEvent_t* events = events_[f.slot];
    CS_CUDA_CHECK(cudaEventSynchronize(events[outputs_ready]));
    float generate_ms = 0, simulate_ms = 0, estimate_ms = 0;
    CS_CUDA_CHECK(cudaEventElapsedTime(&generate_ms, events[generate_start], events[simulate_start]));
    CS_CUDA_CHECK(cudaEventElapsedTime(&simulate_ms, events[simulate_start], events[simulate_end]));
    CS_CUDA_CHECK(cudaEventElapsedTime(&estimate_ms, events[simulate_end], events[estimate_end]));
    if (connectivity_on_gpu_) times.generate += generate_ms / 1000.0;
    times.simulate += simulate_ms / 1000.0;
    times.solve += estimate_ms / 1000.0;

    const SweepGrid& grid = *context.grid;
    const ChunkOffsets& o = f.offsets;
    const char* host = host_slot_[f.slot].data();
    const auto* saturated = reinterpret_cast<const unsigned long long*>(host + o.saturated);
    const auto* status = reinterpret_cast<const int*>(host + o.status);
    const auto* grams = reinterpret_cast<const double*>(host + o.grams);
    const auto* even_grams = reinterpret_cast<const double*>(host + o.even_grams);
    const auto* connectivity = reinterpret_cast<const double*>(host + o.connectivity);
    const int n = f.chunk->n;
    const size_t size = gram_doubles(n), count = f.chunk->members.size();
    parallel_for(count, context.host_threads, times, [&](size_t i, PhaseTimes& local) {
      const size_t member = f.chunk->members[i];
      const NetworkTask& task = context.batch[member];
      NetworkResult& result = (*context.results)[member];
      if (connectivity_on_gpu_ && status[i] == connectivity_unconverged) {
        result = run_cpu_network(task, grid, local);
        return;
      }
      const bool empty = connectivity_on_gpu_ ? status[i] == connectivity_empty : f.empty[i] != 0;
      std::optional<Gram> all, even;
      Eigen::MatrixXd A;
      if (f.all_grams || f.host_scored[i]) {
        all = unpack_gram(grams + i * size, n, transitions_all(task.timesteps), static_cast<int64_t>(saturated[2 * i]));
        if (f.chunk->perturb)
          even = unpack_gram(even_grams + i * size, n, transitions_even(task.timesteps),
                             static_cast<int64_t>(saturated[2 * i + 1]));
        A = connectivity_on_gpu_ ? Eigen::MatrixXd(Eigen::Map<const Eigen::MatrixXd>(connectivity + i * n * n, n, n))
                                 : f.A[i];
      }
      if (f.host_scored[i]) {
        result = score_network(task, grid, A, empty, *all, even ? &*even : nullptr, local);
        return;
      }
      const auto host_run = [&](int r, int e, uint32_t network_flags) {
        return score_one_run(task, grid, A, r, e, *all, even ? &*even : nullptr, network_flags, local);
      };
      result = f.stage->assemble(task, i, count, host + o.stage_results, empty, static_cast<int64_t>(saturated[2 * i]),
                                 host_run);
    });
  }

  int device_;
  DeviceMode mode_;
  LiveWorker live_;
  std::string name_;
  size_t shared_limit_ = 0;
  int multiprocessors_ = 0;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t events_[2][event_count] = {};
  DeviceArena device_arena_;
  PinnedArena host_slot_[2];
  const SweepGrid* grid_ = nullptr;
  bool estimate_on_gpu_ = false, connectivity_on_gpu_ = false;
  std::unique_ptr<LeastSquaresSolver> solver_;  // one set of cuBLAS / cuSOLVER handles per worker
  std::map<std::pair<int, bool>, std::unique_ptr<EstimationStage>> stages_;
  std::set<std::pair<int, bool>> host_estimated_;  // sizes whose stage did not fit the device
};

class CudaBackend final : public Backend {
 public:
  // One worker per device, each with what its self-check allows it to do on the GPU.
  CudaBackend(const std::vector<std::pair<int, DeviceMode>>& devices, int host_threads)
      : host_threads_(host_threads > 0 ? host_threads
                                       : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))),
        cpu_(make_cpu_backend(host_threads)) {
    for (const auto& [d, mode] : devices) workers_.push_back(std::make_unique<DeviceWorker>(d, mode));
    // Every worker plans with the smallest device's shared memory, so a network's layout (and so
    // its last bits) does not depend on which GPU of a mixed node took its chunk.
    size_t shared_limit = workers_.front()->shared_limit();
    for (const auto& w : workers_) shared_limit = std::min(shared_limit, w->shared_limit());
    for (const auto& w : workers_) w->lower_shared_limit(shared_limit);
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
    std::string text = fmt::format("{}; host: {} threads", names, host_threads_);
    for (const auto& note : notes_) text += "; " + note;
    return text;
  }
  // A line for device(): what a device's self-check moved back to the host, and why.
  void add_note(std::string note) { notes_.push_back(std::move(note)); }

  std::vector<NetworkResult> run_batch(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                       PhaseTimes& times) override {
    if (grid.family) return run_family_batch(batch, grid, times);
    std::vector<NetworkResult> results(batch.size());
    if (batch.empty()) return results;
    for (auto& worker : workers_) worker->begin_batch(grid);
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
  // Chunks that every device can hold, with memory reserved for the largest. When an allocation
  // fails, the budget that ran short (the share of free device memory, or the pinned slots' size)
  // is halved and the batch planned again.
  std::vector<Chunk> plan(std::span<const NetworkTask> batch) {
    // At least two chunks per device when the batch is large, so the host and GPU halves overlap;
    // 256 networks keep an H100 busy for about two waves of blocks.
    constexpr size_t min_chunk = 256;
    const size_t devices = workers_.size();
    const size_t balanced = std::max(min_chunk, (batch.size() + 2 * devices - 1) / (2 * devices));
    double fraction = 0.7;
    size_t pinned_limit = size_t{1} << 30;
    for (int attempt = 0; attempt < 16 && fraction > 0.7 / 64; ++attempt) {
      auto max_networks = [&](int n, bool perturb) {
        size_t limit = balanced;
        for (const auto& w : workers_) limit = std::min(limit, w->capacity(n, perturb, fraction, pinned_limit));
        if (limit == 0) throw InputError(too_large_message(n, perturb));
        // Where one device estimates this size on the host, all do: a result must not depend on the device.
        const bool on_host = std::any_of(workers_.begin(), workers_.end(),
                                         [&](const auto& w) { return w->estimates_on_host(n, perturb); });
        if (on_host)
          for (const auto& w : workers_) w->estimate_on_host(n, perturb);
        return limit;
      };
      std::vector<Chunk> chunks = plan_chunks(batch, max_networks);
      DeviceWorker::Shortage shortage = DeviceWorker::Shortage::none;
      for (const auto& w : workers_) {
        size_t device_bytes = 0, host_bytes = 0;
        for (const Chunk& c : chunks) {
          const ChunkOffsets o = w->offsets(c.n, c.perturb, c.members.size());
          device_bytes = std::max(device_bytes, o.device_end);
          host_bytes = std::max(host_bytes, o.host_end);
        }
        shortage = w->reserve(device_bytes, host_bytes);
        if (shortage != DeviceWorker::Shortage::none) break;
      }
      if (shortage == DeviceWorker::Shortage::none) return chunks;
      if (shortage == DeviceWorker::Shortage::device) {
        fraction /= 2;
      } else {
        const bool one_network_per_chunk = std::all_of(chunks.begin(), chunks.end(), [](const Chunk& c) {
          return c.members.size() == 1;
        });
        if (one_network_per_chunk) break;  // no smaller chunk to try
        pinned_limit /= 2;
      }
    }
    throw InputError(fmt::format("the CUDA backend could not reserve device or pinned host memory for even a small "
                                 "batch of networks (largest n = {}); free the GPU or host memory, or use --backend cpu",
                                 std::max_element(batch.begin(), batch.end(), [](const auto& a, const auto& b) {
                                   return a.n_neurons < b.n_neurons;
                                 })->n_neurons));
  }

  std::string too_large_message(int n, bool perturb) const {
    const ChunkOffsets one = workers_.front()->offsets(n, perturb, 1);
    return fmt::format("key 'model.n_neurons': one network with n = {} needs {:.1f} MiB of GPU memory, more than the "
                       "device has free; reduce n_neurons or use --backend cpu",
                       n, static_cast<double>(one.device_end) / (1024.0 * 1024.0));
  }

  int host_threads_;
  std::unique_ptr<Backend> cpu_;
  std::vector<std::unique_ptr<DeviceWorker>> workers_;
  std::vector<std::string> notes_;
};

// The CPU's answers to the self-check (about 1.8 thread-seconds, mostly the lasso at n = 130):
// computed at most once per make_cuda_backend, on the host's threads, from when the first device is
// about to be checked, while the devices run theirs.
class SelfCheckReference {
 public:
  explicit SelfCheckReference(int host_threads) : host_threads_(host_threads) {}
  void start() {
    if (future_.valid()) return;
    future_ = std::async(std::launch::async, [threads = host_threads_] {
                const SweepGrid grid = expand_grid(parse_config(self_check_config(), "<cuda self-check>"));
                PhaseTimes unused;
                return make_cpu_backend(threads)->run_batch(grid.networks, grid, unused);
              }).share();
  }
  const std::vector<NetworkResult>& get() {
    start();
    return future_.get();
  }

 private:
  int host_threads_;
  std::shared_future<std::vector<NetworkResult>> future_;
};

// A known-answer check before a sweep trusts a device: small networks (shared-memory layout, and
// n = 40 with perturbation) through the whole CUDA path must give the CPU backend's scores. A wrong
// driver, architecture or kernel then shows up as a clear reason (and `auto` falls back to the CPU),
// never as wrong results. `mode` says which GPU stages take part. Empty when the device agrees; else
// what differed.
std::string self_check(int device, DeviceMode mode, SelfCheckReference& reference) {
  const SweepConfig config = parse_config(self_check_config(), "<cuda self-check>");
  const SweepGrid grid = expand_grid(config);
  PhaseTimes unused;
  std::vector<NetworkResult> got;
  try {
    CudaBackend one({{device, mode}}, 1);
    got = one.run_batch(grid.networks, grid, unused);
  } catch (const std::exception& e) {
    return fmt::format("self-check on device {} failed: {}", device, e.what());
  }
  const std::vector<NetworkResult>& want = reference.get();
  if (got.size() != want.size()) return fmt::format("self-check on device {} failed: results missing", device);
  for (size_t i = 0; i < want.size(); ++i) {
    const NetworkResult &w = want[i], &g = got[i];
    if (g.runs.size() != w.runs.size() || g.network_flags != w.network_flags || g.saturated_logits != w.saturated_logits)
      return fmt::format("self-check on device {} failed: network n = {} has {} runs, flags {}, {} saturated logits on "
                         "the GPU but {}, {}, {} on the CPU",
                         device, grid.networks[i].n_neurons, g.runs.size(), g.network_flags, g.saturated_logits,
                         w.runs.size(), w.network_flags, w.saturated_logits);
    for (size_t r = 0; r < w.runs.size(); ++r)
      for (int s = 0; s < score_count; ++s) {
        const double a = w.runs[r].score[s], b = g.runs[r].score[s];
        const bool same = (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(a));
        if ((w.runs[r].has(s) && !same) || g.runs[r].flags != w.runs[r].flags || g.runs[r].scored != w.runs[r].scored)
          return fmt::format("self-check on device {} failed: network n = {}, {} {} = {} (flags {}) on the GPU but {} "
                             "(flags {}) on the CPU",
                             device, grid.networks[i].n_neurons, grid.estimators[w.runs[r].estimator_index].label,
                             score_names[s], b, g.runs[r].flags, a, w.runs[r].flags);
      }
  }
  return {};
}

// What a device may do: everything on the GPU when that passes the self-check, else the simulation
// only (A, estimation and scores on the host) with the reason in `note`; nullopt (and `why`) when
// even that fails. A failure of either check (a wrong result or an error) is a reason, never a crash.
std::optional<DeviceMode> checked_mode(int device, SelfCheckReference& reference, std::string& why,
                                       std::string& note) {
  try {
    if (!simulation_kernel_runnable(device, why)) return std::nullopt;
  } catch (const std::exception& e) {
    why = fmt::format("device {}: {}", device, e.what());
    return std::nullopt;
  }
  reference.start();
  const std::string full = self_check(device, DeviceMode{true, true}, reference);
  if (full.empty()) return DeviceMode{true, true};
  // A fault in a kernel (an illegal address) leaves the device's context unusable for the process:
  // start a fresh one, so that the simulation-only check tests the device, not the old fault; but
  // only when no backend of this process is using the device (the check's own is gone by now).
  if (!device_in_use(device)) {
    cudaSetDevice(device);
    cudaDeviceReset();
    cudaGetLastError();
  }
  const std::string simulation = self_check(device, DeviceMode{false, false}, reference);
  if (!simulation.empty()) {
    why = fmt::format("{}; then, with A, estimation and scores on the host: {}", full, simulation);
    return std::nullopt;
  }
  note = fmt::format("device {}: A, estimation and scores on the host ({})", device, full);
  return DeviceMode{false, false};
}

}  // namespace
}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(std::vector<int> devices, int host_threads) {
  const CudaDevices seen = query_cuda_devices();
  if (seen.count == 0)
    throw InputError(fmt::format("--backend cuda: {}; use --backend cpu or auto", seen.description));
  cuda::SelfCheckReference reference(host_threads);  // 0: every core
  std::vector<std::string> problems, notes;
  std::vector<std::pair<int, cuda::DeviceMode>> usable;
  const bool all = devices.empty();
  if (all)
    for (int d = 0; d < seen.count; ++d) devices.push_back(d);
  for (int d : devices) {
    std::string why, note;
    if (const auto mode = cuda::checked_mode(d, reference, why, note)) {
      usable.emplace_back(d, *mode);
      if (!note.empty()) notes.push_back(note);
    } else {
      problems.push_back(why);
    }
  }
  // An explicit list must be usable as given; `all` takes the usable ones.
  if (usable.empty() || (!all && !problems.empty())) {
    std::string reasons;
    for (const auto& p : problems) reasons += (reasons.empty() ? "" : "; ") + p;
    throw InputError(fmt::format("--backend cuda: {} (GPUs seen: {}); use --backend cpu or auto", reasons,
                                 seen.description));
  }
  // One mode for every device: where one may only simulate, all do, so that a run's estimate does
  // not depend on which device took its chunk.
  cuda::DeviceMode common;
  for (const auto& [d, mode] : usable) {
    common.connectivity = common.connectivity && mode.connectivity;
    common.estimation = common.estimation && mode.estimation;
  }
  for (auto& [d, mode] : usable) mode = common;
  if (usable.size() > 1 && !notes.empty())
    notes.push_back("so every device simulates only, for results that do not depend on the device");
  auto backend = std::make_unique<cuda::CudaBackend>(usable, host_threads);
  for (const auto& note : notes) backend->add_note(note);
  return backend;
}

}  // namespace causalsweep
