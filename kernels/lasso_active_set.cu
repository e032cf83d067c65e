// The active-set lasso on the GPU: host/lasso.cpp's feature-sign search (Lee et al. 2006) on the
// Gram, for every target of every network of a batch, warm-started from V.
//
// Per network the moments are those of regression_moments (host/estimators.cpp): H = X'X (k x k),
// q = X'y and y'y per target, m transitions, centred when there is an intercept. Target i minimises
//   1/2 w'Hw - q'w + l1 |w|_1,   l1 = alpha m   (scikit-learn's objective times m)
// by the CPU's loop: while every active coefficient is optimal, add the zero coordinate with the
// largest KKT violation |q_j - (Hw)_j| > l1 (1 + 1e-12); solve H_AA v = q_A - l1 sign_A on the active
// set A with its signs fixed (Cholesky); line-search the true objective on [w_A, v] at the end point
// and every sign crossing; drop the coordinates that crossed. No violator left: w is the optimum,
// certified by scikit-learn's duality gap < tol * y'y (lasso_duality_gap's formula).
//
// Warm start. The active set starts as the support of V's row with its signs, and the first
// iteration solves on it (on_support_optimal = false); a zero row starts exactly as the CPU does.
// Non-finite warm-start entries and coordinates with h_jj <= 0 start at 0 (the CPU never activates
// those). The optimum is unique where H is positive definite on the support, so any warm start
// reaches the CPU's V up to rounding; a good one (the previous alpha, a neighbouring network) needs
// fewer iterations than the CPU's zero start.
//
// Where the CPU falls back to coordinate descent (a singular block, the iteration cap, or a gap
// that is not below the tolerance) this kernel stops, keeps its best point and flags
// flag_not_converged: on simulated networks that never happens at tol 1e-4, and the integrator can
// rerun such targets on the CPU. Degenerate moments follow lasso(): no transitions -> NaN and
// flag_too_few_samples; a non-finite entry of H or Q -> NaN and flag_singular.
//
// Thread mapping. One block of 128 threads per (network, target); the block reads its network's
// centred H and q straight from the Gram (centred_h: the CPU's operations exactly, L2-cached: every
// target of a network reads the same Gram). Per iteration the block
//   - computes the gradient q - Hw (thread per coordinate) and the argmax of the violation (per-thread
//     best, then thread 0 combines in thread order, ties to the lower index: the CPU's choice),
//   - copies H_AA into the |A| x |A| system (shared memory, or this block's global scratch when k x k
//     does not fit) and factors it by a right-looking Cholesky: per column one phase scales the
//     column, one updates the trailing lower triangle (2 |A| barriers),
//   - solves L y = b and L'v = y by substitution, one barrier per row (the pivot is read, never
//     written, in its phase),
//   - evaluates the objective at each candidate step (thread per candidate, the CPU's loop order),
//     thread 0 picks the CPU's best step, threads apply it, thread 0 compacts the active set.
// The upper triangle of the system keeps H_AA (the factor is lower) for the objective. All choices
// are read from shared memory after a barrier, so every thread takes the same branch.
//
// Agreement with the CPU. Same decisions from the same formulas; rounding differs in the Cholesky
// (Eigen's LLT accumulates in another order), the gradient's and the gap's sums (Eigen's vectorised
// order) and nvcc's fused multiply-adds. Measured on simulated networks (tests/test_cuda_lasso_active_set.cpp):
// the same zeros, max |dV| 3.5e-14, relative differences up to ~5e-10 only on the smallest nonzero
// elements (cancellation in the solve). Only a violation or objective tie within rounding could take
// another path (still to the same optimum).
//
// Cost. Shared memory per block: 14 k + 643 doubles of vectors plus the k x k system when it fits
// (k <= 161 at H100's 227 KiB; k = 100: 96 KiB, two blocks per SM), else the system in global scratch
// (k <= 2029: the vectors must fit), one per block of a grid of as many blocks as the device holds at
// once, each looping over every (grid)-th fit: a fixed 0.8 GB at k = 500 on an H100, where a block
// per fit would take k^3 doubles (1 GB) per network. Per iteration: a gradient (k x |support| reads
// of the Gram, L2), ~4 |A| + 8 barriers and O(|A|^3 / 128) flops.
//
// Like kernels/simulate_gram.cu, the kernel is a block program (block_program.cuh) that the host
// emulator also runs.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/flags.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "lasso_active_set_kernels.hpp"
#include "lasso_moments.cuh"
#include "shared_memory.cuh"

