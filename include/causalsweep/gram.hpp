#pragma once
// Sufficient statistics of one simulated network: every estimator is a function of these.
//
// Each transition t -> t+1 contributes the vectors
//   w_t = [1, z[t], x[t]]                       (p = 2n + 1 entries: regressors and instruments)
//   u_t = [x[t+1], logit(x[t+1])]               (2n entries: targets)
// and the Gram keeps  ww = sum w w^T,  wu = sum w u^T  and  uu = sum u .* u  (diagonal only), in
// float64. Memory is O(n^2) whatever the number of steps. The first k neurons' statistics are
// leading sub-blocks of each part, so one simulation serves every observed ratio.
#include <cstdint>

#include <Eigen/Dense>

#include "causalsweep/model.hpp"

namespace causalsweep {

struct Gram {
  int n = 0;
  int64_t transitions = 0;         // number of accumulated transitions (equals ww(0, 0))
  int64_t saturated_logits = 0;    // targets whose logit was clamped
  Eigen::MatrixXd ww;              // (2n+1) x (2n+1), symmetric, both triangles filled
  Eigen::MatrixXd wu;              // (2n+1) x 2n
  Eigen::VectorXd uu;              // 2n

  explicit Gram(int neurons = 0);

  // Index helpers into w and u.
  static constexpr int one = 0;
  int z(int j) const { return 1 + j; }
  int x(int j) const { return 1 + n + j; }
  int next(int i) const { return i; }        // x[t+1]_i in u
  int logit(int i) const { return n + i; }   // logit(x[t+1])_i in u

  // Leading-k views used by the estimators (k = observed neurons).
  auto xx(int k) const { return ww.block(1 + n, 1 + n, k, k); }        // sum x x^T
  auto x_sum(int k) const { return ww.block(0, 1 + n, 1, k).transpose(); }
  auto zz(int k) const { return ww.block(1, 1, k, k); }                // sum z z^T
  auto z_sum(int k) const { return ww.block(0, 1, 1, k).transpose(); }
  auto zx(int k) const { return ww.block(1, 1 + n, k, k); }            // sum z x^T
  auto x_next(int k) const { return wu.block(1 + n, 0, k, k); }        // sum x[t] x[t+1]^T
  auto x_logit(int k) const { return wu.block(1 + n, n, k, k); }       // sum x[t] y^T
  auto z_logit(int k) const { return wu.block(1, n, k, k); }           // sum z y^T
  auto next_sum(int k) const { return wu.block(0, 0, 1, k).transpose(); }
  auto logit_sum(int k) const { return wu.block(0, n, 1, k).transpose(); }
  auto next_sq(int k) const { return uu.head(k); }                     // sum x[t+1]_i^2
  auto logit_sq(int k) const { return uu.segment(n, k); }              // sum y_i^2
};

// Accumulates transitions in tiles: add() writes one transition into the next column of a w and
// a u tile; a full tile is added to the Gram with two matrix products (a rank-`tile` update), which
// is what makes the CPU backend fast. Results do not depend on the tile size beyond float64 rounding.
class GramAccumulator {
 public:
  using ConstVector = Eigen::Ref<const Eigen::VectorXd>;
  // The "logit" slot holds regression_target(nonlinearity, x[t+1]): logit for sigmoid, x for identity.
  GramAccumulator(Gram& gram, int tile, Nonlinearity nonlinearity = Nonlinearity::sigmoid);
  // One transition: instruments z[t], state x[t], next state x[t+1] (its logit is taken here).
  void add(const ConstVector& z, const ConstVector& x, const ConstVector& next);
  // Adds the remaining columns; call once at the end (also fills ww's upper triangle).
  void finish();

 private:
  void flush();
  Gram& gram_;
  Nonlinearity nonlinearity_;
  Eigen::MatrixXd w_;
  Eigen::MatrixXd u_;
  int filled_ = 0;
};

// Builds the Gram of recorded trajectories X (n x T) and instruments Z (n x T, may be empty = 0),
// with the same transitions and logit rule as the simulation: used by tests and by data input.
// even_only keeps only transitions from even t (the perturbation estimator's clamped steps).
Gram gram_from_trajectories(const Eigen::MatrixXd& X, const Eigen::MatrixXd& Z, bool even_only = false,
                            Nonlinearity nonlinearity = Nonlinearity::sigmoid);

}  // namespace causalsweep
