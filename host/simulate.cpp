// The rate network on the CPU: x[t+1] = f(A x[t] + eta z[t+1] + eps[t]), x[0] = 0 (f: model.hpp), with the
// perturbation mode's clamping, visiting each transition once. Sweeps feed the transitions into
// the Gram accumulators; tests can also record the whole trajectory.
#include <algorithm>
#include <utility>

#include "causalsweep/model.hpp"
#include "engine.hpp"

namespace causalsweep {
namespace {

constexpr int draw_tile = 128;  // time indices of random draws generated at once
constexpr int gram_tile = 128;  // transitions per Gram update (a rank-128 GEMM)

// Draws of all neurons for time indices [t_begin, t_begin + count): column c holds time t_begin + c.
struct DrawTile {
  Eigen::MatrixXd noise, instrument, clamp;

  void fill(uint64_t seed, int n, int64_t t_begin, int count) {
    noise.resize(n, count);
    instrument.resize(n, count);
    clamp.resize(n, count);
    const int64_t t_end = t_begin + count;
    for (int i = 0; i < n; ++i) {
      const uint64_t stream = subsequence(Purpose::dynamics, static_cast<uint32_t>(i));
      for (int64_t b = t_begin / 2; 2 * b < t_end; ++b) {
        StepDraws pair[2];
        step_draws_pair(philox_block(seed, stream, static_cast<uint64_t>(b)), pair[0], pair[1]);
        for (int parity = 0; parity < 2; ++parity) {
          const int64_t t = 2 * b + parity;
          if (t < t_begin || t >= t_end) continue;
          const auto c = static_cast<Eigen::Index>(t - t_begin);
          noise(i, c) = pair[parity].noise;
          instrument(i, c) = pair[parity].instrument;
          clamp(i, c) = pair[parity].clamp;
        }
      }
    }
  }
};

// Runs the dynamics and calls visit(t, z[t], x[t], x[t+1], z[t+1]) for t = 0 .. T-2 with the
// states as observed: in perturbation mode x at every even t is the clamped value, as the
// notebook's stored trajectory holds it (the sigmoid output it replaces is never seen).
template <class Visit>
void run_dynamics(const NetworkTask& task, const Eigen::MatrixXd& A, Nonlinearity f, Visit&& visit) {
  const int n = task.n_neurons;
  Eigen::VectorXd x = Eigen::VectorXd::Zero(n);
  Eigen::VectorXd next(n), recurrent(n);
  DrawTile draws;
  int64_t tile_begin = 0;
  for (int64_t t = 0; t + 1 < task.timesteps; ++t) {
    if (t % draw_tile == 0) {
      // Time indices t .. t+draw_tile: the last transition of the tile needs z[t+1] and clamp[t+1].
      tile_begin = t;
      draws.fill(task.seed, n, t, static_cast<int>(std::min<int64_t>(draw_tile + 1, task.timesteps - t)));
      if (t == 0 && task.perturb) x = draws.clamp.col(0);
    }
    const auto c = static_cast<Eigen::Index>(t - tile_begin);
    recurrent.noalias() = A * x;
    for (int i = 0; i < n; ++i)
      next(i) = activation(f, preactivation(recurrent(i), task.eta, draws.instrument(i, c + 1), draws.noise(i, c)));
    if (task.perturb && (t + 1) % 2 == 0) next = draws.clamp.col(c + 1);
    visit(t, draws.instrument.col(c), x, next, draws.instrument.col(c + 1));
    std::swap(x, next);
  }
}

}  // namespace

NetworkGrams simulate_network(const NetworkTask& task, const Eigen::MatrixXd& A, Nonlinearity f) {
  const int n = task.n_neurons;
  NetworkGrams grams{Gram(n), std::nullopt};
  if (task.perturb) grams.even.emplace(n);
  GramAccumulator all(grams.all, gram_tile, f);
  std::optional<GramAccumulator> even;
  if (task.perturb) even.emplace(*grams.even, gram_tile, f);

  run_dynamics(task, A, f, [&](int64_t t, const auto& z, const auto& x, const auto& next, const auto&) {
    all.add(z, x, next);
    if (even && t % 2 == 0) even->add(z, x, next);
  });
  all.finish();
  if (even) even->finish();
  return grams;
}

void simulate_trajectory(const NetworkTask& task, const Eigen::MatrixXd& A, Eigen::MatrixXd& X,
                         Eigen::MatrixXd& Z, Nonlinearity f) {
  const int n = task.n_neurons;
  X = Eigen::MatrixXd::Zero(n, task.timesteps);
  Z = Eigen::MatrixXd::Zero(n, task.timesteps);
  run_dynamics(task, A, f, [&](int64_t t, const auto& z, const auto& x, const auto& next, const auto& z_next) {
    const auto c = static_cast<Eigen::Index>(t);
    X.col(c) = x;
    Z.col(c) = z;
    X.col(c + 1) = next;
    Z.col(c + 1) = z_next;
  });
}

}  // namespace causalsweep
