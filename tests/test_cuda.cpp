// The CUDA backend against the CPU backend.
//
//   CudaSelection.*  backend selection, in every build (with or without nvcc, with or without a GPU)
//   CudaHost.*       without a GPU: cuRAND's addressing compiled for the host against Random123, the
//                    kernel's block program run by the host emulator against simulate_network's Grams,
//                    the host scoring path against run_cpu_network, the chunk plan
//   CudaDevice.*     on a GPU (skipped without one, with the reason): the raw stream word for word, the
//                    kernel's Grams element by element (outputs poisoned with NaN first), whole sweeps
//                    score by score against the CPU backend, and batch-size independence
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "causalsweep/backend.hpp"
#include "causalsweep/config.hpp"
#include "causalsweep/cuda_devices.hpp"

namespace cs = causalsweep;

// ---- selection (every build) ----------------------------------------------------------------

TEST(CudaSelection, CudaWithoutUsableGpuIsInputErrorAndAutoFallsBack) {
  const cs::CudaDevices gpus = cs::query_cuda_devices();
  if (gpus.count > 0) GTEST_SKIP() << "a GPU is present (" << gpus.description << "): CudaDevice.SelectionPicksCuda covers it";
  std::string note;
  try {
    cs::select_backend(cs::BackendKind::cuda, 1, note);
    FAIL() << "--backend cuda without a GPU must be refused";
  } catch (const cs::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--backend cuda"), std::string::npos) << e.what();
  }
  const auto backend = cs::select_backend(cs::BackendKind::auto_select, 1, note);
  EXPECT_EQ(backend->name(), "cpu");
  EXPECT_NE(note.find("backend cpu (auto"), std::string::npos) << note;
  EXPECT_THROW(cs::make_cuda_backend({}, 1), cs::InputError);
}

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <Eigen/Dense>

#include "cuda_backend.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "cuda_test_support.hpp"
#include "engine.hpp"
#include "host_threads.hpp"
#include "orchestrator.hpp"
#include "progress.hpp"
#include "cpu_network.hpp"

namespace cuda = causalsweep::cuda;

namespace {

#define SKIP_WITHOUT_GPU()                                                                     \
  do {                                                                                         \
    const cs::CudaDevices gpus_ = cs::query_cuda_devices();                                    \
    if (gpus_.count == 0) GTEST_SKIP() << "no CUDA device to run on: " << gpus_.description;  \
  } while (0)

using causalsweep::test::h100_shared_limit;

// One network's inputs for a launch.
struct NetworkCase {
  uint64_t seed;
  double eta;
  int timesteps;
};

// A simulation scenario: one n, mode and nonlinearity, several networks, a shared-memory limit
// (which decides where A, the tile and the state live).
struct Scenario {
  int n;
  bool perturb;
  cs::Nonlinearity f;
  double p_connect, p_inhibitory;
  size_t shared_limit;
  std::vector<NetworkCase> networks;
  std::string name;
};

std::vector<Scenario> scenarios() {
  using cs::Nonlinearity;
  const std::vector<NetworkCase> three = {{3, 2.0, 301}, {11, 0.5, 64}, {12, 0.0, 97}};
  return {
      {1, false, Nonlinearity::sigmoid, 1.0, 0.0, h100_shared_limit, three, "n1"},
      {6, true, Nonlinearity::sigmoid, 0.3, 0.0, h100_shared_limit, three, "n6_perturb"},
      {7, true, Nonlinearity::identity, 0.3, 0.0, h100_shared_limit, {{5, 1.0, 3}, {6, 1.0, 4}, {7, 2.0, 2}}, "n7_perturb_identity_short"},
      {40, false, Nonlinearity::sigmoid, 0.1, 0.0, h100_shared_limit, three, "n40_all_shared"},
      {40, false, Nonlinearity::identity, 0.1, 0.3, h100_shared_limit, three, "n40_identity_inhibitory"},
      {33, true, Nonlinearity::sigmoid, 0.2, 0.5, 0, three, "n33_perturb_all_global"},
      {160, false, Nonlinearity::sigmoid, 0.1, 0.0, h100_shared_limit, {{2, 2.0, 150}, {4, 1.0, 41}}, "n160_a_global"},
      {70, false, Nonlinearity::sigmoid, 0.1, 0.2, 16 * 1024, {{2, 2.0, 90}, {9, 1.0, 33}}, "n70_16k_tile_global"},
      {70, true, Nonlinearity::sigmoid, 0.1, 0.0, 48 * 1024, {{2, 2.0, 90}}, "n70_48k_tile24_a_global"},
      {100, false, Nonlinearity::sigmoid, 0.1, 0.0, h100_shared_limit, {{0, 2.0, 257}}, "n100_workload_w"},
      {128, true, Nonlinearity::sigmoid, 0.1, 0.0, h100_shared_limit, {{8, 2.0, 100}}, "n128_a_shared_tile28"},
      {50, false, Nonlinearity::sigmoid, 0.1, 0.0, h100_shared_limit, {{1, 2.0, 200}}, "n50_gram_shared"},
      {37, true, Nonlinearity::sigmoid, 0.1, 0.0, h100_shared_limit, {{1, 2.0, 200}}, "n37_perturb_grams_shared"},
  };
}

// Inputs of a scenario in host arrays (A from the CPU's generator), with outputs poisoned.
struct HostBatch {
  cuda::SimulationLayout layout;
  std::vector<uint64_t> seeds;
  std::vector<double> etas;
  std::vector<int> timesteps;
  std::vector<double> connectivity;  // networks x n x n, column-major
  std::vector<Eigen::MatrixXd> A;
  std::vector<double> grams, even_grams;
  std::vector<unsigned long long> saturated;

