// The active-set lasso on the GPU (kernels/lasso_active_set.cu) against the CPU's
// lasso(..., LassoSolver::active_set), the exact lasso optimum.
//
//   CudaLassoActiveSetHost.*  without a GPU: the kernel's block program run by the host emulator on
//                             Grams of simulated networks (n 40: k 40/20/1; n 100 k 100 T 5000 eta 2,
//                             +-intercept, alpha 0.01/0.1; the system in shared memory and in global
//                             scratch), from a zero warm start, from the CPU's optimum with noise and a
//                             wrong support, and from a NaN warm start; degenerate Grams (no transitions,
//                             non-finite moments, constant regressors, max_iter 0/1): every element of V
//                             (same zeros, NaN where the CPU has NaN) and the flags, outputs poisoned first
//   CudaDevice.LassoActiveSet* on a GPU (skipped without one): the real launch against the CPU
#include <gtest/gtest.h>

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "causalsweep/config.hpp"
#include "causalsweep/cuda_devices.hpp"
#include "causalsweep/estimators.hpp"
#include "causalsweep/flags.hpp"
#include "causalsweep/gram.hpp"
#include "cuda_check.cuh"
#include "cuda_test_support.hpp"
#include "cuda_kernels.hpp"
#include "engine.hpp"
#include "lasso_active_set_kernels.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr uint32_t poisoned_flags = 0xdeadbeefu;
constexpr int poisoned_iterations = -7;

using cs::test::h100_shared_limit;
using cs::test::pack_gram;
using cs::test::simulated_gram;
using cs::test::simulated_trajectory;

std::vector<cs::Gram> networks_of(int n, const std::vector<uint64_t>& seeds, int timesteps, double eta) {
  std::vector<cs::Gram> gs;
  for (uint64_t seed : seeds) gs.push_back(simulated_gram(seed, n, timesteps, eta));
  return gs;
}

struct Params {
  int k = 0;
  bool intercept = false;
  double alpha = 0.01, tol = 1e-4;
  int max_iter = 1000;
};

std::string describe(const Params& p) {
  return "k " + std::to_string(p.k) + (p.intercept ? " intercept" : " no intercept") + " alpha " +
         std::to_string(p.alpha) + " max_iter " + std::to_string(p.max_iter);
}

cs::Estimate cpu_lasso(const cs::Gram& g, const Params& p) {
  return cs::lasso(g, p.k, p.alpha, p.intercept, p.tol, p.max_iter, cs::LassoSolver::active_set);
}

struct Outputs {
  std::vector<double> V;
  std::vector<uint32_t> flags;
  std::vector<int> iterations;
};

// The batch's inputs in one array; V = the warm start (zeros when none is given), flags and
// iterations poisoned.
struct HostInputs {
  int n = 0;
  std::vector<double> grams;
  Outputs out;

  HostInputs(const std::vector<cs::Gram>& gs, int k, const std::vector<double>& warm) : n(gs.front().n) {
    const size_t size = cuda::gram_doubles(n);
    grams.assign(gs.size() * size, nan);
    for (size_t i = 0; i < gs.size(); ++i) pack_gram(gs[i], grams.data() + i * size);
    out.V = warm.empty() ? std::vector<double>(gs.size() * k * k, 0.0) : warm;
    out.flags.assign(gs.size(), poisoned_flags);
    out.iterations.assign(gs.size() * k, poisoned_iterations);
  }
};

cuda::LassoActiveSetBatch make_batch(const Params& p, int networks, int n) {
  cuda::LassoActiveSetBatch b;
  b.networks = networks;
  b.n = n;
  b.k = p.k;
  b.intercept = p.intercept;
  b.alpha = p.alpha;
  b.tol = p.tol;
  b.max_iter = p.max_iter;
  return b;
}

