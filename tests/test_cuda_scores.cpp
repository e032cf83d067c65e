// The GPU correlation estimator and per-run scores (kernels/scores.cu) against the CPU's.
//
//   CudaScoresHost.*    without a GPU: the kernels' block programs run by the host emulator against
//                       correlation() / perturbation() / granger() (host/estimators.cpp) on Grams of
//                       simulated and degenerate networks, and against score_run() (host/scores.cpp)
//                       on random truths and estimates: ties, NaN, one class, decisions given or by
//                       threshold, AUC of |V| or of granger's 1 - p, k = 1 .. 200 (sort buffer in
//                       shared memory and in global scratch)
//   CudaScoresDevice.*  on a GPU (skipped without one): the real launches against the same references
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "causalsweep/cuda_devices.hpp"

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <Eigen/Dense>

#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/gram.hpp"
#include "causalsweep/grid.hpp"
#include "causalsweep/scores.hpp"
#include "cuda_check.cuh"
#include "cuda_estimation.hpp"
#include "cuda_kernels.hpp"
#include "cuda_test_support.hpp"
#include "engine.hpp"
#include "score_kernels.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
using cs::test::h100_shared_limit;
constexpr double tolerance = 1e-12;

// Both NaN, or both numbers within the tolerance (correlations, AUCs and rates all lie in [-1, 1]).
bool same(double got, double want, double& largest) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  const double gap = std::abs(got - want);
  largest = std::max(largest, gap);
  return gap <= tolerance;
}

// ---- correlation --------------------------------------------------------------------------------

// Grams in the kernels' buffer layout, one after another.
std::vector<double> pack_grams(const std::vector<cs::Gram>& grams) {
  std::vector<double> buffers;
  for (const cs::Gram& g : grams) cs::test::append_gram(g, buffers);
  EXPECT_EQ(buffers.size(), grams.size() * cuda::gram_doubles(grams.front().n));
  return buffers;
}

// The host emulation of the correlation kernel on `grams` (same n), every V entry and flag against
// correlation() of each Gram (outputs poisoned first). Returns the largest |V - V_cpu|.
double expect_correlation_matches(const std::vector<cs::Gram>& grams, int k, const std::string& what) {
  const int n = grams.front().n;
  std::vector<double> buffers = pack_grams(grams);
  std::vector<double> V(grams.size() * k * k, -7.0);  // not NaN: a NaN the kernel forgets would pass
  std::vector<uint32_t> flags(grams.size(), 0xdeadbeefu);
  cuda::CorrelationBatch batch;
  batch.networks = static_cast<int>(grams.size());
  batch.n = n;
  batch.k = k;
  batch.grams = buffers.data();
  batch.V = V.data();
  batch.flags = flags.data();
  cuda::emulate_correlation_on_host(batch);

  double largest = 0;
  for (size_t net = 0; net < grams.size(); ++net) {
    const cs::Estimate cpu = cs::correlation(grams[net], k);
    EXPECT_EQ(flags[net], cpu.flags) << what << " network " << net;
    int bad = 0;
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < k; ++i) {
        const double got = V[net * k * k + i + static_cast<size_t>(j) * k];
        if (!same(got, cpu.V(i, j), largest) && ++bad <= 5)
          ADD_FAILURE() << what << " network " << net << ": V(" << i << ", " << j << ") = " << got << ", CPU "
                        << cpu.V(i, j);
      }
    EXPECT_EQ(bad, 0) << what << " network " << net;
  }
  return largest;
}

// Simulated networks for the estimator kernels: sizes, lengths, both nonlinearities (sigmoid and the
// linear VAR model) and the observed k of each.
struct SimulatedCase {
  int n, timesteps;
  cs::Nonlinearity f;
  std::vector<int> ks;
};
const std::vector<SimulatedCase> simulated_cases = {{1, 500, cs::Nonlinearity::sigmoid, {1}},
                                                    {12, 2000, cs::Nonlinearity::sigmoid, {12, 5, 2, 1}},
                                                    {40, 3000, cs::Nonlinearity::identity, {40, 17}},
                                                    {70, 1500, cs::Nonlinearity::sigmoid, {70, 33}}};

TEST(CudaScoresHost, CorrelationOfSimulatedNetworksMatchesCpu) {
  double largest = 0;
  for (const SimulatedCase& c : simulated_cases) {
    std::vector<cs::Gram> grams;
    for (uint64_t seed : {3, 11, 12}) grams.push_back(cs::test::simulated_grams(seed, c.n, c.timesteps, 2.0, 0.2, false, c.f).all);
    for (int k : c.ks)
      largest = std::max(largest, expect_correlation_matches(grams, k, "n " + std::to_string(c.n) + " k " + std::to_string(k)));
  }
  std::printf("[          ] correlation: largest |V - V_cpu| %.3g\n", largest);
}

TEST(CudaScoresHost, PerturbationOnEvenGramsMatchesCpu) {
  std::vector<cs::Gram> grams;
  std::vector<cs::Gram> all;
  for (uint64_t seed : {5, 6, 7}) {
    cs::NetworkGrams g = cs::test::simulated_grams(seed, 6, 3001, 1.0, 0.3, true);
    grams.push_back(*g.even);
  }
  double largest = 0;
  for (int k : {6, 3}) {
    // perturbation() is correlation_from_sums on the even Gram: check the kernel against it by name too.
    const double gap = expect_correlation_matches(grams, k, "perturbation k " + std::to_string(k));
    largest = std::max(largest, gap);
    for (const cs::Gram& g : grams) {
      const cs::Estimate p = cs::perturbation(g, k), c = cs::correlation(g, k);
      EXPECT_TRUE(p.V.cwiseEqual(c.V).all());
    }
  }
  std::printf("[          ] perturbation: largest |V - V_cpu| %.3g\n", largest);
}

