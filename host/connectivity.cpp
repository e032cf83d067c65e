// Random sparse connectivity, scaled so its largest singular value is 1/1.01 (the tutorials'
// "timescale of about 100 steps"): the linearised dynamics are then contracting.
#include <stdexcept>

#include <algorithm>
#include <cmath>

#include <Eigen/Eigenvalues>

#include "engine.hpp"

namespace causalsweep {

// sqrt of the largest eigenvalue of A'A by the symmetric tridiagonal QR solver. For the generated
// 0/+-1 matrices A'A holds small integers, so it is exact, and the largest eigenvalue comes with a
// relative error of a few ulps. (Eigen 3.4.0's BDCSVD, used before, crashes on some sparse matrices
// when built with AVX-512, e.g. generate_connectivity(1301, 40, 0.03, ..., 0.5).)
double largest_singular_value(const Eigen::MatrixXd& matrix) {
  if (matrix.size() == 0) return 0.0;
  const Eigen::MatrixXd gram = matrix.transpose() * matrix;
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(gram, Eigen::EigenvaluesOnly);
  return std::sqrt(std::max(eigen.eigenvalues().maxCoeff(), 0.0));
}

Eigen::MatrixXd generate_connectivity(uint64_t seed, int n_neurons, double p_connect, bool& empty,
                                      double p_inhibitory) {
  Eigen::MatrixXd A = Eigen::MatrixXd::Zero(n_neurons, n_neurons);
  int64_t connections = 0;
  for (int i = 0; i < n_neurons; ++i) {
    const uint64_t stream = subsequence(Purpose::connectivity, static_cast<uint32_t>(i));
    for (int j0 = 0; j0 < n_neurons; j0 += 4) {
      const RandomBlock block = philox_block(seed, stream, static_cast<uint64_t>(j0 / 4));
      for (int j = j0; j < std::min(j0 + 4, n_neurons); ++j) {
        if (bernoulli(block.word[j - j0], p_connect)) {
          A(i, j) = 1.0;
          ++connections;
        }
      }
    }
  }
  if (p_inhibitory > 0) {
    // Signs from their own streams, so the same seed keeps the same wiring at every p_inhibitory.
    for (int i = 0; i < n_neurons; ++i) {
      const uint64_t stream = subsequence(Purpose::inhibitory, static_cast<uint32_t>(i));
      for (int j0 = 0; j0 < n_neurons; j0 += 4) {
        const RandomBlock block = philox_block(seed, stream, static_cast<uint64_t>(j0 / 4));
        for (int j = j0; j < std::min(j0 + 4, n_neurons); ++j)
          if (A(i, j) != 0 && bernoulli(block.word[j - j0], p_inhibitory)) A(i, j) = -1.0;
      }
    }
  }
  empty = connections == 0;
  if (!empty) A /= 1.01 * largest_singular_value(A);
  return A;
}

Eigen::MatrixXd network_connectivity(const NetworkTask& task, const ModelOptions& model, bool& empty) {
  if (model.connectivity.empty())
    return generate_connectivity(task.seed, task.n_neurons, task.p_connect, empty, model.p_inhibitory);
  const int n = task.n_neurons;
  if (model.connectivity.size() != static_cast<size_t>(n) * static_cast<size_t>(n))
    throw std::logic_error("connectivity matrix does not match n_neurons (config validation missed it)");
  // The user's A as given: no scaling, the same for every seed.
  Eigen::MatrixXd A = Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
      model.connectivity.data(), n, n);
  empty = (A.array() == 0).all();
  return A;
}

}  // namespace causalsweep