Outputs emulate(const std::vector<cs::Gram>& gs, const Params& p, size_t shared_limit,
                const std::vector<double>& warm = {}) {
  HostInputs h(gs, p.k, warm);
  cuda::LassoActiveSetBatch b = make_batch(p, static_cast<int>(gs.size()), h.n);
  b.grams = h.grams.data();
  b.V = h.out.V.data();
  b.flags = h.out.flags.data();
  b.iterations = h.out.iterations.data();
  // Scratch as the stage sizes it: 3 blocks' systems when they are not in shared memory, so the
  // blocks loop over many fits, reusing their scratch; a guard behind it must stay untouched.
  const size_t per_block = p.k >= 0 ? cuda::lasso_active_set_scratch_doubles(p.k, shared_limit) : 0;
  b.scratch_blocks = per_block ? cuda::lasso_active_set_scratch_blocks(p.k, shared_limit, 0) : 0;
  const size_t used = std::min(gs.size() * std::max(p.k, 1), static_cast<size_t>(b.scratch_blocks)) * per_block;
  constexpr double guard = -12345.5;
  std::vector<double> scratch(used + 64, guard);
  if (per_block) b.scratch = scratch.data();
  cuda::emulate_lasso_active_set_on_host(b, shared_limit);
  for (size_t i = used; i < scratch.size(); ++i)
    if (scratch[i] != guard) ADD_FAILURE() << "the lasso wrote past its scratch at " << i - used;
  return h.out;
}

// How close the kernel's V came to the CPU's, over every element compared.
struct Agreement {
  double max_abs = 0;  // max |dV|
  double max_rel = 0;  // max |dV| / |V| over the nonzero V
  long nonzero = 0;    // nonzero elements of the CPU's V
  long compared = 0;
  int most_iterations = 0, total_iterations = 0, targets = 0;
};

void merge(Agreement& all, const Agreement& a) {
  all.compared += a.compared;
  all.nonzero += a.nonzero;
  all.max_abs = std::max(all.max_abs, a.max_abs);
  all.max_rel = std::max(all.max_rel, a.max_rel);
  all.most_iterations = std::max(all.most_iterations, a.most_iterations);
  all.total_iterations += a.total_iterations;
  all.targets += a.targets;
}

// Every element of V and the flags of every network against the CPU's lasso(): the same zeros, NaN
// exactly where the CPU has NaN, the rest within 1e-9 relative (1e-9 absolute under |V| = 1e-3... of
// max(|V|, 1e-3)); flags equal. compare_v false: flags only (where the CPU went on by coordinate descent).
void expect_matches_cpu(const std::vector<cs::Gram>& gs, const Params& p, const Outputs& got, const std::string& what,
                        Agreement& agreement, bool compare_v = true) {
  const int k = p.k;
  for (size_t i = 0; i < gs.size(); ++i) {
    const cs::Estimate cpu = cpu_lasso(gs[i], p);
    const std::string where = what + " network " + std::to_string(i);
    EXPECT_EQ(got.flags[i], cpu.flags) << where << ": GPU " << cs::flags_to_string(got.flags[i]) << ", CPU "
                                       << cs::flags_to_string(cpu.flags);
    for (int t = 0; t < k; ++t) {
      const int iterations = got.iterations[i * k + t];
      EXPECT_NE(iterations, poisoned_iterations) << where << " target " << t;
      agreement.most_iterations = std::max(agreement.most_iterations, iterations);
      agreement.total_iterations += std::max(iterations, 0);
      ++agreement.targets;
    }
    if (!compare_v) continue;
    int bad = 0;
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) {
        const double want = cpu.V(a, b), have = got.V[i * k * k + a + static_cast<size_t>(b) * k];
        ++agreement.compared;
        if (std::isnan(want) || std::isnan(have)) {
          if (!(std::isnan(want) && std::isnan(have)) && ++bad <= 5)
            ADD_FAILURE() << where << ": V(" << a << ", " << b << ") = " << have << ", CPU " << want;
          continue;
        }
        if ((want == 0.0) != (have == 0.0)) {
          if (++bad <= 5) ADD_FAILURE() << where << ": zero pattern differs at V(" << a << ", " << b << ") = " << have
                                        << ", CPU " << want;
          continue;
        }
        const double diff = std::abs(have - want);
        agreement.nonzero += want != 0.0;
        agreement.max_abs = std::max(agreement.max_abs, diff);
        if (want != 0.0) agreement.max_rel = std::max(agreement.max_rel, diff / std::abs(want));
        if (!(diff <= 1e-9 * std::max(std::abs(want), 1e-3)) && ++bad <= 5)
          ADD_FAILURE() << where << ": V(" << a << ", " << b << ") = " << have << ", CPU " << want;
      }
    EXPECT_EQ(bad, 0) << where << ": " << bad << " elements of V differ";
  }
}