  cuda::SimulationBatch view(const Scenario& s) {
    cuda::SimulationBatch b;
    b.networks = static_cast<int>(seeds.size());
    b.nonlinearity = s.f;
    b.perturb = s.perturb;
    b.seeds = seeds.data();
    b.etas = etas.data();
    b.timesteps = timesteps.data();
    b.connectivity = connectivity.data();
    b.grams = grams.data();
    b.even_grams = s.perturb ? even_grams.data() : nullptr;
    b.saturated = saturated.data();
    return b;
  }
};

HostBatch make_batch(const Scenario& s) {
  HostBatch h;
  h.layout = cuda::plan_simulation_layout(s.n, s.shared_limit, s.perturb);
  const size_t nn = static_cast<size_t>(s.n) * s.n, size = cuda::gram_doubles(s.n);
  for (const NetworkCase& c : s.networks) {
    bool empty = false;
    h.A.push_back(cs::generate_connectivity(c.seed, s.n, s.p_connect, empty, s.p_inhibitory));
    h.connectivity.insert(h.connectivity.end(), h.A.back().data(), h.A.back().data() + nn);
    h.seeds.push_back(c.seed);
    h.etas.push_back(c.eta);
    h.timesteps.push_back(c.timesteps);
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  h.grams.assign(s.networks.size() * size, nan);
  h.even_grams.assign(s.perturb ? s.networks.size() * size : 0, nan);
  h.saturated.assign(2 * s.networks.size(), 0xdeadbeefdeadbeefull);
  return h;
}

// Every element of a kernel's Gram against the CPU's, each within 1e-12 of its natural scale
// (Cauchy-Schwarz: |sum a b| <= sqrt(sum a^2 sum b^2)); counts exactly.
void expect_gram_matches(const cs::Gram& cpu, const double* buffer, unsigned long long saturated,
                         const std::string& what) {
  const int n = cpu.n, p = 2 * n + 1, q = 2 * n;
  const cs::Gram gpu = cuda::unpack_gram(buffer, n, cpu.transitions, static_cast<int64_t>(saturated));
  EXPECT_EQ(gpu.saturated_logits, cpu.saturated_logits) << what;
  EXPECT_EQ(gpu.ww(0, 0), static_cast<double>(cpu.transitions)) << what;
  int bad = 0;
  auto check = [&](double got, double want, double scale, const char* part, int a, int b) {
    const bool ok = std::isfinite(got) && std::abs(got - want) <= 1e-12 * scale + 1e-300;
    if (!ok && ++bad <= 5)
      ADD_FAILURE() << what << ": " << part << "(" << a << ", " << b << ") = " << got << ", CPU " << want;
  };
  for (int a = 0; a < p; ++a)
    for (int b = 0; b < p; ++b)
      check(gpu.ww(a, b), cpu.ww(a, b), std::sqrt(cpu.ww(a, a) * cpu.ww(b, b)), "ww", a, b);
  for (int a = 0; a < p; ++a)
    for (int b = 0; b < q; ++b) check(gpu.wu(a, b), cpu.wu(a, b), std::sqrt(cpu.ww(a, a) * cpu.uu(b)), "wu", a, b);
  for (int b = 0; b < q; ++b) check(gpu.uu(b), cpu.uu(b), cpu.uu(b), "uu", b, b);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " Gram entries differ";
}

// The CPU's Grams of network i of a scenario.
cs::NetworkGrams cpu_grams(const Scenario& s, const HostBatch& h, size_t i) {
  cs::NetworkTask task;
  task.seed = s.networks[i].seed;
  task.n_neurons = s.n;
  task.timesteps = s.networks[i].timesteps;
  task.p_connect = s.p_connect;
  task.eta = s.networks[i].eta;
  task.perturb = s.perturb;
  return cs::simulate_network(task, h.A[i], s.f);
}

void expect_batch_matches_cpu(const Scenario& s, const HostBatch& h) {
  const size_t size = cuda::gram_doubles(s.n);
  for (size_t i = 0; i < s.networks.size(); ++i) {
    const cs::NetworkGrams cpu = cpu_grams(s, h, i);
    const std::string what = s.name + " network " + std::to_string(i);
    expect_gram_matches(cpu.all, h.grams.data() + i * size, h.saturated[2 * i], what + " (all)");
    if (s.perturb) expect_gram_matches(*cpu.even, h.even_grams.data() + i * size, h.saturated[2 * i + 1], what + " (even)");
  }
}

// Scores of two runs of the same sweep: same runs, scored bits and flags; every score within 1e-6.
void expect_same_scores(const std::vector<cs::NetworkResult>& want, const std::vector<cs::NetworkResult>& got,
                        const std::string& what, double tolerance = 1e-6) {
  ASSERT_EQ(want.size(), got.size()) << what;
  int bad = 0;
  double largest = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].network_index, got[i].network_index) << what;
    EXPECT_EQ(want[i].network_flags, got[i].network_flags) << what << " network " << i;
    EXPECT_EQ(want[i].saturated_logits, got[i].saturated_logits) << what << " network " << i;
    ASSERT_EQ(want[i].runs.size(), got[i].runs.size()) << what << " network " << i;
    for (size_t r = 0; r < want[i].runs.size(); ++r) {
      const cs::RunResult& a = want[i].runs[r];
      const cs::RunResult& b = got[i].runs[r];
      EXPECT_EQ(a.scored, b.scored) << what << " network " << i << " run " << r;
      EXPECT_EQ(a.flags, b.flags) << what << " network " << i << " run " << r;
      EXPECT_EQ(a.roc.size(), b.roc.size()) << what << " network " << i << " run " << r;
      for (int sc = 0; sc < cs::score_count; ++sc) {
        if (!a.has(sc)) continue;
        const double x = a.score[sc], y = b.score[sc];
        if (std::isnan(x) && std::isnan(y)) continue;
        const double gap = std::abs(x - y);
        if (std::isfinite(gap)) largest = std::max(largest, gap);
        if (!(gap <= tolerance) && ++bad <= 10)
          ADD_FAILURE() << what << ": network " << i << " run " << r << " (ratio " << a.ratio_index << ", estimator "
                        << a.estimator_index << ") " << cs::score_names[sc] << ": CPU " << x << ", CUDA " << y;
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
  std::printf("[          ] %s: largest score gap %.3g\n", what.c_str(), largest);
}

// Sweeps that cover the estimators and model variants (kept small: the CPU runs them too).
const char* const sweep_configs[] = {
    R"(
    [model]
    n_neurons = [8, 40]
    timesteps = 2000
    eta = [0.0, 2.0]
    observed_ratio = [1.0, 0.5, 0.2]
    [seeds]
    count = 3
    [estimators]
    use = ["correlation", "lasso", "ols", "iv", "granger", "granger_conditional", "iv_bh", "granger_bh"]
    [estimators.iv_bh]
    method = "iv"
    correction = "bh"
    [estimators.granger_bh]
    method = "granger"
    correction = "bh"
    [scores]
    roc_seeds = [1]
  )",
    R"(
    [model]
    n_neurons = 6
    timesteps = 3001
    p_connect = 0.3
    perturb = true
    [seeds]
    count = 4
    [estimators]
    use = ["perturbation", "correlation", "ols"]
  )",
    R"(
    [model]
    n_neurons = 20
    timesteps = 1500
    eta = 1.0
    nonlinearity = "identity"
    observed_ratio = [1.0, 0.6]
    [seeds]
    count = 3
    [estimators]
    use = ["correlation", "ols", "iv", "lasso"]
  )",
    R"(
    [model]
    n_neurons = 30
    timesteps = 1200
    p_connect = 0.2
    p_inhibitory = 0.3
    eta = 2.0
    [seeds]
    count = 3
    [estimators]
    use = ["correlation", "ols", "iv", "lasso"]
  )",
    R"(
    [model]
    n_neurons = 200
    timesteps = 600
    eta = 2.0
    observed_ratio = [1.0, 0.3]
    [seeds]
    count = 2
    [estimators]
    use = ["correlation", "ols", "iv"]
  )",
};

