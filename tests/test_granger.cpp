// Granger causality, t tests, first-stage F and detection scores against statsmodels and
// scikit-learn (tests/reference/make_fixtures.py, section "significance"), on the rate network's
// data and on the linear VAR(1) model's (identity nonlinearity, signed weights).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <boost/math/distributions/students_t.hpp>

#include <nlohmann/json.hpp>

#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/gram.hpp"
#include "causalsweep/scores.hpp"
#include "data_io.hpp"
#include "engine.hpp"

#include "fixture_io.hpp"

namespace cs = causalsweep;
using Eigen::MatrixXd;
using nlohmann::json;

namespace {

using causalsweep::testing::expect_close;
MatrixXd matrix(const json& nested) { return causalsweep::testing::json_matrix(nested); }

const std::string& fixtures = causalsweep::testing::fixtures_dir;

const json& expected() { return causalsweep::testing::expected_fixtures(); }


// Entry by entry |a - b| <= rel |b|: p-values span many orders of magnitude, each must be relative.
void expect_relative(const MatrixXd& actual, const MatrixXd& reference, double rel, const std::string& what) {
  ASSERT_EQ(actual.rows(), reference.rows()) << what;
  ASSERT_EQ(actual.cols(), reference.cols()) << what;
  double worst = 0;
  for (Eigen::Index i = 0; i < actual.size(); ++i)
    worst = std::max(worst, std::abs(actual(i) - reference(i)) / std::abs(reference(i)));
  EXPECT_LE(worst, rel) << what << ": worst relative error " << worst;
}


struct Data {
  MatrixXd X, Z;
  cs::Gram gram;
};

const Data& data(const std::string& name) {
  static std::map<std::string, Data> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    Data d;
    d.X = cs::load_matrix(fixtures + name + "_X.csv");
    d.Z = cs::load_matrix(fixtures + name + "_Z.csv");
    d.gram = cs::gram_from_trajectories(d.X, d.Z, false,
                                        name == "var" ? cs::Nonlinearity::identity : cs::Nonlinearity::sigmoid);
    it = cache.emplace(name, std::move(d)).first;
  }
  return it->second;
}

const json& blocks(const std::string& name) {
  return name == "rate" ? expected()["significance"]["rate"] : expected()["significance"]["var"]["observed"];
}

double eta(const std::string& name) {
  return name == "rate" ? expected()["rate"]["eta"].get<double>() : expected()["significance"]["var"]["eta"].get<double>();
}

}  // namespace

class Significance : public ::testing::TestWithParam<std::string> {};

TEST_P(Significance, GrangerMatchesStatsmodelsLrtestAndSsrFtest) {
  const std::string name = GetParam();
  for (const json& b : blocks(name)) {
    const int k = b["k"].get<int>();
    const std::string at = name + " at k = " + std::to_string(k);
    const cs::Estimate g = cs::granger(data(name).gram, k);
    EXPECT_EQ(g.flags, 0u) << at;
    // Statistics near 0 carry statsmodels' absolute rounding (its LR is a difference of two
    // log-likelihoods), so they compare relative to the largest; p-values entry by entry.
    expect_close(g.statistic, matrix(b["granger"]["lr"]), 1e-8, "granger lr statistic " + at);
    expect_relative(g.p_value, matrix(b["granger"]["lr_p"]), 1e-8, "granger lrtest p " + at);
    expect_close(g.f_statistic, matrix(b["granger"]["f"]), 1e-8, "granger ssr_ftest F " + at);
    expect_relative(g.f_p_value, matrix(b["granger"]["f_p"]), 1e-8, "granger ssr_ftest p " + at);

    const cs::Estimate c = cs::granger_conditional(data(name).gram, k);
    EXPECT_EQ(c.flags, 0u) << at;
    expect_close(c.statistic, matrix(b["granger_conditional"]["lr"]), 1e-8, "conditional lr " + at);
    expect_relative(c.p_value, matrix(b["granger_conditional"]["lr_p"]), 1e-8, "conditional lr p " + at);
    expect_close(c.f_statistic, matrix(b["granger_conditional"]["f"]), 1e-8, "conditional F " + at);
    expect_relative(c.f_p_value, matrix(b["granger_conditional"]["f_p"]), 1e-8, "conditional F p " + at);

    // Against the 256-bit recomputation (mpmath from the exact sums): Boost's chi-square and F tails
    // on statistics from the float64 Gram hold 1e-10, tighter than scipy's own ~2.5e-9.
    expect_relative(g.p_value, matrix(b["granger"]["exact_lr_p"]), 1e-10, "granger lr p (exact) " + at);
    expect_relative(g.f_p_value, matrix(b["granger"]["exact_f_p"]), 1e-10, "granger F p (exact) " + at);
    expect_relative(c.p_value, matrix(b["granger_conditional"]["exact_lr_p"]), 1e-10, "conditional lr p (exact) " + at);
    expect_relative(c.f_p_value, matrix(b["granger_conditional"]["exact_f_p"]), 1e-10, "conditional F p (exact) " + at);
  }
}

