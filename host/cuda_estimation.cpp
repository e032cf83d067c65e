// The GPU estimation stage (see cuda_estimation.hpp): per observed ratio and estimator, one batched
// estimate over the chunk's networks, then one batched scoring against the truth.
#include "cuda_estimation.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>

#include <boost/math/distributions/students_t.hpp>

#include "causalsweep/flags.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "lasso_active_set_kernels.hpp"
#include "lasso_kernels.hpp"
#include "least_squares_kernels.hpp"
#include "score_kernels.hpp"

namespace causalsweep::cuda {
namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr size_t alignment = 256;
size_t align_up(size_t bytes) { return (bytes + alignment - 1) / alignment * alignment; }

bool t_tested(const EstimatorSpec& spec) {
  return spec.method == EstimatorMethod::ols || spec.method == EstimatorMethod::iv;
}

// The decision threshold on |V| of the estimators without tests (declared() in host/scores.cpp).
double magnitude_threshold(const EstimatorSpec& spec) {
  if (spec.threshold >= 0) return spec.threshold;
  return spec.method == EstimatorMethod::lasso ? 0.0 : -1.0;
}

}  // namespace

bool estimable_on_gpu(const EstimatorSpec& spec) {
  switch (spec.method) {
    case EstimatorMethod::correlation:
    case EstimatorMethod::perturbation: return true;
    case EstimatorMethod::lasso: return true;  // cyclic: lasso.cu; active set: lasso_active_set.cu
    case EstimatorMethod::ols:
    case EstimatorMethod::iv:  // BH: launch_benjamini_hochberg on t with the host's critical values
    case EstimatorMethod::granger:
    case EstimatorMethod::granger_conditional: return true;  // BH: launch_benjamini_hochberg on the p-values
    case EstimatorMethod::sta_shuffle: return false;  // the n_to_1 family's test (cuda_n_to_1)
  }
  return false;
}

bool estimable_on_gpu(const EstimatorSpec& spec, int n) {
  // kernels/lasso.cu: 8 coordinates x 512 threads per target; kernels/lasso_active_set.cu: its 14
  // vectors of k doubles in shared memory (k <= 2029 at the H100's 227 KiB).
  const int lasso_max_k = spec.solver == LassoSolver::cyclic ? 4096 : 2000;
  return estimable_on_gpu(spec) && (spec.method != EstimatorMethod::lasso || n <= lasso_max_k);
}

namespace {

// The batched solver's method of an estimator it runs.
LeastSquaresMethod least_squares_method(const EstimatorSpec& spec) {
  switch (spec.method) {
    case EstimatorMethod::iv: return LeastSquaresMethod::iv;
    case EstimatorMethod::granger_conditional: return LeastSquaresMethod::granger_conditional;
    default: return LeastSquaresMethod::ols;
  }
}

bool solved_by_least_squares(const EstimatorSpec& spec) {
  return t_tested(spec) || spec.method == EstimatorMethod::granger_conditional;
}

// The p-value level of the GPU's Granger decisions: bonferroni's family is k * k (see
// least_squares_kernels.hpp on why that is exact).
double granger_level(const EstimatorSpec& spec, int k) {
  return spec.correction == Correction::bonferroni ? spec.level / (static_cast<double>(k) * k) : spec.level;
}

// The residual df of a t-tested estimator's run: m = T - 1 transitions less k slopes and the
// intercept (iv always has one).
double residual_df(const EstimatorSpec& spec, int k, int timesteps) {
  const double m = timesteps >= 2 ? timesteps - 1.0 : 0.0;
  return m - (k + ((spec.method == EstimatorMethod::iv || spec.intercept) ? 1 : 0));
}

}  // namespace

bool has_gpu_estimators(const SweepGrid& grid, int n) {
  return !grid.family && std::any_of(grid.estimators.begin(), grid.estimators.end(), [n](const EstimatorSpec& s) {
           return n > 0 ? estimable_on_gpu(s, n) : estimable_on_gpu(s);
         });
}

double critical_t(double df, double level, Correction correction, int k) {
  if (!(df > 0)) return nan;
  const double family = static_cast<double>(k) * static_cast<double>(k);
  const double a = correction == Correction::bonferroni ? level / family : level;
  return boost::math::quantile(boost::math::complement(boost::math::students_t(df), a / 2));
}

