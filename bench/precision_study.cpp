// What would fp32 do to the per-run scores? A measured precision study for the fused simulation +
// Gram kernel (kernels/simulate_gram.cu, float64 throughout today).
//
// Issue 3 suggests "fp32 state within a tile of steps, float64 across tiles" for that kernel, and also
// requires every per-run score of the GPU backend to agree with the CPU backend (float64) within 1e-6
// absolute. This program measures, on the CPU, how far each fp32 placement moves the scores, so the
// choice can be made from numbers. Per network it builds the Gram matrices several ways from the SAME
// Philox draws (philox_block + step_draws_pair, as host/simulate.cpp reads them; only the arithmetic
// precision changes) and scores each with the library's own scorer (score_network, exactly what the
// CPU backend runs after simulate_network):
//
//   reference   host/simulate.cpp's simulate_network (float64, Gram tiles of 128): the CPU backend
//   check       this file's loop in float64 with tiles of 128: must equal the reference bit for bit
//               (proves the loop below reads the same draws and does the same arithmetic)
//   f64 tile32  float64 everywhere, Gram tiles of 32 (the kernel's tiles are 16 to 64): float64 reordering only
//   (a)         fp32 dynamics: A (rounded to float), A x[t], the preactivation, the sigmoid and the
//               regression target logit(x[t+1]) in float; Gram products and sums in float64 of
//               those float values (tiles of 32)
//   (b)         float64 dynamics; each tile of 32 transitions forms its Gram increment in float
//               (products of the float-rounded w / u values, summed over the tile in float), then
//               adds it to the float64 Gram
//   (c)         (a) and (b) together
//
// For every variant and estimator it prints, against the reference: max and median |delta
// corr_with_truth|, max |delta| of auc, tpr, fpr and first_stage_f (the other scores runs.csv holds
// for these estimators), how many runs differ by more than 1e-6 in any score, how many runs' flags
// differ, how many decisions changed (lasso: zero / non-zero entries of the estimate; ols, iv: the
// t-test decisions), the largest change of the estimate relative to its largest entry, and the largest
// differences of the Gram entries. No timings: this is about numbers only.
//
//   precision_study [networks] [threads] [workloads]
//     networks   seeds 0 .. networks-1 per workload (default 40)
//     threads    worker threads, one network each at a time (default: all cores)
//     workloads  W, T4 or both (default both): W = n 100, T 5000; T4 = n 40, T 20000 (tutorial 4);
//                both with eta 2, p_connect 0.1, observed ratios {1, .8, .6, .4, .2},
//                estimators correlation, lasso, ols, iv (the library's defaults)
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "causalsweep/estimators.hpp"
#include "causalsweep/model.hpp"
#include "causalsweep/random_stream.hpp"
#include "causalsweep/scores.hpp"
#include "cpu_network.hpp"
#include "engine.hpp"
#include "workload_w.hpp"

namespace cs = causalsweep;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
constexpr int kernel_tile = 32;    // transitions per Gram tile, as in kernels/simulate_gram.cu (16 to 64 there)
constexpr int library_tile = 128;  // transitions per Gram tile in host/simulate.cpp

// ---- the model's formulas per precision --------------------------------------------------------
// float64: the library's own functions (model.hpp). float: the same formulas evaluated in float,
// which is what a fp32 kernel would compute.

double preactivation_of(double recurrent, double eta, double instrument, double noise) {
  return cs::preactivation(recurrent, eta, instrument, noise);
}
// Float version of model.hpp's preactivation.
float preactivation_of(float recurrent, float eta, float instrument, float noise) {
  return recurrent + eta * instrument + noise;
}

double activation_of(double u) { return cs::activation(cs::Nonlinearity::sigmoid, u); }
// Float version of model.hpp's sigmoid (expf).
float activation_of(float u) { return 1.0f / (1.0f + std::exp(-u)); }