// Sweeps never write the F tests' p-values and skip them (their incomplete beta was 90% of a
// Granger run); everything else is the same, bit for bit.
TEST_P(Significance, SkippedFTailsLeaveTheRestUnchanged) {
  const std::string name = GetParam();
  for (const json& b : blocks(name)) {
    const int k = b["k"].get<int>();
    for (const bool conditional : {false, true}) {
      const cs::Gram& g = data(name).gram;
      const cs::Estimate full = conditional ? cs::granger_conditional(g, k) : cs::granger(g, k);
      const cs::Estimate skipped =
          conditional ? cs::granger_conditional(g, k, cs::PValues::skip) : cs::granger(g, k, cs::PValues::skip);
      const std::string at = std::string(conditional ? "conditional " : "bivariate ") + name + " k = " + std::to_string(k);
      EXPECT_EQ(skipped.statistic, full.statistic) << at;
      EXPECT_EQ(skipped.p_value, full.p_value) << at;
      EXPECT_EQ(skipped.f_statistic, full.f_statistic) << at;
      EXPECT_EQ(skipped.flags, full.flags) << at;
      EXPECT_TRUE(skipped.f_p_value.array().isNaN().all()) << at;
      EXPECT_TRUE(full.f_p_value.allFinite()) << at;
    }
  }
}

TEST_P(Significance, DecisionsMatchMultipletests) {
  const std::string name = GetParam();
  const double alpha = expected()["significance"]["alpha"].get<double>();
  for (const json& b : blocks(name)) {
    const int k = b["k"].get<int>();
    for (const std::string method : {"granger", "granger_conditional"}) {
      const cs::Estimate e = method == "granger" ? cs::granger(data(name).gram, k) : cs::granger_conditional(data(name).gram, k);
      for (const auto& [label, correction] : {std::pair{"none", cs::Correction::none},
                                              std::pair{"bonferroni", cs::Correction::bonferroni},
                                              std::pair{"bh", cs::Correction::bh}}) {
        EXPECT_EQ(cs::decisions(e.p_value, alpha, correction), matrix(b[method]["decisions"][label]))
            << method << " " << label << " " << name << " at k = " << k;
      }
    }
  }
}

// Sweeps skip the OLS/IV p-values and decide by critical t values: the same decisions as the
// p-values would give, for every correction, on the fixtures and on random statistics.
TEST_P(Significance, CriticalTDecisionsEqualPValueDecisions) {
  const std::string name = GetParam();
  for (const json& b : blocks(name)) {
    const int k = b["k"].get<int>();
    for (const bool iv : {false, true}) {
      const cs::Estimate e = iv ? cs::two_stage_least_squares(data(name).gram, k, eta(name))
                                : cs::ordinary_least_squares(data(name).gram, k, false);
      const cs::Estimate skipped = iv ? cs::two_stage_least_squares(data(name).gram, k, eta(name), cs::PValues::skip)
                                      : cs::ordinary_least_squares(data(name).gram, k, false, cs::PValues::skip);
      EXPECT_EQ(skipped.p_value.size(), 0);
      EXPECT_EQ(skipped.statistic, e.statistic);
      for (const double alpha : {0.05, 0.2})
        for (const auto correction : {cs::Correction::none, cs::Correction::bonferroni, cs::Correction::bh})
          EXPECT_EQ(cs::t_test_decisions(skipped.statistic, skipped.residual_df, alpha, correction),
                    cs::decisions(e.p_value, alpha, correction))
              << (iv ? "iv " : "ols ") << name << " k = " << k << " alpha " << alpha;
    }
  }
}

