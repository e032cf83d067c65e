#pragma once
// Inputs the CUDA kernels' host-emulation tests share: Grams in the kernels' buffer layout, made by
// the CPU's own simulation.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <Eigen/Dense>

#include "causalsweep/gram.hpp"
#include "causalsweep/grid.hpp"
#include "engine.hpp"

namespace causalsweep::test {

constexpr size_t h100_shared_limit = 232448;  // cudaDevAttrMaxSharedMemoryPerBlockOptin on H100 / H200

// A Gram in the kernels' buffer layout (the inverse of cuda::unpack_gram).
inline void pack_gram(const Gram& g, double* buffer) {
  const Eigen::Index p = 2 * g.n + 1, q = 2 * g.n;
  Eigen::Map<Eigen::MatrixXd>(buffer, p, p) = g.ww;
  Eigen::Map<Eigen::MatrixXd>(buffer + p * p, p, q) = g.wu;
  Eigen::Map<Eigen::VectorXd>(buffer + p * p + p * q, q) = g.uu;
}

// ... appended to `out` (batches of several networks' Grams, one after another).
inline void append_gram(const Gram& g, std::vector<double>& out) {
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(g.ww.size() + g.wu.size() + g.uu.size()));
  pack_gram(g, out.data() + at);
}

// The task of one simulated network.
inline NetworkTask network_task(uint64_t seed, int n, int timesteps, double eta, double p_connect,
                                bool perturb = false) {
  NetworkTask task;
  task.seed = seed;
  task.n_neurons = n;
  task.timesteps = timesteps;
  task.p_connect = p_connect;
  task.eta = eta;
  task.perturb = perturb;
  return task;
}

// The Grams of a simulated network (the CPU's connectivity and simulation).
inline NetworkGrams simulated_grams(uint64_t seed, int n, int timesteps, double eta, double p_connect,
                                    bool perturb = false, Nonlinearity f = Nonlinearity::sigmoid) {
  bool empty = false;
  const Eigen::MatrixXd A = generate_connectivity(seed, n, p_connect, empty);
  return simulate_network(network_task(seed, n, timesteps, eta, p_connect, perturb), A, f);
}

// The Gram of all transitions of a simulated network (no perturbation, sigmoid).
inline Gram simulated_gram(uint64_t seed, int n, int timesteps, double eta, double p_connect = 0.1) {
  return simulated_grams(seed, n, timesteps, eta, p_connect).all;
}

// A trajectory of a simulated network (p_connect 0.1, eta 1), for Grams with something changed in the data.
inline void simulated_trajectory(uint64_t seed, int n, int timesteps, Eigen::MatrixXd& X, Eigen::MatrixXd& Z) {
  bool empty = false;
  const Eigen::MatrixXd A = generate_connectivity(seed, n, 0.1, empty);
  simulate_trajectory(network_task(seed, n, timesteps, 1.0, 0.1), A, X, Z);
}

}  // namespace causalsweep::test
