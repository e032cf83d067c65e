// The batched GPU least squares (kernels/least_squares.cu) against host/estimators.cpp:
// ordinary_least_squares / two_stage_least_squares (PValues::skip) and t_test_decisions, and
// granger_conditional (PValues::skip) and decisions().
//
//   CudaHostLeastSquares.*    without a GPU: the solver's host path (the same steps, the kernels' block
//                             programs run by the host emulator) on the Grams of simulated networks
//                             (several n, k, T, eta; intercept on / off; corrections none / bonferroni;
//                             k = 200, whose matrices exceed a block's shared memory) and on crafted
//                             degenerate Grams; every output element, with outputs and workspace
//                             poisoned first and a guard after the workspace
//   CudaDeviceLeastSquares.*  on a GPU (skipped without one): the real cuSOLVER / cuBLAS / kernel path,
//                             the same comparisons
//
// V must agree within 1e-9 relative to the row's largest |V| (a solution's rounding error scales
// with its norm, not with each element), the first-stage F within 1e-9 relative, flags exactly, and
// decisions exactly except where the CPU's |t| is within 1e-9 (relative) of the critical value.
// granger_conditional: flags exactly, 1 - p within 1e-9, decisions exactly except where the CPU's p is
// within 1e-9 (relative) of the level.
#include <gtest/gtest.h>

#include "causalsweep/cuda_devices.hpp"

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <boost/math/distributions/students_t.hpp>

#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "cuda_check.cuh"
#include "cuda_kernels.hpp"
#include "cuda_test_support.hpp"
#include "engine.hpp"
#include "least_squares_kernels.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
using Method = cuda::LeastSquaresMethod;

// One batch's inputs: every network has the same n and k.
struct Case {
  std::string name;
  Method method = Method::ols;
  int n = 0, k = 0;
  bool intercept = true;
  cs::Correction correction = cs::Correction::none;
  double level = 0.05;
  std::vector<cs::Gram> grams;
  std::vector<double> etas;
  std::vector<bool> without_critical;  // networks given a NaN critical value (empty: none)
  bool write_p_values = false;         // granger_conditional: V = the p-values (for Benjamini-Hochberg)
};

struct Outputs {
  std::vector<double> V, decided, first_stage_f, rank_key;
  std::vector<uint32_t> flags;
};

bool is_granger(const Case& c) { return c.method == Method::granger_conditional; }

// The residual df of the CPU estimator (ols: m - k - intercept; iv: m - k - 1).
double residual_df(const Case& c, const cs::Gram& g) {
  const int parameters = c.k + (c.method == Method::iv || c.intercept ? 1 : 0);
  return static_cast<double>(g.transitions) - parameters;
}

// The critical |t| as t_test_decisions computes it for a family of k * k finite t values.
double critical_t(double df, double level, cs::Correction correction, int k) {
  if (!(df > 0)) return nan;
  const double a = correction == cs::Correction::bonferroni ? level / (static_cast<double>(k) * k) : level;
  return boost::math::quantile(boost::math::complement(boost::math::students_t(df), a / 2));
}

double critical_of(const Case& c, size_t i) {
  if (!c.without_critical.empty() && c.without_critical[i]) return nan;
  return critical_t(residual_df(c, c.grams[i]), c.level, c.correction, c.k);
}

cuda::LeastSquaresBatch describe(const Case& c) {
  cuda::LeastSquaresBatch b;
  b.networks = static_cast<int>(c.grams.size());
  b.n = c.n;
  b.k = c.k;
  b.method = c.method;
  b.intercept = c.intercept;
  b.inclusive = c.correction == cs::Correction::bonferroni;
  b.level = c.correction == cs::Correction::bonferroni ? c.level / (static_cast<double>(c.k) * c.k) : c.level;
  b.write_p_values = c.write_p_values;
  return b;
}

// Host inputs of a case: packed Grams, etas, critical values.
struct HostInputs {
  std::vector<double> grams, etas, critical;
};

HostInputs host_inputs(const Case& c) {
  HostInputs h;
  for (size_t i = 0; i < c.grams.size(); ++i) {
    EXPECT_EQ(c.grams[i].n, c.n) << c.name;
    cs::test::append_gram(c.grams[i], h.grams);
    h.etas.push_back(c.etas.empty() ? 1.0 : c.etas[i]);
    h.critical.push_back(critical_of(c, i));
  }
  return h;
}

void poison_outputs(Outputs& out, size_t networks, int k, double poison) {
  const size_t kk = static_cast<size_t>(k) * k;
  out.V.assign(networks * kk, poison);
  out.decided.assign(networks * kk, poison);
  out.rank_key.assign(networks * kk, poison);
  out.first_stage_f.assign(networks, poison);
  out.flags.assign(networks, 0xdeadbeefu);
}

