// Whole sweeps on the CPU backend: the tutorials' qualitative results with fixed seeds, and
// results that do not depend on threads or batching.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "causalsweep/flags.hpp"
#include "sweep_helpers.hpp"

namespace cs = causalsweep;
using cs::testing::mean;
using cs::testing::run_toml;

namespace {

// Mean and standard error of paired differences a - b.
std::pair<double, double> paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const double m = mean(d);
  double ss = 0;
  for (double x : d) ss += (x - m) * (x - m);
  return {m, std::sqrt(ss / static_cast<double>(d.size() - 1) / static_cast<double>(d.size()))};
}

}  // namespace

// Tutorial 4: with few neurons observed, regression suffers omitted-variable bias and IV does not.
TEST(Science, InstrumentalVariablesBeatRegressionAtLowObservedRatio) {
  const auto run = run_toml(R"(
    [model]
    n_neurons = 40
    timesteps = 20000
    eta = 2.0
    observed_ratio = [1.0, 0.2]
    [seeds]
    count = 64
    [estimators]
    use = ["lasso", "iv"]
  )");
  const auto iv_low = run.scores("iv", 0.2), lasso_low = run.scores("lasso", 0.2);
  const auto iv_full = run.scores("iv", 1.0), lasso_full = run.scores("lasso", 1.0);
  ASSERT_EQ(iv_low.size(), 64u);
  // Both recover A when every neuron is observed.
  EXPECT_GT(mean(iv_full), 0.5);
  EXPECT_GT(mean(lasso_full), 0.7);
  // At ratio 0.2 IV is ahead of the tutorial's regression (lasso), by more than two standard errors
  // of the paired difference. (SPEC section 5: IV is ahead only at the smallest ratios.)
  const auto [difference, se] = paired_difference(iv_low, lasso_low);
  EXPECT_GT(difference, 2 * se) << "difference " << difference << " se " << se;
  // Regression loses much more than IV when going from ratio 1 to 0.2.
  EXPECT_GT(mean(lasso_full) - mean(lasso_low), 2 * (mean(iv_full) - mean(iv_low)));
}

// Tutorial 4 bonus: stronger instruments give better IV estimates; eta = 0 is unidentified.
TEST(Science, InstrumentalVariablesImproveWithInstrumentStrength) {
  const auto run = run_toml(R"(
    [model]
    n_neurons = 20
    timesteps = 10000
    eta = [0.0, 0.12, 0.5, 2.0]   # the tutorial's instrument strengths (and 0)
    [seeds]
    count = 10
    [estimators]
    use = ["iv"]
  )");
  const double weak = mean(run.scores("iv", 1.0, 0, 0.12)), mid = mean(run.scores("iv", 1.0, 0, 0.5)),
               strong = mean(run.scores("iv", 1.0, 0, 2.0));
  EXPECT_LT(weak + 0.1, mid);
  EXPECT_LT(mid + 0.05, strong);
  for (double v : run.scores("iv", 1.0, 0, 0.0)) EXPECT_TRUE(std::isnan(v));
  for (const auto& r : run.outcome.results)
    if (run.grid.networks[r.network_index].eta == 0.0) EXPECT_TRUE(r.runs[0].flags & cs::flag_unidentified);
}

// Tutorial 1: perturbations recover the connectivity of a small network nearly perfectly.
TEST(Science, PerturbationRecoversSmallNetwork) {
  const auto run = run_toml(R"(
    [model]
    n_neurons = 6
    timesteps = 5000
    p_connect = 0.3
    perturb = true
    [seeds]
    count = 10
    [estimators]
    use = ["perturbation"]
  )");
  const auto scores = run.scores("perturbation", 1.0);
  EXPECT_GT(mean(scores), 0.95);
  for (double s : scores) EXPECT_GT(s, 0.85);
  const auto auc = run.scores("perturbation", 1.0, 1);
  EXPECT_GT(mean(auc), 0.97);
}

// Tutorial 2: correlation gets worse as the network grows.
TEST(Science, CorrelationDegradesWithNetworkSize) {
  const auto run = run_toml(R"(
    [model]
    n_neurons = [6, 60]
    timesteps = 5000
    [seeds]
    count = 10
    [estimators]
    use = ["correlation"]
  )");
  double small = 0, large = 0;
  for (const auto& c : run.outcome.curves)
    if (c.score_index == 0) (c.n_neurons == 6 ? small : large) = c.mean;
  EXPECT_GT(small, large + 0.05);
}

// A network's results depend only on its seed and axes: not on threads or batch size.
TEST(Determinism, ThreadsAndBatchSizesGiveBitwiseIdenticalResults) {
  const std::string toml = R"(
    [model]
    n_neurons = [7, 12]
    timesteps = 600
    eta = [0.5, 2.0]
    observed_ratio = [1.0, 0.5]
    [seeds]
    count = 3
    [estimators]
    use = ["correlation", "lasso", "ols", "iv"]
  )";
  const auto reference = run_toml(toml, 1, 1);
  for (const auto& [threads, batch] : std::vector<std::pair<int, int>>{{2, 0}, {2, 3}, {3, 5}, {1, 24}}) {
    const auto other = run_toml(toml, threads, batch);
    ASSERT_EQ(other.outcome.results.size(), reference.outcome.results.size());
    for (size_t n = 0; n < reference.outcome.results.size(); ++n) {
      const auto& a = reference.outcome.results[n].runs;
      const auto& b = other.outcome.results[n].runs;
      ASSERT_EQ(a.size(), b.size());
      for (size_t r = 0; r < a.size(); ++r)
        for (int s = 0; s < cs::score_count; ++s) {
          const double x = a[r].score[s], y = b[r].score[s];
          EXPECT_TRUE((std::isnan(x) && std::isnan(y)) || std::memcmp(&x, &y, sizeof x) == 0)
              << "threads " << threads << " batch " << batch << " network " << n << " run " << r;
        }
    }
  }
}

// The same seed is the same network whatever else is swept (common random numbers across eta).
TEST(Determinism, SeedFixesTheNetworkAcrossAxes) {
  const auto run = run_toml(R"(
    [model]
    n_neurons = 10
    timesteps = 500
    eta = [1.0, 2.0]
    [seeds]
    list = [4, 9]
    [estimators]
    use = ["correlation"]
  )");
  ASSERT_EQ(run.grid.networks.size(), 4u);
  EXPECT_EQ(run.grid.networks[0].seed, 4u);
  EXPECT_EQ(run.grid.networks[2].seed, 4u);
  EXPECT_EQ(run.grid.networks[2].eta, 2.0);
}

// Degenerate cases give NaN with a reason, never a crash.
TEST(Degenerate, OneObservedNeuronAndEmptyNetwork) {
  const auto run = run_toml(R"(
    [model]
    n_neurons = 5
    timesteps = 300
    p_connect = [0.0, 0.3]
    eta = 1.0
    observed_ratio = [0.2, 1.0]
    [seeds]
    count = 2
    [estimators]
    use = ["correlation", "lasso", "ols", "iv"]
  )");
  for (const auto& r : run.outcome.results) {
    const auto& t = run.grid.networks[r.network_index];
    for (const auto& rr : r.runs) {
      if (rr.observed == 1) {
        EXPECT_TRUE(std::isnan(rr.score[0]));
        EXPECT_TRUE(rr.flags & (cs::flag_constant_truth | cs::flag_constant_estimate));
      }
      if (t.p_connect == 0.0) {
        EXPECT_TRUE(rr.flags & cs::flag_empty_truth);
        EXPECT_TRUE(std::isnan(rr.score[0]));
      }
    }
  }
}
