#pragma once
// How well an estimate V recovers the true connectivity on the observed block.
#include <cstdint>

#include <Eigen/Dense>

namespace causalsweep {

struct Scores {
  double corr_with_truth = 0;  // pearson(A_k flattened, V flattened), diagonal included
  double auc = 0;              // Mann-Whitney AUC of |V| against A_k != 0, ties counted half
  uint32_t flags = 0;
};

Scores score_estimate(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& estimate);

// Pearson correlation of two equally long sequences; NaN when either is constant (or has NaN).
double pearson(const double* a, const double* b, int64_t count);

// Area under the ROC curve of `score` for `positive` labels (Mann-Whitney U / (P N), ties half).
// NaN when there is no positive or no negative.
double auc_mann_whitney(const double* score, const bool* positive, int64_t count);

}  // namespace causalsweep
