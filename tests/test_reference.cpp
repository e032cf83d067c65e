// Every estimator against independent references (numpy, scikit-learn, statsmodels) on the same
// data: tests/reference/make_fixtures.py wrote the trajectories and the expected results.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/gram.hpp"
#include "causalsweep/scores.hpp"
#include "fixture_io.hpp"

namespace cs = causalsweep;
using Eigen::MatrixXd;
using nlohmann::json;

namespace {

using causalsweep::testing::expect_close;
MatrixXd matrix(const json& nested) { return causalsweep::testing::json_matrix(nested); }

const std::string& fixtures = causalsweep::testing::fixtures_dir;

MatrixXd read_csv(const std::string& path, bool header = false) {
  return causalsweep::testing::read_csv_matrix(path, header);
}


double number(const json& value) { return value.is_null() ? std::nan("") : value.get<double>(); }

const json& expected() { return causalsweep::testing::expected_fixtures(); }


void expect_same_number(double actual, double reference, double rel, const std::string& what) {
  if (std::isnan(reference)) {
    EXPECT_TRUE(std::isnan(actual)) << what << " should be NaN, is " << actual;
  } else {
    EXPECT_NEAR(actual, reference, rel * std::max(1.0, std::abs(reference))) << what;
  }
}

struct RateData {
  MatrixXd X, Z;
  cs::Gram gram;
};

const RateData& rate() {
  static const RateData data = [] {
    RateData d;
    d.X = read_csv(fixtures + "rate_X.csv");
    d.Z = read_csv(fixtures + "rate_Z.csv");
    d.gram = cs::gram_from_trajectories(d.X, d.Z);
    return d;
  }();
  return data;
}

}  // namespace

TEST(Reference, FixturesHaveTheDocumentedShape) {
  EXPECT_EQ(rate().X.rows(), expected()["rate"]["n"].get<int>());
  EXPECT_EQ(rate().X.cols(), expected()["rate"]["timesteps"].get<int>());
  EXPECT_EQ(rate().Z.cols(), rate().X.cols());
  EXPECT_EQ(rate().gram.saturated_logits, 0);
}

TEST(Reference, CorrelationOlsAndIvMatchNumpySklearnStatsmodels) {
  const double eta = expected()["rate"]["eta"].get<double>();
  for (const json& obs : expected()["rate"]["observed"]) {
    const int k = obs["k"].get<int>();
    const std::string at = " at k = " + std::to_string(k);
    const json& est = obs["estimates"];
    if (k > 1) {
      expect_close(cs::correlation(rate().gram, k).V, matrix(est["correlation"]), 1e-8, "correlation" + at);
    }
    const cs::Estimate ols = cs::ordinary_least_squares(rate().gram, k, false);
    expect_close(ols.V, matrix(est["ols"]), 1e-8, "ols" + at);
    expect_close(ols.standard_error, matrix(obs["ols_se"]), 1e-8, "ols standard errors" + at);
    const cs::Estimate ols_i = cs::ordinary_least_squares(rate().gram, k, true);
    expect_close(ols_i.V, matrix(est["ols_intercept"]), 1e-8, "ols with intercept" + at);
    expect_close(ols_i.standard_error, matrix(obs["ols_intercept_se"]), 1e-8, "ols with intercept, se" + at);
    const cs::Estimate iv = cs::two_stage_least_squares(rate().gram, k, eta);
    EXPECT_EQ(iv.flags, 0u);
    expect_close(iv.V, matrix(est["iv"]), 1e-8, "iv" + at);
    expect_close(iv.standard_error, matrix(obs["iv_se"]), 1e-8, "iv standard errors (IV2SLS)" + at);
  }
}

TEST(Reference, LassoMatchesScikitLearn) {
  for (const json& obs : expected()["rate"]["observed"]) {
    const int k = obs["k"].get<int>();
    const std::string at = " at k = " + std::to_string(k);
    const json& est = obs["estimates"];
    // Converged to a tight duality gap on both sides: the same unique optimum, by both solvers.
    for (const auto solver : {cs::LassoSolver::active_set, cs::LassoSolver::cyclic}) {
      const std::string how = std::string(" (") + std::string(cs::to_string(solver)) + ", tol 1e-12)" + at;
      const cs::Estimate tight = cs::lasso(rate().gram, k, 0.01, false, 1e-12, 1000000, solver);
      EXPECT_EQ(tight.flags, 0u);
      expect_close(tight.V, matrix(est["lasso"]), 1e-6, "lasso" + how);
      const cs::Estimate tight_i = cs::lasso(rate().gram, k, 0.01, true, 1e-12, 1000000, solver);
      expect_close(tight_i.V, matrix(est["lasso_intercept"]), 1e-6, "lasso with intercept" + how);
    }
    // The default (active set, tol 1e-4) converges on this problem to that same optimum.
    const cs::Estimate by_default = cs::lasso(rate().gram, k, 0.01, false, 1e-4, 1000);
    EXPECT_EQ(by_default.flags, 0u);
    expect_close(by_default.V, matrix(est["lasso"]), 1e-6, "lasso (active set, defaults)" + at);
    // scikit-learn's defaults (tol 1e-4, max_iter 1000) with the cyclic solver: the same updates and
    // stopping rule give the same iterate up to rounding, and the same convergence verdict.
    const cs::Estimate fast = cs::lasso(rate().gram, k, 0.01, false, 1e-4, 1000, cs::LassoSolver::cyclic);
    expect_close(fast.V, matrix(est["lasso_default"]), 1e-6, "lasso (scikit-learn defaults)" + at);
    bool all_converged = true;
    for (const auto& c : obs["lasso_converged"]["lasso_default"]) all_converged = all_converged && c.get<bool>();
    EXPECT_EQ((fast.flags & cs::flag_not_converged) == 0, all_converged) << at;
    int max_iterations = 0;
    for (const auto& it : obs["lasso_iterations"]["lasso_default"]) max_iterations = std::max(max_iterations, it.get<int>());
    EXPECT_EQ(fast.iterations, max_iterations) << "coordinate sweeps" << at;
  }
}

