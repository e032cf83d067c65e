#pragma once
// The active-set lasso on the GPU: feature-sign search on the Gram for every target of many networks,
// warm-started. It computes host/estimators.cpp's lasso(gram, k, alpha, intercept, tol, max_iter,
// LassoSolver::active_set) (host/lasso.cpp's feature_sign_search + lasso_duality_gap): the exact lasso
// optimum, certified by scikit-learn's duality gap < tol * y'y. Where the CPU would fall back to
// coordinate descent (singular block, iteration cap, gap at the tolerance) this kernel flags
// flag_not_converged instead and keeps its best point (kernels/lasso_active_set.cu says more).
//
// Kept C++17-clean and plain (structs, pointers): g++ (C++20) and nvcc include it.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace causalsweep::cuda {

// One batch: `networks` networks with the same n and k. Pointers are device pointers for
// launch_lasso_active_set and host pointers for emulate_lasso_active_set_on_host.
struct LassoActiveSetBatch {
  int networks = 0;
  int n = 0;                      // neurons of every network's Gram (layout: cuda_kernels.hpp gram_doubles)
  int k = 0;                      // observed neurons: the leading k
  bool intercept = false;
  double alpha = 0.01, tol = 1e-4;
  int max_iter = 1000;            // feature-sign iterations per target before giving up (flagged)
  const double* grams = nullptr;  // [networks][gram_doubles(n)]
  double* V = nullptr;            // [networks][k * k] IN: a warm start (row i = target i's weights; all
                                  // zeros is valid), OUT: the optimum. V(i, j) at i + j k
  uint32_t* flags = nullptr;      // [networks] out (written, not ORed): as the CPU's lasso()
  double* scratch = nullptr;      // [min(networks * k, scratch_blocks)][lasso_active_set_scratch_doubles(k, shared_limit)],
                                  // unused when that is 0
  int scratch_blocks = 0;         // the grid when the system is in scratch: lasso_active_set_scratch_blocks
  int* iterations = nullptr;      // optional, [networks][k] out: feature-sign iterations (solves) of each target
                                  // (nullptr: not written; -1 for targets of degenerate networks)
};

// Global scratch per (network, target) block: 0 when the k x k system of the active set fits in
// shared memory next to the block's vectors (k up to 161 with H100's 227 KiB), else k * k.
// Throws std::invalid_argument when not even the vectors (14 k + 643 doubles: k up to 2029 at 227 KiB) fit.
size_t lasso_active_set_scratch_doubles(int k, size_t shared_limit_bytes);

// Blocks of a launch whose systems are in global scratch (0 when they fit in shared memory): what
// the device holds at once (its multiprocessors x resident blocks, from the occupancy API). Block b
// runs fits b, b + blocks, ... with one scratch system, so the scratch is a fixed cost per launch
// (0.8 GB at k = 500 on an H100) rather than k^3 doubles per network (1 GB). multiprocessors <= 0
// (host emulation): 3, so that tests exercise that mapping (each fit's scratch poisoned first).
int lasso_active_set_scratch_blocks(int k, size_t shared_limit_bytes, int multiprocessors);

// Launches on `stream` (asynchronous; launch errors throw). shared_limit_bytes: at most the device's
// shared_memory_limit (cuda_kernels.hpp). The scratch needs no initialisation.
void launch_lasso_active_set(const LassoActiveSetBatch& batch, size_t shared_limit_bytes, cudaStream_t stream);

// The very same block program on the host, one block after another (shared memory allocated here;
// batch.scratch used when given, else one block's scratch allocated here; both poisoned with NaN).
void emulate_lasso_active_set_on_host(const LassoActiveSetBatch& batch, size_t shared_limit_bytes);

}  // namespace causalsweep::cuda
