// The raw random stream on the GPU: cuRAND Philox words for a list of (seed, subsequence, block)
// addresses. Only tests use it: it shows that the device reads, word for word, the numbers the CPU
// backend reads from Random123 (host/random_stream.cpp).
#include "philox_device.cuh"  // first: it sets curand_kernel.h's QUALIFIERS

#include "cuda_check.cuh"
#include "cuda_kernels.hpp"

namespace causalsweep::cuda {
namespace {

// One thread per address: words[4 i + w] = word w of the block at address i.
__global__ void philox_blocks_kernel(const uint64_t* seeds, const uint64_t* subsequences, const uint64_t* blocks,
                                     uint32_t* words, int count) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= count) return;
  const RandomBlock r = curand_philox_block(seeds[i], subsequences[i], blocks[i]);
  for (int w = 0; w < 4; ++w) words[4 * static_cast<size_t>(i) + w] = r.word[w];
}

}  // namespace

void launch_philox_blocks(const uint64_t* seeds, const uint64_t* subsequences, const uint64_t* blocks,
                          uint32_t* words, int count, cudaStream_t stream) {
  if (count <= 0) return;
  constexpr int threads = 256;
  const int grid = (count + threads - 1) / threads;
  philox_blocks_kernel<<<grid, threads, 0, stream>>>(seeds, subsequences, blocks, words, count);
  CS_CUDA_CHECK(cudaGetLastError());
}

RandomBlock curand_philox_block_on_host(uint64_t seed, uint64_t subsequence, uint64_t block) {
  return curand_philox_block(seed, subsequence, block);
}

}  // namespace causalsweep::cuda
