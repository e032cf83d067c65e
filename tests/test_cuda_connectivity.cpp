// The GPU connectivity kernel (kernels/connectivity.cu) against generate_connectivity and
// largest_singular_value (host/connectivity.cpp, Eigen's BDCSVD).
//
//   CudaConnectivityHost.*    without a GPU: the kernel's block program run by the host emulator
//   CudaConnectivityDevice.*  on a GPU (skipped without one): the real launch against the CPU and
//                             against the emulator
//
// For every network: the 0/+-1 pattern (which entries are nonzero, and their signs) exactly the
// CPU's; sigma within 1e-13 relative of largest_singular_value(A0); every entry of A within 1e-13
// relative of the CPU's A (zeros exactly zero); the status. Outputs are poisoned (NaN, -1) first.
#include <gtest/gtest.h>

#ifdef CAUSALSWEEP_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <Eigen/SVD>

#include "causalsweep/cuda_devices.hpp"
#include "connectivity_kernels.hpp"
#include "cuda_check.cuh"
#include "cuda_test_support.hpp"
#include "engine.hpp"

namespace cs = causalsweep;
namespace cuda = causalsweep::cuda;

namespace {

using causalsweep::test::h100_shared_limit;
constexpr double tolerance = 1e-13;           // relative, sigma and every entry of A
constexpr double nan = std::numeric_limits<double>::quiet_NaN();

struct NetworkCase {
  uint64_t seed;
  double p_connect;
};

// One batch's inputs and outputs on the host, outputs poisoned.
struct Batch {
  int n = 0;
  double p_inhibitory = 0;
  int max_iterations = 0;
  std::vector<uint64_t> seeds;
  std::vector<double> p_connect;
  std::vector<double> connectivity, singular_value;
  std::vector<int> status, iterations;

  Batch(int n_, double p_inhibitory_, const std::vector<NetworkCase>& cases, int max_iterations_ = 0)
      : n(n_), p_inhibitory(p_inhibitory_), max_iterations(max_iterations_) {
    for (const NetworkCase& c : cases) {
      seeds.push_back(c.seed);
      p_connect.push_back(c.p_connect);
    }
    connectivity.assign(cases.size() * static_cast<size_t>(n) * n, nan);
    singular_value.assign(cases.size(), nan);
    status.assign(cases.size(), -1);
    iterations.assign(cases.size(), -1);
  }
  int networks() const { return static_cast<int>(seeds.size()); }
  cuda::ConnectivityBatch view() {
    cuda::ConnectivityBatch b;
    b.networks = networks();
    b.n = n;
    b.p_inhibitory = p_inhibitory;
    b.seeds = seeds.data();
    b.p_connect = p_connect.data();
    b.connectivity = connectivity.data();
    b.singular_value = singular_value.data();
    b.status = status.data();
    b.max_iterations = max_iterations;
    b.iterations = iterations.data();
    return b;
  }
  Eigen::Map<const Eigen::MatrixXd> matrix(int network) const {
    return Eigen::Map<const Eigen::MatrixXd>(connectivity.data() + static_cast<size_t>(network) * n * n, n, n);
  }
};

Batch emulate(int n, double p_inhibitory, const std::vector<NetworkCase>& cases,
              size_t shared_limit = h100_shared_limit, int max_iterations = 0) {
  Batch batch(n, p_inhibitory, cases, max_iterations);
  cuda::emulate_connectivity_on_host(batch.view(), shared_limit);
  return batch;
}

int sign(double x) { return (x > 0) - (x < 0); }

// The CPU's answer for one network: its scaled A, and sigma of the unscaled A0 (= sign pattern of A).
struct Reference {
  Eigen::MatrixXd A;
  Eigen::MatrixXd A0;
  bool empty = false;
  double sigma = 0;
};

Reference reference(const Batch& batch, int network) {
  Reference r;
  r.A = cs::generate_connectivity(batch.seeds[network], batch.n, batch.p_connect[network], r.empty, batch.p_inhibitory);
  r.A0 = r.A.unaryExpr([](double x) { return static_cast<double>(sign(x)); });
  r.sigma = cs::largest_singular_value(r.A0);
  return r;
}

struct Worst {
  double sigma = 0;  // largest relative difference of sigma seen
  double entry = 0;  // of an entry of A
};

// Every output of `network` against the CPU; `unconverged_allowed` only where a test forces it.
void expect_network_matches_cpu(const Batch& batch, int network, Worst& worst, const std::string& where) {
  const Reference want = reference(batch, network);
  const auto got = batch.matrix(network);
  const int n = batch.n;
  SCOPED_TRACE(where + " seed " + std::to_string(batch.seeds[network]) + " p " + std::to_string(batch.p_connect[network]));
  if (want.empty) {
    EXPECT_EQ(batch.status[network], cuda::connectivity_empty);
    EXPECT_EQ(batch.singular_value[network], 0.0);
    EXPECT_EQ(batch.iterations[network], 0);
    for (int e = 0; e < n * n; ++e) ASSERT_EQ(got.data()[e], 0.0) << "entry " << e;
    return;
  }
  ASSERT_EQ(batch.status[network], cuda::connectivity_ok);
  EXPECT_GE(batch.iterations[network], 1);
  EXPECT_LE(batch.iterations[network], n);
  const double sigma_error = std::abs(batch.singular_value[network] - want.sigma) / want.sigma;
  EXPECT_LE(sigma_error, tolerance) << "sigma " << batch.singular_value[network] << " vs " << want.sigma;
  worst.sigma = std::max(worst.sigma, sigma_error);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(sign(got(i, j)), sign(want.A(i, j))) << "pattern at (" << i << ", " << j << ")";
      if (want.A(i, j) == 0) {
        ASSERT_EQ(got(i, j), 0.0);
        continue;
      }
      const double error = std::abs(got(i, j) - want.A(i, j)) / std::abs(want.A(i, j));
      ASSERT_LE(error, tolerance) << "A(" << i << ", " << j << ") " << got(i, j) << " vs " << want.A(i, j);
      worst.entry = std::max(worst.entry, error);
    }
}