namespace causalsweep::cuda {
namespace {

constexpr int block_threads = 128;
constexpr int vectors_per_block = 14;  // k-long vectors in shared memory (see carve)
constexpr int partials_per_thread = 5;  // 4 sums of the gap (or the violation) and an index

// ---- plan ------------------------------------------------------------------------------------

// Shared between barriers: what thread 0 decides and every thread then reads.
struct Control {
  int s;             // size of the active set
  int optimal;       // on_support_optimal: every active coefficient is optimal
  int finished;      // no violator left: the search ended normally
  int singular;      // the Cholesky met a non-positive pivot
  int bad_solution;  // the solve gave a non-finite value
  int nonfinite;     // H or Q has a non-finite entry: the network is singular
  int iterations;
  int optimal_next;
  double best_t;     // the step chosen by the line search
};
static_assert(sizeof(Control) % sizeof(double) == 0, "shared sections are counted in doubles");

struct Plan {
  int k = 0;
  bool system_in_shared = false;
  size_t shared_bytes = 0;
  size_t scratch_doubles = 0;  // per block
};

__host__ __device__ inline size_t vector_doubles(int k) {
  return sizeof(Control) / sizeof(double) + static_cast<size_t>(vectors_per_block) * k + 1 +
         static_cast<size_t>(partials_per_thread) * block_threads;
}

Plan plan_active_set(int k, size_t shared_limit_bytes) {
  if (k < 0) throw std::invalid_argument("lasso_active_set: k < 0");
  Plan plan;
  plan.k = k;
  const size_t vectors = vector_doubles(k), system = static_cast<size_t>(k) * k;
  if (vectors * sizeof(double) > shared_limit_bytes)
    throw std::invalid_argument("lasso_active_set: k = " + std::to_string(k) + " does not fit in " +
                                std::to_string(shared_limit_bytes) + " bytes of shared memory");
  plan.system_in_shared = (vectors + system) * sizeof(double) <= shared_limit_bytes;
  plan.shared_bytes = (vectors + (plan.system_in_shared ? system : 0)) * sizeof(double);
  plan.scratch_doubles = plan.system_in_shared ? 0 : system;
  return plan;
}

// ---- the moments (regression_moments in host/estimators.cpp) ----------------------------------

// What every phase of one block needs: the network's moments and the block's memory.
struct Context {
  GramView gram;
  bool intercept;
  double m, l1, tol;
  int k, target, max_iter;
  // The centred moments (lasso_moments.cuh): H(l, j), Q(l, i) = sum x_l y_i, and the target's y'y.
  __host__ __device__ double H(int l, int j) const { return centred_h(gram, intercept, m, l, j); }
  __host__ __device__ double Q(int l, int i) const { return centred_q(gram, intercept, m, l, i); }
  __host__ __device__ double yy() const { return centred_yy(gram, intercept, m, target); }
};

// ---- memory of one block -----------------------------------------------------------------------

struct Memory {
  Control* control;
  double* q;         // [k] q of the target
  double* w;         // [k] the iterate
  double* grad;      // [k] q - H w
  double* sign;      // [k] -1, 0, +1: the active set's signs (0: inactive)
  int* active;       // [s] active coordinates, in the CPU's order
  double* current;   // [s] w on the active set
  double* solution;  // [s] the solve's v
  double* rhs;       // [s] q_A - l1 sign_A, then the forward substitution's residual
  double* forward;   // [s] y = L^-1 rhs, then the back substitution's residual
  double* pivot;     // [s] L_jj
  double* h_diag;    // [s] H_aa (the factor overwrites the system's diagonal)
  double* crossing;  // [s] 1 where the solution's sign is not the active sign
  double* step;      // [s] the step at which coordinate a crosses zero
  double* value;     // [s + 1] the objective at the end point (0) and at crossing a (a + 1)
  double* partial;   // [partials_per_thread][threads]
  double* system;    // k x k, column-major: upper triangle H_AA, lower triangle its Cholesky factor
};

__host__ __device__ inline Memory carve(const Plan& plan, double* shared, double* block_scratch) {
  const size_t k = static_cast<size_t>(plan.k);
  Memory mem{};
  double* cursor = shared;
  mem.control = reinterpret_cast<Control*>(cursor);
  cursor += sizeof(Control) / sizeof(double);
  auto take = [&](size_t doubles) {
    double* section = cursor;
    cursor += doubles;
    return section;
  };
  mem.q = take(k);
  mem.w = take(k);
  mem.grad = take(k);
  mem.sign = take(k);
  mem.current = take(k);
  mem.solution = take(k);
  mem.rhs = take(k);
  mem.forward = take(k);
  mem.pivot = take(k);
  mem.h_diag = take(k);
  mem.crossing = take(k);
  mem.step = take(k);
  mem.active = reinterpret_cast<int*>(cursor);  // k ints in k doubles
  cursor += k;
  mem.value = cursor;
  cursor += k + 1;
  mem.partial = cursor;
  cursor += static_cast<size_t>(partials_per_thread) * block_threads;
  mem.system = plan.system_in_shared ? cursor : block_scratch;
  return mem;
}

// ---- the CPU's arithmetic ----------------------------------------------------------------------

// std::max(a, b) exactly (b only when a < b), so NaNs are treated as the CPU treats them.
__host__ __device__ inline double max_as_std(double a, double b) { return a < b ? b : a; }

// host/lasso.cpp's lasso_duality_gap from the sums q.w, w.Hw, |w|_1 and ||q - Hw||_inf.
__host__ __device__ inline double duality_gap(double q_dot_w, double w_dot_hw, double w_norm1, double dual_norm,
                                              double yy, double l1) {
  const double r_norm2 = yy + w_dot_hw - 2.0 * q_dot_w;  // ||y - X w||^2
  double scale = 1.0, gap = r_norm2;
  if (dual_norm > l1) {
    scale = l1 / dual_norm;
    gap = 0.5 * r_norm2 * (1.0 + scale * scale);
  }
  return gap + l1 * w_norm1 - scale * (yy - q_dot_w);
}

// (H w)_l over the nonzero w (zeros add nothing), coordinates in ascending order.
__host__ __device__ inline double h_times_w(const Context& c, const Memory& mem, int l) {
  double sum = 0.0;
  for (int j = 0; j < c.k; ++j)
    if (mem.w[j] != 0.0) sum += c.H(l, j) * mem.w[j];
  return sum;
}

// The CPU's objective restricted to the active set at w_A = current + t (solution - current), or at
// the solution itself (at_solution: the CPU evaluates `target`, not current + 1 (target - current)).
__host__ __device__ inline double objective(const Context& c, const Memory& mem, int s, double t, bool at_solution) {
  const double* A = mem.system;
  auto point = [&](int a) {
    return at_solution ? mem.solution[a] : mem.current[a] + t * (mem.solution[a] - mem.current[a]);
  };
  double quadratic = 0, linear = 0, penalty = 0;
  for (int a = 0; a < s; ++a) {
    const double x_a = point(a);
    linear += mem.q[mem.active[a]] * x_a;
    penalty += fabs(x_a);
    for (int b = 0; b < s; ++b) {
      const double h_ab = a == b ? mem.h_diag[a] : a < b ? A[a + static_cast<size_t>(b) * c.k] : A[b + static_cast<size_t>(a) * c.k];
      quadratic += x_a * h_ab * point(b);
    }
  }
  return 0.5 * quadratic - linear + c.l1 * penalty;
}

// ---- phases (each says what a thread owns, i.e. writes) ------------------------------------------

__host__ __device__ inline void add_flags(uint32_t* flags, uint32_t bits) {
#ifdef __CUDA_ARCH__
  atomicOr(flags, bits);  // the k blocks of a network meet here (zeroed before the launch)
#else
  *flags |= bits;
#endif
}

// The target's row of V NaN and the CPU's flag (lasso()'s degenerate cases). Owns: strided V(target, l).
__host__ __device__ inline void write_nan_row(const Context& c, double* V, uint32_t* flags, uint32_t flag, int tid,
                                              int threads) {
  for (int l = tid; l < c.k; l += threads) V[c.target + static_cast<size_t>(l) * c.k] = nan("");
  if (tid == 0) add_flags(flags, flag);
}

// q, the warm start and its signs. Owns: strided coordinates l; thread 0: the control.
__host__ __device__ inline void load(const Context& c, const Memory& mem, const double* V, int tid, int threads) {
  for (int l = tid; l < c.k; l += threads) {
    mem.q[l] = c.Q(l, c.target);
    const double start = V[c.target + static_cast<size_t>(l) * c.k];
    const double w = isfinite(start) && c.H(l, l) > 0 ? start : 0.0;  // the CPU never activates h_ll <= 0
    mem.w[l] = w;
    mem.sign[l] = w > 0 ? 1.0 : w < 0 ? -1.0 : 0.0;
  }
  if (tid == 0) {
    Control& control = *mem.control;
    control.s = control.finished = control.singular = control.bad_solution = control.nonfinite = 0;
    control.iterations = control.optimal = control.optimal_next = 0;
    control.best_t = 1.0;
  }
}

// lasso()'s singular check: any non-finite entry of H or of Q (all k targets). Every thread that finds
// one writes the same 1 (nothing reads it in this phase). Thread 0 also lists the warm start's support.
__host__ __device__ inline void check_and_activate(const Context& c, const Memory& mem, int tid, int threads) {
  bool finite = true;
  for (int e = tid; e < c.k * c.k; e += threads)
    finite = finite && isfinite(c.H(e % c.k, e / c.k)) && isfinite(c.Q(e % c.k, e / c.k));
  if (!finite) mem.control->nonfinite = 1;
  if (tid == 0) {
    int s = 0;
    for (int l = 0; l < c.k; ++l)
      if (mem.w[l] != 0.0) mem.active[s++] = l;
    mem.control->s = s;
    mem.control->optimal = s == 0;  // a non-empty warm start is first solved on its support
  }
}

// The gradient q - Hw and each thread's worst violator among the zeros. Owns: grad[l] (strided), its partials.
__host__ __device__ inline void gradient(const Context& c, const Memory& mem, int tid, int threads) {
  double worst = c.l1 * (1 + 1e-12);
  int worst_index = -1;
  for (int l = tid; l < c.k; l += threads) {
    mem.grad[l] = mem.q[l] - h_times_w(c, mem, l);
    if (mem.sign[l] == 0 && c.H(l, l) > 0 && fabs(mem.grad[l]) > worst) {
      worst = fabs(mem.grad[l]);
      worst_index = l;
    }
  }
  mem.partial[tid] = worst;
  mem.partial[threads + tid] = worst_index;
}

// Thread 0: the block's worst violator (ties to the lower index, as the CPU's scan) joins the active
// set with the gradient's sign, or the search has finished. Owns (thread 0): the control, active, sign.
__host__ __device__ inline void add_violator(const Context& c, const Memory& mem, int tid, int threads) {
  if (tid != 0) return;
  double worst = c.l1 * (1 + 1e-12);
  int best = -1;
  for (int t = 0; t < threads; ++t) {
    const double violation = mem.partial[t];
    const int index = static_cast<int>(mem.partial[threads + t]);
    if (index >= 0 && (violation > worst || (violation == worst && index < best))) {
      worst = violation;
      best = index;
    }
  }
  Control& control = *mem.control;
  if (best < 0) {
    control.finished = 1;
    return;
  }
  mem.active[control.s++] = best;
  mem.sign[best] = mem.grad[best] > 0 ? 1.0 : -1.0;
}

// The system H_AA (full: its upper triangle stays H_AA), its diagonal, the right-hand side and the
// current point. Owns: strided entries of the system; strided a of the vectors.
__host__ __device__ inline void build_system(const Context& c, const Memory& mem, int s, int tid, int threads) {
  for (int e = tid; e < s * s; e += threads) {
    const int a = e % s, b = e / s;
    mem.system[a + static_cast<size_t>(b) * c.k] = c.H(mem.active[a], mem.active[b]);
  }
  for (int a = tid; a < s; a += threads) {
    const int l = mem.active[a];
    mem.h_diag[a] = c.H(l, l);
    mem.current[a] = mem.w[l];
    mem.rhs[a] = mem.q[l] - c.l1 * mem.sign[l];
  }
}

// Cholesky, column j: L_jj = sqrt(pivot) and the column below it divided by L_jj (Eigen's LLT fails
// on a pivot <= 0; a NaN pivot gives a NaN solution, which the CPU also treats as failure).
// Owns: system(i, j) for i > j (strided); thread 0: pivot[j], the singular flag. Reads (not writes) system(j, j).
__host__ __device__ inline void cholesky_column(const Context& c, const Memory& mem, int s, int j, int tid,
                                                int threads) {
  const double d = mem.system[j + static_cast<size_t>(j) * c.k];
  if (!(d > 0)) {
    if (tid == 0) mem.control->singular = 1;
    return;
  }
  const double l_jj = sqrt(d);
  if (tid == 0) mem.pivot[j] = l_jj;
  double* column = mem.system + static_cast<size_t>(j) * c.k;
  for (int i = j + 1 + tid; i < s; i += threads) column[i] /= l_jj;
}

// Cholesky, trailing update: system(i, l) -= L_ij L_lj for j < l <= i < s (lower triangle only).
// Owns: strided entries of the trailing lower triangle; reads column j (not written here).
__host__ __device__ inline void cholesky_update(const Context& c, const Memory& mem, int s, int j, int tid,
                                                int threads) {
  const int rest = s - j - 1;
  const double* column = mem.system + static_cast<size_t>(j) * c.k;
  for (int e = tid; e < rest * rest; e += threads) {
    const int i = j + 1 + e % rest, l = j + 1 + e / rest;
    if (i >= l) mem.system[i + static_cast<size_t>(l) * c.k] -= column[i] * column[l];
  }
}

// Forward substitution, row j of L y = rhs: y_j = rhs_j / L_jj, then rhs_i -= L_ij y_j below.
// Owns: forward[j] (its owner), rhs[i] for i > j (strided); reads rhs[j] (not written here).
__host__ __device__ inline void forward_row(const Context& c, const Memory& mem, int s, int j, int tid, int threads) {
  const double y_j = mem.rhs[j] / mem.pivot[j];
  if (tid == j % threads) mem.forward[j] = y_j;
  const double* column = mem.system + static_cast<size_t>(j) * c.k;
  for (int i = j + 1 + tid; i < s; i += threads) mem.rhs[i] -= column[i] * y_j;
}

// Back substitution, row j of L'v = y: v_j = y_j / L_jj, then y_i -= L_ji v_j above.
// Owns: solution[j] (its owner), forward[i] for i < j (strided); reads forward[j] (not written here).
__host__ __device__ inline void backward_row(const Context& c, const Memory& mem, int j, int tid, int threads) {
  const double v_j = mem.forward[j] / mem.pivot[j];
  if (tid == j % threads) mem.solution[j] = v_j;
  for (int i = tid; i < j; i += threads) mem.forward[i] -= mem.system[j + static_cast<size_t>(i) * c.k] * v_j;
}

// The line search's candidates: the objective at the solution (candidate 0) and at each sign
// crossing of a coordinate that was not just added (candidate a + 1; others +inf, never chosen).
// Owns: value[candidate], step[a], crossing[a] (strided); any thread: the same 1 in bad_solution.
__host__ __device__ inline void line_search_values(const Context& c, const Memory& mem, int s, int tid, int threads) {
  for (int candidate = tid; candidate <= s; candidate += threads) {
    if (candidate == 0) {
      mem.value[0] = objective(c, mem, s, 1.0, true);
      continue;
    }
    const int a = candidate - 1;
    const double current = mem.current[a], target = mem.solution[a];
    if (!isfinite(target)) mem.control->bad_solution = 1;
    const bool crosses = (target > 0 ? 1.0 : -1.0) != mem.sign[mem.active[a]];
    mem.crossing[a] = crosses ? 1.0 : 0.0;
    mem.value[candidate] = HUGE_VAL;
    if (crosses && current != 0.0) {  // a coordinate just added starts at its crossing
      mem.step[a] = current / (current - target);
      mem.value[candidate] = objective(c, mem, s, mem.step[a], false);
    }
  }
}

// Thread 0: the CPU's choice of step (the end point unless a crossing is strictly lower, the first
// such in order). Owns (thread 0): the control.
__host__ __device__ inline void choose_step(const Memory& mem, int s, int tid) {
  if (tid != 0) return;
  double best_t = 1.0, best_value = mem.value[0];
  bool signs_kept = true;
  for (int a = 0; a < s; ++a) {
    if (mem.crossing[a] == 0.0) continue;
    signs_kept = false;
    if (mem.value[a + 1] < best_value) {
      best_value = mem.value[a + 1];
      best_t = mem.step[a];
    }
  }
  mem.control->best_t = best_t;
  mem.control->optimal_next = best_t == 1.0 && signs_kept;
}

// The step: w_A = current + t (solution - current); coordinates that crossed become 0 and inactive.
// Owns: w and sign of the active coordinates (strided a).
__host__ __device__ inline void apply_step(const Memory& mem, int s, int tid, int threads) {
  const double best_t = mem.control->best_t;
  for (int a = tid; a < s; a += threads) {
    const double current = mem.current[a];
    const double next = current + best_t * (mem.solution[a] - current);
    const bool crossed = best_t < 1.0 && fabs(next) <= 1e-14 * fabs(current);
    const double w = crossed ? 0.0 : next;
    mem.w[mem.active[a]] = w;
    mem.sign[mem.active[a]] = w != 0.0 ? (w > 0 ? 1.0 : -1.0) : 0.0;
  }
}

// Thread 0: the active set keeps its nonzero coordinates, in order. Owns (thread 0): active, the control.
__host__ __device__ inline void compact_active(const Memory& mem, int tid) {
  if (tid != 0) return;
  Control& control = *mem.control;
  int kept = 0;
  for (int a = 0; a < control.s; ++a)
    if (mem.w[mem.active[a]] != 0.0) mem.active[kept++] = mem.active[a];
  control.s = kept;
  control.optimal = control.optimal_next;
  ++control.iterations;
}

// The duality gap's sums over the thread's coordinates. Owns: its partials.
__host__ __device__ inline void gap_partials(const Context& c, const Memory& mem, int tid, int threads) {
  double q_dot_w = 0.0, w_dot_hw = 0.0, w_norm1 = 0.0, dual_norm = 0.0;
  for (int l = tid; l < c.k; l += threads) {
    const double hw = h_times_w(c, mem, l);
    q_dot_w += mem.q[l] * mem.w[l];
    w_dot_hw += mem.w[l] * hw;
    w_norm1 += fabs(mem.w[l]);
    dual_norm = max_as_std(dual_norm, fabs(mem.q[l] - hw));
  }
  mem.partial[tid] = q_dot_w;
  mem.partial[threads + tid] = w_dot_hw;
  mem.partial[2 * threads + tid] = w_norm1;
  mem.partial[3 * threads + tid] = dual_norm;
}

// Thread 0: the gap (sums in thread order) and the verdict; the optimum into V's row by every thread.
// Owns: strided V(target, l); thread 0: the network's flag bits and this target's iterations.
__host__ __device__ inline void finish(const Context& c, const Memory& mem, double* V, uint32_t* flags,
                                       int* iterations, int tid, int threads) {
  for (int l = tid; l < c.k; l += threads) V[c.target + static_cast<size_t>(l) * c.k] = mem.w[l];
  if (tid != 0) return;
  double q_dot_w = 0.0, w_dot_hw = 0.0, w_norm1 = 0.0, dual_norm = 0.0;
  for (int t = 0; t < threads; ++t) {
    q_dot_w += mem.partial[t];
    w_dot_hw += mem.partial[threads + t];
    w_norm1 += mem.partial[2 * threads + t];
    dual_norm = max_as_std(dual_norm, mem.partial[3 * threads + t]);
  }
  const double yy = c.yy();
  const double gap = duality_gap(q_dot_w, w_dot_hw, w_norm1, dual_norm, yy, c.l1);
  const Control& control = *mem.control;
  const bool converged = control.finished && !control.singular && !control.bad_solution && gap < c.tol * yy;
  if (!converged) add_flags(flags, flag_not_converged);
  if (iterations) *iterations = control.iterations;
}

// ---- the block program ---------------------------------------------------------------------------

// One block: network `network`, target `target` (target >= k only when k == 0: flags only).
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void active_set_block(Block& block, const Plan& plan, const LassoActiveSetBatch& batch,
                                          int network, int target, double* shared, double* block_scratch) {
  Context c{};
  c.gram = GramView{batch.grams + static_cast<size_t>(network) * gram_doubles(batch.n), batch.n};
  c.intercept = batch.intercept;
  c.m = c.gram.transitions();
  c.l1 = batch.alpha * c.m;  // scikit-learn scales alpha by the number of samples
  c.tol = batch.tol;
  c.k = batch.k;
  c.target = target;
  c.max_iter = batch.max_iter;
  double* V = batch.V + static_cast<size_t>(network) * batch.k * batch.k;
  uint32_t* flags = batch.flags + network;
  int* iterations = batch.iterations ? batch.iterations + static_cast<size_t>(network) * batch.k + target : nullptr;
  const Memory mem = carve(plan, shared, block_scratch);

  // lasso()'s guards, in its order; every thread reads the same values, so the branches are uniform.
  if (c.m < 1.0) {  // no transitions
    block.parallel([&](int tid, int threads) {
      if (target < c.k) write_nan_row(c, V, flags, flag_too_few_samples, tid, threads);
      else if (tid == 0) add_flags(flags, flag_too_few_samples);
      if (tid == 0 && iterations && target < c.k) *iterations = -1;
    });
    return;
  }
  if (target >= c.k) return;  // k == 0: nothing to fit
  block.parallel([&](int tid, int threads) { load(c, mem, V, tid, threads); });
  block.parallel([&](int tid, int threads) { check_and_activate(c, mem, tid, threads); });
  if (mem.control->nonfinite) {
    block.parallel([&](int tid, int threads) {
      write_nan_row(c, V, flags, flag_singular, tid, threads);
      if (tid == 0 && iterations) *iterations = -1;
    });
    return;
  }

  // host/lasso.cpp's feature_sign_search. Each decision is read from shared memory after the
  // barrier of the phase that wrote it, and written again only several barriers later.
  for (int iteration = 0; iteration < c.max_iter; ++iteration) {
    if (mem.control->optimal) {
      block.parallel([&](int tid, int threads) { gradient(c, mem, tid, threads); });
      block.parallel([&](int tid, int threads) { add_violator(c, mem, tid, threads); });
      if (mem.control->finished) break;
    }
    const int s = mem.control->s;
    block.parallel([&](int tid, int threads) { build_system(c, mem, s, tid, threads); });
    for (int j = 0; j < s; ++j) {
      block.parallel([&](int tid, int threads) { cholesky_column(c, mem, s, j, tid, threads); });
      if (mem.control->singular) break;
      block.parallel([&](int tid, int threads) { cholesky_update(c, mem, s, j, tid, threads); });
    }
    if (mem.control->singular) break;  // the CPU would go on by coordinate descent: flagged here
    for (int j = 0; j < s; ++j)
      block.parallel([&](int tid, int threads) { forward_row(c, mem, s, j, tid, threads); });
    for (int j = s - 1; j >= 0; --j)
      block.parallel([&](int tid, int threads) { backward_row(c, mem, j, tid, threads); });
    block.parallel([&](int tid, int threads) { line_search_values(c, mem, s, tid, threads); });
    block.parallel([&](int tid, int) { choose_step(mem, s, tid); });
    if (mem.control->bad_solution) break;  // likewise
    block.parallel([&](int tid, int threads) { apply_step(mem, s, tid, threads); });
    block.parallel([&](int tid, int) { compact_active(mem, tid); });
  }
  block.parallel([&](int tid, int threads) { gap_partials(c, mem, tid, threads); });
  block.parallel([&](int tid, int threads) { finish(c, mem, V, flags, iterations, tid, threads); });
}

// One (network, target) fit per block. When the system is in global scratch (Loops), a grid of
// scratch_blocks blocks instead, each looping over fits with its own scratch (active_set_block ends
// at a barrier, so a block's next fit never overwrites what its last one still reads). Two
// instantiations, because the loop costs the straight kernel registers (ptxas: 72 and spills).
template <bool Loops>
__global__ void __launch_bounds__(block_threads) lasso_active_set_kernel(const Plan plan, const LassoActiveSetBatch batch) {
  extern __shared__ double shared[];
  DeviceBlock block;
  const int fits_per_network = batch.k > 0 ? batch.k : 1;
  if constexpr (!Loops) {
    active_set_block(block, plan, batch, static_cast<int>(blockIdx.x) / fits_per_network,
                     static_cast<int>(blockIdx.x) % fits_per_network, shared, nullptr);
  } else {
    const long long fits = static_cast<long long>(batch.networks) * fits_per_network;
    double* block_scratch = batch.scratch + static_cast<size_t>(blockIdx.x) * plan.scratch_doubles;
    for (long long fit = blockIdx.x; fit < fits; fit += gridDim.x)
      active_set_block(block, plan, batch, static_cast<int>(fit / fits_per_network),
                       static_cast<int>(fit % fits_per_network), shared, block_scratch);
  }
}

// The launch's grid: one block per fit, or at most scratch_blocks when each needs global scratch.
long long grid_blocks(const Plan& plan, const LassoActiveSetBatch& batch) {
  const long long fits = static_cast<long long>(batch.networks) * std::max(batch.k, 1);
  return plan.system_in_shared ? fits : std::min<long long>(fits, batch.scratch_blocks);
}

void check_batch(const LassoActiveSetBatch& batch) {
  if (batch.networks < 0 || batch.n < 1 || batch.k < 0 || batch.k > batch.n || batch.max_iter < 0)
    throw std::invalid_argument("lasso_active_set: bad batch (networks " + std::to_string(batch.networks) + ", n " +
                                std::to_string(batch.n) + ", k " + std::to_string(batch.k) + ", max_iter " +
                                std::to_string(batch.max_iter) + ")");
  if (batch.networks > 0 && (!batch.grams || !batch.flags || (batch.k > 0 && !batch.V)))
    throw std::invalid_argument("lasso_active_set: missing input or output array");
  if (batch.scratch_blocks < 0)
    throw std::invalid_argument("lasso_active_set: scratch_blocks < 0 (" + std::to_string(batch.scratch_blocks) + ")");
}

}  // namespace

size_t lasso_active_set_scratch_doubles(int k, size_t shared_limit_bytes) {
  return plan_active_set(k, shared_limit_bytes).scratch_doubles;
}

int lasso_active_set_scratch_blocks(int k, size_t shared_limit_bytes, int multiprocessors) {
  const Plan plan = plan_active_set(k, shared_limit_bytes);
  if (plan.system_in_shared) return 0;
  if (multiprocessors <= 0) return 3;  // host emulation: few enough that blocks reuse their scratch
  int resident = 0;  // per multiprocessor: 3 at k = 500 on an H100 (shared memory bounds it)
  allow_dynamic_shared_memory(lasso_active_set_kernel<true>, plan.shared_bytes, "lasso_active_set_scratch_blocks");
  CS_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, lasso_active_set_kernel<true>, block_threads,
                                                              plan.shared_bytes));
  return multiprocessors * std::max(resident, 1);  // one wave: fits go to blocks in turn (f mod blocks)
}

