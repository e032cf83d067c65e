// The lasso on the GPU: scikit-learn's cyclic coordinate descent on the Gram, for every target of
// every network of a batch (host/estimators.cpp's lasso() with LassoSolver::cyclic).
//
// Per network the moments are those of regression_moments: H = X'X (k x k), q = X'y and y'y per
// target, m transitions, centred when there is an intercept. Each target i minimises
//   1/(2m) ||y_i - X w||^2 + alpha ||w||_1
// by sweeps over the coordinates j = 0 .. k-1 (host/lasso.cpp's sweep(): same order, same formulas,
// h_jj == 0 skipped), keeping Hw = H w up to date, until scikit-learn's stopping rule holds: the
// duality gap is looked at only when max|w| == 0, max|dw| / max|w| < tol or at the last sweep, and
// the target has converged when that gap < tol * y'y.
//
// Thread mapping. A block works on one network and a group of its targets (targets_per_block of
// them; k = 100 takes 3 blocks). Each target belongs to a group of `group` threads, and thread g of
// the group owns the coordinates l = g, g + group, g + 2 group, ... (at most `slots` of them): their
// w_l, (Hw)_l and q_l live in that thread's registers for the whole solve. The coordinate loop is
// sequential by nature, so the block walks through it in lock-step, one phase (one barrier) per
// coordinate j: every thread adds delta_j H(l, j) to its (Hw)_l, then the owner of coordinate j+1,
// whose (Hw)_{j+1} is now final, computes w_{j+1}'s update and publishes delta_{j+1} for the next
// phase (a per-target slot, double-buffered by the parity of j so that no phase reads what it writes).
// All targets of a warp read the same H(l, j), so H is read by broadcast; H sits in shared memory
// when it fits (k up to about 155 on H100), else in global scratch, centred once per network by a
// small kernel. The duality gap needs four sums per target: each thread adds its own coordinates in
// the last phase of a sweep and the group's first thread combines them in the next phase.
// Cost: k + 1 barriers per sweep; a block sweeps until its slowest target stops (finished targets'
// threads idle), and ptxas gives the kernel 128 registers without spills (one block of <= 512
// threads per SM). Holding w, Hw, q in registers leaves shared memory to H alone and makes the
// H(l, j) broadcast the only shared-memory traffic of an update.
//
// Agreement with the CPU. The iterates use the CPU's formulas in its order, with fused multiply-adds
// exactly where g++ contracts the CPU's code (the release build is -march=native; every x86-64 host
// of an H100 has FMA): rho = fma(h_jj, w_j, q_j - (Hw)_j) and (Hw)_l = fma(delta, h_lj, (Hw)_l). The
// centring, the soft threshold and the division are plain IEEE operations on both sides (the host
// emulation calls the correctly rounded fma() too, whatever its compiler flags). So w is the
// CPU's bit for bit (tests/test_cuda_lasso.cpp checks it), as long as both stop at the same sweep.
// Rounding differs only in the duality gap: its four sums are added in another order (the group's
// partial sums instead of Eigen's vectorised dot products) and nvcc may contract the gap formula. The
// gap is a difference of terms of size y'y computed to ~1e-16 y'y against a threshold tol * y'y, so
// at worst, when a gap lands within that rounding of the threshold, one side stops a sweep later
// (different w within the tolerance, one more sweep reported). A CPU build without FMA (no
// -march=native) rounds rho and Hw differently from this code: then V agrees to ~1e-12 (measured
// 2.4e-12 after 1000 sweeps of an ill-conditioned problem).
//
// Like kernels/simulate_gram.cu, every kernel is a block program (block_program.cuh) that the host
// emulator also runs; the per-thread registers are a ThreadSlots of the thread's own on the GPU (and
// on a fiber of the host emulation), and one ThreadSlots per emulated thread phase by phase.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "block_program.cuh"
#include "causalsweep/flags.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "lasso_kernels.hpp"
#include "lasso_moments.cuh"
#include "shared_memory.cuh"