// Grams of recorded trajectories where some neuron never varies: the CPU flags constant_regressor
// and leaves V NaN in that row and column; the kernel must do the same, exactly.
TEST(CudaScoresHost, CorrelationOfDegenerateGramsMatchesCpu) {
  const int n = 5, T = 400;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.05, 0.95);
  // `constant_neuron` holds constant_value over t in [from, to) (and random values elsewhere).
  auto trajectories = [&](int constant_neuron, double constant_value, int from, int to) {
    Eigen::MatrixXd X(n, T);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < n; ++i) X(i, t) = i == constant_neuron && t >= from && t < to ? constant_value : unit(rng);
    return cs::gram_from_trajectories(X, Eigen::MatrixXd());
  };
  // Neuron 3 constant (0.5, then 0.3 whose sums are not exact), neuron 0 silent (all 0), neuron 2
  // constant only as a target (x[t+1], t >= 1) or only as a regressor (x[t], t <= T - 2), none constant.
  const std::vector<cs::Gram> grams = {trajectories(3, 0.5, 0, T),  trajectories(3, 0.3, 0, T),
                                       trajectories(0, 0.0, 0, T),  trajectories(2, 0.25, 1, T),
                                       trajectories(2, 0.25, 0, T - 1), trajectories(-1, 0.0, 0, T)};
  for (const cs::Gram& g : grams) ASSERT_EQ(g.ww(0, 0), static_cast<double>(g.transitions));
  for (int k : {5, 4, 3, 1}) expect_correlation_matches(grams, k, "degenerate k " + std::to_string(k));
  // The CPU does flag the cases this test is about (so the comparison above is not vacuous).
  EXPECT_NE(cs::correlation(grams[0], 4).flags & cs::flag_constant_regressor, 0u);
  EXPECT_NE(cs::correlation(grams[2], 1).flags & cs::flag_constant_regressor, 0u);
  EXPECT_TRUE(std::isnan(cs::correlation(grams[2], 1).V(0, 0)));
  for (int g : {3, 4}) {
    const cs::Estimate e = cs::correlation(grams[g], 3);
    EXPECT_NE(e.flags & cs::flag_constant_regressor, 0u) << g;
    EXPECT_EQ(e.V.array().isNaN().count(), 3) << g;  // a row (target 2) or a column (regressor 2)
  }
  EXPECT_EQ(cs::correlation(grams[5], 5).flags, 0u);

  // A Gram without transitions (m = 0): NaN everywhere on both sides, and no flag (NaN <= 0 is false).
  Eigen::MatrixXd one_step(n, 1);
  one_step.setConstant(0.5);
  const std::vector<cs::Gram> empty = {cs::gram_from_trajectories(one_step, Eigen::MatrixXd())};
  expect_correlation_matches(empty, n, "no transitions");
}

// ---- granger ------------------------------------------------------------------------------------

// What a Granger comparison saw, so tests can check they reached every kind of result.
struct GrangerSeen {
  int declared = 0, not_declared = 0, undefined = 0;
  uint32_t flags = 0;
};

// Poisoned outputs (not NaN: a NaN the kernel forgets would pass) for a batch of Grams.
struct GrangerArrays {
  std::vector<double> grams, V, rank_key;
  std::vector<uint32_t> flags;
  GrangerArrays(const std::vector<cs::Gram>& g, int k) : grams(pack_grams(g)) {
    V.assign(g.size() * k * k, -7.0);
    rank_key.assign(g.size() * k * k, -7.0);
    flags.assign(g.size(), 0xdeadbeefu);
  }
};

cuda::GrangerBatch granger_batch(int networks, int n, int k, const cs::EstimatorSpec& spec) {
  cuda::GrangerBatch batch;
  batch.networks = networks;
  batch.n = n;
  batch.k = k;
  batch.level = spec.correction == cs::Correction::bonferroni ? spec.level / (static_cast<double>(k) * k) : spec.level;
  batch.inclusive = spec.correction != cs::Correction::none;
  return batch;
}

// The kernel's V (decisions), 1 - p and flags against run_estimator's granger on each Gram (the CPU
// sweep's path): decisions and flags exactly, the key to 1e-12 (both sides run granger_test.hpp's
// code; only the compilers' contraction of multiply-adds may differ).
void expect_granger_matches(const std::vector<cs::Gram>& grams, int k, const cs::EstimatorSpec& spec,
                            const GrangerArrays& got, const std::string& what, GrangerSeen& seen) {
  for (size_t net = 0; net < grams.size(); ++net) {
    const cs::Estimate cpu = cs::run_estimator(spec, grams[net], nullptr, k, 0.0, cs::PValues::skip);
    EXPECT_EQ(got.flags[net], cpu.flags) << what << " network " << net << ": " << cs::flags_to_string(got.flags[net])
                                         << ", CPU " << cs::flags_to_string(cpu.flags);
    seen.flags |= cpu.flags;
    int bad = 0;
    double largest = 0;
    for (int j = 0; j < k; ++j)
      for (int i = 0; i < k; ++i) {
        const size_t at = net * k * k + i + static_cast<size_t>(j) * k;
        const double v = got.V[at], key = got.rank_key[at], want_key = 1.0 - cpu.p_value(i, j);
        const bool v_ok = std::isnan(cpu.V(i, j)) ? std::isnan(v) : v == cpu.V(i, j);
        if ((!v_ok || !same(key, want_key, largest)) && ++bad <= 5)
          ADD_FAILURE() << what << " network " << net << " (" << i << ", " << j << "): V " << v << " key " << key
                        << ", CPU " << cpu.V(i, j) << " " << want_key;
        seen.undefined += std::isnan(cpu.V(i, j));
        seen.declared += cpu.V(i, j) == 1.0;
        seen.not_declared += cpu.V(i, j) == 0.0;
      }
    EXPECT_EQ(bad, 0) << what << " network " << net;
  }
}

void emulate_and_compare_granger(const std::vector<cs::Gram>& grams, int k, const cs::EstimatorSpec& spec,
                                 const std::string& what, GrangerSeen& seen) {
  GrangerArrays arrays(grams, k);
  cuda::GrangerBatch batch = granger_batch(static_cast<int>(grams.size()), grams.front().n, k, spec);
  batch.grams = arrays.grams.data();
  batch.V = arrays.V.data();
  batch.rank_key = arrays.rank_key.data();
  batch.flags = arrays.flags.data();
  cuda::emulate_granger_on_host(batch);
  expect_granger_matches(grams, k, spec, arrays, what, seen);
}

cs::EstimatorSpec granger_spec(cs::Correction correction, double level) {
  cs::EstimatorSpec spec;
  spec.method = cs::EstimatorMethod::granger;
  spec.correction = correction;
  spec.level = level;
  return spec;
}

// Simulated networks (eta = 0.5), every observed k, both corrections the GPU decides; the decisions
// must include both outcomes, so a wrong comparison cannot pass.
TEST(CudaScoresHost, GrangerOfSimulatedNetworksMatchesCpu) {
  GrangerSeen seen;
  for (const SimulatedCase& c : simulated_cases) {
    std::vector<cs::Gram> grams;
    for (uint64_t seed : {3, 11, 12}) grams.push_back(cs::test::simulated_grams(seed, c.n, c.timesteps, 0.5, 0.2, false, c.f).all);
    for (int k : c.ks)
      for (const auto& [correction, level] : {std::pair{cs::Correction::none, 0.05}, std::pair{cs::Correction::bonferroni, 0.05},
                                              std::pair{cs::Correction::none, 0.3}})
        emulate_and_compare_granger(grams, k, granger_spec(correction, level),
                                    "n " + std::to_string(c.n) + " k " + std::to_string(k) + " level " + std::to_string(level),
                                    seen);
  }
  EXPECT_GT(seen.declared, 0);
  EXPECT_GT(seen.not_declared, 0);
}