void print_agreement(const std::string& what, const Agreement& a) {
  std::printf("[ las      ] %-58s %7ld elements (%6ld nonzero), max |dV| %.3g, max relative %.3g, iterations per "
              "target: mean %.1f, max %d\n",
              what.c_str(), a.compared, a.nonzero, a.max_abs, a.max_rel,
              a.targets ? static_cast<double>(a.total_iterations) / a.targets : 0.0, a.most_iterations);
}

Agreement check_emulation(const std::vector<cs::Gram>& gs, const Params& p, size_t shared_limit, const std::string& what,
                          const std::vector<double>& warm = {}) {
  const Outputs got = emulate(gs, p, shared_limit, warm);
  Agreement agreement;
  expect_matches_cpu(gs, p, got, what + " (" + describe(p) + ")", agreement);
  return agreement;
}

// Warm starts built from the CPU's optimum: every nonzero moved by up to 30 % (a few flipped in sign),
// a few nonzeros set to 0 and a few zeros set nonzero (a wrong support).
std::vector<double> perturbed_warm_start(const std::vector<cs::Gram>& gs, const Params& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int k = p.k;
  std::vector<double> warm(gs.size() * k * k);
  long changed_support = 0;
  for (size_t i = 0; i < gs.size(); ++i) {
    const Eigen::MatrixXd V = cpu_lasso(gs[i], p).V;
    const double scale = std::max(V.cwiseAbs().maxCoeff(), 1e-3);
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) {
        double v = V(a, b);
        const double u = unit(rng);
        if (v != 0.0) {
          v *= 1.0 + 0.6 * (unit(rng) - 0.5);
          if (u < 0.05) v = -v;
          if (u > 0.9) v = 0.0, ++changed_support;
        } else if (u < 0.05) {
          v = 0.2 * scale * (unit(rng) - 0.5), ++changed_support;
        }
        warm[i * k * k + a + static_cast<size_t>(b) * k] = v;
      }
  }
  if (k >= 20) EXPECT_GT(changed_support, 0) << "the warm start must have a wrong support";
  return warm;
}

// ---- real networks ---------------------------------------------------------------------------

TEST(CudaLassoActiveSetHost, MatchesCpuOnSimulatedNetworksN40) {
  const std::vector<cs::Gram> gs = networks_of(40, {3, 17}, 3000, 1.5);
  Agreement zero, warm;
  for (int k : {40, 20, 1})
    for (bool intercept : {false, true})
      for (double alpha : {0.01, 0.1}) {
        Params p;
        p.k = k;
        p.intercept = intercept;
        p.alpha = alpha;
        merge(zero, check_emulation(gs, p, h100_shared_limit, "n 40 zero start"));
        merge(warm, check_emulation(gs, p, h100_shared_limit, "n 40 perturbed start",
                                    perturbed_warm_start(gs, p, 100 + k)));
      }
  print_agreement("n 40 T 3000, k 40/20/1, +-intercept, alpha .01/.1, zero start", zero);
  print_agreement("n 40 ... perturbed warm start", warm);
}

