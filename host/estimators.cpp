// Estimators from the Gram. Each regression is solved from its normal equations: with float64
// sums and the well-conditioned designs of these models that matches scikit-learn's and
// statsmodels' QR/SVD solutions to ~1e-12, at O(k^3) instead of O(T k^2).
#include "causalsweep/estimators.hpp"

#include <cmath>
#include <limits>

#include <Eigen/Cholesky>

#include "causalsweep/flags.hpp"

namespace causalsweep {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
// Reciprocal condition number under which a normal-equation system counts as singular: its
// solution would carry fewer than ~3 correct digits in float64.
constexpr double min_rcond = 1e-13;

using Eigen::MatrixXd;
using Eigen::VectorXd;

Estimate all_nan(int k, uint32_t flags, bool with_standard_errors) {
  Estimate e;
  e.V = MatrixXd::Constant(k, k, nan);
  if (with_standard_errors) e.standard_error = MatrixXd::Constant(k, k, nan);
  e.flags = flags;
  return e;
}

// Cholesky of a symmetric positive definite system; nullopt-like failure when it is singular.
bool factor(const MatrixXd& system, Eigen::LLT<MatrixXd>& llt) {
  if (!system.allFinite()) return false;
  llt.compute(system);
  return llt.info() == Eigen::Success && llt.rcond() > min_rcond;
}

// Pearson correlations from raw sums: V(i, j) = corr(target_i, source_j) with
// cross(j, i) = sum source_j target_i, as the correlation and perturbation estimators need.
Estimate correlation_from_sums(const Gram& g, int k) {
  const double m = static_cast<double>(g.transitions);
  const VectorXd sx = g.x_sum(k), sy = g.next_sum(k);
  const VectorXd var_x = g.xx(k).diagonal() - sx.cwiseAbs2() / m;
  const VectorXd var_y = g.next_sq(k) - sy.cwiseAbs2() / m;
  Estimate e;
  e.V.resize(k, k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double cov = g.x_next(k)(j, i) - sx(j) * sy(i) / m;
      const double denom = std::sqrt(var_x(j) * var_y(i));
      e.V(i, j) = denom > 0 ? cov / denom : nan;
    }
  if ((var_x.array() <= 0).any() || (var_y.array() <= 0).any()) e.flags |= flag_constant_regressor;
  return e;
}

// The moments of one least-squares problem with k regressors and k targets:
//   H = X'X, Q = X'Y (column i = target i), yy = diag(Y'Y), m samples.
struct Moments {
  MatrixXd H, Q;
  VectorXd yy;
  double m = 0;
};

// Regressors x[t], targets logit(x[t+1]); with an intercept the moments are centred, which is
// exactly fitting [1, x] and dropping the intercept row (and what scikit-learn does).
Moments regression_moments(const Gram& g, int k, bool intercept) {
  Moments mo{g.xx(k), g.x_logit(k), g.logit_sq(k), static_cast<double>(g.transitions)};
  if (intercept) {
    const VectorXd sx = g.x_sum(k), sy = g.logit_sum(k);
    mo.H -= sx * sx.transpose() / mo.m;
    mo.Q -= sx * sy.transpose() / mo.m;
    mo.yy -= sy.cwiseAbs2() / mo.m;
  }
  return mo;
}

// Residual sum of squares of coefficients B (column per target) from the moments alone.
VectorXd residual_sums(const Moments& mo, const MatrixXd& B) {
  VectorXd rss(B.cols());
  for (Eigen::Index i = 0; i < B.cols(); ++i)
    rss(i) = mo.yy(i) - 2.0 * B.col(i).dot(mo.Q.col(i)) + B.col(i).dot(mo.H * B.col(i));
  return rss;
}

bool has_constant_regressor(const Gram& g, int k) {
  const double m = static_cast<double>(g.transitions);
  return ((g.xx(k).diagonal() - g.x_sum(k).cwiseAbs2() / m).array() <= 0).any();
}

}  // namespace

Estimate correlation(const Gram& gram, int k) { return correlation_from_sums(gram, k); }

Estimate perturbation(const Gram& even_gram, int k) { return correlation_from_sums(even_gram, k); }

Estimate ordinary_least_squares(const Gram& gram, int k, bool intercept) {
  const int parameters = k + (intercept ? 1 : 0);
  if (gram.transitions <= parameters) return all_nan(k, flag_too_few_samples, true);
  const Moments mo = regression_moments(gram, k, intercept);
  Eigen::LLT<MatrixXd> llt;
  if (!factor(mo.H, llt))
    return all_nan(k, flag_singular | (has_constant_regressor(gram, k) ? flag_constant_regressor : flag_none), true);
  const MatrixXd B = llt.solve(mo.Q);  // column i: coefficients of target i
  const VectorXd variance = residual_sums(mo, B) / (mo.m - parameters);
  const VectorXd inverse_diagonal = llt.solve(MatrixXd::Identity(k, k)).diagonal();
  Estimate e;
  e.V = B.transpose();
  e.standard_error = (variance * inverse_diagonal.transpose()).cwiseMax(0.0).cwiseSqrt();
  return e;
}