double target_of(double next, bool& saturated) {
  return cs::regression_target(cs::Nonlinearity::sigmoid, next, saturated);
}
// Float version of model.hpp's logit_clamped. 1 - logit_floor is not a float (it rounds to 1), so
// the upper clamp is the largest float below 1; "saturated" keeps the library's definition.
float target_of(float next, bool& saturated) {
  const auto x = static_cast<double>(next);
  saturated = !(x >= cs::logit_floor && x <= 1.0 - cs::logit_floor);
  const float low = static_cast<float>(cs::logit_floor), high = std::nextafter(1.0f, 0.0f);
  const float clamped = std::min(std::max(next, low), high);
  return std::log(clamped / (1.0f - clamped));
}

// ---- the random numbers: every draw of one network, read once ----------------------------------

// noise(i, t) = eps[t], instrument(i, t) = z[t] of neuron i (column t = time index t), exactly the
// words host/simulate.cpp reads: stream (dynamics, i), block t / 2, one Box-Muller per block.
struct Draws {
  Eigen::MatrixXd noise, instrument;
};

Draws network_draws(uint64_t seed, int n, int timesteps) {
  Draws d{Eigen::MatrixXd(n, timesteps), Eigen::MatrixXd(n, timesteps)};
  for (int i = 0; i < n; ++i) {
    const uint64_t stream = cs::subsequence(cs::Purpose::dynamics, static_cast<uint32_t>(i));
    for (int t = 0; t < timesteps; t += 2) {
      cs::StepDraws pair[2];
      cs::step_draws_pair(cs::philox_block(seed, stream, static_cast<uint64_t>(t / 2)), pair[0], pair[1]);
      for (int parity = 0; parity < 2 && t + parity < timesteps; ++parity) {
        d.noise(i, t + parity) = pair[parity].noise;
        d.instrument(i, t + parity) = pair[parity].instrument;
      }
    }
  }
  return d;
}

// ---- Gram accumulation with the tile increments in float64 or float ----------------------------

enum class TileSum { float64, float32 };

// GramAccumulator (host/gram.cpp) with explicit targets and a choice of tile arithmetic. float64 is
// the library's flush line for line; float32 forms the tile's increment from the float-rounded w / u
// in float (rankUpdate / GEMM in float, so every product and the sum over the tile are float) and
// adds it to the float64 Gram.
class TileGram {
 public:
  TileGram(int n, int tile, TileSum sum) : gram(n), sum_(sum), w_(2 * n + 1, tile), u_(2 * n, tile) {}

  void add(const Eigen::VectorXd& z, const Eigen::VectorXd& x, const Eigen::VectorXd& next,
           const Eigen::VectorXd& target, int64_t saturated) {
    const int n = gram.n;
    auto w = w_.col(filled_);
    auto u = u_.col(filled_);
    w(0) = 1.0;
    w.segment(1, n) = z;
    w.segment(1 + n, n) = x;
    u.head(n) = next;
    u.tail(n) = target;
    gram.saturated_logits += saturated;
    if (++filled_ == w_.cols()) flush();
  }

  void finish() {
    flush();
    gram.ww = gram.ww.selfadjointView<Eigen::Lower>();
  }

  cs::Gram gram;

 private:
  void flush() {
    if (filled_ == 0) return;
    const auto w = w_.leftCols(filled_);
    const auto u = u_.leftCols(filled_);
    if (sum_ == TileSum::float64) {
      gram.ww.selfadjointView<Eigen::Lower>().rankUpdate(w);
      gram.wu.noalias() += w * u.transpose();
      gram.uu += u.cwiseAbs2().rowwise().sum();
    } else {
      const Eigen::MatrixXf wf = w.cast<float>(), uf = u.cast<float>();
      Eigen::MatrixXf ww = Eigen::MatrixXf::Zero(wf.rows(), wf.rows());
      ww.selfadjointView<Eigen::Lower>().rankUpdate(wf);
      const Eigen::MatrixXf wu = wf * uf.transpose();
      const Eigen::VectorXf uu = uf.cwiseAbs2().rowwise().sum();
      gram.ww += ww.cast<double>();  // lower triangle only, as the float64 path, until finish()
      gram.wu += wu.cast<double>();
      gram.uu += uu.cast<double>();
    }
    gram.transitions += filled_;
    filled_ = 0;
  }

