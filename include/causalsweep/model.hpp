#pragma once
// The rate model's math for one neuron and one step, written once for both backends.
//   x[t+1] = sigmoid(A x[t] + eta * z[t+1] + eps[t]),   x[0] = 0
#include <cmath>

#include "causalsweep/hd.hpp"

namespace causalsweep {

CS_HD inline double sigmoid(double u) { return 1.0 / (1.0 + exp(-u)); }

// logit(x) = log(x / (1 - x)), with x clamped into [logit_floor, 1 - logit_floor]: a sigmoid that
// rounded to 0 or 1 would give an infinite regression target. `saturated` reports the clamp.
inline constexpr double logit_floor = 1e-12;

CS_HD inline double logit_clamped(double x, bool& saturated) {
  saturated = !(x >= logit_floor && x <= 1.0 - logit_floor);
  const double clamped = x < logit_floor ? logit_floor : (x > 1.0 - logit_floor ? 1.0 - logit_floor : x);
  return log(clamped / (1.0 - clamped));
}

// Pre-activation of neuron i at step t+1 given its recurrent input (A x[t])_i.
CS_HD inline double preactivation(double recurrent_input, double instrument_strength, double instrument,
                                  double noise) {
  return recurrent_input + instrument_strength * instrument + noise;
}

}  // namespace causalsweep