void expect_batch_matches_cpu(const Batch& batch, Worst& worst, const std::string& where) {
  for (int network = 0; network < batch.networks(); ++network)
    expect_network_matches_cpu(batch, network, worst, where);
}

std::vector<NetworkCase> cases(uint64_t first_seed, int seeds, const std::vector<double>& p_connects) {
  std::vector<NetworkCase> out;
  for (double p : p_connects)
    for (int s = 0; s < seeds; ++s) out.push_back({first_seed + static_cast<uint64_t>(s), p});
  return out;
}

void expect_identical(const Batch& a, const Batch& b, const std::string& where) {
  ASSERT_EQ(a.connectivity.size(), b.connectivity.size());
  EXPECT_EQ(std::memcmp(a.connectivity.data(), b.connectivity.data(), a.connectivity.size() * sizeof(double)), 0) << where;
  EXPECT_EQ(std::memcmp(a.singular_value.data(), b.singular_value.data(), a.singular_value.size() * sizeof(double)), 0)
      << where;
  EXPECT_EQ(a.status, b.status) << where;
  EXPECT_EQ(a.iterations, b.iterations) << where;
}

}  // namespace

// ---- without a GPU ---------------------------------------------------------------------------------

TEST(CudaConnectivityHost, LayoutPutsWhatFitsInSharedMemory) {
  for (int n : {1, 2, 5, 40, 100})
    EXPECT_EQ(cuda::connectivity_scratch_doubles(n, h100_shared_limit), 0u) << n;  // A and V in shared memory
  // n = 120: A fits, V does not (two n x n matrices exceed 227 KiB); n = 200: neither fits.
  EXPECT_EQ(cuda::connectivity_scratch_doubles(120, h100_shared_limit), 120u * 120u);
  EXPECT_EQ(cuda::connectivity_scratch_doubles(200, h100_shared_limit), 200u * 200u);
  EXPECT_EQ(cuda::connectivity_scratch_doubles(500, h100_shared_limit), 500u * 500u);
  // A limit too small for the work vectors sends them to global memory too.
  EXPECT_EQ(cuda::connectivity_scratch_doubles(40, 4096), 6u * 40u + 40u * 40u);
  for (int n : {0, 1, 2, 3, 40, 100, 165, 200, 500, 1000})
    for (size_t limit : {size_t{4096}, size_t{48 * 1024}, h100_shared_limit})
      EXPECT_LE(cuda::connectivity_shared_bytes(n, limit), limit) << n << " " << limit;
  EXPECT_THROW(cuda::connectivity_scratch_doubles(10, 1024), std::invalid_argument);
}

