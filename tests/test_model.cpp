// Connectivity generation and the simulation with its streamed Gram.
#include <gtest/gtest.h>

#include <cmath>

#include <Eigen/SVD>

#include "causalsweep/flags.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/model.hpp"
#include "engine.hpp"

namespace cs = causalsweep;

TEST(Connectivity, ScaledToLargestSingularValue) {
  bool empty = true;
  const Eigen::MatrixXd A = cs::generate_connectivity(3, 50, 0.1, empty);
  ASSERT_FALSE(empty);
  EXPECT_NEAR(cs::largest_singular_value(A), 1 / 1.01, 1e-12);
  // All non-zero entries share one value (A0 is 0/1), and density is near p.
  const double value = A.maxCoeff();
  int64_t nonzero = 0;
  for (Eigen::Index i = 0; i < A.size(); ++i)
    if (A(i) != 0) {
      EXPECT_DOUBLE_EQ(A(i), value);
      ++nonzero;
    }
  const double density = static_cast<double>(nonzero) / 2500.0;
  EXPECT_NEAR(density, 0.1, 5 * std::sqrt(0.1 * 0.9 / 2500));
}

TEST(Connectivity, SingularValueMatchesPowerIteration) {
  bool empty = false;
  Eigen::MatrixXd A0 = cs::generate_connectivity(11, 30, 0.2, empty);
  A0 = (A0.array() != 0).cast<double>();
  Eigen::VectorXd v = Eigen::VectorXd::Ones(30);
  for (int it = 0; it < 2000; ++it) v = (A0.transpose() * (A0 * v)).normalized();
  EXPECT_NEAR(cs::largest_singular_value(A0), (A0 * v).norm(), 1e-9);
}

// Sparse matrices on which Eigen 3.4.0's BDCSVD crashes (with or without -march=native, even at
// -O0: Eigen's bug, not the compiler's): the value must come out and agree with the one-sided Jacobi
// SVD, an independent algorithm.
TEST(Connectivity, SparseMatricesThatCrashedBdcsvd) {
  struct Case {
    uint64_t seed;
    int n;
    double p_connect, p_inhibitory;
  };
  for (const Case c : {Case{1301, 40, 0.03, 0.5}, Case{1885, 40, 0.03, 0.5}, Case{2255, 40, 0.05, 0.3}}) {
    bool empty = true;
    const Eigen::MatrixXd A = cs::generate_connectivity(c.seed, c.n, c.p_connect, empty, c.p_inhibitory);
    ASSERT_FALSE(empty);
    const Eigen::JacobiSVD<Eigen::MatrixXd> jacobi(A);
    EXPECT_NEAR(jacobi.singularValues()(0), 1 / 1.01, 1e-13) << "seed " << c.seed;
    Eigen::MatrixXd signs = A.array().sign().matrix();
    EXPECT_NEAR(cs::largest_singular_value(signs), Eigen::JacobiSVD<Eigen::MatrixXd>(signs).singularValues()(0), 1e-13);
  }
}

TEST(Connectivity, EmptyAndFull) {
  bool empty = false;
  const Eigen::MatrixXd zero = cs::generate_connectivity(1, 8, 0.0, empty);
  EXPECT_TRUE(empty);
  EXPECT_TRUE((zero.array() == 0).all());
  const Eigen::MatrixXd full = cs::generate_connectivity(1, 8, 1.0, empty);
  EXPECT_FALSE(empty);
  EXPECT_NEAR(full(0, 0), 1 / (1.01 * 8), 1e-15);  // all-ones n x n has s_max = n
}

TEST(Connectivity, SameSeedSameNetworkDifferentSeedDifferent) {
  bool empty = false;
  const Eigen::MatrixXd a = cs::generate_connectivity(5, 20, 0.1, empty);
  EXPECT_EQ(a, cs::generate_connectivity(5, 20, 0.1, empty));
  EXPECT_NE(a, cs::generate_connectivity(6, 20, 0.1, empty));
}

TEST(Model, LogitClampFlagsSaturation) {
  bool saturated = true;
  EXPECT_NEAR(cs::logit_clamped(cs::sigmoid(1.5), saturated), 1.5, 1e-12);
  EXPECT_FALSE(saturated);
  EXPECT_TRUE(std::isfinite(cs::logit_clamped(1.0, saturated)));
  EXPECT_TRUE(saturated);
  EXPECT_TRUE(std::isfinite(cs::logit_clamped(0.0, saturated)));
  EXPECT_TRUE(saturated);
}

namespace {
cs::NetworkTask task(int n, int T, double eta, bool perturb = false, uint64_t seed = 1) {
  return cs::NetworkTask{0, seed, n, T, 0.1, eta, perturb};
}
}  // namespace