// The host path: outputs poisoned with `poison`, the workspace with NaN bytes (0xff), and a guard
// region after workspace_bytes that must stay untouched.
Outputs run_on_host(const Case& c, double poison = nan) {
  const auto solver = cuda::LeastSquaresSolver::on_host();
  HostInputs in = host_inputs(c);
  cuda::LeastSquaresBatch b = describe(c);
  Outputs out;
  poison_outputs(out, c.grams.size(), c.k, poison);
  const size_t bytes = solver->workspace_bytes(c.method, b.networks, c.k), guard = 4096;
  std::vector<unsigned char> workspace(bytes + guard, 0xff);
  std::fill(workspace.begin() + static_cast<std::ptrdiff_t>(bytes), workspace.end(), 0xab);
  b.grams = in.grams.data();
  b.etas = in.etas.data();
  b.critical_t = in.critical.data();
  b.V = out.V.data();
  b.decided = is_granger(c) ? nullptr : out.decided.data();  // granger_conditional must not need it
  b.rank_key = out.rank_key.data();
  b.first_stage_f = out.first_stage_f.data();
  b.flags = out.flags.data();
  solver->solve(b, workspace.data());
  const bool guard_intact = std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(bytes), workspace.end(),
                                        [](unsigned char v) { return v == 0xab; });
  EXPECT_TRUE(guard_intact) << c.name << ": the solve wrote past workspace_bytes";
  return out;
}

// What the CPU computes for network i of a case (granger_conditional: V the decisions, as
// run_estimator makes them, and p).
struct Reference {
  Eigen::MatrixXd V, statistic, decided, p_value;
  double first_stage_f = nan;
  uint32_t flags = 0;
};

Reference reference(const Case& c, size_t i) {
  const cs::Gram& g = c.grams[i];
  if (is_granger(c)) {
    const cs::Estimate e = cs::granger_conditional(g, c.k, cs::PValues::skip);
    Reference r;
    r.p_value = e.p_value;
    r.V = cs::decisions(e.p_value, c.level, c.correction);
    r.flags = e.flags;
    return r;
  }
  const cs::Estimate e = c.method == Method::ols
                             ? cs::ordinary_least_squares(g, c.k, c.intercept, cs::PValues::skip)
                             : cs::two_stage_least_squares(g, c.k, c.etas[i], cs::PValues::skip);
  Reference r;
  r.V = e.V;
  r.statistic = e.statistic;
  r.first_stage_f = e.first_stage_f;
  r.flags = e.flags;
  const bool no_critical = !c.without_critical.empty() && c.without_critical[i];
  r.decided = no_critical ? Eigen::MatrixXd::Constant(c.k, c.k, nan)
                          : cs::t_test_decisions(e.statistic, e.residual_df, c.level, c.correction);
  return r;
}

std::string text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

// Largest differences seen, reported at the end of each test.
struct Gaps {
  double v = 0, f = 0;
  int near_critical = 0;  // decisions exempted because |t| is within 1e-9 of the critical value
  int finite_networks = 0;
  int declared = 0, not_declared = 0;  // granger_conditional: the CPU's decisions compared
};

// Counts the elements that differ from the CPU and reports the first eight.
struct Mismatches {
  std::string name;
  int count = 0;
  void operator()(const std::string& what) {
    if (++count <= 8) ADD_FAILURE() << name << ": " << what;
  }
};

// granger_conditional's outputs against the CPU: flags, the decisions (or, with write_p_values, the
// p-values within 1e-9 relative), 1 - p, first_stage_f NaN.
// Under bonferroni the CPU's family is the number of defined tests; where one is undefined the
// decisions hold a NaN (every score of the run is NaN) and only the NaN positions are compared.
Gaps expect_granger_matches_cpu(const Case& c, const Outputs& out) {
  Gaps gaps;
  const int k = c.k;
  const size_t kk = static_cast<size_t>(k) * k;
  Mismatches report{c.name};
  const double level = c.correction == cs::Correction::bonferroni ? c.level / (static_cast<double>(k) * k) : c.level;
  for (size_t net = 0; net < c.grams.size(); ++net) {
    const Reference r = reference(c, net);
    const std::string where = "network " + std::to_string(net);
    EXPECT_EQ(out.flags[net], r.flags) << c.name << " " << where << ": flags " << cs::flags_to_string(out.flags[net])
                                       << ", CPU " << cs::flags_to_string(r.flags);
    if (!std::isnan(out.first_stage_f[net])) report(where + ": first_stage_f " + text(out.first_stage_f[net]));
    const bool all_defined = r.p_value.allFinite();
    if (all_defined) ++gaps.finite_networks;
    for (size_t e = 0; e < kk; ++e) {
      const std::string at = where + " (" + std::to_string(e % k) + ", " + std::to_string(e / k) + ")";
      const double p = r.p_value(static_cast<Eigen::Index>(e)), want = r.V(static_cast<Eigen::Index>(e));
      const double key = out.rank_key[net * kk + e], v = out.V[net * kk + e];
      if (std::isnan(p)) {
        if (!std::isnan(key) || !std::isnan(v)) report(at + ": key " + text(key) + " V " + text(v) + ", CPU NaN");
        continue;
      }
      const double gap = std::abs(key - (1.0 - p));
      if (!(gap <= 1e-9)) report(at + ": key " + text(key) + ", CPU " + text(1.0 - p));
      gaps.v = std::max(gaps.v, gap);
      if (c.write_p_values) {
        if (!(std::abs(v - p) <= 1e-9 * p)) report(at + ": p " + text(v) + ", CPU " + text(p));
        continue;
      }
      if (!all_defined && c.correction == cs::Correction::bonferroni) continue;
      gaps.declared += want == 1.0;
      gaps.not_declared += want == 0.0;
      if (v != want) {
        if (std::abs(p - level) <= 1e-9 * level)
          ++gaps.near_critical;
        else
          report(at + ": decided " + text(v) + ", CPU " + text(want) + " (p " + text(p) + ")");
      }
    }
  }
  EXPECT_EQ(report.count, 0) << c.name << ": " << report.count << " elements differ from the CPU";
  std::printf("[          ] %s: largest 1 - p gap %.3g, %d near the level, %d of %zu networks fully defined\n",
              c.name.c_str(), gaps.v, gaps.near_critical, gaps.finite_networks, c.grams.size());
  return gaps;
}