// Small and medium n, every p_connect of the usual range, with and without inhibitory signs.
TEST(CudaConnectivityHost, EmulatedKernelMatchesCpu) {
  Worst worst;
  for (double p_inhibitory : {0.0, 0.3})
    for (int n : {1, 2, 3, 5, 6, 17, 40, 100}) {
      const int seeds = n <= 6 ? 12 : n <= 40 ? 4 : 2;
      const Batch batch = emulate(n, p_inhibitory, cases(1000 + n, seeds, {0.1, 0.25, 0.5}));
      expect_batch_matches_cpu(batch, worst, "n " + std::to_string(n) + " p_inh " + std::to_string(p_inhibitory));
    }
  std::printf("[ worst    ] sigma %.2e, entry %.2e (relative, vs Eigen)\n", worst.sigma, worst.entry);
}

// The global-memory paths: n = 200 (A0 built in place in the output, V in scratch), n = 120 (A0 in
// shared memory, V in scratch), and n = 40 with a 4 KiB limit (even the work vectors in scratch).
// Where memory lives changes no arithmetic: results are bitwise those of the all-shared layout.
TEST(CudaConnectivityHost, GlobalMemoryPathsMatchCpu) {
  Worst worst;
  for (double p_inhibitory : {0.0, 0.3}) {
    const Batch large = emulate(200, p_inhibitory, cases(7, 1, {0.1, 0.5}));
    expect_batch_matches_cpu(large, worst, "n 200");
    const Batch mixed = emulate(120, p_inhibitory, cases(8, 1, {0.1, 0.3}));
    expect_batch_matches_cpu(mixed, worst, "n 120");
    const auto small_cases = cases(9, 3, {0.1, 0.5});
    const Batch tiny_limit = emulate(40, p_inhibitory, small_cases, 4096);
    expect_batch_matches_cpu(tiny_limit, worst, "n 40, 4 KiB");
    expect_identical(tiny_limit, emulate(40, p_inhibitory, small_cases), "n 40: 4 KiB vs 227 KiB");
    expect_identical(mixed, emulate(120, p_inhibitory, cases(8, 1, {0.1, 0.3}), 8u << 20), "n 120: 227 KiB vs 8 MiB");
  }
  std::printf("[ worst    ] sigma %.2e, entry %.2e\n", worst.sigma, worst.entry);
}

TEST(CudaConnectivityHost, LargestSizeMatchesCpu) {
  Worst worst;
  expect_batch_matches_cpu(emulate(500, 0.3, {{3, 0.1}}), worst, "n 500, p_inh 0.3");
  expect_batch_matches_cpu(emulate(500, 0.0, {{4, 0.1}}), worst, "n 500");
  std::printf("[ worst    ] sigma %.2e, entry %.2e\n", worst.sigma, worst.entry);
}

