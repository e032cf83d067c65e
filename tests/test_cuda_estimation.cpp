// The CUDA backend's GPU estimation stage (host/cuda_estimation.cpp) run on the host: the kernels'
// block programs emulated and Eigen in place of cuBLAS/cuSOLVER, on Grams of networks simulated by
// the CPU, against score_network, the CPU backend's scoring of the same Grams. Every run of every
// network is compared score by score, flags exactly. (CudaDevice.* in test_cuda.cpp runs the stage
// for real on a GPU, through whole sweeps.)
#include <gtest/gtest.h>

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "causalsweep/config.hpp"
#include "causalsweep/flags.hpp"
#include "cpu_network.hpp"
#include "cuda_backend.hpp"
#include "cuda_estimation.hpp"
#include "cuda_kernels.hpp"
#include "cuda_test_support.hpp"
#include "engine.hpp"
#include "score_kernels.hpp"
#include "lasso_kernels.hpp"
#include "lasso_active_set_kernels.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

using cs::test::pack_gram;

// Host memory with the stage's alignment (the stage casts its sections to doubles and structs), and
// a guard after the requested bytes that must stay untouched: the stage sizes its sections right.
struct Aligned {
  static constexpr size_t guard_words = 512;
  static constexpr double guard_value = -12345.0;
  explicit Aligned(size_t bytes)
      : requested((bytes + 7) / 8), words(requested + guard_words, std::numeric_limits<double>::quiet_NaN()) {
    std::fill(words.begin() + static_cast<std::ptrdiff_t>(requested), words.end(), guard_value);
  }
  char* data() { return reinterpret_cast<char*>(words.data()); }
  bool guard_intact() const {
    return std::all_of(words.begin() + static_cast<std::ptrdiff_t>(requested), words.end(),
                       [](double w) { return w == guard_value; });
  }
  size_t requested;
  std::vector<double> words;  // NaN-poisoned: a read before a write shows up in the results
};

bool same(double a, double b, double tolerance) {
  return (std::isnan(a) && std::isnan(b)) || std::abs(a - b) <= tolerance * std::max(1.0, std::abs(a));
}