// Every output of every network against the CPU.
Gaps expect_matches_cpu(const Case& c, const Outputs& out) {
  if (is_granger(c)) return expect_granger_matches_cpu(c, out);
  Gaps gaps;
  const int k = c.k;
  const size_t kk = static_cast<size_t>(k) * k;
  Mismatches report{c.name};
  for (size_t net = 0; net < c.grams.size(); ++net) {
    const Reference r = reference(c, net);
    const std::string where = "network " + std::to_string(net);
    EXPECT_EQ(out.flags[net], r.flags) << c.name << " " << where << ": flags " << cs::flags_to_string(out.flags[net])
                                       << ", CPU " << cs::flags_to_string(r.flags);
    const double f = out.first_stage_f[net];
    if (std::isnan(r.first_stage_f) || std::isinf(r.first_stage_f)) {
      if (!(std::isnan(r.first_stage_f) ? std::isnan(f) : f == r.first_stage_f))
        report(where + ": first_stage_f " + std::to_string(f) + ", CPU " + std::to_string(r.first_stage_f));
    } else {
      const double gap = std::abs(f - r.first_stage_f) / std::abs(r.first_stage_f);
      if (!(gap <= 1e-9)) report(where + ": first_stage_f " + std::to_string(f) + ", CPU " + std::to_string(r.first_stage_f));
      gaps.f = std::max(gaps.f, gap);
    }
    if (r.V.allFinite()) ++gaps.finite_networks;
    const double critical = critical_of(c, net);
    for (int i = 0; i < k; ++i) {
      const double row_scale = r.V.row(i).cwiseAbs().maxCoeff();
      for (int j = 0; j < k; ++j) {
        const size_t e = static_cast<size_t>(i) + static_cast<size_t>(j) * k + net * kk;
        const std::string at = where + " (" + std::to_string(i) + ", " + std::to_string(j) + ")";
        const double v = out.V[e], want = r.V(i, j);
        if (std::isnan(want)) {
          if (!std::isnan(v)) report(at + ": V " + text(v) + ", CPU NaN");
        } else {
          const double gap = v == want ? 0.0 : std::abs(v - want) / row_scale;
          if (!(gap <= 1e-9)) report(at + ": V " + text(v) + ", CPU " + text(want));
          gaps.v = std::max(gaps.v, gap);
        }
        const double d = out.decided[e], want_d = r.decided(i, j);
        if (std::isnan(want_d)) {
          if (!std::isnan(d)) report(at + ": decided " + std::to_string(d) + ", CPU NaN");
        } else if (d != want_d) {
          const double t = std::abs(r.statistic(i, j));
          if (std::abs(t - critical) <= 1e-9 * critical)
            ++gaps.near_critical;
          else
            report(at + ": decided " + std::to_string(d) + ", CPU " + std::to_string(want_d) + " (|t| " +
                   std::to_string(t) + ", critical " + std::to_string(critical) + ")");
        }
      }
    }
  }
  EXPECT_EQ(report.count, 0) << c.name << ": " << report.count << " elements differ from the CPU";
  std::printf("[          ] %s: largest V gap %.3g (of the row's largest |V|), F gap %.3g, %d near-critical, "
              "%d of %zu networks finite\n",
              c.name.c_str(), gaps.v, gaps.f, gaps.near_critical, gaps.finite_networks, c.grams.size());
  return gaps;
}

// ---- inputs ---------------------------------------------------------------------------------

// Grams of simulated networks (rate model, sigmoid, no perturbation), one per (seed, eta).
Case simulated(const std::string& name, Method method, int n, int k, int timesteps,
               const std::vector<std::pair<uint64_t, double>>& networks, double p_connect = 0.1) {
  Case c;
  c.name = name;
  c.method = method;
  c.n = n;
  c.k = k;
  for (const auto& [seed, eta] : networks) {
    c.grams.push_back(cs::test::simulated_gram(seed, n, timesteps, eta, p_connect));
    c.etas.push_back(eta);
  }
  return c;
}