  TileSum sum_;
  Eigen::MatrixXd w_, u_;
  int filled_ = 0;
};

// ---- the dynamics in precision Real ------------------------------------------------------------

// x[t+1] = sigmoid(A x[t] + eta z[t+1] + eps[t]), x[0] = 0, as host/simulate.cpp's run_dynamics
// (same Eigen A * x, same order of operations) with every quantity of the step in Real; each
// transition goes to every accumulator in `sinks`.
template <class Real>
void simulate(const Draws& draws, const Eigen::MatrixXd& A, double eta, const std::vector<TileGram*>& sinks) {
  using Vector = Eigen::Matrix<Real, Eigen::Dynamic, 1>;
  using Matrix = Eigen::Matrix<Real, Eigen::Dynamic, Eigen::Dynamic>;
  const auto n = A.rows();
  const auto timesteps = draws.noise.cols();
  const Matrix A_real = A.cast<Real>();
  const auto eta_real = static_cast<Real>(eta);
  Vector x = Vector::Zero(n), next(n), recurrent(n), target(n);
  for (Eigen::Index t = 0; t + 1 < timesteps; ++t) {
    recurrent.noalias() = A_real * x;
    int64_t saturated = 0;
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto instrument = static_cast<Real>(draws.instrument(i, t + 1));
      const auto noise = static_cast<Real>(draws.noise(i, t));
      next(i) = activation_of(preactivation_of(recurrent(i), eta_real, instrument, noise));
      bool clamped = false;
      target(i) = target_of(next(i), clamped);
      saturated += clamped;
    }
    const Eigen::VectorXd x64 = x.template cast<double>(), next64 = next.template cast<double>(),
                          target64 = target.template cast<double>(), z = draws.instrument.col(t);
    for (TileGram* sink : sinks) sink->add(z, x64, next64, target64, saturated);
    std::swap(x, next);
  }
  for (TileGram* sink : sinks) sink->finish();
}

// ---- comparisons -------------------------------------------------------------------------------

// |a - b|, with NaN equal to NaN and NaN against a number infinitely far.
double delta(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0.0 : inf;
  return std::abs(a - b);
}

// Largest Gram differences: entrywise relative (|d| / |ref|, entries with ref != 0) and normalised by
// the Cauchy-Schwarz scale sqrt(G_aa G_bb) (the size an entry can have; robust where sums cancel).
struct GramDelta {
  double relative = 0, normalised = 0;
};

GramDelta gram_delta(const cs::Gram& ref, const cs::Gram& g) {
  GramDelta d;
  auto take = [&](double r, double v, double scale) {
    const double diff = std::abs(v - r);
    if (r != 0) d.relative = std::max(d.relative, diff / std::abs(r));
    if (scale > 0) d.normalised = std::max(d.normalised, diff / scale);
  };
  for (Eigen::Index b = 0; b < ref.ww.cols(); ++b)
    for (Eigen::Index a = 0; a < ref.ww.rows(); ++a)
      take(ref.ww(a, b), g.ww(a, b), std::sqrt(ref.ww(a, a) * ref.ww(b, b)));
  for (Eigen::Index b = 0; b < ref.wu.cols(); ++b)
    for (Eigen::Index a = 0; a < ref.wu.rows(); ++a)
      take(ref.wu(a, b), g.wu(a, b), std::sqrt(ref.ww(a, a) * ref.uu(b)));
  for (Eigen::Index b = 0; b < ref.uu.size(); ++b) take(ref.uu(b), g.uu(b), ref.uu(b));
  return d;
}

