// The lasso on the GPU (kernels/lasso.cu) against the CPU's lasso(..., LassoSolver::cyclic).
//
//   CudaLassoHost.*    without a GPU: the kernel's block programs run by the host emulator on Grams of
//                      simulated networks (several n, k, intercept, alpha; H in shared memory, in global
//                      scratch, one and several blocks per network) and on degenerate Grams (no
//                      transitions, a constant regressor, non-finite moments, tiny max_iter): every
//                      element of V, the flags and the sweeps, outputs poisoned first
//   CudaLassoSolvers.* how far the cyclic result (what the GPU computes) is from the CPU's default
//                      active-set solver (the exact optimum) at tol 1e-4: printed for the integrator
//   CudaDevice.Lasso*  on a GPU (skipped without one): the real launch against the CPU
#include <gtest/gtest.h>

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
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
#include "lasso_kernels.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr uint32_t poisoned_flags = 0xdeadbeefu;
constexpr int poisoned_sweeps = -7;

using cs::test::h100_shared_limit;
using cs::test::pack_gram;
using cs::test::simulated_gram;
using cs::test::simulated_trajectory;

struct Params {
  int k = 0;
  bool intercept = true;
  double alpha = 0.01, tol = 1e-4;
  int max_iter = 1000;
};

std::string describe(const Params& p) {
  return "k " + std::to_string(p.k) + (p.intercept ? " intercept" : " no intercept") + " alpha " +
         std::to_string(p.alpha) + " max_iter " + std::to_string(p.max_iter);
}

struct Outputs {
  std::vector<double> V;
  std::vector<uint32_t> flags;
  std::vector<int> sweeps;
};

// Inputs of a batch in one array, outputs poisoned (NaN, garbage flags and sweeps).
struct HostInputs {
  int n = 0;
  std::vector<double> grams;
  Outputs out;

  HostInputs(const std::vector<cs::Gram>& gs, int k) : n(gs.front().n) {
    const size_t size = cuda::gram_doubles(n);
    grams.assign(gs.size() * size, nan);
    for (size_t i = 0; i < gs.size(); ++i) pack_gram(gs[i], grams.data() + i * size);
    out.V.assign(gs.size() * k * k, nan);
    out.flags.assign(gs.size(), poisoned_flags);
    out.sweeps.assign(gs.size(), poisoned_sweeps);
  }
};

cuda::LassoBatch make_batch(const Params& p, int networks, int n) {
  cuda::LassoBatch b;
  b.networks = networks;
  b.n = n;
  b.k = p.k;
  b.intercept = p.intercept;
  b.alpha = p.alpha;
  b.tol = p.tol;
  b.max_iter = p.max_iter;
  return b;
}

Outputs emulate(const std::vector<cs::Gram>& gs, const Params& p, size_t shared_limit) {
  HostInputs h(gs, p.k);
  cuda::LassoBatch b = make_batch(p, static_cast<int>(gs.size()), h.n);
  b.grams = h.grams.data();
  b.V = h.out.V.data();
  b.flags = h.out.flags.data();
  b.sweeps = h.out.sweeps.data();
  cuda::emulate_lasso_on_host(b, shared_limit);
  return h.out;
}

// How close the kernel's V came to the CPU's, over every element compared.
struct Agreement {
  double max_abs = 0;    // max |dV|
  double max_rel = 0;    // max |dV| / max(1, |V|)
  long identical = 0;    // bit-identical (or both NaN) elements
  long compared = 0;
  int most_sweeps = 0;   // the CPU's, over the networks
};

