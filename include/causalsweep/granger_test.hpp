#pragma once
// The math of the lag-1 Granger tests, written once for both backends: host/estimators.cpp's
// granger() and granger_conditional(), the GPU's Granger kernel (kernels/scores.cu) and its batched
// conditional test (kernels/least_squares.cu) call these.
#include <cmath>
#include <cstdint>

#include "causalsweep/flags.hpp"
#include "causalsweep/hd.hpp"
#include "causalsweep/variation.hpp"

namespace causalsweep {

// P(chi-square(1) > s) = erfc(sqrt(s / 2)): accurate into the far tail (relative 1e-13 at p = 1e-300),
// ten times cheaper than the incomplete gamma function. NaN for a NaN or infinite statistic.
CS_HD inline double chi2_1_upper(double statistic) {
  if (!(statistic - statistic == 0.0)) return NAN;  // NaN or +-inf (a test that works in device code too)
  return erfc(sqrt((statistic > 0.0 ? statistic : 0.0) / 2.0));
}

// One likelihood-ratio test from the drop of the residual sum of squares when a regressor joins the
// model (dropped = RSS_r - RSS_u): LR = m ln(RSS_r / RSS_u), written as m log1p(dropped / RSS_u) so
// that small statistics stay exact, its chi-square(1) p-value, and statsmodels' ssr_ftest F
// statistic dropped / (RSS_u / df). Undefined, flag_singular: a non-finite drop, or a perfect fit,
// RSS_u within variation_tolerance(m) of the target's centred sum of squares `total` (such an RSS is
// rounding noise, so the statistic would be too; two solvers then usually agree that it is undefined
// rather than disagree on the noise, though a fit near the threshold can still fall either way).
struct LikelihoodRatioTest {
  double statistic = NAN, p_value = NAN, f_statistic = NAN;
  uint32_t flags = flag_none;
};

CS_HD inline LikelihoodRatioTest likelihood_ratio_test(double dropped, double rss_u, double total, double m,
                                                       double df) {
  LikelihoodRatioTest test;
  if (!(rss_u > variation_tolerance(m) * total) || !(rss_u > 0) || !(dropped - dropped == 0.0)) {
    test.flags = flag_singular;
    return test;
  }
  if (dropped < 0) dropped = 0;  // rounding: adding a regressor never raises the RSS
  test.statistic = m * log1p(dropped / rss_u);
  test.p_value = chi2_1_upper(test.statistic);
  test.f_statistic = dropped / (rss_u / df);
  return test;
}

// One test's decision on the GPU, as decisions() makes it for corrections none and bonferroni: NaN
// for an undefined test, else p < level (none) or p <= level (bonferroni, as statsmodels; its level
// is alpha / (k k)).
CS_HD inline double decide_test(double p_value, double level, bool inclusive) {
  if (p_value != p_value) return NAN;
  return (inclusive ? p_value <= level : p_value < level) ? 1.0 : 0.0;
}

// The raw Gram sums one bivariate test of x_j on x_i reads (gram.hpp's views), m = transitions.
struct GrangerPairSums {
  double m;
  double x_sum_i, x_sum_j;        // sums of x_i[t], x_j[t]
  double xx_ii, xx_jj, xx_ij;     // sums of x_i[t]^2, x_j[t]^2, x_i[t] x_j[t]
  double x_next_ii, x_next_ji;    // sums of x_i[t] x_i[t+1], x_j[t] x_i[t+1]
  double next_sum_i, next_sq_i;   // sums of x_i[t+1], x_i[t+1]^2
};

// statsmodels' grangercausalitytests(maxlag = 1) of x_j on x_i: restricted x_i[t+1] ~ 1 + x_i[t],
// unrestricted adds x_j[t] (df = m - 3). The diagonal (j = i, which statsmodels does not define)
// tests x_i[t] against the intercept alone (df = m - 2). A regressor or target that never varied
// gives flag_constant_regressor; x_j[t] numerically a multiple of x_i[t] gives flag_singular.
CS_HD inline LikelihoodRatioTest granger_pair_test(const GrangerPairSums& s, bool diagonal) {
  // Centred sums, raw - (sum_a sum_b) / m: C of x[t] with itself, c of x[t] with x_i[t+1], syy of
  // x_i[t+1] with itself.
  const double m = s.m;
  const double C_ii = s.xx_ii - s.x_sum_i * s.x_sum_i / m;
  const double C_jj = s.xx_jj - s.x_sum_j * s.x_sum_j / m;
  const double C_ij = s.xx_ij - s.x_sum_i * s.x_sum_j / m;
  const double c_ii = s.x_next_ii - s.x_sum_i * s.next_sum_i / m;
  const double c_ji = s.x_next_ji - s.x_sum_j * s.next_sum_i / m;
  const double syy_i = s.next_sq_i - s.next_sum_i * s.next_sum_i / m;
  LikelihoodRatioTest undefined;
  if (!(C_ii > 0) || never_varied(C_ii, s.xx_ii, m) || !(syy_i > 0) || never_varied(syy_i, s.next_sq_i, m) ||
      (!diagonal && (!(C_jj > 0) || never_varied(C_jj, s.xx_jj, m)))) {
    undefined.flags = flag_constant_regressor;
    return undefined;
  }
  const double own = c_ii * c_ii / C_ii;  // x_i[t]'s share of x_i[t+1]'s variation
  if (diagonal) return likelihood_ratio_test(own, syy_i - own, syy_i, m, m - 2);
  // Frisch-Waugh: x_j's part orthogonal to x_i explains the drop without forming RSS_u by subtraction.
  const double residual_var = C_jj - C_ij * C_ij / C_ii;
  if (!(residual_var > 1e-13 * C_jj)) {
    undefined.flags = flag_singular;
    return undefined;
  }
  const double partial = c_ji - C_ij * c_ii / C_ii;
  const double dropped = partial * partial / residual_var;
  return likelihood_ratio_test(dropped, (syy_i - own) - dropped, syy_i, m, m - 3);
}

// granger_conditional's test of x_j on x_i from the full regression of x_i[t+1] on 1 + x[t]: its
// coefficient b_ij and (H^-1)_jj (dropping x_j raises the RSS by b_ij^2 / (H^-1)_jj, the
// partitioned-inverse identity), the full RSS, and x_i[t+1]'s centred and raw sums of squares
// (df = m - k - 1). A target that never varied (variation.hpp): flag_constant_regressor, as in the
// bivariate test.
CS_HD inline LikelihoodRatioTest conditional_granger_test(double coefficient, double inverse_diagonal, double rss_u,
                                                          double total, double raw_square_sum, double m, double df) {
  if (never_varied(total, raw_square_sum, m)) {
    LikelihoodRatioTest undefined;
    undefined.flags = flag_constant_regressor;
    return undefined;
  }
  return likelihood_ratio_test(coefficient * coefficient / inverse_diagonal, rss_u, total, m, df);
}

}  // namespace causalsweep