// No connection: A = 0, sigma = 0, status empty, no Lanczos step; next to non-empty networks of
// the same batch (p_connect is per network), which are unaffected.
TEST(CudaConnectivityHost, EmptyMatrices) {
  Worst worst;
  for (double p_inhibitory : {0.0, 0.3})
    for (int n : {1, 2, 5, 40}) {
      const std::vector<NetworkCase> mixed = {{1, 0.0}, {2, 1e-12}, {3, 0.5}, {4, 1e-12}, {5, 1.0}};
      const Batch batch = emulate(n, p_inhibitory, mixed);
      for (int network : {0, 1, 3}) EXPECT_EQ(batch.status[network], cuda::connectivity_empty) << n << " " << network;
      EXPECT_NE(batch.status[4], cuda::connectivity_empty);
      expect_batch_matches_cpu(batch, worst, "empty, n " + std::to_string(n));
    }
  // p_connect = 1, no signs: all ones, sigma = n exactly (rank one: the Krylov space of a start
  // vector that is not constant has dimension 2, so Lanczos breaks down after two steps, exact).
  const Batch ones = emulate(7, 0.0, {{11, 1.0}});
  EXPECT_EQ(ones.status[0], cuda::connectivity_ok);
  EXPECT_NEAR(ones.singular_value[0], 7.0, 7.0 * tolerance);
  EXPECT_EQ(ones.iterations[0], 2);
}

// Sparse small matrices often have a repeated largest singular value (disjoint single connections:
// sigma = 1 several times). Such seeds are found with Eigen here, then must pass like any other.
TEST(CudaConnectivityHost, RepeatedLargestSingularValue) {
  std::vector<NetworkCase> repeated;
  for (uint64_t seed = 0; seed < 400 && repeated.size() < 24; ++seed) {
    bool empty = false;
    const Eigen::MatrixXd A = cs::generate_connectivity(seed, 8, 0.1, empty, 0.3);
    if (empty) continue;
    const Eigen::MatrixXd A0 = A.unaryExpr([](double x) { return static_cast<double>(sign(x)); });
    const Eigen::VectorXd s = Eigen::JacobiSVD<Eigen::MatrixXd>(A0).singularValues();
    if (s(1) > s(0) * (1 - 1e-12)) repeated.push_back({seed, 0.1});
  }
  ASSERT_GE(repeated.size(), 10u) << "too few seeds with a repeated top singular value";
  Worst worst;
  expect_batch_matches_cpu(emulate(8, 0.3, repeated), worst, "repeated sigma");
}

// The step cap: a network that has not converged within max_iterations says so, with sigma NaN and
// A0 left unscaled (exactly the CPU's 0/+-1 pattern), never a value; the others of the batch are fine.
TEST(CudaConnectivityHost, StepCapGivesUnconvergedAndUnscaledMatrix) {
  for (double p_inhibitory : {0.0, 0.3}) {
    const std::vector<NetworkCase> three = {{21, 0.1}, {22, 0.3}, {23, 1e-12}};
    const Batch capped = emulate(60, p_inhibitory, three, h100_shared_limit, 2);
    for (int network = 0; network < 2; ++network) {
      EXPECT_EQ(capped.status[network], cuda::connectivity_unconverged);
      EXPECT_TRUE(std::isnan(capped.singular_value[network]));
      EXPECT_EQ(capped.iterations[network], 2);
      const Reference want = reference(capped, network);
      const auto got = capped.matrix(network);
      for (int e = 0; e < 60 * 60; ++e) ASSERT_EQ(got.data()[e], want.A0.data()[e]) << "entry " << e;
    }
    EXPECT_EQ(capped.status[2], cuda::connectivity_empty);
    // A cap that is not reached changes nothing, bit for bit.
    const Batch free = emulate(60, p_inhibitory, three);
    ASSERT_LT(*std::max_element(free.iterations.begin(), free.iterations.end()), 59);
    const int enough = *std::max_element(free.iterations.begin(), free.iterations.end()) + 1;
    expect_identical(free, emulate(60, p_inhibitory, three, h100_shared_limit, enough), "cap not reached");
  }
}