// Degenerate Grams: a neuron that never varies (constant_regressor), two neurons that move together
// (x_j a multiple of x_i: singular), too few transitions (m = 3) and none at all.
TEST(CudaScoresHost, GrangerOfDegenerateGramsMatchesCpu) {
  const int n = 5, T = 300;
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> unit(0.05, 0.95);
  auto gram = [&](int timesteps, int constant_neuron, bool collinear) {
    Eigen::MatrixXd X(n, timesteps);
    for (int t = 0; t < timesteps; ++t)
      for (int i = 0; i < n; ++i) X(i, t) = i == constant_neuron ? 0.3 : unit(rng);
    if (collinear) X.row(4) = 0.5 * X.row(1);
    return cs::gram_from_trajectories(X, Eigen::MatrixXd());
  };
  const std::vector<cs::Gram> grams = {gram(T, 2, false), gram(T, 0, false), gram(T, -1, true), gram(T, -1, false)};
  GrangerSeen seen;
  for (int k : {5, 3, 1}) emulate_and_compare_granger(grams, k, granger_spec(cs::Correction::none, 0.05),
                                                      "degenerate k " + std::to_string(k), seen);
  EXPECT_NE(seen.flags & cs::flag_constant_regressor, 0u);
  EXPECT_NE(seen.flags & cs::flag_singular, 0u);
  EXPECT_GT(seen.undefined, 0);
  EXPECT_GT(seen.declared + seen.not_declared, 0);

  GrangerSeen few;
  const std::vector<cs::Gram> short_grams = {gram(4, -1, false), gram(1, -1, false)};  // m = 3, m = 0
  emulate_and_compare_granger(short_grams, n, granger_spec(cs::Correction::bonferroni, 0.05), "too few", few);
  EXPECT_EQ(few.flags, static_cast<uint32_t>(cs::flag_too_few_samples));
  EXPECT_EQ(few.undefined, 2 * n * n);
}

// Sizes outside [1, 32768] (k * k and its sort padding must fit an int), and a sort buffer that needs
// global scratch without any: refused before anything runs, on the host and at launch alike.
TEST(CudaScoresHost, BadBatchesAreRefused) {
  for (const int k : {0, -3, 32769}) {
    cuda::CorrelationBatch correlation;
    correlation.networks = 1;
    correlation.k = k;
    EXPECT_THROW(cuda::emulate_correlation_on_host(correlation), std::invalid_argument) << k;
    EXPECT_THROW(cuda::launch_correlation(correlation, nullptr), std::invalid_argument) << k;
    cuda::GrangerBatch granger;
    granger.networks = 1;
    granger.k = k;
    EXPECT_THROW(cuda::emulate_granger_on_host(granger), std::invalid_argument) << k;
    EXPECT_THROW(cuda::launch_granger(granger, nullptr), std::invalid_argument) << k;
    cuda::ScoreBatch scores;
    scores.networks = 1;
    scores.k = k;
    EXPECT_THROW(cuda::emulate_scores_on_host(scores, h100_shared_limit), std::invalid_argument) << k;
    EXPECT_THROW(cuda::launch_scores(scores, h100_shared_limit, nullptr), std::invalid_argument) << k;
    cuda::BenjaminiHochbergBatch bh;
    bh.networks = 1;
    bh.k = k;
    EXPECT_THROW(cuda::emulate_benjamini_hochberg_on_host(bh, h100_shared_limit), std::invalid_argument) << k;
    EXPECT_THROW(cuda::launch_benjamini_hochberg(bh, h100_shared_limit, nullptr), std::invalid_argument) << k;
  }
  cuda::ScoreBatch no_scratch;
  no_scratch.networks = 1;
  no_scratch.k = 200;  // its sort buffer does not fit in shared memory
  EXPECT_THROW(cuda::launch_scores(no_scratch, h100_shared_limit, nullptr), std::invalid_argument);
  cuda::BenjaminiHochbergBatch bh_no_scratch;
  bh_no_scratch.networks = 1;
  bh_no_scratch.k = 200;
  EXPECT_THROW(cuda::launch_benjamini_hochberg(bh_no_scratch, h100_shared_limit, nullptr), std::invalid_argument);
}

// ---- Benjamini-Hochberg -------------------------------------------------------------------------

// The kinds of p-value sets one run can have.
enum class PValues { uniform, strong_effects, ties, undefined_tests, all_undefined, all_tiny };

// One network's k * k p-values of a kind, from a seeded generator.
Eigen::MatrixXd p_values_of(PValues kind, int k, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  Eigen::MatrixXd p(k, k);
  for (Eigen::Index e = 0; e < p.size(); ++e) {
    double v = unit(rng);
    switch (kind) {
      case PValues::uniform: break;
      case PValues::strong_effects: v *= unit(rng) < 0.3 ? 1e-4 : 1.0; break;
      case PValues::ties: v = std::round(v * 40) / 800; break;  // 41 values in [0, 0.05]: ties at every rank
      case PValues::undefined_tests:
        v = unit(rng) < 0.2 ? std::numeric_limits<double>::quiet_NaN() : v * (unit(rng) < 0.3 ? 1e-3 : 1.0);
        break;
      case PValues::all_undefined: v = std::numeric_limits<double>::quiet_NaN(); break;
      case PValues::all_tiny: v *= 1e-12; break;
    }
    p(e) = v;
  }
  return p;
}

// Networks of every kind for one k, packed as the kernel reads them, and the CPU's decisions.
struct BhCase {
  int k;
  double alpha;
  std::vector<Eigen::MatrixXd> p;
  std::vector<double> packed() const {
    std::vector<double> out;
    for (const auto& m : p) out.insert(out.end(), m.data(), m.data() + m.size());
    return out;
  }
};

BhCase bh_case(int k, double alpha, uint64_t seed) {
  std::mt19937_64 rng(seed);
  BhCase c{k, alpha, {}};
  for (PValues kind : {PValues::uniform, PValues::strong_effects, PValues::ties, PValues::undefined_tests,
                       PValues::all_undefined, PValues::all_tiny})
    c.p.push_back(p_values_of(kind, k, rng));
  return c;
}

// Decisions against decisions(p, alpha, bh) exactly; counts what the CPU decided.
void expect_bh_matches(const BhCase& c, const std::vector<double>& got, const std::string& what, int& declared,
                       int& not_declared) {
  const size_t kk = static_cast<size_t>(c.k) * c.k;
  for (size_t net = 0; net < c.p.size(); ++net) {
    const Eigen::MatrixXd want = cs::decisions(c.p[net], c.alpha, cs::Correction::bh);
    int bad = 0;
    for (size_t e = 0; e < kk; ++e) {
      const double w = want(static_cast<Eigen::Index>(e)), g = got[net * kk + e];
      declared += w == 1.0;
      not_declared += w == 0.0;
      if (!(std::isnan(w) ? std::isnan(g) : g == w) && ++bad <= 5)
        ADD_FAILURE() << what << " network " << net << " entry " << e << ": " << g << ", CPU " << w << " (p "
                      << c.p[net](static_cast<Eigen::Index>(e)) << ")";
    }
    EXPECT_EQ(bad, 0) << what << " network " << net;
  }
}

