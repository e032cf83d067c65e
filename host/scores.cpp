// Scores of an estimate against the truth, and the flag names.
#include "causalsweep/scores.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "causalsweep/flags.hpp"

namespace causalsweep {

std::string flags_to_string(uint32_t flags) {
  static constexpr const char* names[] = {"singular",       "unidentified",       "saturated_logit",
                                          "empty_truth",    "constant_truth",     "constant_estimate",
                                          "not_converged",  "one_class",          "too_few_samples",
                                          "constant_regressor", "empty_class",        "no_windows"};
  std::string out;
  for (uint32_t bit = 0; bit < std::size(names); ++bit) {
    if (!(flags & (1u << bit))) continue;
    if (!out.empty()) out += '|';
    out += names[bit];
  }
  return out;
}

double pearson(const double* a, const double* b, int64_t count) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  if (count < 2) return nan;
  double mean_a = 0, mean_b = 0;
  for (int64_t i = 0; i < count; ++i) {
    mean_a += a[i];
    mean_b += b[i];
  }
  mean_a /= static_cast<double>(count);
  mean_b /= static_cast<double>(count);
  double cov = 0, var_a = 0, var_b = 0;  // two passes, as numpy.corrcoef: no cancellation
  for (int64_t i = 0; i < count; ++i) {
    const double da = a[i] - mean_a, db = b[i] - mean_b;
    cov += da * db;
    var_a += da * da;
    var_b += db * db;
  }
  if (!(var_a > 0) || !(var_b > 0)) return nan;
  return cov / std::sqrt(var_a * var_b);
}

double auc_mann_whitney(const double* score, const bool* positive, int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return score[x] < score[y]; });
  // Sum of the positives' ranks, tied scores sharing their average rank.
  double rank_sum = 0;
  int64_t positives = 0;
  for (int64_t begin = 0; begin < count;) {
    int64_t end = begin;
    while (end < count && score[order[end]] == score[order[begin]]) ++end;
    const double average_rank = 0.5 * static_cast<double>(begin + 1 + end);
    for (int64_t r = begin; r < end; ++r)
      if (positive[order[r]]) {
        rank_sum += average_rank;
        ++positives;
      }
    begin = end;
  }
  const int64_t negatives = count - positives;
  if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
  const double p = static_cast<double>(positives);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(negatives));
}

Scores score_estimate(const Eigen::MatrixXd& truth, const Eigen::MatrixXd& estimate) {
  Scores s;
  const int64_t count = truth.size();
  if (!estimate.allFinite()) {
    // The estimator already flagged why; an incomplete V has no score.
    s.corr_with_truth = s.auc = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  s.corr_with_truth = pearson(truth.data(), estimate.data(), count);
  if (std::isnan(s.corr_with_truth)) {
    const double t0 = truth(0), e0 = estimate(0);
    if ((truth.array() == t0).all()) s.flags |= flag_constant_truth;
    if ((estimate.array() == e0).all()) s.flags |= flag_constant_estimate;
  }
  const auto connected = std::make_unique<bool[]>(static_cast<size_t>(count));
  std::vector<double> magnitude(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    connected[static_cast<size_t>(i)] = truth(i) != 0.0;
    magnitude[static_cast<size_t>(i)] = std::abs(estimate(i));
  }
  s.auc = auc_mann_whitney(magnitude.data(), connected.get(), count);
  if (std::isnan(s.auc)) s.flags |= flag_one_class;
  return s;
}

std::vector<RocPoint> roc_curve(const double* score, const bool* positive, int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return score[x] > score[y]; });
  int64_t positives = 0;
  for (int64_t i = 0; i < count; ++i) positives += positive[i];
  const int64_t negatives = count - positives;
  if (positives == 0 || negatives == 0) return {};
  std::vector<RocPoint> points{{0.0, 0.0, score[order[0]] + 1.0}};
  int64_t tp = 0, fp = 0;
  for (int64_t begin = 0; begin < count;) {
    int64_t end = begin;
    for (; end < count && score[order[end]] == score[order[begin]]; ++end) (positive[order[end]] ? tp : fp) += 1;
    points.push_back({static_cast<double>(fp) / static_cast<double>(negatives),
                      static_cast<double>(tp) / static_cast<double>(positives), score[order[begin]]});
    begin = end;
  }
  return points;
}

