// Plans and runs a sweep: batches of networks go to the backend, results come back in grid order.
#include "orchestrator.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include <fmt/format.h>

namespace causalsweep {
namespace {

uint64_t memory_available_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 8ull << 30;  // not Linux: assume a modest machine
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

}  // namespace

std::string utc_now(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, format, &utc);
  return buffer;
}

SweepPlan plan_sweep(const SweepConfig& config, const SweepGrid& grid, int threads) {
  SweepPlan plan;
  plan.threads = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  plan.networks = grid.networks.size();
  plan.runs = grid.runs();
  plan.result_rows = plan.runs * grid.estimators.size() * score_count;
  plan.batch_size = config.run.batch_size > 0 ? config.run.batch_size : 4 * plan.threads;

  uint64_t largest_network = 0;
  for (const NetworkTask& t : grid.networks) {
    largest_network = std::max(largest_network, network_memory_bytes(t, grid));
    plan.cost += network_cost(t, grid);
  }
  const uint64_t working = largest_network * static_cast<uint64_t>(std::min<uint64_t>(plan.threads, plan.networks));
  const uint64_t results = plan.runs * grid.estimators.size() * sizeof(RunResult) + plan.result_rows * 160;
  plan.memory_bytes = working + results;
  plan.memory_available = memory_available_bytes();
  plan.estimated_seconds = plan.cost / (nominal_rate_per_thread * plan.threads);

  if (plan.memory_bytes > plan.memory_available * 8 / 10) {
    const bool networks_too_big = working > plan.memory_available / 2;
    throw InputError(fmt::format(
        "{}: the sweep needs about {} of memory ({} for {} network(s) in flight, {} for {} result rows) but only {} "
        "is available; {}",
        config.source_name, human_bytes(static_cast<double>(plan.memory_bytes)), human_bytes(static_cast<double>(working)),
        std::min<uint64_t>(plan.threads, plan.networks), human_bytes(static_cast<double>(results)), plan.result_rows,
        human_bytes(static_cast<double>(plan.memory_available)),
        networks_too_big ? (grid.family ? "reduce key 'model.duration_s' or 'run.threads'"
                                        : "reduce key 'model.n_neurons' or 'run.threads'")
                         : "reduce the grid (keys 'seeds.count', 'model.*' lists, 'estimators.use') or split it"));
  }
  return plan;
}

void run_batches(std::span<const NetworkTask> tasks, const SweepGrid& grid, const SweepPlan& plan, Backend& backend,
                 Progress& progress, const BatchSink& sink) {
  double total_cost = 0;
  for (const NetworkTask& t : tasks) total_cost += network_cost(t, grid);
  progress.start(tasks.size(), total_cost);
  for (size_t begin = 0; begin < tasks.size(); begin += static_cast<size_t>(plan.batch_size)) {
    const auto batch = tasks.subspan(begin, std::min(tasks.size() - begin, static_cast<size_t>(plan.batch_size)));
    PhaseTimes times;
    std::vector<NetworkResult> results = backend.run_batch(batch, grid, times);
    double cost = 0;
    for (const NetworkTask& t : batch) cost += network_cost(t, grid);
    sink(std::move(results), times);
    progress.advance(batch.size(), cost);
  }
  progress.finish();
}

SweepOutcome run_sweep(const SweepGrid& grid, const SweepPlan& plan, Backend& backend, Progress& progress) {
  SweepOutcome out;
  out.started_utc = utc_now();
  const auto start = std::chrono::steady_clock::now();
  out.results.reserve(grid.networks.size());
  run_batches(grid.networks, grid, plan, backend, progress, [&](std::vector<NetworkResult>&& results, const PhaseTimes& times) {
    for (NetworkResult& r : results) out.results.push_back(std::move(r));
    out.times += times;
  });
  const auto reduce_start = std::chrono::steady_clock::now();
  out.curves = reduce_curves(grid, out.results);
  out.times.reduce += std::chrono::duration<double>(std::chrono::steady_clock::now() - reduce_start).count();
  out.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out.finished_utc = utc_now();
  return out;
}

}  // namespace causalsweep
