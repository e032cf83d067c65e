// Batched ordinary least squares and two-stage least squares from Gram matrices: host/estimators.cpp's
// ordinary_least_squares and two_stage_least_squares (PValues::skip) followed by t_test_decisions
// (corrections none and bonferroni), and its granger_conditional followed by decisions(), for a batch
// of networks on one stream.
//
// The algebra, per network (matrices column-major, leading dimension = their number of rows):
//   OLS, with the moments H = X'X, Q = X'Y and yy = diag(Y'Y) (centred with an intercept, as
//   regression_moments), k regressors and k targets:
//     L = chol(H)                                  potrfBatched (lower)
//     [Y | L^-1] = L^-1 [Q | I]                    trsmBatched (one call for both right-hand sides)
//     B = L^-T Y                                   trsmBatched (transposed)
//     HB = H B                                     gemmStridedBatched, for residual_sums' rss = yy - 2 b'q + b'H b
//     diag(H^-1)_j = |column j of L^-1|^2, se(i, j) = sqrt(rss_i / df diag(H^-1)_j), V = B', t = V / se
//   Conditional Granger: OLS with the targets Y = x[t+1] and an intercept (granger_moments), but
//     rss_i = yy_i - b_i'q_i as granger_conditional forms it (no HB), and per (target i, regressor j)
//     the likelihood-ratio test of dropping x_j: RSS rises by b_ij^2 / diag(H^-1)_j (granger_test.hpp)
//   2SLS, with Zc = [1, z] and Xc = [1, x] (p = k + 1 columns each; two_stage_from_moments):
//     L1 = chol(zz)                                potrfBatched
//     [Mx | My | L1^-1] = L1^-1 [zx | zy | I]      trsmBatched
//     [normal | rhs] = Mx' [Mx | My]               gemmStridedBatched (= Gamma' zx, Gamma' zy, Gamma = zz^-1 zx)
//     first-stage rss_j = xx(j, j) - |column j of Mx|^2 (= xx(j, j) - Gamma_j' zx_j): the F of regressor j
//     L2 = chol(normal), [beta | L2^-1] as for OLS, XXB = xx beta (gemm): rss with the observed x
//
// Singular systems. The CPU's factor() calls a system singular when it is not finite, when Eigen's
// LLT fails, or when Eigen's estimate of rcond = 1 / (|S|_1 |S^-1|_1) is <= 1e-13. Here: not finite
// (checked when the system is formed), potrf's info (read by a kernel on the device: no host round
// trip), or the bound
//     1 / (|S|_1 max_j (S^-1)_jj)  <= 1e-13     (also when S^-1 has a non-finite diagonal)
// Both that bound and Eigen's estimate are upper bounds of the true rcond r (|S^-1|_1 >= max_j
// (S^-1)_jj, and Eigen's estimator lower-bounds |S^-1|_1); the bound is at most k r (for SPD S every
// |(S^-1)_ij| <= max_j (S^-1)_jj) and Eigen's estimate is in practice within a small factor of r. So
// both rules accept every system with r > 1e-13 and both refuse those with r <= 1e-13 / k: they can
// differ only for r in (1e-13 / k, 1e-13], systems whose solutions have lost 13 digits (noise on
// either path). Where a pivot is within rounding of 0 (potrf and Eigen's LLT may then disagree on
// failing), r ~ 1e-16 and the rcond test refuses the system on both paths anyway.
// A network whose system fails stays in the batch: its failed factor is replaced by the identity (so
// no inf / NaN spreads through its batched solves) and its outputs are NaN with the CPU's flags.
//
// Kernels: every step between library calls is a block program (kernels/block_program.cuh), one block
// per network, written as phases that also run on the host. Thread mapping: element-wise phases give
// thread tid the elements tid, tid + threads, ... (coalesced); column phases give it whole columns
// (j = tid, tid + threads, ...); block-wide maxima / minima / status bits go through shared memory
// (one partial per thread) and thread 0 combines them. Shared memory is O(threads), whatever k: the
// matrices live in the workspace (global memory), where cuBLAS / cuSOLVER need them anyway.
#include <cublas_v2.h>
#include <cusolverDn.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/flags.hpp"
#include "causalsweep/granger_test.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "least_squares_kernels.hpp"

namespace causalsweep::cuda {
namespace {

constexpr int block_threads = 256;       // threads per block of every kernel here
constexpr int partial_arrays = 4;        // block reductions: up to 4 partials per thread
constexpr int shared_doubles = partial_arrays * block_threads + 1;  // + one verdict word (~8 KB)
constexpr double min_rcond = 1e-13;      // host/estimators.cpp's threshold
constexpr size_t align_doubles = 32;     // every matrix starts on a 256-byte boundary
// Batched library calls go in slices of at most this many systems (defensive: a batched routine may
// spread its batch over a grid's y or z dimension, limited to 65535).
constexpr int library_batch_limit = 65535;

CS_HD inline double not_a_number() { return nan(""); }
CS_HD inline double infinity() { return HUGE_VAL; }
CS_HD inline bool is_finite(double v) { return isfinite(v); }
CS_HD inline double larger(double a, double b) { return b > a ? b : a; }
CS_HD inline double non_negative(double v) { return v < 0.0 ? 0.0 : v; }  // std::max(v, 0.0): NaN stays NaN

// Internal verdicts per network, turned into the CPU's flags at the end.
enum Status : uint32_t {
  status_too_few = 1u,             // m <= parameters
  status_first_singular = 2u,      // ols H / iv zz: not finite, not positive definite or rcond bound <= 1e-13
  status_second_singular = 4u,     // iv's stage-2 normal matrix: the same tests
  status_constant_regressor = 8u,  // ols: has_constant_regressor (reported only with singular)
};

// Two phases: the 1-norm of an order x order matrix S (largest column sum of |S|) into `norm`; into
// `status`, status_first_singular if an entry is not finite, column_status(b) of every column b, and
// status_too_few if `too_few`. Owns: columns tid, tid + threads, ... and their partials
// (column_norms, bits: [threads] each), then thread 0 the totals.
#pragma nv_exec_check_disable
template <class Block, class ColumnStatus>
CS_HD void one_norm_and_status(Block& block, const double* S, int order, double* column_norms, double* bits,
                               ColumnStatus column_status, bool too_few, double& norm, uint32_t& status) {
  block.parallel([&](int tid, int threads) {
    double largest = 0.0;
    uint32_t partial = 0;
    for (int b = tid; b < order; b += threads) {
      double sum = 0.0;
      for (int a = 0; a < order; ++a) {
        const double v = S[a + static_cast<size_t>(b) * order];
        sum += fabs(v);
        if (!is_finite(v)) partial |= status_first_singular;
      }
      largest = larger(largest, sum);
      partial |= column_status(b);
    }
    column_norms[tid] = largest;
    bits[tid] = partial;
  });
  block.parallel([&](int tid, int threads) {
    if (tid != 0) return;
    double total_norm = 0.0;
    uint32_t total_status = too_few ? status_too_few : 0u;
    for (int t = 0; t < threads; ++t) {
      total_norm = larger(total_norm, column_norms[t]);
      total_status |= static_cast<uint32_t>(bits[t]);
    }
    norm = total_norm;
    status = total_status;
  });
}

// ---- one network's Gram ---------------------------------------------------------------------

// Reads gram.hpp's views from the flat buffer: w = [1, z, x], u = [x_next, logit].
struct GramView {
  const double* g;
  int n;
  size_t p;  // 2n + 1