TEST(Significance, CriticalTDecisionsOnRandomStatistics) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> t(-6.0, 6.0);
  for (const double df : {3.0, 48.0, 4994.0}) {
    Eigen::MatrixXd statistic(30, 30);
    for (Eigen::Index i = 0; i < statistic.size(); ++i) statistic(i) = t(rng);
    statistic(3, 4) = std::numeric_limits<double>::quiet_NaN();  // not tested, not in the family
    statistic(0, 0) = 80.0;                                       // past even df = 3's Bonferroni cut
    statistic(1, 1) = -200.0;
    const Eigen::MatrixXd p = statistic.unaryExpr([df](double v) {
      return std::isnan(v) ? v : 2.0 * boost::math::cdf(boost::math::complement(boost::math::students_t(df), std::abs(v)));
    });
    for (const auto correction : {cs::Correction::none, cs::Correction::bonferroni, cs::Correction::bh}) {
      const Eigen::MatrixXd by_t = cs::t_test_decisions(statistic, df, 0.05, correction);
      const Eigen::MatrixXd by_p = cs::decisions(p, 0.05, correction);
      EXPECT_TRUE(std::isnan(by_t(3, 4)));
      EXPECT_EQ(by_t.array().isNaN().count(), 1);
      for (Eigen::Index i = 0; i < p.size(); ++i)
        if (!std::isnan(p(i))) EXPECT_EQ(by_t(i), by_p(i)) << "df " << df << " t " << statistic(i);
      EXPECT_GT(by_t.array().isNaN().select(0, by_t).sum(), 0);  // some declared, so the test can fail
    }
  }
  // No finite statistic: nothing to decide, no division by an empty family.
  EXPECT_TRUE(cs::t_test_decisions(Eigen::MatrixXd::Constant(2, 2, NAN), 10, 0.05, cs::Correction::bonferroni)
                  .array()
                  .isNaN()
                  .all());
}

TEST_P(Significance, OlsAndIvTestsMatchStatsmodels) {
  const std::string name = GetParam();
  for (const json& b : blocks(name)) {
    const int k = b["k"].get<int>();
    const std::string at = name + " at k = " + std::to_string(k);
    const cs::Estimate ols = cs::ordinary_least_squares(data(name).gram, k, false);
    expect_close(ols.V, matrix(b["ols"]["V"]), 1e-8, "ols " + at);
    expect_close(ols.standard_error, matrix(b["ols"]["se"]), 1e-8, "ols se " + at);
    expect_close(ols.statistic, matrix(b["ols"]["t"]), 1e-8, "ols t " + at);
    expect_relative(ols.p_value, matrix(b["ols"]["p"]), 1e-8, "ols p " + at);
    EXPECT_EQ(ols.residual_df, b["ols"]["df"].get<double>());
    const cs::Estimate ols_i = cs::ordinary_least_squares(data(name).gram, k, true);
    expect_close(ols_i.statistic, matrix(b["ols_intercept"]["t"]), 1e-8, "ols with intercept t " + at);
    expect_relative(ols_i.p_value, matrix(b["ols_intercept"]["p"]), 1e-8, "ols with intercept p " + at);
    const cs::Estimate iv = cs::two_stage_least_squares(data(name).gram, k, eta(name));
    expect_close(iv.V, matrix(b["iv"]["V"]), 1e-8, "iv " + at);
    expect_close(iv.standard_error, matrix(b["iv"]["se"]), 1e-8, "iv se " + at);
    expect_close(iv.statistic, matrix(b["iv"]["t"]), 1e-8, "iv t " + at);
    expect_relative(iv.p_value, matrix(b["iv"]["p"]), 1e-8, "iv p " + at);
    EXPECT_EQ(iv.residual_df, b["iv"]["df"].get<double>());
    EXPECT_NEAR(iv.first_stage_f, b["iv"]["first_stage_f"].get<double>(),
                1e-8 * b["iv"]["first_stage_f"].get<double>()) << "first-stage F " << at;
  }
}

