// The CPU backend: networks of a batch run in parallel, one network per worker thread at a time,
// so a network's result never depends on the thread count or the batch it landed in.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "causalsweep/backend.hpp"
#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/scores.hpp"
#include "cpu_network.hpp"
#include "engine.hpp"

namespace causalsweep {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown CPU";
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads)
      : threads_(threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()))) {}

  std::string name() const override { return "cpu"; }
  std::string device() const override { return fmt::format("{} ({} threads)", cpu_model(), threads_); }

  std::vector<NetworkResult> run_batch(std::span<const NetworkTask> batch, const SweepGrid& grid,
                                       PhaseTimes& times) override {
    std::vector<NetworkResult> results(batch.size());
    std::atomic<size_t> next{0};
    std::mutex times_mutex;
    auto worker = [&] {
      PhaseTimes local;
      for (size_t i = next++; i < batch.size(); i = next++)
        results[i] = grid.family ? grid.family->run_on_cpu(batch[i], grid, local) : run_cpu_network(batch[i], grid, local);
      const std::lock_guard lock(times_mutex);
      times += local;
    };
    const int workers = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads_), batch.size()));
    std::vector<std::jthread> pool;
    for (int w = 1; w < workers; ++w) pool.emplace_back(worker);
    worker();  // the calling thread works too
    return results;
  }

 private:
  int threads_;
};

}  // namespace

NetworkResult run_cpu_network(const NetworkTask& task, const SweepGrid& grid, PhaseTimes& times,
                              std::vector<KeptMatrix>* kept) {
  auto start = std::chrono::steady_clock::now();
  bool empty = false;
  const Eigen::MatrixXd A = network_connectivity(task, grid.model, empty);
  times.generate += seconds_since(start);

  start = std::chrono::steady_clock::now();
  const NetworkGrams grams = simulate_network(task, A, grid.model.nonlinearity);
  times.simulate += seconds_since(start);
  return score_network(task, grid, A, empty, grams.all, grams.even ? &*grams.even : nullptr, times, kept);
}

NetworkResult score_network(const NetworkTask& task, const SweepGrid& grid, const Eigen::MatrixXd& A, bool empty,
                            const Gram& all, const Gram* even, PhaseTimes& times, std::vector<KeptMatrix>* kept) {
  NetworkResult result;
  result.network_index = task.index;
  if (empty) result.network_flags |= flag_empty_truth;
  result.saturated_logits = all.saturated_logits;
  if (result.saturated_logits > 0) result.network_flags |= flag_saturated_logit;
  for (size_t r = 0; r < grid.observed_ratios.size(); ++r)
    for (size_t e = 0; e < grid.estimators.size(); ++e)
      result.runs.push_back(score_one_run(task, grid, A, static_cast<int>(r), static_cast<int>(e), all, even,
                                          result.network_flags, times, kept));
  return result;
}

RunResult score_one_run(const NetworkTask& task, const SweepGrid& grid, const Eigen::MatrixXd& A, int ratio_index,
                        int estimator_index, const Gram& all, const Gram* even, uint32_t network_flags,
                        PhaseTimes& times, std::vector<KeptMatrix>* kept) {
  const int k = observed_count(task.n_neurons, grid.observed_ratios[static_cast<size_t>(ratio_index)]);
  const Eigen::MatrixXd truth = A.topLeftCorner(k, k);
  const EstimatorSpec& spec = grid.estimators[static_cast<size_t>(estimator_index)];
  auto start = std::chrono::steady_clock::now();
  // Sweeps write decisions, never p-values: critical t values replace the k x k Student-t tails.
  const Estimate estimate = run_estimator(spec, all, even, k, task.eta, PValues::skip);
  (spec.method == EstimatorMethod::lasso ? times.lasso : times.solve) += seconds_since(start);

  start = std::chrono::steady_clock::now();
  Scores scores = score_run(truth, estimate, spec, grid.keeps_roc(task.seed));
  RunResult run;
  run.ratio_index = ratio_index;
  run.observed = k;
  run.estimator_index = estimator_index;
  run.score[score_corr_with_truth] = scores.corr_with_truth;
  run.score[score_auc] = scores.auc;
  if (scores.has_decisions) {
    run.set(score_tpr, scores.tpr);
    run.set(score_fpr, scores.fpr);
  }
  if (spec.method == EstimatorMethod::iv) run.set(score_first_stage_f, estimate.first_stage_f);
  run.roc = std::move(scores.roc);
  if (kept) kept->push_back({ratio_index, estimator_index, k, truth, estimate.V});
  run.flags = estimate.flags | scores.flags | network_flags;
  times.reduce += seconds_since(start);
  return run;
}

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

}  // namespace causalsweep
