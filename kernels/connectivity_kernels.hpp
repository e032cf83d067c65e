#pragma once
// The random connectivity of a batch of networks generated on the GPU (kernels/connectivity.cu):
// the same matrices as generate_connectivity in host/connectivity.cpp, A = A0 / (1.01 s_max(A0)),
// with s_max computed on the device by Lanczos (see connectivity.cu). One CUDA block per network.
// C++17-clean and plain: included by nvcc and by the C++20 host code.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace causalsweep::cuda {

enum ConnectivityStatus : int {
  connectivity_ok = 0,           // A scaled by 1 / (1.01 sigma), as generate_connectivity
  connectivity_empty = 1,        // no connection: A = 0, sigma = 0
  connectivity_unconverged = 2,  // the singular-value iteration hit its cap: A holds the UNSCALED 0/+-1
                                 // matrix (sigma is NaN); the caller scales it with the CPU's SVD
};

struct ConnectivityBatch {
  int networks = 0;
  int n = 0;                          // the same for every network of a batch
  double p_inhibitory = 0;            // ModelOptions::p_inhibitory
  const uint64_t* seeds = nullptr;    // [networks]
  const double* p_connect = nullptr;  // [networks]
  double* connectivity = nullptr;     // [networks][n * n] out, column-major: A(i, j) at i + j n
  double* singular_value = nullptr;   // [networks] out: largest singular value of the unscaled 0/+-1 matrix
  int* status = nullptr;              // [networks] out: ConnectivityStatus
  double* scratch = nullptr;          // [networks][connectivity_scratch_doubles(n, shared_limit)] or unused when that is 0
  // Additions to the planned interface (both optional, the defaults keep the plan's behaviour):
  int max_iterations = 0;             // Lanczos steps allowed; 0 (or >= n): n, the whole Krylov space. Tests
                                      // set it low to reach connectivity_unconverged
  int* iterations = nullptr;          // [networks] out, or nullptr: Lanczos steps taken (0 when empty)
};

// Global scratch one network needs (doubles) when its working set does not fit in shared memory
// of `shared_limit_bytes` (the device's opt-in limit, shared_memory_limit(device)); 0 when it fits.
size_t connectivity_scratch_doubles(int n, size_t shared_limit_bytes);

// Dynamic shared memory one block uses (bytes) for this n and limit (at most the limit).
size_t connectivity_shared_bytes(int n, size_t shared_limit_bytes);

// Launches one block per network on `stream` (asynchronous; launch errors throw). All pointers are
// device pointers; shared_limit_bytes must not exceed the device's shared_memory_limit.
void launch_connectivity(const ConnectivityBatch& batch, size_t shared_limit_bytes, cudaStream_t stream);

// The very same block program on the host, one network after another (host pointers; shared and
// scratch memory are allocated here and poisoned with NaN, batch.scratch is ignored).
void emulate_connectivity_on_host(const ConnectivityBatch& batch, size_t shared_limit_bytes);

}  // namespace causalsweep::cuda
