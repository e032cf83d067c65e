// The lasso solvers against scikit-learn's results on the reference fixture, and the active-set
// solver's convergence on networks where scikit-learn's cyclic descent stops at max_iter.
#include <gtest/gtest.h>

#include <cmath>

#include "causalsweep/gram.hpp"
#include "fixture_io.hpp"
#include "engine.hpp"
#include "lasso.hpp"

namespace cs = causalsweep;
using Eigen::MatrixXd;
using Eigen::VectorXd;

namespace {

using causalsweep::testing::expected_fixtures;
using causalsweep::testing::fixtures_dir;
using causalsweep::testing::read_csv_matrix;

// Lasso problem of target i over the first k neurons (no intercept), from a Gram.
struct Problem {
  MatrixXd H;
  VectorXd q;
  double yy, m;
};
Problem problem(const cs::Gram& g, int k, int target) {
  return {g.xx(k), g.x_logit(k).col(target), g.logit_sq(k)(target), static_cast<double>(g.transitions)};
}

}  // namespace

TEST(Lasso, CyclicReproducesScikitLearnIterateForIterate) {
  const auto& expected = expected_fixtures();
  const cs::Gram g =
      cs::gram_from_trajectories(read_csv_matrix(fixtures_dir + "rate_X.csv"), read_csv_matrix(fixtures_dir + "rate_Z.csv"));
  for (const auto& obs : expected["rate"]["observed"]) {
    const int k = obs["k"].get<int>();
    for (int i = 0; i < k; ++i) {
      const Problem p = problem(g, k, i);
      const cs::LassoFit fit = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-4, 1000, cs::LassoSolver::cyclic);
      EXPECT_EQ(fit.sweeps, obs["lasso_iterations"]["lasso_default"][i].get<int>()) << "k " << k << " target " << i;
      EXPECT_EQ(fit.converged, obs["lasso_converged"]["lasso_default"][i].get<bool>());
      for (int j = 0; j < k; ++j)
        EXPECT_NEAR(fit.w(j), obs["estimates"]["lasso_default"][i][j].get<double>(), 1e-10) << k << " " << i << " " << j;
    }
  }
}

TEST(Lasso, ActiveSetReachesScikitLearnsTightOptimum) {
  const auto& expected = expected_fixtures();
  const cs::Gram g =
      cs::gram_from_trajectories(read_csv_matrix(fixtures_dir + "rate_X.csv"), read_csv_matrix(fixtures_dir + "rate_Z.csv"));
  for (const auto& obs : expected["rate"]["observed"]) {
    const int k = obs["k"].get<int>();
    for (int i = 0; i < k; ++i) {
      const Problem p = problem(g, k, i);
      // Default tolerance: converged, and at the optimum that scikit-learn reaches with tol 1e-12.
      const cs::LassoFit fit = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-4, 1000, cs::LassoSolver::active_set);
      EXPECT_TRUE(fit.converged);
      EXPECT_LT(fit.gap, 1e-4 * p.yy);
      for (int j = 0; j < k; ++j)
        EXPECT_NEAR(fit.w(j), obs["estimates"]["lasso"][i][j].get<double>(), 1e-8) << k << " " << i << " " << j;
    }
  }
}

// n = 40, T = 20000: cyclic descent stops at max_iter = 1000 for most targets; the active-set
// solver converges well within it, to the optimum found by cyclic descent run to a tight gap.
TEST(Lasso, ActiveSetConvergesWhereCyclicStalls) {
  bool empty = false;
  const cs::NetworkTask task{0, 3, 40, 20000, 0.1, 2.0, false};
  const MatrixXd A = cs::generate_connectivity(task.seed, task.n_neurons, task.p_connect, empty);
  const cs::Gram g = cs::simulate_network(task, A).all;
  int cyclic_stalled = 0;
  for (int i = 0; i < 40; i += 5) {
    const Problem p = problem(g, 40, i);
    const auto cyclic = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-4, 1000, cs::LassoSolver::cyclic);
    cyclic_stalled += !cyclic.converged;
    const auto fast = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-4, 1000, cs::LassoSolver::active_set);
    EXPECT_TRUE(fast.converged) << "target " << i;
    EXPECT_EQ(fast.sweeps, 0) << "feature-sign search finished without coordinate sweeps, target " << i;
    const auto exact = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-13, 200000, cs::LassoSolver::cyclic);
    ASSERT_TRUE(exact.converged);
    EXPECT_LT((fast.w - exact.w).cwiseAbs().maxCoeff(), 1e-6 * exact.w.cwiseAbs().maxCoeff()) << "target " << i;
  }
  EXPECT_GE(cyclic_stalled, 4);  // the behaviour that motivates the active-set solver
}

TEST(Lasso, DegenerateProblems) {
  // Zero regressors and a huge alpha both give w = 0, converged.
  const MatrixXd H = MatrixXd::Zero(3, 3);
  const VectorXd q = VectorXd::Zero(3);
  auto fit = cs::lasso_gram(H, q, 1.0, 10, 0.01, 1e-4, 100, cs::LassoSolver::active_set);
  EXPECT_TRUE(fit.w.isZero());
  const MatrixXd H2 = MatrixXd::Identity(2, 2) * 10;
  const VectorXd q2 = VectorXd::Constant(2, 1.0);
  fit = cs::lasso_gram(H2, q2, 5.0, 10, 10.0, 1e-4, 100, cs::LassoSolver::active_set);
  EXPECT_TRUE(fit.w.isZero());
  EXPECT_TRUE(fit.converged);
}

// When the feature-sign search cannot finish (here: an iteration cap far below the support size),
// the solver falls back to coordinate descent from its point and reports the truth: finite
// weights, a finite gap, and not converged.
TEST(Lasso, IterationCapFallsBackAndSaysNotConverged) {
  bool empty = false;
  const cs::NetworkTask task{0, 3, 40, 20000, 0.1, 2.0, false};
  const MatrixXd A = cs::generate_connectivity(task.seed, task.n_neurons, task.p_connect, empty);
  const cs::Gram g = cs::simulate_network(task, A).all;
  const Problem p = problem(g, 40, 0);
  const auto capped = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-8, 3, cs::LassoSolver::active_set);
  EXPECT_FALSE(capped.converged);
  EXPECT_EQ(capped.sweeps, 3);  // the fallback ran its coordinate sweeps
  EXPECT_TRUE(capped.w.allFinite());
  EXPECT_TRUE(std::isfinite(capped.gap));
  EXPECT_GT(capped.gap, 1e-8 * p.yy);
  const auto full = cs::lasso_gram(p.H, p.q, p.yy, p.m, 0.01, 1e-8, 1000, cs::LassoSolver::active_set);
  EXPECT_TRUE(full.converged);
  EXPECT_LT(full.gap, capped.gap);
}