  CS_HD double ww(int a, int b) const { return g[a + b * p]; }
  CS_HD double wu(int a, int b) const { return g[p * p + a + b * p]; }
  CS_HD double uu(int b) const { return g[p * p + p * (p - 1) + b]; }
  CS_HD double transitions() const { return ww(0, 0); }
  CS_HD int x(int j) const { return 1 + n + j; }  // x_j's index in w
  CS_HD int logit(int i) const { return n + i; }  // target i's index in u
  CS_HD int next(int i) const { return i; }       // x_i[t+1]'s index in u
  // Column c of Xc = [1, x] as an index into w (Zc = [1, z] is simply w's leading k + 1 entries).
  CS_HD int x_with_constant(int c) const { return c == 0 ? 0 : n + c; }
};

CS_HD inline GramView gram_of(const LeastSquaresBatch& batch, int network) {
  return {batch.grams + static_cast<size_t>(network) * gram_doubles(batch.n), batch.n,
          2 * static_cast<size_t>(batch.n) + 1};
}

// Target i of the single-stage regressions, as an index into u: ols regresses logit(x_i[t+1]),
// granger_conditional x_i[t+1] itself.
CS_HD inline int target_of(const LeastSquaresBatch& batch, const GramView& g, int i) {
  return batch.method == LeastSquaresMethod::granger_conditional ? g.next(i) : g.logit(i);
}

// ---- workspace --------------------------------------------------------------------------------

size_t round_up(size_t count, size_t multiple) { return (count + multiple - 1) / multiple * multiple; }

// Where one network's arrays lie in its slot of the workspace (offsets in doubles). The systems have
// order k (ols) or p = k + 1 (iv); every matrix's leading dimension is that order.
struct Layout {
  LeastSquaresMethod method = LeastSquaresMethod::ols;
  int k = 0;
  int order = 0;
  size_t factor = 0;            // ols: H -> L.            iv: zz -> L1, later xx beta (p x k)
  size_t first_rhs = 0;         // ols: [Q | I] -> [B | L^-1] (k x 2k).  iv: [zx | zy | I] -> [Mx | My | L1^-1] (p x (2p + k))
  size_t second = 0;            // iv: [normal | rhs | I] -> [L2 | beta | L2^-1] (p x (2p + k)).  ols: none
  size_t moments = 0;           // ols: H (kept for rss).  iv: xx (p x p)
  size_t cross = 0;             // ols: Q (kept for rss).  iv: none
  size_t product = 0;           // ols: H B.               iv: xx beta (in factor's place).  granger: none
  size_t inverse_diagonal = 0;  // order: diagonal of the last system's inverse
  size_t variance = 0;          // k: residual variance of each target (granger_conditional: its rss)
  size_t scalars = 0;           // |system 1|_1, |system 2|_1, first-stage F
  size_t slot = 0;              // doubles per network
  int pointer_arrays = 0;       // batched pointer arrays: ols L, [Q | I]; iv L1, S1, normal, [rhs | I]
};

Layout plan_layout(LeastSquaresMethod method, int k) {
  Layout l;
  l.method = method;
  l.k = k;
  const size_t kk = static_cast<size_t>(k);
  size_t at = 0;
  auto take = [&at](size_t doubles) {
    const size_t start = at;
    at += round_up(doubles, align_doubles);
    return start;
  };
  if (method != LeastSquaresMethod::iv) {  // ols and granger_conditional: one system of order k
    l.order = k;
    l.factor = take(kk * kk);
    l.first_rhs = take(2 * kk * kk);
    l.moments = take(kk * kk);
    l.cross = take(kk * kk);
    if (method == LeastSquaresMethod::ols) l.product = take(kk * kk);
    l.pointer_arrays = 2;
  } else {
    l.order = k + 1;
    const size_t p = kk + 1;
    l.factor = take(p * p);
    l.first_rhs = take(p * (2 * p + kk));
    l.second = take(p * (2 * p + kk));
    l.moments = take(p * p);
    l.product = l.factor;  // L1 is no longer needed when xx beta is formed
    l.pointer_arrays = 4;
  }
  l.inverse_diagonal = take(static_cast<size_t>(l.order));
  l.variance = take(kk);
  l.scalars = take(3);
  l.slot = at;
  return l;
}

// The workspace of a batch: the networks' slots, then the batched pointer arrays, potrf's two info
// arrays and a status word per network (each section 256-byte aligned).
struct Workspace {
  double* slots = nullptr;      // [networks][layout.slot]
  double** pointers = nullptr;  // [layout.pointer_arrays][networks]
  int* info = nullptr;          // [2][networks]: potrf's info for system 1 and system 2
  uint32_t* status = nullptr;   // [networks]: Status bits
};

struct Sections {
  size_t pointers = 0, info = 0, status = 0, total = 0;  // byte offsets and total
};

Sections plan_sections(const Layout& layout, int networks) {
  const size_t count = static_cast<size_t>(networks), align = align_doubles * sizeof(double);
  Sections s;
  s.pointers = round_up(count * layout.slot * sizeof(double), align);
  s.info = s.pointers + round_up(count * layout.pointer_arrays * sizeof(double*), align);
  s.status = s.info + round_up(2 * count * sizeof(int), align);
  s.total = s.status + round_up(count * sizeof(uint32_t), align);
  return s;
}

Workspace carve(const Layout& layout, int networks, void* memory) {
  const Sections s = plan_sections(layout, networks);
  char* base = static_cast<char*>(memory);
  Workspace w;
  w.slots = reinterpret_cast<double*>(base);
  w.pointers = reinterpret_cast<double**>(base + s.pointers);
  w.info = reinterpret_cast<int*>(base + s.info);
  w.status = reinterpret_cast<uint32_t*>(base + s.status);
  return w;
}

CS_HD inline double* slot_of(const Layout& layout, const Workspace& ws, int network) {
  return ws.slots + static_cast<size_t>(network) * layout.slot;
}

// ---- shared pieces of the block programs --------------------------------------------------------

// Decision of one t test, as t_test_decisions: NaN where t is not finite (or no critical value).
CS_HD inline double decide(double t, double critical, bool inclusive) {
  if (!is_finite(t) || isnan(critical)) return not_a_number();
  const double magnitude = fabs(t);
  return (inclusive ? magnitude >= critical : magnitude > critical) ? 1.0 : 0.0;
}

// V(i, j) = the coefficient of regressor j for target i (column i of `coefficients`, row first + j,
// leading dimension ld), t = V / se with se^2 = variance_i (S^-1)_(first+j), and its decision; NaN
// everywhere when the network was not solved. Owns: elements tid, tid + threads, ...
CS_HD inline void write_estimates(const LeastSquaresBatch& batch, int network, bool solved, const double* coefficients,
                                  int ld, int first, const double* variance, const double* inverse_diagonal, int tid,
                                  int threads) {
  const int k = batch.k;
  const size_t kk = static_cast<size_t>(k) * k;
  const double critical = batch.critical_t[network];
  double* V = batch.V + static_cast<size_t>(network) * kk;
  double* decided = batch.decided + static_cast<size_t>(network) * kk;
  for (size_t e = tid; e < kk; e += threads) {
    if (!solved) {
      V[e] = decided[e] = not_a_number();
      continue;
    }
    const size_t i = e % k, j = e / k;  // target i, regressor j
    const double v = coefficients[first + j + i * ld];
    const double se = sqrt(non_negative(variance[i] * inverse_diagonal[first + j]));
    V[e] = v;
    decided[e] = batch.write_t_values ? v / se : decide(v / se, critical, batch.inclusive);
  }
}

// The identity in an order x order matrix. Owns: elements tid, tid + threads, ...
CS_HD inline void write_identity(double* a, int order, int tid, int threads) {
  const size_t count = static_cast<size_t>(order) * order;
  for (size_t e = tid; e < count; e += threads) a[e] = e % order == e / order ? 1.0 : 0.0;
}

// |column j|^2 of an order x order matrix: with the inverse factor L^-1, (S^-1)_jj (S^-1 = L^-T L^-1).
CS_HD inline double column_square_norm(const double* a, int order, int j) {
  double sum = 0.0;
  for (int i = 0; i < order; ++i) {
    const double v = a[i + static_cast<size_t>(j) * order];
    sum += v * v;
  }
  return sum;
}

// A column's contribution to the largest diagonal of S^-1: a non-finite one counts as infinite, so
// the rcond bound becomes 0 (singular).
CS_HD inline double diagonal_for_rcond(double d) { return is_finite(d) ? d : infinity(); }

// The rcond test of host/estimators.cpp's factor(), with the bound described at the top.
CS_HD inline bool well_conditioned(double norm, double largest_inverse_diagonal) {
  return 1.0 / (norm * largest_inverse_diagonal) > min_rcond;
}

// ---- OLS block programs -----------------------------------------------------------------------

// Forms H and Q from the Gram (centred with an intercept), copies them where potrf and trsm overwrite
// them, appends the identity to Q, writes the network's batched pointers, and finds |H|_1, whether H
// is finite, whether a regressor is constant and whether there are too few samples.
struct AssembleOls {
  LeastSquaresBatch batch;
  Layout layout;
  Workspace ws;

#pragma nv_exec_check_disable
  template <class Block>
  CS_HD void operator()(Block& block, int network, double* shared) const {
    const int k = layout.k;
    const size_t kk = static_cast<size_t>(k) * k;
    const GramView g = gram_of(batch, network);
    const double m = g.transitions();
    double* slot = slot_of(layout, ws, network);
    double* L = slot + layout.factor;
    double* R = slot + layout.first_rhs;
    double* H = slot + layout.moments;
    double* Q = slot + layout.cross;
    double* column_norms = shared;            // [threads] partial max of H's column sums
    double* bits = shared + block_threads;    // [threads] partial status bits
    // Element (a, b) of H and of Q (regressor a, target b). Owns: elements tid, tid + threads, ...
    block.parallel([&](int tid, int threads) {
      if (tid == 0) {
        ws.pointers[network] = L;
        ws.pointers[batch.networks + network] = R;
        ws.info[network] = 0;  // potrf sets it; zeroed so a library that writes only failures reads the same
      }
      for (size_t e = tid; e < kk; e += threads) {
        const int a = static_cast<int>(e % k), b = static_cast<int>(e / k);
        const int target = target_of(batch, g, b);
        double h = g.ww(g.x(a), g.x(b)), q = g.wu(g.x(a), target);
        if (batch.intercept) {
          h -= g.ww(0, g.x(a)) * g.ww(0, g.x(b)) / m;
          q -= g.ww(0, g.x(a)) * g.wu(0, target) / m;
        }
        H[e] = L[e] = h;
        Q[e] = R[e] = q;
        R[kk + e] = a == b ? 1.0 : 0.0;
      }
    });
    // |H|_1, finiteness, constant regressors (has_constant_regressor's centred test, with or
    // without an intercept).
    one_norm_and_status(block, H, k, column_norms, bits, [&](int b) -> uint32_t {
      const double raw = g.ww(g.x(b), g.x(b));
      return never_varied(raw - g.ww(0, g.x(b)) * g.ww(0, g.x(b)) / m, raw, m) ? status_constant_regressor : 0u;
    }, m <= k + (batch.intercept ? 1 : 0), slot[layout.scalars], ws.status[network]);
  }
};

// granger_conditional's tests, V(i, j) = the decision and 1 - p for every (target i, regressor j),
// as the CPU's loop forms them (conditional_granger_test, df = m - k - 1); NaN
// everywhere when the network was not solved. Owns: elements tid, tid + threads, ...; returns the
// flags of its undefined tests (singular, or constant_regressor for a target that never varied).
CS_HD inline uint32_t write_tests(const LeastSquaresBatch& batch, const GramView& g, int network, bool solved,
                                  const double* B, const double* rss, const double* inverse_diagonal, int tid,
                                  int threads) {
  const int k = batch.k;
  const size_t kk = static_cast<size_t>(k) * k;
  double* V = batch.V + static_cast<size_t>(network) * kk;
  double* rank_key = batch.rank_key + static_cast<size_t>(network) * kk;
  const double m = g.transitions();
  uint32_t flags = flag_none;
  for (size_t e = tid; e < kk; e += threads) {
    if (!solved) {
      V[e] = rank_key[e] = not_a_number();
      continue;
    }
    const int i = static_cast<int>(e % k), j = static_cast<int>(e / k);  // target i, regressor j
    const double b = B[j + static_cast<size_t>(i) * k];
    const double sum = g.wu(0, g.next(i)), raw = g.uu(g.next(i));
    const double total = raw - sum * sum / m;  // x_i[t+1]'s centred sum of squares
    const LikelihoodRatioTest test = conditional_granger_test(b, inverse_diagonal[j], rss[i], total, raw, m, m - k - 1);
    flags |= test.flags;
    V[e] = batch.write_p_values ? test.p_value : decide_test(test.p_value, batch.level, batch.inclusive);
    rank_key[e] = 1.0 - test.p_value;
  }
  return flags;
}

// V, the decisions and the flags from B = H^-1 Q and L^-1: diag(H^-1), each target's residual
// variance (residual_sums; granger_conditional: its rss), the rcond test, then every (target,
// regressor) element: its t test (ols) or likelihood-ratio test (granger_conditional).
struct FinishOls {
  LeastSquaresBatch batch;
  Layout layout;
  Workspace ws;

#pragma nv_exec_check_disable
  template <class Block>
  CS_HD void operator()(Block& block, int network, double* shared) const {
    const int k = layout.k;
    const size_t kk = static_cast<size_t>(k) * k;
    const GramView g = gram_of(batch, network);
    const double m = g.transitions();
    const double parameters = k + (batch.intercept ? 1 : 0);
    double* slot = slot_of(layout, ws, network);
    const double* B = slot + layout.first_rhs;          // k x k, column i: coefficients of target i
    const double* inverse_factor = B + kk;              // L^-1
    const double* Q = slot + layout.cross;
    const double* HB = slot + layout.product;           // ols only
    const bool granger = batch.method == LeastSquaresMethod::granger_conditional;
    double* inverse_diagonal = slot + layout.inverse_diagonal;
    double* variance = slot + layout.variance;
    double* largest_diagonal = shared;                  // [threads]
    double* test_flags = shared + block_threads;        // [threads] granger_conditional's partial flags
    double* verdict = shared + partial_arrays * block_threads;
    // diag(H^-1)_j and target j's residual variance. Owns: index j = tid, tid + threads, ...
    block.parallel([&](int tid, int threads) {
      double largest = 0.0;
      for (int j = tid; j < k; j += threads) {
        inverse_diagonal[j] = column_square_norm(inverse_factor, k, j);
        largest = larger(largest, diagonal_for_rcond(inverse_diagonal[j]));
        const int target = target_of(batch, g, j);
        const double sum = g.wu(0, target);
        const double yy = batch.intercept ? g.uu(target) - sum * sum / m : g.uu(target);
        double bq = 0.0, bhb = 0.0;
        for (int a = 0; a < k; ++a) {
          const size_t e = a + static_cast<size_t>(j) * k;
          bq += B[e] * Q[e];
          if (!granger) bhb += B[e] * HB[e];
        }
        variance[j] = granger ? yy - bq : (yy - 2.0 * bq + bhb) / (m - parameters);
      }
      largest_diagonal[tid] = largest;
    });
    // The network's verdict and flags (ordinary_least_squares' early exits, in its order).
    block.parallel([&](int tid, int threads) {
      if (tid != 0) return;
      double largest = 0.0;
      for (int t = 0; t < threads; ++t) largest = larger(largest, largest_diagonal[t]);
      uint32_t status = ws.status[network];
      if (!well_conditioned(slot[layout.scalars], largest)) status |= status_first_singular;
      uint32_t flags = flag_none;
      if (status & status_too_few)
        flags = flag_too_few_samples;
      else if (status & status_first_singular)
        flags = flag_singular | ((status & status_constant_regressor) ? flag_constant_regressor : flag_none);
      batch.flags[network] = flags;
      batch.first_stage_f[network] = not_a_number();
      *verdict = (status & (status_too_few | status_first_singular)) ? 0.0 : 1.0;
    });
    // ols: V(i, j) = B(j, i), t = V / se, decision. granger_conditional: the tests, their flags.
    block.parallel([&](int tid, int threads) {
      if (granger)
        test_flags[tid] = write_tests(batch, g, network, *verdict != 0.0, B, variance, inverse_diagonal, tid, threads);
      else
        write_estimates(batch, network, *verdict != 0.0, B, k, 0, variance, inverse_diagonal, tid, threads);
    });
    if (!granger) return;
    block.parallel([&](int tid, int threads) {
      if (tid != 0) return;
      uint32_t flags = batch.flags[network];
      for (int t = 0; t < threads; ++t) flags |= static_cast<uint32_t>(test_flags[t]);
      batch.flags[network] = flags;
    });
  }
};

// ---- 2SLS block programs ----------------------------------------------------------------------

// Forms zz (to factor), [zx | zy | I], the identity of [normal | rhs | I] and xx from the Gram,
// writes the network's batched pointers, and finds |zz|_1, whether zz is finite and whether there are
// too few samples. zz, zx and zy are blocks of w's leading k + 1 entries; xx and xy take w's
// entries 0 and 1 + n ... n + k.
struct AssembleIv {
  LeastSquaresBatch batch;
  Layout layout;
  Workspace ws;

#pragma nv_exec_check_disable
  template <class Block>
  CS_HD void operator()(Block& block, int network, double* shared) const {
    const int k = layout.k, p = layout.order;
    const size_t pp = static_cast<size_t>(p) * p, width = 2 * static_cast<size_t>(p) + k;
    const GramView g = gram_of(batch, network);
    const double m = g.transitions();
    double* slot = slot_of(layout, ws, network);
    double* L1 = slot + layout.factor;
    double* S1 = slot + layout.first_rhs;
    double* T = slot + layout.second;
    double* XX = slot + layout.moments;
    double* column_norms = shared;
    double* bits = shared + block_threads;
    // Owns: elements tid, tid + threads, ... of each matrix.
    block.parallel([&](int tid, int threads) {
      if (tid == 0) {
        const size_t networks = batch.networks;
        ws.pointers[network] = L1;
        ws.pointers[networks + network] = S1;
        ws.pointers[2 * networks + network] = T;
        ws.pointers[3 * networks + network] = T + pp;
        ws.info[network] = ws.info[networks + network] = 0;  // as in AssembleOls
      }
      for (size_t e = tid; e < pp; e += threads) {
        const int a = static_cast<int>(e % p), b = static_cast<int>(e / p);
        L1[e] = g.ww(a, b);
        XX[e] = g.ww(g.x_with_constant(a), g.x_with_constant(b));
        T[p * static_cast<size_t>(p + k) + e] = a == b ? 1.0 : 0.0;
      }
      for (size_t e = tid; e < p * width; e += threads) {
        const int a = static_cast<int>(e % p), c = static_cast<int>(e / p);
        if (c < p)
          S1[e] = g.ww(a, g.x_with_constant(c));  // zx
        else if (c < p + k)
          S1[e] = g.wu(a, g.logit(c - p));        // zy
        else
          S1[e] = a == c - p - k ? 1.0 : 0.0;     // I
      }
    });
    // |zz|_1 and its finiteness.
    one_norm_and_status(block, L1, p, column_norms, bits, [](int) { return 0u; }, m <= p, slot[layout.scalars],
                        ws.status[network]);
  }
};

// Between the stages, from [Mx | My | L1^-1] and normal = Mx' Mx: stage 1's rcond test, the weakest
// first-stage F, and |normal|_1 and its finiteness for stage 2. If stage 1 failed, normal becomes the
// identity (its potrf then succeeds and nothing non-finite follows).
struct PrepareSecondStage {
  LeastSquaresBatch batch;
  Layout layout;
  Workspace ws;

#pragma nv_exec_check_disable
  template <class Block>
  CS_HD void operator()(Block& block, int network, double* shared) const {
    const int k = layout.k, p = layout.order, q = p;  // p regressor columns, q instrument columns
    const GramView g = gram_of(batch, network);
    const double m = g.transitions();
    double* slot = slot_of(layout, ws, network);
    const double* Mx = slot + layout.first_rhs;
    const double* inverse_factor = Mx + p * static_cast<size_t>(p + k);  // L1^-1
    const double* XX = slot + layout.moments;
    double* normal = slot + layout.second;
    double* largest_diagonal = shared;
    double* weakest_f = shared + block_threads;
    double* normal_norms = shared + 2 * block_threads;
    double* bits = shared + 3 * block_threads;
    double* verdict = shared + partial_arrays * block_threads;
    // Owns: columns j = tid, tid + threads, ... of L1^-1, Mx and normal; its partials.
    block.parallel([&](int tid, int threads) {
      double largest = 0.0, weakest = infinity(), norm = 0.0;
      uint32_t status = 0;
      for (int j = tid; j < p; j += threads) {
        largest = larger(largest, diagonal_for_rcond(column_square_norm(inverse_factor, p, j)));
        if (j >= 1) {  // two_stage_from_moments' F of x_j ~ 1 + z (column 0 is the constant)
          const double xjj = XX[j + static_cast<size_t>(j) * p], x0j = XX[static_cast<size_t>(j) * p];
          const double rss = xjj - column_square_norm(Mx, p, j);
          const double tss = xjj - x0j * x0j / m;
          const double f = ((tss - rss) / static_cast<double>(q - 1)) / (rss / (m - static_cast<double>(q)));
          if (rss > 0) weakest = f < weakest ? f : weakest;  // std::min(weakest, f): a NaN f is skipped
        }
        double sum = 0.0;  // the lower triangle read as symmetric, as Eigen's LLT reads it
        for (int a = 0; a < p; ++a) {
          const double v = a >= j ? normal[a + static_cast<size_t>(j) * p] : normal[j + static_cast<size_t>(a) * p];
          sum += fabs(v);
          if (!is_finite(normal[a + static_cast<size_t>(j) * p])) status |= status_second_singular;
        }
        norm = larger(norm, sum);
      }
      largest_diagonal[tid] = largest;
      weakest_f[tid] = weakest;
      normal_norms[tid] = norm;
      bits[tid] = status;
    });
    block.parallel([&](int tid, int threads) {
      if (tid != 0) return;
      double largest = 0.0, weakest = infinity(), norm = 0.0;
      uint32_t status = ws.status[network];
      for (int t = 0; t < threads; ++t) {
        largest = larger(largest, largest_diagonal[t]);
        weakest = weakest_f[t] < weakest ? weakest_f[t] : weakest;
        norm = larger(norm, normal_norms[t]);
        status |= static_cast<uint32_t>(bits[t]);
      }
      if (!well_conditioned(slot[layout.scalars], largest)) status |= status_first_singular;
      const bool first_ok = !(status & status_first_singular);
      slot[layout.scalars + 1] = norm;
      slot[layout.scalars + 2] = first_ok && m > q ? weakest : not_a_number();
      ws.status[network] = status;
      *verdict = first_ok ? 1.0 : 0.0;
    });
    block.parallel([&](int tid, int threads) {
      if (*verdict == 0.0) write_identity(normal, p, tid, threads);
    });
  }
};

// beta = normal^-1 rhs and L2^-1 to V, the decisions, the flags and the first-stage F: diag(normal^-1),
// each target's rss with the observed regressors, stage 2's rcond test, then every element.
struct FinishIv {
  LeastSquaresBatch batch;
  Layout layout;
  Workspace ws;

#pragma nv_exec_check_disable
  template <class Block>
  CS_HD void operator()(Block& block, int network, double* shared) const {
    const int k = layout.k, p = layout.order;
    const size_t pp = static_cast<size_t>(p) * p;
    const GramView g = gram_of(batch, network);
    const double m = g.transitions();
    double* slot = slot_of(layout, ws, network);
    const double* beta = slot + layout.second + pp;           // p x k: row 0 the intercepts
    const double* inverse_factor = beta + p * static_cast<size_t>(k);  // L2^-1
    const double* XXB = slot + layout.product;
    double* inverse_diagonal = slot + layout.inverse_diagonal;
    double* variance = slot + layout.variance;
    double* largest_diagonal = shared;
    double* verdict = shared + partial_arrays * block_threads;
    // Owns: diag(normal^-1)_j for j = tid, tid + threads, ... < p and target i's variance for the
    // same indices < k.
    block.parallel([&](int tid, int threads) {
      double largest = 0.0;
      for (int j = tid; j < p; j += threads) {
        inverse_diagonal[j] = column_square_norm(inverse_factor, p, j);
        largest = larger(largest, diagonal_for_rcond(inverse_diagonal[j]));
      }
      for (int i = tid; i < k; i += threads) {
        double bxy = 0.0, bxxb = 0.0;
        for (int a = 0; a < p; ++a) {
          const size_t e = a + static_cast<size_t>(i) * p;
          bxy += beta[e] * g.wu(g.x_with_constant(a), g.logit(i));
          bxxb += beta[e] * XXB[e];
        }
        const double rss = g.uu(g.logit(i)) - 2.0 * bxy + bxxb;
        variance[i] = non_negative(rss) / (m - static_cast<double>(p));
      }
      largest_diagonal[tid] = largest;
    });
    // The flags in two_stage_least_squares' order: stage 1, too few samples, stage 2; eta == 0 last.
    block.parallel([&](int tid, int threads) {
      if (tid != 0) return;
      double largest = 0.0;
      for (int t = 0; t < threads; ++t) largest = larger(largest, largest_diagonal[t]);
      uint32_t status = ws.status[network];
      if (!well_conditioned(slot[layout.scalars + 1], largest)) status |= status_second_singular;
      uint32_t flags = flag_none;
      if (status & status_first_singular)
        flags = flag_unidentified | flag_singular;
      else if (status & status_too_few)
        flags = flag_too_few_samples;
      else if (status & status_second_singular)
        flags = flag_singular;
      const bool unidentified = batch.etas[network] == 0.0;  // instruments absent from the dynamics
      if (unidentified) flags = flag_unidentified;
      batch.flags[network] = flags;
      batch.first_stage_f[network] = slot[layout.scalars + 2];
      *verdict = flags == flag_none ? 1.0 : 0.0;
    });
    // V(i, j) = beta(1 + j, i) (row 0 is the intercept), t = V / se, decision.
    block.parallel([&](int tid, int threads) {
      write_estimates(batch, network, *verdict != 0.0, beta, p, 1, variance, inverse_diagonal, tid, threads);
    });
  }
};

// ---- factor check (both methods) ----------------------------------------------------------------

// Reads potrf's info for system `stage` (1 or 2) on the device: a failed factorisation marks the
// network singular, and a singular network's factor becomes the identity for the solves that follow.
struct CheckFactor {
  Layout layout;
  Workspace ws;
  int networks;
  int stage;

#pragma nv_exec_check_disable
  template <class Block>
  CS_HD void operator()(Block& block, int network, double* shared) const {
    const uint32_t singular = stage == 1 ? status_first_singular : status_second_singular;
    double* factor = slot_of(layout, ws, network) + (stage == 1 ? layout.factor : layout.second);
    double* verdict = shared + partial_arrays * block_threads;
    block.parallel([&](int tid, int) {
      if (tid != 0) return;
      if (ws.info[(stage - 1) * static_cast<size_t>(networks) + network] != 0) ws.status[network] |= singular;
      *verdict = (ws.status[network] & singular) ? 0.0 : 1.0;
    });
    block.parallel([&](int tid, int threads) {
      if (*verdict == 0.0) write_identity(factor, layout.order, tid, threads);
    });
  }
};

// ---- running a block program ------------------------------------------------------------------

// One block per network.
template <class Program>
__global__ void __launch_bounds__(block_threads) block_program_kernel(const Program program) {
  extern __shared__ double shared[];
  DeviceBlock block;
  program(block, static_cast<int>(blockIdx.x), shared);
}

// The real launch on `stream` (asynchronous; launch errors throw). ~8 KB of shared memory: no opt-in.
template <class Program>
void launch_block_program(const Program& program, int networks, cudaStream_t stream) {
  block_program_kernel<Program><<<networks, block_threads, shared_doubles * sizeof(double), stream>>>(program);
  CS_CUDA_CHECK(cudaGetLastError());
}

// The same block program on the host, network after network; shared memory is NaN first, so a read
// before a write shows up in the results.
template <class Program>
void emulate_block_program_on_host(const Program& program, int networks) {
  std::vector<double> shared(shared_doubles);
  for (int network = 0; network < networks; ++network) {
    std::fill(shared.begin(), shared.end(), std::numeric_limits<double>::quiet_NaN());
    emulate_block(block_threads, [&](auto& block) { program(block, network, shared.data()); });
  }
}

// ---- the library calls, on the device and on the host -----------------------------------------

// Every matrix has leading dimension `order`; `factors` and `rhs` are batched pointer arrays.
struct DeviceOps {
  cudaStream_t stream;
  cublasHandle_t blas;
  cusolverDnHandle_t solver;

