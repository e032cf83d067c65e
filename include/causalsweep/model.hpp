#pragma once
// The rate model's math for one neuron and one step, written once for both backends.
//   x[t+1] = f(A x[t] + eta * z[t+1] + eps[t]),   x[0] = 0
// with f = sigmoid (the tutorials' rate model) or f = identity (the linear VAR(1) model).
#include <cmath>

#include "causalsweep/hd.hpp"

namespace causalsweep {

// identity: the linear VAR(1) model; its regressions target x[t+1] itself, not logit(x[t+1]).
enum class Nonlinearity { sigmoid, identity };

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

// x[t+1] from the pre-activation.
CS_HD inline double activation(Nonlinearity f, double u) { return f == Nonlinearity::identity ? u : sigmoid(u); }

// What regression estimators (ols, lasso, iv) regress on x[t]: the inverse of the activation, so the
// target is linear in x[t]. This is what the Gram's "logit" slot holds.
CS_HD inline double regression_target(Nonlinearity f, double next, bool& saturated) {
  if (f == Nonlinearity::identity) {
    saturated = false;
    return next;
  }
  return logit_clamped(next, saturated);
}

}  // namespace causalsweep
