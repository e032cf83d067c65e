// Estimators from the Gram. Each regression is solved from its normal equations: with float64
// sums and the well-conditioned designs of these models that matches scikit-learn's and
// statsmodels' QR/SVD solutions to ~1e-12, at O(k^3) instead of O(T k^2).
#include "causalsweep/estimators.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <Eigen/Cholesky>
#include <boost/math/distributions/fisher_f.hpp>
#include <boost/math/distributions/students_t.hpp>

#include "causalsweep/flags.hpp"
#include "causalsweep/granger_test.hpp"
#include "lasso.hpp"

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
  if (with_standard_errors) e.standard_error = e.statistic = e.p_value = MatrixXd::Constant(k, k, nan);
  e.flags = flags;
  return e;
}

Estimate all_nan_tests(int k, uint32_t flags) {
  Estimate e;
  e.V = e.statistic = e.p_value = e.f_statistic = e.f_p_value = MatrixXd::Constant(k, k, nan);
  e.flags = flags;
  return e;
}

// Boost's complements are accurate far into the tails (p down to ~1e-300), unlike 1 - cdf.
double student_two_sided(double t, double df) {
  if (!std::isfinite(t) || !(df > 0)) return nan;
  return 2.0 * boost::math::cdf(boost::math::complement(boost::math::students_t(df), std::abs(t)));
}

double f_upper(double statistic, double df1, double df2) {
  if (!std::isfinite(statistic) || !(df2 > 0)) return nan;
  return boost::math::cdf(boost::math::complement(boost::math::fisher_f(df1, df2), std::max(statistic, 0.0)));
}

// t statistics and (unless skipped) two-sided p-values of coefficients V with standard errors se.
void add_t_tests(Estimate& e, double df, PValues p_values) {
  e.residual_df = df;
  e.statistic = e.V.cwiseQuotient(e.standard_error);
  if (p_values == PValues::compute)
    e.p_value = e.statistic.unaryExpr([df](double t) { return student_two_sided(t, df); });
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
  const VectorXd raw_x = g.xx(k).diagonal(), raw_y = g.next_sq(k);
  const VectorXd var_x = raw_x - sx.cwiseAbs2() / m;
  const VectorXd var_y = raw_y - sy.cwiseAbs2() / m;
  std::vector<char> constant_x(static_cast<size_t>(k)), constant_y(static_cast<size_t>(k));
  for (int j = 0; j < k; ++j) {
    constant_x[static_cast<size_t>(j)] = never_varied(var_x(j), raw_x(j), m);  // variation.hpp
    constant_y[static_cast<size_t>(j)] = never_varied(var_y(j), raw_y(j), m);
  }
  Estimate e;
  e.V.resize(k, k);
  const auto x_next = g.x_next(k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const double cov = x_next(j, i) - sx(j) * sy(i) / m;
      const double denom = std::sqrt(var_x(j) * var_y(i));
      const bool varied = !constant_x[static_cast<size_t>(j)] && !constant_y[static_cast<size_t>(i)];
      e.V(i, j) = varied && denom > 0 ? cov / denom : nan;
    }
  for (int j = 0; j < k; ++j)
    if (constant_x[static_cast<size_t>(j)] || constant_y[static_cast<size_t>(j)]) e.flags |= flag_constant_regressor;
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
  const VectorXd raw = g.xx(k).diagonal(), centred = raw - g.x_sum(k).cwiseAbs2() / m;
  for (int j = 0; j < k; ++j)
    if (never_varied(centred(j), raw(j), m)) return true;  // variation.hpp
  return false;
}

}  // namespace

Estimate correlation(const Gram& gram, int k) { return correlation_from_sums(gram, k); }

Estimate perturbation(const Gram& even_gram, int k) { return correlation_from_sums(even_gram, k); }

Estimate ordinary_least_squares(const Gram& gram, int k, bool intercept, PValues p_values) {
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
  add_t_tests(e, mo.m - parameters, p_values);
  return e;
}

