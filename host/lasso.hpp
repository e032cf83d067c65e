#pragma once
// Lasso on a Gram: minimise 1/(2m) ||y - X w||^2 + alpha ||w||_1 (scikit-learn's objective) given
// H = X'X, q = X'y, yy = y'y and m samples, with scikit-learn's duality gap as the certificate.
#include <Eigen/Dense>

#include "causalsweep/config.hpp"  // LassoSolver

namespace causalsweep {


struct LassoFit {
  Eigen::VectorXd w;
  double gap = 0;       // final duality gap (scikit-learn's definition, scaled by m)
  int sweeps = 0;       // coordinate sweeps performed (0 when the feature-sign search finished)
  bool converged = false;
};

// Duality gap of w with Hw = H w, as scikit-learn computes it (l1 = alpha * m).
double lasso_duality_gap(const Eigen::VectorXd& w, const Eigen::VectorXd& Hw, const Eigen::VectorXd& q, double yy,
                         double l1);

LassoFit lasso_gram(const Eigen::MatrixXd& H, const Eigen::VectorXd& q, double yy, double m, double alpha, double tol,
                    int max_iter, LassoSolver solver);

}  // namespace causalsweep
