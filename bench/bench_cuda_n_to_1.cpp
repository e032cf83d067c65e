// The N-to-1 sweep of configs/n_to_1_vary_syncond_ratio.toml on a CUDA device (needs a GPU):
// dg_inh / dg_exc in {0.5, 1, 2, 4, 8, 16, 32} with dg_exc_ns = 0.4 (converted as the family does,
// 0.4 * 1e-9), seeds 0 .. 19, every other key at the notebook's value: 140 runs of 600 s, 30 inputs,
// 100 shuffles, in one call of cuda::run_experiments_on_gpu (batched to the device's memory).
//
//   bench_cuda_n_to_1 [--seeds N] [--duration S] [--shuffles N] [--device D] [--repeat N]
//                     [--sta-tile N] [--neuron-tile N] [--compare N] [--threads N] [--csv]
//
// Prints the device, the wall time of the sweep (best of --repeat, after one untimed warm-up run
// that creates the context and loads the module), the device-side split (simulate: trains, neuron,
// noise; test: the rest, overlapping shuffles), the STA additions per second, and the mean scores
// per ratio as bench_n_to_1 --sweep does; one JSON line at the end for bench/RESULTS.md.
// --compare N also runs the first N runs with n_to_1::run_experiment on --threads CPU threads and
// counts differences (integers and p exactly, heights to 1e-12 relative). --csv: per-run rows on stderr.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "causalsweep/cuda_devices.hpp"
#include "causalsweep/n_to_1.hpp"
#include "n_to_1_cuda.hpp"
#include "n_to_1_sweep.hpp"

namespace n1 = causalsweep::n_to_1;
namespace cuda = causalsweep::cuda;
namespace bench = causalsweep::bench;