struct SweepResult {
  cs::SweepGrid grid;
  cs::SweepOutcome outcome;
};

SweepResult run_sweep_on(const std::string& toml, cs::Backend& backend, int batch_size = 0) {
  SweepResult r;
  cs::SweepConfig config = cs::parse_config(toml, "<test>");
  config.run.batch_size = batch_size;
  r.grid = cs::expand_grid(config);
  const cs::SweepPlan plan = cs::plan_sweep(config, r.grid, 2);
  cs::Progress quiet(true, "test");
  r.outcome = cs::run_sweep(r.grid, plan, backend, quiet);
  return r;
}

// Device memory for a test, freed at scope exit.
template <class T>
struct DeviceArray {
  T* data = nullptr;
  size_t count = 0;
  explicit DeviceArray(size_t n) : count(n) { CS_CUDA_CHECK(cudaMalloc(&data, std::max<size_t>(n, 1) * sizeof(T))); }
  DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void upload(const std::vector<T>& host) {
    CS_CUDA_CHECK(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(std::vector<T>& host) const {
    host.resize(count);
    CS_CUDA_CHECK(cudaMemcpy(host.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost));
  }
};

}  // namespace

// ---- without a GPU -----------------------------------------------------------------------------

// The exact cuRAND calls the kernels make, compiled for the host, read Random123's words.
// The emulated blocks run their threads in the order the environment asks for (ctest's
// emulation_threads_descending reruns every emulation suite in descending order).
TEST(CudaHost, EmulatedThreadOrderFollowsTheEnvironment) {
  const char* value = std::getenv("CAUSALSWEEP_HOST_THREADS_DESCENDING");
  const bool descending = value && value[0] == '1';
  EXPECT_EQ(cuda::host_threads_descending(), descending);
  std::vector<int> order;
  cuda::for_each_host_thread(4, [&](int tid) { order.push_back(tid); });
  EXPECT_EQ(order, descending ? std::vector<int>({3, 2, 1, 0}) : std::vector<int>({0, 1, 2, 3}));
  std::printf("[          ] emulated threads run in %s order\n", descending ? "descending" : "ascending");
}

TEST(CudaHost, CurandAddressingMatchesRandom123) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t seed = rng(), subsequence = rng(), block = rng() >> 2;  // cuRAND's offset is 4 * block
    const cs::RandomBlock want = cs::philox_block(seed, subsequence, block);
    const cs::RandomBlock got = cuda::curand_philox_block_on_host(seed, subsequence, block);
    for (int w = 0; w < 4; ++w) ASSERT_EQ(got.word[w], want.word[w]) << "address " << i << " word " << w;
  }
  // The addresses the engine uses: small seeds, (purpose, neuron) subsequences, small blocks.
  for (uint64_t seed : {0ull, 1ull, 99ull})
    for (uint32_t neuron : {0u, 1u, 499u})
      for (uint64_t block : {0ull, 1ull, 2ull, 49999ull})
        for (cs::Purpose purpose : {cs::Purpose::connectivity, cs::Purpose::dynamics, cs::Purpose::inhibitory}) {
          const uint64_t sub = cs::subsequence(purpose, neuron);
          const cs::RandomBlock want = cs::philox_block(seed, sub, block);
          const cs::RandomBlock got = cuda::curand_philox_block_on_host(seed, sub, block);
          for (int w = 0; w < 4; ++w) ASSERT_EQ(got.word[w], want.word[w]);
        }
}

