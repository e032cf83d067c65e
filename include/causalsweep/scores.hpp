#pragma once
// How well an estimate V recovers the true connectivity on the observed block.
#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "causalsweep/config.hpp"
#include "causalsweep/estimators.hpp"
#include "causalsweep/results.hpp"

namespace causalsweep {

struct Scores {
  double corr_with_truth = 0;  // pearson(A_k flattened, V flattened), diagonal included
  double auc = 0;              // Mann-Whitney AUC of the ranking statistic against A_k != 0, ties half
  // Detection at the estimator's decision rule (see declared()); NaN and has_decisions = false when
  // the estimator has none.
  double tpr = 0, fpr = 0;
  bool has_decisions = false;
  std::vector<RocPoint> roc;   // filled when asked for
  uint32_t flags = 0;
};

// corr_with_truth and the AUC of |V| (the estimators without p-values; kept for compatibility).
Scores score_estimate(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& estimate);

// All scores of one run. The ranking statistic for auc and the ROC is 1 - p for granger and
// granger_conditional (their V is the 0/1 decision) and |V| for every other estimator.
Scores score_run(const Eigen::MatrixXd& truth, const Estimate& estimate, const EstimatorSpec& spec, bool keep_roc);

// The connections the estimator declares (1) or not (0), or an empty matrix when it has no rule:
// p-value estimators (ols, iv, granger*): p below spec.level after spec.correction; the others:
// |V| > spec.threshold, where lasso's default threshold is 0 (its selection) and correlation and
// perturbation have none unless spec.threshold >= 0 is given.
Eigen::MatrixXd declared(const Estimate& estimate, const EstimatorSpec& spec);

// Pearson correlation of two equally long sequences; NaN when either is constant (or has NaN).
double pearson(const double* a, const double* b, int64_t count);

// Area under the ROC curve of `score` for `positive` labels (Mann-Whitney U / (P N), ties half).
// NaN when there is no positive or no negative.
double auc_mann_whitney(const double* score, const bool* positive, int64_t count);

// scikit-learn's roc_curve(positive, score, drop_intermediate=False): one point per distinct score,
// from the highest down, after a first point (0, 0) at threshold max + 1 (scikit-learn 1.2). Empty
// with one class only.
std::vector<RocPoint> roc_curve(const double* score, const bool* positive, int64_t count);

}  // namespace causalsweep