namespace {

struct Options {
  int seeds = 20, shuffles = 100, device = 0, repeat = 1, compare = 0, threads = 0;
  double duration = 600;
  cuda::NTo1Tuning tuning;
  bool csv = false;
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
    if (flag == "--seeds") o.seeds = std::stoi(value());
    else if (flag == "--duration") o.duration = std::stod(value());
    else if (flag == "--shuffles") o.shuffles = std::stoi(value());
    else if (flag == "--device") o.device = std::stoi(value());
    else if (flag == "--repeat") o.repeat = std::max(1, std::stoi(value()));
    else if (flag == "--sta-tile") o.tuning.sta_tile = std::stoi(value());
    else if (flag == "--neuron-tile") o.tuning.neuron_tile = std::stoi(value());
    else if (flag == "--compare") o.compare = std::stoi(value());
    else if (flag == "--threads") o.threads = std::stoi(value());
    else if (flag == "--csv") o.csv = true;
    else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of bench/bench_cuda_n_to_1.cpp)\n", flag.c_str());
      std::exit(2);
    }
  }
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Differences of the first runs against the CPU: integers and p exactly, heights to 1e-12 relative.
int compare_with_cpu(const Options& o, const bench::SweepRuns& sweep, const std::vector<n1::Outcome>& gpu) {
  const size_t runs = std::min<size_t>(static_cast<size_t>(o.compare), sweep.parameters.size());
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const auto start = std::chrono::steady_clock::now();
  const std::vector<n1::Outcome> cpu = bench::run_on_cpu(sweep, runs, threads);
  const double wall = seconds_since(start);
  int differences = 0;
  double largest = 0;
  for (size_t r = 0; r < runs; ++r) {
    differences += cpu[r].output_spikes != gpu[r].output_spikes;
    for (size_t i = 0; i < cpu[r].inputs.size(); ++i) {
      const n1::InputTest& a = cpu[r].inputs[i];
      const n1::InputTest& b = gpu[r].inputs[i];
      const bool same_integers = a.spikes == b.spikes && a.windows == b.windows && a.exceed == b.exceed && a.p_value == b.p_value;
      const double gap = std::isnan(a.height) && std::isnan(b.height) ? 0 : std::abs(a.height - b.height) / std::abs(a.height);
      largest = std::max(largest, gap);
      if (!same_integers || !(gap <= 1e-12)) {
        if (++differences <= 10)
          std::printf("difference: run %zu input %zu: CPU K %d p %g height %.17g, GPU K %d p %g height %.17g\n", r, i, a.exceed,
                      a.p_value, a.height, b.exceed, b.p_value, b.height);
      }
    }
  }
  std::printf("compared %zu runs with the CPU (%d threads, %.1f s): %d differences, largest relative height gap %.3g\n", runs,
              threads, wall, differences, largest);
  return differences;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const causalsweep::CudaDevices gpus = causalsweep::query_cuda_devices();
  if (gpus.count == 0) {
    std::fprintf(stderr, "bench_cuda_n_to_1 needs a CUDA device: %s\n", gpus.description.c_str());
    return 1;
  }
  std::string why;
  if (!cuda::n_to_1_kernels_runnable(o.device, why)) {
    std::fprintf(stderr, "bench_cuda_n_to_1: %s\n", why.c_str());
    return 1;
  }
  const bench::SweepRuns sweep = bench::notebook_sweep(o.seeds, o.duration, o.shuffles);
  const std::vector<n1::Parameters>& parameters = sweep.parameters;

  // Warm-up: context creation and module loading, not timed.
  {
    n1::Parameters p;
    p.duration = 1;
    p.inputs = 2;
    p.shuffles = 2;
    const auto start = std::chrono::steady_clock::now();
    cuda::run_experiments_on_gpu(o.device, {p}, {0}, o.tuning);
    std::printf("warm-up (context, module, a 1 s run): %.2f s\n", seconds_since(start));
  }

  std::vector<n1::Outcome> outcomes;
  double best = 1e300, simulate = 0, test = 0;
  for (int k = 0; k < o.repeat; ++k) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<n1::Outcome> got = cuda::run_experiments_on_gpu(o.device, parameters, sweep.seeds, o.tuning);
    const double wall = seconds_since(start);
    double sim = 0, tst = 0;
    for (const n1::Outcome& out : got) {
      sim += out.simulate_seconds;
      tst += out.test_seconds;
    }
    std::printf("sweep %d: %.3f s wall (device: simulate %.3f s, test %.3f s)\n", k + 1, wall, sim, tst);
    if (wall < best) {
      best = wall;
      simulate = sim;
      test = tst;
      outcomes = std::move(got);
    }
  }

  double additions = 0;
  for (const n1::Outcome& out : outcomes)
    for (const n1::InputTest& in : out.inputs) additions += static_cast<double>(in.windows);  // real train's windows
  // Every surrogate of an input has about its real train's windows (the same intervals): estimate from it.
  additions *= (o.shuffles + 1.0) * static_cast<double>(n1::window_samples(parameters[0]));

  std::printf("device: %s\n", gpus.description.c_str());
  std::printf("sweep: %zu ratios x %d seeds, %g s, %d shuffles: %.3f s wall (%.4f s per run); STA additions %.3g (%.3g per s)\n",
              bench::notebook_ratios.size(), o.seeds, o.duration, o.shuffles, best, best / static_cast<double>(outcomes.size()), additions,
              additions / best);
  bench::print_sweep_table(outcomes, o.seeds, o.csv);
  int differences = 0;
  if (o.compare > 0) differences = compare_with_cpu(o, sweep, outcomes);
  std::printf("{\"bench\": \"cuda_n_to_1_sweep\", \"runs\": %zu, \"duration_s\": %g, \"shuffles\": %d, \"wall_s\": %.4f, "
              "\"device_simulate_s\": %.4f, \"device_test_s\": %.4f, \"sta_additions\": %.4g, \"additions_per_s\": %.4g, "
              "\"cpu_compared_runs\": %d, \"cpu_differences\": %d}\n",
              outcomes.size(), o.duration, o.shuffles, best, simulate, test, additions, additions / best,
              std::min(o.compare, static_cast<int>(outcomes.size())), differences);
  return differences == 0 ? 0 : 3;
}