// Expected layouts on an H100 / H200 (232,448 bytes), counted by hand: state 80n bytes, A 8n^2, a
// tile column 8 x (3n+1 rounded up to 4), a tile of L transitions L + 1 columns, a Gram 8 x gram_doubles(n).
TEST(CudaHost, LayoutPutsWhatFitsInSharedMemory) {
  // n = 40: 3,200 + 12,800 + Gram 104,968 leave 111,480 bytes = 112 columns of 992: the longest tile, 64.
  const auto small = cuda::plan_simulation_layout(40, h100_shared_limit);
  EXPECT_TRUE(small.state_in_shared && small.tile_in_shared && small.a_in_shared && small.gram_in_shared);
  EXPECT_EQ(small.tile, 64);
  EXPECT_EQ(small.scratch_doubles, 0u);
  // Two Grams of n = 40 (209,936 bytes) do not fit beside A and a tile of 32; n = 37's two do.
  EXPECT_FALSE(cuda::plan_simulation_layout(40, h100_shared_limit, true).gram_in_shared);
  EXPECT_TRUE(cuda::plan_simulation_layout(37, h100_shared_limit, true).gram_in_shared);
  EXPECT_FALSE(cuda::plan_simulation_layout(38, h100_shared_limit, true).gram_in_shared);
  // One Gram: n = 50 fits (227,336 bytes with a tile of 32), n = 51 (235,808) does not.
  EXPECT_TRUE(cuda::plan_simulation_layout(50, h100_shared_limit).gram_in_shared);
  EXPECT_FALSE(cuda::plan_simulation_layout(51, h100_shared_limit).gram_in_shared);
  // n = 100 (workload W): 232,448 - 8,000 - 80,000 = 144,448 bytes = 59 columns of 2,432: tile 58.
  const auto hundred = cuda::plan_simulation_layout(100, h100_shared_limit);
  EXPECT_TRUE(hundred.a_in_shared && hundred.tile_in_shared && !hundred.gram_in_shared);
  EXPECT_EQ(hundred.tile, 58);
  EXPECT_EQ(hundred.column_stride, 304);
  // n = 128: 232,448 - 10,240 - 131,072 = 91,136 bytes = 29 columns of 3,104: tile 28.
  const auto tile28 = cuda::plan_simulation_layout(128, h100_shared_limit);
  EXPECT_TRUE(tile28.a_in_shared && tile28.tile_in_shared);
  EXPECT_EQ(tile28.tile, 28);
  // n = 160: A (204,800) and a tile of 16 do not fit; the tile alone gets 56 columns of 3,872: 54.
  const auto a_global = cuda::plan_simulation_layout(160, h100_shared_limit);
  EXPECT_TRUE(a_global.tile_in_shared && !a_global.a_in_shared);
  EXPECT_EQ(a_global.tile, 54);
  const auto large = cuda::plan_simulation_layout(500, h100_shared_limit);
  EXPECT_FALSE(large.a_in_shared || large.tile_in_shared || large.gram_in_shared);
  EXPECT_TRUE(large.state_in_shared);
  EXPECT_EQ(large.scratch_doubles, 33u * 1504);  // the tile (32 transitions) in global memory
  const auto tile_global = cuda::plan_simulation_layout(70, 16 * 1024);
  EXPECT_TRUE(tile_global.state_in_shared && !tile_global.tile_in_shared && !tile_global.a_in_shared);
  const auto none = cuda::plan_simulation_layout(20, 0);
  EXPECT_FALSE(none.state_in_shared || none.tile_in_shared || none.a_in_shared || none.gram_in_shared);
  EXPECT_EQ(none.shared_bytes, 0u);
  // Threads: whole warps, 32 to 256.
  EXPECT_EQ(cuda::plan_simulation_layout(40, h100_shared_limit, false, 100).threads, 96);
  EXPECT_EQ(cuda::plan_simulation_layout(40, h100_shared_limit, false, 8).threads, 32);
  EXPECT_EQ(cuda::plan_simulation_layout(40, h100_shared_limit, false, 1024).threads, 256);
  for (bool perturb : {false, true})
    for (int n : {1, 2, 3, 5, 17, 40, 64, 100, 128, 200, 500, 1000})
      for (size_t limit : {size_t{0}, size_t{48 * 1024}, size_t{100 * 1024}, h100_shared_limit}) {
        const auto l = cuda::plan_simulation_layout(n, limit, perturb);
        EXPECT_LE(l.shared_bytes, limit) << n << " " << limit;
        EXPECT_GE(l.tile, 2);
        EXPECT_LE(l.tile, 64);
        EXPECT_EQ(l.tile % 2, 0);
        if (l.tile_in_shared) EXPECT_GE(l.tile, 16);
        if (l.gram_in_shared) EXPECT_GE(l.tile, 32);
        EXPECT_EQ(l.column_stride % 4, 0);
        EXPECT_GE(l.column_stride, 3 * n + 1);
        EXPECT_EQ(l.perturb, perturb);
      }
}