// The project's main workload: n = 100, k = 100, T = 5000, eta 2.
TEST(CudaLassoActiveSetHost, MatchesCpuOnMainWorkloadN100) {
  const std::vector<cs::Gram> gs = networks_of(100, {21, 22}, 5000, 2.0);
  for (bool intercept : {false, true})
    for (double alpha : {0.01, 0.1}) {
      Params p;
      p.k = 100;
      p.intercept = intercept;
      p.alpha = alpha;
      const std::string what = std::string("n 100 k 100 T 5000 eta 2, ") + (intercept ? "intercept" : "no intercept") +
                               ", alpha " + (alpha == 0.01 ? "0.01" : "0.1");
      print_agreement(what + ", zero start", check_emulation(gs, p, h100_shared_limit, what + " zero start"));
      print_agreement(what + ", perturbed start",
                      check_emulation(gs, p, h100_shared_limit, what + " perturbed start",
                                      perturbed_warm_start(gs, p, intercept * 2 + (alpha == 0.1))));
    }
}

// The k x k system in global scratch (a small shared limit) must give the same result; NaN warm
// starts count as zeros.
TEST(CudaLassoActiveSetHost, SystemInGlobalScratchAndNanWarmStart) {
  ASSERT_EQ(cuda::lasso_active_set_scratch_doubles(100, h100_shared_limit), 0u);
  ASSERT_EQ(cuda::lasso_active_set_scratch_doubles(100, 32 * 1024), 100u * 100u);
  ASSERT_EQ(cuda::lasso_active_set_scratch_doubles(40, 16 * 1024), 40u * 40u);
  EXPECT_THROW(cuda::lasso_active_set_scratch_doubles(100, 8 * 1024), std::invalid_argument);
  const std::vector<cs::Gram> g100 = networks_of(100, {5}, 5000, 2.0);
  Params p;
  p.k = 100;
  print_agreement("n 100 k 100 system in global scratch", check_emulation(g100, p, 32 * 1024, "n 100 scratch"));
  print_agreement("n 100 k 100 scratch, perturbed start",
                  check_emulation(g100, p, 32 * 1024, "n 100 scratch perturbed", perturbed_warm_start(g100, p, 9)));
  // k = 170: the system (226 KiB) does not fit next to the vectors even in H100's 227 KiB.
  ASSERT_EQ(cuda::lasso_active_set_scratch_doubles(161, h100_shared_limit), 0u);
  ASSERT_EQ(cuda::lasso_active_set_scratch_doubles(170, h100_shared_limit), 170u * 170u);
  const std::vector<cs::Gram> g170 = networks_of(170, {6}, 3000, 2.0);
  p.k = 170;
  print_agreement("n 170 k 170 system in global scratch (H100 limit)",
                  check_emulation(g170, p, h100_shared_limit, "n 170 scratch"));
  const std::vector<cs::Gram> g40 = networks_of(40, {8}, 2000, 1.0);
  p.k = 40;
  p.intercept = true;
  print_agreement("n 40 k 40 system in global scratch", check_emulation(g40, p, 16 * 1024, "n 40 scratch"));
  print_agreement("n 40 k 40 NaN warm start",
                  check_emulation(g40, p, h100_shared_limit, "n 40 NaN warm start", std::vector<double>(40 * 40, nan)));
}

// ---- degenerate Grams --------------------------------------------------------------------------

// No transitions: all NaN, too few samples (on the CPU as on the GPU); k = 0: only the flag.
TEST(CudaLassoActiveSetHost, NoTransitionsIsAllNanTooFewSamples) {
  std::vector<cs::Gram> gs = {cs::Gram(12), simulated_gram(4, 12, 300, 1.0)};
  Params p;
  p.k = 12;
  const Outputs got = emulate(gs, p, h100_shared_limit);
  EXPECT_EQ(got.flags[0], static_cast<uint32_t>(cs::flag_too_few_samples));
  for (int e = 0; e < 12 * 12; ++e) EXPECT_TRUE(std::isnan(got.V[e])) << e;
  Agreement a;
  expect_matches_cpu(gs, p, got, "no transitions", a);
  p.k = 0;
  const Outputs none = emulate(gs, p, h100_shared_limit);
  EXPECT_EQ(none.flags[0], static_cast<uint32_t>(cs::flag_too_few_samples));
  EXPECT_EQ(none.flags[1], 0u);
  expect_matches_cpu(gs, p, none, "k = 0", a);
}