TEST_P(Significance, DetectionScoresMatchSklearn) {
  const std::string name = GetParam();
  for (const json& b : blocks(name)) {
    const int k = b["k"].get<int>();
    const std::string at = name + " at k = " + std::to_string(k);
    const MatrixXd truth = matrix(b["truth"]);
    for (const std::string method : {"granger", "granger_conditional", "ols"}) {
      cs::EstimatorSpec spec;
      spec.method = method == "granger"  ? cs::EstimatorMethod::granger
                    : method == "ols"    ? cs::EstimatorMethod::ols
                                         : cs::EstimatorMethod::granger_conditional;
      const cs::Estimate e = cs::run_estimator(spec, data(name).gram, nullptr, k, eta(name));
      const cs::Scores s = cs::score_run(truth, e, spec, true);
      const json& ref = method == "ols" ? b["ols_detection"] : b[method];
      if (ref["auc"].is_null()) {
        EXPECT_TRUE(std::isnan(s.auc)) << method << " " << at;
        EXPECT_NE(s.flags & cs::flag_one_class, 0u);
        continue;
      }
      EXPECT_NEAR(s.auc, ref["auc"].get<double>(), 1e-12) << "auc of " << method << " " << at;
      EXPECT_TRUE(s.has_decisions);
      EXPECT_NEAR(s.tpr, ref["tpr"].get<double>(), 1e-15) << "tpr of " << method << " " << at;
      EXPECT_NEAR(s.fpr, ref["fpr"].get<double>(), 1e-15) << "fpr of " << method << " " << at;
      ASSERT_EQ(s.roc.size(), ref["roc"]["fpr"].size()) << "roc points of " << method << " " << at;
      for (size_t p = 0; p < s.roc.size(); ++p) {
        EXPECT_NEAR(s.roc[p].fpr, ref["roc"]["fpr"][p].get<double>(), 1e-15) << method << " roc point " << p;
        EXPECT_NEAR(s.roc[p].tpr, ref["roc"]["tpr"][p].get<double>(), 1e-15) << method << " roc point " << p;
        // Thresholds are 1 - p (or |V|): as accurate as p itself, 1e-8 relative.
        const double threshold = ref["roc"]["threshold"][p].get<double>();
        EXPECT_NEAR(s.roc[p].threshold, threshold, 1e-8 * std::max(1.0, std::abs(threshold))) << method << " threshold " << p;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Significance, ::testing::Values("rate", "var"));

TEST(Granger, GrangerVIsTheDecisionAtAlpha) {
  cs::EstimatorSpec spec;
  spec.method = cs::EstimatorMethod::granger;
  spec.level = 0.01;
  const cs::Estimate e = cs::run_estimator(spec, data("rate").gram, nullptr, 8, 2.0);
  for (Eigen::Index i = 0; i < e.V.size(); ++i) EXPECT_EQ(e.V(i), e.p_value(i) < 0.01 ? 1.0 : 0.0);
}

TEST(Granger, DegenerateInputGivesNanAndFlags) {
  // A constant neuron: its tests are undefined (NaN + constant_regressor), the others still run.
  MatrixXd X = data("var").X;
  X.row(2).setConstant(0.5);
  const cs::Gram gram = cs::gram_from_trajectories(X, MatrixXd(), false, cs::Nonlinearity::identity);
  const cs::Estimate g = cs::granger(gram, 6);
  EXPECT_NE(g.flags & cs::flag_constant_regressor, 0u);
  EXPECT_TRUE(std::isnan(g.p_value(2, 0)));
  EXPECT_TRUE(std::isnan(g.p_value(0, 2)));
  EXPECT_TRUE(std::isfinite(g.p_value(0, 1)));
  const cs::Estimate c = cs::granger_conditional(gram, 6);
  EXPECT_NE(c.flags & cs::flag_singular, 0u);
  EXPECT_TRUE(std::isnan(c.p_value(0, 0)));
  // Too few transitions for the regressors.
  const cs::Gram tiny = cs::gram_from_trajectories(data("var").X.leftCols(3), MatrixXd(), false, cs::Nonlinearity::identity);
  EXPECT_NE(cs::granger(tiny, 6).flags & cs::flag_too_few_samples, 0u);
  EXPECT_NE(cs::granger_conditional(tiny, 6).flags & cs::flag_too_few_samples, 0u);
  // A duplicated neuron: the bivariate test of one on the other is collinear.
  MatrixXd D = data("var").X;
  D.row(1) = D.row(0);
  const cs::Estimate d = cs::granger(cs::gram_from_trajectories(D, MatrixXd(), false, cs::Nonlinearity::identity), 6);
  EXPECT_NE(d.flags & cs::flag_singular, 0u);
  EXPECT_TRUE(std::isnan(d.p_value(0, 1)));
}

// A target fitted perfectly (RSS within 1e-13 of its variation: rounding noise) leaves its tests
// undefined (NaN, flag_singular) on both tests; a fit that is merely very good is still tested.
TEST(Granger, PerfectFitIsUndefinedNotSignificant) {
  MatrixXd X = data("var").X;
  for (Eigen::Index t = 1; t < X.cols(); ++t) X(3, t) = 0.2 + 0.5 * X(1, t - 1);  // x_3[t+1] from x_1[t] exactly
  const cs::Gram perfect = cs::gram_from_trajectories(X, MatrixXd(), false, cs::Nonlinearity::identity);
  const cs::Estimate g = cs::granger(perfect, 6);
  EXPECT_EQ(g.flags, cs::flag_singular);
  EXPECT_TRUE(std::isnan(g.p_value(3, 1)));  // x_3[t+1] ~ 1 + x_3[t] + x_1[t]: perfect
  EXPECT_TRUE(std::isfinite(g.p_value(3, 0)));
  EXPECT_TRUE(std::isfinite(g.p_value(1, 3)));
  const cs::Estimate c = cs::granger_conditional(perfect, 6);
  EXPECT_EQ(c.flags, cs::flag_singular);
  for (int j = 0; j < 6; ++j) {
    EXPECT_TRUE(std::isnan(c.p_value(3, j))) << j;
    EXPECT_TRUE(std::isfinite(c.p_value(0, j))) << j;
  }
  // Noise of 1e-6 (RSS about 1e-11 of the variation): defined, and x_1 overwhelmingly significant.
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 1e-6);
  for (Eigen::Index t = 1; t < X.cols(); ++t) X(3, t) += noise(rng);
  const cs::Gram close = cs::gram_from_trajectories(X, MatrixXd(), false, cs::Nonlinearity::identity);
  const cs::Estimate c2 = cs::granger_conditional(close, 6);
  EXPECT_EQ(c2.flags, 0u);
  EXPECT_LT(c2.p_value(3, 1), 1e-300);
  EXPECT_EQ(cs::granger(close, 6).flags, 0u);
}

// A target that never varies after its first step leaves its tests undefined with flag
// constant_regressor, whichever sign the rounding residue of its centred sum of squares takes
// (0.3, 0.1 and 1/3 leave different residues).
TEST(Granger, ConstantTargetIsConstantWhateverTheRounding) {
  for (const double level : {0.3, 0.1, 1.0 / 3.0}) {
    MatrixXd X = data("var").X;
    for (Eigen::Index t = 1; t < X.cols(); ++t) X(3, t) = level;  // x_3[t+1] constant; x_3[t] still varies once
    const cs::Gram gram = cs::gram_from_trajectories(X, MatrixXd(), false, cs::Nonlinearity::identity);
    for (const bool conditional : {false, true}) {
      const cs::Estimate e = conditional ? cs::granger_conditional(gram, 6) : cs::granger(gram, 6);
      const std::string what = std::string(conditional ? "conditional" : "bivariate") + " at " + std::to_string(level);
      EXPECT_NE(e.flags & cs::flag_constant_regressor, 0u) << what;
      for (int j = 0; j < 6; ++j) {
        EXPECT_TRUE(std::isnan(e.p_value(3, j))) << what << " j " << j;
        EXPECT_TRUE(std::isfinite(e.p_value(0, j))) << what << " j " << j;
      }
    }
  }
}

// Long series: the centred sums of a constant grow with m (about m eps of the raw sums), and the
// tolerance with them (variation.hpp). A target constant over 1e6 steps and a regressor constant
// over 2e5 steps are still constant for both tests and for the correlation estimator (NaN, flagged),
// at levels whose residues are positive.
TEST(Granger, ConstantOverLongSeriesIsStillConstant) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> unit(0.05, 0.95);
  for (const auto& [steps, neuron, level] : {std::tuple{1000000, 3, 0.9}, std::tuple{200000, 0, 0.1}}) {
    MatrixXd X(4, steps);
    for (Eigen::Index t = 0; t < steps; ++t)
      for (int i = 0; i < 4; ++i) X(i, t) = unit(rng);
    X.row(neuron).setConstant(level);
    X(neuron, neuron == 3 ? 0 : steps - 1) = 0.5;  // varies once: at the start (target) or the end (regressor)
    const cs::Gram gram = cs::gram_from_trajectories(X, MatrixXd(), false, cs::Nonlinearity::identity);
    const std::string what = std::to_string(steps) + " steps, neuron " + std::to_string(neuron);
    for (const bool conditional : {false, true}) {
      const cs::Estimate e = conditional ? cs::granger_conditional(gram, 4) : cs::granger(gram, 4);
      EXPECT_NE(e.flags & cs::flag_constant_regressor, 0u) << what << (conditional ? " conditional" : " bivariate");
      if (neuron == 3)
        for (int j = 0; j < 4; ++j) EXPECT_TRUE(std::isnan(e.p_value(3, j))) << what << " j " << j;
      else if (!conditional)
        EXPECT_TRUE(std::isnan(e.p_value(1, 0))) << what;  // x_0 as the regressor
    }
    const cs::Estimate c = cs::correlation(gram, 4);
    EXPECT_NE(c.flags & cs::flag_constant_regressor, 0u) << what;
    if (neuron == 3)
      EXPECT_TRUE(std::isnan(c.V(3, 1))) << what;
    else
      EXPECT_TRUE(std::isnan(c.V(1, 0))) << what;
  }
}

TEST(Granger, BenjaminiHochbergByHand) {
  // p sorted: 0.001 0.008 0.039 0.041 0.042 0.06 0.074 0.205 0.212; m = 9, alpha = 0.05:
  // r alpha / m = 0.0056 0.011 0.0167 0.022 0.028 0.033 ...: only the first two pass.
  MatrixXd p(3, 3);
  p << 0.039, 0.001, 0.212, 0.041, 0.008, 0.042, 0.06, 0.074, 0.205;
  MatrixXd expected_bh = MatrixXd::Zero(3, 3);
  expected_bh(0, 1) = expected_bh(1, 1) = 1;
  EXPECT_EQ(cs::decisions(p, 0.05, cs::Correction::bh), expected_bh);
  MatrixXd expected_bonferroni = MatrixXd::Zero(3, 3);
  expected_bonferroni(0, 1) = 1;  // 0.05 / 9 = 0.0056
  EXPECT_EQ(cs::decisions(p, 0.05, cs::Correction::bonferroni), expected_bonferroni);
  EXPECT_EQ(cs::decisions(p, 0.05, cs::Correction::none).sum(), 5);
}

// ---- Statistical behaviour (Tutorial 4's Granger bonus): fixed seeds, the notebook's setting
// (p_connect = 0.1, T = 5000, no instruments), neuron 1's outgoing connections (column 1 of A),
// the diagonal left out (the notebook's test of a neuron on itself is degenerate). ----
namespace {

struct ColumnRecovery {
  double mean_correlation = 0;  // pearson(A[:, 1] != 0, V[:, 1]) averaged over seeds where defined
  int exact = 0;                // seeds whose column of decisions equals the truth
  double tpr = 0;               // whole-matrix tpr averaged over seeds
};

ColumnRecovery granger_column_recovery(int n, int seeds) {
  ColumnRecovery r;
  int defined = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    cs::NetworkTask task;
    task.seed = static_cast<uint64_t>(seed);
    task.n_neurons = n;
    task.timesteps = 5000;
    task.p_connect = 0.1;
    bool empty = false;
    const MatrixXd A = cs::generate_connectivity(task.seed, n, task.p_connect, empty);
    const cs::NetworkGrams grams = cs::simulate_network(task, A);
    cs::EstimatorSpec spec;
    spec.method = cs::EstimatorMethod::granger;
    const cs::Estimate e = cs::run_estimator(spec, grams.all, nullptr, n, 0.0);
    r.tpr += cs::score_run(A, e, spec, false).tpr / seeds;
    std::vector<double> truth, declared;
    for (int i = 0; i < n; ++i)
      if (i != 1) {
        truth.push_back(A(i, 1) != 0 ? 1.0 : 0.0);
        declared.push_back(e.V(i, 1));
      }
    r.exact += truth == declared;
    const double c = cs::pearson(truth.data(), declared.data(), static_cast<int64_t>(truth.size()));
    if (!std::isnan(c)) {
      r.mean_correlation += c;
      ++defined;
    }
  }
  r.mean_correlation /= defined;
  return r;
}

}  // namespace