Estimate lasso(const Gram& gram, int k, double alpha, bool intercept, double tol, int max_iter) {
  if (gram.transitions < 1) return all_nan(k, flag_too_few_samples, false);
  const Moments mo = regression_moments(gram, k, intercept);
  const double l1 = alpha * mo.m;  // scikit-learn scales alpha by the number of samples
  Estimate e;
  e.V = MatrixXd::Zero(k, k);
  VectorXd w(k), Hw(k);
  for (int target = 0; target < k; ++target) {
    // scikit-learn's enet_coordinate_descent_gram with beta = 0: cyclic updates keeping Hw = H w,
    // and a duality-gap check whenever the largest step is small relative to the largest weight.
    const auto q = mo.Q.col(target);
    const double y_norm2 = mo.yy(target);
    const double gap_tol = tol * y_norm2;
    w.setZero();
    Hw.setZero();
    bool converged = false;
    int sweep = 0;
    for (; sweep < max_iter && !converged; ++sweep) {
      double w_max = 0.0, dw_max = 0.0;
      for (int j = 0; j < k; ++j) {
        const double h_jj = mo.H(j, j);
        if (h_jj == 0.0) continue;  // a regressor that is always 0 keeps weight 0
        const double w_old = w(j);
        const double rho = q(j) - Hw(j) + h_jj * w_old;  // correlation with the partial residual
        const double w_new = std::copysign(std::max(std::abs(rho) - l1, 0.0), rho) / h_jj;
        w(j) = w_new;
        if (w_new != w_old) Hw += (w_new - w_old) * mo.H.col(j);  // one pass instead of remove-then-add
        dw_max = std::max(dw_max, std::abs(w_new - w_old));
        w_max = std::max(w_max, std::abs(w_new));
      }
      if (w_max == 0.0 || dw_max / w_max < tol || sweep == max_iter - 1) {
        const double q_dot_w = q.dot(w);
        const double dual_norm = (q - Hw).cwiseAbs().maxCoeff();
        const double r_norm2 = y_norm2 + w.dot(Hw) - 2.0 * q_dot_w;
        double scale = 1.0, gap = r_norm2;
        if (dual_norm > l1) {
          scale = l1 / dual_norm;
          gap = 0.5 * r_norm2 * (1.0 + scale * scale);
        }
        gap += l1 * w.lpNorm<1>() - scale * y_norm2 + scale * q_dot_w;
        converged = gap < gap_tol;
      }
    }
    if (!converged) e.flags |= flag_not_converged;
    e.iterations = std::max(e.iterations, sweep);
    e.V.row(target) = w.transpose();
  }
  if (!mo.H.allFinite() || !mo.Q.allFinite()) return all_nan(k, flag_singular, false);
  return e;
}

namespace {

// Two-stage least squares from moments, both stages with an intercept. With instruments
// Zc = [1, z] (q columns), regressors Xc = [1, x] (p columns) and targets Y:
//   zz = Zc'Zc, zx = Zc'Xc, zy = Zc'Y, xx = Xc'Xc, xy = Xc'Y, yy = diag(Y'Y).
// Stage 1: Gamma = zz^-1 zx (so xhat = Zc Gamma, whose first column is the constant 1);
// stage 2: beta = (Gamma' zx)^-1 Gamma' zy, since xhat'xhat = Gamma' zz Gamma = Gamma' zx.
// Residuals use the observed regressors: rss = yy - 2 beta'xy + beta'xx beta.
struct IVSolution {
  MatrixXd beta, standard_error;  // p x targets: row 0 the intercepts, then the slopes
  uint32_t flags = 0;
};

IVSolution two_stage_from_moments(const MatrixXd& zz, const MatrixXd& zx, const MatrixXd& zy, const MatrixXd& xx,
                                  const MatrixXd& xy, const VectorXd& yy, double m) {
  const Eigen::Index p = zx.cols(), targets = zy.cols();
  IVSolution s;
  Eigen::LLT<MatrixXd> first;
  if (!factor(zz, first)) {
    s.flags = flag_unidentified | flag_singular;  // the instruments are collinear (e.g. a constant z)
    return s;
  }
  const MatrixXd gamma = first.solve(zx);
  MatrixXd normal = gamma.transpose() * zx;
  normal = 0.5 * (normal + normal.transpose());  // symmetric up to rounding; make it exactly so
  Eigen::LLT<MatrixXd> second;
  if (m <= static_cast<double>(p) || !factor(normal, second)) {
    s.flags = m <= static_cast<double>(p) ? flag_too_few_samples : flag_singular;
    return s;
  }
  s.beta = second.solve(gamma.transpose() * zy);
  const VectorXd inverse_diagonal = second.solve(MatrixXd::Identity(p, p)).diagonal();
  s.standard_error.resize(p, targets);
  for (Eigen::Index i = 0; i < targets; ++i) {
    const auto b = s.beta.col(i);
    const double rss = yy(i) - 2.0 * b.dot(xy.col(i)) + b.dot(xx * b);
    s.standard_error.col(i) = (std::max(rss, 0.0) / (m - static_cast<double>(p)) * inverse_diagonal).cwiseSqrt();
  }
  return s;
}

// [[m, s'], [s, S]]: the Gram of [1, v] from the sum s and the cross products S of v.
MatrixXd with_constant(double m, const VectorXd& left_sum, const VectorXd& right_sum, const MatrixXd& cross) {
  MatrixXd out(cross.rows() + 1, cross.cols() + 1);
  out(0, 0) = m;
  out.block(0, 1, 1, cross.cols()) = right_sum.transpose();
  out.block(1, 0, cross.rows(), 1) = left_sum;
  out.bottomRightCorner(cross.rows(), cross.cols()) = cross;
  return out;
}

// [s'; C]: the cross products of [1, v] with targets, from the targets' sums and C = v'Y.
MatrixXd stack_sum(const VectorXd& target_sum, const MatrixXd& cross) {
  MatrixXd out(cross.rows() + 1, cross.cols());
  out.row(0) = target_sum.transpose();
  out.bottomRows(cross.rows()) = cross;
  return out;
}

}  // namespace