// Beyond the usual range (p_connect 0.03..0.9, p_inhibitory up to 0.9: sparse, nearly zero-mean and
// nearly full matrices), sigma against an independent long-double SVD: within 2e-14 relative, the
// stopping rule's bound (1e-14) plus rounding. This also shows how much of the difference to
// Eigen's double BDCSVD is Eigen's.
TEST(CudaConnectivityHost, WideRangeAgainstLongDoubleSvd) {
  using MatrixL = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
  double worst = 0, worst_bdc = 0;
  for (int n : {3, 8, 25, 64})
    for (double p_inhibitory : {0.0, 0.5, 0.9})
      for (double p : {0.03, 0.2, 0.9}) {
        const Batch batch = emulate(n, p_inhibitory, cases(60 + n, 6, {p}));
        for (int network = 0; network < batch.networks(); ++network) {
          const Reference want = reference(batch, network);
          SCOPED_TRACE("n " + std::to_string(n) + " p_inh " + std::to_string(p_inhibitory) + " p " +
                       std::to_string(p) + " seed " + std::to_string(batch.seeds[network]));
          if (want.empty) {
            EXPECT_EQ(batch.status[network], cuda::connectivity_empty);
            continue;
          }
          ASSERT_EQ(batch.status[network], cuda::connectivity_ok);
          const auto got = batch.matrix(network);
          for (int e = 0; e < n * n; ++e) ASSERT_EQ(sign(got.data()[e]), want.A0.data()[e]) << "entry " << e;
          const long double exact = Eigen::JacobiSVD<MatrixL>(want.A0.cast<long double>()).singularValues()(0);
          const double error = static_cast<double>(std::abs(batch.singular_value[network] - exact) / exact);
          EXPECT_LE(error, 2e-14);
          worst = std::max(worst, error);
          worst_bdc = std::max(worst_bdc, static_cast<double>(std::abs(want.sigma - exact) / exact));
        }
      }
  std::printf("[ worst    ] vs long double: kernel %.2e, Eigen's BDCSVD %.2e\n", worst, worst_bdc);
}

// A network's outputs do not depend on the other networks of its launch: bit for bit.
TEST(CudaConnectivityHost, NetworkIndependentOfBatch) {
  const auto all = cases(31, 3, {0.1, 0.4});
  const Batch together = emulate(30, 0.3, all);
  for (size_t i = 0; i < all.size(); ++i) {
    const Batch alone = emulate(30, 0.3, {all[i]});
    EXPECT_EQ(std::memcmp(alone.connectivity.data(), together.connectivity.data() + i * 900, 900 * sizeof(double)), 0);
    EXPECT_EQ(alone.singular_value[0], together.singular_value[i]);
  }
}

// Lanczos steps the stopping rule needs (reported; bounded well below n for the usual matrices).
TEST(CudaConnectivityHost, StepsForTypicalNetworks) {
  for (int n : {40, 100, 200})
    for (double p_inhibitory : {0.0, 0.3}) {
      const int seeds = n <= 100 ? 20 : 4;
      const Batch batch = emulate(n, p_inhibitory, cases(500, seeds, {0.1}));
      int least = n, most = 0;
      double mean = 0;
      for (int network = 0; network < batch.networks(); ++network) {
        ASSERT_EQ(batch.status[network], cuda::connectivity_ok);
        least = std::min(least, batch.iterations[network]);
        most = std::max(most, batch.iterations[network]);
        mean += batch.iterations[network] / static_cast<double>(batch.networks());
      }
      std::printf("[ steps    ] n %d p 0.1 p_inh %.1f: %d..%d, mean %.1f (%d networks)\n", n, p_inhibitory, least,
                  most, mean, batch.networks());
      EXPECT_LT(most, n);
    }
}

// ---- on a GPU --------------------------------------------------------------------------------------