void launch_lasso_active_set(const LassoActiveSetBatch& batch, size_t shared_limit_bytes, cudaStream_t stream) {
  check_batch(batch);
  if (batch.networks == 0) return;
  const Plan plan = plan_active_set(batch.k, shared_limit_bytes);
  if (plan.scratch_doubles > 0 && (!batch.scratch || batch.scratch_blocks == 0))
    throw std::invalid_argument("lasso_active_set: scratch needed (scratch and scratch_blocks)");
  const long long blocks = grid_blocks(plan, batch);
  if (blocks > std::numeric_limits<int>::max())
    throw std::invalid_argument("lasso_active_set: too many networks for one launch");
  // The k fits of a network gather their flags by atomicOr: zero them first.
  CS_CUDA_CHECK(cudaMemsetAsync(batch.flags, 0, sizeof(uint32_t) * batch.networks, stream));
  const auto kernel = plan.system_in_shared ? lasso_active_set_kernel<false> : lasso_active_set_kernel<true>;
  allow_dynamic_shared_memory(kernel, plan.shared_bytes, "launch_lasso_active_set");
  kernel<<<static_cast<int>(blocks), block_threads, plan.shared_bytes, stream>>>(plan, batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_lasso_active_set_on_host(const LassoActiveSetBatch& batch, size_t shared_limit_bytes) {
  check_batch(batch);
  if (batch.networks == 0) return;
  const Plan plan = plan_active_set(batch.k, shared_limit_bytes);
  if (plan.scratch_doubles > 0 && batch.scratch && batch.scratch_blocks == 0)
    throw std::invalid_argument("lasso_active_set: scratch given without scratch_blocks");
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();
  // Uninitialised memory is NaN here, so a read before a write shows up in the results.
  std::vector<double> shared(plan.shared_bytes / sizeof(double) + 1);
  // The caller's scratch when given (so its size is exercised), else one block's worth of our own.
  std::vector<double> own(batch.scratch ? 0 : plan.scratch_doubles + 1);
  std::fill(batch.flags, batch.flags + batch.networks, 0u);
  const int fits_per_network = std::max(batch.k, 1);
  const long long fits = static_cast<long long>(batch.networks) * fits_per_network;
  const long long blocks = batch.scratch ? grid_blocks(plan, batch) : fits;
  // The kernel's fits in its order: fit f on block f mod blocks, with that block's scratch.
  for (long long fit = 0; fit < fits; ++fit) {
    std::fill(shared.begin(), shared.end(), poison);
    double* block_scratch = nullptr;
    if (!plan.system_in_shared) {
      block_scratch = batch.scratch ? batch.scratch + static_cast<size_t>(fit % blocks) * plan.scratch_doubles : own.data();
      std::fill(block_scratch, block_scratch + plan.scratch_doubles, poison);
    }
    emulate_block(block_threads, [&](auto& block) {
      active_set_block(block, plan, batch, static_cast<int>(fit / fits_per_network),
                       static_cast<int>(fit % fits_per_network), shared.data(), block_scratch);
    });
  }
}

}  // namespace causalsweep::cuda
