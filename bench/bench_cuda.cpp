// GPU timings of the CUDA backend (needs a CUDA device; prints one JSON object per measurement).
//   bench_cuda kernel NETWORKS N T [THREADS BLOCKS_PER_SM]
//                                      the simulation + Gram kernel alone (CUDA events), with its
//                                      counted multiply-adds and global-memory bytes; in the layout
//                                      the backend chooses, or THREADS per block with the shared
//                                      memory that lets BLOCKS_PER_SM blocks share an SM
//   bench_cuda table                   the kernel for n in {20, 50, 100, 200, 500} x T in {1e3, 1e4, 1e5}
//   bench_cuda backend NETWORKS N T [HOST_THREADS [LASSO_SOLVER]]
//                                      workload W end to end through the backend: A, simulation,
//                                      correlation + lasso + ols + iv at 5 observed ratios, scores, all
//                                      on the GPU; LASSO_SOLVER "active_set" (the default) or "cyclic"
//   bench_cuda bh_tables K...          host only (no device): Benjamini-Hochberg's critical-|t| table
//                                      at k = K, T = 5000, computed on all cores, then cached
//   bench_cuda ceilings                the device's copy bandwidth and FP64 / FP32 FMA rates, measured
// Peak rates for the roofline: CS_PEAK_FMA_PER_S (default 16.75e12: the H100 SXM's plain FP64 units,
// 33.5 TFLOPS, which this kernel uses; its FP64 tensor cores would double that) and
// CS_PEAK_BYTES_PER_S (default 3.35e12, H100 SXM HBM3; H200: 4.8e12); bench/run_gpu.sh sets both
// from `bench_cuda ceilings`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "causalsweep/backend.hpp"
#include "ceilings.hpp"
#include "cuda_check.cuh"
#include "cuda_estimation.hpp"
#include "cuda_kernels.hpp"
#include "engine.hpp"
#include "workload_w.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

double env_or(const char* name, double fallback) {
  const char* value = std::getenv(name);
  return value ? std::atof(value) : fallback;
}

// Multiply-adds the kernel must do per network: per transition the Gram's lower ww, wu and uu, and A x.
double counted_fma(int n, int timesteps) {
  const double p = 2.0 * n + 1, q = 2.0 * n;
  return (timesteps - 1.0) * (p * (p + 1) / 2 + p * q + q + static_cast<double>(n) * n);
}

// Global-memory bytes per network as this kernel moves them: the Gram's updated entries (lower ww,
// wu, uu) read and written once per tile unless the Gram stays in shared memory, the finished Gram
// written once, A read once (every step when it is not in shared memory), and each tile column
// written and read once when the tile is in global memory.
double counted_bytes(const cuda::SimulationLayout& l, int timesteps) {
  const double p = 2.0 * l.n + 1, q = 2.0 * l.n;
  const double tiles = std::ceil((timesteps - 1.0) / l.tile);
  const double updated = (p * (p + 1) / 2 + p * q + q) * 8;
  double bytes = static_cast<double>(cuda::gram_doubles(l.n)) * 8 + static_cast<double>(l.n) * l.n * 8;
  if (!l.gram_in_shared) bytes += tiles * 2 * updated;
  if (!l.a_in_shared) bytes += (timesteps - 1.0) * l.n * l.n * 8;
  if (!l.tile_in_shared) bytes += (timesteps - 1.0) * l.column_stride * 8 * 2;
  return bytes;
}