namespace causalsweep::cuda {
namespace {

constexpr int slots = 8;           // coordinates per thread, kept in registers
constexpr int max_threads = 512;   // the lasso kernel's __launch_bounds__ (<= 128 registers per thread)
constexpr int centre_threads = 256;
constexpr int partial_count = 6;   // per thread and sweep: max|dw|, max|w|, q.w, w.Hw, |w|_1, max|q - Hw|
constexpr int max_k = slots * max_threads;

// ---- plan ------------------------------------------------------------------------------------

struct LassoPlan {
  int k = 0;
  int group = 1;               // threads per target (each owns <= slots coordinates)
  int targets_per_block = 0;
  int blocks_per_network = 1;
  int threads = 1;             // group * targets_per_block
  bool h_in_shared = false;
  size_t shared_bytes = 0;     // dynamic shared memory per block
  size_t scratch_doubles = 0;  // global scratch per network: the centred H when it is not in shared memory
};

// Per target, in shared memory.
struct TargetState {
  double pending[2];  // delta of the coordinate being applied; coordinate j uses pending[j & 1]
  double yy;          // y'y (centred)
  double gap_tol;     // tol * y'y
  int running;        // still sweeping
  int converged;
  int sweeps;         // sweeps done when it stopped (or so far)
  int unused;
};
static_assert(sizeof(TargetState) % sizeof(double) == 0, "shared sections are counted in doubles");

__host__ __device__ inline size_t small_shared_doubles(int targets, int threads) {
  return static_cast<size_t>(targets) * (sizeof(TargetState) / sizeof(double)) +
         static_cast<size_t>(threads) * partial_count + 1;  // + the block's non-finite flag
}

LassoPlan plan_lasso(int k, size_t shared_limit_bytes) {
  if (k < 0 || k > max_k)
    throw std::invalid_argument("lasso: k = " + std::to_string(k) + " is outside 0 .. " + std::to_string(max_k));
  LassoPlan plan;
  plan.k = k;
  if (k > 0) {
    plan.group = (k + slots - 1) / slots;
    const int most_targets = std::min(k, max_threads / plan.group);
    plan.blocks_per_network = (k + most_targets - 1) / most_targets;
    plan.targets_per_block = (k + plan.blocks_per_network - 1) / plan.blocks_per_network;  // balanced blocks
    plan.threads = plan.group * plan.targets_per_block;
  }
  const size_t small = small_shared_doubles(plan.targets_per_block, plan.threads);
  const size_t h_doubles = static_cast<size_t>(k) * k;
  plan.h_in_shared = (h_doubles + small) * sizeof(double) <= shared_limit_bytes;
  plan.shared_bytes = ((plan.h_in_shared ? h_doubles : 0) + small) * sizeof(double);
  plan.scratch_doubles = plan.h_in_shared ? 0 : h_doubles;
  return plan;
}

// ---- the moments (regression_moments in host/estimators.cpp) ----------------------------------

// The centred H of a network into `H` (k x k, column-major). Owns: strided entries.
__host__ __device__ inline void centre_h(const GramView& g, int k, bool intercept, double* H, int tid, int threads) {
  const double m = g.transitions();
  for (int e = tid; e < k * k; e += threads) H[e] = centred_h(g, intercept, m, e % k, e / k);
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

// ---- per-thread registers ----------------------------------------------------------------------

// What a thread keeps across phases: its coordinates l = g + s group (s < slots) of its target.
// Indexed only by compile-time constants (unrolled loops), so on the GPU it stays in registers.
struct ThreadSlots {
  double w[slots];
  double hw[slots];  // (H w)_l
  double q[slots];
  double dw_max;     // this sweep's max |delta| and max |w_new| over the coordinates it owns
  double w_max;
};

// On the GPU: the thread's own ThreadSlots, whatever tid says.
struct DeviceRegisters {
  ThreadSlots own;
  __host__ __device__ ThreadSlots& operator()(int) { return own; }
};

// On the host: one ThreadSlots per emulated thread.
struct HostRegisters {
  ThreadSlots* all;
  __host__ __device__ ThreadSlots& operator()(int tid) { return all[tid]; }
};

// ---- memory of one block -----------------------------------------------------------------------

struct BlockMemory {
  const double* H;       // k x k centred, column-major: shared memory or the network's scratch
  TargetState* targets;  // [targets_per_block]
  double* partials;      // [threads][partial_count]
  int* nonfinite;        // set when H or Q has a non-finite entry
};

__host__ __device__ inline BlockMemory carve(const LassoPlan& plan, const LassoBatch& batch, int network,
                                             double* shared) {
  BlockMemory mem{};
  double* cursor = shared;
  if (plan.h_in_shared) {
    mem.H = cursor;
    cursor += static_cast<size_t>(plan.k) * plan.k;
  } else {
    mem.H = batch.scratch + static_cast<size_t>(network) * plan.scratch_doubles;
  }
  mem.targets = reinterpret_cast<TargetState*>(cursor);
  cursor += static_cast<size_t>(plan.targets_per_block) * (sizeof(TargetState) / sizeof(double));
  mem.partials = cursor;
  cursor += static_cast<size_t>(plan.threads) * partial_count;
  mem.nonfinite = reinterpret_cast<int*>(cursor);
  return mem;
}

// Results of several blocks of one network meet in its flags and sweeps (zeroed before the launch).
__host__ __device__ inline void add_flags(uint32_t* flags, uint32_t bits) {
#ifdef __CUDA_ARCH__
  atomicOr(flags, bits);
#else
  *flags |= bits;
#endif
}

__host__ __device__ inline void raise_sweeps(int* sweeps, int value) {
#ifdef __CUDA_ARCH__
  atomicMax(sweeps, value);
#else
  *sweeps = std::max(*sweeps, value);
#endif
}

// ---- phases --------------------------------------------------------------------------------------

// What every phase needs to know about the block.
struct BlockContext {
  LassoPlan plan;
  BlockMemory mem;
  int k;
  int first_target;  // network's target index of the block's target 0
  int targets;       // targets in this block (the last block of a network may have fewer)
  double l1;         // alpha * m
  double tol;
  int max_iter;
  double* V;         // this network's k x k output
};

// The update of coordinate j of a target by the thread that owns it, in its slot s: scikit-learn's
// soft-threshold step (host/lasso.cpp's sweep()). Publishes delta_j (0: nothing changes).
__host__ __device__ inline void propose(const BlockContext& c, ThreadSlots& mine, int s, int j, TargetState& state) {
  const double h_jj = c.mem.H[j + static_cast<size_t>(j) * c.k];
  double delta = 0.0;
  if (h_jj != 0.0) {  // a regressor that is always 0 keeps weight 0
    const double w_old = mine.w[s];
    const double rho = fma(h_jj, w_old, mine.q[s] - mine.hw[s]);  // correlation with the partial residual
    const double w_new = copysign(max_as_std(fabs(rho) - c.l1, 0.0), rho) / h_jj;
    if (w_new != w_old) {
      delta = w_new - w_old;
      mine.w[s] = w_new;
      mine.dw_max = max_as_std(mine.dw_max, fabs(delta));
    }
    mine.w_max = max_as_std(mine.w_max, fabs(w_new));
  }
  state.pending[j & 1] = delta;
}

// Moments in place: H centred into shared memory (when it lives there), the thread's q, w = Hw = 0,
// the targets' y'y and state. Owns: strided H entries, its registers, its target's state (g == 0).
template <class Registers>
__host__ __device__ void load(const BlockContext& c, const LassoBatch& batch, const GramView& gram, double m,
                              Registers& registers, double* shared_h, int tid, int threads) {
  if (tid == 0) *c.mem.nonfinite = 0;
  if (shared_h) centre_h(gram, c.k, batch.intercept, shared_h, tid, threads);
  const int t = tid / c.plan.group, g = tid % c.plan.group;
  if (t >= c.targets) return;
  const int target = c.first_target + t;
  ThreadSlots& mine = registers(tid);
CS_UNROLL
  for (int s = 0; s < slots; ++s) {
    const int l = g + s * c.plan.group;
    mine.q[s] = l < c.k ? centred_q(gram, batch.intercept, m, l, target) : 0.0;
    mine.w[s] = 0.0;
    mine.hw[s] = 0.0;
  }
  mine.dw_max = mine.w_max = 0.0;
  if (g == 0) {
    TargetState& state = c.mem.targets[t];
    state.yy = centred_yy(gram, batch.intercept, m, target);
    state.gap_tol = c.tol * state.yy;
    state.running = c.max_iter > 0 ? 1 : 0;
    state.converged = 0;
    state.sweeps = 0;
  }
}

// lasso()'s singular check: any non-finite entry of H or of Q (all k targets). Every thread that finds
// one writes the same 1 (no thread reads the flag in this phase). Owns: strided entries to check.
__host__ __device__ inline void check_finite(const BlockContext& c, const LassoBatch& batch, const GramView& gram,
                                             double m, int tid, int threads) {
  bool finite = true;
  for (int e = tid; e < c.k * c.k; e += threads)
    finite = finite && isfinite(c.mem.H[e]) && isfinite(centred_q(gram, batch.intercept, m, e % c.k, e / c.k));
  if (!finite) *c.mem.nonfinite = 1;
}

// Every output of the block's targets NaN, with the CPU's flag. Owns: its rows of V (strided).
__host__ __device__ inline void write_all_nan(const BlockContext& c, uint32_t* flags, uint32_t flag, int tid,
                                              int threads) {
  const double not_a_number = nan("");
  for (int e = tid; e < c.targets * c.k; e += threads)
    c.V[(c.first_target + e % c.targets) + static_cast<size_t>(e / c.targets) * c.k] = not_a_number;
  if (tid == 0) add_flags(flags, flag);
}

// Between sweeps. The first thread of each running target closes sweep `sweep` (> 0): it combines the
// group's partials and applies the stopping rule; a target still running then starts the next sweep
// with the proposal for coordinate 0 (its own slot 0). Every thread resets its sweep maxima.
// Owns: its registers; g == 0: its target's state.
template <class Registers>
__host__ __device__ void close_and_start_sweep(const BlockContext& c, Registers& registers, int sweep, int tid) {
  const int group = c.plan.group, t = tid / group, g = tid % group;
  if (t >= c.targets) return;
  ThreadSlots& mine = registers(tid);
  mine.dw_max = mine.w_max = 0.0;
  if (g != 0) return;
  TargetState& state = c.mem.targets[t];
  if (!state.running) return;
  if (sweep > 0) {
    double dw_max = 0.0, w_max = 0.0, q_dot_w = 0.0, w_dot_hw = 0.0, w_norm1 = 0.0, dual_norm = 0.0;
    for (int member = 0; member < group; ++member) {
      const double* part = c.mem.partials + static_cast<size_t>(tid + member) * partial_count;
      dw_max = max_as_std(dw_max, part[0]);
      w_max = max_as_std(w_max, part[1]);
      q_dot_w += part[2];
      w_dot_hw += part[3];
      w_norm1 += part[4];
      dual_norm = max_as_std(dual_norm, part[5]);
    }
    state.sweeps = sweep;
    // scikit-learn looks at the gap only once the steps are small (or at the last sweep).
    if (w_max == 0.0 || dw_max / w_max < c.tol || sweep == c.max_iter) {
      const double gap = duality_gap(q_dot_w, w_dot_hw, w_norm1, dual_norm, state.yy, c.l1);
      if (gap < state.gap_tol) {
        state.converged = 1;
        state.running = 0;
      }
    }
    if (sweep == c.max_iter) state.running = 0;
    if (!state.running) return;
  }
  propose(c, mine, 0, 0, state);
}

// The thread's share of the duality gap's sums, over the coordinates it owns. Owns: its partials.
__host__ __device__ inline void write_partials(const BlockContext& c, const ThreadSlots& mine, int g, int tid) {
  double q_dot_w = 0.0, w_dot_hw = 0.0, w_norm1 = 0.0, dual_norm = 0.0;
CS_UNROLL
  for (int s = 0; s < slots; ++s)
    if (g + s * c.plan.group < c.k) {
      q_dot_w += mine.q[s] * mine.w[s];
      w_dot_hw += mine.w[s] * mine.hw[s];
      w_norm1 += fabs(mine.w[s]);
      dual_norm = max_as_std(dual_norm, fabs(mine.q[s] - mine.hw[s]));
    }
  double* part = c.mem.partials + static_cast<size_t>(tid) * partial_count;
  part[0] = mine.dw_max;
  part[1] = mine.w_max;
  part[2] = q_dot_w;
  part[3] = w_dot_hw;
  part[4] = w_norm1;
  part[5] = dual_norm;
}

// Coordinate j = owner_g + owner_s * group of every running target: each thread adds delta_j H(l, j)
// to its (Hw)_l; then the owner of coordinate j+1 proposes it (reading only its own registers), or,
// after the last coordinate, every thread writes its partial sums. Owns: its registers and partials,
// the owner: pending[(j + 1) & 1] (this phase reads only pending[j & 1]).
template <class Registers>
__host__ __device__ void coordinate(const BlockContext& c, Registers& registers, int j, int owner_g, int owner_s,
                                    int tid) {
  const int group = c.plan.group, t = tid / group, g = tid % group;
  if (t >= c.targets) return;
  TargetState& state = c.mem.targets[t];
  if (!state.running) return;
  ThreadSlots& mine = registers(tid);
  const double delta = state.pending[j & 1];
  if (delta != 0.0) {
    const double* h_column = c.mem.H + static_cast<size_t>(j) * c.k;
CS_UNROLL
    for (int s = 0; s < slots; ++s) {
      const int l = g + s * group;
      if (l < c.k) mine.hw[s] = fma(delta, h_column[l], mine.hw[s]);
    }
  }
  if (j + 1 == c.k) {
    write_partials(c, mine, g, tid);
  } else if (owner_g + 1 < group) {  // coordinate j+1 is the next thread's, same slot
    if (g == owner_g + 1) propose(c, mine, owner_s, j + 1, state);
  } else if (owner_s + 1 < slots) {  // coordinate j+1 is the first thread's, next slot
    if (g == 0) propose(c, mine, owner_s + 1, j + 1, state);
  }
}

// The results: w of each target into its row of V; not-converged flags and the most sweeps.
// Owns: its coordinates' entries of V; g == 0: its target's contribution to flags and sweeps.
template <class Registers>
__host__ __device__ void write_results(const BlockContext& c, const LassoBatch& batch, Registers& registers,
                                       int network, int tid) {
  const int group = c.plan.group, t = tid / group, g = tid % group;
  if (t >= c.targets) return;
  const ThreadSlots& mine = registers(tid);
  const int target = c.first_target + t;
CS_UNROLL
  for (int s = 0; s < slots; ++s) {
    const int l = g + s * group;
    if (l < c.k) c.V[target + static_cast<size_t>(l) * c.k] = mine.w[s];
  }
  if (g == 0) {
    const TargetState& state = c.mem.targets[t];
    if (!state.converged) add_flags(batch.flags + network, flag_not_converged);
    raise_sweeps(batch.sweeps + network, state.sweeps);
  }
}

// ---- block programs ----------------------------------------------------------------------------

// One block of the lasso: network `network`, its targets chunk * targets_per_block onwards.
#pragma nv_exec_check_disable
template <class Block, class Registers>
__host__ __device__ void lasso_block(Block& block, Registers& registers, const LassoPlan& plan,
                                     const LassoBatch& batch, int network, int chunk, double* shared) {
  BlockContext c{};
  c.plan = plan;
  c.mem = carve(plan, batch, network, shared);
  c.k = batch.k;
  c.first_target = chunk * plan.targets_per_block;
  c.targets = plan.targets_per_block < batch.k - c.first_target ? plan.targets_per_block : batch.k - c.first_target;
  c.tol = batch.tol;
  c.max_iter = batch.max_iter;
  c.V = batch.V + static_cast<size_t>(network) * batch.k * batch.k;
  const GramView gram{batch.grams + static_cast<size_t>(network) * gram_doubles(batch.n), batch.n};
  const double m = gram.transitions();
  c.l1 = batch.alpha * m;  // scikit-learn scales alpha by the number of samples
  uint32_t* flags = batch.flags + network;

  // lasso()'s guards, in its order; every thread reads the same values, so the branches are uniform.
  if (m < 1.0) {
    block.parallel([&](int tid, int threads) { write_all_nan(c, flags, flag_too_few_samples, tid, threads); });
    return;
  }
  double* shared_h = plan.h_in_shared ? shared : nullptr;
  block.parallel([&](int tid, int threads) { load(c, batch, gram, m, registers, shared_h, tid, threads); });
  block.parallel([&](int tid, int threads) { check_finite(c, batch, gram, m, tid, threads); });
  if (*c.mem.nonfinite) {
    block.parallel([&](int tid, int threads) { write_all_nan(c, flags, flag_singular, tid, threads); });
    return;
  }

  // Sweeps in lock-step until no target of the block runs (max_iter at most).
  const int group = plan.group;
  for (int sweep = 0;; ++sweep) {
    block.parallel([&](int tid, int) { close_and_start_sweep(c, registers, sweep, tid); });
    bool any_running = false;  // read by every thread after the barrier: a uniform decision
    for (int t = 0; t < c.targets; ++t) any_running = any_running || c.mem.targets[t].running;
    if (!any_running) break;
    // Coordinates in order, j = g + s group; s unrolled so each owner's slot index is a constant.
CS_UNROLL
    for (int s = 0; s < slots; ++s)
      for (int g = 0; g < group && g + s * group < c.k; ++g)
        block.parallel([&](int tid, int) { coordinate(c, registers, g + s * group, g, s, tid); });
  }
  block.parallel([&](int tid, int) { write_results(c, batch, registers, network, tid); });
}

// The centred H of one network into its global scratch (when H does not fit in shared memory).
#pragma nv_exec_check_disable
template <class Block>
__host__ __device__ void centre_block(Block& block, const LassoPlan& plan, const LassoBatch& batch, int network) {
  const GramView gram{batch.grams + static_cast<size_t>(network) * gram_doubles(batch.n), batch.n};
  double* H = batch.scratch + static_cast<size_t>(network) * plan.scratch_doubles;
  if (gram.transitions() < 1.0) return;  // the lasso block will not read it
  block.parallel([&](int tid, int threads) { centre_h(gram, plan.k, batch.intercept, H, tid, threads); });
}

__global__ void __launch_bounds__(max_threads) lasso_kernel(const LassoPlan plan, const LassoBatch batch) {
  extern __shared__ double shared[];
  DeviceBlock block;
  DeviceRegisters registers;
  const int network = static_cast<int>(blockIdx.x) / plan.blocks_per_network;
  const int chunk = static_cast<int>(blockIdx.x) % plan.blocks_per_network;
  lasso_block(block, registers, plan, batch, network, chunk, shared);
}

__global__ void __launch_bounds__(centre_threads) centre_kernel(const LassoPlan plan, const LassoBatch batch) {
  DeviceBlock block;
  centre_block(block, plan, batch, static_cast<int>(blockIdx.x));
}

void check_batch(const LassoBatch& batch) {
  if (batch.networks < 0 || batch.n < 1 || batch.k < 0 || batch.k > batch.n)
    throw std::invalid_argument("lasso: bad batch (networks " + std::to_string(batch.networks) + ", n " +
                                std::to_string(batch.n) + ", k " + std::to_string(batch.k) + ")");
  if (batch.networks > 0 && (!batch.grams || !batch.flags || !batch.sweeps || (batch.k > 0 && !batch.V)))
    throw std::invalid_argument("lasso: missing input or output array");
}

}  // namespace

size_t lasso_scratch_doubles(int k, size_t shared_limit_bytes) {
  return plan_lasso(k, shared_limit_bytes).scratch_doubles;
}

void launch_lasso(const LassoBatch& batch, size_t shared_limit_bytes, cudaStream_t stream) {
  check_batch(batch);
  if (batch.networks == 0) return;
  const LassoPlan plan = plan_lasso(batch.k, shared_limit_bytes);
  if (plan.scratch_doubles > 0 && !batch.scratch) throw std::invalid_argument("lasso: scratch needed");
  const long long blocks = static_cast<long long>(batch.networks) * plan.blocks_per_network;
  if (blocks > std::numeric_limits<int>::max()) throw std::invalid_argument("lasso: too many networks for one launch");
  // flags and sweeps gather several blocks' results (atomicOr / atomicMax): zero them first.
  CS_CUDA_CHECK(cudaMemsetAsync(batch.flags, 0, sizeof(uint32_t) * batch.networks, stream));
  CS_CUDA_CHECK(cudaMemsetAsync(batch.sweeps, 0, sizeof(int) * batch.networks, stream));
  if (!plan.h_in_shared) {
    centre_kernel<<<batch.networks, centre_threads, 0, stream>>>(plan, batch);
    CS_CUDA_CHECK(cudaGetLastError());
  }
  allow_dynamic_shared_memory(lasso_kernel, plan.shared_bytes, "launch_lasso");
  lasso_kernel<<<static_cast<int>(blocks), plan.threads, plan.shared_bytes, stream>>>(plan, batch);
  CS_CUDA_CHECK(cudaGetLastError());
}

void emulate_lasso_on_host(const LassoBatch& batch, size_t shared_limit_bytes) {
  check_batch(batch);
  if (batch.networks == 0) return;
  const LassoPlan plan = plan_lasso(batch.k, shared_limit_bytes);
  constexpr double poison = std::numeric_limits<double>::quiet_NaN();
  // Uninitialised memory is NaN here, so a read before a write shows up in the results.
  std::vector<double> shared(plan.shared_bytes / sizeof(double) + 1);
  // The caller's scratch when given (so its size is exercised), else our own; NaN either way.
  const size_t scratch_doubles = static_cast<size_t>(batch.networks) * plan.scratch_doubles;
  std::vector<double> own(batch.scratch ? 0 : scratch_doubles + 1);
  LassoBatch host_batch = batch;
  if (!batch.scratch) host_batch.scratch = own.data();
  std::fill(host_batch.scratch, host_batch.scratch + scratch_doubles, poison);
  std::vector<ThreadSlots> slots_of_threads(static_cast<size_t>(plan.threads));
  std::fill(batch.flags, batch.flags + batch.networks, 0u);
  std::fill(batch.sweeps, batch.sweeps + batch.networks, 0);
  if (!plan.h_in_shared) {
    for (int network = 0; network < batch.networks; ++network)
      emulate_block(centre_threads, [&](auto& block) { centre_block(block, plan, host_batch, network); });
  }
  auto poison_slots = [&](ThreadSlots& mine) {
    std::fill(std::begin(mine.w), std::end(mine.w), poison);
    std::fill(std::begin(mine.hw), std::end(mine.hw), poison);
    std::fill(std::begin(mine.q), std::end(mine.q), poison);
    mine.dw_max = mine.w_max = poison;
  };
  for (int network = 0; network < batch.networks; ++network)
    for (int chunk = 0; chunk < plan.blocks_per_network; ++chunk) {
      std::fill(shared.begin(), shared.end(), poison);
      emulate_block(plan.threads, [&](auto& block) {
        if constexpr (std::is_same_v<std::decay_t<decltype(block)>, HostBlock>) {  // every thread's slots here
          for (ThreadSlots& mine : slots_of_threads) poison_slots(mine);
          HostRegisters registers{slots_of_threads.data()};
          lasso_block(block, registers, plan, host_batch, network, chunk, shared.data());
        } else {  // on its fiber, a thread's slots are its own, as on the GPU
          DeviceRegisters registers;
          poison_slots(registers.own);
          lasso_block(block, registers, plan, host_batch, network, chunk, shared.data());
        }
      });
    }
}

}  // namespace causalsweep::cuda