std::shared_ptr<const std::vector<double>> benjamini_hochberg_t_table(double df, double level, int k) {
  // Batches remake their stages, and each of a node's GPUs has its own: compute each table once,
  // keeping at most 256 MiB of them (k = 2000 makes 32 MB tables; past that the cache starts afresh).
  static std::mutex mutex;
  static std::map<std::tuple<double, double, int>, std::shared_ptr<const std::vector<double>>> cache;
  static size_t cached_doubles = 0;
  constexpr size_t cache_limit_doubles = (size_t{256} << 20) / sizeof(double);
  const auto key = std::make_tuple(df, level, k);
  const std::lock_guard lock(mutex);  // held while computing: a second caller waits for the same table
  if (const auto found = cache.find(key); found != cache.end()) return found->second;

  // Rank r + 1 of a family of k k: decisions()'s threshold (r + 1) alpha / family, as a two-sided |t|.
  // A quantile costs about 3 us, so k = 500 (250,000 ranks, 0.7 s) is spread over the cores.
  const size_t ranks = static_cast<size_t>(k) * static_cast<size_t>(k);
  const double family = static_cast<double>(ranks);
  auto table = std::make_shared<std::vector<double>>(ranks);
  std::mutex failure_mutex;
  std::exception_ptr failure;  // a quantile's exception, rethrown here rather than ending a thread
  const auto fill = [&](size_t begin, size_t end) {
    try {
      for (size_t r = begin; r < end; ++r)
        (*table)[r] = critical_t(df, static_cast<double>(r + 1) * level / family, Correction::none, k);
    } catch (...) {
      const std::lock_guard failure_lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  constexpr size_t ranks_per_thread = 4096;
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::clamp<size_t>(ranks / ranks_per_thread, 1, cores);
  {
    std::vector<std::jthread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(fill, ranks * t / threads, ranks * (t + 1) / threads);
    fill(0, ranks / threads);
  }
  if (failure) std::rethrow_exception(failure);
  if (cached_doubles + ranks > cache_limit_doubles) {  // stages hold their own copies: drop them all
    cache.clear();
    cached_doubles = 0;
  }
  cache.emplace(key, table);
  cached_doubles += ranks;
  return table;
}

// Byte offsets of a chunk's stage memory. Results: for run block b = ratio * estimators + estimator,
// RunScore[b][networks], then the estimators' flags[b][networks], then first-stage F[b][networks].
struct EstimationStage::Layout {
  size_t networks = 0, blocks = 0;
  size_t scores = 0, flags = 0, first_stage_f = 0, results_end = 0;
  size_t estimate = 0, decided = 0, sweeps = 0, least_squares = 0, lasso = 0, score_scratch = 0, workspace_end = 0;
  size_t table_of = 0, bh_tables = 0;  // after the critical t values: [networks] ints, then bh_tables_
  size_t inputs_end = 0;  // critical t: [t_tested estimator][ratio][networks]
};

EstimationStage::EstimationStage(const SweepGrid& grid, int n, bool perturb, Executor executor,
                                 LeastSquaresSolver* solver)
    : grid_(grid), n_(n), perturb_(perturb), executor_(executor), least_squares_(solver) {
  if (!has_gpu_estimators(grid, n)) throw std::logic_error("EstimationStage: the grid has no estimator the GPU computes");
  for (double ratio : grid.observed_ratios) observed_.push_back(observed_count(n, ratio));
  for (size_t e = 0; e < grid.estimators.size(); ++e) {
    on_gpu_.push_back(estimable_on_gpu(grid.estimators[e], n));
    has_host_estimators_ = has_host_estimators_ || !on_gpu_.back();
    if (on_gpu_.back() && t_tested(grid.estimators[e])) {
      t_tested_.push_back(static_cast<int>(e));
      if (grid.estimators[e].correction == Correction::bh) bh_t_tested_.push_back(static_cast<int>(e));
    }
  }
  if (!bh_t_tested_.empty()) {
    for (const NetworkTask& task : grid.networks)
      if (task.n_neurons == n && std::find(timesteps_.begin(), timesteps_.end(), task.timesteps) == timesteps_.end())
        timesteps_.push_back(task.timesteps);
    for (const int e : bh_t_tested_) {
      const EstimatorSpec& spec = grid.estimators[static_cast<size_t>(e)];
      for (const int k : observed_) {
        bh_offsets_.push_back(bh_tables_.size());
        for (const int timesteps : timesteps_) {
          const auto table = benjamini_hochberg_t_table(residual_df(spec, k, timesteps), spec.level, k);
          bh_tables_.insert(bh_tables_.end(), table->begin(), table->end());
        }
      }
    }
  }
  const bool active_set = std::any_of(grid.estimators.begin(), grid.estimators.end(), [&](const EstimatorSpec& s) {
    return s.method == EstimatorMethod::lasso && s.solver == LassoSolver::active_set && estimable_on_gpu(s, n);
  });
  for (const int k : observed_)  // the occupancy query once, not per layout
    active_set_blocks_.push_back(
        active_set ? lasso_active_set_scratch_blocks(k, executor.shared_limit, executor.multiprocessors) : 0);
  const bool solves = std::any_of(grid.estimators.begin(), grid.estimators.end(), [&](const EstimatorSpec& s) {
    return solved_by_least_squares(s) && estimable_on_gpu(s, n);
  });
  if (solves && !least_squares_) {
    own_solver_ = executor.on_device ? LeastSquaresSolver::on_device(executor.stream) : LeastSquaresSolver::on_host();
    least_squares_ = own_solver_.get();
  }
}

EstimationStage::~EstimationStage() = default;

EstimationStage::Layout EstimationStage::layout(size_t networks, bool with_workspace) const {
  Layout l;
  l.networks = networks;
  l.blocks = observed_.size() * grid_.estimators.size();
  size_t at = 0;
  auto section = [&at](size_t bytes) {
    const size_t start = at;
    at = align_up(at + bytes);
    return start;
  };
  l.scores = section(l.blocks * networks * sizeof(RunScore));
  l.flags = section(l.blocks * networks * sizeof(uint32_t));
  l.first_stage_f = section(l.blocks * networks * sizeof(double));
  l.results_end = at;
  if (!with_workspace) return l;  // assemble() reads the results only, once per network

  // The largest k of the grid sizes every per-run buffer; the buffers are reused run after run.
  const int k = *std::max_element(observed_.begin(), observed_.end());
  at = 0;
  const size_t matrix = networks * static_cast<size_t>(k) * static_cast<size_t>(k) * sizeof(double);
  l.estimate = section(matrix);
  l.decided = section(matrix);
  l.sweeps = section(networks * sizeof(int));
  size_t solver_bytes = 0, lasso_doubles = 0;  // lasso: for the whole chunk
  for (size_t e = 0; e < grid_.estimators.size(); ++e) {
    const EstimatorSpec& spec = grid_.estimators[e];
    if (!on_gpu_[e]) continue;
    if (solved_by_least_squares(spec))
      for (int kr : observed_)
        solver_bytes = std::max(solver_bytes, least_squares_->workspace_bytes(least_squares_method(spec),
                                                                              static_cast<int>(networks), kr));
    if (spec.method == EstimatorMethod::lasso)
      for (size_t r = 0; r < observed_.size(); ++r) {
        // The cyclic kernel's scratch is per network; the active set's per block of its grid.
        const int kr = observed_[r];
        lasso_doubles = std::max(
            lasso_doubles, spec.solver == LassoSolver::cyclic
                               ? networks * lasso_scratch_doubles(kr, executor_.shared_limit)
                               : std::min(networks * static_cast<size_t>(kr), static_cast<size_t>(active_set_blocks_[r])) *
                                     lasso_active_set_scratch_doubles(kr, executor_.shared_limit));
      }
  }
  size_t score_doubles = 0;
  for (int kr : observed_) score_doubles = std::max(score_doubles, score_scratch_doubles(kr, executor_.shared_limit));
  l.least_squares = section(solver_bytes);
  l.lasso = section(lasso_doubles * sizeof(double));
  l.score_scratch = section(networks * score_doubles * sizeof(double));
  l.workspace_end = at;
  at = align_up(t_tested_.size() * observed_.size() * networks * sizeof(double));
  l.table_of = at;
  l.bh_tables = align_up(at + (bh_t_tested_.empty() ? 0 : networks * sizeof(int)));
  l.inputs_end = align_up(l.bh_tables + bh_tables_.size() * sizeof(double));
  return l;
}

size_t EstimationStage::input_bytes(size_t networks) const { return layout(networks).inputs_end; }
size_t EstimationStage::workspace_bytes(size_t networks) const { return layout(networks).workspace_end; }
size_t EstimationStage::result_bytes(size_t networks) const { return layout(networks, false).results_end; }

void EstimationStage::prepare_inputs(std::span<const NetworkTask* const> tasks, char* inputs) const {
  auto* critical = reinterpret_cast<double*>(inputs);
  const size_t networks = tasks.size();
  for (size_t t = 0; t < t_tested_.size(); ++t) {
    const EstimatorSpec& spec = grid_.estimators[static_cast<size_t>(t_tested_[t])];
    for (size_t r = 0; r < observed_.size(); ++r) {
      const int k = observed_[r];
      // Benjamini-Hochberg decides from the tables below, not from one critical value (unused: NaN).
      // A quantile costs about 3 us and depends on T only: one per distinct T, not per network.
      int last_timesteps = -1;
      double last = std::numeric_limits<double>::quiet_NaN();
      for (size_t i = 0; i < networks; ++i) {
        if (spec.correction != Correction::bh && tasks[i]->timesteps != last_timesteps) {
          last_timesteps = tasks[i]->timesteps;
          last = critical_t(residual_df(spec, k, last_timesteps), spec.level, spec.correction, k);
        }
        critical[(t * observed_.size() + r) * networks + i] = last;
      }
    }
  }
  if (bh_t_tested_.empty()) return;
  const Layout l = layout(networks);
  auto* table_of = reinterpret_cast<int*>(inputs + l.table_of);
  for (size_t i = 0; i < networks; ++i)
    table_of[i] = static_cast<int>(std::find(timesteps_.begin(), timesteps_.end(), tasks[i]->timesteps) -
                                   timesteps_.begin());
  std::memcpy(inputs + l.bh_tables, bh_tables_.data(), bh_tables_.size() * sizeof(double));
}

void EstimationStage::run(const StageBuffers& b) const {
  const Layout l = layout(b.networks);
  const int networks = static_cast<int>(b.networks);
  auto* scores = reinterpret_cast<RunScore*>(b.results + l.scores);
  auto* flags = reinterpret_cast<uint32_t*>(b.results + l.flags);
  auto* first_stage_f = reinterpret_cast<double*>(b.results + l.first_stage_f);
  auto* estimate = reinterpret_cast<double*>(b.workspace + l.estimate);
  auto* decided = reinterpret_cast<double*>(b.workspace + l.decided);
  const auto* critical = reinterpret_cast<const double*>(b.inputs);

  auto fill = [&](void* at, int byte, size_t bytes) {
    if (executor_.on_device)
      CS_CUDA_CHECK(cudaMemsetAsync(at, byte, bytes, executor_.stream));
    else
      std::memset(at, byte, bytes);
  };
  const size_t E = grid_.estimators.size();
  for (size_t r = 0; r < observed_.size(); ++r) {
    const int k = observed_[r];
    const size_t matrix_bytes = b.networks * static_cast<size_t>(k) * static_cast<size_t>(k) * sizeof(double);
    for (size_t e = 0; e < E; ++e) {
      if (!on_gpu_[e]) continue;
      const EstimatorSpec& spec = grid_.estimators[e];
      const size_t block = r * E + e;
      uint32_t* run_flags = flags + block * b.networks;
      double* run_first_stage_f = first_stage_f + block * b.networks;
      fill(run_flags, 0, b.networks * sizeof(uint32_t));  // the perturbation path below writes none
      const double* run_decided = nullptr;
      const double* run_rank_key = nullptr;
      switch (spec.method) {
        case EstimatorMethod::correlation:
        case EstimatorMethod::perturbation: {
          if (spec.method == EstimatorMethod::perturbation && !perturb_) {
            fill(estimate, 0xff, matrix_bytes);  // no clamped transitions: NaN, flagged in assemble()
            break;
          }
          CorrelationBatch batch;
          batch.networks = networks;
          batch.n = n_;
          batch.k = k;
          batch.grams = spec.method == EstimatorMethod::perturbation ? b.even_grams : b.grams;
          batch.V = estimate;
          batch.flags = run_flags;
          if (executor_.on_device)
            launch_correlation(batch, executor_.stream);
          else
            emulate_correlation_on_host(batch);
          break;
        }
        case EstimatorMethod::ols:
        case EstimatorMethod::iv:
        case EstimatorMethod::granger_conditional: {
          LeastSquaresBatch batch;
          batch.networks = networks;
          batch.n = n_;
          batch.k = k;
          batch.method = least_squares_method(spec);
          batch.intercept = spec.intercept || spec.method == EstimatorMethod::granger_conditional;
          batch.grams = b.grams;
          batch.etas = b.etas;
          batch.inclusive = spec.correction != Correction::none;
          batch.V = estimate;
          batch.first_stage_f = run_first_stage_f;
          batch.flags = run_flags;
          if (spec.method == EstimatorMethod::granger_conditional) {
            // As for granger below: V holds the decisions, the decisions buffer the key 1 - p.
            batch.level = granger_level(spec, k);
            batch.write_p_values = spec.correction == Correction::bh;
            batch.rank_key = decided;
            run_decided = estimate;
            run_rank_key = decided;
          } else {
            const auto t = static_cast<size_t>(std::find(t_tested_.begin(), t_tested_.end(), static_cast<int>(e)) -
                                               t_tested_.begin());
            batch.critical_t = critical + (t * observed_.size() + r) * b.networks;
            batch.decided = decided;
            batch.write_t_values = spec.correction == Correction::bh;  // decided below, from the tables
            run_decided = decided;
          }
          least_squares_->solve(batch, b.workspace + l.least_squares);
          break;
        }
        case EstimatorMethod::lasso: {
          // The fields both lasso kernels take.
          auto lasso_batch = [&](auto batch) {
            batch.networks = networks;
            batch.n = n_;
            batch.k = k;
            batch.intercept = spec.intercept;
            batch.alpha = spec.alpha;
            batch.tol = spec.tol;
            batch.max_iter = spec.max_iter;
            batch.grams = b.grams;
            batch.V = estimate;
            batch.flags = run_flags;
            batch.scratch = reinterpret_cast<double*>(b.workspace + l.lasso);
            return batch;
          };
          if (spec.solver == LassoSolver::active_set) {
            // The CPU's feature-sign search from the CPU's start (w = 0), a block per target (or,
            // with the system in global scratch, a grid of blocks looping over the targets).
            fill(estimate, 0, matrix_bytes);
            LassoActiveSetBatch batch = lasso_batch(LassoActiveSetBatch{});
            batch.scratch_blocks = active_set_blocks_[r];
            if (executor_.on_device)
              launch_lasso_active_set(batch, executor_.shared_limit, executor_.stream);
            else
              emulate_lasso_active_set_on_host(batch, executor_.shared_limit);
            break;
          }
          LassoBatch batch = lasso_batch(LassoBatch{});
          batch.sweeps = reinterpret_cast<int*>(b.workspace + l.sweeps);
          if (executor_.on_device)
            launch_lasso(batch, executor_.shared_limit, executor_.stream);
          else
            emulate_lasso_on_host(batch, executor_.shared_limit);
          break;
        }
        case EstimatorMethod::granger: {
          // V holds the decisions themselves (as run_estimator's granger V), so the decisions buffer
          // is free to hold the key the AUC ranks by: 1 - p.
          GrangerBatch batch;
          batch.networks = networks;
          batch.n = n_;
          batch.k = k;
          batch.grams = b.grams;
          batch.level = granger_level(spec, k);
          batch.inclusive = spec.correction != Correction::none;
          batch.write_p_values = spec.correction == Correction::bh;
          batch.V = estimate;
          batch.rank_key = decided;
          batch.flags = run_flags;
          if (executor_.on_device)
            launch_granger(batch, executor_.stream);
          else
            emulate_granger_on_host(batch);
          run_decided = estimate;
          run_rank_key = decided;
          break;
        }
        default: throw std::logic_error("EstimationStage: estimator not computed on the GPU");
      }
      if (spec.correction == Correction::bh && (run_rank_key || t_tested(spec))) {
        // The tests left p-values in V (Granger) or t statistics in the decisions (ols, iv, with the
        // host's tables of critical |t|): the step-up decides them in place.
        BenjaminiHochbergBatch batch;
        batch.networks = networks;
        batch.k = k;
        batch.alpha = spec.level;
        batch.V = estimate;
        batch.scratch = reinterpret_cast<double*>(b.workspace + l.score_scratch);
        if (t_tested(spec)) {
          const auto h = static_cast<size_t>(std::find(bh_t_tested_.begin(), bh_t_tested_.end(), static_cast<int>(e)) -
                                             bh_t_tested_.begin());
          batch.V = decided;
          batch.critical =
              reinterpret_cast<const double*>(b.inputs + l.bh_tables) + bh_offsets_[h * observed_.size() + r];
          batch.table_of = reinterpret_cast<const int*>(b.inputs + l.table_of);
        }
        if (executor_.on_device)
          launch_benjamini_hochberg(batch, executor_.shared_limit, executor_.stream);
        else
          emulate_benjamini_hochberg_on_host(batch, executor_.shared_limit);
      }
      ScoreBatch batch;
      batch.networks = networks;
      batch.n = n_;
      batch.k = k;
      batch.connectivity = b.connectivity;
      batch.V = estimate;
      batch.decided = run_decided;
      batch.rank_key = run_rank_key;
      batch.threshold = run_decided ? -1.0 : magnitude_threshold(spec);
      batch.scores = scores + block * b.networks;
      batch.scratch = reinterpret_cast<double*>(b.workspace + l.score_scratch);
      if (executor_.on_device)
        launch_scores(batch, executor_.shared_limit, executor_.stream);
      else
        emulate_scores_on_host(batch, executor_.shared_limit);
    }
  }
}

NetworkResult EstimationStage::assemble(const NetworkTask& task, size_t i, size_t networks, const char* results,
                                        bool empty_truth, int64_t saturated_logits,
                                        const std::function<RunResult(int, int, uint32_t)>& host_run) const {
  const Layout l = layout(networks, false);
  const auto* scores = reinterpret_cast<const RunScore*>(results + l.scores);
  const auto* flags = reinterpret_cast<const uint32_t*>(results + l.flags);
  const auto* first_stage_f = reinterpret_cast<const double*>(results + l.first_stage_f);
  NetworkResult result;  // the fields and order of score_network's
  result.network_index = task.index;
  if (empty_truth) result.network_flags |= flag_empty_truth;
  result.saturated_logits = saturated_logits;
  if (saturated_logits > 0) result.network_flags |= flag_saturated_logit;
  const size_t E = grid_.estimators.size();
  for (size_t r = 0; r < observed_.size(); ++r)
    for (size_t e = 0; e < E; ++e) {
      if (!on_gpu_[e]) {
        result.runs.push_back(host_run(static_cast<int>(r), static_cast<int>(e), result.network_flags));
        continue;
      }
      const EstimatorSpec& spec = grid_.estimators[e];
      const size_t at = (r * E + e) * networks + i;
      const RunScore& s = scores[at];
      RunResult run;
      run.ratio_index = static_cast<int>(r);
      run.observed = observed_[r];
      run.estimator_index = static_cast<int>(e);
      run.score[score_corr_with_truth] = s.corr_with_truth;
      run.score[score_auc] = s.auc;
      if (s.has_decisions) {
        run.set(score_tpr, s.tpr);
        run.set(score_fpr, s.fpr);
      }
      if (spec.method == EstimatorMethod::iv) run.set(score_first_stage_f, first_stage_f[at]);
      uint32_t estimator_flags = flags[at];
      if (spec.method == EstimatorMethod::perturbation && !perturb_) estimator_flags |= flag_unidentified;
      run.flags = estimator_flags | s.flags | result.network_flags;
      result.runs.push_back(run);
    }
  return result;
}

}  // namespace causalsweep::cuda