TEST(GrangerStatistics, RecoversANeuronsConnectionsInSmallNetworksNotInLargeOnes) {
  // Measured with these seeds: n = 6: column exact in 18 of 20 networks, correlation 1.0 wherever
  // defined, tpr 1.0; n = 100: correlation 0.25, tpr 0.25 (indirect paths and weak inputs).
  const ColumnRecovery small = granger_column_recovery(6, 20);
  const ColumnRecovery large = granger_column_recovery(100, 20);
  EXPECT_GE(small.exact, 16);
  EXPECT_GT(small.mean_correlation, 0.9);
  EXPECT_GT(small.tpr, 0.95);
  EXPECT_LT(large.mean_correlation, 0.6);
  EXPECT_LT(large.tpr, 0.5);
  EXPECT_GT(small.mean_correlation - large.mean_correlation, 0.4);
}

TEST(GrangerStatistics, FirstStageFSaysWhenInstrumentsAreWeak) {
  // The same network at eta = 0 (instruments do not enter), 0.1 and 2: the first-stage F of the
  // weakest regressor is ~1 (F(k, m - k - 1) under the null), then grows with eta.
  double f[3];
  const double etas[3] = {0.0, 0.1, 2.0};
  for (int e = 0; e < 3; ++e) {
    cs::NetworkTask task;
    task.seed = 11;
    task.n_neurons = 10;
    task.timesteps = 20000;
    task.p_connect = 0.2;
    task.eta = etas[e];
    bool empty = false;
    const MatrixXd A = cs::generate_connectivity(task.seed, 10, task.p_connect, empty);
    const cs::Estimate iv = cs::two_stage_least_squares(cs::simulate_network(task, A).all, 10, task.eta);
    f[e] = iv.first_stage_f;
    EXPECT_EQ((iv.flags & cs::flag_unidentified) != 0, e == 0);
  }
  EXPECT_LT(f[0], 4.0);  // the weakest of 10 F(10, ~2e4) statistics; even one alone exceeds 4 with p ~ 1.7e-5
  EXPECT_GT(f[1], f[0]);
  EXPECT_GT(f[2], 100 * f[1]);
}