Eigen::MatrixXd declared(const Estimate& estimate, const EstimatorSpec& spec) {
  switch (spec.method) {
    case EstimatorMethod::ols:
    case EstimatorMethod::iv:
      if (estimate.p_value.size() == 0)  // a sweep skipped the p-values: critical t values decide
        return estimate.statistic.size() == 0 ? Eigen::MatrixXd()
                                              : t_test_decisions(estimate.statistic, estimate.residual_df, spec.level,
                                                                 spec.correction);
      [[fallthrough]];
    case EstimatorMethod::granger:
    case EstimatorMethod::granger_conditional:
      if (estimate.p_value.size() == 0) return {};
      return decisions(estimate.p_value, spec.level, spec.correction);
    case EstimatorMethod::lasso:
    case EstimatorMethod::correlation:
    case EstimatorMethod::perturbation: {
      const double threshold = spec.threshold >= 0 ? spec.threshold
                                : spec.method == EstimatorMethod::lasso ? 0.0
                                                                         : -1.0;
      if (threshold < 0) return {};
      return estimate.V.unaryExpr([threshold](double v) {
        return std::isnan(v) ? std::numeric_limits<double>::quiet_NaN() : (std::abs(v) > threshold ? 1.0 : 0.0);
      });
    }
    case EstimatorMethod::sta_shuffle: break;  // n_to_1 scores its own runs (family_n_to_1.cpp)
  }
  return {};
}

Scores score_run(const Eigen::MatrixXd& truth, const Estimate& estimate, const EstimatorSpec& spec, bool keep_roc) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  const bool by_p = spec.method == EstimatorMethod::granger || spec.method == EstimatorMethod::granger_conditional;
  Scores s = score_estimate(truth, estimate.V);
  const int64_t count = truth.size();
  const auto connected = std::make_unique<bool[]>(static_cast<size_t>(count));
  int64_t positives = 0;
  for (int64_t i = 0; i < count; ++i) positives += connected[static_cast<size_t>(i)] = truth(i) != 0.0;
  std::vector<double> ranking(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    ranking[static_cast<size_t>(i)] = by_p ? 1.0 - estimate.p_value(i) : std::abs(estimate.V(i));
  if (by_p) {
    // V is 0/1 here: the AUC ranks by 1 - p instead (the voltage-to-wiring notebook's rule).
    const bool finite = estimate.p_value.size() == count && estimate.p_value.allFinite();
    s.auc = finite ? auc_mann_whitney(ranking.data(), connected.get(), count) : nan;
    if (finite && std::isnan(s.auc)) s.flags |= flag_one_class;
  }
  if (keep_roc && estimate.V.allFinite() && (!by_p || estimate.p_value.allFinite()))
    s.roc = roc_curve(ranking.data(), connected.get(), count);

  const Eigen::MatrixXd decided = declared(estimate, spec);
  s.has_decisions = decided.size() > 0;
  s.tpr = s.fpr = nan;
  if (s.has_decisions && decided.allFinite()) {
    double true_positives = 0, false_positives = 0;
    for (int64_t i = 0; i < count; ++i)
      (connected[static_cast<size_t>(i)] ? true_positives : false_positives) += decided(i);
    const int64_t negatives = count - positives;
    if (positives > 0) s.tpr = true_positives / static_cast<double>(positives);
    if (negatives > 0) s.fpr = false_positives / static_cast<double>(negatives);
    if (positives == 0 || negatives == 0) s.flags |= flag_one_class;
  }
  return s;
}

}  // namespace causalsweep