// A random trajectory in (0, 1) (n x T) driven by its instruments (n x T), from a fixed seed.
struct Trajectory {
  Eigen::MatrixXd X, Z;
};

Trajectory random_trajectory(int n, int timesteps, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Trajectory t{Eigen::MatrixXd(n, timesteps), Eigen::MatrixXd(n, timesteps)};
  for (int s = 0; s < timesteps; ++s)
    for (int i = 0; i < n; ++i) {
      t.Z(i, s) = normal(rng);
      t.X(i, s) = 1.0 / (1.0 + std::exp(-(t.Z(i, s) + 0.5 * normal(rng))));  // strong instruments
    }
  return t;
}

cs::Gram gram_of(const Trajectory& t) { return cs::gram_from_trajectories(t.X, t.Z); }

// Crafted Grams (n = 6): a healthy one, then each early exit of the CPU estimators.
struct Crafted {
  std::string what;
  cs::Gram gram;
  double eta = 1.0;
};

std::vector<Crafted> crafted_grams(int n, int k) {
  std::vector<Crafted> out;
  const Trajectory healthy = random_trajectory(n, 400, 1);
  out.push_back({"healthy", gram_of(healthy)});
  out.push_back({"healthy eta 0", gram_of(healthy), 0.0});
  Trajectory constant = random_trajectory(n, 400, 2);
  constant.X.row(2).setConstant(0.5);  // x_2 never varies: centred H singular
  out.push_back({"constant regressor", gram_of(constant)});
  Trajectory collinear = random_trajectory(n, 400, 3);
  collinear.X.row(3) = collinear.X.row(1);  // x_3 = x_1: H singular, and iv's stage 2 too
  out.push_back({"collinear regressors", gram_of(collinear)});
  Trajectory same_instruments = random_trajectory(n, 400, 4);
  same_instruments.Z.row(1) = same_instruments.Z.row(0);  // zz singular: unidentified
  out.push_back({"collinear instruments", gram_of(same_instruments)});
  out.push_back({"collinear instruments eta 0", gram_of(same_instruments), 0.0});
  Trajectory zero_instrument = random_trajectory(n, 400, 5);
  zero_instrument.Z.row(0).setZero();  // a constant instrument
  out.push_back({"constant instrument", gram_of(zero_instrument)});
  out.push_back({"m = k", gram_of(random_trajectory(n, k + 1, 6))});
  out.push_back({"m = k + 1", gram_of(random_trajectory(n, k + 2, 7))});
  out.push_back({"m = k + 2", gram_of(random_trajectory(n, k + 3, 8))});
  out.push_back({"m = 1", gram_of(random_trajectory(n, 2, 9))});
  cs::Gram not_finite = gram_of(random_trajectory(n, 400, 10));
  const int x0 = not_finite.x(0), x1 = not_finite.x(1), z0 = not_finite.z(0), z1 = not_finite.z(1);
  not_finite.ww(x0, x1) = not_finite.ww(x1, x0) = nan;  // xx not finite: ols singular
  not_finite.ww(z0, z1) = not_finite.ww(z1, z0) = std::numeric_limits<double>::infinity();  // zz: iv unidentified
  out.push_back({"not finite", not_finite});
  out.push_back({"healthy again", gram_of(random_trajectory(n, 300, 11))});
  Trajectory perfect = random_trajectory(n, 400, 12);
  // x_3[t+1] from x_1[t] exactly (target 3: not among the elements thread 0 of a block tests)
  for (int s = 1; s < 400; ++s) perfect.X(3, s) = 0.2 + 0.5 * perfect.X(1, s - 1);
  out.push_back({"perfect fit of x_3[t+1]", gram_of(perfect)});
  return out;
}

Case crafted_case(const std::string& name, Method method, int n, int k, bool intercept) {
  Case c;
  c.name = name;
  c.method = method;
  c.n = n;
  c.k = k;
  c.intercept = intercept;
  c.correction = cs::Correction::bonferroni;
  for (const Crafted& g : crafted_grams(n, k)) {
    c.grams.push_back(g.gram);
    c.etas.push_back(g.eta);
  }
  return c;
}

// Runs a case on the host and checks it; returns the outputs for further checks.
Outputs check_on_host(const Case& c) {
  const Outputs out = run_on_host(c);
  expect_matches_cpu(c, out);
  return out;
}

// The flags the CPU gives network i of a case (to check that a crafted case hits the intended exit).
uint32_t cpu_flags(const Case& c, size_t i) { return reference(c, i).flags; }

// ---- host path: simulated networks -----------------------------------------------------------