// The step-up batch over `networks` runs of V (p-values, or t statistics with a table).
cuda::BenjaminiHochbergBatch bh_batch(std::vector<double>& V, int k, double alpha, const double* critical = nullptr,
                                      const int* table_of = nullptr) {
  cuda::BenjaminiHochbergBatch batch;
  batch.networks = static_cast<int>(V.size() / (static_cast<size_t>(k) * k));
  batch.k = k;
  batch.alpha = alpha;
  batch.V = V.data();
  batch.critical = critical;
  batch.table_of = table_of;
  return batch;
}

// Every kind of run, k from 1 to 130 (whose sort, 32768 doubles, takes global scratch at the H100's
// limit), two levels: the step-up decisions exactly as the CPU's.
TEST(CudaScoresHost, BenjaminiHochbergMatchesDecisions) {
  int declared = 0, not_declared = 0;
  uint64_t seed = 40;
  for (const int k : {1, 2, 5, 12, 40, 130})
    for (const double alpha : {0.05, 0.3}) {
      const BhCase c = bh_case(k, alpha, seed++);
      std::vector<double> V = c.packed();
      cuda::emulate_benjamini_hochberg_on_host(bh_batch(V, k, alpha), h100_shared_limit);
      expect_bh_matches(c, V, "k " + std::to_string(k) + " alpha " + std::to_string(alpha), declared, not_declared);
    }
  EXPECT_GT(cuda::score_scratch_doubles(130, h100_shared_limit), 0u);
  EXPECT_GT(declared, 0);
  EXPECT_GT(not_declared, 0);
}

// A p-value exactly at its step-up threshold is declared (p_(r) <= r alpha / family): with alpha =
// 0.25 and a family of 4, the thresholds 0.0625, 0.125, 0.1875, 0.25 are exact binary fractions.
TEST(CudaScoresHost, BenjaminiHochbergAtTheThresholdByHand) {
  Eigen::MatrixXd p(2, 2);
  p << 0.125, 0.5, 0.125, 0.9;  // sorted 0.125 (fails 0.0625), 0.125 (meets 0.125 exactly), 0.5, 0.9
  const BhCase c{2, 0.25, {p}};
  std::vector<double> V = c.packed();
  cuda::emulate_benjamini_hochberg_on_host(bh_batch(V, 2, 0.25), h100_shared_limit);
  const std::vector<double> want = {1.0, 1.0, 0.0, 0.0};  // column-major: p(0,0), p(1,0), p(0,1), p(1,1)
  EXPECT_EQ(V, want);
  int declared = 0, not_declared = 0;
  expect_bh_matches(c, V, "at the threshold", declared, not_declared);
  EXPECT_EQ(declared, 2);
}

// t statistics with a table of critical |t| (ols / iv): t_test_decisions with bh, which computes
// Student-t p-values by Boost's CDF (the table comes from Boost's quantile: an independent path).
// Exact, except where |t| is within 1e-9 of the run's cutoff (the two functions round differently).
TEST(CudaScoresHost, BenjaminiHochbergOnTStatisticsMatchesTTestDecisions) {
  std::mt19937_64 rng(77);
  std::normal_distribution<double> normal(0.0, 1.0);
  int declared = 0, not_declared = 0, near = 0;
  for (const int k : {1, 3, 12, 40})
    for (const double df : {30.0, 500.0})
      for (const double alpha : {0.05, 0.3}) {
        const int kk = k * k;
        std::vector<Eigen::MatrixXd> t;
        for (int kind = 0; kind < 4; ++kind) {
          Eigen::MatrixXd m(k, k);
          for (int e = 0; e < kk; ++e) {
            double v = normal(rng) * (normal(rng) > 0.8 ? 6.0 : 1.0);  // some strong effects
            if (kind == 1) v = std::round(v * 2) / 2;                     // ties
            m(e) = v;
          }
          if (kind == 2) m(0) = std::numeric_limits<double>::quiet_NaN();
          if (kind == 3) m(kk - 1) = std::numeric_limits<double>::infinity();
          t.push_back(m);
        }
        std::vector<double> V, table;
        for (const auto& m : t) V.insert(V.end(), m.data(), m.data() + m.size());
        for (int r = 0; r < kk; ++r)
          table.push_back(cuda::critical_t(df, static_cast<double>(r + 1) * alpha / kk, cs::Correction::none, k));
        const std::vector<int> table_of(t.size(), 0);
        cuda::emulate_benjamini_hochberg_on_host(bh_batch(V, k, alpha, table.data(), table_of.data()), h100_shared_limit);
        for (size_t net = 0; net < t.size(); ++net) {
          const Eigen::MatrixXd want = cs::t_test_decisions(t[net], df, alpha, cs::Correction::bh);
          const bool complete = t[net].allFinite();
          // The CPU's cutoff: the smallest declared |t| (none: infinity).
          double cutoff = std::numeric_limits<double>::infinity();
          for (int e = 0; e < kk; ++e)
            if (want(e) == 1.0) cutoff = std::min(cutoff, std::abs(t[net](e)));
          for (int e = 0; e < kk; ++e) {
            const double w = want(e), g = V[net * kk + e];
            if (std::isnan(w) || !complete) {
              EXPECT_EQ(std::isnan(g), std::isnan(w)) << k << " " << df << " " << net << " " << e;
              continue;
            }
            declared += w == 1.0;
            not_declared += w == 0.0;
            if (g != w) {
              if (std::abs(std::abs(t[net](e)) - cutoff) <= 1e-9 * cutoff)
                ++near;
              else
                ADD_FAILURE() << "k " << k << " df " << df << " network " << net << " entry " << e << ": " << g
                              << ", CPU " << w << " (t " << t[net](e) << ")";
            }
          }
        }
      }
  std::printf("[          ] %d declared, %d not, %d near the cutoff\n", declared, not_declared, near);
  EXPECT_GT(declared, 0);
  EXPECT_GT(not_declared, 0);
}

