// Random sparse connectivity, scaled so its largest singular value is 1/1.01 (the tutorials'
// "timescale of about 100 steps"): the linearised dynamics are then contracting.
#include <Eigen/SVD>

#include "engine.hpp"

namespace causalsweep {

double largest_singular_value(const Eigen::MatrixXd& matrix) {
  if (matrix.size() == 0) return 0.0;
  Eigen::BDCSVD<Eigen::MatrixXd> svd(matrix);  // singular values only
  return svd.singularValues()(0);
}

Eigen::MatrixXd generate_connectivity(uint64_t seed, int n_neurons, double p_connect, bool& empty) {
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
  empty = connections == 0;
  if (!empty) A /= 1.01 * largest_singular_value(A);
  return A;
}

}  // namespace causalsweep