// A neuron that never varies: with an intercept its centred h_jj is exactly 0 (never activated) and
// as a target it has y'y = 0, so its gap is never below 0: not converged (the CPU then runs coordinate
// descent, which keeps w = 0). A neuron that is always 0 has h_jj = 0 without an intercept too.
TEST(CudaLassoActiveSetHost, ConstantRegressorMatchesCpu) {
  Eigen::MatrixXd X, Z;
  simulated_trajectory(7, 16, 800, X, Z);
  X.row(3).setConstant(0.5);  // 0.5: every centring step is exact
  const cs::Gram constant = cs::gram_from_trajectories(X, Z);
  X.row(5).setZero();
  const cs::Gram zero = cs::gram_from_trajectories(X, Z);
  for (bool intercept : {true, false}) {
    Params p;
    p.k = 16;
    p.intercept = intercept;
    p.max_iter = 50;
    // A warm start that puts weight on the degenerate coordinates: they must still end at 0.
    std::vector<double> warm(2 * 16 * 16, 0.0);
    for (int i = 0; i < 16; ++i) warm[i + 3 * 16] = warm[16 * 16 + i + 5 * 16] = 0.25;
    for (const std::vector<double>& start : {std::vector<double>{}, warm}) {
      const Outputs got = emulate({constant, zero}, p, h100_shared_limit, start);
      Agreement a;
      expect_matches_cpu({constant, zero}, p, got, "constant regressor", a);
      for (int i = 0; i < 16; ++i) {
        EXPECT_EQ(got.V[3 + i * 16], 0.0) << "constant target (y = logit(0.5) = 0): weight 0, regressor " << i;
        if (intercept) EXPECT_EQ(got.V[i + 3 * 16], 0.0) << "h_jj == 0: weight 0, target " << i;
        EXPECT_EQ(got.V[16 * 16 + i + 5 * 16], 0.0) << "zero regressor: weight 0, target " << i;
      }
      EXPECT_TRUE(got.flags[0] & cs::flag_not_converged) << "y'y = 0: the gap is never < 0";
    }
  }
}

// Non-finite moments: NaN in X'X or inf in X'y is singular (all NaN); NaN in y'y only is not (the
// CPU does not check it): the gap is NaN, not converged, V the optimum all the same.
TEST(CudaLassoActiveSetHost, NonFiniteMomentsMatchCpu) {
  const cs::Gram good = simulated_gram(9, 10, 600, 1.5);
  cs::Gram nan_xx = good, inf_xy = good, nan_yy = good, inf_sum = good;
  nan_xx.ww(1 + 10 + 2, 1 + 10 + 4) = nan_xx.ww(1 + 10 + 4, 1 + 10 + 2) = nan;
  inf_xy.wu(1 + 10 + 7, 10 + 1) = std::numeric_limits<double>::infinity();  // X'y of regressor 7, target 1
  nan_yy.uu(10 + 6) = nan;
  inf_sum.ww(0, 1 + 10 + 8) = inf_sum.ww(1 + 10 + 8, 0) = std::numeric_limits<double>::infinity();
  const std::vector<cs::Gram> gs = {good, nan_xx, inf_xy, nan_yy, inf_sum};
  for (bool intercept : {true, false}) {
    Params p;
    p.k = 10;
    p.intercept = intercept;
    p.max_iter = 40;
    const Outputs got = emulate(gs, p, h100_shared_limit);
    Agreement a;
    expect_matches_cpu(gs, p, got, std::string("non-finite moments") + (intercept ? "" : " no intercept"), a);
    EXPECT_EQ(got.flags[0], 0u);
    EXPECT_EQ(got.flags[1], static_cast<uint32_t>(cs::flag_singular));
    EXPECT_EQ(got.flags[2], static_cast<uint32_t>(cs::flag_singular));
    EXPECT_EQ(got.flags[3], static_cast<uint32_t>(cs::flag_not_converged));
    EXPECT_EQ(got.flags[4], intercept ? static_cast<uint32_t>(cs::flag_singular) : 0u);
  }
}