TEST(CudaHostLeastSquares, OlsOnSimulatedNetworks) {
  const std::vector<std::pair<uint64_t, double>> three = {{1, 2.0}, {2, 1.0}, {3, 0.5}};
  for (const int k : {40, 20, 1})
    for (const bool intercept : {true, false}) {
      Case c = simulated("ols n40 k" + std::to_string(k) + (intercept ? "" : " no intercept"), Method::ols, 40, k,
                         2000, three);
      c.intercept = intercept;
      c.correction = k == 20 ? cs::Correction::bonferroni : cs::Correction::none;
      const Gaps gaps = expect_matches_cpu(c, run_on_host(c));
      EXPECT_EQ(gaps.finite_networks, 3) << c.name << ": the simulated networks must be estimable";
    }
  Case c = simulated("ols n100 k60", Method::ols, 100, 60, 3000, {{4, 2.0}, {5, 2.0}});
  c.correction = cs::Correction::bonferroni;
  EXPECT_EQ(expect_matches_cpu(c, run_on_host(c)).finite_networks, 2);
  c.name = "ols n100 k60 none";
  c.correction = cs::Correction::none;
  expect_matches_cpu(c, run_on_host(c));
}

TEST(CudaHostLeastSquares, IvOnSimulatedNetworks) {
  // eta = 0 in the same batch as identified networks: all-NaN + unidentified, its F still reported.
  const std::vector<std::pair<uint64_t, double>> mixed = {{1, 2.0}, {2, 0.0}, {3, 0.5}};
  for (const int k : {40, 20, 1}) {
    Case c = simulated("iv n40 k" + std::to_string(k), Method::iv, 40, k, 2000, mixed);
    c.correction = k == 40 ? cs::Correction::bonferroni : cs::Correction::none;
    const Outputs out = run_on_host(c);
    const Gaps gaps = expect_matches_cpu(c, out);
    EXPECT_EQ(gaps.finite_networks, 2) << c.name;
    EXPECT_EQ(out.flags[1], cs::flag_unidentified) << c.name;
    EXPECT_TRUE(std::isfinite(out.first_stage_f[1])) << c.name << ": eta = 0 still reports the first-stage F";
  }
  Case c = simulated("iv n100 k60", Method::iv, 100, 60, 3000, {{4, 2.0}, {5, 1.0}});
  c.correction = cs::Correction::bonferroni;
  EXPECT_EQ(expect_matches_cpu(c, run_on_host(c)).finite_networks, 2);
}

// k = 200: each k x k matrix (320 KB) exceeds a block's shared memory (227 KB on H100); the kernels
// keep only O(threads) in shared memory, so size does not change the path.
TEST(CudaHostLeastSquares, LargeSystemsBeyondSharedMemory) {
  Case ols = simulated("ols n200 k200", Method::ols, 200, 200, 1500, {{7, 2.0}, {8, 2.0}});
  EXPECT_EQ(expect_matches_cpu(ols, run_on_host(ols)).finite_networks, 2);
  Case iv = simulated("iv n200 k200", Method::iv, 200, 200, 1500, {{7, 2.0}});
  iv.correction = cs::Correction::bonferroni;
  EXPECT_EQ(expect_matches_cpu(iv, run_on_host(iv)).finite_networks, 1);
}

// Conditional Granger: sigmoid and identity networks, every k, both corrections the GPU decides, at
// two levels; both decisions must occur, so a wrong comparison cannot pass.
TEST(CudaHostLeastSquares, GrangerConditionalOnSimulatedNetworks) {
  int declared = 0, not_declared = 0;
  for (const cs::Nonlinearity f : {cs::Nonlinearity::sigmoid, cs::Nonlinearity::identity})
    for (const int k : {40, 20, 1})
      for (const auto& [correction, level] : {std::pair{cs::Correction::none, 0.05},
                                              std::pair{cs::Correction::bonferroni, 0.05},
                                              std::pair{cs::Correction::none, 0.3}}) {
        Case c;
        c.name = std::string("granger_conditional ") + (f == cs::Nonlinearity::identity ? "identity" : "sigmoid") +
                 " n40 k" + std::to_string(k) + " level " + std::to_string(level) +
                 (correction == cs::Correction::bonferroni ? " bonferroni" : "");
        c.method = Method::granger_conditional;
        c.n = 40;
        c.k = k;
        c.correction = correction;
        c.level = level;
        for (const uint64_t seed : {1, 2, 3}) {
          c.grams.push_back(cs::test::simulated_grams(seed, 40, 2000, 0.5, 0.2, false, f).all);
          c.etas.push_back(0.5);
        }
        const Gaps gaps = expect_matches_cpu(c, run_on_host(c));
        EXPECT_EQ(gaps.finite_networks, 3) << c.name << ": the simulated networks must be testable";
        declared += gaps.declared;
        not_declared += gaps.not_declared;
      }
  EXPECT_GT(declared, 0);
  EXPECT_GT(not_declared, 0);
  Case large = simulated("granger_conditional n200 k200", Method::granger_conditional, 200, 200, 1500, {{7, 2.0}});
  EXPECT_EQ(expect_matches_cpu(large, run_on_host(large)).finite_networks, 1);
  // V left as p-values, for the Benjamini-Hochberg kernel.
  Case p = simulated("granger_conditional p-values n40 k30", Method::granger_conditional, 40, 30, 2000, {{1, 2.0}, {2, 0.5}});
  p.write_p_values = true;
  EXPECT_EQ(expect_matches_cpu(p, run_on_host(p)).finite_networks, 2);
}

