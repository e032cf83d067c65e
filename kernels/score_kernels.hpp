#pragma once
// The C++17 interface of the GPU kernels that turn Grams into correlation estimates and estimates
// into per-run scores (kernels/scores.cu). Plain structs and pointers, so host/cuda_backend.cpp and
// the tests (C++20, g++) can drive kernels that nvcc compiles as C++17.
//
//   - correlation: V(i, j) = pearson(x_i[t+1], x_j[t]) from a network's Gram, as host/estimators.cpp's
//     correlation() (and perturbation(), which is the same on the even-transition Gram);
//   - granger: the bivariate lag-1 Granger tests of every observed pair from a network's Gram, as
//     host/estimators.cpp's granger() (both call include/causalsweep/granger_test.hpp), decided at the
//     run's level (corrections none and bonferroni), or left as p-values for:
//   - benjamini_hochberg: decisions() with correction bh over one run's p-values, in place;
//   - scores: corr_with_truth, the AUC of |V| or of a given ranking key (granger: 1 - p), ties sharing
//     their average rank, TPR and FPR of one run, as host/scores.cpp's score_run().
// One CUDA block per network; both block programs also run on the host (emulate_..._on_host), so
// machines without a GPU test the kernels' logic.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace causalsweep::cuda {

// V(i, j) = pearson(x_i[t+1], x_j[t]) from a Gram (the correlation estimator; the perturbation
// estimator is the same on the even-transition Gram).
struct CorrelationBatch {
  int networks = 0, n = 0, k = 0;
  const double* grams = nullptr;  // [networks][gram_doubles(n)]
  double* V = nullptr;            // [networks][k * k] out, V(i, j) at i + j k
  uint32_t* flags = nullptr;      // [networks] out
};
// Launches one block per network on `stream` (asynchronous; launch errors throw). Device pointers.
void launch_correlation(const CorrelationBatch& batch, cudaStream_t stream);
// The same block program on the host, one network after another. Host pointers.
void emulate_correlation_on_host(const CorrelationBatch& batch);

// The bivariate Granger tests of one run per network: V = the decisions, as run_estimator() gives
// granger's V (or the p-values, for launch_benjamini_hochberg to decide), and the key the AUC ranks
// by (score_run: 1 - p).
struct GrangerBatch {
  int networks = 0, n = 0, k = 0;
  const double* grams = nullptr;  // [networks][gram_doubles(n)]
  double level = 0.05;            // declare p < level (none), or p <= level (bonferroni: alpha / (k k))
  bool inclusive = false;         // true for bonferroni, as decisions() (the family is k k: see below)
  bool write_p_values = false;    // V = the p-values instead of decisions (Benjamini-Hochberg decides later)
  double* V = nullptr;            // [networks][k * k] out: 1 / 0 (or p), NaN where the test is undefined
  double* rank_key = nullptr;     // [networks][k * k] out: 1 - p (NaN where p is)
  uint32_t* flags = nullptr;      // [networks] out: the flags granger() sets
};
// Why a family of k*k is exact for bonferroni: the CPU's family is the number of defined tests. When
// one is undefined, V holds a NaN and every score of the run is NaN whatever the others decide.
void launch_granger(const GrangerBatch& batch, cudaStream_t stream);
void emulate_granger_on_host(const GrangerBatch& batch);

// Benjamini-Hochberg decisions of one run per network, in place, as decisions() with correction bh:
// the run's defined p-values sorted, the largest rank r with p_(r) <= r alpha / family (family = the
// number of defined tests), every p <= p_(r) declared; NaN stays NaN.
// t-tested runs (ols, iv: t_test_decisions with bh) give t statistics instead, with a table of
// critical values: p_(r) <= r alpha / family is |t|_(r) >= critical[r], the |t| whose two-sided
// p-value is r alpha / family (the host computes them for the run's df and family k * k; a run with
// a non-finite t has a NaN decision and NaN scores, so its family does not matter).
struct BenjaminiHochbergBatch {
  int networks = 0, k = 0;
  double alpha = 0.05;
  double* V = nullptr;             // [networks][k * k] in: p-values (or t statistics); NaN (or non-finite t):
                                   // untested; out: 1 / 0 / NaN
  const double* critical = nullptr;  // t statistics: [tables][k * k], critical[r] for rank r + 1; nullptr: p-values
  const int* table_of = nullptr;     // t statistics: [networks] each network's table (its df)
  double* scratch = nullptr;       // [networks][score_scratch_doubles(k, shared_limit)] (unused when that is 0)
};
// As launch_scores / emulate_scores_on_host below: the sort buffer in shared memory when it fits.
void launch_benjamini_hochberg(const BenjaminiHochbergBatch& batch, size_t shared_limit_bytes, cudaStream_t stream);
void emulate_benjamini_hochberg_on_host(const BenjaminiHochbergBatch& batch, size_t shared_limit_bytes);

struct RunScore {
  double corr_with_truth, auc, tpr, fpr;  // NaN where undefined (tpr / fpr NaN without decisions)
  uint32_t flags;                          // the scores' own flags (the caller ORs in the estimator's)
  int has_decisions;                       // 1 when a decision rule applied (Scores::has_decisions)
};
struct ScoreBatch {
  int networks = 0, n = 0, k = 0;
  const double* connectivity = nullptr;  // [networks][n * n] A column-major; truth = its leading k x k block (leading dimension n)
  const double* V = nullptr;             // [networks][k * k] the estimate, V(i, j) at i + j k
  const double* decided = nullptr;       // [networks][k * k] 1 / 0 / NaN decisions, or nullptr
  double threshold = -1;                 // used when decided is null: >= 0 decides |V| > threshold (NaN V -> NaN); < 0: no rule
  const double* rank_key = nullptr;      // [networks][k * k] what the AUC ranks instead of |V| (granger: 1 - p), or
                                         // nullptr; a non-finite key leaves the AUC NaN
  RunScore* scores = nullptr;            // [networks] out
  double* scratch = nullptr;             // [networks][score_scratch_doubles(k, shared_limit)] (unused when that is 0)
};
// Global scratch per network (doubles): 0 when the AUC's sort buffer (k * k rounded up to a power
// of two) fits in `shared_limit_bytes` of shared memory next to the reduction rows (20 KiB, always in
// shared memory), else that buffer. At the H100 limit: k <= 128 in shared memory; k = 500 takes 2 MiB.
size_t score_scratch_doubles(int k, size_t shared_limit_bytes);
// Launches one block per network on `stream` (asynchronous; launch errors throw). Device pointers;
// shared_limit_bytes at most the device's shared_memory_limit (cuda_kernels.hpp).
void launch_scores(const ScoreBatch& batch, size_t shared_limit_bytes, cudaStream_t stream);
// The same block program on the host (shared memory allocated here; batch.scratch used when given,
// else allocated here; both poisoned with NaN). Host pointers.
void emulate_scores_on_host(const ScoreBatch& batch, size_t shared_limit_bytes);

}  // namespace causalsweep::cuda