// The iteration cap. A target whose search solves `it` times ends at the check of iteration it + 1,
// so it needs max_iter > it. max_iter 0 and 1: not converged, as on the CPU (whose V then comes from its
// coordinate-descent fallback, so only the flags are compared; the GPU keeps a finite point).
// max_iter = the most solves any target needs: that target is flagged (where the CPU's fallback may
// still converge: the documented difference). One more: converged, the CPU's V.
TEST(CudaLassoActiveSetHost, IterationCapIsNotConverged) {
  const std::vector<cs::Gram> gs = networks_of(30, {13, 14}, 2000, 1.0);
  Params p;
  p.k = 30;
  const Outputs full = emulate(gs, p, h100_shared_limit);
  int most = 0;
  for (int it : full.iterations) most = std::max(most, it);
  ASSERT_GT(most, 2);
  for (int max_iter : {0, 1, most, most + 1}) {
    p.max_iter = max_iter;
    const Outputs got = emulate(gs, p, h100_shared_limit);
    Agreement a;
    if (max_iter <= 1 || max_iter > most)
      expect_matches_cpu(gs, p, got, "max_iter " + std::to_string(max_iter), a, max_iter > most);
    for (size_t i = 0; i < gs.size(); ++i) {
      int needed = 0;
      for (int t = 0; t < p.k; ++t) needed = std::max(needed, full.iterations[i * p.k + t]);
      const uint32_t expected = needed < max_iter ? 0u : static_cast<uint32_t>(cs::flag_not_converged);
      EXPECT_EQ(got.flags[i], expected) << "max_iter " << max_iter << " network " << i << " needs " << needed;
    }
    for (size_t e = 0; e < got.V.size(); ++e) EXPECT_TRUE(std::isfinite(got.V[e])) << e;
  }
}

TEST(CudaLassoActiveSetHost, RefusesBadBatches) {
  Params p;
  p.k = 5;
  const std::vector<cs::Gram> gs = {simulated_gram(1, 4, 100, 1.0)};
  EXPECT_THROW(emulate(gs, p, h100_shared_limit), std::invalid_argument);  // k > n
  // Systems in global scratch: the scratch must come with the grid that shares it out.
  const std::vector<cs::Gram> g40 = {simulated_gram(2, 40, 200, 1.0)};
  HostInputs h(g40, 40, {});
  cuda::LassoActiveSetBatch b = make_batch(Params{.k = 40}, 1, h.n);
  b.grams = h.grams.data();
  b.V = h.out.V.data();
  b.flags = h.out.flags.data();
  constexpr size_t small_shared = 16 * 1024;  // the 40 x 40 system goes to scratch
  const size_t per_block = cuda::lasso_active_set_scratch_doubles(40, small_shared);
  ASSERT_GT(per_block, 0u);
  std::vector<double> scratch(2 * per_block);
  b.scratch = scratch.data();
  b.scratch_blocks = 0;
  EXPECT_THROW(cuda::emulate_lasso_active_set_on_host(b, small_shared), std::invalid_argument);
  b.scratch_blocks = -1;
  EXPECT_THROW(cuda::emulate_lasso_active_set_on_host(b, small_shared), std::invalid_argument);
  b.scratch_blocks = 2;
  EXPECT_NO_THROW(cuda::emulate_lasso_active_set_on_host(b, small_shared));
}