// Bivariate Granger with V left as p-values, then the step-up: run_estimator's granger with bh.
TEST(CudaScoresHost, GrangerWithBenjaminiHochbergMatchesCpu) {
  GrangerSeen seen;
  for (const SimulatedCase& c : simulated_cases) {
    std::vector<cs::Gram> grams;
    for (uint64_t seed : {3, 11}) grams.push_back(cs::test::simulated_grams(seed, c.n, c.timesteps, 0.5, 0.2, false, c.f).all);
    for (int k : c.ks) {
      const cs::EstimatorSpec spec = granger_spec(cs::Correction::bh, 0.1);
      GrangerArrays arrays(grams, k);
      cuda::GrangerBatch batch = granger_batch(static_cast<int>(grams.size()), grams.front().n, k, spec);
      batch.write_p_values = true;
      batch.grams = arrays.grams.data();
      batch.V = arrays.V.data();
      batch.rank_key = arrays.rank_key.data();
      batch.flags = arrays.flags.data();
      cuda::emulate_granger_on_host(batch);
      cuda::BenjaminiHochbergBatch bh;
      bh.networks = batch.networks;
      bh.k = k;
      bh.alpha = spec.level;
      bh.V = arrays.V.data();
      cuda::emulate_benjamini_hochberg_on_host(bh, h100_shared_limit);
      expect_granger_matches(grams, k, spec, arrays, "bh n " + std::to_string(c.n) + " k " + std::to_string(k), seen);
    }
  }
  EXPECT_GT(seen.declared, 0);
  EXPECT_GT(seen.not_declared, 0);
}

// ---- scores -------------------------------------------------------------------------------------

enum class Truth { generated, random_sparse, empty, all_connected, constant };
enum class Values { continuous, quantised, sign_ties, all_equal, all_zero, one_nan, one_inf };
// granger: decisions given and the AUC ranked by 1 - p, from p-values the case's Values shape.
enum class Rule { none, threshold_zero, threshold_positive, threshold_negative, given, given_with_nan, granger };

const char* name(Truth t) {
  static const char* names[] = {"generated", "random_sparse", "empty", "all_connected", "constant"};
  return names[static_cast<int>(t)];
}
const char* name(Values v) {
  static const char* names[] = {"continuous", "quantised", "sign_ties", "all_equal", "all_zero", "one_nan", "one_inf"};
  return names[static_cast<int>(v)];
}
const char* name(Rule r) {
  static const char* names[] = {"none", "threshold_0", "threshold_0.3", "threshold_-1", "given", "given_with_nan", "granger"};
  return names[static_cast<int>(r)];
}

struct ScoreCase {
  int n, k, networks;
  Truth truth;
  Values values;
  Rule rule;
  uint64_t seed;
  std::string label() const {
    return "n " + std::to_string(n) + " k " + std::to_string(k) + " truth " + name(truth) + " V " + name(values) +
           " rule " + name(rule) + " seed " + std::to_string(seed);
  }
};

// One network's inputs: A (n x n), the estimate as the CPU sees it, and the spec that gives the rule.
struct ScoreInput {
  Eigen::MatrixXd A;
  cs::Estimate estimate;
  cs::EstimatorSpec spec;
};

Eigen::MatrixXd make_truth(const ScoreCase& c, std::mt19937_64& rng, uint64_t seed) {
  std::normal_distribution<double> normal(0.0, 0.3);
  std::bernoulli_distribution connect(0.2);
  Eigen::MatrixXd A(c.n, c.n);
  bool empty = false;
  switch (c.truth) {
    case Truth::generated: return cs::generate_connectivity(seed, c.n, 0.2, empty);
    case Truth::random_sparse:
      for (Eigen::Index e = 0; e < A.size(); ++e) A(e) = connect(rng) ? normal(rng) : 0.0;
      return A;
    case Truth::empty: return Eigen::MatrixXd::Zero(c.n, c.n);
    case Truth::all_connected:
      for (Eigen::Index e = 0; e < A.size(); ++e) A(e) = 0.1 + std::abs(normal(rng));
      return A;
    case Truth::constant: return Eigen::MatrixXd::Constant(c.n, c.n, 0.3);
  }
  return A;
}

// V related to the truth (so AUCs and correlations are not all ~0.5 / ~0), in the case's flavour.
Eigen::MatrixXd make_estimate(const ScoreCase& c, const Eigen::MatrixXd& truth, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 0.2);
  Eigen::MatrixXd V(c.k, c.k);
  for (Eigen::Index e = 0; e < V.size(); ++e) V(e) = truth(e) + normal(rng);
  std::uniform_int_distribution<Eigen::Index> entry(0, V.size() - 1);
  switch (c.values) {
    case Values::continuous: break;
    case Values::quantised: V = (V * 4).array().round() / 4; break;                  // a few levels: many ties
    case Values::sign_ties: V = (V * 3).array().round().cwiseMin(1).cwiseMax(-1) / 3; break;  // |-1/3| = |1/3|
    case Values::all_equal: V.setConstant(0.3); break;
    case Values::all_zero: V.setZero(); break;
    case Values::one_nan: V(entry(rng)) = not_a_number; break;
    case Values::one_inf: V(entry(rng)) = -std::numeric_limits<double>::infinity(); break;
  }
  return V;
}

ScoreInput make_input(const ScoreCase& c, int network) {
  std::mt19937_64 rng(c.seed * 1000 + network);
  ScoreInput in;
  in.A = make_truth(c, rng, c.seed + network);
  in.estimate.V = make_estimate(c, in.A.topLeftCorner(c.k, c.k), rng);
  std::uniform_real_distribution<double> unit(0.0, 0.2);
  switch (c.rule) {
    case Rule::none: in.spec.method = cs::EstimatorMethod::correlation; break;  // threshold -1: no rule
    case Rule::threshold_zero: in.spec.method = cs::EstimatorMethod::lasso; break;  // lasso's default: 0
    case Rule::threshold_positive:
      in.spec.method = cs::EstimatorMethod::perturbation;
      in.spec.threshold = 0.3;
      break;
    case Rule::threshold_negative:
      in.spec.method = cs::EstimatorMethod::correlation;
      in.spec.threshold = -1;
      break;
    case Rule::given:
    case Rule::given_with_nan: {
      // ols with p-values: declared() gives the 0/1 (NaN) decisions the GPU receives.
      in.spec.method = cs::EstimatorMethod::ols;
      in.spec.level = 0.05;
      in.estimate.p_value = Eigen::MatrixXd(c.k, c.k);
      for (Eigen::Index e = 0; e < in.estimate.p_value.size(); ++e) in.estimate.p_value(e) = unit(rng);
      if (c.rule == Rule::given_with_nan) in.estimate.p_value(in.estimate.p_value.size() / 2) = not_a_number;
      break;
    }
    case Rule::granger: {
      // p = exp(-4 |V|), small where connected, shaped by the case's Values: ties (quantised: p = 0
      // and 1 among them), a NaN test, an infinite p (V stays finite, the AUC does not); V = the decisions.
      in.spec.method = cs::EstimatorMethod::granger;
      in.spec.level = 0.1;
      Eigen::MatrixXd& p = in.estimate.p_value;
      p = in.estimate.V.unaryExpr([](double v) { return std::isfinite(v) ? std::exp(-4.0 * std::abs(v)) : v; });
      if (c.values == Values::one_inf) p = p.unaryExpr([](double v) { return std::isinf(v) ? HUGE_VAL : v; });
      if (c.values == Values::quantised) p = (p * 4).array().round() / 4;
      in.estimate.V = cs::decisions(p, in.spec.level, in.spec.correction);
      break;
    }
  }
  return in;
}