TEST(Simulation, TrajectoryFollowsTheModelEquation) {
  const auto t = task(5, 300, 2.0);
  bool empty = false;
  const Eigen::MatrixXd A = cs::generate_connectivity(t.seed, t.n_neurons, 0.3, empty);
  Eigen::MatrixXd X, Z;
  cs::simulate_trajectory(t, A, X, Z);
  EXPECT_TRUE((X.col(0).array() == 0).all());
  EXPECT_TRUE(((X.array() >= 0) && (X.array() <= 1)).all());
  // Rebuild x[t+1] from x[t], z[t+1] and the noise stream independently of the simulator.
  for (int step = 0; step + 1 < t.timesteps; ++step)
    for (int i = 0; i < t.n_neurons; ++i) {
      const auto block = cs::philox_block(t.seed, cs::subsequence(cs::Purpose::dynamics, static_cast<uint32_t>(i)),
                                          static_cast<uint64_t>(step / 2));
      const double noise = cs::step_draws(block, static_cast<uint32_t>(step)).noise;
      const double u = A.row(i).dot(X.col(step)) + 2.0 * Z(i, step + 1) + noise;
      ASSERT_NEAR(X(i, step + 1), 1 / (1 + std::exp(-u)), 1e-14) << "neuron " << i << " step " << step;
    }
}

TEST(Simulation, PerturbationClampsEvenSteps) {
  const auto t = task(6, 200, 0.0, true);
  bool empty = false;
  const Eigen::MatrixXd A = cs::generate_connectivity(t.seed, 6, 0.1, empty);
  Eigen::MatrixXd X, Z;
  cs::simulate_trajectory(t, A, X, Z);
  for (int step = 0; step + 1 < t.timesteps; step += 2)
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(X(i, step) == 0.0 || X(i, step) == 1.0);
  // Odd steps are sigmoid outputs, never exactly 0 or 1 here.
  for (int i = 0; i < 6; ++i) EXPECT_GT(X(i, 1), 0.0);
}

// The streamed Gram equals the Gram of the stored trajectory (sums in another order: 1e-12).
TEST(Simulation, StreamedGramMatchesTrajectoryGram) {
  for (const bool perturb : {false, true}) {
    const auto t = task(7, 1001, 1.5, perturb, 9);  // not a multiple of the tile sizes
    bool empty = false;
    const Eigen::MatrixXd A = cs::generate_connectivity(t.seed, 7, 0.3, empty);
    const cs::NetworkGrams grams = cs::simulate_network(t, A);
    Eigen::MatrixXd X, Z;
    cs::simulate_trajectory(t, A, X, Z);
    const cs::Gram reference = cs::gram_from_trajectories(X, Z);
    EXPECT_EQ(grams.all.transitions, 1000);
    EXPECT_TRUE(grams.all.ww.isApprox(reference.ww, 1e-12));
    EXPECT_TRUE(grams.all.wu.isApprox(reference.wu, 1e-12));
    EXPECT_TRUE(grams.all.uu.isApprox(reference.uu, 1e-12));
    EXPECT_EQ(grams.all.ww, grams.all.ww.transpose());
    ASSERT_EQ(grams.even.has_value(), perturb);
    if (perturb) {
      const cs::Gram even = cs::gram_from_trajectories(X, Z, true);
      EXPECT_EQ(grams.even->transitions, 500);
      EXPECT_TRUE(grams.even->wu.isApprox(even.wu, 1e-12));
    }
  }
}

TEST(Simulation, LargeInstrumentSaturatesAndIsCounted) {
  const auto t = task(4, 400, 60.0);
  bool empty = false;
  const Eigen::MatrixXd A = cs::generate_connectivity(t.seed, 4, 0.3, empty);
  const cs::NetworkGrams grams = cs::simulate_network(t, A);
  EXPECT_GT(grams.all.saturated_logits, 0);
  EXPECT_TRUE(grams.all.wu.allFinite());
}

TEST(Grid, ObservedCountMatchesNumpy) {
  EXPECT_EQ(cs::observed_count(40, 0.2), 8);
  EXPECT_EQ(cs::observed_count(40, 0.6), 24);   // 40 * 0.6 = 24.000000000000004
  EXPECT_EQ(cs::observed_count(10, 0.7), 7);    // 10 * 0.7 = 7.000000000000001
  EXPECT_EQ(cs::observed_count(3, 0.29), 1);    // int(0.87) = 0, clipped to 1
  EXPECT_EQ(cs::observed_count(100, 1.0), 100);
  EXPECT_EQ(cs::observed_count(6, 0.5), 3);
}
