#pragma once
// Per-run results and the curves reduced from them.
#include <cstdint>
#include <string>
#include <vector>

#include "causalsweep/grid.hpp"

namespace causalsweep {

inline constexpr const char* score_names[] = {"corr_with_truth", "auc"};
inline constexpr int score_count = 2;

// One network scored by one estimator at one observed ratio.
struct RunResult {
  int ratio_index = 0;
  int observed = 0;       // k
  int estimator_index = 0;
  double score[score_count] = {0, 0};
  uint32_t flags = 0;     // estimator, score and network flags together
};

struct NetworkResult {
  uint64_t network_index = 0;
  uint32_t network_flags = 0;        // flag_empty_truth, flag_saturated_logit
  int64_t saturated_logits = 0;
  std::vector<RunResult> runs;       // ratio-major, then estimator
};

// Seconds spent per phase, summed over worker threads (CPU seconds on the CPU backend).
struct PhaseTimes {
  double generate = 0, simulate = 0, solve = 0, lasso = 0, reduce = 0, write = 0;
  PhaseTimes& operator+=(const PhaseTimes& other);
};

// One point of a curve: runs grouped by every axis but the seed.
struct CurvePoint {
  int n_neurons = 0, timesteps = 0;
  double p_connect = 0, eta = 0, observed_ratio = 0;
  int estimator_index = 0, score_index = 0;
  int64_t count = 0;    // finite values
  int64_t nan_count = 0;
  double mean = 0, std = 0, sem = 0, ci_low = 0, ci_high = 0;
};

// Reduces per-network results (in grid order) to curves: mean, population std, sem (sample std /
// sqrt(count)), and a 95% Student-t interval, over the finite values; NaN values are counted apart.
std::vector<CurvePoint> reduce_curves(const SweepGrid& grid, const std::vector<NetworkResult>& results);

}  // namespace causalsweep