  // factors[b] = chol(factors[b]) (lower), info[b] = potrf's info.
  void cholesky(double** factors, int order, int* info, int batch) const {
    for (int start = 0; start < batch; start += library_batch_limit)
      CS_CUDA_CHECK(cusolverDnDpotrfBatched(solver, CUBLAS_FILL_MODE_LOWER, order, factors + start, order,
                                            info + start, std::min(library_batch_limit, batch - start)));
  }
  // rhs[b] = L^-1 rhs[b] (or L^-T rhs[b]) for the lower factor L = factors[b]; rhs is order x columns.
  void triangular_solve(bool transposed, int order, int columns, double** factors, double** rhs, int batch) const {
    const double one = 1.0;
    for (int start = 0; start < batch; start += library_batch_limit)
      CS_CUDA_CHECK(cublasDtrsmBatched(blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER,
                                       transposed ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, order, columns,
                                       &one, factors + start, order, rhs + start, order,
                                       std::min(library_batch_limit, batch - start)));
  }
  // c = op(a) b per network, a order x order, b and c order x columns, networks `stride` doubles apart.
  void multiply(bool transpose_a, int order, int columns, const double* a, const double* b, double* c, size_t stride,
                int batch) const {
    const double one = 1.0, zero = 0.0;
    for (int start = 0; start < batch; start += library_batch_limit) {
      const size_t offset = static_cast<size_t>(start) * stride;
      CS_CUDA_CHECK(cublasDgemmStridedBatched(blas, transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, order,
                                              columns, order, &one, a + offset, order,
                                              static_cast<long long>(stride), b + offset, order,
                                              static_cast<long long>(stride), &zero, c + offset, order,
                                              static_cast<long long>(stride),
                                              std::min(library_batch_limit, batch - start)));
    }
  }
  template <class Program>
  void run(const Program& program, int networks) const {
    launch_block_program(program, networks, stream);
  }
};

// LAPACK's unblocked dpotf2 (lower): 0, or j + 1 when the leading minor of order j + 1 is not positive
// definite (a pivot <= 0 or NaN). Like cuSOLVER it leaves the strictly upper triangle undefined: here
// it becomes NaN, so a read of it shows up in the tests.
int cholesky_in_place(double* a, int n) {
  int info = 0;
  for (int j = 0; j < n && info == 0; ++j) {
    double pivot = a[j + static_cast<size_t>(j) * n];
    for (int l = 0; l < j; ++l) pivot -= a[j + static_cast<size_t>(l) * n] * a[j + static_cast<size_t>(l) * n];
    if (!(pivot > 0.0)) {
      info = j + 1;
      break;
    }
    pivot = std::sqrt(pivot);
    a[j + static_cast<size_t>(j) * n] = pivot;
    for (int i = j + 1; i < n; ++i) {
      double s = a[i + static_cast<size_t>(j) * n];
      for (int l = 0; l < j; ++l) s -= a[i + static_cast<size_t>(l) * n] * a[j + static_cast<size_t>(l) * n];
      a[i + static_cast<size_t>(j) * n] = s / pivot;
    }
  }
  for (int j = 1; j < n; ++j)
    for (int i = 0; i < j; ++i) a[i + static_cast<size_t>(j) * n] = std::numeric_limits<double>::quiet_NaN();
  return info;
}

// Forward (L x = b) or backward (L' x = b) substitution on each column; reads L's lower triangle only.
void lower_triangular_solve(const double* L, int n, bool transposed, double* b, int columns) {
  auto at = [&](int i, int j) { return L[i + static_cast<size_t>(j) * n]; };
  for (int c = 0; c < columns; ++c) {
    double* x = b + static_cast<size_t>(c) * n;
    if (!transposed) {
      for (int i = 0; i < n; ++i) {
        double s = x[i];
        for (int l = 0; l < i; ++l) s -= at(i, l) * x[l];
        x[i] = s / at(i, i);
      }
    } else {
      for (int i = n - 1; i >= 0; --i) {
        double s = x[i];
        for (int l = i + 1; l < n; ++l) s -= at(l, i) * x[l];
        x[i] = s / at(i, i);
      }
    }
  }
}

// The same calls as DeviceOps, as plain loops on host memory.
struct HostOps {
  void cholesky(double** factors, int order, int* info, int batch) const {
    for (int b = 0; b < batch; ++b) info[b] = cholesky_in_place(factors[b], order);
  }
  void triangular_solve(bool transposed, int order, int columns, double** factors, double** rhs, int batch) const {
    for (int b = 0; b < batch; ++b) lower_triangular_solve(factors[b], order, transposed, rhs[b], columns);
  }
  void multiply(bool transpose_a, int order, int columns, const double* a, const double* b, double* c, size_t stride,
                int batch) const {
    for (int network = 0; network < batch; ++network) {
      const size_t offset = static_cast<size_t>(network) * stride;
      const double *A = a + offset, *B = b + offset;
      double* C = c + offset;
      for (int j = 0; j < columns; ++j)
        for (int i = 0; i < order; ++i) {
          double sum = 0.0;
          for (int l = 0; l < order; ++l)
            sum += (transpose_a ? A[l + static_cast<size_t>(i) * order] : A[i + static_cast<size_t>(l) * order]) *
                   B[l + static_cast<size_t>(j) * order];
          C[i + static_cast<size_t>(j) * order] = sum;
        }
    }
  }
  template <class Program>
  void run(const Program& program, int networks) const {
    emulate_block_program_on_host(program, networks);
  }
};

// ---- the two solves, written once for both Ops -------------------------------------------------

template <class Ops>
void solve_ols(const Ops& ops, const LeastSquaresBatch& batch, const Layout& layout, const Workspace& ws) {
  const int networks = batch.networks, k = layout.k;
  double** factors = ws.pointers;             // L
  double** rhs = ws.pointers + networks;      // [Q | I]
  double* slot0 = ws.slots;
  ops.run(AssembleOls{batch, layout, ws}, networks);
  ops.cholesky(factors, k, ws.info, networks);
  ops.run(CheckFactor{layout, ws, networks, 1}, networks);
  ops.triangular_solve(false, k, 2 * k, factors, rhs, networks);  // [Y | L^-1] = L^-1 [Q | I]
  ops.triangular_solve(true, k, k, factors, rhs, networks);       // B = L^-T Y
  if (batch.method == LeastSquaresMethod::ols)
    ops.multiply(false, k, k, slot0 + layout.moments, slot0 + layout.first_rhs, slot0 + layout.product, layout.slot,
                 networks);                                        // H B
  ops.run(FinishOls{batch, layout, ws}, networks);
}

template <class Ops>
void solve_iv(const Ops& ops, const LeastSquaresBatch& batch, const Layout& layout, const Workspace& ws) {
  const int networks = batch.networks, k = layout.k, p = layout.order;
  double** first_factors = ws.pointers;                // L1
  double** first_rhs = ws.pointers + networks;         // [zx | zy | I]
  double** second_factors = ws.pointers + 2 * static_cast<size_t>(networks);  // normal
  double** second_rhs = ws.pointers + 3 * static_cast<size_t>(networks);      // [rhs | I]
  double* slot0 = ws.slots;
  ops.run(AssembleIv{batch, layout, ws}, networks);
  ops.cholesky(first_factors, p, ws.info, networks);
  ops.run(CheckFactor{layout, ws, networks, 1}, networks);
  ops.triangular_solve(false, p, 2 * p + k, first_factors, first_rhs, networks);  // [Mx | My | L1^-1]
  ops.multiply(true, p, p + k, slot0 + layout.first_rhs, slot0 + layout.first_rhs, slot0 + layout.second,
               layout.slot, networks);                                          // [normal | rhs] = Mx' [Mx | My]
  ops.run(PrepareSecondStage{batch, layout, ws}, networks);
  ops.cholesky(second_factors, p, ws.info + networks, networks);
  ops.run(CheckFactor{layout, ws, networks, 2}, networks);
  ops.triangular_solve(false, p, k + p, second_factors, second_rhs, networks);   // [L2^-1 rhs | L2^-1]
  ops.triangular_solve(true, p, k, second_factors, second_rhs, networks);        // beta = L2^-T L2^-1 rhs
  ops.multiply(false, p, k, slot0 + layout.moments, slot0 + layout.second + static_cast<size_t>(p) * p,
               slot0 + layout.product, layout.slot, networks);                  // xx beta
  ops.run(FinishIv{batch, layout, ws}, networks);
}

void check_batch(const LeastSquaresBatch& b, const void* workspace) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("LeastSquaresSolver::solve: " + what); };
  if (b.networks < 0) fail("negative network count");
  if (b.networks == 0) return;
  if (b.n < 1 || b.k < 1 || b.k > b.n)
    fail("needs 1 <= k <= n (k = " + std::to_string(b.k) + ", n = " + std::to_string(b.n) + ")");
  if (!b.grams || !b.V || !b.first_stage_f || !b.flags || !workspace) fail("a required pointer is null");
  if (b.method == LeastSquaresMethod::granger_conditional) {
    if (!b.rank_key) fail("granger_conditional needs rank_key");
    if (!b.intercept) fail("granger_conditional fits intercepts (intercept must be true)");
  } else if (!b.critical_t || !b.decided) {
    fail("ols and iv need critical_t and decided");
  }
  if (b.method == LeastSquaresMethod::iv && !b.etas) fail("iv needs etas");
}