// Every element of V, the flags and the sweeps of every network against the CPU's lasso(): V within
// 1e-10 of max(1, |V|), NaN exactly where the CPU has NaN; flags and sweeps equal. The iterates follow
// the CPU's formulas in its order with its fused multiply-adds, so with the default -march=native
// build on an FMA machine V is bit-identical (the printed counts say so); a CPU build without FMA
// rounds differently, which measured 2.4e-12 after 1000 sweeps: hence the margin.
void expect_matches_cpu(const std::vector<cs::Gram>& gs, const Params& p, const Outputs& got, const std::string& what,
                        Agreement& agreement) {
  const int k = p.k;
  for (size_t i = 0; i < gs.size(); ++i) {
    const cs::Estimate cpu = cs::lasso(gs[i], k, p.alpha, p.intercept, p.tol, p.max_iter, cs::LassoSolver::cyclic);
    const std::string where = what + " network " + std::to_string(i);
    EXPECT_EQ(got.flags[i], cpu.flags) << where << ": GPU " << cs::flags_to_string(got.flags[i]) << ", CPU "
                                       << cs::flags_to_string(cpu.flags);
    EXPECT_EQ(got.sweeps[i], cpu.iterations) << where;
    agreement.most_sweeps = std::max(agreement.most_sweeps, cpu.iterations);
    int bad = 0;
    for (int a = 0; a < k; ++a)
      for (int b = 0; b < k; ++b) {
        const double want = cpu.V(a, b), have = got.V[i * k * k + a + static_cast<size_t>(b) * k];
        ++agreement.compared;
        if (std::isnan(want) || std::isnan(have)) {
          const bool both = std::isnan(want) && std::isnan(have);
          agreement.identical += both;
          if (!both && ++bad <= 5) ADD_FAILURE() << where << ": V(" << a << ", " << b << ") = " << have << ", CPU " << want;
          continue;
        }
        const double diff = std::abs(have - want);
        agreement.identical += have == want;
        agreement.max_abs = std::max(agreement.max_abs, diff);
        agreement.max_rel = std::max(agreement.max_rel, diff / std::max(1.0, std::abs(want)));
        if (!(diff <= 1e-10 * std::max(1.0, std::abs(want))) && ++bad <= 5)
          ADD_FAILURE() << where << ": V(" << a << ", " << b << ") = " << have << ", CPU " << want;
      }
    EXPECT_EQ(bad, 0) << where << ": " << bad << " elements of V differ";
  }
}

void print_agreement(const std::string& what, const Agreement& a) {
  std::printf("[ lasso    ] %-48s %7ld elements, %7ld bit-identical, max |dV| %.3g, max relative %.3g, most sweeps %d\n",
              what.c_str(), a.compared, a.identical, a.max_abs, a.max_rel, a.most_sweeps);
}

// Emulates and compares; returns the agreement for the report.
Agreement check_emulation(const std::vector<cs::Gram>& gs, const Params& p, size_t shared_limit, const std::string& what) {
  const Outputs got = emulate(gs, p, shared_limit);
  Agreement agreement;
  expect_matches_cpu(gs, p, got, what + " (" + describe(p) + ")", agreement);
  return agreement;
}

// ---- real networks ---------------------------------------------------------------------------

std::vector<cs::Gram> networks_of(int n, const std::vector<uint64_t>& seeds, int timesteps) {
  std::vector<cs::Gram> gs;
  double eta = 0.5;
  for (uint64_t seed : seeds) {
    gs.push_back(simulated_gram(seed, n, timesteps, eta));
    eta += 0.75;
  }
  return gs;
}

void merge(Agreement& all, const Agreement& a) {
  all.compared += a.compared;
  all.identical += a.identical;
  all.max_abs = std::max(all.max_abs, a.max_abs);
  all.max_rel = std::max(all.max_rel, a.max_rel);
  all.most_sweeps = std::max(all.most_sweeps, a.most_sweeps);
}