bool bitwise_equal(const cs::Gram& a, const cs::Gram& b) {
  return a.transitions == b.transitions && a.saturated_logits == b.saturated_logits && a.ww == b.ww &&
         a.wu == b.wu && a.uu == b.uu;
}

// One run's estimate as the scorer sees it: V and its decisions (declared(); empty for correlation).
struct RunEstimate {
  Eigen::MatrixXd V, decided;
};

std::vector<RunEstimate> run_estimates(const cs::NetworkTask& task, const cs::SweepGrid& grid, const cs::Gram& gram) {
  std::vector<RunEstimate> out;  // ratio-major, then estimator: NetworkResult::runs' order
  for (double ratio : grid.observed_ratios)
    for (const cs::EstimatorSpec& spec : grid.estimators) {
      const int k = cs::observed_count(task.n_neurons, ratio);
      const cs::Estimate e = cs::run_estimator(spec, gram, nullptr, k, task.eta, cs::PValues::skip);
      out.push_back({e.V, cs::declared(e, spec)});
    }
  return out;
}

// What one run of a variant does differently from the reference run.
struct RunDelta {
  int estimator = 0;
  double score[cs::score_count] = {};  // |delta| per score (0 where the run has no such score)
  double first_stage_f_relative = 0;
  bool flags_differ = false;
  int changed_decisions = 0;
  double estimate_relative = 0;  // max |delta V| / max |V_ref|
};

RunDelta compare_run(const cs::RunResult& ref, const cs::RunResult& var, const RunEstimate& ref_e,
                     const RunEstimate& var_e) {
  RunDelta d;
  d.estimator = ref.estimator_index;
  for (int s = 0; s < cs::score_count; ++s)
    if (ref.has(s) || var.has(s)) d.score[s] = delta(ref.score[s], var.score[s]);
  if (ref.has(cs::score_first_stage_f))
    d.first_stage_f_relative = d.score[cs::score_first_stage_f] / std::abs(ref.score[cs::score_first_stage_f]);
  d.flags_differ = ref.flags != var.flags;
  for (Eigen::Index e = 0; e < ref_e.decided.size(); ++e)
    d.changed_decisions += delta(ref_e.decided(e), var_e.decided(e)) != 0.0;
  double largest = 0, moved = 0;
  for (Eigen::Index e = 0; e < ref_e.V.size(); ++e) {
    if (!std::isnan(ref_e.V(e))) largest = std::max(largest, std::abs(ref_e.V(e)));
    moved = std::max(moved, delta(ref_e.V(e), var_e.V(e)));
  }
  d.estimate_relative = largest > 0 ? moved / largest : moved;
  return d;
}

// ---- one network, every variant ----------------------------------------------------------------

const char* const variant_names[] = {"f64 tile32", "(a) fp32 dynamics", "(b) fp32 tile sums", "(c) both"};
constexpr int variant_count = 4;

struct VariantOutcome {
  std::vector<RunDelta> runs;
  GramDelta gram;
  int64_t saturated_logits = 0;
};

struct NetworkStudy {
  bool check_bitwise = false;  // this file's float64 loop, tiles of 128, equals simulate_network
  int64_t saturated_logits = 0;  // the reference's
  VariantOutcome variants[variant_count];
};