// The threshold the kernel applies when no decisions are given (declared()'s rule for |V| estimators).
double effective_threshold(const cs::EstimatorSpec& spec) {
  if (spec.threshold >= 0) return spec.threshold;
  return spec.method == cs::EstimatorMethod::lasso ? 0.0 : -1.0;
}

bool decisions_given(Rule rule) { return rule == Rule::given || rule == Rule::given_with_nan || rule == Rule::granger; }

// Host arrays of one batch of a case, outputs poisoned.
struct ScoreArrays {
  std::vector<ScoreInput> inputs;
  std::vector<double> connectivity, V, decided, rank_key;
  std::vector<cuda::RunScore> scores;

  explicit ScoreArrays(const ScoreCase& c) {
    for (int net = 0; net < c.networks; ++net) {
      inputs.push_back(make_input(c, net));
      const ScoreInput& in = inputs.back();
      connectivity.insert(connectivity.end(), in.A.data(), in.A.data() + in.A.size());
      V.insert(V.end(), in.estimate.V.data(), in.estimate.V.data() + in.estimate.V.size());
      if (decisions_given(c.rule)) {
        const Eigen::MatrixXd d = cs::declared(in.estimate, in.spec);
        EXPECT_EQ(d.size(), in.estimate.V.size());
        decided.insert(decided.end(), d.data(), d.data() + d.size());
      }
      if (c.rule == Rule::granger)
        for (Eigen::Index e = 0; e < in.estimate.p_value.size(); ++e) rank_key.push_back(1.0 - in.estimate.p_value(e));
    }
    const cuda::RunScore poison{-9.0, -9.0, -9.0, -9.0, 0xdeadbeefu, -1};
    scores.assign(static_cast<size_t>(c.networks), poison);
  }

  cuda::ScoreBatch view(const ScoreCase& c) {
    cuda::ScoreBatch b;
    b.networks = c.networks;
    b.n = c.n;
    b.k = c.k;
    b.connectivity = connectivity.data();
    b.V = V.data();
    b.decided = decided.empty() ? nullptr : decided.data();
    b.threshold = decided.empty() ? effective_threshold(inputs.front().spec) : -1.0;
    b.rank_key = rank_key.empty() ? nullptr : rank_key.data();
    b.scores = scores.data();
    return b;
  }
};

// Largest gap per score over the checked runs.
struct Gaps {
  double corr = 0, auc = 0, tpr = 0, fpr = 0;
  void merge(const Gaps& o) {
    corr = std::max(corr, o.corr);
    auc = std::max(auc, o.auc);
    tpr = std::max(tpr, o.tpr);
    fpr = std::max(fpr, o.fpr);
  }
};

// Every run's scores against score_run(); counts how often each kind of result was seen.
struct Seen {
  int runs = 0, corr_nan = 0, auc_nan = 0, with_rates = 0, constant_flags = 0, one_class = 0, has_decisions = 0;
};

Gaps expect_scores_match(const ScoreCase& c, const ScoreArrays& arrays, const std::vector<cuda::RunScore>& got,
                         const std::string& what, Seen* seen = nullptr) {
  Gaps gaps;
  for (int net = 0; net < c.networks; ++net) {
    const ScoreInput& in = arrays.inputs[static_cast<size_t>(net)];
    const Eigen::MatrixXd truth = in.A.topLeftCorner(c.k, c.k);
    const cs::Scores want = cs::score_run(truth, in.estimate, in.spec, false);
    const cuda::RunScore& s = got[static_cast<size_t>(net)];
    const std::string where = what + " network " + std::to_string(net);
    EXPECT_TRUE(same(s.corr_with_truth, want.corr_with_truth, gaps.corr))
        << where << ": corr " << s.corr_with_truth << ", CPU " << want.corr_with_truth;
    EXPECT_TRUE(same(s.auc, want.auc, gaps.auc)) << where << ": auc " << s.auc << ", CPU " << want.auc;
    EXPECT_TRUE(same(s.tpr, want.tpr, gaps.tpr)) << where << ": tpr " << s.tpr << ", CPU " << want.tpr;
    EXPECT_TRUE(same(s.fpr, want.fpr, gaps.fpr)) << where << ": fpr " << s.fpr << ", CPU " << want.fpr;
    EXPECT_EQ(s.flags, want.flags) << where << ": flags " << cs::flags_to_string(s.flags) << ", CPU "
                                   << cs::flags_to_string(want.flags);
    EXPECT_EQ(s.has_decisions, want.has_decisions ? 1 : 0) << where;
    if (seen) {
      ++seen->runs;
      seen->corr_nan += std::isnan(want.corr_with_truth);
      seen->auc_nan += std::isnan(want.auc);
      seen->with_rates += !std::isnan(want.tpr) || !std::isnan(want.fpr);
      seen->constant_flags += (want.flags & (cs::flag_constant_truth | cs::flag_constant_estimate)) != 0;
      seen->one_class += (want.flags & cs::flag_one_class) != 0;
      seen->has_decisions += want.has_decisions;
    }
  }
  return gaps;
}

Gaps run_host_case(const ScoreCase& c, size_t shared_limit, Seen* seen = nullptr) {
  ScoreArrays arrays(c);
  cuda::emulate_scores_on_host(arrays.view(c), shared_limit);
  return expect_scores_match(c, arrays, arrays.scores, c.label() + " shared " + std::to_string(shared_limit), seen);
}

void print_gaps(const char* what, const Gaps& g) {
  std::printf("[          ] %s: largest gaps corr %.3g auc %.3g tpr %.3g fpr %.3g\n", what, g.corr, g.auc, g.tpr, g.fpr);
}

// The cross product of value kinds, truths and rules at small k (every edge case), with n > k so
// the truth's leading dimension matters.
TEST(CudaScoresHost, EdgeCasesMatchScoreRun) {
  const Truth truths[] = {Truth::generated, Truth::random_sparse, Truth::empty, Truth::all_connected, Truth::constant};
  const Values values[] = {Values::continuous, Values::quantised, Values::sign_ties, Values::all_equal,
                           Values::all_zero,   Values::one_nan,   Values::one_inf};
  const Rule rules[] = {Rule::none,          Rule::threshold_zero, Rule::threshold_positive,
                        Rule::threshold_negative, Rule::given,    Rule::given_with_nan, Rule::granger};
  Gaps gaps;
  Seen seen;
  uint64_t seed = 1;
  for (int k : {1, 2, 3, 10})
    for (Truth t : truths)
      for (Values v : values)
        for (Rule r : rules) gaps.merge(run_host_case({k + 2, k, 3, t, v, r, seed++}, h100_shared_limit, &seen));
  print_gaps("edge cases", gaps);
  std::printf("[          ] %d runs: corr NaN %d, auc NaN %d, with tpr/fpr %d, constant flags %d, one_class %d, has_decisions %d\n",
              seen.runs, seen.corr_nan, seen.auc_nan, seen.with_rates, seen.constant_flags, seen.one_class,
              seen.has_decisions);
  // The sweep reaches every kind of result (else some branch would go unchecked).
  EXPECT_GT(seen.corr_nan, 0);
  EXPECT_GT(seen.runs - seen.corr_nan, 0);
  EXPECT_GT(seen.auc_nan, 0);
  EXPECT_GT(seen.runs - seen.auc_nan, 0);
  EXPECT_GT(seen.with_rates, 0);
  EXPECT_GT(seen.constant_flags, 0);
  EXPECT_GT(seen.one_class, 0);
  EXPECT_GT(seen.has_decisions, 0);
  EXPECT_GT(seen.runs - seen.has_decisions, 0);
}

