#pragma once
// Reasons a result is NaN or should be read with care. Stored as a bit set per run and printed as
// names joined by '|' in the outputs.
#include <cstdint>
#include <string>

namespace causalsweep {

enum Flag : uint32_t {
  flag_none = 0,
  flag_singular = 1u << 0,            // a normal-equation system was not positive definite
  flag_unidentified = 1u << 1,        // IV: instruments carry no information (eta = 0 or constant z)
  flag_saturated_logit = 1u << 2,     // some x[t+1] rounded to 0 or 1; their logit was clamped
  flag_empty_truth = 1u << 3,         // A0 had no connection at all (A = 0)
  flag_constant_truth = 1u << 4,      // observed block of A is constant: correlation undefined
  flag_constant_estimate = 1u << 5,   // V is constant: correlation undefined
  flag_not_converged = 1u << 6,       // lasso stopped at max_iter before its duality gap tolerance
  flag_one_class = 1u << 7,           // AUC undefined: the observed block has no (non-)connections
  flag_too_few_samples = 1u << 8,     // fewer transitions than parameters
  flag_constant_regressor = 1u << 9,  // an observed neuron (or its logit) never varied
  flag_empty_class = 1u << 10,        // n_to_1: a rate's denominator is empty (e.g. no connected inhibitory input)
  flag_no_windows = 1u << 11,         // n_to_1: an input had no spike-triggered window; its p-value is NaN
};

// "singular|unidentified", or "" for no flags.
std::string flags_to_string(uint32_t flags);

}  // namespace causalsweep