// ---- on a GPU --------------------------------------------------------------------------------

struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { CS_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(bytes, 8))); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr); }
};

// The real launch on device 0: flags and iterations poisoned (0xff bytes), V = the warm start.
// scratch_blocks: the grid when the systems are in global scratch (0: the backend's choice).
Outputs launch_on_device(const std::vector<cs::Gram>& gs, const Params& p, size_t shared_limit, double& seconds,
                         const std::vector<double>& warm = {}, int scratch_blocks = 0) {
  HostInputs h(gs, p.k, warm);
  const size_t networks = gs.size();
  if (scratch_blocks == 0) {
    int multiprocessors = 0;
    CS_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, 0));
    scratch_blocks = cuda::lasso_active_set_scratch_blocks(p.k, shared_limit, multiprocessors);
  }
  DeviceBuffer grams(h.grams.size() * sizeof(double)), V(h.out.V.size() * sizeof(double)),
      flags(networks * sizeof(uint32_t)), iterations(h.out.iterations.size() * sizeof(int)),
      scratch(std::min(networks * p.k, static_cast<size_t>(std::max(scratch_blocks, 0))) *
              cuda::lasso_active_set_scratch_doubles(p.k, shared_limit) * sizeof(double));
  CS_CUDA_CHECK(cudaMemcpy(grams.ptr, h.grams.data(), h.grams.size() * sizeof(double), cudaMemcpyHostToDevice));
  CS_CUDA_CHECK(cudaMemcpy(V.ptr, h.out.V.data(), h.out.V.size() * sizeof(double), cudaMemcpyHostToDevice));
  CS_CUDA_CHECK(cudaMemset(flags.ptr, 0xff, networks * sizeof(uint32_t)));
  CS_CUDA_CHECK(cudaMemset(iterations.ptr, 0xff, h.out.iterations.size() * sizeof(int)));
  cuda::LassoActiveSetBatch b = make_batch(p, static_cast<int>(networks), h.n);
  b.grams = grams.as<double>();
  b.V = V.as<double>();
  b.flags = flags.as<uint32_t>();
  b.iterations = iterations.as<int>();
  b.scratch = scratch.as<double>();
  b.scratch_blocks = scratch_blocks;
  cudaStream_t stream;
  CS_CUDA_CHECK(cudaStreamCreate(&stream));
  const auto start = std::chrono::steady_clock::now();
  cuda::launch_lasso_active_set(b, shared_limit, stream);
  CS_CUDA_CHECK(cudaStreamSynchronize(stream));
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CS_CUDA_CHECK(cudaStreamDestroy(stream));
  CS_CUDA_CHECK(cudaMemcpy(h.out.V.data(), V.ptr, h.out.V.size() * sizeof(double), cudaMemcpyDeviceToHost));
  CS_CUDA_CHECK(cudaMemcpy(h.out.flags.data(), flags.ptr, networks * sizeof(uint32_t), cudaMemcpyDeviceToHost));
  CS_CUDA_CHECK(cudaMemcpy(h.out.iterations.data(), iterations.ptr, h.out.iterations.size() * sizeof(int),
                           cudaMemcpyDeviceToHost));
  return h.out;
}

