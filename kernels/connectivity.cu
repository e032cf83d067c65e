// The random connectivity of a batch of networks, generated on the GPU: generate_connectivity of
// host/connectivity.cpp, block for block.
//
// One CUDA block makes one network:
//   1. A0(i, j) = Bernoulli(p_connect) from the connectivity stream of row i (block j / 4, word
//      j % 4), then -1 where Bernoulli(p_inhibitory) of the inhibitory stream fires: the very words
//      and the very comparison (random_stream.hpp's bernoulli) the CPU uses, so the 0/+-1 pattern
//      is identical.
//   2. s = s_max(A0) by Lanczos on B = A0^T A0 (s^2 = lambda_max(B)), see "Why Lanczos" below.
//   3. A = A0 / (1.01 s), the CPU's formula, elementwise.
//
// Why Lanczos (and not power iteration). With inhibitory signs, A0's mean no longer dominates: its
// top singular values sit at the edge of the random bulk, a few per cent apart for n ~ 100, and
// sometimes far closer. Power iteration converges like (s2 / s1)^(2 k), which needs thousands of
// steps for a 0.1 % gap; Lanczos converges like a Chebyshev polynomial in the square root of the
// gap and, with full reorthogonalisation, ends after at most n steps (the Krylov space is then all
// of R^n and its Ritz values are B's eigenvalues). Full reorthogonalisation (classical Gram-Schmidt
// twice) keeps the basis orthogonal to rounding, so no spurious copies of converged values appear.
// Measured (n = 100, p_connect = 0.1): 14 steps; with p_inhibitory = 0.3, 27 to 41 (mean 31).
//
// Stopping rule. After k steps, T_k (tridiagonal, k x k) = V^T B V for the orthonormal Lanczos basis
// V, and for T_k's largest eigenvalue theta with unit eigenvector y the Ritz vector V y has the
// residual || B V y - theta V y || = beta_k |y_k| =: rho (the Lanczos relation). For symmetric B this
// puts an eigenvalue of B within rho of theta, and theta <= lambda_max(B) always (Rayleigh-Ritz). We
// stop when rho <= 2e-14 theta: then |s - sqrt(theta)| <= rho / (2 sqrt(theta)), i.e. s is found to
// 1e-14 relative, ten times inside the 1e-13 the CPU comparison allows (the rest is rounding:
// theta is computed to a few ulps). The test is linear in rho, so it does not need the gap to the
// second eigenvalue, which Lanczos only estimates; a repeated or clustered top value passes it as
// soon as the Ritz vector lies in the cluster. theta is T_k's largest eigenvalue by multisection
// (Sturm counts at one point per thread, ~7 rounds to full precision); y_k by two steps of inverse
// iteration with the shift hi >= theta, where T_k - hi I is negative semidefinite and its LDL^T is
// stable without pivoting. Breakdown (beta_k = 0: an invariant subspace) gives rho = 0, exact values.
//
// Which eigenvalue. The residual test says theta is close to AN eigenvalue; it is the largest when
// the start vector is not orthogonal to the top eigenvector. The start is strictly positive
// (entries in [0.5, 1.5), a fixed hash of the index): for p_inhibitory = 0, A0 >= 0 so B >= 0 has a
// nonnegative top eigenvector (Perron-Frobenius) and the start's component along it is at least
// 1 / (3 sqrt(n)), a guarantee; with signs the start is generic for the random pattern. As a
// certified check, sigma^2 must reach max(largest row count, largest column count) of nonzeros (the
// Rayleigh quotients of unit vectors e_j); a theta below that (the start missed the top) is
// reported as unconverged, never as a value. So is a run that hits the step cap (max_iterations).
//
// Memory and threads. 256 threads; thread mapping per phase: rows (A v), columns (A^T t), basis
// vectors (the reorthogonalisation's dot products), and one Sturm point per thread. Shared memory
// holds, in this order of priority, the work vectors (6 n), A0 (n x n with an odd leading dimension,
// so that row and column walks are free of bank conflicts) and the Lanczos basis V (n x n, the same
// stride); what does not fit goes to global memory: A0 is then built in place in the output, V in
// the network's scratch. In 227 KiB: A0 up to n = 166, V too up to n = 118; every n runs.
//
// The block program is written once, as phases separated by barriers (block_program.cuh); scalars
// that every thread needs (norms, the multisection interval, the step count) are computed by every
// thread from shared memory between phases, identically, so control flow stays uniform.
#include "philox_device.cuh"  // first: it sets curand_kernel.h's QUALIFIERS

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/random_stream.hpp"
#include "connectivity_kernels.hpp"
#include "cuda_check.cuh"
#include "shared_memory.cuh"

