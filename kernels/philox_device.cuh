#pragma once
// cuRAND's Philox4_32_10 addressed as include/causalsweep/random_stream.hpp describes it:
// curand_init(seed, subsequence, 4 * block) then curand4() returns the 4 words of
// philox4x32_10(counter = (block, subsequence), key = seed), the words the CPU reads from Random123.
//
// curand_kernel.h marks its functions with QUALIFIERS (static __forceinline__ __device__ by
// default); defining it as __host__ __device__ before the include compiles the same Philox code for
// the host too, which is how tests check this addressing on machines without a GPU. This header
// must be the first include of curand_kernel.h in its translation unit. Random123 never meets
// curand_kernel.h in one translation unit (they define clashing names).
#ifndef QUALIFIERS
#define QUALIFIERS static __forceinline__ __host__ __device__
#endif
#include <curand_kernel.h>

#include <cstdint>

#include "causalsweep/random_stream.hpp"

namespace causalsweep::cuda {

// One block of stream (seed, subsequence): stateless, so any thread can read any block in O(1).
// The compiler drops curand_init's and curand4's look-ahead evaluations (their results are unused).
__host__ __device__ inline RandomBlock curand_philox_block(uint64_t seed, uint64_t subsequence, uint64_t block) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, subsequence, 4 * block, &state);
  const uint4 r = curand4(&state);
  return RandomBlock{{r.x, r.y, r.z, r.w}};
}

}  // namespace causalsweep::cuda