TEST(CudaDevice, LassoActiveSetMatchesCpu) {
  const auto gpus = cs::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  const size_t limit = cuda::shared_memory_limit(0);
  struct Case {
    int n, k;
    bool intercept;
    double alpha;
    size_t shared_limit;
    int scratch_blocks = 0;  // 0: the backend's grid; else fewer blocks, each looping over fits
  };
  const std::vector<Case> cases = {{40, 40, false, 0.01, limit},    {40, 20, true, 0.1, limit},
                                   {40, 1, false, 0.01, limit},     {100, 100, false, 0.01, limit},
                                   {100, 100, true, 0.01, limit},   {100, 100, false, 0.1, limit},
                                   {100, 100, false, 0.01, 32768},  {100, 100, true, 0.01, 32768, 7}};
  for (const Case& c : cases) {
    const std::vector<cs::Gram> gs = networks_of(c.n, {3, 17, 29}, 5000, 2.0);
    Params p;
    p.k = c.k;
    p.intercept = c.intercept;
    p.alpha = c.alpha;
    double seconds = 0;
    const std::string what = "device n " + std::to_string(c.n) + " limit " + std::to_string(c.shared_limit);
    Agreement a, w;
    expect_matches_cpu(gs, p, launch_on_device(gs, p, c.shared_limit, seconds, {}, c.scratch_blocks),
                       what + " (" + describe(p) + ")", a);
    print_agreement(what + " k " + std::to_string(c.k) + " zero start", a);
    expect_matches_cpu(gs, p,
                       launch_on_device(gs, p, c.shared_limit, seconds, perturbed_warm_start(gs, p, 77), c.scratch_blocks),
                       what + " perturbed (" + describe(p) + ")", w);
    print_agreement(what + " k " + std::to_string(c.k) + " perturbed start", w);
  }
  // The degenerate Grams, through the real kernel.
  cs::Gram nan_xx = simulated_gram(9, 10, 600, 1.5);
  nan_xx.ww(1 + 10 + 2, 1 + 10 + 4) = nan;
  const std::vector<cs::Gram> degenerate = {cs::Gram(10), nan_xx, simulated_gram(10, 10, 600, 1.5)};
  Params p;
  p.k = 10;
  double seconds = 0;
  Agreement a;
  expect_matches_cpu(degenerate, p, launch_on_device(degenerate, p, limit, seconds), "device degenerate", a);
  p.max_iter = 1;
  const Outputs capped = launch_on_device(degenerate, p, limit, seconds);
  EXPECT_EQ(capped.flags[2], static_cast<uint32_t>(cs::flag_not_converged));
}

// A timing of a realistic batch: 1024 networks of n = 100, k = 100 (copies of 4 simulated Grams),
// from a zero start and from the optimum itself (the best warm start), printed for the integrator.
TEST(CudaDevice, LassoActiveSetTiming) {
  const auto gpus = cs::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  const size_t limit = cuda::shared_memory_limit(0);
  const std::vector<cs::Gram> four = networks_of(100, {31, 32, 33, 34}, 5000, 2.0);
  std::vector<cs::Gram> batch;
  for (int i = 0; i < 1024; ++i) batch.push_back(four[i % 4]);
  for (bool intercept : {false, true}) {
    Params q;
    q.k = 100;
    q.intercept = intercept;
    double seconds = 0;
    launch_on_device(batch, q, limit, seconds);  // warm-up (and the attribute set)
    const Outputs got = launch_on_device(batch, q, limit, seconds);
    const Outputs again = launch_on_device(batch, q, limit, seconds, got.V);
    double warm_seconds = seconds;
    launch_on_device(batch, q, limit, seconds);
    std::printf("[ las      ] device: 1024 networks n 100 k 100 %s alpha 0.01 tol 1e-4: zero start %.3f s, "
                "warm start at the optimum %.3f s\n", intercept ? "intercept" : "no intercept", seconds, warm_seconds);
    const std::vector<cs::Gram> first(batch.begin(), batch.begin() + 4);
    for (const Outputs* o : {&got, &again}) {
      const Outputs head = {std::vector<double>(o->V.begin(), o->V.begin() + 4 * 100 * 100),
                            std::vector<uint32_t>(o->flags.begin(), o->flags.begin() + 4),
                            std::vector<int>(o->iterations.begin(), o->iterations.begin() + 4 * 100)};
      Agreement check;
      expect_matches_cpu(first, q, head, "device timing batch", check);
      print_agreement(std::string("device timing batch ") + (o == &got ? "zero start" : "warm at optimum"), check);
    }
  }
}

}  // namespace

#endif  // CAUSALSWEEP_HAVE_CUDA
