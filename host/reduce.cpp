// Curves: runs grouped by every axis but the seed, per estimator and score.
#include <cmath>
#include <limits>
#include <map>
#include <tuple>

#include <boost/math/distributions/students_t.hpp>
#include <fmt/format.h>

#include "causalsweep/results.hpp"

namespace causalsweep {

PhaseTimes& PhaseTimes::operator+=(const PhaseTimes& o) {
  generate += o.generate;
  simulate += o.simulate;
  solve += o.solve;
  lasso += o.lasso;
  reduce += o.reduce;
  write += o.write;
  return *this;
}

std::vector<CurvePoint> reduce_curves(const SweepGrid& grid, const std::vector<NetworkResult>& results) {
  // Key: the network's axes without the seed, then ratio, estimator, score (the grid's order).
  using Key = std::tuple<std::vector<double>, int, int, int>;
  std::map<Key, std::vector<double>> groups;
  std::vector<Key> order;
  for (const NetworkResult& r : results) {
    const std::vector<double> axes = network_axis_values(grid, grid.networks[r.network_index]);
    for (const RunResult& run : r.runs)
      for (int s = 0; s < score_count; ++s) {
        if (!run.has(s)) continue;  // the score does not apply to this estimator: no curve row
        const Key key{axes, run.ratio_index, run.estimator_index, s};
        auto [it, inserted] = groups.try_emplace(key);
        if (inserted) order.push_back(key);
        it->second.push_back(run.score[s]);
      }
  }
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<CurvePoint> curves;
  curves.reserve(order.size());
  for (const Key& key : order) {
    const std::vector<double>& values = groups[key];
    CurvePoint c;
    const std::vector<double>& axes = std::get<0>(key);
    if (grid.family) {
      c.parameters = axes;
    } else {
      c.n_neurons = static_cast<int>(axes[0]);
      c.timesteps = static_cast<int>(axes[1]);
      c.p_connect = axes[2];
      c.eta = axes[3];
    }
    c.observed_ratio = grid.observed_ratios[static_cast<size_t>(std::get<1>(key))];
    c.estimator_index = std::get<2>(key);
    c.score_index = std::get<3>(key);
    double sum = 0;
    for (double v : values) {
      if (std::isnan(v)) {
        ++c.nan_count;
        continue;
      }
      sum += v;
      ++c.count;
    }
    const auto count = static_cast<double>(c.count);
    c.mean = c.count ? sum / count : nan;
    double squares = 0;
    for (double v : values)
      if (!std::isnan(v)) squares += (v - c.mean) * (v - c.mean);
    c.std = c.count ? std::sqrt(squares / count) : nan;  // population std, numpy's default
    if (c.count >= 2) {
      c.sem = std::sqrt(squares / (count - 1)) / std::sqrt(count);
      const double t = boost::math::quantile(boost::math::students_t(count - 1), 0.975);
      c.ci_low = c.mean - t * c.sem;
      c.ci_high = c.mean + t * c.sem;
    } else {
      c.sem = c.ci_low = c.ci_high = nan;
    }
    curves.push_back(c);
  }
  return curves;
}

std::string roc_csv(const SweepGrid& grid, const std::vector<NetworkResult>& results) {
  // Shortest round-trip text, NaN and infinities as pandas reads them (the first threshold is inf).
  const auto number = [](double v) {
    if (std::isnan(v)) return std::string("NaN");
    if (std::isinf(v)) return std::string(v > 0 ? "inf" : "-inf");
    std::string text = fmt::format("{}", v);
    if (text.find_first_of(".en") == std::string::npos) text += ".0";
    return text;
  };
  if (grid.family) {  // another model family: its swept parameters, no observed ratio
    std::string csv = "network,seed,";
    for (const std::string& name : network_axis_names(grid)) csv += name + ",";
    csv += "estimator,method,point,fpr,tpr,threshold\n";
    auto out = std::back_inserter(csv);
    for (const NetworkResult& r : results) {
      const NetworkTask& t = grid.networks[r.network_index];
      std::string axes;
      for (double v : network_axis_values(grid, t)) axes += number(v) + ",";
      for (const RunResult& run : r.runs) {
        const EstimatorSpec& e = grid.estimators[static_cast<size_t>(run.estimator_index)];
        for (size_t p = 0; p < run.roc.size(); ++p)
          fmt::format_to(out, "{},{},{}{},{},{},{},{},{}\n", t.index, t.seed, axes, e.label, to_string(e.method), p,
                         number(run.roc[p].fpr), number(run.roc[p].tpr), number(run.roc[p].threshold));
      }
    }
    return csv;
  }
  std::string csv =
      "network,seed,n_neurons,timesteps,p_connect,eta,observed_ratio,observed,estimator,method,point,fpr,tpr,"
      "threshold\n";
  auto out = std::back_inserter(csv);
  for (const NetworkResult& r : results) {
    const NetworkTask& t = grid.networks[r.network_index];
    for (const RunResult& run : r.runs) {
      const EstimatorSpec& e = grid.estimators[static_cast<size_t>(run.estimator_index)];
      for (size_t p = 0; p < run.roc.size(); ++p)
        fmt::format_to(out, "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", t.index, t.seed, t.n_neurons, t.timesteps,
                       number(t.p_connect), number(t.eta),
                       number(grid.observed_ratios[static_cast<size_t>(run.ratio_index)]), run.observed, e.label,
                       to_string(e.method), p, number(run.roc[p].fpr), number(run.roc[p].tpr),
                       number(run.roc[p].threshold));
    }
  }
  return csv;
}

}  // namespace causalsweep
