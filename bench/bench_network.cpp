// End-to-end time of one network on the CPU backend (generate, simulate + Grams, every estimator
// at every observed ratio, scores), single-threaded, as the per-network figure that
// bench/run_cpu_bench.sh sets against the notebook's Python on the same core.
//   bench_network [n_neurons] [timesteps] [repeats]   -> one JSON object on stdout
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu_network.hpp"
#include "workload_w.hpp"

namespace cs = causalsweep;

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::stoi(argv[1]) : 100;
  const int timesteps = argc > 2 ? std::stoi(argv[2]) : 5000;
  const int repeats = argc > 3 ? std::stoi(argv[3]) : 5;

  const cs::SweepGrid grid = workload_w_grid(0, n, timesteps);  // its estimators; the networks are below

  std::vector<double> totals;
  cs::PhaseTimes phases;
  for (int r = 0; r < repeats; ++r) {
    const cs::NetworkTask task{0, static_cast<uint64_t>(r), n, timesteps, 0.1, 2.0, false};
    const auto start = std::chrono::steady_clock::now();
    const cs::NetworkResult result = cs::run_cpu_network(task, grid, phases);
    totals.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (result.runs.empty()) return 1;
  }
  std::sort(totals.begin(), totals.end());
  const double per = 1.0 / repeats;
  const nlohmann::json out = {
      {"n", n},
      {"timesteps", timesteps},
      {"repeats", repeats},
      {"seconds_per_network_median", totals[totals.size() / 2]},
      {"seconds_per_network_min", totals.front()},
      {"phase_seconds_mean",
       {{"generate", phases.generate * per},
        {"simulate_and_accumulate", phases.simulate * per},
        {"solve_correlation_ols_iv", phases.solve * per},
        {"lasso", phases.lasso * per},
        {"score", phases.reduce * per}}},
  };
  std::puts(out.dump(2).c_str());
  return 0;
}