TEST(CudaLassoHost, MatchesCpuOnSimulatedNetworksN40) {
  const std::vector<cs::Gram> gs = networks_of(40, {3, 17, 29}, 3000);
  Agreement all;
  for (int k : {40, 20, 1})
    for (bool intercept : {true, false})
      for (double alpha : {0.01, 0.1}) {
        Params p;
        p.k = k;
        p.intercept = intercept;
        p.alpha = alpha;
        merge(all, check_emulation(gs, p, h100_shared_limit, "n 40"));
      }
  print_agreement("n 40 T 3000, k 40/20/1, +-intercept, alpha .01/.1", all);
}

// The default sweep's lasso (n 40, T 20000, eta 2, no intercept, alpha 0.01): cyclic descent runs
// long (up to max_iter) there, so many stopping decisions are compared.
TEST(CudaLassoHost, MatchesCpuOnDefaultSweepNetworks) {
  std::vector<cs::Gram> gs = {simulated_gram(0, 40, 20000, 2.0), simulated_gram(1, 40, 20000, 2.0)};
  Agreement all;
  for (int k : {40, 24}) {
    Params p;
    p.k = k;
    p.intercept = false;
    merge(all, check_emulation(gs, p, h100_shared_limit, "default sweep"));
  }
  print_agreement("n 40 T 20000 eta 2, k 40/24, no intercept", all);
}

// n = 100, k = 60: H (29 KB) in shared memory, and the same with a 16 KiB limit (H in global scratch,
// centred by the separate kernel). Both must give the CPU's V.
TEST(CudaLassoHost, MatchesCpuOnSimulatedNetworksN100SharedAndGlobal) {
  ASSERT_EQ(cuda::lasso_scratch_doubles(60, h100_shared_limit), 0u);
  ASSERT_EQ(cuda::lasso_scratch_doubles(60, 16 * 1024), 60u * 60u);
  const std::vector<cs::Gram> gs = networks_of(100, {5, 8}, 4000);
  for (bool intercept : {true, false}) {
    Params p;
    p.k = 60;
    p.intercept = intercept;
    print_agreement("n 100 k 60 H shared" + std::string(intercept ? "" : " no intercept"),
                    check_emulation(gs, p, h100_shared_limit, "n 100 shared"));
    print_agreement("n 100 k 60 H global" + std::string(intercept ? "" : " no intercept"),
                    check_emulation(gs, p, 16 * 1024, "n 100 global"));
  }
}

// k = 100 needs several blocks per network (their flags and sweeps meet in one place), and k = 170's H
// does not fit in 227 KiB. No intercept: the targets need many sweeps (with one they stop at once).
TEST(CudaLassoHost, MatchesCpuWithSeveralBlocksPerNetwork) {
  ASSERT_EQ(cuda::lasso_scratch_doubles(100, h100_shared_limit), 0u);
  ASSERT_EQ(cuda::lasso_scratch_doubles(170, h100_shared_limit), 170u * 170u);
  Params p;
  p.intercept = false;
  p.k = 100;
  p.max_iter = 150;
  const std::vector<cs::Gram> g100 = networks_of(100, {2, 40}, 3000);
  print_agreement("n 100 k 100 (3 blocks per network, 150 sweeps)", check_emulation(g100, p, h100_shared_limit, "n 100"));
  p.k = 170;
  p.max_iter = 10;
  const std::vector<cs::Gram> g170 = networks_of(170, {6}, 2500);
  print_agreement("n 170 k 170 (H global, 8 blocks, 10 sweeps)", check_emulation(g170, p, h100_shared_limit, "n 170"));
}

// The largest size the kernel is meant for, on a few sweeps (the emulator and the CPU are slow here).
TEST(CudaLassoHost, MatchesCpuAtK500) {
  Eigen::MatrixXd X, Z;
  simulated_trajectory(11, 500, 700, X, Z);
  const std::vector<cs::Gram> gs = {cs::gram_from_trajectories(X, Z)};
  Params p;
  p.k = 500;
  p.max_iter = 2;
  print_agreement("n 500 k 500 (2 sweeps)", check_emulation(gs, p, h100_shared_limit, "n 500"));
}