// Runs every network of the grid (one chunk per size n) through the emulated stage and compares
// with score_network on the same Grams and A.
void expect_stage_matches_cpu(const std::string& toml, double tolerance, size_t shared_limit = 227 * 1024) {
  const cs::SweepConfig config = cs::parse_config(toml, "<test>");
  const cs::SweepGrid grid = cs::expand_grid(config);
  ASSERT_TRUE(cuda::has_gpu_estimators(grid));
  std::vector<int> sizes;
  for (const auto& task : grid.networks)
    if (std::find(sizes.begin(), sizes.end(), task.n_neurons) == sizes.end()) sizes.push_back(task.n_neurons);
  for (int n : sizes) {
    std::vector<const cs::NetworkTask*> tasks;
    for (const auto& task : grid.networks)
      if (task.n_neurons == n) tasks.push_back(&task);
    const bool perturb = tasks.front()->perturb;
    const size_t count = tasks.size(), gram_size = cuda::gram_doubles(n), nn = static_cast<size_t>(n) * n;
    std::vector<double> grams(count * gram_size), even_grams(perturb ? count * gram_size : 0), A(count * nn), etas(count);
    std::vector<cs::NetworkResult> want;
    std::vector<char> empty(count);
    std::vector<int64_t> saturated(count);
    for (size_t i = 0; i < count; ++i) {
      const cs::NetworkTask& task = *tasks[i];
      bool is_empty = false;
      const Eigen::MatrixXd a = cs::network_connectivity(task, grid.model, is_empty);
      const cs::NetworkGrams g = cs::simulate_network(task, a, grid.model.nonlinearity);
      pack_gram(g.all, grams.data() + i * gram_size);
      if (perturb) pack_gram(*g.even, even_grams.data() + i * gram_size);
      std::copy(a.data(), a.data() + nn, A.data() + i * nn);
      etas[i] = task.eta;
      empty[i] = is_empty;
      saturated[i] = g.all.saturated_logits;
      cs::PhaseTimes unused;
      want.push_back(cs::score_network(task, grid, a, is_empty, g.all, g.even ? &*g.even : nullptr, unused));
    }

    const cuda::EstimationStage stage(grid, n, perturb, cuda::Executor{false, nullptr, shared_limit});
    Aligned inputs(stage.input_bytes(count)), workspace(stage.workspace_bytes(count)), results(stage.result_bytes(count));
    stage.prepare_inputs(tasks, inputs.data());
    cuda::StageBuffers buffers;
    buffers.networks = count;
    buffers.grams = grams.data();
    buffers.even_grams = perturb ? even_grams.data() : nullptr;
    buffers.connectivity = A.data();
    buffers.etas = etas.data();
    buffers.inputs = inputs.data();
    buffers.workspace = workspace.data();
    buffers.results = results.data();
    stage.run(buffers);
    EXPECT_TRUE(inputs.guard_intact()) << "n = " << n << ": the stage wrote past input_bytes";
    EXPECT_TRUE(workspace.guard_intact()) << "n = " << n << ": the stage wrote past workspace_bytes";
    EXPECT_TRUE(results.guard_intact()) << "n = " << n << ": the stage wrote past result_bytes";

    for (size_t i = 0; i < count; ++i) {
      const cs::NetworkTask& task = *tasks[i];
      const Eigen::MatrixXd a = Eigen::Map<const Eigen::MatrixXd>(A.data() + i * nn, n, n);
      const cs::Gram all = cuda::unpack_gram(grams.data() + i * gram_size, n, cuda::transitions_all(task.timesteps),
                                             saturated[i]);
      std::optional<cs::Gram> even;
      if (perturb)
        even = cuda::unpack_gram(even_grams.data() + i * gram_size, n, cuda::transitions_even(task.timesteps), 0);
      cs::PhaseTimes unused;
      int host_runs = 0;
      const cs::NetworkResult got = stage.assemble(
          task, i, count, results.data(), empty[i] != 0, saturated[i], [&](int r, int e, uint32_t network_flags) {
            ++host_runs;
            return cs::score_one_run(task, grid, a, r, e, all, even ? &*even : nullptr, network_flags, unused);
          });
      ASSERT_EQ(got.runs.size(), want[i].runs.size());
      // Host runs exactly where the stage has host estimators: one per (ratio, host estimator).
      EXPECT_EQ(host_runs > 0, stage.has_host_estimators()) << "n = " << n;
      EXPECT_EQ(got.network_flags, want[i].network_flags);
      EXPECT_EQ(got.saturated_logits, want[i].saturated_logits);
      for (size_t r = 0; r < want[i].runs.size(); ++r) {
        const cs::RunResult& w = want[i].runs[r];
        const cs::RunResult& g = got.runs[r];
        const std::string where = "n = " + std::to_string(n) + " seed " + std::to_string(task.seed) + " k = " +
                                  std::to_string(w.observed) + " " + grid.estimators[w.estimator_index].label;
        EXPECT_EQ(g.ratio_index, w.ratio_index) << where;
        EXPECT_EQ(g.observed, w.observed) << where;
        EXPECT_EQ(g.estimator_index, w.estimator_index) << where;
        EXPECT_EQ(g.scored, w.scored) << where;
        EXPECT_EQ(g.flags, w.flags) << where << ": " << cs::flags_to_string(g.flags) << " vs "
                                    << cs::flags_to_string(w.flags);
        for (int s = 0; s < cs::score_count; ++s)
          if (w.has(s))
            EXPECT_TRUE(same(w.score[s], g.score[s], tolerance))
                << where << " " << cs::score_names[s] << ": stage " << g.score[s] << ", cpu " << w.score[s];
      }
    }
  }
}

}  // namespace

// Every GPU estimator, two sizes (the larger one past the kernels' shared-memory paths for k = 100
// would be slow on the host; n = 40 and 7 cover the logic), two observed ratios, perturbation mode.
TEST(CudaStage, EveryGpuEstimatorMatchesScoreNetwork) {
  expect_stage_matches_cpu(R"(
[model]
n_neurons = [7, 40]
timesteps = 600
p_connect = 0.2
eta = 1.5
observed_ratio = [1.0, 0.5]
perturb = true
[seeds]
list = [3, 11]
[estimators]
use = ["correlation", "perturbation", "ols", "ols_icpt", "iv", "iv_bonferroni", "lasso", "correlation_threshold",
       "lasso_active_set", "lasso_active_set_icpt", "granger", "granger_bonferroni", "granger_conditional",
       "granger_conditional_bonferroni", "granger_bh", "granger_conditional_bh"]
[estimators.granger_bh]
method = "granger"
correction = "bh"
alpha = 0.2
[estimators.granger_conditional_bh]
method = "granger_conditional"
correction = "bh"
[estimators.granger_bonferroni]
method = "granger"
correction = "bonferroni"
alpha = 0.2
[estimators.granger_conditional_bonferroni]
method = "granger_conditional"
correction = "bonferroni"
alpha = 0.2
[estimators.ols_icpt]
method = "ols"
intercept = true
[estimators.iv_bonferroni]
method = "iv"
correction = "bonferroni"
[estimators.lasso]
solver = "cyclic"
alpha = 0.002
[estimators.correlation_threshold]
method = "correlation"
threshold = 0.1
[estimators.lasso_active_set]
method = "lasso"
[estimators.lasso_active_set_icpt]
method = "lasso"
intercept = true
alpha = 0.003
)",
                           1e-9);
}

