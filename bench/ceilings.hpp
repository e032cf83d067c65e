#pragma once
// The device's measured ceilings, the denominators of every roofline fraction in bench/RESULTS.md
// (datasheet rates are leads; METHOD.md of the device tool: measure them on the machine).

namespace causalsweep::cuda {

struct Ceilings {
  double copy_bytes_per_s = 0;  // device-to-device copy of 2 GiB, bytes read plus bytes written
  double fp64_fma_per_s = 0;    // fused multiply-adds per second on the plain FP64 units
  double fp32_fma_per_s = 0;    // the same in FP32
};

// Best of `repeats` timings of each (CUDA events), after a warm-up, on the current device.
Ceilings measure_ceilings(int repeats = 5);

}  // namespace causalsweep::cuda