// ---- degenerate Grams --------------------------------------------------------------------------

// No transitions: all NaN, too few samples, no sweeps (on the CPU as on the GPU).
TEST(CudaLassoHost, NoTransitionsIsAllNanTooFewSamples) {
  std::vector<cs::Gram> gs = {cs::Gram(12), simulated_gram(4, 12, 300, 1.0)};
  Params p;
  p.k = 12;
  const Outputs got = emulate(gs, p, h100_shared_limit);
  EXPECT_EQ(got.flags[0], static_cast<uint32_t>(cs::flag_too_few_samples));
  EXPECT_EQ(got.sweeps[0], 0);
  for (int e = 0; e < 12 * 12; ++e) EXPECT_TRUE(std::isnan(got.V[e])) << e;
  Agreement a;
  expect_matches_cpu(gs, p, got, "no transitions", a);
  // No observed neuron: nothing to fit, but no transitions is still flagged.
  p.k = 0;
  const Outputs none = emulate(gs, p, h100_shared_limit);
  EXPECT_EQ(none.flags[0], static_cast<uint32_t>(cs::flag_too_few_samples));
  EXPECT_EQ(none.flags[1], 0u);
  expect_matches_cpu(gs, p, none, "k = 0", a);
}

// A neuron that never varies: with an intercept its centred h_jj is exactly 0 (skipped, weight 0)
// and as a target it has y'y = 0, so its gap never gets below 0: not converged after max_iter sweeps.
// Without an intercept a neuron that is always 0 has h_jj = 0.
TEST(CudaLassoHost, ConstantRegressorMatchesCpu) {
  Eigen::MatrixXd X, Z;
  simulated_trajectory(7, 16, 800, X, Z);
  X.row(3).setConstant(0.5);  // 0.5: every centring step is exact
  const cs::Gram constant = cs::gram_from_trajectories(X, Z);
  ASSERT_EQ(constant.xx(16)(3, 3) - constant.x_sum(16)(3, 0) * constant.x_sum(16)(3, 0) / 799.0, 0.0);
  X.row(5).setZero();
  const cs::Gram zero = cs::gram_from_trajectories(X, Z);
  for (bool intercept : {true, false}) {
    Params p;
    p.k = 16;
    p.intercept = intercept;
    p.max_iter = 50;
    const Outputs got = emulate({constant, zero}, p, h100_shared_limit);
    Agreement a;
    expect_matches_cpu({constant, zero}, p, got, "constant regressor", a);
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(got.V[3 + i * 16], 0.0) << "constant target (y = logit(0.5) = 0): weight 0, regressor " << i;
      if (intercept) {
        EXPECT_EQ(got.V[i + 3 * 16], 0.0) << "h_jj == 0: weight 0, target " << i;
      }
      EXPECT_EQ(got.V[16 * 16 + i + 5 * 16], 0.0) << "zero regressor: weight 0, target " << i;
    }
    EXPECT_TRUE(got.flags[0] & cs::flag_not_converged) << "y'y = 0: the gap is never < 0";
    EXPECT_EQ(got.sweeps[0], 50);
  }
}

// Non-finite moments: NaN in X'X or inf in X'y is singular (all NaN); NaN in y'y only is not (the
// CPU does not check it): the gap is NaN, so every target runs max_iter sweeps, not converged.
TEST(CudaLassoHost, NonFiniteMomentsMatchCpu) {
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
    EXPECT_EQ(got.flags[1], static_cast<uint32_t>(cs::flag_singular));
    EXPECT_EQ(got.flags[2], static_cast<uint32_t>(cs::flag_singular));
    EXPECT_EQ(got.flags[3], static_cast<uint32_t>(cs::flag_not_converged));
    EXPECT_EQ(got.sweeps[3], 40);
    // The sums only enter through the centring: inf there is singular with an intercept only.
    EXPECT_EQ(got.flags[4], intercept ? static_cast<uint32_t>(cs::flag_singular) : got.flags[0]);
  }
}

