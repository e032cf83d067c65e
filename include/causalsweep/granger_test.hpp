#pragma once
// The math of the lag-1 Granger tests, written once for both backends: host/estimators.cpp's
// granger() and granger_conditional() and the GPU's Granger kernel (kernels/scores.cu) call these.
#include <cmath>
#include <cstdint>

#include "causalsweep/flags.hpp"
#include "causalsweep/hd.hpp"

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
// statistic dropped / (RSS_u / df). Undefined (a perfect fit, or a non-finite drop): flag_singular.
struct LikelihoodRatioTest {
  double statistic = NAN, p_value = NAN, f_statistic = NAN;
  uint32_t flags = flag_none;
};

CS_HD inline LikelihoodRatioTest likelihood_ratio_test(double dropped, double rss_u, double m, double df) {
  LikelihoodRatioTest test;
  if (!(rss_u > 0) || !(dropped - dropped == 0.0)) {
    test.flags = flag_singular;
    return test;
  }
  if (dropped < 0) dropped = 0;  // rounding: adding a regressor never raises the RSS
  test.statistic = m * log1p(dropped / rss_u);
  test.p_value = chi2_1_upper(test.statistic);
  test.f_statistic = dropped / (rss_u / df);
  return test;
}

// The centred moments one bivariate test reads, from a Gram's raw sums over m transitions:
// C = sums of centred x[t] x[t]^T, c(j, i) = sum of centred x_j[t] x_i[t+1], syy = centred sum of
// squares of x_i[t+1]. Each is  raw - (sum_a sum_b) / m,  the CPU's and the GPU's expression.
CS_HD inline double centred(double raw, double sum_a, double sum_b, double m) { return raw - sum_a * sum_b / m; }

struct GrangerPairMoments {
  double m;     // transitions
  double C_ii;  // x_i[t] with itself
  double C_jj;  // x_j[t] with itself
  double C_ij;  // x_i[t] with x_j[t]
  double c_ii;  // x_i[t] with x_i[t+1]
  double c_ji;  // x_j[t] with x_i[t+1]
  double syy_i; // x_i[t+1] with itself
};

// statsmodels' grangercausalitytests(maxlag = 1) of x_j on x_i: restricted x_i[t+1] ~ 1 + x_i[t],
// unrestricted adds x_j[t] (df = m - 3). The diagonal (j = i, which statsmodels does not define)
// tests x_i[t] against the intercept alone (df = m - 2). A regressor or target that never varied
// gives flag_constant_regressor; x_j[t] numerically a multiple of x_i[t] gives flag_singular.
CS_HD inline LikelihoodRatioTest granger_pair_test(const GrangerPairMoments& g, bool diagonal) {
  LikelihoodRatioTest undefined;
  if (!(g.C_ii > 0) || !(g.syy_i > 0) || (!diagonal && !(g.C_jj > 0))) {
    undefined.flags = flag_constant_regressor;
    return undefined;
  }
  const double own = g.c_ii * g.c_ii / g.C_ii;  // x_i[t]'s share of x_i[t+1]'s variation
  if (diagonal) return likelihood_ratio_test(own, g.syy_i - own, g.m, g.m - 2);
  // Frisch-Waugh: x_j's part orthogonal to x_i explains the drop without forming RSS_u by subtraction.
  const double residual_var = g.C_jj - g.C_ij * g.C_ij / g.C_ii;
  if (!(residual_var > 1e-13 * g.C_jj)) {
    undefined.flags = flag_singular;
    return undefined;
  }
  const double partial = g.c_ji - g.C_ij * g.c_ii / g.C_ii;
  const double dropped = partial * partial / residual_var;
  return likelihood_ratio_test(dropped, (g.syy_i - own) - dropped, g.m, g.m - 3);
}

}  // namespace causalsweep
