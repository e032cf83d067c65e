#pragma once
// The sweep grid: one simulated network per (seed, n_neurons, timesteps, p_connect, eta); each
// network is scored at every observed ratio from the leading blocks of its Gram.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "causalsweep/config.hpp"
#include "causalsweep/model_family.hpp"

namespace causalsweep {

struct NetworkTask {
  uint64_t index = 0;  // position in the grid (for ordering outputs only; random streams use the seed)
  uint64_t seed = 0;
  int n_neurons = 0;
  int timesteps = 0;
  double p_connect = 0;
  double eta = 0;
  bool perturb = false;
  std::vector<double> parameters;  // other model families: one value per family parameter, in its order
};

struct SweepGrid {
  std::vector<NetworkTask> networks;
  std::vector<double> observed_ratios;
  std::vector<EstimatorSpec> estimators;
  ModelOptions model;                 // nonlinearity, inhibitory fraction, user connectivity
  std::vector<uint64_t> roc_seeds;    // networks of these seeds keep their ROC points
  const ModelFamily* family = nullptr;  // nullptr: the rate model
  std::vector<int> swept_parameters;    // family parameters with several values: the outputs' axis columns

  uint64_t runs() const { return networks.size() * observed_ratios.size(); }
  bool keeps_roc(uint64_t seed) const {
    return std::find(roc_seeds.begin(), roc_seeds.end(), seed) != roc_seeds.end();
  }
};

// The grid in a fixed order: n_neurons, timesteps, p_connect, eta, seed (seed varies fastest).
SweepGrid expand_grid(const SweepConfig& config);

// k = clamp(floor(n * observed_ratio), 1, n), as the tutorials compute it.
int observed_count(int n_neurons, double observed_ratio);

// Memory one network needs on the CPU backend (Grams, tiles, A), in bytes.
uint64_t network_memory_bytes(int n_neurons, bool perturb);
uint64_t network_memory_bytes(const NetworkTask& task, const SweepGrid& grid);  // any family

// The axis columns of a run in the outputs (before estimator and score): for the rate model
// n_neurons, timesteps, p_connect, eta (and observed_ratio per run); for other families their swept
// parameters. `values` gives one network's numbers in the same order.
std::vector<std::string> network_axis_names(const SweepGrid& grid);
std::vector<double> network_axis_values(const SweepGrid& grid, const NetworkTask& task);

// Rough multiply-add count of one network (simulation, statistics, solves), for plans and progress.
double network_cost(const NetworkTask& task, const std::vector<EstimatorSpec>& estimators,
                    const std::vector<double>& observed_ratios);
double network_cost(const NetworkTask& task, const SweepGrid& grid);  // any family

}  // namespace causalsweep
