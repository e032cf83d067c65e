// Grid expansion and the cost model used by `plan`, batching and progress.
#include "causalsweep/grid.hpp"

#include <algorithm>
#include <cmath>

namespace causalsweep {

int observed_count(int n_neurons, double observed_ratio) {
  // numpy: np.clip(int(n * ratio), 1, n); int() truncates like floor for positive values.
  const auto k = static_cast<int>(std::floor(static_cast<double>(n_neurons) * observed_ratio));
  return std::clamp(k, 1, n_neurons);
}

SweepGrid expand_grid(const SweepConfig& config) {
  SweepGrid grid;
  grid.observed_ratios = config.axes.observed_ratio;
  grid.estimators = config.estimators;
  grid.model = config.model;
  grid.roc_seeds = config.roc_seeds;
  const SweepAxes& a = config.axes;
  grid.family = find_model_family(config.model.family);
  if (grid.family) {
    // One run per parameter combination and seed; the family has no observed-ratio axis (one slot).
    grid.observed_ratios = {1.0};
    for (size_t i = 0; i < a.parameters.size(); ++i)
      if (a.parameters[i].size() > 1) grid.swept_parameters.push_back(static_cast<int>(i));
    for (auto& point : parameter_points(a.parameters))
      for (uint64_t seed : a.seeds) {
        NetworkTask task;
        task.index = grid.networks.size();
        task.seed = seed;
        task.parameters = point;
        grid.networks.push_back(std::move(task));
      }
    return grid;
  }
  for (int n : a.n_neurons)
    for (int timesteps : a.timesteps)
      for (double p : a.p_connect)
        for (double eta : a.eta)
          for (uint64_t seed : a.seeds)
            grid.networks.push_back(NetworkTask{grid.networks.size(), seed, n, timesteps, p, eta, a.perturb, {}});
  return grid;
}

uint64_t network_memory_bytes(int n_neurons, bool perturb) {
  const auto n = static_cast<uint64_t>(n_neurons);
  const uint64_t p = 2 * n + 1;
  const uint64_t gram = (p * p + p * 2 * n + 2 * n) * sizeof(double);
  const uint64_t tiles = (p + 2 * n) * 128 * sizeof(double) + 3 * n * 129 * sizeof(double);
  const uint64_t connectivity = n * n * sizeof(double) * 3;  // A, SVD work
  const uint64_t estimators = 8 * n * n * sizeof(double);    // V, standard errors, moment copies
  return (perturb ? 2 : 1) * (gram + tiles) + connectivity + estimators;
}

uint64_t network_memory_bytes(const NetworkTask& task, const SweepGrid& grid) {
  return grid.family ? grid.family->memory_bytes(task, grid) : network_memory_bytes(task.n_neurons, task.perturb);
}

double network_cost(const NetworkTask& task, const SweepGrid& grid) {
  return grid.family ? grid.family->cost(task, grid) : network_cost(task, grid.estimators, grid.observed_ratios);
}

std::vector<std::string> network_axis_names(const SweepGrid& grid) {
  if (!grid.family) return {"n_neurons", "timesteps", "p_connect", "eta"};
  std::vector<std::string> names;
  for (int i : grid.swept_parameters) names.emplace_back(grid.family->parameters()[static_cast<size_t>(i)].key);
  return names;
}

std::vector<double> network_axis_values(const SweepGrid& grid, const NetworkTask& task) {
  if (!grid.family)
    return {static_cast<double>(task.n_neurons), static_cast<double>(task.timesteps), task.p_connect, task.eta};
  std::vector<double> values;
  for (int i : grid.swept_parameters) values.push_back(task.parameters[static_cast<size_t>(i)]);
  return values;
}

double network_cost(const NetworkTask& task, const std::vector<EstimatorSpec>& estimators,
                    const std::vector<double>& observed_ratios) {
  const double n = task.n_neurons, T = task.timesteps;
  const double p = 2 * n + 1;
  double cost = T * (n * n + p * p / 2 + p * 2 * n + 60 * n);  // dynamics, Gram, random draws
  if (task.perturb) cost *= 1.5;
  for (double ratio : observed_ratios) {
    const double k = observed_count(task.n_neurons, ratio);
    for (const EstimatorSpec& e : estimators) {
      switch (e.method) {
        case EstimatorMethod::correlation:
        case EstimatorMethod::perturbation: cost += k * k; break;
        case EstimatorMethod::ols: cost += 2 * k * k * k; break;
        case EstimatorMethod::lasso:
          // Coordinate sweeps of ~k^2 per target, often all max_iter of them at these alphas
          // (measured: n = 40 and n = 100 rarely converge within 1000); within ~2x.
          cost += std::min(e.max_iter, 1000) * (0.3 * k * k * k + 40 * k * k);
          break;
        case EstimatorMethod::iv: cost += 6 * k * k * k; break;
        case EstimatorMethod::granger: cost += 10 * k * k; break;
        case EstimatorMethod::granger_conditional: cost += 2 * k * k * k; break;
        case EstimatorMethod::sta_shuffle: break;  // n_to_1 only; its family counts its cost
      }
    }
  }
  return cost;
}

}  // namespace causalsweep
