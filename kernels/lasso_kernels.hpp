#pragma once
// The lasso on the GPU: scikit-learn's cyclic coordinate descent on the Gram, for every target of
// many networks at once. It computes host/estimators.cpp's lasso(gram, k, alpha, intercept, tol,
// max_iter, LassoSolver::cyclic) (host/lasso.cpp's lasso_gram: the same coordinate order, formulas
// and stopping rule, so the iterates are the CPU's up to rounding; kernels/lasso.cu says where
// rounding can differ and what that can change).
//
// The active-set solver (LassoSolver::active_set, the CPU's default) is not on the GPU: at tol 1e-4
// the cyclic result differs from its exact optimum (tests/test_cuda_lasso.cpp measures by how much).
//
// Kept C++17-clean and plain (structs, pointers): g++ (C++20) and nvcc include it.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace causalsweep::cuda {

// One batch: `networks` networks with the same n and k. Pointers are device pointers for
// launch_lasso and host pointers for emulate_lasso_on_host.
struct LassoBatch {
  int networks = 0;
  int n = 0;                      // neurons of every network's Gram
  int k = 0;                      // observed neurons: the leading k of each Gram
  bool intercept = true;
  double alpha = 0.01, tol = 1e-4;
  int max_iter = 1000;            // sweeps
  const double* grams = nullptr;  // [networks][gram_doubles(n)]
  double* V = nullptr;            // [networks][k * k] out: V(i, j) at i + j k = weight of x_j[t] for target logit(x_i[t+1])
  uint32_t* flags = nullptr;      // [networks] out: as the CPU's lasso()
  int* sweeps = nullptr;          // [networks] out: the largest number of sweeps over the targets (Estimate::iterations)
  double* scratch = nullptr;      // [networks][lasso_scratch_doubles(k, shared_limit)] (unused when that is 0)
};

// Global scratch per network: 0 when the centred k x k H fits in shared memory next to the block's
// other data (k up to about 155 with H100's 227 KiB), else k * k (H centred once per network in global
// memory). The shared limit decides only where H goes: a block's own bookkeeping (under 28 KiB) is
// always in shared memory.
size_t lasso_scratch_doubles(int k, size_t shared_limit_bytes);

// Launches the lasso on `stream` (asynchronous; launch errors throw). shared_limit_bytes: at most the
// device's shared_memory_limit (cuda_kernels.hpp). k must be <= 4096. The scratch needs no initialisation.
void launch_lasso(const LassoBatch& batch, size_t shared_limit_bytes, cudaStream_t stream);

// Runs the very same block programs on the host, one block after another, each block's threads in
// turn between barriers (scratch, shared memory and per-thread registers are allocated here and
// poisoned with NaN; batch.scratch is used when given, else allocated here).
void emulate_lasso_on_host(const LassoBatch& batch, size_t shared_limit_bytes);

}  // namespace causalsweep::cuda