// max_iter 0, 1, 2: the sweeps run out before the gap is small: not converged, sweeps = max_iter.
TEST(CudaLassoHost, TinyMaxIterIsNotConverged) {
  const std::vector<cs::Gram> gs = networks_of(30, {13, 14}, 2000);
  for (int max_iter : {0, 1, 2}) {
    Params p;
    p.k = 30;
    p.max_iter = max_iter;
    p.tol = 1e-8;
    const Outputs got = emulate(gs, p, h100_shared_limit);
    Agreement a;
    expect_matches_cpu(gs, p, got, "max_iter " + std::to_string(max_iter), a);
    for (size_t i = 0; i < gs.size(); ++i) {
      EXPECT_EQ(got.flags[i], static_cast<uint32_t>(cs::flag_not_converged));
      EXPECT_EQ(got.sweeps[i], max_iter);
    }
  }
}

TEST(CudaLassoHost, RefusesBadBatches) {
  EXPECT_THROW(cuda::lasso_scratch_doubles(5000, h100_shared_limit), std::invalid_argument);
  Params p;
  p.k = 5;
  const std::vector<cs::Gram> gs = {simulated_gram(1, 4, 100, 1.0)};
  EXPECT_THROW(emulate(gs, p, h100_shared_limit), std::invalid_argument);  // k > n
}

// ---- cyclic (GPU) vs active set (the CPU's default) ------------------------------------------

// What the GPU's cyclic descent gives up against the exact optimum of the active-set solver, at the
// default tol 1e-4, on n = 100, k = 100, T = 5000 networks. Printed for the integrator, who decides
// what the GPU does when a user asks for the active-set solver. The bounds below only catch a
// broken solver; the printed numbers are the measurement.
TEST(CudaLassoSolvers, CyclicAgainstActiveSetAtDefaultTolerance) {
  const std::vector<cs::Gram> gs = networks_of(100, {21, 22, 23}, 5000);
  for (bool intercept : {false, true})  // false: the configs' default for the lasso
    for (double alpha : {0.01, 0.1}) {
      double max_diff = 0, max_v = 0;
      long zero_mismatch = 0, active_nonzero = 0, cyclic_not_converged_networks = 0;
      int most_sweeps = 0;
      for (const cs::Gram& g : gs) {
        const cs::Estimate exact = cs::lasso(g, 100, alpha, intercept, 1e-4, 1000, cs::LassoSolver::active_set);
        const cs::Estimate cyclic = cs::lasso(g, 100, alpha, intercept, 1e-4, 1000, cs::LassoSolver::cyclic);
        ASSERT_TRUE(exact.V.allFinite());
        ASSERT_TRUE(cyclic.V.allFinite());
        EXPECT_EQ(exact.flags & cs::flag_not_converged, 0u);
        cyclic_not_converged_networks += (cyclic.flags & cs::flag_not_converged) != 0;
        most_sweeps = std::max(most_sweeps, cyclic.iterations);
        max_diff = std::max(max_diff, (exact.V - cyclic.V).cwiseAbs().maxCoeff());
        max_v = std::max(max_v, exact.V.cwiseAbs().maxCoeff());
        for (Eigen::Index e = 0; e < exact.V.size(); ++e) {
          active_nonzero += exact.V.data()[e] != 0.0;
          zero_mismatch += (exact.V.data()[e] == 0.0) != (cyclic.V.data()[e] == 0.0);
        }
      }
      const long total = static_cast<long>(gs.size()) * 100 * 100;
      std::printf("[ lasso    ] cyclic vs active set, n 100 k 100 T 5000, %s, alpha %.2f, tol 1e-4, %zu networks: "
                  "max |dV| %.3g (max |V| %.3g), zero/nonzero differ at %ld of %ld coefficients (active set: %ld "
                  "nonzero), cyclic not converged in %ld networks, most sweeps %d\n",
                  intercept ? "intercept" : "no intercept", alpha, gs.size(), max_diff, max_v, zero_mismatch, total,
                  active_nonzero, cyclic_not_converged_networks, most_sweeps);
      EXPECT_LE(max_diff, 0.5 * max_v) << "the two solvers minimise the same objective";
      EXPECT_LT(zero_mismatch, total / 4);
    }
}

