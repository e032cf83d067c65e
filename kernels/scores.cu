// The correlation estimator and the per-run scores on the GPU (interface: kernels/score_kernels.hpp).
//
// correlation  block per network: V(i, j) = pearson(x_i[t+1], x_j[t]) from the Gram's raw sums,
//              each entry computed exactly as host/estimators.cpp's correlation_from_sums computes it
//              (same operations in the same order: the results agree bit for bit), and the
//              constant_regressor flag where an observed neuron's x[t] or x[t+1] never varied.
// granger      block per network: every observed pair's bivariate lag-1 Granger test from the Gram's
//              raw sums by include/causalsweep/granger_test.hpp (the code host/estimators.cpp's
//              granger() runs), decided at the run's level; V = the decisions (or the p-values,
//              for Benjamini-Hochberg), and 1 - p for the AUC.
// benjamini_hochberg  block per run: decisions() with correction bh in place of V's p-values: the
//              defined p-values sorted (bitonic, as the AUC's keys), the step-up cutoff, p <= cutoff.
// scores       block per run: host/scores.cpp's score_run for the estimators ranked by |V|:
//                corr_with_truth  two-pass Pearson of the truth block against V over the k*k entries
//                auc              Mann-Whitney AUC of |V| (or of a given key: granger's 1 - p)
//                                 against truth != 0, ties sharing their average rank: the keys
//                                 sorted (bitonic), each positive's tie group found by binary
//                                 search, the positives' ranks summed
//                tpr, fpr         from the given decisions, or |V| > threshold
//              and the flags score_run sets (constant_truth, constant_estimate, one_class).
//
// All are block programs (block_program.cuh), written once as phases separated by barriers: on the
// GPU every thread runs a phase, then __syncthreads(); on the host (tests without a GPU) the phase
// runs for each thread in turn. No thread reads, within a phase, what another thread writes in it.
//
// Exactness. Sums go through per-thread partials (strided, in index order) and a tree over the
// threads in a fixed order, so results depend on the data only. The AUC is exact: ranks are
// half-integers and their sums stay far below 2^53, so any order gives the CPU's bits. Pearson's sums
// differ from the CPU's sequential ones by rounding only (~1e-16 relative), except where that would
// change the answer's kind: the mean of a constant sequence is taken sequentially, as the CPU takes
// it, so a constant truth or estimate is NaN-and-flagged (or not) exactly where the CPU says so.
//
// Memory and limits: 256 threads per block; the reduction rows (10 x 256 doubles) in shared memory;
// the sort buffer (k*k padded to a power of two) in shared memory when it fits (k <= 128 at the
// H100's 227 KiB), else in the run's global scratch (every pass then goes through L2 / HBM). k <= 32768.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/flags.hpp"
#include "causalsweep/granger_test.hpp"
#include "causalsweep/variation.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "score_kernels.hpp"
#include "shared_memory.cuh"

namespace causalsweep::cuda {
namespace {

constexpr int correlation_threads = 256;
constexpr int granger_threads = 256;
constexpr int score_threads = 256;  // a power of two: the reductions halve it
constexpr int max_k = 32768;        // k * k and its power-of-two padding must fit an int
constexpr double not_a_number = NAN;  // <cmath>'s constants: usable in device code too
constexpr double infinity = HUGE_VAL;

// ---- correlation ------------------------------------------------------------------------------

// The raw sums of one Gram that the correlation estimator reads (gram.hpp's index helpers).
struct GramSums {
  const double* ww;  // (2n+1) x (2n+1), column-major
  const double* wu;  // (2n+1) x 2n
  const double* uu;  // 2n
  int n, p;          // p = 2n + 1, the leading dimension of ww and wu

  __host__ __device__ GramSums(const double* gram, int neurons)
      : ww(gram), wu(gram + (2 * neurons + 1) * (2 * neurons + 1)),
        uu(wu + (2 * neurons + 1) * 2 * neurons), n(neurons), p(2 * neurons + 1) {}

