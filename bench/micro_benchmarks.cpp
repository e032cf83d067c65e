// Google Benchmark microbenchmarks of the CPU hot loops: random draws, one simulated step with
// its Gram update, the Gram tile update alone, the two lasso solvers on one target, and the largest
// singular value of A.
#include <benchmark/benchmark.h>

#include <Eigen/SVD>

#include "causalsweep/gram.hpp"
#include "causalsweep/random_stream.hpp"
#include "engine.hpp"
#include "lasso.hpp"

namespace cs = causalsweep;

static void BM_PhiloxBlock(benchmark::State& state) {
  uint64_t block = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cs::philox_block(7, cs::subsequence(cs::Purpose::dynamics, 3), block++));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PhiloxBlock);

// Simulation with streamed Grams, per step (n from the argument, T = 2048).
static void BM_SimulateStep(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  bool empty = false;
  const Eigen::MatrixXd A = cs::generate_connectivity(1, n, 0.1, empty);
  const cs::NetworkTask task{0, 1, n, 2048, 0.1, 2.0, false};
  for (auto _ : state) benchmark::DoNotOptimize(cs::simulate_network(task, A).all.transitions);
  state.SetItemsProcessed(state.iterations() * (task.timesteps - 1));
}
BENCHMARK(BM_SimulateStep)->Arg(20)->Arg(40)->Arg(100)->Arg(200)->Unit(benchmark::kMillisecond);

// The Gram update alone: 128 transitions of random data added to the Gram.
static void BM_GramTile(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const Eigen::MatrixXd X = Eigen::MatrixXd::Random(n, 129).cwiseAbs() * 0.9 + Eigen::MatrixXd::Constant(n, 129, 0.05);
  const Eigen::MatrixXd Z = Eigen::MatrixXd::Random(n, 129).cwiseAbs().array().round();
  for (auto _ : state) benchmark::DoNotOptimize(cs::gram_from_trajectories(X, Z).transitions);
  state.SetItemsProcessed(state.iterations() * 128);
}
BENCHMARK(BM_GramTile)->Arg(40)->Arg(100)->Unit(benchmark::kMicrosecond);

// One lasso target of a simulated network (n = k from the argument): scikit-learn's cyclic
// descent (1000 sweeps here, it does not converge) vs the feature-sign active-set solver.
template <cs::LassoSolver solver>
static void BM_Lasso(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  bool empty = false;
  const Eigen::MatrixXd A = cs::generate_connectivity(3, n, 0.1, empty);
  const cs::Gram g = cs::simulate_network(cs::NetworkTask{0, 3, n, 5000, 0.1, 2.0, false}, A).all;
  const Eigen::MatrixXd H = g.xx(n);
  const Eigen::VectorXd q = g.x_logit(n).col(0);
  for (auto _ : state)
    benchmark::DoNotOptimize(cs::lasso_gram(H, q, g.logit_sq(n)(0), static_cast<double>(g.transitions), 0.01, 1e-4,
                                            1000, solver).gap);
}
BENCHMARK(BM_Lasso<cs::LassoSolver::cyclic>)->Arg(40)->Arg(100)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Lasso<cs::LassoSolver::active_set>)->Arg(40)->Arg(100)->Unit(benchmark::kMillisecond);

// The largest singular value of a generated 0/+-1 A: the eigenvalues of A'A (what generate_connectivity
// uses) against Eigen's BDCSVD (what it used before; it crashed on some sparse matrices).
static void BM_LargestSingularValue(benchmark::State& state) {
  bool empty = false;
  const int n = static_cast<int>(state.range(0));
  const Eigen::MatrixXd A = cs::generate_connectivity(7, n, 0.1, empty).array().sign().matrix();
  for (auto _ : state) benchmark::DoNotOptimize(cs::largest_singular_value(A));
}
BENCHMARK(BM_LargestSingularValue)->Arg(40)->Arg(100)->Arg(500)->Unit(benchmark::kMillisecond);

static void BM_LargestSingularValueBdcsvd(benchmark::State& state) {
  bool empty = false;
  const int n = static_cast<int>(state.range(0));
  const Eigen::MatrixXd A = cs::generate_connectivity(7, n, 0.1, empty).array().sign().matrix();
  for (auto _ : state) benchmark::DoNotOptimize(Eigen::BDCSVD<Eigen::MatrixXd>(A).singularValues()(0));
}
BENCHMARK(BM_LargestSingularValueBdcsvd)->Arg(40)->Arg(100)->Arg(500)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