// A constant nonzero estimate: the CPU's sequential mean is not exactly the constant (0.3 summed 100
// times is not 30), so its Pearson is a number, not NaN, and no constant flag is set; the kernel
// must take the same mean. Both sides constant: the CPU gives +-1 from the rounding residues.
TEST(CudaScoresHost, ConstantInputsFollowTheCpusMean) {
  for (Truth t : {Truth::random_sparse, Truth::constant}) {
    const ScoreCase c{10, 10, 2, t, Values::all_equal, Rule::none, 77};
    ScoreArrays arrays(c);
    cuda::emulate_scores_on_host(arrays.view(c), h100_shared_limit);
    expect_scores_match(c, arrays, arrays.scores, c.label());
    const cs::Scores want = cs::score_run(arrays.inputs[0].A.topLeftCorner(10, 10), arrays.inputs[0].estimate,
                                          arrays.inputs[0].spec, false);
    EXPECT_FALSE(std::isnan(want.corr_with_truth)) << "the premise: the CPU does not see 0.3 x 100 as constant";
  }
}

// Larger k: the sort buffer in shared memory (k <= 128 at the H100 limit) and in global scratch
// (k = 200, and k = 10 / 100 with a small limit); the same inputs give the same bits either way.
TEST(CudaScoresHost, SizesAndGlobalScratchMatchScoreRun) {
  EXPECT_EQ(cuda::score_scratch_doubles(100, h100_shared_limit), 0u);
  EXPECT_EQ(cuda::score_scratch_doubles(128, h100_shared_limit), 0u);
  EXPECT_EQ(cuda::score_scratch_doubles(200, h100_shared_limit), 65536u);
  EXPECT_EQ(cuda::score_scratch_doubles(10, 0), 128u);
  Gaps gaps;
  uint64_t seed = 500;
  for (const auto& [k, limit] : {std::pair{100, h100_shared_limit}, std::pair{200, h100_shared_limit},
                                 std::pair{10, size_t{0}}, std::pair{100, size_t{48 * 1024}}})
    for (Values v : {Values::continuous, Values::quantised})
      for (Rule r : {Rule::threshold_positive, Rule::given_with_nan, Rule::none, Rule::granger})
        gaps.merge(run_host_case({k + 5, k, 2, Truth::generated, v, r, seed++}, limit));
  print_gaps("k 10 .. 200", gaps);

  // Shared and global sort buffers: identical results.
  const ScoreCase c{60, 60, 2, Truth::random_sparse, Values::quantised, Rule::threshold_zero, 9};
  ScoreArrays in_shared(c), in_global(c);
  cuda::emulate_scores_on_host(in_shared.view(c), h100_shared_limit);
  cuda::emulate_scores_on_host(in_global.view(c), 0);
  for (int net = 0; net < c.networks; ++net) {
    const cuda::RunScore &a = in_shared.scores[net], &b = in_global.scores[net];
    EXPECT_EQ(a.auc, b.auc);
    EXPECT_EQ(a.corr_with_truth, b.corr_with_truth);
    EXPECT_EQ(a.flags, b.flags);
  }
}

// The AUC with ties against a count by hand: |V| = {0, 1, 1, 2}, positives at the two tied 1s and
// the 2 (ranks 2.5, 2.5, 4 of 4): U = 9 - 6 = 3 = P N, so the AUC is 1; moving a positive to 0
// (rank 1) gives (1 + 2.5 + 4 - 6) / (3 * 1) = 0.5. (Independent of score_run.)
TEST(CudaScoresHost, AucWithTiesByHand) {
  const double connectivity[4] = {0.0, 1.0, 1.0, 1.0};  // k = n = 2: truth (0, 0) is the one negative
  const double V1[4] = {0.0, -1.0, 1.0, 2.0}, V2[4] = {1.0, 0.0, 1.0, 2.0};
  for (const auto& [V, want] : {std::pair{V1, 1.0}, std::pair{V2, 0.5}}) {
    cuda::RunScore score{-9, -9, -9, -9, 0xdeadbeefu, -1};
    cuda::ScoreBatch b;
    b.networks = 1;
    b.n = b.k = 2;
    b.connectivity = connectivity;
    b.V = V;
    b.scores = &score;
    cuda::emulate_scores_on_host(b, h100_shared_limit);
    EXPECT_EQ(score.auc, want);
    EXPECT_EQ(score.has_decisions, 0);
    EXPECT_TRUE(std::isnan(score.tpr) && std::isnan(score.fpr));
  }
}

}  // namespace

// ---- on a GPU -----------------------------------------------------------------------------------