  __host__ __device__ double transitions() const { return ww[0]; }                              // ww(0, 0)
  __host__ __device__ double x_sum(int j) const { return ww[static_cast<size_t>(1 + n + j) * p]; }  // ww(0, x_j)
  __host__ __device__ double x_cross(int i, int j) const {  // ww(x_i, x_j)
    return ww[(1 + n + i) + static_cast<size_t>(1 + n + j) * p];
  }
  __host__ __device__ double x_sq(int j) const { return x_cross(j, j); }
  __host__ __device__ double next_sum(int i) const { return wu[static_cast<size_t>(i) * p]; }  // wu(0, next_i)
  __host__ __device__ double next_sq(int i) const { return uu[i]; }
  __host__ __device__ double x_next(int j, int i) const { return wu[(1 + n + j) + static_cast<size_t>(i) * p]; }

  // Centred sums of squares, as correlation_from_sums: sum x^2 - (sum x)^2 / m.
  __host__ __device__ double x_variation(int j) const { return x_sq(j) - x_sum(j) * x_sum(j) / transitions(); }
  __host__ __device__ double next_variation(int i) const {
    return next_sq(i) - next_sum(i) * next_sum(i) / transitions();
  }
  // Whether x_j[t] or x_i[t+1] never varied (variation.hpp's rule, as the CPU).
  __host__ __device__ bool x_constant(int j) const { return never_varied(x_variation(j), x_sq(j), transitions()); }
  __host__ __device__ bool next_constant(int i) const {
    return never_varied(next_variation(i), next_sq(i), transitions());
  }
};

// V(i, j) = corr(x_i[t+1], x_j[t]), NaN where either never varied (the CPU's expression, term by term).
__host__ __device__ inline double correlation_entry(const GramSums& g, int i, int j) {
  const double m = g.transitions();
  const double cov = g.x_next(j, i) - g.x_sum(j) * g.next_sum(i) / m;
  const double denom = sqrt(g.x_variation(j) * g.next_variation(i));
  return !g.x_constant(j) && !g.next_constant(i) && denom > 0 ? cov / denom : not_a_number;
}

// One network: threads own strided entries of V (i fastest: writes coalesce). Thread 0 also
// decides the flag, an O(k) scan against each thread's O(k^2 / threads) entries.
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void correlation_block(Block& block, const CorrelationBatch& batch, int network) {
  const int n = batch.n, k = batch.k;
  const GramSums g(batch.grams + static_cast<size_t>(network) * gram_doubles(n), n);
  double* V = batch.V + static_cast<size_t>(network) * k * k;
  block.parallel([&](int tid, int threads) {
    for (int e = tid; e < k * k; e += threads) V[e] = correlation_entry(g, e % k, e / k);
    if (tid == 0) {
      bool constant = false;  // as the CPU: a NaN variation does not flag
      for (int j = 0; j < k; ++j) constant = constant || g.x_constant(j) || g.next_constant(j);
      batch.flags[network] = constant ? flag_constant_regressor : flag_none;
    }
  });
}

__global__ void __launch_bounds__(correlation_threads) correlation_kernel(const CorrelationBatch batch) {
  DeviceBlock block;
  correlation_block(block, batch, static_cast<int>(blockIdx.x));
}

// ---- granger ----------------------------------------------------------------------------------

// One network: threads own strided entries (i fastest: writes coalesce), each an O(1) test from ten
// raw sums; each thread's flags go to `partial_flags`, which thread 0 ORs once all are written.
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void granger_block(Block& block, const GrangerBatch& batch, int network, uint32_t* partial_flags) {
  const int n = batch.n, k = batch.k;
  const GramSums g(batch.grams + static_cast<size_t>(network) * gram_doubles(n), n);
  double* V = batch.V + static_cast<size_t>(network) * k * k;
  double* rank_key = batch.rank_key + static_cast<size_t>(network) * k * k;
  const double m = g.transitions();
  const bool too_few = !(m > 3);  // granger(): transitions <= 3 leaves every test undefined
  block.parallel([&](int tid, int threads) {
    uint32_t flags = too_few ? flag_too_few_samples : flag_none;
    for (int e = tid; e < k * k; e += threads) {
      const int i = e % k, j = e / k;  // target i, regressor j
      if (too_few) {
        V[e] = rank_key[e] = not_a_number;
        continue;
      }
      const GrangerPairSums sums{m,          g.x_sum(i),      g.x_sum(j),      g.x_sq(i),      g.x_sq(j),
                                 g.x_cross(i, j), g.x_next(i, i), g.x_next(j, i), g.next_sum(i), g.next_sq(i)};
      const LikelihoodRatioTest test = granger_pair_test(sums, i == j);
      flags |= test.flags;
      V[e] = batch.write_p_values ? test.p_value : decide_test(test.p_value, batch.level, batch.inclusive);
      rank_key[e] = 1.0 - test.p_value;
    }
    partial_flags[tid] = flags;
  });
  block.parallel([&](int tid, int threads) {
    if (tid != 0) return;
    uint32_t flags = flag_none;
    for (int t = 0; t < threads; ++t) flags |= partial_flags[t];
    batch.flags[network] = flags;
  });
}

__global__ void __launch_bounds__(granger_threads) granger_kernel(const GrangerBatch batch) {
  __shared__ uint32_t partial_flags[granger_threads];
  DeviceBlock block;
  granger_block(block, batch, static_cast<int>(blockIdx.x), partial_flags);
}

// ---- scores: memory ---------------------------------------------------------------------------

// Per-thread partial sums, one row of score_threads doubles per quantity. The first pass fills all
// rows; the second pass (Pearson) reuses the first three, the AUC's rank sum the first.
enum Row : int {
  sum_truth, sum_estimate, nonfinite_estimates, positives, truth_changes, estimate_changes,
  true_positives, false_positives, nonfinite_decisions, first_pass_rows
};
// The given keys' non-finite count: a row of its own, so its pass needs no barrier after the first
// pass's totals are read (and one more accumulator in the first pass would spill registers).
constexpr int key_row = first_pass_rows;
constexpr int row_count = first_pass_rows + 1;
enum SecondPassRow : int { covariance = 0, variation_truth = 1, variation_estimate = 2, second_pass_rows = 3 };
constexpr int rank_sum = 0;
constexpr int block_values = 2;  // the two means, written by thread 0 for every thread to read

__host__ __device__ inline size_t reduction_doubles() {
  return static_cast<size_t>(row_count) * score_threads + block_values;
}

// k * k rounded up to a power of two: the bitonic sort's length.
__host__ __device__ inline int sort_length(int k) {
  int length = 1;
  while (length < k * k) length *= 2;
  return length;
}

bool sort_in_shared(int k, size_t shared_limit_bytes) {
  return (reduction_doubles() + static_cast<size_t>(sort_length(k))) * sizeof(double) <= shared_limit_bytes;
}

size_t score_shared_bytes(int k, size_t shared_limit_bytes) {
  const size_t sort = sort_in_shared(k, shared_limit_bytes) ? static_cast<size_t>(sort_length(k)) : 0;
  return (reduction_doubles() + sort) * sizeof(double);
}

// Where one run's block keeps things: the reduction rows in shared memory, the sort buffer in
// shared memory when it fits, else in the run's global scratch.
struct ScoreMemory {
  double* rows;    // [row_count][score_threads]
  double* means;   // [2]: truth, estimate
  double* sorted;  // [sort_length(k)]
};

__host__ __device__ inline ScoreMemory carve_scores(double* scratch, size_t scratch_doubles, int network,
                                                    double* shared) {
  ScoreMemory memory;
  memory.rows = shared;
  memory.means = shared + static_cast<size_t>(row_count) * score_threads;
  memory.sorted = scratch_doubles > 0 ? scratch + static_cast<size_t>(network) * scratch_doubles
                                      : memory.means + block_values;
  return memory;
}

// ---- scores: building blocks ------------------------------------------------------------------

__host__ __device__ inline double& row(double* rows, int r, int tid) { return rows[r * score_threads + tid]; }

// Sums rows [0, count) over the threads into each row's entry 0: a tree that halves the active
// threads each phase (thread t adds t + half), the same order on every run.
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void reduce_rows(Block& block, double* rows, int count) {
  for (int half = score_threads / 2; half > 0; half /= 2)
    block.parallel([&](int tid, int) {
      if (tid < half)
        for (int r = 0; r < count; ++r) row(rows, r, tid) += row(rows, r, tid + half);
    });
}

// The mean of `count` copies of `value`, summed one by one as the CPU's pearson() sums: then a
// constant sequence is centred to exactly what the CPU centres it to (0 or a rounding residue).
__host__ __device__ inline double constant_mean(double value, int count) {
  if (value == 0) return 0;
  double sum = 0;
  for (int e = 0; e < count; ++e) sum += value;
  return sum / static_cast<double>(count);
}

// Sorts `length` (a power of two) doubles ascending in place: one phase per bitonic step, each thread
// owning whole compare-exchange pairs (i, i + stride) of that step.
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void bitonic_sort(Block& block, double* values, int length) {
  for (int size = 2; size <= length; size *= 2)
    for (int stride = size / 2; stride > 0; stride /= 2)
      block.parallel([&](int tid, int threads) {
        for (int pair = tid; pair < length / 2; pair += threads) {
          const int i = 2 * (pair - pair % stride) + pair % stride, j = i + stride;
          const bool ascending = (i & size) == 0;  // the direction of i's bitonic run of `size`
          const double a = values[i], b = values[j];
          if ((a > b) == ascending) {
            values[i] = b;
            values[j] = a;
          }
        }
      });
}

// First index in sorted[0, count) whose value is >= value (or > value when `after`).
__host__ __device__ inline int search(const double* sorted, int count, double value, bool after) {
  int low = 0, high = count;
  while (low < high) {
    const int middle = low + (high - low) / 2;
    if (after ? sorted[middle] <= value : sorted[middle] < value)
      low = middle + 1;
    else
      high = middle;
  }
  return low;
}

// The decision on an entry: given, or |V| > threshold (NaN V: NaN), as declared() decides.
__host__ __device__ inline double decision(const ScoreBatch& batch, size_t offset, double v) {
  if (batch.decided) return batch.decided[offset];
  return isnan(v) ? not_a_number : (fabs(v) > batch.threshold ? 1.0 : 0.0);
}

// ---- scores: the block program ----------------------------------------------------------------

#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void score_block(Block& block, const ScoreBatch& batch, size_t scratch_doubles, int network,
                                     double* shared) {
  const int n = batch.n, k = batch.k, count = k * k;
  const double* A = batch.connectivity + static_cast<size_t>(network) * n * n;
  const double* V = batch.V + static_cast<size_t>(network) * count;
  const size_t offset = static_cast<size_t>(network) * count;  // of V and decided
  const bool has_decisions = batch.decided != nullptr || batch.threshold >= 0;
  const ScoreMemory memory = carve_scores(batch.scratch, scratch_doubles, network, shared);
  double* rows = memory.rows;
  auto truth = [&](int e) { return A[e % k + static_cast<size_t>(e / k) * n]; };  // A(i, j), e = i + j k
  const double* key = batch.rank_key ? batch.rank_key + offset : nullptr;
  auto ranked = [key, V](int e) { return key ? key[e] : fabs(V[e]); };  // what the AUC ranks

  // First pass: sums, counts and comparisons with entry 0 (for "constant"), and the decisions.
  block.parallel([&](int tid, int threads) {
    const double truth_0 = truth(0), estimate_0 = V[0];
    double truth_total = 0, estimate_total = 0, nonfinite = 0, connected_count = 0, truth_changed = 0,
           estimate_changed = 0, tp = 0, fp = 0, undecided = 0;
    for (int e = tid; e < count; e += threads) {
      const double a = truth(e), v = V[e];
      const bool connected = a != 0.0;
      truth_total += a;
      estimate_total += v;
      nonfinite += isfinite(v) ? 0 : 1;
      connected_count += connected ? 1 : 0;
      truth_changed += a != truth_0 ? 1 : 0;
      estimate_changed += v != estimate_0 ? 1 : 0;
      if (has_decisions) {
        const double d = decision(batch, offset + e, v);
        if (!isfinite(d))
          undecided += 1;
        else if (connected)
          tp += d;
        else
          fp += d;
      }
    }
    row(rows, sum_truth, tid) = truth_total;
    row(rows, sum_estimate, tid) = estimate_total;
    row(rows, nonfinite_estimates, tid) = nonfinite;
    row(rows, positives, tid) = connected_count;
    row(rows, truth_changes, tid) = truth_changed;
    row(rows, estimate_changes, tid) = estimate_changed;
    row(rows, true_positives, tid) = tp;
    row(rows, false_positives, tid) = fp;
    row(rows, nonfinite_decisions, tid) = undecided;
  });
  reduce_rows(block, rows, first_pass_rows);

  // Everything below is decided from the totals, which every thread reads alike: the branches
  // around block.parallel are uniform over the block.
  const bool finite = row(rows, nonfinite_estimates, 0) == 0;  // else no corr, no AUC (score_estimate)
  const bool constant_truth = row(rows, truth_changes, 0) == 0;
  const bool constant_estimate = row(rows, estimate_changes, 0) == 0;
  const double connections = row(rows, positives, 0), non_connections = count - connections;
  const double tp = row(rows, true_positives, 0), fp = row(rows, false_positives, 0);
  const bool decisions_finite = row(rows, nonfinite_decisions, 0) == 0;

  // Given keys (granger's 1 - p): one not finite leaves the AUC NaN, as score_run's p-value check.
  bool keys_finite = true;
  if (key) {
    double* key_rows = rows + static_cast<size_t>(key_row) * score_threads;
    block.parallel([&](int tid, int threads) {
      double nonfinite = 0;
      for (int e = tid; e < count; e += threads) nonfinite += isfinite(key[e]) ? 0 : 1;
      row(key_rows, 0, tid) = nonfinite;
    });
    reduce_rows(block, key_rows, 1);
    keys_finite = row(key_rows, 0, 0) == 0;
  }

  // Pearson, second pass: the centred products and squares (count < 2 is NaN, as the CPU's).
  double corr = not_a_number;
  if (finite && count >= 2) {
    block.parallel([&](int tid, int) {
      if (tid == 0) {
        memory.means[0] = constant_truth ? constant_mean(truth(0), count) : row(rows, sum_truth, 0) / count;
        memory.means[1] = constant_estimate ? constant_mean(V[0], count) : row(rows, sum_estimate, 0) / count;
      }
    });
    block.parallel([&](int tid, int threads) {
      double cov = 0, var_truth = 0, var_estimate = 0;
      for (int e = tid; e < count; e += threads) {
        const double da = truth(e) - memory.means[0], db = V[e] - memory.means[1];
        cov += da * db;
        var_truth += da * da;
        var_estimate += db * db;
      }
      row(rows, covariance, tid) = cov;
      row(rows, variation_truth, tid) = var_truth;
      row(rows, variation_estimate, tid) = var_estimate;
    });
    reduce_rows(block, rows, second_pass_rows);
    const double var_truth = row(rows, variation_truth, 0), var_estimate = row(rows, variation_estimate, 0);
    if (var_truth > 0 && var_estimate > 0) corr = row(rows, covariance, 0) / sqrt(var_truth * var_estimate);
  }

  // AUC: sort the keys (|V| or the given ones; padded with +inf, which no finite key equals), then
  // each positive's average rank 1 + (first + last) / 2 of its tie group [first, end) = 0.5 (first +
  // 1 + end), summed.
  double auc = not_a_number;
  if (finite && keys_finite && connections > 0 && non_connections > 0) {
    const int length = sort_length(k);
    double* sorted = memory.sorted;
    block.parallel([&](int tid, int threads) {
      for (int e = tid; e < length; e += threads)
        sorted[e] = e < count ? ranked(e) : infinity;
    });
    bitonic_sort(block, sorted, length);
    block.parallel([&](int tid, int threads) {
      double ranks = 0;
      for (int e = tid; e < count; e += threads) {
        if (truth(e) == 0.0) continue;
        const double value = ranked(e);
        const int first = search(sorted, count, value, false), end = search(sorted, count, value, true);
        ranks += 0.5 * static_cast<double>(first + 1 + end);
      }
      row(rows, rank_sum, tid) = ranks;
    });
    reduce_rows(block, rows, 1);
    const double p = connections;
    auc = (row(rows, rank_sum, 0) - p * (p + 1) / 2) / (p * non_connections);
  }

  block.parallel([&](int tid, int) {
    if (tid != 0) return;
    RunScore s;
    s.corr_with_truth = corr;
    s.auc = auc;
    s.tpr = s.fpr = not_a_number;
    s.flags = flag_none;
    s.has_decisions = has_decisions ? 1 : 0;
    if (finite) {
      if (isnan(corr) && constant_truth) s.flags |= flag_constant_truth;
      if (isnan(corr) && constant_estimate) s.flags |= flag_constant_estimate;
      if (connections == 0 || non_connections == 0) s.flags |= flag_one_class;  // not for a NaN key
    }
    if (has_decisions && decisions_finite) {
      if (connections > 0) s.tpr = tp / connections;
      if (non_connections > 0) s.fpr = fp / non_connections;
      if (connections == 0 || non_connections == 0) s.flags |= flag_one_class;
    }
    batch.scores[network] = s;
  });
}

__global__ void __launch_bounds__(score_threads) score_kernel(const ScoreBatch batch, size_t scratch_doubles) {
  extern __shared__ double shared[];
  DeviceBlock block;
  score_block(block, batch, scratch_doubles, static_cast<int>(blockIdx.x), shared);
}

// ---- Benjamini-Hochberg -------------------------------------------------------------------------

// One run's step-up decisions in place (decisions() with correction bh): its defined p-values are
// sorted (the undefined ones, as +inf, and the padding sort last), the largest position r (from 0)
// with p_(r) <= (r + 1) alpha / family gives the cutoff p_(r), and p <= cutoff is declared. With t
// statistics the key is -|t| (the same order as p) and the test |t|_(r) >= critical[r]; the cutoff
// is |t|_(r) and |t| >= cutoff is declared. Memory as the score block's: the sort buffer, and two
// reduction rows and one block value.
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void benjamini_hochberg_block(Block& block, const BenjaminiHochbergBatch& batch,
                                                  size_t scratch_doubles, int network, double* shared) {
  const int count = batch.k * batch.k, length = sort_length(batch.k);
  double* V = batch.V + static_cast<size_t>(network) * count;
  const bool by_t = batch.critical != nullptr;
  const double* critical = by_t ? batch.critical + static_cast<size_t>(batch.table_of[network]) * count : nullptr;
  const ScoreMemory memory = carve_scores(batch.scratch, scratch_doubles, network, shared);
  double* rows = memory.rows;
  double* sorted = memory.sorted;
  // The sort's input and each thread's count of defined tests. Owns: entries tid, tid + threads, ...
  block.parallel([&](int tid, int threads) {
    double defined = 0;
    for (int e = tid; e < length; e += threads) {
      const bool tested = e < count && (by_t ? isfinite(V[e]) : !isnan(V[e]));
      sorted[e] = tested ? (by_t ? -fabs(V[e]) : V[e]) : infinity;
      defined += tested;
    }
    row(rows, 0, tid) = defined;
  });
  reduce_rows(block, rows, 1);  // row 0, entry 0: the family
  bitonic_sort(block, sorted, length);
  // The largest passing position among each thread's positions, then thread 0's cutoff.
  block.parallel([&](int tid, int threads) {
    const double family = row(rows, 0, 0);
    double largest = -1;
    for (int r = tid; r < static_cast<int>(family); r += threads)
      if (by_t ? -sorted[r] >= critical[r] : sorted[r] <= (static_cast<double>(r) + 1.0) * batch.alpha / family)
        largest = r;
    row(rows, 1, tid) = largest;
  });
  block.parallel([&](int tid, int threads) {
    if (tid != 0) return;
    double largest = -1;
    for (int t = 0; t < threads; ++t) largest = row(rows, 1, t) > largest ? row(rows, 1, t) : largest;
    const double none = by_t ? infinity : -1.0;  // a cutoff nothing meets
    memory.means[0] = largest >= 0 ? (by_t ? -1.0 : 1.0) * sorted[static_cast<int>(largest)] : none;
  });
  block.parallel([&](int tid, int threads) {
    const double cutoff = memory.means[0];
    for (int e = tid; e < count; e += threads) {
      const double v = V[e];
      if (by_t)
        V[e] = isfinite(v) ? (fabs(v) >= cutoff ? 1.0 : 0.0) : not_a_number;
      else
        V[e] = isnan(v) ? not_a_number : (v <= cutoff ? 1.0 : 0.0);
    }
  });
}

__global__ void __launch_bounds__(score_threads)
    benjamini_hochberg_kernel(const BenjaminiHochbergBatch batch, size_t scratch_doubles) {
  extern __shared__ double shared[];
  DeviceBlock block;
  benjamini_hochberg_block(block, batch, scratch_doubles, static_cast<int>(blockIdx.x), shared);
}

void check_k(int k, const char* who) {
  if (k < 1 || k > max_k) throw std::invalid_argument(std::string(who) + ": k must be in [1, 32768]");
}

}  // namespace