// The backend's choice by size: n <= 32 in blocks of 64 threads, four to an SM's 228 KiB (each
// block also reserves 1 KiB); larger n in blocks of 256 threads with the whole per-block limit.
TEST(CudaHost, LayoutChoiceBySize) {
  for (bool perturb : {false, true}) {
    for (int n : {1, 7, 20, 32}) {
      const auto l = cuda::choose_simulation_layout(n, h100_shared_limit, perturb);
      EXPECT_EQ(l.threads, 64) << n;
      EXPECT_LE(4 * (l.shared_bytes + 1024), h100_shared_limit + 1024) << n;
      EXPECT_TRUE(l.state_in_shared && l.a_in_shared && l.tile_in_shared) << n;
    }
    for (int n : {33, 100, 500}) {
      const auto l = cuda::choose_simulation_layout(n, h100_shared_limit, perturb);
      EXPECT_EQ(l.threads, 256) << n;
      const auto whole = cuda::plan_simulation_layout(n, h100_shared_limit, perturb);
      EXPECT_EQ(l.shared_bytes, whole.shared_bytes) << n;
    }
  }
  // n = 20: a quarter is 57,344 bytes: state 1,600, A 3,200, Gram 26,888 and 50 columns of 512: tile 48.
  const auto twenty = cuda::choose_simulation_layout(20, h100_shared_limit, false);
  EXPECT_TRUE(twenty.gram_in_shared);
  EXPECT_EQ(twenty.tile, 48);
  // Without room for four blocks it still plans (everything in global memory).
  EXPECT_EQ(cuda::choose_simulation_layout(20, 0, false).shared_bytes, 0u);
  // With 48 KiB per block a quarter (11,520 bytes) cannot hold A and a tile of 16 at n = 20: one
  // network per block with all of it, A and tile in shared memory.
  const auto small_device = cuda::choose_simulation_layout(20, 48 * 1024, false);
  EXPECT_EQ(small_device.threads, 256);
  EXPECT_TRUE(small_device.a_in_shared && small_device.tile_in_shared);
}

