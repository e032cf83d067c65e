#pragma once
// Workload W of issue 3, shared by the bench programs: `networks` networks (seeds 0, 1, ...) of n
// neurons and T steps, eta 2, p_connect 0.1, observed ratios {1, 0.8, 0.6, 0.4, 0.2}, estimators
// correlation, lasso, ols and iv with the library's defaults (lasso: alpha 0.01; t tests at 0.05).
#include <string>
#include <utility>
#include <vector>

#include "causalsweep/config.hpp"
#include "causalsweep/grid.hpp"

inline causalsweep::SweepGrid workload_w_grid(int networks, int n, int timesteps,
                                              causalsweep::LassoSolver lasso_solver = causalsweep::LassoSolver::active_set) {
  namespace cs = causalsweep;
  cs::SweepGrid grid;
  for (int s = 0; s < networks; ++s)
    grid.networks.push_back(cs::NetworkTask{static_cast<uint64_t>(s), static_cast<uint64_t>(s), n, timesteps, 0.1, 2.0, false, {}});
  grid.observed_ratios = {1.0, 0.8, 0.6, 0.4, 0.2};
  for (const auto& [label, method] : std::vector<std::pair<std::string, cs::EstimatorMethod>>{
           {"correlation", cs::EstimatorMethod::correlation},
           {"lasso", cs::EstimatorMethod::lasso},
           {"ols", cs::EstimatorMethod::ols},
           {"iv", cs::EstimatorMethod::iv}}) {
    cs::EstimatorSpec spec;
    spec.label = label;
    spec.method = method;
    spec.solver = lasso_solver;
    grid.estimators.push_back(spec);
  }
  return grid;
}
