#pragma once
// Batched ordinary least squares and two-stage least squares on the GPU: the estimation stage of the
// t-tested estimators (host/estimators.cpp's ordinary_least_squares and two_stage_least_squares with
// PValues::skip, then t_test_decisions for corrections none and bonferroni) and of the conditional
// Granger test (granger_conditional with PValues::skip, then decisions()), for many networks at once.
//
// Every network of a batch has the same n and k. Per network the solver reads the network's Gram
// (cuda_kernels.hpp's gram_doubles(n) layout) and writes V (k x k), the decisions (k x k), iv's
// weakest first-stage F and the CPU estimator's flags. The normal-equation systems are factored
// by cuSOLVER's potrfBatched and solved by cuBLAS's trsmBatched / gemmStridedBatched; small kernels
// assemble the systems from the Grams, check each factorisation on the device and finish the
// statistics (kernels/least_squares.cu says how). The same steps also run on the host (plain loops
// for the library calls, the kernels' block programs run by the host emulator): that is how this
// code is tested on machines without a GPU.
//
// Kept C++17-clean and plain (structs, pointers, std::unique_ptr): g++ (C++20) and nvcc include it.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace causalsweep::cuda {

// granger_conditional is ols with the target x[t+1] itself and an intercept: the likelihood-ratio
// test of dropping regressor j from target i's full regression comes from the same solve (dropped
// RSS = b_ij^2 / (H^-1)_jj), through include/causalsweep/granger_test.hpp as on the CPU.
enum class LeastSquaresMethod { ols, iv, granger_conditional };

// One batch: `networks` networks, each estimated from its own Gram. Pointers are device pointers for
// a solver made by on_device and host pointers for one made by on_host.
struct LeastSquaresBatch {
  int networks = 0;
  int n = 0;                         // neurons of every network's Gram
  int k = 0;                         // observed neurons: the leading k of each Gram
  LeastSquaresMethod method = LeastSquaresMethod::ols;
  bool intercept = true;             // ols; iv always fits intercepts in both stages; granger_conditional
                                     // needs true (refused otherwise)
  const double* grams = nullptr;     // [networks][gram_doubles(n)]
  const double* etas = nullptr;      // [networks] iv: eta == 0 gives all-NaN and flag_unidentified (first_stage_f still reported)
  const double* critical_t = nullptr;// [networks] ols, iv: decision threshold on |t| (the host computes it from df,
                                     // level, correction, family k*k); NaN: every decision NaN
  double level = 0.05;               // granger_conditional: declare p < level (p <= level when inclusive; for
                                     // bonferroni the host passes alpha / (k k))
  bool inclusive = false;            // bonferroni: |t| >= critical, p <= level; none: |t| > critical, p < level
  bool write_p_values = false;       // granger_conditional: V = the p-values instead of decisions (Benjamini-
                                     // Hochberg decides later: score_kernels.hpp)
  bool write_t_values = false;       // ols, iv: decided = the t statistics instead of decisions (likewise)
  double* V = nullptr;               // [networks][k * k] out: V(i, j) at i + j k (target i, regressor j), as Estimate::V
                                     // (granger_conditional: the decisions, as run_estimator's V)
  double* decided = nullptr;         // [networks][k * k] out, ols and iv: 1 / 0, NaN where t is not finite or
                                     // critical_t is NaN (granger_conditional: unused, may be null)
  double* rank_key = nullptr;        // [networks][k * k] out, granger_conditional: 1 - p (NaN where the test is
                                     // undefined), what the AUC ranks by
  double* first_stage_f = nullptr;   // [networks] out: iv's weakest first-stage F (NaN for ols)
  uint32_t* flags = nullptr;         // [networks] out: the flags the CPU estimator sets
};

// Why a family of k*k is exact for bonferroni: the CPU's family is the number of finite t values (or
// defined tests) of the run. When one is not, that run's decisions contain a NaN and its TPR / FPR
// are NaN whatever the others decide, so the family size matters only when all k*k are finite.

// Runs the batch on one device stream (cuSOLVER potrfBatched + cuBLAS trsmBatched / gemm*Batched and
// small kernels), or on the host (the same steps: Eigen/plain loops in place of the library calls,
// the kernels' block programs run by the host emulator), so this machine's tests check the logic.
class LeastSquaresSolver {
 public:
  static std::unique_ptr<LeastSquaresSolver> on_device(cudaStream_t stream);  // owns cuBLAS/cuSOLVER handles on the stream
  static std::unique_ptr<LeastSquaresSolver> on_host();
  virtual ~LeastSquaresSolver() = default;
  // Workspace bytes for a batch (device memory on_device, host memory on_host). Per network, with
  // p = k (ols) or k + 1 (iv) and each matrix rounded up to 32 doubles (256 bytes):
  //   ols: 6 k^2 + 2 k + 3 doubles (H, its factor, Q, [Q | I] of k x 2k, H B; two k-vectors, 3 scalars);
  //   granger_conditional: as ols without H B (its RSS needs only B'Q);
  //   iv:  p (6 p + 2 k) + p + k + 3 doubles (zz's factor, xx, [zx | zy | I] and [normal | rhs | I] of
  //        p x (2p + k); a p- and a k-vector, 3 scalars);
  // then 2 (ols, granger_conditional) or 4 (iv) batched pointer arrays, two potrf info arrays and a status word per
  // network, each section rounded up to 256 bytes. O(k^2) per network; no other memory is used.
  // The workspace should be 256-byte aligned (cudaMalloc's alignment) for the libraries' fast paths.
  virtual size_t workspace_bytes(LeastSquaresMethod method, int networks, int k) const = 0;
  // Asynchronous on the device stream (no host synchronisation inside), synchronous on the host.
  // The workspace needs no initialisation. Throws std::invalid_argument on an inconsistent batch.
  virtual void solve(const LeastSquaresBatch& batch, void* workspace) = 0;
};

}  // namespace causalsweep::cuda