namespace {

template <class T>
struct DeviceArray {
  T* data = nullptr;
  explicit DeviceArray(size_t count) { CS_CUDA_CHECK(cudaMalloc(&data, std::max<size_t>(count, 1) * sizeof(T))); }
  DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    if (!host.empty()) CS_CUDA_CHECK(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  std::vector<T> download(size_t count) const {
    std::vector<T> host(count);
    CS_CUDA_CHECK(cudaMemcpy(host.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
};

}  // namespace

TEST(CudaScoresDevice, CorrelationKernelMatchesCpu) {
  const auto gpus = causalsweep::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  for (const auto& [n, k, perturb] : {std::tuple{12, 12, false}, std::tuple{40, 17, false}, std::tuple{6, 6, true}}) {
    std::vector<cs::Gram> grams;
    for (uint64_t seed : {3, 4, 5}) {
      cs::NetworkGrams g = cs::test::simulated_grams(seed, n, 2001, 2.0, 0.2, perturb);
      grams.push_back(perturb ? *g.even : g.all);
    }
    const std::vector<double> buffers = pack_grams(grams);
    const size_t v_size = grams.size() * k * k;
    DeviceArray<double> d_grams(buffers), d_V(std::vector<double>(v_size, not_a_number));
    DeviceArray<uint32_t> d_flags(std::vector<uint32_t>(grams.size(), 0xdeadbeefu));
    cuda::CorrelationBatch batch;
    batch.networks = static_cast<int>(grams.size());
    batch.n = n;
    batch.k = k;
    batch.grams = d_grams.data;
    batch.V = d_V.data;
    batch.flags = d_flags.data;
    cuda::launch_correlation(batch, nullptr);
    CS_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<double> V = d_V.download(v_size);
    const std::vector<uint32_t> flags = d_flags.download(grams.size());
    double largest = 0;
    for (size_t net = 0; net < grams.size(); ++net) {
      const cs::Estimate cpu = perturb ? cs::perturbation(grams[net], k) : cs::correlation(grams[net], k);
      EXPECT_EQ(flags[net], cpu.flags);
      for (int j = 0; j < k; ++j)
        for (int i = 0; i < k; ++i)
          EXPECT_TRUE(same(V[net * k * k + i + static_cast<size_t>(j) * k], cpu.V(i, j), largest))
              << "n " << n << " k " << k << " network " << net << " V(" << i << ", " << j << ")";
    }
    std::printf("[          ] device correlation n %d k %d: largest |V - V_cpu| %.3g\n", n, k, largest);
  }
}

// The real launch against granger() on simulated networks (device erfc / log1p: the key to 1e-12).
TEST(CudaScoresDevice, GrangerKernelMatchesCpu) {
  const auto gpus = causalsweep::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  GrangerSeen seen;
  for (const auto& [n, k, correction] : {std::tuple{12, 12, cs::Correction::none}, std::tuple{40, 17, cs::Correction::bonferroni},
                                         std::tuple{100, 100, cs::Correction::none}}) {
    std::vector<cs::Gram> grams;
    for (uint64_t seed : {3, 4, 5}) grams.push_back(cs::test::simulated_gram(seed, n, 2001, 0.5, 0.2));
    const cs::EstimatorSpec spec = granger_spec(correction, 0.05);
    GrangerArrays arrays(grams, k);
    DeviceArray<double> d_grams(arrays.grams), d_V(arrays.V), d_key(arrays.rank_key);
    DeviceArray<uint32_t> d_flags(arrays.flags);
    cuda::GrangerBatch batch = granger_batch(static_cast<int>(grams.size()), n, k, spec);
    batch.grams = d_grams.data;
    batch.V = d_V.data;
    batch.rank_key = d_key.data;
    batch.flags = d_flags.data;
    cuda::launch_granger(batch, nullptr);
    CS_CUDA_CHECK(cudaDeviceSynchronize());
    arrays.V = d_V.download(arrays.V.size());
    arrays.rank_key = d_key.download(arrays.rank_key.size());
    arrays.flags = d_flags.download(arrays.flags.size());
    expect_granger_matches(grams, k, spec, arrays, "device n " + std::to_string(n) + " k " + std::to_string(k), seen);
  }
  EXPECT_GT(seen.declared, 0);
  EXPECT_GT(seen.not_declared, 0);
}

TEST(CudaScoresDevice, BenjaminiHochbergKernelMatchesDecisions) {
  const auto gpus = causalsweep::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  const size_t limit = cuda::shared_memory_limit(0);
  int declared = 0, not_declared = 0;
  uint64_t seed = 70;
  for (const int k : {1, 5, 40, 130, 300}) {
    const BhCase c = bh_case(k, 0.1, seed++);
    const std::vector<double> packed = c.packed();
    const size_t scratch = cuda::score_scratch_doubles(k, limit);
    DeviceArray<double> d_V(packed), d_scratch(c.p.size() * scratch);
    cuda::BenjaminiHochbergBatch batch;
    batch.networks = static_cast<int>(c.p.size());
    batch.k = k;
    batch.alpha = c.alpha;
    batch.V = d_V.data;
    batch.scratch = d_scratch.data;
    cuda::launch_benjamini_hochberg(batch, limit, nullptr);
    CS_CUDA_CHECK(cudaDeviceSynchronize());
    expect_bh_matches(c, d_V.download(packed.size()), "device k " + std::to_string(k), declared, not_declared);
  }
  EXPECT_GT(declared, 0);
  EXPECT_GT(not_declared, 0);
}

TEST(CudaScoresDevice, ScoreKernelMatchesScoreRun) {
  const auto gpus = causalsweep::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  const size_t limit = cuda::shared_memory_limit(0);
  Gaps gaps;
  uint64_t seed = 900;
  const std::vector<ScoreCase> cases = {
      {12, 10, 64, Truth::generated, Values::continuous, Rule::threshold_zero, seed++},
      {12, 10, 64, Truth::random_sparse, Values::quantised, Rule::given, seed++},
      {5, 2, 16, Truth::random_sparse, Values::sign_ties, Rule::given_with_nan, seed++},
      {3, 1, 8, Truth::generated, Values::continuous, Rule::threshold_positive, seed++},
      {10, 10, 8, Truth::empty, Values::one_nan, Rule::threshold_positive, seed++},
      {10, 10, 8, Truth::all_connected, Values::all_equal, Rule::none, seed++},
      {105, 100, 16, Truth::generated, Values::quantised, Rule::threshold_positive, seed++},
      {200, 200, 6, Truth::generated, Values::continuous, Rule::given, seed++},  // global scratch
      {210, 200, 6, Truth::random_sparse, Values::quantised, Rule::none, seed++},
      {12, 10, 16, Truth::generated, Values::quantised, Rule::granger, seed++},  // 1 - p ties
      {12, 10, 16, Truth::random_sparse, Values::one_inf, Rule::granger, seed++},
      {105, 100, 6, Truth::generated, Values::continuous, Rule::granger, seed++},
  };
  for (const ScoreCase& c : cases) {
    ScoreArrays arrays(c);
    DeviceArray<double> d_connectivity(arrays.connectivity), d_V(arrays.V), d_decided(arrays.decided),
        d_key(arrays.rank_key);
    DeviceArray<cuda::RunScore> d_scores(arrays.scores);  // poisoned
    const size_t scratch = cuda::score_scratch_doubles(c.k, limit);
    DeviceArray<double> d_scratch(static_cast<size_t>(c.networks) * scratch);
    cuda::ScoreBatch batch = arrays.view(c);
    batch.connectivity = d_connectivity.data;
    batch.V = d_V.data;
    batch.decided = arrays.decided.empty() ? nullptr : d_decided.data;
    batch.rank_key = arrays.rank_key.empty() ? nullptr : d_key.data;
    batch.scores = d_scores.data;
    batch.scratch = d_scratch.data;
    cuda::launch_scores(batch, limit, nullptr);
    CS_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<cuda::RunScore> got = d_scores.download(arrays.scores.size());
    gaps.merge(expect_scores_match(c, arrays, got, "device " + c.label()));
  }
  print_gaps("device scores", gaps);
}

#else

TEST(CudaScoresDevice, NeedsCudaBuild) {
  const auto gpus = causalsweep::query_cuda_devices();
  GTEST_SKIP() << "built without CUDA (" << gpus.count << " device(s): " << gpus.description << ")";
}

#endif  // CAUSALSWEEP_HAVE_CUDA