// The kernel's block program, run on the host, gives the CPU's Grams: every element, every layout
// (A, tile and state in shared or global memory), perturbation and identity models, odd lengths.
TEST(CudaHost, EmulatedKernelMatchesCpuGrams) {
  for (const Scenario& s : scenarios()) {
    HostBatch h = make_batch(s);
    cuda::emulate_simulation_on_host(h.layout, h.view(s));
    expect_batch_matches_cpu(s, h);
    // And in the layout the backend chooses for the size (small n: 64 threads, a quarter of the memory).
    HostBatch chosen = make_batch(s);
    chosen.layout = cuda::choose_simulation_layout(s.n, s.shared_limit, s.perturb);
    cuda::emulate_simulation_on_host(chosen.layout, chosen.view(s));
    expect_batch_matches_cpu(s, chosen);
  }
}

// A network's Grams do not depend on the other networks of its launch: bit for bit.
TEST(CudaHost, EmulatedNetworkIndependentOfBatch) {
  const Scenario s = scenarios()[3];
  HostBatch together = make_batch(s);
  cuda::emulate_simulation_on_host(together.layout, together.view(s));
  const size_t size = cuda::gram_doubles(s.n);
  for (size_t i = 0; i < s.networks.size(); ++i) {
    Scenario alone = s;
    alone.networks = {s.networks[i]};
    HostBatch h = make_batch(alone);
    cuda::emulate_simulation_on_host(h.layout, h.view(alone));
    EXPECT_EQ(std::memcmp(h.grams.data(), together.grams.data() + i * size, size * sizeof(double)), 0) << i;
    EXPECT_EQ(h.saturated[0], together.saturated[2 * i]);
  }
}

// A Gram's rounding does not depend on the block's thread count (each entry is summed by one lane,
// in transition order): 32, 96 and 256 threads give the same bits, with and without the Gram in shared memory.
TEST(CudaHost, EmulatedGramIndependentOfThreadCount) {
  // n = 40 (Gram in shared memory), n = 100 (workload W), n = 128 with perturbation (the even Gram too)
  for (const Scenario& s : {scenarios()[3], scenarios()[9], scenarios()[10]}) {
    std::vector<double> want, want_even;
    for (int threads : {256, 96, 32}) {
      HostBatch h = make_batch(s);
      h.layout = cuda::plan_simulation_layout(s.n, s.shared_limit, s.perturb, threads);
      ASSERT_EQ(h.layout.threads, threads);
      cuda::emulate_simulation_on_host(h.layout, h.view(s));
      if (want.empty()) {
        want = h.grams;
        want_even = h.even_grams;
      }
      EXPECT_EQ(std::memcmp(h.grams.data(), want.data(), want.size() * sizeof(double)), 0) << s.name << " " << threads;
      EXPECT_EQ(std::memcmp(h.even_grams.data(), want_even.data(), want_even.size() * sizeof(double)), 0)
          << s.name << " " << threads;
    }
  }
}

// A layout planned for the other mode is refused (it would carve the wrong number of Grams).
TEST(CudaHost, LayoutOfTheOtherModeIsRefused) {
  Scenario s = scenarios()[1];  // n = 6, perturbation
  HostBatch h = make_batch(s);
  h.layout = cuda::plan_simulation_layout(s.n, s.shared_limit, false);
  EXPECT_THROW(cuda::emulate_simulation_on_host(h.layout, h.view(s)), std::logic_error);
}

// The backend's host half (Grams from a kernel buffer -> estimators -> scores) reproduces
// run_cpu_network for every network of several sweeps, with the Grams from the emulated kernel.
TEST(CudaHost, ScoresFromEmulatedGramsMatchCpuNetwork) {
  for (size_t c = 0; c < std::size(sweep_configs); ++c) {
    const cs::SweepConfig config = cs::parse_config(sweep_configs[c], "<test>");
    const cs::SweepGrid grid = cs::expand_grid(config);
    std::vector<cs::NetworkResult> want, got;
    for (const cs::NetworkTask& task : grid.networks) {
      if (c == 4 && task.index > 0) break;  // n = 200: one network is enough here
      cs::PhaseTimes times;
      want.push_back(cs::run_cpu_network(task, grid, times));

      bool empty = false;
      const Eigen::MatrixXd A = cs::network_connectivity(task, grid.model, empty);
      Scenario s{task.n_neurons, task.perturb, grid.model.nonlinearity, task.p_connect, 0.0, h100_shared_limit,
                 {{task.seed, task.eta, task.timesteps}}, "sweep"};
      HostBatch h = make_batch(s);
      h.connectivity.assign(A.data(), A.data() + A.size());  // the grid's A (inhibitory signs, user matrices)
      cuda::emulate_simulation_on_host(h.layout, h.view(s));
      const cs::Gram all = cuda::unpack_gram(h.grams.data(), task.n_neurons, cuda::transitions_all(task.timesteps),
                                             static_cast<int64_t>(h.saturated[0]));
      std::optional<cs::Gram> even;
      if (task.perturb)
        even = cuda::unpack_gram(h.even_grams.data(), task.n_neurons, cuda::transitions_even(task.timesteps),
                                 static_cast<int64_t>(h.saturated[1]));
      got.push_back(cs::score_network(task, grid, A, empty, all, even ? &*even : nullptr, times));
    }
    expect_same_scores(want, got, "emulated sweep " + std::to_string(c));
  }
}