namespace {

template <class T>
struct DeviceArray {
  T* data = nullptr;
  size_t count = 0;
  explicit DeviceArray(size_t n) : count(n) { CS_CUDA_CHECK(cudaMalloc(&data, std::max<size_t>(n, 1) * sizeof(T))); }
  ~DeviceArray() { cudaFree(data); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void upload(const std::vector<T>& host) {
    CS_CUDA_CHECK(cudaMemcpy(data, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(std::vector<T>& host) const {
    CS_CUDA_CHECK(cudaMemcpy(host.data(), data, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
  }
};

// The batch run by the real kernel; device outputs poisoned (NaN bytes, -1) before the launch.
Batch run_on_device(int n, double p_inhibitory, const std::vector<NetworkCase>& cases, size_t shared_limit) {
  Batch host(n, p_inhibitory, cases);
  const size_t networks = cases.size();
  DeviceArray<uint64_t> seeds(networks);
  DeviceArray<double> p_connect(networks), connectivity(host.connectivity.size()), singular_value(networks);
  DeviceArray<int> status(networks), iterations(networks);
  const size_t scratch_per_network = cuda::connectivity_scratch_doubles(n, shared_limit);
  DeviceArray<double> scratch(networks * scratch_per_network);
  seeds.upload(host.seeds);
  p_connect.upload(host.p_connect);
  connectivity.upload(host.connectivity);
  singular_value.upload(host.singular_value);
  status.upload(host.status);
  iterations.upload(host.iterations);
  CS_CUDA_CHECK(cudaMemset(scratch.data, 0xff, std::max<size_t>(scratch.count, 1) * sizeof(double)));  // NaN

  cuda::ConnectivityBatch b;
  b.networks = static_cast<int>(networks);
  b.n = n;
  b.p_inhibitory = p_inhibitory;
  b.seeds = seeds.data;
  b.p_connect = p_connect.data;
  b.connectivity = connectivity.data;
  b.singular_value = singular_value.data;
  b.status = status.data;
  b.iterations = iterations.data;
  b.scratch = scratch_per_network > 0 ? scratch.data : nullptr;
  cuda::launch_connectivity(b, shared_limit, nullptr);
  CS_CUDA_CHECK(cudaDeviceSynchronize());
  connectivity.download(host.connectivity);
  singular_value.download(host.singular_value);
  status.download(host.status);
  iterations.download(host.iterations);
  return host;
}

#define SKIP_WITHOUT_GPU()                                                                     \
  do {                                                                                         \
    const cs::CudaDevices gpus_ = cs::query_cuda_devices();                                    \
    if (gpus_.count == 0) GTEST_SKIP() << "no CUDA device: " << gpus_.description;            \
  } while (0)

}  // namespace

// The real kernel against the CPU for every size class (shared memory, A in shared with V global,
// everything global, n = 500), and against the emulator: the same pattern and status, sigma within
// the tolerance (the GPU contracts into FMAs, the host build may not, so not bit for bit).
TEST(CudaConnectivityDevice, KernelMatchesCpuAndEmulator) {
  SKIP_WITHOUT_GPU();
  CS_CUDA_CHECK(cudaSetDevice(0));
  int limit = 0;
  CS_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  Worst worst;
  for (double p_inhibitory : {0.0, 0.3})
    for (int n : {1, 2, 5, 40, 100, 120, 200, 500}) {
      const int seeds = n <= 5 ? 16 : n <= 100 ? 6 : n < 500 ? 2 : 1;
      const auto all = cases(4000 + n, seeds, n <= 5 ? std::vector<double>{1e-12, 0.1, 0.5} : std::vector<double>{0.1, 0.5});
      const Batch device = run_on_device(n, p_inhibitory, all, static_cast<size_t>(limit));
      const std::string where = "device n " + std::to_string(n) + " p_inh " + std::to_string(p_inhibitory);
      expect_batch_matches_cpu(device, worst, where);
      const Batch host = emulate(n, p_inhibitory, all, static_cast<size_t>(limit));
      EXPECT_EQ(device.status, host.status) << where;
      for (int network = 0; network < device.networks(); ++network)
        if (host.status[network] == cuda::connectivity_ok)
          EXPECT_LE(std::abs(device.singular_value[network] - host.singular_value[network]),
                    tolerance * host.singular_value[network])
              << where;
    }
  std::printf("[ worst    ] device: sigma %.2e, entry %.2e (relative, vs Eigen)\n", worst.sigma, worst.entry);
}

#endif  // CAUSALSWEEP_HAVE_CUDA
