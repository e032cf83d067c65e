#pragma once
// The estimators, each a function of the Gram restricted to the first k (observed) neurons.
// Every one returns a k x k matrix V with A's orientation: V(i, j) = effect of j on i.
// Degenerate input gives NaN entries plus flags, never an exception.
#include <cstdint>

#include <Eigen/Dense>

#include "causalsweep/config.hpp"
#include "causalsweep/gram.hpp"

namespace causalsweep {

struct Estimate {
  Eigen::MatrixXd V;             // k x k
  Eigen::MatrixXd standard_error;  // k x k where the estimator has them (ols, iv), else empty
  uint32_t flags = 0;
  int iterations = 0;            // lasso: the largest number of coordinate sweeps over the targets
};

// Tutorial 2: V(i, j) = pearson(x_i[t+1], x_j[t]).
Estimate correlation(const Gram& gram, int k);

// Tutorial 1: V(i, j) = pearson(x_i[t+1], x_j[t]) over the clamped (even t) transitions only;
// `even_gram` is the Gram of those transitions.
Estimate perturbation(const Gram& even_gram, int k);

// Tutorial 3 with alpha = 0: least squares of logit(x_i[t+1]) on x[t] (and 1 with intercept).
Estimate ordinary_least_squares(const Gram& gram, int k, bool intercept);

// Tutorial 3: scikit-learn's Lasso objective 1/(2m) ||y - X w||^2 + alpha ||w||_1 by cyclic
// coordinate descent on the Gram, until the duality gap < tol * y'y (scikit-learn's rule).
Estimate lasso(const Gram& gram, int k, double alpha, bool intercept, double tol, int max_iter);

// Tutorial 4: two-stage least squares, both stages with intercepts. Stage 1 regresses x[t] on
// [1, z[t]] (observed instruments); stage 2 regresses logit(x[t+1]) on [1, xhat[t]]. Standard
// errors use residuals computed with the observed x, as statsmodels' IV2SLS.
Estimate two_stage_least_squares(const Gram& gram, int k, double instrument_strength);

// Dispatches on spec.method. `even_gram` is used by the perturbation estimator only.
Estimate run_estimator(const EstimatorSpec& spec, const Gram& gram, const Gram* even_gram, int k,
                       double instrument_strength);

// One scalar 2SLS (Tutorial 4's smoking example): outcome on treatment instrumented by instrument.
struct ScalarIV {
  double effect = 0, standard_error = 0, intercept = 0, first_stage_f = 0;
  uint32_t flags = 0;
};
ScalarIV scalar_two_stage_least_squares(const Eigen::VectorXd& outcome, const Eigen::VectorXd& treatment,
                                        const Eigen::VectorXd& instrument);

}  // namespace causalsweep
