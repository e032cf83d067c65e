// CPU side of the random streams: Random123's philox4x32_10, which reproduces cuRAND's raw Philox
// stream bit for bit (the CUDA backend uses curand_kernel.h in its own translation units).
#include <Random123/philox.h>

#include "engine.hpp"

namespace causalsweep {

RandomBlock philox_block(uint64_t seed, uint64_t subsequence_id, uint64_t block) {
  const r123::Philox4x32_R<10> philox;
  const r123::Philox4x32::ctr_type counter = {{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                               static_cast<uint32_t>(subsequence_id),
                                               static_cast<uint32_t>(subsequence_id >> 32)}};
  const r123::Philox4x32::key_type key = {{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}};
  const auto out = philox(counter, key);
  return RandomBlock{{out[0], out[1], out[2], out[3]}};
}

}  // namespace causalsweep