// ---- on a GPU --------------------------------------------------------------------------------

// Device memory for one batch, freed at the end.
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { CS_CUDA_CHECK(cudaMalloc(&ptr, std::max<size_t>(bytes, 8))); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(ptr); }
};

// The real launch on device 0: outputs poisoned (0xff bytes: NaN doubles), Grams and results copied.
// Also returns the kernel's time (the launch to the stream's end).
Outputs launch_on_device(const std::vector<cs::Gram>& gs, const Params& p, size_t shared_limit, double& seconds) {
  HostInputs h(gs, p.k);
  const size_t networks = gs.size();
  DeviceBuffer grams(h.grams.size() * sizeof(double)), V(h.out.V.size() * sizeof(double)),
      flags(networks * sizeof(uint32_t)), sweeps(networks * sizeof(int)),
      scratch(networks * cuda::lasso_scratch_doubles(p.k, shared_limit) * sizeof(double));
  CS_CUDA_CHECK(cudaMemcpy(grams.ptr, h.grams.data(), h.grams.size() * sizeof(double), cudaMemcpyHostToDevice));
  CS_CUDA_CHECK(cudaMemset(V.ptr, 0xff, h.out.V.size() * sizeof(double)));
  CS_CUDA_CHECK(cudaMemset(flags.ptr, 0xff, networks * sizeof(uint32_t)));
  CS_CUDA_CHECK(cudaMemset(sweeps.ptr, 0xff, networks * sizeof(int)));
  cuda::LassoBatch b = make_batch(p, static_cast<int>(networks), h.n);
  b.grams = grams.as<double>();
  b.V = V.as<double>();
  b.flags = flags.as<uint32_t>();
  b.sweeps = sweeps.as<int>();
  b.scratch = scratch.as<double>();
  cudaStream_t stream;
  CS_CUDA_CHECK(cudaStreamCreate(&stream));
  const auto start = std::chrono::steady_clock::now();
  cuda::launch_lasso(b, shared_limit, stream);
  CS_CUDA_CHECK(cudaStreamSynchronize(stream));
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CS_CUDA_CHECK(cudaStreamDestroy(stream));
  CS_CUDA_CHECK(cudaMemcpy(h.out.V.data(), V.ptr, h.out.V.size() * sizeof(double), cudaMemcpyDeviceToHost));
  CS_CUDA_CHECK(cudaMemcpy(h.out.flags.data(), flags.ptr, networks * sizeof(uint32_t), cudaMemcpyDeviceToHost));
  CS_CUDA_CHECK(cudaMemcpy(h.out.sweeps.data(), sweeps.ptr, networks * sizeof(int), cudaMemcpyDeviceToHost));
  return h.out;
}