NetworkStudy study_network(const cs::NetworkTask& task, const cs::SweepGrid& grid) {
  cs::PhaseTimes times;
  bool empty = false;
  const Eigen::MatrixXd A = cs::network_connectivity(task, grid.model, empty);

  // The reference: exactly what the CPU backend runs.
  const cs::NetworkGrams reference = cs::simulate_network(task, A, grid.model.nonlinearity);
  const cs::NetworkResult ref_result = cs::score_network(task, grid, A, empty, reference.all, nullptr, times);
  const std::vector<RunEstimate> ref_estimates = run_estimates(task, grid, reference.all);

  // The variants, from the same draws: float64 dynamics feed the check, f64 tile32 and (b);
  // float dynamics feed (a) and (c).
  const Draws draws = network_draws(task.seed, task.n_neurons, task.timesteps);
  const int n = task.n_neurons;
  TileGram check(n, library_tile, TileSum::float64);
  TileGram f64_tile32(n, kernel_tile, TileSum::float64), b(n, kernel_tile, TileSum::float32);
  TileGram a(n, kernel_tile, TileSum::float64), c(n, kernel_tile, TileSum::float32);
  simulate<double>(draws, A, task.eta, {&check, &f64_tile32, &b});
  simulate<float>(draws, A, task.eta, {&a, &c});

  NetworkStudy study;
  study.check_bitwise = bitwise_equal(check.gram, reference.all);
  study.saturated_logits = reference.all.saturated_logits;
  const TileGram* variants[variant_count] = {&f64_tile32, &a, &b, &c};
  for (int v = 0; v < variant_count; ++v) {
    const cs::Gram& gram = variants[v]->gram;
    const cs::NetworkResult result = cs::score_network(task, grid, A, empty, gram, nullptr, times);
    const std::vector<RunEstimate> estimates = run_estimates(task, grid, gram);
    VariantOutcome& out = study.variants[v];
    for (size_t r = 0; r < result.runs.size(); ++r)
      out.runs.push_back(compare_run(ref_result.runs[r], result.runs[r], ref_estimates[r], estimates[r]));
    out.gram = gram_delta(reference.all, gram);
    out.saturated_logits = gram.saturated_logits;
  }
  return study;
}

// ---- a workload: networks on worker threads, then the tables -----------------------------------

std::string number(double v) { return std::isinf(v) ? "NaN vs number" : fmt::format("{:.2e}", v); }

