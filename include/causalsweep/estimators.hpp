#pragma once
// The estimators, each a function of the Gram restricted to the first k (observed) neurons.
// Every one returns a k x k matrix V with A's orientation: V(i, j) = effect of j on i.
// Degenerate input gives NaN entries plus flags, never an exception.
#include <cstdint>
#include <limits>

#include <Eigen/Dense>

#include "causalsweep/config.hpp"
#include "causalsweep/gram.hpp"

namespace causalsweep {

struct Estimate {
  Eigen::MatrixXd V;               // k x k
  Eigen::MatrixXd standard_error;  // k x k where the estimator has them (ols, iv), else empty
  // Tests of V(i, j) = 0 (ols, iv: Student t; granger: likelihood ratio, chi-square(1)), k x k or empty.
  Eigen::MatrixXd statistic;
  Eigen::MatrixXd p_value;
  // granger, granger_conditional: statsmodels' ssr_ftest F statistic and its F(1, df) p-value.
  Eigen::MatrixXd f_statistic;
  Eigen::MatrixXd f_p_value;
  double residual_df = 0;          // degrees of freedom of the t (ols, iv) or F (granger) tests
  // iv: the weakest first stage, min over regressors j of the F of x_j ~ 1 + z_1..z_k; else NaN.
  double first_stage_f = std::numeric_limits<double>::quiet_NaN();
  uint32_t flags = 0;
  int iterations = 0;              // lasso: the largest number of coordinate sweeps over the targets
};

// Tutorial 2: V(i, j) = pearson(x_i[t+1], x_j[t]).
Estimate correlation(const Gram& gram, int k);

// Tutorial 1: V(i, j) = pearson(x_i[t+1], x_j[t]) over the clamped (even t) transitions only;
// `even_gram` is the Gram of those transitions.
Estimate perturbation(const Gram& even_gram, int k);

// Which p-values to compute. Sweeps skip what they never write: ols and iv decide by critical t
// values (t_test_decisions) instead of k x k Student-t p-values, and granger keeps its likelihood-ratio
// p-values (decisions, AUC) but leaves f_p_value NaN (F tails cost ~2 us each, 90% of a run at k = 100).
enum class PValues { compute, skip };

// Tutorial 3 with alpha = 0: least squares of logit(x_i[t+1]) on x[t] (and 1 with intercept).
Estimate ordinary_least_squares(const Gram& gram, int k, bool intercept, PValues p_values = PValues::compute);

// Tutorial 3: scikit-learn's Lasso objective 1/(2m) ||y - X w||^2 + alpha ||w||_1 per target, by
// `solver` (host/lasso.hpp), until scikit-learn's duality gap < tol * y'y; flagged if max_iter ends it.
Estimate lasso(const Gram& gram, int k, double alpha, bool intercept, double tol, int max_iter,
               LassoSolver solver = LassoSolver::active_set);

// Tutorial 4: two-stage least squares, both stages with intercepts. Stage 1 regresses x[t] on
// [1, z[t]] (observed instruments); stage 2 regresses logit(x[t+1]) on [1, xhat[t]]. Standard
// errors use residuals computed with the observed x, as statsmodels' IV2SLS.
Estimate two_stage_least_squares(const Gram& gram, int k, double instrument_strength,
                                 PValues p_values = PValues::compute);

// Lag-1 Granger causality of j on i from x itself (not logit), as statsmodels'
// grangercausalitytests(maxlag=1): restricted x_i[t+1] ~ 1 + x_i[t], unrestricted adds x_j[t];
// statistic = m ln(RSS_r / RSS_u) (m = transitions), chi-square(1) p-value ('lrtest'), and the F
// statistic (RSS_r - RSS_u) / (RSS_u / (m - 3)) with its F(1, m - 3) p-value ('ssr_ftest').
// The diagonal (j = i, which statsmodels does not define) tests x_i[t] against the intercept alone.
// V is filled by apply_decisions (1 where the test rejects).
Estimate granger(const Gram& gram, int k, PValues p_values = PValues::compute);

// Conditional (multivariate) Granger: unrestricted x_i[t+1] ~ 1 + x_1[t] .. x_k[t], restricted drops
// x_j[t]; the same statistics with df = m - k - 1.
Estimate granger_conditional(const Gram& gram, int k, PValues p_values = PValues::compute);

// How p-values become decisions over the k x k tests of one run (the family).
// none: p < alpha; bonferroni: p <= alpha / (k k); bh: Benjamini-Hochberg step-up at alpha over the
// k k p-values (statsmodels' multipletests 'bonferroni' and 'fdr_bh'). NaN p-values are never
// declared and do not count in the family. Returns 0/1 (NaN where p is NaN).
Eigen::MatrixXd decisions(const Eigen::MatrixXd& p_value, double alpha, Correction correction);

// The same decisions for two-sided t tests from the statistics and their df, without p-values where
// a critical value decides (none: |t| > q(1 - alpha/2); bonferroni: |t| >= q(1 - alpha/(2 family)));
// bh needs the ranks of the p-values and computes them.
Eigen::MatrixXd t_test_decisions(const Eigen::MatrixXd& statistic, double df, double alpha, Correction correction);

// Dispatches on spec.method. `even_gram` is used by the perturbation estimator only.
Estimate run_estimator(const EstimatorSpec& spec, const Gram& gram, const Gram* even_gram, int k,
                       double instrument_strength, PValues p_values = PValues::compute);

// One scalar 2SLS (Tutorial 4's smoking example): outcome on treatment instrumented by instrument.
struct ScalarIV {
  double effect = 0, standard_error = 0, intercept = 0, first_stage_f = 0;
  // Student t with m - 2 degrees of freedom, as statsmodels' IV2SLS: t = effect / se, two-sided p,
  // and the 95% interval effect -+ t_0.975 se.
  double t = 0, p_value = 0, ci_low = 0, ci_high = 0, residual_df = 0;
  uint32_t flags = 0;
};
ScalarIV scalar_two_stage_least_squares(const Eigen::VectorXd& outcome, const Eigen::VectorXd& treatment,
                                        const Eigen::VectorXd& instrument);

}  // namespace causalsweep
