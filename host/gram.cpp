// Gram accumulation: transitions are gathered into tiles and added with two matrix products,
// which turns T rank-1 updates into T / tile cache-friendly GEMMs.
#include "causalsweep/gram.hpp"

#include "causalsweep/model.hpp"

namespace causalsweep {

Gram::Gram(int neurons)
    : n(neurons),
      ww(Eigen::MatrixXd::Zero(2 * neurons + 1, 2 * neurons + 1)),
      wu(Eigen::MatrixXd::Zero(2 * neurons + 1, 2 * neurons)),
      uu(Eigen::VectorXd::Zero(2 * neurons)) {}

GramAccumulator::GramAccumulator(Gram& gram, int tile, Nonlinearity nonlinearity)
    : gram_(gram), nonlinearity_(nonlinearity), w_(2 * gram.n + 1, tile), u_(2 * gram.n, tile) {}

void GramAccumulator::add(const ConstVector& z, const ConstVector& x, const ConstVector& next) {
  const int n = gram_.n;
  double* w = w_.col(filled_).data();
  double* u = u_.col(filled_).data();
  w[0] = 1.0;
  for (int i = 0; i < n; ++i) {
    w[1 + i] = z(i);
    w[1 + n + i] = x(i);
    u[i] = next(i);
    bool clamped = false;
    u[n + i] = regression_target(nonlinearity_, next(i), clamped);
    gram_.saturated_logits += clamped;
  }
  if (++filled_ == w_.cols()) flush();
}

void GramAccumulator::flush() {
  if (filled_ == 0) return;
  const auto w = w_.leftCols(filled_);
  const auto u = u_.leftCols(filled_);
  gram_.ww.selfadjointView<Eigen::Lower>().rankUpdate(w);  // lower triangle only until finish()
  gram_.wu.noalias() += w * u.transpose();
  gram_.uu += u.cwiseAbs2().rowwise().sum();
  gram_.transitions += filled_;
  filled_ = 0;
}

void GramAccumulator::finish() {
  flush();
  gram_.ww = gram_.ww.selfadjointView<Eigen::Lower>();
}

Gram gram_from_trajectories(const Eigen::MatrixXd& X, const Eigen::MatrixXd& Z, bool even_only,
                            Nonlinearity nonlinearity) {
  Gram gram(static_cast<int>(X.rows()));
  GramAccumulator acc(gram, 128, nonlinearity);
  const Eigen::VectorXd no_instruments = Eigen::VectorXd::Zero(X.rows());
  for (Eigen::Index t = 0; t + 1 < X.cols(); ++t) {
    if (even_only && t % 2 != 0) continue;
    acc.add(Z.size() ? Eigen::VectorXd(Z.col(t)) : no_instruments, X.col(t), X.col(t + 1));
  }
  acc.finish();
  return gram;
}

}  // namespace causalsweep
