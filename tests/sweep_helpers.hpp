#pragma once
// Runs a small sweep in-process on the CPU backend, for tests.
#include <string>

#include "causalsweep/backend.hpp"
#include "causalsweep/config.hpp"
#include "orchestrator.hpp"

namespace causalsweep::testing {

struct SweepRun {
  SweepConfig config;
  SweepGrid grid;
  SweepOutcome outcome;

  // Seed-wise scores of one estimator label at one observed ratio (grid order), one extra axis value.
  std::vector<double> scores(const std::string& label, double ratio, int score = 0, double eta = -1) const {
    std::vector<double> out;
    for (const NetworkResult& r : outcome.results) {
      const NetworkTask& t = grid.networks[r.network_index];
      if (eta >= 0 && t.eta != eta) continue;
      for (const RunResult& run : r.runs)
        if (grid.estimators[static_cast<size_t>(run.estimator_index)].label == label &&
            grid.observed_ratios[static_cast<size_t>(run.ratio_index)] == ratio)
          out.push_back(run.score[score]);
    }
    return out;
  }
};

inline SweepRun run_toml(const std::string& toml, int threads = 2, int batch_size = 0) {
  SweepRun run;
  run.config = parse_config(toml, "<test>");
  run.config.run.batch_size = batch_size;
  run.grid = expand_grid(run.config);
  const SweepPlan plan = plan_sweep(run.config, run.grid, threads);
  const auto backend = make_cpu_backend(threads);
  Progress quiet(true, "test");
  run.outcome = run_sweep(run.grid, plan, *backend, quiet);
  return run;
}

inline double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

}  // namespace causalsweep::testing