TEST(CudaHost, ChunksGroupBySizeAndKeepOrder) {
  std::vector<cs::NetworkTask> batch;
  for (int i = 0; i < 10; ++i) {
    cs::NetworkTask t;
    t.index = static_cast<uint64_t>(i);
    t.n_neurons = i % 3 == 0 ? 50 : 8;
    batch.push_back(t);
  }
  const auto chunks = cuda::plan_chunks(batch, [](int n, bool) { return n == 50 ? size_t{2} : size_t{0}; });
  // n = 50 first (network 0): 4 networks in chunks of 2; n = 8: 6 networks, limit 0 taken as 1 -> 6 chunks.
  ASSERT_EQ(chunks.size(), 8u);
  EXPECT_EQ(chunks[0].n, 50);
  EXPECT_EQ(chunks[0].members, (std::vector<size_t>{0, 3}));
  EXPECT_EQ(chunks[1].members, (std::vector<size_t>{6, 9}));
  EXPECT_EQ(chunks[2].n, 8);
  std::vector<int> seen(batch.size(), 0);
  for (const auto& c : chunks) {
    for (size_t k = 0; k < c.members.size(); ++k) {
      EXPECT_EQ(batch[c.members[k]].n_neurons, c.n);
      if (k > 0) EXPECT_LT(c.members[k - 1], c.members[k]);
      ++seen[c.members[k]];
    }
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  EXPECT_EQ(chunks.back().members, (std::vector<size_t>{8}));
}

// ---- on a GPU ------------------------------------------------------------------------------------

// The raw stream: every word the device reads equals Random123's (output poisoned first).
TEST(CudaDevice, RawStreamBitwiseEqualsRandom123) {
  SKIP_WITHOUT_GPU();
  constexpr int count = 100000;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> seeds(count), subsequences(count), blocks(count);
  for (int i = 0; i < count; ++i) {
    seeds[i] = i % 3 == 0 ? rng() : rng() % 1000;
    subsequences[i] = i % 2 ? rng() : cs::subsequence(cs::Purpose::dynamics, static_cast<uint32_t>(rng() % 1000));
    blocks[i] = i % 5 == 0 ? rng() >> 2 : rng() % 100000;
  }
  DeviceArray<uint64_t> d_seeds(seeds), d_subsequences(subsequences), d_blocks(blocks);
  DeviceArray<uint32_t> d_words(4 * static_cast<size_t>(count));
  CS_CUDA_CHECK(cudaMemset(d_words.data, 0xA5, d_words.count * sizeof(uint32_t)));
  cuda::launch_philox_blocks(d_seeds.data, d_subsequences.data, d_blocks.data, d_words.data, count, nullptr);
  CS_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint32_t> words;
  d_words.download(words);
  int bad = 0;
  for (int i = 0; i < count; ++i) {
    const cs::RandomBlock want = cs::philox_block(seeds[i], subsequences[i], blocks[i]);
    for (int w = 0; w < 4; ++w)
      if (words[4 * static_cast<size_t>(i) + w] != want.word[w] && ++bad <= 5)
        ADD_FAILURE() << "address " << i << " word " << w;
  }
  EXPECT_EQ(bad, 0);
}

// The fused kernel's Grams against the CPU's, every element, in every layout (the shared-memory
// limit given to the planner forces A, the tile and the state into global memory in some).
TEST(CudaDevice, KernelMatchesCpuGrams) {
  SKIP_WITHOUT_GPU();
  const size_t device_limit = cuda::shared_memory_limit(0);
  for (Scenario s : scenarios())
    for (bool chosen : {false, true}) {  // the planned layout, and the one the backend chooses for the size
      s.shared_limit = std::min(s.shared_limit, device_limit);
      HostBatch h = make_batch(s);
      if (chosen) h.layout = cuda::choose_simulation_layout(s.n, s.shared_limit, s.perturb);
      DeviceArray<uint64_t> seeds(h.seeds);
      DeviceArray<double> etas(h.etas), connectivity(h.connectivity), grams(h.grams), even_grams(h.even_grams);
      DeviceArray<int> timesteps(h.timesteps);
      DeviceArray<unsigned long long> saturated(h.saturated);
      DeviceArray<double> scratch(h.seeds.size() * h.layout.scratch_doubles);
      cuda::SimulationBatch b = h.view(s);
      b.seeds = seeds.data;
      b.etas = etas.data;
      b.timesteps = timesteps.data;
      b.connectivity = connectivity.data;
      b.grams = grams.data;
      b.even_grams = s.perturb ? even_grams.data : nullptr;
      b.saturated = saturated.data;
      b.scratch = scratch.data;
      CS_CUDA_CHECK(cudaMemset(scratch.data, 0xFF, std::max<size_t>(scratch.count, 1) * sizeof(double)));  // NaN
      cuda::launch_simulation(h.layout, b, nullptr);
      CS_CUDA_CHECK(cudaDeviceSynchronize());
      grams.download(h.grams);
      if (s.perturb) even_grams.download(h.even_grams);
      saturated.download(h.saturated);
      expect_batch_matches_cpu(s, h);
    }
}

// Whole sweeps: every per-run score of the CUDA backend within 1e-6 of the CPU backend's (n = 200
// runs with A in global memory); same flags and scored runs.
TEST(CudaDevice, SweepsMatchCpuBackend) {
  SKIP_WITHOUT_GPU();
  const auto cpu = cs::make_cpu_backend(2);
  const auto gpu = cs::make_cuda_backend({}, 2);
  for (size_t c = 0; c < std::size(sweep_configs); ++c) {
    const SweepResult want = run_sweep_on(sweep_configs[c], *cpu);
    const SweepResult got = run_sweep_on(sweep_configs[c], *gpu);
    expect_same_scores(want.outcome.results, got.outcome.results, "sweep " + std::to_string(c));
  }
}

// Batch size (how networks are grouped into launches) changes nothing, bit for bit.
TEST(CudaDevice, BatchSizeDoesNotChangeResults) {
  SKIP_WITHOUT_GPU();
  const auto gpu = cs::make_cuda_backend({}, 2);
  const SweepResult reference = run_sweep_on(sweep_configs[0], *gpu, 1);
  for (int batch : {0, 3, 7}) {
    const SweepResult other = run_sweep_on(sweep_configs[0], *gpu, batch);
    expect_same_scores(reference.outcome.results, other.outcome.results, "batch " + std::to_string(batch), 0.0);
  }
}

// Several devices (--devices 0,1 or every visible GPU): workers share the batch's chunks, and
// the N-to-1 family's batch is cut into one slice per device. Naming device 0 twice (which the
// command line refuses) gives two workers with their own threads, streams and memory on one GPU, so
// a one-GPU machine runs that code; the results must be one worker's, bit for bit. Six sizes in one
// batch make six chunks with different shared-memory needs (which worker takes which depends on
// timing); the N-to-1 sweep's six runs go three to each. It cannot catch a call made on the wrong
// device: here there is only one.
TEST(CudaDevice, TwoWorkersShareTheBatchBitForBit) {
  SKIP_WITHOUT_GPU();
  const auto one = cs::make_cuda_backend({0}, 2);
  const auto two = cs::make_cuda_backend({0, 0}, 2);
  const std::string names = two->device();
  size_t workers = 0;
  for (size_t at = names.find("(device 0,"); at != std::string::npos; at = names.find("(device 0,", at + 1)) ++workers;
  EXPECT_EQ(workers, 2u) << names;
  const std::string rate = R"(
    [model]
    n_neurons = [6, 8, 12, 20, 40, 64]
    timesteps = 1000
    eta = 2.0
    observed_ratio = [1.0, 0.5]
    [seeds]
    count = 2
    [estimators]
    use = ["correlation", "lasso", "ols", "iv", "granger"]
    [scores]
    roc_seeds = [1]
  )";
  const std::string n_to_1 = R"(
    [model]
    family = "n_to_1"
    duration_s = 2
    inh_exc_ratio = [0.5, 4]
    [seeds]
    count = 3
  )";
  for (const std::string& toml : {rate, n_to_1}) {
    const SweepResult want = run_sweep_on(toml, *one, 64);
    const SweepResult got = run_sweep_on(toml, *two, 64);
    expect_same_scores(want.outcome.results, got.outcome.results, "two workers", 0.0);
  }
}

TEST(CudaDevice, SelectionPicksCuda) {
  SKIP_WITHOUT_GPU();
  std::string note;
  EXPECT_EQ(cs::select_backend(cs::BackendKind::auto_select, 2, note)->name(), "cuda");
  EXPECT_NE(note.find("backend cuda (auto)"), std::string::npos) << note;
  EXPECT_EQ(cs::select_backend(cs::BackendKind::cuda, 2, note)->name(), "cuda");
  EXPECT_THROW(cs::make_cuda_backend({cs::query_cuda_devices().count}, 2), cs::InputError);  // no such device
}

#endif  // CAUSALSWEEP_HAVE_CUDA
