// The device's ceilings, measured (bench_cuda ceilings): copy bandwidth and FP64 / FP32 FMA rates.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>

#include "ceilings.hpp"
#include "cuda_check.cuh"

namespace causalsweep::cuda {
namespace {

constexpr int chains = 8;            // independent FMA chains per thread: enough to hide the latency
constexpr int fma_threads = 256;
constexpr int fma_blocks_per_sm = 8;  // 2048 threads per SM, Hopper's maximum

// Each thread runs `chains` independent x = x * a + b recurrences for `iterations` steps. a and b
// are arguments, so nothing folds; the final store is conditional on a value that never occurs, so
// the chains stay live without memory traffic.
template <class T>
__global__ void __launch_bounds__(fma_threads, fma_blocks_per_sm) fma_kernel(T* sink, int iterations, T a, T b) {
  T x[chains];
#pragma unroll
  for (int c = 0; c < chains; ++c) x[c] = static_cast<T>(threadIdx.x + c);
  // Unrolled 16 times: 128 FMAs per loop test, so FP32's one-FMA-per-cycle issue is not diluted.
#pragma unroll 16
  for (int it = 0; it < iterations; ++it) {
#pragma unroll
    for (int c = 0; c < chains; ++c) x[c] = fma(x[c], a, b);
  }
  T sum = 0;
#pragma unroll
  for (int c = 0; c < chains; ++c) sum += x[c];
  if (sum == static_cast<T>(-1.25)) sink[blockIdx.x] = sum;  // x converges to b / (1 - a) = 1: never -1.25
}

// Seconds of the fastest of `repeats` runs of `work` (after one warm-up), by CUDA events.
template <class Work>
double best_seconds(int repeats, Work&& work) {
  cudaEvent_t start, stop;
  CS_CUDA_CHECK(cudaEventCreate(&start));
  CS_CUDA_CHECK(cudaEventCreate(&stop));
  work();
  CS_CUDA_CHECK(cudaDeviceSynchronize());
  float best_ms = 0;
  for (int r = 0; r < repeats; ++r) {
    CS_CUDA_CHECK(cudaEventRecord(start));
    work();
    CS_CUDA_CHECK(cudaEventRecord(stop));
    CS_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CS_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    best_ms = r == 0 ? ms : std::min(best_ms, ms);
  }
  CS_CUDA_CHECK(cudaEventDestroy(start));
  CS_CUDA_CHECK(cudaEventDestroy(stop));
  return best_ms / 1000.0;
}

template <class T>
double fma_per_second(int multiprocessors, int iterations, int repeats) {
  const int blocks = multiprocessors * fma_blocks_per_sm;
  T* sink = nullptr;
  CS_CUDA_CHECK(cudaMalloc(&sink, static_cast<size_t>(blocks) * sizeof(T)));
  const double seconds = best_seconds(repeats, [&] {
    fma_kernel<T><<<blocks, fma_threads>>>(sink, iterations, static_cast<T>(0.999999), static_cast<T>(1e-6));
    CS_CUDA_CHECK(cudaGetLastError());
  });
  CS_CUDA_CHECK(cudaFree(sink));
  return static_cast<double>(blocks) * fma_threads * chains * iterations / seconds;
}

}  // namespace

Ceilings measure_ceilings(int repeats) {
  int device = 0, multiprocessors = 0;
  CS_CUDA_CHECK(cudaGetDevice(&device));
  CS_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device));
  Ceilings c;
  const size_t bytes = size_t{1} << 31;
  void *from = nullptr, *to = nullptr;
  CS_CUDA_CHECK(cudaMalloc(&from, bytes));
  CS_CUDA_CHECK(cudaMalloc(&to, bytes));
  CS_CUDA_CHECK(cudaMemset(from, 1, bytes));
  const double copy_seconds =
      best_seconds(repeats, [&] { CS_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice)); });
  CS_CUDA_CHECK(cudaFree(from));
  CS_CUDA_CHECK(cudaFree(to));
  c.copy_bytes_per_s = 2.0 * static_cast<double>(bytes) / copy_seconds;
  // About 35e9 FMAs per FP64 run on 132 SMs (2 ms at the H100's 16.75e12 per second), 4x in FP32.
  c.fp64_fma_per_s = fma_per_second<double>(multiprocessors, 1 << 14, repeats);
  c.fp32_fma_per_s = fma_per_second<float>(multiprocessors, 1 << 16, repeats);
  return c;
}

}  // namespace causalsweep::cuda