template <class Ops>
void solve_batch(const Ops& ops, const LeastSquaresBatch& batch, void* workspace) {
  check_batch(batch, workspace);
  if (batch.networks == 0) return;
  const Layout layout = plan_layout(batch.method, batch.k);
  const Workspace ws = carve(layout, batch.networks, workspace);
  if (batch.method == LeastSquaresMethod::iv)
    solve_iv(ops, batch, layout, ws);
  else
    solve_ols(ops, batch, layout, ws);
}

size_t batch_workspace_bytes(LeastSquaresMethod method, int networks, int k) {
  if (networks <= 0 || k < 1) return 0;
  return plan_sections(plan_layout(method, k), networks).total;
}

class DeviceSolver final : public LeastSquaresSolver {
 public:
  explicit DeviceSolver(cudaStream_t stream) : stream_(stream) {
    try {
      CS_CUDA_CHECK(cublasCreate(&blas_));
      CS_CUDA_CHECK(cublasSetStream(blas_, stream));
      CS_CUDA_CHECK(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));  // float64 as float64: no emulation
      CS_CUDA_CHECK(cusolverDnCreate(&solver_));
      CS_CUDA_CHECK(cusolverDnSetStream(solver_, stream));
    } catch (...) {
      release();
      throw;
    }
  }
  ~DeviceSolver() override { release(); }
  DeviceSolver(const DeviceSolver&) = delete;
  DeviceSolver& operator=(const DeviceSolver&) = delete;

  size_t workspace_bytes(LeastSquaresMethod method, int networks, int k) const override {
    return batch_workspace_bytes(method, networks, k);
  }
  void solve(const LeastSquaresBatch& batch, void* workspace) override {
    solve_batch(DeviceOps{stream_, blas_, solver_}, batch, workspace);
  }

 private:
  void release() {
    if (solver_) cusolverDnDestroy(solver_);
    if (blas_) cublasDestroy(blas_);
    solver_ = nullptr;
    blas_ = nullptr;
  }
  cudaStream_t stream_;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
};

class HostSolver final : public LeastSquaresSolver {
 public:
  size_t workspace_bytes(LeastSquaresMethod method, int networks, int k) const override {
    return batch_workspace_bytes(method, networks, k);
  }
  void solve(const LeastSquaresBatch& batch, void* workspace) override { solve_batch(HostOps{}, batch, workspace); }
};

}  // namespace

std::unique_ptr<LeastSquaresSolver> LeastSquaresSolver::on_device(cudaStream_t stream) {
  return std::make_unique<DeviceSolver>(stream);
}

std::unique_ptr<LeastSquaresSolver> LeastSquaresSolver::on_host() { return std::make_unique<HostSolver>(); }

}  // namespace causalsweep::cuda
