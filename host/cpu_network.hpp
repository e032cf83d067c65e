#pragma once
// One network end to end on the CPU: generate A, simulate into the Grams, estimate and score at
// every observed ratio. The CPU backend runs it on worker threads; benchmarks call it directly.
#include <vector>

#include <Eigen/Dense>

#include "causalsweep/gram.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/results.hpp"

namespace causalsweep {

// One estimate of a run, kept for matrices/ (truth = the observed k x k block of A).
struct KeptMatrix {
  int ratio_index = 0, estimator_index = 0, observed = 0;
  Eigen::MatrixXd truth, estimate;
};

// `kept`, when given, receives every run's truth and estimate.
NetworkResult run_cpu_network(const NetworkTask& task, const SweepGrid& grid, PhaseTimes& times,
                              std::vector<KeptMatrix>* kept = nullptr);

// The second half of a network, shared by both backends: estimate and score every observed ratio and
// estimator from the network's Grams (`even`: perturbation mode's clamped transitions, else null).
NetworkResult score_network(const NetworkTask& task, const SweepGrid& grid, const Eigen::MatrixXd& A, bool empty,
                            const Gram& all, const Gram* even, PhaseTimes& times,
                            std::vector<KeptMatrix>* kept = nullptr);

// One run of score_network: the estimator `estimator_index` at observed ratio `ratio_index`
// (network_flags: the network's own flags, ORed into the run's).
RunResult score_one_run(const NetworkTask& task, const SweepGrid& grid, const Eigen::MatrixXd& A, int ratio_index,
                        int estimator_index, const Gram& all, const Gram* even, uint32_t network_flags,
                        PhaseTimes& times, std::vector<KeptMatrix>* kept = nullptr);

}  // namespace causalsweep