Estimate lasso(const Gram& gram, int k, double alpha, bool intercept, double tol, int max_iter, LassoSolver solver) {
  if (gram.transitions < 1) return all_nan(k, flag_too_few_samples, false);
  const Moments mo = regression_moments(gram, k, intercept);
  if (!mo.H.allFinite() || !mo.Q.allFinite()) return all_nan(k, flag_singular, false);
  Estimate e;
  e.V.resize(k, k);
  for (int target = 0; target < k; ++target) {
    const LassoFit fit = lasso_gram(mo.H, mo.Q.col(target), mo.yy(target), mo.m, alpha, tol, max_iter, solver);
    if (!fit.converged) e.flags |= flag_not_converged;
    e.iterations = std::max(e.iterations, fit.sweeps);
    e.V.row(target) = fit.w.transpose();
  }
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
  double first_stage_f = nan;     // min over the regressors j of the F of x_j ~ instruments
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
  // First-stage F of each regressor column j >= 1 (column 0 is the constant): statsmodels'
  // OLS(x_j, Zc).fvalue = (ESS / (q - 1)) / (RSS / (m - q)); the weakest one is reported.
  const Eigen::Index q = zz.cols();
  if (q > 1 && m > static_cast<double>(q)) {
    double weakest = std::numeric_limits<double>::infinity();
    for (Eigen::Index j = 1; j < p; ++j) {
      const double rss = xx(j, j) - gamma.col(j).dot(zx.col(j));
      const double tss = xx(j, j) - xx(0, j) * xx(0, j) / m;
      const double f = ((tss - rss) / static_cast<double>(q - 1)) / (rss / (m - static_cast<double>(q)));
      if (rss > 0) weakest = std::min(weakest, f);  // rss = 0: a perfect first stage, no limit
    }
    s.first_stage_f = weakest;
  }
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

Estimate two_stage_least_squares(const Gram& g, int k, double instrument_strength, PValues p_values) {
  const double m = static_cast<double>(g.transitions);
  const VectorXd sz = g.z_sum(k), sx = g.x_sum(k), sy = g.logit_sum(k);
  const IVSolution s = two_stage_from_moments(
      with_constant(m, sz, sz, g.zz(k)), with_constant(m, sz, sx, g.zx(k)), stack_sum(sy, g.z_logit(k)),
      with_constant(m, sx, sx, g.xx(k)), stack_sum(sy, g.x_logit(k)), g.logit_sq(k), m);
  // With eta = 0 the instruments do not enter the dynamics: any IV estimate would be noise. The
  // first-stage F is still reported: near 1, it is the diagnostic that says so.
  if (s.beta.size() == 0 || instrument_strength == 0.0) {
    Estimate failed = all_nan(k, instrument_strength == 0.0 ? flag_unidentified : s.flags, true);
    failed.first_stage_f = s.first_stage_f;
    return failed;
  }
  Estimate e;
  e.V = s.beta.bottomRows(k).transpose();
  e.standard_error = s.standard_error.bottomRows(k).transpose();
  add_t_tests(e, m - k - 1, p_values);
  e.first_stage_f = s.first_stage_f;
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
  if (s.beta.size() == 0 || m < 3) {
    r.effect = r.standard_error = r.intercept = r.first_stage_f = r.t = r.p_value = r.ci_low = r.ci_high = nan;
    return r;
  }
  r.intercept = s.beta(0, 0);
  r.effect = s.beta(1, 0);
  r.standard_error = s.standard_error(1, 0);
  r.first_stage_f = s.first_stage_f;
  r.residual_df = m - 2.0;
  r.t = r.effect / r.standard_error;
  r.p_value = student_two_sided(r.t, r.residual_df);
  const double half_width =
      boost::math::quantile(boost::math::students_t(r.residual_df), 0.975) * r.standard_error;
  r.ci_low = r.effect - half_width;
  r.ci_high = r.effect + half_width;
  return r;
}

Estimate run_estimator(const EstimatorSpec& spec, const Gram& gram, const Gram* even_gram, int k,
                       double instrument_strength, PValues p_values) {
  switch (spec.method) {
    case EstimatorMethod::correlation: return correlation(gram, k);
    case EstimatorMethod::perturbation:
      return even_gram ? perturbation(*even_gram, k) : all_nan(k, flag_unidentified, false);
    case EstimatorMethod::ols: return ordinary_least_squares(gram, k, spec.intercept, p_values);
    case EstimatorMethod::lasso:
      return lasso(gram, k, spec.alpha, spec.intercept, spec.tol, spec.max_iter, spec.solver);
    case EstimatorMethod::iv: return two_stage_least_squares(gram, k, instrument_strength, p_values);
    case EstimatorMethod::granger:
    case EstimatorMethod::granger_conditional: {
      Estimate e = spec.method == EstimatorMethod::granger ? granger(gram, k, p_values)
                                                            : granger_conditional(gram, k, p_values);
      e.V = decisions(e.p_value, spec.level, spec.correction);
      return e;
    }
    case EstimatorMethod::sta_shuffle: break;  // the n_to_1 family's test: config refuses it for rate models
  }
  return all_nan(k, flag_singular, false);
}

namespace {

// Centred moments of the Granger regressions (targets x[t+1] itself): C = cov sums of x[t],
// c(j, i) = sum of centred x_j[t] x_i[t+1], syy(i) = centred sum of squares of x_i[t+1].
struct GrangerMoments {
  MatrixXd C, c;
  VectorXd syy;
  double m = 0;
};

GrangerMoments granger_moments(const Gram& g, int k) {
  GrangerMoments mo;
  mo.m = static_cast<double>(g.transitions);
  const VectorXd sx = g.x_sum(k), sy = g.next_sum(k);
  mo.C = g.xx(k) - sx * sx.transpose() / mo.m;
  mo.c = g.x_next(k) - sx * sy.transpose() / mo.m;
  mo.syy = g.next_sq(k) - sy.cwiseAbs2() / mo.m;
  return mo;
}

// Fills entry (i, j) from a likelihood-ratio test (granger_test.hpp), and its F tail unless skipped.
void fill_test(Estimate& e, int i, int j, const LikelihoodRatioTest& test, double df, PValues p_values) {
  e.flags |= test.flags;
  e.statistic(i, j) = test.statistic;
  e.p_value(i, j) = test.p_value;
  e.f_statistic(i, j) = test.f_statistic;
  if (p_values == PValues::compute && std::isfinite(test.f_statistic))
    e.f_p_value(i, j) = f_upper(test.f_statistic, 1.0, df);
}

}  // namespace

Estimate granger(const Gram& gram, int k, PValues p_values) {
  if (gram.transitions <= 3) return all_nan_tests(k, flag_too_few_samples);
  const double m = static_cast<double>(gram.transitions);
  Estimate e = all_nan_tests(k, 0);
  e.residual_df = m - 3;
  // Every pair from the raw sums, as the GPU's Granger kernel computes it (granger_test.hpp).
  const VectorXd x_sum = gram.x_sum(k), next_sum = gram.next_sum(k), next_sq = gram.next_sq(k);
  const auto xx = gram.xx(k);
  const auto x_next = gram.x_next(k);
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < k; ++j) {
      const GrangerPairSums sums{m,           x_sum(i),     x_sum(j),     xx(i, i),    xx(j, j),
                                 xx(i, j),    x_next(i, i), x_next(j, i), next_sum(i), next_sq(i)};
      fill_test(e, i, j, granger_pair_test(sums, i == j), i == j ? m - 2 : m - 3, p_values);
    }
  return e;
}