// threads = 0: the layout the backend chooses for n; else `threads` per block and the shared memory
// that lets `blocks_per_sm` blocks share an SM (the limit plus 1 KiB reserved per block, split).
nlohmann::json time_kernel(int networks, int n, int timesteps, int threads = 0, int blocks_per_sm = 1) {
  const size_t limit = cuda::shared_memory_limit(0);
  const size_t budget = (limit + 1024) / static_cast<size_t>(std::max(1, blocks_per_sm)) - 1024;
  const cuda::SimulationLayout layout = threads > 0 ? cuda::plan_simulation_layout(n, budget, false, threads)
                                                    : cuda::choose_simulation_layout(n, limit, false);
  const size_t nn = static_cast<size_t>(n) * n, size = cuda::gram_doubles(n);
  // A of a few seeds, repeated: the kernel's time does not depend on which A it is.
  std::vector<double> connectivity(static_cast<size_t>(networks) * nn);
  const int distinct = std::min(networks, 16);
  for (int i = 0; i < distinct; ++i) {
    bool empty = false;
    const Eigen::MatrixXd A = cs::generate_connectivity(static_cast<uint64_t>(i), n, 0.1, empty);
    for (int k = i; k < networks; k += distinct) std::copy(A.data(), A.data() + nn, connectivity.begin() + static_cast<std::ptrdiff_t>(k * nn));
  }
  std::vector<uint64_t> seeds(static_cast<size_t>(networks));
  for (int i = 0; i < networks; ++i) seeds[static_cast<size_t>(i)] = static_cast<uint64_t>(i);
  const std::vector<double> etas(static_cast<size_t>(networks), 2.0);
  const std::vector<int> steps(static_cast<size_t>(networks), timesteps);

  void *d_connectivity, *d_seeds, *d_etas, *d_steps, *d_grams, *d_saturated, *d_scratch;
  CS_CUDA_CHECK(cudaMalloc(&d_connectivity, connectivity.size() * 8));
  CS_CUDA_CHECK(cudaMalloc(&d_seeds, seeds.size() * 8));
  CS_CUDA_CHECK(cudaMalloc(&d_etas, etas.size() * 8));
  CS_CUDA_CHECK(cudaMalloc(&d_steps, steps.size() * 4));
  CS_CUDA_CHECK(cudaMalloc(&d_grams, static_cast<size_t>(networks) * size * 8));
  CS_CUDA_CHECK(cudaMalloc(&d_saturated, static_cast<size_t>(networks) * 16));
  CS_CUDA_CHECK(cudaMalloc(&d_scratch, std::max<size_t>(1, static_cast<size_t>(networks) * layout.scratch_doubles * 8)));
  CS_CUDA_CHECK(cudaMemcpy(d_connectivity, connectivity.data(), connectivity.size() * 8, cudaMemcpyHostToDevice));
  CS_CUDA_CHECK(cudaMemcpy(d_seeds, seeds.data(), seeds.size() * 8, cudaMemcpyHostToDevice));
  CS_CUDA_CHECK(cudaMemcpy(d_etas, etas.data(), etas.size() * 8, cudaMemcpyHostToDevice));
  CS_CUDA_CHECK(cudaMemcpy(d_steps, steps.data(), steps.size() * 4, cudaMemcpyHostToDevice));

  cuda::SimulationBatch batch;
  batch.networks = networks;
  batch.seeds = static_cast<const uint64_t*>(d_seeds);
  batch.etas = static_cast<const double*>(d_etas);
  batch.timesteps = static_cast<const int*>(d_steps);
  batch.connectivity = static_cast<const double*>(d_connectivity);
  batch.grams = static_cast<double*>(d_grams);
  batch.saturated = static_cast<unsigned long long*>(d_saturated);
  batch.scratch = static_cast<double*>(d_scratch);

  cudaEvent_t start, stop;
  CS_CUDA_CHECK(cudaEventCreate(&start));
  CS_CUDA_CHECK(cudaEventCreate(&stop));
  cuda::SimulationBatch warmup = batch;
  warmup.networks = std::min(networks, 8);
  cuda::launch_simulation(layout, warmup, nullptr);
  CS_CUDA_CHECK(cudaEventRecord(start, nullptr));
  cuda::launch_simulation(layout, batch, nullptr);
  CS_CUDA_CHECK(cudaEventRecord(stop, nullptr));
  CS_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CS_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  for (void* p : {d_connectivity, d_seeds, d_etas, d_steps, d_grams, d_saturated, d_scratch}) CS_CUDA_CHECK(cudaFree(p));
  CS_CUDA_CHECK(cudaEventDestroy(start));
  CS_CUDA_CHECK(cudaEventDestroy(stop));

  const double seconds = ms / 1000.0;
  const double fma = networks * counted_fma(n, timesteps), bytes = networks * counted_bytes(layout, timesteps);
  const double peak_fma = env_or("CS_PEAK_FMA_PER_S", 16.75e12), peak_bytes = env_or("CS_PEAK_BYTES_PER_S", 3.35e12);
  const double roofline_seconds = std::max(fma / peak_fma, bytes / peak_bytes);
  return {{"measure", "kernel"},
          {"networks", networks},
          {"n", n},
          {"timesteps", timesteps},
          {"tile", layout.tile},
          {"a_in_shared", layout.a_in_shared},
          {"tile_in_shared", layout.tile_in_shared},
          {"gram_in_shared", layout.gram_in_shared},
          {"threads", layout.threads},
          {"shared_bytes", layout.shared_bytes},
          {"seconds", seconds},
          {"counted_fma", fma},
          {"counted_bytes", bytes},
          {"fma_per_s", fma / seconds},
          {"bytes_per_s", bytes / seconds},
          {"peak_fma_per_s", peak_fma},
          {"peak_bytes_per_s", peak_bytes},
          {"roofline_seconds", roofline_seconds},
          {"fraction_of_roofline", roofline_seconds / seconds}};
}