// A device with 48 KiB of shared memory per block (the least a CUDA device offers): the lasso's H,
// the active set's system and the score and BH sorts at n = 100 go to the stage's global scratch,
// whose sizing the emulators then exercise (and the guards after the workspace check).
TEST(CudaStage, SmallSharedMemoryPutsScratchInTheWorkspace) {
  const size_t shared_limit = 48 * 1024;
  EXPECT_GT(cuda::lasso_scratch_doubles(100, shared_limit), 0u);
  EXPECT_GT(cuda::lasso_active_set_scratch_doubles(100, shared_limit), 0u);
  EXPECT_GT(cuda::score_scratch_doubles(100, shared_limit), 0u);
  expect_stage_matches_cpu(R"(
[model]
n_neurons = 100
timesteps = 800
eta = 2.0
observed_ratio = [1.0, 0.3]
[seeds]
list = [9]
[estimators]
use = ["lasso", "lasso_cyclic", "granger_bh", "ols", "correlation"]
[estimators.lasso_cyclic]
method = "lasso"
solver = "cyclic"
[estimators.granger_bh]
method = "granger"
correction = "bh"
)",
                           1e-9, shared_limit);
}

// Benjamini-Hochberg for every estimator with tests, beside the other corrections: ols and iv
// decide on t statistics against the host's tables of critical values (one per df: two T here).
TEST(CudaStage, BenjaminiHochbergOnTheGpuMatchesTheCpu) {
  expect_stage_matches_cpu(R"(
[model]
n_neurons = 12
timesteps = [400, 900]
eta = 1.0
observed_ratio = [1.0, 0.6]
[seeds]
list = [5, 6]
[estimators]
use = ["ols_bh", "granger_conditional_bh", "ols", "lasso", "iv_bh", "granger", "granger_bh", "correlation"]
[estimators.granger_conditional_bh]
method = "granger_conditional"
correction = "bh"
[estimators.iv_bh]
method = "iv"
correction = "bh"
alpha = 0.3
[estimators.ols_bh]
method = "ols"
correction = "bh"
intercept = true
[estimators.granger_bh]
method = "granger"
correction = "bh"
)",
                           1e-9);
}

// A host estimator (the active-set lasso past k = 2000: n = 2001) between GPU ones comes from
// host_run, in order.
TEST(CudaStage, HostEstimatorsInterleaveInOrder) {
  expect_stage_matches_cpu(R"(
[model]
n_neurons = 2001
timesteps = 30
p_connect = 0.002
eta = 1.0
observed_ratio = [0.005, 0.01]
[seeds]
list = [5]
[estimators]
use = ["ols", "lasso", "lasso_cyclic", "lasso_intercept", "correlation"]
[estimators.lasso_intercept]
method = "lasso"
intercept = true
[estimators.lasso_cyclic]
method = "lasso"
solver = "cyclic"
)",
                           1e-9);
}

// Degenerate inputs: eta = 0 (iv unidentified), too few samples for ols, an empty network
// (p_connect = 0), one observed neuron.
TEST(CudaStage, DegenerateRunsGiveTheCpuNansAndFlags) {
  expect_stage_matches_cpu(R"(
[model]
n_neurons = [6, 9]
timesteps = 8
p_connect = [0.0, 0.3]
eta = 0.0
observed_ratio = [1.0, 0.1]
[seeds]
list = [1, 2]
[estimators]
use = ["correlation", "ols", "iv", "lasso", "granger", "granger_conditional", "granger_bh"]
[estimators.granger_bh]
method = "granger"
correction = "bh"
[estimators.lasso]
solver = "cyclic"
)",
                           1e-9);
}

// The sweep every device must reproduce before it is used: it parses, and the stage reproduces the
// CPU on it (a broken self-check config would otherwise only show on a GPU machine).
TEST(CudaStage, SelfCheckSweepParsesAndMatchesTheCpu) {
  const cs::SweepGrid grid = cs::expand_grid(cs::parse_config(cuda::self_check_config(), "<cuda self-check>"));
  EXPECT_EQ(grid.networks.size(), 9u);
  EXPECT_FALSE(grid.roc_seeds.empty());
  expect_stage_matches_cpu(cuda::self_check_config(), 1e-9);
}