TEST(Reference, ScoresMatchNumpyCorrcoefAndSklearnAuc) {
  const double eta = expected()["rate"]["eta"].get<double>();
  for (const json& obs : expected()["rate"]["observed"]) {
    const int k = obs["k"].get<int>();
    const MatrixXd truth = matrix(obs["truth"]);
    const std::pair<std::string, cs::Estimate> estimates[] = {
        {"correlation", cs::correlation(rate().gram, k)},
        {"ols", cs::ordinary_least_squares(rate().gram, k, false)},
        {"ols_intercept", cs::ordinary_least_squares(rate().gram, k, true)},
        {"iv", cs::two_stage_least_squares(rate().gram, k, eta)},
    };
    for (const auto& [name, estimate] : estimates) {
      const cs::Scores s = cs::score_estimate(truth, estimate.V);
      const std::string at = name + " at k = " + std::to_string(k);
      expect_same_number(s.corr_with_truth, number(obs["corr_with_truth"][name]), 1e-8, "corr_with_truth of " + at);
      expect_same_number(s.auc, number(obs["auc"][name]), 1e-12, "auc of " + at);
      if (k == 1) EXPECT_NE(s.flags, 0u) << "a 1 x 1 block has no correlation: flagged";
    }
  }
}

TEST(Reference, PerturbationMatchesNumpy) {
  const MatrixXd X = read_csv(fixtures + "pert_X.csv");
  const cs::Gram even = cs::gram_from_trajectories(X, MatrixXd(), true);
  const cs::Gram all = cs::gram_from_trajectories(X, MatrixXd());
  for (const json& obs : expected()["pert"]["observed"]) {
    const int k = obs["k"].get<int>();
    expect_close(cs::perturbation(even, k).V, matrix(obs["estimates"]["perturbation"]), 1e-8, "perturbation");
    expect_close(cs::correlation(all, k).V, matrix(obs["estimates"]["correlation"]), 1e-8, "correlation (perturbed)");
    const cs::Scores s = cs::score_estimate(matrix(obs["truth"]), cs::perturbation(even, k).V);
    expect_same_number(s.corr_with_truth, number(obs["corr_with_truth"]["perturbation"]), 1e-8, "perturbation score");
  }
}

// Tutorial 4's smoking example through the same two-stage code path: -1.984 (true effect -2).
TEST(Reference, SmokingExampleGivesTheNotebooksEstimate) {
  const MatrixXd data = read_csv(fixtures + "smoking.csv", true);  // Z, T, C, Y
  ASSERT_EQ(data.rows(), 2000);
  const cs::ScalarIV iv = cs::scalar_two_stage_least_squares(data.col(3), data.col(1), data.col(0));
  const json& ref = expected()["smoking_iv"];
  EXPECT_EQ(iv.flags, 0u);
  EXPECT_NEAR(iv.effect, ref["effect"].get<double>(), 1e-8 * std::abs(ref["effect"].get<double>()));
  EXPECT_NEAR(std::round(iv.effect * 1000) / 1000, -1.984, 1e-12);
  EXPECT_NEAR(iv.intercept, ref["intercept"].get<double>(), 1e-8 * std::abs(ref["intercept"].get<double>()));
  EXPECT_NEAR(iv.standard_error, ref["se"].get<double>(), 1e-8 * ref["se"].get<double>());
  EXPECT_NEAR(iv.first_stage_f, ref["first_stage_f"].get<double>(), 1e-8 * ref["first_stage_f"].get<double>());
}

TEST(Reference, AucMatchesSklearnWithTies) {
  for (const json& c : expected()["auc_cases"]) {
    const auto scores = c["scores"].get<std::vector<double>>();
    const auto labels = c["labels"].get<std::vector<int>>();
    std::unique_ptr<bool[]> positive(new bool[labels.size()]);
    for (size_t i = 0; i < labels.size(); ++i) positive[i] = labels[i] != 0;
    const double auc = cs::auc_mann_whitney(scores.data(), positive.get(), static_cast<int64_t>(scores.size()));
    expect_same_number(auc, number(c["auc"]), 1e-12, c["name"].get<std::string>());
  }
}