// ---- host path: degenerate inputs ----------------------------------------------------------------

TEST(CudaHostLeastSquares, OlsDegenerateGramsGiveNanAndTheCpuFlags) {
  for (const bool intercept : {true, false}) {
    const Case c = crafted_case(intercept ? "ols crafted" : "ols crafted no intercept", Method::ols, 6, 6, intercept);
    // The crafted Grams hit the exits they are meant to (checked on the CPU, independently of the solver).
    EXPECT_EQ(cpu_flags(c, 0), 0u);
    if (intercept) {
      EXPECT_EQ(cpu_flags(c, 2), cs::flag_singular | cs::flag_constant_regressor);
    }
    EXPECT_EQ(cpu_flags(c, 3), cs::flag_singular);
    EXPECT_EQ(cpu_flags(c, 7), cs::flag_too_few_samples);                      // m = k
    EXPECT_EQ(cpu_flags(c, 8), intercept ? cs::flag_too_few_samples : 0u);     // m = k + 1
    EXPECT_EQ(cpu_flags(c, 11), cs::flag_singular);                            // not finite
    check_on_host(c);
    // Again with finite poison: NaN outputs must be written, not left over.
    const Outputs out = run_on_host(c, -777.0);
    expect_matches_cpu(c, out);
  }
}

TEST(CudaHostLeastSquares, IvDegenerateGramsGiveNanAndTheCpuFlags) {
  const Case c = crafted_case("iv crafted", Method::iv, 6, 6, true);
  EXPECT_EQ(cpu_flags(c, 0), 0u);
  EXPECT_EQ(cpu_flags(c, 1), cs::flag_unidentified);                          // eta = 0
  EXPECT_EQ(cpu_flags(c, 3), cs::flag_singular);                              // stage 2 singular
  EXPECT_EQ(cpu_flags(c, 4), cs::flag_unidentified | cs::flag_singular);      // collinear instruments
  EXPECT_EQ(cpu_flags(c, 5), cs::flag_unidentified);                          // ... and eta = 0
  EXPECT_EQ(cpu_flags(c, 6), cs::flag_unidentified | cs::flag_singular);      // constant instrument
  EXPECT_EQ(cpu_flags(c, 8), cs::flag_too_few_samples);                       // m = k + 1
  EXPECT_EQ(cpu_flags(c, 11), cs::flag_unidentified | cs::flag_singular);     // not finite
  const Outputs out = check_on_host(c);
  EXPECT_TRUE(std::isfinite(out.first_stage_f[1])) << "eta = 0 still reports the first-stage F";
  EXPECT_TRUE(std::isnan(out.first_stage_f[4])) << "no first stage without identified instruments";
  expect_matches_cpu(c, run_on_host(c, -777.0));
  // A smaller k of the same Grams: the leading blocks.
  const Case smaller = crafted_case("iv crafted k4", Method::iv, 6, 4, true);
  check_on_host(smaller);
}

TEST(CudaHostLeastSquares, GrangerConditionalDegenerateGramsGiveNanAndTheCpuFlags) {
  for (const int k : {6, 4}) {
    Case c = crafted_case("granger_conditional crafted k" + std::to_string(k), Method::granger_conditional, 6, k, true);
    c.correction = cs::Correction::none;
    EXPECT_EQ(cpu_flags(c, 0), 0u);
    EXPECT_EQ(cpu_flags(c, 2), cs::flag_singular | cs::flag_constant_regressor);
    EXPECT_EQ(cpu_flags(c, 3), cs::flag_singular);
    EXPECT_EQ(cpu_flags(c, 8), cs::flag_too_few_samples);                     // m = k + 1
    EXPECT_EQ(cpu_flags(c, 9), 0u);                                           // m = k + 2: df = 1
    EXPECT_EQ(cpu_flags(c, 11), cs::flag_singular);                           // not finite
    EXPECT_EQ(cpu_flags(c, 13), cs::flag_singular);                           // a perfect fit: target 3's tests
    const Outputs out = check_on_host(c);
    // Only the perfectly fitted target's tests are undefined; the others are decided.
    const size_t kk = static_cast<size_t>(k) * k, net = 13;
    for (int i = 0; i < k; ++i)
      for (int j = 0; j < k; ++j)
        EXPECT_EQ(std::isnan(out.rank_key[net * kk + i + static_cast<size_t>(j) * k]), i == 3) << i << " " << j;
    expect_matches_cpu(c, run_on_host(c, -777.0));  // finite poison: NaN outputs must be written
    c.name += " bonferroni";
    c.correction = cs::Correction::bonferroni;
    check_on_host(c);
  }
  // A target constant after its first step: its tests undefined, flag constant_regressor, on both.
  Case constant = crafted_case("granger_conditional constant target", Method::granger_conditional, 6, 6, true);
  constant.grams.clear();
  for (const double level : {0.3, 0.1, 1.0 / 3.0}) {
    Trajectory t = random_trajectory(6, 400, 13);
    for (int s = 1; s < 400; ++s) t.X(3, s) = level;
    constant.grams.push_back(gram_of(t));
  }
  constant.etas.assign(constant.grams.size(), 1.0);
  for (size_t i = 0; i < constant.grams.size(); ++i)
    EXPECT_EQ(cpu_flags(constant, i), cs::flag_constant_regressor) << i;
  check_on_host(constant);
}

