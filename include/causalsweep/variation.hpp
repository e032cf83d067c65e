#pragma once
// Whether a sequence varied, decided the same way everywhere (CPU estimators, GPU kernels), from its
// sums over m samples: the centred sum of squares raw - sum^2 / m of a constant is a rounding
// residue of either sign, up to about m eps of the raw sum (the raw sums accumulate m terms). So a
// centred sum within (1e-13 + m eps) of the raw one is no variation: the decision then no longer
// hangs on the residue's sign, which two summation orders (CPU and GPU Grams) need not share.
#include "causalsweep/hd.hpp"

namespace causalsweep {

// The relative size below which a centred sum of squares (or a residual sum of squares, against the
// target's centred sum) is rounding noise.
CS_HD inline double variation_tolerance(double m) { return 1e-13 + m * 2.220446049250313e-16; }

// No variation: centred <= tolerance x raw. NaN sums are not called constant (they fail elsewhere).
CS_HD inline bool never_varied(double centred, double raw, double m) {
  return centred <= variation_tolerance(m) * raw;
}

}  // namespace causalsweep
