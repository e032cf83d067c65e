#pragma once
// Per-run results and the curves reduced from them.
#include <cstdint>
#include <string>
#include <vector>

#include "causalsweep/grid.hpp"

namespace causalsweep {

// Every score a run can have. A run carries only those that apply to its estimator (see
// RunResult::has): tpr and fpr need decisions, first_stage_f belongs to iv. Outputs skip the others.
// The n_to_1 family's connection test has TPR per class, AUCs by its step rule and the neuron's rate.
enum ScoreIndex : int {
  score_corr_with_truth, score_auc, score_tpr, score_fpr, score_first_stage_f,
  score_tpr_exc, score_tpr_inh, score_auc_exc, score_auc_inh, score_output_rate,
};
inline constexpr const char* score_names[] = {"corr_with_truth", "auc",     "tpr",     "fpr",     "first_stage_f",
                                              "tpr_exc",         "tpr_inh", "auc_exc", "auc_inh", "output_rate"};
inline constexpr int score_count = 10;

// One point of a ROC curve (scikit-learn's roc_curve without dropping intermediate points).
struct RocPoint {
  double fpr = 0, tpr = 0, threshold = 0;
};

// One network scored by one estimator at one observed ratio.
struct RunResult {
  int ratio_index = 0;
  int observed = 0;       // k
  int estimator_index = 0;
  double score[score_count] = {};
  uint32_t scored = 0b11;  // bit s: score s applies to this run (corr_with_truth and auc always do)
  uint32_t flags = 0;     // estimator, score and network flags together
  std::vector<RocPoint> roc;  // only for the runs whose seed is in the config's scores.roc_seeds

  bool has(int s) const { return (scored >> s) & 1u; }
  void set(int s, double value) {  // a score that applies to this run
    score[s] = value;
    scored |= 1u << s;
  }
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
  std::vector<double> parameters;  // other model families: the swept parameters (rate fields unused)
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

// roc.csv: one row per ROC point of the runs that kept theirs (network, seed, axes, estimator,
// point index, fpr, tpr, threshold); just the header when none did.
std::string roc_csv(const SweepGrid& grid, const std::vector<NetworkResult>& results);

}  // namespace causalsweep