namespace causalsweep::cuda {
namespace {

constexpr int block_threads = 256;        // threads per block (the multisection uses one point each)
constexpr int reduction_lanes = 32;       // the first level of a block reduction
constexpr double residual_tolerance = 2e-14;  // stop when rho <= this * theta (s to 1e-14 relative)
constexpr int max_section_rounds = 12;    // multisection rounds (7 suffice: 257 sections a round)

// ---- memory of one network ------------------------------------------------------------------

struct ConnectivityLayout {
  int n = 0;
  int lda = 0;  // leading dimension of A0 where the Lanczos steps read it
  int ldv = 0;  // leading dimension of the basis V
  bool work_in_shared = false;
  bool a_in_shared = false;
  bool v_in_shared = false;
  size_t shared_doubles = 0;
  size_t scratch_doubles = 0;
};

// Work vectors: t = A v, w = A^T t, the two passes' coefficients h1 and h2, T's diagonal and off-diagonal.
__host__ __device__ inline size_t work_doubles(int n) { return 6 * static_cast<size_t>(n); }
// Always in shared memory: the reduction's partials and lanes, and a few scalars.
constexpr size_t scalar_doubles = 2;
constexpr size_t reduction_doubles = block_threads + reduction_lanes + scalar_doubles;

int odd_stride(int n) { return n | 1; }  // 8-byte words at an odd stride hit distinct bank pairs

ConnectivityLayout plan_layout(int n, size_t shared_limit_bytes) {
  if (n < 0) throw std::invalid_argument("connectivity: n must be >= 0");
  ConnectivityLayout layout;
  layout.n = n;
  size_t left = shared_limit_bytes / sizeof(double);
  if (left < reduction_doubles)
    throw std::invalid_argument("connectivity: the shared-memory limit " + std::to_string(shared_limit_bytes) +
                                " B is below the " + std::to_string(reduction_doubles * sizeof(double)) +
                                " B the kernel needs");
  left -= reduction_doubles;
  const size_t matrix_shared = static_cast<size_t>(odd_stride(n)) * n;
  const size_t matrix = static_cast<size_t>(n) * n;
  auto place = [&left](size_t count) {  // the next region goes to shared memory when it fits
    if (count > left) return false;
    left -= count;
    return true;
  };
  layout.work_in_shared = place(work_doubles(n));
  layout.a_in_shared = layout.work_in_shared && place(matrix_shared);
  layout.v_in_shared = layout.a_in_shared && place(matrix_shared);
  layout.lda = layout.a_in_shared ? odd_stride(n) : n;
  layout.ldv = layout.v_in_shared ? odd_stride(n) : n;
  layout.shared_doubles = reduction_doubles + (layout.work_in_shared ? work_doubles(n) : 0) +
                          (layout.a_in_shared ? matrix_shared : 0) + (layout.v_in_shared ? matrix_shared : 0);
  layout.scratch_doubles = (layout.work_in_shared ? 0 : work_doubles(n)) + (layout.v_in_shared ? 0 : matrix);
  return layout;
}

struct NetworkMemory {
  double* partial;  // [threads] one value per thread, reduced in two levels
  double* lanes;    // [32]
  double* scalars;  // [2] written by one thread for all: the residual rho
  double* t;        // [n] A0 v
  double* w;        // [n] B v, then reorthogonalised
  double* h1;       // [n] first Gram-Schmidt pass's coefficients (then LDL^T pivots)
  double* h2;       // [n] second pass's coefficients (then the inverse-iteration vector)
  double* diagonal;     // [n] T's diagonal a_0, a_1, ...
  double* offdiagonal;  // [n] T's off-diagonal b_0, b_1, ... (b_k is the norm of step k's new vector)
  double* a;        // A0(i, j) at a[i + j lda]: shared memory, or the output itself
  double* v;        // the basis, vector c at v[c ldv]
  double* out;      // this network's n x n output
};

// Splits shared memory and the network's global scratch as the layout says.
__host__ __device__ inline NetworkMemory carve(const ConnectivityLayout& layout, const ConnectivityBatch& batch,
                                               int network, double* shared, double* scratch) {
  const size_t n = static_cast<size_t>(layout.n);
  MemoryCarver memory{shared, scratch};
  NetworkMemory m{};
  m.partial = memory.take(true, block_threads);
  m.lanes = memory.take(true, reduction_lanes);
  m.scalars = memory.take(true, scalar_doubles);
  double* work = memory.take(layout.work_in_shared, work_doubles(layout.n));
  m.t = work;
  m.w = work + n;
  m.h1 = work + 2 * n;
  m.h2 = work + 3 * n;
  m.diagonal = work + 4 * n;
  m.offdiagonal = work + 5 * n;
  m.out = batch.connectivity + static_cast<size_t>(network) * n * n;
  m.a = layout.a_in_shared ? memory.take(true, static_cast<size_t>(layout.lda) * n) : m.out;
  m.v = memory.take(layout.v_in_shared, static_cast<size_t>(layout.ldv) * n);
  return m;
}

// ---- block reductions -------------------------------------------------------------------------

enum class Reduce { sum, max, min };

__host__ __device__ inline double combine(Reduce op, double x, double y) {
  return op == Reduce::sum ? x + y : op == Reduce::max ? fmax(x, y) : fmin(x, y);
}

// Phase: lane l < 32 combines partial[l], partial[l + 32], ... (in that order: deterministic).
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void reduce_to_lanes(Block& block, const NetworkMemory& m, Reduce op) {
  block.parallel([&](int tid, int threads) {
    if (tid >= reduction_lanes) return;
    double acc = m.partial[tid];
    for (int r = tid + reduction_lanes; r < threads; r += reduction_lanes) acc = combine(op, acc, m.partial[r]);
    m.lanes[tid] = acc;
  });
}

// Between phases, by every thread: the lanes combined in order (the same value in every thread).
__host__ __device__ inline double lanes_total(const NetworkMemory& m, Reduce op) {
  double acc = m.lanes[0];
  for (int l = 1; l < reduction_lanes; ++l) acc = combine(op, acc, m.lanes[l]);
  return acc;
}

// ---- step 1: the 0/+-1 matrix ------------------------------------------------------------------

// A0's entries in random block b of row i (columns 4b .. 4b+3), as generate_connectivity draws them.
// Owns: those entries. Consecutive threads take consecutive rows of one block column.
__host__ __device__ inline void generate_entries(const ConnectivityLayout& layout, const NetworkMemory& m,
                                                 uint64_t seed, double p_connect, double p_inhibitory, int tid,
                                                 int threads) {
  const int n = layout.n;
  const int blocks_per_row = (n + 3) / 4;
  for (int e = tid; e < n * blocks_per_row; e += threads) {
    const int i = e % n, b = e / n;
    const RandomBlock wiring = curand_philox_block(seed, subsequence(Purpose::connectivity, static_cast<uint32_t>(i)), b);
    RandomBlock signs{};
    if (p_inhibitory > 0)
      signs = curand_philox_block(seed, subsequence(Purpose::inhibitory, static_cast<uint32_t>(i)), b);
    for (int c = 0; c < 4 && 4 * b + c < n; ++c) {
      double entry = bernoulli(wiring.word[c], p_connect) ? 1.0 : 0.0;
      if (entry != 0 && p_inhibitory > 0 && bernoulli(signs.word[c], p_inhibitory)) entry = -1.0;
      m.a[i + static_cast<size_t>(4 * b + c) * layout.lda] = entry;
    }
  }
}

// partial[tid] = the most nonzeros in any of the thread's rows and columns: max over all threads is
// a certified lower bound on s^2 (|A0 e_j|^2 and |A0^T e_i|^2), and 0 exactly when A0 is empty.
__host__ __device__ inline void count_nonzeros(const ConnectivityLayout& layout, const NetworkMemory& m, int tid,
                                               int threads) {
  const int n = layout.n;
  double most = 0;
  for (int r = tid; r < n; r += threads) {
    double in_row = 0, in_column = 0;
    for (int c = 0; c < n; ++c) {
      in_row += fabs(m.a[r + static_cast<size_t>(c) * layout.lda]);
      in_column += fabs(m.a[c + static_cast<size_t>(r) * layout.lda]);
    }
    most = fmax(most, fmax(in_row, in_column));
  }
  m.partial[tid] = most;
}

// ---- step 2: Lanczos on B = A0^T A0 --------------------------------------------------------------

// The start vector's entry i: strictly positive, in [0.5, 1.5) (splitmix64 of i; see the header).
__host__ __device__ inline double start_entry(int i) {
  uint64_t z = static_cast<uint64_t>(i) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return 0.5 + static_cast<double>(z >> 11) * 0x1p-53;
}

// out_r = sum_c M(r, c) x_c for rows r of the thread, M(r, c) = m[r * row_stride + c * column_stride]:
// A0 v is (1, lda), A0^T t is (lda, 1).
__host__ __device__ inline void multiply(const double* matrix, size_t row_stride, size_t column_stride, int n,
                                         const double* x, double* out, int tid, int threads) {
  for (int r = tid; r < n; r += threads) {
    const double* row = matrix + r * row_stride;
    double sum = 0.0;
    for (int c = 0; c < n; ++c) sum += row[c * column_stride] * x[c];
    out[r] = sum;
  }
}

// h_c = v_c . w for the basis vectors c <= k (one thread per vector).
__host__ __device__ inline void project(const ConnectivityLayout& layout, const NetworkMemory& m, int k, double* h,
                                        int tid, int threads) {
  for (int c = tid; c <= k; c += threads) {
    const double* basis = m.v + static_cast<size_t>(c) * layout.ldv;
    double sum = 0.0;
    for (int i = 0; i < layout.n; ++i) sum += basis[i] * m.w[i];
    h[c] = sum;
  }
}

// w_i -= sum_c v_c(i) h_c (one thread per entry); partial[tid] = the thread's sum of w_i^2 afterwards.
__host__ __device__ inline void subtract_projection(const ConnectivityLayout& layout, const NetworkMemory& m, int k,
                                                    const double* h, int tid, int threads) {
  double squares = 0.0;
  for (int i = tid; i < layout.n; i += threads) {
    double along = 0.0;
    for (int c = 0; c <= k; ++c) along += m.v[i + static_cast<size_t>(c) * layout.ldv] * h[c];
    const double rest = m.w[i] - along;
    m.w[i] = rest;
    squares += rest * rest;
  }
  m.partial[tid] = squares;
}

// Eigenvalues of the symmetric tridiagonal T (diagonal a[0..size), off-diagonal b[0..size-1)) below x:
// the negative pivots of T - x I = L D L^T (Sturm), a pivot too small to divide by taken as -pivmin.
__host__ __device__ inline int eigenvalues_below(const double* a, const double* b, int size, double x, double pivmin) {
  int count = 0;
  double pivot = 1.0;
  for (int j = 0; j < size; ++j) {
    pivot = (a[j] - x) - (j > 0 ? b[j - 1] * b[j - 1] / pivot : 0.0);
    if (fabs(pivot) < pivmin) pivot = -pivmin;
    count += pivot < 0 ? 1 : 0;
  }
  return count;
}

// Point t of threads + 1 equal sections of [lo, hi] (computed the same way in the phase and after).
__host__ __device__ inline double section_point(double lo, double hi, int t, int threads) {
  return lo + (hi - lo) * (static_cast<double>(t + 1) / static_cast<double>(threads + 1));
}

// |y_last| for T's unit eigenvector y of its largest eigenvalue, by two steps of inverse iteration
// with shift >= lambda_max(T) from e_last: T - shift I is negative semidefinite, so its LDL^T is
// stable without pivoting (pivots <= 0; one closer to 0 than eps ||T|| is set to -eps ||T||, the
// usual guard of a nearly singular inverse iteration). pivots and x are [size] of workspace.
__host__ __device__ inline double top_eigenvector_last(const double* a, const double* b, int size, double shift,
                                                       double norm_bound, double* pivots, double* x) {
  const double guard = fmax(DBL_EPSILON * norm_bound, DBL_MIN);  // > 0 even for T = 0
  for (int j = 0; j < size; ++j) {
    const double pivot = (a[j] - shift) - (j > 0 ? b[j - 1] * b[j - 1] / pivots[j - 1] : 0.0);
    pivots[j] = fmin(pivot, -guard);
    x[j] = j + 1 == size ? 1.0 : 0.0;
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (int j = 1; j < size; ++j) x[j] -= b[j - 1] / pivots[j - 1] * x[j - 1];  // L y = x
    x[size - 1] /= pivots[size - 1];                                                // D L^T x = y
    for (int j = size - 2; j >= 0; --j) x[j] = x[j] / pivots[j] - b[j] / pivots[j] * x[j + 1];
    double largest = 0.0;  // rescale, so that the next pass and the norm cannot overflow
    for (int j = 0; j < size; ++j) largest = fmax(largest, fabs(x[j]));
    for (int j = 0; j < size; ++j) x[j] /= largest;
  }
  double squares = 0.0;
  for (int j = 0; j < size; ++j) squares += x[j] * x[j];
  return fabs(x[size - 1]) / sqrt(squares);
}

// ---- the whole network -----------------------------------------------------------------------------

#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void connectivity_block(Block& block, const ConnectivityLayout& layout,
                                            const ConnectivityBatch& batch, int network, double* shared,
                                            double* scratch) {
  const NetworkMemory m = carve(layout, batch, network, shared, scratch);
  const int n = layout.n;
  const size_t lda = static_cast<size_t>(layout.lda), ldv = static_cast<size_t>(layout.ldv);

  // 1. A0, and the certified lower bound on s^2 (0: no connection).
  block.parallel([&](int tid, int threads) {
    generate_entries(layout, m, batch.seeds[network], batch.p_connect[network], batch.p_inhibitory, tid, threads);
  });
  block.parallel([&](int tid, int threads) { count_nonzeros(layout, m, tid, threads); });
  reduce_to_lanes(block, m, Reduce::max);
  const double lower_bound = lanes_total(m, Reduce::max);

  int status = connectivity_empty;
  double sigma = 0.0;
  int steps = 0;
  if (lower_bound > 0) {
    // 2. Lanczos from the normalised positive start vector v_0.
    block.parallel([&](int tid, int threads) {
      double squares = 0.0;
      for (int i = tid; i < n; i += threads) squares += start_entry(i) * start_entry(i);
      m.partial[tid] = squares;
    });
    reduce_to_lanes(block, m, Reduce::sum);
    const double start_norm = sqrt(lanes_total(m, Reduce::sum));
    block.parallel([&](int tid, int threads) {
      for (int i = tid; i < n; i += threads) m.v[i] = start_entry(i) / start_norm;
    });

    const int cap = batch.max_iterations > 0 && batch.max_iterations < n ? batch.max_iterations : n;
    double theta = 0.0;
    bool converged = false;
    double norm_bound = 0.0;  // Gershgorin bound of T: >= lambda_max(T), grows with T
    double largest_b2 = 0.0;  // max b_j^2, for the Sturm pivot guard
    for (int k = 0;; ++k) {
      // w = B v_k = A0^T (A0 v_k).
      const double* v_k = m.v + k * ldv;
      block.parallel([&](int tid, int threads) { multiply(m.a, 1, lda, n, v_k, m.t, tid, threads); });
      block.parallel([&](int tid, int threads) { multiply(m.a, lda, 1, n, m.t, m.w, tid, threads); });
      // w -= V (V^T w), twice; a_k = v_k . B v_k is what the two passes took along v_k.
      block.parallel([&](int tid, int threads) { project(layout, m, k, m.h1, tid, threads); });
      block.parallel([&](int tid, int threads) { subtract_projection(layout, m, k, m.h1, tid, threads); });
      block.parallel([&](int tid, int threads) { project(layout, m, k, m.h2, tid, threads); });
      block.parallel([&](int tid, int threads) {
        subtract_projection(layout, m, k, m.h2, tid, threads);
        if (tid == 0) m.diagonal[k] = m.h1[k] + m.h2[k];
      });
      reduce_to_lanes(block, m, Reduce::sum);
      const double beta = sqrt(lanes_total(m, Reduce::sum));  // b_k = |w|: v_{k+1} = w / b_k
      const int size = k + 1;                                 // T is size x size: a_0..a_k, b_0..b_{k-1}

      // theta = lambda_max(T) by multisection of [0, Gershgorin bound]: each thread counts T's
      // eigenvalues below its point; the first point above all of them is the new hi.
      const double a_k = m.diagonal[k], b_prev = k > 0 ? m.offdiagonal[k - 1] : 0.0;
      const double b_prev2 = k > 1 ? m.offdiagonal[k - 2] : 0.0;
      // Row k-1's Gershgorin radius grew by |b_{k-1}|: its disc and row k's bound lambda_max(T).
      norm_bound = fmax(norm_bound, fmax(m.diagonal[k > 0 ? k - 1 : 0] + b_prev + b_prev2, a_k + b_prev));
      largest_b2 = fmax(largest_b2, b_prev * b_prev);
      const double pivmin = DBL_MIN * fmax(1.0, largest_b2);
      double lo = 0.0, hi = norm_bound;
      for (int round = 0; round < max_section_rounds && hi - lo > 4 * DBL_EPSILON * hi; ++round) {
        block.parallel([&](int tid, int threads) {
          const double x = section_point(lo, hi, tid, threads);
          const bool above_all = eigenvalues_below(m.diagonal, m.offdiagonal, size, x, pivmin) == size;
          m.partial[tid] = above_all ? tid : threads;
        });
        reduce_to_lanes(block, m, Reduce::min);
        const int first_above = static_cast<int>(lanes_total(m, Reduce::min));
        const double new_hi = first_above < block_threads ? section_point(lo, hi, first_above, block_threads) : hi;
        if (first_above > 0) lo = section_point(lo, hi, first_above - 1, block_threads);
        hi = new_hi;
      }
      theta = 0.5 * (lo + hi);

      // rho = b_k |y_k|, the residual of the Ritz pair (one thread; h1 and h2 are free now).
      block.parallel([&](int tid, int) {
        if (tid == 0)
          m.scalars[0] = beta * top_eigenvector_last(m.diagonal, m.offdiagonal, size, hi, norm_bound, m.h1, m.h2);
      });
      const double rho = m.scalars[0];
      steps = size;
      converged = rho <= residual_tolerance * theta;
      if (converged || size == cap) break;

      // v_{k+1} = w / b_k (b_k > 0 here: rho > 0).
      block.parallel([&](int tid, int threads) {
        double* next = m.v + (k + 1) * ldv;
        for (int i = tid; i < n; i += threads) next[i] = m.w[i] / beta;
        if (tid == 0) m.offdiagonal[k] = beta;
      });
    }
    // theta <= lambda_max(B) always; below the certified bound it is not lambda_max (see the header).
    if (converged && theta * (1 + 1e-12) >= lower_bound) {
      status = connectivity_ok;
      sigma = sqrt(theta);
    } else {
      status = connectivity_unconverged;
      sigma = nan("");
    }
  }

  // 3. The output: A0 / (1.01 s) as generate_connectivity computes it, or A0 unscaled (unconverged),
  // or zeros (empty). In global memory A0 already is the output: each entry is scaled in place.
  const double scale = 1.01 * sigma;
  block.parallel([&](int tid, int threads) {
    for (size_t e = tid; e < static_cast<size_t>(n) * n; e += threads) {
      const size_t i = e % n, j = e / n;
      const double entry = m.a[i + j * lda];
      m.out[e] = status == connectivity_ok ? entry / scale : entry;
    }
    if (tid == 0) {
      batch.singular_value[network] = sigma;
      batch.status[network] = status;
      if (batch.iterations) batch.iterations[network] = steps;
    }
  });
}

// One block per network. At most 128 registers (two blocks per SM where shared memory allows): no
// spills; the bare __launch_bounds__(256) made ptxas pick 80 registers and spill in the mat-vec loops.
__global__ void __launch_bounds__(block_threads, 2) connectivity_kernel(const ConnectivityLayout layout,
                                                                     const ConnectivityBatch batch) {
  extern __shared__ double shared[];
  DeviceBlock block;
  const int network = static_cast<int>(blockIdx.x);
  connectivity_block(block, layout, batch, network, shared, batch.scratch + network * layout.scratch_doubles);
}

}  // namespace

