// The N-to-1 spiking experiment on the CPU, one run per thread as the engine runs it.
//   bench_n_to_1 [--runs N] [--seed S]          time default runs on one thread (simulate vs test)
//   bench_n_to_1 --sweep [--seeds N] [--threads N] [--duration S] [--shuffles N]
//                                               the notebook's sweep: dg_inh / dg_exc = 0.5 .. 32
//                                               (dg_exc = 0.4 nS) x seeds 0 .. N-1, means per ratio
// Prints a table on stdout; the per-run numbers of a sweep go to stderr as CSV with --csv.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "causalsweep/n_to_1.hpp"
#include "n_to_1_sweep.hpp"

namespace n1 = causalsweep::n_to_1;
namespace bench = causalsweep::bench;

namespace {

struct Options {
  int runs = 1, seeds = 20, threads = 0, shuffles = 100;
  uint64_t seed = 0;
  double duration = 600;
  bool sweep = false, csv = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    const std::string flag = argv[a];
    const auto value = [&] {
      if (a + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag.c_str());
        std::exit(2);
      }
      return std::string(argv[++a]);
    };
    if (flag == "--runs") o.runs = std::stoi(value());
    else if (flag == "--seed") o.seed = std::stoull(value());
    else if (flag == "--sweep") o.sweep = true;
    else if (flag == "--seeds") o.seeds = std::stoi(value());
    else if (flag == "--threads") o.threads = std::stoi(value());
    else if (flag == "--duration") o.duration = std::stod(value());
    else if (flag == "--shuffles") o.shuffles = std::stoi(value());
    else if (flag == "--csv") o.csv = true;
    else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of bench/bench_n_to_1.cpp)\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

int time_default_runs(const Options& o) {
  n1::Parameters p;
  p.duration = o.duration;
  p.shuffles = o.shuffles;
  std::printf("one run on one thread: %g s, %d inputs, %d shuffles, window %g s\n", p.duration, p.inputs, p.shuffles,
              p.window);
  std::printf("%5s %10s %10s %10s %8s %6s %6s %6s\n", "seed", "simulate_s", "test_s", "total_s", "rate_Hz", "fpr",
              "tpr", "auc");
  double best = 1e300;
  for (int r = 0; r < o.runs; ++r) {
    const uint64_t seed = o.seed + static_cast<uint64_t>(r);
    const auto start = std::chrono::steady_clock::now();
    const n1::Outcome out = n1::run_experiment(p, seed);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, total);
    std::printf("%5llu %10.3f %10.3f %10.3f %8.3f %6.3f %6.3f %6.3f\n", static_cast<unsigned long long>(seed),
                out.simulate_seconds, out.test_seconds, total, out.output_rate, out.fpr, out.tpr, out.auc);
  }
  const double windows = p.spike_rate * (p.duration - p.window);
  const double additions = p.inputs * (p.shuffles + 1.0) * windows * static_cast<double>(n1::window_samples(p));
  std::printf("fastest: %.3f s per run; STA additions %.3g per run (%.3g per second overall)\n", best, additions,
              additions / best);
  return 0;
}

int run_sweep(const Options& o) {
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const bench::SweepRuns runs = bench::notebook_sweep(o.seeds, o.duration, o.shuffles);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<n1::Outcome> outcomes = bench::run_on_cpu(runs, runs.parameters.size(), threads);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sweep: %zu ratios x %d seeds, %g s, %d shuffles, %d threads: %.1f s wall (%.2f s per run per thread)\n",
              bench::notebook_ratios.size(), o.seeds, o.duration, o.shuffles, threads, wall,
              wall * threads / static_cast<double>(outcomes.size()));
  bench::print_sweep_table(outcomes, o.seeds, o.csv);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  return o.sweep ? run_sweep(o) : time_default_runs(o);
}
