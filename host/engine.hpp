#pragma once
// CPU-side building blocks shared by the CPU backend, the tests and the benchmarks.
#include <cstdint>
#include <optional>

#include <Eigen/Dense>

#include "causalsweep/gram.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/random_stream.hpp"

namespace causalsweep {

// philox4x32_10 block `block` of stream (seed, subsequence): cuRAND's
// curand_init(seed, subsequence, 4 * block) followed by curand4().
RandomBlock philox_block(uint64_t seed, uint64_t subsequence_id, uint64_t block);

// A0[i][j] ~ Bernoulli(p) from the connectivity streams of `seed`; A = A0 / (1.01 s_max(A0)),
// or A = 0 with `empty` set when A0 has no connection. With p_inhibitory > 0 each connection is
// made negative with that probability, drawn from the separate inhibitory streams
// (Purpose::inhibitory, row i, block j / 4, word j % 4): the excitatory pattern of a seed is the
// same whatever p_inhibitory is.
Eigen::MatrixXd generate_connectivity(uint64_t seed, int n_neurons, double p_connect, bool& empty,
                                      double p_inhibitory = 0.0);

// The network's A: the user's matrix when the grid has one (n must match), else a random one.
Eigen::MatrixXd network_connectivity(const NetworkTask& task, const ModelOptions& model, bool& empty);

// Largest singular value (LAPACK-quality SVD from Eigen).
double largest_singular_value(const Eigen::MatrixXd& matrix);

// The Grams of one simulated network: all transitions, and in perturbation mode also the clamped
// (even t) transitions that the perturbation estimator uses.
struct NetworkGrams {
  Gram all;
  std::optional<Gram> even;
};

// Simulates the rate network and accumulates its Grams on the fly; the trajectory is never stored.
NetworkGrams simulate_network(const NetworkTask& task, const Eigen::MatrixXd& A,
                              Nonlinearity f = Nonlinearity::sigmoid);

// The full trajectory X (n x T) and instruments Z (n x T) of the same simulation, O(n T) memory:
// for tests and for users who want to look at activity, never used by sweeps.
void simulate_trajectory(const NetworkTask& task, const Eigen::MatrixXd& A, Eigen::MatrixXd& X,
                         Eigen::MatrixXd& Z, Nonlinearity f = Nonlinearity::sigmoid);

}  // namespace causalsweep