nlohmann::json time_backend(int networks, int n, int timesteps, int host_threads, const std::string& lasso_solver) {
  const cs::SweepGrid grid = workload_w_grid(networks, n, timesteps,
                                             lasso_solver == "cyclic" ? cs::LassoSolver::cyclic : cs::LassoSolver::active_set);
  const auto backend = cs::make_cuda_backend({}, host_threads);
  cs::PhaseTimes times;
  const auto start = std::chrono::steady_clock::now();
  const auto results = backend->run_batch(grid.networks, grid, times);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {{"measure", "backend"},
          {"device", backend->device()},
          {"networks", networks},
          {"n", n},
          {"timesteps", timesteps},
          {"lasso_solver", lasso_solver},
          {"results", results.size()},
          {"wall_seconds", wall},
          {"gpu_simulation_seconds", times.simulate},
          // GPU seconds (events) of A and of the estimation stage plus host thread seconds of what
          // the host did (A for a user-given matrix, host-only estimators, ROC networks).
          {"phase_seconds",
           {{"generate", times.generate}, {"solve", times.solve}, {"lasso", times.lasso}, {"score", times.reduce}}}};
}

// The host's Benjamini-Hochberg table of critical |t| for ols / iv at k observed neurons (k^2
// Student-t quantiles), computed and then fetched from the cache as a stage's constructor does.
nlohmann::json time_bh_table(int k, int timesteps) {
  const double df = timesteps - 1.0 - k - 1;
  const auto start = std::chrono::steady_clock::now();
  const auto table = cuda::benjamini_hochberg_t_table(df, 0.05, k);
  const auto computed = std::chrono::steady_clock::now();
  const auto again = cuda::benjamini_hochberg_t_table(df, 0.05, k);
  const auto fetched = std::chrono::steady_clock::now();
  return {{"measure", "bh_t_table"}, {"k", k}, {"df", df}, {"ranks", table->size()},
          {"threads", std::thread::hardware_concurrency()},
          {"compute_seconds", std::chrono::duration<double>(computed - start).count()},
          {"cached_seconds", std::chrono::duration<double>(fetched - computed).count()},
          {"same_table", again == table}};
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "table";
  auto arg = [&](int i, int fallback) { return argc > i ? std::atoi(argv[i]) : fallback; };
  if (mode == "bh_tables") {  // host work only: no device needed
    for (int i = 2; i < std::max(argc, 3); ++i) std::puts(time_bh_table(arg(i, 500), 5000).dump().c_str());
    return 0;
  }
  if (cs::query_cuda_devices().count == 0) {
    std::fprintf(stderr, "bench_cuda: %s\n", cs::query_cuda_devices().description.c_str());
    return 2;
  }
  if (mode == "kernel") {
    const int threads = arg(5, 0), blocks_per_sm = arg(6, 1);
    if (threads != 0 && (threads < 32 || threads > 256 || threads % 32 != 0 || blocks_per_sm < 1 || blocks_per_sm > 32)) {
      std::fprintf(stderr, "bench_cuda kernel: THREADS must be a multiple of 32 in [32, 256] and BLOCKS_PER_SM in [1, 32] "
                           "(got %d and %d)\n", threads, blocks_per_sm);
      return 2;
    }
    std::puts(time_kernel(arg(2, 10000), arg(3, 100), arg(4, 5000), threads, blocks_per_sm).dump().c_str());
  } else if (mode == "backend") {
    const std::string lasso_solver = argc > 6 ? argv[6] : "active_set";
    if (lasso_solver != "active_set" && lasso_solver != "cyclic") {
      std::fprintf(stderr, "bench_cuda backend: LASSO_SOLVER must be active_set or cyclic (got %s)\n", lasso_solver.c_str());
      return 2;
    }
    std::puts(time_backend(arg(2, 10000), arg(3, 100), arg(4, 5000), arg(5, 0), lasso_solver).dump().c_str());
  } else if (mode == "ceilings") {
    const cuda::Ceilings c = cuda::measure_ceilings();
    std::puts(nlohmann::json{{"measure", "ceilings"},
                             {"copy_bytes_per_s", c.copy_bytes_per_s},
                             {"fp64_fma_per_s", c.fp64_fma_per_s},
                             {"fp32_fma_per_s", c.fp32_fma_per_s}}
                  .dump()
                  .c_str());
  } else if (mode == "table") {
    for (int n : {20, 50, 100, 200, 500})
      for (int timesteps : {1000, 10000, 100000}) {
        // About 2e12 counted multiply-adds per measurement, at least one network per SM and at most 10,000.
        const double work = counted_fma(n, timesteps);
        const int networks = static_cast<int>(std::clamp(2e12 / work, 132.0, 10000.0));
        std::puts(time_kernel(networks, n, timesteps).dump().c_str());
        std::fflush(stdout);
      }
  } else {
    std::fprintf(stderr,
                 "usage: bench_cuda kernel NETWORKS N T [THREADS BLOCKS_PER_SM] | table |"
                 " backend NETWORKS N T [HOST_THREADS [LASSO_SOLVER]] | bh_tables K... | ceilings\n");
    return 2;
  }
  return 0;
}