void run_workload(const std::string& name, int networks, int n, int timesteps, int threads) {
  const cs::SweepGrid grid = workload_w_grid(networks, n, timesteps);
  std::vector<NetworkStudy> studies(grid.networks.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < studies.size(); i = next++) studies[i] = study_network(grid.networks[i], grid);
  };
  {
    std::vector<std::jthread> pool;
    for (int w = 1; w < threads; ++w) pool.emplace_back(worker);
    worker();
  }

  int bitwise = 0;
  int64_t ref_saturated = 0;
  for (const NetworkStudy& s : studies) {
    bitwise += s.check_bitwise;
    ref_saturated += s.saturated_logits;
  }
  fmt::print("\n## Workload {}: n = {}, T = {}, eta = 2, p_connect = 0.1, seeds 0..{}, ratios 1 .8 .6 .4 .2\n\n",
             name, n, timesteps, networks - 1);
  fmt::print("Check: this program's float64 loop (tiles of 128) equals simulate_network's Gram bit for bit "
             "in {} of {} networks. Saturated logits in the reference: {}.\n\n",
             bitwise, networks, ref_saturated);

  fmt::print("Gram entries against the reference (max over networks):\n\n");
  fmt::print("| variant | max rel. diff, entrywise | max diff / sqrt(G_aa G_bb) | saturated logits |\n");
  fmt::print("|---|---:|---:|---:|\n");
  for (int v = 0; v < variant_count; ++v) {
    GramDelta worst;
    int64_t saturated = 0;
    for (const NetworkStudy& s : studies) {
      worst.relative = std::max(worst.relative, s.variants[v].gram.relative);
      worst.normalised = std::max(worst.normalised, s.variants[v].gram.normalised);
      saturated += s.variants[v].saturated_logits;
    }
    fmt::print("| {} | {} | {} | {} |\n", variant_names[v], number(worst.relative), number(worst.normalised),
               saturated);
  }

  fmt::print("\nPer-run scores against the reference ({} runs per estimator; |delta| absolute; "
             "'> 1e-6': runs with any score off by more than 1e-6 (of them, by score: corr_with_truth, auc, tpr, "
             "fpr, first_stage_f); decisions: entries that changed / runs "
             "with a change):\n\n",
             networks * static_cast<int>(grid.observed_ratios.size()));
  fmt::print("| variant | estimator | max d corr | median d corr | max d auc | max d tpr | max d fpr | "
             "max d first_stage_f (rel.) | runs > 1e-6 (corr, auc, tpr, fpr, F) | flags differ | decisions changed | max dV / max|V| |\n");
  fmt::print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int v = 0; v < variant_count; ++v)
    for (size_t e = 0; e < grid.estimators.size(); ++e) {
      std::vector<double> corr;
      double worst[cs::score_count] = {}, fsf_relative = 0, v_relative = 0;
      int over = 0, flags = 0, decisions = 0, decision_runs = 0;
      int over_by[cs::score_count] = {};  // runs off by more than 1e-6 in this score
      for (const NetworkStudy& s : studies)
        for (const RunDelta& d : s.variants[v].runs) {
          if (d.estimator != static_cast<int>(e)) continue;
          corr.push_back(d.score[cs::score_corr_with_truth]);
          for (int k = 0; k < cs::score_count; ++k) worst[k] = std::max(worst[k], d.score[k]);
          fsf_relative = std::max(fsf_relative, d.first_stage_f_relative);
          v_relative = std::max(v_relative, d.estimate_relative);
          over += *std::max_element(std::begin(d.score), std::end(d.score)) > 1e-6;
          for (int k = 0; k < cs::score_count; ++k) over_by[k] += d.score[k] > 1e-6;
          flags += d.flags_differ;
          decisions += d.changed_decisions;
          decision_runs += d.changed_decisions > 0;
        }
      std::sort(corr.begin(), corr.end());
      const double median = corr.size() % 2 ? corr[corr.size() / 2]
                                            : 0.5 * (corr[corr.size() / 2 - 1] + corr[corr.size() / 2]);
      const cs::EstimatorMethod method = grid.estimators[e].method;
      const bool decides = method != cs::EstimatorMethod::correlation;
      const bool iv = method == cs::EstimatorMethod::iv;
      fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", variant_names[v],
                 grid.estimators[e].label, number(worst[cs::score_corr_with_truth]), number(median),
                 number(worst[cs::score_auc]), decides ? number(worst[cs::score_tpr]) : "-",
                 decides ? number(worst[cs::score_fpr]) : "-",
                 iv ? fmt::format("{} ({})", number(worst[cs::score_first_stage_f]), number(fsf_relative)) : "-",
                 fmt::format("{} ({}, {}, {}, {}, {})", over, over_by[cs::score_corr_with_truth],
                             over_by[cs::score_auc], over_by[cs::score_tpr], over_by[cs::score_fpr],
                             over_by[cs::score_first_stage_f]),
                 flags, decides ? fmt::format("{} / {}", decisions, decision_runs) : "-", number(v_relative));
    }
}

}  // namespace

int main(int argc, char** argv) {
  const int networks = argc > 1 ? std::stoi(argv[1]) : 40;
  const int threads = argc > 2 && std::stoi(argv[2]) > 0 ? std::stoi(argv[2])
                                                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const std::string which = argc > 3 ? argv[3] : "both";
  if (networks < 1 || (which != "W" && which != "T4" && which != "both")) {
    std::fputs("usage: precision_study [networks >= 1] [threads] [W|T4|both]\n", stderr);
    return 2;
  }
  fmt::print("# fp32 in the simulation + Gram kernel: per-run scores against the float64 CPU backend\n");
  if (which != "T4") run_workload("W", networks, 100, 5000, threads);
  if (which != "W") run_workload("T4 (tutorial 4)", networks, 40, 20000, threads);
  return 0;
}