TEST(CudaDevice, LassoMatchesCpu) {
  const auto gpus = cs::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  const size_t limit = cuda::shared_memory_limit(0);
  struct Case {
    int n, k;
    bool intercept;
    double alpha;
    int max_iter;
    size_t shared_limit;
  };
  const std::vector<Case> cases = {{40, 40, false, 0.01, 1000, limit},  {40, 20, true, 0.01, 1000, limit},
                                   {40, 1, false, 0.1, 1000, limit},    {100, 60, false, 0.01, 1000, limit},
                                   {100, 60, false, 0.01, 1000, 16384}, {100, 100, false, 0.01, 1000, limit},
                                   {100, 100, true, 0.01, 1000, limit}, {170, 170, false, 0.01, 40, limit}};
  for (const Case& c : cases) {
    const std::vector<cs::Gram> gs = networks_of(c.n, {3, 17, 29}, 3000);
    Params p;
    p.k = c.k;
    p.intercept = c.intercept;
    p.alpha = c.alpha;
    p.max_iter = c.max_iter;
    double seconds = 0;
    const Outputs got = launch_on_device(gs, p, c.shared_limit, seconds);
    Agreement a;
    const std::string what = "device n " + std::to_string(c.n) + " limit " + std::to_string(c.shared_limit);
    expect_matches_cpu(gs, p, got, what + " (" + describe(p) + ")", a);
    print_agreement(what + " k " + std::to_string(c.k), a);
  }
  // The degenerate Grams, through the real kernel.
  cs::Gram nan_xx = simulated_gram(9, 10, 600, 1.5);
  nan_xx.ww(1 + 10 + 2, 1 + 10 + 4) = nan;
  const std::vector<cs::Gram> degenerate = {cs::Gram(10), nan_xx, simulated_gram(10, 10, 600, 1.5)};
  Params p;
  p.k = 10;
  p.max_iter = 3;
  p.tol = 1e-10;
  double seconds = 0;
  Agreement a;
  expect_matches_cpu(degenerate, p, launch_on_device(degenerate, p, limit, seconds), "device degenerate", a);
}

// k = 500 (the largest size asked for) on a few sweeps, and a timing of a realistic batch: 1024
// networks of n = 100, k = 100 (copies of 4 simulated Grams), printed for the integrator.
TEST(CudaDevice, LassoLargeKAndTiming) {
  const auto gpus = cs::query_cuda_devices();
  if (gpus.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus.description;
  CS_CUDA_CHECK(cudaSetDevice(0));
  const size_t limit = cuda::shared_memory_limit(0);
  Eigen::MatrixXd X, Z;
  simulated_trajectory(11, 500, 700, X, Z);
  const std::vector<cs::Gram> g500 = {cs::gram_from_trajectories(X, Z)};
  Params p;
  p.k = 500;
  p.max_iter = 3;
  double seconds = 0;
  Agreement a;
  expect_matches_cpu(g500, p, launch_on_device(g500, p, limit, seconds), "device k 500", a);
  print_agreement("device n 500 k 500 (3 sweeps)", a);

  const std::vector<cs::Gram> four = networks_of(100, {31, 32, 33, 34}, 5000);
  std::vector<cs::Gram> batch;
  for (int i = 0; i < 1024; ++i) batch.push_back(four[i % 4]);
  for (int k : {20, 60, 100}) {
    Params q;  // the configs' lasso: alpha 0.01, tol 1e-4, max_iter 1000, no intercept
    q.k = k;
    q.intercept = false;
    launch_on_device(batch, q, limit, seconds);  // warm-up (and the attribute set)
    const Outputs got = launch_on_device(batch, q, limit, seconds);
    int most_sweeps = 0;
    for (size_t i = 0; i < batch.size(); ++i) most_sweeps = std::max(most_sweeps, got.sweeps[i]);
    std::printf("[ lasso    ] device: 1024 networks n 100 k %d no intercept alpha 0.01 tol 1e-4: %.3f s (most sweeps %d)\n", k,
                seconds, most_sweeps);
    Agreement check;
    const std::vector<cs::Gram> first(batch.begin(), batch.begin() + 4);
    const Outputs head = {std::vector<double>(got.V.begin(), got.V.begin() + 4 * k * k),
                          std::vector<uint32_t>(got.flags.begin(), got.flags.begin() + 4),
                          std::vector<int>(got.sweeps.begin(), got.sweeps.begin() + 4)};
    expect_matches_cpu(first, q, head, "device timing batch k " + std::to_string(k), check);
  }
}

}  // namespace

#endif  // CAUSALSWEEP_HAVE_CUDA
