#pragma once
// The notebook's N-to-1 sweep as the benchmarks run it (bench_n_to_1 --sweep, bench_cuda_n_to_1):
// configs/n_to_1_vary_syncond_ratio.toml's runs in ratio-major order (dg_inh = ratio x dg_exc,
// dg_exc = 0.4 nS, seeds 0 .. seeds-1), a pool of CPU threads, and the table of means per ratio.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "causalsweep/n_to_1.hpp"

namespace causalsweep::bench {

inline const std::vector<double> notebook_ratios{0.5, 1, 2, 4, 8, 16, 32};

struct SweepRuns {
  std::vector<n_to_1::Parameters> parameters;
  std::vector<uint64_t> seeds;
};

inline SweepRuns notebook_sweep(int seeds, double duration, int shuffles) {
  SweepRuns runs;
  for (const double ratio : notebook_ratios)
    for (int s = 0; s < seeds; ++s) {
      n_to_1::Parameters p;
      p.duration = duration;
      p.shuffles = shuffles;
      p.dg_inh = ratio * p.dg_exc;
      runs.parameters.push_back(p);
      runs.seeds.push_back(static_cast<uint64_t>(s));
    }
  return runs;
}

// The first `count` runs with n_to_1::run_experiment, one run per thread at a time (0: all cores).
inline std::vector<n_to_1::Outcome> run_on_cpu(const SweepRuns& runs, size_t count, int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<n_to_1::Outcome> outcomes(count);
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w)
    workers.emplace_back([&] {
      for (size_t k; (k = next++) < count;) outcomes[k] = n_to_1::run_experiment(runs.parameters[k], runs.seeds[k]);
    });
  for (auto& w : workers) w.join();
  return outcomes;
}

// Mean over the finite values (a seed's tpr_inh is NaN where no inhibitory input is connected).
inline double finite_mean(const std::vector<double>& values) {
  double sum = 0;
  int count = 0;
  for (const double v : values)
    if (std::isfinite(v)) {
      sum += v;
      ++count;
    }
  return count ? sum / count : std::nan("");
}

// Means per ratio on stdout; with `csv`, every run's scores on stderr.
inline void print_sweep_table(const std::vector<n_to_1::Outcome>& outcomes, int seeds, bool csv) {
  std::printf("%6s %9s %7s %8s %8s %7s %8s %8s\n", "ratio", "rate_Hz", "fpr", "tpr_exc", "tpr_inh", "auc", "auc_exc",
              "auc_inh");
  if (csv) std::fprintf(stderr, "ratio,seed,output_rate,fpr,tpr,tpr_exc,tpr_inh,auc,auc_exc,auc_inh\n");
  for (size_t r = 0; r < notebook_ratios.size(); ++r) {
    std::vector<double> column[7];
    for (int s = 0; s < seeds; ++s) {
      const n_to_1::Outcome& out = outcomes[r * static_cast<size_t>(seeds) + static_cast<size_t>(s)];
      const double row[7] = {out.output_rate, out.fpr, out.tpr_exc, out.tpr_inh, out.auc, out.auc_exc, out.auc_inh};
      for (int c = 0; c < 7; ++c) column[c].push_back(row[c]);
      if (csv)
        std::fprintf(stderr, "%g,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", notebook_ratios[r], s, out.output_rate,
                     out.fpr, out.tpr, out.tpr_exc, out.tpr_inh, out.auc, out.auc_exc, out.auc_inh);
    }
    std::printf("%6g %9.4f %7.4f %8.4f %8.4f %7.4f %8.4f %8.4f\n", notebook_ratios[r], finite_mean(column[0]),
                finite_mean(column[1]), finite_mean(column[2]), finite_mean(column[3]), finite_mean(column[4]),
                finite_mean(column[5]), finite_mean(column[6]));
  }
}

}  // namespace causalsweep::bench