// ---- correlation: entry points ------------------------------------------------------------------

void launch_correlation(const CorrelationBatch& batch, cudaStream_t stream) {
  if (batch.networks <= 0) return;
  check_k(batch.k, "launch_correlation");
  correlation_kernel<<<batch.networks, correlation_threads, 0, stream>>>(batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_correlation_on_host(const CorrelationBatch& batch) {
  check_k(batch.k, "emulate_correlation_on_host");
  for (int network = 0; network < batch.networks; ++network)
    emulate_block(correlation_threads, [&](auto& block) { correlation_block(block, batch, network); });
}

// ---- granger: entry points ----------------------------------------------------------------------

void launch_granger(const GrangerBatch& batch, cudaStream_t stream) {
  if (batch.networks <= 0) return;
  check_k(batch.k, "launch_granger");
  granger_kernel<<<batch.networks, granger_threads, 0, stream>>>(batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_granger_on_host(const GrangerBatch& batch) {
  check_k(batch.k, "emulate_granger_on_host");
  std::vector<uint32_t> partial_flags(granger_threads, 0xdeadbeefu);  // poisoned: each thread must write its own
  for (int network = 0; network < batch.networks; ++network)
    emulate_block(granger_threads, [&](auto& block) { granger_block(block, batch, network, partial_flags.data()); });
}

// ---- scores: entry points -----------------------------------------------------------------------

size_t score_scratch_doubles(int k, size_t shared_limit_bytes) {
  return sort_in_shared(k, shared_limit_bytes) ? 0 : static_cast<size_t>(sort_length(k));
}

namespace {

// What a sorting block (scores, Benjamini-Hochberg) needs: its global scratch per network (0 when
// the sort fits in shared memory) and its dynamic shared memory. Refuses a launch without scratch
// when the sort needs it.
struct SortMemory {
  size_t scratch_doubles, shared_bytes;
};

SortMemory sort_memory(int k, size_t shared_limit_bytes, const double* scratch, bool on_device, const char* who) {
  check_k(k, who);
  const SortMemory m{score_scratch_doubles(k, shared_limit_bytes), score_shared_bytes(k, shared_limit_bytes)};
  if (on_device && m.scratch_doubles > 0 && scratch == nullptr)
    throw std::invalid_argument(std::string(who) + ": the sort needs score_scratch_doubles(k) of global scratch per network");
  return m;
}

template <class Batch>
void launch_sorting_kernel(void (*kernel)(Batch, size_t), const Batch& batch, size_t shared_limit_bytes,
                           cudaStream_t stream, const char* who) {
  if (batch.networks <= 0) return;
  const SortMemory m = sort_memory(batch.k, shared_limit_bytes, batch.scratch, true, who);
  allow_dynamic_shared_memory(kernel, m.shared_bytes, who);
  kernel<<<batch.networks, score_threads, m.shared_bytes, stream>>>(batch, m.scratch_doubles);
  CS_CUDA_CHECK(cudaGetLastError());
}

// The block program on the host, network after network: shared memory allocated here, the scratch
// the caller's when given (so its size is exercised) or our own, both poisoned with NaN before each
// network, so a read before a write shows up in the results.
template <class Batch, class Program>
void emulate_sorting_block(const Batch& batch, size_t shared_limit_bytes, const char* who, Program program) {
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();
  const SortMemory m = sort_memory(batch.k, shared_limit_bytes, nullptr, false, who);
  std::vector<double> shared(m.shared_bytes / sizeof(double));
  std::vector<double> own(batch.scratch ? 0 : static_cast<size_t>(batch.networks) * m.scratch_doubles + 1);
  Batch host_batch = batch;
  if (!batch.scratch) host_batch.scratch = own.data();
  for (int network = 0; network < batch.networks; ++network) {
    std::fill(shared.begin(), shared.end(), poison);
    double* mine = host_batch.scratch + static_cast<size_t>(network) * m.scratch_doubles;
    std::fill(mine, mine + m.scratch_doubles, poison);
    emulate_block(score_threads,
                  [&](auto& block) { program(block, host_batch, m.scratch_doubles, network, shared.data()); });
  }
}

}  // namespace

void launch_scores(const ScoreBatch& batch, size_t shared_limit_bytes, cudaStream_t stream) {
  launch_sorting_kernel(score_kernel, batch, shared_limit_bytes, stream, "launch_scores");
}

void emulate_scores_on_host(const ScoreBatch& batch, size_t shared_limit_bytes) {
  emulate_sorting_block(batch, shared_limit_bytes, "emulate_scores_on_host",
                        [](auto& block, const ScoreBatch& b, size_t scratch_doubles, int network, double* shared) {
                          score_block(block, b, scratch_doubles, network, shared);
                        });
}

// ---- Benjamini-Hochberg: entry points -----------------------------------------------------------

void launch_benjamini_hochberg(const BenjaminiHochbergBatch& batch, size_t shared_limit_bytes, cudaStream_t stream) {
  launch_sorting_kernel(benjamini_hochberg_kernel, batch, shared_limit_bytes, stream, "launch_benjamini_hochberg");
}

void emulate_benjamini_hochberg_on_host(const BenjaminiHochbergBatch& batch, size_t shared_limit_bytes) {
  emulate_sorting_block(batch, shared_limit_bytes, "emulate_benjamini_hochberg_on_host",
                        [](auto& block, const BenjaminiHochbergBatch& b, size_t scratch_doubles, int network,
                           double* shared) { benjamini_hochberg_block(block, b, scratch_doubles, network, shared); });
}

}  // namespace causalsweep::cuda
