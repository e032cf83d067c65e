#pragma once
// One network end to end on the CPU: generate A, simulate into the Grams, estimate and score at
// every observed ratio. The CPU backend runs it on worker threads; benchmarks call it directly.
#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"

namespace causalsweep {

NetworkResult run_cpu_network(const NetworkTask& task, const SweepGrid& grid, PhaseTimes& times);

}  // namespace causalsweep