TEST(CudaHostLeastSquares, MissingCriticalValueGivesNanDecisionsOnly) {
  Case c = simulated("ols without critical", Method::ols, 40, 20, 2000, {{1, 2.0}, {2, 2.0}});
  c.without_critical = {false, true};
  const Outputs out = run_on_host(c);
  expect_matches_cpu(c, out);
  const size_t kk = 20 * 20;
  EXPECT_TRUE(std::all_of(out.decided.begin() + kk, out.decided.end(), [](double d) { return std::isnan(d); }));
  EXPECT_TRUE(std::all_of(out.V.begin() + kk, out.V.end(), [](double v) { return std::isfinite(v); }));
  EXPECT_TRUE(std::none_of(out.decided.begin(), out.decided.begin() + kk, [](double d) { return std::isnan(d); }));
}

// The workspace the header documents: per network each matrix rounded up to 32 doubles, then the
// pointer arrays, the info arrays and the status words, each section rounded up to 256 bytes.
TEST(CudaHostLeastSquares, WorkspaceBytesAsDocumented) {
  const auto solver = cuda::LeastSquaresSolver::on_host();
  auto up = [](size_t v, size_t m) { return (v + m - 1) / m * m; };
  for (const int k : {1, 7, 40, 200})
    for (const int networks : {1, 3, 1000}) {
      const size_t kk = static_cast<size_t>(k) * k, p = k + 1, count = networks;
      const size_t ols_slot = 4 * up(kk, 32) + up(2 * kk, 32) + 2 * up(k, 32) + up(3, 32);
      const size_t granger_slot = ols_slot - up(kk, 32);  // no H B
      const size_t iv_slot = 2 * up(p * p, 32) + 2 * up(p * (2 * p + k), 32) + up(p, 32) + up(k, 32) + up(3, 32);
      auto total = [&](size_t slot, size_t arrays) {
        return up(count * slot * 8, 256) + up(count * arrays * sizeof(double*), 256) + up(2 * count * 4, 256) +
               up(count * 4, 256);
      };
      EXPECT_EQ(solver->workspace_bytes(Method::ols, networks, k), total(ols_slot, 2)) << k << " " << networks;
      EXPECT_EQ(solver->workspace_bytes(Method::iv, networks, k), total(iv_slot, 4)) << k << " " << networks;
      EXPECT_EQ(solver->workspace_bytes(Method::granger_conditional, networks, k), total(granger_slot, 2))
          << k << " " << networks;
    }
}

TEST(CudaHostLeastSquares, RefusesInconsistentBatches) {
  const auto solver = cuda::LeastSquaresSolver::on_host();
  Case c = simulated("refused", Method::ols, 6, 6, 100, {{1, 1.0}}, 0.3);
  HostInputs in = host_inputs(c);
  Outputs out;
  poison_outputs(out, 1, 6, nan);
  std::vector<unsigned char> workspace(solver->workspace_bytes(Method::iv, 1, 6));
  cuda::LeastSquaresBatch b = describe(c);
  b.grams = in.grams.data();
  b.critical_t = in.critical.data();
  b.V = out.V.data();
  b.decided = out.decided.data();
  b.first_stage_f = out.first_stage_f.data();
  b.flags = out.flags.data();
  b.k = 7;  // more observed than simulated neurons
  EXPECT_THROW(solver->solve(b, workspace.data()), std::invalid_argument);
  b.k = 6;
  b.method = Method::iv;  // iv without etas
  EXPECT_THROW(solver->solve(b, workspace.data()), std::invalid_argument);
  b.method = Method::granger_conditional;  // without rank_key
  EXPECT_THROW(solver->solve(b, workspace.data()), std::invalid_argument);
  b.rank_key = out.rank_key.data();
  b.intercept = false;  // its regressions always have an intercept
  EXPECT_THROW(solver->solve(b, workspace.data()), std::invalid_argument);
  b.method = Method::ols;  // ols without decisions
  b.decided = nullptr;
  EXPECT_THROW(solver->solve(b, workspace.data()), std::invalid_argument);
  b.networks = 0;  // nothing to do: nothing touched
  EXPECT_NO_THROW(solver->solve(b, nullptr));
}

// ---- device path ------------------------------------------------------------------------------

#define SKIP_WITHOUT_GPU()                                                                 \
  do {                                                                                     \
    const cs::CudaDevices gpus = cs::query_cuda_devices();                                 \
    if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;           \
  } while (0)

