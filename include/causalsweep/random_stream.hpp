#pragma once
// How raw Philox4x32-10 numbers are addressed and turned into Bernoulli and normal values.
//
// Every random number of a network is one 32-bit word of philox4x32_10(counter, key) with
//   key     = the run's seed (low word, high word),
//   counter = (block low, block high, subsequence low, subsequence high),
// which is exactly cuRAND's Philox stream after curand_init(seed, subsequence, 4 * block).
// The subsequence names what the numbers are for and for which neuron, the block the time (or
// column), so a network's numbers never depend on batch size, thread count, shard or backend.
// The transforms below are shared by the CPU backend (Random123) and the CUDA backend (cuRAND).
#include <cmath>
#include <cstdint>

#include "causalsweep/hd.hpp"

namespace causalsweep {

enum class Purpose : uint32_t {
  connectivity = 1,  // row i of A0: block b holds columns 4b .. 4b+3
  dynamics = 2,      // neuron i: block b holds time indices 2b and 2b+1
  inhibitory = 3,    // row i of A0's signs: block b, word c is column 4b + c (Bernoulli(p_inhibitory))
  // The n_to_1 spiking model (causalsweep/n_to_1.hpp):
  spike_intervals = 4,  // input i: block b, word c is the (4b + c)-th inter-spike interval
  imaging_noise = 5,    // index 0: block b holds the noise of samples 4b .. 4b+3 (two Box-Muller pairs)
  shuffles = 6,         // input i, surrogate s (index i * 65536 + s): the words of its ISI permutation, in order
};

// Subsequence = purpose in the high 32 bits, neuron (or row) in the low 32 bits.
CS_HD constexpr uint64_t subsequence(Purpose purpose, uint32_t index) {
  return (static_cast<uint64_t>(purpose) << 32) | index;
}

struct RandomBlock {
  uint32_t word[4];
};

// Uniform on the open interval (0, 1): never 0 (log is safe) and never 1.
CS_HD inline double uniform_open01(uint32_t word) { return (static_cast<double>(word) + 0.5) * 0x1p-32; }

// Bernoulli(p) draw: p = 0 never fires, p = 1 always does.
CS_HD inline bool bernoulli(uint32_t word, double p) { return uniform_open01(word) < p; }

// Box-Muller in double precision: two independent N(0, 1) values from two words.
CS_HD inline void box_muller(uint32_t word0, uint32_t word1, double& normal0, double& normal1) {
  constexpr double two_pi = 6.283185307179586476925286766559;
  const double radius = sqrt(-2.0 * log(uniform_open01(word0)));
  const double angle = two_pi * uniform_open01(word1);
  normal0 = radius * cos(angle);
  normal1 = radius * sin(angle);
}

// The draws of one neuron at one time index t, from the dynamics block t / 2:
//   noise      eps[t], N(0, 1), enters x[t+1]      (words 0, 1 via Box-Muller: cos for even t, sin for odd)
//   instrument z[t], Bernoulli(0.5), enters x[t]   (word 2: bit 31 for even t, bit 30 for odd)
//   clamp      perturbation value of x[t], Bernoulli(0.5) (word 3: bit 31 / bit 30)
struct StepDraws {
  double noise;
  double instrument;
  double clamp;
};

CS_HD inline StepDraws step_draws(const RandomBlock& block, uint32_t t) {
  double normal_even = 0.0;
  double normal_odd = 0.0;
  box_muller(block.word[0], block.word[1], normal_even, normal_odd);
  const uint32_t bit = 31u - (t & 1u);
  return StepDraws{(t & 1u) ? normal_odd : normal_even, static_cast<double>((block.word[2] >> bit) & 1u),
                   static_cast<double>((block.word[3] >> bit) & 1u)};
}

// Both time indices of one block at once (2b and 2b+1), one Box-Muller for two steps.
CS_HD inline void step_draws_pair(const RandomBlock& block, StepDraws& even, StepDraws& odd) {
  box_muller(block.word[0], block.word[1], even.noise, odd.noise);
  even.instrument = static_cast<double>((block.word[2] >> 31) & 1u);
  odd.instrument = static_cast<double>((block.word[2] >> 30) & 1u);
  even.clamp = static_cast<double>((block.word[3] >> 31) & 1u);
  odd.clamp = static_cast<double>((block.word[3] >> 30) & 1u);
}

}  // namespace causalsweep
