// Lasso by coordinate descent on the Gram, optionally accelerated by exact solves on the support.
#include "lasso.hpp"

#include <cmath>
#include <vector>

#include <Eigen/Cholesky>

namespace causalsweep {
namespace {

using Eigen::VectorXd;

// One cyclic sweep over the coordinates (scikit-learn's update order and formulas), keeping
// Hw = H w. Returns max |dw| and sets w_max = max |w|.
double sweep(const Eigen::MatrixXd& H, const VectorXd& q, double l1, VectorXd& w, VectorXd& Hw, double& w_max) {
  const Eigen::Index k = w.size();
  double dw_max = 0.0;
  w_max = 0.0;
  double* hw = Hw.data();
  for (Eigen::Index j = 0; j < k; ++j) {
    const double h_jj = H(j, j);
    if (h_jj == 0.0) continue;  // a regressor that is always 0 keeps weight 0
    const double w_old = w(j);
    const double rho = q(j) - hw[j] + h_jj * w_old;  // correlation with the partial residual
    const double w_new = std::copysign(std::max(std::abs(rho) - l1, 0.0), rho) / h_jj;
    if (w_new != w_old) {
      // One fused pass instead of scikit-learn's remove-then-add: same values up to rounding.
      const double delta = w_new - w_old;
      const double* h = H.col(j).data();
      for (Eigen::Index l = 0; l < k; ++l) hw[l] += delta * h[l];
      w(j) = w_new;
      dw_max = std::max(dw_max, std::abs(delta));
    }
    w_max = std::max(w_max, std::abs(w_new));
  }
  return dw_max;
}

// Feature-sign step (Lee et al. 2006): on the support of w with its signs the objective is a
// quadratic whose minimiser solves H_SS v = q_S - l1 sign(w_S). Move from w towards v; if a
// coefficient would cross zero first, stop there, drop it from the support and solve again.
// Every step lowers the objective, so the result is never worse than w. False if singular.
bool feature_sign_step(const Eigen::MatrixXd& H, const VectorXd& q, double l1, const VectorXd& w, VectorXd& out) {
  out = w;
  std::vector<Eigen::Index> support;
  for (Eigen::Index j = 0; j < w.size(); ++j)
    if (w(j) != 0.0) support.push_back(j);
  while (!support.empty()) {
    const auto s = static_cast<Eigen::Index>(support.size());
    Eigen::MatrixXd H_ss(s, s);
    VectorXd rhs(s), current(s);
    for (Eigen::Index a = 0; a < s; ++a) {
      current(a) = out(support[a]);
      rhs(a) = q(support[a]) - l1 * (current(a) > 0 ? 1.0 : -1.0);
      for (Eigen::Index b = 0; b < s; ++b) H_ss(a, b) = H(support[a], support[b]);
    }
    const Eigen::LLT<Eigen::MatrixXd> llt(H_ss);
    if (llt.info() != Eigen::Success) return false;
    const VectorXd target = llt.solve(rhs);
    if (!target.allFinite()) return false;
    // Largest step in (0, 1] that keeps every sign; the coefficient that limits it leaves.
    double step = 1.0;
    Eigen::Index leaving = -1;
    for (Eigen::Index a = 0; a < s; ++a)
      if ((target(a) > 0) != (current(a) > 0)) {
        const double t = current(a) / (current(a) - target(a));
        if (t < step) {
          step = t;
          leaving = a;
        }
      }
    for (Eigen::Index a = 0; a < s; ++a) out(support[a]) = current(a) + step * (target(a) - current(a));
    if (leaving < 0) return true;
    out(support[static_cast<size_t>(leaving)]) = 0.0;
    support.erase(support.begin() + leaving);
  }
  return true;
}

// Feature-sign search (Lee et al. 2006) for the active-set solver: grow the active set by the
// inactive coordinate with the largest KKT violation |q_j - (Hw)_j| > l1, solve exactly on the
// active set with fixed signs, and line-search the true objective at every sign crossing. Each
// iteration costs one |A| x |A| Cholesky instead of a k^2 sweep. Returns false if it could not
// finish (singular block or iteration cap); w then holds its best point for a warm start.
bool feature_sign_search(const Eigen::MatrixXd& H, const VectorXd& q, double l1, int max_iter, VectorXd& w,
                         int& iterations) {
  const Eigen::Index k = q.size();
  std::vector<Eigen::Index> active;
  VectorXd sign = VectorXd::Zero(k);
  bool on_support_optimal = true;
  // The lasso objective restricted to the active coordinates (scaled by m, constant dropped).
  auto objective = [&](const VectorXd& x) {
    double quadratic = 0, linear = 0, penalty = 0;
    for (size_t a = 0; a < active.size(); ++a) {
      linear += q(active[a]) * x(static_cast<Eigen::Index>(a));
      penalty += std::abs(x(static_cast<Eigen::Index>(a)));
      for (size_t b = 0; b < active.size(); ++b)
        quadratic += x(static_cast<Eigen::Index>(a)) * H(active[a], active[b]) * x(static_cast<Eigen::Index>(b));
    }
    return 0.5 * quadratic - linear + l1 * penalty;
  };
  for (iterations = 0; iterations < max_iter; ++iterations) {
    if (on_support_optimal) {
      // Every active coefficient is optimal: add the worst violator among the zeros, or stop.
      const VectorXd gradient = q - H * w;
      Eigen::Index best = -1;
      double violation = l1 * (1 + 1e-12);
      for (Eigen::Index j = 0; j < k; ++j)
        if (sign(j) == 0 && H(j, j) > 0 && std::abs(gradient(j)) > violation) {
          violation = std::abs(gradient(j));
          best = j;
        }
      if (best < 0) return true;
      active.push_back(best);
      sign(best) = gradient(best) > 0 ? 1.0 : -1.0;
    }
    const auto s = static_cast<Eigen::Index>(active.size());
    Eigen::MatrixXd H_aa(s, s);
    VectorXd rhs(s), current(s);
    for (Eigen::Index a = 0; a < s; ++a) {
      current(a) = w(active[a]);
      rhs(a) = q(active[a]) - l1 * sign(active[a]);
      for (Eigen::Index b = 0; b < s; ++b) H_aa(a, b) = H(active[a], active[b]);
    }
    const Eigen::LLT<Eigen::MatrixXd> llt(H_aa);
    if (llt.info() != Eigen::Success) return false;
    const VectorXd target = llt.solve(rhs);
    if (!target.allFinite()) return false;
    // Discrete line search on [current, target]: the end point and every sign crossing.
    double best_t = 1.0, best_value = objective(target);
    bool signs_kept = true;
    for (Eigen::Index a = 0; a < s; ++a) {
      if ((target(a) > 0 ? 1.0 : -1.0) == sign(active[a])) continue;
      signs_kept = false;
      if (current(a) == 0.0) continue;  // a coordinate just added starts at its crossing
      const double t = current(a) / (current(a) - target(a));
      const double value = objective(current + t * (target - current));
      if (value < best_value) {
        best_value = value;
        best_t = t;
      }
    }
    const VectorXd next = current + best_t * (target - current);
    std::vector<Eigen::Index> kept;
    for (Eigen::Index a = 0; a < s; ++a) {
      const bool crossed = best_t < 1.0 && std::abs(next(a)) <= 1e-14 * std::abs(current(a));
      w(active[a]) = crossed ? 0.0 : next(a);
      if (w(active[a]) != 0.0) {
        kept.push_back(active[a]);
        sign(active[a]) = w(active[a]) > 0 ? 1.0 : -1.0;
      } else {
        sign(active[a]) = 0.0;
      }
    }
    active = std::move(kept);
    on_support_optimal = best_t == 1.0 && signs_kept;
  }
  return false;
}

}  // namespace

double lasso_duality_gap(const VectorXd& w, const VectorXd& Hw, const VectorXd& q, double yy, double l1) {
  const double q_dot_w = q.dot(w);
  const double r_norm2 = yy + w.dot(Hw) - 2.0 * q_dot_w;  // ||y - X w||^2
  const double dual_norm = (q - Hw).cwiseAbs().maxCoeff();  // ||X'(y - X w)||_inf
  double scale = 1.0, gap = r_norm2;
  if (dual_norm > l1) {
    scale = l1 / dual_norm;
    gap = 0.5 * r_norm2 * (1.0 + scale * scale);
  }
  return gap + l1 * w.lpNorm<1>() - scale * (yy - q_dot_w);
}

LassoFit lasso_gram(const Eigen::MatrixXd& H, const VectorXd& q, double yy, double m, double alpha, double tol,
                    int max_iter, LassoSolver solver) {
  const double l1 = alpha * m;  // scikit-learn scales alpha by the number of samples
  const double gap_tol = tol * yy;
  LassoFit fit;  // sweeps counts coordinate sweeps; the feature-sign search needs none
  fit.w = VectorXd::Zero(q.size());
  VectorXd Hw = VectorXd::Zero(q.size());
  if (q.size() == 0) {
    fit.converged = true;
    return fit;
  }
  if (solver == LassoSolver::active_set) {
    int iterations = 0;
    const bool finished = feature_sign_search(H, q, l1, max_iter, fit.w, iterations);
    Hw = H * fit.w;
    fit.gap = lasso_duality_gap(fit.w, Hw, q, yy, l1);
    if (finished && fit.gap < gap_tol) {
      fit.converged = true;
      return fit;
    }
    // Rare (a singular block, or rounding at the tolerance): coordinate descent from here.
  }
  VectorXd candidate;
  while (fit.sweeps < max_iter) {
    double w_max = 0.0;
    const double dw_max = sweep(H, q, l1, fit.w, Hw, w_max);
    ++fit.sweeps;
    // scikit-learn looks at the gap only once the steps are small (or at the last sweep).
    if (!(w_max == 0.0 || dw_max / w_max < tol || fit.sweeps == max_iter)) {
      // The active-set solver also tries an exact solve every few sweeps: once the support is
      // right, that solve is the optimum, whatever the remaining coordinate-descent steps.
      if (solver != LassoSolver::active_set || fit.sweeps % 8 != 0) continue;
    }
    fit.gap = lasso_duality_gap(fit.w, Hw, q, yy, l1);
    // Polish before judging: with the right support the feature-sign step is the exact optimum,
    // so results do not depend on how many sweeps happened to reach the tolerance.
    if (solver == LassoSolver::active_set && feature_sign_step(H, q, l1, fit.w, candidate)) {
      const VectorXd H_candidate = H * candidate;
      const double candidate_gap = lasso_duality_gap(candidate, H_candidate, q, yy, l1);
      if (candidate_gap < fit.gap) {
        fit.w = candidate;
        Hw = H_candidate;
        fit.gap = candidate_gap;
      }
    }
    if (fit.gap < gap_tol) {
      fit.converged = true;
      break;
    }
  }
  return fit;
}

}  // namespace causalsweep