Estimate granger_conditional(const Gram& gram, int k, PValues p_values) {
  if (gram.transitions <= k + 1) return all_nan_tests(k, flag_too_few_samples);
  const GrangerMoments mo = granger_moments(gram, k);
  Eigen::LLT<MatrixXd> llt;
  if (!factor(mo.C, llt))
    return all_nan_tests(k, flag_singular | (has_constant_regressor(gram, k) ? flag_constant_regressor : flag_none));
  Estimate e = all_nan_tests(k, 0);
  e.residual_df = mo.m - k - 1;
  const MatrixXd B = llt.solve(mo.c);  // column i: coefficients of target i
  const VectorXd inverse_diagonal = llt.solve(MatrixXd::Identity(k, k)).diagonal();
  const VectorXd next_sq = gram.next_sq(k);
  for (int i = 0; i < k; ++i) {
    const double rss_u = mo.syy(i) - B.col(i).dot(mo.c.col(i));
    for (int j = 0; j < k; ++j)
      fill_test(e, i, j,
                conditional_granger_test(B(j, i), inverse_diagonal(j), rss_u, mo.syy(i), next_sq(i), mo.m,
                                         e.residual_df),
                e.residual_df, p_values);
  }
  return e;
}

MatrixXd decisions(const MatrixXd& p_value, double alpha, Correction correction) {
  MatrixXd out = MatrixXd::Constant(p_value.rows(), p_value.cols(), nan);
  std::vector<Eigen::Index> tested;
  for (Eigen::Index i = 0; i < p_value.size(); ++i)
    if (!std::isnan(p_value(i))) tested.push_back(i);
  const auto family = static_cast<double>(tested.size());
  double cutoff = alpha;  // declare p < cutoff (none) or p <= cutoff (corrections, as statsmodels)
  bool inclusive = correction != Correction::none;
  if (correction == Correction::bonferroni) cutoff = alpha / family;
  if (correction == Correction::bh) {
    // Step-up: the largest rank r with p_(r) <= r alpha / family; every p <= p_(r) is declared.
    std::sort(tested.begin(), tested.end(), [&](Eigen::Index a, Eigen::Index b) { return p_value(a) < p_value(b); });
    cutoff = -1;
    for (size_t r = tested.size(); r-- > 0;)
      if (p_value(tested[r]) <= static_cast<double>(r + 1) * alpha / family) {
        cutoff = p_value(tested[r]);
        break;
      }
  }
  for (const Eigen::Index i : tested)
    out(i) = (inclusive ? p_value(i) <= cutoff : p_value(i) < cutoff) ? 1.0 : 0.0;
  return out;
}

MatrixXd t_test_decisions(const MatrixXd& statistic, double df, double alpha, Correction correction) {
  if (correction == Correction::bh || !(df > 0))  // BH ranks p-values; no df: every p is NaN
    return decisions(statistic.unaryExpr([df](double t) { return student_two_sided(t, df); }), alpha, correction);
  Eigen::Index family = 0;
  for (Eigen::Index i = 0; i < statistic.size(); ++i) family += std::isfinite(statistic(i));
  if (family == 0) return MatrixXd::Constant(statistic.rows(), statistic.cols(), nan);
  // p < a  <=>  |t| > q(1 - a/2): the p-value is a decreasing function of |t| for a fixed df.
  const double level = correction == Correction::bonferroni ? alpha / static_cast<double>(family) : alpha;
  const double critical = boost::math::quantile(boost::math::complement(boost::math::students_t(df), level / 2));
  const bool inclusive = correction != Correction::none;  // as decisions(): p <= cutoff for corrections
  return statistic.unaryExpr([&](double t) {
    if (!std::isfinite(t)) return nan;
    const double a = std::abs(t);
    return (inclusive ? a >= critical : a > critical) ? 1.0 : 0.0;
  });
}

}  // namespace causalsweep