// A stage for a grid with nothing the GPU computes is a programming error, refused.
TEST(CudaStage, RefusesAGridWithoutGpuEstimators) {
  const cs::SweepGrid grid = cs::expand_grid(cs::parse_config(R"(
[model]
n_neurons = 2001
timesteps = 50
[estimators]
use = ["lasso"]
)", "<test>"));
  EXPECT_TRUE(cuda::has_gpu_estimators(grid));         // some n would have them...
  EXPECT_FALSE(cuda::has_gpu_estimators(grid, 2001));  // ...but not n = 2001: the active set's k limit
  EXPECT_THROW(cuda::EstimationStage(grid, 2001, false, cuda::Executor{}), std::logic_error);
}

TEST(CudaStage, WhichEstimatorsRunOnTheGpu) {
  cs::EstimatorSpec spec;
  for (auto method : {cs::EstimatorMethod::correlation, cs::EstimatorMethod::perturbation, cs::EstimatorMethod::ols,
                      cs::EstimatorMethod::iv}) {
    spec.method = method;
    EXPECT_TRUE(cuda::estimable_on_gpu(spec));
  }
  spec.method = cs::EstimatorMethod::ols;
  spec.correction = cs::Correction::bh;
  EXPECT_TRUE(cuda::estimable_on_gpu(spec));  // BH on t statistics with the host's critical values
  spec.correction = cs::Correction::bonferroni;
  EXPECT_TRUE(cuda::estimable_on_gpu(spec));
  spec.method = cs::EstimatorMethod::lasso;
  spec.solver = cs::LassoSolver::cyclic;
  EXPECT_TRUE(cuda::estimable_on_gpu(spec));
  EXPECT_TRUE(cuda::estimable_on_gpu(spec, 4096));
  EXPECT_FALSE(cuda::estimable_on_gpu(spec, 4097));  // past the lasso kernel's k: the host
  spec.solver = cs::LassoSolver::active_set;
  EXPECT_TRUE(cuda::estimable_on_gpu(spec));
  EXPECT_TRUE(cuda::estimable_on_gpu(spec, 2000));
  EXPECT_FALSE(cuda::estimable_on_gpu(spec, 2001));
  for (auto method : {cs::EstimatorMethod::granger, cs::EstimatorMethod::granger_conditional})
    for (auto correction : {cs::Correction::none, cs::Correction::bonferroni, cs::Correction::bh}) {
      spec.method = method;
      spec.correction = correction;
      EXPECT_TRUE(cuda::estimable_on_gpu(spec));
    }
  spec.method = cs::EstimatorMethod::iv;
  spec.correction = cs::Correction::bh;
  EXPECT_TRUE(cuda::estimable_on_gpu(spec));
  spec.method = cs::EstimatorMethod::sta_shuffle;  // the n_to_1 family's own test
  spec.correction = cs::Correction::none;
  EXPECT_FALSE(cuda::estimable_on_gpu(spec));
}

// The critical values against Student-t quantiles computed independently (scipy.stats.t.isf):
// df = 10, alpha 0.05 -> 2.2281388519649385; bonferroni over k = 3 (9 tests) -> t.isf(0.05/18, 10).
// Boost's quantile (also what the CPU's t_test_decisions uses) is good to ~1e-11 here.
TEST(CudaStage, CriticalTValues) {
  EXPECT_NEAR(cuda::critical_t(10, 0.05, cs::Correction::none, 3), 2.2281388519649385, 1e-9);
  EXPECT_NEAR(cuda::critical_t(10, 0.05, cs::Correction::bonferroni, 3), 3.5181503080612635, 1e-9);
  EXPECT_TRUE(std::isnan(cuda::critical_t(0, 0.05, cs::Correction::none, 3)));
  EXPECT_TRUE(std::isnan(cuda::critical_t(-2, 0.05, cs::Correction::none, 3)));
}

// Benjamini-Hochberg's tables: every rank (split over threads at k = 100) is the quantile at its own
// level, the largest rank is the uncorrected test's value, and a table is computed once per key.
TEST(CudaStage, BenjaminiHochbergTablesHoldEveryRankOnce) {
  const int k = 100;
  const double df = 4896, level = 0.05;
  const auto table = cuda::benjamini_hochberg_t_table(df, level, k);
  ASSERT_EQ(table->size(), static_cast<size_t>(k * k));
  for (size_t r = 0; r < table->size(); ++r) {
    const double expected = cuda::critical_t(df, static_cast<double>(r + 1) * level / (k * k), cs::Correction::none, k);
    ASSERT_EQ((*table)[r], expected) << "rank " << r + 1;
    if (r > 0) ASSERT_LT((*table)[r], (*table)[r - 1]) << "rank " << r + 1;  // a higher rank, a lower bar
  }
  EXPECT_EQ(table->back(), cuda::critical_t(df, level, cs::Correction::none, k));
  EXPECT_EQ(cuda::benjamini_hochberg_t_table(df, level, k), table);  // the same table, not recomputed
  EXPECT_NE(cuda::benjamini_hochberg_t_table(df + 1, level, k), table);
  EXPECT_TRUE(std::isnan(cuda::benjamini_hochberg_t_table(0, level, 2)->front()));  // no df: no test
}

#else

TEST(CudaStage, NeedsACudaBuild) { GTEST_SKIP() << "built without CUDA (nvcc was not found)"; }

#endif
