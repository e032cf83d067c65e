#pragma once
// The GPU estimation stage of the CUDA backend. Once the simulation kernel has left a chunk's Grams in
// device memory, every observed ratio and estimator is estimated there (kernels/least_squares.cu,
// lasso.cu, scores.cu) and scored against the truth on the device; only per-run scores come back
// (a few dozen bytes per run instead of a 0.6 MB Gram per network at n = 100).
//
// The stage runs where its Executor says: on a device stream, or on the host, where the kernels' block
// programs are emulated and Eigen replaces cuBLAS/cuSOLVER. The host mode is how machines without a
// GPU test the whole stage against score_network, the CPU backend's own scoring.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"

namespace causalsweep::cuda {

class LeastSquaresSolver;

// Whether the GPU computes this estimator: correlation, perturbation, the lasso (both solvers), ols,
// iv, granger and granger_conditional, under every correction (Benjamini-Hochberg for ols / iv by
// tables of critical t values the host computes once per df).
bool estimable_on_gpu(const EstimatorSpec& spec);
// ... for networks of n neurons (the lasso kernel takes k <= 4096 observed neurons; above, the host).
bool estimable_on_gpu(const EstimatorSpec& spec, int n);
// Whether a grid has work for the stage: the rate model and at least one estimator the GPU computes
// (for networks of n neurons when n > 0).
bool has_gpu_estimators(const SweepGrid& grid, int n = 0);

// Where the stage runs. On the host, "device" pointers are host pointers and stream is unused.
struct Executor {
  bool on_device = false;
  cudaStream_t stream = nullptr;
  size_t shared_limit = 48 * 1024;  // the device's opt-in shared memory per block (bytes)
  int multiprocessors = 0;          // the device's SM count (sizes grids that fill it); 0 on the host
};

// Pointers into one chunk's memory (device memory on the device, host memory on the host).
struct StageBuffers {
  size_t networks = 0;
  const double* grams = nullptr;         // [networks][gram_doubles(n)]
  const double* even_grams = nullptr;    // perturbation mode only
  const double* connectivity = nullptr;  // [networks][n * n] the truth, column-major
  const double* etas = nullptr;          // [networks]
  const char* inputs = nullptr;          // input_bytes(networks): what prepare_inputs wrote, uploaded
  char* workspace = nullptr;             // workspace_bytes(networks)
  char* results = nullptr;               // result_bytes(networks): scores, flags, first-stage F per run
};

class EstimationStage {
 public:
  // Networks of one size n and mode; the grid must have GPU estimators at n (the others are left to
  // the host). `solver`: the batched least squares for ols / iv, on the executor's side (made here
  // when null); a device worker keeps one, so its cuBLAS / cuSOLVER handles outlive the batches.
  EstimationStage(const SweepGrid& grid, int n, bool perturb, Executor executor, LeastSquaresSolver* solver = nullptr);
  ~EstimationStage();
  EstimationStage(const EstimationStage&) = delete;
  EstimationStage& operator=(const EstimationStage&) = delete;

  size_t input_bytes(size_t networks) const;
  size_t workspace_bytes(size_t networks) const;
  size_t result_bytes(size_t networks) const;

  // Host: the per-network inputs of a chunk (critical t values of the t-tested estimators; for
  // Benjamini-Hochberg, each network's table index and the tables).
  void prepare_inputs(std::span<const NetworkTask* const> tasks, char* inputs) const;
  // Queues (device) or runs (host) the estimation and scoring of every run of the chunk.
  void run(const StageBuffers& buffers) const;
  // Whether some estimators run on the host (they need every network's Grams copied back).
  bool has_host_estimators() const { return has_host_estimators_; }

  // Host: network i's result from the results copied back, in score_network's order; the runs of
  // host estimators come from host_run(ratio_index, estimator_index, network_flags).
  NetworkResult assemble(const NetworkTask& task, size_t i, size_t networks, const char* results, bool empty_truth,
                         int64_t saturated_logits,
                         const std::function<RunResult(int, int, uint32_t)>& host_run) const;

 private:
  struct Layout;
  Layout layout(size_t networks, bool with_workspace = true) const;  // without: the results' offsets only

  const SweepGrid& grid_;
  int n_;
  bool perturb_;
  Executor executor_;
  std::vector<int> observed_;     // k per observed ratio
  std::vector<int> t_tested_;     // estimator indices of GPU ols / iv (they take critical t values)
  // Benjamini-Hochberg over t statistics (ols / iv with bh): the grid's distinct timesteps at this n
  // (a network's table is its T's), and per (such estimator, ratio) a block [T][k * k] of critical
  // |t| for ranks 1 .. k k, at bh_offsets_ (doubles) into bh_tables_.
  std::vector<int> bh_t_tested_, timesteps_;
  std::vector<size_t> bh_offsets_;
  std::vector<double> bh_tables_;
  std::vector<int> active_set_blocks_;  // per ratio: the active-set lasso's grid when it needs scratch
  std::vector<char> on_gpu_;      // per estimator
  bool has_host_estimators_ = false;
  std::unique_ptr<LeastSquaresSolver> own_solver_;
  LeastSquaresSolver* least_squares_ = nullptr;
};

// The critical |t| of a run's decisions, as t_test_decisions decides them (family k * k; NaN when
// the test has no degrees of freedom).
double critical_t(double df, double level, Correction correction, int k);

// Benjamini-Hochberg's critical |t| for ranks 1 .. k k at residual df: entry r is critical_t at
// level (r + 1) alpha / k^2. Computed on all cores and cached per (df, level, k) (up to 256 MiB).
std::shared_ptr<const std::vector<double>> benjamini_hochberg_t_table(double df, double level, int k);

}  // namespace causalsweep::cuda