// A device buffer holding a copy of host values.
template <class T>
struct DeviceArray {
  T* data = nullptr;
  size_t count = 0;
  explicit DeviceArray(size_t n) : count(n) { CS_CUDA_CHECK(cudaMalloc(&data, std::max<size_t>(n, 1) * sizeof(T))); }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) {
    CS_CUDA_CHECK(cudaMemcpy(data, host.data(), count * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  std::vector<T> to_host() const {
    std::vector<T> host(count);
    CS_CUDA_CHECK(cudaMemcpy(host.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
};

// The real path on the current device: inputs uploaded, outputs poisoned (NaN), workspace 0xff bytes.
Outputs run_on_device(const Case& c, cudaStream_t stream) {
  const auto solver = cuda::LeastSquaresSolver::on_device(stream);
  const HostInputs in = host_inputs(c);
  Outputs poisoned;
  poison_outputs(poisoned, c.grams.size(), c.k, nan);
  DeviceArray<double> grams(in.grams), etas(in.etas), critical(in.critical);
  DeviceArray<double> V(poisoned.V), decided(poisoned.decided), f(poisoned.first_stage_f), key(poisoned.rank_key);
  DeviceArray<uint32_t> flags(poisoned.flags);
  const size_t bytes = solver->workspace_bytes(c.method, static_cast<int>(c.grams.size()), c.k);
  DeviceArray<unsigned char> workspace(bytes);
  CS_CUDA_CHECK(cudaMemset(workspace.data, 0xff, bytes));
  cuda::LeastSquaresBatch b = describe(c);
  b.grams = grams.data;
  b.etas = etas.data;
  b.critical_t = critical.data;
  b.V = V.data;
  b.decided = is_granger(c) ? nullptr : decided.data;
  b.rank_key = key.data;
  b.first_stage_f = f.data;
  b.flags = flags.data;
  solver->solve(b, workspace.data);
  CS_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {V.to_host(), decided.to_host(), f.to_host(), key.to_host(), flags.to_host()};
}

TEST(CudaDeviceLeastSquares, MatchesTheCpuOnSimulatedAndDegenerateGrams) {
  SKIP_WITHOUT_GPU();
  CS_CUDA_CHECK(cudaSetDevice(0));
  cudaStream_t stream = nullptr;
  CS_CUDA_CHECK(cudaStreamCreate(&stream));
  std::vector<Case> cases;
  for (const int k : {40, 20, 1}) {
    cases.push_back(simulated("device ols n40 k" + std::to_string(k), Method::ols, 40, k, 2000, {{1, 2.0}, {2, 1.0}}));
    cases.push_back(simulated("device iv n40 k" + std::to_string(k), Method::iv, 40, k, 2000, {{1, 2.0}, {2, 0.0}, {3, 0.5}}));
    cases.back().correction = cs::Correction::bonferroni;
  }
  cases.push_back(simulated("device ols n100 k60", Method::ols, 100, 60, 3000, {{4, 2.0}, {5, 2.0}}));
  cases.back().intercept = false;
  cases.push_back(simulated("device iv n100 k60", Method::iv, 100, 60, 3000, {{4, 2.0}, {5, 1.0}}));
  cases.push_back(simulated("device ols n200 k200", Method::ols, 200, 200, 1500, {{7, 2.0}}));
  cases.push_back(crafted_case("device ols crafted", Method::ols, 6, 6, true));
  cases.push_back(crafted_case("device iv crafted", Method::iv, 6, 6, true));
  cases.push_back(simulated("device granger_conditional n40 k40", Method::granger_conditional, 40, 40, 2000,
                            {{1, 0.5}, {2, 0.5}, {3, 2.0}}));
  cases.push_back(simulated("device granger_conditional n100 k60", Method::granger_conditional, 100, 60, 3000,
                            {{4, 2.0}, {5, 1.0}}));
  cases.back().correction = cs::Correction::bonferroni;
  cases.push_back(simulated("device granger_conditional n200 k200", Method::granger_conditional, 200, 200, 1500,
                            {{7, 2.0}}));
  cases.push_back(crafted_case("device granger_conditional crafted", Method::granger_conditional, 6, 6, true));
  cases.push_back(simulated("device granger_conditional p-values", Method::granger_conditional, 40, 30, 2000,
                            {{1, 2.0}, {2, 0.5}}));
  cases.back().write_p_values = true;
  // Many networks in one batch (the same Grams repeated): the batched calls at scale.
  Case many = simulated("device iv many", Method::iv, 40, 20, 2000, {{1, 2.0}, {2, 1.0}, {3, 0.0}});
  for (int copy = 0; copy < 9; ++copy)
    for (size_t i = 0; i < 3; ++i) {
      many.grams.push_back(many.grams[i]);
      many.etas.push_back(many.etas[i]);
    }
  cases.push_back(many);
  for (const Case& c : cases) expect_matches_cpu(c, run_on_device(c, stream));
  CS_CUDA_CHECK(cudaStreamDestroy(stream));
}

}  // namespace

#else  // no CUDA in this build: the device tests say why they do not run

TEST(CudaDeviceLeastSquares, MatchesTheCpuOnSimulatedAndDegenerateGrams) {
  GTEST_SKIP() << "built without CUDA (" << causalsweep::query_cuda_devices().description << ")";
}

#endif  // CAUSALSWEEP_HAVE_CUDA