size_t connectivity_scratch_doubles(int n, size_t shared_limit_bytes) {
  return plan_layout(n, shared_limit_bytes).scratch_doubles;
}

size_t connectivity_shared_bytes(int n, size_t shared_limit_bytes) {
  return plan_layout(n, shared_limit_bytes).shared_doubles * sizeof(double);
}

void launch_connectivity(const ConnectivityBatch& batch, size_t shared_limit_bytes, cudaStream_t stream) {
  if (batch.networks <= 0) return;
  const ConnectivityLayout layout = plan_layout(batch.n, shared_limit_bytes);
  if (layout.scratch_doubles > 0 && batch.scratch == nullptr)
    throw std::invalid_argument("launch_connectivity: n = " + std::to_string(batch.n) +
                                " needs connectivity_scratch_doubles() of scratch per network");
  const size_t shared_bytes = layout.shared_doubles * sizeof(double);
  allow_dynamic_shared_memory(connectivity_kernel, shared_bytes, "launch_connectivity");
  connectivity_kernel<<<batch.networks, block_threads, shared_bytes, stream>>>(layout, batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_connectivity_on_host(const ConnectivityBatch& batch, size_t shared_limit_bytes) {
  const ConnectivityLayout layout = plan_layout(batch.n, shared_limit_bytes);
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> shared(layout.shared_doubles + 1);
  std::vector<double> scratch(layout.scratch_doubles + 1);
  for (int network = 0; network < batch.networks; ++network) {
    // Uninitialised memory is NaN here, so a read before a write shows up in the results.
    std::fill(shared.begin(), shared.end(), poison);
    std::fill(scratch.begin(), scratch.end(), poison);
    emulate_block(block_threads,
                  [&](auto& block) { connectivity_block(block, layout, batch, network, shared.data(), scratch.data()); });
  }
}

}  // namespace causalsweep::cuda
