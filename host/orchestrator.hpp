#pragma once
// The orchestrator: plan a sweep, run it batch by batch on a backend, reduce the curves.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "causalsweep/backend.hpp"
#include "causalsweep/config.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"
#include "progress.hpp"

namespace causalsweep {

struct SweepPlan {
  uint64_t networks = 0, runs = 0, result_rows = 0;
  int threads = 1, batch_size = 1;
  uint64_t memory_bytes = 0;           // peak estimate: worker state plus results held until written
  uint64_t memory_available = 0;       // MemAvailable of this machine
  double cost = 0;                     // multiply-adds (cost model of grid.hpp)
  double estimated_seconds = 0;        // at a nominal CPU rate per thread
};

// Sizes the sweep; InputError naming the key when it cannot fit in this machine's memory.
SweepPlan plan_sweep(const SweepConfig& config, const SweepGrid& grid, int threads);

struct SweepOutcome {
  std::vector<NetworkResult> results;  // grid order
  std::vector<CurvePoint> curves;
  PhaseTimes times;                    // seconds per phase, summed over threads
  double wall_seconds = 0;
  std::string started_utc, finished_utc;
};

SweepOutcome run_sweep(const SweepGrid& grid, const SweepPlan& plan, Backend& backend, Progress& progress);

// Runs `tasks` batch by batch; each finished batch (results in batch order, its phase times) goes to
// `sink` before the next batch starts, so a resumable run can make it durable first.
using BatchSink = std::function<void(std::vector<NetworkResult>&&, const PhaseTimes&)>;
void run_batches(std::span<const NetworkTask> tasks, const SweepGrid& grid, const SweepPlan& plan, Backend& backend,
                 Progress& progress, const BatchSink& sink);

// Nominal multiply-adds per second of one CPU thread in this engine, for plan estimates only.
inline constexpr double nominal_rate_per_thread = 4e9;

std::string utc_now(const char* format = "%Y-%m-%dT%H:%M:%SZ");

}  // namespace causalsweep