Estimate two_stage_least_squares(const Gram& g, int k, double instrument_strength) {
  // With eta = 0 the instruments do not enter the dynamics: any IV estimate would be noise.
  if (instrument_strength == 0.0) return all_nan(k, flag_unidentified, true);
  const double m = static_cast<double>(g.transitions);
  const VectorXd sz = g.z_sum(k), sx = g.x_sum(k), sy = g.logit_sum(k);
  const IVSolution s = two_stage_from_moments(
      with_constant(m, sz, sz, g.zz(k)), with_constant(m, sz, sx, g.zx(k)), stack_sum(sy, g.z_logit(k)),
      with_constant(m, sx, sx, g.xx(k)), stack_sum(sy, g.x_logit(k)), g.logit_sq(k), m);
  if (s.beta.size() == 0) return all_nan(k, s.flags, true);
  Estimate e;
  e.V = s.beta.bottomRows(k).transpose();
  e.standard_error = s.standard_error.bottomRows(k).transpose();
  e.flags = s.flags;
  return e;
}

ScalarIV scalar_two_stage_least_squares(const VectorXd& outcome, const VectorXd& treatment,
                                        const VectorXd& instrument) {
  const double m = static_cast<double>(outcome.size());
  auto gram = [&](const VectorXd& a, const VectorXd& b) {
    return with_constant(m, VectorXd::Constant(1, a.sum()), VectorXd::Constant(1, b.sum()),
                         MatrixXd::Constant(1, 1, a.dot(b)));
  };
  const MatrixXd zx = gram(instrument, treatment);
  const MatrixXd zz = gram(instrument, instrument);
  const MatrixXd zy = stack_sum(VectorXd::Constant(1, outcome.sum()), MatrixXd::Constant(1, 1, instrument.dot(outcome)));
  const MatrixXd xy = stack_sum(VectorXd::Constant(1, outcome.sum()), MatrixXd::Constant(1, 1, treatment.dot(outcome)));
  const IVSolution s =
      two_stage_from_moments(zz, zx, zy, gram(treatment, treatment), xy, VectorXd::Constant(1, outcome.dot(outcome)), m);
  ScalarIV r;
  r.flags = s.flags;
  if (s.beta.size() == 0) {
    r.effect = r.standard_error = r.intercept = r.first_stage_f = nan;
    return r;
  }
  r.intercept = s.beta(0, 0);
  r.effect = s.beta(1, 0);
  r.standard_error = s.standard_error(1, 0);
  // First-stage F of one instrument: explained over residual variance of treatment ~ 1 + instrument.
  const double t_mean = treatment.mean();
  const double tss = treatment.squaredNorm() - m * t_mean * t_mean;
  const Eigen::Vector2d g = zz.llt().solve(zx.col(1));
  const double rss = treatment.squaredNorm() - g.dot(zx.col(1));
  r.first_stage_f = (tss - rss) / (rss / (m - 2.0));
  return r;
}

Estimate run_estimator(const EstimatorSpec& spec, const Gram& gram, const Gram* even_gram, int k,
                       double instrument_strength) {
  switch (spec.method) {
    case EstimatorMethod::correlation: return correlation(gram, k);
    case EstimatorMethod::perturbation:
      return even_gram ? perturbation(*even_gram, k) : all_nan(k, flag_unidentified, false);
    case EstimatorMethod::ols: return ordinary_least_squares(gram, k, spec.intercept);
    case EstimatorMethod::lasso: return lasso(gram, k, spec.alpha, spec.intercept, spec.tol, spec.max_iter);
    case EstimatorMethod::iv: return two_stage_least_squares(gram, k, instrument_strength);
  }
  return all_nan(k, flag_singular, false);
}

}  // namespace causalsweep
